//! The paper's two FIFO queues and the state the game shares with the node.
//!
//! `pygame_commands`: the game (window or stdin) puts player ids on it; the
//! Raft runtime drains it every `service_actions` tick.
//! `raft_orders`: the runtime puts every committed command on it, in log
//! order; the game takes them and deals damage.
//!
//! They are passed around as values (no globals), so one process could host
//! several nodes (the tests do).

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};

use crate::game::{ClickRefused, Game, OrderOutcome, PlayerId};

/// The game side of `pygame_commands`: where clicks go.
#[derive(Clone, Debug)]
pub struct CommandSender {
    tx: Sender<i32>,
    wake: Arc<tokio::sync::Notify>,
}

impl CommandSender {
    /// Queue a click on `player`. Returns false once the node has stopped.
    pub fn push(&self, player: PlayerId) -> bool {
        self.push_raw(i32::from(player))
    }

    /// Queue any integer command (benchmarks tag their clicks this way).
    pub fn push_raw(&self, command: i32) -> bool {
        let ok = self.tx.send(command).is_ok();
        // An idle node sleeps until its next timer: a click wakes it.
        self.wake.notify_one();
        ok
    }
}

/// The Raft side of `pygame_commands`.
#[derive(Debug)]
pub struct CommandReceiver {
    rx: Receiver<i32>,
    wake: Arc<tokio::sync::Notify>,
}

impl CommandReceiver {
    /// Everything queued so far, oldest first.
    pub fn drain(&self) -> Vec<i32> {
        let mut out = Vec::new();
        while let Ok(c) = self.rx.try_recv() {
            out.push(c);
        }
        out
    }

    /// Notified on every push (an idle node sleeps until its next timer).
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }
}

/// `pygame_commands`.
pub fn command_queue() -> (CommandSender, CommandReceiver) {
    let (tx, rx) = mpsc::channel();
    let wake = Arc::new(tokio::sync::Notify::new());
    (
        CommandSender {
            tx,
            wake: wake.clone(),
        },
        CommandReceiver { rx, wake },
    )
}

/// What travels on `raft_orders`: a committed command, or the whole board
/// when a snapshot replaced the state (a node that was far behind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Order {
    Command(i64),
    Restore(Game),
    /// A configuration committed: the node ids now in the cluster (players
    /// join and leave).
    Members(Vec<u64>),
}

/// The Raft side of `raft_orders`.
#[derive(Clone, Debug)]
pub struct OrderSender(Sender<Order>);

impl OrderSender {
    pub fn push(&self, command: i64) -> bool {
        self.0.send(Order::Command(command)).is_ok()
    }

    /// The cluster's members changed.
    pub fn members(&self, ids: Vec<u64>) -> bool {
        self.0.send(Order::Members(ids)).is_ok()
    }

    /// The board is now `game` (a snapshot was installed).
    pub fn restore(&self, game: Game) -> bool {
        self.0.send(Order::Restore(game)).is_ok()
    }
}

/// The game side of `raft_orders`.
#[derive(Debug)]
pub struct OrderReceiver(Receiver<Order>);

impl OrderReceiver {
    /// Take one order if there is one; `Err(true)` once the node has stopped.
    pub fn try_pop(&self) -> Result<Order, bool> {
        match self.0.try_recv() {
            Ok(c) => Ok(c),
            Err(TryRecvError::Empty) => Err(false),
            Err(TryRecvError::Disconnected) => Err(true),
        }
    }

    /// Wait for the next order; `None` once the node has stopped.
    pub fn pop_blocking(&self) -> Option<Order> {
        self.0.recv().ok()
    }

    /// Wait at most `timeout` for the next order.
    pub fn pop_timeout(&self, timeout: std::time::Duration) -> Result<Order, bool> {
        match self.0.recv_timeout(timeout) {
            Ok(c) => Ok(c),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(false),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(true),
        }
    }

    /// Apply every order already waiting to `game`, oldest first, handing
    /// each outcome to `on_outcome`. Returns false once the node has stopped
    /// (and every order it sent has been applied), so a loop that polls
    /// knows when to end.
    pub fn apply_pending(
        &self,
        game: &SharedGame,
        mut on_outcome: impl FnMut(OrderOutcome),
    ) -> bool {
        loop {
            match self.try_pop() {
                Ok(order) => on_outcome(game.apply(order)),
                Err(stopped) => return !stopped,
            }
        }
    }

