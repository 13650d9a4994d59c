//! The host as a hostile or careless user meets it: nothing a user had is
//! lost, nothing panics. One test per reproduction of the "nothing lost,
//! nothing panics" issue, and FAULTS.md items 37-48.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{ember, mnist_dir, run, temp_dir, text};

/// A writable copy of the MNIST files (the shared ones are read-only in CI).
fn data_copy(dir: &Path) -> PathBuf {
    let src = mnist_dir();
    let d = dir.join("mnist");
    std::fs::create_dir_all(&d).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
    }
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small, fast training run's flags.
const TINY: &[&str] = &["--hidden", "16", "--train-limit", "500", "--epochs", "1"];

/// A tiny trained checkpoint at `path`.
fn tiny_checkpoint(data: &Path, path: &Path) -> Vec<u8> {
    let (code, _, err) = run(&[
        &["train", "--data", s(data), "--out", s(path), "--quiet"],
        TINY,
    ]
    .concat());
    assert_eq!(code, 0, "{err}");
    std::fs::read(path).unwrap()
}

fn no_panic(err: &str) {
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

/// Every file below `dir` with its bytes, to show nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    v
}

/// Item 1, FAULTS 37: an output onto an input is refused before any work,
/// for every command and output flag; the input is intact.
#[test]
fn outputs_onto_inputs_are_refused_and_inputs_kept() {
    let dir = temp_dir("safety-onto");
    let data = data_copy(&dir);
    let ck = dir.join("m.ckpt");
    tiny_checkpoint(&data, &ck);
    let before = snapshot(&data);
    let ck_before = std::fs::read(&ck).unwrap();
    let label = data.join("t10k-labels-idx1-ubyte.gz");
    // The raw name is an input too, although only the .gz is there.
    let raw = data.join("train-images-idx3-ubyte");
    let d = s(&data);
    let cases: Vec<Vec<&str>> = vec![
        vec!["train", "--data", d, "--out", s(&label)],
        vec!["train", "--data", d, "--out", s(&raw)],
        vec![
            "train",
            "--data",
            d,
            "--out",
            "x.ckpt",
            "--metrics",
            s(&label),
        ],
        vec!["export", "--data", d, "--model", s(&ck), "--out", s(&ck)],
        vec!["export", "--data", d, "--model", s(&ck), "--out", s(&label)],
        vec![
            "export",
            "--data",
            d,
            "--model",
            s(&ck),
            "--c-header",
            s(&label),
        ],
        vec!["lr-find", "--data", d, "--plot", s(&label)],
        vec!["lr-find", "--data", d, "--from", s(&ck), "--plot", s(&ck)],
        vec!["fine-tune", "--data", d, "--from", s(&ck), "--out", s(&ck)],
        vec![
            "fine-tune",
            "--data",
            d,
            "--from",
            s(&ck),
            "--out",
            "y.ckpt",
            "--metrics",
            s(&ck),
        ],
    ];
    for args in cases {
        let t0 = Instant::now();
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("which this command reads"), "{args:?}: {err}");
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{args:?}: refused only after work"
        );
        no_panic(&err);
    }
    assert_eq!(snapshot(&data), before, "the MNIST files are untouched");
    assert_eq!(std::fs::read(&ck).unwrap(), ck_before);
    assert!(!Path::new("x.ckpt").exists() && !Path::new("y.ckpt").exists());
}

