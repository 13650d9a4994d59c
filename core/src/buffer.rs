//! Fixed-size, const-generic buffers aligned for SIMD loads (64 bytes: one
//! cache line, one AVX-512 register). For code whose shapes are known at
//! compile time (firmware, tests); kernels themselves take plain slices.

use core::ops::{Deref, DerefMut};

/// `N` values of `T` aligned to 64 bytes. Derefs to a slice.
///
/// ```
/// use ember::Buffer;
/// let mut b: Buffer<f32, 16> = Buffer::splat(1.0);
/// b[3] = 2.0;
/// assert_eq!(b.iter().sum::<f32>(), 17.0);
/// assert_eq!(b.as_ptr() as usize % 64, 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct Buffer<T, const N: usize>(pub [T; N]);

impl<T: Copy, const N: usize> Buffer<T, N> {
    /// A buffer with every element set to `v`.
    pub const fn splat(v: T) -> Self {
        Buffer([v; N])
    }
}

impl<T: Copy + Default, const N: usize> Default for Buffer<T, N> {
    fn default() -> Self {
        Buffer([T::default(); N])
    }
}

impl<T, const N: usize> Deref for Buffer<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T, const N: usize> DerefMut for Buffer<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

/// A buffer of `f32`.
pub type F32Buffer<const N: usize> = Buffer<f32, N>;
/// A buffer of `i8`.
pub type I8Buffer<const N: usize> = Buffer<i8, N>;
/// A buffer of `i32`.
pub type I32Buffer<const N: usize> = Buffer<i32, N>;

/// A row-major `R x C` matrix of `f32` in one aligned buffer, with its shape
/// in the type: `R * C` is checked when the type is used.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct Matrix<const R: usize, const C: usize>(pub [[f32; C]; R]);

impl<const R: usize, const C: usize> Matrix<R, C> {
    /// Rows.
    pub const ROWS: usize = R;
    /// Columns.
    pub const COLS: usize = C;

    /// All zeros.
    pub const fn zeros() -> Self {
        Matrix([[0.0; C]; R])
    }

    /// The elements in row-major order.
    pub fn as_slice(&self) -> &[f32] {
        self.0.as_flattened()
    }

    /// The elements in row-major order, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        self.0.as_flattened_mut()
    }
}

/// Views bytes as signed bytes (int8 tensors stored in a byte blob), without copying.
pub fn as_i8(bytes: &[u8]) -> &[i8] {
    // SAFETY: i8 and u8 have the same size and alignment, and every bit
    // pattern is a valid i8; the length and lifetime are carried over unchanged.
    unsafe { core::slice::from_raw_parts(bytes.as_ptr().cast::<i8>(), bytes.len()) }
}

/// Views signed bytes as bytes, without copying.
pub fn as_u8(bytes: &[i8]) -> &[u8] {
    // SAFETY: as in `as_i8`, the other way round.
    unsafe { core::slice::from_raw_parts(bytes.as_ptr().cast::<u8>(), bytes.len()) }
}
