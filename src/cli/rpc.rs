//! A small XML-RPC client for the command-line tools: one HTTP client, every
//! call bounded by a timeout, answers read with `wire` (the same codec the
//! nodes use).

use std::time::Duration;

use dxr::{Fault, Value};
use reqwest::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};

use crate::wire;

#[derive(Clone, Debug)]
pub struct RpcClient {
    http: reqwest::Client,
    timeout: Duration,
}

/// Why a call got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// Nothing answered (refused, unreachable, timed out, not XML-RPC).
    Unreachable(String),
    /// The node answered with a Fault.
    Fault(i32, String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(m) => f.write_str(m),
            CallError::Fault(_, m) => f.write_str(m),
        }
    }
}

impl RpcClient {
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(RpcClient { http, timeout })
    }

    /// Call `method(params)` on the node at `addr` (HOST:PORT).
    pub async fn call(
        &self,
        addr: &str,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, CallError> {
        let url = node_url(addr).map_err(CallError::Unreachable)?;
        let body = wire::call_body(method, params).map_err(CallError::Unreachable)?;
        let unreachable = |e: reqwest::Error| CallError::Unreachable(self.describe(&e));
        let resp = self
            .http
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("text/xml"))
            .header(USER_AGENT, HeaderValue::from_static("raftian-cli"))
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let text = resp.text().await.map_err(unreachable)?;
        match wire::parse_response(&text).map_err(CallError::Unreachable)? {
            Ok(v) => Ok(v),
            Err(f) => Err(fault(&f)),
        }
    }

    /// A short reason, e.g. "connection refused" or "no answer within 300 ms".
    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!("no answer within {} ms", self.timeout.as_millis());
        }
        // The innermost cause is the useful part ("Connection refused (os
        // error 111)"); reqwest's own text repeats the URL.
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        let text = cause.to_string();
        if let Some(io) = io_kind(e) {
            return match io {
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::TimedOut => {
                    format!("no answer within {} ms", self.timeout.as_millis())
                }
                _ => text,
            };
        }
        text
    }
}

fn io_kind(e: &reqwest::Error) -> Option<std::io::ErrorKind> {
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cause = c.source();
    }
    None
}

fn fault(f: &Fault) -> CallError {
    CallError::Fault(f.code(), one_line(f.string()))
}

/// Whitespace runs (newlines too) folded to one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `http://HOST:PORT/RPC2`, or why `addr` is not a HOST:PORT.
pub fn node_url(addr: &str) -> Result<reqwest::Url, String> {
    let bad = |why: &str| {
        format!("'{addr}' is not a node address (HOST:PORT, e.g. 127.0.0.1:8001): {why}")
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    if host.is_empty() {
        return Err(bad("no host"));
    }
    port.parse::<u16>()
        .map_err(|_| bad(&format!("'{port}' is not a port number")))?;
    if addr.contains(['/', '?', '#', '@', ' ']) {
        return Err(bad("unexpected characters"));
    }
    reqwest::Url::parse(&format!("http://{addr}/RPC2")).map_err(|e| bad(&e.to_string()))
}

/// A value as one line of text: `true`, `3`, `text`, or JSON for the rest.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::String(s) => s.clone(),
        Value::Nil => "nil".into(),
        other => value_json(other).to_string(),
    }
}

/// A value as JSON (structs as objects, arrays as arrays).
pub fn value_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => J::from(*i),
        Value::Double(d) => J::from(*d),
        Value::String(s) => J::String(s.clone()),
        Value::Nil => J::Null,
        Value::Array(a) => J::Array(a.iter().map(value_json).collect()),
        Value::Struct(m) => J::Object(
            m.iter()
                .map(|(k, v)| (k.to_string(), value_json(v)))
                .collect(),
        ),
        other => J::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert_eq!(
            node_url("127.0.0.1:8001").unwrap().as_str(),
            "http://127.0.0.1:8001/RPC2"
        );
        assert!(node_url("localhost:8001").is_ok());
        assert!(node_url("[::1]:8001").is_ok());
        for bad in [
            "127.0.0.1",
            ":8001",
            "host:port",
            "host:70000",
            "a/b:1",
            "h:1/x",
        ] {
            let e = node_url(bad).unwrap_err();
            assert!(e.contains("HOST:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn values_read_as_text() {
        assert_eq!(value_text(&Value::Boolean(true)), "true");
        assert_eq!(value_text(&Value::Integer(3)), "3");
        assert_eq!(one_line("a\n  b\tc "), "a b c");
        let v = Value::Array(vec![Value::Integer(1), Value::Nil]);
        assert_eq!(value_text(&v), "[1,null]");
    }
}
