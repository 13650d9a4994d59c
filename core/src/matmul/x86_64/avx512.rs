//! AVX-512F: 6 x 32 tile (12 zmm accumulators, 2 for B, 1 broadcast of A);
//! the same register budget as AVX2 at twice the width.
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

gemm_body!("avx512f,fma", __m512, lanes = 16, vecs = 2);
sparse_body!("avx512f,fma", __m512, lanes = 16);
