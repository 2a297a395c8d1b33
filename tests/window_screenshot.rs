//! End to end: the real minifb window under Xvfb, driven through the public
//! API (a hand-built GameLink), clicked with xdotool, photographed with xwd.
//!
//! Needs the Debian packages `xvfb`, `xdotool` and `x11-apps` (for `xwd`).
//! Without them the test fails with a message saying so, unless
//! RAFTIAN_SKIP_X11=1 is set. RAFTIAN_SCREENSHOT_OUT=path also writes the
//! final screenshot there as a PNG (that is how docs/screenshot.png is made).
//!
//! One test function on purpose: it sets DISPLAY for this process.

mod common;

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raftian::game::PlayerId;
use raftian::queues::{
    CommandReceiver, GameLink, NodeStatus, OrderSender, SharedGame, StatusBoard, command_queue,
    order_queue,
};
use raftian::window::scale::View;
use raftian::window::{
    self, BoardState, FOOTER_TOP, HEIGHT, PLAYER_POSITIONS, SQUARE, WIDTH, WindowError,
    WindowOptions, WindowTuning,
};

const DEADLINE: Duration = Duration::from_secs(30);

/// Stops and reaps a child process when dropped: SIGTERM first (Xvfb then
/// removes its lock file and socket), SIGKILL if it lingers.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

/// Xvfb's messages go to a file beside the test's other outputs.
fn xvfb_log() -> Stdio {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("window_screenshot.xvfb.{}.log", std::process::id()));
    std::fs::File::create(&path).map_or_else(|_| Stdio::null(), Stdio::from)
}

/// Start Xvfb on a free display number of our own. Low numbers (:0, :1)
/// are left alone: other programs on a shared machine assume them. Xvfb
/// prints the number on stdout (-displayfd) once it accepts connections, or
/// exits if the number is taken; then the next one is tried.
fn start_xvfb() -> (KillOnDrop, String) {
    let base = 200 + std::process::id() % 600;
    for attempt in 0..40 {
        let n = 200 + (base + attempt * 17) % 800;
        if Path::new(&format!("/tmp/.X{n}-lock")).exists()
            || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        {
            continue;
        }
        let mut child = Command::new("Xvfb")
            .arg(format!(":{n}"))
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1024x1280x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(xvfb_log())
            .spawn()
            .expect("cannot start Xvfb");
        let stdout = child.stdout.take().expect("Xvfb stdout");
        let guard = KillOnDrop(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(DEADLINE)
            .expect("Xvfb neither started nor failed in time");
        if line.trim() == n.to_string() {
            return (guard, format!(":{n}"));
        }
        // Empty line: Xvfb exited (the display was taken meanwhile).
    }
    panic!("no free X display number found for Xvfb");
}

fn run_tool(display: &str, program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .env("DISPLAY", display)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn find_window(display: &str, title: &str) -> String {
    wait_for("the window to appear", || {
        let out = run_tool(
            display,
            "xdotool",
            &["search", "--name", &format!("^{title}$")],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().next().map(|l| l.trim().to_string())
    })
}

/// An RGB image read back from the X server.
struct Shot {
    width: usize,
    height: usize,
    rgb: Vec<u32>,
}

impl Shot {
    fn px(&self, x: usize, y: usize) -> u32 {
        self.rgb[y * self.width + x]
    }

    /// Rows [y0, y1) equal those of `want` (a WIDTH-wide frame)?
    fn rows_match(&self, want: &[u32], y0: usize, y1: usize) -> bool {
        self.rows_match_width(want, WIDTH, y0, y1)
    }

    /// Rows [y0, y1) equal those of `want`, a `width`-wide frame?
    fn rows_match_width(&self, want: &[u32], width: usize, y0: usize, y1: usize) -> bool {
        self.width == width
            && self.height >= y1
            && self.rgb[y0 * width..y1 * width] == want[y0 * width..y1 * width]
    }

    fn write_png(&self, path: &Path) {
        let file = std::fs::File::create(path).expect("create png");
        let mut enc = png::Encoder::new(
            std::io::BufWriter::new(file),
            self.width as u32,
            self.height as u32,
        );
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("png header");
        let bytes: Vec<u8> = self
            .rgb
            .iter()
            .flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, *p as u8])
            .collect();
        w.write_image_data(&bytes).expect("png data");
    }
}

/// Parse an X Window Dump (ZPixmap, 24/32 bits per pixel, true colour).
fn parse_xwd(data: &[u8]) -> Result<Shot, String> {
    let field = |i: usize| -> Result<u32, String> {
        data.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "xwd file too short".to_string())
    };
    let header_size = field(0)? as usize;
    if field(1)? != 7 || field(2)? != 2 {
        return Err("not an XWD v7 ZPixmap".into());
    }
    let (width, height) = (field(4)? as usize, field(5)? as usize);
    let msb_first = field(7)? == 1;
    let bpp = field(11)? as usize;
    let bytes_per_line = field(12)? as usize;
    let masks = [field(14)?, field(15)?, field(16)?];
    let ncolors = field(19)? as usize;
    if bpp != 32 && bpp != 24 {
        return Err(format!("unsupported {bpp} bits per pixel"));
    }
    let start = header_size + ncolors * 12;
    let need = start + height * bytes_per_line;
    if data.len() < need {
        return Err(format!("xwd data is {} bytes, want {need}", data.len()));
    }
    let channel = |pixel: u32, mask: u32| -> u32 {
        if mask == 0 {
            return 0;
        }
        let v = (pixel & mask) >> mask.trailing_zeros();
        let bits = (mask >> mask.trailing_zeros()).count_ones();
        if bits >= 8 {
            v >> (bits - 8)
        } else {
            v << (8 - bits)
        }
    };
    let step = bpp / 8;
    let mut rgb = Vec::with_capacity(width * height);
    for y in 0..height {
        let row = &data[start + y * bytes_per_line..];
        for x in 0..width {
            let b = &row[x * step..x * step + step];
            let mut p = 0u32;
            for k in 0..step {
                let byte = if msb_first { b[k] } else { b[step - 1 - k] };
                p = (p << 8) | u32::from(byte);
            }
            rgb.push(
                (channel(p, masks[0]) << 16) | (channel(p, masks[1]) << 8) | channel(p, masks[2]),
            );
        }
    }
    Ok(Shot { width, height, rgb })
}

