//! int8 quantization: the kernel, requantization, and the post-training
//! quantizer that turns an f32 dense layer into int8 weights, int32 biases and
//! per-channel fixed-point multipliers.
//!
//! The scheme (as TensorFlow Lite's, with one documented rounding rule):
//! - weights: int8 per output channel, symmetric, ±127, `w ≈ s_w[c] · q_w`;
//! - activations: int8 per tensor with a zero point, `x ≈ s_x · (q_x − z_x)`;
//!   the input is the u8 pixel `p` itself, `q = p − 128` (s = 1/255, z = −128);
//! - accumulator: `acc[c] = Σ_i q_x[i] · q_w[c, i] + bias[c]` in int32, where
//!   the stored bias already folds in the input zero point:
//!   `bias[c] = round(b[c] / (s_x s_w[c])) − z_x · Σ_i q_w[c, i]`;
//! - output: `q_y = clamp(round(acc · M[c]) + z_y, lo, 127)` with
//!   `M[c] = s_x s_w[c] / s_y` as a Q31 multiplier and shift
//!   ([`requant`]), `lo = z_y` when a ReLU is folded in, −128 otherwise.
//!
//! Inference uses integers only. Quantizing (this module's `quantize_*`,
//! run on the host) uses floating point.

use crate::{Error, Isa};

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
#[macro_use]
mod body;
#[cfg(ember_dsp)]
mod cortex_m;
pub mod reference;
pub mod requant;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use requant::{requantize, Requant};

/// The widest layer input accepted: `MAX_IN · 128 · 127 + 2^30 < 2^31`, so an
/// accumulator can never overflow.
pub const MAX_IN: usize = 1 << 16;
/// Largest |stored bias| accepted (see [`MAX_IN`]).
pub const MAX_BIAS: i32 = 1 << 30;

/// `acc[c] = Σ_i x[i] · w[c · n + i]` (w is out × in, n = x.len()), exact, on
/// [`Isa::active`]. Scalar, AVX2, AVX-512BW and NEON give identical bits.
/// Weights are symmetric int8, −127..=127 (the x86 kernels rely on it).
///
/// # Errors
/// [`Error::ShapeMismatch`] unless `w.len() == acc.len() * x.len()`;
/// [`Error::BadDimension`] when `x.len() > MAX_IN`; [`Error::BadField`]
/// (with the index) for a weight of −128.
pub fn dots_i8(x: &[i8], w: &[i8], acc: &mut [i32]) -> Result<(), Error> {
    dots_i8_on(Isa::active(), x, w, acc)
}

/// [`dots_i8`] on a chosen path.
///
/// # Errors
/// As [`dots_i8`], and [`Error::IsaUnavailable`].
pub fn dots_i8_on(isa: Isa, x: &[i8], w: &[i8], acc: &mut [i32]) -> Result<(), Error> {
    if let Some(i) = w.iter().position(|&v| v == i8::MIN) {
        return Err(Error::BadField { offset: i });
    }
    dots_i8_checked_weights(isa, x, w, acc)
}

/// Whether the batched inference takes the packed route
/// ([`layer_u8_packed_checked`]: activations shifted to unsigned, weights
/// repacked): AVX-512 with VNNI, and AVX2 (with or without AVX-512); other
/// paths run image by image on plain int8.
pub(crate) fn batch_packed(isa: Isa) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        matches!(isa, Isa::Avx512 | Isa::Avx2Fma) && isa.is_supported()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        false
    }
}

/// Four input bytes of an image, `x[4g .. 4g + 4]`, as one little-endian
/// word for the packed kernels to broadcast; bytes past `n` read as 0 (their
/// packed weights are 0 too).
///
/// # Safety
/// `x` points at an image of `n` bytes and `4 · g < n`.
#[inline(always)]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) unsafe fn input_word(x: *const u8, n: usize, g: usize) -> u32 {
    let at = 4 * g;
    if at + 4 <= n {
        // SAFETY: at + 4 <= n: inside the image (contract).
        unsafe { x.add(at).cast::<u32>().read_unaligned() }
    } else {
        let mut b = [0u8; 4];
        for (i, v) in b.iter_mut().enumerate().take(n - at) {
            // SAFETY: at + i < n.
            *v = unsafe { *x.add(at + i) };
        }
        u32::from_le_bytes(b)
    }
}

