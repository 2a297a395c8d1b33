//! The Raft state machine (raft-rs's `raft.rs` + `raw_node.rs`).
//!
//! One entry point for input, [`Raft::step`], and one output value per loop
//! turn, [`Raft::ready`] then [`Raft::advance`]. Every call takes the
//! current time (a `Duration` since any fixed origin); nothing here touches
//! a socket, a thread, a clock or a disk. The runtime's loop reads:
//! step events, step `Tick`, take the `Ready`, persist, send and answer,
//! apply, advance.
//!
//! `step` applies Raft's term rule first (a newer term makes this node a
//! follower of it) and then hands the message to its role: `follower`
//! (taking batches), `leader` (replication and commit), `election` (votes
//! and role changes) and `forward` (commands on their way to the leader,
//! both ends).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use log::{info, warn};

use super::dialect::PeerKind;
use super::log::RaftLog;
use super::membership::Membership;
use super::sessions::SessionTable;
use super::signing::{self, CommandAuth};
use super::types::*;

mod client;
mod confchange;
mod election;
mod follower;
mod forward;
mod leader;
mod pending;
mod proof;
mod role;
mod snapshot;
mod stamp;
mod transfer;

use self::client::{ClientSession, Proposal};
use self::forward::Forwarding;
use self::pending::{Pending, Requests};
use self::role::Role;

/// Largest term or index that fits the wire's 32-bit `<int>`.
pub const WIRE_MAX: u64 = i32::MAX as u64;

/// Tunables. Durations are core time (the `now` passed in).
#[derive(Clone, Debug)]
pub struct RaftConfig {
    pub id: NodeId,
    /// Every other node of the cluster (all voters) when `members` is not
    /// given.
    pub peers: Vec<NodeId>,
    /// The starting configuration (the cluster file's; empty for a node
    /// that joins). A configuration in the log or a snapshot replaces it.
    pub members: Option<Arc<Membership>>,
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
    /// This start's client session (see `ClientId`): durable and larger
    /// at every start of the node, so that a command of an earlier start
    /// is never taken for a new one.
    pub incarnation: u64,
    /// Take a snapshot (and compact the log) once this many entries were
    /// applied since the last one; 0: never.
    pub snapshot_entries: u64,
    /// Bytes of snapshot per `install_snapshot_rpc`.
    pub snapshot_chunk: usize,
    /// Signs the commands this node takes and checks others' (a cluster
    /// with keys); `None`: commands are not signed.
    pub command_auth: Option<Arc<dyn CommandAuth>>,
    /// Clicks per player and window (issue 11's rate limit): a leader
    /// stamps the log with its clock, and a follower takes only stamps of
    /// this limit. `None`: this node stamps nothing and takes the limit the
    /// log carries (a joining node).
    pub rate_limit: Option<u32>,
    /// Unix ms at core time zero: stamps read the clock as
    /// `wall_origin_ms + now` (the core reads no clock itself).
    pub wall_origin_ms: u64,
    /// The game's rate-limit window (`game::rate::WINDOW_MS`): one stamp
    /// per window while clicks flow, each at least this far after the last.
    pub stamp_window_ms: u64,
}

impl RaftConfig {
    pub fn new(id: NodeId, peers: Vec<NodeId>) -> Self {
        RaftConfig {
            id,
            peers,
            members: None,
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
            incarnation: 1,
            snapshot_entries: 10_000,
            snapshot_chunk: 64 * 1024,
            command_auth: None,
            rate_limit: None,
            wall_origin_ms: 0,
            stamp_window_ms: 1000,
        }
    }

    /// The starting configuration.
    pub fn initial_members(&self) -> Arc<Membership> {
        self.members.clone().unwrap_or_else(|| {
            let ids = self.peers.iter().copied().chain([self.id]);
            Arc::new(Membership::voters(ids))
        })
    }

    fn elections(&self) -> bool {
        self.static_leader.is_none()
    }
}

