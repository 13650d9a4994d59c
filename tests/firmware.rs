//! The embedded claim, end to end: train, export a blob with test vectors,
//! build the firmware for Cortex-M4F (DSP kernel) and Cortex-M0 (plain
//! integers), run both under qemu-system-arm, and require `RESULT: PASS`
//! (every logit equal to the host's, bit for bit) and exit code 0; a
//! corrupted expectation must make the firmware fail; and the Cortex-M0
//! build links no soft-float routine. Then on-device training: the host
//! simulates it (`fine-tune --on-device-sim --vectors`), both boards train
//! the head themselves and must reach the host's head bit for bit.
//!
//! Needs qemu-system-arm and the thumbv6m-none-eabi / thumbv7em-none-eabihf
//! targets (`.ci/run` installs them); missing tools fail the test.

#[path = "support/mod.rs"]
mod support;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

fn firmware_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../firmware")
}

/// `cargo run --release --target <triple>` in firmware/ with the given test
/// vectors; returns (exit code, stdout + stderr).
fn run_firmware(triple: &str, data: &Path, target_dir: &Path) -> (i32, String) {
    run_bin(
        triple,
        "ember-firmware",
        ("EMBER_FIRMWARE_DATA", data),
        target_dir,
    )
}

/// `cargo run --release --target <triple> --bin <bin>` in firmware/ with
/// `var` pointing at its vectors.
fn run_bin(triple: &str, bin: &str, var: (&str, &Path), target_dir: &Path) -> (i32, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .current_dir(firmware_dir())
        .args(["run", "--release", "--target", triple, "--bin", bin])
        .arg("--target-dir")
        .arg(target_dir)
        .env(var.0, var.1)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .expect("cargo runs");
    let (out, err) = text(&o);
    (o.status.code().unwrap_or(-1), format!("{out}{err}"))
}

/// Names of the symbols in an ELF32 little-endian file's symbol tables.
fn elf32_symbols(elf: &[u8]) -> Vec<String> {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    assert_eq!(&elf[..5], b"\x7fELF\x01", "an ELF32 file");
    let (shoff, shentsize, shnum) = (u32_at(0x20), u16_at(0x2e), u16_at(0x30));
    let mut names = Vec::new();
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        if u32_at(sh + 4) != 2 {
            continue; // SHT_SYMTAB
        }
        let (off, size, link, entsize) = (
            u32_at(sh + 0x10),
            u32_at(sh + 0x14),
            u32_at(sh + 0x18),
            u32_at(sh + 0x24),
        );
        let strtab = u32_at(shoff + link * shentsize + 0x10);
        for s in (off..off + size).step_by(entsize) {
            let start = strtab + u32_at(s);
            let end = start + elf[start..].iter().position(|&b| b == 0).unwrap();
            names.push(String::from_utf8_lossy(&elf[start..end]).into_owned());
        }
    }
    names
}

#[test]
fn firmware_matches_the_host_bit_for_bit_under_qemu() {
    let data = mnist_dir();
    let d = data.to_str().unwrap();
    let dir = temp_dir("firmware");
    let ck = dir.join("m.ckpt");
    let run = |args: &[&str]| {
        let o = ember().args(args).output().unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "ember {args:?}\n{out}{err}");
    };
    run(&[
        "train",
        "--data",
        d,
        "--hidden",
        "64",
        "--epochs",
        "1",
        "--train-limit",
        "10000",
        "--out",
        ck.to_str().unwrap(),
        "--quiet",
    ]);
    let vectors = dir.join("vectors");
    run(&[
        "export",
        "--model",
        ck.to_str().unwrap(),
        "--data",
        d,
        "--out",
        dir.join("m.bin").to_str().unwrap(),
        "--vectors",
        vectors.to_str().unwrap(),
        "--vectors-count",
        "100",
    ]);
    let target_dir = firmware_dir().join("target/test");
    for (triple, kernel) in [
        ("thumbv7em-none-eabihf", "cortex-m-dsp"),
        ("thumbv6m-none-eabi", "scalar"),
    ] {
        let (code, out) = run_firmware(triple, &vectors, &target_dir);
        assert!(out.contains("RESULT: PASS"), "{triple}:\n{out}");
        assert_eq!(code, 0, "{triple}:\n{out}");
        assert!(
            out.contains(&format!("({kernel} kernel): 100 images")),
            "{triple}:\n{out}"
        );
        assert!(
            out.contains("0 logits differ from the host"),
            "{triple}:\n{out}"
        );
    }
    // The check can fail: one wrong expected logit must give FAIL and exit 1.
    let bad = dir.join("bad-vectors");
    std::fs::create_dir_all(&bad).unwrap();
    for f in [
        "model.bin",
        "images.bin",
        "labels.bin",
        "meta.rs",
        "logits.bin",
    ] {
        std::fs::copy(vectors.join(f), bad.join(f)).unwrap();
    }
    let mut logits = std::fs::read(bad.join("logits.bin")).unwrap();
    logits[57] = logits[57].wrapping_add(1);
    std::fs::write(bad.join("logits.bin"), &logits).unwrap();
    let (code, out) = run_firmware("thumbv6m-none-eabi", &bad, &target_dir);
    assert!(
        out.contains("RESULT: FAIL") && out.contains("1 logits differ"),
        "{out}"
    );
    assert_ne!(code, 0, "{out}");
    // Integer-only: the Cortex-M0 image links no soft-float routine.
    let elf = std::fs::read(target_dir.join("thumbv6m-none-eabi/release/ember-firmware")).unwrap();
    let syms = elf32_symbols(&elf);
    assert!(
        syms.iter().any(|s| s.contains("bench_start")),
        "symbols were read"
    );
    let float: Vec<&String> = syms
        .iter()
        .filter(|s| {
            s.starts_with("__aeabi_f")
                || s.starts_with("__aeabi_d")
                || s.starts_with("__aeabi_i2f")
                || ["sf3", "df3", "sf2", "df2", "sfsi", "dfsi", "sisf", "sidf"]
                    .iter()
                    .any(|t| s.ends_with(t))
        })
        .collect();
    assert!(
        float.is_empty(),
        "soft-float routines linked on thumbv6m: {float:?}"
    );
}

