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
        } else {
            self.pool.install(|| rayon::join(a, b));
        }
    }
}
