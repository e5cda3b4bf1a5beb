//! One simulated QWP ingest server (a host): the pure server logic of the
//! reference server (`qwp-server`) without tokio, sockets or randomness.
//!
//! It keeps, like the reference server:
//! - one [`ConnectionDecoder`] per connection, so the symbol dictionary is
//!   scoped to the connection and starts empty on every new one;
//! - a wire sequence per connection, counted from 0 per binary message;
//! - a seqTxn per table, advanced by one per message that has rows for it
//!   (the first commit is seqTxn 1);
//! - per connection, the durable watermark it has reported, so a
//!   DURABLE_ACK lists only tables that advanced.
//!
//! What it adds for the simulator: a durability time per commit (the
//! object-store upload of a primary), so that a restart can forget commits
//! that were never made durable, and [`SimServer::restart`] itself.
//!
//! Decisions where the spec is silent:
//! - **Uploads finish in commit order** per host: a commit never becomes
//!   durable before an earlier one, so the durable seqTxn of a table only
//!   moves forward and a restart loses a suffix of the commits.
//! - **A restart that loses un-durable commits rolls every table's seqTxn
//!   back to its durable seqTxn**, so the numbers are reused as QuestDB's
//!   sequencer would after losing its un-uploaded tail. Clients drop all
//!   durable tracking on reconnect, so a reused number cannot confuse one.
//! - A message whose every table block is empty commits nothing and answers
//!   an OK without tables; it is still recorded as accepted.
//!
//! Faults are the network's business ([`crate::network`]); this module only
//! does what a well-behaved server does when asked.

use std::collections::{BTreeMap, VecDeque};

use qwp_proto::decoder::{ConnectionDecoder, DecodeError, Message, Table, Value};
use qwp_proto::response::{DurableAckFrame, TableSeqTxn};
use sf_core::Instant;

/// The column every simulated workload row carries: a unique `i64` that the
/// checkers follow from the producer to the server.
pub const ROW_ID_COLUMN: &str = "row_id";

/// One table's rows in one accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedTable {
    /// Table name.
    pub name: String,
    /// The seqTxn this message's commit gave the table.
    pub seq_txn: i64,
    /// The [`ROW_ID_COLUMN`] value of each row that has one, in row order.
    pub row_ids: Vec<i64>,
    /// Rows without a (non-null LONG) [`ROW_ID_COLUMN`].
    pub rows_without_id: u64,
}

/// The result of committing one decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Every table with rows, in order of first appearance, with its new
    /// seqTxn and row ids (blocks of the same table are merged).
    pub tables: Vec<AcceptedTable>,
    /// When the upload makes it durable (no earlier than any earlier
    /// commit's).
    pub durable_at: Instant,
}

impl Commit {
    /// The `(table, seqTxn)` entries of the OK frame.
    pub fn ok_tables(&self) -> Vec<TableSeqTxn> {
        self.tables
            .iter()
            .map(|t| TableSeqTxn::new(t.name.clone(), t.seq_txn))
            .collect()
    }
}

/// Server-side state of one open connection.
#[derive(Debug)]
struct ServerConn {
    decoder: ConnectionDecoder,
    /// The next message's wire sequence.
    next_seq: u64,
    /// Whether this connection gets DURABLE_ACK frames.
    durable: bool,
    /// Per table, the highest durable seqTxn of this connection's commits.
    durable_ready: BTreeMap<String, i64>,
    /// Per table, the durable seqTxn last reported in a DURABLE_ACK.
    durable_sent: BTreeMap<String, i64>,
}

/// A commit not yet durable.
#[derive(Debug)]
struct Undurable {
    /// The network-wide commit id.
    id: u64,
    connection: u64,
    durable_at: Instant,
    tables: Vec<TableSeqTxn>,
}

/// Per-table sequencer state.
#[derive(Debug, Default, Clone, Copy)]
struct TableState {
    seq_txn: i64,
    durable_seq_txn: i64,
}

