//! The node's one event loop: it alone owns the Raft core.
//!
//! Events are RPCs from the server, replies from peers and the 5 ms tick
//! that drains `pygame_commands`. After each burst of events the loop runs
//! `service_actions`, sends a leader's appends, makes the core's changes
//! durable (one fsync for the whole burst: group commit), and only then
//! answers the RPCs and sends the other messages. Committed entries go to
//! `raft_orders` in log order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dxr::Fault;
use log::{error, info, warn};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::board;
use super::digest::{DOC_KEY, StateDigest};
use super::peers::Peers;
use super::trace::Trace;
use crate::game::{Game, RateLimit};
use crate::logfile::LogFile;
use crate::queues::{CommandReceiver, Member, NodeStatus, OrderSender, StatusBoard};
use crate::raft::{
    Answer, Command, Committed, Entry, Membership, Mode, Msg, NodeId, PeerKind, PersistBatch, Raft,
    Reply, Rpc, RpcFailure, Snapshot,
};
use crate::storage::Storage;
use crate::wire::{FAULT_BAD_ARGS, FAULT_UNAVAILABLE};

/// The rate limit's bucket for clicks that name no player.
const ANONYMOUS: u64 = u64::MAX;

/// Where the answer to an RPC goes, once the state it reports is durable.
pub type AnswerTx = oneshot::Sender<Result<Reply, Fault>>;

pub enum Event {
    /// An RPC from a peer, for the core.
    Request {
        from: Option<NodeId>,
        rpc: Rpc,
        reply: AnswerTx,
    },
    /// A peer's answer to a request the core sent.
    Reply {
        from: NodeId,
        seq: u64,
        result: Result<Reply, RpcFailure>,
        kind: Option<PeerKind>,
    },
    LogSnapshot {
        reply: oneshot::Sender<Vec<Entry>>,
    },
    /// A click whose caller waits until this node applied it
    /// (`click_wait`).
    ClickWait {
        command: i32,
        reply: oneshot::Sender<()>,
    },
}

/// What the actor is made of, gathered before the runtime starts (its peers
/// and its log-version channel are made on the runtime).
pub struct ActorParts {
    pub raft: Raft,
    pub storage: Box<dyn Storage>,
    /// The storage does I/O (fsync): persist off the worker's other tasks.
    pub storage_blocks: bool,
    /// Where the core's clock starts.
    pub origin: Instant,
    /// The `service_actions` tick while clicks wait.
    pub tick: Duration,
    /// `pygame_commands`.
    pub commands: CommandReceiver,
    /// `raft_orders`.
    pub orders: OrderSender,
    pub status: StatusBoard,
    pub name: String,
    pub log_file: Option<Arc<Mutex<LogFile>>>,
    pub trace: Option<Arc<Trace>>,
    /// The board as of the last applied entry (what snapshots record).
    pub state: Game,
    /// Whose signatures to believe follows the configuration.
    pub auth: Arc<super::auth::Auth>,
    /// Chained over what was applied up to the board's index.
    pub digest: StateDigest,
    /// The rate limit's window and counts, as of the board's index.
    pub rate: RateLimit,
}

/// The node's event loop; it alone owns the core.
pub struct Actor {
    raft: Raft,
    storage: Box<dyn Storage>,
    storage_blocks: bool,
    origin: Instant,
    tick: Duration,
    peers: Peers,
    commands: CommandReceiver,
    orders: OrderSender,
    status: StatusBoard,
    name: String,
    log_version: watch::Sender<u64>,
    log_file: Option<Arc<Mutex<LogFile>>>,
    trace: Option<Arc<Trace>>,
    state: Game,
    members: Arc<[Member]>,
    /// The configuration `members` and the peers' addresses follow.
    membership: Arc<Membership>,
    /// A committed configuration no longer has this node: it stops.
    removed: bool,
    auth: Arc<super::auth::Auth>,
    digest: StateDigest,
    rate: RateLimit,
    /// The last entry the board reflects.
    applied: Option<u64>,
    /// This node was in a configuration applied here (or started in one).
    was_member: bool,
    /// See `watch_censorship`.
    censored_by: Option<u64>,
    /// `click_wait` callers whose click was applied this turn.
    clicks_done: Vec<oneshot::Sender<()>>,
    /// `click_wait` callers, by the seq their click got in our session.
    click_waiters: HashMap<u64, oneshot::Sender<()>>,
    /// What the status board shows now: see `publish_status`.
    published: Option<(StatusKey, Arc<[Member]>)>,
}

