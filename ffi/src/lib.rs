//! ember behind a C ABI: the core's blob parser and integer-only inference
//! for C firmware (Zephyr, STM32Cube, ESP-IDF, bare CMSIS) and hosted C
//! programs, as `libember_ffi.a` with the header `include/ember.h`.
//!
//! No allocation, no panic, nothing unwinds across the boundary (the crate
//! is built with `panic = "abort"`, and no input reaches a panic). Every
//! pointer is checked for NULL and every length against the model; the
//! blob must stay alive and unmoved while a model opened on it is used
//! (the model reads it in place, as from flash).
#![cfg_attr(target_os = "none", no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]

use core::ffi::c_char;
use core::mem::{align_of, size_of, MaybeUninit};

use ember::blob::{self, Dtype, Model};
use ember::Error;

/// Success.
pub const EMBER_OK: i32 = 0;
/// A pointer argument is NULL.
pub const EMBER_ERR_NULL: i32 = -1;
/// The blob does not start at a 16-byte aligned address.
pub const EMBER_ERR_MISALIGNED: i32 = -2;
/// Not an ember model blob.
pub const EMBER_ERR_BAD_MAGIC: i32 = -3;
/// A blob format version this library does not read.
pub const EMBER_ERR_VERSION: i32 = -4;
/// The blob is shorter than its header says.
pub const EMBER_ERR_TRUNCATED: i32 = -5;
/// CRC-32 mismatch.
pub const EMBER_ERR_CHECKSUM: i32 = -6;
/// A field, dimension or layout the format does not allow.
pub const EMBER_ERR_FORMAT: i32 = -7;
/// The scratch buffer is smaller than the model needs.
pub const EMBER_ERR_SCRATCH: i32 = -8;
/// The output buffer's length differs from the model's outputs.
pub const EMBER_ERR_LENGTH: i32 = -9;
/// An f32 blob for an int8 call, or the reverse.
pub const EMBER_ERR_DTYPE: i32 = -10;
/// The model was not opened by `ember_open`.
pub const EMBER_ERR_MODEL: i32 = -11;

/// 64-bit words of `ember_model_t` (`EMBER_MODEL_WORDS` in the header).
pub const EMBER_MODEL_WORDS: usize = 128;

/// A parsed model, as C sees it: opaque, fixed size, 8-byte aligned, so a
/// caller can declare one on its stack or in a static.
#[repr(C)]
pub struct ember_model_t {
    opaque: [u64; EMBER_MODEL_WORDS],
}

/// What `ember_model_t` holds: a marker that says it was opened, and the
/// parsed model borrowing the caller's blob.
#[repr(C)]
struct Opened {
    marker: u64,
    model: Model<'static>,
}

/// "EMBRMODL": written by `ember_open`, checked by every other call.
const MARKER: u64 = u64::from_le_bytes(*b"EMBRMODL");

const _: () = assert!(size_of::<Opened>() <= size_of::<ember_model_t>());
const _: () = assert!(align_of::<Opened>() <= align_of::<ember_model_t>());

fn code(e: Error) -> i32 {
    match e {
        Error::Misaligned { offset: 0 } => EMBER_ERR_MISALIGNED,
        Error::BadMagic => EMBER_ERR_BAD_MAGIC,
        Error::UnsupportedVersion { .. } => EMBER_ERR_VERSION,
        Error::Truncated { .. } => EMBER_ERR_TRUNCATED,
        Error::ChecksumMismatch => EMBER_ERR_CHECKSUM,
        Error::BufferTooSmall { .. } => EMBER_ERR_SCRATCH,
        _ => EMBER_ERR_FORMAT,
    }
}

/// The opened model behind `model`, or an error code.
///
/// # Safety
/// `model` is NULL or points to an `ember_model_t`.
unsafe fn opened<'a>(model: *const ember_model_t) -> Result<&'a Model<'static>, i32> {
    if model.is_null() {
        return Err(EMBER_ERR_NULL);
    }
    let p = model.cast::<Opened>();
    // SAFETY: model is non-NULL and points to an ember_model_t (contract),
    // which is large and aligned enough for an Opened (asserted above); the
    // marker is read before anything else, as a plain u64 that any bit
    // pattern makes valid.
    let marker = unsafe { core::ptr::addr_of!((*p).marker).read() };
    if marker != MARKER {
        return Err(EMBER_ERR_MODEL);
    }
    // SAFETY: the marker says ember_open wrote a whole Opened here.
    Ok(unsafe { &(*p).model })
}

