//! x86_64 paths of the int8 kernel.
pub(crate) mod avx2;
pub(crate) mod avx2_packed;
pub(crate) mod avx512;
pub(crate) mod avx512vnni;
pub(crate) mod avx512vnni_packed;
