//! From a trained f32 checkpoint to a blob: calibrate activation ranges on
//! training images, quantize every layer with the core's quantizer, lay the
//! blob out with the core's writer. The C header / Rust source wrappers are
//! in `codegen`, the boards' flash and RAM in `board`.

pub mod board;
pub mod codegen;
pub use codegen::{c_header, rust_source};

use anyhow::{bail, Context, Result};
use std::path::Path;

use crate::checkpoint::Checkpoint;
use crate::data::sample::balanced_subset;
use crate::data::{self, to_f32, Dataset, Split};
use crate::par::Pool;
use crate::task::Task;
use ember::blob::{self, LayerData, LayerSpec, Model};
use ember::quant::{min_output_scale, quantize_dense, ActQuant, QuantizedDense, Requant, INPUT};

/// How activation ranges are calibrated.
#[derive(Clone, Copy, Debug)]
pub enum Calibration {
    /// The observed minimum and maximum.
    MinMax,
    /// The given percentile of the values (e.g. 99.99), below and above.
    Percentile(f64),
}

/// Calibrates the output range of every layer: runs the f32 model on
/// `images` and returns (lo, hi) per layer.
pub fn calibrate(
    pool: &Pool,
    ck: &Checkpoint,
    images: &[u8],
    how: Calibration,
) -> Result<Vec<(f32, f32)>> {
    let mlp = &ck.mlp;
    let n = images.len() / mlp.in_dim();
    if n == 0 {
        bail!("no calibration images");
    }
    let x = to_f32(images);
    let mut acts = vec![0.0; mlp.act_len(n)];
    pool.install(|| mlp.forward(pool, &ck.params, &x, &mut acts, n))
        .map_err(anyhow::Error::msg)?;
    let mut out = Vec::new();
    let mut start = 0;
    for l in 0..mlp.layers() {
        let len = n * mlp.layer(l).out_dim;
        let vals = &acts[start..start + len];
        start += len;
        out.push(match how {
            Calibration::MinMax => vals
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                }),
            Calibration::Percentile(p) => {
                let mut v = vals.to_vec();
                v.sort_by(f32::total_cmp);
                let at = |q: f64| v[((q / 100.0) * (v.len() - 1) as f64).round() as usize];
                (at(100.0 - p), at(p))
            }
        });
    }
    Ok(out)
}

/// One quantized layer's tensors, owned.
pub struct QuantLayer {
    /// int8 weight, out × in.
    pub weight: Vec<i8>,
    /// int32 bias (input zero point folded in).
    pub bias: Vec<i32>,
    /// Per-channel requantization.
    pub requant: Vec<Requant>,
    /// Output quantization.
    pub output: ActQuant,
}

/// The tensors of a quantized model, owned.
pub struct Quantized {
    /// The layers, first to last.
    pub layers: Vec<QuantLayer>,
}

/// Quantizes `ck` with the calibrated ranges.
pub fn quantize(ck: &Checkpoint, ranges: &[(f32, f32)]) -> Result<Quantized> {
    let mlp = &ck.mlp;
    let mut input = INPUT;
    let mut layers = Vec::new();
    for (l, &(lo, hi)) in ranges.iter().enumerate() {
        let d = mlp.layer(l);
        let (w, b) = mlp.layer_params(l);
        let (w, b) = (&ck.params[w], &ck.params[b]);
        let floor = min_output_scale(w, d.in_dim, d.out_dim, input);
        let output = ActQuant::from_range_min_scale(lo, hi, floor);
        let mut wq = vec![0i8; d.weight_len()];
        let mut bq = vec![0i32; d.out_dim];
        let mut rq = vec![
            Requant {
                multiplier: 0,
                shift: 0
            };
            d.out_dim
        ];
        quantize_dense(
            w,
            b,
            d.in_dim,
            input,
            output,
            QuantizedDense {
                weight: &mut wq,
                bias: &mut bq,
                requant: &mut rq,
            },
        )
        .map_err(|e| anyhow::anyhow!("quantizing layer {l}: {e}"))?;
        layers.push(QuantLayer {
            weight: wq,
            bias: bq,
            requant: rq,
            output,
        });
        input = output;
    }
    Ok(Quantized { layers })
}

/// The training images that calibrate `ck`'s activation ranges: `calib` of
/// the task's training images, picked like --train-limit (seeded, balanced
/// over the classes), or all of them when there are fewer.
pub fn calibration_set(
    ck: &Checkpoint,
    data_dir: &Path,
    calib: usize,
    seed: u64,
) -> Result<Dataset> {
    let train = ck
        .task
        .filter(&data::fetch_and_load(data_dir, Split::Train)?);
    Ok(if calib >= train.len() {
        train
    } else {
        balanced_subset(&train, ck.task.classes(), calib, seed)
    })
}

/// The int8 layer specs of `q`'s layers (the first `q.layers.len()` of
/// `mlp`), ReLU on every one but the model's last.
fn int8_specs<'q>(mlp: &ember::Mlp, q: &'q Quantized) -> Vec<LayerSpec<'q>> {
    q.layers
        .iter()
        .enumerate()
        .map(|(l, q)| LayerSpec {
            in_dim: mlp.layer(l).in_dim,
            out_dim: mlp.layer(l).out_dim,
            relu: l + 1 < mlp.layers(),
            data: LayerData::Int8 {
                weight: &q.weight,
                bias: &q.bias,
                requant: &q.requant,
                output: q.output,
            },
        })
        .collect()
}

