//! aarch64 paths of the f32 products.
pub(crate) mod neon;
