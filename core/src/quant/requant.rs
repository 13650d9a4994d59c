//! Fixed-point requantization: an int32 accumulator times a real multiplier
//! M in (0, 1), in integers only.
//!
//! M is stored as a Q31 `multiplier` in [2^30, 2^31) and a right `shift` in
//! 0..=31: M = multiplier · 2^−(31 + shift). The product is formed in 64 bits
//! (|acc · multiplier| < 2^62, no overflow) and rounded **half toward +∞**:
//! `(acc · multiplier + 2^(30 + shift)) >> (31 + shift)`, an arithmetic shift.
//! That one rule, on every platform and path, is what makes int8 inference
//! bit-exact everywhere.
#![forbid(unsafe_code)]

use crate::Error;

/// A real multiplier M in [2^−32, 1) as Q31 mantissa and right shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requant {
    /// Q31 mantissa in [2^30, 2^31).
    pub multiplier: i32,
    /// Right shift in 0..=31.
    pub shift: u32,
}

/// Smallest valid multiplier (0.5 in Q31).
pub const MULTIPLIER_MIN: i32 = 1 << 30;
/// Largest valid shift.
pub const SHIFT_MAX: u32 = 31;

impl Requant {
    /// The closest representation of `m`.
    ///
    /// # Errors
    /// [`Error::BadHyperParameter`] unless 2^−32 ≤ m < 1 (NaN included).
    pub fn from_real(m: f64) -> Result<Self, Error> {
        if !(m >= libm::ldexp(1.0, -32) && m < 1.0) {
            return Err(Error::BadHyperParameter);
        }
        // m = f · 2^e with f in [0.5, 1): e in -31..=0.
        let (f, e) = libm::frexp(m);
        let mut q = libm::round(f * 2_147_483_648.0) as i64; // f · 2^31
        let mut shift = (-e) as u32;
        if q == 1 << 31 {
            // f rounded up to 1.0: renormalise.
            q = 1 << 30;
            if shift == 0 {
                return Err(Error::BadHyperParameter);
            }
            shift -= 1;
        }
        let r = Requant {
            multiplier: q as i32,
            shift,
        };
        debug_assert!(r.is_valid());
        Ok(r)
    }

    /// Whether the fields are in range (a parser's check).
    pub fn is_valid(self) -> bool {
        self.multiplier >= MULTIPLIER_MIN && self.shift <= SHIFT_MAX
    }

    /// The real multiplier this represents.
    pub fn to_real(self) -> f64 {
        self.multiplier as f64 * libm::ldexp(1.0, -(31 + self.shift as i32))
    }

    /// `round(acc · M)`, half toward +∞: `(acc·m + 2^(30+s)) >> (31+s)`.
    /// Requires [`Requant::is_valid`].
    ///
    /// Computed without 64-bit variable shifts (costly on 32-bit cores): with
    /// `h = (acc·m) >> 31` (a constant shift, and |h| < 2^31), for s ≥ 1 the
    /// rounding term is a whole multiple of 2^31, so the result is
    /// `(h + 2^(s−1)) >> s`, split as `(h >> s) + ((h mod 2^s) + 2^(s−1)) >> s`
    /// to stay in 32 bits. Equal to the 64-bit formula for every input (tested).
    #[inline]
    pub fn apply(self, acc: i32) -> i32 {
        let prod = acc as i64 * self.multiplier as i64; // |prod| < 2^62
        let s = self.shift;
        if s == 0 {
            return ((prod + (1 << 30)) >> 31) as i32;
        }
        let h = (prod >> 31) as i32;
        let low = (h as u32) & ((1u32 << s) - 1); // h mod 2^s, < 2^31
        (h >> s) + ((low + (1u32 << (s - 1))) >> s) as i32
    }

    /// The defining 64-bit formula [`Requant::apply`] must equal.
    pub fn apply_reference(self, acc: i32) -> i32 {
        let total = 31 + self.shift; // 31..=62
        let prod = acc as i64 * self.multiplier as i64;
        ((prod + (1i64 << (total - 1))) >> total) as i32
    }
}

