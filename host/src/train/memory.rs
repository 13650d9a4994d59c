//! What a training run will take of the machine's memory, counted before
//! anything is allocated, so that an absurd `--hidden` or `--batch` is
//! refused with the estimate instead of aborting in the allocator.

use anyhow::{bail, Result};

use crate::data::PIXELS;
use crate::train::EVAL_CHUNK;

/// The peak bytes a training run of this architecture takes, or `None`
/// when the count overflows: parameters, gradients and optimizer state
/// (one moment for SGD, two for AdamW) plus the checkpoint copy and its
/// bytes; activations and their gradients for a batch and for an
/// evaluation chunk; the images of `examples` (u8) and the test set as f32.
pub fn memory_estimate(widths: &[usize], batch: usize, examples: usize, adam: bool) -> Option<u64> {
    let mut params = 0u64;
    let mut per_row = 0u64;
    for (i, &w) in widths.iter().enumerate() {
        let w = w as u64;
        per_row = per_row.checked_add(w)?;
        if let Some(&next) = widths.get(i + 1) {
            let next = next as u64;
            params = params.checked_add(w.checked_mul(next)?.checked_add(next)?)?;
        }
    }
    let copies = 5 + u64::from(adam);
    let model = params.checked_mul(4 * copies)?;
    let rows = (batch as u64)
        .checked_mul(3)?
        .checked_add(EVAL_CHUNK as u64)?;
    let acts = per_row.checked_mul(4)?.checked_mul(rows)?;
    let data = (examples as u64)
        .checked_mul(PIXELS as u64 + 1)?
        .checked_add(10_000 * PIXELS as u64 * 4)?;
    model.checked_add(acts)?.checked_add(data)
}

/// Bytes of memory available to a new allocation (Linux `MemAvailable`),
/// or `None` where that cannot be read.
pub fn memory_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Refuses, before anything is allocated, a run whose
/// [`memory_estimate`] overflows or exceeds the memory available.
pub fn check_memory(widths: &[usize], batch: usize, examples: usize, adam: bool) -> Result<()> {
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let arch = widths
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("-");
    let Some(need) = memory_estimate(widths, batch, examples, adam) else {
        bail!("the model {arch} with batch {batch} is too large to count; use narrower --hidden or a smaller --batch");
    };
    if let Some(have) = memory_available() {
        if need > have {
            bail!(
                "the model {arch} with batch {batch} needs about {:.1} GiB of memory (parameters, \
                 gradients, optimizer state, activations and data), more than the {:.1} GiB \
                 available; use narrower --hidden or a smaller --batch",
                gib(need),
                gib(have)
            );
        }
    }
    Ok(())
}
