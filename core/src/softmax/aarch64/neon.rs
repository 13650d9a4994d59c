//! NEON: 4 lanes.
use crate::softmax::body::expc;
use core::arch::aarch64::*;

#[target_feature(enable = "neon")]
#[inline]
fn splat(x: f32) -> float32x4_t {
    vdupq_n_f32(x)
}
/// # Safety
/// `p..p + 4` is readable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn load(p: *const f32) -> float32x4_t {
    // SAFETY: the caller guarantees 4 readable floats.
    unsafe { vld1q_f32(p) }
}
/// # Safety
/// `p..p + 4` is writable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn store(p: *mut f32, v: float32x4_t) {
    // SAFETY: the caller guarantees 4 writable floats.
    unsafe { vst1q_f32(p, v) }
}
#[target_feature(enable = "neon")]
#[inline]
fn add(a: float32x4_t, b: float32x4_t) -> float32x4_t {
    vaddq_f32(a, b)
}
#[target_feature(enable = "neon")]
#[inline]
fn sub(a: float32x4_t, b: float32x4_t) -> float32x4_t {
    vsubq_f32(a, b)
}
#[target_feature(enable = "neon")]
#[inline]
fn mul(a: float32x4_t, b: float32x4_t) -> float32x4_t {
    vmulq_f32(a, b)
}
#[target_feature(enable = "neon")]
#[inline]
fn max(a: float32x4_t, b: float32x4_t) -> float32x4_t {
    vmaxq_f32(a, b)
}
#[target_feature(enable = "neon")]
#[inline]
fn hsum(v: float32x4_t) -> f32 {
    vaddvq_f32(v)
}
#[target_feature(enable = "neon")]
#[inline]
fn hmax(v: float32x4_t) -> f32 {
    vmaxvq_f32(v)
}
/// Vector exp; see `expc` for the method and the module docs for its bound.
#[target_feature(enable = "neon")]
#[inline]
fn exp(x: float32x4_t) -> float32x4_t {
    let xc = vminq_f32(vmaxq_f32(x, splat(expc::LO)), splat(expc::HI));
    let n = vrndnq_f32(mul(xc, splat(expc::LOG2E)));
    let r = vfmsq_f32(xc, n, splat(expc::LN2_HI));
    let r = vfmsq_f32(r, n, splat(expc::LN2_LO));
    let mut p = splat(expc::P[0]);
    for c in &expc::P[1..] {
        p = vfmaq_f32(splat(*c), p, r);
    }
    let y = vfmaq_f32(add(r, splat(1.0)), p, mul(r, r));
    let ni = vcvtq_s32_f32(n);
    let n1 = vshrq_n_s32::<1>(ni);
    let n2 = vsubq_s32(ni, n1);
    let bias = vdupq_n_s32(127);
    let s1 = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(n1, bias)));
    let s2 = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(n2, bias)));
    let y = mul(mul(y, s1), s2);
    let y = vbslq_f32(vcltq_f32(x, splat(expc::LO)), splat(0.0), y);
    let y = vbslq_f32(vcgtq_f32(x, splat(expc::HI)), splat(f32::INFINITY), y);
    vbslq_f32(vceqq_f32(x, x), y, x)
}

softmax_body!("neon", float32x4_t, lanes = 4);
