//! The specification of the row functions: scalar loops over `libm::expf`
//! and `libm::logf`. The vector paths follow the same steps, element for
//! element, with a vectorized `exp` (see `mod.rs` for its error bound).
#![forbid(unsafe_code)]

/// The row maximum (−∞ for an empty row).
pub fn row_max(x: &[f32]) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

/// `y = exp(x − shift)`, returning the sum of `y`.
pub fn exp_shift_sum(x: &[f32], y: &mut [f32], shift: f32) -> f32 {
    let mut sum = 0.0;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = libm::expf(v - shift);
        sum += *o;
    }
    sum
}

/// softmax of one row into `y`; returns the row's maximum and
/// `Σ exp(x − max)`.
pub fn softmax_row(x: &[f32], y: &mut [f32]) -> (f32, f32) {
    let m = row_max(x);
    let s = exp_shift_sum(x, y, m);
    let inv = 1.0 / s;
    for o in y.iter_mut() {
        *o *= inv;
    }
    (m, s)
}

/// log-softmax of one row into `y`: `(x − max) − ln Σ exp(x − max)`.
pub fn log_softmax_row(x: &[f32], y: &mut [f32]) {
    let m = row_max(x);
    let s = exp_shift_sum(x, y, m);
    let ls = libm::logf(s);
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v - m) - ls;
    }
}

/// log-sum-exp of one row; the shift is 0 when the maximum is infinite.
pub fn logsumexp_row(x: &[f32]) -> f32 {
    let (m, ln_sum) = logsumexp_parts(x);
    m + ln_sum
}

/// The shift `m` of a row and `ln Σ exp(x − m)`, apart.
pub fn logsumexp_parts(x: &[f32]) -> (f32, f32) {
    let m = super::lse_shift(row_max(x));
    let mut sum = 0.0;
    for &v in x {
        sum += libm::expf(v - m);
    }
    (m, libm::logf(sum))
}

/// `y = exp(x)` elementwise.
pub fn exp(x: &[f32], y: &mut [f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = libm::expf(v);
    }
}
