//! The rate limit (issue 11): with `max_clicks_per_sec`, a player's clicks
//! beyond it in a window of the leader's clock are dropped at apply, the
//! same ones on every node, and the player's status (and window header)
//! says how many.

mod common;

use std::time::Duration;

use common::*;
use dxr::Value;

fn slot(s: &std::collections::BTreeMap<String, Value>, key: &str, i: usize) -> i64 {
    match s.get(key) {
        Some(Value::Array(a)) => a.get(i).and_then(int).unwrap_or(-1),
        _ => -1,
    }
}

#[test]
fn clicks_over_the_limit_are_dropped_alike_everywhere() {
    let dir = temp_dir("rate_limit");
    let (toml, addrs) = cluster_toml(3, false, false);
    let toml = format!("max_clicks_per_sec = 1\n{toml}");
    let c = Cluster::start(&dir, &toml, addrs, &[]);
    wait_for("a leader", Duration::from_secs(20), || {
        status(&c.addrs[0]).ok()?.get("leader_id").and_then(int)
    });
    // A burst on player 2 from node 0: one click per second gets through
    // (a player of 100 HP survives the two windows a burst can span).
    let mut taken = 0;
    for _ in 0..12 {
        match call(&c.addrs[0], "click", vec![Value::Integer(2)]) {
            Ok(_) => taken += 1,
            Err(e) if e.contains("already dead") => break,
            Err(e) => panic!("click: {e}"),
        }
    }
    let settled = wait_for(
        "every node applied the burst alike",
        Duration::from_secs(20),
        || {
            let all: Vec<_> = c
                .addrs
                .iter()
                .map(|a| status(a).ok())
                .collect::<Option<_>>()?;
            let s0: &std::collections::BTreeMap<String, Value> = &all[0];
            let dropped = s0.get("rate_limited").and_then(int)?;
            let hits = slot(s0, "orders", 1);
            let same = all.iter().all(|s| {
                s.get("state_digest") == s0.get("state_digest") && s.get("hp") == s0.get("hp")
            });
            (same && hits + dropped == taken).then_some((hits, dropped, all))
        },
    );
    let (hits, dropped, all) = settled;
    assert!(
        dropped >= 1,
        "a burst of {taken} clicks at 1/s dropped none"
    );
    assert!(hits >= 1, "the first click of a window counts");
    assert_eq!(
        slot(&all[1], "hp", 1),
        100 - 30 * hits,
        "hp follows the kept clicks"
    );
    for s in &all {
        assert_eq!(s.get("rate_limit").and_then(int), Some(1));
    }
    for s in &all[1..] {
        assert_eq!(
            s.get("rate_limited").and_then(int),
            Some(0),
            "only node 0 clicked"
        );
    }
    drop(c);
}
