//! Transfer learning on a microcontroller, from the host's side: `export
//! --trainable-head` writes blob format 1.1, `fine-tune --on-device-sim`
//! trains its head exactly as the device will and writes the trained blob
//! and the firmware's vectors; `eval` on that blob scores what the
//! simulation said; misuse is refused before any work.

#[path = "support/mod.rs"]
mod support;
use support::*;

fn body(dir: &std::path::Path) -> String {
    small_body(dir).to_str().unwrap().to_string()
}

#[test]
fn the_simulated_device_run_trains_a_head_that_eval_confirms() {
    let dir = temp_dir("on-device");
    let ck = body(&dir);
    let data = mnist_dir();
    let d = data.to_str().unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();

    // The untrained export: a fresh (zero) one-output head on the body.
    let out = ok(&[
        "export",
        "--model",
        &ck,
        "--data",
        d,
        "--trainable-head",
        "--head-task",
        "3v7",
        "--out",
        &p("fresh.bin"),
        "--json",
    ]);
    let r = json(&out);
    assert_eq!(r["arch"], "784-64-32-1", "{out}");
    assert_eq!(r["task"], "3v7", "{out}");
    assert_eq!(r["kind"], "int8 body + trainable f32 head", "{out}");
    let blob = std::fs::read(p("fresh.bin")).unwrap();
    assert_eq!((blob[10], blob[17]), (1, 3), "format 1.1, dtype 3");
    // A zero head says "3" for everything.
    let e = json(&ok(&[
        "eval",
        "--model",
        &p("fresh.bin"),
        "--data",
        d,
        "--json",
    ]));
    assert_eq!(e["confusion"][1][1], 0, "{e}");

    // The simulation, with the trained blob, the vectors and the metrics.
    let out = ok(&[
        "fine-tune",
        "--on-device-sim",
        "--from",
        &ck,
        "--data",
        d,
        "--task",
        "3v7",
        "--lr",
        "0.01",
        "--out",
        &p("trained.bin"),
        "--vectors",
        &p("vectors"),
        "--vectors-count",
        "50",
        "--metrics",
        &p("m.json"),
    ]);
    assert!(out.contains("on-device simulation"), "{out}");
    let m = json(&std::fs::read_to_string(p("m.json")).unwrap());
    assert_eq!(m["train_examples"], 20, "{m}");
    assert_eq!(m["steps"], 30, "{m}");
    assert_eq!(m["batch"], 20, "{m}");
    assert_eq!(m["state_bytes"], 4 * 3 * 33, "{m}");
    assert_eq!(m["feature_cache_bytes"], 4 * 20 * 32, "{m}");
    let (before, after) = (
        m["accuracy_before"].as_f64().unwrap(),
        m["accuracy_after"].as_f64().unwrap(),
    );
    assert!(after > 0.95 && after > before + 0.3, "{before} -> {after}");
    let losses = m["losses"].as_array().unwrap();
    assert!(losses[29].as_f64().unwrap() < losses[0].as_f64().unwrap() / 10.0);
    // The trained blob scores exactly what the simulation predicted.
    let e = json(&ok(&[
        "eval",
        "--model",
        &p("trained.bin"),
        "--data",
        d,
        "--json",
    ]));
    assert_eq!(e["accuracy"].as_f64().unwrap(), after, "{e}");
    assert_eq!(e["kind"], "int8+f32 head", "{e}");
    // The vectors: every file, the meta the firmware compiles against.
    let v = dir.join("vectors");
    let meta = std::fs::read_to_string(v.join("meta.rs")).unwrap();
    for want in [
        "FEATURES: usize = 32;",
        "TRAIN_COUNT: usize = 20;",
        "TEST_COUNT: usize = 50;",
        "LR: f32 = 0.01;",
        "BATCH: usize = 20;",
        "STEPS: usize = 30;",
    ] {
        assert!(meta.contains(want), "{want} in\n{meta}");
    }
    assert_eq!(std::fs::read(v.join("model.bin")).unwrap(), blob);
    assert_eq!(std::fs::read(v.join("expected.bin")).unwrap().len(), 4 * 33);
    assert_eq!(std::fs::read(v.join("test_labels.bin")).unwrap().len(), 50);
    assert_eq!(std::fs::read(v.join("train_labels.bin")).unwrap().len(), 20);
    // The same run again: the same trained bytes.
    ok(&[
        "fine-tune",
        "--on-device-sim",
        "--from",
        &ck,
        "--data",
        d,
        "--task",
        "3v7",
        "--lr",
        "0.01",
        "--out",
        &p("again.bin"),
        "--quiet",
    ]);
    assert_eq!(
        std::fs::read(p("again.bin")).unwrap(),
        std::fs::read(p("trained.bin")).unwrap()
    );
}

#[test]
fn on_device_misuse_is_refused_before_any_work() {
    let dir = temp_dir("on-device-misuse");
    let ck = body(&dir);
    let data = mnist_dir();
    let d = data.to_str().unwrap();
    let out = dir.join("x.bin");
    let o = out.to_str().unwrap();
    let refused = |args: &[&str], says: &str| {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 2, "{args:?}\n{stdout}{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    let sim = ["fine-tune", "--on-device-sim", "--from", &ck, "--data", d];
    // Flags the device cannot follow.
    for extra in [
        &["--freeze-epochs", "2"][..],
        &["--lr-mult", "10"],
        &["--schedule", "cosine"],
        &["--optimizer", "adamw"],
        &["--augment", "2"],
    ] {
        refused(&[&sim[..], extra].concat(), "cannot be used with");
    }
    refused(
        &[&sim[..], &["--lr", "auto"]].concat(),
        "--lr takes a number",
    );
    refused(&[&sim[..], &["--epochs", "0"]].concat(), "nothing to train");
    // A run longer than a device would take is refused before any work.
    refused(
        &[&sim[..], &["--epochs", "99999999"]].concat(),
        "lower --epochs",
    );
    // The output may not be the input.
    refused(&[&sim[..], &["--out", &ck]].concat(), "--out");
    // Vectors belong to the simulation; trainable heads to int8 exports.
    refused(
        &["fine-tune", "--from", &ck, "--data", d, "--vectors", o],
        "--on-device-sim",
    );
    refused(
        &[
            "export",
            "--model",
            &ck,
            "--data",
            d,
            "--head-task",
            "3v7",
            "--out",
            o,
        ],
        "--trainable-head",
    );
    refused(
        &[
            "export",
            "--model",
            &ck,
            "--data",
            d,
            "--trainable-head",
            "--f32",
            "--out",
            o,
        ],
        "cannot be used with",
    );
    refused(
        &[
            "export",
            "--model",
            &ck,
            "--data",
            d,
            "--trainable-head",
            "--vectors",
            o,
            "--out",
            o,
        ],
        "--on-device-sim --vectors",
    );
    assert!(!out.exists());
}
