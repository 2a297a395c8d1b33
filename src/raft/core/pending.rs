//! Requests on their way: what each was for, so that its reply (or its
//! absence after `request_timeout`) goes to the right handler.

use std::collections::BTreeMap;
use std::time::Duration;

use super::client::Proposal;
use crate::raft::types::{NodeId, Reply, RpcFailure, SnapshotMeta};

/// An `append_entries_rpc` on its way to a follower.
#[derive(Clone, Debug)]
pub(super) struct AppendSent {
    pub to: NodeId,
    pub term: u64,
    /// First index of the batch (`None` for a heartbeat with no entries).
    pub from: Option<u64>,
    pub last: Option<u64>,
    pub all_log: bool,
    /// A nil-entries heartbeat beside the request in flight (or instead of
    /// one): its answer proves the follower alive and changes nothing else.
    pub heartbeat_only: bool,
    pub sent_at: Duration,
}

/// What an outstanding request was for.
#[derive(Clone, Debug)]
pub(super) enum Pending {
    Append(AppendSent),
    Probe {
        to: NodeId,
        term: u64,
        sent_at: Duration,
    },
    Vote {
        term: u64,
        pre: bool,
        sent_at: Duration,
    },
    Forward {
        to: NodeId,
        batch: Vec<Proposal>,
        sent_at: Duration,
    },
    /// `is_log_empty()` to a peer whose kind we do not know: its answer
    /// (with or without our header) tells.
    Hello {
        sent_at: Duration,
    },
    /// `timeout_now_rpc` to a transfer's target.
    TimeoutNow {
        sent_at: Duration,
    },
    /// A chunk of a snapshot, ending at byte `end`.
    Snapshot {
        to: NodeId,
        term: u64,
        meta: SnapshotMeta,
        end: usize,
        done: bool,
        sent_at: Duration,
    },
}

impl Pending {
    fn sent_at(&self) -> Duration {
        match self {
            Pending::Append(AppendSent { sent_at, .. })
            | Pending::Probe { sent_at, .. }
            | Pending::Vote { sent_at, .. }
            | Pending::Forward { sent_at, .. }
            | Pending::Snapshot { sent_at, .. }
            | Pending::Hello { sent_at }
            | Pending::TimeoutNow { sent_at } => *sent_at,
        }
    }

    /// The term a reply to this request reports, if that term is one the
    /// receiver must heed: a granted pre-vote answers with the voter's
    /// current term, which says nothing about a newer leader.
    pub fn reply_term(&self, result: &Result<Reply, RpcFailure>) -> Option<u64> {
        match result {
            Ok(Reply::Append(r)) => Some(r.term),
            Ok(Reply::Snapshot(t) | Reply::TimeoutNow(t)) => Some(*t),
            Ok(Reply::Vote(r)) if !r.vote_granted => Some(r.term),
            Ok(Reply::Vote(r)) if !matches!(self, Pending::Vote { pre: true, .. }) => Some(r.term),
            _ => None,
        }
    }
}

/// Outstanding requests by sequence number.
#[derive(Debug)]
pub(super) struct Requests {
    pending: BTreeMap<u64, Pending>,
    next_seq: u64,
}

impl Requests {
    pub fn new() -> Self {
        Requests {
            pending: BTreeMap::new(),
            next_seq: 1,
        }
    }

    /// Record a request; returns its sequence number.
    pub fn add(&mut self, p: Pending) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.insert(seq, p);
        seq
    }

    pub fn take(&mut self, seq: u64) -> Option<Pending> {
        self.pending.remove(&seq)
    }

    /// When the oldest request times out.
    pub fn next_expiry(&self, timeout: Duration) -> Option<Duration> {
        self.pending
            .values()
            .map(Pending::sent_at)
            .min()
            .map(|t| t + timeout)
    }

    /// Remove and return the requests with no answer after `timeout`.
    pub fn take_expired(&mut self, now: Duration, timeout: Duration) -> Vec<(u64, Pending)> {
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now >= p.sent_at() + timeout)
            .map(|(seq, _)| *seq)
            .collect();
        expired
            .into_iter()
            .filter_map(|seq| self.pending.remove(&seq).map(|p| (seq, p)))
            .collect()
    }
}