/// Item 2, FAULTS 37: two outputs naming one file, existing or not.
#[test]
fn two_outputs_naming_one_file_are_refused() {
    let dir = temp_dir("safety-twice");
    let data = mnist_dir();
    let ck = dir.join("m.ckpt");
    tiny_checkpoint(&data, &ck);
    let z = dir.join("z.ckpt");
    let z_dots = dir.join("sub/../z.ckpt");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let w = dir.join("w.bin");
    let d = s(&data);
    for args in [
        vec!["train", "--data", d, "--out", s(&z), "--metrics", s(&z)],
        vec![
            "train",
            "--data",
            d,
            "--out",
            s(&z),
            "--metrics",
            s(&z_dots),
        ],
        vec![
            "export",
            "--data",
            d,
            "--model",
            s(&ck),
            "--out",
            s(&w),
            "--rust",
            s(&w),
        ],
        vec![
            "export",
            "--data",
            d,
            "--model",
            s(&ck),
            "--out",
            s(&w),
            "--c-header",
            s(&w),
        ],
        vec![
            "export",
            "--data",
            d,
            "--model",
            s(&ck),
            "--c-header",
            s(&w),
            "--rust",
            s(&w),
        ],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("names the same file"), "{args:?}: {err}");
    }
    assert!(!z.exists() && !w.exists(), "nothing written");
    // A hard link to an existing output is the same file too.
    std::fs::write(&z, b"old").unwrap();
    std::fs::hard_link(&z, dir.join("hard.json")).unwrap();
    let (code, _, err) = run(&[
        "train",
        "--data",
        d,
        "--out",
        s(&z),
        "--metrics",
        s(&dir.join("hard.json")),
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read(&z).unwrap(), b"old");
}

/// Item 3, FAULTS 38: a symlinked output is written through and stays a
/// link; device nodes, FIFOs and /dev/stdout are refused ('-' is stdout).
#[test]
fn symlinks_are_written_through_and_special_files_refused() {
    let dir = temp_dir("safety-links");
    let data = mnist_dir();
    let real = dir.join("real");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::write(real.join("m.ckpt"), b"old").unwrap();
    let link = dir.join("link.ckpt");
    std::os::unix::fs::symlink("real/m.ckpt", &link).unwrap();
    let metrics = dir.join("metrics.json");
    let (code, _, err) = run(&[
        &[
            "train",
            "--data",
            s(&data),
            "--out",
            s(&link),
            "--metrics",
            s(&metrics),
            "--quiet",
        ],
        TINY,
    ]
    .concat());
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(host::checkpoint::Checkpoint::load(&real.join("m.ckpt")).is_ok());
    // Special files.
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for (flag, p) in [
        ("--metrics", "/dev/stdout"),
        ("--metrics", "/dev/null"),
        ("--out", "/dev/null"),
        ("--out", s(&fifo)),
        ("--metrics", "/proc/self/fd/1"),
    ] {
        let x = dir.join("x.ckpt");
        let mut args = vec!["train", "--data", s(&data), flag, p];
        if flag != "--out" {
            args.extend(["--out", s(&x)]);
        }
        let (code, _, err) = run(&[&args[..], TINY].concat());
        assert_eq!(code, 2, "{flag} {p}: {err}");
        assert!(err.contains("not a regular file"), "{flag} {p}: {err}");
    }
    assert!(!dir.join("x.ckpt").exists());
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    // '-' sends the metrics JSON to stdout.
    let (code, out, err) = run(&[
        &[
            "train",
            "--data",
            s(&data),
            "--out",
            s(&dir.join("y.ckpt")),
            "--metrics",
            "-",
            "--quiet",
        ],
        TINY,
    ]
    .concat());
    assert_eq!(code, 0, "{err}");
    let json = out.trim();
    assert!(
        json.starts_with('{') && json.ends_with('}'),
        "only the JSON on stdout: {out}"
    );
    assert!(json.contains("\"test_accuracy\""), "{out}");
    assert!(err.contains("done:"), "the human lines go to stderr: {err}");
}

/// Sends SIGINT to a child.
fn sigint(child: &Child) {
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Spawns `ember args` with stdout piped, waits for a stdout line that
/// contains `marker`, sends SIGINT, and returns the output.
fn interrupt_at(args: &[&str], marker: &str) -> Output {
    let mut child = ember()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = String::new();
    let t0 = Instant::now();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(marker) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no '{marker}' in\n{seen}"
        );
    }
    sigint(&child);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let mut o = child.wait_with_output().unwrap();
    seen.push_str(&rest.join("\n"));
    o.stdout = seen.into_bytes();
    o
}