    /// Apply orders to `game` as they arrive, until the node stops.
    pub fn apply_until_stopped(&self, game: &SharedGame, mut on_outcome: impl FnMut(OrderOutcome)) {
        while let Some(order) = self.pop_blocking() {
            on_outcome(game.apply(order));
        }
    }
}

/// `raft_orders`.
pub fn order_queue() -> (OrderSender, OrderReceiver) {
    let (tx, rx) = mpsc::channel();
    (OrderSender(tx), OrderReceiver(rx))
}

/// The game state shared by the game loop (which applies orders) and the
/// node's read-only `status()` method.
#[derive(Clone, Debug, Default)]
pub struct SharedGame(Arc<Mutex<Game>>);

impl SharedGame {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply_order(&self, command: i64) -> OrderOutcome {
        self.lock().apply_order(command)
    }

    /// Apply one order from `raft_orders`.
    pub fn apply(&self, order: Order) -> OrderOutcome {
        match order {
            Order::Command(c) => self.apply_order(c),
            Order::Members(ids) => self.lock().set_members(&ids),
            Order::Restore(game) => {
                let round = game.round();
                *self.lock() = game;
                OrderOutcome::Restored { round }
            }
        }
    }

    /// A board that starts from `game` (a node restarting from a snapshot).
    pub fn from_game(game: Game) -> Self {
        SharedGame(Arc::new(Mutex::new(game)))
    }

    /// [`Game::check_click`] on the current state.
    pub fn check_click(&self, player: PlayerId) -> Result<PlayerId, ClickRefused> {
        self.lock().check_click(player)
    }

    pub fn snapshot(&self) -> Game {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Game> {
        // A panic while holding the lock cannot leave a Game half-updated
        // (apply_order is one assignment), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the node shows about itself (footer text, `status()`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: u64,
    pub name: String,
    pub mode: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub commit_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub log_length: u64,
    /// Where the latest snapshot stands (`None`: the log is whole).
    pub snapshot_index: Option<u64>,
    pub snapshot_term: Option<u64>,
    /// The cluster's members as this node knows them (shared: the status
    /// is published every loop turn).
    pub members: Arc<[Member]>,
    /// SHA-256 chained over the applied entries (hex).
    pub state_digest: String,
    /// A leader that keeps leading but leaves this node's clicks out.
    pub censored_by: Option<u64>,
    /// Clicks per player and window now in force (None: no rate limit).
    pub rate_limit: Option<u32>,
    /// This node's clicks dropped by the rate limit so far.
    pub rate_limited: u64,
}

/// A member of the cluster, as `status()` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub name: String,
    pub addr: String,
    /// Counts in elections and commits (every member, until learners).
    pub voter: bool,
    /// Its ed25519 public key (base64), in an authenticated cluster.
    pub public_key: Option<String>,
}

/// Latest [`NodeStatus`], published by the runtime after every change.
#[derive(Clone, Debug, Default)]
pub struct StatusBoard(Arc<Mutex<NodeStatus>>);

impl StatusBoard {
    pub fn publish(&self, status: NodeStatus) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }

    pub fn get(&self) -> NodeStatus {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Everything a game front end (window or headless) needs from its node.
#[derive(Debug)]
pub struct GameLink {
    /// `pygame_commands`.
    pub commands: CommandSender,
    /// `raft_orders`.
    pub orders: OrderReceiver,
    /// Game state; the front end applies orders to it.
    pub game: SharedGame,
    /// The node's live state (name, mode, term, leader).
    pub status: StatusBoard,
}

impl GameLink {
    /// Apply every order waiting on `raft_orders`; returns what they did.
    pub fn apply_pending_orders(&self) -> Vec<OrderOutcome> {
        let mut out = Vec::new();
        self.orders.apply_pending(&self.game, |o| out.push(o));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_orders_are_applied_before_the_stop_is_reported() {
        let (tx, rx) = order_queue();
        let game = SharedGame::new();
        tx.push(2);
        tx.push(0);
        let mut seen = Vec::new();
        assert!(rx.apply_pending(&game, |o| seen.push(o)));
        assert_eq!(
            seen,
            [
                OrderOutcome::Damaged { player: 2, hp: 70 },
                OrderOutcome::Ignored
            ]
        );
        tx.push(2);
        drop(tx);
        seen.clear();
        assert!(!rx.apply_pending(&game, |o| seen.push(o)));
        assert_eq!(seen, [OrderOutcome::Damaged { player: 2, hp: 40 }]);
        rx.apply_until_stopped(&game, |_| panic!("no order is left"));
    }
}
