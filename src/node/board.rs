//! The game's part of a snapshot document (the paper's listing 16): every
//! server's `id`, `url`, `port` and `hp`, the round and the orders applied
//! per player. Raft adds `lastIndex`, `lastTerm`, `lastConfig` and the
//! session table.

use serde_json::{Map, Value, json};

use crate::config::ClusterConfig;
use crate::game::{Game, PLAYERS, PlayerId};

/// The board as it goes into a snapshot.
pub fn app_state(game: &Game, cluster: &ClusterConfig) -> Map<String, Value> {
    let servers = cluster.nodes.iter().map(|n| {
        let (url, port) = n.addr.rsplit_once(':').unwrap_or((&n.addr, ""));
        let hp = PlayerId::try_from(n.id).ok().and_then(|p| game.hp(p));
        json!({"id": n.id, "url": url, "port": port.parse::<u16>().ok(), "hp": hp})
    });
    let mut m = Map::new();
    m.insert("servers".into(), Value::Array(servers.collect()));
    m.insert("hp".into(), json!(game.hp_all()));
    m.insert("orders".into(), json!(game.orders_all()));
    m.insert("round".into(), json!(game.round()));
    m
}

/// The board back from a snapshot document.
pub fn game_from_snapshot(data: &[u8]) -> Result<Game, String> {
    let doc: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    let array = |k: &str| -> Result<[u64; PLAYERS], String> {
        let v = doc
            .get(k)
            .and_then(Value::as_array)
            .ok_or(format!("no '{k}'"))?;
        let nums: Option<Vec<u64>> = v.iter().map(Value::as_u64).collect();
        nums.and_then(|n| n.try_into().ok())
            .ok_or(format!("'{k}' is not {PLAYERS} numbers"))
    };
    let hp = array("hp")?.map(|h| i32::try_from(h).unwrap_or(i32::MAX));
    let round = doc
        .get("round")
        .and_then(Value::as_u64)
        .ok_or("no 'round'")?;
    Game::from_parts(hp, array("orders")?, round).ok_or_else(|| "not a board".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_survives_a_snapshot() {
        let toml = "[[node]]\nid = 0\nname = \"a\"\naddr = \"127.0.0.1:8000\"\n\
                    [[node]]\nid = 3\nname = \"b\"\naddr = \"10.0.0.7:8003\"\n";
        let cluster = ClusterConfig::from_toml_str(toml).unwrap();
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
    }
}
