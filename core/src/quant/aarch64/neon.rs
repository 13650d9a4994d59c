//! NEON: 16 bytes per step, `smull`/`smull2` to 16-bit products (exact:
//! |x·w| ≤ 2^14), `sadalp` pairs into 4 x i32; four rows share each load of x.
use core::arch::aarch64::*;

/// `acc[c] = Σ_i x[i] · w[c·n + i]`.
///
/// # Safety
/// The CPU supports NEON and `w.len() == acc.len() * x.len()`.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dots_i8(x: &[i8], w: &[i8], acc: &mut [i32]) {
    let n = x.len();
    debug_assert_eq!(w.len(), acc.len() * n);
    let full = n - n % 16;
    let mut c = 0;
    while c < acc.len() {
        let rows = (acc.len() - c).min(4);
        let mut v = [vdupq_n_s32(0); 4];
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= n: inside x.
            let xv = unsafe { vld1q_s8(x.as_ptr().add(i)) };
            for (r, a) in v.iter_mut().take(rows).enumerate() {
                // SAFETY: row c + r < out, i + 16 <= n: inside w (contract).
                let wv = unsafe { vld1q_s8(w.as_ptr().add((c + r) * n + i)) };
                *a = vpadalq_s16(*a, vmull_s8(vget_low_s8(xv), vget_low_s8(wv)));
                *a = vpadalq_s16(*a, vmull_high_s8(xv, wv));
            }
            i += 16;
        }
        for (r, a) in v.iter().take(rows).enumerate() {
            let row = &w[(c + r) * n..(c + r + 1) * n];
            let tail: i32 = row[full..]
                .iter()
                .zip(&x[full..])
                .map(|(&wi, &xi)| wi as i32 * xi as i32)
                .sum();
            acc[c + r] = vaddvq_s32(*a) + tail;
        }
        c += 4;
    }
}
