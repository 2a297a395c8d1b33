//! Leader side (paper 3.3.1): new entries, one request in flight per
//! follower, walking back on rejects, committing by majority of this term.

use std::time::Duration;

use log::{debug, warn};

use super::*;

impl Raft {
    pub(super) fn append_proposals(&mut self) {
        if self.proposals.is_empty() {
            return;
        }
        for command in std::mem::take(&mut self.proposals) {
            if self.log.next_index() > WIRE_MAX {
                warn!("log index would overflow the wire's 32-bit int: command dropped");
                continue;
            }
            let e = self.log.append_command(self.term, command).clone();
            self.persist.append.push(e);
        }
        self.log_version += 1;
    }

    pub(super) fn replicate_all(&mut self, now: Duration) -> Vec<Outbound> {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        peers
            .into_iter()
            .filter_map(|p| self.replicate_to(p, now))
            .collect()
    }

    /// At most one request in flight per follower: a slow or dead follower
    /// delays only itself.
    pub(super) fn replicate_to(&mut self, to: NodeId, now: Duration) -> Option<Outbound> {
        let commit = self.commit_index;
        let first = self.log.first_index();
        let last = self.log.last_index();
        let heartbeat = self.cfg.heartbeat_interval;
        let max_batch = self.cfg.max_batch.max(1) as u64;
        let term = self.term;
        let pr = self.progress.get_mut(&to)?;
        if now < pr.retry_at {
            return None;
        }
        let heartbeat_due = pr.last_sent.is_none_or(|t| now >= t + heartbeat);
        if pr.inflight.is_some() {
            // A slow answer must not starve the follower's election timer:
            // a Rust follower gets a nil-entries heartbeat beside the
            // request in flight (the original followers have no timer).
            if !(pr.is_rust && heartbeat_due) {
                return None;
            }
            return Some(self.send_heartbeat(to, commit, now));
        }
        let Some(first) = first else {
            // Nothing in the log: only heartbeats.
            if !heartbeat_due {
                return None;
            }
            return Some(self.send_heartbeat(to, None, now));
        };
        let last = last.expect("non-empty log");
        if pr.state == ProgressState::Probe && !pr.known_nonempty && !pr.is_rust {
            // The original followers append blindly to an empty log: ask
            // first, as the original leader does.
            let seq = self.next_seq;
            self.next_seq += 1;
            pr.inflight = Some(seq);
            pr.last_sent = Some(now);
            self.pending.insert(
                seq,
                Pending::Probe {
                    to,
                    term,
                    sent_at: now,
                },
            );
            return Some(Outbound {
                to,
                seq,
                rpc: Rpc::IsLogEmpty,
                forward_id: None,
            });
        }
        let next = pr.next.clamp(first, last + 1);
        let has_new = next <= last;
        // The original followers reject a commit index they already have and
        // crash on one past their log: send it once, capped by what they hold.
        let commit_for_peer = if pr.is_rust {
            commit
        } else if pr.state == ProgressState::Replicate {
            match (commit, pr.matched) {
                (Some(c), Some(m)) => Some(c.min(m)),
                _ => None,
            }
        } else {
            // While probing, the follower may refuse the entries after
            // taking the commit index, and then apply past its log.
            None
        };
        let new_commit = commit_for_peer.filter(|c| pr.commit_sent.is_none_or(|s| *c > s));
        if !has_new
            && new_commit.is_none()
            && !heartbeat_due
            && pr.state == ProgressState::Replicate
        {
            return None;
        }
        if pr.is_rust && !has_new && pr.state == ProgressState::Replicate {
            // A Rust follower that matches us and has nothing new gets a
            // nil-entries heartbeat: it caps the commit index by what it
            // knows it shares with us.
            if let Some(c) = commit {
                pr.commit_sent = Some(c);
            }
            return Some(self.send_heartbeat(to, commit, now));
        }
        let (from, all_log) = if next <= first {
            (first, true)
        } else {
            (next - 1, false)
        };
        // `max_batch` counts new entries: the anchor (prev) entry rides along,
        // so a batch of 1 still makes progress.
        let to_idx = last.min((from + max_batch - 1).max(next));
        let entries: Vec<WireEntry> = self
            .log
            .slice(from, to_idx)
            .iter()
            .map(WireEntry::from)
            .collect();
        let commit_index = if pr.is_rust { commit } else { new_commit };
        if let Some(c) = commit_index {
            pr.commit_sent = Some(pr.commit_sent.map_or(c, |s| s.max(c)));
        }
        let rpc = Rpc::AppendEntries(AppendEntries {
            entries: Some(entries),
            term,
            commit_index,
            all_log,
        });
        let sent = AppendSent {
            to,
            term,
            from: Some(from),
            last: Some(to_idx),
            all_log,
            heartbeat_only: false,
            sent_at: now,
        };
        Some(self.send_append(rpc, sent))
    }

