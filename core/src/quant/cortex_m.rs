//! Cortex-M DSP (Armv7E-M) path of the int8 kernel: `SXTB16` unpacks two
//! signed bytes of a word into 16-bit halves, `SMLAD` multiplies both halves
//! and adds both products into a 32-bit accumulator — two exact MACs per
//! instruction. Same signature and same bits as `reference::dots_i8`.
//! Enabled by the `ember_dsp` cfg that `build.rs` sets for thumbv7em.

use core::arch::asm;

/// Bytes 0 and 2 of `x`, sign-extended into the low and high halfword.
#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    let r: u32;
    // SAFETY: a register-only instruction of Armv7E-M (this file is only built
    // for it); it reads and writes no memory and leaves the flags alone.
    unsafe {
        asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    r
}

/// Bytes 1 and 3 of `x` (rotated right by 8 first), sign-extended.
#[inline(always)]
fn sxtb16_ror8(x: u32) -> u32 {
    let r: u32;
    // SAFETY: as in `sxtb16`.
    unsafe {
        asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    r
}

/// `acc + a.lo · b.lo + a.hi · b.hi` (signed halfwords).
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only; SMLAD may set the sticky Q flag on overflow,
    // which nothing reads (and the format's bounds rule overflow out).
    unsafe {
        asm!("smlad {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, acc = in(reg) acc, options(pure, nomem, nostack))
    };
    r
}

/// Four little-endian bytes at `p` as a word.
///
/// # Safety
/// `p..p + 4` is readable (any alignment: Armv7-M loads words unaligned).
#[inline(always)]
unsafe fn word(p: *const i8) -> u32 {
    // SAFETY: the caller guarantees 4 readable bytes.
    unsafe { core::ptr::read_unaligned(p.cast::<u32>()) }
}

/// `acc[c] = Σ_i x[i] · w[c · n + i]`, three rows at a time, four inputs per step.
///
/// # Safety
/// `w.len() == acc.len() * x.len()`.
pub(crate) unsafe fn dots_i8(x: &[i8], w: &[i8], acc: &mut [i32]) {
    debug_assert_eq!(w.len(), acc.len() * x.len());
    let mut c = 0;
    while c + 3 <= acc.len() {
        // SAFETY: rows c..c+3 exist (loop condition); forwarded contract.
        unsafe { rows::<3>(x, w, c, &mut acc[c..c + 3]) };
        c += 3;
    }
    match acc.len() - c {
        // SAFETY: rows c..c+2 exist; forwarded contract.
        2 => unsafe { rows::<2>(x, w, c, &mut acc[c..c + 2]) },
        // SAFETY: row c exists; forwarded contract.
        1 => unsafe { rows::<1>(x, w, c, &mut acc[c..c + 1]) },
        _ => {}
    }
}

/// `R` rows from `c`: per 4 inputs, one load and two unpacks of x shared by
/// the rows, then per row one load, two unpacks and two `SMLAD`s (4 MACs).
/// Three rows keep every value in a register (12 live: 3 sums, 2 halves of
/// x, 4 pointers, the end, 2 temporaries), which more rows would spill.
///
/// # Safety
/// Rows `c..c + R` lie inside `w` (`w.len() == rows · x.len()`).
#[inline(always)]
unsafe fn rows<const R: usize>(x: &[i8], w: &[i8], c: usize, out: &mut [i32]) {
    let n = x.len();
    let full = n - n % 4;
    let mut a = [0i32; R];
    // SAFETY: row c + r starts inside w for r < R (contract).
    let mut p: [*const i8; R] = core::array::from_fn(|r| unsafe { w.as_ptr().add((c + r) * n) });
    let mut xp = x.as_ptr();
    // SAFETY: full <= n: one past the last full word of x at most.
    let end = unsafe { xp.add(full) };
    while xp != end {
        // SAFETY: xp + 4 <= end: inside x.
        let x0 = unsafe { word(xp) };
        let (xe, xo) = (sxtb16(x0), sxtb16_ror8(x0));
        for r in 0..R {
            // SAFETY: p[r] advances with xp, so p[r] + 4 stays inside row c + r.
            let w0 = unsafe { word(p[r]) };
            a[r] = smlad(xo, sxtb16_ror8(w0), smlad(xe, sxtb16(w0), a[r]));
            // SAFETY: as above; at most one past the row's last full word.
            p[r] = unsafe { p[r].add(4) };
        }
        // SAFETY: xp + 4 <= end.
        xp = unsafe { xp.add(4) };
    }
    for r in 0..R {
        let row = &w[(c + r) * n..(c + r + 1) * n];
        let tail: i32 = row[full..]
            .iter()
            .zip(&x[full..])
            .map(|(&wi, &xi)| wi as i32 * xi as i32)
            .sum();
        out[r] = a[r] + tail;
    }
}
