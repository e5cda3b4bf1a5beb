//! Which sibling slot directories an orphan scan adopts (sf-client §18.2,
//! §5.2; DESIGN §6 item 19).
//!
//! A sibling `<sf_dir>/<name>/` is drained when all of these hold:
//!
//! * it is not a slot the scanner owns: the foreground sender's own
//!   `sender_id`, or for a pool exactly its managed slots `<base>-<i>` with
//!   `i` in canonical decimal and `i < max` (a slot of the same base with an
//!   index `≥ max`, left by a pool that shrank, or with a non-canonical
//!   suffix such as `<base>-01`, is an orphan like any other);
//! * its name is a valid `sender_id` (a drainer opens it as one);
//! * it holds at least one segment file (`sf-<gen>.sfa` or the legacy
//!   `sf-initial.sfa`);
//! * it holds no `.failed` sentinel (presence, not contents, is the signal).
//!
//! Lock state is deliberately not part of the filter: probing it races
//! with concurrent acquirers; the drainer tries the lock and skips a held
//! slot. Pure: the adapter lists the directories and hands the names here.
//!
//! [`DrainScheduler`] is the whole drain policy of one scan on top of
//! [`judge`]: order, concurrency cap, retries, and which ending writes
//! `.failed`.

mod scheduler;

pub use scheduler::{DrainAction, DrainCounters, DrainEnd, DrainScheduler, RETRIES_PER_SCAN};

use crate::config::sender_id_problem;
use crate::recovery::{classify_file_name, SlotFile};

/// The `.failed` sentinel's name inside a slot directory (sf-client §5.2).
pub const FAILED_MARKER: &str = ".failed";

/// The slots a scanner owns and must never adopt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnSlots {
    /// A single sender: its own `sender_id`.
    Single(String),
    /// A pool: the managed slots `<base>-<i>` for `i` in `[0, max)`, and
    /// the pool's own lock directory `<base>.pool`.
    Pool {
        /// The base sender id.
        base: String,
        /// The pool's maximum size.
        max: u32,
    },
}

impl OwnSlots {
    /// Whether the scanner owns slot `name`.
    pub fn owns(&self, name: &str) -> bool {
        match self {
            OwnSlots::Single(own) => name == own,
            OwnSlots::Pool { base, max } => {
                name == pool_lock_id(base) || managed_index(base, name).is_some_and(|i| i < *max)
            }
        }
    }
}

/// The directory whose lock a pool holds for its lifetime, so two pools
/// with the same base on one `sf_dir` fail fast: `<base>.pool`. It never
/// holds segments.
pub fn pool_lock_id(base: &str) -> String {
    format!("{base}.pool")
}

/// The index `i` if `name` is spelled exactly `<base>-<i>` with `i` in
/// canonical decimal (digits only, no leading zero unless `0`, fits u32).
pub fn managed_index(base: &str, name: &str) -> Option<u32> {
    let digits = name.strip_prefix(base)?.strip_prefix('-')?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    digits.parse::<u32>().ok()
}

/// What the scan made of one sibling directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Drain it.
    Adopt,
    /// The scanner's own slot.
    Own,
    /// Not usable as a `sender_id`.
    InvalidName,
    /// No segment file: nothing to drain.
    NoSegments,
    /// A `.failed` sentinel excludes it until an operator removes it.
    Failed,
}

