//! Benchmark trace: when each tagged click was queued and applied, so the
//! benchmark can measure end to end from queue to apply on every node.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct Trace(Mutex<BufWriter<File>>);

fn micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

impl Trace {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Trace(Mutex::new(BufWriter::new(File::create(path)?))))
    }

    fn line(&self, kind: char, command: i64) {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(w, "{kind} {command} {}", micros());
    }

    /// A click was put on `pygame_commands`.
    pub fn queued(&self, command: i32) {
        self.line('q', i64::from(command));
    }

    /// A committed command was put on `raft_orders`.
    pub fn applied(&self, command: i64) {
        self.line('a', command);
    }

    pub fn flush(&self) {
        let _ = self.0.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }
}