/// A constant of a generated meta.rs.
fn meta_const(meta: &str, name: &str) -> usize {
    let line = meta
        .lines()
        .find(|l| l.contains(&format!(" {name}: usize = ")))
        .unwrap_or_else(|| panic!("{name} in\n{meta}"));
    line.rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches(';')
        .parse()
        .unwrap()
}

#[test]
fn on_device_training_reaches_the_hosts_head_bit_for_bit_under_qemu() {
    let data = mnist_dir();
    let d = data.to_str().unwrap();
    let dir = temp_dir("firmware-finetune");
    let ck = small_body(&dir);
    let vectors = dir.join("vectors");
    ok(&[
        "fine-tune",
        "--on-device-sim",
        "--from",
        ck.to_str().unwrap(),
        "--data",
        d,
        "--task",
        "3v7",
        "--lr",
        "0.01",
        "--vectors",
        vectors.to_str().unwrap(),
        "--vectors-count",
        "200",
    ]);
    let meta = std::fs::read_to_string(vectors.join("meta.rs")).unwrap();
    let (host_before, host_after) = (
        meta_const(&meta, "HOST_CORRECT_BEFORE"),
        meta_const(&meta, "HOST_CORRECT_AFTER"),
    );
    // The board says PASS exactly when the host's accuracy meets the target.
    let pass = host_after * 10_000 >= 9850 * 200;
    let target_dir = firmware_dir().join("target/test");
    for (triple, board) in [
        ("thumbv7em-none-eabihf", "mps2-an386"),
        ("thumbv6m-none-eabi", "microbit"),
    ] {
        let (code, out) = run_bin(
            triple,
            "finetune",
            ("EMBER_FINETUNE_DATA", &vectors),
            &target_dir,
        );
        assert!(
            out.contains(&format!("ember fine-tune on {board}")),
            "{triple}:\n{out}"
        );
        let agrees = format!(
            "host agrees: 0 of 33 head weights differ, {host_before} and {host_after} correct"
        );
        assert!(out.contains(&agrees), "{triple}: want {agrees}\n{out}");
        assert!(
            out.contains("trained on 20 images: 30 steps"),
            "{triple}:\n{out}"
        );
        assert!(out.contains("stack high-water"), "{triple}:\n{out}");
        assert!(
            out.contains("instructions per training step"),
            "{triple}:\n{out}"
        );
        assert_eq!(out.contains("RESULT: PASS"), pass, "{triple}:\n{out}");
        assert_eq!(code == 0, pass, "{triple}:\n{out}");
    }
    // The agreement check can fail: one flipped bit of the host's head.
    let bad = dir.join("bad-vectors");
    std::fs::create_dir_all(&bad).unwrap();
    for f in std::fs::read_dir(&vectors).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, bad.join(f.file_name().unwrap())).unwrap();
    }
    let mut expected = std::fs::read(bad.join("expected.bin")).unwrap();
    expected[0] ^= 1;
    std::fs::write(bad.join("expected.bin"), &expected).unwrap();
    let (code, out) = run_bin(
        "thumbv6m-none-eabi",
        "finetune",
        ("EMBER_FINETUNE_DATA", &bad),
        &target_dir,
    );
    assert!(
        out.contains("host DISAGREES: 1 of 33 head weights differ") && out.contains("RESULT: FAIL"),
        "{out}"
    );
    assert_ne!(code, 0, "{out}");
}
