//! The training loop: batches from MNIST through the core's kernels. The host
//! writes no maths of its own — forward, loss, backward and the optimizer
//! step are all `ember` calls; this file only moves data and keeps time.

use anyhow::{bail, Result};
use rand_core::Rng;
use std::time::Instant;

use crate::aligned::Floats;
use crate::mnist::{Dataset, PIXELS};
use crate::par::Pool;
use ember::loss::{bce_with_logits, cross_entropy};
use ember::optim::{ParamGroup, Rule};
use ember::{Mlp, Optimizer};

/// What the network learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Ten digits: softmax + cross-entropy.
    Digits,
    /// Threes against sevens (7 positive): one sigmoid output, binary cross-entropy.
    ThreeSeven,
}

impl Task {
    /// The CLI / JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Task::Digits => "digits",
            Task::ThreeSeven => "3v7",
        }
    }
    /// Parses a CLI name.
    pub fn from_name(s: &str) -> Option<Task> {
        match s {
            "digits" => Some(Task::Digits),
            "3v7" => Some(Task::ThreeSeven),
            _ => None,
        }
    }
    /// Code stored in checkpoints and blobs.
    pub fn code(self) -> u8 {
        match self {
            Task::Digits => 0,
            Task::ThreeSeven => 1,
        }
    }
    /// Inverse of [`Task::code`].
    pub fn from_code(c: u8) -> Option<Task> {
        match c {
            0 => Some(Task::Digits),
            1 => Some(Task::ThreeSeven),
            _ => None,
        }
    }
    /// Output units.
    pub fn outputs(self) -> usize {
        match self {
            Task::Digits => 10,
            Task::ThreeSeven => 1,
        }
    }
    /// Classes reported by eval.
    pub fn classes(self) -> usize {
        match self {
            Task::Digits => 10,
            Task::ThreeSeven => 2,
        }
    }
    /// Keeps the examples of this task, relabelled to its classes (3v7: 3 → 0, 7 → 1).
    pub fn filter(self, d: &Dataset) -> Dataset {
        match self {
            Task::Digits => d.clone(),
            Task::ThreeSeven => {
                let idx: Vec<usize> = (0..d.len())
                    .filter(|&i| matches!(d.labels[i], 3 | 7))
                    .collect();
                let mut out = d.select(&idx);
                for l in &mut out.labels {
                    *l = u8::from(*l == 7);
                }
                out
            }
        }
    }
    /// The class name of a label of this task.
    pub fn class_name(self, c: usize) -> String {
        match self {
            Task::Digits => c.to_string(),
            Task::ThreeSeven => if c == 1 { "7" } else { "3" }.to_string(),
        }
    }
}

/// How the learning rate moves over training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// The same rate throughout.
    Constant,
    /// Cosine annealing from lr to 0.
    Cosine,
    /// fastai's one-cycle: warm up from lr/div to lr over `pct_start` of the
    /// steps, then cosine-anneal to lr/div_final; momentum moves opposite.
    OneCycle {
        /// lr / div is the starting rate.
        div: f32,
        /// lr / div_final is the final rate.
        div_final: f32,
        /// Fraction of steps spent warming up.
        pct_start: f32,
        /// Momentum at the ends.
        mom_max: f32,
        /// Momentum at the peak rate.
        mom_min: f32,
    },
}

impl Schedule {
    /// fastai's defaults (div 25, div_final 1e5, pct_start 0.25, momentum 0.95 → 0.85 → 0.95).
    pub const ONE_CYCLE: Schedule = Schedule::OneCycle {
        div: 25.0,
        div_final: 1e5,
        pct_start: 0.25,
        mom_max: 0.95,
        mom_min: 0.85,
    };

    /// (lr multiplier in (0, 1], momentum override) at `step` of `total`.
    pub fn at(self, step: usize, total: usize) -> (f32, Option<f32>) {
        let t = if total <= 1 {
            0.0
        } else {
            step as f32 / (total - 1) as f32
        };
        let cos = |a: f32, b: f32, p: f32| {
            b + (a - b) * (1.0 + (std::f32::consts::PI * p.clamp(0.0, 1.0)).cos()) / 2.0
        };
        match self {
            Schedule::Constant => (1.0, None),
            Schedule::Cosine => (cos(1.0, 0.0, t), None),
            Schedule::OneCycle {
                div,
                div_final,
                pct_start,
                mom_max,
                mom_min,
            } => {
                if t < pct_start {
                    let p = t / pct_start;
                    (cos(1.0 / div, 1.0, p), Some(cos(mom_max, mom_min, p)))
                } else {
                    let p = (t - pct_start) / (1.0 - pct_start);
                    (cos(1.0, 1.0 / div_final, p), Some(cos(mom_min, mom_max, p)))
                }
            }
        }
    }
}

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

