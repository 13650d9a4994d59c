//! AVX2 on packed weights: a whole layer for a batch of images, as the VNNI
//! kernel does it ([`super::avx512vnni_packed`]) with 8 rows per vector and
//! `vpmaddubsw` + `vpmaddwd` in place of `vpdpbusd`.
//!
//! The layout: lane r of the vector for block `b` and group `g` holds
//! `w[8b + r][4g .. 4g + 4]`. An image's four input bytes, shifted to
//! unsigned and broadcast, meet 8 rows: `vpmaddubsw` forms the two pair sums
//! `u0·w0 + u1·w1` and `u2·w2 + u3·w3` of each row in 16 bits, `vpmaddwd`
//! with ones adds them into the row's 32-bit lane.
//!
//! **Saturation.** `vpmaddubsw` saturates a pair sum to 16 bits. With
//! `u` in 0..=255, a pair of weights of opposite signs stays within
//! `255 · 127`; a pair of one sign reaches `255 · |w0 + w1|`, which fits
//! exactly when `|w0 + w1| <= 128`. [`pack`] finds every pair that could
//! saturate, keeps its first weight in the main vector and moves the second
//! into a residual vector of the same cell (each alone is safe), and lists
//! the cells that have one; the kernel adds those cells in a second pass. A
//! trained layer has few such pairs; a layer of ±127 weights (FAULTS 27) has
//! them everywhere and is exact, at about twice the work.
//!
//! **Pairing.** Which inputs meet as a pair is free: an integer sum does
//! not depend on its order. For each pair of blocks (the 16 rows a tile
//! runs together) and each 16 inputs, [`pack`] finds the pairs that could
//! saturate in any of those rows and swaps partners until none does
//! ([`pairing`]); the weights are stored so permuted, and the tile
//! permutes each image's inputs the same way (one `vpshufb` per 32 bytes)
//! before it broadcasts them. On a
//! seeded 784-128-10 model the residual cells fall from 27% to 0.7%; what
//! no swap fixes still goes to a residual cell, so any weights stay exact.
//!
//! With AVX-VNNI (`vnni`), `vpdpbusd` on 256-bit vectors forms each row's
//! four products and their sum in 32 bits at once: nothing saturates, so
//! [`pack`] splits no pair, and one instruction replaces three.
//!
//! The requantization runs in vectors without AVX-512's 64-bit arithmetic
//! shift: offset by 2^62 the rounded product is non-negative, a logical
//! shift divides it, and the offset's share comes back out.
use core::arch::x86_64::*;

use crate::matmul::x86_64::avx2::transpose8;
use crate::quant::{input_word, Requant};

/// Images per tile: 5 images by 2 blocks are 10 accumulators of the 16 ymm
/// registers, beside the 2 weight vectors, the broadcast input, a product
/// and the ones.
const IMAGES: usize = 5;

/// Cells (blocks by groups) of `rows` rows of `n` inputs.
fn cells(rows: usize, n: usize) -> usize {
    rows.div_ceil(8) * n.div_ceil(4)
}

/// Units sharing one permutation of the inputs: pairs of blocks (the last
/// may be one block).
fn units(rows: usize) -> usize {
    rows.div_ceil(16)
}

/// Bytes of one unit's permutation of the inputs: `n` rounded up to whole
/// 32-byte vectors.
fn stride(n: usize) -> usize {
    n.div_ceil(32) * 32
}

/// Bytes [`pack`] needs for `rows` rows of `n` inputs: the main and the
/// residual vectors, the residual cells' group numbers (u16) and each
/// unit's permutation.
pub(crate) fn packed_len(rows: usize, n: usize) -> usize {
    cells(rows, n) * (32 + 32 + 2) + units(rows) * stride(n)
}

/// Whether the residual tables of a pack of `rows` rows of `n` inputs are
/// in range, as [`pack`] leaves them: each block's count at most its groups
/// and each listed group below them (the kernel reads inputs and cells by
/// them). `packed` holds [`packed_len`] bytes.
pub(crate) fn residuals_in_range(packed: &[u8], rows: usize, n: usize, counts: &[u32]) -> bool {
    let groups = n.div_ceil(4);
    let all = cells(rows, n);
    let Some(idx) = packed.get(all * 64..all * 66) else {
        return false;
    };
    counts.len() == rows.div_ceil(8)
        && counts.iter().enumerate().all(|(b, &count)| {
            let count = count as usize;
            count <= groups
                && idx[2 * b * groups..2 * (b * groups + count)]
                    .chunks_exact(2)
                    .all(|g| usize::from(u16::from_le_bytes([g[0], g[1]])) < groups)
        })
}

