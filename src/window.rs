//! The game window (minifb), laid out like the original pygame one: a
//! 1000x1200 window with a white header and footer (100 px each) around a
//! grey 1000x1000 board cut in 4x4 cells by thin black lines, and the four
//! players as 80x80 squares.
//!
//! [`render`] is pure (state in, pixels out) so it is tested without a
//! display; [`run`] is the minifb loop: input, orders from Raft, drawing.
//!
//! A click on a living player only queues a command (`pygame_commands`);
//! damage is dealt when the order comes back from Raft (`raft_orders`).

pub mod fps;
pub mod scale;
pub mod text;

use std::time::{Duration, Instant};

use minifb::{MouseButton, MouseMode};

use crate::game::{Game, MAX_HP, MAX_PLAYER, NEW_ROUND, PLAYERS, PlayerId};
use crate::queues::{CommandSender, GameLink, NodeStatus};

use self::fps::FpsMeter;
use self::scale::View;
use self::text::draw_text_centred;

/// Window width in pixels.
pub const WIDTH: usize = 1000;
/// Window height in pixels.
pub const HEIGHT: usize = 1200;
/// Height of the header (and of the footer).
pub const BAR_HEIGHT: usize = 100;
/// First row of the board.
pub const BOARD_TOP: usize = BAR_HEIGHT;
/// The board is this many pixels wide and high.
pub const BOARD_SIZE: usize = 1000;
/// First row of the footer.
pub const FOOTER_TOP: usize = BOARD_TOP + BOARD_SIZE;
/// Board grid pitch (thin black lines every 250 px).
pub const CELL: usize = 250;
/// Side of a player's square.
pub const SQUARE: usize = 80;

pub const WHITE: u32 = 0xff_ff_ff;
pub const BLACK: u32 = 0x00_00_00;
pub const GREY: u32 = rgb(125, 125, 125);
pub const RED: u32 = rgb(255, 0, 0);
pub const GREEN: u32 = rgb(0, 255, 0);
pub const BLUE: u32 = rgb(0, 0, 255);
pub const YELLOW: u32 = rgb(255, 255, 0);

/// Colours of players 1..=15: the original's four, then one each for
/// the players who join.
pub const PLAYER_COLOURS: [u32; MAX_PLAYER as usize] = [
    RED,
    GREEN,
    BLUE,
    YELLOW,
    rgb(255, 140, 0),   // orange
    rgb(148, 0, 211),   // violet
    rgb(0, 206, 209),   // turquoise
    rgb(255, 0, 255),   // magenta
    rgb(139, 69, 19),   // brown
    rgb(0, 128, 128),   // teal
    rgb(154, 205, 50),  // yellow-green
    rgb(0, 0, 128),     // navy
    rgb(128, 128, 0),   // olive
    rgb(128, 0, 0),     // maroon
    rgb(255, 105, 180), // pink
];

/// Top-left corner of a square in board cell (`row`, `col`) of the 4x4
/// board, in window coordinates (the original blits its players straight
/// onto the 1000x1200 display, so y includes the 100 px header): each
/// square sits in the middle of its cell.
const fn cell(row: usize, col: usize) -> (usize, usize) {
    (col * 250 + 85, 100 + row * 250 + 85)
}

/// Top-left corners of players 1..=15. The original four keep their
/// places; players who join take the other cells in reading order, and
/// the top-left cell stays free (node 0 hosts and has no square).
pub const PLAYER_POSITIONS: [(usize, usize); MAX_PLAYER as usize] = [
    cell(2, 2),
    cell(0, 3),
    cell(0, 1),
    cell(3, 0),
    cell(0, 2),
    cell(1, 0),
    cell(1, 1),
    cell(1, 2),
    cell(1, 3),
    cell(2, 0),
    cell(2, 1),
    cell(2, 3),
    cell(3, 1),
    cell(3, 2),
    cell(3, 3),
];

