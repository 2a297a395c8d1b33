//! Crash test for `FileStorage`: a child process (this test binary, run
//! again with an environment variable) persists batches in a loop and says
//! "@@ack k" on stdout after `persist` returns for batch k. The parent SIGKILLs
//! it at random moments, reopens the directory and checks that the state is
//! exactly the state after some prefix of the batch sequence that includes
//! every acknowledged batch (and at most one more).
//!
//! Batches are a deterministic function of their number and the state before
//! them, and every batch sets `term = k + 1`, so the parent can rebuild the
//! expected state with a `MemStorage` model.
//!
//! Some batches keep a snapshot (which drops the log prefix it covers): the
//! snapshot file is written before the batch's WAL record, so a kill between
//! the two leaves the old state with the new snapshot applied to it, which
//! the check accepts as well.
//!
//! `RAFTIAN_CRASH_ROUNDS` (default 25) and `RAFTIAN_CRASH_SEED` tune a run.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use raftian::raft::{Command, Entry, HardState, PersistBatch, Snapshot, SnapshotMeta};
use raftian::storage::{FileOptions, FileStorage, MemStorage, Storage, WAL_FILE};

const CHILD_ENV: &str = "RAFTIAN_STORAGE_CRASH_CHILD_DIR";
const CHILD_TEST: &str = "crash_child_writer";

