//! Leslie Smith's learning-rate range test: train on mini-batches while the
//! rate grows exponentially, watch the smoothed loss, stop when it blows up,
//! and suggest a rate. Built on the same [`Trainer`] step as training, on a
//! copy of the weights, so the model it was given is left as it was. The
//! SVG plot of a curve is in `plot`.

mod plot;
pub use plot::svg;

use anyhow::{bail, Result};

use crate::data::sample::shuffled;
use crate::data::Dataset;
use crate::par::Pool;
use crate::task::Task;
use crate::train::Trainer;
use ember::optim::Rule;
use ember::Mlp;

/// What to sweep.
#[derive(Clone, Debug)]
pub struct RangeTest {
    /// First rate.
    pub start_lr: f32,
    /// Last rate.
    pub end_lr: f32,
    /// Mini-batches.
    pub steps: usize,
    /// Mini-batch size.
    pub batch: usize,
    /// Shuffle seed.
    pub seed: u64,
    /// Stop once the smoothed loss exceeds this multiple of its minimum.
    pub diverge: f64,
    /// EMA factor of the smoothing.
    pub beta: f64,
}

impl Default for RangeTest {
    fn default() -> Self {
        RangeTest {
            start_lr: 1e-7,
            end_lr: 10.0,
            steps: 100,
            batch: 64,
            seed: 1,
            diverge: 4.0,
            beta: 0.98,
        }
    }
}

/// The recorded curve: the rate of each step and the smoothed loss after it.
#[derive(Clone, Debug, Default)]
pub struct Curve {
    /// Learning rates, one per completed step.
    pub lrs: Vec<f64>,
    /// Bias-corrected exponential moving average of the loss.
    pub losses: Vec<f64>,
}

/// The three suggestions.
#[derive(Clone, Copy, Debug)]
pub struct Suggestions {
    /// The write-up's rule: the rate at the minimum loss, divided by 10.
    pub min_div10: f64,
    /// Where the loss falls fastest against log(rate).
    pub steepest: f64,
    /// fastai's default: in the longest valley of the curve.
    pub valley: f64,
}

/// Runs the range test on a copy of `params`; `params` itself is not touched.
#[allow(clippy::too_many_arguments)]
pub fn run(
    pool: &Pool,
    mlp: &Mlp,
    task: Task,
    params: &[f32],
    rule: Rule,
    train: &Dataset,
    rt: &RangeTest,
) -> Result<Curve> {
    if train.is_empty() {
        bail!("the training set is empty");
    }
    if !(rt.start_lr > 0.0 && rt.end_lr > rt.start_lr && rt.end_lr.is_finite()) {
        bail!(
            "the range must satisfy 0 < start < end, got {} .. {}",
            rt.start_lr,
            rt.end_lr
        );
    }
    if rt.steps < 2 {
        bail!("the range test needs at least 2 steps");
    }
    let mut tr = Trainer::new(mlp.clone(), task, params.to_vec(), rule)?;
    let ratio = (rt.end_lr as f64 / rt.start_lr as f64).powf(1.0 / (rt.steps - 1) as f64);
    let mut order = Vec::new();
    let mut epoch = 0u64;
    let mut curve = Curve::default();
    let (mut avg, mut best) = (0.0f64, f64::INFINITY);
    for step in 0..rt.steps {
        crate::interrupt::check("lr-find stopped; nothing was written")?;
        if order.len() < rt.batch.min(train.len()) {
            order = shuffled(train.len(), rt.seed.wrapping_add(epoch * 7919));
            epoch += 1;
        }
        let idx: Vec<usize> = order.drain(..rt.batch.min(order.len())).collect();
        let lr = rt.start_lr as f64 * ratio.powi(step as i32);
        let loss = pool.install(|| {
            tr.step(
                pool,
                &train.images,
                &train.labels,
                &idx,
                &[],
                None,
                lr as f32,
                None,
            )
        })? as f64;
        avg = rt.beta * avg + (1.0 - rt.beta) * loss;
        let smooth = avg / (1.0 - rt.beta.powi(step as i32 + 1));
        if !smooth.is_finite() {
            break;
        }
        curve.lrs.push(lr);
        curve.losses.push(smooth);
        best = best.min(smooth);
        if step > 0 && smooth > rt.diverge * best {
            break;
        }
    }
    if curve.lrs.len() < 2 {
        bail!(
            "the loss diverged at once (from {:e}); lower --start-lr",
            rt.start_lr
        );
    }
    Ok(curve)
}