/// A pixel as the network sees it: p / 255.
fn pixel(p: u8) -> f32 {
    p as f32 * (1.0 / 255.0)
}

/// Pixels as the network sees them: p / 255.
pub fn to_f32(images: &[u8]) -> Vec<f32> {
    images.iter().map(|&p| pixel(p)).collect()
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
        let opt = Optimizer::new(rule).map_err(|e| anyhow::anyhow!("optimizer: {e}"))?;
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
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        pool: &Pool,
        images: &[u8],
        labels: &[u8],
        idx: &[usize],
        shifts: &[(i8, i8)],
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
        self.x.resize(b * PIXELS, 0.0);
        gather(pool, &mut self.x, images, idx, shifts);
        self.acts.resize(mlp.act_len(b), 0.0);
        self.scratch.resize(mlp.scratch_len(b), 0.0);
        self.d_logits.resize(b * mlp.out_dim(), 0.0);
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
        let frozen = self.frozen_layers();
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

/// Writes `img` (28×28) into `out` as the network sees it, moved right by
/// `dx` and down by `dy` pixels; what moves in from outside the frame is
/// background (0).
pub fn shifted(out: &mut [f32], img: &[u8], dx: i8, dy: i8) {
    let side = 28isize;
    let (dx, dy) = (dx as isize, dy as isize);
    for (y, row) in (0..side).zip(out.chunks_exact_mut(side as usize)) {
        let sy = y - dy;
        for (x, o) in (0..side).zip(row) {
            let sx = x - dx;
            let inside = (0..side).contains(&sy) && (0..side).contains(&sx);
            *o = if inside {
                pixel(img[(sy * side + sx) as usize])
            } else {
                0.0
            };
        }
    }
}

/// The batch `idx` of `images` as the network sees it, each image moved by
/// its entry of `shifts` (none when empty), converted from u8 here (a
/// quarter of the memory traffic of gathering converted rows), prefetched
/// [`AHEAD`] images ahead, split over the pool's threads.
fn gather(pool: &Pool, out: &mut [f32], images: &[u8], idx: &[usize], shifts: &[(i8, i8)]) {
    let fill = |out: &mut [f32], idx: &[usize], shifts: &[(i8, i8)]| {
        for &i in idx.iter().take(AHEAD) {
            prefetch(images, i);
        }
        for (k, (o, &i)) in out.chunks_exact_mut(PIXELS).zip(idx).enumerate() {
            if let Some(&next) = idx.get(k + AHEAD) {
                prefetch(images, next);
            }
            let img = &images[i * PIXELS..(i + 1) * PIXELS];
            match shifts.get(k) {
                Some(&(dx, dy)) if (dx, dy) != (0, 0) => shifted(o, img, dx, dy),
                _ => {
                    for (o, &p) in o.iter_mut().zip(img) {
                        *o = pixel(p);
                    }
                }
            }
        }
    };
    let half = idx.len() / 2;
    if pool.threads() < 2 || half == 0 {
        return fill(out, idx, shifts);
    }
    let (o_lo, o_hi) = out.split_at_mut(half * PIXELS);
    let (i_lo, i_hi) = idx.split_at(half);
    let (s_lo, s_hi) = shifts.split_at(half.min(shifts.len()));
    ember::Parallel::join(pool, &mut || fill(o_lo, i_lo, s_lo), &mut || {
        fill(o_hi, i_hi, s_hi)
    });
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

/// `n` random shifts in -max..=max along each axis.
pub fn random_shifts(rng: &mut impl Rng, n: usize, max: usize) -> Vec<(i8, i8)> {
    let span = 2 * max as u64 + 1;
    let mut one = || (rng.next_u64() % span) as i8 - max as i8;
    (0..n).map(|_| (one(), one())).collect()
}

/// Images per chunk when a model is run on a whole data set.
pub const EVAL_CHUNK: usize = 500;

/// The peak bytes a training run of this architecture takes, or `None`
/// when the count overflows: parameters, gradients and optimizer state
/// (one moment for SGD, two for AdamW) plus the checkpoint copy and its
/// bytes; activations and their gradients for a batch and for an
/// evaluation chunk; the images of `examples` (u8) and the test set as f32.
pub fn memory_estimate(widths: &[usize], batch: usize, examples: usize, adam: bool) -> Option<u64> {
    let mut params = 0u64;
    let mut per_row = 0u64;
    for (i, &w) in widths.iter().enumerate() {
        let w = w as u64;
        per_row = per_row.checked_add(w)?;
        if let Some(&next) = widths.get(i + 1) {
            let next = next as u64;
            params = params.checked_add(w.checked_mul(next)?.checked_add(next)?)?;
        }
    }
    let copies = 5 + u64::from(adam);
    let model = params.checked_mul(4 * copies)?;
    let rows = (batch as u64)
        .checked_mul(3)?
        .checked_add(EVAL_CHUNK as u64)?;
    let acts = per_row.checked_mul(4)?.checked_mul(rows)?;
    let data = (examples as u64)
        .checked_mul(PIXELS as u64 + 1)?
        .checked_add(10_000 * PIXELS as u64 * 4)?;
    model.checked_add(acts)?.checked_add(data)
}

/// Bytes of memory available to a new allocation (Linux `MemAvailable`),
/// or `None` where that cannot be read.
pub fn memory_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Refuses, before anything is allocated, a run whose
/// [`memory_estimate`] overflows or exceeds the memory available.
pub fn check_memory(widths: &[usize], batch: usize, examples: usize, adam: bool) -> Result<()> {
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let arch = widths
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("-");
    let Some(need) = memory_estimate(widths, batch, examples, adam) else {
        bail!("the model {arch} with batch {batch} is too large to count; use narrower --hidden or a smaller --batch");
    };
    if let Some(have) = memory_available() {
        if need > have {
            bail!(
                "the model {arch} with batch {batch} needs about {:.1} GiB of memory (parameters, \
                 gradients, optimizer state, activations and data), more than the {:.1} GiB \
                 available; use narrower --hidden or a smaller --batch",
                gib(need),
                gib(have)
            );
        }
    }
    Ok(())
}

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

/// Per-epoch figures.
#[derive(Clone, Debug)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Test accuracy after the epoch.
    pub test_accuracy: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Seconds of training (not evaluation).
    pub seconds: f64,
}

/// `n` shuffled indices from a seeded xorshift (Fisher–Yates).
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut r = ember::init::rng(seed);
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (r.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// `limit` training examples picked reproducibly from `seed`, balanced over
/// the classes (round-robin over per-class shuffles).
pub fn balanced_subset(d: &Dataset, classes: usize, limit: usize, seed: u64) -> Dataset {
    if limit >= d.len() {
        return d.clone();
    }
    let order = shuffled(d.len(), seed ^ 0x5eed);
    let mut per: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for i in order {
        per[d.labels[i] as usize].push(i);
    }
    let mut pick = Vec::with_capacity(limit);
    let mut k = 0;
    while pick.len() < limit {
        for c in per.iter() {
            if let Some(&i) = c.get(k) {
                if pick.len() < limit {
                    pick.push(i);
                }
            }
        }
        k += 1;
    }
    pick.sort_unstable();
    d.select(&pick)
}

/// Trains for `cfg.epochs` epochs, calling `progress(epoch, step, steps)`
/// after every step of an epoch and `report` after each complete epoch.
///
/// When `stop` turns true it stops after the current step; an epoch cut
/// short is not reported (its model is neither evaluated nor saved), so the
/// stats returned are those of the complete epochs.
///
/// # Errors
/// A loss that is not finite (the run diverged): the error names the epoch,
/// the step and the rate, and no later epoch is reported.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    tr: &mut Trainer,
    pool: &Pool,
    cfg: &Config,
    train: &Dataset,
    test_x: &[f32],
    test: &Dataset,
    stop: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(usize, usize, usize),
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
    for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        let order = shuffled(n, cfg.seed.wrapping_add(epoch as u64 * 7919));
        let mut aug_rng = ember::init::rng(cfg.seed ^ 0x00a0_6e47 ^ ((epoch as u64) << 32));
        let mut loss_sum = 0.0f64;
        let mut lr_now = cfg.lr;
        for idx in order.chunks(cfg.batch) {
            let (mult, mom) = cfg.schedule.at(step, total);
            lr_now = cfg.lr * mult;
            let shifts = if cfg.augment > 0 {
                random_shifts(&mut aug_rng, idx.len(), cfg.augment)
            } else {
                Vec::new()
            };
            let l = pool.install(|| {
                tr.step(
                    pool,
                    &train.images,
                    &train.labels,
                    idx,
                    &shifts,
                    lr_now,
                    mom,
                )
            })?;
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
            progress(epoch, in_epoch, steps_per_epoch);
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
        let logits = predict_logits(pool, &tr.mlp, &tr.params, test_x)?;
        let acc = accuracy(
            &classes_of(tr.task, &logits, tr.mlp.out_dim()),
            &test.labels,
        )?;
        let s = EpochStats {
            epoch,
            train_loss: loss_sum / n as f64,
            test_accuracy: acc,
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

/// fastai's `slice(lr / lr_mult, lr)` over `groups` groups: the multipliers
/// of the base rate, the first group at 1 / lr_mult, the last at 1, and the
/// groups between spaced geometrically.
pub fn discriminative(lr_mult: f32, groups: usize) -> Vec<f32> {
    if groups <= 1 {
        return vec![1.0; groups];
    }
    (0..groups)
        .map(|g| lr_mult.powf(-((groups - 1 - g) as f32) / (groups - 1) as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_values_at_known_steps() {
        let s = Schedule::ONE_CYCLE;
        let total = 101; // t = step / 100
        let (lr0, m0) = s.at(0, total);
        assert!((lr0 - 1.0 / 25.0).abs() < 1e-7 && (m0.unwrap() - 0.95).abs() < 1e-6);
        let (lr_peak, m_peak) = s.at(25, total);
        assert!((lr_peak - 1.0).abs() < 1e-6 && (m_peak.unwrap() - 0.85).abs() < 1e-6);
        // Half-way through the warm-up: the cosine mid-point.
        let (lr, m) = s.at(25 / 2, total); // t = 0.12, p = 0.48
        let p = 0.12f32 / 0.25;
        let want = 1.0 + (0.04 - 1.0) * (1.0 + (std::f32::consts::PI * p).cos()) / 2.0;
        assert!((lr - want).abs() < 1e-6, "{lr} {want}");
        assert!(m.unwrap() < 0.95 && m.unwrap() > 0.85);
        let (lr_end, m_end) = s.at(100, total);
        assert!((lr_end - 1e-5).abs() < 1e-9 && (m_end.unwrap() - 0.95).abs() < 1e-6);
        // Annealing mid-point: (1 + 1e-5) / 2.
        let (lr_mid, m_mid) = s.at(125, 201); // t = 0.625: half-way through the annealing
        assert!((lr_mid - (1.0 + 1e-5) / 2.0).abs() < 1e-5, "{lr_mid}");
        assert!((m_mid.unwrap() - 0.9).abs() < 1e-5);
        assert_eq!(Schedule::Constant.at(7, 10), (1.0, None));
        assert!((Schedule::Cosine.at(0, 11).0 - 1.0).abs() < 1e-7);
        assert!(Schedule::Cosine.at(10, 11).0.abs() < 1e-7);
        assert!((Schedule::Cosine.at(5, 11).0 - 0.5).abs() < 1e-6);
    }

    #[test]
    fn shifts_move_pixels_and_bring_in_background() {
        let img: Vec<u8> = (0..784).map(|i| (i % 255) as u8 + 1).collect();
        let mut out = vec![f32::NAN; 784];
        shifted(&mut out, &img, 1, -2);
        // Pixel (row 5, col 7) lands at (row 3, col 8).
        assert_eq!(out[3 * 28 + 8], pixel(img[5 * 28 + 7]));
        // Column 0 and the bottom two rows come from outside the frame.
        assert!((0..28).all(|y| out[y * 28] == 0.0));
        assert!(out[26 * 28..].iter().all(|&v| v == 0.0));
        let mut same = vec![f32::NAN; 784];
        shifted(&mut same, &img, 0, 0);
        assert_eq!(same, to_f32(&img));
        let mut r = ember::init::rng(3);
        let s = random_shifts(&mut r, 1000, 2);
        assert!(s
            .iter()
            .all(|&(x, y)| (-2..=2).contains(&x) && (-2..=2).contains(&y)));
        assert!(s.contains(&(-2, 2)) && s.contains(&(2, -2)) && s.contains(&(0, 0)));
    }

    #[test]
    fn discriminative_rates_are_geometric() {
        let m = discriminative(100.0, 3);
        assert!((m[0] - 0.01).abs() < 1e-7 && (m[1] - 0.1).abs() < 1e-6 && m[2] == 1.0);
        let m = discriminative(16.0, 5);
        for (g, want) in [0.0625f32, 0.125, 0.25, 0.5, 1.0].iter().enumerate() {
            assert!((m[g] - want).abs() < 1e-6, "{g}: {}", m[g]);
        }
        assert_eq!(discriminative(10.0, 1), vec![1.0]);
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
