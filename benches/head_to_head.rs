//! ember against `matrixmultiply`, interleaved: on a host whose speed drifts
//! by 20% within a minute (this project's 2-vCPU guest), criterion's
//! back-to-back groups can measure the two at different speeds. Here each
//! round times every shape and layout, the two contenders back to back, each
//! the best of a few repetitions; after `ROUNDS` rounds each side's best is
//! reported: both then see the host at its fastest. One thread, the active ISA. Run with
//! `cargo bench --bench head_to_head`; prints a markdown table (GFLOPS).

use ember::matmul::{gemm_on, Dims, Gemm};
use ember::Isa;
use std::hint::black_box;
use std::time::Instant;

mod peers;
use peers::{data, mm, SHAPES};

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
    let isa = Isa::active();
    println!(
        "ember {} against matrixmultiply, interleaved, best of {ROUNDS} rounds (GFLOPS)\n",
        isa.name()
    );
    println!("| shape | layout | ember | matrixmultiply | ember / mm |");
    println!("|---|---|---|---|---|");
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
    // Rounds outermost: a slow spell of the host then costs one round of
    // every case, not every round of one case.
    let mut best = vec![(0.0f64, 0.0f64); cases.len()];
    for _ in 0..if full { ROUNDS } else { 1 } {
        for ((_, _, g), (ours, theirs)) in cases.iter().zip(&mut best) {
            let (a, b) = (data(g.m * g.k, 1), data(g.k * g.n, 2));
            let mut out = vec![0.0f32; g.m * g.n];
            let flops = 2.0 * (g.m * g.k * g.n) as f64;
            *ours = ours.max(gflops(flops, || {
                gemm_on(isa, g, black_box(&a), black_box(&b), &mut out).unwrap()
            }));
            *theirs = theirs.max(gflops(flops, || {
                mm(g, black_box(&a), black_box(&b), &mut out)
            }));
        }
    }
    for (((m, k, n), layout, _), (ours, theirs)) in cases.iter().zip(&best) {
        println!(
            "| ({m},{k},{n}) | {layout} | {ours:.1} | {theirs:.1} | {:.2} |",
            ours / theirs
        );
    }
}
