//! int8 inference of a 784-128-10 MLP from a blob, one thread: latency at
//! batch 1 and throughput at batch 256 (images/s), for every path this CPU
//! runs, beside the f32 path (the core's `Mlp::forward`) in the same run.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ember::blob::{self, LayerData, LayerSpec};
use ember::quant::{quantize_dense, ActQuant, QuantizedDense, Requant, INPUT};
use ember::{Isa, Mlp, Serial};
use std::hint::black_box;
use std::time::Duration;

fn model() -> (Mlp, Vec<f32>, Vec<u8>) {
    let mlp = Mlp::new(&[784, 128, 10]).unwrap();
    let mut params = vec![0.0; mlp.param_len()];
    mlp.init(&mut params, 1).unwrap();
    let mut q: Vec<(Vec<i8>, Vec<i32>, Vec<Requant>, ActQuant)> = Vec::new();
    let mut input = INPUT;
    for l in 0..2 {
        let d = mlp.layer(l);
        let (w, b) = mlp.layer_params(l);
        let output = ActQuant::from_range(if l == 0 { 0.0 } else { -10.0 }, 10.0);
        let mut t = (
            vec![0i8; d.weight_len()],
            vec![0i32; d.out_dim],
            vec![
                Requant {
                    multiplier: 0,
                    shift: 0
                };
                d.out_dim
            ],
            output,
        );
        quantize_dense(
            &params[w],
            &params[b],
            d.in_dim,
            input,
            output,
            QuantizedDense {
                weight: &mut t.0,
                bias: &mut t.1,
                requant: &mut t.2,
            },
        )
        .unwrap();
        q.push(t);
        input = output;
    }
    let specs: Vec<LayerSpec<'_>> = q
        .iter()
        .enumerate()
        .map(|(l, t)| LayerSpec {
            in_dim: mlp.layer(l).in_dim,
            out_dim: mlp.layer(l).out_dim,
            relu: l == 0,
            data: LayerData::Int8 {
                weight: &t.0,
                bias: &t.1,
                requant: &t.2,
                output: t.3,
            },
        })
        .collect();
    let mut bytes = vec![0u8; blob::blob_len(&specs).unwrap()];
    blob::write(0, &specs, &mut bytes).unwrap();
    (mlp, params, bytes)
}

fn bench(c: &mut Criterion) {
    let (mlp, params, bytes) = model();
    // A 16-byte aligned copy, as the format requires.
    let mut store = vec![0u8; bytes.len() + 16];
    let off = (16 - store.as_ptr() as usize % 16) % 16;
    store[off..off + bytes.len()].copy_from_slice(&bytes);
    let m = blob::parse(&store[off..off + bytes.len()]).unwrap();
    let images: Vec<u8> = (0..256 * 784).map(|i| ((i * 7919) % 251) as u8).collect();
    let mut scratch = vec![0u8; m.scratch_bytes()];
    for batch in [1usize, 256] {
        let mut g = c.benchmark_group(format!("mlp_784_128_10/batch{batch}"));
        g.throughput(Throughput::Elements(batch as u64));
        g.warm_up_time(Duration::from_millis(300));
        g.measurement_time(Duration::from_secs(2));
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new("int8", isa.name()), |b| {
                Isa::force(isa).unwrap();
                b.iter(|| {
                    let mut out = [0i8; 10];
                    for img in images[..batch * 784].chunks_exact(784) {
                        m.infer_i8(black_box(img), &mut scratch, &mut out).unwrap();
                    }
                    out
                })
            });
        }
        Isa::force(Isa::detect()).unwrap();
        let x: Vec<f32> = images[..batch * 784]
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect();
        let mut acts = vec![0.0; mlp.act_len(batch)];
        g.bench_function(BenchmarkId::new("f32", Isa::active().name()), |b| {
            b.iter(|| {
                mlp.forward(&Serial, &params, black_box(&x), &mut acts, batch)
                    .unwrap()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
