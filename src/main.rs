//! `raftian`: run a node (window or headless), watch a cluster, click from
//! the command line, the frame-rate experiment, or the benchmark.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use log::{info, warn};

use raftian::config::ClusterConfig;
use raftian::game::{NEW_ROUND, OrderOutcome, parse_player};
use raftian::node::{self, NodeOptions, RunningNode};
use raftian::queues::GameLink;
use raftian::window::{self, WindowError, WindowOptions};

#[derive(Parser)]
#[command(version, about = "Raftian: a Raft-replicated real-time strategy game")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node of a cluster (one process per node).
    Node(NodeArgs),
    /// Every member's state as a table (or JSON); --watch redraws it live.
    Status(raftian::cli::status::StatusArgs),
    /// Click a player on a node (its `click` method), or `new` for a new round.
    Click(raftian::cli::click::ClickArgs),
    /// The paper's frame-rate experiment (section 2.2.1).
    Dots(raftian::bench::dots::DotsArgs),
    /// End-to-end benchmark: 5 real node processes on loopback.
    Bench(raftian::bench::BenchArgs),
    /// Remove a node from its cluster for good (`remove_server_rpc`).
    Leave(LeaveArgs),
    /// Make this node's ed25519 key pair (kept, never replaced) and print
    /// its public key for the cluster file.
    Keygen(KeygenArgs),
}

#[derive(clap::Args)]
struct KeygenArgs {
    /// The node's data dir (the key goes to <data-dir>/node.key, mode 0600).
    #[arg(long)]
    data_dir: PathBuf,
}

