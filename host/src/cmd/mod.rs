//! One file per subcommand.
pub mod eval;
pub mod export;
pub mod fine_tune;
pub mod lr_find;
pub mod predict;
pub mod train;

/// The flags of `ember download`.
pub const DOWNLOAD_FLAGS: &[crate::cli::Spec] = &[(
    "data",
    true,
    "target folder (default $MNIST_DIR, then data/mnist)",
)];

/// `ember download [--data DIR]`: fetches whatever MNIST file is missing.
pub fn download(argv: &[String]) -> anyhow::Result<()> {
    use std::io::Write;
    let a = crate::cli::Args::parse("download", argv, DOWNLOAD_FLAGS)?;
    let dir = crate::mnist::data_dir(a.str("data"));
    crate::download::ensure(&dir, &crate::mnist::FILES)?;
    let mut out = crate::console::Console::new();
    writeln!(out, "MNIST is complete in {}", dir.display())?;
    Ok(())
}
