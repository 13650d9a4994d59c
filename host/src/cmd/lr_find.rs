//! `ember lr-find`: the learning-rate range test, on a fresh model or a
//! checkpoint (which it never changes).

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

use crate::args::LrFindArgs;
use crate::checkpoint::Checkpoint;
use crate::cmd::common::{arch_name, load_data, setup, usage, Choice, Usage};
use crate::console::Console;
use crate::fsutil::write_atomic;
use crate::lr_find::{self, RangeTest};
use crate::report::{self, LrFindReport, LrSuggestions};
use crate::task::Task;
use ember::Mlp;

/// `ember lr-find`.
pub fn run(a: &LrFindArgs) -> Result<()> {
    if a.end_lr <= a.start_lr || a.num < 2 {
        return Err(
            Usage("ember lr-find: need --start-lr < --end-lr and --num >= 2".into()).into(),
        );
    }
    let ckpt = match &a.from {
        Some(p) => Some(Checkpoint::load(p)?),
        None => None,
    };
    let task: Task = match (a.task, &ckpt) {
        (Some(t), _) => t.into(),
        (None, Some(c)) => c.task,
        (None, None) => Task::Digits,
    };
    let inputs: Vec<(&str, &Path)> = a.from.iter().map(|p| ("--from", p.as_path())).collect();
    let hidden = match &ckpt {
        Some(c) => c.mlp.widths()[1..c.mlp.widths().len() - 1].to_vec(),
        None => a.hidden.0.clone(),
    };
    let choice = Choice {
        cmd: "lr-find",
        task,
        hidden: &hidden,
        epochs: 1,
        inputs: &inputs,
    };
    let mut s = setup(&a.hyper, None, &choice)?;
    if let Some(p) = &a.plot {
        s.plan
            .output("--plot", p, false)
            .map_err(usage("lr-find"))?;
    }
    let (mlp, params) = match ckpt {
        Some(c) => {
            if c.task != task {
                anyhow::bail!(
                    "{} was trained for task {}; fine-tune it to {} first",
                    a.from.as_deref().unwrap_or(Path::new("--from")).display(),
                    c.task.name(),
                    task.name()
                );
            }
            (c.mlp, c.params)
        }
        None => {
            let w = s.checked_widths(&hidden)?;
            let mlp = Mlp::new(&w)
                .map_err(|e| Usage(format!("ember lr-find: architecture {w:?}: {e}")))?;
            let mut p = vec![0.0; mlp.param_len()];
            mlp.init(&mut p, s.cfg.seed).map_err(anyhow::Error::msg)?;
            (mlp, p)
        }
    };
    let (train, _, _) = load_data(&s, task)?;
    let rt = RangeTest {
        start_lr: a.start_lr,
        end_lr: a.end_lr,
        steps: a.num,
        batch: s.cfg.batch,
        seed: s.cfg.seed,
        ..RangeTest::default()
    };
    let curve = lr_find::run(&s.pool, &mlp, task, &params, s.cfg.rule, &train, &rt)?;
    let sug = lr_find::suggest(&curve)?;
    if let Some(p) = &a.plot {
        write_atomic(p, lr_find::svg(&curve, &sug).as_bytes())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    print_report(a, &mlp, task, &rt, &curve, &sug)
}

fn print_report(
    a: &LrFindArgs,
    mlp: &Mlp,
    task: Task,
    rt: &RangeTest,
    curve: &lr_find::Curve,
    sug: &lr_find::Suggestions,
) -> Result<()> {
    let mut out = Console::new();
    if a.json {
        let r = LrFindReport {
            suggested_lr: sug.suggested(),
            suggestions: LrSuggestions {
                min_div10: sug.min_div10,
                valley: sug.valley,
                steepest: sug.steepest,
            },
            arch: arch_name(mlp),
            task: task.name().into(),
            lrs: curve.lrs.clone(),
            losses: curve.losses.clone(),
        };
        write!(out, "{}", report::to_json(&r))?;
        return Ok(());
    }
    writeln!(
        out,
        "range test: {} over {} mini-batches of {} ({} completed before the loss blew up)",
        arch_name(mlp),
        rt.steps,
        rt.batch,
        curve.lrs.len()
    )?;
    writeln!(
        out,
        "  min/10    {:.3e}   (suggested, and what --lr auto trains at: a tenth of the rate at the minimum loss, {:.3e})",
        sug.min_div10,
        sug.min_div10 * 10.0
    )?;
    writeln!(
        out,
        "  steepest  {:.3e}   (loss falls fastest)",
        sug.steepest
    )?;
    writeln!(out, "  valley    {:.3e}   (fastai's valley)", sug.valley)?;
    if let Some(p) = &a.plot {
        writeln!(out, "plot: {}", p.display())?;
    }
    Ok(())
}
