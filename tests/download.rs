//! The download path against a small HTTP server on 127.0.0.1 started by the
//! test, serving the MNIST files from MNIST_DIR: a mirror that refuses, one
//! that serves corrupted data, one that works; and all of them failing.

#[path = "support/mod.rs"]
mod support;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use support::*;

/// What a test mirror serves.
#[derive(Clone, Copy, PartialEq)]
enum Mirror {
    /// The files as they are.
    Good,
    /// Every body with one byte flipped (the gzip CRC catches it).
    Corrupt,
    /// A valid gzip of the wrong file (only the SHA-256 catches it).
    Wrong,
}

/// Serves `dir`'s files at `/name` for `requests` connections (then stops).
/// Returns the base URL.
fn serve(dir: PathBuf, requests: usize, mode: Mirror) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut s) = stream else { continue };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            let path = if mode == Mirror::Wrong {
                "t10k-labels-idx1-ubyte.gz".to_string()
            } else {
                path
            };
            match std::fs::read(dir.join(&path)) {
                Ok(mut body) => {
                    if mode == Mirror::Corrupt {
                        let i = body.len() / 2;
                        body[i] ^= 0x20;
                    }
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(&body);
                }
                Err(_) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        }
    });
    url
}

fn download(dir: &Path, mirrors: &str) -> (i32, String) {
    let o = ember()
        .args(["download", "--data", dir.to_str().unwrap()])
        .env("EMBER_MNIST_MIRRORS", mirrors)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    (o.status.code().unwrap_or(-1), format!("{out}{err}"))
}

#[test]
fn downloads_verify_checksums_and_fall_through_mirrors() {
    let src = mnist_dir();
    let dest = temp_dir("download").join("mnist");
    // A port that refuses, a mirror serving corrupted bytes, one serving the
    // wrong file, a good one.
    let refused = "http://127.0.0.1:9/".to_string();
    let corrupted = serve(src.clone(), 4, Mirror::Corrupt);
    let wrong = serve(src.clone(), 4, Mirror::Wrong);
    let good = serve(src.clone(), 4, Mirror::Good);
    let (code, out) = download(&dest, &format!("{refused},{corrupted},{wrong},{good}"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Connection refused"), "{out}");
    assert!(
        out.contains("corrupt gzip stream"),
        "the corrupted mirror is caught: {out}"
    );
    assert!(
        out.contains("SHA-256") && out.contains("checksum mismatch"),
        "the wrong file is caught: {out}"
    );
    assert!(out.contains("MNIST is complete"), "{out}");
    for f in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        let name = format!("{f}.gz");
        assert_eq!(
            std::fs::read(dest.join(&name)).unwrap(),
            std::fs::read(src.join(&name)).unwrap(),
            "{name}"
        );
    }
    // Present files are not fetched again (no mirror is reachable now).
    let (code, out) = download(&dest, "http://127.0.0.1:9/");
    assert_eq!(code, 0, "{out}");
    // The data trains straight away.
    let o = ember()
        .args([
            "train",
            "--data",
            dest.to_str().unwrap(),
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--train-limit",
            "100",
        ])
        .args(["--out", dest.join("m.ckpt").to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
}

#[test]
fn no_reachable_mirror_is_one_clear_message_and_nothing_half_written() {
    let src = mnist_dir();
    let dest = temp_dir("download-fail").join("mnist");
    let corrupted = serve(src, 4, Mirror::Corrupt);
    let (code, out) = download(&dest, &format!("http://127.0.0.1:9/,{corrupted}"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("could not be downloaded (offline, or no mirror reachable)")
            && out.contains("--data DIR or set MNIST_DIR"),
        "{out}"
    );
    assert!(
        out.contains("127.0.0.1:9/") && out.contains("corrupt gzip stream"),
        "every mirror's failure is listed: {out}"
    );
    let left: Vec<_> = std::fs::read_dir(&dest)
        .map(|d| d.filter_map(|e| e.ok()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "no partial or corrupted file left behind: {left:?}"
    );
}
