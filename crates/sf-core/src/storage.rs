//! The storage engine: the ring, the durability tracker and the watermark
//! persistence composed behind one sans-IO interface (inputs in, outputs out,
//! `now` passed in). Runs over segment files (SF mode) or memory (no `sf_dir`).
//!
//! # Driving it
//!
//! * The producer calls [`Storage::begin_append`]; on
//!   [`AppendDecision::Place`] it writes the segment header (if
//!   [`Placement::header`] is set) and the frame at the given offset with the
//!   segment codec, then reports the outcome with [`Storage::commit_append`].
//!   On [`AppendDecision::Wait`] it waits until `until` or until the adapter
//!   signals progress (any input may free space), then asks again; at the
//!   deadline the call fails with [`AppendError::Backpressure`] (S6).
//! * The adapter drains [`Storage::poll_output`], performs each
//!   [`StorageOutput`] off the producer's path, and reports the outcome with
//!   [`Storage::io_done`] under the output's [`IoId`]. It calls
//!   [`Storage::handle_timeout`] once [`Storage::poll_timeout`] has passed.
//! * The connection half calls [`Storage::acknowledge`],
//!   [`Storage::set_link_state`], [`Storage::locate`] and
//!   [`Storage::oldest_unacked`].
//!
//! # The cap (S6), exactly
//!
//! *Resident bytes* are the sizes of all log segments (sealed and active)
//! plus every log segment whose unlink has not yet succeeded. A rotation is
//! allowed only if, after it, resident bytes minus the retiring segment (when
//! that one is fully acknowledged and about to be unlinked) stay within
//! `max_total_bytes`. *Slack* is the spares (ready, being created, being
//! installed, or being cleaned up after a failed creation or write): a spare
//! is created only while `resident + slack <= max_total_bytes`, so the whole
//! footprint `resident + slack` never exceeds `max_total_bytes` plus one
//! segment (unless the slot was already larger than that when opened). The
//! transient overshoot is exactly the one new segment installed while the
//! old, fully acknowledged one waits for its unlink. In file-backed mode
//! that wait includes the header sync described under *Unlinking*: the old
//! segment stays resident (and counted) until its successor's header is
//! durable and the unlink has succeeded.
//!
//! # Reclaim (S5)
//!
//! A fully acknowledged last segment is replaced rather than kept once it
//! is sealed or holds at least [`StorageConfig::reclaim_min_bytes`] of
//! frame bytes (files: half a segment by default; memory: never, only at
//! rotation): the core emits [`StorageOutput::InstallHeader`] for a ready
//! spare with `baseSeq = next FSN` (the producer waits with
//! [`WaitReason::Reclaim`]), then moves the old segment out of the log. Its
//! unlink follows the rule below like every other trimmed segment, so the
//! slot still knows where FSNs continue. A smaller acknowledged active
//! segment stays until it fills: a restart skips its frames because
//! `.ack-watermark` records the acknowledgement (S8), and a rotation out of
//! it counts it as retiring under the cap, so it never makes the producer
//! wait (S6). Why not reclaim at once: see
//! [`StorageConfig::default_reclaim_min_bytes`].
//!
//! # Unlinking (S1, S4, S8)
//!
//! Trim removes fully acknowledged segments from the front of the log; the
//! last log segment always stays. In file-backed mode, in every durability
//! mode, a removed segment is unlinked only once the header of the oldest
//! remaining log segment is known durable (a completed sync covered
//! `[0, SEGMENT_HEADER_LEN)`). Until then the core asks for
//! [`StorageOutput::Sync`] of that segment with `from_offset` its synced
//! offset and `upto_offset = SEGMENT_HEADER_LEN` (a durability sync of the
//! same segment already in flight serves too). Why: after a host crash only
//! synced bytes are sure, and the surviving headers are the only record of
//! where FSNs continue; unlinking before a successor's header is durable
//! lets recovery find no segment and restart FSNs below frames that were
//! durable (S1). Why the *oldest* remaining segment and not the newest: its
//! `baseSeq − 1` is at most the acknowledged FSN, so recovery's seed
//! `max(lowestBase − 1, watermark)` cannot exceed the true acknowledgement
//! even if every later segment is lost (S8). A failed header sync is
//! retried with backoff and a rewrite (L5); the unlink stays deferred and
//! the segment stays counted (S4). Memory backing frees at once.
//!
//! # Durability (L1–L5)
//!
//! * `flush` / `append`: the core syncs each segment from its last synced
//!   offset up to its committed frames (headers included, since a fresh
//!   segment's synced offset is 0), so every frame a completed flush (or
//!   append) covered survives a host crash, and FSNs continue above it.
//! * `memory`: no frame is ever synced; only segment headers are, and only
//!   for the unlink rule above. A process crash loses nothing. A host crash
//!   may lose every frame byte that was not yet written back by the OS:
//!   recovery then continues FSNs from what survives — the oldest log
//!   segment whose header is durable, plus whichever of its frames reached
//!   disk whole — or from FSN 0 if no segment survives. The FSNs of lost
//!   frames are handed out again to new frames (S1 holds across process
//!   crashes only), and lost frames that were not acknowledged are never
//!   replayed. The recovered acknowledgement stays at or below the true one
//!   (S8) in the usual case, because of the header rule above and the
//!   watermark rewrite at open below, with one exception the simulator
//!   found: when the host crash loses every frame of a segment but keeps
//!   the (unsynced) header of the next one, the emptied segment looks like
//!   an unused spare and recovery seeds the acknowledgement at the next
//!   header's `baseSeq − 1`. The frames it passes over were lost by the
//!   crash either way (none of them was synced), so nothing that survived
//!   is skipped; the `sf-io-sim` checker counts such runs as `ack_jumps`
//!   and flags them only if a skipped frame had to survive.
//!
//! # Open (S8, L4)
//!
//! [`Storage::open`] continues the recovered log. In file-backed mode,
//! before the first frame of the new life is placed, it makes
//! `.ack-watermark` agree with the recovered acknowledgement, durably (the
//! adapter fsyncs the file, or the directory after the unlink):
//! [`StorageOutput::PersistAckWatermark`] when it is `Some`,
//! [`StorageOutput::RemoveAckWatermark`] when it is `None`.
//! [`Storage::begin_append`] answers [`WaitReason::Opening`] until that
//! completes; a failure is counted and retried with backoff. Without this, a
//! watermark written before a host crash that lost its frames would, after
//! a later crash, mark the new frames that reused those FSNs as
//! acknowledged. Open also asks for a sync of the oldest recovered
//! segment's header (a crash does not say which syncs completed, and it may
//! be the only record of the next FSN), and in `flush` / `append`
//! durability for a sync of every recovered unacknowledged frame, so a
//! quiet producer reaches `durable == published` without appending (L4).

use core::fmt;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use crate::durability::{BatchTicket, DurabilityMode, DurabilityTracker};
use crate::recovery::RecoveredSlot;
use crate::ring::{
    FrameLocation, LogSegment, Ring, SegmentInfo, SegmentName, SegmentState, FRAME_HEADER, HEADER,
};
use crate::{Fsn, Instant, SegmentGen};

/// Where the segments live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// Segment files in a slot directory (SF mode): the adapter creates,
    /// syncs and unlinks files and persists the ack watermark.
    Files,
    /// Memory segments (no `sf_dir`): create means allocate, unlink means
    /// free; no sync, no watermark.
    Memory,
}

/// The storage engine's configuration (sf-client §4.1 keys in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Files or memory.
    pub backing: Backing,
    /// Size of each segment (`sf_max_bytes`).
    pub segment_bytes: u64,
    /// Cap on resident bytes (`sf_max_total_bytes`); see the module docs.
    pub max_total_bytes: u64,
    /// How long a producer may wait at the cap (`sf_append_deadline_millis`).
    pub append_deadline: Duration,
    /// Local durability (`sf_durability`).
    pub durability: DurabilityMode,
    /// Spares kept provisioned ahead of need (at least 1).
    pub spares: usize,
    /// A fully acknowledged active segment is reclaimed before it is full
    /// once it holds at least this many frame bytes (S5). 0 reclaims it as
    /// soon as it is fully acknowledged; `u64::MAX` only at rotation. A full
    /// (or sealed) segment is always reclaimed at rotation regardless, and
    /// the cap counts a fully acknowledged active segment as retiring, so a
    /// cap of one segment never deadlocks (DESIGN §6 item 12).
    ///
    /// Defaults: [`StorageConfig::default_reclaim_min_bytes`]. Set
    /// `segment_bytes` with [`StorageConfig::with_segment_bytes`] to keep
    /// the default in step with the segment size.
    pub reclaim_min_bytes: u64,
}

