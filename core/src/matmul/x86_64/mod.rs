//! x86_64 paths of the f32 products.
pub(crate) mod avx2;
pub(crate) mod avx512;
