//! Every vector matmul path against the scalar reference, on shapes around the
//! tile sizes, with NaN-filled outputs and canaries past the end.

mod common;
use common::*;
use ember::matmul::{gemm_on, gemm_par_on, reference, Dims, Gemm};
use ember::{Error, Isa, Serial};

const SIZES: &[usize] = &[0, 1, 2, 3, 5, 6, 7, 8, 15, 16, 17, 31, 32, 33, 67];

/// |A|·|B| per element: the scale of the rounding error.
fn abs_product(g: &Gemm, a: &[f32], b: &[f32]) -> Vec<f32> {
    let aa: Vec<f32> = a.iter().map(|x| x.abs()).collect();
    let bb: Vec<f32> = b.iter().map(|x| x.abs()).collect();
    let mut c = vec![0.0; g.m * g.ldc];
    let gg = Gemm {
        accumulate: false,
        ..*g
    };
    reference::gemm(&gg, &aa, &bb, &mut c);
    c
}

fn check_one(isa: Isa, d: Dims, ta: bool, tb: bool, acc: bool, gen: &mut Gen) {
    let g = Gemm::packed(d, ta, tb, acc);
    let a = gen.vec(d.m * d.k);
    let b = gen.vec(d.k * d.n);
    let init = gen.vec(d.m * d.n);
    let mut want = init.clone();
    reference::gemm(&g, &a, &b, &mut want);
    let mut got = if acc {
        let mut v = init.clone();
        v.extend([CANARY; CANARIES]);
        v
    } else {
        nan_out(d.m * d.n)
    };
    gemm_on(isa, &g, &a, &b, &mut got).unwrap();
    let what = format!("{} {:?} ta={ta} tb={tb} acc={acc}", isa.name(), d);
    check_canaries(&got, d.m * d.n, &what);
    let mut scale = abs_product(&g, &a, &b);
    if acc {
        for (s, i) in scale.iter_mut().zip(&init) {
            *s += i.abs();
        }
    }
    assert_close(&got[..d.m * d.n], &want, d.k, &scale, &what);
}

