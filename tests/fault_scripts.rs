//! Runs the process-level fault scripts (scripts/faults/1_*.sh .. 6_*.sh)
//! against the binary cargo just built, one at a time (each starts five node
//! processes). Each script checks its own outcome (status() polled with
//! deadlines, final log files compared) and kills what it started; this test
//! asserts it exits 0 and prints its whole output when it does not.
//!
//! The scripts read FAULT_NET (netns | sigstop | auto), FAULT_TIMEOUT,
//! FAULT_ELECTION_MS and FAULT_TERM_CHECKS from the environment; see
//! scripts/faults/lib.sh.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One script at a time: five debug-build nodes each already load 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// A script longer than this is stopped (SIGTERM: it cleans up) and fails.
const LIMIT: Duration = Duration::from_secs(300);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Stops the script (SIGTERM, so its EXIT trap kills its nodes) if the test
/// ends early.
struct Script(Option<Child>);

impl Drop for Script {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            if let Ok(None) = child.try_wait() {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                let end = Instant::now() + Duration::from_secs(30);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

fn run(script: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !have("python3") || !have("bash") {
        eprintln!("skipping {script}: needs bash and python3");
        return;
    }
    let path = repo().join("scripts/faults").join(script);
    assert!(path.is_file(), "{} is missing", path.display());
    let bin = env!("CARGO_BIN_EXE_raftian");
    assert!(Path::new(bin).is_file(), "no binary at {bin}");

    let log = std::env::temp_dir().join(format!(
        "raftian-fault-test-{}-{script}.out",
        std::process::id()
    ));
    let out = std::fs::File::create(&log).expect("create the output file");
    let err = out.try_clone().expect("clone the output file");
    let started = Instant::now();
    let child = Command::new("bash")
        .arg(&path)
        .args(["--bin", bin])
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start the script");
    let mut guard = Script(Some(child));
    let status = loop {
        let child = guard.0.as_mut().expect("child");
        if let Some(s) = child.try_wait().expect("wait for the script") {
            break Some(s);
        }
        if started.elapsed() > LIMIT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(guard); // stops it if it overran
    let mut text = String::new();
    let _ = std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut text));
    let _ = std::fs::remove_file(&log);
    let took = started.elapsed();
    match status {
        Some(s) if s.success() => {
            println!("{script} passed in {took:.1?}");
        }
        Some(s) => panic!("{script} failed ({s}) after {took:.1?}; its output:\n{text}"),
        None => panic!("{script} ran over {LIMIT:?} and was stopped; its output:\n{text}"),
    }
}

#[test]
fn fault_1_follower_down() {
    run("1_follower_down.sh");
}

#[test]
fn fault_2_two_followers_down() {
    run("2_two_followers_down.sh");
}

#[test]
fn fault_3_leader_down() {
    run("3_leader_down.sh");
}

#[test]
fn fault_4_leader_transition() {
    run("4_leader_transition.sh");
}

#[test]
fn fault_5_partition_leader_majority() {
    run("5_partition_leader_majority.sh");
}

#[test]
fn fault_6_partition_leader_minority() {
    run("6_partition_leader_minority.sh");
}

/// run_all.sh itself: option errors are reported, not ignored.
#[test]
fn run_all_refuses_unknown_options() {
    if !have("bash") {
        return;
    }
    let out = Command::new("bash")
        .arg(repo().join("scripts/faults/run_all.sh"))
        .arg("--bogus")
        .current_dir(repo())
        .output()
        .expect("run run_all.sh");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option '--bogus'"));
}