/// Parses `blob` (all its checks: magic, version, length, alignment, CRC,
/// every field) into `model`, without copying it: the blob must outlive
/// the model and stay where it is.
///
/// # Safety
/// `blob` is NULL or points to `len` readable bytes that stay valid and
/// unchanged while `model` is used; `model` is NULL or points to writable
/// memory for an `ember_model_t`.
#[no_mangle]
pub unsafe extern "C" fn ember_open(blob: *const u8, len: usize, model: *mut ember_model_t) -> i32 {
    if blob.is_null() || model.is_null() {
        return EMBER_ERR_NULL;
    }
    // SAFETY: blob points to len readable bytes (contract).
    let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(blob, len) };
    // Invalidate first: a failed open leaves no usable model behind.
    // SAFETY: model points to writable memory for an ember_model_t (contract).
    unsafe { model.cast::<u64>().write(0) };
    match blob::parse(bytes) {
        Ok(m) => {
            let opened = Opened {
                marker: MARKER,
                model: m,
            };
            // SAFETY: model is writable, large and aligned enough (asserted).
            unsafe {
                model
                    .cast::<MaybeUninit<Opened>>()
                    .write(MaybeUninit::new(opened))
            };
            EMBER_OK
        }
        Err(e) => code(e),
    }
}

/// Input bytes per image (784 for MNIST); 0 when `model` is not open.
///
/// # Safety
/// `model` is NULL or points to an `ember_model_t`.
#[no_mangle]
pub unsafe extern "C" fn ember_input_len(model: *const ember_model_t) -> usize {
    // SAFETY: forwarded contract.
    unsafe { opened(model) }.map_or(0, |m| m.input_len())
}

/// Logits per image; 0 when `model` is not open.
///
/// # Safety
/// `model` is NULL or points to an `ember_model_t`.
#[no_mangle]
pub unsafe extern "C" fn ember_output_len(model: *const ember_model_t) -> usize {
    // SAFETY: forwarded contract.
    unsafe { opened(model) }.map_or(0, |m| m.output_len())
}

/// Scratch bytes inference needs; 0 when `model` is not open.
///
/// # Safety
/// `model` is NULL or points to an `ember_model_t`.
#[no_mangle]
pub unsafe extern "C" fn ember_scratch_bytes(model: *const ember_model_t) -> usize {
    // SAFETY: forwarded contract.
    unsafe { opened(model) }.map_or(0, |m| m.scratch_bytes())
}

/// The slices of an inference call, every pointer and length checked.
///
/// # Safety
/// As [`ember_infer_u8`].
unsafe fn io<'a>(
    m: &Model<'_>,
    pixels: *const u8,
    scratch: *mut u8,
    scratch_len: usize,
) -> Result<(&'a [u8], &'a mut [u8]), i32> {
    if pixels.is_null() || scratch.is_null() {
        return Err(EMBER_ERR_NULL);
    }
    if scratch_len < m.scratch_bytes() {
        return Err(EMBER_ERR_SCRATCH);
    }
    // SAFETY: pixels points to input_len readable bytes, scratch to
    // scratch_len writable bytes (contract).
    unsafe {
        Ok((
            core::slice::from_raw_parts(pixels, m.input_len()),
            core::slice::from_raw_parts_mut(scratch, scratch_len),
        ))
    }
}

