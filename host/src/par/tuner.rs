//! When training runs on the pool's threads and when on one (see [`Tuner`]).

use std::time::Duration;

/// Chooses, step by step, whether training runs on the pool's threads or on
/// one: a machine where another process holds a core (or where the two
/// vCPUs share one physical core) makes two threads take turns, slower than
/// one alone. Every cycle of [`Tuner::CYCLE`] steps times [`Tuner::PROBE`]
/// steps each way, then runs the rest in the faster mode.
///
/// A clear loss is a strike, after which the next cycles run serially
/// without probing: 1, 3, 7, ... up to [`Tuner::MAX_SKIP`] of them while
/// the strikes continue; a cycle that runs in parallel to its end clears
/// them. Parallel loses clearly by losing the probe by [`Tuner::LOST`]
/// (with another process on the second core a parallel step took 330-740
/// us against 180 serial, and probing every cycle cost 6% of the run), or
/// by one step slower than [`Tuner::SLOW`] times the serial probes' mean: a
/// short probe can miss the scheduler taking the helper away for a whole
/// time slice, while the joining thread waits for the half the helper
/// holds. The first step of a probe, which wakes the helper, is held to
/// the same bound (against the last probes' serial mean).
///
/// A clear win is the mirror image: parallel probes faster than [`Tuner::WON`]
/// times the serial ones, and the cycle then runs in parallel to its end.
/// The next cycles then run in parallel without probing, 1, 3, 7 of them
/// (up to [`Tuner::MAX_TRUST`]) while the wins continue: on an idle machine
/// the serial probes cost 1.5% of a 2-thread run (8 steps of 256 at 1.5x the
/// time), a probe every 8 cycles 0.2%. An unprobed cycle still strikes on a
/// step over [`Tuner::SLOW`] times the serial mean, and ends the trust when
/// its steps so far, every [`Tuner::CHECK`] of them, average more than
/// [`Tuner::LOST`] times the last parallel probes (the next cycle probes).
#[derive(Debug)]
pub struct Tuner {
    threads: usize,
    step: usize,
    parallel: Duration,
    serial: Duration,
    /// Whether this cycle's probe chose serial for the rest of the cycle.
    use_serial: bool,
    /// Whether this cycle runs serially throughout (skipped by a strike).
    skipping: bool,
    /// Cycles still to skip, and how many the next strike skips.
    skip: u32,
    backoff: u32,
    /// Means of the last probes' timed steps, in seconds.
    serial_mean: f64,
    parallel_mean: f64,
    /// Whether this cycle runs in parallel unprobed (trusted after wins).
    trusting: bool,
    /// Whether this cycle's probe was a clear win and nothing since undid it.
    won: bool,
    /// Cycles still to run unprobed, and how many the next win grants.
    trust: u32,
    streak: u32,
    /// Whether this cycle struck: serial to its end, nothing more timed.
    struck: bool,
}

impl Tuner {
    /// Steps per cycle of probing and running.
    pub const CYCLE: usize = 256;
    /// Steps run in each mode per cycle to time it (the first not timed).
    pub const PROBE: usize = 8;
    /// A parallel step this many times the serial probes' mean is a strike.
    pub const SLOW: f64 = 4.0;
    /// Parallel probes this many times slower than the serial ones are a
    /// strike; slower by less, the cycle runs serially without one (a busy
    /// core made them 2-4x slower; an idle machine's noise, a few percent).
    pub const LOST: f64 = 1.25;
    /// The most cycles one strike skips.
    pub const MAX_SKIP: u32 = 31;
    /// Parallel probes at most this fraction of the serial ones are a clear
    /// win (2 idle cores: 0.65-0.75; noise alone does not get there).
    pub const WON: f64 = 0.8;
    /// The most cycles a run of wins leaves unprobed.
    pub const MAX_TRUST: u32 = 7;
    /// Steps between the checks of an unprobed cycle's mean.
    pub const CHECK: usize = 16;

