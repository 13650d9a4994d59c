//! What the training commands share: turning their flags into a checked
//! setup (before any work), loading the data with its validation split,
//! the epoch loop with its progress bar, checkpoints and Ctrl-C, and the
//! metrics JSON.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::args::{HyperArgs, Lr, OptimizerArg, RunArgs, ScheduleArg};
use crate::checkpoint::Checkpoint;
use crate::console::Console;
use crate::data::sample::{balanced_subset, default_valid, split_valid};
use crate::data::{self, Dataset, Split};
use crate::fsutil::{write_dest, Dest, Outputs};
use crate::interrupt::{self, Interrupted};
use crate::par::Pool;
use crate::report::{self, EpochReport, FineTuneReport, Hyperparameters, TrainMetrics};
use crate::task::Task;
use crate::train::{fit, Config, EpochStats, Holdout, Schedule, Trainer};
use ember::optim::Rule;
use ember::{Isa, Mlp};

/// A usage error: exit code 2 and the message.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Usage {}

/// Turns an error found while checking arguments into a usage error.
pub fn usage(cmd: &str) -> impl Fn(anyhow::Error) -> anyhow::Error + '_ {
    move |e| Usage(format!("ember {cmd}: {e:#}")).into()
}

/// A training command's checked configuration and files.
pub struct TrainSetup {
    /// Hyper-parameters.
    pub cfg: Config,
    /// Data folder.
    pub data: PathBuf,
    /// `--train-limit`.
    pub limit: Option<usize>,
    /// `--valid`, when given.
    pub valid: Option<usize>,
    /// Thread pool.
    pub pool: Pool,
    /// Checkpoint path (empty: the command writes none).
    pub out: PathBuf,
    /// Where the metrics JSON goes.
    pub metrics: Option<Dest>,
    /// Less output.
    pub quiet: bool,
    /// The files the command reads and writes, for further outputs.
    pub plan: Outputs,
    /// `--lr auto`.
    pub lr_auto: bool,
}

/// What a command adds to the shared flags.
pub struct Choice<'a> {
    /// The command's name, for messages.
    pub cmd: &'static str,
    /// The task.
    pub task: Task,
    /// Hidden widths.
    pub hidden: &'a [usize],
    /// Epochs.
    pub epochs: usize,
    /// Files the command reads besides MNIST (`--from`).
    pub inputs: &'a [(&'a str, &'a Path)],
}

/// Checks everything before any work: the ISA, the files (outputs against
/// the MNIST files, `inputs` and each other), and sets up the pool.
/// `run` is absent for `lr-find`, which writes no checkpoint.
pub fn setup(h: &HyperArgs, run: Option<&RunArgs>, c: &Choice<'_>) -> Result<TrainSetup> {
    let bad = usage(c.cmd);
    force_isa(h, c.cmd)?;
    let rule = rule(h);
    let (lr, lr_auto) = match run.map(|r| r.lr) {
        Some(Lr::Value(v)) => (v, false),
        Some(Lr::Auto) => (0.0, true),
        None => (0.0, false),
    };
    let schedule = match run.map(|r| r.schedule) {
        Some(ScheduleArg::OneCycle) | None => Schedule::ONE_CYCLE,
        Some(ScheduleArg::Cosine) => Schedule::Cosine,
        Some(ScheduleArg::Constant) => Schedule::Constant,
    };
    let cfg = Config {
        task: c.task,
        hidden: c.hidden.to_vec(),
        epochs: c.epochs,
        batch: h.batch,
        lr,
        rule,
        schedule,
        seed: h.seed,
        augment: run.map_or(0, |r| r.augment),
    };
    let threads = crate::par::capped_threads(h.threads.threads);
    let data = data::data_dir(h.data.data.as_deref());
    let mut plan = Outputs::new();
    plan.data_inputs(&data, &data::FILES)?;
    for (what, p) in c.inputs {
        plan.input(what, p)?;
    }
    let mut out = PathBuf::new();
    let mut metrics = None;
    if let Some(r) = run {
        out = match &r.out {
            Some(p) => p.clone(),
            None => fresh_checkpoint_path(c.task)?,
        };
        plan.output("--out", &out, false).map_err(&bad)?;
        if let Some(m) = &r.metrics {
            metrics = Some(plan.output("--metrics", m, true).map_err(&bad)?);
        }
    }
    // Training flushes subnormals to zero (a numerics choice, see fpmode);
    // the pool's helpers take this thread's mode.
    crate::fpmode::flush_subnormals();
    let pool = Pool::new(threads)?;
    Ok(TrainSetup {
        cfg,
        data,
        limit: h.train_limit,
        valid: run.and_then(|r| r.valid),
        pool,
        out,
        metrics,
        quiet: h.quiet,
        plan,
        lr_auto,
    })
}

