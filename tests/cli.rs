//! The command-line tools against real node processes: `raftian status`
//! (table, JSON, --watch, a down node, members learned from status()),
//! `raftian click` (ok, Faults, unreachable, bad input), and `raftian node
//! --listen`.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value as Json;

/// The names `cluster_toml` gives nodes 0, 1 and 2.
const NAMES: [&str; 3] = ["raftian", "bob1", "bob2"];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `raftian status --config CONFIG --json`, parsed.
fn status_json(config: &str) -> Json {
    let out = run_raftian(&["status", "--config", config, "--json"]);
    assert!(out.status.success(), "status --json failed: {out:?}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", text(&out.stdout)))
}

fn member<'a>(doc: &'a Json, name: &str) -> &'a Json {
    doc["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no member {name} in {doc}"))
}

/// `raftian click ...`: (success, stdout, stderr).
fn click(args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["click"];
    all.extend_from_slice(args);
    let out = run_raftian(&all);
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// A failed command's stderr: exactly one line, `raftian: ...`.
fn one_error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "want one error line, got {stderr:?}");
    assert!(lines[0].starts_with("raftian: "), "{stderr:?}");
    lines[0]
}

#[test]
fn status_and_click_against_a_running_cluster() {
    let dir = temp_dir("cli");
    let (toml, addrs) = cluster_toml(3, false, false);
    let mut c = Cluster::start(&dir, &toml, addrs, &[]);
    let config = c.config.to_str().unwrap().to_owned();

    // A leader, and every member up, as `status --json` sees it.
    let doc = wait_for("a leader in status --json", Duration::from_secs(20), || {
        let d = status_json(&config);
        (!d["leader"].is_null() && d["members"].as_array()?.iter().all(|m| m["up"] == true))
            .then_some(d)
    });
    assert_eq!(doc["members"].as_array().unwrap().len(), 3);
    let leader = doc["leader"]["name"].as_str().unwrap().to_owned();
    let roles: Vec<&str> = doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "LEADER").count(),
        1,
        "{roles:?}"
    );
    // Players are the ids the nodes report (1-4 today, more to come).
    let players: Vec<u64> = doc["players"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Json::as_u64)
        .collect();
    assert!(players.starts_with(&[1, 2, 3, 4]), "{players:?}");
    let hp_keys: Vec<u64> = doc["members"][0]["hp"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    assert_eq!(hp_keys.len(), players.len(), "{doc}");
    let follower = (0..3)
        .find(|&i| member(&doc, NAMES[i])["role"] == "FOLLOWER")
        .unwrap();

    // Clicks: on a follower (forwarded), and one that waits until applied.
    let (ok, out, err) = click(&["--addr", &c.addrs[follower], "3"]);
    assert!(ok, "{err}");
    assert_eq!(out, "true\n");
    let (ok, out, err) = click(&["--addr", &c.addrs[0], "--wait", "3"]);
    assert!(ok && out == "true\n", "{out} {err}");
    // Every member shows it, caught up with the leader.
    wait_for(
        "both clicks applied everywhere, lag 0",
        Duration::from_secs(20),
        || {
            let d = status_json(&config);
            d["members"]
                .as_array()?
                .iter()
                .all(|m| {
                    m["hp"]["3"] == 40
                        && m["lag"] == 0
                        && m["last_applied"] == m["commit_index"]
                        && m["leader_id"] == d["leader"]["id"]
                })
                .then_some(())
        },
    );

    // Faults: one line, non-zero exit.
    let (ok, _, err) = click(&["--addr", &c.addrs[1], "99"]);
    assert!(!ok);
    assert!(
        one_error_line(&err).starts_with("raftian: unknown player 99"),
        "{err}"
    );
    for _ in 0..4 {
        let (ok, _, err) = click(&["--addr", &c.addrs[2], "--wait", "1"]);
        assert!(ok, "{err}");
    }
    let (ok, _, err) = click(&["--addr", &c.addrs[1], "--wait", "1"]);
    assert!(!ok);
    assert_eq!(one_error_line(&err), "raftian: Player 1 already dead");
    let (ok, _, err) = click(&["--addr", &c.addrs[0], "new"]);
    assert!(!ok);
    assert!(
        one_error_line(&err).contains("the round is still on"),
        "{err}"
    );
    // Nobody there, a bad address, a bad player: clear errors.
    let nobody = format!("127.0.0.1:{}", free_port());
    let (ok, _, err) = click(&["--addr", &nobody, "2"]);
    assert!(!ok);
    assert_eq!(
        one_error_line(&err),
        format!("raftian: cannot reach {nobody}: connection refused")
    );
    let (ok, _, err) = click(&["--addr", "nowhere", "2"]);
    assert!(!ok && one_error_line(&err).contains("HOST:PORT"), "{err}");
    let (ok, _, err) = click(&["--addr", &c.addrs[0], "red"]);
    assert!(
        !ok && one_error_line(&err).contains("'red' is not a player"),
        "{err}"
    );

    // A cluster file naming only two nodes: the third is learned from
    // their status().members.
    let partial_toml: String = toml
        .split("[[node]]")
        .take(3)
        .collect::<Vec<_>>()
        .join("[[node]]");
    let partial = dir.join("partial.toml");
    std::fs::write(&partial, partial_toml).unwrap();
    let doc = status_json(partial.to_str().unwrap());
    assert_eq!(doc["members"].as_array().unwrap().len(), 3, "{doc}");
    assert_eq!(member(&doc, "bob2")["source"], "members");
    assert_eq!(member(&doc, "bob2")["up"], true);
    assert_eq!(member(&doc, "bob1")["source"], "config");

    // --watch without a terminal: one frame after another, --count of them.
    let out = run_raftian(&[
        "status",
        "--config",
        &config,
        "--watch",
        "--interval",
        "0.1",
        "--count",
        "3",
    ]);
    assert!(out.status.success(), "{out:?}");
    let frames = text(&out.stdout).matches("3 members, 3 up; leader").count();
    assert_eq!(frames, 3, "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("click --addr"), "the hint");

    // --watch on a terminal (script gives it one): the alternate screen
    // is left at the end and the last table stays on the normal screen.
    watch_on_a_terminal(&config);

    // --watch stops on Ctrl+C (SIGINT) with status 0.
    let mut w = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_raftian"))
            .args([
                "status",
                "--config",
                &config,
                "--watch",
                "--interval",
                "0.1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = w.0.stdout.take().unwrap();
    let mut first = [0u8; 64];
    let n = stdout.read(&mut first).unwrap();
    assert!(n > 0, "no frame before the interrupt");
    let pid = w.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = w
        .wait_exit(Duration::from_secs(5))
        .expect("--watch ignored Ctrl+C");
    assert!(status.success(), "{status:?}");

    // A node down: a row saying so, and no error exit.
    let down = NAMES.into_iter().position(|n| n != leader).unwrap();
    let down_name = NAMES[down];
    c.kill(down);
    let out = run_raftian(&["status", "--config", &config]);
    assert!(out.status.success(), "{out:?}");
    let table = text(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.contains(down_name) && l.contains(&c.addrs[down]) && !l.contains("down:"))
        .unwrap_or_else(|| panic!("no row for {down_name}:\n{table}"));
    assert!(row.contains("down"), "{row}");
    assert!(
        table.contains(&format!(
            "{down_name} ({}): down: connection refused",
            c.addrs[down]
        )),
        "{table}"
    );
    assert!(table.contains("3 members, 2 up"), "{table}");
    for name in NAMES {
        assert!(table.contains(name), "{table}");
    }
    let doc = status_json(&config);
    assert_eq!(member(&doc, down_name)["up"], false);
    assert!(member(&doc, down_name)["lag"].is_null());
    assert_eq!(member(&doc, &leader)["up"], true);

    // Bad input: a missing cluster file is an error.
    let out = run_raftian(&["status", "--config", "/nonexistent/cluster.toml"]);
    assert!(!out.status.success());
    assert!(one_error_line(&text(&out.stderr)).contains("cannot read cluster file"));
}

fn watch_on_a_terminal(config: &str) {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED the terminal part of --watch: no `script` (util-linux) here");
        return;
    }
    let cmd = format!(
        "'{}' status --config '{config}' --watch --interval 0.1 --count 2",
        env!("CARGO_BIN_EXE_raftian")
    );
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown = text(&out.stdout);
    let mut leave = String::new();
    crossterm::Command::write_ansi(&crossterm::terminal::LeaveAlternateScreen, &mut leave).unwrap();
    let mut enter = String::new();
    crossterm::Command::write_ansi(&crossterm::terminal::EnterAlternateScreen, &mut enter).unwrap();
    let (on_alt, after) = shown
        .rsplit_once(&leave)
        .unwrap_or_else(|| panic!("the alternate screen was not left: {shown:?}"));
    assert!(on_alt.contains(&enter), "{shown:?}");
    assert!(
        on_alt.contains("3 members, 3 up"),
        "no frame drawn: {on_alt:?}"
    );
    assert!(
        after.contains("3 members, 3 up"),
        "no last table: {after:?}"
    );
}

#[test]
fn node_listen_binds_apart_from_the_cluster_addr() {
    let dir = temp_dir("listen");
    // An address that is not this machine's (TEST-NET-1): only --listen can
    // serve this node here. It has no peers, so nothing is sent there.
    let port = free_port();
    let config = dir.join("cluster.toml");
    std::fs::write(
        &config,
        format!("leader = 0\n[[node]]\nid = 0\nname = \"far\"\naddr = \"192.0.2.1:{port}\"\n"),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "node",
            "--config",
            config,
            "--id",
            "0",
            "--headless",
            "--ephemeral",
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };

    let out = run_raftian(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 192.0.2.1:{port}")) && err.contains("--listen"),
        "{err}"
    );

    let listen = format!("127.0.0.1:{}", free_port());
    let start = Instant::now();
    let _node = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_raftian"))
            .args(args(&["--listen", &listen]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let s = wait_for(
        "the node on its --listen address",
        Duration::from_secs(20),
        || status(&listen).ok(),
    );
    assert_eq!(s.get("name").map(common::text).as_deref(), Some("far"));
    // Its members still say where the others reach it.
    let members = format!("{:?}", s.get("members"));
    assert!(members.contains(&format!("192.0.2.1:{port}")), "{members}");
    let (ok, out, err) = click(&["--addr", &listen, "--wait", "2"]);
    assert!(ok && out == "true\n", "{out} {err}");
    eprintln!("listen test took {:?}", start.elapsed());

    let out = run_raftian(&[
        "node", "--config", config, "--id", "0", "--listen", "nowhere",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--listen"),
        "{}",
        text(&out.stderr)
    );
}
