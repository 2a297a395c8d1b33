//! Shared helpers for multi-process tests: free ports, a cluster of node
//! processes that is always killed, a tiny XML-RPC client, and waiting on
//! conditions with deadlines.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dxr::Value;

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Call `method` on `addr` (host:port); Ok(value) or Err(fault or I/O text).
pub fn call(addr: &str, method: &str, params: Vec<Value>) -> Result<Value, String> {
    call_timeout(addr, method, params, Duration::from_secs(5))
}

/// [`call`] that gives up waiting for the answer after `timeout`.
pub fn call_timeout(
    addr: &str,
    method: &str,
    params: Vec<Value>,
    timeout: Duration,
) -> Result<Value, String> {
    let body = raftian::wire::call_body(method, params)?;
    post(addr, &body, &[], timeout)
}

/// POST an XML-RPC `body` with extra headers; the answer as [`call`] gives it.
pub fn post_with(addr: &str, body: &str, headers: &[(&str, String)]) -> Result<Value, String> {
    post(addr, body, headers, Duration::from_secs(5))
}

fn post(
    addr: &str,
    body: &str,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<Value, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).ok();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "POST /RPC2 HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or("no body")?;
    match raftian::wire::parse_response(body)? {
        Ok(v) => Ok(v),
        Err(f) => Err(format!("fault {}: {}", f.code(), f.string())),
    }
}

/// `status()` as a map of member name to value.
pub fn status(addr: &str) -> Result<BTreeMap<String, Value>, String> {
    match call(addr, "status", vec![])? {
        Value::Struct(m) => Ok(m),
        other => Err(format!("status is not a struct: {other:?}")),
    }
}

pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(i64::from(*i)),
        _ => None,
    }
}

pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// Poll `f` until it returns Some or the deadline passes (then panic with `what`).
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > end {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A cluster file with `n` nodes on free ports.
pub fn cluster_toml(n: usize, static_leader: bool, paper_logs: bool) -> (String, Vec<String>) {
    let mut s = String::new();
    if static_leader {
        s.push_str("leader = 0\n");
    }
    let mut addrs = Vec::new();
    for id in 0..n {
        let addr = format!("127.0.0.1:{}", free_port());
        let name = if id == 0 {
            "raftian".to_owned()
        } else {
            format!("bob{id}")
        };
        s.push_str(&format!(
            "[[node]]\nid = {id}\nname = \"{name}\"\naddr = \"{addr}\"\n"
        ));
        if paper_logs {
            let (first, cmd) = if id == 0 { (4, 5) } else { (0, 9) };
            let log: Vec<String> = (first..first + 4)
                .map(|i| format!("[1, {i}, {cmd}]"))
                .collect();
            s.push_str(&format!("log = [{}]\n", log.join(", ")));
        }
        addrs.push(addr);
    }
    (s, addrs)
}

/// Node processes, killed when dropped.
pub struct Cluster {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub addrs: Vec<String>,
    pub children: Vec<Option<Child>>,
    pub extra_args: Vec<String>,
    /// How often each node was started; with `traces`, start k of node i
    /// writes its apply trace to `trace<i>-<k>` (and serves bench_click).
    pub starts: Vec<usize>,
    pub traces: bool,
}

impl Cluster {
    pub fn start(dir: &Path, toml: &str, addrs: Vec<String>, extra_args: &[&str]) -> Cluster {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("cluster.toml");
        std::fs::write(&config, toml).unwrap();
        let mut c = Cluster {
            dir: dir.to_owned(),
            config,
            children: addrs.iter().map(|_| None).collect(),
            starts: vec![0; addrs.len()],
            addrs,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            traces: extra_args.contains(&"--traces"),
        };
        c.extra_args.retain(|a| a != "--traces");
        for id in 0..c.addrs.len() {
            c.start_node(id);
        }
        for a in c.addrs.clone() {
            wait_for(
                &format!("{a} to answer status()"),
                Duration::from_secs(20),
                || status(&a).ok(),
            );
        }
        c
    }

    pub fn start_node(&mut self, id: usize) {
        self.starts[id] += 1;
        let out = std::fs::File::create(self.dir.join(format!("node{id}.out"))).unwrap();
        let mut trace = Vec::new();
        if self.traces {
            trace.push(std::ffi::OsString::from("--apply-trace"));
            trace.push(self.trace_path(id, self.starts[id]).into());
        }
        let child = Command::new(env!("CARGO_BIN_EXE_raftian"))
            .arg("node")
            .arg("--config")
            .arg(&self.config)
            .arg("--id")
            .arg(id.to_string())
            .arg("--headless")
            .arg("--log-dir")
            .arg(self.dir.join("logs"))
            .arg("--data-dir")
            .arg(self.dir.join(format!("data{id}")))
            .args(&self.extra_args)
            .args(&trace)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn raftian node");
        self.children[id] = Some(child);
    }

    /// SIGKILL one node.
    pub fn kill(&mut self, id: usize) {
        if let Some(mut c) = self.children[id].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM every node and wait: a clean shutdown writes the final log line.
    pub fn stop_all(&mut self) {
        for c in self.children.iter_mut().flatten() {
            unsafe_sigterm(c.id());
        }
        for slot in self.children.iter_mut() {
            if let Some(mut c) = slot.take() {
                let end = Instant::now() + Duration::from_secs(10);
                loop {
                    if c.try_wait().ok().flatten().is_some() {
                        break;
                    }
                    if Instant::now() > end {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// The last `log = ` line of each node's newest log file, by name.
    pub fn final_log_lines(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let logs = self.dir.join("logs");
        for d in std::fs::read_dir(&logs).unwrap() {
            let d = d.unwrap().path();
            let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
                .unwrap()
                .map(|f| f.unwrap().path())
                .collect();
            files.sort();
            let text = std::fs::read_to_string(files.last().unwrap()).unwrap();
            let last = text
                .lines()
                .rfind(|l| l.starts_with("log = "))
                .unwrap_or("")
                .to_owned();
            out.insert(d.file_name().unwrap().to_string_lossy().into_owned(), last);
        }
        out
    }

    /// The apply trace of start `k` of node `id` (see `traces`).
    pub fn trace_path(&self, id: usize, k: usize) -> PathBuf {
        self.dir.join(format!("trace{id}-{k}"))
    }

    pub fn output(&self, id: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("node{id}.out"))).unwrap_or_default()
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A fresh temporary directory under target/ (kept for inspection).
pub fn temp_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A child process, SIGKILLed and reaped when dropped (also on a panic).
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Wait up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.0.try_wait() {
                return Some(s);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run the raftian binary to completion (stdin closed).
pub fn run_raftian(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_raftian"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run raftian")
}
