//! Blob format 1.1 (an int8 body under a trainable f32 head) and the
//! on-device head trainer: layout, strict parsing, old-reader refusal,
//! inference from the bytes against features + head, storing a trained head
//! back, and training itself (loss goes down, the body stays untouched,
//! the same bits for the same run).

mod common;
use common::*;
use ember::blob::{self, parse, Dtype, LayerData, LayerSpec};
use ember::head::{self, Event, HeadTrainer, Plan, MAX_HEAD_OUT};
use ember::quant::{ActQuant, Requant};
use ember::Error;

#[repr(C, align(16))]
struct Aligned([u8; 8192]);

/// A 16 -> 8 -> 6 int8 body (ReLU) under an f32 head of `outs` outputs.
struct Parts {
    w0: Vec<i8>,
    w1: Vec<i8>,
    head_w: Vec<f32>,
    head_b: Vec<f32>,
    rq0: Vec<Requant>,
    rq1: Vec<Requant>,
}

fn parts(outs: usize, seed: u32) -> Parts {
    let mut g = Gen(seed);
    let mut byte = |n: usize| -> Vec<i8> { (0..n).map(|_| (g.next_f32() * 60.0) as i8).collect() };
    let (w0, w1) = (byte(8 * 16), byte(6 * 8));
    let mut g = Gen(seed + 1);
    Parts {
        w0,
        w1,
        head_w: g.vec(6 * outs),
        head_b: g.vec(outs),
        rq0: vec![Requant::from_real(0.01).unwrap(); 8],
        rq1: vec![Requant::from_real(0.02).unwrap(); 6],
    }
}

fn specs(p: &Parts) -> Vec<LayerSpec<'_>> {
    let outs = p.head_b.len();
    vec![
        LayerSpec {
            in_dim: 16,
            out_dim: 8,
            relu: true,
            data: LayerData::Int8 {
                weight: &p.w0,
                bias: &[5, -5, 10, 0, 0, 7, -3, 1],
                requant: &p.rq0,
                output: ActQuant {
                    scale: 0.05,
                    zero_point: -128,
                },
            },
        },
        LayerSpec {
            in_dim: 8,
            out_dim: 6,
            relu: true,
            data: LayerData::Int8 {
                weight: &p.w1,
                bias: &[100, -50, 0, 20, 40, -10],
                requant: &p.rq1,
                output: ActQuant {
                    scale: 0.1,
                    zero_point: -128,
                },
            },
        },
        LayerSpec {
            in_dim: 6,
            out_dim: outs,
            relu: false,
            data: LayerData::F32 {
                weight: &p.head_w,
                bias: &p.head_b,
            },
        },
    ]
}

fn write(task: u8, p: &Parts, buf: &mut Aligned) -> usize {
    blob::write(task, &specs(p), &mut buf.0).unwrap()
}

