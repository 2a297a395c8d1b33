//! `raftian bench`: end-to-end benchmarks on 5 real node processes on
//! loopback (this executable, `raftian node ... --headless`).
//!
//! - `raftian bench clicks`: clicks are injected with `bench_click(tag)`
//!   round-robin over all 5 nodes (leader and followers), open loop on a
//!   fixed schedule, over pipelined keep-alive HTTP connections. A click's
//!   latency runs from the moment the receiving node queued it (`q` line of
//!   its `--apply-trace`) to the moment the last of the 5 nodes applied it
//!   (latest `a` line). Reported: p50/p99 at a low rate, the highest
//!   sustained rate (all clicks applied everywhere, p99 under a bound, the
//!   offered rate really reached), idle CPU and RSS per node; for the
//!   paper's static leader and for elections, with the disk WAL and with
//!   `--ephemeral`. With `--baseline PATH` every row runs on a cluster of
//!   an older binary too, interleaved, and the report adds new/base ratios.
//! - `raftian bench election`: SIGKILL the leader of a 5-node election-mode
//!   cluster, time until a survivor is leader of a newer term and has
//!   committed its no-op (commit index past the old leader's last entry),
//!   restart the killed node on its data directory, wait until it follows
//!   the new leader and has caught up; repeat.
//!
//! Every node runs in a fresh temporary directory (cluster file, data,
//! logs, traces), removed at the end unless `--keep`. Nodes are killed when
//! the benchmark ends, fails or panics (a `Drop` guard).
//!
//! [`dots`] (`raftian dots`, the paper's frame-rate experiment) lives here
//! too: it is a measurement like the benchmarks and shares their `/proc`
//! sampling.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

mod clicks;
mod cluster;
pub mod dots;
mod election;
mod game;
mod load;
mod stats;
mod sysinfo;
mod wire;

use cluster::{TempRoot, baseline_exe, node_exe};

const NODES: usize = 5;
/// Tags of the warm-up clicks (the game ignores commands outside 1-4).
const WARMUP_TAG: i32 = 1000;
/// Tags of measured clicks.
const RUN_TAG: i32 = 1_000_000;
const WARMUP_CLICKS: usize = 100;

/// `raftian bench` arguments.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Subcommand, Clone, Debug)]
pub enum BenchWhat {
    /// Click latency, sustained throughput, idle CPU and RSS of a 5-node cluster.
    Clicks(ClicksArgs),
    /// Leader fail-over: SIGKILL the leader, time until a new leader commits.
    Election(ElectionArgs),
    /// CPU cost of the XML-RPC encoding, in process: where a click's CPU goes.
    Wire(WireArgs),
    /// A long game: bounded disk, memory and restart time (snapshots).
    Game(GameArgs),
}

#[derive(Args, Clone, Debug)]
pub struct GameArgs {
    /// Clicks in the whole game.
    #[arg(long, default_value_t = 1_000_000)]
    pub clicks: usize,
    /// A follower is restarted (and timed) after this many clicks, and
    /// again at the end.
    #[arg(long, default_value_t = 10_000)]
    pub checkpoint: usize,
    /// Offered clicks per second.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u32,
    /// Pipelined connections per node of the click generator.
    #[arg(long, default_value_t = 2)]
    pub conns: usize,
    /// How the measured clicks reach the nodes: `rpc`, one `bench_click`
    /// request each (pipelined HTTP); `local`, each node takes its share
    /// itself on a schedule (`bench_load`), as a player's window would.
    /// `local` needs binaries from 2026-12-07 on (both, with `--baseline`).
    #[arg(long, value_enum, default_value = "rpc")]
    pub intake: Intake,
    /// `snapshot_entries` of the cluster file.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_entries: u64,
    /// Timed restarts at each checkpoint (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub restarts: usize,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Clone, Debug)]
pub struct WireArgs {
    /// Batch sizes (entries per append_entries_rpc).
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000,4096")]
    pub sizes: Vec<usize>,
    /// Spend about this long on each measurement, seconds.
    #[arg(long, default_value_t = 0.5)]
    pub secs: f64,
    /// Also write the result table (markdown) to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// How the cluster picks its leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LeaderMode {
    /// The paper's setup: node 0 is always the leader (`leader = 0`).
    Static,
    /// Raft elections (no `leader` in the cluster file).
    Election,
}

/// How clicks reach the nodes in `bench clicks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Intake {
    Rpc,
    Local,
}

