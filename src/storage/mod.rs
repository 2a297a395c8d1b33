//! Durable Raft state: term, vote and log (what `Raft::take_persist` hands out).
//!
//! After every core call the runtime passes the optional [`PersistBatch`] to
//! [`Storage::persist`] and only then sends messages or answers the RPC. A
//! batch is applied in order: hard state, then drop every entry with index
//! `>= truncate_from`, then append. [`Storage::load`] gives back what a
//! restarting node hands to `Raft::new`.
//!
//! Two back ends:
//! - [`MemStorage`]: `--ephemeral`, the original's behaviour (nothing survives
//!   a restart).
//! - [`FileStorage`]: one append-only write-ahead log per node,
//!   `<dir>/raft.wal`.
//!
//! # The WAL file
//!
//! An 8-byte magic `RAFTWAL1`, then records `[len u32][crc32 u32][payload]`
//! (little endian; the CRC covers the length bytes and the payload). One
//! record is one whole batch, so a batch is atomic: after a crash it is
//! either all there or not at all. Payload:
//!
//! ```text
//! flags u8                      bit 0: hard state, bit 1: truncate
//! [term u64, voted u8 (0|1), [voted_for u64]]   if bit 0
//! [truncate_from u64]                          if bit 1
//! count u32, then count entries:
//!   term u64, index u64, tag u8, (tag 0: i32 | tag 1: len u32 + UTF-8)
//! ```
//!
//! `persist` builds one buffer, does one `write` and one `fdatasync` (group
//! commit). `open` replays the records and stops at the first torn or
//! corrupt one (short, bad length, bad CRC, undecodable, or not fitting the
//! log); it cuts the file there, logging how many bytes it dropped.
//!
//! When the file grows well past the live state (more than `compact_ratio`
//! times and more than `compact_min_bytes`), a snapshot of the live state is
//! written to `raft.wal.tmp`, fsynced and renamed over `raft.wal`, then the
//! directory is fsynced: a crash at any moment leaves the old or the new
//! file, both complete. A `LOCK` file (an advisory lock held while open)
//! keeps two processes off the same directory.
//!
//! A batch may carry a snapshot: it is written first, as its own file
//! (`snapfile`), then the entries it covers leave the live state (and, at
//! the next rewrite, the WAL). A node restarts from the snapshot and the
//! entries after it.

mod file;
mod mem;
pub mod meta;
mod snapfile;
mod wal;

#[cfg(test)]
mod test_support;

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::raft::{Entry, HardState, PersistBatch, Snapshot};

pub use file::{FileOptions, FileStorage, WAL_FILE};
pub use mem::MemStorage;
pub use snapfile::SNAPSHOT_FILE;
pub use wal::MAX_RECORD;

/// Where a node keeps its term, vote and log.
pub trait Storage: Send {
    /// The state to restart from (empty on first start): the entries after
    /// the snapshot, if there is one.
    fn load(&mut self) -> Result<(HardState, Vec<Entry>), StorageError>;
    /// The latest snapshot kept (see [`PersistBatch::snapshot`]).
    fn load_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError>;
    /// Make `batch` durable: one fsync for the whole batch. On error nothing
    /// may be assumed durable and the node should stop.
    fn persist(&mut self, batch: &PersistBatch) -> Result<(), StorageError>;
}

/// Why storage failed. Bad files and bad batches give one of these, never a
/// panic.
#[derive(Debug)]
pub enum StorageError {
    /// A system call failed.
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The file is not a usable WAL (its header is wrong).
    Corrupt { path: PathBuf, detail: String },
    /// The batch breaks the contract (entries not consecutive, say); nothing
    /// was written.
    InvalidBatch(String),
    /// Another process holds the data directory.
    Locked(PathBuf),
    /// An earlier write or fsync failed; the on-disk state is unknown until
    /// the node restarts and recovers.
    Failed(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { what, path, source } => {
                write!(f, "cannot {what} {}: {source}", path.display())
            }
            StorageError::Corrupt { path, detail } => {
                write!(f, "{} is not a usable Raft log: {detail}", path.display())
            }
            StorageError::InvalidBatch(detail) => {
                write!(f, "refusing to persist an inconsistent batch: {detail}")
            }
            StorageError::Locked(path) => write!(
                f,
                "data directory {} is in use by another process (is another node running with it?)",
                path.display()
            ),
            StorageError::Failed(detail) => write!(
                f,
                "storage stopped after an earlier failure ({detail}); restart the node to recover from disk"
            ),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
