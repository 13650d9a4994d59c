//! Seeded random initialisation: Kaiming (He) normal weights for ReLU
//! networks, from a `rand_xorshift` generator so a seed fixes every weight.
#![forbid(unsafe_code)]

use rand_core::{Rng, SeedableRng};
use rand_xorshift::XorShiftRng;

/// A seeded generator: the same seed gives the same stream on every platform.
pub fn rng(seed: u64) -> XorShiftRng {
    XorShiftRng::seed_from_u64(seed)
}

/// A uniform sample in [0, 1) with 24 random bits.
pub fn uniform(rng: &mut XorShiftRng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}

/// A standard normal sample (Box–Muller).
pub fn normal(rng: &mut XorShiftRng) -> f32 {
    // 1 − u lies in (0, 1], so the log is finite.
    let u1 = 1.0 - uniform(rng);
    let u2 = uniform(rng);
    libm::sqrtf(-2.0 * libm::logf(u1)) * libm::cosf(core::f32::consts::TAU * u2)
}

/// Fills `w` with Kaiming-normal values for a layer with `fan_in` inputs:
/// N(0, 2 / fan_in), the variance that keeps ReLU activations from shrinking
/// or growing layer after layer (He et al., 2015).
pub fn kaiming_normal(w: &mut [f32], fan_in: usize, rng: &mut XorShiftRng) {
    let std = libm::sqrtf(2.0 / fan_in.max(1) as f32);
    for v in w {
        *v = normal(rng) * std;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaiming_has_the_right_moments_and_is_seeded() {
        let mut w = [0.0f32; 20000];
        kaiming_normal(&mut w, 200, &mut rng(1));
        let n = w.len() as f32;
        let mean = w.iter().sum::<f32>() / n;
        let var = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        assert!(mean.abs() < 0.003, "{mean}");
        assert!((var / 0.01 - 1.0).abs() < 0.05, "{var}");
        let mut w2 = [0.0f32; 20000];
        kaiming_normal(&mut w2, 200, &mut rng(1));
        assert_eq!(w, w2);
        kaiming_normal(&mut w2, 200, &mut rng(2));
        assert_ne!(w, w2);
    }
}
