//! What a data directory says about the node beside its Raft state: the
//! mode it was written in (a static-leader log is not an election-mode
//! log: seeded term-1 entries at the same indexes on different nodes would
//! break Log Matching), and the incarnation of the node's client session
//! (one more at every start, so a command of an earlier start is never
//! taken for a new one).
//!
//! `<dir>/node.meta`, two lines of text: `mode static|election` and
//! `incarnation N`, replaced atomically at every start.

use std::fs;
use std::path::{Path, PathBuf};

use super::StorageError;
use super::file::write_atomically;

pub const META_FILE: &str = "node.meta";
const TMP_FILE: &str = "node.meta.tmp";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Static,
    Election,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Static => "static",
            Mode::Election => "election",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeMeta {
    pub mode: Mode,
    pub incarnation: u64,
}

/// A file's text, or `None` if there is no such file.
fn read_if_there(path: &Path) -> Result<Option<String>, StorageError> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StorageError::Io {
            what: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

fn meta_path(dir: &Path) -> PathBuf {
    dir.join(META_FILE)
}

/// The directory's meta, if it has one. Reads only: a refusal to start
/// must leave the directory as it was.
pub fn read_meta(dir: &Path) -> Result<Option<NodeMeta>, StorageError> {
    let path = meta_path(dir);
    let Some(text) = read_if_there(&path)? else {
        return Ok(None);
    };
    parse(&text)
        .map(Some)
        .map_err(|detail| StorageError::Corrupt { path, detail })
}

fn parse(text: &str) -> Result<NodeMeta, String> {
    let mut mode = None;
    let mut incarnation = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match line.split_once(' ') {
            Some(("mode", "static")) => mode = Some(Mode::Static),
            Some(("mode", "election")) => mode = Some(Mode::Election),
            Some(("incarnation", n)) => {
                incarnation = Some(n.trim().parse().map_err(|_| format!("bad line '{line}'"))?)
            }
            _ => return Err(format!("bad line '{line}'")),
        }
    }
    Ok(NodeMeta {
        mode: mode.ok_or("no mode line")?,
        incarnation: incarnation.ok_or("no incarnation line")?,
    })
}

/// Record `meta` durably (write, fsync, rename, fsync the directory).
pub fn write_meta(dir: &Path, meta: NodeMeta) -> Result<(), StorageError> {
    let text = format!(
        "mode {}\nincarnation {}\n",
        meta.mode.as_str(),
        meta.incarnation
    );
    write_atomically(dir, &dir.join(TMP_FILE), &meta_path(dir), text.as_bytes())
}

/// `<dir>/member.json`: who a node that joined a running cluster is (it
/// is in no cluster file): its id, as the leader gave it, name and address.
pub const MEMBER_FILE: &str = "member.json";

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Joined {
    pub id: u64,
    pub name: String,
    pub addr: String,
}

/// The identity of a node that joined, if this data dir has one.
pub fn read_joined(dir: &Path) -> Result<Option<Joined>, StorageError> {
    let path = dir.join(MEMBER_FILE);
    let Some(text) = read_if_there(&path)? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StorageError::Corrupt {
            path,
            detail: e.to_string(),
        })
}

/// Record a joined node's identity durably.
pub fn write_joined(dir: &Path, joined: &Joined) -> Result<(), StorageError> {
    let text = serde_json::to_vec(joined).expect("plain fields serialize");
    let tmp = dir.join("member.json.tmp");
    write_atomically(dir, &tmp, &dir.join(MEMBER_FILE), &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_support::TempDir;

    #[test]
    fn meta_round_trips_and_a_fresh_dir_has_none() {
        let tmp = TempDir::new("meta");
        fs::create_dir_all(tmp.path()).unwrap();
        assert_eq!(read_meta(tmp.path()).unwrap(), None);
        let m = NodeMeta {
            mode: Mode::Election,
            incarnation: 7,
        };
        write_meta(tmp.path(), m).unwrap();
        assert_eq!(read_meta(tmp.path()).unwrap(), Some(m));
    }

    #[test]
    fn a_joined_identity_round_trips() {
        let tmp = TempDir::new("joined");
        fs::create_dir_all(tmp.path()).unwrap();
        assert_eq!(read_joined(tmp.path()).unwrap(), None);
        let j = Joined {
            id: 5,
            name: "carol".into(),
            addr: "127.0.0.1:8005".into(),
        };
        write_joined(tmp.path(), &j).unwrap();
        assert_eq!(read_joined(tmp.path()).unwrap(), Some(j));
        fs::write(tmp.path().join(MEMBER_FILE), "{").unwrap();
        assert!(read_joined(tmp.path()).is_err());
    }

    #[test]
    fn a_damaged_meta_is_an_error_not_a_guess() {
        for bad in [
            "",
            "mode static\n",
            "mode sideways\nincarnation 1\n",
            "mode election\nincarnation x\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
