//! Rate-limit stamps (issue 11): a leader with a rate limit stamps the log
//! with its clock before the clicks of each new window, and followers take
//! no stamp that goes backwards, or (with keys) runs far ahead of their own
//! clock. The game applies the stamps (see `game::rate`); the core only
//! writes and checks them, and reads no clock: wall time is
//! `wall_origin_ms + now`.

use std::time::Duration;

use super::client::Proposal;
use super::*;

/// How far ahead of a follower's clock a stamp may be (with keys): a leader
/// racing its clock ahead gains its players at most this many extra windows.
pub const MAX_AHEAD_MS: u64 = 30_000;

/// How far ahead of its own clock an honest leader (election mode) stamps
/// to keep pace with stamps it held: half the followers' bound, so that a
/// floor raised by a fast clock or a lying leader cannot carry every later
/// stamp past followers whose clocks are a little slower.
const MAX_LEAD_MS: u64 = MAX_AHEAD_MS / 2;

/// How far back a follower looks for the previous stamp: stamps come each
/// window while clicks flow, so a longer search only costs time (and one
/// that finds nothing takes the stamp: the game ignores a stamp older than
/// its window anyway).
const SCAN_LIMIT: usize = 100_000;

/// The snapshot document's keys for [`Stamps`]' floor and limit.
pub const FLOOR_KEY: &str = "stampFloor";
pub const LIMIT_KEY: &str = "stampLimit";

/// What a node knows of stamps, whatever its role.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Stamps {
    /// The highest stamp this node ever held (its log's, its snapshot's).
    floor: u64,
    /// The limit of the last applied stamp (or the snapshot's): a node
    /// started without one (a joining node) stamps with it when it leads.
    /// Applied, not merely received: a lying leader could otherwise hand
    /// one node a limit the others refuse.
    limit: Option<u32>,
    /// This node's last stamp as leader: its term, core time and value.
    last: Option<(u64, Duration, u64)>,
}

impl Stamps {
    /// Raise the floor to the stamps of `entries`.
    pub fn note(&mut self, entries: &[Entry]) {
        for e in entries {
            if let (Command::Stamp(s), None) = (&e.command, e.client) {
                self.raise(s.ms);
            }
        }
    }

    fn raise(&mut self, ms: u64) {
        self.floor = self.floor.max(ms);
    }

    /// An entry was applied: a stamp's limit is now the cluster's.
    pub fn applied(&mut self, e: &Entry) {
        if let (Command::Stamp(s), None) = (&e.command, e.client) {
            self.limit = Some(s.limit);
        }
    }

    /// Take a snapshot document's floor and limit.
    pub fn note_doc(&mut self, data: &[u8]) {
        let doc: Option<serde_json::Value> = serde_json::from_slice(data).ok();
        let get = |k| doc.as_ref().and_then(|d| d.get(k)?.as_u64());
        self.raise(get(FLOOR_KEY).unwrap_or(0));
        let limit = get(LIMIT_KEY).and_then(|l| u32::try_from(l).ok());
        if let Some(l) = limit.filter(|l| *l > 0) {
            self.limit = Some(l);
        }
    }

    /// The snapshot document's part (see `note_doc`).
    pub fn doc_keys(&self) -> [(&'static str, serde_json::Value); 2] {
        [
            (FLOOR_KEY, self.floor.into()),
            (LIMIT_KEY, self.limit.into()),
        ]
    }
}

impl Raft {
    fn wall_ms(&self, now: Duration) -> u64 {
        let now = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        self.cfg.wall_origin_ms.saturating_add(now)
    }

