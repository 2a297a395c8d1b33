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

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use log::{info, warn};

use crate::raft::{Command, Entry, HardState, PersistBatch};

/// Where a node keeps its term, vote and log.
pub trait Storage: Send {
    /// The state to restart from (empty on first start).
    fn load(&mut self) -> Result<(HardState, Vec<Entry>), StorageError>;
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

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

// ---------------------------------------------------------------------------
// Live state, shared by both back ends.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct LiveState {
    hard_state: HardState,
    entries: Vec<Entry>,
}

impl LiveState {
    /// How many entries survive `truncate_from`.
    fn kept_len(&self, truncate_from: Option<u64>) -> usize {
        match (truncate_from, self.entries.first()) {
            (Some(t), Some(first)) => {
                let keep = t.saturating_sub(first.index);
                usize::try_from(keep).map_or(self.entries.len(), |k| k.min(self.entries.len()))
            }
            _ => self.entries.len(),
        }
    }

    /// Does the batch fit? Appended entries must be consecutive and follow
    /// what the truncation keeps; after everything is dropped, a log may
    /// start at any index.
    fn check(&self, truncate_from: Option<u64>, append: &[Entry]) -> Result<(), String> {
        let kept = self.kept_len(truncate_from);
        let mut prev = kept.checked_sub(1).map(|i| self.entries[i].index);
        for (i, e) in append.iter().enumerate() {
            if let Some(p) = prev
                && p.checked_add(1) != Some(e.index)
            {
                return Err(if i == 0 {
                    format!(
                        "first appended entry has index {} but the kept log ends at {p}{}",
                        e.index,
                        match truncate_from {
                            Some(t) => format!(" (after truncate_from {t})"),
                            None => " (no truncate_from)".to_string(),
                        }
                    )
                } else {
                    format!(
                        "appended entries are not consecutive: index {} follows {p}",
                        e.index
                    )
                });
            }
            prev = Some(e.index);
        }
        Ok(())
    }

    /// Apply a batch that passed [`LiveState::check`].
    fn apply<I>(&mut self, hard_state: Option<HardState>, truncate_from: Option<u64>, append: I)
    where
        I: IntoIterator<Item = Entry>,
    {
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
        let kept = self.kept_len(truncate_from);
        self.entries.truncate(kept);
        self.entries.extend(append);
    }
}

// ---------------------------------------------------------------------------
// MemStorage

/// Keeps everything in memory: the original's behaviour (`--ephemeral`).
/// It checks batches exactly like [`FileStorage`].
#[derive(Debug, Default)]
pub struct MemStorage {
    state: LiveState,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start from a given state (the original seeds some logs at index 4).
    pub fn with_state(hard_state: HardState, entries: Vec<Entry>) -> Result<Self, StorageError> {
        let mut s = MemStorage::new();
        s.persist(&PersistBatch {
            hard_state: Some(hard_state),
            truncate_from: None,
            append: entries,
        })?;
        Ok(s)
    }

    pub fn hard_state(&self) -> HardState {
        self.state.hard_state
    }

    pub fn entries(&self) -> &[Entry] {
        &self.state.entries
    }
}

impl Storage for MemStorage {
    fn load(&mut self) -> Result<(HardState, Vec<Entry>), StorageError> {
        Ok((self.state.hard_state, self.state.entries.clone()))
    }

