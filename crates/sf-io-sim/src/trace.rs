//! The run's trace: every event the world sees, in order, folded into a
//! stable 64-bit hash (D1: same seed and build, same hash), and kept in
//! full when asked (`--trace`).
//!
//! Canonical encoding: one line per event, `t=<virtual ns> <kind> <detail>`,
//! where the detail is the `Debug` form of the sf-core value involved (an
//! output, an input, an I/O outcome). That form is fixed by the build, and
//! nothing hash-ordered reaches it (the simulator keeps `BTreeMap`s only).
//! The hash is FNV-1a 64 over those bytes, computed while formatting, so a
//! run that does not keep the trace allocates nothing for it.

use std::fmt::{self, Write as _};

use sf_core::Instant;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64, fed through [`fmt::Write`] so values hash as they format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Fnv64 {
    /// A fresh hash.
    pub fn new() -> Fnv64 {
        Fnv64(FNV_OFFSET)
    }

    /// Folds `bytes` in.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// The hash so far.
    pub fn get(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64::new()
    }
}

impl fmt::Write for Fnv64 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.update(s.as_bytes());
        Ok(())
    }
}

/// Writes to the hash and, when kept, to the current line.
struct Tee<'a> {
    hash: &'a mut Fnv64,
    line: Option<&'a mut String>,
}

impl fmt::Write for Tee<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.hash.update(s.as_bytes());
        if let Some(line) = self.line.as_mut() {
            line.push_str(s);
        }
        Ok(())
    }
}

/// The events of a run and their hash.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    hash: Fnv64,
    events: u64,
    keep: bool,
    lines: Vec<String>,
}

impl Trace {
    /// An empty trace; `keep` keeps every line (otherwise only the hash).
    pub fn new(keep: bool) -> Trace {
        Trace {
            hash: Fnv64::new(),
            events: 0,
            keep,
            lines: Vec::new(),
        }
    }

    /// Records one event of `kind` at `now` with its detail.
    pub fn record(&mut self, now: Instant, kind: &str, detail: fmt::Arguments<'_>) {
        self.events += 1;
        let mut line = self.keep.then(String::new);
        let mut tee = Tee {
            hash: &mut self.hash,
            line: line.as_mut(),
        };
        // Writing into a hash and a String cannot fail.
        let _ = write!(tee, "t={} {kind} {detail}", now.as_nanos());
        // The separator is hashed, not kept: lines are stored one per entry.
        self.hash.update(b"\n");
        if let Some(l) = line {
            self.lines.push(l);
        }
    }

    /// The hash of every event so far.
    pub fn hash(&self) -> u64 {
        self.hash.get()
    }

    /// How many events were recorded.
    pub fn len(&self) -> u64 {
        self.events
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// The kept lines (empty unless built with `keep`).
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Takes the kept lines.
    pub fn take_lines(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        let mut h = Fnv64::new();
        assert_eq!(h.get(), 0xcbf2_9ce4_8422_2325);
        h.update(b"a");
        assert_eq!(h.get(), 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv64::new();
        h.update(b"foobar");
        assert_eq!(h.get(), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn d1_kept_and_unkept_traces_hash_the_same() {
        let mut a = Trace::new(true);
        let mut b = Trace::new(false);
        for t in [&mut a, &mut b] {
            t.record(Instant(5), "send", format_args!("fsn={}", 3));
            t.record(Instant(9), "ack", format_args!("{:?}", Some(3)));
        }
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.lines(), ["t=5 send fsn=3", "t=9 ack Some(3)"]);
        assert!(b.lines().is_empty());
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn d1_a_different_event_changes_the_hash() {
        let mut a = Trace::new(false);
        let mut b = Trace::new(false);
        a.record(Instant(5), "send", format_args!("fsn=3"));
        b.record(Instant(5), "send", format_args!("fsn=4"));
        assert_ne!(a.hash(), b.hash());
    }
}
