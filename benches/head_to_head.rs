//! ember against `matrixmultiply` and the `gemm` crate, interleaved: on a host whose speed drifts
//! by 20% within a minute (this project's 2-vCPU guest), criterion's
//! back-to-back groups can measure the two at different speeds. Here each
//! round times every shape and layout, the three contenders back to back, each
//! the best of a few repetitions; after `ROUNDS` rounds each side's best is
//! reported: all then see the host at its fastest. One thread, the active ISA
//! (`EMBER_BENCH_ISA` picks ember's). Run with
//! `cargo bench --bench head_to_head`; prints a markdown table (GFLOPS).

use ember::matmul::{gemm_on, Dims, Gemm};
use ember::Isa;
use std::hint::black_box;
use std::time::Instant;

mod peers;
use peers::{data, gemm_crate, mm, SHAPES};

/// Rounds over all shapes and layouts.
const ROUNDS: usize = 6;

/// GFLOPS of `f`, best of 3 timings of enough calls for ~0.1 GFLOP each.
fn gflops(flops: f64, mut f: impl FnMut()) -> f64 {
    let reps = ((1e8 / flops) as usize).max(2);
    f();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t0 = Instant::now();
        for _ in 0..reps {
            f();
        }
        best = best.min(t0.elapsed().as_secs_f64() / reps as f64);
    }
    flops / best / 1e9
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it once as a
    // smoke test with no argument, where one round on the smallest shape will do.
    let full = std::env::args().any(|a| a == "--bench");
    // EMBER_BENCH_ISA=avx2+fma (or any path this CPU has) times ember on
    // that path instead of the best one; the peers pick their own.
    let isa = match std::env::var("EMBER_BENCH_ISA") {
        Ok(name) => match Isa::from_name(&name).filter(|i| i.is_supported()) {
            Some(isa) => isa,
            None => {
                eprintln!("EMBER_BENCH_ISA={name}: not a path this CPU runs");
                std::process::exit(2);
            }
        },
        Err(_) => Isa::active(),
    };
    println!(
        "ember {} against matrixmultiply and gemm, interleaved, best of {ROUNDS} rounds (GFLOPS)\n",
        isa.name()
    );
    println!("| shape | layout | ember | matrixmultiply | gemm | ember / mm | ember / gemm |");
    println!("|---|---|---|---|---|---|---|");
    let shapes = if full { SHAPES } else { &SHAPES[..1] };
    let mut cases = Vec::new();
    for &(m, k, n) in shapes {
        for (layout, ta, tb) in [
            ("nn", false, false),
            ("bt", false, true),
            ("at", true, false),
        ] {
            cases.push((
                (m, k, n),
                layout,
                Gemm::packed(Dims::new(m, k, n), ta, tb, false),
            ));
        }
    }
    // The peers compute the same products (a wrong stride would time
    // something else).
    for (_, layout, g) in &cases {
        let (a, b) = (data(g.m * g.k, 1), data(g.k * g.n, 2));
        let mut outs = [
            vec![0.0f32; g.m * g.n],
            vec![0.0f32; g.m * g.n],
            vec![0.0f32; g.m * g.n],
        ];
        gemm_on(isa, g, &a, &b, &mut outs[0]).unwrap();
        mm(g, &a, &b, &mut outs[1]);
        gemm_crate(g, &a, &b, &mut outs[2]);
        for o in &outs[1..] {
            let err = o
                .iter()
                .zip(&outs[0])
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(
                err < 1e-3 * g.k as f32,
                "{layout} ({},{},{}): {err}",
                g.m,
                g.k,
                g.n
            );
        }
    }
    // Rounds outermost: a slow spell of the host then costs one round of
    // every case, not every round of one case.
    let mut best = vec![(0.0f64, 0.0f64, 0.0f64); cases.len()];
    for _ in 0..if full { ROUNDS } else { 1 } {
        for ((_, _, g), (ours, theirs, faer)) in cases.iter().zip(&mut best) {
            let (a, b) = (data(g.m * g.k, 1), data(g.k * g.n, 2));
            let mut out = vec![0.0f32; g.m * g.n];
            let flops = 2.0 * (g.m * g.k * g.n) as f64;
            *ours = ours.max(gflops(flops, || {
                gemm_on(isa, g, black_box(&a), black_box(&b), &mut out).unwrap()
            }));
            *theirs = theirs.max(gflops(flops, || {
                mm(g, black_box(&a), black_box(&b), &mut out)
            }));
            *faer = faer.max(gflops(flops, || {
                gemm_crate(g, black_box(&a), black_box(&b), &mut out)
            }));
        }
    }
    for (((m, k, n), layout, _), (ours, theirs, faer)) in cases.iter().zip(&best) {
        println!(
            "| ({m},{k},{n}) | {layout} | {ours:.1} | {theirs:.1} | {faer:.1} | {:.2} | {:.2} |",
            ours / theirs,
            ours / faer
        );
    }
}