/// The epoch `--out` holds according to the interrupt message.
fn held_epoch(err: &str) -> Option<usize> {
    let at = err.find("holds the model of epoch ")?;
    let rest = &err[at + "holds the model of epoch ".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Item 4, FAULTS 39: Ctrl-C in training keeps the last complete epoch's
/// model (bit for bit the model of a run of that many epochs), says which,
/// and exits 130; before any epoch completes, the old file is untouched.
#[test]
fn ctrl_c_in_training_keeps_the_last_complete_epoch() {
    let dir = temp_dir("safety-ctrlc");
    let data = mnist_dir();
    let out = dir.join("r.ckpt");
    std::fs::write(&out, b"the user's good checkpoint").unwrap();
    let base = [
        "train",
        "--data",
        s(&data),
        "--hidden",
        "32",
        "--train-limit",
        "2000",
        "--threads",
        "1",
        "--schedule",
        "constant",
        "--out",
        s(&out),
    ];
    let o = interrupt_at(&[&base[..], &["--epochs", "1000"]].concat(), "epoch   2");
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    no_panic(&err);
    let n = held_epoch(&err).unwrap_or_else(|| panic!("no epoch named: {err}"));
    assert!(n >= 2, "{err}");
    assert!(
        err.contains(&format!("interrupted in epoch {}", n + 1)),
        "{err}"
    );
    let reference = dir.join("ref.ckpt");
    let e = n.to_string();
    let (code, _, rerr) = run(&[
        &base[..11],
        &["--out", s(&reference), "--epochs", &e, "--quiet"],
    ]
    .concat());
    assert_eq!(code, 0, "{rerr}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&reference).unwrap(),
        "--out holds exactly the model of epoch {n}"
    );

    // Interrupted inside the first epoch (a wide model, one thread): the
    // user's file is untouched, and the message says so.
    std::fs::write(&out, b"the user's good checkpoint").unwrap();
    let o = interrupt_at(
        &[
            "train",
            "--data",
            s(&data),
            "--hidden",
            "512,256",
            "--batch",
            "32",
            "--threads",
            "1",
            "--epochs",
            "5",
            "--out",
            s(&out),
        ],
        "data:",
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("no epoch completed") && err.contains("was not written"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"the user's good checkpoint");
}

/// Item 4: fine-tune stops in phase 1 (no phase 2), with exit 130.
#[test]
fn ctrl_c_in_fine_tune_stops_both_phases() {
    let dir = temp_dir("safety-ctrlc-ft");
    let data = mnist_dir();
    let body = dir.join("body.ckpt");
    tiny_checkpoint(&data, &body);
    let out = dir.join("ft.ckpt");
    let o = interrupt_at(
        &[
            "fine-tune",
            "--data",
            s(&data),
            "--from",
            s(&body),
            "--task",
            "3v7",
            "--train-limit",
            "400",
            "--freeze-epochs",
            "5000",
            "--epochs",
            "5",
            "--out",
            s(&out),
        ],
        "frozen   epoch   2",
    );
    let (stdout, err) = text(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(!stdout.contains("phase 2"), "{stdout}");
    let n = held_epoch(&err).unwrap_or_else(|| panic!("{err}"));
    assert!(n >= 2, "{err}");
    assert!(host::checkpoint::Checkpoint::load(&out).is_ok());
}

/// Runs `args`, sending SIGINT `delay` after the start; retried with other
/// delays when the command finished first (or had not installed its handler
/// yet), since only the outcome of an interrupted run is tested.
fn interrupted_run(args: &[&str]) -> Output {
    for ms in [150u64, 60, 300, 30, 500] {
        let child = ember()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let o = child.wait_with_output().unwrap();
        if o.status.code() == Some(130) {
            return o;
        }
    }
    panic!("ember {args:?} was never seen interrupted");
}

/// Item 4: lr-find, eval and export stop at Ctrl-C with 130 and write nothing.
#[test]
fn ctrl_c_stops_lr_find_eval_and_export() {
    let dir = temp_dir("safety-ctrlc-other");
    let data = mnist_dir();
    let ck = dir.join("m.ckpt");
    tiny_checkpoint(&data, &ck);
    let plot = dir.join("p.svg");
    let blob = dir.join("m.bin");
    for args in [
        vec![
            "lr-find",
            "--data",
            s(&data),
            "--num",
            "100000",
            "--plot",
            s(&plot),
        ],
        vec!["eval", "--data", s(&data), "--model", s(&ck)],
        vec![
            "export",
            "--data",
            s(&data),
            "--model",
            s(&ck),
            "--out",
            s(&blob),
            "--calib",
            "60000",
        ],
    ] {
        let o = interrupted_run(&args);
        let (_, err) = text(&o);
        assert!(err.contains("interrupted"), "{args:?}: {err}");
        no_panic(&err);
    }
    assert!(!plot.exists() && !blob.exists(), "nothing written");
}

/// Item 5, FAULTS 40: a diverging run stops at the first non-finite loss,
/// names the step and suggests a smaller rate; the old file is kept.
#[test]
fn a_diverging_run_stops_and_keeps_the_old_file() {
    let dir = temp_dir("safety-nan");
    let data = mnist_dir();
    let out = dir.join("good.ckpt");
    let good = tiny_checkpoint(&data, &out);
    let (code, _, err) = run(&[
        &[
            "train",
            "--data",
            s(&data),
            "--out",
            s(&out),
            "--lr",
            "1e30",
        ],
        TINY,
    ]
    .concat());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("diverged") && err.contains("step") && err.contains("smaller --lr"),
        "{err}"
    );
    assert!(err.contains("was not written"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), good);
}

fn recrc(b: &mut [u8]) {
    let n = b.len();
    let crc = ember::crc32::crc32(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

/// Items 6, 7 and 15, FAULTS 41 and 45: forged blobs and checkpoints (valid
/// CRCs) are refused by every command that reads them, with the field named.
#[test]
fn forged_models_are_refused_by_every_command() {
    let dir = temp_dir("safety-forged");
    let data = mnist_dir();
    let d = s(&data);
    let ck = dir.join("m.ckpt");
    let good = tiny_checkpoint(&data, &ck);
    let blob = dir.join("m.bin");
    let (code, _, err) = run(&[
        "export",
        "--data",
        d,
        "--model",
        s(&ck),
        "--out",
        s(&blob),
        "--calib",
        "100",
    ]);
    assert_eq!(code, 0, "{err}");
    let gblob = std::fs::read(&blob).unwrap();

    // A blob whose task says one output while it has ten.
    let mut b = gblob.clone();
    b[16] = 1;
    recrc(&mut b);
    let bad = dir.join("task.bin");
    std::fs::write(&bad, &b).unwrap();
    for args in [
        vec!["eval", "--data", d, "--model", s(&bad)],
        vec!["predict", "--data", d, "--model", s(&bad), "--index", "0"],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("task at byte 16 is 1"), "{err}");
        no_panic(&err);
    }
    // A layer output zero point out of range: field, value and rule named.
    let mut b = gblob.clone();
    let layers = b[18] as usize;
    let e = 64 + 48 * (layers - 1);
    b[e + 16..e + 20].copy_from_slice(&300i32.to_le_bytes());
    recrc(&mut b);
    std::fs::write(&bad, &b).unwrap();
    let (code, _, err) = run(&["eval", "--data", d, "--model", s(&bad)]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("layer {} output zero point", layers - 1))
            && err.contains("is 300")
            && err.contains("-128..=127"),
        "{err}"
    );

    // A checkpoint declaring 2^62 parameters with none present.
    let layers = good[11] as usize;
    let count_at = 12 + 4 * (layers + 1);
    let mut c = good[..count_at + 8].to_vec();
    c[count_at..count_at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    c.extend_from_slice(&[0; 4]);
    recrc(&mut c);
    let forged = dir.join("forged.ckpt");
    std::fs::write(&forged, &c).unwrap();
    // And one with a valid CRC but 20 outputs for the digits task.
    let mut w = good.clone();
    let last = 12 + 4 * layers;
    w[last..last + 4].copy_from_slice(&20u32.to_le_bytes());
    recrc(&mut w);
    let wide = dir.join("wide.ckpt");
    std::fs::write(&wide, &w).unwrap();
    for (model, want) in [(&forged, "parameters"), (&wide, "20 outputs")] {
        let m = s(model);
        let out = dir.join("o.ckpt");
        let bin = dir.join("o.bin");
        for args in [
            vec!["eval", "--data", d, "--model", m],
            vec!["predict", "--data", d, "--model", m, "--index", "3"],
            vec![
                "export",
                "--data",
                d,
                "--model",
                m,
                "--f32",
                "--out",
                s(&bin),
            ],
            vec!["export", "--data", d, "--model", m, "--out", s(&bin)],
            vec!["lr-find", "--data", d, "--from", m, "--num", "5"],
            vec!["fine-tune", "--data", d, "--from", m, "--out", s(&out)],
        ] {
            let t0 = Instant::now();
            let (code, _, err) = run(&args);
            assert_eq!(code, 1, "{args:?}: {err}");
            assert!(err.contains(want), "{args:?}: want '{want}': {err}");
            assert!(t0.elapsed() < Duration::from_secs(10));
            no_panic(&err);
        }
        assert!(!out.exists() && !bin.exists());
    }
}

/// Item 8, FAULTS 42: arguments are OS strings: a path that is not UTF-8
/// is used as it is (a model is trained and saved under that name, a
/// missing one is named in the error), never a panic.
#[test]
fn non_utf8_paths_are_handled() {
    use std::os::unix::ffi::OsStrExt;
    let dir = temp_dir("safety-utf8");
    let data = mnist_dir();
    let name = std::ffi::OsStr::from_bytes(b"\xff.ckpt");
    let path = dir.join(name);
    let o = ember()
        .args(["train", "--data", s(&data), "--quiet"])
        .args(TINY)
        .arg("--out")
        .arg(&path)
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(host::checkpoint::Checkpoint::load(&path).is_ok());
    let o = ember()
        .args(["eval", "--data", s(&data), "--model"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let missing = dir.join(std::ffi::OsStr::from_bytes(b"\xfe.ckpt"));
    let o = ember()
        .args(["eval", "--model"])
        .arg(&missing)
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot read") && err.contains(".ckpt"),
        "{err}"
    );
    no_panic(&err);
    // A non-UTF-8 value where text is expected is a usage error.
    let o = ember()
        .args(["train", "--task"])
        .arg(name)
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    no_panic(&err);
}

/// Item 9, FAULTS 43: a closed or full stdout is a quiet exit for every
/// command, and a training run still finishes and saves.
#[test]
fn closed_or_full_stdout_never_panics() {
    let dir = temp_dir("safety-pipe");
    let data = mnist_dir();
    let run_closed = |args: &[&str]| {
        let mut child = ember()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone: `| true`
        child.wait_with_output().unwrap()
    };
    let ck = dir.join("pipe.ckpt");
    let train = [&["train", "--data", s(&data), "--out", s(&ck)], TINY].concat();
    let eval = ["eval", "--data", s(&data), "--model", s(&ck)];
    let cases: Vec<Vec<&str>> = vec![
        vec!["help"],
        vec!["train", "--help"],
        vec!["export", "--help"],
        vec!["download", "--data", s(&data)],
        train.clone(),
    ];
    for args in &cases {
        let o = run_closed(args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        no_panic(&err);
    }
    assert!(
        host::checkpoint::Checkpoint::load(&ck).is_ok(),
        "the run saved"
    );
    let o = run_closed(&eval);
    assert_eq!(o.status.code(), Some(0));
    // A full device: an error, no panic; a training run still saves.
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let o = ember().arg("help").stdout(full()).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write to standard output"), "{err}");
    no_panic(&err);
    let ck2 = dir.join("full.ckpt");
    let o = ember()
        .args([&["train", "--data", s(&data), "--out", s(&ck2)], TINY].concat())
        .stdout(full())
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(host::checkpoint::Checkpoint::load(&ck2).is_ok());
}

/// Items 10 and 11, FAULTS 44: a run that cannot fit in memory is refused
/// up front with the estimate; --threads above the cores is capped.
#[test]
fn absurd_sizes_are_refused_up_front_and_threads_capped() {
    let data = mnist_dir();
    let dir = temp_dir("safety-sizes");
    for hidden in ["4294967296", "7500000", "100000,100000"] {
        let t0 = Instant::now();
        let (code, _, err) = run(&[
            "train",
            "--data",
            s(&data),
            "--hidden",
            hidden,
            "--out",
            s(&dir.join("x.ckpt")),
        ]);
        assert_eq!(code, 1, "{hidden}: {err}");
        assert!(
            err.contains("GiB") && err.contains("narrower --hidden"),
            "{err}"
        );
        assert!(t0.elapsed() < Duration::from_secs(5));
        no_panic(&err);
    }
    let (code, _, err) = run(&[
        "train",
        "--data",
        s(&data),
        "--batch",
        "1000000000000",
        "--out",
        s(&dir.join("x.ckpt")),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("smaller --batch"), "{err}");
    let cores = std::thread::available_parallelism().unwrap().get();
    let (code, out, err) = run(&[
        &[
            "train",
            "--data",
            s(&data),
            "--out",
            s(&dir.join("t.ckpt")),
            "--threads",
            "64",
        ],
        TINY,
    ]
    .concat());
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("using {cores}")), "{err}");
    assert!(out.contains(&format!("{cores} threads")), "{out}");
}

/// Item 12, FAULTS 45: huge, endless or special model and image files are
/// refused from their header, without reading them whole.
#[test]
fn huge_or_endless_files_are_refused_unread() {
    let dir = temp_dir("safety-huge");
    let data = mnist_dir();
    let ck = dir.join("m.ckpt");
    let good = tiny_checkpoint(&data, &ck);
    // A 3 GB sparse file behind a valid checkpoint header.
    let huge = dir.join("huge.ckpt");
    {
        let f = std::fs::File::create(&huge).unwrap();
        use std::io::Write;
        (&f).write_all(&good[..64]).unwrap();
        f.set_len(3 << 30).unwrap();
    }
    let blob_huge = dir.join("huge.bin");
    {
        let f = std::fs::File::create(&blob_huge).unwrap();
        use std::io::Write;
        let mut h = b"EMBRBLOB\x01\x00\x00\x00".to_vec();
        h.extend_from_slice(&1000u32.to_le_bytes());
        (&f).write_all(&h).unwrap();
        f.set_len(3 << 30).unwrap();
    }
    for (model, want) in [
        (huge.as_path(), "the file has"),
        (blob_huge.as_path(), "the file has"),
        (Path::new("/dev/zero"), "not a regular file"),
    ] {
        for extra in [&[][..], &["--index", "0"][..]] {
            let cmd = if extra.is_empty() { "eval" } else { "predict" };
            let t0 = Instant::now();
            let (code, _, err) =
                run(&[&[cmd, "--data", s(&data), "--model", s(model)], extra].concat());
            assert_eq!(code, 1, "{cmd} {model:?}: {err}");
            assert!(err.contains(want), "{cmd} {model:?}: want '{want}': {err}");
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "{model:?} read whole"
            );
        }
    }
    let (code, _, err) = run(&["predict", "--model", s(&ck), "--image", "/dev/zero"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

/// Item 13, FAULTS 46: every argument is checked before any work or write.
#[test]
fn bad_arguments_are_refused_before_any_work() {
    let dir = temp_dir("safety-args");
    let data = mnist_dir();
    let ck = dir.join("m.ckpt");
    tiny_checkpoint(&data, &ck);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let d = s(&data);
    let blob = dir.join("e.bin");
    let header = dir.join("e.h");
    let sub_slash = format!("{}/", s(&dir.join("sub")));
    for args in [
        vec!["train", "--data", d, "--out", ""],
        vec!["train", "--data", d, "--out", &sub_slash],
        vec!["train", "--data", d, "--out", s(&dir.join("sub"))],
        vec!["train", "--data", d, "--out", s(&dir.join("none/x.ckpt"))],
        vec![
            "train",
            "--data",
            d,
            "--out",
            s(&dir.join("y.ckpt")),
            "--metrics",
            "",
        ],
        vec![
            "export",
            "--data",
            d,
            "--model",
            s(&ck),
            "--out",
            s(&blob),
            "--c-header",
            s(&header),
            "--vectors",
            s(&dir.join("v")),
            "--vectors-count",
            "0",
        ],
        vec![
            "export",
            "--data",
            d,
            "--model",
            s(&ck),
            "--out",
            s(&blob),
            "--vectors",
            s(&dir.join("v")),
            "--f32",
        ],
        vec!["export", "--data", d, "--model", s(&ck), "--out", ""],
        vec!["lr-find", "--data", d, "--plot", ""],
    ] {
        let t0 = Instant::now();
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "{args:?}: refused only after work"
        );
        no_panic(&err);
    }
    assert!(!blob.exists() && !header.exists(), "nothing written");
}

/// Item 14, FAULTS 47: eval and predict work offline with only the two test
/// files (the test binary's mirrors refuse every connection).
#[test]
fn eval_and_predict_need_only_the_test_files() {
    let dir = temp_dir("safety-t10k");
    let data = mnist_dir();
    let ck = dir.join("m.ckpt");
    tiny_checkpoint(&data, &ck);
    let t10k = dir.join("t10k");
    std::fs::create_dir_all(&t10k).unwrap();
    for f in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let src = [data.join(f), data.join(format!("{f}.gz"))]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap();
        std::fs::copy(&src, t10k.join(src.file_name().unwrap())).unwrap();
    }
    let (code, out, err) = run(&["eval", "--data", s(&t10k), "--model", s(&ck)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("accuracy"), "{out}");
    let (code, out, err) = run(&[
        "predict",
        "--data",
        s(&t10k),
        "--model",
        s(&ck),
        "--index",
        "7",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("prediction"), "{out}");
    assert!(!err.contains("download"), "{err}");
}

/// Item 15: an unreadable or special data path is named as such, never
/// reported as a failed download.
#[test]
fn unusable_data_paths_are_named() {
    let dir = temp_dir("safety-datapath");
    let data = mnist_dir();
    let ck = dir.join("m.ckpt");
    tiny_checkpoint(&data, &ck);
    let d = dir.join("d");
    std::fs::create_dir_all(&d).unwrap();
    assert!(Command::new("mkfifo")
        .arg(d.join("t10k-images-idx3-ubyte"))
        .status()
        .unwrap()
        .success());
    let (code, _, err) = run(&["eval", "--data", s(&d), "--model", s(&ck)]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("special file") && err.contains("t10k-images-idx3-ubyte"),
        "{err}"
    );
    assert!(
        !err.contains("offline") && !err.contains("downloaded"),
        "{err}"
    );
    // A file where the data folder should be.
    let (code, _, err) = run(&["eval", "--data", s(&ck), "--model", s(&ck)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not a folder"), "{err}");
}
