//! The training loop: batches from MNIST through the core's kernels. The host
//! writes no maths of its own — forward, loss, backward and the optimizer
//! step are all `ember` calls; this module only moves data and keeps time.
//! The learning-rate schedules are in `schedule`, the memory estimate in
//! `memory`.

pub mod memory;
pub mod schedule;

pub use schedule::{discriminative, Schedule};

use anyhow::{bail, Result};
use std::time::Instant;

use crate::aligned::Floats;
use crate::data::augment::random_shifts;
use crate::data::augment::shifted;
use crate::data::sample::shuffled;
use crate::data::{pixels, to_f32, Dataset, PIXELS};
use crate::par::{Pool, Tuner};
use crate::task::Task;
use ember::loss::{bce_with_logits, cross_entropy};
use ember::optim::{ParamGroup, Rule};
use ember::{Mlp, Optimizer};

/// Everything `train` and `fine-tune` are told.
#[derive(Clone, Debug)]
pub struct Config {
    /// Task.
    pub task: Task,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// Optimizer rule.
    pub rule: Rule,
    /// LR schedule.
    pub schedule: Schedule,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Augmentation: each training image moves by a random whole number of
    /// pixels in -augment..=augment along each axis (0: none).
    pub augment: usize,
}

/// A model with its buffers, trained batch by batch.
pub struct Trainer {
    /// The architecture.
    pub mlp: Mlp,
    /// The task.
    pub task: Task,
    /// Flat parameters.
    pub params: Floats,
    grads: Floats,
    state: Floats,
    acts: Floats,
    scratch: Floats,
    d_logits: Floats,
    x: Floats,
    /// The next step's batch, gathered ahead (see [`Trainer::step`]), and
    /// which batch it is.
    x_next: Floats,
    ahead: Option<Ahead>,
    targets: Vec<u32>,
    targets_f: Vec<f32>,
    /// The optimizer.
    pub opt: Optimizer,
    /// Parameter groups (one per layer unless told otherwise).
    pub groups: Vec<ParamGroup>,
    /// Learning-rate multiplier of each group relative to the base rate.
    pub group_mult: Vec<f32>,
}

impl Trainer {
    /// A trainer for `params` (already initialised) with one group per layer.
    pub fn new(mlp: Mlp, task: Task, params: Vec<f32>, rule: Rule) -> Result<Self> {
        let mut opt = Optimizer::new(rule).map_err(|e| anyhow::anyhow!("optimizer: {e}"))?;
        // Each thread updates the weights it computed with (see set_layout).
        opt.set_layout(&mlp);
        let n = mlp.param_len();
        let groups: Vec<ParamGroup> = (0..mlp.layers())
            .map(|l| {
                let (w, b) = mlp.layer_params(l);
                ParamGroup {
                    params: w.start..b.end,
                    lr: 0.0,
                    frozen: false,
                }
            })
            .collect();
        let group_mult = vec![1.0; groups.len()];
        Ok(Trainer {
            state: Floats::zeros(opt.state_len(n)),
            grads: Floats::zeros(n),
            mlp,
            task,
            params: Floats::from_slice(&params),
            acts: Floats::default(),
            scratch: Floats::default(),
            d_logits: Floats::default(),
            x: Floats::default(),
            x_next: Floats::default(),
            ahead: None,
            targets: Vec::new(),
            targets_f: Vec::new(),
            opt,
            groups,
            group_mult,
        })
    }

    /// How many parameters and optimizer-state values are subnormal (a
    /// diagnostic: each costs a microcode assist per use on many CPUs; with
    /// subnormals flushed, see [`crate::fpmode`], it stays 0).
    pub fn subnormals(&self) -> usize {
        self.params
            .iter()
            .chain(self.state.iter())
            .filter(|v| v.is_subnormal())
            .count()
    }

    /// Regroups the layers into `n` contiguous groups (1..=layers), as even as
    /// possible, earliest first; all unfrozen, all at the base rate.
    pub fn set_groups(&mut self, n: usize) -> Result<()> {
        let layers = self.mlp.layers();
        if n == 0 || n > layers {
            bail!("--groups must be between 1 and the {layers} layers of the model, got {n}");
        }
        self.groups = (0..n)
            .map(|g| {
                let first = g * layers / n;
                let last = (g + 1) * layers / n - 1;
                ParamGroup {
                    params: self.mlp.layer_params(first).0.start..self.mlp.layer_params(last).1.end,
                    lr: 0.0,
                    frozen: false,
                }
            })
            .collect();
        self.group_mult = vec![1.0; n];
        Ok(())
    }