/// Header text when no click message is showing (the original's is "Top Text").
pub const DEFAULT_HEADER: &str = "Click a player to attack";

/// How long a click message stays in the header (the original's 0.5 s).
pub const MESSAGE_HOLD: Duration = Duration::from_millis(500);

const HEADER_SCALE: usize = 4;
const FOOTER_SCALE: [usize; 2] = [3, 2];
const FOOTER_ROWS: [usize; 2] = [FOOTER_TOP + 32, FOOTER_TOP + 74];

/// Pack an RGB triple as minifb's 0RGB pixel.
pub const fn rgb(r: u8, g: u8, b: u8) -> u32 {
    ((r as u32) << 16) | ((g as u32) << 8) | b as u32
}

/// Split a 0RGB pixel into its RGB triple.
pub const fn channels(p: u32) -> (u8, u8, u8) {
    ((p >> 16) as u8, (p >> 8) as u8, p as u8)
}

/// Window settings.
#[derive(Clone, Debug)]
pub struct WindowOptions {
    /// Frame cap; 0 = uncapped.
    pub fps: u32,
    pub title: String,
    /// Window size as a multiple of the 1000x1200 layout (see
    /// [`scale`]); `None`: the largest that fits the screen.
    pub scale: Option<f64>,
}

impl Default for WindowOptions {
    fn default() -> Self {
        WindowOptions {
            fps: 60,
            title: "raftian".into(),
            scale: None,
        }
    }
}

/// Knobs that tests turn; [`run`] uses the defaults.
#[derive(Clone, Debug)]
pub struct WindowTuning {
    /// How long "Player N pressed" stays in the header.
    pub message_hold: Duration,
    /// How often input is polled while waiting for the next frame. minifb
    /// only says whether the button is down, so a press and release that
    /// both fall between two polls would be lost: poll well under the
    /// length of a click (a quick one lasts 30 ms or more; xdotool's, 12 ms).
    pub input_poll: Duration,
}

impl Default for WindowTuning {
    fn default() -> Self {
        WindowTuning {
            message_hold: MESSAGE_HOLD,
            input_poll: Duration::from_millis(1),
        }
    }
}

/// Why the window could not run.
#[derive(Debug)]
pub enum WindowError {
    /// No display (minifb's `Window::new` failed): run headless instead.
    NoDisplay(String),
    Other(String),
}

impl std::fmt::Display for WindowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WindowError::NoDisplay(m) => write!(f, "no display: {m}"),
            WindowError::Other(m) => write!(f, "window error: {m}"),
        }
    }
}

impl std::error::Error for WindowError {}

/// Everything [`render`] draws.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardState {
    /// HP per player id from 1 (`None`: no such player on the board).
    pub hp: Vec<Option<i32>>,
    /// Header text.
    pub header: String,
    /// Footer: a large first line and a smaller second one.
    pub footer: [String; 2],
}

impl Default for BoardState {
    fn default() -> Self {
        BoardState {
            hp: vec![Some(MAX_HP); PLAYERS],
            header: DEFAULT_HEADER.into(),
            footer: [String::new(), String::new()],
        }
    }
}

/// `src` drawn at opacity `alpha` (0..=255) over `dst`, per channel.
pub fn blend(src: u32, dst: u32, alpha: u8) -> u32 {
    let a = u32::from(alpha);
    let mix = |s: u8, d: u8| ((u32::from(s) * a + u32::from(d) * (255 - a) + 127) / 255) as u8;
    let (sr, sg, sb) = channels(src);
    let (dr, dg, db) = channels(dst);
    rgb(mix(sr, dr), mix(sg, dg), mix(sb, db))
}

/// The opacity the original gives a living player's colour over white.
pub fn hp_alpha(hp: i32) -> u8 {
    match hp {
        h if h >= 90 => 255,
        h if h >= 60 => 190,
        h if h >= 30 => 150,
        _ => 100,
    }
}

