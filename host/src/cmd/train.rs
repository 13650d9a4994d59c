//! `ember train`: trains an MLP on MNIST and writes a checkpoint and metrics.

use anyhow::{Context, Result};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::checkpoint::Checkpoint;
use crate::cli::{json_num, json_str, Args, Spec, Usage};
use crate::console::Console;
use crate::fsutil::{write_dest, Dest, Outputs};
use crate::interrupt::{self, Interrupted};
use crate::lr_find::{self, RangeTest};
use crate::mnist::{self, Split};
use crate::par::Pool;
use crate::train::{balanced_subset, fit, to_f32, Config, EpochStats, Schedule, Task, Trainer};
use ember::optim::Rule;
use ember::{Isa, Mlp};

/// Defaults: 98%+ on the 10-class task in well under two minutes on 2 cores.
pub const DEFAULT_HIDDEN: &[usize] = &[256, 128];
/// Default epochs.
pub const DEFAULT_EPOCHS: usize = 8;
/// Default batch.
pub const DEFAULT_BATCH: usize = 64;
/// Default peak learning rate (SGD, one-cycle).
pub const DEFAULT_LR: f32 = 0.1;
/// Default `--augment`: images move by up to one pixel each way. Without it
/// 3v7's 12k images overfit at 99.3-99.5%; with it 99.6-99.8%.
pub const DEFAULT_AUGMENT: usize = 1;

/// Flags shared by the training commands.
pub const TRAIN_FLAGS: &[Spec] = &[
    (
        "data",
        true,
        "folder with the MNIST IDX files (default $MNIST_DIR, then data/mnist)",
    ),
    (
        "task",
        true,
        "digits (10 classes) or 3v7 (threes vs sevens)",
    ),
    ("hidden", true, "hidden widths, e.g. 256,128"),
    ("epochs", true, "epochs"),
    ("batch", true, "mini-batch size"),
    (
        "lr",
        true,
        "peak learning rate, or auto (run the range test first)",
    ),
    ("optimizer", true, "sgd or adamw"),
    (
        "momentum",
        true,
        "SGD momentum (one-cycle moves it 0.95 -> 0.85 -> 0.95)",
    ),
    ("weight-decay", true, "weight decay"),
    ("schedule", true, "one-cycle, cosine or constant"),
    ("seed", true, "seed for initialisation and shuffling"),
    (
        "augment",
        true,
        "shift training images by up to N pixels at random (default 1; 0 turns it off)",
    ),
    (
        "train-limit",
        true,
        "use only N training examples, balanced over classes",
    ),
    ("threads", true, "worker threads (default: all cores)"),
    (
        "isa",
        true,
        "force a kernel path: scalar, avx2+fma, avx512, neon",
    ),
    (
        "dense",
        false,
        "dense kernels only: no sparse-input products for mostly-zero inputs (to compare)",
    ),
    ("out", true, "checkpoint path (default runs/<task>.ckpt)"),
    (
        "metrics",
        true,
        "write metrics JSON here ('-' for standard output)",
    ),
    ("quiet", false, "only the final line"),
];

/// The parsed training configuration plus I/O choices.
pub struct TrainSetup {
    /// Hyper-parameters.
    pub cfg: Config,
    /// Data folder.
    pub data: PathBuf,
    /// Training-set limit.
    pub limit: Option<usize>,
    /// Thread pool.
    pub pool: Pool,
    /// Checkpoint path.
    pub out: PathBuf,
    /// Where the metrics JSON goes.
    pub metrics: Option<Dest>,
    /// Less output.
    pub quiet: bool,
    /// The files the command reads and writes, for further outputs.
    pub plan: Outputs,
    /// `--lr auto`: run the range test first and train at its suggestion.
    pub lr_auto: bool,
}

/// A command's defaults for the shared flags.
pub struct Defaults {
    /// Task.
    pub task: Task,
    /// Peak learning rate.
    pub lr: f32,
    /// Epochs.
    pub epochs: usize,
    /// `sgd` or `adamw`.
    pub optimizer: &'static str,
    /// Whether the command writes a checkpoint (default `runs/<task>.ckpt`).
    pub checkpoint: bool,
    /// Whether `--epochs 0` is allowed (fine-tune: only the frozen phase).
    pub zero_epochs: bool,
}

/// `ember train`'s defaults.
pub const TRAIN_DEFAULTS: Defaults = Defaults {
    task: Task::Digits,
    lr: DEFAULT_LR,
    epochs: DEFAULT_EPOCHS,
    optimizer: "sgd",
    checkpoint: true,
    zero_epochs: false,
};

