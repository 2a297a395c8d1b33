//! The game: pure state (players, HP, damage). No Raft, no window, no I/O.
//!
//! Orders come back from Raft as commands; a command that names a living
//! player deals [`DAMAGE`]; anything else (dead player, unknown id, the
//! leader's no-op 0, the original's seeded 5 and 9) changes nothing.
//!
//! Rounds: once at most one player is alive the round is over (that one
//! won, or nobody: a draw), and the replicated command [`NEW_ROUND`] starts
//! the next one, with every HP back to full, at the same log index on every
//! node. The original Python game ignores it (it only acts on commands equal
//! to a player id).

pub mod rate;
pub use rate::RateLimit;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Players on a new board: the original's four.
pub const PLAYERS: usize = 4;
/// Highest player id: ids 1-15 are the cells of the 4x4 board (node 0
/// hosts and has no square).
pub const MAX_PLAYER: PlayerId = 15;
/// Starting hit points.
pub const MAX_HP: i32 = 100;
/// Damage dealt by one order.
pub const DAMAGE: i32 = 30;

/// A player's id, 1..=15 (a node id).
pub type PlayerId = u8;

/// The command that starts the next round (when the current one is over).
pub const NEW_ROUND: i32 = -1;

/// What an order did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderOutcome {
    /// The player took damage and has this much HP left (0 = dead).
    Damaged { player: PlayerId, hp: i32 },
    /// The order named a dead player.
    AlreadyDead(PlayerId),
    /// The order named no player (no-op, seeded or unknown command, or a
    /// new round while the round still runs).
    Ignored,
    /// A new round began (its number).
    NewRound(u64),
    /// The whole board was replaced by a snapshot's (in this round).
    Restored { round: u64 },
    /// The cluster's membership changed: these players joined and left.
    Players {
        joined: Vec<PlayerId>,
        left: Vec<PlayerId>,
    },
}

/// How a finished round ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundEnd {
    Winner(PlayerId),
    /// Nobody is left (the last two died together is impossible with one
    /// order at a time, but a round can start with fewer players).
    Draw,
}

impl fmt::Display for RoundEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoundEnd::Winner(p) => write!(f, "Player {p} wins! Click to play again"),
            RoundEnd::Draw => write!(f, "Draw! Click to play again"),
        }
    }
}

/// Why a click is refused before it reaches Raft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClickRefused {
    /// The player has no HP left: an order could change nothing.
    AlreadyDead(PlayerId),
    /// The round is over: the next click starts a new one.
    RoundOver(RoundEnd),
    /// No such player on the board (never joined, or left).
    NotPlaying(PlayerId),
}

impl fmt::Display for ClickRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Front ends show this text as it is (header, stderr, a Fault),
            // and tests and the Python client match on it.
            ClickRefused::AlreadyDead(p) => write!(f, "Player {p} already dead"),
            ClickRefused::RoundOver(end) => write!(f, "Round over: {end}"),
            ClickRefused::NotPlaying(p) => {
                write!(f, "unknown player {p}: no such player on the board")
            }
        }
    }
}

impl std::error::Error for ClickRefused {}

/// Parse a player id as typed on stdin or sent over the wire (1..=15).
pub fn parse_player(text: &str) -> Result<PlayerId, String> {
    let t = text.trim();
    match t.parse::<i64>() {
        Ok(n) => player_from_int(n),
        Err(_) => Err(format!(
            "'{t}' is not a player id: type a number such as 1, 2, 3 or 4"
        )),
    }
}

/// Check that an integer can name a player (1..=15: the board's cells).
pub fn player_from_int(n: i64) -> Result<PlayerId, String> {
    if (1..=MAX_PLAYER as i64).contains(&n) {
        Ok(n as PlayerId)
    } else {
        Err(format!("unknown player {n}: players are 1 to {MAX_PLAYER}"))
    }
}

/// One square on the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Player {
    pub hp: i32,
    /// Orders that named this player (every click counts once, even on a
    /// player already dead, so that two nodes' counts show whether they
    /// applied the same clicks).
    pub orders: u64,
}

/// The board: the players on it, their HP and orders, and the round.
///
/// The original four players (1-4) are on every new board. Players join
/// and leave with the cluster's membership: [`Game::set_members`] takes
/// each new configuration's node ids, in log order, so every board
/// changes at the same log index. Node 0 hosts and has no square.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Game {
    players: BTreeMap<PlayerId, Player>,
    /// The node ids of the last configuration seen (`None`: none yet; the
    /// first one only adds squares, as the board before it is the same on
    /// every node whatever its cluster file says).
    members: Option<BTreeSet<u64>>,
    /// The round being played (the first is 1).
    round: u64,
}

impl Default for Game {
    fn default() -> Self {
        Self::new()
    }
}

const FULL: Player = Player {
    hp: MAX_HP,
    orders: 0,
};

impl Game {
    pub fn new() -> Self {
        Game {
            players: (1..=PLAYERS as PlayerId).map(|p| (p, FULL)).collect(),
            members: None,
            round: 1,
        }
    }

