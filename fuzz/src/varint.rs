//! Target `varint`: LEB128 varints from arbitrary bytes.
//!
//! Property: whatever decodes used at most [`MAX_LEN`] bytes and re-encodes
//! to a varint that reads back as the same value; a value's canonical
//! encoding is never longer than the bytes it was read from.

use qwp_proto::varint::{self, MAX_LEN};

use crate::Outcome;

/// Runs the body on `data`.
pub fn run(data: &[u8]) -> Outcome {
    let Ok((value, used)) = varint::read(data) else {
        return "error";
    };
    assert!(
        (1..=MAX_LEN).contains(&used),
        "varint: used {used} bytes, outside 1..={MAX_LEN}"
    );
    let mut out = Vec::new();
    varint::write(&mut out, value);
    assert_eq!(out.len(), varint::encoded_len(value), "varint: encoded_len");
    assert!(
        out.len() <= used,
        "varint: canonical form of {value} ({} bytes) longer than the {used} bytes read",
        out.len()
    );
    assert_eq!(
        varint::read(&out),
        Ok((value, out.len())),
        "varint: re-encoded value does not read back"
    );
    if out.len() == used {
        "canonical"
    } else {
        "padded"
    }
}
