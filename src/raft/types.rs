//! Plain data types of the Raft core: entries, RPC requests and replies.
//!
//! These mirror the paper's wire protocol but carry no XML: the `wire` module
//! converts them to and from dxr values.

use std::fmt;
use std::sync::Arc;

pub use super::dialect::PeerKind;
use super::membership::Membership;

/// A node's id in the cluster (the paper's `Server.id`).
pub type NodeId = u64;

/// A command carried by a log entry. The game's commands are player ids
/// (`Int`); the original Python code also accepts strings, kept as `Text`.
/// `Config` is a new configuration (membership change): only Rust nodes
/// ever see one, since no change is made while an original node is a member.
/// `Stamp` is a leader's clock reading opening a rate-limit window (issue
/// 11): likewise only in clusters of Rust nodes with a rate limit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Int(i32),
    Text(String),
    Config(Arc<Membership>),
    Stamp(Stamp),
}

/// The leader's wall clock (Unix ms) when it stamped, and the clicks per
/// player and window it was configured with: every node applies the limit
/// the log carries, so all decide alike whatever their own files say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    pub ms: u64,
    pub limit: u32,
}

impl Command {
    /// The command a new leader appends to commit earlier entries (ignored by the game).
    pub const NOOP: Command = Command::Int(0);

    /// May a client (a player's node) propose this? Configurations and
    /// stamps are the leader's own entries.
    pub fn is_client_command(&self) -> bool {
        matches!(self, Command::Int(_) | Command::Text(_))
    }
}

/// Python `repr` of the command, as the original writes it in its log files.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Int(i) => write!(f, "{i}"),
            Command::Text(s) => write!(f, "{}", python_str_repr(s)),
            Command::Config(m) => write!(f, "{}", python_str_repr(&m.to_string())),
            Command::Stamp(s) => write!(f, "'stamp {} limit {}'", s.ms, s.limit),
        }
    }
}

/// Python's `repr()` of a `str`: single quotes unless the text holds a single
/// quote and no double quote.
pub fn python_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Who took a command, and its number among that node's commands (Raft
/// section 6.3, client sessions): the node's id, the incarnation of its
/// session (one per start of the node, durable and increasing), and the
/// command's sequence number in it (from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId {
    pub node: NodeId,
    pub incarnation: u64,
    pub seq: u64,
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.node, self.incarnation, self.seq)
    }
}

/// A command's ed25519 signature by the node that took it (issue 11).
pub type Sig = Arc<[u8; 64]>;

/// A log entry (the paper's `Raft.Entry`), plus the id of the client
/// command it carries, if a Rust node took it (the original Python nodes'
/// commands and the leader's no-ops have none), and in a cluster with keys
/// that node's signature over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub term: u64,
    pub index: u64,
    pub command: Command,
    pub client: Option<ClientId>,
    pub sig: Option<Sig>,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Raft.Entry(term={}, index={}, command={})",
            self.term, self.index, self.command
        )
    }
}

/// An entry as it travels on the wire: `index` is nil when a follower
/// forwards a command to the leader. `client` travels between Rust nodes
/// beside the XML body (a header the original nodes ignore), so their
/// entries stay `{term, index, command}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireEntry {
    pub term: u64,
    pub index: Option<u64>,
    pub command: Command,
    pub client: Option<ClientId>,
    pub sig: Option<Sig>,
}

impl From<&Entry> for WireEntry {
    fn from(e: &Entry) -> Self {
        WireEntry {
            term: e.term,
            index: Some(e.index),
            command: e.command.clone(),
            client: e.client,
            sig: e.sig.clone(),
        }
    }
}

/// `append_entries_rpc(entries, term, commit_index, all_log)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendEntries {
    /// `None` is a heartbeat (the wire's nil).
    pub entries: Option<Vec<WireEntry>>,
    pub term: u64,
    pub commit_index: Option<u64>,
    /// The batch starts at the leader's first entry: the follower overwrites.
    pub all_log: bool,
    /// In a cluster with keys: the signed votes that elected the sender in
    /// `term` (a header between Rust nodes), until the follower took them.
    pub proof: Option<VoteProof>,
}

/// Votes that elected a leader: (voter, its signature over the term, the
/// candidate and itself).
pub type VoteProof = Arc<[(NodeId, Sig)]>;

/// `[success, term]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendReply {
    pub success: bool,
    pub term: u64,
}

