//! JSONL persistence: one append-only file per table, `<dir>/<table>.jsonl`,
//! written and flushed once per message (not fsynced: this is a test and
//! local-use server, and the page cache survives a process crash).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The open table files under one directory.
#[derive(Debug)]
pub(crate) struct Persister {
    dir: PathBuf,
    files: HashMap<String, File>,
}

impl Persister {
    /// Creates `dir` if needed.
    pub(crate) fn open(dir: &Path) -> io::Result<Persister> {
        std::fs::create_dir_all(dir)?;
        Ok(Persister {
            dir: dir.to_owned(),
            files: HashMap::new(),
        })
    }

    /// The file of `table` (whose name the caller has validated as a plain
    /// file name).
    pub(crate) fn path(&self, table: &str) -> PathBuf {
        self.dir.join(format!("{table}.jsonl"))
    }

    /// Appends `lines` (already newline-terminated) to the table's file in
    /// one write and flushes it.
    pub(crate) fn append(&mut self, table: &str, lines: &[u8]) -> io::Result<()> {
        let file = match self.files.get_mut(table) {
            Some(f) => f,
            None => {
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.path(table))?;
                self.files.entry(table.to_owned()).or_insert(f)
            }
        };
        file.write_all(lines)?;
        file.flush()
    }
}
