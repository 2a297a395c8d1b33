//! The XML-RPC wire: dxr values <-> the core's typed requests and replies.
//!
//! Method signatures (Python's `xmlrpc`, `allow_none=True`):
//! - `append_entries_rpc(entries, term, commit_index, all_log) -> [success, term]`
//!   where `entries` is nil or an array of structs `{term, index, command}`
//!   (`index` nil for a forwarded command) and `commit_index` may be nil;
//! - `request_vote_rpc(term, candidate_id, last_log_index, last_log_term) -> [term, vote_granted]`
//!   (and `pre_vote_rpc`, same shape), log position nil for an empty log;
//! - `is_log_empty() -> boolean`.
//!
//! Integers are 32-bit `<int>`: a negative or out-of-range value is refused.

use std::collections::BTreeMap;

use dxr::{Fault, MethodCall, MethodResponse, Value};

pub mod fast;

use std::sync::Arc;

use crate::raft::{
    AppendEntries, AppendReply, ClientId, Command, InstallSnapshot, Membership, Reply, Rpc,
    ServerRef, VoteReply, VoteRequest, WIRE_MAX, WireEntry,
};

/// Fault code for arguments of the wrong type, count or range.
pub const FAULT_BAD_ARGS: i32 = 400;
/// Fault code for a method that is refused in this node's mode.
pub const FAULT_REFUSED: i32 = 403;
/// Fault code for a node that is shutting down or failed to persist.
pub const FAULT_UNAVAILABLE: i32 = 503;

/// A bad-argument Fault with a clear message.
pub fn bad_args(msg: impl Into<String>) -> Fault {
    Fault::new(FAULT_BAD_ARGS, msg.into())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "int",
        Value::Boolean(_) => "boolean",
        Value::String(_) => "string",
        Value::Double(_) => "double",
        Value::DateTime(_) => "dateTime",
        Value::Base64(_) => "base64",
        Value::Struct(_) => "struct",
        Value::Array(_) => "array",
        Value::Nil => "nil",
        _ => "unknown",
    }
}

fn expect_count(params: &[Value], n: usize, method: &str) -> Result<(), Fault> {
    if params.len() != n {
        return Err(bad_args(format!(
            "{method} takes {n} arguments, got {}",
            params.len()
        )));
    }
    Ok(())
}

/// A non-negative `<int>`.
fn uint(v: &Value, what: &str) -> Result<u64, Fault> {
    match v {
        Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        Value::Integer(i) => Err(bad_args(format!("{what} must not be negative, got {i}"))),
        other => Err(bad_args(format!(
            "{what} must be an int, got {}",
            kind(other)
        ))),
    }
}

fn opt_uint(v: &Value, what: &str) -> Result<Option<u64>, Fault> {
    match v {
        Value::Nil => Ok(None),
        v => uint(v, what).map(Some),
    }
}

fn boolean(v: &Value, what: &str) -> Result<bool, Fault> {
    match v {
        Value::Boolean(b) => Ok(*b),
        other => Err(bad_args(format!(
            "{what} must be a boolean, got {}",
            kind(other)
        ))),
    }
}

/// A `u64` as a wire `<int>`; refuses what does not fit 32 bits.
pub fn int(n: u64, what: &str) -> Result<Value, String> {
    if n > WIRE_MAX {
        return Err(format!("{what} {n} does not fit the wire's 32-bit int"));
    }
    Ok(Value::Integer(n as i32))
}

fn opt_int(n: Option<u64>, what: &str) -> Result<Value, String> {
    n.map_or(Ok(Value::Nil), |n| int(n, what))
}

fn command_from(v: &Value) -> Result<Command, Fault> {
    match v {
        Value::Integer(i) => Ok(Command::Int(*i)),
        Value::String(s) => Ok(Command::Text(s.clone())),
        Value::Struct(s) if s.contains_key("stamp") => stamp_from(s),
        Value::Struct(s) => config_from(s),
        other => Err(bad_args(format!(
            "command must be an int or a string, got {}",
            kind(other)
        ))),
    }
}

/// A configuration entry's command, `{config: "<JSON>"}` (between Rust
/// nodes only: the original nodes are never sent one).
fn config_from(s: &BTreeMap<String, Value>) -> Result<Command, Fault> {
    let Some(Value::String(json)) = s.get("config") else {
        return Err(bad_args("a struct command must be {config: string}"));
    };
    let m: Membership = serde_json::from_str(json.as_str())
        .map_err(|e| bad_args(format!("bad configuration: {e}")))?;
    let m = m.checked().map_err(bad_args)?;
    Ok(Command::Config(Arc::new(m)))
}

/// A rate-limit stamp, `{stamp: "<Unix ms>", limit: int}` (between Rust
/// nodes only; the milliseconds do not fit the wire's 32-bit int).
fn stamp_from(s: &BTreeMap<String, Value>) -> Result<Command, Fault> {
    let shape = || bad_args("a stamp command must be {stamp: string of digits, limit: int >= 0}");
    if s.len() != 2 {
        return Err(shape());
    }
    let (Some(Value::String(ms)), Some(Value::Integer(limit))) = (s.get("stamp"), s.get("limit"))
    else {
        return Err(shape());
    };
    if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return Err(shape());
    }
    let ms = ms.parse().map_err(|_| shape())?;
    let limit = u32::try_from(*limit).map_err(|_| shape())?;
    Ok(Command::Stamp(crate::raft::Stamp { ms, limit }))
}

