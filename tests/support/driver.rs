//! Drives a pure core one call at a time, the way the runtime does, and
//! keeps what each `Ready` handed out so a test can check the rules one by
//! one: requests are answered from the turn's `Ready`, replies are followed
//! by `service_actions` (the runtime ticks after every burst), and persisted
//! batches and applied orders pile up until the test takes them.

use std::ops::Deref;
use std::time::Duration;

use raftian::raft::*;

pub struct Node {
    raft: Raft,
    persisted: Option<PersistBatch>,
    orders: Vec<Entry>,
}

impl Deref for Node {
    type Target = Raft;
    fn deref(&self) -> &Raft {
        &self.raft
    }
}

impl Node {
    pub fn new(raft: Raft) -> Self {
        let mut node = Node {
            raft,
            persisted: None,
            orders: Vec::new(),
        };
        node.take_ready();
        node
    }

    fn take_ready(&mut self) -> Ready {
        let mut ready = self.raft.ready();
        self.raft.advance();
        // Sent before or after the fsync, they are all sent.
        let early = std::mem::take(&mut ready.early);
        ready.messages.splice(0..0, early);
        merge(&mut self.persisted, std::mem::take(&mut ready.persist));
        let applied = ready
            .committed
            .drain(..)
            .filter(|c| !c.duplicate && !c.rejected);
        self.orders.extend(applied.map(|c| c.entry));
        ready
    }

    fn request(
        &mut self,
        rpc: Rpc,
        from: Option<NodeId>,
        now: Duration,
    ) -> Result<Reply, InvalidRequest> {
        let msg = Msg::Request {
            token: 1,
            from,
            rpc,
        };
        self.raft.step(now, msg);
        let ready = self.take_ready();
        assert!(ready.messages.is_empty(), "a request sends nothing");
        ready.answers.into_iter().next().expect("answered").result
    }

    pub fn append_entries_rpc(
        &mut self,
        req: &AppendEntries,
        sender: Option<NodeId>,
        now: Duration,
    ) -> Result<AppendReply, InvalidRequest> {
        let rpc = Rpc::AppendEntries(req.clone());
        match self.request(rpc, sender, now)? {
            Reply::Append(r) => Ok(r),
            other => panic!("append answered {other:?}"),
        }
    }

    pub fn service_actions(&mut self, now: Duration) -> Vec<Outbound> {
        self.raft.step(now, Msg::Tick);
        self.take_ready().messages
    }

    pub fn on_reply(
        &mut self,
        from: NodeId,
        seq: u64,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) -> Vec<Outbound> {
        let msg = Msg::Reply {
            from,
            seq,
            result,
            kind: None,
        };
        self.raft.step(now, msg);
        self.service_actions(now)
    }

    /// Any message, its `Ready` taken as the runtime would.
    pub fn step_raw(&mut self, msg: Msg, now: Duration) -> Ready {
        self.raft.step(now, msg);
        self.take_ready()
    }

    pub fn propose(&mut self, commands: impl IntoIterator<Item = Command>) {
        let msg = Msg::Propose(commands.into_iter().collect());
        self.raft.step(Duration::ZERO, msg);
    }

    pub fn note_peer_kind(&mut self, peer: NodeId, is_rust: bool) {
        let kind = PeerKind::from_header(is_rust);
        self.raft.step(Duration::ZERO, Msg::PeerKind(peer, kind));
    }

    /// Everything handed out to be persisted since the last call, as one
    /// batch (`None` if nothing).
    pub fn take_persist(&mut self) -> Option<PersistBatch> {
        self.persisted.take()
    }

    /// Committed entries applied since the last call, in log order (copies of
    /// a client command already applied are not).
    pub fn take_orders(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.orders)
    }
}

/// Fold batch `b` into `acc` with storage's meaning: truncate, then append.
fn merge(acc: &mut Option<PersistBatch>, b: PersistBatch) {
    if b.is_empty() {
        return;
    }
    let acc = acc.get_or_insert_with(PersistBatch::default);
    if b.hard_state.is_some() {
        acc.hard_state = b.hard_state;
    }
    if let Some(t) = b.truncate_from {
        acc.append.retain(|e| e.index < t);
        if acc.append.is_empty() {
            acc.truncate_from = Some(acc.truncate_from.map_or(t, |x| x.min(t)));
        }
    }
    acc.append.extend(b.append);
}