/// The order of inputs `32·seg .. 32·seg + 32` (all below `n`) for rows
/// `rows` (at most 16) of `w` (`n` each): the `vpshufb` control whose bytes
/// `2k, 2k + 1` in each 16-byte half name a pair that saturates in none of
/// the rows where that can be had. A pair saturates in a row when `|w_i +
/// w_j| > 128`; with `u = w + 128` that is `avg(u_i, u_j)`, which is
/// `(u_i + u_j + 1) >> 1`, above 192 or below 65 (which also counts a sum
/// of exactly −128: the test only steers the pairing, the pack still
/// splits whatever could saturate).
/// The rows are transposed so that one vector holds an input's 16 rows in
/// each half; starting from the inputs in order, each unsafe pair swaps a
/// partner with another pair of its half when both new pairs are safe.
#[target_feature(enable = "avx2,fma")]
fn pairing(w: &[i8], n: usize, rows: core::ops::Range<usize>, seg: usize) -> [u8; 32] {
    let at = 32 * seg;
    let flip = _mm256_set1_epi8(-128);
    // Absent rows are zero weights: u = 128 pairs safely with anything.
    let mut m = [flip; 16];
    for (v, r) in m.iter_mut().zip(rows) {
        let row = &w[r * n + at..r * n + at + 32];
        // SAFETY: row holds 32 bytes.
        *v = _mm256_xor_si256(unsafe { _mm256_loadu_si256(row.as_ptr().cast()) }, flip);
    }
    // Four rounds of interleaving rows i and i + 8 transpose 16 x 16 bytes
    // in each half: m[i] then holds input i's rows.
    for _ in 0..4 {
        m = core::array::from_fn(|k| {
            let (a, b) = (m[k / 2], m[k / 2 + 8]);
            if k % 2 == 0 {
                _mm256_unpacklo_epi8(a, b)
            } else {
                _mm256_unpackhi_epi8(a, b)
            }
        });
    }
    let (above, below, zero) = (
        _mm256_set1_epi8(192u8 as i8),
        _mm256_set1_epi8(65),
        _mm256_setzero_si256(),
    );
    // Bit 16h + r: inputs i and j of half h may saturate in row r.
    let clash = |i: u8, j: u8| -> u32 {
        let a = _mm256_avg_epu8(m[usize::from(i)], m[usize::from(j)]);
        let over = _mm256_or_si256(_mm256_subs_epu8(a, above), _mm256_subs_epu8(below, a));
        !(_mm256_movemask_epi8(_mm256_cmpeq_epi8(over, zero)) as u32)
    };
    let mut order = [0u8; 32];
    for (h, half) in order.chunks_exact_mut(16).enumerate() {
        let bad = |a: u8, b: u8| (clash(a, b) >> (16 * h)) & 0xffff != 0;
        let mut pairs: [[u8; 2]; 8] = core::array::from_fn(|k| [2 * k as u8, 2 * k as u8 + 1]);
        for k in 0..8 {
            let [a, b] = pairs[k];
            if !bad(a, b) {
                continue;
            }
            for l in (0..8).filter(|&l| l != k) {
                let [c, d] = pairs[l];
                if !bad(a, c) && !bad(b, d) {
                    (pairs[k], pairs[l]) = ([a, c], [b, d]);
                    break;
                }
                if !bad(a, d) && !bad(b, c) {
                    (pairs[k], pairs[l]) = ([a, d], [b, c]);
                    break;
                }
            }
        }
        for (o, p) in half.chunks_exact_mut(2).zip(&pairs) {
            o.copy_from_slice(p);
        }
    }
    order
}

