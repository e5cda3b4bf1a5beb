//! The connection-scoped symbol dictionary across several messages:
//! appending deltas, re-declaration from 0 (store-and-forward frames), gaps,
//! replacement, the entry limit, and atomicity on failed messages.

mod decoder_support;

use decoder_support::*;
use qwp_proto::decoder::{
    ConnectionDecoder, DecodeLimits, DictionaryUpdate, ErrorKind, Location, Value,
};

/// A message with delta `(start, entries)` and one SYMBOL column whose rows
/// are `ids` (no nulls).
fn symbol_message(start: u64, entries: &[&str], ids: &[u64]) -> Vec<u8> {
    let mut payload = delta(start, entries);
    let mut section = vec![0x00];
    for id in ids {
        v(&mut section, *id);
    }
    payload.extend(one_column_table(ids.len() as u64, "s", 0x09, &section));
    message(0x0c, 1, &payload)
}

fn strings(decoder: &mut ConnectionDecoder, bytes: &[u8]) -> (Vec<String>, DictionaryUpdate) {
    let (m, update) = decoder.decode(bytes).unwrap();
    let values = m.tables[0].columns()[0]
        .iter()
        .map(|v| match v {
            Some(Value::Symbol { value, .. }) => value,
            other => panic!("not a symbol: {other:?}"),
        })
        .collect();
    (values, update)
}

fn dictionary(decoder: &ConnectionDecoder) -> Vec<&str> {
    let d = decoder.dictionary();
    (0..d.len() as u32).map(|id| d.get(id).unwrap()).collect()
}

#[test]
fn appending_deltas_accumulate_and_earlier_ids_stay_resolvable() {
    let mut dec = ConnectionDecoder::new();
    let (got, up) = strings(&mut dec, &symbol_message(0, &["a", "b"], &[0, 1]));
    assert_eq!(got, ["a", "b"]);
    assert_eq!(
        up,
        DictionaryUpdate {
            appended: 2,
            redeclared: 0,
            replaced: 0
        }
    );
    // Only the new symbol is sent; ids 0 and 1 come from earlier messages.
    let (got, up) = strings(&mut dec, &symbol_message(2, &["c"], &[2, 0, 1]));
    assert_eq!(got, ["c", "a", "b"]);
    assert_eq!(up.appended, 1);
    // An empty delta (`00 00` style, here at the current size) adds nothing.
    let (got, up) = strings(&mut dec, &symbol_message(3, &[], &[1, 2]));
    assert_eq!(got, ["b", "c"]);
    assert_eq!(up, DictionaryUpdate::default());
    assert_eq!(dictionary(&dec), ["a", "b", "c"]);
}

#[test]
fn sf_redeclaration_from_zero_is_accepted() {
    let mut dec = ConnectionDecoder::new();
    strings(&mut dec, &symbol_message(0, &["a", "b"], &[1]));
    // A self-sufficient SF frame re-declares 0..=max from 0 and adds one.
    let (got, up) = strings(&mut dec, &symbol_message(0, &["a", "b", "c"], &[2, 0]));
    assert_eq!(got, ["c", "a"]);
    assert_eq!(
        up,
        DictionaryUpdate {
            appended: 1,
            redeclared: 2,
            replaced: 0
        }
    );
    // A shorter re-declaration leaves the later ids in place and usable.
    let (got, up) = strings(&mut dec, &symbol_message(0, &["a"], &[2]));
    assert_eq!(got, ["c"]);
    assert_eq!(up.redeclared, 1);
    assert_eq!(dictionary(&dec), ["a", "b", "c"]);
}

#[test]
fn redeclaration_with_a_different_string_replaces_the_entry() {
    let mut dec = ConnectionDecoder::new();
    strings(&mut dec, &symbol_message(0, &["old0", "old1"], &[0, 1]));
    // A frame from another writer (e.g. replayed after a process restart)
    // uses id 0 for a different string: its own declaration wins.
    let (got, up) = strings(&mut dec, &symbol_message(0, &["new0"], &[0, 1]));
    assert_eq!(got, ["new0", "old1"]);
    assert_eq!(
        up,
        DictionaryUpdate {
            appended: 0,
            redeclared: 0,
            replaced: 1
        }
    );
    // Later messages see the replacement.
    let (got, _) = strings(&mut dec, &symbol_message(2, &[], &[0]));
    assert_eq!(got, ["new0"]);
}