/// What a restart did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartOutcome {
    /// Connections that were open and are now forgotten.
    pub connections: Vec<u64>,
    /// Commit ids forgotten because they were not durable.
    pub lost_commits: Vec<u64>,
}

/// One simulated host: tables, open connections, durability.
#[derive(Debug, Default)]
pub struct SimServer {
    tables: BTreeMap<String, TableState>,
    connections: BTreeMap<u64, ServerConn>,
    /// Commits not yet durable, in commit (= durability) order.
    undurable: VecDeque<Undurable>,
    /// The durability time of the last commit (uploads finish in order).
    last_durable_at: Instant,
    /// The role a `421` names, when this host refuses ingest.
    role: Option<String>,
    /// Connections ever opened that did not ask for durable ACKs.
    non_durable_connections: u64,
}

impl SimServer {
    /// A fresh host with no tables and no connections.
    pub fn new() -> SimServer {
        SimServer::default()
    }

    /// The role this host answers every upgrade with (`421` +
    /// `X-QuestDB-Role`), or `None` when it accepts ingest.
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    /// Makes the host refuse every upgrade with `421` and this role (an
    /// empty role sends the `421` without the header), or accept again
    /// with `None`.
    pub fn set_role(&mut self, role: Option<String>) {
        self.role = role;
    }

    /// The table's last seqTxn (0 before its first commit).
    pub fn seq_txn(&self, table: &str) -> i64 {
        self.tables.get(table).map_or(0, |t| t.seq_txn)
    }

    /// The table's last durable seqTxn (0 before its first upload).
    pub fn durable_seq_txn(&self, table: &str) -> i64 {
        self.tables.get(table).map_or(0, |t| t.durable_seq_txn)
    }

    /// Whether connection `connection` is open on this host.
    pub fn is_open(&self, connection: u64) -> bool {
        self.connections.contains_key(&connection)
    }

