//! Forwarding (paper 3.3.3), both ends: a follower sends the commands it
//! took on to its leader; a leader (or a follower, which passes them on)
//! queues forwarded commands.
//!
//! Whether a command arrives is the client session's business
//! (`client.rs`): a command forwarded to a Rust leader stays unapplied
//! until this node sees it applied, and goes again if it does not. An
//! original Python leader cannot carry the ids, so what it acknowledged is
//! its own, and what timed out on the way to it is not sent again (it may
//! have queued it, and would apply a copy).

use std::time::Duration;

use log::{debug, warn};

use super::client::Proposal;
use super::*;

/// The forwarding state a node keeps whatever its role.
#[derive(Debug, Default)]
pub(super) struct Forwarding {
    /// The forward request on its way (one at a time).
    inflight: Option<u64>,
    /// Don't forward before this (after a failed forward).
    retry_at: Duration,
}

impl Raft {
    /// Send waiting commands on to the leader.
    pub(super) fn forward(&mut self, now: Duration) {
        let Some(leader) = self.leader_id else { return };
        if self.proposals.is_empty()
            || leader == self.cfg.id
            || self.fwd.inflight.is_some()
            || now < self.fwd.retry_at
        {
            return;
        }
        let n = self.proposals.len().min(self.cfg.max_batch.max(1));
        let batch: Vec<Proposal> = self.proposals.drain(..n).collect();
        self.note_sent(batch.iter().map(|p| &p.client), now);
        let entries = batch.iter().map(|p| WireEntry {
            term: self.term,
            index: None,
            command: p.command.clone(),
            client: p.client,
            sig: p.sig.clone(),
        });
        let rpc = Rpc::AppendEntries(AppendEntries {
            entries: Some(entries.collect()),
            term: self.term,
            commit_index: None,
            all_log: false,
            proof: None,
        });
        let pending = Pending::Forward {
            to: leader,
            batch,
            sent_at: now,
        };
        self.fwd.inflight = Some(self.send(leader, rpc, pending));
    }

    /// When the next forward may go.
    pub(super) fn forward_deadline(&self) -> Duration {
        let waiting = !self.proposals.is_empty();
        if waiting && self.fwd.inflight.is_none() && self.leader_id.is_some() {
            self.fwd.retry_at
        } else {
            Duration::MAX
        }
    }

    /// The leader's answer to a forwarded batch (paper 3.3.3: keep sending
    /// until it acknowledges).
    pub(super) fn on_forward_reply(
        &mut self,
        to: NodeId,
        batch: Vec<Proposal>,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) {
        self.fwd.inflight = None;
        let rust = self.peer_kind(to).dedupes_forwards();
        match result {
            Ok(Reply::Append(AppendReply { success: true, .. })) => {
                if !rust {
                    self.forget(batch.into_iter().map(|p| p.client));
                }
            }
            Err(RpcFailure::Timeout(why)) if !rust => {
                warn!(
                    "node {}: forward to leader {to} timed out ({why}); not resent, to avoid a double click",
                    self.cfg.id
                );
                self.forget(batch.into_iter().map(|p| p.client));
            }
            other => {
                debug!(
                    "node {}: forwarding to {to} failed ({other:?}); will retry",
                    self.cfg.id
                );
                self.requeue(batch);
                self.fwd.retry_at = now + self.cfg.retry_interval;
            }
        }
    }

    /// A node of a newer term answered a forward: if it acknowledged the
    /// commands it has them; otherwise they go to whoever leads next.
    pub(super) fn forward_answered_by_newer_term(
        &mut self,
        to: NodeId,
        batch: Vec<Proposal>,
        result: &Result<Reply, RpcFailure>,
    ) {
        self.fwd.inflight = None;
        let acked = matches!(result, Ok(Reply::Append(AppendReply { success: true, .. })));
        if !acked {
            self.requeue(batch);
        } else if !self.peer_kind(to).dedupes_forwards() {
            self.forget(batch.into_iter().map(|p| p.client));
        }
    }

    /// Put a batch back at the head of `proposals`, in its order.
    fn requeue(&mut self, batch: Vec<Proposal>) {
        self.note_requeued(batch.iter().map(|p| p.client));
        let rest = std::mem::replace(&mut self.proposals, batch);
        self.proposals.extend(rest);
    }

    /// Forwarded commands arrive: a leader queues them; anyone else passes
    /// them on to its leader.
    pub(super) fn take_forwarded(
        &mut self,
        now: Duration,
        term: u64,
        entries: Vec<Proposal>,
    ) -> AppendReply {
        if term > self.term && self.cfg.elections() {
            self.become_follower(term, None, now);
        }
        self.proposals.extend(entries);
        AppendReply {
            success: true,
            term: self.term,
        }
    }
}
