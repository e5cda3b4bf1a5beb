//! cargo-fuzz wrapper of [`qwp_sf_fuzz::varint`]; the body and its properties
//! live in the library so the stable test `tests/corpus.rs` runs them too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = qwp_sf_fuzz::varint::run(data);
});
