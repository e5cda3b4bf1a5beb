//! Reads varints from arbitrary bytes: must never panic, and whatever decodes
//! must re-encode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qwp_proto::varint;

fuzz_target!(|data: &[u8]| {
    if let Ok((value, used)) = varint::read(data) {
        assert!(used <= varint::MAX_LEN);
        let mut out = Vec::new();
        varint::write(&mut out, value);
        assert_eq!(varint::read(&out), Ok((value, out.len())));
    }
});