fn command_to(c: &Command) -> Value {
    match c {
        Command::Int(i) => Value::Integer(*i),
        Command::Text(s) => Value::String(s.clone()),
        Command::Config(m) => {
            let json = serde_json::to_string(&**m).expect("a configuration serializes");
            let mut s = BTreeMap::new();
            s.insert("config".to_owned(), Value::String(json));
            Value::Struct(s)
        }
        Command::Stamp(st) => {
            let mut s = BTreeMap::new();
            s.insert("stamp".to_owned(), Value::String(st.ms.to_string()));
            let limit = i32::try_from(st.limit).unwrap_or(i32::MAX);
            s.insert("limit".to_owned(), Value::Integer(limit));
            Value::Struct(s)
        }
    }
}

fn entry_from(v: &Value, pos: usize) -> Result<WireEntry, Fault> {
    let Value::Struct(members) = v else {
        return Err(bad_args(format!(
            "entry {pos} must be a struct, got {}",
            kind(v)
        )));
    };
    for name in members.keys() {
        if !matches!(name.as_str(), "term" | "index" | "command" | "sig") {
            return Err(bad_args(format!(
                "entry {pos} has an unknown member '{name}' (expected term, index, command)"
            )));
        }
    }
    // A signed command (a cluster with keys, where no original node is).
    let sig = match members.get("sig") {
        None => None,
        Some(Value::Base64(b)) => Some(Arc::new(
            <[u8; 64]>::try_from(b.as_slice())
                .map_err(|_| bad_args(format!("entry {pos}'s sig is not 64 bytes")))?,
        )),
        Some(other) => {
            return Err(bad_args(format!(
                "entry {pos}'s sig must be base64, got {}",
                kind(other)
            )));
        }
    };
    let get = |name: &str| {
        members
            .get(name)
            .ok_or_else(|| bad_args(format!("entry {pos} has no '{name}'")))
    };
    Ok(WireEntry {
        term: uint(get("term")?, "entry term")?,
        index: opt_uint(get("index")?, "entry index")?,
        command: command_from(get("command")?)?,
        client: None,
        sig,
    })
}

fn entry_to(e: &WireEntry) -> Result<Value, String> {
    let mut m = BTreeMap::new();
    m.insert("term".to_owned(), int(e.term, "term")?);
    m.insert("index".to_owned(), opt_int(e.index, "index")?);
    m.insert("command".to_owned(), command_to(&e.command));
    if let Some(sig) = &e.sig {
        m.insert("sig".to_owned(), Value::Base64(sig.to_vec()));
    }
    Ok(Value::Struct(m))
}

/// A count in a `status()` struct: nil or missing is `None` (older nodes
/// leave fields out), a negative number or another type is an error.
pub fn status_count(m: &BTreeMap<String, Value>, k: &str) -> Result<Option<u64>, String> {
    match m.get(k) {
        Some(Value::Integer(n)) if *n >= 0 => Ok(Some(*n as u64)),
        Some(Value::Nil) | None => Ok(None),
        Some(v) => Err(format!("status() field {k} is {v:?}")),
    }
}

/// Parse `append_entries_rpc`'s four arguments.
pub fn append_from_params(params: &[Value]) -> Result<AppendEntries, Fault> {
    expect_count(params, 4, "append_entries_rpc")?;
    let entries = match &params[0] {
        Value::Nil => None,
        Value::Array(items) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| entry_from(v, i))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        other => {
            return Err(bad_args(format!(
                "entries must be an array or nil, got {}",
                kind(other)
            )));
        }
    };
    Ok(AppendEntries {
        entries,
        term: uint(&params[1], "term")?,
        commit_index: opt_uint(&params[2], "commit_index")?,
        all_log: boolean(&params[3], "all_log")?,
        proof: None,
    })
}

/// Most runs in one clients header (a batch whose ids alternate between
/// sessions on every entry has one run per entry).
pub const MAX_CLIENT_RUNS: usize = 8192;

/// The value of the clients header for these entries (`None`: no entry
/// carries an id). Entries' client ids travel beside the XML body, so that
/// the body stays what the original Python nodes read. Runs, comma
/// separated: `pos:node.incarnation.seq` for entry `pos`, with `+n` when
/// the next `n` entries carry the next `n` seqs of the same session.
pub fn clients_header(entries: &[WireEntry]) -> Option<String> {
    let mut out = String::new();
    let mut run: Option<(usize, ClientId, u64)> = None;
    let flush = |out: &mut String, r: (usize, ClientId, u64)| {
        use std::fmt::Write as _;
        if !out.is_empty() {
            out.push(',');
        }
        // Written in place: no String per run.
        let _ = write!(out, "{}:{}", r.0, r.1);
        if r.2 > 0 {
            let _ = write!(out, "+{}", r.2);
        }
    };
    for (pos, e) in entries.iter().enumerate() {
        let Some(id) = e.client else { continue };
        match &mut run {
            Some((start, first, n))
                if *start + *n as usize + 1 == pos
                    && (first.node, first.incarnation) == (id.node, id.incarnation)
                    && first.seq + *n + 1 == id.seq =>
            {
                *n += 1;
            }
            _ => {
                if let Some(r) = run.take() {
                    flush(&mut out, r);
                }
                run = Some((pos, id, 0));
            }
        }
    }
    if let Some(r) = run {
        flush(&mut out, r);
    }
    (!out.is_empty()).then_some(out)
}