/// The checks [`layer_packed_on`] makes before a kernel runs: `xs` whole
/// images of `n` (≤ [`MAX_IN`]) inputs, 1 to 96 rows, one requantization
/// per bias and each valid, rows `c0 ..` inside the `m` outputs, `y` one row
/// of `m` per image.
fn check_packed(
    xs: &[u8],
    n: usize,
    bias: &[i32],
    rqs: &[Requant],
    y: &[u8],
    m: usize,
    c0: usize,
) -> Result<(), Error> {
    let rows = bias.len();
    if n == 0 || n > MAX_IN || m == 0 || !xs.len().is_multiple_of(n) || rows == 0 || rows > 96 {
        return Err(Error::BadDimension);
    }
    let images = xs.len() / n;
    if rqs.len() != rows || c0 + rows > m || y.len() != images * m {
        return Err(Error::ShapeMismatch {
            expected: images * m,
            got: y.len(),
        });
    }
    if let Some(i) = rqs.iter().position(|r| !r.is_valid()) {
        return Err(Error::BadField { offset: i });
    }
    Ok(())
}

/// The first `need` bytes of `pack`, where a kernel repacks weights.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn pack_room(pack: &mut [u8], need: usize) -> Result<&mut [u8], Error> {
    let got = pack.len();
    pack.get_mut(..need)
        .ok_or(Error::BufferTooSmall { needed: need, got })
}

/// Bytes of the AVX2 route's tables after its packed weights: each block's
/// count of residual cells (u32) and its 8 rows' weight sums (i32).
#[cfg(target_arch = "x86_64")]
fn avx2_tables(rows: usize) -> usize {
    rows.div_ceil(8) * (4 + 32)
}

/// Bytes [`pack_on`] writes for `rows` rows of `n` inputs on any packed
/// route of this architecture, the most of them (0 where nothing repacks).
pub(crate) fn packed_len(rows: usize, n: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use x86_64::avx2_packed as k;
        let vnni = x86_64::avx512vnni_packed::packed_len(rows, n);
        vnni.max(k::packed_len(rows, n) + avx2_tables(rows))
    }
    #[cfg(target_arch = "aarch64")]
    {
        aarch64::neon_packed::packed_len(rows, n)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (rows, n);
        0
    }
}

/// The packed kernel a batch runs on (none: image by image).
#[derive(Clone, Copy)]
enum Route {
    /// `vpmaddubsw`, or AVX-VNNI where present ([`batch_packed`]).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512 VNNI.
    #[cfg(target_arch = "x86_64")]
    Vnni512,
    /// NEON on plain int8 ([`batch_packed_signed`]).
    #[cfg(target_arch = "aarch64")]
    Neon,
}

/// The packed kernel of `isa`, if it has one.
fn route(isa: Isa) -> Option<Route> {
    #[cfg(target_arch = "x86_64")]
    if batch_packed(isa) {
        let vnni = isa == Isa::Avx512 && Isa::has_vnni();
        return Some(if vnni { Route::Vnni512 } else { Route::Avx2 });
    }
    #[cfg(target_arch = "aarch64")]
    if batch_packed_signed(isa) {
        return Some(Route::Neon);
    }
    let _ = isa;
    None
}

/// Bytes [`pack_on`] writes for `rows` rows of `n` inputs on `isa` (0 where
/// it has no packed kernel).
pub(crate) fn packed_len_on(isa: Isa, rows: usize, n: usize) -> usize {
    match route(isa) {
        #[cfg(target_arch = "x86_64")]
        Some(Route::Avx2) => x86_64::avx2_packed::packed_len(rows, n) + avx2_tables(rows),
        #[cfg(target_arch = "x86_64")]
        Some(Route::Vnni512) => x86_64::avx512vnni_packed::packed_len(rows, n),
        #[cfg(target_arch = "aarch64")]
        Some(Route::Neon) => aarch64::neon_packed::packed_len(rows, n),
        None => {
            let _ = (rows, n);
            0
        }
    }
}

