//! Response frames: the wire brief §14.12 vectors byte for byte, minimum
//! sizes, every malformed-input class, round trips and no-panic decoding.

use proptest::prelude::*;
use qwp_proto::response::{
    DurableAckFrame, ErrorFrame, FrameKind, OkFrame, Response, ResponseDecodeError,
    ResponseEncodeError, TableSeqTxn, MAX_ERROR_MESSAGE_LEN, MIN_DURABLE_ACK_LEN, MIN_ERROR_LEN,
    MIN_OK_LEN,
};
use qwp_proto::status::ErrorCategory;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
        .collect()
}

fn encode(r: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode_into(&mut out).expect("encodable");
    out
}

const OK_TRADES_42: &str =
    "00 05 00 00 00 00 00 00 00 01 00 06 00 74 72 61 64 65 73 2a 00 00 00 00 00 00 00";
const ERROR_05_BAD: &str = "05 03 00 00 00 00 00 00 00 03 00 62 61 64";
const DURABLE_TRADES_40: &str = "02 01 00 06 00 74 72 61 64 65 73 28 00 00 00 00 00 00 00";

#[test]
fn brief_14_12_ok_vector_is_27_bytes() {
    let ok = Response::Ok(OkFrame {
        sequence: 5,
        tables: vec![TableSeqTxn::new("trades", 42)],
    });
    let bytes = encode(&ok);
    assert_eq!(bytes, hex(OK_TRADES_42));
    assert_eq!(bytes.len(), 27);
    assert_eq!(Response::decode(&bytes), Ok(ok));
}

#[test]
fn brief_14_12_error_vector() {
    let err = ErrorFrame::new(0x05, 3, "bad").expect("error status");
    assert_eq!(err.category(), ErrorCategory::ParseError);
    let bytes = encode(&Response::Error(err.clone()));
    assert_eq!(bytes, hex(ERROR_05_BAD));
    assert_eq!(Response::decode(&bytes), Ok(Response::Error(err)));
}

#[test]
fn brief_14_12_durable_ack_vector_has_no_sequence() {
    let d = Response::DurableAck(DurableAckFrame {
        tables: vec![TableSeqTxn::new("trades", 40)],
    });
    let bytes = encode(&d);
    assert_eq!(bytes, hex(DURABLE_TRADES_40));
    assert_eq!(Response::decode(&bytes), Ok(d));
}

#[test]
fn brief_14_12_minimum_sizes_11_3_11() {
    assert_eq!(
        (MIN_OK_LEN, MIN_DURABLE_ACK_LEN, MIN_ERROR_LEN),
        (11, 3, 11)
    );
    let ok = encode(&Response::Ok(OkFrame {
        sequence: -1,
        tables: vec![],
    }));
    assert_eq!(ok.len(), 11);
    let d = encode(&Response::DurableAck(DurableAckFrame { tables: vec![] }));
    assert_eq!(d, vec![0x02, 0, 0]);
    let e = encode(&Response::Error(ErrorFrame::new(9, 0, "").unwrap()));
    assert_eq!(e.len(), 11);
    for (min, frame) in [(11, ok), (3, d), (11, e)] {
        assert!(Response::decode(&frame).is_ok());
        for cut in 0..min {
            assert!(
                Response::decode(&frame[..cut]).is_err(),
                "{cut}-byte prefix of a {min}-byte frame decoded"
            );
        }
    }
}

#[test]
fn every_vector_prefix_is_truncated_and_every_extension_is_trailing() {
    for v in [OK_TRADES_42, ERROR_05_BAD, DURABLE_TRADES_40] {
        let bytes = hex(v);
        assert_eq!(Response::decode(&[]), Err(ResponseDecodeError::Empty));
        for cut in 1..bytes.len() {
            let err = Response::decode(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, ResponseDecodeError::Truncated { .. }),
                "{v} cut at {cut}: {err}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Response::decode(&longer),
            Err(ResponseDecodeError::TrailingBytes { trailing: 1, .. })
        ));
    }
}

#[test]
fn error_frame_message_length_must_be_exact() {
    // msgLen 3 with only 2 message bytes: truncated.
    let short = hex("05 03 00 00 00 00 00 00 00 03 00 62 61");
    assert!(matches!(
        Response::decode(&short),
        Err(ResponseDecodeError::Truncated {
            kind: FrameKind::Error,
            field: "msg",
            ..
        })
    ));
    // msgLen 2 with 3 message bytes: trailing.
    let long = hex("05 03 00 00 00 00 00 00 00 02 00 62 61 64");
    assert!(matches!(
        Response::decode(&long),
        Err(ResponseDecodeError::TrailingBytes {
            kind: FrameKind::Error,
            consumed: 13,
            trailing: 1
        })
    ));
}

