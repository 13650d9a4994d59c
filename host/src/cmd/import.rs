//! `ember import`: a PyTorch MLP from a safetensors state dict into an
//! ordinary checkpoint (which `eval`, `fine-tune --from` and `export` take).

use anyhow::Result;
use std::io::Write;

use crate::args::ImportArgs;
use crate::cmd::common::{arch_name, usage};
use crate::console::Console;
use crate::fsutil::{read_bounded, Outputs};
use crate::interop;

/// `ember import`.
pub fn run(a: &ImportArgs) -> Result<()> {
    let mut plan = Outputs::new();
    plan.input("--safetensors", &a.safetensors)?;
    plan.output("--out", &a.out, false)
        .map_err(usage("import"))?;
    let bytes = read_bounded(&a.safetensors, "the safetensors file", interop::MAX_BYTES)?;
    let ck = interop::import(&bytes, a.task.map(Into::into))
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", a.safetensors.display()))?;
    ck.save(&a.out)?;
    writeln!(
        Console::new(),
        "imported {} for task {} ({} parameters, ReLU between layers) into {}",
        arch_name(&ck.mlp),
        ck.task.name(),
        ck.mlp.param_len(),
        a.out.display()
    )?;
    Ok(())
}
