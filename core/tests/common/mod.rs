//! Helpers shared by the core's integration tests: deterministic data, the one
//! float tolerance, NaN-filled outputs with canaries past the end.
#![allow(dead_code)]

use ember::{Isa, Parallel};

/// A tiny deterministic generator (xorshift32) for test data.
pub struct Gen(pub u32);

impl Gen {
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next_f32()).collect()
    }
}

/// Value written past the end of every output, checked afterwards.
pub const CANARY: f32 = 1234.5;
pub const CANARIES: usize = 16;

/// An output buffer of `n` NaNs followed by canaries.
pub fn nan_out(n: usize) -> Vec<f32> {
    let mut v = vec![f32::NAN; n];
    v.extend([CANARY; CANARIES]);
    v
}

/// Asserts the canaries behind the first `n` elements are intact.
pub fn check_canaries(v: &[f32], n: usize, what: &str) {
    assert!(
        v[n..].iter().all(|&x| x == CANARY),
        "{what}: wrote past the end of the output"
    );
}

/// The one float tolerance of the suite: relative to the magnitude of the
/// sum of |terms| and growing with the summed length k (f32 error bound ~ k·eps).
pub fn assert_close(got: &[f32], want: &[f32], k: usize, scale: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let tol = 4.0 * (k.max(1) as f32) * f32::EPSILON;
    for (i, ((g, w), s)) in got.iter().zip(want).zip(scale).enumerate() {
        let bound = tol * s.abs().max(1e-30) + 1e-30;
        assert!(
            (g - w).abs() <= bound,
            "{what}: element {i}: got {g}, want {w} (bound {bound})"
        );
    }
}

/// The vector paths to test: every path this CPU runs. A path the CPU lacks is
/// reported, so a skipped ISA is visible in the test output.
/// `EMBER_REQUIRE_ISA` (comma-separated names, set by CI from the CPU's
/// flags) turns a skipped path into a failure.
pub fn vector_isas() -> Vec<Isa> {
    if let Ok(req) = std::env::var("EMBER_REQUIRE_ISA") {
        for name in req.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let isa = Isa::from_name(name)
                .unwrap_or_else(|| panic!("EMBER_REQUIRE_ISA: unknown ISA {name}"));
            assert!(
                isa.is_supported(),
                "required ISA {name} is not available here"
            );
        }
    }
    let mut out = Vec::new();
    for isa in ember::isa::ALL {
        if isa == Isa::Scalar {
            continue;
        }
        if isa.is_supported() {
            out.push(isa);
        } else if cpu_has(isa) {
            eprintln!(
                "note: {} not tested: the CPU has it, but ember was built without its `std` \
                 feature and cannot detect it at run time (test with `--features std`, or the \
                 workspace as the README does)",
                isa.name()
            );
        } else {
            eprintln!(
                "note: {} not tested: this CPU or target lacks it",
                isa.name()
            );
        }
    }
    out
}

/// Whether the CPU itself has what `isa` needs, as the test binary (built
/// with std) sees it, whatever ember's own detection says.
fn cpu_has(isa: Isa) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match isa {
            Isa::Avx2Fma => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            Isa::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("fma")
            }
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        false
    }
}

/// Runs both halves of every join on real threads.
pub struct Threads(pub usize);
impl Parallel for Threads {
    fn threads(&self) -> usize {
        self.0
    }
    fn join(&self, a: &mut (dyn FnMut() + Send), b: &mut (dyn FnMut() + Send)) {
        std::thread::scope(|s| {
            s.spawn(a);
            b();
        });
    }
}
