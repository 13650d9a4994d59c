//! docs/FORMAT.md stays true: its annotated hexdump is exactly what the
//! writer produces for the tiny model, the parser reads it back, and the
//! worked example gives the documented outputs.

#[path = "../examples/tiny_blob.rs"]
mod tiny;

#[test]
fn the_documented_hexdump_is_what_the_writer_writes() {
    let doc = include_str!("../../docs/FORMAT.md");
    let mut documented = Vec::new();
    let dump = doc.lines().filter(|l| {
        l.len() > 10 && l.as_bytes()[8] == b':' && l[..8].chars().all(|c| c.is_ascii_hexdigit())
    });
    for line in dump {
        let hex = &line[10..line.len().min(10 + 16 * 3)];
        documented.extend(
            hex.split_whitespace()
                .map(|h| u8::from_str_radix(h, 16).unwrap()),
        );
    }
    let mut out = [0u8; 512];
    let n = tiny::tiny_blob(&mut out).unwrap();
    assert_eq!(documented, out[..n].to_vec());

    #[repr(C, align(16))]
    struct Aligned([u8; 512]);
    let mut a = Aligned([0; 512]);
    a.0[..n].copy_from_slice(&out[..n]);
    let m = ember::blob::parse(&a.0[..n]).unwrap();
    let mut scratch = [0u8; 8];
    let mut y = [0i8; 2];
    m.infer_i8(&[255, 0, 128, 64], &mut scratch, &mut y)
        .unwrap();
    assert_eq!(y, [127, -128], "the worked example's outputs");
}
