//! NEON on packed weights: a whole layer for a batch of images, as the x86
//! kernels do it ([`crate::quant`]'s packed route), with 4 rows per vector.
//!
//! The layout: the 16 bytes of block `b` and group `g` hold `w[4b + r][4g ..
//! 4g + 4]` for r = 0..4. An image's four input bytes (signed int8, as the
//! reference keeps them: no shift), repeated across the vector, meet the 4
//! rows: with the dot-product extension one `sdot` adds each row's four
//! products into its 32-bit lane; without it `smull` forms the 16-bit
//! products (exact: |x·w| ≤ 2^14) and `sadalp` adds pairs of them into
//! 32-bit lanes, two vectors per block that one pairwise add joins at the
//! end. Every sum is exact, and the requantization is the 64-bit formula of
//! [`Requant::apply_reference`] (`vmull_s32`, a rounding constant, an
//! arithmetic shift by register), so the bits are the reference's.
use core::arch::aarch64::*;

use crate::quant::{input_word, Requant};

/// Images per tile of 4 blocks (16 rows): 16 accumulators with `sdot`.
const IMAGES: usize = 4;

/// Bytes [`pack`] writes for `rows` rows of `n` inputs: whole blocks of 4
/// rows by whole groups of 4 inputs, zero-padded.
pub(crate) fn packed_len(rows: usize, n: usize) -> usize {
    rows.div_ceil(4) * n.div_ceil(4) * 16
}

/// Repacks `rows` rows of `n` int8 weights (row after row) into the layout
/// above; padding is 0.
///
/// # Panics
/// When `w.len() != rows · n` or `out.len() != packed_len(rows, n)`
/// (the caller checks both).
pub(crate) fn pack(w: &[i8], n: usize, rows: usize, out: &mut [u8]) {
    assert!(w.len() == rows * n && out.len() == packed_len(rows, n));
    let groups = n.div_ceil(4);
    out.fill(0);
    for (b, block) in out.chunks_exact_mut(groups * 16).enumerate() {
        for (r, row) in w.chunks_exact(n).skip(4 * b).take(4).enumerate() {
            for (g, four) in row.chunks(4).enumerate() {
                let at = g * 16 + r * 4;
                for (o, &v) in block[at..at + four.len()].iter_mut().zip(four) {
                    *o = v as u8;
                }
            }
        }
    }
}

/// Whether this CPU has the dot-product extension (`sdot`).
fn has_dotprod() -> bool {
    #[cfg(feature = "std")]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "dotprod")
    }
}

/// Four input bytes of an image ([`input_word`]) repeated over a vector.
///
/// # Safety
/// As [`input_word`].
#[target_feature(enable = "neon")]
#[inline]
unsafe fn group(x: *const i8, n: usize, g: usize) -> int8x16_t {
    // SAFETY: forwarded contract.
    let word = unsafe { input_word(x.cast(), n, g) };
    vreinterpretq_s8_u32(vdupq_n_u32(word))
}

/// The per-lane constants of a block of 4 rows.
struct Block {
    bias: int32x4_t,
    mul: int32x4_t,
    round_lo: int64x2_t,
    round_hi: int64x2_t,
    shift_lo: int64x2_t,
    shift_hi: int64x2_t,
}

/// The constants of the first 4 rows of `bias` and `rqs` (missing rows get
/// neutral values).
#[target_feature(enable = "neon")]
fn block(bias: &[i32], rqs: &[Requant]) -> Block {
    let mut b4 = [0i32; 4];
    let mut mul = [0i32; 4];
    let mut round = [0i64; 4];
    let mut shift = [-31i64; 4];
    for (r, (&b, rq)) in bias.iter().zip(rqs).enumerate().take(4) {
        b4[r] = b;
        mul[r] = rq.multiplier;
        let total = 31 + rq.shift; // 31..=62
        round[r] = 1i64 << (total - 1);
        // A negative count shifts right, arithmetically.
        shift[r] = -i64::from(total);
    }
    // SAFETY: every array read holds 4 i32 or 2 + 2 i64.
    unsafe {
        Block {
            bias: vld1q_s32(b4.as_ptr()),
            mul: vld1q_s32(mul.as_ptr()),
            round_lo: vld1q_s64(round.as_ptr()),
            round_hi: vld1q_s64(round.as_ptr().add(2)),
            shift_lo: vld1q_s64(shift.as_ptr()),
            shift_hi: vld1q_s64(shift.as_ptr().add(2)),
        }
    }
}

