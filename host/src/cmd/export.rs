//! `ember export`: quantizes a checkpoint to int8 (or keeps f32) and writes
//! the blob, optionally as a C header and a Rust source as well.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::cli::{json_str, Args, Spec, Usage};
use crate::cmd::train::arch_name;
use crate::console::Console;
use crate::export::{self, BlobBytes, Calibration};
use crate::fsutil::{write_atomic, Outputs};
use crate::interrupt;
use crate::mnist::{self, Split};
use crate::par::Pool;
use crate::train::balanced_subset;

/// The flags of `ember export`.
pub const FLAGS: &[Spec] = &[
    ("model", true, "the checkpoint to export (required)"),
    (
        "out",
        true,
        "the blob file (default: the checkpoint's name with .bin)",
    ),
    (
        "c-header",
        true,
        "also write a C header with the blob as an aligned array",
    ),
    (
        "rust",
        true,
        "also write a Rust source with the blob as an aligned static",
    ),
    (
        "name",
        true,
        "symbol name in the header / source (default ember_model)",
    ),
    (
        "calib",
        true,
        "training images used to calibrate activation ranges (default 1000)",
    ),
    (
        "percentile",
        true,
        "calibrate to this percentile (e.g. 99.99) instead of min/max",
    ),
    (
        "f32",
        false,
        "export f32 layers, unquantized (for MCUs with an FPU)",
    ),
    (
        "data",
        true,
        "folder with the MNIST IDX files (for calibration)",
    ),
    ("seed", true, "seed picking the calibration images"),
    ("threads", true, "worker threads"),
    ("json", false, "print the result as one JSON object"),
    ("vectors", true, "also write firmware test vectors here: model.bin, images.bin, labels.bin, logits.bin, meta.rs"),
    ("vectors-count", true, "test images in the vectors (default 100)"),
];