/// `sf_max_bytes` default.
pub const DEFAULT_SEGMENT_BYTES: u64 = 4 << 20;
/// `sf_max_total_bytes` default in SF mode.
pub const DEFAULT_MAX_TOTAL_BYTES_FILES: u64 = 10 << 30;
/// `sf_max_total_bytes` default in memory mode.
pub const DEFAULT_MAX_TOTAL_BYTES_MEMORY: u64 = 128 << 20;
/// `sf_append_deadline_millis` default.
pub const DEFAULT_APPEND_DEADLINE: Duration = Duration::from_secs(30);
/// Upper bound on `spares`: more buys nothing and would only inflate slack.
pub const MAX_SPARES: usize = 16;

impl StorageConfig {
    /// SF-mode defaults: 4 MiB segments, 10 GiB cap, 30 s deadline.
    pub fn files() -> Self {
        StorageConfig {
            backing: Backing::Files,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES_FILES,
            append_deadline: DEFAULT_APPEND_DEADLINE,
            durability: DurabilityMode::Memory,
            spares: 1,
            reclaim_min_bytes: StorageConfig::default_reclaim_min_bytes(
                Backing::Files,
                DEFAULT_SEGMENT_BYTES,
            ),
        }
    }

    /// Memory-mode defaults: 4 MiB segments, 128 MiB cap, 30 s deadline.
    pub fn memory() -> Self {
        StorageConfig {
            backing: Backing::Memory,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES_MEMORY,
            reclaim_min_bytes: StorageConfig::default_reclaim_min_bytes(
                Backing::Memory,
                DEFAULT_SEGMENT_BYTES,
            ),
            ..StorageConfig::files()
        }
    }

    /// The default early-reclaim threshold ([`StorageConfig::reclaim_min_bytes`])
    /// for a backing and segment size: half a segment for files, never
    /// (`u64::MAX`) for memory.
    ///
    /// Files: an early reclaim costs a whole fresh segment (a file created
    /// and pre-faulted, a segment of dirtied page cache) every time
    /// acknowledgements catch up. Reclaiming at every catch-up held
    /// loopback ingest with `sf_dir` (the `sf_dir_throughput` bench) to
    /// 39–82% of memory mode at 16/4/1 MiB segments against the ≥ 90%
    /// budget (DESIGN §7), dirtying 0.9 GiB per 1.2 M rows at 16 MiB;
    /// from half a segment it measured at or above memory mode (noisy,
    /// shared machine) with 43 MiB dirtied.
    /// A restart still replays nothing acknowledged (S5's purpose, DESIGN
    /// §6 item 11) without the reclaim: `.ack-watermark` follows every
    /// acknowledgement, is rewritten at open and settled by a clean close,
    /// and recovery starts after it (S8). Acknowledged frames of a small
    /// active segment are replayed only when the watermark does not cover
    /// them at the next open: a host crash that loses the unsynced
    /// watermark, a process crash while its write is in flight or waits
    /// out a failed write's retry, a close whose settle wait ended on a
    /// failed write or at its deadline, or a watermark file that cannot be
    /// read at open. Each replays duplicates, never loses a frame.
    ///
    /// Memory: nothing survives a restart, so an early reclaim buys nothing.
    pub fn default_reclaim_min_bytes(backing: Backing, segment_bytes: u64) -> u64 {
        match backing {
            Backing::Files => segment_bytes / 2,
            Backing::Memory => u64::MAX,
        }
    }

    /// This configuration with `segment_bytes` set and `reclaim_min_bytes`
    /// at its default for that size and this backing.
    pub fn with_segment_bytes(self, segment_bytes: u64) -> Self {
        StorageConfig {
            segment_bytes,
            reclaim_min_bytes: StorageConfig::default_reclaim_min_bytes(
                self.backing,
                segment_bytes,
            ),
            ..self
        }
    }

    /// The largest payload a frame may carry in a segment of this size.
    pub fn max_payload_len(&self) -> u64 {
        self.segment_bytes
            .saturating_sub(HEADER + FRAME_HEADER)
            .min(i32::MAX as u64)
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let min = HEADER + FRAME_HEADER;
        if self.segment_bytes < min {
            return Err(ConfigError::SegmentTooSmall {
                segment_bytes: self.segment_bytes,
                min,
            });
        }
        if self.segment_bytes > u64::from(u32::MAX) {
            return Err(ConfigError::SegmentTooLarge {
                segment_bytes: self.segment_bytes,
                max: u64::from(u32::MAX),
            });
        }
        if self.max_total_bytes < self.segment_bytes {
            return Err(ConfigError::CapBelowSegment {
                max_total_bytes: self.max_total_bytes,
                segment_bytes: self.segment_bytes,
            });
        }
        if self.spares == 0 || self.spares > MAX_SPARES {
            return Err(ConfigError::Spares {
                spares: self.spares,
                max: MAX_SPARES,
            });
        }
        if self.backing == Backing::Memory && self.durability != DurabilityMode::Memory {
            return Err(ConfigError::DurabilityNeedsFiles {
                durability: self.durability,
            });
        }
        Ok(())
    }
}

/// A configuration the engine cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The segment cannot hold its header and one frame envelope.
    #[error("sf_max_bytes={segment_bytes} is too small: a segment needs at least {min} bytes (24-byte header + 8-byte frame header)")]
    SegmentTooSmall {
        /// The configured size.
        segment_bytes: u64,
        /// The minimum.
        min: u64,
    },
    /// The segment is larger than the frame index can address.
    #[error("sf_max_bytes={segment_bytes} is too large: at most {max} bytes")]
    SegmentTooLarge {
        /// The configured size.
        segment_bytes: u64,
        /// The maximum.
        max: u64,
    },
    /// The cap cannot hold one segment.
    #[error("sf_max_total_bytes={max_total_bytes} is below sf_max_bytes={segment_bytes}: the cap must hold at least one segment")]
    CapBelowSegment {
        /// The configured cap.
        max_total_bytes: u64,
        /// The configured segment size.
        segment_bytes: u64,
    },
    /// The spare count is out of range.
    #[error("spares={spares} is out of range 1..={max}")]
    Spares {
        /// The configured count.
        spares: usize,
        /// The maximum.
        max: usize,
    },
    /// Memory mode has nothing to sync.
    #[error("sf_durability={durability:?} needs sf_dir: memory segments cannot be synced")]
    DurabilityNeedsFiles {
        /// The configured mode.
        durability: DurabilityMode,
    },
}

/// Why the engine refused to open or rejected an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The configuration is invalid.
    #[error("invalid storage configuration: {0}")]
    Config(#[from] ConfigError),
    /// The recovered slot is not a consistent log (S1, S3).
    #[error("recovered slot is inconsistent: {0}")]
    Recovery(#[from] RecoveryMismatch),
    /// An I/O completion named an id that is not outstanding.
    #[error("I/O completion for unknown or already completed {0}")]
    UnknownIo(IoId),
    /// A completion of the wrong kind (a sync offset for a non-sync output).
    #[error("I/O completion for {id} does not match its operation ({op})")]
    MismatchedOutcome {
        /// The id.
        id: IoId,
        /// The operation that was outstanding.
        op: &'static str,
    },
}

/// A way in which a [`RecoveredSlot`] is not a log the ring can continue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryMismatch {
    /// Two adjacent segments leave an FSN gap or overlap.
    #[error("segment {name} starts at FSN {found}, expected {expected}")]
    Gap {
        /// The segment's file name.
        name: String,
        /// The FSN continuing the previous segment.
        expected: Fsn,
        /// Its base FSN.
        found: Fsn,
    },
    /// `next_fsn` does not continue the last segment.
    #[error("next FSN {found} does not follow the last segment (expected {expected})")]
    NextFsn {
        /// One past the last recovered frame.
        expected: Fsn,
        /// The recovered `next_fsn`.
        found: Fsn,
    },
    /// A segment's frame offsets are not a packed, ascending index inside it.
    #[error("segment {name}: {detail}")]
    Frames {
        /// The segment's file name.
        name: String,
        /// What is wrong.
        detail: &'static str,
    },
    /// The acknowledged FSN is beyond the recovered frames or below the log.
    #[error(
        "acknowledged FSN {acked} is outside [lowest base - 1, published] = [{low}, {published}]"
    )]
    Acked {
        /// The recovered acked FSN (spec form, −1 for none).
        acked: i64,
        /// Lowest base − 1 (spec form).
        low: i64,
        /// Published FSN (spec form).
        published: i64,
    },
    /// The next generation would collide with an existing file.
    #[error("next generation {next} is not above existing generation {existing}")]
    Generation {
        /// The recovered `next_gen`.
        next: SegmentGen,
        /// An existing generation at or above it.
        existing: SegmentGen,
    },
}

