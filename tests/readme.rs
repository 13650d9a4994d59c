//! The README's tour runs as pasted: every `sh` block of its "A quick tour"
//! section, in order, in one bash (`set -euo pipefail`) at the repository's
//! root, with the MNIST files of `MNIST_DIR` and no network.
//!
//! One line is stood in for: `cargo install --path host --locked` would
//! build into the target folder that this `cargo test` holds locked, so the
//! test puts the `ember` it was built with on PATH instead (`.ci/run` runs
//! the install line itself).

#[path = "support/mod.rs"]
mod support;
use std::path::PathBuf;
use std::process::Command;
use support::*;

const INSTALL: &str = "cargo install --path host --locked";

/// The `sh` blocks of the section headed `## A quick tour`.
fn tour_blocks(readme: &str) -> Vec<String> {
    let start = readme.find("\n## A quick tour").expect("a tour section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    let section = &rest[..end];
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(l) = lines.next() {
        if l.trim() == "```sh" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            blocks.push(body.join("\n"));
        }
    }
    blocks
}

#[test]
fn the_readme_tour_runs_as_pasted() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = tour_blocks(&readme);
    assert!(blocks.len() >= 3, "{blocks:?}");
    let script = blocks.join("\n");
    assert!(script.contains(INSTALL), "the tour installs ember first");
    let script = script.replace(
        INSTALL,
        "true  # installed by the test: see tests/readme.rs",
    );
    let bin = temp_dir("readme-bin");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ember"), bin.join("ember")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&root)
        .env("PATH", path)
        .env("MNIST_DIR", mnist_dir())
        .env("EMBER_MNIST_MIRRORS", "http://127.0.0.1:9/")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "the tour failed:\n{out}\n{err}");
    // What the tour promises, seen in its output.
    assert!(out.contains("MNIST is complete"), "{out}");
    assert!(
        out.contains("prediction: 7\n"),
        "the hand-drawn seven: {out}"
    );
    assert!(out.contains("top losses"), "{out}");
    assert!(out.contains("--lr auto: the range test"), "{out}");
    assert!(out.contains("board microbit: flash"), "{out}");
    assert_eq!(
        out.matches("RESULT: PASS").count(),
        5,
        "two Rust inference runs, two on-device training runs, one C: {out}"
    );
    assert_eq!(
        out.matches("host agrees: 0 of 65 head weights differ")
            .count(),
        2,
        "both boards reach the host's head: {out}"
    );
    assert!(out.contains("imported 784-64-10"), "{out}");
    assert!(root.join("runs/digits.json").is_file());
}