/// Judges sibling `name` whose directory holds the entries `entries`.
pub fn judge<'a>(
    own: &OwnSlots,
    name: &str,
    entries: impl IntoIterator<Item = &'a str>,
) -> Verdict {
    if own.owns(name) {
        return Verdict::Own;
    }
    if sender_id_problem(name).is_some() {
        return Verdict::InvalidName;
    }
    let mut segments = false;
    for e in entries {
        if e == FAILED_MARKER {
            return Verdict::Failed;
        }
        segments |= matches!(
            classify_file_name(e),
            SlotFile::Segment(_) | SlotFile::LegacySegment
        );
    }
    if segments {
        Verdict::Adopt
    } else {
        Verdict::NoSegments
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEG: &str = "sf-0000000000000001.sfa";

    fn pool(max: u32) -> OwnSlots {
        OwnSlots::Pool {
            base: "w".into(),
            max,
        }
    }

    #[test]
    fn s18_2_sibling_with_a_segment_and_no_failed_is_adopted() {
        let own = OwnSlots::Single("me".into());
        assert_eq!(judge(&own, "other", [".lock", SEG]), Verdict::Adopt);
        assert_eq!(judge(&own, "legacy", ["sf-initial.sfa"]), Verdict::Adopt);
    }

    #[test]
    fn s18_2_own_slot_is_never_adopted() {
        let own = OwnSlots::Single("me".into());
        assert_eq!(judge(&own, "me", [SEG]), Verdict::Own);
    }

    #[test]
    fn s5_2_failed_marker_excludes_whatever_else_is_there() {
        let own = OwnSlots::Single("me".into());
        assert_eq!(judge(&own, "x", [SEG, ".failed"]), Verdict::Failed);
        assert_eq!(judge(&own, "x", [".failed", SEG]), Verdict::Failed);
    }

    #[test]
    fn s18_2_without_segments_there_is_nothing_to_drain() {
        let own = OwnSlots::Single("me".into());
        assert_eq!(
            judge(
                &own,
                "x",
                [".lock", ".lock.pid", ".ack-watermark", "sf-zz.sfa"]
            ),
            Verdict::NoSegments
        );
        assert_eq!(judge(&own, "x", []), Verdict::NoSegments);
    }

    #[test]
    fn item19_pool_excludes_exactly_its_managed_indices() {
        let own = pool(2);
        assert_eq!(judge(&own, "w-0", [SEG]), Verdict::Own);
        assert_eq!(judge(&own, "w-1", [SEG]), Verdict::Own);
        assert_eq!(
            judge(&own, "w-2", [SEG]),
            Verdict::Adopt,
            "left by a larger pool"
        );
        assert_eq!(judge(&own, "w-01", [SEG]), Verdict::Adopt, "non-canonical");
        assert_eq!(judge(&own, "w-+1", [SEG]), Verdict::Adopt, "non-canonical");
        assert_eq!(judge(&own, "w-", [SEG]), Verdict::Adopt);
        assert_eq!(judge(&own, "w", [SEG]), Verdict::Adopt, "the bare base");
        assert_eq!(judge(&own, "w-1x", [SEG]), Verdict::Adopt);
        assert_eq!(
            judge(&own, "w-99999999999", [SEG]),
            Verdict::Adopt,
            "beyond u32"
        );
        assert_eq!(
            judge(&own, "w.pool", [SEG]),
            Verdict::Own,
            "the pool's lock dir"
        );
        assert_eq!(judge(&own, "v-0", [SEG]), Verdict::Adopt, "another base");
    }

    #[test]
    fn invalid_sender_id_names_are_not_adopted() {
        let own = OwnSlots::Single("me".into());
        assert_eq!(judge(&own, "a..b", [SEG]), Verdict::InvalidName);
        assert_eq!(judge(&own, "", [SEG]), Verdict::InvalidName);
    }

    #[test]
    fn managed_index_parses_only_canonical_decimal() {
        assert_eq!(managed_index("w", "w-0"), Some(0));
        assert_eq!(managed_index("w", "w-10"), Some(10));
        assert_eq!(managed_index("w", "w-00"), None);
        assert_eq!(managed_index("w", "w-4294967295"), Some(u32::MAX));
        assert_eq!(managed_index("w", "w-4294967296"), None);
        assert_eq!(managed_index("w", "x-1"), None);
        assert_eq!(managed_index("w-1", "w-1-3"), Some(3));
    }

    #[test]
    fn drainer_config_is_the_foreground_config_on_the_orphan_slot() {
        use crate::config::{Config, InitialConnectRetry};
        let c = Config::from_conf("ws::addr=a:1;sf_dir=/tmp/sf;sender_id=me;drain_orphans=on;")
            .unwrap();
        let d = c.for_orphan_drainer("other").unwrap();
        assert_eq!(d.storage().sender_id, "other");
        assert!(!d.storage().drain_orphans, "a drainer never scans itself");
        assert_eq!(d.storage().sf_dir, c.storage().sf_dir);
        assert_eq!(
            d.reconnect().initial_connect_retry,
            InitialConnectRetry::Async
        );
        assert_eq!(d.close_flush_timeout(), None);
        let p = c.for_slot("me-0").unwrap();
        assert_eq!(p.reconnect(), c.reconnect());
        assert_eq!(p.storage().sender_id, "me-0");
        assert!(!p.storage().drain_orphans, "pooled senders never scan");
        assert!(c.for_slot("../x").is_err());
    }

    proptest! {
        /// Over arbitrary directory names: a name is the pool's own iff it
        /// is `<base>-<i>` in canonical form with `i < max` (or the lock
        /// dir); every other valid name with a segment is adopted.
        #[test]
        fn item19_pool_ownership_is_exactly_the_canonical_in_range_names(
            base in "[a-z]{1,3}",
            max in 0u32..20,
            suffix in "(-[0-9]{1,3}|-0[0-9]|[a-z0-9.-]{0,4})",
        ) {
            let own = OwnSlots::Pool { base: base.clone(), max };
            let name = format!("{base}{suffix}");
            let canonical_in_range = suffix
                .strip_prefix('-')
                .and_then(|d| d.parse::<u32>().ok().filter(|i| i.to_string() == d))
                .is_some_and(|i| i < max);
            let expected_own = canonical_in_range || name == format!("{base}.pool");
            prop_assert_eq!(own.owns(&name), expected_own);
            let v = judge(&own, &name, [SEG]);
            if expected_own {
                prop_assert_eq!(v, Verdict::Own);
            } else if sender_id_problem(&name).is_none() {
                prop_assert_eq!(v, Verdict::Adopt);
            } else {
                prop_assert_eq!(v, Verdict::InvalidName);
            }
        }

        /// The generated index of every pooled slot id is recognised as
        /// managed: the allocator and the scan agree on the spelling.
        #[test]
        fn pooled_ids_round_trip_through_managed_index(base in "[a-z-]{1,6}", i in 0u32..10_000) {
            let id = crate::pool_slots::pooled_sender_id(&base, crate::pool_slots::SlotIndex::from_raw(i));
            prop_assert_eq!(managed_index(&base, &id), Some(i));
        }
    }
}