#[test]
fn decoded_values_keep_the_string_they_were_sent_with() {
    let mut dec = ConnectionDecoder::new();
    let (first, _) = dec.decode(&symbol_message(0, &["x"], &[0])).unwrap();
    dec.decode(&symbol_message(0, &["y"], &[0])).unwrap();
    assert_eq!(
        first.tables[0].columns()[0].value(0),
        Some(Value::Symbol {
            id: 0,
            value: "x".into()
        })
    );
}

#[test]
fn delta_starting_past_the_dictionary_is_a_gap_error() {
    let mut dec = ConnectionDecoder::new();
    let e = dec.decode(&symbol_message(1, &["b"], &[1])).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::SymbolDictionaryGap {
            delta_start: 1,
            size: 0
        }
    );
    assert_eq!(e.location, Location::SymbolDictionary);
    strings(&mut dec, &symbol_message(0, &["a", "b"], &[0]));
    let e = dec.decode(&symbol_message(3, &["d"], &[3])).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::SymbolDictionaryGap {
            delta_start: 3,
            size: 2
        }
    );
}

#[test]
fn ids_never_declared_on_the_connection_are_errors() {
    let mut dec = ConnectionDecoder::new();
    strings(&mut dec, &symbol_message(0, &["a"], &[0]));
    let e = dec.decode(&symbol_message(1, &["b"], &[2])).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UndeclaredSymbol { id: 2 });
}

#[test]
fn failed_message_leaves_the_dictionary_unchanged() {
    let mut dec = ConnectionDecoder::new();
    strings(&mut dec, &symbol_message(0, &["a"], &[0]));
    // Declares and replaces, then uses an undeclared id: all or nothing.
    let bad = symbol_message(0, &["z", "b"], &[5]);
    assert!(dec.decode(&bad).is_err());
    assert_eq!(dictionary(&dec), ["a"]);
    // A message cut short after its delta leaves it unchanged too.
    let good = symbol_message(1, &["b"], &[1]);
    let cut = fix(good[..good.len() - 1].to_vec());
    assert!(dec.decode(&cut).is_err());
    assert_eq!(dictionary(&dec), ["a"]);
    strings(&mut dec, &good);
    assert_eq!(dictionary(&dec), ["a", "b"]);
}

fn fix(mut bytes: Vec<u8>) -> Vec<u8> {
    let len = (bytes.len() - 12) as u32;
    bytes[8..12].copy_from_slice(&len.to_le_bytes());
    bytes
}

#[test]
fn reset_forgets_everything_as_on_disconnect() {
    let mut dec = ConnectionDecoder::new();
    strings(&mut dec, &symbol_message(0, &["a", "b"], &[0]));
    dec.reset();
    assert!(dec.dictionary().is_empty());
    let e = dec.decode(&symbol_message(2, &[], &[0])).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::SymbolDictionaryGap { .. }));
}

#[test]
fn connection_dictionary_limit_counts_accumulated_entries() {
    let mut dec = ConnectionDecoder::with_limits(DecodeLimits {
        max_symbol_entries: 3,
        ..DecodeLimits::default()
    });
    strings(&mut dec, &symbol_message(0, &["a", "b"], &[0]));
    strings(&mut dec, &symbol_message(2, &["c"], &[2]));
    // Re-declaring within the limit is fine.
    strings(&mut dec, &symbol_message(0, &["a", "b", "c"], &[1]));
    let e = dec.decode(&symbol_message(3, &["d"], &[3])).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::SymbolDictionaryTooLarge { entries: 4, max: 3 }
    );
    assert_eq!(dec.dictionary().len(), 3);
}

#[test]
fn messages_without_the_delta_flag_leave_the_dictionary_alone() {
    let mut dec = ConnectionDecoder::new();
    strings(&mut dec, &symbol_message(0, &["a"], &[0]));
    let (m, up) = dec.decode(&example1()).unwrap();
    assert_eq!(m.symbol_delta, None);
    assert_eq!(up, DictionaryUpdate::default());
    // Per-column dictionary form: ids are column-local.
    let section = hex("00 02 02 75 73 02 65 75 00 01 00");
    let (got, _) = strings(
        &mut dec,
        &message(0x00, 1, &one_column_table(3, "r", 0x09, &section)),
    );
    assert_eq!(got, ["us", "eu", "us"]);
    assert_eq!(dictionary(&dec), ["a"]);
}

#[test]
fn example4_twice_on_one_connection_redeclares() {
    let mut dec = ConnectionDecoder::new();
    let (_, up) = dec.decode(&example4()).unwrap();
    assert_eq!(up.appended, 2);
    let (_, up) = dec.decode(&example4()).unwrap();
    assert_eq!(
        up,
        DictionaryUpdate {
            appended: 0,
            redeclared: 2,
            replaced: 0
        }
    );
}
