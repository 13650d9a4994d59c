//! NEON: 6 x 16 tile (24 q-register accumulators, 4 for B, 1 broadcast of A:
//! 29 of the 32 registers).
use core::arch::aarch64::*;

#[target_feature(enable = "neon")]
#[inline]
fn zero() -> float32x4_t {
    vdupq_n_f32(0.0)
}
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
    // SAFETY: the caller guarantees 4 readable floats; ld1 has no alignment need.
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
fn fma(a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
    vfmaq_f32(c, a, b)
}
#[target_feature(enable = "neon")]
#[inline]
fn add(a: float32x4_t, b: float32x4_t) -> float32x4_t {
    vaddq_f32(a, b)
}
#[target_feature(enable = "neon")]
#[inline]
fn hsum(v: float32x4_t) -> f32 {
    vaddvq_f32(v)
}

gemm_body!("neon", float32x4_t, lanes = 4, vecs = 4);
