//! Five real node processes on loopback: clicks on several nodes end with
//! the same log and the same HP everywhere, in the paper's static-leader
//! setup and in election mode.

mod common;

use std::time::Duration;

use common::*;
use dxr::Value;

fn click(addr: &str, player: i32) {
    call(addr, "click", vec![Value::Integer(player)]).unwrap();
}

fn hp(addr: &str) -> Vec<i64> {
    match status(addr).unwrap().get("hp") {
        Some(Value::Array(a)) => a.iter().filter_map(int).collect(),
        other => panic!("no hp: {other:?}"),
    }
}

/// Every node reports the same log length and HP, and has applied it all.
fn settled(c: &Cluster, expect_hp: &[i64]) -> bool {
    let mut lens = Vec::new();
    for a in &c.addrs {
        let Ok(s) = status(a) else { return false };
        let len = s.get("log_length").and_then(int);
        let applied = s.get("last_applied").and_then(int);
        let commit = s.get("commit_index").and_then(int);
        if applied.is_none() || applied != commit || hp(a) != expect_hp {
            return false;
        }
        lens.push(len);
    }
    lens.windows(2).all(|w| w[0] == w[1])
}

fn run(static_leader: bool) {
    let dir = temp_dir(if static_leader {
        "cluster-static"
    } else {
        "cluster-election"
    });
    let (toml, addrs) = cluster_toml(5, static_leader, static_leader);
    let mut c = Cluster::start(&dir, &toml, addrs, &[]);
    // In election mode wait for a leader first.
    wait_for("a leader", Duration::from_secs(20), || {
        status(&c.addrs[1])
            .ok()?
            .get("leader_id")
            .and_then(int)
            .map(|_| ())
    });
    // Clicks on the leader and on followers: player 1 x2, 2 x1, 3 x4 (dies).
    let plan = [(0, 1), (1, 3), (2, 3), (3, 1), (4, 2), (1, 3), (2, 3)];
    for (node, player) in plan {
        click(&c.addrs[node], player);
    }
    let expect = vec![40, 70, 0, 100];
    wait_for(
        "all nodes to apply every click",
        Duration::from_secs(30),
        || settled(&c, &expect).then_some(()),
    );
    // A dead player cannot be clicked.
    let err = call(&c.addrs[3], "click", vec![Value::Integer(3)]).unwrap_err();
    assert!(err.contains("already dead"), "{err}");
    let err = call(&c.addrs[3], "click", vec![Value::Integer(7)]).unwrap_err();
    assert!(err.contains("unknown player"), "{err}");

    c.stop_all();
    let lines = c.final_log_lines();
    assert_eq!(lines.len(), 5, "{lines:?}");
    let first = lines.values().next().unwrap().clone();
    assert!(first.contains("command=3"), "{first}");
    for (name, l) in &lines {
        assert_eq!(l, &first, "{name}'s final log differs");
    }
    if static_leader {
        // The bobs' seeded entries (command 9) were overwritten.
        assert!(!first.contains("command=9"), "{first}");
        assert!(first.starts_with("log = [Raft.Entry(term=1, index=4, command=5)"));
    }
}

#[test]
fn five_nodes_static_leader_replicate_clicks() {
    run(true);
}

#[test]
fn five_nodes_election_mode_replicate_clicks() {
    run(false);
}

fn leader_of(c: &Cluster, skip: Option<usize>) -> Option<usize> {
    let ids: Vec<usize> = (0..c.addrs.len()).filter(|i| Some(*i) != skip).collect();
    let mut leaders = ids.iter().filter_map(|i| {
        let s = status(&c.addrs[*i]).ok()?;
        (text(s.get("mode")?) == "LEADER").then_some(*i)
    });
    let l = leaders.next()?;
    // Everyone else alive agrees.
    ids.iter()
        .all(|i| {
            status(&c.addrs[*i])
                .ok()
                .and_then(|s| s.get("leader_id").and_then(int))
                == Some(l as i64)
        })
        .then_some(l)
}