    /// Freezes every group but the last (the head), or unfreezes all.
    pub fn freeze_body(&mut self, frozen: bool) {
        let last = self.groups.len() - 1;
        for (i, g) in self.groups.iter_mut().enumerate() {
            g.frozen = frozen && i < last;
        }
    }

    /// Frozen flag of each layer (a layer is frozen when its group is).
    fn frozen_layers(&self) -> Vec<bool> {
        (0..self.mlp.layers())
            .map(|l| {
                let (w, _) = self.mlp.layer_params(l);
                self.groups
                    .iter()
                    .any(|g| g.frozen && g.params.contains(&w.start))
            })
            .collect()
    }

    /// One optimizer step on the examples `idx` of (`images`, `labels`) at base rate
    /// `lr`, each image moved by its entry of `shifts` (empty: unmoved);
    /// returns the batch loss.
    ///
    /// `next`, the batch (examples and shifts) of the following step when
    /// the caller knows it, lets a pool of two or more threads gather it in
    /// the background ([`Pool::with_background`]) whenever this step leaves
    /// the helper idle (the narrow layers, the loss, the waits for the other
    /// half of a product); the next step gathers what is left. The results
    /// are the same bits with or without it.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        pool: &Pool,
        images: &[u8],
        labels: &[u8],
        idx: &[usize],
        shifts: &[(i8, i8)],
        next: Option<BatchRef>,
        lr: f32,
        momentum: Option<f32>,
    ) -> Result<f32> {
        let b = idx.len();
        let mlp = &self.mlp;
        self.targets.clear();
        self.targets_f.clear();
        for &i in idx {
            self.targets.push(labels[i] as u32);
            self.targets_f.push(labels[i] as f32);
        }
        // The images the last step gathered ahead, if this is its batch.
        let from = match self.ahead.take() {
            Some(a) if a.is_batch(images, idx, shifts) => {
                std::mem::swap(&mut self.x, &mut self.x_next);
                a.done
            }
            _ => 0,
        };
        self.x.resize(b * PIXELS, 0.0);
        gather(
            pool,
            &mut self.x[from * PIXELS..],
            images,
            &idx[from..],
            shifts.get(from..).unwrap_or_default(),
        );
        self.acts.resize(mlp.act_len(b), 0.0);
        self.scratch.resize(mlp.scratch_len(b), 0.0);
        self.d_logits.resize(b * mlp.out_dim(), 0.0);
        // The rest of the step here; meanwhile the helper of a pool of two
        // or more threads gathers the next batch, image by image, whenever
        // the step leaves it idle.
        let mut x_next = std::mem::take(&mut self.x_next);
        let loss = match next.filter(|_| pool.threads() >= 2) {
            Some((n_idx, n_shifts)) => {
                x_next.resize(n_idx.len() * PIXELS, 0.0);
                let mut done = 0;
                let mut task = || {
                    if let Some(o) = x_next.get_mut(done * PIXELS..(done + 1) * PIXELS) {
                        fill_one(o, images, n_idx, n_shifts, done);
                        done += 1;
                    }
                    done < n_idx.len()
                };
                let loss = pool.with_background(&mut task, || self.compute(pool, b, lr, momentum));
                self.ahead = Some(Ahead::new(images, n_idx, n_shifts, done));
                loss
            }
            None => self.compute(pool, b, lr, momentum),
        };
        self.x_next = x_next;
        loss
    }

    /// The step's arithmetic on the gathered batch of `b` examples: forward,
    /// loss, backward, update; returns the loss.
    fn compute(&mut self, pool: &Pool, b: usize, lr: f32, momentum: Option<f32>) -> Result<f32> {
        let mlp = &self.mlp;
        let frozen = self.frozen_layers();
        mlp.forward(pool, &self.params, &self.x, &mut self.acts, b)
            .map_err(anyhow::Error::msg)?;
        let logits = mlp.logits(&self.acts, b);
        let loss = match self.task {
            Task::Digits => cross_entropy(
                logits,
                &self.targets,
                b,
                mlp.out_dim(),
                Some(&mut self.d_logits),
            ),
            Task::ThreeSeven => bce_with_logits(logits, &self.targets_f, Some(&mut self.d_logits)),
        }
        .map_err(anyhow::Error::msg)?;
        mlp.backward(
            pool,
            &self.params,
            &self.x,
            &self.acts,
            &self.d_logits,
            &mut self.grads,
            &mut self.scratch,
            b,
            &frozen,
        )
        .map_err(anyhow::Error::msg)?;
        for (g, m) in self.groups.iter_mut().zip(&self.group_mult) {
            g.lr = lr * m;
        }
        if let Some(m) = momentum {
            self.opt.set_momentum(m).map_err(anyhow::Error::msg)?;
        }
        self.opt
            .step_par(
                pool,
                &mut self.params,
                &self.grads,
                &mut self.state,
                &self.groups,
            )
            .map_err(anyhow::Error::msg)?;
        Ok(loss)
    }
}

