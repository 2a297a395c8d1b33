//! Every click counts exactly once, with real processes: five election-mode
//! nodes on disk take unique `bench_click` tags on random nodes while a
//! nemesis SIGKILLs and restarts leaders and SIGSTOPs followers (a paused
//! node is cut off the way a partition cuts it: the fault scripts partition
//! with network namespaces). Afterwards every tag a node acknowledged and
//! that node stayed up (same process) must be applied exactly once on every
//! node, and no tag anywhere more than once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Cluster, call_timeout, cluster_toml, int, status, temp_dir, text};
use dxr::Value;

const NODES: usize = 5;
const FIRST_TAG: i32 = 1_000_000;

fn signal(c: &Cluster, id: usize, sig: &str) {
    if let Some(child) = &c.children[id] {
        let _ = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status();
    }
}

/// The leader as the nodes that answer see it.
fn leader(c: &Cluster) -> Option<usize> {
    c.addrs.iter().find_map(|a| {
        let s = status(a).ok()?;
        (text(&s["mode"]) == "LEADER").then(|| int(&s["id"]).map(|i| i as usize))?
    })
}

/// Tags applied (`a` lines) in a node's trace, with how often.
fn applied(c: &Cluster, id: usize) -> BTreeMap<i32, usize> {
    let path = c.trace_path(id, c.starts[id]);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        if let (Some("a"), Some(tag)) = (parts.next(), parts.next())
            && let Ok(tag) = tag.parse::<i32>()
            && tag >= FIRST_TAG
        {
            *out.entry(tag).or_default() += 1;
        }
    }
    out
}

struct Run {
    /// Acknowledged tags: (tag, node, start of that node then).
    acked: Vec<(i32, usize, usize)>,
    kills: usize,
    pauses: usize,
    refused: usize,
}

/// Clicks on random nodes for `secs`, with the nemesis every ~2 s.
fn chaos(c: &mut Cluster, secs: u64, seed: u64) -> Run {
    let mut rng = seed | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut run = Run {
        acked: Vec::new(),
        kills: 0,
        pauses: 0,
        refused: 0,
    };
    let end = Instant::now() + Duration::from_secs(secs);
    let mut next_fault = Instant::now() + Duration::from_millis(1500);
    let mut restore: Option<(Instant, usize, bool)> = None;
    let mut tag = FIRST_TAG;
    while Instant::now() < end {
        if let Some((at, id, killed)) = restore
            && Instant::now() >= at
        {
            if killed {
                c.start_node(id);
            } else {
                signal(c, id, "-CONT");
            }
            restore = None;
            next_fault = Instant::now() + Duration::from_millis(1500 + next(1000));
        }
        if restore.is_none() && Instant::now() >= next_fault {
            match leader(c) {
                Some(l) if next(2) == 0 => {
                    c.kill(l);
                    run.kills += 1;
                    restore = Some((Instant::now() + Duration::from_millis(700), l, true));
                }
                l => {
                    let f = (l.unwrap_or(0) + 1 + next(NODES as u64 - 1) as usize) % NODES;
                    signal(c, f, "-STOP");
                    run.pauses += 1;
                    restore = Some((Instant::now() + Duration::from_millis(1000), f, false));
                }
            }
        }
        let id = next(NODES as u64) as usize;
        if c.children[id].is_none() {
            continue;
        }
        tag += 1;
        let timeout = Duration::from_millis(300);
        match call_timeout(
            &c.addrs[id],
            "bench_click",
            vec![Value::Integer(tag)],
            timeout,
        ) {
            Ok(Value::Boolean(true)) => run.acked.push((tag, id, c.starts[id])),
            _ => run.refused += 1,
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some((_, id, killed)) = restore {
        if killed {
            c.start_node(id);
        } else {
            signal(c, id, "-CONT");
        }
    }
    run
}

#[test]
fn every_acknowledged_click_is_applied_exactly_once_under_a_nemesis() {
    let dir = temp_dir("exactly-once");
    let (toml, addrs) = cluster_toml(NODES, false, false);
    let mut c = Cluster::start(&dir, &toml, addrs, &["--traces"]);
    common::wait_for("a leader", Duration::from_secs(20), || leader(&c));
    let seed = std::process::id() as u64;
    let run = chaos(&mut c, 20, seed);
    // Nodes that stayed up: acknowledged tags of theirs must all arrive.
    let must: BTreeSet<i32> = run
        .acked
        .iter()
        .filter(|(_, id, start)| c.starts[*id] == *start)
        .map(|(t, _, _)| *t)
        .collect();
    let missing = |c: &Cluster| -> Vec<(usize, usize)> {
        (0..NODES)
            .map(|id| (id, applied(c, id)))
            .map(|(id, got)| (id, must.iter().filter(|t| !got.contains_key(t)).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    };
    let end = Instant::now() + Duration::from_secs(60);
    while !missing(&c).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    let twice: Vec<(usize, i32, usize)> = (0..NODES)
        .flat_map(|id| {
            applied(&c, id)
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(move |(t, n)| (id, t, n))
        })
        .collect();
    println!(
        "seed {seed}: {} clicks acknowledged ({} by nodes that stayed up), {} refused or timed out; \
         {} leader kills, {} pauses; missing per node {:?}; applied twice {:?}",
        run.acked.len(),
        must.len(),
        run.refused,
        run.kills,
        run.pauses,
        missing(&c),
        twice
    );
    assert!(run.kills + run.pauses >= 5, "the nemesis did too little");
    assert!(!must.is_empty(), "no click was acknowledged");
    assert!(twice.is_empty(), "clicks applied twice: {twice:?}");
    assert!(
        missing(&c).is_empty(),
        "acknowledged clicks never applied (node, how many): {:?}",
        missing(&c)
    );
}
