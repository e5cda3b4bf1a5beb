//! Decodes arbitrary bytes as a QWP1 message, stand-alone and on a
//! connection: must never panic, and a decoded message must be walkable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qwp_proto::decoder::{self, ConnectionDecoder};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decoder::decode(data) {
        for table in &msg.tables {
            for row in table.rows().take(64) {
                std::hint::black_box(row);
            }
        }
    }
    // The same bytes twice on one connection exercise dictionary carry-over.
    let mut conn = ConnectionDecoder::new();
    let _ = conn.decode(data);
    let _ = conn.decode(data);
});