/// Colour of player `player` (1..=15) at `hp`: the player's colour fading
/// toward white as HP drops; dead, black at alpha 200 over the last faded
/// square (as the original blits it). Unknown players are drawn grey.
pub fn square_colour(player: PlayerId, hp: i32) -> u32 {
    let Some(&base) = usize::from(player)
        .checked_sub(1)
        .and_then(|i| PLAYER_COLOURS.get(i))
    else {
        return GREY;
    };
    if hp > 0 {
        blend(base, WHITE, hp_alpha(hp))
    } else {
        blend(BLACK, blend(base, WHITE, hp_alpha(1)), 200)
    }
}

/// The player whose square holds the window point (`x`, `y`), if any.
pub fn player_at(x: f32, y: f32) -> Option<PlayerId> {
    PLAYER_POSITIONS
        .iter()
        .position(|&(px, py)| {
            let (px, py, s) = (px as f32, py as f32, SQUARE as f32);
            x >= px && x < px + s && y >= py && y < py + s
        })
        .map(|i| (i + 1) as PlayerId)
}

/// Is `(x, y)` on the board (between header and footer)?
pub fn on_board(x: f32, y: f32) -> bool {
    let top = BOARD_TOP as f32;
    (0.0..WIDTH as f32).contains(&x) && (top..top + BOARD_SIZE as f32).contains(&y)
}

/// Fill a rectangle of a `WIDTH`-wide frame, clipped to the frame.
fn fill_rect(buf: &mut [u32], x: usize, y: usize, w: usize, h: usize, colour: u32) {
    let rows = buf.len() / WIDTH;
    let x_end = (x + w).min(WIDTH);
    if x >= x_end {
        return;
    }
    for row in y..(y + h).min(rows) {
        buf[row * WIDTH + x..row * WIDTH + x_end].fill(colour);
    }
}

/// Draw the header, the empty board and the footer background (no players,
/// no text). The dots experiment draws on this too.
pub fn render_background(buf: &mut [u32]) {
    fill_rect(buf, 0, 0, WIDTH, BAR_HEIGHT, WHITE);
    fill_rect(buf, 0, BOARD_TOP, WIDTH, BOARD_SIZE, GREY);
    fill_rect(buf, 0, FOOTER_TOP, WIDTH, BAR_HEIGHT, WHITE);
    for k in 1..BOARD_SIZE / CELL {
        fill_rect(buf, k * CELL, BOARD_TOP, 1, BOARD_SIZE, BLACK);
        fill_rect(buf, 0, BOARD_TOP + k * CELL, BOARD_SIZE, 1, BLACK);
    }
}

/// Draw header text and the two footer lines.
pub fn render_text(buf: &mut [u32], header: &str, footer: &[String; 2]) {
    let cx = (WIDTH / 2) as i64;
    draw_text_centred(
        buf,
        WIDTH,
        cx,
        (BAR_HEIGHT / 2) as i64,
        HEADER_SCALE,
        header,
        BLACK,
    );
    for ((line, scale), row) in footer.iter().zip(FOOTER_SCALE).zip(FOOTER_ROWS) {
        draw_text_centred(buf, WIDTH, cx, row as i64, scale, line, BLACK);
    }
}

/// Draw the whole window for `state` into `buf` (0RGB, `WIDTH` pixels per
/// row, `HEIGHT` rows; a shorter buffer gets the rows that fit).
pub fn render(state: &BoardState, buf: &mut [u32]) {
    render_background(buf);
    for (i, (&(x, y), hp)) in PLAYER_POSITIONS.iter().zip(&state.hp).enumerate() {
        let Some(hp) = *hp else { continue };
        fill_rect(
            buf,
            x,
            y,
            SQUARE,
            SQUARE,
            square_colour((i + 1) as PlayerId, hp),
        );
    }
    render_text(buf, &state.header, &state.footer);
}

