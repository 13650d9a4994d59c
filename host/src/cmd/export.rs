//! `ember export`: quantizes a checkpoint to int8 (or keeps f32) and writes
//! the blob, optionally as a C header, a Rust source and firmware test
//! vectors; with `--board` it first checks the model fits the board.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::args::ExportArgs;
use crate::checkpoint::Checkpoint;
use crate::cmd::common::{usage, widths_name, Usage};
use crate::console::Console;
use crate::data::{self, Dataset, Split};
use crate::export::{self, board, BlobBytes, Calibration};
use crate::fsutil::{write_atomic, Outputs};
use crate::interrupt;
use crate::par::{capped_threads, Pool};
use crate::report::{self, ExportReport};
use crate::task::Task;

/// The files `--vectors DIR` writes.
const VECTOR_FILES: [&str; 5] = [
    "model.bin",
    "images.bin",
    "labels.bin",
    "logits.bin",
    "meta.rs",
];

/// `ember export`.
pub fn run(a: &ExportArgs) -> Result<()> {
    let fresh = a.vectors.as_ref().filter(|d| !d.exists()).cloned();
    let result = export(a);
    if let (Err(_), Some(dir)) = (&result, fresh) {
        // Only an empty folder is removed: nothing of the user's goes.
        let _ = std::fs::remove_dir(dir);
    }
    result
}

fn export(a: &ExportArgs) -> Result<()> {
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.model.with_extension("bin"));
    if a.vectors.is_some() && a.f32 {
        return Err(
            Usage("ember export: --vectors needs an int8 export (drop --f32)".into()).into(),
        );
    }
    if a.vectors.is_some() && a.trainable_head {
        return Err(Usage(
            "ember export: --vectors checks integer logits, and a trainable head has f32 ones; \
             `ember fine-tune --on-device-sim --vectors DIR` writes the vectors of on-device training"
                .into(),
        )
        .into());
    }
    let target = board::resolve(a.board.as_deref(), a.flash, a.ram).map_err(usage("export"))?;
    let data_dir = data::data_dir(a.data.data.as_deref());
    let ck = plan_files(a, &out, &data_dir)?;
    let bytes = blob_bytes(a, &ck, &data_dir)?;
    let b = BlobBytes::new(&bytes);
    let m = b
        .model()
        .context("the exported blob does not parse (a bug: please report it)")?;
    let test = match &a.vectors {
        Some(_) => Some(
            ck.task
                .filter(&data::fetch_and_load(&data_dir, Split::Test)?),
        ),
        None => None,
    };
    let count = test.as_ref().map_or(0, |t| a.vectors_count.min(t.len()));
    let fit = target.map(|t| {
        let vectors = count * (data::PIXELS + 1 + m.output_len());
        board::fit(t, bytes.len(), m.scratch_bytes(), vectors)
    });
    if let Some(f) = &fit {
        let widest = ck.mlp.widths()[1..ck.mlp.widths().len() - 1]
            .iter()
            .copied()
            .max()
            .unwrap_or(0);
        board::check(f, ck.mlp.param_len(), widest)?;
    }
    interrupt::check("export stopped; nothing was written")?;
    let kind = if a.f32 {
        "f32"
    } else if a.trainable_head {
        "int8 body + trainable f32 head"
    } else {
        "int8"
    };
    let task = crate::export::blob_task(&m)?;
    let head = match a.head_task {
        Some(_) => " (fresh head)".to_string(),
        None => String::new(),
    };
    let what = format!(
        "ember {kind} model {} for task {}{head}, from {}",
        widths_name(&blob_widths(&m)),
        task.name(),
        file_name(&a.model)
    );
    write_atomic(&out, &bytes)?;
    if let Some(h) = &a.c_header {
        write_atomic(
            h,
            export::c_header(&a.name, &bytes, m.scratch_bytes(), &what).as_bytes(),
        )?;
    }
    if let Some(r) = &a.rust {
        write_atomic(
            r,
            export::rust_source(&a.name, &bytes, m.scratch_bytes(), &what).as_bytes(),
        )?;
    }
    if let Some(p) = &a.safetensors {
        write_atomic(p, &crate::interop::export(&ck)?)?;
    }
    if let (Some(dir), Some(test)) = (&a.vectors, &test) {
        write_vectors(dir, &b, test, count)?;
    }
    let r = ExportReport {
        blob: out.display().to_string(),
        bytes: bytes.len(),
        scratch_bytes: m.scratch_bytes(),
        kind: kind.into(),
        arch: widths_name(&blob_widths(&m)),
        task: task.name().into(),
        params: m
            .layers
            .iter()
            .map(|l| l.in_dim * l.out_dim + l.out_dim)
            .sum(),
        board: fit,
    };
    print_report(a, &r, &what)
}

