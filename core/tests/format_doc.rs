//! docs/FORMAT.md stays true: its annotated hexdump is exactly what the
//! writer produces for the tiny model, the parser reads it back, and the
//! worked example gives the documented outputs.

#[path = "../examples/tiny_blob.rs"]
mod tiny;

/// The document's hexdumps, in order: each starts again at offset 0.
fn documented_dumps() -> Vec<Vec<u8>> {
    let doc = include_str!("../../docs/FORMAT.md");
    let mut dumps: Vec<Vec<u8>> = Vec::new();
    let lines = doc.lines().filter(|l| {
        l.len() > 10 && l.as_bytes()[8] == b':' && l[..8].chars().all(|c| c.is_ascii_hexdigit())
    });
    for line in lines {
        if line.starts_with("00000000:") {
            dumps.push(Vec::new());
        }
        let hex = &line[10..line.len().min(10 + 16 * 3)];
        dumps.last_mut().unwrap().extend(
            hex.split_whitespace()
                .map(|h| u8::from_str_radix(h, 16).unwrap()),
        );
    }
    dumps
}

#[repr(C, align(16))]
struct Aligned512([u8; 512]);

#[test]
fn the_documented_hexdump_is_what_the_writer_writes() {
    let dumps = documented_dumps();
    assert_eq!(dumps.len(), 2, "a 1.0 and a 1.1 dump");
    let mut out = [0u8; 512];
    let n = tiny::tiny_blob(&mut out).unwrap();
    assert_eq!(dumps[0], out[..n].to_vec());

    let mut a = Aligned512([0; 512]);
    a.0[..n].copy_from_slice(&out[..n]);
    let m = ember::blob::parse(&a.0[..n]).unwrap();
    let mut scratch = [0u8; 8];
    let mut y = [0i8; 2];
    m.infer_i8(&[255, 0, 128, 64], &mut scratch, &mut y)
        .unwrap();
    assert_eq!(y, [127, -128], "the worked example's outputs");
}

#[test]
fn the_documented_trainable_head_dump_and_its_worked_example_hold() {
    let dumps = documented_dumps();
    let mut out = [0u8; 512];
    let n = tiny::tiny_head_blob(&mut out).unwrap();
    assert_eq!(dumps[1], out[..n].to_vec());
    let mut a = Aligned512([0; 512]);
    a.0[..n].copy_from_slice(&out[..n]);
    let m = ember::blob::parse(&a.0[..n]).unwrap();
    assert_eq!(m.dtype, ember::blob::Dtype::Int8Head);
    let px = [255, 0, 128, 64];
    let mut scratch = [0u8; 8];
    let mut features = [0.0f32; 3];
    m.features(&px, &mut scratch, &mut features).unwrap();
    // The document's recipe: f32(y - z) x s, then the bias-first sum.
    let f = [7.0f32 * 0.05, 0.0, 143.0f32 * 0.05];
    assert_eq!(features, f);
    let mut logit = 0.125f32;
    for (fi, wi) in f.iter().zip([0.5f32, -0.25, 2.0]) {
        logit += fi * wi;
    }
    let mut got = [0.0f32];
    m.infer_f32(&px, &mut scratch, &mut got).unwrap();
    assert_eq!(got[0].to_bits(), logit.to_bits());
    assert!((logit - 14.6).abs() < 1e-5, "{logit}");
    assert_eq!(m.predict(&px, &mut scratch).unwrap(), 1, "a seven");
}

/// FORMAT.md's f32 inference, written from the document alone: the input
/// is `f32(p) × f32(1/255)` (the header's scale is not used), each output
/// sums from its bias in increasing input order, every product rounded
/// before its add (no fused multiply-add), then ReLU. It reproduces the
/// parser's f32 logits bit for bit, including the zero padding of f32
/// tensors whose lengths are not multiples of 16.
#[test]
fn f32_inference_follows_the_document_bit_for_bit() {
    use ember::blob::{self, LayerData, LayerSpec};
    // A deterministic generator: values in (-1, 1) with all mantissa bits used.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    let dims = [37usize, 10, 3]; // a 40-byte bias: 8 bytes of padding after it
    let w: Vec<Vec<f32>> = (0..2)
        .map(|l| (0..dims[l] * dims[l + 1]).map(|_| next()).collect())
        .collect();
    let b: Vec<Vec<f32>> = (0..2)
        .map(|l| (0..dims[l + 1]).map(|_| next() * 0.5).collect())
        .collect();
    let specs: Vec<LayerSpec<'_>> = (0..2)
        .map(|l| LayerSpec {
            in_dim: dims[l],
            out_dim: dims[l + 1],
            relu: l == 0,
            data: LayerData::F32 {
                weight: &w[l],
                bias: &b[l],
            },
        })
        .collect();
    #[repr(C, align(16))]
    struct Aligned([u8; 4096]);
    let mut buf = Aligned([0; 4096]);
    let n = blob::write(0, &specs, &mut buf.0).unwrap();
    let m = blob::parse(&buf.0[..n]).unwrap();
    assert_eq!((1.0f32 / 255.0).to_bits(), 0x3B80_8081);
    let pixels: Vec<u8> = (0..37u32).map(|i| (i * 73 % 256) as u8).collect();
    let mut scratch = vec![0u8; m.scratch_bytes()];
    let mut got = [0.0f32; 3];
    m.infer_f32(&pixels, &mut scratch, &mut got).unwrap();
    // The document's recipe.
    let mut act: Vec<f32> = pixels
        .iter()
        .map(|&p| p as f32 * f32::from_bits(0x3B80_8081))
        .collect();
    for l in 0..2 {
        let (i_n, o_n) = (dims[l], dims[l + 1]);
        act = (0..o_n)
            .map(|c| {
                let mut s = b[l][c];
                for i in 0..i_n {
                    let p = act[i] * w[l][i * o_n + c]; // rounded, then added
                    s += p;
                }
                if l == 0 && s < 0.0 {
                    0.0
                } else {
                    s
                }
            })
            .collect();
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got), bits(&act));
}
