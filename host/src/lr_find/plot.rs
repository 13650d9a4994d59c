//! The range test's curve as an SVG file: loss against a log learning-rate
//! axis, with the suggestions marked.

use super::{Curve, Suggestions};

/// The loss against a log-scaled rate as a self-contained SVG (no fonts or
/// libraries needed to write it), with each suggestion marked.
// One SVG document written top to bottom; its parts only make sense in order.
pub fn svg(c: &Curve, s: &Suggestions) -> String {
    let (w, h, l, r, t, b) = (720.0, 440.0, 70.0, 20.0, 30.0, 50.0);
    let (x0, x1) = (c.lrs[0].log10(), c.lrs[c.lrs.len() - 1].log10());
    let lo = c.losses.iter().cloned().fold(f64::INFINITY, f64::min);
    // Like fastai, leave the last few points (the blow-up) out of the y range.
    let shown = if c.losses.len() > 10 {
        c.losses.len() - 5
    } else {
        c.losses.len()
    };
    let hi = c.losses[..shown]
        .iter()
        .cloned()
        .fold(f64::NEG_INFINITY, f64::max);
    let (y0, y1) = (
        lo - 0.05 * (hi - lo).max(1e-9),
        hi + 0.05 * (hi - lo).max(1e-9),
    );
    let px = |lr: f64| l + (lr.log10() - x0) / (x1 - x0).max(1e-12) * (w - l - r);
    let py = |v: f64| t + (y1 - v) / (y1 - y0) * (h - t - b);
    let mut o = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">learning-rate range test</text>\n\
         <line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{}\" stroke=\"black\"/>\n",
        w / 2.0, h - b, w - r, h - b, h - b
    );
    for d in (x0.floor() as i32)..=(x1.ceil() as i32) {
        let x = px(10f64.powi(d));
        if x < l - 0.5 || x > w - r + 0.5 {
            continue;
        }
        o += &format!(
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"black\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">1e{d}</text>\n",
            h - b, h - b + 5.0, h - b + 20.0
        );
    }
    for k in 0..=4 {
        let v = y0 + (y1 - y0) * k as f64 / 4.0;
        let y = py(v);
        o += &format!(
            "<line x1=\"{}\" y1=\"{y:.1}\" x2=\"{l}\" y2=\"{y:.1}\" stroke=\"black\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.3}</text>\n",
            l - 5.0, l - 8.0, y + 4.0
        );
    }
    o += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">learning rate (log scale)</text>\n",
        (l + w - r) / 2.0,
        h - 12.0
    );
    o += &format!("<text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">smoothed loss</text>\n", (t + h - b) / 2.0, (t + h - b) / 2.0);
    let pts: Vec<String> = c
        .lrs
        .iter()
        .zip(&c.losses)
        .map(|(&a, &v)| format!("{:.1},{:.1}", px(a), py(v.min(y1))))
        .collect();
    o += &format!(
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>\n",
        pts.join(" ")
    );
    let at = |lr: f64| {
        let i = (0..c.lrs.len()).fold(0, |b, i| {
            if (c.lrs[i].ln() - lr.ln()).abs() < (c.lrs[b].ln() - lr.ln()).abs() {
                i
            } else {
                b
            }
        });
        c.losses[i]
    };
    for (k, (name, lr, color)) in [
        ("valley", s.valley, "#d62728"),
        ("steepest", s.steepest, "#2ca02c"),
        ("min/10", s.min_div10, "#ff7f0e"),
    ]
    .iter()
    .enumerate()
    {
        let (x, y) = (px(*lr), py(at(*lr)));
        o += &format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" fill=\"{color}\">{name} {lr:.2e}</text>\n",
            w - r - 150.0, t + 16.0 + 16.0 * k as f64
        );
    }
    o += "</svg>\n";
    o
}
