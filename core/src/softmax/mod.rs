//! Row-wise softmax, log-softmax and log-sum-exp, max-subtracted, with a
//! vectorized `exp`; and `exp` itself over a slice.
//!
//! Rows are the `cols` contiguous elements of a row-major `rows x cols`
//! matrix. Every function checks its lengths first and writes nothing on an
//! error. Subtracting the row maximum before `exp` keeps every term in (0, 1],
//! so no finite row overflows.
//!
//! # Edge cases (identical on every path, PyTorch's results)
//!
//! | row | softmax | log-softmax | log-sum-exp |
//! |---|---|---|---|
//! | contains NaN | all NaN | all NaN | NaN |
//! | contains +∞ | all NaN | all NaN | +∞ |
//! | all −∞ | all NaN | all NaN | −∞ |
//! | some −∞ (others finite) | 0 there | −∞ there | finite |
//! | `[1e30, 0]` | `[1, 0]` | `[0, −1e30]` | 1e30 |
//! | one finite element | `[1]` | `[0]` | the element |
//! | empty (`cols == 0`) | nothing written | nothing written | −∞ |
//!
//! # Accuracy
//! The vector `exp` (`body.rs`) has a relative error of at most 2 ulp
//! (≤ 2.4e-7) against the correctly rounded result on [−87.3, 88.7] — checked
//! by a sweep in this crate's tests — returns +∞ above ln(f32::MAX) and NaN
//! for NaN, and flushes results below `f32::MIN_POSITIVE` (x < −87.34) to 0,
//! an absolute error under 1.2e-38.
//!
//! Paths: scalar (`reference.rs`, libm), AVX2+FMA, AVX-512F, NEON.

use crate::{Error, Isa};

#[macro_use]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod body;
#[cfg(target_arch = "aarch64")]
mod aarch64;
pub mod reference;
#[cfg(target_arch = "x86_64")]
mod x86_64;

/// The shift log-sum-exp subtracts: the maximum, or 0 when it is infinite
/// (so a +∞ element gives +∞ and an all −∞ row gives −∞, not NaN).
pub(crate) fn lse_shift(max: f32) -> f32 {
    if max.is_infinite() {
        0.0
    } else {
        max
    }
}

fn check(x: usize, y: usize, rows: usize, cols: usize) -> Result<(), Error> {
    let n = rows.checked_mul(cols).ok_or(Error::BadDimension)?;
    if x != n {
        return Err(Error::ShapeMismatch {
            expected: n,
            got: x,
        });
    }
    if y != n {
        return Err(Error::ShapeMismatch {
            expected: n,
            got: y,
        });
    }
    Ok(())
}

