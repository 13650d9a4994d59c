//! Any bytes at all: `parse` returns (never panics, never reads out of
//! bounds), and a model it accepts runs inference on any input without
//! panicking. Run: `cd core && cargo +nightly fuzz run parse_blob`.
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
    a.0[..data.len()].copy_from_slice(data);
    if let Ok(m) = ember::blob::parse(&a.0[..data.len()]) {
        let mut scratch = vec![0u8; m.scratch_bytes()];
        let pixels: Vec<u8> = (0..m.input_len()).map(|i| i as u8).collect();
        let _ = m.predict(&pixels, &mut scratch);
    }
});
