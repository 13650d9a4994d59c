//! AVX-512BW: 64 bytes per step. There is no 512-bit `vpsignb`, so the sign
//! is applied with a mask: w where x > 0, −w where x < 0, 0 where x = 0.
use core::arch::x86_64::*;

#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
pub(super) fn zero() -> __m512i {
    _mm512_setzero_si512()
}
/// # Safety
/// `p..p + 64` is readable.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
pub(super) unsafe fn load(p: *const i8) -> __m512i {
    // SAFETY: the caller guarantees 64 readable bytes; loadu has no alignment need.
    unsafe { _mm512_loadu_si512(p.cast()) }
}
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
pub(super) fn abs8(x: __m512i) -> __m512i {
    _mm512_abs_epi8(x)
}
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
pub(super) fn sign8(w: __m512i, x: __m512i) -> __m512i {
    let z = _mm512_setzero_si512();
    let neg = _mm512_cmplt_epi8_mask(x, z);
    let nonzero = _mm512_test_epi8_mask(x, x);
    let flipped = _mm512_mask_sub_epi8(w, neg, z, w);
    _mm512_maskz_mov_epi8(nonzero, flipped)
}
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn dot_acc(acc: __m512i, ax: __m512i, sw: __m512i) -> __m512i {
    let pairs = _mm512_maddubs_epi16(ax, sw);
    _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)))
}
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
pub(super) fn hsum(v: __m512i) -> i32 {
    _mm512_reduce_add_epi32(v)
}

dots_body!("avx512f,avx512bw", bytes = 64);