/// One Raft node's state.
#[derive(Debug)]
pub struct Raft {
    cfg: RaftConfig,
    term: u64,
    voted_for: Option<NodeId>,
    leader_id: Option<NodeId>,
    log: RaftLog,
    commit_index: Option<u64>,
    last_applied: Option<u64>,
    role: Role,
    /// Peers' dialects, learnt from their answers (kept across terms).
    peer_kinds: BTreeMap<NodeId, PeerKind>,
    /// Commands not yet in the log: the leader appends them at the next
    /// `service_actions`; anyone else forwards them to the leader.
    proposals: Vec<Proposal>,
    fwd: Forwarding,
    /// This node as a client: the commands it took, until applied.
    client: ClientSession,
    /// Replicated: which client commands were applied.
    sessions: SessionTable,
    /// The latest snapshot (sent to followers that need it; a transfer
    /// keeps the one it started with).
    snapshot: Option<Arc<Snapshot>>,
    /// A snapshot for the next `Ready` to persist.
    pending_snapshot: Option<Snapshot>,
    /// Asked the runtime for a snapshot at this index.
    snapshot_asked: Option<u64>,
    /// A snapshot arriving in chunks from the leader.
    install: Option<snapshot::Install>,
    /// The leader whose election this node saw proved (signed votes), and
    /// its term.
    proven: Option<(u64, NodeId)>,
    /// Callers of membership changes, until their change commits.
    conf_waiters: Vec<confchange::ConfWaiter>,
    /// Rate-limit stamps held and made (see `stamp.rs`).
    stamps: stamp::Stamps,
    /// Said once that the log is kept whole for an original node.
    whole_log_noted: bool,
    /// Original nodes said once not to be servable after compaction.
    warned_original: std::collections::BTreeSet<NodeId>,
    /// When to ask again a peer whose kind is not known yet.
    hello_at: BTreeMap<NodeId, Duration>,
    election_deadline: Duration,
    last_leader_contact: Option<Duration>,
    requests: Requests,
    rng: u64,
    /// The hard state last handed out to be persisted.
    saved_hard_state: HardState,
    /// The `Ready` being filled (its log changes live in `log`).
    out: Ready,
}

impl Raft {
    /// A node restarting from `hard_state` and `log` (empty on first start).
    pub fn new(
        cfg: RaftConfig,
        hard_state: HardState,
        log: Vec<Entry>,
        now: Duration,
    ) -> Result<Self, String> {
        Self::restart(cfg, hard_state, None, log, now)
    }

    /// A node restarting from its snapshot (if it took or installed one)
    /// and the log that follows it.
    pub fn restart(
        cfg: RaftConfig,
        hard_state: HardState,
        snapshot: Option<Snapshot>,
        log: Vec<Entry>,
        now: Duration,
    ) -> Result<Self, String> {
        let initial = Some(cfg.initial_members());
        let Some(snap) = snapshot else {
            let mut log = RaftLog::new(log)?;
            log.set_base_config(initial);
            let raft = Self::with_log(cfg, hard_state, log);
            return Ok(raft.started(now));
        };
        let (meta, sessions, config) = snapshot::parse_doc(&snap.data)?;
        if meta != snap.meta {
            return Err(format!(
                "snapshot file says {:?}, its document {meta:?}",
                snap.meta
            ));
        }
        let mut log = RaftLog::with_snapshot(meta, log)?;
        log.set_base_config(config.or(initial));
        let mut raft = Self::with_log(cfg, hard_state, log);
        raft.sessions = sessions;
        raft.commit_index = Some(meta.index);
        raft.last_applied = Some(meta.index);
        raft.stamps.note_doc(&snap.data);
        raft.snapshot = Some(Arc::new(snap));
        Ok(raft.started(now))
    }

    fn with_log(cfg: RaftConfig, hard_state: HardState, log: RaftLog) -> Self {
        let mut stamps = stamp::Stamps::default();
        stamps.note(log.entries());
        Raft {
            role: Role::follower(),
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            leader_id: None,
            log,
            commit_index: None,
            last_applied: None,
            peer_kinds: BTreeMap::new(),
            proposals: Vec::new(),
            fwd: Forwarding::default(),
            client: ClientSession::new(cfg.incarnation),
            sessions: SessionTable::default(),
            snapshot: None,
            pending_snapshot: None,
            snapshot_asked: None,
            install: None,
            conf_waiters: Vec::new(),
            proven: None,
            stamps,
            whole_log_noted: false,
            warned_original: Default::default(),
            hello_at: BTreeMap::new(),
            election_deadline: Duration::ZERO,
            last_leader_contact: None,
            requests: Requests::new(),
            rng: cfg.seed | 1,
            saved_hard_state: hard_state,
            out: Ready::default(),
            cfg,
        }
    }

    /// Take up the node's role.
    fn started(mut self, now: Duration) -> Self {
        match self.cfg.static_leader {
            Some(leader) => self.start_static(leader, now),
            None => {
                self.reset_election_timer(now);
                if self.promotable() && self.peers().is_empty() {
                    self.campaign(now, false);
                }
            }
        }
        self
    }

    fn start_static(&mut self, leader: NodeId, now: Duration) {
        if self.term == 0 {
            // The paper's nodes all start at term 1.
            self.term = 1;
        }
        self.leader_id = Some(leader);
        if leader == self.cfg.id {
            self.become_leader(now);
        }
    }

