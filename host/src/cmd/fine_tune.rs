//! `ember fine-tune`: transfer learning. Keep a pretrained body, give it a new
//! head when the task's output differs, train the head alone with the body
//! frozen, then unfreeze and train everything with discriminative learning
//! rates (fastai's `fine_tune`).
//!
//! Defaults: the same optimizer and peak rate as `train` (SGD, 0.1), and the
//! same 8-epoch budget split in half: 4 epochs for the head alone, 4 for
//! everything. (fastai's AdamW at 2e-3 reached only 30-68% here in that
//! budget with 20 images.)

use anyhow::{bail, Result};
use std::io::Write;

use crate::args::{FineTuneArgs, Lr};
use crate::checkpoint::Checkpoint;
use crate::cmd::common::{
    arch_name, load_data, metrics, names, run_epochs, setup, summary, test_accuracy, write_metrics,
    Choice, Phase, RunSummary, TrainSetup, Usage,
};
use crate::data::Dataset;
use crate::report::FineTuneReport;
use crate::task::Task;
use crate::train::{discriminative, Config, EpochStats, Schedule, Trainer};
use ember::Mlp;

/// `ember fine-tune`.
pub fn run(a: &FineTuneArgs) -> Result<()> {
    if a.on_device_sim {
        return crate::cmd::device_sim::run(a);
    }
    if a.run.lr == Lr::Auto {
        return Err(Usage(
            "ember fine-tune: --lr takes a number here; `ember lr-find --from CHECKPOINT` suggests one"
                .into(),
        )
        .into());
    }
    let (freeze_epochs, epochs) = a.phase_epochs();
    if freeze_epochs + epochs == 0 {
        return Err(Usage(
            "ember fine-tune: --freeze-epochs and --epochs are both 0: nothing to train".into(),
        )
        .into());
    }
    // The task defaults to the checkpoint's, so its header is read first.
    let pre = Checkpoint::load(&a.from)?;
    let task: Task = a.task.map_or(pre.task, Into::into);
    let pre_widths = pre.mlp.widths();
    let hidden = &pre_widths[1..pre_widths.len() - 1];
    let choice = Choice {
        cmd: "fine-tune",
        task,
        hidden,
        epochs,
        inputs: &[("--from", &a.from)],
    };
    let s = setup(&a.run.hyper, Some(&a.run), &choice)?;
    s.checked_widths(hidden)?;
    let (mlp, params, new_head) = with_head(&pre, task, s.cfg.seed)?;
    let mut tr = Trainer::new(mlp.clone(), task, params, s.cfg.rule)?;
    let groups = a.groups.unwrap_or(mlp.layers());
    tr.set_groups(groups)
        .map_err(|e| Usage(format!("ember fine-tune: {e}")))?;
    let (train, valid, test) = load_data(&s, task)?;
    let mut out = s.console();
    if !s.quiet {
        summary(&mut out, &mlp, task, &s.pool)?;
        let head = if new_head {
            format!("new {}-unit head for task {}", task.outputs(), task.name())
        } else {
            "head kept".into()
        };
        writeln!(
            out,
            "from {} ({} task {}): {head}",
            a.from.display(),
            arch_name(&pre.mlp),
            pre.task.name()
        )?;
        writeln!(
            out,
            "data: {} training, {} validation and {} test examples",
            train.len(),
            valid.len(),
            test.len()
        )?;
    }
    let (stats, seconds, group_lrs) = phases(a, &s, &mut tr, groups, (&train, &valid))?;
    let acc = test_accuracy(&s.pool, &tr, &test)?;
    if let Some(m) = &s.metrics {
        let fine_tune = FineTuneReport {
            from: a.from.display().to_string(),
            new_head,
            freeze_epochs: a.phase_epochs().0,
            lr_mult: a.lr_mult as f64,
            group_lrs,
        };
        let sizes = (train.len(), valid.len(), test.len());
        write_metrics(
            m,
            &summary_of(a, &s, &mlp, sizes, (acc, seconds), fine_tune, &stats),
        )?;
    }
    writeln!(
        out,
        "done: test_accuracy {:.2}% after {} epochs in {:.1}s; checkpoint {}",
        100.0 * acc,
        stats.len(),
        seconds,
        s.out.display()
    )?;
    Ok(())
}