/// The `X-Raftian-Votes` header: an append's proof of election,
/// `voter.signature` (base64) per vote, comma-separated.
pub fn proof_header(proof: &[(u64, crate::raft::Sig)]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let votes: Vec<String> = proof
        .iter()
        .map(|(voter, sig)| format!("{voter}.{}", b64.encode(&sig[..])))
        .collect();
    votes.join(",")
}

/// Read an `X-Raftian-Votes` header (at most 16 votes: one per member).
pub fn proof_from_header(header: &str) -> Result<crate::raft::VoteProof, String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for vote in header.split(',').filter(|v| !v.trim().is_empty()) {
        if out.len() >= 16 {
            return Err("more than 16 votes".into());
        }
        let bad = || format!("bad vote '{}'", shorten(vote));
        let (voter, sig) = vote.trim().split_once('.').ok_or_else(bad)?;
        let voter: u64 = voter.parse().map_err(|_| bad())?;
        let sig = b64.decode(sig).map_err(|_| bad())?;
        let sig = <[u8; 64]>::try_from(sig.as_slice()).map_err(|_| bad())?;
        out.push((voter, std::sync::Arc::new(sig)));
    }
    Ok(out.into())
}

/// Put the ids of a clients header onto `entries`; a malformed header, or
/// one naming entries that are not there, is an error and changes nothing.
pub fn apply_clients_header(entries: &mut [WireEntry], header: &str) -> Result<(), String> {
    let mut ids: Vec<(usize, ClientId)> = Vec::new();
    for (i, run) in header.split(',').enumerate() {
        if i >= MAX_CLIENT_RUNS {
            return Err(format!("more than {MAX_CLIENT_RUNS} client id runs"));
        }
        let (pos, id, n) = parse_run(run.trim())?;
        for k in 0..=n {
            let at = pos.checked_add(k as usize).filter(|p| *p < entries.len());
            let at = at.ok_or_else(|| {
                format!(
                    "client id for entry {} of {}",
                    pos as u64 + k,
                    entries.len()
                )
            })?;
            let seq = id.seq.checked_add(k).ok_or("client seq overflows")?;
            ids.push((at, ClientId { seq, ..id }));
        }
    }
    for (at, id) in ids {
        entries[at].client = Some(id);
    }
    Ok(())
}

fn parse_run(run: &str) -> Result<(usize, ClientId, u64), String> {
    let bad = || format!("bad client id run '{}'", shorten(run));
    let (pos, rest) = run.split_once(':').ok_or_else(bad)?;
    let (id, n) = rest.split_once('+').unwrap_or((rest, "0"));
    let mut parts = id.split('.');
    let mut num =
        || -> Result<u64, String> { parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad) };
    let id = ClientId {
        node: num()?,
        incarnation: num()?,
        seq: num()?,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    let pos = pos.parse().map_err(|_| bad())?;
    let n = n.parse().map_err(|_| bad())?;
    Ok((pos, id, n))
}

/// Parse `request_vote_rpc` / `pre_vote_rpc` arguments.
pub fn vote_from_params(params: &[Value], method: &str) -> Result<VoteRequest, Fault> {
    expect_count(params, 4, method)?;
    Ok(VoteRequest {
        term: uint(&params[0], "term")?,
        candidate_id: uint(&params[1], "candidate_id")?,
        last_log_index: opt_uint(&params[2], "last_log_index")?,
        last_log_term: opt_uint(&params[3], "last_log_term")?,
        transfer: false,
    })
}

/// The arguments of an outgoing request.
pub fn rpc_params(rpc: &Rpc) -> Result<Vec<Value>, String> {
    Ok(match rpc {
        Rpc::AppendEntries(a) => vec![
            match &a.entries {
                None => Value::Nil,
                Some(es) => Value::Array(es.iter().map(entry_to).collect::<Result<_, _>>()?),
            },
            int(a.term, "term")?,
            opt_int(a.commit_index, "commit_index")?,
            Value::Boolean(a.all_log),
        ],
        Rpc::RequestVote(v) | Rpc::PreVote(v) => vec![
            int(v.term, "term")?,
            int(v.candidate_id, "candidate_id")?,
            opt_int(v.last_log_index, "last_log_index")?,
            opt_int(v.last_log_term, "last_log_term")?,
        ],
        Rpc::IsLogEmpty => vec![],
        Rpc::InstallSnapshot(s) => vec![
            int(s.term, "term")?,
            int(s.leader_id, "leader_id")?,
            int(s.last_index, "last_index")?,
            int(s.last_term, "last_term")?,
            int(s.offset, "offset")?,
            Value::Base64(s.data.clone()),
            Value::Boolean(s.done),
        ],
        Rpc::TimeoutNow { term } => vec![int(*term, "term")?],
        Rpc::TransferLeader(target) => vec![opt_int(*target, "target")?],
        Rpc::AddServer {
            name,
            addr,
            public_key,
        } => {
            let mut p = vec![Value::String(name.clone()), Value::String(addr.clone())];
            p.extend(public_key.clone().map(Value::String));
            p
        }
        Rpc::RemoveServer(ServerRef::Id(id)) => vec![int(*id, "id")?],
        Rpc::RemoveServer(ServerRef::Addr(a)) => vec![Value::String(a.clone())],
    })
}

