//! A simulated cluster: N pure `Raft` cores, a simulated clock, a simulated
//! network (delay, loss, duplication, reordering, partitions) and a simulated
//! disk per node, with the Raft invariants checked after every step.
//!
//! Everything is driven by one seeded PRNG and one event queue ordered by
//! (time, insertion order), so a seed replays exactly.

use std::cmp::Ordering;
use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use raftian::raft::{
    Answer, ClientId, Command, Committed as Applied, Entry, HardState, Member, Membership, Mode,
    Msg, NodeId, Outbound, PeerKind, PersistBatch, Raft, RaftConfig, Ready, Reply, Rpc, RpcFailure,
    ServerRef, Sig, Snapshot, SnapshotMeta,
    sessions::SessionTable,
    signing::{self, CommandAuth, Vote},
};

use crate::rng::{Rng, mix};

/// Simulated time is kept in microseconds.
pub const MS: u64 = 1_000;
/// Unix ms at simulated time zero (the wall clock stamps read).
const SIM_EPOCH_MS: u64 = 1_800_000_000_000;
/// `service_actions` runs on every node this often.
pub const TICK: u64 = 5 * MS;
/// Long enough for an election to finish (the MIT tests' RaftElectionTimeout).
pub const ELECTION_WAIT: u64 = 1_000 * MS;
/// Liveness: a leader / an agreement must appear within this once healed.
pub const LIVENESS: u64 = 10_000 * MS;

/// How the nodes mark their peers (`note_peer_kind`). All sim nodes are
/// Rust cores; a node that takes a peer for an original Python node uses the
/// legacy path with it (is_log_empty probes, commit index sent once and
/// capped, no heartbeat beside a request in flight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peers {
    Rust,
    Legacy,
    /// Each node is taken for a Rust node or not at random, by every peer
    /// (fixed per run).
    Mixed,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub n: usize,
    pub peers: Peers,
    pub static_leader: Option<NodeId>,
    /// `None`: the seed picks 200 ms or 1 s (the runtime's default).
    pub request_timeout: Option<Duration>,
    /// `RaftConfig::max_batch`; `None`: the seed picks (the default 4096, or
    /// 1-4 so that old-term entries can reach a majority on their own, or 16-64).
    pub max_batch: Option<usize>,
    /// `None`: the seed picks (on 4 times in 5).
    pub pre_vote: Option<bool>,
    pub check_quorum: Option<bool>,
    /// Election timeout range; `None`: the core's default (150-300 ms).
    pub election_timeout: Option<(Duration, Duration)>,
    /// `RaftConfig::snapshot_entries`; `None`: the seed picks (never, or
    /// every 10-60 entries, so every scenario also runs with compaction).
    pub snapshot_entries: Option<u64>,
    /// The scenario makes the network unreliable: no batches under 16
    /// (tiny batches and frequent elections are too slow for the liveness
    /// deadlines).
    pub unreliable: bool,
    /// Membership scenarios: nodes `0..m` form the starting configuration;
    /// the other slots stay down until they join (`boot_joiner`).
    pub members: Option<usize>,
    /// Every node has a key (issue 11): commands and votes are signed
    /// (with the simulation's stand-in signatures, see `SimKeys`).
    pub keys: bool,
    /// The game's rate limit (issue 11): leaders stamp the log with their
    /// clocks, which differ by up to 5 s between nodes (and jump at each
    /// restart); followers refuse stamps that go back, so an honest
    /// leader's refused batch is a violation. `None`: the seed picks, in
    /// clusters of Rust nodes; `Some(0)`: none.
    pub rate_limit: Option<u32>,
}

/// Stand-in signatures: node n's signature of a message is a hash of both.
/// Honest nodes sign only as themselves; a lying node (driven by a
/// scenario) never computes another node's.
#[derive(Debug)]
pub struct SimKeys;

pub fn sim_sig(signer: NodeId, message: &[u8]) -> Sig {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ signer.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in message {
        h = mix(h ^ u64::from(*b));
    }
    let mut out = [0u8; 64];
    for (k, chunk) in out.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(h ^ k as u64).to_le_bytes());
    }
    Arc::new(out)
}

impl CommandAuth for SimKeys {
    fn sign(&self, id: &ClientId, command: &Command) -> Option<Sig> {
        Some(sim_sig(id.node, &signing::command_message(id, command)))
    }
    fn verify(&self, m: &Membership, id: &ClientId, command: &Command, sig: &Sig) -> bool {
        m.get(id.node).is_some_and(|k| k.public_key.is_some())
            && *sig == sim_sig(id.node, &signing::command_message(id, command))
    }
    fn sign_vote(&self, v: &Vote) -> Option<Sig> {
        Some(sim_sig(v.voter, &signing::vote_message(v)))
    }
    fn verify_vote(&self, m: &Membership, v: &Vote, sig: &Sig) -> bool {
        m.is_voter(v.voter) && *sig == sim_sig(v.voter, &signing::vote_message(v))
    }
}

/// The keyed configuration of nodes `0..n`.
pub fn keyed_members(n: usize) -> Membership {
    let members = (0..n as NodeId).map(|id| Member {
        id,
        name: format!("node{id}"),
        addr: String::new(),
        voter: true,
        public_key: Some(format!("key{id}")),
    });
    Membership::new(members.collect()).expect("distinct ids")
}

impl Options {
    pub fn new(n: usize, peers: Peers) -> Self {
        Options {
            n,
            peers,
            static_leader: None,
            request_timeout: None,
            max_batch: None,
            pre_vote: None,
            check_quorum: None,
            election_timeout: None,
            snapshot_entries: None,
            unreliable: false,
            members: None,
            keys: false,
            rate_limit: None,
        }
    }
}

/// What the simulated disk holds (all a crash keeps).
#[derive(Clone, Debug, Default)]
struct Disk {
    hs: HardState,
    log: Vec<Entry>,
    /// `hashes[k]`: chain hash of `log[..=k]` (log matching check).
    hashes: Vec<u64>,
    /// The snapshot the log continues (it stands for every entry up to its
    /// index), and the chain hash of its last entry.
    snapshot: Option<Snapshot>,
    snap_hash: u64,
}

impl Disk {
    fn snap_index(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.meta.index)
    }

    /// Does it hold entry (index, term), itself or through its snapshot
    /// (which only ever covers committed entries)?
    fn holds(&self, index: u64, term: u64) -> bool {
        if self.snap_index().is_some_and(|s| index <= s) {
            return true;
        }
        self.log.iter().any(|e| e.index == index && e.term == term)
    }

    /// Chain hash of the entry at `index`, if held.
    fn hash_at(&self, index: u64) -> Option<u64> {
        let pos = self.log.iter().position(|e| e.index == index)?;
        self.hashes.get(pos).copied()
    }

    /// Chain hash of the last entry, held or compacted (the chain's seed for
    /// an empty log).
    fn last_hash(&self) -> u64 {
        let base = if self.snapshot.is_some() {
            self.snap_hash
        } else {
            0x0123_4567
        };
        self.hashes.last().copied().unwrap_or(base)
    }
}

#[derive(Debug)]
struct Node {
    raft: Option<Raft>,
    disk: Disk,
    /// Bumped at every restart: replies to a dead incarnation are dropped.
    inc: u64,
    connected: bool,
    max_term: u64,
    /// This incarnation's clock = simulated time + `clock_base`.
    clock_base: i64,
    /// Highest request seq this incarnation sent in its earlier turns.
    last_seq: u64,
    /// Highest request seq sent in the current turn (a turn sends a
    /// leader's early appends first, then the rest: seqs rise per turn).
    turn_seq: u64,
    // --- per incarnation ---
    commit: Option<u64>,
    next_apply: u64,
    leader_term: Option<u64>,
    /// While leader: (last index, chain hash of it) last seen.
    leader_log: (Option<u64>, u64),
    log_version: u64,
    applied: BTreeMap<u64, Command>,
    /// Joined a running cluster: it starts with no configuration.
    joiner: bool,
    /// The node's state machine: client commands applied (copies skipped)
    /// and a hash over them, as of `next_apply - 1`.
    app: AppState,
}

/// What the simulated state machine holds: what a snapshot records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct AppState {
    count: u64,
    hash: u64,
}

impl AppState {
    fn apply(&mut self, e: &Entry) {
        if let Command::Int(x) = e.command {
            self.count += 1;
            self.hash = mix(self.hash ^ e.index.wrapping_mul(0x9E37) ^ (x as u64));
        }
    }