/// A batch: its examples' indices and their shifts (empty: unmoved).
pub type BatchRef<'a> = (&'a [usize], &'a [(i8, i8)]);

/// Which batch a trainer gathered ahead: of which images (where they are
/// and how many bytes), its examples and their shifts.
struct Ahead {
    images: (usize, usize),
    idx: Vec<usize>,
    shifts: Vec<(i8, i8)>,
    /// Images gathered, from the first.
    done: usize,
}

impl Ahead {
    fn new(images: &[u8], idx: &[usize], shifts: &[(i8, i8)], done: usize) -> Self {
        Ahead {
            images: (images.as_ptr() as usize, images.len()),
            idx: idx.to_vec(),
            shifts: shifts.to_vec(),
            done,
        }
    }

    fn is_batch(&self, images: &[u8], idx: &[usize], shifts: &[(i8, i8)]) -> bool {
        self.images == (images.as_ptr() as usize, images.len())
            && self.idx == idx
            && self.shifts == shifts
    }
}

/// The batch `idx` of `images` as the network sees it, each image moved by
/// its entry of `shifts` (none when empty), converted from u8 here (a
/// quarter of the memory traffic of gathering converted rows), prefetched
/// [`AHEAD`] images ahead, split over the pool's threads.
fn gather(pool: &Pool, out: &mut [f32], images: &[u8], idx: &[usize], shifts: &[(i8, i8)]) {
    let half = idx.len() / 2;
    if pool.threads() < 2 || half == 0 {
        return fill(out, images, idx, shifts);
    }
    let (o_lo, o_hi) = out.split_at_mut(half * PIXELS);
    let (i_lo, i_hi) = idx.split_at(half);
    let (s_lo, s_hi) = shifts.split_at(half.min(shifts.len()));
    ember::Parallel::join(pool, &mut || fill(o_lo, images, i_lo, s_lo), &mut || {
        fill(o_hi, images, i_hi, s_hi)
    });
}

/// [`gather`] on one thread.
fn fill(out: &mut [f32], images: &[u8], idx: &[usize], shifts: &[(i8, i8)]) {
    for (k, o) in out.chunks_exact_mut(PIXELS).take(idx.len()).enumerate() {
        fill_one(o, images, idx, shifts, k);
    }
}

/// Image `k` of the batch `idx` into `out` (its pixels), prefetching
/// [`AHEAD`] images ahead (the first call of a batch, its first ones).
fn fill_one(out: &mut [f32], images: &[u8], idx: &[usize], shifts: &[(i8, i8)], k: usize) {
    if k == 0 {
        for &i in idx.iter().take(AHEAD) {
            prefetch(images, i);
        }
    }
    if let Some(&next) = idx.get(k + AHEAD) {
        prefetch(images, next);
    }
    let i = idx[k];
    let img = &images[i * PIXELS..(i + 1) * PIXELS];
    match shifts.get(k) {
        Some(&(dx, dy)) if (dx, dy) != (0, 0) => shifted(out, img, dx, dy),
        _ => pixels(out, img),
    }
}

