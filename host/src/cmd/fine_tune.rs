//! `ember fine-tune`: transfer learning. Keep a pretrained body, give it a new
//! head when the task's output differs, train the head alone with the body
//! frozen, then unfreeze and train everything with discriminative learning
//! rates (fastai's `fine_tune`).

use anyhow::{bail, Result};
use std::io::Write;
use std::path::PathBuf;

use crate::checkpoint::Checkpoint;
use crate::cli::{json_num, Args, Spec, Usage};
use crate::cmd::train::{
    checked_widths, load_data, run_epochs, setup, summary, write_metrics, Defaults, TRAIN_FLAGS,
};
use crate::train::{discriminative, Schedule, Trainer};
use ember::Mlp;

/// Defaults: the same optimizer and peak rate as `train` (SGD, 0.1), and the
/// same 8-epoch budget split in half: 4 epochs for the head alone, 4 for
/// everything. (fastai's AdamW at 2e-3 reached only 30-68% here in that
/// budget with 20 images.)
const DEFAULT_LR: f32 = 0.1;
const DEFAULT_EPOCHS: usize = 4;
const DEFAULT_FREEZE_EPOCHS: usize = 4;
const DEFAULT_LR_MULT: f32 = 100.0;

/// The flags of `ember fine-tune`: the training flags (no --hidden) and its own.
pub fn flags() -> Vec<Spec> {
    let mut f: Vec<Spec> = TRAIN_FLAGS
        .iter()
        .filter(|f| f.0 != "hidden")
        .copied()
        .collect();
    f.extend_from_slice(&[
        ("from", true, "the pretrained checkpoint (required)"),
        (
            "freeze-epochs",
            true,
            "epochs training only the head (default 4)",
        ),
        (
            "lr-mult",
            true,
            "the first group trains at lr / lr-mult (default 100)",
        ),
        (
            "groups",
            true,
            "parameter groups (default: one per dense layer)",
        ),
    ]);
    f
}

/// `ember fine-tune`.
pub fn run(argv: &[String]) -> Result<()> {
    let spec = flags();
    let a = Args::parse("fine-tune", argv, &spec)?;
    let Some(from) = a.str("from").map(PathBuf::from) else {
        return Err(Usage("ember fine-tune: --from CHECKPOINT is required".into()).into());
    };
    // The task defaults to the checkpoint's, so the flags are read after
    // its header; its outputs are then checked against --from itself.
    let pre = Checkpoint::load(&from)?;
    let d = Defaults {
        task: pre.task,
        lr: DEFAULT_LR,
        epochs: DEFAULT_EPOCHS,
        optimizer: "sgd",
        checkpoint: true,
        zero_epochs: true,
    };
    let s = setup(&a, &d, &[("--from", &from)])?;
    let freeze_epochs: usize = a.get("freeze-epochs", DEFAULT_FREEZE_EPOCHS)?;
    let lr_mult = a.positive_f32("lr-mult", DEFAULT_LR_MULT)?;
    if freeze_epochs + s.cfg.epochs == 0 {
        return Err(Usage(
            "ember fine-tune: --freeze-epochs and --epochs are both 0: nothing to train".into(),
        )
        .into());
    }
    let task = s.cfg.task;
    let pre_widths = pre.mlp.widths();
    checked_widths(&s, &pre_widths[1..pre_widths.len() - 1], 60_000)?;

    // The body is kept; the head is replaced when the task's output differs.
    let mut widths = pre.mlp.widths().to_vec();
    let new_head = *widths.last().unwrap_or(&0) != task.outputs();
    let mut out = s.console();
    let mlp;
    let mut params;
    if new_head {
        let last = widths.len() - 1;
        widths[last] = task.outputs();
        mlp = Mlp::new(&widths).map_err(anyhow::Error::msg)?;
        params = vec![0.0; mlp.param_len()];
        mlp.init(&mut params, s.cfg.seed)
            .map_err(anyhow::Error::msg)?; // fresh head (and body, overwritten next)
        let body_end = pre.mlp.layer_params(pre.mlp.layers() - 1).0.start;
        params[..body_end].copy_from_slice(&pre.params[..body_end]);
    } else {
        mlp = pre.mlp.clone();
        params = pre.params.clone();
    }
    let mut tr = Trainer::new(mlp.clone(), task, params, s.cfg.rule)?;
    let groups: usize = a.get("groups", mlp.layers())?;
    tr.set_groups(groups)
        .map_err(|e| Usage(format!("ember fine-tune: {e}")))?;
    if !s.quiet {
        summary(&mut out, &mlp, task, &s.pool)?;
        writeln!(
            out,
            "from {} ({} task {}): {}",
            from.display(),
            crate::cmd::train::arch_name(&pre.mlp),
            pre.task.name(),
            if new_head {
                format!("new {}-unit head for task {}", task.outputs(), task.name())
            } else {
                "head kept".into()
            }
        )?;
    }
    let (train, test) = load_data(&s, task)?;
    if !s.quiet {
        writeln!(
            out,
            "data: {} training and {} test examples",
            train.len(),
            test.len()
        )?;
    }

    let mut stats = Vec::new();
    let mut seconds = 0.0;
    let mut saved = None;
    if freeze_epochs > 0 {
        // Phase 1: the body is frozen; only the head's group trains.
        tr.freeze_body(true);
        tr.group_mult = vec![1.0; groups];
        let cfg = crate::train::Config {
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
                "phase 1: {freeze_epochs} epochs, body frozen, head at lr {:.3e}",
                cfg.lr
            )?;
        }
        let (st, secs) = run_epochs(&s, &mut tr, &cfg, &train, &test, "frozen   ", 0, &mut saved)?;
        stats.extend(st);
        seconds += secs;
    }
    let lr2 = s.cfg.lr / 2.0;
    let mults = discriminative(lr_mult, groups);
    if s.cfg.epochs > 0 {
        // Phase 2: everything trains, earlier groups more gently.
        tr.freeze_body(false);
        tr.group_mult = mults.clone();
        let cfg = crate::train::Config {
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
                cfg.epochs,
                rates.join(", ")
            )?;
        }
        let offset = stats.len();
        let (st, secs) = run_epochs(
            &s,
            &mut tr,
            &cfg,
            &train,
            &test,
            "unfrozen ",
            offset,
            &mut saved,
        )?;
        stats.extend(st.into_iter().map(|mut e| {
            e.epoch += offset;
            e
        }));
        seconds += secs;
    }
    if stats.is_empty() {
        bail!("no epoch completed");
    }
    if let Some(m) = &s.metrics {
        let rates: Vec<String> = mults.iter().map(|m| json_num((lr2 * m) as f64)).collect();
        let extra = format!(
            "\n  \"from\": {},\n  \"new_head\": {new_head},\n  \"freeze_epochs\": {freeze_epochs},\n  \"lr_mult\": {},\n  \"group_lrs\": [{}],",
            crate::cli::json_str(&from.display().to_string()),
            json_num(lr_mult as f64),
            rates.join(", ")
        );
        write_metrics(m, &mlp, task, &stats, seconds, &extra)?;
    }
    let acc = stats.last().map(|e| e.test_accuracy).unwrap_or(0.0);
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
