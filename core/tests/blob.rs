//! The int8 kernel on every path, quantization, and the blob: round trip,
//! inference against an independent integer model, and every fault of
//! FAULTS.md items 1-16 and 27.

#![allow(clippy::needless_range_loop)] // index loops mirror the format's formulas

mod common;
use common::*;
use ember::blob::{self, parse, LayerData, LayerSpec};
use ember::quant::{self, dots_i8_on, quantize_dense, ActQuant, QuantizedDense, Requant, INPUT};
use ember::{Error, Isa};

// ---------------------------------------------------------------- kernel

#[test]
fn int8_dots_are_bit_identical_on_every_path() {
    let mut gen = Gen(5);
    let mut byte = || ((gen.next_f32() * 128.0) as i8).max(-127);
    for isa in vector_isas() {
        for n in [0usize, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 784] {
            for out in [1usize, 2, 3, 4, 5, 8, 9, 17] {
                let x: Vec<i8> = (0..n).map(|_| byte()).collect();
                let w: Vec<i8> = (0..n * out).map(|_| byte()).collect();
                let mut want = vec![0; out];
                dots_i8_on(Isa::Scalar, &x, &w, &mut want).unwrap();
                let mut got = vec![7; out];
                dots_i8_on(isa, &x, &w, &mut got).unwrap();
                assert_eq!(got, want, "{isa} n={n} out={out}");
            }
        }
    }
}

#[test]
fn int8_saturation_corners_match_the_scalar_model() {
    // -128 x -128, 127 x 127, -128 x 127 over the widest accepted row: exact.
    for isa in Isa::available() {
        for (xv, wv) in [
            (-128i8, -127i8),
            (127, 127),
            (-128, 127),
            (127, -127),
            (-1, -127),
            (0, 127),
        ] {
            for n in [1usize, 16, 33, 4096] {
                let x = vec![xv; n];
                let w = vec![wv; 3 * n];
                let mut acc = [0; 3];
                dots_i8_on(isa, &x, &w, &mut acc).unwrap();
                assert_eq!(
                    acc,
                    [xv as i32 * wv as i32 * n as i32; 3],
                    "{isa} {xv}x{wv} n={n}"
                );
            }
        }
        // The bound: MAX_IN elements of -128 x -127 stay inside i32.
        let n = quant::MAX_IN;
        let x = vec![-128i8; n];
        let mut acc = [0; 1];
        dots_i8_on(isa, &x, &vec![-127i8; n], &mut acc).unwrap();
        assert_eq!(acc[0] as i64, 16256 * n as i64);
        // A -128 weight is refused (the x86 kernels' pair sums rely on it).
        let mut w = vec![1i8; 40];
        w[33] = -128;
        assert_eq!(
            dots_i8_on(isa, &[1; 40], &w, &mut acc),
            Err(Error::BadField { offset: 33 })
        );
        assert!(dots_i8_on(isa, &vec![0; n + 1], &vec![0; n + 1], &mut acc).is_err());
        assert!(dots_i8_on(isa, &x[..4], &[0; 7], &mut acc).is_err());
    }
}

// ---------------------------------------------------------------- a model

/// A tiny 3-layer int8 model (in 20 -> 9 -> 6 -> 4) from seeded f32 weights.
struct Tiny {
    w: Vec<Vec<i8>>,
    b: Vec<Vec<i32>>,
    rq: Vec<Vec<Requant>>,
    out: Vec<ActQuant>,
    dims: Vec<usize>,
}

