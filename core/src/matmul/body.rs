//! The one micro-kernel body every vector path shares, written once and
//! instantiated per ISA by `gemm_body!` inside a `#[target_feature]` context,
//! so each ISA file only supplies its vector type and nine short helpers
//! (`zero`, `splat`, `load`, `store`, `load_part`, `store_part`, `fma`,
//! `add`, `hsum`).
//!
//! Loop nest (BLIS order, `blocked`): for each KC-deep block of k, for each
//! block of rows of A (MC x KC, packed, 96-192 KiB of stack, when A is stored
//! transposed, deep and met by many panels of B; else all m rows, read in
//! place), for each NR-wide panel of columns pack B's KC x NR panel (L1;
//! read in place instead for products of few rows; a row-major B's next
//! panel is packed by the first tile's k loop over this one) and sweep all
//! 6-row tiles (12-row pairs on AVX-512) of the rows over it.
//! Each element of C is one FMA chain over its KC block, added to C block by
//! block — the same sequence wherever the tile sits, which is what makes
//! row-split parallel results bit-identical to serial ones.
//!
//! Stack: two packed panels of B per call, 32 KiB (AVX2, NEON) or 64 KiB
//! (AVX-512); where A is packed, its block in a frame of its own, 96 KiB
//! (AVX2, NEON) or 192 KiB (AVX-512). The scalar reference, which the
//! Cortex-M targets use, needs none.

