//! The model blob: one byte string holding an MLP's quantized (or f32)
//! weights, read in place — straight from flash — by [`parse`], written by
//! [`write()`], and run by [`Model::infer_i8`] / [`Model::predict`] in a
//! caller-provided scratch buffer. `docs/FORMAT.md` specifies it byte by byte.
//!
//! The parser checks magic, version, length, checksum, every offset, size,
//! alignment, dimension, code and quantization parameter before it returns a
//! [`Model`]; after that, inference cannot fail on the blob's contents.

#![forbid(unsafe_code)]

use crate::buffer::as_i8;
use crate::quant::{
    batch_packed, batch_packed_signed, dots_i8_checked_weights, layer_packed_on, pack_on,
    packed_len, packed_len_on, requantize, ActQuant, Requant,
};
use crate::Isa;
use crate::{Error, MAX_LAYERS};

mod read;
mod write;

pub use read::parse;
pub use write::{blob_len, store_head, write, LayerData, LayerSpec};

/// The first eight bytes of a blob.
pub const MAGIC: [u8; 8] = *b"EMBRBLOB";
/// The format's major version: a parser reads exactly this major version.
pub const VERSION_MAJOR: u16 = 1;
/// The minor version this writer produces for all-int8 and all-f32 models
/// (readers accept any minor for them).
pub const VERSION_MINOR: u16 = 0;
/// The minor version of a model with a trainable head ([`Dtype::Int8Head`]),
/// the first minor that has one: a reader needs at least this minor for it.
pub const VERSION_MINOR_HEAD: u16 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 64;
/// Bytes of one layer-table entry.
pub const LAYER_ENTRY_LEN: usize = 48;
/// Alignment of every tensor and of the blob itself.
pub const ALIGN: usize = 16;

/// Element type of a model's layers (one type per model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// int8 weights and activations, int32 bias, fixed-point requantization.
    Int8 = 1,
    /// f32 weights, biases and activations (for MCUs with an FPU).
    F32 = 2,
    /// An int8 body (every layer but the last, integer-only) and an f32 last
    /// layer marked trainable: the head [`crate::head`] trains on the device
    /// (format 1.1). Readers of 1.0 refuse it by its dtype code.
    Int8Head = 3,
}

impl Dtype {
    /// The element type of layer `i` of `layers` in a model of this type.
    pub fn layer_dtype(self, i: usize, layers: usize) -> Dtype {
        match self {
            Dtype::Int8Head if Some(i) == layers.checked_sub(1) => Dtype::F32,
            Dtype::Int8Head => Dtype::Int8,
            d => d,
        }
    }
}

/// A dense layer read from a blob; slices point into the blob.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    /// Input width.
    pub in_dim: usize,
    /// Output width.
    pub out_dim: usize,
    /// ReLU after the layer.
    pub relu: bool,
    /// The layer is a trainable f32 head (the last layer of a
    /// [`Dtype::Int8Head`] model).
    pub trainable: bool,
    /// Output quantization (int8 layers).
    pub output: ActQuant,
    /// int8: out × in bytes; f32: in × out little-endian f32.
    pub weight: &'a [u8],
    /// int8: out little-endian i32; f32: out little-endian f32.
    pub bias: &'a [u8],
    /// int8: out × (i32 multiplier, u32 shift), little-endian; f32: empty.
    pub requant: &'a [u8],
}

/// A parsed model, borrowing the blob.
#[derive(Clone, Debug)]
pub struct Model<'a> {
    /// Element type of every layer.
    pub dtype: Dtype,
    /// The task code stored by the writer (0 digits, 1 threes-vs-sevens).
    pub task: u8,
    /// Input quantization (int8: `q = p − 128`, scale 1/255).
    pub input: ActQuant,
    /// The layers, first to last.
    pub layers: heapless::Vec<Layer<'a>, MAX_LAYERS>,
    scratch: usize,
}

fn le_i32(b: &[u8], i: usize) -> i32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(4 * i..4 * i + 4) {
        a.copy_from_slice(s);
    }
    i32::from_le_bytes(a)
}

