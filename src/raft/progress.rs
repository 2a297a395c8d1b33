//! What the leader knows of each follower (raft-rs's `tracker/progress.rs`).
//!
//! The fields are private: the leader moves a follower between probing and
//! replicating only through the transitions below, so the rules (never
//! move `matched` back without proof, back off exponentially, one request
//! in flight) live here and nowhere else.

use std::time::Duration;

use super::dialect::PeerKind;
use std::sync::Arc;

use super::types::Snapshot;

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
    matched: Option<u64>,
    /// First index of the next batch's new entries (the batch starts at
    /// `next - 1`, the "prev" entry the follower must hold).
    next: u64,
    state: ProgressState,
    /// Walk-back step after a reject; doubles each time (1, 2, 4, ...).
    backoff: u64,
    /// The follower said `is_log_empty() == false`, or accepted a batch.
    known_nonempty: bool,
    /// The request on its way to this follower (one at a time).
    inflight: Option<u64>,
    /// Don't send again before this (after an unreachable peer).
    retry_at: Duration,
    /// When the last request was sent (heartbeats are due after an interval).
    last_sent: Option<Duration>,
    /// Highest commit index sent to this follower.
    commit_sent: Option<u64>,
    /// Heard from since the last check-quorum round.
    recent_active: bool,
    kind: PeerKind,
    /// The snapshot on its way to the follower, and the bytes it took.
    snapshot_sent: Option<(Arc<Snapshot>, usize)>,
}