fn screenshot(display: &str, wid: &str) -> Option<Shot> {
    let out = run_tool(display, "xwd", &["-silent", "-id", wid]);
    if !out.status.success() {
        return None;
    }
    parse_xwd(&out.stdout).ok()
}

fn centre(player: PlayerId) -> (usize, usize) {
    let (x, y) = PLAYER_POSITIONS[usize::from(player) - 1];
    (x + SQUARE / 2, y + SQUARE / 2)
}

/// Click `player` `times` times like a hand: 150 ms down, 150 ms up.
/// (xdotool's own `click` releases within microseconds of the press; minifb
/// only reports whether the button is down, so such a click can fall
/// between two polls. The window polls every 1 ms, but on a loaded machine
/// the X server itself can stall for tens of ms and then deliver a press and
/// its release together: the presses here are long enough for that.)
fn click(display: &str, wid: &str, player: PlayerId, times: u32) {
    let (x, y) = centre(player);
    click_at(display, wid, (x, y), times);
}

/// [`click`] at window point `at`.
fn click_at(display: &str, wid: &str, at: (usize, usize), times: u32) {
    let (x, y) = (at.0.to_string(), at.1.to_string());
    // minifb reads the pointer's position before the events of each update,
    // so a press sent right after the move can be paired with the position
    // before it if the window's thread stalls in between: let the move
    // settle first.
    let mut args = vec!["mousemove", "--window", wid, &x, &y, "sleep", "0.1"];
    for _ in 0..times {
        args.extend([
            "mousedown",
            "1",
            "sleep",
            "0.15",
            "mouseup",
            "1",
            "sleep",
            "0.15",
        ]);
    }
    let out = run_tool(display, "xdotool", &args);
    assert!(out.status.success(), "xdotool failed: {out:?}");
}

