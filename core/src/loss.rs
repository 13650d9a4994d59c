//! Losses and their gradients: negative log-likelihood, cross-entropy fused
//! with log-softmax, and binary cross-entropy with logits. Every loss is the
//! mean over the batch and every gradient already carries the 1/batch factor.
//!
//! An empty batch has no mean: it is an error, never 0/0.
#![forbid(unsafe_code)]

use crate::activation::sigmoid;
use crate::softmax::{logsumexp_parts_on, softmax_sums_on};
use crate::{Error, Isa};

fn check_batch(len: usize, rows: usize, classes: usize, targets: usize) -> Result<(), Error> {
    if rows == 0 || classes == 0 {
        return Err(Error::BadDimension);
    }
    let n = rows.checked_mul(classes).ok_or(Error::BadDimension)?;
    if len != n {
        return Err(Error::ShapeMismatch {
            expected: n,
            got: len,
        });
    }
    if targets != rows {
        return Err(Error::ShapeMismatch {
            expected: rows,
            got: targets,
        });
    }
    Ok(())
}

fn check_labels(targets: &[u32], classes: usize) -> Result<(), Error> {
    match targets.iter().find(|&&t| t as usize >= classes) {
        Some(&t) => Err(Error::LabelOutOfRange {
            label: t as usize,
            classes,
        }),
        None => Ok(()),
    }
}

/// Negative log-likelihood: `−mean_r log_probs[r, targets[r]]`, for rows of
/// log-probabilities (the output of [`crate::softmax::log_softmax`]).
///
/// # Errors
/// [`Error::BadDimension`] for an empty batch, [`Error::ShapeMismatch`],
/// [`Error::LabelOutOfRange`].
pub fn nll(log_probs: &[f32], targets: &[u32], rows: usize, classes: usize) -> Result<f32, Error> {
    check_batch(log_probs.len(), rows, classes, targets.len())?;
    check_labels(targets, classes)?;
    let sum: f32 = targets
        .iter()
        .enumerate()
        .map(|(r, &t)| -log_probs[r * classes + t as usize])
        .sum();
    Ok(sum / rows as f32)
}

/// Cross-entropy of raw scores (logits): `mean_r (logsumexp(x_r) − x_r[t_r])`,
/// the same as [`nll`] of [`crate::softmax::log_softmax`], in one pass.
/// When `d_logits` is given it receives the gradient of the mean loss:
/// `(softmax(x_r) − onehot(t_r)) / rows`.
///
/// Each row is computed as `(m − x_t) + ln Σ exp(x − m)` with `m` the row's
/// maximum, so the loss keeps its precision on huge logits: for
/// `[f32::MAX, f32::MAX, 0]` and target 0 it is ln 2 (`m + ln Σ` would round
/// to `m` and give 0), and for `[-100, -103, -110]` it is exact to rounding.
///
/// # Errors
/// As [`nll`]; `d_logits` must have the logits' length.
///
/// ```
/// // Two classes scored equally: the loss is ln 2.
/// let mut d = [0.0; 2];
/// let l = ember::loss::cross_entropy(&[3.0, 3.0], &[1], 1, 2, Some(&mut d))?;
/// assert!((l - core::f32::consts::LN_2).abs() < 1e-6);
/// assert_eq!(d, [0.5, -0.5]);
/// # Ok::<(), ember::Error>(())
/// ```
pub fn cross_entropy(
    logits: &[f32],
    targets: &[u32],
    rows: usize,
    classes: usize,
    d_logits: Option<&mut [f32]>,
) -> Result<f32, Error> {
    cross_entropy_on(Isa::active(), logits, targets, rows, classes, d_logits)
}

/// [`cross_entropy`] on a chosen path.
///
/// # Errors
/// As [`cross_entropy`], and [`Error::IsaUnavailable`].
pub fn cross_entropy_on(
    isa: Isa,
    logits: &[f32],
    targets: &[u32],
    rows: usize,
    classes: usize,
    d_logits: Option<&mut [f32]>,
) -> Result<f32, Error> {
    check_batch(logits.len(), rows, classes, targets.len())?;
    check_labels(targets, classes)?;
    if let Some(d) = &d_logits {
        if d.len() != logits.len() {
            return Err(Error::ShapeMismatch {
                expected: logits.len(),
                got: d.len(),
            });
        }
    }
    if !isa.is_supported() {
        return Err(Error::IsaUnavailable);
    }
    let mut sum = 0.0f32;
    let Some(d) = d_logits else {
        for (r, &t) in targets.iter().enumerate() {
            let row = &logits[r * classes..(r + 1) * classes];
            let (m, ln_sum) = logsumexp_parts_on(isa, row)?;
            sum += (m - row[t as usize]) + ln_sum;
        }
        return Ok(sum / rows as f32);
    };
    // One pass gives the gradient's softmax and, from each row's maximum
    // and sum, its log-sum-exp (a call per row costs ~6× more on rows of
    // 10). A row whose maximum is not finite takes the edge-case rules of
    // `logsumexp_parts_on` (which cannot fail: the ISA was checked above).
    // Each row's loss is `(m − x_t) + ln Σ`, never `(m + ln Σ) − x_t`: with
    // a huge maximum the sum `m + ln Σ` rounds `ln Σ` away.
    let mut r = 0;
    softmax_sums_on(isa, logits, d, rows, classes, &mut |m, s| {
        let row = &logits[r * classes..(r + 1) * classes];
        let (m, ln_sum) = if m.is_finite() {
            (m, libm::logf(s))
        } else {
            logsumexp_parts_on(isa, row).unwrap_or((f32::NAN, f32::NAN))
        };
        sum += (m - row[targets[r] as usize]) + ln_sum;
        r += 1;
    })?;
    let inv = 1.0 / rows as f32;
    for (r, &t) in targets.iter().enumerate() {
        let row = &mut d[r * classes..(r + 1) * classes];
        row[t as usize] -= 1.0;
        for g in row {
            *g *= inv;
        }
    }
    Ok(sum / rows as f32)
}

/// Binary cross-entropy of logits against targets in [0, 1]:
/// `mean (max(x, 0) − x·y + ln(1 + e^−|x|))`, which never takes the log of
/// 0 however confident the logit. With `d_logits` it also writes the gradient
/// `(sigmoid(x) − y) / n`.
///
/// # Errors
/// [`Error::BadDimension`] for no examples, [`Error::ShapeMismatch`].
pub fn bce_with_logits(
    logits: &[f32],
    targets: &[f32],
    d_logits: Option<&mut [f32]>,
) -> Result<f32, Error> {
    check_batch(logits.len(), logits.len(), 1, targets.len())?;
    if let Some(d) = &d_logits {
        if d.len() != logits.len() {
            return Err(Error::ShapeMismatch {
                expected: logits.len(),
                got: d.len(),
            });
        }
    }
    let n = logits.len() as f32;
    let mut sum = 0.0f32;
    for (&x, &y) in logits.iter().zip(targets) {
        sum += x.max(0.0) - x * y + libm::log1pf(libm::expf(-x.abs()));
    }
    if let Some(d) = d_logits {
        for ((g, &x), &y) in d.iter_mut().zip(logits).zip(targets) {
            *g = (sigmoid(x) - y) / n;
        }
    }
    Ok(sum / n)
}
