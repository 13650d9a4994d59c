//! The parser: every field of a blob checked, in place, without panicking,
//! allocating, or spending more than linear time on any input.
#![forbid(unsafe_code)]
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use super::{
    align_up, scratch_for, tensor_bytes, Dtype, Layer, Model, ALIGN, HEADER_LEN, LAYER_ENTRY_LEN,
    MAGIC, VERSION_MAJOR, VERSION_MINOR_HEAD,
};
use crate::quant::{ActQuant, Requant, INPUT, MAX_BIAS, MAX_IN};
use crate::{Error, MAX_LAYERS};

fn bytes_at(b: &[u8], off: usize, n: usize) -> Result<&[u8], Error> {
    off.checked_add(n)
        .and_then(|end| b.get(off..end))
        .ok_or(Error::Truncated { offset: off })
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, Error> {
    let s = bytes_at(b, off, 4)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Ok(u32::from_le_bytes(a))
}

fn usize_at(b: &[u8], off: usize) -> Result<usize, Error> {
    Ok(u32_at(b, off)? as usize)
}

fn u16_at(b: &[u8], off: usize) -> Result<u16, Error> {
    let s = bytes_at(b, off, 2)?;
    let mut a = [0u8; 2];
    a.copy_from_slice(s);
    Ok(u16::from_le_bytes(a))
}

fn u8_at(b: &[u8], off: usize) -> Result<u8, Error> {
    b.get(off).copied().ok_or(Error::Truncated { offset: off })
}

fn zeros(b: &[u8], off: usize, n: usize) -> Result<(), Error> {
    match bytes_at(b, off, n)?.iter().position(|&x| x != 0) {
        None => Ok(()),
        Some(p) => Err(Error::BadField {
            offset: off.saturating_add(p),
        }),
    }
}

/// A scale the format accepts: finite, normal, positive. Decided on the bits,
/// so that parsing needs no floating point (no soft-float on a Cortex-M0).
fn scale_ok(bits: u32) -> bool {
    let exponent = bits & 0x7f80_0000;
    bits >> 31 == 0 && exponent != 0 && exponent != 0x7f80_0000
}

/// Reads a blob in place.
///
/// # Errors
/// One typed error per problem, as listed in `docs/FORMAT.md` ("What a reader
/// must check"): [`Error::Truncated`], [`Error::BadMagic`],
/// [`Error::UnsupportedVersion`], [`Error::ShapeMismatch`] (declared length,
/// layer chaining), [`Error::Misaligned`], [`Error::ChecksumMismatch`],
/// [`Error::TooManyLayers`], [`Error::BadDimension`], [`Error::BadField`].
///
/// ```
/// assert_eq!(ember::blob::parse(b"").unwrap_err(), ember::Error::Truncated { offset: 0 });
/// assert_eq!(ember::blob::parse(&[0u8; 80]).unwrap_err(), ember::Error::BadMagic);
/// ```
pub fn parse(b: &[u8]) -> Result<Model<'_>, Error> {
    let min = HEADER_LEN.saturating_add(4);
    if b.len() < min {
        return Err(Error::Truncated { offset: b.len() });
    }
    if bytes_at(b, 0, 8)? != MAGIC {
        return Err(Error::BadMagic);
    }
    let major = u16_at(b, 8)?;
    if major != VERSION_MAJOR {
        return Err(Error::UnsupportedVersion { found: major });
    }
    let total = usize_at(b, 12)?;
    if total != b.len() {
        return Err(Error::ShapeMismatch {
            expected: total,
            got: b.len(),
        });
    }
    if !(b.as_ptr() as usize).is_multiple_of(ALIGN) {
        return Err(Error::Misaligned { offset: 0 });
    }
    let body_len = total.checked_sub(4).ok_or(Error::Truncated { offset: 0 })?;
    let body = b.get(..body_len).ok_or(Error::Truncated { offset: 0 })?;
    if crate::crc32::crc32(body) != u32_at(b, body_len)? {
        return Err(Error::ChecksumMismatch);
    }
    // From here on the bytes are the ones the writer produced (or a forgery
    // with a valid CRC): every structure is still checked.
    let task = u8_at(b, 16)?;
    if task > 1 {
        return Err(Error::BadField { offset: 16 });
    }
    let dtype = match u8_at(b, 17)? {
        1 => Dtype::Int8,
        2 => Dtype::F32,
        3 => Dtype::Int8Head,
        _ => return Err(Error::BadField { offset: 17 }),
    };
    // A trainable head came with minor version 1.
    if dtype == Dtype::Int8Head && u16_at(b, 10)? < VERSION_MINOR_HEAD {
        return Err(Error::BadField { offset: 10 });
    }
    let n = u8_at(b, 18)? as usize;
    // A trainable head needs a body: at least two layers.
    if n == 0 || (dtype == Dtype::Int8Head && n < 2) {
        return Err(Error::BadDimension);
    }
    if n > MAX_LAYERS {
        return Err(Error::TooManyLayers { got: n });
    }
    zeros(b, 19, 1)?;
    zeros(b, 48, 16)?;
    let input_len = usize_at(b, 20)?;
    let input = ActQuant {
        scale: f32::from_bits(u32_at(b, 24)?),
        zero_point: u32_at(b, 28)? as i32,
    };
    let want_zp = match dtype {
        Dtype::Int8 | Dtype::Int8Head => INPUT.zero_point,
        Dtype::F32 => 0,
    };
    if !scale_ok(input.scale.to_bits()) {
        return Err(Error::BadField { offset: 24 });
    }
    if input.zero_point != want_zp {
        return Err(Error::BadField { offset: 28 });
    }
    if usize_at(b, 36)? != HEADER_LEN {
        return Err(Error::BadField { offset: 36 });
    }
    let table_end = LAYER_ENTRY_LEN
        .checked_mul(n)
        .and_then(|t| t.checked_add(HEADER_LEN))
        .ok_or(Error::BadDimension)?;
    if table_end > body_len {
        return Err(Error::Truncated { offset: body_len });
    }
    let data_offset = usize_at(b, 40)?;
    if Some(data_offset) != align_up(table_end) {
        return Err(Error::BadField { offset: 40 });
    }
    let data_len = usize_at(b, 44)?;
    if data_offset.checked_add(data_len) != Some(body_len) {
        return Err(Error::BadField { offset: 44 });
    }
    zeros(b, table_end, data_offset.saturating_sub(table_end))?;

    let mut layers = heapless::Vec::<Layer<'_>, MAX_LAYERS>::new();
    let mut cursor = data_offset;
    let mut prev_out = input_len;
    for i in 0..n {
        let e = i
            .checked_mul(LAYER_ENTRY_LEN)
            .and_then(|x| x.checked_add(HEADER_LEN))
            .ok_or(Error::BadDimension)?;
        let at = |k: usize| e.checked_add(k).ok_or(Error::BadDimension);
        if u8_at(b, e)? != 1 {
            return Err(Error::BadField { offset: e });
        }
        let ldt = dtype.layer_dtype(i, n);
        // The last layer of an Int8Head model is the trainable head: flag
        // byte 1, no activation (it gives the logits). Elsewhere the byte is 0.
        let trainable = dtype == Dtype::Int8Head && Some(i) == n.checked_sub(1);
        let relu = match u8_at(b, at(1)?)? {
            0 => false,
            1 if !trainable => true,
            _ => return Err(Error::BadField { offset: at(1)? }),
        };
        if u8_at(b, at(2)?)? != u8::from(trainable) {
            return Err(Error::BadField { offset: at(2)? });
        }
        zeros(b, at(3)?, 1)?;
        zeros(b, at(44)?, 4)?;
        let in_dim = usize_at(b, at(4)?)?;
        let out_dim = usize_at(b, at(8)?)?;
        if in_dim == 0 || out_dim == 0 || in_dim > MAX_IN || out_dim > MAX_IN {
            return Err(Error::BadDimension);
        }
        // Sizes (and their 32-bit product rule) before chaining: the order
        // of docs/FORMAT.md, "What a reader must check".
        let sizes = tensor_bytes(ldt, in_dim, out_dim).ok_or(Error::BadDimension)?;
        if in_dim != prev_out {
            return Err(Error::ShapeMismatch {
                expected: prev_out,
                got: in_dim,
            });
        }
        prev_out = out_dim;
        let output = ActQuant {
            scale: f32::from_bits(u32_at(b, at(12)?)?),
            zero_point: u32_at(b, at(16)?)? as i32,
        };
        match ldt {
            Dtype::Int8 | Dtype::Int8Head => {
                if !scale_ok(output.scale.to_bits()) {
                    return Err(Error::BadField { offset: at(12)? });
                }
                if !(-128..=127).contains(&output.zero_point) {
                    return Err(Error::BadField { offset: at(16)? });
                }
            }
            Dtype::F32 => {
                zeros(b, at(12)?, 8)?;
            }
        }
        let mut views: [&[u8]; 3] = [&[], &[], &[]];
        for (k, (view, want)) in views
            .iter_mut()
            .zip([sizes.0, sizes.1, sizes.2])
            .enumerate()
        {
            let field = at(20usize.saturating_add(k.saturating_mul(8)))?;
            let off = usize_at(b, field)?;
            let len = usize_at(b, field.saturating_add(4))?;
            let expect = align_up(cursor).ok_or(Error::BadDimension)?;
            if !off.is_multiple_of(ALIGN) {
                return Err(Error::Misaligned { offset: field });
            }
            if off != expect {
                return Err(Error::BadField { offset: field });
            }
            if len != want {
                return Err(Error::BadField {
                    offset: field.saturating_add(4),
                });
            }
            let end = off.checked_add(len).ok_or(Error::BadDimension)?;
            if end > body_len {
                return Err(Error::Truncated { offset: off });
            }
            zeros(b, cursor, off.saturating_sub(cursor))?;
            *view = bytes_at(b, off, len)?;
            cursor = end;
        }
        let [weight, bias, requant] = views;
        if ldt == Dtype::Int8 {
            if let Some(k) = weight.iter().position(|&v| v == 0x80) {
                let off = (weight.as_ptr() as usize).saturating_sub(b.as_ptr() as usize);
                return Err(Error::BadField {
                    offset: off.saturating_add(k),
                });
            }
            for (c, q) in requant.chunks_exact(8).enumerate() {
                let base = c.saturating_mul(8);
                let r = Requant {
                    multiplier: u32_at(requant, base)? as i32,
                    shift: u32_at(requant, base.saturating_add(4))?,
                };
                if !r.is_valid() || q.len() != 8 {
                    let off = (requant.as_ptr() as usize).saturating_sub(b.as_ptr() as usize);
                    return Err(Error::BadField {
                        offset: off.saturating_add(base),
                    });
                }
            }
            for (c, v) in bias.chunks_exact(4).enumerate() {
                let mut a = [0u8; 4];
                a.copy_from_slice(v);
                if i32::from_le_bytes(a).unsigned_abs() > MAX_BIAS as u32 {
                    let off = (bias.as_ptr() as usize).saturating_sub(b.as_ptr() as usize);
                    return Err(Error::BadField {
                        offset: off.saturating_add(c.saturating_mul(4)),
                    });
                }
            }
        }
        layers
            .push(Layer {
                in_dim,
                out_dim,
                relu,
                trainable,
                output,
                weight,
                bias,
                requant,
            })
            .map_err(|_| Error::TooManyLayers { got: n })?;
    }
    if cursor != body_len {
        return Err(Error::BadField { offset: 44 });
    }
    // The task says how the outputs are read: task 1 (threes vs sevens) is
    // one sigmoid logit, task 0 an arg-max over at least two. A blob whose
    // task and last width disagree would be misread, so it is refused.
    let outputs = layers.last().map_or(0, |l| l.out_dim);
    if (task == 1) != (outputs == 1) {
        return Err(Error::BadField { offset: 16 });
    }
    let widths = core::iter::once(input_len).chain(layers.iter().map(|l| l.out_dim));
    let scratch = scratch_for(dtype, widths).ok_or(Error::BadDimension)?;
    if usize_at(b, 32)? != scratch {
        return Err(Error::BadField { offset: 32 });
    }
    Ok(Model {
        dtype,
        task,
        input,
        layers,
        scratch,
    })
}
