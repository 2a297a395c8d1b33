//! XML-RPC calls from the command line (`raftian leave`, `--join`): one
//! request, one answer, a clear error.

use std::time::Duration;

use dxr::{Fault, Value};
use ed25519_dalek::SigningKey;

use super::auth::AUTH_HEADER;
use super::server::NODE_HEADER;
use crate::keys;
use crate::raft::NodeId;
use crate::wire;

/// Why a call got no answer, or got a Fault.
#[derive(Debug)]
pub enum CallError {
    /// Nobody answered (refused, timed out, not XML-RPC).
    Unreachable(String),
    /// The node answered with a Fault.
    Fault(Fault),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(e) => f.write_str(e),
            CallError::Fault(fault) => write!(f, "{} (fault {})", fault.string(), fault.code()),
        }
    }
}

/// A member's key, to sign calls with (in an authenticated cluster).
pub struct Signer {
    pub key: SigningKey,
    /// The member the key is (found by its public key, see [`Signer::find`]).
    pub id: NodeId,
}

impl Signer {
    /// The member whose public key `key` has, as the node at `addr` lists
    /// its members.
    pub fn find(addr: &str, key: SigningKey, timeout: Duration) -> Result<Signer, String> {
        let me = keys::public_b64(&key);
        let status = call(addr, "status", vec![], timeout).map_err(|e| e.to_string())?;
        let Value::Struct(s) = status else {
            return Err(format!("{addr}: status() is not a struct"));
        };
        let Some(Value::Array(members)) = s.get("members") else {
            return Err(format!("{addr}: status() lists no members"));
        };
        let id = members.iter().find_map(|m| {
            let Value::Struct(m) = m else { return None };
            let key = match m.get("public_key") {
                Some(Value::String(k)) => k,
                _ => return None,
            };
            match m.get("id") {
                Some(Value::Integer(id)) if *key == me => Some(*id as NodeId),
                _ => None,
            }
        });
        let id = id.ok_or_else(|| format!("no member of {addr}'s cluster has this key"))?;
        Ok(Signer { key, id })
    }
}

/// The id the node at `addr` answers with (its `status().id`).
fn node_id(addr: &str, timeout: Duration) -> Result<NodeId, CallError> {
    match call(addr, "status", vec![], timeout)? {
        Value::Struct(s) => match s.get("id") {
            Some(Value::Integer(id)) => Ok(*id as NodeId),
            _ => Err(CallError::Unreachable(format!(
                "{addr}: status() has no id"
            ))),
        },
        _ => Err(CallError::Unreachable(format!(
            "{addr}: status() is not a struct"
        ))),
    }
}

/// [`call`], signed with `signer`'s key when there is one.
pub fn call_as(
    signer: Option<&Signer>,
    addr: &str,
    method: &str,
    params: Vec<Value>,
    timeout: Duration,
) -> Result<Value, CallError> {
    let Some(s) = signer else {
        return call(addr, method, params, timeout);
    };
    let to = node_id(addr, timeout)?;
    let body = wire::call_body(method, params).map_err(CallError::Unreachable)?;
    let counter = keys::Counter::default().next();
    let sig = keys::sign_request(&s.key, s.id, to, counter, body.as_bytes());
    let headers = [(NODE_HEADER, s.id.to_string()), (AUTH_HEADER, sig)];
    runtime()?.block_on(post(addr, body, &headers, timeout))
}

fn runtime() -> Result<tokio::runtime::Runtime, CallError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CallError::Unreachable(e.to_string()))
}

/// Call `method(params)` on the node at `addr` (`host:port`), waiting at
/// most `timeout`.
pub fn call(
    addr: &str,
    method: &str,
    params: Vec<Value>,
    timeout: Duration,
) -> Result<Value, CallError> {
    let body = wire::call_body(method, params).map_err(CallError::Unreachable)?;
    runtime()?.block_on(post(addr, body, &[], timeout))
}

async fn post(
    addr: &str,
    body: String,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<Value, CallError> {
    let unreachable = |e: String| CallError::Unreachable(format!("{addr}: {e}"));
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let mut req = client
        .post(format!("http://{addr}/RPC2"))
        .header("content-type", "text/xml");
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let text = resp.text().await.map_err(|e| unreachable(e.to_string()))?;
    match wire::parse_response(&text).map_err(unreachable)? {
        Ok(v) => Ok(v),
        Err(f) => Err(CallError::Fault(f)),
    }
}
