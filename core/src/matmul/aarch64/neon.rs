//! NEON: 6 x 16 tile (24 q-register accumulators, 4 for B, 1 broadcast of A:
//! 29 of the 32 registers); B stored transposed is packed 4 x 4 blocks at a
//! time through `transpose4`.
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
/// The first `n` (<= 4) floats at `p`, the other lanes zero.
///
/// # Safety
/// `p..p + n` is readable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn load_part(p: *const f32, n: usize) -> float32x4_t {
    let mut t = [0.0f32; 4];
    for (i, x) in t.iter_mut().take(n).enumerate() {
        // SAFETY: i < n: inside the caller's range.
        *x = unsafe { *p.add(i) };
    }
    // SAFETY: t holds 4 floats.
    unsafe { vld1q_f32(t.as_ptr()) }
}
/// Writes the first `n` (<= 4) lanes of `v` to `p`.
///
/// # Safety
/// `p..p + n` is writable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn store_part(p: *mut f32, v: float32x4_t, n: usize) {
    let mut t = [0.0f32; 4];
    // SAFETY: t holds 4 floats.
    unsafe { vst1q_f32(t.as_mut_ptr(), v) };
    for (i, x) in t.iter().take(n).enumerate() {
        // SAFETY: i < n: inside the caller's range.
        unsafe { *p.add(i) = *x };
    }
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

/// # Safety
/// `p..p + 4` is readable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn nonzero_mask(p: *const f32) -> u32 {
    // SAFETY: the caller guarantees 4 readable floats.
    let v = unsafe { vld1q_f32(p) };
    // Lanes equal to ±0 become all ones; NaN compares unequal, so nonzero.
    let zero = vceqq_f32(v, vdupq_n_f32(0.0));
    let bits: [u32; 4] = [1, 2, 4, 8];
    // SAFETY: bits holds 4 u32.
    let weights = unsafe { vld1q_u32(bits.as_ptr()) };
    0xf & !vaddvq_u32(vandq_u32(zero, weights))
}

/// The 4 x 4 transpose of `r` (row i, lane q → row q, lane i): transpose
/// 2 x 2 blocks of floats, then of 64-bit pairs.
#[target_feature(enable = "neon")]
#[inline]
fn transpose4(r: [float32x4_t; 4]) -> [float32x4_t; 4] {
    let t0 = vreinterpretq_f64_f32(vtrn1q_f32(r[0], r[1]));
    let t1 = vreinterpretq_f64_f32(vtrn2q_f32(r[0], r[1]));
    let t2 = vreinterpretq_f64_f32(vtrn1q_f32(r[2], r[3]));
    let t3 = vreinterpretq_f64_f32(vtrn2q_f32(r[2], r[3]));
    [
        vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)),
        vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)),
        vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)),
        vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)),
    ]
}

gemm_body!(
    "neon",
    float32x4_t,
    lanes = 4,
    vecs = 4,
    transpose = transpose4
);
sparse_body!("neon", float32x4_t, lanes = 4);
