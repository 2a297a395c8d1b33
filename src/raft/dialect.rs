//! The two dialects a peer may speak: a Rust node, or an original Python
//! node (`raftian/raftian.py`, `raftian/bobs/bob*.py`).
//!
//! The wire is the same; the original's handling of it has quirks that a
//! Rust leader and forwarder must work around. Every such rule is a method
//! here, so the leader's code reads as plain Raft with a few questions to
//! the peer's dialect, and a reader finds all the quirks in one file.

use super::progress::Progress;

/// Which implementation a peer runs. Rust nodes send `X-Raftian-Node` on
/// every request and answer; the original nodes do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerKind {
    Rust,
    Original,
}

impl PeerKind {
    /// A request that carried (or an answer that carried) the node header
    /// comes from a Rust node.
    pub fn from_header(present: bool) -> Self {
        if present {
            PeerKind::Rust
        } else {
            PeerKind::Original
        }
    }

    /// A Rust follower gets a nil-entries heartbeat beside a slow request in
    /// flight so that its election timer does not fire; the original
    /// followers have no election timer, and fault on nil entries.
    pub fn heartbeats_beside_inflight(self) -> bool {
        self == PeerKind::Rust
    }

    /// A Rust follower that matches the leader and has nothing new gets a
    /// nil-entries heartbeat; an original one gets its last matched entry
    /// again instead (nil entries raise a Fault there).
    pub fn takes_nil_heartbeats(self) -> bool {
        self == PeerKind::Rust
    }

    /// The original followers append blindly to an empty log: the leader
    /// asks `is_log_empty()` before probing them, as the original leader
    /// does.
    pub fn needs_empty_probe(self, pr: &Progress) -> bool {
        self == PeerKind::Original && !pr.is_replicating() && !pr.known_nonempty()
    }

    /// The commit index worth sending now (`None`: nothing new to say).
    /// The original followers reject a commit index they already have and
    /// crash on one past their log, so they get each one once, capped by
    /// what they hold, and none while probing (they may take the commit
    /// index, refuse the entries, and apply past their log).
    pub fn new_commit(self, pr: &Progress, commit: Option<u64>) -> Option<u64> {
        let c = match self {
            PeerKind::Rust => commit,
            PeerKind::Original if pr.is_replicating() => match (commit, pr.matched()) {
                (Some(c), Some(m)) => Some(c.min(m)),
                _ => None,
            },
            PeerKind::Original => None,
        };
        c.filter(|c| pr.commit_sent().is_none_or(|s| *c > s))
    }

    /// The commit index a batch carries: a Rust follower caps it itself, so
    /// it always gets the leader's; an original one only a new one.
    pub fn batch_commit(self, commit: Option<u64>, new_commit: Option<u64>) -> Option<u64> {
        match self {
            PeerKind::Rust => commit,
            PeerKind::Original => new_commit,
        }
    }

    /// An original node starts over from its seeded log after a restart,
    /// so one that could not be reached may have lost what it held.
    pub fn forgets_on_restart(self) -> bool {
        self == PeerKind::Original
    }

    /// A Rust leader drops a forwarded batch it has already queued (by its
    /// id); an original leader cannot, so a forward to it that timed out
    /// (maybe delivered) must not be sent again.
    pub fn dedupes_forwards(self) -> bool {
        self == PeerKind::Rust
    }

    /// The original leader sends its whole log to an empty follower without
    /// `all_log` (e.g. 4,5,6,7,7,8): a follower takes it as the paper says.
    pub fn appends_blindly_to_empty(self) -> bool {
        self == PeerKind::Original
    }
}