/// The footer's two lines: who this node is and what it knows.
pub fn footer_lines(status: &NodeStatus, fps: Option<f64>) -> [String; 2] {
    let name = if status.name.is_empty() {
        format!("node {}", status.id)
    } else {
        status.name.clone()
    };
    let mode = if status.mode.is_empty() {
        "starting"
    } else {
        status.mode.as_str()
    };
    let leader = status
        .leader_id
        .map_or_else(|| "none".to_string(), |l| l.to_string());
    let commit = status
        .commit_index
        .map_or_else(|| "-".to_string(), |c| c.to_string());
    let fps = fps.map_or_else(|| "-".to_string(), |f| format!("{f:.0}"));
    let second = match status.censored_by {
        Some(l) => format!("leader {l} leaves my clicks out!"),
        None => format!(
            "leader {leader}  commit {commit}  log {}  {fps} fps",
            status.log_length
        ),
    };
    [format!("{name}  {mode}  term {}", status.term), second]
}

/// What a left click on `player` does: a living player's id goes on
/// `pygame_commands` (no damage yet); returns the header message.
pub fn click_player(commands: &CommandSender, game: &Game, player: PlayerId) -> String {
    match game.check_click(player) {
        Ok(player) => {
            if !commands.push(player) {
                log::warn!("click on player {player} dropped: the node has stopped");
            }
            format!("Player {player} pressed")
        }
        Err(refused) => refused.to_string(),
    }
}

/// Turns "is the button down now" samples into presses (down edges).
#[derive(Clone, Copy, Debug, Default)]
pub struct ClickDetector {
    was_down: bool,
}

impl ClickDetector {
    /// Feed one sample; true when the button has just gone down.
    pub fn feed(&mut self, down: bool) -> bool {
        let pressed = down && !self.was_down;
        self.was_down = down;
        pressed
    }
}

/// The attacker's own window says so when the rate limit drops its clicks
/// (issue 11): the count comes from the node's status.
#[derive(Clone, Copy, Debug, Default)]
struct DropNotice {
    seen: u64,
}

impl DropNotice {
    /// The header message if more of this node's clicks were dropped.
    fn update(&mut self, status: &NodeStatus) -> Option<String> {
        let more = status.rate_limited > self.seen;
        self.seen = status.rate_limited;
        let limit = status.rate_limit.unwrap_or_default();
        more.then(|| {
            format!(
                "Too fast: {} of your clicks dropped (limit {limit}/s)",
                status.rate_limited
            )
        })
    }
}

/// The header: a click message for a while, then the default text.
#[derive(Clone, Debug)]
struct Header {
    message: Option<(String, Instant)>,
    hold: Duration,
}

impl Header {
    fn show(&mut self, text: String, now: Instant) {
        self.message = Some((text, now));
    }

    /// The message while it lasts, then `idle` (the default text, or how
    /// the round ended).
    fn text(&mut self, now: Instant, idle: String) -> String {
        if let Some((_, since)) = &self.message
            && now.saturating_duration_since(*since) >= self.hold
        {
            self.message = None;
        }
        self.message.as_ref().map_or(idle, |(t, _)| t.clone())
    }
}

/// Run the window on the calling (main) thread until it is closed.
pub fn run(link: &GameLink, opts: WindowOptions) -> Result<(), WindowError> {
    run_with(link, opts, WindowTuning::default())
}

