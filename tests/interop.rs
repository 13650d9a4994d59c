//! PyTorch interop through safetensors, both ways, against goldens made by
//! PyTorch itself (tests/golden/torch_mlp.py, which records PyTorch's own
//! test accuracy beside each file), and malformed files refused cleanly.

#[path = "support/mod.rs"]
mod support;
use std::path::{Path, PathBuf};
use support::*;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name)
}

/// Test images a recorded accuracy stands for (PyTorch writes f32 means).
fn correct(acc: f64) -> i64 {
    (acc * 10_000.0).round() as i64
}

fn eval_accuracy(model: &Path) -> f64 {
    let d = mnist_dir();
    let out = ok(&[
        "eval",
        "--data",
        d.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--json",
    ]);
    json_number(&out, "accuracy").unwrap()
}

/// A model trained by PyTorch (prefix `net.`, f32 and bf16) imports to the
/// test accuracy PyTorch reported for it, image for image.
#[test]
fn a_pytorch_model_imports_to_pytorchs_accuracy() {
    let dir = temp_dir("interop-import");
    let rec = json(&std::fs::read_to_string(golden("torch_mlp.json")).unwrap());
    for (file, key) in [
        ("torch_mlp.safetensors", "test_accuracy"),
        ("torch_mlp_bf16.safetensors", "test_accuracy_bf16"),
    ] {
        let ck = dir.join(format!("{file}.ckpt"));
        let out = ok(&[
            "import",
            "--safetensors",
            golden(file).to_str().unwrap(),
            "--out",
            ck.to_str().unwrap(),
        ]);
        assert!(out.contains("784-64-10 for task digits"), "{out}");
        let want = rec[key].as_f64().unwrap();
        assert_eq!(correct(eval_accuracy(&ck)), correct(want), "{file}");
    }
    // An imported model is an ordinary checkpoint: int8 export, fine-tune.
    let ck = dir.join("torch_mlp.safetensors.ckpt");
    let d = mnist_dir();
    let d = d.to_str().unwrap();
    let blob = dir.join("m.bin");
    ok(&[
        "export",
        "--data",
        d,
        "--model",
        ck.to_str().unwrap(),
        "--out",
        blob.to_str().unwrap(),
    ]);
    assert!(eval_accuracy(&blob) > 0.95);
    let ft = dir.join("ft.ckpt");
    ok(&[
        "fine-tune",
        "--data",
        d,
        "--from",
        ck.to_str().unwrap(),
        "--task",
        "3v7",
        "--train-limit",
        "200",
        "--out",
        ft.to_str().unwrap(),
        "--quiet",
    ]);
}

/// ember's export loads into PyTorch's nn.Sequential: the accuracy PyTorch
/// reported for ember_export.safetensors is ember's own for that model; and
/// export then import gives back the very same parameters.
#[test]
fn embers_export_is_what_pytorch_loads() {
    let dir = temp_dir("interop-export");
    let rec = json(&std::fs::read_to_string(golden("ember_export.json")).unwrap());
    let ck = dir.join("e.ckpt");
    ok(&[
        "import",
        "--safetensors",
        golden("ember_export.safetensors").to_str().unwrap(),
        "--out",
        ck.to_str().unwrap(),
    ]);
    assert_eq!(
        correct(eval_accuracy(&ck)),
        correct(rec["test_accuracy"].as_f64().unwrap())
    );
    // Round trip through the CLI, bit for bit.
    let st = dir.join("again.safetensors");
    let d = mnist_dir();
    ok(&[
        "export",
        "--data",
        d.to_str().unwrap(),
        "--model",
        ck.to_str().unwrap(),
        "--out",
        dir.join("e.bin").to_str().unwrap(),
        "--safetensors",
        st.to_str().unwrap(),
    ]);
    let back = dir.join("back.ckpt");
    ok(&[
        "import",
        "--safetensors",
        st.to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&ck).unwrap(), std::fs::read(&back).unwrap());
}

/// A safetensors file from its JSON header and data length.
fn st(header: &str, data: usize) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend(std::iter::repeat_n(0u8, data));
    b
}

#[test]
fn malformed_files_are_refused_with_what_was_found() {
    let dir = temp_dir("interop-bad");
    let lin = |i: usize, o: usize, n: usize, at: usize| {
        format!(
            r#""{n}.weight":{{"dtype":"F32","shape":[{o},{i}],"data_offsets":[{at},{}]}},"{n}.bias":{{"dtype":"F32","shape":[{o}],"data_offsets":[{},{}]}}"#,
            at + 4 * i * o,
            at + 4 * i * o,
            at + 4 * i * o + 4 * o
        )
    };
    let good = format!(
        "{{{},{}}}",
        lin(784, 4, 0, 0),
        lin(4, 10, 2, 4 * 784 * 4 + 16)
    );
    let good_len = 4 * 784 * 4 + 16 + 4 * 4 * 10 + 40;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            st(&good, good_len)[..100].to_vec(),
            "not a valid safetensors file",
        ),
        (
            {
                let mut b = st(&good, good_len);
                b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
                b
            },
            "not a valid safetensors file",
        ),
        (
            st(
                &good.replace("\"F32\",\"shape\":[4,784]", "\"I32\",\"shape\":[4,784]"),
                good_len,
            ),
            "I32",
        ),
        (
            st(
                &good.replace(
                    r#""data_offsets":[0,12544]"#,
                    r#""data_offsets":[16,12560]"#,
                ),
                good_len,
            ),
            "not a valid safetensors file",
        ),
        (
            st(
                r#"{"conv1.weight":{"dtype":"F32","shape":[6,1,5,5],"data_offsets":[0,600]}}"#,
                600,
            ),
            "conv1.weight",
        ),
        (
            st(
                r#"{"0.weight":{"dtype":"F32","shape":[6,1,5,5],"data_offsets":[0,600]},"0.bias":{"dtype":"F32","shape":[6],"data_offsets":[600,624]}}"#,
                624,
            ),
            "not a Linear layer",
        ),
        (
            st(
                r#"{"0.weight":{"dtype":"F32","shape":[10,784],"data_offsets":[0,31360]}}"#,
                31360,
            ),
            "no bias",
        ),
        (
            st(
                &format!(
                    "{{{},{}}}",
                    lin(784, 4, 0, 0),
                    lin(5, 10, 2, 4 * 784 * 4 + 16)
                ),
                4 * 784 * 4 + 16 + 200 + 40,
            ),
            "do not chain",
        ),
        (
            st(&format!("{{{}}}", lin(100, 10, 0, 0)), 4040),
            "100 inputs",
        ),
        (
            st(&format!("{{{}}}", lin(784, 7, 0, 0)), 4 * 784 * 7 + 28),
            "7 outputs",
        ),
    ];
    for (i, (bytes, want)) in cases.into_iter().enumerate() {
        let p = dir.join(format!("bad{i}.safetensors"));
        std::fs::write(&p, &bytes).unwrap();
        let out = dir.join(format!("bad{i}.ckpt"));
        let (code, _, err) = run(&[
            "import",
            "--safetensors",
            p.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "case {i}: {err}");
        assert!(
            err.contains(want) && !err.contains("panicked"),
            "case {i}: want '{want}': {err}"
        );
        assert!(!out.exists(), "case {i}: nothing written");
    }
    // The good one imports (zeros for weights: a valid, useless model).
    let p = dir.join("good.safetensors");
    std::fs::write(&p, st(&good, good_len)).unwrap();
    ok(&[
        "import",
        "--safetensors",
        p.to_str().unwrap(),
        "--out",
        dir.join("g.ckpt").to_str().unwrap(),
    ]);
}
