//! Play on a LAN, for real: three nodes in election mode, each in its own
//! network namespace (a "machine" with one veth cable to a bridge in a hub
//! namespace, addresses 10.77.0.1-3), some serving on `--listen 0.0.0.0:8000`.
//! `raftian status` and `raftian click` run in the hub (10.77.0.254), as from
//! a fourth machine. Clicks on every node replicate; a node whose cable is
//! pulled shows as down while the other two go on, and catches up when it is
//! plugged back.
//!
//! Needs root and `ip` (iproute2; scripts/test.sh installs it). Without them
//! the test is skipped with a message saying why. Namespaces and processes
//! are removed on every exit, a panic included (Drop guards), and stale
//! namespaces of killed earlier runs are removed at the start.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value as Json;

const PREFIX: &str = "rlan";
const PORT: u16 = 8000;
const NODES: usize = 3;
const DEADLINE: Duration = Duration::from_secs(30);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Network namespaces made by this test; all deleted on drop.
struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    fn add(&mut self, name: &str) -> Result<(), String> {
        ip(&["netns", "add", name])?;
        self.names.push(name.to_owned());
        ip(&["-n", name, "link", "set", "lo", "up"])
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            if let Err(e) = ip(&["netns", "del", n]) {
                eprintln!("lan_netns: cleanup: {e}");
            }
        }
    }
}

/// Namespaces `rlan<pid>...` left by an earlier run that was killed.
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Why this test cannot run here, if it cannot.
fn cannot_run() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if uid != 0 {
        return Some(format!(
            "not root (euid {uid}): network namespaces need root"
        ));
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("no `ip` command: apt-get install iproute2".into());
    }
    let probe = format!("{PREFIX}{}probe", std::process::id());
    let mut ns = Namespaces { names: Vec::new() };
    let r = ns
        .add(&probe)
        .and_then(|()| ip(&["-n", &probe, "link", "add", "b0", "type", "bridge"]))
        .and_then(|()| {
            ip(&[
                "-n", &probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
            ])
        });
    r.err()
        .map(|e| format!("cannot make namespaces, bridges and veth pairs here: {e}"))
}