/// `--isa` (a forced kernel path) and `--dense`.
fn force_isa(h: &HyperArgs, cmd: &str) -> Result<()> {
    if let Some(name) = &h.isa {
        let isa = Isa::from_name(name).ok_or_else(|| {
            Usage(format!(
                "ember {}: unknown --isa '{name}' (scalar, avx2+fma, avx512, neon)",
                cmd
            ))
        })?;
        Isa::force(isa).map_err(|_| {
            Usage(format!(
                "ember {}: --isa {name} is not available on this CPU",
                cmd
            ))
        })?;
    }
    if h.dense {
        ember::matmul::sparse::set_enabled(false);
    }
    Ok(())
}

/// The optimizer rule of the flags.
fn rule(h: &HyperArgs) -> Rule {
    match h.optimizer {
        OptimizerArg::Sgd => Rule::Sgd {
            momentum: h.momentum,
            weight_decay: h.weight_decay,
        },
        OptimizerArg::Adamw => Rule::AdamW {
            beta1: h.momentum.max(0.9),
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: h.weight_decay,
        },
    }
}

/// `runs/<task>-<n>.ckpt` with the first `n` not taken: a run without
/// `--out` never replaces an earlier one.
fn fresh_checkpoint_path(task: Task) -> Result<PathBuf> {
    std::fs::create_dir_all("runs")
        .context("cannot create runs/ for the checkpoint; pass --out FILE")?;
    (1..100_000)
        .map(|n| PathBuf::from(format!("runs/{}-{n}.ckpt", task.name())))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .context("runs/ is full of checkpoints; pass --out FILE")
}

impl TrainSetup {
    /// Where the human-readable lines go: stdout, or stderr when stdout
    /// carries the metrics JSON (`--metrics -`).
    pub fn console(&self) -> Console {
        Console::beside_json(self.metrics == Some(Dest::Stdout))
    }

    /// The widths of a run: 784 inputs, `hidden`, the task's outputs;
    /// refused up front when the run would not fit in memory (FAULTS 44).
    pub fn checked_widths(&self, hidden: &[usize]) -> Result<Vec<usize>> {
        let mut widths = vec![data::PIXELS];
        widths.extend(hidden);
        widths.push(self.cfg.task.outputs());
        let adam = matches!(self.cfg.rule, Rule::AdamW { .. });
        crate::train::memory::check_memory(&widths, self.cfg.batch, 60_000, adam)?;
        Ok(widths)
    }
}

/// The data of a run: (train, valid, test) for the task, the validation
/// images held out of the training set before `--train-limit` applies.
pub fn load_data(s: &TrainSetup, task: Task) -> Result<(Dataset, Dataset, Dataset)> {
    let all = task.filter(&data::fetch_and_load(&s.data, Split::Train)?);
    let test = task.filter(&data::fetch_and_load(&s.data, Split::Test)?);
    let n_valid = s.valid.unwrap_or_else(|| default_valid(all.len()));
    let (train, valid) = split_valid(&all, n_valid, s.cfg.seed);
    let train = match s.limit {
        Some(n) => balanced_subset(&train, task.classes(), n, s.cfg.seed),
        None => train,
    };
    Ok((train, valid, test))
}

