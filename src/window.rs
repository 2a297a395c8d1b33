//! The game window (minifb). Placeholder until the window lands.

use crate::queues::GameLink;

/// Window settings.
#[derive(Clone, Debug)]
pub struct WindowOptions {
    /// Frame cap; 0 = uncapped.
    pub fps: u32,
    pub title: String,
}

/// Why the window could not run.
#[derive(Debug)]
pub enum WindowError {
    /// No display (minifb's `Window::new` failed): run headless instead.
    NoDisplay(String),
    Other(String),
}

/// Run the window on the calling (main) thread until it is closed.
/// Takes `&GameLink` (NOT by value): on `NoDisplay`, main.rs falls back to
/// headless mode with the same queues.
pub fn run(_link: &GameLink, _opts: WindowOptions) -> Result<(), WindowError> {
    Err(WindowError::NoDisplay("window not built yet".into()))
}