/// Correlates an output with its completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IoId(pub u64);

impl fmt::Display for IoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "io#{}", self.0)
    }
}

/// Why an I/O operation failed, as the adapter reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IoFailure {
    /// ENOSPC or an equivalent allocation failure.
    #[error("no space left")]
    NoSpace,
    /// Any other I/O error, with the OS error code when there is one.
    #[error("I/O error (os error {os_code:?})")]
    Io {
        /// The OS error code.
        os_code: Option<i32>,
    },
}

/// The outcome of an output, fed back with [`Storage::io_done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOutcome {
    /// The operation succeeded (for a sync: up to the requested offset).
    Done,
    /// A sync succeeded up to `upto_offset`, which may be lower than
    /// requested and may lie inside a frame (page granularity); it is
    /// rounded down to whole frames (L2) and capped at the request.
    Synced {
        /// Bytes `[0, upto_offset)` of the segment are durable.
        upto_offset: u64,
    },
    /// The operation failed.
    Failed(IoFailure),
}

/// A storage operation for the adapter to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageOutput {
    /// Create segment `gen` of `size` bytes, zero-filled at full size and
    /// pre-faulted (memory: allocate zeroed). No header yet: it is written
    /// at install time. On failure the adapter releases whatever the
    /// attempt acquired; the core then asks to unlink the name anyway.
    CreateSegment {
        /// Correlation id.
        id: IoId,
        /// The new segment's generation.
        gen: SegmentGen,
        /// Its size in bytes.
        size: u64,
    },
    /// Write the segment header of spare `gen` with `baseSeq = base_fsn`,
    /// making it the active segment (reclaim of a fully acknowledged active
    /// segment, S5). The producer waits meanwhile.
    InstallHeader {
        /// Correlation id.
        id: IoId,
        /// The spare's generation.
        gen: SegmentGen,
        /// The FSN its first frame will receive.
        base_fsn: Fsn,
    },
    /// Make bytes `[0, upto_offset)` of segment `name` durable (fsync /
    /// msync). Bytes below `from_offset` are already durable. With
    /// `rewrite`, the previous sync of this segment failed: its pages may be
    /// lost or marked clean, so rewrite `[from_offset, upto_offset)` from the
    /// adapter's buffer before syncing (L5).
    Sync {
        /// Correlation id.
        id: IoId,
        /// The segment.
        name: SegmentName,
        /// Already durable below this offset.
        from_offset: u64,
        /// Sync up to this offset: the committed frames at request time, or
        /// `SEGMENT_HEADER_LEN` for a header-only sync (the unlink rule and
        /// open, see the module docs).
        upto_offset: u64,
        /// The previous sync of this segment failed.
        rewrite: bool,
    },
    /// Unlink (memory: free) segment `name`. A missing file counts as
    /// success.
    Unlink {
        /// Correlation id.
        id: IoId,
        /// The segment.
        name: SegmentName,
    },
    /// Store `fsn` in `.ack-watermark` (sf-client §5.4). Without `durable`
    /// no fsync is needed (a lost write only replays acknowledged frames).
    PersistAckWatermark {
        /// Correlation id.
        id: IoId,
        /// The acknowledged FSN.
        fsn: Fsn,
        /// Fsync the file before reporting done: set for the rewrite at
        /// open, which must survive a host crash (see the module docs, S8).
        durable: bool,
    },
    /// Remove `.ack-watermark` (sf-client §5.4 allows it); a missing file
    /// counts as success. Emitted at open when the recovered slot has no
    /// acknowledged FSN, so a watermark left by an earlier life cannot
    /// describe frames this life publishes under reused FSNs (S8).
    RemoveAckWatermark {
        /// Correlation id.
        id: IoId,
        /// Fsync the slot directory before reporting done (always set:
        /// the removal happens only at open).
        durable: bool,
    },
}

impl StorageOutput {
    /// The correlation id to report this operation's outcome with.
    pub fn id(&self) -> IoId {
        match *self {
            StorageOutput::CreateSegment { id, .. }
            | StorageOutput::InstallHeader { id, .. }
            | StorageOutput::Sync { id, .. }
            | StorageOutput::Unlink { id, .. }
            | StorageOutput::PersistAckWatermark { id, .. }
            | StorageOutput::RemoveAckWatermark { id, .. } => id,
        }
    }
}

/// The state of the wire, as the connection half reports it; it shapes the
/// backpressure error (sf-client §16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Connected and sending: the server acknowledges slowly.
    Up,
    /// In the reconnect loop (before the first connect too, with 0 attempts).
    Reconnecting {
        /// Connection attempts made in this outage.
        attempts: u32,
        /// When the outage started.
        outage_started: Instant,
    },
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkState::Up => write!(
                f,
                "while the wire is publishing: the server is acknowledging slowly"
            ),
            LinkState::Reconnecting {
                attempts,
                outage_started,
            } => write!(
                f,
                "while reconnecting: {attempts} attempt(s) since the outage started at t={}ns",
                outage_started.as_nanos()
            ),
        }
    }
}

/// Why the producer must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Rotating would exceed the cap until acknowledgements trim (S6).
    Cap {
        /// Resident bytes now.
        resident: u64,
        /// `max_total_bytes`.
        cap: u64,
    },
    /// The next segment is not ready yet (its creation is in progress or
    /// backing off after a failure).
    NoSpare {
        /// The last creation failure, if any.
        last_failure: Option<IoFailure>,
    },
    /// A fully acknowledged active segment is being replaced (S5).
    Reclaim,
    /// The engine was just opened and is making `.ack-watermark` agree with
    /// the recovered acknowledgement before the first frame of this life is
    /// placed (S8); retried with backoff if that write fails.
    Opening {
        /// The last failure of that write, if any.
        last_failure: Option<IoFailure>,
    },
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::Cap { resident, cap } => write!(
                f,
                "storage cap reached ({resident} resident bytes, sf_max_total_bytes={cap})"
            ),
            WaitReason::NoSpare {
                last_failure: Some(e),
            } => write!(f, "no segment available: creating one failed ({e})"),
            WaitReason::NoSpare { last_failure: None } => {
                write!(f, "no segment available: creation still in progress")
            }
            WaitReason::Reclaim => write!(f, "active segment being reclaimed"),
            WaitReason::Opening {
                last_failure: Some(e),
            } => write!(
                f,
                "opening: rewriting the ack watermark to the recovered state failed ({e})"
            ),
            WaitReason::Opening { last_failure: None } => write!(
                f,
                "opening: the ack watermark is being rewritten to the recovered state"
            ),
        }
    }
}

/// The append deadline passed while waiting (S6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backpressure {
    /// The state of the wire when the deadline passed.
    pub link: LinkState,
    /// Why the producer was waiting.
    pub reason: WaitReason,
    /// How long it waited.
    pub waited: Duration,
}

impl fmt::Display for Backpressure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "append deadline exceeded after {} ms: {}, {}",
            self.waited.as_millis(),
            self.reason,
            self.link
        )
    }
}

/// Write the segment header first (installing a spare with its `baseSeq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeaderToWrite {
    /// The header's `baseSeq`: the FSN of the frame being placed.
    pub base_fsn: Fsn,
}

/// Where to write the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The FSN the frame receives once committed.
    pub fsn: Fsn,
    /// The segment to write into.
    pub gen: SegmentGen,
    /// Offset of the frame envelope in that segment.
    pub offset: u64,
    /// The payload length the placement was made for.
    pub payload_len: u32,
    /// If set, write this header at offset 0 before the frame.
    pub header: Option<SegmentHeaderToWrite>,
}

