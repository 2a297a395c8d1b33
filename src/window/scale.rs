//! The window's size: the original's 1000x1200 layout, drawn at a scale.
//!
//! The renderer always draws the full layout; a [`View`] resamples that
//! frame to the window's size (nearest neighbour) and maps window pixels
//! back to layout pixels with the same function, so a click lands on the
//! layout pixel the player saw under the pointer, at every scale.

use super::{HEIGHT, WIDTH};

/// Smallest and largest `--scale`.
pub const MIN_SCALE: f64 = 0.25;
pub const MAX_SCALE: f64 = 4.0;

/// Scales tried, largest first, when none is given and the screen's size is
/// known (1, 0.5 and 2 are pixel-exact; 0.75 fits a 1080-px screen).
pub const FIT_LADDER: [f64; 5] = [2.0, 1.0, 0.75, 0.5, 0.25];

/// Room kept free on the screen's height for a title bar and a panel.
pub const SCREEN_MARGIN: usize = 80;

/// Parse a `--scale` value: a number from 0.25 to 4.
pub fn parse_scale(text: &str) -> Result<f64, String> {
    let s: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number (try 0.5, 1 or 2)"))?;
    if !(MIN_SCALE..=MAX_SCALE).contains(&s) {
        return Err(format!(
            "{s} is out of range: a scale is from {MIN_SCALE} to {MAX_SCALE} (e.g. 0.5, 1, 2)"
        ));
    }
    Ok(s)
}

/// The largest scale of [`FIT_LADDER`] whose window fits a `width` x
/// `height` screen (keeping [`SCREEN_MARGIN`] free); the smallest if none
/// does. Unknown screen: 1, the original's size.
pub fn fit_scale(screen: Option<(usize, usize)>) -> f64 {
    let Some((sw, sh)) = screen else {
        return 1.0;
    };
    let fits = |s: f64| {
        let (w, h) = window_size(s);
        w <= sw && h + SCREEN_MARGIN <= sh
    };
    FIT_LADDER
        .into_iter()
        .find(|&s| fits(s))
        .unwrap_or(MIN_SCALE)
}

/// The default scale: the one that fits the X screen, when there is an X
/// display to ask ([`fit_scale`]).
pub fn fit_screen() -> f64 {
    fit_scale(screen_size())
}

/// The window's size in pixels at scale `s`.
pub fn window_size(s: f64) -> (usize, usize) {
    let side = |n: usize| ((n as f64 * s).round() as usize).max(1);
    (side(WIDTH), side(HEIGHT))
}

/// Size of the default screen of the X display `$DISPLAY` names (XWayland
/// too), or `None` when there is none to ask.
pub fn screen_size() -> Option<(usize, usize)> {
    Screen::open()?.size()
}

/// A connection to the X display `$DISPLAY` names, to read the screen's
/// size. Keep it open until the window is open: one connection closed and
/// another opened at once by the same process (minifb's) fails now and then
/// (6 times in 100 under Xvfb here), one opened while the other is still
/// open did not fail once in 100.
#[cfg(target_os = "linux")]
pub struct Screen {
    xl: x11_dl::xlib::Xlib,
    dpy: *mut x11_dl::xlib::Display,
}

#[cfg(target_os = "linux")]
impl Screen {
    pub fn open() -> Option<Screen> {
        let xl = x11_dl::xlib::Xlib::open().ok()?;
        // SAFETY: opens a connection that Drop closes; null names $DISPLAY.
        let dpy = unsafe { (xl.XOpenDisplay)(std::ptr::null()) };
        if dpy.is_null() {
            return None;
        }
        Some(Screen { xl, dpy })
    }

    /// Width and height of the default screen, in pixels.
    pub fn size(&self) -> Option<(usize, usize)> {
        // SAFETY: `dpy` is an open connection; these calls only read it.
        let (w, h) = unsafe {
            let screen = (self.xl.XDefaultScreen)(self.dpy);
            (
                (self.xl.XDisplayWidth)(self.dpy, screen),
                (self.xl.XDisplayHeight)(self.dpy, screen),
            )
        };
        Some((usize::try_from(w).ok()?, usize::try_from(h).ok()?))
    }
}

