//! Forwarding (paper 3.3.3): commands a follower sends on to its leader,
//! with batch ids so a retry is not queued twice.

use std::time::Duration;

use log::{debug, warn};

use super::*;

impl Raft {
    pub(super) fn forward(&mut self, now: Duration) -> Vec<Outbound> {
        let Some(leader) = self.leader_id else {
            return Vec::new();
        };
        if (self.proposals.is_empty() && self.forward_retry.is_none())
            || leader == self.cfg.id
            || self.forward_inflight.is_some()
            || now < self.forward_retry_at
        {
            return Vec::new();
        }
        let (batch, commands) = match self.forward_retry.take() {
            Some(retry) => retry,
            None => {
                let n = self.proposals.len().min(self.cfg.max_batch.max(1));
                self.forward_batches += 1;
                (self.forward_batches, self.proposals.drain(..n).collect())
            }
        };
        let entries = commands
            .iter()
            .map(|c| WireEntry {
                term: self.term,
                index: None,
                command: c.clone(),
            })
            .collect();
        let seq = self.seq();
        self.forward_inflight = Some(seq);
        self.pending.insert(
            seq,
            Pending::Forward {
                to: leader,
                commands,
                batch,
                sent_at: now,
            },
        );
        vec![Outbound {
            forward_id: Some(ForwardId {
                incarnation: self.incarnation,
                batch,
            }),
            to: leader,
            seq,
            rpc: Rpc::AppendEntries(AppendEntries {
                entries: Some(entries),
                term: self.term,
                commit_index: None,
                all_log: false,
            }),
        }]
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
        self.forward_inflight = None;
        let leader_is_rust = self.rust_peers.get(&to).copied().unwrap_or(false);
        match result {
            Ok(Reply::Append(AppendReply { success: true, .. })) => return,
            Err(RpcFailure::Timeout(why)) if !leader_is_rust => {
                // An original Python leader cannot drop a copy it already
                // has, and it may have queued this one: sending it again
                // could deal the damage twice. Take it as delivered.
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
        self.forward_retry = Some((batch, commands));
        self.forward_retry_at = now + self.cfg.retry_interval;
    }
}
