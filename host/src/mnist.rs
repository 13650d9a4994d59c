//! MNIST in IDX format, raw or gzip (told apart by the gzip magic bytes, not
//! the file name), with every size checked before anything is allocated.

use anyhow::{bail, Context, Result};
use std::io::Read;
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
pub fn data_dir(flag: Option<&str>) -> PathBuf {
    if let Some(d) = flag {
        return PathBuf::from(d);
    }
    match std::env::var_os("MNIST_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("data/mnist"),
    }
}

/// The path of a standard file in `dir`: the raw name or the name plus `.gz`.
pub fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    present(dir, name).ok().flatten()
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
/// that may download calls [`crate::download::ensure`] first.
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
    crate::download::ensure(dir, &split_files(split))?;
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

/// Reads an IDX file of unsigned bytes with the given rank: returns its
/// dimensions and its data.
///
/// # Errors
/// Unreadable file, bad gzip, a header shorter than its rank says, wrong
/// magic, element type or rank, a size that overflows, fewer or more bytes
/// than the header promises.
pub fn read_idx(path: &Path, rank: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = read_maybe_gzip(path)?;
    parse_idx(&bytes, rank).with_context(|| format!("{}: not a valid IDX file", path.display()))
}

/// Reads a file, decompressing it when it starts with the gzip magic, never
/// producing more than [`MAX_IDX_BYTES`].
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = crate::fsutil::read_bounded(path, "the IDX file", MAX_IDX_BYTES)?;
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        gunzip(&raw).with_context(|| format!("{}: bad gzip data", path.display()))
    } else {
        if raw.len() as u64 > MAX_IDX_BYTES {
            bail!("{}: larger than {} bytes", path.display(), MAX_IDX_BYTES);
        }
        Ok(raw)
    }
}

/// Decompresses one gzip member (CRC and length checked by flate2), refusing
/// output beyond [`MAX_IDX_BYTES`] and bytes after the member.
pub fn gunzip(raw: &[u8]) -> Result<Vec<u8>> {
    let mut dec = flate2::bufread::GzDecoder::new(raw);
    let mut out = Vec::new();
    (&mut dec)
        .take(MAX_IDX_BYTES + 1)
        .read_to_end(&mut out)
        .context("truncated or corrupt gzip stream")?;
    if out.len() as u64 > MAX_IDX_BYTES {
        bail!("decompresses to more than {MAX_IDX_BYTES} bytes (refusing a possible gzip bomb)");
    }
    let rest = dec.into_inner();
    if !rest.is_empty() {
        bail!(
            "{} bytes of trailing garbage after the gzip stream",
            rest.len()
        );
    }
    // The member ends the file, so its 8-byte trailer (CRC-32, length mod
    // 2^32) is the file's last 8 bytes: check it here too, since the decoder
    // accepts a stream whose trailer was cut short.
    let trailer = raw.len().checked_sub(8).map(|i| &raw[i..]);
    let ok = trailer.is_some_and(|t| {
        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let len = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
        crc == crc32fast::hash(&out) && len == out.len() as u32
    });
    if !ok {
        bail!("truncated gzip stream or bad CRC (the trailer does not match the data)");
    }
    Ok(out)
}

/// Parses IDX bytes: magic `00 00 08 rank`, `rank` big-endian u32 dimensions, data.
pub fn parse_idx(b: &[u8], rank: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    if b.len() < 4 {
        bail!("{} bytes is shorter than the 4-byte IDX magic", b.len());
    }
    if b[0] != 0 || b[1] != 0 {
        bail!(
            "bad magic {:02x} {:02x} (IDX files start with 00 00)",
            b[0],
            b[1]
        );
    }
    if b[2] != 0x08 {
        bail!("element type 0x{:02x}, expected 0x08 (unsigned byte)", b[2]);
    }
    if b[3] as usize != rank {
        bail!("rank {}, expected {rank}", b[3]);
    }
    let header = 4 + 4 * rank;
    if b.len() < header {
        bail!(
            "header needs {header} bytes for rank {rank}, file has {}",
            b.len()
        );
    }
    let dims: Vec<usize> = b[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n as u64 <= MAX_IDX_BYTES)
        .ok_or_else(|| anyhow::anyhow!("dimensions {dims:?} are too large"))?;
    let data = &b[header..];
    if data.len() < n {
        bail!("header promises {n} data bytes, file has {}", data.len());
    }
    if data.len() > n {
        bail!(
            "{} unexpected bytes after the {n} data bytes",
            data.len() - n
        );
    }
    Ok((dims, data.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(rank: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, rank];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn parses_and_rejects() {
        let ok = idx(1, &[3], &[1, 2, 3]);
        assert_eq!(parse_idx(&ok, 1).unwrap(), (vec![3], vec![1, 2, 3]));
        let err = |b: &[u8], r| parse_idx(b, r).unwrap_err().to_string();
        assert!(err(&[], 1).contains("shorter"));
        assert!(err(&[1, 0, 8, 1], 1).contains("magic"));
        assert!(err(&[0, 0, 9, 1], 1).contains("element type"));
        assert!(err(&ok, 3).contains("rank"));
        assert!(err(&[0, 0, 8, 3, 0, 0], 3).contains("header"));
        assert!(err(&idx(1, &[4], &[1, 2, 3]), 1).contains("promises"));
        assert!(err(&idx(1, &[2], &[1, 2, 3]), 1).contains("unexpected"));
        assert!(err(&idx(3, &[u32::MAX, u32::MAX, u32::MAX], &[]), 3).contains("too large"));
    }

    #[test]
    fn gzip_is_checked() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&[7u8; 1000]).unwrap();
        let gz = e.finish().unwrap();
        assert_eq!(gunzip(&gz).unwrap(), vec![7u8; 1000]);
        assert!(gunzip(&gz[..gz.len() - 3]).is_err(), "truncated");
        let mut bad = gz.clone();
        let n = bad.len();
        bad[n - 8] ^= 1; // CRC
        assert!(gunzip(&bad).is_err(), "bad crc");
        let mut trailing = gz.clone();
        trailing.extend(b"junk");
        assert!(gunzip(&trailing)
            .unwrap_err()
            .to_string()
            .contains("trailing"));
    }
}
