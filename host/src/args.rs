//! The command line, as clap types: every flag a documented field with its
//! default shown in `--help`, shared groups flattened into the commands
//! that take them. Values are checked here, before any work: a flag that
//! does not parse or is out of range is a usage error (exit code 2).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

use crate::task::Task;

/// ember: train a small MLP on MNIST, run it int8 on a microcontroller.
#[derive(Debug, Parser)]
#[command(
    name = "ember",
    version,
    about = "Train a small MLP on MNIST and run it int8, integer-only, on a microcontroller",
    arg_required_else_help = true,
    after_help = "MNIST is read from --data DIR, else $MNIST_DIR, else data/mnist; \
                  `ember download` fetches it."
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train an MLP (digits or 3v7); write a checkpoint and metrics.
    Train(TrainArgs),
    /// Accuracy, per-class accuracy, confusion matrix, top losses of a model.
    Eval(EvalArgs),
    /// Classify a test image (--index N) or a PNG/PGM file (--image FILE).
    Predict(PredictArgs),
    /// Learning-rate range test: loss against rate, a suggestion, a plot.
    LrFind(LrFindArgs),
    /// Transfer learning: new head, frozen body, then discriminative rates.
    FineTune(FineTuneArgs),
    /// Quantize a checkpoint to an int8 blob (+ C header / Rust source).
    Export(ExportArgs),
    /// Fetch and verify the four MNIST files.
    Download(DownloadArgs),
    /// Read a PyTorch MLP (nn.Sequential of nn.Linear with ReLU between) from safetensors.
    Import(ImportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Where MNIST is.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// Folder with the four MNIST IDX files, raw or .gz [default: $MNIST_DIR, then data/mnist]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// The worker threads.
#[derive(Debug, Args, Clone)]
pub struct ThreadArgs {
    /// Worker threads; 0 means one per core (more than the cores is capped)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
}

/// The task, where a command can choose one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    /// Ten digits: softmax + cross-entropy.
    Digits,
    /// Threes vs sevens: one sigmoid output + binary cross-entropy.
    #[value(name = "3v7")]
    ThreeSeven,
}

impl From<TaskArg> for Task {
    fn from(t: TaskArg) -> Task {
        match t {
            TaskArg::Digits => Task::Digits,
            TaskArg::ThreeSeven => Task::ThreeSeven,
        }
    }
}

/// The optimizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    /// SGD with momentum and weight decay.
    Sgd,
    /// AdamW (decoupled weight decay).
    Adamw,
}

/// The learning-rate schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    /// Warm up to the peak rate, then anneal (momentum moves 0.95 -> 0.85 -> 0.95).
    OneCycle,
    /// Cosine annealing from the peak rate.
    Cosine,
    /// The rate throughout.
    Constant,
}

/// A learning rate: a number, or `auto` (the range test's suggestion).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lr {
    /// This rate.
    Value(f32),
    /// Run the range test first and train at its suggestion.
    Auto,
}

impl std::fmt::Display for Lr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lr::Value(v) => write!(f, "{v}"),
            Lr::Auto => f.write_str("auto"),
        }
    }
}

fn parse_lr(s: &str) -> Result<Lr, String> {
    if s == "auto" {
        return Ok(Lr::Auto);
    }
    positive_f32(s).map(Lr::Value)
}

/// A finite number above 0.
pub fn positive_f32(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a finite number above 0")),
    }
}

/// A finite number of at least 0.
fn non_negative_f32(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a finite number of at least 0")),
    }
}

/// A number in [0, 1).
fn unit_f32(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a number in [0, 1)")),
    }
}

/// A whole number of at least 1.
pub fn positive_usize(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("'{s}' is not a whole number of at least 1")),
    }
}

/// At most 8 pixels: the digits are 20 pixels wide in a 28-pixel frame.
fn augment(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if v <= 8 => Ok(v),
        _ => Err(format!(
            "'{s}' is not 0..=8 (the digits are 20 pixels wide in a 28-pixel frame)"
        )),
    }
}

