//! The blob writer: lays a model out exactly as `docs/FORMAT.md` says, into a
//! caller's buffer, so host and firmware share one definition of the format.
#![forbid(unsafe_code)]

use super::{
    align_up, scratch_for, tensor_bytes, Dtype, HEADER_LEN, LAYER_ENTRY_LEN, MAGIC, VERSION_MAJOR,
    VERSION_MINOR, VERSION_MINOR_HEAD,
};
use crate::quant::{ActQuant, Requant, INPUT, MAX_BIAS, MAX_IN};
use crate::{Error, MAX_LAYERS};

/// A layer's tensors, by element type.
#[derive(Clone, Copy, Debug)]
pub enum LayerData<'a> {
    /// int8: weight out × in, bias and requantization per output channel.
    Int8 {
        /// out × in.
        weight: &'a [i8],
        /// One per output channel, input zero point folded in.
        bias: &'a [i32],
        /// One per output channel.
        requant: &'a [Requant],
        /// Output quantization.
        output: ActQuant,
    },
    /// f32: weight in × out (as the core's `Dense`), bias per output.
    F32 {
        /// in × out.
        weight: &'a [f32],
        /// out.
        bias: &'a [f32],
    },
}

/// One dense layer to write.
#[derive(Clone, Copy, Debug)]
pub struct LayerSpec<'a> {
    /// Input width.
    pub in_dim: usize,
    /// Output width.
    pub out_dim: usize,
    /// ReLU after the layer (folded into the int8 output clamp).
    pub relu: bool,
    /// The tensors.
    pub data: LayerData<'a>,
}

impl LayerSpec<'_> {
    fn dtype(&self) -> Dtype {
        match self.data {
            LayerData::Int8 { .. } => Dtype::Int8,
            LayerData::F32 { .. } => Dtype::F32,
        }
    }
}

/// Offsets of everything in a blob of these layers.
struct Plan {
    dtype: Dtype,
    data_offset: usize,
    tensors: heapless::Vec<[usize; 3], MAX_LAYERS>,
    data_end: usize,
    total: usize,
    scratch: usize,
}

/// The model's element type: one for every layer, or an int8 body under an
/// f32 last layer without activation, which is a trainable head
/// ([`Dtype::Int8Head`]). Any other mix is refused.
fn model_dtype(layers: &[LayerSpec<'_>]) -> Result<Dtype, Error> {
    let (last, body) = layers.split_last().ok_or(Error::BadDimension)?;
    let first = layers.first().map_or(last.dtype(), LayerSpec::dtype);
    if layers.iter().all(|l| l.dtype() == first) {
        return Ok(first);
    }
    let head = last.dtype() == Dtype::F32 && !last.relu;
    if head && body.iter().all(|l| l.dtype() == Dtype::Int8) {
        return Ok(Dtype::Int8Head);
    }
    Err(Error::BadField { offset: 17 })
}

fn plan(layers: &[LayerSpec<'_>]) -> Result<Plan, Error> {
    let first = layers.first().ok_or(Error::BadDimension)?;
    if layers.len() > MAX_LAYERS {
        return Err(Error::TooManyLayers { got: layers.len() });
    }
    let dtype = model_dtype(layers)?;
    let table_end = HEADER_LEN + LAYER_ENTRY_LEN * layers.len();
    let data_offset = align_up(table_end).ok_or(Error::BadDimension)?;
    let mut cursor = data_offset;
    let mut tensors = heapless::Vec::new();
    let mut prev_out = first.in_dim;
    for (i, l) in layers.iter().enumerate() {
        let ldt = dtype.layer_dtype(i, layers.len());
        if l.in_dim == 0 || l.out_dim == 0 || l.in_dim > MAX_IN || l.out_dim > MAX_IN {
            return Err(Error::BadDimension);
        }
        if l.in_dim != prev_out {
            return Err(Error::ShapeMismatch {
                expected: prev_out,
                got: l.in_dim,
            });
        }
        prev_out = l.out_dim;
        let (w, b, r) = tensor_bytes(ldt, l.in_dim, l.out_dim).ok_or(Error::BadDimension)?;
        let mut offs = [0usize; 3];
        for (o, len) in offs.iter_mut().zip([w, b, r]) {
            cursor = align_up(cursor).ok_or(Error::BadDimension)?;
            *o = cursor;
            cursor = cursor.checked_add(len).ok_or(Error::BadDimension)?;
        }
        // An empty requant tensor (f32) sits at the cursor with length 0.
        tensors
            .push(offs)
            .map_err(|_| Error::TooManyLayers { got: layers.len() })?;
        check_data(l)?;
    }
    let total = cursor.checked_add(4).ok_or(Error::BadDimension)?;
    if u32::try_from(total).is_err() {
        return Err(Error::BadDimension);
    }
    let widths = core::iter::once(first.in_dim).chain(layers.iter().map(|l| l.out_dim));
    let scratch = scratch_for(dtype, widths).ok_or(Error::BadDimension)?;
    Ok(Plan {
        dtype,
        data_offset,
        tensors,
        data_end: cursor,
        total,
        scratch,
    })
}

fn check_data(l: &LayerSpec<'_>) -> Result<(), Error> {
    let n = l.in_dim * l.out_dim;
    let lens_ok = match l.data {
        LayerData::Int8 {
            weight,
            bias,
            requant,
            output,
        } => {
            if !output.is_valid()
                || weight.contains(&i8::MIN)
                || requant.iter().any(|r| !r.is_valid())
                || bias.iter().any(|b| b.unsigned_abs() > MAX_BIAS as u32)
            {
                return Err(Error::BadHyperParameter);
            }
            weight.len() == n && bias.len() == l.out_dim && requant.len() == l.out_dim
        }
        LayerData::F32 { weight, bias } => weight.len() == n && bias.len() == l.out_dim,
    };
    if lens_ok {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            expected: n,
            got: 0,
        })
    }
}

