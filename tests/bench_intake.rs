//! `raftian bench clicks --intake local`: the nodes take the clicks
//! themselves (`bench_load`), on the generator's schedule; every click of
//! a step is applied on every node.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn local_intake_applies_every_click_everywhere() {
    let exe = env!("CARGO_BIN_EXE_raftian");
    let out_file = tempfile_path("bench-intake.out");
    let mut child = Command::new(exe)
        .args(["bench", "clicks", "--intake", "local"])
        .args(["--modes", "static", "--storage", "mem"])
        .args(["--latency-rate", "40", "--latency-secs", "0.5"])
        .args(["--rates", "400", "--rate-secs", "0.5", "--idle-secs", "0.3"])
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start raftian bench");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bench clicks --intake local did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::fs::read_to_string(&out_file).unwrap();
    let _ = std::fs::remove_file(&out_file);
    assert!(status.success(), "bench failed: {status}\n{out}");
    assert!(out.contains("each node takes its share itself"), "{out}");
    // The steps table: 20 clicks at 40/s, 200 at 400/s, all applied.
    let row = |rate: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("| static | mem | {rate} |")))
            .unwrap_or_else(|| panic!("no {rate}/s step in:\n{out}"))
            .to_string()
    };
    assert!(row("40").contains("| 20/20 |"), "{}", row("40"));
    assert!(row("400").contains("| 200/200 |"), "{}", row("400"));
}

fn tempfile_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", std::process::id()))
}
