//! Boards a model is exported for: their flash and RAM, and what the example
//! firmware (firmware/) needs of them, so that `export --board` refuses a
//! model that would not fit before anyone links it.

use anyhow::{bail, Result};

use crate::report::BoardFit;

/// A board: name, flash bytes, RAM bytes, what it is.
pub const BOARDS: &[(&str, usize, usize, &str)] = &[
    (
        "microbit",
        256 << 10,
        16 << 10,
        "BBC micro:bit v1, nRF51822, Cortex-M0",
    ),
    (
        "mps2-an386",
        4 << 20,
        4 << 20,
        "Arm MPS2 AN386 (QEMU), Cortex-M4F",
    ),
    (
        "nrf52840",
        1 << 20,
        256 << 10,
        "Nordic nRF52840, Cortex-M4F",
    ),
    (
        "stm32f411",
        512 << 10,
        128 << 10,
        "ST STM32F411, Cortex-M4F",
    ),
];

/// Flash the example firmware takes besides the blob and its test vectors:
/// its code, the core's integer inference and the runtime. Measured with
/// `size` on the release builds for thumbv6m (the larger) and rounded up.
pub const FIRMWARE_CODE_BYTES: usize = 24 << 10;

/// RAM the example firmware takes besides the scratch buffer: stack frames
/// of inference and reporting, the logits and the runtime's statics.
pub const FIRMWARE_RAM_BYTES: usize = 4 << 10;

/// The flash and RAM of `--board NAME`, or of `--flash`/`--ram`.
pub fn resolve(
    name: Option<&str>,
    flash: Option<usize>,
    ram: Option<usize>,
) -> Result<Option<(String, usize, usize)>> {
    match (name, flash, ram) {
        (Some(n), _, _) => match BOARDS.iter().find(|b| b.0 == n) {
            Some(&(name, flash, ram, _)) => Ok(Some((name.into(), flash, ram))),
            None => bail!(
                "unknown board '{n}'; known: {} (or give --flash BYTES --ram BYTES)",
                BOARDS.iter().map(|b| b.0).collect::<Vec<_>>().join(", ")
            ),
        },
        (None, Some(f), Some(r)) => Ok(Some(("custom".into(), f, r))),
        _ => Ok(None),
    }
}

/// What a model takes of a board: the blob (and the test vectors the
/// example embeds, `vector_bytes`) plus the firmware's code in flash; the
/// scratch buffer plus the firmware's own RAM.
pub fn fit(
    board: (String, usize, usize),
    blob: usize,
    scratch: usize,
    vector_bytes: usize,
) -> BoardFit {
    BoardFit {
        board: board.0,
        flash_needed: blob + vector_bytes + FIRMWARE_CODE_BYTES,
        flash: board.1,
        ram_needed: scratch + FIRMWARE_RAM_BYTES,
        ram: board.2,
    }
}

/// An error when the model does not fit, saying by how much and what to try.
pub fn check(f: &BoardFit, params: usize, widest_hidden: usize) -> Result<()> {
    if f.flash_needed > f.flash {
        let over = f.flash_needed - f.flash;
        // Each hidden unit of the widest layer costs at least its row of 784
        // int8 weights; how many fewer would fit.
        let fewer = over.div_ceil(crate::data::PIXELS + 8);
        bail!(
            "the model does not fit {}: with the example firmware's code it needs {} bytes of \
             flash ({} parameters as int8), {over} bytes more than the board's {}. \
             Use a narrower --hidden (about {} fewer units in the widest layer, {} now; \
             784-128-10 takes ~104 kB) and train again.",
            f.board,
            f.flash_needed,
            params,
            f.flash,
            fewer,
            widest_hidden
        );
    }
    if f.ram_needed > f.ram {
        bail!(
            "the model does not fit {}: inference needs {} bytes of RAM (scratch and the firmware's \
             stack), {} bytes more than the board's {}; use narrower layers.",
            f.board,
            f.ram_needed,
            f.ram_needed - f.ram,
            f.ram
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boards_resolve_and_oversized_models_are_refused() {
        let b = resolve(Some("microbit"), None, None).unwrap().unwrap();
        assert_eq!((b.1, b.2), (256 << 10, 16 << 10));
        assert!(resolve(Some("arduino"), None, None).is_err());
        assert_eq!(
            resolve(None, Some(1000), Some(100)).unwrap().unwrap().0,
            "custom"
        );
        // 784-256-128-10 as int8 is ~240 kB: too much for a micro:bit.
        let f = fit(b.clone(), 240_000, 1024, 0);
        let e = check(&f, 235_146, 256).unwrap_err().to_string();
        assert!(
            e.contains("microbit") && e.contains("narrower --hidden"),
            "{e}"
        );
        // 784-128-10 (~102 kB) fits.
        assert!(check(&fit(b, 102_000, 1024, 0), 101_770, 128).is_ok());
    }
}
