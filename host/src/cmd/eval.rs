//! `ember eval`: accuracy, per-class accuracy and confusion matrix of a model
//! on the test set.

use anyhow::{bail, Result};
use std::io::Write;
use std::path::Path;

use crate::checkpoint::Checkpoint;
use crate::cli::{json_num, json_str, Args, Spec, Usage};
use crate::mnist::{self, Split};
use crate::par::Pool;
use crate::train::{accuracy, classes_of, predict_logits, to_f32, Task};

pub const FLAGS: &[Spec] = &[
    ("model", true, "checkpoint (or exported blob) to evaluate"),
    ("data", true, "folder with the MNIST IDX files"),
    ("task", true, "digits or 3v7 (default: the model's)"),
    ("threads", true, "worker threads"),
    ("json", false, "print one JSON object"),
];

/// A loaded model of either kind, with its predictions.
pub struct Loaded {
    /// Task it was trained for.
    pub task: Task,
    /// `f32` or `int8`.
    pub kind: &'static str,
    /// The checkpoint (f32 models).
    pub ckpt: Checkpoint,
}

/// Loads `--model`.
pub fn load_model(path: &Path) -> Result<Loaded> {
    let ckpt = Checkpoint::load(path)?;
    Ok(Loaded {
        task: ckpt.task,
        kind: "f32",
        ckpt,
    })
}

/// Predicted classes for `images` (u8 pixels) by a loaded model.
pub fn predict_classes(m: &Loaded, pool: &Pool, images: &[u8]) -> Result<Vec<usize>> {
    let logits = predict_logits(pool, &m.ckpt.mlp, &m.ckpt.params, &to_f32(images))?;
    Ok(classes_of(m.task, &logits, m.ckpt.mlp.out_dim()))
}

/// `ember eval`.
pub fn run(argv: &[String]) -> Result<()> {
    let a = Args::parse("eval", argv, FLAGS)?;
    let Some(model) = a.str("model") else {
        return Err(Usage("ember eval: --model FILE is required".into()).into());
    };
    let m = load_model(Path::new(model))?;
    if let Some(t) = a.str("task") {
        let t = Task::from_name(t).ok_or_else(|| {
            Usage(format!(
                "ember eval: --task must be digits or 3v7, got '{t}'"
            ))
        })?;
        if t != m.task {
            bail!(
                "{model} was trained for task {}, not {}",
                m.task.name(),
                t.name()
            );
        }
    }
    let pool = Pool::new(a.get("threads", 0usize)?)?;
    let test = m
        .task
        .filter(&mnist::load(&mnist::data_dir(a.str("data")), Split::Test)?);
    let pred = predict_classes(&m, &pool, &test.images)?;
    let acc = accuracy(&pred, &test.labels)?;
    let k = m.task.classes();
    let mut conf = vec![vec![0usize; k]; k];
    for (p, l) in pred.iter().zip(&test.labels) {
        conf[*l as usize][*p] += 1;
    }
    let per: Vec<f64> = (0..k)
        .map(|c| {
            let n: usize = conf[c].iter().sum();
            if n == 0 {
                f64::NAN
            } else {
                conf[c][c] as f64 / n as f64
            }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if a.has("json") {
        let per_s: Vec<String> = per.iter().map(|x| json_num(*x)).collect();
        let conf_s: Vec<String> = conf
            .iter()
            .map(|r| {
                format!(
                    "[{}]",
                    r.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        writeln!(
            out,
            "{{\"accuracy\": {}, \"n\": {}, \"task\": {}, \"kind\": {}, \"per_class_accuracy\": [{}], \"confusion\": [{}]}}",
            json_num(acc),
            test.len(),
            json_str(m.task.name()),
            json_str(m.kind),
            per_s.join(", "),
            conf_s.join(", ")
        )?;
        return Ok(());
    }
    writeln!(out, "{model}: {} model, task {}", m.kind, m.task.name())?;
    writeln!(
        out,
        "accuracy {:.2}% on {} test images",
        100.0 * acc,
        test.len()
    )?;
    writeln!(out, "per class:")?;
    for (c, p) in per.iter().enumerate() {
        writeln!(out, "  {:>2}: {:6.2}%", m.task.class_name(c), 100.0 * p)?;
    }
    writeln!(
        out,
        "confusion matrix (rows: true class, columns: predicted):"
    )?;
    write!(out, "     ")?;
    for c in 0..k {
        write!(out, "{:>6}", m.task.class_name(c))?;
    }
    writeln!(out)?;
    for (c, row) in conf.iter().enumerate() {
        write!(out, "  {:>2} ", m.task.class_name(c))?;
        for x in row {
            write!(out, "{x:>6}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
