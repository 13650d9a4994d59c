//! The specification of the int8 kernel: plain loops in exact integer arithmetic.
#![forbid(unsafe_code)]

/// `acc[c] = Σ_i x[i] · w[c · n + i]` for every output channel c, n = x.len().
/// Lengths must have been checked (`w.len() == acc.len() * x.len()`).
pub fn dots_i8(x: &[i8], w: &[i8], acc: &mut [i32]) {
    let n = x.len();
    for (c, a) in acc.iter_mut().enumerate() {
        let row = &w[c * n..(c + 1) * n];
        *a = row
            .iter()
            .zip(x)
            .map(|(&wi, &xi)| wi as i32 * xi as i32)
            .sum();
    }
}
