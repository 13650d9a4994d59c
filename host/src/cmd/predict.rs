//! `ember predict`: classifies one test image or an image file, showing it
//! as ASCII art with the class probabilities.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

use crate::args::PredictArgs;
use crate::data::{self, Split, PIXELS, SIDE};
use crate::eval::{load_model, logits};
use crate::par::Pool;
use crate::task::Task;

/// `ember predict`.
pub fn run(a: &PredictArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let (pixels, label) = match (a.index, &a.image) {
        (Some(i), None) => {
            let test = data::fetch_and_load(&data::data_dir(a.data.data.as_deref()), Split::Test)?;
            if i >= test.len() {
                bail!("--index {i} is past the {} test images", test.len());
            }
            (test.image(i).to_vec(), Some(test.labels[i]))
        }
        (None, Some(p)) => (read_image(p)?, None),
        // clap's group makes exactly one of the two present.
        _ => bail!("give exactly one of --index N or --image FILE"),
    };
    let pool = Pool::new(1)?;
    let logits = logits(&m, &pool, &pixels)?;
    let probs: Vec<(String, f32)> = match m.task {
        Task::Digits => {
            let mut p = vec![0.0; logits.len()];
            ember::softmax::softmax(&logits, &mut p, 1, logits.len())
                .map_err(anyhow::Error::msg)?;
            p.iter()
                .enumerate()
                .map(|(c, &v)| (c.to_string(), v))
                .collect()
        }
        Task::ThreeSeven => {
            let p7 = ember::activation::sigmoid(logits.first().copied().unwrap_or(0.0));
            vec![("3".into(), 1.0 - p7), ("7".into(), p7)]
        }
    };
    let best = probs
        .iter()
        .enumerate()
        .fold(0, |b, (i, p)| if p.1 > probs[b].1 { i } else { b });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", ascii_art(&pixels))?;
    match label {
        Some(l) => writeln!(out, "prediction: {} (label {l})", probs[best].0)?,
        None => writeln!(out, "prediction: {}", probs[best].0)?,
    }
    for (name, p) in &probs {
        writeln!(
            out,
            "  {name:>2} {:6.2}% {}",
            100.0 * p,
            "#".repeat((p * 40.0).round() as usize)
        )?;
    }
    Ok(())
}

/// 28 rows of characters, darker pixels as denser glyphs.
pub fn ascii_art(pixels: &[u8]) -> String {
    const RAMP: &[u8] = b" .:-=+*#%@";
    pixels
        .chunks(SIDE)
        .map(|row| {
            row.iter()
                .map(|&p| RAMP[p as usize * (RAMP.len() - 1) / 255] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads a PNG (any colour type, converted to grey) or PGM image (binary P5 or
/// ASCII P2, maxval <= 255), told apart by their signatures, and scales it to
/// 28 x 28 by area averaging. Dark-on-light images (mean > 127) are inverted
/// to MNIST's light-on-dark.
pub fn read_image(path: &Path) -> Result<Vec<u8>> {
    // 4096 x 4096 grey as ASCII PGM is at most ~67 MB; nothing larger is read.
    let b = crate::fsutil::read_bounded(path, "the image", MAX_IMAGE_BYTES)?;
    let (w, h, px) = if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(&b).with_context(|| format!("{}: unreadable PNG", path.display()))?
    } else {
        parse_pgm(&b)
            .with_context(|| format!("{}: neither a PNG nor a PGM (P2/P5) image", path.display()))?
    };
    let mut out = vec![0u8; PIXELS];
    for (oy, row) in out.chunks_mut(SIDE).enumerate() {
        for (ox, o) in row.iter_mut().enumerate() {
            let (x0, x1) = (
                ox * w / SIDE,
                ((ox + 1) * w).div_ceil(SIDE).max(ox * w / SIDE + 1),
            );
            let (y0, y1) = (
                oy * h / SIDE,
                ((oy + 1) * h).div_ceil(SIDE).max(oy * h / SIDE + 1),
            );
            let mut s = 0u32;
            let mut n = 0u32;
            for y in y0..y1.min(h) {
                for x in x0..x1.min(w) {
                    s += px[y * w + x] as u32;
                    n += 1;
                }
            }
            *o = (s / n.max(1)) as u8;
        }
    }
    let mean = out.iter().map(|&p| p as u32).sum::<u32>() / PIXELS as u32;
    if mean > 127 {
        for p in &mut out {
            *p = 255 - *p;
        }
    }
    Ok(out)
}

/// The largest image file read (see [`read_image`]).
const MAX_IMAGE_BYTES: u64 = 80 << 20;

/// A PNG as 8-bit grey: 16-bit samples keep their high byte, palettes are
/// expanded, colour becomes luminance (ITU-R BT.601 weights), alpha is dropped.
fn decode_png(b: &[u8]) -> Result<(usize, usize, Vec<u8>)> {
    let mut dec = png::Decoder::new(std::io::Cursor::new(b));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info()?;
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    if w == 0 || h == 0 || w > 4096 || h > 4096 {
        bail!("unsupported size {w}x{h} (up to 4096x4096)");
    }
    let mut buf = vec![0u8; reader.output_buffer_size().context("image too large")?];
    let frame = reader.next_frame(&mut buf)?;
    let data = &buf[..frame.buffer_size()];
    let channels = frame.color_type.samples();
    let grey = data
        .chunks_exact(channels)
        .map(|p| match channels {
            1 | 2 => p[0],
            _ => ((299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32) / 1000) as u8,
        })
        .collect::<Vec<u8>>();
    if grey.len() != w * h {
        bail!("decoded {} pixels for {w}x{h}", grey.len());
    }
    Ok((w, h, grey))
}

fn parse_pgm(b: &[u8]) -> Result<(usize, usize, Vec<u8>)> {
    let mut pos = 0;
    let mut token = |b: &[u8]| -> Result<String> {
        loop {
            while pos < b.len() && b[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos < b.len() && b[pos] == b'#' {
                while pos < b.len() && b[pos] != b'\n' {
                    pos += 1;
                }
                continue;
            }
            break;
        }
        let start = pos;
        while pos < b.len() && !b[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if start == pos {
            bail!("header ends early");
        }
        Ok(String::from_utf8_lossy(&b[start..pos]).into_owned())
    };
    let magic = token(b)?;
    let w: usize = token(b)?.parse().context("bad width")?;
    let h: usize = token(b)?.parse().context("bad height")?;
    let max: usize = token(b)?.parse().context("bad maxval")?;
    if w == 0 || h == 0 || w > 4096 || h > 4096 || max == 0 || max > 255 {
        bail!("unsupported size {w}x{h} or maxval {max} (up to 4096x4096, maxval <= 255)");
    }
    let scale = |v: usize| (v.min(max) * 255 / max) as u8;
    let px = match magic.as_str() {
        "P5" => {
            let data = b
                .get(pos + 1..pos + 1 + w * h)
                .context("pixel data truncated")?;
            data.iter().map(|&v| scale(v as usize)).collect()
        }
        "P2" => {
            let mut v = Vec::with_capacity(w * h);
            for _ in 0..w * h {
                v.push(scale(token(b)?.parse().context("bad pixel value")?));
            }
            v
        }
        m => bail!("magic {m}, expected P5 or P2"),
    };
    Ok((w, h, px))
}