/// `ember export`.
pub fn run(argv: &[String]) -> Result<()> {
    let a = Args::parse("export", argv, FLAGS)?;
    let Some(model) = a.str("model").map(PathBuf::from) else {
        return Err(Usage("ember export: --model CHECKPOINT is required".into()).into());
    };
    let out = a
        .str("out")
        .map(PathBuf::from)
        .unwrap_or_else(|| model.with_extension("bin"));
    let name = a.str("name").unwrap_or("ember_model").to_string();
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(Usage(format!(
            "ember export: --name '{name}' is not a C/Rust identifier"
        ))
        .into());
    }
    let header = a.str("c-header").map(PathBuf::from);
    let rust = a.str("rust").map(PathBuf::from);
    let calib_n = a.positive("calib", 1000)?;
    let how = match a.str("percentile") {
        None => Calibration::MinMax,
        Some(_) => {
            let p: f64 = a.get("percentile", 100.0)?;
            if !(p > 50.0 && p <= 100.0) {
                return Err(Usage(format!(
                    "ember export: --percentile must be in (50, 100], got {p}"
                ))
                .into());
            }
            Calibration::Percentile(p)
        }
    };
    let vectors = a.str("vectors").map(PathBuf::from);
    let count = a.positive("vectors-count", 100)?;
    if vectors.is_some() && a.has("f32") {
        return Err(
            Usage("ember export: --vectors needs an int8 export (drop --f32)".into()).into(),
        );
    }
    let seed = a.get("seed", 1u64)?;
    let threads = a.threads()?;
    let data = mnist::data_dir(a.str("data"));
    // Every output is checked against the inputs and the others before
    // any work, so a failure leaves nothing half written.
    let usage = |e: anyhow::Error| Usage(format!("ember export: {e:#}"));
    let mut plan = Outputs::new();
    plan.input("--model", &model)?;
    plan.data_inputs(&data)?;
    plan.output("--out", &out, false).map_err(usage)?;
    for (flag, p) in [("--c-header", &header), ("--rust", &rust)] {
        if let Some(p) = p {
            plan.output(flag, p, false).map_err(usage)?;
        }
    }
    let ck = Checkpoint::load(&model)?;
    if let Some(dir) = &vectors {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the --vectors folder {}", dir.display()))?;
        for f in VECTOR_FILES {
            plan.output("--vectors", &dir.join(f), false)
                .map_err(usage)?;
        }
    }
    let bytes = if a.has("f32") {
        export::f32_blob(&ck)?
    } else {
        let pool = Pool::new(threads)?;
        let train = ck.task.filter(&mnist::fetch_and_load(&data, Split::Train)?);
        interrupt::check("export stopped before calibration; nothing was written")?;
        let calib = if calib_n >= train.len() {
            train
        } else {
            // Picked like --train-limit: seeded and balanced over classes.
            balanced_subset(&train, ck.task.classes(), calib_n, seed)
        };
        export::int8_blob(&pool, &ck, &calib.images, how)?
    };
    let b = BlobBytes::new(&bytes);
    let m = b
        .model()
        .context("the exported blob does not parse (a bug: please report it)")?;
    let kind = if a.has("f32") { "f32" } else { "int8" };
    let what = format!(
        "ember {kind} model {} for task {}, from {}",
        arch_name(&ck.mlp),
        ck.task.name(),
        file_name(&model)
    );
    let test = match &vectors {
        Some(_) => Some(ck.task.filter(&mnist::fetch_and_load(&data, Split::Test)?)),
        None => None,
    };
    interrupt::check("export stopped; nothing was written")?;
    write_atomic(&out, &bytes)?;
    if let Some(h) = &header {
        write_atomic(
            h,
            export::c_header(&name, &bytes, m.scratch_bytes(), &what).as_bytes(),
        )?;
    }
    if let Some(r) = &rust {
        write_atomic(
            r,
            export::rust_source(&name, &bytes, m.scratch_bytes(), &what).as_bytes(),
        )?;
    }
    if let (Some(dir), Some(test)) = (&vectors, &test) {
        write_vectors(dir, &b, test, count)?;
    }
    let mut o = Console::new();
    if a.has("json") {
        writeln!(
            o,
            "{{\"blob\": {}, \"bytes\": {}, \"scratch_bytes\": {}, \"kind\": {}, \"arch\": {}, \"task\": {}, \"params\": {}}}",
            json_str(&out.display().to_string()),
            bytes.len(),
            m.scratch_bytes(),
            json_str(kind),
            json_str(&arch_name(&ck.mlp)),
            json_str(ck.task.name()),
            ck.mlp.param_len()
        )?;
    } else {
        writeln!(o, "{what}")?;
        writeln!(
            o,
            "blob: {} ({} bytes for {} parameters)",
            out.display(),
            bytes.len(),
            ck.mlp.param_len()
        )?;
        writeln!(o, "scratch: {} bytes", m.scratch_bytes())?;
        for p in [header.as_ref(), rust.as_ref()].into_iter().flatten() {
            writeln!(o, "wrote {}", p.display())?;
        }
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The files `--vectors DIR` writes.
const VECTOR_FILES: [&str; 5] = [
    "model.bin",
    "images.bin",
    "labels.bin",
    "logits.bin",
    "meta.rs",
];

/// Writes the blob and `count` test images with their labels and the host's
/// integer logits, for the firmware to check itself against bit for bit.
fn write_vectors(dir: &Path, b: &BlobBytes, test: &mnist::Dataset, count: usize) -> Result<()> {
    let m = b.model()?;
    let count = count.min(test.len());
    let n_in = m.input_len();
    let n_out = m.output_len();
    let mut logits = Vec::with_capacity(count * n_out);
    let mut scratch = vec![0u8; m.scratch_bytes()];
    let mut out = vec![0i8; n_out];
    for i in 0..count {
        match m.dtype {
            ember::blob::Dtype::Int8 => m
                .infer_i8(test.image(i), &mut scratch, &mut out)
                .map_err(anyhow::Error::msg)?,
            ember::blob::Dtype::F32 => anyhow::bail!("--vectors needs an int8 export (drop --f32)"),
        }
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