    /// `append_entries_rpc(nil, term, commit_index, false)`: the follower
    /// caps `commit_index` by what it knows it shares with this leader.
    pub(super) fn send_heartbeat(
        &mut self,
        to: NodeId,
        commit_index: Option<u64>,
        now: Duration,
    ) -> Outbound {
        let rpc = Rpc::AppendEntries(AppendEntries {
            entries: None,
            term: self.term,
            commit_index,
            all_log: false,
        });
        let sent = AppendSent {
            to,
            term: self.term,
            from: None,
            last: None,
            all_log: false,
            heartbeat_only: true,
            sent_at: now,
        };
        self.send_append(rpc, sent)
    }

    pub(super) fn send_append(&mut self, rpc: Rpc, sent: AppendSent) -> Outbound {
        let seq = self.seq();
        let to = sent.to;
        if let Some(pr) = self.progress.get_mut(&to) {
            if !sent.heartbeat_only {
                pr.inflight = Some(seq);
            }
            pr.last_sent = Some(sent.sent_at);
        }
        self.pending.insert(seq, Pending::Append(sent));
        Outbound {
            to,
            seq,
            rpc,
            forward_id: None,
        }
    }

    pub(super) fn on_append_reply(
        &mut self,
        seq: u64,
        sent: AppendSent,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) {
        let AppendSent {
            to,
            term,
            from,
            last,
            all_log,
            heartbeat_only,
            ..
        } = sent;
        let retry = self.cfg.retry_interval;
        let log_first = self.log.first_index().unwrap_or(0);
        let current = self.mode == Mode::Leader && term == self.term;
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        if pr.inflight == Some(seq) {
            pr.inflight = None;
        }
        if !current {
            return;
        }
        match result {
            Ok(Reply::Append(_)) if heartbeat_only => pr.recent_active = true,
            Ok(Reply::Append(r)) => {
                pr.recent_active = true;
                if r.success {
                    pr.on_accept(last);
                    self.maybe_commit();
                } else if let Some(from) = from {
                    if all_log {
                        // Only a commit index the follower already had can
                        // make it refuse its leader's whole log; that index
                        // is never sent twice, so just send again.
                        pr.known_nonempty = false;
                    } else {
                        pr.on_reject(from, log_first);
                    }
                }
            }
            Err(RpcFailure::Fault(code, msg)) if heartbeat_only => {
                // The original followers fault on a nil-entries heartbeat,
                // which still shows they are alive.
                debug!("heartbeat to {to} answered fault {code}: {msg}");
                pr.recent_active = true;
            }
            Err(RpcFailure::Fault(code, msg)) => {
                warn!("append to node {to} answered fault {code}: {msg}");
                pr.recent_active = true;
                pr.on_unreachable(now, retry);
            }
            Err(RpcFailure::Unreachable(why) | RpcFailure::Timeout(why)) => {
                debug!("node {to} unreachable: {why}");
                pr.on_unreachable(now, retry);
            }
            Ok(other) => {
                warn!("append to node {to} got a reply of the wrong kind: {other:?}");
                pr.on_unreachable(now, retry);
            }
        }
    }

    pub(super) fn on_probe_reply(
        &mut self,
        to: NodeId,
        term: u64,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) {
        let retry = self.cfg.retry_interval;
        let first = self.log.first_index().unwrap_or(0);
        let current = self.mode == Mode::Leader && term == self.term;
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        pr.inflight = None;
        if !current {
            return;
        }
        match result {
            Ok(Reply::LogEmpty(empty)) => {
                pr.recent_active = true;
                pr.known_nonempty = true;
                if empty {
                    // Send the whole log, flagged all_log.
                    pr.next = first;
                    pr.matched = None;
                }
            }
            other => {
                debug!("is_log_empty on node {to} failed: {other:?}");
                pr.on_unreachable(now, retry);
            }
        }
    }

    /// Commit the highest index a majority holds, if it is of this term
    /// (Raft 5.4.2: never by counting replicas of older terms).
    pub(super) fn maybe_commit(&mut self) {
        if self.mode != Mode::Leader {
            return;
        }
        let mut matched: Vec<Option<u64>> = self.progress.values().map(|p| p.matched).collect();
        matched.push(self.log.last_index());
        let Some(n) = quorum::committed_index(&mut matched) else {
            return;
        };
        if self.commit_index.is_some_and(|c| n <= c) {
            return;
        }
        if self.log.term_at(n) == Some(self.term) {
            self.commit_index = Some(n);
            self.apply();
        }
    }

    pub(super) fn check_quorum(&mut self, now: Duration) {
        if now < self.quorum_check_at {
            return;
        }
        self.quorum_check_at = now + self.cfg.election_timeout_min;
        let active = 1 + self.progress.values().filter(|p| p.recent_active).count();
        for p in self.progress.values_mut() {
            p.recent_active = false;
        }
        if !quorum::has_majority(active, self.cfg.voters()) {
            warn!(
                "leader {} heard from only {active} of {} nodes in an election timeout: steps down",
                self.cfg.id,
                self.cfg.voters()
            );
            self.become_follower(self.term, None, now);
        }
    }
}
