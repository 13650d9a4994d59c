//! Single-precision matrix products: `C = A·B`, `A·Bᵀ` and `Aᵀ·B`, overwriting
//! or accumulating into `C` — the three products that dense-layer forward and
//! backward passes need.
//!
//! A is m x k, B is k x n, C is m x n, all row-major. A transposed operand is
//! stored transposed (`matmul_bt` takes B as n x k; `matmul_at` takes A as
//! k x m). [`Gemm`] describes the general case with leading dimensions, so
//! a caller can work on a sub-matrix.
//!
//! Each product has one safe entry point that checks every length before it
//! writes anything and then runs on [`Isa::active`]; the `_on` variants pick a
//! path explicitly (tests and benches reach every ISA with them). The vector
//! paths share one register-blocked micro-kernel (`body.rs`): a 6-row tile of
//! C, two to four vectors wide, over blocks of A and panels of B packed
//! contiguous (B read in place when that pays). Edges and packing are handled
//! in `pack.rs` and the driver; the scalar `reference.rs` is the
//! specification they are tested against.

use crate::par::{split_rows, Parallel};
use crate::{Error, Isa};

#[macro_use]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod body;
#[macro_use]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod sparse_body;
#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod pack;
pub mod reference;
pub mod sparse;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

/// Rows of the micro-kernel tile on every vector path; row splits for
/// parallel work fall on multiples of it so tiles never change with the split.
pub const TILE_ROWS: usize = 6;

/// The dimensions of a tightly packed product: A is m x k, B is k x n, C is m x n.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of A, rows of B (the summed dimension).
    pub k: usize,
    /// Columns of B and C.
    pub n: usize,
}

impl Dims {
    /// `Dims { m, k, n }`.
    pub const fn new(m: usize, k: usize, n: usize) -> Self {
        Dims { m, k, n }
    }
    /// Floating-point operations of one product (2·m·k·n).
    pub const fn flops(self) -> u64 {
        2 * self.m as u64 * self.k as u64 * self.n as u64
    }
}

/// A general product `C (+)= op(A) · op(B)` with leading dimensions.
///
/// `op(A)` is m x k: stored row-major as m x k with row stride `lda`, or, when
/// `trans_a`, as k x m (row stride `lda`). Likewise `op(B)` is k x n, stored
/// k x n or (when `trans_b`) n x k, with row stride `ldb`. C is m x n with row
/// stride `ldc`. With `accumulate` the product is added to C, else C is overwritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemm {
    /// Rows of op(A) and C.
    pub m: usize,
    /// The summed dimension.
    pub k: usize,
    /// Columns of op(B) and C.
    pub n: usize,
    /// A is stored k x m.
    pub trans_a: bool,
    /// B is stored n x k.
    pub trans_b: bool,
    /// Row stride of A as stored.
    pub lda: usize,
    /// Row stride of B as stored.
    pub ldb: usize,
    /// Row stride of C.
    pub ldc: usize,
    /// Add into C instead of overwriting it.
    pub accumulate: bool,
}

/// Elements a stored `rows x cols` matrix with row stride `ld` spans.
fn span(rows: usize, cols: usize, ld: usize) -> Result<usize, Error> {
    if rows == 0 || cols == 0 {
        return Ok(0);
    }
    if ld < cols {
        return Err(Error::ShapeMismatch {
            expected: cols,
            got: ld,
        });
    }
    (rows - 1)
        .checked_mul(ld)
        .and_then(|x| x.checked_add(cols))
        .ok_or(Error::BadDimension)
}

fn need(len: usize, needed: usize) -> Result<(), Error> {
    if len < needed {
        Err(Error::ShapeMismatch {
            expected: needed,
            got: len,
        })
    } else {
        Ok(())
    }
}

impl Gemm {
    /// A tightly packed product with the given transposes.
    pub const fn packed(d: Dims, trans_a: bool, trans_b: bool, accumulate: bool) -> Self {
        Gemm {
            m: d.m,
            k: d.k,
            n: d.n,
            trans_a,
            trans_b,
            lda: if trans_a { d.m } else { d.k },
            ldb: if trans_b { d.k } else { d.n },
            ldc: d.n,
            accumulate,
        }
    }

