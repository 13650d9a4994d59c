//! Picks the memory layout of the board for the target, and points the
//! firmware at its test data: `EMBER_FIRMWARE_DATA` (a folder written by
//! `ember export --vectors`), else the committed `data/`; and the fine-tune
//! binary at its own: `EMBER_FINETUNE_DATA` (written by `ember fine-tune
//! --on-device-sim --vectors`), else the committed `data/finetune/`.
use std::path::PathBuf;

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let board = if target.starts_with("thumbv6m") {
        "microbit"
    } else {
        "mps2-an386"
    };
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::copy(
        manifest.join(format!("memory/{board}.x")),
        out.join("memory.x"),
    )
    .unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    // Cortex-M4F boards have RAM for a copy of the blob; the micro:bit not.
    println!("cargo:rustc-check-cfg=cfg(big_ram)");
    if board != "microbit" {
        println!("cargo:rustc-cfg=big_ram");
    }
    println!("cargo:rerun-if-changed=memory");
    println!("cargo:rerun-if-env-changed=EMBER_FIRMWARE_DATA");
    let data = match std::env::var_os("EMBER_FIRMWARE_DATA") {
        Some(d) => PathBuf::from(d),
        None => manifest.join("data"),
    };
    for f in [
        "model.bin",
        "images.bin",
        "labels.bin",
        "logits.bin",
        "meta.rs",
    ] {
        let p = data.join(f);
        assert!(
            p.is_file(),
            "{} is missing: run `ember export --vectors` (see firmware/README.md)",
            p.display()
        );
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!("cargo:rustc-env=EMBER_DATA_DIR={}", data.display());
    println!("cargo:rerun-if-env-changed=EMBER_FINETUNE_DATA");
    let finetune = match std::env::var_os("EMBER_FINETUNE_DATA") {
        Some(d) => PathBuf::from(d),
        None => manifest.join("data/finetune"),
    };
    for f in [
        "model.bin",
        "train.bin",
        "train_labels.bin",
        "test.bin",
        "test_labels.bin",
        "expected.bin",
        "meta.rs",
    ] {
        let p = finetune.join(f);
        assert!(
            p.is_file(),
            "{} is missing: run `ember fine-tune --on-device-sim --vectors` (see firmware/README.md)",
            p.display()
        );
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!("cargo:rustc-env=EMBER_FINETUNE_DIR={}", finetune.display());
    println!("cargo:rustc-env=EMBER_BOARD={board}");
    // The core clock SysTick counts under QEMU (its models' system clocks).
    let hz = if board == "microbit" {
        16_000_000
    } else {
        25_000_000
    };
    println!("cargo:rustc-env=EMBER_SYSCLK_HZ={hz}");
}
