//! Mixed clusters on loopback: the real `raftian` binary and
//! `tests/py/pynode.py` (a stand-in for the original Python nodes that keeps
//! their wire behaviour and quirks), one process per node.
//!
//! (a) Python leader -> Rust follower with an empty log;
//! (b) Python leader -> Rust follower with the bobs' divergent log (walk back
//!     to `all_log`);
//! (c) the Python leader's nil-entry heartbeats let a Rust follower apply
//!     without another command (a Python follower does not: it faults);
//! (d) Rust leader -> Python followers: nothing crashes or wedges, clicks
//!     replicate and apply everywhere;
//! (e) a Rust follower's click goes through a Python leader and comes back;
//! (f) a Python follower's click goes through a Rust leader and comes back.
//!
//! Every scenario ends by comparing the logs of all nodes, in the original's
//! `log = [Raft.Entry(...), ...]` form (Rust: the log file; Python:
//! `test_log_line()`). Waits poll with deadlines; every process is killed by
//! a Drop guard. The scenarios run one at a time (2 cores, 3 ms heartbeats).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dxr::Value;
use raftian::wire;

const TIMEOUT: Duration = Duration::from_secs(30);
const PYNODE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/pynode.py");
const RAFTIAN: &str = env!("CARGO_BIN_EXE_raftian");

const LEADER_SEED: [(u64, u64, i32); 4] = [(1, 4, 5), (1, 5, 5), (1, 6, 5), (1, 7, 5)];
const BOBS_SEED: [(u64, u64, i32); 4] = [(1, 0, 9), (1, 1, 9), (1, 2, 9), (1, 3, 9)];

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

// ------------------------------------------------------------ processes

/// A scratch directory, removed at the end unless the test failed (or
/// `RAFTIAN_KEEP_TEST_DIRS` is set).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let p = std::env::temp_dir().join(format!(
            "raftian-interop-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).expect("create a scratch dir");
        ScratchDir(p)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("RAFTIAN_KEEP_TEST_DIRS").is_some() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Py,
    Rust,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Seed {
    /// The paper's: 4..7 (command 5) for the leader, 0..3 (command 9) for bobs.
    Paper,
    Empty,
}

#[derive(Clone, Copy, Debug)]
struct Spec {
    id: u64,
    kind: Kind,
    seed: Seed,
}

fn py(id: u64) -> Spec {
    Spec {
        id,
        kind: Kind::Py,
        seed: Seed::Paper,
    }
}

fn rust(id: u64) -> Spec {
    Spec {
        id,
        kind: Kind::Rust,
        seed: Seed::Paper,
    }
}

fn name_of(id: u64) -> String {
    if id == 0 {
        "raftian".into()
    } else {
        format!("bob{id}")
    }
}