/// Parse `transfer_leader_rpc(target)`: a node id, or nil for the most
/// up-to-date voter.
pub fn transfer_from_params(params: &[Value]) -> Result<Option<u64>, Fault> {
    expect_count(params, 1, "transfer_leader_rpc")?;
    opt_uint(&params[0], "target")
}

/// Parse `add_server_rpc(name, addr)`: a plain name and a `host:port`
/// address.
pub fn add_server_from_params(params: &[Value]) -> Result<Rpc, Fault> {
    let (name, addr, key) = match params {
        [Value::String(n), Value::String(a)] => (n, a, None),
        [Value::String(n), Value::String(a), Value::String(k)] => (n, a, Some(k.clone())),
        _ => {
            return Err(bad_args(
                "add_server_rpc takes two or three strings: name, addr[, public_key]",
            ));
        }
    };
    if let Some(k) = &key {
        crate::keys::parse_public(k).map_err(bad_args)?;
    }
    if name.is_empty() || name.len() > 64 || name.contains(['/', '\\']) {
        return Err(bad_args("the name must be 1-64 characters without slashes"));
    }
    addr.parse::<std::net::SocketAddr>()
        .map_err(|e| bad_args(format!("addr '{addr}' is not host:port: {e}")))?;
    Ok(Rpc::AddServer {
        name: name.clone(),
        addr: addr.clone(),
        public_key: key,
    })
}

/// Parse `remove_server_rpc(id | "host:port")`.
pub fn remove_server_from_params(params: &[Value]) -> Result<Rpc, Fault> {
    expect_count(params, 1, "remove_server_rpc")?;
    let r = match &params[0] {
        Value::String(a) => ServerRef::Addr(a.clone()),
        v => ServerRef::Id(uint(v, "id")?),
    };
    Ok(Rpc::RemoveServer(r))
}

/// Parse `timeout_now_rpc(term)`.
pub fn timeout_now_from_params(params: &[Value]) -> Result<u64, Fault> {
    expect_count(params, 1, "timeout_now_rpc")?;
    uint(&params[0], "term")
}

/// Parse `install_snapshot_rpc(term, leader_id, last_index, last_term,
/// offset, data, done)`; `data` is base64.
pub fn install_from_params(params: &[Value]) -> Result<InstallSnapshot, Fault> {
    expect_count(params, 7, "install_snapshot_rpc")?;
    let Value::Base64(data) = &params[5] else {
        return Err(bad_args(format!(
            "data must be base64, got {}",
            kind(&params[5])
        )));
    };
    Ok(InstallSnapshot {
        term: uint(&params[0], "term")?,
        leader_id: uint(&params[1], "leader_id")?,
        last_index: uint(&params[2], "last_index")?,
        last_term: uint(&params[3], "last_term")?,
        offset: uint(&params[4], "offset")?,
        data: data.clone(),
        done: boolean(&params[6], "done")?,
    })
}

/// `[success, term]`.
pub fn append_reply_value(r: &AppendReply) -> Result<Value, String> {
    Ok(Value::Array(vec![
        Value::Boolean(r.success),
        int(r.term, "term")?,
    ]))
}

/// `[term, vote_granted]`.
pub fn vote_reply_value(r: &VoteReply) -> Result<Value, String> {
    let mut v = vec![int(r.term, "term")?, Value::Boolean(r.vote_granted)];
    // A signed vote (a cluster with keys, where no original node is).
    v.extend(r.sig.as_ref().map(|s| Value::Base64(s.to_vec())));
    Ok(Value::Array(v))
}

