//! How the learning rate (and momentum) move over training: one-cycle,
//! cosine, constant; and fastai's discriminative rates over layer groups.

/// How the learning rate moves over training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// The same rate throughout.
    Constant,
    /// Cosine annealing from lr to 0.
    Cosine,
    /// fastai's one-cycle: warm up from lr/div to lr over `pct_start` of the
    /// steps, then cosine-anneal to lr/div_final; momentum moves opposite.
    OneCycle {
        /// lr / div is the starting rate.
        div: f32,
        /// lr / div_final is the final rate.
        div_final: f32,
        /// Fraction of steps spent warming up.
        pct_start: f32,
        /// Momentum at the ends.
        mom_max: f32,
        /// Momentum at the peak rate.
        mom_min: f32,
    },
}

impl Schedule {
    /// fastai's defaults (div 25, div_final 1e5, pct_start 0.25, momentum 0.95 → 0.85 → 0.95).
    pub const ONE_CYCLE: Schedule = Schedule::OneCycle {
        div: 25.0,
        div_final: 1e5,
        pct_start: 0.25,
        mom_max: 0.95,
        mom_min: 0.85,
    };

    /// (lr multiplier in (0, 1], momentum override) at `step` of `total`.
    pub fn at(self, step: usize, total: usize) -> (f32, Option<f32>) {
        let t = if total <= 1 {
            0.0
        } else {
            step as f32 / (total - 1) as f32
        };
        let cos = |a: f32, b: f32, p: f32| {
            b + (a - b) * (1.0 + (std::f32::consts::PI * p.clamp(0.0, 1.0)).cos()) / 2.0
        };
        match self {
            Schedule::Constant => (1.0, None),
            Schedule::Cosine => (cos(1.0, 0.0, t), None),
            Schedule::OneCycle {
                div,
                div_final,
                pct_start,
                mom_max,
                mom_min,
            } => {
                if t < pct_start {
                    let p = t / pct_start;
                    (cos(1.0 / div, 1.0, p), Some(cos(mom_max, mom_min, p)))
                } else {
                    let p = (t - pct_start) / (1.0 - pct_start);
                    (cos(1.0, 1.0 / div_final, p), Some(cos(mom_min, mom_max, p)))
                }
            }
        }
    }
}

/// fastai's `slice(lr / lr_mult, lr)` over `groups` groups: the multipliers
/// of the base rate, the first group at 1 / lr_mult, the last at 1, and the
/// groups between spaced geometrically.
pub fn discriminative(lr_mult: f32, groups: usize) -> Vec<f32> {
    if groups <= 1 {
        return vec![1.0; groups];
    }
    (0..groups)
        .map(|g| lr_mult.powf(-((groups - 1 - g) as f32) / (groups - 1) as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_values_at_known_steps() {
        let s = Schedule::ONE_CYCLE;
        let total = 101; // t = step / 100
        let (lr0, m0) = s.at(0, total);
        assert!((lr0 - 1.0 / 25.0).abs() < 1e-7 && (m0.unwrap() - 0.95).abs() < 1e-6);
        let (lr_peak, m_peak) = s.at(25, total);
        assert!((lr_peak - 1.0).abs() < 1e-6 && (m_peak.unwrap() - 0.85).abs() < 1e-6);
        // Half-way through the warm-up: the cosine mid-point.
        let (lr, m) = s.at(25 / 2, total); // t = 0.12, p = 0.48
        let p = 0.12f32 / 0.25;
        let want = 1.0 + (0.04 - 1.0) * (1.0 + (std::f32::consts::PI * p).cos()) / 2.0;
        assert!((lr - want).abs() < 1e-6, "{lr} {want}");
        assert!(m.unwrap() < 0.95 && m.unwrap() > 0.85);
        let (lr_end, m_end) = s.at(100, total);
        assert!((lr_end - 1e-5).abs() < 1e-9 && (m_end.unwrap() - 0.95).abs() < 1e-6);
        // Annealing mid-point: (1 + 1e-5) / 2.
        let (lr_mid, m_mid) = s.at(125, 201); // t = 0.625: half-way through the annealing
        assert!((lr_mid - (1.0 + 1e-5) / 2.0).abs() < 1e-5, "{lr_mid}");
        assert!((m_mid.unwrap() - 0.9).abs() < 1e-5);
        assert_eq!(Schedule::Constant.at(7, 10), (1.0, None));
        assert!((Schedule::Cosine.at(0, 11).0 - 1.0).abs() < 1e-7);
        assert!(Schedule::Cosine.at(10, 11).0.abs() < 1e-7);
        assert!((Schedule::Cosine.at(5, 11).0 - 0.5).abs() < 1e-6);
    }

    #[test]
    fn discriminative_rates_are_geometric() {
        let m = discriminative(100.0, 3);
        assert!((m[0] - 0.01).abs() < 1e-7 && (m[1] - 0.1).abs() < 1e-6 && m[2] == 1.0);
        let m = discriminative(16.0, 5);
        for (g, want) in [0.0625f32, 0.125, 0.25, 0.5, 1.0].iter().enumerate() {
            assert!((m[g] - want).abs() < 1e-6, "{g}: {}", m[g]);
        }
        assert_eq!(discriminative(10.0, 1), vec![1.0]);
    }
}
