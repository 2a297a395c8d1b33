//! The node's one event loop: it alone owns the Raft core.
//!
//! Events are RPCs from the server, replies from peers and the 5 ms tick
//! that drains `pygame_commands`. After each burst of events the loop runs
//! `service_actions`, makes the core's changes durable (one fsync for the
//! whole burst: group commit), and only then answers the RPCs and sends the
//! new messages. Committed entries go to `raft_orders` in log order.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dxr::Fault;
use log::{error, info};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::peers::Peers;
use super::trace::Trace;
use crate::logfile::LogFile;
use crate::queues::{CommandReceiver, NodeStatus, OrderSender, StatusBoard};
use crate::raft::{
    AppendEntries, AppendReply, Command, Entry, ForwardId, NodeId, Outbound, Raft, Reply,
    RpcFailure, VoteReply, VoteRequest,
};
use crate::storage::Storage;
use crate::wire::{FAULT_BAD_ARGS, FAULT_UNAVAILABLE};

pub enum Event {
    Append {
        req: AppendEntries,
        sender: Option<NodeId>,
        forward_id: Option<ForwardId>,
        reply: oneshot::Sender<Result<AppendReply, Fault>>,
    },
    Vote {
        req: VoteRequest,
        pre: bool,
        reply: oneshot::Sender<Result<VoteReply, Fault>>,
    },
    IsLogEmpty {
        reply: oneshot::Sender<bool>,
    },
    Reply {
        from: NodeId,
        seq: u64,
        result: Result<Reply, RpcFailure>,
        is_rust: Option<bool>,
    },
    LogSnapshot {
        reply: oneshot::Sender<Vec<Entry>>,
    },
}

/// An answer held back until the state it reports is on disk.
enum Answer {
    Append(
        oneshot::Sender<Result<AppendReply, Fault>>,
        Result<AppendReply, Fault>,
    ),
    Vote(
        oneshot::Sender<Result<VoteReply, Fault>>,
        Result<VoteReply, Fault>,
    ),
    Empty(oneshot::Sender<bool>, bool),
}

impl Answer {
    fn send(self, persist_failed: bool) {
        let down = || Fault::new(FAULT_UNAVAILABLE, "node cannot write its state".into());
        match self {
            Answer::Append(tx, r) => {
                let _ = tx.send(if persist_failed { Err(down()) } else { r });
            }
            Answer::Vote(tx, r) => {
                let _ = tx.send(if persist_failed { Err(down()) } else { r });
            }
            Answer::Empty(tx, b) => {
                let _ = tx.send(b);
            }
        }
    }
}

pub struct Actor {
    pub raft: Raft,
    pub storage: Box<dyn Storage>,
    /// The storage does I/O (fsync): persist off the worker's other tasks.
    pub storage_blocks: bool,
    pub origin: Instant,
    pub tick: Duration,
    pub peers: Peers,
    pub commands: CommandReceiver,
    pub orders: OrderSender,
    pub status: StatusBoard,
    pub name: String,
    pub log_version: watch::Sender<u64>,
    pub log_file: Option<Arc<Mutex<LogFile>>>,
    pub trace: Option<Arc<Trace>>,
}

/// Most events handled before one persist + send round.
const BURST: usize = 512;

