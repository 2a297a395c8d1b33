//! `raftian bench clicks --intake local`: the nodes take the clicks
//! themselves (`bench_load`), on the generator's schedule; every click of
//! a step is applied on every node.

use std::time::Duration;

#[path = "support/bench.rs"]
mod bench;
use bench::run_bench;

#[test]
fn local_intake_applies_every_click_everywhere() {
    let args = "clicks --intake local --modes static --storage mem --latency-rate 40 \
                --latency-secs 0.5 --rates 400 --rate-secs 0.5 --idle-secs 0.3";
    let args: Vec<&str> = args.split_whitespace().collect();
    let (status, out, err) = run_bench(&args, Duration::from_secs(60));
    assert!(status.success(), "bench failed: {status}\n{err}\n{out}");
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
