//! Ctrl-C: the first one asks every command to stop at its next step
//! boundary (a training step, an image batch, a range-test step); a second
//! one quits at once. A command that stops returns [`Interrupted`], which
//! `main` turns into its message and exit code 130 (128 + SIGINT).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first Ctrl-C.
static STOP: AtomicBool = AtomicBool::new(false);

/// The exit code of an interrupted command: 128 + SIGINT, as a shell reports it.
pub const EXIT_CODE: u8 = 130;

/// Installs the handler (once, from `main`).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_CODE));
        }
        eprintln!("\ninterrupted: stopping after the current step (Ctrl-C again to quit now)");
    });
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// A command stopped by Ctrl-C; the message says what was kept.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Interrupted {}

/// `Err(Interrupted)` when Ctrl-C was pressed: for commands that have
/// nothing to keep (`what` says what was stopped, e.g. "eval: stopped").
pub fn check(what: &str) -> anyhow::Result<()> {
    if requested() {
        return Err(Interrupted(format!("interrupted: {what}")).into());
    }
    Ok(())
}