/// Hidden widths: `256,128`; `none` (or empty) for no hidden layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widths(pub Vec<usize>);

fn parse_widths(s: &str) -> Result<Widths, String> {
    if s.trim().is_empty() || s == "none" {
        return Ok(Widths(Vec::new()));
    }
    s.split(',')
        .map(|w| match w.trim().parse::<usize>() {
            Ok(x) if x > 0 => Ok(x),
            _ => Err(format!("wants positive widths like 256,128; got '{s}'")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Widths)
}

/// The hyper-parameters every training command shares.
#[derive(Debug, Args, Clone)]
pub struct HyperArgs {
    /// Mini-batch size
    #[arg(long, default_value_t = 64, value_parser = positive_usize, value_name = "N")]
    pub batch: usize,
    /// Optimizer
    #[arg(long, value_enum, default_value_t = OptimizerArg::Sgd)]
    pub optimizer: OptimizerArg,
    /// SGD momentum, or AdamW's beta1 (one-cycle moves it 0.95 -> 0.85 -> 0.95)
    #[arg(long, default_value_t = 0.9, value_parser = unit_f32, allow_negative_numbers = true, value_name = "X")]
    pub momentum: f32,
    /// Weight decay (decoupled for AdamW)
    #[arg(long, default_value_t = 0.0, value_parser = non_negative_f32, allow_negative_numbers = true, value_name = "X")]
    pub weight_decay: f32,
    /// Seed of initialisation, shuffling, augmentation and the validation split
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seed: u64,
    /// Use only N training examples, picked from the seed, balanced over the classes
    #[arg(long, value_parser = positive_usize, value_name = "N")]
    pub train_limit: Option<usize>,
    /// Force a kernel path: scalar, avx2+fma, avx512, neon [default: the best this CPU has]
    #[arg(long, value_name = "ISA")]
    pub isa: Option<String>,
    /// Dense kernels only: no sparse-input products for mostly-zero inputs (to compare)
    #[arg(long)]
    pub dense: bool,
    /// Only the final line
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub threads: ThreadArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

/// What `train` and `fine-tune` share beyond the hyper-parameters.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Peak learning rate, or auto (the range test's suggestion)
    #[arg(long, default_value = "0.1", value_parser = parse_lr, allow_negative_numbers = true, value_name = "X|auto")]
    pub lr: Lr,
    /// Learning-rate schedule
    #[arg(long, value_enum, default_value_t = ScheduleArg::OneCycle)]
    pub schedule: ScheduleArg,
    /// Shift training images by up to N pixels at random (0 turns it off)
    #[arg(long, default_value_t = 1, value_parser = augment, value_name = "N")]
    pub augment: usize,
    /// Training images held out for validation, seeded [default: 5000 for digits, 1/12 of the task's images otherwise]
    #[arg(long, value_name = "N")]
    pub valid: Option<usize>,
    /// Checkpoint file [default: a new runs/TASK-N.ckpt, printed]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the metrics JSON here ('-' for standard output)
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    #[command(flatten)]
    pub hyper: HyperArgs,
}

/// `ember train`.
#[derive(Debug, Args, Clone)]
pub struct TrainArgs {
    /// The task
    #[arg(long, value_enum, default_value_t = TaskArg::Digits)]
    pub task: TaskArg,
    /// Hidden widths, e.g. 256,128 (784 inputs and the task's outputs are implied)
    #[arg(long, default_value = "256,128", value_parser = parse_widths, value_name = "W,W")]
    pub hidden: Widths,
    /// Epochs
    #[arg(long, default_value_t = 8, value_parser = positive_usize, value_name = "N")]
    pub epochs: usize,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `ember fine-tune`.
#[derive(Debug, Args, Clone)]
pub struct FineTuneArgs {
    /// The pretrained checkpoint
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// The task [default: the checkpoint's]; another task gets a new head
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
    /// Epochs training only the head, the body frozen [default: 4]
    #[arg(long, value_name = "N")]
    pub freeze_epochs: Option<usize>,
    /// Epochs training everything afterwards, with discriminative rates [default: 4]; with --on-device-sim, the head's epochs [default: 30]
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// The first group trains at lr / lr-mult, later groups geometrically closer to lr
    #[arg(long, default_value_t = 100.0, value_parser = positive_f32, allow_negative_numbers = true, value_name = "X")]
    pub lr_mult: f32,
    /// Parameter groups [default: one per dense layer]
    #[arg(long, value_parser = positive_usize, value_name = "N")]
    pub groups: Option<usize>,
    /// Simulate a microcontroller training the head itself: the int8 body frozen, an f32 head trained with SGD and momentum at a constant rate, bit for bit as ember's firmware does; --out then writes the trained blob
    #[arg(long, conflicts_with_all = ["freeze_epochs", "lr_mult", "groups", "schedule", "augment", "valid", "optimizer", "weight_decay", "isa", "dense"])]
    pub on_device_sim: bool,
    /// With --on-device-sim: write the firmware's vectors here (model.bin, train.bin, test.bin, their labels, expected.bin, meta.rs)
    #[arg(long, value_name = "DIR", requires = "on_device_sim")]
    pub vectors: Option<PathBuf>,
    /// Held-back test images (threes and sevens, or digits) in the vectors
    #[arg(long, default_value_t = 500, value_parser = positive_usize, value_name = "N", requires = "vectors")]
    pub vectors_count: usize,
    #[command(flatten)]
    pub run: RunArgs,
}

impl FineTuneArgs {
    /// The epochs of the two phases (head alone, then everything), 4 each
    /// unless given.
    pub fn phase_epochs(&self) -> (usize, usize) {
        (self.freeze_epochs.unwrap_or(4), self.epochs.unwrap_or(4))
    }
}

/// `ember lr-find`.
#[derive(Debug, Args, Clone)]
pub struct LrFindArgs {
    /// The task [default: the checkpoint's with --from, else digits]
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
    /// Hidden widths of a fresh model
    #[arg(long, default_value = "256,128", value_parser = parse_widths, value_name = "W,W")]
    pub hidden: Widths,
    /// Start from this checkpoint instead of a fresh model (it is not changed)
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// First rate of the sweep
    #[arg(long, default_value_t = 1e-7, value_parser = positive_f32, allow_negative_numbers = true, value_name = "X")]
    pub start_lr: f32,
    /// Last rate of the sweep
    #[arg(long, default_value_t = 10.0, value_parser = positive_f32, allow_negative_numbers = true, value_name = "X")]
    pub end_lr: f32,
    /// Mini-batches in the sweep
    #[arg(long, default_value_t = 100, value_parser = positive_usize, value_name = "N")]
    pub num: usize,
    /// Print one JSON object: suggested_lr, suggestions, lrs, losses
    #[arg(long)]
    pub json: bool,
    /// Write the curve as an SVG file
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub hyper: HyperArgs,
}

/// `ember eval`.
#[derive(Debug, Args, Clone)]
pub struct EvalArgs {
    /// Checkpoint or exported blob (told apart by their magic)
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Check that the model was trained for this task
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
    /// List the K test images with the highest loss (their indices go to `predict --index`)
    #[arg(long, value_name = "K")]
    pub top_losses: Option<usize>,
    /// List the K most frequent confusions (true -> predicted, count)
    #[arg(long, value_name = "K", num_args = 0..=1, default_missing_value = "10")]
    pub most_confused: Option<usize>,
    #[command(flatten)]
    pub threads: ThreadArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

/// `ember predict`.
#[derive(Debug, Args, Clone)]
#[group(id = "input", required = true, multiple = false, args = ["index", "image"])]
pub struct PredictArgs {
    /// Checkpoint or exported blob
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Classify test image N (of all 10,000)
    #[arg(long, value_name = "N")]
    pub index: Option<usize>,
    /// Classify a PNG or PGM file: 28x28 grey, or scaled to it
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// `ember export`.
#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    /// The checkpoint to export
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The blob file [default: the checkpoint's name with .bin]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write a C header with the blob as an aligned array
    #[arg(long, value_name = "FILE.h")]
    pub c_header: Option<PathBuf>,
    /// Also write a Rust source with the blob as an aligned static
    #[arg(long, value_name = "FILE.rs")]
    pub rust: Option<PathBuf>,
    /// Symbol name in the header / source
    #[arg(long, default_value = "ember_model", value_parser = identifier, value_name = "NAME")]
    pub name: String,
    /// Training images used to calibrate activation ranges
    #[arg(long, default_value_t = 1000, value_parser = positive_usize, value_name = "N")]
    pub calib: usize,
    /// Calibrate to this percentile (e.g. 99.99) instead of min/max
    #[arg(long, value_parser = percentile, value_name = "P")]
    pub percentile: Option<f64>,
    /// Export f32 layers, unquantized (for MCUs with an FPU)
    #[arg(long, conflicts_with = "trainable_head")]
    pub f32: bool,
    /// An int8 body and an f32 last layer a device can train (blob format 1.1)
    #[arg(long)]
    pub trainable_head: bool,
    /// With --trainable-head: a fresh head (zeros) for this task instead of the checkpoint's
    #[arg(long, value_enum, requires = "trainable_head")]
    pub head_task: Option<TaskArg>,
    /// Seed picking the calibration images
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seed: u64,
    /// Print the result as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Also write firmware test vectors here: model.bin, images.bin, labels.bin, logits.bin, meta.rs
    #[arg(long, value_name = "DIR")]
    pub vectors: Option<PathBuf>,
    /// Test images in the vectors
    #[arg(long, default_value_t = 100, value_parser = positive_usize, value_name = "N")]
    pub vectors_count: usize,
    /// Also write the model as a PyTorch state dict (0.weight, 0.bias, 2.weight, ...)
    #[arg(long, value_name = "FILE.safetensors")]
    pub safetensors: Option<PathBuf>,
    /// Check the model fits this board's flash and RAM: microbit, mps2-an386, nrf52840, stm32f411
    #[arg(long, value_name = "NAME")]
    pub board: Option<String>,
    /// Flash bytes of a board not in the list (with --ram)
    #[arg(long, value_name = "BYTES", requires = "ram", conflicts_with = "board")]
    pub flash: Option<usize>,
    /// RAM bytes of a board not in the list (with --flash)
    #[arg(
        long,
        value_name = "BYTES",
        requires = "flash",
        conflicts_with = "board"
    )]
    pub ram: Option<usize>,
    #[command(flatten)]
    pub threads: ThreadArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

fn identifier(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("'{s}' is not a C/Rust identifier"))
    }
}

fn percentile(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p > 50.0 && p <= 100.0 => Ok(p),
        _ => Err(format!("'{s}' is not in (50, 100]")),
    }
}

/// `ember import`.
#[derive(Debug, Args, Clone)]
#[command(
    after_help = "The state dict of nn.Sequential(nn.Linear, nn.ReLU, nn.Linear, ...): \
    tensors <i>.weight [out, in] and <i>.bias [out] under any one prefix (model., net.), \
    f32, f16 or bf16, in the order of <i>. ember assumes a ReLU between every two layers \
    (its MLP's only activation) and none after the last."
)]
pub struct ImportArgs {
    /// The safetensors file (torch: safetensors.torch.save_file(net.state_dict(), FILE))
    #[arg(long, value_name = "FILE")]
    pub safetensors: PathBuf,
    /// The checkpoint to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The task [default: from the last width: 10 outputs digits, 1 output 3v7]
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
}

/// `ember download`.
#[derive(Debug, Args, Clone)]
pub struct DownloadArgs {
    #[command(flatten)]
    pub data: DataArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed_and_shows_defaults() {
        Cli::command().debug_assert();
        let help = Cli::command()
            .find_subcommand_mut("train")
            .unwrap()
            .render_help()
            .to_string();
        for d in [
            "[default: 8]",
            "[default: 64]",
            "[default: 0.1]",
            "[default: one-cycle]",
        ] {
            assert!(help.contains(d), "{d} in\n{help}");
        }
    }
}
