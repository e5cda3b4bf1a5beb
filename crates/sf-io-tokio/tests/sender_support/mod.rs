//! Helpers shared by the sender end-to-end tests.
#![allow(dead_code)]

use std::time::Duration;

use qwp_proto::decoder::Value;
use qwp_server::{Server, ServerConfig, ServerHandle};
use sf_io_tokio::Sender;

/// Generous bound for waits that end on an event; never a sleep.
pub const WAIT: Duration = Duration::from_secs(20);

/// Starts a reference server on 127.0.0.1 (any port).
pub async fn server(config: ServerConfig) -> ServerHandle {
    Server::bind(config).await.expect("bind qwp-server")
}

/// A connect string to `server` with `extra` keys appended.
pub fn conf(server: &ServerHandle, extra: &str) -> String {
    format!("ws::addr={};{extra}", server.local_addr())
}

/// Appends rows `from..to` to table `t`: `n` = i, symbol `s`, `x` = i/2,
/// designated timestamp = i µs.
pub fn write_rows(sender: &mut Sender, table: &str, from: i64, to: i64) {
    for i in from..to {
        sender
            .table(table)
            .unwrap()
            .symbol("s", if i % 2 == 0 { "even" } else { "odd" })
            .unwrap()
            .column_i64("n", i)
            .unwrap()
            .column_f64("x", i as f64 / 2.0)
            .unwrap();
        sender.at_micros(1_000_000 + i).unwrap();
    }
}

/// The `n` column of every row the server holds for `table`, in order.
pub fn server_ns(server: &ServerHandle, table: &str) -> Vec<i64> {
    server
        .rows(table)
        .iter()
        .map(|r| match r.value("n") {
            Some(Value::Long(n)) => *n,
            other => panic!("row without n: {other:?}"),
        })
        .collect()
}

/// Checks that a server row carries exactly what `write_rows` wrote.
pub fn check_row_contents(server: &ServerHandle, table: &str) {
    for r in server.rows(table) {
        let Some(Value::Long(n)) = r.value("n") else {
            panic!("no n")
        };
        assert_eq!(r.value("x"), Some(&Value::Double(*n as f64 / 2.0)));
        assert_eq!(r.designated_timestamp(), Some(1_000_000 + n));
        match r.value("s") {
            Some(Value::Symbol { value, .. }) => {
                assert_eq!(value.as_str(), if n % 2 == 0 { "even" } else { "odd" })
            }
            other => panic!("bad symbol {other:?}"),
        }
    }
}
