//! AVX2+FMA: 8 lanes.
use crate::softmax::body::expc;
use core::arch::x86_64::*;

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
fn add(a: __m256, b: __m256) -> __m256 {
    _mm256_add_ps(a, b)
}
#[target_feature(enable = "avx2,fma")]
#[inline]
fn sub(a: __m256, b: __m256) -> __m256 {
    _mm256_sub_ps(a, b)
}
#[target_feature(enable = "avx2,fma")]
#[inline]
fn mul(a: __m256, b: __m256) -> __m256 {
    _mm256_mul_ps(a, b)
}
#[target_feature(enable = "avx2,fma")]
#[inline]
fn max(a: __m256, b: __m256) -> __m256 {
    _mm256_max_ps(a, b)
}
#[target_feature(enable = "avx2,fma")]
#[inline]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s)))
}
#[target_feature(enable = "avx2,fma")]
#[inline]
fn hmax(v: __m256) -> f32 {
    let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_max_ss(s, _mm_shuffle_ps::<0b01>(s, s)))
}
/// Vector exp; see `expc` for the method and the module docs for its bound.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn exp(x: __m256) -> __m256 {
    let xc = _mm256_min_ps(_mm256_max_ps(x, splat(expc::LO)), splat(expc::HI));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(mul(
        xc,
        splat(expc::LOG2E),
    ));
    let r = _mm256_fnmadd_ps(n, splat(expc::LN2_HI), xc);
    let r = _mm256_fnmadd_ps(n, splat(expc::LN2_LO), r);
    let mut p = splat(expc::P[0]);
    for c in &expc::P[1..] {
        p = _mm256_fmadd_ps(p, r, splat(*c));
    }
    let y = _mm256_fmadd_ps(p, mul(r, r), add(r, splat(1.0)));
    let ni = _mm256_cvtps_epi32(n);
    let n1 = _mm256_srai_epi32::<1>(ni);
    let n2 = _mm256_sub_epi32(ni, n1);
    let bias = _mm256_set1_epi32(127);
    let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias)));
    let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias)));
    let y = mul(mul(y, s1), s2);
    let y = _mm256_blendv_ps(
        y,
        _mm256_setzero_ps(),
        _mm256_cmp_ps::<_CMP_LT_OQ>(x, splat(expc::LO)),
    );
    let y = _mm256_blendv_ps(
        y,
        splat(f32::INFINITY),
        _mm256_cmp_ps::<_CMP_GT_OQ>(x, splat(expc::HI)),
    );
    _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x))
}

softmax_body!("avx2,fma", __m256, lanes = 8);
