//! Symbol dictionaries: the message's delta, the connection-scoped
//! dictionary a server keeps across messages, and id resolution.

/// The delta symbol dictionary of one message: entry `k` has global id
/// `start + k`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SymbolDelta {
    /// The global id of the first entry.
    pub start: u32,
    /// The declared strings, in id order.
    pub entries: Vec<String>,
}

impl SymbolDelta {
    /// The string this delta declares for `id`, if any.
    pub fn get(&self, id: u64) -> Option<&str> {
        let k = id.checked_sub(u64::from(self.start))?;
        self.entries
            .get(usize::try_from(k).ok()?)
            .map(String::as_str)
    }
}

/// What applying a message's delta did to a connection's dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DictionaryUpdate {
    /// New ids appended at the end.
    pub appended: usize,
    /// Existing ids re-declared with the same string.
    pub redeclared: usize,
    /// Existing ids re-declared with a different string, which replaced the
    /// old one (see the module documentation).
    pub replaced: usize,
}

/// The symbol dictionary a server keeps for one connection: entries
/// accumulate across messages and are dropped when the connection ends.
///
/// A delta with `delta_start` equal to the current size appends; one that
/// starts past it leaves a gap and is refused
/// ([`ErrorKind::SymbolDictionaryGap`](super::ErrorKind::SymbolDictionaryGap));
/// one that starts below it re-declares ids, which servers must accept since
/// store-and-forward frames always restart at id 0 (sf-client §12).
///
/// Re-declaring an id with the same string is a no-op. Re-declaring it with
/// a *different* string replaces the entry (latest declaration wins) and is
/// counted in [`DictionaryUpdate::replaced`]. The spec is silent here;
/// rejecting it would poison legitimate replays, because frames written by
/// an earlier process (or by another client adopting an orphan slot) were
/// encoded with a different dictionary yet are replayed on the same
/// connection as newer frames. A message's own delta always takes precedence
/// for the ids it declares, so every self-sufficient frame decodes exactly as
/// its writer meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionDictionary {
    entries: Vec<String>,
    max_entries: usize,
}

impl ConnectionDictionary {
    /// An empty dictionary holding at most `max_entries` entries (the spec's
    /// default is 1,000,000; ids are u32, so larger limits are capped there).
    pub fn new(max_entries: usize) -> Self {
        ConnectionDictionary {
            entries: Vec::new(),
            max_entries: max_entries.min(u32::MAX as usize),
        }
    }

    /// Number of ids declared so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no id has been declared.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry limit.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// The string for `id`, if declared.
    pub fn get(&self, id: u32) -> Option<&str> {
        self.entries.get(id as usize).map(String::as_str)
    }

    /// Forgets every entry, as on disconnect.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Applies a delta already validated against this dictionary (no gap,
    /// within the limit) by the decode that produced it.
    pub(crate) fn apply(&mut self, delta: &SymbolDelta) -> DictionaryUpdate {
        let mut update = DictionaryUpdate::default();
        let start = delta.start as usize;
        for (k, entry) in delta.entries.iter().enumerate() {
            match self.entries.get_mut(start + k) {
                Some(existing) if existing == entry => update.redeclared += 1,
                Some(existing) => {
                    existing.clone_from(entry);
                    update.replaced += 1;
                }
                None => {
                    self.entries.push(entry.clone());
                    update.appended += 1;
                }
            }
        }
        update
    }
}

impl Default for ConnectionDictionary {
    /// An empty dictionary with the spec's default limit of 1,000,000.
    fn default() -> Self {
        ConnectionDictionary::new(super::DecodeLimits::default().max_symbol_entries)
    }
}

/// Where SYMBOL ids resolve while one message is decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SymbolScope<'a> {
    /// No delta dictionary flag: each SYMBOL column carries its own
    /// dictionary (the per-table form of wire-ingress §12).
    PerColumn,
    /// Delta mode: this message's delta first, then (connection mode only)
    /// the connection's dictionary as it was before this message.
    Delta {
        delta: &'a SymbolDelta,
        connection: Option<&'a [String]>,
    },
}

impl<'a> SymbolScope<'a> {
    /// The string for a global id, if declared in scope.
    pub(crate) fn resolve(&self, id: u64) -> Option<&'a str> {
        match *self {
            SymbolScope::PerColumn => None,
            SymbolScope::Delta { delta, connection } => delta.get(id).or_else(|| {
                connection?
                    .get(usize::try_from(id).ok()?)
                    .map(String::as_str)
            }),
        }
    }
}
