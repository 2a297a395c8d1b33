//! The node runtime: a Raft core, its XML-RPC server, its peers, timers and
//! the paper's two queues, running on a tokio runtime in background threads
//! so that the game (window or headless) keeps the main thread.

mod actor;
pub mod auth;
mod board;
pub mod client;
mod digest;
pub mod join;
mod peers;
mod server;
mod trace;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use log::{info, warn};
use tokio::sync::{Notify, mpsc, watch};

use self::actor::Event;
pub use self::server::{MAX_BODY, NODE_HEADER};
use self::trace::Trace;
use crate::config::{ClusterConfig, NodeEntry};
use crate::game::Game;
use crate::logfile::LogFile;
use crate::queues::{GameLink, SharedGame, StatusBoard, command_queue, order_queue};
use crate::raft::{Entry, HardState, Membership, NodeId, PersistBatch, Raft, Snapshot};
use crate::storage::{FileStorage, MemStorage, Storage, meta};

/// How to run one node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub cluster: ClusterConfig,
    pub id: NodeId,
    /// Where `logs/<name>/<datetime>.<name>.log` goes; `None`: no log file.
    pub log_dir: Option<PathBuf>,
    /// Durable Raft state; `None`: in memory only (`--ephemeral`).
    pub data_dir: Option<PathBuf>,
    /// Serve `bench_click` and record queue/apply times here.
    pub apply_trace: Option<PathBuf>,
    pub bench: bool,
    /// Where the server binds; `None`: the node's `addr` in the cluster
    /// file (which the other nodes use either way).
    pub listen: Option<SocketAddr>,
    /// Accept `--ephemeral` in election mode (a restarted node could vote
    /// twice in one term); the benchmarks use it.
    pub unsafe_ephemeral: bool,
    /// Log file coalescing: write after this much quiet...
    pub log_quiet: Duration,
    /// ...and at least this often while the log keeps changing.
    pub log_max_wait: Duration,
    /// The node joined a running cluster (`--join`): it is in no cluster
    /// file, and learns the configuration from its leader's log.
    pub joining: bool,
}

impl NodeOptions {
    pub fn new(cluster: ClusterConfig, id: NodeId) -> Self {
        NodeOptions {
            cluster,
            id,
            log_dir: None,
            data_dir: None,
            apply_trace: None,
            bench: false,
            listen: None,
            unsafe_ephemeral: false,
            log_quiet: Duration::from_millis(100),
            log_max_wait: Duration::from_secs(3),
            joining: false,
        }
    }
}

/// A node running in the background.
pub struct RunningNode {
    link: Option<GameLink>,
    addr: SocketAddr,
    name: String,
    stop: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
    log_path: Option<PathBuf>,
}

