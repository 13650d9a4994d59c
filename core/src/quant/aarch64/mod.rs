//! aarch64 paths of the int8 kernel.
pub(crate) mod neon;
pub(crate) mod neon_packed;