/// Repacks `rows` rows (1 to 96) of `n` int8 weights `w` (row after row)
/// for `isa`'s packed kernel into the first [`packed_len_on`] bytes of
/// `pack`, which [`layer_packed_on`] then reads, once or for many batches.
///
/// # Errors
/// [`Error::BadDimension`] for no inputs, more than [`MAX_IN`], or no rows
/// or more than 96; [`Error::ShapeMismatch`] unless `w.len() = rows · n`;
/// [`Error::BufferTooSmall`] when `pack` is shorter;
/// [`Error::IsaUnavailable`] where `isa` has no packed kernel.
pub(crate) fn pack_on(
    isa: Isa,
    w: &[i8],
    n: usize,
    rows: usize,
    pack: &mut [u8],
) -> Result<(), Error> {
    if n == 0 || n > MAX_IN || rows == 0 || rows > 96 {
        return Err(Error::BadDimension);
    }
    if w.len() != rows * n {
        return Err(Error::ShapeMismatch {
            expected: rows * n,
            got: w.len(),
        });
    }
    let need = packed_len_on(isa, rows, n);
    match route(isa) {
        #[cfg(target_arch = "x86_64")]
        Some(Route::Avx2) => {
            use x86_64::avx2_packed as k;
            let pack = pack_room(pack, need)?;
            let (body, tables) = pack.split_at_mut(k::packed_len(rows, n));
            let blocks = rows.div_ceil(8);
            let (mut counts, mut sums) = ([0u32; 12], [0i32; 96]);
            // SAFETY: batch_packed() confirmed avx2+fma; w holds rows · n
            // weights, body packed_len(rows, n) bytes, rows <= 96.
            unsafe {
                let split = !Isa::has_avx_vnni();
                let (c, s) = (&mut counts[..blocks], &mut sums[..8 * blocks]);
                k::pack(w, n, rows, body, c, s, split);
            }
            let (c, s) = tables.split_at_mut(4 * blocks);
            for (o, v) in c.chunks_exact_mut(4).zip(&counts) {
                o.copy_from_slice(&v.to_le_bytes());
            }
            for (o, v) in s.chunks_exact_mut(4).zip(&sums) {
                o.copy_from_slice(&v.to_le_bytes());
            }
            Ok(())
        }
        #[cfg(target_arch = "x86_64")]
        Some(Route::Vnni512) => {
            let pack = pack_room(pack, need)?;
            // SAFETY: batch_packed() confirmed avx512f+bw+fma; the lengths
            // were checked above.
            unsafe { x86_64::avx512vnni_packed::pack(w, n, rows, pack) };
            Ok(())
        }
        #[cfg(target_arch = "aarch64")]
        Some(Route::Neon) => {
            aarch64::neon_packed::pack(w, n, rows, pack_room(pack, need)?);
            Ok(())
        }
        None => {
            let _ = (pack, need);
            Err(Error::IsaUnavailable)
        }
    }
}

/// Whether the batched inference takes the packed route on plain int8
/// activations ([`layer_i8_packed_checked`]): NEON.
pub(crate) fn batch_packed_signed(isa: Isa) -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        isa == Isa::Neon && isa.is_supported()
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        let _ = isa;
        false
    }
}

