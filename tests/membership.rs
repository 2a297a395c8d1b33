//! Players join and leave a running game (issue 10), with real node
//! processes: three nodes from a cluster file, two more join with
//! `raftian node --join`, everyone clicks, one leaves with `raftian leave`,
//! then the leader leaves (it hands over first). At the end every board
//! and every log of the remaining members are equal.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use dxr::Value;

const SLOW: Duration = Duration::from_secs(30);

fn spawn_joiner(c: &Cluster, via: &str, name: &str, addr: &str) -> Child {
    let out = std::fs::File::create(c.dir.join(format!("{name}.out"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_raftian"))
        .args([
            "node",
            "--join",
            via,
            "--name",
            name,
            "--addr",
            addr,
            "--headless",
        ])
        .arg("--log-dir")
        .arg(c.dir.join("logs"))
        .arg("--data-dir")
        .arg(c.dir.join(format!("data-{name}")))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("spawn a joining node")
}

/// `status().members` of the node at `addr`: (id, voter) pairs.
fn members(addr: &str) -> Option<Vec<(i64, bool)>> {
    let s = status(addr).ok()?;
    let Value::Array(list) = s.get("members")? else {
        return None;
    };
    list.iter()
        .map(|m| {
            let Value::Struct(m) = m else { return None };
            let voter = matches!(m.get("voter"), Some(Value::Boolean(true)));
            Some((m.get("id").and_then(int)?, voter))
        })
        .collect()
}

fn leader_addr(addrs: &[String]) -> Option<String> {
    addrs.iter().find_map(|a| {
        let s = status(a).ok()?;
        (s.get("mode").map(text).as_deref() == Some("LEADER")).then(|| a.clone())
    })
}

fn leave(addr: &str, via: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_raftian"))
        .args(["leave", "--addr", addr, "--via", via])
        .output()
        .expect("run raftian leave")
}

fn exits_within(child: &mut Option<Child>, limit: Duration) -> bool {
    let Some(child) = child.as_mut() else {
        return true;
    };
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn hp(addr: &str) -> Option<Vec<Option<i64>>> {
    let s = status(addr).ok()?;
    let Value::Array(hp) = s.get("hp")? else {
        return None;
    };
    Some(hp.iter().map(int).collect())
}

#[test]
fn players_join_click_and_leave() {
    let dir = temp_dir("membership");
    let (toml, addrs) = cluster_toml(3, false, false);
    let mut c = Cluster::start(&dir, &toml, addrs, &[]);
    wait_for("a leader", SLOW, || leader_addr(&c.addrs));

    // Two players join through a follower (passed on to the leader).
    for name in ["dave", "erin"] {
        let addr = format!("127.0.0.1:{}", free_port());
        let via = c.addrs[0].clone();
        // Kept with the cluster's children: killed however the test ends.
        c.children.push(Some(spawn_joiner(&c, &via, name, &addr)));
        c.addrs.push(addr);
        let want = c.addrs.len();
        wait_for(&format!("{name} to vote"), SLOW, || {
            let m = members(&c.addrs[1])?;
            (m.len() == want && m.iter().all(|(_, v)| *v)).then_some(())
        });
    }
    let ids = members(&c.addrs[0]).unwrap();
    assert_eq!(
        ids.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4],
        "the next free ids"
    );
    let mut all: Vec<String> = c.addrs.clone();

    // Clicks on every node, the joiners' too.
    for (k, a) in all.iter().enumerate() {
        let player = (k % 4 + 1) as i32;
        call(a, "click_wait", vec![Value::Integer(player)])
            .unwrap_or_else(|e| panic!("click on {a}: {e}"));
    }

    // Node 1 leaves: its square leaves every board; its process stops.
    let out = leave(&c.addrs[1], &c.addrs[2]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("has left"));
    assert!(
        exits_within(&mut c.children[1], SLOW),
        "a removed node stops"
    );
    all.retain(|a| *a != c.addrs[1]);
    for a in &all {
        wait_for(&format!("square 1 gone on {a}"), SLOW, || {
            (hp(a)?.first() == Some(&None)).then_some(())
        });
    }
    let out = leave(&c.addrs[1], &c.addrs[2]);
    assert!(!out.status.success(), "leaving twice is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no member has address"));

    // The leader leaves: it hands over once its removal is committed.
    let old = leader_addr(&all).expect("a leader");
    let out = leave(&old, &old);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    all.retain(|a| *a != old);
    let next = wait_for("a new leader", SLOW, || leader_addr(&all));
    assert_ne!(next, old);
    call(&next, "click_wait", vec![Value::Integer(3)]).unwrap();

    // Every remaining board and log agree.
    let applied = |a: &str| {
        let s = status(a).ok()?;
        Some((
            s.get("last_applied").and_then(int),
            text(s.get("state_digest")?),
        ))
    };
    wait_for(
        "the same board, index and state digest everywhere",
        SLOW,
        || {
            let boards: Vec<_> = all.iter().map(|a| (hp(a), applied(a))).collect();
            boards.windows(2).all(|w| w[0] == w[1]).then_some(())
        },
    );
    let members_now = members(&next).unwrap();
    assert_eq!(members_now.len(), 3, "{members_now:?}");
    let names: Vec<String> = all
        .iter()
        .map(|a| text(status(a).unwrap().get("name").unwrap()))
        .collect();
    // Followers first, then the leader (a leader stopped while others run
    // hands over, and the new leader's no-op would be in some logs only).
    let leader = leader_addr(&all).expect("a leader");
    let mut order: Vec<usize> = (0..c.addrs.len())
        .filter(|i| c.addrs[*i] != leader)
        .collect();
    order.extend((0..c.addrs.len()).filter(|i| c.addrs[*i] == leader));
    for i in order {
        if let Some(child) = c.children[i].as_ref() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        assert!(
            exits_within(&mut c.children[i], SLOW),
            "node {i} stops on SIGTERM"
        );
    }
    let logs = c.final_log_lines();
    let lines: Vec<&String> = names.iter().map(|n| &logs[n]).collect();
    assert!(
        lines.windows(2).all(|w| w[0] == w[1]),
        "the remaining members' logs differ: {lines:?}"
    );
    assert!(lines[0].contains("config: "), "the log shows the changes");
}
