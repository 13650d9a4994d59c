//! Products whose left operand is mostly zeros: the first layer of an MLP on
//! images, whose inputs are pixels (four in five MNIST pixels are 0).
//!
//! - [`spmm`]: `Y (+)= X·W`, the dense layer's forward pass.
//! - [`spmm_at`]: `dW = Xᵀ·dY`, its weight gradient.
//!
//! Both skip the zeros of X and cost time in proportion to X's nonzeros
//! rather than its size. Skipping is exact for finite W and dY: a zero of
//! X contributes +0 to a dense sum as well. (A non-finite weight in a row
//! whose input is zero does not reach the output here, where a dense product
//! would make it NaN.) The sums run in order of increasing index, one chain
//! per element, so results do not depend on the thread count; they may differ
//! from the dense kernels' by rounding. [`density`] tells a caller when
//! these pay: [`SPARSE_DENSITY`] is the crossover measured in
//! `benches/matmul.rs`. [`crate::Dense`] switches to them by itself
//! ([`worth_it`]).

use super::Dims;
use crate::par::{for_row_shares, Parallel};
use crate::{Error, Isa};
use core::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether [`crate::Dense`] may use the sparse products (on by default).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Lets [`crate::Dense`] use the sparse products for sparse inputs, or not
/// (to measure the dense kernels alone, say). Process-wide, like
/// [`Isa::force`].
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether a layer whose input is `x` and whose output has `n` columns
/// should use the sparse products: they are enabled, x is sparse enough
/// (see [`SPARSE_DENSITY`]) and n wide enough (see [`SPARSE_MIN_WIDTH`]).
pub fn worth_it(x: &[f32], n: usize) -> bool {
    enabled() && n >= SPARSE_MIN_WIDTH && density(x) < SPARSE_DENSITY
}

/// Below this fraction of nonzeros in X, [`spmm`] and [`spmm_at`] beat the
/// dense products on the vector paths (measured at the MNIST layer shapes).
pub const SPARSE_DENSITY: f32 = 0.35;

/// Narrower outputs than this are left to the dense products: walking a
/// row's list of nonzeros pays off over many columns, and on an output of
/// 10 (a classifier's logits) the sparse products took 1.4–3× as long as
/// the dense ones even at 19% nonzeros (`benches/matmul.rs`, `sparse_*` at
/// 64x128x10).
pub const SPARSE_MIN_WIDTH: usize = 64;

/// The fraction of nonzero elements of `x`, estimated from about 512 of
/// them spread evenly over it (every one when x is shorter; 0 for an empty
/// slice): within ±0.02 or so of MNIST's 0.19, plenty for a switch at 0.35,
/// and a sample 4× larger cost ~2 µs per layer call, on one thread, twice
/// per training step. NaN counts as nonzero.
pub fn density(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    // An odd stride, so the sample does not follow rows of even width.
    let step = (x.len() / 512) | 1;
    let (mut seen, mut nz) = (0usize, 0usize);
    for v in x.iter().step_by(step) {
        seen += 1;
        nz += usize::from(*v != 0.0);
    }
    nz as f32 / seen as f32
}

/// `len` holds at least a·b floats.
fn need(len: usize, a: usize, b: usize) -> Result<(), Error> {
    let n = a.checked_mul(b).ok_or(Error::BadDimension)?;
    if len < n {
        return Err(Error::ShapeMismatch {
            expected: n,
            got: len,
        });
    }
    Ok(())
}

/// `Y (+)= X·W` with the zeros of X skipped: X m x k, W k x n, Y m x n,
/// row-major and tightly packed; rows of Y are split over `par`.
///
/// # Errors
/// [`Error::ShapeMismatch`] when a slice is too short (Y is then untouched),
/// [`Error::IsaUnavailable`] when `isa` cannot run here.
///
/// ```
/// use ember::matmul::{sparse::spmm, Dims};
/// use ember::{Isa, Serial};
/// let x = [0.0, 2.0, 0.0]; // 1 x 3, mostly zeros
/// let w = [1.0, 1.0, 10.0, 20.0, 5.0, 5.0]; // 3 x 2
/// let mut y = [0.5, 0.5];
/// spmm(&Serial, Isa::active(), &x, &w, &mut y, Dims::new(1, 3, 2), true)?;
/// assert_eq!(y, [20.5, 40.5]);
/// # Ok::<(), ember::Error>(())
/// ```
pub fn spmm(
    par: &dyn Parallel,
    isa: Isa,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    d: Dims,
    accumulate: bool,
) -> Result<(), Error> {
    need(x.len(), d.m, d.k)?;
    need(w.len(), d.k, d.n)?;
    need(y.len(), d.m, d.n)?;
    if !isa.is_supported() {
        return Err(Error::IsaUnavailable);
    }
    if d.m == 0 || d.n == 0 {
        return Ok(());
    }
    for_row_shares(par, &mut y[..d.m * d.n], d.n, 1, &|r0, ys| {
        let m = ys.len() / d.n;
        let xs = &x[r0 * d.k..(r0 + m) * d.k];
        spmm_run(isa, xs, w, ys, Dims { m, ..d }, accumulate);
    });
    Ok(())
}