/// Everything [`NodeStatus`] shows that can change, as plain values: an
/// idle node's turns (one per heartbeat) mostly change nothing, and
/// building and publishing the status (the digest's hex, the name) every
/// turn was a sixth of an idle leader's instructions.
#[derive(Clone, Copy, PartialEq, Eq)]
struct StatusKey {
    mode: &'static str,
    term: u64,
    leader_id: Option<u64>,
    commit_index: Option<u64>,
    last_applied: Option<u64>,
    log_length: u64,
    snapshot: Option<(u64, u64)>,
    digest: StateDigest,
    censored_by: Option<u64>,
    rate_limit: Option<u32>,
    rate_limited: u64,
}

/// How long a click may wait uncommitted under a leader that keeps leading
/// before the node says the leader leaves it out.
const CENSOR_PATIENCE: Duration = Duration::from_secs(5);

/// Most events handled before one persist + send round.
const BURST: usize = 512;

/// How long a leader stopped cleanly waits for its successor to take over.
const HAND_OVER: Duration = Duration::from_millis(500);

/// RPCs handed to the core whose answers wait for the next `Ready`.
#[derive(Default)]
struct Waiting {
    next_token: u64,
    by_token: HashMap<u64, AnswerTx>,
}

impl Waiting {
    fn add(&mut self, tx: AnswerTx) -> u64 {
        self.next_token += 1;
        self.by_token.insert(self.next_token, tx);
        self.next_token
    }

    /// Send the core's answers; all of them are refused when the state
    /// they report could not be made durable.
    fn answer(&mut self, answers: Vec<Answer>, persisted: bool) {
        for Answer { token, result } in answers {
            let Some(tx) = self.by_token.remove(&token) else {
                continue;
            };
            let r = match result {
                _ if !persisted => Err(Fault::new(
                    FAULT_UNAVAILABLE,
                    "node cannot write its state".into(),
                )),
                Ok(reply) => Ok(reply),
                Err(e) => Err(Fault::new(FAULT_BAD_ARGS, e.0)),
            };
            let _ = tx.send(r);
        }
    }
}

impl Actor {
    pub fn new(parts: ActorParts, peers: Peers, log_version: watch::Sender<u64>) -> Self {
        let ActorParts {
            raft,
            storage,
            storage_blocks,
            origin,
            tick,
            commands,
            orders,
            status,
            name,
            log_file,
            trace,
            state,
            auth,
            digest,
            rate,
        } = parts;
        let mut actor = Actor {
            was_member: raft.applied_membership().contains(raft.id()),
            // The board starts as of the snapshot, if any.
            applied: raft.log().snapshot().map(|s| s.index),
            raft,
            storage,
            storage_blocks,
            origin,
            tick,
            peers,
            commands,
            orders,
            status,
            name,
            log_version,
            log_file,
            trace,
            state,
            members: Arc::from([]),
            membership: Arc::new(Membership::default()),
            removed: false,
            auth,
            digest,
            rate,
            click_waiters: HashMap::new(),
            clicks_done: Vec::new(),
            censored_by: None,
            published: None,
        };
        actor.sync_members();
        actor
    }

