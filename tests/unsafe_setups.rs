//! Setups that would break Raft's guarantees are refused at start with a
//! clear message, a non-zero exit, and nothing written.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{free_port, temp_dir};

fn node(config: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raftian"))
        .args(["node", "--headless", "--id", "0", "--config"])
        .arg(config)
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run raftian")
}

fn cluster(dir: &Path, static_leader: bool, seeded: bool) -> std::path::PathBuf {
    let mut toml = String::new();
    if static_leader {
        toml.push_str("leader = 0\n");
    }
    toml.push_str(&format!(
        "[[node]]\nid = 0\nname = \"solo\"\naddr = \"127.0.0.1:{}\"\n",
        free_port()
    ));
    if seeded {
        toml.push_str("log = [[1, 0, 9]]\n");
    }
    let path = dir.join(format!("c-{static_leader}-{seeded}.toml"));
    std::fs::write(&path, toml).unwrap();
    path
}

fn refused(out: &Output, says: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started: {err}");
    assert!(err.contains(says), "message does not say '{says}': {err}");
}

#[test]
fn seeded_logs_in_election_mode_are_refused() {
    let dir = temp_dir("unsafe-seeded");
    let data = dir.join("data");
    let out = node(
        &cluster(&dir, false, true),
        &["--data-dir", data.to_str().unwrap()],
    );
    refused(&out, "seeded `log`");
    assert!(!data.exists(), "nothing may be written");
}

#[test]
fn ephemeral_election_needs_the_explicit_opt_in() {
    let dir = temp_dir("unsafe-ephemeral");
    let out = node(&cluster(&dir, false, false), &["--ephemeral"]);
    refused(&out, "--unsafe-ephemeral");
}

#[test]
fn a_data_dir_of_the_other_mode_is_refused() {
    let dir = temp_dir("unsafe-mode");
    let data = dir.join("data");
    let data_arg = ["--data-dir", data.to_str().unwrap()];
    // Written in static mode by a node that starts and is stopped at once.
    let mut child = Command::new(env!("CARGO_BIN_EXE_raftian"))
        .args(["node", "--headless", "--id", "0", "--config"])
        .arg(cluster(&dir, true, false))
        .args(data_arg)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for("the meta file", std::time::Duration::from_secs(20), || {
        data.join("node.meta").exists().then_some(())
    });
    let _ = child.kill();
    let _ = child.wait();
    let meta = std::fs::read_to_string(data.join("node.meta")).unwrap();
    let out = node(&cluster(&dir, false, false), &data_arg);
    refused(&out, "written in static mode");
    assert_eq!(
        std::fs::read_to_string(data.join("node.meta")).unwrap(),
        meta,
        "the refused start changed the data dir"
    );
}
