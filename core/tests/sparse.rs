//! The sparse-input products on every path against the dense reference, on
//! shapes around the vector widths and at several densities, with NaN-filled
//! outputs and canaries past the end.

mod common;
use common::*;
use ember::matmul::sparse::{density, reference_spmm, spmm, spmm_at};
use ember::matmul::{reference, Dims, Gemm};
use ember::{Error, Isa, Serial};

/// Every path: the scalar one is a real implementation here too.
fn paths() -> Vec<Isa> {
    let mut v = vec![Isa::Scalar];
    v.extend(vector_isas());
    v
}

/// `n` values of which about `zeros` (0..=1) are zero, some of them -0.0.
fn sparse_vec(gen: &mut Gen, n: usize, zeros: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let v = gen.next_f32();
            if (gen.next_f32() + 1.0) / 2.0 < zeros {
                if i % 3 == 0 {
                    -0.0
                } else {
                    0.0
                }
            } else {
                v
            }
        })
        .collect()
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

fn check_forward(isa: Isa, d: Dims, zeros: f32, acc: bool, gen: &mut Gen) {
    let x = sparse_vec(gen, d.m * d.k, zeros);
    let w = gen.vec(d.k * d.n);
    let init = gen.vec(d.m * d.n);
    let g = Gemm::packed(d, false, false, acc);
    let mut want = init.clone();
    reference::gemm(&g, &x, &w, &mut want);
    let mut got = if acc {
        let mut v = init.clone();
        v.extend([CANARY; CANARIES]);
        v
    } else {
        nan_out(d.m * d.n)
    };
    spmm(&Serial, isa, &x, &w, &mut got, d, acc).unwrap();
    let what = format!("spmm {} {d:?} zeros={zeros} acc={acc}", isa.name());
    check_canaries(&got, d.m * d.n, &what);
    let mut scale = vec![0.0; d.m * d.n];
    reference::gemm(
        &Gemm::packed(d, false, false, false),
        &abs(&x),
        &abs(&w),
        &mut scale,
    );
    if acc {
        for (s, i) in scale.iter_mut().zip(&init) {
            *s += i.abs();
        }
    }
    assert_close(&got[..d.m * d.n], &want, d.k, &scale, &what);
}

fn check_gradient(isa: Isa, k: usize, b: usize, n: usize, zeros: f32, gen: &mut Gen) {
    let x = sparse_vec(gen, b * k, zeros); // the layer input, b x k
    let dy = gen.vec(b * n);
    let d = Dims::new(k, b, n);
    let g = Gemm::packed(d, true, false, false);
    let mut want = vec![0.0; k * n];
    reference::gemm(&g, &x, &dy, &mut want);
    let mut scale = vec![0.0; k * n];
    reference::gemm(&g, &abs(&x), &abs(&dy), &mut scale);
    let mut got = nan_out(k * n);
    spmm_at(&Serial, isa, &x, &dy, &mut got, d).unwrap();
    let what = format!("spmm_at {} k={k} b={b} n={n} zeros={zeros}", isa.name());
    check_canaries(&got, k * n, &what);
    assert_close(&got[..k * n], &want, b, &scale, &what);
}

