//! Element-wise update loops compiled twice: for the baseline target and,
//! on x86_64, with AVX2 enabled, so the compiler vectorizes them 8 wide
//! instead of 4 (SSE2). The loops are plain IEEE `*`, `+`, `-` (Rust never
//! fuses them), so both builds give the same bits.

/// Instantiates an element-wise function as a module holding the baseline
/// build (`base`), the AVX2 build (`wide`, x86_64) and `run`, which picks by
/// [`crate::Isa::active`].
macro_rules! twice {
    ($(#[$m:meta])* mod $name:ident fn($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$m])*
        pub(crate) mod $name {
            /// The baseline build.
            pub(crate) fn base($($arg: $ty),*) $body

            /// The same loop built with AVX2.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            pub(crate) fn wide($($arg: $ty),*) $body

            /// `wide` when the active ISA has AVX2, else `base`.
            pub(crate) fn run($($arg: $ty),*) {
                #[cfg(target_arch = "x86_64")]
                if matches!(
                    crate::Isa::active(),
                    crate::Isa::Avx2Fma | crate::Isa::Avx512
                ) {
                    // SAFETY: the active ISA is only ever one this CPU
                    // supports (Isa::force refuses others); both imply AVX2.
                    return unsafe { wide($($arg),*) };
                }
                base($($arg),*)
            }
        }
    };
}

twice! {
    /// SGD with momentum and weight decay over zipped slices (PyTorch's rule).
    mod sgd fn(p: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, momentum: f32, weight_decay: f32) {
        for ((p, &gr), v) in p.iter_mut().zip(g).zip(v) {
            let d = gr + weight_decay * *p;
            *v = momentum * *v + d;
            *p -= lr * *v;
        }
    }
}

#[cfg(all(test, feature = "std", target_arch = "x86_64"))]
mod tests {
    use std::vec::Vec;

    #[test]
    fn both_builds_give_the_same_bits() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut s = 0x1234_5678u32;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s as f32 / u32::MAX as f32 - 0.5
        };
        let n = 1037;
        let g: Vec<f32> = (0..n).map(|_| next()).collect();
        let p0: Vec<f32> = (0..n).map(|_| next()).collect();
        let v0: Vec<f32> = (0..n).map(|_| next()).collect();
        let (mut p1, mut v1, mut p2, mut v2) = (p0.clone(), v0.clone(), p0, v0);
        super::sgd::base(&mut p1, &g, &mut v1, 0.1, 0.9, 1e-3);
        // SAFETY: AVX2 was detected above.
        unsafe { super::sgd::wide(&mut p2, &g, &mut v2, 0.1, 0.9, 1e-3) };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p1), bits(&p2));
        assert_eq!(bits(&v1), bits(&v2));
    }
}