/// The int8 blob of `ck`, calibrated on `calib` images.
pub fn int8_blob(pool: &Pool, ck: &Checkpoint, calib: &[u8], how: Calibration) -> Result<Vec<u8>> {
    let ranges = calibrate(pool, ck, calib, how)?;
    let q = quantize(ck, &ranges)?;
    write_specs(ck.task, &int8_specs(&ck.mlp, &q))
}

/// The blob of `ck` with a trainable head (format 1.1): the body (every
/// layer but the last) quantized to int8 as [`int8_blob`] does, the last
/// layer kept in f32 — or, with `fresh = Some(task)`, replaced by a fresh
/// head for `task` (the core's `head::fresh`: zeros, as a device's
/// `HeadTrainer::reinit` makes it).
pub fn head_blob(
    pool: &Pool,
    ck: &Checkpoint,
    calib: &[u8],
    how: Calibration,
    fresh: Option<Task>,
) -> Result<Vec<u8>> {
    let mlp = &ck.mlp;
    let body = mlp.layers() - 1;
    if body == 0 {
        bail!(
            "a trainable head needs a body under it: {} has a single layer (train with --hidden)",
            crate::cmd::common::arch_name(mlp)
        );
    }
    let ranges = calibrate(pool, ck, calib, how)?;
    let q = quantize(ck, &ranges[..body])?;
    let mut specs = int8_specs(mlp, &q);
    let in_dim = mlp.layer(body).in_dim;
    let (task, weight, bias) = match fresh {
        Some(task) => {
            let mut w = vec![0.0; in_dim * task.outputs()];
            let mut b = vec![0.0; task.outputs()];
            ember::head::fresh(&mut w, &mut b);
            (task, w, b)
        }
        None => {
            let (w, b) = mlp.layer_params(body);
            (ck.task, ck.params[w].to_vec(), ck.params[b].to_vec())
        }
    };
    specs.push(LayerSpec {
        in_dim,
        out_dim: bias.len(),
        relu: false,
        data: LayerData::F32 {
            weight: &weight,
            bias: &bias,
        },
    });
    write_specs(task, &specs)
}

/// The f32 blob of `ck` (no quantization; for MCUs with an FPU).
pub fn f32_blob(ck: &Checkpoint) -> Result<Vec<u8>> {
    let mlp = &ck.mlp;
    let specs: Vec<LayerSpec<'_>> = (0..mlp.layers())
        .map(|l| {
            let (w, b) = mlp.layer_params(l);
            LayerSpec {
                in_dim: mlp.layer(l).in_dim,
                out_dim: mlp.layer(l).out_dim,
                relu: l + 1 < mlp.layers(),
                data: LayerData::F32 {
                    weight: &ck.params[w],
                    bias: &ck.params[b],
                },
            }
        })
        .collect();
    write_specs(ck.task, &specs)
}

fn write_specs(task: Task, specs: &[LayerSpec<'_>]) -> Result<Vec<u8>> {
    let n = blob::blob_len(specs).map_err(|e| anyhow::anyhow!("laying out the blob: {e}"))?;
    let mut out = vec![0u8; n];
    blob::write(task.code(), specs, &mut out)
        .map_err(|e| anyhow::anyhow!("writing the blob: {e}"))?;
    Ok(out)
}

/// Blob bytes held at a 16-byte aligned address, as the format requires.
pub struct BlobBytes {
    storage: Vec<u8>,
    offset: usize,
    len: usize,
}

impl BlobBytes {
    /// An aligned copy of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut storage = vec![0u8; bytes.len() + blob::ALIGN];
        let offset = (blob::ALIGN - storage.as_ptr() as usize % blob::ALIGN) % blob::ALIGN;
        storage[offset..offset + bytes.len()].copy_from_slice(bytes);
        BlobBytes {
            storage,
            offset,
            len: bytes.len(),
        }
    }
    /// The aligned bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.storage[self.offset..self.offset + self.len]
    }
    /// Parses them; an error names the field, its value and the rule.
    pub fn model(&self) -> Result<Model<'_>> {
        blob::parse(self.bytes()).map_err(|e| {
            anyhow::anyhow!(
                "not a valid ember model blob: {}",
                crate::blob_error::explain(self.bytes(), e)
            )
        })
    }
}

/// Reads and parses a blob file. The header's total length is checked
/// against the file's before the file is read, so a huge or endless file is
/// refused unread.
pub fn load_blob(path: &Path) -> Result<BlobBytes> {
    use std::io::Read;
    let what = "the model blob";
    let (mut f, len) = crate::fsutil::open_bounded(path, what, u32::MAX as u64)?;
    let mut head = Vec::with_capacity(16);
    (&mut f)
        .take(16)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if head.len() == 16 && head[..8] == blob::MAGIC {
        let declared = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as u64;
        if declared != len {
            bail!(
                "{}: not a valid ember model blob: the header says {declared} bytes, the file has {len}: truncated, or trailing bytes",
                path.display()
            );
        }
    }
    let raw = crate::fsutil::read_bounded(path, what, len)?;
    let b = BlobBytes::new(&raw);
    b.model().with_context(|| format!("{}", path.display()))?;
    Ok(b)
}

/// The task a blob was exported for.
/// The blob must fit it: MNIST's 784 inputs and the task's outputs (the
/// core's parser already ties the task to one output or several).
pub fn blob_task(m: &Model<'_>) -> Result<Task> {
    let task = Task::from_code(m.task).context("the blob names an unknown task")?;
    let widths = [m.input_len(), m.output_len()];
    crate::checkpoint::check_task_widths(task, &widths).context("the model blob")?;
    Ok(task)
}