/// [`run`] with non-default tuning.
///
/// Returns `Ok(())` when the window is closed, or when the node drops its
/// end of `raft_orders` (it has stopped); `Err(NoDisplay)` when no window
/// can be opened.
pub fn run_with(
    link: &GameLink,
    opts: WindowOptions,
    tuning: WindowTuning,
) -> Result<(), WindowError> {
    if opts.title.contains('\0') {
        return Err(WindowError::Other(
            "the window title contains a NUL byte".into(),
        ));
    }
    // No scale given: the largest that fits the screen. The connection
    // that asks stays open until the window is (see scale::Screen).
    let screen = opts.scale.is_none().then(scale::Screen::open).flatten();
    let view = View::new(
        opts.scale
            .unwrap_or_else(|| scale::fit_scale(screen.as_ref().and_then(scale::Screen::size))),
    );
    let (win_w, win_h) = view.size();
    let mut window = open_window(&opts.title, win_w, win_h)?;
    drop(screen);
    log::info!("window {win_w}x{win_h} (scale {})", view.scale());
    // We pace frames ourselves (minifb would otherwise sleep in update()).
    window.set_target_fps(0);

    let period = (opts.fps > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(opts.fps)));
    let mut input = Input {
        clicks: ClickDetector::default(),
        header: Header {
            message: None,
            hold: tuning.message_hold,
        },
    };
    let mut buf = vec![0u32; WIDTH * HEIGHT];
    let mut scaled = Vec::new();
    let mut shown: Option<BoardState> = None;
    let start = Instant::now();
    let mut meter = FpsMeter::new(start);
    let mut next_frame = start;
    let mut last_log = start;
    let mut notice = DropNotice::default();

    loop {
        // Input, polled often until the next frame is due.
        loop {
            window.update();
            if !window.is_open() {
                log::info!("window closed");
                return Ok(());
            }
            input.poll(&window, link, &view);
            let Some(_) = period else { break };
            let now = Instant::now();
            if now >= next_frame {
                break;
            }
            std::thread::sleep((next_frame - now).min(tuning.input_poll));
        }
        // Like pygame's clock.tick(fps): frames start at least a period
        // apart, so the rate never exceeds the cap (no catch-up bursts).
        if let Some(p) = period {
            next_frame = Instant::now() + p;
        }

        // Orders committed by Raft: this is where damage happens.
        if !link.orders.apply_pending(&link.game, |_| {}) {
            log::info!("the node has stopped: closing the window");
            return Ok(());
        }

        let now = Instant::now();
        let status = link.status.get();
        if let Some(m) = notice.update(&status) {
            input.header.show(m, now);
        }
        let game = link.game.snapshot();
        let idle = game
            .round_end()
            .map_or_else(|| DEFAULT_HEADER.to_owned(), |end| end.to_string());
        let state = BoardState {
            hp: game.hp_by_id(),
            header: input.header.text(now, idle),
            footer: footer_lines(&status, meter.last()),
        };
        if shown.as_ref() != Some(&state) {
            render(&state, &mut buf);
            if !view.is_identity() {
                view.resample(&buf, &mut scaled);
            }
            shown = Some(state);
        }
        let frame = if view.is_identity() { &buf } else { &scaled };
        window
            .update_with_buffer(frame, win_w, win_h)
            .map_err(|e| WindowError::Other(e.to_string()))?;
        if !window.is_open() {
            log::info!("window closed");
            return Ok(());
        }
        input.poll(&window, link, &view);

        let now = Instant::now();
        if let Some(fps) = meter.frame(now)
            && now.duration_since(last_log) >= Duration::from_secs(10)
        {
            log::debug!("window: {fps:.0} fps");
            last_log = now;
        }
    }
}

/// minifb's window. A display that is named but refuses the connection is
/// tried twice more, 100 ms apart: under Xvfb a connection opened right
/// after another one of this process closed fails now and then.
fn open_window(title: &str, w: usize, h: usize) -> Result<minifb::Window, WindowError> {
    let named = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    let mut why = String::new();
    for attempt in 0..if named { 3 } else { 1 } {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        match minifb::Window::new(title, w, h, minifb::WindowOptions::default()) {
            Ok(window) => return Ok(window),
            Err(e) => why = e.to_string(),
        }
    }
    Err(WindowError::NoDisplay(why))
}

/// Mouse handling between frames.
struct Input {
    clicks: ClickDetector,
    header: Header,
}