/// The frame `render` draws for these HP values and header.
fn expected(hp: [i32; 4], header: &str) -> Vec<u32> {
    let state = BoardState {
        hp: hp.map(Some).to_vec(),
        header: header.into(),
        footer: [String::new(), String::new()],
    };
    let mut buf = vec![0; WIDTH * HEIGHT];
    window::render(&state, &mut buf);
    buf
}

/// Wait until the window's header and board show exactly `want`, and the
/// footer's first line shows `status`; returns that screenshot.
fn wait_for_frame(display: &str, wid: &str, what: &str, want: &[u32], footer0: &[u32]) -> Shot {
    wait_for(what, || {
        screenshot(display, wid).filter(|s| {
            s.rows_match(want, 0, FOOTER_TOP) && s.rows_match(footer0, FOOTER_TOP, FOOTER_TOP + 50)
        })
    })
}

fn drain_until(rx: &CommandReceiver, want: usize) -> Vec<i32> {
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < want {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {want} clicks on the commands queue; got {got:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
        got.extend(rx.drain());
    }
    got
}

fn new_link() -> (GameLink, CommandReceiver, OrderSender) {
    let (commands, rx) = command_queue();
    let (otx, orders) = order_queue();
    let link = GameLink {
        commands,
        orders,
        game: SharedGame::new(),
        status: StatusBoard::default(),
    };
    (link, rx, otx)
}

fn spawn_window(
    link: GameLink,
    title: &str,
    tuning: WindowTuning,
    scale: Option<f64>,
) -> JoinHandle<Result<(), WindowError>> {
    let opts = WindowOptions {
        fps: 60,
        title: title.into(),
        scale,
    };
    std::thread::spawn(move || window::run_with(&link, opts, tuning))
}

fn join_within(handle: JoinHandle<Result<(), WindowError>>, what: &str) -> Result<(), WindowError> {
    wait_for(what, || handle.is_finished().then_some(()));
    handle.join().expect("window thread panicked")
}

/// Ask the window to close the way a window manager does (WM_DELETE_WINDOW).
fn close_window(display: &str, wid: &str) {
    use x11_dl::xlib;
    let wid: xlib::Window = wid.parse().expect("window id");
    let xl = xlib::Xlib::open().expect("cannot load libX11");
    let name = CString::new(display).expect("display name");
    // SAFETY: plain Xlib calls on a connection this function opens and closes;
    // the event is zeroed and then filled as a ClientMessage.
    unsafe {
        let dpy = (xl.XOpenDisplay)(name.as_ptr());
        assert!(!dpy.is_null(), "cannot open {display}");
        let protocols = (xl.XInternAtom)(dpy, c"WM_PROTOCOLS".as_ptr(), xlib::False);
        let delete = (xl.XInternAtom)(dpy, c"WM_DELETE_WINDOW".as_ptr(), xlib::False);
        let mut ev: xlib::XEvent = std::mem::zeroed();
        ev.client_message.type_ = xlib::ClientMessage;
        ev.client_message.window = wid;
        ev.client_message.message_type = protocols;
        ev.client_message.format = 32;
        ev.client_message
            .data
            .set_long(0, delete as std::os::raw::c_long);
        ev.client_message
            .data
            .set_long(1, xlib::CurrentTime as std::os::raw::c_long);
        (xl.XSendEvent)(dpy, wid, xlib::False, xlib::NoEventMask, &mut ev);
        (xl.XFlush)(dpy);
        (xl.XCloseDisplay)(dpy);
    }
}

#[test]
fn window_under_xvfb() {
    // A failure unwinds into dropping Xvfb while a window thread still
    // talks to it, and Xlib then exits the process before the harness
    // prints the captured panic: say it on stderr first.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "window_under_xvfb failed: {info}");
        default_hook(info);
    }));
    // 1. No display at all: the caller is told to go headless.
    // SAFETY: the only test in this binary; nothing else reads the
    // environment while it changes.
    unsafe {
        std::env::remove_var("DISPLAY");
        std::env::remove_var("WAYLAND_DISPLAY");
    }
    let (link, _rx, _otx) = new_link();
    match window::run(&link, WindowOptions::default()) {
        Err(WindowError::NoDisplay(msg)) => eprintln!("no display, as expected: {msg}"),
        other => panic!("expected NoDisplay without a display, got {other:?}"),
    }

    let missing: Vec<&str> = ["Xvfb", "xdotool", "xwd"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    if !missing.is_empty() {
        let msg = format!(
            "window_under_xvfb needs {missing:?} on PATH: apt-get install xvfb xdotool x11-apps"
        );
        if std::env::var("RAFTIAN_SKIP_X11").as_deref() == Ok("1") {
            eprintln!("SKIPPED (RAFTIAN_SKIP_X11=1): {msg}");
            return;
        }
        panic!("{msg} (or set RAFTIAN_SKIP_X11=1 to skip this test)");
    }

    // 2. A window under Xvfb, orders already waiting on raft_orders.
    let (_xvfb, display) = start_xvfb();
    // SAFETY: as above.
    unsafe { std::env::set_var("DISPLAY", &display) };
    let (link, rx, otx) = new_link();
    link.status.publish(NodeStatus {
        id: 0,
        name: "raftian".into(),
        mode: "LEADER".into(),
        term: 1,
        leader_id: Some(0),
        commit_index: Some(12),
        last_applied: Some(12),
        log_length: 13,
        ..NodeStatus::default()
    });
    let footer0 = {
        // Only the first footer line is compared (the second has the fps).
        let state = BoardState {
            footer: ["raftian  LEADER  term 1".into(), String::new()],
            ..BoardState::default()
        };
        let mut buf = vec![0; WIDTH * HEIGHT];
        window::render(&state, &mut buf);
        buf
    };
    // Player 3 attacked to death, player 1 once, player 4 three times; the
    // leader's no-op 0 and the seeded 5 change nothing.
    for order in [0, 5, 3, 3, 3, 3, 1, 4, 4, 4] {
        otx.push(order);
    }
    let title = format!("raftian-e2e-{}", std::process::id());
    let tuning = WindowTuning {
        // Keep click messages up so the screenshot cannot miss them.
        message_hold: Duration::from_secs(600),
        ..WindowTuning::default()
    };
    // No scale given: the default fits the 1024x1280 screen at 1, the
    // original's size (the frames compared below are 1000 px wide).
    let handle = spawn_window(link, &title, tuning, None);
    let wid = find_window(&display, &title);

    let shot = wait_for_frame(
        &display,
        &wid,
        "the orders to be drawn",
        &expected([70, 100, 0, 10], window::DEFAULT_HEADER),
        &footer0,
    );
    // The same, said in colours (as in the paper's Figure 8).
    let at = |s: &Shot, p| {
        let (x, y) = centre(p);
        s.px(x, y)
    };
    assert_eq!(
        at(&shot, 3),
        window::rgb(33, 33, 55),
        "dead player 3 is dark"
    );
    assert_eq!(at(&shot, 1), window::rgb(255, 65, 65), "player 1 faded");
    assert_eq!(at(&shot, 2), window::GREEN, "player 2 untouched");
    assert_eq!(shot.px(10, 10), window::WHITE);
    assert_eq!(shot.px(10, 150), window::GREY);
    assert!(rx.drain().is_empty(), "orders are not commands");

    // 3. A real click on living player 2: a command, and no damage yet.
    click(&display, &wid, 2, 1);
    assert_eq!(drain_until(&rx, 1), vec![2]);
    wait_for_frame(
        &display,
        &wid,
        "'Player 2 pressed' with player 2 still whole",
        &expected([70, 100, 0, 10], "Player 2 pressed"),
        &footer0,
    );
    // Raft commits it and hands it back: now player 2 takes damage.
    otx.push(2);
    let want = expected([70, 70, 0, 10], "Player 2 pressed");
    wait_for_frame(
        &display,
        &wid,
        "player 2 damaged by the returned order",
        &want,
        &footer0,
    );
    // The footer's second line shows the measured frame rate once a second
    // has passed: find which "N fps" it shows.
    let footer_with = |fps: &str| {
        let mut buf = vec![0; WIDTH * HEIGHT];
        window::render_background(&mut buf);
        let line = format!("leader 0  commit 12  log 13  {fps} fps");
        window::render_text(&mut buf, "", &[String::new(), line]);
        buf
    };
    let no_fps = footer_with("-");
    let lower = FOOTER_TOP + 50;
    let shot = wait_for("a frame rate in the footer", || {
        screenshot(&display, &wid).filter(|s| {
            s.rows_match(&want, 0, FOOTER_TOP)
                && s.rows_match(&footer0, FOOTER_TOP, lower)
                && !s.rows_match(&no_fps, lower, HEIGHT)
        })
    });
    let shown = (1..=80).find(|n| shot.rows_match(&footer_with(&n.to_string()), lower, HEIGHT));
    eprintln!("footer shows {shown:?} fps (cap 60)");
    assert!(
        shown.is_some(),
        "the footer shows no frame rate of 1..=80 fps"
    );
    let png = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("window_screenshot.png");
    shot.write_png(&png);
    eprintln!("screenshot: {}", png.display());
    if let Some(out) = std::env::var_os("RAFTIAN_SCREENSHOT_OUT") {
        shot.write_png(Path::new(&out));
        eprintln!("screenshot also written to {}", out.to_string_lossy());
    }

    // 4. A click on dead player 3: a message, no command.
    click(&display, &wid, 3, 1);
    wait_for_frame(
        &display,
        &wid,
        "'Player 3 already dead'",
        &expected([70, 70, 0, 10], "Player 3 already dead"),
        &footer0,
    );
    // The click was handled before that frame was drawn, so a command
    // would already be on the queue.
    assert!(rx.drain().is_empty(), "a dead player's click was queued");

    // 5. Quick successive clicks are each seen once.
    click(&display, &wid, 1, 3);
    assert_eq!(drain_until(&rx, 3), vec![1, 1, 1]);

    // 6. A won round: only player 2 is left. A click anywhere on the board
    // (here on dead player 3) asks for the next round; when that order
    // comes back from Raft every square is whole again.
    for order in [1, 1, 1, 4] {
        otx.push(order);
    }
    wait_for_frame(
        &display,
        &wid,
        "the round won by player 2",
        &expected([0, 70, 0, 0], "Player 1 pressed"),
        &footer0,
    );
    click(&display, &wid, 3, 1);
    assert_eq!(drain_until(&rx, 1), vec![raftian::game::NEW_ROUND]);
    otx.push(i64::from(raftian::game::NEW_ROUND));
    wait_for_frame(
        &display,
        &wid,
        "round 2 with every square whole",
        &expected([100, 100, 100, 100], "New round requested"),
        &footer0,
    );

    // 7. Closing the window ends run() with Ok.
    close_window(&display, &wid);
    let result = join_within(handle, "run() to return after WM_DELETE_WINDOW");
    assert!(result.is_ok(), "{result:?}");
    drop(otx);

    // 8. A node that stops (drops raft_orders) closes its window too.
    let (link, _rx2, otx2) = new_link();
    let title2 = format!("{title}-b");
    let handle = spawn_window(link, &title2, WindowTuning::default(), Some(1.0));
    find_window(&display, &title2);
    drop(otx2);
    let result = join_within(handle, "run() to return once the node stopped");
    assert!(result.is_ok(), "{result:?}");

    // 9. At half size: the same layout, clicks land on the player drawn
    // under the pointer, to the pixel.
    clicks_at_half_scale(&display, &format!("{title}-half"));

    // 10. Real node processes: a click on one node's window (at --scale
    // 0.5) becomes an order replicated to every node of the cluster.
    clicks_in_a_node_window_replicate(&display);
}

