//! `ember fine-tune --on-device-sim`: what a microcontroller reaches when it
//! trains a head on itself. The checkpoint's body is quantized to int8 and
//! frozen, the head is an f32 layer (fresh when the task changes), and the
//! core's on-device trainer runs exactly as the firmware runs it; with
//! `--vectors DIR` the command writes what `firmware/src/bin/finetune.rs`
//! embeds, including the head it must reach bit for bit.

use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use crate::args::{FineTuneArgs, Lr};
use crate::checkpoint::Checkpoint;
use crate::cmd::common::{usage, widths_name, Usage};
use crate::console::Console;
use crate::data::sample::balanced_subset;
use crate::data::{self, Dataset, Split};
use crate::device_sim::{encode_images, simulate, Sim};
use crate::export::{self, BlobBytes, Calibration};
use crate::fsutil::{write_atomic, write_dest, Dest, Outputs};
use crate::interrupt;
use crate::par::{capped_threads, Pool};
use crate::report::{self, DeviceSimReport};
use crate::task::Task;
use ember::head::Plan;

/// Head epochs unless `--epochs` says otherwise.
const EPOCHS: usize = 30;
/// The most training steps a simulated run may take (a Cortex-M4F at 168
/// MHz needs about 5 minutes for them at the default size).
const MAX_STEPS: usize = 1_000_000;
/// Training images unless `--train-limit` says otherwise: a device learns
/// from a handful of labelled samples.
const TRAIN: usize = 20;
/// The accuracy the firmware requires before it says PASS, per 10,000: a
/// head learned from 20 images reaches 97.8-99.4% on the 500 held-back
/// images (median 98.9%) over 40 bodies trained as the README trains one
/// (`ember train --hidden 128,64 --seed 1..=20`, under two summation orders
/// of the first layer), so 97.5% fails a broken trainer, not an unlucky
/// body: a body's accuracy moves by a few images with any change of
/// rounding (98.5% had failed 4 of 20 bodies, 98.0% 1 of 20).
const TARGET_PER_10K: usize = 9750;
/// Calibration images of the body (as `ember export`'s default).
const CALIB: usize = 1000;

/// The files `--vectors DIR` writes.
const VECTOR_FILES: [&str; 7] = [
    "model.bin",
    "train.bin",
    "train_labels.bin",
    "test.bin",
    "test_labels.bin",
    "expected.bin",
    "meta.rs",
];

/// `ember fine-tune --on-device-sim`.
pub fn run(a: &FineTuneArgs) -> Result<()> {
    let fresh = a.vectors.as_ref().filter(|d| !d.exists()).cloned();
    let result = sim(a);
    if let (Err(_), Some(dir)) = (&result, fresh) {
        // Only an empty folder is removed: nothing of the user's goes.
        let _ = std::fs::remove_dir(dir);
    }
    result
}

fn sim(a: &FineTuneArgs) -> Result<()> {
    let h = &a.run.hyper;
    let plan = checked_plan(a)?;
    let data_dir = data::data_dir(h.data.data.as_deref());
    let metrics = plan_files(a, &data_dir)?;
    let ck = Checkpoint::load(&a.from)?;
    let task: Task = a.task.map_or(ck.task, Into::into);
    let new_head = ck.mlp.out_dim() != task.outputs() || ck.task != task;
    let pool = Pool::new(capped_threads(h.threads.threads))?;
    let calib = export::calibration_set(&ck, &data_dir, CALIB, h.seed)?;
    let fresh = new_head.then_some(task);
    let blob = BlobBytes::new(&export::head_blob(
        &pool,
        &ck,
        &calib.images,
        Calibration::MinMax,
        fresh,
    )?);
    let all = task.filter(&data::fetch_and_load(&data_dir, Split::Train)?);
    let train = balanced_subset(&all, task.classes(), h.train_limit.unwrap_or(TRAIN), h.seed);
    let test = task.filter(&data::fetch_and_load(&data_dir, Split::Test)?);
    // A batch larger than the data is the whole data (the same steps).
    let plan = Plan {
        batch: plan.batch.min(train.len()),
        ..plan
    };
    interrupt::check("fine-tune stopped; nothing was written")?;
    let s = simulate(&blob, &train, &test, &plan)?;
    interrupt::check("fine-tune stopped; nothing was written")?;

    let count = a.vectors_count.min(test.len());
    if let Some(dir) = &a.vectors {
        write_vectors(dir, &blob, (&train, &test, count), &plan, &s)?;
    }
    if let Some(out) = &a.run.out {
        write_atomic(out, &s.trained)?;
    }
    let m = blob.model()?;
    let widths: Vec<usize> = std::iter::once(m.input_len())
        .chain(m.layers.iter().map(|l| l.out_dim))
        .collect();
    let r = DeviceSimReport {
        from: a.from.display().to_string(),
        task: task.name().into(),
        arch: widths_name(&widths),
        new_head,
        train_examples: train.len(),
        test_n: test.len(),
        accuracy_before: s.correct_before as f64 / test.len().max(1) as f64,
        accuracy_after: s.correct_after as f64 / test.len().max(1) as f64,
        lr: f64::from(plan.lr),
        momentum: f64::from(plan.momentum),
        batch: plan.batch,
        epochs: plan.epochs,
        seed: plan.seed,
        steps: s.losses.len(),
        losses: s.losses.iter().map(|&l| f64::from(l)).collect(),
        state_bytes: 4 * ember::head::state_len(&m),
        feature_cache_bytes: 4 * train.len() * m.feature_len(),
        scratch_bytes: m.scratch_bytes(),
        blob: a.run.out.as_ref().map(|p| p.display().to_string()),
    };
    if let Some(dest) = &metrics {
        write_dest(dest, report::to_json(&r).as_bytes())?;
    }
    let mut o = Console::beside_json(matches!(metrics, Some(Dest::Stdout)));
    if !h.quiet {
        print_run(&mut o, a, &r, count)?;
    }
    writeln!(
        o,
        "done: test_accuracy {:.2}% before, {:.2}% after on-device training ({} test images)",
        100.0 * r.accuracy_before,
        100.0 * r.accuracy_after,
        r.test_n
    )?;
    Ok(())
}

