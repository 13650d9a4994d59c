//! Transfer learning on the microcontroller itself: the embedded blob's int8
//! body stays frozen (and integer-only), its f32 head is trained here on 20
//! labelled images with SGD and momentum, in fixed static buffers, and then
//! scored on held-back test images. The host simulated the same run
//! (`ember fine-tune --on-device-sim --vectors`); every trained head weight
//! must equal the host's bit for bit, and so must the test counts.
//!
//! Prints the accuracy before and after, the RAM it used, the work per
//! training step, and `RESULT: PASS` when the host agrees and the accuracy
//! reaches the target in `meta.rs` (98.5% for the committed vectors).
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use ember::blob::{self, Dtype, Model};
use ember::head::{Event, HeadTrainer, Plan};
use ember::zero_runs;

#[path = "../board.rs"]
#[allow(dead_code)]
mod board;
use board::{
    bench_start, bench_stop, fail, finish, paint_stack, stack_high_water, Aligned, Fixed4,
    Hundredths,
};

mod data {
    include!(concat!(env!("EMBER_FINETUNE_DIR"), "/meta.rs"));
}

macro_rules! vectors {
    ($f:literal) => {
        include_bytes!(concat!(env!("EMBER_FINETUNE_DIR"), "/", $f))
    };
}

const MODEL_LEN: usize = vectors!("model.bin").len();
static MODEL: &Aligned<[u8; MODEL_LEN]> = &Aligned(*vectors!("model.bin"));
static TRAIN: &[u8] = vectors!("train.bin");
static TRAIN_LABELS: &[u8] = vectors!("train_labels.bin");
static TEST: &[u8] = vectors!("test.bin");
static TEST_LABELS: &[u8] = vectors!("test_labels.bin");
static EXPECTED: &[u8] = vectors!("expected.bin");

/// The body's scratch (integer inference).
static mut SCRATCH: Aligned<[u8; data::SCRATCH_BYTES]> = Aligned([0; data::SCRATCH_BYTES]);
/// The training samples' features, computed once (the body is frozen).
static mut FEATURES: [f32; data::TRAIN_COUNT * data::FEATURES] =
    [0.0; data::TRAIN_COUNT * data::FEATURES];
/// Their labels (shuffled together with the features).
static mut LABELS: [u8; data::TRAIN_COUNT] = [0; data::TRAIN_COUNT];
/// The head's weights, gradients and momentum.
static mut STATE: [f32; data::STATE_LEN] = [0.0; data::STATE_LEN];

/// Buffers this firmware trains in, for the RAM report.
/// Images are decoded straight into the scratch: no image buffer.
const BUFFER_BYTES: [(&str, usize); 3] = [
    ("feature cache", 4 * data::TRAIN_COUNT * data::FEATURES),
    ("head state", 4 * data::STATE_LEN),
    ("scratch", data::SCRATCH_BYTES),
];

/// The run's bench markers (for `measure.sh`'s instruction counter) and
/// SysTick, counting core-clock cycles: real cycles on a board; under QEMU
/// with `-icount shift=0` (the runner in .cargo/config.toml) every
/// instruction takes 1 ns of virtual time, so the cycles convert exactly to
/// instructions.
struct Meter {
    ticks: u64,
    start: u32,
}

impl Meter {
    fn new() -> Self {
        if let Some(mut p) = cortex_m::Peripherals::take() {
            p.SYST.set_clock_source(SystClkSource::Core);
            p.SYST.set_reload(0x00FF_FFFF);
            p.SYST.clear_current();
            p.SYST.enable_counter();
        }
        Meter { ticks: 0, start: 0 }
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Start { step } => {
                bench_start(step);
                self.start = SYST::get_current();
            }
            Event::End { step, .. } => {
                // 24 bits counting down; a step is far shorter than a wrap.
                let now = SYST::get_current();
                self.ticks += u64::from(self.start.wrapping_sub(now) & 0x00FF_FFFF);
                bench_stop(step);
            }
        }
    }
}

/// Whether QEMU runs this with `-icount shift=0` (the runner says so on the
/// semihosting command line).
fn under_qemu_icount() -> bool {
    let mut buf = [0u8; 96];
    let mut block = [buf.as_mut_ptr() as usize, buf.len()];
    // SAFETY: SYS_GET_CMDLINE writes at most block[1] bytes into buf and the
    // length into block[1]; both live until the call returns.
    let r = unsafe {
        cortex_m_semihosting::syscall1(
            cortex_m_semihosting::nr::GET_CMDLINE,
            block.as_mut_ptr() as usize,
        )
    };
    let len = block[1].min(buf.len());
    r == 0 && buf[..len].windows(12).any(|w| w == b"icount-shift")
}

