//! The XML-RPC server (dxr_server on axum), served on `/` and `/RPC2`.
//!
//! Each method parses its arguments with `wire`, hands a typed request to
//! the actor and waits for its answer (given only after the change is on
//! disk). Every answer carries the header `X-Raftian-Node: <id>` so peers
//! can tell a Rust node from an original Python one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::StringRejection;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::post;
use dxr::{Fault, Value};
use dxr_server::{Handler, HandlerMap, HandlerResult, async_trait};
use tokio::sync::{mpsc, oneshot};

use super::actor::Event;
use super::auth::{self, AUTH_HEADER, Auth};
use super::trace::Trace;
use crate::game::{NEW_ROUND, player_from_int};
use crate::queues::{CommandSender, SharedGame, StatusBoard};
use crate::raft::{AppendEntries, Reply, Rpc};
use crate::wire::{self, FAULT_BAD_ARGS, FAULT_UNAVAILABLE, bad_args};

/// Largest request body accepted (4 MiB: a full 4096-entry batch is ~0.6 MiB).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// The header naming the sending / answering Rust node.
pub const NODE_HEADER: &str = "x-raftian-node";
/// The header carrying the client ids of an append's entries (see
/// `wire::clients_header`); only Rust nodes send it.
pub const CLIENTS_HEADER: &str = "x-raftian-clients";
/// An append's proof of its sender's election: the signed votes.
pub const VOTES_HEADER: &str = "x-raftian-votes";
/// Set on a vote request of a candidate the leader handed over to.
pub const TRANSFER_HEADER: &str = "x-raftian-transfer";
/// Set on a membership call a follower passed on to its leader (so that it
/// is passed on at most once).
pub const PROXIED_HEADER: &str = "x-raftian-proxied";

/// Pass a call on to the node at `addr` and relay its answer.
async fn proxy(
    auth: &Auth,
    (to, addr): (u64, &str),
    method: &str,
    params: Vec<Value>,
) -> HandlerResult {
    let fail = |e: String| {
        Fault::new(
            FAULT_UNAVAILABLE,
            format!("passing {method} on to the leader at {addr}: {e}"),
        )
    };
    let body = wire::call_body(method, params).map_err(fail)?;
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}/RPC2"))
        .header("content-type", "text/xml")
        .header(NODE_HEADER, auth.me().to_string())
        .header(PROXIED_HEADER, "1");
    // Checked here already: passed on under this node's signature.
    if let Some(sig) = auth.sign(to, body.as_bytes()) {
        req = req.header(AUTH_HEADER, sig);
    }
    let resp = req
        .timeout(std::time::Duration::from_secs(30))
        .body(body)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let text = resp.text().await.map_err(|e| fail(e.to_string()))?;
    wire::parse_response(&text).map_err(fail)?
}

#[derive(Clone, Copy, Debug)]
enum Method {
    Append,
    Vote,
    PreVote,
    IsLogEmpty,
    InstallSnapshot,
    TimeoutNow,
    TransferLeader,
    AddServer,
    RemoveServer,
    Status,
    Click,
    ClickWait,
    NewRound,
    BenchClick,
    BenchLoad,
}

struct RpcHandler {
    method: Method,
    auth: Arc<Auth>,
    events: mpsc::UnboundedSender<Event>,
    status: StatusBoard,
    game: SharedGame,
    commands: CommandSender,
    trace: Option<Arc<Trace>>,
}

fn unavailable() -> Fault {
    Fault::new(FAULT_UNAVAILABLE, "node is shutting down".into())
}

/// Put the clients header's ids onto the entries (a Rust sender's).
fn client_ids(req: &mut AppendEntries, headers: &HeaderMap) -> Result<(), Fault> {
    let Some(h) = headers.get(CLIENTS_HEADER) else {
        return Ok(());
    };
    let h = h
        .to_str()
        .map_err(|_| bad_args("the clients header is not text"))?;
    let entries = req.entries.as_deref_mut().unwrap_or_default();
    wire::apply_clients_header(entries, h).map_err(bad_args)
}

fn sender_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// Fault code for a request whose signature is missing, wrong or replayed.
pub const FAULT_UNAUTHENTICATED: i32 = 401;

/// What a method needs in an authenticated cluster.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Anyone may call it (`status`, `is_log_empty`).
    Nothing,
    /// A member's signature (Raft and membership methods).
    Member,
    /// This node's own signature (its player's clicks).
    Own,
}

