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
//! would make it NaN.) The sums run in order of increasing index (the
//! forward product's in two halves added once, see [`k_cut`]) in an order
//! fixed by the shape, so results do not depend on the thread count; they
//! may differ from the dense kernels' by rounding. [`density`] tells a caller when
//! these pay: [`SPARSE_DENSITY`] is the crossover measured in
//! `benches/matmul.rs`. [`crate::Dense`] switches to them by itself
//! ([`worth_it`]).

use super::Dims;
use crate::par::{for_row_shares, Parallel};
use crate::{Error, Isa};
use core::ops::Range;
use core::sync::atomic::{AtomicBool, Ordering};

/// Columns of X (rows of W) per block of the vector paths' forward product,
/// counted from the first column a call sums: each block's sum is added to
/// Y on its own. Each block stores every row of Y once: at (64,784,128) on Sapphire
/// Rapids, one thread, the AVX-512 product took 57 us with blocks of 32,
/// 47 with 64, 40.5-41 with 128, 42-44 with 256 and 44-46 with 512 (the
/// AVX2 product 57-59 us for 64 and 128, 62-65 from 256 on).
pub(crate) const FPB: usize = 128;

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

/// The fraction of nonzero elements of `x`, estimated from [`SAMPLE_RUNS`]
/// runs of 16 consecutive elements (a cache line's worth) at quasi-random
/// places (a golden-ratio sequence over the runs; every element when x has
/// no more than that many; 0 for an empty slice). NaN counts as nonzero.
///
/// On MNIST batches of 64 (2,000 random batches) the estimate is within
/// ±0.017 of the true density (0.19) in the mean square and 0.059 at worst,
/// plenty for a switch at [`SPARSE_DENSITY`]; 128 runs: ±0.012 and 0.041.
/// It reads 64 cache lines. The 512 single elements a stride apart sampled
/// before (±0.013, 0.048 at worst) read ~512, and at two threads, where the
/// batch's pixels were gathered on the other core, each crossed between the
/// cores: 3.2-3.6 us of a ~110 us training step, 1.2-1.4 now (0.9 and 0.5
/// us at one thread; twice per step, the gradient's call cheaper still).
pub fn density(x: &[f32]) -> f32 {
    let runs = x.len() / RUN;
    if runs <= SAMPLE_RUNS {
        return count_nonzero(x) as f32 / x.len().max(1) as f32;
    }
    let mut nz = 0;
    for i in 1..=SAMPLE_RUNS as u64 {
        // frac(i·φ) in 32 bits, scaled to a run index below `runs`.
        let frac = u128::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32);
        let r = ((frac * runs as u128) >> 32) as usize;
        nz += count_nonzero(&x[r * RUN..(r + 1) * RUN]);
    }
    nz as f32 / (SAMPLE_RUNS * RUN) as f32
}

/// Runs of 16 elements [`density`] samples.
pub const SAMPLE_RUNS: usize = 64;

/// Elements per run of [`density`]'s sample (one cache line of floats).
const RUN: usize = 16;

fn count_nonzero(x: &[f32]) -> usize {
    x.iter().filter(|v| **v != 0.0).count()
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
/// row-major and tightly packed. From two blocks of X's columns on (see
/// [`k_cut`]), the vector paths sum the two halves of X's columns apart and
/// add them once (the same bits for every thread count), half of `par`'s
/// workers on each; within a half, and on the scalar path, rows of Y are
/// split over `par`.
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
    let y = &mut y[..d.m * d.n];
    let cut = k_cut(d.k, d.n);
    // Only a vector kernel sums a range of X's columns; the reference
    // (the scalar and Cortex-M paths) takes the whole product.
    if cut == 0 || forward_kernel(isa).is_none() {
        rows_of(par, par.threads(), isa, x, w, y, d, 0..d.k, accumulate);
    } else {
        halves(par, isa, x, w, y, d, cut, accumulate);
    }
    Ok(())
}