/// The device's training plan from the flags, checked.
fn checked_plan(a: &FineTuneArgs) -> Result<Plan> {
    let h = &a.run.hyper;
    let Lr::Value(lr) = a.run.lr else {
        return Err(Usage(
            "ember fine-tune --on-device-sim: --lr takes a number (the device trains at a constant rate)"
                .into(),
        )
        .into());
    };
    let plan = Plan {
        lr,
        momentum: h.momentum,
        batch: h.batch,
        epochs: a.epochs.unwrap_or(EPOCHS),
        seed: h.seed,
    };
    if plan.epochs == 0 {
        return Err(
            Usage("ember fine-tune --on-device-sim: --epochs 0: nothing to train".into()).into(),
        );
    }
    // Every step's loss is kept (the report lists them), and a device would
    // take minutes per 10,000 steps: bound the run before any work.
    let images = h.train_limit.unwrap_or(TRAIN).max(1);
    let per_epoch = images.div_ceil(plan.batch.clamp(1, images));
    let steps = plan.epochs.saturating_mul(per_epoch);
    if steps > MAX_STEPS {
        return Err(Usage(format!(
            "ember fine-tune --on-device-sim: {} epochs of {per_epoch} steps are {steps} steps, \
             more than the {MAX_STEPS} a simulated device run may take; lower --epochs",
            plan.epochs
        ))
        .into());
    }
    Ok(plan)
}

/// Every file checked before any work: the inputs, `--out`, `--metrics`
/// (returned) and the vectors' files (their folder made if missing).
fn plan_files(a: &FineTuneArgs, data_dir: &Path) -> Result<Option<Dest>> {
    let bad = usage("fine-tune");
    let mut files = Outputs::new();
    files.data_inputs(data_dir, &data::FILES)?;
    files.input("--from", &a.from)?;
    if let Some(out) = &a.run.out {
        files.output("--out", out, false).map_err(&bad)?;
    }
    let metrics = match &a.run.metrics {
        Some(m) => Some(files.output("--metrics", m, true).map_err(&bad)?),
        None => None,
    };
    if let Some(dir) = &a.vectors {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the --vectors folder {}", dir.display()))?;
        }
        for f in VECTOR_FILES {
            files
                .output("--vectors", &dir.join(f), false)
                .map_err(&bad)?;
        }
    }
    Ok(metrics)
}

