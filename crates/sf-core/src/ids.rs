//! Newtypes for the numbers the core juggles, so an FSN can never be passed
//! where a wire sequence or a segment generation is meant.

use core::fmt;

/// Frame sequence number: the position of a frame in its slot's log.
///
/// Assigned at append time, contiguous from 0 per slot, persisted through each
/// segment's `baseSeq`, never reset or reused while the slot exists (S1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fsn(pub u64);

impl Fsn {
    /// The first FSN of a fresh slot.
    pub const ZERO: Fsn = Fsn(0);

    /// The raw value.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The FSN after this one.
    pub fn next(self) -> Fsn {
        Fsn(self.0 + 1)
    }

    /// The FSN `n` frames after this one.
    pub fn plus(self, n: u64) -> Fsn {
        Fsn(self.0 + n)
    }

    /// The FSN before this one, or `None` for [`Fsn::ZERO`].
    pub fn prev(self) -> Option<Fsn> {
        self.0.checked_sub(1).map(Fsn)
    }

    /// The spec's signed form, where "nothing yet" is −1: `None` → −1.
    pub fn to_spec(fsn: Option<Fsn>) -> i64 {
        match fsn {
            Some(f) => f.0 as i64,
            None => -1,
        }
    }
}

impl fmt::Display for Fsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A message's sequence number on one WebSocket connection: 0 for the first
/// message after each upgrade, echoed back by the server in OK and error
/// frames. `fsn = fsn_at_zero + wire_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct WireSeq(pub u64);

impl WireSeq {
    /// The raw value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for WireSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A segment file's generation: the allocation order encoded in its name
/// `sf-<gen:016x>.sfa`. It says nothing about the FSNs inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SegmentGen(pub u64);

impl SegmentGen {
    /// The raw value.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The generation after this one.
    pub fn next(self) -> SegmentGen {
        SegmentGen(self.0 + 1)
    }

    /// The segment's file name, `sf-<gen:016x>.sfa`.
    pub fn file_name(self) -> String {
        format!("sf-{:016x}.sfa", self.0)
    }

    /// Parses a segment file name of the form `sf-<16 lowercase hex>.sfa`.
    /// The legacy name `sf-initial.sfa` is not a generation and yields `None`.
    pub fn parse_file_name(name: &str) -> Option<SegmentGen> {
        let hex = name.strip_prefix("sf-")?.strip_suffix(".sfa")?;
        if hex.len() != 16
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        u64::from_str_radix(hex, 16).ok().map(SegmentGen)
    }
}

impl fmt::Display for SegmentGen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_file_names() {
        assert_eq!(SegmentGen(3).file_name(), "sf-0000000000000003.sfa");
        assert_eq!(
            SegmentGen::parse_file_name("sf-00000000000000ff.sfa"),
            Some(SegmentGen(255))
        );
        for bad in [
            "sf-initial.sfa",
            "sf-00000000000000FF.sfa",
            "sf-ff.sfa",
            "sf-000000000000000g.sfa",
            "sf-0000000000000003.sfa.tmp",
            ".ack-watermark",
        ] {
            assert_eq!(SegmentGen::parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn fsn_arithmetic() {
        assert_eq!(Fsn::ZERO.prev(), None);
        assert_eq!(Fsn(5).next(), Fsn(6));
        assert_eq!(Fsn::to_spec(None), -1);
        assert_eq!(Fsn::to_spec(Some(Fsn(7))), 7);
    }
}
