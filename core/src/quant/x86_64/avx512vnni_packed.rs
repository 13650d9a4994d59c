//! AVX-512 VNNI on packed weights: a whole layer for a batch of images, the
//! accumulators in registers and the requantization in vectors.
//!
//! The weights are first repacked ([`pack`]) so that one 64-byte vector
//! holds four consecutive inputs of 16 rows: lane r of the vector for block
//! `b` and group `g` is `w[16b + r][4g .. 4g + 4]`. A group of four input
//! bytes of one image, broadcast to every lane, then meets 16 rows in one
//! `vpdpbusd`, and each lane accumulates one output: no horizontal sums.
//! A tile of [`IMAGES`] images by two blocks (32 rows) keeps 24 accumulators
//! in registers; the two blocks' weights (2 · n bytes · 16) stay in L1 while
//! every image of the batch passes through them.
//!
//! As in the unpacked kernel, activations arrive shifted to unsigned
//! (`x + 128`, the raw pixel for the first layer) and the shift comes back
//! out through the rows' weight sums, which the kernel takes from the packed
//! vectors themselves. Every product and sum is an exact integer, and the
//! requantization is [`Requant::apply_reference`] in 64-bit lanes, so the
//! result is bit for bit the one-image reference's.
use core::arch::x86_64::*;

use crate::matmul::x86_64::avx512::transpose16;
use crate::quant::{input_word, Requant};

/// Images per tile: 12 images by 2 blocks are 24 of the 32 zmm registers.
const IMAGES: usize = 12;

/// Bytes [`pack`] writes for `rows` rows of `n` inputs: whole blocks of 16
/// rows by whole groups of 4 inputs, zero-padded.
pub(crate) fn packed_len(rows: usize, n: usize) -> usize {
    rows.div_ceil(16) * n.div_ceil(4) * 64
}

/// Repacks `rows` rows of `n` int8 weights (`w`, row after row) into the
/// layout the kernel reads (module docs); padding lanes and bytes are 0.
/// Each 16 rows by 64 inputs pass through one 16 x 16 transpose of 32-bit
/// words (the f32 matmul's, on the same bits).
///
/// # Safety
/// The CPU supports avx512f, avx512bw and fma; `w.len() = rows · n`,
/// `out.len() = packed_len(rows, n)`.
#[target_feature(enable = "avx512f,avx512bw,fma")]
pub(crate) unsafe fn pack(w: &[i8], n: usize, rows: usize, out: &mut [u8]) {
    debug_assert!(w.len() == rows * n && out.len() == packed_len(rows, n));
    let groups = n.div_ceil(4);
    let (src, dst) = (w.as_ptr().cast::<u8>(), out.as_mut_ptr());
    for b in 0..rows.div_ceil(16) {
        let present = (rows - 16 * b).min(16);
        for g0 in (0..groups).step_by(16) {
            let bytes = (n - 4 * g0).min(64);
            let keep: __mmask64 = if bytes == 64 { !0 } else { (1u64 << bytes) - 1 };
            let r: [__m512; 16] = core::array::from_fn(|r| {
                if r < present {
                    // SAFETY: row 16b + r exists; the mask keeps the load in it.
                    let v = unsafe {
                        _mm512_maskz_loadu_epi8(keep, src.add((16 * b + r) * n + 4 * g0).cast())
                    };
                    _mm512_castsi512_ps(v)
                } else {
                    _mm512_setzero_ps()
                }
            });
            let t = transpose16(r);
            for (j, v) in t.iter().enumerate().take((groups - g0).min(16)) {
                // SAFETY: group g0 + j < groups of block b: inside `out`.
                unsafe { _mm512_storeu_ps(dst.add((b * groups + g0 + j) * 64).cast(), *v) };
            }
        }
    }
}

/// The per-lane constants of one block of 16 rows: the requantization in
/// 64-bit lanes (even and odd rows apart), the bias with the unsigned
/// shift's correction folded in, and the clamp.
struct Block {
    bias: __m512i,
    mul_even: __m512i,
    mul_odd: __m512i,
    round_even: __m512i,
    round_odd: __m512i,
    shift_even: __m512i,
    shift_odd: __m512i,
}

