//! The fleet-level checks (per-slot checks live in each slot's
//! [`Checker`](crate::Checker)):
//!
//! * **C3**: one live engine per slot at any instant, and it holds the
//!   slot's lock.
//! * **ORPHAN-SKIP** (at drainer start, see `start_drainers`/`open_node`):
//!   never a held lock, a `.failed` slot, the owner's own slot or a name
//!   the scan did not adopt.
//! * **ORPHAN-CAP**: never more than `max_background_drainers` drainers
//!   of one process at once.
//! * **ORPHAN-FAILED** (at the write, see `end_drainer`): only for a
//!   permanent reason, only under the writer's lock.
//! * **ORPHAN-ISOLATION**: a node is only ever fed the connect answers of
//!   its own client (never more than it asked for), and a foreground
//!   whose own traffic carries no terminal fault never latches one.
//! * **ORPHAN-LIVENESS**: after faults stop, every adoptable orphan ends
//!   drained or `.failed` within the liveness bound.

use std::collections::BTreeMap;

use sf_core::orphans::{judge, Verdict};

use super::{Fleet, LockHolder, Role};

impl Fleet {
    /// C3, ORPHAN-CAP and ORPHAN-ISOLATION after a step.
    pub(super) fn fleet_checks(&mut self) {
        let mut found = Vec::new();
        let mut per_slot: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for n in self.nodes.values() {
            if n.engine().is_none() {
                continue;
            }
            per_slot.entry(n.slot.as_str()).or_default().push(n.id.0);
            let holder = self.tree.get(&n.slot).and_then(|s| s.lock());
            if holder != Some(LockHolder::Node(n.id)) {
                found.push((
                    "C3",
                    format!(
                        "node {} runs an engine on {} without holding its lock (holder {holder:?})",
                        n.id.0, n.slot
                    ),
                ));
            }
            if n.connect_answers > n.connects {
                found.push((
                    "ORPHAN-ISOLATION",
                    format!(
                        "node {} on {} was fed {} connect answers for {} connects: another engine's connection events reached it",
                        n.id.0, n.slot, n.connect_answers, n.connects
                    ),
                ));
            }
        }
        for (slot, ids) in &per_slot {
            if ids.len() > 1 {
                found.push((
                    "C3",
                    format!(
                        "{} live engines on slot {slot} at once: nodes {ids:?}",
                        ids.len()
                    ),
                ));
            }
        }
        for (p, pr) in &self.processes {
            let live = pr
                .drainers
                .iter()
                .filter(|d| self.nodes.contains_key(d))
                .count();
            if live > self.max_drainers {
                found.push((
                    "ORPHAN-CAP",
                    format!(
                        "process {} runs {live} drainers at once, more than max_background_drainers={}",
                        p.0, self.max_drainers
                    ),
                ));
            }
        }
        if self.quiet_foreground {
            if let Some(n) = self.foreground_node() {
                if let Some(e) = n.engine().and_then(|e| e.last_terminal_error()) {
                    found.push((
                        "ORPHAN-ISOLATION",
                        format!(
                            "the foreground on {} latched a terminal error its own traffic cannot explain: {e}",
                            n.slot
                        ),
                    ));
                    // Reported once: the latch stays.
                    self.quiet_foreground = false;
                }
            }
        }
        for (inv, detail) in found {
            self.violate(inv, detail);
        }
    }

    /// Slots that are adoptable orphans of the main process and not done:
    /// neither `.failed` nor (lock free and everything the slot's checker
    /// knows acknowledged). With why, for the report.
    pub(super) fn undone_orphans(&self) -> Vec<(String, String)> {
        let Some(own) = self
            .main
            .and_then(|m| self.processes.get(&m))
            .map(|p| p.own.clone())
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, s) in self.tree.iter() {
            let entries = s.entries();
            if judge(&own, name, entries.iter().map(String::as_str)) != Verdict::Adopt {
                continue;
            }
            let drainer = self.nodes.values().find(|n| n.slot == name);
            let done = s.lock().is_none() && s.checker.all_acked();
            if !done {
                let state = match drainer {
                    Some(n) => format!(
                        "drainer n{} ({:?}) acked {:?} published {:?} connection {:?} terminal {:?}",
                        n.id.0,
                        n.role,
                        n.engine().and_then(|e| e.acked_fsn()),
                        n.engine().and_then(|e| e.published_fsn()),
                        n.engine().map(|e| e.connection_state()),
                        n.engine().and_then(|e| e.last_terminal_error()).map(ToString::to_string),
                    ),
                    None => format!(
                        "no drainer; lock {:?}, checker acked {:?}, files {:?}",
                        s.lock(),
                        s.checker.acked(),
                        s.disk.file_names()
                    ),
                };
                out.push((name.to_owned(), state));
            }
        }
        out
    }

    /// Whether the liveness goal holds: the foreground settled, no
    /// drainer running or queued, every adoptable orphan done.
    pub(super) fn liveness_reached(&self) -> bool {
        let Some(p) = self.main.and_then(|m| self.processes.get(&m)) else {
            return false;
        };
        if !p.alive || !p.drainers.is_empty() {
            return false;
        }
        if p.scheduler.as_ref().is_some_and(|s| !s.is_idle()) {
            return false;
        }
        self.foreground_settled() && self.undone_orphans().is_empty()
    }

    /// Whether a drainer node is still running on `slot`.
    pub(super) fn draining(&self, slot: &str) -> bool {
        self.nodes
            .values()
            .any(|n| n.slot == slot && matches!(n.role, Role::Drainer { .. }))
    }
}
