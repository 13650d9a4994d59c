//! aarch64 paths of the int8 kernel.
pub(crate) mod neon;