/// Integer-only inference of an int8 model: the int8 logits of one image
/// of `ember_input_len()` u8 pixels.
///
/// # Safety
/// `model` as above; `pixels` is NULL or points to `ember_input_len()`
/// readable bytes; `scratch` to `scratch_len` writable bytes and `logits`
/// to `logits_len` writable bytes, or NULL; none of them overlap.
#[no_mangle]
pub unsafe extern "C" fn ember_infer_u8(
    model: *const ember_model_t,
    pixels: *const u8,
    scratch: *mut u8,
    scratch_len: usize,
    logits: *mut i8,
    logits_len: usize,
) -> i32 {
    // SAFETY: forwarded contract.
    let m = match unsafe { opened(model) } {
        Ok(m) => m,
        Err(e) => return e,
    };
    if m.dtype != Dtype::Int8 {
        return EMBER_ERR_DTYPE;
    }
    if logits.is_null() {
        return EMBER_ERR_NULL;
    }
    if logits_len != m.output_len() {
        return EMBER_ERR_LENGTH;
    }
    // SAFETY: forwarded contract.
    let (px, sc) = match unsafe { io(m, pixels, scratch, scratch_len) } {
        Ok(v) => v,
        Err(e) => return e,
    };
    // SAFETY: logits points to logits_len writable bytes (contract).
    let out = unsafe { core::slice::from_raw_parts_mut(logits, logits_len) };
    match m.infer_i8(px, sc, out) {
        Ok(()) => EMBER_OK,
        Err(e) => code(e),
    }
}

/// The predicted class of one image (int8: decided in integers), or an
/// error code below 0.
///
/// # Safety
/// As [`ember_infer_u8`], without the logits.
#[no_mangle]
pub unsafe extern "C" fn ember_predict_u8(
    model: *const ember_model_t,
    pixels: *const u8,
    scratch: *mut u8,
    scratch_len: usize,
) -> i32 {
    // SAFETY: forwarded contract.
    let m = match unsafe { opened(model) } {
        Ok(m) => m,
        Err(e) => return e,
    };
    // SAFETY: forwarded contract.
    let (px, sc) = match unsafe { io(m, pixels, scratch, scratch_len) } {
        Ok(v) => v,
        Err(e) => return e,
    };
    match m.predict(px, sc) {
        Ok(c) => i32::try_from(c).unwrap_or(EMBER_ERR_FORMAT),
        Err(e) => code(e),
    }
}

/// f32 logits (`out_len`) of an f32 model (for MCUs with an FPU), or of an
/// int8 body under a trainable f32 head (blob format 1.1).
///
/// # Safety
/// As [`ember_infer_u8`], with `out` pointing to `out_len` floats.
#[no_mangle]
pub unsafe extern "C" fn ember_infer_f32(
    model: *const ember_model_t,
    pixels: *const u8,
    scratch: *mut u8,
    scratch_len: usize,
    out: *mut f32,
    out_len: usize,
) -> i32 {
    // SAFETY: forwarded contract.
    let m = match unsafe { opened(model) } {
        Ok(m) => m,
        Err(e) => return e,
    };
    // f32 models, and an int8 body under a trainable f32 head (format 1.1).
    if m.dtype == Dtype::Int8 {
        return EMBER_ERR_DTYPE;
    }
    if out.is_null() {
        return EMBER_ERR_NULL;
    }
    if out_len != m.output_len() {
        return EMBER_ERR_LENGTH;
    }
    // SAFETY: forwarded contract.
    let (px, sc) = match unsafe { io(m, pixels, scratch, scratch_len) } {
        Ok(v) => v,
        Err(e) => return e,
    };
    // SAFETY: out points to out_len writable floats (contract).
    let y = unsafe { core::slice::from_raw_parts_mut(out, out_len) };
    match m.infer_f32(px, sc, y) {
        Ok(()) => EMBER_OK,
        Err(e) => code(e),
    }
}

