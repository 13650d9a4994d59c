//! One file per subcommand; what two of them share is in `common`. A
//! command reads its arguments, calls the library modules, prints.

pub mod common;
pub mod device_sim;
pub mod download;
pub mod eval;
pub mod export;
pub mod fine_tune;
pub mod import;
pub mod lr_find;
pub mod predict;
pub mod train;

use anyhow::Result;
use clap::CommandFactory;

use crate::args::{Cli, Command};

/// Runs the command.
pub fn dispatch(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Predict(a) => predict::run(a),
        Command::LrFind(a) => lr_find::run(a),
        Command::FineTune(a) => fine_tune::run(a),
        Command::Export(a) => export::run(a),
        Command::Download(a) => download::run(a),
        Command::Import(a) => import::run(a),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "ember", &mut script);
            let mut out = std::io::stdout().lock();
            std::io::Write::write_all(&mut out, &script)?;
            Ok(())
        }
    }
}
