//! Run `raftian bench ...` to the end (or kill it after a deadline) and
//! give back its status, stdout and stderr. Output goes to files, so a
//! chatty benchmark never blocks on a full pipe.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub fn run_bench(args: &[&str], deadline: Duration) -> (ExitStatus, String, String) {
    let dir = std::env::temp_dir();
    let tag = format!("{}-{}", std::process::id(), args.join("_").len());
    let (out_path, err_path) = (
        dir.join(format!("raftian-bench-{tag}.out")),
        dir.join(format!("raftian-bench-{tag}.err")),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_raftian"))
        .arg("bench")
        .args(args)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("start raftian bench");
    let until = Instant::now() + deadline;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("raftian bench {args:?} did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &std::path::Path| {
        let s = std::fs::read_to_string(p).unwrap_or_default();
        let _ = std::fs::remove_file(p);
        s
    };
    (status, read(&out_path), read(&err_path))
}
