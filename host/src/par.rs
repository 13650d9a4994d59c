//! The core's fork-join executor on a rayon pool of `--threads` threads.

use anyhow::Result;

/// A rayon pool implementing [`ember::Parallel`].
pub struct Pool {
    pool: rayon::ThreadPool,
    threads: usize,
}

impl Pool {
    /// A pool of `threads` workers (0: one per core).
    pub fn new(threads: usize) -> Result<Self> {
        let threads = if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        Ok(Pool { pool, threads })
    }

    /// Runs `f` on one of the workers, so the forks inside it stay cheap
    /// (entering the pool from outside costs tens of µs; do it once per step).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        if self.threads == 1 {
            f()
        } else {
            self.pool.install(f)
        }
    }

    /// Worker count.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

impl ember::Parallel for Pool {
    fn threads(&self) -> usize {
        self.threads
    }
    fn join(&self, a: &mut (dyn FnMut() + Send), b: &mut (dyn FnMut() + Send)) {
        if self.threads == 1 {
            a();
            b();
        } else if self.pool.current_thread_index().is_some() {
            // Already on one of our workers (see `Pool::install`): a fork costs ~1 µs.
            rayon::join(a, b);
        } else {
            self.pool.install(|| rayon::join(a, b));
        }
    }
}