fn put_u8(b: &mut [u8], at: usize, v: u8) {
    b[at] = v;
    let n = b.len() - 4;
    let crc = ember::crc32::crc32(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
}

fn image(seed: u32) -> Vec<u8> {
    let mut g = Gen(seed);
    (0..16)
        .map(|_| ((g.next_f32() + 1.0) * 127.5) as u8)
        .collect()
}

#[test]
fn a_trainable_head_blob_is_version_1_1_with_dtype_3_and_a_flagged_f32_head() {
    let p = parts(1, 3);
    let mut buf = Aligned([0; 8192]);
    let n = write(1, &p, &mut buf);
    let b = &buf.0[..n];
    assert_eq!(u16::from_le_bytes([b[10], b[11]]), blob::VERSION_MINOR_HEAD);
    assert_eq!(b[17], 3);
    // Scratch: the body's edges only (2 x max(16, 8, 6) int8 bytes).
    assert_eq!(u32::from_le_bytes(b[32..36].try_into().unwrap()), 32);
    let head_entry = 64 + 2 * 48;
    assert_eq!(&b[head_entry..head_entry + 4], &[1, 0, 1, 0]);
    let m = parse(b).unwrap();
    assert_eq!(m.dtype, Dtype::Int8Head);
    assert_eq!((m.feature_len(), m.output_len()), (6, 1));
    assert!(m.head().unwrap().trainable);
    assert!(!m.layers[0].trainable && !m.layers[1].trainable);
    // Its f32 tensors hold the head exactly.
    let h = m.head().unwrap();
    assert_eq!(h.weight.len(), 4 * 6);
    assert_eq!(h.requant.len(), 0);
    // The all-int8 and all-f32 writers still write 1.0.
    let int8 = specs(&p)[..2].to_vec();
    let mut buf2 = Aligned([0; 8192]);
    let n2 = blob::write(0, &int8, &mut buf2.0).unwrap();
    assert_eq!(u16::from_le_bytes([buf2.0[10], buf2.0[11]]), 0);
    assert_eq!(parse(&buf2.0[..n2]).unwrap().dtype, Dtype::Int8);
}

#[test]
fn the_parser_refuses_what_format_1_1_forbids() {
    let p = parts(1, 4);
    let mut buf = Aligned([0; 8192]);
    let n = write(1, &p, &mut buf);
    let good = buf.0[..n].to_vec();
    let head_entry = 64 + 2 * 48;
    let mut check = |at: usize, v: u8, want: Error| {
        buf.0[..n].copy_from_slice(&good);
        put_u8(&mut buf.0[..n], at, v);
        assert_eq!(parse(&buf.0[..n]).unwrap_err(), want, "byte {at} = {v}");
    };
    // A 1.0 blob may not say dtype 3: the head came with minor 1.
    check(10, 0, Error::BadField { offset: 10 });
    // A 1.0 reader (dtype 1 or 2 only) refuses it by its dtype.
    check(17, 4, Error::BadField { offset: 17 });
    // The head's trainable flag must be set, the body's clear.
    check(
        head_entry + 2,
        0,
        Error::BadField {
            offset: head_entry + 2,
        },
    );
    check(64 + 2, 1, Error::BadField { offset: 64 + 2 });
    check(
        head_entry + 3,
        1,
        Error::BadField {
            offset: head_entry + 3,
        },
    );
    // The head gives logits: no ReLU.
    check(
        head_entry + 1,
        1,
        Error::BadField {
            offset: head_entry + 1,
        },
    );
    // A dtype-1 blob may not flag a layer trainable.
    let int8 = specs(&p)[..2].to_vec();
    let mut b2 = Aligned([0; 8192]);
    let n2 = blob::write(0, &int8, &mut b2.0).unwrap();
    put_u8(&mut b2.0[..n2], 64 + 48 + 2, 1);
    assert_eq!(
        parse(&b2.0[..n2]).unwrap_err(),
        Error::BadField {
            offset: 64 + 48 + 2
        }
    );
    // One layer cannot be a body and a head.
    let one = [specs(&p)[2]];
    let mut b3 = Aligned([0; 8192]);
    let n3 = blob::write(1, &one, &mut b3.0).unwrap();
    put_u8(&mut b3.0[..n3], 17, 3);
    put_u8(&mut b3.0[..n3], 10, 1);
    assert_eq!(parse(&b3.0[..n3]).unwrap_err(), Error::BadDimension);
}

#[test]
fn the_writer_refuses_mixes_other_than_an_int8_body_under_an_f32_head() {
    let p = parts(1, 5);
    let s = specs(&p);
    let mut buf = Aligned([0; 8192]);
    // f32 in the middle, or a head with ReLU.
    let mixed = [s[0], s[2], s[1]];
    assert!(blob::write(1, &mixed, &mut buf.0).is_err());
    let mut relu_head = s.clone();
    relu_head[2].relu = true;
    assert_eq!(
        blob::write(1, &relu_head, &mut buf.0),
        Err(Error::BadField { offset: 17 })
    );
}

#[test]
fn inference_from_the_bytes_is_features_then_the_head_bit_for_bit() {
    for outs in [1usize, 3] {
        let p = parts(outs, 6);
        let mut buf = Aligned([0; 8192]);
        let n = write(u8::from(outs == 1), &p, &mut buf);
        let m = parse(&buf.0[..n]).unwrap();
        let mut scratch = vec![0u8; m.scratch_bytes()];
        for k in 0..20 {
            let px = image(k);
            let mut logits = vec![0.0f32; outs];
            m.infer_f32(&px, &mut scratch, &mut logits).unwrap();
            let mut f = [0.0f32; 6];
            m.features(&px, &mut scratch, &mut f).unwrap();
            let mut want = vec![0.0f32; outs];
            head::logits(&p.head_w, &p.head_b, &f, &mut want).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&logits), bits(&want), "image {k}, {outs} outputs");
            // The features are the body's codes, dequantized: s (q - z).
            let body = &specs(&p)[..2];
            let mut b2 = Aligned([0; 8192]);
            let n2 = blob::write(0, body, &mut b2.0).unwrap();
            let mb = parse(&b2.0[..n2]).unwrap();
            let mut q = [0i8; 6];
            mb.infer_i8(&px, &mut vec![0; mb.scratch_bytes()], &mut q)
                .unwrap();
            for (fi, &qi) in f.iter().zip(&q) {
                assert_eq!(fi.to_bits(), ((qi as i32 + 128) as f32 * 0.1).to_bits());
            }
            // In place: the pixels decoded into the scratch.
            scratch[..16].copy_from_slice(&px);
            let mut f2 = [0.0f32; 6];
            m.features_in_scratch(&mut scratch, &mut f2).unwrap();
            assert_eq!(f, f2);
            // The class from the bytes and from the trainer's head agree.
            let mut state = vec![0.0; head::state_len(&m)];
            let t = HeadTrainer::new(&m, &mut state).unwrap();
            assert_eq!(
                m.predict(&px, &mut scratch).unwrap(),
                t.class_of(&f).unwrap()
            );
        }
        // int8-only entry points refuse the model, and the reverse.
        let mut q = vec![0i8; outs];
        assert_eq!(
            m.infer_i8(&image(0), &mut scratch, &mut q),
            Err(Error::BadField { offset: 17 })
        );
        assert!(m.infer_batch_i8(&image(0), &mut [0; 64], &mut q).is_err());
        assert_eq!(
            m.features(&image(0)[..15], &mut scratch, &mut [0.0; 6]),
            Err(Error::ShapeMismatch {
                expected: 16,
                got: 15
            })
        );
        assert!(m.features(&image(0), &mut scratch, &mut [0.0; 5]).is_err());
    }
}

