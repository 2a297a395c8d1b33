//! Traces: percentiles and the end-to-end latency of a run.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

pub(super) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[derive(Clone, Debug, Default)]
pub(super) struct RunStats {
    pub(super) clicks: usize,
    pub(super) queued: usize,
    /// Applied by all 5 nodes.
    pub(super) applied_all: usize,
    /// A node applied the same click twice.
    pub(super) duplicates: usize,
    /// End-to-end latency, ms, sorted.
    pub(super) lat: Vec<f64>,
    pub(super) lat_via_leader: Vec<f64>,
    pub(super) lat_via_follower: Vec<f64>,
    /// Queue time minus scheduled send time, ms, sorted.
    pub(super) intake_lag: Vec<f64>,
    /// Clicks/s between the first and the last `q` line.
    pub(super) achieved: f64,
}

pub(super) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub(super) fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

/// Read the 5 traces. Click `k` has tag `tag0 + k`, was received by node
/// `k % 5` and scheduled at `t0_unix + k / rate`.
pub(super) fn analyse(
    traces: &[PathBuf],
    tag0: i32,
    n: usize,
    leader: usize,
    t0_unix: u64,
    rate: f64,
) -> Result<RunStats, String> {
    let mut q: Vec<Option<u64>> = vec![None; n];
    let mut applied_by: Vec<u8> = vec![0; n];
    let mut a_max: Vec<u64> = vec![0; n];
    let mut dups = 0;
    for (node, path) in traces.iter().enumerate() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read trace {}: {e}", path.display()))?;
        for line in text.lines() {
            let mut f = line.split_ascii_whitespace();
            let (Some(kind), Some(tag), Some(t)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let (Ok(tag), Ok(t)) = (tag.parse::<i64>(), t.parse::<u64>()) else {
                continue;
            };
            let k = tag - i64::from(tag0);
            if k < 0 || k >= n as i64 {
                continue;
            }
            let k = k as usize;
            match kind {
                "q" => q[k] = Some(t),
                "a" => {
                    let bit = 1u8 << node;
                    if applied_by[k] & bit != 0 {
                        dups += 1;
                    }
                    applied_by[k] |= bit;
                    a_max[k] = a_max[k].max(t);
                }
                _ => {}
            }
        }
    }
    let all = (1u8 << traces.len()) - 1;
    let mut s = RunStats {
        clicks: n,
        duplicates: dups,
        ..RunStats::default()
    };
    let (mut qmin, mut qmax) = (u64::MAX, 0);
    for k in 0..n {
        let Some(qt) = q[k] else { continue };
        s.queued += 1;
        qmin = qmin.min(qt);
        qmax = qmax.max(qt);
        let sched = t0_unix + (k as f64 / rate * 1e6) as u64;
        s.intake_lag.push((qt as f64 - sched as f64) / 1000.0);
        if applied_by[k] == all {
            s.applied_all += 1;
            let l = a_max[k].saturating_sub(qt) as f64 / 1000.0;
            s.lat.push(l);
            if k % traces.len() == leader {
                s.lat_via_leader.push(l);
            } else {
                s.lat_via_follower.push(l);
            }
        }
    }
    if s.queued > 1 && qmax > qmin {
        s.achieved = (s.queued - 1) as f64 / ((qmax - qmin) as f64 / 1e6);
    }
    for v in [
        &mut s.lat,
        &mut s.lat_via_leader,
        &mut s.lat_via_follower,
        &mut s.intake_lag,
    ] {
        v.sort_by(f64::total_cmp);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{NODES, RUN_TAG};

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn traces_give_end_to_end_latency_on_all_nodes() {
        let dir = std::env::temp_dir().join(format!("raftian-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t0 = 1_000_000_000u64;
        // Click 0 queued on n0 at t0, applied by all at t0 + 1..5 ms;
        // click 1 queued on n1, applied by only 4 nodes (and twice on n2).
        let mut paths = Vec::new();
        for node in 0..NODES as u64 {
            let mut s = String::new();
            if node == 0 {
                s += &format!("q {RUN_TAG} {t0}\n");
            }
            if node == 1 {
                s += &format!("q {} {}\n", RUN_TAG + 1, t0 + 10_000);
            }
            s += &format!("a {RUN_TAG} {}\na 0 {t0}\n", t0 + (node + 1) * 1000);
            if node != 4 {
                s += &format!("a {} {}\n", RUN_TAG + 1, t0 + 20_000);
            }
            if node == 2 {
                s += &format!("a {} {}\ngarbage\n", RUN_TAG + 1, t0 + 20_000);
            }
            let p = dir.join(format!("n{node}.trace"));
            std::fs::write(&p, s).unwrap();
            paths.push(p);
        }
        let s = analyse(&paths, RUN_TAG, 2, 0, t0, 100.0).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(s.queued, 2);
        assert_eq!(s.applied_all, 1);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.lat, vec![5.0]);
        assert_eq!(s.lat_via_leader, vec![5.0]);
        assert!(s.lat_via_follower.is_empty());
        assert_eq!(s.intake_lag, vec![0.0, 0.0]);
    }
}
