//! The Raft state machine (raft-rs's `raft.rs`): roles and RPC handling.
//!
//! Plain data plus methods. Every method takes the current time (a
//! `Duration` since any fixed origin) and returns what to send; nothing here
//! touches a socket, a thread, a clock or a disk. After every call the
//! runtime must make [`Raft::take_persist`] durable before it sends the
//! returned messages or answers the RPC.

use std::collections::BTreeMap;
use std::time::Duration;

use log::{debug, info, warn};

use super::log::RaftLog;
use super::progress::{Progress, ProgressState};
use super::quorum;
use super::types::*;

/// Largest term or index that fits the wire's 32-bit `<int>`.
pub const WIRE_MAX: u64 = i32::MAX as u64;

/// Tunables. Durations are core time (the `now` passed in).
#[derive(Clone, Debug)]
pub struct RaftConfig {
    pub id: NodeId,
    /// Every other node of the cluster.
    pub peers: Vec<NodeId>,
    /// The paper's setup: this node is always the leader, no elections, and
    /// every node starts at term 1.
    pub static_leader: Option<NodeId>,
    pub heartbeat_interval: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Most entries in one `append_entries_rpc`.
    pub max_batch: usize,
    /// Wait this long before retrying an unreachable peer.
    pub retry_interval: Duration,
    /// A request with no reply after this long is taken as lost.
    pub request_timeout: Duration,
    /// Seed of the election-timeout randomness and of the incarnation
    /// that tags forwarded batches. Give every start of a node a different
    /// seed (the runtime mixes in `rand::random`): a restarted node that
    /// reused its incarnation would have its new batches dropped by the
    /// leader as copies of old ones.
    pub seed: u64,
}

impl RaftConfig {
    pub fn new(id: NodeId, peers: Vec<NodeId>) -> Self {
        RaftConfig {
            id,
            peers,
            static_leader: None,
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            pre_vote: true,
            check_quorum: true,
            max_batch: 4096,
            retry_interval: Duration::from_millis(50),
            request_timeout: Duration::from_secs(2),
            seed: id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03,
        }
    }

    fn voters(&self) -> usize {
        self.peers.len() + 1
    }
}

/// What an outstanding request was for.
#[derive(Clone, Debug)]
enum Pending {
    Append {
        to: NodeId,
        term: u64,
        /// First index of the batch (`None` for a heartbeat with no entries).
        from: Option<u64>,
        last: Option<u64>,
        all_log: bool,
        heartbeat_only: bool,
        sent_at: Duration,
    },
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
        commands: Vec<Command>,
        batch: u64,
        sent_at: Duration,
    },
}

impl Pending {
    fn sent_at(&self) -> Duration {
        match self {
            Pending::Append { sent_at, .. }
            | Pending::Probe { sent_at, .. }
            | Pending::Vote { sent_at, .. }
            | Pending::Forward { sent_at, .. } => *sent_at,
        }
    }
}

/// One Raft node's state.
#[derive(Debug)]
pub struct Raft {
    cfg: RaftConfig,
    mode: Mode,
    term: u64,
    voted_for: Option<NodeId>,
    leader_id: Option<NodeId>,
    log: RaftLog,
    commit_index: Option<u64>,
    last_applied: Option<u64>,

    /// Leader: one per follower.
    progress: BTreeMap<NodeId, Progress>,
    /// Peers known to be Rust nodes (kept across terms).
    rust_peers: BTreeMap<NodeId, bool>,
    /// Candidate / pre-candidate: who granted.
    votes: BTreeMap<NodeId, bool>,
    /// Commands not yet in the log: the leader appends them at the next
    /// `service_actions`; anyone else forwards them to the leader.
    proposals: Vec<Command>,
    forward_inflight: Option<u64>,
    forward_retry_at: Duration,
    /// A forwarded batch to send again, with its id (the leader drops
    /// copies it already has).
    forward_retry: Option<(u64, Vec<Command>)>,
    forward_batches: u64,
    incarnation: u64,
    /// Leader: the last forwarded batch queued from each node.
    forwarded_seen: BTreeMap<NodeId, ForwardId>,
    /// Follower: last index known to match the current leader's log.
    leader_match: Option<u64>,

    election_deadline: Duration,
    last_leader_contact: Option<Duration>,
    quorum_check_at: Duration,

    pending: BTreeMap<u64, Pending>,
    next_seq: u64,
    rng: u64,

    persist: PersistBatch,
    orders: Vec<Entry>,
    log_version: u64,
}

