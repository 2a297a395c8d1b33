//! Per-role state: what only a follower, a (pre-)candidate or a leader
//! keeps. A role change replaces the whole value, so no field of an old
//! role can leak into the next one.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::raft::progress::Progress;
use crate::raft::types::{Mode, NodeId};

#[derive(Debug)]
pub(super) enum Role {
    Follower(FollowerState),
    PreCandidate(Votes),
    Candidate(Votes),
    Leader(LeaderState),
}

#[derive(Debug, Default)]
pub(super) struct FollowerState {
    /// Last index known to match the current leader's log.
    pub leader_match: Option<u64>,
}

/// Who answered a (pre-)vote, and how.
#[derive(Debug, Default)]
pub(super) struct Votes(BTreeMap<NodeId, bool>);

impl Votes {
    pub fn record(&mut self, from: NodeId, granted: bool) {
        self.0.insert(from, granted);
    }

    pub fn granted_by(&self, id: NodeId) -> bool {
        self.0.get(&id) == Some(&true)
    }
}

#[derive(Debug)]
pub(super) struct LeaderState {
    /// One per follower.
    pub progress: BTreeMap<NodeId, Progress>,
    /// The next check-quorum round.
    pub quorum_check_at: Duration,
    /// A leadership transfer under way.
    pub transfer: Option<Transfer>,
    /// `RaftLog::config_key` when `progress` last matched the members.
    pub synced: (u64, usize),
    /// Learners catching up: the index their current round must reach, and
    /// when the round began.
    pub catch_up: BTreeMap<NodeId, (u64, Duration)>,
    /// Removed nodes still sent heartbeats, until this time.
    pub departing: BTreeMap<NodeId, Duration>,
}

#[derive(Debug)]
pub(super) struct Transfer {
    pub target: NodeId,
    /// Given up after this.
    pub deadline: Duration,
    /// `timeout_now_rpc` went out.
    pub sent: bool,
}

impl Role {
    pub fn mode(&self) -> Mode {
        match self {
            Role::Follower(_) => Mode::Follower,
            Role::PreCandidate(_) => Mode::PreCandidate,
            Role::Candidate(_) => Mode::Candidate,
            Role::Leader(_) => Mode::Leader,
        }
    }

    pub fn follower() -> Self {
        Role::Follower(FollowerState::default())
    }
}