/// Repacks `rows` rows of `n` int8 weights into the layout the kernel reads
/// (module docs): `out` receives the main vectors, then for each block its
/// residual vectors and their groups, packed to the front of the block's
/// share, then each unit's permutation of the inputs ([`pairing`]; none
/// without `split`); `counts[b]` receives block b's number of residual
/// cells (none without `split`, for the AVX-VNNI kernel), and `sums[8b ..
/// 8b + 8]` its rows' weight sums. Each 8 rows by 32 inputs pass through one
/// `vpshufb` (the permutation) and one 8 x 8 transpose of 32-bit words.
///
/// # Safety
/// The CPU supports avx2 and fma; `w.len() = rows · n`, `out.len() =
/// packed_len(rows, n)`, `counts.len() = rows.div_ceil(8)`, `sums.len() =
/// 8 · counts.len()`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn pack(
    w: &[i8],
    n: usize,
    rows: usize,
    out: &mut [u8],
    counts: &mut [u32],
    sums: &mut [i32],
    split: bool,
) {
    debug_assert!(w.len() == rows * n && out.len() == packed_len(rows, n));
    let groups = n.div_ceil(4);
    let all = cells(rows, n);
    let (main, rest) = out.split_at_mut(all * 32);
    let (res, rest) = rest.split_at_mut(all * 32);
    let (idx, orders) = rest.split_at_mut(all * 2);
    let s = stride(n);
    for (u, order) in orders.chunks_exact_mut(s).enumerate() {
        for (seg, o) in order.chunks_exact_mut(32).enumerate() {
            // A partial last 32 bytes keep their order: the kernel reads no
            // further than input n.
            if split && 32 * seg + 32 <= n {
                o.copy_from_slice(&pairing(w, n, 16 * u..(16 * u + 16).min(rows), seg));
            } else {
                for (i, v) in o.iter_mut().enumerate() {
                    *v = i as u8;
                }
            }
        }
    }
    let ones = _mm256_set1_epi8(1);
    let limit = _mm256_set1_epi16(128);
    let high = _mm256_set1_epi16(0xff00u16 as i16);
    let ones16 = _mm256_set1_epi16(1);
    for (b, count) in counts.iter_mut().enumerate() {
        let present = (rows - 8 * b).min(8);
        *count = 0;
        let mut total = _mm256_setzero_si256();
        for g0 in (0..groups).step_by(8) {
            let bytes = (n - 4 * g0).min(32);
            let mut r = [_mm256_setzero_ps(); 8];
            for (i, v) in r.iter_mut().enumerate().take(present) {
                let at = (8 * b + i) * n + 4 * g0;
                *v = if bytes == 32 {
                    // SAFETY: at + 32 <= (8b + i + 1)·n: inside row 8b + i.
                    unsafe { _mm256_loadu_ps(w.as_ptr().add(at).cast()) }
                } else {
                    // The row's last bytes, through a zeroed buffer.
                    let mut buf = [0u8; 32];
                    for (o, &x) in buf.iter_mut().zip(&w[at..at + bytes]) {
                        *o = x as u8;
                    }
                    // SAFETY: buf holds 32 bytes.
                    unsafe { _mm256_loadu_ps(buf.as_ptr().cast()) }
                };
            }
            // SAFETY: 4·g0 + 32 <= s: inside the unit's permutation.
            let order =
                unsafe { _mm256_loadu_si256(orders.as_ptr().add(b / 2 * s + 4 * g0).cast()) };
            for v in r.iter_mut().take(present) {
                let p = _mm256_shuffle_epi8(_mm256_castps_si256(*v), order);
                *v = _mm256_castsi256_ps(p);
            }
            for (j, v) in transpose8(r).iter().enumerate().take((groups - g0).min(8)) {
                let v = _mm256_castps_si256(*v);
                // The pair sums w0 + w1 (exact: 1·w fits 16 bits); a pair
                // with |w0 + w1| > 128 could saturate.
                let pairs = _mm256_maddubs_epi16(ones, v);
                total = _mm256_add_epi32(total, _mm256_madd_epi16(pairs, ones16));
                let over = _mm256_cmpgt_epi16(_mm256_abs_epi16(pairs), limit);
                let risky = if split {
                    _mm256_and_si256(over, high)
                } else {
                    _mm256_setzero_si256()
                };
                let cell = b * groups + g0 + j;
                // SAFETY: cell < all: inside main (32 bytes each).
                unsafe {
                    let keep = _mm256_andnot_si256(risky, v);
                    _mm256_storeu_si256(main.as_mut_ptr().add(cell * 32).cast(), keep);
                }
                if _mm256_testz_si256(risky, risky) == 0 {
                    let slot = b * groups + *count as usize;
                    // SAFETY: slot < (b + 1) · groups <= all: inside res.
                    unsafe {
                        let moved = _mm256_and_si256(risky, v);
                        _mm256_storeu_si256(res.as_mut_ptr().add(slot * 32).cast(), moved);
                    }
                    idx[2 * slot..2 * slot + 2].copy_from_slice(&((g0 + j) as u16).to_le_bytes());
                    *count += 1;
                }
            }
        }
        // SAFETY: sums holds 8 entries per block (contract).
        unsafe { _mm256_storeu_si256(sums.as_mut_ptr().add(8 * b).cast(), total) };
    }
}

