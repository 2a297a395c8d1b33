//! One in-process node: bad input gets a clear Fault and changes nothing;
//! the log file is coalesced and ends with the final log.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use dxr::Value;
use raftian::config::ClusterConfig;
use raftian::node::{self, NodeOptions};

fn single(dir: &std::path::Path) -> (raftian::node::RunningNode, String) {
    let port = free_port();
    let toml = format!(
        "leader = 0\n[[node]]\nid = 0\nname = \"solo\"\naddr = \"127.0.0.1:{port}\"\nlog = [[1, 4, 5]]\n"
    );
    let mut opts = NodeOptions::new(ClusterConfig::from_toml_str(&toml).unwrap(), 0);
    opts.log_dir = Some(dir.join("logs"));
    let n = node::start(opts).unwrap();
    let addr = n.local_addr().to_string();
    (n, addr)
}

fn raw(addr: &str, path: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer before reading an oversized body.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn log_length(addr: &str) -> i64 {
    status(addr)
        .unwrap()
        .get("log_length")
        .and_then(int)
        .unwrap()
}

#[test]
fn bad_input_gets_a_fault_and_changes_nothing() {
    let dir = temp_dir("bad-input");
    let (node, addr) = single(&dir);
    let before = status(&addr).unwrap();

    let malformed = raw(
        &addr,
        "/RPC2",
        b"<methodCall><methodName>status</methodName><params>",
    );
    assert!(malformed.contains("<fault>"), "{malformed}");

    let unknown = raw(
        &addr,
        "/",
        b"<?xml version='1.0'?><methodCall><methodName>drop_tables</methodName><params></params></methodCall>",
    );
    assert!(
        unknown.contains("<fault>") && unknown.contains("Unknown method"),
        "{unknown}"
    );

    let cases: Vec<(&str, Vec<Value>, &str)> = vec![
        ("append_entries_rpc", vec![Value::Nil], "takes 4 arguments"),
        (
            "append_entries_rpc",
            vec![
                Value::String("x".into()),
                Value::Integer(1),
                Value::Nil,
                Value::Boolean(false),
            ],
            "array or nil",
        ),
        (
            "append_entries_rpc",
            vec![
                Value::Nil,
                Value::Integer(-5),
                Value::Nil,
                Value::Boolean(false),
            ],
            "negative",
        ),
        (
            "append_entries_rpc",
            vec![Value::Nil, Value::Integer(1), Value::Nil, Value::Integer(1)],
            "boolean",
        ),
        (
            "request_vote_rpc",
            vec![
                Value::Integer(9),
                Value::Integer(77),
                Value::Nil,
                Value::Nil,
            ],
            "not a peer",
        ),
        ("click", vec![Value::Integer(5)], "unknown player"),
        ("click_wait", vec![Value::Integer(0)], "unknown player"),
        (
            "transfer_leader_rpc",
            vec![Value::Nil],
            "static-leader mode",
        ),
        ("timeout_now_rpc", vec![Value::Nil], "term"),
        (
            "append_entries_rpc",
            vec![
                Value::Nil,
                Value::Integer(2),
                Value::Nil,
                Value::Boolean(false),
            ],
            "static-leader mode: term 2 refused",
        ),
        ("click", vec![Value::String("1".into())], "one int"),
        ("is_log_empty", vec![Value::Integer(1)], "no arguments"),
    ];
    for (method, params, expect) in cases {
        let err = call(&addr, method, params).unwrap_err();
        assert!(err.contains(expect), "{method}: {err}");
    }

    let huge = vec![b'x'; raftian::node::MAX_BODY + 1024];
    let big = raw(&addr, "/RPC2", &huge);
    assert!(
        big.contains("<fault>") && big.contains("limited"),
        "{}",
        &big[..big.len().min(300)]
    );

    let after = status(&addr).unwrap();
    assert_eq!(before, after, "bad input changed the node's state");
    node.shutdown();
}

#[test]
fn python_clients_reach_both_paths() {
    let dir = temp_dir("paths");
    let (node, addr) = single(&dir);
    for path in ["/", "/RPC2"] {
        let r = raw(
            &addr,
            path,
            b"<?xml version='1.0'?>\n<methodCall>\n<methodName>is_log_empty</methodName>\n<params>\n</params>\n</methodCall>\n",
        );
        assert!(r.contains("<boolean>0</boolean>"), "{path}: {r}");
        assert!(r.to_ascii_lowercase().contains("x-raftian-node: 0"), "{r}");
    }
    let s = raw(
        &addr,
        "/RPC2",
        b"<?xml version='1.0'?><methodCall><methodName>status</methodName><params></params></methodCall>",
    );
    assert!(
        s.contains("<int>") && !s.contains("<i4>"),
        "integers are <int>: {s}"
    );
    node.shutdown();
}

#[test]
fn log_file_is_coalesced_and_ends_with_the_final_log() {
    let dir = temp_dir("logfile");
    let (node, addr) = single(&dir);
    let mut accepted = 0;
    for _ in 0..300 {
        for p in [1, 2] {
            accepted += usize::from(call(&addr, "click", vec![Value::Integer(p)]).is_ok());
        }
    }
    // Clicks are refused once a player is dead; wait until all accepted
    // ones are committed and applied (the log starts at index 4).
    let len = wait_for("clicks applied", Duration::from_secs(10), || {
        let s = status(&addr).ok()?;
        let (c, a) = (
            s.get("commit_index").and_then(int),
            s.get("last_applied").and_then(int),
        );
        let len = s.get("log_length").and_then(int)?;
        (len as usize == 1 + accepted && c == Some(4 + len - 1) && c == a).then_some(len as usize)
    });
    assert!(len > 9, "at least the 8 lethal clicks went in: {len}");
    let path = node.log_path().unwrap().to_owned();
    // The final log reaches the file shortly after the log stops changing.
    let last = wait_for("the final log line", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&path).ok()?;
        let last = text.lines().last()?.to_owned();
        (raftian::logfile::parse_log_line(&last).ok()?.len() == len).then_some(last)
    });
    assert!(
        last.starts_with("log = [Raft.Entry(term=1, index=4, command=5)"),
        "{last}"
    );
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert!(
        lines <= 4,
        "each line is the whole log: {lines} lines for one burst"
    );
    assert_eq!(log_length(&addr), len as i64);
    node.shutdown();
    let after = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        after.lines().last().unwrap(),
        last,
        "shutdown leaves the final log last"
    );
}