#[test]
fn vector_paths_match_reference_on_edge_shapes() {
    let mut gen = Gen(0x1234_5678);
    for isa in vector_isas() {
        for &m in SIZES {
            for &n in SIZES {
                for &k in &[0usize, 1, 3, 16, 33, 257] {
                    for (ta, tb) in [(false, false), (false, true), (true, false)] {
                        for acc in [false, true] {
                            check_one(isa, Dims::new(m, k, n), ta, tb, acc, &mut gen);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn vector_paths_match_reference_on_large_shapes() {
    let mut gen = Gen(99);
    for isa in vector_isas() {
        for d in [
            Dims::new(17, 257, 33),
            Dims::new(17, 784, 128),
            Dims::new(1, 784, 128),
            Dims::new(64, 784, 10),
            Dims::new(13, 600, 97),
            // Aᵀ·B packs A (deep k, more than 256 columns of C) in blocks of
            // 96 rows (192 on AVX-512), the last block short and ending in
            // a 5-row tile, over two blocks of k and a last narrow panel
            // of B; and A read in place (C two panels wide, or one narrow).
            Dims::new(401, 300, 280),
            Dims::new(205, 300, 45),
            Dims::new(205, 300, 20),
        ] {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                check_one(isa, d, ta, tb, false, &mut gen);
                check_one(isa, d, ta, tb, true, &mut gen);
            }
        }
    }
}

#[test]
fn scalar_reference_small_known_values() {
    // [1 2 3; 4 5 6] · [7 8; 9 10; 11 12] = [58 64; 139 154]
    let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [7.0, 8.0, 9.0, 10.0, 11.0, 12.0];
    for isa in Isa::available() {
        let mut c = [f32::NAN; 4];
        gemm_on(
            isa,
            &Gemm::packed(Dims::new(2, 3, 2), false, false, false),
            &a,
            &b,
            &mut c,
        )
        .unwrap();
        assert_eq!(c, [58.0, 64.0, 139.0, 154.0], "{isa}");
        // Bᵀ stored: [7 9 11; 8 10 12]
        let bt = [7.0, 9.0, 11.0, 8.0, 10.0, 12.0];
        let mut c = [f32::NAN; 4];
        gemm_on(
            isa,
            &Gemm::packed(Dims::new(2, 3, 2), false, true, false),
            &a,
            &bt,
            &mut c,
        )
        .unwrap();
        assert_eq!(c, [58.0, 64.0, 139.0, 154.0], "{isa}");
        // Aᵀ stored: [1 4; 2 5; 3 6]
        let at = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
        let mut c = [f32::NAN; 4];
        gemm_on(
            isa,
            &Gemm::packed(Dims::new(2, 3, 2), true, false, false),
            &at,
            &b,
            &mut c,
        )
        .unwrap();
        assert_eq!(c, [58.0, 64.0, 139.0, 154.0], "{isa}");
    }
}

#[test]
fn mismatched_lengths_are_errors_and_write_nothing() {
    for isa in Isa::available() {
        let d = Dims::new(3, 4, 5);
        let g = Gemm::packed(d, false, false, false);
        let a = vec![1.0; 12];
        let b = vec![1.0; 20];
        let mut c = vec![7.0; 15];
        assert!(matches!(
            gemm_on(isa, &g, &a[..11], &b, &mut c),
            Err(Error::ShapeMismatch {
                expected: 12,
                got: 11
            })
        ));
        assert!(matches!(
            gemm_on(isa, &g, &a, &b[..19], &mut c),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            gemm_on(isa, &g, &a, &b, &mut c[..14]),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(c.iter().all(|&x| x == 7.0));
        // A stride smaller than the row is refused.
        let bad = Gemm { lda: 3, ..g };
        assert!(gemm_on(isa, &bad, &a, &b, &mut c).is_err());
        // Overflowing sizes are refused, not wrapped.
        let huge = Gemm::packed(Dims::new(usize::MAX / 2, 4, 5), false, false, false);
        assert!(gemm_on(isa, &huge, &a, &b, &mut c).is_err());
    }
}

#[test]
fn k_zero_gives_zero_or_leaves_c() {
    for isa in Isa::available() {
        let d = Dims::new(4, 0, 3);
        let mut c = vec![5.0; 12];
        gemm_on(isa, &Gemm::packed(d, false, false, true), &[], &[], &mut c).unwrap();
        assert!(c.iter().all(|&x| x == 5.0));
        gemm_on(isa, &Gemm::packed(d, false, false, false), &[], &[], &mut c).unwrap();
        assert!(c.iter().all(|&x| x == 0.0));
    }
}

#[test]
fn row_split_parallel_is_bit_identical_to_serial() {
    let mut gen = Gen(7);
    for isa in Isa::available() {
        // Odd shapes above the size gemm_par splits at (2^18 multiply-adds).
        for d in [
            Dims::new(64, 784, 128),
            Dims::new(784, 64, 128),
            Dims::new(65, 129, 37),
            Dims::new(7, 3000, 40),
            Dims::new(37, 300, 70),
            // Aᵀ·B with A packed: a split falls inside a packed block.
            Dims::new(401, 300, 280),
        ] {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                let g = Gemm::packed(d, ta, tb, false);
                let a = gen.vec(d.m * d.k);
                let b = gen.vec(d.k * d.n);
                let mut serial = vec![0.0; d.m * d.n];
                gemm_par_on(&Serial, isa, &g, &a, &b, &mut serial).unwrap();
                for t in [2, 3, 4, 7] {
                    let mut par = vec![f32::NAN; d.m * d.n];
                    gemm_par_on(&Threads(t), isa, &g, &a, &b, &mut par).unwrap();
                    assert!(
                        serial
                            .iter()
                            .zip(&par)
                            .all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{isa} {d:?} ta={ta} tb={tb} threads={t}"
                    );
                }
            }
        }
    }
}

/// However a product's rows fall into tiles (pairs of 6-row tiles on
/// AVX-512, 6-row tiles, a short tile at the end), each element is the same
/// chain of FMAs: the first m rows of a 48-row product
/// have the bits of the m-row product, for every m past the few-row paths
/// (except a last single row, m = 6j + 1, which runs as four chains).
#[test]
fn every_row_count_gives_the_rows_of_a_taller_product() {
    let mut gen = Gen(31);
    for isa in Isa::available() {
        for (k, n) in [(70, 40), (300, 10)] {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                let tall = 48;
                let a = gen.vec(tall * k);
                let b = gen.vec(k * n);
                let mut want = vec![0.0; tall * n];
                let g = Gemm::packed(Dims::new(tall, k, n), ta, tb, false);
                gemm_on(isa, &g, &a, &b, &mut want).unwrap();
                for m in (13..tall).filter(|m| m % 6 != 1) {
                    // Aᵀ is k x m: the first m columns of each of its rows.
                    let a_m: Vec<f32> = if ta {
                        a.chunks_exact(tall)
                            .flat_map(|r| &r[..m])
                            .copied()
                            .collect()
                    } else {
                        a[..m * k].to_vec()
                    };
                    let mut got = vec![f32::NAN; m * n];
                    let g = Gemm::packed(Dims::new(m, k, n), ta, tb, false);
                    gemm_on(isa, &g, &a_m, &b, &mut got).unwrap();
                    assert!(
                        got.iter()
                            .zip(&want[..m * n])
                            .all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{isa} m={m} k={k} n={n} ta={ta} tb={tb}"
                    );
                }
            }
        }
    }
}

/// Operands with row strides wider than their rows give the same bits as
/// tightly packed ones, and the gaps between C's rows are left alone.
#[test]
fn strided_operands_give_the_packed_result() {
    let mut gen = Gen(0x57_81de);
    // Stores rows x cols with row stride ld, the gaps filled with `fill`.
    let widen = |v: &[f32], rows: usize, cols: usize, ld: usize, fill: f32| {
        let mut out = vec![fill; rows.saturating_sub(1) * ld + cols];
        for r in 0..rows {
            out[r * ld..r * ld + cols].copy_from_slice(&v[r * cols..(r + 1) * cols]);
        }
        out
    };
    for isa in Isa::available() {
        for d in [
            Dims::new(205, 300, 45),
            Dims::new(150, 40, 20),
            Dims::new(9, 40, 33),
            Dims::new(1, 50, 70),
        ] {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                let packed = Gemm::packed(d, ta, tb, false);
                let a = gen.vec(d.m * d.k);
                let b = gen.vec(d.k * d.n);
                let mut want = vec![0.0; d.m * d.n];
                gemm_on(isa, &packed, &a, &b, &mut want).unwrap();
                let (ar, ac) = if ta { (d.k, d.m) } else { (d.m, d.k) };
                let (br, bc) = if tb { (d.n, d.k) } else { (d.k, d.n) };
                let g = Gemm {
                    lda: ac + 3,
                    ldb: bc + 5,
                    ldc: d.n + 2,
                    ..packed
                };
                let wa = widen(&a, ar, ac, g.lda, f32::NAN);
                let wb = widen(&b, br, bc, g.ldb, f32::NAN);
                let mut c = widen(&vec![f32::NAN; d.m * d.n], d.m, d.n, g.ldc, 12345.0);
                gemm_on(isa, &g, &wa, &wb, &mut c).unwrap();
                let what = format!("{isa} {d:?} ta={ta} tb={tb}");
                for r in 0..d.m {
                    let row = &c[r * g.ldc..r * g.ldc + d.n];
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(row),
                        bits(&want[r * d.n..(r + 1) * d.n]),
                        "{what} row {r}"
                    );
                    if r + 1 < d.m {
                        assert!(c[r * g.ldc + d.n..(r + 1) * g.ldc]
                            .iter()
                            .all(|&x| x == 12345.0));
                    }
                }
            }
        }
    }
}