/// The answer to [`Storage::begin_append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendDecision {
    /// Write the frame there, then call [`Storage::commit_append`].
    Place(Placement),
    /// Ask again at `until` or when the adapter signals progress.
    Wait {
        /// The append deadline.
        until: Instant,
        /// What is awaited.
        reason: WaitReason,
    },
}

/// A committed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Its FSN.
    pub fsn: Fsn,
    /// In append durability, the ticket to wait on before the append
    /// returns; `None` in the other modes.
    pub ticket: Option<BatchTicket>,
}

/// Why an append did not happen. The FSN never advances on an error (S7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The frame cannot fit in any segment.
    #[error("frame payload of {payload_len} bytes exceeds the maximum of {max} for sf_max_bytes")]
    FrameTooLarge {
        /// The payload length asked for.
        payload_len: u64,
        /// The maximum payload.
        max: u64,
    },
    /// `begin_append` was called while a placement is not committed.
    #[error("an append of FSN {fsn} is still in progress")]
    AppendInProgress {
        /// The uncommitted FSN.
        fsn: Fsn,
    },
    /// `commit_append` named a placement that is not the outstanding one.
    #[error("commit for a placement that is not outstanding")]
    UnknownPlacement,
    /// Writing the frame failed; nothing was published and the caller keeps
    /// the bytes. The segment is retired and the next attempt goes to a
    /// fresh one.
    #[error("writing frame {fsn} failed ({failure}); the frame was not published")]
    WriteFailed {
        /// The FSN the frame would have received.
        fsn: Fsn,
        /// The adapter's error.
        failure: IoFailure,
    },
    /// The append deadline passed while waiting.
    #[error("{0}")]
    Backpressure(Backpressure),
}

/// Counts of failed operations, so no retry is silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoFailureCounts {
    /// Segment creations.
    pub create: u64,
    /// Header installs (reclaim).
    pub install: u64,
    /// Frame writes.
    pub write: u64,
    /// Syncs.
    pub sync: u64,
    /// Unlinks.
    pub unlink: u64,
    /// Watermark writes.
    pub watermark: u64,
    /// Appends that failed with backpressure.
    pub backpressure: u64,
}

/// Deterministic exponential retry delay (no jitter: these retries target
/// the local disk, not a shared server).
#[derive(Debug, Clone, Copy, Default)]
struct RetryBackoff {
    failures: u32,
}

impl RetryBackoff {
    const INITIAL: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn fail(&mut self, now: Instant) -> Instant {
        let shift = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let d = Self::INITIAL
            .checked_mul(1u32 << shift)
            .unwrap_or(Self::MAX)
            .min(Self::MAX);
        now.saturating_add(d)
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A created, not yet installed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spare {
    gen: SegmentGen,
    size: u64,
}

/// Whether an unlink-pending segment counts as resident (it held log data)
/// or as slack (a spare that never held committed frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteClass {
    Resident,
    Slack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnlinkState {
    Due,
    InFlight(IoId),
    RetryAt(Instant),
}

#[derive(Debug, Clone)]
struct Unlinking {
    name: SegmentName,
    size: u64,
    class: ByteClass,
    state: UnlinkState,
    backoff: RetryBackoff,
}

#[derive(Debug, Clone, Copy)]
enum PendingIo {
    Create {
        gen: SegmentGen,
    },
    Install {
        spare: Spare,
    },
    /// `written`: the segment's append offset when the sync was asked for.
    Sync {
        name: SegmentName,
        upto: u64,
        written: u64,
    },
    Unlink {
        name: SegmentName,
    },
    Watermark {
        fsn: Fsn,
    },
    RemoveWatermark,
}

impl PendingIo {
    fn op(&self) -> &'static str {
        match self {
            PendingIo::Create { .. } => "create",
            PendingIo::Install { .. } => "install header",
            PendingIo::Sync { .. } => "sync",
            PendingIo::Unlink { .. } => "unlink",
            PendingIo::Watermark { .. } => "persist watermark",
            PendingIo::RemoveWatermark => "remove watermark",
        }
    }
}

/// The sans-IO storage engine. See the module docs.
#[derive(Debug)]
pub struct Storage {
    config: StorageConfig,
    ring: Ring,
    durability: DurabilityTracker,
    ready: VecDeque<Spare>,
    creating: usize,
    reclaim: Option<Spare>,
    unlinking: Vec<Unlinking>,
    pending_io: BTreeMap<IoId, PendingIo>,
    outputs: VecDeque<StorageOutput>,
    next_io: u64,
    next_gen: SegmentGen,
    /// Bytes of log segments plus resident-class unlink-pending ones.
    resident: u64,
    pending_append: Option<Placement>,
    wait_since: Option<Instant>,
    link: LinkState,
    create_backoff: RetryBackoff,
    create_retry_at: Option<Instant>,
    last_create_failure: Option<IoFailure>,
    sync_backoff: RetryBackoff,
    sync_retry_at: Option<Instant>,
    /// What `.ack-watermark` is known to hold (`None`: absent or unknown).
    watermark_persisted: Option<Fsn>,
    /// File-backed open: the on-disk watermark has not yet been made to
    /// agree with the recovered acknowledgement; appends wait (S8).
    watermark_open_rewrite: bool,
    /// File-backed open over a non-empty log: the oldest segment's header
    /// is not known durable (a crash does not say which syncs completed)
    /// and it may be the only record of where FSNs continue (S1).
    front_header_owed: bool,
    last_watermark_failure: Option<IoFailure>,
    watermark_in_flight: bool,
    watermark_backoff: RetryBackoff,
    watermark_retry_at: Option<Instant>,
    failures: IoFailureCounts,
}

impl Storage {
    /// Opens the engine over a recovered slot (memory mode and fresh slots:
    /// [`RecoveredSlot::empty`]) and queues the first outputs (spare
    /// creation, trims the recovered acknowledgement allows, and in
    /// file-backed mode the watermark rewrite and header sync described in
    /// the module docs under *Open*).
    pub fn open(
        config: StorageConfig,
        recovered: RecoveredSlot,
        now: Instant,
    ) -> Result<Storage, StorageError> {
        config.validate()?;
        check_recovered(&recovered)?;
        let RecoveredSlot {
            segments,
            leftover_spares,
            next_fsn,
            acked,
            next_gen,
        } = recovered;
        let mut log = VecDeque::with_capacity(segments.len());
        let mut resident = 0u64;
        for seg in &segments {
            let starts = seg
                .frame_offsets
                .iter()
                .map(|o| u32::try_from(*o).unwrap_or(u32::MAX))
                .collect();
            let mut ls = LogSegment::recovered(seg, starts);
            // Only the last segment may take frames, and never one beside a
            // torn tail or under the legacy name (it has no generation to
            // place frames by).
            ls.sealed = seg.torn_tail_bytes > 0 || seg.gen.is_none();
            if let Some(prev) = log.back_mut() {
                let prev: &mut LogSegment = prev;
                prev.sealed = true;
            }
            resident = resident.saturating_add(ls.size);
            log.push_back(ls);
        }
        // With no segment left, every published frame was trimmed: nothing
        // remains to replay whatever the watermark said.
        let acked = if log.is_empty() {
            next_fsn.prev()
        } else {
            acked
        };
        let ring = Ring {
            log,
            next_fsn,
            acked,
            index_pool: Vec::new(),
        };
        let published = ring.published();
        let ring_empty = ring.log.is_empty();
        let mut storage = Storage {
            durability: DurabilityTracker::new(config.durability, acked, published),
            ring,
            ready: VecDeque::new(),
            creating: 0,
            reclaim: None,
            unlinking: Vec::new(),
            pending_io: BTreeMap::new(),
            outputs: VecDeque::new(),
            next_io: 0,
            next_gen,
            resident,
            pending_append: None,
            wait_since: None,
            link: LinkState::Reconnecting {
                attempts: 0,
                outage_started: now,
            },
            create_backoff: RetryBackoff::default(),
            create_retry_at: None,
            last_create_failure: None,
            sync_backoff: RetryBackoff::default(),
            sync_retry_at: None,
            // Unknown until the open rewrite completes (files); memory
            // backing has no watermark at all.
            watermark_persisted: None,
            watermark_open_rewrite: config.backing == Backing::Files,
            front_header_owed: config.backing == Backing::Files && !ring_empty,
            last_watermark_failure: None,
            watermark_in_flight: false,
            watermark_backoff: RetryBackoff::default(),
            watermark_retry_at: None,
            failures: IoFailureCounts::default(),
            config,
        };
        for spare in leftover_spares {
            let reuse = spare.file_size == storage.config.segment_bytes
                && storage.ready.len() < storage.config.spares;
            if reuse {
                storage.ready.push_back(Spare {
                    gen: spare.gen,
                    size: spare.file_size,
                });
            } else {
                storage.unlinking.push(Unlinking {
                    name: SegmentName::Gen(spare.gen),
                    size: spare.file_size,
                    class: ByteClass::Slack,
                    state: UnlinkState::Due,
                    backoff: RetryBackoff::default(),
                });
            }
        }
        // L4: what an earlier life left is on disk, but whether it reached
        // stable storage is unknown; a syncing mode owes it a sync now
        // rather than at the next flush.
        storage.durability.owe_recovered();
        storage.trim();
        storage.drive(now);
        Ok(storage)
    }

