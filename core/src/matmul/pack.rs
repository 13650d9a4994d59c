//! Packing a block of B into a contiguous, zero-padded panel so that the
//! micro-kernel reads it with unit stride whatever B's layout.
#![forbid(unsafe_code)]

use core::mem::MaybeUninit;

/// Copies the `kc x nr` block of the logical B starting at (`p0`, `j0`) into
/// `panel` with row stride `width`, initialising every element of its first `kc` rows (`nr <= width`), padding columns `nr..width`
/// with zeros. `b` holds B with strides (`rsb`, `csb`); the block must lie
/// within it (the caller's `Gemm::check` proves it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_b(
    b: &[f32],
    rsb: usize,
    csb: usize,
    p0: usize,
    j0: usize,
    kc: usize,
    nr: usize,
    width: usize,
    panel: &mut [MaybeUninit<f32>],
) {
    let panel = &mut panel[..kc * width];
    debug_assert!(csb == 1 || rsb == 1);
    if csb == 1 {
        for (p, dst) in panel.chunks_exact_mut(width).enumerate() {
            let src = &b[(p0 + p) * rsb + j0..][..nr];
            for (d, s) in dst.iter_mut().zip(src) {
                d.write(*s);
            }
            for d in &mut dst[nr..] {
                d.write(0.0);
            }
        }
    } else {
        // B stored transposed (rsb = 1): each column of the block is a
        // contiguous run of k. Read each run in order (the panel, kc x
        // width floats, sits in L1, so its strided writes are cheap; strided
        // reads from B were the slow part), then zero the padding columns.
        let cols = &b[j0 * csb + p0..];
        for jj in 0..nr {
            let run = &cols[jj * csb..jj * csb + kc];
            for (dst, v) in panel.chunks_exact_mut(width).zip(run) {
                dst[jj].write(*v);
            }
        }
        if nr < width {
            for dst in panel.chunks_exact_mut(width) {
                for d in &mut dst[nr..] {
                    d.write(0.0);
                }
            }
        }
    }
}
