//! `raftian bench clicks`: latency, sustained throughput, idle CPU and RSS.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cluster::{Cluster, Launch, Status, TempRoot};
use super::load::{GenResult, generate};
use super::stats::{RunStats, analyse, ms, percentile, unix_micros};
use super::sysinfo::{CpuSample, clk_tck, cores, loadavg, machine_cores, machine_ticks, status_kb};
use super::{ClicksArgs, LeaderMode, NODES, RUN_TAG, StorageKind, WARMUP_CLICKS, WARMUP_TAG};

struct Idle {
    cpu: Vec<Option<f64>>,
    /// Cores used by the rest of the machine meanwhile.
    other_cpu: f64,
    rss_kb: Vec<Option<u64>>,
    leader: usize,
}

struct Step {
    rate: u32,
    sent: GenResult,
    stats: RunStats,
    node_cpu: f64,
    bench_cpu: f64,
    /// Cores used by other processes of the machine meanwhile.
    other_cpu: f64,
    /// Which try this is (see `--attempts`).
    attempt: u32,
    /// Largest VmHWM of the nodes at the end of the run.
    peak_rss_kb: Option<u64>,
    sustained: bool,
    note: String,
}

struct ConfigResult {
    mode: LeaderMode,
    storage: StorageKind,
    idle: Idle,
    low: Step,
    hwm_kb: Vec<Option<u64>>,
    steps: Vec<Step>,
}

impl ConfigResult {
    fn max_sustained(&self) -> Option<u32> {
        self.steps
            .iter()
            .take_while(|s| s.sustained)
            .map(|s| s.rate)
            .last()
    }
}

/// Start a cluster, wait for its leader, warm it up (connections, first
/// entries), wait until everything is applied everywhere.
async fn ready_cluster(
    exe: &Launch,
    dir: PathBuf,
    mode: LeaderMode,
    storage: StorageKind,
    conns: usize,
    traces: &Path,
    tick_ms: Option<u64>,
) -> Result<(Cluster, usize, Status), String> {
    let trace = traces.join(dir.file_name().unwrap_or_default());
    let mut cl = Cluster::start(exe, dir, mode, storage, Some(trace), tick_ms)?;
    let (_, st) = cl.wait_settled(0, Duration::from_secs(20)).await?;
    let start = Instant::now() + Duration::from_millis(20);
    let g = generate(&cl.addrs(), conns, 200.0, WARMUP_CLICKS, WARMUP_TAG, start).await?;
    if g.faults > 0 {
        return Err(format!("{} warm-up clicks answered a fault", g.faults));
    }
    let (leader, st) = cl
        .wait_settled(
            st.total_len() + WARMUP_CLICKS as u64,
            Duration::from_secs(20),
        )
        .await?;
    Ok((cl, leader, st))
}

/// One measured run at `rate` on a ready cluster; stops the cluster.
#[allow(clippy::too_many_arguments)]
async fn measure(
    cl: &mut Cluster,
    leader: usize,
    base: &Status,
    rate: u32,
    secs: f64,
    conns: usize,
    settle: Duration,
    tck: f64,
) -> Result<(Step, Vec<Option<u64>>), String> {
    let n = ((f64::from(rate) * secs).round() as usize).max(1);
    let pids: Vec<Option<u32>> = (0..NODES).map(|i| cl.pid(i)).collect();
    let me = [Some(std::process::id())];
    let lead = Duration::from_millis(50);
    let start = Instant::now() + lead;
    let t0_unix = unix_micros() + lead.as_micros() as u64;
    let cpu0 = CpuSample::take(&pids);
    let me0 = CpuSample::take(&me);
    let sys0 = machine_ticks();
    let sent = generate(&cl.addrs(), conns, f64::from(rate), n, RUN_TAG, start).await?;
    let node_cpu: f64 = cpu0.percent_since(&pids, tck).iter().flatten().sum::<f64>() / 100.0;
    let bench_cpu = me0.percent_since(&me, tck)[0].unwrap_or(0.0) / 100.0;
    let other_cpu = (machine_cores(sys0, cores()) - node_cpu - bench_cpu).max(0.0);
    let mut note = String::new();
    if let Err(e) = cl.wait_settled(base.total_len() + n as u64, settle).await {
        note = e;
    }
    let hwm: Vec<Option<u64>> = pids
        .iter()
        .map(|p| p.and_then(|p| status_kb(p, "VmHWM")))
        .collect();
    cl.terminate_all();
    let traces: Vec<PathBuf> = (0..NODES).filter_map(|i| cl.trace_path(i)).collect();
    let stats = analyse(&traces, RUN_TAG, n, leader, t0_unix, f64::from(rate))?;
    Ok((
        Step {
            rate,
            sent,
            stats,
            node_cpu,
            bench_cpu,
            other_cpu,
            attempt: 1,
            peak_rss_kb: None,
            sustained: false,
            note,
        },
        hwm,
    ))
}