    // ----- producer path -------------------------------------------------

    /// Decides where a frame of `payload_len` bytes goes, or that the
    /// producer must wait (cap, spare, reclaim), or — at the deadline — fails
    /// with [`AppendError::Backpressure`]. Allocates nothing.
    pub fn begin_append(
        &mut self,
        now: Instant,
        payload_len: u64,
    ) -> Result<AppendDecision, AppendError> {
        if let Some(p) = self.pending_append {
            return Err(AppendError::AppendInProgress { fsn: p.fsn });
        }
        let max = self.config.max_payload_len();
        if payload_len > max {
            return Err(AppendError::FrameTooLarge { payload_len, max });
        }
        if self.watermark_open_rewrite {
            // S8: a stale watermark from an earlier life must not survive
            // into a crash after this life has reused its FSNs.
            return self.wait(
                now,
                WaitReason::Opening {
                    last_failure: self.last_watermark_failure,
                },
            );
        }
        // Bounded by `max`, which fits i32.
        let len32 = u32::try_from(payload_len).unwrap_or(u32::MAX);
        let total = FRAME_HEADER + payload_len;
        let fsn = self.ring.next_fsn;
        let in_active = match self.ring.active() {
            Some(a) if self.reclaim.is_none() && a.fits(total) => match a.name {
                SegmentName::Gen(gen) => Some((gen, a.append)),
                SegmentName::LegacyInitial => None,
            },
            _ => None,
        };
        if let Some((gen, offset)) = in_active {
            return Ok(self.place(Placement {
                fsn,
                gen,
                offset,
                payload_len: len32,
                header: None,
            }));
        }
        match self.rotation_blocker(total) {
            None => match self.ready.front() {
                Some(spare) => {
                    let gen = spare.gen;
                    Ok(self.place(Placement {
                        fsn,
                        gen,
                        offset: HEADER,
                        payload_len: len32,
                        header: Some(SegmentHeaderToWrite { base_fsn: fsn }),
                    }))
                }
                None => self.wait(
                    now,
                    WaitReason::NoSpare {
                        last_failure: self.last_create_failure,
                    },
                ),
            },
            Some(reason) => self.wait(now, reason),
        }
    }

    fn place(&mut self, placement: Placement) -> AppendDecision {
        self.wait_since = None;
        self.pending_append = Some(placement);
        AppendDecision::Place(placement)
    }

    fn wait(&mut self, now: Instant, reason: WaitReason) -> Result<AppendDecision, AppendError> {
        let since = *self.wait_since.get_or_insert(now);
        let until = since.saturating_add(self.config.append_deadline);
        if now >= until {
            self.wait_since = None;
            self.failures.backpressure += 1;
            return Err(AppendError::Backpressure(Backpressure {
                link: self.link,
                reason,
                waited: now.saturating_duration_since(since),
            }));
        }
        Ok(AppendDecision::Wait { until, reason })
    }

    /// Why rotating onto the next spare is not possible now, if it is not.
    fn rotation_blocker(&self, total: u64) -> Option<WaitReason> {
        if self.reclaim.is_some() {
            return Some(WaitReason::Reclaim);
        }
        let spare_size = self
            .ready
            .front()
            .map_or(self.config.segment_bytes, |s| s.size);
        if HEADER + total > spare_size {
            // Only reachable with a reused spare smaller than the config;
            // leftover spares are reused only at exactly segment_bytes.
            return Some(WaitReason::NoSpare {
                last_failure: self.last_create_failure,
            });
        }
        let retiring = self
            .ring
            .log
            .back()
            .filter(|s| s.fully_acked(self.ring.acked))
            .map_or(0, |s| s.size);
        let after = self.resident.saturating_sub(retiring) + spare_size;
        (after > self.config.max_total_bytes).then_some(WaitReason::Cap {
            resident: self.resident,
            cap: self.config.max_total_bytes,
        })
    }

    /// Reports the outcome of writing the placed frame. On success the frame
    /// is published under `placement.fsn`. On failure nothing is published,
    /// the FSN does not advance and the written-into segment is retired (a
    /// spare being installed is cleaned up, an active segment is sealed), so
    /// a retry never writes beside a partial frame (S7).
    pub fn commit_append(
        &mut self,
        now: Instant,
        placement: Placement,
        result: Result<(), IoFailure>,
    ) -> Result<Committed, AppendError> {
        if self.pending_append != Some(placement) {
            return Err(AppendError::UnknownPlacement);
        }
        self.pending_append = None;
        if let Err(failure) = result {
            self.failures.write += 1;
            if placement.header.is_some() {
                if let Some(i) = self.ready.iter().position(|s| s.gen == placement.gen) {
                    if let Some(spare) = self.ready.remove(i) {
                        self.push_unlink(SegmentName::Gen(spare.gen), spare.size, ByteClass::Slack);
                    }
                }
            } else if let Some(active) = self.ring.active_mut() {
                active.sealed = true;
            }
            self.drive(now);
            return Err(AppendError::WriteFailed {
                fsn: placement.fsn,
                failure,
            });
        }
        if placement.header.is_some() {
            let Some(i) = self.ready.iter().position(|s| s.gen == placement.gen) else {
                return Err(AppendError::UnknownPlacement);
            };
            let Some(spare) = self.ready.remove(i) else {
                return Err(AppendError::UnknownPlacement);
            };
            self.install(spare, placement.fsn);
        }
        let Some(active) = self.ring.active_mut() else {
            return Err(AppendError::UnknownPlacement);
        };
        // Offsets fit u32: segment sizes are validated to.
        active
            .starts
            .push(u32::try_from(placement.offset).unwrap_or(u32::MAX));
        active.append = placement.offset + FRAME_HEADER + u64::from(placement.payload_len);
        self.ring.next_fsn = placement.fsn.next();
        let ticket = self.durability.on_commit(placement.fsn);
        if placement.header.is_some() {
            self.trim();
            self.drive(now);
        } else if ticket.is_some() {
            self.drive_syncs(now);
        }
        Ok(Committed {
            fsn: placement.fsn,
            ticket,
        })
    }

    /// Makes `spare` the active segment with `baseSeq = base`, sealing the
    /// previous last segment.
    fn install(&mut self, spare: Spare, base: Fsn) {
        if let Some(last) = self.ring.log.back_mut() {
            last.sealed = true;
        }
        let index = self.ring.take_index();
        self.ring.log.push_back(LogSegment::installed(
            SegmentName::Gen(spare.gen),
            base,
            spare.size,
            index,
        ));
        self.resident = self.resident.saturating_add(spare.size);
    }

    /// Closes the current batch (a `flush()`): every frame committed since
    /// the previous call. Wait with [`Storage::is_batch_done`]; in flush
    /// durability the core requests the sync itself (L4).
    pub fn end_batch(&mut self, now: Instant) -> BatchTicket {
        let ticket = self.durability.end_batch(self.ring.published());
        self.drive_syncs(now);
        ticket
    }

    /// Whether the batch is done per the durability mode (C1).
    pub fn is_batch_done(&self, ticket: BatchTicket) -> bool {
        self.durability.is_done(ticket)
    }

    // ----- connection half -----------------------------------------------