    /// Apply one order (a command taken from `raft_orders`).
    pub fn apply_order(&mut self, command: i64) -> OrderOutcome {
        if command == i64::from(NEW_ROUND) {
            return self.new_round();
        }
        let Ok(player) = player_from_int(command) else {
            return OrderOutcome::Ignored;
        };
        let Some(p) = self.players.get_mut(&player) else {
            return OrderOutcome::Ignored;
        };
        p.orders += 1;
        if p.hp <= 0 {
            return OrderOutcome::AlreadyDead(player);
        }
        p.hp = (p.hp - DAMAGE).max(0);
        OrderOutcome::Damaged { player, hp: p.hp }
    }

    /// A new configuration's node ids: who joined gets a square at full
    /// HP, who left loses theirs.
    pub fn set_members(&mut self, ids: &[u64]) -> OrderOutcome {
        let now: BTreeSet<u64> = ids.iter().copied().collect();
        let before = self.members.replace(now.clone());
        let joined: Vec<PlayerId> = now
            .iter()
            .filter_map(|id| PlayerId::try_from(*id).ok())
            .filter(|p| (1..=MAX_PLAYER).contains(p))
            .filter(|p| match &before {
                Some(b) => !b.contains(&u64::from(*p)),
                None => !self.players.contains_key(p),
            })
            .collect();
        let left: Vec<PlayerId> = before
            .iter()
            .flatten()
            .filter(|id| !now.contains(id))
            .filter_map(|id| PlayerId::try_from(*id).ok())
            .collect();
        for p in &joined {
            self.players.insert(*p, FULL);
        }
        for p in &left {
            self.players.remove(p);
        }
        OrderOutcome::Players { joined, left }
    }

    /// HP of a player, `None` for one not on the board.
    pub fn hp(&self, player: PlayerId) -> Option<i32> {
        self.players.get(&player).map(|p| p.hp)
    }

    pub fn is_alive(&self, player: PlayerId) -> bool {
        self.hp(player).is_some_and(|hp| hp > 0)
    }

    /// May a click on `player` be queued? Every front end (window, stdin,
    /// the `click` RPC) asks here, so they refuse the same clicks with the
    /// same message.
    pub fn check_click(&self, player: PlayerId) -> Result<PlayerId, ClickRefused> {
        if !self.players.contains_key(&player) {
            return Err(ClickRefused::NotPlaying(player));
        }
        if let Some(end) = self.round_end() {
            return Err(ClickRefused::RoundOver(end));
        }
        if self.is_alive(player) {
            Ok(player)
        } else {
            Err(ClickRefused::AlreadyDead(player))
        }
    }

