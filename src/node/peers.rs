//! Outgoing RPCs: one keep-alive HTTP client, one task per request, every
//! request bounded by a timeout; the answer goes back to the actor as an
//! event. A slow or dead peer only delays its own replies.
//!
//! The client is hyper's (hyper-util's pooled client), not reqwest's: an
//! idle leader's work is its heartbeats, and reqwest's layers (redirects,
//! retries) parsed each request's URL twice more and cost a fifth of its
//! instructions for features a node never uses.

use std::collections::HashMap;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::mpsc;

use std::sync::Arc;

use super::actor::Event;
use super::auth::{AUTH_HEADER, Auth};
use super::server::{CLIENTS_HEADER, NODE_HEADER, TRANSFER_HEADER, VOTES_HEADER};
use crate::raft::{AppendEntries, NodeId, Outbound, PeerKind, Rpc, RpcFailure};
use crate::wire;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Where a peer's requests go, parsed once: parsing a URL on every request
/// showed up in profiles.
#[derive(Clone)]
struct Target {
    uri: Uri,
    host: HeaderValue,
}

pub struct Peers {
    client: HttpClient,
    timeout: Duration,
    urls: HashMap<NodeId, Target>,
    /// This node's id as a header value, built once: requests share it
    /// (a reference count, no formatting or copy per request).
    node_header: HeaderValue,
    events: mpsc::UnboundedSender<Event>,
    auth: Arc<Auth>,
}

impl Peers {
    pub fn new(
        my_id: NodeId,
        addrs: impl IntoIterator<Item = (NodeId, String)>,
        timeout: Duration,
        events: mpsc::UnboundedSender<Event>,
        auth: Arc<Auth>,
    ) -> Result<Self, String> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(TokioTimer::new())
            .build(connector);
        let mut peers = Peers {
            client,
            timeout,
            urls: HashMap::new(),
            node_header: HeaderValue::from(my_id),
            events,
            auth,
        };
        peers.set_addrs(addrs)?;
        Ok(peers)
    }

    /// Where each peer is (the membership changed). Peers not named keep
    /// their address: a removed node still gets the heartbeats that tell
    /// it its removal is committed.
    pub fn set_addrs(
        &mut self,
        addrs: impl IntoIterator<Item = (NodeId, String)>,
    ) -> Result<(), String> {
        let new: HashMap<NodeId, Target> = addrs
            .into_iter()
            .map(|(id, addr)| {
                let bad = |e: String| format!("node {id} has a bad addr '{addr}': {e}");
                let uri: Uri = format!("http://{addr}/RPC2")
                    .parse()
                    .map_err(|e: hyper::http::uri::InvalidUri| bad(e.to_string()))?;
                let host = uri
                    .authority()
                    .filter(|_| uri.path() == "/RPC2")
                    .ok_or_else(|| bad("not host:port".into()))?;
                let host = HeaderValue::from_str(host.as_str()).map_err(|e| bad(e.to_string()))?;
                Ok((id, Target { uri, host }))
            })
            .collect::<Result<_, String>>()?;
        self.urls.extend(new);
        Ok(())
    }

    /// Send one request; its reply comes back as `Event::Reply`.
    pub fn send(&self, msg: Outbound) {
        let events = self.events.clone();
        let Some(url) = self.urls.get(&msg.to).cloned() else {
            let _ = events.send(Event::Reply {
                from: msg.to,
                seq: msg.seq,
                result: Err(RpcFailure::Unreachable("unknown peer".into())),
                kind: None,
            });
            return;
        };
        let client = self.client.clone();
        let timeout = self.timeout;
        let node_header = self.node_header.clone();
        let auth = self.auth.clone();
        tokio::spawn(async move {
            // Encoded here, not on the event loop: big batches to several
            // followers are encoded in parallel, off the loop.
            let body = wire::rpc_body(&msg.rpc);
            let (result, kind) = match body {
                Ok(body) => {
                    let sig = auth.sign(msg.to, body.as_bytes());
                    match tokio::time::timeout(
                        timeout,
                        call(&client, url, (node_header, sig), body, &msg),
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => (
                            Err(RpcFailure::Timeout(format!(
                                "no answer within {} ms",
                                timeout.as_millis()
                            ))),
                            None,
                        ),
                    }
                }
                Err(e) => (Err(RpcFailure::Unreachable(e)), None),
            };
            let _ = events.send(Event::Reply {
                from: msg.to,
                seq: msg.seq,
                result,
                kind,
            });
        });
    }
}

