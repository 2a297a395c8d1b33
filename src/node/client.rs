//! XML-RPC calls from the command line (`raftian leave`, `--join`): one
//! request, one answer, a clear error.

use std::time::Duration;

use dxr::{Fault, Value};

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

/// Call `method(params)` on the node at `addr` (`host:port`), waiting at
/// most `timeout`.
pub fn call(
    addr: &str,
    method: &str,
    params: Vec<Value>,
    timeout: Duration,
) -> Result<Value, CallError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CallError::Unreachable(e.to_string()))?;
    rt.block_on(call_async(addr, method, params, timeout))
}

async fn call_async(
    addr: &str,
    method: &str,
    params: Vec<Value>,
    timeout: Duration,
) -> Result<Value, CallError> {
    let unreachable = |e: String| CallError::Unreachable(format!("{addr}: {e}"));
    let body = wire::call_body(method, params).map_err(unreachable)?;
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let resp = client
        .post(format!("http://{addr}/RPC2"))
        .header("content-type", "text/xml")
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