/// Parses and checks the shared training flags, before any work: every
/// value, the memory the run needs, and the outputs against the inputs
/// (the MNIST files and `inputs`, e.g. fine-tune's `--from`) and each other.
pub fn setup(a: &Args, d: &Defaults, inputs: &[(&str, &Path)]) -> Result<TrainSetup> {
    let default_task = d.task;
    let task = match a.str("task") {
        None => default_task,
        Some(t) => Task::from_name(t).ok_or_else(|| {
            Usage(format!(
                "ember {}: --task must be digits or 3v7, got '{t}'",
                a.cmd()
            ))
        })?,
    };
    if let Some(name) = a.str("isa") {
        let isa = Isa::from_name(name).ok_or_else(|| {
            Usage(format!(
                "ember {}: unknown --isa '{name}' (scalar, avx2+fma, avx512, neon)",
                a.cmd()
            ))
        })?;
        Isa::force(isa).map_err(|_| {
            Usage(format!(
                "ember {}: --isa {name} is not available on this CPU",
                a.cmd()
            ))
        })?;
    }
    if a.has("dense") {
        ember::matmul::sparse::set_enabled(false);
    }
    let lr_auto = a.str("lr") == Some("auto");
    let lr = if lr_auto {
        d.lr
    } else {
        a.positive_f32("lr", d.lr)?
    };
    let wd = a.get::<f32>("weight-decay", 0.0)?;
    if !(wd >= 0.0 && wd.is_finite()) {
        return Err(Usage(format!("ember {}: --weight-decay must be >= 0", a.cmd())).into());
    }
    let momentum = a.f32_in("momentum", 0.9, 0.0, 1.0)?;
    let rule = match a.str("optimizer").unwrap_or(d.optimizer) {
        "sgd" => Rule::Sgd {
            momentum,
            weight_decay: wd,
        },
        "adamw" => Rule::AdamW {
            beta1: momentum.max(0.9),
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: wd,
        },
        o => {
            return Err(Usage(format!(
                "ember {}: --optimizer must be sgd or adamw, got '{o}'",
                a.cmd()
            ))
            .into())
        }
    };
    let schedule = match a.str("schedule").unwrap_or("one-cycle") {
        "one-cycle" => Schedule::ONE_CYCLE,
        "cosine" => Schedule::Cosine,
        "constant" => Schedule::Constant,
        s => {
            return Err(Usage(format!(
                "ember {}: --schedule must be one-cycle, cosine or constant, got '{s}'",
                a.cmd()
            ))
            .into())
        }
    };
    let cfg = Config {
        task,
        hidden: a.widths("hidden", DEFAULT_HIDDEN)?,
        epochs: if d.zero_epochs {
            a.get("epochs", d.epochs)?
        } else {
            a.positive("epochs", d.epochs)?
        },
        batch: a.positive("batch", DEFAULT_BATCH)?,
        lr,
        rule,
        schedule,
        seed: a.get("seed", 1u64)?,
        augment: a.get("augment", DEFAULT_AUGMENT)?,
    };
    if cfg.augment > 8 {
        return Err(Usage(format!(
            "ember {}: --augment must be at most 8 pixels (the digits are 20 pixels wide in a 28-pixel frame), got {}",
            a.cmd(),
            cfg.augment
        ))
        .into());
    }
    let limit = if a.has("train-limit") {
        Some(a.positive("train-limit", 1)?)
    } else {
        None
    };
    let threads = a.threads()?;
    let data = mnist::data_dir(a.str("data"));
    let mut plan = Outputs::new();
    plan.data_inputs(&data)?;
    for (what, p) in inputs {
        plan.input(what, p)?;
    }
    let usage = |e: anyhow::Error| Usage(format!("ember {}: {e:#}", a.cmd()));
    let out = match a.str("out") {
        Some(p) => PathBuf::from(p),
        None if !d.checkpoint => PathBuf::new(),
        None => {
            std::fs::create_dir_all("runs")
                .context("cannot create runs/ for the default checkpoint; pass --out FILE")?;
            PathBuf::from(format!("runs/{}.ckpt", task.name()))
        }
    };
    if d.checkpoint {
        plan.output("--out", &out, false).map_err(usage)?;
    }
    let metrics = match a.str("metrics") {
        Some(m) => Some(
            plan.output("--metrics", Path::new(m), true)
                .map_err(usage)?,
        ),
        None => None,
    };
    // Training flushes subnormals to zero (a numerics choice, see fpmode);
    // the pool's helpers take this thread's mode.
    crate::fpmode::flush_subnormals();
    let pool = Pool::new(threads)?;
    Ok(TrainSetup {
        cfg,
        data,
        limit,
        pool,
        out,
        metrics,
        quiet: a.has("quiet"),
        plan,
        lr_auto,
    })
}

