//! PyTorch's side of the fence: a model as a safetensors state dict, both
//! ways, through the `safetensors` crate.
//!
//! An MLP of `nn.Sequential(nn.Linear, nn.ReLU, nn.Linear, …)` stores
//! `<i>.weight` (shape `[out, in]`) and `<i>.bias` (`[out]`), `i` the
//! module's index (0, 2, 4, … with the ReLUs between), perhaps under a
//! common prefix (`model.`, `net.`). ember reads any such numbering in
//! order, assumes a ReLU between every two layers (the only activation its
//! MLP has) and writes the `nn.Sequential` numbering back, so that
//! `net.load_state_dict(safetensors.torch.load_file(FILE))` works.

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};

use crate::checkpoint::{check_task_widths, Checkpoint};
use crate::task::Task;
use ember::Mlp;

/// The largest safetensors file read: far past any MLP ember trains.
pub const MAX_BYTES: u64 = 4 << 30;

/// One Linear layer as PyTorch stores it.
struct Linear {
    /// `[out, in]`, row-major.
    weight: Vec<f32>,
    bias: Vec<f32>,
    in_dim: usize,
    out_dim: usize,
}

/// A tensor's values as f32 (f32, f16 and bf16 accepted).
fn values(name: &str, t: &TensorView<'_>) -> Result<Vec<f32>> {
    let d = t.data();
    let v: Vec<f32> = match t.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => bail!("{name} is {other:?}; ember imports f32, f16 and bf16 tensors"),
    };
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        bail!("{name} holds a non-finite value at element {i}");
    }
    Ok(v)
}

/// `model.net.4.weight` -> (`model.net.`, 4, `weight`).
fn split_name(name: &str) -> Option<(&str, usize, &str)> {
    let (head, kind) = name.rsplit_once('.')?;
    let (prefix, index) = match head.rsplit_once('.') {
        Some((p, i)) => (&name[..p.len() + 1], i),
        None => ("", head),
    };
    Some((prefix, index.parse().ok()?, kind))
}

/// Reads a state dict of Linear layers into a checkpoint; `task` is
/// inferred from the last width (10: digits, 1: 3v7) when not given.
///
/// # Errors
/// Anything but an MLP ember can run: a tensor that is not a Linear weight
/// or bias (a conv kernel, a batch-norm buffer), a missing bias, shapes
/// that do not chain, a first layer that does not take 784 pixels, an
/// output width that fits no task, a malformed file.
pub fn import(bytes: &[u8], task: Option<Task>) -> Result<Checkpoint> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow::anyhow!("not a valid safetensors file: {e}"))?;
    let mut layers: BTreeMap<usize, (Option<TensorView<'_>>, Option<TensorView<'_>>)> =
        BTreeMap::new();
    let mut prefixes = std::collections::BTreeSet::new();
    for (name, t) in st.tensors() {
        let Some((prefix, index, kind)) = split_name(&name) else {
            bail!(
                "tensor '{name}' (shape {:?}) is not '<i>.weight' or '<i>.bias' of a Linear layer",
                t.shape()
            );
        };
        prefixes.insert(prefix.to_string());
        let slot = layers.entry(index).or_default();
        match kind {
            "weight" if t.shape().len() == 2 => slot.0 = Some(t),
            "weight" => bail!(
                "'{name}' has shape {:?}: a Linear weight is [out, in] (a {}-d tensor is not \
                 a Linear layer: ember imports MLPs only)",
                t.shape(),
                t.shape().len()
            ),
            "bias" if t.shape().len() == 1 => slot.1 = Some(t),
            "bias" => bail!("'{name}' has shape {:?}: a Linear bias is [out]", t.shape()),
            _ => bail!(
                "tensor '{name}' (shape {:?}) is not a Linear weight or bias",
                t.shape()
            ),
        }
    }
    if prefixes.len() > 1 {
        bail!(
            "the tensors have different prefixes ({prefixes:?}); ember imports one nn.Sequential"
        );
    }
    if layers.is_empty() {
        bail!("the file holds no tensors");
    }
    let mut linear = Vec::new();
    for (index, (w, b)) in layers {
        let w = w.with_context(|| format!("layer {index} has a bias but no weight"))?;
        let b = b.with_context(|| {
            format!("layer {index} has no bias (ember's dense layers all have one)")
        })?;
        let (out_dim, in_dim) = (w.shape()[0], w.shape()[1]);
        if b.shape()[0] != out_dim {
            bail!(
                "layer {index}: the weight has {out_dim} outputs, the bias {}",
                b.shape()[0]
            );
        }
        if let Some(prev) = linear.last().map(|l: &Linear| l.out_dim) {
            if prev != in_dim {
                bail!("layer {index} takes {in_dim} inputs, the layer before gives {prev}: the shapes do not chain");
            }
        }
        linear.push(Linear {
            weight: values(&format!("{index}.weight"), &w)?,
            bias: values(&format!("{index}.bias"), &b)?,
            in_dim,
            out_dim,
        });
    }
    let mut widths = vec![linear[0].in_dim];
    widths.extend(linear.iter().map(|l| l.out_dim));
    let outputs = *widths.last().unwrap_or(&0);
    let task = match task {
        Some(t) => t,
        None if outputs == 10 => Task::Digits,
        None if outputs == 1 => Task::ThreeSeven,
        None => bail!(
            "the last layer gives {outputs} outputs: ember's tasks need 10 (digits) or 1 (3v7)"
        ),
    };
    check_task_widths(task, &widths)?;
    let mlp = Mlp::new(&widths).map_err(|e| anyhow::anyhow!("architecture {widths:?}: {e}"))?;
    let mut params = vec![0.0f32; mlp.param_len()];
    for (l, lin) in linear.iter().enumerate() {
        let (w, b) = mlp.layer_params(l);
        // PyTorch keeps W as [out, in]; ember's dense layer as [in, out].
        let dst = &mut params[w];
        for o in 0..lin.out_dim {
            for i in 0..lin.in_dim {
                dst[i * lin.out_dim + o] = lin.weight[o * lin.in_dim + i];
            }
        }
        params[b].copy_from_slice(&lin.bias);
    }
    Ok(Checkpoint { task, mlp, params })
}

