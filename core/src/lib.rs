//! # ember — a heap-free neural-network core
//!
//! Everything that crunches numbers in ember lives here, in a `#![no_std]`
//! crate with no allocator, so the very same code trains on a desktop and runs
//! on a microcontroller.
//!
//! ## A tour
//!
//! - [`matmul`]: `A·B`, `A·Bᵀ`, `Aᵀ·B` (and accumulating forms), vectorized for
//!   AVX2+FMA, AVX-512F and NEON over a scalar reference; [`isa`] picks the path.
//! - [`softmax`]: max-subtracted softmax, log-softmax, log-sum-exp, vector `exp`.
//! - [`activation`], [`loss`]: ReLU, a stable sigmoid; NLL, cross-entropy fused
//!   with log-softmax, binary cross-entropy with logits — with gradients.
//! - [`dense`], [`mlp`], [`init`]: layers with backprop over caller-owned buffers.
//! - [`optim`]: SGD with momentum and weight decay, AdamW, over parameter groups
//!   with per-group learning rates and frozen flags.
//! - [`quant`], [`blob`]: int8 quantization, the model blob (`docs/FORMAT.md`),
//!   and integer-only inference that needs no floating point.
//! - [`head`]: transfer learning on the device — a frozen int8 body, an f32
//!   head trained with SGD in fixed buffers, written back into the blob.
//!
//! ## Example: integer inference from a blob, in a scratch buffer
//!
//! ```
//! use ember::blob::{self, LayerData, LayerSpec};
//! use ember::quant::{ActQuant, Requant};
//!
//! // A one-layer int8 model (4 pixels -> 2 logits), written as a blob...
//! let weight = [1i8, -2, 3, -4, 5, 6, -7, 8];
//! let layer = LayerSpec {
//!     in_dim: 4,
//!     out_dim: 2,
//!     relu: false,
//!     data: LayerData::Int8 {
//!         weight: &weight,
//!         bias: &[0, 10],
//!         requant: &[Requant::from_real(0.01)?, Requant::from_real(0.02)?],
//!         output: ActQuant { scale: 0.1, zero_point: 0 },
//!     },
//! };
//! #[repr(C, align(16))]
//! struct Aligned([u8; 512]);
//! let mut buf = Aligned([0; 512]);
//! let len = blob::write(0, &[layer], &mut buf.0)?;
//!
//! // ...read back in place (as from flash) and run in a fixed scratch buffer.
//! let model = blob::parse(&buf.0[..len])?;
//! let mut scratch = [0u8; 16];
//! assert!(scratch.len() >= model.scratch_bytes());
//! let mut logits = [0i8; 2];
//! model.infer_i8(&[255, 0, 128, 64], &mut scratch, &mut logits)?;
//! assert_eq!(model.predict_i8(&[255, 0, 128, 64], &mut scratch)?, 0);
//! # Ok::<(), ember::Error>(())
//! ```
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
mod elementwise;
mod error;
pub mod head;
pub mod init;
pub mod isa;
pub mod loss;
pub mod matmul;
pub mod mlp;
pub mod optim;
pub mod par;
pub mod quant;
pub mod softmax;
pub mod zero_runs;

pub use buffer::{as_i8, as_u8, Buffer, F32Buffer, I32Buffer, I8Buffer, Matrix};
pub use dense::Dense;
pub use error::Error;
pub use isa::Isa;
pub use mlp::Mlp;
pub use optim::{Optimizer, ParamGroup, Rule};
pub use par::{Parallel, Serial};

/// The most dense layers a model may have (a compile-time capacity).
pub const MAX_LAYERS: usize = 8;
