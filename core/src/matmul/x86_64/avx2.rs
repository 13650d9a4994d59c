//! AVX2+FMA: 6 x 16 tile (12 ymm accumulators, 2 for B, 1 broadcast of A:
//! 15 of the 16 registers).
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

gemm_body!("avx2,fma", __m256, lanes = 8, vecs = 2);
sparse_body!("avx2,fma", __m256, lanes = 8);