impl TrainSetup {
    /// Where the human-readable lines go: stdout, or stderr when stdout
    /// carries the metrics JSON (`--metrics -`).
    pub fn console(&self) -> Console {
        Console::beside_json(self.metrics == Some(Dest::Stdout))
    }
}

/// The widths of a run: 784 inputs, the hidden widths, the task's outputs;
/// refused up front when the run would not fit in memory (FAULTS 44).
pub fn checked_widths(s: &TrainSetup, hidden: &[usize], examples: usize) -> Result<Vec<usize>> {
    let mut widths = vec![mnist::PIXELS];
    widths.extend(hidden);
    widths.push(s.cfg.task.outputs());
    let adam = matches!(s.cfg.rule, Rule::AdamW { .. });
    crate::train::check_memory(&widths, s.cfg.batch, examples, adam)?;
    Ok(widths)
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
    mlp.widths()
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("-")
}

/// Writes the DESIGN.md metrics JSON.
pub fn write_metrics(
    dest: &Dest,
    mlp: &Mlp,
    task: Task,
    epochs: &[EpochStats],
    train_seconds: f64,
    extra: &str,
) -> Result<()> {
    let ep: Vec<String> = epochs
        .iter()
        .map(|e| {
            format!(
                "{{\"epoch\": {}, \"train_loss\": {}, \"test_accuracy\": {}, \"seconds\": {}, \"lr\": {}}}",
                e.epoch, json_num(e.train_loss), json_num(e.test_accuracy), json_num(e.seconds), json_num(e.lr)
            )
        })
        .collect();
    let final_acc = epochs.last().map(|e| e.test_accuracy).unwrap_or(f64::NAN);
    let widths: Vec<String> = mlp.widths().iter().map(|w| w.to_string()).collect();
    let json = format!(
        "{{\n  \"task\": {},\n  \"arch\": {},\n  \"widths\": [{}],\n  \"params\": {},\n  \"test_accuracy\": {},\n  \"train_seconds\": {},\n  \"isa\": {},{}\n  \"epochs\": [\n    {}\n  ]\n}}\n",
        json_str(task.name()),
        json_str(&arch_name(mlp)),
        widths.join(", "),
        mlp.param_len(),
        json_num(final_acc),
        json_num(train_seconds),
        json_str(Isa::active().name()),
        extra,
        ep.join(",\n    ")
    );
    write_dest(dest, json.as_bytes())
}

/// Loads train and test sets for a task, applying the limit.
pub fn load_data(s: &TrainSetup, task: Task) -> Result<(mnist::Dataset, mnist::Dataset)> {
    let train = task.filter(&mnist::fetch_and_load(&s.data, Split::Train)?);
    let test = task.filter(&mnist::fetch_and_load(&s.data, Split::Test)?);
    let train = match s.limit {
        Some(n) => balanced_subset(&train, task.classes(), n, s.cfg.seed),
        None => train,
    };
    Ok((train, test))
}

/// What is at `--out` after a run that stopped early: `saved` is the last
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