/// The per-lane constants of one block of 8 rows: the bias with the
/// unsigned shift's correction, and the requantization in 64-bit lanes
/// (even and odd rows apart).
struct Block {
    bias: __m256i,
    mul: __m256i,
    add_even: __m256i,
    add_odd: __m256i,
    shift_even: __m256i,
    shift_odd: __m256i,
    back_even: __m256i,
    back_odd: __m256i,
}

/// The constants of the rows with biases `bias`, requantizations `rqs` and
/// weight sums `sums`, the first 8 of them; missing rows get neutral values.
#[target_feature(enable = "avx2,fma")]
fn block(bias: &[i32], rqs: &[Requant], sums: &[i32]) -> Block {
    let mut b8 = [0i32; 8];
    let mut mul = [0i32; 8];
    let mut add = [0i64; 8];
    let mut shift = [62i64; 8];
    let mut back = [0i64; 8];
    for (r, ((&b, rq), &sum)) in bias.iter().zip(rqs).zip(sums).enumerate().take(8) {
        // Σ (u − 128)·w = Σ u·w − 128·Σ w: the shift folded into the bias.
        b8[r] = b.wrapping_sub(sum.wrapping_mul(128));
        mul[r] = rq.multiplier;
        let total = 31 + rq.shift; // 31..=62
        add[r] = (1i64 << (total - 1)) + (1i64 << 62);
        shift[r] = i64::from(total);
        back[r] = 1i64 << (62 - total);
    }
    let even = |v: &[i64; 8]| -> [i64; 4] { core::array::from_fn(|j| v[2 * j]) };
    let odd = |v: &[i64; 8]| -> [i64; 4] { core::array::from_fn(|j| v[2 * j + 1]) };
    // SAFETY: every array read holds 8 i32 or 4 i64.
    unsafe {
        let load = |v: [i64; 4]| _mm256_loadu_si256(v.as_ptr().cast());
        Block {
            bias: _mm256_loadu_si256(b8.as_ptr().cast()),
            mul: _mm256_loadu_si256(mul.as_ptr().cast()),
            add_even: load(even(&add)),
            add_odd: load(odd(&add)),
            shift_even: load(even(&shift)),
            shift_odd: load(odd(&shift)),
            back_even: load(even(&back)),
            back_odd: load(odd(&back)),
        }
    }
}

/// `clamp(round(acc · M) + zero_point, lo, 127) + 128` for 8 rows: the
/// 64-bit formula of [`Requant::apply_reference`], `(p + 2^(t−1)) >> t`
/// with t = 31 + shift, computed as `((p + 2^(t−1) + 2^62) >>> t) −
/// 2^(62−t)`: the sum is below 2^63 and non-negative, so the logical shift
/// is the floor, and 2^62 / 2^t is whole.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn requant(acc: __m256i, k: &Block, zero_point: __m256i, lo: __m256i) -> __m256i {
    let total = _mm256_add_epi32(acc, k.bias);
    let even = _mm256_mul_epi32(total, k.mul);
    let odd = _mm256_mul_epi32(
        _mm256_srli_epi64::<32>(total),
        _mm256_srli_epi64::<32>(k.mul),
    );
    let even = _mm256_srlv_epi64(_mm256_add_epi64(even, k.add_even), k.shift_even);
    let odd = _mm256_srlv_epi64(_mm256_add_epi64(odd, k.add_odd), k.shift_odd);
    let even = _mm256_sub_epi64(even, k.back_even);
    let odd = _mm256_sub_epi64(odd, k.back_odd);
    let v = _mm256_blend_epi32::<0xAA>(even, _mm256_slli_epi64::<32>(odd));
    let v = _mm256_add_epi32(v, zero_point);
    let v = _mm256_min_epi32(_mm256_max_epi32(v, lo), _mm256_set1_epi32(127));
    _mm256_add_epi32(v, _mm256_set1_epi32(128))
}

