//! The game: pure state (players, HP, damage). No Raft, no window, no I/O.
//!
//! Orders come back from Raft as commands; a command that names a living
//! player deals [`DAMAGE`]; anything else (dead player, unknown id, the
//! leader's no-op 0, the original's seeded 5 and 9) changes nothing.

use std::fmt;

/// Number of players on the board.
pub const PLAYERS: usize = 4;
/// Starting hit points.
pub const MAX_HP: i32 = 100;
/// Damage dealt by one order.
pub const DAMAGE: i32 = 30;

/// A player's id, 1..=4.
pub type PlayerId = u8;

/// What an order did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderOutcome {
    /// The player took damage and has this much HP left (0 = dead).
    Damaged { player: PlayerId, hp: i32 },
    /// The order named a dead player.
    AlreadyDead(PlayerId),
    /// The order named no player (no-op, seeded or unknown command).
    Ignored,
}

/// Why a click is refused before it reaches Raft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClickRefused {
    /// The player has no HP left: an order could change nothing.
    AlreadyDead(PlayerId),
}

impl fmt::Display for ClickRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Front ends show this text as it is (header, stderr, a Fault),
            // and tests and the Python client match on it.
            ClickRefused::AlreadyDead(p) => write!(f, "Player {p} already dead"),
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
        }
    }

    /// Apply one order (a command taken from `raft_orders`).
    pub fn apply_order(&mut self, command: i64) -> OrderOutcome {
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
}
