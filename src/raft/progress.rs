//! What the leader knows of each follower (raft-rs's `tracker/progress.rs`).

use std::time::Duration;

/// Probe: the follower's match point is unknown and the leader walks back
/// until the follower accepts. Replicate: the follower is known to hold
/// everything up to `matched`, and batches stream from `next`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    Probe,
    Replicate,
}

#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known to be on the follower.
    pub matched: Option<u64>,
    /// First index of the next batch's new entries (the batch starts at
    /// `next - 1`, the "prev" entry the follower must hold).
    pub next: u64,
    pub state: ProgressState,
    /// Walk-back step after a reject; doubles each time (1, 2, 4, ...).
    pub backoff: u64,
    /// The follower said `is_log_empty() == false`, or accepted a batch.
    pub known_nonempty: bool,
    /// The request on its way to this follower (one at a time).
    pub inflight: Option<u64>,
    /// Don't send again before this (after an unreachable peer).
    pub retry_at: Duration,
    /// When the last request was sent (heartbeats are due after an interval).
    pub last_sent: Option<Duration>,
    /// Highest commit index sent to this follower (the original's followers
    /// reject a commit index they already have, so it goes out once).
    pub commit_sent: Option<u64>,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// The peer is a Rust node (its replies carry our header).
    pub is_rust: bool,
}

impl Progress {
    pub fn new(next: u64, is_rust: bool) -> Self {
        Progress {
            matched: None,
            next,
            state: ProgressState::Probe,
            backoff: 1,
            known_nonempty: false,
            inflight: None,
            retry_at: Duration::ZERO,
            last_sent: None,
            commit_sent: None,
            recent_active: false,
            is_rust,
        }
    }

    /// The follower accepted a batch ending at `last`.
    pub fn on_accept(&mut self, last: Option<u64>) {
        if let Some(last) = last {
            self.matched = Some(self.matched.map_or(last, |m| m.max(last)));
            self.next = self.next.max(last + 1);
        }
        self.state = ProgressState::Replicate;
        self.backoff = 1;
        self.known_nonempty = true;
    }

    /// The follower rejected a batch whose first entry was `from`: step back
    /// further (exponentially), never below the leader's first index.
    pub fn on_reject(&mut self, from: u64, log_first: u64) {
        let back = from.saturating_sub(self.backoff).max(log_first);
        // The batch will start at `back` (prev); `next` is one past it,
        // or the log's first index when the walk reached the start.
        self.next = if back <= log_first {
            log_first
        } else {
            back + 1
        };
        self.backoff = self.backoff.saturating_mul(2);
        self.state = ProgressState::Probe;
        self.known_nonempty = false;
        if let Some(m) = self.matched
            && m >= self.next
        {
            // The follower lost entries we thought it had (it restarted
            // without its disk): forget them.
            self.matched = self.next.checked_sub(1);
        }
    }

    /// The peer could not be reached: probe again when it comes back.
    pub fn on_unreachable(&mut self, now: Duration, retry: Duration) {
        self.state = ProgressState::Probe;
        self.retry_at = now + retry;
        if !self.is_rust {
            // An original follower may have restarted: its log is back to
            // its seeded entries and its commit index is gone.
            self.known_nonempty = false;
            self.matched = None;
            self.commit_sent = None;
        }
    }
}