/// The constants of the rows with biases `bias` and requantizations `rqs`
/// (the first 16 of them; missing rows get neutral values) whose packed
/// weights are `wp` (`groups` vectors).
///
/// # Safety
/// The CPU supports avx512f, avx512bw and avx512vnni; `wp` points at
/// `groups` · 64 readable bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn block(bias: &[i32], rqs: &[Requant], wp: *const u8, groups: usize) -> Block {
    let ones = _mm512_set1_epi8(1);
    let mut sums = _mm512_setzero_si512();
    for g in 0..groups {
        // SAFETY: g < groups: inside the block (contract).
        let w = unsafe { _mm512_loadu_si512(wp.add(g * 64).cast()) };
        sums = _mm512_dpbusd_epi32(sums, ones, w);
    }
    let mut b16 = [0i32; 16];
    let mut mul = [0i64; 16];
    let mut round = [0i64; 16];
    let mut shift = [31i64; 16];
    for (r, (&b, rq)) in bias.iter().zip(rqs).enumerate().take(16) {
        b16[r] = b;
        mul[r] = i64::from(rq.multiplier);
        round[r] = 1i64 << (30 + rq.shift);
        shift[r] = 31 + i64::from(rq.shift);
    }
    let even = |v: &[i64; 16]| -> [i64; 8] { core::array::from_fn(|j| v[2 * j]) };
    let odd = |v: &[i64; 16]| -> [i64; 8] { core::array::from_fn(|j| v[2 * j + 1]) };
    // SAFETY: every array read holds 16 i32 or 8 i64.
    unsafe {
        let load = |v: [i64; 8]| _mm512_loadu_si512(v.as_ptr().cast());
        let bias = _mm512_loadu_si512(b16.as_ptr().cast());
        Block {
            // Σ (u − 128)·w = Σ u·w − 128·Σ w: the shift folded into the bias.
            bias: _mm512_sub_epi32(bias, _mm512_slli_epi32::<7>(sums)),
            mul_even: load(even(&mul)),
            mul_odd: load(odd(&mul)),
            round_even: load(even(&round)),
            round_odd: load(odd(&round)),
            shift_even: load(even(&shift)),
            shift_odd: load(odd(&shift)),
        }
    }
}

/// `clamp(round(acc · M) + zero_point, lo, 127) + 128` for 16 rows at once:
/// the requantization of [`crate::quant::requantize`] (the 64-bit formula,
/// which `Requant::apply` equals), shifted back to unsigned.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
fn requant(acc: __m512i, k: &Block, zero_point: __m512i, lo: __m512i) -> __m512i {
    let total = _mm512_add_epi32(acc, k.bias);
    // Even lanes: the low halves of the 64-bit lanes; odd lanes: the high.
    let even = _mm512_mul_epi32(total, k.mul_even);
    let odd = _mm512_mul_epi32(_mm512_srli_epi64::<32>(total), k.mul_odd);
    let even = _mm512_srav_epi64(_mm512_add_epi64(even, k.round_even), k.shift_even);
    let odd = _mm512_srav_epi64(_mm512_add_epi64(odd, k.round_odd), k.shift_odd);
    let v = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64::<32>(odd));
    let v = _mm512_add_epi32(v, zero_point);
    let v = _mm512_min_epi32(_mm512_max_epi32(v, lo), _mm512_set1_epi32(127));
    _mm512_add_epi32(v, _mm512_set1_epi32(128))
}

/// Images `BB` (from `x`, `n` bytes apart) against `V` blocks (`wp`): the
/// raw sums, lane r of `acc[b][v]` for image b and row 16v + r.
///
/// # Safety
/// The CPU supports avx512f, avx512bw and avx512vnni; `x` holds `BB`
/// images of `n` bytes; each `wp[v]` points at `n.div_ceil(4)` · 64 bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn tile<const BB: usize, const V: usize>(
    x: *const u8,
    n: usize,
    wp: [*const u8; V],
) -> [[__m512i; V]; BB] {
    let mut acc = [[_mm512_setzero_si512(); V]; BB];
    let whole = n / 4;
    for g in 0..whole {
        // SAFETY: g < groups: inside every block (contract).
        let w: [__m512i; V] =
            core::array::from_fn(|v| unsafe { _mm512_loadu_si512(wp[v].add(g * 64).cast()) });
        for (b, row) in acc.iter_mut().enumerate() {
            // SAFETY: image b exists and 4g + 4 <= n.
            let xb =
                _mm512_set1_epi32(unsafe { x.add(b * n + 4 * g).cast::<i32>().read_unaligned() });
            for (a, wv) in row.iter_mut().zip(&w) {
                *a = _mm512_dpbusd_epi32(*a, xb, *wv);
            }
        }
    }
    if whole * 4 < n {
        // SAFETY: the last group lies inside every block (contract).
        let w: [__m512i; V] =
            core::array::from_fn(|v| unsafe { _mm512_loadu_si512(wp[v].add(whole * 64).cast()) });
        for (b, row) in acc.iter_mut().enumerate() {
            // SAFETY: image b exists; group() stops at n.
            let xb = _mm512_set1_epi32(unsafe { input_word(x.add(b * n), n, whole) } as i32);
            for (a, wv) in row.iter_mut().zip(&w) {
                *a = _mm512_dpbusd_epi32(*a, xb, *wv);
            }
        }
    }
    acc
}

