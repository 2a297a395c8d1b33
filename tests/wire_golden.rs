//! Wire compatibility with the original Python Raftian, checked against the
//! golden captures in `../shared/reference/wire` (whole HTTP exchanges of the
//! original five-node cluster) and against Python's own `xmlrpc.client`:
//!
//! - every captured request and response parses, to exactly the values the
//!   original sent (`append_from_params`, `parse_response`, `reply_from_value`);
//! - Python parses every request body we build (`call_body`, and the nodes'
//!   byte-identical fast `rpc_body`), nil entries, nil index and nil commit
//!   index included, to the values we meant;
//! - a real Rust node fed the captured request bytes over raw HTTP answers
//!   what the protocol needs, in bodies Python parses.
//!
//! Needs `python3` (3.11, stdlib only) on the PATH.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dxr::{Fault, MethodCall, Value};
use raftian::config::ClusterConfig;
use raftian::node::{self, NodeOptions};
use raftian::raft::{
    AppendEntries, AppendReply, Command as Cmd, Reply, Rpc, VoteRequest, WireEntry,
};
use raftian::wire;

// ---------------------------------------------------------------- captures

fn wire_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/wire")
}

/// A captured HTTP message: head (request/status line and headers) and body.
struct Capture {
    head: String,
    body: String,
}

