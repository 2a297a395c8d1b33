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
//!   `--ephemeral`.
//! - `raftian bench election`: SIGKILL the leader of a 5-node election-mode
//!   cluster, time until a survivor is leader of a newer term and has
//!   committed its no-op (commit index past the old leader's last entry),
//!   restart the killed node on its data directory, wait until it follows
//!   the new leader and has caught up; repeat.
//!
//! Every node runs in a fresh temporary directory (cluster file, data,
//! logs, traces), removed at the end unless `--keep`. Nodes are killed when
//! the benchmark ends, fails or panics (a `Drop` guard).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand, ValueEnum};
use dxr::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::wire;

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
    /// Tries per throughput step (each on a fresh cluster): a rate counts as
    /// sustained if one try meets the bounds. For machines shared with
    /// other jobs.
    #[arg(long, default_value_t = 1)]
    pub attempts: u32,
    /// `tick_ms` of the cluster file (the node's 5 ms service_actions tick).
    #[arg(long)]
    pub tick_ms: Option<u64>,
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
        let md = wire_bench(a)?;
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
            (&a.common, rt.block_on(clicks(a, &exe, &root))?)
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
            (&a.common, rt.block_on(election(a, &exe, &root))?)
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

/// How node processes are started.
#[derive(Clone, Debug)]
struct Launch {
    exe: PathBuf,
}

impl Launch {
    fn command(&self) -> Command {
        Command::new(&self.exe)
    }
}

fn node_exe(common: &CommonArgs) -> Result<Launch, String> {
    let exe = match &common.exe {
        Some(p) if p.is_file() => p.clone(),
        Some(p) => return Err(format!("--exe {}: no such file", p.display())),
        None => std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?,
    };
    Ok(Launch { exe })
}

// ---------------------------------------------------------------------------
// Temporary directory and node processes.

/// A fresh directory under the system temp dir, removed on drop unless kept.
struct TempRoot {
    path: PathBuf,
    /// The benchmark's own traces: on tmpfs (`/dev/shm`) when there is one,
    /// so that writing them never waits on the disk the nodes persist to.
    traces: PathBuf,
    keep: bool,
}

impl TempRoot {
    fn new(common: &CommonArgs) -> Result<Self, String> {
        let keep = common.keep;
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let base = common.dir.clone().unwrap_or_else(std::env::temp_dir);
        let name = format!("raftian-bench-{}-{stamp:x}", std::process::id());
        let path = base.join(&name);
        let shm = Path::new("/dev/shm");
        let traces = if shm.is_dir() {
            shm.join(&name)
        } else {
            path.join("traces")
        };
        for d in [&path, &traces] {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        }
        if keep {
            eprintln!(
                "bench: files kept in {} and {}",
                path.display(),
                traces.display()
            );
        }
        Ok(TempRoot { path, traces, keep })
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
            let _ = std::fs::remove_dir_all(&self.traces);
        }
    }
}

/// `n` distinct free loopback ports (bound together, then released).
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

struct NodeProc {
    addr: SocketAddr,
    child: Option<Child>,
}

/// Five node processes; all killed on drop.
struct Cluster {
    dir: PathBuf,
    config: PathBuf,
    exe: Launch,
    storage: StorageKind,
    /// Where the nodes write their `--apply-trace` files, if they do.
    trace: Option<PathBuf>,
    nodes: Vec<NodeProc>,
    http: reqwest::Client,
    status_body: String,
}

