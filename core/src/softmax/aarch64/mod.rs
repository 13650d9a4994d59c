//! aarch64 paths of the row functions.
pub(crate) mod neon;
