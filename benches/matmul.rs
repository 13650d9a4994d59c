//! matmul GFLOPS on the shapes training and inference use, for every path
//! this CPU runs, beside the `matrixmultiply` crate and a naive loop measured
//! in the same run. Criterion's "elem/s" throughput is flop/s here.
//!
//! Layouts: `nn` = A·B (forward, x·W), `bt` = A·Bᵀ (d_input = d_out·Wᵀ),
//! `at` = Aᵀ·B (d_weight = xᵀ·d_out).
//!
//! `sparse_fwd` / `sparse_dw`: the first layer of 784-128-10 at batch 64 with
//! a given fraction of nonzero inputs (MNIST's pixels: ~19%), and the
//! second (64x128x10, its input the ReLU output), the sparse products beside
//! the dense ones on the same data; the throughput is the dense flop count,
//! so the figures compare directly. They set `SPARSE_DENSITY` and
//! `SPARSE_MIN_WIDTH`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ember::matmul::sparse::{spmm, spmm_at};
use ember::matmul::{gemm_on, Dims, Gemm};
use ember::{Isa, Serial};
use std::hint::black_box;
use std::time::Duration;

mod peers;
use peers::{data, mm, naive, SHAPES};

fn bench(c: &mut Criterion) {
    for &(m, k, n) in SHAPES {
        for (layout, ta, tb) in [
            ("nn", false, false),
            ("bt", false, true),
            ("at", true, false),
        ] {
            let d = Dims::new(m, k, n);
            let g = Gemm::packed(d, ta, tb, false);
            let a = data(m * k, 1);
            let b = data(k * n, 2);
            let mut out = vec![0.0f32; m * n];
            let mut group = c.benchmark_group(format!("matmul_{layout}/{m}x{k}x{n}"));
            group.throughput(Throughput::Elements(d.flops()));
            if d.flops() > 50_000_000 {
                group.sample_size(10);
            }
            group.warm_up_time(Duration::from_millis(300));
            group.measurement_time(Duration::from_secs(1));
            for isa in Isa::available() {
                if isa == Isa::Scalar && d.flops() > 50_000_000 {
                    continue; // the reference is a spec, not a contender; naive stands in
                }
                group.bench_function(BenchmarkId::new("ember", isa.name()), |bch| {
                    bch.iter(|| gemm_on(isa, &g, black_box(&a), black_box(&b), &mut out).unwrap())
                });
            }
            group.bench_function("matrixmultiply", |bch| {
                bch.iter(|| mm(&g, black_box(&a), black_box(&b), &mut out))
            });
            group.bench_function("naive", |bch| {
                bch.iter(|| naive(&g, black_box(&a), black_box(&b), &mut out))
            });
            group.finish();
        }
    }
}

/// `data` with all but about `density` of the values set to zero.
fn sparse_data(n: usize, density: f32, seed: u32) -> Vec<f32> {
    let keep = data(n, seed ^ 0x9e37);
    data(n, seed)
        .into_iter()
        .zip(keep)
        .map(|(v, k)| if k + 0.5 < density { v + 0.5 } else { 0.0 })
        .collect()
}

fn bench_sparse(c: &mut Criterion) {
    let cases = [
        (784, 128, &[0.1f32, 0.19, 0.35, 0.5][..]),
        (128, 10, &[0.19, 0.35][..]),
    ];
    for (k, n, densities) in cases {
        bench_sparse_layer(c, 64, k, n, densities);
    }
}

fn bench_sparse_layer(c: &mut Criterion, b: usize, k: usize, n: usize, densities: &[f32]) {
    for &density in densities {
        let x = sparse_data(b * k, density, 3);
        let w = data(k * n, 4);
        let dy = data(b * n, 5);
        let mut y = vec![0.0f32; b * n];
        let mut dw = vec![0.0f32; k * n];
        let fwd = Dims::new(b, k, n);
        let grad = Dims::new(k, b, n);
        for (what, d) in [("fwd", fwd), ("dw", grad)] {
            let mut group =
                c.benchmark_group(format!("sparse_{what}/{b}x{k}x{n}/density_{density}"));
            group.throughput(Throughput::Elements(d.flops()));
            group.warm_up_time(Duration::from_millis(300));
            group.measurement_time(Duration::from_secs(1));
            for isa in Isa::available() {
                if isa == Isa::Scalar {
                    continue;
                }
                let name = isa.name();
                if what == "fwd" {
                    let g = Gemm::packed(fwd, false, false, false);
                    group.bench_function(BenchmarkId::new("sparse", name), |bch| {
                        bch.iter(|| {
                            spmm(&Serial, isa, black_box(&x), &w, &mut y, fwd, false).unwrap()
                        })
                    });
                    group.bench_function(BenchmarkId::new("dense", name), |bch| {
                        bch.iter(|| gemm_on(isa, &g, black_box(&x), &w, &mut y).unwrap())
                    });
                } else {
                    let g = Gemm::packed(grad, true, false, false);
                    group.bench_function(BenchmarkId::new("sparse", name), |bch| {
                        bch.iter(|| {
                            spmm_at(&Serial, isa, black_box(&x), &dy, &mut dw, grad).unwrap()
                        })
                    });
                    group.bench_function(BenchmarkId::new("dense", name), |bch| {
                        bch.iter(|| gemm_on(isa, &g, black_box(&x), &dy, &mut dw).unwrap())
                    });
                }
            }
            group.finish();
        }
    }
}

criterion_group!(benches, bench, bench_sparse);
criterion_main!(benches);
