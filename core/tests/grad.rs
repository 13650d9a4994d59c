//! Every backward pass against central finite differences computed in f64,
//! losses against hand-computed values, and optimizer steps against an
//! independent f64 computation.

#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

mod common;
use common::*;
use ember::dense::DenseGrads;
use ember::loss::{bce_with_logits, cross_entropy, nll};
use ember::optim::{ParamGroup, Rule};
use ember::{Dense, Error, Mlp, Optimizer, Serial};

// ---- f64 models of the forward passes, written independently of the core ----

fn dense64(x: &[f64], w: &[f64], b: &[f64], batch: usize, i: usize, o: usize) -> Vec<f64> {
    let mut y = vec![0.0; batch * o];
    for r in 0..batch {
        for j in 0..o {
            y[r * o + j] = b[j] + (0..i).map(|p| x[r * i + p] * w[p * o + j]).sum::<f64>();
        }
    }
    y
}

fn ce64(logits: &[f64], t: &[u32], classes: usize) -> f64 {
    let rows = t.len();
    let mut s = 0.0;
    for r in 0..rows {
        let row = &logits[r * classes..(r + 1) * classes];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        s += lse - row[t[r] as usize];
    }
    s / rows as f64
}

fn mlp64(widths: &[usize], p: &[f64], x: &[f64], batch: usize) -> Vec<f64> {
    let mut a = x.to_vec();
    let mut off = 0;
    for l in 0..widths.len() - 1 {
        let (i, o) = (widths[l], widths[l + 1]);
        let w = &p[off..off + i * o];
        let b = &p[off + i * o..off + i * o + o];
        off += i * o + o;
        a = dense64(&a, w, b, batch, i, o);
        if l + 2 < widths.len() {
            for v in &mut a {
                *v = v.max(0.0);
            }
        }
    }
    a
}

/// Central difference of `f` at `p[k]` in f64.
fn fd(f: &dyn Fn(&[f64]) -> f64, p: &[f64], k: usize) -> f64 {
    let h = 1e-5;
    let mut a = p.to_vec();
    a[k] += h;
    let up = f(&a);
    a[k] -= 2.0 * h;
    let down = f(&a);
    (up - down) / (2.0 * h)
}

fn assert_grad(got: f32, want: f64, what: &str) {
    let err = (got as f64 - want).abs();
    assert!(
        err <= 1e-3 * want.abs().max(1e-2),
        "{what}: got {got}, finite difference {want}"
    );
}

#[test]
fn dense_backward_matches_finite_differences() {
    let (batch, i, o) = (5, 7, 4);
    let mut gen = Gen(3);
    let x = gen.vec(batch * i);
    let w = gen.vec(i * o);
    let b = gen.vec(o);
    let up = gen.vec(batch * o); // loss = Σ up ⊙ y, so ∂loss/∂y = up
    let layer = Dense::new(i, o);
    let mut y = vec![0.0; batch * o];
    layer.forward(&Serial, &x, &w, &b, &mut y, batch).unwrap();
    let f64v = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
    let (x64, w64, b64, up64) = (f64v(&x), f64v(&w), f64v(&b), f64v(&up));
    let want_y = dense64(&x64, &w64, &b64, batch, i, o);
    for (g, w) in y.iter().zip(&want_y) {
        assert!((*g as f64 - w).abs() < 1e-5);
    }
    let (mut dw, mut db, mut dx) = (vec![0.0; i * o], vec![0.0; o], vec![0.0; batch * i]);
    layer
        .backward(
            &Serial,
            &x,
            &w,
            &up,
            DenseGrads {
                d_weight: Some(&mut dw),
                d_bias: Some(&mut db),
                d_input: Some(&mut dx),
            },
            batch,
        )
        .unwrap();
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        dense64(x, w, b, batch, i, o)
            .iter()
            .zip(&up64)
            .map(|(a, u)| a * u)
            .sum()
    };
    for k in 0..w.len() {
        assert_grad(dw[k], fd(&|p| loss(&x64, p, &b64), &w64, k), "d_weight");
    }
    for k in 0..o {
        assert_grad(db[k], fd(&|p| loss(&x64, &w64, p), &b64, k), "d_bias");
    }
    for k in 0..x.len() {
        assert_grad(dx[k], fd(&|p| loss(p, &w64, &b64), &x64, k), "d_input");
    }
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    let (rows, classes) = (4, 6);
    let mut gen = Gen(11);
    let logits: Vec<f32> = gen.vec(rows * classes).iter().map(|v| v * 4.0).collect();
    let t = [0u32, 5, 2, 2];
    let mut d = vec![0.0; rows * classes];
    let l = cross_entropy(&logits, &t, rows, classes, Some(&mut d)).unwrap();
    let l64: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
    assert!((l as f64 - ce64(&l64, &t, classes)).abs() < 1e-5);
    for k in 0..logits.len() {
        assert_grad(d[k], fd(&|p| ce64(p, &t, classes), &l64, k), "d_logits");
    }
}