/// How to (re)start a node's process; output is appended to two files.
struct Launch {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Launch {
    fn spawn(&self) -> Child {
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(open(&self.stdout))
            .stderr(open(&self.stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.program))
    }
}

/// One node's process; killed when dropped.
struct Node {
    id: u64,
    name: String,
    kind: Kind,
    addr: SocketAddr,
    child: Mutex<Child>,
    launch: Launch,
    logs: PathBuf,
    /// Killed on purpose (not a crash).
    down: std::sync::atomic::AtomicBool,
}

impl Drop for Node {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The fields both kinds of node report (Python's `last_applied = -1` is None).
#[derive(Debug, PartialEq)]
struct View {
    log_length: i64,
    commit_index: Option<i64>,
    last_applied: Option<i64>,
    hp: Vec<i64>,
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v {
        Some(Value::Integer(i)) => Some(i64::from(*i)),
        _ => None,
    }
}

impl Node {
    /// The process ended by itself (a crash), not by `kill`.
    fn exited(&self) -> Option<ExitStatus> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        self.child().try_wait().ok().flatten()
    }

    fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, String> {
        let body = wire::call_body(method, params)?;
        let text = http_post(self.addr, &body)?;
        match wire::parse_response(&text)? {
            Ok(v) => Ok(v),
            Err(f) => Err(format!(
                "{method} on {}: fault {}: {}",
                self.name,
                f.code(),
                f.string()
            )),
        }
    }

    fn view(&self) -> Result<View, String> {
        let method = match self.kind {
            Kind::Rust => "status",
            Kind::Py => "test_status",
        };
        let Value::Struct(m) = self.call(method, vec![])? else {
            return Err(format!("{method} on {} is not a struct", self.name));
        };
        let hp = match m.get("hp") {
            Some(Value::Array(a)) => a.iter().filter_map(|v| int(Some(v))).collect(),
            _ => return Err("no hp".into()),
        };
        Ok(View {
            log_length: int(m.get("log_length")).ok_or("no log_length")?,
            commit_index: int(m.get("commit_index")),
            last_applied: int(m.get("last_applied")).filter(|a| *a >= 0),
            hp,
        })
    }

    fn click(&self, player: i32) -> Result<(), String> {
        let method = match self.kind {
            Kind::Rust => "click",
            Kind::Py => "test_click",
        };
        self.call(method, vec![Value::Integer(player)]).map(|_| ())
    }

    /// The node's whole log as the original writes it.
    fn log_line(&self) -> Result<String, String> {
        match self.kind {
            Kind::Py => match self.call("test_log_line", vec![])? {
                Value::String(s) => Ok(s),
                other => Err(format!("test_log_line: {other:?}")),
            },
            Kind::Rust => last_log_line(&self.logs, &self.name),
        }
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send a signal (STOP, CONT, ...) to the process.
    fn signal(&self, sig: &str) {
        let pid = self.child().id().to_string();
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(&pid)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} {pid} ({}) failed", self.name);
    }

    fn kill(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut c = self.child();
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Start the process again, as it was first started (seeded log, no memory).
    fn restart(&self) {
        self.kill();
        *self.child() = self.launch.spawn();
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.launch.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }
}

/// The last `log = ` line of the newest log file of `name`.
fn last_log_line(logs: &Path, name: &str) -> Result<String, String> {
    let newest = newest_log_file(logs, name)?;
    let text = std::fs::read_to_string(&newest).map_err(|e| e.to_string())?;
    text.lines()
        .rev()
        .find(|l| l.starts_with("log = "))
        .map(str::to_owned)
        .ok_or_else(|| format!("no log line in {}", newest.display()))
}

fn newest_log_file(logs: &Path, name: &str) -> Result<PathBuf, String> {
    let dir = logs.join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(&format!(".{name}.log")))
        .collect();
    files.sort();
    files
        .pop()
        .ok_or_else(|| format!("no log file in {}", dir.display()))
}

/// POST an XML-RPC body; the response body (by Content-Length, or to EOF).
fn http_post(addr: SocketAddr, body: &str) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST /RPC2 HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body.as_bytes()))
        .map_err(|e| format!("write to {addr}: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|l| buf.len() >= p + 4 + l) {
                let l = len.unwrap_or(0);
                return String::from_utf8(buf[p + 4..p + 4 + l].to_vec())
                    .map_err(|e| e.to_string());
            }
        }
        let n = s
            .read(&mut chunk)
            .map_err(|e| format!("read from {addr}: {e}"))?;
        if n == 0 {
            let p = buf
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .ok_or_else(|| format!("{addr} closed before answering"))?;
            return String::from_utf8(buf[p + 4..].to_vec()).map_err(|e| e.to_string());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Distinct free loopback ports (all bound at once, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

fn seed_toml(seed: &[(u64, u64, i32)]) -> String {
    let items: Vec<String> = seed
        .iter()
        .map(|(t, i, c)| format!("[{t}, {i}, {c}]"))
        .collect();
    format!("[{}]", items.join(", "))
}

/// The original's `log = [...]` line for these entries.
fn log_line_of(entries: &[(u64, u64, i32)]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|(t, i, c)| format!("Raft.Entry(term={t}, index={i}, command={c})"))
        .collect();
    format!("log = [{}]", items.join(", "))
}

/// The leader's seeded log followed by these clicks (term 1, index 8 on).
fn leader_log_with(clicks: &[i32]) -> String {
    let mut es: Vec<(u64, u64, i32)> = LEADER_SEED.to_vec();
    for (n, c) in clicks.iter().enumerate() {
        es.push((1, 8 + n as u64, *c));
    }
    log_line_of(&es)
}

struct Cluster {
    // Declared first: the processes die before the directory goes.
    nodes: Vec<Node>,
    dir: ScratchDir,
}

impl Cluster {
    /// Start the nodes (node 0 is the static leader) and wait until each answers.
    fn start(tag: &str, specs: &[Spec]) -> Cluster {
        let dir = ScratchDir::new(tag);
        let logs = dir.0.join("logs");
        let ports = free_ports(specs.len());
        let port_of = |id: u64| ports[specs.iter().position(|s| s.id == id).unwrap()];
        let mut toml = String::from("leader = 0\n");
        for s in specs {
            toml.push_str(&format!(
                "[[node]]\nid = {}\nname = \"{}\"\naddr = \"127.0.0.1:{}\"\n",
                s.id,
                name_of(s.id),
                port_of(s.id)
            ));
            if s.kind == Kind::Rust && s.seed == Seed::Paper {
                let seed = if s.id == 0 { &LEADER_SEED } else { &BOBS_SEED };
                toml.push_str(&format!("log = {}\n", seed_toml(seed)));
            }
        }
        let cluster_file = dir.0.join("cluster.toml");
        std::fs::write(&cluster_file, toml).unwrap();

        let mut nodes = Vec::new();
        for s in specs {
            let name = name_of(s.id);
            let port = port_of(s.id);
            let os = |v: &str| OsString::from(v);
            let (program, args, env) = match s.kind {
                Kind::Rust => (
                    OsString::from(RAFTIAN),
                    vec![
                        os("node"),
                        os("--headless"),
                        os("--ephemeral"),
                        os("--config"),
                        cluster_file.clone().into(),
                        os("--id"),
                        os(&s.id.to_string()),
                        os("--log-dir"),
                        logs.clone().into(),
                    ],
                    vec![(os("RUST_LOG"), os("info,raftian::raft::core=debug"))],
                ),
                Kind::Py => {
                    let peers: Vec<String> = specs
                        .iter()
                        .filter(|o| o.id != s.id)
                        .map(|o| format!("{}={}", o.id, port_of(o.id)))
                        .collect();
                    let role = if s.id == 0 { "leader" } else { "follower" };
                    let seed = if s.seed == Seed::Paper {
                        "paper"
                    } else {
                        "empty"
                    };
                    let args = [
                        PYNODE,
                        "--role",
                        role,
                        "--id",
                        &s.id.to_string(),
                        "--port",
                        &port.to_string(),
                        "--peers",
                        &peers.join(","),
                        "--leader-id",
                        "0",
                        "--seed-log",
                        seed,
                    ];
                    let mut args: Vec<OsString> = args.iter().map(|a| os(a)).collect();
                    args.push(os("--log-dir"));
                    args.push(logs.clone().into());
                    (os("python3"), args, vec![])
                }
            };
            let launch = Launch {
                program,
                args,
                env,
                stdout: dir.0.join(format!("{name}.stdout")),
                stderr: dir.0.join(format!("{name}.stderr")),
            };
            let child = launch.spawn();
            nodes.push(Node {
                id: s.id,
                name,
                kind: s.kind,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                child: Mutex::new(child),
                launch,
                logs: logs.clone(),
                down: Default::default(),
            });
        }
        let c = Cluster { nodes, dir };
        c.wait("every node to answer", |c| {
            c.nodes.iter().all(|n| n.view().is_ok()).then_some(())
        });
        c
    }

    fn node(&self, id: u64) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .expect("no such node")
    }

    fn diagnostics(&self) -> String {
        let mut s = format!("scratch dir: {}\n", self.dir.0.display());
        for n in &self.nodes {
            s.push_str(&format!(
                "--- {} ({:?}) exited: {:?}\n    view: {:?}\n    log: {:?}\n    stderr tail:\n{}\n",
                n.name,
                n.kind,
                n.exited(),
                n.view(),
                n.log_line(),
                n.stderr_tail()
            ));
        }
        s
    }

    /// Poll `f` until it gives a value; fail at once if a node died.
    fn wait<T>(&self, what: &str, mut f: impl FnMut(&Cluster) -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(t) = f(self) {
                return t;
            }
            if let Some(n) = self.nodes.iter().find(|n| n.exited().is_some()) {
                panic!(
                    "{} exited while waiting for {what}\n{}",
                    n.name,
                    self.diagnostics()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {TIMEOUT:?} waiting for {what}\n{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn click(&self, id: u64, player: i32) {
        let n = self.node(id);
        // A Python node busy replicating answers late: retry until the deadline.
        self.wait(&format!("{} to take click {player}", n.name), |_| {
            n.click(player).ok()
        });
    }

    /// Wait until every node's log is `want`, then compare them all.
    fn wait_logs(&self, want: &str) {
        self.wait(&format!("every log to be {want}"), |c| {
            c.nodes
                .iter()
                .all(|n| n.log_line().is_ok_and(|l| l == want))
                .then_some(())
        });
        let lines: Vec<(String, String)> = self
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.log_line().unwrap()))
            .collect();
        for (name, line) in &lines {
            assert_eq!(
                line, &lines[0].1,
                "{name}'s log differs from {}'s",
                lines[0].0
            );
        }
    }

    fn wait_view(&self, id: u64, what: &str, ok: impl Fn(&View) -> bool) -> View {
        let n = self.node(id);
        self.wait(&format!("{}: {what}", n.name), |_| {
            n.view().ok().filter(|v| ok(v))
        })
    }

    /// Every node is alive and answers (none crashed or wedged).
    fn assert_all_answer(&self) {
        for n in &self.nodes {
            assert!(
                n.exited().is_none(),
                "{} died\n{}",
                n.name,
                self.diagnostics()
            );
            n.view().unwrap_or_else(|e| {
                panic!("{} does not answer: {e}\n{}", n.name, self.diagnostics())
            });
        }
    }
}

fn pynode_log_text(c: &Cluster, name: &str) -> String {
    let f = newest_log_file(&c.dir.0.join("logs"), name).unwrap();
    std::fs::read_to_string(f).unwrap()
}

// ------------------------------------------------------------ scenarios

/// (a) The Python leader probes `is_log_empty()`, gets true, and sends its
/// whole log plus the batch (4,5,6,7,7,8, all_log false): the Rust follower
/// takes it as 4..8 and applies it once a heartbeat brings the commit index.
#[test]
fn a_python_leader_fills_an_empty_rust_follower() {
    let _serial = serial();
    let c = Cluster::start(
        "a",
        &[
            py(0),
            Spec {
                seed: Seed::Empty,
                ..rust(1)
            },
        ],
    );
    assert_eq!(c.node(1).view().unwrap().log_length, 0);
    c.click(0, 1);
    c.wait_logs(&leader_log_with(&[1]));
    let v = c.wait_view(1, "entry 8 applied", |v| v.last_applied == Some(8));
    assert_eq!(v.hp, vec![70, 100, 100, 100]);
    assert_eq!(v.log_length, 5, "the repeated entry 7 is stored once");
    assert_eq!(c.node(0).view().unwrap().commit_index, Some(8));
    c.assert_all_answer();
}

/// (b) The bobs' seeded log (0..3) has none of the leader's entries: the
/// Python leader walks back one entry at a time until the batch starts at
/// its first entry (all_log), and the Rust follower takes the leader's log.
#[test]
fn b_python_leader_walks_back_to_all_log_on_a_rust_follower() {
    let _serial = serial();
    let c = Cluster::start("b", &[py(0), rust(1)]);
    c.click(0, 2);
    c.wait_logs(&leader_log_with(&[2]));
    let text = pynode_log_text(&c, "raftian");
    for step in [
        "log iterator = -3",
        "log iterator = -4",
        "log iterator = -5",
    ] {
        assert!(text.contains(step), "no '{step}' in the leader's log file");
    }
    // The next click appends normally: [8, 9] with commit 8.
    c.click(0, 3);
    c.wait_logs(&leader_log_with(&[2, 3]));
    let v = c.wait_view(1, "entry 9 applied", |v| v.last_applied == Some(9));
    assert_eq!(v.hp, vec![100, 70, 70, 100]);
    c.assert_all_answer();
}

/// (c) After one click and nothing else, the Rust follower applies the
/// entry thanks to the leader's 3 ms nil-entry heartbeats; the Python
/// follower, which faults on every heartbeat, has no commit index yet
/// (the paper's followers apply one command late).
#[test]
fn c_python_heartbeats_let_a_rust_follower_apply() {
    let _serial = serial();
    let c = Cluster::start("c", &[py(0), rust(1), py(2)]);
    c.click(0, 4);
    c.wait_logs(&leader_log_with(&[4]));
    let v = c.wait_view(1, "entry 8 applied", |v| v.last_applied == Some(8));
    assert_eq!(v.commit_index, Some(8));
    assert_eq!(v.hp, vec![100, 100, 100, 70]);
    let bob2 = c.node(2).view().unwrap();
    assert_eq!(
        bob2.commit_index, None,
        "a Python follower ignores heartbeats"
    );
    assert_eq!(bob2.last_applied, None);
    assert_eq!(bob2.hp, vec![100, 100, 100, 100]);
    c.assert_all_answer();
}

/// (d) A Rust leader with Python followers (seeded divergent logs) and a
/// Rust follower: no heartbeat fault, no commit index the Python followers
/// already have or cannot apply; every click replicates and applies.
#[test]
fn d_rust_leader_drives_python_followers() {
    let _serial = serial();
    let c = Cluster::start("d", &[rust(0), py(1), py(2), rust(3)]);
    let clicks = [1, 2, 3, 4, 1, 2];
    for p in &clicks[..3] {
        c.click(0, *p);
    }
    c.wait_logs(&leader_log_with(&clicks[..3]));
    // The rest one at a time, each waiting for the one before to be appended.
    for (i, p) in clicks.iter().enumerate().skip(3) {
        c.click(0, *p);
        c.wait_view(0, "the click appended", |v| v.log_length > 4 + i as i64);
    }
    c.wait_logs(&leader_log_with(&clicks));
    let last = 7 + clicks.len() as i64;
    for id in 0..4 {
        let v = c.wait_view(id, "every click applied", |v| v.last_applied == Some(last));
        assert_eq!(v.hp, vec![40, 40, 70, 70], "node {id}");
    }
    c.assert_all_answer();
}

/// (e) A click on a Rust follower is forwarded (nil index) to the Python
/// leader, which replicates it; it comes back committed and applied.
#[test]
fn e_rust_follower_click_through_python_leader() {
    let _serial = serial();
    let c = Cluster::start("e", &[py(0), rust(1), py(2)]);
    c.click(1, 4);
    let v = c.wait_view(1, "its click applied", |v| v.hp == [100, 100, 100, 70]);
    assert_eq!(v.last_applied, Some(8));
    c.wait_logs(&leader_log_with(&[4]));
    assert_eq!(c.node(1).view().unwrap().log_length, 5);
    c.assert_all_answer();
}

/// (f) A click on a Python follower is forwarded to the Rust leader, which
/// appends and replicates it; it comes back committed and applied there
/// (and a second one from the other Python follower).
#[test]
fn f_python_follower_click_through_rust_leader() {
    let _serial = serial();
    let c = Cluster::start("f", &[rust(0), py(1), py(2)]);
    c.click(1, 3);
    let v = c.wait_view(1, "its click applied", |v| v.hp == [100, 100, 70, 100]);
    assert_eq!(v.last_applied, Some(8));
    c.wait_logs(&leader_log_with(&[3]));
    c.click(2, 3);
    c.wait_view(2, "the second click applied", |v| {
        v.hp == [100, 100, 40, 100]
    });
    c.wait_logs(&leader_log_with(&[3, 3]));
    for id in 0..3 {
        let v = c.wait_view(id, "both clicks applied", |v| v.last_applied == Some(9));
        assert_eq!(v.hp, vec![100, 100, 40, 100], "node {id}");
    }
    c.assert_all_answer();
}

// ------------------------------------------------ regressions found by these tests

/// (g) A Python follower that acked entry 8 dies before it hears commit 8;
/// the commit forms while it is down; it restarts with its seeded log. The
/// Rust leader's next append to it carries commit 8 with a batch it will
/// refuse: the original takes the commit index before looking at the
/// entries, then its apply loop runs off its 0..3 log and its server dies.
/// (Once a core bug; fixed.)
#[test]
fn g_restarted_python_follower_survives_a_rust_leader() {
    let _serial = serial();
    let c = Cluster::start("g", &[rust(0), py(1), py(2), py(3)]);
    c.wait_logs(&leader_log_with(&[]));
    c.wait_view(1, "the seeded entries committed", |v| {
        v.commit_index == Some(7)
    });
    // Without bob2 and bob3 the leader cannot commit entry 8.
    c.node(2).signal("STOP");
    c.node(3).signal("STOP");
    c.click(0, 1);
    c.wait_view(1, "entry 8 acked", |v| v.log_length == 5);
    assert_eq!(c.node(0).view().unwrap().commit_index, Some(7));
    let failures = |c: &Cluster| {
        let err = std::fs::read_to_string(&c.node(0).launch.stderr).unwrap_or_default();
        err.matches("node 1 unreachable").count() + err.matches("on node 1 failed").count()
    };
    let before = failures(&c);
    c.node(1).kill();
    // The leader must see bob1 gone before the commit forms.
    c.wait("the leader to notice bob1 is gone", |c| {
        (failures(c) > before).then_some(())
    });
    c.node(2).signal("CONT");
    c.node(3).signal("CONT");
    c.wait_view(0, "entry 8 committed", |v| v.commit_index == Some(8));
    c.node(1).restart();
    c.wait_logs(&leader_log_with(&[1]));
    c.wait_view(1, "entry 8 applied after the restart", |v| {
        v.hp == [70, 100, 100, 100]
    });
    c.assert_all_answer();
}

/// (h) A click forwarded by a Rust follower to a Python leader that is busy
/// (blocked replicating to a stopped follower, as the original blocks) times
/// out and is sent again; the leader later serves every copy from its
/// listen queue, so one click becomes several entries. The original
/// follower waits without a timeout and delivers it once.
/// (Once a core bug; fixed.)
#[test]
fn h_forwarded_click_is_not_duplicated_by_a_busy_python_leader() {
    let _serial = serial();
    let c = Cluster::start("h", &[py(0), rust(1), py(2)]);
    c.node(2).signal("STOP");
    c.click(0, 1);
    // bob1 has entry 8: the leader now waits on bob2 for good.
    c.wait_view(1, "entry 8 on bob1", |v| v.log_length == 5);
    c.node(1).click(4).expect("click on bob1");
    // The forward times out while the original leader is stuck; bob1 must
    // not send it again (that leader cannot drop a copy).
    c.wait("bob1's forward to time out", |c| {
        let err = std::fs::read_to_string(&c.node(1).launch.stderr).unwrap_or_default();
        err.contains("not resent").then_some(())
    });
    c.node(2).signal("CONT");
    c.wait("the leader to drain its queue", |c| {
        let Ok(Value::Struct(m)) = c.node(0).call("test_status", vec![]) else {
            return None;
        };
        let bob1 = c.node(1).view().ok()?;
        (m.get("pending") == Some(&Value::Integer(0))
            && int(m.get("log_length")).is_some_and(|n| n >= 6)
            && bob1.last_applied.is_some()
            && int(m.get("commit_index")) == bob1.last_applied)
            .then_some(())
    });
    assert_eq!(
        c.node(0).log_line().unwrap(),
        leader_log_with(&[1, 4]),
        "one click, one entry"
    );
}