/// Runs the epochs with the per-epoch line, progress, a checkpoint after
/// every complete epoch, and Ctrl-C handling. Returns the stats and the
/// training seconds. `saved` is the last epoch written to `--out` so far
/// (numbered as `first_epoch` + its index); it is kept up to date even when
/// this returns an error, and then the error says what `--out` holds.
#[allow(clippy::too_many_arguments)]
pub fn run_epochs(
    s: &TrainSetup,
    tr: &mut Trainer,
    cfg: &Config,
    train: &mnist::Dataset,
    test: &mnist::Dataset,
    phase: &str,
    first_epoch: usize,
    saved: &mut Option<usize>,
) -> Result<(Vec<EpochStats>, f64)> {
    let test_x = to_f32(&test.images);
    let mut out = s.console();
    let tty = std::io::stdout().is_terminal();
    let t0 = Instant::now();
    let quiet = s.quiet;
    let path = s.out.clone();
    let task = tr.task;
    let result = fit(
        tr,
        &s.pool,
        cfg,
        train,
        &test_x,
        test,
        &interrupt::requested,
        &mut |epoch, step, steps| {
            // A progress bar inside the epoch, only on a terminal.
            if tty && !quiet && (step % 16 == 0 || step == steps) {
                let filled = step * 30 / steps.max(1);
                let mut err = std::io::stderr();
                let _ = write!(
                    err,
                    "\r{phase}epoch {:>3} [{}{}] {step}/{steps}",
                    first_epoch + epoch,
                    "#".repeat(filled),
                    ".".repeat(30 - filled)
                );
                let _ = err.flush();
            }
        },
        &mut |e, tr| {
            if !quiet {
                if tty {
                    // Clear the progress bar's line.
                    eprint!("\r{:60}\r", "");
                }
                writeln!(
                    out,
                    "{phase}epoch {:>3}  train_loss {:.4}  test_accuracy {:.2}%  lr {:.3e}  {:.2}s",
                    first_epoch + e.epoch,
                    e.train_loss,
                    100.0 * e.test_accuracy,
                    e.lr,
                    e.seconds
                )?;
            }
            if !path.as_os_str().is_empty() {
                Checkpoint {
                    task,
                    mlp: tr.mlp.clone(),
                    params: tr.params.to_vec(),
                }
                .save(&path)?;
                *saved = Some(first_epoch + e.epoch);
            }
            Ok(())
        },
    );
    let stats = match result {
        Ok(stats) => stats,
        Err(e) if path.as_os_str().is_empty() => return Err(e),
        Err(e) => return Err(anyhow::anyhow!("{e:#}\n{}", kept(&path, *saved))),
    };
    if interrupt::requested() {
        let at = first_epoch + stats.len() + 1;
        let msg = if path.as_os_str().is_empty() {
            format!("interrupted in epoch {at}: nothing was saved")
        } else {
            format!("interrupted in epoch {at}: {}", kept(&path, *saved))
        };
        return Err(Interrupted(msg).into());
    }
    Ok((stats, t0.elapsed().as_secs_f64()))
}

/// `ember train`.
pub fn run(argv: &[String]) -> Result<()> {
    let a = Args::parse("train", argv, TRAIN_FLAGS)?;
    let mut s = setup(&a, &TRAIN_DEFAULTS, &[])?;
    let widths = checked_widths(&s, &s.cfg.hidden, 60_000)?;
    let mlp = Mlp::new(&widths)
        .map_err(|e| Usage(format!("ember train: architecture {widths:?}: {e}")))?;
    let (train, test) = load_data(&s, s.cfg.task)?;
    let mut params = vec![0.0; mlp.param_len()];
    mlp.init(&mut params, s.cfg.seed)
        .map_err(anyhow::Error::msg)?;
    let mut stdout = s.console();
    if !s.quiet {
        summary(&mut stdout, &mlp, s.cfg.task, &s.pool)?;
        writeln!(
            stdout,
            "data: {} training and {} test examples from {}",
            train.len(),
            test.len(),
            s.data.display()
        )?;
    }
    if s.lr_auto {
        let rt = RangeTest {
            batch: s.cfg.batch,
            seed: s.cfg.seed,
            ..RangeTest::default()
        };
        let curve = lr_find::run(&s.pool, &mlp, s.cfg.task, &params, s.cfg.rule, &train, &rt)?;
        interrupt::check(&format!(
            "during the --lr auto range test; {} was not written",
            s.out.display()
        ))?;
        s.cfg.lr = lr_find::suggest(&curve).valley as f32;
        writeln!(
            stdout,
            "--lr auto: range test over {} mini-batches suggests lr {} (valley)",
            curve.lrs.len(),
            s.cfg.lr
        )?;
    }
    let mut tr = Trainer::new(mlp.clone(), s.cfg.task, params, s.cfg.rule)?;
    let mut saved = None;
    let (stats, secs) = run_epochs(&s, &mut tr, &s.cfg, &train, &test, "", 0, &mut saved)?;
    if let Some(m) = &s.metrics {
        write_metrics(m, &mlp, s.cfg.task, &stats, secs, "")?;
    }
    let acc = stats.last().map(|e| e.test_accuracy).unwrap_or(0.0);
    writeln!(
        stdout,
        "done: test_accuracy {:.2}% after {} epochs in {:.1}s; checkpoint {}",
        100.0 * acc,
        stats.len(),
        secs,
        s.out.display()
    )?;
    Ok(())
}
