//! Zero-run coding of images, so that test images fit a small board's flash
//! (MNIST digits are about 80% background: 500 threes and sevens take
//! ~93 kB instead of 392 kB). A byte 0 followed by a count `n` (1..=255)
//! stands for `n` zero pixels; any other byte is a pixel. The host encodes
//! (`ember fine-tune --on-device-sim --vectors`), the firmware decodes here.
#![forbid(unsafe_code)]

use crate::Error;

/// Decodes one image of `dst.len()` pixels from the start of `src` and
/// returns the bytes it used (the next image starts there).
///
/// # Errors
/// [`Error::Truncated`] when `src` ends first, [`Error::BadField`] for a
/// zero count or a run past the image's end (offsets into `src`).
///
/// ```
/// let mut px = [9u8; 6];
/// assert_eq!(ember::zero_runs::decode(&[0, 2, 7, 0, 3, 1], &mut px)?, 5);
/// assert_eq!(px, [0, 0, 7, 0, 0, 0]);
/// # Ok::<(), ember::Error>(())
/// ```
pub fn decode(src: &[u8], dst: &mut [u8]) -> Result<usize, Error> {
    let (mut i, mut o) = (0usize, 0usize);
    while o < dst.len() {
        let b = *src.get(i).ok_or(Error::Truncated { offset: i })?;
        if b != 0 {
            dst[o] = b;
            o += 1;
            i += 1;
            continue;
        }
        let n = usize::from(*src.get(i + 1).ok_or(Error::Truncated { offset: i + 1 })?);
        let run = dst
            .get_mut(o..o + n)
            .filter(|r| !r.is_empty())
            .ok_or(Error::BadField { offset: i + 1 })?;
        run.fill(0);
        o += n;
        i += 2;
    }
    Ok(i)
}

/// Bytes [`encode`] writes for `px`.
pub fn encoded_len(px: &[u8]) -> usize {
    let mut len = 0;
    encode_with(px, |_| len += 1);
    len
}

/// Encodes `px` into `out` (at least [`encoded_len`] bytes) and returns the
/// length written.
///
/// # Errors
/// [`Error::BufferTooSmall`] when `out` is too short (nothing is promised
/// about its contents then).
pub fn encode(px: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let (need, got) = (encoded_len(px), out.len());
    let dst = out
        .get_mut(..need)
        .ok_or(Error::BufferTooSmall { needed: need, got })?;
    let mut k = 0;
    encode_with(px, |b| {
        dst[k] = b;
        k += 1;
    });
    Ok(k)
}

fn encode_with(px: &[u8], mut emit: impl FnMut(u8)) {
    let mut i = 0;
    while i < px.len() {
        if px[i] != 0 {
            emit(px[i]);
            i += 1;
            continue;
        }
        let n = px[i..].iter().take(255).take_while(|&&p| p == 0).count();
        emit(0);
        emit(n as u8);
        i += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_codes() {
        let mut px = [0u8; 784];
        for (i, p) in px.iter_mut().enumerate() {
            *p = if i % 97 < 60 { 0 } else { (i % 251) as u8 | 1 };
        }
        px[300..700].fill(0); // a run longer than 255
        let mut enc = [0u8; 1024];
        let n = encode(&px, &mut enc).unwrap();
        assert_eq!(n, encoded_len(&px));
        assert!(n < 400, "{n}");
        let mut back = [1u8; 784];
        assert_eq!(decode(&enc[..n], &mut back).unwrap(), n);
        assert_eq!(back, px);
        // Truncated anywhere, a zero count, a run past the end.
        for cut in 0..n {
            assert!(decode(&enc[..cut], &mut back).is_err());
        }
        assert_eq!(
            decode(&[0, 0], &mut back),
            Err(Error::BadField { offset: 1 })
        );
        assert_eq!(
            decode(&[5, 0, 3], &mut [0u8; 3]),
            Err(Error::BadField { offset: 2 })
        );
        assert!(encode(&px, &mut [0u8; 10]).is_err());
    }
}
