//! AVX2+FMA: 6 x 16 tile (12 ymm accumulators, 2 for B, 1 broadcast of A:
//! 15 of the 16 registers); B stored transposed is packed 8 x 8 blocks at a
//! time through `transpose8`.
use core::arch::x86_64::*;

#[target_feature(enable = "avx2,fma")]
#[inline]
fn zero() -> __m256 {
    _mm256_setzero_ps()
}
#[target_feature(enable = "avx2,fma")]
#[inline]
fn splat(x: f32) -> __m256 {
    _mm256_set1_ps(x)
}
/// # Safety
/// `p..p + 8` is readable.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load(p: *const f32) -> __m256 {
    // SAFETY: the caller guarantees 8 readable floats; loadu has no alignment need.
    unsafe { _mm256_loadu_ps(p) }
}
/// # Safety
/// `p..p + 8` is writable.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store(p: *mut f32, v: __m256) {
    // SAFETY: the caller guarantees 8 writable floats.
    unsafe { _mm256_storeu_ps(p, v) }
}
/// The first `n` (<= 8) floats at `p`, the other lanes zero.
///
/// # Safety
/// `p..p + n` is readable (masked-off lanes are never touched).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load_part(p: *const f32, n: usize) -> __m256 {
    // SAFETY: only the n unmasked floats are read (the caller's range).
    unsafe { _mm256_maskload_ps(p, lanes(n)) }
}
/// Writes the first `n` (<= 8) lanes of `v` to `p`.
///
/// # Safety
/// `p..p + n` is writable (masked-off lanes are never touched).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store_part(p: *mut f32, v: __m256, n: usize) {
    // SAFETY: only the n unmasked floats are written (the caller's range).
    unsafe { _mm256_maskstore_ps(p, lanes(n), v) }
}
/// The mask of the first `n` (<= 8) lanes: all ones where lane < n.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn lanes(n: usize) -> __m256i {
    let n = n.min(8) as i32;
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}
#[target_feature(enable = "avx2,fma")]
#[inline]
fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
    _mm256_fmadd_ps(a, b, c)
}
#[target_feature(enable = "avx2,fma")]
#[inline]
fn add(a: __m256, b: __m256) -> __m256 {
    _mm256_add_ps(a, b)
}
#[target_feature(enable = "avx2,fma")]
#[inline]
fn hsum(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps::<1>(v);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s)
}

/// # Safety
/// `p..p + 8` is readable.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn nonzero_mask(p: *const f32) -> u32 {
    // SAFETY: the caller guarantees 8 readable floats.
    let v = unsafe { _mm256_loadu_ps(p) };
    // Not-equal, unordered: NaN is nonzero.
    _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(v, _mm256_setzero_ps())) as u32
}

/// The 8 x 8 transpose of `r` (row i, lane q → row q, lane i): unpack
/// pairs, shuffle quads, swap 128-bit halves.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xee>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xee>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xee>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xee>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

gemm_body!(
    "avx2,fma",
    __m256,
    lanes = 8,
    vecs = 2,
    transpose = transpose8
);
/// Writes the floats at `p` whose lanes are set in `byte`, in order, to
/// `out`, by one permutation (the indices are `PACK[byte]`; the lanes past
/// the count repeat lane 0 and are overwritten or ignored by the caller).
///
/// # Safety
/// 8 floats readable at `p`, 8 writable at `out`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn compress8(p: *const f32, byte: usize, out: *mut f32) {
    let table = &crate::matmul::sparse_body::PACK[byte & 0xff];
    // SAFETY: the caller guarantees 8 floats at p and room for 8 at out;
    // the table row holds 8 u32s.
    unsafe {
        let idx = _mm256_loadu_si256(table.as_ptr().cast::<__m256i>());
        _mm256_storeu_ps(out, _mm256_permutevar8x32_ps(_mm256_loadu_ps(p), idx));
    }
}

sparse_body!(
    "avx2,fma",
    __m256,
    lanes = 8,
    compress = compress8,
    transpose = transpose8
);
