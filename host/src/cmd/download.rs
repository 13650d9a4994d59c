//! `ember download`: fetches and verifies whichever MNIST file is missing.

use anyhow::Result;
use std::io::Write;

use crate::args::DownloadArgs;
use crate::console::Console;
use crate::data::{self, download};

/// `ember download`.
pub fn run(a: &DownloadArgs) -> Result<()> {
    let dir = data::data_dir(a.data.data.as_deref());
    download::ensure(&dir, &data::FILES)?;
    writeln!(Console::new(), "MNIST is complete in {}", dir.display())?;
    Ok(())
}