#[test]
fn killed_nodes_restart_from_disk_and_catch_up() {
    let dir = temp_dir("cluster-kill");
    let (toml, addrs) = cluster_toml(5, false, false);
    let mut c = Cluster::start(&dir, &toml, addrs, &[]);
    let leader = wait_for("a leader", Duration::from_secs(20), || leader_of(&c, None));
    let follower = (leader + 1) % 5;
    click(&c.addrs[leader], 1);
    wait_for("first click applied", Duration::from_secs(20), || {
        settled(&c, &[70, 100, 100, 100]).then_some(())
    });

    // SIGKILL a follower, play on, bring it back: it restarts from its
    // data dir (same log, term and vote) and catches up.
    c.kill(follower);
    click(&c.addrs[leader], 2);
    click(&c.addrs[(leader + 2) % 5], 2);
    c.start_node(follower);
    wait_for("the follower to catch up", Duration::from_secs(30), || {
        settled(&c, &[70, 40, 100, 100]).then_some(())
    });

    // SIGKILL the leader: the others elect a new one and keep playing;
    // the old leader comes back as a follower with nothing lost.
    let old_term = int(status(&c.addrs[follower]).unwrap().get("term").unwrap()).unwrap();
    c.kill(leader);
    let new_leader = wait_for("a new leader", Duration::from_secs(30), || {
        leader_of(&c, Some(leader)).filter(|l| *l != leader)
    });
    click(&c.addrs[new_leader], 4);
    c.start_node(leader);
    wait_for("the old leader to rejoin", Duration::from_secs(30), || {
        settled(&c, &[70, 40, 100, 70]).then_some(())
    });
    let s = status(&c.addrs[leader]).unwrap();
    assert_eq!(text(s.get("mode").unwrap()), "FOLLOWER");
    assert!(int(s.get("term").unwrap()).unwrap() > old_term);

    c.stop_all();
    let lines = c.final_log_lines();
    let first = lines.values().next().unwrap();
    assert!(lines.values().all(|l| l == first), "{lines:#?}");
}

/// A round ends when one player is left: every board says so, clicks are
/// refused until someone starts the next round, which resets every board.
#[test]
fn a_won_round_ends_and_the_next_one_resets_every_board() {
    let dir = temp_dir("cluster-rounds");
    let (toml, addrs) = cluster_toml(3, true, false);
    let c = Cluster::start(&dir, &toml, addrs, &[]);
    for (k, player) in [1, 2, 3].iter().flat_map(|p| [*p; 4]).enumerate() {
        let addr = &c.addrs[k % 3];
        call(addr, "click_wait", vec![Value::Integer(player)]).unwrap();
        // click_wait answers once this node applied it; its board follows.
        let want = {
            let mut hp = vec![100i64; 4];
            for p in [1, 2, 3].iter().flat_map(|p| [*p; 4]).take(k + 1) {
                hp[p as usize - 1] = (hp[p as usize - 1] - 30).max(0);
            }
            hp
        };
        wait_for("the click on the board", Duration::from_secs(10), || {
            (hp(addr) == want).then_some(())
        });
    }
    wait_for(
        "every board at the round's end",
        Duration::from_secs(10),
        || {
            c.addrs
                .iter()
                .all(|a| hp(a) == [0, 0, 0, 100])
                .then_some(())
        },
    );
    let err = call(&c.addrs[1], "click", vec![Value::Integer(4)]).unwrap_err();
    assert!(err.contains("Round over: Player 4 wins"), "{err}");
    call(&c.addrs[2], "new_round", vec![]).unwrap();
    wait_for("round 2 on every board", Duration::from_secs(10), || {
        c.addrs
            .iter()
            .all(|a| {
                let s = status(a).unwrap();
                s.get("round").and_then(int) == Some(2) && hp(a) == [100, 100, 100, 100]
            })
            .then_some(())
    });
    let err = call(&c.addrs[0], "new_round", vec![]).unwrap_err();
    assert!(err.contains("still on"), "{err}");
    call(&c.addrs[0], "click", vec![Value::Integer(4)]).unwrap();
}

