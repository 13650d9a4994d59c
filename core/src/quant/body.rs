//! The int8 dot-product body shared by the x86 paths: widen `B` signed bytes
//! to 16 bits, multiply pairs and add them into 32-bit lanes (`vpmaddwd`),
//! four output rows at a time so each load of x serves four rows. Every step
//! is exact (|x·w| ≤ 2^14, pair sums ≤ 2^15 fit i32), so the result equals
//! the reference bit for bit. Each ISA file supplies `zero`, `widen`,
//! `madd`, `add` and `hsum`.

macro_rules! dots_body {
    ($feat:literal, bytes = $B:expr) => {
        /// `acc[c] = Σ_i x[i] · w[c·n + i]`.
        ///
        /// # Safety
        /// The CPU supports the features above, and `w.len() == acc.len() * x.len()`.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn dots_i8(x: &[i8], w: &[i8], acc: &mut [i32]) {
            let n = x.len();
            debug_assert_eq!(w.len(), acc.len() * n);
            let full = n - n % $B;
            let mut c = 0;
            while c < acc.len() {
                let rows = (acc.len() - c).min(4);
                let mut v = [zero(); 4];
                let mut i = 0;
                while i < full {
                    // SAFETY: i + B <= n: inside x.
                    let xv = unsafe { widen(x.as_ptr().add(i)) };
                    for (r, a) in v.iter_mut().take(rows).enumerate() {
                        // SAFETY: row c + r < out, i + B <= n: inside w (contract).
                        let wv = unsafe { widen(w.as_ptr().add((c + r) * n + i)) };
                        *a = add(*a, madd(xv, wv));
                    }
                    i += $B;
                }
                for (r, a) in v.iter().take(rows).enumerate() {
                    let row = &w[(c + r) * n..(c + r + 1) * n];
                    let tail: i32 = row[full..]
                        .iter()
                        .zip(&x[full..])
                        .map(|(&wi, &xi)| wi as i32 * xi as i32)
                        .sum();
                    acc[c + r] = hsum(*a) + tail;
                }
                c += 4;
            }
        }
    };
}