/// Requantizes an accumulator to int8: `clamp(round(acc · M) + zero_point, lo, 127)`
/// where `lo` is the zero point for a fused ReLU and −128 otherwise.
#[inline]
pub fn requantize(acc: i32, rq: Requant, zero_point: i32, relu: bool) -> i8 {
    let lo = if relu { zero_point } else { -128 };
    let v = rq.apply(acc).saturating_add(zero_point);
    v.clamp(lo.max(-128), 127) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_real_round_trips() {
        for m in [
            0.5,
            0.75,
            0.999_999_9,
            1e-3,
            3.3e-5,
            2.4e-10,
            0.25,
            0.123_456_789,
        ] {
            let r = Requant::from_real(m).unwrap();
            assert!(r.is_valid(), "{m}: {r:?}");
            assert!(
                (r.to_real() - m).abs() <= m * 2f64.powi(-30),
                "{m}: {}",
                r.to_real()
            );
        }
        for bad in [0.0, -0.5, 1.0, 2.0, f64::NAN, f64::INFINITY, 1e-12] {
            assert!(Requant::from_real(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rounding_is_half_toward_plus_infinity() {
        let half = Requant::from_real(0.5).unwrap();
        assert_eq!((half.multiplier, half.shift), (1 << 30, 0));
        // 0.5 · acc for odd acc lands exactly on .5: rounds up.
        assert_eq!(half.apply(3), 2); // 1.5 -> 2
        assert_eq!(half.apply(-3), -1); // -1.5 -> -1
        assert_eq!(half.apply(1), 1); // 0.5 -> 1
        assert_eq!(half.apply(-1), 0); // -0.5 -> 0
        assert_eq!(half.apply(0), 0);
        let quarter = Requant::from_real(0.25).unwrap();
        assert_eq!(quarter.apply(5), 1); // 1.25
        assert_eq!(quarter.apply(6), 2); // 1.5
        assert_eq!(quarter.apply(-6), -1); // -1.5
        assert_eq!(quarter.apply(-7), -2); // -1.75
                                           // Extremes neither overflow nor wrap.
        let big = Requant {
            multiplier: i32::MAX,
            shift: 0,
        };
        assert_eq!(big.apply(i32::MAX), i32::MAX - 1);
        assert_eq!(big.apply(i32::MIN), i32::MIN + 1);
        let tiny = Requant {
            multiplier: MULTIPLIER_MIN,
            shift: 31,
        };
        assert_eq!(tiny.apply(i32::MAX), 0);
        assert_eq!(tiny.apply(i32::MIN), 0);
    }

    #[test]
    fn apply_equals_the_64_bit_formula() {
        let mut x = 0x2545_f491u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let accs = [
            0,
            1,
            -1,
            2,
            -2,
            i32::MAX,
            i32::MIN,
            i32::MAX - 1,
            i32::MIN + 1,
            1 << 30,
            -(1 << 30),
        ];
        let mults = [
            MULTIPLIER_MIN,
            MULTIPLIER_MIN + 1,
            i32::MAX,
            i32::MAX - 1,
            0x5000_0000,
        ];
        for shift in 0..=SHIFT_MAX {
            for &m in &mults {
                for &a in &accs {
                    let r = Requant {
                        multiplier: m,
                        shift,
                    };
                    assert_eq!(r.apply(a), r.apply_reference(a), "{a} {m} {shift}");
                }
            }
            for _ in 0..20_000 {
                let r = Requant {
                    multiplier: (next() >> 1).max(MULTIPLIER_MIN as u32) as i32,
                    shift,
                };
                let a = next() as i32 >> (next() % 32);
                assert_eq!(r.apply(a), r.apply_reference(a), "{a} {r:?}");
            }
        }
    }

    #[test]
    fn requantize_saturates_and_folds_relu() {
        let one = Requant {
            multiplier: i32::MAX,
            shift: 0,
        }; // ≈ 1
        assert_eq!(requantize(1000, one, 0, false), 127);
        assert_eq!(requantize(-1000, one, 0, false), -128);
        assert_eq!(requantize(-5, one, -128, true), -128);
        assert_eq!(
            requantize(-5, one, -20, true),
            -20,
            "ReLU clamps at the zero point"
        );
        assert_eq!(requantize(10, one, -20, true), -10);
        assert_eq!(requantize(i32::MAX, one, 100, false), 127);
        assert_eq!(requantize(i32::MIN, one, -100, false), -128);
    }
}