    /// The turn before any event: what the core did as it started is made
    /// durable, sent and applied, and the status published.
    pub fn first_turn(&mut self) {
        if !self.process_ready(&mut Waiting::default()) {
            error!("{}: state could not be made durable at start", self.name);
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// One loop turn: wait for events (or the next deadline), step them
    /// into the core, then `service_actions`, persist, answer and send,
    /// apply, advance.
    pub async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>, stop: Arc<Notify>) {
        let mut wake = Wakeup::new(self.origin, self.tick);
        let pushed = self.commands.waker();
        let mut waiting = Waiting::default();
        let mut stopping: Option<Instant> = None;
        self.sync_members();
        self.publish_status();
        loop {
            let sleep = tokio::time::sleep_until(wake.next(self.raft.next_deadline()));
            tokio::select! {
                _ = sleep => {
                    if wake.tick_due() {
                        self.propose_clicks();
                    }
                }
                _ = pushed.notified() => {
                    wake.clicks_waiting();
                    continue;
                }
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    self.handle(ev, &mut waiting);
                    for _ in 0..BURST {
                        match events.try_recv() {
                            Ok(ev) => self.handle(ev, &mut waiting),
                            Err(_) => break,
                        }
                    }
                }
                _ = stop.notified() => {
                    if !self.hand_over() {
                        break;
                    }
                    stopping = Some(Instant::now() + HAND_OVER);
                }
            }
            if !self.process_ready(&mut waiting) {
                error!("{}: stopping: state could not be made durable", self.name);
                break;
            }
            if stopping.is_some_and(|t| self.raft.mode() != Mode::Leader || Instant::now() >= t) {
                break;
            }
            if self.removed {
                info!(
                    "{}: removed from the cluster (its removal is committed): stopping",
                    self.name
                );
                break;
            }
        }
        self.finish();
    }

    /// A leader stopped cleanly first hands over (thesis 3.10), so the game
    /// does not wait out an election timeout. False: nothing to hand over.
    fn hand_over(&mut self) -> bool {
        let elections = self.raft.config().static_leader.is_none();
        if self.raft.mode() != Mode::Leader
            || !elections
            || self.raft.membership().voter_count() < 2
        {
            return false;
        }
        info!("{}: stopping: handing leadership over first", self.name);
        let rpc = Rpc::TransferLeader(None);
        // Token 0 is never a caller's: the answer is dropped.
        self.raft.step(
            self.now(),
            Msg::Request {
                token: 0,
                from: None,
                rpc,
            },
        );
        true
    }

    /// `service_actions`, then the turn's `Ready`: persist, answer, send,
    /// apply, advance. False if the disk failed.
    fn process_ready(&mut self, waiting: &mut Waiting) -> bool {
        let now = self.now();
        self.raft.step(now, Msg::Tick);
        let ready = self.raft.ready();
        // A leader's appends go before its own fsync: followers write
        // theirs meanwhile (thesis 10.2.1).
        for m in ready.early {
            self.peers.send(m);
        }
        let persisted = self.persist(&ready.persist);
        waiting.answer(ready.answers, persisted);
        if !persisted {
            return false;
        }
        for m in ready.messages {
            self.peers.send(m);
        }
        if let Some(s) = &ready.persist.snapshot {
            self.note_snapshot(&s.data);
        }
        if let Some(s) = &ready.restore
            && !self.restore(s)
        {
            return false;
        }
        self.deliver_orders(ready.committed);
        if let Some(t) = &self.trace {
            // Once a turn, so that tests can read what was applied while
            // the node runs (and a SIGKILL loses at most one turn).
            t.flush();
        }
        self.raft.advance();
        if let Some(index) = ready.snapshot_due {
            // The board is now exactly as of `index`: nothing was applied
            // since the core asked.
            let mut app = board::app_state(&self.state, &self.membership);
            app.insert(DOC_KEY.into(), self.digest.hex().into());
            app.insert(board::RATE_KEY.into(), board::rate_doc(&self.rate));
            self.raft.step(self.now(), Msg::Snapshot { index, app });
        }
        self.log_version.send_if_modified(|v| {
            let changed = *v != self.raft.log_version();
            *v = self.raft.log_version();
            changed
        });
        self.sync_members();
        self.watch_censorship();
        self.publish_status();
        for waiter in self.clicks_done.drain(..) {
            let _ = waiter.send(());
        }
        true
    }

