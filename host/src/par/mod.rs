//! The core's fork-join executor: a small pool of helper threads that spin
//! while training runs, so that a fork costs well under a microsecond.
//!
//! Why not rayon's pool: between two products of a training step (the
//! optimizer, the loss, the next batch) its idle workers fall asleep, and
//! waking one costs tens of microseconds per fork — measured here, two
//! threads were no faster than one. Helpers here spin for about a
//! millisecond, which covers every gap inside and between training steps,
//! then park until the next fork unparks them.
//!
//! A busy machine: when another process holds a core, a helper may not run
//! for a whole time slice. The joining thread never waits for a helper that
//! has not started its half: when it has finished its own half it takes the
//! other one back (a compare-and-swap decides who runs it) and runs it
//! itself, so two threads on one free core cost what one thread does.
//!
//! Background work: [`Pool::with_background`] offers the first helper a task
//! it calls piece by piece whenever no fork has work for it (the training
//! step gathers the next batch so), and withdraws it when the caller's own
//! work ends; a fork waits at most for the piece in progress.
//!
//! Every split is over independent output rows (see `ember::par`), so the
//! results do not depend on the thread count.

use anyhow::Result;
use std::cell::UnsafeCell;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

mod tuner;
pub use tuner::Tuner;

/// A helper's states: free; reserved by a joining thread that is filling
/// in the job; job published; job taken by the helper; job finished.
const IDLE: u8 = 0;
const CLAIMED: u8 = 1;
const READY: u8 = 2;
const RUNNING: u8 = 3;
const DONE: u8 = 4;

/// How long an idle helper spins before it parks: longer than any gap
/// inside or between training steps (a step takes ~0.2 ms), short enough
/// not to hold a core that another process wants once training pauses.
const SPIN: Duration = Duration::from_millis(1);

