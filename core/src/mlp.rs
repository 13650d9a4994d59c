//! A multi-layer perceptron: dense layers with ReLU between them (none after
//! the last, which yields logits), over one flat parameter vector.
//!
//! The core owns no memory: the caller provides the parameters, the
//! activations, the gradients and a scratch buffer, sized by the methods
//! here, so the same type serves a trainer with `Vec`s and a firmware with
//! static arrays. Parameters are laid out layer by layer, weight (in × out)
//! then bias (out).
#![forbid(unsafe_code)]

use core::ops::Range;

use crate::activation::{relu_backward, relu_forward};
use crate::dense::{Dense, DenseGrads};
use crate::init::{kaiming_normal, rng};
use crate::{Error, Parallel, MAX_LAYERS};

/// An MLP architecture: its widths, input first, output last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mlp {
    widths: heapless::Vec<usize, { MAX_LAYERS + 1 }>,
}

impl Mlp {
    /// An MLP with these widths (`[784, 128, 10]`: one hidden layer of 128).
    ///
    /// # Errors
    /// [`Error::BadDimension`] for fewer than two widths, a zero width or a
    /// parameter count that overflows; [`Error::TooManyLayers`] beyond
    /// [`MAX_LAYERS`].
    pub fn new(widths: &[usize]) -> Result<Self, Error> {
        if widths.len() < 2 || widths.contains(&0) {
            return Err(Error::BadDimension);
        }
        let mut w = heapless::Vec::new();
        w.extend_from_slice(widths)
            .map_err(|_| Error::TooManyLayers {
                got: widths.len() - 1,
            })?;
        let mlp = Mlp { widths: w };
        // Every size the methods below compute must fit: check the largest.
        let mut total = 0usize;
        for l in 0..mlp.layers() {
            let (a, b) = (widths[l], widths[l + 1]);
            total = a
                .checked_mul(b)
                .and_then(|x| x.checked_add(b))
                .and_then(|x| x.checked_add(total))
                .ok_or(Error::BadDimension)?;
        }
        Ok(mlp)
    }

    /// The widths, input first.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// Number of dense layers.
    pub fn layers(&self) -> usize {
        self.widths.len() - 1
    }

    /// Input width.
    pub fn in_dim(&self) -> usize {
        self.widths[0]
    }

    /// Output width.
    pub fn out_dim(&self) -> usize {
        self.widths[self.widths.len() - 1]
    }

    /// Layer `i`'s shape (`i < layers()`).
    pub fn layer(&self, i: usize) -> Dense {
        Dense::new(self.widths[i], self.widths[i + 1])
    }

    /// Total parameters.
    pub fn param_len(&self) -> usize {
        (0..self.layers())
            .map(|l| self.layer(l).weight_len() + self.widths[l + 1])
            .sum()
    }

    /// Where layer `i`'s weight and bias sit in the flat parameter vector.
    pub fn layer_params(&self, i: usize) -> (Range<usize>, Range<usize>) {
        let start: usize = (0..i)
            .map(|l| self.layer(l).weight_len() + self.widths[l + 1])
            .sum();
        let w = start..start + self.layer(i).weight_len();
        (w.clone(), w.end..w.end + self.widths[i + 1])
    }

    /// Elements of the activation buffer for a batch: every layer's output.
    pub fn act_len(&self, batch: usize) -> usize {
        self.widths[1..].iter().sum::<usize>() * batch
    }

    /// Elements of the scratch buffer [`Mlp::backward`] needs.
    pub fn scratch_len(&self, batch: usize) -> usize {
        2 * batch * self.widths[1..].iter().copied().max().unwrap_or(0)
    }

    /// Layer `i`'s output within the activation buffer.
    fn act_range(&self, i: usize, batch: usize) -> Range<usize> {
        let start = self.widths[1..=i].iter().take(i).sum::<usize>() * batch;
        start..start + self.widths[i + 1] * batch
    }

