//! The C ABI end to end: libember_ffi.a built for this machine runs a
//! hosted C program against include/ember.h (every logit of `ember export
//! --vectors` bit for bit, bad arguments refused), and built for
//! thumbv7em-none-eabihf it runs the C firmware example under
//! qemu-system-arm (`RESULT: PASS`). Needs gcc, gcc-arm-none-eabi,
//! libnewlib-arm-none-eabi and qemu-system-arm (`.ci/run` installs them);
//! missing tools fail the test.

#[path = "support/mod.rs"]
mod support;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.env_remove("RUSTFLAGS").env_remove("CARGO_TARGET_DIR");
    c
}

/// Compiles one C file against ember.h (and headers in `include`) and the
/// hosted libember_ffi.a, warnings as errors.
fn compile_c(source: &Path, include: &Path, exe: &Path) {
    let ffi = root().join("ffi");
    let o = Command::new("cc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-std=c11", "-I"])
        .arg(ffi.join("include"))
        .arg("-I")
        .arg(include)
        .arg(source)
        .arg(ffi.join("target/release/libember_ffi.a"))
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(exe)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "cc {}: {:?}",
        source.display(),
        text(&o)
    );
}

#[test]
fn c_programs_run_embers_models_bit_for_bit() {
    let data = mnist_dir();
    let d = data.to_str().unwrap();
    let dir = temp_dir("ffi");
    let ck = dir.join("m.ckpt");
    ok(&[
        "train",
        "--data",
        d,
        "--hidden",
        "48",
        "--epochs",
        "1",
        "--train-limit",
        "5000",
        "--out",
        ck.to_str().unwrap(),
        "--quiet",
    ]);
    let vectors = dir.join("vectors");
    ok(&[
        "export",
        "--data",
        d,
        "--model",
        ck.to_str().unwrap(),
        "--out",
        dir.join("m.bin").to_str().unwrap(),
        "--vectors",
        vectors.to_str().unwrap(),
        "--c-header",
        dir.join("model.h").to_str().unwrap(),
    ]);
    let f32_blob = dir.join("f32.bin");
    ok(&[
        "export",
        "--data",
        d,
        "--model",
        ck.to_str().unwrap(),
        "--f32",
        "--out",
        f32_blob.to_str().unwrap(),
    ]);

    // Hosted: the static library, a C program, its checks.
    let ffi = root().join("ffi");
    let st = cargo()
        .current_dir(&ffi)
        .args(["build", "--release"])
        .status()
        .unwrap();
    assert!(st.success(), "libember_ffi.a (hosted) builds");
    let exe = dir.join("host_test");
    compile_c(&ffi.join("tests/host_test.c"), &dir, &exe);
    let o = Command::new(&exe)
        .arg(&vectors)
        .arg(&f32_blob)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(
        o.status.success() && out.contains("RESULT: PASS"),
        "{out}{err}"
    );
    assert!(out.contains("100 images, 0 logits differ"), "{out}");

    // The generated header with the lines its comment shows.
    let c = dir.join("header_main.c");
    std::fs::write(
        &c,
        "#include <stdio.h>\n#include \"ember.h\"\n#include \"model.h\"\n\
         int main(void) {\n    static uint8_t pixels[784];\n\
             static uint8_t scratch[EMBER_MODEL_SCRATCH_BYTES];\n    ember_model_t model;\n\
             if (ember_open(ember_model, ember_model_len, &model) != EMBER_OK) { return 1; }\n\
             int32_t digit = ember_predict_u8(&model, pixels, scratch, sizeof scratch);\n\
             printf(\"blank image: %d\\n\", (int)digit);\n    return digit < 0;\n}\n",
    )
    .unwrap();
    let exe2 = dir.join("header_main");
    compile_c(&c, &dir, &exe2);
    let o = Command::new(&exe2).output().unwrap();
    assert!(
        o.status.success() && text(&o).0.contains("blank image: "),
        "{:?}",
        text(&o)
    );

    // Bare metal: the C firmware under QEMU, with this model's vectors.
    let o = Command::new("make")
        .current_dir(root().join("firmware-c"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .arg("run")
        .arg(format!("VECTORS={}", vectors.display()))
        .arg(format!("BUILD={}", dir.join("fw").display()))
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("RESULT: PASS") && out.contains("0 logits differ from the host"),
        "{out}{err}"
    );
}
