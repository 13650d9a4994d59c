//! Fetching MNIST when it is missing: the standard public mirrors in turn,
//! streamed to a temporary file with progress, verified against the
//! canonical SHA-256 of the decompressed data, then renamed into place.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::data::{self as mnist, FILES};
use crate::fsutil::write_atomic;

/// The standard mirrors, tried in order: PyTorch's S3 copy, Google's CVDF
/// copy, the original site. `EMBER_MNIST_MIRRORS` (comma-separated base URLs)
/// replaces the list, e.g. for an offline mirror or the tests.
pub const MIRRORS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
];

/// SHA-256 of each file's decompressed bytes (the canonical MNIST files).
pub const SHA256: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

/// Largest download accepted (the biggest file is 9.9 MB compressed).
const MAX_DOWNLOAD: u64 = 32 << 20;

/// The mirrors in force.
pub fn mirrors() -> Vec<String> {
    match std::env::var("EMBER_MNIST_MIRRORS") {
        Ok(v) if !v.trim().is_empty() => v.split(',').map(|m| m.trim().to_string()).collect(),
        _ => MIRRORS.iter().map(|m| m.to_string()).collect(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `data` (gzip) decompresses to the canonical `name`.
fn verify(name: &str, gz: &[u8]) -> Result<()> {
    let raw = mnist::gunzip(gz)?;
    let want = SHA256
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, h)| *h)
        .unwrap_or_default();
    let got = hex(&Sha256::digest(&raw));
    if got != want {
        bail!("checksum mismatch: SHA-256 {got}, expected {want}");
    }
    Ok(())
}

/// Downloads whichever of `names` (standard MNIST file names) is missing
/// from `dir` (creating it), mirror by mirror. Files already present are
/// left alone; one that is there but unusable (a folder, a special file, no
/// permission) is an error naming it, never a reason to download.
///
/// # Errors
/// When some file could be fetched from no mirror: one message naming the
/// folder, every mirror's failure, and how to supply the files by hand.
pub fn ensure(dir: &Path, names: &[&str]) -> Result<()> {
    if let Ok(m) = std::fs::metadata(dir) {
        if !m.is_dir() {
            bail!(
                "the data folder {} is not a folder; pass --data DIR or set MNIST_DIR to the folder holding the MNIST files",
                dir.display()
            );
        }
    }
    let mut missing = Vec::new();
    for &name in names {
        if mnist::present(dir, name)?.is_none() {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into();
    for name in missing {
        let mut failures = Vec::new();
        let mut done = false;
        for m in mirrors() {
            let url = format!(
                "{}{name}.gz",
                if m.ends_with('/') {
                    m.clone()
                } else {
                    format!("{m}/")
                }
            );
            match fetch(&agent, &url, name) {
                Ok(bytes) => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    write_atomic(&dir.join(format!("{name}.gz")), &bytes)?;
                    done = true;
                    break;
                }
                Err(e) => {
                    eprintln!("  {url}: {e:#}");
                    failures.push(format!("{url}: {e:#}"));
                }
            }
        }
        if !done {
            bail!(
                "{name} is not in {} and could not be downloaded (offline, or no mirror reachable):\n  {}\n\
                 Put the four MNIST files ({}, raw or .gz) in a folder and pass --data DIR or set MNIST_DIR,\n\
                 or point EMBER_MNIST_MIRRORS at a mirror you can reach.",
                dir.display(),
                failures.join("\n  "),
                FILES.join(", ")
            );
        }
    }
    Ok(())
}

/// One file from one mirror, verified.
fn fetch(agent: &ureq::Agent, url: &str, name: &str) -> Result<Vec<u8>> {
    let mut resp = agent.get(url).call().map_err(|e| anyhow::anyhow!("{e}"))?;
    let total: Option<u64> = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut reader = resp.body_mut().with_config().limit(MAX_DOWNLOAD).reader();
    let tty = std::io::stderr().is_terminal();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut last = 0;
    loop {
        let n = reader.read(&mut buf).context("download interrupted")?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if tty && (out.len() - last > 1 << 20 || Some(out.len() as u64) == total) {
            last = out.len();
            let pct = total
                .map(|t| format!("{:3}%", out.len() as u64 * 100 / t.max(1)))
                .unwrap_or_default();
            eprint!(
                "\rdownloading {name}.gz {pct} ({:.1} MB)",
                out.len() as f64 / 1e6
            );
            let _ = std::io::stderr().flush();
        }
    }
    if tty {
        eprintln!();
    }
    if let Some(t) = total {
        if t != out.len() as u64 {
            bail!("truncated: {} of {t} bytes", out.len());
        }
    }
    verify(name, &out)?;
    if !tty {
        eprintln!(
            "downloaded {name}.gz from {url} ({} bytes, checksum ok)",
            out.len()
        );
    }
    Ok(out)
}
