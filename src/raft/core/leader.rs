//! Leader side (paper 3.3.1): new entries, one request in flight per
//! follower, walking back on rejects, committing by majority of this term.
//! What differs for an original Python follower is asked of its
//! [`PeerKind`] (see `dialect.rs`).

use std::time::Duration;

use log::{debug, warn};

use super::client::Proposal;
use super::pending::AppendSent;
use super::role::LeaderState;
use super::*;
use crate::raft::progress::Progress;
use std::collections::BTreeSet;

impl Raft {
    /// The leader's part of `service_actions`.
    pub(super) fn lead(&mut self, now: Duration) {
        // During a handover, commands wait for the next leader.
        self.manage_membership(now);
        if !self.drive_transfer(now) {
            self.append_proposals(now);
        }
        if self.cfg.check_quorum && self.cfg.elections() {
            self.check_quorum(now);
        }
        if self.mode() == Mode::Leader {
            self.replicate_all(now);
            self.maybe_commit();
        }
    }

    pub(super) fn leader_deadline(&self, l: &LeaderState) -> Duration {
        let mut d = Duration::MAX;
        if self.cfg.check_quorum && self.cfg.elections() {
            d = d.min(l.quorum_check_at);
        }
        let hb = self.cfg.heartbeat_interval;
        let d = d.min(self.transfer_deadline().unwrap_or(Duration::MAX));
        l.progress
            .values()
            .filter_map(|p| p.next_deadline(hb))
            .fold(d, Duration::min)
    }

