//! `raftian bench clicks --baseline`: the binary against itself at a tiny
//! rate, interleaved; the report has the ratio tables and every ratio is a
//! finite positive number.

use std::time::Duration;

#[path = "support/bench.rs"]
mod bench;
use bench::run_bench;

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
    let (status, out, err) = run_bench(
        &[
            "clicks",
            "--baseline",
            exe,
            "--modes",
            "static",
            "--storage",
            "mem",
            "--latency-rate",
            "40",
            "--latency-secs",
            "0.5",
            "--rates",
            "80",
            "--rate-secs",
            "0.5",
            "--idle-secs",
            "0.3",
        ],
        Duration::from_secs(60),
    );
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
