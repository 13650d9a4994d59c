//! ember on a microcontroller: parse the embedded blob, run integer-only
//! inference on the embedded test images in a fixed scratch buffer, compare
//! every logit with the host's bit for bit, and report over semihosting.
//! Exits 0 (and prints `RESULT: PASS`) only when everything matches.
#![no_std]
#![no_main]
// The size probes (features probe-*) use only part of the file.
#![cfg_attr(
    any(feature = "probe-infer", feature = "probe-empty"),
    allow(dead_code, unused_imports)
)]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use ember::blob;
use ember::quant::{dots_i8_on, reference};
use ember::Isa;

// Each binary uses part of the shared board code.
#[allow(dead_code)]
mod board;
use board::{
    bench_start, bench_stop, fail, finish, paint_stack, stack_high_water, Aligned, Hundredths,
};

mod data {
    include!(concat!(env!("EMBER_DATA_DIR"), "/meta.rs"));
}

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
    env!("EMBER_DATA_DIR"),
    "/model.bin"
)));
static IMAGES: &[u8] = include_bytes!(concat!(env!("EMBER_DATA_DIR"), "/images.bin"));
static LABELS: &[u8] = include_bytes!(concat!(env!("EMBER_DATA_DIR"), "/labels.bin"));
static LOGITS: &[u8] = include_bytes!(concat!(env!("EMBER_DATA_DIR"), "/logits.bin"));

/// Inference scratch, sized from what the model reports (checked at run time).
static mut SCRATCH: Aligned<[u8; data::SCRATCH_BYTES]> = Aligned([0; data::SCRATCH_BYTES]);

/// The active int8 path equals the scalar reference on the corner cases of
/// FAULTS.md item 27 (−128 × −127, 127 × 127, mixed signs, odd lengths).
fn kernel_self_test() -> bool {
    let mut x = [0i8; 37];
    let mut w = [0i8; 37 * 5];
    for (i, v) in x.iter_mut().enumerate() {
        *v = [-128, 127, -1, 0, 77][i % 5];
    }
    for (i, v) in w.iter_mut().enumerate() {
        *v = [-127, 127, 1, -77, 0, 3][i % 6];
    }
    let (mut a, mut b) = ([0i32; 5], [0i32; 5]);
    if dots_i8_on(Isa::active(), &x, &w, &mut a).is_err() {
        return false;
    }
    reference::dots_i8(&x, &w, &mut b);
    a == b
}

#[cfg(any(feature = "probe-infer", feature = "probe-empty"))]
#[entry]
fn main() -> ! {
    #[cfg(feature = "probe-infer")]
    {
        // SAFETY: the only reference to SCRATCH, in the only thread.
        let scratch: &mut [u8] = unsafe { &mut (*addr_of_mut!(SCRATCH)).0 };
        let ok = blob::parse(&MODEL.0)
            .and_then(|m| m.predict_i8(&IMAGES[..data::INPUTS], scratch))
            .is_ok_and(|c| c == LABELS[0] as usize);
        cortex_m_semihosting::debug::exit(if ok {
            cortex_m_semihosting::debug::EXIT_SUCCESS
        } else {
            cortex_m_semihosting::debug::EXIT_FAILURE
        });
    }
    #[cfg(not(feature = "probe-infer"))]
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
    board::halt()
}

#[cfg(not(any(feature = "probe-infer", feature = "probe-empty")))]
#[entry]
fn main() -> ! {
    paint_stack();
    let model = match blob::parse(&MODEL.0) {
        Ok(m) => m,
        Err(e) => fail(format_args!("the embedded blob does not parse: {e}")),
    };
    // SAFETY: the only reference to SCRATCH, taken once, in the only thread.
    let scratch: &mut [u8] = unsafe { &mut (*addr_of_mut!(SCRATCH)).0 };
    if model.scratch_bytes() > scratch.len()
        || model.input_len() != data::INPUTS
        || model.output_len() != data::OUTPUTS
    {
        fail(format_args!("the blob does not match meta.rs"));
    }
    if !kernel_self_test() {
        fail(format_args!(
            "the {} int8 kernel differs from the reference",
            Isa::active().name()
        ));
    }
    let zero = model.output_quant().zero_point;
    let (mut correct, mut differ) = (0usize, 0usize);
    for i in 0..data::COUNT {
        let image = &IMAGES[i * data::INPUTS..(i + 1) * data::INPUTS];
        let mut out = [0i8; data::OUTPUTS];
        bench_start(i as u32);
        let r = model.infer_i8(image, scratch, &mut out);
        bench_stop(i as u32);
        if let Err(e) = r {
            fail(format_args!("inference failed on image {i}: {e}"));
        }
        let want = &LOGITS[i * data::OUTPUTS..(i + 1) * data::OUTPUTS];
        if out.iter().zip(want).any(|(&a, &b)| a as u8 != b) {
            differ += 1;
            if differ <= 3 {
                hprintln!(
                    "image {}: logits {:?} differ from the host's {:?}",
                    i,
                    out,
                    want
                );
            }
        }
        let class = if data::OUTPUTS == 1 {
            usize::from(out[0] as i32 > zero)
        } else {
            (0..data::OUTPUTS).fold(0, |b, c| if out[c] > out[b] { c } else { b })
        };
        if class == LABELS[i] as usize {
            correct += 1;
        }
    }
    let per_10k = Hundredths(correct * 10_000 / data::COUNT);
    hprintln!(
        "ember on {} ({} kernel): {} images, accuracy {}%, {} logits differ from the host",
        env!("EMBER_BOARD"),
        Isa::active().name(),
        data::COUNT,
        per_10k,
        differ
    );
    hprintln!(
        "blob {} bytes, scratch {} bytes, stack high-water {} bytes, {} MACs per inference",
        MODEL.0.len(),
        model.scratch_bytes(),
        stack_high_water(),
        data::MACS
    );
    finish(differ == 0)
}