fn tiny() -> Tiny {
    let dims = vec![20usize, 9, 6, 4];
    let mut gen = Gen(77);
    let mut t = Tiny {
        w: vec![],
        b: vec![],
        rq: vec![],
        out: vec![],
        dims: dims.clone(),
    };
    let mut input = INPUT;
    for l in 0..3 {
        let (i, o) = (dims[l], dims[l + 1]);
        let w: Vec<f32> = gen.vec(i * o).iter().map(|v| v * 0.5).collect();
        let b: Vec<f32> = gen.vec(o).iter().map(|v| v * 0.1).collect();
        let output = if l < 2 {
            ActQuant::from_range(0.0, 3.0)
        } else {
            ActQuant::from_range(-4.0, 4.0)
        };
        let (mut wq, mut bq, mut rq) = (
            vec![0i8; i * o],
            vec![0i32; o],
            vec![
                Requant {
                    multiplier: 0,
                    shift: 0
                };
                o
            ],
        );
        quantize_dense(
            &w,
            &b,
            i,
            input,
            output,
            QuantizedDense {
                weight: &mut wq,
                bias: &mut bq,
                requant: &mut rq,
            },
        )
        .unwrap();
        t.w.push(wq);
        t.b.push(bq);
        t.rq.push(rq);
        t.out.push(output);
        input = output;
    }
    t
}

fn specs(t: &Tiny) -> Vec<LayerSpec<'_>> {
    (0..3)
        .map(|l| LayerSpec {
            in_dim: t.dims[l],
            out_dim: t.dims[l + 1],
            relu: l < 2,
            data: LayerData::Int8 {
                weight: &t.w[l],
                bias: &t.b[l],
                requant: &t.rq[l],
                output: t.out[l],
            },
        })
        .collect()
}

/// A 16-byte aligned copy of `bytes`: (storage, offset of the copy).
fn aligned(bytes: &[u8]) -> (Vec<u8>, usize) {
    let mut v = vec![0u8; bytes.len() + 16];
    let off = (16 - v.as_ptr() as usize % 16) % 16;
    v[off..off + bytes.len()].copy_from_slice(bytes);
    (v, off)
}

fn tiny_blob() -> Vec<u8> {
    let t = tiny();
    let s = specs(&t);
    let n = blob::blob_len(&s).unwrap();
    let mut out = vec![0u8; n];
    assert_eq!(blob::write(0, &s, &mut out).unwrap(), n);
    out
}

/// Independent integer model of inference, straight from docs/FORMAT.md.
fn reference_infer(t: &Tiny, pixels: &[u8]) -> Vec<i8> {
    let mut x: Vec<i32> = pixels.iter().map(|&p| p as i32 - 128).collect();
    for l in 0..3 {
        let (i, o) = (t.dims[l], t.dims[l + 1]);
        let mut y = vec![0i32; o];
        for c in 0..o {
            let acc: i64 = (0..i)
                .map(|k| x[k] as i64 * t.w[l][c * i + k] as i64)
                .sum::<i64>()
                + t.b[l][c] as i64;
            let rq = t.rq[l][c];
            let shift = 31 + rq.shift;
            let v = ((acc * rq.multiplier as i64 + (1i64 << (shift - 1))) >> shift)
                + t.out[l].zero_point as i64;
            let lo = if l < 2 {
                t.out[l].zero_point as i64
            } else {
                -128
            };
            y[c] = v.clamp(lo, 127) as i32;
        }
        x = y;
    }
    x.iter().map(|&v| v as i8).collect()
}