/// Prints the model summary: layers, parameters, bytes.
pub fn summary(w: &mut dyn Write, mlp: &Mlp, task: Task, pool: &Pool) -> Result<()> {
    writeln!(
        w,
        "model: MLP {} for task {} ({} kernels, {} threads)",
        arch_name(mlp),
        task.name(),
        Isa::active().name(),
        pool.threads()
    )?;
    for l in 0..mlp.layers() {
        let d = mlp.layer(l);
        let act = if l + 1 < mlp.layers() {
            "ReLU"
        } else if task == Task::Digits {
            "softmax"
        } else {
            "sigmoid"
        };
        writeln!(
            w,
            "  dense {:>4} -> {:<4} + {:<7} {:>8} params",
            d.in_dim,
            d.out_dim,
            act,
            d.weight_len() + d.out_dim
        )?;
    }
    writeln!(
        w,
        "  total {} params, {} bytes as f32, ~{} bytes as int8",
        mlp.param_len(),
        4 * mlp.param_len(),
        mlp.param_len()
    )?;
    Ok(())
}

/// `784-256-128-10`.
pub fn arch_name(mlp: &Mlp) -> String {
    widths_name(mlp.widths())
}

/// `784-128-10` for these widths.
pub fn widths_name(widths: &[usize]) -> String {
    widths
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("-")
}

/// What `--out` holds after a run that stopped early: `saved` is the last
/// epoch whose model was written there (`None`: not written by this run).
pub fn kept(out: &Path, saved: Option<usize>) -> String {
    match saved {
        Some(e) => format!(
            "{} holds the model of epoch {e}, the last complete one",
            out.display()
        ),
        None => format!(
            "no epoch completed, so {} was not written (an earlier file there is untouched)",
            out.display()
        ),
    }
}

/// One phase of epochs (`train` has one, `fine-tune` two).
pub struct Phase<'a> {
    /// The line prefix (`frozen   `).
    pub label: &'a str,
    /// Epochs before this phase, for numbering.
    pub first_epoch: usize,
}

/// Runs the epochs with a progress bar (on a terminal), the per-epoch line,
/// a checkpoint after every complete epoch, and Ctrl-C handling. Returns the
/// stats and the training seconds. `saved` is the last epoch written to
/// `--out` so far; it is kept up to date even when this returns an error,
/// and then the error says what `--out` holds.
pub fn run_epochs(
    s: &TrainSetup,
    tr: &mut Trainer,
    cfg: &Config,
    (train, valid): (&Dataset, &Dataset),
    phase: &Phase<'_>,
    saved: &mut Option<usize>,
) -> Result<(Vec<EpochStats>, f64)> {
    let holdout = Holdout::new(valid);
    let mut out = s.console();
    let t0 = Instant::now();
    let path = s.out.clone();
    let task = tr.task;
    let bar = progress_bar(s.quiet);
    let result = fit(
        tr,
        &s.pool,
        cfg,
        train,
        &holdout,
        &interrupt::requested,
        &mut |epoch, step, steps, loss| {
            if step == 1 {
                bar.reset();
                bar.set_length(steps as u64);
                bar.set_prefix(format!(
                    "{}epoch {}",
                    phase.label,
                    phase.first_epoch + epoch
                ));
            }
            if step % 8 == 0 || step == steps {
                bar.set_position(step as u64);
                bar.set_message(format!("loss {loss:.4}"));
            }
        },
        &mut |e, tr| {
            bar.finish_and_clear();
            if !s.quiet {
                let valid = match (e.valid_loss, e.valid_accuracy) {
                    (Some(l), Some(a)) => {
                        format!("valid_loss {l:.4}  valid_accuracy {:.2}%", 100.0 * a)
                    }
                    _ => "no validation images".into(),
                };
                writeln!(
                    out,
                    "{}epoch {:>3}  train_loss {:.4}  {valid}  lr {:.3e}  {:.2}s",
                    phase.label,
                    phase.first_epoch + e.epoch,
                    e.train_loss,
                    e.lr,
                    e.seconds
                )?;
            }
            Checkpoint {
                task,
                mlp: tr.mlp.clone(),
                params: tr.params.to_vec(),
            }
            .save(&path)?;
            *saved = Some(phase.first_epoch + e.epoch);
            Ok(())
        },
    );
    bar.finish_and_clear();
    let stats = result.map_err(|e| anyhow::anyhow!("{e:#}\n{}", kept(&path, *saved)))?;
    if interrupt::requested() {
        let at = phase.first_epoch + stats.len() + 1;
        return Err(Interrupted(format!(
            "interrupted in epoch {at}: {}",
            kept(&path, *saved)
        ))
        .into());
    }
    Ok((stats, t0.elapsed().as_secs_f64()))
}

