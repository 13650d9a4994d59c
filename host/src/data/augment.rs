//! Augmentation: each training image moved by a random whole number of
//! pixels, seeded, so that results stay independent of the thread count.

use rand_core::Rng;

use super::pixel;

/// Writes `img` (28×28) into `out` as the network sees it, moved right by
/// `dx` and down by `dy` pixels; what moves in from outside the frame is
/// background (0).
pub fn shifted(out: &mut [f32], img: &[u8], dx: i8, dy: i8) {
    let side = 28isize;
    let (dx, dy) = (dx as isize, dy as isize);
    for (y, row) in (0..side).zip(out.chunks_exact_mut(side as usize)) {
        let sy = y - dy;
        for (x, o) in (0..side).zip(row) {
            let sx = x - dx;
            let inside = (0..side).contains(&sy) && (0..side).contains(&sx);
            *o = if inside {
                pixel(img[(sy * side + sx) as usize])
            } else {
                0.0
            };
        }
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
    use crate::data::to_f32;

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