#[test]
fn round_trip_and_inference_match_an_independent_model() {
    let t = tiny();
    let bytes = tiny_blob();
    let (buf, off) = aligned(&bytes);
    let m = parse(&buf[off..off + bytes.len()]).unwrap();
    assert_eq!((m.input_len(), m.output_len(), m.layers.len()), (20, 4, 3));
    assert_eq!(m.scratch_bytes(), 2 * 20);
    let mut gen = Gen(3);
    for _ in 0..if cfg!(miri) { 3 } else { 200 } {
        let pixels: Vec<u8> = (0..20)
            .map(|_| ((gen.next_f32() + 1.0) * 127.9) as u8)
            .collect();
        let want = reference_infer(&t, &pixels);
        for isa in Isa::available() {
            Isa::force(isa).unwrap();
            let mut scratch = vec![0u8; m.scratch_bytes()];
            let mut out = [0i8; 4];
            m.infer_i8(&pixels, &mut scratch, &mut out).unwrap();
            assert_eq!(out.to_vec(), want, "{isa}");
            let best = want
                .iter()
                .enumerate()
                .fold(0, |b, (i, v)| if *v > want[b] { i } else { b });
            assert_eq!(m.predict_i8(&pixels, &mut scratch).unwrap(), best);
        }
        Isa::force(Isa::detect()).unwrap();
    }
    // FAULTS 16: a short scratch buffer says how much it needs.
    let mut small = [0u8; 39];
    assert_eq!(
        m.infer_i8(&[0; 20], &mut small, &mut [0; 4]),
        Err(Error::BufferTooSmall {
            needed: 40,
            got: 39
        })
    );
    assert!(m.infer_i8(&[0; 19], &mut [0; 40], &mut [0; 4]).is_err());
    assert!(m.infer_i8(&[0; 20], &mut [0; 40], &mut [0; 3]).is_err());
}

#[test]
fn golden_blob_is_stable() {
    // The writer's output for the tiny model: offsets worked out by hand from
    // docs/FORMAT.md, and the CRC pinned. A change here is a format change
    // (bump the version and update FORMAT.md), not a test to re-bless.
    let b = tiny_blob();
    assert_eq!(b.len(), 756);
    assert_eq!(&b[..8], b"EMBRBLOB");
    let u = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    assert_eq!(
        (u(12), u(20), u(32), u(36), u(40), u(44)),
        (756, 20, 40, 64, 208, 544)
    );
    let table: Vec<[u32; 6]> = (0..3)
        .map(|l| {
            let e = 64 + 48 * l;
            [
                u(e + 20),
                u(e + 24),
                u(e + 28),
                u(e + 32),
                u(e + 36),
                u(e + 40),
            ]
        })
        .collect();
    assert_eq!(
        table,
        vec![
            [208, 180, 400, 36, 448, 72],
            [528, 54, 592, 24, 624, 48],
            [672, 24, 704, 16, 720, 32],
        ]
    );
    assert_eq!(u(752), GOLDEN_CRC, "CRC of the tiny model's blob");
}

/// CRC-32 of `tiny_blob()`.
const GOLDEN_CRC: u32 = 0xc21f_afa9;

// ---------------------------------------------------------------- faults

/// Parses `bytes` from a 16-byte aligned copy.
fn parse_aligned(bytes: &[u8]) -> Result<(), Error> {
    let (buf, off) = aligned(bytes);
    parse(&buf[off..off + bytes.len()]).map(|_| ())
}