    /// Checks the three slices against the description: nothing is read or
    /// written unless this returns `Ok`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when a slice is too short or a stride is smaller
    /// than its row; [`Error::BadDimension`] when a size overflows.
    pub fn check(&self, a: usize, b: usize, c: usize) -> Result<(), Error> {
        let (ar, ac) = if self.trans_a {
            (self.k, self.m)
        } else {
            (self.m, self.k)
        };
        let (br, bc) = if self.trans_b {
            (self.n, self.k)
        } else {
            (self.k, self.n)
        };
        // An empty product reads nothing from A and B.
        if self.m != 0 && self.n != 0 {
            need(a, span(ar, ac, self.lda)?)?;
            need(b, span(br, bc, self.ldb)?)?;
        }
        need(c, span(self.m, self.n, self.ldc)?)
    }

    /// Strides of the logical m x k A and k x n B: (row, column) each.
    pub(crate) fn strides(&self) -> (usize, usize, usize, usize) {
        let (rsa, csa) = if self.trans_a {
            (1, self.lda)
        } else {
            (self.lda, 1)
        };
        let (rsb, csb) = if self.trans_b {
            (1, self.ldb)
        } else {
            (self.ldb, 1)
        };
        (rsa, csa, rsb, csb)
    }
}

/// `C = A·B`: A m x k, B k x n, C m x n, row-major.
///
/// Runs on [`Isa::active`] (scalar, AVX2+FMA, AVX-512F or NEON).
///
/// # Errors
/// [`Error::ShapeMismatch`] when a slice is shorter than its shape needs; C is
/// then left untouched. m, k or n may be zero (k = 0 gives C = 0).
///
/// ```
/// use ember::matmul::{matmul, Dims};
/// let a = [1.0, 2.0, 3.0, 4.0]; // 2 x 2
/// let b = [1.0, 0.0, 0.0, 1.0]; // identity
/// let mut c = [0.0; 4];
/// matmul(&a, &b, &mut c, Dims::new(2, 2, 2))?;
/// assert_eq!(c, a);
/// # Ok::<(), ember::Error>(())
/// ```
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], d: Dims) -> Result<(), Error> {
    gemm_on(
        Isa::active(),
        &Gemm::packed(d, false, false, false),
        a,
        b,
        c,
    )
}

/// `C += A·B` (see [`matmul`]).
///
/// # Errors
/// As [`matmul`].
pub fn matmul_acc(a: &[f32], b: &[f32], c: &mut [f32], d: Dims) -> Result<(), Error> {
    gemm_on(Isa::active(), &Gemm::packed(d, false, false, true), a, b, c)
}

/// `C = A·Bᵀ`: A m x k, B stored n x k, C m x n.
///
/// # Errors
/// As [`matmul`].
pub fn matmul_bt(a: &[f32], b: &[f32], c: &mut [f32], d: Dims) -> Result<(), Error> {
    gemm_on(Isa::active(), &Gemm::packed(d, false, true, false), a, b, c)
}

/// `C += A·Bᵀ` (see [`matmul_bt`]).
///
/// # Errors
/// As [`matmul`].
pub fn matmul_bt_acc(a: &[f32], b: &[f32], c: &mut [f32], d: Dims) -> Result<(), Error> {
    gemm_on(Isa::active(), &Gemm::packed(d, false, true, true), a, b, c)
}

/// `C = Aᵀ·B`: A stored k x m, B k x n, C m x n.
///
/// # Errors
/// As [`matmul`].
pub fn matmul_at(a: &[f32], b: &[f32], c: &mut [f32], d: Dims) -> Result<(), Error> {
    gemm_on(Isa::active(), &Gemm::packed(d, true, false, false), a, b, c)
}

/// `C += Aᵀ·B` (see [`matmul_at`]).
///
/// # Errors
/// As [`matmul`].
pub fn matmul_at_acc(a: &[f32], b: &[f32], c: &mut [f32], d: Dims) -> Result<(), Error> {
    gemm_on(Isa::active(), &Gemm::packed(d, true, false, true), a, b, c)
}

/// The general product on [`Isa::active`].
///
/// # Errors
/// As [`Gemm::check`].
pub fn gemm(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) -> Result<(), Error> {
    gemm_on(Isa::active(), g, a, b, c)
}