#[test]
fn bce_gradient_matches_finite_differences() {
    let x = [-30.0f32, -2.0, -0.1, 0.0, 0.7, 3.0, 40.0];
    let y = [0.0f32, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0];
    let bce64 = |x: &[f64]| -> f64 {
        x.iter()
            .zip(&y)
            .map(|(&x, &y)| {
                let y = y as f64;
                x.max(0.0) - x * y + (-x.abs()).exp().ln_1p()
            })
            .sum::<f64>()
            / x.len() as f64
    };
    let mut d = [0.0; 7];
    let l = bce_with_logits(&x, &y, Some(&mut d)).unwrap();
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    assert!((l as f64 - bce64(&x64)).abs() < 1e-6);
    for k in 0..x.len() {
        assert_grad(d[k], fd(&bce64, &x64, k), "bce d_logits");
    }
}

#[test]
fn losses_against_hand_values() {
    // log-probs of [0.5, 0.25, 0.25]: NLL of class 1 is ln 4.
    let lp = [0.5f32.ln(), 0.25f32.ln(), 0.25f32.ln()];
    assert!((nll(&lp, &[1], 1, 3).unwrap() - 4f32.ln()).abs() < 1e-6);
    // Cross-entropy of logits [0, ln 2, 0] (softmax 1/4, 1/2, 1/4), target 1: ln 2.
    let l = cross_entropy(&[0.0, 2f32.ln(), 0.0], &[1], 1, 3, None).unwrap();
    assert!((l - 2f32.ln()).abs() < 1e-6);
    // 0.99 vs 0.999 confidence: the log keeps them apart (−ln 0.99 ≈ 10× −ln 0.999).
    let a = nll(&[0.99f32.ln(), 0.01f32.ln()], &[0], 1, 2).unwrap();
    let b = nll(&[0.999f32.ln(), 0.001f32.ln()], &[0], 1, 2).unwrap();
    assert!((a / b - 10.04).abs() < 0.05, "{a} {b}");
    // BCE of logit 0 is ln 2 whatever the target; a confident right answer is ~0.
    assert!((bce_with_logits(&[0.0], &[1.0], None).unwrap() - 2f32.ln()).abs() < 1e-6);
    assert!(bce_with_logits(&[100.0], &[1.0], None).unwrap() < 1e-30);
    assert!((bce_with_logits(&[-100.0], &[1.0], None).unwrap() - 100.0).abs() < 1e-4);
    // Edge cases: empty batch, bad label, mismatched lengths.
    assert_eq!(
        cross_entropy(&[], &[], 0, 3, None),
        Err(Error::BadDimension)
    );
    assert_eq!(
        cross_entropy(&[0.0; 3], &[3], 1, 3, None),
        Err(Error::LabelOutOfRange {
            label: 3,
            classes: 3
        })
    );
    assert!(cross_entropy(&[0.0; 3], &[0, 1], 1, 3, None).is_err());
    assert!(bce_with_logits(&[], &[], None).is_err());
    // A NaN logit makes its row's loss NaN, as in PyTorch.
    assert!(cross_entropy(&[f32::NAN, 0.0], &[1], 1, 2, None)
        .unwrap()
        .is_nan());
}

