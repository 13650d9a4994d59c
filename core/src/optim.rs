//! Optimizers over parameter groups: SGD with momentum and weight decay
//! (PyTorch's `torch.optim.SGD`), and AdamW (`torch.optim.AdamW`).
//!
//! A [`ParamGroup`] is a range of the flat parameter vector with its own
//! learning rate and a frozen flag — what freezing layers and discriminative
//! learning rates stand on. A frozen group is skipped entirely: its
//! parameters and its optimizer state stay bit-identical.
#![forbid(unsafe_code)]

use core::ops::Range;

use crate::matmul::sparse::k_cut;
use crate::par::Parallel;
use crate::{Error, Mlp, Serial, MAX_LAYERS};

/// Below this many parameters an update is not split between threads.
const SPLIT_MIN: usize = 1 << 14;

/// The most parameter groups one optimizer tracks.
pub const MAX_GROUPS: usize = 2 * MAX_LAYERS;

/// A slice of the parameters trained together.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGroup {
    /// Which parameters (indices into the flat vector).
    pub params: Range<usize>,
    /// This group's learning rate.
    pub lr: f32,
    /// Frozen: no update, no state change.
    pub frozen: bool,
}

/// The update rule and its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// `g += wd·p; v = μ·v + g; p −= lr·v` (PyTorch SGD, dampening 0, not Nesterov).
    Sgd {
        /// μ in [0, 1).
        momentum: f32,
        /// L2 weight decay, added to the gradient.
        weight_decay: f32,
    },
    /// Adam with decoupled weight decay: `p −= lr·wd·p`, then the Adam step
    /// with bias-corrected moments.
    AdamW {
        /// β1 in [0, 1).
        beta1: f32,
        /// β2 in [0, 1).
        beta2: f32,
        /// ε > 0, added to √v̂.
        eps: f32,
        /// Decoupled weight decay.
        weight_decay: f32,
    },
}

/// An optimizer: a rule plus per-group step counts. Its per-parameter state
/// (momentum, or Adam's two moments) lives in a caller-provided buffer of
/// [`Optimizer::state_len`] elements, zeroed before the first step.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    rule: Rule,
    steps: [u32; MAX_GROUPS],
    /// Each layer's parameters (weights then biases) and where its
    /// update is cut first: `(start, end, cut)`, the cut an offset from
    /// `start` (0: none); see [`Optimizer::set_layout`].
    layout: [(usize, usize, usize); MAX_LAYERS],
    matrices: usize,
}

fn unit(x: f32) -> bool {
    (0.0..1.0).contains(&x)
}

impl Optimizer {
    /// An optimizer with this rule.
    ///
    /// # Errors
    /// [`Error::BadHyperParameter`] for a momentum or β outside [0, 1), a
    /// negative or non-finite weight decay, or ε ≤ 0.
    pub fn new(rule: Rule) -> Result<Self, Error> {
        let ok = match rule {
            Rule::Sgd {
                momentum,
                weight_decay,
            } => unit(momentum) && weight_decay >= 0.0 && weight_decay.is_finite(),
            Rule::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                unit(beta1)
                    && unit(beta2)
                    && eps > 0.0
                    && eps.is_finite()
                    && weight_decay >= 0.0
                    && weight_decay.is_finite()
            }
        };
        if !ok {
            return Err(Error::BadHyperParameter);
        }
        Ok(Optimizer {
            rule,
            steps: [0; MAX_GROUPS],
            layout: [(0, 0, 0); MAX_LAYERS],
            matrices: 0,
        })
    }

    /// Tells [`Optimizer::step_par`] how `mlp` lays out the parameters, so
    /// that it splits each layer's update between threads where the
    /// layer's products split the weights ([`crate::Dense`]: the rows of
    /// the first layer's W are cut between two threads when its input is
    /// sparse): each thread then updates the weights it has just computed
    /// with, in its own core's cache, instead of taking a share of them from
    /// the other core every step. Without it an update is split into
    /// contiguous halves. Either way the result is the same bits (the update
    /// is element-wise).
    pub fn set_layout(&mut self, mlp: &Mlp) {
        self.matrices = 0;
        for l in 0..mlp.layers() {
            let (w, b) = mlp.layer_params(l);
            let layer = mlp.layer(l);
            // W's rows (of out_dim) are cut where the products cut them.
            let cut = k_cut(layer.in_dim, layer.out_dim) * layer.out_dim;
            self.layout[l] = (w.start, b.end, cut);
            self.matrices = l + 1;
        }
    }

    /// The rule.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// State elements needed for `params` parameters (1× for SGD, 2× for AdamW).
    pub fn state_len(&self, params: usize) -> usize {
        match self.rule {
            Rule::Sgd { .. } => params,
            Rule::AdamW { .. } => 2 * params,
        }
    }

    /// Sets SGD's momentum or AdamW's β1 (a one-cycle schedule moves it).
    ///
    /// # Errors
    /// [`Error::BadHyperParameter`] outside [0, 1).
    pub fn set_momentum(&mut self, m: f32) -> Result<(), Error> {
        if !unit(m) {
            return Err(Error::BadHyperParameter);
        }
        match &mut self.rule {
            Rule::Sgd { momentum, .. } => *momentum = m,
            Rule::AdamW { beta1, .. } => *beta1 = m,
        }
        Ok(())
    }

    /// One update of every group that is not frozen.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `grads` or `state` do not fit `params`,
    /// [`Error::BufferTooSmall`] for a group outside the parameters or more
    /// than [`MAX_GROUPS`] groups, [`Error::BadHyperParameter`] for a
    /// negative or non-finite learning rate. Nothing is updated then.
    pub fn step(
        &mut self,
        params: &mut [f32],
        grads: &[f32],
        state: &mut [f32],
        groups: &[ParamGroup],
    ) -> Result<(), Error> {
        self.step_par(&Serial, params, grads, state, groups)
    }

    /// [`Optimizer::step`] with each group's elements split over `par`. The
    /// update is element-wise, so the result is the same bits for every
    /// thread count.
    ///
    /// # Errors
    /// As [`Optimizer::step`].
    pub fn step_par(
        &mut self,
        par: &dyn Parallel,
        params: &mut [f32],
        grads: &[f32],
        state: &mut [f32],
        groups: &[ParamGroup],
    ) -> Result<(), Error> {
        let n = params.len();
        if grads.len() != n {
            return Err(Error::ShapeMismatch {
                expected: n,
                got: grads.len(),
            });
        }
        if state.len() != self.state_len(n) {
            return Err(Error::ShapeMismatch {
                expected: self.state_len(n),
                got: state.len(),
            });
        }
        if groups.len() > MAX_GROUPS {
            return Err(Error::BufferTooSmall {
                needed: groups.len(),
                got: MAX_GROUPS,
            });
        }
        for g in groups {
            if g.params.start > g.params.end || g.params.end > n {
                return Err(Error::BufferTooSmall {
                    needed: g.params.end,
                    got: n,
                });
            }
            if !(g.lr >= 0.0 && g.lr.is_finite()) {
                return Err(Error::BadHyperParameter);
            }
        }
        let (s1, s2) = state.split_at_mut(n.min(state.len()));
        for (gi, g) in groups.iter().enumerate() {
            if g.frozen {
                continue;
            }
            self.steps[gi] = self.steps[gi].saturating_add(1);
            let r = g.params.clone();
            let u = Update::new(self.rule, g.lr, self.steps[gi]);
            // AdamW's second moments; SGD has none (s2 is empty).
            let s2 = s2.get_mut(r.clone()).unwrap_or_default();
            let (p, gr, s1) = (
                &mut params[r.clone()],
                &grads[r.clone()],
                &mut s1[r.clone()],
            );
            let cut = self.cut(r.start, p.len());
            split(par, par.threads(), &u, cut, p, gr, s1, s2);
        }
        Ok(())
    }

    /// Where a group's update is cut between threads first, for the group
    /// `at..at + len` (0: in the middle): where the products cut the rows
    /// of the layout's matrix that the group is.
    fn cut(&self, at: usize, len: usize) -> usize {
        let whole = self.layout[..self.matrices]
            .iter()
            .find(|&&(s, e, _)| s == at && e == at + len);
        whole.map_or(0, |&(_, _, cut)| cut)
    }
}