impl Actor {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    pub async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>, stop: Arc<Notify>) {
        let origin = tokio::time::Instant::from_std(self.origin);
        let far = Duration::from_secs(3600);
        let mut last_tick = tokio::time::Instant::now();
        let mut clicks_waiting = false;
        let pushed = self.commands.waker();
        let mut out: Vec<Outbound> = Vec::new();
        let mut answers: Vec<Answer> = Vec::new();
        self.publish_status();
        loop {
            // Sleep until the core has timed work or, when clicks wait on
            // pygame_commands, until the next 5 ms service_actions tick: an
            // idle node does not wake 200 times a second for nothing. Never
            // sooner than a tick from now, so a deadline already passed
            // cannot spin the loop.
            let now = tokio::time::Instant::now();
            let core_at = origin
                .checked_add(self.raft.next_deadline())
                .unwrap_or(now + far);
            let tick_at = if clicks_waiting {
                last_tick + self.tick
            } else {
                now + far
            };
            let wake_at = core_at.min(tick_at).max(now.min(last_tick + self.tick));
            tokio::select! {
                _ = tokio::time::sleep_until(wake_at) => {
                    if clicks_waiting && tokio::time::Instant::now() >= tick_at {
                        last_tick = tokio::time::Instant::now();
                        clicks_waiting = false;
                        let commands = self.commands.drain();
                        if !commands.is_empty() {
                            self.raft.propose(commands.into_iter().map(Command::Int));
                        }
                    }
                }
                _ = pushed.notified() => {
                    clicks_waiting = true;
                    continue;
                }
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    self.handle(ev, &mut out, &mut answers);
                    for _ in 0..BURST {
                        match events.try_recv() {
                            Ok(ev) => self.handle(ev, &mut out, &mut answers),
                            Err(_) => break,
                        }
                    }
                }
                _ = stop.notified() => break,
            }
            let now = self.now();
            out.extend(self.raft.service_actions(now));
            let persist_failed = !self.persist();
            for a in answers.drain(..) {
                a.send(persist_failed);
            }
            if persist_failed {
                error!("{}: stopping: state could not be made durable", self.name);
                break;
            }
            for m in out.drain(..) {
                self.peers.send(m);
            }
            self.deliver_orders();
            self.log_version.send_if_modified(|v| {
                let changed = *v != self.raft.log_version();
                *v = self.raft.log_version();
                changed
            });
            self.publish_status();
        }
        self.finish();
    }

    fn handle(&mut self, ev: Event, out: &mut Vec<Outbound>, answers: &mut Vec<Answer>) {
        let now = self.now();
        match ev {
            Event::Append {
                req,
                sender,
                forward_id,
                reply,
            } => {
                let r = self
                    .raft
                    .append_entries_rpc_with_id(&req, sender, forward_id, now)
                    .map_err(|e| Fault::new(FAULT_BAD_ARGS, e.0));
                answers.push(Answer::Append(reply, r));
            }
            Event::Vote { req, pre, reply } => {
                let r = if pre {
                    self.raft.pre_vote_rpc(&req, now)
                } else {
                    self.raft.request_vote_rpc(&req, now)
                }
                .map_err(|e| Fault::new(FAULT_BAD_ARGS, e.0));
                answers.push(Answer::Vote(reply, r));
            }
            Event::IsLogEmpty { reply } => {
                answers.push(Answer::Empty(reply, self.raft.is_log_empty()));
            }
            Event::Reply {
                from,
                seq,
                result,
                is_rust,
            } => {
                if let Some(r) = is_rust {
                    self.raft.note_peer_kind(from, r);
                }
                out.extend(self.raft.on_reply(from, seq, result, now));
            }
            Event::LogSnapshot { reply } => {
                let _ = reply.send(self.raft.entries().to_vec());
            }
        }
    }

    /// Make the core's changes durable; false if the disk failed.
    fn persist(&mut self) -> bool {
        let Some(batch) = self.raft.take_persist() else {
            return true;
        };
        let storage = &mut self.storage;
        // block_in_place hands this worker's other tasks to another thread:
        // worth it around an fsync, pure overhead for the in-memory store.
        let r = if self.storage_blocks {
            tokio::task::block_in_place(|| storage.persist(&batch))
        } else {
            storage.persist(&batch)
        };
        match r {
            Ok(()) => true,
            Err(e) => {
                error!("{}: cannot persist Raft state: {e}", self.name);
                false
            }
        }
    }

    fn deliver_orders(&mut self) {
        for e in self.raft.take_orders() {
            if let Command::Int(c) = e.command {
                if let Some(t) = &self.trace {
                    t.applied(i64::from(c));
                }
                self.orders.push(i64::from(c));
            }
        }
    }

    pub fn publish_status(&self) {
        let r = &self.raft;
        let s = NodeStatus {
            id: r.id(),
            name: self.name.clone(),
            mode: r.mode().as_str().to_owned(),
            term: r.term(),
            leader_id: r.leader_id(),
            commit_index: r.commit_index(),
            last_applied: r.last_applied(),
            log_length: r.entries().len() as u64,
        };
        self.status.publish(s);
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
