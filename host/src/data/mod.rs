//! MNIST on disk: where the four files are, and loading a split of them
//! (the IDX format itself is in `idx`). Loading never reaches the network:
//! `download` is its own step, and [`fetch_and_load`] is the one call that
//! does both, for the commands.

pub mod augment;
pub mod download;
pub mod idx;
pub mod sample;

pub use idx::{gunzip, parse_idx, read_idx, read_maybe_gzip};

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Side of an MNIST image.
pub const SIDE: usize = 28;
/// Pixels of an MNIST image.
pub const PIXELS: usize = SIDE * SIDE;
/// Largest decompressed IDX file accepted (the training images are 47 MB):
/// a gzip bomb stops here.
pub const MAX_IDX_BYTES: u64 = 64 << 20;

/// The four standard file names, without `.gz`.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Which half of MNIST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// 60 000 training images.
    Train,
    /// 10 000 test images.
    Test,
}

/// Images (u8, row-major 28 x 28 each) and their labels.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// `len() * PIXELS` grey levels, 0 = background.
    pub images: Vec<u8>,
    /// One label 0..=9 per image.
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Image `i`'s pixels.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }
    /// The examples at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        let mut out = Dataset::default();
        for &i in idx {
            out.images.extend_from_slice(self.image(i));
            out.labels.push(self.labels[i]);
        }
        out
    }
}

/// The data directory: `--data DIR`, else `$MNIST_DIR`, else `data/mnist`.
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(d) = flag {
        return d.to_path_buf();
    }
    match std::env::var_os("MNIST_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("data/mnist"),
    }
}

/// The two file names of a split, images first.
pub fn split_files(split: Split) -> [&'static str; 2] {
    match split {
        Split::Train => [FILES[0], FILES[1]],
        Split::Test => [FILES[2], FILES[3]],
    }
}

/// Where `name` (raw or `.gz`) is in `dir`: `Ok(None)` when neither is
/// there; an error that names the path when one is there but cannot be
/// used (a folder, a special file, no permission), so such a file is never
/// taken for a missing one and fetched again.
pub fn present(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    for p in [dir.join(name), dir.join(format!("{name}.gz"))] {
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => {
                std::fs::File::open(&p).with_context(|| format!("cannot read {}", p.display()))?;
                return Ok(Some(p));
            }
            Ok(m) if m.is_dir() => {
                bail!("{} is a folder, expected the IDX file", p.display())
            }
            Ok(_) => bail!(
                "{} is a special file (device, FIFO or socket), expected the IDX file",
                p.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot access {}", p.display())),
        }
    }
    Ok(None)
}

/// Loads one split from `dir`. It never reaches the network: a command
/// that may download calls [`crate::data::download::ensure`] first.
///
/// # Errors
/// A missing or unreadable file (the message names the paths tried and how
/// to supply the data), a malformed IDX file, or images and labels that do
/// not pair up.
pub fn load(dir: &Path, split: Split) -> Result<Dataset> {
    let [img, lab] = split_files(split);
    let ip = locate(dir, img)?;
    let lp = locate(dir, lab)?;
    let (idims, images) = read_idx(&ip, 3)?;
    let (ldims, labels) = read_idx(&lp, 1)?;
    if idims[1] != SIDE || idims[2] != SIDE {
        bail!(
            "{}: images are {}x{}, expected {SIDE}x{SIDE}",
            ip.display(),
            idims[1],
            idims[2]
        );
    }
    if idims[0] != ldims[0] {
        bail!(
            "{} holds {} images but {} holds {} labels",
            ip.display(),
            idims[0],
            lp.display(),
            ldims[0]
        );
    }
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l > 9) {
        bail!("{}: label {l} of example {i} is outside 0..9", lp.display());
    }
    Ok(Dataset { images, labels })
}

/// Downloads what `split` needs (when missing) and loads it: the one call
/// of a command that reads MNIST.
pub fn fetch_and_load(dir: &Path, split: Split) -> Result<Dataset> {
    crate::data::download::ensure(dir, &split_files(split))?;
    load(dir, split)
}

fn locate(dir: &Path, name: &str) -> Result<PathBuf> {
    if let Some(p) = present(dir, name)? {
        return Ok(p);
    }
    bail!(
        "no {name} (or {name}.gz) in {}; pass --data DIR or set MNIST_DIR to a folder \
         holding the four MNIST IDX files ({}), raw or .gz, or run `ember download --data DIR`",
        dir.display(),
        FILES.join(", ")
    )
}

/// A pixel as the network sees it: p / 255.
pub fn pixel(p: u8) -> f32 {
    p as f32 * (1.0 / 255.0)
}

/// Pixels as the network sees them: p / 255.
pub fn to_f32(images: &[u8]) -> Vec<f32> {
    let mut out = vec![0.0; images.len()];
    pixels(&mut out, images);
    out
}

/// [`pixel`] of each of `src` into `out` (as many as the shorter holds),
/// the same bits, 8 at a time where the CPU has AVX2: the host is built for
/// the baseline x86-64, whose SSE2 loop converted 4 pixels per step and
/// made the training step's gather compute-bound (12.7 us of a step per 64
/// images already in cache).
pub fn pixels(out: &mut [f32], src: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked above).
        return unsafe { pixels_avx2(out, src) };
    }
    pixels_plain(out, src);
}

fn pixels_plain(out: &mut [f32], src: &[u8]) {
    for (o, &p) in out.iter_mut().zip(src) {
        *o = pixel(p);
    }
}

/// [`pixels_plain`] compiled for AVX2 (the compiler vectorizes the loop).
///
/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pixels_avx2(out: &mut [f32], src: &[u8]) {
    pixels_plain(out, src);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_match_pixel_on_every_path() {
        let src: Vec<u8> = (0..=255u8).chain(0..=36).collect();
        let want: Vec<f32> = src.iter().map(|&p| pixel(p)).collect();
        let mut out = vec![f32::NAN; src.len()];
        pixels(&mut out, &src);
        assert_eq!(out, want);
        let mut out = vec![f32::NAN; src.len()];
        pixels_plain(&mut out, &src);
        assert_eq!(out, want);
    }
}