/// Two separable classes of images: bright left half or bright right half.
fn dataset(m: &blob::Model<'_>, n: usize) -> (Vec<f32>, Vec<u8>) {
    let mut feats = vec![0.0; n * m.feature_len()];
    let mut labels = vec![0u8; n];
    let mut scratch = vec![0u8; m.scratch_bytes()];
    for i in 0..n {
        let mut px = image(100 + i as u32);
        let label = (i % 2) as u8;
        let half = if label == 1 { 0..8 } else { 8..16 };
        for p in &mut px[half] {
            *p /= 8;
        }
        labels[i] = label;
        m.features(&px, &mut scratch, &mut feats[i * 6..(i + 1) * 6])
            .unwrap();
    }
    (feats, labels)
}

fn loss_of(t: &HeadTrainer<'_>, feats: &[f32], labels: &[u8]) -> f32 {
    let mut sum = 0.0;
    for (f, &l) in feats.chunks_exact(6).zip(labels) {
        let mut z = [0.0f32];
        t.logits(f, &mut z).unwrap();
        sum += ember::loss::bce_with_logits(&z, &[f32::from(l)], None).unwrap();
    }
    sum / labels.len() as f32
}

#[test]
fn training_the_head_lowers_the_loss_and_leaves_the_body_alone() {
    let p = parts(1, 7);
    let mut buf = Aligned([0; 8192]);
    let n = write(1, &p, &mut buf);
    let original = buf.0[..n].to_vec();
    let m = parse(&original).unwrap();
    let (mut feats, mut labels) = dataset(&m, 20);
    let (f0, l0) = (feats.clone(), labels.clone());
    let mut state = vec![0.0; head::state_len(&m)];
    let mut t = HeadTrainer::new(&m, &mut state).unwrap();
    t.reinit();
    assert!(t.weight().iter().chain(t.bias()).all(|&v| v == 0.0));
    let before = loss_of(&t, &f0, &l0);
    assert!((before - core::f32::consts::LN_2).abs() < 1e-6);
    let plan = Plan {
        lr: 0.01,
        momentum: 0.9,
        batch: 5,
        epochs: 20,
        seed: 3,
    };
    let mut events = Vec::new();
    t.fit(&mut feats, &mut labels, &plan, |e| events.push(e))
        .unwrap();
    assert_eq!(events.len(), 2 * plan.steps(20));
    assert_eq!(events[0], Event::Start { step: 0 });
    assert!(matches!(events[1], Event::End { step: 0, .. }));
    let after = loss_of(&t, &f0, &l0);
    assert!(after < 0.5 * before, "{before} -> {after}");
    let right = f0
        .chunks_exact(6)
        .zip(&l0)
        .filter(|(f, &l)| t.class_of(f).unwrap() == usize::from(l))
        .count();
    assert!(right >= 18, "{right} of 20");
    // The shuffle moved samples and labels together.
    let mut pairs: Vec<_> = feats
        .chunks_exact(6)
        .zip(&labels)
        .map(|(f, &l)| (f.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), l))
        .collect();
    let mut pairs0: Vec<_> = f0
        .chunks_exact(6)
        .zip(&l0)
        .map(|(f, &l)| (f.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), l))
        .collect();
    pairs.sort();
    pairs0.sort();
    assert_eq!(pairs, pairs0);

    // Stored back: only the head's bytes (and the CRC) change, and the
    // blob's inference now uses the trained head.
    let (w, b) = (t.weight().to_vec(), t.bias().to_vec());
    let mut copy = Aligned([0; 8192]);
    copy.0[..n].copy_from_slice(&original);
    blob::store_head(&mut copy.0[..n], &w, &b).unwrap();
    let trained = parse(&copy.0[..n]).unwrap();
    let h = trained.head().unwrap();
    let head_at = h.weight.as_ptr() as usize - copy.0.as_ptr() as usize;
    let head_end = h.bias.as_ptr() as usize - copy.0.as_ptr() as usize + 4;
    for (i, (a, o)) in copy.0[..n].iter().zip(&original).enumerate() {
        if !(head_at..head_end).contains(&i) && i < n - 4 {
            assert_eq!(a, o, "byte {i} outside the head changed");
        }
    }
    let mut scratch = vec![0u8; trained.scratch_bytes()];
    let px = image(1);
    let mut f = [0.0f32; 6];
    trained.features(&px, &mut scratch, &mut f).unwrap();
    let (mut z1, mut z2) = ([0.0f32], [0.0f32]);
    trained.infer_f32(&px, &mut scratch, &mut z1).unwrap();
    t.logits(&f, &mut z2).unwrap();
    assert_eq!(z1[0].to_bits(), z2[0].to_bits());
    // A trainer made from the stored blob starts where this one ended.
    let mut s2 = vec![0.0; head::state_len(&trained)];
    let t2 = HeadTrainer::new(&trained, &mut s2).unwrap();
    assert_eq!(t2.weight(), &w[..]);
    drop(trained);
    // A diverged head is never stored; nothing is written then.
    let mut bad = w.clone();
    bad[0] = f32::NAN;
    let kept = copy.0[..n].to_vec();
    assert_eq!(
        blob::store_head(&mut copy.0[..n], &bad, &b),
        Err(Error::BadHyperParameter)
    );
    assert_eq!(&copy.0[..n], &kept[..]);
    assert!(blob::store_head(&mut copy.0[..n], &w[1..], &b).is_err());
}