    /// Open connections, in number order.
    pub fn open_connections(&self) -> impl Iterator<Item = u64> + '_ {
        self.connections.keys().copied()
    }

    /// Whether every connection ever opened here asked for durable ACKs (so
    /// a client trims only on DURABLE_ACK, and losing an un-durable commit
    /// cannot lose data a correct client gave up).
    pub fn only_durable_clients(&self) -> bool {
        self.non_durable_connections == 0
    }

    /// Opens connection `connection` after a `101`, with a fresh decoder.
    pub fn open(&mut self, connection: u64, durable: bool) {
        if !durable {
            self.non_durable_connections += 1;
        }
        self.connections.insert(
            connection,
            ServerConn {
                decoder: ConnectionDecoder::new(),
                next_seq: 0,
                durable,
                durable_ready: BTreeMap::new(),
                durable_sent: BTreeMap::new(),
            },
        );
    }

    /// Forgets connection `connection` (closed or reset); returns whether it
    /// was open.
    pub fn close(&mut self, connection: u64) -> bool {
        self.connections.remove(&connection).is_some()
    }

    /// Numbers and decodes the connection's next binary message. Returns
    /// its wire sequence and the decoded message, or the decode error; the
    /// sequence is consumed either way. `None` when the connection is not
    /// open.
    pub fn receive(
        &mut self,
        connection: u64,
        frame: &[u8],
    ) -> Option<(u64, Result<Message, DecodeError>)> {
        let conn = self.connections.get_mut(&connection)?;
        let seq = conn.next_seq;
        conn.next_seq += 1;
        Some((seq, conn.decoder.decode(frame).map(|(m, _)| m)))
    }

    /// The number of messages connection `connection` has received.
    pub fn received(&self, connection: u64) -> Option<u64> {
        self.connections.get(&connection).map(|c| c.next_seq)
    }

    /// Commits a decoded message received on `connection` as commit `id`,
    /// to become durable at `durable_at` (or later: uploads finish in
    /// order).
    pub fn commit(
        &mut self,
        id: u64,
        connection: u64,
        message: &Message,
        durable_at: Instant,
    ) -> Commit {
        let mut touched: Vec<AcceptedTable> = Vec::new();
        for table in message.tables.iter().filter(|t| t.row_count() > 0) {
            let (ids, without) = row_ids(table);
            match touched.iter_mut().find(|t| t.name == table.name()) {
                Some(t) => {
                    t.row_ids.extend(ids);
                    t.rows_without_id += without;
                }
                None => touched.push(AcceptedTable {
                    name: table.name().to_owned(),
                    seq_txn: 0,
                    row_ids: ids,
                    rows_without_id: without,
                }),
            }
        }
        for t in &mut touched {
            let state = self.tables.entry(t.name.clone()).or_default();
            state.seq_txn = state.seq_txn.saturating_add(1);
            t.seq_txn = state.seq_txn;
        }
        let durable_at = durable_at.max(self.last_durable_at);
        self.last_durable_at = durable_at;
        let commit = Commit {
            tables: touched,
            durable_at,
        };
        self.undurable.push_back(Undurable {
            id,
            connection,
            durable_at,
            tables: commit.ok_tables(),
        });
        commit
    }

    /// Makes every commit durable whose time has come by `now`; returns
    /// their ids in commit order.
    pub fn advance(&mut self, now: Instant) -> Vec<u64> {
        let mut done = Vec::new();
        while self.undurable.front().is_some_and(|u| u.durable_at <= now) {
            if let Some(u) = self.undurable.pop_front() {
                self.make_durable(&u);
                done.push(u.id);
            }
        }
        done
    }

    /// Makes every pending commit durable at `now` (an upload that caught
    /// up); returns their ids.
    pub fn make_all_durable(&mut self, now: Instant) -> Vec<u64> {
        let mut done = Vec::new();
        self.last_durable_at = self.last_durable_at.min(now);
        while let Some(u) = self.undurable.pop_front() {
            self.make_durable(&u);
            done.push(u.id);
        }
        done
    }

    fn make_durable(&mut self, u: &Undurable) {
        for t in &u.tables {
            let state = self.tables.entry(t.name.clone()).or_default();
            state.durable_seq_txn = state.durable_seq_txn.max(t.seq_txn);
        }
        if let Some(conn) = self.connections.get_mut(&u.connection) {
            for t in &u.tables {
                let v = conn
                    .durable_ready
                    .entry(t.name.clone())
                    .or_insert(t.seq_txn);
                *v = (*v).max(t.seq_txn);
            }
        }
    }

    /// On inbound activity: the DURABLE_ACK connection `connection` is due,
    /// listing each table whose durable watermark advanced past what was
    /// reported. `keep` chooses which of those tables go out now (a partial
    /// ACK keeps the rest for later); `None` when nothing is due or the
    /// connection does not get DURABLE_ACKs.
    pub fn durable_ack(
        &mut self,
        connection: u64,
        mut keep: impl FnMut(usize) -> bool,
    ) -> Option<DurableAckFrame> {
        let conn = self.connections.get_mut(&connection)?;
        if !conn.durable {
            return None;
        }
        let advanced: Vec<TableSeqTxn> = conn
            .durable_ready
            .iter()
            .filter(|(name, seq)| conn.durable_sent.get(*name).is_none_or(|sent| *seq > sent))
            .map(|(name, seq)| TableSeqTxn::new(name.clone(), *seq))
            .collect();
        let tables: Vec<TableSeqTxn> = advanced
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, t)| t)
            .collect();
        if tables.is_empty() {
            return None;
        }
        for t in &tables {
            conn.durable_sent.insert(t.name.clone(), t.seq_txn);
        }
        Some(DurableAckFrame { tables })
    }

    /// A stale DURABLE_ACK for connection `connection`: one already
    /// reported table with a watermark below what was reported (a server
    /// resending an old value). `None` if nothing was reported yet.
    pub fn stale_durable_ack(&self, connection: u64, pick: u64) -> Option<DurableAckFrame> {
        let conn = self.connections.get(&connection)?;
        let len = conn.durable_sent.len() as u64;
        if len == 0 {
            return None;
        }
        let (name, seq) = conn.durable_sent.iter().nth((pick % len) as usize)?;
        Some(DurableAckFrame {
            tables: vec![TableSeqTxn::new(name.clone(), seq.saturating_sub(1))],
        })
    }

    /// Restarts the host: every connection is forgotten and, when
    /// `lose_undurable`, every commit not yet durable is forgotten too and
    /// each table's seqTxn falls back to its durable seqTxn.
    pub fn restart(&mut self, lose_undurable: bool) -> RestartOutcome {
        let connections = self.connections.keys().copied().collect();
        self.connections.clear();
        let mut lost_commits = Vec::new();
        if lose_undurable {
            lost_commits = self.undurable.drain(..).map(|u| u.id).collect();
            for state in self.tables.values_mut() {
                state.seq_txn = state.durable_seq_txn;
            }
            self.last_durable_at = Instant::ZERO;
        }
        RestartOutcome {
            connections,
            lost_commits,
        }
    }
}

