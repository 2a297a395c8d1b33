//! The paper's frame-rate experiment (section 2.2.1, Figure 3): N coloured
//! 30x30 dots move by a random offset of -5..=5 px every frame, uncapped, in
//! the game's 1000x1200 window, and we count frames per second
//!
//! - `none`: nothing else runs;
//! - `thread`: a Raftian node (the real runtime) runs inside this process,
//!   heartbeating every 3 ms to a peer node in a child process;
//! - `process`: both nodes run in child processes;
//! - `ticker`: a control, no server: a thread of this process that only
//!   wakes up every 3 ms. On a virtual machine a neighbour that wakes often
//!   keeps the virtual CPUs from idling and so *speeds up* the window's
//!   round trips to the X server; comparing `thread` with `ticker` takes
//!   that effect out and leaves the server's own cost.
//!
//! The original's "server alive" was an XML-RPC server whose timer called a
//! peer (Bob, another process) every 3 ms; ours is a static-leader Raft node
//! sending `append_entries_rpc` heartbeats every 3 ms (tick 1 ms).
//!
//! Each run reports the median of its per-second frame counts (the first
//! second, which includes start-up, is left out).

use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;

use super::sysinfo::{clk_tck, cpu_ticks, other_threads_ticks};
use crate::config::ClusterConfig;
use crate::node::{self, NodeOptions, RunningNode};
use crate::window::fps::{FpsMeter, median};
use crate::window::{self, BOARD_SIZE, BOARD_TOP, HEIGHT, WIDTH};

/// Side of a dot, as in the original.
pub const DOT: i32 = 30;
/// Largest step of a dot per frame, each axis.
pub const STEP: i32 = 5;

/// Where the live server runs during a run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMode {
    /// No server at all (the baseline).
    None,
    /// A node in a thread of this process, its peer in a child process.
    Thread,
    /// Both nodes in child processes.
    Process,
    /// Control: a thread waking every heartbeat period, doing nothing.
    Ticker,
}

impl ServerMode {
    fn name(self) -> &'static str {
        match self {
            ServerMode::None => "none",
            ServerMode::Thread => "thread",
            ServerMode::Process => "process",
            ServerMode::Ticker => "ticker",
        }
    }
}

/// `raftian dots` arguments.
#[derive(clap::Args, Clone, Debug)]
pub struct DotsArgs {
    /// Number of dots; a comma-separated list runs each (e.g. 100,1000).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    pub count: Vec<usize>,
    /// Where the server runs; a comma-separated list runs each
    /// (e.g. none,thread,process).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "none")]
    pub server: Vec<ServerMode>,
    /// Length of each run, seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Heartbeat period of the live server, ms (the original's 3 ms).
    #[arg(long, default_value_t = 3)]
    pub heartbeat_ms: u64,
    /// Repeat the whole set of runs this many times, interleaved.
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Print every second's frame rate, like the original's log.
    #[arg(long)]
    pub verbose: bool,
}

/// One dot: top-left corner and colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dot {
    pub x: i32,
    pub y: i32,
    pub colour: u32,
}

/// `n` dots at random places on the board, in random colours.
pub fn scatter(n: usize, rng: &mut impl rand::Rng) -> Vec<Dot> {
    let top = BOARD_TOP as i32;
    let size = BOARD_SIZE as i32;
    (0..n)
        .map(|_| Dot {
            x: rng.random_range(0..=size - DOT),
            y: rng.random_range(top..=top + size - DOT),
            colour: rng.random_range(0..=0xff_ff_ffu32),
        })
        .collect()
}

/// Move every dot by a random offset in -5..=5 on each axis, bouncing off
/// the board's edges as the original does.
pub fn step(dots: &mut [Dot], rng: &mut impl rand::Rng) {
    let (half, top, size) = (DOT / 2, BOARD_TOP as i32, BOARD_SIZE as i32);
    for d in dots {
        let mut dx = rng.random_range(-STEP..=STEP);
        let mut dy = rng.random_range(-STEP..=STEP);
        let (cx, cy) = (d.x + half, d.y + half);
        if cx + dx < half {
            dx = STEP;
        }
        if cx + dx > size - half {
            dx = -STEP;
        }
        if cy + dy < top + half {
            dy = STEP;
        }
        if cy + dy > top + size - half {
            dy = -STEP;
        }
        d.x += dx;
        d.y += dy;
    }
}

