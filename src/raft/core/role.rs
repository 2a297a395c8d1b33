//! Per-role state: what only a follower, a (pre-)candidate or a leader
//! keeps. A role change replaces the whole value, so no field of an old
//! role can leak into the next one.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::raft::progress::Progress;
use std::collections::BTreeSet;

use crate::raft::types::{Mode, NodeId, Sig, VoteProof};

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

/// Who answered a (pre-)vote, and how (with the signatures of granted
/// votes, in a cluster with keys).
#[derive(Debug, Default)]
pub(super) struct Votes {
    answers: BTreeMap<NodeId, bool>,
    sigs: BTreeMap<NodeId, Sig>,
}

impl Votes {
    pub fn record(&mut self, from: NodeId, granted: bool, sig: Option<Sig>) {
        self.answers.insert(from, granted);
        if let (true, Some(sig)) = (granted, sig) {
            self.sigs.insert(from, sig);
        }
    }

    pub fn granted_by(&self, id: NodeId) -> bool {
        self.answers.get(&id) == Some(&true)
    }

    pub fn signatures(&self) -> impl Iterator<Item = (NodeId, Sig)> + '_ {
        self.sigs.iter().map(|(id, s)| (*id, s.clone()))
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
    /// The signed votes that elected this leader (a cluster with keys),
    /// and the followers that took them.
    pub proof: Option<VoteProof>,
    pub proved: BTreeSet<NodeId>,
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