fn le_f32(b: &[u8], i: usize) -> f32 {
    f32::from_bits(le_i32(b, i) as u32)
}

/// Scratch bytes a model needs: two activation buffers of the widest layer
/// edge (input included), 1 byte per element for int8, 4 for f32. `widths`
/// are the input width and every layer's output width; a trainable head's
/// output is not an edge that needs scratch (its logits go straight to the
/// caller), so for [`Dtype::Int8Head`] the last width is left out.
pub fn scratch_for(dtype: Dtype, widths: impl Iterator<Item = usize>) -> Option<usize> {
    let mut widest = None::<usize>;
    let mut last = None::<usize>;
    for w in widths {
        if let Some(prev) = last {
            widest = Some(widest.map_or(prev, |m| m.max(prev)));
        }
        last = Some(w);
    }
    let widest = match dtype {
        Dtype::Int8Head => widest?,
        _ => widest.into_iter().chain(last).max()?,
    };
    let elem = match dtype {
        Dtype::Int8 | Dtype::Int8Head => 1usize,
        Dtype::F32 => 4,
    };
    widest.checked_mul(elem)?.checked_mul(2)
}

/// The real value of an int8 activation code: `f32(q − z) × s`, one rounding
/// (how a trainable head reads the body's output).
pub fn dequantize(q: i8, quant: ActQuant) -> f32 {
    (i32::from(q) - quant.zero_point) as f32 * quant.scale
}

/// Output channels processed per kernel call (accumulators on the stack): a
/// multiple of 3 and of 4, the row groups of the Cortex-M and x86 kernels.
const CHUNK: usize = 96;

/// The fewest images [`Model::infer_batch_i8`] repacks the weights for:
/// below, repacking costs more than it saves (measured: at 1 image the
/// packed route took 10 µs with VNNI and 13 µs with AVX2 against 2.2-2.5 µs
/// image by image; they meet at 4-8 and 16 images).
const PACKED_MIN_IMAGES: usize = 16;

/// Images per batched kernel call ([`Model::infer_batch_i8`]): their
/// accumulators for a chunk of rows live on the stack (8 · 96 · 4 bytes).
const GROUP: usize = 8;

impl<'a> Model<'a> {
    /// Bytes of scratch [`Model::infer_i8`] and [`Model::predict`] need.
    pub fn scratch_bytes(&self) -> usize {
        self.scratch
    }