/// Read a peer's reply to `rpc`.
pub fn reply_from_value(rpc: &Rpc, v: &Value) -> Result<Reply, String> {
    let pair = |v: &Value| -> Result<(Value, Value), String> {
        match v {
            Value::Array(a) if a.len() == 2 => Ok((a[0].clone(), a[1].clone())),
            other => Err(format!("expected a 2-item array, got {}", kind(other))),
        }
    };
    let msg = |f: Fault| f.string().to_owned();
    match rpc {
        Rpc::AppendEntries(_) => {
            let (s, t) = pair(v)?;
            Ok(Reply::Append(AppendReply {
                success: boolean(&s, "success").map_err(msg)?,
                term: uint(&t, "term").map_err(msg)?,
            }))
        }
        Rpc::RequestVote(_) | Rpc::PreVote(_) => {
            let (v, sig) = match v {
                Value::Array(a) if a.len() == 3 => (Value::Array(a[..2].to_vec()), Some(&a[2])),
                v => (v.clone(), None),
            };
            let (t, g) = pair(&v)?;
            let sig = match sig {
                None => None,
                Some(Value::Base64(b)) => Some(std::sync::Arc::new(
                    <[u8; 64]>::try_from(b.as_slice())
                        .map_err(|_| "a vote's sig is not 64 bytes")?,
                )),
                Some(other) => {
                    return Err(format!("a vote's sig must be base64, got {}", kind(other)));
                }
            };
            Ok(Reply::Vote(VoteReply {
                term: uint(&t, "term").map_err(msg)?,
                vote_granted: boolean(&g, "vote_granted").map_err(msg)?,
                sig,
            }))
        }
        Rpc::IsLogEmpty => Ok(Reply::LogEmpty(boolean(v, "is_log_empty").map_err(msg)?)),
        Rpc::InstallSnapshot(_) => Ok(Reply::Snapshot(uint(v, "term").map_err(msg)?)),
        Rpc::TimeoutNow { .. } => Ok(Reply::TimeoutNow(uint(v, "term").map_err(msg)?)),
        Rpc::TransferLeader(_) => Ok(Reply::Transfer(uint(v, "target").map_err(msg)?)),
        Rpc::AddServer { .. } => Ok(Reply::ServerAdded(uint(v, "id").map_err(msg)?)),
        Rpc::RemoveServer(_) => Ok(Reply::ServerRemoved(uint(v, "id").map_err(msg)?)),
    }
}

/// Write integers as `<int>` (Python's spelling) instead of dxr's `<i4>`.
/// Safe on whole documents: text is escaped, so `<i4>` can only be a tag.
pub fn int_tags(xml: String) -> String {
    if xml.contains("<i4>") {
        xml.replace("<i4>", "<int>").replace("</i4>", "</int>")
    } else {
        xml
    }
}

/// A whole request body, as Python's `ServerProxy` would send it.
pub fn call_body(method: &str, params: Vec<Value>) -> Result<String, String> {
    let call = MethodCall {
        name: method.into(),
        params,
    };
    let xml = call.to_xml().map_err(|e| e.to_string())?;
    Ok(int_tags(format!("<?xml version='1.0'?>\n{xml}\n")))
}

/// `call_body(rpc.method(), rpc_params(rpc)?)`, byte for byte, written
/// straight into one pre-sized `String` (no `Value` tree, no serde): the
/// sending path of every node. Same 32-bit checks, in the same order, with
/// the same messages. Text commands are escaped as dxr's quick-xml does
/// (`&<>'"` and `\r`; everything else verbatim).
/// Bytes a signature adds to an entry (its member and 88 base64 digits).
const SIG_BYTES: usize = 150;

pub fn rpc_body(rpc: &Rpc) -> Result<String, String> {
    const HEAD: &str = "<?xml version='1.0'?>\n<methodCall><methodName>";
    // Configurations and stamps are rare enough for the codec of record.
    let needs_dxr = |a: &AppendEntries| {
        a.entries
            .iter()
            .flatten()
            .any(|e| matches!(e.command, Command::Config(_) | Command::Stamp(_)))
    };
    let rare = match rpc {
        Rpc::AppendEntries(a) => needs_dxr(a),
        Rpc::RequestVote(_) | Rpc::PreVote(_) | Rpc::IsLogEmpty => false,
        _ => true,
    };
    if rare {
        // Rare and not worth a fast path: the dxr codec of record.
        return call_body(rpc.method(), rpc_params(rpc)?);
    }
    let size = match rpc {
        Rpc::AppendEntries(a) => {
            320 + a.entries.as_ref().map_or(0, |es| {
                es.iter()
                    .map(|e| {
                        e.sig.as_ref().map_or(0, |_| SIG_BYTES)
                            + match &e.command {
                                Command::Int(_) => ENTRY_BYTES,
                                Command::Text(t) => ENTRY_BYTES + 8 + t.len() + t.len() / 4,
                                Command::Config(_) | Command::Stamp(_) => {
                                    unreachable!("configurations and stamps take the dxr path")
                                }
                            }
                    })
                    .sum()
            })
        }
        _ => 320,
    };
    let mut o = String::with_capacity(size);
    o.push_str(HEAD);
    o.push_str(rpc.method());
    if matches!(rpc, Rpc::IsLogEmpty) {
        // dxr leaves out an empty `<params>` (Python reads it either way).
        o.push_str("</methodName></methodCall>\n");
        return Ok(o);
    }
    o.push_str("</methodName><params>");
    match rpc {
        Rpc::AppendEntries(a) => {
            match &a.entries {
                None => o.push_str("<param><value><nil></nil></value></param>"),
                Some(es) => {
                    o.push_str("<param><value><array><data>");
                    for e in es {
                        push_entry(&mut o, e)?;
                    }
                    o.push_str("</data></array></value></param>");
                }
            }
            push_param_int(&mut o, Some(a.term), "term")?;
            push_param_int(&mut o, a.commit_index, "commit_index")?;
            o.push_str(if a.all_log {
                "<param><value><boolean>1</boolean></value></param>"
            } else {
                "<param><value><boolean>0</boolean></value></param>"
            });
        }
        Rpc::RequestVote(v) | Rpc::PreVote(v) => {
            push_param_int(&mut o, Some(v.term), "term")?;
            push_param_int(&mut o, Some(v.candidate_id), "candidate_id")?;
            push_param_int(&mut o, v.last_log_index, "last_log_index")?;
            push_param_int(&mut o, v.last_log_term, "last_log_term")?;
        }
        Rpc::IsLogEmpty
        | Rpc::InstallSnapshot(_)
        | Rpc::TimeoutNow { .. }
        | Rpc::TransferLeader(_)
        | Rpc::AddServer { .. }
        | Rpc::RemoveServer(_) => {}
    }
    o.push_str("</params></methodCall>\n");
    Ok(o)
}

