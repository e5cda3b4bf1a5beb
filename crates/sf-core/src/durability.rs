//! Local durability: the durable-FSN tracker fed by sync completions
//! (L1–L5), and the durability mode a slot runs in.

/// How far a published frame must get before the producer is told it is safe
/// (`sf_durability`). The spec defers local durability; this crate implements it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DurabilityMode {
    /// Bytes written to the segment (page cache); no fsync.
    #[default]
    Memory,
    /// `flush()` returns once the batch's bytes are fsynced.
    Flush,
    /// Every frame is fsynced before its append returns.
    Append,
}