    /// The configuration changed: `status().members` and where peers are
    /// follow it.
    fn sync_members(&mut self) {
        let latest = self.raft.membership();
        if Arc::ptr_eq(&latest, &self.membership) {
            return;
        }
        self.membership = latest;
        self.auth.set_members(&self.membership);
        let me = self.raft.id();
        let mut members: Vec<Member> = self
            .membership
            .members()
            .iter()
            .map(|m| Member {
                id: m.id,
                name: m.name.clone(),
                addr: m.addr.clone(),
                voter: m.voter,
                public_key: m.public_key.clone(),
            })
            .collect();
        if members.is_empty() {
            // Still joining: only itself is known.
            members.push(Member {
                id: me,
                name: self.name.clone(),
                addr: String::new(),
                voter: false,
                public_key: None,
            });
        }
        self.members = members.into();
        let addrs = self
            .membership
            .members()
            .iter()
            .filter(|m| m.id != me)
            .map(|m| (m.id, m.addr.clone()));
        let addrs: Vec<_> = addrs.filter(|(_, a)| !a.is_empty()).collect();
        if !addrs.is_empty()
            && let Err(e) = self.peers.set_addrs(addrs)
        {
            warn!("{}: {e}", self.name);
        }
    }

    /// A snapshot from the leader replaced the state: the board follows.
    fn restore(&mut self, s: &Snapshot) -> bool {
        let read = |d: &[u8]| -> Result<(Game, StateDigest, RateLimit), String> {
            let rate = board::rate_from_snapshot(d)?;
            Ok((
                board::game_from_snapshot(d)?,
                StateDigest::from_doc(d)?,
                rate,
            ))
        };
        match read(&s.data) {
            Ok((game, digest, rate)) => {
                self.digest = digest;
                self.rate = rate;
                self.applied = Some(s.meta.index);
                self.state = game.clone();
                self.orders.restore(game);
                true
            }
            Err(e) => {
                // Raft took it (its part was sound); a board we cannot read
                // would leave this node's game different from the others'.
                error!(
                    "{}: the leader's snapshot has no readable board: {e}",
                    self.name
                );
                false
            }
        }
    }

    /// The log file says so when the log was compacted.
    fn note_snapshot(&self, document: &[u8]) {
        if let Some(f) = &self.log_file {
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = f.write_snapshot(document) {
                error!("{}: cannot write the log file: {e}", self.name);
            }
        }
    }

    /// Drain `pygame_commands` into the core.
    fn propose_clicks(&mut self) {
        let commands = self.commands.drain();
        if !commands.is_empty() {
            let now = self.now();
            let commands = commands.into_iter().map(Command::Int).collect();
            self.raft.step(now, Msg::Propose(commands));
        }
    }

    fn handle(&mut self, ev: Event, waiting: &mut Waiting) {
        let now = self.now();
        match ev {
            Event::Request { from, rpc, reply } => {
                let token = waiting.add(reply);
                let msg = Msg::Request { token, from, rpc };
                self.raft.step(now, msg);
            }
            Event::Reply {
                from,
                seq,
                result,
                kind,
            } => {
                let msg = Msg::Reply {
                    from,
                    seq,
                    result,
                    kind,
                };
                self.raft.step(now, msg);
            }
            Event::LogSnapshot { reply } => {
                let _ = reply.send(self.raft.entries().to_vec());
            }
            Event::ClickWait { command, reply } => {
                // Proposed now rather than through pygame_commands, so the
                // click's id (and so its application) is known.
                self.click_waiters
                    .insert(self.raft.next_client_seq(), reply);
                let msg = Msg::Propose(vec![Command::Int(command)]);
                self.raft.step(now, msg);
            }
        }
    }

    /// Make the core's changes durable; false if the disk failed.
    fn persist(&mut self, batch: &PersistBatch) -> bool {
        if batch.is_empty() {
            return true;
        }
        let storage = &mut self.storage;
        // block_in_place hands this worker's other tasks to another thread:
        // worth it around an fsync, pure overhead for the in-memory store.
        let r = if self.storage_blocks {
            tokio::task::block_in_place(|| storage.persist(batch))
        } else {
            storage.persist(batch)
        };
        match r {
            Ok(()) => true,
            Err(e) => {
                error!("{}: cannot persist Raft state: {e}", self.name);
                false
            }
        }
    }

