//! Any bytes at all: `parse` returns (never panics, never reads out of
//! bounds), and a model it accepts runs inference on any input without
//! panicking; one with a trainable head (format 1.1) also computes
//! features, trains its head a step and stores it back into a copy, which
//! must parse again. Run: `cd core && cargo +nightly fuzz run parse_blob`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[repr(C, align(16))]
struct Aligned([u8; 1 << 16]);

fuzz_target!(|data: &[u8]| {
    if data.len() > 1 << 16 {
        return;
    }
    // The format promises a 16-byte aligned start; libFuzzer's buffer makes
    // none, so copy (the misaligned case is checked by the unit tests).
    let mut a = Box::new(Aligned([0; 1 << 16]));
    let n = data.len();
    a.0[..n].copy_from_slice(data);
    check(&a.0[..n]);
    // Again with a valid length field and CRC, so the fuzzer also reaches
    // the structural checks behind the checksum.
    if n >= 68 {
        a.0[12..16].copy_from_slice(&(n as u32).to_le_bytes());
        let crc = ember::crc32::crc32(&a.0[..n - 4]);
        a.0[n - 4..n].copy_from_slice(&crc.to_le_bytes());
        check(&a.0[..n]);
    }
});

fn check(bytes: &[u8]) {
    let Ok(m) = ember::blob::parse(bytes) else {
        return;
    };
    let mut scratch = vec![0u8; m.scratch_bytes()];
    let pixels: Vec<u8> = (0..m.input_len()).map(|i| i as u8).collect();
    let _ = m.predict(&pixels, &mut scratch);
    if m.head().is_none() {
        return;
    }
    let mut features = vec![0.0f32; m.feature_len()];
    m.features(&pixels, &mut scratch, &mut features)
        .expect("features of a parsed model with a head");
    let mut state = vec![0.0f32; ember::head::state_len(&m)];
    let Ok(mut t) = ember::head::HeadTrainer::new(&m, &mut state) else {
        return; // a head wider than MAX_HEAD_OUT
    };
    let _ = t.step(&features, &[0], 0.01, 0.9);
    let (w, b) = (t.weight().to_vec(), t.bias().to_vec());
    drop(m);
    let mut copy = Box::new(Aligned([0; 1 << 16]));
    copy.0[..bytes.len()].copy_from_slice(bytes);
    let copy = &mut copy.0[..bytes.len()];
    if ember::blob::store_head(copy, &w, &b).is_ok() {
        ember::blob::parse(copy).expect("a stored head parses");
    }
}