/// About what one entry with an int command takes on the wire.
const ENTRY_BYTES: usize = 200;

/// The 32-bit check of [`int`], without building a `Value`.
fn checked(n: u64, what: &str) -> Result<u32, String> {
    if n > WIRE_MAX {
        return Err(format!("{what} {n} does not fit the wire's 32-bit int"));
    }
    Ok(n as u32)
}

/// Decimal digits of `n`, as `Display` writes them.
fn push_u32(o: &mut String, mut n: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        o.push(char::from(b));
    }
}

fn push_i32(o: &mut String, n: i32) {
    if n < 0 {
        o.push('-');
    }
    push_u32(o, n.unsigned_abs());
}

/// `<value><int>n</int></value>` or `<value><nil></nil></value>`; checked
/// before anything is written.
fn push_value_int(o: &mut String, n: Option<u64>, what: &str) -> Result<(), String> {
    match n {
        Some(n) => {
            let n = checked(n, what)?;
            o.push_str("<value><int>");
            push_u32(o, n);
            o.push_str("</int></value>");
        }
        None => o.push_str("<value><nil></nil></value>"),
    }
    Ok(())
}

fn push_param_int(o: &mut String, n: Option<u64>, what: &str) -> Result<(), String> {
    o.push_str("<param>");
    push_value_int(o, n, what)?;
    o.push_str("</param>");
    Ok(())
}

/// One entry struct, members sorted by name as dxr's `BTreeMap` writes them;
/// term is checked before index, as in `entry_to`.
fn push_entry(o: &mut String, e: &WireEntry) -> Result<(), String> {
    let term = checked(e.term, "term")?;
    let index = e.index.map(|i| checked(i, "index")).transpose()?;
    o.push_str("<value><struct><member><name>command</name><value>");
    match &e.command {
        Command::Int(c) => {
            o.push_str("<int>");
            push_i32(o, *c);
            o.push_str("</int>");
        }
        Command::Text(t) => {
            o.push_str("<string>");
            push_escaped(o, t);
            o.push_str("</string>");
        }
        Command::Config(_) | Command::Stamp(_) => {
            unreachable!("configurations and stamps take the dxr path")
        }
    }
    o.push_str("</value></member><member><name>index</name>");
    push_value_int(o, index.map(u64::from), "index")?;
    if let Some(sig) = &e.sig {
        // Members in dxr's (alphabetical) order; base64 as dxr writes it.
        use base64::Engine;
        o.push_str("</member><member><name>sig</name><value><base64>");
        base64::engine::general_purpose::STANDARD.encode_string(&sig[..], o);
        o.push_str("</base64></value>");
    }
    o.push_str("</member><member><name>term</name><value><int>");
    push_u32(o, term);
    o.push_str("</int></value></member></struct></value>");
    Ok(())
}

/// Text content as quick-xml writes it at dxr's `QuoteLevel::Full`.
fn push_escaped(o: &mut String, t: &str) {
    let mut from = 0;
    for (i, b) in t.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'\'' => "&apos;",
            b'"' => "&quot;",
            b'\r' => "&#13;",
            _ => continue,
        };
        o.push_str(&t[from..i]);
        o.push_str(rep);
        from = i + 1;
    }
    o.push_str(&t[from..]);
}

/// Parse a response body: the value, or the peer's Fault. Scalar and
/// array replies (every Raft reply but a signed vote) take [`fast::response`],
/// which gives what dxr gives; the rest takes dxr.
pub fn parse_response(body: &str) -> Result<Result<Value, Fault>, String> {
    match fast::response(body) {
        Some(v) => Ok(Ok(v)),
        None => parse_response_dxr(body),
    }
}

/// [`parse_response`] by dxr alone (the codec of record).
pub fn parse_response_dxr(body: &str) -> Result<Result<Value, Fault>, String> {
    match dxr_client::utils::response_to_result(body) {
        Ok(Ok(MethodResponse { value })) => Ok(Ok(value)),
        Ok(Err(f)) => Ok(Err(f.fault)),
        Err(e) => Err(format!(
            "unreadable XML-RPC response: {}",
            shorten(&e.to_string())
        )),
    }
}

