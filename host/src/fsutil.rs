//! Every file the CLI reads whole or writes goes through here.
//!
//! Outputs are planned before any work: an [`Outputs`] plan knows the
//! command's inputs and its other outputs, and refuses an output that names
//! one of them (by normalized path, and by device and inode where the file
//! exists), an empty path, a folder, a missing or read-only folder, or a
//! special file (device node, FIFO, socket). Writes are atomic: a temporary
//! file beside the target, fsynced, renamed over it; an output that is a
//! symlink is written through to its target, so the link stays a link.
//! Reads are bounded: a regular file no larger than the caller allows.

use anyhow::{bail, Context, Result};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// How many symlinks are followed before a path is called a loop (Linux's
/// own limit is 40).
const MAX_LINKS: usize = 40;

/// Where a path really leads: the final component's symlinks followed (a
/// relative link is taken from the link's folder), the result made absolute
/// and normalized lexically. The target need not exist.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    let mut p = absolute(path)?;
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = fs::read_link(&p)
                    .with_context(|| format!("cannot read the symlink {}", p.display()))?;
                let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                p = normalize(&base.join(link));
            }
            _ => return Ok(p),
        }
    }
    bail!("{}: too many levels of symbolic links", path.display())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    Ok(normalize(&cwd.join(path)))
}

/// `a/./b/../c` -> `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// What makes two paths the same file: the resolved path with its folder
/// canonicalized (so `d/../d/x` and a symlinked folder agree), and the
/// (device, inode) pair where the file exists (so hard links agree).
#[derive(Debug)]
struct Identity {
    path: PathBuf,
    inode: Option<(u64, u64)>,
}

fn identity(path: &Path) -> Result<Identity> {
    use std::os::unix::fs::MetadataExt;
    let target = resolve(path)?;
    let path = match (target.parent(), target.file_name()) {
        (Some(dir), Some(name)) => fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or_else(|_| target.clone()),
        _ => target.clone(),
    };
    let inode = fs::metadata(&target).ok().map(|m| (m.dev(), m.ino()));
    Ok(Identity { path, inode })
}

impl Identity {
    fn same(&self, other: &Identity) -> bool {
        self.path == other.path || (self.inode.is_some() && self.inode == other.inode)
    }
}

/// An output of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// `-`: standard output.
    Stdout,
    /// A file, as the user named it.
    File(PathBuf),
}

/// The plan of a command's files: what it reads and what it will write,
/// checked before any work is spent.
#[derive(Debug)]
pub struct Outputs {
    inputs: Vec<(String, Identity)>,
    outputs: Vec<(String, Identity)>,
}

impl Default for Outputs {
    fn default() -> Self {
        Self::new()
    }
}

