//! Deterministic simulation of the pure Raft core (`raftian::raft`).
//!
//! N `Raft` cores run on a simulated clock (a `service_actions` tick every
//! 5 ms; each incarnation has its own clock origin), a simulated network
//! (delay, loss, duplication, reordering, long delays, node isolation,
//! arbitrary and non-transitive partitions; a lost call comes back as
//! `Unreachable` only if it was never delivered, as `Timeout`, or not at
//! all) and a simulated disk per node (every `Ready`'s batch is applied
//! before a message leaves; a crash keeps only the disk).
//!
//! Checked after every step: one leader per term, one vote per node and
//! term, log matching (same index and term => same command and prefix, over
//! every log ever written), leader completeness, a newly committed entry is
//! on a majority of disks, state machine safety (applied = committed, in
//! order), terms never go back (across restarts), commit indices never go
//! back (per incarnation), the core's hard state and log equal the disk's,
//! request seqs never reused, and an acknowledged forwarded batch is never
//! forwarded again. Liveness: a leader and agreement within 10 simulated
//! seconds once healed (30 s while unreliable with legacy peers), and a
//! command proposed on every node commits.
//!
//! Scenarios: the MIT 6.824 Raft tests 2A/2B/2C, the paper's static-leader
//! mode (also under chaos), random partitions, leadership transfer,
//! membership changes, a lying member in a cluster with keys, and a leader
//! that crashes after sending its appends but before its own fsync. Seed `s` runs scenario
//! `ALL[s % ALL.len()]`; `(s / ALL.len()) % 3` picks how nodes mark their
//! peers: 0 all Rust, 1 all legacy (is_log_empty probes, commit sent once
//! and capped), 2 mixed. The seed also picks max_batch (4096, 1-4, 16-64),
//! request_timeout (200 ms or 1 s), pre_vote and check_quorum (on 4 in 5).
//! A failing seed prints itself and replays exactly.
//!
//! ```text
//! cargo test --test sim                          # CI: 1,140 seeds, ~30 s in a debug build
//! RAFTIAN_SIM_SEED=1234 cargo test --test sim -- --nocapture                     # replay one
//! RAFTIAN_SIM_SEED=1234 RAFTIAN_SIM_TRACE=1 cargo test --test sim -- --nocapture # every event
//! RAFTIAN_SIM_SEEDS=10000 cargo test --release --test sim -- --nocapture         # soak
//! ```
//!
//! `RAFTIAN_SIM_SEEDS` is the total number of seeds (spread over the
//! scenarios), `RAFTIAN_SIM_SEED_START` the first one (default 0), and
//! `RAFTIAN_SIM_STATS=1` prints each run's counters (elections, RPCs,
//! duplicated commands).

mod cluster;
mod rng;
mod scenarios;

use cluster::Peers;

use std::time::Instant;

/// Seeds per CI run (debug build): 30 per scenario.
const DEFAULT_SEEDS: u64 = 30 * scenarios::ALL.len() as u64;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name} must be a number, not {v:?}"),
    }
}

/// Prints the failing seed and how to replay it when a scenario panics.
struct FailureReport {
    name: &'static str,
    seed: u64,
    peers: Peers,
}

impl Drop for FailureReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n*** sim FAILED: scenario {} seed {} ({:?} peers)\n*** replay: RAFTIAN_SIM_SEED={} \
                 cargo test --test sim {} -- --nocapture   (add RAFTIAN_SIM_TRACE=1 for every event)\n",
                self.name, self.seed, self.peers, self.seed, self.name
            );
        }
    }
}

fn run(name: &str) {
    let count = scenarios::ALL.len() as u64;
    let idx = scenarios::ALL
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no scenario {name}")) as u64;
    let (name, scenario) = scenarios::ALL[idx as usize];
    let seeds: Vec<u64> = match env_u64("RAFTIAN_SIM_SEED") {
        Some(s) if s % count == idx => vec![s],
        Some(_) => Vec::new(),
        None => {
            let start = env_u64("RAFTIAN_SIM_SEED_START").unwrap_or(0);
            let total = env_u64("RAFTIAN_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
            (start..start + total)
                .filter(|s| s % count == idx)
                .collect()
        }
    };
    let t0 = Instant::now();
    for &seed in &seeds {
        let peers = match (seed / count) % 3 {
            0 => Peers::Rust,
            1 => Peers::Legacy,
            _ => Peers::Mixed,
        };
        let _report = FailureReport { name, seed, peers };
        scenario(seed, peers).finish();
    }
    if !seeds.is_empty() {
        println!("sim {name}: {} seeds in {:.2?}", seeds.len(), t0.elapsed());
    }
}

macro_rules! scenario_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(stringify!($name));
            }
        )*

        /// Every scenario has a test.
        #[test]
        fn all_scenarios_have_tests() {
            let tests = [$(stringify!($name)),*];
            for (name, _) in scenarios::ALL {
                assert!(tests.contains(name), "scenario {name} has no test");
            }
        }
    };
}

scenario_tests!(
    initial_election,
    reelection,
    many_elections,
    basic_agree,
    follower_failure,
    leader_failure,
    fail_agree,
    fail_no_agree,
    concurrent_starts,
    rejoin,
    backup,
    count,
    persist1,
    persist2,
    persist3,
    figure8,
    unreliable_agree,
    figure8_unreliable,
    reliable_churn,
    unreliable_churn,
    partitions,
    split_votes,
    static_leader,
    snapshot_basic,
    snapshot_install,
    snapshot_install_unreliable,
    snapshot_install_crash,
    snapshot_install_uncrash,
    snapshot_all_crash,
    snapshot_init,
    transfer_leader,
    transfer_times_out,
    membership_changes,
    membership_unreliable,
    membership_partitioned,
    single_server_bug,
    lying_member,
    leader_crash_mid_write,
);