/// Requantizes a tile's sums and stores them: image `first + b`'s rows
/// `16v..` go to `out.y + (first + b) · out.m`, as many as `widths[v]` says.
///
/// # Safety
/// The CPU supports avx512f, avx512bw and avx512vnni; `out.y` has room for
/// images `first .. first + BB`, rows of `out.m` bytes, each written
/// `Σ widths` bytes from its start.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn store<const BB: usize, const V: usize>(
    acc: &[[__m512i; V]; BB],
    k: &[Block; V],
    widths: [usize; V],
    out: &Out,
    first: usize,
) {
    for (b, row) in acc.iter().enumerate() {
        for (v, a) in row.iter().enumerate() {
            let q = requant(*a, &k[v], out.zero_point, out.lo);
            let mask: __mmask16 = if widths[v] >= 16 {
                !0
            } else {
                (1u16 << widths[v]) - 1
            };
            let at = (first + b) * out.m + 16 * v;
            // SAFETY: the mask keeps the store inside the image's row (contract).
            unsafe { _mm512_mask_cvtepi32_storeu_epi8(out.y.add(at).cast(), mask, q) };
        }
    }
}

/// One layer for every image: `y[b·m + c0 + r] = requantize(Σ_i (x[b·n + i]
/// − 128) · w[c0 + r][i] + bias[r]) + 128` for the rows `c0 .. c0 +
/// bias.len()` whose weights `packed` holds ([`pack`]) and whose
/// requantizations `rqs` holds; `x` and `y` are shifted to unsigned.
///
/// # Safety
/// The CPU supports avx512f, avx512bw and avx512vnni; `x.len() = images ·
/// n`, `y.len() = images · m`, `rqs.len() = bias.len()`, `c0 + bias.len()
/// <= m`, `packed.len() = packed_len(bias.len(), n)`, n ≤ 65536, every
/// requantization valid.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn layer(
    x: &[u8],
    n: usize,
    packed: &[u8],
    bias: &[i32],
    rqs: &[Requant],
    zero_point: i32,
    relu: bool,
    y: &mut [u8],
    m: usize,
    c0: usize,
) {
    let groups = n.div_ceil(4);
    let blocks = bias.len().div_ceil(16);
    let zp = _mm512_set1_epi32(zero_point);
    let lo = _mm512_set1_epi32(if relu { zero_point.max(-128) } else { -128 });
    let base = packed.as_ptr();
    let mut blk = 0;
    while blk < blocks {
        let first = blk * 16;
        let width = |v: usize| bias.len().saturating_sub(first + 16 * v).min(16);
        let at = |v: usize| base.wrapping_add((blk + v) * groups * 64);
        let out = Out {
            y: y.as_mut_ptr().wrapping_add(c0 + first),
            m,
            zero_point: zp,
            lo,
        };
        if blk + 1 < blocks {
            // SAFETY: blocks blk and blk + 1 exist, with their rows (contract).
            unsafe {
                let k = [
                    block(&bias[first..], &rqs[first..], at(0), groups),
                    block(&bias[first + 16..], &rqs[first + 16..], at(1), groups),
                ];
                run::<IMAGES, 2>(x, n, [at(0), at(1)], &k, [width(0), width(1)], &out);
            }
            blk += 2;
        } else {
            // SAFETY: block blk exists, with its rows (contract).
            unsafe {
                let k = [block(&bias[first..], &rqs[first..], at(0), groups)];
                run::<{ 2 * IMAGES }, 1>(x, n, [at(0)], &k, [width(0)], &out);
            }
            blk += 1;
        }
    }
}

/// Where [`run`] writes: image b's first row of the blocks at `y + b · m`.
struct Out {
    y: *mut u8,
    m: usize,
    zero_point: __m512i,
    lo: __m512i,
}

/// Every image of `x` through `V` blocks: tiles of `BB` images, then of 4,
/// then one at a time.
///
/// # Safety
/// As [`tile`] for every image of `x`, and `out` has room for them (as
/// [`store`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn run<const BB: usize, const V: usize>(
    x: &[u8],
    n: usize,
    wp: [*const u8; V],
    k: &[Block; V],
    widths: [usize; V],
    out: &Out,
) {
    let images = x.len() / n;
    let xp = x.as_ptr();
    let mut b = 0;
    while b + BB <= images {
        // SAFETY: images b..b + BB exist (contract).
        unsafe {
            let acc = tile::<BB, V>(xp.add(b * n), n, wp);
            store(&acc, k, widths, out, b);
        }
        b += BB;
    }
    while b + 4 <= images {
        // SAFETY: images b..b + 4 exist (contract).
        unsafe {
            let acc = tile::<4, V>(xp.add(b * n), n, wp);
            store(&acc, k, widths, out, b);
        }
        b += 4;
    }
    while b < images {
        // SAFETY: image b exists (contract).
        unsafe {
            let acc = tile::<1, V>(xp.add(b * n), n, wp);
            store(&acc, k, widths, out, b);
        }
        b += 1;
    }
}
