//! Writes the tiny two-layer int8 model of docs/FORMAT.md's annotated
//! hexdump and prints it as `xxd`-style hex: `cargo run -p ember --example
//! tiny_blob`; with `-- --head`, the same body under a trainable f32 head
//! (format 1.1), FORMAT.md's second hexdump.

use ember::blob::{self, LayerData, LayerSpec};
use ember::quant::{ActQuant, Requant};

/// Layer 0 of both tiny models: 4 -> 3 with ReLU.
const W0: [i8; 12] = [1, -2, 3, -4, 5, 6, -7, 8, 127, -127, 0, 64];
const B0: [i32; 3] = [100, -200, 300];

fn requant0() -> Result<[Requant; 3], ember::Error> {
    Ok([
        Requant::from_real(0.01)?,
        Requant::from_real(0.02)?,
        Requant::from_real(0.005)?,
    ])
}

fn layer0(requant: &[Requant; 3]) -> LayerSpec<'_> {
    LayerSpec {
        in_dim: 4,
        out_dim: 3,
        relu: true,
        data: LayerData::Int8 {
            weight: &W0,
            bias: &B0,
            requant,
            output: ActQuant {
                scale: 0.05,
                zero_point: -128,
            },
        },
    }
}

/// Writes the tiny model into `out` and returns its length.
pub fn tiny_blob(out: &mut [u8]) -> Result<usize, ember::Error> {
    // Layer 0: 4 -> 3 with ReLU; layer 1: 3 -> 2.
    let r0 = requant0()?;
    let w1: [i8; 6] = [10, -20, 30, -40, 50, -60];
    let b1 = [-5i32, 5];
    let r1 = [Requant::from_real(0.25)?, Requant::from_real(0.125)?];
    let layers = [
        layer0(&r0),
        LayerSpec {
            in_dim: 3,
            out_dim: 2,
            relu: false,
            data: LayerData::Int8 {
                weight: &w1,
                bias: &b1,
                requant: &r1,
                output: ActQuant {
                    scale: 0.1,
                    zero_point: 3,
                },
            },
        },
    ];
    blob::write(0, &layers, out)
}

/// The tiny model's first layer under a trainable f32 head (3 -> 1,
/// threes vs sevens), format 1.1: written into `out`, its length returned.
pub fn tiny_head_blob(out: &mut [u8]) -> Result<usize, ember::Error> {
    let r0 = requant0()?;
    let layers = [
        layer0(&r0),
        LayerSpec {
            in_dim: 3,
            out_dim: 1,
            relu: false,
            data: LayerData::F32 {
                weight: &[0.5, -0.25, 2.0],
                bias: &[0.125],
            },
        },
    ];
    blob::write(1, &layers, out)
}

#[allow(dead_code)] // a test includes this file for `tiny_blob`
fn main() -> Result<(), ember::Error> {
    let mut out = [0u8; 512];
    let n = if std::env::args().any(|a| a == "--head") {
        tiny_head_blob(&mut out)?
    } else {
        tiny_blob(&mut out)?
    };
    for (i, row) in out[..n].chunks(16).enumerate() {
        let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
        println!("{:08x}: {}", i * 16, hex.join(" "));
    }
    Ok(())
}