impl Input {
    fn poll(&mut self, window: &minifb::Window, link: &GameLink, view: &View) {
        if !self.clicks.feed(window.get_mouse_down(MouseButton::Left)) {
            return;
        }
        let Some((x, y)) = window.get_mouse_pos(MouseMode::Discard) else {
            return;
        };
        // Window pixels to the layout pixel shown there (any --scale).
        let (x, y) = view.to_layout(x, y);
        let game = link.game.snapshot();
        if game.round_end().is_some() && on_board(x, y) {
            // The round is over: a click anywhere on the board starts the next.
            link.commands.push_raw(NEW_ROUND);
            self.header
                .show("New round requested".into(), Instant::now());
        } else if let Some(player) = player_at(x, y) {
            let message = click_player(&link.commands, &game, player);
            self.header.show(message, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queues::command_queue;

    fn px(buf: &[u32], x: usize, y: usize) -> u32 {
        buf[y * WIDTH + x]
    }

    fn square_centre(player: PlayerId) -> (usize, usize) {
        let (x, y) = PLAYER_POSITIONS[usize::from(player) - 1];
        (x + SQUARE / 2, y + SQUARE / 2)
    }

    fn drawn(state: &BoardState) -> Vec<u32> {
        let mut buf = vec![0x123456; WIDTH * HEIGHT];
        render(state, &mut buf);
        buf
    }

    /// Pixels in a rectangle that differ from `bg`.
    fn inked(buf: &[u32], x0: usize, y0: usize, x1: usize, y1: usize, bg: u32) -> usize {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| px(buf, x, y) != bg)
            .count()
    }

    #[test]
    fn layout_matches_the_original() {
        let buf = drawn(&BoardState::default());
        assert_eq!(px(&buf, 10, 10), WHITE, "header");
        assert_eq!(px(&buf, 10, 1190), WHITE, "footer");
        assert_eq!(px(&buf, 10, 110), GREY, "board");
        assert_eq!(px(&buf, 999, 1099), GREY, "board corner");
        // Grid lines: columns 250/500/750, board rows 250/500/750.
        for k in [250, 500, 750] {
            assert_eq!(px(&buf, k, 120), BLACK);
            assert_eq!(px(&buf, k + 1, 120), GREY);
            assert_eq!(px(&buf, 20, BOARD_TOP + k), BLACK);
            assert_eq!(px(&buf, 20, BOARD_TOP + k + 1), GREY);
        }
        // Squares at the original's display coordinates, full colour.
        for (p, colour) in [(1, RED), (2, GREEN), (3, BLUE), (4, YELLOW)] {
            let (x, y) = PLAYER_POSITIONS[p - 1];
            assert_eq!(px(&buf, x, y), colour);
            assert_eq!(px(&buf, x + 79, y + 79), colour);
            assert_ne!(px(&buf, x + 80, y + 40), colour);
            assert_ne!(px(&buf, x - 1, y + 40), colour);
        }
        // Each square is centred in its board cell (85 px from the cell's edges).
        for &(x, y) in &PLAYER_POSITIONS {
            assert_eq!(x % CELL, 85);
            assert_eq!((y - BOARD_TOP) % CELL, 85);
        }
        let mut cells: Vec<_> = PLAYER_POSITIONS.to_vec();
        cells.push((85, BOARD_TOP + 85));
        cells.sort_unstable();
        cells.dedup();
        assert_eq!(
            cells.len(),
            16,
            "15 players and the host's free cell fill the board"
        );
        assert!(
            inked(&buf, 0, 0, WIDTH, BAR_HEIGHT, WHITE) > 500,
            "header text"
        );
    }

    #[test]
    fn squares_fade_toward_white_then_go_dark() {
        // Player 3 (blue) down the original's steps: 100, 70, 40, 10, dead.
        let blue = |hp| channels(square_colour(3, hp));
        assert_eq!(blue(100), (0, 0, 255));
        assert_eq!(blue(70), (65, 65, 255)); // alpha 190 over white
        assert_eq!(blue(40), (105, 105, 255)); // alpha 150
        assert_eq!(blue(10), (155, 155, 255)); // alpha 100
        assert_eq!(blue(0), (33, 33, 55)); // black alpha 200 over the last
        assert_eq!(square_colour(3, -20), square_colour(3, 0));
        assert_eq!(channels(square_colour(1, 40)), (255, 105, 105));
        assert_eq!(square_colour(16, 100), GREY);
        assert_eq!(square_colour(0, 100), GREY);

        let state = BoardState {
            hp: [70, 100, 0, 10].map(Some).to_vec(),
            ..BoardState::default()
        };
        let buf = drawn(&state);
        let (x, y) = square_centre(1);
        assert_eq!(px(&buf, x, y), square_colour(1, 70));
        let (x, y) = square_centre(3);
        assert_eq!(px(&buf, x, y), rgb(33, 33, 55));
        let (x, y) = square_centre(4);
        assert_eq!(px(&buf, x, y), rgb(255, 255, 155));
        let (x, y) = square_centre(2);
        assert_eq!(px(&buf, x, y), GREEN);
    }

    #[test]
    fn header_and_footer_text_are_drawn_and_differ() {
        let mut a = BoardState {
            header: "Player 3 pressed".into(),
            ..BoardState::default()
        };
        let mut b = a.clone();
        b.header = "Player 3 already dead".into();
        let (ba, bb) = (drawn(&a), drawn(&b));
        let ink_a = inked(&ba, 0, 0, WIDTH, BAR_HEIGHT, WHITE);
        let ink_b = inked(&bb, 0, 0, WIDTH, BAR_HEIGHT, WHITE);
        assert!(ink_a > 500 && ink_b > ink_a, "{ink_a} {ink_b}");
        // Text is centred: ink on both sides of the middle.
        assert!(inked(&ba, 0, 0, WIDTH / 2, BAR_HEIGHT, WHITE) > 100);
        assert!(inked(&ba, WIDTH / 2, 0, WIDTH, BAR_HEIGHT, WHITE) > 100);
        assert_eq!(inked(&ba, 0, FOOTER_TOP, WIDTH, HEIGHT, WHITE), 0);

        a.footer = footer_lines(
            &NodeStatus {
                id: 1,
                name: "bob1".into(),
                mode: "FOLLOWER".into(),
                term: 3,
                leader_id: Some(0),
                commit_index: Some(7),
                last_applied: Some(7),
                log_length: 9,
                ..NodeStatus::default()
            },
            Some(59.6),
        );
        assert_eq!(a.footer[0], "bob1  FOLLOWER  term 3");
        assert_eq!(a.footer[1], "leader 0  commit 7  log 9  60 fps");
        let fa = drawn(&a);
        assert!(inked(&fa, 0, FOOTER_TOP, WIDTH, FOOTER_TOP + 55, WHITE) > 300);
        assert!(inked(&fa, 0, FOOTER_TOP + 55, WIDTH, HEIGHT, WHITE) > 300);
        // The header does not bleed into the board, nor the footer.
        assert_eq!(inked(&fa, 0, FOOTER_TOP - 40, 240, FOOTER_TOP - 1, GREY), 0);
    }

    #[test]
    fn footer_before_the_node_publishes() {
        let f = footer_lines(&NodeStatus::default(), None);
        assert_eq!(f[0], "node 0  starting  term 0");
        assert_eq!(f[1], "leader none  commit -  log 0  - fps");
    }

    #[test]
    fn short_buffer_is_clipped_not_a_panic() {
        let mut buf = vec![0u32; WIDTH * 150 + 7];
        render(&BoardState::default(), &mut buf);
        assert_eq!(buf[10], WHITE);
        assert_eq!(buf[WIDTH * 120 + 10], GREY);
        render(&BoardState::default(), &mut []);
    }

    #[test]
    fn hit_test_uses_square_bounds() {
        for p in 1..=4u8 {
            let (x, y) = PLAYER_POSITIONS[usize::from(p) - 1];
            let (x, y) = (x as f32, y as f32);
            assert_eq!(player_at(x, y), Some(p));
            assert_eq!(player_at(x + 79.5, y + 79.5), Some(p));
            assert_eq!(player_at(x + 80.0, y), None);
            assert_eq!(player_at(x - 0.5, y), None);
            assert_eq!(player_at(x, y + 80.0), None);
        }
        assert_eq!(player_at(0.0, 0.0), None);
        assert_eq!(player_at(-5.0, 500.0), None);
    }

    #[test]
    fn clicks_queue_commands_only_for_living_players() {
        let (tx, rx) = command_queue();
        let mut game = Game::new();
        assert_eq!(click_player(&tx, &game, 2), "Player 2 pressed");
        assert_eq!(rx.drain(), vec![2]);
        assert_eq!(game.hp(2), Some(MAX_HP), "a click deals no damage");
        for _ in 0..4 {
            game.apply_order(2);
        }
        assert_eq!(click_player(&tx, &game, 2), "Player 2 already dead");
        assert!(rx.drain().is_empty());
        drop(rx);
        // The node has gone: the click is reported, not a panic.
        assert_eq!(click_player(&tx, &Game::new(), 1), "Player 1 pressed");
    }

    #[test]
    fn click_detector_reports_down_edges_only() {
        let mut c = ClickDetector::default();
        let seen: Vec<bool> = [false, true, true, true, false, true, false, false]
            .into_iter()
            .map(|d| c.feed(d))
            .collect();
        assert_eq!(seen, [false, true, false, false, false, true, false, false]);
    }

    #[test]
    fn the_header_says_when_the_rate_limit_drops_clicks() {
        let mut n = DropNotice::default();
        let mut s = NodeStatus::default();
        assert_eq!(n.update(&s), None);
        s.rate_limit = Some(5);
        s.rate_limited = 3;
        assert_eq!(
            n.update(&s).as_deref(),
            Some("Too fast: 3 of your clicks dropped (limit 5/s)")
        );
        assert_eq!(n.update(&s), None, "said once per new drop");
    }

    #[test]
    fn header_reverts_after_the_hold() {
        let t0 = Instant::now();
        let mut h = Header {
            message: None,
            hold: MESSAGE_HOLD,
        };
        let idle = || DEFAULT_HEADER.to_owned();
        assert_eq!(h.text(t0, idle()), DEFAULT_HEADER);
        h.show("Player 1 pressed".into(), t0);
        assert_eq!(
            h.text(t0 + Duration::from_millis(499), idle()),
            "Player 1 pressed"
        );
        assert_eq!(
            h.text(t0 + Duration::from_millis(500), idle()),
            DEFAULT_HEADER
        );
        assert_eq!(h.text(t0, idle()), DEFAULT_HEADER, "stays reverted");
        assert_eq!(
            h.text(t0, "Draw".into()),
            "Draw",
            "the idle text is the caller's"
        );
    }

    #[test]
    fn the_board_is_between_header_and_footer() {
        assert!(!on_board(500.0, 50.0), "header");
        assert!(on_board(0.0, 100.0) && on_board(999.0, 1099.0));
        assert!(!on_board(500.0, 1100.0), "footer");
    }

    #[test]
    fn nul_in_title_is_an_error_not_a_panic() {
        let (commands, _rx) = command_queue();
        let (_tx, orders) = crate::queues::order_queue();
        let link = GameLink {
            commands,
            orders,
            game: crate::queues::SharedGame::new(),
            status: crate::queues::StatusBoard::default(),
        };
        let opts = WindowOptions {
            fps: 60,
            title: "a\0b".into(),
            scale: Some(1.0),
        };
        assert!(matches!(run(&link, opts), Err(WindowError::Other(_))));
    }
}
