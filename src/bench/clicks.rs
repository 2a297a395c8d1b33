//! `raftian bench clicks`: latency, sustained throughput, idle CPU and RSS.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cluster::{Cluster, Launch, Status, TempRoot};
use super::load::{GenResult, generate, generate_local};
use super::stats::{RunStats, analyse, ms, percentile, unix_micros};
use super::sysinfo::{CpuSample, cores, loadavg, machine_cores, machine_ticks, status_kb};
use super::{
    ClicksArgs, Intake, LeaderMode, NODES, RUN_TAG, StorageKind, WARMUP_CLICKS, WARMUP_TAG,
};

struct Idle {
    cpu: Vec<Option<f64>>,
    /// Cores used by the rest of the machine meanwhile.
    other_cpu: f64,
    rss_kb: Vec<Option<u64>>,
    leader: usize,
}

impl Idle {
    /// The leader's idle CPU, % of a core.
    fn leader_cpu(&self) -> Option<f64> {
        self.cpu.get(self.leader).copied().flatten()
    }

    /// The followers' idle CPU, % of a core: mean and max.
    fn follower_cpu(&self) -> (Option<f64>, Option<f64>) {
        let f: Vec<f64> = (0..self.cpu.len())
            .filter(|i| *i != self.leader)
            .filter_map(|i| self.cpu[i])
            .collect();
        if f.is_empty() {
            return (None, None);
        }
        let mean = f.iter().sum::<f64>() / f.len() as f64;
        (Some(mean), f.iter().copied().reduce(f64::max))
    }
}

struct Step {
    rate: u32,
    sent: GenResult,
    stats: RunStats,
    node_cpu: f64,
    bench_cpu: f64,
    /// Cores used by other processes of the machine meanwhile.
    other_cpu: f64,
    /// CPU of the 5 nodes, summed over the sending window, per click, µs.
    cpu_per_click_us: Option<f64>,
    /// Which try this is (see `--attempts`).
    attempt: u32,
    /// Largest VmHWM of the nodes at the end of the run.
    peak_rss_kb: Option<u64>,
    sustained: bool,
    note: String,
}

impl Step {
    fn p(&self, pct: f64) -> Option<f64> {
        percentile(&self.stats.lat, pct)
    }
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

/// A binary under test: this one (or `--exe`) and, with `--baseline`, the
/// older one.
struct Bin<'a> {
    /// "new" or "base".
    name: &'static str,
    exe: &'a Launch,
}

