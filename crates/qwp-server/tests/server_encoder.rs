//! Messages from the project's own encoder (Gorilla timestamps, every
//! column type, nulls by omission) land in the JSONL files exactly as the
//! row format documents.

mod support;

use std::net::Ipv4Addr;

use qwp_proto::encoder::MessageBuilder;
use qwp_proto::response::Response;
use qwp_server::{Server, ServerConfig};
use support::*;

fn every_type_row(b: &mut MessageBuilder) {
    b.table("all")
        .unwrap()
        .symbol("sym", "eu")
        .unwrap()
        .column_bool("b", true)
        .unwrap()
        .column_i8("i8", -8)
        .unwrap()
        .column_i16("i16", 16)
        .unwrap()
        .column_i32("i32", -32)
        .unwrap()
        .column_i64("i64", 64)
        .unwrap()
        .column_f32("f32", 0.1)
        .unwrap()
        .column_f64("f64", 2.5)
        .unwrap()
        .column_ts_micros("ts_us", 1_000_001)
        .unwrap()
        .column_ts_nanos("ts_ns", 1_000_000_002)
        .unwrap()
        .column_date_millis("date", 86_400_000)
        .unwrap()
        .column_uuid("uuid", 0x550e8400_e29b_41d4_a716_446655440000)
        .unwrap()
        .column_long256("l256", [0xff, 0, 0, 1])
        .unwrap()
        .column_geohash("geo", (26 << 15) | (3 << 10) | (3 << 5) | 12, 20)
        .unwrap()
        .column_str("s", "héllo")
        .unwrap()
        .column_binary("bin", b"foobar")
        .unwrap()
        .column_char("c", 'Q')
        .unwrap()
        .column_ipv4("ip", Ipv4Addr::new(10, 0, 0, 1))
        .unwrap()
        .column_decimal64("d64", -12345, 2)
        .unwrap()
        .column_decimal128("d128", 5, 3)
        .unwrap()
        .column_f64_array("fa", &[2, 2], &[1.0, 2.0, 3.0, 4.5])
        .unwrap()
        .column_i64_array("la", &[3], &[1, 2, 3])
        .unwrap()
        .at_micros(1_700_000_000_000_000)
        .unwrap();
}

#[tokio::test]
async fn every_type_from_the_encoder_is_persisted_in_the_documented_form() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bind(ServerConfig::local().with_data_dir(dir.path()))
        .await
        .unwrap();
    let mut ws = connect(&server.url()).await;

    let mut b = MessageBuilder::new();
    every_type_row(&mut b);
    // Second row: only the designated timestamp; every other column null.
    b.table("all")
        .unwrap()
        .at_micros(1_700_000_000_000_001)
        .unwrap();
    let mut frame = Vec::new();
    b.encode_into(&mut frame).unwrap();
    send(&mut ws, frame).await;
    match next_frame(&mut ws).await {
        Response::Ok(ok) => assert_eq!((ok.sequence, ok.tables[0].seq_txn), (0, 1)),
        other => panic!("expected OK, got {other:?}"),
    }
    let text = std::fs::read_to_string(dir.path().join("all.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        concat!(
            r#"{"sym":"eu","b":true,"i8":-8,"i16":16,"i32":-32,"i64":64,"f32":0.1,"f64":2.5,"#,
            r#""ts_us":1000001,"ts_ns":1000000002,"date":86400000,"#,
            r#""uuid":"550e8400-e29b-41d4-a716-446655440000","#,
            r#""l256":"0x00000000000000010000000000000000000000000000000000000000000000ff","#,
            r##""geo":"#u33d","s":"héllo","bin":"Zm9vYmFy","c":"Q","ip":"10.0.0.1","##,
            r#""d64":"-123.45","d128":"0.005","fa":[[1.0,2.0],[3.0,4.5]],"la":[1,2,3],"#,
            r#""timestamp":1700000000000000}"#
        )
    );
    // Nulls by omission: bitmap types are null; the sentinel types BOOLEAN,
    // BYTE and SHORT have no null in QuestDB and read as false / 0.
    assert_eq!(
        lines[1],
        concat!(
            r#"{"sym":null,"b":false,"i8":0,"i16":0,"i32":null,"i64":null,"f32":null,"f64":null,"#,
            r#""ts_us":null,"ts_ns":null,"date":null,"uuid":null,"l256":null,"geo":null,"s":null,"#,
            r#""bin":null,"c":null,"ip":null,"d64":null,"d128":null,"fa":null,"la":null,"#,
            r#""timestamp":1700000000000001}"#
        )
    );
    assert_eq!(lines.len(), 2);
    drop(ws);
    server.shutdown().await;
}

/// Self-sufficient encoder messages (dictionary from id 0 every time) on one
/// connection: each re-declares ids, which the server must accept.
#[tokio::test]
async fn consecutive_self_sufficient_messages_redeclare_symbols() {
    let server = Server::bind(ServerConfig::local()).await.unwrap();
    let mut ws = connect(&server.url()).await;
    for (i, sym) in ["a", "b", "a"].iter().enumerate() {
        let mut b = MessageBuilder::new();
        for t in 0..3 {
            b.table("t")
                .unwrap()
                .symbol("s", sym)
                .unwrap()
                .column_i64("n", t)
                .unwrap()
                .at_micros(1_000 * (i as i64 * 3 + t))
                .unwrap();
        }
        let mut frame = Vec::new();
        b.encode_into(&mut frame).unwrap();
        send(&mut ws, frame).await;
    }
    for seq in 0..3 {
        assert!(matches!(next_frame(&mut ws).await, Response::Ok(f) if f.sequence == seq));
    }
    let ts: Vec<i64> = server
        .rows("t")
        .iter()
        .filter_map(|r| r.designated_timestamp())
        .collect();
    assert_eq!(ts, (0..9).map(|k| k * 1_000).collect::<Vec<_>>());
    drop(ws);
    server.shutdown().await;
}
