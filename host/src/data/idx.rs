//! The IDX format, raw or gzip (told apart by the gzip magic bytes, not the
//! file name), with every size checked before anything is allocated.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

use super::MAX_IDX_BYTES;

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
