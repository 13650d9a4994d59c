//! AVX2: 32 bytes per step (`vpsignb`, `vpmaddubsw`, `vpmaddwd`) into 8 x i32.
use core::arch::x86_64::*;

#[target_feature(enable = "avx2")]
#[inline]
fn zero() -> __m256i {
    _mm256_setzero_si256()
}
/// # Safety
/// `p..p + 32` is readable.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn load(p: *const i8) -> __m256i {
    // SAFETY: the caller guarantees 32 readable bytes; loadu has no alignment need.
    unsafe { _mm256_loadu_si256(p.cast()) }
}
#[target_feature(enable = "avx2")]
#[inline]
fn abs8(x: __m256i) -> __m256i {
    _mm256_abs_epi8(x) // |-128| = 0x80, read as unsigned 128 by maddubs
}
#[target_feature(enable = "avx2")]
#[inline]
fn sign8(w: __m256i, x: __m256i) -> __m256i {
    _mm256_sign_epi8(w, x)
}
#[target_feature(enable = "avx2")]
#[inline]
fn dot_acc(acc: __m256i, ax: __m256i, sw: __m256i) -> __m256i {
    let pairs = _mm256_maddubs_epi16(ax, sw);
    _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}
#[target_feature(enable = "avx2")]
#[inline]
fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

dots_body!("avx2", bytes = 32);