/// `acc + Σ` of one cell: the broadcast input `x` against the vector `w`.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn dot(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
    let pairs = _mm256_maddubs_epi16(x, w);
    _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// Where a block's packed data lies: main vectors, residual vectors, their
/// groups and how many.
#[derive(Clone, Copy)]
struct Cells {
    main: *const u8,
    res: *const u8,
    idx: *const u8,
    count: usize,
}

/// Word `g` (inputs `4g .. 4g + 4`) of image `x` in the unit's order: for
/// the groups of a whole 32-byte segment, permuted by `order`; past them,
/// in input order.
///
/// # Safety
/// The CPU supports avx2 and fma; `x` holds `n` bytes, `order` the unit's
/// `stride(n)` bytes, 4g < n.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn word(x: *const u8, n: usize, order: *const u8, g: usize) -> u32 {
    let seg = g / 8;
    if 32 * seg + 32 > n {
        // SAFETY: 4g < n (contract).
        return unsafe { input_word(x, n, g) };
    }
    let mut words = [0u32; 8];
    // SAFETY: 32·seg + 32 <= n: inside the image and the order.
    unsafe {
        let v = _mm256_loadu_si256(x.add(32 * seg).cast());
        let o = _mm256_loadu_si256(order.add(32 * seg).cast());
        _mm256_storeu_si256(words.as_mut_ptr().cast(), _mm256_shuffle_epi8(v, o));
    }
    words[g % 8]
}

/// Images `BB` (from `x`, `n` bytes apart) against `V` blocks: the raw sums,
/// lane r of `acc[b][v]` for image b and row 8v + r. Each whole 32 bytes of
/// an image are permuted by `order` (one `vpshufb`) into a stack buffer, from
/// which its 8 groups are broadcast.
///
/// # Safety
/// The CPU supports avx2 and fma; `x` holds `BB` images of `n` bytes;
/// `order` the unit's `stride(n)` bytes; each block's pointers cover
/// `n.div_ceil(4)` main cells and `count` residual cells and groups.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile<const BB: usize, const V: usize>(
    x: *const u8,
    n: usize,
    order: *const u8,
    c: [Cells; V],
) -> [[__m256i; V]; BB] {
    let mut acc = [[_mm256_setzero_si256(); V]; BB];
    let mut words = [[0u32; 8]; BB];
    for seg in 0..n / 32 {
        // SAFETY: 32·seg + 32 <= n: inside every image and the order.
        unsafe {
            let o = _mm256_loadu_si256(order.add(32 * seg).cast());
            for (b, word) in words.iter_mut().enumerate() {
                let v = _mm256_loadu_si256(x.add(b * n + 32 * seg).cast());
                _mm256_storeu_si256(word.as_mut_ptr().cast(), _mm256_shuffle_epi8(v, o));
            }
        }
        for k in 0..8 {
            let g = 8 * seg + k;
            // SAFETY: g < groups: inside every block (contract).
            let w: [__m256i; V] = core::array::from_fn(|v| unsafe {
                _mm256_loadu_si256(c[v].main.add(g * 32).cast())
            });
            for (row, word) in acc.iter_mut().zip(&words) {
                let xb = _mm256_set1_epi32(word[k] as i32);
                for (a, wv) in row.iter_mut().zip(&w) {
                    *a = dot(*a, xb, *wv);
                }
            }
        }
    }
    // The groups past the last whole 32 bytes keep their order.
    for g in 8 * (n / 32)..n.div_ceil(4) {
        // SAFETY: g < groups: inside every block (contract).
        let w: [__m256i; V] =
            core::array::from_fn(|v| unsafe { _mm256_loadu_si256(c[v].main.add(g * 32).cast()) });
        for (b, row) in acc.iter_mut().enumerate() {
            // SAFETY: image b exists; input_word() stops at n.
            let xb = _mm256_set1_epi32(unsafe { input_word(x.add(b * n), n, g) } as i32);
            for (a, wv) in row.iter_mut().zip(&w) {
                *a = dot(*a, xb, *wv);
            }
        }
    }
    for (v, cv) in c.iter().enumerate() {
        for j in 0..cv.count {
            // SAFETY: j < count: a listed residual cell and its group.
            let (w, g) = unsafe {
                let g = u16::from_le_bytes([*cv.idx.add(2 * j), *cv.idx.add(2 * j + 1)]);
                (
                    _mm256_loadu_si256(cv.res.add(j * 32).cast()),
                    usize::from(g),
                )
            };
            for (b, row) in acc.iter_mut().enumerate() {
                // SAFETY: image b exists; g < groups.
                let xb = _mm256_set1_epi32(unsafe { word(x.add(b * n), n, order, g) } as i32);
                row[v] = dot(row[v], xb, w);
            }
        }
    }
    acc
}

