//! The Raft state machine (raft-rs's `raft.rs`): roles and RPC handling.
//!
//! Plain data plus methods. Every method takes the current time (a
//! `Duration` since any fixed origin) and returns what to send; nothing here
//! touches a socket, a thread, a clock or a disk. After every call the
//! runtime must make [`Raft::take_persist`] durable before it sends the
//! returned messages or answers the RPC.
//!
//! This file holds the state, the tick (`service_actions`), reply dispatch,
//! apply and bookkeeping; the roles live beside it: `follower` (taking
//! batches), `leader` (replication and commit), `election` (votes and role
//! changes) and `forward` (commands sent on to the leader).

use std::collections::BTreeMap;
use std::time::Duration;

use log::info;

use super::log::RaftLog;
use super::progress::{Progress, ProgressState};
use super::quorum;
use super::types::*;

mod election;
mod follower;
mod forward;
mod leader;

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

/// An `append_entries_rpc` on its way to a follower.
#[derive(Clone, Debug)]
struct AppendSent {
    to: NodeId,
    term: u64,
    /// First index of the batch (`None` for a heartbeat with no entries).
    from: Option<u64>,
    last: Option<u64>,
    all_log: bool,
    /// A nil-entries heartbeat beside the request in flight (or instead of
    /// one): its answer proves the follower alive and changes nothing else.
    heartbeat_only: bool,
    sent_at: Duration,
}

/// What an outstanding request was for.
#[derive(Clone, Debug)]
enum Pending {
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
        commands: Vec<Command>,
        batch: u64,
        sent_at: Duration,
    },
}

impl Pending {
    fn sent_at(&self) -> Duration {
        match self {
            Pending::Append(AppendSent { sent_at, .. })
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
        let mut out = self.dispatch(from, seq, pending, result, now);
        out.extend(self.service_actions(now));
        out
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

    /// Hand a reply (or its absence) to the handler of what was sent.
    fn dispatch(
        &mut self,
        from: NodeId,
        seq: u64,
        pending: Pending,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) -> Vec<Outbound> {
        match pending {
            Pending::Append(sent) => self.on_append_reply(seq, sent, result, now),
            Pending::Probe { to, term, .. } => self.on_probe_reply(to, term, result, now),
            Pending::Vote { term, pre, .. } => {
                return self.on_vote_reply(from, term, pre, result, now);
            }
            Pending::Forward {
                to,
                commands,
                batch,
                ..
            } => self.on_forward_reply(to, batch, commands, result, now),
        }
        Vec::new()
    }

    /// Requests with no answer after `request_timeout` count as timed out
    /// (a lost vote request is simply no vote).
    fn expire_pending(&mut self, now: Duration) {
        let timeout = self.cfg.request_timeout;
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now >= p.sent_at() + timeout)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            let Some(pending) = self.pending.remove(&seq) else {
                continue;
            };
            if !matches!(pending, Pending::Vote { .. }) {
                let lost = Err(RpcFailure::Timeout("no reply in time".into()));
                let _ = self.dispatch(self.cfg.id, seq, pending, lost, now);
            }
        }
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