impl Suggestions {
    /// The rate `--lr auto` trains at and `lr-find` suggests: Leslie
    /// Smith's rule, a tenth of the rate at the loss minimum.
    pub fn suggested(&self) -> f64 {
        self.min_div10
    }
}

/// The suggestions for a curve of at least two points.
///
/// # Errors
/// When the suggestion falls below the swept range (the loss was lowest at
/// its very start, as for a model that is already trained): a rate nobody
/// tried is not suggested.
pub fn suggest(c: &Curve) -> Result<Suggestions> {
    let s = suggestions(c);
    let first = c.lrs.first().copied().unwrap_or(0.0);
    if s.suggested() < first {
        bail!(
            "the loss was lowest at the start of the sweep (lr {:.3e}), so its suggestion \
             ({:.3e}, a tenth of that) lies below the swept range: start lower with \
             --start-lr, or, for a model that is already trained, fine-tune it at a small \
             rate rather than search one",
            c.lrs[0],
            s.suggested()
        );
    }
    Ok(s)
}

fn suggestions(c: &Curve) -> Suggestions {
    let n = c.losses.len();
    let argmin = (0..n).fold(0, |b, i| if c.losses[i] < c.losses[b] { i } else { b });
    // Slope of loss against log(lr), central differences inside, one-sided at the ends.
    let logs: Vec<f64> = c.lrs.iter().map(|l| l.ln()).collect();
    let slope = |i: usize| {
        let (a, b) = (i.saturating_sub(1), (i + 1).min(n - 1));
        (c.losses[b] - c.losses[a]) / (logs[b] - logs[a])
    };
    let steep = (0..n).fold(0, |b, i| if slope(i) < slope(b) { i } else { b });
    Suggestions {
        min_div10: c.lrs[argmin] / 10.0,
        steepest: c.lrs[steep],
        valley: c.lrs[valley(&c.losses)],
    }
}

/// fastai's "valley": find the longest run of the curve along which the loss
/// keeps falling (a longest decreasing subsequence, ending anywhere), and
/// return a point in its lower-middle part — past the flat start, before the
/// minimum where the loss is about to climb.
pub fn valley(losses: &[f64]) -> usize {
    let n = losses.len();
    if n == 0 {
        return 0;
    }
    // run[i]: length of the longest decreasing subsequence ending at i.
    let mut run = vec![1usize; n];
    let (mut start, mut end) = (0usize, 0usize);
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && run[i] < run[j] + 1 {
                run[i] = run[j] + 1;
            }
        }
        if run[i] > run[end] {
            end = i;
            start = end + 1 - run[end];
        }
    }
    let third = (end - start) / 3;
    (start + third + third / 2).min(n - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_on_a_synthetic_curve() {
        // Flat, then falling between 1e-4 and 1e-1, then blowing up.
        let lrs: Vec<f64> = (0..100)
            .map(|i| 1e-7 * 10f64.powf(8.0 * i as f64 / 99.0))
            .collect();
        let losses: Vec<f64> = lrs
            .iter()
            .map(|&l| {
                let x = l.log10();
                if x < -4.0 {
                    2.3
                } else if x < -1.0 {
                    2.3 - 0.7 * (x + 4.0)
                } else {
                    0.2 + 5.0 * (x + 1.0).powi(2)
                }
            })
            .collect();
        let c = Curve { lrs, losses };
        let s = suggest(&c).unwrap();
        assert!(s.min_div10 > 5e-3 && s.min_div10 < 2e-2, "{}", s.min_div10);
        assert!(s.steepest > 1e-4 && s.steepest < 1e-1, "{}", s.steepest);
        assert!(s.valley > 1e-4 && s.valley < 1e-1, "{}", s.valley);
        let svg = svg(&c, &s);
        assert!(
            svg.starts_with("<svg")
                && svg.contains("polyline")
                && svg.contains("valley")
                && svg.trim_end().ends_with("</svg>")
        );
    }

    #[test]
    fn valley_of_short_curves() {
        assert_eq!(valley(&[]), 0);
        assert_eq!(valley(&[1.0]), 0);
        assert!(valley(&[3.0, 2.0, 1.0, 5.0]) <= 2);
    }
}