    /// The stamp the leader appends before `proposals`, if a window is due:
    /// clicks are among them and this term has no stamp of the last window.
    /// The limit is this node's, or (a node that joined with none) the
    /// one the log carries. A term's first stamp is not below a stamp this
    /// node held (in election mode: up to `MAX_LEAD_MS` ahead of its
    /// clock); later ones advance with this node's clock, so a leader whose
    /// clock is behind still opens windows at its pace, quick leader
    /// changes do not push stamps ahead of the clocks, and a term's stamps
    /// never go back.
    pub(super) fn stamp_due(&mut self, now: Duration, proposals: &[Proposal]) -> Option<Stamp> {
        let limit = self.cfg.rate_limit.or(self.stamps.limit)?;
        if !proposals.iter().any(|p| p.client.is_some()) {
            return None;
        }
        let window = Duration::from_millis(self.cfg.stamp_window_ms);
        let base = match self.stamps.last {
            Some((term, at, ms)) if term == self.term => {
                if now < at + window {
                    return None;
                }
                let since = u64::try_from((now - at).as_millis()).unwrap_or(u64::MAX);
                ms.saturating_add(since)
            }
            _ if self.cfg.elections() => self
                .stamps
                .floor
                .min(self.wall_ms(now).saturating_add(MAX_LEAD_MS)),
            _ => self.stamps.floor,
        };
        let ms = self.wall_ms(now).max(base);
        self.stamps.raise(ms);
        self.stamps.last = Some((self.term, now, ms));
        Some(Stamp { ms, limit })
    }

    /// Raise the stamp floor to the stamps of a batch this node took.
    pub(super) fn note_stamps(&mut self, entries: &[Entry]) {
        self.stamps.note(entries);
    }

    /// With a rate limit: refuse a batch whose new stamps go backwards, carry
    /// another limit than this node's, or (with keys) run too far ahead of
    /// this node's clock. Honest leaders send none of these.
    pub(super) fn check_stamps(
        &self,
        now: Duration,
        req: &AppendEntries,
        entries: &[Entry],
    ) -> Result<(), InvalidRequest> {
        let (term, all_log) = (req.term, req.all_log);
        if term < self.term {
            // The plain reject tells a deposed leader of the newer term.
            return Ok(());
        }
        let Some(anchor) = entries.first() else {
            return Ok(());
        };
        let anchored = self.log.matches(anchor.index, anchor.term);
        if !anchored && !all_log && !self.log.is_empty() {
            // The log will refuse it anyway (no anchor): a plain reject.
            return Ok(());
        }
        // A whole log that does not match ours replaces it.
        let kept_below = (anchored || !all_log).then_some(anchor.index);
        for (i, e) in entries.iter().enumerate() {
            let Command::Stamp(s) = &e.command else {
                continue;
            };
            if self.log.matches(e.index, e.term) {
                continue;
            }
            let refuse = |why: String| Err(InvalidRequest(format!("stamp at {}: {why}", e.index)));
            if s.limit == 0 {
                return refuse("limit 0".into());
            }
            // A stamp made before this node started (with its limit) may
            // carry the limit the cluster had then; a later one must carry
            // this node's. Entries may claim an older term, so the term
            // proves nothing here.
            if let Some(own) = self.cfg.rate_limit
                && own != s.limit
                && s.ms >= self.cfg.wall_origin_ms
            {
                return refuse(format!("limit {} but this node's is {own}", s.limit));
            }
            let ahead = s.ms.saturating_sub(self.wall_ms(now));
            if self.signed_votes() && ahead > MAX_AHEAD_MS {
                return refuse(format!("{} s ahead of this node's clock", ahead / 1000));
            }
            // Within a term (one leader's stamps), never back. Across terms
            // a stamp below the last opens no window (see `game::rate`), so
            // it is taken: refusing it would only stall the cluster.
            if let Some((t, prev)) = self.last_stamp_before(kept_below, &entries[..i])
                && t == e.term
                && prev.ms > s.ms
            {
                return refuse(format!("goes back from {} to {} ms", prev.ms, s.ms));
            }
        }
        Ok(())
    }

    /// The last stamp of `batch` (entries about to follow what the log
    /// keeps below `kept_below`), else the log's last there (what a
    /// snapshot holds is not searched: the game ignores a stamp older than
    /// its window anyway).
    fn last_stamp_before(&self, kept_below: Option<u64>, batch: &[Entry]) -> Option<(u64, Stamp)> {
        let stamp = |e: &Entry| match (&e.command, e.client) {
            (Command::Stamp(s), None) => Some((e.term, *s)),
            _ => None,
        };
        if let Some(s) = batch.iter().rev().find_map(stamp) {
            return Some(s);
        }
        let last = kept_below?.min(self.log.next_index()).checked_sub(1)?;
        let held = self.log.slice(self.log.first_index()?, last);
        held.iter().rev().take(SCAN_LIMIT).find_map(stamp)
    }
}