/// As [`tile`] with AVX-VNNI: one `vpdpbusd` per cell and image, and no
/// residual cells (the pack split none).
///
/// # Safety
/// As [`tile`], and the CPU supports avxvnni.
#[target_feature(enable = "avx2,fma,avxvnni")]
#[inline]
unsafe fn tile_vnni<const BB: usize, const V: usize>(
    x: *const u8,
    n: usize,
    c: [Cells; V],
) -> [[__m256i; V]; BB] {
    let mut acc = [[_mm256_setzero_si256(); V]; BB];
    for g in 0..n.div_ceil(4) {
        let mut w = [_mm256_setzero_si256(); V];
        for (v, wv) in w.iter_mut().enumerate() {
            // SAFETY: g < groups: inside every block (contract).
            *wv = unsafe { _mm256_loadu_si256(c[v].main.add(g * 32).cast()) };
        }
        for (b, row) in acc.iter_mut().enumerate() {
            // SAFETY: image b exists and 4g < n.
            let xb = _mm256_set1_epi32(unsafe { input_word(x.add(b * n), n, g) } as i32);
            for (a, wv) in row.iter_mut().zip(&w) {
                *a = _mm256_dpbusd_avx_epi32(*a, xb, *wv);
            }
        }
    }
    acc
}

/// Where [`run`] writes: image b's first row of the blocks at `y + b · m`.
struct Out {
    y: *mut u8,
    m: usize,
    zero_point: __m256i,
    lo: __m256i,
}

/// Requantizes a tile's sums and stores them: image `first + b`'s rows
/// `8v..` go to `out.y + (first + b) · out.m`, as many as `widths[v]` says.
///
/// # Safety
/// The CPU supports avx2 and fma; `out.y` has room for images `first ..
/// first + BB`, rows of `out.m` bytes, each written `Σ widths` bytes from
/// its start.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store<const BB: usize, const V: usize>(
    acc: &[[__m256i; V]; BB],
    k: &[Block; V],
    widths: [usize; V],
    out: &Out,
    first: usize,
) {
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (b, row) in acc.iter().enumerate() {
        for (v, a) in row.iter().enumerate() {
            let q = requant(*a, &k[v], out.zero_point, out.lo);
            // 8 values in 0..=255 to 8 bytes: narrow twice within each
            // 128-bit half, then bring the halves' first words together.
            let q = _mm256_packus_epi16(_mm256_packus_epi32(q, q), _mm256_setzero_si256());
            let q = _mm256_permutevar8x32_epi32(q, order);
            let bytes = _mm_cvtsi128_si64(_mm256_castsi256_si128(q)).to_le_bytes();
            let at = (first + b) * out.m + 8 * v;
            for (i, &byte) in bytes.iter().enumerate().take(widths[v]) {
                // SAFETY: i < widths[v]: inside the image's row (contract).
                unsafe { *out.y.add(at + i) = byte };
            }
        }
    }
}

