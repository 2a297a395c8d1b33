//! The benchmark's node processes: temporary directory, free ports, a
//! 5-node cluster killed on drop, and its `status()` answers.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dxr::Value;
use tokio::task::JoinSet;

use super::{CommonArgs, LeaderMode, NODES, StorageKind};
use crate::wire;

/// How node processes are started.
#[derive(Clone, Debug)]
pub(super) struct Launch {
    exe: PathBuf,
    /// Every node gets a key (see `CommonArgs::keys`).
    keys: bool,
}

impl Launch {
    fn command(&self) -> Command {
        Command::new(&self.exe)
    }

    pub(super) fn path(&self) -> &Path {
        &self.exe
    }
}

/// An older raftian binary to compare with (`bench clicks --baseline`):
/// started with the same command line as this one's nodes.
pub(super) fn baseline_exe(path: &Path, common: &CommonArgs) -> Result<Launch, String> {
    if !path.is_file() {
        return Err(format!("--baseline {}: no such file", path.display()));
    }
    Ok(Launch {
        exe: path.to_path_buf(),
        keys: common.keys,
    })
}

pub(super) fn node_exe(common: &CommonArgs) -> Result<Launch, String> {
    let exe = match &common.exe {
        Some(p) if p.is_file() => p.clone(),
        Some(p) => return Err(format!("--exe {}: no such file", p.display())),
        None => std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?,
    };
    Ok(Launch {
        exe,
        keys: common.keys,
    })
}
/// A fresh directory under the system temp dir, removed on drop unless kept.
pub(super) struct TempRoot {
    pub(super) path: PathBuf,
    /// The benchmark's own traces: on tmpfs (`/dev/shm`) when there is one,
    /// so that writing them never waits on the disk the nodes persist to.
    pub(super) traces: PathBuf,
    keep: bool,
}

impl TempRoot {
    pub(super) fn new(common: &CommonArgs) -> Result<Self, String> {
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
pub(super) struct Cluster {
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
    pub(super) fn start(
        exe: &Launch,
        dir: PathBuf,
        mode: LeaderMode,
        storage: StorageKind,
        trace: Option<PathBuf>,
        tick_ms: Option<u64>,
    ) -> Result<Self, String> {
        Self::start_with(exe, dir, mode, storage, trace, tick_ms, "")
    }

    /// [`Cluster::start`] with more top-level cluster-file lines.
    pub(super) fn start_with(
        exe: &Launch,
        dir: PathBuf,
        mode: LeaderMode,
        storage: StorageKind,
        trace: Option<PathBuf>,
        tick_ms: Option<u64>,
        extra_toml: &str,
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
        toml.push_str(extra_toml);
        for (i, p) in ports.iter().enumerate() {
            let _ = write!(
                toml,
                "\n[[node]]\nid = {i}\nname = \"n{i}\"\naddr = \"127.0.0.1:{p}\"\n"
            );
            if exe.keys {
                if storage != StorageKind::Disk {
                    return Err("--keys needs --storage disk (a key lives in a data dir)".into());
                }
                let (key, _) = crate::keys::keygen(&dir.join(format!("data-n{i}")))?;
                let _ = writeln!(toml, "public_key = \"{}\"", crate::keys::public_b64(&key));
            }
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

    pub(super) fn trace_path(&self, i: usize) -> Option<PathBuf> {
        Some(self.trace.as_ref()?.join(format!("n{i}.trace")))
    }

    pub(super) fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }

    pub(super) fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].child.is_some())
            .collect()
    }

    pub(super) fn spawn(&mut self, i: usize) -> Result<(), String> {
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
            StorageKind::Mem => cmd.args(["--ephemeral", "--unsafe-ephemeral"]),
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

    /// SIGTERM node `i` (a clean stop); `kill` reaps it afterwards.
    pub(super) fn sigterm(&self, i: usize) {
        if let Some(c) = &self.nodes[i].child {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// SIGKILL node `i` and reap it.
    pub(super) fn kill(&mut self, i: usize) {
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
    pub(super) fn terminate_all(&mut self) {
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
    pub(super) async fn statuses(&self, which: &[usize]) -> Vec<(usize, Result<Status, String>)> {
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
    pub(super) async fn wait_settled(
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
    if ls.total_len() < min_len {
        return Err(format!(
            "leader n{l} has {} entries, waiting for {min_len}",
            ls.total_len()
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
pub(super) struct Status {
    mode: String,
    pub(super) term: u64,
    leader_id: Option<u64>,
    pub(super) commit_index: Option<u64>,
    last_applied: Option<u64>,
    pub(super) log_length: u64,
    /// Where the node's snapshot stands: its log holds what follows.
    pub(super) snapshot_index: Option<u64>,
}

impl Status {
    pub(super) fn is_leader(&self) -> bool {
        self.mode == "LEADER"
    }

    /// Entries ever in the log: compacted and held (the benchmark's logs
    /// start at index 0).
    pub(super) fn total_len(&self) -> u64 {
        self.snapshot_index.map_or(0, |s| s + 1) + self.log_length
    }

    /// Index of the last entry, held or compacted.
    pub(super) fn last_index(&self) -> Option<u64> {
        self.total_len().checked_sub(1)
    }

    pub(super) fn last_applied_index(&self) -> Option<u64> {
        self.last_applied
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
    let num = |k: &str| wire::status_count(&m, k);
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
        snapshot_index: num("snapshot_index")?,
    })
}