/// The row ids of a table block, and how many rows have none.
fn row_ids(table: &Table) -> (Vec<i64>, u64) {
    let Some(column) = table.column(ROW_ID_COLUMN) else {
        return (Vec::new(), table.row_count() as u64);
    };
    let mut ids = Vec::with_capacity(table.row_count());
    let mut without = 0u64;
    for value in column.iter() {
        match value {
            Some(Value::Long(id)) => ids.push(id),
            _ => without += 1,
        }
    }
    (ids, without)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qwp_proto::encoder::MessageBuilder;

    /// A self-sufficient frame with one row per id in `table` (a symbol
    /// column too, so the delta dictionary is exercised).
    pub(crate) fn frame(table: &str, ids: &[i64]) -> Vec<u8> {
        let mut b = MessageBuilder::new();
        for id in ids {
            b.table(table)
                .unwrap()
                .symbol("host", if id % 2 == 0 { "a" } else { "b" })
                .unwrap()
                .column_i64(ROW_ID_COLUMN, *id)
                .unwrap()
                .at_micros(1_700_000_000_000_000 + id)
                .unwrap();
        }
        let mut out = Vec::new();
        b.encode_into(&mut out).unwrap();
        out
    }

    fn receive_commit(s: &mut SimServer, conn: u64, id: u64, f: &[u8], at: u64) -> Commit {
        let (_, msg) = s.receive(conn, f).unwrap();
        s.commit(id, conn, &msg.unwrap(), Instant(at))
    }

    #[test]
    fn wire_sequence_counts_per_connection_from_zero() {
        let mut s = SimServer::new();
        s.open(7, false);
        s.open(8, false);
        let f = frame("t", &[1]);
        assert_eq!(s.receive(7, &f).unwrap().0, 0);
        assert_eq!(s.receive(7, &f).unwrap().0, 1);
        assert_eq!(s.receive(8, &f).unwrap().0, 0);
        assert!(s.receive(9, &f).is_none());
    }

    #[test]
    fn seq_txn_advances_once_per_message_per_table_and_row_ids_are_kept() {
        let mut s = SimServer::new();
        s.open(0, false);
        let c = receive_commit(&mut s, 0, 0, &frame("t", &[1, 2, 3]), 0);
        assert_eq!(c.tables.len(), 1);
        assert_eq!(c.tables[0].seq_txn, 1);
        assert_eq!(c.tables[0].row_ids, vec![1, 2, 3]);
        let c = receive_commit(&mut s, 0, 1, &frame("t", &[4]), 0);
        assert_eq!(c.tables[0].seq_txn, 2);
        assert_eq!(s.seq_txn("t"), 2);
        assert_eq!(s.seq_txn("other"), 0);
    }

    #[test]
    fn durable_ack_lists_only_advanced_tables_and_only_on_durable_connections() {
        let mut s = SimServer::new();
        s.open(0, true);
        s.open(1, false);
        receive_commit(&mut s, 0, 0, &frame("a", &[1]), 10);
        receive_commit(&mut s, 1, 1, &frame("b", &[2]), 10);
        assert!(s.durable_ack(0, |_| true).is_none(), "not durable yet");
        assert_eq!(s.advance(Instant(10)), vec![0, 1]);
        let ack = s.durable_ack(0, |_| true).unwrap();
        assert_eq!(ack.tables, vec![TableSeqTxn::new("a", 1)]);
        assert!(
            s.durable_ack(0, |_| true).is_none(),
            "nothing advanced since"
        );
        assert!(
            s.durable_ack(1, |_| true).is_none(),
            "not a durable connection"
        );
    }

    #[test]
    fn uploads_finish_in_commit_order() {
        let mut s = SimServer::new();
        s.open(0, true);
        receive_commit(&mut s, 0, 0, &frame("a", &[1]), 100);
        receive_commit(&mut s, 0, 1, &frame("a", &[2]), 5);
        assert_eq!(s.advance(Instant(50)), Vec::<u64>::new());
        assert_eq!(s.advance(Instant(100)), vec![0, 1]);
    }

    #[test]
    fn partial_durable_ack_keeps_the_rest_for_later() {
        let mut s = SimServer::new();
        s.open(0, true);
        receive_commit(&mut s, 0, 0, &frame("a", &[1]), 0);
        receive_commit(&mut s, 0, 1, &frame("b", &[2]), 0);
        s.advance(Instant(0));
        let first = s.durable_ack(0, |i| i == 0).unwrap();
        assert_eq!(first.tables, vec![TableSeqTxn::new("a", 1)]);
        let rest = s.durable_ack(0, |_| true).unwrap();
        assert_eq!(rest.tables, vec![TableSeqTxn::new("b", 1)]);
        let stale = s.stale_durable_ack(0, 0).unwrap();
        assert_eq!(stale.tables, vec![TableSeqTxn::new("a", 0)]);
    }

    #[test]
    fn restart_forgets_connections_and_optionally_undurable_commits() {
        let mut s = SimServer::new();
        s.open(0, true);
        receive_commit(&mut s, 0, 0, &frame("a", &[1]), 0);
        receive_commit(&mut s, 0, 1, &frame("a", &[2]), 1_000);
        s.advance(Instant(0));
        let out = s.restart(true);
        assert_eq!(out.connections, vec![0]);
        assert_eq!(out.lost_commits, vec![1]);
        assert!(!s.is_open(0));
        assert_eq!(s.seq_txn("a"), 1, "seqTxn falls back to the durable one");
        s.open(1, true);
        assert_eq!(s.receive(1, &frame("a", &[3])).unwrap().0, 0);
        let mut kept = SimServer::new();
        kept.open(0, false);
        receive_commit(&mut kept, 0, 0, &frame("a", &[1]), 1_000);
        assert_eq!(kept.restart(false).lost_commits, Vec::<u64>::new());
        assert_eq!(kept.seq_txn("a"), 1);
        assert!(!kept.only_durable_clients());
    }

    #[test]
    fn rows_without_a_row_id_are_counted() {
        let mut b = MessageBuilder::new();
        b.table("t")
            .unwrap()
            .column_f64("x", 1.0)
            .unwrap()
            .at_micros(1)
            .unwrap();
        let mut f = Vec::new();
        b.encode_into(&mut f).unwrap();
        let mut s = SimServer::new();
        s.open(0, false);
        let c = receive_commit(&mut s, 0, 0, &f, 0);
        assert_eq!(c.tables[0].rows_without_id, 1);
        assert!(c.tables[0].row_ids.is_empty());
    }
}