#[test]
fn error_message_over_1024_is_rejected_on_decode() {
    let mut bytes = hex("06 00 00 00 00 00 00 00 00");
    bytes.extend_from_slice(&1025u16.to_le_bytes());
    bytes.extend(std::iter::repeat_n(b'x', 1025));
    assert_eq!(
        Response::decode(&bytes),
        Err(ResponseDecodeError::MessageTooLong { len: 1025 })
    );
    // Exactly 1024 is fine.
    let mut ok = hex("06 00 00 00 00 00 00 00 00");
    ok.extend_from_slice(&1024u16.to_le_bytes());
    ok.extend(std::iter::repeat_n(b'x', 1024));
    assert!(Response::decode(&ok).is_ok());
}

#[test]
fn encoder_truncates_long_messages_to_1024_bytes() {
    let f = ErrorFrame::new(5, 1, "ü".repeat(600)).unwrap();
    assert_eq!(f.message().len(), MAX_ERROR_MESSAGE_LEN);
    let bytes = encode(&Response::Error(f.clone()));
    assert_eq!(bytes.len(), MIN_ERROR_LEN + MAX_ERROR_MESSAGE_LEN);
    assert_eq!(Response::decode(&bytes), Ok(Response::Error(f)));
}

#[test]
fn invalid_utf8_table_name_is_an_error() {
    let bytes = hex("02 01 00 02 00 c3 28 01 00 00 00 00 00 00 00");
    assert_eq!(
        Response::decode(&bytes),
        Err(ResponseDecodeError::InvalidTableName {
            kind: FrameKind::DurableAck,
            index: 0,
            offset: 5
        })
    );
}

#[test]
fn invalid_utf8_error_message_is_decoded_lossily() {
    let bytes = hex("03 07 00 00 00 00 00 00 00 03 00 61 ff 62");
    let Ok(Response::Error(f)) = Response::decode(&bytes) else {
        panic!("lossy decode expected");
    };
    assert_eq!(f.message(), "a\u{fffd}b");
    assert_eq!(f.sequence(), 7);
    assert_eq!(f.category(), ErrorCategory::SchemaMismatch);
}

#[test]
fn unknown_status_bytes_decode_as_unknown_error_frames() {
    for status in [0x01u8, 0x04, 0x07, 0x0a, 0x7f, 0xff] {
        let mut bytes = vec![status];
        bytes.extend_from_slice(&9i64.to_le_bytes());
        bytes.extend_from_slice(&[0, 0]);
        let Ok(Response::Error(f)) = Response::decode(&bytes) else {
            panic!("status {status:#x} should decode as an error frame");
        };
        assert_eq!(f.status(), status);
        assert_eq!(f.category(), ErrorCategory::Unknown);
    }
}

#[test]
fn forged_table_count_with_three_bytes_fails_without_allocating() {
    for frame in [hex("02 ff ff"), hex("00 00 00 00 00 00 00 00 00 ff ff")] {
        assert!(matches!(
            Response::decode(&frame),
            Err(ResponseDecodeError::Truncated {
                field: "nameLen",
                ..
            })
        ));
    }
}

#[test]
fn encoder_rejects_too_many_tables() {
    let tables = vec![TableSeqTxn::new("", 0); 65_536];
    let mut out = Vec::new();
    assert_eq!(
        Response::DurableAck(DurableAckFrame { tables }).encode_into(&mut out),
        Err(ResponseEncodeError::TooManyTables { count: 65_536 })
    );
    assert!(out.is_empty());
}

fn table() -> impl Strategy<Value = TableSeqTxn> {
    (".{0,12}", any::<i64>()).prop_map(|(n, s)| TableSeqTxn::new(n, s))
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (any::<i64>(), prop::collection::vec(table(), 0..6))
            .prop_map(|(sequence, tables)| Response::Ok(OkFrame { sequence, tables })),
        prop::collection::vec(table(), 0..6)
            .prop_map(|tables| Response::DurableAck(DurableAckFrame { tables })),
        (
            any::<u8>().prop_filter("error status", |s| *s != 0 && *s != 2),
            any::<i64>(),
            ".{0,40}"
        )
            .prop_map(|(s, q, m)| Response::Error(ErrorFrame::new(s, q, m).unwrap())),
    ]
}

proptest! {
    #[test]
    fn round_trip_encode_decode(r in response()) {
        let bytes = encode(&r);
        prop_assert_eq!(Response::decode(&bytes), Ok(r));
    }

    #[test]
    fn decode_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(r) = Response::decode(&bytes) {
            // Whatever decodes re-encodes to the same bytes, except lossily
            // decoded error messages.
            let re = encode(&r);
            if !matches!(r, Response::Error(_)) || std::str::from_utf8(&bytes[11..]).is_ok() {
                prop_assert_eq!(re, bytes);
            }
        }
    }

    #[test]
    fn decode_of_mutated_valid_frames_never_panics(
        r in response(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&r);
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        let cut = cut.index(bytes.len() + 1);
        let _ = Response::decode(&bytes[..cut]);
    }
}
