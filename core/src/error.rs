//! The one error type of the core. Variants carry numbers, never strings, so the
//! type stays `Copy`, small, and usable on a microcontroller.

use core::fmt;

/// Everything that can go wrong in the core.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A slice or dimension does not have the length the operation needs.
    ShapeMismatch {
        /// The length (or dimension) the operation needs.
        expected: usize,
        /// The length (or dimension) it was given.
        got: usize,
    },
    /// An output or scratch buffer is too small.
    BufferTooSmall {
        /// Bytes (or elements, for element buffers) needed.
        needed: usize,
        /// Bytes (or elements) given.
        got: usize,
    },
    /// A dimension is zero, or a product of dimensions overflows `usize`/`u32`.
    BadDimension,
    /// More layers than the compile-time capacity [`crate::MAX_LAYERS`].
    TooManyLayers {
        /// The number of layers asked for.
        got: usize,
    },
    /// A class index (target label) outside `0..classes`.
    LabelOutOfRange {
        /// The offending label.
        label: usize,
        /// The number of classes.
        classes: usize,
    },
    /// A hyper-parameter (learning rate, momentum, ...) is NaN, infinite or out of range.
    BadHyperParameter,
    /// The blob does not start with the ember magic.
    BadMagic,
    /// The blob's format version is not one this parser reads.
    UnsupportedVersion {
        /// The major version found in the blob.
        found: u16,
    },
    /// The blob ends before a structure that starts at `offset` is complete.
    Truncated {
        /// Byte offset of the incomplete structure.
        offset: usize,
    },
    /// A structure at `offset` is not aligned as the format promises.
    Misaligned {
        /// Byte offset of the misaligned structure.
        offset: usize,
    },
    /// A field of the blob holds a value the format does not allow.
    BadField {
        /// Byte offset of the field.
        offset: usize,
    },
    /// The blob's CRC-32 does not match its contents.
    ChecksumMismatch,
    /// The requested SIMD path is not available on this CPU or build.
    IsaUnavailable,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::ShapeMismatch { expected, got } => {
                write!(f, "shape mismatch: expected length {expected}, got {got}")
            }
            Error::BufferTooSmall { needed, got } => {
                write!(f, "buffer too small: needs {needed}, got {got}")
            }
            Error::BadDimension => f.write_str("a dimension is zero or a size overflows"),
            Error::TooManyLayers { got } => write!(
                f,
                "{got} layers exceed the capacity of {}",
                crate::MAX_LAYERS
            ),
            Error::LabelOutOfRange { label, classes } => {
                write!(f, "label {label} is outside 0..{classes}")
            }
            Error::BadHyperParameter => {
                f.write_str("a hyper-parameter is NaN, infinite or out of range")
            }
            Error::BadMagic => f.write_str("not an ember model blob (bad magic)"),
            Error::UnsupportedVersion { found } => {
                write!(f, "unsupported blob format version {found}")
            }
            Error::Truncated { offset } => write!(f, "blob truncated at byte {offset}"),
            Error::Misaligned { offset } => write!(f, "misaligned data at byte {offset}"),
            Error::BadField { offset } => write!(f, "invalid field at byte {offset}"),
            Error::ChecksumMismatch => f.write_str("blob checksum mismatch"),
            Error::IsaUnavailable => f.write_str("the requested SIMD path is not available"),
        }
    }
}

impl core::error::Error for Error {}