/// A bar inside each epoch with its ETA and running loss: on a terminal
/// only (indicatif draws nothing when stderr is not one), never with
/// `--quiet`.
fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} eta {eta} {msg}")
    {
        bar.set_style(style.progress_chars("#>."));
    }
    bar
}

/// Everything a metrics file says besides the epochs.
pub struct RunSummary<'a> {
    /// The model trained.
    pub mlp: &'a Mlp,
    /// The setup.
    pub setup: &'a TrainSetup,
    /// Training examples used.
    pub train_examples: usize,
    /// Validation examples.
    pub valid: usize,
    /// Epochs asked for.
    pub epochs: usize,
    /// Final test accuracy and test images.
    pub test: (f64, usize),
    /// Seconds of training.
    pub seconds: f64,
    /// The optimizer and schedule names.
    pub names: (&'a str, &'a str),
    /// `fine-tune`'s part.
    pub fine_tune: Option<FineTuneReport>,
}

/// The metrics JSON of a run.
pub fn metrics(r: &RunSummary<'_>, epochs: &[EpochStats]) -> TrainMetrics {
    let s = r.setup;
    let (momentum, weight_decay) = match s.cfg.rule {
        Rule::Sgd {
            momentum,
            weight_decay,
        } => (momentum, weight_decay),
        Rule::AdamW {
            beta1,
            weight_decay,
            ..
        } => (beta1, weight_decay),
    };
    TrainMetrics {
        task: s.cfg.task.name().into(),
        arch: arch_name(r.mlp),
        widths: r.mlp.widths().to_vec(),
        params: r.mlp.param_len(),
        test_accuracy: r.test.0,
        test_n: r.test.1,
        train_seconds: r.seconds,
        isa: Isa::active().name().into(),
        version: report::VERSION.into(),
        hyperparameters: Hyperparameters {
            lr: s.cfg.lr as f64,
            lr_auto: s.lr_auto,
            batch: s.cfg.batch,
            epochs: r.epochs,
            seed: s.cfg.seed,
            augment: s.cfg.augment,
            optimizer: r.names.0.into(),
            schedule: r.names.1.into(),
            momentum: momentum as f64,
            weight_decay: weight_decay as f64,
            valid: r.valid,
            train_examples: r.train_examples,
            train_limit: s.limit,
            threads: s.pool.threads(),
            hidden: s.cfg.hidden.clone(),
        },
        epochs: epochs
            .iter()
            .map(|e| EpochReport {
                epoch: e.epoch,
                train_loss: e.train_loss,
                valid_loss: e.valid_loss,
                valid_accuracy: e.valid_accuracy,
                seconds: e.seconds,
                lr: e.lr,
            })
            .collect(),
        fine_tune: r.fine_tune.clone(),
    }
}

/// Writes the metrics JSON to its destination.
pub fn write_metrics(dest: &Dest, m: &TrainMetrics) -> Result<()> {
    write_dest(dest, report::to_json(m).as_bytes())
}

/// The test accuracy of a trained model, scored once after training.
pub fn test_accuracy(pool: &Pool, tr: &Trainer, test: &Dataset) -> Result<f64> {
    let holdout = Holdout::new(test);
    Ok(holdout.score(pool, tr)?.map_or(f64::NAN, |(_, acc)| acc))
}

/// The names the metrics use for the optimizer and the schedule.
pub fn names(h: &HyperArgs, run: &RunArgs) -> (&'static str, &'static str) {
    let opt = match h.optimizer {
        OptimizerArg::Sgd => "sgd",
        OptimizerArg::Adamw => "adamw",
    };
    let sched = match run.schedule {
        ScheduleArg::OneCycle => "one-cycle",
        ScheduleArg::Cosine => "cosine",
        ScheduleArg::Constant => "constant",
    };
    (opt, sched)
}
