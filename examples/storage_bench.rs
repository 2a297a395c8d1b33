//! Micro-benchmark of `Storage::persist`: one fsync per batch (group commit).
//!
//! cargo run --release --example storage_bench -- [--dir PATH] [--iters N]
//!
//! PATH defaults to `target/storage-bench-<pid>` (on the project's disk: a
//! tmpfs /tmp would make fsync free). Prints, per batch size, the median and
//! p99 latency of one `persist` and the entries/s it sustains.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use raftian::raft::{Command, Entry, HardState, PersistBatch};
use raftian::storage::{FileStorage, MemStorage, Storage};

struct Stats {
    median: Duration,
    p99: Duration,
    total: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    let total = samples.iter().sum();
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Stats {
        median: at(0.5),
        p99: at(0.99),
        total,
    }
}

/// Persist `iters` batches of `size` entries; one sample per batch.
fn run(
    storage: &mut dyn Storage,
    size: u64,
    iters: usize,
    next: &mut u64,
    term: &mut u64,
) -> Stats {
    let mut samples = Vec::with_capacity(iters);
    let mut batch = PersistBatch::default();
    for i in 0..iters {
        batch.append.clear();
        batch.append.extend((0..size).map(|j| Entry {
            term: *term,
            index: *next + j,
            command: Command::Int(((*next + j) % 4) as i32 + 1),
            client: None,
            sig: None,
        }));
        // Every 50th batch also carries a term change, as elections do.
        batch.hard_state = (i % 50 == 0).then(|| {
            *term += 1;
            HardState {
                term: *term,
                voted_for: Some(1),
            }
        });
        let t = Instant::now();
        storage.persist(&batch).expect("persist");
        samples.push(t.elapsed());
        *next += size;
    }
    stats(samples)
}

fn fmt(d: Duration) -> String {
    format!("{:>9.2} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = PathBuf::from(format!("target/storage-bench-{}", std::process::id()));
    let mut iters = 1000usize;
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--dir", Some(d)) => dir = PathBuf::from(d),
            ("--iters", Some(n)) => match n.parse() {
                Ok(n) if n > 0 => iters = n,
                _ => {
                    eprintln!("--iters wants a positive number, got {n:?}");
                    std::process::exit(2);
                }
            },
            _ => {
                eprintln!("usage: storage_bench [--dir PATH] [--iters N]");
                std::process::exit(2);
            }
        }
    }
    let fresh = !dir.exists();
    let result = bench(&dir, iters);
    if fresh {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Err(e) = result {
        eprintln!("storage_bench: {e}");
        std::process::exit(1);
    }
}

fn bench(dir: &std::path::Path, iters: usize) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "persist() latency, {iters} batches per row, WAL in {}",
        dir.display()
    );
    println!(
        "{:<8} {:>7} {:>12} {:>12} {:>12} {:>14}",
        "backend", "batch", "median", "p99", "batches/s", "entries/s"
    );
    for size in [1u64, 10, 100, 1000] {
        let n = if size == 1000 { iters / 4 } else { iters }.max(1);
        for (name, mut storage) in [
            (
                "file",
                Box::new(FileStorage::open(dir)?) as Box<dyn Storage>,
            ),
            ("memory", Box::new(MemStorage::new())),
        ] {
            // Continue the log already in the directory.
            let (hs, log) = storage.load()?;
            let mut next = log.last().map_or(0, |e| e.index + 1);
            let mut term = hs.term;
            // Warm up (page cache, allocator) before measuring.
            run(storage.as_mut(), size, 20, &mut next, &mut term);
            let s = run(storage.as_mut(), size, n, &mut next, &mut term);
            let secs = s.total.as_secs_f64();
            println!(
                "{name:<8} {size:>7} {} {} {:>12.0} {:>14.0}",
                fmt(s.median),
                fmt(s.p99),
                n as f64 / secs,
                (n as u64 * size) as f64 / secs
            );
        }
    }
    let s = FileStorage::open(dir)?;
    println!(
        "WAL: {} bytes for {} entries",
        s.wal_len(),
        s.entries().len()
    );
    Ok(())
}
