//! Costs of the reference server: the JSONL row mapping, and a loopback
//! round trip (send one 1000-row message, await its OK) with and without
//! JSONL persistence.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::{SinkExt, StreamExt};
use qwp_proto::decoder::Value;
use qwp_proto::encoder::MessageBuilder;
use qwp_proto::types::ColumnType;
use qwp_server::{row_to_json_line, Cell, Server, ServerConfig};
use tokio_tungstenite::tungstenite::Message;

fn four_column_row() -> Vec<Cell> {
    let cell = |name: &str, column_type, value| Cell {
        name: Arc::from(name),
        column_type,
        value: Some(value),
    };
    vec![
        cell(
            "sym",
            ColumnType::Symbol,
            Value::Symbol {
                id: 0,
                value: "BTC-USD".into(),
            },
        ),
        cell("bid", ColumnType::Double, Value::Double(42_000.5)),
        cell("ask", ColumnType::Double, Value::Double(42_001.25)),
        cell(
            "",
            ColumnType::Timestamp,
            Value::Timestamp(1_700_000_000_000_000),
        ),
    ]
}

fn thousand_rows() -> Vec<u8> {
    let mut b = MessageBuilder::new();
    for i in 0..1000i64 {
        b.table("quotes")
            .unwrap()
            .symbol("sym", if i % 2 == 0 { "BTC-USD" } else { "ETH-USD" })
            .unwrap()
            .column_f64("bid", 42_000.0 + i as f64)
            .unwrap()
            .column_f64("ask", 42_001.0 + i as f64)
            .unwrap()
            .at_micros(1_700_000_000_000_000 + i * 1_000)
            .unwrap();
    }
    let mut out = Vec::new();
    b.encode_into(&mut out).unwrap();
    out
}

fn json_line(c: &mut Criterion) {
    let row = four_column_row();
    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Elements(1));
    g.bench_function("row_to_json_line_4col", |b| {
        b.iter(|| row_to_json_line(black_box(&row)))
    });
    g.finish();
}

fn loopback(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let frame = thousand_rows();
    let mut g = c.benchmark_group("loopback");
    g.throughput(Throughput::Elements(1000));
    for persist in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ServerConfig::local().with_retain_rows(false);
        if persist {
            cfg = cfg.with_data_dir(dir.path());
        }
        let server = rt.block_on(Server::bind(cfg)).unwrap();
        let (mut ws, _) = rt
            .block_on(tokio_tungstenite::connect_async(server.url()))
            .unwrap();
        let name = if persist {
            "1000_rows_jsonl"
        } else {
            "1000_rows_memory"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    ws.send(Message::binary(frame.clone())).await.unwrap();
                    loop {
                        match ws.next().await {
                            Some(Ok(Message::Binary(r))) => break black_box(r),
                            Some(Ok(_)) => continue,
                            other => panic!("{other:?}"),
                        }
                    }
                })
            })
        });
        drop(ws);
        rt.block_on(server.shutdown());
    }
    g.finish();
}

criterion_group!(benches, json_line, loopback);
criterion_main!(benches);