#[test]
fn mlp_backward_matches_finite_differences() {
    let widths = [6usize, 5, 4, 3];
    let batch = 3;
    let mlp = Mlp::new(&widths).unwrap();
    let mut params = vec![0.0; mlp.param_len()];
    mlp.init(&mut params, 5).unwrap();
    let mut gen = Gen(17);
    for v in params.iter_mut() {
        *v += 0.05 * gen.next_f32(); // non-zero biases
    }
    let x = gen.vec(batch * 6);
    let t = [2u32, 0, 1];
    let mut acts = vec![0.0; mlp.act_len(batch)];
    mlp.forward(&Serial, &params, &x, &mut acts, batch).unwrap();
    let mut d = vec![0.0; batch * 3];
    cross_entropy(mlp.logits(&acts, batch), &t, batch, 3, Some(&mut d)).unwrap();
    let mut grads = vec![f32::NAN; mlp.param_len()];
    let mut scratch = vec![0.0; mlp.scratch_len(batch)];
    mlp.backward(
        &Serial,
        &params,
        &x,
        &acts,
        &d,
        &mut grads,
        &mut scratch,
        batch,
        &[false; 3],
    )
    .unwrap();
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let p64: Vec<f64> = params.iter().map(|&v| v as f64).collect();
    let loss = |p: &[f64]| ce64(&mlp64(&widths, p, &x64, batch), &t, 3);
    for k in 0..params.len() {
        assert_grad(grads[k], fd(&loss, &p64, k), &format!("param {k}"));
    }
    // Frozen first layer: its gradient is left untouched, the rest is unchanged.
    let mut g2 = vec![f32::NAN; mlp.param_len()];
    mlp.backward(
        &Serial,
        &params,
        &x,
        &acts,
        &d,
        &mut g2,
        &mut scratch,
        batch,
        &[true, false, false],
    )
    .unwrap();
    let (w0, b0) = mlp.layer_params(0);
    assert!(g2[w0.start..b0.end].iter().all(|v| v.is_nan()));
    assert_eq!(&g2[b0.end..], &grads[b0.end..]);
}

#[test]
fn sgd_momentum_weight_decay_matches_independent_computation() {
    let p0 = [0.5f32, -1.0, 2.0];
    let grads = [[0.1f32, 0.2, -0.3], [0.05, -0.1, 0.2], [0.0, 0.3, 0.1]];
    let (lr, mu, wd) = (0.1f32, 0.9f32, 0.01f32);
    let mut opt = Optimizer::new(Rule::Sgd {
        momentum: mu,
        weight_decay: wd,
    })
    .unwrap();
    let mut p = p0;
    let mut state = [0.0; 3];
    let groups = [ParamGroup {
        params: 0..3,
        lr,
        frozen: false,
    }];
    // Independent f64 model: PyTorch's SGD (buf = g at step 1, then μ·buf + g).
    let mut q: Vec<f64> = p0.iter().map(|&v| v as f64).collect();
    let mut buf = [0.0f64; 3];
    for (s, g) in grads.iter().enumerate() {
        opt.step(&mut p, g, &mut state, &groups).unwrap();
        for k in 0..3 {
            let d = g[k] as f64 + wd as f64 * q[k];
            buf[k] = if s == 0 { d } else { mu as f64 * buf[k] + d };
            q[k] -= lr as f64 * buf[k];
        }
    }
    for k in 0..3 {
        assert!(
            (p[k] as f64 - q[k]).abs() < 1e-6,
            "{k}: {} vs {}",
            p[k],
            q[k]
        );
    }
    // Golden values of the same three steps from tests/golden/sgd_step.py
    // (plain Python following torch.optim.SGD's documented update).
    let golden = [0.46064038949999997f64, -1.0595288189999998, 2.021995628];
    for k in 0..3 {
        assert!((q[k] - golden[k]).abs() < 1e-6, "golden {k}: {}", q[k]);
    }
}

#[test]
fn adamw_matches_independent_computation() {
    let p0 = [0.5f32, -1.0];
    let grads = [[0.1f32, -0.2], [0.3, 0.1]];
    let (lr, b1, b2, eps, wd) = (0.01f32, 0.9f32, 0.999f32, 1e-8f32, 0.1f32);
    let mut opt = Optimizer::new(Rule::AdamW {
        beta1: b1,
        beta2: b2,
        eps,
        weight_decay: wd,
    })
    .unwrap();
    let mut p = p0;
    let mut state = [0.0; 4];
    let groups = [ParamGroup {
        params: 0..2,
        lr,
        frozen: false,
    }];
    let mut q: Vec<f64> = p0.iter().map(|&v| v as f64).collect();
    let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
    for (s, g) in grads.iter().enumerate() {
        opt.step(&mut p, g, &mut state, &groups).unwrap();
        let t = (s + 1) as i32;
        for k in 0..2 {
            let g = g[k] as f64;
            q[k] *= 1.0 - lr as f64 * wd as f64;
            m[k] = b1 as f64 * m[k] + (1.0 - b1 as f64) * g;
            v[k] = b2 as f64 * v[k] + (1.0 - b2 as f64) * g * g;
            let mh = m[k] / (1.0 - (b1 as f64).powi(t));
            let vh = v[k] / (1.0 - (b2 as f64).powi(t));
            q[k] -= lr as f64 * mh / (vh.sqrt() + eps as f64);
        }
    }
    for k in 0..2 {
        assert!((p[k] as f64 - q[k]).abs() < 1e-6, "{k}");
    }
}

