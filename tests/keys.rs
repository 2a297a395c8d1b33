//! Cheating players (issue 11): a cluster whose nodes all have keys takes
//! state-changing requests only when signed. A stranger, a member with the
//! wrong key, a replayed request and a click in another node's name each
//! get a Fault and change no node's term, vote, log or HP.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use dxr::Value;
use raftian::keys;

fn keygen(dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_raftian"))
        .arg("keygen")
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run raftian keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Everything a request could change, per node.
fn state(addrs: &[String]) -> Vec<(Option<i64>, Option<i64>, Value)> {
    addrs
        .iter()
        .map(|a| {
            let s = status(a).unwrap();
            let hp = s.get("hp").cloned().unwrap();
            (
                s.get("term").and_then(int),
                s.get("log_length").and_then(int),
                hp,
            )
        })
        .collect()
}

fn signed(
    key: &ed25519_dalek::SigningKey,
    from: u64,
    to: u64,
    body: &str,
) -> Vec<(&'static str, String)> {
    let counter = keys::Counter::default().next();
    let sig = keys::sign_request(key, from, to, counter, body.as_bytes());
    vec![
        ("X-Raftian-Node", from.to_string()),
        ("X-Raftian-Auth", sig),
    ]
}

#[test]
fn only_signed_requests_change_anything() {
    let dir = temp_dir("keys");
    let (toml, addrs) = cluster_toml(3, false, false);
    // Each node's key, in the data dir the cluster helper gives it.
    let mut keyed = String::new();
    for block in toml.split("[[node]]").filter(|b| !b.trim().is_empty()) {
        let id: usize = block.split("id = ").nth(1).unwrap()[..1].parse().unwrap();
        let public = keygen(&dir.join(format!("data{id}")));
        keyed.push_str(&format!("[[node]]{block}public_key = \"{public}\"\n"));
    }
    let mut c = Cluster::start(&dir, &keyed, addrs, &[]);
    let leader = wait_for("a leader", Duration::from_secs(20), || {
        status(&c.addrs[0]).ok()?.get("leader_id").and_then(int)
    }) as u64;
    let key = |i: usize| keys::load(&dir.join(format!("data{i}"))).unwrap().unwrap();
    let addr0 = c.addrs[0].clone();

    // A signed click of node 0's own player goes through.
    let body = raftian::wire::call_body("click_wait", vec![Value::Integer(1)]).unwrap();
    let headers = signed(&key(0), 0, 0, &body);
    post_with(&addr0, &body, &headers).expect("a signed click");
    wait_for(
        "every node settled on the click",
        Duration::from_secs(20),
        || {
            // Equal, and showing the click (a board may lag its node's
            // apply by a moment: the front end takes orders off a queue).
            let s = state(&c.addrs);
            let hit = Value::Array([70, 100, 100, 100].map(Value::Integer).to_vec());
            s.iter().all(|n| n == &s[0] && n.2 == hit).then_some(())
        },
    );
    let before = state(&c.addrs);

    // The same request again: a replay.
    let err = post_with(&addr0, &body, &headers).unwrap_err();
    assert!(err.contains("401") && err.contains("replayed"), "{err}");
    // A stranger with no key: unsigned, whatever the term.
    let append = vec![
        Value::Nil,
        Value::Integer(2000),
        Value::Nil,
        Value::Boolean(false),
    ];
    for a in &c.addrs {
        let err = call(a, "append_entries_rpc", append.clone()).unwrap_err();
        assert!(err.contains("401") && err.contains("not signed"), "{err}");
    }
    let err = call(&addr0, "click", vec![Value::Integer(2)]).unwrap_err();
    assert!(err.contains("401"), "{err}");
    // A member's id with the wrong key.
    let body = raftian::wire::call_body("append_entries_rpc", append.clone()).unwrap();
    let wrong = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let err = post_with(&addr0, &body, &signed(&wrong, 1, 0, &body)).unwrap_err();
    assert!(err.contains("bad signature"), "{err}");
    // Node 1's key clicking in node 0's name.
    let click = raftian::wire::call_body("click", vec![Value::Integer(2)]).unwrap();
    let err = post_with(&addr0, &click, &signed(&key(1), 1, 0, &click)).unwrap_err();
    assert!(err.contains("may not click for node 0"), "{err}");
    // Signed for another receiver: refused here.
    let err = post_with(&addr0, &click, &signed(&key(0), 0, 1, &click)).unwrap_err();
    assert!(err.contains("bad signature"), "{err}");
    // Readable without a key.
    call(&addr0, "is_log_empty", vec![]).expect("is_log_empty stays open");

    let after = state(&c.addrs);
    assert_eq!(before, after, "nothing changed");
    let hp = |a: &String| status(a).unwrap().get("hp").cloned().unwrap();
    assert_eq!(
        hp(&addr0),
        Value::Array([70, 100, 100, 100].map(Value::Integer).to_vec()),
        "the signed click was applied (its signature checked out everywhere)"
    );

    // A dead player cannot attack: node 2's click after player 2 died is void.
    let signed_click = |from: usize, player: i32| {
        let body = raftian::wire::call_body("click_wait", vec![Value::Integer(player)]).unwrap();
        let headers = signed(&key(from), from as u64, from as u64, &body);
        post_with(&c.addrs[from], &body, &headers)
    };
    for _ in 0..4 {
        signed_click(0, 2).expect("a click on player 2");
    }
    signed_click(2, 1).expect("taken, then void at apply");
    signed_click(0, 3).expect("a later click, after node 2's");
    wait_for(
        "every board to apply it all",
        Duration::from_secs(20),
        || {
            c.addrs
                .iter()
                .all(|a| hp(a) == Value::Array([70, 0, 70, 100].map(Value::Integer).to_vec()))
                .then_some(())
        },
    );
    // The command line: `raftian click --data-dir` signs with the node's key.
    let cli = |extra: &[&str], addr: &str| {
        Command::new(env!("CARGO_BIN_EXE_raftian"))
            .args(["click", "--wait", "--addr", addr])
            .args(extra)
            .arg("4")
            .output()
            .expect("run raftian click")
    };
    let unsigned = cli(&[], &c.addrs[1]);
    assert!(!unsigned.status.success());
    let err = String::from_utf8_lossy(&unsigned.stderr);
    assert!(err.contains("unauthenticated"), "{err}");
    let d1 = dir.join("data1");
    let signed_cli = cli(&["--data-dir", d1.to_str().unwrap()], &c.addrs[1]);
    let err = String::from_utf8_lossy(&signed_cli.stderr);
    assert!(signed_cli.status.success(), "{err}");
    let wrong_node = cli(&["--data-dir", d1.to_str().unwrap()], &c.addrs[0]);
    assert!(
        !wrong_node.status.success(),
        "node 1's key clicks only on node 1"
    );
    wait_for(
        "the signed CLI click everywhere",
        Duration::from_secs(20),
        || {
            c.addrs
                .iter()
                .all(|a| hp(a) == Value::Array([70, 0, 70, 70].map(Value::Integer).to_vec()))
                .then_some(())
        },
    );
    let leader_now = status(&c.addrs[0]).unwrap().get("leader_id").and_then(int);
    assert_eq!(leader_now, Some(leader as i64), "no election was forced");
    c.stop_all();
}

#[test]
fn a_cluster_file_mixing_keys_is_refused() {
    let dir = temp_dir("keys-mixed");
    let (toml, _) = cluster_toml(2, false, false);
    let public = keygen(&dir.join("data0"));
    let mixed = toml.replacen(
        "name = \"raftian\"",
        &format!("name = \"raftian\"\npublic_key = \"{public}\""),
        1,
    );
    let file = dir.join("mixed.toml");
    std::fs::write(&file, mixed).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_raftian"))
        .args(["node", "--id", "0", "--headless", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.join("data0"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("give every node one"), "{err}");
}
