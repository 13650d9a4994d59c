//! AVX-512 VNNI, a block of images at a time: each weight vector loaded once
//! serves [`B`] images, each image vector [`R`] rows.
//!
//! `vpdpbusd` multiplies unsigned by signed bytes. The activations arrive
//! shifted to unsigned, `x + 128` (`Model::infer_batch_i8` keeps them so
//! between layers; for the first layer it is the raw pixel), and the shift
//! is taken back out with the row's weight sum:
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

/// For images `b0..b0 + BB` and rows `c0..c0 + RR`:
/// `acc[b·m + c] = Σ_i xs[b·n + i] · w[c·n + i] − 128 · sums[c]`, where the
/// activations `xs` are already shifted to unsigned (`x + 128`).
///
/// # Safety
/// The CPU supports avx512f, avx512bw and avx512vnni; `xs` holds images
/// `b0..b0 + BB` of `n` bytes, `w` rows `c0..c0 + RR` of `n` bytes, `sums`
/// entries `c0..c0 + RR`, `acc` rows `b0..b0 + BB` of `m` entries.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn block<const BB: usize, const RR: usize>(
    xs: &[u8],
    w: &[i8],
    sums: &[i32],
    n: usize,
    m: usize,
    b0: usize,
    c0: usize,
    acc: &mut [i32],
) {
    let mut v = [[_mm512_setzero_si512(); RR]; BB];
    let full = n - n % 64;
    let mut i = 0;
    while i < full {
        let mut x = [_mm512_setzero_si512(); BB];
        for (b, xv) in x.iter_mut().enumerate() {
            // SAFETY: image b0 + b exists and i + 64 <= n: inside it.
            *xv = unsafe { _mm512_loadu_si512(xs.as_ptr().add((b0 + b) * n + i).cast()) };
        }
        for r in 0..RR {
            // SAFETY: row c0 + r exists and i + 64 <= n: inside it.
            let wv = unsafe { _mm512_loadu_si512(w.as_ptr().add((c0 + r) * n + i).cast()) };
            for (vb, xb) in v.iter_mut().zip(&x) {
                vb[r] = _mm512_dpbusd_epi32(vb[r], *xb, wv);
            }
        }
        i += 64;
    }
    if full < n {
        // The tail through masked loads: lanes past the end read as 0.
        let k = mask(full, n);
        let mut x = [_mm512_setzero_si512(); BB];
        for (b, xv) in x.iter_mut().enumerate() {
            // SAFETY: image b0 + b exists and the mask keeps the load in it.
            *xv =
                unsafe { _mm512_maskz_loadu_epi8(k, xs.as_ptr().add((b0 + b) * n + full).cast()) };
        }
        for r in 0..RR {
            // SAFETY: row c0 + r exists and the mask keeps the load in it.
            let wv = unsafe { _mm512_maskz_loadu_epi8(k, w.as_ptr().add((c0 + r) * n + full)) };
            for (vb, xb) in v.iter_mut().zip(&x) {
                vb[r] = _mm512_dpbusd_epi32(vb[r], *xb, wv);
            }
        }
    }
    for (b, row) in v.iter().enumerate() {
        let out = &mut acc[(b0 + b) * m + c0..(b0 + b) * m + c0 + RR];
        if RR == 4 {
            // Four sums at once: halve each vector twice, then two rounds
            // of pairwise adds across the four.
            let q: [__m128i; 4] = core::array::from_fn(|r| {
                let a = row[r % RR];
                let y =
                    _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64::<1>(a));
                _mm_add_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256::<1>(y))
            });
            let s4 = _mm_hadd_epi32(_mm_hadd_epi32(q[0], q[1]), _mm_hadd_epi32(q[2], q[3]));
            let mut t = [0i32; 4];
            // SAFETY: t holds four i32.
            unsafe { _mm_storeu_si128(t.as_mut_ptr().cast(), s4) };
            for (r, (o, v)) in out.iter_mut().zip(t).enumerate() {
                *o = v.wrapping_sub(sums[c0 + r].wrapping_mul(128));
            }
        } else {
            for (r, (o, a)) in out.iter_mut().zip(row).enumerate() {
                *o = _mm512_reduce_add_epi32(*a).wrapping_sub(sums[c0 + r].wrapping_mul(128));
            }
        }
    }
}

/// `acc[b·m + c] = Σ_i (xs[b·n + i] − 128) · w[c·n + i]` for every image b
/// and row c: `xs` holds int8 activations shifted to unsigned (`x + 128`,
/// the raw pixel for the first layer), `sums` the rows' weight sums from
/// [`row_sums`], m = `sums.len()`.
///
/// # Safety
/// The CPU supports avx512f, avx512bw and avx512vnni; `xs.len() = images ·
/// n`, `w.len() = m · n`, `acc.len() = images · m`, n ≤ 65536.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn dots_u8_batch(xs: &[u8], n: usize, w: &[i8], sums: &[i32], acc: &mut [i32]) {
    let m = sums.len();
    let images = xs.len() / n;
    debug_assert_eq!(w.len(), m * n);
    debug_assert_eq!(acc.len(), images * m);
    let whole_b = images - images % B;
    let whole_r = m - m % R;
    let mut b0 = 0;
    while b0 < images {
        let mut c0 = 0;
        while c0 < whole_r {
            // SAFETY: the loop bounds keep images b0.. and rows c0.. inside
            // xs, w, sums and acc (contract).
            unsafe {
                if b0 < whole_b {
                    block::<B, R>(xs, w, sums, n, m, b0, c0, acc)
                } else {
                    block::<1, R>(xs, w, sums, n, m, b0, c0, acc)
                }
            };
            c0 += R;
        }
        while c0 < m {
            // SAFETY: as above, for the rows past whole blocks.
            unsafe {
                if b0 < whole_b {
                    block::<B, 1>(xs, w, sums, n, m, b0, c0, acc)
                } else {
                    block::<1, 1>(xs, w, sums, n, m, b0, c0, acc)
                }
            };
            c0 += 1;
        }
        b0 += if b0 < whole_b { B } else { 1 };
    }
}
