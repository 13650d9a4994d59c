//! The two tasks of the write-up: ten digits (softmax + cross-entropy) and
//! threes versus sevens (one sigmoid output + binary cross-entropy).

use crate::data::Dataset;

/// What the network learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Ten digits: softmax + cross-entropy.
    Digits,
    /// Threes against sevens (7 positive): one sigmoid output, binary cross-entropy.
    ThreeSeven,
}

impl Task {
    /// The CLI / JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Task::Digits => "digits",
            Task::ThreeSeven => "3v7",
        }
    }
    /// Parses a CLI name.
    pub fn from_name(s: &str) -> Option<Task> {
        match s {
            "digits" => Some(Task::Digits),
            "3v7" => Some(Task::ThreeSeven),
            _ => None,
        }
    }
    /// Code stored in checkpoints and blobs.
    pub fn code(self) -> u8 {
        match self {
            Task::Digits => 0,
            Task::ThreeSeven => 1,
        }
    }
    /// Inverse of [`Task::code`].
    pub fn from_code(c: u8) -> Option<Task> {
        match c {
            0 => Some(Task::Digits),
            1 => Some(Task::ThreeSeven),
            _ => None,
        }
    }
    /// Output units.
    pub fn outputs(self) -> usize {
        match self {
            Task::Digits => 10,
            Task::ThreeSeven => 1,
        }
    }
    /// Classes reported by eval.
    pub fn classes(self) -> usize {
        match self {
            Task::Digits => 10,
            Task::ThreeSeven => 2,
        }
    }
    /// Keeps the examples of this task, relabelled to its classes (3v7: 3 → 0, 7 → 1).
    pub fn filter(self, d: &Dataset) -> Dataset {
        match self {
            Task::Digits => d.clone(),
            Task::ThreeSeven => {
                let mut out = d.select(&self.kept(d));
                for l in &mut out.labels {
                    *l = u8::from(*l == 7);
                }
                out
            }
        }
    }
    /// The indices of `d` that [`Task::filter`] keeps, in order.
    pub fn kept(self, d: &Dataset) -> Vec<usize> {
        match self {
            Task::Digits => (0..d.len()).collect(),
            Task::ThreeSeven => (0..d.len())
                .filter(|&i| matches!(d.labels[i], 3 | 7))
                .collect(),
        }
    }
    /// The class name of a label of this task.
    pub fn class_name(self, c: usize) -> String {
        match self {
            Task::Digits => c.to_string(),
            Task::ThreeSeven => if c == 1 { "7" } else { "3" }.to_string(),
        }
    }
}
