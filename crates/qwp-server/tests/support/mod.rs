//! Test helpers: a hand-rolled QWP1 message builder (independent of the
//! crate's encoder, so the server is checked against the wire rules
//! themselves) and a tokio-tungstenite client.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use qwp_proto::response::Response;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Safety bound on every wait in tests, so a bug fails instead of hanging.
pub const BOUND: Duration = Duration::from_secs(10);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const T_LONG: u8 = 0x05;
pub const T_DOUBLE: u8 = 0x07;
pub const T_SYMBOL: u8 = 0x09;
pub const T_TIMESTAMP: u8 = 0x0a;
pub const T_VARCHAR: u8 = 0x0f;

pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    varint(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

/// One column: name, type code and its data section (null flag onwards).
pub struct Col {
    pub name: String,
    pub type_code: u8,
    pub section: Vec<u8>,
}

/// Null flag + bitmap for `present`, or `00` when nothing is null.
fn nulls(present: &[bool], out: &mut Vec<u8>) {
    if present.iter().all(|p| *p) {
        out.push(0);
        return;
    }
    out.push(1);
    let mut bitmap = vec![0u8; present.len().div_ceil(8)];
    for (r, p) in present.iter().enumerate() {
        if !p {
            bitmap[r / 8] |= 1 << (r % 8);
        }
    }
    out.extend_from_slice(&bitmap);
}

/// The designated timestamp (empty name), raw i64s, no Gorilla flag.
pub fn designated_ts(values: &[i64]) -> Col {
    let mut s = vec![0u8];
    for v in values {
        s.extend_from_slice(&v.to_le_bytes());
    }
    Col {
        name: String::new(),
        type_code: T_TIMESTAMP,
        section: s,
    }
}

/// LONG with a bitmap for `None`.
pub fn long(name: &str, values: &[Option<i64>]) -> Col {
    let mut s = Vec::new();
    nulls(
        &values.iter().map(Option::is_some).collect::<Vec<_>>(),
        &mut s,
    );
    for v in values.iter().flatten() {
        s.extend_from_slice(&v.to_le_bytes());
    }
    Col {
        name: name.into(),
        type_code: T_LONG,
        section: s,
    }
}

/// LONG with the sentinel strategy: flag 00 and every row written.
pub fn long_sentinel(name: &str, values: &[i64]) -> Col {
    let mut s = vec![0u8];
    for v in values {
        s.extend_from_slice(&v.to_le_bytes());
    }
    Col {
        name: name.into(),
        type_code: T_LONG,
        section: s,
    }
}

pub fn double(name: &str, values: &[f64]) -> Col {
    let mut s = vec![0u8];
    for v in values {
        s.extend_from_slice(&v.to_le_bytes());
    }
    Col {
        name: name.into(),
        type_code: T_DOUBLE,
        section: s,
    }
}

/// SYMBOL in delta-dictionary mode: global ids, bitmap for `None`.
pub fn symbol(name: &str, ids: &[Option<u64>]) -> Col {
    let mut s = Vec::new();
    nulls(&ids.iter().map(Option::is_some).collect::<Vec<_>>(), &mut s);
    for id in ids.iter().flatten() {
        varint(*id, &mut s);
    }
    Col {
        name: name.into(),
        type_code: T_SYMBOL,
        section: s,
    }
}

pub fn varchar(name: &str, values: &[Option<&str>]) -> Col {
    let mut s = Vec::new();
    nulls(
        &values.iter().map(Option::is_some).collect::<Vec<_>>(),
        &mut s,
    );
    let mut off = 0u32;
    s.extend_from_slice(&off.to_le_bytes());
    let mut data = Vec::new();
    for v in values.iter().flatten() {
        data.extend_from_slice(v.as_bytes());
        off += v.len() as u32;
        s.extend_from_slice(&off.to_le_bytes());
    }
    s.extend_from_slice(&data);
    Col {
        name: name.into(),
        type_code: T_VARCHAR,
        section: s,
    }
}

/// A QWP1 message under construction.
pub struct Msg {
    flags: u8,
    delta: Option<(u64, Vec<String>)>,
    tables: Vec<u8>,
    count: u16,
}

impl Msg {
    /// Flags 0x08 (delta dictionary), no Gorilla.
    pub fn new() -> Msg {
        Msg {
            flags: 0x08,
            delta: Some((0, Vec::new())),
            tables: Vec::new(),
            count: 0,
        }
    }

    pub fn delta(mut self, start: u64, entries: &[&str]) -> Msg {
        self.delta = Some((start, entries.iter().map(|s| s.to_string()).collect()));
        self
    }

    pub fn table(mut self, name: &str, rows: u64, cols: Vec<Col>) -> Msg {
        string(name, &mut self.tables);
        varint(rows, &mut self.tables);
        varint(cols.len() as u64, &mut self.tables);
        for c in &cols {
            string(&c.name, &mut self.tables);
            self.tables.push(c.type_code);
        }
        for c in &cols {
            self.tables.extend_from_slice(&c.section);
        }
        self.count += 1;
        self
    }

    pub fn build(self) -> Vec<u8> {
        let mut payload = Vec::new();
        if let Some((start, entries)) = &self.delta {
            varint(*start, &mut payload);
            varint(entries.len() as u64, &mut payload);
            for e in entries {
                string(e, &mut payload);
            }
        }
        payload.extend_from_slice(&self.tables);
        let mut out = b"QWP1".to_vec();
        out.push(1);
        out.push(self.flags);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }
}

/// A one-table message with a LONG column `v`, one row per value.
pub fn longs(table: &str, values: &[i64]) -> Vec<u8> {
    let v: Vec<Option<i64>> = values.iter().copied().map(Some).collect();
    Msg::new()
        .table(table, values.len() as u64, vec![long("v", &v)])
        .build()
}

pub fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// Upgrades to `url` with extra headers; the HTTP error on a refusal.
pub async fn try_connect(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(Ws, tungstenite::handshake::client::Response), tungstenite::Error> {
    let mut req = url.into_client_request().unwrap();
    for (n, v) in headers {
        req.headers_mut().insert(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    tokio::time::timeout(BOUND, tokio_tungstenite::connect_async(req))
        .await
        .expect("upgrade timed out")
}

pub async fn connect(url: &str) -> Ws {
    try_connect(url, &[]).await.expect("upgrade failed").0
}

/// The HTTP status and headers of a refused upgrade.
pub async fn refused(
    url: &str,
    headers: &[(&str, &str)],
) -> tungstenite::http::Response<Option<Vec<u8>>> {
    match try_connect(url, headers).await {
        Err(tungstenite::Error::Http(resp)) => *resp,
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

pub async fn send(ws: &mut Ws, bytes: Vec<u8>) {
    ws.send(Message::binary(bytes)).await.expect("send");
}

/// What the client saw next.
#[derive(Debug)]
pub enum Event {
    Frame(Response),
    Pong,
    Close(Option<u16>),
    /// The stream ended or failed without a close frame.
    Gone,
}

pub async fn next_event(ws: &mut Ws) -> Event {
    let msg = tokio::time::timeout(BOUND, ws.next())
        .await
        .expect("no frame in time");
    match msg {
        Some(Ok(Message::Binary(b))) => {
            Event::Frame(Response::decode(&b).expect("valid response frame"))
        }
        Some(Ok(Message::Pong(_))) => Event::Pong,
        Some(Ok(Message::Close(f))) => Event::Close(f.map(|f| u16::from(f.code))),
        Some(Ok(other)) => panic!("unexpected message {other:?}"),
        Some(Err(_)) | None => Event::Gone,
    }
}

/// The next response frame (skipping PONGs).
pub async fn next_frame(ws: &mut Ws) -> Response {
    loop {
        match next_event(ws).await {
            Event::Frame(r) => return r,
            Event::Pong => continue,
            other => panic!("expected a response frame, got {other:?}"),
        }
    }
}

/// Closes from the client side and returns every frame the server sent
/// before its close reply.
pub async fn close_and_collect(ws: &mut Ws) -> Vec<Response> {
    ws.send(Message::Close(Some(tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    })))
    .await
    .expect("send close");
    let mut frames = Vec::new();
    loop {
        match next_event(ws).await {
            Event::Frame(r) => frames.push(r),
            Event::Pong => {}
            Event::Close(_) | Event::Gone => return frames,
        }
    }
}
