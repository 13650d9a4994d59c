//! # ember — a heap-free neural-network core
//!
//! Everything that crunches numbers in ember lives here, in a `#![no_std]`
//! crate with no allocator, so the very same code trains on a desktop and runs
//! on a microcontroller.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

// Run-time CPU detection only; the core never allocates.
#[rustfmt::skip]
#[cfg(feature = "std")] extern crate std;

pub mod activation;
pub mod blob;
mod buffer;
pub mod crc32;
pub mod dense;
mod error;
pub mod init;
pub mod isa;
pub mod loss;
pub mod matmul;
pub mod mlp;
pub mod optim;
pub mod par;
pub mod quant;
pub mod softmax;

pub use buffer::{as_i8, as_u8, Buffer, F32Buffer, I32Buffer, I8Buffer, Matrix};
pub use dense::Dense;
pub use error::Error;
pub use isa::Isa;
pub use mlp::Mlp;
pub use optim::{Optimizer, ParamGroup, Rule};
pub use par::{Parallel, Serial};

/// The most dense layers a model may have (a compile-time capacity).
pub const MAX_LAYERS: usize = 8;