/// One group's update with its per-step constants worked out.
struct Update {
    rule: Rule,
    lr: f32,
    /// AdamW's bias corrections 1 − β^t (1 for SGD).
    c1: f32,
    c2: f32,
}

impl Update {
    fn new(rule: Rule, lr: f32, t: u32) -> Self {
        let (c1, c2) = match rule {
            Rule::Sgd { .. } => (1.0, 1.0),
            Rule::AdamW { beta1, beta2, .. } => (
                1.0 - libm::powf(beta1, t as f32),
                1.0 - libm::powf(beta2, t as f32),
            ),
        };
        Update { rule, lr, c1, c2 }
    }

    /// Updates `p` from `gr`; `s1` is the momentum or first moment, `s2`
    /// Adam's second moment (empty for SGD).
    fn apply(&self, p: &mut [f32], gr: &[f32], s1: &mut [f32], s2: &mut [f32]) {
        let lr = self.lr;
        match self.rule {
            Rule::Sgd {
                momentum,
                weight_decay,
            } => {
                crate::elementwise::sgd::run(p, gr, s1, lr, momentum, weight_decay);
            }
            Rule::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let (c1, c2) = (self.c1, self.c2);
                for (((p, &gr), m), v) in p.iter_mut().zip(gr).zip(s1).zip(s2) {
                    *p -= lr * weight_decay * *p;
                    *m = beta1 * *m + (1.0 - beta1) * gr;
                    *v = beta2 * *v + (1.0 - beta2) * gr * gr;
                    let m_hat = *m / c1;
                    let v_hat = *v / c2;
                    *p -= lr * m_hat / (libm::sqrtf(v_hat) + eps);
                }
            }
        }
    }
}

/// Splits an update over `parts` workers: at `cut` first (0: the middle),
/// then in halves.
#[allow(clippy::too_many_arguments)]
fn split(
    par: &dyn Parallel,
    parts: usize,
    u: &Update,
    cut: usize,
    p: &mut [f32],
    gr: &[f32],
    s1: &mut [f32],
    s2: &mut [f32],
) {
    if parts < 2 || p.len() < SPLIT_MIN {
        u.apply(p, gr, s1, s2);
        return;
    }
    let mid = if cut == 0 { p.len() / 2 } else { cut };
    let (p_lo, p_hi) = p.split_at_mut(mid);
    let (g_lo, g_hi) = gr.split_at(mid);
    let (a_lo, a_hi) = s1.split_at_mut(mid);
    let (b_lo, b_hi) = s2.split_at_mut(mid.min(s2.len()));
    let half = parts / 2;
    par.join(
        &mut || split(par, half, u, 0, p_lo, g_lo, a_lo, b_lo),
        &mut || split(par, parts - half, u, 0, p_hi, g_hi, a_hi, b_hi),
    );
}