/// Floats of the forward product's first-half sums, on the stack: a block
/// of rows of Y at a time (32 KiB: a training batch of 64 at width 128 in
/// one block; split in two, each half of W is read from L2 twice and the
/// product took 1.4x as long). Bare-metal stacks are smaller; the block
/// size changes no bit, since rows are independent.
#[cfg(not(target_os = "none"))]
const HALF_SUMS: usize = 8192;
#[cfg(target_os = "none")]
const HALF_SUMS: usize = CUT_WIDTH_MAX;

/// The widest Y whose product [`k_cut`] cuts: a row of it fits every
/// target's [`HALF_SUMS`].
const CUT_WIDTH_MAX: usize = 1024;

/// Where the forward product cuts X's columns (W's rows, the input
/// features) in two, 0 for not at all: the middle, rounded to a whole
/// cache line of floats (16), a tie upwards, for products of at least two
/// blocks into a Y at most 1024 wide. MNIST's 784 pixels are cut at 400,
/// where each half holds about half the nonzeros (the digits' ink sits a
/// little below the middle row): cut at 384, as when the cut was a whole
/// block, the second half held 53% of them, and at two threads its thread
/// finished the product and the gradient 4 us after the other's, each step.
/// The cut decides the bits of [`spmm`], so it depends on the shape alone.
/// [`spmm_at`] and the optimizer ([`crate::Optimizer::set_layout`]) cut
/// W's rows at the same place.
pub fn k_cut(k: usize, n: usize) -> usize {
    if k < 2 * FPB || n > CUT_WIDTH_MAX {
        0
    } else {
        (k / 2 + 8) / 16 * 16
    }
}

/// The forward product in two halves of X's columns, cut at `cut`, each on
/// half of `par`'s workers: the first half's sum (blocks in order, as
/// always, onto what Y held when `accumulate`) is formed in a buffer while
/// the second half's is stored in Y, which then gets the first added once.
/// Every thread count gives this same sum, and each half of W is read by
/// its own threads only, the ones [`spmm_at`] and the optimizer give it
/// too: otherwise each core takes the half that the other has just updated
/// from that core's cache every step, which cost more than the product
/// itself (measured in the training step). The buffer is the calling
/// thread's: only Y's second-half sums cross between cores.
#[allow(clippy::too_many_arguments)]
fn halves(
    par: &dyn Parallel,
    isa: Isa,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    d: Dims,
    cut: usize,
    accumulate: bool,
) {
    let (m, k, n) = (d.m, d.k, d.n);
    let rows = HALF_SUMS / n;
    let parts = par.threads();
    let mut sums = [0.0f32; HALF_SUMS];
    let mut r0 = 0;
    while r0 < m {
        let rs = rows.min(m - r0);
        let (xs, ys, ts) = (
            &x[r0 * k..(r0 + rs) * k],
            &mut y[r0 * n..(r0 + rs) * n],
            &mut sums[..rs * n],
        );
        if accumulate {
            ts.copy_from_slice(ys);
        }
        let dc = Dims { m: rs, ..d };
        par.join(
            &mut || rows_of(par, parts / 2, isa, xs, w, ts, dc, 0..cut, accumulate),
            &mut || rows_of(par, parts - parts / 2, isa, xs, w, ys, dc, cut..k, false),
        );
        for (y, t) in ys.iter_mut().zip(ts.iter()) {
            *y += *t;
        }
        r0 += rs;
    }
}

