//! Checkpoints: an f32 model with its architecture and task, checksummed and
//! written atomically (temporary file, fsync, rename), so a crash or a full
//! disk never leaves a half-written model where a good one was.
//!
//! Layout (little-endian): `b"EMBRCKPT"`, u16 version, u8 task, u8 layer
//! count L, (L + 1) x u32 widths, u64 parameter count, the f32 parameters,
//! then the CRC-32 of everything before it.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::train::Task;
use ember::Mlp;

/// The first eight bytes of a checkpoint.
pub const MAGIC: &[u8; 8] = b"EMBRCKPT";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;

/// A trained f32 model.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// What it was trained for.
    pub task: Task,
    /// The architecture.
    pub mlp: Mlp,
    /// The flat parameters (see [`ember::mlp`]).
    pub params: Vec<f32>,
}

impl Checkpoint {
    /// Serialises to bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let w = self.mlp.widths();
        let mut b = Vec::with_capacity(32 + 4 * self.params.len());
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.push(self.task.code());
        b.push((w.len() - 1) as u8);
        for &x in w {
            b.extend_from_slice(&(x as u32).to_le_bytes());
        }
        b.extend_from_slice(&(self.params.len() as u64).to_le_bytes());
        for p in &self.params {
            b.extend_from_slice(&p.to_le_bytes());
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses bytes, checking everything.
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        if b.len() < 8 || &b[..8] != MAGIC {
            bail!("not an ember checkpoint (bad magic)");
        }
        if b.len() < 16 {
            bail!("checkpoint truncated ({} bytes)", b.len());
        }
        let (body, tail) = b.split_at(b.len() - 4);
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != VERSION {
            bail!("checkpoint format version {version}; this ember reads version {VERSION} (re-train or use the ember that wrote it)");
        }
        if crc32fast::hash(body) != u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) {
            bail!("checkpoint checksum mismatch: the file is truncated or corrupted");
        }
        let task = Task::from_code(b[10]).context("checkpoint names an unknown task")?;
        let layers = b[11] as usize;
        let mut off = 12;
        let mut widths = Vec::new();
        for _ in 0..=layers {
            let x = body
                .get(off..off + 4)
                .context("checkpoint truncated in its header")?;
            widths.push(u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as usize);
            off += 4;
        }
        let mlp = Mlp::new(&widths)
            .map_err(|e| anyhow::anyhow!("checkpoint architecture {widths:?}: {e}"))?;
        let x = body
            .get(off..off + 8)
            .context("checkpoint truncated in its header")?;
        let n = u64::from_le_bytes(x.try_into()?) as usize;
        off += 8;
        if n != mlp.param_len() || body.len() - off != 4 * n {
            bail!(
                "checkpoint holds {} parameter bytes, architecture {widths:?} needs {}",
                body.len() - off,
                4 * mlp.param_len()
            );
        }
        let params = body[off..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Checkpoint { task, mlp, params })
    }

    /// Loads a checkpoint file.
    pub fn load(path: &Path) -> Result<Self> {
        let b = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_bytes(&b).with_context(|| format!("{}", path.display()))
    }

    /// Writes atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder,
/// fsynced, then renamed over the target: readers see the old file or the
/// new one, never a mix. On any error the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Checks before any work is spent that `path` can be written: its folder
/// exists and is writable, and it is not one of `inputs`.
pub fn check_writable(path: &Path, inputs: &[&Path]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!(
            "cannot write {}: folder {} does not exist (create it first)",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        bail!("cannot write {}: it is a directory", path.display());
    }
    for i in inputs {
        if let (Ok(a), Ok(b)) = (std::fs::canonicalize(i), std::fs::canonicalize(path)) {
            if a == b {
                bail!(
                    "refusing to write {}: it is one of the inputs",
                    path.display()
                );
            }
        }
    }
    let probe = temp_path(path);
    std::fs::File::create(&probe).with_context(|| {
        format!(
            "cannot write to folder {} (read-only or no permission)",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_atomic;

    /// FAULTS 35: an I/O error while saving leaves no temporary file and the
    /// old content untouched (here the rename fails: the target is a folder).
    #[test]
    fn a_failed_save_cleans_up_and_keeps_the_old_file() {
        let dir = std::env::temp_dir().join(format!("ember-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("model.ckpt")).unwrap();
        std::fs::write(dir.join("model.ckpt/keep"), b"old").unwrap();
        assert!(write_atomic(&dir.join("model.ckpt"), b"new").is_err());
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("model.ckpt")],
            "no temporary file left"
        );
        assert_eq!(std::fs::read(dir.join("model.ckpt/keep")).unwrap(), b"old");
        // And a good save replaces a file whole.
        std::fs::write(dir.join("b.ckpt"), b"old").unwrap();
        write_atomic(&dir.join("b.ckpt"), b"new").unwrap();
        assert_eq!(std::fs::read(dir.join("b.ckpt")).unwrap(), b"new");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The core's small-table CRC-32 (used by the blob on the device) and
    /// crc32fast (used here for speed) are the same function.
    #[test]
    fn core_crc32_agrees_with_crc32fast() {
        let mut x = 0x9e37_79b9u32;
        let data: Vec<u8> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for n in [0, 1, 3, 64, 1000, 10_000] {
            assert_eq!(
                ember::crc32::crc32(&data[..n]),
                crc32fast::hash(&data[..n]),
                "{n}"
            );
        }
    }
}
