//! ember on the desktop: MNIST loading, the training loop, checkpoints,
//! export, and the command-line tool `ember`. All arithmetic is the core's
//! (`ember` crate).
//!
//! The arrows point one way: `cmd` (one file a command, sharing only
//! `cmd::common`) -> `train`, `eval`, `lr_find`, `export` -> `data`,
//! `checkpoint`, `report`, `task` -> the core. Below everything: `fsutil`
//! (checked, atomic files), `par` (the thread pool), `fpmode`, `interrupt`,
//! `console`.

pub mod aligned;
pub mod args;
pub mod blob_error;
pub mod checkpoint;
pub mod cmd;
pub mod console;
pub mod data;
pub mod device_sim;
pub mod eval;
pub mod export;
pub mod fpmode;
pub mod fsutil;
pub mod interop;
pub mod interrupt;
pub mod lr_find;
pub mod par;
pub mod report;
pub mod task;
pub mod train;
