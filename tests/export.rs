//! From checkpoint to blob end to end: export, int8 accuracy against f32, the
//! size budget, the C header and Rust source, and damaged blobs refused.

#[path = "support/mod.rs"]
mod support;
use support::*;

#[test]
fn int8_export_keeps_accuracy_size_and_compiles_as_c_and_rust() {
    let data = mnist_dir();
    let d = data.to_str().unwrap();
    let dir = temp_dir("export");
    let ck = dir.join("m.ckpt");
    ok(&[
        "train",
        "--data",
        d,
        "--hidden",
        "128",
        "--epochs",
        "2",
        "--out",
        ck.to_str().unwrap(),
        "--quiet",
    ]);
    let (bin, h, rs) = (dir.join("m.bin"), dir.join("m.h"), dir.join("m.rs"));
    let json = ok(&[
        "export",
        "--model",
        ck.to_str().unwrap(),
        "--data",
        d,
        "--out",
        bin.to_str().unwrap(),
        "--c-header",
        h.to_str().unwrap(),
        "--rust",
        rs.to_str().unwrap(),
        "--json",
    ]);
    let bytes = json_number(&json, "bytes").unwrap() as usize;
    let scratch = json_number(&json, "scratch_bytes").unwrap() as usize;
    assert_eq!(bytes, std::fs::metadata(&bin).unwrap().len() as usize);
    assert_eq!(scratch, 2 * 784);
    // One byte per weight; everything else at most 12 bytes per output channel + 512.
    let weights = 784 * 128 + 128 * 10;
    assert!(bytes <= weights + 12 * (128 + 10) + 512, "{bytes} bytes");

    let f32_acc = json_number(
        &ok(&[
            "eval",
            "--model",
            ck.to_str().unwrap(),
            "--data",
            d,
            "--json",
        ]),
        "accuracy",
    )
    .unwrap();
    let out = ok(&[
        "eval",
        "--model",
        bin.to_str().unwrap(),
        "--data",
        d,
        "--json",
    ]);
    assert!(out.contains("\"kind\": \"int8\""), "{out}");
    let int8_acc = json_number(&out, "accuracy").unwrap();
    assert!(
        (int8_acc - f32_acc).abs() <= 0.003,
        "int8 {int8_acc} vs f32 {f32_acc}"
    );
    let out = ok(&[
        "predict",
        "--model",
        bin.to_str().unwrap(),
        "--data",
        d,
        "--index",
        "0",
    ]);
    assert!(out.contains("prediction: 7 (label 7)"), "{out}");

    // The C header is valid C with the blob 16-byte aligned and its length right.
    let c = dir.join("use.c");
    std::fs::write(
        &c,
        format!(
            "#include \"{}\"\n_Static_assert(sizeof(ember_model) == {bytes}, \"length\");\n\
             _Static_assert(EMBER_MODEL_SCRATCH_BYTES == {scratch}u, \"scratch\");\n\
             _Static_assert(_Alignof(ember_model) >= 16, \"alignment\");\n\
             int main(void) {{ return ember_model[0] == 'E' && ember_model_len == {bytes} ? 0 : 1; }}\n",
            h.display()
        ),
    )
    .unwrap();
    let exe = dir.join("use");
    let st = std::process::Command::new("cc")
        .args(["-std=c11", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(&c)
        .status()
        .unwrap();
    assert!(st.success(), "the C header compiles");
    assert!(std::process::Command::new(&exe).status().unwrap().success());
    // The Rust source compiles and holds the same bytes, aligned.
    let main = dir.join("main.rs");
    std::fs::write(
        &main,
        format!(
            "mod m {{ include!(\"{}\"); }}\nfn main() {{ let b: &[u8] = &m::EMBER_MODEL.0; assert_eq!(b.len(), {bytes}); \
             assert_eq!(b.as_ptr() as usize % 16, 0); assert_eq!(m::EMBER_MODEL_SCRATCH_BYTES, {scratch}); \
             std::fs::write(std::env::args().nth(1).unwrap(), b).unwrap(); }}\n",
            rs.display()
        ),
    )
    .unwrap();
    let rexe = dir.join("main");
    let st = std::process::Command::new("rustc")
        .args(["--edition", "2021", "-o"])
        .arg(&rexe)
        .arg(&main)
        .status()
        .unwrap();
    assert!(st.success(), "the Rust source compiles");
    let copy = dir.join("copy.bin");
    assert!(std::process::Command::new(&rexe)
        .arg(&copy)
        .status()
        .unwrap()
        .success());
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&bin).unwrap());

    // f32 blobs evaluate exactly like the checkpoint.
    let fbin = dir.join("f.bin");
    ok(&[
        "export",
        "--model",
        ck.to_str().unwrap(),
        "--out",
        fbin.to_str().unwrap(),
        "--f32",
    ]);
    let out = ok(&[
        "eval",
        "--model",
        fbin.to_str().unwrap(),
        "--data",
        d,
        "--json",
    ]);
    assert!(out.contains("\"kind\": \"f32\""));
    assert!((json_number(&out, "accuracy").unwrap() - f32_acc).abs() <= 0.0005);

    // Damaged blobs are refused with the reason, never a panic.
    let good = std::fs::read(&bin).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..good.len() / 2].to_vec(), "truncated"),
        (
            {
                let mut b = good.clone();
                b[5000] ^= 4;
                b
            },
            "checksum",
        ),
        (
            {
                let mut b = good.clone();
                b[8] = 7;
                b
            },
            "version 7",
        ),
        (good[..40].to_vec(), "truncated"),
    ];
    for (bytes, want) in cases {
        let p = dir.join("bad.bin");
        std::fs::write(&p, &bytes).unwrap();
        let (code, _, err) = run(&["eval", "--model", p.to_str().unwrap(), "--data", d]);
        assert_eq!(code, 1, "{want}: {err}");
        assert!(
            err.contains(want) && err.contains("bad.bin") && !err.contains("panicked"),
            "want '{want}': {err}"
        );
    }
    // Export refuses to overwrite its input, and bad flags are usage errors.
    let (code, _, err) = run(&[
        "export",
        "--model",
        ck.to_str().unwrap(),
        "--out",
        ck.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("which this command reads"), "{err}");
    let (code, _, _) = run(&["export", "--model", ck.to_str().unwrap(), "--calib", "0"]);
    assert_eq!(code, 2);
    let (code, _, _) = run(&["export", "--model", ck.to_str().unwrap(), "--name", "9bad"]);
    assert_eq!(code, 2);
}