impl RunningNode {
    /// The game's end of the queues (once).
    pub fn take_link(&mut self) -> Option<GameLink> {
        self.link.take()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log_path(&self) -> Option<&std::path::Path> {
        self.log_path.as_deref()
    }

    /// Stop cleanly: the log file gets its final line.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// A handle that stops the node from another thread (signals, window close).
    pub fn stopper(&self) -> Arc<Notify> {
        self.stop.clone()
    }

    /// Wait until the node stops (after `stopper().notify_one()`).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn stop_and_join(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Start node `opts.id` of `opts.cluster`: binds its address, then runs on
/// background threads until `shutdown`.
pub fn start(opts: NodeOptions) -> Result<RunningNode, String> {
    let me = opts
        .cluster
        .node(opts.id)
        .ok_or_else(|| format!("node {} is not in the cluster file", opts.id))?
        .clone();
    refuse_unsafe_setup(&opts)?;
    let previous = read_data_dir_meta(&opts)?;
    let auth = load_auth(&opts, &me)?;
    let (listener, addr) = bind(&me, opts.listen)?;
    let mut storage = open_storage(&opts)?;
    let incarnation = start_incarnation(&opts, previous)?;
    let (hard_state, log) = load_state(storage.as_mut(), &me)?;
    let snapshot = storage
        .load_snapshot()
        .map_err(|e| format!("{}: {e}", me.name))?;
    let (game, digest, rate) = match &snapshot {
        Some(s) => {
            let bad = |e: String| format!("{}: snapshot: {e}", me.name);
            let game = board::game_from_snapshot(&s.data).map_err(bad)?;
            let rate = board::rate_from_snapshot(&s.data).map_err(bad)?;
            (
                game,
                digest::StateDigest::from_doc(&s.data).map_err(bad)?,
                rate,
            )
        }
        None => (
            Game::new(),
            digest::StateDigest::default(),
            Default::default(),
        ),
    };
    let keys = auth::CommandKeys::new(auth.signing_key());
    let (raft, origin) = new_core(&opts, hard_state, (snapshot, log), (incarnation, keys))?;
    // Whose signatures count is known before the server takes a request.
    auth.set_members(&raft.membership());
    let log_file = create_log_file(&opts, &me.name, &raft)?;
    let log_path = log_file.as_ref().map(|f| lock_log(f).path().to_owned());
    let trace = create_trace(&opts)?;

    let (commands, cmd_rx) = command_queue();
    let (ord_tx, orders) = order_queue();
    let link = GameLink {
        commands,
        orders,
        game: SharedGame::from_game(game.clone()),
        status: StatusBoard::default(),
    };
    let stop = Arc::new(Notify::new());
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let router = build_router(&opts, &link, ev_tx.clone(), (trace.clone(), auth.clone()));
    let actor = actor::ActorParts {
        raft,
        storage,
        storage_blocks: opts.data_dir.is_some(),
        origin,
        tick: opts.cluster.tick(),
        commands: cmd_rx,
        orders: ord_tx,
        status: link.status.clone(),
        name: me.name.clone(),
        log_file,
        trace,
        state: game,
        auth: auth.clone(),
        digest,
        rate,
    };
    let runtime = RuntimeParts {
        listener,
        router,
        id: opts.id,
        peer_addrs: peer_addrs(&opts),
        rpc_timeout: opts.cluster.rpc_timeout(),
        auth,
        events: ev_tx,
        stop: stop.clone(),
        log_quiet: opts.log_quiet,
        log_max_wait: opts.log_max_wait,
    };
    let thread = spawn_runtime(runtime, actor, ev_rx)?;
    if opts.listen.is_some() {
        info!(
            "{} serving on http://{addr}/ and /RPC2 (the others reach it at {})",
            me.name, me.addr
        );
    } else {
        info!("{} serving on http://{addr}/ and /RPC2", me.name);
    }
    Ok(RunningNode {
        link: Some(link),
        addr,
        name: me.name,
        stop,
        thread: Some(thread),
        log_path,
    })
}

/// Bind the node's address (or `listen`) before anything else, so that a
/// port in use fails `start` itself; returns the address really bound (port
/// 0 picks one).
fn bind(
    me: &NodeEntry,
    listen: Option<SocketAddr>,
) -> Result<(std::net::TcpListener, SocketAddr), String> {
    let addr = match listen {
        Some(a) => a,
        None => me.socket_addr()?,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        let hint = if listen.is_none() && e.kind() == std::io::ErrorKind::AddrNotAvailable {
            " (not an address of this machine: --listen 0.0.0.0:PORT binds every interface)"
        } else {
            ""
        };
        format!("{}: cannot listen on {addr}: {e}{hint}", me.name)
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{}: {e}", me.name))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, addr))
}

/// Setups that would break Raft's guarantees are refused before anything is
/// written.
fn refuse_unsafe_setup(opts: &NodeOptions) -> Result<(), String> {
    if opts.cluster.leader.is_some() {
        return Ok(());
    }
    if let Some(n) = opts.cluster.nodes.iter().find(|n| !n.log.is_empty()) {
        return Err(format!(
            "node {} ({}) has a seeded `log` but the cluster file has no static `leader`: in \
             election mode seeded term-1 entries at the same indexes on different nodes break \
             Log Matching. Remove the `log` lines, or add `leader = ID` for the paper's setup",
            n.id, n.name
        ));
    }
    if opts.data_dir.is_none() && !opts.unsafe_ephemeral {
        return Err(
            "--ephemeral in election mode: a restarted node would forget its term and \
                    vote, and could vote twice in one term (two leaders). Keep a data dir, or \
                    add --unsafe-ephemeral to accept that (benchmarks do)"
                .into(),
        );
    }
    Ok(())
}

/// The node's key (if its data dir has one), which must be the one the
/// cluster file names for it.
fn load_auth(opts: &NodeOptions, me: &NodeEntry) -> Result<Arc<auth::Auth>, String> {
    let key = match &opts.data_dir {
        Some(dir) => crate::keys::load(dir)?,
        None => None,
    };
    if let Some(want) = &me.public_key {
        let dir = opts
            .data_dir
            .as_ref()
            .map_or("<none>".into(), |d| d.display().to_string());
        let Some(k) = &key else {
            return Err(format!(
                "{}: the cluster file gives it a public_key but its data dir {dir} has no key: \
                 run `raftian keygen --data-dir {dir}` (and put the key it prints in the cluster file)",
                me.name
            ));
        };
        if crate::keys::public_b64(k) != want.trim() {
            return Err(format!(
                "{}: the key in {dir} is not the public_key the cluster file gives it",
                me.name
            ));
        }
    }
    Ok(auth::Auth::new(opts.id, key))
}

fn meta_mode(opts: &NodeOptions) -> meta::Mode {
    if opts.cluster.leader.is_some() {
        meta::Mode::Static
    } else {
        meta::Mode::Election
    }
}

/// What the data dir says of an earlier start; a dir written in the other
/// mode is refused (its log and terms mean something else there).
fn read_data_dir_meta(opts: &NodeOptions) -> Result<Option<meta::NodeMeta>, String> {
    let Some(dir) = &opts.data_dir else {
        return Ok(None);
    };
    let m = meta::read_meta(dir).map_err(|e| e.to_string())?;
    let want = meta_mode(opts);
    match m {
        Some(m) if m.mode != want => Err(format!(
            "data dir {} was written in {} mode but the cluster file is in {} mode: \
             start it with the cluster file it was made with, or use a fresh data dir",
            dir.display(),
            m.mode.as_str(),
            want.as_str()
        )),
        m => Ok(m),
    }
}

/// This start's client-session incarnation: one more than the last start's,
/// made durable before any command is taken (in memory only: the clock).
fn start_incarnation(opts: &NodeOptions, previous: Option<meta::NodeMeta>) -> Result<u64, String> {
    let Some(dir) = &opts.data_dir else {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return Ok(since_epoch.as_millis() as u64);
    };
    let incarnation = previous.map_or(1, |m| m.incarnation + 1);
    let m = meta::NodeMeta {
        mode: meta_mode(opts),
        incarnation,
    };
    meta::write_meta(dir, m).map_err(|e| e.to_string())?;
    Ok(incarnation)
}

fn open_storage(opts: &NodeOptions) -> Result<Box<dyn Storage>, String> {
    Ok(match &opts.data_dir {
        Some(dir) => Box::new(
            FileStorage::open(dir)
                .map_err(|e| format!("cannot open data dir {}: {e}", dir.display()))?,
        ),
        None => Box::new(MemStorage::default()),
    })
}

/// The term, vote and log to start from: what storage holds, or on a fresh
/// start the seeded log of the cluster file.
fn load_state(
    storage: &mut dyn Storage,
    me: &NodeEntry,
) -> Result<(HardState, Vec<Entry>), String> {
    let (hard_state, log) = storage.load().map_err(|e| format!("{}: {e}", me.name))?;
    let fresh = hard_state == Default::default() && log.is_empty();
    if fresh {
        return Ok((hard_state, seed_initial_log(storage, me)?));
    }
    info!(
        "{}: restarting at term {} with {} log entries",
        me.name,
        hard_state.term,
        log.len()
    );
    Ok((hard_state, log))
}

/// Make the cluster file's seeded log durable, so a restart finds it as
/// any other log and does not seed again.
fn seed_initial_log(storage: &mut dyn Storage, me: &NodeEntry) -> Result<Vec<Entry>, String> {
    let log = me.initial_log();
    storage
        .persist(&PersistBatch {
            hard_state: None,
            truncate_from: None,
            append: log.clone(),
            snapshot: None,
        })
        .map_err(|e| format!("{}: {e}", me.name))?;
    Ok(log)
}

/// The Raft core, and the instant from which the `now` it is given counts.
fn new_core(
    opts: &NodeOptions,
    hard_state: HardState,
    (snapshot, log): (Option<Snapshot>, Vec<Entry>),
    (incarnation, keys): (u64, Arc<auth::CommandKeys>),
) -> Result<(Raft, Instant), String> {
    let mut rcfg = opts.cluster.raft_config(opts.id);
    rcfg.seed ^= rand::random::<u64>();
    rcfg.incarnation = incarnation;
    rcfg.command_auth = Some(keys);
    if opts.joining {
        rcfg.members = Some(Arc::new(Membership::default()));
    }
    let origin = Instant::now();
    // Stamps read the wall clock as the origin's plus core time.
    rcfg.wall_origin_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    rcfg.stamp_window_ms = crate::game::rate::WINDOW_MS;
    let raft = Raft::restart(rcfg, hard_state, snapshot, log, Duration::ZERO)?;
    Ok((raft, origin))
}

/// The node's log file, if it keeps one, with its first line written.
fn create_log_file(
    opts: &NodeOptions,
    name: &str,
    raft: &Raft,
) -> Result<Option<Arc<Mutex<LogFile>>>, String> {
    let Some(dir) = &opts.log_dir else {
        return Ok(None);
    };
    let file = LogFile::create(dir, name)
        .map_err(|e| format!("{name}: cannot create a log file in {}: {e}", dir.display()))?;
    let file = Arc::new(Mutex::new(file));
    // The first line: the log as the node starts, like the original.
    let _ = lock_log(&file).write_log(raft.entries());
    Ok(Some(file))
}

fn lock_log(file: &Mutex<LogFile>) -> MutexGuard<'_, LogFile> {
    file.lock().unwrap_or_else(|p| p.into_inner())
}

fn create_trace(opts: &NodeOptions) -> Result<Option<Arc<Trace>>, String> {
    opts.apply_trace
        .as_ref()
        .map(|p| {
            Trace::create(p)
                .map(Arc::new)
                .map_err(|e| format!("cannot create {}: {e}", p.display()))
        })
        .transpose()
}

fn build_router(
    opts: &NodeOptions,
    link: &GameLink,
    events: mpsc::UnboundedSender<Event>,
    (trace, auth): (Option<Arc<Trace>>, Arc<auth::Auth>),
) -> Router {
    server::router(server::ServerParts {
        id: opts.id,
        events,
        status: link.status.clone(),
        game: link.game.clone(),
        commands: link.commands.clone(),
        trace,
        bench: opts.bench,
        auth,
    })
}

fn peer_addrs(opts: &NodeOptions) -> Vec<(NodeId, String)> {
    opts.cluster
        .nodes
        .iter()
        .filter(|n| n.id != opts.id)
        .map(|n| (n.id, n.addr.clone()))
        .collect()
}

/// Everything else the runtime thread takes over.
struct RuntimeParts {
    listener: std::net::TcpListener,
    router: Router,
    id: NodeId,
    peer_addrs: Vec<(NodeId, String)>,
    rpc_timeout: Duration,
    auth: Arc<auth::Auth>,
    events: mpsc::UnboundedSender<Event>,
    stop: Arc<Notify>,
    log_quiet: Duration,
    log_max_wait: Duration,
}

type Ready = std::sync::mpsc::Sender<Result<(), String>>;

/// Start the node's thread and its tokio runtime; returns once the node is
/// serving (or why it could not).
fn spawn_runtime(
    parts: RuntimeParts,
    actor: actor::ActorParts,
    events: mpsc::UnboundedReceiver<Event>,
) -> Result<std::thread::JoinHandle<()>, String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let thread = std::thread::Builder::new()
        .name(format!("raft-{}", actor.name))
        .spawn(move || {
            // One worker: a node's tasks are short and mostly wait on one
            // another, so a second worker mostly adds cross-thread wake-ups
            // (futexes, context switches). The fsync still never stalls
            // the node: block_in_place hands the worker's other tasks to a
            // fresh thread meanwhile (see `Actor::persist`).
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("cannot start tokio: {e}")));
                    return;
                }
            };
            rt.block_on(run_runtime(parts, actor, events, ready_tx));
            rt.shutdown_timeout(Duration::from_millis(200));
        })
        .map_err(|e| format!("cannot start the node thread: {e}"))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the node thread died while starting".into()),
    }
}