/// Runs a checked forward product on a supported `isa`.
fn spmm_run(isa: Isa, x: &[f32], w: &[f32], y: &mut [f32], d: Dims, accumulate: bool) {
    let _ = isa;
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let (m, k, n) = (d.m, d.k, d.n);
    #[cfg(target_arch = "x86_64")]
    match isa {
        Isa::Avx2Fma => {
            // SAFETY: the caller confirmed the ISA is supported and checked the lengths.
            return unsafe { super::x86_64::avx2::spmm(x, w, y, m, k, n, accumulate) };
        }
        Isa::Avx512 => {
            // SAFETY: as above.
            return unsafe { super::x86_64::avx512::spmm(x, w, y, m, k, n, accumulate) };
        }
        _ => {}
    }
    #[cfg(target_arch = "aarch64")]
    if isa == Isa::Neon {
        // SAFETY: neon confirmed by the caller; lengths checked.
        return unsafe { super::aarch64::neon::spmm(x, w, y, m, k, n, accumulate) };
    }
    reference_spmm(x, w, y, d, accumulate)
}

/// `dW = Xᵀ·dY` with the zeros of X skipped: X (the layer input) b x k, dY
/// b x n, dW k x n, where `d = Dims::new(k, b, n)` as for the dense
/// [`super::matmul_at`]; rows of dW are split over `par`.
///
/// # Errors
/// As [`spmm`].
pub fn spmm_at(
    par: &dyn Parallel,
    isa: Isa,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    d: Dims,
) -> Result<(), Error> {
    let (k, b, n) = (d.m, d.k, d.n);
    need(x.len(), b, k)?;
    need(dy.len(), b, n)?;
    need(dw.len(), k, n)?;
    if !isa.is_supported() {
        return Err(Error::IsaUnavailable);
    }
    if k == 0 || n == 0 {
        return Ok(());
    }
    for_row_shares(par, &mut dw[..k * n], n, 8, &|p_lo, dws| {
        spmm_at_run(isa, x, dy, dws, d, p_lo, dws.len() / n);
    });
    Ok(())
}

/// Runs rows `p_lo..p_lo + rows` of a checked gradient product.
fn spmm_at_run(isa: Isa, x: &[f32], dy: &[f32], dw: &mut [f32], d: Dims, p_lo: usize, rows: usize) {
    let _ = isa;
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let (k, b, n) = (d.m, d.k, d.n);
    #[cfg(target_arch = "x86_64")]
    match isa {
        Isa::Avx2Fma => {
            // SAFETY: ISA confirmed by the caller, lengths checked, and
            // p_lo + rows <= k by the split.
            return unsafe { super::x86_64::avx2::spmm_at(x, dy, dw, b, k, n, p_lo, rows) };
        }
        Isa::Avx512 => {
            // SAFETY: as above.
            return unsafe { super::x86_64::avx512::spmm_at(x, dy, dw, b, k, n, p_lo, rows) };
        }
        _ => {}
    }
    #[cfg(target_arch = "aarch64")]
    if isa == Isa::Neon {
        // SAFETY: as above.
        return unsafe { super::aarch64::neon::spmm_at(x, dy, dw, b, k, n, p_lo, rows) };
    }
    reference_spmm_at(x, dy, dw, d, p_lo, rows)
}

/// The specification of [`spmm`]: for each element of Y, the sum over
/// increasing p of the products with nonzero `x[r][p]`, added to Y (or
/// stored) at the end. The lengths must have been checked.
pub fn reference_spmm(x: &[f32], w: &[f32], y: &mut [f32], d: Dims, accumulate: bool) {
    let (k, n) = (d.k, d.n);
    for r in 0..d.m {
        for j in 0..n {
            let mut sum = 0.0f32;
            for p in 0..k {
                let v = x[r * k + p];
                if v != 0.0 {
                    sum += v * w[p * n + j];
                }
            }
            let out = &mut y[r * n + j];
            *out = if accumulate { *out + sum } else { sum };
        }
    }
}

/// The specification of [`spmm_at`] for rows `p_lo..p_lo + rows` of dW
/// (`dw` holds just those rows): each element is the sum over increasing
/// batch row of the products with nonzero x.
pub fn reference_spmm_at(x: &[f32], dy: &[f32], dw: &mut [f32], d: Dims, p_lo: usize, rows: usize) {
    let (k, b, n) = (d.m, d.k, d.n);
    for q in 0..rows {
        for j in 0..n {
            let mut sum = 0.0f32;
            for r in 0..b {
                let v = x[r * k + p_lo + q];
                if v != 0.0 {
                    sum += v * dy[r * n + j];
                }
            }
            dw[q * n + j] = sum;
        }
    }
}
