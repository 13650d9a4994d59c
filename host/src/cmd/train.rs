//! `ember train`: trains an MLP on MNIST, writes a checkpoint and metrics.

use anyhow::Result;
use std::io::Write;

use crate::args::{Lr, TrainArgs};
use crate::cmd::common::{
    load_data, metrics, names, run_epochs, setup, summary, test_accuracy, write_metrics, Choice,
    Phase, RunSummary, Usage,
};
use crate::interrupt;
use crate::lr_find::{self, RangeTest};
use crate::train::Trainer;
use ember::Mlp;

/// `ember train`.
pub fn run(a: &TrainArgs) -> Result<()> {
    let task = a.task.into();
    let choice = Choice {
        cmd: "train",
        task,
        hidden: &a.hidden.0,
        epochs: a.epochs,
        inputs: &[],
    };
    let mut s = setup(&a.run.hyper, Some(&a.run), &choice)?;
    let widths = s.checked_widths(&a.hidden.0)?;
    let mlp = Mlp::new(&widths)
        .map_err(|e| Usage(format!("ember train: architecture {widths:?}: {e}")))?;
    let (train, valid, test) = load_data(&s, task)?;
    let mut params = vec![0.0; mlp.param_len()];
    mlp.init(&mut params, s.cfg.seed)
        .map_err(anyhow::Error::msg)?;
    let mut out = s.console();
    if !s.quiet {
        summary(&mut out, &mlp, task, &s.pool)?;
        writeln!(
            out,
            "data: {} training, {} validation and {} test examples from {}",
            train.len(),
            valid.len(),
            test.len(),
            s.data.display()
        )?;
    }
    if a.run.lr == Lr::Auto {
        let rt = RangeTest {
            batch: s.cfg.batch,
            seed: s.cfg.seed,
            ..RangeTest::default()
        };
        let curve = lr_find::run(&s.pool, &mlp, task, &params, s.cfg.rule, &train, &rt)?;
        interrupt::check(&format!(
            "during the --lr auto range test; {} was not written",
            s.out.display()
        ))?;
        s.cfg.lr = lr_find::suggest(&curve)?.suggested() as f32;
        writeln!(
            out,
            "--lr auto: the range test over {} mini-batches suggests lr {} (a tenth of the rate at the loss minimum)",
            curve.lrs.len(),
            s.cfg.lr
        )?;
    }
    let mut tr = Trainer::new(mlp.clone(), task, params, s.cfg.rule)?;
    let mut saved = None;
    let phase = Phase {
        label: "",
        first_epoch: 0,
    };
    let (stats, secs) = run_epochs(&s, &mut tr, &s.cfg, (&train, &valid), &phase, &mut saved)?;
    let acc = test_accuracy(&s.pool, &tr, &test)?;
    if let Some(m) = &s.metrics {
        let r = RunSummary {
            mlp: &mlp,
            setup: &s,
            train_examples: train.len(),
            valid: valid.len(),
            epochs: a.epochs,
            test: (acc, test.len()),
            seconds: secs,
            names: names(&a.run.hyper, &a.run),
            fine_tune: None,
        };
        write_metrics(m, &metrics(&r, &stats))?;
    }
    writeln!(
        out,
        "done: test_accuracy {:.2}% after {} epochs in {:.1}s; checkpoint {}",
        100.0 * acc,
        stats.len(),
        secs,
        s.out.display()
    )?;
    Ok(())
}