    fn to_json(self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("simCount".into(), self.count.into());
        m.insert("simHash".into(), self.hash.into());
        m
    }

    fn from_snapshot(data: &[u8]) -> AppState {
        let doc: serde_json::Value = serde_json::from_slice(data).expect("snapshot is JSON");
        let num = |k: &str| {
            doc.get(k)
                .and_then(serde_json::Value::as_u64)
                .expect("sim state")
        };
        AppState {
            count: num("simCount"),
            hash: num("simHash"),
        }
    }
}

/// The state machine's expected course, from the committed log replayed
/// from index 0 with a fresh session table: the reference every node's
/// state is compared with.
#[derive(Debug, Default)]
struct Expected {
    /// Per index (from 0): applied (not a copy), and the state after it.
    at: Vec<(bool, AppState)>,
    sessions: SessionTable,
    /// With keys: what every node checks signatures against.
    keys: Option<Membership>,
    state: AppState,
    /// Where each client command was first applied.
    admitted_at: HashMap<ClientId, u64>,
}

impl Expected {
    /// Follow the committed log as far as it is known without a gap.
    fn extend(&mut self, committed: &BTreeMap<u64, Committed>) {
        while let Some(k) = committed.get(&(self.at.len() as u64)) {
            let index = self.at.len() as u64;
            let e = Entry {
                term: k.term,
                index: self.at.len() as u64,
                command: k.command.clone(),
                client: k.client,
                sig: k.sig.clone(),
            };
            let signed = self
                .keys
                .as_ref()
                .is_none_or(|m| signing::entry_ok(Some(&SimKeys), m, &e));
            let admitted = signed && k.client.is_none_or(|id| self.sessions.admit(id));
            if let Command::Config(c) = &k.command {
                self.sessions.retain_nodes(|n| c.contains(n));
            }
            if admitted {
                if let Some(id) = k.client {
                    self.admitted_at.insert(id, index);
                }
                let e = Entry {
                    term: k.term,
                    index,
                    command: k.command.clone(),
                    client: k.client,
                    sig: None,
                };
                self.state.apply(&e);
            }
            self.at.push((admitted, self.state));
        }
    }
}

#[derive(Clone, Debug)]
struct Committed {
    term: u64,
    command: Command,
    client: Option<ClientId>,
    sig: Option<Sig>,
    /// Term of the leader that first committed it.
    commit_term: u64,
}

#[derive(Debug)]
enum Ev {
    Tick {
        node: usize,
        inc: u64,
    },
    Request {
        from: usize,
        from_inc: u64,
        to: usize,
        seq: u64,
        rpc: Rpc,
    },
    Reply {
        from: usize,
        to: usize,
        to_inc: u64,
        seq: u64,
        result: Result<Reply, RpcFailure>,
    },
    Client,
}

struct Scheduled {
    at: u64,
    order: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: BinaryHeap is a max-heap, we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// Counters a scenario can assert on or print.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub rpcs: u64,
    pub appends: u64,
    pub votes: u64,
    pub pre_votes: u64,
    pub probes: u64,
    pub entries_sent: u64,
    pub leader_terms: u64,
    pub crashes: u64,
    pub proposals: u64,
    pub snapshot_chunks: u64,
}

pub struct Cluster {
    pub rng: Rng,
    pub now: u64,
    opts: Options,
    nodes: Vec<Node>,
    queue: BinaryHeap<Scheduled>,
    order: u64,
    /// `cut[a][b]`: the link between a and b is down (partitions).
    cut: Vec<Vec<bool>>,
    pub unreliable: bool,
    pub long_reordering: bool,
    client_on: bool,
    next_cmd: i32,
    pub stats: Stats,
    trace: bool,
    // --- invariant state (global, over the whole run) ---
    leaders: BTreeMap<u64, usize>,
    votes: BTreeMap<(usize, u64), NodeId>,
    chain: HashMap<(u64, u64), u64>,
    committed: BTreeMap<u64, Committed>,
    /// `rust_peer[i][p]`: node i takes peer p for a Rust node.
    rust_peer: Vec<Vec<bool>>,
    /// Every command proposed: (proposing node, its incarnation, the id the
    /// core gave it, whether the guarantee holds: the node takes every peer
    /// for a Rust node, so no original-dialect leader can drop its id).
    proposed: Vec<(usize, u64, ClientId, bool)>,
    /// Client command value -> index -> nodes that applied it there (current incarnations).
    by_cmd: HashMap<i32, BTreeMap<u64, BTreeSet<usize>>>,
    /// The committed log replayed from index 0: what every node's state
    /// machine must show.
    expected: Expected,
    /// Answers to membership requests, by token.
    conf_answers: BTreeMap<u64, Result<Reply, String>>,
    next_conf: u64,
    /// This node crashes at its next `Ready` that sends appends early and
    /// has entries to write: after sending them, before its fsync.
    crash_before_fsync: Option<usize>,
}

/// Membership requests use tokens from here (RPC tokens are seqs).
const CONF_TOKEN: u64 = 1 << 60;
/// The token of a lying node's injected request (its answer is dropped).
const LIE_TOKEN: u64 = 1 << 61;

fn violation(now: u64, msg: String) -> ! {
    panic!(
        "INVARIANT VIOLATED at t={}.{:03}s: {msg}",
        now / 1_000_000,
        (now / 1_000) % 1_000
    )
}

fn chain_hash(prev: u64, e: &Entry) -> u64 {
    let text;
    let cmd = match &e.command {
        Command::Int(x) => *x as u64,
        Command::Config(c) => {
            text = Command::Text(c.to_string());
            return chain_hash(
                prev,
                &Entry {
                    command: text,
                    ..e.clone()
                },
            );
        }
        Command::Text(s) => s
            .bytes()
            .fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
            })
            .rotate_left(17),
        Command::Stamp(st) => mix(st.ms ^ (u64::from(st.limit) << 48)),
    };
    let h = mix(prev.wrapping_mul(31) ^ e.index);
    let h = mix(h ^ e.term.wrapping_mul(0x9E37_79B9));
    mix(h ^ cmd)
}

impl Cluster {
    pub fn new(seed: u64, mut opts: Options) -> Self {
        let n = opts.n;
        let mut rng = Rng::new(seed);
        if opts.request_timeout.is_none() {
            opts.request_timeout = Some(Duration::from_millis(if rng.chance(0.5) {
                200
            } else {
                1_000
            }));
        }
        if opts.pre_vote.is_none() {
            // On the legacy path a follower gets no heartbeat beside a lost
            // request, so one silent loss starts an election (a real Python
            // follower has no election timer). Without pre-vote each such
            // election deposes the leader: at 10% loss that is an endless
            // election storm, so unreliable non-Rust runs keep pre-vote on.
            let storm = opts.unreliable && opts.peers != Peers::Rust;
            opts.pre_vote = Some(storm || rng.chance(0.8));
        }
        if opts.check_quorum.is_none() {
            opts.check_quorum = Some(rng.chance(0.8));
        }
        // Which nodes speak the original dialect is a fact about them, the
        // same for every peer that talks to them (compaction relies on it:
        // a node compacts once it knows every peer for a Rust node).
        let is_rust: Vec<bool> = (0..n)
            .map(|_| match opts.peers {
                Peers::Rust => true,
                Peers::Legacy => false,
                Peers::Mixed => rng.chance(0.5),
            })
            .collect();
        let rust_peer: Vec<Vec<bool>> = (0..n).map(|_| is_rust.clone()).collect();
        if opts.rate_limit.is_none() && opts.peers == Peers::Rust && rng.chance(0.5) {
            opts.rate_limit = Some(rng.range(1, 5) as u32);
        }
        if opts.snapshot_entries.is_none() {
            opts.snapshot_entries = Some(if rng.chance(0.4) {
                rng.range(10, 61)
            } else {
                0
            });
        }
        if opts.max_batch.is_none() {
            let default = RaftConfig::new(0, Vec::new()).max_batch;
            opts.max_batch = Some(match rng.below(4) {
                0 | 1 => default,
                2 if !opts.unreliable => rng.range(1, 5) as usize,
                _ => rng.range(16, 65) as usize,
            });
        }
        let mut c = Cluster {
            rng,
            now: 0,
            nodes: Vec::with_capacity(n),
            queue: BinaryHeap::new(),
            order: 0,
            cut: vec![vec![false; n]; n],
            unreliable: opts.unreliable,
            long_reordering: false,
            client_on: false,
            next_cmd: 1,
            stats: Stats::default(),
            trace: std::env::var_os("RAFTIAN_SIM_TRACE").is_some(),
            leaders: BTreeMap::new(),
            votes: BTreeMap::new(),
            chain: HashMap::new(),
            committed: BTreeMap::new(),
            by_cmd: HashMap::new(),
            expected: Expected {
                keys: opts.keys.then(|| keyed_members(n)),
                ..Expected::default()
            },
            proposed: Vec::new(),
            rust_peer,
            opts,
            conf_answers: BTreeMap::new(),
            next_conf: CONF_TOKEN,
            crash_before_fsync: None,
        };
        for _ in 0..n {
            c.nodes.push(Node {
                raft: None,
                disk: Disk::default(),
                inc: 0,
                connected: true,
                max_term: 0,
                clock_base: 0,
                last_seq: 0,
                turn_seq: 0,
                commit: None,
                next_apply: 0,
                leader_term: None,
                leader_log: (None, 0),
                log_version: 0,
                applied: BTreeMap::new(),
                joiner: false,
                app: AppState::default(),
            });
        }
        let m = c.opts.members.unwrap_or(n);
        for i in 0..m {
            c.boot(i);
        }
        c
    }