/// Log compaction end to end: a follower is down (its data dir gone) while
/// the others take thousands of clicks and compact their logs; it comes
/// back empty and catches up by an installed snapshot, with the same board.
#[test]
fn a_follower_back_on_an_empty_data_dir_catches_up_by_snapshot() {
    let dir = temp_dir("cluster-snapshot");
    let (toml, addrs) = cluster_toml(3, false, false);
    let toml = format!("snapshot_entries = 200\nsnapshot_chunk_bytes = 512\n{toml}");
    let mut c = Cluster::start(&dir, &toml, addrs, &["--traces"]);
    let leader = wait_for("a leader", Duration::from_secs(20), || {
        let s = status(&c.addrs[0]).ok()?;
        s.get("leader_id").and_then(int)
    }) as usize;
    let away = (leader + 1) % 3;
    let here = (leader + 2) % 3;
    call(&c.addrs[leader], "click_wait", vec![Value::Integer(1)]).unwrap();
    c.kill(away);
    std::fs::remove_dir_all(dir.join(format!("data{away}"))).unwrap();
    for tag in 0..2000 {
        let node = if tag % 2 == 0 { leader } else { here };
        call(
            &c.addrs[node],
            "bench_click",
            vec![Value::Integer(1_000_000 + tag)],
        )
        .unwrap();
    }
    call(&c.addrs[here], "click_wait", vec![Value::Integer(2)]).unwrap();
    let field = |a: &str, k: &str| status(a).ok()?.get(k).and_then(int);
    let commit = field(&c.addrs[leader], "commit_index").unwrap();
    wait_for("the two nodes to compact", Duration::from_secs(20), || {
        [leader, here]
            .iter()
            .all(|i| field(&c.addrs[*i], "snapshot_index").is_some_and(|s| s > 1000))
            .then_some(())
    });
    c.start_node(away);
    wait_for(
        "the empty node to catch up",
        Duration::from_secs(30),
        || (field(&c.addrs[away], "last_applied")? >= commit).then_some(()),
    );
    let s = status(&c.addrs[away]).unwrap();
    let snap = s
        .get("snapshot_index")
        .and_then(int)
        .expect("it installed a snapshot");
    assert!(snap > 1000, "snapshot at {snap}");
    let len = s.get("log_length").and_then(int).unwrap();
    assert!(len < 1000, "it holds {len} entries, not the whole history");
    wait_for("the same board everywhere", Duration::from_secs(10), || {
        c.addrs
            .iter()
            .all(|a| hp(a) == [70, 70, 100, 100])
            .then_some(())
    });
    // The node restored from a snapshot shows the same state digest as the
    // nodes that applied every entry (once all applied as far).
    let digest = |a: &String| {
        let s = status(a).ok()?;
        Some((
            s.get("last_applied").and_then(int)?,
            text(s.get("state_digest")?),
        ))
    };
    wait_for(
        "the same state digest everywhere",
        Duration::from_secs(10),
        || {
            let d: Vec<_> = c.addrs.iter().map(digest).collect();
            (d[0].is_some() && d.windows(2).all(|w| w[0] == w[1])).then_some(())
        },
    );
    // Its log file says where its log now starts.
    let name = if away == 0 {
        "raftian".to_owned()
    } else {
        format!("bob{away}")
    };
    let files = std::fs::read_dir(dir.join("logs").join(&name)).unwrap();
    let said = files
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .any(|text| text.lines().any(|l| l.starts_with("snapshot = {")));
    assert!(said, "{name}'s log file has no `snapshot = ` line");
}

/// A leader stopped cleanly (SIGTERM) hands leadership over first: its
/// successor campaigns at its request rather than after an election
/// timeout, and the game goes on there.
#[test]
fn a_leader_stopped_cleanly_hands_over() {
    let dir = temp_dir("cluster-hand-over");
    let (toml, addrs) = cluster_toml(3, false, false);
    let mut c = Cluster::start(&dir, &toml, addrs, &[]);
    let leader = wait_for("a leader", Duration::from_secs(20), || {
        let s = status(&c.addrs[0]).ok()?;
        s.get("leader_id").and_then(int)
    }) as usize;
    call(&c.addrs[leader], "click_wait", vec![Value::Integer(1)]).unwrap();
    let pid = c.children[leader].as_ref().unwrap().id();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let next = wait_for("a new leader", Duration::from_secs(10), || {
        others.iter().copied().find(|i| {
            status(&c.addrs[*i])
                .ok()
                .is_some_and(|s| s.get("mode").map(text).as_deref() == Some("LEADER"))
        })
    });
    assert!(
        c.output(leader).contains("handing leadership over"),
        "{}",
        c.output(leader)
    );
    assert!(
        c.output(next).contains("asked to take over"),
        "{}",
        c.output(next)
    );
    call(&c.addrs[next], "click_wait", vec![Value::Integer(2)]).unwrap();
    c.kill(leader);
}