async fn call(
    client: &HttpClient,
    to: Target,
    (node_header, sig): (HeaderValue, Option<String>),
    body: String,
    msg: &Outbound,
) -> (Result<crate::raft::Reply, RpcFailure>, Option<PeerKind>) {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(to.uri)
        .header(HOST, to.host)
        .header(CONTENT_TYPE, HeaderValue::from_static("text/xml"))
        .header(USER_AGENT, HeaderValue::from_static("raftian-rs"))
        .header(NODE_HEADER, node_header);
    if let Some(sig) = sig {
        req = req.header(AUTH_HEADER, sig);
    }
    if let Rpc::AppendEntries(a) = &msg.rpc
        && let Some(h) = a.entries.as_deref().and_then(wire::clients_header)
    {
        req = req.header(CLIENTS_HEADER, h);
    }
    if let Rpc::AppendEntries(AppendEntries { proof: Some(p), .. }) = &msg.rpc {
        req = req.header(VOTES_HEADER, wire::proof_header(p));
    }
    if let Rpc::RequestVote(v) = &msg.rpc
        && v.transfer
    {
        req = req.header(TRANSFER_HEADER, "1");
    }
    let req = match req.body(Full::new(Bytes::from(body))) {
        Ok(r) => r,
        Err(e) => return (Err(RpcFailure::Unreachable(e.to_string())), None),
    };
    let resp = match client.request(req).await {
        Ok(r) => r,
        // A refused connection never carried the request; anything else
        // (a reset after sending) may have.
        Err(e) if e.is_connect() => return (Err(RpcFailure::Unreachable(describe(&e))), None),
        Err(e) => return (Err(RpcFailure::Timeout(describe(&e))), None),
    };
    let kind = PeerKind::from_header(resp.headers().contains_key(NODE_HEADER));
    let bytes = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return (Err(RpcFailure::Timeout(describe(&e))), Some(kind)),
    };
    let text = String::from_utf8_lossy(&bytes);
    let result = match wire::parse_response(&text) {
        Ok(Ok(v)) => wire::reply_from_value(&msg.rpc, &v).map_err(RpcFailure::Unreachable),
        Ok(Err(f)) => Err(RpcFailure::Fault(f.code(), f.string().to_owned())),
        Err(e) => Err(RpcFailure::Unreachable(e)),
    };
    (result, Some(kind))
}

/// An error and its causes ("client error (Connect): tcp connect error:
/// Connection refused"): hyper's own text names only the outermost.
fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_unreachable_and_says_why() {
        // A port just released: nobody listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let peers = Peers::new(
                0,
                [(1, format!("127.0.0.1:{port}"))],
                Duration::from_secs(2),
                tx,
                Auth::new(0, None),
            )
            .unwrap();
            peers.send(Outbound {
                to: 1,
                seq: 7,
                rpc: Rpc::RequestVote(crate::raft::VoteRequest {
                    term: 1,
                    candidate_id: 0,
                    last_log_index: None,
                    last_log_term: None,
                    transfer: false,
                }),
            });
            let Some(Event::Reply {
                from,
                seq,
                result,
                kind,
            }) = rx.recv().await
            else {
                panic!("no reply event");
            };
            assert_eq!((from, seq, kind), (1, 7, None));
            match result {
                Err(RpcFailure::Unreachable(why)) => assert!(why.contains("onnect"), "{why}"),
                other => panic!("expected Unreachable, got {other:?}"),
            }
        });
    }
}