/// The hub and one namespace per node, wired to the hub's bridge.
fn build_lan(ns: &mut Namespaces, hub: &str, node_ns: &[String]) -> Result<(), String> {
    ns.add(hub)?;
    ip(&["-n", hub, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", hub, "addr", "add", "10.77.0.254/24", "dev", "br0"])?;
    ip(&["-n", hub, "link", "set", "br0", "up"])?;
    for (i, n) in node_ns.iter().enumerate() {
        ns.add(n)?;
        let cable = format!("v{i}");
        ip(&[
            "-n", hub, "link", "add", &cable, "type", "veth", "peer", "name", "eth0", "netns", n,
        ])?;
        ip(&["-n", hub, "link", "set", &cable, "master", "br0", "up"])?;
        ip(&[
            "-n",
            n,
            "addr",
            "add",
            &format!("10.77.0.{}/24", i + 1),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", n, "link", "set", "eth0", "up"])?;
    }
    Ok(())
}

/// Prints every node's output if the test fails.
struct ReportOnPanic {
    outputs: Vec<PathBuf>,
}

impl Drop for ReportOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for p in &self.outputs {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            eprintln!("---- tail of {}:", p.display());
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// Run the raftian binary inside namespace `ns`.
fn raftian_in(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_raftian")])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run raftian in a namespace")
}

/// `raftian status --json` from the hub.
fn status_json(hub: &str, config: &str) -> Json {
    let out = raftian_in(hub, &["status", "--config", config, "--json"]);
    assert!(out.status.success(), "status --json failed: {out:?}");
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

/// `raftian click` from namespace `ns`: Ok(answer) or Err(stderr).
fn click_in(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["click"];
    all.extend_from_slice(args);
    let out = raftian_in(ns, &all);
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_owned();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

fn members(doc: &Json) -> Vec<Json> {
    doc["members"].as_array().cloned().unwrap_or_default()
}

/// Every member in `names` is up with these HP (of the players `hp`
/// names), caught up with the leader.
fn settled(doc: &Json, names: &[&str], hp: &Json) -> bool {
    let ms = members(doc);
    let hp = hp.as_object().expect("hp by player");
    !doc["leader"].is_null()
        && names.iter().all(|name| {
            ms.iter().any(|m| {
                m["name"] == *name
                    && m["up"] == true
                    && hp.iter().all(|(p, h)| m["hp"][p] == *h)
                    && m["lag"] == 0
                    && m["last_applied"] == m["commit_index"]
            })
        })
}

#[test]
fn three_nodes_in_their_own_network_namespaces() {
    if let Some(why) = cannot_run() {
        // Straight to stderr: the test harness would hide an eprintln! of
        // a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED lan_netns::three_nodes_in_their_own_network_namespaces: {why}"
        );
        return;
    }
    remove_stale_namespaces();
    let tag = format!("{PREFIX}{}", std::process::id());
    let hub = format!("{tag}h");
    let node_ns: Vec<String> = (0..NODES).map(|i| format!("{tag}n{i}")).collect();
    let mut ns = Namespaces { names: Vec::new() };
    build_lan(&mut ns, &hub, &node_ns).unwrap_or_else(|e| panic!("building the LAN: {e}"));

    let dir = temp_dir("lan");
    let mut toml = String::from("# three machines on 10.77.0.0/24, election mode\n");
    let names = ["alice", "bob", "carol"];
    for (i, name) in names.iter().enumerate() {
        toml.push_str(&format!(
            "\n[[node]]\nid = {i}\nname = \"{name}\"\naddr = \"10.77.0.{}:{PORT}\"\n",
            i + 1
        ));
    }
    let config = dir.join("lan.toml");
    std::fs::write(&config, toml).unwrap();
    let config = config.to_str().unwrap().to_owned();

    // alice and carol serve on every interface of their machine
    // (--listen 0.0.0.0:8000); bob on the cluster file's addr only.
    let listen = [Some("0.0.0.0:8000"), None, Some("0.0.0.0:8000")];
    let mut report = ReportOnPanic {
        outputs: Vec::new(),
    };
    let mut nodes: Vec<ChildGuard> = Vec::new();
    for i in 0..NODES {
        let out_path = dir.join(format!("{}.out", names[i]));
        let out = std::fs::File::create(&out_path).unwrap();
        report.outputs.push(out_path);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &node_ns[i], env!("CARGO_BIN_EXE_raftian")])
            .args([
                "node",
                "--config",
                &config,
                "--id",
                &i.to_string(),
                "--headless",
            ])
            .arg("--data-dir")
            .arg(dir.join(format!("data/{}", names[i])))
            .arg("--log-dir")
            .arg(dir.join("logs"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if let Some(l) = listen[i] {
            cmd.args(["--listen", l]);
        }
        nodes.push(ChildGuard(cmd.spawn().expect("start a node")));
    }

    let full = serde_json::json!({"1": 100, "2": 100, "3": 100, "4": 100});
    wait_for("a leader, every node up", DEADLINE, || {
        settled(&status_json(&hub, &config), &names, &full).then_some(())
    });

    // Clicks from the hub on every machine's address: they replicate.
    for (addr, player) in [("10.77.0.2", "3"), ("10.77.0.3", "3"), ("10.77.0.1", "1")] {
        let answer = click_in(&hub, &["--addr", &format!("{addr}:{PORT}"), player]);
        assert_eq!(answer.as_deref(), Ok("true"), "click {player} on {addr}");
    }
    let hp = serde_json::json!({"1": 70, "2": 100, "3": 40, "4": 100});
    wait_for("the hub's clicks applied on every node", DEADLINE, || {
        settled(&status_json(&hub, &config), &names, &hp).then_some(())
    });

    // --listen 0.0.0.0: alice answers on her own loopback too; bob, bound
    // to 10.77.0.2 only, does not.
    let on_loopback = format!("127.0.0.1:{PORT}");
    assert_eq!(
        click_in(&node_ns[0], &["--addr", &on_loopback, "--wait", "2"]).as_deref(),
        Ok("true")
    );
    let refused = click_in(&node_ns[1], &["--addr", &on_loopback, "2"]).unwrap_err();
    assert!(refused.contains("connection refused"), "{refused}");

    // Carol's cable is pulled: she is a down row (no error exit), and
    // alice and bob still commit clicks.
    ip(&["-n", &hub, "link", "set", "v2", "down"]).unwrap();
    let hp = serde_json::json!({"1": 70, "2": 70, "3": 10, "4": 100});
    let answer = click_in(&hub, &["--addr", &format!("10.77.0.2:{PORT}"), "3"]);
    assert_eq!(answer.as_deref(), Ok("true"));
    let doc = wait_for("carol down, alice and bob on", DEADLINE, || {
        let d = status_json(&hub, &config);
        let carol_down = members(&d)
            .iter()
            .any(|m| m["name"] == "carol" && m["up"] == false);
        (carol_down && settled(&d, &["alice", "bob"], &hp)).then_some(d)
    });
    let table = raftian_in(&hub, &["status", "--config", &config]);
    assert!(table.status.success(), "{table:?}");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("3 members, 2 up"), "{table}");
    assert!(table.contains("carol (10.77.0.3:8000): down"), "{table}");
    eprintln!("{}", doc["leader"]);

    // Plugged back: she catches up.
    ip(&["-n", &hub, "link", "set", "v2", "up"]).unwrap();
    wait_for("carol caught up", DEADLINE, || {
        settled(&status_json(&hub, &config), &names, &hp).then_some(())
    });

    drop(nodes);
    drop(report);
    drop(ns);
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&tag),
        "namespaces left behind"
    );
}