    // ----- read-only views -----

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    pub fn mode(&self) -> Mode {
        self.role.mode()
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
    /// Changes every time the log changes (the log file writer watches it).
    pub fn log_version(&self) -> u64 {
        self.log.version()
    }
    /// Commands waiting to be appended (leader) or forwarded (others).
    pub fn queued_commands(&self) -> usize {
        self.proposals.len()
    }
    /// Commands this node took that it has not seen applied yet.
    pub fn unapplied_commands(&self) -> usize {
        self.client.unapplied()
    }

    /// A leader that leaves this node's commands out (issue 11): the
    /// leader, while it is heard from (it leads on) and yet the oldest
    /// command this node took has waited longer than `patience`.
    pub fn censored_by(&self, now: Duration, patience: Duration) -> Option<NodeId> {
        let leader = self.leader_id.filter(|l| *l != self.cfg.id)?;
        let heard = self
            .last_leader_contact
            .is_some_and(|t| now < t + self.cfg.election_timeout_max);
        let waited = self
            .client
            .oldest_taken()
            .is_some_and(|t| now.saturating_sub(t) > patience);
        (heard && waited).then_some(leader)
    }
    /// The seq the next command proposed here gets (in this node's
    /// session: `ClientId { node: id, incarnation, seq }`).
    pub fn next_client_seq(&self) -> u64 {
        self.client.next_seq()
    }
    /// The replicated table of applied client commands.
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }
    /// `is_log_empty()`.
    pub fn is_log_empty(&self) -> bool {
        // A compacted log is not empty: the snapshot holds its start.
        self.log.is_empty() && self.log.snapshot().is_none()
    }

    /// The earliest time at which a `Tick` has timed work to do (an
    /// election, a heartbeat, a check-quorum round, a retry, a request to
    /// give up on). Between events the runtime may sleep until then; a
    /// `Tick` earlier is always harmless.
    pub fn next_deadline(&self) -> Duration {
        let timeout = self.cfg.request_timeout;
        let d = self.requests.next_expiry(timeout).unwrap_or(Duration::MAX);
        if !self.out.is_empty() || self.appliable() {
            // `advance` committed something: hand it out now.
            return Duration::ZERO;
        }
        let role = match &self.role {
            Role::Leader(_) if !self.proposals.is_empty() => Duration::ZERO,
            Role::Leader(l) => self.leader_deadline(l),
            _ => self.follower_deadline(),
        };
        d.min(role)
            .min(self.resend_deadline())
            .min(self.hello_deadline())
    }

    // ----- input -----

    /// Everything that happens to the node comes in here.
    pub fn step(&mut self, now: Duration, msg: Msg) {
        match msg {
            Msg::Tick => self.service_actions(now),
            Msg::Propose(commands) => self.take_commands(now, commands),
            Msg::PeerKind(peer, kind) => self.note_peer_kind(peer, kind),
            Msg::Snapshot { index, app } => self.take_snapshot(index, app),
            Msg::Request { token, rpc, .. }
                if matches!(rpc, Rpc::AddServer { .. } | Rpc::RemoveServer(_)) =>
            {
                self.request_conf_change(now, token, rpc);
            }
            Msg::Request { token, from, rpc } => {
                let result = self.step_request(now, from, rpc);
                self.out.answers.push(Answer { token, result });
            }
            Msg::Reply {
                from,
                seq,
                result,
                kind,
            } => {
                if let Some(kind) = kind {
                    self.note_peer_kind(from, kind);
                }
                self.step_reply(now, from, seq, result);
            }
        }
    }

    fn step_request(
        &mut self,
        now: Duration,
        from: Option<NodeId>,
        rpc: Rpc,
    ) -> Result<Reply, InvalidRequest> {
        // A sender we do not know is no sender: it gets no special trust
        // (a node still waiting for its first configuration trusts the
        // header: it is how it learns who leads).
        // A leader of a current term may be a member this node has not
        // heard of yet (it lags behind, or has just applied its removal).
        let joining = self.log.latest_config().is_none_or(|c| c.is_empty());
        let leads = match &rpc {
            Rpc::AppendEntries(a) => a.term >= self.term && self.cfg.elections(),
            Rpc::InstallSnapshot(i) => i.term >= self.term && self.cfg.elections(),
            _ => false,
        };
        let from = from.filter(|s| *s != self.cfg.id && (joining || leads || self.is_member(*s)));
        match rpc {
            Rpc::AppendEntries(req) => self.step_append(now, &req, from).map(Reply::Append),
            Rpc::RequestVote(req) => self.step_vote(now, &req, false, from).map(Reply::Vote),
            Rpc::PreVote(req) => self.step_vote(now, &req, true, from).map(Reply::Vote),
            Rpc::IsLogEmpty => Ok(Reply::LogEmpty(self.is_log_empty())),
            Rpc::InstallSnapshot(req) => self.step_install(now, &req, from).map(Reply::Snapshot),
            Rpc::TimeoutNow { term } => self
                .step_timeout_now(now, term, from)
                .map(Reply::TimeoutNow),
            Rpc::TransferLeader(target) => self.start_transfer(now, target).map(Reply::Transfer),
            Rpc::AddServer { .. } | Rpc::RemoveServer(_) => {
                unreachable!("membership requests are answered once committed")
            }
        }
    }