    /// Input elements (784 for MNIST).
    pub fn input_len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.in_dim)
    }

    /// Output elements (logits).
    pub fn output_len(&self) -> usize {
        self.layers.last().map_or(0, |l| l.out_dim)
    }

    /// Quantization of the int8 logits.
    pub fn output_quant(&self) -> ActQuant {
        self.layers.last().map_or(crate::quant::INPUT, |l| l.output)
    }

    fn check_io(&self, pixels: usize, scratch: usize, out: usize) -> Result<(), Error> {
        if pixels != self.input_len() {
            return Err(Error::ShapeMismatch {
                expected: self.input_len(),
                got: pixels,
            });
        }
        if scratch < self.scratch {
            return Err(Error::BufferTooSmall {
                needed: self.scratch,
                got: scratch,
            });
        }
        if out != self.output_len() {
            return Err(Error::ShapeMismatch {
                expected: self.output_len(),
                got: out,
            });
        }
        Ok(())
    }

    /// The layers that run in integers: all of them, or all but a
    /// trainable head.
    fn int8_layers(&self) -> &[Layer<'a>] {
        match self.dtype {
            Dtype::Int8Head => self.layers.split_last().map_or(&[], |(_, body)| body),
            _ => &self.layers,
        }
    }

    /// The trainable f32 head of a [`Dtype::Int8Head`] model (its last
    /// layer), else `None`.
    pub fn head(&self) -> Option<&Layer<'a>> {
        match self.dtype {
            Dtype::Int8Head => self.layers.last(),
            _ => None,
        }
    }

    /// The head's input width: the body's output features (0 without a head).
    pub fn feature_len(&self) -> usize {
        self.head().map_or(0, |h| h.in_dim)
    }

    /// Runs the int8 layers on `pixels` in the two halves of `scratch` (the
    /// caller checked the lengths); returns the half holding the last codes
    /// and their quantization.
    /// With `pixels = None` the pixels already sit at the start of `scratch`.
    #[inline(always)]
    fn run_int8<'s>(
        &self,
        pixels: Option<&[u8]>,
        scratch: &'s mut [u8],
    ) -> Result<&'s [u8], Error> {
        let half = self.scratch / 2;
        let (a, rest) = scratch.split_at_mut(half);
        let b = &mut rest[..half];
        // x: u8 pixels -> int8 q = p - 128 (flip the top bit), a word at a time.
        let n = self.input_len();
        let flip = |p: &[u8]| u32::from_ne_bytes([p[0], p[1], p[2], p[3]]) ^ 0x8080_8080;
        let mut qs = a[..n].chunks_exact_mut(4);
        match pixels {
            // Copied and flipped in one pass.
            Some(pixels) => {
                let mut ps = pixels.chunks_exact(4);
                for (q, p) in (&mut qs).zip(&mut ps) {
                    q.copy_from_slice(&flip(p).to_ne_bytes());
                }
                for (q, &p) in qs.into_remainder().iter_mut().zip(ps.remainder()) {
                    *q = p ^ 0x80;
                }
            }
            None => {
                for q in &mut qs {
                    let v = flip(q);
                    q.copy_from_slice(&v.to_ne_bytes());
                }
                for q in qs.into_remainder() {
                    *q ^= 0x80;
                }
            }
        }
        let (mut cur, mut next) = (a, b);
        let isa = Isa::active();
        for layer in self.int8_layers() {
            // x: (in_dim) int8 -> y: (out_dim) int8
            let x = as_i8(&cur[..layer.in_dim]);
            let w = as_i8(layer.weight);
            let y = &mut next[..layer.out_dim];
            let mut acc = [0i32; CHUNK];
            for c0 in (0..layer.out_dim).step_by(CHUNK) {
                let n = CHUNK.min(layer.out_dim - c0);
                let rows = &w[c0 * layer.in_dim..(c0 + n) * layer.in_dim];
                // The parser refused -128 weights.
                dots_i8_checked_weights(isa, x, rows, &mut acc[..n])?;
                let bias = layer.bias[4 * c0..4 * (c0 + n)].chunks_exact(4);
                let rq = layer.requant[8 * c0..8 * (c0 + n)].chunks_exact(8);
                for (((o, a), b), r) in y[c0..c0 + n].iter_mut().zip(&acc[..n]).zip(bias).zip(rq) {
                    let rq = Requant {
                        multiplier: le_i32(r, 0),
                        shift: le_i32(r, 1) as u32,
                    };
                    // Parse bounds |bias| <= 2^30 and in_dim <= 2^16: no overflow.
                    let total = a.wrapping_add(le_i32(b, 0));
                    *o = requantize(total, rq, layer.output.zero_point, layer.relu) as u8;
                }
            }
            core::mem::swap(&mut cur, &mut next);
        }
        let width = self.int8_layers().last().map_or(0, |l| l.out_dim);
        Ok(&cur[..width])
    }

    /// Integer-only inference of an int8 model on u8 pixels: writes the int8
    /// logits (real value `s_y · (q − z_y)`, see [`Model::output_quant`]).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a wrong input or output length,
    /// [`Error::BufferTooSmall`] when `scratch` is shorter than
    /// [`Model::scratch_bytes`], [`Error::BadField`] for a model that is not
    /// all int8.
    pub fn infer_i8(&self, pixels: &[u8], scratch: &mut [u8], out: &mut [i8]) -> Result<(), Error> {
        self.check_io(pixels.len(), scratch.len(), out.len())?;
        if self.dtype != Dtype::Int8 {
            return Err(Error::BadField { offset: 17 });
        }
        let codes = self.run_int8(Some(pixels), scratch)?;
        for (o, &q) in out.iter_mut().zip(codes) {
            *o = q as i8;
        }
        Ok(())
    }

    /// The features a trainable head reads: the int8 body run on `pixels`
    /// in integers, its output codes dequantized once ([`dequantize`]) into
    /// `out` ([`Model::feature_len`] values). The body is frozen, so a
    /// trainer computes these once per sample and caches them.
    ///
    /// # Errors
    /// As [`Model::infer_i8`], with `out` of [`Model::feature_len`];
    /// [`Error::BadField`] for a model without a trainable head.
    pub fn features(
        &self,
        pixels: &[u8],
        scratch: &mut [u8],
        out: &mut [f32],
    ) -> Result<(), Error> {
        if self.head().is_none() {
            return Err(Error::BadField { offset: 17 });
        }
        self.check_io(pixels.len(), scratch.len(), self.output_len())?;
        scratch[..pixels.len()].copy_from_slice(pixels);
        self.features_in_scratch(scratch, out)
    }

    /// [`Model::features`] of the image whose pixels already sit at the
    /// start of `scratch` (a device decodes or copies the image there and
    /// needs no image buffer of its own; the pixels are overwritten).
    ///
    /// # Errors
    /// As [`Model::features`], less the input length.
    pub fn features_in_scratch(&self, scratch: &mut [u8], out: &mut [f32]) -> Result<(), Error> {
        let Some(head) = self.head() else {
            return Err(Error::BadField { offset: 17 });
        };
        self.check_io(self.input_len(), scratch.len(), self.output_len())?;
        if out.len() != head.in_dim {
            return Err(Error::ShapeMismatch {
                expected: head.in_dim,
                got: out.len(),
            });
        }
        let quant = self.body_quant();
        let codes = self.run_int8(None, scratch)?;
        for (o, &q) in out.iter_mut().zip(codes) {
            *o = dequantize(q as i8, quant);
        }
        Ok(())
    }

    /// The quantization of the body's output (what a head's features are
    /// dequantized with).
    fn body_quant(&self) -> ActQuant {
        self.int8_layers()
            .last()
            .map_or(crate::quant::INPUT, |l| l.output)
    }

    /// f32 inference on u8 pixels: writes the logits. An f32 model runs
    /// in f32 throughout (x = p / 255); a model with a trainable head runs
    /// its body in integers and the head in f32 on the dequantized codes, as
    /// [`Model::features`] then [`crate::head::logits`] would (the same bits).
    ///
    /// # Errors
    /// As [`Model::infer_i8`]; [`Error::BadField`] for an all-int8 model.
    pub fn infer_f32(
        &self,
        pixels: &[u8],
        scratch: &mut [u8],
        out: &mut [f32],
    ) -> Result<(), Error> {
        self.check_io(pixels.len(), scratch.len(), out.len())?;
        match (self.dtype, self.head()) {
            (Dtype::F32, _) => {}
            (Dtype::Int8Head, Some(head)) => {
                let quant = self.body_quant();
                let codes = self.run_int8(Some(pixels), scratch)?;
                let (w, b) = (head.weight, head.bias);
                for (c, o) in out.iter_mut().enumerate() {
                    let mut s = le_f32(b, c);
                    for (i, &q) in codes.iter().enumerate() {
                        s += dequantize(q as i8, quant) * le_f32(w, i * head.out_dim + c);
                    }
                    *o = s;
                }
                return Ok(());
            }
            _ => return Err(Error::BadField { offset: 17 }),
        }
        let half = self.scratch / 2;
        let (a, rest) = scratch.split_at_mut(half);
        let b = &mut rest[..half];
        for (q, &p) in a.chunks_exact_mut(4).zip(pixels) {
            q.copy_from_slice(&(p as f32 * (1.0 / 255.0)).to_le_bytes());
        }
        let (mut cur, mut next) = (a, b);
        for layer in &self.layers {
            // x: (in_dim) f32 -> y: (out_dim) f32; W is in × out.
            for c in 0..layer.out_dim {
                let mut s = le_f32(layer.bias, c);
                for i in 0..layer.in_dim {
                    s += le_f32(cur, i) * le_f32(layer.weight, i * layer.out_dim + c);
                }
                if layer.relu && s < 0.0 {
                    s = 0.0;
                }
                next[4 * c..4 * c + 4].copy_from_slice(&s.to_le_bytes());
            }
            core::mem::swap(&mut cur, &mut next);
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o = le_f32(cur, i);
        }
        Ok(())
    }

    /// Scratch bytes [`Model::infer_batch_i8`] needs for `images` images (two
    /// activation buffers of the widest edge per image, and room to repack
    /// the weights of up to 96 rows of the widest layer for the VNNI kernel),
    /// or `None` when that overflows.
    pub fn batch_scratch_bytes(&self, images: usize) -> Option<usize> {
        self.scratch
            .checked_mul(images)?
            .checked_add(self.pack_bytes())
    }

    /// The repacking room of [`Model::batch_scratch_bytes`].
    fn pack_bytes(&self) -> usize {
        let each = |l: &Layer<'_>| packed_len(CHUNK.min(l.out_dim), l.in_dim);
        self.layers.iter().map(each).max().unwrap_or(0)
    }

    /// Integer-only inference of many images at once, bit for bit
    /// [`Model::infer_i8`] image by image: `pixels` holds the images one
    /// after another (`input_len()` bytes each) and `out` receives
    /// `output_len()` int8 logits per image. From 16 images on, with AVX-512
    /// VNNI, AVX2 or NEON, the weights are repacked so that each vector
    /// loaded serves 16, 8 or 4 rows of several images with no horizontal
    /// sums; fewer images and the scalar path run image by image (same
    /// bits). The weights are repacked on every call: for batch after batch
    /// of one model, [`Model::plan_batch`] packs them once.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `pixels` is not a whole number of
    /// images or `out` does not hold their logits; [`Error::BufferTooSmall`]
    /// when `scratch` is shorter than [`Model::batch_scratch_bytes`];
    /// [`Error::BadField`] for an f32 model.
    pub fn infer_batch_i8(
        &self,
        pixels: &[u8],
        scratch: &mut [u8],
        out: &mut [i8],
    ) -> Result<(), Error> {
        self.infer_batch_i8_on(Isa::active(), pixels, scratch, out)
    }

    /// [`Model::infer_batch_i8`] on a chosen path (tests compare them all).
    ///
    /// # Errors
    /// As [`Model::infer_batch_i8`], and [`Error::IsaUnavailable`].
    pub fn infer_batch_i8_on(
        &self,
        isa: Isa,
        pixels: &[u8],
        scratch: &mut [u8],
        out: &mut [i8],
    ) -> Result<(), Error> {
        self.run_batch(isa, pixels, scratch, None, out)
    }

    /// Bytes [`Model::plan_batch`] needs on `isa`: every layer's weights
    /// packed for its batched kernel (0 where `isa` has none: the plan then
    /// runs image by image).
    pub fn batch_plan_bytes(&self, isa: Isa) -> usize {
        let layer = |l: &Layer<'_>| {
            (0..l.out_dim)
                .step_by(CHUNK)
                .map(|c0| packed_len_on(isa, CHUNK.min(l.out_dim - c0), l.in_dim))
                .fold(0usize, usize::saturating_add)
        };
        self.layers.iter().map(layer).fold(0, usize::saturating_add)
    }

    /// Packs every layer's weights once, into `room`, for the batched kernel
    /// of `isa`: [`BatchPlan::infer`] then runs batch after batch with the
    /// bits of [`Model::infer_batch_i8`] and without repacking (as an ONNX
    /// Runtime session or a TensorFlow Lite interpreter prepares its weights
    /// once). `room` holds at least [`Model::batch_plan_bytes`] bytes.
    ///
    /// # Errors
    /// [`Error::IsaUnavailable`] when this CPU lacks `isa`;
    /// [`Error::BadField`] for an f32 model; [`Error::BufferTooSmall`] when
    /// `room` is short.
    pub fn plan_batch<'p>(
        &'p self,
        isa: Isa,
        room: &'p mut [u8],
    ) -> Result<BatchPlan<'p, 'a>, Error> {
        self.int8_on(isa)?;
        let need = self.batch_plan_bytes(isa);
        let got = room.len();
        let room = room
            .get_mut(..need)
            .ok_or(Error::BufferTooSmall { needed: need, got })?;
        if need > 0 {
            self.pack_layers(isa, room)?;
        }
        Ok(BatchPlan {
            model: self,
            isa,
            packed: room,
        })
    }

    /// Whether batched integer inference can run: `isa` on this CPU, and
    /// an int8 model.
    fn int8_on(&self, isa: Isa) -> Result<(), Error> {
        if !isa.is_supported() {
            return Err(Error::IsaUnavailable);
        }
        if self.dtype != Dtype::Int8 {
            return Err(Error::BadField { offset: 17 });
        }
        Ok(())
    }

    /// Every layer's row chunks packed for `isa`, one after another, into
    /// `room` ([`Model::batch_plan_bytes`] bytes, `isa` with a packed kernel).
    fn pack_layers(&self, isa: Isa, room: &mut [u8]) -> Result<(), Error> {
        let mut at = 0;
        for layer in &self.layers {
            let (n, w) = (layer.in_dim, as_i8(layer.weight));
            for c0 in (0..layer.out_dim).step_by(CHUNK) {
                let rows = CHUNK.min(layer.out_dim - c0);
                let len = packed_len_on(isa, rows, n);
                let dst = room.get_mut(at..at + len).ok_or(Error::BadDimension)?;
                pack_on(isa, &w[c0 * n..(c0 + rows) * n], n, rows, dst)?;
                at += len;
            }
        }
        Ok(())
    }

    /// [`Model::infer_batch_i8_on`], repacking into the end of `scratch`
    /// (`plan: None`) or reading a [`BatchPlan`]'s packed weights.
    fn run_batch(
        &self,
        isa: Isa,
        pixels: &[u8],
        scratch: &mut [u8],
        plan: Option<&[u8]>,
        out: &mut [i8],
    ) -> Result<(), Error> {
        self.int8_on(isa)?;
        let (n_in, n_out) = (self.input_len(), self.output_len());
        if n_in == 0 || !pixels.len().is_multiple_of(n_in) {
            return Err(Error::ShapeMismatch {
                expected: n_in,
                got: pixels.len(),
            });
        }
        let images = pixels.len() / n_in;
        let want = images.checked_mul(n_out).ok_or(Error::BadDimension)?;
        if out.len() != want {
            return Err(Error::ShapeMismatch {
                expected: want,
                got: out.len(),
            });
        }
        let need = match plan {
            None => self.batch_scratch_bytes(images),
            Some(_) => self.scratch.checked_mul(images),
        }
        .ok_or(Error::BadDimension)?;
        if scratch.len() < need {
            return Err(Error::BufferTooSmall {
                needed: need,
                got: scratch.len(),
            });
        }
        let half = self.scratch / 2 * images;
        let (a, rest) = scratch.split_at_mut(half);
        let (b, room) = rest.split_at_mut(half);
        let mut packs = match plan {
            None => Packs::Room(room),
            Some(bytes) => Packs::Plan(bytes, 0),
        };
        // The VNNI path keeps activations shifted to unsigned (x + 128: the
        // pixel itself for the input), the others as int8 (q = p - 128).
        let unsigned = batch_packed(isa) && images >= PACKED_MIN_IMAGES;
        let signed = batch_packed_signed(isa) && images >= PACKED_MIN_IMAGES;
        let flip = if unsigned { 0 } else { 0x80 };
        for (q, &p) in a.iter_mut().zip(pixels) {
            *q = p ^ flip;
        }
        let (mut cur, mut next) = (a, b);
        for layer in &self.layers {
            // x: (images, in_dim) int8 -> y: (images, out_dim) int8
            let x = &cur[..images * layer.in_dim];
            let y = &mut next[..images * layer.out_dim];
            batch_layer(isa, unsigned || signed, layer, images, x, y, &mut packs)?;
            core::mem::swap(&mut cur, &mut next);
        }
        for (o, &q) in out.iter_mut().zip(cur.iter()) {
            *o = (q ^ (0x80 - flip)) as i8;
        }
        Ok(())
    }

    /// The predicted class of an int8 model, in integers only: the arg-max
    /// of the int8 logits (the first on a tie), or for a one-output model, 1
    /// when the logit is positive (its code above the zero point).
    ///
    /// # Errors
    /// As [`Model::infer_i8`] (without the output length).
    pub fn predict_i8(&self, pixels: &[u8], scratch: &mut [u8]) -> Result<usize, Error> {
        let mut logits = [0i8; MAX_OUT];
        let n = self.output_len();
        let logits = logits.get_mut(..n).ok_or(Error::BadDimension)?;
        self.infer_i8(pixels, scratch, logits)?;
        Ok(self.class_of_i8(logits))
    }

    /// The class the int8 `logits` of this model say, in integers: the
    /// arg-max (the first on a tie), or for one output, 1 when the logit's
    /// code is above the zero point. [`Model::predict_i8`] decides so.
    pub fn class_of_i8(&self, logits: &[i8]) -> usize {
        if let [one] = logits {
            return usize::from(*one as i32 > self.output_quant().zero_point);
        }
        let mut best = 0;
        for (i, &v) in logits.iter().enumerate() {
            if v > logits[best] {
                best = i;
            }
        }
        best
    }

    /// The predicted class on any kind of model (see [`Model::predict_i8`];
    /// f32 models and models with a trainable head compare f32 logits the
    /// same way: the arg-max, or for one output, 1 when it is positive).
    ///
    /// # Errors
    /// As [`Model::predict_i8`].
    pub fn predict(&self, pixels: &[u8], scratch: &mut [u8]) -> Result<usize, Error> {
        if self.dtype == Dtype::Int8 {
            return self.predict_i8(pixels, scratch);
        }
        let mut logits = [0.0f32; MAX_OUT];
        let n = self.output_len();
        let logits = logits.get_mut(..n).ok_or(Error::BadDimension)?;
        self.infer_f32(pixels, scratch, logits)?;
        if let [one] = logits {
            return Ok(usize::from(*one > 0.0));
        }
        let mut best = 0;
        for (i, &v) in logits.iter().enumerate() {
            if v > logits[best] {
                best = i;
            }
        }
        Ok(best)
    }
}

