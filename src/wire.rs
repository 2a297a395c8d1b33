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

use crate::raft::{
    AppendEntries, AppendReply, Command, Reply, Rpc, VoteReply, VoteRequest, WIRE_MAX, WireEntry,
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
        other => Err(bad_args(format!(
            "command must be an int or a string, got {}",
            kind(other)
        ))),
    }
}

fn command_to(c: &Command) -> Value {
    match c {
        Command::Int(i) => Value::Integer(*i),
        Command::Text(s) => Value::String(s.clone()),
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
        if !matches!(name.as_str(), "term" | "index" | "command") {
            return Err(bad_args(format!(
                "entry {pos} has an unknown member '{name}' (expected term, index, command)"
            )));
        }
    }
    let get = |name: &str| {
        members
            .get(name)
            .ok_or_else(|| bad_args(format!("entry {pos} has no '{name}'")))
    };
    Ok(WireEntry {
        term: uint(get("term")?, "entry term")?,
        index: opt_uint(get("index")?, "entry index")?,
        command: command_from(get("command")?)?,
    })
}

fn entry_to(e: &WireEntry) -> Result<Value, String> {
    let mut m = BTreeMap::new();
    m.insert("term".to_owned(), int(e.term, "term")?);
    m.insert("index".to_owned(), opt_int(e.index, "index")?);
    m.insert("command".to_owned(), command_to(&e.command));
    Ok(Value::Struct(m))
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
    })
}

/// Parse `request_vote_rpc` / `pre_vote_rpc` arguments.
pub fn vote_from_params(params: &[Value], method: &str) -> Result<VoteRequest, Fault> {
    expect_count(params, 4, method)?;
    Ok(VoteRequest {
        term: uint(&params[0], "term")?,
        candidate_id: uint(&params[1], "candidate_id")?,
        last_log_index: opt_uint(&params[2], "last_log_index")?,
        last_log_term: opt_uint(&params[3], "last_log_term")?,
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
    Ok(Value::Array(vec![
        int(r.term, "term")?,
        Value::Boolean(r.vote_granted),
    ]))
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
            let (t, g) = pair(v)?;
            Ok(Reply::Vote(VoteReply {
                term: uint(&t, "term").map_err(msg)?,
                vote_granted: boolean(&g, "vote_granted").map_err(msg)?,
            }))
        }
        Rpc::IsLogEmpty => Ok(Reply::LogEmpty(boolean(v, "is_log_empty").map_err(msg)?)),
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

/// Parse a response body: the value, or the peer's Fault.
pub fn parse_response(body: &str) -> Result<Result<Value, Fault>, String> {
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
                },
                WireEntry {
                    term: 1,
                    index: None,
                    command: Command::Text("x".into()),
                },
            ]),
            term: 1,
            commit_index: None,
            all_log: true,
        };
        let p = rpc_params(&Rpc::AppendEntries(a.clone())).unwrap();
        assert_eq!(append_from_params(&p).unwrap(), a);
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

    #[test]
    fn bodies_use_int_tags() {
        let body = call_body("is_log_empty", vec![Value::Integer(3)]).unwrap();
        assert!(body.contains("<int>3</int>"), "{body}");
        assert!(!body.contains("i4"));
    }
}
