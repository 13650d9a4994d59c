//! Shared helpers for the workspace-level end-to-end tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The MNIST folder for tests: `$MNIST_DIR`, which must hold the four files.
/// Missing data fails the test (it never skips), with the fix in the message.
pub fn mnist_dir() -> PathBuf {
    let dir = std::env::var_os("MNIST_DIR").map(PathBuf::from).unwrap_or_else(|| {
        panic!("MNIST_DIR is not set: point it at the four MNIST IDX files (e.g. MNIST_DIR=../shared/data/mnist)")
    });
    let dir = if dir.is_relative() {
        // Relative to the workspace root, where CI and the README run cargo.
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(dir)
    } else {
        dir
    };
    for f in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        assert!(
            dir.join(f).is_file() || dir.join(format!("{f}.gz")).is_file(),
            "{f}(.gz) missing in {}: MNIST_DIR must hold the four MNIST files",
            dir.display()
        );
    }
    dir
}

/// The `ember` binary built for this test run. Its MNIST mirrors point at a
/// local port that refuses connections, so no test ever reaches the network.
pub fn ember() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ember"));
    c.env("EMBER_MNIST_MIRRORS", "http://127.0.0.1:9/");
    c
}

/// A fresh, empty temporary folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ember-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Parses `text` as one JSON document (a test fails on anything else).
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// The number at `key` of a JSON object, parsed with serde_json.
pub fn json_number(text: &str, key: &str) -> Option<f64> {
    json(text).get(key)?.as_f64()
}

/// Runs `ember` with `args`: (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let o = ember().args(args).output().unwrap();
    let (out, err) = text(&o);
    (o.status.code().unwrap_or(-1), out, err)
}

/// Runs `ember` with `args`, requires success, returns stdout.
pub fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "ember {args:?}\n{out}\n{err}");
    out
}

/// Trains a small 10-class body briefly (784-64-32-10: 2 epochs on 10,000
/// images) into `dir/body.ckpt`, for the tests of heads trained on a device.
pub fn small_body(dir: &std::path::Path) -> PathBuf {
    let ck = dir.join("body.ckpt");
    let d = mnist_dir();
    ok(&[
        "train",
        "--data",
        d.to_str().unwrap(),
        "--hidden",
        "64,32",
        "--epochs",
        "2",
        "--train-limit",
        "10000",
        "--out",
        ck.to_str().unwrap(),
        "--quiet",
    ]);
    ck
}
