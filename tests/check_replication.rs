//! `scripts/check_replication.sh` compares what nodes hold in common: a
//! compacted log agrees with a whole one, a different entry or a different
//! game at the same snapshot point names the node.

mod common;

use std::path::Path;
use std::process::Command;

fn entries(range: std::ops::RangeInclusive<u64>, odd: Option<u64>) -> String {
    let items: Vec<String> = range
        .map(|i| {
            let c = if Some(i) == odd { 4 } else { 1 };
            format!("Raft.Entry(term=1, index={i}, command={c})")
        })
        .collect();
    format!("log = [{}]", items.join(", "))
}

fn node(dir: &Path, name: &str, lines: &[String]) {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let file = d.join(format!("2026-01-01 00:00:00.000000.{name}.log"));
    std::fs::write(file, lines.join("\n") + "\n").unwrap();
}

fn check(dir: &Path) -> (i32, String) {
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/check_replication.sh"
        ))
        .arg(dir)
        .output()
        .expect("bash");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn snapshot(hp: [u32; 4]) -> String {
    format!(r#"snapshot = {{"lastIndex":5,"lastTerm":1,"hp":{hp:?},"round":1,"sessions":[]}}"#)
}

#[test]
fn compacted_and_whole_logs_agree_and_a_differing_node_is_named() {
    let dir = common::temp_dir("check-replication");
    node(
        &dir,
        "a",
        &[snapshot([100, 40, 100, 100]), entries(6..=8, None)],
    );
    node(&dir, "b", &[entries(0..=8, None)]);
    let (code, out) = check(&dir);
    assert_eq!(code, 0, "{out}");
    node(&dir, "c", &[entries(0..=8, Some(7))]);
    let (code, out) = check(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED: c differ"), "{out}");
    std::fs::remove_dir_all(dir.join("c")).unwrap();
    node(
        &dir,
        "d",
        &[snapshot([100, 40, 100, 70]), entries(6..=8, None)],
    );
    node(
        &dir,
        "e",
        &[snapshot([100, 40, 100, 100]), entries(6..=8, None)],
    );
    let (code, out) = check(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED: d differ"), "{out}");
}

#[test]
fn running_nodes_compare_their_state_digests() {
    let dir = common::temp_dir("check-replication-live");
    let (toml, addrs) = common::cluster_toml(3, false, false);
    let c = common::Cluster::start(&dir, &toml, addrs, &[]);
    common::wait_for("a leader", std::time::Duration::from_secs(20), || {
        common::status(&c.addrs[0])
            .ok()?
            .get("leader_id")
            .and_then(common::int)
    });
    for p in [1, 2, 2] {
        common::call(&c.addrs[0], "click_wait", vec![dxr::Value::Integer(p)]).unwrap();
    }
    let run = |args: &[&str]| {
        let out = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/check_replication.sh"
            ))
            .arg("--status")
            .args(args)
            .output()
            .expect("bash");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    };
    let addrs: Vec<&str> = c.addrs.iter().map(String::as_str).collect();
    let (code, out) = run(&addrs);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("same state digest"), "{out}");
    let (code, out) = run(&addrs[..1]);
    assert_eq!(code, 2, "one node is nothing to compare: {out}");
}
