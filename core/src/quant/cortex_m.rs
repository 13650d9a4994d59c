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
        unsafe { rows3(x, w, c, &mut acc[c..c + 3]) };
        c += 3;
    }
    match acc.len() - c {
        // Two rows left after at least one group: redo the last group's final
        // row with them through the three-row loop (cheaper than two rows alone).
        2 if c >= 3 => {
            let mut t = [0i32; 3];
            // SAFETY: rows c-1..c+2 exist; forwarded contract.
            unsafe { rows3(x, w, c - 1, &mut t) };
            acc[c..c + 2].copy_from_slice(&t[1..]);
        }
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

/// One 4-input step of [`rows3`]: x word → two halves, then per row a word
/// of weights → two halves → two `SMLAD`s.
macro_rules! step4 {
    () => {
        concat!(
            "ldr {xe}, [{xp}], #4",
            "\n",
            "sxtb16 {xo}, {xe}, ror #8",
            "\n",
            "sxtb16 {xe}, {xe}",
            "\n",
            "ldr {w}, [{p0}], #4",
            "\n",
            "sxtb16 {t}, {w}",
            "\n",
            "smlad {a0}, {xe}, {t}, {a0}",
            "\n",
            "sxtb16 {w}, {w}, ror #8",
            "\n",
            "smlad {a0}, {xo}, {w}, {a0}",
            "\n",
            "ldr {w}, [{p1}], #4",
            "\n",
            "sxtb16 {t}, {w}",
            "\n",
            "smlad {a1}, {xe}, {t}, {a1}",
            "\n",
            "sxtb16 {w}, {w}, ror #8",
            "\n",
            "smlad {a1}, {xo}, {w}, {a1}",
            "\n",
            "ldr {w}, [{p2}], #4",
            "\n",
            "sxtb16 {t}, {w}",
            "\n",
            "smlad {a2}, {xe}, {t}, {a2}",
            "\n",
            "sxtb16 {w}, {w}, ror #8",
            "\n",
            "smlad {a2}, {xo}, {w}, {a2}",
            "\n",
        )
    };
}

/// Three rows from `c`, sixteen inputs per loop pass, as one hand-scheduled
/// loop: per 4 inputs, `LDR` + 2 `SXTB16` for x, then per row `LDR`, 2
/// `SXTB16`, 2 `SMLAD` (post-incremented loads, no address arithmetic); one
/// `SUBS`/`BNE` per 16 inputs: 74 instructions per 48 MACs. It needs 12
/// registers at once — every one Rust lets inline assembly use on Thumb (r6
/// and r7 are LLVM's) — which compiled code spills (0.53 MAC/instruction
/// measured for the same loop in Rust).
///
/// # Safety
/// Rows `c..c + 3` lie inside `w` (`w.len() == rows · x.len()`).
unsafe fn rows3(x: &[i8], w: &[i8], c: usize, out: &mut [i32]) {
    let n = x.len();
    let full = n - n % 16;
    let (mut a0, mut a1, mut a2) = (0i32, 0i32, 0i32);
    if full > 0 {
        // SAFETY: rows c..c+3 start inside w (contract).
        let (mut p0, mut p1, mut p2) = unsafe {
            (
                w.as_ptr().add(c * n),
                w.as_ptr().add((c + 1) * n),
                w.as_ptr().add((c + 2) * n),
            )
        };
        let mut xp = x.as_ptr();
        let mut count = full / 16;
        // SAFETY: the loop runs count >= 1 times and reads 16 bytes of x and
        // of each row per pass, full <= n bytes in all: inside x and rows
        // c..c+3 (contract). Loads are unaligned LDRs, allowed on Armv7E-M. It
        // writes no memory and uses no stack; it sets the flags (SUBS).
        unsafe {
            asm!(
                "2:",
                step4!(),
                step4!(),
                step4!(),
                step4!(),
                "subs {count}, {count}, #1",
                "bne 2b",
                xp = inout(reg) xp,
                p0 = inout(reg) p0,
                p1 = inout(reg) p1,
                p2 = inout(reg) p2,
                count = inout(reg) count,
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                a2 = inout(reg) a2,
                xe = out(reg) _,
                xo = out(reg) _,
                w = out(reg) _,
                t = out(reg) _,
                options(nostack, readonly),
            );
        }
        let _ = (xp, p0, p1, p2, count);
    }
    let sums = [a0, a1, a2];
    if full == n {
        out.copy_from_slice(&sums);
        return;
    }
    for (r, (o, a)) in out.iter_mut().zip(sums).enumerate() {
        let row = &w[(c + r) * n..(c + r + 1) * n];
        let tail: i32 = row[full..]
            .iter()
            .zip(&x[full..])
            .map(|(&wi, &xi)| wi as i32 * xi as i32)
            .sum();
        *o = a + tail;
    }
}
