//! The snapshot file, `<dir>/snapshot.bin`: the magic `RAFTSNP1`, then
//! `index u64, term u64, len u64, crc32 u32` (little endian; the CRC covers
//! the three numbers and the data) and the snapshot's bytes (its JSON
//! document). Written whole and atomically (write, fsync, rename, fsync the
//! directory) before the log entries it covers are dropped, so a crash at
//! any moment leaves the old state or the new one.

use std::fs;
use std::path::{Path, PathBuf};

use super::StorageError;
use super::file::write_atomically;
use crate::raft::{Snapshot, SnapshotMeta};

pub const SNAPSHOT_FILE: &str = "snapshot.bin";
const TMP_FILE: &str = "snapshot.bin.tmp";
const MAGIC: &[u8; 8] = b"RAFTSNP1";
const HEADER: usize = 8 + 8 + 8 + 8 + 4;

fn path(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOT_FILE)
}

fn crc(numbers: &[u8], data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(numbers);
    h.update(data);
    h.finalize()
}

pub fn write_snapshot(dir: &Path, s: &Snapshot) -> Result<(), StorageError> {
    let mut buf = Vec::with_capacity(HEADER + s.data.len());
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&s.meta.index.to_le_bytes());
    buf.extend_from_slice(&s.meta.term.to_le_bytes());
    buf.extend_from_slice(&(s.data.len() as u64).to_le_bytes());
    let sum = crc(&buf[8..32], &s.data);
    buf.extend_from_slice(&sum.to_le_bytes());
    buf.extend_from_slice(&s.data);
    write_atomically(dir, &dir.join(TMP_FILE), &path(dir), &buf)
}

/// The snapshot in `dir`, if there is one. A damaged file is an error: it
/// was complete when renamed into place, so damage is not a torn write.
pub fn read_snapshot(dir: &Path) -> Result<Option<Snapshot>, StorageError> {
    let p = path(dir);
    let _ = fs::remove_file(dir.join(TMP_FILE));
    let bytes = match fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StorageError::Io {
                what: "read",
                path: p,
                source,
            });
        }
    };
    decode(&bytes)
        .map(Some)
        .map_err(|detail| StorageError::Corrupt { path: p, detail })
}

fn decode(b: &[u8]) -> Result<Snapshot, String> {
    if b.len() < HEADER || &b[..8] != MAGIC {
        return Err("not a snapshot file (bad magic or too short)".into());
    }
    let num = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let (index, term, len) = (num(8), num(16), num(24));
    let sum = u32::from_le_bytes(b[32..36].try_into().expect("4 bytes"));
    let data = &b[HEADER..];
    if data.len() as u64 != len {
        return Err(format!("{} data bytes, the header says {len}", data.len()));
    }
    if crc(&b[8..32], data) != sum {
        return Err("CRC mismatch".into());
    }
    Ok(Snapshot {
        meta: SnapshotMeta { index, term },
        data: data.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_support::TempDir;

    #[test]
    fn a_snapshot_round_trips_and_damage_is_refused() {
        let tmp = TempDir::new("snapfile");
        fs::create_dir_all(tmp.path()).unwrap();
        assert_eq!(read_snapshot(tmp.path()).unwrap(), None);
        let s = Snapshot {
            meta: SnapshotMeta { index: 41, term: 3 },
            data: br#"{"lastIndex":41}"#.to_vec(),
        };
        write_snapshot(tmp.path(), &s).unwrap();
        assert_eq!(read_snapshot(tmp.path()).unwrap(), Some(s));
        let mut bytes = fs::read(path(tmp.path())).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(path(tmp.path()), &bytes).unwrap();
        assert!(read_snapshot(tmp.path()).is_err());
    }
}