/// The general product on a chosen path; tests and benches use this to reach every ISA.
///
/// # Errors
/// As [`Gemm::check`], and [`Error::IsaUnavailable`] when `isa` cannot run here.
pub fn gemm_on(isa: Isa, g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) -> Result<(), Error> {
    g.check(a.len(), b.len(), c.len())?; // nothing is written before this line
    run(isa, g, a, b, c, g.m)
}

/// Runs a checked product.
/// `top_m` is the row count before any split (see `body.rs`).
fn run(isa: Isa, g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32], top_m: usize) -> Result<(), Error> {
    let _ = top_m; // unused on targets with no vector path
    match isa {
        Isa::Scalar | Isa::CortexMDsp if isa.is_supported() => reference::gemm(g, a, b, c),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma if isa.is_supported() => {
            // SAFETY: is_supported() has just confirmed avx2 and fma on this CPU;
            // the slice lengths were proven by Gemm::check in gemm_on/gemm_par_on.
            unsafe { x86_64::avx2::gemm(g, a, b, c, top_m) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if isa.is_supported() => {
            // SAFETY: is_supported() has just confirmed avx512f on this CPU;
            // lengths proven by Gemm::check.
            unsafe { x86_64::avx512::gemm(g, a, b, c, top_m) }
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if isa.is_supported() => {
            // SAFETY: is_supported() has just confirmed neon; lengths proven by Gemm::check.
            unsafe { aarch64::neon::gemm(g, a, b, c, top_m) }
        }
        _ => return Err(Error::IsaUnavailable),
    }
    Ok(())
}

/// The general product on [`Isa::active`], split over the rows of C with `par`.
///
/// Each row of C is computed exactly as [`gemm`] computes it, so the result is
/// the same bits for every thread count.
///
/// # Errors
/// As [`gemm`].
pub fn gemm_par(
    par: &dyn Parallel,
    g: &Gemm,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) -> Result<(), Error> {
    gemm_par_on(par, Isa::active(), g, a, b, c)
}

/// [`gemm_par`] on a chosen path.
///
/// # Errors
/// As [`gemm_on`].
pub fn gemm_par_on(
    par: &dyn Parallel,
    isa: Isa,
    g: &Gemm,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) -> Result<(), Error> {
    g.check(a.len(), b.len(), c.len())?;
    if !isa.is_supported() {
        return Err(Error::IsaUnavailable);
    }
    split(par, par.threads(), isa, g, g.m, a, b, c);
    Ok(())
}

/// Multiply-adds below which [`gemm_par`] does not split a product.
const SPLIT_MIN_MACS: usize = 1 << 18;

/// Recursive row split of a checked product. Products of fewer than
/// [`SPLIT_MIN_MACS`] multiply-adds (~1.5 us on one core) stay on the
/// calling thread: the fork and the operands' trip to the other core cost
/// more than the half saved (the 64x128x10 layer of a 784-128-10 net, whose
/// products run between the first layer's: an epoch at 2 threads took
/// 0.125 s split, 0.118 s not).
#[allow(clippy::too_many_arguments)]
fn split(
    par: &dyn Parallel,
    parts: usize,
    isa: Isa,
    g: &Gemm,
    top_m: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) {
    let small = g.m.saturating_mul(g.n).saturating_mul(g.k) < SPLIT_MIN_MACS;
    let first = if small {
        0
    } else {
        split_rows(g.m, parts, TILE_ROWS)
    };
    if first == 0 {
        // Checked by the caller and isa confirmed supported: run cannot fail.
        let _ = run(isa, g, a, b, c, top_m);
        return;
    }
    let (rsa, _, _, _) = g.strides();
    let (c_lo, c_hi) = c.split_at_mut(first * g.ldc);
    // first < m, so first * rsa lies within A (its span covers row m-1).
    let a_hi = a.get(first * rsa..).unwrap_or(&[]);
    let lo = Gemm { m: first, ..*g };
    let hi = Gemm {
        m: g.m - first,
        ..*g
    };
    let parts_lo = parts / 2;
    let parts_hi = parts - parts_lo;
    par.join(
        &mut || split(par, parts_lo, isa, &lo, top_m, a, b, c_lo),
        &mut || split(par, parts_hi, isa, &hi, top_m, a_hi, b, c_hi),
    );
}