/// `click_wait` answers only once the click is applied on this node (its
/// order is on `raft_orders`): the log holds it by then.
#[test]
fn click_wait_answers_once_the_click_is_applied() {
    let dir = temp_dir("click-wait");
    let (node, addr) = single(&dir);
    let before = log_length(&addr);
    let r = call(&addr, "click_wait", vec![Value::Integer(2)]).unwrap();
    assert_eq!(r, Value::Boolean(true));
    let s = status(&addr).unwrap();
    assert_eq!(log_length(&addr), before + 1);
    // The seeded entry is index 4: the click is index 5, committed.
    assert_eq!(s.get("commit_index").and_then(int), Some(5));
    node.shutdown();
}

/// A malformed client-ids header is bad input like any other.
#[test]
fn a_bad_clients_header_gets_a_fault() {
    let dir = temp_dir("clients-header");
    let (node, addr) = single(&dir);
    let before = status(&addr).unwrap();
    let body = raftian::wire::call_body(
        "append_entries_rpc",
        vec![
            Value::Array(vec![]),
            Value::Integer(1),
            Value::Nil,
            Value::Boolean(false),
        ],
    )
    .unwrap();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST /RPC2 HTTP/1.1\r\nHost: {addr}\r\nX-Raftian-Clients: 0:1.2.3\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(
        out.contains("<fault>") && out.contains("client id"),
        "{out}"
    );
    assert_eq!(status(&addr).unwrap(), before);
    node.shutdown();
}

/// `status()` lists the members: `{id, name, addr, voter}`.
#[test]
fn status_lists_the_members() {
    let dir = temp_dir("members");
    let (node, addr) = single(&dir);
    let s = status(&addr).unwrap();
    let Some(Value::Array(members)) = s.get("members") else {
        panic!("no members: {s:?}");
    };
    let [Value::Struct(m)] = &members[..] else {
        panic!("one member expected: {members:?}");
    };
    assert_eq!(m.get("id").and_then(int), Some(0));
    assert_eq!(m.get("name").map(text).as_deref(), Some("solo"));
    assert_eq!(m.get("addr").map(text), Some(addr.clone()));
    assert_eq!(m.get("voter"), Some(&Value::Boolean(true)));
    node.shutdown();
}

/// The server's fast path (`wire::fast`) and its dxr path answer a call
/// alike, byte for byte: each call is sent as nodes and Python spell it
/// (taken by the fast path) and with `<i4>` ints and an encoding in the
/// declaration (declined, so read by dxr). The calls change nothing (stale terms, a refused click), so both
/// meet the same state.
#[test]
fn fast_and_dxr_paths_answer_alike() {
    use raftian::wire::fast;
    let dir = temp_dir("fast-dxr");
    let (node, addr) = single(&dir);
    let entry = "<value><struct><member><name>command</name><value><int>3</int></value></member><member><name>index</name><value><int>1</int></value></member><member><name>term</name><value><int>0</int></value></member></struct></value>";
    let call = |name: &str, params: &[&str]| {
        let ps: String = params
            .iter()
            .map(|p| format!("<param>{p}</param>"))
            .collect();
        format!(
            "<?xml version='1.0'?>\n<methodCall><methodName>{name}</methodName><params>{ps}</params></methodCall>\n"
        )
    };
    let int = |n: i32| format!("<value><int>{n}</int></value>");
    let nil = "<value><nil/></value>".to_owned();
    let f = "<value><boolean>0</boolean></value>".to_owned();
    let bodies = [
        call("is_log_empty", &[]),
        call("request_vote_rpc", &[&int(0), &int(3), &nil, &nil]),
        call("pre_vote_rpc", &[&int(0), &int(3), &int(0), &int(0)]),
        call("append_entries_rpc", &[&nil, &int(0), &nil, &f]),
        call(
            "append_entries_rpc",
            &[
                &format!("<value><array><data>{entry}</data></array></value>"),
                &int(0),
                &int(0),
                &f,
            ],
        ),
        // Faults: a refused click, an append the typed check refuses.
        call("click", &[&int(99)]),
        call("append_entries_rpc", &[&nil, &int(0), &nil]),
    ];
    let answer_body = |text: &str| -> String {
        let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("content-type: text/xml"),
            "{head}"
        );
        body.to_owned()
    };
    for body in &bodies {
        // Spelled otherwise (same values to dxr): the fast path declines.
        let slow = body
            .replace("<int>", "<i4>")
            .replace("</int>", "</i4>")
            .replace(
                "<?xml version='1.0'?>",
                "<?xml version='1.0' encoding='utf-8'?>",
            );
        assert!(fast::append_call(body).is_some() || fast::scalar_call(body).is_some());
        assert!(fast::append_call(&slow).is_none() && fast::scalar_call(&slow).is_none());
        let a = answer_body(&raw(&addr, "/RPC2", body.as_bytes()));
        let b = answer_body(&raw(&addr, "/RPC2", slow.as_bytes()));
        assert_eq!(a, b, "{body}");
        assert!(!a.contains("i4"), "{a}");
    }
    node.shutdown();
}
