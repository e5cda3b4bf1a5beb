//! Property tests: decoding arbitrary or mutated bytes never panics, and no
//! single allocation made while decoding exceeds a small multiple of the
//! input length — a declared count the input cannot back is refused before
//! memory is reserved for it.
//!
//! The allocation bound is measured, not assumed: this test binary installs
//! a global allocator that records the largest single allocation per thread.

mod decoder_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use decoder_support::*;
use proptest::prelude::*;
use qwp_proto::decoder::{
    decode, decode_header, decode_with_limits, ConnectionDecoder, DecodeError, DecodeLimits,
    Message,
};

/// Forwards to the system allocator, recording the largest request.
struct PeakTracking;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = PEAK.try_with(|p| {
        if size > p.get() {
            p.set(size);
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; `note` only touches a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for PeakTracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakTracking = PeakTracking;

/// The largest single allocation a decode of `len` input bytes may make.
/// Gorilla timestamps expand most (1 input bit per 8-byte value: 64×); the
/// constant covers small fixed-size collections.
fn allowed_peak(len: usize) -> usize {
    64 * len + 64 * 1024
}

/// Runs `f`, returning its result and the largest single allocation it made.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK.with(|p| p.set(0));
    let out = f();
    (out, PEAK.with(Cell::get))
}

fn check_decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Message, DecodeError> {
    let (result, peak) = measured(|| decode_with_limits(bytes, limits));
    assert!(
        peak <= allowed_peak(bytes.len()),
        "decoding {} bytes allocated {peak} bytes at once",
        bytes.len()
    );
    // Reading rows must not panic either. Bounded: without a row limit a
    // table with no columns may legitimately declare 2^60 empty rows.
    if let Ok(m) = &result {
        for t in &m.tables {
            for row in t.rows().take(100_000) {
                assert_eq!(row.len(), t.columns().len());
            }
        }
    }
    result
}

fn unlimited() -> DecodeLimits {
    DecodeLimits {
        max_rows_per_table: usize::MAX,
        max_symbol_entries: usize::MAX,
    }
}

/// Messages in [`corpus`].
const CORPUS_LEN: usize = 4;

fn fix_length(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 12 {
        let len = (bytes.len() - 12) as u32;
        bytes[8..12].copy_from_slice(&len.to_le_bytes());
    }
    bytes
}

#[test]
fn the_allocation_probe_detects_a_large_allocation() {
    // Guards the probe itself: were it broken, every bound below would pass.
    let (v, peak) = measured(|| Vec::<u8>::with_capacity(1 << 20));
    drop(v);
    assert!(peak >= 1 << 20);
}

#[test]
fn corpus_decodes_within_the_allocation_bound() {
    assert_eq!(corpus().len(), CORPUS_LEN);
    for msg in corpus() {
        check_decode(&msg, &DecodeLimits::default()).unwrap();
    }
}

#[test]
fn every_truncation_with_patched_length_is_bounded() {
    for msg in corpus() {
        for cut in 12..msg.len() {
            let bytes = fix_length(msg[..cut].to_vec());
            assert!(check_decode(&bytes, &unlimited()).is_err(), "cut {cut}");
        }
    }
}

#[test]
fn huge_declared_counts_never_allocate_beyond_the_input() {
    // 2^40 rows of every type, both null strategies, with a few stray bytes
    // after the flag, and no limit on rows: the input must refuse them.
    for code in 0x01..=0x18u8 {
        for section in [vec![0x00, 0x01, 0x01], vec![0x01, 0x00, 0x00]] {
            for gorilla in [0x08u8, 0x0c] {
                let mut payload = delta(0, &["a"]);
                payload.extend(one_column_table(1 << 40, "c", code, &section));
                let bytes = message(gorilla, 1, &payload);
                assert!(check_decode(&bytes, &unlimited()).is_err(), "{code:#x}");
            }
        }
    }
    // Huge table count, column count, dictionary counts.
    let mut m = example1();
    m[6..8].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(check_decode(&m, &unlimited()).is_err());
    let mut payload = Vec::new();
    v(&mut payload, 0);
    v(&mut payload, u64::MAX >> 1);
    assert!(check_decode(&message(0x08, 0, &payload), &unlimited()).is_err());
}

/// A corpus message with one mutation applied.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit { at: usize, bit: u8 },
    SetByte { at: usize, value: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::SetByte { at, value }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..8).prop_map(|(at, len)| Mutation::Remove { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let n = bytes.len();
    match m {
        Mutation::FlipBit { at, bit } => bytes[at % n] ^= 1 << bit,
        Mutation::SetByte { at, value } => bytes[at % n] = *value,
        Mutation::Insert { at, bytes: ins } => {
            let at = at % (n + 1);
            bytes.splice(at..at, ins.iter().copied());
        }
        Mutation::Remove { at, len } => {
            let at = at % n;
            bytes.drain(at..(at + len).min(n));
        }
        Mutation::Truncate { at } => bytes.truncate(at % n),
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = check_decode(&bytes, &DecodeLimits::default());
        let _ = check_decode(&bytes, &unlimited());
        let _ = decode_header(&bytes);
    }

    #[test]
    fn arbitrary_payloads_behind_a_valid_header_never_panic(
        flags in prop::sample::select(vec![0x00u8, 0x04, 0x08, 0x0c]),
        tables in 0u16..4,
        payload in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let bytes = message(flags, tables, &payload);
        let _ = check_decode(&bytes, &unlimited());
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        which in 0usize..CORPUS_LEN,
        mutations in prop::collection::vec(mutation(), 1..4),
        patch_length in any::<bool>(),
    ) {
        let mut bytes = corpus().swap_remove(which);
        for m in &mutations {
            if bytes.is_empty() {
                break;
            }
            bytes = apply(bytes, m);
        }
        if patch_length {
            bytes = fix_length(bytes);
        }
        let _ = check_decode(&bytes, &DecodeLimits::default());
        let _ = check_decode(&bytes, &unlimited());
    }

    #[test]
    fn mutated_streams_on_one_connection_never_panic(
        steps in prop::collection::vec((0usize..CORPUS_LEN, mutation(), any::<bool>()), 1..8),
    ) {
        let mut dec = ConnectionDecoder::with_limits(unlimited());
        for (which, m, mutate) in &steps {
            let mut bytes = corpus().swap_remove(*which);
            if *mutate {
                bytes = fix_length(apply(bytes, m));
            }
            let before = dec.dictionary().clone();
            let (result, peak) = measured(|| dec.decode(&bytes));
            prop_assert!(peak <= allowed_peak(bytes.len()));
            if result.is_err() {
                // A failed message leaves the connection's dictionary alone.
                prop_assert_eq!(dec.dictionary(), &before);
            }
        }
    }
}

#[test]
fn decode_and_decode_header_agree_on_the_header() {
    for bytes in corpus() {
        let m = decode(&bytes).unwrap();
        assert_eq!(decode_header(&bytes).unwrap(), m.header);
        assert_eq!(m.header.total_len(), bytes.len());
    }
}
