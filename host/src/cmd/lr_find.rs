//! `ember lr-find`: the learning-rate range test, on a fresh model or a
//! checkpoint (which it never changes).

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::cli::{json_num, Args, Spec, Usage};
use crate::cmd::train::{arch_name, checked_widths, load_data, setup, Defaults, DEFAULT_LR};
use crate::fsutil::write_atomic;
use crate::lr_find::{self, RangeTest};
use crate::train::Task;
use ember::Mlp;

pub const FLAGS: &[Spec] = &[
    ("data", true, "folder with the MNIST IDX files"),
    ("task", true, "digits or 3v7"),
    (
        "hidden",
        true,
        "hidden widths of a fresh model, e.g. 256,128",
    ),
    (
        "from",
        true,
        "start from this checkpoint instead of a fresh model",
    ),
    ("batch", true, "mini-batch size"),
    ("optimizer", true, "sgd or adamw"),
    ("momentum", true, "SGD momentum / Adam beta1"),
    ("weight-decay", true, "weight decay"),
    ("seed", true, "seed"),
    ("train-limit", true, "use only N training examples"),
    ("threads", true, "worker threads"),
    ("isa", true, "force a kernel path"),
    ("start-lr", true, "first rate (default 1e-7)"),
    ("end-lr", true, "last rate (default 10)"),
    ("num", true, "mini-batches in the sweep (default 100)"),
    (
        "json",
        false,
        "print one JSON object: suggested_lr, suggestions, lrs, losses",
    ),
    ("plot", true, "write the curve as an SVG file"),
];

/// `ember lr-find`.
pub fn run(argv: &[String]) -> Result<()> {
    let a = Args::parse("lr-find", argv, FLAGS)?;
    let from = a.str("from").map(PathBuf::from);
    let ckpt = match &from {
        Some(p) => Some(Checkpoint::load(p)?),
        None => None,
    };
    let default_task = ckpt.as_ref().map(|c| c.task).unwrap_or(Task::Digits);
    let d = Defaults {
        task: default_task,
        lr: DEFAULT_LR,
        epochs: 1,
        optimizer: "sgd",
        checkpoint: false,
        zero_epochs: false,
    };
    let inputs: Vec<(&str, &Path)> = from.iter().map(|p| ("--from", p.as_path())).collect();
    let mut s = setup(&a, &d, &inputs)?;
    let plot = a.str("plot").map(PathBuf::from);
    if let Some(p) = &plot {
        s.plan
            .output("--plot", p, false)
            .map_err(|e| Usage(format!("ember lr-find: {e:#}")))?;
    }
    let rt = RangeTest {
        start_lr: a.positive_f32("start-lr", 1e-7)?,
        end_lr: a.positive_f32("end-lr", 10.0)?,
        steps: a.positive("num", 100)?,
        batch: s.cfg.batch,
        seed: s.cfg.seed,
        ..RangeTest::default()
    };
    if rt.end_lr <= rt.start_lr || rt.steps < 2 {
        return Err(
            Usage("ember lr-find: need --start-lr < --end-lr and --num >= 2".into()).into(),
        );
    }
    let (mlp, params) = match ckpt {
        Some(c) => {
            if c.task != s.cfg.task {
                anyhow::bail!(
                    "{} was trained for task {}; fine-tune it to {} first",
                    from.as_deref().unwrap_or(Path::new("--from")).display(),
                    c.task.name(),
                    s.cfg.task.name()
                );
            }
            (c.mlp, c.params)
        }
        None => {
            let w = checked_widths(&s, &s.cfg.hidden, 60_000)?;
            let mlp = Mlp::new(&w)
                .map_err(|e| Usage(format!("ember lr-find: architecture {w:?}: {e}")))?;
            let mut p = vec![0.0; mlp.param_len()];
            mlp.init(&mut p, s.cfg.seed).map_err(anyhow::Error::msg)?;
            (mlp, p)
        }
    };
    let (train, _) = load_data(&s, s.cfg.task)?;
    let curve = lr_find::run(&s.pool, &mlp, s.cfg.task, &params, s.cfg.rule, &train, &rt)?;
    let sug = lr_find::suggest(&curve);
    if let Some(p) = &plot {
        write_atomic(p, lr_find::svg(&curve, &sug).as_bytes())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if a.has("json") {
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| json_num(*x))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            out,
            "{{\"suggested_lr\": {}, \"suggestions\": {{\"valley\": {}, \"steepest\": {}, \"min_div10\": {}}}, \"arch\": \"{}\", \"task\": \"{}\", \"lrs\": [{}], \"losses\": [{}]}}",
            json_num(sug.valley), json_num(sug.valley), json_num(sug.steepest), json_num(sug.min_div10),
            arch_name(&mlp), s.cfg.task.name(), list(&curve.lrs), list(&curve.losses)
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "range test: {} over {} mini-batches of {} ({} completed before the loss blew up)",
        arch_name(&mlp),
        rt.steps,
        rt.batch,
        curve.lrs.len()
    )?;
    writeln!(
        out,
        "  valley    {:.3e}   (suggested: fastai's default)",
        sug.valley
    )?;
    writeln!(
        out,
        "  steepest  {:.3e}   (loss falls fastest)",
        sug.steepest
    )?;
    writeln!(
        out,
        "  min/10    {:.3e}   (minimum loss at {:.3e}, divided by 10)",
        sug.min_div10,
        sug.min_div10 * 10.0
    )?;
    if let Some(p) = &plot {
        writeln!(out, "plot: {}", p.display())?;
    }
    Ok(())
}