/// Correct predictions of the head on the embedded test images: each one
/// decoded into the scratch, run through the integer body, its features
/// (in `feature`, a row of the feature cache, free outside training)
/// classified by the head.
fn correct(
    model: &Model<'_>,
    t: &HeadTrainer<'_>,
    scratch: &mut [u8],
    feature: &mut [f32],
) -> usize {
    let (mut at, mut right) = (0, 0);
    for (i, &label) in TEST_LABELS.iter().enumerate().take(data::TEST_COUNT) {
        at += match zero_runs::decode(&TEST[at..], &mut scratch[..data::INPUTS]) {
            Ok(n) => n,
            Err(e) => fail(format_args!("test image {i} does not decode: {e}")),
        };
        let class = model
            .features_in_scratch(scratch, feature)
            .and_then(|()| t.class_of(feature));
        match class {
            Ok(c) => right += usize::from(c == usize::from(label)),
            Err(e) => fail(format_args!("test image {i}: {e}")),
        }
    }
    right
}

#[entry]
fn main() -> ! {
    paint_stack();
    let model = match blob::parse(&MODEL.0) {
        Ok(m) => m,
        Err(e) => fail(format_args!("the embedded blob does not parse: {e}")),
    };
    if model.dtype != Dtype::Int8Head
        || model.scratch_bytes() > data::SCRATCH_BYTES
        || model.input_len() != data::INPUTS
        || model.feature_len() != data::FEATURES
        || model.output_len() != data::OUTPUTS
        || ember::head::state_len(&model) != data::STATE_LEN
    {
        fail(format_args!(
            "the blob is not the meta.rs model with a trainable head"
        ));
    }
    // SAFETY: the only references to these statics, taken once, in the only thread.
    let (scratch, features, labels, state) = unsafe {
        (
            &mut (*addr_of_mut!(SCRATCH)).0,
            &mut *addr_of_mut!(FEATURES),
            &mut *addr_of_mut!(LABELS),
            &mut *addr_of_mut!(STATE),
        )
    };
    let mut t = match HeadTrainer::new(&model, state) {
        Ok(t) => t,
        Err(e) => fail(format_args!("no trainer: {e}")),
    };
    hprintln!(
        "ember fine-tune on {}: {}-layer int8 body ({} pixels in, {} features out), trainable f32 head {}-{}, task {}",
        env!("EMBER_BOARD"),
        model.layers.len() - 1,
        model.input_len(),
        data::FEATURES,
        data::FEATURES,
        data::OUTPUTS,
        data::TASK
    );
    let pct = |right: usize| Hundredths(right * 10_000 / data::TEST_COUNT);
    let before = correct(&model, &t, scratch, &mut features[..data::FEATURES]);
    hprintln!(
        "accuracy {}% before training ({} held-back test images)",
        pct(before),
        data::TEST_COUNT
    );

    // Each training image through the frozen body once.
    let mut at = 0;
    for i in 0..data::TRAIN_COUNT {
        at += match zero_runs::decode(&TRAIN[at..], &mut scratch[..data::INPUTS]) {
            Ok(n) => n,
            Err(e) => fail(format_args!("training image {i} does not decode: {e}")),
        };
        let row = &mut features[i * data::FEATURES..(i + 1) * data::FEATURES];
        if let Err(e) = model.features_in_scratch(scratch, row) {
            fail(format_args!("training image {i}: {e}"));
        }
    }
    labels.copy_from_slice(&TRAIN_LABELS[..data::TRAIN_COUNT]);
    let plan = Plan {
        lr: data::LR,
        momentum: data::MOMENTUM,
        batch: data::BATCH,
        epochs: data::EPOCHS,
        seed: data::SEED,
    };
    let mut meter = Meter::new();
    let mut first = f32::NAN;
    let last = t.fit(features, labels, &plan, |e| {
        if let Event::End { step: 0, loss } = e {
            first = loss;
        }
        meter.event(e);
    });
    let last = match last {
        Ok(l) => l,
        Err(e) => fail(format_args!("training failed: {e}")),
    };
    let steps = plan.steps(data::TRAIN_COUNT);
    hprintln!(
        "trained on {} images: {} steps ({} epochs of batch {}), loss {} -> {}",
        data::TRAIN_COUNT,
        steps,
        data::EPOCHS,
        data::BATCH,
        Fixed4(first),
        Fixed4(last)
    );
    let after = correct(&model, &t, scratch, &mut features[..data::FEATURES]);
    hprintln!("accuracy {}% after training", pct(after));

    // The host's head, bit for bit.
    let mine = t.weight().iter().chain(t.bias());
    let host = EXPECTED.chunks_exact(4);
    let params = data::STATE_LEN / 3;
    let differ = mine
        .zip(host)
        .filter(|(v, h)| v.to_bits().to_le_bytes() != **h)
        .count()
        + params.abs_diff(EXPECTED.len() / 4);
    let agree = differ == 0
        && steps == data::STEPS
        && before == data::HOST_CORRECT_BEFORE
        && after == data::HOST_CORRECT_AFTER;
    hprintln!(
        "{}: {} of {} head weights differ, {} and {} correct (host: {} and {})",
        if agree {
            "host agrees"
        } else {
            "host DISAGREES"
        },
        differ,
        params,
        before,
        after,
        data::HOST_CORRECT_BEFORE,
        data::HOST_CORRECT_AFTER
    );
    let stored = stored_head_check(&t, after);
    let buffers: usize = BUFFER_BYTES.iter().map(|(_, b)| b).sum();
    hprintln!(
        "RAM: {} B of buffers (feature cache {}, head state {}, scratch {}), stack high-water {} B",
        buffers,
        BUFFER_BYTES[0].1,
        BUFFER_BYTES[1].1,
        BUFFER_BYTES[2].1,
        stack_high_water()
    );
    // Per sample: the forward and the gradient pass are F·O multiply-adds
    // each; the update touches every parameter once. SysTick gives the cost.
    let macs = data::BATCH * 2 * data::FEATURES * data::OUTPUTS + params;
    let steps64 = steps.max(1) as u64;
    if under_qemu_icount() {
        // Virtual time: 1 ns per instruction; SysTick runs at the board's clock.
        let hz: u64 = env!("EMBER_SYSCLK_HZ").parse().unwrap_or(1);
        hprintln!(
            "cost: {} instructions per training step, {} multiply-adds (QEMU -icount, SysTick at {} MHz)",
            meter.ticks * 1_000_000_000 / hz / steps64,
            macs,
            hz / 1_000_000
        );
    } else {
        hprintln!(
            "cost: {} cycles per training step, {} multiply-adds (SysTick)",
            meter.ticks / steps64,
            macs
        );
    }
    let target = after * 10_000 >= data::TARGET_PER_10K * data::TEST_COUNT;
    if !target {
        hprintln!(
            "accuracy {}% is below the target {}%",
            pct(after),
            Hundredths(data::TARGET_PER_10K)
        );
    }
    finish(agree && target && stored)
}