/// The exact size of the blob [`write()`] produces for these layers.
///
/// # Errors
/// As [`write()`].
pub fn blob_len(layers: &[LayerSpec<'_>]) -> Result<usize, Error> {
    Ok(plan(layers)?.total)
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    out[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Writes the blob of `layers` (task code `task`) into `out` and returns its
/// length. The input is u8 pixels; int8 models take them as `p − 128`.
///
/// # Errors
/// [`Error::BufferTooSmall`] when `out` is shorter than [`blob_len`];
/// [`Error::ShapeMismatch`] / [`Error::BadDimension`] for layers that do not
/// chain or have the wrong tensor lengths; [`Error::BadField`] for mixed
/// element types other than an int8 body under an f32 head without
/// activation (which writes a [`Dtype::Int8Head`] model, format 1.1), and for a task code the parser would refuse (not 0 or 1,
/// or 1 without exactly one output, or 0 with one);
/// [`Error::BadHyperParameter`] for invalid quantization parameters. Nothing
/// is written on an error.
pub fn write(task: u8, layers: &[LayerSpec<'_>], out: &mut [u8]) -> Result<usize, Error> {
    let p = plan(layers)?;
    let outputs = layers.last().map_or(0, |l| l.out_dim);
    if task > 1 || (task == 1) != (outputs == 1) {
        return Err(Error::BadField { offset: 16 });
    }
    if out.len() < p.total {
        return Err(Error::BufferTooSmall {
            needed: p.total,
            got: out.len(),
        });
    }
    let out = &mut out[..p.total];
    out.fill(0);
    let u32le = |v: usize| (v as u32).to_le_bytes();
    put(out, 0, &MAGIC);
    put(out, 8, &VERSION_MAJOR.to_le_bytes());
    let minor = match p.dtype {
        Dtype::Int8Head => VERSION_MINOR_HEAD,
        _ => VERSION_MINOR,
    };
    put(out, 10, &minor.to_le_bytes());
    put(out, 12, &u32le(p.total));
    out[16] = task;
    out[17] = p.dtype as u8;
    out[18] = layers.len() as u8;
    put(out, 20, &u32le(layers[0].in_dim));
    let (in_scale, in_zp) = match p.dtype {
        Dtype::Int8 | Dtype::Int8Head => (INPUT.scale, INPUT.zero_point),
        Dtype::F32 => (1.0 / 255.0, 0),
    };
    put(out, 24, &in_scale.to_le_bytes());
    put(out, 28, &in_zp.to_le_bytes());
    put(out, 32, &u32le(p.scratch));
    put(out, 36, &u32le(HEADER_LEN));
    put(out, 40, &u32le(p.data_offset));
    put(out, 44, &u32le(p.data_end - p.data_offset));
    for (i, (l, offs)) in layers.iter().zip(&p.tensors).enumerate() {
        let e = HEADER_LEN + i * LAYER_ENTRY_LEN;
        let ldt = p.dtype.layer_dtype(i, layers.len());
        let (w, b, r) = tensor_bytes(ldt, l.in_dim, l.out_dim).unwrap_or_default();
        out[e] = 1; // dense
        out[e + 1] = u8::from(l.relu);
        // The trainable flag: the head of an Int8Head model.
        out[e + 2] = u8::from(p.dtype == Dtype::Int8Head && i + 1 == layers.len());
        put(out, e + 4, &u32le(l.in_dim));
        put(out, e + 8, &u32le(l.out_dim));
        for (k, (o, len)) in offs.iter().zip([w, b, r]).enumerate() {
            put(out, e + 20 + 8 * k, &u32le(*o));
            put(out, e + 24 + 8 * k, &u32le(len));
        }
        match l.data {
            LayerData::Int8 {
                weight,
                bias,
                requant,
                output,
            } => {
                put(out, e + 12, &output.scale.to_le_bytes());
                put(out, e + 16, &output.zero_point.to_le_bytes());
                put(out, offs[0], crate::buffer::as_u8(weight));
                for (c, v) in bias.iter().enumerate() {
                    put(out, offs[1] + 4 * c, &v.to_le_bytes());
                }
                for (c, q) in requant.iter().enumerate() {
                    put(out, offs[2] + 8 * c, &q.multiplier.to_le_bytes());
                    put(out, offs[2] + 8 * c + 4, &q.shift.to_le_bytes());
                }
            }
            LayerData::F32 { weight, bias } => {
                for (k, v) in weight.iter().enumerate() {
                    put(out, offs[0] + 4 * k, &v.to_le_bytes());
                }
                for (c, v) in bias.iter().enumerate() {
                    put(out, offs[1] + 4 * c, &v.to_le_bytes());
                }
            }
        }
    }
    let crc = crate::crc32::crc32(&out[..p.total - 4]);
    put(out, p.total - 4, &crc.to_le_bytes());
    Ok(p.total)
}

/// Writes a trained head back into the bytes of a model with a trainable
/// head ([`Dtype::Int8Head`]), in place (a copy of the blob in RAM), and
/// renews the checksum: parsing the bytes again gives a model whose
/// inference uses the new head. `weight` is `in × out` (the head's input
/// `i` to every output, as the blob stores it), `bias` has `out` values.
///
/// # Errors
/// Whatever [`super::parse`] finds wrong with `blob` (nothing is written
/// then); [`Error::BadField`] for a model without a trainable head;
/// [`Error::ShapeMismatch`] for tensors of the wrong length;
/// [`Error::BadHyperParameter`] for a NaN or infinite value (a diverged
/// head is never stored).
pub fn store_head(blob: &mut [u8], weight: &[f32], bias: &[f32]) -> Result<(), Error> {
    let (w_at, b_at) = {
        let model = super::parse(blob)?;
        let head = model.head().ok_or(Error::BadField { offset: 17 })?;
        let want = head.in_dim * head.out_dim;
        if weight.len() != want || bias.len() != head.out_dim {
            return Err(Error::ShapeMismatch {
                expected: want,
                got: weight.len(),
            });
        }
        let base = blob.as_ptr() as usize;
        (
            head.weight.as_ptr() as usize - base,
            head.bias.as_ptr() as usize - base,
        )
    };
    if weight.iter().chain(bias).any(|v| !v.is_finite()) {
        return Err(Error::BadHyperParameter);
    }
    for (k, v) in weight.iter().enumerate() {
        put(blob, w_at + 4 * k, &v.to_le_bytes());
    }
    for (k, v) in bias.iter().enumerate() {
        put(blob, b_at + 4 * k, &v.to_le_bytes());
    }
    let end = blob.len() - 4;
    let crc = crate::crc32::crc32(&blob[..end]);
    put(blob, end, &crc.to_le_bytes());
    Ok(())
}