    fn persist(&mut self, batch: &PersistBatch) -> Result<(), StorageError> {
        self.state
            .check(batch.truncate_from, &batch.append)
            .map_err(StorageError::InvalidBatch)?;
        self.state.apply(
            batch.hard_state,
            batch.truncate_from,
            batch.append.iter().cloned(),
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Encoding

const MAGIC: &[u8; 8] = b"RAFTWAL1";
const RECORD_HEADER: usize = 8;
/// Largest record payload accepted (a batch bigger than this is refused).
pub const MAX_RECORD: usize = 256 << 20;
const FLAG_HARD_STATE: u8 = 1;
const FLAG_TRUNCATE: u8 = 2;
const CMD_INT: u8 = 0;
const CMD_TEXT: u8 = 1;
/// Bytes of an encoded entry without its command payload.
const ENTRY_FIXED: usize = 8 + 8 + 1;
/// A snapshot writes at most this many entries per record.
const SNAPSHOT_CHUNK: usize = 4096;

/// Encoded size of one entry.
fn entry_len(e: &Entry) -> usize {
    ENTRY_FIXED
        + match &e.command {
            Command::Int(_) => 4,
            Command::Text(s) => 4 + s.len(),
        }
}

/// Append one record holding a batch to `buf`.
fn encode_record(
    buf: &mut Vec<u8>,
    hard_state: Option<HardState>,
    truncate_from: Option<u64>,
    entries: &[Entry],
) -> Result<(), String> {
    let start = buf.len();
    let body: usize = entries.iter().map(entry_len).sum();
    buf.reserve(RECORD_HEADER + 1 + 17 + 8 + 4 + body);
    buf.extend_from_slice(&[0; RECORD_HEADER]);
    let flags = u8::from(hard_state.is_some()) * FLAG_HARD_STATE
        + u8::from(truncate_from.is_some()) * FLAG_TRUNCATE;
    buf.push(flags);
    if let Some(hs) = hard_state {
        buf.extend_from_slice(&hs.term.to_le_bytes());
        match hs.voted_for {
            None => buf.push(0),
            Some(v) => {
                buf.push(1);
                buf.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    if let Some(t) = truncate_from {
        buf.extend_from_slice(&t.to_le_bytes());
    }
    let too_big = || {
        format!(
            "batch of {} entries encodes to more than {MAX_RECORD} bytes",
            entries.len()
        )
    };
    let count = u32::try_from(entries.len()).map_err(|_| too_big())?;
    buf.extend_from_slice(&count.to_le_bytes());
    for e in entries {
        buf.extend_from_slice(&e.term.to_le_bytes());
        buf.extend_from_slice(&e.index.to_le_bytes());
        match &e.command {
            Command::Int(i) => {
                buf.push(CMD_INT);
                buf.extend_from_slice(&i.to_le_bytes());
            }
            Command::Text(s) => {
                let len = u32::try_from(s.len()).map_err(|_| too_big())?;
                buf.push(CMD_TEXT);
                buf.extend_from_slice(&len.to_le_bytes());
                buf.extend_from_slice(s.as_bytes());
            }
        }
    }
    let len = buf.len() - start - RECORD_HEADER;
    if len > MAX_RECORD {
        buf.truncate(start);
        return Err(too_big());
    }
    let len_bytes = (len as u32).to_le_bytes();
    buf[start..start + 4].copy_from_slice(&len_bytes);
    let crc = record_crc(&len_bytes, &buf[start + RECORD_HEADER..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn record_crc(len_bytes: &[u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_bytes);
    h.update(payload);
    h.finalize()
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.buf.len() - self.pos < n {
            return Err(format!(
                "payload ends inside {what} (needs {n} bytes at offset {}, has {})",
                self.pos,
                self.buf.len() - self.pos
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().unwrap_or_default(),
        ))
    }
}

/// Decode one record payload into a batch.
fn decode_record(payload: &[u8]) -> Result<PersistBatch, String> {
    let mut c = Cursor {
        buf: payload,
        pos: 0,
    };
    let flags = c.u8("flags")?;
    if flags & !(FLAG_HARD_STATE | FLAG_TRUNCATE) != 0 {
        return Err(format!("unknown flags {flags:#04x}"));
    }
    let hard_state = if flags & FLAG_HARD_STATE != 0 {
        let term = c.u64("term")?;
        let voted_for = match c.u8("vote flag")? {
            0 => None,
            1 => Some(c.u64("voted_for")?),
            other => return Err(format!("bad vote flag {other}")),
        };
        Some(HardState { term, voted_for })
    } else {
        None
    };
    let truncate_from = if flags & FLAG_TRUNCATE != 0 {
        Some(c.u64("truncate_from")?)
    } else {
        None
    };
    let count = c.u32("entry count")? as usize;
    let room = (payload.len() - c.pos) / (ENTRY_FIXED + 4);
    if count > room {
        return Err(format!(
            "entry count {count} does not fit in the remaining {} bytes",
            payload.len() - c.pos
        ));
    }
    let mut append = Vec::with_capacity(count);
    for _ in 0..count {
        let term = c.u64("entry term")?;
        let index = c.u64("entry index")?;
        let command = match c.u8("command tag")? {
            CMD_INT => Command::Int(i32::from_le_bytes(
                c.take(4, "int command")?.try_into().unwrap_or_default(),
            )),
            CMD_TEXT => {
                let len = c.u32("text length")? as usize;
                let bytes = c.take(len, "text command")?;
                let s = std::str::from_utf8(bytes)
                    .map_err(|e| format!("text command at index {index} is not UTF-8: {e}"))?;
                Command::Text(s.to_owned())
            }
            other => return Err(format!("unknown command tag {other} at index {index}")),
        };
        append.push(Entry {
            term,
            index,
            command,
        });
    }
    if c.pos != payload.len() {
        return Err(format!(
            "{} trailing bytes after the entries",
            payload.len() - c.pos
        ));
    }
    Ok(PersistBatch {
        hard_state,
        truncate_from,
        append,
    })
}

/// Replay the records after the magic. Returns the state, the length of the
/// good prefix of `data`, and why replay stopped early (if it did).
fn replay(data: &[u8]) -> (LiveState, usize, Option<String>) {
    let mut state = LiveState::default();
    let mut pos = MAGIC.len();
    let stop = loop {
        let rest = &data[pos..];
        if rest.is_empty() {
            break None;
        }
        if rest.len() < RECORD_HEADER {
            break Some(format!("torn record header at byte {pos}"));
        }
        let len_bytes: [u8; 4] = [rest[0], rest[1], rest[2], rest[3]];
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len == 0 || len > MAX_RECORD {
            break Some(format!("bad record length {len} at byte {pos}"));
        }
        if rest.len() - RECORD_HEADER < len {
            break Some(format!(
                "torn record at byte {pos}: {len} payload bytes announced, {} present",
                rest.len() - RECORD_HEADER
            ));
        }
        let payload = &rest[RECORD_HEADER..RECORD_HEADER + len];
        if record_crc(&len_bytes, payload) != crc {
            break Some(format!("checksum mismatch in the record at byte {pos}"));
        }
        let batch = match decode_record(payload) {
            Ok(b) => b,
            Err(e) => break Some(format!("undecodable record at byte {pos}: {e}")),
        };
        if let Err(e) = state.check(batch.truncate_from, &batch.append) {
            break Some(format!(
                "the record at byte {pos} does not fit the log: {e}"
            ));
        }
        state.apply(batch.hard_state, batch.truncate_from, batch.append);
        pos += RECORD_HEADER + len;
    };
    (state, pos, stop)
}

// ---------------------------------------------------------------------------
// FileStorage

/// Name of the WAL inside the data directory.
pub const WAL_FILE: &str = "raft.wal";
const TMP_FILE: &str = "raft.wal.tmp";
const LOCK_FILE: &str = "LOCK";

/// When [`FileStorage`] rewrites its WAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileOptions {
    /// Never compact a file smaller than this.
    pub compact_min_bytes: u64,
    /// Compact when the file is more than this many times the live state.
    pub compact_ratio: u64,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            compact_min_bytes: 1 << 20,
            compact_ratio: 4,
        }
    }
}

/// A node's durable state in `<dir>/raft.wal` (see the module docs).
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
    wal_path: PathBuf,
    file: File,
    /// Held (advisory lock) while this storage is open.
    _lock: File,
    /// Bytes in the WAL, all of them good records.
    len: u64,
    state: LiveState,
    /// Estimated size of a snapshot of `state`.
    live_bytes: u64,
    buf: Vec<u8>,
    opts: FileOptions,
    /// No compaction attempt below this length (backoff after a failure).
    compact_retry_at: u64,
    compactions: u64,
    failed: Option<String>,
}

/// Snapshot size apart from the entries: magic, record header, flags, hard
/// state, entry count.
const SNAPSHOT_BASE: u64 = (MAGIC.len() + RECORD_HEADER + 1 + 17 + 4) as u64;

impl FileStorage {
    /// Open (or create) the data directory `dir` with default options.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_with(dir, FileOptions::default())
    }

    /// Open (or create) `dir`, recovering from a torn or corrupt tail.
    pub fn open_with(dir: &Path, opts: FileOptions) -> Result<Self, StorageError> {
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
            if let Some(parent) = dir.parent() {
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                sync_dir(parent)?;
            }
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StorageError::Locked(dir.to_path_buf())),
            Err(TryLockError::Error(e)) => return Err(io_err("lock", &lock_path)(e)),
        }

        let tmp_path = dir.join(TMP_FILE);
        if tmp_path.exists() {
            warn!(
                "removing {} left by an interrupted compaction",
                tmp_path.display()
            );
            fs::remove_file(&tmp_path).map_err(io_err("remove", &tmp_path))?;
        }

        let wal_path = dir.join(WAL_FILE);
        if !wal_path.exists() {
            write_atomically(dir, &tmp_path, &wal_path, MAGIC)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&wal_path)
            .map_err(io_err("open", &wal_path))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(io_err("read", &wal_path))?;

        if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
            if data.len() < MAGIC.len() && MAGIC.starts_with(&data) {
                // An empty (or cut) header holds nothing: start afresh.
                warn!(
                    "{} has an incomplete header ({} bytes); starting with an empty log",
                    wal_path.display(),
                    data.len()
                );
                file.set_len(0).map_err(io_err("truncate", &wal_path))?;
                file.seek(SeekFrom::Start(0))
                    .map_err(io_err("seek", &wal_path))?;
                file.write_all(MAGIC).map_err(io_err("write", &wal_path))?;
                file.sync_data().map_err(io_err("fsync", &wal_path))?;
                data = MAGIC.to_vec();
            } else {
                return Err(StorageError::Corrupt {
                    path: wal_path,
                    detail: "bad magic (expected a file starting with RAFTWAL1)".into(),
                });
            }
        }

        let (state, good, stop) = replay(&data);
        if let Some(reason) = stop {
            warn!(
                "{}: {reason}; dropping the last {} bytes (of {}) and keeping the state before them",
                wal_path.display(),
                data.len() - good,
                data.len()
            );
            file.set_len(good as u64)
                .map_err(io_err("truncate", &wal_path))?;
            file.sync_data().map_err(io_err("fsync", &wal_path))?;
        }
        file.seek(SeekFrom::Start(good as u64))
            .map_err(io_err("seek", &wal_path))?;
        drop(data);

        let live_bytes = SNAPSHOT_BASE
            + state
                .entries
                .iter()
                .map(|e| entry_len(e) as u64)
                .sum::<u64>();
        let mut s = FileStorage {
            dir: dir.to_path_buf(),
            wal_path,
            file,
            _lock: lock,
            len: good as u64,
            state,
            live_bytes,
            buf: Vec::new(),
            opts,
            compact_retry_at: 0,
            compactions: 0,
            failed: None,
        };
        s.maybe_compact();
        Ok(s)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn wal_path(&self) -> &Path {
        &self.wal_path
    }

    /// Current size of the WAL in bytes.
    pub fn wal_len(&self) -> u64 {
        self.len
    }

    /// How many times the WAL was rewritten since `open`.
    pub fn compactions(&self) -> u64 {
        self.compactions
    }

    pub fn hard_state(&self) -> HardState {
        self.state.hard_state
    }

    pub fn entries(&self) -> &[Entry] {
        &self.state.entries
    }

    fn maybe_compact(&mut self) {
        if self.failed.is_some()
            || self.len <= self.opts.compact_min_bytes
            || self.len <= self.live_bytes.saturating_mul(self.opts.compact_ratio)
            || self.len < self.compact_retry_at
        {
            return;
        }
        let before = self.len;
        match self.compact() {
            Ok(()) => {
                self.compactions += 1;
                info!(
                    "compacted {}: {before} -> {} bytes",
                    self.wal_path.display(),
                    self.len
                );
            }
            Err((fatal, e)) => {
                if fatal {
                    self.failed = Some(e.to_string());
                    warn!("compaction failed after the rename: {e}");
                } else {
                    self.compact_retry_at = before.saturating_mul(2);
                    warn!("compaction failed, keeping the old WAL: {e}");
                }
            }
        }
    }

    /// Rewrite the live state to a new WAL. The error says whether the
    /// rename had already happened (then the handle is in doubt).
    fn compact(&mut self) -> Result<(), (bool, StorageError)> {
        let tmp_path = self.dir.join(TMP_FILE);
        let result = self.write_snapshot(&tmp_path);
        let (file, len) = match result {
            Ok(ok) => ok,
            Err(e) => {
                let _ = fs::remove_file(&tmp_path);
                return Err((false, e));
            }
        };
        if let Err(e) = fs::rename(&tmp_path, &self.wal_path) {
            let _ = fs::remove_file(&tmp_path);
            return Err((false, io_err("rename", &tmp_path)(e)));
        }
        self.file = file;
        self.len = len;
        sync_dir(&self.dir).map_err(|e| (true, e))?;
        Ok(())
    }

    fn write_snapshot(&mut self, tmp_path: &Path) -> Result<(File, u64), StorageError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp_path)
            .map_err(io_err("create", tmp_path))?;
        let mut len = 0u64;
        self.buf.clear();
        self.buf.extend_from_slice(MAGIC);
        let mut chunks = self.state.entries.chunks(SNAPSHOT_CHUNK);
        let first = chunks.next().unwrap_or(&[]);
        encode_record(&mut self.buf, Some(self.state.hard_state), None, first)
            .map_err(StorageError::InvalidBatch)?;
        for chunk in chunks {
            if self.buf.len() >= 1 << 20 {
                file.write_all(&self.buf)
                    .map_err(io_err("write", tmp_path))?;
                len += self.buf.len() as u64;
                self.buf.clear();
            }
            encode_record(&mut self.buf, None, None, chunk).map_err(StorageError::InvalidBatch)?;
        }
        file.write_all(&self.buf)
            .map_err(io_err("write", tmp_path))?;
        len += self.buf.len() as u64;
        self.buf.clear();
        file.sync_all().map_err(io_err("fsync", tmp_path))?;
        Ok((file, len))
    }
}