    fn leader(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            Role::Leader(l) => Some(l),
            _ => None,
        }
    }

    pub(super) fn progress(&mut self, to: NodeId) -> Option<&mut Progress> {
        self.leader()?.progress.get_mut(&to)
    }

    pub(super) fn append_proposals(&mut self, now: Duration) {
        let proposals = std::mem::take(&mut self.proposals);
        self.note_sent(proposals.iter().map(|p| &p.client), now);
        if let Some(stamp) = self.stamp_due(now, &proposals) {
            self.log
                .append_command(self.term, Command::Stamp(stamp), None, None);
        }
        let members = self.membership();
        for p in proposals {
            if let Some(c) = p.client.filter(|c| !members.contains(c.node)) {
                // A removed node's session ended with its removal: a late
                // command of it could otherwise apply twice.
                debug!("command {c} of a non-member dropped");
                continue;
            }
            if self.log.next_index() > WIRE_MAX {
                warn!("log index would overflow the wire's 32-bit int: command dropped");
                continue;
            }
            if !self.proposal_ok(&members, &p) {
                warn!(
                    "node {}: a forwarded command {:?} fails its signature check: dropped",
                    self.cfg.id, p.client
                );
                continue;
            }
            self.log
                .append_command(self.term, p.command, p.client, p.sig);
        }
    }

    /// In a cluster with keys, a command must carry its taker's signature.
    fn proposal_ok(&self, members: &Membership, p: &Proposal) -> bool {
        let e = Entry {
            term: self.term,
            index: self.log.next_index(),
            command: p.command.clone(),
            client: p.client,
            sig: p.sig.clone(),
        };
        signing::entry_ok(self.cfg.command_auth.as_deref(), members, &e)
    }

    pub(super) fn replicate_all(&mut self, now: Duration) {
        let peers: Vec<NodeId> = match &self.role {
            Role::Leader(l) => l.progress.keys().copied().collect(),
            _ => return,
        };
        for p in peers {
            self.replicate_to(p, now);
        }
    }

    /// At most one request in flight per follower: a slow or dead follower
    /// delays only itself.
    fn replicate_to(&mut self, to: NodeId, now: Duration) {
        let (hb, commit) = (self.cfg.heartbeat_interval, self.commit_index);
        let (snap, last) = (self.log.snapshot(), self.log.last_index());
        // The lowest `next` a batch can serve: the first entry held, or the
        // one after the snapshot (whose index and term anchor the batch).
        let lowest = snap.map_or(self.log.first_index(), |s| Some(s.index + 1));
        let Some(pr) = self.progress(to) else { return };
        if pr.is_paused(now) {
            return;
        }
        let due = pr.heartbeat_due(now, hb);
        let kind = pr.kind();
        if pr.has_inflight() {
            // A slow answer must not starve the follower's election timer.
            if due && kind.heartbeats_beside_inflight() {
                self.send_heartbeat(to, commit, now);
            }
            return;
        }
        let (Some(lowest), Some(last)) = (lowest, last) else {
            // Nothing in the log: only heartbeats.
            if due {
                self.send_heartbeat(to, None, now);
            }
            return;
        };
        if let Some(s) = snap
            && kind == PeerKind::Original
            && pr.next() <= s.index + 1
        {
            // An original node cannot install a snapshot, and would append
            // the compacted anchor blindly: it cannot be served from here.
            return self.cannot_serve_original(to, s.index);
        }
        if snap.is_some_and(|s| pr.next() <= s.index) {
            // It needs entries we compacted (we never compact beside an
            // original node, which could not install the snapshot).
            return self.send_snapshot_chunk(to, now);
        }
        if kind.needs_empty_probe(pr) {
            return self.send_probe(to, now);
        }
        let next = pr.next().clamp(lowest, last + 1);
        let new_commit = kind.new_commit(pr, commit);
        if next > last && pr.is_replicating() {
            if new_commit.is_none() && !due {
                return;
            }
            if kind.takes_nil_heartbeats() {
                // It caps the commit index by what it knows it shares with us.
                if let Some(c) = commit {
                    pr.note_commit_sent(c);
                }
                return self.send_heartbeat(to, commit, now);
            }
        }
        let commit = kind.batch_commit(commit, new_commit);
        self.send_batch(to, next, commit, now);
    }

    /// A follower that answered took our proof of election; one that
    /// faulted (it restarted and forgot it) gets it again.
    fn note_proof_taken(&mut self, to: NodeId, result: &Result<Reply, RpcFailure>) {
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        match result {
            Ok(Reply::Append(_)) => {
                l.proved.insert(to);
            }
            Err(RpcFailure::Fault(..)) => {
                l.proved.remove(&to);
            }
            _ => {}
        }
    }

    /// The batch `[prev] + new` from `next` on (or the whole log, flagged
    /// `all_log`, when `next` is the first index).
    fn send_batch(&mut self, to: NodeId, next: u64, commit: Option<u64>, now: Duration) {
        let last = self.log.last_index().expect("non-empty log");
        let snap = self.log.snapshot();
        let (from, all_log) = match (snap, self.log.first_index()) {
            (None, Some(first)) if next <= first => (first, true),
            _ => (next - 1, false),
        };
        // `max_batch` counts new entries: the anchor (prev) entry rides along,
        // so a batch of 1 still makes progress.
        let max_batch = self.cfg.max_batch.max(1) as u64;
        let to_idx = last.min((from + max_batch - 1).max(next));
        let mut entries = Vec::with_capacity((to_idx + 1 - from) as usize);
        if let Some(s) = snap
            && s.index == from
        {
            // The anchor was compacted: its index and term are what the
            // follower checks (a Rust follower, which never stores it).
            entries.push(WireEntry {
                term: s.term,
                index: Some(s.index),
                command: Command::NOOP,
                client: None,
                sig: None,
            });
        }
        entries.extend(self.log.slice(from, to_idx).iter().map(WireEntry::from));
        let rpc = Rpc::AppendEntries(AppendEntries {
            entries: Some(entries),
            term: self.term,
            commit_index: commit,
            all_log,
            proof: self.proof_for(to),
        });
        if let (Some(c), Some(pr)) = (commit, self.progress(to)) {
            pr.note_commit_sent(c);
        }
        let sent = AppendSent {
            to,
            term: self.term,
            from: Some(from),
            last: Some(to_idx),
            all_log,
            heartbeat_only: false,
            sent_at: now,
        };
        self.send_append(rpc, sent);
    }

    /// `append_entries_rpc(nil, term, commit_index, false)`: the follower
    /// caps `commit_index` by what it knows it shares with this leader.
    pub(super) fn send_heartbeat(&mut self, to: NodeId, commit_index: Option<u64>, now: Duration) {
        let rpc = Rpc::AppendEntries(AppendEntries {
            entries: None,
            term: self.term,
            commit_index,
            all_log: false,
            proof: self.proof_for(to),
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
        self.send_append(rpc, sent);
    }

    fn send_append(&mut self, rpc: Rpc, sent: AppendSent) {
        let (to, now, heartbeat) = (sent.to, sent.sent_at, sent.heartbeat_only);
        let seq = self.send(to, rpc, Pending::Append(sent));
        if let Some(pr) = self.progress(to) {
            pr.sent((!heartbeat).then_some(seq), now);
        }
    }

    fn send_probe(&mut self, to: NodeId, now: Duration) {
        let term = self.term;
        let seq = self.send(
            to,
            Rpc::IsLogEmpty,
            Pending::Probe {
                to,
                term,
                sent_at: now,
            },
        );
        if let Some(pr) = self.progress(to) {
            pr.sent(Some(seq), now);
        }
    }

    pub(super) fn on_append_reply(
        &mut self,
        seq: u64,
        sent: AppendSent,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) {
        let retry = self.cfg.retry_interval;
        // Walking back may reach the snapshot: then it needs the snapshot.
        let log_first = match self.log.snapshot() {
            Some(s) => s.index,
            None => self.log.first_index().unwrap_or(0),
        };
        let current = sent.term == self.term;
        let to = sent.to;
        if current {
            self.note_proof_taken(to, &result);
        }
        let Some(pr) = self.progress(to) else { return };
        pr.answered(seq);
        if !current {
            return;
        }
        match result {
            Ok(Reply::Append(r)) if sent.heartbeat_only => {
                pr.mark_active();
                if !r.success {
                    // It does not know where it matches us (it restarted):
                    // a probe batch tells it, and its commit index follows.
                    pr.become_probe();
                }
            }
            Ok(Reply::Append(r)) => {
                pr.mark_active();
                if r.success {
                    pr.maybe_update(sent.last);
                    self.maybe_commit();
                } else if sent.all_log {
                    // Only a commit index the follower already had can make
                    // it refuse its leader's whole log; that index is never
                    // sent twice, so just send again.
                    pr.forget_nonempty();
                } else if let Some(from) = sent.from {
                    pr.maybe_decr_to(from, log_first);
                }
            }
            Err(RpcFailure::Fault(code, msg)) if sent.heartbeat_only => {
                // A follower that faults on a nil-entries heartbeat (as the
                // original does) is still alive.
                debug!("heartbeat to {to} answered fault {code}: {msg}");
                pr.mark_active();
            }
            Err(RpcFailure::Fault(code, msg)) => {
                warn!("append to node {to} answered fault {code}: {msg}");
                pr.mark_active();
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
        seq: u64,
        to: NodeId,
        term: u64,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) {
        let retry = self.cfg.retry_interval;
        let first = self.log.first_index().unwrap_or(0);
        let current = term == self.term;
        let Some(pr) = self.progress(to) else { return };
        pr.answered(seq);
        if !current {
            return;
        }
        match result {
            Ok(Reply::LogEmpty(empty)) => {
                pr.mark_active();
                pr.on_log_empty(empty, first);
            }
            other => {
                debug!("is_log_empty on node {to} failed: {other:?}");
                pr.on_unreachable(now, retry);
            }
        }
    }

    /// Commit the highest index a majority holds, if it is of this term
    /// (Raft 5.4.2: never by counting replicas of older terms).
    fn cannot_serve_original(&mut self, to: NodeId, snap: u64) {
        if self.warned_original.insert(to) {
            warn!(
                "node {}: original Python node {to} needs entries up to {snap}, which this node compacted: it cannot catch up from here",
                self.cfg.id
            );
        }
    }

    pub(super) fn maybe_commit(&mut self) {
        if self.commit_by_quorum() {
            self.apply();
        }
    }

    /// Raise the commit index to what a majority holds (of this term's
    /// entries). True if it moved.
    pub(super) fn commit_by_quorum(&mut self) -> bool {
        let Role::Leader(l) = &self.role else {
            return false;
        };
        let Some(n) = self.quorum_match(&l.progress) else {
            return false;
        };
        if self.commit_index.is_some_and(|c| n <= c) || self.log.term_at(n) != Some(self.term) {
            return false;
        }
        self.commit_index = Some(n);
        true
    }

    fn check_quorum(&mut self, now: Duration) {
        let (min, id) = (self.cfg.election_timeout_min, self.cfg.id);
        let Some(l) = self.leader() else { return };
        if now < l.quorum_check_at {
            return;
        }
        l.quorum_check_at = now + min;
        let heard: BTreeSet<NodeId> = l
            .progress
            .iter_mut()
            .filter_map(|(p, pr)| pr.take_active().then_some(*p))
            .chain([id])
            .collect();
        if !self.voters_agree(|v| heard.contains(&v)) {
            warn!(
                "leader {id} heard from only {} nodes in an election timeout, not a majority of the voters: steps down",
                heard.len()
            );
            self.become_follower(self.term, None, now);
        }
    }
}
