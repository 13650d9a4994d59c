//! AVX-512 VNNI: the AVX-512BW path with its three-instruction step
//! (`vpmaddubsw`, `vpmaddwd` with ones, `vpaddd`) replaced by one
//! `vpdpbusd`, which multiplies |x| (u8) by sign-adjusted w (i8) and adds
//! every four adjacent products straight into the 32-bit lanes. It does not
//! saturate and the sums are the same integers, so the bits match every
//! other path. Loads, |x|, the sign and the reduction are AVX-512BW's.
use super::avx512::{abs8, hsum, load, sign8, zero};
use core::arch::x86_64::*;

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
fn dot_acc(acc: __m512i, ax: __m512i, sw: __m512i) -> __m512i {
    _mm512_dpbusd_epi32(acc, ax, sw)
}

dots_body!("avx512f,avx512bw,avx512vnni", bytes = 64);