/// The forward product over X's columns `p`, split by rows over `parts`
/// of `par`'s workers, on a supported `isa`, the lengths checked (the
/// reference takes the whole range only).
#[allow(clippy::too_many_arguments)]
fn rows_of(
    par: &dyn Parallel,
    parts: usize,
    isa: Isa,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    d: Dims,
    p: Range<usize>,
    accumulate: bool,
) {
    let kernel = forward_kernel(isa);
    for_row_shares(par, parts, 0, y, d.n, 1, 0, &|r0, y| {
        let (m, k, n) = (y.len() / d.n, d.k, d.n);
        let x = &x[r0 * k..(r0 + m) * k];
        match kernel {
            // SAFETY: the caller confirmed the ISA is supported and checked
            // the lengths; p ends by k.
            Some(f) => unsafe { f(x, w, y, m, k, n, p.clone(), accumulate) },
            None => {
                debug_assert!(p == (0..k));
                reference_spmm(x, w, y, Dims { m, ..d }, accumulate)
            }
        }
    });
}

/// A vector path's forward kernel (`sparse_body`'s `spmm`: x, w, y, m, k, n,
/// the columns of X summed, accumulate).
type ForwardKernel = unsafe fn(&[f32], &[f32], &mut [f32], usize, usize, usize, Range<usize>, bool);

/// A vector path's gradient kernel (`sparse_body`'s `spmm_at`: x, dy, dw, b,
/// k, n, the first row of dW and the row count).
type GradientKernel = unsafe fn(&[f32], &[f32], &mut [f32], usize, usize, usize, usize, usize);

/// The forward kernel of `isa`, None where the reference runs.
fn forward_kernel(isa: Isa) -> Option<ForwardKernel> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => Some(super::x86_64::avx2::spmm),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some(super::x86_64::avx512::spmm),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => Some(super::aarch64::neon::spmm),
        _ => None,
    }
}

/// The gradient kernel of `isa`, None where the reference runs.
fn gradient_kernel(isa: Isa) -> Option<GradientKernel> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => Some(super::x86_64::avx2::spmm_at),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some(super::x86_64::avx512::spmm_at),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => Some(super::aarch64::neon::spmm_at),
        _ => None,
    }
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
    // Cut where the forward product cuts: each half of dW's rows on the
    // threads that hold those rows of W.
    for_row_shares(
        par,
        par.threads(),
        0,
        &mut dw[..k * n],
        n,
        8,
        k_cut(k, n),
        &|p_lo, dws| spmm_at_run(isa, x, dy, dws, d, p_lo, dws.len() / n),
    );
    Ok(())
}

/// Runs rows `p_lo..p_lo + rows` of a checked gradient product.
fn spmm_at_run(isa: Isa, x: &[f32], dy: &[f32], dw: &mut [f32], d: Dims, p_lo: usize, rows: usize) {
    let (k, b, n) = (d.m, d.k, d.n);
    match gradient_kernel(isa) {
        // SAFETY: ISA confirmed by the caller, lengths checked, and
        // p_lo + rows <= k by the split.
        Some(f) => unsafe { f(x, dy, dw, b, k, n, p_lo, rows) },
        None => reference_spmm_at(x, dy, dw, d, p_lo, rows),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_is_the_middle_on_a_cache_line() {
        assert_eq!(k_cut(784, 128), 400);
        assert_eq!(k_cut(784, 1024), 400);
        assert_eq!(k_cut(784, 1025), 0);
        assert_eq!(k_cut(512, 64), 256);
        assert_eq!(k_cut(300, 64), 144);
        assert_eq!(k_cut(2 * FPB, 10), FPB);
        assert_eq!(k_cut(2 * FPB - 1, 10), 0);
    }

    /// The kernel tables decide both what runs and whether the forward
    /// product is cut (only a vector kernel sums a range of columns): every
    /// vector path this CPU has appears in both, the reference paths in
    /// neither.
    #[test]
    fn vector_paths_have_both_kernels_and_reference_paths_none() {
        for isa in [Isa::Scalar, Isa::CortexMDsp] {
            assert!(forward_kernel(isa).is_none() && gradient_kernel(isa).is_none());
        }
        for isa in Isa::available() {
            if isa != Isa::Scalar {
                assert!(forward_kernel(isa).is_some(), "{isa}");
                assert!(gradient_kernel(isa).is_some(), "{isa}");
            }
        }
    }
}
