//! The durable back end: opening and recovering the WAL, group commit and
//! compaction.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use log::{info, warn};

use super::mem::LiveState;
use super::snapfile;
use super::wal::{MAGIC, RECORD_HEADER, encode_record, entry_len, replay};
use super::{Storage, StorageError};
use crate::raft::{Entry, HardState, PersistBatch, Snapshot, SnapshotMeta};

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

/// A node's durable state in `<dir>/raft.wal` (see the `storage` module docs).
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
    /// Where the latest snapshot stands (its file holds the data).
    snapshot: Option<SnapshotMeta>,
}

/// Snapshot size apart from the entries: magic, record header, flags, hard
/// state, entry count.
const SNAPSHOT_BASE: u64 = (MAGIC.len() + RECORD_HEADER + 1 + 17 + 4) as u64;
/// A snapshot writes at most this many entries per record.
const SNAPSHOT_CHUNK: usize = 4096;

impl FileStorage {
    /// Open (or create) the data directory `dir` with default options.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_with(dir, FileOptions::default())
    }

    /// Open (or create) `dir`, recovering from a torn or corrupt tail.
    pub fn open_with(dir: &Path, opts: FileOptions) -> Result<Self, StorageError> {
        create_dir(dir)?;
        let lock = lock_dir(dir)?;
        let tmp_path = dir.join(TMP_FILE);
        remove_leftover_tmp(&tmp_path)?;
        let wal_path = dir.join(WAL_FILE);
        if !wal_path.exists() {
            write_atomically(dir, &tmp_path, &wal_path, MAGIC)?;
        }
        let (mut file, data) = read_wal(&wal_path)?;
        let (mut state, good) = recover(&mut file, &wal_path, data)?;
        let snapshot = snapfile::read_snapshot(dir)?.map(|s| s.meta);
        if let Some(meta) = snapshot {
            // A crash may have come between the snapshot and the WAL's
            // rewrite: the WAL still holds what the snapshot covers.
            state.compact_after(meta);
        }

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
            len: good,
            state,
            live_bytes,
            buf: Vec::new(),
            opts,
            compact_retry_at: 0,
            compactions: 0,
            failed: None,
            snapshot,
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

    fn load_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        match self.snapshot {
            None => Ok(None),
            Some(_) => snapfile::read_snapshot(&self.dir),
        }
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
        if let Some(snap) = &batch.snapshot {
            // First, so that dropping what it covers can never lose it.
            snapfile::write_snapshot(&self.dir, snap)?;
            self.snapshot = Some(snap.meta);
        }
        let log_change =
            batch.hard_state.is_some() || batch.truncate_from.is_some() || !batch.append.is_empty();
        if log_change {
            self.append_record(batch)?;
        }
        self.apply_live(batch);
        self.maybe_compact();
        Ok(())
    }
}

impl FileStorage {
    /// One WAL record for the batch, one fsync.
    fn append_record(&mut self, batch: &PersistBatch) -> Result<(), StorageError> {
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
        Ok(())
    }

    /// The batch, applied to the live state (and its size estimate).
    fn apply_live(&mut self, batch: &PersistBatch) {
        let kept = self.state.kept_len(batch.truncate_from);
        let dropped: u64 = self.state.entries[kept..]
            .iter()
            .map(|e| entry_len(e) as u64)
            .sum();
        let added: u64 = batch.append.iter().map(|e| entry_len(e) as u64).sum();
        self.live_bytes = self.live_bytes - dropped + added;
        self.state.apply_batch(batch);
        if batch.snapshot.is_some() {
            let entries = self.state.entries.iter().map(|e| entry_len(e) as u64);
            self.live_bytes = SNAPSHOT_BASE + entries.sum::<u64>();
        }
    }
}

/// Create `dir` if it is missing, durably (its parent is fsynced).
fn create_dir(dir: &Path) -> Result<(), StorageError> {
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
    Ok(())
}