/// Draw the board from `background` and the dots over it (dots are clipped
/// to the board).
pub fn draw(buf: &mut [u32], background: &[u32], dots: &[Dot]) {
    let (b0, b1) = (BOARD_TOP * WIDTH, (BOARD_TOP + BOARD_SIZE) * WIDTH);
    if buf.len() < b1 || background.len() < b1 {
        return;
    }
    buf[b0..b1].copy_from_slice(&background[b0..b1]);
    let (top, bottom) = (BOARD_TOP as i32, (BOARD_TOP + BOARD_SIZE) as i32);
    for d in dots {
        let x0 = d.x.clamp(0, WIDTH as i32) as usize;
        let x1 = (d.x + DOT).clamp(0, WIDTH as i32) as usize;
        for y in d.y.max(top)..(d.y + DOT).min(bottom) {
            let row = y as usize * WIDTH;
            buf[row + x0..row + x1].fill(d.colour);
        }
    }
}

/// Result of one run.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub count: usize,
    pub server: ServerMode,
    pub samples: Vec<f64>,
    /// CPU used by the heartbeating node (wherever it ran), % of one core.
    pub node_cpu: Option<f64>,
}

impl RunResult {
    pub fn median(&self) -> Option<f64> {
        median(&self.samples)
    }
}

/// Run every (count, server) pair, one after the other, in one window,
/// `--rounds` times over (interleaving the configurations spreads the
/// machine's other load over all of them), and print a table of the pooled
/// one-second samples.
pub fn run(args: &DotsArgs) -> Result<(), String> {
    if args.count.is_empty() || args.server.is_empty() {
        return Err("dots: give at least one --count and one --server".into());
    }
    if let Some(n) = args.count.iter().find(|&&n| n > 1_000_000) {
        return Err(format!("dots: {n} dots is too many (at most 1000000)"));
    }
    if args.seconds < 2 {
        return Err("dots: --seconds must be at least 2 (the first second is warm-up)".into());
    }
    if args.heartbeat_ms == 0 {
        return Err("dots: --heartbeat-ms must be at least 1".into());
    }
    if args.rounds == 0 {
        return Err("dots: --rounds must be at least 1".into());
    }
    let mut win = minifb::Window::new(
        "raftian dots",
        WIDTH,
        HEIGHT,
        minifb::WindowOptions::default(),
    )
    .map_err(|e| {
        format!(
            "dots needs a display ({e}); without one, run it under Xvfb: \
             xvfb-run -a -s '-screen 0 1024x1280x24' raftian dots ..."
        )
    })?;
    win.set_target_fps(0);

    let mut pooled: Vec<RunResult> = Vec::new();
    let mut cpu_runs: Vec<Vec<f64>> = Vec::new();
    for &count in &args.count {
        for &server in &args.server {
            pooled.push(RunResult {
                count,
                server,
                samples: Vec::new(),
                node_cpu: None,
            });
            cpu_runs.push(Vec::new());
        }
    }
    let combos: Vec<(usize, ServerMode)> = pooled.iter().map(|r| (r.count, r.server)).collect();
    'rounds: for round in 1..=args.rounds {
        for (i, &(count, server)) in combos.iter().enumerate() {
            let Some(r) = run_one(&mut win, args, count, server)? else {
                eprintln!("dots: window closed");
                break 'rounds;
            };
            println!("round {round}/{}  {}", args.rounds, table_row(&r, &pooled));
            pooled[i].samples.extend_from_slice(&r.samples);
            if let Some(c) = r.node_cpu {
                cpu_runs[i].push(c);
            }
            let n = cpu_runs[i].len();
            pooled[i].node_cpu = (n > 0).then(|| cpu_runs[i].iter().sum::<f64>() / n as f64);
        }
    }
    print_table(&pooled)
}

fn print_table(results: &[RunResult]) -> Result<(), String> {
    println!();
    print!("{}", markdown_table(results));
    Ok(())
}

fn table_row(r: &RunResult, earlier: &[RunResult]) -> String {
    format!(
        "dots {:>5}  server {:<7}  median {:>6} fps  ({} one-second samples, min {}, max {}){}{}",
        r.count,
        r.server.name(),
        fmt_fps(r.median()),
        r.samples.len(),
        fmt_fps(r.samples.iter().copied().reduce(f64::min)),
        fmt_fps(r.samples.iter().copied().reduce(f64::max)),
        cost(r, earlier, ServerMode::None).map_or(String::new(), |c| format!("  cost {c:+.1}%")),
        r.node_cpu
            .map_or(String::new(), |c| format!("  node cpu {c:.0}%")),
    )
}

