//! The vector bodies of the sparse-input products (`sparse.rs`), written once
//! and instantiated per ISA by `sparse_body!` next to `gemm_body!`, from the
//! same helpers plus `nonzero_mask` (bit l set when lane l of the L floats at
//! a pointer is not ±0.0; NaN counts as nonzero, so it propagates).
//!
//! Nothing here branches on the data: a row's nonzeros are first packed into
//! a list of column indices (one mask per vector, its set lanes written
//! through a table, the count advanced by the mask's popcount), and the
//! products then walk that list, a loop whose length the CPU predicts. A
//! branch per nonzero would mispredict about once per vector of a row.

/// Columns of X whose row lists are gathered at once (the gradient product).
pub(crate) const PB: usize = 64;
/// Most rows of X in one gathering.
pub(crate) const RB: usize = 128;

/// `PACK[m]`: the positions of the set bits of the byte m, in increasing
/// order, padded with zeros.
pub(crate) const PACK: [[u32; 8]; 256] = {
    let mut t = [[0u32; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut c, mut b) = (0, 0);
        while b < 8 {
            if m & (1 << b) != 0 {
                t[m][c] = b as u32;
                c += 1;
            }
            b += 1;
        }
        m += 1;
    }
    t
};

/// `POPS[m]`: the number of set bits of the byte m (the `popcnt`
/// instruction is not among the features the vector paths require).
pub(crate) const POPS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut m = 0;
    while m < 256 {
        t[m] = (m as u32).count_ones() as u8;
        m += 1;
    }
    t
};

/// Transposes the 8 x 8 bit matrix whose row i is byte i of `x` (bit j of
/// byte i is element (i, j)): byte j of the result holds column j, bit i
/// row i. Three swap steps (Hacker's Delight, "transpose8").
pub(crate) fn transpose8(mut x: u64) -> u64 {
    let t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    let t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    let t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^= t ^ (t << 28);
    x
}

/// For each of PB columns of X: the rows (of a segment of at most RB)
/// holding a nonzero, and those nonzeros, with 8 entries of room past the
/// end for the table-driven appends.
pub(crate) struct ColumnLists {
    pub(crate) count: [usize; PB],
    pub(crate) lists: [[u32; RB + 8]; PB],
    pub(crate) vals: [[f32; RB + 8]; PB],
}