fn clicks_at_half_scale(display: &str, title: &str) {
    let view = View::new(0.5);
    let (w, h) = view.size();
    assert_eq!((w, h), (500, 600));
    let footer_top = FOOTER_TOP / 2;
    let (link, rx, otx) = new_link();
    for order in [3, 3, 3, 3] {
        otx.push(order);
    }
    let tuning = WindowTuning {
        message_hold: Duration::from_secs(600),
        ..WindowTuning::default()
    };
    let handle = spawn_window(link, title, tuning, Some(0.5));
    let wid = find_window(display, title);
    let frame = |header: &str| view.frame(&expected([100, 100, 0, 100], header));
    let want = frame(window::DEFAULT_HEADER);
    wait_for("the half-size frame", || {
        screenshot(display, &wid).filter(|s| s.rows_match_width(&want, w, 0, footer_top))
    });

    // The middle of each living square.
    for p in [1, 2, 4] {
        let (x, y) = centre(p);
        click_at(display, &wid, view.to_window(x, y), 1);
        assert_eq!(
            drain_until(&rx, 1),
            vec![i32::from(p)],
            "player {p} at scale 0.5"
        );
    }
    // The edge of player 2's square: the window column left of its first
    // one shows the board (no click), that first column shows player 2.
    let (px, py) = PLAYER_POSITIONS[1];
    let (wx, wy) = view.to_window(px, py + SQUARE / 2);
    let (lx, ly) = view.to_layout((wx - 1) as f32, wy as f32);
    assert_eq!(window::player_at(lx, ly), None);
    click_at(display, &wid, (wx - 1, wy), 1);
    click_at(display, &wid, (wx, wy), 1);
    assert_eq!(drain_until(&rx, 1), vec![2], "only the click inside counts");
    let want = frame("Player 2 pressed");
    wait_for("'Player 2 pressed' at half size", || {
        screenshot(display, &wid).filter(|s| s.rows_match_width(&want, w, 0, footer_top))
    });
    assert!(
        rx.drain().is_empty(),
        "the click beside the square was queued"
    );
    // Dead player 3: refused at this scale too.
    let (x, y) = centre(3);
    click_at(display, &wid, view.to_window(x, y), 1);
    let want = frame("Player 3 already dead");
    wait_for("'Player 3 already dead' at half size", || {
        screenshot(display, &wid).filter(|s| s.rows_match_width(&want, w, 0, footer_top))
    });
    assert!(rx.drain().is_empty(), "a dead player's click was queued");

    close_window(display, &wid);
    let result = join_within(handle, "the half-size window to close");
    assert!(result.is_ok(), "{result:?}");
    drop(otx);
}