macro_rules! gemm_body {
    ($feat:literal, $V:ty, lanes = $L:expr, vecs = $NV:expr $(, transpose = $tr:ident)? $(, pair = $pair:expr)?) => {
        use crate::matmul::pack::pack_b;
        use crate::matmul::{Gemm, TILE_ROWS as MR};
        use core::mem::MaybeUninit;

        /// Columns of the micro-kernel tile.
        pub(crate) const NR: usize = $NV * $L;
        /// Whether two full MR-row tiles run as one (2·MR rows, twice the
        /// accumulators: AVX-512's 32 registers hold them). Each element
        /// keeps its one FMA chain, so the bits are those of two tiles.
        const PAIR: bool = false $(|| $pair)?;
        /// Depth of one packed block: KC x NR floats (16-32 KiB) stay in L1.
        const KC: usize = 256;

        /// Rows of A packed at once: an MC x KC block stays in L2 while
        /// every panel of B passes over it, B packed again for each block:
        /// 96 KiB, or with `PAIR` (AVX-512: every such CPU has 1 MiB of L2
        /// or more) 192 KiB, which packs B half as often ((512,512,512)
        /// Aᵀ·B 145 -> 150 GFLOPS on Sapphire Rapids).
        const MC: usize = if PAIR { 32 * MR } else { 16 * MR };

        /// A packed block of B, 64-byte aligned for whole-line loads.
        #[repr(C, align(64))]
        struct Panel([MaybeUninit<f32>; KC * NR]);

        /// Rows of A packed side by side for one k: the rows one kernel
        /// call covers (two tiles with `PAIR`).
        const G: usize = if PAIR { 2 * MR } else { MR };

        /// A packed block of A: for each group of G rows, its kc columns
        /// with the group's G values of one column side by side.
        #[repr(C, align(64))]
        struct APanel([MaybeUninit<f32>; MC * KC]);

        /// Packs rows `i0..i0 + mc` (mc <= MC) and columns `p0..p0 + kc` of
        /// op(A), for A stored transposed (k x m, row stride `csa`, so that
        /// a group's G values of one column are contiguous), into `out`:
        /// element (i0 + g·G + r, p0 + p) goes to `g·G·kc + p·G + r`, a
        /// vector (or its first lanes) at a time. The rows past m of a
        /// last, short group are left unwritten (the kernels for its tiles
        /// never read them).
        ///
        /// # Safety
        /// The block lies within A.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn pack_at(
            a: &[f32],
            csa: usize,
            i0: usize,
            p0: usize,
            mc: usize,
            kc: usize,
            out: &mut [MaybeUninit<f32>],
        ) {
            let out = &mut out[..mc.div_ceil(G) * G * kc];
            let mut g0 = 0;
            while g0 < mc {
                let rows = (mc - g0).min(G);
                // SAFETY: the group's block, g0·kc .. + G·kc, lies within
                // `out` (g0 + G <= mc rounded up to G); MaybeUninit<f32> has
                // f32's layout.
                let dst = unsafe { out.as_mut_ptr().add(g0 * kc).cast::<f32>() };
                for p in 0..kc {
                    // SAFETY: row p0 + p < k, columns i0 + g0 .. + rows <= m:
                    // inside A (contract).
                    let src = unsafe { a.as_ptr().add((p0 + p) * csa + i0 + g0) };
                    let mut c = 0;
                    while c < rows {
                        let n = (rows - c).min($L);
                        // SAFETY: src + c .. + n lies in A (above); dst + p·G
                        // + c .. + n within the group's block (p < kc, c + n
                        // <= G).
                        unsafe {
                            if n == $L {
                                store(dst.add(p * G + c), load(src.add(c)));
                            } else {
                                store_part(dst.add(p * G + c), load_part(src.add(c), n), n);
                            }
                        }
                        c += $L;
                    }
                }
                g0 += G;
            }
        }

        /// Packs B's kc x nr block at (p0, j0) into `panel`, as `pack_b`.
        /// Where the ISA supplies an L x L transpose (`transpose =` in the
        /// macro call), a full panel of a B stored transposed goes through
        /// it, L x L floats at a time, instead of one float at a time.
        ///
        /// # Safety
        /// The block lies within B (strides `rsb`, `csb`).
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn pack_panel(
            b: &[f32],
            rsb: usize,
            csb: usize,
            p0: usize,
            j0: usize,
            kc: usize,
            nr: usize,
            panel: &mut [MaybeUninit<f32>],
        ) {
            if csb == 1 && nr == NR {
                // A full panel of B stored row by row: NR floats per row of
                // k, moved a vector at a time (a copy of a run of unknown
                // length was a call to memmove per row: 12% of a product).
                let panel = &mut panel[..kc * NR];
                let out = panel.as_mut_ptr().cast::<f32>();
                for p in 0..kc {
                    for v in 0..$NV {
                        // SAFETY: row p0 + p < k and columns j0 + v·L .. + L
                        // <= j0 + NR <= n lie in B (contract); p < kc: inside
                        // the panel, whose MaybeUninit<f32> has f32's layout.
                        unsafe {
                            let x = load(b.as_ptr().add((p0 + p) * rsb + j0 + v * $L));
                            store(out.add(p * NR + v * $L), x);
                        }
                    }
                }
                return;
            }
            $(
            if rsb == 1 && csb != 1 && nr == NR {
                let panel = &mut panel[..kc * NR];
                let whole = kc - kc % $L;
                let out = panel.as_mut_ptr().cast::<f32>();
                for jb in (0..NR).step_by($L) {
                    let mut p = 0;
                    while p < whole {
                        let mut rows = [zero(); $L];
                        for (i, r) in rows.iter_mut().enumerate() {
                            // SAFETY: stored row j0 + jb + i < j0 + NR <= n and
                            // its elements p0 + p .. + L <= p0 + kc <= k lie
                            // in B (contract).
                            *r = unsafe { load(b.as_ptr().add((j0 + jb + i) * csb + p0 + p)) };
                        }
                        for (q, v) in $tr(rows).iter().enumerate() {
                            // SAFETY: p + q < kc and jb + L <= NR: inside the
                            // kc x NR panel; MaybeUninit<f32> has f32's layout.
                            unsafe { store(out.add((p + q) * NR + jb), *v) };
                        }
                        p += $L;
                    }
                    for p in whole..kc {
                        for i in 0..$L {
                            panel[p * NR + jb + i].write(b[(j0 + jb + i) * csb + p0 + p]);
                        }
                    }
                }
                return;
            }
            )?
            pack_b(b, rsb, csb, p0, j0, kc, nr, NR, panel)
        }

        /// The next panel of a row-major B, copied into `dst` row by row
        /// inside the k loop of the first full tile over the current one
        /// (in the loop's idle load and store slots, where packing it on
        /// its own had cost 3-5% of a product 64 rows tall): kc rows of NR
        /// floats from `src`, `rsb` apart.
        #[derive(Clone, Copy)]
        struct Pre {
            src: *const f32,
            rsb: usize,
            dst: *mut f32,
        }

        /// One micro-tile: where its A rows, B panel and C block start.
        struct Tile {
            a: *const f32,
            rsa: usize,
            csa: usize,
            b: *const f32,
            ldb: usize,
            c: *mut f32,
            ldc: usize,
            kc: usize,
            nr: usize,
            acc: bool,
        }

        /// `C (+)= op(A)·op(B)`.
        ///
        /// # Safety
        /// The CPU supports the features above, and `g.check(a.len(), b.len(),
        /// c.len())` has passed.
        ///
        /// `top_m` is the row count of the whole product before any row split:
        /// the strategy depends on it alone, so a split never changes the
        /// arithmetic. Up to `2 * MR` rows B is read in place and `A·Bᵀ`
        /// becomes dot products along k; a single row streams whole rows of B.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn gemm(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32], top_m: usize) {
            let few_rows = top_m <= 2 * MR;
            debug_assert!(g.check(a.len(), b.len(), c.len()).is_ok());
            let (m, k, n) = (g.m, g.k, g.n);
            if m == 0 || n == 0 {
                return;
            }
            if k == 0 {
                if !g.accumulate {
                    for i in 0..m {
                        c[i * g.ldc..i * g.ldc + n].fill(0.0);
                    }
                }
                return;
            }
            let (_, _, _, csb) = g.strides();
            if few_rows && g.trans_b {
                // SAFETY: forwarded contract.
                unsafe { dots(g, a, b, c) };
                return;
            }
            let mut j0 = 0;
            if top_m == 1 && csb == 1 {
                // One row of A: stream whole rows of B through a wide accumulator.
                while j0 + ROW_W <= n {
                    // SAFETY: j0 + ROW_W <= n: the row's columns lie in B and C (contract).
                    unsafe { row_kernel(g, a, b, c, j0) };
                    j0 += ROW_W;
                }
            }
            // Few rows of A: reading B in place beats packing it.
            let direct = csb == 1 && few_rows;
            // A stored row by row is read in place: a tile's MR rows are MR
            // streams the caches follow, and packing them (one float at a
            // time) cost more than it saved (measured: `head_to_head`). A
            // stored transposed is packed when k is deep and many panels of
            // B reuse the block: in place, a tile touches a new cache line
            // at every step of k. Measured (`head_to_head`, Sapphire Rapids,
            // 48 KiB L1): reading Aᵀ in place is 6-19% faster up to 8 panels
            // of B (256 columns), packing 6% faster at 16 (512 columns).
            // SAFETY: forwarded contract; j0 <= n.
            unsafe {
                if g.trans_a && k > 128 && n - j0 > 8 * NR {
                    blocked_packing_a(g, a, b, c, j0, direct)
                } else {
                    blocked(g, a, b, c, j0, direct, None)
                }
            }
        }

        /// [`blocked`] with A packed: the packed block lives in this
        /// frame alone, so the products that read A in place do not
        /// reserve (and probe) its stack.
        ///
        /// # Safety
        /// As [`blocked`], A stored transposed.
        #[inline(never)]
        #[target_feature(enable = $feat)]
        unsafe fn blocked_packing_a(
            g: &Gemm,
            a: &[f32],
            b: &[f32],
            c: &mut [f32],
            j_start: usize,
            direct: bool,
        ) {
            let mut apanel = APanel([MaybeUninit::uninit(); MC * KC]);
            // SAFETY: forwarded contract.
            unsafe { blocked(g, a, b, c, j_start, direct, Some(&mut apanel.0)) }
        }

        /// The general path, over columns `j_start..n` of C: for each KC
        /// block of k and each MC block of rows (which then stays in L2,
        /// packed into `apanel` when one is given, else read in place: all
        /// m rows at once), each NR panel of B, packed in turn (in L1) or
        /// with `direct` read in place, meets every MR-row tile of the
        /// block. Every element of C is one FMA chain per KC block, the
        /// blocks added in order, so results are those of any row split.
        ///
        /// # Safety
        /// As [`gemm`], with m, n, k > 0, `j_start <= n`, B not transposed
        /// when `direct`, and A stored transposed when `apanel` is given.
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $feat)]
        unsafe fn blocked(
            g: &Gemm,
            a: &[f32],
            b: &[f32],
            c: &mut [f32],
            j_start: usize,
            direct: bool,
            mut apanel: Option<&mut [MaybeUninit<f32>]>,
        ) {
            let (m, k, n) = (g.m, g.k, g.n);
            let (rsa, csa, rsb, csb) = g.strides();
            let mut panels = [
                Panel([MaybeUninit::uninit(); KC * NR]),
                Panel([MaybeUninit::uninit(); KC * NR]),
            ];
            let pack_whole_a = apanel.is_some();
            // A packed block holds MC rows; A read in place needs no block:
            // all m rows then meet each panel of B, which is packed once per
            // KC block instead of once per MC rows (3-6% on the training
            // shapes, interleaved runs on Sapphire Rapids).
            let rows_per_block = if pack_whole_a { MC } else { m };
            let mut p0 = 0;
            while p0 < k {
                let kc = (k - p0).min(KC);
                let mut i0 = 0;
                while i0 < m {
                    let mc = (m - i0).min(rows_per_block);
                    if let Some(out) = apanel.as_deref_mut() {
                        // SAFETY: rows i0..i0 + mc <= m, columns p0..p0 + kc <= k.
                        unsafe { pack_at(a, csa, i0, p0, mc, kc, out) };
                    }
                    let mut j0 = j_start;
                    let mut cur = 0;
                    let mut ready = false;
                    while j0 < n {
                        let nr = (n - j0).min(NR);
                        let (this, other) = panels.split_at_mut(1);
                        let (panel, spare) = if cur == 0 {
                            (&mut this[0], &mut other[0])
                        } else {
                            (&mut other[0], &mut this[0])
                        };
                        let (bp, ldb) = if direct && nr == NR {
                            // SAFETY: p0 < k and j0 + NR <= n: the offset lies in B.
                            (unsafe { b.as_ptr().add(p0 * rsb + j0) }, rsb)
                        } else {
                            if !ready {
                                // SAFETY: the block lies within B (Gemm::check).
                                unsafe { pack_panel(b, rsb, csb, p0, j0, kc, nr, &mut panel.0) };
                            }
                            (panel.0.as_ptr().cast::<f32>(), NR)
                        };
                        let pre = if !direct && csb == 1 && j0 + 2 * NR <= n {
                            Some(Pre {
                                // SAFETY: p0 < k, j0 + NR < n: the offset lies in B.
                                src: unsafe { b.as_ptr().add(p0 * rsb + j0 + NR) },
                                rsb,
                                dst: spare.0.as_mut_ptr().cast::<f32>(),
                            })
                        } else {
                            None
                        };
                        // Where A starts, its strides, and how far on the
                        // next tile's and the next pair's rows start.
                        let (ap, ta_rs, ta_cs, steps) = if let Some(packed) = apanel.as_deref() {
                            // A group holds one kernel call's rows: the next
                            // tile (inside a group of two) is MR floats on,
                            // the next group G·kc.
                            let tile = if G == MR { G * kc } else { MR };
                            (packed.as_ptr().cast::<f32>(), 1, G, (tile, G * kc))
                        } else {
                            // SAFETY: i0 < m and p0 < k: the offset lies in A.
                            let ap = unsafe { a.as_ptr().add(i0 * rsa + p0 * csa) };
                            (ap, rsa, csa, (MR * rsa, 2 * MR * rsa))
                        };
                        let t = Tile {
                            a: ap,
                            rsa: ta_rs,
                            csa: ta_cs,
                            b: bp,
                            ldb,
                            // SAFETY: i0 < m and j0 < n: the offset lies in C.
                            c: unsafe { c.as_mut_ptr().add(i0 * g.ldc + j0) },
                            ldc: g.ldc,
                            kc,
                            nr,
                            acc: g.accumulate || p0 > 0,
                        };
                        // SAFETY: A's rows (in place, or packed by pack_at for
                        // the rows of each tile that exist, the only ones a
                        // kernel reads), the kc x NR panel and the mc x nr
                        // block of C are in bounds.
                        ready = unsafe { sweep(t, mc, steps, pre) };
                        if ready {
                            cur ^= 1;
                        }
                        j0 += NR;
                    }
                    i0 += rows_per_block;
                }
                p0 += kc;
            }
        }

        /// Columns one pass of [`row_kernel`] covers: 8 accumulators.
        const ROW_W: usize = 8 * $L;

        /// `C[0, j0..j0+ROW_W] (+)= A[0, :] · B[:, j0..j0+ROW_W]`, B read row by row.
        ///
        /// # Safety
        /// As [`gemm`], with m = 1, B not transposed and `j0 + ROW_W <= n`.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn row_kernel(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32], j0: usize) {
            let (_, csa, rsb, _) = g.strides();
            let mut acc = [zero(); 8];
            for p in 0..g.k {
                let av = splat(a[p * csa]);
                for (v, x) in acc.iter_mut().enumerate() {
                    // SAFETY: p < k and j0 + v*L + L <= j0 + ROW_W <= n: inside B (contract).
                    let bx = unsafe { load(b.as_ptr().add(p * rsb + j0 + v * $L)) };
                    *x = fma(av, bx, *x);
                }
            }
            for (v, x) in acc.iter().enumerate() {
                // SAFETY: row 0, columns j0 + v*L .. + L <= n: inside C (contract).
                let p = unsafe { c.as_mut_ptr().add(j0 + v * $L) };
                let y = if g.accumulate {
                    // SAFETY: as p.
                    let old = unsafe { load(p) };
                    add(old, *x)
                } else {
                    *x
                };
                // SAFETY: as p.
                unsafe { store(p, y) };
            }
        }

        /// `C (+)= A·Bᵀ` as dot products along k: both operands are contiguous
        /// in k, so nothing is packed. Four rows of B share each load of A.
        ///
        /// # Safety
        /// As [`gemm`], with B transposed.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn dots(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
            let (rsa, csa, rsb, csb) = g.strides();
            let k = g.k;
            let full = k - k % $L;
            for i in 0..g.m {
                // A row i is contiguous when A is not transposed; else gather it.
                let mut j = 0;
                while j < g.n {
                    let q = (g.n - j).min(4);
                    let mut acc = [zero(); 4];
                    let mut p = 0;
                    while p < full {
                        let av = if csa == 1 {
                            // SAFETY: p + L <= k: inside A's row i (contract).
                            unsafe { load(a.as_ptr().add(i * rsa + p)) }
                        } else {
                            let mut t = [0.0f32; $L];
                            for (l, x) in t.iter_mut().enumerate() {
                                *x = a[i * rsa + (p + l) * csa];
                            }
                            // SAFETY: t holds L floats.
                            unsafe { load(t.as_ptr()) }
                        };
                        for (r, x) in acc.iter_mut().take(q).enumerate() {
                            // SAFETY: j + r < n, p + L <= k: inside B's row j + r (rsb = 1).
                            let bx = unsafe { load(b.as_ptr().add((j + r) * csb + p * rsb)) };
                            *x = fma(av, bx, *x);
                        }
                        p += $L;
                    }
                    if p < k {
                        // The last partial chunk, zero-padded through a small buffer.
                        let mut t = [0.0f32; $L];
                        for (l, x) in t.iter_mut().take(k - p).enumerate() {
                            *x = a[i * rsa + (p + l) * csa];
                        }
                        // SAFETY: t holds L floats.
                        let av = unsafe { load(t.as_ptr()) };
                        for (r, x) in acc.iter_mut().take(q).enumerate() {
                            let mut u = [0.0f32; $L];
                            for (l, y) in u.iter_mut().take(k - p).enumerate() {
                                *y = b[(j + r) * csb + (p + l) * rsb];
                            }
                            // SAFETY: u holds L floats.
                            *x = fma(av, unsafe { load(u.as_ptr()) }, *x);
                        }
                    }
                    for (r, x) in acc.iter().take(q).enumerate() {
                        let s = hsum(*x);
                        let out = &mut c[i * g.ldc + j + r];
                        *out = if g.accumulate { *out + s } else { s };
                    }
                    j += 4;
                }
            }
        }

        /// Runs the kernels over `rows` rows of C from `t.c`, MR rows at a
        /// time (2·MR with `PAIR`), the next tile's A `a_step` floats on and
        /// the next pair's `pair_step` (`steps`). Keep this the one
        /// place the kernels are called from, and itself called from one
        /// place: then all of it is inlined into one loop nest and the
        /// accumulators stay in registers. Called from two places, it was
        /// compiled out of line and the accumulators went through the stack
        /// on every step of k (3x slower).
        ///
        /// With `pre`, the first full tile also packs the next panel of B;
        /// returns whether one did (not when no full tile ran).
        ///
        /// # Safety
        /// `t` addresses `rows` rows of A (tile by tile, as `steps` says),
        /// a kc x NR panel of B and a rows x nr block of C, all in bounds;
        /// `pre`, if any, a kc x NR block of B and a spare panel.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn sweep(mut t: Tile, rows: usize, steps: (usize, usize), mut pre: Option<Pre>) -> bool {
            let (a_step, pair_step) = steps;
            let mut packed = false;
            let mut i0 = 0;
            while i0 < rows {
                if PAIR && rows - i0 >= 2 * MR {
                    // The tile's 12 values of A for one k side by side (Aᵀ
                    // read in place, or A packed): constant offsets instead
                    // of twelve address sums per step.
                    let unit = t.rsa == 1 && a_step == MR;
                    // The first pair over a full panel packs the next one
                    // (`pre` is only ever given beside a full panel).
                    let fuse = if t.nr > $L { pre.take() } else { None };
                    packed |= fuse.is_some();
                    // SAFETY: forwarded contract: rows i0..i0 + 2·MR exist,
                    // the second tile's A a_step on.
                    unsafe {
                        match (t.nr <= $L, unit, fuse.is_some()) {
                            (true, _, _) => kernel_pair::<1, false, false>(&t, a_step, None),
                            (false, true, false) => kernel_pair::<$NV, true, false>(&t, a_step, None),
                            (false, false, false) => kernel_pair::<$NV, false, false>(&t, a_step, None),
                            (false, true, true) => kernel_pair::<$NV, true, true>(&t, a_step, fuse),
                            (false, false, true) => kernel_pair::<$NV, false, true>(&t, a_step, fuse),
                        }
                    }
                    i0 += 2 * MR;
                    if i0 < rows {
                        // SAFETY: row i0 < rows exists in A and C (contract).
                        unsafe {
                            t.a = t.a.add(pair_step);
                            t.c = t.c.add(2 * MR * t.ldc);
                        }
                    }
                    continue;
                }
                // SAFETY: forwarded contract, the tile's rows start at i0.
                unsafe {
                    // A panel of at most one vector's columns (a layer of
                    // 10 outputs) runs one vector wide: the same chains,
                    // half the work.
                    match ((rows - i0).min(MR), t.nr <= $L) {
                        (1, false) => kernel_1::<$NV>(&t),
                        (2, false) => kernel::<2, $NV, false>(&t, None),
                        (3, false) => kernel::<3, $NV, false>(&t, None),
                        (4, false) => kernel::<4, $NV, false>(&t, None),
                        (5, false) => kernel::<5, $NV, false>(&t, None),
                        (_, false) => {
                            // The first full tile packs the next panel.
                            let fuse = pre.take();
                            packed |= fuse.is_some();
                            if fuse.is_some() {
                                kernel::<6, $NV, true>(&t, fuse)
                            } else {
                                kernel::<6, $NV, false>(&t, None)
                            }
                        }
                        (1, true) => kernel_1::<1>(&t),
                        (2, true) => kernel::<2, 1, false>(&t, None),
                        (3, true) => kernel::<3, 1, false>(&t, None),
                        (4, true) => kernel::<4, 1, false>(&t, None),
                        (5, true) => kernel::<5, 1, false>(&t, None),
                        (_, true) => kernel::<6, 1, false>(&t, None),
                    }
                }
                i0 += MR;
                if i0 < rows {
                    // SAFETY: row i0 < rows exists in A and C (contract).
                    unsafe {
                        t.a = t.a.add(a_step);
                        t.c = t.c.add(MR * t.ldc);
                    }
                }
            }
            packed
        }

        /// Row `p` of the panel `pre` describes, NR floats, into its spare
        /// panel (a fused kernel's share of the next panel's packing).
        ///
        /// # Safety
        /// `pre` is `Some` and row p < kc of its panel lies in B (`V·L ==
        /// NR` floats from `src + p·rsb`) and in the spare panel.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn copy_row<const V: usize>(pre: Option<Pre>, p: usize) {
            if let Some(pre) = pre {
                for v in 0..V {
                    // SAFETY: row p < kc, columns v·L .. + L <= NR (contract).
                    unsafe {
                        let x = load(pre.src.add(p * pre.rsb + v * $L));
                        store(pre.dst.add(p * NR + v * $L), x);
                    }
                }
            }
        }

        /// An `R x (V·L)` tile (`V` vectors: `NR`, or one for a narrow
        /// panel): one FMA chain per element.
        ///
        /// # Safety
        /// `t` addresses R rows of A over kc, a kc x NR panel of B and an
        /// R x nr block of C (nr <= V·L), all in bounds.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn kernel<const R: usize, const V: usize, const FUSE: bool>(
            t: &Tile,
            pre: Option<Pre>,
        ) {
            let mut acc = [[zero(); V]; R];
            for p in 0..t.kc {
                if FUSE {
                    // SAFETY: forwarded contract (p < kc).
                    unsafe { copy_row::<V>(pre, p) };
                }
                let mut bv = [zero(); V];
                for (v, x) in bv.iter_mut().enumerate() {
                    // SAFETY: p < kc, v * LANES < NR: inside the panel (contract).
                    *x = unsafe { load(t.b.add(p * t.ldb + v * $L)) };
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    // SAFETY: r < R, p < kc: inside A (contract).
                    let av = splat(unsafe { *t.a.add(r * t.rsa + p * t.csa) });
                    for (x, bx) in row.iter_mut().zip(bv) {
                        *x = fma(av, bx, *x);
                    }
                }
            }
            // SAFETY: forwarded contract.
            unsafe { store_tile::<R, V>(t, &acc) }
        }

        /// Two MR-row tiles at once (`PAIR`): rows 0..MR from `t.a`, rows
        /// MR..2·MR from the next tile's A, `a_step` on; one FMA chain per
        /// element, as [`kernel`]. `UNIT`: row r of the pair is `r` floats
        /// on (`t.rsa == 1`, `a_step == MR`).
        ///
        /// # Safety
        /// As [`kernel`] for both tiles, and C's 2·MR rows at `t.c`.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn kernel_pair<const V: usize, const UNIT: bool, const FUSE: bool>(
            t: &Tile,
            a_step: usize,
            pre: Option<Pre>,
        ) {
            let mut acc = [[zero(); V]; 2 * MR];
            for p in 0..t.kc {
                if FUSE {
                    // SAFETY: forwarded contract (p < kc).
                    unsafe { copy_row::<V>(pre, p) };
                }
                let mut bv = [zero(); V];
                for (v, x) in bv.iter_mut().enumerate() {
                    // SAFETY: p < kc, v * LANES < NR: inside the panel (contract).
                    *x = unsafe { load(t.b.add(p * t.ldb + v * $L)) };
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let at = if UNIT {
                        r
                    } else if r < MR {
                        r * t.rsa
                    } else {
                        a_step + (r - MR) * t.rsa
                    };
                    // SAFETY: row r of one of the two tiles, p < kc: inside A (contract).
                    let av = splat(unsafe { *t.a.add(at + p * t.csa) });
                    for (x, bx) in row.iter_mut().zip(bv) {
                        *x = fma(av, bx, *x);
                    }
                }
            }
            // SAFETY: forwarded contract.
            unsafe { store_tile::<{ 2 * MR }, V>(t, &acc) }
        }

        /// A single row: four interleaved chains over k hide the FMA latency
        /// that one row's few accumulators would otherwise stall on.
        ///
        /// # Safety
        /// As [`kernel`] with R = 1.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn kernel_1<const V: usize>(t: &Tile) {
            let mut acc = [[zero(); V]; 4];
            let mut p = 0;
            while p + 4 <= t.kc {
                for (q, chain) in acc.iter_mut().enumerate() {
                    // SAFETY: p + q < kc: inside A and the panel (contract).
                    let av = splat(unsafe { *t.a.add((p + q) * t.csa) });
                    for (v, x) in chain.iter_mut().enumerate() {
                        // SAFETY: as above, v * LANES < NR.
                        let bx = unsafe { load(t.b.add((p + q) * t.ldb + v * $L)) };
                        *x = fma(av, bx, *x);
                    }
                }
                p += 4;
            }
            while p < t.kc {
                // SAFETY: p < kc.
                let av = splat(unsafe { *t.a.add(p * t.csa) });
                for (v, x) in acc[0].iter_mut().enumerate() {
                    // SAFETY: p < kc, v * LANES < NR.
                    let bx = unsafe { load(t.b.add(p * t.ldb + v * $L)) };
                    *x = fma(av, bx, *x);
                }
                p += 1;
            }
            let mut sum = [zero(); V];
            for (v, s) in sum.iter_mut().enumerate() {
                *s = add(add(acc[0][v], acc[1][v]), add(acc[2][v], acc[3][v]));
            }
            // SAFETY: forwarded contract.
            unsafe { store_tile::<1, V>(t, &[sum]) }
        }

        /// Writes (or adds) an `R x (V·L)` accumulator block into C, clipped
        /// to nr columns.
        ///
        /// # Safety
        /// The R x nr block of C at `t.c` is in bounds.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn store_tile<const R: usize, const V: usize>(t: &Tile, acc: &[[$V; V]; R]) {
            if t.nr == V * $L {
                for (r, row) in acc.iter().enumerate() {
                    for (v, x) in row.iter().enumerate() {
                        // SAFETY: r < R, v * LANES + LANES <= V * LANES = nr: inside C's block.
                        let p = unsafe { t.c.add(r * t.ldc + v * $L) };
                        let y = if t.acc {
                            // SAFETY: same element range as p.
                            let old = unsafe { load(p) };
                            add(old, *x)
                        } else {
                            *x
                        };
                        // SAFETY: same element range as p.
                        unsafe { store(p, y) };
                    }
                }
            } else {
                // A panel narrower than the tile: each vector's first
                // `cols` lanes, through the ISA's partial load and store
                // (a copy through a buffer indexed at run time had made the
                // whole accumulator block go through the stack after every
                // tile, full ones too).
                for (r, row) in acc.iter().enumerate() {
                    for (v, x) in row.iter().enumerate() {
                        let cols = t.nr.saturating_sub(v * $L).min($L);
                        if cols == 0 {
                            continue;
                        }
                        // SAFETY: r < R, columns v·L .. v·L + cols <= nr: inside C's block.
                        let p = unsafe { t.c.add(r * t.ldc + v * $L) };
                        let y = if t.acc {
                            // SAFETY: the same cols floats as p.
                            add(unsafe { load_part(p, cols) }, *x)
                        } else {
                            *x
                        };
                        // SAFETY: the same cols floats as p.
                        unsafe { store_part(p, y, cols) };
                    }
                }
            }
        }
    };
}
