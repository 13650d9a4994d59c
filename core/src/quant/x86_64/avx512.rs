//! AVX-512BW: 32 bytes per step, widened to 32 x i16, `vpmaddwd` into 16 x i32.
use core::arch::x86_64::*;

#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn zero() -> __m512i {
    _mm512_setzero_si512()
}
/// # Safety
/// `p..p + 32` is readable.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn widen(p: *const i8) -> __m512i {
    // SAFETY: the caller guarantees 32 readable bytes; loadu has no alignment need.
    _mm512_cvtepi8_epi16(unsafe { _mm256_loadu_si256(p.cast()) })
}
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn madd(a: __m512i, b: __m512i) -> __m512i {
    _mm512_madd_epi16(a, b)
}
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn add(a: __m512i, b: __m512i) -> __m512i {
    _mm512_add_epi32(a, b)
}
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn hsum(v: __m512i) -> i32 {
    _mm512_reduce_add_epi32(v)
}

dots_body!("avx512f,avx512bw", bytes = 32);
