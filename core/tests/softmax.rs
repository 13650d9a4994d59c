//! The softmax family on every path: against the scalar reference on lengths
//! around every SIMD width, the edge-case table of the module docs, and the
//! accuracy of the vector exp.

mod common;
use common::*;
use ember::softmax::{exp_on, log_softmax_on, logsumexp_on, softmax_on};
use ember::Isa;

const INF: f32 = f32::INFINITY;
const NAN: f32 = f32::NAN;

fn lengths() -> Vec<usize> {
    let mut v = vec![0, 1, 2, 3];
    for lane in [4usize, 8, 16] {
        v.extend([lane - 1, lane, lane + 1, 2 * lane + 1]);
    }
    v.extend([10, 100, 784]);
    v.sort();
    v.dedup();
    v
}

#[test]
fn vector_paths_match_reference() {
    let mut gen = Gen(42);
    for isa in vector_isas() {
        for cols in lengths() {
            for rows in [1usize, 3, 200] {
                let x: Vec<f32> = gen.vec(rows * cols).iter().map(|v| v * 20.0).collect();
                let n = rows * cols;
                for (name, f) in [
                    (
                        "softmax",
                        softmax_on as fn(Isa, &[f32], &mut [f32], usize, usize) -> _,
                    ),
                    ("log_softmax", log_softmax_on),
                ] {
                    let mut want = vec![0.0; n];
                    f(Isa::Scalar, &x, &mut want, rows, cols).unwrap();
                    let mut got = nan_out(n);
                    f(isa, &x, &mut got[..n], rows, cols).unwrap();
                    check_canaries(&got, n, name);
                    // softmax: relative to the value; log-softmax: near 0 it is
                    // (x − max) − ln Σ, a cancellation, so relative to |x − max| + 1.
                    let floor = if name == "softmax" { 1e-3 } else { 1.0 };
                    let scale: Vec<f32> = want.iter().map(|w| w.abs().max(floor)).collect();
                    assert_close(
                        &got[..n],
                        &want,
                        4,
                        &scale,
                        &format!("{name} {isa} {rows}x{cols}"),
                    );
                }
                let mut want = vec![0.0; rows];
                logsumexp_on(Isa::Scalar, &x, &mut want, cols).unwrap();
                let mut got = nan_out(rows);
                logsumexp_on(isa, &x, &mut got[..rows], cols).unwrap();
                check_canaries(&got, rows, "logsumexp");
                if cols > 0 {
                    let scale: Vec<f32> = want.iter().map(|w| w.abs().max(1.0)).collect();
                    assert_close(&got[..rows], &want, 4, &scale, &format!("lse {isa} {cols}"));
                } else {
                    assert!(got[..rows].iter().all(|&v| v == f32::NEG_INFINITY));
                }
            }
        }
    }
}

/// (row, softmax, log-softmax, log-sum-exp) — the table in `softmax/mod.rs`.
type Edge = (Vec<f32>, Vec<f32>, Vec<f32>, f32);

fn edge_table() -> Vec<Edge> {
    vec![
        (vec![1.0, NAN, 2.0], vec![NAN; 3], vec![NAN; 3], NAN),
        (vec![INF, 1.0], vec![NAN; 2], vec![NAN; 2], INF),
        (vec![-INF, -INF, -INF], vec![NAN; 3], vec![NAN; 3], -INF),
        (vec![-INF, 0.0], vec![0.0, 1.0], vec![-INF, 0.0], 0.0),
        (vec![1e30, 0.0], vec![1.0, 0.0], vec![0.0, -1e30], 1e30),
        (vec![-1e30, 0.0], vec![0.0, 1.0], vec![-1e30, 0.0], 0.0),
        (vec![5.0], vec![1.0], vec![0.0], 5.0),
        (vec![], vec![], vec![], -INF),
    ]
}