/// Small thresholds so that compactions (and kills during them) happen.
fn options() -> FileOptions {
    FileOptions {
        compact_min_bytes: 128 << 10,
        compact_ratio: 4,
    }
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Batch number `k`, given the state after batches `0..k` (its log, and
/// the index of its snapshot, which the log continues).
fn batch_for(k: u64, log: &[Entry], snap: Option<u64>) -> PersistBatch {
    let has_snapshot = snap.is_some();
    let mut r = k.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed;
    let mut rnd = |n: u64| splitmix(&mut r) % n;
    let voted_for = match rnd(3) {
        0 => None,
        _ => Some(rnd(5)),
    };
    let hard_state = Some(HardState {
        term: k + 1,
        voted_for,
    });
    if !log.is_empty() && rnd(8) == 0 {
        // Keep a snapshot of a prefix of the log, as a node that compacts.
        let e = &log[rnd(log.len() as u64) as usize];
        let meta = SnapshotMeta {
            index: e.index,
            term: e.term,
        };
        let data = format!("snapshot {k} at {}", e.index).repeat(1 + rnd(50) as usize);
        return PersistBatch {
            hard_state,
            snapshot: Some(Snapshot {
                meta,
                data: data.into_bytes(),
            }),
            ..PersistBatch::default()
        };
    }
    let first = log.first().map(|e| e.index);
    let next = log
        .last()
        .map(|e| e.index + 1)
        .or(snap.map(|s| s + 1))
        .unwrap_or(4);
    let (truncate_from, start) = match (first, rnd(40)) {
        // A log after a snapshot always continues it.
        (_, 0) if !has_snapshot => {
            // Start a fresh log anywhere.
            let start = rnd(10);
            (Some(0), start)
        }
        (Some(first), 1..=6) => {
            let at = first + rnd(next - first);
            (Some(at), at)
        }
        (Some(first), _) if log.len() > 3000 => {
            let at = first + 100 + rnd(500);
            (Some(at), at)
        }
        _ => (None, next),
    };
    // Mostly small batches, sometimes big ones (hundreds of KB) that take
    // several pages and so can be cut by the kill.
    let n = if rnd(10) == 0 {
        200 + rnd(1800)
    } else {
        1 + rnd(30)
    };
    let append = (start..start + n)
        .map(|index| Entry {
            term: k + 1,
            index,
            command: if rnd(3) == 0 {
                let len = rnd(200) as usize;
                Command::Text(format!("k{k}-{index}-{}", "ü".repeat(len)))
            } else {
                Command::Int(rnd(u64::from(u32::MAX)) as i32)
            },
            client: None,
            sig: None,
        })
        .collect();
    PersistBatch {
        hard_state,
        truncate_from,
        append,
        snapshot: None,
    }
}

/// The child's loop: runs only when the parent sets `CHILD_ENV`.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut storage = FileStorage::open_with(Path::new(&dir), options()).expect("child: open");
    let (hs, log) = storage.load().expect("child: load");
    let mut k = hs.term;
    let mut mirror = MemStorage::with_state(hs, log).expect("child: mirror");
    // The mirror continues the same snapshot, so its batches are the model's.
    let snapshot = storage.load_snapshot().expect("child: load snapshot");
    if snapshot.is_some() {
        let b = PersistBatch {
            snapshot,
            ..PersistBatch::default()
        };
        mirror.persist(&b).expect("child: mirror snapshot");
    }
    let mut out = std::io::stdout();
    writeln!(out, "@@start {k}").expect("child: stdout");
    loop {
        let snap = mirror
            .load_snapshot()
            .expect("child: mirror")
            .map(|s| s.meta.index);
        let b = batch_for(k, mirror.entries(), snap);
        storage.persist(&b).expect("child: persist");
        mirror.persist(&b).expect("child: mirror persist");
        writeln!(out, "@@ack {k} {}", storage.compactions()).expect("child: stdout");
        out.flush().expect("child: flush");
        k += 1;
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills and reaps the child whatever happens.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

enum Line {
    Start(u64),
    Ack(u64, u64),
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_batch() {
    let rounds: u32 = std::env::var("RAFTIAN_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25);
    let mut seed: u64 = std::env::var("RAFTIAN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("RAFTIAN_CRASH_SEED={seed}");
    let mut rnd = |n: u64| splitmix(&mut seed) % n;

    let dir = TempDir(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("storage-crash-{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&dir.0);
    let exe = std::env::current_exe().unwrap();

    let mut model = MemStorage::new();
    let mut model_k = 0u64; // batches applied to the model
    let mut durable = 0u64; // every batch below this was acknowledged
    let (mut total_acks, mut torn_recoveries, mut max_compactions) = (0u64, 0u32, 0u64);

    for round in 0..rounds {
        let mut child = ChildGuard(
            Process::new(&exe)
                .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &dir.0)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn child"),
        );
        let stdout = child.0.stdout.take().unwrap();
        let mut stderr = child.0.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness may print "test crash_child_writer ... " first.
                let Some(at) = line.find("@@") else { continue };
                let mut w = line[at + 2..].split_whitespace();
                let parsed = match (w.next(), w.next().and_then(|s| s.parse().ok())) {
                    (Some("start"), Some(k)) => Line::Start(k),
                    (Some("ack"), Some(k)) => {
                        Line::Ack(k, w.next().and_then(|s| s.parse().ok()).unwrap_or(0))
                    }
                    _ => continue,
                };
                if tx.send(parsed).is_err() {
                    break;
                }
            }
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });

        // Kill after a random number of acknowledged batches (sometimes
        // none: a kill during open and recovery), plus a random delay.
        let target = match rnd(6) {
            0 => 0,
            _ => 1 + rnd(60),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = 0;
        let mut last_ack: Option<u64> = None;
        let mut start_k: Option<u64> = None;
        let mut note = |l: Line, last_ack: &mut Option<u64>, start_k: &mut Option<u64>| match l {
            Line::Start(k) => *start_k = Some(k),
            Line::Ack(k, c) => {
                if let Some(prev) = *last_ack {
                    assert_eq!(k, prev + 1, "child skipped a batch number");
                }
                *last_ack = Some(k);
                max_compactions = max_compactions.max(c);
            }
        };
        while seen < target {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => {
                    if matches!(l, Line::Ack(..)) {
                        seen += 1;
                    }
                    note(l, &mut last_ack, &mut start_k);
                }
                Err(_) => {
                    let _ = child.0.kill();
                    let _ = child.0.wait();
                    panic!(
                        "round {round}: child gave {seen} of {target} acks before the deadline; stderr:\n{}",
                        err_reader.join().unwrap_or_default()
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_micros(rnd(3000)));
        child.0.kill().expect("kill child");
        let status = child.0.wait().expect("wait child");
        assert!(!status.success(), "child exited by itself: {status}");
        reader.join().unwrap();
        let child_err = err_reader.join().unwrap_or_default();
        // Acks already in the pipe were printed after persist returned: they count.
        for l in rx.try_iter() {
            note(l, &mut last_ack, &mut start_k);
        }
        if let Some(s) = start_k {
            assert!(
                s >= durable,
                "round {round}: child restarted at batch {s}, but batches below {durable} were acknowledged"
            );
        }
        if let Some(a) = last_ack {
            total_acks += a + 1 - start_k.expect("ack before start");
            durable = durable.max(a + 1);
        }

        // Reopen and compare with the model.
        let wal = dir.0.join(WAL_FILE);
        let len_before = std::fs::metadata(&wal).map_or(0, |m| m.len());
        let mut storage = FileStorage::open_with(&dir.0, options()).unwrap_or_else(|e| {
            panic!("round {round}: reopen failed: {e}\nchild stderr:\n{child_err}")
        });
        if storage.wal_len() < len_before && storage.compactions() == 0 {
            torn_recoveries += 1;
        }
        let (hs, log) = storage.load().unwrap();
        let k = hs.term;
        assert!(
            k >= durable,
            "round {round}: recovered {k} batches but {durable} were acknowledged"
        );
        // At most one batch can be durable without its ack having been printed.
        let bound = match (start_k, last_ack) {
            (_, Some(a)) => a + 2,
            (Some(s), None) => s + 1,
            (None, None) => model_k,
        };
        assert!(
            k <= bound,
            "round {round}: recovered {k} batches, more than could have been written ({bound})"
        );
        assert!(
            k >= model_k,
            "round {round}: state went back from {model_k} to {k}"
        );
        while model_k < k {
            let snap = model.load_snapshot().unwrap().map(|s| s.meta.index);
            let b = batch_for(model_k, model.entries(), snap);
            model.persist(&b).unwrap();
            model_k += 1;
        }
        // The snapshot on disk is the model's, or that of the batch the
        // kill cut after its snapshot file (then it also compacted the log).
        let on_disk = storage.load_snapshot().unwrap();
        let snap = model.load_snapshot().unwrap().map(|s| s.meta.index);
        let next = batch_for(model_k, model.entries(), snap).snapshot;
        assert!(
            on_disk == model.load_snapshot().unwrap() || (next.is_some() && on_disk == next),
            "round {round}: the snapshot on disk is neither the model's nor the next batch's: {:?} vs {:?} / {:?}",
            on_disk.as_ref().map(|s| s.meta),
            model.load_snapshot().unwrap().map(|s| s.meta),
            next.as_ref().map(|s| s.meta)
        );
        if on_disk != model.load_snapshot().unwrap() {
            // Cut between the two: the node restarts from the new snapshot
            // and the old rest, and so does the model (batch k comes next).
            let b = PersistBatch {
                snapshot: on_disk.clone(),
                ..PersistBatch::default()
            };
            model.persist(&b).unwrap();
        }
        let want = model.entries().to_vec();
        assert_eq!(
            hs,
            model.hard_state(),
            "round {round}: hard state differs after {k} batches"
        );
        assert!(
            log == want,
            "round {round}: log differs after {k} batches: {} entries on disk, {} expected",
            log.len(),
            want.len()
        );
        durable = k;
        drop(storage);
    }
    eprintln!(
        "{rounds} kills, {total_acks} acknowledged batches, {model_k} batches recovered, \
         {torn_recoveries} reopenings cut a torn tail, up to {max_compactions} compactions in one child"
    );
    assert!(total_acks > 0, "the child never acknowledged anything");
}
