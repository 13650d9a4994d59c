//! The core's fork-join executor: a small pool of helper threads that spin
//! while training runs, so that a fork costs well under a microsecond.
//!
//! Why not rayon's pool: between two products of a training step (the
//! optimizer, the loss, the next batch) its idle workers fall asleep, and
//! waking one costs tens of microseconds per fork — measured here, two
//! threads were no faster than one. Helpers here spin for a few
//! milliseconds before they park, which covers every gap inside a step.
//!
//! Every split is over independent output rows (see `ember::par`), so the
//! results do not depend on the thread count.

use anyhow::Result;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

const IDLE: u8 = 0;
const CLAIMED: u8 = 1;
const READY: u8 = 2;
const DONE: u8 = 3;

/// How long an idle helper spins before it parks.
const SPIN: Duration = Duration::from_millis(20);

/// A job handed to a helper: the second half of a `join`, its lifetime erased.
struct Job(*mut (dyn FnMut() + Send + 'static));

// SAFETY: the closure behind the pointer is `Send` (the type says so), and
// it is only ever called by one thread at a time: the helper that took it,
// while the joining thread waits.
unsafe impl Send for Job {}

struct Helper {
    state: AtomicU8,
    job: Mutex<Option<Job>>,
    panicked: AtomicBool,
    thread: Mutex<Option<Thread>>,
}

/// `--threads N` (0: every core), capped at the cores this process may use:
/// more threads than cores only take turns on them (FAULTS 44), so the
/// excess is dropped with a warning.
pub fn capped_threads(asked: usize) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if asked > cores {
        eprintln!(
            "warning: --threads {asked} is more than the {cores} cores available; using {cores}"
        );
        return cores;
    }
    asked
}

/// A fork-join pool of `threads - 1` spinning helpers plus the caller.
pub struct Pool {
    helpers: Vec<Arc<Helper>>,
    shutdown: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
    threads: usize,
}

impl Pool {
    /// A pool of `threads` workers in all (0: one per core).
    pub fn new(threads: usize) -> Result<Self> {
        let threads = if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            threads
        };
        let shutdown = Arc::new(AtomicBool::new(false));
        // Helpers compute like the thread that made the pool (see fpmode).
        let flush = crate::fpmode::flushing();
        let mut helpers = Vec::new();
        let mut handles = Vec::new();
        for i in 1..threads {
            let h = Arc::new(Helper {
                state: AtomicU8::new(IDLE),
                job: Mutex::new(None),
                panicked: AtomicBool::new(false),
                thread: Mutex::new(None),
            });
            let (hh, stop) = (h.clone(), shutdown.clone());
            let handle = std::thread::Builder::new()
                .name(format!("ember-worker-{i}"))
                .spawn(move || {
                    crate::fpmode::set(flush);
                    helper_loop(&hh, &stop)
                })?;
            *h.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle.thread().clone());
            helpers.push(h);
            handles.push(handle);
        }
        Ok(Pool {
            helpers,
            shutdown,
            handles,
            threads,
        })
    }

    /// Worker count.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// `f` over `parts` contiguous, nearly equal shares of `0..n`, one per
    /// thread, results in order: for work outside the core's kernels
    /// (evaluating a blob image by image) on this same pool.
    pub fn map_shares<T: Send>(&self, n: usize, f: &(dyn Fn(Range<usize>) -> T + Sync)) -> Vec<T> {
        let parts = self.threads.min(n).max(1);
        let mut out: Vec<Option<T>> = (0..parts).map(|_| None).collect();
        self.shares(&mut out, 0..n, f);
        out.into_iter().flatten().collect()
    }

    fn shares<T: Send>(
        &self,
        out: &mut [Option<T>],
        range: Range<usize>,
        f: &(dyn Fn(Range<usize>) -> T + Sync),
    ) {
        if out.len() <= 1 {
            if let Some(o) = out.first_mut() {
                *o = Some(f(range));
            }
            return;
        }
        let half = out.len() / 2;
        let mid = range.start + (range.end - range.start) * half / out.len();
        let (lo, hi) = out.split_at_mut(half);
        let (r_lo, r_hi) = (range.start..mid, mid..range.end);
        ember::Parallel::join(self, &mut || self.shares(lo, r_lo.clone(), f), &mut || {
            self.shares(hi, r_hi.clone(), f)
        });
    }

    /// Runs `f` (kept for callers that batch work per step; forks are cheap
    /// from any thread here).
    pub fn install<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }
}