    /// A peer's answer (or its absence) to request `seq`. Raft's term rule
    /// first: any reply carrying a newer term makes us a follower of it.
    fn step_reply(
        &mut self,
        now: Duration,
        from: NodeId,
        seq: u64,
        result: Result<Reply, RpcFailure>,
    ) {
        let Some(pending) = self.requests.take(seq) else {
            return;
        };
        if let Some(t) = pending.reply_term(&result)
            && t > self.term
            && self.cfg.elections()
            && !self.absurd_term(t)
        {
            info!(
                "node {} sees term {t} from node {from}: steps down",
                self.cfg.id
            );
            if let Pending::Forward { to, batch, .. } = pending {
                self.forward_answered_by_newer_term(to, batch, &result);
            }
            self.become_follower(t, None, now);
            return;
        }
        self.dispatch(from, seq, pending, result, now);
    }

    /// Hand a reply (or its absence) to the handler of what was sent.
    fn dispatch(
        &mut self,
        from: NodeId,
        seq: u64,
        pending: Pending,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) {
        match pending {
            Pending::Append(sent) => self.on_append_reply(seq, sent, result, now),
            Pending::Probe { to, term, .. } => self.on_probe_reply(seq, to, term, result, now),
            Pending::Vote { term, pre, .. } => self.on_vote_reply(from, term, pre, result, now),
            Pending::Forward { to, batch, .. } => self.on_forward_reply(to, batch, result, now),
            Pending::Snapshot {
                to,
                term,
                meta,
                end,
                done,
                ..
            } => self.on_snapshot_reply(seq, to, term, (meta, end, done), result, now),
            // The runtime reported the peer's kind with the reply.
            Pending::Hello { .. } | Pending::TimeoutNow { .. } => {}
        }
    }

    /// The peer answered with (or without) our header.
    fn note_peer_kind(&mut self, peer: NodeId, kind: PeerKind) {
        self.peer_kinds.insert(peer, kind);
        if let Role::Leader(l) = &mut self.role
            && let Some(p) = l.progress.get_mut(&peer)
        {
            p.set_kind(kind);
        }
    }

    fn peer_kind(&self, peer: NodeId) -> PeerKind {
        self.peer_kinds
            .get(&peer)
            .copied()
            .unwrap_or(PeerKind::Original)
    }

    // ----- output -----

    /// Is there anything to persist, send, answer or apply?
    /// Committed entries this node holds and has not applied yet.
    fn appliable(&self) -> bool {
        self.commit_index.min(self.log.last_index()) > self.last_applied
    }

    pub fn has_ready(&self) -> bool {
        !self.out.is_empty()
            || self.appliable()
            || !self.log.all_given()
            || self.hard_state() != self.saved_hard_state
            || self.pending_snapshot.is_some()
    }

    /// Take what this turn produced. The runtime sends `early`, makes
    /// `persist` durable before it sends or answers anything else, then
    /// calls [`Raft::advance`].
    pub fn ready(&mut self) -> Ready {
        // What `advance` committed is applied here, after the runtime took
        // the snapshot the last `Ready` asked for.
        self.apply();
        let hs = self.hard_state();
        let hard_state = (hs != self.saved_hard_state).then_some(hs);
        self.saved_hard_state = hs;
        let unsaved = self.log.take_unsaved();
        let mut ready = std::mem::take(&mut self.out);
        if hard_state.is_some() {
            // A term or vote not yet durable goes out with nothing: a node
            // that crashed before its fsync could otherwise lead the same
            // term twice, with two different logs.
            let early = std::mem::take(&mut ready.early);
            ready.messages.splice(0..0, early);
        }
        ready.persist = PersistBatch {
            hard_state,
            truncate_from: unsaved.truncate_from,
            append: unsaved.append,
            snapshot: self.pending_snapshot.take(),
        };
        ready
    }

