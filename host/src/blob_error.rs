//! The core's blob errors carry numbers (a byte offset), so that they fit a
//! microcontroller; here the host turns one into words: which field of
//! docs/FORMAT.md sits at that offset, the value it holds, and the rule it
//! breaks ("layer 2 output zero point at byte 176 is 300: must be in
//! -128..=127").

use ember::blob::{HEADER_LEN, LAYER_ENTRY_LEN};
use ember::Error;

/// How a field's bytes read.
#[derive(Clone, Copy)]
enum Kind {
    U8,
    U16,
    U32,
    I32,
    F32,
    Bytes,
}

/// The header's fields: offset, size, kind, name, rule.
const HEADER: &[(usize, usize, Kind, &str, &str)] = &[
    (0, 8, Kind::Bytes, "magic", "must be \"EMBRBLOB\""),
    (8, 2, Kind::U16, "major version", "must be 1"),
    (10, 2, Kind::U16, "minor version", "any value is accepted"),
    (12, 4, Kind::U32, "total length", "must equal the blob's length"),
    (16, 1, Kind::U8, "task", "must be 0 (classes: at least 2 outputs) or 1 (3v7: exactly 1 output), agreeing with the last layer's width"),
    (17, 1, Kind::U8, "dtype", "must be 1 (int8) or 2 (f32)"),
    (18, 1, Kind::U8, "layer count", "must be 1..=8"),
    (19, 1, Kind::U8, "reserved byte", "must be 0"),
    (20, 4, Kind::U32, "input length", "must be the first layer's in_dim"),
    (24, 4, Kind::F32, "input scale", "must be finite, normal and above 0"),
    (28, 4, Kind::I32, "input zero point", "must be -128 for int8, 0 for f32"),
    (32, 4, Kind::U32, "scratch bytes", "must be 2 x the widest edge x the element size"),
    (36, 4, Kind::U32, "layer table offset", "must be 64"),
    (40, 4, Kind::U32, "data offset", "must be 64 + 48 x layers, rounded up to 16"),
    (44, 4, Kind::U32, "data length", "must make the last tensor end 4 bytes before the end"),
    (48, 16, Kind::Bytes, "reserved bytes", "must be 0"),
];

/// A layer-table entry's fields, offsets within the entry.
const ENTRY: &[(usize, usize, Kind, &str, &str)] = &[
    (0, 1, Kind::U8, "kind", "must be 1 (dense)"),
    (1, 1, Kind::U8, "activation", "must be 0 (none) or 1 (ReLU)"),
    (2, 2, Kind::Bytes, "reserved bytes", "must be 0"),
    (
        4,
        4,
        Kind::U32,
        "in_dim",
        "must be 1..=65536 and the previous layer's out_dim",
    ),
    (8, 4, Kind::U32, "out_dim", "must be 1..=65536"),
    (
        12,
        4,
        Kind::F32,
        "output scale",
        "int8: must be finite, normal and above 0; f32: must be 0",
    ),
    (
        16,
        4,
        Kind::I32,
        "output zero point",
        "int8: must be in -128..=127; f32: must be 0",
    ),
    (
        20,
        4,
        Kind::U32,
        "weight offset",
        "must be the next 16-byte boundary after the previous tensor",
    ),
    (
        24,
        4,
        Kind::U32,
        "weight length",
        "must be out x in (int8) or 4 x in x out (f32)",
    ),
    (
        28,
        4,
        Kind::U32,
        "bias offset",
        "must be the next 16-byte boundary after the weight",
    ),
    (32, 4, Kind::U32, "bias length", "must be 4 x out"),
    (
        36,
        4,
        Kind::U32,
        "requant offset",
        "must be the next 16-byte boundary after the bias",
    ),
    (
        40,
        4,
        Kind::U32,
        "requant length",
        "must be 8 x out (int8) or 0 (f32)",
    ),
    (44, 4, Kind::Bytes, "reserved bytes", "must be 0"),
];

