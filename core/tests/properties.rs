//! The kernel comparisons as proptest properties: random shapes and values,
//! every vector path against the scalar reference. A shrunk failure is kept
//! below as a named test.

mod common;
use common::*;
use ember::matmul::{gemm_on, reference, Dims, Gemm};
use ember::quant::dots_i8_on;
use ember::softmax::{log_softmax_on, softmax_on};
use ember::Isa;
use proptest::prelude::*;

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 64 },
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn matmul_paths_agree(m in 0usize..40, k in 0usize..300, n in 0usize..70,
                          layout in 0u8..3, acc in any::<bool>(), seed in any::<u32>()) {
        let (ta, tb) = [(false, false), (false, true), (true, false)][layout as usize];
        let d = Dims::new(m, k, n);
        let g = Gemm::packed(d, ta, tb, acc);
        let mut gen = Gen(seed | 1);
        let a = gen.vec(m * k);
        let b = gen.vec(k * n);
        let init = gen.vec(m * n);
        let mut want = init.clone();
        reference::gemm(&g, &a, &b, &mut want);
        let aa: Vec<f32> = a.iter().map(|v| v.abs()).collect();
        let bb: Vec<f32> = b.iter().map(|v| v.abs()).collect();
        let mut scale = init.iter().map(|v| if acc { v.abs() } else { 0.0 }).collect::<Vec<_>>();
        reference::gemm(&Gemm { accumulate: true, ..g }, &aa, &bb, &mut scale);
        for isa in Isa::available() {
            let mut got = if acc { init.clone() } else { vec![f32::NAN; m * n] };
            gemm_on(isa, &g, &a, &b, &mut got).unwrap();
            assert_close(&got, &want, k, &scale, &format!("{isa} {d:?} ta={ta} tb={tb} acc={acc}"));
        }
    }

    #[test]
    fn softmax_paths_agree(rows in 1usize..4, cols in 0usize..70, spread in 0.1f32..60.0, seed in any::<u32>()) {
        let mut gen = Gen(seed | 1);
        let x: Vec<f32> = gen.vec(rows * cols).iter().map(|v| v * spread).collect();
        let mut want = vec![0.0; rows * cols];
        let mut want_log = vec![0.0; rows * cols];
        softmax_on(Isa::Scalar, &x, &mut want, rows, cols).unwrap();
        log_softmax_on(Isa::Scalar, &x, &mut want_log, rows, cols).unwrap();
        for isa in Isa::available() {
            let mut got = vec![f32::NAN; rows * cols];
            softmax_on(isa, &x, &mut got, rows, cols).unwrap();
            let scale: Vec<f32> = want.iter().map(|w| w.abs().max(1e-3)).collect();
            assert_close(&got, &want, 4, &scale, &format!("softmax {isa}"));
            log_softmax_on(isa, &x, &mut got, rows, cols).unwrap();
            let scale: Vec<f32> = want_log.iter().map(|w| w.abs().max(1.0)).collect();
            assert_close(&got, &want_log, 4, &scale, &format!("log_softmax {isa}"));
        }
    }

    #[test]
    fn int8_paths_are_bit_identical(n in 0usize..300, out in 1usize..20, seed in any::<u32>()) {
        let mut gen = Gen(seed | 1);
        let x: Vec<i8> = (0..n).map(|_| (gen.next_f32() * 128.0) as i8).collect();
        let w: Vec<i8> = (0..n * out).map(|_| ((gen.next_f32() * 128.0) as i8).max(-127)).collect();
        let mut want = vec![0; out];
        dots_i8_on(Isa::Scalar, &x, &w, &mut want).unwrap();
        for isa in Isa::available() {
            let mut got = vec![1; out];
            dots_i8_on(isa, &x, &w, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "{}", isa);
        }
    }
}