impl Method {
    fn need(self) -> Need {
        match self {
            // bench_click is served only under --apply-trace (benchmarks):
            // unsigned, so that a benchmark measures the cluster's cost.
            Method::Status | Method::IsLogEmpty | Method::BenchClick | Method::BenchLoad => {
                Need::Nothing
            }
            Method::Click | Method::ClickWait | Method::NewRound => Need::Own,
            _ => Need::Member,
        }
    }
}

impl RpcHandler {
    /// In an authenticated cluster, refuse what is not signed as the
    /// method needs; nothing has changed yet.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Fault> {
        let need = self.method.need();
        if !self.auth.on() || need == Need::Nothing {
            return Ok(());
        }
        let refuse = |why: String| {
            Err(Fault::new(
                FAULT_UNAUTHENTICATED,
                format!("unauthenticated: {why}"),
            ))
        };
        match auth::verified(headers) {
            Err(e) => refuse(e),
            Ok(id) if need == Need::Own && id != self.auth.me() => refuse(format!(
                "node {id} may not click for node {}: only its own key may",
                self.auth.me()
            )),
            Ok(id) if !self.auth.is_member(id) => {
                refuse(format!("node {id} is not a member (any more)"))
            }
            Ok(_) => Ok(()),
        }
    }

    /// The sender, as far as it can be believed: in an authenticated
    /// cluster only a signed node header is.
    fn from(&self, headers: &HeaderMap) -> Option<u64> {
        if self.auth.on() {
            auth::verified(headers).ok()
        } else {
            sender_id(headers)
        }
    }

    /// Hand an RPC to the core and wait for its answer (given only once
    /// the change it reports is on disk).
    async fn call(&self, headers: &HeaderMap, rpc: Rpc) -> Result<Reply, Fault> {
        let (reply, rx) = oneshot::channel();
        let ev = Event::Request {
            from: self.from(headers),
            rpc,
            reply,
        };
        self.events.send(ev).map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())?
    }

    fn status_value(&self) -> Value {
        let s = self.status.get();
        let game = self.game.snapshot();
        let opt = |v: Option<u64>| {
            v.map_or(
                Value::Nil,
                |n| Value::Integer(n.min(i32::MAX as u64) as i32),
            )
        };
        let mut m = std::collections::BTreeMap::new();
        m.insert("id".into(), Value::Integer(s.id as i32));
        m.insert("name".into(), Value::String(s.name));
        m.insert("mode".into(), Value::String(s.mode));
        m.insert(
            "term".into(),
            Value::Integer(s.term.min(i32::MAX as u64) as i32),
        );
        m.insert("leader_id".into(), opt(s.leader_id));
        m.insert("commit_index".into(), opt(s.commit_index));
        m.insert("last_applied".into(), opt(s.last_applied));
        m.insert(
            "log_length".into(),
            Value::Integer(s.log_length.min(i32::MAX as u64) as i32),
        );
        // One slot per player id from 1 (nil: no such player on the board).
        let hp = game.hp_by_id().into_iter();
        let hp = hp.map(|h| h.map_or(Value::Nil, Value::Integer));
        m.insert("hp".into(), Value::Array(hp.collect()));
        let orders = game.orders_by_id().into_iter().map(opt);
        m.insert("orders".into(), Value::Array(orders.collect()));
        let round = game.round().min(i32::MAX as u64) as i32;
        m.insert("round".into(), Value::Integer(round));
        m.insert("snapshot_index".into(), opt(s.snapshot_index));
        m.insert("state_digest".into(), Value::String(s.state_digest));
        m.insert("censored_by".into(), opt(s.censored_by));
        m.insert("rate_limit".into(), opt(s.rate_limit.map(u64::from)));
        m.insert("rate_limited".into(), opt(Some(s.rate_limited)));
        m.insert("snapshot_term".into(), opt(s.snapshot_term));
        let members = s.members.iter().map(|mb| {
            let mut e = std::collections::BTreeMap::new();
            e.insert(
                "id".into(),
                Value::Integer(mb.id.min(i32::MAX as u64) as i32),
            );
            e.insert("name".into(), Value::String(mb.name.clone()));
            e.insert("addr".into(), Value::String(mb.addr.clone()));
            e.insert("voter".into(), Value::Boolean(mb.voter));
            if let Some(k) = &mb.public_key {
                e.insert("public_key".into(), Value::String(k.clone()));
            }
            Value::Struct(e)
        });
        m.insert("members".into(), Value::Array(members.collect()));
        Value::Struct(m)
    }
}

