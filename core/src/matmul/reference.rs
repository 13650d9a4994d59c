//! The specification: plain loops, obviously right, never clever. Every vector
//! path is tested against this, and it is the path on targets without SIMD.
#![forbid(unsafe_code)]

use super::Gemm;

/// `C (+)= op(A)·op(B)` as described by `g`; the lengths must have passed `g.check`.
///
/// Sums in order of increasing `p`, in f32.
pub fn gemm(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (rsa, csa, rsb, csb) = g.strides();
    for i in 0..g.m {
        let row = &mut c[i * g.ldc..i * g.ldc + g.n];
        for (j, out) in row.iter_mut().enumerate() {
            let mut sum = 0.0f32;
            for p in 0..g.k {
                sum += a[i * rsa + p * csa] * b[p * rsb + j * csb];
            }
            *out = if g.accumulate { *out + sum } else { sum };
        }
    }
}
