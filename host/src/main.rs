//! `ember`: train, evaluate and run MNIST models; see `ember --help`.

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

use host::args::Cli;
use host::cmd::common::Usage;
use host::interrupt::{self, Interrupted};

fn main() -> ExitCode {
    // First, so that a Ctrl-C at any moment reaches a command's own check.
    interrupt::install();
    // Arguments stay OS strings: a path need not be UTF-8 (FAULTS 42).
    let cli = match Cli::try_parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    finish(host::cmd::dispatch(&cli))
}

/// Help, version and usage errors: printed without panicking on a closed or
/// full stdout; help and version exit 0, usage errors 2.
fn clap_exit(e: &clap::Error) -> ExitCode {
    let code = e.exit_code();
    if let Err(io) = e.print() {
        if io.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to standard output: {io}");
            return ExitCode::FAILURE;
        }
    }
    // print() leaves stdout unflushed for help: flush, and judge that too.
    if code == 0 {
        if let Err(io) = std::io::stdout().flush() {
            if io.kind() != std::io::ErrorKind::BrokenPipe {
                eprintln!("error: cannot write to standard output: {io}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}

/// The exit code and last words of a command.
fn finish(result: anyhow::Result<()>) -> ExitCode {
    let Err(e) = result else {
        return ExitCode::SUCCESS;
    };
    if let Some(i) = e.downcast_ref::<Interrupted>() {
        eprintln!("{i}");
        return ExitCode::from(interrupt::EXIT_CODE);
    }
    if e.downcast_ref::<Usage>().is_some() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let io_kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<std::io::Error>().map(std::io::Error::kind));
    // A closed stdout (`ember eval | head -1`) is not an error worth a word.
    if io_kind == Some(std::io::ErrorKind::BrokenPipe) {
        return ExitCode::SUCCESS;
    }
    if io_kind == Some(std::io::ErrorKind::StorageFull) && e.chain().count() == 1 {
        eprintln!("error: cannot write to standard output: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("error: {e:#}");
    if interrupt::requested() {
        return ExitCode::from(interrupt::EXIT_CODE);
    }
    ExitCode::FAILURE
}
