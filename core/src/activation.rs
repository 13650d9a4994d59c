//! Elementwise activations: ReLU (forward and backward) and a sigmoid that is
//! stable for large |x|.
#![forbid(unsafe_code)]

use crate::Error;

/// ReLU in place: `x = max(x, 0)`. NaN stays NaN.
pub fn relu_forward(x: &mut [f32]) {
    for v in x {
        // `v < 0` is false for NaN, so NaN passes through as PyTorch's does.
        // A select, not a conditional store: it vectorizes and never
        // mispredicts on the half of the units that are negative.
        *v = if *v < 0.0 { 0.0 } else { *v };
    }
}

/// ReLU backward in place: `d[i] = 0` where the forward output `y[i]` was not
/// positive (the subgradient at 0 is 0, as in PyTorch).
///
/// # Errors
/// [`Error::ShapeMismatch`] unless `y` and `d` have the same length.
pub fn relu_backward(y: &[f32], d: &mut [f32]) -> Result<(), Error> {
    if y.len() != d.len() {
        return Err(Error::ShapeMismatch {
            expected: y.len(),
            got: d.len(),
        });
    }
    for (g, &v) in d.iter_mut().zip(y) {
        *g = if v <= 0.0 { 0.0 } else { *g };
    }
    Ok(())
}

/// The logistic function `1 / (1 + e^−x)`, evaluated so that it never
/// overflows: for x ≥ 0 as `1 / (1 + e^−x)`, for x < 0 as `e^x / (1 + e^x)`.
/// `sigmoid(+∞) = 1`, `sigmoid(−∞) = 0`, `sigmoid(NaN) = NaN`.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + libm::expf(-x))
    } else {
        let e = libm::expf(x);
        e / (1.0 + e)
    }
}

/// [`sigmoid`] elementwise.
///
/// # Errors
/// [`Error::ShapeMismatch`] unless `x` and `y` have the same length.
pub fn sigmoid_slice(x: &[f32], y: &mut [f32]) -> Result<(), Error> {
    if x.len() != y.len() {
        return Err(Error::ShapeMismatch {
            expected: x.len(),
            got: y.len(),
        });
    }
    for (o, &v) in y.iter_mut().zip(x) {
        *o = sigmoid(v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_edges() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert!(sigmoid(f32::NAN).is_nan());
        assert_eq!(sigmoid(1e30), 1.0);
        assert_eq!(sigmoid(-1e30), 0.0);
        // Far in the tail the result is tiny but not flushed: e^-80 ≈ 1.8e-35.
        let s = sigmoid(-80.0);
        assert!(s > 1.7e-35 && s < 1.9e-35, "{s}");
        // Symmetry.
        for x in [0.1f32, 1.0, 5.0, 20.0] {
            assert!((sigmoid(x) + sigmoid(-x) - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn relu_pair() {
        let mut x = [-1.0, 0.0, 2.0, f32::NAN];
        relu_forward(&mut x);
        assert_eq!(&x[..3], &[0.0, 0.0, 2.0]);
        assert!(x[3].is_nan());
        let mut d = [1.0, 1.0, 1.0];
        relu_backward(&x[..3], &mut d).unwrap();
        assert_eq!(d, [0.0, 0.0, 1.0]);
        assert!(relu_backward(&x, &mut d).is_err());
    }
}
