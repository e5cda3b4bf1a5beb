//! Decodes arbitrary bytes as a server response frame: must never panic, and
//! whatever decodes must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qwp_proto::response::Response;

fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = Response::decode(data) {
        let mut out = Vec::new();
        if resp.encode_into(&mut out).is_ok() {
            assert_eq!(Response::decode(&out).ok(), Some(resp));
        }
    }
});