#[async_trait]
impl Handler for RpcHandler {
    async fn handle(&self, params: &[Value], headers: HeaderMap) -> HandlerResult {
        self.authorize(&headers)?;
        match self.method {
            Method::Append => {
                let req = wire::append_from_params(params)?;
                self.append(req, &headers).await
            }
            Method::Vote => {
                let mut req = wire::vote_from_params(params, "request_vote_rpc")?;
                req.transfer = headers.contains_key(TRANSFER_HEADER);
                self.raft_call(&headers, Rpc::RequestVote(req)).await
            }
            Method::PreVote => {
                let req = wire::vote_from_params(params, "pre_vote_rpc")?;
                self.raft_call(&headers, Rpc::PreVote(req)).await
            }
            Method::TimeoutNow => {
                let term = wire::timeout_now_from_params(params)?;
                self.raft_call(&headers, Rpc::TimeoutNow { term }).await
            }
            Method::TransferLeader => {
                let target = wire::transfer_from_params(params)?;
                self.raft_call(&headers, Rpc::TransferLeader(target)).await
            }
            Method::AddServer => {
                let rpc = wire::add_server_from_params(params)?;
                self.membership_call(&headers, rpc, params).await
            }
            Method::RemoveServer => {
                let rpc = wire::remove_server_from_params(params)?;
                self.membership_call(&headers, rpc, params).await
            }
            Method::InstallSnapshot => {
                let req = wire::install_from_params(params)?;
                self.raft_call(&headers, Rpc::InstallSnapshot(req)).await
            }
            Method::IsLogEmpty => {
                no_args(params, "is_log_empty")?;
                self.raft_call(&headers, Rpc::IsLogEmpty).await
            }
            Method::Status => {
                no_args(params, "status")?;
                Ok(self.status_value())
            }
            Method::NewRound => self.new_round(params),
            Method::ClickWait => self.click_wait(params).await,
            Method::Click | Method::BenchClick => self.click(params),
            Method::BenchLoad => self.bench_load(params),
        }
    }
}

impl RpcHandler {
    /// `append_entries_rpc` once its arguments are read, by dxr or by
    /// `wire::fast` (both paths end here).
    async fn append(&self, mut req: AppendEntries, headers: &HeaderMap) -> HandlerResult {
        client_ids(&mut req, headers)?;
        if let Some(h) = headers.get(VOTES_HEADER) {
            let h = h
                .to_str()
                .map_err(|_| bad_args("the votes header is not text"))?;
            req.proof = Some(wire::proof_from_header(h).map_err(bad_args)?);
        }
        self.raft_call(headers, Rpc::AppendEntries(req)).await
    }

    /// A Raft RPC: the core's answer, as the wire spells it.
    async fn raft_call(&self, headers: &HeaderMap, rpc: Rpc) -> HandlerResult {
        let to_fault = |e: String| Fault::new(FAULT_BAD_ARGS, e);
        match self.call(headers, rpc).await? {
            Reply::Append(r) => wire::append_reply_value(&r).map_err(to_fault),
            Reply::Vote(r) => wire::vote_reply_value(&r).map_err(to_fault),
            Reply::Snapshot(term) => wire::int(term, "term").map_err(to_fault),
            Reply::LogEmpty(empty) => Ok(Value::Boolean(empty)),
            Reply::TimeoutNow(term) => wire::int(term, "term").map_err(to_fault),
            Reply::Transfer(target) => wire::int(target, "target").map_err(to_fault),
            Reply::ServerAdded(id) | Reply::ServerRemoved(id) => {
                wire::int(id, "id").map_err(to_fault)
            }
        }
    }

    /// `add_server_rpc` / `remove_server_rpc` go to the leader: a follower
    /// passes the call on (one hop) and relays the answer.
    async fn membership_call(
        &self,
        headers: &HeaderMap,
        rpc: Rpc,
        params: &[Value],
    ) -> HandlerResult {
        let st = self.status.get();
        let leader = st.leader_id.filter(|l| *l != st.id);
        let addr = leader.and_then(|l| st.members.iter().find(|m| m.id == l));
        match (st.mode.as_str(), addr) {
            ("LEADER", _) => self.raft_call(headers, rpc).await,
            (_, Some(m)) if !headers.contains_key(PROXIED_HEADER) => {
                proxy(&self.auth, (m.id, &m.addr), rpc.method(), params.to_vec()).await
            }
            _ => Err(Fault::new(
                FAULT_UNAVAILABLE,
                format!(
                    "node {} is not the leader and knows no leader to pass this on to: retry shortly",
                    st.id
                ),
            )),
        }
    }