/// `request_vote_rpc(term, candidate_id, last_log_index, last_log_term)`;
/// the same arguments for `pre_vote_rpc`. An empty log sends nil for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoteRequest {
    pub term: u64,
    pub candidate_id: NodeId,
    pub last_log_index: Option<u64>,
    pub last_log_term: Option<u64>,
    /// The leader handed over to this candidate (`timeout_now_rpc`): a
    /// voter still in that leader's lease votes anyway (thesis 3.10).
    /// Travels as a header between Rust nodes.
    pub transfer: bool,
}

/// `[term, vote_granted]` (the paper's order), and in a cluster with keys
/// the voter's signature of a granted vote as a third element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteReply {
    pub term: u64,
    pub vote_granted: bool,
    pub sig: Option<Sig>,
}

/// A request the core wants sent to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rpc {
    AppendEntries(AppendEntries),
    RequestVote(VoteRequest),
    PreVote(VoteRequest),
    IsLogEmpty,
    InstallSnapshot(InstallSnapshot),
    /// `timeout_now_rpc(term)`: the leader asks its chosen successor to
    /// campaign at once.
    TimeoutNow {
        term: u64,
    },
    /// `transfer_leader_rpc(target)`: an operator asks the leader to hand
    /// over to `target` (nil: the most up-to-date voter).
    TransferLeader(Option<NodeId>),
    /// `add_server_rpc(name, addr)`: a new node asks to join; answers its
    /// id once it is a member (a learner, promoted when caught up).
    AddServer {
        name: String,
        addr: String,
        /// Its ed25519 public key (base64), in an authenticated cluster.
        public_key: Option<String>,
    },
    /// `remove_server_rpc(id | "host:port")`: answers the removed id once
    /// the removal is committed.
    RemoveServer(ServerRef),
}

/// What a membership request names: a node id or its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerRef {
    Id(NodeId),
    Addr(String),
}

/// `install_snapshot_rpc(term, leader_id, last_index, last_term, offset,
/// data, done)` (Raft Figure 13): one chunk of the leader's snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallSnapshot {
    pub term: u64,
    pub leader_id: NodeId,
    pub last_index: u64,
    pub last_term: u64,
    /// Where this chunk starts in the snapshot's bytes.
    pub offset: u64,
    pub data: Vec<u8>,
    /// The last chunk.
    pub done: bool,
}

/// Where a snapshot stands in the log: it replaces every entry up to
/// `index`, the last of which had `term`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub index: u64,
    pub term: u64,
}

/// A snapshot: the JSON document the state machine was in after applying
/// the log up to `meta.index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

impl Rpc {
    /// The XML-RPC method name.
    pub fn method(&self) -> &'static str {
        match self {
            Rpc::AppendEntries(_) => "append_entries_rpc",
            Rpc::RequestVote(_) => "request_vote_rpc",
            Rpc::PreVote(_) => "pre_vote_rpc",
            Rpc::IsLogEmpty => "is_log_empty",
            Rpc::InstallSnapshot(_) => "install_snapshot_rpc",
            Rpc::TimeoutNow { .. } => "timeout_now_rpc",
            Rpc::TransferLeader(_) => "transfer_leader_rpc",
            Rpc::AddServer { .. } => "add_server_rpc",
            Rpc::RemoveServer(_) => "remove_server_rpc",
        }
    }
}

/// A peer's answer to an [`Rpc`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Append(AppendReply),
    Vote(VoteReply),
    LogEmpty(bool),
    /// `install_snapshot_rpc` answers with the follower's term.
    Snapshot(u64),
    /// `timeout_now_rpc` answers with the target's term.
    TimeoutNow(u64),
    /// `transfer_leader_rpc` answers with the chosen target.
    Transfer(NodeId),
    /// `add_server_rpc` answers the new member's id.
    ServerAdded(NodeId),
    /// `remove_server_rpc` answers the removed member's id.
    ServerRemoved(NodeId),
}

/// Why an [`Rpc`] got no [`Reply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpcFailure {
    /// The request never reached the peer (connection refused or reset
    /// before sending, unknown peer, unencodable request).
    Unreachable(String),
    /// The request went out but no answer came in time: the peer may
    /// still have acted on it.
    Timeout(String),
    /// The peer answered with an XML-RPC Fault.
    Fault(i32, String),
}

/// A message the core asks the runtime to send. `seq` ties the reply back to
/// the request (see [`Msg::Reply`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    pub to: NodeId,
    pub seq: u64,
    pub rpc: Rpc,
}

/// A request the core refuses as malformed: the runtime answers a Fault and
/// no state has changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidRequest(pub String);