/// Every image of `x` through `V` blocks: tiles of `BB` images, then one at
/// a time; with `vnni`, the AVX-VNNI tiles.
///
/// # Safety
/// As [`tile`] for every image of `x` (and the CPU supports avxvnni when
/// `vnni`), and `out` has room for them (as [`store`]).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn run<const BB: usize, const V: usize>(
    x: &[u8],
    n: usize,
    order: *const u8,
    c: [Cells; V],
    k: &[Block; V],
    widths: [usize; V],
    out: &Out,
    vnni: bool,
) {
    let images = x.len() / n;
    let xp = x.as_ptr();
    let mut b = 0;
    while b < images {
        let step = if b + BB <= images { BB } else { 1 };
        // SAFETY: images b..b + step exist (contract); avxvnni confirmed
        // by the caller when `vnni`.
        unsafe {
            let p = xp.add(b * n);
            match (step == BB, vnni) {
                (true, false) => store(&tile::<BB, V>(p, n, order, c), k, widths, out, b),
                (true, true) => store(&tile_vnni::<BB, V>(p, n, c), k, widths, out, b),
                (false, false) => store(&tile::<1, V>(p, n, order, c), k, widths, out, b),
                (false, true) => store(&tile_vnni::<1, V>(p, n, c), k, widths, out, b),
            }
        }
        b += step;
    }
}

/// One layer for every image, as [`super::avx512vnni_packed::layer`]:
/// `packed`, `counts` and `sums` from [`pack`].
///
/// # Safety
/// The CPU supports avx2 and fma; `x.len() = images · n`, `y.len() = images
/// · m`, `rqs.len() = bias.len()`, `c0 + bias.len() <= m`, `packed`,
/// `counts` and `sums` as [`pack`] left them (with `split` unless `vnni`),
/// n ≤ 65536, every requantization valid, and the CPU supports avxvnni
/// when `vnni`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn layer(
    x: &[u8],
    n: usize,
    packed: &[u8],
    counts: &[u32],
    sums: &[i32],
    bias: &[i32],
    rqs: &[Requant],
    zero_point: i32,
    relu: bool,
    y: &mut [u8],
    m: usize,
    c0: usize,
    vnni: bool,
) {
    let groups = n.div_ceil(4);
    let blocks = bias.len().div_ceil(8);
    let all = cells(bias.len(), n);
    let zp = _mm256_set1_epi32(zero_point);
    let lo = _mm256_set1_epi32(if relu { zero_point.max(-128) } else { -128 });
    let base = packed.as_ptr();
    let cells_of = |blk: usize| Cells {
        main: base.wrapping_add(blk * groups * 32),
        res: base.wrapping_add((all + blk * groups) * 32),
        idx: base.wrapping_add(all * 64 + blk * groups * 2),
        count: counts[blk] as usize,
    };
    for unit in 0..blocks.div_ceil(2) {
        let (blk, first) = (2 * unit, 16 * unit);
        let width = |v: usize| bias.len().saturating_sub(first + 8 * v).min(8);
        let out = Out {
            y: y.as_mut_ptr().wrapping_add(c0 + first),
            m,
            zero_point: zp,
            lo,
        };
        let order = base.wrapping_add(all * 66 + unit * stride(n));
        if blk + 1 < blocks {
            let c = [cells_of(blk), cells_of(blk + 1)];
            let (r0, r1) = (first, first + 8);
            let k = [
                block(&bias[r0..], &rqs[r0..], &sums[r0..]),
                block(&bias[r1..], &rqs[r1..], &sums[r1..]),
            ];
            let w = [width(0), width(1)];
            // SAFETY: blocks blk and blk + 1 exist, with their rows and
            // the unit's order (contract).
            unsafe { run::<IMAGES, 2>(x, n, order, c, &k, w, &out, vnni) };
        } else {
            let k = [block(&bias[first..], &rqs[first..], &sums[first..])];
            let c = [cells_of(blk)];
            // SAFETY: block blk exists, with its rows and the unit's order
            // (contract).
            unsafe { run::<{ 2 * IMAGES }, 1>(x, n, order, c, &k, [width(0)], &out, vnni) };
        }
    }
}
