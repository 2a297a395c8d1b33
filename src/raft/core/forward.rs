//! Forwarding (paper 3.3.3), both ends: a follower sends the commands it
//! took on to its leader, with batch ids; a leader (or a follower, which
//! passes them on) queues forwarded commands, dropping a batch it already
//! queued.

use std::collections::BTreeMap;
use std::time::Duration;

use log::{debug, warn};

use super::*;

/// The forwarding state a node keeps whatever its role.
#[derive(Debug, Default)]
pub(super) struct Forwarding {
    /// The forward request on its way (one at a time).
    inflight: Option<u64>,
    retry_at: Duration,
    /// A forwarded batch to send again, with its id (the leader drops
    /// copies it already has).
    retry: Option<(u64, Vec<Command>)>,
    batches: u64,
    pub incarnation: u64,
    /// Intake: the last forwarded batch queued from each node.
    seen: BTreeMap<NodeId, ForwardId>,
}

impl Raft {
    /// Send waiting commands (or the batch to retry) to the leader.
    pub(super) fn forward(&mut self, now: Duration) {
        let Some(leader) = self.leader_id else { return };
        if (self.proposals.is_empty() && self.fwd.retry.is_none())
            || leader == self.cfg.id
            || self.fwd.inflight.is_some()
            || now < self.fwd.retry_at
        {
            return;
        }
        let (batch, commands) = match self.fwd.retry.take() {
            Some(retry) => retry,
            None => {
                let n = self.proposals.len().min(self.cfg.max_batch.max(1));
                self.fwd.batches += 1;
                (self.fwd.batches, self.proposals.drain(..n).collect())
            }
        };
        let entries = commands.iter().map(|c| WireEntry {
            term: self.term,
            index: None,
            command: c.clone(),
        });
        let rpc = Rpc::AppendEntries(AppendEntries {
            entries: Some(entries.collect()),
            term: self.term,
            commit_index: None,
            all_log: false,
        });
        let pending = Pending::Forward {
            to: leader,
            commands,
            batch,
            sent_at: now,
        };
        let seq = self.send(leader, rpc, pending);
        self.fwd.inflight = Some(seq);
        let id = ForwardId {
            incarnation: self.fwd.incarnation,
            batch,
        };
        if let Some(m) = self.out.messages.last_mut() {
            m.forward_id = Some(id);
        }
    }

    /// When the next forward (or retry) may go.
    pub(super) fn forward_deadline(&self) -> Duration {
        let waiting = !self.proposals.is_empty() || self.fwd.retry.is_some();
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
        batch: u64,
        commands: Vec<Command>,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) {
        self.fwd.inflight = None;
        match result {
            Ok(Reply::Append(AppendReply { success: true, .. })) => return,
            Err(RpcFailure::Timeout(why)) if !self.peer_kind(to).dedupes_forwards() => {
                // It may have queued this batch, and cannot drop a copy:
                // sending it again could deal the damage twice.
                warn!(
                    "node {}: forward to leader {to} timed out ({why}); not resent, to avoid a double click",
                    self.cfg.id
                );
                return;
            }
            other => debug!(
                "node {}: forwarding to {to} failed ({other:?}); will retry",
                self.cfg.id
            ),
        }
        self.fwd.retry = Some((batch, commands));
        self.fwd.retry_at = now + self.cfg.retry_interval;
    }

    /// A node of a newer term answered a forward: it has the commands if
    /// it acknowledged them (sending them again would append them twice);
    /// otherwise they go again to whoever leads next.
    pub(super) fn forward_answered_by_newer_term(
        &mut self,
        batch: u64,
        commands: Vec<Command>,
        result: &Result<Reply, RpcFailure>,
    ) {
        self.fwd.inflight = None;
        if !matches!(result, Ok(Reply::Append(AppendReply { success: true, .. }))) {
            self.fwd.retry = Some((batch, commands));
        }
    }

    /// A new leader appends the batch its old leader never acknowledged.
    pub(super) fn take_unforwarded(&mut self) {
        if let Some((_, commands)) = self.fwd.retry.take() {
            let rest = std::mem::replace(&mut self.proposals, commands);
            self.proposals.extend(rest);
        }
    }

    /// Forwarded commands arrive: a leader queues them; anyone else passes
    /// them on to its leader. A batch already queued from that node (same
    /// id) is acknowledged again but not queued twice.
    pub(super) fn take_forwarded(
        &mut self,
        now: Duration,
        term: u64,
        commands: Vec<Command>,
        from: Option<NodeId>,
        forward_id: Option<ForwardId>,
    ) -> AppendReply {
        let ack = |term| AppendReply {
            success: true,
            term,
        };
        if let (Some(from), Some(id)) = (from, forward_id) {
            let seen = self.fwd.seen.get(&from);
            if seen.is_some_and(|s| s.incarnation == id.incarnation && id.batch <= s.batch) {
                debug!(
                    "node {}: forwarded batch {id} from {from} again: dropped",
                    self.cfg.id
                );
                return ack(self.term);
            }
            self.fwd.seen.insert(from, id);
        }
        if term > self.term && self.cfg.elections() {
            self.become_follower(term, None, now);
        }
        self.proposals.extend(commands);
        ack(self.term)
    }
}
