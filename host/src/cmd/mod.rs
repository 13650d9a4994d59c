//! One file per subcommand.
pub mod eval;
pub mod predict;
pub mod train;
