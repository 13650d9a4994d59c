//! End to end through the `ember` binary: a short real-MNIST training, eval
//! and predict, and the bad inputs of FAULTS.md items 17-23 and 29-36 that
//! these commands meet: message, exit code, and nothing a user had is lost.

#[path = "support/mod.rs"]
mod support;
use std::path::Path;
use support::*;

/// Trains a tiny one-epoch model into `ckpt` (quietly); extra flags appended.
fn train_tiny(data: &Path, ckpt: &Path, limit: &str, extra: &[&str]) -> (i32, String, String) {
    train_hidden(data, ckpt, "16", limit, extra)
}

/// One quiet epoch on `limit` examples with one hidden layer of `hidden` units.
fn train_hidden(
    data: &Path,
    ckpt: &Path,
    hidden: &str,
    limit: &str,
    extra: &[&str],
) -> (i32, String, String) {
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--hidden",
        hidden,
        "--epochs",
        "1",
        "--train-limit",
        limit,
        "--out",
        ckpt.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn train_eval_predict_on_real_mnist() {
    let data = mnist_dir();
    let dir = temp_dir("e2e");
    let ckpt = dir.join("m.ckpt");
    let metrics = dir.join("m.json");
    let (code, out, err) = run(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--hidden",
        "64",
        "--epochs",
        "1",
        "--train-limit",
        "6000",
        "--out",
        ckpt.to_str().unwrap(),
        "--metrics",
        metrics.to_str().unwrap(),
        "--threads",
        "2",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("dense  784 -> 64"), "summary first: {out}");
    assert!(out.contains("epoch   1"), "{out}");
    let json = std::fs::read_to_string(&metrics).unwrap();
    for key in ["test_accuracy", "train_seconds", "params"] {
        assert!(json_number(&json, key).is_some(), "{key} in {json}");
    }
    for key in [
        "\"epochs\"",
        "\"arch\": \"784-64-10\"",
        "\"task\": \"digits\"",
        "\"train_loss\"",
        "\"lr\"",
        "\"seconds\"",
        "\"epoch\": 1",
    ] {
        assert!(json.contains(key), "{key} in {json}");
    }
    let acc = json_number(&json, "test_accuracy").unwrap();
    assert!(acc > 0.85, "6000 examples, one epoch: {acc}");
    assert_eq!(
        json_number(&json, "params"),
        Some((784 * 64 + 64 + 64 * 10 + 10) as f64)
    );

    let (code, out, err) = run(&[
        "eval",
        "--model",
        ckpt.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        json_number(&out, "accuracy"),
        Some(acc),
        "eval agrees with training: {out}"
    );
    assert_eq!(json_number(&out, "n"), Some(10000.0));
    assert!(out.contains("\"kind\": \"f32\"") && out.contains("\"task\": \"digits\""));
    let (code, out, _) = run(&[
        "eval",
        "--model",
        ckpt.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("confusion matrix") && out.contains("per class"),
        "{out}"
    );

    let (code, out, err) = run(&[
        "predict",
        "--model",
        ckpt.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--index",
        "0",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("prediction: 7 (label 7)"),
        "test image 0 is a 7: {out}"
    );
    assert!(out.contains('@') || out.contains('%'), "ascii art: {out}");

    // A PGM of test image 0 (dark on light, 56x56) classifies the same way.
    let pgm = dir.join("seven.pgm");
    let test = host::data::load(&data, host::data::Split::Test).unwrap();
    let mut img = b"P5\n# a seven\n56 56\n255\n".to_vec();
    for y in 0..56 {
        for x in 0..56 {
            img.push(255 - test.image(0)[(y / 2) * 28 + x / 2]);
        }
    }
    std::fs::write(&pgm, img).unwrap();
    let (code, out, err) = run(&[
        "predict",
        "--model",
        ckpt.to_str().unwrap(),
        "--image",
        pgm.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("prediction: 7"), "{out}");
    // The same seven as a 28x28 RGB PNG, white on black.
    let png_path = dir.join("seven.png");
    {
        let f = std::fs::File::create(&png_path).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(f), 28, 28);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let rgb: Vec<u8> = test.image(0).iter().flat_map(|&p| [p, p, p]).collect();
        enc.write_header().unwrap().write_image_data(&rgb).unwrap();
    }
    let (code, out, err) = run(&[
        "predict",
        "--model",
        ckpt.to_str().unwrap(),
        "--image",
        png_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("prediction: 7"), "{out}");
    std::fs::write(&png_path, b"\x89PNG\r\n\x1a\nbroken").unwrap();
    let (code, _, err) = run(&[
        "predict",
        "--model",
        ckpt.to_str().unwrap(),
        "--image",
        png_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("unreadable PNG") && err.contains("seven.png"),
        "{err}"
    );
}

#[test]
fn three_vs_seven_task_trains_a_sigmoid_head() {
    let data = mnist_dir();
    let dir = temp_dir("3v7");
    let ckpt = dir.join("b.ckpt");
    let (code, out, err) = run(&[
        "train",
        "--task",
        "3v7",
        "--data",
        data.to_str().unwrap(),
        "--hidden",
        "32",
        "--epochs",
        "3",
        "--train-limit",
        "2000",
        "--out",
        ckpt.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("32 -> 1") && out.contains("sigmoid"), "{out}");
    let (code, out, _) = run(&[
        "eval",
        "--model",
        ckpt.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("\"task\": \"3v7\""));
    // 1010 threes + 1028 sevens in the test set.
    assert_eq!(json_number(&out, "n"), Some(2038.0));
    assert!(json_number(&out, "accuracy").unwrap() > 0.97, "{out}");
}

#[test]
fn training_is_reproducible_and_independent_of_threads() {
    let data = mnist_dir();
    let dir = temp_dir("repro");
    // 16 hidden units run the dense kernels; 128 the sparse ones, cut
    // between the threads, with the next batch gathered ahead.
    for hidden in ["16", "128"] {
        let mut bytes = Vec::new();
        for (i, threads) in ["1", "2", "2"].iter().enumerate() {
            let ckpt = dir.join(format!("r{hidden}_{i}.ckpt"));
            let args = ["--threads", threads, "--seed", "7"];
            let (code, _, err) = train_hidden(&data, &ckpt, hidden, "1000", &args);
            assert_eq!(code, 0, "{err}");
            bytes.push(std::fs::read(&ckpt).unwrap());
        }
        assert!(
            bytes[0] == bytes[1] && bytes[1] == bytes[2],
            "same seed, 1 or 2 threads: same checkpoint bytes ({hidden} hidden)"
        );
    }
}

/// `--dense` turns the sparse-input products off: the same training then
/// runs on the dense kernels, to rounding the same model (the pixels are
/// mostly zeros, so the default run does take the sparse path).
#[test]
fn dense_flag_trains_the_same_model_on_the_dense_kernels() {
    let data = mnist_dir();
    let dir = temp_dir("dense");
    let mut acc = Vec::new();
    let mut bytes = Vec::new();
    for (i, extra) in [&[][..], &["--dense"][..]].iter().enumerate() {
        let ckpt = dir.join(format!("d{i}.ckpt"));
        let metrics = dir.join(format!("d{i}.json"));
        let mut args = vec!["--seed", "3", "--metrics", metrics.to_str().unwrap()];
        args.extend_from_slice(extra);
        // 64 hidden units: narrower layers take the dense kernels anyway
        // (ember::matmul::sparse::SPARSE_MIN_WIDTH).
        let (code, _, err) = train_hidden(&data, &ckpt, "64", "2000", &args);
        assert_eq!(code, 0, "{err}");
        bytes.push(std::fs::read(&ckpt).unwrap());
        let json = std::fs::read_to_string(&metrics).unwrap();
        acc.push(json_number(&json, "test_accuracy").unwrap());
    }
    assert_ne!(bytes[0], bytes[1], "the two runs took different kernels");
    assert!(
        (acc[0] - acc[1]).abs() < 0.01,
        "sparse {} vs dense {}",
        acc[0],
        acc[1]
    );
}

#[test]
fn usage_errors_exit_2_without_panicking() {
    let cases: &[(&[&str], &str)] = &[
        (&["train", "--bogus"], "unexpected argument '--bogus'"),
        (&["train", "--lr"], "a value is required for '--lr"),
        (
            &["train", "--lr", "NaN"],
            "'NaN' is not a finite number above 0",
        ),
        (
            &["train", "--lr", "-1"],
            "'-1' is not a finite number above 0",
        ),
        (
            &["train", "--lr", "0"],
            "'0' is not a finite number above 0",
        ),
        (
            &["train", "--batch", "0"],
            "'0' is not a whole number of at least 1",
        ),
        (
            &["train", "--epochs", "0"],
            "'0' is not a whole number of at least 1",
        ),
        (
            &["train", "--epochs", "many"],
            "invalid value 'many' for '--epochs",
        ),
        (&["train", "--task", "cats"], "possible values: digits, 3v7"),
        (&["train", "--augment", "9"], "'9' is not 0..=8"),
        (&["train", "--hidden", "12,x"], "wants positive widths"),
        (&["train", "--isa", "sse9"], "unknown --isa"),
        (&["eval"], "--model <FILE>"),
        (&["predict", "--model", "x"], "--index <N>|--image <FILE>"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
    ];
    for (args, msg) in cases {
        let (code, out, err) = run(args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(msg), "{args:?}: want '{msg}' in: {err}");
    }
}

#[test]
fn missing_or_bad_data_is_a_clear_error() {
    // Offline: support::ember() points the mirrors at a port that refuses.
    let dir = temp_dir("nodata");
    let (code, _, err) = run(&[
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--out",
        dir.join("x.ckpt").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("train-images-idx3-ubyte is not in")
            && err.contains(dir.to_str().unwrap())
            && err.contains("could not be downloaded (offline, or no mirror reachable)")
            && err.contains("127.0.0.1:9")
            && err.contains("--data DIR or set MNIST_DIR"),
        "{err}"
    );
    assert!(!dir.join("x.ckpt").exists());
    // A directory where a file should be.
    std::fs::create_dir(dir.join("train-images-idx3-ubyte")).unwrap();
    let (code, _, err) = run(&[
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--out",
        dir.join("x.ckpt").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("is a folder"), "{err}");
    // Truncated and corrupted files, each named in the message.
    let real = mnist_dir();
    let bad = temp_dir("baddata");
    for f in [
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::copy(real.join(format!("{f}.gz")), bad.join(format!("{f}.gz"))).unwrap();
    }
    let gz = std::fs::read(real.join("train-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(bad.join("train-images-idx3-ubyte.gz"), &gz[..gz.len() / 2]).unwrap();
    let (code, _, err) = run(&[
        "train",
        "--data",
        bad.to_str().unwrap(),
        "--out",
        bad.join("x.ckpt").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("train-images-idx3-ubyte.gz") && err.contains("gzip"),
        "{err}"
    );
    // Raw IDX with the wrong image count versus labels.
    let mut raw = vec![0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28];
    raw.extend(vec![0u8; 2 * 784]);
    std::fs::write(bad.join("train-images-idx3-ubyte"), &raw).unwrap();
    std::fs::remove_file(bad.join("train-images-idx3-ubyte.gz")).unwrap();
    let (code, _, err) = run(&[
        "train",
        "--data",
        bad.to_str().unwrap(),
        "--out",
        bad.join("x.ckpt").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("holds 2 images but") && err.contains("60000 labels"),
        "{err}"
    );
}

#[test]
fn outputs_are_checked_before_training_and_inputs_are_kept() {
    let data = mnist_dir();
    let dir = temp_dir("outs");
    let (code, _, err) = run(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        dir.join("missing/x.ckpt").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
    // Writing metrics onto the checkpoint path is refused before any work.
    let ck = dir.join("same.ckpt");
    std::fs::write(&ck, b"precious").unwrap();
    let (code, _, err) = run(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        ck.to_str().unwrap(),
        "--metrics",
        ck.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("names the same file"), "{err}");
    assert_eq!(std::fs::read(&ck).unwrap(), b"precious");
}

#[test]
fn damaged_checkpoints_are_refused_with_the_reason() {
    let data = mnist_dir();
    let dir = temp_dir("damaged");
    let ckpt = dir.join("ok.ckpt");
    let (code, _, err) = train_tiny(&data, &ckpt, "500", &[]);
    assert_eq!(code, 0, "{err}");
    let good = std::fs::read(&ckpt).unwrap();
    let check = |bytes: &[u8], want: &str| {
        let p = dir.join("bad.ckpt");
        std::fs::write(&p, bytes).unwrap();
        let (code, _, err) = run(&[
            "eval",
            "--model",
            p.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{want}");
        assert!(
            err.contains(want) && err.contains("bad.ckpt"),
            "want '{want}': {err}"
        );
    };
    check(&good[..good.len() - 10], "truncated or corrupted");
    let mut flipped = good.clone();
    flipped[100] ^= 0x10;
    check(&flipped, "checksum");
    let mut newer = good.clone();
    newer[8] = 9;
    check(&newer, "version 9");
    check(b"hello", "bad magic");
    let (code, _, err) = run(&[
        "eval",
        "--model",
        ckpt.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--task",
        "3v7",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("trained for task digits"), "{err}");
    assert!(Path::new(&ckpt).exists());
}

#[test]
fn closed_stdout_is_a_quiet_exit() {
    use std::process::Stdio;
    let data = mnist_dir();
    let dir = temp_dir("pipe");
    let ckpt = dir.join("p.ckpt");
    let (code, _, _) = train_tiny(&data, &ckpt, "300", &[]);
    assert_eq!(code, 0);
    let mut child = ember()
        .args([
            "eval",
            "--model",
            ckpt.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once
    let o = child.wait_with_output().unwrap();
    let (_, err) = text(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
}

#[test]
fn ctrl_c_stops_cleanly_and_a_kill_never_leaves_a_broken_checkpoint() {
    use std::time::{Duration, Instant};
    let data = mnist_dir();
    let dir = temp_dir("interrupt");
    let ckpt = dir.join("run.ckpt");
    let spawn = || {
        ember()
            .args([
                "train",
                "--data",
                data.to_str().unwrap(),
                "--hidden",
                "64",
                "--epochs",
                "500",
            ])
            .args([
                "--train-limit",
                "3000",
                "--out",
                ckpt.to_str().unwrap(),
                "--quiet",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let wait_for_checkpoint = || {
        let t0 = Instant::now();
        while !ckpt.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no checkpoint after 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // FAULTS 32: Ctrl-C stops after the current step, keeps a loadable checkpoint, exits 130.
    let child = spawn();
    wait_for_checkpoint();
    std::thread::sleep(Duration::from_millis(150));
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted") && !err.contains("panicked"),
        "{err}"
    );
    assert!(host::checkpoint::Checkpoint::load(&ckpt).is_ok());
    // FAULTS 34: killed at any moment while saving, the file on disk is whole.
    for (i, ms) in [30u64, 90, 170, 260, 410].into_iter().enumerate() {
        let mut child = spawn();
        std::thread::sleep(Duration::from_millis(ms + 40 * i as u64));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert!(
            host::checkpoint::Checkpoint::load(&ckpt).is_ok(),
            "after a kill at {ms} ms"
        );
    }
}

/// What a user of fastai/Keras expects of the CLI: `--version`, shell
/// completions, every default in `--help`, a fresh checkpoint name when
/// `--out` is not given, a validation split reported per epoch, and
/// `eval --top-losses` / `--most-confused` whose indices `predict` takes.
#[test]
fn the_cli_as_a_product() {
    let data = mnist_dir();
    let d = data.to_str().unwrap();
    let dir = temp_dir("product");
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("ember ") && out.contains(env!("CARGO_PKG_VERSION")),
        "{out}"
    );
    let (code, out, _) = run(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("complete") && out.contains("fine-tune"),
        "{out}"
    );
    let (code, out, _) = run(&["train", "--help"]);
    assert_eq!(code, 0);
    for default in [
        "[default: 8]",
        "[default: 256,128]",
        "[default: 0.1]",
        "[default: 64]",
    ] {
        assert!(out.contains(default), "{default} in\n{out}");
    }
    // Without --out: runs/digits-1.ckpt, then runs/digits-2.ckpt, never over.
    let train = |extra: &[&str]| {
        let o = ember()
            .current_dir(&dir)
            .args(["train", "--data", d, "--hidden", "16", "--epochs", "2"])
            .args(["--train-limit", "600", "--valid", "300"])
            .args(extra)
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "{out}{err}");
        out
    };
    let first = train(&["--metrics", "m.json"]);
    assert!(first.contains("checkpoint runs/digits-1.ckpt"), "{first}");
    let second = train(&[]);
    assert!(second.contains("checkpoint runs/digits-2.ckpt"), "{second}");
    assert!(dir.join("runs/digits-1.ckpt").is_file());
    // The validation split: 300 images, scored each epoch; test once at the end.
    assert!(
        first.contains("300 validation") && first.contains("valid_accuracy"),
        "{first}"
    );
    let m = json(&std::fs::read_to_string(dir.join("m.json")).unwrap());
    assert_eq!(m["hyperparameters"]["valid"], 300);
    assert_eq!(m["hyperparameters"]["train_examples"], 600);
    assert_eq!(m["epochs"].as_array().unwrap().len(), 2);
    assert!(m["epochs"][1]["valid_loss"].as_f64().unwrap() > 0.0);
    assert_eq!(m["test_n"], 10000);
    // Interpretation: the worst test images, by index, and the confusions.
    let ck = dir.join("runs/digits-1.ckpt");
    let (code, out, err) = run(&[
        "eval",
        "--data",
        d,
        "--model",
        ck.to_str().unwrap(),
        "--json",
        "--top-losses",
        "5",
        "--most-confused",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    let r = json(&out);
    let top = r["top_losses"].as_array().unwrap();
    assert_eq!(top.len(), 5);
    let losses: Vec<f64> = top.iter().map(|t| t["loss"].as_f64().unwrap()).collect();
    assert!(
        losses.windows(2).all(|w| w[0] >= w[1]),
        "worst first: {losses:?}"
    );
    assert!(top.iter().all(|t| t["label"] != t["predicted"]), "{out}");
    let mc = r["most_confused"].as_array().unwrap();
    assert_eq!(mc.len(), 3);
    assert!(mc[0]["count"].as_u64().unwrap() >= mc[2]["count"].as_u64().unwrap());
    // The index goes to predict, which shows that very image and its label.
    let i = top[0]["index"].as_u64().unwrap().to_string();
    let label = top[0]["label"].as_str().unwrap();
    let out = ok(&[
        "predict",
        "--data",
        d,
        "--model",
        ck.to_str().unwrap(),
        "--index",
        &i,
    ]);
    assert!(out.contains(&format!("(label {label})")), "{out}");
    let (code, out, _) = run(&[
        "eval",
        "--data",
        d,
        "--model",
        ck.to_str().unwrap(),
        "--most-confused",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("most confused"), "{out}");
}
