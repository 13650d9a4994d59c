//! The int8 dot-product body shared by the x86 paths, `B` bytes per step.
//!
//! `vpmaddubsw` multiplies unsigned by signed bytes and adds adjacent pairs
//! into 16 bits with saturation. Feeding it |x| (0..=128) and w·sign(x)
//! (`vpsignb`; −127..=127 because the format forbids −128 weights) gives
//! pair sums of at most 2·128·127 = 32512: never saturated, so every step is
//! exact. `vpmaddwd` against ones widens the pairs into 32-bit lanes. Sixteen
//! output rows share each load of x (16 sums in flight hide the weight
//! stream's latency: 3.44 -> 2.52 us per 784-128-10 image against 4 rows). Each ISA file supplies `zero`, `load`,
//! `abs8`, `sign8`, `dot_acc` (the sums of adjacent products of |x| and
//! sign-adjusted w added to 32-bit lanes: `vpmaddubsw`, `vpmaddwd` with
//! ones and `vpaddd`, or VNNI's single `vpdpbusd`), `hsum`.

macro_rules! dots_body {
    ($feat:literal, bytes = $B:expr) => {
        /// `acc[c] = Σ_i x[i] · w[c·n + i]`.
        ///
        /// # Safety
        /// The CPU supports the features above, `w.len() == acc.len() * x.len()`,
        /// and no weight is −128.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn dots_i8(x: &[i8], w: &[i8], acc: &mut [i32]) {
            debug_assert_eq!(w.len(), acc.len() * x.len());
            let mut c = 0;
            while c + 16 <= acc.len() {
                // SAFETY: rows c..c+16 exist (loop condition); forwarded contract.
                unsafe { rows::<16>(x, w, c, &mut acc[c..c + 16]) };
                c += 16;
            }
            while c + 4 <= acc.len() {
                // SAFETY: rows c..c+4 exist (loop condition); forwarded contract.
                unsafe { rows::<4>(x, w, c, &mut acc[c..c + 4]) };
                c += 4;
            }
            while c < acc.len() {
                // SAFETY: row c exists; forwarded contract.
                unsafe { rows::<1>(x, w, c, &mut acc[c..c + 1]) };
                c += 1;
            }
        }

        /// `R` consecutive output rows starting at `c`, sharing each load of x.
        ///
        /// # Safety
        /// As [`dots_i8`], with rows `c..c + R` inside `w`.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn rows<const R: usize>(x: &[i8], w: &[i8], c: usize, out: &mut [i32]) {
            let n = x.len();
            let full = n - n % $B;
            let mut v = [zero(); R];
            let mut i = 0;
            while i < full {
                // SAFETY: i + B <= n: inside x.
                let xv = unsafe { load(x.as_ptr().add(i)) };
                let ax = abs8(xv);
                for (r, a) in v.iter_mut().enumerate() {
                    // SAFETY: row c + r exists, i + B <= n: inside w (contract).
                    let wv = unsafe { load(w.as_ptr().add((c + r) * n + i)) };
                    *a = dot_acc(*a, ax, sign8(wv, xv));
                }
                i += $B;
            }
            if full < n {
                // The tail as one more step: x zero-padded, so whatever bytes
                // follow a weight row contribute sign(0) = 0.
                let mut xt = [0i8; $B];
                xt[..n - full].copy_from_slice(&x[full..]);
                // SAFETY: xt holds B bytes.
                let xv = unsafe { load(xt.as_ptr()) };
                let ax = abs8(xv);
                for (r, a) in v.iter_mut().enumerate() {
                    let start = (c + r) * n + full;
                    let wv = if start + $B <= w.len() {
                        // SAFETY: start + B <= w.len(): inside w.
                        unsafe { load(w.as_ptr().add(start)) }
                    } else {
                        let mut wt = [0i8; $B];
                        wt[..n - full].copy_from_slice(&w[start..start + n - full]);
                        // SAFETY: wt holds B bytes.
                        unsafe { load(wt.as_ptr()) }
                    };
                    *a = dot_acc(*a, ax, sign8(wv, xv));
                }
            }
            for (o, a) in out.iter_mut().zip(v) {
                *o = hsum(a);
            }
        }
    };
}