    /// The player a click names, if the game takes a click on it now.
    fn clickable(&self, n: i32) -> Result<(), Fault> {
        let p = player_from_int(i64::from(n)).map_err(bad_args)?;
        self.game
            .check_click(p)
            .map(|_| ())
            .map_err(|refused| Fault::new(wire::FAULT_REFUSED, refused.to_string()))
    }

    fn click(&self, params: &[Value]) -> HandlerResult {
        let [Value::Integer(n)] = params else {
            return Err(bad_args("click takes one int: a player id"));
        };
        if matches!(self.method, Method::Click) {
            self.clickable(*n)?;
        }
        if let Some(t) = &self.trace {
            t.queued(*n);
        }
        if !self.commands.push_raw(*n) {
            return Err(unavailable());
        }
        Ok(Value::Boolean(true))
    }

    /// `bench_load(first, count, stride, interval_us, delay_us)`: this node
    /// takes `count` clicks itself (tags `first`, `first + stride`, ...),
    /// one every `interval_us` from `delay_us` on, as a player's window
    /// would: the benchmark's clicks without an HTTP request each.
    fn bench_load(&self, params: &[Value]) -> HandlerResult {
        let ints: Option<Vec<i32>> = params
            .iter()
            .map(|v| match v {
                Value::Integer(i) => Some(*i),
                _ => None,
            })
            .collect();
        let usage = "bench_load takes five ints: first, count, stride, interval_us >= 1, delay_us";
        let Some(&[first, count, stride, interval, delay]) = ints.as_deref() else {
            return Err(bad_args(usage));
        };
        let (Ok(count), Ok(interval @ 1..), Ok(delay)) = (
            u32::try_from(count),
            u64::try_from(interval),
            u64::try_from(delay),
        ) else {
            return Err(bad_args(usage));
        };
        let (commands, trace) = (self.commands.clone(), self.trace.clone());
        let interval = std::time::Duration::from_micros(interval);
        let t0 = tokio::time::Instant::now() + std::time::Duration::from_micros(delay);
        tokio::spawn(async move {
            let mut k: u32 = 0;
            while k < count {
                tokio::time::sleep_until(t0 + interval * k).await;
                // Every click due by now, in one wake-up.
                let now = tokio::time::Instant::now();
                while k < count && t0 + interval * k <= now {
                    let tag = first.wrapping_add(stride.wrapping_mul(k as i32));
                    if let Some(t) = &trace {
                        t.queued(tag);
                    }
                    if !commands.push_raw(tag) {
                        return;
                    }
                    k += 1;
                }
            }
        });
        Ok(Value::Boolean(true))
    }

    async fn click_wait(&self, params: &[Value]) -> HandlerResult {
        let [Value::Integer(n)] = params else {
            return Err(bad_args("click_wait takes one int: a player id"));
        };
        self.clickable(*n)?;
        let (reply, applied) = oneshot::channel();
        let ev = Event::ClickWait { command: *n, reply };
        self.events.send(ev).map_err(|_| unavailable())?;
        applied.await.map_err(|_| unavailable())?;
        Ok(Value::Boolean(true))
    }

    fn new_round(&self, params: &[Value]) -> HandlerResult {
        no_args(params, "new_round")?;
        if self.game.snapshot().round_end().is_none() {
            let msg = "the round is still on: a new one starts once at most one player is alive";
            return Err(Fault::new(wire::FAULT_REFUSED, msg.into()));
        }
        if !self.commands.push_raw(NEW_ROUND) {
            return Err(unavailable());
        }
        Ok(Value::Boolean(true))
    }
}

fn no_args(params: &[Value], method: &str) -> Result<(), Fault> {
    if params.is_empty() {
        Ok(())
    } else {
        Err(bad_args(format!("{method} takes no arguments")))
    }
}

/// What the server needs from the node.
pub struct ServerParts {
    pub id: u64,
    pub events: mpsc::UnboundedSender<Event>,
    pub status: StatusBoard,
    pub game: SharedGame,
    pub commands: CommandSender,
    pub trace: Option<Arc<Trace>>,
    /// Serve `bench_click(command)` (any int, for the benchmark).
    pub bench: bool,
    pub auth: Arc<Auth>,
}