/// Recomputes the CRC so a forged field gets past the checksum.
fn recrc(b: &mut [u8]) {
    let n = b.len();
    let crc = ember::crc32::crc32(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

fn forged(f: impl Fn(&mut Vec<u8>)) -> Result<(), Error> {
    let mut b = tiny_blob();
    f(&mut b);
    recrc(&mut b);
    parse_aligned(&b)
}

fn set32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn every_truncation_and_every_byte_change_is_refused() {
    let b = tiny_blob();
    assert!(parse_aligned(&b).is_ok());
    // Under Miri (slow, checks memory safety) every 7th position suffices.
    let step = if cfg!(miri) { 7 } else { 1 };
    for len in (0..b.len()).step_by(step) {
        assert!(parse_aligned(&b[..len]).is_err(), "truncated to {len}");
    }
    for i in (0..b.len()).step_by(step) {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut c = b.clone();
            c[i] ^= flip;
            assert!(parse_aligned(&c).is_err(), "byte {i} ^ {flip:#x}");
        }
    }
    let mut longer = b.clone();
    longer.push(0);
    assert!(
        matches!(parse_aligned(&longer), Err(Error::ShapeMismatch { .. })),
        "trailing byte"
    );
}

#[test]
fn forged_fields_get_typed_errors() {
    let e1 = 64; // first layer entry
                 // 1, 2: short, magic, versions.
    assert_eq!(parse_aligned(&[]), Err(Error::Truncated { offset: 0 }));
    assert_eq!(
        parse_aligned(&[0; 40]),
        Err(Error::Truncated { offset: 40 })
    );
    assert_eq!(forged(|b| b[0] = b'X'), Err(Error::BadMagic));
    assert_eq!(
        forged(|b| b[8] = 0),
        Err(Error::UnsupportedVersion { found: 0 })
    );
    assert_eq!(
        forged(|b| b[8] = 2),
        Err(Error::UnsupportedVersion { found: 2 })
    );
    assert!(
        forged(|b| b[10] = 9).is_ok(),
        "minor versions are compatible"
    );
    // FAULTS 41: a task that disagrees with the output width (tiny has 4
    // outputs; task 1 means exactly one), and an unknown task.
    assert_eq!(forged(|b| b[16] = 1), Err(Error::BadField { offset: 16 }));
    assert_eq!(forged(|b| b[16] = 2), Err(Error::BadField { offset: 16 }));
    // A layer both too large (4 · in · out over 32 bits) and mis-chained is
    // reported by the check that comes first in FORMAT.md: the dimensions.
    assert_eq!(
        forged(|b| {
            set32(b, e1 + 48 + 4, 65536);
            set32(b, e1 + 48 + 8, 65536);
        }),
        Err(Error::BadDimension)
    );
    // 3: declared length.
    assert!(matches!(
        forged(|b| {
            let n = b.len() as u32;
            set32(b, 12, n + 1)
        }),
        Err(Error::ShapeMismatch { .. })
    ));
    // 4, 12: layer counts.
    assert_eq!(
        forged(|b| b[18] = 200),
        Err(Error::TooManyLayers { got: 200 })
    );
    assert_eq!(forged(|b| b[18] = 0), Err(Error::BadDimension));
    assert!(matches!(
        forged(|b| b[18] = 8),
        Err(Error::BadField { .. } | Error::Truncated { .. })
    ));
    // 5, 6, 7: offsets out of range, overlapping, misaligned.
    assert!(matches!(
        forged(|b| set32(b, e1 + 20, u32::MAX - 3)),
        Err(Error::Misaligned { .. } | Error::BadField { .. })
    ));
    assert_eq!(
        forged(|b| set32(b, e1 + 20, 0xFFFF_FFF0)),
        Err(Error::BadField { offset: e1 + 20 })
    );
    assert_eq!(
        forged(|b| {
            let o = u32::from_le_bytes(b[e1 + 28..e1 + 32].try_into().unwrap());
            set32(b, e1 + 28, o - 16)
        }),
        Err(Error::BadField { offset: e1 + 28 }),
        "overlap"
    );
    assert_eq!(
        forged(|b| {
            let o = u32::from_le_bytes(b[e1 + 28..e1 + 32].try_into().unwrap());
            set32(b, e1 + 28, o + 16)
        }),
        Err(Error::BadField { offset: e1 + 28 }),
        "gap"
    );
    assert_eq!(
        forged(|b| {
            let o = u32::from_le_bytes(b[e1 + 20..e1 + 24].try_into().unwrap());
            set32(b, e1 + 20, o + 4)
        }),
        Err(Error::Misaligned { offset: e1 + 20 })
    );
    let b = tiny_blob();
    let (buf, off) = aligned(&b);
    let mut shifted = vec![0u8; b.len() + 1];
    shifted[1..].copy_from_slice(&buf[off..off + b.len()]);
    let (sbuf, soff) = aligned(&shifted);
    assert_eq!(
        parse(&sbuf[soff + 1..soff + 1 + b.len()]).unwrap_err(),
        Error::Misaligned { offset: 0 },
        "base address"
    );
    // 8: zero and overflowing dimensions.
    assert_eq!(forged(|b| set32(b, e1 + 8, 0)), Err(Error::BadDimension));
    assert_eq!(
        forged(|b| {
            set32(b, 20, 65536);
            set32(b, e1 + 4, 65536);
            set32(b, e1 + 8, 65536)
        }),
        Err(Error::BadDimension)
    );
    assert_eq!(
        forged(|b| {
            set32(b, 20, 1 << 20);
            set32(b, e1 + 4, 1 << 20)
        }),
        Err(Error::BadDimension)
    );
    // 9: stored bytes != shape x element size.
    assert_eq!(
        forged(|b| {
            let l = u32::from_le_bytes(b[e1 + 24..e1 + 28].try_into().unwrap());
            set32(b, e1 + 24, l - 1)
        }),
        Err(Error::BadField { offset: e1 + 24 })
    );
    // 10: unknown codes.
    assert_eq!(forged(|b| b[17] = 9), Err(Error::BadField { offset: 17 }));
    assert_eq!(forged(|b| b[16] = 9), Err(Error::BadField { offset: 16 }));
    assert_eq!(forged(|b| b[e1] = 2), Err(Error::BadField { offset: e1 }));
    assert_eq!(
        forged(|b| b[e1 + 1] = 7),
        Err(Error::BadField { offset: e1 + 1 })
    );
    // 11: widths that do not chain.
    assert_eq!(
        forged(|b| set32(b, e1 + 48 + 4, 8)),
        Err(Error::ShapeMismatch {
            expected: 9,
            got: 8
        })
    );
    assert_eq!(
        forged(|b| set32(b, 20, 21)),
        Err(Error::ShapeMismatch {
            expected: 21,
            got: 20
        })
    );
    // 13: quantization parameters.
    for bad in [0.0f32, -0.1, f32::NAN, f32::INFINITY, 1e-40] {
        assert_eq!(
            forged(|b| set32(b, e1 + 12, bad.to_bits())),
            Err(Error::BadField { offset: e1 + 12 }),
            "scale {bad}"
        );
        assert_eq!(
            forged(|b| set32(b, 24, bad.to_bits())),
            Err(Error::BadField { offset: 24 }),
            "input scale {bad}"
        );
    }
    assert_eq!(
        forged(|b| set32(b, e1 + 16, 200)),
        Err(Error::BadField { offset: e1 + 16 })
    );
    assert_eq!(
        forged(|b| set32(b, e1 + 16, (-129i32) as u32)),
        Err(Error::BadField { offset: e1 + 16 })
    );
    assert_eq!(
        forged(|b| set32(b, 28, 0)),
        Err(Error::BadField { offset: 28 })
    );
    let rq = |b: &Vec<u8>| u32::from_le_bytes(b[e1 + 36..e1 + 40].try_into().unwrap()) as usize;
    assert!(
        matches!(
            forged(|b| {
                let r = rq(b);
                set32(b, r + 4, 32)
            }),
            Err(Error::BadField { .. })
        ),
        "shift 32"
    );
    assert!(
        matches!(
            forged(|b| {
                let r = rq(b);
                set32(b, r, 1 << 29)
            }),
            Err(Error::BadField { .. })
        ),
        "multiplier < 2^30"
    );
    assert!(
        matches!(
            forged(|b| {
                let r = rq(b);
                set32(b, r, 0x8000_0000)
            }),
            Err(Error::BadField { .. })
        ),
        "negative multiplier"
    );
    let bias = |b: &Vec<u8>| u32::from_le_bytes(b[e1 + 28..e1 + 32].try_into().unwrap()) as usize;
    assert!(
        matches!(
            forged(|b| {
                let o = bias(b);
                set32(b, o, (1 << 30) + 1)
            }),
            Err(Error::BadField { .. })
        ),
        "bias bound"
    );
    // A -128 weight (the format's weights are symmetric).
    assert_eq!(
        forged(|b| b[208 + 5] = 0x80),
        Err(Error::BadField { offset: 213 })
    );
    // 14: checksum.
    let mut c = tiny_blob();
    c[100] ^= 1;
    assert_eq!(parse_aligned(&c), Err(Error::ChecksumMismatch));
    // Reserved bytes, padding and the scratch size are checked too.
    assert!(matches!(
        forged(|b| b[50] = 1),
        Err(Error::BadField { offset: 50 })
    ));
    assert!(matches!(
        forged(|b| b[e1 + 2] = 1),
        Err(Error::BadField { .. })
    ));
    assert_eq!(
        forged(|b| set32(b, 32, 39)),
        Err(Error::BadField { offset: 32 })
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut x = 0x1234_5678u32;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let valid = tiny_blob();
    let rounds = if cfg!(miri) { 300 } else { 20_000 };
    for round in 0..rounds {
        let len = (next() % 900) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 && len > 16 {
            // Start from a valid header so the parser gets further in.
            let k = len.min(valid.len());
            b[..k].copy_from_slice(&valid[..k]);
            let i = (next() as usize) % len;
            b[i] = next() as u8;
            if round % 4 == 0 {
                recrc(&mut b);
            }
        }
        let _ = parse_aligned(&b);
    }
}

#[test]
fn writer_refuses_what_the_parser_would() {
    let t = tiny();
    let mut s = specs(&t);
    s[1].in_dim = 8;
    assert!(blob::blob_len(&s).is_err());
    let mut s = specs(&t);
    let bad = [Requant {
        multiplier: 5,
        shift: 0,
    }; 6];
    if let LayerData::Int8 { requant, .. } = &mut s[1].data {
        *requant = &bad;
    }
    assert_eq!(blob::blob_len(&s), Err(Error::BadHyperParameter));
    let s = specs(&t);
    let mut small = vec![0u8; 10];
    assert!(matches!(
        blob::write(0, &s, &mut small),
        Err(Error::BufferTooSmall { .. })
    ));
    assert!(small.iter().all(|&v| v == 0), "nothing written on error");
    assert!(blob::blob_len(&[]).is_err());
    // FAULTS 41: the writer never produces a task the parser would refuse.
    let n = blob::blob_len(&s).unwrap();
    let mut out = vec![0u8; n];
    for task in [1u8, 2, 255] {
        assert_eq!(
            blob::write(task, &s, &mut out),
            Err(Error::BadField { offset: 16 }),
            "task {task} with 4 outputs"
        );
        assert!(out.iter().all(|&v| v == 0), "nothing written on error");
    }
}

#[test]
fn quantization_special_values_are_documented() {
    assert_eq!(quant::quantize_symmetric(f32::NAN), 0);
    assert_eq!(quant::quantize_symmetric(f32::INFINITY), 127);
    assert_eq!(quant::quantize_symmetric(f32::NEG_INFINITY), -127);
    assert_eq!(quant::quantize_symmetric(1000.0), 127);
    assert_eq!(quant::quantize_symmetric(-1000.0), -127);
    assert_eq!(quant::quantize_symmetric(2.5), 3, "half away from zero");
    assert_eq!(quant::quantize_symmetric(-2.5), -3);
    let a = ActQuant::from_range(0.0, 2.55);
    assert!((a.scale - 0.01).abs() < 1e-7 && a.zero_point == -128);
    let a = ActQuant::from_range(-1.0, 1.0);
    assert!((-1..=0).contains(&a.zero_point), "{a:?}");
    assert!(ActQuant::from_range(f32::NAN, f32::NAN).is_valid());
    // A weight matrix with NaN and infinity still quantizes, to the documented codes.
    let w = [f32::NAN, 1.0, f32::INFINITY, -2.0];
    let (mut wq, mut bq, mut rq) = (
        [0i8; 4],
        [0i32; 2],
        [Requant {
            multiplier: 0,
            shift: 0,
        }; 2],
    );
    quantize_dense(
        &w,
        &[0.0, 0.0],
        2,
        INPUT,
        ActQuant::from_range(-10.0, 10.0),
        QuantizedDense {
            weight: &mut wq,
            bias: &mut bq,
            requant: &mut rq,
        },
    )
    .unwrap();
    // (out x in): channel 0 = [NaN, inf] (no finite weight: scale 1), channel 1 = [1, -2] (scale 2/127).
    assert_eq!(wq, [0, 127, 64, -127]);
}

/// The fuzz corpus (core/fuzz/corpus/parse_blob, grown by `cargo fuzz run`)
/// replayed as a normal test: every input parses or is refused, without a
/// panic, and accepted models run.
#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_blob");
    let mut n = 0;
    let mut accepted = 0;
    for entry in std::fs::read_dir(&dir).expect("the fuzz corpus is part of the repository") {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let (buf, off) = aligned(&bytes);
        if let Ok(m) = parse(&buf[off..off + bytes.len()]) {
            let mut scratch = vec![0u8; m.scratch_bytes()];
            let pixels = vec![200u8; m.input_len()];
            m.predict(&pixels, &mut scratch).unwrap();
            accepted += 1;
        }
        n += 1;
    }
    assert!(
        n >= 3 && accepted >= 1,
        "{n} corpus files, {accepted} valid"
    );
}

/// The batched integer inference is the one-image reference bit for bit, on
/// every path: image counts below and from the 16 that take the packed
/// route, around its tiles (1, 4, 5, 10, 12 and 24 images), rows around its blocks of 16 and its chunks of 96, inputs that
/// are not whole groups of 4, requantizations from shift 0 to deep shifts,
/// ReLU with a zero point above −128, and the saturation corners (all-255
/// and all-0 images, ±127 weights).
#[test]
fn batched_int8_inference_is_the_one_image_reference_bit_for_bit() {
    // 37 rows: a pair of blocks and 5 rows; 100: a chunk of 96 and 4 more;
    // 783 and 37 inputs end inside a group of 4.
    let bytes = batch_model(&[784, 37, 10], -128, 1);
    check_batched(
        &bytes,
        784,
        &[0, 1, 3, 4, 5, 8, 9, 12, 13, 17, 24, 25, 33, 50],
    );
    check_batched(
        &batch_model(&[783, 100, 37, 3], 5, 2),
        783,
        &[1, 11, 12, 16, 29],
    );
    // On a CPU with VNNI, CI requires the block kernel to be the one tested.
    if cfg!(target_arch = "x86_64") && std::env::var_os("EMBER_REQUIRE_VNNI").is_some() {
        assert!(
            Isa::has_vnni(),
            "EMBER_REQUIRE_VNNI is set but VNNI is not detected (build with ember/std)"
        );
    }
    // Errors before anything is written.
    let (buf, off) = aligned(&bytes);
    let m = parse(&buf[off..off + bytes.len()]).unwrap();
    let mut scratch = vec![0u8; m.batch_scratch_bytes(2).unwrap()];
    let mut out = vec![7i8; 20];
    assert!(m.infer_batch_i8(&[0; 785], &mut scratch, &mut out).is_err());
    assert!(m
        .infer_batch_i8(&[0; 1568], &mut scratch[..10], &mut out)
        .is_err());
    assert!(m
        .infer_batch_i8(&[0; 1568], &mut scratch, &mut out[..19])
        .is_err());
    assert!(out.iter().all(|&v| v == 7));
    // A plan refuses short room and short scratch, and writes nothing then.
    for isa in Isa::available() {
        let need = m.batch_plan_bytes(isa);
        if need > 0 {
            let mut short = vec![0u8; need - 1];
            assert!(matches!(
                m.plan_batch(isa, &mut short),
                Err(ember::Error::BufferTooSmall { .. })
            ));
        }
        let mut room = vec![0u8; need];
        let plan = m.plan_batch(isa, &mut room).unwrap();
        let mut scratch = vec![0u8; plan.scratch_bytes(20).unwrap() - 1];
        let mut out = vec![7i8; 200];
        assert!(plan.infer(&[0; 20 * 784], &mut scratch, &mut out).is_err());
        assert!(out.iter().all(|&v| v == 7));
    }
}

/// An int8 model of the given widths for the batched test: weights with
/// ±127 corners (seed 0: every weight ±127, two of one sign after each
/// other), per-row requantizations from 0.6 (shift 0) to 1e-5, hidden
/// layers with ReLU at zero point `relu_zp`.
fn batch_model(dims: &[usize], relu_zp: i32, seed: u32) -> Vec<u8> {
    use ember::quant::{ActQuant, Requant};
    let mut gen = Gen(0xba7c_4001 + seed);
    let layers = dims.len() - 1;
    let w: Vec<Vec<i8>> = (0..layers)
        .map(|l| {
            (0..dims[l] * dims[l + 1])
                .map(|i| match i % 97 {
                    _ if seed == 0 => [127, 127, -127, -127][i % 4],
                    0 => 127,
                    1 => -127,
                    _ => (gen.vec(1)[0] * 127.0) as i8,
                })
                .collect()
        })
        .collect();
    let bias: Vec<Vec<i32>> = (0..layers)
        .map(|l| (0..dims[l + 1]).map(|c| (c as i32 - 5) * 997).collect())
        .collect();
    let reals = [0.6, 0.0009, 0.02, 1e-5, 0.3, 0.0031, 0.25];
    let rq: Vec<Vec<Requant>> = (0..layers)
        .map(|l| {
            (0..dims[l + 1])
                .map(|c| Requant::from_real(reals[(c + l) % reals.len()] / (l + 1) as f64).unwrap())
                .collect()
        })
        .collect();
    let specs: Vec<LayerSpec<'_>> = (0..layers)
        .map(|l| LayerSpec {
            in_dim: dims[l],
            out_dim: dims[l + 1],
            relu: l + 1 < layers,
            data: LayerData::Int8 {
                weight: &w[l],
                bias: &bias[l],
                requant: &rq[l],
                output: ActQuant {
                    scale: 0.05,
                    zero_point: if l + 1 < layers { relu_zp } else { 3 },
                },
            },
        })
        .collect();
    let n = blob::blob_len(&specs).unwrap();
    let mut buf = vec![0u8; n];
    blob::write(0, &specs, &mut buf).unwrap();
    buf
}

/// [`Model::infer_batch_i8_on`] on every path against `infer_i8` image by
/// image, for each count of images (the first all 255, the second all 0).
fn check_batched(bytes: &[u8], input: usize, counts: &[usize]) {
    let (buf, off) = aligned(bytes);
    let m = parse(&buf[off..off + bytes.len()]).unwrap();
    let outs = m.output_len();
    for &images in counts {
        let mut px: Vec<u8> = (0..images * input)
            .map(|i| ((i * 7919 + images) % 256) as u8)
            .collect();
        if images > 1 {
            px[..input].fill(255);
            px[input..2 * input].fill(0);
        }
        let mut scratch = vec![0u8; m.scratch_bytes()];
        let mut want = vec![0i8; images * outs];
        for (img, o) in px.chunks_exact(input).zip(want.chunks_exact_mut(outs)) {
            m.infer_i8(img, &mut scratch, o).unwrap();
        }
        for isa in Isa::available() {
            let mut scratch = vec![0u8; m.batch_scratch_bytes(images).unwrap()];
            let mut got = vec![99i8; images * outs];
            m.infer_batch_i8_on(isa, &px, &mut scratch, &mut got)
                .unwrap();
            assert_eq!(got, want, "{isa} {images} images, input {input}");
            // The same through a plan packed once, run twice.
            let mut room = vec![0u8; m.batch_plan_bytes(isa)];
            let plan = m.plan_batch(isa, &mut room).unwrap();
            assert_eq!(plan.isa(), isa);
            let mut scratch = vec![0u8; plan.scratch_bytes(images).unwrap()];
            for round in 0..2 {
                let mut got = vec![99i8; images * outs];
                plan.infer(&px, &mut scratch, &mut got).unwrap();
                assert_eq!(got, want, "plan on {isa}, round {round}, {images} images");
            }
        }
    }
}
