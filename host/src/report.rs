//! Every JSON document the CLI writes, as serde types: the names are the
//! contract of ../shared/DESIGN.md that other tools parse, so they live in
//! one place and change only on purpose.

use serde::{Deserialize, Serialize};

/// ember's version, as `ember --version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `train --metrics` and `fine-tune --metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainMetrics {
    /// `digits` or `3v7`.
    pub task: String,
    /// `784-256-128-10`.
    pub arch: String,
    /// The widths, input first.
    pub widths: Vec<usize>,
    /// Trainable parameters.
    pub params: usize,
    /// Accuracy on the test set (0..1), scored once, after training.
    pub test_accuracy: f64,
    /// Test images scored.
    pub test_n: usize,
    /// Seconds of training (evaluation excluded).
    pub train_seconds: f64,
    /// The kernel path (`avx512`, `avx2+fma`, `neon`, `scalar`).
    pub isa: String,
    /// ember's version.
    pub version: String,
    /// Every hyper-parameter of the run.
    pub hyperparameters: Hyperparameters,
    /// One entry per complete epoch.
    pub epochs: Vec<EpochReport>,
    /// fine-tune only: what it started from and how.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fine_tune: Option<FineTuneReport>,
}

/// The hyper-parameters of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hyperparameters {
    /// Peak learning rate (after `--lr auto`, the rate it chose).
    pub lr: f64,
    /// Whether the rate came from the range test.
    pub lr_auto: bool,
    /// Mini-batch size.
    pub batch: usize,
    /// Epochs asked for.
    pub epochs: usize,
    /// Seed.
    pub seed: u64,
    /// Augmentation shift in pixels.
    pub augment: usize,
    /// `sgd` or `adamw`.
    pub optimizer: String,
    /// `one-cycle`, `cosine` or `constant`.
    pub schedule: String,
    /// Momentum (AdamW: beta1).
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Validation images held out of the training set.
    pub valid: usize,
    /// Training images used.
    pub train_examples: usize,
    /// `--train-limit`, if given.
    pub train_limit: Option<usize>,
    /// Worker threads.
    pub threads: usize,
    /// Hidden widths.
    pub hidden: Vec<usize>,
}

/// One epoch of training.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Loss on the validation images (null when there are none).
    pub valid_loss: Option<f64>,
    /// Accuracy on the validation images, 0..1 (null when there are none).
    pub valid_accuracy: Option<f64>,
    /// Seconds of training in the epoch.
    pub seconds: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
}

/// What `fine-tune` adds to the metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FineTuneReport {
    /// The pretrained checkpoint.
    pub from: String,
    /// Whether the head was replaced (the task's outputs differ).
    pub new_head: bool,
    /// Epochs with the body frozen.
    pub freeze_epochs: usize,
    /// `--lr-mult`.
    pub lr_mult: f64,
    /// Per-group rates of the unfrozen phase, first group to head.
    pub group_lrs: Vec<f64>,
}

/// `eval --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// Test accuracy, 0..1.
    pub accuracy: f64,
    /// Test images scored.
    pub n: usize,
    /// `digits` or `3v7`.
    pub task: String,
    /// `f32` or `int8`.
    pub kind: String,
    /// Accuracy of each true class (null where the class has no images).
    pub per_class_accuracy: Vec<Option<f64>>,
    /// Rows: true class; columns: predicted.
    pub confusion: Vec<Vec<usize>>,
    /// `--top-losses K`: the worst test images.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub top_losses: Option<Vec<TopLoss>>,
    /// `--most-confused K`: the most frequent confusions.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub most_confused: Option<Vec<Confusion>>,
}

/// One of the worst-scored test images.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopLoss {
    /// Its index among all 10,000 test images (for `predict --index`).
    pub index: usize,
    /// True class.
    pub label: String,
    /// Predicted class.
    pub predicted: String,
    /// Its loss.
    pub loss: f64,
    /// The probability the model gave its true class.
    pub probability: f64,
}

/// A confusion: how often `actual` was predicted as `predicted`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Confusion {
    /// True class.
    pub actual: String,
    /// Predicted class.
    pub predicted: String,
    /// Test images.
    pub count: usize,
}

/// `lr-find --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LrFindReport {
    /// The rate `--lr auto` trains at.
    pub suggested_lr: f64,
    /// Every suggestion.
    pub suggestions: LrSuggestions,
    /// `784-256-128-10`.
    pub arch: String,
    /// `digits` or `3v7`.
    pub task: String,
    /// The swept rates, one per mini-batch.
    pub lrs: Vec<f64>,
    /// The smoothed loss at each rate.
    pub losses: Vec<f64>,
}

/// The range test's suggestions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LrSuggestions {
    /// A tenth of the rate at the loss minimum (Leslie Smith's rule; the suggestion).
    pub min_div10: f64,
    /// fastai's valley: the middle of the longest descent.
    pub valley: f64,
    /// Where the loss falls fastest.
    pub steepest: f64,
}

/// `fine-tune --on-device-sim --metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceSimReport {
    /// The checkpoint the body came from.
    pub from: String,
    /// `digits` or `3v7`: the head's task.
    pub task: String,
    /// The blob's widths, `784-128-1`.
    pub arch: String,
    /// Whether the head was fresh (the task changed).
    pub new_head: bool,
    /// Training images.
    pub train_examples: usize,
    /// Test images scored.
    pub test_n: usize,
    /// Test accuracy (0..1) with the head the device starts from.
    pub accuracy_before: f64,
    /// Test accuracy (0..1) after training on the device.
    pub accuracy_after: f64,
    /// Learning rate.
    pub lr: f64,
    /// Momentum.
    pub momentum: f64,
    /// Images per step.
    pub batch: usize,
    /// Epochs.
    pub epochs: usize,
    /// Shuffle seed (and of a fresh head).
    pub seed: u64,
    /// Optimizer steps.
    pub steps: usize,
    /// Each step's mini-batch loss.
    pub losses: Vec<f64>,
    /// Bytes of head-trainer state the device needs.
    pub state_bytes: usize,
    /// Bytes of cached features the device needs.
    pub feature_cache_bytes: usize,
    /// Bytes of inference scratch.
    pub scratch_bytes: usize,
    /// The trained blob written, if any.
    pub blob: Option<String>,
}

/// `export --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportReport {
    /// The blob file.
    pub blob: String,
    /// Its size.
    pub bytes: usize,
    /// Scratch bytes inference needs.
    pub scratch_bytes: usize,
    /// `int8` or `f32`.
    pub kind: String,
    /// `784-128-10`.
    pub arch: String,
    /// `digits` or `3v7`.
    pub task: String,
    /// Parameters.
    pub params: usize,
    /// `--board`/`--flash --ram`: what the model takes of the board.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub board: Option<BoardFit>,
}

/// A model against a board's memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoardFit {
    /// The board (or `custom`).
    pub board: String,
    /// Flash bytes the firmware needs: blob plus the example's code.
    pub flash_needed: usize,
    /// The board's flash.
    pub flash: usize,
    /// RAM bytes the firmware needs: scratch, stack and statics.
    pub ram_needed: usize,
    /// The board's RAM.
    pub ram: usize,
}

/// Serializes a report as pretty JSON with a final newline.
pub fn to_json<T: Serialize>(r: &T) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_else(|e| {
        // Serializing these plain types cannot fail; say so if it ever does.
        format!("{{\"error\": \"cannot serialize the report: {e}\"}}")
    });
    s.push('\n');
    s
}