/// Every output checked against the inputs and the others before any
/// work, so a failure leaves nothing half written; returns the checkpoint.
fn plan_files(a: &ExportArgs, out: &Path, data_dir: &Path) -> Result<Checkpoint> {
    let bad = usage("export");
    let mut plan = Outputs::new();
    plan.input("--model", &a.model)?;
    plan.data_inputs(data_dir, &data::FILES)?;
    plan.output("--out", out, false).map_err(&bad)?;
    for (flag, p) in [
        ("--c-header", &a.c_header),
        ("--rust", &a.rust),
        ("--safetensors", &a.safetensors),
    ] {
        if let Some(p) = p {
            plan.output(flag, p, false).map_err(&bad)?;
        }
    }
    let ck = Checkpoint::load(&a.model)?;
    if let Some(dir) = &a.vectors {
        if !dir.exists() {
            // Made now so its files can be checked; removed again (while
            // still empty) by `run` when the export fails.
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the --vectors folder {}", dir.display()))?;
        }
        for f in VECTOR_FILES {
            plan.output("--vectors", &dir.join(f), false)
                .map_err(&bad)?;
        }
    }
    Ok(ck)
}

/// The blob: f32 as trained, or int8 calibrated on training images (with
/// `--trainable-head`, all but an f32 head).
fn blob_bytes(a: &ExportArgs, ck: &Checkpoint, data_dir: &Path) -> Result<Vec<u8>> {
    if a.f32 {
        return export::f32_blob(ck);
    }
    let how = match a.percentile {
        None => Calibration::MinMax,
        Some(p) => Calibration::Percentile(p),
    };
    let pool = Pool::new(capped_threads(a.threads.threads))?;
    let calib = export::calibration_set(ck, data_dir, a.calib, a.seed)?;
    interrupt::check("export stopped before calibration; nothing was written")?;
    if a.trainable_head {
        let fresh = a.head_task.map(Task::from);
        return export::head_blob(&pool, ck, &calib.images, how, fresh);
    }
    export::int8_blob(&pool, ck, &calib.images, how)
}

fn print_report(a: &ExportArgs, r: &ExportReport, what: &str) -> Result<()> {
    let mut o = Console::new();
    if a.json {
        write!(o, "{}", report::to_json(r))?;
        return Ok(());
    }
    writeln!(o, "{what}")?;
    writeln!(
        o,
        "blob: {} ({} bytes for {} parameters)",
        r.blob, r.bytes, r.params
    )?;
    writeln!(o, "scratch: {} bytes", r.scratch_bytes)?;
    if let Some(f) = &r.board {
        writeln!(
            o,
            "board {}: flash {} of {} bytes, RAM {} of {} bytes (with the example firmware)",
            f.board, f.flash_needed, f.flash, f.ram_needed, f.ram
        )?;
    }
    for p in [a.c_header.as_ref(), a.rust.as_ref(), a.safetensors.as_ref()]
        .into_iter()
        .flatten()
    {
        writeln!(o, "wrote {}", p.display())?;
    }
    if let Some(dir) = &a.vectors {
        writeln!(
            o,
            "vectors: {} (run them: cd firmware && EMBER_FIRMWARE_DATA={} cargo run --release)",
            dir.display(),
            absolute(dir).display()
        )?;
    }
    Ok(())
}

/// The widths of a blob's model, input first.
fn blob_widths(m: &ember::blob::Model<'_>) -> Vec<usize> {
    std::iter::once(m.input_len())
        .chain(m.layers.iter().map(|l| l.out_dim))
        .collect()
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes the blob and `count` test images with their labels and the host's
/// integer logits, for the firmware to check itself against bit for bit.
fn write_vectors(dir: &Path, b: &BlobBytes, test: &Dataset, count: usize) -> Result<()> {
    let m = b.model()?;
    let n_in = m.input_len();
    let n_out = m.output_len();
    let mut logits = Vec::with_capacity(count * n_out);
    let mut scratch = vec![0u8; m.scratch_bytes()];
    let mut out = vec![0i8; n_out];
    for i in 0..count {
        m.infer_i8(test.image(i), &mut scratch, &mut out)
            .map_err(anyhow::Error::msg)?;
        logits.extend(out.iter().map(|&v| v as u8));
    }
    write_atomic(&dir.join("model.bin"), b.bytes())?;
    write_atomic(&dir.join("images.bin"), &test.images[..count * n_in])?;
    write_atomic(&dir.join("labels.bin"), &test.labels[..count])?;
    write_atomic(&dir.join("logits.bin"), &logits)?;
    let meta = format!(
        "// Generated by `ember export --vectors`; do not edit.\n\
         /// Scratch bytes the model needs.\npub const SCRATCH_BYTES: usize = {};\n\
         /// Inputs per image.\npub const INPUTS: usize = {n_in};\n\
         /// Logits per image.\npub const OUTPUTS: usize = {n_out};\n\
         /// Test images.\npub const COUNT: usize = {count};\n\
         /// Multiply-accumulates per inference.\npub const MACS: usize = {};\n",
        m.scratch_bytes(),
        m.layers.iter().map(|l| l.in_dim * l.out_dim).sum::<usize>()
    );
    write_atomic(&dir.join("meta.rs"), meta.as_bytes())?;
    Ok(())
}