fn clicks_in_a_node_window_replicate(display: &str) {
    let dir = common::temp_dir("window-cluster");
    let (toml, addrs) = common::cluster_toml(3, true, false);
    let config = dir.join("cluster.toml");
    std::fs::write(&config, toml).unwrap();
    let _nodes: Vec<KillOnDrop> = (0..3)
        .map(|id| {
            let out = std::fs::File::create(dir.join(format!("node{id}.out"))).unwrap();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_raftian"));
            cmd.args([
                "node",
                "--ephemeral",
                "--id",
                &id.to_string(),
                "--scale",
                "0.5",
            ])
            .arg("--config")
            .arg(&config)
            .arg("--log-dir")
            .arg(dir.join("logs"))
            .env("DISPLAY", display)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
            if id != 1 {
                // Node 1 has the window; the leader (0) and node 2 run headless.
                cmd.arg("--headless");
            }
            KillOnDrop(cmd.spawn().expect("spawn raftian node"))
        })
        .collect();
    let hp = |addr: &String| -> Option<Vec<i64>> {
        match common::status(addr).ok()?.get("hp")? {
            dxr::Value::Array(a) => Some(a.iter().filter_map(common::int).collect()),
            _ => None,
        }
    };
    for a in &addrs {
        wait_for("every node to answer status()", || hp(a));
    }
    let wid = find_window(display, "Raftian - bob1");
    let (x, y) = centre(3);
    click_at(display, &wid, View::new(0.5).to_window(x, y), 2);
    for a in &addrs {
        wait_for("the window's clicks to be applied on every node", || {
            (hp(a)? == [100, 100, 40, 100]).then_some(())
        });
    }
}