/// `clamp(round(acc · M) + zero_point, lo, 127)` for 4 rows.
#[target_feature(enable = "neon")]
#[inline]
fn requant(acc: int32x4_t, k: &Block, zero_point: int32x4_t, lo: int32x4_t) -> int32x4_t {
    let total = vaddq_s32(acc, k.bias);
    let p_lo = vmull_s32(vget_low_s32(total), vget_low_s32(k.mul));
    let p_hi = vmull_high_s32(total, k.mul);
    let r_lo = vshlq_s64(vaddq_s64(p_lo, k.round_lo), k.shift_lo);
    let r_hi = vshlq_s64(vaddq_s64(p_hi, k.round_hi), k.shift_hi);
    let v = vcombine_s32(vmovn_s64(r_lo), vmovn_s64(r_hi));
    let v = vaddq_s32(v, zero_point);
    vminq_s32(vmaxq_s32(v, lo), vdupq_n_s32(127))
}

/// `acc + Σ` of each 32-bit lane's four byte products of `w` and `x`: the
/// `sdot` instruction (its intrinsic is not stable Rust yet).
#[target_feature(enable = "neon,dotprod")]
#[inline]
fn sdot(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: sdot reads and writes registers only; the CPU has dotprod
    // (the function's target feature).
    unsafe {
        core::arch::asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {x:v}.16b",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            x = in(vreg) x,
            options(pure, nomem, nostack, preserves_flags)
        )
    };
    acc
}

/// Images `BB` against `V` blocks (`wp`, `groups` cells each), summed with
/// `sdot`: lane r of `acc[b][v]` is image b's row 4v + r.
///
/// # Safety
/// The CPU supports neon and dotprod; `x` holds `BB` images of `n` bytes;
/// each `wp[v]` points at `n.div_ceil(4)` · 16 bytes.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn tile_sdot<const BB: usize, const V: usize>(
    x: *const i8,
    n: usize,
    wp: [*const i8; V],
) -> [[int32x4_t; V]; BB] {
    let mut acc = [[vdupq_n_s32(0); V]; BB];
    for g in 0..n.div_ceil(4) {
        let mut w = [vdupq_n_s8(0); V];
        for (v, wv) in w.iter_mut().enumerate() {
            // SAFETY: g < groups: inside block v (contract).
            *wv = unsafe { vld1q_s8(wp[v].add(g * 16)) };
        }
        for (b, row) in acc.iter_mut().enumerate() {
            // SAFETY: image b exists and 4g < n.
            let xb = unsafe { group(x.add(b * n), n, g) };
            for (a, wv) in row.iter_mut().zip(&w) {
                *a = sdot(*a, *wv, xb);
            }
        }
    }
    acc
}

/// As [`tile_sdot`] on plain NEON: `smull` and `sadalp`, two vectors per
/// block (rows 0-1 and rows 2-3, each lane a pair of one row's products)
/// joined by one pairwise add at the end.
///
/// # Safety
/// As [`tile_sdot`], without the dot-product requirement.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn tile_smull<const BB: usize, const V: usize>(
    x: *const i8,
    n: usize,
    wp: [*const i8; V],
) -> [[int32x4_t; V]; BB] {
    let mut lo = [[vdupq_n_s32(0); V]; BB];
    let mut hi = [[vdupq_n_s32(0); V]; BB];
    for g in 0..n.div_ceil(4) {
        let mut w = [vdupq_n_s8(0); V];
        for (v, wv) in w.iter_mut().enumerate() {
            // SAFETY: g < groups: inside block v (contract).
            *wv = unsafe { vld1q_s8(wp[v].add(g * 16)) };
        }
        for b in 0..BB {
            // SAFETY: image b exists and 4g < n.
            let xb = unsafe { group(x.add(b * n), n, g) };
            for (v, wv) in w.iter().enumerate() {
                lo[b][v] = vpadalq_s16(lo[b][v], vmull_s8(vget_low_s8(*wv), vget_low_s8(xb)));
                hi[b][v] = vpadalq_s16(hi[b][v], vmull_high_s8(*wv, xb));
            }
        }
    }
    let mut acc = [[vdupq_n_s32(0); V]; BB];
    for b in 0..BB {
        for v in 0..V {
            acc[b][v] = vpaddq_s32(lo[b][v], hi[b][v]);
        }
    }
    acc
}

/// Where the requantized rows go: image b's first row of the tile's blocks
/// at `y + b · m`.
struct Out {
    y: *mut i8,
    m: usize,
    zero_point: int32x4_t,
    lo: int32x4_t,
}