fn fmt_fps(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"))
}

/// Frame rate lost against the `base` run with the same dot count, in %.
fn cost(r: &RunResult, all: &[RunResult], base: ServerMode) -> Option<f64> {
    if r.server == base || r.server == ServerMode::None {
        return None;
    }
    let b = all
        .iter()
        .find(|b| b.count == r.count && b.server == base)?
        .median()?;
    let m = r.median()?;
    (b > 0.0).then(|| (b - m) / b * 100.0)
}

/// The results as a markdown table (median fps, cost against `none`).
pub fn markdown_table(results: &[RunResult]) -> String {
    let mut s = String::from(
        "| dots | server | median fps | min | max | cost vs none | cost vs ticker | node CPU |\n\
         | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in results {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.count,
            r.server.name(),
            fmt_fps(r.median()),
            fmt_fps(r.samples.iter().copied().reduce(f64::min)),
            fmt_fps(r.samples.iter().copied().reduce(f64::max)),
            cost(r, results, ServerMode::None).map_or("-".into(), |c| format!("{c:.1}%")),
            cost(r, results, ServerMode::Ticker).map_or("-".into(), |c| format!("{c:.1}%")),
            r.node_cpu.map_or("-".into(), |c| format!("{c:.0}%")),
        );
    }
    s
}