/// Where the nodes keep their Raft state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StorageKind {
    /// `--data-dir`: the write-ahead log, one fsync per batch.
    Disk,
    /// `--ephemeral`: in memory only (the original's behaviour).
    Mem,
}

impl LeaderMode {
    fn name(self) -> &'static str {
        match self {
            LeaderMode::Static => "static",
            LeaderMode::Election => "election",
        }
    }
}

impl StorageKind {
    fn name(self) -> &'static str {
        match self {
            StorageKind::Disk => "disk",
            StorageKind::Mem => "mem",
        }
    }
}

/// Options shared by both benchmarks.
#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    /// Keep the temporary directory (cluster file, traces, logs, data).
    #[arg(long)]
    pub keep: bool,
    /// The node executable (default: this one).
    #[arg(long)]
    pub exe: Option<PathBuf>,
    /// Also write the result tables (markdown) to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Where the temporary directory goes (data dirs, logs, traces);
    /// default: the system temp dir.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Give every node a key (a cluster with keys: signed requests,
    /// commands and votes). Needs --storage disk (the key lives in the
    /// data dir). The load generator's `bench_click` is not signed.
    #[arg(long)]
    pub keys: bool,
}

#[derive(Args, Clone, Debug)]
pub struct ClicksArgs {
    /// Leader modes to measure.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "static,election"
    )]
    pub modes: Vec<LeaderMode>,
    /// Storage back ends to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "disk,mem")]
    pub storage: Vec<StorageKind>,
    /// Clicks per second of the latency run.
    #[arg(long, default_value_t = 100)]
    pub latency_rate: u32,
    /// Length of the latency run, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub latency_secs: f64,
    /// Offered rates of the throughput search, clicks/s, ascending; it stops
    /// at the first rate not sustained.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,5000,10000,15000,20000,30000,50000"
    )]
    pub rates: Vec<u32>,
    /// Length of each throughput step, seconds.
    #[arg(long, default_value_t = 3.0)]
    pub rate_secs: f64,
    /// A rate is sustained if p99 stays under this (ms).
    #[arg(long, default_value_t = 100.0)]
    pub p99_limit_ms: f64,
    /// Idle CPU is measured over this many seconds.
    #[arg(long, default_value_t = 5.0)]
    pub idle_secs: f64,
    /// Pipelined connections per node of the click generator.
    #[arg(long, default_value_t = 2)]
    pub conns: usize,
    /// How the measured clicks reach the nodes: `rpc`, one `bench_click`
    /// request each (pipelined HTTP); `local`, each node takes its share
    /// itself on a schedule (`bench_load`), as a player's window would.
    /// `local` needs binaries from 2026-12-07 on (both, with `--baseline`).
    #[arg(long, value_enum, default_value = "rpc")]
    pub intake: Intake,
    /// Tries per throughput step (each on a fresh cluster): a rate counts as
    /// sustained if one try meets the bounds. For machines shared with
    /// other jobs.
    #[arg(long, default_value_t = 1)]
    pub attempts: u32,
    /// `tick_ms` of the cluster file (the node's 5 ms service_actions tick).
    #[arg(long)]
    pub tick_ms: Option<u64>,
    /// An older raftian binary to compare with: every row (idle + low
    /// rate, each offered rate) runs a cluster of each, interleaved
    /// (alternating which goes first), and the report adds the ratios
    /// new/base. Driven only through its command line and the wire.
    #[arg(long, value_name = "PATH")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Clone, Debug)]