    /// The trim driver acknowledged every frame up to `fsn`. Values at or
    /// below the current acknowledgement are ignored; values above the
    /// published FSN are clamped to it.
    pub fn acknowledge(&mut self, now: Instant, fsn: Fsn) {
        let Some(published) = self.ring.published() else {
            return;
        };
        let fsn = fsn.min(published);
        if self.ring.acked.is_some_and(|a| fsn <= a) {
            return;
        }
        self.ring.acked = Some(fsn);
        self.trim();
        self.durability
            .advance(self.ring.durable_frontier(), self.ring.published());
        self.drive(now);
    }

    /// Records the wire's state for the backpressure error.
    pub fn set_link_state(&mut self, _now: Instant, link: LinkState) {
        self.link = link;
    }

    /// Where a published, unacknowledged frame sits.
    pub fn locate(&self, fsn: Fsn) -> Option<FrameLocation> {
        self.ring.locate(fsn)
    }

    /// The lowest published FSN not yet acknowledged (where replay starts),
    /// or `None` when everything published is acknowledged. Unlink-pending
    /// segments are never counted (DESIGN §6 item 9).
    pub fn oldest_unacked(&self) -> Option<Fsn> {
        self.ring.oldest_unacked()
    }

    // ----- adapter I/O -----------------------------------------------------

    /// The next storage operation to perform.
    pub fn poll_output(&mut self) -> Option<StorageOutput> {
        self.outputs.pop_front()
    }

