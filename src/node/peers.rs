//! Outgoing RPCs: one keep-alive HTTP client, one task per request, every
//! request bounded by a timeout; the answer goes back to the actor as an
//! event. A slow or dead peer only delays its own replies.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use tokio::sync::mpsc;

use std::sync::Arc;

use super::actor::Event;
use super::auth::{AUTH_HEADER, Auth};
use super::server::{CLIENTS_HEADER, NODE_HEADER, TRANSFER_HEADER, VOTES_HEADER};
use crate::raft::{AppendEntries, NodeId, Outbound, PeerKind, Rpc, RpcFailure};
use crate::wire;

pub struct Peers {
    client: reqwest::Client,
    /// Parsed once: parsing a URL on every request showed up in profiles.
    urls: HashMap<NodeId, reqwest::Url>,
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
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut peers = Peers {
            client,
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
        let new: HashMap<NodeId, reqwest::Url> = addrs
            .into_iter()
            .map(|(id, addr)| {
                reqwest::Url::parse(&format!("http://{addr}/RPC2"))
                    .map(|u| (id, u))
                    .map_err(|e| format!("node {id} has a bad addr '{addr}': {e}"))
            })
            .collect::<Result<_, _>>()?;
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
        let node_header = self.node_header.clone();
        let auth = self.auth.clone();
        tokio::spawn(async move {
            // Encoded here, not on the event loop: big batches to several
            // followers are encoded in parallel, off the loop.
            let body = wire::rpc_body(&msg.rpc);
            let (result, kind) = match body {
                Ok(body) => {
                    let sig = auth.sign(msg.to, body.as_bytes());
                    call(&client, url, (node_header, sig), body, &msg).await
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
    client: &reqwest::Client,
    url: reqwest::Url,
    (node_header, sig): (HeaderValue, Option<String>),
    body: String,
    msg: &Outbound,
) -> (Result<crate::raft::Reply, RpcFailure>, Option<PeerKind>) {
    let mut req = client
        .post(url)
        .header(CONTENT_TYPE, HeaderValue::from_static("text/xml"))
        .header(USER_AGENT, HeaderValue::from_static("raftian-rs"))
        .header(HeaderName::from_static(NODE_HEADER), node_header);
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
    let resp = match req.body(body).send().await {
        Ok(r) => r,
        // A refused connection never carried the request; anything else
        // (a timeout, a reset after sending) may have.
        Err(e) if e.is_connect() => return (Err(RpcFailure::Unreachable(e.to_string())), None),
        Err(e) => return (Err(RpcFailure::Timeout(e.to_string())), None),
    };
    let kind = PeerKind::from_header(resp.headers().contains_key(NODE_HEADER));
    let text = match resp.text().await {
        Ok(t) => t,
        Err(e) => return (Err(RpcFailure::Timeout(e.to_string())), Some(kind)),
    };
    let result = match wire::parse_response(&text) {
        Ok(Ok(v)) => wire::reply_from_value(&msg.rpc, &v).map_err(RpcFailure::Unreachable),
        Ok(Err(f)) => Err(RpcFailure::Fault(f.code(), f.string().to_owned())),
        Err(e) => Err(RpcFailure::Unreachable(e)),
    };
    (result, Some(kind))
}
