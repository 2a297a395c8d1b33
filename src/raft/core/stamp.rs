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

/// How far back a follower looks for the previous stamp: stamps come each
/// window while clicks flow, so a longer search only costs time (and one
/// that finds nothing takes the stamp: the game ignores a stamp older than
/// its window anyway).
const SCAN_LIMIT: usize = 100_000;

/// The snapshot document's key for `stamp_floor`.
pub const FLOOR_KEY: &str = "stampFloor";

/// `stamp_floor` from a snapshot document (0 in one without).
pub fn floor_of_doc(data: &[u8]) -> u64 {
    let doc: Option<serde_json::Value> = serde_json::from_slice(data).ok();
    doc.and_then(|d| d.get(FLOOR_KEY).and_then(serde_json::Value::as_u64))
        .unwrap_or(0)
}

/// The highest stamp among `entries` (0: none).
pub fn floor_of(entries: &[Entry]) -> u64 {
    let ms = entries.iter().filter_map(|e| match e.command {
        Command::Stamp(s) => Some(s.ms),
        _ => None,
    });
    ms.max().unwrap_or(0)
}

impl Raft {
    fn wall_ms(&self, now: Duration) -> u64 {
        let now = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        self.cfg.wall_origin_ms.saturating_add(now)
    }

    /// The stamp the leader appends before `proposals`, if a window is due:
    /// clicks are among them and this term has no stamp of the last window.
    /// Each stamp is a window past every stamp this node ever held
    /// (`stamp_floor`), so it never goes back from one a follower holds, and
    /// a new leader whose clock is behind still opens windows at its pace.
    pub(super) fn stamp_due(&mut self, now: Duration, proposals: &[Proposal]) -> Option<Stamp> {
        let limit = self.cfg.rate_limit?;
        if !proposals.iter().any(|p| p.client.is_some()) {
            return None;
        }
        let window = Duration::from_millis(self.cfg.stamp_window_ms);
        let due = self
            .stamped_at
            .is_none_or(|(term, at)| term != self.term || now >= at + window);
        if !due {
            return None;
        }
        self.stamped_at = Some((self.term, now));
        let next = match self.stamp_floor {
            0 => 0,
            f => f.saturating_add(self.cfg.stamp_window_ms),
        };
        let ms = self.wall_ms(now).max(next);
        self.stamp_floor = ms;
        Some(Stamp { ms, limit })
    }

    /// Raise `stamp_floor` to the stamps of a batch this node took.
    pub(super) fn note_stamps(&mut self, entries: &[Entry]) {
        for e in entries {
            if let Command::Stamp(s) = e.command {
                self.stamp_floor = self.stamp_floor.max(s.ms);
            }
        }
    }

    /// With a rate limit: refuse a batch whose new stamps go backwards, carry
    /// another limit than this node's, or (with keys) run too far ahead of
    /// this node's clock. Honest leaders send none of these.
    pub(super) fn check_stamps(
        &self,
        now: Duration,
        entries: &[Entry],
        all_log: bool,
    ) -> Result<(), InvalidRequest> {
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
            if let Some(own) = self.cfg.rate_limit
                && own != s.limit
            {
                return refuse(format!("limit {} but this node's is {own}", s.limit));
            }
            let ahead = s.ms.saturating_sub(self.wall_ms(now));
            if self.signed_votes() && ahead > MAX_AHEAD_MS {
                return refuse(format!("{} s ahead of this node's clock", ahead / 1000));
            }
            if let Some(prev) = self.last_stamp_before(kept_below, &entries[..i])
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
    fn last_stamp_before(&self, kept_below: Option<u64>, batch: &[Entry]) -> Option<Stamp> {
        let stamp = |e: &Entry| match e.command {
            Command::Stamp(s) => Some(s),
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