    /// A signed click's taker is known for sure: a dead player cannot
    /// attack. Decided at apply, from the replicated board and entry.
    fn dead_attacker(&self, entry: &Entry) -> bool {
        let Some(attacker) = entry.client.and_then(|c| u8::try_from(c.node).ok()) else {
            return false;
        };
        let new_round = entry.command == Command::Int(crate::game::NEW_ROUND);
        // A signed entry (only a cluster with keys signs) is part of the
        // log, so every node decides alike, whatever it knows of keys.
        entry.sig.is_some() && !new_round && self.state.hp(attacker) == Some(0)
    }

    /// Within the rate limit (or not a player's click)? Counts it. Decided
    /// at apply from the log's stamps and clicks: every node alike. Clicks
    /// that name no player (sent without a session, as only a stranger's
    /// or an original node's are) share one allowance.
    fn rate_allows(&mut self, entry: &Entry) -> bool {
        let round = Command::Int(crate::game::NEW_ROUND);
        if entry.command == Command::NOOP || entry.command == round {
            return true;
        }
        self.rate
            .allow(entry.client.map_or(ANONYMOUS, |id| id.node))
    }

    /// Committed commands become orders on `raft_orders`, each client
    /// command once (a copy that reached the log twice is skipped).
    fn deliver_orders(&mut self, committed: Vec<Committed>) {
        let me = (self.raft.id(), self.raft.config().incarnation);
        for Committed {
            entry,
            duplicate,
            rejected,
        } in committed
        {
            self.applied = Some(entry.index);
            if duplicate || rejected {
                continue;
            }
            self.digest.apply(&entry);
            match &entry.command {
                Command::Int(c) if self.dead_attacker(&entry) => {
                    info!("{}: a dead player's attack ({c}) is void", self.name);
                }
                Command::Int(c) if !self.rate_allows(&entry) => {
                    let by = entry.client.map_or(0, |id| id.node);
                    info!(
                        "{}: player {by}'s click ({c}) is over the rate limit: dropped",
                        self.name
                    );
                }
                // A stamp naming a client is no leader's: the core
                // refuses one, and the game ignores it too.
                Command::Stamp(st) if entry.client.is_none() => {
                    self.rate.stamp(st.ms, st.limit);
                }
                Command::Int(c) => {
                    if let Some(t) = &self.trace {
                        t.applied(i64::from(*c));
                    }
                    self.state.apply_order(i64::from(*c));
                    self.orders.push(i64::from(*c));
                }
                Command::Config(m) => {
                    let ids: Vec<u64> = m.ids().collect();
                    self.state.set_members(&ids);
                    self.orders.members(ids);
                    // A joining node applies configurations from before it
                    // joined: only one without it after one with it is a removal.
                    if m.contains(self.raft.id()) {
                        self.was_member = true;
                    } else if self.was_member {
                        self.removed = true;
                    }
                }
                Command::Stamp(_) | Command::Text(_) => {}
            }
            // click_wait answers once its order is on raft_orders (and
            // the status shows it: see `process_ready`).
            if let Some(id) = entry.client
                && (id.node, id.incarnation) == me
                && let Some(waiter) = self.click_waiters.remove(&id.seq)
            {
                self.clicks_done.push(waiter);
            }
        }
    }

    /// Say so (once per episode) when a leader leaves our clicks out.
    fn watch_censorship(&mut self) {
        let now = self.now();
        let by = self.raft.censored_by(now, CENSOR_PATIENCE);
        if by != self.censored_by
            && let Some(l) = by
        {
            warn!(
                "{}: leader {l} keeps leading but has not committed this node's clicks for over {} s: they are being left out",
                self.name,
                CENSOR_PATIENCE.as_secs()
            );
        }
        self.censored_by = by;
    }

