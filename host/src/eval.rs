//! Models on the test set: loading a checkpoint or a blob (told apart by
//! their magic), their logits and classes, and fastai-style interpretation
//! (the confusion matrix, the top losses, the most confused pairs).

use anyhow::{Context, Result};
use std::path::Path;

use crate::checkpoint::Checkpoint;
use crate::data::{to_f32, PIXELS};
use crate::export::{self, BlobBytes};
use crate::par::Pool;
use crate::report::{Confusion, TopLoss};
use crate::task::Task;
use crate::train::{mean_loss, predict_logits};
use ember::blob::Dtype;

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

/// Loads a checkpoint or a blob, told apart by their magic; both are
/// checked to take 784 pixels and give the task's outputs.
pub fn load_model(path: &Path) -> Result<Loaded> {
    let mut magic = [0u8; 8];
    let (mut f, _) = crate::fsutil::open_bounded(path, "the model", 16 << 30)?;
    let got = std::io::Read::read(&mut f, &mut magic)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if got == 8 && magic == ember::blob::MAGIC {
        let b = export::load_blob(path)?;
        let m = b.model()?;
        let task = export::blob_task(&m).with_context(|| format!("{}", path.display()))?;
        let kind = match m.dtype {
            Dtype::Int8 => "int8",
            Dtype::F32 => "f32",
            Dtype::Int8Head => "int8+f32 head",
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

impl Loaded {
    /// Outputs per image.
    pub fn outputs(&self) -> usize {
        self.task.outputs()
    }
}

/// A blob's real-valued logits for a share of the images: int8 models by
/// the batched integer inference, dequantized (`s · (q − z)`, strictly
/// increasing in the code `q`, so the arg-max and the sign are the integer
/// decision the device makes), f32 models and trainable heads image by image.
fn blob_logits(b: &BlobBytes, images: &[u8]) -> Result<Vec<f32>> {
    let model = b.model()?;
    let k = model.output_len();
    let mut out = vec![0.0f32; images.len() / PIXELS * k];
    match model.dtype {
        Dtype::Int8 => {
            // The weights packed once for the batched kernel, then 256
            // images a call: each weight load serves a block of them.
            let isa = ember::Isa::active();
            let mut room = vec![0u8; model.batch_plan_bytes(isa)];
            let plan = model
                .plan_batch(isa, &mut room)
                .map_err(anyhow::Error::msg)?;
            let mut scratch = vec![0u8; plan.scratch_bytes(256).unwrap_or(0)];
            let mut q = vec![0i8; 256 * k];
            let oq = model.output_quant();
            for (chunk, o) in images.chunks(256 * PIXELS).zip(out.chunks_mut(256 * k)) {
                let q = &mut q[..o.len()];
                plan.infer(chunk, &mut scratch, q)
                    .map_err(anyhow::Error::msg)?;
                for (y, &v) in o.iter_mut().zip(q.iter()) {
                    *y = oq.scale * (v as i32 - oq.zero_point) as f32;
                }
            }
        }
        // f32 models, and an int8 body under a trainable f32 head.
        Dtype::F32 | Dtype::Int8Head => {
            let mut scratch = vec![0u8; model.scratch_bytes()];
            for (img, o) in images.chunks_exact(PIXELS).zip(out.chunks_exact_mut(k)) {
                model
                    .infer_f32(img, &mut scratch, o)
                    .map_err(anyhow::Error::msg)?;
            }
        }
    }
    Ok(out)
}

/// Real-valued logits of `images` (u8 pixels), `outputs()` per image; a
/// blob runs over the pool's threads.
pub fn logits(m: &Loaded, pool: &Pool, images: &[u8]) -> Result<Vec<f32>> {
    match &m.weights {
        Weights::Checkpoint(c) => predict_logits(pool, &c.mlp, &c.params, &to_f32(images)),
        Weights::Blob(b) => {
            let n = images.len() / PIXELS;
            let parts = pool.map_shares(n, &|r| {
                blob_logits(b, &images[r.start * PIXELS..r.end * PIXELS])
            });
            let mut out = Vec::with_capacity(n * m.outputs());
            for p in parts {
                out.extend(p?);
            }
            Ok(out)
        }
    }
}

/// Each image's loss (cross-entropy, or binary cross-entropy for 3v7, by
/// the core's loss functions, as training computes them) and the
/// probability it gives the true class, `e^−loss`.
pub fn losses(task: Task, logits: &[f32], labels: &[u8]) -> Result<Vec<(f64, f64)>> {
    logits
        .chunks_exact(task.outputs())
        .zip(labels)
        .map(|(row, &label)| {
            let loss = mean_loss(task, row, &[label])?;
            Ok((loss, (-loss).exp()))
        })
        .collect()
}

/// The `k` images with the highest loss, worst first. `index` maps a row
/// of `labels` back to its index among all test images.
pub fn top_losses(
    task: Task,
    logits: &[f32],
    labels: &[u8],
    pred: &[usize],
    index: &[usize],
    k: usize,
) -> Result<Vec<TopLoss>> {
    let l = losses(task, logits, labels)?;
    let mut order: Vec<usize> = (0..l.len()).collect();
    order.sort_by(|&a, &b| l[b].0.total_cmp(&l[a].0).then(a.cmp(&b)));
    Ok(order
        .into_iter()
        .take(k)
        .map(|i| TopLoss {
            index: index.get(i).copied().unwrap_or(i),
            label: task.class_name(labels[i] as usize),
            predicted: task.class_name(pred[i]),
            loss: l[i].0,
            probability: l[i].1,
        })
        .collect())
}

/// The confusion matrix: rows the true class, columns the predicted one.
pub fn confusion(task: Task, pred: &[usize], labels: &[u8]) -> Vec<Vec<usize>> {
    let k = task.classes();
    let mut conf = vec![vec![0usize; k]; k];
    for (&p, &l) in pred.iter().zip(labels) {
        if let Some(cell) = conf.get_mut(l as usize).and_then(|row| row.get_mut(p)) {
            *cell += 1;
        }
    }
    conf
}

/// The `k` most frequent off-diagonal cells of a confusion matrix, as
/// fastai's `most_confused`: (true, predicted, count), most first.
pub fn most_confused(task: Task, conf: &[Vec<usize>], k: usize) -> Vec<Confusion> {
    let mut cells: Vec<(usize, usize, usize)> = conf
        .iter()
        .enumerate()
        .flat_map(|(a, row)| row.iter().enumerate().map(move |(p, &n)| (a, p, n)))
        .filter(|&(a, p, n)| a != p && n > 0)
        .collect();
    cells.sort_by(|x, y| y.2.cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
    cells
        .into_iter()
        .take(k)
        .map(|(a, p, n)| Confusion {
            actual: task.class_name(a),
            predicted: task.class_name(p),
            count: n,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::classes_of;

    #[test]
    fn losses_confusion_and_top_losses() {
        // Two digits rows: confident right, confident wrong.
        let mut logits = vec![0.0f32; 20];
        logits[3] = 10.0; // row 0 says 3
        logits[10 + 5] = 10.0; // row 1 says 5
        let labels = [3u8, 8];
        let l = losses(Task::Digits, &logits, &labels).unwrap();
        assert!(l[0].0 < 0.01 && l[1].0 > 9.0 && l[0].1 > 0.99);
        let pred = classes_of(Task::Digits, &logits, 10);
        let top = top_losses(Task::Digits, &logits, &labels, &pred, &[40, 41], 1).unwrap();
        assert_eq!(
            (
                top[0].index,
                top[0].label.as_str(),
                top[0].predicted.as_str()
            ),
            (41, "8", "5")
        );
        let conf = confusion(Task::Digits, &pred, &labels);
        assert_eq!(conf[8][5], 1);
        let mc = most_confused(Task::Digits, &conf, 5);
        assert_eq!(mc.len(), 1);
        assert_eq!(
            (mc[0].actual.as_str(), mc[0].predicted.as_str(), mc[0].count),
            ("8", "5", 1)
        );
        // 3v7: a huge logit keeps a finite loss.
        let l = losses(Task::ThreeSeven, &[-1000.0], &[1]).unwrap(); // a seven
        assert!((l[0].0 - 1000.0).abs() < 1e-9);
    }
}