/// `export --board` refuses a model that does not fit, saying by how much
/// and what to do, and writes nothing; a model that fits reports its share.
#[test]
fn board_check_refuses_what_does_not_fit() {
    let data = mnist_dir();
    let d = data.to_str().unwrap();
    let dir = temp_dir("board");
    let big = dir.join("big.ckpt");
    ok(&[
        "train",
        "--data",
        d,
        "--train-limit",
        "300",
        "--epochs",
        "1",
        "--out",
        big.to_str().unwrap(),
        "--quiet",
    ]);
    let blob = dir.join("big.bin");
    let vectors = dir.join("v");
    let (code, _, err) = run(&[
        "export",
        "--data",
        d,
        "--model",
        big.to_str().unwrap(),
        "--out",
        blob.to_str().unwrap(),
        "--board",
        "microbit",
        "--vectors",
        vectors.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("does not fit microbit")
            && err.contains("bytes more than")
            && err.contains("narrower --hidden"),
        "{err}"
    );
    assert!(!blob.exists() && !vectors.exists(), "nothing written");
    let (code, out, err) = run(&[
        "export",
        "--data",
        d,
        "--model",
        big.to_str().unwrap(),
        "--out",
        blob.to_str().unwrap(),
        "--board",
        "nrf52840",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let r = json(&out);
    assert_eq!(r["board"]["board"], "nrf52840");
    assert!(r["board"]["flash_needed"].as_u64().unwrap() > r["bytes"].as_u64().unwrap());
    let (code, _, err) = run(&[
        "export",
        "--model",
        big.to_str().unwrap(),
        "--board",
        "arduino",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("known: microbit"), "{err}");
    let (code, _, err) = run(&[
        "export",
        "--model",
        big.to_str().unwrap(),
        "--flash",
        "1000",
    ]);
    assert_eq!(code, 2, "{err}");
}
