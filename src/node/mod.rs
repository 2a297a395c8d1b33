//! The node runtime: a Raft core, its XML-RPC server, its peers, timers and
//! the paper's two queues, running on a tokio runtime in background threads
//! so that the game (window or headless) keeps the main thread.

mod actor;
mod peers;
mod server;
mod trace;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{info, warn};
use tokio::sync::{Notify, mpsc, watch};

pub use self::server::{MAX_BODY, NODE_HEADER};
use self::trace::Trace;
use crate::config::ClusterConfig;
use crate::logfile::LogFile;
use crate::queues::{GameLink, SharedGame, StatusBoard, command_queue, order_queue};
use crate::raft::{NodeId, PersistBatch, Raft};
use crate::storage::{FileStorage, MemStorage, Storage};

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
    /// Log file coalescing: write after this much quiet...
    pub log_quiet: Duration,
    /// ...and at least this often while the log keeps changing.
    pub log_max_wait: Duration,
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
            log_quiet: Duration::from_millis(100),
            log_max_wait: Duration::from_secs(3),
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

fn open_storage(opts: &NodeOptions) -> Result<Box<dyn Storage>, String> {
    Ok(match &opts.data_dir {
        Some(dir) => Box::new(
            FileStorage::open(dir)
                .map_err(|e| format!("cannot open data dir {}: {e}", dir.display()))?,
        ),
        None => Box::new(MemStorage::default()),
    })
}

/// Start node `opts.id` of `opts.cluster`: binds its address, then runs on
/// background threads until `shutdown`.
pub fn start(opts: NodeOptions) -> Result<RunningNode, String> {
    let me = opts
        .cluster
        .node(opts.id)
        .ok_or_else(|| format!("node {} is not in the cluster file", opts.id))?
        .clone();
    let addr = me.socket_addr()?;
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("{}: cannot listen on {addr}: {e}", me.name))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{}: {e}", me.name))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;

    let mut storage = open_storage(&opts)?;
    let storage_blocks = opts.data_dir.is_some();
    let (hard_state, mut log) = storage.load().map_err(|e| format!("{}: {e}", me.name))?;
    let fresh = hard_state == Default::default() && log.is_empty();
    if fresh {
        log = me.initial_log();
        storage
            .persist(&PersistBatch {
                hard_state: None,
                truncate_from: None,
                append: log.clone(),
            })
            .map_err(|e| format!("{}: {e}", me.name))?;
    } else {
        info!(
            "{}: restarting at term {} with {} log entries",
            me.name,
            hard_state.term,
            log.len()
        );
    }
    let mut rcfg = opts.cluster.raft_config(opts.id);
    rcfg.seed ^= rand::random::<u64>();
    let origin = Instant::now();
    let raft = Raft::new(rcfg, hard_state, log, Duration::ZERO)?;

    let log_file = match &opts.log_dir {
        Some(dir) => Some(Arc::new(Mutex::new(
            LogFile::create(dir, &me.name).map_err(|e| {
                format!(
                    "{}: cannot create a log file in {}: {e}",
                    me.name,
                    dir.display()
                )
            })?,
        ))),
        None => None,
    };
    let log_path = log_file.as_ref().map(|f| {
        f.lock()
            .unwrap_or_else(|p| p.into_inner())
            .path()
            .to_owned()
    });
    if let Some(f) = &log_file {
        // The first line: the log as the node starts, like the original.
        let _ = f
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_log(raft.entries());
    }
    let trace = match &opts.apply_trace {
        Some(p) => {
            Some(Arc::new(Trace::create(p).map_err(|e| {
                format!("cannot create {}: {e}", p.display())
            })?))
        }
        None => None,
    };

    let (cmd_tx, cmd_rx) = command_queue();
    let (ord_tx, ord_rx) = order_queue();
    let game = SharedGame::new();
    let status = StatusBoard::default();
    let stop = Arc::new(Notify::new());
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let peer_addrs: Vec<(NodeId, String)> = opts
        .cluster
        .nodes
        .iter()
        .filter(|n| n.id != opts.id)
        .map(|n| (n.id, n.addr.clone()))
        .collect();
    let rpc_timeout = opts.cluster.rpc_timeout();
    let tick = opts.cluster.tick();
    let router = server::router(server::ServerParts {
        id: opts.id,
        events: ev_tx.clone(),
        status: status.clone(),
        game: game.clone(),
        commands: cmd_tx.clone(),
        trace: trace.clone(),
        bench: opts.bench,
    });
    let name = me.name.clone();
    let stop2 = stop.clone();
    let (log_quiet, log_max_wait) = (opts.log_quiet, opts.log_max_wait);
    let status2 = status.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let thread = std::thread::Builder::new()
        .name(format!("raft-{name}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("cannot start tokio: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let peers = match peers::Peers::new(opts.id, peer_addrs, rpc_timeout, ev_tx.clone())
                {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let (ver_tx, ver_rx) = watch::channel(raft.log_version());
                let server_stop = Arc::new(Notify::new());
                let ss = server_stop.clone();
                let server = tokio::spawn(async move {
                    let r = axum::serve(listener, router)
                        .with_graceful_shutdown(async move { ss.notified().await })
                        .await;
                    if let Err(e) = r {
                        warn!("server stopped: {e}");
                    }
                });
                if let Some(f) = &log_file {
                    tokio::spawn(actor::log_writer(
                        ver_rx,
                        ev_tx.clone(),
                        f.clone(),
                        log_quiet,
                        log_max_wait,
                    ));
                }
                drop(ev_tx);
                let actor = actor::Actor {
                    raft,
                    storage,
                    storage_blocks,
                    origin,
                    tick,
                    peers,
                    commands: cmd_rx,
                    orders: ord_tx,
                    status: status2,
                    name,
                    log_version: ver_tx,
                    log_file,
                    trace,
                };
                // status() answers from the board: fill it before start() returns.
                actor.publish_status();
                let _ = ready_tx.send(Ok(()));
                // On a worker, next to the timer and the sockets: run inside
                // block_on, every tick and every RPC would cost a thread hop.
                if let Err(e) = tokio::spawn(actor.run(ev_rx, stop2)).await {
                    warn!("the node's event loop failed: {e}");
                }
                server_stop.notify_one();
                let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
            });
            rt.shutdown_timeout(Duration::from_millis(200));
        })
        .map_err(|e| format!("cannot start the node thread: {e}"))?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err("the node thread died while starting".into()),
    }
    info!("{} serving on http://{addr}/ and /RPC2", me.name);
    Ok(RunningNode {
        link: Some(GameLink {
            commands: cmd_tx,
            orders: ord_rx,
            game,
            status,
        }),
        addr,
        name: me.name,
        stop,
        thread: Some(thread),
        log_path,
    })
}
