//! int8 inference of a 784-128-10 MLP from a blob, one thread: latency at
//! batch 1 and throughput at batch 256 (images/s; `int8`: a `BatchPlan`
//! packed once, `int8_repack`: `infer_batch_i8`, packing on every call),
//! for every path this CPU runs, beside the f32 path (the core's
//! `Mlp::forward`) on every path in the same run.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ember::blob;
use ember::{Isa, Mlp, Serial};
use host::checkpoint::Checkpoint;
use host::export::{self, Calibration};
use host::par::Pool;
use host::task::Task;
use std::hint::black_box;
use std::time::Duration;

/// A 784-128-10 model (seeded weights) and its int8 blob, exported exactly as
/// `ember export` does (min/max calibration on 256 synthetic images).
fn model(images: &[u8]) -> (Mlp, Vec<f32>, Vec<u8>) {
    let mlp = Mlp::new(&[784, 128, 10]).unwrap();
    let mut params = vec![0.0; mlp.param_len()];
    mlp.init(&mut params, 1).unwrap();
    let ck = Checkpoint {
        task: Task::Digits,
        mlp: mlp.clone(),
        params: params.clone(),
    };
    let pool = Pool::new(1).unwrap();
    let bytes = export::int8_blob(&pool, &ck, images, Calibration::MinMax).unwrap();
    (mlp, params, bytes)
}

fn bench(c: &mut Criterion) {
    let images: Vec<u8> = (0..256 * 784).map(|i| ((i * 7919) % 251) as u8).collect();
    let (mlp, params, bytes) = model(&images);
    // A 16-byte aligned copy, as the format requires.
    let mut store = vec![0u8; bytes.len() + 16];
    let off = (16 - store.as_ptr() as usize % 16) % 16;
    store[off..off + bytes.len()].copy_from_slice(&bytes);
    let m = blob::parse(&store[off..off + bytes.len()]).unwrap();
    let mut scratch = vec![0u8; m.batch_scratch_bytes(256).unwrap()];
    for batch in [1usize, 256] {
        let mut g = c.benchmark_group(format!("mlp_784_128_10/batch{batch}"));
        g.throughput(Throughput::Elements(batch as u64));
        g.warm_up_time(Duration::from_millis(300));
        g.measurement_time(Duration::from_secs(2));
        for isa in Isa::available() {
            Isa::force(isa).unwrap();
            // The batched path: the weights packed once (as an ONNX Runtime
            // session does), then each weight load serves a block of images.
            let mut room = vec![0u8; m.batch_plan_bytes(isa)];
            let plan = m.plan_batch(isa, &mut room).unwrap();
            g.bench_function(BenchmarkId::new("int8", isa.name()), |b| {
                Isa::force(isa).unwrap();
                let mut out = vec![0i8; 10 * batch];
                b.iter(|| {
                    if batch == 1 {
                        m.infer_i8(black_box(&images[..784]), &mut scratch, &mut out)
                            .unwrap();
                    } else {
                        plan.infer(black_box(&images[..batch * 784]), &mut scratch, &mut out)
                            .unwrap();
                    }
                    out[0]
                })
            });
            if batch > 1 {
                // `Model::infer_batch_i8`, which packs the weights on every call.
                g.bench_function(BenchmarkId::new("int8_repack", isa.name()), |b| {
                    Isa::force(isa).unwrap();
                    let mut out = vec![0i8; 10 * batch];
                    b.iter(|| {
                        m.infer_batch_i8(black_box(&images[..batch * 784]), &mut scratch, &mut out)
                            .unwrap();
                        out[0]
                    })
                });
            }
        }
        let x: Vec<f32> = images[..batch * 784]
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect();
        let mut acts = vec![0.0; mlp.act_len(batch)];
        // The f32 path on every ISA too: each int8 path's ratio is taken
        // against the f32 path of the same instruction set.
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new("f32", isa.name()), |b| {
                Isa::force(isa).unwrap();
                b.iter(|| {
                    mlp.forward(&Serial, &params, black_box(&x), &mut acts, batch)
                        .unwrap()
                })
            });
        }
        Isa::force(Isa::detect()).unwrap();
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