#[test]
fn frozen_groups_stay_bit_identical_and_lrs_are_per_group() {
    let mut opt = Optimizer::new(Rule::Sgd {
        momentum: 0.9,
        weight_decay: 0.0,
    })
    .unwrap();
    let mut p = [1.0f32, 1.0, 1.0, 1.0];
    let before = p;
    let g = [1.0f32; 4];
    let mut state = [0.0; 4];
    let groups = [
        ParamGroup {
            params: 0..2,
            lr: 0.5,
            frozen: true,
        },
        ParamGroup {
            params: 2..3,
            lr: 0.1,
            frozen: false,
        },
        ParamGroup {
            params: 3..4,
            lr: 0.01,
            frozen: false,
        },
    ];
    for _ in 0..3 {
        opt.step(&mut p, &g, &mut state, &groups).unwrap();
    }
    assert_eq!(p[0].to_bits(), before[0].to_bits());
    assert_eq!(p[1].to_bits(), before[1].to_bits());
    assert_eq!(&state[..2], &[0.0, 0.0]);
    // v = 1, 1.9, 2.71 -> Σ = 5.61
    assert!((p[2] - (1.0 - 0.1 * 5.61)).abs() < 1e-6);
    assert!((p[3] - (1.0 - 0.01 * 5.61)).abs() < 1e-6);
    // Bad hyper-parameters and groups are refused before anything changes.
    let bad = [ParamGroup {
        params: 0..5,
        lr: 0.1,
        frozen: false,
    }];
    assert!(opt.step(&mut p, &g, &mut state, &bad).is_err());
    let nan = [ParamGroup {
        params: 0..1,
        lr: f32::NAN,
        frozen: false,
    }];
    assert!(opt.step(&mut p, &g, &mut state, &nan).is_err());
    assert!(Optimizer::new(Rule::Sgd {
        momentum: 1.0,
        weight_decay: 0.0
    })
    .is_err());
    assert!(Optimizer::new(Rule::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 0.0,
        weight_decay: 0.0
    })
    .is_err());
}

/// An update split over threads (by halves, or where the products cut
/// the first layer's rows once the optimizer knows the layout) gives the
/// bits of a serial update, for both rules, with groups that are one
/// layer, two layers, part of one, or frozen.
#[test]
fn optimizer_threads_and_layout_change_no_bit() {
    let mlp = Mlp::new(&[784, 128, 64, 10]).unwrap();
    let n = mlp.param_len();
    let mut gen = Gen(0x0971_0002);
    let p0 = gen.vec(n);
    let (l0, l1, l2) = (
        mlp.layer_params(0),
        mlp.layer_params(1),
        mlp.layer_params(2),
    );
    let layered: Vec<ParamGroup> = [l0.clone(), l1.clone(), l2.clone()]
        .into_iter()
        .map(|(w, b)| ParamGroup {
            params: w.start..b.end,
            lr: 0.05,
            frozen: false,
        })
        .collect();
    let mixed = vec![
        ParamGroup {
            params: 0..l0.0.start + 1000,
            lr: 0.01,
            frozen: false,
        },
        ParamGroup {
            params: l0.0.start + 1000..l1.1.end,
            lr: 0.02,
            frozen: false,
        },
        ParamGroup {
            params: l2.0.start..l2.1.end,
            lr: 0.03,
            frozen: true,
        },
    ];
    let rules = [
        Rule::Sgd {
            momentum: 0.9,
            weight_decay: 1e-3,
        },
        Rule::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        },
    ];
    for rule in rules {
        for groups in [&layered, &mixed] {
            let run = |par: &dyn ember::Parallel, layout: bool| {
                let mut opt = Optimizer::new(rule).unwrap();
                if layout {
                    opt.set_layout(&mlp);
                }
                let mut p = p0.clone();
                let mut state = vec![0.0; opt.state_len(n)];
                let mut g = Gen(0x0971_0003);
                for _ in 0..3 {
                    let grads = g.vec(n);
                    opt.step_par(par, &mut p, &grads, &mut state, groups)
                        .unwrap();
                }
                (p, state)
            };
            let want = run(&Serial, false);
            for (t, layout) in [(1, true), (2, false), (2, true), (3, true), (4, true)] {
                let got = run(&Threads(t), layout);
                let same =
                    |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(
                    same(&got.0, &want.0) && same(&got.1, &want.1),
                    "{rule:?} threads {t} layout {layout}"
                );
            }
        }
    }
}