/// The axum router serving the node's methods on `/` and `/RPC2`.
pub fn router(parts: ServerParts) -> Router {
    let mut methods: Vec<(&'static str, Method)> = vec![
        ("append_entries_rpc", Method::Append),
        ("request_vote_rpc", Method::Vote),
        ("pre_vote_rpc", Method::PreVote),
        ("is_log_empty", Method::IsLogEmpty),
        ("install_snapshot_rpc", Method::InstallSnapshot),
        ("timeout_now_rpc", Method::TimeoutNow),
        ("transfer_leader_rpc", Method::TransferLeader),
        ("add_server_rpc", Method::AddServer),
        ("remove_server_rpc", Method::RemoveServer),
        ("status", Method::Status),
        ("click", Method::Click),
        ("click_wait", Method::ClickWait),
        ("new_round", Method::NewRound),
    ];
    if parts.bench {
        methods.push(("bench_click", Method::BenchClick));
        methods.push(("bench_load", Method::BenchLoad));
    }
    let handler = |method| RpcHandler {
        method,
        auth: parts.auth.clone(),
        events: parts.events.clone(),
        status: parts.status.clone(),
        game: parts.game.clone(),
        commands: parts.commands.clone(),
        trace: parts.trace.clone(),
    };
    let mut map: HashMap<&'static str, Box<dyn Handler>> = HashMap::new();
    for (name, method) in methods {
        map.insert(name, Box::new(handler(method)));
    }
    let handlers: HandlerMap = Arc::new(map);
    let append = Arc::new(handler(Method::Append));
    let id = HeaderValue::from_str(&parts.id.to_string()).expect("digits are a valid header");
    let auth = parts.auth.clone();
    let serve = move |mut headers: HeaderMap, body: Result<String, StringRejection>| {
        let handlers = handlers.clone();
        let append = append.clone();
        let id = id.clone();
        let auth = auth.clone();
        async move {
            let (code, mut out_headers, body) = match body {
                Ok(body) => {
                    auth.check(&mut headers, body.as_bytes());
                    dispatch(&handlers, &append, &body, headers).await
                }
                Err(rejection) => {
                    let (code, h, body) = fault_response(&format!(
                        "request refused: {} (bodies are limited to {MAX_BODY} bytes of UTF-8)",
                        rejection.body_text()
                    ));
                    (code, h, wire::int_tags(body))
                }
            };
            out_headers.insert(NODE_HEADER, id);
            (code, out_headers, body)
        }
    };
    Router::new()
        .route("/", post(serve.clone()))
        .route("/RPC2", post(serve))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// One call: `dxr_server::server`'s steps, with `wire::fast` reading the
/// hot calls (appends, and calls with only int, boolean or nil arguments)
/// and writing scalar and array answers; everything it declines, and every
/// fault, goes the dxr way. Same handlers, same answers, byte for byte
/// (`tests/wire_fast.rs` checks the codec, `tests/wire_golden.rs` and
/// `tests/node_api.rs` the server).
async fn dispatch(
    handlers: &HandlerMap,
    append: &RpcHandler,
    body: &str,
    headers: HeaderMap,
) -> (StatusCode, HeaderMap, String) {
    // dxr_server answers a call without Content-Length with a fault.
    if headers.contains_key(CONTENT_LENGTH) {
        if let Some(req) = wire::fast::append_call(body) {
            // As dxr's path: authorize, then the shared append.
            let result = match append.authorize(&headers) {
                Ok(()) => append.append(req, &headers).await,
                Err(f) => Err(f),
            };
            return answer(result);
        }
        if let Some((name, params)) = wire::fast::scalar_call(body)
            && let Some(h) = handlers.get(name)
        {
            return answer(h.handle(&params, headers).await);
        }
    }
    let (code, out_headers, body) = dxr_server::server(handlers.clone(), body, headers).await;
    (code, out_headers, wire::int_tags(body))
}

/// A handler's result as `dxr_server` writes it (then `<int>`, not `<i4>`).
fn answer(result: HandlerResult) -> (StatusCode, HeaderMap, String) {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("text/xml"));
    let written = match result {
        Ok(v) => match wire::fast::response_body(&v) {
            Some(body) => return (StatusCode::OK, h, body),
            None => dxr::MethodResponse { value: v }.to_xml(),
        },
        Err(fault) => dxr::FaultResponse { fault }.to_xml(),
    };
    match written {
        Ok(body) => (StatusCode::OK, h, wire::int_tags(body)),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, h, e.to_string()),
    }
}

fn fault_response(msg: &str) -> (StatusCode, HeaderMap, String) {
    let fault = dxr::FaultResponse {
        fault: Fault::new(FAULT_BAD_ARGS, msg.to_owned()),
    };
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("text/xml"));
    let body = fault
        .to_xml()
        .map(|x| format!("<?xml version='1.0'?>\n{x}\n"))
        .unwrap_or_default();
    (StatusCode::OK, h, body)
}
