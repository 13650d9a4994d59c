//! ember on the desktop: MNIST loading, the training loop, checkpoints and the
//! command-line tool `ember`. All arithmetic is the core's (`ember` crate).

pub mod aligned;
pub mod blob_error;
pub mod checkpoint;
pub mod cli;
pub mod cmd;
pub mod console;
pub mod download;
pub mod export;
pub mod fpmode;
pub mod fsutil;
pub mod interrupt;
pub mod lr_find;
pub mod mnist;
pub mod par;
pub mod train;
