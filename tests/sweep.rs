//! A randomized sweep of the CLI for a bounded time: blob and checkpoint
//! mutations with valid CRCs, every flag of every command with absurd
//! values, and SIGINT / SIGKILL at random moments during a save, each
//! checked against the rule that nothing panics and nothing a user had is
//! lost. `EMBER_SWEEP_SECONDS` sets the budget (default 20; CI gives more),
//! `EMBER_SWEEP_SEED` replays a run (the seed is printed).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{ember, mnist_dir, temp_dir, text};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

fn budget() -> Duration {
    let s = std::env::var("EMBER_SWEEP_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20u64);
    Duration::from_secs(s)
}

fn seed() -> u64 {
    let s = std::env::var("EMBER_SWEEP_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1;
    eprintln!("sweep seed {s} (EMBER_SWEEP_SEED={s} replays it)");
    s
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs ember in `cwd` with a deadline; past it, SIGINT, then SIGKILL.
fn run_bounded(cwd: &Path, args: &[String], limit: Duration) -> Output {
    let child = ember()
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    if let Ok(o) = rx.recv_timeout(limit) {
        return o.unwrap();
    }
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    if let Ok(o) = rx.recv_timeout(Duration::from_secs(20)) {
        return o.unwrap();
    }
    let _ = Command::new("kill").args(["-KILL", &pid]).status();
    rx.recv().unwrap().unwrap()
}

/// The rule for every run: an exit code (no signal death), never 101 or a
/// panic message.
fn sane(o: &Output, what: &str) {
    let (_, err) = text(o);
    let code = o.status.code();
    assert!(
        matches!(code, Some(0 | 1 | 2 | 130)),
        "{what}: exit {:?}\n{err}",
        o.status
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
}

fn recrc(b: &mut [u8]) {
    let n = b.len();
    if n >= 4 {
        let crc = ember::crc32::crc32(&b[..n - 4]);
        b[n - 4..].copy_from_slice(&crc.to_le_bytes());
    }
}

fn mutate(rng: &mut Rng, good: &[u8]) -> Vec<u8> {
    let mut b = good.to_vec();
    match rng.below(4) {
        0 => {
            // A few random bytes anywhere.
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
        }
        1 => {
            // A header or table field set to an extreme 32-bit value.
            let i = rng.below(b.len().min(64 + 48 * 4).saturating_sub(4)) & !3;
            let v = *rng.pick(&[
                0u32,
                1,
                0x7fff_ffff,
                0x8000_0000,
                u32::MAX,
                65536,
                65537,
                10,
                784,
            ]);
            b[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        2 => {
            // Truncated or extended.
            let n = rng.below(b.len() + 64);
            b.resize(n, rng.next() as u8);
        }
        _ => {
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
        }
    }
    if rng.below(4) != 0 {
        recrc(&mut b); // most forgeries get past the checksum
    }
    b
}

#[test]
fn sweep() {
    let data = mnist_dir();
    let dir = temp_dir("sweep");
    let mut rng = Rng(seed());
    let t_end = Instant::now() + budget();
    let d = data.to_str().unwrap().to_string();

    // A good checkpoint and blob to mutate.
    let ck = dir.join("good.ckpt");
    let blob = dir.join("good.bin");
    let args = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let o = run_bounded(
        &dir,
        &args(&[
            "train",
            "--data",
            &d,
            "--hidden",
            "16",
            "--train-limit",
            "500",
            "--epochs",
            "1",
            "--out",
            s(&ck),
            "--quiet",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let o = run_bounded(
        &dir,
        &args(&[
            "export",
            "--data",
            &d,
            "--model",
            s(&ck),
            "--out",
            s(&blob),
            "--calib",
            "100",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    // And the same body with a trainable head (blob format 1.1).
    let head_blob = dir.join("good-head.bin");
    let o = run_bounded(
        &dir,
        &args(&[
            "export",
            "--data",
            &d,
            "--model",
            s(&ck),
            "--out",
            s(&head_blob),
            "--calib",
            "100",
            "--trainable-head",
            "--head-task",
            "3v7",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let good_ck = std::fs::read(&ck).unwrap();
    let good_blob = std::fs::read(&blob).unwrap();
    let good_head = std::fs::read(&head_blob).unwrap();

    let absurd: &[&str] = &[
        "",
        "0",
        "-1",
        "1e309",
        "NaN",
        "inf",
        "-inf",
        "1e-45",
        "18446744073709551616",
        "4294967296",
        "99999999",
        "-",
        "/",
        "/dev/zero",
        "/dev/null",
        "x/",
        "..",
        ",",
        "3,,4",
        "0,0",
        "digits",
        "3v7",
        "auto",
        "none",
        "\u{7f}",
        "é",
        "--epochs",
        "a b",
    ];
    let commands: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        (
            "train",
            vec![
                "--data",
                &d,
                "--hidden",
                "8",
                "--train-limit",
                "200",
                "--epochs",
                "1",
                "--out",
                "o.ckpt",
            ],
            vec![
                "task",
                "hidden",
                "epochs",
                "batch",
                "lr",
                "optimizer",
                "momentum",
                "weight-decay",
                "schedule",
                "seed",
                "augment",
                "train-limit",
                "threads",
                "isa",
                "out",
                "metrics",
            ],
        ),
        (
            "fine-tune",
            vec![
                "--data",
                &d,
                "--from",
                "good.ckpt",
                "--train-limit",
                "200",
                "--epochs",
                "1",
                "--freeze-epochs",
                "1",
                "--out",
                "f.ckpt",
            ],
            vec![
                "task",
                "epochs",
                "freeze-epochs",
                "lr-mult",
                "groups",
                "batch",
                "lr",
                "out",
                "metrics",
                "from",
            ],
        ),
        (
            "fine-tune",
            vec![
                "--on-device-sim",
                "",
                "--data",
                &d,
                "--from",
                "good.ckpt",
                "--task",
                "3v7",
                "--lr",
                "0.01",
                "--epochs",
                "3",
                "--out",
                "sim.bin",
            ],
            vec![
                "task",
                "epochs",
                "batch",
                "lr",
                "momentum",
                "train-limit",
                "out",
                "metrics",
                "from",
                "vectors",
                "vectors-count",
            ],
        ),
        (
            "export",
            vec![
                "--trainable-head",
                "",
                "--data",
                &d,
                "--model",
                "good.ckpt",
                "--out",
                "th.bin",
                "--calib",
                "50",
            ],
            vec!["head-task", "out", "calib", "seed", "board", "json"],
        ),
        (
            "lr-find",
            vec![
                "--data",
                &d,
                "--hidden",
                "8",
                "--train-limit",
                "200",
                "--num",
                "10",
            ],
            vec![
                "start-lr", "end-lr", "num", "batch", "hidden", "from", "plot", "task",
            ],
        ),
        (
            "export",
            vec![
                "--data",
                &d,
                "--model",
                "good.ckpt",
                "--out",
                "e.bin",
                "--calib",
                "50",
            ],
            vec![
                "out",
                "c-header",
                "rust",
                "name",
                "calib",
                "percentile",
                "vectors",
                "vectors-count",
                "seed",
                "model",
            ],
        ),
        (
            "eval",
            vec!["--data", &d, "--model", "good.bin"],
            vec!["model", "task", "threads", "data"],
        ),
        (
            "predict",
            vec!["--data", &d, "--model", "good.ckpt", "--index", "1"],
            vec!["index", "image", "model"],
        ),
    ];

    let (mut n_parse, mut n_cli, mut n_flags, mut n_kill) = (0, 0, 0, 0);
    let mut round = 0usize;
    while Instant::now() < t_end {
        round += 1;
        // 1. In-process: many mutants through the parsers.
        for k in 0..200 {
            let m = mutate(&mut rng, if k % 2 == 0 { &good_blob } else { &good_head });
            let mut aligned = vec![0u8; m.len() + 16];
            let off = (16 - aligned.as_ptr() as usize % 16) % 16;
            aligned[off..off + m.len()].copy_from_slice(&m);
            if let Ok(model) = ember::blob::parse(&aligned[off..off + m.len()]) {
                // An accepted mutant with a head computes its features and
                // trains a step without panicking.
                let mut scratch = vec![0u8; model.scratch_bytes()];
                let mut f = vec![0.0f32; model.feature_len()];
                let px = vec![77u8; model.input_len()];
                if model.features(&px, &mut scratch, &mut f).is_ok() {
                    let mut state = vec![0.0f32; ember::head::state_len(&model)];
                    if let Ok(mut t) = ember::head::HeadTrainer::new(&model, &mut state) {
                        let _ = t.step(&f, &[1], 0.01, 0.9);
                    }
                }
            }
            let c = mutate(&mut rng, &good_ck);
            let _ = host::checkpoint::Checkpoint::from_bytes(&c);
            n_parse += 2;
        }
        // 2. Through the CLI: a mutant blob and checkpoint, eval and predict.
        for (good, name) in [
            (&good_blob, "m.bin"),
            (&good_head, "h.bin"),
            (&good_ck, "m.ckpt"),
        ] {
            let m = mutate(&mut rng, good);
            std::fs::write(dir.join(name), &m).unwrap();
            let cmd = *rng.pick(&["eval", "predict"]);
            let mut a = args(&[cmd, "--data", &d, "--model", name]);
            if cmd == "predict" {
                a.extend(args(&["--index", "5"]));
            }
            let o = run_bounded(&dir, &a, Duration::from_secs(30));
            sane(&o, &format!("{a:?} on a mutant"));
            n_cli += 1;
        }
        // 3. One flag of one command with an absurd value; the inputs are
        // checked unchanged afterwards.
        let (cmd, base, flags) = rng.pick(&commands);
        let flag = *rng.pick(flags);
        let mut value = *rng.pick(absurd);
        if flag == "vectors" && (value == "/" || value == "..") {
            // A folder output outside the sweep's own folder: taken at its
            // word by export, so not thrown at this machine's root.
            value = "x/";
        }
        let mut a = args(&[cmd]);
        let mut i = 0;
        while i < base.len() {
            if base[i] != format!("--{flag}") {
                a.push(base[i].to_string());
                // An empty value marks a switch (`--on-device-sim`).
                if !base[i + 1].is_empty() {
                    a.push(base[i + 1].to_string());
                }
            }
            i += 2;
        }
        a.push(format!("--{flag}"));
        a.push(value.to_string());
        let o = run_bounded(&dir, &a, Duration::from_secs(8));
        sane(&o, &format!("{a:?}"));
        assert_eq!(
            std::fs::read(&ck).unwrap(),
            good_ck,
            "{a:?} changed an input"
        );
        assert_eq!(
            std::fs::read(&blob).unwrap(),
            good_blob,
            "{a:?} changed an input"
        );
        n_flags += 1;

        // 4. SIGINT or SIGKILL at a random moment of a run that saves over
        // an existing file: afterwards the file is the old one, or a whole
        // checkpoint.
        let target = dir.join("victim.ckpt");
        std::fs::write(&target, &good_ck).unwrap();
        let child = ember()
            .args(args(&[
                "train",
                "--data",
                &d,
                "--hidden",
                "24",
                "--train-limit",
                "1500",
                "--epochs",
                "4",
                "--threads",
                "1",
                "--out",
                s(&target),
                "--quiet",
            ]))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(900) as u64));
        let sig = if rng.below(2) == 0 { "-INT" } else { "-KILL" };
        let _ = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status();
        let o = child.wait_with_output().unwrap();
        let (_, err) = text(&o);
        assert!(!err.contains("panicked"), "{err}");
        let now = std::fs::read(&target).unwrap();
        if now != good_ck {
            let c = host::checkpoint::Checkpoint::from_bytes(&now);
            assert!(c.is_ok(), "{sig}: {:?} left a broken file: {err}", c.err());
        }
        if sig == "-INT" && o.status.code() == Some(130) {
            assert!(err.contains("interrupted in epoch"), "{err}");
            if err.contains("was not written") {
                assert_eq!(now, good_ck, "said untouched but changed: {err}");
            }
        }
        n_kill += 1;
    }
    eprintln!(
        "sweep: {round} rounds, {n_parse} in-process mutants, {n_cli} CLI mutants, {n_flags} absurd flags, {n_kill} signals"
    );
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