/// A checkpoint as the state dict of `nn.Sequential(Linear, ReLU, Linear,
/// …)`: `0.weight`, `0.bias`, `2.weight`, … as f32, with the architecture
/// and task in `__metadata__`.
pub fn export(ck: &Checkpoint) -> Result<Vec<u8>> {
    let mlp = &ck.mlp;
    let mut tensors: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
    for l in 0..mlp.layers() {
        let d = mlp.layer(l);
        let (w, b) = mlp.layer_params(l);
        let w = &ck.params[w];
        let mut torch = Vec::with_capacity(4 * w.len());
        for o in 0..d.out_dim {
            for i in 0..d.in_dim {
                torch.extend_from_slice(&w[i * d.out_dim + o].to_le_bytes());
            }
        }
        let bias: Vec<u8> = ck.params[b].iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((
            format!("{}.weight", 2 * l),
            torch,
            vec![d.out_dim, d.in_dim],
        ));
        tensors.push((format!("{}.bias", 2 * l), bias, vec![d.out_dim]));
    }
    let views = tensors
        .iter()
        .map(|(n, data, shape)| {
            TensorView::new(Dtype::F32, shape.clone(), data)
                .map(|v| (n.clone(), v))
                .map_err(|e| anyhow::anyhow!("{n}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let arch = mlp
        .widths()
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("-");
    let meta = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("arch".to_string(), arch),
        ("task".to_string(), ck.task.name().to_string()),
        ("activation".to_string(), "relu between layers".to_string()),
        (
            "producer".to_string(),
            format!("ember {}", crate::report::VERSION),
        ),
    ]);
    safetensors::serialize(views, Some(meta)).map_err(|e| anyhow::anyhow!("safetensors: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_through_safetensors() {
        let mlp = Mlp::new(&[784, 5, 10]).unwrap();
        let mut params = vec![0.0; mlp.param_len()];
        mlp.init(&mut params, 3).unwrap();
        let ck = Checkpoint {
            task: Task::Digits,
            mlp,
            params,
        };
        let bytes = export(&ck).unwrap();
        let back = import(&bytes, None).unwrap();
        assert_eq!(back.task, Task::Digits);
        assert_eq!(back.mlp.widths(), ck.mlp.widths());
        assert_eq!(back.params, ck.params);
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let m = meta.metadata().as_ref().unwrap();
        assert_eq!(m["arch"], "784-5-10");
        assert!(SafeTensors::deserialize(&bytes)
            .unwrap()
            .tensor("2.weight")
            .is_ok());
    }

    #[test]
    fn names_split_with_any_prefix() {
        assert_eq!(split_name("0.weight"), Some(("", 0, "weight")));
        assert_eq!(
            split_name("model.net.4.bias"),
            Some(("model.net.", 4, "bias"))
        );
        assert_eq!(split_name("conv.weight"), None);
    }
}
