//! What both firmware binaries share: the aligned wrapper for blobs, the
//! measurement markers, stack painting, and the failure, panic and fault
//! paths that report over semihosting and exit QEMU.

use core::ptr::addr_of;

use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};

/// 16-byte alignment for the blob, as the format requires.
#[repr(C, align(16))]
pub struct Aligned<T: ?Sized>(pub T);

/// Marks the start of a measured window (found by address by the insncount plugin).
#[inline(never)]
#[no_mangle]
pub extern "C" fn bench_start(k: u32) -> u32 {
    core::hint::black_box(k)
}

/// Marks the end of a measured window.
#[inline(never)]
#[no_mangle]
pub extern "C" fn bench_stop(k: u32) -> u32 {
    core::hint::black_box(k + 1)
}

const PAINT: u32 = 0xC0FF_EE55;

extern "C" {
    // Provided by cortex-m-rt's link.x: the end of .bss/.uninit, and the initial stack pointer.
    static __sheap: u32;
    static _stack_start: u32;
}

/// Fills the free stack below the current frame with a pattern.
#[inline(never)]
pub fn paint_stack() {
    let bottom = addr_of!(__sheap) as usize;
    let here = cortex_m::register::msp::read() as usize - 256;
    let mut p = bottom;
    while p < here {
        // SAFETY: [__sheap, sp - 256) is unused stack memory below the live
        // frames (cortex-m-rt places the stack above .bss and it grows down).
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Bytes of stack ever used: from the initial SP down to the lowest overwritten word.
pub fn stack_high_water() -> usize {
    let bottom = addr_of!(__sheap) as usize;
    let top = addr_of!(_stack_start) as usize;
    let mut p = bottom;
    // SAFETY: reads of the same painted region, word-aligned, inside RAM.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p
}

/// Bytes of RAM between the end of the statics and the top of the stack.
pub fn free_ram() -> usize {
    addr_of!(_stack_start) as usize - addr_of!(__sheap) as usize
}

/// Prints the error and `RESULT: FAIL`, and exits QEMU with failure.
pub fn fail(what: core::fmt::Arguments<'_>) -> ! {
    hprintln!("error: {}", what);
    hprintln!("RESULT: FAIL");
    debug::exit(debug::EXIT_FAILURE);
    halt()
}

/// Prints `RESULT: PASS` or `RESULT: FAIL` and exits QEMU accordingly.
pub fn finish(pass: bool) -> ! {
    if pass {
        hprintln!("RESULT: PASS");
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        hprintln!("RESULT: FAIL");
        debug::exit(debug::EXIT_FAILURE);
    }
    halt()
}

/// `value / 100` with two decimals, for percentages kept in hundredths.
pub struct Hundredths(pub usize);

impl core::fmt::Display for Hundredths {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// A non-negative value with four decimals (losses), without float formatting.
pub struct Fixed4(pub f32);

impl core::fmt::Display for Fixed4 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if !(self.0 >= 0.0 && self.0 < 1e5) {
            return f.write_str("(out of range)");
        }
        let t = (self.0 * 10_000.0 + 0.5) as u32;
        write!(f, "{}.{:04}", t / 10_000, t % 10_000)
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("panic: {}", info);
    hprintln!("RESULT: FAIL");
    debug::exit(debug::EXIT_FAILURE);
    halt()
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    hprintln!("HardFault at pc {:#010x}", ef.pc());
    hprintln!("RESULT: FAIL");
    debug::exit(debug::EXIT_FAILURE);
    halt()
}

/// Parks the core once semihosting has asked QEMU to exit.
pub fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