impl Cluster {
    fn start(
        exe: &Launch,
        dir: PathBuf,
        mode: LeaderMode,
        storage: StorageKind,
        trace: Option<PathBuf>,
        tick_ms: Option<u64>,
    ) -> Result<Self, String> {
        for d in std::iter::once(&dir).chain(&trace) {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        }
        let ports = free_ports(NODES)?;
        let mut toml = String::from("# written by `raftian bench`\n");
        if mode == LeaderMode::Static {
            toml.push_str("leader = 0\n");
        }
        if let Some(t) = tick_ms {
            let _ = writeln!(toml, "tick_ms = {t}");
        }
        for (i, p) in ports.iter().enumerate() {
            let _ = write!(
                toml,
                "\n[[node]]\nid = {i}\nname = \"n{i}\"\naddr = \"127.0.0.1:{p}\"\n"
            );
        }
        let config = dir.join("cluster.toml");
        std::fs::write(&config, toml)
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut cluster = Cluster {
            dir,
            config,
            exe: exe.clone(),
            storage,
            trace,
            nodes: ports
                .iter()
                .map(|p| NodeProc {
                    addr: SocketAddr::from(([127, 0, 0, 1], *p)),
                    child: None,
                })
                .collect(),
            http,
            status_body: wire::call_body("status", Vec::new())?,
        };
        for i in 0..NODES {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    fn trace_path(&self, i: usize) -> Option<PathBuf> {
        Some(self.trace.as_ref()?.join(format!("n{i}.trace")))
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }

    fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].child.is_some())
            .collect()
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let mut cmd = self.exe.command();
        cmd.arg("node")
            .arg("--config")
            .arg(&self.config)
            .arg("--id")
            .arg(i.to_string())
            .arg("--headless")
            .arg("--log-dir")
            .arg(self.dir.join("logs"));
        match self.storage {
            StorageKind::Disk => cmd
                .arg("--data-dir")
                .arg(self.dir.join(format!("data-n{i}"))),
            StorageKind::Mem => cmd.arg("--ephemeral"),
        };
        if let Some(t) = self.trace_path(i) {
            cmd.arg("--apply-trace").arg(t);
        }
        let err_path = self.dir.join(format!("n{i}.stderr"));
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&err_path)
            .map_err(|e| format!("cannot create {}: {e}", err_path.display()))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.exe.display()))?;
        self.nodes[i].child = Some(child);
        Ok(())
    }

    /// SIGKILL node `i` and reap it.
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Error if a node exited on its own.
    fn check_alive(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            if let Some(c) = &mut self.nodes[i].child
                && let Ok(Some(st)) = c.try_wait()
            {
                self.nodes[i].child = None;
                return Err(format!(
                    "node n{i} exited ({st}); its stderr:\n{}",
                    self.stderr_tail(i)
                ));
            }
        }
        Ok(())
    }

    fn stderr_tail(&self, i: usize) -> String {
        let text =
            std::fs::read_to_string(self.dir.join(format!("n{i}.stderr"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// SIGTERM every node (they flush their traces), then reap; SIGKILL
    /// whoever is still there after 5 s.
    fn terminate_all(&mut self) {
        for n in &self.nodes {
            if let Some(c) = &n.child {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(c.id().to_string())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for n in &mut self.nodes {
            let Some(mut c) = n.child.take() else {
                continue;
            };
            loop {
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }

    /// Status of each of `which`, asked concurrently.
    async fn statuses(&self, which: &[usize]) -> Vec<(usize, Result<Status, String>)> {
        let mut set = JoinSet::new();
        for &i in which {
            let http = self.http.clone();
            let addr = self.nodes[i].addr;
            let body = self.status_body.clone();
            set.spawn(async move { (i, fetch_status(&http, addr, &body).await) });
        }
        let mut out = Vec::with_capacity(which.len());
        while let Some(r) = set.join_next().await {
            if let Ok(x) = r {
                out.push(x);
            }
        }
        out.sort_by_key(|(i, _)| *i);
        out
    }

    /// Wait until the running nodes agree on one leader, the leader's log
    /// holds at least `min_len` entries, all of them committed, and every
    /// running node has applied them. Returns the leader and its status.
    async fn wait_settled(
        &mut self,
        min_len: u64,
        timeout: Duration,
    ) -> Result<(usize, Status), String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let running = self.running();
            let st = self.statuses(&running).await;
            let last = match settled(&st, min_len) {
                Ok(x) => return Ok(x),
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "cluster did not settle within {:.1} s: {last}",
                    timeout.as_secs_f64()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn settled(
    st: &[(usize, Result<Status, String>)],
    min_len: u64,
) -> Result<(usize, Status), String> {
    let mut ok = Vec::new();
    for (i, s) in st {
        match s {
            Ok(s) => ok.push((*i, s)),
            Err(e) => return Err(format!("n{i}: {e}")),
        }
    }
    let leaders: Vec<&(usize, &Status)> = ok.iter().filter(|(_, s)| s.is_leader()).collect();
    let [&(l, ls)] = leaders[..] else {
        return Err(format!("{} nodes say they lead", leaders.len()));
    };
    if ls.log_length < min_len {
        return Err(format!(
            "leader n{l} has {} entries, waiting for {min_len}",
            ls.log_length
        ));
    }
    if ls.commit_index != ls.last_index() {
        return Err(format!(
            "leader n{l} committed {:?} of {:?}",
            ls.commit_index,
            ls.last_index()
        ));
    }
    for (i, s) in &ok {
        if *i != l && (s.leader_id != Some(l as u64) || s.mode != "FOLLOWER") {
            return Err(format!("n{i} is {} with leader {:?}", s.mode, s.leader_id));
        }
        if s.last_applied != ls.last_index() {
            return Err(format!(
                "n{i} applied {:?} of {:?}",
                s.last_applied,
                ls.last_index()
            ));
        }
    }
    Ok((l, ls.clone()))
}

// ---------------------------------------------------------------------------
// status()

#[derive(Clone, Debug)]
struct Status {
    mode: String,
    term: u64,
    leader_id: Option<u64>,
    commit_index: Option<u64>,
    last_applied: Option<u64>,
    log_length: u64,
}

impl Status {
    fn is_leader(&self) -> bool {
        self.mode == "LEADER"
    }

    /// Index of the last entry (the benchmark's logs start at index 0).
    fn last_index(&self) -> Option<u64> {
        self.log_length.checked_sub(1)
    }
}

async fn fetch_status(
    http: &reqwest::Client,
    addr: SocketAddr,
    body: &str,
) -> Result<Status, String> {
    let text = http
        .post(format!("http://{addr}/RPC2"))
        .header("content-type", "text/xml")
        .body(body.to_owned())
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let value =
        wire::parse_response(&text)?.map_err(|f| format!("status() fault: {}", f.string()))?;
    let Value::Struct(m) = value else {
        return Err("status() did not answer a struct".into());
    };
    let num = |k: &str| -> Result<Option<u64>, String> {
        match m.get(k) {
            Some(Value::Integer(n)) if *n >= 0 => Ok(Some(*n as u64)),
            Some(Value::Nil) | None => Ok(None),
            Some(v) => Err(format!("status() field {k} is {v:?}")),
        }
    };
    let mode = match m.get("mode") {
        Some(Value::String(s)) => s.clone(),
        other => return Err(format!("status() field mode is {other:?}")),
    };
    Ok(Status {
        mode,
        term: num("term")?.unwrap_or(0),
        leader_id: num("leader_id")?,
        commit_index: num("commit_index")?,
        last_applied: num("last_applied")?,
        log_length: num("log_length")?.unwrap_or(0),
    })
}

// ---------------------------------------------------------------------------
// The click generator: open loop, pipelined HTTP/1.1 keep-alive connections.

#[derive(Clone, Copy, Debug, Default)]
struct GenResult {
    sent: usize,
    ok: usize,
    faults: usize,
}

fn click_request(host: &str, tag: i32, out: &mut Vec<u8>) {
    let body = format!(
        "<?xml version='1.0'?>\n<methodCall><methodName>bench_click</methodName><params><param><value><int>{tag}</int></value></param></params></methodCall>\n"
    );
    let _ = write!(
        VecWriter(out),
        "POST /RPC2 HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

/// `fmt::Write` into a byte buffer.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> Result<usize, String> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("bench_click answered '{status}'"));
    }
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                return v
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad Content-Length '{}'", v.trim()));
            }
            if k.trim().eq_ignore_ascii_case("transfer-encoding") {
                return Err("chunked answers are not supported by the generator".into());
            }
        }
    }
    Err("answer without Content-Length".into())
}

/// One connection: send each click when it is due (all overdue ones in one
/// write), read the answers as they come.
async fn conn_task(addr: SocketAddr, clicks: Vec<(i32, Instant)>) -> Result<GenResult, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let n = clicks.len();
    let host = addr.to_string();
    let writer = async move {
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut i = 0;
        while i < clicks.len() {
            let due = clicks[i].1;
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
            let now = Instant::now();
            buf.clear();
            while i < clicks.len() && clicks[i].1 <= now {
                click_request(&host, clicks[i].0, &mut buf);
                i += 1;
            }
            wr.write_all(&buf)
                .await
                .map_err(|e| format!("sending clicks to {addr}: {e}"))?;
        }
        Ok::<_, String>(wr)
    };
    let reader = async move {
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut chunk = vec![0u8; 64 * 1024];
        let mut res = GenResult {
            sent: n,
            ..GenResult::default()
        };
        let mut start = 0;
        while res.ok + res.faults < n {
            while let Some(h) = find(&buf[start..], b"\r\n\r\n") {
                let len = content_length(&buf[start..start + h])?;
                let body = start + h + 4;
                if buf.len() < body + len {
                    break;
                }
                if find(&buf[body..body + len], b"<fault>").is_some() {
                    res.faults += 1;
                } else {
                    res.ok += 1;
                }
                start = body + len;
            }
            if res.ok + res.faults >= n {
                break;
            }
            buf.drain(..start);
            start = 0;
            let m = rd
                .read(&mut chunk)
                .await
                .map_err(|e| format!("reading answers from {addr}: {e}"))?;
            if m == 0 {
                return Err(format!(
                    "{addr} closed the connection after {} of {n} answers",
                    res.ok + res.faults
                ));
            }
            buf.extend_from_slice(&chunk[..m]);
        }
        Ok(res)
    };
    let (_wr, res) = tokio::try_join!(writer, reader)?;
    Ok(res)
}

/// Click `k` (tag `tag0 + k`) goes to node `k % nodes` at `start + k / rate`.
async fn generate(
    addrs: &[SocketAddr],
    conns: usize,
    rate: f64,
    n: usize,
    tag0: i32,
    start: Instant,
) -> Result<GenResult, String> {
    let nodes = addrs.len();
    let mut lists: Vec<Vec<(i32, Instant)>> = vec![Vec::new(); nodes * conns];
    for k in 0..n {
        let node = k % nodes;
        let c = (k / nodes) % conns;
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        lists[node * conns + c].push((tag0 + k as i32, due));
    }
    let mut set = JoinSet::new();
    for (j, list) in lists.into_iter().enumerate() {
        if !list.is_empty() {
            set.spawn(conn_task(addrs[j / conns], list));
        }
    }
    let limit = Duration::from_secs_f64(n as f64 / rate) + Duration::from_secs(30);
    let mut total = GenResult::default();
    let joined = tokio::time::timeout(limit, async {
        while let Some(r) = set.join_next().await {
            let r = r.map_err(|e| format!("generator task failed: {e}"))??;
            total.sent += r.sent;
            total.ok += r.ok;
            total.faults += r.faults;
        }
        Ok::<(), String>(())
    })
    .await;
    match joined {
        Ok(r) => r.map(|()| total),
        Err(_) => Err("the click generator got no answers in time".into()),
    }
}

// ---------------------------------------------------------------------------
// /proc

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state is field 3, utime 14, stime 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// A `/proc/<pid>/status` field in kB (VmRSS, VmHWM).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Busy and total jiffies of the whole machine (`/proc/stat`).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

/// Cores kept busy on the whole machine between two `machine_ticks`.
fn machine_cores(before: Option<(u64, u64)>, cores: f64) -> f64 {
    match (before, machine_ticks()) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) as f64 / (t1 - t0) as f64 * cores,
        _ => 0.0,
    }
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// CPU use of processes between two samples.
struct CpuSample {
    at: Instant,
    ticks: Vec<Option<u64>>,
}

impl CpuSample {
    fn take(pids: &[Option<u32>]) -> Self {
        CpuSample {
            at: Instant::now(),
            ticks: pids.iter().map(|p| p.and_then(cpu_ticks)).collect(),
        }
    }

    /// Percent of one core per process since `self`.
    fn percent_since(&self, pids: &[Option<u32>], tck: f64) -> Vec<Option<f64>> {
        let secs = self.at.elapsed().as_secs_f64().max(1e-6);
        pids.iter()
            .zip(&self.ticks)
            .map(|(p, before)| {
                let now = p.and_then(cpu_ticks)?;
                Some((now.saturating_sub((*before)?)) as f64 / tck / secs * 100.0)
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Traces

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[derive(Clone, Debug, Default)]
struct RunStats {
    clicks: usize,
    queued: usize,
    /// Applied by all 5 nodes.
    applied_all: usize,
    /// A node applied the same click twice.
    duplicates: usize,
    /// End-to-end latency, ms, sorted.
    lat: Vec<f64>,
    lat_via_leader: Vec<f64>,
    lat_via_follower: Vec<f64>,
    /// Queue time minus scheduled send time, ms, sorted.
    intake_lag: Vec<f64>,
    /// Clicks/s between the first and the last `q` line.
    achieved: f64,
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

/// Read the 5 traces. Click `k` has tag `tag0 + k`, was received by node
/// `k % 5` and scheduled at `t0_unix + k / rate`.
fn analyse(
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

// ---------------------------------------------------------------------------
// bench clicks

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
            st.log_length + WARMUP_CLICKS as u64,
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
    if let Err(e) = cl.wait_settled(base.log_length + n as u64, settle).await {
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

async fn clicks(a: &ClicksArgs, exe: &Launch, root: &TempRoot) -> Result<String, String> {
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

// ---------------------------------------------------------------------------
// bench election

struct Round {
    killed: usize,
    new_leader: Option<usize>,
    term: u64,
    elected_ms: Option<f64>,
    committed_ms: Option<f64>,
    rejoin_ms: Option<f64>,
}

async fn election(a: &ElectionArgs, exe: &Launch, root: &TempRoot) -> Result<String, String> {
    let timeout = Duration::from_secs_f64(a.round_timeout_secs);
    let mut cl = Cluster::start(
        exe,
        root.path.join("election"),
        LeaderMode::Election,
        a.storage,
        None,
        None,
    )?;
    cl.wait_settled(0, Duration::from_secs(20)).await?;
    let mut rounds = Vec::new();
    for round in 1..=a.rounds {
        let (old, st) = cl.wait_settled(0, timeout).await?;
        let old_last = st.last_index();
        let t_kill = Instant::now();
        cl.kill(old);
        let survivors: Vec<usize> = (0..NODES).filter(|i| *i != old).collect();
        let mut r = Round {
            killed: old,
            new_leader: None,
            term: st.term,
            elected_ms: None,
            committed_ms: None,
            rejoin_ms: None,
        };
        let deadline = t_kill + timeout;
        while Instant::now() < deadline {
            let now_ms = || t_kill.elapsed().as_secs_f64() * 1000.0;
            for (i, s) in cl.statuses(&survivors).await {
                let Ok(s) = s else { continue };
                if !s.is_leader() || s.term <= st.term {
                    continue;
                }
                if r.elected_ms.is_none() {
                    r.elected_ms = Some(now_ms());
                }
                if s.commit_index.is_some() && s.commit_index > old_last {
                    r.committed_ms = Some(now_ms());
                    r.new_leader = Some(i);
                    r.term = s.term;
                }
            }
            if r.committed_ms.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        cl.spawn(old)?;
        let t_restart = Instant::now();
        let rejoined = cl.wait_settled(0, timeout).await;
        if rejoined.is_ok() {
            r.rejoin_ms = Some(t_restart.elapsed().as_secs_f64() * 1000.0);
        }
        eprintln!(
            "bench election: round {round}: killed n{old} (term {}), new leader {} in term {}: elected {} ms, committed {} ms, n{old} back in {} ms",
            st.term,
            r.new_leader.map_or("-".into(), |l| format!("n{l}")),
            r.term,
            ms(r.elected_ms),
            ms(r.committed_ms),
            ms(r.rejoin_ms)
        );
        rounds.push(r);
        rejoined?;
        if rounds.last().is_some_and(|r| r.committed_ms.is_none()) {
            return Err(format!(
                "round {round}: no new leader committed within {:.1} s",
                timeout.as_secs_f64()
            ));
        }
    }
    cl.terminate_all();
    Ok(election_report(a, &rounds))
}

fn election_report(a: &ElectionArgs, rounds: &[Round]) -> String {
    let sorted = |f: fn(&Round) -> Option<f64>| {
        let mut v: Vec<f64> = rounds.iter().filter_map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let elected = sorted(|r| r.elected_ms);
    let committed = sorted(|r| r.committed_ms);
    let rejoin = sorted(|r| r.rejoin_ms);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## raftian bench election\n\n5 election-mode nodes on loopback ({} storage, default timeouts: heartbeat 50 ms, \
         election 150-300 ms, pre-vote and check-quorum on). Each round SIGKILLs the leader; times from the kill.\n",
        a.storage.name()
    );
    let _ = writeln!(
        o,
        "| {} rounds | median ms | p99 ms | max ms | min ms |",
        rounds.len()
    );
    let _ = writeln!(o, "|---|---|---|---|---|");
    for (name, v) in [
        ("a survivor is leader of a newer term", &elected),
        ("the new leader has committed its no-op", &committed),
        ("killed node restarted, following, caught up", &rejoin),
    ] {
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} |",
            ms(percentile(v, 50.0)),
            ms(percentile(v, 99.0)),
            ms(v.last().copied()),
            ms(v.first().copied())
        );
    }
    let _ = writeln!(
        o,
        "\n| round | killed | new leader | term | leader after ms | committed after ms | rejoined after ms |\n|---|---|---|---|---|---|---|"
    );
    for (i, r) in rounds.iter().enumerate() {
        let _ = writeln!(
            o,
            "| {} | n{} | {} | {} | {} | {} | {} |",
            i + 1,
            r.killed,
            r.new_leader.map_or("-".into(), |l| format!("n{l}")),
            r.term,
            ms(r.elected_ms),
            ms(r.committed_ms),
            ms(r.rejoin_ms)
        );
    }
    let mut terms: BTreeMap<usize, usize> = BTreeMap::new();
    for r in rounds {
        if let Some(l) = r.new_leader {
            *terms.entry(l).or_default() += 1;
        }
    }
    let _ = writeln!(
        o,
        "\nNew leaders: {}; final term {}.",
        terms
            .iter()
            .map(|(l, c)| format!("n{l} x{c}"))
            .collect::<Vec<_>>()
            .join(", "),
        rounds.last().map_or(0, |r| r.term)
    );
    o
}

// ---------------------------------------------------------------------------
// bench wire

/// Run `f` repeatedly for about `secs`; microseconds per call.
fn time_per_call(secs: f64, mut f: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    f()?;
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget || n < 3 {
        f()?;
        n += 1;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / n as f64)
}

/// What a hand-written encoder would cost: the same bytes as
/// `wire::call_body(rpc_params(append_entries_rpc))` for int commands, built
/// with `write!` (a measurement aid, not used by the nodes).
fn hand_encode_append(a: &crate::raft::AppendEntries) -> Option<String> {
    use crate::raft::Command;
    let mut o = String::with_capacity(64 + 200 * a.entries.as_ref().map_or(0, Vec::len));
    o.push_str("<?xml version='1.0'?>\n<methodCall><methodName>append_entries_rpc</methodName><params><param>");
    match &a.entries {
        None => o.push_str("<value><nil></nil></value>"),
        Some(es) => {
            o.push_str("<value><array><data>");
            for e in es {
                let Command::Int(c) = e.command else {
                    return None;
                };
                let _ = write!(
                    o,
                    "<value><struct><member><name>command</name><value><int>{c}</int></value></member><member><name>index</name><value>"
                );
                match e.index {
                    Some(i) => {
                        let _ = write!(o, "<int>{i}</int>");
                    }
                    None => o.push_str("<nil></nil>"),
                }
                let _ = write!(
                    o,
                    "</value></member><member><name>term</name><value><int>{}</int></value></member></struct></value>",
                    e.term
                );
            }
            o.push_str("</data></array></value>");
        }
    }
    let _ = write!(
        o,
        "</param><param><value><int>{}</int></value></param><param>",
        a.term
    );
    match a.commit_index {
        Some(c) => {
            let _ = write!(o, "<value><int>{c}</int></value>");
        }
        None => o.push_str("<value><nil></nil></value>"),
    }
    let _ = writeln!(
        o,
        "</param><param><value><boolean>{}</boolean></value></param></params></methodCall>",
        u8::from(a.all_log)
    );
    Some(o)
}

fn wire_bench(a: &WireArgs) -> Result<String, String> {
    use crate::raft::{AppendEntries, Command, Rpc, WireEntry};
    if !(a.secs > 0.0 && a.secs.is_finite()) || a.sizes.contains(&0) {
        return Err("--secs must be positive and --sizes at least 1".into());
    }
    let parse_call = |body: &str| -> Result<Vec<Value>, String> {
        dxr::MethodCall::from_xml(body)
            .map(|c| c.params)
            .map_err(|e| e.to_string())
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## raftian bench wire\n\nIn-process cost of the XML-RPC layer (dxr + quick-xml), one core.\n"
    );
    let _ = writeln!(
        o,
        "| message | entries | encode us | decode us | encode+decode us per entry | hand-written encode us (same bytes) | body bytes |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    let click = wire::call_body("bench_click", vec![Value::Integer(1_000_123)])?;
    let enc = time_per_call(a.secs, || {
        wire::call_body("bench_click", vec![Value::Integer(1_000_123)]).map(|_| ())
    })?;
    let dec = time_per_call(a.secs, || parse_call(&click).map(|_| ()))?;
    let _ = writeln!(
        o,
        "| bench_click(tag) | 1 | {enc:.1} | {dec:.1} | {:.1} | - | {} |",
        enc + dec,
        click.len()
    );
    for &n in &a.sizes {
        let rpc = Rpc::AppendEntries(AppendEntries {
            entries: Some(
                (0..n)
                    .map(|i| WireEntry {
                        term: 3,
                        index: Some(100_000 + i as u64),
                        command: Command::Int(1_000_000 + i as i32),
                    })
                    .collect(),
            ),
            term: 3,
            commit_index: Some(99_999),
            all_log: false,
        });
        let body = wire::rpc_params(&rpc).and_then(|p| wire::call_body(rpc.method(), p))?;
        let Rpc::AppendEntries(ae) = &rpc else {
            unreachable!()
        };
        let hand = hand_encode_append(ae);
        let hand_us = if hand.as_deref() == Some(body.as_str()) {
            Some(time_per_call(a.secs, || {
                hand_encode_append(ae).map(|_| ()).ok_or_else(String::new)
            })?)
        } else {
            eprintln!("bench wire: the hand-written encoder does not give wire's bytes; not timed");
            None
        };
        let enc = time_per_call(a.secs, || {
            wire::rpc_params(&rpc)
                .and_then(|p| wire::call_body(rpc.method(), p))
                .map(|_| ())
        })?;
        let dec = time_per_call(a.secs, || {
            let params = parse_call(&body)?;
            wire::append_from_params(&params)
                .map(|_| ())
                .map_err(|f| f.string().to_owned())
        })?;
        let _ = writeln!(
            o,
            "| append_entries_rpc | {n} | {enc:.1} | {dec:.1} | {:.2} | {} | {} |",
            (enc + dec) / n as f64,
            hand_us.map_or("-".into(), |h| format!("{h:.1}")),
            body.len()
        );
    }
    let reply = "<?xml version='1.0'?>\n<methodResponse><params><param><value><array><data><value><boolean>1</boolean></value><value><int>3</int></value></data></array></value></param></params></methodResponse>\n";
    let dec = time_per_call(a.secs, || wire::parse_response(reply).map(|_| ()))?;
    let _ = writeln!(
        o,
        "| [success, term] reply | - | - | {dec:.1} | - | - | {} |",
        reply.len()
    );
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_encoder_gives_the_wire_bytes() {
        use crate::raft::{AppendEntries, Command, Rpc, WireEntry};
        for (entries, commit, all_log) in [
            (None, None, false),
            (Some(vec![]), Some(0), true),
            (
                Some(vec![
                    WireEntry {
                        term: 2,
                        index: Some(7),
                        command: Command::Int(-3),
                    },
                    WireEntry {
                        term: 2,
                        index: None,
                        command: Command::Int(1_000_000),
                    },
                ]),
                Some(6),
                false,
            ),
        ] {
            let a = AppendEntries {
                entries,
                term: 2,
                commit_index: commit,
                all_log,
            };
            let rpc = Rpc::AppendEntries(a.clone());
            let body = wire::rpc_params(&rpc)
                .and_then(|p| wire::call_body(rpc.method(), p))
                .unwrap();
            assert_eq!(hand_encode_append(&a).as_deref(), Some(body.as_str()));
        }
        let text = AppendEntries {
            entries: Some(vec![WireEntry {
                term: 1,
                index: Some(0),
                command: Command::Text("x".into()),
            }]),
            term: 1,
            commit_index: None,
            all_log: false,
        };
        assert_eq!(hand_encode_append(&text), None);
    }

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
    fn content_length_is_read_and_bad_answers_refused() {
        assert_eq!(
            content_length(b"HTTP/1.1 200 OK\r\ncontent-length: 42\r\nx: y"),
            Ok(42)
        );
        assert!(content_length(b"HTTP/1.1 500 Oops\r\ncontent-length: 1").is_err());
        assert!(content_length(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked").is_err());
        assert!(content_length(b"HTTP/1.1 200 OK\r\n").is_err());
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
