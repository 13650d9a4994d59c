//! Augmentation: each training image moved by a random whole number of
//! pixels, seeded, so that results stay independent of the thread count.

use rand_core::Rng;

use super::pixels;

/// Image side in pixels.
const SIDE: usize = 28;

/// Writes `img` (28×28) into `out` as the network sees it, moved right by
/// `dx` and down by `dy` pixels; what moves in from outside the frame is
/// background (0). Row by row: the columns that come from inside the frame
/// are one contiguous run, converted in a loop the compiler vectorizes,
/// between runs of background.
pub fn shifted(out: &mut [f32], img: &[u8], dx: i8, dy: i8) {
    let side = SIDE as isize;
    let (dx, dy) = (dx as isize, dy as isize);
    // Columns x whose source column x - dx lies in the frame.
    let (lo, hi) = (
        dx.clamp(0, side) as usize,
        (side + dx).clamp(0, side) as usize,
    );
    for (y, row) in (0..side).zip(out.chunks_exact_mut(SIDE)) {
        let sy = y - dy;
        if !(0..side).contains(&sy) || lo >= hi {
            row.fill(0.0);
            continue;
        }
        // lo >= dx, so the source columns lo - dx .. hi - dx are in the frame.
        let src = &img[sy as usize * SIDE + (lo as isize - dx) as usize..];
        row[..lo].fill(0.0);
        pixels(&mut row[lo..hi], src);
        row[hi..].fill(0.0);
    }
}

/// `n` random shifts in -max..=max along each axis.
pub fn random_shifts(rng: &mut impl Rng, n: usize, max: usize) -> Vec<(i8, i8)> {
    let span = 2 * max as u64 + 1;
    let mut one = || (rng.next_u64() % span) as i8 - max as i8;
    (0..n).map(|_| (one(), one())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{pixel, to_f32};

    /// The definition: a bounds test per pixel.
    fn shifted_slowly(img: &[u8], dx: i8, dy: i8) -> Vec<f32> {
        let (dx, dy) = (dx as isize, dy as isize);
        (0..784)
            .map(|p| {
                let (sy, sx) = ((p / 28) as isize - dy, (p % 28) as isize - dx);
                if (0..28).contains(&sy) && (0..28).contains(&sx) {
                    pixel(img[(sy * 28 + sx) as usize])
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn every_shift_matches_the_definition() {
        let img: Vec<u8> = (0..784).map(|i| (i * 37 % 251) as u8 + 1).collect();
        for dx in -29i8..=29 {
            for dy in [-29i8, -28, -3, -1, 0, 1, 2, 27, 28] {
                let mut got = vec![f32::NAN; 784];
                shifted(&mut got, &img, dx, dy);
                assert_eq!(got, shifted_slowly(&img, dx, dy), "dx {dx} dy {dy}");
            }
        }
    }

    #[test]
    fn shifts_move_pixels_and_bring_in_background() {
        let img: Vec<u8> = (0..784).map(|i| (i % 255) as u8 + 1).collect();
        let mut out = vec![f32::NAN; 784];
        shifted(&mut out, &img, 1, -2);
        // Pixel (row 5, col 7) lands at (row 3, col 8).
        assert_eq!(out[3 * 28 + 8], pixel(img[5 * 28 + 7]));
        // Column 0 and the bottom two rows come from outside the frame.
        assert!((0..28).all(|y| out[y * 28] == 0.0));
        assert!(out[26 * 28..].iter().all(|&v| v == 0.0));
        let mut same = vec![f32::NAN; 784];
        shifted(&mut same, &img, 0, 0);
        assert_eq!(same, to_f32(&img));
        let mut r = ember::init::rng(3);
        let s = random_shifts(&mut r, 1000, 2);
        assert!(s
            .iter()
            .all(|&(x, y)| (-2..=2).contains(&x) && (-2..=2).contains(&y)));
        assert!(s.contains(&(-2, 2)) && s.contains(&(2, -2)) && s.contains(&(0, 0)));
    }
}
