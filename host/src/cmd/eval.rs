//! `ember eval`: accuracy, per-class accuracy and confusion matrix of a model
//! on the test set.

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

use crate::checkpoint::Checkpoint;
use crate::cli::{json_num, json_str, Args, Spec, Usage};
use crate::export::{self, BlobBytes};
use crate::mnist::{self, Split};
use crate::par::Pool;
use crate::train::{accuracy, classes_of, predict_logits, to_f32, Task};
use ember::blob::Dtype;

pub const FLAGS: &[Spec] = &[
    ("model", true, "checkpoint (or exported blob) to evaluate"),
    ("data", true, "folder with the MNIST IDX files"),
    ("task", true, "digits or 3v7 (default: the model's)"),
    ("threads", true, "worker threads"),
    ("json", false, "print one JSON object"),
];

/// The weights of a loaded model.
pub enum Weights {
    /// An f32 checkpoint.
    Checkpoint(Checkpoint),
    /// An exported blob (int8 or f32), run by the core's blob inference.
    Blob(BlobBytes),
}

/// A loaded model of either kind.
pub struct Loaded {
    /// Task it was trained for.
    pub task: Task,
    /// `f32` or `int8`.
    pub kind: &'static str,
    /// The weights.
    pub weights: Weights,
}

/// Loads `--model`: a checkpoint or a blob, told apart by their magic.
pub fn load_model(path: &Path) -> Result<Loaded> {
    let mut magic = [0u8; 8];
    let (mut f, _) = crate::fsutil::open_bounded(path, "the model", 16 << 30)?;
    let got = std::io::Read::read(&mut f, &mut magic)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if got == 8 && magic == ember::blob::MAGIC {
        let b = export::load_blob(path)?;
        let m = b.model()?;
        let task = export::blob_task(&m)?;
        let kind = match m.dtype {
            Dtype::Int8 => "int8",
            Dtype::F32 => "f32",
        };
        drop(m);
        return Ok(Loaded {
            task,
            kind,
            weights: Weights::Blob(b),
        });
    }
    let ckpt = Checkpoint::load(path).map_err(|e| {
        if got < 8 || &magic != crate::checkpoint::MAGIC {
            anyhow::anyhow!(
                "{}: neither an ember checkpoint nor a model blob (bad magic)",
                path.display()
            )
        } else {
            e
        }
    })?;
    Ok(Loaded {
        task: ckpt.task,
        kind: "f32",
        weights: Weights::Checkpoint(ckpt),
    })
}

/// Real-valued logits of one image (dequantized for int8 blobs).
pub fn logits_of(m: &Loaded, pool: &Pool, pixels: &[u8]) -> Result<Vec<f32>> {
    match &m.weights {
        Weights::Checkpoint(c) => predict_logits(pool, &c.mlp, &c.params, &to_f32(pixels)),
        Weights::Blob(b) => {
            let model = b.model()?;
            let mut scratch = vec![0u8; model.scratch_bytes()];
            let n = model.output_len();
            match model.dtype {
                Dtype::Int8 => {
                    let mut q = vec![0i8; n];
                    model
                        .infer_i8(pixels, &mut scratch, &mut q)
                        .map_err(anyhow::Error::msg)?;
                    let oq = model.output_quant();
                    Ok(q.iter()
                        .map(|&v| oq.scale * (v as i32 - oq.zero_point) as f32)
                        .collect())
                }
                Dtype::F32 => {
                    let mut y = vec![0.0f32; n];
                    model
                        .infer_f32(pixels, &mut scratch, &mut y)
                        .map_err(anyhow::Error::msg)?;
                    Ok(y)
                }
            }
        }
    }
}

/// Predicted classes for `images` (u8 pixels) by a loaded model.
pub fn predict_classes(m: &Loaded, pool: &Pool, images: &[u8]) -> Result<Vec<usize>> {
    match &m.weights {
        Weights::Checkpoint(c) => {
            let logits = predict_logits(pool, &c.mlp, &c.params, &to_f32(images))?;
            Ok(classes_of(m.task, &logits, c.mlp.out_dim()))
        }
        Weights::Blob(b) => {
            let model = b.model()?;
            let n_in = model.input_len();
            if n_in != mnist::PIXELS {
                bail!(
                    "the blob takes {n_in} inputs, MNIST images have {}",
                    mnist::PIXELS
                );
            }
            pool.install(|| {
                images
                    .par_chunks(n_in * 256)
                    .map(|chunk| {
                        let mut scratch = vec![0u8; model.scratch_bytes()];
                        chunk
                            .chunks_exact(n_in)
                            .map(|img| model.predict(img, &mut scratch).map_err(anyhow::Error::msg))
                            .collect::<Result<Vec<usize>>>()
                    })
                    .collect::<Result<Vec<Vec<usize>>>>()
            })
            .map(|v| v.concat())
        }
    }
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
    let pool = Pool::new(a.threads()?)?;
    let test = m.task.filter(&mnist::fetch_and_load(
        &mnist::data_dir(a.str("data")),
        Split::Test,
    )?);
    crate::interrupt::check("eval stopped")?;
    let pred = predict_classes(&m, &pool, &test.images)?;
    crate::interrupt::check("eval stopped")?;
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