#[cfg(target_os = "linux")]
impl Drop for Screen {
    fn drop(&mut self) {
        // SAFETY: `dpy` was opened by `open` and is closed once, here.
        unsafe { (self.xl.XCloseDisplay)(self.dpy) };
    }
}

/// Elsewhere the screen's size is not asked (scale 1 unless given).
#[cfg(not(target_os = "linux"))]
pub struct Screen;

#[cfg(not(target_os = "linux"))]
impl Screen {
    pub fn open() -> Option<Screen> {
        None
    }

    pub fn size(&self) -> Option<(usize, usize)> {
        None
    }
}

/// The layout as the window shows it: which layout pixel each window pixel
/// shows.
#[derive(Clone, Debug)]
pub struct View {
    scale: f64,
    /// Layout column of each window column, and row of each window row.
    cols: Vec<usize>,
    rows: Vec<usize>,
}

impl View {
    pub fn new(scale: f64) -> Self {
        let (w, h) = window_size(scale);
        View {
            scale,
            cols: (0..w).map(|x| x * WIDTH / w).collect(),
            rows: (0..h).map(|y| y * HEIGHT / h).collect(),
        }
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The window's width and height.
    pub fn size(&self) -> (usize, usize) {
        (self.cols.len(), self.rows.len())
    }

    /// Window pixels are layout pixels (scale 1): no resampling.
    pub fn is_identity(&self) -> bool {
        self.size() == (WIDTH, HEIGHT)
    }

    /// Resample a full layout frame (`WIDTH` x `HEIGHT`) into `out`, a
    /// window-sized frame.
    pub fn resample(&self, layout: &[u32], out: &mut Vec<u32>) {
        let (w, h) = self.size();
        out.resize(w * h, 0);
        for (dst_row, &sy) in out.chunks_exact_mut(w).zip(&self.rows) {
            let src_row = &layout[sy * WIDTH..(sy + 1) * WIDTH];
            for (d, &sx) in dst_row.iter_mut().zip(&self.cols) {
                *d = src_row[sx];
            }
        }
    }

    /// A window-sized frame of `layout` (a new buffer).
    pub fn frame(&self, layout: &[u32]) -> Vec<u32> {
        let mut out = Vec::new();
        self.resample(layout, &mut out);
        out
    }

    /// The layout point shown at window point (`x`, `y`): the pixel the
    /// player sees under the pointer. Points outside the window map
    /// outside the layout.
    pub fn to_layout(&self, x: f32, y: f32) -> (f32, f32) {
        let map = |v: f32, table: &[usize], full: usize| -> f32 {
            if v < 0.0 {
                return -1.0;
            }
            match table.get(v as usize) {
                Some(&l) => l as f32,
                None => (full + 1) as f32,
            }
        };
        (map(x, &self.cols, WIDTH), map(y, &self.rows, HEIGHT))
    }

    /// The window point at the middle of what shows layout point (`x`, `y`)
    /// (tests click there).
    pub fn to_window(&self, x: usize, y: usize) -> (usize, usize) {
        let mid = |table: &[usize], v: usize| {
            let first = table.iter().position(|&l| l >= v).unwrap_or(table.len());
            let last = table.iter().rposition(|&l| l <= v).unwrap_or(first);
            (first + last.max(first)) / 2
        };
        (mid(&self.cols, x), mid(&self.rows, y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::{PLAYERS, PlayerId};
    use crate::window::{BoardState, PLAYER_POSITIONS, SQUARE, player_at, render, square_colour};

    fn layout() -> Vec<u32> {
        let mut buf = vec![0; WIDTH * HEIGHT];
        render(&BoardState::default(), &mut buf);
        buf
    }

    #[test]
    fn scales_are_parsed_and_bounded() {
        assert_eq!(parse_scale("0.5"), Ok(0.5));
        assert_eq!(parse_scale(" 2 "), Ok(2.0));
        for bad in ["0", "-1", "5", "nan", "inf", "half", ""] {
            let e = parse_scale(bad).unwrap_err();
            assert!(
                e.contains("scale") || e.contains("not a number"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_default_fits_the_screen() {
        assert_eq!(fit_scale(None), 1.0, "unknown screen: the original's size");
        assert_eq!(fit_scale(Some((1920, 1080))), 0.75, "1080p laptop");
        assert_eq!(fit_scale(Some((1366, 768))), 0.5);
        assert_eq!(fit_scale(Some((2560, 1440))), 1.0);
        assert_eq!(fit_scale(Some((1024, 1280))), 1.0, "the Xvfb test screen");
        assert_eq!(fit_scale(Some((3840, 2880))), 2.0);
        assert_eq!(fit_scale(Some((200, 200))), MIN_SCALE, "nothing fits");
        for s in FIT_LADDER {
            let (w, h) = window_size(s);
            assert!(
                fit_scale(Some((w, h + SCREEN_MARGIN))) >= s,
                "{s} fits its own size"
            );
        }
    }

    #[test]
    fn sizes_follow_the_scale() {
        assert_eq!(View::new(1.0).size(), (1000, 1200));
        assert_eq!(View::new(0.5).size(), (500, 600));
        assert_eq!(View::new(2.0).size(), (2000, 2400));
        assert_eq!(View::new(0.75).size(), (750, 900));
        assert!(View::new(1.0).is_identity() && !View::new(0.5).is_identity());
    }

    #[test]
    fn a_click_lands_on_the_player_drawn_under_it() {
        let buf = layout();
        for s in [0.25, 0.5, 0.75, 1.0, 1.5, 2.0] {
            let view = View::new(s);
            let frame = view.frame(&buf);
            let (w, h) = view.size();
            assert_eq!(frame.len(), w * h);
            // Every window pixel: the player hit there is the one whose
            // colour is drawn there, and the other way round (a square of
            // a player who is not on this board may be hit: nobody is drawn
            // there, and the game refuses the click).
            let on_board = |p: PlayerId| usize::from(p) <= PLAYERS;
            for y in 0..h {
                for x in 0..w {
                    let (lx, ly) = view.to_layout(x as f32 + 0.5, y as f32 + 0.5);
                    let hit = player_at(lx, ly).filter(|&p| on_board(p));
                    let drawn = (1..=PLAYERS as PlayerId)
                        .find(|&p| frame[y * w + x] == square_colour(p, 100));
                    assert_eq!(hit, drawn, "scale {s}, window ({x}, {y})");
                }
            }
            // The middle of each square, as a test clicks it.
            for p in 1..=4u8 {
                let (px, py) = PLAYER_POSITIONS[usize::from(p) - 1];
                let (wx, wy) = view.to_window(px + SQUARE / 2, py + SQUARE / 2);
                let (lx, ly) = view.to_layout(wx as f32, wy as f32);
                assert_eq!(player_at(lx, ly), Some(p), "scale {s}");
            }
            assert_eq!(view.to_layout(-3.0, 10.0).0, -1.0);
            assert!(view.to_layout(w as f32, 0.0).0 > WIDTH as f32);
        }
    }

    #[test]
    fn half_scale_keeps_the_grid_lines() {
        let buf = layout();
        let view = View::new(0.5);
        let frame = view.frame(&buf);
        let (w, _) = view.size();
        for k in [250, 500, 750] {
            // Column 250 of the layout is column 125 of the window.
            assert_eq!(frame[60 * w + k / 2], crate::window::BLACK, "column {k}");
            assert_eq!(
                frame[(100 + k) / 2 * w + 20],
                crate::window::BLACK,
                "row {k}"
            );
        }
    }
}