impl Storage for FileStorage {
    fn load(&mut self) -> Result<(HardState, Vec<Entry>), StorageError> {
        if let Some(f) = &self.failed {
            return Err(StorageError::Failed(f.clone()));
        }
        Ok((self.state.hard_state, self.state.entries.clone()))
    }

    fn persist(&mut self, batch: &PersistBatch) -> Result<(), StorageError> {
        if let Some(f) = &self.failed {
            return Err(StorageError::Failed(f.clone()));
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.state
            .check(batch.truncate_from, &batch.append)
            .map_err(StorageError::InvalidBatch)?;
        self.buf.clear();
        encode_record(
            &mut self.buf,
            batch.hard_state,
            batch.truncate_from,
            &batch.append,
        )
        .map_err(StorageError::InvalidBatch)?;
        let written = self
            .file
            .write_all(&self.buf)
            .map_err(io_err("write", &self.wal_path))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .map_err(io_err("fsync", &self.wal_path))
            });
        if let Err(e) = written {
            // After a failed write or fsync the file's contents are unknown:
            // refuse everything until a restart replays what is on disk.
            self.failed = Some(e.to_string());
            return Err(e);
        }
        self.len += self.buf.len() as u64;

        let kept = self.state.kept_len(batch.truncate_from);
        let dropped: u64 = self.state.entries[kept..]
            .iter()
            .map(|e| entry_len(e) as u64)
            .sum();
        let added: u64 = batch.append.iter().map(|e| entry_len(e) as u64).sum();
        self.live_bytes = self.live_bytes - dropped + added;
        self.state.apply(
            batch.hard_state,
            batch.truncate_from,
            batch.append.iter().cloned(),
        );
        self.maybe_compact();
        Ok(())
    }
}