#[test]
fn forward_matches_the_dense_reference_on_every_path() {
    let mut gen = Gen(0x5a5a_0001);
    for isa in paths() {
        for &m in &[0usize, 1, 2, 5] {
            for &k in &[0usize, 1, 3, 4, 7, 8, 9, 16, 17, 33, 257] {
                for &n in &[
                    0usize, 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 129, 130,
                ] {
                    for zeros in [0.0, 0.5, 0.9, 1.0] {
                        for acc in [false, true] {
                            check_forward(isa, Dims::new(m, k, n), zeros, acc, &mut gen);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn gradient_matches_the_dense_reference_on_every_path() {
    let mut gen = Gen(0x5a5a_0002);
    for isa in paths() {
        for &k in &[0usize, 1, 3, 4, 7, 8, 9, 16, 17, 33, 100] {
            for &b in &[0usize, 1, 2, 7, 64] {
                for &n in &[0usize, 1, 4, 7, 8, 9, 17, 33, 65, 128] {
                    for zeros in [0.0, 0.8, 1.0] {
                        check_gradient(isa, k, b, n, zeros, &mut gen);
                    }
                }
            }
        }
    }
}

#[test]
fn mnist_layer_shapes_match() {
    let mut gen = Gen(0x5a5a_0003);
    for isa in paths() {
        check_forward(isa, Dims::new(64, 784, 128), 0.81, true, &mut gen);
        check_forward(isa, Dims::new(64, 784, 256), 0.81, true, &mut gen);
        check_gradient(isa, 784, 64, 128, 0.81, &mut gen);
        check_gradient(isa, 784, 64, 256, 0.81, &mut gen);
    }
}

#[test]
fn the_scalar_path_is_the_reference() {
    let mut gen = Gen(0x5a5a_0004);
    let d = Dims::new(9, 70, 21);
    let x = sparse_vec(&mut gen, d.m * d.k, 0.7);
    let w = gen.vec(d.k * d.n);
    let mut want = vec![0.0; d.m * d.n];
    reference_spmm(&x, &w, &mut want, d, false);
    let mut got = vec![0.0; d.m * d.n];
    spmm(&Serial, Isa::Scalar, &x, &w, &mut got, d, false).unwrap();
    assert_eq!(got, want);
}

#[test]
fn a_nan_input_reaches_its_row_and_only_its_row() {
    for isa in paths() {
        let d = Dims::new(3, 40, 24);
        let mut x = vec![0.0; d.m * d.k];
        x[d.k + 17] = f32::NAN;
        x[2 * d.k + 3] = 1.0;
        let w = vec![0.5; d.k * d.n];
        let mut y = vec![0.0; d.m * d.n];
        spmm(&Serial, isa, &x, &w, &mut y, d, false).unwrap();
        assert!(y[..d.n].iter().all(|&v| v == 0.0), "{isa}");
        assert!(y[d.n..2 * d.n].iter().all(|v| v.is_nan()), "{isa}");
        assert!(y[2 * d.n..].iter().all(|&v| v == 0.5), "{isa}");
        let dy = vec![1.0; d.m * d.n];
        let mut dw = vec![0.0; d.k * d.n];
        spmm_at(&Serial, isa, &x, &dy, &mut dw, Dims::new(d.k, d.m, d.n)).unwrap();
        for p in 0..d.k {
            let row = &dw[p * d.n..(p + 1) * d.n];
            match p {
                17 => assert!(row.iter().all(|v| v.is_nan()), "{isa}"),
                3 => assert!(row.iter().all(|&v| v == 1.0), "{isa}"),
                _ => assert!(row.iter().all(|&v| v == 0.0), "{isa}"),
            }
        }
    }
}

#[test]
fn short_slices_are_errors_and_write_nothing() {
    let d = Dims::new(2, 3, 4);
    let (x, w) = (vec![1.0; 6], vec![1.0; 12]);
    let mut y = vec![7.0; 8];
    for (xs, ws, yl) in [(5, 12, 8), (6, 11, 8), (6, 12, 7)] {
        let mut yy = vec![7.0; yl];
        let e = spmm(&Serial, Isa::Scalar, &x[..xs], &w[..ws], &mut yy, d, false);
        assert!(matches!(e, Err(Error::ShapeMismatch { .. })), "{e:?}");
        assert!(yy.iter().all(|&v| v == 7.0));
    }
    let e = spmm(
        &Serial,
        Isa::Scalar,
        &x,
        &w,
        &mut y,
        Dims::new(usize::MAX, 2, 1),
        false,
    );
    assert_eq!(e, Err(Error::BadDimension));
    // Gradient: x 2 x 3 (b = 2, k = 3), dy 2 x 4, dw 3 x 4.
    let g = Dims::new(3, 2, 4);
    for (xs, dys, dwl) in [(5, 8, 12), (6, 7, 12), (6, 8, 11)] {
        let mut dw = vec![7.0; dwl];
        let e = spmm_at(&Serial, Isa::Scalar, &x[..xs], &w[..dys], &mut dw, g);
        assert!(matches!(e, Err(Error::ShapeMismatch { .. })), "{e:?}");
        assert!(dw.iter().all(|&v| v == 7.0));
    }
}

#[test]
fn an_unavailable_path_is_refused() {
    for isa in ember::isa::ALL {
        if !isa.is_supported() {
            let mut y = [0.0; 1];
            let e = spmm(
                &Serial,
                isa,
                &[1.0],
                &[1.0],
                &mut y,
                Dims::new(1, 1, 1),
                false,
            );
            assert_eq!(e, Err(Error::IsaUnavailable), "{isa}");
        }
    }
}

#[test]
fn density_counts_nonzeros() {
    assert_eq!(density(&[]), 0.0);
    assert_eq!(density(&[0.0, -0.0, 1.0, f32::NAN]), 0.5);
    let half: Vec<f32> = (0..1000).map(|i| (i % 2) as f32).collect();
    assert!((density(&half) - 0.5).abs() < 0.01);
    assert_eq!(density(&vec![0.0; 999]), 0.0);
    assert_eq!(density(&vec![3.0; 999]), 1.0);
    // Past 1024 elements it samples: a batch of 64 "images" with ink in a
    // block of their middle rows (period 784: the sample must not alias),
    // and scattered nonzeros at several densities.
    let block = |p: usize| (8..20).contains(&(p % 784 / 28)) && (10..18).contains(&(p % 28));
    let x: Vec<f32> = (0..64 * 784)
        .map(|p| f32::from(u8::from(block(p))))
        .collect();
    let truth = 96.0 / 784.0;
    assert!(
        (density(&x) - truth).abs() < 0.03,
        "{} vs {truth}",
        density(&x)
    );
    let mut gen = Gen(0x5a5a_0007);
    for zeros in [0.2, 0.5, 0.81, 0.95] {
        let x = sparse_vec(&mut gen, 64 * 784 + 5, zeros);
        let truth = x.iter().filter(|v| **v != 0.0).count() as f32 / x.len() as f32;
        assert!(
            (density(&x) - truth).abs() < 0.05,
            "{} vs {truth}",
            density(&x)
        );
    }
}

#[test]
fn thread_splits_are_bit_identical_to_serial() {
    let mut gen = Gen(0x5a5a_0005);
    // The MNIST layer; shapes below the cut; several blocks of rows of the
    // halves' buffer (300 x 64, 9 x 1024); too wide to cut (1025).
    let shapes = [
        (64, 784, 128),
        (7, 100, 33),
        (65, 37, 9),
        (300, 300, 64),
        (9, 256, 1024),
        (3, 130, 1025),
    ];
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits());
    for isa in paths() {
        for (m, k, n) in shapes {
            let d = Dims::new(m, k, n);
            let x = sparse_vec(&mut gen, m * k, 0.8);
            let w = gen.vec(k * n);
            let dy = gen.vec(m * n);
            let y0 = gen.vec(m * n);
            let mut g1 = vec![0.0; k * n];
            spmm_at(&Serial, isa, &x, &dy, &mut g1, Dims::new(k, m, n)).unwrap();
            for acc in [true, false] {
                let mut y1 = y0.clone();
                spmm(&Serial, isa, &x, &w, &mut y1, d, acc).unwrap();
                for t in [2, 3, 4, 7] {
                    let mut y = y0.clone();
                    spmm(&Threads(t), isa, &x, &w, &mut y, d, acc).unwrap();
                    assert!(same(&y, &y1), "spmm {isa} {d:?} acc={acc} threads={t}");
                }
            }
            for t in [2, 3, 4, 7] {
                let mut g = vec![f32::NAN; k * n];
                spmm_at(&Threads(t), isa, &x, &dy, &mut g, Dims::new(k, m, n)).unwrap();
                assert!(same(&g, &g1), "spmm_at {isa} {d:?} threads={t}");
            }
        }
    }
}

/// A dense layer on mostly-zero input takes the sparse products, and gives
/// what the dense products give (the switch is process-wide; this is the
/// only test in this binary that touches it).
#[test]
fn dense_layer_on_sparse_input_matches_the_dense_products() {
    use ember::dense::DenseGrads;
    use ember::matmul::sparse::{set_enabled, worth_it, SPARSE_MIN_WIDTH};
    use ember::Dense;
    let mut gen = Gen(0x5a5a_0006);
    let (batch, layer) = (13, Dense::new(300, 70));
    let mut x = sparse_vec(&mut gen, batch * layer.in_dim, 0.85);
    // Input 0 is zero in every row: the probe at the end rests on it.
    for r in 0..batch {
        x[r * layer.in_dim] = 0.0;
    }
    let dense_x = gen.vec(batch * layer.in_dim);
    assert!(worth_it(&x, layer.out_dim) && !worth_it(&dense_x, layer.out_dim));
    // A narrow output (a classifier's logits) stays on the dense products.
    assert!(!worth_it(&x, 10) && !worth_it(&x, SPARSE_MIN_WIDTH - 1));
    let w = gen.vec(layer.weight_len());
    let b = gen.vec(layer.out_dim);
    let d_out = gen.vec(batch * layer.out_dim);
    let run = |on: bool, w: &[f32]| {
        set_enabled(on);
        let mut y = vec![0.0f32; batch * layer.out_dim];
        layer.forward(&Serial, &x, w, &b, &mut y, batch).unwrap();
        let mut dw = vec![0.0f32; layer.weight_len()];
        let grads = DenseGrads {
            d_weight: Some(&mut dw),
            ..Default::default()
        };
        layer
            .backward(&Serial, &x, w, &d_out, grads, batch)
            .unwrap();
        set_enabled(true);
        (y, dw)
    };
    let (y_sparse, dw_sparse) = run(true, &w);
    let (y_dense, dw_dense) = run(false, &w);
    let scale_y: Vec<f32> = y_dense.iter().map(|v| v.abs() + 10.0).collect();
    assert_close(&y_sparse, &y_dense, layer.in_dim, &scale_y, "forward");
    let scale_w: Vec<f32> = dw_dense.iter().map(|v| v.abs() + 1.0).collect();
    assert_close(&dw_sparse, &dw_dense, batch, &scale_w, "d_weight");
    // The two paths really ran, shown by what each computes rather than by
    // rounding (which may agree to the bit): an infinite weight on input 0,
    // zero in every row, gives 0 × ∞ = NaN in a dense product, while the
    // sparse product never touches the weights of zero inputs.
    let mut w_inf = w.clone();
    w_inf[0] = f32::INFINITY; // W is (in_dim, out_dim): input 0, output 0
    let (y_sparse, _) = run(true, &w_inf);
    let (y_dense, _) = run(false, &w_inf);
    for r in 0..batch {
        let at = r * layer.out_dim;
        assert!(y_sparse[at].is_finite(), "sparse row {r}: {}", y_sparse[at]);
        assert!(y_dense[at].is_nan(), "dense row {r}: {}", y_dense[at]);
    }
}