/// A layer's rows `c0 .. c0 + bias.len()` (1 to 96) for every image, from
/// weights [`pack_on`] packed for the same `isa`, rows and `n`. On x86_64
/// (AVX-512 VNNI, else AVX2; [`batch_packed`]) activations in and out are
/// shifted to unsigned: `y[b·m + c0 + r] = requantize(Σ_i (xs[b·n + i] −
/// 128) · w[r·n + i] + bias[r], rqs[r], zero_point, relu) + 128`; on NEON
/// ([`batch_packed_signed`]) they are plain int8 held in bytes,
/// `requantize(Σ_i xs[b·n + i] · w[r·n + i] + bias[r], ...)`.
///
/// # Errors
/// [`Error::BadDimension`] or [`Error::ShapeMismatch`] when the lengths
/// disagree, [`Error::BufferTooSmall`] when `pack` is shorter than
/// [`packed_len_on`], [`Error::BadField`] for an invalid requantization or a
/// pack whose residual tables are out of range, [`Error::IsaUnavailable`]
/// where `isa` has no packed kernel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn layer_packed_on(
    isa: Isa,
    xs: &[u8],
    n: usize,
    pack: &[u8],
    bias: &[i32],
    rqs: &[Requant],
    zero_point: i32,
    relu: bool,
    y: &mut [u8],
    m: usize,
    c0: usize,
) -> Result<(), Error> {
    check_packed(xs, n, bias, rqs, y, m, c0)?;
    let rows = bias.len();
    let need = packed_len_on(isa, rows, n);
    let pack = pack.get(..need).ok_or(Error::BufferTooSmall {
        needed: need,
        got: pack.len(),
    })?;
    match route(isa) {
        #[cfg(target_arch = "x86_64")]
        Some(Route::Avx2) => {
            use x86_64::avx2_packed as k;
            let (body, tables) = pack.split_at(k::packed_len(rows, n));
            let blocks = rows.div_ceil(8);
            let (c, s) = tables.split_at(4 * blocks);
            let word = |b: &[u8]| [b[0], b[1], b[2], b[3]];
            let (mut counts, mut sums) = ([0u32; 12], [0i32; 96]);
            for (v, b) in counts.iter_mut().zip(c.chunks_exact(4)) {
                *v = u32::from_le_bytes(word(b));
            }
            for (v, b) in sums.iter_mut().zip(s.chunks_exact(4)) {
                *v = i32::from_le_bytes(word(b));
            }
            let counts = &counts[..blocks];
            if !k::residuals_in_range(body, rows, n, counts) {
                return Err(Error::BadField { offset: 0 });
            }
            // SAFETY: batch_packed() confirmed avx2+fma (and has_avx_vnni()
            // avxvnni); every length and requantization was checked above,
            // the residual tables lie inside the pack, rows <= 96, n <=
            // MAX_IN; pack_on split the pairs unless has_avx_vnni().
            unsafe {
                k::layer(
                    xs,
                    n,
                    body,
                    counts,
                    &sums[..8 * blocks],
                    bias,
                    rqs,
                    zero_point,
                    relu,
                    y,
                    m,
                    c0,
                    Isa::has_avx_vnni(),
                );
            }
            Ok(())
        }
        #[cfg(target_arch = "x86_64")]
        Some(Route::Vnni512) => {
            use x86_64::avx512vnni_packed as k;
            // SAFETY: batch_packed() confirmed avx512f+bw+fma and avx512vnni;
            // every length and requantization was checked above, n <= MAX_IN.
            unsafe { k::layer(xs, n, pack, bias, rqs, zero_point, relu, y, m, c0) };
            Ok(())
        }
        #[cfg(target_arch = "aarch64")]
        Some(Route::Neon) => {
            use aarch64::neon_packed as k;
            // SAFETY: batch_packed_signed() confirmed neon; every length and
            // requantization was checked above, n <= MAX_IN.
            unsafe { k::layer(xs, n, pack, bias, rqs, zero_point, relu, y, m, c0) };
            Ok(())
        }
        None => {
            let _ = (xs, pack, zero_point, relu, y, m, c0);
            Err(Error::IsaUnavailable)
        }
    }
}

