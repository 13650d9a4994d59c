//! One file per subcommand.
pub mod eval;
pub mod export;
pub mod fine_tune;
pub mod lr_find;
pub mod predict;
pub mod train;