    /// A tuner for a pool of `threads` (one thread: always serial).
    pub fn new(threads: usize) -> Self {
        Tuner {
            threads,
            step: 0,
            parallel: Duration::ZERO,
            serial: Duration::ZERO,
            use_serial: false,
            skipping: false,
            skip: 0,
            backoff: 0,
            serial_mean: 0.0,
            parallel_mean: 0.0,
            trusting: false,
            won: false,
            trust: 0,
            streak: 0,
            struck: false,
        }
    }

    /// Whether the next step runs serially.
    pub fn serial(&self) -> bool {
        if self.threads <= 1 || self.skipping || self.struck {
            return true;
        }
        if self.trusting {
            return false;
        }
        match self.step % Self::CYCLE {
            s if s < Self::PROBE => false,
            s if s < 2 * Self::PROBE => true,
            _ => self.use_serial,
        }
    }

    /// Records the time of the step just run (in the mode [`Tuner::serial`]
    /// gave for it).
    pub fn record(&mut self, took: Duration) {
        let s = self.step % Self::CYCLE;
        self.step += 1;
        if self.skipping || self.struck {
            if s == Self::CYCLE - 1 {
                self.next_cycle();
            }
            return;
        }
        // The first step of each probe is not timed: it pays for the switch
        // (waking a parked helper, each core taking back its weights). But
        // a switch slower than SLOW serial steps is a strike: a helper
        // parked on a core that another process holds took 1-7 ms to wake,
        // every probe, while the probes' other steps ran about even.
        let slow = |t: Duration, mean: f64| mean > 0.0 && t.as_secs_f64() > Self::SLOW * mean;
        if !self.trusting && s == 0 && slow(took, self.serial_mean) {
            self.strike();
            return;
        }
        let running = if self.trusting {
            self.parallel += took;
            if (s + 1).is_multiple_of(Self::CHECK) {
                let mean = self.parallel.as_secs_f64() / (s + 1) as f64;
                if mean > Self::LOST * self.parallel_mean {
                    self.won = false;
                }
            }
            true
        } else if s < Self::PROBE {
            if s > 0 {
                self.parallel += took;
            }
            false
        } else if s < 2 * Self::PROBE {
            if s > Self::PROBE {
                self.serial += took;
            }
            if s == 2 * Self::PROBE - 1 {
                let (p, q) = (self.parallel.as_secs_f64(), self.serial.as_secs_f64());
                let timed = (Self::PROBE - 1) as f64;
                (self.parallel_mean, self.serial_mean) = (p / timed, q / timed);
                if p > Self::LOST * q {
                    self.strike();
                } else if p > q {
                    self.use_serial = true;
                }
                self.won = p <= Self::WON * q;
            }
            false
        } else {
            true
        };
        if running && !self.use_serial {
            if slow(took, self.serial_mean) {
                self.strike();
            } else if s == Self::CYCLE - 1 {
                // Parallel to the end of the cycle: no strike stands.
                self.backoff = 0;
            }
        }
        if s == Self::CYCLE - 1 {
            self.next_cycle();
        }
    }

    /// Parallel lost: serial for the rest of the cycle and the next
    /// `backoff` cycles, twice as many (plus one) as after the last strike.
    fn strike(&mut self) {
        self.struck = true;
        self.backoff = (2 * self.backoff + 1).min(Self::MAX_SKIP);
        self.skip = self.backoff;
        self.won = false;
    }