/// [`dots_i8_on`] for weights already known to hold no −128 (a parsed blob's).
pub(crate) fn dots_i8_checked_weights(
    isa: Isa,
    x: &[i8],
    w: &[i8],
    acc: &mut [i32],
) -> Result<(), Error> {
    if x.len() > MAX_IN {
        return Err(Error::BadDimension);
    }
    let need = acc.len().checked_mul(x.len()).ok_or(Error::BadDimension)?;
    if w.len() != need {
        return Err(Error::ShapeMismatch {
            expected: need,
            got: w.len(),
        });
    }
    match isa {
        Isa::Scalar => reference::dots_i8(x, w, acc),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma if isa.is_supported() => {
            // SAFETY: is_supported() confirmed avx2; lengths checked above.
            unsafe { x86_64::avx2::dots_i8(x, w, acc) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if isa.is_supported() && Isa::has_vnni() => {
            // SAFETY: is_supported() confirmed avx512f+bw and has_vnni()
            // avx512vnni; lengths checked above.
            unsafe { x86_64::avx512vnni::dots_i8(x, w, acc) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if isa.is_supported() => {
            // SAFETY: is_supported() confirmed avx512f+bw; lengths checked above.
            unsafe { x86_64::avx512::dots_i8(x, w, acc) }
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if isa.is_supported() => {
            // SAFETY: is_supported() confirmed neon; lengths checked above.
            unsafe { aarch64::neon::dots_i8(x, w, acc) }
        }
        #[cfg(ember_dsp)]
        Isa::CortexMDsp => {
            // SAFETY: built only for Armv7E-M (ember_dsp); lengths checked above.
            unsafe { cortex_m::dots_i8(x, w, acc) }
        }
        _ => return Err(Error::IsaUnavailable),
    }
    Ok(())
}

/// Per-tensor activation quantization: `x ≈ scale · (q − zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActQuant {
    /// Step between adjacent codes (finite, normal, > 0).
    pub scale: f32,
    /// The code of real 0, in −128..=127.
    pub zero_point: i32,
}

/// The input: u8 pixels `p` as int8 `p − 128`, representing `p / 255`.
pub const INPUT: ActQuant = ActQuant {
    scale: 1.0 / 255.0,
    zero_point: -128,
};

impl ActQuant {
    /// The affine map of [lo, hi] (widened to contain 0, so 0 is exact) onto
    /// −128..=127. A NaN bound counts as 0; an empty range as [0, 1].
    pub fn from_range(lo: f32, hi: f32) -> ActQuant {
        Self::from_range_min_scale(lo, hi, f32::MIN_POSITIVE)
    }

    /// As [`ActQuant::from_range`], with the scale at least `min_scale`
    /// (see [`min_output_scale`]): the range grows around the same zero.
    pub fn from_range_min_scale(lo: f32, hi: f32, min_scale: f32) -> ActQuant {
        let lo = if lo.is_finite() { lo.min(0.0) } else { 0.0 };
        let hi = if hi.is_finite() { hi.max(0.0) } else { 0.0 };
        let span = if hi - lo > 0.0 { hi - lo } else { 1.0 };
        let floor = if min_scale.is_normal() {
            min_scale
        } else {
            f32::MIN_POSITIVE
        };
        let scale = (span / 255.0).max(floor);
        let zero_point = (-128.0 - libm::roundf(lo / scale)).clamp(-128.0, 127.0) as i32;
        ActQuant { scale, zero_point }
    }

    /// Whether the parameters are usable (what a parser checks).
    pub fn is_valid(self) -> bool {
        self.scale.is_normal() && self.scale > 0.0 && (-128..=127).contains(&self.zero_point)
    }
}

/// `round(v)` to int8 with the documented special values: NaN → 0,
/// +∞ → 127, −∞ → −127, and saturation to ±127 (symmetric weights).
pub fn quantize_symmetric(v: f32) -> i8 {
    if v.is_nan() {
        0
    } else {
        libm::roundf(v).clamp(-127.0, 127.0) as i8
    }
}

/// Per-output-channel weight scales of a (in × out) f32 weight: the largest
/// finite |w| of the channel over 127 (1 for an all-zero channel).
///
/// # Errors
/// [`Error::ShapeMismatch`] for lengths that do not fit.
pub fn channel_scales(w: &[f32], in_dim: usize, scales: &mut [f32]) -> Result<(), Error> {
    let out_dim = scales.len();
    if w.len() != in_dim * out_dim {
        return Err(Error::ShapeMismatch {
            expected: in_dim * out_dim,
            got: w.len(),
        });
    }
    for (c, s) in scales.iter_mut().enumerate() {
        *s = channel_scale(w, in_dim, out_dim, c);
    }
    Ok(())
}

/// Channel `c`'s scale: the largest finite |w| over 127, or 1 when all are 0.
fn channel_scale(w: &[f32], in_dim: usize, out_dim: usize, c: usize) -> f32 {
    let m = (0..in_dim)
        .filter_map(|i| w.get(i * out_dim + c))
        .map(|v| v.abs())
        .filter(|v| v.is_finite())
        .fold(0.0f32, f32::max);
    if m > 0.0 {
        m / 127.0
    } else {
        1.0
    }
}

/// The buffers [`quantize_dense`] fills.
pub struct QuantizedDense<'a> {
    /// int8 weights, out × in (one row per output channel).
    pub weight: &'a mut [i8],
    /// int32 biases with the input zero point folded in.
    pub bias: &'a mut [i32],
    /// Per-channel requantization.
    pub requant: &'a mut [Requant],
}

/// Quantizes a dense layer `y = x·W + b` (W in × out, f32) whose input is
/// quantized as `input` and whose output is to be quantized as `output`.
///
/// # Errors
/// [`Error::ShapeMismatch`] for lengths that do not fit;
/// [`Error::BadHyperParameter`] when a channel's multiplier
/// `s_in · s_w / s_out` is not in [2^−32, 1) (widen the output range: see
/// [`min_output_scale`]) or a bias does not fit [`MAX_BIAS`].
pub fn quantize_dense(
    w: &[f32],
    b: &[f32],
    in_dim: usize,
    input: ActQuant,
    output: ActQuant,
    q: QuantizedDense<'_>,
) -> Result<(), Error> {
    let out_dim = b.len();
    let n = in_dim.checked_mul(out_dim).ok_or(Error::BadDimension)?;
    for (got, want) in [
        (w.len(), n),
        (q.weight.len(), n),
        (q.bias.len(), out_dim),
        (q.requant.len(), out_dim),
    ] {
        if got != want {
            return Err(Error::ShapeMismatch {
                expected: want,
                got,
            });
        }
    }
    for c in 0..out_dim {
        let s_w = channel_scale(w, in_dim, out_dim, c);
        let mut sum = 0i64;
        for i in 0..in_dim {
            let v = quantize_symmetric(w[i * out_dim + c] / s_w);
            q.weight[c * in_dim + i] = v;
            sum += v as i64;
        }
        let real = input.scale as f64 * s_w as f64;
        let bq = libm::round(b[c] as f64 / real);
        let bias = if bq.is_nan() { 0.0 } else { bq } - input.zero_point as f64 * sum as f64;
        if bias.is_nan() || bias.abs() > MAX_BIAS as f64 {
            return Err(Error::BadHyperParameter);
        }
        q.bias[c] = bias as i32;
        q.requant[c] = Requant::from_real(real / output.scale as f64)?;
    }
    Ok(())
}

/// The smallest output scale that keeps every channel's multiplier below 1.
pub fn min_output_scale(w: &[f32], in_dim: usize, out_dim: usize, input: ActQuant) -> f32 {
    let worst = (0..out_dim)
        .map(|c| channel_scale(w, in_dim, out_dim, c))
        .fold(0.0f32, f32::max);
    // A margin of 2^-20 keeps the Q31 rounding from reaching exactly 1.
    worst * input.scale * (1.0 + 1.0 / (1 << 20) as f32)
}

#[cfg(all(test, feature = "std", target_arch = "x86_64"))]
mod tests {
    use std::vec::Vec;

    /// A seeded xorshift32 stream: the tests' weights and inputs.
    #[cfg(target_arch = "x86_64")]
    fn xorshift(mut s: u32) -> impl FnMut() -> u32 {
        move || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        }
    }

    /// Both AVX-512 kernels (with and without VNNI) against the reference,
    /// each where the CPU has it, on shapes around 64 bytes and on the
    /// saturation corners. `EMBER_REQUIRE_VNNI` (set by CI from the CPU's
    /// flags) turns a skip of the VNNI kernel into a failure.
    #[test]
    fn avx512_kernels_with_and_without_vnni_match_the_reference() {
        let bw =
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw");
        let vnni = bw && std::is_x86_feature_detected!("avx512vnni");
        if std::env::var_os("EMBER_REQUIRE_VNNI").is_some() {
            assert!(
                vnni,
                "EMBER_REQUIRE_VNNI is set but this CPU lacks AVX-512 VNNI"
            );
        }
        if !bw {
            std::eprintln!("note: AVX-512 int8 kernels not tested: this CPU lacks AVX-512BW");
            return;
        }
        if !vnni {
            std::eprintln!("note: AVX-512 VNNI int8 kernel not tested: this CPU lacks it");
        }
        let mut next = xorshift(0x2545_f491);
        let mut byte = |lo: i32| (lo + (next() % (128 - lo) as u32) as i32) as i8;
        for n in [0usize, 1, 63, 64, 65, 127, 128, 129, 784] {
            for rows in [1usize, 3, 4, 15, 16, 17, 33] {
                let cases: [(Vec<i8>, Vec<i8>); 3] = [
                    (
                        (0..n).map(|_| byte(-128)).collect(),
                        (0..rows * n).map(|_| byte(-127)).collect(),
                    ),
                    // Saturation corners: the largest products of either sign.
                    (std::vec![-128; n], std::vec![127; rows * n]),
                    (std::vec![-128; n], std::vec![-127; rows * n]),
                ];
                for (x, w) in cases {
                    let mut want = std::vec![0i32; rows];
                    super::reference::dots_i8(&x, &w, &mut want);
                    let mut got = std::vec![7i32; rows];
                    // SAFETY: avx512f+bw detected above; lengths match.
                    unsafe { super::x86_64::avx512::dots_i8(&x, &w, &mut got) };
                    assert_eq!(got, want, "avx512bw n={n} rows={rows}");
                    if vnni {
                        let mut got = std::vec![7i32; rows];
                        // SAFETY: avx512vnni detected above; lengths match.
                        unsafe { super::x86_64::avx512vnni::dots_i8(&x, &w, &mut got) };
                        assert_eq!(got, want, "avx512vnni n={n} rows={rows}");
                    }
                }
            }
        }
    }

    /// The pairing of inputs ([`x86_64::avx2_packed`]) does its job: on a
    /// layer of bell-shaped weights (a sum of three uniforms, std ~42, as a
    /// trained layer quantized per row), taken in input order about a third
    /// of the cells would need a residual pass; after the pairing at most
    /// 2% do, and the layer is still the reference bit for bit.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_pairing_leaves_few_residual_cells() {
        use super::x86_64::avx2_packed as k;
        use super::{requantize, Requant};
        if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
            std::eprintln!("note: AVX2 pairing not tested: this CPU lacks AVX2");
            return;
        }
        let (n, rows, images) = (784usize, 48usize, 7usize);
        let mut next = xorshift(0x2545_f491);
        let w: Vec<i8> = (0..rows * n)
            .map(|_| (0..3).map(|_| (next() % 85) as i32 - 42).sum::<i32>() as i8)
            .collect();
        // In input order: cells with a pair of one sign above 128.
        let blocks = rows.div_ceil(8);
        let in_order = (0..blocks * n / 4)
            .filter(|&c| {
                let (b, g) = (c / (n / 4), c % (n / 4));
                (8 * b..8 * b + 8).any(|r| {
                    let q = &w[r * n + 4 * g..r * n + 4 * g + 4];
                    (q[0] as i32 + q[1] as i32).abs() > 128
                        || (q[2] as i32 + q[3] as i32).abs() > 128
                })
            })
            .count();
        let mut pack = std::vec![0u8; k::packed_len(rows, n)];
        let (mut counts, mut sums) = (std::vec![0u32; blocks], std::vec![0i32; 8 * blocks]);
        let xs: Vec<u8> = (0..images * n)
            .map(|i| if i < n { 255 } else { next() as u8 })
            .collect();
        let bias = std::vec![0i32; rows];
        let rqs = std::vec![Requant::from_real(0.001).unwrap(); rows];
        let mut got = std::vec![0u8; images * rows];
        // SAFETY: avx2 and fma detected above; every length is the kernel's
        // contract.
        unsafe {
            k::pack(&w, n, rows, &mut pack, &mut counts, &mut sums, true);
            k::layer(
                &xs, n, &pack, &counts, &sums, &bias, &rqs, 0, false, &mut got, rows, 0, false,
            );
        }
        let cells = blocks * n / 4;
        let residual: u32 = counts.iter().sum();
        assert!(
            in_order * 4 > cells,
            "{in_order} of {cells}: the weights are too tame to test"
        );
        assert!(
            residual as usize * 50 <= cells,
            "{residual} residual cells of {cells}"
        );
        for b in 0..images {
            for r in 0..rows {
                let acc: i32 = (0..n)
                    .map(|i| (xs[b * n + i] as i32 - 128) * w[r * n + i] as i32)
                    .sum();
                let q = requantize(acc, rqs[r], 0, false);
                assert_eq!(
                    got[b * rows + r],
                    (q as i32 + 128) as u8,
                    "image {b} row {r}"
                );
            }
        }
    }

    /// The AVX2 packed layer with `vpmaddubsw` (saturating pairs split into
    /// residual cells) and with AVX-VNNI, each where the CPU has it, against
    /// the reference: `requantize(Σ (u − 128)·w + bias) + 128` per image and
    /// row, on random weights and on pairs of ±127 of one sign against
    /// all-255 inputs.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_packed_layer_with_and_without_avx_vnni_matches_the_reference() {
        use super::x86_64::avx2_packed as k;
        use super::{requantize, Requant};
        if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
            std::eprintln!("note: AVX2 packed int8 kernel not tested: this CPU lacks AVX2");
            return;
        }
        let has_vnni = std::is_x86_feature_detected!("avxvnni");
        if !has_vnni {
            std::eprintln!("note: AVX-VNNI int8 kernel not tested: this CPU lacks it");
        }
        let mut next = xorshift(0x9e37_79b9);
        for (n, rows, images, corners) in [
            (784usize, 37usize, 17usize, false),
            (70, 24, 6, true),
            (783, 96, 11, false),
            (9, 5, 3, true),
        ] {
            let w: Vec<i8> = (0..rows * n)
                .map(|i| {
                    if corners {
                        [127, 127, -127, -127][(i % n) % 4]
                    } else {
                        ((next() % 255) as i32 - 127) as i8
                    }
                })
                .collect();
            let xs: Vec<u8> = (0..images * n)
                .map(|i| if corners || i < n { 255 } else { next() as u8 })
                .collect();
            let bias: Vec<i32> = (0..rows).map(|r| (r as i32 - 3) * 1013).collect();
            let rqs: Vec<Requant> = (0..rows)
                .map(|r| Requant::from_real([0.6, 0.0009, 0.02, 1e-5][r % 4]).unwrap())
                .collect();
            let (zp, relu) = (-7, true);
            let mut want = std::vec![0u8; images * rows];
            for b in 0..images {
                for r in 0..rows {
                    let acc: i32 = (0..n)
                        .map(|i| (xs[b * n + i] as i32 - 128) * w[r * n + i] as i32)
                        .sum();
                    let q = requantize(acc + bias[r], rqs[r], zp, relu);
                    want[b * rows + r] = (q as i32 + 128) as u8;
                }
            }
            for vnni in [false, true] {
                if vnni && !has_vnni {
                    continue;
                }
                let blocks = rows.div_ceil(8);
                let mut pack = std::vec![0u8; k::packed_len(rows, n)];
                let (mut counts, mut sums) = (std::vec![0u32; blocks], std::vec![0i32; 8 * blocks]);
                let mut got = std::vec![0u8; images * rows];
                // SAFETY: avx2, fma (and avxvnni when vnni) detected above;
                // every length is the kernel's contract.
                unsafe {
                    k::pack(&w, n, rows, &mut pack, &mut counts, &mut sums, !vnni);
                    k::layer(
                        &xs, n, &pack, &counts, &sums, &bias, &rqs, zp, relu, &mut got, rows, 0,
                        vnni,
                    );
                }
                if corners && !vnni {
                    assert!(counts.iter().all(|&c| c > 0), "residual cells expected");
                }
                assert_eq!(got, want, "n {n} rows {rows} images {images} vnni {vnni}");
            }
        }
    }
}