impl Progress {
    pub fn new(next: u64, kind: PeerKind) -> Self {
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
            kind,
            snapshot_sent: None,
        }
    }

    // ----- views -----

    pub fn matched(&self) -> Option<u64> {
        self.matched
    }
    pub fn next(&self) -> u64 {
        self.next
    }
    pub fn state(&self) -> ProgressState {
        self.state
    }
    pub fn is_replicating(&self) -> bool {
        self.state == ProgressState::Replicate
    }
    pub fn kind(&self) -> PeerKind {
        self.kind
    }
    pub fn known_nonempty(&self) -> bool {
        self.known_nonempty
    }
    pub fn commit_sent(&self) -> Option<u64> {
        self.commit_sent
    }
    pub fn has_inflight(&self) -> bool {
        self.inflight.is_some()
    }

    /// Waiting out `retry_interval` after the peer could not be reached.
    pub fn is_paused(&self, now: Duration) -> bool {
        now < self.retry_at
    }

    /// When the next heartbeat is due.
    pub fn heartbeat_at(&self, interval: Duration) -> Duration {
        self.last_sent.map_or(Duration::ZERO, |t| t + interval)
    }

    pub fn heartbeat_due(&self, now: Duration, interval: Duration) -> bool {
        now >= self.heartbeat_at(interval)
    }

    /// The earliest time this follower needs the leader's attention.
    pub fn next_deadline(&self, interval: Duration) -> Option<Duration> {
        (self.inflight.is_none() || self.kind.heartbeats_beside_inflight())
            .then(|| self.heartbeat_at(interval).max(self.retry_at))
    }

    // ----- transitions -----

    pub fn set_kind(&mut self, kind: PeerKind) {
        self.kind = kind;
    }

    /// A request went out; `seq` is set for a request that must be answered
    /// before the next batch (heartbeats beside it carry `None`).
    pub fn sent(&mut self, seq: Option<u64>, now: Duration) {
        if seq.is_some() {
            self.inflight = seq;
        }
        self.last_sent = Some(now);
    }

    /// The answer (or failure) to request `seq` came back.
    pub fn answered(&mut self, seq: u64) {
        if self.inflight == Some(seq) {
            self.inflight = None;
        }
    }

    /// The follower said something: it counts for check-quorum.
    pub fn mark_active(&mut self) {
        self.recent_active = true;
    }

    /// Heard from since the last check? Starts a new round.
    pub fn take_active(&mut self) -> bool {
        std::mem::take(&mut self.recent_active)
    }

    pub fn note_commit_sent(&mut self, commit: u64) {
        self.commit_sent = Some(self.commit_sent.map_or(commit, |s| s.max(commit)));
    }

    /// The snapshot being sent, and where its next chunk starts.
    pub fn snapshot_in_flight(&self) -> Option<(Arc<Snapshot>, usize)> {
        self.snapshot_sent.clone()
    }

    /// A chunk of `snap` from `offset` went out (a transfer sticks to it).
    pub fn snapshot_started(&mut self, snap: Arc<Snapshot>, offset: usize) {
        if offset == 0 {
            self.snapshot_sent = Some((snap, 0));
        }
    }

    /// The follower took the snapshot up to byte `end`.
    pub fn snapshot_sent(&mut self, end: usize) {
        if let Some((_, at)) = &mut self.snapshot_sent {
            *at = end;
        }
    }

    /// The follower accepted a batch ending at `last` (raft-rs's
    /// `maybe_update` + `become_replicate`).
    pub fn maybe_update(&mut self, last: Option<u64>) {
        self.snapshot_sent = None;
        if let Some(last) = last {
            self.matched = Some(self.matched.map_or(last, |m| m.max(last)));
            self.next = self.next.max(last + 1);
        }
        self.state = ProgressState::Replicate;
        self.backoff = 1;
        self.known_nonempty = true;
    }

    /// The follower rejected a batch whose first entry was `from`: step back
    /// further (exponentially), never below the leader's first index
    /// (raft-rs's `maybe_decr_to` + `become_probe`).
    pub fn maybe_decr_to(&mut self, from: u64, log_first: u64) {
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

    /// Walk from `next` again, checking the match before streaming.
    pub fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
    }

    /// A whole-log batch was refused: ask again before the next one.
    pub fn forget_nonempty(&mut self) {
        self.known_nonempty = false;
    }

    /// The follower answered `is_log_empty()`: an empty one gets the whole
    /// log from `first`.
    pub fn on_log_empty(&mut self, empty: bool, first: u64) {
        self.known_nonempty = true;
        if empty {
            self.next = first;
            self.matched = None;
        }
    }

    /// The peer could not be reached: probe again when it comes back.
    pub fn on_unreachable(&mut self, now: Duration, retry: Duration) {
        // A snapshot transfer resumes where the follower last answered:
        // starting over after every lost chunk might never finish.
        self.state = ProgressState::Probe;
        self.retry_at = now + retry;
        if self.kind.forgets_on_restart() {
            // It may have restarted: its log is back to its seeded entries
            // and its commit index is gone.
            self.known_nonempty = false;
            self.matched = None;
            self.commit_sent = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_walks_back_exponentially_to_the_first_index() {
        let mut p = Progress::new(20, PeerKind::Rust);
        p.maybe_decr_to(19, 4);
        assert_eq!(p.next(), 19);
        p.maybe_decr_to(18, 4);
        assert_eq!(p.next(), 17);
        p.maybe_decr_to(16, 4);
        assert_eq!(p.next(), 13);
        p.maybe_decr_to(12, 4);
        assert_eq!(p.next(), 4, "the walk reached the first index");
        p.maybe_decr_to(4, 4);
        assert_eq!(p.next(), 4, "never below the first index");
        assert_eq!(p.state(), ProgressState::Probe);
    }

    #[test]
    fn accept_replicates_and_matched_never_goes_back() {
        let mut p = Progress::new(5, PeerKind::Rust);
        p.maybe_update(Some(9));
        p.maybe_update(Some(7));
        assert_eq!(p.matched(), Some(9));
        assert_eq!(p.next(), 10);
        assert!(p.is_replicating());
    }

    #[test]
    fn one_request_in_flight_and_only_its_answer_clears_it() {
        let mut p = Progress::new(0, PeerKind::Rust);
        p.sent(Some(3), Duration::from_millis(1));
        assert!(p.has_inflight());
        p.answered(2);
        assert!(p.has_inflight());
        p.answered(3);
        assert!(!p.has_inflight());
    }

    #[test]
    fn an_unreachable_original_peer_is_assumed_restarted() {
        let mut p = Progress::new(0, PeerKind::Original);
        p.maybe_update(Some(4));
        p.note_commit_sent(3);
        p.on_unreachable(Duration::from_millis(10), Duration::from_millis(50));
        assert_eq!(p.matched(), None);
        assert_eq!(p.commit_sent(), None);
        assert!(!p.known_nonempty());
        assert!(p.is_paused(Duration::from_millis(59)));
        assert!(!p.is_paused(Duration::from_millis(60)));
        let mut r = Progress::new(0, PeerKind::Rust);
        r.maybe_update(Some(4));
        r.on_unreachable(Duration::ZERO, Duration::ZERO);
        assert_eq!(r.matched(), Some(4), "a Rust peer keeps its log");
    }
}
