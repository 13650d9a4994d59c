//! AVX-512F: 16 lanes.
use crate::softmax::body::expc;
use core::arch::x86_64::*;

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
fn add(a: __m512, b: __m512) -> __m512 {
    _mm512_add_ps(a, b)
}
#[target_feature(enable = "avx512f,fma")]
#[inline]
fn sub(a: __m512, b: __m512) -> __m512 {
    _mm512_sub_ps(a, b)
}
#[target_feature(enable = "avx512f,fma")]
#[inline]
fn mul(a: __m512, b: __m512) -> __m512 {
    _mm512_mul_ps(a, b)
}
#[target_feature(enable = "avx512f,fma")]
#[inline]
fn max(a: __m512, b: __m512) -> __m512 {
    _mm512_max_ps(a, b)
}
#[target_feature(enable = "avx512f,fma")]
#[inline]
fn hsum(v: __m512) -> f32 {
    _mm512_reduce_add_ps(v)
}
#[target_feature(enable = "avx512f,fma")]
#[inline]
fn hmax(v: __m512) -> f32 {
    _mm512_reduce_max_ps(v)
}
/// Vector exp; see `expc` for the method and the module docs for its bound.
#[target_feature(enable = "avx512f,fma")]
#[inline]
fn exp(x: __m512) -> __m512 {
    let xc = _mm512_min_ps(_mm512_max_ps(x, splat(expc::LO)), splat(expc::HI));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(mul(
        xc,
        splat(expc::LOG2E),
    ));
    let r = _mm512_fnmadd_ps(n, splat(expc::LN2_HI), xc);
    let r = _mm512_fnmadd_ps(n, splat(expc::LN2_LO), r);
    let mut p = splat(expc::P[0]);
    for c in &expc::P[1..] {
        p = _mm512_fmadd_ps(p, r, splat(*c));
    }
    let y = _mm512_fmadd_ps(p, mul(r, r), add(r, splat(1.0)));
    let ni = _mm512_cvtps_epi32(n);
    let n1 = _mm512_srai_epi32::<1>(ni);
    let n2 = _mm512_sub_epi32(ni, n1);
    let bias = _mm512_set1_epi32(127);
    let s1 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n1, bias)));
    let s2 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n2, bias)));
    let y = mul(mul(y, s1), s2);
    let y = _mm512_mask_blend_ps(
        _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, splat(expc::LO)),
        y,
        _mm512_setzero_ps(),
    );
    let y = _mm512_mask_blend_ps(
        _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, splat(expc::HI)),
        y,
        splat(f32::INFINITY),
    );
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x), y, x)
}

softmax_body!("avx512f,fma", __m512, lanes = 16);