/// Create `path` holding `data` so that a crash leaves it whole or absent.
fn write_atomically(dir: &Path, tmp: &Path, path: &Path, data: &[u8]) -> Result<(), StorageError> {
    let mut f = File::create(tmp).map_err(io_err("create", tmp))?;
    f.write_all(data).map_err(io_err("write", tmp))?;
    f.sync_all().map_err(io_err("fsync", tmp))?;
    drop(f);
    fs::rename(tmp, path).map_err(io_err("rename", tmp))?;
    sync_dir(dir)
}

/// fsync a directory so renames and new files in it are durable.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync directory", dir))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let p = std::env::temp_dir().join(format!(
                "raftian-storage-{}-{name}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&p);
            TempDir(p)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn int(term: u64, index: u64, c: i32) -> Entry {
        Entry {
            term,
            index,
            command: Command::Int(c),
        }
    }

    fn text(term: u64, index: u64, s: &str) -> Entry {
        Entry {
            term,
            index,
            command: Command::Text(s.to_string()),
        }
    }

    fn ints(term: u64, from: u64, n: u64) -> Vec<Entry> {
        (from..from + n).map(|i| int(term, i, i as i32)).collect()
    }

    fn batch(
        hs: Option<(u64, Option<u64>)>,
        trunc: Option<u64>,
        append: Vec<Entry>,
    ) -> PersistBatch {
        PersistBatch {
            hard_state: hs.map(|(term, voted_for)| HardState { term, voted_for }),
            truncate_from: trunc,
            append,
        }
    }

    fn indices(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|e| e.index).collect()
    }

    fn reopen(dir: &Path) -> (HardState, Vec<Entry>) {
        FileStorage::open(dir).unwrap().load().unwrap()
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn sample_batches() -> Vec<PersistBatch> {
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
        ]
    }

    #[test]
    fn round_trip_survives_reopen() {
        let tmp = TempDir::new("roundtrip");
        let mut model = MemStorage::new();
        {
            let mut s = FileStorage::open(tmp.path()).unwrap();
            assert_eq!(s.load().unwrap(), (HardState::default(), vec![]));
            for b in sample_batches() {
                s.persist(&b).unwrap();
                model.persist(&b).unwrap();
                assert_eq!(s.load().unwrap(), model.load().unwrap());
            }
        }
        let (hs, log) = reopen(tmp.path());
        assert_eq!(
            hs,
            HardState {
                term: u64::MAX,
                voted_for: Some(u64::MAX)
            }
        );
        assert_eq!(indices(&log), vec![4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(log[3], text(2, 7, "héllo 'wörld' \"\n"));
        assert_eq!(log[5], int(3, 9, -1));
        assert_eq!((hs, log), model.load().unwrap());
    }

    #[test]
    fn empty_batch_writes_nothing() {
        let tmp = TempDir::new("empty");
        let mut s = FileStorage::open(tmp.path()).unwrap();
        let len = s.wal_len();
        s.persist(&PersistBatch::default()).unwrap();
        assert_eq!(s.wal_len(), len);
        assert_eq!(fs::metadata(s.wal_path()).unwrap().len(), len);
    }

    /// The truncate/append contract, identical for both back ends.
    fn check_truncate_semantics(s: &mut dyn Storage) {
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

    #[test]
    fn mem_storage_truncate_semantics() {
        check_truncate_semantics(&mut MemStorage::new());
    }

    #[test]
    fn file_storage_truncate_semantics_and_reopen() {
        let tmp = TempDir::new("truncate");
        let mut s = FileStorage::open(tmp.path()).unwrap();
        check_truncate_semantics(&mut s);
        let expected = s.load().unwrap();
        let len = s.wal_len();
        drop(s);
        assert_eq!(fs::metadata(tmp.path().join(WAL_FILE)).unwrap().len(), len);
        assert_eq!(reopen(tmp.path()), expected);
        assert_eq!(indices(&expected.1), vec![100, 101]);
    }

    #[test]
    fn mem_storage_with_state_checks_the_log() {
        let hs = HardState {
            term: 2,
            voted_for: None,
        };
        let mut s = MemStorage::with_state(hs, ints(1, 4, 3)).unwrap();
        assert_eq!(s.load().unwrap(), (hs, ints(1, 4, 3)));
        let err = MemStorage::with_state(hs, vec![int(1, 0, 0), int(1, 2, 0)]).unwrap_err();
        assert!(matches!(err, StorageError::InvalidBatch(_)), "{err}");
    }

    /// Writes `batches` to a fresh WAL, returning the WAL's length after each.
    fn write_all(dir: &Path, batches: &[PersistBatch]) -> Vec<u64> {
        let mut s = FileStorage::open(dir).unwrap();
        batches
            .iter()
            .map(|b| {
                s.persist(b).unwrap();
                s.wal_len()
            })
            .collect()
    }

    fn model_after(batches: &[PersistBatch]) -> (HardState, Vec<Entry>) {
        let mut m = MemStorage::new();
        for b in batches {
            m.persist(b).unwrap();
        }
        m.load().unwrap()
    }

    #[test]
    fn torn_tail_at_every_offset_recovers_the_previous_record() {
        let tmp = TempDir::new("torn");
        let batches = sample_batches();
        let full_dir = tmp.path().join("full");
        let lens = write_all(&full_dir, &batches);
        let wal = fs::read(full_dir.join(WAL_FILE)).unwrap();
        let n = batches.len();
        let (prev_end, end) = (lens[n - 2] as usize, lens[n - 1] as usize);
        assert_eq!(wal.len(), end);
        assert!(end - prev_end > RECORD_HEADER);
        let before_last = model_after(&batches[..n - 1]);

        for cut in prev_end..end {
            let dir = tmp.path().join(format!("cut{cut}"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(WAL_FILE), &wal[..cut]).unwrap();
            let mut s = FileStorage::open(&dir).unwrap();
            assert_eq!(s.load().unwrap(), before_last, "cut at {cut}");
            assert_eq!(s.wal_len(), prev_end as u64, "cut at {cut}");
            assert_eq!(
                fs::metadata(dir.join(WAL_FILE)).unwrap().len(),
                prev_end as u64
            );
            // Appending after the recovery works and survives a reopen.
            s.persist(&batches[n - 1]).unwrap();
            drop(s);
            assert_eq!(reopen(&dir), model_after(&batches), "cut at {cut}");
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn torn_record_header_and_cut_header() {
        let tmp = TempDir::new("header");
        let lens = write_all(tmp.path(), &sample_batches()[..1]);
        let wal_path = tmp.path().join(WAL_FILE);
        let wal = fs::read(&wal_path).unwrap();
        assert_eq!(wal.len() as u64, lens[0]);
        // Everything shorter than the first record: an empty log.
        for cut in 0..MAGIC.len() + RECORD_HEADER + 3 {
            fs::write(&wal_path, &wal[..cut]).unwrap();
            assert_eq!(
                reopen(tmp.path()),
                (HardState::default(), vec![]),
                "cut {cut}"
            );
            assert_eq!(fs::read(&wal_path).unwrap(), MAGIC, "cut {cut}");
        }
    }

    #[test]
    fn corrupt_byte_in_a_middle_record_recovers_up_to_it() {
        let tmp = TempDir::new("corrupt");
        let batches = sample_batches();
        let full_dir = tmp.path().join("full");
        let lens = write_all(&full_dir, &batches);
        let wal = fs::read(full_dir.join(WAL_FILE)).unwrap();
        // Record 2 (the third batch) spans lens[1]..lens[2].
        let (start, end) = (lens[1] as usize, lens[2] as usize);
        let expected = model_after(&batches[..2]);
        let next = batch(Some((7, Some(1))), Some(9), vec![int(7, 9, 42)]);
        for pos in start..end {
            for flip in [0x01u8, 0xff] {
                let dir = tmp.path().join(format!("c{pos}-{flip}"));
                fs::create_dir_all(&dir).unwrap();
                let mut bad = wal.clone();
                bad[pos] ^= flip;
                fs::write(dir.join(WAL_FILE), &bad).unwrap();
                let mut s = FileStorage::open(&dir).unwrap();
                assert_eq!(s.load().unwrap(), expected, "byte {pos} ^ {flip:#x}");
                assert_eq!(s.wal_len(), start as u64);
                s.persist(&next).unwrap();
                drop(s);
                let mut with_next = batches[..2].to_vec();
                with_next.push(next.clone());
                assert_eq!(reopen(&dir), model_after(&with_next));
                fs::remove_dir_all(&dir).unwrap();
            }
        }
    }

    #[test]
    fn a_record_that_does_not_fit_the_log_ends_recovery() {
        // A well-formed record whose entries do not follow the log (as if a
        // stray record were appended) is treated like corruption.
        let tmp = TempDir::new("misfit");
        let lens = write_all(tmp.path(), &sample_batches()[..1]);
        let wal_path = tmp.path().join(WAL_FILE);
        let mut wal = fs::read(&wal_path).unwrap();
        let mut rec = Vec::new();
        encode_record(&mut rec, None, None, &ints(1, 20, 1)).unwrap();
        wal.extend_from_slice(&rec);
        fs::write(&wal_path, &wal).unwrap();
        let mut s = FileStorage::open(tmp.path()).unwrap();
        assert_eq!(s.load().unwrap(), model_after(&sample_batches()[..1]));
        assert_eq!(s.wal_len(), lens[0]);
    }

    #[test]
    fn compaction_preserves_state_and_bounds_the_file() {
        let tmp = TempDir::new("compact");
        let opts = FileOptions {
            compact_min_bytes: 8 << 10,
            compact_ratio: 4,
        };
        let mut s = FileStorage::open_with(tmp.path(), opts).unwrap();
        let mut model = MemStorage::new();
        let mut rng = Rng(0x9e3779b97f4a7c15);
        let mut max_len = 0;
        for round in 0..3000u64 {
            let (_, log) = model.load().unwrap();
            let next = log.last().map_or(4, |e| e.index + 1);
            let trunc = if log.len() > 40 {
                Some(next - 1 - rng.below(log.len() as u64))
            } else {
                None
            };
            let start = trunc.unwrap_or(next);
            let n = 1 + rng.below(8);
            let append = (start..start + n)
                .map(|i| {
                    if rng.below(4) == 0 {
                        text(round, i, &"x".repeat(rng.below(50) as usize))
                    } else {
                        int(round, i, rng.next() as i32)
                    }
                })
                .collect();
            let b = batch(Some((round, Some(round % 4))), trunc, append);
            s.persist(&b).unwrap();
            model.persist(&b).unwrap();
            max_len = max_len.max(s.wal_len());
        }
        assert!(s.compactions() > 3, "only {} compactions", s.compactions());
        assert_eq!(fs::metadata(s.wal_path()).unwrap().len(), s.wal_len());
        assert!(
            max_len < 64 << 10,
            "WAL grew to {max_len} bytes despite compaction"
        );
        assert!(!tmp.path().join(TMP_FILE).exists());
        assert_eq!(s.load().unwrap(), model.load().unwrap());
        // Appends after a compaction go to the new file.
        let (_, log) = model.load().unwrap();
        let b = batch(None, None, ints(1, log.last().unwrap().index + 1, 3));
        s.persist(&b).unwrap();
        model.persist(&b).unwrap();
        drop(s);
        assert_eq!(reopen(tmp.path()), model.load().unwrap());
    }

    #[test]
    fn open_compacts_a_bloated_file_and_keeps_multi_chunk_snapshots() {
        let tmp = TempDir::new("bloated");
        let mut model = MemStorage::new();
        {
            // Compaction off: let the file grow.
            let mut s = FileStorage::open_with(
                tmp.path(),
                FileOptions {
                    compact_min_bytes: u64::MAX,
                    compact_ratio: 4,
                },
            )
            .unwrap();
            let big = batch(
                Some((1, None)),
                None,
                ints(1, 0, 3 * SNAPSHOT_CHUNK as u64 + 5),
            );
            s.persist(&big).unwrap();
            model.persist(&big).unwrap();
            for i in 0..200 {
                let b = batch(None, Some(100), (100..2000).map(|x| int(2, x, i)).collect());
                s.persist(&b).unwrap();
                model.persist(&b).unwrap();
            }
        }
        let before = fs::metadata(tmp.path().join(WAL_FILE)).unwrap().len();
        let s = FileStorage::open(tmp.path()).unwrap();
        assert_eq!(s.compactions(), 1);
        assert!(s.wal_len() * 4 < before, "{} vs {before}", s.wal_len());
        drop(s);
        assert_eq!(reopen(tmp.path()), model.load().unwrap());
    }

    #[test]
    fn leftover_temp_file_is_removed() {
        let tmp = TempDir::new("leftover");
        write_all(tmp.path(), &sample_batches());
        fs::write(tmp.path().join(TMP_FILE), b"half a snapshot").unwrap();
        assert_eq!(reopen(tmp.path()), model_after(&sample_batches()));
        assert!(!tmp.path().join(TMP_FILE).exists());
    }

    #[test]
    fn a_foreign_file_is_refused_with_a_clear_error() {
        let tmp = TempDir::new("foreign");
        fs::create_dir_all(tmp.path()).unwrap();
        fs::write(tmp.path().join(WAL_FILE), b"<xml>not a log</xml>").unwrap();
        let err = FileStorage::open(tmp.path()).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("bad magic"), "{err}");
        // Untouched.
        assert_eq!(
            fs::read(tmp.path().join(WAL_FILE)).unwrap(),
            b"<xml>not a log</xml>"
        );
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let tmp = TempDir::new("lock");
        let s = FileStorage::open(tmp.path()).unwrap();
        let err = FileStorage::open(tmp.path()).unwrap_err();
        assert!(matches!(err, StorageError::Locked(_)), "{err}");
        assert!(err.to_string().contains("in use"), "{err}");
        drop(s);
        FileStorage::open(tmp.path()).unwrap();
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = Rng(12345);
        // Random payloads, and random mutations of a valid one.
        let mut valid = Vec::new();
        for b in sample_batches() {
            encode_record(&mut valid, b.hard_state, b.truncate_from, &b.append).unwrap();
        }
        for _ in 0..20_000 {
            let len = rng.below(64) as usize;
            let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = decode_record(&payload);
            let mut m = valid.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(m.len() as u64) as usize;
                m[i] = rng.next() as u8;
            }
            m.truncate(rng.below(m.len() as u64 + 1) as usize);
            let mut data = MAGIC.to_vec();
            data.extend_from_slice(&m);
            let (_, good, _) = replay(&data);
            assert!(good <= data.len());
            // Payload-level mutations bypass the CRC.
            let start = RECORD_HEADER;
            let plen = u32::from_le_bytes(valid[..4].try_into().unwrap()) as usize;
            let mut p = valid[start..start + plen].to_vec();
            let i = rng.below(p.len() as u64) as usize;
            p[i] = rng.next() as u8;
            let _ = decode_record(&p);
        }
        // The whole file being garbage after the magic.
        let tmp = TempDir::new("garbage");
        fs::create_dir_all(tmp.path()).unwrap();
        let mut data = MAGIC.to_vec();
        data.extend((0..5000).map(|_| rng.next() as u8));
        fs::write(tmp.path().join(WAL_FILE), &data).unwrap();
        assert_eq!(reopen(tmp.path()), (HardState::default(), vec![]));
    }

    #[test]
    fn decode_errors_say_what_is_wrong() {
        let mut rec = Vec::new();
        encode_record(&mut rec, None, None, &[text(1, 1, "abc")]).unwrap();
        let payload = &rec[RECORD_HEADER..];
        assert!(
            decode_record(&payload[..payload.len() - 1])
                .unwrap_err()
                .contains("payload ends inside text command")
        );
        let mut bad = payload.to_vec();
        *bad.last_mut().unwrap() = 0xff;
        assert!(decode_record(&bad).unwrap_err().contains("not UTF-8"));
        let mut bad = payload.to_vec();
        bad[0] = 0x80;
        assert!(decode_record(&bad).unwrap_err().contains("unknown flags"));
        let mut bad = payload.to_vec();
        bad.push(0);
        assert!(decode_record(&bad).unwrap_err().contains("trailing"));
    }
}
