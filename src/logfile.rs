//! Per-node log files like the original's:
//! `logs/<name>/<YYYY-MM-DD HH:MM:SS.ffffff>.<name>.log`, each line the whole
//! log in Python's repr: `log = [Raft.Entry(term=1, index=4, command=5), ...]`.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::raft::Entry;

/// `log = [...]` for these entries (no newline).
pub fn log_line(entries: &[Entry]) -> String {
    let mut s = String::with_capacity(16 + entries.len() * 44);
    s.push_str("log = [");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{e}");
    }
    s.push(']');
    s
}

/// The file name the original would use now (local time, like Python's
/// `datetime.now()`).
pub fn file_path(dir: &Path, name: &str) -> PathBuf {
    let stamp = chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.6f");
    dir.join(name).join(format!("{stamp}.{name}.log"))
}

/// An open log file.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    last: Option<String>,
}

impl LogFile {
    pub fn create(dir: &Path, name: &str) -> std::io::Result<Self> {
        let path = file_path(dir, name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(LogFile {
            path,
            file,
            last: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append the log's line unless it equals the last one written.
    /// `snapshot = {...}`: the node compacted its log (or installed its
    /// leader's snapshot); the `log = ` lines that follow hold what is left.
    pub fn write_snapshot(&mut self, document: &[u8]) -> std::io::Result<()> {
        self.file.write_all(b"snapshot = ")?;
        self.file.write_all(document)?;
        self.file.write_all(b"\n")?;
        self.file.flush()?;
        self.last = None;
        Ok(())
    }

    pub fn write_log(&mut self, entries: &[Entry]) -> std::io::Result<()> {
        let line = log_line(entries);
        if self.last.as_deref() == Some(line.as_str()) {
            return Ok(());
        }
        self.file.write_all(line.as_bytes())?;
        self.file.write_all(b"\n")?;
        self.file.flush()?;
        self.last = Some(line);
        Ok(())
    }
}

/// Parse a `log = [...]` line back into entries (int and quoted commands).
pub fn parse_log_line(line: &str) -> Result<Vec<Entry>, String> {
    let body = line
        .strip_prefix("log = [")
        .and_then(|r| r.strip_suffix(']'))
        .ok_or("not a `log = [...]` line")?;
    let mut out = Vec::new();
    for part in body.split("Raft.Entry(").skip(1) {
        let part = part.trim_end_matches([' ', ',']).trim_end_matches(')');
        let field = |name: &str| -> Result<&str, String> {
            let start = part
                .find(&format!("{name}="))
                .ok_or(format!("no {name} in {part}"))?
                + name.len()
                + 1;
            let rest = &part[start..];
            Ok(if name == "command" {
                rest
            } else {
                rest.split(',').next().unwrap_or(rest)
            })
        };
        let num = |name: &str| -> Result<u64, String> {
            field(name)?
                .trim()
                .parse()
                .map_err(|e| format!("bad {name}: {e}"))
        };
        let c = field("command")?.trim();
        let command = if let Ok(i) = c.parse::<i32>() {
            crate::raft::Command::Int(i)
        } else {
            crate::raft::Command::Text(c.trim_matches(['\'', '"']).to_owned())
        };
        out.push(Entry {
            term: num("term")?,
            index: num("index")?,
            command,
            client: None,
            sig: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::Command;

    #[test]
    fn matches_the_originals_repr() {
        let es = vec![
            Entry {
                term: 1,
                index: 4,
                command: Command::Int(5),
                client: None,
                sig: None,
            },
            Entry {
                term: 2,
                index: 5,
                command: Command::Text("cmd1".into()),
                client: None,
                sig: None,
            },
        ];
        assert_eq!(
            log_line(&es),
            "log = [Raft.Entry(term=1, index=4, command=5), Raft.Entry(term=2, index=5, command='cmd1')]"
        );
        assert_eq!(log_line(&[]), "log = []");
    }

    #[test]
    fn reproduces_the_authors_final_line() {
        // The last `log = ` line of the original leader's own log file.
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/logs/2025-06-19 15:38:13.605847.raftian.log"
        ))
        .expect("shared/reference beside the checkout");
        let last = text.lines().rfind(|l| l.starts_with("log = ")).unwrap();
        let entries = parse_log_line(last).unwrap();
        assert!(entries.len() > 4);
        assert_eq!(log_line(&entries), last);
    }
}