    // ----- building and crashing nodes -----

    fn boot(&mut self, i: usize) {
        let peers: Vec<NodeId> = (0..self.opts.n as u64).filter(|p| *p != i as u64).collect();
        let mut cfg = RaftConfig::new(i as NodeId, peers.clone());
        if self.opts.keys {
            cfg.members = Some(Arc::new(keyed_members(self.opts.n)));
            cfg.command_auth = Some(Arc::new(SimKeys));
        }
        if let Some(m) = self.opts.members {
            let start = Membership::voters(0..m as NodeId);
            let joiner = self.nodes[i].joiner;
            cfg.members = Some(Arc::new(if joiner { Membership::default() } else { start }));
        }
        cfg.static_leader = self.opts.static_leader;
        cfg.request_timeout = self.opts.request_timeout.expect("set in new");
        cfg.max_batch = self.opts.max_batch.expect("set in new");
        cfg.pre_vote = self.opts.pre_vote.expect("set in new");
        cfg.check_quorum = self.opts.check_quorum.expect("set in new");
        if let Some((lo, hi)) = self.opts.election_timeout {
            cfg.election_timeout_min = lo;
            cfg.election_timeout_max = hi;
        }
        cfg.seed = self.rng.next_u64();
        cfg.incarnation = self.nodes[i].inc + 1;
        // A node the others take for an original Python node never
        // compacts, as the original does not.
        let original = (0..self.opts.n).any(|j| j != i && !self.rust_peer[j][i]);
        cfg.snapshot_entries = if original {
            0
        } else {
            self.opts.snapshot_entries.expect("set in new")
        };
        cfg.snapshot_chunk = 64 + self.rng.below(4096) as usize;
        // A fresh clock origin for this incarnation, 0-100 s before boot.
        self.nodes[i].clock_base = self.rng.below(100_000 * MS) as i64 - self.now as i64;
        if let Some(limit) = self.opts.rate_limit.filter(|l| *l > 0) {
            // Wall clock: the simulation's epoch, plus up to 5 s either way.
            let skew = self.rng.below(10_000) as i64 - 5_000;
            let at_zero = SIM_EPOCH_MS as i64 + skew - self.nodes[i].clock_base / MS as i64;
            cfg.wall_origin_ms = at_zero as u64;
            cfg.rate_limit = Some(limit);
        }
        let disk = &self.nodes[i].disk;
        let now = self.clock(i);
        let snapshot = disk.snapshot.clone();
        let mut raft = Raft::restart(cfg, disk.hs, snapshot, disk.log.clone(), now)
            .unwrap_or_else(|e| violation(self.now, format!("node {i} cannot restart: {e}")));
        for p in peers {
            let kind = if self.rust_peer[i][p as usize] {
                PeerKind::Rust
            } else {
                PeerKind::Original
            };
            raft.step(now, Msg::PeerKind(p, kind));
        }
        if raft.term() < self.nodes[i].max_term {
            violation(
                self.now,
                format!(
                    "node {i} restarted at term {} but had reached term {} (hard state not persisted)",
                    raft.term(),
                    self.nodes[i].max_term
                ),
            );
        }
        let node = &mut self.nodes[i];
        node.raft = Some(raft);
        node.inc += 1;
        // A snapshot is where the state machine starts again.
        let snap = node.disk.snapshot.as_ref();
        node.commit = snap.map(|s| s.meta.index);
        node.app = snap.map_or_else(AppState::default, |s| AppState::from_snapshot(&s.data));
        node.next_apply = match snap {
            Some(s) => s.meta.index + 1,
            None => node.disk.log.first().map_or(0, |e| e.index),
        };
        node.leader_term = None;
        node.leader_log = (None, 0);
        node.log_version = u64::MAX;
        node.last_seq = 0;
        node.turn_seq = 0;
        for (idx, cmd) in std::mem::take(&mut node.applied) {
            if let Command::Int(x) = cmd
                && let Some(set) = self.by_cmd.get_mut(&x).and_then(|m| m.get_mut(&idx))
            {
                set.remove(&i);
            }
        }
        let inc = self.nodes[i].inc;
        let (out, _) = self.after_call(i);
        self.send(i, out);
        let offset = self.rng.below(TICK);
        self.schedule(offset, Ev::Tick { node: i, inc });
        self.tr(|| format!("node {i} boots (incarnation {inc})"));
    }

    /// Crash node `i` (it also drops off the network, as in the MIT tests):
    /// everything not persisted is lost.
    pub fn crash(&mut self, i: usize) {
        if self.nodes[i].raft.take().is_some() {
            self.stats.crashes += 1;
            self.tr(|| format!("node {i} crashes"));
        }
        self.nodes[i].connected = false;
    }

    /// Crash node `i` at its next turn that sends appends before its own
    /// fsync, right after sending them (they stay on their way).
    pub fn crash_before_fsync(&mut self, i: usize) {
        self.crash_before_fsync = Some(i);
    }

    /// Is a crash armed by `crash_before_fsync` still to happen?
    pub fn crash_armed(&self) -> bool {
        self.crash_before_fsync.is_some()
    }