#[test]
fn the_same_run_gives_the_same_bits_and_another_seed_another_order() {
    let p = parts(1, 8);
    let mut buf = Aligned([0; 8192]);
    let n = write(1, &p, &mut buf);
    let m = parse(&buf.0[..n]).unwrap();
    let run = |seed: u64| {
        let (mut f, mut l) = dataset(&m, 12);
        let mut state = vec![0.0; head::state_len(&m)];
        let mut t = HeadTrainer::new(&m, &mut state).unwrap();
        let plan = Plan {
            lr: 0.1,
            momentum: 0.9,
            batch: 4,
            epochs: 5,
            seed,
        };
        t.fit(&mut f, &mut l, &plan, |_| {}).unwrap();
        t.weight()
            .iter()
            .chain(t.bias())
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

/// `fit_while` stops after the step at whose end its callback says so, and
/// the head is then the one of a `fit` that ran just those steps.
#[test]
fn fit_while_stops_where_it_is_told_and_matches_a_shorter_fit() {
    let p = parts(1, 8);
    let mut buf = Aligned([0; 8192]);
    let n = write(1, &p, &mut buf);
    let m = parse(&buf.0[..n]).unwrap();
    let plan = Plan {
        lr: 0.1,
        momentum: 0.9,
        batch: 4,
        epochs: 5,
        seed: 3,
    };
    let bits = |t: &HeadTrainer<'_>| {
        t.weight()
            .iter()
            .chain(t.bias())
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    // 12 samples in batches of 4: 3 steps an epoch; stop at the end of step 5.
    let (mut f, mut l) = dataset(&m, 12);
    let mut state = vec![0.0; head::state_len(&m)];
    let mut t = HeadTrainer::new(&m, &mut state).unwrap();
    let mut ends = 0;
    t.fit_while(&mut f, &mut l, &plan, |e| {
        if let Event::End { step, .. } = e {
            ends += 1;
            return step < 5;
        }
        true
    })
    .unwrap();
    assert_eq!(ends, 6);
    let stopped = bits(&t);
    let (mut f, mut l) = dataset(&m, 12);
    let mut state = vec![0.0; head::state_len(&m)];
    let mut t = HeadTrainer::new(&m, &mut state).unwrap();
    t.fit(&mut f, &mut l, &Plan { epochs: 2, ..plan }, |_| {})
        .unwrap();
    assert_eq!(stopped, bits(&t));
}

#[test]
fn a_multi_class_head_trains_with_cross_entropy() {
    let p = parts(3, 9);
    let mut buf = Aligned([0; 8192]);
    let n = write(0, &p, &mut buf);
    let m = parse(&buf.0[..n]).unwrap();
    let (mut feats, mut labels) = dataset(&m, 12);
    for (i, l) in labels.iter_mut().enumerate() {
        *l = if i % 2 == 0 { 2 } else { 0 };
    }
    let mut state = vec![0.0; head::state_len(&m)];
    let mut t = HeadTrainer::new(&m, &mut state).unwrap();
    t.reinit();
    let first = t.step(&feats, &labels, 0.01, 0.0).unwrap();
    assert!((first - 3f32.ln()).abs() < 1e-6, "{first}");
    let plan = Plan {
        lr: 0.01,
        momentum: 0.9,
        batch: 6,
        epochs: 30,
        seed: 1,
    };
    let last = t.fit(&mut feats, &mut labels, &plan, |_| {}).unwrap();
    assert!(last < 0.5 * first, "{first} -> {last}");
    // Labels must name a class; bad plans and shapes are errors that
    // change nothing.
    let w = t.weight().to_vec();
    assert_eq!(
        t.step(&feats[..6], &[3], 0.1, 0.9),
        Err(Error::LabelOutOfRange {
            label: 3,
            classes: 3
        })
    );
    assert_eq!(
        t.step(&feats[..6], &[0], f32::NAN, 0.9),
        Err(Error::BadHyperParameter)
    );
    assert_eq!(
        t.step(&feats[..6], &[0], 0.1, 1.0),
        Err(Error::BadHyperParameter)
    );
    assert!(t.step(&feats[..5], &[0], 0.1, 0.9).is_err());
    let zero_batch = Plan { batch: 0, ..plan };
    assert_eq!(
        t.fit(&mut feats, &mut labels, &zero_batch, |_| {}),
        Err(Error::BadHyperParameter)
    );
    assert_eq!(t.weight(), &w[..]);
}

#[test]
fn trainers_refuse_models_and_state_that_do_not_fit() {
    let p = parts(1, 10);
    let mut buf = Aligned([0; 8192]);
    let n = write(1, &p, &mut buf);
    let m = parse(&buf.0[..n]).unwrap();
    let mut short = vec![0.0; head::state_len(&m) - 1];
    assert!(HeadTrainer::new(&m, &mut short).is_err());
    // No head: no trainer, no features.
    let body = &specs(&p)[..2];
    let mut b2 = Aligned([0; 8192]);
    let n2 = blob::write(0, body, &mut b2.0).unwrap();
    let mb = parse(&b2.0[..n2]).unwrap();
    assert_eq!(head::state_len(&mb), 0);
    assert_eq!(
        HeadTrainer::new(&mb, &mut []).unwrap_err(),
        Error::BadField { offset: 17 }
    );
    assert!(mb.features(&image(0), &mut [0; 64], &mut [0.0; 6]).is_err());
    drop(mb);
    assert!(blob::store_head(&mut b2.0[..n2], &[0.0; 6], &[0.0]).is_err());
    // A head wider than the trainer's stack buffers.
    let wide = parts(MAX_HEAD_OUT + 1, 11);
    let mut b3 = Aligned([0; 8192]);
    let n3 = write(0, &wide, &mut b3);
    let mw = parse(&b3.0[..n3]).unwrap();
    let mut s3 = vec![0.0; head::state_len(&mw)];
    assert_eq!(
        HeadTrainer::new(&mw, &mut s3).unwrap_err(),
        Error::BadDimension
    );
}
