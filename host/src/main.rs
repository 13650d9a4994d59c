//! `ember`: train, evaluate and run MNIST models; see `ember help`.

use std::io::Write;
use std::process::ExitCode;

use host::cli::Usage;
use host::cmd;
use host::interrupt::Interrupted;

const HELP: &str = "ember — train a small MLP on MNIST, run it int8 on a microcontroller

usage: ember <command> [flags]

commands:
  train     train an MLP (digits or 3v7), write a checkpoint and metrics
  eval      accuracy, per-class accuracy and confusion matrix of a model
  predict   classify a test image (--index N) or a PNG/PGM file (--image FILE)
  lr-find   learning-rate range test: suggestions, --json, --plot FILE.svg
  fine-tune transfer learning: new head, frozen body, then discriminative LRs
  export    quantize a checkpoint to an int8 blob (+ C header / Rust source)
  download  fetch the four MNIST files into --data DIR (default $MNIST_DIR, then data/mnist)
  help      this text

`ember <command> --help` lists a command's flags.";

fn main() -> ExitCode {
    // First, so that a Ctrl-C at any moment reaches a command's own check.
    host::interrupt::install();
    // Arguments are checked as UTF-8 here, once: ember's flags and paths
    // are text, and an argument that is not (FAULTS 42) is refused by name.
    let mut argv = Vec::new();
    for (i, a) in std::env::args_os().skip(1).enumerate() {
        match a.into_string() {
            Ok(s) => argv.push(s),
            Err(raw) => {
                eprintln!(
                    "ember: argument {} ('{}') is not valid UTF-8; ember takes UTF-8 flags and \
                     paths (rename the file, or pass it through a symlink with a UTF-8 name)",
                    i + 1,
                    raw.to_string_lossy()
                );
                return ExitCode::from(2);
            }
        }
    }
    let Some(command) = argv.first() else {
        eprintln!("{HELP}");
        return ExitCode::from(2);
    };
    let rest = &argv[1..];
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        let flags = match command.as_str() {
            "train" => host::cli::help(cmd::train::TRAIN_FLAGS),
            "eval" => host::cli::help(cmd::eval::FLAGS),
            "predict" => host::cli::help(cmd::predict::FLAGS),
            "lr-find" => host::cli::help(cmd::lr_find::FLAGS),
            "fine-tune" => host::cli::help(&cmd::fine_tune::flags()),
            "export" => host::cli::help(cmd::export::FLAGS),
            "download" => host::cli::help(cmd::DOWNLOAD_FLAGS),
            _ => String::new(),
        };
        return finish(print(&format!("ember {command}: flags\n{flags}\n")));
    }
    let result = match command.as_str() {
        "train" => cmd::train::run(rest),
        "eval" => cmd::eval::run(rest),
        "predict" => cmd::predict::run(rest),
        "lr-find" => cmd::lr_find::run(rest),
        "fine-tune" => cmd::fine_tune::run(rest),
        "export" => cmd::export::run(rest),
        "download" => cmd::download(rest),
        "help" | "--help" | "-h" => print(&format!("{HELP}\n")),
        other => Err(Usage(format!("unknown command '{other}'\n\n{HELP}")).into()),
    };
    finish(result)
}

/// Writes to stdout, returning the error instead of panicking as `print!` does.
fn print(text: &str) -> anyhow::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())
        .and_then(|()| o.flush())
        .map_err(|e| anyhow::Error::new(e).context("cannot write to standard output"))
}

/// The exit code and last words of a command.
fn finish(result: anyhow::Result<()>) -> ExitCode {
    let Err(e) = result else {
        return ExitCode::SUCCESS;
    };
    if let Some(i) = e.downcast_ref::<Interrupted>() {
        eprintln!("{i}");
        return ExitCode::from(host::interrupt::EXIT_CODE);
    }
    if e.downcast_ref::<Usage>().is_some() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    // A closed stdout (`ember eval | head -1`) is not an error worth a word.
    let io_kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<std::io::Error>().map(std::io::Error::kind));
    if io_kind == Some(std::io::ErrorKind::BrokenPipe) {
        return ExitCode::SUCCESS;
    }
    eprintln!("error: {e:#}");
    if host::interrupt::requested() {
        return ExitCode::from(host::interrupt::EXIT_CODE);
    }
    ExitCode::FAILURE
}