/// Asks the CPU to start loading image `i` into cache, so that the gather
/// finds it there a few images later instead of waiting on memory.
fn prefetch(images: &[u8], i: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let img = &images[i * PIXELS..(i + 1) * PIXELS];
        for at in (0..PIXELS).step_by(64).chain([PIXELS - 1]) {
            let p = img[at..].as_ptr().cast::<i8>();
            // SAFETY: a prefetch is only a hint: it never faults and has no
            // effect a program can observe; p points into `images` anyway.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (images, i);
}

/// Images the gather prefetches ahead of the one it converts: enough to
/// cover memory latency, few enough not to stall on the CPU's miss buffers.
const AHEAD: usize = 4;

/// Images per chunk when a model is run on a whole data set.
pub const EVAL_CHUNK: usize = 500;

/// Logits of `n` examples of `x`, computed in chunks.
pub fn predict_logits(pool: &Pool, mlp: &Mlp, params: &[f32], x: &[f32]) -> Result<Vec<f32>> {
    let n = x.len() / mlp.in_dim();
    let chunk = EVAL_CHUNK;
    let mut out = Vec::with_capacity(n * mlp.out_dim());
    let mut acts = Vec::new();
    for s in (0..n).step_by(chunk) {
        let b = chunk.min(n - s);
        acts.resize(mlp.act_len(b), 0.0);
        let xs = &x[s * mlp.in_dim()..(s + b) * mlp.in_dim()];
        pool.install(|| mlp.forward(pool, params, xs, &mut acts, b))
            .map_err(anyhow::Error::msg)?;
        out.extend_from_slice(mlp.logits(&acts, b));
    }
    Ok(out)
}

/// The predicted class of each row of logits (3v7: logit > 0 means 7).
pub fn classes_of(task: Task, logits: &[f32], outputs: usize) -> Vec<usize> {
    logits
        .chunks_exact(outputs)
        .map(|row| match task {
            Task::ThreeSeven => usize::from(row[0] > 0.0),
            Task::Digits => {
                row.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                        if v > bv {
                            (i, v)
                        } else {
                            (bi, bv)
                        }
                    })
                    .0
            }
        })
        .collect()
}

/// Fraction of `pred` equal to `labels`; an empty set is an error, not 0/0.
pub fn accuracy(pred: &[usize], labels: &[u8]) -> Result<f64> {
    if labels.is_empty() {
        bail!("the evaluation set is empty");
    }
    let ok = pred
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    Ok(ok as f64 / labels.len() as f64)
}

/// The mean loss of a model's `logits` on `labels` (cross-entropy, or
/// binary cross-entropy for 3v7), by the core's own loss functions.
pub fn mean_loss(task: Task, logits: &[f32], labels: &[u8]) -> Result<f64> {
    let rows = labels.len();
    let l = match task {
        Task::Digits => {
            let t: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
            cross_entropy(logits, &t, rows, task.outputs(), None)
        }
        Task::ThreeSeven => {
            let t: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
            bce_with_logits(logits, &t, None)
        }
    };
    Ok(l.map_err(|e| anyhow::anyhow!("loss: {e}"))? as f64)
}

/// Sets a pool back to parallel when dropped (see [`Tuner`]).
struct RestoreParallel<'a>(&'a Pool);

impl Drop for RestoreParallel<'_> {
    fn drop(&mut self) {
        self.0.set_serial(false);
    }
}

/// A held-out set as the network sees it, scored after every epoch.
pub struct Holdout<'a> {
    /// The images as f32.
    pub x: Vec<f32>,
    /// Their labels.
    pub data: &'a Dataset,
}

impl<'a> Holdout<'a> {
    /// `data` converted once.
    pub fn new(data: &'a Dataset) -> Self {
        Holdout {
            x: to_f32(&data.images),
            data,
        }
    }

    /// (loss, accuracy) of a model on it; `None` when it is empty.
    pub fn score(&self, pool: &Pool, tr: &Trainer) -> Result<Option<(f64, f64)>> {
        if self.data.is_empty() {
            return Ok(None);
        }
        let logits = predict_logits(pool, &tr.mlp, &tr.params, &self.x)?;
        let acc = accuracy(
            &classes_of(tr.task, &logits, tr.mlp.out_dim()),
            &self.data.labels,
        )?;
        Ok(Some((mean_loss(tr.task, &logits, &self.data.labels)?, acc)))
    }
}

/// Per-epoch figures.
#[derive(Clone, Debug)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation loss after the epoch (none without validation images).
    pub valid_loss: Option<f64>,
    /// Validation accuracy after the epoch.
    pub valid_accuracy: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Seconds of training (not evaluation).
    pub seconds: f64,
}

