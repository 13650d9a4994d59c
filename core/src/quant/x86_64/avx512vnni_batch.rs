//! AVX-512 VNNI, a block of images at a time: each weight vector loaded once
//! serves [`B`] images, each image vector [`R`] rows.
//!
//! `vpdpbusd` multiplies unsigned by signed bytes. An int8 activation `x`
//! becomes the unsigned `x + 128` by flipping its top bit, and the shift is
//! taken back out with the row's weight sum:
//! `Σ x·w = Σ (x + 128)·w − 128 · Σ w`. Every product and sum is an exact
//! integer (the largest, `65536 · 255 · 127`, fits in i32), so the result
//! is bit for bit the reference's. Tails are masked loads: lanes past the
//! end read as 0 (a weight of 0 adds nothing).
use core::arch::x86_64::*;

/// Images per block: each weight load is shared by this many images.
pub(crate) const B: usize = 4;
/// Rows per block: each image load is shared by this many rows (B·R = 16
/// accumulators of the 32 zmm registers).
pub(crate) const R: usize = 4;

/// The lanes of a 64-byte step starting at `i` of `n` that lie inside.
#[inline]
fn mask(i: usize, n: usize) -> __mmask64 {
    let left = n - i;
    if left >= 64 {
        !0
    } else {
        (1u64 << left) - 1
    }
}

/// `sums[c] = Σ_i w[c·n + i]` for every row of `w`.
///
/// # Safety
/// The CPU supports avx512f, avx512bw and avx512vnni; `w.len() ==
/// sums.len() * n`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn row_sums(w: &[i8], n: usize, sums: &mut [i32]) {
    debug_assert_eq!(w.len(), sums.len() * n);
    let ones = _mm512_set1_epi8(1);
    for (c, s) in sums.iter_mut().enumerate() {
        let row = w.as_ptr().wrapping_add(c * n);
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        while i < n {
            // SAFETY: the mask keeps the load inside row c (contract).
            let wv = unsafe { _mm512_maskz_loadu_epi8(mask(i, n), row.add(i)) };
            acc = _mm512_dpbusd_epi32(acc, ones, wv);
            i += 64;
        }
        *s = _mm512_reduce_add_epi32(acc);
    }
}

/// For images `b0..b0 + B` and rows `c0..c0 + R`:
/// `acc[b·m + c] = Σ_i (x[b·n + i] + 128) · w[c·n + i]` (the shifted sums).
///
/// # Safety
/// The CPU supports avx512f, avx512bw and avx512vnni; `xs` holds images
/// `b0..b0 + B` of `n` bytes, `w` rows `c0..c0 + R` of `n` bytes, `acc`
/// rows `b0..b0 + B` of `m` entries.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn block(xs: &[i8], w: &[i8], n: usize, m: usize, b0: usize, c0: usize, acc: &mut [i32]) {
    let flip = _mm512_set1_epi8(i8::MIN);
    let mut v = [[_mm512_setzero_si512(); R]; B];
    let mut i = 0;
    while i < n {
        let k = mask(i, n);
        let mut x = [_mm512_setzero_si512(); B];
        for (b, xv) in x.iter_mut().enumerate() {
            // SAFETY: image b0 + b exists and the mask keeps the load in it.
            let raw = unsafe { _mm512_maskz_loadu_epi8(k, xs.as_ptr().add((b0 + b) * n + i)) };
            *xv = _mm512_xor_si512(raw, flip);
        }
        for r in 0..R {
            // SAFETY: row c0 + r exists and the mask keeps the load in it.
            let wv = unsafe { _mm512_maskz_loadu_epi8(k, w.as_ptr().add((c0 + r) * n + i)) };
            for (vb, xb) in v.iter_mut().zip(&x) {
                vb[r] = _mm512_dpbusd_epi32(vb[r], *xb, wv);
            }
        }
        i += 64;
    }
    for (b, row) in v.iter().enumerate() {
        for (r, a) in row.iter().enumerate() {
            acc[(b0 + b) * m + c0 + r] = _mm512_reduce_add_epi32(*a);
        }
    }
}

/// `acc[b·m + c] = Σ_i xs[b·n + i] · w[c·n + i]` for every image b and row c
/// (m = `sums.len()` rows, `sums` their weight sums from [`row_sums`]).
/// Images and rows beyond whole blocks go through the one-image kernel.
///
/// # Safety
/// The CPU supports avx512f, avx512bw and avx512vnni; `xs.len() = images ·
/// n`, `w.len() = m · n`, `acc.len() = images · m`, no weight is −128, and
/// n ≤ 65536.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn dots_i8_batch(xs: &[i8], n: usize, w: &[i8], sums: &[i32], acc: &mut [i32]) {
    let m = sums.len();
    let images = xs.len() / n;
    debug_assert_eq!(w.len(), m * n);
    debug_assert_eq!(acc.len(), images * m);
    let whole_b = images - images % B;
    let whole_r = m - m % R;
    let mut b0 = 0;
    while b0 < whole_b {
        let mut c0 = 0;
        while c0 < whole_r {
            // SAFETY: images b0..b0+B and rows c0..c0+R exist (loop bounds).
            unsafe { block(xs, w, n, m, b0, c0, acc) };
            c0 += R;
        }
        for b in b0..b0 + B {
            let x = &xs[b * n..(b + 1) * n];
            // The rows past whole blocks, for this image, one-image kernel.
            // SAFETY: forwarded contract; lengths match by construction.
            unsafe {
                super::avx512vnni::dots_i8(
                    x,
                    &w[whole_r * n..],
                    &mut acc[b * m + whole_r..(b + 1) * m],
                )
            };
        }
        for c in 0..whole_r {
            // Shifted sums back to true ones: Σ x·w = Σ (x + 128)·w − 128·Σ w.
            for b in b0..b0 + B {
                let a = &mut acc[b * m + c];
                *a = a.wrapping_sub(sums[c].wrapping_mul(128));
            }
        }
        b0 += B;
    }
    for b in whole_b..images {
        let x = &xs[b * n..(b + 1) * n];
        // SAFETY: forwarded contract; lengths match by construction.
        unsafe { super::avx512vnni::dots_i8(x, w, &mut acc[b * m..(b + 1) * m]) };
    }
}
