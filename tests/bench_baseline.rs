//! `raftian bench clicks --baseline`: the binary against itself at a tiny
//! rate, interleaved; the report has the ratio tables and every ratio is a
//! finite positive number.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `(…x)` ratios of the markdown rows under `heading`, up to the next
/// heading, row by row.
fn ratio_rows(report: &str, heading: &str) -> Vec<Vec<f64>> {
    let start = report
        .find(heading)
        .unwrap_or_else(|| panic!("no '{heading}' in the report:\n{report}"));
    let rest = &report[start + heading.len()..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    rest[..end]
        .lines()
        .filter(|l| l.starts_with("| static "))
        .map(|l| {
            l.split('|')
                .filter_map(|cell| {
                    let inner = cell.trim().strip_suffix("x)")?;
                    let r = &inner[inner.rfind('(')? + 1..];
                    Some(
                        r.parse::<f64>()
                            .unwrap_or_else(|e| panic!("ratio '{r}' in '{l}': {e}")),
                    )
                })
                .collect()
        })
        .collect()
}

#[test]
fn baseline_prints_finite_ratios_beside_each_row() {
    let exe = env!("CARGO_BIN_EXE_raftian");
    let mut child = Command::new(exe)
        .args(["bench", "clicks", "--baseline", exe])
        .args(["--modes", "static", "--storage", "mem"])
        .args(["--latency-rate", "40", "--latency-secs", "0.5"])
        .args(["--rates", "80", "--rate-secs", "0.5", "--idle-secs", "0.3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
            panic!("bench clicks --baseline did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "bench failed: {status}\n{err}\n{out}");

    // Both binaries appear in the main tables.
    assert!(out.contains("| static new | mem |"), "{out}");
    assert!(out.contains("| static base | mem |"), "{out}");

    // Summary: p50, p99, CPU/click, idle leader, idle followers, max
    // sustained: six ratios on the one configuration's row.
    let summary = ratio_rows(&out, "### new / base");
    assert_eq!(summary.len(), 2, "two comparison rows expected:\n{out}");
    assert_eq!(summary[0].len(), 6, "summary row: {:?}\n{out}", summary[0]);
    // The rate step: p50, p99, CPU/click, node cores.
    assert_eq!(summary[1].len(), 4, "rate row: {:?}\n{out}", summary[1]);
    for r in summary.iter().flatten() {
        assert!(r.is_finite() && *r > 0.0, "ratio {r}\n{out}");
    }
    // The same binary sustains the same tiny rate: max sustained 1.00x.
    assert_eq!(summary[0][5], 1.0, "{out}");
    // Idle CPU comes from schedstat (ns), per role.
    assert!(out.contains("idle CPU leader"), "{out}");
    assert!(out.contains("schedstat"), "{out}");
}