    /// Start node `i` again from its disk (crashing it first if it runs).
    /// It stays disconnected until `connect`.
    pub fn restart(&mut self, i: usize) {
        self.crash(i);
        self.boot(i);
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].raft.is_some()
    }

    pub fn raft(&self, i: usize) -> Option<&Raft> {
        self.nodes[i].raft.as_ref()
    }

    // ----- the network -----

    pub fn disconnect(&mut self, i: usize) {
        self.nodes[i].connected = false;
        self.tr(|| format!("node {i} disconnected"));
    }

    pub fn connect(&mut self, i: usize) {
        self.nodes[i].connected = true;
        self.tr(|| format!("node {i} connected"));
    }

    pub fn is_connected(&self, i: usize) -> bool {
        self.nodes[i].connected
    }

    /// Cut every link between different groups (nodes in no group keep
    /// their links). Links inside a group are restored.
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        let n = self.opts.n;
        let mut group_of = vec![None; n];
        for (g, members) in groups.iter().enumerate() {
            for &m in members {
                group_of[m] = Some(g);
            }
        }
        for a in 0..n {
            for b in 0..n {
                self.cut[a][b] = matches!((group_of[a], group_of[b]), (Some(x), Some(y)) if x != y);
            }
        }
        self.tr(|| format!("partition {groups:?}"));
    }

    /// Cut (or restore) the single link a-b.
    pub fn set_link(&mut self, a: usize, b: usize, up: bool) {
        self.cut[a][b] = !up;
        self.cut[b][a] = !up;
    }

    pub fn heal(&mut self) {
        for row in &mut self.cut {
            row.fill(false);
        }
        self.tr(|| "partitions healed".to_string());
    }

    fn link_ok(&self, a: usize, b: usize) -> bool {
        self.nodes[a].connected && self.nodes[b].connected && !self.cut[a][b]
    }

    fn delay(&mut self, reply: bool) -> u64 {
        // MIT's long reordering delays most replies by 0.2-2.2 s; a few
        // requests too, so that stale requests arrive after their timeout.
        let p = if reply { 0.6 } else { 0.02 };
        if self.long_reordering && self.rng.chance(p) {
            let spread = 1 + self.rng.below(2_000) * MS;
            return 200 * MS + self.rng.below(spread);
        }
        if self.unreliable {
            self.rng.below(27 * MS)
        } else {
            self.rng.range(100, 2 * MS)
        }
    }

    fn schedule(&mut self, after: u64, ev: Ev) {
        self.order += 1;
        self.queue.push(Scheduled {
            at: self.now + after,
            order: self.order,
            ev,
        });
    }

    /// A request or reply was lost: the caller may hear of it or not (then
    /// the core's own request timeout fires). `delivered`: the callee may
    /// have acted on the request, so the caller may only hear `Timeout`;
    /// otherwise also `Unreachable` (refused: surely not delivered).
    fn fail_back(
        &mut self,
        caller: usize,
        caller_inc: u64,
        callee: usize,
        seq: u64,
        delivered: bool,
    ) {
        let failure = match self.rng.below(3) {
            0 => return,
            1 if !delivered => RpcFailure::Unreachable("sim: connection refused".into()),
            _ => RpcFailure::Timeout("sim: no answer".into()),
        };
        let after = self.rng.range(MS, 50 * MS);
        self.schedule(
            after,
            Ev::Reply {
                from: callee,
                to: caller,
                to_inc: caller_inc,
                seq,
                result: Err(failure),
            },
        );
    }

    fn send(&mut self, from: usize, out: Vec<Outbound>) {
        let from_inc = self.nodes[from].inc;
        for o in out {
            // Replies are matched to requests by seq: never reused.
            if o.seq <= self.nodes[from].last_seq {
                violation(
                    self.now,
                    format!(
                        "node {from} reuses request seq {} (last was {})",
                        o.seq, self.nodes[from].last_seq
                    ),
                );
            }
            let node = &mut self.nodes[from];
            node.turn_seq = node.turn_seq.max(o.seq);
            let to = o.to as usize;
            if to == from || to >= self.opts.n {
                violation(self.now, format!("node {from} sends to bad peer {}", o.to));
            }
            self.stats.rpcs += 1;
            match &o.rpc {
                Rpc::AppendEntries(a) => {
                    self.stats.appends += 1;
                    self.stats.entries_sent += a.entries.as_ref().map_or(0, |e| e.len() as u64);
                }
                Rpc::RequestVote(_) => self.stats.votes += 1,
                Rpc::PreVote(_) => self.stats.pre_votes += 1,
                Rpc::IsLogEmpty => self.stats.probes += 1,
                Rpc::InstallSnapshot(_) => self.stats.snapshot_chunks += 1,
                Rpc::TimeoutNow { .. }
                | Rpc::TransferLeader(_)
                | Rpc::AddServer { .. }
                | Rpc::RemoveServer(_) => {}
            }
            self.tr(|| format!("  {from} -> {to} #{} {:?}", o.seq, o.rpc));
            if !self.link_ok(from, to) || (self.unreliable && self.rng.chance(0.1)) {
                self.fail_back(from, from_inc, to, o.seq, false);
                continue;
            }
            let copies = if self.unreliable && self.rng.chance(0.05) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let after = self.delay(false);
                self.schedule(
                    after,
                    Ev::Request {
                        from,
                        from_inc,
                        to,
                        seq: o.seq,
                        rpc: o.rpc.clone(),
                    },
                );
            }
        }
    }

    // ----- running -----

    pub fn run_for(&mut self, d: u64) {
        let end = self.now + d;
        while self.queue.peek().is_some_and(|s| s.at <= end) {
            let s = self.queue.pop().expect("peeked");
            self.now = s.at;
            self.handle(s.ev);
        }
        self.now = end;
    }

    /// Run until `cond` holds (checked every 10 ms); false at the deadline.
    pub fn wait_for(&mut self, limit: u64, mut cond: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            if cond(self) {
                return true;
            }
            if self.now >= end {
                return false;
            }
            self.run_for(10 * MS);
        }
    }

    /// Node `i`'s clock: each incarnation counts from its own random origin
    /// (the runtime's clock starts with the process).
    fn clock(&self, i: usize) -> Duration {
        Duration::from_micros((self.now as i64 + self.nodes[i].clock_base) as u64)
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Tick { node, inc } => {
                if self.nodes[node].inc != inc || self.nodes[node].raft.is_none() {
                    return;
                }
                let now = self.clock(node);
                let raft = self.nodes[node].raft.as_mut().expect("up");
                raft.step(now, Msg::Tick);
                let (out, _) = self.after_call(node);
                self.send(node, out);
                self.schedule(TICK, Ev::Tick { node, inc });
            }
            Ev::Request {
                from,
                from_inc,
                to,
                seq,
                rpc,
            } => {
                if self.nodes[to].raft.is_none() || !self.link_ok(from, to) {
                    self.fail_back(from, from_inc, to, seq, false);
                    return;
                }
                let now = self.clock(to);
                // In the paper's static mode, a peer this node takes for an
                // original Python node sends no node header, as they do.
                let headerless = self.opts.static_leader.is_some() && !self.rust_peer[to][from];
                let sender = (!headerless).then_some(from as NodeId);
                let raft = self.nodes[to].raft.as_mut().expect("up");
                raft.step(
                    now,
                    Msg::Request {
                        token: seq,
                        from: sender,
                        rpc: rpc.clone(),
                    },
                );
                let (out, answers) = self.after_call(to);
                // Only timeout_now_rpc makes a node send (its vote requests).
                self.send(to, out);
                if self.nodes[to].raft.is_none() {
                    // It crashed before its fsync: no answer ever comes.
                    return;
                }
                let answer = answers.into_iter().find(|a| a.token == seq);
                let result = match answer.map(|a| a.result) {
                    Some(Ok(r)) => Ok(r),
                    // A node not (yet, or no longer) in the receiver's
                    // configuration: its vote requests are refused.
                    Some(Err(e))
                        if self.opts.members.is_some()
                            && matches!(rpc, Rpc::RequestVote(_) | Rpc::PreVote(_)) =>
                    {
                        Err(RpcFailure::Fault(400, e.0))
                    }
                    Some(Err(e)) => violation(
                        self.now,
                        format!("node {to} refused node {from}'s request as invalid: {e}: {rpc:?}"),
                    ),
                    None => violation(self.now, format!("node {to} did not answer {rpc:?}")),
                };
                self.tr(|| format!("  {to} handles #{seq} from {from}: {result:?}"));
                if self.unreliable && self.rng.chance(0.1) {
                    self.fail_back(from, from_inc, to, seq, true);
                    return;
                }
                let copies = if self.unreliable && self.rng.chance(0.05) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let after = self.delay(true);
                    self.schedule(
                        after,
                        Ev::Reply {
                            from: to,
                            to: from,
                            to_inc: from_inc,
                            seq,
                            result: result.clone(),
                        },
                    );
                }
            }
            Ev::Reply {
                from,
                to,
                to_inc,
                seq,
                result,
            } => {
                if self.nodes[to].inc != to_inc || self.nodes[to].raft.is_none() {
                    return;
                }
                if result.is_ok() && !self.link_ok(from, to) {
                    self.fail_back(to, to_inc, from, seq, true);
                    return;
                }
                self.tr(|| format!("  {to} gets reply #{seq} from {from}: {result:?}"));
                let now = self.clock(to);
                let raft = self.nodes[to].raft.as_mut().expect("up");
                let kind = None;
                let from = from as NodeId;
                raft.step(
                    now,
                    Msg::Reply {
                        from,
                        seq,
                        result,
                        kind,
                    },
                );
                // The runtime runs service_actions after every burst.
                raft.step(now, Msg::Tick);
                let (out, _) = self.after_call(to);
                self.send(to, out);
            }
            Ev::Client => {
                if !self.client_on {
                    return;
                }
                let up: Vec<usize> = (0..self.opts.n).filter(|i| self.is_up(*i)).collect();
                if !up.is_empty() {
                    let i = up[self.rng.index(up.len())];
                    let cmd = self.fresh();
                    self.propose(i, cmd);
                }
                let after = self.rng.range(2 * MS, 30 * MS);
                self.schedule(after, Ev::Client);
            }
        }
    }

    fn tr(&self, f: impl FnOnce() -> String) {
        if self.trace {
            let t = self.now;
            eprintln!("[{:>5}.{:03}] {}", t / 1_000_000, (t / 1_000) % 1_000, f());
        }
    }

    // ----- clients -----

    /// A new client command value (never 0, the leader's no-op).
    pub fn fresh(&mut self) -> i32 {
        let v = self.next_cmd;
        self.next_cmd += 1;
        v
    }

    /// The value `fresh` will return next.
    pub fn peek_fresh(&self) -> i32 {
        self.next_cmd
    }

    /// Hand a command to node `i` (the game's `pygame_commands`).
    pub fn propose(&mut self, i: usize, cmd: i32) {
        let guaranteed = (0..self.opts.n).all(|p| p == i || self.rust_peer[i][p]);
        let inc = self.nodes[i].inc;
        if let Some(r) = self.nodes[i].raft.as_mut() {
            self.stats.proposals += 1;
            let id = ClientId {
                node: i as NodeId,
                incarnation: r.config().incarnation,
                seq: r.next_client_seq(),
            };
            self.proposed.push((i, inc, id, guaranteed));
            r.step(Duration::ZERO, Msg::Propose(vec![Command::Int(cmd)]));
            self.tr(|| format!("client proposes {cmd} at node {i}"));
        }
    }

    /// `transfer_leader_rpc(target)` on node `i`: the target it chose, or
    /// why it refused.
    pub fn transfer(&mut self, i: usize, target: Option<NodeId>) -> Result<NodeId, String> {
        let now = self.clock(i);
        let raft = self.nodes[i].raft.as_mut().ok_or("node is down")?;
        let rpc = Rpc::TransferLeader(target);
        raft.step(
            now,
            Msg::Request {
                token: 0,
                from: None,
                rpc,
            },
        );
        let (out, answers) = self.after_call(i);
        self.send(i, out);
        match answers.into_iter().next().map(|a| a.result) {
            Some(Ok(Reply::Transfer(t))) => Ok(t),
            Some(Err(e)) => Err(e.0),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// Ask node `i` for a membership change; its answer comes with
    /// [`Cluster::conf_result`] once the change is committed (or refused).
    pub fn request_conf(&mut self, i: usize, rpc: Rpc) -> u64 {
        self.next_conf += 1;
        let token = self.next_conf;
        let now = self.clock(i);
        self.tr(|| format!("node {i} asked {rpc:?}"));
        if let Some(raft) = self.nodes[i].raft.as_mut() {
            raft.step(
                now,
                Msg::Request {
                    token,
                    from: None,
                    rpc,
                },
            );
            let (out, _) = self.after_call(i);
            self.send(i, out);
        } else {
            self.conf_answers.insert(token, Err("node is down".into()));
        }
        token
    }

    /// `add_server_rpc` on node `i` for new node number `k` (its name and
    /// address: asking again for the same `k` is the same node asking).
    pub fn add_server(&mut self, i: usize, k: u64) -> u64 {
        let rpc = Rpc::AddServer {
            name: format!("joiner{k}"),
            addr: format!("sim:{k}"),
            public_key: None,
        };
        self.request_conf(i, rpc)
    }

    pub fn remove_server(&mut self, i: usize, id: NodeId) -> u64 {
        self.request_conf(i, Rpc::RemoveServer(ServerRef::Id(id)))
    }

    pub fn conf_result(&self, token: u64) -> Option<&Result<Reply, String>> {
        self.conf_answers.get(&token)
    }

    /// Wait (up to `limit`) for a membership request's answer.
    pub fn wait_conf(&mut self, token: u64, limit: u64) -> Option<Result<Reply, String>> {
        self.wait_for(limit, |c| c.conf_result(token).is_some());
        self.conf_result(token).cloned()
    }

    /// Start a brand-new node in slot `id` (given by `add_server_rpc`):
    /// empty disk, no configuration; whatever ran there before is gone.
    pub fn boot_joiner(&mut self, id: usize) {
        self.crash(id);
        let node = &mut self.nodes[id];
        node.disk = Disk::default();
        node.max_term = 0;
        node.commit = None;
        node.joiner = true;
        self.votes.retain(|(v, _), _| *v != id);
        self.boot(id);
        self.connect(id);
        self.tr(|| format!("node {id} joins as a new node"));
    }

    /// The latest configuration of the running node with the longest log.
    pub fn latest_membership(&self) -> Arc<Membership> {
        (0..self.opts.n)
            .filter_map(|i| self.raft(i))
            .max_by_key(|r| (r.log().last_term(), r.log().last_index()))
            .map(|r| r.membership())
            .unwrap_or_default()
    }

    pub fn clients_on(&self) -> bool {
        self.client_on
    }

    /// Deliver `rpc` to node `to` as if node `from` sent it, and drop the
    /// answer (a lying node's message: whatever it is, the honest node
    /// must keep every invariant).
    pub fn inject(&mut self, to: usize, from: usize, rpc: Rpc) {
        let now = self.clock(to);
        self.tr(|| format!("  LIE {from} -> {to}: {rpc:?}"));
        let Some(raft) = self.nodes[to].raft.as_mut() else {
            return;
        };
        let token = LIE_TOKEN;
        raft.step(
            now,
            Msg::Request {
                token,
                from: Some(from as NodeId),
                rpc,
            },
        );
        let (out, _) = self.after_call(to);
        self.send(to, out);
        self.conf_answers.remove(&token);
    }

    /// Background clients proposing on random nodes every 2-30 ms.
    pub fn set_clients(&mut self, on: bool) {
        if on && !self.client_on {
            self.schedule(0, Ev::Client);
        }
        self.client_on = on;
    }

    // ----- persistence and invariants -----

    /// What the runtime does after every call: take the `Ready`, send its
    /// early appends, make its batch durable, take the applied orders, then
    /// check every invariant. Returns the other messages to send and the
    /// answers to give (none if the node crashed before its fsync).
    fn after_call(&mut self, i: usize) -> (Vec<Outbound>, Vec<Answer>) {
        let node = &mut self.nodes[i];
        node.last_seq = node.last_seq.max(node.turn_seq);
        let raft = node.raft.as_mut().expect("after_call on a running node");
        let mut ready = raft.ready();
        let early = std::mem::take(&mut ready.early);
        if ready.persist.hard_state.is_some() && !early.is_empty() {
            violation(
                self.now,
                format!("node {i} sends appends before its new term or vote is durable"),
            );
        }
        let writes = !ready.persist.append.is_empty() && !early.is_empty();
        self.send(i, early);
        if writes && self.crash_before_fsync == Some(i) {
            // What it sent is on its way (it stays connected); its disk
            // never sees this turn's entries.
            self.crash_before_fsync = None;
            self.nodes[i].raft = None;
            self.stats.crashes += 1;
            self.tr(|| format!("node {i} crashes after sending its appends, before its fsync"));
            return (Vec::new(), Vec::new());
        }
        self.take_ready(i, ready)
    }

    /// The rest of `after_call`: `ready`'s early messages are sent.
    fn take_ready(&mut self, i: usize, ready: Ready) -> (Vec<Outbound>, Vec<Answer>) {
        let now = self.now;
        let Cluster {
            nodes,
            chain,
            leaders,
            votes,
            committed,
            by_cmd,
            expected,
            stats,
            opts,
            ..
        } = self;
        let opts_members = opts.members;
        let opts_keys = opts.keys;
        let orders = ready.committed;
        let snapshot_due = ready.snapshot_due;
        let restored = ready
            .restore
            .as_ref()
            .map(|s| (s.meta, AppState::from_snapshot(&s.data)));
        let mut log_touched = false;
        if !ready.persist.is_empty() {
            let b = ready.persist;
            log_touched = b.truncate_from.is_some() || !b.append.is_empty();
            persist(now, i, &mut nodes[i].disk, chain, b);
        }
        // Durable: the leader's own copy now counts toward a commit.
        nodes[i].raft.as_mut().expect("running").advance();

        let node = &nodes[i];
        let raft = node.raft.as_ref().expect("running");
        let disk = &node.disk;
        if disk.hs != raft.hard_state() {
            violation(
                now,
                format!(
                    "node {i}: hard state {:?} is not what was persisted ({:?})",
                    raft.hard_state(),
                    disk.hs
                ),
            );
        }
        let ents = raft.entries();
        if (log_touched
            || raft.log_version() != node.log_version
            || ents.len() != disk.log.len()
            || ents.last() != disk.log.last())
            && ents != disk.log.as_slice()
        {
            violation(
                now,
                format!(
                    "node {i}: log differs from what was persisted\n  log:  {:?}\n  disk: {:?}",
                    ents, disk.log
                ),
            );
        }

        // Terms never go back (across restarts too, thanks to the disk).
        let term = raft.term();
        if term < node.max_term {
            violation(
                now,
                format!("node {i}: term went back from {} to {term}", node.max_term),
            );
        }
        // One vote per term.
        if let Some(v) = raft.voted_for() {
            let prev = *votes.entry((i, term)).or_insert(v);
            if prev != v {
                violation(
                    now,
                    format!("node {i} voted for {prev} and then {v} in term {term}"),
                );
            }
        }
        // At most one leader per term.
        let is_leader = raft.mode() == Mode::Leader;
        if is_leader {
            let l = *leaders.entry(term).or_insert_with(|| {
                stats.leader_terms += 1;
                // With keys, nobody leads without a majority's votes.
                if opts_keys {
                    let got = votes
                        .iter()
                        .filter(|((_, t), v)| *t == term && **v == i as NodeId)
                        .count();
                    if got < nodes.len() / 2 + 1 {
                        violation(now, format!("node {i} leads term {term} with {got} votes"));
                    }
                }
                // A node that is no voter (removed, a learner) never wins.
                if opts_members.is_some() && !raft.membership().is_voter(i as NodeId) {
                    violation(
                        now,
                        format!(
                            "node {i} won term {term} but is no voter: {}",
                            raft.membership()
                        ),
                    );
                }
                i
            });
            if l != i {
                violation(now, format!("two leaders in term {term}: {l} and {i}"));
            }
        }
        // Commit index: never back within an incarnation, never past the log.
        let commit = raft.commit_index();
        if commit < node.commit {
            violation(
                now,
                format!(
                    "node {i}: commit index went back from {:?} to {commit:?}",
                    node.commit
                ),
            );
        }
        if let Some(c) = commit
            && raft.log().last_index().is_none_or(|l| c > l)
        {
            violation(
                now,
                format!(
                    "node {i}: commit index {c} past its log's end {:?}",
                    raft.log().last_index()
                ),
            );
        }
        let mut newly: Vec<u64> = Vec::new();
        if let Some(c) = commit
            && commit > node.commit
        {
            let from = node.commit.map_or(0, |o| o + 1);
            // What a snapshot covers was checked when first committed.
            let covered = raft.log().snapshot().map_or(0, |s| s.index + 1);
            for idx in from.max(covered)..=c {
                let Some(e) = raft.log().get(idx) else {
                    violation(
                        now,
                        format!("node {i}: committed index {idx} not in its log"),
                    );
                };
                match committed.get(&idx) {
                    Some(k) => {
                        if k.term != e.term || k.command != e.command {
                            violation(
                                now,
                                format!(
                                    "state machine safety: index {idx} committed as (term {}, {:?}) \
                                     but node {i} commits (term {}, {:?})",
                                    k.term, k.command, e.term, e.command
                                ),
                            );
                        }
                    }
                    None => {
                        // First time anyone commits it: a majority of the
                        // voters (of the committing node's configuration)
                        // must hold it durably.
                        let config = raft.membership();
                        let voters: Vec<usize> = match opts_members {
                            Some(_) => config.voter_ids().map(|v| v as usize).collect(),
                            None => (0..nodes.len()).collect(),
                        };
                        let holders = voters
                            .iter()
                            .filter(|v| nodes[**v].disk.holds(idx, e.term))
                            .count();
                        if holders < voters.len() / 2 + 1 {
                            violation(
                                now,
                                format!(
                                    "node {i} commits index {idx} (term {}) held by only {holders} of {} voters' disks",
                                    e.term,
                                    voters.len()
                                ),
                            );
                        }
                        committed.insert(
                            idx,
                            Committed {
                                term: e.term,
                                command: e.command.clone(),
                                client: e.client,
                                sig: e.sig.clone(),
                                commit_term: term,
                            },
                        );
                        newly.push(idx);
                    }
                }
            }
        }
        // Leader completeness: a leader holds every entry committed in its
        // term or before, and a leader's log only grows.
        let node = &mut nodes[i];
        let raft = node.raft.as_ref().expect("running");
        if is_leader {
            if node.leader_term != Some(term) {
                let covered = raft.log().snapshot().map(|s| s.index);
                for (idx, k) in committed.iter() {
                    if covered.is_some_and(|c| *idx <= c) {
                        continue;
                    }
                    if k.commit_term <= term && raft.log().term_at(*idx) != Some(k.term) {
                        violation(
                            now,
                            format!(
                                "leader completeness: node {i} leads term {term} without entry {idx} \
                                 (term {}) committed in term {}",
                                k.term, k.commit_term
                            ),
                        );
                    }
                }
                node.leader_term = Some(term);
            } else {
                let (last, h) = node.leader_log;
                let compacted = |l| node.disk.snap_index().is_some_and(|s| l <= s);
                let kept = |l| compacted(l) || node.disk.hash_at(l) == Some(h);
                if last.is_some_and(|l| !kept(l)) {
                    violation(
                        now,
                        format!(
                            "node {i}: its log changed (not appended) while leader of term {term}"
                        ),
                    );
                }
            }
            node.leader_log = (node.disk.log.last().map(|e| e.index), node.disk.last_hash());
        } else {
            node.leader_term = None;
        }
        // Applied orders: in log order, committed, and the committed entry;
        // a client command applied at most once per incarnation, and only a
        // real copy skipped.
        expected.extend(committed);
        if let Some((meta, app)) = restored {
            restore_node(now, i, node, by_cmd, committed, expected, (meta, app));
        }
        for Applied {
            entry: e,
            duplicate,
            rejected,
        } in orders
        {
            if rejected && !opts_keys {
                violation(
                    now,
                    format!("node {i} rejects entry {} without keys", e.index),
                );
            }
            check_applied(now, i, node, expected, &e, duplicate || rejected);
            if e.index != node.next_apply {
                violation(
                    now,
                    format!(
                        "node {i} applies index {} but {} was next",
                        e.index, node.next_apply
                    ),
                );
            }
            if commit.is_none_or(|c| e.index > c) {
                violation(
                    now,
                    format!(
                        "node {i} applies index {} beyond its commit {commit:?}",
                        e.index
                    ),
                );
            }
            match committed.get(&e.index) {
                Some(k) if k.term == e.term && k.command == e.command => {}
                other => violation(
                    now,
                    format!(
                        "state machine safety: node {i} applies {e:?} but the committed entry is {other:?}"
                    ),
                ),
            }
            node.next_apply = e.index + 1;
            if duplicate {
                continue;
            }
            if let Command::Int(x) = e.command {
                by_cmd
                    .entry(x)
                    .or_default()
                    .entry(e.index)
                    .or_default()
                    .insert(i);
            }
            node.applied.insert(e.index, e.command);
        }
        node.max_term = term;
        node.commit = commit;
        if let Some(index) = snapshot_due {
            // The runtime's part: the state machine as of `index`.
            if node.next_apply != index + 1 {
                violation(
                    now,
                    format!(
                        "node {i} asked for a snapshot at {index}, applied up to {}",
                        node.next_apply
                    ),
                );
            }
            let clock = Duration::from_micros((now as i64 + node.clock_base) as u64);
            let app = node.app.to_json();
            let raft = node.raft.as_mut().expect("running");
            raft.step(clock, Msg::Snapshot { index, app });
        }
        node.log_version = node.raft.as_ref().expect("running").log_version();

        // Newly committed entries must be in every current leader of a
        // later (or the same) term.
        if !newly.is_empty() {
            for (j, n) in nodes.iter().enumerate() {
                let Some(r) = n.raft.as_ref() else { continue };
                if r.mode() != Mode::Leader {
                    continue;
                }
                let covered = r.log().snapshot().map(|s| s.index);
                for idx in &newly {
                    let k = &committed[idx];
                    if covered.is_some_and(|c| *idx <= c) {
                        continue;
                    }
                    if r.term() >= k.commit_term && r.log().term_at(*idx) != Some(k.term) {
                        violation(
                            now,
                            format!(
                                "leader completeness: node {j} leads term {} without newly committed entry {idx}",
                                r.term()
                            ),
                        );
                    }
                }
            }
        }
        let (conf, answers): (Vec<Answer>, Vec<Answer>) = ready
            .answers
            .into_iter()
            .partition(|a| a.token >= CONF_TOKEN);
        for a in conf {
            self.conf_answers.insert(a.token, a.result.map_err(|e| e.0));
        }
        (ready.messages, answers)
    }

    // ----- observations for the scenarios -----

    /// How long liveness checks wait: 10 s, but 30 s while the network is
    /// unreliable and some peers are on the legacy path (there a lost
    /// request stalls a follower for a whole request timeout, and every
    /// rejected probe costs an is_log_empty round trip, so a new leader can
    /// take seconds to reach a majority and elections come often).
    pub fn liveness(&self) -> u64 {
        if self.unreliable && self.opts.peers != Peers::Rust {
            3 * LIVENESS
        } else {
            LIVENESS
        }
    }

    /// The leader (of the highest term) among connected running nodes.
    pub fn leader(&self) -> Option<usize> {
        (0..self.opts.n)
            .filter(|i| self.nodes[*i].connected)
            .filter_map(|i| self.raft(i).map(|r| (i, r)))
            .filter(|(_, r)| r.mode() == Mode::Leader)
            .max_by_key(|(_, r)| r.term())
            .map(|(i, _)| i)
    }

    /// Liveness: a leader among the connected nodes within 10 s.
    pub fn check_one_leader(&mut self) -> usize {
        if !self.wait_for(self.liveness(), |c| c.leader().is_some()) {
            panic!(
                "LIVENESS: no leader among connected nodes in time (t={} ms, {})",
                self.now / MS,
                self.describe()
            );
        }
        self.leader().expect("checked")
    }

    pub fn check_no_leader(&self) {
        for i in 0..self.opts.n {
            if self.nodes[i].connected && self.raft(i).is_some_and(|r| r.mode() == Mode::Leader) {
                panic!(
                    "node {i} is leader but should not be (t={} ms, {})",
                    self.now / MS,
                    self.describe()
                );
            }
        }
    }

    /// All connected nodes agree on a term (waits up to 1 s); returns it.
    pub fn check_terms(&mut self) -> u64 {
        let agree = |c: &Cluster| {
            let terms: BTreeSet<u64> = (0..c.opts.n)
                .filter(|i| c.nodes[*i].connected)
                .filter_map(|i| c.raft(i).map(|r| r.term()))
                .collect();
            terms.len() == 1
        };
        if !self.wait_for(ELECTION_WAIT, agree) {
            panic!("connected nodes disagree on the term: {}", self.describe());
        }
        let i = (0..self.opts.n)
            .find(|i| self.nodes[*i].connected && self.is_up(*i))
            .expect("a connected node");
        self.raft(i).expect("up").term()
    }

    /// The index at which `cmd` is applied on at least `expected` nodes.
    pub fn committed_on(&self, cmd: i32, expected: usize) -> Option<u64> {
        self.by_cmd
            .get(&cmd)?
            .iter()
            .find(|(_, nodes)| nodes.len() >= expected)
            .map(|(idx, _)| *idx)
    }

    /// How many nodes applied `cmd` (at any index).
    pub fn applied_count(&self, cmd: i32) -> usize {
        self.by_cmd.get(&cmd).map_or(0, |m| {
            m.values()
                .flat_map(|s| s.iter())
                .collect::<BTreeSet<_>>()
                .len()
        })
    }

    /// The distinct indices at which `cmd` was ever committed.
    pub fn commit_indices(&self, cmd: i32) -> Vec<u64> {
        self.committed
            .iter()
            .filter(|(_, k)| k.command == Command::Int(cmd))
            .map(|(i, _)| *i)
            .collect()
    }

    /// Client commands committed more than once (at-least-once forwarding).
    pub fn duplicates(&self) -> usize {
        let mut seen: HashMap<i32, usize> = HashMap::new();
        for k in self.committed.values() {
            if let Command::Int(x) = k.command
                && x != 0
            {
                *seen.entry(x).or_default() += 1;
            }
        }
        seen.values().filter(|n| **n > 1).count()
    }

    /// MIT's `one()`: submit `cmd` (to the leader, or to any connected node,
    /// which forwards it) and wait until `expected` nodes applied it; with
    /// `retry`, submit again every 2 s. Fails after 10 s.
    pub fn one(&mut self, cmd: i32, expected: usize, retry: bool) -> u64 {
        let start = self.now;
        while self.now < start + self.liveness() {
            let connected: Vec<usize> = (0..self.opts.n)
                .filter(|i| self.nodes[*i].connected && self.is_up(*i))
                .collect();
            let target = match self.leader() {
                Some(l) if self.rng.chance(0.6) => Some(l),
                _ if !connected.is_empty() => Some(connected[self.rng.index(connected.len())]),
                _ => None,
            };
            let Some(target) = target else {
                self.run_for(50 * MS);
                continue;
            };
            self.propose(target, cmd);
            let t1 = self.now;
            while self.now < t1 + 2_000 * MS {
                if let Some(idx) = self.committed_on(cmd, expected) {
                    return idx;
                }
                self.run_for(10 * MS);
            }
            if !retry {
                panic!(
                    "one({cmd}) failed to reach agreement on {expected} nodes within 2 s: {}",
                    self.describe()
                );
            }
        }
        panic!(
            "LIVENESS: one({cmd}) failed to reach agreement on {expected} nodes in time: {}",
            self.describe()
        );
    }

    /// Propose every command, then wait until each is applied on `expected`
    /// nodes, re-proposing the missing ones every 2 s; fails after 10 s.
    pub fn all_agree(&mut self, cmds: &[i32], expected: usize) {
        let start = self.now;
        let mut last_try = 0;
        loop {
            let missing: Vec<i32> = cmds
                .iter()
                .copied()
                .filter(|c| self.committed_on(*c, expected).is_none())
                .collect();
            if missing.is_empty() {
                return;
            }
            if self.now >= start + self.liveness() {
                panic!(
                    "LIVENESS: {} of {} commands not agreed on {expected} nodes within {} s: {}",
                    missing.len(),
                    cmds.len(),
                    self.liveness() / 1_000_000,
                    self.describe()
                );
            }
            if last_try == 0 || self.now >= last_try + 2_000 * MS {
                last_try = self.now.max(1);
                let target = self.leader().unwrap_or_else(|| self.rng.index(self.opts.n));
                for c in missing {
                    self.propose(target, c);
                }
            }
            self.run_for(10 * MS);
        }
    }

    /// Wait until every running, connected node applied at least up to the
    /// highest committed index (liveness).
    pub fn wait_all_applied(&mut self) {
        let Some(top) = self.committed.keys().next_back().copied() else {
            return;
        };
        let ok = self.wait_for(LIVENESS, |c| {
            (0..c.opts.n)
                .filter(|i| c.nodes[*i].connected && c.is_up(*i))
                .all(|i| c.nodes[i].next_apply > top)
        });
        if !ok {
            panic!(
                "LIVENESS: not every node applied index {top} within 10 s: {}",
                self.describe()
            );
        }
    }

    /// Liveness after healing: a command proposed on any running node (the
    /// leader appends it, a follower forwards it) commits on every running
    /// node without being proposed again, and no node keeps commands queued.
    pub fn check_each_node_commits(&mut self) {
        let up: Vec<usize> = (0..self.opts.n).filter(|i| self.is_up(*i)).collect();
        let mut cmds = Vec::new();
        for &i in &up {
            let x = self.fresh();
            self.propose(i, x);
            cmds.push((i, x));
        }
        let want = up.len();
        let ok = self.wait_for(LIVENESS, |c| {
            cmds.iter().all(|(_, x)| c.committed_on(*x, want).is_some())
                && up
                    .iter()
                    .all(|i| c.raft(*i).is_some_and(|r| r.queued_commands() == 0))
        });
        if !ok {
            let stuck: Vec<(usize, i32)> = cmds
                .iter()
                .copied()
                .filter(|(_, x)| self.committed_on(*x, want).is_none())
                .collect();
            panic!(
                "LIVENESS: commands proposed at (node, command) {stuck:?} not committed on all \
                 {want} running nodes within 10 s (or commands still queued): {}",
                self.describe()
            );
        }
    }

    /// Every scenario ends here: heal the network and stop the chaos; then
    /// every command proposed at a node that still runs the same
    /// incarnation (and takes all its peers for Rust nodes: an original
    /// leader drops ids) must be applied on every running node within a
    /// bounded wait. Applied exactly once: the per-apply invariant checks.
    pub fn finish(mut self) {
        self.unreliable = false;
        self.long_reordering = false;
        self.set_clients(false);
        self.heal();
        let up: Vec<usize> = (0..self.opts.n).filter(|i| self.is_up(*i)).collect();
        for &i in &up {
            self.connect(i);
        }
        // A removed node that never learnt it was removed (it was cut off)
        // keeps running without the rest of the log: only members count.
        let members = self.latest_membership();
        let up: Vec<usize> = match self.opts.members {
            Some(_) => up
                .into_iter()
                .filter(|i| members.contains(*i as NodeId))
                .collect(),
            None => up,
        };
        let leader_down = self
            .opts
            .static_leader
            .is_some_and(|l| !self.is_up(l as usize));
        let voters = match self.opts.members {
            Some(_) => self.latest_membership().voter_count(),
            None => self.opts.n,
        };
        if up.len() < voters / 2 + 1 || leader_down {
            return; // nothing can commit
        }
        let want: Vec<(usize, ClientId)> = self
            .proposed
            .iter()
            .filter(|(i, inc, _, g)| *g && up.contains(i) && self.nodes[*i].inc == *inc)
            .map(|(i, _, id, _)| (*i, *id))
            .collect();
        let missing = |c: &Cluster| -> Vec<(usize, ClientId)> {
            want.iter()
                .copied()
                .filter(|(_, id)| {
                    // Applied once, at the index where the replay admits
                    // it; every running node must have applied that far.
                    let at = c.expected.admitted_at.get(id);
                    at.is_none_or(|k| up.iter().any(|j| c.nodes[*j].next_apply <= *k))
                })
                .collect()
        };
        if !self.wait_for(LIVENESS, |c| missing(c).is_empty()) {
            panic!(
                "EXACTLY-ONCE LIVENESS: commands (node, id) {:?} taken by nodes that stayed up \
                 not applied on all of {up:?} within 10 s of healing: {}",
                missing(&self),
                self.describe()
            );
        }
    }

    /// The run's settings, for messages.
    pub fn settings(&self) -> String {
        let o = &self.opts;
        format!(
            "{:?} peers, max_batch {}, snapshot every {} entries, request_timeout {:?}, pre_vote {}, \
             check_quorum {}, unreliable {}, long reordering {}",
            o.peers,
            o.max_batch.unwrap_or(0),
            o.snapshot_entries.unwrap_or(0),
            o.request_timeout.unwrap_or_default(),
            o.pre_vote.unwrap_or(true),
            o.check_quorum.unwrap_or(true),
            self.unreliable,
            self.long_reordering
        )
    }

    /// One line per node, for failure messages.
    pub fn describe(&self) -> String {
        let mut s = self.settings();
        for (i, n) in self.nodes.iter().enumerate() {
            match &n.raft {
                None => s.push_str(&format!("\n  node {i}: down")),
                Some(r) => s.push_str(&format!(
                    "\n  node {i}: {} term {} leader {:?} last {:?} commit {:?} queued {} {}",
                    r.mode(),
                    r.term(),
                    r.leader_id(),
                    r.log().last_index(),
                    r.commit_index(),
                    r.queued_commands(),
                    if n.connected { "" } else { "(disconnected)" }
                )),
            }
        }
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::env::var_os("RAFTIAN_SIM_STATS").is_some() && !std::thread::panicking() {
            println!(
                "stats: {:.1} s simulated, {} leader terms, {} RPCs ({} pre-votes, {} votes), {} crashes, \
                 {} proposals, {} duplicated, {} snapshot chunks; {}",
                self.now as f64 / 1e6,
                self.stats.leader_terms,
                self.stats.rpcs,
                self.stats.pre_votes,
                self.stats.votes,
                self.stats.crashes,
                self.stats.proposals,
                self.duplicates(),
                self.stats.snapshot_chunks,
                self.settings(),
            );
        }
    }
}

/// Apply one `PersistBatch` to a disk and check each new entry against every
/// entry ever seen at that index and term (log matching, strong form: the
/// same index and term means the same command and the same prefix).
fn persist(
    now: u64,
    i: usize,
    disk: &mut Disk,
    chain: &mut HashMap<(u64, u64), u64>,
    b: PersistBatch,
) {
    if let Some(hs) = b.hard_state {
        disk.hs = hs;
    }
    if let Some(t) = b.truncate_from {
        let keep = disk.log.iter().take_while(|e| e.index < t).count();
        disk.log.truncate(keep);
        disk.hashes.truncate(keep);
    }
    for e in b.append {
        let expect = match (disk.log.last(), disk.snap_index()) {
            (Some(l), _) => l.index + 1,
            (None, Some(s)) => s + 1,
            (None, None) => 0,
        };
        if e.index != expect {
            violation(
                now,
                format!(
                    "node {i}: persist batch appends index {} where {expect} was next",
                    e.index
                ),
            );
        }
        let h = chain_hash(disk.last_hash(), &e);
        match chain.entry((e.index, e.term)) {
            MapEntry::Occupied(o) => {
                if *o.get() != h {
                    violation(
                        now,
                        format!(
                            "log matching: node {i} holds entry (index {}, term {}) with a different \
                             command or prefix than another log had",
                            e.index, e.term
                        ),
                    );
                }
            }
            MapEntry::Vacant(v) => {
                v.insert(h);
            }
        }
        disk.log.push(e);
        disk.hashes.push(h);
    }
    if let Some(snap) = b.snapshot {
        compact_disk(now, i, disk, chain, snap);
    }
}

/// What storage does with a snapshot: keep it, drop the entries it covers
/// (all of them if the log disagrees with it there).
fn compact_disk(
    now: u64,
    i: usize,
    disk: &mut Disk,
    chain: &HashMap<(u64, u64), u64>,
    snap: Snapshot,
) {
    let m = snap.meta;
    let Some(&h) = chain.get(&(m.index, m.term)) else {
        violation(
            now,
            format!(
                "node {i} keeps a snapshot at ({}, {}) that no log ever held",
                m.index, m.term
            ),
        );
    };
    let agrees = disk.holds(m.index, m.term) && disk.hash_at(m.index).is_none_or(|x| x == h);
    let keep_from = disk
        .log
        .iter()
        .position(|e| e.index > m.index)
        .unwrap_or(disk.log.len());
    if agrees || disk.log.first().is_some_and(|e| e.index > m.index) {
        disk.log.drain(..keep_from);
        disk.hashes.drain(..keep_from);
    } else {
        disk.log.clear();
        disk.hashes.clear();
    }
    disk.snap_hash = h;
    disk.snapshot = Some(snap);
}

/// A node installed its leader's snapshot: its state machine must be what
/// replaying the committed log gives, and it now holds every command up to
/// the snapshot's index.
#[allow(clippy::too_many_arguments)]
fn restore_node(
    now: u64,
    i: usize,
    node: &mut Node,
    by_cmd: &mut HashMap<i32, BTreeMap<u64, BTreeSet<usize>>>,
    committed: &BTreeMap<u64, Committed>,
    expected: &Expected,
    (meta, app): (SnapshotMeta, AppState),
) {
    if let Some((_, want)) = expected.at.get(meta.index as usize)
        && *want != app
    {
        violation(
            now,
            format!(
                "node {i} installs a snapshot at {} whose state {app:?} is not the log's {want:?}",
                meta.index
            ),
        );
    }
    for idx in node.next_apply..=meta.index {
        let admitted = expected.at.get(idx as usize).is_some_and(|(a, _)| *a);
        if let (true, Some(k)) = (admitted, committed.get(&idx))
            && let Command::Int(x) = k.command
        {
            by_cmd
                .entry(x)
                .or_default()
                .entry(idx)
                .or_default()
                .insert(i);
            node.applied.insert(idx, k.command.clone());
        }
    }
    node.app = app;
    node.next_apply = meta.index + 1;
}

/// A node applies (or skips, as a copy) entry `e`: exactly as replaying
/// the committed log from index 0 does, and its state follows.
fn check_applied(
    now: u64,
    i: usize,
    node: &mut Node,
    expected: &Expected,
    e: &Entry,
    duplicate: bool,
) {
    let Some(&(admitted, want)) = expected.at.get(e.index as usize) else {
        return;
    };
    if admitted == duplicate {
        violation(
            now,
            format!(
                "EXACTLY-ONCE: node {i} {} client command {:?} at index {}, a replay of the committed log {} it",
                if duplicate { "skips" } else { "applies" },
                e.client,
                e.index,
                if admitted { "applies" } else { "skips" }
            ),
        );
    }
    if !duplicate {
        node.app.apply(e);
    }
    if node.app != want {
        violation(
            now,
            format!(
                "node {i} after index {}: state {:?}, the committed log gives {want:?}",
                e.index, node.app
            ),
        );
    }
}
