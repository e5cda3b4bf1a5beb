//! Rows as the server keeps them: one [`Cell`] per column, tagged with the
//! connection and wire sequence they arrived with.

use std::sync::Arc;

use qwp_proto::decoder::{Table, Value};
use qwp_proto::types::ColumnType;

/// A connection, numbered from 0 in accept order (per server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl core::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "conn-{}", self.0)
    }
}

/// One column of one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The column name; empty for the designated timestamp.
    pub name: Arc<str>,
    /// The column type from the message's schema.
    pub column_type: ColumnType,
    /// The value as decoded (`None` = null in the bitmap or the GEOHASH
    /// sentinel). Sentinel-encoded values such as LONG `i64::MIN` are kept
    /// as values here; [`json`](crate::json) maps them to `null`.
    pub value: Option<Value>,
}

/// One accepted row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The connection it arrived on.
    pub connection: ConnectionId,
    /// The wire sequence of its message on that connection.
    pub wire_seq: i64,
    /// The table's seqTxn assigned to its message.
    pub seq_txn: i64,
    /// Its cells, in the message's schema order.
    pub cells: Vec<Cell>,
}

impl Row {
    /// The cell of column `name` (`""` is the designated timestamp).
    pub fn cell(&self, name: &str) -> Option<&Cell> {
        self.cells.iter().find(|c| &*c.name == name)
    }

    /// The value of column `name`; `None` when the column is absent or null.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.cell(name)?.value.as_ref()
    }

    /// The designated timestamp in its column's unit, if the row has one.
    pub fn designated_timestamp(&self) -> Option<i64> {
        match self.value("")? {
            Value::Timestamp(t) | Value::TimestampNanos(t) => Some(*t),
            _ => None,
        }
    }

    /// The row as the JSONL object of [`json`](crate::json).
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        crate::json::row_to_json(&self.cells)
    }
}

/// The rows of a decoded table block, as cells in schema order.
pub fn table_rows(table: &Table) -> Vec<Vec<Cell>> {
    let names: Vec<(Arc<str>, ColumnType)> = table
        .columns()
        .iter()
        .map(|c| (Arc::from(c.name()), c.column_type()))
        .collect();
    table
        .rows()
        .map(|values| {
            names
                .iter()
                .zip(values)
                .map(|((name, column_type), value)| Cell {
                    name: Arc::clone(name),
                    column_type: *column_type,
                    value,
                })
                .collect()
        })
        .collect()
}