impl fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidRequest {}

/// The node's role (the paper's `Raft.Mode`, plus the pre-vote phase).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Leader,
    Candidate,
    PreCandidate,
    Follower,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Leader => "LEADER",
            Mode::Candidate => "CANDIDATE",
            Mode::PreCandidate => "PRECANDIDATE",
            Mode::Follower => "FOLLOWER",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Term and vote: what must be on disk before the node answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: u64,
    pub voted_for: Option<NodeId>,
}

/// What changed since the last `Ready`: the runtime makes it durable before
/// it sends any message or answers any RPC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistBatch {
    pub hard_state: Option<HardState>,
    /// Drop every stored entry with an index at or above this one first
    /// (`Some(first)` of a fresh log means "replace everything").
    pub truncate_from: Option<u64>,
    /// Then append these (consecutive, following what is kept).
    pub append: Vec<Entry>,
    /// Then keep this snapshot (written atomically) and drop every stored
    /// entry up to its index: the log continues from there.
    pub snapshot: Option<Snapshot>,
}

impl PersistBatch {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.truncate_from.is_none()
            && self.append.is_empty()
            && self.snapshot.is_none()
    }
}

/// Everything that happens to a node, as input to [`crate::raft::Raft::step`].
#[derive(Clone, Debug)]
pub enum Msg {
    /// Time passed: the paper's `service_actions` (timers, the leader's new
    /// entries and replication, forwarding, apply).
    Tick,
    /// Commands from the game (`pygame_commands`).
    Propose(Vec<Command>),
    /// An RPC from a peer. Its answer comes back in [`Ready::answers`] under
    /// `token`, to be sent only once that `Ready` is durable.
    Request {
        token: u64,
        /// The sender's id when it told us (Rust nodes send a header; the
        /// original Python nodes do not).
        from: Option<NodeId>,
        rpc: Rpc,
    },
    /// A peer's reply (or failure) to the request the core sent with `seq`;
    /// `kind` is what the answer showed the peer to be, when it showed it.
    Reply {
        from: NodeId,
        seq: u64,
        result: Result<Reply, RpcFailure>,
        kind: Option<PeerKind>,
    },
    /// The runtime learnt which dialect a peer speaks.
    PeerKind(NodeId, PeerKind),
    /// The state machine's own part of the snapshot asked for with
    /// [`Ready::snapshot_due`]: a JSON object, as it was after applying
    /// the log up to `index`.
    Snapshot {
        index: u64,
        app: serde_json::Map<String, serde_json::Value>,
    },
}

/// The answer to a [`Msg::Request`]: a reply, or a refusal of a malformed
/// request (which changed nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub token: u64,
    pub result: Result<Reply, InvalidRequest>,
}

/// What the core hands the runtime once per loop turn (raft-rs's `Ready`),
/// to be handled in this order: send `early`, make `persist` durable, then
/// send `messages` and `answers`, then apply `committed` (`raft_orders`),
/// then call `Raft::advance`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// A leader's appends and heartbeats, which may leave before `persist`
    /// is durable (Ongaro's thesis 10.2.1: the leader writes its own log in
    /// parallel with replication; its own copy counts toward a commit only
    /// once durable, see `Raft::advance`). Only ever set when `persist`
    /// carries no hard state: a term or vote goes out only once durable.
    pub early: Vec<Outbound>,
    pub persist: PersistBatch,
    pub messages: Vec<Outbound>,
    pub answers: Vec<Answer>,
    /// Newly committed entries, in log order.
    pub committed: Vec<Committed>,
    /// A snapshot from the leader replaced the state machine's state: the
    /// runtime restores it (before `committed`, which follow it).
    pub restore: Option<Snapshot>,
    /// Enough entries were applied: once `committed` is applied, the
    /// runtime hands the state machine's part of a snapshot at this index
    /// back with [`Msg::Snapshot`].
    pub snapshot_due: Option<u64>,
}

/// A committed entry, handed to the state machine in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub entry: Entry,
    /// A copy of a client command already applied (the same [`ClientId`]
    /// reached the log twice, say through a forward resent after a lost
    /// answer): the state machine skips it, so every command counts once.
    pub duplicate: bool,
    /// In a cluster with keys: its signature does not check out (forged or
    /// missing). Skipped, on every node alike.
    pub rejected: bool,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.early.is_empty()
            && self.messages.is_empty()
            && self.answers.is_empty()
            && self.committed.is_empty()
            && self.restore.is_none()
            && self.snapshot_due.is_none()
    }
}