/// What an error code means, as a static NUL-terminated string (never NULL).
#[no_mangle]
pub extern "C" fn ember_strerror(code: i32) -> *const c_char {
    let s: &'static [u8] = match code {
        EMBER_OK => b"ok\0",
        EMBER_ERR_NULL => b"a pointer argument is NULL\0",
        EMBER_ERR_MISALIGNED => b"the blob does not start at a 16-byte aligned address\0",
        EMBER_ERR_BAD_MAGIC => b"not an ember model blob (bad magic)\0",
        EMBER_ERR_VERSION => b"a blob format version this library does not read\0",
        EMBER_ERR_TRUNCATED => b"the blob is shorter than its header says\0",
        EMBER_ERR_CHECKSUM => b"checksum mismatch: the blob is corrupted or cut short\0",
        EMBER_ERR_FORMAT => b"a field, dimension or layout the blob format does not allow\0",
        EMBER_ERR_SCRATCH => b"the scratch buffer is smaller than ember_scratch_bytes()\0",
        EMBER_ERR_LENGTH => b"the output length differs from ember_output_len()\0",
        EMBER_ERR_DTYPE => b"an f32 model for an int8 call, or an int8 model for an f32 call\0",
        EMBER_ERR_MODEL => b"the model was not opened by ember_open\0",
        _ => b"unknown ember error code\0",
    };
    s.as_ptr().cast()
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // Unreachable on any input; with panic = "abort" nothing unwinds.
    loop {
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header declares exactly these signatures, and the Rust functions
    /// have them (the function-pointer types below fail to compile on any
    /// drift).
    #[test]
    fn the_header_matches_the_rust_signatures() {
        let h = include_str!("../include/ember.h");
        let flat: String = h.split_whitespace().collect::<Vec<_>>().join(" ");
        for decl in [
            "int32_t ember_open(const uint8_t *blob, size_t len, ember_model_t *model);",
            "size_t ember_input_len(const ember_model_t *model);",
            "size_t ember_output_len(const ember_model_t *model);",
            "size_t ember_scratch_bytes(const ember_model_t *model);",
            "int32_t ember_infer_u8(const ember_model_t *model, const uint8_t *pixels, uint8_t *scratch, size_t scratch_len, int8_t *logits, size_t logits_len);",
            "int32_t ember_predict_u8(const ember_model_t *model, const uint8_t *pixels, uint8_t *scratch, size_t scratch_len);",
            "int32_t ember_infer_f32(const ember_model_t *model, const uint8_t *pixels, uint8_t *scratch, size_t scratch_len, float *out, size_t out_len);",
            "const char *ember_strerror(int32_t code);",
            "typedef struct { uint64_t opaque[EMBER_MODEL_WORDS]; } ember_model_t;",
            "#define EMBER_OK 0",
            &format!("#define EMBER_MODEL_WORDS {EMBER_MODEL_WORDS}"),
        ] {
            assert!(flat.contains(decl), "ember.h lacks: {decl}");
        }
        for (name, value) in [
            ("EMBER_ERR_NULL", EMBER_ERR_NULL),
            ("EMBER_ERR_MISALIGNED", EMBER_ERR_MISALIGNED),
            ("EMBER_ERR_BAD_MAGIC", EMBER_ERR_BAD_MAGIC),
            ("EMBER_ERR_VERSION", EMBER_ERR_VERSION),
            ("EMBER_ERR_TRUNCATED", EMBER_ERR_TRUNCATED),
            ("EMBER_ERR_CHECKSUM", EMBER_ERR_CHECKSUM),
            ("EMBER_ERR_FORMAT", EMBER_ERR_FORMAT),
            ("EMBER_ERR_SCRATCH", EMBER_ERR_SCRATCH),
            ("EMBER_ERR_LENGTH", EMBER_ERR_LENGTH),
            ("EMBER_ERR_DTYPE", EMBER_ERR_DTYPE),
            ("EMBER_ERR_MODEL", EMBER_ERR_MODEL),
        ] {
            assert!(
                flat.contains(&format!("#define {name} ({value})")),
                "{name}"
            );
        }
        let _: unsafe extern "C" fn(*const u8, usize, *mut ember_model_t) -> i32 = ember_open;
        let _: unsafe extern "C" fn(*const ember_model_t) -> usize = ember_input_len;
        let _: unsafe extern "C" fn(*const ember_model_t) -> usize = ember_output_len;
        let _: unsafe extern "C" fn(*const ember_model_t) -> usize = ember_scratch_bytes;
        let _: unsafe extern "C" fn(
            *const ember_model_t,
            *const u8,
            *mut u8,
            usize,
            *mut i8,
            usize,
        ) -> i32 = ember_infer_u8;
        let _: unsafe extern "C" fn(*const ember_model_t, *const u8, *mut u8, usize) -> i32 =
            ember_predict_u8;
        let _: unsafe extern "C" fn(
            *const ember_model_t,
            *const u8,
            *mut u8,
            usize,
            *mut f32,
            usize,
        ) -> i32 = ember_infer_f32;
        let _: extern "C" fn(i32) -> *const c_char = ember_strerror;
    }

    /// A whole call sequence on a real (tiny) blob, as C would make it: the
    /// logits and the class equal the core's own; Miri runs this in CI.
    #[test]
    fn open_infer_predict_match_the_core() {
        use ember::blob::{LayerData, LayerSpec};
        use ember::quant::{ActQuant, Requant};
        let w: [i8; 12] = [1, -2, 3, -4, 5, 6, -7, 8, 127, -127, 0, 64];
        let rq = [Requant::from_real(0.01).unwrap(); 3];
        let layer = LayerSpec {
            in_dim: 4,
            out_dim: 3,
            relu: false,
            data: LayerData::Int8 {
                weight: &w,
                bias: &[100, -200, 300],
                requant: &rq,
                output: ActQuant {
                    scale: 0.1,
                    zero_point: 0,
                },
            },
        };
        #[repr(C, align(16))]
        struct A([u8; 256]);
        let mut a = A([0; 256]);
        let n = blob::write(0, &[layer], &mut a.0).unwrap();
        let core = blob::parse(&a.0[..n]).unwrap();
        let px = [255u8, 0, 128, 64];
        let mut scratch = [0u8; 64];
        let mut want = [0i8; 3];
        core.infer_i8(&px, &mut scratch, &mut want).unwrap();
        let mut m = ember_model_t {
            opaque: [0; EMBER_MODEL_WORDS],
        };
        let mut got = [0i8; 3];
        // SAFETY: every pointer is valid for the lengths passed.
        unsafe {
            assert_eq!(ember_open(a.0.as_ptr(), n, &mut m), EMBER_OK);
            assert_eq!((ember_input_len(&m), ember_output_len(&m)), (4, 3));
            let need = ember_scratch_bytes(&m);
            assert_eq!(need, core.scratch_bytes());
            assert_eq!(
                ember_infer_u8(
                    &m,
                    px.as_ptr(),
                    scratch.as_mut_ptr(),
                    need,
                    got.as_mut_ptr(),
                    3
                ),
                EMBER_OK
            );
            assert_eq!(got, want);
            assert_eq!(
                ember_predict_u8(&m, px.as_ptr(), scratch.as_mut_ptr(), need),
                core.predict_i8(&px, &mut scratch).unwrap() as i32
            );
            assert_eq!(
                ember_infer_u8(
                    &m,
                    px.as_ptr(),
                    scratch.as_mut_ptr(),
                    need - 1,
                    got.as_mut_ptr(),
                    3
                ),
                EMBER_ERR_SCRATCH
            );
            let mut y = [0f32; 3];
            assert_eq!(
                ember_infer_f32(
                    &m,
                    px.as_ptr(),
                    scratch.as_mut_ptr(),
                    need,
                    y.as_mut_ptr(),
                    3
                ),
                EMBER_ERR_DTYPE
            );
        }
    }

    #[test]
    fn bad_arguments_are_refused() {
        let mut m = ember_model_t {
            opaque: [0; EMBER_MODEL_WORDS],
        };
        #[repr(C, align(16))]
        struct A([u8; 128]);
        let a = A([0; 128]);
        // SAFETY: every pointer is valid or NULL, as the contract allows.
        unsafe {
            assert_eq!(ember_open(core::ptr::null(), 4, &mut m), EMBER_ERR_NULL);
            assert_eq!(
                ember_open(a.0.as_ptr(), 128, core::ptr::null_mut()),
                EMBER_ERR_NULL
            );
            assert_eq!(ember_open(a.0.as_ptr(), 128, &mut m), EMBER_ERR_BAD_MAGIC);
            assert_eq!(ember_input_len(&m), 0, "a failed open leaves no model");
            let mut s = [0u8; 16];
            let mut l = [0i8; 10];
            assert_eq!(
                ember_infer_u8(&m, a.0.as_ptr(), s.as_mut_ptr(), 16, l.as_mut_ptr(), 10),
                EMBER_ERR_MODEL
            );
            assert_eq!(
                ember_predict_u8(core::ptr::null(), a.0.as_ptr(), s.as_mut_ptr(), 16),
                EMBER_ERR_NULL
            );
        }
        for c in 0..=12 {
            let s = ember_strerror(-c);
            assert!(!s.is_null());
        }
    }
}
