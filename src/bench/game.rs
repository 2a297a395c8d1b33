//! `raftian bench game`: a long game on five nodes with the WAL on disk, to
//! show that disk, memory and restart time stay bounded as the log grows
//! (snapshots and log compaction). One follower is down for the whole game
//! (its data dir removed) and catches up at the end by an installed
//! snapshot; another is restarted on its data dir after `--checkpoint`
//! clicks and again at the end, timed until it has applied everything.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use super::cluster::{Cluster, Launch, Status, TempRoot};
use super::load::generate;
use super::sysinfo::status_kb;
use super::{GameArgs, LeaderMode, NODES, RUN_TAG, StorageKind};

/// How long a restarted node may take to catch up before the run fails.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);

struct Phase {
    clicks: usize,
    secs: f64,
}

struct Report {
    phases: Vec<Phase>,
    /// Restart-to-caught-up times, sorted (several: the wait for the
    /// leader's next heartbeat, 0-50 ms, is most of the spread).
    restart_early: Vec<Duration>,
    restart_late: Vec<Duration>,
    catch_up: Duration,
    installed_at: Option<u64>,
    /// Per live node: data dir bytes, RSS in KB.
    sizes: Vec<(usize, u64, Option<u64>)>,
    last_index: Option<u64>,
}

pub(super) async fn game(a: &GameArgs, exe: &Launch, root: &TempRoot) -> Result<String, String> {
    let extra = format!("snapshot_entries = {}\n", a.snapshot_entries);
    let dir = root.path.join("game");
    let trace = root.traces.join("game");
    let mut cl = Cluster::start_with(
        exe,
        dir.clone(),
        LeaderMode::Election,
        StorageKind::Disk,
        Some(trace),
        None,
        &extra,
    )?;
    let (leader, _) = cl.wait_settled(0, Duration::from_secs(20)).await?;
    let away = (leader + 1) % NODES;
    let restarted = (leader + 2) % NODES;
    cl.kill(away);
    let _ = std::fs::remove_dir_all(dir.join(format!("data-n{away}")));
    let early = a.checkpoint.min(a.clicks);
    let mut phases = vec![play(&mut cl, a, away, early, RUN_TAG).await?];
    let restart_early = restarts(&mut cl, restarted, a.restarts).await?;
    let rest = a.clicks - early;
    phases.push(play(&mut cl, a, away, rest, RUN_TAG + early as i32).await?);
    let restart_late = restarts(&mut cl, restarted, a.restarts).await?;
    let sizes = sizes(&cl, &dir, away);
    let (_, st) = cl.wait_settled(0, Duration::from_secs(60)).await?;
    let t0 = Instant::now();
    cl.spawn(away)?;
    let (catch_up, s) = caught_up(&mut cl, away, st.last_index(), t0).await?;
    let report = Report {
        phases,
        restart_early,
        restart_late,
        catch_up,
        installed_at: s.snapshot_index,
        sizes,
        last_index: st.last_index(),
    };
    cl.terminate_all();
    Ok(report.markdown(a, early))
}

/// `n` clicks at `--rate` on the running nodes; done once all are applied.
async fn play(
    cl: &mut Cluster,
    a: &GameArgs,
    away: usize,
    n: usize,
    tag0: i32,
) -> Result<Phase, String> {
    let (_, base) = cl.wait_settled(0, Duration::from_secs(60)).await?;
    let addrs: Vec<_> = cl
        .addrs()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != away)
        .map(|(_, a)| a)
        .collect();
    let start = Instant::now() + Duration::from_millis(20);
    let g = generate(&addrs, a.conns, f64::from(a.rate), n, tag0, start).await?;
    if g.faults > 0 {
        return Err(format!("{} clicks answered a fault", g.faults));
    }
    let limit = Duration::from_secs_f64(n as f64 / f64::from(a.rate)) + Duration::from_secs(120);
    cl.wait_settled(base.total_len() + n as u64, limit).await?;
    Ok(Phase {
        clicks: n,
        secs: start.elapsed().as_secs_f64(),
    })
}

/// `k` timed restarts of node `i`, sorted.
async fn restarts(cl: &mut Cluster, i: usize, k: usize) -> Result<Vec<Duration>, String> {
    let mut times = Vec::with_capacity(k);
    for _ in 0..k.max(1) {
        times.push(restart(cl, i).await?);
    }
    times.sort();
    Ok(times)
}

/// SIGKILL node `i`, start it again on its data dir, and time it until it
/// has applied everything the leader had committed.
async fn restart(cl: &mut Cluster, i: usize) -> Result<Duration, String> {
    let (_, st) = cl.wait_settled(0, Duration::from_secs(60)).await?;
    cl.kill(i);
    let t0 = Instant::now();
    cl.spawn(i)?;
    Ok(caught_up(cl, i, st.last_index(), t0).await?.0)
}

async fn caught_up(
    cl: &mut Cluster,
    i: usize,
    last: Option<u64>,
    t0: Instant,
) -> Result<(Duration, Status), String> {
    loop {
        if let Some((_, Ok(s))) = cl.statuses(&[i]).await.into_iter().next()
            && s.last_applied_index() >= last
        {
            return Ok((t0.elapsed(), s));
        }
        if t0.elapsed() > CATCH_UP_LIMIT {
            return Err(format!("n{i} did not catch up within {CATCH_UP_LIMIT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Per live node: data dir bytes and RSS.
fn sizes(cl: &Cluster, dir: &Path, away: usize) -> Vec<(usize, u64, Option<u64>)> {
    (0..NODES)
        .filter(|i| *i != away)
        .map(|i| {
            let bytes = dir_bytes(&dir.join(format!("data-n{i}")));
            let rss = cl.pid(i).and_then(|p| status_kb(p, "VmRSS"));
            (i, bytes, rss)
        })
        .collect()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

impl Report {
    fn markdown(&self, a: &GameArgs, early: usize) -> String {
        let mut o = String::new();
        let total: usize = self.phases.iter().map(|p| p.clicks).sum();
        let secs: f64 = self.phases.iter().map(|p| p.secs).sum();
        let _ = writeln!(o, "## raftian bench game\n");
        let _ = writeln!(
            o,
            "5 nodes on loopback (one down for the whole game), election mode, WAL on disk, \
             snapshot every {} entries; {} clicks offered at {}/s.\n",
            a.snapshot_entries, total, a.rate
        );
        let _ = writeln!(o, "| figure | measured |\n|---|---|");
        let _ = writeln!(
            o,
            "| clicks applied on the 4 live nodes | {total} in {secs:.1} s ({:.0} clicks/s) |",
            total as f64 / secs
        );
        let _ = writeln!(o, "| last index | {:?} |", self.last_index);
        for (i, bytes, rss) in &self.sizes {
            let rss = rss.map_or("-".into(), |k| format!("{:.1} MB", k as f64 / 1024.0));
            let _ = writeln!(
                o,
                "| n{i} at the end: data dir, RSS | {:.2} MB, {rss} |",
                *bytes as f64 / 1e6
            );
        }
        for (after, times) in [(early, &self.restart_early), (total, &self.restart_late)] {
            let _ = writeln!(
                o,
                "| restart to caught up after {after} clicks ({} restarts) | median {:.0} ms, max {:.0} ms |",
                times.len(),
                ms(times[times.len() / 2]),
                ms(*times.last().expect("at least one"))
            );
        }
        let _ = writeln!(
            o,
            "| follower down for the whole game: start to caught up | {:.0} ms (installed a snapshot at {:?}) |",
            ms(self.catch_up),
            self.installed_at
        );
        o
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