    /// The players on the board, by id.
    pub fn players(&self) -> impl Iterator<Item = (PlayerId, Player)> + '_ {
        self.players.iter().map(|(id, p)| (*id, *p))
    }

    /// One slot per id from 1 to the highest on the board (at least 4):
    /// a player's HP, or `None` for an id not on the board.
    pub fn hp_by_id(&self) -> Vec<Option<i32>> {
        self.by_id(|p| i64::from(p.hp))
            .into_iter()
            .map(|v| v.map(|h| h as i32))
            .collect()
    }

    /// Like [`Game::hp_by_id`], the orders applied per player.
    pub fn orders_by_id(&self) -> Vec<Option<u64>> {
        self.by_id(|p| p.orders as i64)
            .into_iter()
            .map(|v| v.map(|n| n as u64))
            .collect()
    }

    fn by_id(&self, f: impl Fn(&Player) -> i64) -> Vec<Option<i64>> {
        let top = self.players.keys().max().copied().unwrap_or(0);
        let top = top.max(PLAYERS as PlayerId);
        (1..=top).map(|id| self.players.get(&id).map(&f)).collect()
    }

    /// The node ids of the last configuration applied.
    pub fn members(&self) -> Option<&BTreeSet<u64>> {
        self.members.as_ref()
    }

    pub fn round(&self) -> u64 {
        self.round
    }

    /// A board as a snapshot recorded it; `None` if the numbers cannot be
    /// a board (HP out of range, an id off the board, no round).
    pub fn from_parts(
        players: BTreeMap<PlayerId, Player>,
        members: Option<BTreeSet<u64>>,
        round: u64,
    ) -> Option<Self> {
        let ok = players
            .iter()
            .all(|(id, p)| (1..=MAX_PLAYER).contains(id) && (0..=MAX_HP).contains(&p.hp))
            && round >= 1;
        ok.then_some(Game {
            players,
            members,
            round,
        })
    }

    /// How the round ended, once at most one player is alive.
    pub fn round_end(&self) -> Option<RoundEnd> {
        let mut alive = self.players.iter().filter(|(_, p)| p.hp > 0);
        match (alive.next(), alive.next()) {
            (Some((p, _)), None) => Some(RoundEnd::Winner(*p)),
            (None, _) => Some(RoundEnd::Draw),
            _ => None,
        }
    }

    /// A new round resets every HP, only once the round is over: a second
    /// new-round order (two players asked at once) changes nothing.
    fn new_round(&mut self) -> OrderOutcome {
        if self.round_end().is_none() {
            return OrderOutcome::Ignored;
        }
        for p in self.players.values_mut() {
            p.hp = MAX_HP;
        }
        self.round += 1;
        OrderOutcome::NewRound(self.round)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_until_dead_then_nothing() {
        let mut g = Game::new();
        assert_eq!(
            g.apply_order(3),
            OrderOutcome::Damaged { player: 3, hp: 70 }
        );
        g.apply_order(3);
        g.apply_order(3);
        assert_eq!(g.apply_order(3), OrderOutcome::Damaged { player: 3, hp: 0 });
        assert!(!g.is_alive(3));
        assert_eq!(g.apply_order(3), OrderOutcome::AlreadyDead(3));
        assert_eq!(g.hp_by_id(), [100, 100, 0, 100].map(Some));
        assert_eq!(
            g.orders_by_id(),
            [0, 0, 5, 0].map(Some),
            "an order on the dead still counts"
        );
    }

    #[test]
    fn clicks_on_dead_players_are_refused_with_the_shown_message() {
        let mut g = Game::new();
        assert_eq!(g.check_click(3), Ok(3));
        for _ in 0..4 {
            g.apply_order(3);
        }
        let refused = g.check_click(3).unwrap_err();
        assert_eq!(refused, ClickRefused::AlreadyDead(3));
        assert_eq!(refused.to_string(), "Player 3 already dead");
        assert_eq!(g.check_click(1), Ok(1));
    }

    #[test]
    fn unknown_commands_change_nothing() {
        let mut g = Game::new();
        for c in [0, 5, 9, -1, 16, 1000] {
            assert_eq!(g.apply_order(c), OrderOutcome::Ignored);
        }
        assert_eq!(g, Game::new());
        assert_eq!(g.hp(0), None);
        assert_eq!(g.hp(5), None);
    }

    #[test]
    fn parse_player_rejects_bad_lines() {
        assert_eq!(parse_player(" 2 "), Ok(2));
        assert!(parse_player("16").is_err());
        assert!(parse_player("x").is_err());
        assert!(parse_player("").is_err());
    }

    #[test]
    fn a_round_ends_with_one_player_left_and_a_new_one_resets_every_hp() {
        let mut g = Game::new();
        assert_eq!(
            g.apply_order(i64::from(NEW_ROUND)),
            OrderOutcome::Ignored,
            "round still on"
        );
        for p in [1, 2, 3] {
            for _ in 0..4 {
                g.apply_order(p);
            }
        }
        assert_eq!(g.round_end(), Some(RoundEnd::Winner(4)));
        let refused = g.check_click(4).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "Round over: Player 4 wins! Click to play again"
        );
        assert_eq!(
            g.apply_order(i64::from(NEW_ROUND)),
            OrderOutcome::NewRound(2)
        );
        assert_eq!((g.round(), g.hp_by_id()), (2, vec![Some(MAX_HP); PLAYERS]));
        assert_eq!(
            g.apply_order(i64::from(NEW_ROUND)),
            OrderOutcome::Ignored,
            "once"
        );
        assert_eq!(
            g.orders_by_id(),
            [4, 4, 4, 0].map(Some),
            "orders count across rounds"
        );
    }

    #[test]
    fn players_join_and_leave_with_the_membership() {
        let mut g = Game::new();
        g.apply_order(3);
        // The first configuration only adds: the board before it is the
        // same on every node, whatever its cluster file.
        let out = g.set_members(&[0, 1, 2, 3]);
        assert_eq!(
            out,
            OrderOutcome::Players {
                joined: vec![],
                left: vec![]
            }
        );
        assert_eq!(g.hp(3), Some(70), "a known player keeps its HP");
        assert_eq!(g.hp(4), Some(MAX_HP), "the original four stay");
        let out = g.set_members(&[0, 1, 2, 3, 5]);
        assert_eq!(
            out,
            OrderOutcome::Players {
                joined: vec![5],
                left: vec![]
            }
        );
        assert_eq!(
            g.apply_order(5),
            OrderOutcome::Damaged { player: 5, hp: 70 }
        );
        let out = g.set_members(&[0, 1, 3, 5]);
        assert_eq!(
            out,
            OrderOutcome::Players {
                joined: vec![],
                left: vec![2]
            }
        );
        assert_eq!(g.hp(2), None);
        assert_eq!(
            g.apply_order(2),
            OrderOutcome::Ignored,
            "no square, no damage"
        );
        assert_eq!(g.check_click(2), Err(ClickRefused::NotPlaying(2)));
        assert_eq!(
            g.hp_by_id(),
            vec![Some(100), None, Some(70), Some(100), Some(70)]
        );
        // A new node given a free id gets a fresh square.
        let out = g.set_members(&[0, 1, 2, 3, 5]);
        assert_eq!(
            out,
            OrderOutcome::Players {
                joined: vec![2],
                left: vec![]
            }
        );
        assert_eq!(g.hp(2), Some(MAX_HP));
    }
}
