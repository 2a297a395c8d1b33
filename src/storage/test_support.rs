//! Helpers shared by the storage unit tests of every submodule.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{FileStorage, Storage, StorageError};
use crate::raft::{Command, Entry, HardState, PersistBatch};

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "raftian-storage-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        TempDir(p)
    }
    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(super) fn int(term: u64, index: u64, c: i32) -> Entry {
    Entry {
        term,
        index,
        command: Command::Int(c),
        client: None,
        sig: None,
    }
}

pub(super) fn text(term: u64, index: u64, s: &str) -> Entry {
    Entry {
        term,
        index,
        command: Command::Text(s.to_string()),
        client: None,
        sig: None,
    }
}

pub(super) fn ints(term: u64, from: u64, n: u64) -> Vec<Entry> {
    (from..from + n).map(|i| int(term, i, i as i32)).collect()
}

pub(super) fn batch(
    hs: Option<(u64, Option<u64>)>,
    trunc: Option<u64>,
    append: Vec<Entry>,
) -> PersistBatch {
    PersistBatch {
        hard_state: hs.map(|(term, voted_for)| HardState { term, voted_for }),
        truncate_from: trunc,
        append,
        snapshot: None,
    }
}

pub(super) fn indices(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.index).collect()
}

pub(super) fn reopen(dir: &Path) -> (HardState, Vec<Entry>) {
    FileStorage::open(dir).unwrap().load().unwrap()
}

pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub(super) fn sample_batches() -> Vec<PersistBatch> {
    vec![
        batch(Some((1, None)), None, ints(1, 4, 3)),
        batch(
            Some((2, Some(3))),
            None,
            vec![
                text(2, 7, "héllo 'wörld' \"\n"),
                int(2, 8, i32::MIN),
                int(2, 9, i32::MAX),
                text(2, 10, ""),
            ],
        ),
        batch(None, Some(9), vec![int(3, 9, -1)]),
        batch(Some((u64::MAX, Some(u64::MAX))), None, vec![]),
        batch(None, None, vec![int(u64::MAX, 10, 0)]),
        batch(
            None,
            None,
            vec![with_client(int(3, 11, 2)), text(3, 12, "x")],
        ),
        batch(None, None, vec![with_client(text(3, 13, "y"))]),
        batch(
            None,
            None,
            vec![signed(with_client(int(3, 14, 4))), config(3, 15)],
        ),
        batch(None, None, vec![stamp(3, 16, u64::MAX, u32::MAX)]),
    ]
}

/// A rate-limit stamp.
fn stamp(term: u64, index: u64, ms: u64, limit: u32) -> Entry {
    Entry {
        term,
        index,
        command: crate::raft::Command::Stamp(crate::raft::Stamp { ms, limit }),
        client: None,
        sig: None,
    }
}

/// The entry with a (made-up) signature of its taker.
fn signed(mut e: Entry) -> Entry {
    let mut sig = [0u8; 64];
    sig.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = i as u8 ^ 0x5a);
    e.sig = Some(std::sync::Arc::new(sig));
    e
}

/// A configuration entry (membership change).
fn config(term: u64, index: u64) -> Entry {
    let mut m = crate::raft::Membership::voters([0, 1, 2]);
    m = m
        .apply(&crate::raft::ConfChange::Remove(1))
        .expect("a voter can go");
    Entry {
        term,
        index,
        command: crate::raft::Command::Config(std::sync::Arc::new(m)),
        client: None,
        sig: None,
    }
}

/// The entry, as taken by node 2 in its session 5 as command 7.
fn with_client(mut e: Entry) -> Entry {
    e.client = Some(crate::raft::ClientId {
        node: 2,
        incarnation: 5,
        seq: u64::MAX - 7,
    });
    e
}

/// The truncate/append contract, identical for both back ends.
pub(super) fn check_truncate_semantics(s: &mut dyn Storage) {
    s.persist(&batch(Some((1, Some(1))), None, ints(1, 4, 6)))
        .unwrap();
    assert_eq!(indices(&s.load().unwrap().1), vec![4, 5, 6, 7, 8, 9]);

    // Replace a suffix.
    s.persist(&batch(None, Some(7), ints(2, 7, 2))).unwrap();
    let log = s.load().unwrap().1;
    assert_eq!(indices(&log), vec![4, 5, 6, 7, 8]);
    assert_eq!(log[2].term, 1);
    assert_eq!(log[3].term, 2);

    // A truncate past the end drops nothing.
    s.persist(&batch(None, Some(50), ints(2, 9, 1))).unwrap();
    assert_eq!(indices(&s.load().unwrap().1), vec![4, 5, 6, 7, 8, 9]);

    // truncate_from(0) then a log that starts at 4 again.
    s.persist(&batch(None, Some(0), ints(3, 4, 2))).unwrap();
    let log = s.load().unwrap().1;
    assert_eq!(indices(&log), vec![4, 5]);
    assert!(log.iter().all(|e| e.term == 3));

    // Truncating below the first index empties the log; it may then
    // start anywhere.
    s.persist(&batch(None, Some(2), vec![])).unwrap();
    assert!(s.load().unwrap().1.is_empty());
    s.persist(&batch(None, None, ints(4, 100, 3))).unwrap();
    assert_eq!(indices(&s.load().unwrap().1), vec![100, 101, 102]);

    // Truncate and append at the very first index.
    s.persist(&batch(Some((5, None)), Some(100), ints(5, 100, 1)))
        .unwrap();
    let (hs, log) = s.load().unwrap();
    assert_eq!(
        hs,
        HardState {
            term: 5,
            voted_for: None
        }
    );
    assert_eq!(log, vec![int(5, 100, 100)]);

    // Bad batches are refused whole: the hard state is not applied either.
    let before = s.load().unwrap();
    for bad in [
        batch(Some((9, None)), None, ints(5, 102, 1)), // gap
        batch(Some((9, None)), None, ints(5, 100, 1)), // overlap without truncate
        batch(Some((9, None)), None, vec![int(5, 101, 0), int(5, 103, 0)]), // not consecutive
        batch(Some((9, None)), Some(101), ints(5, 100, 1)), // before the kept end
    ] {
        let err = s.persist(&bad).unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidBatch(_)),
            "unexpected error {err}"
        );
        assert!(err.to_string().contains("index"), "{err}");
        assert_eq!(s.load().unwrap(), before);
    }
    // ... and the storage still works.
    s.persist(&batch(None, None, ints(5, 101, 1))).unwrap();
    assert_eq!(indices(&s.load().unwrap().1), vec![100, 101]);
}
