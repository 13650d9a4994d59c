//! One file per subcommand.
pub mod eval;
pub mod export;
pub mod fine_tune;
pub mod lr_find;
pub mod predict;
pub mod train;

/// `ember download [--data DIR]`: fetches whatever MNIST file is missing.
pub fn download(argv: &[String]) -> anyhow::Result<()> {
    let a = crate::cli::Args::parse("download", argv, &[("data", true, "target folder")])?;
    let dir = crate::mnist::data_dir(a.str("data"));
    crate::download::ensure(&dir)?;
    println!("MNIST is complete in {}", dir.display());
    Ok(())
}
