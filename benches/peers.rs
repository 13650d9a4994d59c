//! What the matmul benches share: the shapes, the seeded data, and the two
//! peers (a naive loop and the `matrixmultiply` crate) on the same layouts.

// Each bench that includes this module uses part of it.
#![allow(dead_code)]

use ember::matmul::Gemm;

/// The shapes (m, k, n) of issue 2 and of training.
pub const SHAPES: &[(usize, usize, usize)] = &[
    (1, 784, 128),
    (64, 784, 128),
    (128, 784, 128),
    (256, 784, 256),
    (256, 128, 10),
    (512, 512, 512),
    // d_weight of 784-128-10's first layer at batch 64 (Aᵀ·B with m = 784, k = 64).
    (784, 64, 128),
];

/// `n` seeded values in [-0.5, 0.5).
pub fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / 16_777_216.0 - 0.5
        })
        .collect()
}

/// The peer: a naive i-p-j loop over the same layout (the obvious Rust code).
pub fn naive(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (m, k, n) = (g.m, g.k, g.n);
    c[..m * n].fill(0.0);
    for i in 0..m {
        for p in 0..k {
            let av = if g.trans_a {
                a[p * m + i]
            } else {
                a[i * k + p]
            };
            let row = &mut c[i * n..(i + 1) * n];
            if g.trans_b {
                for (j, x) in row.iter_mut().enumerate() {
                    *x += av * b[j * k + p];
                }
            } else {
                for (x, bv) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                    *x += av * bv;
                }
            }
        }
    }
}

/// The peer: the `gemm` crate (faer's kernels; AVX-512 with its x86-v4
/// feature), one thread, on the same layout through its strides.
pub fn gemm_crate(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (m, k, n) = (g.m, g.k, g.n);
    // (column stride, row stride) of each operand.
    let (lhs_cs, lhs_rs) = if g.trans_a {
        (m as isize, 1)
    } else {
        (1, k as isize)
    };
    let (rhs_cs, rhs_rs) = if g.trans_b {
        (k as isize, 1)
    } else {
        (1, n as isize)
    };
    // SAFETY: the slices hold m*k, k*n and m*n elements, matching the strides;
    // dst = 0 * dst + 1 * lhs * rhs, dst not read.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            lhs_cs,
            lhs_rs,
            b.as_ptr(),
            rhs_cs,
            rhs_rs,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// The peer: matrixmultiply's sgemm on the same layout, through its strides.
pub fn mm(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (m, k, n) = (g.m, g.k, g.n);
    let (rsa, csa) = if g.trans_a {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (rsb, csb) = if g.trans_b {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    // SAFETY: the slices hold m*k, k*n and m*n elements, matching the strides.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        )
    }
}
