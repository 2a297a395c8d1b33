//! A game rule against bots (issue 11): a player's clicks beyond a rate are
//! dropped. Time comes from the log, not from any node's clock: the leader
//! stamps windows with its clock and every node applies the same stamps
//! and clicks in the same order, so all drop the same clicks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Length of a window of the leader's clock. A stamp sooner than this after
/// the current window's start (or older than it) opens no new window, so a
/// leader stamping often, or backwards, gains its players nothing.
pub const WINDOW_MS: u64 = 1000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// The current window: its start (leader's Unix ms) and the clicks each
    /// player may make in it. None before the first stamp: no limit yet.
    window: Option<Window>,
    /// Clicks applied per player in the current window.
    counts: BTreeMap<u64, u32>,
    /// Clicks dropped per player, over the whole game.
    dropped: BTreeMap<u64, u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Window {
    start_ms: u64,
    limit: u32,
}

impl RateLimit {
    /// A stamp from the log. True if it opened a new window.
    pub fn stamp(&mut self, ms: u64, limit: u32) -> bool {
        let opens = self
            .window
            .is_none_or(|w| ms >= w.start_ms.saturating_add(WINDOW_MS));
        if opens {
            self.window = Some(Window {
                start_ms: ms,
                limit,
            });
            self.counts.clear();
        }
        opens
    }

    /// May `player` click now? Counts the click, or the drop.
    pub fn allow(&mut self, player: u64) -> bool {
        let Some(w) = self.window else {
            return true;
        };
        let n = self.counts.entry(player).or_default();
        if *n < w.limit {
            *n += 1;
            return true;
        }
        *self.dropped.entry(player).or_default() += 1;
        false
    }

    /// Clicks of `player` dropped so far.
    pub fn dropped(&self, player: u64) -> u64 {
        self.dropped.get(&player).copied().unwrap_or(0)
    }

    /// Start of the current window (leader's Unix ms).
    pub fn window_start(&self) -> Option<u64> {
        self.window.map(|w| w.start_ms)
    }

    /// Clicks per player and window now in force.
    pub fn limit(&self) -> Option<u32> {
        self.window.map(|w| w.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_beyond_the_limit_are_dropped_until_the_next_window() {
        let mut r = RateLimit::default();
        assert!(r.allow(1), "no stamp yet: no limit");
        assert!(r.stamp(10_000, 2));
        assert!(r.allow(1) && r.allow(1));
        assert!(!r.allow(1), "third click in the window");
        assert!(r.allow(2), "each player has their own count");
        assert_eq!((r.dropped(1), r.dropped(2)), (1, 0));
        assert!(!r.stamp(10_999, 2), "too soon: same window");
        assert!(!r.allow(1));
        assert!(!r.stamp(9_000, 2), "backwards: ignored");
        assert_eq!(r.window_start(), Some(10_000));
        assert!(r.stamp(11_000, 2));
        assert!(r.allow(1));
        assert_eq!(r.dropped(1), 2);
    }

    #[test]
    fn survives_a_snapshot() {
        let mut r = RateLimit::default();
        r.stamp(5, 1);
        r.allow(3);
        r.allow(3);
        let json = serde_json::to_string(&r).unwrap();
        let back: RateLimit = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.dropped(3), 1);
    }
}