fn value(b: &[u8], at: usize, size: usize, kind: Kind) -> String {
    let Some(x) = b.get(at..at.saturating_add(size)) else {
        return "past the end".into();
    };
    let u32le = |x: &[u8]| u32::from_le_bytes([x[0], x[1], x[2], x[3]]);
    match kind {
        Kind::U8 => x[0].to_string(),
        Kind::U16 => u16::from_le_bytes([x[0], x[1]]).to_string(),
        Kind::U32 => u32le(x).to_string(),
        Kind::I32 => (u32le(x) as i32).to_string(),
        Kind::F32 => format!("{:e}", f32::from_bits(u32le(x))),
        Kind::Bytes => x
            .iter()
            .map(|v| format!("{v:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    let x = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as usize)
}

/// The field of `b` at byte `offset`, in words: its name, the value it
/// holds and the rule.
pub fn field_at(b: &[u8], offset: usize) -> String {
    let field = |base: usize, table: &[(usize, usize, Kind, &str, &str)], prefix: &str| {
        table
            .iter()
            .find(|f| offset >= base + f.0 && offset < base + f.0 + f.1)
            .map(|&(o, size, kind, name, rule)| {
                format!(
                    "{prefix}{name} at byte {offset} is {}: {rule}",
                    value(b, base + o, size, kind)
                )
            })
    };
    if offset < HEADER_LEN {
        if let Some(s) = field(0, HEADER, "header field ") {
            return s;
        }
    }
    let layers = b.get(18).copied().unwrap_or(0) as usize;
    let table_end = HEADER_LEN + LAYER_ENTRY_LEN * layers;
    if (HEADER_LEN..table_end).contains(&offset) {
        let i = (offset - HEADER_LEN) / LAYER_ENTRY_LEN;
        let base = HEADER_LEN + i * LAYER_ENTRY_LEN;
        if let Some(s) = field(base, ENTRY, &format!("layer {i} ")) {
            return s;
        }
    }
    // A tensor's contents: find the layer whose weight, bias or requant
    // range holds the offset.
    for i in 0..layers {
        let e = HEADER_LEN + i * LAYER_ENTRY_LEN;
        for (k, name) in ["weight", "bias", "requant"].iter().enumerate() {
            let (Some(off), Some(len)) = (u32_at(b, e + 20 + 8 * k), u32_at(b, e + 24 + 8 * k))
            else {
                continue;
            };
            if offset >= off && offset < off.saturating_add(len) {
                let at = offset - off;
                return match *name {
                    "weight" => format!(
                        "layer {i} weight byte {at} (byte {offset}) is {}: int8 weights must be in -127..=127 (-128 is refused)",
                        b.get(offset).map_or(0, |&v| v as i8)
                    ),
                    "bias" => format!(
                        "layer {i} bias of channel {} (byte {offset}) is {}: |bias| must be at most 2^30",
                        at / 4,
                        value(b, offset, 4, Kind::I32)
                    ),
                    _ => format!(
                        "layer {i} requant of channel {} (byte {offset}) is multiplier {} shift {}: the multiplier must be in [2^30, 2^31-1], the shift in 0..=31",
                        at / 8,
                        value(b, offset, 4, Kind::I32),
                        value(b, offset + 4, 4, Kind::U32)
                    ),
                };
            }
        }
    }
    format!("byte {offset} (padding, which must be 0)")
}

/// A core blob error in words, for the bytes it was found in.
pub fn explain(b: &[u8], e: Error) -> String {
    match e {
        Error::BadField { offset } => format!("invalid field: {}", field_at(b, offset)),
        Error::Misaligned { offset: 0 } => {
            "the blob does not start at a 16-byte aligned address".into()
        }
        Error::Misaligned { offset } => format!("misaligned tensor: {}", field_at(b, offset)),
        Error::Truncated { offset } => format!(
            "truncated: the structure at byte {offset} runs past the end of the {} bytes",
            b.len()
        ),
        Error::ShapeMismatch { expected, got } if u32_at(b, 12) == Some(expected) => format!(
            "the header says the blob is {expected} bytes long, but it has {got}: truncated, or trailing bytes"
        ),
        Error::ShapeMismatch { expected, got } => format!(
            "the layers do not chain: a layer takes {got} inputs where the one before gives {expected}"
        ),
        Error::BadDimension => {
            "a layer has a zero or over-large dimension (1..=65536, 4 x in x out within 32 bits), or no layers".into()
        }
        Error::ChecksumMismatch => {
            "checksum mismatch: the blob is corrupted or was cut short".into()
        }
        Error::BadMagic => "not an ember model blob (bad magic)".into(),
        Error::UnsupportedVersion { found } => format!(
            "blob format major version {found}; this ember reads version {} (export it again with this ember)",
            ember::blob::VERSION_MAJOR
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_named_with_value_and_rule() {
        let mut b = vec![0u8; 64 + 48 * 2];
        b[18] = 2;
        b[64 + 48 + 16..64 + 48 + 20].copy_from_slice(&300i32.to_le_bytes());
        let s = field_at(&b, 64 + 48 + 16);
        assert!(s.contains("layer 1 output zero point"), "{s}");
        assert!(s.contains("is 300") && s.contains("-128..=127"), "{s}");
        b[16] = 7;
        assert!(field_at(&b, 16).contains("task at byte 16 is 7"));
    }
}