fn judge(step: &mut Step, limit_ms: f64) {
    let s = &step.stats;
    let p99 = percentile(&s.lat, 99.0);
    let mut why = Vec::new();
    if step.sent.faults > 0 {
        why.push(format!("{} faults", step.sent.faults));
    }
    if s.applied_all < s.clicks {
        why.push(format!(
            "{} of {} not applied everywhere",
            s.clicks - s.applied_all,
            s.clicks
        ));
    }
    if p99.is_none_or(|p| p >= limit_ms) {
        why.push(format!("p99 {} ms", ms(p99)));
    }
    if s.achieved < 0.95 * f64::from(step.rate) {
        why.push(format!("intake only {:.0}/s", s.achieved));
    }
    if s.duplicates > 0 {
        why.push(format!("{} duplicates", s.duplicates));
    }
    step.sustained = why.is_empty();
    if !why.is_empty() {
        if !step.note.is_empty() {
            why.push(step.note.clone());
        }
        step.note = why.join("; ");
    }
}

pub(super) async fn clicks(
    a: &ClicksArgs,
    exe: &Launch,
    root: &TempRoot,
) -> Result<String, String> {
    let tck = clk_tck();
    let load = loadavg();
    let mut results = Vec::new();
    let mut run_no = 0;
    for &mode in &a.modes {
        for &storage in &a.storage {
            let label = format!("{}/{}", mode.name(), storage.name());
            let mut dir = || {
                run_no += 1;
                root.path
                    .join(format!("{run_no:02}-{}-{}", mode.name(), storage.name()))
            };
            // Idle, then the low-rate latency run.
            let (mut cl, leader, st) =
                ready_cluster(exe, dir(), mode, storage, a.conns, &root.traces, a.tick_ms).await?;
            let pids: Vec<Option<u32>> = (0..NODES).map(|i| cl.pid(i)).collect();
            tokio::time::sleep(Duration::from_millis(500)).await;
            let s0 = CpuSample::take(&pids);
            let sys0 = machine_ticks();
            tokio::time::sleep(Duration::from_secs_f64(a.idle_secs)).await;
            let cpu = s0.percent_since(&pids, tck);
            let mine = cpu.iter().flatten().sum::<f64>() / 100.0;
            let idle = Idle {
                other_cpu: (machine_cores(sys0, cores()) - mine).max(0.0),
                cpu,
                rss_kb: pids
                    .iter()
                    .map(|p| p.and_then(|p| status_kb(p, "VmRSS")))
                    .collect(),
                leader,
            };
            eprintln!(
                "bench {label}: idle CPU {} % (rest of the machine {:.2} cores), RSS {} MB",
                idle.cpu
                    .iter()
                    .map(|c| ms(*c))
                    .collect::<Vec<_>>()
                    .join(" "),
                idle.other_cpu,
                idle.rss_kb
                    .iter()
                    .map(|r| mb(*r))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let (mut low, hwm_kb) = measure(
                &mut cl,
                leader,
                &st,
                a.latency_rate,
                a.latency_secs,
                a.conns,
                Duration::from_secs(10),
                tck,
            )
            .await?;
            drop(cl);
            judge(&mut low, a.p99_limit_ms);
            eprintln!(
                "bench {label}: {}/s p50 {} ms p99 {} ms ({} of {} applied everywhere)",
                a.latency_rate,
                ms(percentile(&low.stats.lat, 50.0)),
                ms(percentile(&low.stats.lat, 99.0)),
                low.stats.applied_all,
                low.stats.clicks
            );
            // Throughput search.
            let mut steps = Vec::new();
            for &rate in &a.rates {
                for attempt in 1..=a.attempts {
                    let (mut cl, leader, st) =
                        ready_cluster(exe, dir(), mode, storage, a.conns, &root.traces, a.tick_ms)
                            .await?;
                    let (mut step, step_hwm) = measure(
                        &mut cl,
                        leader,
                        &st,
                        rate,
                        a.rate_secs,
                        a.conns,
                        Duration::from_secs(10),
                        tck,
                    )
                    .await?;
                    drop(cl);
                    judge(&mut step, a.p99_limit_ms);
                    step.attempt = attempt;
                    step.peak_rss_kb = step_hwm.iter().flatten().max().copied();
                    eprintln!(
                        "bench {label}: {rate}/s (try {attempt}) -> intake {:.0}/s, p50 {} ms, p99 {} ms, nodes {:.2} cores, bench {:.2} cores, others {:.2} cores: {}",
                        step.stats.achieved,
                        ms(percentile(&step.stats.lat, 50.0)),
                        ms(percentile(&step.stats.lat, 99.0)),
                        step.node_cpu,
                        step.bench_cpu,
                        step.other_cpu,
                        if step.sustained {
                            "sustained".to_string()
                        } else {
                            format!("NOT sustained ({})", step.note)
                        }
                    );
                    let ok = step.sustained;
                    let last = attempt == a.attempts;
                    if ok || last {
                        steps.push(step);
                    }
                    if ok {
                        break;
                    }
                }
                if steps.last().is_none_or(|s| !s.sustained) {
                    break;
                }
            }
            results.push(ConfigResult {
                mode,
                storage,
                idle,
                low,
                hwm_kb,
                steps,
            });
        }
    }
    Ok(clicks_report(a, &results, &load))
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn clicks_report(a: &ClicksArgs, results: &[ConfigResult], load: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## raftian bench clicks\n\n5 node processes on loopback ({} cores, load average {load} at the start), \
         clicks round-robin over all 5 nodes; latency = queued on the receiving node -> applied on every node.\n",
        cores()
    );
    if let Some(t) = a.tick_ms {
        let _ = writeln!(o, "Cluster file: `tick_ms = {t}`.\n");
    }
    let _ = writeln!(
        o,
        "| mode | storage | p50 @{r}/s | p99 @{r}/s | p50 via leader | p50 via follower | max sustained (p99 < {lim} ms) | idle CPU/node (max) | idle RSS/node (max) | peak RSS @{r}/s | peak RSS at max sustained |",
        r = a.latency_rate,
        lim = a.p99_limit_ms
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let low = &r.low.stats;
        let max_cpu = r
            .idle
            .cpu
            .iter()
            .flatten()
            .copied()
            .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))));
        let max_rss = r.idle.rss_kb.iter().flatten().max().copied();
        let max_hwm = r.hwm_kb.iter().flatten().max().copied();
        let sustained = match r.max_sustained() {
            Some(x) => {
                let last = r.steps.last().map(|s| s.rate);
                if r.steps.iter().all(|s| s.sustained) {
                    format!(">= {x}/s (highest tried)")
                } else {
                    format!("{x}/s (not {}/s)", last.unwrap_or(0))
                }
            }
            None => "below the lowest rate tried".into(),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} ms | {} ms | {} ms | {} ms | {} | {} % | {} MB | {} MB | {} MB |",
            r.mode.name(),
            r.storage.name(),
            ms(percentile(&low.lat, 50.0)),
            ms(percentile(&low.lat, 99.0)),
            ms(percentile(&low.lat_via_leader, 50.0)),
            ms(percentile(&low.lat_via_follower, 50.0)),
            sustained,
            ms(max_cpu),
            mb(max_rss),
            mb(max_hwm),
            mb(r.steps
                .iter()
                .rfind(|s| s.sustained)
                .and_then(|s| s.peak_rss_kb)),
        );
    }
    let _ = writeln!(o, "\n### Throughput steps ({} s each)\n", a.rate_secs);
    let _ = writeln!(
        o,
        "| mode | storage | offered /s | intake /s | applied everywhere | p50 ms | p99 ms | max ms | intake lag p99 ms | CPU cores: nodes / generator / other processes | result |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        for s in std::iter::once(&r.low).chain(&r.steps) {
            let st = &s.stats;
            let _ = writeln!(
                o,
                "| {} | {} | {} | {:.0} | {}/{} | {} | {} | {} | {} | {:.2} / {:.2} / {:.2} | {} |",
                r.mode.name(),
                r.storage.name(),
                s.rate,
                st.achieved,
                st.applied_all,
                st.clicks,
                ms(percentile(&st.lat, 50.0)),
                ms(percentile(&st.lat, 99.0)),
                ms(st.lat.last().copied()),
                ms(percentile(&st.intake_lag, 99.0)),
                s.node_cpu,
                s.bench_cpu,
                s.other_cpu,
                match (s.sustained, a.attempts) {
                    (true, 1) => "ok".to_string(),
                    (true, n) => format!("ok (try {} of {n})", s.attempt),
                    (false, _) => s.note.replace('|', "/"),
                }
            );
        }
    }
    let _ = writeln!(o, "\n### Idle nodes ({} s)\n", a.idle_secs);
    let _ = writeln!(
        o,
        "Other processes kept {} cores of {} busy meanwhile.\n",
        results
            .iter()
            .map(|r| format!("{:.2}", r.idle.other_cpu))
            .collect::<Vec<_>>()
            .join(" / "),
        cores()
    );
    let _ = writeln!(
        o,
        "| mode | storage | node | role | CPU % of a core | RSS MB |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    for r in results {
        for i in 0..NODES {
            let _ = writeln!(
                o,
                "| {} | {} | n{i} | {} | {} | {} |",
                r.mode.name(),
                r.storage.name(),
                if i == r.idle.leader {
                    "leader"
                } else {
                    "follower"
                },
                ms(r.idle.cpu[i]),
                mb(r.idle.rss_kb[i])
            );
        }
    }
    o
}