    /// The logits (last layer's output) within a forward pass's activations.
    pub fn logits<'a>(&self, acts: &'a [f32], batch: usize) -> &'a [f32] {
        &acts[self.act_range(self.layers() - 1, batch)]
    }

    /// Kaiming-normal weights and zero biases from `seed`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless `params` has [`Mlp::param_len`] elements.
    pub fn init(&self, params: &mut [f32], seed: u64) -> Result<(), Error> {
        check(params.len(), self.param_len())?;
        let mut r = rng(seed);
        for l in 0..self.layers() {
            let (w, b) = self.layer_params(l);
            kaiming_normal(&mut params[w], self.widths[l], &mut r);
            params[b].fill(0.0);
        }
        Ok(())
    }

    /// Forward pass of `batch` rows: every layer's output into `acts`
    /// (ReLU applied to all but the last), logits last.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a buffer of the wrong length.
    pub fn forward(
        &self,
        par: &dyn Parallel,
        params: &[f32],
        x: &[f32],
        acts: &mut [f32],
        batch: usize,
    ) -> Result<(), Error> {
        // x: (batch, in) -> acts: [(batch, w1), (batch, w2), ..., (batch, out)]
        check(params.len(), self.param_len())?;
        check(x.len(), batch * self.in_dim())?;
        check(acts.len(), self.act_len(batch))?;
        for l in 0..self.layers() {
            let (w, b) = self.layer_params(l);
            let r = self.act_range(l, batch);
            let (before, rest) = acts.split_at_mut(r.start);
            let out = &mut rest[..r.len()];
            let input = if l == 0 {
                x
            } else {
                &before[self.act_range(l - 1, batch)]
            };
            self.layer(l)
                .forward(par, input, &params[w], &params[b], out, batch)?;
            if l + 1 < self.layers() {
                relu_forward(out);
            }
        }
        Ok(())
    }

    /// Backward pass: given ∂loss/∂logits, writes every trainable layer's
    /// weight and bias gradients into `grads` (laid out like the parameters).
    /// Layers with `frozen[l]` get no gradient computed (their part of
    /// `grads` is left as it was), and no input gradient is propagated below
    /// the lowest trainable layer.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a buffer of the wrong length
    /// (`frozen` has one flag per layer).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        par: &dyn Parallel,
        params: &[f32],
        x: &[f32],
        acts: &[f32],
        d_logits: &[f32],
        grads: &mut [f32],
        scratch: &mut [f32],
        batch: usize,
        frozen: &[bool],
    ) -> Result<(), Error> {
        check(params.len(), self.param_len())?;
        check(grads.len(), self.param_len())?;
        check(x.len(), batch * self.in_dim())?;
        check(acts.len(), self.act_len(batch))?;
        check(d_logits.len(), batch * self.out_dim())?;
        check(frozen.len(), self.layers())?;
        if scratch.len() < self.scratch_len(batch) {
            return Err(Error::BufferTooSmall {
                needed: self.scratch_len(batch),
                got: scratch.len(),
            });
        }
        let Some(lowest) = frozen.iter().position(|f| !f) else {
            return Ok(());
        };
        let half = scratch.len() / 2;
        let (mut cur, mut next) = scratch.split_at_mut(half);
        cur[..d_logits.len()].copy_from_slice(d_logits);
        for l in (lowest..self.layers()).rev() {
            let layer = self.layer(l);
            let (w, b) = self.layer_params(l);
            let input = if l == 0 {
                x
            } else {
                &acts[self.act_range(l - 1, batch)]
            };
            let d_out = &cur[..batch * layer.out_dim];
            let (gw, gb) = grads.split_at_mut(b.start);
            let want_input = l > lowest;
            let mut d_input = if want_input {
                Some(&mut next[..batch * layer.in_dim])
            } else {
                None
            };
            let g = DenseGrads {
                d_weight: (!frozen[l]).then_some(&mut gw[w.clone()]),
                d_bias: (!frozen[l]).then_some(&mut gb[..b.len()]),
                d_input: d_input.as_deref_mut(),
            };
            layer.backward(par, input, &params[w], d_out, g, batch)?;
            if let Some(d) = d_input {
                relu_backward(input, d)?;
                core::mem::swap(&mut cur, &mut next);
            }
        }
        Ok(())
    }
}

fn check(got: usize, expected: usize) -> Result<(), Error> {
    if got != expected {
        return Err(Error::ShapeMismatch { expected, got });
    }
    Ok(())
}