#[derive(clap::Args)]
struct LeaveArgs {
    /// The address of the node that leaves.
    #[arg(long)]
    addr: String,
    /// Ask this member instead (when the node that leaves is down).
    #[arg(long)]
    via: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// In a cluster with keys: a member's data dir, whose key signs the call.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct NodeArgs {
    /// The cluster file (see scripts/cluster.toml).
    #[arg(long, required_unless_present = "join", conflicts_with = "join")]
    config: Option<PathBuf>,
    /// This node's id in the cluster file.
    #[arg(long, required_unless_present = "join", conflicts_with = "join")]
    id: Option<u64>,
    /// Join a running cluster through any member (`HOST:PORT`): the leader
    /// gives this node an id and a square. A data dir that already joined
    /// just restarts.
    #[arg(long, requires_all = ["name", "addr"])]
    join: Option<String>,
    /// A joining node's name (its log files and square's label).
    #[arg(long)]
    name: Option<String>,
    /// A joining node's address (`HOST:PORT`), where the others reach it.
    #[arg(long)]
    addr: Option<String>,
    /// In a cluster with keys: the data dir of the member who lets this
    /// node join (its key signs the request).
    #[arg(long, requires = "join")]
    sponsor_data_dir: Option<PathBuf>,
    /// A joining node's rate limit (clicks per second and player), as the
    /// others' cluster file has it. Without it the node stamps with the
    /// limit the log carries; give it after the cluster's limit changed.
    #[arg(long, requires = "join")]
    max_clicks_per_sec: Option<u32>,
    /// No window: read clicks from stdin, one player id (1-4, or a joined
    /// player's) a line.
    #[arg(long)]
    headless: bool,
    /// Where the per-node log files go (logs/<name>/<datetime>.<name>.log).
    #[arg(long, default_value = "logs")]
    log_dir: PathBuf,
    /// Durable Raft state (term, vote, log); default data/<name>.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep Raft state in memory only (the original's behaviour).
    #[arg(long, conflicts_with = "data_dir")]
    ephemeral: bool,
    /// Allow --ephemeral in election mode, accepting that a restarted node
    /// may vote twice in one term (for benchmarks).
    #[arg(long, requires = "ephemeral")]
    unsafe_ephemeral: bool,
    /// Window frame cap (0 = uncapped).
    #[arg(long, default_value_t = 60)]
    fps: u32,
    /// Window size as a multiple of the original 1000x1200 (0.25 to 4, e.g.
    /// 0.5, 1, 2); default: the largest of 2, 1, 0.75, 0.5 that fits the
    /// screen, 1 when the screen's size is unknown.
    #[arg(long, value_parser = window::scale::parse_scale)]
    scale: Option<f64>,
    /// Serve on this address instead of the cluster file's `addr` (which
    /// the other nodes still use to reach this one), e.g. 0.0.0.0:8000.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// Serve bench_click and write queue/apply times to this file.
    #[arg(long)]
    apply_trace: Option<PathBuf>,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let r = match cli.command {
        Cmd::Node(a) => run_node(a),
        Cmd::Status(a) => raftian::cli::status::run(&a),
        Cmd::Click(a) => raftian::cli::click::run(&a).map(|answer| println!("{answer}")),
        Cmd::Dots(a) => raftian::bench::dots::run(&a),
        Cmd::Bench(a) => raftian::bench::run(&a),
        Cmd::Leave(a) => run_leave(&a),
        Cmd::Keygen(a) => run_keygen(&a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raftian: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_node(a: NodeArgs) -> Result<(), String> {
    let (mut opts, name) = match (&a.join, &a.config, a.id) {
        (Some(via), _, _) => {
            let name = a.name.clone().unwrap_or_default();
            let addr = a.addr.clone().unwrap_or_default();
            if a.ephemeral {
                return Err("a joining node keeps its id in its data dir: no --ephemeral".into());
            }
            let dir = a
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("data").join(&name));
            let sponsor = a.sponsor_data_dir.as_deref();
            let limit = ClusterConfig {
                max_clicks_per_sec: a.max_clicks_per_sec,
                ..ClusterConfig::from_nodes(Vec::new())
            };
            limit.check_rate_limit()?;
            let mut opts = node::join::options(via, (&name, &addr), &dir, sponsor)?;
            opts.cluster.max_clicks_per_sec = limit.max_clicks_per_sec;
            (opts, name)
        }
        (None, Some(config), Some(id)) => {
            let cluster = ClusterConfig::load(config)?;
            let name = cluster
                .node(id)
                .ok_or_else(|| format!("node {id} is not in {}", config.display()))?
                .name
                .clone();
            (NodeOptions::new(cluster, id), name)
        }
        _ => return Err("give --config and --id, or --join".into()),
    };
    opts.log_dir = Some(a.log_dir);
    opts.data_dir = if a.ephemeral {
        None
    } else {
        Some(
            a.data_dir
                .unwrap_or_else(|| PathBuf::from("data").join(&name)),
        )
    };
    opts.unsafe_ephemeral = a.unsafe_ephemeral;
    opts.listen = a.listen;
    opts.bench = a.apply_trace.is_some();
    opts.apply_trace = a.apply_trace;
    let mut running = node::start(opts)?;
    let link = running.take_link().expect("fresh node has its link");
    install_signal_handler(&running);

    if a.headless {
        run_headless(link, running, true);
        return Ok(());
    }
    let wopts = WindowOptions {
        fps: a.fps,
        title: format!("Raftian - {name}"),
        scale: a.scale,
    };
    match window::run(&link, wopts) {
        Ok(()) => {
            running.shutdown();
            Ok(())
        }
        Err(WindowError::NoDisplay(why)) => {
            warn!("no display ({why}): running headless, reading clicks from stdin");
            run_headless(link, running, true);
            Ok(())
        }
        Err(WindowError::Other(e)) => Err(e),
    }
}

/// No window: clicks come from stdin, orders are applied on a thread.
fn run_headless(link: GameLink, running: RunningNode, read_stdin: bool) {
    info!(
        "{} running headless: type a player id (1-4, or a joined player's) and Enter to click, `new` for a new round once one is won",
        running.name()
    );
    let GameLink {
        commands,
        orders,
        game,
        ..
    } = link;
    let game2 = game.clone();
    std::thread::spawn(move || orders.apply_until_stopped(&game2, log_outcome));
    if read_stdin {
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                if line.trim() == "new" {
                    match game.snapshot().round_end() {
                        Some(_) => {
                            info!("new round requested");
                            commands.push_raw(NEW_ROUND);
                        }
                        None => eprintln!("the round is still on"),
                    }
                    continue;
                }
                match parse_player(&line).map(|p| game.check_click(p)) {
                    Ok(Ok(p)) => {
                        info!("Player {p} pressed");
                        commands.push(p);
                    }
                    Ok(Err(refused)) => eprintln!("{refused}"),
                    Err(e) => eprintln!("ignored: {e}"),
                }
            }
            // stdin closed: keep running (nodes are often started in the
            // background); signals stop the node.
        });
    }
    running.join();
}