    /// Put the node's status on the board, if it changed since the last
    /// time (the members by identity: `sync_members` replaces them only
    /// when the configuration changes).
    pub fn publish_status(&mut self) {
        let r = &self.raft;
        let key = StatusKey {
            mode: r.mode().as_str(),
            term: r.term(),
            leader_id: r.leader_id(),
            commit_index: r.commit_index(),
            // What the board shows (the core may have applied further in a
            // Ready not handled yet).
            last_applied: self.applied,
            log_length: r.entries().len() as u64,
            snapshot: r.log().snapshot().map(|s| (s.index, s.term)),
            digest: self.digest,
            censored_by: self.censored_by,
            rate_limit: self.rate.limit(),
            rate_limited: self.rate.dropped(r.id()),
        };
        if let Some((k, m)) = &self.published
            && *k == key
            && Arc::ptr_eq(m, &self.members)
        {
            return;
        }
        let s = NodeStatus {
            id: r.id(),
            name: self.name.clone(),
            mode: key.mode.to_owned(),
            term: key.term,
            leader_id: key.leader_id,
            commit_index: key.commit_index,
            last_applied: key.last_applied,
            log_length: key.log_length,
            snapshot_index: key.snapshot.map(|s| s.0),
            snapshot_term: key.snapshot.map(|s| s.1),
            state_digest: self.digest.hex(),
            censored_by: key.censored_by,
            rate_limit: key.rate_limit,
            rate_limited: key.rate_limited,
            members: self.members.clone(),
        };
        self.status.publish(s);
        self.published = Some((key, self.members.clone()));
    }

    fn finish(&mut self) {
        if let Some(f) = &self.log_file {
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = f.write_log(self.raft.entries()) {
                error!("{}: cannot write the log file: {e}", self.name);
            }
        }
        if let Some(t) = &self.trace {
            t.flush();
        }
        info!("{} stopped", self.name);
    }
}

/// When the loop wakes: at the core's next deadline, or, while clicks wait
/// on `pygame_commands`, at the next `service_actions` tick. An idle node
/// does not wake 200 times a second for nothing.
struct Wakeup {
    origin: tokio::time::Instant,
    tick: Duration,
    last_tick: tokio::time::Instant,
    clicks_waiting: bool,
}

impl Wakeup {
    fn new(origin: Instant, tick: Duration) -> Self {
        Wakeup {
            origin: tokio::time::Instant::from_std(origin),
            tick,
            last_tick: tokio::time::Instant::now(),
            clicks_waiting: false,
        }
    }

    fn clicks_waiting(&mut self) {
        self.clicks_waiting = true;
    }

    /// Never sooner than a tick from now, so a deadline already passed
    /// cannot spin the loop.
    fn next(&self, core_deadline: Duration) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let far = now + Duration::from_secs(3600);
        let core_at = self.origin.checked_add(core_deadline).unwrap_or(far);
        let tick_at = if self.clicks_waiting {
            self.last_tick + self.tick
        } else {
            far
        };
        core_at
            .min(tick_at)
            .max(now.min(self.last_tick + self.tick))
    }

    /// Woken: is it the clicks' tick? Then it starts a new tick.
    fn tick_due(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if self.clicks_waiting && now >= self.last_tick + self.tick {
            self.last_tick = now;
            self.clicks_waiting = false;
            return true;
        }
        false
    }
}

/// Write the log file once the log has been quiet for `quiet`, and at
/// least every `max_wait` while it keeps changing: each line is the whole
/// log, so writing on every change would dominate CPU and disk.
pub async fn log_writer(
    mut version: watch::Receiver<u64>,
    events: mpsc::UnboundedSender<Event>,
    file: Arc<Mutex<LogFile>>,
    quiet: Duration,
    max_wait: Duration,
) {
    loop {
        if version.changed().await.is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            tokio::select! {
                r = version.changed() => if r.is_err() { break },
                _ = tokio::time::sleep(quiet) => break,
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let (tx, rx) = oneshot::channel();
        if events.send(Event::LogSnapshot { reply: tx }).is_err() {
            return;
        }
        let Ok(entries) = rx.await else { return };
        let file = file.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = f.write_log(&entries) {
                error!("cannot write the log file: {e}");
            }
        })
        .await;
    }
}