    fn next_cycle(&mut self) {
        // A win that held to the end of its cycle (parallel throughout:
        // a strike or a lost check clears `won`) leaves cycles unprobed.
        let clean = self.won && !self.use_serial;
        if !clean {
            (self.trust, self.streak) = (0, 0);
        } else if !self.trusting {
            self.streak = (2 * self.streak + 1).min(Self::MAX_TRUST);
            self.trust = self.streak;
        }
        self.use_serial = false;
        self.struck = false;
        self.parallel = Duration::ZERO;
        self.serial = Duration::ZERO;
        self.skipping = self.skip > 0;
        self.skip = self.skip.saturating_sub(1);
        self.trusting = !self.skipping && self.trust > 0;
        if self.trusting {
            self.trust -= 1;
        } else {
            self.won = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tuner_probes_both_modes_and_keeps_the_faster() {
        let ms = Duration::from_millis;
        // One cycle; serial steps take `ser`, parallel ones `par`; the
        // modes the tuner chose, step by step.
        let cycle = |t: &mut Tuner, ser: u64, par: u64| -> Vec<bool> {
            (0..Tuner::CYCLE)
                .map(|_| {
                    let serial = t.serial();
                    t.record(ms(if serial { ser } else { par }));
                    serial
                })
                .collect()
        };
        let probes = |m: &[bool]| {
            m[..Tuner::PROBE].iter().all(|&s| !s)
                && m[Tuner::PROBE..2 * Tuner::PROBE].iter().all(|&s| s)
        };
        let mut t = Tuner::new(2);
        // Serial is faster (a busy machine): serial after the probes...
        let m = cycle(&mut t, 1, 3);
        assert!(probes(&m) && m[2 * Tuner::PROBE..].iter().all(|&s| s));
        // ...and through the next cycle, unprobed (a strike skips one).
        assert!(cycle(&mut t, 1, 3).iter().all(|&s| s));
        // Probing again: another loss skips three cycles.
        assert!(probes(&cycle(&mut t, 1, 3)));
        for _ in 0..3 {
            assert!(cycle(&mut t, 1, 3).iter().all(|&s| s));
        }
        // The machine is idle again: parallel after the probes.
        let m = cycle(&mut t, 3, 1);
        assert!(probes(&m) && m[2 * Tuner::PROBE..].iter().all(|&s| !s));
        // A clear win: the next cycle runs in parallel unprobed; its steps
        // are slower than the probes said, so the one after probes again.
        assert!(cycle(&mut t, 1, 3).iter().all(|&s| !s));
        // A clean cycle cleared the strikes: a loss now skips one cycle.
        assert!(probes(&cycle(&mut t, 1, 3)));
        assert!(cycle(&mut t, 1, 3).iter().all(|&s| s));
        assert!(probes(&cycle(&mut t, 3, 1)));
        assert!(Tuner::new(1).serial(), "one thread is always serial");
    }

    #[test]
    fn clear_wins_leave_more_and_more_cycles_unprobed_until_one_slows() {
        let us = Duration::from_micros;
        let mut t = Tuner::new(2);
        // Whether each cycle probed; parallel steps take `par`, except
        // that step `slow_at` of the cycle (if any) takes `slow`.
        let mut cycle = |par: u64, slow: Option<(usize, u64)>| -> bool {
            let modes: Vec<bool> = (0..Tuner::CYCLE)
                .map(|s| {
                    let serial = t.serial();
                    let took = match (serial, slow) {
                        (true, _) => 180,
                        (false, Some((at, v))) if s >= at => v,
                        (false, _) => par,
                    };
                    t.record(us(took));
                    serial
                })
                .collect();
            modes.iter().any(|&s| s)
        };
        // 120 against 180 us: a clear win. Probed, then 1, 3, 7, 7 cycles
        // unprobed between probes.
        let mut probed = Vec::new();
        for _ in 0..24 {
            probed.push(cycle(120, None));
        }
        let expect: Vec<bool> = [
            1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0,
        ]
        .iter()
        .map(|&p| p == 1)
        .collect();
        assert_eq!(probed, expect);
        // An unprobed cycle whose steps slow to 1.5x the probes' ends the
        // trust (not a strike): the next cycle probes, and a win there
        // starts the streak again at one unprobed cycle.
        assert!(!cycle(120, Some((100, 180))));
        assert!(cycle(120, None));
        assert!(!cycle(120, None));
        assert!(cycle(120, None));
        // Steps at 160 us: the unprobed cycle that began on the last win
        // ends the trust, and such narrow wins (against 180) are probed
        // every cycle.
        assert!(!cycle(160, None));
        for _ in 0..4 {
            assert!(cycle(160, None));
        }
    }

    /// A probe whose first parallel step (waking the helper) takes over
    /// SLOW serial steps strikes at once: on a core another process holds,
    /// that wake-up took milliseconds at every probe.
    #[test]
    fn a_slow_wake_up_at_a_probe_is_a_strike() {
        let us = Duration::from_micros;
        let mut t = Tuner::new(2);
        // Narrow: parallel 175 against serial 170; every probe's first
        // parallel step (the wake-up) takes `wake`.
        let mut cycle = |wake: u64| -> Vec<bool> {
            (0..Tuner::CYCLE)
                .map(|s| {
                    let serial = t.serial();
                    let took = match (serial, s) {
                        (false, 0) => wake,
                        (false, _) => 175,
                        (true, _) => 170,
                    };
                    t.record(us(took));
                    serial
                })
                .collect()
        };
        // No serial mean yet: the first probe runs; a narrow loss, serial.
        let m = cycle(5000);
        assert!(!m[1] && m[2 * Tuner::PROBE..].iter().all(|&s| s));
        // Now the wake-up strikes: serial from the next step on, and the
        // cycle after is skipped.
        let m = cycle(5000);
        assert!(!m[0] && m[1..].iter().all(|&s| s));
        assert!(cycle(5000).iter().all(|&s| s));
        // A quick wake-up probes as usual.
        let m = cycle(300);
        assert!(!m[1] && m[Tuner::PROBE]);
    }

    #[test]
    fn a_narrow_loss_runs_one_cycle_serially_without_a_strike() {
        let us = Duration::from_micros;
        let mut t = Tuner::new(2);
        let mut modes = Vec::new();
        for s in 0..2 * Tuner::CYCLE {
            let serial = t.serial();
            modes.push(serial);
            // The first parallel probe step pays the switch and is not
            // counted; the others lose by 5%, within noise.
            let took = match (serial, s % Tuner::CYCLE) {
                (false, 0) => us(5000),
                (false, _) => us(189),
                (true, _) => us(180),
            };
            t.record(took);
        }
        let (first, second) = modes.split_at(Tuner::CYCLE);
        assert!(
            first[2 * Tuner::PROBE..].iter().all(|&s| s),
            "serial after a loss"
        );
        assert!(!second[0], "no strike: the next cycle probes again");
    }

    #[test]
    fn a_stalled_parallel_step_ends_the_run_and_skips_cycles_until_one_runs_clean() {
        let mut t = Tuner::new(2);
        let us = Duration::from_micros;
        // Parallel probes fast, serial probes slower: parallel is chosen,
        // then one step stalls (the helper was descheduled).
        let run = |t: &mut Tuner, stall_at: Option<usize>| -> Vec<bool> {
            (0..Tuner::CYCLE)
                .map(|s| {
                    let serial = t.serial();
                    let took = match (serial, stall_at == Some(s)) {
                        (_, true) => us(3000),
                        (true, _) => us(180),
                        (false, _) => us(130),
                    };
                    t.record(took);
                    serial
                })
                .collect()
        };
        let modes = run(&mut t, Some(100));
        assert!(
            !modes[99] && modes[101..].iter().all(|&s| s),
            "serial after the stall"
        );
        // One cycle skipped: serial throughout, no probe.
        assert!(run(&mut t, None).iter().all(|&s| s));
        // Probing again; another stall doubles the skip to 3 cycles.
        let modes = run(&mut t, Some(50));
        assert!(!modes[0] && !modes[49] && modes[51..].iter().all(|&s| s));
        for _ in 0..3 {
            assert!(run(&mut t, None).iter().all(|&s| s));
        }
        // A clean parallel cycle clears the strikes: the next stall skips 1.
        let modes = run(&mut t, None);
        assert!(!modes[0] && !modes[255]);
        run(&mut t, Some(20));
        assert!(run(&mut t, None).iter().all(|&s| s));
        assert!(!run(&mut t, None)[0]);
    }
}