/// Take the advisory lock on `dir`; the returned file holds it.
fn lock_dir(dir: &Path) -> Result<File, StorageError> {
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_err("open", &lock_path))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(TryLockError::WouldBlock) => Err(StorageError::Locked(dir.to_path_buf())),
        Err(TryLockError::Error(e)) => Err(io_err("lock", &lock_path)(e)),
    }
}

fn remove_leftover_tmp(tmp_path: &Path) -> Result<(), StorageError> {
    if tmp_path.exists() {
        warn!(
            "removing {} left by an interrupted compaction",
            tmp_path.display()
        );
        fs::remove_file(tmp_path).map_err(io_err("remove", tmp_path))?;
    }
    Ok(())
}

/// Open the WAL and read it whole, its header checked (see [`check_header`]).
fn read_wal(wal_path: &Path) -> Result<(File, Vec<u8>), StorageError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(wal_path)
        .map_err(io_err("open", wal_path))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(io_err("read", wal_path))?;
    let data = check_header(&mut file, wal_path, data)?;
    Ok((file, data))
}

/// Refuse a file that is not a WAL; a cut header becomes an empty WAL.
fn check_header(file: &mut File, wal_path: &Path, data: Vec<u8>) -> Result<Vec<u8>, StorageError> {
    if data.len() >= MAGIC.len() && &data[..MAGIC.len()] == MAGIC {
        return Ok(data);
    }
    if data.len() < MAGIC.len() && MAGIC.starts_with(&data) {
        // An empty (or cut) header holds nothing: start afresh.
        warn!(
            "{} has an incomplete header ({} bytes); starting with an empty log",
            wal_path.display(),
            data.len()
        );
        file.set_len(0).map_err(io_err("truncate", wal_path))?;
        file.seek(SeekFrom::Start(0))
            .map_err(io_err("seek", wal_path))?;
        file.write_all(MAGIC).map_err(io_err("write", wal_path))?;
        file.sync_data().map_err(io_err("fsync", wal_path))?;
        Ok(MAGIC.to_vec())
    } else {
        Err(StorageError::Corrupt {
            path: wal_path.to_path_buf(),
            detail: "bad magic (expected a file starting with RAFTWAL1)".into(),
        })
    }
}

/// Replay `data`, cut the file after its good prefix and leave the handle
/// there for appends. Returns the state and the WAL's new length.
fn recover(
    file: &mut File,
    wal_path: &Path,
    data: Vec<u8>,
) -> Result<(LiveState, u64), StorageError> {
    let (state, good, stop) = replay(&data);
    if let Some(reason) = stop {
        warn!(
            "{}: {reason}; dropping the last {} bytes (of {}) and keeping the state before them",
            wal_path.display(),
            data.len() - good,
            data.len()
        );
        file.set_len(good as u64)
            .map_err(io_err("truncate", wal_path))?;
        file.sync_data().map_err(io_err("fsync", wal_path))?;
    }
    file.seek(SeekFrom::Start(good as u64))
        .map_err(io_err("seek", wal_path))?;
    Ok((state, good as u64))
}

/// Create `path` holding `data` so that a crash leaves it whole or absent.
pub(super) fn write_atomically(
    dir: &Path,
    tmp: &Path,
    path: &Path,
    data: &[u8],
) -> Result<(), StorageError> {
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

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;
    use crate::storage::test_support::*;

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
        assert_eq!(
            indices(&log),
            vec![4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
        );
        assert!(log[10].sig.is_some(), "a signature survives");
        assert!(matches!(log[11].command, crate::raft::Command::Config(_)));
        let stamp = crate::raft::Stamp {
            ms: u64::MAX,
            limit: u32::MAX,
        };
        assert_eq!(log[12].command, crate::raft::Command::Stamp(stamp));
        assert_eq!(log[3], text(2, 7, "héllo 'wörld' \"\n"));
        assert_eq!(log[5], int(3, 9, -1));
        assert!(log[7].client.is_some() && log[8].client.is_none() && log[9].client.is_some());
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
}