pub struct ElectionArgs {
    /// How many times the leader is killed.
    #[arg(long, default_value_t = 30)]
    pub rounds: usize,
    /// Storage of the nodes (a killed node restarts on its data directory).
    #[arg(long, value_enum, default_value = "disk")]
    pub storage: StorageKind,
    /// Give up on a round after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    pub round_timeout_secs: f64,
    /// Stop the leader cleanly (SIGTERM: it hands leadership over first)
    /// instead of SIGKILLing it.
    #[arg(long)]
    pub graceful: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(args: &BenchArgs) -> Result<(), String> {
    if cfg!(debug_assertions) {
        eprintln!(
            "bench: warning: this is a debug build; figures only mean something from `cargo build --release`"
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    if let BenchWhat::Wire(a) = &args.what {
        let md = wire::wire_bench(a)?;
        println!("{md}");
        if let Some(p) = &a.markdown {
            std::fs::write(p, &md).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        }
        return Ok(());
    }
    let (common, md) = match &args.what {
        BenchWhat::Clicks(a) => {
            a.validate()?;
            let root = TempRoot::new(&a.common)?;
            let exe = node_exe(&a.common)?;
            let base = match &a.baseline {
                Some(p) => Some(baseline_exe(p, &a.common)?),
                None => None,
            };
            (
                &a.common,
                rt.block_on(clicks::clicks(a, &exe, base.as_ref(), &root))?,
            )
        }
        BenchWhat::Election(a) => {
            if a.rounds == 0 {
                return Err("--rounds must be at least 1".into());
            }
            if !(a.round_timeout_secs > 0.0 && a.round_timeout_secs.is_finite()) {
                return Err("--round-timeout-secs must be a positive number".into());
            }
            let root = TempRoot::new(&a.common)?;
            let exe = node_exe(&a.common)?;
            (&a.common, rt.block_on(election::election(a, &exe, &root))?)
        }
        BenchWhat::Game(a) => {
            if a.clicks == 0 || a.rate == 0 || a.conns == 0 {
                return Err("--clicks, --rate and --conns must be at least 1".into());
            }
            if a.clicks > (i32::MAX - RUN_TAG) as usize {
                return Err("--clicks: too many for the click tags".into());
            }
            let root = TempRoot::new(&a.common)?;
            let exe = node_exe(&a.common)?;
            (&a.common, rt.block_on(game::game(a, &exe, &root))?)
        }
        BenchWhat::Wire(_) => unreachable!("handled above"),
    };
    println!("{md}");
    if let Some(p) = &common.markdown {
        std::fs::write(p, &md).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    Ok(())
}

impl ClicksArgs {
    fn validate(&self) -> Result<(), String> {
        let pos = |v: f64, what: &str| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(format!("{what} must be a positive number"))
            }
        };
        pos(self.latency_secs, "--latency-secs")?;
        pos(self.rate_secs, "--rate-secs")?;
        pos(self.p99_limit_ms, "--p99-limit-ms")?;
        pos(self.idle_secs, "--idle-secs")?;
        if self.latency_rate == 0 || self.rates.contains(&0) {
            return Err("rates must be at least 1 click/s".into());
        }
        if self.attempts == 0 || self.tick_ms == Some(0) {
            return Err("--attempts and --tick-ms must be at least 1".into());
        }
        if self.conns == 0 {
            return Err("--conns must be at least 1".into());
        }
        if self.modes.is_empty() || self.storage.is_empty() {
            return Err("--modes and --storage need at least one value".into());
        }
        let most = self
            .rates
            .iter()
            .map(|r| f64::from(*r) * self.rate_secs)
            .fold(f64::from(self.latency_rate) * self.latency_secs, f64::max);
        if most > f64::from(i32::MAX - RUN_TAG) {
            return Err("too many clicks in one run (rate x seconds)".into());
        }
        Ok(())
    }
}