/// The node's life on its runtime: server, peers, log writer and actor up,
/// `ready` told, the actor run until stopped, then the server stopped.
async fn run_runtime(
    parts: RuntimeParts,
    actor: actor::ActorParts,
    events: mpsc::UnboundedReceiver<Event>,
    ready: Ready,
) {
    let listener = match tokio::net::TcpListener::from_std(parts.listener) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let peers = match peers::Peers::new(
        parts.id,
        parts.peer_addrs,
        parts.rpc_timeout,
        parts.events.clone(),
        parts.auth.clone(),
    ) {
        Ok(p) => p,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let (ver_tx, ver_rx) = watch::channel(actor.raft.log_version());
    let server_stop = Arc::new(Notify::new());
    let server = spawn_server(listener, parts.router, server_stop.clone());
    if let Some(f) = &actor.log_file {
        tokio::spawn(actor::log_writer(
            ver_rx,
            parts.events.clone(),
            f.clone(),
            parts.log_quiet,
            parts.log_max_wait,
        ));
    }
    drop(parts.events);
    let mut actor = actor::Actor::new(actor, peers, ver_tx);
    // status() answers from the board: fill it, with what the core applied
    // as it started (a static leader commits its log at once), before
    // start() returns.
    actor.first_turn();
    let _ = ready.send(Ok(()));
    // On a worker, next to the timer and the sockets: run inside block_on,
    // every tick and every RPC would cost a thread hop.
    if let Err(e) = tokio::spawn(actor.run(events, parts.stop)).await {
        warn!("the node's event loop failed: {e}");
    }
    server_stop.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
}

fn spawn_server(
    listener: tokio::net::TcpListener,
    router: Router,
    stop: Arc<Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let r = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.notified().await })
            .await;
        if let Err(e) = r {
            warn!("server stopped: {e}");
        }
    })
}
