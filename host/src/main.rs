//! `ember`: train, evaluate and run MNIST models; see `ember help`.

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use host::cli::Usage;
use host::cmd;

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
    let argv: Vec<String> = std::env::args().skip(1).collect();
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
            _ => String::new(),
        };
        println!("ember {command}: flags\n{flags}");
        return ExitCode::SUCCESS;
    }
    let _ = ctrlc::set_handler(|| {
        if cmd::train::STOP.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after the current step (Ctrl-C again to quit now)");
    });
    let result = match command.as_str() {
        "train" => cmd::train::run(rest),
        "eval" => cmd::eval::run(rest),
        "predict" => cmd::predict::run(rest),
        "lr-find" => cmd::lr_find::run(rest),
        "fine-tune" => cmd::fine_tune::run(rest),
        "export" => cmd::export::run(rest),
        "download" => cmd::download(rest),
        "help" | "--help" | "-h" => {
            println!("{HELP}");
            Ok(())
        }
        other => Err(Usage(format!("unknown command '{other}'\n\n{HELP}")).into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stdout (`ember eval | head -1`) is not an error worth a word.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            if e.downcast_ref::<Usage>().is_some() {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
            eprintln!("error: {e:#}");
            if cmd::train::STOP.load(Ordering::Relaxed) {
                return ExitCode::from(130);
            }
            ExitCode::FAILURE
        }
    }
}