/// Start a cluster, wait for its leader, warm it up (connections, first
/// entries), wait until everything is applied everywhere.
async fn ready_cluster(
    a: &ClicksArgs,
    exe: &Launch,
    dir: PathBuf,
    (mode, storage): (LeaderMode, StorageKind),
    traces: &Path,
) -> Result<(Cluster, usize, Status), String> {
    let (conns, tick_ms) = (a.conns, a.tick_ms);
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
async fn measure(
    cl: &mut Cluster,
    leader: usize,
    base: &Status,
    rate: u32,
    secs: f64,
    (intake, conns): (Intake, usize),
    settle: Duration,
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
    let sent = match intake {
        Intake::Rpc => generate(&cl.addrs(), conns, f64::from(rate), n, RUN_TAG, start).await?,
        Intake::Local => generate_local(&cl.addrs(), f64::from(rate), n, RUN_TAG, start).await?,
    };
    let (used, secs) = cpu0.ns_since(&pids);
    let node_ns = used.iter().flatten().sum::<u64>();
    let node_cpu = node_ns as f64 / 1e9 / secs;
    // Over the sending window only: the settle wait below polls status()
    // every 10 ms, which is the benchmark's cost, not the clicks'.
    let cpu_per_click_us = used
        .iter()
        .all(Option::is_some)
        .then(|| node_ns as f64 / 1000.0 / n as f64);
    let bench_cpu = me0.percent_since(&me)[0].unwrap_or(0.0) / 100.0;
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
            cpu_per_click_us,
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

/// Where the next cluster of a configuration goes (and its traces).
fn next_dir(
    root: &TempRoot,
    run_no: &mut u32,
    mode: LeaderMode,
    storage: StorageKind,
    bin: &Bin,
) -> PathBuf {
    *run_no += 1;
    root.path.join(format!(
        "{run_no:02}-{}-{}-{}",
        mode.name(),
        storage.name(),
        bin.name
    ))
}

/// Indices of the binaries in the order row `row` runs them: with a
/// baseline the order alternates from row to row, so that neither binary
/// always runs first (on a warmer or quieter machine).
fn order(row: usize, n: usize) -> Vec<usize> {
    let mut o: Vec<usize> = (0..n).collect();
    if row % 2 == 1 {
        o.reverse();
    }
    o
}

fn label(mode: LeaderMode, storage: StorageKind, bin: &Bin, bins: usize) -> String {
    if bins > 1 {
        format!("{}/{} {}", mode.name(), storage.name(), bin.name)
    } else {
        format!("{}/{}", mode.name(), storage.name())
    }
}

/// Idle figures, the low-rate run and the nodes' VmHWM after it.
type IdleAndLow = (Idle, Step, Vec<Option<u64>>);

/// A fresh cluster: idle CPU and RSS, then the low-rate latency run.
async fn idle_and_low(
    a: &ClicksArgs,
    bin: &Bin<'_>,
    dir: PathBuf,
    mode: LeaderMode,
    storage: StorageKind,
    root: &TempRoot,
    label: &str,
) -> Result<IdleAndLow, String> {
    let (mut cl, leader, st) =
        ready_cluster(a, bin.exe, dir, (mode, storage), &root.traces).await?;
    let pids: Vec<Option<u32>> = (0..NODES).map(|i| cl.pid(i)).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s0 = CpuSample::take(&pids);
    let sys0 = machine_ticks();
    tokio::time::sleep(Duration::from_secs_f64(a.idle_secs)).await;
    let cpu = s0.percent_since(&pids);
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
    let (fmean, _) = idle.follower_cpu();
    eprintln!(
        "bench {label}: idle CPU {} % (leader n{leader} {} %, followers {} % mean; rest of the machine {:.2} cores), RSS {} MB",
        idle.cpu
            .iter()
            .map(|c| pct(*c))
            .collect::<Vec<_>>()
            .join(" "),
        pct(idle.leader_cpu()),
        pct(fmean),
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
        (a.intake, a.conns),
        Duration::from_secs(10),
    )
    .await?;
    drop(cl);
    judge(&mut low, a.p99_limit_ms);
    eprintln!(
        "bench {label}: {}/s p50 {} ms p99 {} ms, CPU/click {} us ({} of {} applied everywhere)",
        a.latency_rate,
        ms(low.p(50.0)),
        ms(low.p(99.0)),
        us(low.cpu_per_click_us),
        low.stats.applied_all,
        low.stats.clicks
    );
    Ok((idle, low, hwm_kb))
}

/// One throughput step at `rate` (up to `--attempts` tries, each on a
/// fresh cluster).
#[allow(clippy::too_many_arguments)]
async fn rate_step(
    a: &ClicksArgs,
    bin: &Bin<'_>,
    root: &TempRoot,
    run_no: &mut u32,
    mode: LeaderMode,
    storage: StorageKind,
    rate: u32,
    label: &str,
) -> Result<Step, String> {
    let mut attempt = 1;
    loop {
        let dir = next_dir(root, run_no, mode, storage, bin);
        let (mut cl, leader, st) =
            ready_cluster(a, bin.exe, dir, (mode, storage), &root.traces).await?;
        let (mut step, step_hwm) = measure(
            &mut cl,
            leader,
            &st,
            rate,
            a.rate_secs,
            (a.intake, a.conns),
            Duration::from_secs(10),
        )
        .await?;
        drop(cl);
        judge(&mut step, a.p99_limit_ms);
        step.attempt = attempt;
        step.peak_rss_kb = step_hwm.iter().flatten().max().copied();
        eprintln!(
            "bench {label}: {rate}/s (try {attempt}) -> intake {:.0}/s, p50 {} ms, p99 {} ms, CPU/click {} us, nodes {:.2} cores, bench {:.2} cores, others {:.2} cores: {}",
            step.stats.achieved,
            ms(step.p(50.0)),
            ms(step.p(99.0)),
            us(step.cpu_per_click_us),
            step.node_cpu,
            step.bench_cpu,
            step.other_cpu,
            if step.sustained {
                "sustained".to_string()
            } else {
                format!("NOT sustained ({})", step.note)
            }
        );
        if step.sustained || attempt == a.attempts {
            return Ok(step);
        }
        attempt += 1;
    }
}

/// The results of one binary, in the order of `--modes` x `--storage`.
type BinResults = Vec<ConfigResult>;

pub(super) async fn clicks(
    a: &ClicksArgs,
    exe: &Launch,
    baseline: Option<&Launch>,
    root: &TempRoot,
) -> Result<String, String> {
    let load = loadavg();
    let mut bins = vec![Bin { name: "new", exe }];
    if let Some(b) = baseline {
        bins.push(Bin {
            name: "base",
            exe: b,
        });
    }
    let nb = bins.len();
    let mut results: Vec<BinResults> = (0..nb).map(|_| Vec::new()).collect();
    let mut run_no = 0;
    let mut row = 0;
    for &mode in &a.modes {
        for &storage in &a.storage {
            // Idle, then the low-rate latency run: one row.
            let mut first: Vec<Option<IdleAndLow>> = (0..nb).map(|_| None).collect();
            for k in order(row, nb) {
                let bin = &bins[k];
                let dir = next_dir(root, &mut run_no, mode, storage, bin);
                let lbl = label(mode, storage, bin, nb);
                first[k] = Some(idle_and_low(a, bin, dir, mode, storage, root, &lbl).await?);
            }
            row += 1;
            if nb > 1
                && let (Some((ia, la, _)), Some((ib, lb, _))) = (&first[0], &first[1])
            {
                eprintln!(
                    "bench {}/{}: new/base p50 {} p99 {} CPU/click {} idle leader {} followers {}",
                    mode.name(),
                    storage.name(),
                    ratio(la.p(50.0), lb.p(50.0)),
                    ratio(la.p(99.0), lb.p(99.0)),
                    ratio(la.cpu_per_click_us, lb.cpu_per_click_us),
                    ratio(ia.leader_cpu(), ib.leader_cpu()),
                    ratio(ia.follower_cpu().0, ib.follower_cpu().0),
                );
            }
            // Throughput search: one row per rate, until no binary
            // sustains it.
            let mut steps: Vec<Vec<Step>> = (0..nb).map(|_| Vec::new()).collect();
            for &rate in &a.rates {
                let going: Vec<usize> = order(row, nb)
                    .into_iter()
                    .filter(|k| steps[*k].last().is_none_or(|s| s.sustained))
                    .collect();
                if going.is_empty() {
                    break;
                }
                row += 1;
                for k in going {
                    let bin = &bins[k];
                    let lbl = label(mode, storage, bin, nb);
                    let step =
                        rate_step(a, bin, root, &mut run_no, mode, storage, rate, &lbl).await?;
                    steps[k].push(step);
                }
                if nb > 1
                    && let (Some(x), Some(y)) = (steps[0].last(), steps[1].last())
                    && x.rate == rate
                    && y.rate == rate
                {
                    eprintln!(
                        "bench {}/{} {rate}/s: new/base p50 {} p99 {} CPU/click {}",
                        mode.name(),
                        storage.name(),
                        ratio(x.p(50.0), y.p(50.0)),
                        ratio(x.p(99.0), y.p(99.0)),
                        ratio(x.cpu_per_click_us, y.cpu_per_click_us),
                    );
                }
            }
            for (k, (f, st)) in first.into_iter().zip(steps).enumerate() {
                let (idle, low, hwm_kb) = f.ok_or("a binary was not run")?;
                results[k].push(ConfigResult {
                    mode,
                    storage,
                    idle,
                    low,
                    hwm_kb,
                    steps: st,
                });
            }
        }
    }
    Ok(clicks_report(a, &bins, &results, &load))
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// CPU, % of a core (idle nodes use well under 1 %).
fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

fn us(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

/// `new / base` as "0.93x"; "-" when either is missing or the base is 0.
fn ratio(new: Option<f64>, base: Option<f64>) -> String {
    match (new, base) {
        (Some(n), Some(b)) if b > 0.0 && (n / b).is_finite() => format!("{:.2}x", n / b),
        _ => "-".into(),
    }
}

/// "new / base (ratio)" for a comparison cell.
fn vs(new: Option<f64>, base: Option<f64>, fmt: fn(Option<f64>) -> String) -> String {
    format!("{} / {} ({})", fmt(new), fmt(base), ratio(new, base))
}

fn sustained_text(r: &ConfigResult) -> String {
    match r.max_sustained() {
        Some(x) => {
            let last = r.steps.last().map(|s| s.rate);
            if r.steps.iter().all(|s| s.sustained) {
                format!(">= {x}/s (highest tried)")
            } else {
                format!("{x}/s (not {}/s)", last.unwrap_or(0))
            }
        }
        None => "below the lowest rate tried".into(),
    }
}

fn clicks_report(a: &ClicksArgs, bins: &[Bin], results: &[BinResults], load: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## raftian bench clicks\n\n5 node processes on loopback ({} cores, load average {load} at the start), \
         clicks round-robin over all 5 nodes ({}); latency = queued on the receiving node -> applied on every node. \
         CPU is the scheduler's count (`/proc/<pid>/task/*/schedstat`, ns on a CPU); \
         CPU/click = CPU of the 5 nodes summed over the sending window, over the clicks \
         (heartbeats included).\n",
        cores(),
        match a.intake {
            Intake::Rpc => "one `bench_click` request each, pipelined HTTP",
            Intake::Local => "each node takes its share itself on a schedule, no request per click",
        }
    );
    if let Some(t) = a.tick_ms {
        let _ = writeln!(o, "Cluster file: `tick_ms = {t}`.\n");
    }
    if bins.len() > 1 {
        let _ = writeln!(
            o,
            "Binaries: new = {}, base = {}; every row ran both, one after the other, \
             alternating which went first.\n",
            bins[0].exe.path().display(),
            bins[1].exe.path().display()
        );
    }
    let tag = |k: usize| {
        if bins.len() > 1 {
            format!(" {}", bins[k].name)
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        o,
        "| mode | storage | p50 @{r}/s | p99 @{r}/s | p50 via leader | p50 via follower | CPU/click @{r}/s | max sustained (p99 < {lim} ms) | idle CPU leader | idle CPU followers (mean / max) | idle RSS/node (max) | peak RSS @{r}/s | peak RSS at max sustained |",
        r = a.latency_rate,
        lim = a.p99_limit_ms
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for i in 0..results[0].len() {
        for (k, res) in results.iter().enumerate() {
            let r = &res[i];
            let low = &r.low.stats;
            let (fmean, fmax) = r.idle.follower_cpu();
            let max_rss = r.idle.rss_kb.iter().flatten().max().copied();
            let max_hwm = r.hwm_kb.iter().flatten().max().copied();
            let _ = writeln!(
                o,
                "| {}{} | {} | {} ms | {} ms | {} ms | {} ms | {} us | {} | {} % | {} / {} % | {} MB | {} MB | {} MB |",
                r.mode.name(),
                tag(k),
                r.storage.name(),
                ms(r.low.p(50.0)),
                ms(r.low.p(99.0)),
                ms(percentile(&low.lat_via_leader, 50.0)),
                ms(percentile(&low.lat_via_follower, 50.0)),
                us(r.low.cpu_per_click_us),
                sustained_text(r),
                pct(r.idle.leader_cpu()),
                pct(fmean),
                pct(fmax),
                mb(max_rss),
                mb(max_hwm),
                mb(r.steps
                    .iter()
                    .rfind(|s| s.sustained)
                    .and_then(|s| s.peak_rss_kb)),
            );
        }
    }
    if bins.len() > 1 {
        compare_report(&mut o, a, &results[0], &results[1]);
    }
    let _ = writeln!(o, "\n### Throughput steps ({} s each)\n", a.rate_secs);
    let _ = writeln!(
        o,
        "| mode | storage | offered /s | intake /s | applied everywhere | p50 ms | p99 ms | max ms | intake lag p99 ms | CPU/click us | CPU cores: nodes / generator / other processes | result |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for i in 0..results[0].len() {
        for (k, res) in results.iter().enumerate() {
            let r = &res[i];
            for s in std::iter::once(&r.low).chain(&r.steps) {
                let st = &s.stats;
                let _ = writeln!(
                    o,
                    "| {}{} | {} | {} | {:.0} | {}/{} | {} | {} | {} | {} | {} | {:.2} / {:.2} / {:.2} | {} |",
                    r.mode.name(),
                    tag(k),
                    r.storage.name(),
                    s.rate,
                    st.achieved,
                    st.applied_all,
                    st.clicks,
                    ms(s.p(50.0)),
                    ms(s.p(99.0)),
                    ms(st.lat.last().copied()),
                    ms(percentile(&st.intake_lag, 99.0)),
                    us(s.cpu_per_click_us),
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
    }
    let _ = writeln!(o, "\n### Idle nodes ({} s)\n", a.idle_secs);
    let _ = writeln!(
        o,
        "Other processes kept {} cores of {} busy meanwhile.\n",
        results
            .iter()
            .flatten()
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
    for i in 0..results[0].len() {
        for (k, res) in results.iter().enumerate() {
            let r = &res[i];
            for n in 0..NODES {
                let _ = writeln!(
                    o,
                    "| {}{} | {} | n{n} | {} | {} | {} |",
                    r.mode.name(),
                    tag(k),
                    r.storage.name(),
                    if n == r.idle.leader {
                        "leader"
                    } else {
                        "follower"
                    },
                    pct(r.idle.cpu[n]),
                    mb(r.idle.rss_kb[n])
                );
            }
        }
    }
    o
}

/// The `--baseline` tables: new / base, and their ratio, row by row.
fn compare_report(o: &mut String, a: &ClicksArgs, new: &[ConfigResult], base: &[ConfigResult]) {
    let _ = writeln!(
        o,
        "\n### new / base (ratio new/base: under 1 is faster or leaner, except max sustained)\n"
    );
    let _ = writeln!(
        o,
        "| mode | storage | p50 @{r}/s ms | p99 @{r}/s ms | CPU/click @{r}/s us | idle CPU leader % | idle CPU followers % (mean) | max sustained /s |",
        r = a.latency_rate
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for (n, b) in new.iter().zip(base) {
        let max = |r: &ConfigResult| r.max_sustained().map(f64::from);
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            n.mode.name(),
            n.storage.name(),
            vs(n.low.p(50.0), b.low.p(50.0), ms),
            vs(n.low.p(99.0), b.low.p(99.0), ms),
            vs(n.low.cpu_per_click_us, b.low.cpu_per_click_us, us),
            vs(n.idle.leader_cpu(), b.idle.leader_cpu(), pct),
            vs(n.idle.follower_cpu().0, b.idle.follower_cpu().0, pct),
            vs(max(n), max(b), |v| v
                .map_or("-".into(), |v| format!("{v:.0}"))),
        );
    }
    let _ = writeln!(
        o,
        "\n| mode | storage | offered /s | p50 ms | p99 ms | CPU/click us | node cores | result new / base |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for (n, b) in new.iter().zip(base) {
        for s in &n.steps {
            let Some(t) = b.steps.iter().find(|t| t.rate == s.rate) else {
                continue;
            };
            let res = |x: &Step| if x.sustained { "ok" } else { "not sustained" };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} / {} |",
                n.mode.name(),
                n.storage.name(),
                s.rate,
                vs(s.p(50.0), t.p(50.0), ms),
                vs(s.p(99.0), t.p(99.0), ms),
                vs(s.cpu_per_click_us, t.cpu_per_click_us, us),
                vs(Some(s.node_cpu), Some(t.node_cpu), |v| {
                    v.map_or("-".into(), |v| format!("{v:.2}"))
                }),
                res(s),
                res(t),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_new_over_base_and_never_nan() {
        assert_eq!(ratio(Some(1.0), Some(2.0)), "0.50x");
        assert_eq!(ratio(Some(1.0), Some(0.0)), "-");
        assert_eq!(ratio(None, Some(1.0)), "-");
        assert_eq!(vs(Some(1.5), Some(3.0), ms), "1.50 / 3.00 (0.50x)");
    }

    #[test]
    fn the_order_alternates_with_a_baseline() {
        assert_eq!(order(0, 2), vec![0, 1]);
        assert_eq!(order(1, 2), vec![1, 0]);
        assert_eq!(order(1, 1), vec![0]);
    }
}
