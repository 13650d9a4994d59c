//! AVX-512F: 6 x 32 tile (12 zmm accumulators, 2 for B, 1 broadcast of A);
//! the same register budget as AVX2 at twice the width. A transposed B is
//! packed 16 x 16 floats at a time through registers.
use core::arch::x86_64::*;

#[target_feature(enable = "avx512f,fma")]
#[inline]
fn zero() -> __m512 {
    _mm512_setzero_ps()
}
#[target_feature(enable = "avx512f,fma")]
#[inline]
fn splat(x: f32) -> __m512 {
    _mm512_set1_ps(x)
}
/// # Safety
/// `p..p + 16` is readable.
#[target_feature(enable = "avx512f,fma")]
#[inline]
unsafe fn load(p: *const f32) -> __m512 {
    // SAFETY: the caller guarantees 16 readable floats; loadu has no alignment need.
    unsafe { _mm512_loadu_ps(p) }
}
/// # Safety
/// `p..p + 16` is writable.
#[target_feature(enable = "avx512f,fma")]
#[inline]
unsafe fn store(p: *mut f32, v: __m512) {
    // SAFETY: the caller guarantees 16 writable floats.
    unsafe { _mm512_storeu_ps(p, v) }
}
/// The first `n` (<= 16) floats at `p`, the other lanes zero.
///
/// # Safety
/// `p..p + n` is readable (masked-off lanes are never touched).
#[target_feature(enable = "avx512f,fma")]
#[inline]
unsafe fn load_part(p: *const f32, n: usize) -> __m512 {
    // SAFETY: only the n unmasked floats are read (the caller's range).
    unsafe { _mm512_maskz_loadu_ps(lanes(n), p) }
}
/// Writes the first `n` (<= 16) lanes of `v` to `p`.
///
/// # Safety
/// `p..p + n` is writable (masked-off lanes are never touched).
#[target_feature(enable = "avx512f,fma")]
#[inline]
unsafe fn store_part(p: *mut f32, v: __m512, n: usize) {
    // SAFETY: only the n unmasked floats are written (the caller's range).
    unsafe { _mm512_mask_storeu_ps(p, lanes(n), v) }
}
/// The mask of the first `n` (<= 16) lanes.
#[inline]
fn lanes(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as __mmask16
}
#[target_feature(enable = "avx512f,fma")]
#[inline]
fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
    _mm512_fmadd_ps(a, b, c)
}
#[target_feature(enable = "avx512f,fma")]
#[inline]
fn add(a: __m512, b: __m512) -> __m512 {
    _mm512_add_ps(a, b)
}
#[target_feature(enable = "avx512f,fma")]
#[inline]
fn hsum(v: __m512) -> f32 {
    _mm512_reduce_add_ps(v)
}

/// # Safety
/// `p..p + 16` is readable.
#[target_feature(enable = "avx512f,fma")]
#[inline]
unsafe fn nonzero_mask(p: *const f32) -> u32 {
    // SAFETY: the caller guarantees 16 readable floats.
    let v = unsafe { _mm512_loadu_ps(p) };
    // Not-equal, unordered: NaN is nonzero.
    u32::from(_mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_ps()))
}

/// The 16 x 16 transpose of `r` (row i, lane q → row q, lane i): unpack
/// pairs and shuffle quads inside each 128-bit lane (as AVX2's 8 x 8), then
/// two rounds of 128-bit lane shuffles gather each output row's four quads.
#[target_feature(enable = "avx512f,fma")]
#[inline]
pub(crate) fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    let mut t = [_mm512_setzero_ps(); 16];
    for p in 0..8 {
        t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
    }
    // u[4g + c]: in 128-bit lane j, column 4j + c of rows 4g..4g + 4.
    let mut u = [_mm512_setzero_ps(); 16];
    for g in 0..4 {
        let (lo0, hi0, lo1, hi1) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
        u[4 * g] = _mm512_shuffle_ps::<0x44>(lo0, lo1);
        u[4 * g + 1] = _mm512_shuffle_ps::<0xee>(lo0, lo1);
        u[4 * g + 2] = _mm512_shuffle_ps::<0x44>(hi0, hi1);
        u[4 * g + 3] = _mm512_shuffle_ps::<0xee>(hi0, hi1);
    }
    let mut out = [_mm512_setzero_ps(); 16];
    for c in 0..4 {
        // Lanes 0-1 and 2-3 of rows 0-7's and rows 8-15's quads side by side.
        let x_lo = _mm512_shuffle_f32x4::<0x44>(u[c], u[4 + c]);
        let x_hi = _mm512_shuffle_f32x4::<0xee>(u[c], u[4 + c]);
        let y_lo = _mm512_shuffle_f32x4::<0x44>(u[8 + c], u[12 + c]);
        let y_hi = _mm512_shuffle_f32x4::<0xee>(u[8 + c], u[12 + c]);
        out[c] = _mm512_shuffle_f32x4::<0x88>(x_lo, y_lo);
        out[4 + c] = _mm512_shuffle_f32x4::<0xdd>(x_lo, y_lo);
        out[8 + c] = _mm512_shuffle_f32x4::<0x88>(x_hi, y_hi);
        out[12 + c] = _mm512_shuffle_f32x4::<0xdd>(x_hi, y_hi);
    }
    out
}

gemm_body!(
    "avx512f,fma",
    __m512,
    lanes = 16,
    vecs = 2,
    transpose = transpose16,
    pair = true
);
sparse_body!("avx512f,fma", __m512, lanes = 16);