/// A model's weights packed once for its batched kernel
/// ([`Model::plan_batch`]), borrowing the model and the packing room.
#[derive(Debug)]
pub struct BatchPlan<'p, 'a> {
    model: &'p Model<'a>,
    isa: Isa,
    packed: &'p [u8],
}

impl BatchPlan<'_, '_> {
    /// The path this plan was packed for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Scratch bytes [`BatchPlan::infer`] needs for `images` images (two
    /// activation buffers of the widest edge per image; the weights are in
    /// the plan), or `None` when that overflows.
    pub fn scratch_bytes(&self, images: usize) -> Option<usize> {
        self.model.scratch.checked_mul(images)
    }

    /// [`Model::infer_batch_i8`] on the plan's path with its packed weights:
    /// the same bits, without repacking.
    ///
    /// # Errors
    /// As [`Model::infer_batch_i8`], with [`BatchPlan::scratch_bytes`] for
    /// the scratch.
    pub fn infer(&self, pixels: &[u8], scratch: &mut [u8], out: &mut [i8]) -> Result<(), Error> {
        self.model
            .run_batch(self.isa, pixels, scratch, Some(self.packed), out)
    }
}

/// Where [`batch_layer`] takes each chunk's packed weights from: room to
/// pack them in now, or a plan's, read in order from an offset.
enum Packs<'s> {
    Room(&'s mut [u8]),
    Plan(&'s [u8], usize),
}

/// One layer of [`Model::infer_batch_i8`]: row chunks outermost (their
/// weights stay in cache across the images). With `packed` (the packed
/// kernels: activations shifted to unsigned on x86_64, plain int8 on NEON),
/// each chunk's weights come packed from `packs` and every image runs
/// through them; otherwise the activations are plain int8, image by image.
fn batch_layer(
    isa: Isa,
    packed: bool,
    layer: &Layer<'_>,
    images: usize,
    x: &[u8],
    y: &mut [u8],
    packs: &mut Packs<'_>,
) -> Result<(), Error> {
    let (n, m) = (layer.in_dim, layer.out_dim);
    let w = as_i8(layer.weight);
    let mut acc = [0i32; GROUP * CHUNK];
    let mut bias = [0i32; CHUNK];
    let mut rqs = [Requant {
        multiplier: 0,
        shift: 0,
    }; CHUNK];
    for c0 in (0..m).step_by(CHUNK) {
        let rows_n = CHUNK.min(m - c0);
        let rows = &w[c0 * n..(c0 + rows_n) * n];
        // Decoded once per chunk, not once per image.
        for (r, (b, q)) in bias.iter_mut().zip(rqs.iter_mut()).take(rows_n).enumerate() {
            *b = le_i32(layer.bias, c0 + r);
            *q = Requant {
                multiplier: le_i32(layer.requant, 2 * (c0 + r)),
                shift: le_i32(layer.requant, 2 * (c0 + r) + 1) as u32,
            };
        }
        if packed {
            // The packed kernels requantize in registers and write y.
            let pack: &[u8] = match packs {
                Packs::Room(room) => {
                    pack_on(isa, rows, n, rows_n, room)?;
                    room
                }
                Packs::Plan(bytes, at) => {
                    let len = packed_len_on(isa, rows_n, n);
                    let chunk = bytes.get(*at..*at + len).ok_or(Error::BadDimension)?;
                    *at += len;
                    chunk
                }
            };
            let (b, q) = (&bias[..rows_n], &rqs[..rows_n]);
            let (zp, relu) = (layer.output.zero_point, layer.relu);
            layer_packed_on(isa, x, n, pack, b, q, zp, relu, y, m, c0)?;
            continue;
        }
        for g0 in (0..images).step_by(GROUP) {
            let g = GROUP.min(images - g0);
            let acc = &mut acc[..g * rows_n];
            let xs = &x[g0 * n..(g0 + g) * n];
            for (xi, a) in as_i8(xs).chunks_exact(n).zip(acc.chunks_exact_mut(rows_n)) {
                dots_i8_checked_weights(isa, xi, rows, a)?;
            }
            for (i, accs) in acc.chunks_exact(rows_n).enumerate() {
                let out = &mut y[(g0 + i) * m + c0..(g0 + i) * m + c0 + rows_n];
                for (((o, a), b), rq) in out.iter_mut().zip(accs).zip(&bias).zip(&rqs) {
                    // Parse bounds |bias| <= 2^30 and in_dim <= 2^16: no overflow.
                    let total = a.wrapping_add(*b);
                    *o = requantize(total, *rq, layer.output.zero_point, layer.relu) as u8;
                }
            }
        }
    }
    Ok(())
}

/// The most outputs [`Model::predict`] handles (logits live on its stack).
pub const MAX_OUT: usize = 256;

/// Bytes of a layer's (weight, bias, requant) tensors, or `None` on overflow.
pub(crate) fn tensor_bytes(
    dtype: Dtype,
    in_dim: usize,
    out_dim: usize,
) -> Option<(usize, usize, usize)> {
    let n = in_dim.checked_mul(out_dim)?;
    // Dimension products must fit 32 bits, as the table's fields do.
    u32::try_from(n.checked_mul(4)?).ok()?;
    Some(match dtype {
        // Int8Head never reaches here: layers are sized by their own type.
        Dtype::Int8 | Dtype::Int8Head => (n, out_dim.checked_mul(4)?, out_dim.checked_mul(8)?),
        Dtype::F32 => (n.checked_mul(4)?, out_dim.checked_mul(4)?, 0),
    })
}

/// `x` rounded up to a multiple of [`ALIGN`].
pub(crate) fn align_up(x: usize) -> Option<usize> {
    Some(x.checked_add(ALIGN - 1)? / ALIGN * ALIGN)
}
