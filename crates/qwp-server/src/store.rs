//! The server's shared table state: per-table seqTxn counters, the rows
//! accepted so far, and the JSONL files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use qwp_proto::decoder::Message;
use qwp_proto::response::TableSeqTxn;
use qwp_proto::status::{STATUS_INTERNAL_ERROR, STATUS_WRITE_ERROR};

use crate::persist::Persister;
use crate::row::{table_rows, ConnectionId, Row};

/// One table's state.
#[derive(Debug, Default)]
struct TableState {
    /// The last seqTxn assigned; 0 before the first commit, so the first
    /// commit is seqTxn 1, as in QuestDB's sequencer.
    seq_txn: i64,
    rows: Vec<Row>,
}

/// Everything committed so far.
#[derive(Debug, Default)]
pub(crate) struct Store {
    tables: BTreeMap<String, TableState>,
    /// Messages committed so far (the number of the last commit).
    commits: u64,
    /// Manual durable-ACK mode: commits numbered up to here are durable.
    released: u64,
    persister: Option<Persister>,
    /// Whether rows are kept after they are counted and persisted.
    retain_rows: bool,
}

/// The outcome of committing one message.
#[derive(Debug)]
pub(crate) struct Commit {
    /// The commit's number (1-based, server-wide).
    pub(crate) number: u64,
    /// Every table the message touched with its new seqTxn, in order of
    /// first appearance; empty for a message without rows.
    pub(crate) tables: Vec<TableSeqTxn>,
    /// Rows accepted.
    pub(crate) rows: u64,
}

/// Why a message could not be committed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommitError {
    /// The table name cannot be a file name (and QuestDB refuses it too).
    #[error("invalid table name {name:?}: {reason}")]
    InvalidTableName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The JSONL append failed.
    #[error("cannot append to {path}: {source}")]
    Persist {
        /// The table file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl CommitError {
    /// The status byte of the error frame that reports it.
    pub(crate) fn status(&self) -> u8 {
        match self {
            CommitError::InvalidTableName { .. } => STATUS_WRITE_ERROR,
            CommitError::Persist { .. } => STATUS_INTERNAL_ERROR,
        }
    }
}

impl Store {
    pub(crate) fn new(persister: Option<Persister>, retain_rows: bool) -> Store {
        Store {
            persister,
            retain_rows,
            ..Store::default()
        }
    }

    /// Commits a decoded message: each table with at least one row gets its
    /// seqTxn advanced by one (however many blocks of it the message has),
    /// its rows stored and, with persistence on, appended to its file.
    /// Nothing changes in memory if validation or persistence fails (a
    /// multi-table message whose second file fails to append leaves the
    /// first file appended: documented, not rolled back).
    pub(crate) fn commit(
        &mut self,
        connection: ConnectionId,
        wire_seq: i64,
        message: &Message,
    ) -> Result<Commit, CommitError> {
        // Group the blocks by table, in order of first appearance. Rows are
        // materialised only if they are kept or persisted.
        let build_rows = self.retain_rows || self.persister.is_some();
        let mut touched: Vec<(&str, Vec<Row>, u64)> = Vec::new();
        for table in message.tables.iter().filter(|t| t.row_count() > 0) {
            check_table_name(table.name())?;
            let seq_txn = self.seq_txn(table.name()).saturating_add(1);
            let count = table.row_count() as u64;
            let rows: Vec<Row> = if build_rows {
                table_rows(table)
                    .into_iter()
                    .map(|cells| Row {
                        connection,
                        wire_seq,
                        seq_txn,
                        cells,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            match touched.iter_mut().find(|(n, _, _)| *n == table.name()) {
                Some((_, existing, n)) => {
                    existing.extend(rows);
                    *n += count;
                }
                None => touched.push((table.name(), rows, count)),
            }
        }
        if let Some(p) = &mut self.persister {
            for (name, rows, _) in &touched {
                let mut lines = Vec::new();
                for row in rows {
                    crate::json::write_row_json_line(&row.cells, &mut lines);
                    lines.push(b'\n');
                }
                p.append(name, &lines)
                    .map_err(|source| CommitError::Persist {
                        path: p.path(name),
                        source,
                    })?;
            }
        }
        self.commits += 1;
        let mut tables = Vec::with_capacity(touched.len());
        let mut accepted = 0u64;
        for (name, rows, count) in touched {
            let state = self.tables.entry(name.to_owned()).or_default();
            state.seq_txn = state.seq_txn.saturating_add(1);
            accepted += count;
            if self.retain_rows {
                state.rows.extend(rows);
            }
            tables.push(TableSeqTxn::new(name, state.seq_txn));
        }
        Ok(Commit {
            number: self.commits,
            tables,
            rows: accepted,
        })
    }

    /// The table's last seqTxn (0 if it has none).
    pub(crate) fn seq_txn(&self, table: &str) -> i64 {
        self.tables.get(table).map_or(0, |t| t.seq_txn)
    }

    /// The rows of `table`, in acceptance order.
    pub(crate) fn rows(&self, table: &str) -> Vec<Row> {
        self.tables
            .get(table)
            .map_or_else(Vec::new, |t| t.rows.clone())
    }

    /// Every table's rows.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, Vec<Row>> {
        self.tables
            .iter()
            .map(|(n, t)| (n.clone(), t.rows.clone()))
            .collect()
    }

    /// Manual durable mode: every commit so far becomes durable.
    pub(crate) fn release_durable(&mut self) {
        self.released = self.commits;
    }

    /// Manual durable mode: the last durable commit number.
    pub(crate) fn released(&self) -> u64 {
        self.released
    }
}

/// Refuses names that are not a plain file name: they would escape the data
/// directory or be hidden, and QuestDB rejects them as table names too.
fn check_table_name(name: &str) -> Result<(), CommitError> {
    let reason = if name.starts_with('.') {
        Some("starts with '.'")
    } else if name.contains(['/', '\\']) {
        Some("contains a path separator")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CommitError::InvalidTableName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_that_escape_the_data_dir_are_refused() {
        for bad in ["../x", "a/b", "a\\b", ".hidden", "..", "a\0b", "tab\nle"] {
            assert!(check_table_name(bad).is_err(), "{bad:?}");
        }
        for good in ["trades", "a.b", "with space", "ünï"] {
            assert!(check_table_name(good).is_ok(), "{good:?}");
        }
    }
}
