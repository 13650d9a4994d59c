//! Standard output for commands whose work must finish even when nobody
//! reads it (`ember train … | head -5`, `> /dev/full`): the first failed
//! write turns the console off, never the training, and the checkpoint is
//! still saved. Commands whose only product is their output (`eval`,
//! `predict`, `help`) write to stdout directly, and `main` ends them quietly
//! on a closed pipe.

use std::io::{self, Write};

/// Standard output that swallows its own failures.
#[derive(Debug, Default)]
pub struct Console {
    dead: bool,
    stderr: bool,
}

impl Console {
    /// A console on standard output.
    pub fn new() -> Self {
        Console {
            dead: false,
            stderr: false,
        }
    }

    /// A console on standard error, for a run whose standard output carries
    /// a JSON document (`--metrics -`) that other lines would corrupt.
    pub fn beside_json(json_on_stdout: bool) -> Self {
        Console {
            dead: false,
            stderr: json_on_stdout,
        }
    }

    /// Whether an earlier write failed (output since then was dropped).
    pub fn is_closed(&self) -> bool {
        self.dead
    }
}

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let failed = match self.stderr {
            true => io::stderr().lock().write_all(buf).is_err(),
            false => io::stdout().lock().write_all(buf).is_err(),
        };
        self.dead |= !self.dead && failed;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.dead && !self.stderr && io::stdout().lock().flush().is_err() {
            self.dead = true;
        }
        Ok(())
    }
}
