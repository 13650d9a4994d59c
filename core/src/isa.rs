//! Which SIMD path the kernels take.
//!
//! The choice is made once. With the `std` feature it is detected at run time
//! and cached; without it (firmware) it follows the compile-time
//! `target_feature`s. A path can be forced ([`Isa::force`]) for tests,
//! benches and the CLI's `--isa` flag, and every path can be reached directly
//! through the `*_on` variants of each kernel.

use core::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set path for the f32 and int8 kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// Portable scalar reference code; always available.
    Scalar,
    /// x86_64 AVX2 with FMA (256-bit).
    Avx2Fma,
    /// x86_64 AVX-512F (with BW and VL for the int8 kernels; VNNI used when present).
    Avx512,
    /// aarch64 Advanced SIMD (NEON).
    Neon,
    /// Cortex-M DSP extension (Armv7E-M: M4, M7): the int8 kernel uses
    /// SXTB16/SMLAD; the f32 kernels fall back to the scalar code.
    CortexMDsp,
}

/// Every path, in order of preference (best last).
pub const ALL: [Isa; 5] = [
    Isa::Scalar,
    Isa::CortexMDsp,
    Isa::Neon,
    Isa::Avx2Fma,
    Isa::Avx512,
];

const UNSET: u8 = 0xff;
static ACTIVE: AtomicU8 = AtomicU8::new(UNSET);

impl Isa {
    /// The exact name the CLI and the benches print.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
            Isa::CortexMDsp => "cortex-m-dsp",
        }
    }

    /// Parses a name as printed by [`Isa::name`].
    pub fn from_name(name: &str) -> Option<Isa> {
        ALL.iter().copied().find(|i| i.name() == name)
    }

    /// Whether this path can run here.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Avx2Fma => avx2_fma(),
            Isa::Avx512 => avx512(),
            Isa::Neon => neon(),
            Isa::CortexMDsp => cfg!(ember_dsp),
        }
    }

    /// Whether the AVX-512 int8 kernel may use VNNI (`vpdpbusd`).
    pub fn has_vnni() -> bool {
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            std::is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
        {
            cfg!(target_feature = "avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Whether the AVX2 int8 kernel may use AVX-VNNI (`vpdpbusd` on 256-bit
    /// vectors, VEX-encoded: Alder Lake, Sapphire Rapids, Zen 4 and later).
    /// With `std`, the environment variable `EMBER_NO_AVX_VNNI` (read once)
    /// turns it off, so that the plain AVX2 kernel can be measured on such
    /// a CPU.
    pub fn has_avx_vnni() -> bool {
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            static CACHED: AtomicU8 = AtomicU8::new(UNSET);
            match CACHED.load(Ordering::Relaxed) {
                UNSET => {
                    let on = std::is_x86_feature_detected!("avxvnni")
                        && std::env::var_os("EMBER_NO_AVX_VNNI").is_none();
                    CACHED.store(u8::from(on), Ordering::Relaxed);
                    on
                }
                v => v == 1,
            }
        }
        #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
        {
            cfg!(target_feature = "avxvnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// The paths that can run here, best last; `Scalar` always first.
    pub fn available() -> heapless::Vec<Isa, 5> {
        ALL.iter().copied().filter(|i| i.is_supported()).collect()
    }

    /// The best path this CPU supports.
    pub fn detect() -> Isa {
        ALL.iter()
            .rev()
            .copied()
            .find(|i| i.is_supported())
            .unwrap_or(Isa::Scalar)
    }

    /// The path the safe entry points use: forced by [`Isa::force`], else detected once.
    pub fn active() -> Isa {
        match ACTIVE.load(Ordering::Relaxed) {
            UNSET => {
                let isa = Isa::detect();
                ACTIVE.store(isa as u8, Ordering::Relaxed);
                isa
            }
            v => ALL
                .iter()
                .copied()
                .find(|i| *i as u8 == v)
                .unwrap_or(Isa::Scalar),
        }
    }

    /// Makes every safe entry point use `isa` from now on.
    ///
    /// # Errors
    /// [`crate::Error::IsaUnavailable`] when this CPU or build cannot run it.
    pub fn force(isa: Isa) -> Result<(), crate::Error> {
        if !isa.is_supported() {
            return Err(crate::Error::IsaUnavailable);
        }
        ACTIVE.store(isa as u8, Ordering::Relaxed);
        Ok(())
    }
}

impl core::fmt::Display for Isa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(target_feature = "avx2", target_feature = "fma"))
    }
}
#[cfg(not(target_arch = "x86_64"))]
fn avx2_fma() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(
            target_feature = "avx512f",
            target_feature = "avx512bw",
            target_feature = "avx512vl"
        ))
    }
}
#[cfg(not(target_arch = "x86_64"))]
fn avx512() -> bool {
    false
}

#[cfg(target_arch = "aarch64")]
fn neon() -> bool {
    #[cfg(feature = "std")]
    {
        std::arch::is_aarch64_feature_detected!("neon")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "neon")
    }
}
#[cfg(not(target_arch = "aarch64"))]
fn neon() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
        }
        assert_eq!(Isa::from_name("sse9"), None);
    }

    #[test]
    fn scalar_always_available_and_detect_is_supported() {
        assert_eq!(Isa::available().first(), Some(&Isa::Scalar));
        assert!(Isa::detect().is_supported());
    }
}