macro_rules! sparse_body {
    ($feat:literal, $V:ty, lanes = $L:expr $(, compress = $cp:ident, transpose = $tr:ident)?) => {
        use crate::matmul::sparse::FPB;
        use crate::matmul::sparse_body::{ColumnLists, PACK, PB, POPS, RB};

        /// Whether the ISA supplies `compress` and `transpose` (in the macro
        /// call): `compress(p, byte, out)` writes the floats at `p` whose
        /// lanes are set in `byte`, in order, to `out` (8 floats written);
        /// `transpose` is the 8 x 8 transpose of 8 vectors of 8 lanes.
        const COMPRESS: bool = false $( || !stringify!($cp).is_empty() )?;

        /// Writes the indices `base + p` of the nonzeros among the `k` floats
        /// at `row` to `out`, in increasing order, and the nonzeros
        /// themselves to `vals`; returns how many. With the ISA's `compress`
        /// the values move eight at a time by a register permutation; else
        /// they are gathered one by one through the indices.
        ///
        /// # Safety
        /// k floats at `row`; `out` and `vals` have room for k + 8 entries.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn pack_nonzeros(
            row: *const f32,
            k: usize,
            base: u32,
            out: &mut [u32],
            vals: &mut [f32],
        ) -> usize {
            debug_assert!(out.len() >= k + 8 && vals.len() >= k + 8);
            let mut c = 0;
            let mut p = 0;
            while p + $L <= k {
                // SAFETY: p + L <= k floats are readable (contract).
                let mask = unsafe { nonzero_mask(row.add(p)) };
                let mut bits = mask;
                let mut q = 0;
                while q < $L {
                    let byte = (bits & 0xff) as usize;
                    let at = &mut out[c..c + 8];
                    let off = base + (p + q) as u32;
                    for (o, l) in at.iter_mut().zip(&PACK[byte]) {
                        *o = off + l;
                    }
                    $(
                    // SAFETY: the 8 floats at p + q lie in the row (q < L,
                    // p + L <= k) and vals has room for c + 8 (contract).
                    unsafe { $cp(row.add(p + q), byte, vals[c..c + 8].as_mut_ptr()) };
                    )?
                    c += POPS[byte] as usize;
                    bits >>= 8;
                    q += 8;
                }
                p += $L;
            }
            if !COMPRESS {
                for (v, &i) in vals[..c].iter_mut().zip(&out[..c]) {
                    // SAFETY: i - base < p <= k: inside the row.
                    *v = unsafe { *row.add((i - base) as usize) };
                }
            }
            while p < k {
                out[c] = base + p as u32;
                // SAFETY: p < k.
                vals[c] = unsafe { *row.add(p) };
                c += usize::from(vals[c] != 0.0);
                p += 1;
            }
            c
        }

        /// `out[0..NV·L] (=|+=) Σ_j s[j] · v[idx_j · vs + 0..NV·L]`: one FMA
        /// chain per element over the list, in its order (`s` holds the
        /// scalar of each entry of `idx`, read in sequence).
        ///
        /// # Safety
        /// `s` is as long as `idx`; for every index i in `idx`, NV·L floats
        /// at `v + i·vs` are readable; NV·L floats at `out` are writable.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn chain<const NV: usize>(
            idx: &[u32],
            s: &[f32],
            v: *const f32,
            vs: usize,
            out: *mut f32,
            add_to: bool,
        ) {
            let mut acc = [zero(); NV];
            for (&i, &x) in idx.iter().zip(s) {
                let i = i as usize;
                let sv = splat(x);
                // SAFETY: contract.
                let vp = unsafe { v.add(i * vs) };
                for (q, a) in acc.iter_mut().enumerate() {
                    // SAFETY: q < NV (contract).
                    *a = fma(sv, unsafe { load(vp.add(q * $L)) }, *a);
                }
            }
            for (q, a) in acc.iter().enumerate() {
                // SAFETY: q < NV (contract).
                let o = unsafe { out.add(q * $L) };
                let r = if add_to {
                    // SAFETY: as o.
                    add(unsafe { load(o) }, *a)
                } else {
                    *a
                };
                // SAFETY: as o.
                unsafe { store(o, r) };
            }
        }

        /// [`chain`] over all `n` columns: tiles of 8 vectors, the rest in
        /// one narrower tile, the last n % L columns one by one.
        ///
        /// # Safety
        /// As [`chain`] with n floats in place of NV·L.
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn chain_row(
            idx: &[u32],
            s: &[f32],
            v: *const f32,
            vs: usize,
            out: *mut f32,
            n: usize,
            add_to: bool,
        ) {
            let mut j = 0;
            // SAFETY: every call's columns j.. end by n (contract).
            unsafe {
                while j + 8 * $L <= n {
                    chain::<8>(idx, s, v.add(j), vs, out.add(j), add_to);
                    j += 8 * $L;
                }
                let (vj, oj) = (v.add(j), out.add(j));
                match (n - j) / $L {
                    7 => chain::<7>(idx, s, vj, vs, oj, add_to),
                    6 => chain::<6>(idx, s, vj, vs, oj, add_to),
                    5 => chain::<5>(idx, s, vj, vs, oj, add_to),
                    4 => chain::<4>(idx, s, vj, vs, oj, add_to),
                    3 => chain::<3>(idx, s, vj, vs, oj, add_to),
                    2 => chain::<2>(idx, s, vj, vs, oj, add_to),
                    1 => chain::<1>(idx, s, vj, vs, oj, add_to),
                    _ => {}
                }
            }
            j += (n - j) / $L * $L;
            while j < n {
                let mut sum = 0.0f32;
                for (&i, &x) in idx.iter().zip(s) {
                    let i = i as usize;
                    // SAFETY: contract.
                    sum += x * unsafe { *v.add(i * vs + j) };
                }
                // SAFETY: j < n (contract).
                let o = unsafe { &mut *out.add(j) };
                *o = if add_to { *o + sum } else { sum };
                j += 1;
            }
        }

        /// Bit p of the result: whether element p of the `span` (≤ 64)
        /// floats at `row` is nonzero.
        ///
        /// # Safety
        /// span floats at `row`.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn row_mask(row: *const f32, span: usize) -> u64 {
            let mut m = 0u64;
            let mut p = 0;
            while p + $L <= span {
                // SAFETY: p + L <= span (contract).
                m |= u64::from(unsafe { nonzero_mask(row.add(p)) }) << p;
                p += $L;
            }
            while p < span {
                // SAFETY: p < span.
                m |= u64::from(unsafe { *row.add(p) } != 0.0) << p;
                p += 1;
            }
            m
        }

        /// For the `span` (≤ PB) columns of X from `c0` and its rows
        /// `r0..r0 + seg` (seg ≤ RB): `lists[q][..count[q]]` are the rows with
        /// a nonzero in column c0 + q, in increasing order, and
        /// `vals[q][..count[q]]` those nonzeros (read in sequence by the
        /// products, not down a column of X).
        ///
        /// Without a branch or a dependent store per nonzero: eight rows at a
        /// time, their nonzero masks form an 8 x 8 bit matrix per 8 columns,
        /// transposed in a register, and each column's byte appends its rows
        /// through the same table as `pack_nonzeros`; the values are then
        /// gathered through the lists. With the ISA's `transpose` and
        /// `compress`, a full 8 x 8 block of floats is transposed instead,
        /// and each column vector gives its byte and, by one permutation,
        /// its values.
        ///
        /// # Safety
        /// X (row stride k) holds rows r0..r0 + seg and columns c0..c0 + span.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn column_lists(
            x: &[f32],
            k: usize,
            c0: usize,
            span: usize,
            r0: usize,
            seg: usize,
            l: &mut ColumnLists,
        ) {
            debug_assert!(span <= PB && seg <= RB);
            let ColumnLists { count, lists, vals } = l;
            count.fill(0);
            // Entries of each column whose value is already written.
            #[allow(unused_mut)]
            let mut done = [0usize; PB];
            let mut g = r0;
            while g < r0 + seg {
                let rows = (r0 + seg - g).min(8);
                // Columns 0..8·fast went through the float transpose.
                #[allow(unused_mut)]
                let mut fast = 0;
                $(
                if rows == 8 && $L == 8 {
                    fast = span / 8;
                    for b in 0..fast {
                        let mut rv = [zero(); 8];
                        for (i, v) in rv.iter_mut().enumerate() {
                            // SAFETY: row g + i < r0 + seg, columns
                            // c0 + 8b .. + 8 <= c0 + span: inside X.
                            *v = unsafe { load(x.as_ptr().add((g + i) * k + c0 + 8 * b)) };
                        }
                        let mut cols = [0.0f32; 64];
                        for (j, v) in $tr(rv).iter().enumerate() {
                            // SAFETY: 8j + 8 <= 64.
                            unsafe { store(cols.as_mut_ptr().add(8 * j), *v) };
                        }
                        for (j, col) in cols.chunks_exact(8).enumerate() {
                            let q = 8 * b + j;
                            // SAFETY: col holds 8 floats.
                            let byte = unsafe { nonzero_mask(col.as_ptr()) } as usize;
                            let c = count[q];
                            for (o, l) in lists[q][c..c + 8].iter_mut().zip(&PACK[byte]) {
                                *o = g as u32 + l;
                            }
                            // SAFETY: col holds 8 floats; vals[q] has room
                            // for c + 8 (c < RB).
                            unsafe { $cp(col.as_ptr(), byte, vals[q][c..c + 8].as_mut_ptr()) };
                            count[q] = c + POPS[byte] as usize;
                            if done[q] == c {
                                done[q] = count[q];
                            }
                        }
                    }
                }
                )?
                let skip = 8 * fast;
                if skip < span {
                    let mut masks = [0u64; 8];
                    for (i, m) in masks.iter_mut().take(rows).enumerate() {
                        // SAFETY: row g + i < r0 + seg, columns c0 + skip ..
                        // c0 + span: inside X.
                        *m = unsafe {
                            row_mask(x.as_ptr().add((g + i) * k + c0 + skip), span - skip)
                        };
                    }
                    for b in 0..(span - skip).div_ceil(8) {
                        let mut t = 0u64;
                        for (i, m) in masks.iter().enumerate() {
                            t |= ((m >> (8 * b)) & 0xff) << (8 * i);
                        }
                        let t = crate::matmul::sparse_body::transpose8(t);
                        for j in 0..8.min(span - skip - 8 * b) {
                            let q = skip + 8 * b + j;
                            let byte = ((t >> (8 * j)) & 0xff) as usize;
                            let c = count[q];
                            for (o, l) in lists[q][c..c + 8].iter_mut().zip(&PACK[byte]) {
                                *o = g as u32 + l;
                            }
                            count[q] = c + POPS[byte] as usize;
                        }
                    }
                }
                g += 8;
            }
            for q in 0..span {
                let (from, n) = (done[q], count[q]);
                for (v, &r) in vals[q][from..n].iter_mut().zip(&lists[q][from..n]) {
                    *v = x[r as usize * k + c0 + q];
                }
            }
        }

        /// `Y (+)= X·W` over rows `0..m` with zeros of X skipped: X m x k, W
        /// k x n, Y m x n, all tightly packed; only the columns `p` of X (rows
        /// of W) are summed.
        ///
        /// Blocks of FPB columns of X from p.start (FPB rows of W, which the block's rows
        /// of X share while they stay in cache):
        /// for each row, its nonzeros in the block are one FMA chain per
        /// element of Y, added to Y block by block in increasing p (the
        /// first block's sums stored unless `accumulate`).
        ///
        /// # Safety
        /// The CPU supports the features above; x, w and y hold at least
        /// m·k, k·n and m·n floats; p lies within 0..k (empty only when k = 0).
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn spmm(
            x: &[f32],
            w: &[f32],
            y: &mut [f32],
            m: usize,
            k: usize,
            n: usize,
            p: core::ops::Range<usize>,
            accumulate: bool,
        ) {
            debug_assert!(x.len() >= m * k && w.len() >= k * n && y.len() >= m * n);
            debug_assert!(p.start <= p.end && p.end <= k);
            let mut idx = [0u32; FPB + 8];
            let mut vals = [0.0f32; FPB + 8];
            let mut c0 = p.start;
            loop {
                let span = (p.end - c0).min(FPB);
                for r in 0..m {
                    let row = &x[r * k + c0..r * k + c0 + span];
                    // SAFETY: the row slice holds span floats; idx and vals
                    // have room for FPB + 8 >= span + 8 entries.
                    let c = unsafe {
                        pack_nonzeros(row.as_ptr(), span, c0 as u32, &mut idx, &mut vals)
                    };
                    // SAFETY: the indices are columns < k: W's rows and Y's
                    // row r hold what chain_row touches.
                    unsafe {
                        chain_row(
                            &idx[..c],
                            &vals[..c],
                            w.as_ptr(),
                            n,
                            y.as_mut_ptr().add(r * n),
                            n,
                            accumulate || c0 > p.start,
                        )
                    };
                }
                c0 += span;
                if c0 >= p.end {
                    break;
                }
            }
        }

        /// `dW = Xᵀ·dY` for the rows `p_lo..p_lo + rows` of dW (the columns of X
        /// with those indices), zeros of X skipped: X b x k, dY b x n, and
        /// `dw` is dW's rows p_lo.. (rows x n).
        ///
        /// Each element is one sum over the batch in increasing row order
        /// (continued across segments of RB rows), whatever `p_lo` and `rows`
        /// are, so a split over threads changes no bit.
        ///
        /// # Safety
        /// The CPU supports the features above; x and dy hold b·k and b·n
        /// floats, p_lo + rows <= k, and dw holds rows·n floats.
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn spmm_at(
            x: &[f32],
            dy: &[f32],
            dw: &mut [f32],
            b: usize,
            k: usize,
            n: usize,
            p_lo: usize,
            rows: usize,
        ) {
            debug_assert!(x.len() >= b * k && dy.len() >= b * n && dw.len() >= rows * n);
            debug_assert!(p_lo + rows <= k);
            let mut lists = ColumnLists {
                count: [0; PB],
                lists: [[0; RB + 8]; PB],
                vals: [[0.0; RB + 8]; PB],
            };
            let mut q0 = 0;
            while q0 < rows {
                let span = (rows - q0).min(PB);
                let mut r0 = 0;
                loop {
                    let seg = (b - r0).min(RB);
                    // SAFETY: rows r0..r0 + seg <= b; columns p_lo + q0 .. + span <= k.
                    unsafe {
                        column_lists(x, k, p_lo + q0, span, r0, seg, &mut lists)
                    };
                    for q in 0..span {
                        let c = lists.count[q];
                        // SAFETY: list entries are batch rows (< b); column
                        // p_lo + q0 + q < k; row q0 + q of dw is in bounds.
                        unsafe {
                            chain_row(
                                &lists.lists[q][..c],
                                &lists.vals[q][..c],
                                dy.as_ptr(),
                                n,
                                dw.as_mut_ptr().add((q0 + q) * n),
                                n,
                                r0 > 0,
                            )
                        };
                    }
                    r0 += seg;
                    if r0 >= b {
                        break;
                    }
                }
                q0 += span;
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn transpose8_swaps_rows_and_columns() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..1000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let t = super::transpose8(s);
            for i in 0..8 {
                for j in 0..8 {
                    assert_eq!((s >> (8 * i + j)) & 1, (t >> (8 * j + i)) & 1);
                }
            }
        }
    }
}
