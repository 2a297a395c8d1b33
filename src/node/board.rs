//! The game's part of a snapshot document (the paper's listing 16): every
//! server's `id`, `url`, `port` and `hp`, the round and the orders applied
//! per player. Raft adds `lastIndex`, `lastTerm`, `lastConfig` and the
//! session table.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::game::{Game, Player, PlayerId, RateLimit};
use crate::raft::Membership;

/// The board as it goes into a snapshot: `hp` and `orders` hold one slot
/// per player id from 1 (null: no such player), `members` the node ids of
/// the last configuration the board saw.
pub fn app_state(game: &Game, members: &Membership) -> Map<String, Value> {
    let servers = members.members().iter().map(|n| {
        let (url, port) = n.addr.rsplit_once(':').unwrap_or((&n.addr, ""));
        let hp = PlayerId::try_from(n.id).ok().and_then(|p| game.hp(p));
        json!({"id": n.id, "url": url, "port": port.parse::<u16>().ok(), "hp": hp})
    });
    let mut m = Map::new();
    m.insert("servers".into(), Value::Array(servers.collect()));
    m.insert("hp".into(), json!(game.hp_by_id()));
    m.insert("orders".into(), json!(game.orders_by_id()));
    m.insert("members".into(), json!(game.members()));
    m.insert("round".into(), json!(game.round()));
    m
}

/// The snapshot document's key for the rate limit's state.
pub const RATE_KEY: &str = "rateLimit";

pub fn rate_doc(rate: &RateLimit) -> Value {
    serde_json::to_value(rate).expect("the rate limit serializes")
}

/// The rate limit's state from a snapshot document (none in one written
/// before the rate limit: no window yet).
pub fn rate_from_snapshot(data: &[u8]) -> Result<RateLimit, String> {
    let doc: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    match doc.get(RATE_KEY) {
        None | Some(Value::Null) => Ok(RateLimit::default()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("{RATE_KEY}: {e}")),
    }
}

/// The board back from a snapshot document (also one written before
/// players could join: four numbers, no `members`).
pub fn game_from_snapshot(data: &[u8]) -> Result<Game, String> {
    let doc: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    let slots = |k: &str| -> Result<Vec<Option<u64>>, String> {
        let v = doc
            .get(k)
            .and_then(Value::as_array)
            .ok_or(format!("no '{k}'"))?;
        v.iter()
            .map(|x| match x {
                Value::Null => Ok(None),
                x => x.as_u64().map(Some).ok_or(format!("'{k}' holds {x}")),
            })
            .collect()
    };
    let (hp, orders) = (slots("hp")?, slots("orders")?);
    if hp.len() != orders.len() {
        return Err("'hp' and 'orders' differ in length".into());
    }
    let mut players = BTreeMap::new();
    for (i, (h, o)) in hp.iter().zip(&orders).enumerate() {
        let id = PlayerId::try_from(i + 1).map_err(|_| "too many players")?;
        match (h, o) {
            (Some(h), Some(o)) => {
                let hp = i32::try_from(*h).map_err(|_| "hp out of range")?;
                players.insert(id, Player { hp, orders: *o });
            }
            (None, None) => {}
            _ => return Err(format!("player {id} has hp or orders but not both")),
        }
    }
    let members = match doc.get("members") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<BTreeSet<u64>>(v.clone())
                .map_err(|e| format!("members: {e}"))?,
        ),
    };
    let round = doc
        .get("round")
        .and_then(Value::as_u64)
        .ok_or("no 'round'")?;
    Game::from_parts(players, members, round).ok_or_else(|| "not a board".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_survives_a_snapshot() {
        let toml = "[[node]]\nid = 0\nname = \"a\"\naddr = \"127.0.0.1:8000\"\n\
                    [[node]]\nid = 3\nname = \"b\"\naddr = \"10.0.0.7:8003\"\n";
        let cluster = crate::config::ClusterConfig::from_toml_str(toml).unwrap();
        let cluster = cluster.membership();
        let mut g = Game::new();
        g.apply_order(3);
        let doc = Value::Object(app_state(&g, &cluster));
        assert_eq!(
            doc["servers"][1],
            json!({"id": 3, "url": "10.0.0.7", "port": 8003, "hp": 70})
        );
        assert_eq!(
            doc["servers"][0]["hp"],
            Value::Null,
            "node 0 hosts and has no square"
        );
        let back = game_from_snapshot(&serde_json::to_vec(&doc).unwrap()).unwrap();
        assert_eq!(back, g);
        assert!(game_from_snapshot(br#"{"hp":[1,2],"orders":[0,0,0,0],"round":1}"#).is_err());
        let old = br#"{"hp":[100,70,100,100],"orders":[0,1,0,0],"round":2}"#;
        let g = game_from_snapshot(old).expect("a snapshot from before joins");
        assert_eq!((g.hp(2), g.round(), g.members()), (Some(70), 2, None));
        let mut g = Game::new();
        g.set_members(&[0, 1, 2, 7]);
        let doc = Value::Object(app_state(&g, &cluster));
        assert_eq!(doc["hp"][6], json!(100));
        assert_eq!(doc["hp"][4], Value::Null);
        let back = game_from_snapshot(&serde_json::to_vec(&doc).unwrap()).unwrap();
        assert_eq!(back, g);
    }
}
