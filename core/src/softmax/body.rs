//! The row loops every vector path shares, instantiated per ISA by
//! `softmax_body!` inside a `#[target_feature]` context. Each ISA file
//! supplies its vector type and the helpers `splat`, `load`, `store`, `add`,
//! `sub`, `mul`, `max`, `hsum`, `hmax` and `exp`. Row tails are processed as
//! one more full vector through a small padded buffer, so every element goes
//! through the same vector `exp`.

macro_rules! softmax_body {
    ($feat:literal, $V:ty, lanes = $L:expr) => {
        /// The row maximum (−∞ for an empty row).
        #[target_feature(enable = $feat)]
        #[inline]
        fn row_max(x: &[f32]) -> f32 {
            let mut m = splat(f32::NEG_INFINITY);
            let chunks = x.chunks_exact($L);
            let tail = chunks.remainder();
            for ch in chunks {
                // SAFETY: a chunk holds exactly L floats.
                m = max(m, unsafe { load(ch.as_ptr()) });
            }
            let mut t = [f32::NEG_INFINITY; $L];
            t[..tail.len()].copy_from_slice(tail);
            // SAFETY: t holds L floats.
            m = max(m, unsafe { load(t.as_ptr()) });
            hmax(m)
        }

        /// `y = exp(x − shift)` (`y` may be `None` to only sum); returns Σ y.
        #[target_feature(enable = $feat)]
        #[inline]
        fn exp_shift_sum(x: &[f32], mut y: Option<&mut [f32]>, shift: f32) -> f32 {
            let sh = splat(shift);
            let mut sum = splat(0.0);
            let chunks = x.chunks_exact($L);
            let tail = chunks.remainder();
            let full = x.len() - tail.len();
            for (i, ch) in chunks.enumerate() {
                // SAFETY: a chunk holds exactly L floats.
                let e = exp(sub(unsafe { load(ch.as_ptr()) }, sh));
                if let Some(y) = y.as_deref_mut() {
                    let dst = &mut y[i * $L..i * $L + $L];
                    // SAFETY: dst holds exactly L floats.
                    unsafe { store(dst.as_mut_ptr(), e) };
                }
                sum = add(sum, e);
            }
            if !tail.is_empty() {
                let mut t = [f32::NEG_INFINITY; $L];
                t[..tail.len()].copy_from_slice(tail);
                // SAFETY: t holds L floats.
                let e = exp(sub(unsafe { load(t.as_ptr()) }, sh));
                // SAFETY: t holds L floats.
                unsafe { store(t.as_mut_ptr(), e) };
                // Padding lanes hold exp(−∞ − shift) = 0 and are left out of the sum.
                let mut s = hsum(sum);
                for (k, v) in t.iter().take(tail.len()).enumerate() {
                    s += v;
                    if let Some(y) = y.as_deref_mut() {
                        y[full + k] = *v;
                    }
                }
                return s;
            }
            hsum(sum)
        }

        /// `y = x · s` elementwise, in place.
        #[target_feature(enable = $feat)]
        #[inline]
        fn scale(y: &mut [f32], s: f32) {
            let sv = splat(s);
            let mut chunks = y.chunks_exact_mut($L);
            for ch in &mut chunks {
                // SAFETY: a chunk holds exactly L floats.
                unsafe { store(ch.as_mut_ptr(), mul(load(ch.as_ptr()), sv)) };
            }
            for v in chunks.into_remainder() {
                *v *= s;
            }
        }

        /// Rows shorter than this go through [`short_rows`].
        const SHORT: usize = 2 * $L;
        /// Elements of short rows shifted and exponentiated at once.
        const BLOCK: usize = 512;

        /// Short rows (fewer than two vectors each), a block of rows at a
        /// time: each row's maximum subtracted into `y`, then one vector
        /// `exp` pass over the whole block, then `finish(row of x, row of
        /// y = exp(x − max), max, Σ)` per row. A row alone would pay a padded
        /// tail vector and two horizontal reductions for a handful of
        /// elements; across the block the lanes stay full. Every element
        /// still goes through the same vector `exp` as in a long row.
        #[target_feature(enable = $feat)]
        #[inline]
        fn short_rows(
            x: &[f32],
            y: &mut [f32],
            cols: usize,
            mut finish: impl FnMut(&[f32], &mut [f32], f32, f32),
        ) {
            let rb = (BLOCK / cols).max(1);
            let mut maxes = [0.0f32; BLOCK];
            for (xb, yb) in x.chunks(rb * cols).zip(y.chunks_mut(rb * cols)) {
                for ((xr, yr), m) in xb
                    .chunks_exact(cols)
                    .zip(yb.chunks_exact_mut(cols))
                    .zip(&mut maxes)
                {
                    *m = crate::softmax::reference::row_max(xr);
                    for (o, &v) in yr.iter_mut().zip(xr) {
                        *o = v - *m;
                    }
                }
                exp_in_place(yb);
                for ((xr, yr), m) in xb
                    .chunks_exact(cols)
                    .zip(yb.chunks_exact_mut(cols))
                    .zip(&maxes)
                {
                    let sum: f32 = yr.iter().sum();
                    finish(xr, yr, *m, sum);
                }
            }
        }

        /// softmax over rows, calling `sums(max, Σ exp(x − max))` for each
        /// row in order; lengths checked by the caller.
        #[target_feature(enable = $feat)]
        pub(crate) fn softmax_sums(
            x: &[f32],
            y: &mut [f32],
            cols: usize,
            sums: &mut dyn FnMut(f32, f32),
        ) {
            if cols < SHORT {
                return short_rows(x, y, cols, |_, yr, m, sum| {
                    sums(m, sum);
                    let inv = 1.0 / sum;
                    for o in yr {
                        *o *= inv;
                    }
                });
            }
            for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
                let m = row_max(xr);
                let s = exp_shift_sum(xr, Some(&mut *yr), m);
                sums(m, s);
                scale(yr, 1.0 / s);
            }
        }

        /// log-softmax over rows; lengths checked by the caller.
        #[target_feature(enable = $feat)]
        pub(crate) fn log_softmax(x: &[f32], y: &mut [f32], cols: usize) {
            if cols < SHORT {
                return short_rows(x, y, cols, |xr, yr, m, sum| {
                    let ls = libm::logf(sum);
                    for (o, &v) in yr.iter_mut().zip(xr) {
                        *o = (v - m) - ls;
                    }
                });
            }
            for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
                let m = row_max(xr);
                let ls = libm::logf(exp_shift_sum(xr, None, m));
                for (o, &v) in yr.iter_mut().zip(xr) {
                    *o = (v - m) - ls;
                }
            }
        }

        /// log-sum-exp of one row.
        #[target_feature(enable = $feat)]
        pub(crate) fn logsumexp_row(x: &[f32]) -> f32 {
            let (m, ln_sum) = logsumexp_parts(x);
            m + ln_sum
        }

        /// The two parts of a row's log-sum-exp: the shift `m` and
        /// `ln Σ exp(x − m)`, kept apart so that a caller can subtract an
        /// element from `m` before adding the logarithm.
        #[target_feature(enable = $feat)]
        pub(crate) fn logsumexp_parts(x: &[f32]) -> (f32, f32) {
            let m = crate::softmax::lse_shift(row_max(x));
            (m, libm::logf(exp_shift_sum(x, None, m)))
        }

        /// `y = exp(y)` elementwise, the tail through a padded vector.
        #[target_feature(enable = $feat)]
        #[inline]
        fn exp_in_place(y: &mut [f32]) {
            let mut ys = y.chunks_exact_mut($L);
            for yc in &mut ys {
                // SAFETY: the chunk holds exactly L floats.
                unsafe { store(yc.as_mut_ptr(), exp(load(yc.as_ptr()))) };
            }
            let yt = ys.into_remainder();
            let mut t = [0.0f32; $L];
            t[..yt.len()].copy_from_slice(yt);
            // SAFETY: t holds L floats.
            unsafe { store(t.as_mut_ptr(), exp(load(t.as_ptr()))) };
            let n = yt.len();
            yt.copy_from_slice(&t[..n]);
        }

        /// `y = exp(x)` elementwise; lengths checked by the caller.
        #[target_feature(enable = $feat)]
        pub(crate) fn exp_slice(x: &[f32], y: &mut [f32]) {
            y.copy_from_slice(x);
            exp_in_place(y);
        }
    };
}

