//! The dense (fully connected, "Linear") layer: forward and backward.
//!
//! The weight is stored in × out, row-major (so the forward pass is the
//! plain product `x·W`, the fastest layout), the bias has `out` elements.
//! PyTorch's `Linear.weight` is the transpose (out × in).
#![forbid(unsafe_code)]

use crate::matmul::sparse::{spmm, spmm_at, worth_it};
use crate::matmul::{gemm_par, Dims, Gemm};
use crate::Isa;
use crate::{Error, Parallel};

/// A dense layer's shape: `y = x·W + b`, x: (batch, in_dim) -> y: (batch, out_dim).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dense {
    /// Input features.
    pub in_dim: usize,
    /// Output features.
    pub out_dim: usize,
}

fn len_is(what: &[f32], n: usize) -> Result<(), Error> {
    if what.len() != n {
        return Err(Error::ShapeMismatch {
            expected: n,
            got: what.len(),
        });
    }
    Ok(())
}

/// The gradients [`Dense::backward`] writes; `None` skips a computation
/// (a frozen layer asks for no weight or bias gradient, the first layer for
/// no input gradient).
#[derive(Debug, Default)]
pub struct DenseGrads<'a> {
    /// d_weight (in × out), overwritten.
    pub d_weight: Option<&'a mut [f32]>,
    /// d_bias (out), overwritten.
    pub d_bias: Option<&'a mut [f32]>,
    /// d_input (batch × in), overwritten.
    pub d_input: Option<&'a mut [f32]>,
}

impl Dense {
    /// A layer of the given widths.
    pub const fn new(in_dim: usize, out_dim: usize) -> Self {
        Dense { in_dim, out_dim }
    }

    /// Elements of the weight (in × out).
    pub const fn weight_len(&self) -> usize {
        self.in_dim * self.out_dim
    }

    /// `y = x·W + b`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless x is batch × in, w in × out, b out and
    /// y batch × out; nothing is written then.
    pub fn forward(
        &self,
        par: &dyn Parallel,
        x: &[f32],
        w: &[f32],
        b: &[f32],
        y: &mut [f32],
        batch: usize,
    ) -> Result<(), Error> {
        // x: (batch, in_dim) -> y: (batch, out_dim)
        let (i, o) = (self.in_dim, self.out_dim);
        len_is(x, batch * i)?;
        len_is(w, i * o)?;
        len_is(b, o)?;
        len_is(y, batch * o)?;
        for row in y.chunks_exact_mut(o.max(1)) {
            row.copy_from_slice(b);
        }
        if worth_it(x, o) {
            return spmm(par, Isa::active(), x, w, y, Dims::new(batch, i, o), true);
        }
        gemm_par(
            par,
            &Gemm::packed(Dims::new(batch, i, o), false, false, true),
            x,
            w,
            y,
        )
    }

    /// Gradients of a loss with respect to W, b and x, given `d_out` = ∂loss/∂y:
    /// `d_weight = xᵀ·d_out`, `d_bias = Σ_rows d_out`, `d_input = d_out·Wᵀ`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a slice of the wrong length; nothing is
    /// written then.
    pub fn backward(
        &self,
        par: &dyn Parallel,
        x: &[f32],
        w: &[f32],
        d_out: &[f32],
        grads: DenseGrads<'_>,
        batch: usize,
    ) -> Result<(), Error> {
        // d_out: (batch, out_dim) -> d_weight: (in, out), d_bias: (out), d_input: (batch, in)
        let (i, o) = (self.in_dim, self.out_dim);
        len_is(x, batch * i)?;
        len_is(w, i * o)?;
        len_is(d_out, batch * o)?;
        if let Some(g) = &grads.d_weight {
            len_is(g, i * o)?;
        }
        if let Some(g) = &grads.d_bias {
            len_is(g, o)?;
        }
        if let Some(g) = &grads.d_input {
            len_is(g, batch * i)?;
        }
        if let Some(dw) = grads.d_weight {
            if worth_it(x, o) {
                spmm_at(par, Isa::active(), x, d_out, dw, Dims::new(i, batch, o))?;
            } else {
                gemm_par(
                    par,
                    &Gemm::packed(Dims::new(i, batch, o), true, false, false),
                    x,
                    d_out,
                    dw,
                )?;
            }
        }
        if let Some(db) = grads.d_bias {
            db.fill(0.0);
            for row in d_out.chunks_exact(o.max(1)) {
                for (s, v) in db.iter_mut().zip(row) {
                    *s += v;
                }
            }
        }
        if let Some(dx) = grads.d_input {
            gemm_par(
                par,
                &Gemm::packed(Dims::new(batch, o, i), false, true, false),
                d_out,
                w,
                dx,
            )?;
        }
        Ok(())
    }
}