    /// The last `Ready` is durable (and sent and applied). A leader's own
    /// copy of its new entries now counts: that may commit them. They are
    /// applied by the next `ready()` (see `has_ready`), not here: a
    /// snapshot the runtime takes right after `advance` must describe the
    /// index the last `Ready` asked for.
    pub fn advance(&mut self) {
        self.log.mark_persisted();
        self.commit_by_quorum();
    }

    // ----- the tick -----

    /// The paper's `service_actions`: timers (elections, heartbeats), the
    /// leader's new entries and replication, forwarding, and apply.
    fn service_actions(&mut self, now: Duration) {
        self.expire_requests(now);
        self.resend_unapplied(now, false);
        if self.mode() == Mode::Leader {
            self.lead(now);
        } else {
            if self.cfg.elections() && now >= self.election_deadline {
                if self.promotable() {
                    self.campaign(now, self.cfg.pre_vote);
                } else {
                    // A learner, a removed node or one still joining waits.
                    self.reset_election_timer(now);
                }
            }
            self.forward(now);
        }
        self.apply();
        self.maybe_ask_snapshot(now);
    }

    /// Requests with no answer after `request_timeout` count as timed out
    /// (a lost vote request is simply no vote).
    fn expire_requests(&mut self, now: Duration) {
        for (seq, pending) in self.requests.take_expired(now, self.cfg.request_timeout) {
            if !matches!(pending, Pending::Vote { .. }) {
                let lost = Err(RpcFailure::Timeout("no reply in time".into()));
                self.dispatch(self.cfg.id, seq, pending, lost, now);
            }
        }
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
        let Some(last) = self.log.slice(from, commit).last().map(|e| e.index) else {
            return;
        };
        let entries = self.log.slice(from, last).to_vec();
        let verdicts = self.signatures_ok(&entries);
        for (entry, ok) in entries.into_iter().zip(verdicts) {
            // A forged command never reaches the session table (it could
            // shadow the real one); every node decides in log order, so
            // the same copies and forgeries are skipped everywhere.
            let rejected = !ok;
            if rejected {
                warn!(
                    "node {}: entry {} fails its signature check: skipped",
                    self.cfg.id, entry.index
                );
            }
            let duplicate = !rejected && entry.client.is_some_and(|id| !self.sessions.admit(id));
            if !rejected {
                // A forged copy of our command is not it: ours goes on.
                self.note_applied(entry.client);
            }
            self.stamps.applied(&entry);
            if let Command::Config(c) = &entry.command {
                // A removed node's session ends with it.
                self.sessions.retain_nodes(|n| c.contains(n));
            }
            self.out.committed.push(Committed {
                entry,
                duplicate,
                rejected,
            });
        }
        self.last_applied = Some(last);
        self.answer_committed_changes();
    }

    /// Which entries' signatures check out, each under the configuration
    /// in force at its index (the same on every node); runs of entries
    /// under one configuration are checked in one batch.
    fn signatures_ok(&self, entries: &[Entry]) -> Vec<bool> {
        let auth = self.cfg.command_auth.as_deref();
        // Without keys (a configuration never gains or loses them), no
        // entry needs a look: the common case costs nothing per entry.
        if auth.is_none() || !self.membership().authenticated() {
            return vec![true; entries.len()];
        }
        let mut out = Vec::with_capacity(entries.len());
        let mut start = 0;
        while start < entries.len() {
            let members = self
                .log
                .config_at(entries[start].index)
                .cloned()
                .unwrap_or_default();
            let same = |e: &Entry| {
                self.log
                    .config_at(e.index)
                    .is_some_and(|c| Arc::ptr_eq(c, &members))
            };
            let run = entries[start..]
                .iter()
                .take_while(|e| same(e))
                .count()
                .max(1);
            out.extend(signing::entries_ok(
                auth,
                &members,
                &entries[start..start + run],
            ));
            start += run;
        }
        out
    }

    // ----- bookkeeping -----

    fn send(&mut self, to: NodeId, rpc: Rpc, pending: Pending) -> u64 {
        // A leader's appends (entries or heartbeats) need nothing of its
        // own disk: they may leave before its fsync. Not in the paper's
        // static mode, where a leader that restarted without its last
        // entries would lead term 1 again and write others at their index.
        let early = matches!(pending, Pending::Append(_)) && self.cfg.elections();
        let seq = self.requests.add(pending);
        let out = Outbound { to, seq, rpc };
        if early {
            self.out.early.push(out);
        } else {
            self.out.messages.push(out);
        }
        seq
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
}

#[cfg(test)]
mod tests;
