//! x86_64 paths of the row functions.
pub(crate) mod avx2;
pub(crate) mod avx512;
