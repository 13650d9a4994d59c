//! What a microcontroller reaches when it trains a head on itself: the
//! core's on-device trainer (`ember::head`) run on the host, on the blob the
//! device embeds, with the same operations in the same order. The core's
//! head arithmetic is plain IEEE f32 without fused multiply-adds and with
//! `libm`'s exp and log, so the host's result is the device's, bit for bit —
//! provided subnormals are not flushed (a Cortex-M keeps them), which
//! [`simulate`] makes sure of on its thread.

use anyhow::{Context, Result};

use crate::data::Dataset;
use crate::export::BlobBytes;
use ember::blob::Model;
use ember::head::{self, HeadTrainer, Plan};

/// The outcome of a simulated on-device run.
pub struct Sim {
    /// The trained head's weights (in × out) and biases.
    pub weight: Vec<f32>,
    /// The trained head's biases.
    pub bias: Vec<f32>,
    /// Correct test predictions with the head the blob starts from.
    pub correct_before: usize,
    /// Correct test predictions after training.
    pub correct_after: usize,
    /// The class of each test image before training.
    pub pred_before: Vec<u8>,
    /// The class of each test image after training.
    pub pred_after: Vec<u8>,
    /// Each step's mini-batch loss.
    pub losses: Vec<f32>,
    /// The blob with the trained head stored in it.
    pub trained: Vec<u8>,
}

/// The features of every image of `d` ([`Model::features`]), one row each.
pub fn features(m: &Model<'_>, d: &Dataset) -> Result<Vec<f32>> {
    let k = m.feature_len();
    let mut out = vec![0.0f32; d.len() * k];
    let mut scratch = vec![0u8; m.scratch_bytes()];
    for (i, row) in out.chunks_exact_mut(k.max(1)).enumerate() {
        m.features(d.image(i), &mut scratch, row)
            .map_err(anyhow::Error::msg)?;
    }
    Ok(out)
}

/// The trainer's head's class for each image, from their features, and
/// how many match the labels of `d`.
fn classes(t: &HeadTrainer<'_>, feats: &[f32], d: &Dataset, k: usize) -> Result<(Vec<u8>, usize)> {
    let mut pred = Vec::with_capacity(d.len());
    for f in feats.chunks_exact(k) {
        pred.push(t.class_of(f).map_err(anyhow::Error::msg)? as u8);
    }
    let right = pred.iter().zip(&d.labels).filter(|(p, l)| p == l).count();
    Ok((pred, right))
}

/// Trains the head of `blob` (a model with a trainable head) on `train` as
/// a device would, and scores it on `test` before and after.
///
/// # Errors
/// When the blob has no trainable head, a label does not fit it, the plan
/// is invalid, or training diverges (a non-finite head is never stored).
pub fn simulate(blob: &BlobBytes, train: &Dataset, test: &Dataset, plan: &Plan) -> Result<Sim> {
    // The device keeps subnormals; so does this thread while it simulates.
    let was = crate::fpmode::flushing();
    crate::fpmode::set(false);
    let r = run(blob, train, test, plan);
    crate::fpmode::set(was);
    r
}

fn run(blob: &BlobBytes, train: &Dataset, test: &Dataset, plan: &Plan) -> Result<Sim> {
    let m = blob.model()?;
    let k = m.feature_len();
    anyhow::ensure!(
        k > 0,
        "the blob has no trainable head: export it with --trainable-head"
    );
    let mut train_f = features(&m, train)?;
    let mut labels = train.labels.clone();
    let test_f = features(&m, test)?;
    let mut state = vec![0.0f32; head::state_len(&m)];
    let mut t = HeadTrainer::new(&m, &mut state).map_err(anyhow::Error::msg)?;
    let (pred_before, correct_before) = classes(&t, &test_f, test, k)?;
    let mut losses = Vec::new();
    // Ctrl-C stops after the current step (the caller then reports it).
    t.fit_while(&mut train_f, &mut labels, plan, |e| {
        if let head::Event::End { loss, .. } = e {
            losses.push(loss);
        }
        !crate::interrupt::requested()
    })
    .map_err(|e| anyhow::anyhow!("training the head: {e}"))?;
    let (pred_after, correct_after) = classes(&t, &test_f, test, k)?;
    let mut trained = blob.bytes().to_vec();
    ember::blob::store_head(&mut trained, t.weight(), t.bias()).map_err(|e| match e {
        ember::Error::BadHyperParameter => anyhow::anyhow!(
            "training diverged (the head is no longer finite): lower --lr (now {})",
            plan.lr
        ),
        e => anyhow::anyhow!("storing the trained head: {e}"),
    })?;
    Ok(Sim {
        weight: t.weight().to_vec(),
        bias: t.bias().to_vec(),
        correct_before,
        correct_after,
        pred_before,
        pred_after,
        losses,
        trained,
    })
}

/// Zero-run codes the images of `d` one after another (`ember::zero_runs`).
pub fn encode_images(d: &Dataset) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..d.len() {
        let px = d.image(i);
        let at = out.len();
        out.resize(at + ember::zero_runs::encoded_len(px), 0);
        ember::zero_runs::encode(px, &mut out[at..])
            .map_err(anyhow::Error::msg)
            .context("coding the test images")?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coded_images_decode_to_the_originals() {
        let mut images = vec![0u8; 3 * 784];
        for (i, p) in images.iter_mut().enumerate() {
            *p = if (i / 7) % 3 == 0 { (i % 200) as u8 } else { 0 };
        }
        let d = Dataset {
            images: images.clone(),
            labels: vec![0, 1, 0],
        };
        let coded = encode_images(&d).unwrap();
        let mut at = 0;
        for i in 0..3 {
            let mut px = [7u8; 784];
            at += ember::zero_runs::decode(&coded[at..], &mut px).unwrap();
            assert_eq!(&px[..], &images[i * 784..(i + 1) * 784]);
        }
        assert_eq!(at, coded.len());
    }
}
