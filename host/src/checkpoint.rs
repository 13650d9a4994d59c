//! Checkpoints: an f32 model with its architecture and task, checksummed and
//! written atomically (temporary file, fsync, rename), so a crash or a full
//! disk never leaves a half-written model where a good one was.
//!
//! Layout (little-endian): `b"EMBRCKPT"`, u16 version, u8 task, u8 layer
//! count L, (L + 1) x u32 widths, u64 parameter count, the f32 parameters,
//! then the CRC-32 of everything before it.

use anyhow::{anyhow, bail, Context, Result};
use std::io::Read;
use std::path::Path;

use crate::fsutil::{open_bounded, read_bounded, write_atomic};

use crate::task::Task;
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

    /// Parses bytes, checking everything: magic, version, checksum, the
    /// task, every count with checked arithmetic against the bytes present,
    /// and that the architecture fits the task (784 inputs; 10 outputs for
    /// digits, 1 for 3v7).
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        let h = Header::parse(b)?;
        if b.len() as u64 != h.file_len {
            bail!(
                "checkpoint declares {} parameters ({} bytes in all) but holds {} bytes: truncated or corrupted",
                h.params,
                h.file_len,
                b.len()
            );
        }
        let (body, tail) = b.split_at(b.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) {
            bail!("checkpoint checksum mismatch: the file is truncated or corrupted");
        }
        let params = body[h.header_len..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Checkpoint {
            task: h.task,
            mlp: h.mlp,
            params,
        })
    }

    /// Loads a checkpoint file: the header is read and checked first, and
    /// the file is read only when its length is exactly what the header
    /// declares (so a huge or endless file is refused before it is read).
    pub fn load(path: &Path) -> Result<Self> {
        let what = "the checkpoint";
        let (mut f, len) = open_bounded(path, what, MAX_FILE_BYTES)?;
        let mut head = vec![0u8; (len as usize).min(MAX_HEADER)];
        f.read_exact(&mut head)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let h = Header::parse(&head).with_context(|| format!("{}", path.display()))?;
        if len != h.file_len {
            bail!(
                "{}: checkpoint declares {} parameters ({} bytes in all) but the file has {len} bytes: truncated or corrupted",
                path.display(),
                h.params,
                h.file_len
            );
        }
        let b = read_bounded(path, what, h.file_len)?;
        Self::from_bytes(&b).with_context(|| format!("{}", path.display()))
    }

    /// Writes atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes())
    }
}

/// The largest checkpoint read: 16 GiB, far past any MLP this tool trains;
/// the real bound is the header's own parameter count.
const MAX_FILE_BYTES: u64 = 16 << 30;
/// Magic, version, task, layer count, up to 256 widths, parameter count.
const MAX_HEADER: usize = 12 + 4 * 256 + 8;

/// A checkpoint's header, checked: everything but the parameters.
struct Header {
    task: Task,
    mlp: Mlp,
    params: u64,
    header_len: usize,
    file_len: u64,
}

impl Header {
    fn parse(b: &[u8]) -> Result<Self> {
        if b.len() < 8 || &b[..8] != MAGIC {
            bail!("not an ember checkpoint (bad magic)");
        }
        if b.len() < 16 {
            bail!("checkpoint truncated ({} bytes)", b.len());
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != VERSION {
            bail!("checkpoint format version {version}; this ember reads version {VERSION} (re-train or use the ember that wrote it)");
        }
        let task = Task::from_code(b[10])
            .with_context(|| format!("checkpoint names an unknown task (code {})", b[10]))?;
        let layers = b[11] as usize;
        let header_len = 12 + 4 * (layers + 1) + 8;
        let head = b
            .get(..header_len)
            .context("checkpoint truncated in its header")?;
        let widths: Vec<usize> = head[12..12 + 4 * (layers + 1)]
            .chunks_exact(4)
            .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as usize)
            .collect();
        let mlp = Mlp::new(&widths)
            .map_err(|e| anyhow!("checkpoint architecture {widths:?} is invalid: {e}"))?;
        check_task_widths(task, &widths).context("checkpoint")?;
        let x = &head[header_len - 8..];
        let params = u64::from_le_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]]);
        if params != mlp.param_len() as u64 {
            bail!(
                "checkpoint declares {params} parameters, but its architecture {} has {}",
                widths
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .join("-"),
                mlp.param_len()
            );
        }
        let file_len = params
            .checked_mul(4)
            .and_then(|p| p.checked_add(header_len as u64 + 4))
            .context("checkpoint parameter count overflows")?;
        Ok(Header {
            task,
            mlp,
            params,
            header_len,
            file_len,
        })
    }
}

/// The architecture a task needs: 784 inputs, and the task's outputs (10
/// for digits, 1 for 3v7).
pub fn check_task_widths(task: Task, widths: &[usize]) -> Result<()> {
    let first = widths.first().copied().unwrap_or(0);
    let last = widths.last().copied().unwrap_or(0);
    if first != crate::data::PIXELS {
        bail!(
            "the model takes {first} inputs; MNIST images have {}",
            crate::data::PIXELS
        );
    }
    if last != task.outputs() {
        bail!(
            "the model has {last} outputs, but its task {} needs {}",
            task.name(),
            task.outputs()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
