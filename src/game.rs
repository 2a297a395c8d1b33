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

use std::fmt;

/// Number of players on the board.
pub const PLAYERS: usize = 4;
/// Starting hit points.
pub const MAX_HP: i32 = 100;
/// Damage dealt by one order.
pub const DAMAGE: i32 = 30;

/// A player's id, 1..=4.
pub type PlayerId = u8;

/// The command that starts the next round (when the current one is over).
pub const NEW_ROUND: i32 = -1;

/// What an order did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

impl fmt::Display for ClickRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Front ends show this text as it is (header, stderr, a Fault),
            // and tests and the Python client match on it.
            ClickRefused::AlreadyDead(p) => write!(f, "Player {p} already dead"),
            ClickRefused::RoundOver(end) => write!(f, "Round over: {end}"),
        }
    }
}

impl std::error::Error for ClickRefused {}

/// Parse a player id as typed on stdin or sent over the wire (1..=4).
pub fn parse_player(text: &str) -> Result<PlayerId, String> {
    let t = text.trim();
    match t.parse::<i64>() {
        Ok(n) => player_from_int(n),
        Err(_) => Err(format!("'{t}' is not a player id: type 1, 2, 3 or 4")),
    }
}

/// Check that an integer names a player (1..=4).
pub fn player_from_int(n: i64) -> Result<PlayerId, String> {
    if (1..=PLAYERS as i64).contains(&n) {
        Ok(n as PlayerId)
    } else {
        Err(format!("unknown player {n}: players are 1 to {PLAYERS}"))
    }
}

/// The board: every player's HP, and how many orders named each player
/// (every click counts once, even on a player already dead, so that two
/// nodes' counts show whether they applied the same clicks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Game {
    hp: [i32; PLAYERS],
    orders: [u64; PLAYERS],
    /// The round being played (the first is 1).
    round: u64,
}

impl Default for Game {
    fn default() -> Self {
        Self::new()
    }
}

impl Game {
    pub fn new() -> Self {
        Game {
            hp: [MAX_HP; PLAYERS],
            orders: [0; PLAYERS],
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
        self.orders[usize::from(player) - 1] += 1;
        let hp = &mut self.hp[usize::from(player) - 1];
        if *hp <= 0 {
            return OrderOutcome::AlreadyDead(player);
        }
        *hp = (*hp - DAMAGE).max(0);
        OrderOutcome::Damaged { player, hp: *hp }
    }

    /// HP of a player (1..=4), `None` for an unknown id.
    pub fn hp(&self, player: PlayerId) -> Option<i32> {
        self.hp.get(usize::from(player).checked_sub(1)?).copied()
    }

    pub fn is_alive(&self, player: PlayerId) -> bool {
        self.hp(player).is_some_and(|hp| hp > 0)
    }

    /// May a click on `player` be queued? Every front end (window, stdin,
    /// the `click` RPC) asks here, so they refuse the same clicks with the
    /// same message.
    pub fn check_click(&self, player: PlayerId) -> Result<PlayerId, ClickRefused> {
        if let Some(end) = self.round_end() {
            return Err(ClickRefused::RoundOver(end));
        }
        if self.is_alive(player) {
            Ok(player)
        } else {
            Err(ClickRefused::AlreadyDead(player))
        }
    }

    /// All four HP values, player 1 first.
    pub fn hp_all(&self) -> [i32; PLAYERS] {
        self.hp
    }

    /// Orders applied per player, player 1 first.
    pub fn orders_all(&self) -> [u64; PLAYERS] {
        self.orders
    }

    pub fn round(&self) -> u64 {
        self.round
    }

    /// A board as a snapshot recorded it; `None` if the numbers cannot be
    /// a board (HP out of range, no round).
    pub fn from_parts(hp: [i32; PLAYERS], orders: [u64; PLAYERS], round: u64) -> Option<Self> {
        let ok = hp.iter().all(|h| (0..=MAX_HP).contains(h)) && round >= 1;
        ok.then_some(Game { hp, orders, round })
    }

    /// How the round ended, once at most one player is alive.
    pub fn round_end(&self) -> Option<RoundEnd> {
        let mut alive = (1..=PLAYERS as PlayerId).filter(|p| self.is_alive(*p));
        match (alive.next(), alive.next()) {
            (Some(p), None) => Some(RoundEnd::Winner(p)),
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
        self.hp = [MAX_HP; PLAYERS];
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
        assert_eq!(g.hp_all(), [100, 100, 0, 100]);
        assert_eq!(
            g.orders_all(),
            [0, 0, 5, 0],
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
        for c in [0, 5, 9, -1, 1000] {
            assert_eq!(g.apply_order(c), OrderOutcome::Ignored);
        }
        assert_eq!(g, Game::new());
        assert_eq!(g.hp(0), None);
        assert_eq!(g.hp(5), None);
    }

    #[test]
    fn parse_player_rejects_bad_lines() {
        assert_eq!(parse_player(" 2 "), Ok(2));
        assert!(parse_player("5").is_err());
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
        assert_eq!((g.round(), g.hp_all()), (2, [MAX_HP; PLAYERS]));
        assert_eq!(
            g.apply_order(i64::from(NEW_ROUND)),
            OrderOutcome::Ignored,
            "once"
        );
        assert_eq!(g.orders_all(), [4, 4, 4, 0], "orders count across rounds");
    }
}