impl Raft {
    /// A node restarting from `hard_state` and `log` (empty on first start).
    pub fn new(
        cfg: RaftConfig,
        hard_state: HardState,
        log: Vec<Entry>,
        now: Duration,
    ) -> Result<Self, String> {
        let log = RaftLog::new(log)?;
        let mut raft = Raft {
            mode: Mode::Follower,
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            leader_id: None,
            log,
            commit_index: None,
            last_applied: None,
            progress: BTreeMap::new(),
            rust_peers: BTreeMap::new(),
            votes: BTreeMap::new(),
            proposals: Vec::new(),
            forward_inflight: None,
            forward_retry_at: Duration::ZERO,
            forward_retry: None,
            forward_batches: 0,
            incarnation: 0,
            forwarded_seen: BTreeMap::new(),
            leader_match: None,
            election_deadline: Duration::ZERO,
            last_leader_contact: None,
            quorum_check_at: Duration::ZERO,
            pending: BTreeMap::new(),
            next_seq: 1,
            rng: cfg.seed | 1,
            persist: PersistBatch::default(),
            orders: Vec::new(),
            log_version: 0,
            cfg,
        };
        raft.incarnation = raft.next_random();
        if let Some(leader) = raft.cfg.static_leader {
            if raft.term == 0 {
                // The paper's nodes all start at term 1.
                raft.term = 1;
                raft.persist.hard_state = Some(raft.hard_state());
            }
            raft.leader_id = Some(leader);
            if leader == raft.cfg.id {
                raft.become_leader(now);
            }
        } else {
            raft.reset_election_timer(now);
            if raft.cfg.peers.is_empty() {
                raft.campaign(now, false);
            }
        }
        Ok(raft)
    }