fn helper_loop(h: &Helper, stop: &AtomicBool) {
    let mut idle = 0u32;
    let mut idle_since = Instant::now();
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        if h.state.load(Ordering::Acquire) == READY {
            let job = h.job.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(Job(f)) = job {
                // SAFETY: `join` stored this pointer from a live `&mut` and does
                // not return (so the closure and its borrows stay alive and
                // unaliased) until it sees DONE, stored below after the call.
                let r = catch_unwind(AssertUnwindSafe(|| unsafe { (*f)() }));
                h.panicked.store(r.is_err(), Ordering::Relaxed);
            }
            h.state.store(DONE, Ordering::Release);
            idle = 0;
            idle_since = Instant::now();
        } else if !idle.is_multiple_of(1024) || idle_since.elapsed() < SPIN {
            // The clock is read once per 1024 polls: it is not free.
            idle = idle.wrapping_add(1);
            std::hint::spin_loop();
        } else {
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }
}

impl ember::Parallel for Pool {
    fn threads(&self) -> usize {
        self.threads
    }

    fn join(&self, a: &mut (dyn FnMut() + Send), b: &mut (dyn FnMut() + Send)) {
        let Some(h) = self.helpers.iter().find(|h| {
            h.state
                .compare_exchange(IDLE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        }) else {
            // Every helper is busy (a nested fork): run both halves here.
            a();
            b();
            return;
        };
        let ptr: *mut (dyn FnMut() + Send + '_) = b;
        // SAFETY: only the lifetime is erased; this function waits below until
        // the helper has finished calling the closure, so it never outlives `b`.
        let ptr: *mut (dyn FnMut() + Send + 'static) = unsafe { std::mem::transmute(ptr) };
        *h.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(Job(ptr));
        h.state.store(READY, Ordering::Release);
        if let Some(t) = h.thread.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            t.unpark();
        }
        a();
        let mut spins = 0u32;
        while h.state.load(Ordering::Acquire) != DONE {
            spins = spins.saturating_add(1);
            if spins < 1 << 16 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        let panicked = h.panicked.swap(false, Ordering::Relaxed);
        h.state.store(IDLE, Ordering::Release);
        if panicked {
            panic!("a worker thread panicked in a parallel kernel");
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Release);
        for h in &self.helpers {
            if let Some(t) = h.thread.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                t.unpark();
            }
        }
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember::Parallel;

    #[test]
    fn join_runs_both_halves_on_two_threads_and_nests() {
        let pool = Pool::new(2).unwrap();
        assert_eq!(pool.threads(), 2);
        let (mut x, mut y, mut z) = (0u64, 0u64, 0u64);
        for _ in 0..1000 {
            pool.join(
                &mut || {
                    x += 1;
                    pool.join(&mut || z += 1, &mut || {});
                },
                &mut || y += 2,
            );
        }
        assert_eq!((x, y, z), (1000, 2000, 1000));
        let serial = Pool::new(1).unwrap();
        let (mut n, mut m) = (0, 0);
        serial.join(&mut || n += 1, &mut || m += 10);
        assert_eq!((n, m), (1, 10));
    }

    #[test]
    fn a_panicking_half_is_reported_not_lost() {
        let pool = Pool::new(2).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.join(&mut || {}, &mut || panic!("boom"))
        }));
        assert!(r.is_err());
        // The pool still works afterwards.
        let mut ok = false;
        pool.join(&mut || {}, &mut || ok = true);
        assert!(ok);
    }
}
