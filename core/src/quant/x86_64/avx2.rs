//! AVX2: 16 bytes per step, widened to 16 x i16, `vpmaddwd` into 8 x i32.
use core::arch::x86_64::*;

#[target_feature(enable = "avx2")]
#[inline]
fn zero() -> __m256i {
    _mm256_setzero_si256()
}
/// # Safety
/// `p..p + 16` is readable.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn widen(p: *const i8) -> __m256i {
    // SAFETY: the caller guarantees 16 readable bytes; loadu has no alignment need.
    _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(p.cast()) })
}
#[target_feature(enable = "avx2")]
#[inline]
fn madd(a: __m256i, b: __m256i) -> __m256i {
    _mm256_madd_epi16(a, b)
}
#[target_feature(enable = "avx2")]
#[inline]
fn add(a: __m256i, b: __m256i) -> __m256i {
    _mm256_add_epi32(a, b)
}
#[target_feature(enable = "avx2")]
#[inline]
fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

dots_body!("avx2", bytes = 16);