    /// When [`Storage::handle_timeout`] should next be called (a retry).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if self.provisioning_wanted() {
            take(self.create_retry_at);
        }
        if self.durability.sync_target().is_some() || self.header_sync_owed() {
            take(self.sync_retry_at);
        }
        let watermark_owed =
            self.watermark_open_rewrite || self.ring.acked > self.watermark_persisted;
        if watermark_owed && !self.watermark_in_flight {
            take(self.watermark_retry_at);
        }
        let front_durable = self.front_header_durable();
        for u in &self.unlinking {
            if let UnlinkState::RetryAt(at) = u.state {
                // A gated unlink waits for a header sync, not for its timer;
                // reporting its timer would make the adapter spin.
                if front_durable || !self.unlink_gated(u) {
                    take(Some(at));
                }
            }
        }
        t
    }

    /// Runs the retries that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive(now);
    }

    /// Feeds the outcome of output `id`.
    pub fn io_done(
        &mut self,
        now: Instant,
        id: IoId,
        outcome: IoOutcome,
    ) -> Result<(), StorageError> {
        let Some(op) = self.pending_io.get(&id).copied() else {
            return Err(StorageError::UnknownIo(id));
        };
        if matches!(outcome, IoOutcome::Synced { .. }) && !matches!(op, PendingIo::Sync { .. }) {
            return Err(StorageError::MismatchedOutcome { id, op: op.op() });
        }
        self.pending_io.remove(&id);
        let failure = match outcome {
            IoOutcome::Failed(f) => Some(f),
            IoOutcome::Done | IoOutcome::Synced { .. } => None,
        };
        match op {
            PendingIo::Create { gen } => {
                self.creating = self.creating.saturating_sub(1);
                match failure {
                    None => {
                        self.create_backoff.reset();
                        self.last_create_failure = None;
                        self.ready.push_back(Spare {
                            gen,
                            size: self.config.segment_bytes,
                        });
                    }
                    Some(f) => {
                        // Account the failed attempt: whatever it left behind
                        // is unlinked before another creation starts, so
                        // repeated failures never pile up (DESIGN §6 item 3).
                        self.failures.create += 1;
                        self.last_create_failure = Some(f);
                        self.create_retry_at = Some(self.create_backoff.fail(now));
                        self.push_unlink(
                            SegmentName::Gen(gen),
                            self.config.segment_bytes,
                            ByteClass::Slack,
                        );
                    }
                }
            }
            PendingIo::Install { spare } => {
                self.reclaim = None;
                match failure {
                    None => {
                        self.install(spare, self.ring.next_fsn);
                        self.trim();
                    }
                    Some(f) => {
                        self.failures.install += 1;
                        self.last_create_failure = Some(f);
                        self.create_retry_at = Some(self.create_backoff.fail(now));
                        self.push_unlink(SegmentName::Gen(spare.gen), spare.size, ByteClass::Slack);
                    }
                }
            }
            PendingIo::Sync {
                name,
                upto,
                written,
            } => {
                if let Some(seg) = self.ring.log.iter_mut().rev().find(|s| s.name == name) {
                    seg.sync_in_flight = false;
                    match outcome {
                        IoOutcome::Failed(_) => {
                            // L5: the confirmed offset stays where it was; the
                            // failed range is re-synced (with a rewrite) and
                            // only a later success can cover it.
                            seg.rewrite = true;
                        }
                        // L5: a failed fsync may drop every dirty page of
                        // the file, not only the range it was asked for, so
                        // a rewrite that stopped short of what was written
                        // when it was asked for (a header-only retry) leaves
                        // the rest owed: the next sync rewrites it too.
                        // Bytes appended after the request were written
                        // after the failure and are dirty on their own, so
                        // they do not keep the rewrite owed (it would cost
                        // a rewrite per sync until the segment seals).
                        IoOutcome::Done => {
                            seg.synced = seg.synced.max(upto);
                            seg.rewrite = seg.rewrite && upto < written;
                        }
                        IoOutcome::Synced { upto_offset } => {
                            seg.synced = seg.synced.max(upto_offset.min(upto));
                            seg.rewrite = seg.rewrite && upto < written;
                        }
                    }
                }
                match failure {
                    None => self.sync_backoff.reset(),
                    Some(_) => {
                        self.failures.sync += 1;
                        self.sync_retry_at = Some(self.sync_backoff.fail(now));
                    }
                }
                self.durability
                    .advance(self.ring.durable_frontier(), self.ring.published());
            }
            PendingIo::Unlink { name } => {
                if let Some(i) = self.unlinking.iter().position(|u| u.name == name) {
                    match failure {
                        None => {
                            // `remove`, not `swap_remove`: the order is
                            // the unlink order (see `drive_unlinks`).
                            let u = self.unlinking.remove(i);
                            if u.class == ByteClass::Resident {
                                self.resident = self.resident.saturating_sub(u.size);
                            }
                        }
                        Some(_) => {
                            // S4: still counted, still out of the log, retried.
                            self.failures.unlink += 1;
                            if let Some(u) = self.unlinking.get_mut(i) {
                                u.state = UnlinkState::RetryAt(u.backoff.fail(now));
                            }
                        }
                    }
                }
            }
            PendingIo::Watermark { .. } | PendingIo::RemoveWatermark => {
                self.watermark_in_flight = false;
                match failure {
                    None => {
                        self.watermark_backoff.reset();
                        self.last_watermark_failure = None;
                        let written = match op {
                            PendingIo::Watermark { fsn } => Some(fsn),
                            _ => None,
                        };
                        // The open rewrite replaces whatever an earlier life
                        // left, so it sets the known value exactly; later
                        // writes only ever raise it.
                        self.watermark_persisted = if self.watermark_open_rewrite {
                            written
                        } else {
                            self.watermark_persisted.max(written)
                        };
                        self.watermark_open_rewrite = false;
                    }
                    Some(f) => {
                        self.failures.watermark += 1;
                        self.last_watermark_failure = Some(f);
                        self.watermark_retry_at = Some(self.watermark_backoff.fail(now));
                    }
                }
            }
        }
        self.drive(now);
        Ok(())
    }

    // ----- getters -----------------------------------------------------------

    /// The highest committed FSN, `None` when nothing was ever published.
    pub fn published_fsn(&self) -> Option<Fsn> {
        self.ring.published()
    }

    /// Whether `.ack-watermark` already says what is acknowledged (always
    /// true for memory backing): no write is owed or in flight. A close that
    /// releases before this would let a restart replay the frames acknowledged
    /// since the last completed write (S8, sf-client §5.4).
    pub fn ack_watermark_settled(&self) -> bool {
        self.config.backing != Backing::Files
            || (!self.watermark_in_flight
                && !self.watermark_open_rewrite
                && self.ring.acked <= self.watermark_persisted)
    }

    /// Issues the owed `.ack-watermark` write now (if one is owed and none
    /// is in flight), even while a failed one waits out its retry backoff:
    /// a closing engine waits a bounded time for it (S8, W5) and must not
    /// spend that time on a timer meant for the steady state.
    pub fn expedite_ack_watermark(&mut self, now: Instant) {
        self.watermark_retry_at = None;
        self.drive_watermark(now);
    }

    /// The highest acknowledged FSN.
    pub fn acked_fsn(&self) -> Option<Fsn> {
        self.ring.acked
    }

    /// The highest FSN whose `.ack-watermark` write the adapter confirmed
    /// in this life (`None`: none yet). Lets a caller that is about to
    /// release the slot see whether a reopen would start from it.
    pub fn watermark_persisted(&self) -> Option<Fsn> {
        self.watermark_persisted
    }

    /// The durable FSN (L1): frames up to it are synced or acknowledged.
    /// In memory durability nothing is synced, so it follows the
    /// acknowledgements only.
    pub fn durable_fsn(&self) -> Option<Fsn> {
        self.durability.durable()
    }

    /// The FSN the next frame receives.
    pub fn next_fsn(&self) -> Fsn {
        self.ring.next_fsn
    }

    /// Resident bytes (see the module docs on the cap).
    pub fn resident_bytes(&self) -> u64 {
        self.resident
    }

    /// Slack bytes: spares ready, being created or installed, or being
    /// cleaned up.
    pub fn slack_bytes(&self) -> u64 {
        let ready: u64 = self.ready.iter().map(|s| s.size).sum();
        let unl: u64 = self
            .unlinking
            .iter()
            .filter(|u| u.class == ByteClass::Slack)
            .map(|u| u.size)
            .sum();
        ready
            + unl
            + self.reclaim.map_or(0, |s| s.size)
            + self.creating as u64 * self.config.segment_bytes
    }

    /// The configuration.
    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    /// Every segment the engine knows: the log (ascending FSN), then
    /// unlink-pending segments, then spares.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let n = self.ring.log.len();
        let mut v: Vec<SegmentInfo> = self
            .ring
            .log
            .iter()
            .enumerate()
            .map(|(i, s)| s.info(i + 1 == n && !s.sealed))
            .collect();
        v.extend(self.unlinking.iter().map(|u| SegmentInfo {
            name: u.name,
            base_fsn: None,
            frame_count: 0,
            append_offset: 0,
            size: u.size,
            state: SegmentState::UnlinkPending,
        }));
        v.extend(
            self.ready
                .iter()
                .chain(self.reclaim.iter())
                .map(|s| SegmentInfo {
                    name: SegmentName::Gen(s.gen),
                    base_fsn: None,
                    frame_count: 0,
                    append_offset: 0,
                    size: s.size,
                    state: SegmentState::Spare,
                }),
        );
        v
    }

    /// The frame start offsets of log segment `name` (what a recovery scan
    /// of it would find), or `None` if it is not in the log.
    pub fn frame_offsets(&self, name: SegmentName) -> Option<Vec<u64>> {
        self.ring
            .log
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.starts.iter().map(|o| u64::from(*o)).collect())
    }

    /// Outputs emitted and not yet completed.
    pub fn outstanding_io(&self) -> usize {
        self.pending_io.len()
    }

    /// Segments being created, installed, or cleaned up after a failed
    /// creation or write: never more than `spares` (DESIGN §6 item 3).
    pub fn provisioning_in_flight(&self) -> usize {
        self.creating
            + usize::from(self.reclaim.is_some())
            + self
                .unlinking
                .iter()
                .filter(|u| u.class == ByteClass::Slack)
                .count()
    }

    /// Failure counters.
    pub fn failure_counts(&self) -> IoFailureCounts {
        self.failures
    }

    /// The link state last reported.
    pub fn link_state(&self) -> LinkState {
        self.link
    }

    // ----- internals -----------------------------------------------------------

    fn io_id(&mut self, op: PendingIo) -> IoId {
        let id = IoId(self.next_io);
        self.next_io += 1;
        self.pending_io.insert(id, op);
        id
    }

    fn push_unlink(&mut self, name: SegmentName, size: u64, class: ByteClass) {
        self.unlinking.push(Unlinking {
            name,
            size,
            class,
            state: UnlinkState::Due,
            backoff: RetryBackoff::default(),
        });
    }

    /// Moves fully acknowledged segments from the front of the log to the
    /// unlink list (S4). The last log segment stays even when fully
    /// acknowledged: its header records where FSNs continue (S1) until a
    /// newer segment is installed; it is reclaimed by installing one (S5).
    fn trim(&mut self) {
        while self.ring.log.len() >= 2
            && self
                .ring
                .log
                .front()
                .is_some_and(|s| s.fully_acked(self.ring.acked))
        {
            let Some(seg) = self.ring.log.pop_front() else {
                break;
            };
            self.push_unlink(seg.name, seg.size, ByteClass::Resident);
            self.ring.recycle_index(seg.starts);
        }
    }

    fn provisioning_wanted(&self) -> bool {
        self.provisioning_in_flight() + self.ready.len() < self.config.spares
    }

    /// Emits every output that is due.
    fn drive(&mut self, now: Instant) {
        self.drive_unlinks(now);
        self.provision(now);
        self.try_reclaim();
        self.drive_syncs(now);
        self.drive_header_sync(now);
        self.drive_watermark(now);
    }

    /// S1: when a former log segment's unlink is held back because the
    /// oldest log segment's header is not known durable, sync that header
    /// (in every durability mode; a durability sync of the same segment
    /// already in flight covers it, since it starts at the last synced
    /// offset). Only the header is asked for, so memory durability does not
    /// pay for syncing frames.
    fn drive_header_sync(&mut self, now: Instant) {
        if self.front_header_durable() {
            self.front_header_owed = false;
        }
        if !self.header_sync_owed() {
            return;
        }
        if self.sync_retry_at.is_some_and(|at| at > now) {
            return;
        }
        self.sync_retry_at = None;
        let Some(seg) = self.ring.log.front() else {
            return;
        };
        if seg.sync_in_flight {
            return;
        }
        let (name, from_offset, rewrite, written) = (seg.name, seg.synced, seg.rewrite, seg.append);
        let id = self.io_id(PendingIo::Sync {
            name,
            upto: HEADER,
            written,
        });
        if let Some(seg) = self.ring.log.front_mut() {
            seg.sync_in_flight = true;
        }
        self.outputs.push_back(StorageOutput::Sync {
            id,
            name,
            from_offset,
            upto_offset: HEADER,
            rewrite,
        });
    }

    /// Whether the oldest log segment's header is known durable: the gate
    /// for unlinking segments trim removed before it (S1, S8).
    ///
    /// It is the oldest, not the newest, log segment on purpose. Trim only
    /// removes fully acknowledged segments from the front, so the front's
    /// `baseSeq − 1` is at most the acknowledged FSN; if it survives a host
    /// crash, recovery's seed `max(lowestBase − 1, watermark)` stays at or
    /// below the true acknowledgement even when every later segment is
    /// lost. A durable newer header over a lost middle segment would instead
    /// make recovery treat the lost middle frames as acknowledged.
    fn front_header_durable(&self) -> bool {
        self.ring.log.front().is_some_and(|s| s.synced >= HEADER)
    }

    /// Whether `u` may only be unlinked once a later header is durable: a
    /// former log segment in file-backed mode (its header is the only
    /// record of where FSNs continue until a successor's header survives a
    /// host crash, S1).
    fn unlink_gated(&self, u: &Unlinking) -> bool {
        self.config.backing == Backing::Files && u.class == ByteClass::Resident
    }

    /// A former log segment waits for its unlink until a later header is
    /// durable, and none is.
    fn header_sync_owed(&self) -> bool {
        !self.front_header_durable()
            && !self.ring.log.is_empty()
            && (self.front_header_owed
                || self
                    .unlinking
                    .iter()
                    .any(|u| self.unlink_gated(u) && !matches!(u.state, UnlinkState::InFlight(_))))
    }

    fn drive_unlinks(&mut self, now: Instant) {
        let front_durable = self.front_header_durable();
        // S3: former log segments are unlinked one at a time, oldest first
        // (`unlinking` keeps trim order). Were a newer one removed while an
        // older one's unlink failed or is in flight, a crash in between
        // would leave an FSN gap on disk that recovery must refuse.
        let mut older_gated_pending = false;
        for i in 0..self.unlinking.len() {
            let Some(u) = self.unlinking.get(i) else {
                break;
            };
            if self.unlink_gated(u) {
                if older_gated_pending {
                    continue;
                }
                older_gated_pending = true;
            }
            if !front_durable && self.unlink_gated(u) {
                continue;
            }
            let due = match u.state {
                UnlinkState::Due => true,
                UnlinkState::RetryAt(at) => at <= now,
                UnlinkState::InFlight(_) => false,
            };
            if due {
                let name = u.name;
                let id = self.io_id(PendingIo::Unlink { name });
                if let Some(u) = self.unlinking.get_mut(i) {
                    u.state = UnlinkState::InFlight(id);
                }
                self.outputs.push_back(StorageOutput::Unlink { id, name });
            }
        }
    }

    fn provision(&mut self, now: Instant) {
        if self.create_retry_at.is_some_and(|at| at > now) {
            return;
        }
        self.create_retry_at = None;
        let size = self.config.segment_bytes;
        while self.provisioning_wanted()
            && self.resident.saturating_add(self.slack_bytes()) <= self.config.max_total_bytes
        {
            let gen = self.next_gen;
            self.next_gen = gen.next();
            self.creating += 1;
            let id = self.io_id(PendingIo::Create { gen });
            self.outputs
                .push_back(StorageOutput::CreateSegment { id, gen, size });
        }
    }

    /// S5: replace a fully acknowledged last segment by a fresh one whose
    /// header carries the next FSN, then unlink the old one.
    fn try_reclaim(&mut self) {
        if self.reclaim.is_some() || self.pending_append.is_some() {
            return;
        }
        let Some(last) = self.ring.log.back() else {
            return;
        };
        if !last.fully_acked(self.ring.acked) {
            return;
        }
        let worth = last.sealed
            || (last.frame_count() > 0
                && last.append.saturating_sub(HEADER) >= self.config.reclaim_min_bytes);
        if !worth {
            return;
        }
        let Some(spare) = self.ready.front().copied() else {
            return;
        };
        let after = self.resident.saturating_sub(last.size) + spare.size;
        if after > self.config.max_total_bytes {
            return;
        }
        self.ready.pop_front();
        self.reclaim = Some(spare);
        let base_fsn = self.ring.next_fsn;
        let id = self.io_id(PendingIo::Install { spare });
        self.outputs.push_back(StorageOutput::InstallHeader {
            id,
            gen: spare.gen,
            base_fsn,
        });
    }

    /// L4: while a closed batch (or, in append durability, a committed
    /// frame) is not durable, keep one sync outstanding per segment that
    /// holds part of the owed range.
    fn drive_syncs(&mut self, now: Instant) {
        let Some(target) = self.durability.sync_target() else {
            return;
        };
        if self.sync_retry_at.is_some_and(|at| at > now) {
            return;
        }
        self.sync_retry_at = None;
        let first = self.durability.durable().map_or(Fsn::ZERO, Fsn::next);
        let Some(start) = self
            .ring
            .segment_index_of(first)
            .or_else(|| (!self.ring.log.is_empty()).then_some(0))
        else {
            return;
        };
        for i in start..self.ring.log.len() {
            let Some(seg) = self.ring.log.get(i) else {
                break;
            };
            if seg.base > target {
                break;
            }
            let Some(last) = seg.last_fsn() else {
                continue;
            };
            let Some(needed) = seg.end_offset_of(last.min(target)) else {
                continue;
            };
            if seg.synced >= needed || seg.sync_in_flight {
                continue;
            }
            let (name, from_offset, upto_offset, rewrite) =
                (seg.name, seg.synced, seg.append, seg.rewrite);
            let id = self.io_id(PendingIo::Sync {
                name,
                upto: upto_offset,
                written: upto_offset,
            });
            if let Some(seg) = self.ring.log.get_mut(i) {
                seg.sync_in_flight = true;
            }
            self.outputs.push_back(StorageOutput::Sync {
                id,
                name,
                from_offset,
                upto_offset,
                rewrite,
            });
        }
    }

    fn drive_watermark(&mut self, now: Instant) {
        if self.config.backing != Backing::Files || self.watermark_in_flight {
            return;
        }
        if self.watermark_retry_at.is_some_and(|at| at > now) {
            return;
        }
        self.watermark_retry_at = None;
        if self.watermark_open_rewrite && self.ring.acked.is_none() {
            // S8: nothing is acknowledged in this life; a watermark left by
            // an earlier one would describe frames that FSN reuse replaces.
            self.watermark_in_flight = true;
            let id = self.io_id(PendingIo::RemoveWatermark);
            self.outputs
                .push_back(StorageOutput::RemoveAckWatermark { id, durable: true });
            return;
        }
        let Some(acked) = self.ring.acked else {
            return;
        };
        if !self.watermark_open_rewrite && self.watermark_persisted.is_some_and(|p| p >= acked) {
            return;
        }
        self.watermark_in_flight = true;
        let id = self.io_id(PendingIo::Watermark { fsn: acked });
        // The open rewrite is durable: if it were lost in a host crash
        // while frames this life wrote under reused FSNs survive (they are
        // synced in flush/append durability), the stale watermark of the
        // earlier life would vouch for them at the next open and skip them
        // (S8; the simulator's seed 135544 did exactly that).
        let durable = self.watermark_open_rewrite;
        self.outputs.push_back(StorageOutput::PersistAckWatermark {
            id,
            fsn: acked,
            durable,
        });
    }
}