    // ----- read-only views -----

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    pub fn mode(&self) -> Mode {
        self.mode
    }
    pub fn term(&self) -> u64 {
        self.term
    }
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader_id
    }
    pub fn commit_index(&self) -> Option<u64> {
        self.commit_index
    }
    pub fn last_applied(&self) -> Option<u64> {
        self.last_applied
    }
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    pub fn entries(&self) -> &[Entry] {
        self.log.entries()
    }
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for,
        }
    }
    pub fn config(&self) -> &RaftConfig {
        &self.cfg
    }
    /// Bumped every time the log changes (the log file writer watches it).
    pub fn log_version(&self) -> u64 {
        self.log_version
    }
    /// Commands waiting to be appended (leader) or forwarded (others).
    pub fn queued_commands(&self) -> usize {
        self.proposals.len()
    }
    /// `is_log_empty()`.
    pub fn is_log_empty(&self) -> bool {
        self.log.is_empty()
    }
    /// The earliest time at which `service_actions` has timed work to do
    /// (an election, a heartbeat, a check-quorum round, a retry, a request
    /// to give up on). Between events the runtime may sleep until then;
    /// calling `service_actions` earlier is always harmless.
    pub fn next_deadline(&self) -> Duration {
        let mut d = Duration::MAX;
        if let Some(oldest) = self.pending.values().map(Pending::sent_at).min() {
            d = d.min(oldest + self.cfg.request_timeout);
        }
        match self.mode {
            Mode::Leader => {
                if self.cfg.check_quorum && self.cfg.static_leader.is_none() {
                    d = d.min(self.quorum_check_at);
                }
                for pr in self.progress.values() {
                    let heartbeat = pr
                        .last_sent
                        .map_or(Duration::ZERO, |t| t + self.cfg.heartbeat_interval);
                    if pr.inflight.is_none() || pr.is_rust {
                        d = d.min(heartbeat.max(pr.retry_at));
                    }
                }
                if !self.proposals.is_empty() {
                    return Duration::ZERO;
                }
            }
            Mode::Follower | Mode::PreCandidate | Mode::Candidate => {
                if self.cfg.static_leader.is_none() {
                    d = d.min(self.election_deadline);
                }
                let forwarding = !self.proposals.is_empty() || self.forward_retry.is_some();
                if forwarding && self.forward_inflight.is_none() && self.leader_id.is_some() {
                    d = d.min(self.forward_retry_at);
                }
            }
        }
        d
    }

    // ----- what the runtime takes after each call -----

    /// Changes to make durable before sending or answering anything.
    pub fn take_persist(&mut self) -> Option<PersistBatch> {
        if self.persist.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.persist))
        }
    }

    /// Committed entries to put on `raft_orders`, in log order.
    pub fn take_orders(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.orders)
    }

    /// The runtime learnt whether a peer is a Rust node (our header on its
    /// reply) or an original Python node.
    pub fn note_peer_kind(&mut self, peer: NodeId, is_rust: bool) {
        self.rust_peers.insert(peer, is_rust);
        if let Some(p) = self.progress.get_mut(&peer) {
            p.is_rust = is_rust;
        }
    }

    // ----- inbound RPCs -----

    /// Commands from the game (`pygame_commands`): the leader appends them
    /// at the next `service_actions`, a follower forwards them.
    pub fn propose(&mut self, commands: impl IntoIterator<Item = Command>) {
        self.proposals.extend(commands);
    }

    /// `append_entries_rpc(entries, term, commit_index, all_log)`.
    /// `sender` is the calling node's id when it told us (Rust nodes send a
    /// header; the original Python nodes do not).
    pub fn append_entries_rpc(
        &mut self,
        req: &AppendEntries,
        sender: Option<NodeId>,
        now: Duration,
    ) -> Result<AppendReply, InvalidRequest> {
        self.append_entries_rpc_with_id(req, sender, None, now)
    }

    /// [`Raft::append_entries_rpc`] for forwarded commands that carry a
    /// [`ForwardId`]: a batch already queued from that node is acknowledged
    /// again but not queued twice.
    pub fn append_entries_rpc_with_id(
        &mut self,
        req: &AppendEntries,
        sender: Option<NodeId>,
        forward_id: Option<ForwardId>,
        now: Duration,
    ) -> Result<AppendReply, InvalidRequest> {
        let batch = validate_append(req)?;
        let sender = sender.filter(|s| *s != self.cfg.id && self.cfg.peers.contains(s));
        match batch {
            Batch::Forwarded(commands) => {
                if let (Some(from), Some(id)) = (sender, forward_id) {
                    let seen = self.forwarded_seen.get(&from);
                    if seen.is_some_and(|s| s.incarnation == id.incarnation && id.batch <= s.batch)
                    {
                        debug!(
                            "node {}: forwarded batch {id} from {from} again: dropped",
                            self.cfg.id
                        );
                        return Ok(AppendReply {
                            success: true,
                            term: self.term,
                        });
                    }
                    self.forwarded_seen.insert(from, id);
                }
                Ok(self.receive_forwarded(req.term, commands, now))
            }
            Batch::Replicate(entries) => Ok(self.receive_append(req, entries, sender, now)),
        }
    }

    /// `request_vote_rpc(term, candidate_id, last_log_index, last_log_term)`.
    pub fn request_vote_rpc(
        &mut self,
        req: &VoteRequest,
        now: Duration,
    ) -> Result<VoteReply, InvalidRequest> {
        self.validate_vote(req)?;
        let deny = VoteReply {
            term: self.term,
            vote_granted: false,
        };
        if self.cfg.static_leader.is_some() || self.in_lease(now) {
            return Ok(deny);
        }
        if req.term < self.term {
            return Ok(deny);
        }
        if req.term > self.term {
            self.become_follower(req.term, None, now);
        }
        let can_vote = self.voted_for.is_none() || self.voted_for == Some(req.candidate_id);
        let granted = can_vote && self.log_ok(req);
        if granted {
            self.voted_for = Some(req.candidate_id);
            self.persist.hard_state = Some(self.hard_state());
            self.reset_election_timer(now);
            debug!(
                "node {} votes for {} in term {}",
                self.cfg.id, req.candidate_id, self.term
            );
        }
        Ok(VoteReply {
            term: self.term,
            vote_granted: granted,
        })
    }

    /// `pre_vote_rpc(...)`: would this node vote for the candidate in
    /// `req.term`? Changes nothing.
    pub fn pre_vote_rpc(
        &mut self,
        req: &VoteRequest,
        now: Duration,
    ) -> Result<VoteReply, InvalidRequest> {
        self.validate_vote(req)?;
        let granted = self.cfg.static_leader.is_none()
            && !self.in_lease(now)
            && req.term > self.term
            && self.log_ok(req);
        Ok(VoteReply {
            term: self.term,
            vote_granted: granted,
        })
    }

    // ----- the tick -----

    /// The paper's `service_actions`: timers (elections, heartbeats), the
    /// leader's new entries and replication, forwarding, and apply.
    pub fn service_actions(&mut self, now: Duration) -> Vec<Outbound> {
        let mut out = Vec::new();
        self.expire_pending(now);
        match self.mode {
            Mode::Follower | Mode::PreCandidate | Mode::Candidate => {
                if self.cfg.static_leader.is_none() && now >= self.election_deadline {
                    let pre = self.cfg.pre_vote;
                    out.extend(self.campaign(now, pre));
                }
                out.extend(self.forward(now));
            }
            Mode::Leader => {
                self.append_proposals();
                if self.cfg.check_quorum && self.cfg.static_leader.is_none() {
                    self.check_quorum(now);
                }
                if self.mode == Mode::Leader {
                    out.extend(self.replicate_all(now));
                    self.maybe_commit();
                }
            }
        }
        self.apply();
        out
    }

    /// A peer's reply (or failure) to a request sent with `seq`. Returns
    /// what to send next.
    pub fn on_reply(
        &mut self,
        from: NodeId,
        seq: u64,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) -> Vec<Outbound> {
        let Some(pending) = self.pending.remove(&seq) else {
            return Vec::new();
        };
        // Any reply carrying a newer term makes us a follower of that term.
        let reply_term = match &result {
            Ok(Reply::Append(r)) => Some(r.term),
            Ok(Reply::Vote(r)) if !r.vote_granted => Some(r.term),
            Ok(Reply::Vote(r)) if !matches!(pending, Pending::Vote { pre: true, .. }) => {
                Some(r.term)
            }
            _ => None,
        };
        if let Some(t) = reply_term
            && t > self.term
            && self.cfg.static_leader.is_none()
        {
            info!(
                "node {} sees term {t} from node {from}: steps down",
                self.cfg.id
            );
            if let Pending::Forward {
                commands, batch, ..
            } = pending
            {
                self.forward_inflight = None;
                // Acknowledged by a node of a newer term: it has them, so
                // sending them again would append them twice.
                if !matches!(result, Ok(Reply::Append(AppendReply { success: true, .. }))) {
                    self.forward_retry = Some((batch, commands));
                }
            }
            self.become_follower(t, None, now);
            return self.service_actions(now);
        }
        let mut out = Vec::new();
        match pending {
            Pending::Append {
                to,
                term,
                from: first,
                last,
                all_log,
                heartbeat_only,
                ..
            } => self.on_append_reply(
                seq,
                to,
                term,
                first,
                last,
                all_log,
                heartbeat_only,
                result,
                now,
            ),
            Pending::Probe { to, term, .. } => self.on_probe_reply(to, term, result, now),
            Pending::Vote { term, pre, .. } => {
                out = self.on_vote_reply(from, term, pre, result, now);
            }
            Pending::Forward {
                commands, batch, ..
            } => self.on_forward_reply(from, batch, commands, result, now),
        }
        out.extend(self.service_actions(now));
        out
    }

    // ----- follower side -----

    fn receive_forwarded(
        &mut self,
        term: u64,
        commands: Vec<Command>,
        now: Duration,
    ) -> AppendReply {
        if term > self.term && self.cfg.static_leader.is_none() {
            self.become_follower(term, None, now);
        }
        // A leader queues them; anyone else passes them on to its leader.
        self.proposals.extend(commands);
        AppendReply {
            success: true,
            term: self.term,
        }
    }

    fn receive_append(
        &mut self,
        req: &AppendEntries,
        entries: Vec<Entry>,
        sender: Option<NodeId>,
        now: Duration,
    ) -> AppendReply {
        let reject = |raft: &Raft| AppendReply {
            success: false,
            term: raft.term,
        };
        if req.term < self.term {
            return reject(self);
        }
        if self.mode == Mode::Leader && req.term == self.term {
            warn!(
                "node {}: another leader ({sender:?}) in my term {}: rejected",
                self.cfg.id, self.term
            );
            return reject(self);
        }
        let leader = sender.or(self.cfg.static_leader);
        if req.term > self.term || self.mode != Mode::Follower {
            self.become_follower(req.term, leader, now);
        }
        if leader.is_some() && self.leader_id != leader {
            self.leader_id = leader;
            self.leader_match = None;
        }
        self.last_leader_contact = Some(now);
        self.reset_election_timer(now);

        if !entries.is_empty() {
            match self.merge(&entries, req.all_log, sender.is_some()) {
                Ok(()) => self.leader_match = entries.last().map(|e| e.index),
                Err(why) => {
                    debug!("node {} rejects append: {why}", self.cfg.id);
                    return reject(self);
                }
            }
        }
        // Commit what the leader committed, but never past what we know we
        // share with it.
        if let (Some(c), Some(m)) = (req.commit_index, self.leader_match) {
            let c = c.min(m);
            if self.commit_index.is_none_or(|old| c > old) {
                self.commit_index = Some(c);
            }
        }
        self.apply();
        AppendReply {
            success: true,
            term: self.term,
        }
    }

    /// Put a leader's batch into the log (paper 3.3.2, with Raft's rule that
    /// only a conflicting suffix is dropped).
    fn merge(&mut self, batch: &[Entry], all_log: bool, from_rust: bool) -> Result<(), String> {
        let first = &batch[0];
        let anchored = self.log.matches(first.index, first.term);
        if !anchored {
            if all_log {
                // The batch is the leader's whole log: take it.
                if let Some(c) = self.commit_index
                    && !batch
                        .iter()
                        .any(|e| e.index == c && self.log.matches(e.index, e.term))
                {
                    return Err(format!(
                        "all_log batch would drop committed entry {c}; refused"
                    ));
                }
                self.log.clear();
                self.note_truncate(0);
            } else if self.log.is_empty() && !from_rust {
                // The original leader sends its whole log to an empty
                // follower without all_log: append it (the paper's rule).
            } else {
                return Err(format!(
                    "no entry with index {} and term {}",
                    first.index, first.term
                ));
            }
        }
        let mut changed = false;
        for e in batch {
            match self.log.term_at(e.index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    if self.commit_index.is_some_and(|c| e.index <= c) {
                        return Err(format!("would overwrite committed entry {}", e.index));
                    }
                    self.log.truncate_from(e.index);
                    self.note_truncate(e.index);
                }
                None => {}
            }
            if !self.log.is_empty() && e.index != self.log.next_index() {
                return Err(format!("entry {} leaves a gap", e.index));
            }
            self.log.push(e.clone());
            self.persist.append.push(e.clone());
            changed = true;
        }
        if changed {
            self.log_version += 1;
        }
        Ok(())
    }

    // ----- leader side -----

    fn append_proposals(&mut self) {
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

    fn replicate_all(&mut self, now: Duration) -> Vec<Outbound> {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        peers
            .into_iter()
            .filter_map(|p| self.replicate_to(p, now))
            .collect()
    }

    /// At most one request in flight per follower: a slow or dead follower
    /// delays only itself.
    fn replicate_to(&mut self, to: NodeId, now: Duration) -> Option<Outbound> {
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
        Some(self.send_append(to, rpc, Some(from), Some(to_idx), all_log, false, now))
    }

    /// `append_entries_rpc(nil, term, commit_index, false)`: the follower
    /// caps `commit_index` by what it knows it shares with this leader.
    fn send_heartbeat(&mut self, to: NodeId, commit_index: Option<u64>, now: Duration) -> Outbound {
        let rpc = Rpc::AppendEntries(AppendEntries {
            entries: None,
            term: self.term,
            commit_index,
            all_log: false,
        });
        self.send_append(to, rpc, None, None, false, true, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_append(
        &mut self,
        to: NodeId,
        rpc: Rpc,
        from: Option<u64>,
        last: Option<u64>,
        all_log: bool,
        heartbeat_only: bool,
        now: Duration,
    ) -> Outbound {
        let seq = self.seq();
        let term = self.term;
        if let Some(pr) = self.progress.get_mut(&to) {
            if !heartbeat_only {
                pr.inflight = Some(seq);
            }
            pr.last_sent = Some(now);
        }
        self.pending.insert(
            seq,
            Pending::Append {
                to,
                term,
                from,
                last,
                all_log,
                heartbeat_only,
                sent_at: now,
            },
        );
        Outbound {
            to,
            seq,
            rpc,
            forward_id: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append_reply(
        &mut self,
        seq: u64,
        to: NodeId,
        term: u64,
        from: Option<u64>,
        last: Option<u64>,
        all_log: bool,
        heartbeat_only: bool,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) {
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

    fn on_probe_reply(
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
    fn maybe_commit(&mut self) {
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

    fn check_quorum(&mut self, now: Duration) {
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

    // ----- elections -----

    fn campaign(&mut self, now: Duration, pre: bool) -> Vec<Outbound> {
        self.reset_election_timer(now);
        let term = self.term + 1;
        if term > WIRE_MAX {
            warn!("term would overflow the wire's 32-bit int: no election");
            return Vec::new();
        }
        self.leader_id = None;
        self.leader_match = None;
        self.votes.clear();
        self.votes.insert(self.cfg.id, true);
        if pre {
            self.mode = Mode::PreCandidate;
            debug!("node {} starts a pre-vote for term {term}", self.cfg.id);
        } else {
            self.mode = Mode::Candidate;
            self.term = term;
            self.voted_for = Some(self.cfg.id);
            self.persist.hard_state = Some(self.hard_state());
            info!("node {} starts an election in term {term}", self.cfg.id);
        }
        if quorum::has_majority(1, self.cfg.voters()) {
            return self.win(now, pre);
        }
        let req = VoteRequest {
            term,
            candidate_id: self.cfg.id,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        let peers = self.cfg.peers.clone();
        peers
            .into_iter()
            .map(|to| {
                let seq = self.seq();
                self.pending.insert(
                    seq,
                    Pending::Vote {
                        term,
                        pre,
                        sent_at: now,
                    },
                );
                let rpc = if pre {
                    Rpc::PreVote(req)
                } else {
                    Rpc::RequestVote(req)
                };
                Outbound {
                    to,
                    seq,
                    rpc,
                    forward_id: None,
                }
            })
            .collect()
    }

    fn on_vote_reply(
        &mut self,
        from: NodeId,
        term: u64,
        pre: bool,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) -> Vec<Outbound> {
        let expected_mode = if pre {
            Mode::PreCandidate
        } else {
            Mode::Candidate
        };
        let campaign_term = if pre { self.term + 1 } else { self.term };
        if self.mode != expected_mode || term != campaign_term {
            return Vec::new();
        }
        let granted = matches!(
            result,
            Ok(Reply::Vote(VoteReply {
                vote_granted: true,
                ..
            }))
        );
        self.votes.insert(from, granted);
        let yes = self.votes.values().filter(|v| **v).count();
        if quorum::has_majority(yes, self.cfg.voters()) {
            self.win(now, pre)
        } else {
            Vec::new()
        }
    }

    fn win(&mut self, now: Duration, pre: bool) -> Vec<Outbound> {
        if pre {
            self.campaign(now, false)
        } else {
            self.become_leader(now);
            self.replicate_all(now)
        }
    }

    fn become_leader(&mut self, now: Duration) {
        info!("node {} becomes leader in term {}", self.cfg.id, self.term);
        self.mode = Mode::Leader;
        self.leader_id = Some(self.cfg.id);
        self.leader_match = None;
        let next = self.log.next_index();
        self.progress = self
            .cfg
            .peers
            .iter()
            .map(|p| {
                let is_rust = self.rust_peers.get(p).copied().unwrap_or(false);
                (*p, Progress::new(next, is_rust))
            })
            .collect();
        self.quorum_check_at = now + self.cfg.election_timeout_min;
        if let Some((_, commands)) = self.forward_retry.take() {
            // Never acknowledged by the old leader: this node appends them.
            let rest = std::mem::replace(&mut self.proposals, commands);
            self.proposals.extend(rest);
        }
        if self.cfg.static_leader.is_none() {
            // A no-op of the new term lets earlier entries commit (5.4.2).
            self.proposals.insert(0, Command::NOOP);
        }
        self.append_proposals();
        self.maybe_commit();
    }

    fn become_follower(&mut self, term: u64, leader: Option<NodeId>, now: Duration) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.persist.hard_state = Some(self.hard_state());
        }
        if self.mode != Mode::Follower {
            debug!("node {} becomes follower in term {term}", self.cfg.id);
        }
        self.mode = Mode::Follower;
        self.leader_id = leader.or(self.cfg.static_leader);
        self.leader_match = None;
        self.progress.clear();
        self.votes.clear();
        self.reset_election_timer(now);
    }

    fn in_lease(&self, now: Duration) -> bool {
        if !self.cfg.check_quorum {
            return false;
        }
        if self.mode == Mode::Leader {
            return true;
        }
        self.leader_id.is_some()
            && self
                .last_leader_contact
                .is_some_and(|t| now < t + self.cfg.election_timeout_min)
    }

    /// Raft 5.4.1: the candidate's log is at least as up to date as ours.
    fn log_ok(&self, req: &VoteRequest) -> bool {
        (req.last_log_term, req.last_log_index) >= (self.log.last_term(), self.log.last_index())
    }

    fn validate_vote(&self, req: &VoteRequest) -> Result<(), InvalidRequest> {
        if req.candidate_id == self.cfg.id || !self.cfg.peers.contains(&req.candidate_id) {
            return Err(InvalidRequest(format!(
                "candidate_id {} is not a peer of node {}",
                req.candidate_id, self.cfg.id
            )));
        }
        if req.last_log_index.is_some() != req.last_log_term.is_some() {
            return Err(InvalidRequest(
                "last_log_index and last_log_term must both be nil or both be set".into(),
            ));
        }
        Ok(())
    }

    // ----- forwarding (paper 3.3.3) -----

    fn forward(&mut self, now: Duration) -> Vec<Outbound> {
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
    fn on_forward_reply(
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

    // ----- apply (paper 3.4) -----

    fn apply(&mut self) {
        let Some(commit) = self.commit_index else {
            return;
        };
        let from = self
            .last_applied
            .map_or_else(|| self.log.first_index().unwrap_or(0), |a| a + 1);
        if from > commit {
            return;
        }
        let entries = self.log.slice(from, commit);
        if let Some(last) = entries.last() {
            self.last_applied = Some(last.index);
            self.orders.extend_from_slice(entries);
        }
    }

    // ----- bookkeeping -----

    fn expire_pending(&mut self, now: Duration) {
        let timeout = self.cfg.request_timeout;
        let expired: Vec<(u64, NodeId)> = self
            .pending
            .iter()
            .filter(|(_, p)| now >= p.sent_at() + timeout)
            .map(|(seq, p)| {
                let to = match p {
                    Pending::Append { to, .. }
                    | Pending::Probe { to, .. }
                    | Pending::Forward { to, .. } => *to,
                    Pending::Vote { .. } => self.cfg.id,
                };
                (*seq, to)
            })
            .collect();
        for (seq, to) in expired {
            // Treated as a reply that never came.
            let _ = self.on_reply_inner_lost(to, seq, now);
        }
    }

    fn on_reply_inner_lost(&mut self, to: NodeId, seq: u64, now: Duration) -> Option<()> {
        let pending = self.pending.remove(&seq)?;
        let lost = Err(RpcFailure::Timeout("no reply in time".into()));
        match pending {
            Pending::Append {
                to,
                term,
                from,
                last,
                all_log,
                heartbeat_only,
                ..
            } => self.on_append_reply(
                seq,
                to,
                term,
                from,
                last,
                all_log,
                heartbeat_only,
                lost,
                now,
            ),
            Pending::Probe { to, term, .. } => self.on_probe_reply(to, term, lost, now),
            Pending::Vote { .. } => {}
            Pending::Forward {
                commands, batch, ..
            } => {
                let lost = Err(RpcFailure::Timeout("no reply in time".into()));
                self.on_forward_reply(to, batch, commands, lost, now);
            }
        }
        Some(())
    }

    fn note_truncate(&mut self, index: u64) {
        self.persist.append.retain(|e| e.index < index);
        if self.persist.append.is_empty() {
            self.persist.truncate_from =
                Some(self.persist.truncate_from.map_or(index, |t| t.min(index)));
        }
        self.log_version += 1;
    }

    fn reset_election_timer(&mut self, now: Duration) {
        let lo = self.cfg.election_timeout_min.as_micros() as u64;
        let hi = self.cfg.election_timeout_max.as_micros() as u64;
        let span = hi.saturating_sub(lo).max(1);
        let jitter = self.next_random() % span;
        self.election_deadline = now + Duration::from_micros(lo + jitter);
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic for a seed, good enough for timeouts.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }
}

enum Batch {
    /// Commands a follower forwards to the leader (nil indices).
    Forwarded(Vec<Command>),
    /// Entries from the leader (possibly none: a heartbeat), duplicates removed.
    Replicate(Vec<Entry>),
}

/// Check an `append_entries_rpc` before anything changes.
fn validate_append(req: &AppendEntries) -> Result<Batch, InvalidRequest> {
    if req.term > WIRE_MAX {
        return Err(InvalidRequest(format!("term {} is out of range", req.term)));
    }
    let Some(entries) = &req.entries else {
        return Ok(Batch::Replicate(Vec::new()));
    };
    if entries.is_empty() {
        return Ok(Batch::Replicate(Vec::new()));
    }
    let forwarded = entries.iter().filter(|e| e.index.is_none()).count();
    if forwarded == entries.len() {
        if req.all_log {
            return Err(InvalidRequest(
                "forwarded commands (nil index) cannot be all_log".into(),
            ));
        }
        return Ok(Batch::Forwarded(
            entries.iter().map(|e| e.command.clone()).collect(),
        ));
    }
    if forwarded > 0 {
        return Err(InvalidRequest(
            "entries mix forwarded commands (nil index) with log entries".into(),
        ));
    }
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for e in entries {
        let index = e.index.expect("checked above");
        if e.term > req.term {
            return Err(InvalidRequest(format!(
                "entry {index} has term {} above the request's term {}",
                e.term, req.term
            )));
        }
        let entry = Entry {
            term: e.term,
            index,
            command: e.command.clone(),
        };
        if let Some(prev) = out.last() {
            if index == prev.index && *prev == entry {
                // The original leader repeats its last entry to an empty
                // follower (…, 7, 7, 8): the same entry twice is one entry.
                continue;
            }
            if index != prev.index + 1 {
                return Err(InvalidRequest(format!(
                    "entries are not consecutive: index {index} follows {}",
                    prev.index
                )));
            }
            if e.term < prev.term {
                return Err(InvalidRequest(format!(
                    "entry {index} has a lower term than the entry before it"
                )));
            }
        }
        out.push(entry);
    }
    Ok(Batch::Replicate(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Deliver `out` from `from` to `to` and the replies back; returns what
    /// the sender sends next.
    fn pump(from: &mut Raft, to: &mut Raft, out: Vec<Outbound>, now: Duration) -> Vec<Outbound> {
        let mut next = Vec::new();
        for o in out {
            assert_eq!(o.to, to.id());
            let reply = match &o.rpc {
                Rpc::AppendEntries(a) => Reply::Append(
                    to.append_entries_rpc_with_id(a, Some(from.id()), o.forward_id, now)
                        .unwrap(),
                ),
                Rpc::IsLogEmpty => Reply::LogEmpty(to.is_log_empty()),
                other => panic!("unexpected {other:?}"),
            };
            next.extend(from.on_reply(to.id(), o.seq, Ok(reply), now));
        }
        next
    }

    /// Found by the simulation (tests/sim basic_agree seed 26, max_batch 1): the
    /// batch limit counted the anchor entry, so a limit of 1 sent only the
    /// anchor and replication never advanced.
    #[test]
    fn batch_limit_of_one_still_replicates() {
        let mut cfg = RaftConfig::new(0, vec![1]);
        cfg.static_leader = Some(0);
        cfg.max_batch = 1;
        let mut leader = Raft::new(cfg, HardState::default(), Vec::new(), ms(0)).unwrap();
        let mut fcfg = RaftConfig::new(1, vec![0]);
        fcfg.static_leader = Some(0);
        let mut follower = Raft::new(fcfg, HardState::default(), Vec::new(), ms(0)).unwrap();
        leader.note_peer_kind(1, true);
        leader.propose((1..=3).map(Command::Int));
        let mut out = leader.service_actions(ms(1));
        for round in 0..20 {
            for o in &out {
                if let Rpc::AppendEntries(a) = &o.rpc {
                    assert!(a.entries.as_ref().map_or(0, Vec::len) <= 2, "anchor + 1");
                }
            }
            out = pump(&mut leader, &mut follower, out, ms(2 + round));
            if out.is_empty() {
                out = leader.service_actions(ms(100 * (round + 1)));
            }
        }
        assert_eq!(follower.entries().len(), 3, "{:?}", follower.entries());
        assert_eq!(leader.commit_index(), Some(2));
    }

    /// Found by the simulation (unreliable_churn seed 19, partitions seed
    /// 181): a forwarded batch acknowledged by a leader whose term is newer
    /// was forwarded again after the step-down, and a different (or an
    /// original Python) leader would append its commands twice.
    #[test]
    fn forward_acknowledged_by_newer_term_is_not_resent() {
        let mut f = Raft::new(
            RaftConfig::new(1, vec![0, 2]),
            HardState {
                term: 3,
                voted_for: None,
            },
            Vec::new(),
            ms(0),
        )
        .unwrap();
        let heartbeat = |term| AppendEntries {
            entries: None,
            term,
            commit_index: None,
            all_log: false,
        };
        f.append_entries_rpc(&heartbeat(3), Some(0), ms(1)).unwrap();
        assert_eq!(f.leader_id(), Some(0));
        f.propose([Command::Int(7)]);
        let out = f.service_actions(ms(2));
        let fwd = out
            .iter()
            .find(|o| o.forward_id.is_some())
            .expect("the command is forwarded");
        let ack = Reply::Append(AppendReply {
            success: true,
            term: 4,
        });
        f.on_reply(0, fwd.seq, Ok(ack), ms(3));
        assert_eq!(f.term(), 4);
        // Node 2 now leads term 4: the acknowledged command must not go there.
        f.append_entries_rpc(&heartbeat(4), Some(2), ms(4)).unwrap();
        for t in [5, 100, 500] {
            let out = f.service_actions(ms(t));
            assert!(
                out.iter().all(|o| o.forward_id.is_none()),
                "forwarded again: {out:?}"
            );
        }
        assert_eq!(f.queued_commands(), 0);
    }
}