/// One run; `None` if the window was closed.
fn run_one(
    win: &mut minifb::Window,
    args: &DotsArgs,
    count: usize,
    server: ServerMode,
) -> Result<Option<RunResult>, String> {
    let mut live = LiveServer::start(server, args.heartbeat_ms)?;
    let mut rng = rand::rng();
    let mut dots = scatter(count, &mut rng);

    let mut background = vec![0u32; WIDTH * HEIGHT];
    window::render_background(&mut background);
    let mut buf = background.clone();
    let header = format!("{count} dots, server: {}", server.name());
    let draw_bars = |buf: &mut [u32], fps: Option<f64>| {
        let b1 = (BOARD_TOP + BOARD_SIZE) * WIDTH;
        buf[..BOARD_TOP * WIDTH].copy_from_slice(&background[..BOARD_TOP * WIDTH]);
        buf[b1..].copy_from_slice(&background[b1..]);
        let footer = [
            format!("{} fps", fmt_fps(fps)),
            "median of one-second counts".to_string(),
        ];
        window::render_text(buf, &header, &footer);
    };
    draw_bars(&mut buf, None);

    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    let mut meter = FpsMeter::new(start);
    let cpu0 = live.node_cpu_ticks();
    let mut warm = true;
    loop {
        step(&mut dots, &mut rng);
        draw(&mut buf, &background, &dots);
        win.update_with_buffer(&buf, WIDTH, HEIGHT)
            .map_err(|e| format!("dots: {e}"))?;
        if !win.is_open() {
            return Ok(None);
        }
        let now = Instant::now();
        if let Some(fps) = meter.frame(now) {
            if warm {
                // The first second includes start-up: not counted.
                meter.clear();
                warm = false;
            } else if args.verbose {
                eprintln!("{count} dots, {}: {fps:.0} fps", server.name());
            }
            draw_bars(&mut buf, Some(fps));
        }
        if now >= end {
            break;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let node_cpu = match (cpu0, live.node_cpu_ticks()) {
        (Some(a), Some(b)) => Some((b.saturating_sub(a)) as f64 / clk_tck() / elapsed * 100.0),
        _ => None,
    };
    live.check_alive()?;
    drop(live);
    Ok(Some(RunResult {
        count,
        server,
        samples: meter.samples().to_vec(),
        node_cpu,
    }))
}

/// Kills and reaps a child process when dropped.
struct ChildGuard {
    child: Child,
    what: String,
    stderr_path: PathBuf,
}

impl ChildGuard {
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                let err = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
                let tail: Vec<&str> = err.lines().rev().take(5).collect();
                Some(format!(
                    "{} exited ({status}): {}",
                    self.what,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ))
            }
            _ => None,
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server side of a run: nothing, or two nodes heartbeating.
struct LiveServer {
    mode: ServerMode,
    // Field order is drop order: the in-process node stops first.
    node: Option<RunningNode>,
    _link: Option<crate::queues::GameLink>,
    ticker: Option<Ticker>,
    children: Vec<ChildGuard>,
    dir: Option<PathBuf>,
}

/// The control: a thread that wakes every `period` and does nothing else.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(period: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(period);
            }
        });
        Ticker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl LiveServer {
    fn start(mode: ServerMode, heartbeat_ms: u64) -> Result<Self, String> {
        let mut live = LiveServer {
            mode,
            node: None,
            _link: None,
            ticker: None,
            children: Vec::new(),
            dir: None,
        };
        match mode {
            ServerMode::None => return Ok(live),
            ServerMode::Ticker => {
                live.ticker = Some(Ticker::start(Duration::from_millis(heartbeat_ms)));
                return Ok(live);
            }
            ServerMode::Thread | ServerMode::Process => {}
        }
        let dir = std::env::temp_dir().join(format!(
            "raftian-dots-{}-{}",
            std::process::id(),
            mode.name()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("dots: cannot create {}: {e}", dir.display()))?;
        live.dir = Some(dir.clone());
        let ports = [free_port()?, free_port()?];
        let toml = cluster_toml(ports, heartbeat_ms);
        let cfg_path = dir.join("cluster.toml");
        std::fs::write(&cfg_path, &toml)
            .map_err(|e| format!("dots: cannot write {}: {e}", cfg_path.display()))?;

        // The peer (the original's Bob) is always a child process.
        live.children.push(spawn_node(&cfg_path, 1, &dir)?);
        if mode == ServerMode::Thread {
            let cluster = ClusterConfig::from_toml_str(&toml)?;
            let mut n = node::start(NodeOptions::new(cluster, 0))?;
            live._link = n.take_link();
            live.node = Some(n);
        } else {
            live.children.push(spawn_node(&cfg_path, 0, &dir)?);
        }
        // Both listening before the run starts.
        for port in ports {
            live.wait_listening(port)?;
        }
        Ok(live)
    }

    fn wait_listening(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                return Err(format!("dots: no node listening on port {port} after 20 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn check_alive(&mut self) -> Result<(), String> {
        for c in &mut self.children {
            if let Some(why) = c.exited() {
                return Err(format!("dots: {why}"));
            }
        }
        Ok(())
    }

    /// CPU ticks used so far by the heartbeating node (id 0).
    fn node_cpu_ticks(&self) -> Option<u64> {
        match self.mode {
            ServerMode::None => None,
            ServerMode::Thread | ServerMode::Ticker => other_threads_ticks(),
            ServerMode::Process => {
                let pid = self.children.get(1)?.child.id();
                cpu_ticks(pid)
            }
        }
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        if let Some(n) = self.node.take() {
            n.shutdown();
        }
        self.ticker = None;
        self.children.clear();
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A free loopback port (bound, read, released).
fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("dots: cannot find a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("dots: {e}"))
}

/// Two nodes, 0 the static leader, heartbeating every `heartbeat_ms`.
pub fn cluster_toml(ports: [u16; 2], heartbeat_ms: u64) -> String {
    format!(
        "leader = 0\nheartbeat_ms = {heartbeat_ms}\ntick_ms = 1\n\
         election_timeout_ms = [150, 300]\n\
         [[node]]\nid = 0\nname = \"alice\"\naddr = \"127.0.0.1:{}\"\n\
         [[node]]\nid = 1\nname = \"bob\"\naddr = \"127.0.0.1:{}\"\n",
        ports[0], ports[1]
    )
}

/// `raftian node --config F --id N --headless --ephemeral` as a child.
fn spawn_node(config: &Path, id: u64, dir: &Path) -> Result<ChildGuard, String> {
    let exe = std::env::current_exe().map_err(|e| format!("dots: {e}"))?;
    let stderr_path = dir.join(format!("node{id}.stderr"));
    let stderr = std::fs::File::create(&stderr_path)
        .map_err(|e| format!("dots: cannot create {}: {e}", stderr_path.display()))?;
    let child = Command::new(&exe)
        .arg("node")
        .arg("--config")
        .arg(config)
        .args(["--id", &id.to_string(), "--headless", "--ephemeral"])
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("dots: cannot start {} node: {e}", exe.display()))?;
    Ok(ChildGuard {
        child,
        what: format!("node {id} ({})", exe.display()),
        stderr_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    #[test]
    fn dots_start_and_stay_on_the_board() {
        let mut r = rng();
        let mut dots = scatter(500, &mut r);
        assert_eq!(dots.len(), 500);
        let on_board = |d: &Dot| {
            d.x >= 0
                && d.x + DOT <= BOARD_SIZE as i32
                && d.y >= BOARD_TOP as i32
                && d.y + DOT <= (BOARD_TOP + BOARD_SIZE) as i32
        };
        assert!(dots.iter().all(on_board));
        for _ in 0..2000 {
            let before = dots.clone();
            step(&mut dots, &mut r);
            for (a, b) in before.iter().zip(&dots) {
                assert!((a.x - b.x).abs() <= STEP && (a.y - b.y).abs() <= STEP);
                assert_eq!(a.colour, b.colour);
            }
            assert!(dots.iter().all(on_board), "a dot left the board");
        }
    }

    #[test]
    fn a_dot_in_a_corner_bounces_inward() {
        let mut r = rng();
        let top = BOARD_TOP as i32;
        let mut d = [Dot {
            x: 0,
            y: top,
            colour: 1,
        }];
        for _ in 0..50 {
            d[0] = Dot {
                x: 0,
                y: top,
                colour: 1,
            };
            step(&mut d, &mut r);
            assert!(d[0].x >= 0 && d[0].y >= top, "{:?}", d[0]);
        }
    }

    #[test]
    fn draw_paints_dots_over_the_board_only() {
        let mut bg = vec![0u32; WIDTH * HEIGHT];
        window::render_background(&mut bg);
        let mut buf = vec![0xdead; WIDTH * HEIGHT];
        let dots = [
            Dot {
                x: 10,
                y: 200,
                colour: 0xabcdef,
            },
            // Half above the board: only the board half is drawn.
            Dot {
                x: 500,
                y: 85,
                colour: 0x123456,
            },
        ];
        draw(&mut buf, &bg, &dots);
        assert_eq!(buf[210 * WIDTH + 20], 0xabcdef);
        assert_eq!(buf[229 * WIDTH + 39], 0xabcdef);
        assert_eq!(buf[230 * WIDTH + 39], window::GREY);
        assert_eq!(buf[105 * WIDTH + 510], 0x123456);
        assert_eq!(buf[95 * WIDTH + 510], 0xdead, "header untouched");
        draw(&mut [], &bg, &dots);
    }

    #[test]
    fn table_reports_cost_against_the_baseline() {
        let mk = |server, s: &[f64]| RunResult {
            count: 100,
            server,
            samples: s.to_vec(),
            node_cpu: (server != ServerMode::None).then_some(12.0),
        };
        let rs = vec![
            mk(ServerMode::None, &[500.0, 400.0, 600.0]),
            mk(ServerMode::Thread, &[490.0]),
            mk(ServerMode::Process, &[]),
            mk(ServerMode::Ticker, &[500.0]),
        ];
        let t = markdown_table(&rs);
        for row in [
            "| 100 | none | 500 | 400 | 600 | - | - | - |",
            "| 100 | thread | 490 | 490 | 490 | 2.0% | 2.0% | 12% |",
            "| 100 | process | - | - | - | - | - | 12% |",
            "| 100 | ticker | 500 | 500 | 500 | 0.0% | - | 12% |",
        ] {
            assert!(t.contains(row), "{row} not in\n{t}");
        }
        assert!(table_row(&rs[1], &rs).contains("cost +2.0%"));
    }

    #[test]
    fn cluster_file_parses() {
        let c = ClusterConfig::from_toml_str(&cluster_toml([8000, 8001], 3)).unwrap();
        assert_eq!(c.leader, Some(0));
        assert_eq!(c.heartbeat_ms, Some(3));
        assert_eq!(c.nodes.len(), 2);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let base = DotsArgs {
            count: vec![100],
            server: vec![ServerMode::None],
            seconds: 10,
            heartbeat_ms: 3,
            rounds: 1,
            verbose: false,
        };
        for bad in [
            DotsArgs {
                count: vec![],
                ..base.clone()
            },
            DotsArgs {
                seconds: 1,
                ..base.clone()
            },
            DotsArgs {
                count: vec![10_000_000],
                ..base.clone()
            },
            DotsArgs {
                heartbeat_ms: 0,
                ..base.clone()
            },
            DotsArgs {
                rounds: 0,
                ..base.clone()
            },
        ] {
            assert!(run(&bad).is_err());
        }
    }
}