/// Checks that a recovered slot is a log the ring can continue (S1, S3).
fn check_recovered(slot: &RecoveredSlot) -> Result<(), RecoveryMismatch> {
    let mut expected: Option<Fsn> = None;
    for seg in &slot.segments {
        let name = seg.file_name();
        let frames = |detail| RecoveryMismatch::Frames {
            name: name.clone(),
            detail,
        };
        if seg.file_size > u64::from(u32::MAX) {
            return Err(frames("file larger than 4 GiB"));
        }
        if seg.append_offset < HEADER || seg.append_offset > seg.file_size {
            return Err(frames("append offset outside [header, file size]"));
        }
        let mut prev_end = HEADER;
        for (i, off) in seg.frame_offsets.iter().enumerate() {
            if *off != prev_end && i == 0 {
                return Err(frames("first frame does not start after the header"));
            }
            if *off < prev_end {
                return Err(frames("frame offsets not ascending"));
            }
            prev_end = off.saturating_add(FRAME_HEADER);
        }
        if prev_end > seg.append_offset
            || (seg.frame_offsets.is_empty() && seg.append_offset != HEADER)
        {
            return Err(frames("append offset does not follow the last frame"));
        }
        if let Some(e) = expected {
            if seg.base_fsn != e {
                return Err(RecoveryMismatch::Gap {
                    name,
                    expected: e,
                    found: seg.base_fsn,
                });
            }
        }
        expected = Some(seg.base_fsn.plus(seg.frame_count()));
        if let Some(g) = seg.gen {
            if g >= slot.next_gen {
                return Err(RecoveryMismatch::Generation {
                    next: slot.next_gen,
                    existing: g,
                });
            }
        }
    }
    for spare in &slot.leftover_spares {
        if spare.gen >= slot.next_gen {
            return Err(RecoveryMismatch::Generation {
                next: slot.next_gen,
                existing: spare.gen,
            });
        }
    }
    if let Some(e) = expected {
        if slot.next_fsn != e {
            return Err(RecoveryMismatch::NextFsn {
                expected: e,
                found: slot.next_fsn,
            });
        }
    }
    let published = slot.next_fsn.prev();
    let first_base = slot.segments.first().map(|s| s.base_fsn);
    let low = first_base.and_then(Fsn::prev);
    let acked_ok = match (slot.acked, first_base) {
        (Some(a), _) if published.is_none_or(|p| a > p) => false,
        // No segment left: everything published is gone, any ack is moot.
        (_, None) => true,
        // S8: acked >= lowest base - 1, or frames below the log are missing.
        (acked, Some(_)) => acked >= low,
    };
    if !acked_ok {
        return Err(RecoveryMismatch::Acked {
            acked: Fsn::to_spec(slot.acked),
            low: Fsn::to_spec(low),
            published: Fsn::to_spec(published),
        });
    }
    Ok(())
}