/// Trains for `cfg.epochs` epochs, calling `progress(epoch, step, steps,
/// running mean loss)` after every step of an epoch and `report` after each
/// complete epoch, scored on the held-out `valid` set.
///
/// When `stop` turns true it stops after the current step; an epoch cut
/// short is not reported (its model is neither evaluated nor saved), so the
/// stats returned are those of the complete epochs.
///
/// # Errors
/// A loss that is not finite (the run diverged): the error names the epoch,
/// the step and the rate, and no later epoch is reported.
// One loop read top to bottom (shuffle, batch, step, check, score, report),
// as llm.c writes its training loop: splitting it would scatter the order of
// operations that makes the results reproducible.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    tr: &mut Trainer,
    pool: &Pool,
    cfg: &Config,
    train: &Dataset,
    valid: &Holdout<'_>,
    stop: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(usize, usize, usize, f64),
    report: &mut dyn FnMut(&EpochStats, &Trainer) -> Result<()>,
) -> Result<Vec<EpochStats>> {
    if train.is_empty() {
        bail!("the training set is empty");
    }
    let n = train.len();
    let steps_per_epoch = n.div_ceil(cfg.batch);
    let total = steps_per_epoch * cfg.epochs;
    let mut out = Vec::new();
    let mut step = 0;
    let mut tuner = Tuner::new(pool.threads());
    // Whichever way fit ends (done, stopped, diverged), the pool is left
    // parallel for whatever runs after it.
    let _restore = RestoreParallel(pool);
    for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        let order = shuffled(n, cfg.seed.wrapping_add(epoch as u64 * 7919));
        let mut aug_rng = ember::init::rng(cfg.seed ^ 0x00a0_6e47 ^ ((epoch as u64) << 32));
        let mut loss_sum = 0.0f64;
        let mut lr_now = cfg.lr;
        // Each batch's shifts are drawn one batch ahead (in the same order,
        // so the same numbers), for the step that gathers the next batch.
        let batches: Vec<&[usize]> = order.chunks(cfg.batch).collect();
        let mut draw = |idx: &[usize]| {
            if cfg.augment > 0 {
                random_shifts(&mut aug_rng, idx.len(), cfg.augment)
            } else {
                Vec::new()
            }
        };
        let mut shifts_next = batches.first().map(|b| draw(b)).unwrap_or_default();
        for (bi, &idx) in batches.iter().enumerate() {
            let (mult, mom) = cfg.schedule.at(step, total);
            lr_now = cfg.lr * mult;
            let shifts = std::mem::take(&mut shifts_next);
            let next = batches.get(bi + 1).copied();
            if let Some(n) = next {
                shifts_next = draw(n);
            }
            pool.set_serial(tuner.serial());
            let t_step = Instant::now();
            let l = pool.install(|| {
                tr.step(
                    pool,
                    &train.images,
                    &train.labels,
                    idx,
                    &shifts,
                    next.map(|n| (n, &shifts_next[..])),
                    lr_now,
                    mom,
                )
            })?;
            tuner.record(t_step.elapsed());
            step += 1;
            let in_epoch = step - (epoch - 1) * steps_per_epoch;
            if !l.is_finite() {
                bail!(
                    "training diverged: the loss became {l} at step {in_epoch} of epoch {epoch} \
                     (learning rate {lr_now:.3e}); try a smaller --lr, e.g. {:.1e}, or pick one \
                     with `ember lr-find`",
                    cfg.lr / 10.0
                );
            }
            loss_sum += l as f64 * idx.len() as f64;
            let seen = (in_epoch - 1) * cfg.batch + idx.len();
            progress(epoch, in_epoch, steps_per_epoch, loss_sum / seen as f64);
            if stop() && in_epoch < steps_per_epoch {
                return Ok(out);
            }
        }
        if let Some(i) = tr.params.iter().position(|p| !p.is_finite()) {
            bail!(
                "training diverged: parameter {i} became {} in epoch {epoch} (learning rate \
                 {lr_now:.3e}); try a smaller --lr, e.g. {:.1e}, or pick one with `ember lr-find`",
                tr.params[i],
                cfg.lr / 10.0
            );
        }
        let seconds = t0.elapsed().as_secs_f64();
        pool.set_serial(false);
        let scored = valid.score(pool, tr)?;
        let s = EpochStats {
            epoch,
            train_loss: loss_sum / n as f64,
            valid_loss: scored.map(|v| v.0),
            valid_accuracy: scored.map(|v| v.1),
            lr: lr_now as f64,
            seconds,
        };
        report(&s, tr)?;
        out.push(s);
        if stop() {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trainer on 784-64-10 (wide enough for the sparse products and
    /// their two-thread cut) and 24 synthetic images, three in four pixels 0.
    fn synthetic() -> (Trainer, Vec<u8>, Vec<u8>) {
        let mlp = Mlp::new(&[PIXELS, 64, 10]).unwrap();
        let mut params = vec![0.0; mlp.param_len()];
        mlp.init(&mut params, 3).unwrap();
        let rule = Rule::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        };
        let tr = Trainer::new(mlp, Task::Digits, params, rule).unwrap();
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let images = (0..24 * PIXELS)
            .map(|_| match next() % 4 {
                0 => (next() % 255) as u8 + 1,
                _ => 0,
            })
            .collect();
        let labels = (0..24).map(|i| (i % 10) as u8).collect();
        (tr, images, labels)
    }

    /// Gathering the next batch ahead, wholly, in part (the rest gathered
    /// by the step itself), or for a batch that then does not come (other
    /// shifts), trains the same bits as gathering each batch in its step.
    #[test]
    fn batches_gathered_ahead_train_the_same_bits() {
        let batches: [&[usize]; 4] = [
            &[3, 1, 4, 15, 9, 2],
            &[6, 5, 3, 5],
            &[8, 9, 7, 23, 0],
            &[2, 7],
        ];
        let shifts: [Vec<(i8, i8)>; 4] = [
            vec![],
            vec![(1, 0), (0, -1), (2, 2), (0, 0)],
            vec![(-1, 1); 5],
            vec![],
        ];
        let (mut plain, images, labels) = synthetic();
        let one = Pool::new(1).unwrap();
        let mut losses = Vec::new();
        for (b, s) in batches.iter().zip(&shifts) {
            losses.push(
                plain
                    .step(&one, &images, &labels, b, s, None, 0.05, None)
                    .unwrap(),
            );
        }
        let (mut ahead, ..) = synthetic();
        let two = Pool::new(2).unwrap();
        let other_shifts = [(0, 1); 5];
        let nexts = [
            Some((batches[1], &shifts[1][..])),
            Some((batches[2], &other_shifts[..])),
            Some((batches[3], &shifts[3][..])),
            None,
        ];
        for (i, ((b, s), next)) in batches.iter().zip(&shifts).zip(nexts).enumerate() {
            if i > 0 && i < 3 {
                // How far the gather ahead got depends on timing: make it
                // 3 images (the step gathers the rest), then all of a batch
                // drawn with other shifts (the step must not use it).
                let a = ahead.ahead.as_mut().unwrap();
                fill(&mut ahead.x_next, &images, &a.idx, &a.shifts);
                a.done = if i == 1 { 3 } else { a.idx.len() };
                ahead.x_next[a.done * PIXELS..].fill(f32::NAN);
            }
            let loss = ahead
                .step(&two, &images, &labels, b, s, next, 0.05, None)
                .unwrap();
            assert_eq!(loss.to_bits(), losses[i].to_bits(), "step {i}");
        }
        assert!(plain
            .params
            .iter()
            .zip(ahead.params.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn groups_partition_the_layers() {
        let mlp = Mlp::new(&[4, 5, 6, 3]).unwrap();
        let n = mlp.param_len();
        let mut tr = Trainer::new(
            mlp.clone(),
            Task::Digits,
            vec![0.0; n],
            Rule::Sgd {
                momentum: 0.9,
                weight_decay: 0.0,
            },
        )
        .unwrap();
        assert_eq!(tr.groups.len(), 3);
        tr.set_groups(2).unwrap();
        assert_eq!(tr.groups[0].params, 0..mlp.layer_params(0).1.end);
        assert_eq!(tr.groups[1].params, mlp.layer_params(1).0.start..n);
        assert!(tr.set_groups(4).is_err() && tr.set_groups(0).is_err());
        tr.set_groups(3).unwrap();
        tr.freeze_body(true);
        assert_eq!(
            tr.groups.iter().map(|g| g.frozen).collect::<Vec<_>>(),
            [true, true, false]
        );
        assert_eq!(tr.frozen_layers(), [true, true, false]);
        tr.freeze_body(false);
        assert!(tr.groups.iter().all(|g| !g.frozen));
    }
}
