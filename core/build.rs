//! Sets `ember_dsp` on Armv7E-M targets (Cortex-M4/M7: thumbv7em-*), whose
//! DSP extension (SXTB16, SMLAD) the int8 kernel uses through `asm!`.
fn main() {
    println!("cargo:rustc-check-cfg=cfg(ember_dsp)");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") || target.starts_with("thumbv8m.main") {
        println!("cargo:rustc-cfg=ember_dsp");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