/// The metrics of a fine-tune run.
fn summary_of(
    a: &FineTuneArgs,
    s: &TrainSetup,
    mlp: &Mlp,
    (train, valid, test): (usize, usize, usize),
    (acc, seconds): (f64, f64),
    fine_tune: FineTuneReport,
    stats: &[EpochStats],
) -> crate::report::TrainMetrics {
    let r = RunSummary {
        mlp,
        setup: s,
        train_examples: train,
        valid,
        epochs: a.phase_epochs().0 + a.phase_epochs().1,
        test: (acc, test),
        seconds,
        names: names(&a.run.hyper, &a.run),
        fine_tune: Some(fine_tune),
    };
    metrics(&r, stats)
}

/// The pretrained model with the task's head: the body is kept; the head
/// is replaced by a fresh one when the task's outputs differ.
fn with_head(pre: &Checkpoint, task: Task, seed: u64) -> Result<(Mlp, Vec<f32>, bool)> {
    let mut widths = pre.mlp.widths().to_vec();
    let last = widths.len() - 1;
    if widths[last] == task.outputs() {
        return Ok((pre.mlp.clone(), pre.params.clone(), false));
    }
    widths[last] = task.outputs();
    let mlp = Mlp::new(&widths).map_err(anyhow::Error::msg)?;
    let mut params = vec![0.0; mlp.param_len()];
    // A fresh head (and body, overwritten next).
    mlp.init(&mut params, seed).map_err(anyhow::Error::msg)?;
    let body_end = pre.mlp.layer_params(pre.mlp.layers() - 1).0.start;
    params[..body_end].copy_from_slice(&pre.params[..body_end]);
    Ok((mlp, params, true))
}

// The two phases side by side, so that their schedules can be compared.
/// Phase 1 (body frozen, head only) then phase 2 (everything, earlier
/// groups more gently). Returns the stats, the seconds and phase 2's
/// per-group rates.
fn phases(
    a: &FineTuneArgs,
    s: &TrainSetup,
    tr: &mut Trainer,
    groups: usize,
    data: (&Dataset, &Dataset),
) -> Result<(Vec<EpochStats>, f64, Vec<f64>)> {
    let mut out = s.console();
    let mut stats = Vec::new();
    let mut seconds = 0.0;
    let mut saved = None;
    let (freeze_epochs, epochs) = a.phase_epochs();
    if freeze_epochs > 0 {
        tr.freeze_body(true);
        tr.group_mult = vec![1.0; groups];
        let cfg = Config {
            epochs: freeze_epochs,
            schedule: Schedule::OneCycle {
                div: 25.0,
                div_final: 1e5,
                pct_start: 0.99,
                mom_max: 0.95,
                mom_min: 0.85,
            },
            ..s.cfg.clone()
        };
        if !s.quiet {
            writeln!(
                out,
                "phase 1: {} epochs, body frozen, head at lr {:.3e}",
                freeze_epochs, cfg.lr
            )?;
        }
        let phase = Phase {
            label: "frozen   ",
            first_epoch: 0,
        };
        let (st, secs) = run_epochs(s, tr, &cfg, data, &phase, &mut saved)?;
        stats.extend(st);
        seconds += secs;
    }
    let lr2 = s.cfg.lr / 2.0;
    let mults = discriminative(a.lr_mult, groups);
    if epochs > 0 {
        tr.freeze_body(false);
        tr.group_mult = mults.clone();
        let cfg = Config {
            lr: lr2,
            schedule: Schedule::OneCycle {
                div: 5.0,
                div_final: 1e5,
                pct_start: 0.3,
                mom_max: 0.95,
                mom_min: 0.85,
            },
            ..s.cfg.clone()
        };
        if !s.quiet {
            let rates: Vec<String> = mults.iter().map(|m| format!("{:.2e}", lr2 * m)).collect();
            writeln!(
                out,
                "phase 2: {} epochs, unfrozen, per-group lr (first to head): {}",
                epochs,
                rates.join(", ")
            )?;
        }
        let phase = Phase {
            label: "unfrozen ",
            first_epoch: stats.len(),
        };
        let offset = stats.len();
        let (st, secs) = run_epochs(s, tr, &cfg, data, &phase, &mut saved)?;
        stats.extend(st.into_iter().map(|mut e| {
            e.epoch += offset;
            e
        }));
        seconds += secs;
    }
    if stats.is_empty() {
        bail!("no epoch completed");
    }
    let group_lrs = mults.iter().map(|m| (lr2 * m) as f64).collect();
    Ok((stats, seconds, group_lrs))
}