/// `raftian leave --addr HOST:PORT`: `remove_server_rpc` on that node (or
/// `--via` another member), retried while the cluster has no leader.
fn run_leave(a: &LeaveArgs) -> Result<(), String> {
    let via = a.via.as_deref().unwrap_or(&a.addr);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(a.timeout_secs);
    let params = vec![dxr::Value::String(a.addr.clone())];
    let signer = signer_from(a.data_dir.as_deref(), via)?;
    loop {
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        let wait = wait.max(std::time::Duration::from_secs(1));
        let params = params.clone();
        let call = node::client::call_as(signer.as_ref(), via, "remove_server_rpc", params, wait);
        match call {
            Ok(v) => {
                let id = match v {
                    dxr::Value::Integer(id) => id.to_string(),
                    other => format!("{other:?}"),
                };
                println!("node {id} at {} has left the cluster", a.addr);
                return Ok(());
            }
            Err(e) if node::join::retryable(&e) && std::time::Instant::now() < deadline => {
                eprintln!("raftian: {e}; retrying");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => return Err(format!("{via}: {e}")),
        }
    }
}

/// The member key in `data_dir`, if given, as a signer for calls to `addr`.
fn signer_from(
    data_dir: Option<&std::path::Path>,
    addr: &str,
) -> Result<Option<node::client::Signer>, String> {
    let Some(dir) = data_dir else {
        return Ok(None);
    };
    let key = raftian::keys::load(dir)?
        .ok_or_else(|| format!("{} has no key (raftian keygen)", dir.display()))?;
    let timeout = std::time::Duration::from_secs(10);
    node::client::Signer::find(addr, key, timeout).map(Some)
}

/// `raftian keygen --data-dir D`: print the node's public key (made now,
/// or the one it has).
fn run_keygen(a: &KeygenArgs) -> Result<(), String> {
    let (key, made) = raftian::keys::keygen(&a.data_dir)?;
    let path = raftian::keys::key_path(&a.data_dir);
    if made {
        eprintln!("new key in {} (keep it private)", path.display());
    } else {
        eprintln!("{} already holds a key: kept", path.display());
    }
    println!("{}", raftian::keys::public_b64(&key));
    Ok(())
}

fn log_outcome(outcome: OrderOutcome) {
    match outcome {
        OrderOutcome::Damaged { player, hp } => info!("player {player} hit: {hp} HP"),
        OrderOutcome::AlreadyDead(p) => info!("player {p} already dead"),
        OrderOutcome::NewRound(r) => info!("round {r} begins"),
        OrderOutcome::Restored { round } => info!("board restored from a snapshot (round {round})"),
        OrderOutcome::Players { joined, left } => {
            for p in joined {
                info!("player {p} joins the game");
            }
            for p in left {
                info!("player {p} leaves the game");
            }
        }
        OrderOutcome::Ignored => {}
    }
}

fn install_signal_handler(running: &RunningNode) {
    let stop = running.stopper();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("signal runtime");
        rt.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        stop.notify_one();
    });
}