/// Requantizes a tile's sums and stores them, `widths[v]` rows of block v.
///
/// # Safety
/// `out.y` has room for images `first .. first + BB`, rows of `out.m`
/// bytes, each written `Σ widths` bytes from its start.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn store<const BB: usize, const V: usize>(
    acc: &[[int32x4_t; V]; BB],
    k: &[Block; V],
    widths: [usize; V],
    out: &Out,
    first: usize,
) {
    for (b, row) in acc.iter().enumerate() {
        for (v, a) in row.iter().enumerate() {
            let q = requant(*a, &k[v], out.zero_point, out.lo);
            let mut lanes = [0i32; 4];
            // SAFETY: lanes holds 4 i32.
            unsafe { vst1q_s32(lanes.as_mut_ptr(), q) };
            let at = (first + b) * out.m + 4 * v;
            for (i, &l) in lanes.iter().enumerate().take(widths[v]) {
                // SAFETY: i < widths[v]: inside the image's row (contract).
                unsafe { *out.y.add(at + i) = l as i8 };
            }
        }
    }
}

/// Every image of `x` through `V` blocks, tiles of `BB` images then one at
/// a time.
///
/// # Safety
/// As the tiles for every image of `x`, and `out` as [`store`].
#[target_feature(enable = "neon")]
unsafe fn run<const BB: usize, const V: usize>(
    x: &[u8],
    n: usize,
    wp: [*const i8; V],
    k: &[Block; V],
    widths: [usize; V],
    out: &Out,
    dot: bool,
) {
    let images = x.len() / n;
    let xp = x.as_ptr().cast::<i8>();
    let mut b = 0;
    while b < images {
        let step = if b + BB <= images { BB } else { 1 };
        // SAFETY: images b..b + step exist (contract); dotprod checked by
        // the caller when `dot`.
        unsafe {
            let p = xp.add(b * n);
            match (step == BB, dot) {
                (true, true) => store(&tile_sdot::<BB, V>(p, n, wp), k, widths, out, b),
                (true, false) => store(&tile_smull::<BB, V>(p, n, wp), k, widths, out, b),
                (false, true) => store(&tile_sdot::<1, V>(p, n, wp), k, widths, out, b),
                (false, false) => store(&tile_smull::<1, V>(p, n, wp), k, widths, out, b),
            }
        }
        b += step;
    }
}

/// One layer for every image: `y[b·m + c0 + r] = requantize(Σ_i x[b·n + i]
/// · w[r][i] + bias[r])` for the rows `c0 .. c0 + bias.len()` whose weights
/// `packed` holds ([`pack`]); activations are plain int8 (held in bytes).
///
/// # Safety
/// The CPU supports neon; `x.len() = images · n`, `y.len() = images · m`,
/// `rqs.len() = bias.len()`, `c0 + bias.len() <= m`, `packed.len() =
/// packed_len(bias.len(), n)`, n ≤ 65536, every requantization valid.
#[target_feature(enable = "neon")]
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
    let blocks = bias.len().div_ceil(4);
    let dot = has_dotprod();
    let base = packed.as_ptr().cast::<i8>();
    let ybase = y.as_mut_ptr().cast::<i8>();
    let out_of = |first: usize| Out {
        y: ybase.wrapping_add(c0 + first),
        m,
        zero_point: vdupq_n_s32(zero_point),
        lo: vdupq_n_s32(if relu { zero_point.max(-128) } else { -128 }),
    };
    let mut blk = 0;
    while blk < blocks {
        let first = blk * 4;
        let at = |v: usize| base.wrapping_add((blk + v) * groups * 16);
        let width = |v: usize| bias.len().saturating_sub(first + 4 * v).min(4);
        let out = out_of(first);
        if blk + 4 <= blocks {
            let k: [Block; 4] =
                core::array::from_fn(|v| block(&bias[first + 4 * v..], &rqs[first + 4 * v..]));
            let (wp, widths) = ([at(0), at(1), at(2), at(3)], [4, 4, 4, width(3)]);
            // SAFETY: blocks blk..blk + 4 exist, with their rows (contract).
            // smull keeps two accumulators per block: half the images per
            // tile keep them in the 32 registers.
            unsafe {
                if dot {
                    run::<IMAGES, 4>(x, n, wp, &k, widths, &out, dot)
                } else {
                    run::<{ IMAGES / 2 }, 4>(x, n, wp, &k, widths, &out, dot)
                }
            };
            blk += 4;
        } else {
            let k = [block(&bias[first..], &rqs[first..])];
            // SAFETY: block blk exists, with its rows (contract).
            unsafe { run::<IMAGES, 1>(x, n, [at(0)], &k, [width(0)], &out, dot) };
            blk += 1;
        }
    }
}