macro_rules! dispatch {
    ($isa:expr, $f:ident ( $($arg:expr),* ), $scalar:expr) => {
        match $isa {
            Isa::Scalar | Isa::CortexMDsp if $isa.is_supported() => $scalar,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma if $isa.is_supported() => {
                // SAFETY: is_supported() has just confirmed avx2 and fma on this CPU.
                unsafe { x86_64::avx2::$f($($arg),*) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if $isa.is_supported() => {
                // SAFETY: is_supported() has just confirmed avx512f on this CPU.
                unsafe { x86_64::avx512::$f($($arg),*) }
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon if $isa.is_supported() => {
                // SAFETY: is_supported() has just confirmed neon on this CPU.
                unsafe { aarch64::neon::$f($($arg),*) }
            }
            _ => return Err(Error::IsaUnavailable),
        }
    };
}

/// `y[r, j] = exp(x[r, j] − max_r) / Σ_j exp(x[r, j] − max_r)` for each of
/// `rows` rows of `cols` elements.
///
/// # Errors
/// [`Error::ShapeMismatch`] unless `x` and `y` both hold `rows * cols` elements.
///
/// ```
/// let x = [1.0, 2.0, 3.0, 1000.0, 1000.0, f32::NEG_INFINITY];
/// let mut y = [0.0; 6];
/// ember::softmax::softmax(&x, &mut y, 2, 3)?;
/// assert!((y[0] + y[1] + y[2] - 1.0).abs() < 1e-6);
/// assert_eq!(&y[3..], &[0.5, 0.5, 0.0]);
/// # Ok::<(), ember::Error>(())
/// ```
pub fn softmax(x: &[f32], y: &mut [f32], rows: usize, cols: usize) -> Result<(), Error> {
    softmax_on(Isa::active(), x, y, rows, cols)
}

/// [`softmax`] on a chosen path.
///
/// # Errors
/// As [`softmax`], and [`Error::IsaUnavailable`].
pub fn softmax_on(
    isa: Isa,
    x: &[f32],
    y: &mut [f32],
    rows: usize,
    cols: usize,
) -> Result<(), Error> {
    softmax_sums_on(isa, x, y, rows, cols, &mut |_, _| {})
}

/// [`softmax_on`], also calling `sums(max_r, Σ_j exp(x[r, j] − max_r))` for
/// each row in order: what a caller needs to form log-sum-exp without a
/// second pass over the row (see `loss::cross_entropy_on`).
pub(crate) fn softmax_sums_on(
    isa: Isa,
    x: &[f32],
    y: &mut [f32],
    rows: usize,
    cols: usize,
    sums: &mut dyn FnMut(f32, f32),
) -> Result<(), Error> {
    check(x.len(), y.len(), rows, cols)?;
    if cols == 0 {
        return Ok(());
    }
    dispatch!(
        isa,
        softmax_sums(x, y, cols, sums),
        for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
            let (m, s) = reference::softmax_row(xr, yr);
            sums(m, s);
        }
    );
    Ok(())
}

/// `y[r, j] = (x[r, j] − max_r) − ln Σ_j exp(x[r, j] − max_r)`: the log of
/// [`softmax`], computed without ever forming a probability, so it keeps its
/// precision where softmax rounds to 0 or 1.
///
/// # Errors
/// As [`softmax`].
pub fn log_softmax(x: &[f32], y: &mut [f32], rows: usize, cols: usize) -> Result<(), Error> {
    log_softmax_on(Isa::active(), x, y, rows, cols)
}

/// [`log_softmax`] on a chosen path.
///
/// # Errors
/// As [`softmax_on`].
pub fn log_softmax_on(
    isa: Isa,
    x: &[f32],
    y: &mut [f32],
    rows: usize,
    cols: usize,
) -> Result<(), Error> {
    check(x.len(), y.len(), rows, cols)?;
    if cols == 0 {
        return Ok(());
    }
    dispatch!(
        isa,
        log_softmax(x, y, cols),
        for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
            reference::log_softmax_row(xr, yr)
        }
    );
    Ok(())
}

/// `out[r] = ln Σ_j exp(x[r, j])`, computed as `s + ln Σ exp(x − s)` with `s`
/// the row maximum (0 when the maximum is infinite). `out` holds one value per row.
///
/// # Errors
/// [`Error::ShapeMismatch`] unless `x` holds `out.len() * cols` elements.
pub fn logsumexp(x: &[f32], out: &mut [f32], cols: usize) -> Result<(), Error> {
    logsumexp_on(Isa::active(), x, out, cols)
}

/// [`logsumexp`] on a chosen path.
///
/// # Errors
/// As [`logsumexp`], and [`Error::IsaUnavailable`].
pub fn logsumexp_on(isa: Isa, x: &[f32], out: &mut [f32], cols: usize) -> Result<(), Error> {
    let rows = out.len();
    check(x.len(), x.len(), rows, cols)?;
    if !isa.is_supported() {
        return Err(Error::IsaUnavailable);
    }
    for (r, o) in out.iter_mut().enumerate() {
        let row = &x[r * cols..(r + 1) * cols];
        *o = logsumexp_row_on(isa, row)?;
    }
    Ok(())
}

/// log-sum-exp of one row (−∞ for an empty row).
///
/// # Errors
/// [`Error::IsaUnavailable`].
pub fn logsumexp_row_on(isa: Isa, row: &[f32]) -> Result<f32, Error> {
    Ok(dispatch!(
        isa,
        logsumexp_row(row),
        reference::logsumexp_row(row)
    ))
}

/// A row's log-sum-exp in its two parts: the shift `m` (the row's maximum,
/// or 0 when that is infinite) and `ln Σ exp(x − m)`. `m + ln Σ` is
/// [`logsumexp_row_on`]; a loss takes `(m − x_t) + ln Σ` instead, which keeps
/// its precision where `m` is huge (`[f32::MAX, f32::MAX, 0]`: ln 2, not 0).
///
/// # Errors
/// [`Error::IsaUnavailable`] when `isa` does not run here.
pub fn logsumexp_parts_on(isa: Isa, row: &[f32]) -> Result<(f32, f32), Error> {
    Ok(dispatch!(
        isa,
        logsumexp_parts(row),
        reference::logsumexp_parts(row)
    ))
}

/// `y = exp(x)` elementwise with the vector `exp` (see the module's accuracy note).
///
/// # Errors
/// [`Error::ShapeMismatch`] unless `x` and `y` have the same length.
pub fn exp_on(isa: Isa, x: &[f32], y: &mut [f32]) -> Result<(), Error> {
    check(x.len(), y.len(), 1, x.len())?;
    dispatch!(isa, exp_slice(x, y), reference::exp(x, y));
    Ok(())
}