/// A job handed to a helper: the second half of a `join`, its lifetime erased.
struct Job(*mut (dyn FnMut() + Send + 'static));

// SAFETY: the closure behind the pointer is `Send` (the type says so), and
// it is only ever called by one thread at a time: the helper that took it,
// while the joining thread waits.
unsafe impl Send for Job {}

/// Background work offered to a helper (see [`Pool::with_background`]): a
/// closure called chunk by chunk while the helper has no job, its lifetime
/// erased.
struct Task(*mut (dyn FnMut() -> bool + Send + 'static));

// SAFETY: as for `Job`: the closure is `Send`, and only the helper calls
// it, between the offer and the withdrawal, which waits for the call.
unsafe impl Send for Task {}

/// A helper's background slot, on a cache line of its own: the helper
/// writes `busy` around every chunk, which must not disturb the line a
/// fork hands over.
#[repr(C, align(64))]
struct Background {
    /// Taken by the one `with_background` call that may use the slot (a
    /// nested or concurrent call runs its work without background).
    taken: AtomicBool,
    /// Offered by the pool's owner (true) or withdrawn.
    on: AtomicBool,
    /// Set by the helper around each call of the task.
    busy: AtomicBool,
    /// Cleared by the helper when the task says it is done (or panicked).
    more: AtomicBool,
    panicked: AtomicBool,
    /// Written by the owner before `on` is set and after it is withdrawn
    /// with no call in progress; read by the helper only between seeing
    /// `on` (after setting `busy`) and clearing `busy`.
    task: UnsafeCell<Option<Task>>,
}

/// The state, the job and the panic flag share one cache line (C layout,
/// aligned) that nothing else uses: a hand-over moves that line between the
/// cores and nothing more (with the job behind a mutex of its own, a fork
/// took ~1.7 us from publishing to the helper starting).
#[repr(C, align(64))]
struct Helper {
    state: AtomicU8,
    panicked: AtomicBool,
    /// Set by the helper before it parks: only then does a fork pay for an
    /// unpark.
    sleeping: AtomicBool,
    /// Written by the joining thread between claiming the helper (IDLE ->
    /// CLAIMED) and publishing (READY); read by whichever thread then wins
    /// READY -> RUNNING (the helper) or READY -> CLAIMED (the joining
    /// thread taking it back): the state's exchanges order every access.
    job: UnsafeCell<Option<Job>>,
    thread: Mutex<Option<Thread>>,
    /// Tests only: a helper that takes no job, like one descheduled.
    #[cfg(test)]
    hold: AtomicBool,
    background: Background,
}

impl Helper {
    /// Unparks the helper thread (a no-op if it is running).
    fn unpark(&self) {
        if let Some(t) = self
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            t.unpark();
        }
    }

    /// After work was published (a SeqCst store), unparks the helper if it
    /// said it parks: it sets `sleeping` before its last look (SeqCst), so
    /// one of the two sees the other.
    fn wake_if_parked(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            self.unpark();
        }
    }
}

/// Spins until `done`, then, past ~10 us (the helper is likely off its
/// core), yields this core at each look, in case the helper waits for it.
fn wait_for_helper(done: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !done() {
        spins = spins.saturating_add(1);
        if spins < 1 << 12 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

// SAFETY: the fields that are not Sync are `job`, whose accesses the
// state's exchanges order (see its comment), and the background's task,
// ordered by `on` and `busy` (see `Pool::with_background`).
unsafe impl Sync for Helper {}

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
    /// Joins run both halves on the calling thread (see [`Tuner`]).
    serial: AtomicBool,
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
                sleeping: AtomicBool::new(false),
                job: UnsafeCell::new(None),
                panicked: AtomicBool::new(false),
                thread: Mutex::new(None),
                #[cfg(test)]
                hold: AtomicBool::new(false),
                background: Background {
                    taken: AtomicBool::new(false),
                    on: AtomicBool::new(false),
                    busy: AtomicBool::new(false),
                    more: AtomicBool::new(false),
                    panicked: AtomicBool::new(false),
                    task: UnsafeCell::new(None),
                },
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
            serial: AtomicBool::new(false),
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

    /// Runs `f` on this thread while the first helper, whenever it has no
    /// job from a fork, calls `task` again and again until it returns false
    /// (no more to do) or `f` returns: background work that fills the
    /// helper's idle moments (the serial stretches of a training step)
    /// without delaying a fork by more than one call of `task`. Returns
    /// when `f` has and no call of `task` is in progress; how much of the
    /// work got done is for `task` to record. Serial pools (one thread, or
    /// [`Pool::set_serial`]) never call `task`, nor does a call made while
    /// another holds the slot (nested in its `f`, or from another thread):
    /// that one runs its `f` alone.
    ///
    /// # Panics
    /// If `task` panicked on the helper (after `f` has returned).
    pub fn with_background<R>(
        &self,
        task: &mut (dyn FnMut() -> bool + Send),
        f: impl FnOnce() -> R,
    ) -> R {
        let Some(h) = self.helpers.first() else {
            return f();
        };
        let b = &h.background;
        let free = b
            .taken
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if !free || self.serial.load(Ordering::Relaxed) {
            if free {
                b.taken.store(false, Ordering::Release);
            }
            return f();
        }
        let ptr: *mut (dyn FnMut() -> bool + Send + '_) = task;
        // SAFETY: only the lifetime is erased; the guard below withdraws
        // the task and waits out any call before this function returns or
        // unwinds, so the helper never calls it after `task`'s borrow ends.
        let ptr: *mut (dyn FnMut() -> bool + Send + 'static) = unsafe { std::mem::transmute(ptr) };
        // SAFETY: `on` is false and no call is in progress (the last
        // withdrawal waited for it): the helper does not read the cell.
        unsafe { *b.task.get() = Some(Task(ptr)) };
        b.more.store(true, Ordering::Relaxed);
        // SeqCst, against the helper's `sleeping` then `on` (see helper_loop).
        b.on.store(true, Ordering::SeqCst);
        h.wake_if_parked();
        struct Withdraw<'a>(&'a Background);
        impl Drop for Withdraw<'_> {
            fn drop(&mut self) {
                // The helper sets `busy` before it looks at `on` (both
                // SeqCst): either it sees `on` false and does not call, or
                // this sees `busy` and waits for the call to end.
                self.0.on.store(false, Ordering::SeqCst);
                wait_for_helper(|| !self.0.busy.load(Ordering::SeqCst));
                // SAFETY: withdrawn, no call in progress: the cell is ours.
                unsafe { *self.0.task.get() = None };
                self.0.taken.store(false, Ordering::Release);
            }
        }
        let r = {
            let _withdraw = Withdraw(b);
            f()
        };
        if b.panicked.swap(false, Ordering::Relaxed) {
            panic!("a worker thread panicked in background work");
        }
        r
    }
}

fn helper_loop(h: &Helper, stop: &AtomicBool) {
    let mut idle = 0u32;
    let mut idle_since = Instant::now();
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        #[cfg(test)]
        let held = h.hold.load(Ordering::Relaxed);
        #[cfg(not(test))]
        let held = false;
        // Test before the exchange: a failed compare-exchange still takes
        // the line exclusively, away from the joining thread that is
        // filling in the job.
        if !held
            && h.state.load(Ordering::Relaxed) == READY
            && h.state
                .compare_exchange(READY, RUNNING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            // SAFETY: the READY -> RUNNING exchange (Acquire) gave this
            // helper the job the joining thread stored before its READY
            // (Release); no other thread touches the cell until DONE.
            let job = unsafe { (*h.job.get()).take() };
            if let Some(Job(f)) = job {
                // SAFETY: `join` stored this pointer from a live `&mut` and does
                // not return (so the closure and its borrows stay alive and
                // unaliased) until it sees DONE, stored below after the call;
                // it can no longer take the job back, since the READY ->
                // RUNNING exchange above gave the job to this helper alone.
                let r = catch_unwind(AssertUnwindSafe(|| unsafe { (*f)() }));
                h.panicked.store(r.is_err(), Ordering::Relaxed);
            }
            h.state.store(DONE, Ordering::Release);
            idle = 0;
            idle_since = Instant::now();
        } else if !held && background_chunk(&h.background) {
            idle = 0;
            idle_since = Instant::now();
        } else if !idle.is_multiple_of(1024) || idle_since.elapsed() < SPIN {
            // The clock is read once per 1024 polls: it is not free.
            idle = idle.wrapping_add(1);
            std::hint::spin_loop();
        } else {
            // Say so before looking at the state a last time, and a fork
            // looks at `sleeping` after publishing its job (both SeqCst): one
            // of the two sees the other, so a job is never left unannounced.
            // Woken by that fork's unpark (or the pool's drop); the timeout
            // only bounds what a missed wake-up could cost.
            h.sleeping.store(true, Ordering::SeqCst);
            let offered = h.background.on.load(Ordering::SeqCst);
            if h.state.load(Ordering::SeqCst) != READY && !offered && !stop.load(Ordering::SeqCst) {
                std::thread::park_timeout(Duration::from_millis(50));
            }
            h.sleeping.store(false, Ordering::Relaxed);
        }
    }
}

/// One call of the background task, if one is offered with more to do:
/// returns whether it called.
fn background_chunk(b: &Background) -> bool {
    if !b.on.load(Ordering::Relaxed) || !b.more.load(Ordering::Relaxed) {
        return false;
    }
    b.busy.store(true, Ordering::SeqCst);
    let called = b.on.load(Ordering::SeqCst);
    if called {
        // SAFETY: `on` was seen after `busy` was set (both SeqCst), so the
        // owner has not withdrawn the task and will not before `busy` is
        // cleared below; the cell was written before `on` was set.
        if let Some(Task(f)) = unsafe { &*b.task.get() } {
            let f = *f;
            // SAFETY: the pointer came from a live `&mut` that the owner
            // does not use until it has withdrawn the task (see above).
            match catch_unwind(AssertUnwindSafe(|| unsafe { (*f)() })) {
                Ok(more) => b.more.store(more, Ordering::Relaxed),
                Err(_) => {
                    b.panicked.store(true, Ordering::Relaxed);
                    b.more.store(false, Ordering::Relaxed);
                }
            }
        }
    }
    b.busy.store(false, Ordering::SeqCst);
    called
}

impl Pool {
    /// Runs every join on the calling thread (`true`) or across the pool.
    /// The results are the same bits either way (every split is over
    /// independent rows); only the time differs.
    pub fn set_serial(&self, on: bool) {
        self.serial.store(on, Ordering::Relaxed);
    }
}

impl ember::Parallel for Pool {
    fn threads(&self) -> usize {
        self.threads
    }

    fn join(&self, a: &mut (dyn FnMut() + Send), b: &mut (dyn FnMut() + Send)) {
        if self.serial.load(Ordering::Relaxed) {
            a();
            b();
            return;
        }
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
        // SAFETY: this thread claimed the helper (IDLE -> CLAIMED above):
        // nobody else reads or writes the cell until it publishes READY.
        unsafe { *h.job.get() = Some(Job(ptr)) };
        h.state.store(READY, Ordering::SeqCst);
        h.wake_if_parked();
        a();
        if h.state
            .compare_exchange(READY, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // The helper has not started (descheduled, or still waking up):
            // take the job back and run it here instead of waiting.
            // SAFETY: winning READY -> CLAIMED gave the cell back to this
            // thread; the helper never took it.
            let _ = unsafe { (*h.job.get()).take() };
            h.state.store(IDLE, Ordering::Release);
            b();
            return;
        }
        wait_for_helper(|| h.state.load(Ordering::Acquire) == DONE);

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
            h.unpark();
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
    fn a_helper_that_does_not_start_never_stalls_a_join() {
        let pool = Pool::new(2).unwrap();
        pool.helpers[0].hold.store(true, Ordering::Relaxed);
        let main = std::thread::current().id();
        let (mut a_on, mut b_on) = (None, None);
        for _ in 0..100 {
            pool.join(
                &mut || a_on = Some(std::thread::current().id()),
                &mut || b_on = Some(std::thread::current().id()),
            );
            assert_eq!((a_on, b_on), (Some(main), Some(main)));
        }
        // Released, it takes jobs again.
        pool.helpers[0].hold.store(false, Ordering::Relaxed);
        let mut elsewhere = false;
        for _ in 0..10_000 {
            pool.join(
                &mut || std::thread::sleep(Duration::from_micros(50)),
                &mut || b_on = Some(std::thread::current().id()),
            );
            elsewhere |= b_on != Some(main);
        }
        assert!(elsewhere, "the helper never ran a job");
    }

    /// Background work runs on the helper while the caller works, stops
    /// when it says so or when the caller's work ends, and never delays a
    /// fork for long; serial pools never run it.
    #[test]
    fn background_work_fills_the_helper_s_idle_time_and_stops_in_time() {
        use std::sync::atomic::AtomicUsize;
        let pool = Pool::new(2).unwrap();
        let main = std::thread::current().id();
        // Stops by itself at 50 calls, each recording where it ran.
        let (calls, elsewhere) = (AtomicUsize::new(0), AtomicBool::new(false));
        let mut task = || {
            elsewhere.fetch_or(std::thread::current().id() != main, Ordering::Relaxed);
            calls.fetch_add(1, Ordering::Relaxed) + 1 < 50
        };
        let t0 = Instant::now();
        let r = pool.with_background(&mut task, || {
            while calls.load(Ordering::Relaxed) < 50 && t0.elapsed() < Duration::from_secs(10) {
                std::hint::spin_loop();
            }
            7
        });
        assert_eq!(r, 7);
        assert_eq!(calls.load(Ordering::Relaxed), 50, "ran to its end");
        assert!(elsewhere.load(Ordering::Relaxed), "on the helper");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            calls.load(Ordering::Relaxed),
            50,
            "not called after it said done"
        );

        // Endless work: withdrawn when the caller's work returns, and forks
        // meanwhile still complete.
        let n = AtomicUsize::new(0);
        let mut endless = || {
            n.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_micros(20));
            true
        };
        let (mut x, mut y) = (0, 0);
        pool.with_background(&mut endless, || {
            while n.load(Ordering::Relaxed) < 3 && t0.elapsed() < Duration::from_secs(10) {
                std::hint::spin_loop();
            }
            for _ in 0..100 {
                pool.join(&mut || x += 1, &mut || y += 1);
            }
        });
        assert_eq!((x, y), (100, 100));
        let after = n.load(Ordering::Relaxed);
        assert!(after >= 3);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(n.load(Ordering::Relaxed), after, "withdrawn on return");

        // A panic in the task is reported once the caller's work is done.
        let mut bad = || -> bool { panic!("background") };
        let done = AtomicBool::new(false);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.with_background(&mut bad, || {
                std::thread::sleep(Duration::from_millis(20));
                done.store(true, Ordering::Relaxed);
            })
        }));
        assert!(r.is_err() && done.load(Ordering::Relaxed));

        // A call inside another's work (or beside it, on another thread)
        // finds the slot taken and runs its work alone.
        let (outer, inner) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let mut outer_task = || {
            outer.fetch_add(1, Ordering::Relaxed);
            true
        };
        let mut inner_task = || -> bool { panic!("a second task shared the slot") };
        let r = pool.with_background(&mut outer_task, || {
            pool.with_background(&mut inner_task, || {
                inner.fetch_add(1, Ordering::Relaxed) + 5
            })
        });
        assert_eq!((r, inner.load(Ordering::Relaxed)), (5, 1));
        // ...and the slot is free again afterwards.
        let again = AtomicUsize::new(0);
        let mut count = || again.fetch_add(1, Ordering::Relaxed) + 1 < 3;
        pool.with_background(&mut count, || {
            while again.load(Ordering::Relaxed) < 3 && t0.elapsed() < Duration::from_secs(20) {
                std::hint::spin_loop();
            }
        });
        assert_eq!(again.load(Ordering::Relaxed), 3);

        // Serial pools run the caller's work alone.
        let mut never = || -> bool { panic!("a serial pool ran background work") };
        assert_eq!(Pool::new(1).unwrap().with_background(&mut never, || 3), 3);
        pool.set_serial(true);
        assert_eq!(pool.with_background(&mut never, || 4), 4);
        pool.set_serial(false);
    }

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
