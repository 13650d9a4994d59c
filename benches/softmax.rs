//! softmax and log-softmax throughput (elements per second) on the shapes a
//! classifier meets, for every path this CPU runs, beside a plain scalar
//! max-subtract loop (std's `f32::exp`) measured in the same run.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ember::softmax::{log_softmax_on, softmax_on};
use ember::Isa;
use std::hint::black_box;
use std::time::Duration;

/// The peer: the obvious loop.
fn plain(x: &[f32], y: &mut [f32], cols: usize, log: bool) {
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let m = xr.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut s = 0.0;
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = (v - m).exp();
            s += *o;
        }
        if log {
            let ls = s.ln();
            for (o, &v) in yr.iter_mut().zip(xr) {
                *o = v - m - ls;
            }
        } else {
            for o in yr.iter_mut() {
                *o /= s;
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    for &(rows, cols) in &[(256usize, 10usize), (4096, 10), (1, 1_000_000)] {
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 1000) as f32 * 0.01 - 5.0)
            .collect();
        let mut y = vec![0.0f32; rows * cols];
        for (name, log) in [("softmax", false), ("log_softmax", true)] {
            let mut g = c.benchmark_group(format!("{name}/{rows}x{cols}"));
            g.throughput(Throughput::Elements((rows * cols) as u64));
            g.warm_up_time(Duration::from_millis(300));
            g.measurement_time(Duration::from_secs(1));
            for isa in Isa::available() {
                g.bench_function(BenchmarkId::new("ember", isa.name()), |b| {
                    b.iter(|| {
                        if log {
                            log_softmax_on(isa, black_box(&x), &mut y, rows, cols).unwrap()
                        } else {
                            softmax_on(isa, black_box(&x), &mut y, rows, cols).unwrap()
                        }
                    })
                });
            }
            g.bench_function("plain_loop", |b| {
                b.iter(|| plain(black_box(&x), &mut y, cols, log))
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