fn same(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

#[test]
fn edge_cases_have_documented_results_on_every_path() {
    for isa in Isa::available() {
        for (row, sm, lsm, lse) in edge_table() {
            // Also pad the row out past a vector width with −∞ to test tails:
            // those elements must give 0 / −∞ and leave the rest unchanged.
            for pad in [0usize, 17] {
                let mut x = row.clone();
                x.extend(std::iter::repeat_n(-INF, pad));
                let n = x.len();
                let mut y = vec![7.0; n];
                softmax_on(isa, &x, &mut y, 1, n).unwrap();
                let mut want = sm.clone();
                let all_neg_inf_row = row.iter().all(|v| *v == -INF) && !row.is_empty();
                want.extend(std::iter::repeat_n(
                    if all_neg_inf_row || sm.iter().any(|v| v.is_nan()) {
                        NAN
                    } else {
                        0.0
                    },
                    pad,
                ));
                if row.is_empty() && pad > 0 {
                    continue; // an all −∞ row, covered above
                }
                assert!(
                    y.iter().zip(&want).all(|(a, b)| same(*a, *b)),
                    "softmax {isa} {x:?}: {y:?}"
                );
                let mut y = vec![7.0; n];
                log_softmax_on(isa, &x, &mut y, 1, n).unwrap();
                let mut want = lsm.clone();
                want.extend(std::iter::repeat_n(
                    if lsm.iter().any(|v| v.is_nan()) {
                        NAN
                    } else {
                        -INF
                    },
                    pad,
                ));
                assert!(
                    y.iter().zip(&want).all(|(a, b)| same(*a, *b)),
                    "log_softmax {isa} {x:?}: {y:?}"
                );
                let mut out = [7.0];
                logsumexp_on(isa, &x, &mut out, n).unwrap();
                assert!(same(out[0], lse), "lse {isa} {x:?}: {}", out[0]);
            }
            // The same row 300 times, between ordinary rows: short rows are
            // processed a block of rows at a time, and one row's edge case
            // must neither leak into its neighbours nor change.
            let n = row.len();
            if n == 0 {
                continue;
            }
            let ordinary: Vec<f32> = (0..n).map(|i| i as f32 * 0.25).collect();
            let mut want_ord = vec![0.0; n];
            softmax_on(Isa::Scalar, &ordinary, &mut want_ord, 1, n).unwrap();
            let mut x = Vec::new();
            for r in 0..300 {
                x.extend(if r % 2 == 0 { &row } else { &ordinary });
            }
            let mut y = vec![7.0; x.len()];
            softmax_on(isa, &x, &mut y, 300, n).unwrap();
            let mut z = vec![7.0; x.len()];
            log_softmax_on(isa, &x, &mut z, 300, n).unwrap();
            for r in 0..300 {
                let (yr, zr) = (&y[r * n..(r + 1) * n], &z[r * n..(r + 1) * n]);
                if r % 2 == 0 {
                    assert!(
                        yr.iter().zip(&sm).all(|(a, b)| same(*a, *b)),
                        "softmax {isa} row {r}: {yr:?}"
                    );
                    assert!(
                        zr.iter().zip(&lsm).all(|(a, b)| same(*a, *b)),
                        "log_softmax {isa} row {r}: {zr:?}"
                    );
                } else {
                    assert!(
                        yr.iter().zip(&want_ord).all(|(a, b)| (a - b).abs() < 1e-6),
                        "{isa} row {r}: {yr:?}"
                    );
                    assert!(zr.iter().all(|v| v.is_finite()), "{isa} row {r}: {zr:?}");
                }
            }
        }
    }
}

/// cross_entropy takes its log-sum-exp from the softmax pass when it also
/// writes the gradient, and row by row when it does not: the two agree on
/// every path, on ordinary rows to rounding and on the edge rows exactly.
#[test]
fn cross_entropy_loss_is_the_same_with_and_without_the_gradient() {
    use ember::loss::cross_entropy_on;
    let mut gen = Gen(7);
    for isa in Isa::available() {
        for cols in lengths().into_iter().filter(|&c| c > 0) {
            for rows in [1usize, 3, 64] {
                let x: Vec<f32> = gen.vec(rows * cols).iter().map(|v| v * 20.0).collect();
                let t: Vec<u32> = (0..rows).map(|r| ((r * 7) % cols) as u32).collect();
                let plain = cross_entropy_on(isa, &x, &t, rows, cols, None).unwrap();
                let mut d = vec![0.0; rows * cols];
                let with = cross_entropy_on(isa, &x, &t, rows, cols, Some(&mut d)).unwrap();
                let tol = 4.0 * f32::EPSILON * plain.abs().max(1.0);
                assert!(
                    (plain - with).abs() <= tol,
                    "{isa} {rows}x{cols}: {plain} vs {with}"
                );
            }
        }
        for (row, ..) in edge_table().into_iter().filter(|e| !e.0.is_empty()) {
            for target in 0..row.len() as u32 {
                let n = row.len();
                let plain = cross_entropy_on(isa, &row, &[target], 1, n, None).unwrap();
                let mut d = vec![0.0; n];
                let with = cross_entropy_on(isa, &row, &[target], 1, n, Some(&mut d)).unwrap();
                assert!(
                    same(plain, with),
                    "{isa} {row:?} t{target}: {plain} vs {with}"
                );
            }
        }
    }
}

/// FAULTS 48: cross-entropy on huge or huge-negative logits keeps its
/// precision, with and without the gradient, on every path: the loss is
/// `(max − x_t) + ln Σ exp(x − max)`, checked against f64.
#[test]
fn cross_entropy_keeps_precision_on_huge_logits() {
    use ember::loss::cross_entropy_on;
    let rows: [(&[f32], u32); 5] = [
        (&[f32::MAX, f32::MAX, 0.0], 0),
        (&[f32::MAX, f32::MAX, 0.0], 2),
        (&[-100.0, -103.0, -110.0], 0),
        (&[-100.0, -103.0, -110.0], 1),
        (
            &[
                1e30,
                1e30 * 0.5,
                7.0,
                7.0,
                7.0,
                7.0,
                7.0,
                7.0,
                7.0,
                7.0,
                7.0,
            ],
            0,
        ),
    ];
    for isa in Isa::available() {
        for &(row, t) in &rows {
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v as f64));
            let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            let want = (m - row[t as usize] as f64) + s.ln();
            let n = row.len();
            let plain = cross_entropy_on(isa, row, &[t], 1, n, None).unwrap();
            let mut d = vec![0.0; n];
            let with = cross_entropy_on(isa, row, &[t], 1, n, Some(&mut d)).unwrap();
            for got in [plain, with] {
                let err = (got as f64 - want).abs();
                assert!(
                    err <= 4.0 * f32::EPSILON as f64 * want.abs().max(1.0),
                    "{isa} {row:?} t{t}: {got} vs {want}"
                );
            }
        }
        // The two rows, by value.
        let l = cross_entropy_on(isa, &[f32::MAX, f32::MAX, 0.0], &[0], 1, 3, None).unwrap();
        assert!((l - core::f32::consts::LN_2).abs() < 1e-6, "{isa}: {l}");
    }
}