/// Constants of the vector `exp`, shared by every ISA.
///
/// exp(x) = 2ⁿ · exp(r), n = round(x / ln 2), r = x − n·ln 2 in two parts
/// (Cody–Waite), exp(r) by the degree-7 Cephes `expf` polynomial on
/// |r| ≤ ln2/2. 2ⁿ is built as 2^(n/2) · 2^(n − n/2) so that every n the
/// clamped range produces stays a normal exponent.
pub(crate) mod expc {
    /// log2(e).
    pub const LOG2E: f32 = core::f32::consts::LOG2_E;
    /// High part of ln 2 (exact in 9 bits, so n·LN2_HI is exact).
    pub const LN2_HI: f32 = 0.693_359_4;
    /// ln 2 − LN2_HI.
    pub const LN2_LO: f32 = -2.121_944_4e-4;
    /// Above this exp overflows f32: ln(f32::MAX) rounded up.
    pub const HI: f32 = 88.722_84;
    /// Below this exp is under f32::MIN_POSITIVE and is flushed to 0: ln(f32::MIN_POSITIVE).
    pub const LO: f32 = -87.336_55;
    /// Cephes `expf` coefficients, highest degree first.
    pub const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5, // Cephes 5.0000001201e-1, which rounds to exactly 0.5 in f32
    ];
}
