//! Fork-join parallelism without threads of our own.
//!
//! The core has no threads and no allocator; a caller that has them (the host,
//! with rayon) implements [`Parallel`] and the kernels split their work with
//! it. Every split is over independent output rows, each computed exactly as
//! it would be serially, so results do not depend on the thread count.

/// A fork-join executor.
pub trait Parallel: Sync {
    /// How many workers can usefully run at once (1 for serial execution).
    fn threads(&self) -> usize;
    /// Runs `a` and `b`, possibly at the same time, and returns when both are done.
    fn join(&self, a: &mut (dyn FnMut() + Send), b: &mut (dyn FnMut() + Send));
}

/// Runs everything on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Serial;

impl Parallel for Serial {
    fn threads(&self) -> usize {
        1
    }
    fn join(&self, a: &mut (dyn FnMut() + Send), b: &mut (dyn FnMut() + Send)) {
        a();
        b();
    }
}

/// Splits `rows` rows between `parts / 2` and the remaining workers: returns
/// the row count of the first share, a multiple of `grain` (0 when the rows
/// cannot be split).
pub(crate) fn split_rows(rows: usize, parts: usize, grain: usize) -> usize {
    if parts < 2 || rows <= grain || grain == 0 {
        return 0;
    }
    let share = rows.saturating_mul(parts / 2).div_ceil(parts);
    let first = share.div_ceil(grain).saturating_mul(grain);
    if first >= rows {
        0
    } else {
        first
    }
}

/// Splits the rows of `out` (rows of `width` elements) between `parts` of
/// `par`'s workers, in shares that are multiples of `grain` rows, and calls
/// `f(first_row, rows)` on each share, rows numbered from `row0`. With
/// `cut` (0: none) inside the rows, the first split is there, the later
/// ones as usual. Every row is in exactly one share, and what a share
/// computes does not depend on how the rows were split.
#[allow(clippy::too_many_arguments)]
pub(crate) fn for_row_shares<T: Send>(
    par: &dyn Parallel,
    parts: usize,
    row0: usize,
    out: &mut [T],
    width: usize,
    grain: usize,
    cut: usize,
    f: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    let rows = out.len() / width.max(1);
    let first = if parts >= 2 && cut > 0 && cut < rows {
        cut
    } else {
        split_rows(rows, parts, grain)
    };
    if first == 0 {
        return f(row0, out);
    }
    let (lo, hi) = out.split_at_mut(first * width);
    let half = parts / 2;
    par.join(
        &mut || for_row_shares(par, half, row0, lo, width, grain, 0, f),
        &mut || for_row_shares(par, parts - half, row0 + first, hi, width, grain, 0, f),
    );
}
