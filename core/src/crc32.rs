//! CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320, the one zlib and PNG
//! use), bitwise with a 16-entry table: small enough for a Cortex-M0.
#![forbid(unsafe_code)]

const TABLE: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 4 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Continues a CRC-32 over `data` (start with `0`).
pub fn update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xf) as usize] ^ (c >> 4);
        c = TABLE[((c ^ (b as u32 >> 4)) & 0xf) as usize] ^ (c >> 4);
    }
    !c
}

/// CRC-32 of `data`.
///
/// ```
/// assert_eq!(ember::crc32::crc32(b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32(data: &[u8]) -> u32 {
    update(0, data)
}