impl Outputs {
    /// An empty plan.
    pub fn new() -> Self {
        Outputs {
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Records a file the command reads (`what` names it in messages:
    /// `--model`, `MNIST file`). It need not exist yet.
    pub fn input(&mut self, what: &str, path: &Path) -> Result<()> {
        let id = identity(path)?;
        self.inputs.push((format!("{what} {}", path.display()), id));
        Ok(())
    }

    /// Records data files `names` of `dir` as inputs, raw and `.gz`,
    /// whether they are there yet or are still to be downloaded.
    pub fn data_inputs(&mut self, dir: &Path, names: &[&str]) -> Result<()> {
        for name in names {
            self.input("the MNIST file", &dir.join(name))?;
            self.input("the MNIST file", &dir.join(format!("{name}.gz")))?;
        }
        Ok(())
    }

    /// Checks an output named by `flag` (`--out`) and records it. `-` is
    /// standard output where `stdout_ok`. Refused: an empty path, a path
    /// that ends in `/` or names a folder, a missing or unwritable folder, a
    /// special file, an input, another output.
    pub fn output(&mut self, flag: &str, path: &Path, stdout_ok: bool) -> Result<Dest> {
        let raw = path.as_os_str();
        if raw.is_empty() {
            bail!("{flag} is empty: give a file name");
        }
        if raw == "-" {
            if stdout_ok {
                return Ok(Dest::Stdout);
            }
            bail!("{flag} -: this output cannot go to standard output; give a file name");
        }
        if raw.as_encoded_bytes().ends_with(b"/") {
            bail!(
                "{flag} {}: ends in '/', which names a folder; give a file name",
                path.display()
            );
        }
        let target = refuse_special(flag, path, stdout_ok)?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("/"),
        };
        if !dir.is_dir() {
            bail!(
                "{flag} {}: the folder {} does not exist (create it first)",
                path.display(),
                dir.display()
            );
        }
        let id = identity(path)?;
        for (what, other) in &self.inputs {
            if id.same(other) {
                bail!(
                    "{flag} {} is {what}, which this command reads: choose another output file",
                    path.display()
                );
            }
        }
        for (what, other) in &self.outputs {
            if id.same(other) {
                bail!(
                    "{flag} {} names the same file as {what}: give each output its own file",
                    path.display()
                );
            }
        }
        probe_writable(&dir).with_context(|| {
            format!(
                "{flag} {}: cannot write to the folder {} (read-only or no permission)",
                path.display(),
                dir.display()
            )
        })?;
        self.outputs
            .push((format!("{flag} {}", path.display()), id));
        Ok(Dest::File(path.to_path_buf()))
    }
}

/// The resolved target of an output, refused when it is a folder, under
/// /dev or /proc, or a special file.
fn refuse_special(flag: &str, path: &Path, stdout_ok: bool) -> Result<PathBuf> {
    let target = resolve(path)?;
    // /dev/stdout and /proc/self/fd/N lead to whatever the shell opened
    // (a pipe, a terminal, a file it holds open): never renamed over.
    if in_dev_or_proc(path, &target) {
        bail!(
            "{flag} {}: is a device or process file, not a regular file; {}",
            path.display(),
            if stdout_ok {
                "write to a regular file, or pass '-' for standard output"
            } else {
                "write to a regular file"
            }
        );
    }
    // The kernel's own view of the path as well (it follows every link).
    for m in [fs::metadata(&target), fs::metadata(path)]
        .into_iter()
        .flatten()
    {
        let t = m.file_type();
        if t.is_dir() {
            bail!(
                "{flag} {}: is a folder; give a file name inside it",
                path.display()
            );
        }
        if !t.is_file() {
            bail!(
                "{flag} {}: is a special file (device, FIFO or socket), not a regular file; {}",
                path.display(),
                if stdout_ok {
                    "write to a regular file, or pass '-' for standard output"
                } else {
                    "write to a regular file"
                }
            );
        }
    }
    Ok(target)
}

/// Whether a path, as given or resolved, lies under /dev or /proc.
fn in_dev_or_proc(path: &Path, target: &Path) -> bool {
    [Path::new("/dev"), Path::new("/proc")]
        .iter()
        .any(|d| target.starts_with(d) || absolute(path).is_ok_and(|p| p.starts_with(d)))
}

fn probe_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".ember-probe.{}", std::process::id()));
    File::create(&probe)?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Writes `bytes` to `path` atomically: through a temporary file beside the
/// real target (a symlink's target, so the link stays), fsynced, renamed
/// over it; readers see the old file or the new one, never a mix. The old
/// file's permissions are kept. On any error the temporary file is removed
/// and the old file is untouched. A special file is refused.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let target = resolve(path)?;
    if in_dev_or_proc(path, &target) {
        bail!(
            "cannot write {}: a device or process file is never replaced",
            path.display()
        );
    }
    let old = fs::metadata(&target).ok();
    if let Some(m) = &old {
        if !m.file_type().is_file() {
            bail!(
                "cannot write {}: not a regular file (a folder, device, FIFO or socket)",
                path.display()
            );
        }
    }
    let tmp = temp_path(&target);
    let result = (|| -> Result<()> {
        let mut f =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        if let Some(m) = &old {
            let mode = m.permissions().mode() & 0o7777;
            let _ = f.set_permissions(fs::Permissions::from_mode(mode));
        }
        f.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
        fs::rename(&tmp, &target)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), target.display()))?;
        // The rename itself is made durable by syncing the folder.
        if let Some(dir) = target.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes to an output: standard output, or a file atomically.
pub fn write_dest(dest: &Dest, bytes: &[u8]) -> Result<()> {
    match dest {
        Dest::Stdout => {
            let mut o = std::io::stdout().lock();
            o.write_all(bytes)?;
            o.flush()?;
            Ok(())
        }
        Dest::File(p) => write_atomic(p, bytes),
    }
}

fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Opens `path` for reading and checks it is a regular file of at most
/// `max` bytes; returns the file and its length. `what` names it in errors.
pub fn open_bounded(path: &Path, what: &str, max: u64) -> Result<(File, u64)> {
    let f = File::open(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    let m = f
        .metadata()
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if m.is_dir() {
        bail!("{what} {} is a folder, not a file", path.display());
    }
    if !m.is_file() {
        bail!(
            "{what} {} is not a regular file (a device, FIFO or socket); give the file itself",
            path.display()
        );
    }
    if m.len() > max {
        bail!(
            "{what} {} is {} bytes, more than the {max} bytes such a file can hold",
            path.display(),
            m.len()
        );
    }
    Ok((f, m.len()))
}

/// Reads a whole regular file of at most `max` bytes (checked before
/// reading; the read itself stops at `max` + 1 should the file grow).
pub fn read_bounded(path: &Path, what: &str, max: u64) -> Result<Vec<u8>> {
    let (f, len) = open_bounded(path, what, max)?;
    let mut out = Vec::with_capacity(len as usize);
    f.take(max + 1)
        .read_to_end(&mut out)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if out.len() as u64 > max {
        bail!(
            "{what} {} grew past {max} bytes while being read",
            path.display()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ember-fsutil-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// FAULTS 35: an I/O error while saving leaves no temporary file and the
    /// old content untouched (here the target is a folder).
    #[test]
    fn a_failed_save_cleans_up_and_keeps_the_old_file() {
        let dir = scratch("atomic");
        fs::create_dir_all(dir.join("model.ckpt")).unwrap();
        fs::write(dir.join("model.ckpt/keep"), b"old").unwrap();
        assert!(write_atomic(&dir.join("model.ckpt"), b"new").is_err());
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("model.ckpt")]);
        assert_eq!(fs::read(dir.join("model.ckpt/keep")).unwrap(), b"old");
        fs::write(dir.join("b.ckpt"), b"old").unwrap();
        write_atomic(&dir.join("b.ckpt"), b"new").unwrap();
        assert_eq!(fs::read(dir.join("b.ckpt")).unwrap(), b"new");
        let _ = fs::remove_dir_all(&dir);
    }

    /// FAULTS 38: a symlink is written through, atomically, and stays a link.
    #[test]
    fn a_symlink_is_written_through_and_kept() {
        let dir = scratch("link");
        fs::create_dir_all(dir.join("real")).unwrap();
        fs::write(dir.join("real/m.bin"), b"old").unwrap();
        std::os::unix::fs::symlink("real/m.bin", dir.join("link.bin")).unwrap();
        write_atomic(&dir.join("link.bin"), b"new").unwrap();
        assert!(fs::symlink_metadata(dir.join("link.bin"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(dir.join("real/m.bin")).unwrap(), b"new");
        // A dangling link is created at its target.
        std::os::unix::fs::symlink("real/new.bin", dir.join("dangling")).unwrap();
        write_atomic(&dir.join("dangling"), b"x").unwrap();
        assert_eq!(fs::read(dir.join("real/new.bin")).unwrap(), b"x");
        let _ = fs::remove_dir_all(&dir);
    }

    /// FAULTS 37: outputs that name an input or each other, existing or not,
    /// through `..`, a symlink or a hard link.
    #[test]
    fn outputs_that_name_inputs_or_each_other_are_refused() {
        let dir = scratch("plan");
        fs::write(dir.join("in.ckpt"), b"x").unwrap();
        fs::hard_link(dir.join("in.ckpt"), dir.join("hard.ckpt")).unwrap();
        std::os::unix::fs::symlink("in.ckpt", dir.join("soft.ckpt")).unwrap();
        fs::create_dir_all(dir.join("sub")).unwrap();
        let mut p = Outputs::new();
        p.input("--model", &dir.join("in.ckpt")).unwrap();
        for bad in ["in.ckpt", "hard.ckpt", "soft.ckpt", "sub/../in.ckpt"] {
            let e = p.output("--out", &dir.join(bad), false).unwrap_err();
            assert!(format!("{e}").contains("reads"), "{bad}: {e}");
        }
        p.output("--out", &dir.join("z.ckpt"), false).unwrap();
        let e = p
            .output("--metrics", &dir.join("sub/../z.ckpt"), true)
            .unwrap_err();
        assert!(format!("{e}").contains("same file"), "{e}");
        assert_eq!(
            p.output("--metrics", Path::new("-"), true).unwrap(),
            Dest::Stdout
        );
        for bad in ["", "sub/", "sub", "missing/x.bin"] {
            assert!(p.output("--out", &dir.join(bad), false).is_err(), "{bad}");
        }
        assert!(p.output("--out", Path::new(""), false).is_err());
        assert!(p.output("--out", Path::new("/dev/null"), false).is_err());
        assert!(p.output("--out", Path::new("-"), false).is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn bounded_reads_refuse_special_and_oversized_files() {
        let dir = scratch("read");
        fs::write(dir.join("a"), vec![7u8; 100]).unwrap();
        assert_eq!(
            read_bounded(&dir.join("a"), "file", 100).unwrap().len(),
            100
        );
        assert!(read_bounded(&dir.join("a"), "file", 99).is_err());
        assert!(read_bounded(Path::new("/dev/zero"), "file", 1 << 20).is_err());
        assert!(read_bounded(&dir, "file", 1 << 20).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