/// The human-readable account of a run (before the final line).
fn print_run(o: &mut Console, a: &FineTuneArgs, r: &DeviceSimReport, count: usize) -> Result<()> {
    let head = if r.new_head {
        "a fresh head"
    } else {
        "the checkpoint's head"
    };
    writeln!(
        o,
        "on-device simulation: {} as an int8 body with {head}, task {}",
        r.arch, r.task
    )?;
    writeln!(
        o,
        "training {} images: {} steps ({} epochs of batch {}, lr {}, momentum {}); loss {:.4} -> {:.4}",
        r.train_examples,
        r.steps,
        r.epochs,
        r.batch,
        r.lr as f32,
        r.momentum as f32,
        r.losses.first().copied().unwrap_or(f64::NAN),
        r.losses.last().copied().unwrap_or(f64::NAN)
    )?;
    writeln!(
        o,
        "device RAM for training: {} B of head state, {} B of cached features, {} B of scratch",
        r.state_bytes, r.feature_cache_bytes, r.scratch_bytes
    )?;
    if let Some(dir) = &a.vectors {
        writeln!(
            o,
            "vectors: {} ({count} test images; run them: cd firmware && EMBER_FINETUNE_DATA={} cargo run --release --bin finetune)",
            dir.display(),
            std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone()).display()
        )?;
    }
    if let Some(out) = &a.run.out {
        writeln!(o, "trained blob: {}", out.display())?;
    }
    Ok(())
}

/// Writes what the fine-tune firmware embeds: the blob it starts from, the
/// training images and the first `count` test images (zero-run coded) with
/// their labels, the head the host reached (`expected.bin`: weights then
/// biases, f32 little-endian) and `meta.rs` (shapes, plan, the host's counts).
fn write_vectors(
    dir: &Path,
    blob: &BlobBytes,
    (train, test, count): (&Dataset, &Dataset, usize),
    plan: &Plan,
    s: &Sim,
) -> Result<()> {
    let m = blob.model()?;
    let held = test.select(&(0..count).collect::<Vec<_>>());
    let correct = |pred: &[u8]| {
        pred[..count]
            .iter()
            .zip(&held.labels)
            .filter(|(p, l)| p == l)
            .count()
    };
    let (before, after) = (correct(&s.pred_before), correct(&s.pred_after));
    let expected: Vec<u8> = s
        .weight
        .iter()
        .chain(&s.bias)
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let (train_rle, test_rle) = (encode_images(train)?, encode_images(&held)?);
    write_atomic(&dir.join("model.bin"), blob.bytes())?;
    write_atomic(&dir.join("train.bin"), &train_rle)?;
    write_atomic(&dir.join("train_labels.bin"), &train.labels)?;
    write_atomic(&dir.join("test.bin"), &test_rle)?;
    write_atomic(&dir.join("test_labels.bin"), &held.labels)?;
    write_atomic(&dir.join("expected.bin"), &expected)?;
    let mut meta =
        String::from("// Generated by `ember fine-tune --on-device-sim --vectors`; do not edit.\n");
    let consts: [(&str, &str, String); 17] = [
        (
            "Scratch bytes of the body.",
            "SCRATCH_BYTES: usize",
            m.scratch_bytes().to_string(),
        ),
        (
            "Pixels per image.",
            "INPUTS: usize",
            m.input_len().to_string(),
        ),
        (
            "Features the head reads.",
            "FEATURES: usize",
            m.feature_len().to_string(),
        ),
        (
            "Outputs of the head.",
            "OUTPUTS: usize",
            m.output_len().to_string(),
        ),
        (
            "Floats of head-trainer state.",
            "STATE_LEN: usize",
            ember::head::state_len(&m).to_string(),
        ),
        (
            "Training images.",
            "TRAIN_COUNT: usize",
            train.len().to_string(),
        ),
        (
            "Held-back test images.",
            "TEST_COUNT: usize",
            count.to_string(),
        ),
        ("Learning rate.", "LR: f32", format!("{:?}", plan.lr)),
        ("Momentum.", "MOMENTUM: f32", format!("{:?}", plan.momentum)),
        ("Images per step.", "BATCH: usize", plan.batch.to_string()),
        ("Epochs.", "EPOCHS: usize", plan.epochs.to_string()),
        ("Shuffle seed.", "SEED: u64", plan.seed.to_string()),
        (
            "Steps of the run.",
            "STEPS: usize",
            s.losses.len().to_string(),
        ),
        (
            "The host's correct test predictions before training.",
            "HOST_CORRECT_BEFORE: usize",
            before.to_string(),
        ),
        (
            "The host's correct test predictions after training.",
            "HOST_CORRECT_AFTER: usize",
            after.to_string(),
        ),
        (
            "Accuracy (per 10,000) the firmware requires after training.",
            "TARGET_PER_10K: usize",
            TARGET_PER_10K.to_string(),
        ),
        (
            "The task code (0 digits, 1 threes vs sevens).",
            "TASK: u8",
            m.task.to_string(),
        ),
    ];
    for (doc, decl, value) in consts {
        let _ = writeln!(meta, "/// {doc}\npub const {decl} = {value};");
    }
    write_atomic(&dir.join("meta.rs"), meta.as_bytes())?;
    Ok(())
}
