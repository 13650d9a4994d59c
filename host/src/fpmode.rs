//! Subnormal floats in training, flushed to zero: a numerics choice.
//!
//! SGD momentum of a weight whose input is almost always zero (a border
//! pixel) decays geometrically, `m ← 0.9·m`, and after ~800 steps it
//! reaches the subnormal range (below 1.18e-38), where every operation on
//! it takes a microcode assist: on Intel CPUs training ran 2.3-2.8x slower
//! from the second epoch on. Training threads therefore run with the CPU's
//! flush-to-zero and denormals-are-zero modes (MXCSR FTZ|DAZ on x86_64,
//! FPCR.FZ on aarch64), as `torch.set_flush_denormal(True)` does in
//! PyTorch: a subnormal result becomes 0 and a subnormal input reads as 0.
//! Values that small have no effect on a model trained in f32 and
//! exported to int8; the test accuracy is unchanged. Evaluation and export
//! keep the default IEEE mode.
//!
//! The mode is per thread: [`flush_subnormals`] sets it for the calling
//! thread, and a [`crate::par::Pool`] created afterwards gives its helper
//! threads the creating thread's mode, so every thread of a training step
//! computes alike (the checkpoint bytes do not depend on `--threads`).

/// Turns on flush-to-zero and denormals-are-zero for the calling thread
/// (a no-op on other architectures).
pub fn flush_subnormals() {
    set(true);
}

/// Whether the calling thread flushes subnormals.
pub fn flushing() -> bool {
    imp::get()
}

/// Sets or clears the calling thread's flush modes.
pub fn set(on: bool) {
    imp::set(on);
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::asm;

    /// MXCSR bits: flush to zero (15) and denormals are zero (6).
    const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

    fn read() -> u32 {
        let mut csr = 0u32;
        // SAFETY: stmxcsr stores the 4-byte MXCSR into `csr`, a live local.
        unsafe { asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags)) };
        csr
    }

    pub fn set(on: bool) {
        let csr = if on {
            read() | FTZ_DAZ
        } else {
            read() & !FTZ_DAZ
        };
        // SAFETY: ldmxcsr loads MXCSR from `csr`, a live local holding the
        // current value with only the FTZ and DAZ bits changed (no reserved
        // bit is set, so it cannot fault).
        unsafe { asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags)) };
    }

    pub fn get() -> bool {
        read() & FTZ_DAZ == FTZ_DAZ
    }
}

#[cfg(target_arch = "aarch64")]
mod imp {
    use std::arch::asm;

    /// FPCR.FZ: flush subnormal inputs and outputs to zero.
    const FZ: u64 = 1 << 24;

    fn read() -> u64 {
        let fpcr: u64;
        // SAFETY: reading FPCR has no side effect.
        unsafe { asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags)) };
        fpcr
    }

    pub fn set(on: bool) {
        let fpcr = if on { read() | FZ } else { read() & !FZ };
        // SAFETY: writes back FPCR with only the FZ bit changed.
        unsafe { asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack, preserves_flags)) };
    }

    pub fn get() -> bool {
        read() & FZ != 0
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod imp {
    pub fn set(_on: bool) {}
    pub fn get() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::hint::black_box;

    #[test]
    fn flushing_turns_subnormal_results_into_zero_on_this_thread_only() {
        std::thread::spawn(|| {
            let tiny = black_box(f32::MIN_POSITIVE);
            assert!(!super::flushing());
            assert!(black_box(tiny * 0.5) > 0.0, "IEEE default: subnormal");
            super::flush_subnormals();
            assert!(super::flushing());
            assert_eq!(black_box(tiny * 0.5), 0.0, "flushed");
            assert_eq!(black_box(f32::from_bits(1)) + 0.0, 0.0, "read as zero");
            super::set(false);
            assert!(black_box(tiny * 0.5) > 0.0);
        })
        .join()
        .unwrap();
    }
}