impl Capture {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

fn split_http(bytes: &[u8]) -> Capture {
    let text = String::from_utf8(bytes.to_vec()).expect("captures are UTF-8");
    match text.split_once("\r\n\r\n") {
        Some((head, body)) => Capture {
            head: head.to_owned(),
            body: body.to_owned(),
        },
        None => Capture {
            head: String::new(),
            body: text,
        },
    }
}

fn capture(name: &str) -> Capture {
    let path = wire_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    split_http(&bytes)
}

fn request(name: &str) -> MethodCall<'static> {
    let c = capture(name);
    MethodCall::from_xml(&c.body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn append_request(name: &str) -> AppendEntries {
    let call = request(name);
    assert_eq!(call.name, "append_entries_rpc", "{name}");
    wire::append_from_params(&call.params).unwrap_or_else(|f| panic!("{name}: {f:?}"))
}

fn response(name: &str) -> Result<Value, Fault> {
    let c = capture(name);
    wire::parse_response(&c.body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn entry(term: u64, index: Option<u64>, command: i32) -> WireEntry {
    WireEntry {
        term,
        index,
        command: Cmd::Int(command),
        client: None,
        sig: None,
    }
}

fn any_append() -> Rpc {
    Rpc::AppendEntries(AppendEntries {
        entries: None,
        term: 1,
        commit_index: None,
        all_log: false,
        proof: None,
    })
}

const ALL_CAPTURES: [&str; 14] = [
    "append_entries_to8000_true_withcommitindex.request.bin",
    "append_entries_to8000_true_withcommitindex.response.bin",
    "append_entries_to8001_false.request.bin",
    "append_entries_to8001_false.response.bin",
    "append_entries_to8001_true_alllog.request.bin",
    "append_entries_to8001_true_alllog.response.bin",
    "append_entries_to8001_true_withcommitindex.request.bin",
    "append_entries_to8001_true_withcommitindex.response.bin",
    "heartbeat_to8001_fault.request.bin",
    "heartbeat_to8001_fault.response.bin",
    "is_log_empty_to8001_false.request.bin",
    "is_log_empty_to8001_false.response.bin",
    "python_client_append_entries.request.xml",
    "python_server_true_1.response.xml",
];

#[test]
fn every_capture_parses() {
    let mut seen: Vec<String> = std::fs::read_dir(wire_dir())
        .expect("the golden captures (../shared/reference/wire)")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    seen.sort();
    for name in ALL_CAPTURES {
        assert!(seen.iter().any(|s| s == name), "missing capture {name}");
    }
    for name in &seen {
        let c = capture(name);
        if let Some(len) = c.header("Content-Length") {
            assert_eq!(len.parse::<usize>().unwrap(), c.body.len(), "{name}");
        }
        if name.contains(".request.") {
            if name.ends_with(".bin") {
                assert!(c.head.starts_with("POST /RPC2 HTTP/1.1"), "{name}");
            }
            let call = MethodCall::from_xml(&c.body).unwrap_or_else(|e| panic!("{name}: {e}"));
            match call.name.as_ref() {
                "append_entries_rpc" => {
                    wire::append_from_params(&call.params)
                        .unwrap_or_else(|f| panic!("{name}: {f:?}"));
                }
                "is_log_empty" => assert!(call.params.is_empty(), "{name}"),
                other => panic!("{name}: unexpected method {other}"),
            }
        } else if name.contains(".response.") {
            if name.ends_with(".bin") {
                assert!(c.head.starts_with("HTTP/1.0 200 OK"), "{name}");
            }
            let _ = wire::parse_response(&c.body).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            panic!("capture {name} is neither a request nor a response");
        }
    }
}

#[test]
fn captured_requests_decode_to_exact_values() {
    assert_eq!(
        append_request("append_entries_to8001_false.request.bin"),
        AppendEntries {
            entries: Some(vec![entry(1, Some(7), 5), entry(1, Some(8), 1)]),
            term: 1,
            commit_index: None,
            all_log: false,
            proof: None,
        }
    );
    assert_eq!(
        append_request("append_entries_to8001_true_alllog.request.bin"),
        AppendEntries {
            entries: Some(vec![
                entry(1, Some(4), 5),
                entry(1, Some(5), 5),
                entry(1, Some(6), 5),
                entry(1, Some(7), 5),
                entry(1, Some(8), 1),
            ]),
            term: 1,
            commit_index: None,
            all_log: true,
            proof: None,
        }
    );
    assert_eq!(
        append_request("append_entries_to8001_true_withcommitindex.request.bin"),
        AppendEntries {
            entries: Some(vec![entry(1, Some(8), 1), entry(1, Some(9), 2)]),
            term: 1,
            commit_index: Some(8),
            all_log: false,
            proof: None,
        }
    );
    // A follower forwarding a click: the entry's index is nil.
    assert_eq!(
        append_request("append_entries_to8000_true_withcommitindex.request.bin"),
        AppendEntries {
            entries: Some(vec![entry(1, None, 1)]),
            term: 1,
            commit_index: Some(9),
            all_log: false,
            proof: None,
        }
    );
    assert_eq!(
        append_request("heartbeat_to8001_fault.request.bin"),
        AppendEntries {
            entries: None,
            term: 1,
            commit_index: None,
            all_log: false,
            proof: None,
        }
    );
    assert_eq!(
        append_request("python_client_append_entries.request.xml"),
        AppendEntries {
            entries: Some(vec![entry(1, Some(0), 3), entry(1, None, 4)]),
            term: 1,
            commit_index: None,
            all_log: false,
            proof: None,
        }
    );
    let probe = request("is_log_empty_to8001_false.request.bin");
    assert_eq!(probe.name, "is_log_empty");
    assert!(probe.params.is_empty());
}

#[test]
fn captured_responses_decode_to_exact_values() {
    let append = any_append();
    let cases = [
        ("append_entries_to8001_false.response.bin", false),
        ("append_entries_to8001_true_alllog.response.bin", true),
        (
            "append_entries_to8001_true_withcommitindex.response.bin",
            true,
        ),
        (
            "append_entries_to8000_true_withcommitindex.response.bin",
            true,
        ),
        ("python_server_true_1.response.xml", true),
    ];
    for (name, success) in cases {
        let v = response(name).unwrap_or_else(|f| panic!("{name}: fault {f:?}"));
        assert_eq!(
            wire::reply_from_value(&append, &v).unwrap(),
            Reply::Append(AppendReply { success, term: 1 }),
            "{name}"
        );
    }
    let v = response("is_log_empty_to8001_false.response.bin").unwrap();
    assert_eq!(
        wire::reply_from_value(&Rpc::IsLogEmpty, &v).unwrap(),
        Reply::LogEmpty(false)
    );
    // Every heartbeat of the original gets this Fault from its followers.
    let fault = response("heartbeat_to8001_fault.response.bin").unwrap_err();
    assert_eq!(fault.code(), 1);
    assert_eq!(
        fault.string(),
        "<class 'TypeError'>:'NoneType' object is not iterable"
    );
    // A reply of the wrong shape is an error, not a panic.
    assert!(wire::reply_from_value(&Rpc::IsLogEmpty, &Value::Integer(1)).is_err());
    assert!(wire::reply_from_value(&append, &Value::Boolean(true)).is_err());
}

// ---------------------------------------------------------------- Python

/// Python's `xmlrpc.client.loads` of `body`, as sorted compact JSON:
/// `[method or null, [params...]]`, or `{"fault": [code, string]}`.
fn python_loads(body: &str) -> String {
    const SCRIPT: &str = "import json, sys, xmlrpc.client\n\
        try:\n    params, method = xmlrpc.client.loads(sys.stdin.read())\n    \
        out = [method, list(params)]\n\
        except xmlrpc.client.Fault as f:\n    out = {'fault': [f.faultCode, f.faultString]}\n\
        print(json.dumps(out, sort_keys=True, separators=(',', ':')))\n";
    run_python(SCRIPT, body)
}

fn run_python(script: &str, stdin: &str) -> String {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (3.11) must be on the PATH for the wire tests");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed on:\n{stdin}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn body_of(rpc: &Rpc) -> String {
    wire::call_body(rpc.method(), wire::rpc_params(rpc).unwrap()).unwrap()
}

#[test]
fn python_parses_every_request_we_build() {
    let append = |entries, commit_index, all_log| {
        Rpc::AppendEntries(AppendEntries {
            entries,
            term: 1,
            commit_index,
            all_log,
            proof: None,
        })
    };
    let vote = VoteRequest {
        term: 3,
        candidate_id: 2,
        last_log_index: None,
        last_log_term: None,
        transfer: false,
    };
    let cases: Vec<(Rpc, &str)> = vec![
        // A heartbeat: nil entries, nil commit index.
        (
            append(None, None, false),
            r#"["append_entries_rpc",[null,1,null,false]]"#,
        ),
        (
            append(
                Some(vec![entry(1, Some(4), 5), entry(1, Some(5), 1)]),
                Some(4),
                true,
            ),
            r#"["append_entries_rpc",[[{"command":5,"index":4,"term":1},{"command":1,"index":5,"term":1}],1,4,true]]"#,
        ),
        // A forwarded click: nil index.
        (
            append(Some(vec![entry(1, None, 3)]), None, false),
            r#"["append_entries_rpc",[[{"command":3,"index":null,"term":1}],1,null,false]]"#,
        ),
        (
            append(Some(vec![]), Some(2147483647), false),
            r#"["append_entries_rpc",[[],1,2147483647,false]]"#,
        ),
        (
            append(
                Some(vec![WireEntry {
                    term: 1,
                    index: Some(0),
                    command: Cmd::Text("a<b>&'\"c".into()),
                    client: None,
                    sig: None,
                }]),
                None,
                false,
            ),
            r#"["append_entries_rpc",[[{"command":"a<b>&'\"c","index":0,"term":1}],1,null,false]]"#,
        ),
        (
            Rpc::RequestVote(vote),
            r#"["request_vote_rpc",[3,2,null,null]]"#,
        ),
        (
            Rpc::PreVote(VoteRequest {
                last_log_index: Some(9),
                last_log_term: Some(2),
                ..vote
            }),
            r#"["pre_vote_rpc",[3,2,9,2]]"#,
        ),
        (Rpc::IsLogEmpty, r#"["is_log_empty",[]]"#),
    ];
    for (rpc, want) in cases {
        let body = body_of(&rpc);
        assert!(body.starts_with("<?xml version='1.0'?>"), "{body}");
        assert!(!body.contains("<i4>"), "Python writes <int>: {body}");
        assert_eq!(python_loads(&body), want, "{rpc:?}\n{body}");
        // The nodes' fast encoder: the same bytes, so Python reads it too.
        let fast = wire::rpc_body(&rpc).unwrap();
        assert_eq!(fast, body, "{rpc:?}");
        assert_eq!(python_loads(&fast), want, "{rpc:?}\n{fast}");
    }
    // The brief's literal check also runs on one body.
    let printed = run_python(
        "import xmlrpc.client,sys; print(xmlrpc.client.loads(sys.stdin.read()))",
        &body_of(&append(Some(vec![entry(1, None, 2)]), None, false)),
    );
    assert_eq!(
        printed,
        "(([{'command': 2, 'index': None, 'term': 1}], 1, None, False), 'append_entries_rpc')"
    );
}

/// Each captured append, decoded and encoded again by us, means the same to
/// Python as what the original sent.
#[test]
fn python_reads_our_reencoding_of_every_captured_append() {
    for name in ALL_CAPTURES {
        if !name.contains(".request.") {
            continue;
        }
        let original = capture(name).body;
        let call = MethodCall::from_xml(&original).unwrap();
        let rpc = match call.name.as_ref() {
            "append_entries_rpc" => {
                Rpc::AppendEntries(wire::append_from_params(&call.params).unwrap())
            }
            "is_log_empty" => Rpc::IsLogEmpty,
            other => panic!("{other}"),
        };
        assert_eq!(
            python_loads(&body_of(&rpc)),
            python_loads(&original),
            "{name}"
        );
        assert_eq!(wire::rpc_body(&rpc).unwrap(), body_of(&rpc), "{name}");
    }
}

// ---------------------------------------------------------------- raw HTTP

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct HttpReply {
    status_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send `raw` and read one HTTP response (Content-Length, or to EOF).
fn exchange(addr: SocketAddr, raw: &[u8]) -> Result<HttpReply, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "connection closed before the headers: {:?}",
                String::from_utf8_lossy(&buf)
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = buf[head_end + 4..].to_vec();
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    loop {
        if len.is_some_and(|l| body.len() >= l) {
            break;
        }
        let n = s.read(&mut chunk).map_err(|e| format!("read body: {e}"))?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if let Some(l) = len {
        body.truncate(l);
    }
    Ok(HttpReply {
        status_line,
        headers,
        body: String::from_utf8(body).map_err(|e| e.to_string())?,
    })
}

/// The captured request bytes, with `Host` and `Content-Length` fixed for `addr`.
/// A body-only capture (`.xml`) gets a plain Python-like HTTP head.
fn golden_request_bytes(name: &str, addr: SocketAddr) -> Vec<u8> {
    let c = capture(name);
    if c.head.is_empty() {
        return wrap_body(addr, &c.body);
    }
    let mut out = String::new();
    for (i, line) in c.head.split("\r\n").enumerate() {
        let key = line
            .split_once(':')
            .map(|(k, _)| k.trim().to_ascii_lowercase());
        match key.as_deref() {
            Some("host") if i > 0 => out.push_str(&format!("Host: {addr}")),
            Some("content-length") if i > 0 => {
                out.push_str(&format!("Content-Length: {}", c.body.len()))
            }
            _ => out.push_str(line),
        }
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&c.body);
    out.into_bytes()
}

fn wrap_body(addr: SocketAddr, body: &str) -> Vec<u8> {
    format!(
        "POST /RPC2 HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn call(addr: SocketAddr, method: &str, params: Vec<Value>) -> Result<Value, Fault> {
    let body = wire::call_body(method, params).unwrap();
    let reply = exchange(addr, &wrap_body(addr, &body)).unwrap();
    wire::parse_response(&reply.body).unwrap()
}

fn status_field(status: &Value, key: &str) -> Value {
    match status {
        Value::Struct(m) => m
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("status has no {key}")),
        other => panic!("status is not a struct: {other:?}"),
    }
}

fn wait_status(addr: SocketAddr, what: &str, ok: impl Fn(&BTreeMap<String, Value>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = call(addr, "status", vec![]).expect("status()");
        let Value::Struct(m) = &s else {
            panic!("status is not a struct")
        };
        if ok(m) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; status = {s:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn two_node_cluster(leader_port: u16, follower_port: u16) -> ClusterConfig {
    ClusterConfig::from_toml_str(&format!(
        "leader = 0\n\
         [[node]]\nid = 0\nname = \"raftian\"\naddr = \"127.0.0.1:{leader_port}\"\n\
         log = [[1, 4, 5], [1, 5, 5], [1, 6, 5], [1, 7, 5]]\n\
         [[node]]\nid = 1\nname = \"bob1\"\naddr = \"127.0.0.1:{follower_port}\"\n\
         log = [[1, 0, 9], [1, 1, 9], [1, 2, 9], [1, 3, 9]]\n"
    ))
    .unwrap()
}

/// One golden exchange against a live node: the answer Python would parse.
fn replay(addr: SocketAddr, name: &str, node_id: &str) -> HttpReply {
    let reply =
        exchange(addr, &golden_request_bytes(name, addr)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        reply.status_line.ends_with("200 OK"),
        "{name}: {}",
        reply.status_line
    );
    assert_eq!(reply.header("x-raftian-node"), Some(node_id), "{name}");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/xml")),
        "{name}"
    );
    assert!(!reply.body.contains("<i4>"), "{name}: {}", reply.body);
    reply
}

/// The captured leader -> bob1 exchanges, replayed byte for byte to a Rust
/// bob1 with the bobs' seeded log: same answers as the original gave
/// (except the heartbeat, which a Rust follower accepts instead of faulting).
#[test]
fn rust_follower_answers_the_captured_requests() {
    let (leader_port, port) = (free_port(), free_port());
    let node = node::start(NodeOptions::new(two_node_cluster(leader_port, port), 1))
        .expect("start the Rust bob1");
    let addr = node.local_addr();
    let cases = [
        ("is_log_empty_to8001_false.request.bin", "[null,[false]]"),
        (
            "append_entries_to8001_false.request.bin",
            "[null,[[false,1]]]",
        ),
        (
            "append_entries_to8001_true_alllog.request.bin",
            "[null,[[true,1]]]",
        ),
        (
            "append_entries_to8001_true_withcommitindex.request.bin",
            "[null,[[true,1]]]",
        ),
        ("heartbeat_to8001_fault.request.bin", "[null,[[true,1]]]"),
    ];
    for (name, want) in cases {
        let reply = replay(addr, name, "1");
        assert_eq!(python_loads(&reply.body), want, "{name}: {}", reply.body);
    }
    // The log is the leader's 4..9; commit 8 applied; the seeded 0..3 gone.
    wait_status(addr, "commit 8 applied", |s| {
        s.get("log_length") == Some(&Value::Integer(6))
            && s.get("commit_index") == Some(&Value::Integer(8))
            && s.get("last_applied") == Some(&Value::Integer(8))
    });
    let status = call(addr, "status", vec![]).unwrap();
    assert_eq!(
        status_field(&status, "mode"),
        Value::String("FOLLOWER".into())
    );
    assert_eq!(status_field(&status, "leader_id"), Value::Integer(0));
    assert_eq!(status_field(&status, "term"), Value::Integer(1));
    // The same bodies, unchanged, a second time: idempotent answers.
    let again = replay(
        addr,
        "append_entries_to8001_true_withcommitindex.request.bin",
        "1",
    );
    assert_eq!(python_loads(&again.body), "[null,[[true,1]]]");
    wait_status(addr, "log unchanged", |s| {
        s.get("log_length") == Some(&Value::Integer(6))
    });

    // Malformed input gets a Fault that Python reads, never a dropped
    // connection: mixed forwarded and indexed entries...
    let mixed = replay(addr, "python_client_append_entries.request.xml", "1");
    let parsed = python_loads(&mixed.body);
    assert!(parsed.starts_with(r#"{"fault":[400,"#), "{parsed}");
    // ...a wrong argument count, an unknown method, and XML that is not XML-RPC.
    for body in [
        wire::call_body("append_entries_rpc", vec![Value::Integer(1)]).unwrap(),
        wire::call_body("no_such_method", vec![]).unwrap(),
        "<?xml version='1.0'?>\n<methodCall><oops/></methodCall>\n".to_owned(),
    ] {
        let reply = exchange(addr, &wrap_body(addr, &body)).unwrap();
        let parsed = python_loads(&reply.body);
        assert!(parsed.starts_with(r#"{"fault":["#), "{body} -> {parsed}");
    }
    node.shutdown();
}

/// The captured follower -> leader forward (nil index), replayed to a Rust
/// leader: accepted and appended as the next entry.
#[test]
fn rust_leader_accepts_the_captured_forward() {
    let (port, follower_port) = (free_port(), free_port());
    let node = node::start(NodeOptions::new(two_node_cluster(port, follower_port), 0))
        .expect("start the Rust leader");
    let addr = node.local_addr();
    wait_status(addr, "the leader is up", |s| {
        s.get("mode") == Some(&Value::String("LEADER".into()))
            && s.get("log_length") == Some(&Value::Integer(4))
    });
    let reply = replay(
        addr,
        "append_entries_to8000_true_withcommitindex.request.bin",
        "0",
    );
    assert_eq!(python_loads(&reply.body), "[null,[[true,1]]]");
    wait_status(addr, "the forwarded click appended", |s| {
        s.get("log_length") == Some(&Value::Integer(5))
    });
    let probe = replay(addr, "is_log_empty_to8001_false.request.bin", "0");
    assert_eq!(python_loads(&probe.body), "[null,[false]]");
    // status() and its HP board parse in Python too.
    let status = exchange(
        addr,
        &wrap_body(addr, &wire::call_body("status", vec![]).unwrap()),
    )
    .unwrap();
    let parsed = python_loads(&status.body);
    assert!(parsed.contains(r#""hp":[100,100,100,100]"#), "{parsed}");
    assert!(parsed.contains(r#""mode":"LEADER""#), "{parsed}");
    node.shutdown();
}

// ---------------------------------------------------------------- pynode

/// `tests/py/pynode.py`, killed when dropped.
struct PyNode(std::process::Child);

impl Drop for PyNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_pynode(role: &str, id: u64, port: u16, peer: &str) -> PyNode {
    let child = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/pynode.py"))
        .args(["--role", role, "--id", &id.to_string()])
        .args(["--port", &port.to_string(), "--peers", peer])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 (3.11) must be on the PATH for the wire tests");
    let node = PyNode(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "pynode did not start on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    node
}

/// The stand-in answers the captured requests byte for byte as the original
/// did (same bodies, HTTP/1.0), heartbeat Fault included: it is a faithful
/// peer for the multi-process tests.
#[test]
fn pynode_answers_the_captures_like_the_original() {
    let (port, leader_port) = (free_port(), free_port());
    let _bob1 = start_pynode("follower", 1, port, &format!("0={leader_port}"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for name in [
        "is_log_empty_to8001_false",
        "append_entries_to8001_false",
        "append_entries_to8001_true_alllog",
        "append_entries_to8001_true_withcommitindex",
        "heartbeat_to8001_fault",
    ] {
        let reply = exchange(
            addr,
            &golden_request_bytes(&format!("{name}.request.bin"), addr),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let golden = capture(&format!("{name}.response.bin"));
        assert_eq!(reply.status_line, "HTTP/1.0 200 OK", "{name}");
        assert_eq!(reply.body, golden.body, "{name}");
    }
    // The same commit index again: the original refuses it before anything else.
    let again = exchange(
        addr,
        &golden_request_bytes(
            "append_entries_to8001_true_withcommitindex.request.bin",
            addr,
        ),
    )
    .unwrap();
    assert_eq!(
        again.body,
        capture("append_entries_to8001_false.response.bin").body
    );

    let (port, follower_port) = (free_port(), free_port());
    let _leader = start_pynode("leader", 0, port, &format!("1={follower_port}"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let name = "append_entries_to8000_true_withcommitindex";
    let reply = exchange(
        addr,
        &golden_request_bytes(&format!("{name}.request.bin"), addr),
    )
    .unwrap();
    assert_eq!(reply.body, capture(&format!("{name}.response.bin")).body);
    assert!(reply.header("x-raftian-node").is_none());
}