/// Writes the trained head into a RAM copy of the blob, parses it again,
/// and checks that inference from those bytes gives the same test count.
/// Needs RAM for the whole blob: done where the board has it.
#[cfg(big_ram)]
fn stored_head_check(t: &HeadTrainer<'_>, after: usize) -> bool {
    static mut COPY: Aligned<[u8; MODEL_LEN]> = Aligned([0; MODEL_LEN]);
    // SAFETY: the only reference to COPY, in the only thread.
    let copy = unsafe { &mut (*addr_of_mut!(COPY)).0 };
    copy.copy_from_slice(&MODEL.0);
    let mut scratch = [0u8; data::SCRATCH_BYTES];
    let mut px = [0u8; data::INPUTS];
    let checked = blob::store_head(copy, t.weight(), t.bias())
        .and_then(|()| blob::parse(copy))
        .and_then(|m| {
            let (mut at, mut right) = (0, 0);
            for &label in TEST_LABELS.iter().take(data::TEST_COUNT) {
                at += zero_runs::decode(&TEST[at..], &mut px)?;
                right += usize::from(m.predict(&px, &mut scratch)? == usize::from(label));
            }
            Ok(right)
        });
    match checked {
        Ok(right) => {
            hprintln!(
                "trained head stored in a RAM copy of the blob: {} correct from its bytes",
                right
            );
            right == after
        }
        Err(e) => {
            hprintln!("storing the trained head failed: {}", e);
            false
        }
    }
}

/// A Cortex-M0 board of 16 KiB RAM cannot hold a copy of the blob; the
/// stored-head path is checked on the Cortex-M4F build and on the host.
#[cfg(not(big_ram))]
fn stored_head_check(_: &HeadTrainer<'_>, _: usize) -> bool {
    hprintln!("trained head kept in RAM (no room for a copy of the blob on this board)");
    true
}