#[test]
fn length_mismatch_is_an_error_and_writes_nothing() {
    for isa in Isa::available() {
        let x = [1.0; 6];
        let mut y = [9.0; 5];
        assert!(softmax_on(isa, &x, &mut y, 2, 3).is_err());
        assert!(log_softmax_on(isa, &x, &mut y, 2, 3).is_err());
        assert!(y.iter().all(|&v| v == 9.0));
        let mut out = [9.0; 3];
        assert!(logsumexp_on(isa, &x, &mut out, 4).is_err());
        assert!(softmax_on(isa, &x, &mut [0.0; 6], usize::MAX, 2).is_err());
    }
}

/// Distance in units in the last place between two positive floats.
fn ulps(a: f32, b: f64) -> f64 {
    let bf = b as f32;
    let ulp = (f32::from_bits(bf.to_bits() + 1) - bf) as f64;
    (a as f64 - b).abs() / ulp
}

#[test]
fn vector_exp_is_within_two_ulp() {
    let n = 200_001;
    let x: Vec<f32> = (0..n)
        .map(|i| -87.3 + 176.0 * i as f32 / (n - 1) as f32)
        .collect();
    for isa in Isa::available() {
        let mut y = vec![0.0; n];
        exp_on(isa, &x, &mut y).unwrap();
        let mut worst = 0.0f64;
        for (&xi, &yi) in x.iter().zip(&y) {
            let want = (xi as f64).exp();
            if want > f32::MAX as f64 {
                assert_eq!(yi, INF);
                continue;
            }
            worst = worst.max(ulps(yi, want));
        }
        assert!(worst <= 2.0, "{isa}: exp off by {worst} ulp");
    }
    // Specials on every path.
    let x = [NAN, INF, -INF, 89.0, -88.0, -1e30, 1e30, 0.0];
    for isa in Isa::available() {
        let mut y = [0.0; 8];
        exp_on(isa, &x, &mut y).unwrap();
        assert!(y[0].is_nan(), "{isa}");
        assert_eq!(y[1], INF);
        assert_eq!(y[2], 0.0);
        assert_eq!(y[3], INF);
        assert!(y[4] >= 0.0 && y[4] < 1.2e-38);
        assert_eq!(y[5], 0.0);
        assert_eq!(y[6], INF);
        assert_eq!(y[7], 1.0);
    }
}