fn shorten(s: &str) -> String {
    let mut t: String = s.chars().take(200).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_nil_index() {
        let a = AppendEntries {
            entries: Some(vec![
                WireEntry {
                    term: 1,
                    index: Some(4),
                    command: Command::Int(5),
                    client: None,
                    sig: None,
                },
                WireEntry {
                    term: 1,
                    index: None,
                    command: Command::Text("x".into()),
                    client: None,
                    sig: None,
                },
            ]),
            term: 1,
            commit_index: None,
            all_log: true,
            proof: None,
        };
        let p = rpc_params(&Rpc::AppendEntries(a.clone())).unwrap();
        assert_eq!(append_from_params(&p).unwrap(), a);
    }

    #[test]
    fn stamps_round_trip_and_malformed_ones_are_refused() {
        let stamp = Command::Stamp(crate::raft::Stamp {
            ms: 1_800_000_000_123,
            limit: 20,
        });
        let a = AppendEntries {
            entries: Some(vec![WireEntry {
                term: 2,
                index: Some(9),
                command: stamp.clone(),
                client: None,
                sig: None,
            }]),
            term: 2,
            commit_index: Some(8),
            all_log: false,
            proof: None,
        };
        let rpc = Rpc::AppendEntries(a.clone());
        let p = rpc_params(&rpc).unwrap();
        assert_eq!(append_from_params(&p).unwrap(), a);
        let body = rpc_body(&rpc).unwrap();
        assert_eq!(body, call_body(rpc.method(), p).unwrap());
        let bad = |members: &[(&str, Value)]| {
            let m = members
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            command_from(&Value::Struct(m)).unwrap_err()
        };
        let digits = Value::String("12".into());
        bad(&[("stamp", digits.clone())]);
        bad(&[
            ("stamp", Value::String("-12".into())),
            ("limit", Value::Integer(1)),
        ]);
        bad(&[("stamp", Value::Integer(12)), ("limit", Value::Integer(1))]);
        bad(&[("stamp", digits.clone()), ("limit", Value::Integer(-1))]);
        bad(&[
            ("stamp", Value::String("99999999999999999999999".into())),
            ("limit", Value::Integer(1)),
        ]);
        bad(&[
            ("stamp", digits),
            ("limit", Value::Integer(1)),
            ("x", Value::Integer(1)),
        ]);
    }

    #[test]
    fn refuses_bad_arguments() {
        let ok = || {
            vec![
                Value::Nil,
                Value::Integer(1),
                Value::Nil,
                Value::Boolean(false),
            ]
        };
        assert!(append_from_params(&ok()).is_ok());
        let mut p = ok();
        p[1] = Value::Integer(-1);
        assert!(
            append_from_params(&p)
                .unwrap_err()
                .string()
                .contains("negative")
        );
        let mut p = ok();
        p[3] = Value::Integer(1);
        assert!(
            append_from_params(&p)
                .unwrap_err()
                .string()
                .contains("boolean")
        );
        let mut p = ok();
        p[0] = Value::Array(vec![Value::Integer(3)]);
        assert!(
            append_from_params(&p)
                .unwrap_err()
                .string()
                .contains("struct")
        );
        assert!(append_from_params(&ok()[..3]).is_err());
        let mut m = BTreeMap::new();
        m.insert("term".into(), Value::Integer(1));
        m.insert("index".into(), Value::Integer(1));
        let mut p = ok();
        p[0] = Value::Array(vec![Value::Struct(m)]);
        assert!(
            append_from_params(&p)
                .unwrap_err()
                .string()
                .contains("command")
        );
    }

    #[test]
    fn overflow_is_an_error() {
        assert!(int(WIRE_MAX, "term").is_ok());
        assert!(int(WIRE_MAX + 1, "term").is_err());
    }

    fn dxr_body(rpc: &Rpc) -> Result<String, String> {
        rpc_params(rpc).and_then(|p| call_body(rpc.method(), p))
    }

    fn text(term: u64, index: Option<u64>, t: &str) -> WireEntry {
        WireEntry {
            term,
            index,
            command: Command::Text(t.into()),
            client: None,
            sig: None,
        }
    }

    fn signed(mut e: WireEntry) -> WireEntry {
        let mut sig = [0u8; 64];
        sig.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i * 37) as u8);
        e.sig = Some(Arc::new(sig));
        e
    }

    fn int_entry(term: u64, index: Option<u64>, c: i32) -> WireEntry {
        WireEntry {
            term,
            index,
            command: Command::Int(c),
            client: None,
            sig: None,
        }
    }

    fn append(entries: Option<Vec<WireEntry>>, term: u64, commit: Option<u64>, all: bool) -> Rpc {
        Rpc::AppendEntries(AppendEntries {
            entries,
            term,
            commit_index: commit,
            all_log: all,
            proof: None,
        })
    }

    fn vote(term: u64, id: u64, li: Option<u64>, lt: Option<u64>) -> VoteRequest {
        VoteRequest {
            term,
            candidate_id: id,
            last_log_index: li,
            last_log_term: lt,
            transfer: false,
        }
    }

    const TRICKY: [&str; 12] = [
        "",
        "x",
        "a<b>&'\"c",
        "&amp; &lt;",
        "]]>",
        "  spaced  ",
        "tab\tnl\ncr\r\ncrlf",
        "héllo wörld ✓ 日本 🦀",
        "<int>3</int>",
        "\u{0}\u{1}\u{7f}\u{85}\u{2028}",
        "'''''",
        "\"\"",
    ];

    #[test]
    fn fast_body_is_byte_identical_to_dxr() {
        let max = WIRE_MAX;
        let mut cases = vec![
            append(None, 0, None, false),
            append(None, max, Some(max), true),
            append(Some(vec![]), 1, Some(0), false),
            append(
                Some(vec![
                    int_entry(0, Some(0), 0),
                    int_entry(max, Some(max), i32::MAX),
                    int_entry(7, None, i32::MIN),
                    int_entry(7, Some(12345), -1),
                ]),
                7,
                None,
                true,
            ),
            Rpc::RequestVote(vote(0, 0, None, None)),
            Rpc::RequestVote(vote(max, max, Some(max), Some(max))),
            Rpc::PreVote(vote(3, 2, Some(9), Some(2))),
            Rpc::PreVote(vote(3, 2, None, None)),
            Rpc::IsLogEmpty,
            append(
                Some(vec![
                    signed(int_entry(3, Some(9), 2)),
                    int_entry(3, None, 1),
                ]),
                3,
                Some(8),
                false,
            ),
        ];
        for t in TRICKY {
            cases.push(append(
                Some(vec![text(1, Some(0), t), int_entry(1, None, 4)]),
                1,
                Some(1),
                false,
            ));
        }
        // Every character up to U+0800, and some beyond, one per entry.
        let chars: Vec<char> = (0u32..0x800)
            .chain([0xfffd, 0xfeff, 0x10000, 0x10ffff])
            .filter_map(char::from_u32)
            .collect();
        cases.push(append(
            Some(
                chars
                    .iter()
                    .map(|c| text(2, Some(3), &format!("{c}{c}a{c}")))
                    .collect(),
            ),
            2,
            None,
            false,
        ));
        for rpc in &cases {
            let want = dxr_body(rpc).unwrap();
            assert_eq!(rpc_body(rpc).unwrap(), want, "{rpc:?}");
        }
    }

    #[test]
    fn fast_body_refuses_what_dxr_refuses() {
        let big = WIRE_MAX + 1;
        let cases = vec![
            append(None, big, None, false),
            append(None, 1, Some(big), false),
            append(None, big, Some(big), false),
            append(Some(vec![int_entry(big, Some(1), 1)]), 1, None, false),
            append(Some(vec![int_entry(1, Some(big), 1)]), 1, None, false),
            append(Some(vec![int_entry(big, Some(big), 1)]), big, None, false),
            append(
                Some(vec![int_entry(1, Some(1), 1), text(1, Some(u64::MAX), "x")]),
                1,
                Some(big),
                false,
            ),
            Rpc::RequestVote(vote(big, 1, None, None)),
            Rpc::RequestVote(vote(1, big, None, None)),
            Rpc::PreVote(vote(1, 1, Some(big), None)),
            Rpc::PreVote(vote(1, 1, Some(1), Some(u64::MAX))),
        ];
        for rpc in &cases {
            let want = dxr_body(rpc).unwrap_err();
            assert!(
                want.contains("does not fit the wire's 32-bit int"),
                "{want}"
            );
            assert_eq!(rpc_body(rpc).unwrap_err(), want, "{rpc:?}");
        }
    }

    #[test]
    fn bodies_use_int_tags() {
        let body = call_body("is_log_empty", vec![Value::Integer(3)]).unwrap();
        assert!(body.contains("<int>3</int>"), "{body}");
        assert!(!body.contains("i4"));
    }

    fn with_clients(ids: &[Option<(u64, u64, u64)>]) -> Vec<WireEntry> {
        ids.iter()
            .map(|id| WireEntry {
                term: 1,
                index: None,
                command: Command::Int(1),
                client: id.map(|(node, incarnation, seq)| ClientId {
                    node,
                    incarnation,
                    seq,
                }),
                sig: None,
            })
            .collect()
    }

    #[test]
    fn clients_header_round_trips_in_runs() {
        let ids = [
            Some((1, 7, 10)),
            Some((1, 7, 11)),
            Some((1, 7, 12)),
            None,
            Some((2, 3, 1)),
            Some((1, 7, 13)),
        ];
        let sent = with_clients(&ids);
        let h = clients_header(&sent).unwrap();
        assert_eq!(h, "0:1.7.10+2,4:2.3.1,5:1.7.13");
        let mut got = with_clients(&[None; 6]);
        apply_clients_header(&mut got, &h).unwrap();
        assert_eq!(got, sent);
        assert_eq!(clients_header(&with_clients(&[None, None])), None);
    }

    #[test]
    fn bad_clients_headers_change_nothing() {
        for h in [
            "",
            "x",
            "0:1.2",
            "0:1.2.3.4",
            "9:1.2.3",
            "0:1.2.3+5",
            "0:-1.2.3",
            "1:1.2.3,0:1.2.18446744073709551615+1",
        ] {
            let mut e = with_clients(&[None, None]);
            assert!(apply_clients_header(&mut e, h).is_err(), "{h:?} accepted");
            assert_eq!(e, with_clients(&[None, None]), "{h:?} changed entries");
        }
    }
}
