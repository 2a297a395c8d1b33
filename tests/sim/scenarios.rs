//! The MIT 6.824 Raft tests (2A, 2B, 2C) as simulation scenarios, plus the
//! paper's static-leader mode and random partitions.
//!
//! Differences from MIT, by design of this core: a new leader appends a
//! no-op first (so the first client command is at index 1, not 1 of an
//! empty log), followers forward proposals to the leader (`one()` submits
//! to the leader or to any connected node), and commands are unique ints.

use std::time::Duration;

use raftian::raft::{NodeId, Reply};

use raftian::raft::signing::{Vote, vote_message};
use raftian::raft::{AppendEntries, ClientId, Command, Rpc, VoteProof, VoteRequest, WireEntry};

use crate::cluster::{Cluster, ELECTION_WAIT, LIVENESS, MS, Options, Peers, sim_sig};

/// A scenario gets its seed and how nodes mark their peers, and hands back
/// its cluster for the checks every scenario ends with.
pub type Scenario = fn(u64, Peers) -> Cluster;

pub const ALL: &[(&str, Scenario)] = &[
    ("initial_election", initial_election),
    ("reelection", reelection),
    ("many_elections", many_elections),
    ("basic_agree", basic_agree),
    ("follower_failure", follower_failure),
    ("leader_failure", leader_failure),
    ("fail_agree", fail_agree),
    ("fail_no_agree", fail_no_agree),
    ("concurrent_starts", concurrent_starts),
    ("rejoin", rejoin),
    ("backup", backup),
    ("count", count),
    ("persist1", persist1),
    ("persist2", persist2),
    ("persist3", persist3),
    ("figure8", figure8),
    ("unreliable_agree", unreliable_agree),
    ("figure8_unreliable", figure8_unreliable),
    ("reliable_churn", reliable_churn),
    ("unreliable_churn", unreliable_churn),
    ("partitions", partitions),
    ("split_votes", split_votes),
    ("static_leader", static_leader),
    ("snapshot_basic", snapshot_basic),
    ("snapshot_install", snapshot_install),
    ("snapshot_install_unreliable", snapshot_install_unreliable),
    ("snapshot_install_crash", snapshot_install_crash),
    ("snapshot_install_uncrash", snapshot_install_uncrash),
    ("snapshot_all_crash", snapshot_all_crash),
    ("snapshot_init", snapshot_init),
    ("transfer_leader", transfer_leader),
    ("transfer_times_out", transfer_times_out),
    ("membership_changes", membership_changes),
    ("membership_unreliable", membership_unreliable),
    ("membership_partitioned", membership_partitioned),
    ("single_server_bug", single_server_bug),
    ("lying_member", lying_member),
    ("leader_crash_mid_write", leader_crash_mid_write),
];

fn cluster(seed: u64, n: usize, peers: Peers) -> Cluster {
    Cluster::new(seed, Options::new(n, peers))
}

/// A cluster whose log holds only what the scenario sends (no stamps), for
/// scenarios that count indices or RPCs.
fn exact_cluster(seed: u64, n: usize, peers: Peers) -> Cluster {
    let mut opts = Options::new(n, peers);
    opts.rate_limit = Some(0);
    Cluster::new(seed, opts)
}

/// A cluster on an unreliable network (loss, duplication, 0-27 ms delays).
fn unreliable_cluster(seed: u64, n: usize, peers: Peers) -> Cluster {
    let mut opts = Options::new(n, peers);
    opts.unreliable = true;
    Cluster::new(seed, opts)
}

// ----- 2A: leader election -----

fn initial_election(seed: u64, peers: Peers) -> Cluster {
    let mut c = cluster(seed, 3, peers);
    c.check_one_leader();
    let term1 = c.check_terms();
    assert!(term1 >= 1, "term is {term1}, but should be at least 1");
    // No failures: the leader and the term must stay.
    c.run_for(2 * ELECTION_WAIT);
    let term2 = c.check_terms();
    assert_eq!(
        term1,
        term2,
        "term changed with no failures: {}",
        c.describe()
    );
    c.check_one_leader();
    c
}

fn reelection(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = cluster(seed, n, peers);
    let leader1 = c.check_one_leader();
    // The leader disconnects: a new one is elected.
    c.disconnect(leader1);
    let new_leader = c.check_one_leader();
    let new_term = c.raft(new_leader).expect("up").term();
    // The old leader rejoins and learns the new term (without check_quorum
    // it still thinks it leads until it hears of it): still one leader.
    c.connect(leader1);
    let caught_up = c.wait_for(LIVENESS, |c| {
        c.raft(leader1).is_some_and(|r| r.term() >= new_term)
    });
    assert!(
        caught_up,
        "old leader never learnt the new term: {}",
        c.describe()
    );
    let leader2 = c.check_one_leader();
    // No quorum: no leader.
    c.disconnect(leader2);
    c.disconnect((leader2 + 1) % n);
    c.run_for(2 * ELECTION_WAIT);
    c.check_no_leader();
    // A quorum again: a leader.
    c.connect((leader2 + 1) % n);
    c.check_one_leader();
    c.connect(leader2);
    c.check_one_leader();
    c
}

fn many_elections(seed: u64, peers: Peers) -> Cluster {
    let n = 7;
    let mut c = cluster(seed, n, peers);
    c.check_one_leader();
    for _ in 0..10 {
        let picks: Vec<usize> = (0..3).map(|_| c.rng.index(n)).collect();
        for &p in &picks {
            c.disconnect(p);
        }
        // Either the current leader is still alive, or the remaining four
        // elect a new one.
        c.check_one_leader();
        for &p in &picks {
            c.connect(p);
        }
    }
    c.check_one_leader();
    c
}

// ----- 2B: log replication -----

fn basic_agree(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = exact_cluster(seed, n, peers);
    // Index 0 is the first leader's no-op.
    for expected_index in 1..=3u64 {
        let cmd = c.fresh();
        assert_eq!(c.applied_count(cmd), 0, "committed before start");
        let index = c.one(cmd, n, false);
        assert_eq!(index, expected_index, "got index {index}: {}", c.describe());
    }
    exactly_once(&c, 1..c.peek_fresh());
    c
}

/// With a reliable network and no faults, every client command commits
/// exactly once.
fn exactly_once(c: &Cluster, cmds: std::ops::Range<i32>) {
    for cmd in cmds {
        let at = c.commit_indices(cmd);
        assert_eq!(at.len(), 1, "command {cmd} committed at {at:?}, not once");
    }
}

fn follower_failure(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = cluster(seed, n, peers);
    let x = c.fresh();
    c.one(x, n, false);
    let leader1 = c.check_one_leader();
    c.disconnect((leader1 + 1) % n);
    // The leader and the remaining follower agree.
    let x = c.fresh();
    c.one(x, n - 1, false);
    c.run_for(ELECTION_WAIT);
    let x = c.fresh();
    c.one(x, n - 1, false);
    // Both followers gone: nothing commits.
    let leader2 = c.check_one_leader();
    c.disconnect((leader2 + 1) % n);
    c.disconnect((leader2 + 2) % n);
    let x = c.fresh();
    c.propose(leader2, x);
    c.run_for(2 * ELECTION_WAIT);
    assert_eq!(c.applied_count(x), 0, "committed without a majority");
    c
}

fn leader_failure(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = cluster(seed, n, peers);
    let x = c.fresh();
    c.one(x, n, false);
    let leader1 = c.check_one_leader();
    c.disconnect(leader1);
    // The remaining followers elect a new leader.
    let x = c.fresh();
    c.one(x, n - 1, true);
    c.run_for(ELECTION_WAIT);
    let x = c.fresh();
    c.one(x, n - 1, true);
    let leader2 = c.check_one_leader();
    c.disconnect(leader2);
    // Submit to every node: no majority anywhere.
    let x = c.fresh();
    for i in 0..n {
        c.propose(i, x);
    }
    c.run_for(2 * ELECTION_WAIT);
    assert_eq!(c.applied_count(x), 0, "committed without a majority");
    c
}

fn fail_agree(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = cluster(seed, n, peers);
    let x = c.fresh();
    c.one(x, n, false);
    let leader = c.check_one_leader();
    c.disconnect((leader + 1) % n);
    for _ in 0..2 {
        let x = c.fresh();
        c.one(x, n - 1, false);
    }
    c.run_for(ELECTION_WAIT);
    for _ in 0..2 {
        let x = c.fresh();
        c.one(x, n - 1, false);
    }
    // The follower comes back and catches up.
    c.connect((leader + 1) % n);
    let x = c.fresh();
    c.one(x, n, true);
    c.run_for(ELECTION_WAIT);
    let x = c.fresh();
    c.one(x, n, true);
    c
}

fn fail_no_agree(seed: u64, peers: Peers) -> Cluster {
    let n = 5;
    let mut c = cluster(seed, n, peers);
    let x = c.fresh();
    c.one(x, n, false);
    let leader = c.check_one_leader();
    for k in 1..=3 {
        c.disconnect((leader + k) % n);
    }
    let x = c.fresh();
    c.propose(leader, x);
    c.run_for(2 * ELECTION_WAIT);
    assert_eq!(c.applied_count(x), 0, "committed without a majority");
    for k in 1..=3 {
        c.connect((leader + k) % n);
    }
    c.check_one_leader();
    let x = c.fresh();
    c.one(x, n, true);
    c.check_each_node_commits();
    c
}

fn concurrent_starts(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = cluster(seed, n, peers);
    for attempt in 0..5 {
        if attempt > 0 {
            c.run_for(3 * ELECTION_WAIT);
        }
        let leader = c.check_one_leader();
        let term = c.raft(leader).expect("up").term();
        let first = c.fresh();
        // Five commands in the same instant, on the leader and on followers.
        let mut cmds = vec![first];
        c.propose(leader, first);
        for k in 0..5 {
            let x = c.fresh();
            cmds.push(x);
            c.propose((leader + k) % n, x);
        }
        let all = |c: &Cluster| cmds.iter().all(|x| c.committed_on(*x, n).is_some());
        let done = c.wait_for(LIVENESS, all);
        let same_term = (0..n).all(|i| c.raft(i).is_some_and(|r| r.term() == term));
        if !same_term {
            continue; // a term change may lose commands: try again
        }
        assert!(
            done,
            "concurrent commands not all committed: {}",
            c.describe()
        );
        for x in &cmds {
            assert_eq!(
                c.commit_indices(*x).len(),
                1,
                "command {x} not committed once"
            );
        }
        return c;
    }
    panic!("term changed too often");
}

fn rejoin(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = cluster(seed, n, peers);
    let x = c.fresh();
    c.one(x, n, true);
    // The leader is partitioned off and gets entries it can't commit.
    let leader1 = c.check_one_leader();
    c.disconnect(leader1);
    for _ in 0..3 {
        let x = c.fresh();
        c.propose(leader1, x);
    }
    // A new leader commits, then is partitioned off too.
    let x = c.fresh();
    c.one(x, 2, true);
    let leader2 = c.check_one_leader();
    c.disconnect(leader2);
    // The old leader comes back: its stale entries must go.
    c.connect(leader1);
    let x = c.fresh();
    c.one(x, 2, true);
    c.connect(leader2);
    let x = c.fresh();
    c.one(x, n, true);
    c.check_each_node_commits();
    c
}

fn backup(seed: u64, peers: Peers) -> Cluster {
    let n = 5;
    let mut c = cluster(seed, n, peers);
    let x = c.fresh();
    c.one(x, n, true);
    // The leader and one follower in a minority.
    let leader1 = c.check_one_leader();
    for k in 2..5 {
        c.disconnect((leader1 + k) % n);
    }
    // 50 commands that won't commit.
    for _ in 0..50 {
        let x = c.fresh();
        c.propose(leader1, x);
    }
    c.run_for(ELECTION_WAIT / 2);
    c.disconnect(leader1);
    c.disconnect((leader1 + 1) % n);
    // The other three commit 50 commands.
    for k in 2..5 {
        c.connect((leader1 + k) % n);
    }
    for _ in 0..50 {
        let x = c.fresh();
        c.one(x, 3, true);
    }
    // Now their leader and one follower are a minority: 50 more that won't commit.
    let leader2 = c.check_one_leader();
    let mut other = (leader1 + 2) % n;
    if leader2 == other {
        other = (leader2 + 1) % n;
    }
    c.disconnect(other);
    for _ in 0..50 {
        let x = c.fresh();
        c.propose(leader2, x);
    }
    c.run_for(ELECTION_WAIT / 2);
    // The original minority comes back with the one cut off.
    for i in 0..n {
        c.disconnect(i);
    }
    c.connect(leader1);
    c.connect((leader1 + 1) % n);
    c.connect(other);
    for _ in 0..50 {
        let x = c.fresh();
        c.one(x, 3, true);
    }
    for i in 0..n {
        c.connect(i);
    }
    let x = c.fresh();
    c.one(x, n, true);
    c.check_each_node_commits();
    c
}

fn count(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = exact_cluster(seed, n, peers);
    c.check_one_leader();
    let total1 = c.stats.rpcs;
    assert!(
        (1..=30).contains(&total1),
        "too many or too few RPCs ({total1}) to elect the first leader"
    );
    let mut total2 = 0;
    let mut ok = false;
    'attempts: for attempt in 0..5 {
        if attempt > 0 {
            c.run_for(3 * ELECTION_WAIT);
        }
        let leader = c.check_one_leader();
        let start = c.stats.rpcs;
        let start_entries = c.stats.entries_sent;
        let start_appends = c.stats.appends;
        let term = c.raft(leader).expect("up").term();
        let iters = 10u64;
        let cmds: Vec<i32> = (0..=iters).map(|_| c.fresh()).collect();
        for x in &cmds {
            c.propose(leader, *x);
        }
        let t0 = c.now;
        let done = c.wait_for(LIVENESS, |c| {
            cmds.iter().all(|x| c.committed_on(*x, n).is_some())
        });
        if (0..n).any(|i| c.raft(i).is_none_or(|r| r.term() != term)) {
            continue 'attempts;
        }
        assert!(done, "commands not committed: {}", c.describe());
        total2 = c.stats.rpcs;
        // MIT's budget: (iters + 1 + 3) * 3; ours also allows one heartbeat
        // round per heartbeat interval of the time it took.
        let heartbeats = (c.now - t0) / (50 * MS) + 1;
        let budget = (iters + 1 + 3) * 3 + heartbeats * (n as u64 - 1);
        let used = total2 - start;
        assert!(
            used <= budget,
            "too many RPCs ({used} > {budget}) for {} commands",
            iters + 1
        );
        // Each command crosses to each follower once (not counting the
        // anchor entry every batch carries).
        let entries = (c.stats.entries_sent - start_entries) - (c.stats.appends - start_appends);
        let entry_budget = (iters + 1) * (n as u64 - 1);
        assert!(
            entries <= entry_budget,
            "too many entries sent ({entries} > {entry_budget})"
        );
        ok = true;
        break;
    }
    assert!(ok, "term changed too often");
    // Idle: only heartbeats.
    c.run_for(ELECTION_WAIT);
    let total3 = c.stats.rpcs;
    assert!(
        total3 - total2 <= 3 * 20,
        "too many RPCs ({}) for 1 second of idleness",
        total3 - total2
    );
    c
}

// ----- 2C: persistence -----

fn persist1(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = cluster(seed, n, peers);
    let x = c.fresh();
    c.one(x, n, true);
    // Crash and restart everyone.
    for i in 0..n {
        c.restart(i);
    }
    for i in 0..n {
        c.connect(i);
    }
    let x = c.fresh();
    c.one(x, n, true);
    let leader1 = c.check_one_leader();
    c.restart(leader1);
    c.connect(leader1);
    let x = c.fresh();
    c.one(x, n, true);
    let leader2 = c.check_one_leader();
    c.disconnect(leader2);
    let x = c.fresh();
    c.one(x, n - 1, true);
    c.restart(leader2);
    c.connect(leader2);
    // Wait for the restarted leader to catch up.
    if !c.wait_for(LIVENESS, |c| c.committed_on(x, n).is_some()) {
        panic!(
            "LIVENESS: restarted node did not catch up: {}",
            c.describe()
        );
    }
    let i3 = (c.check_one_leader() + 1) % n;
    c.disconnect(i3);
    let x = c.fresh();
    c.one(x, n - 1, true);
    c.restart(i3);
    c.connect(i3);
    let x = c.fresh();
    c.one(x, n, true);
    c.check_each_node_commits();
    c
}

fn persist2(seed: u64, peers: Peers) -> Cluster {
    let n = 5;
    let mut c = cluster(seed, n, peers);
    for _ in 0..3 {
        let x = c.fresh();
        c.one(x, n, true);
        let leader1 = c.check_one_leader();
        c.disconnect((leader1 + 1) % n);
        c.disconnect((leader1 + 2) % n);
        let x = c.fresh();
        c.one(x, n - 2, true);
        c.disconnect(leader1);
        c.disconnect((leader1 + 3) % n);
        c.disconnect((leader1 + 4) % n);
        c.restart((leader1 + 1) % n);
        c.restart((leader1 + 2) % n);
        c.connect((leader1 + 1) % n);
        c.connect((leader1 + 2) % n);
        c.run_for(ELECTION_WAIT);
        c.restart((leader1 + 3) % n);
        c.connect((leader1 + 3) % n);
        let x = c.fresh();
        c.one(x, n - 2, true);
        c.connect(leader1);
        c.connect((leader1 + 4) % n);
    }
    let x = c.fresh();
    c.one(x, n, true);
    c.check_each_node_commits();
    c
}

fn persist3(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = cluster(seed, n, peers);
    let x = c.fresh();
    c.one(x, n, true);
    let leader = c.check_one_leader();
    c.disconnect((leader + 2) % n);
    let x = c.fresh();
    c.one(x, 2, true);
    c.crash(leader);
    c.crash((leader + 1) % n);
    c.connect((leader + 2) % n);
    c.restart(leader);
    c.connect(leader);
    let x = c.fresh();
    c.one(x, 2, true);
    c.restart((leader + 1) % n);
    c.connect((leader + 1) % n);
    let x = c.fresh();
    c.one(x, n, true);
    c.check_each_node_commits();
    c
}

/// MIT runs 1000.
const FIGURE8_ITERS: usize = 1000;

/// Figure 8 of the Raft paper: leaders crash right after appending, so
/// entries of old terms sit on a majority without being committed.
fn figure8(seed: u64, peers: Peers) -> Cluster {
    let n = 5;
    let mut c = cluster(seed, n, peers);
    let x = c.fresh();
    c.one(x, 1, true);
    let mut nup = n;
    for _ in 0..FIGURE8_ITERS {
        let mut leader = None;
        for i in 0..n {
            if c.is_up(i)
                && c.raft(i)
                    .is_some_and(|r| r.mode() == raftian::raft::Mode::Leader)
            {
                let x = c.fresh();
                c.propose(i, x);
                leader = Some(i);
            }
        }
        let pause = if c.rng.chance(0.1) {
            c.rng.below(ELECTION_WAIT / 2)
        } else {
            c.rng.below(13 * MS)
        };
        c.run_for(pause);
        if let Some(l) = leader {
            c.crash(l);
            nup -= 1;
        }
        if nup < 3 {
            let s = c.rng.index(n);
            if !c.is_up(s) {
                c.restart(s);
                c.connect(s);
                nup += 1;
            }
        }
    }
    for i in 0..n {
        if !c.is_up(i) {
            c.restart(i);
            c.connect(i);
        }
    }
    let x = c.fresh();
    c.one(x, n, true);
    c.check_each_node_commits();
    c
}

fn unreliable_agree(seed: u64, peers: Peers) -> Cluster {
    let n = 5;
    let mut c = unreliable_cluster(seed, n, peers);
    for _ in 0..50 {
        let cmds: Vec<i32> = (0..5).map(|_| c.fresh()).collect();
        c.all_agree(&cmds, 1);
    }
    c.unreliable = false;
    let x = c.fresh();
    c.one(x, n, true);
    c.check_each_node_commits();
    c
}

fn figure8_unreliable(seed: u64, peers: Peers) -> Cluster {
    let n = 5;
    let mut c = unreliable_cluster(seed, n, peers);
    let x = c.fresh();
    c.one(x, 1, true);
    let mut nup = n;
    for iter in 0..FIGURE8_ITERS {
        if iter == 200 {
            c.long_reordering = true;
        }
        let mut leader = None;
        for i in 0..n {
            if c.raft(i)
                .is_some_and(|r| r.mode() == raftian::raft::Mode::Leader)
            {
                let x = c.fresh();
                c.propose(i, x);
                if c.is_connected(i) {
                    leader = Some(i);
                }
            }
        }
        let pause = if c.rng.chance(0.1) {
            c.rng.below(ELECTION_WAIT / 2)
        } else {
            c.rng.below(13 * MS)
        };
        c.run_for(pause);
        if let Some(l) = leader
            && c.rng.chance(0.5)
        {
            c.disconnect(l);
            nup -= 1;
        }
        if nup < 3 {
            let s = c.rng.index(n);
            if !c.is_connected(s) {
                c.connect(s);
                nup += 1;
            }
        }
    }
    for i in 0..n {
        c.connect(i);
    }
    c.unreliable = false;
    c.long_reordering = false;
    let x = c.fresh();
    c.one(x, n, true);
    c.check_each_node_commits();
    c
}

/// MIT's churn: clients propose all the time while nodes disconnect, crash
/// and restart at random; afterwards everything heals and must agree.
fn churn(seed: u64, peers: Peers, unreliable: bool) -> Cluster {
    let n = 5;
    let mut c = if unreliable {
        unreliable_cluster(seed, n, peers)
    } else {
        cluster(seed, n, peers)
    };
    c.set_clients(true);
    for _ in 0..20 {
        if c.rng.chance(0.2) {
            let i = c.rng.index(n);
            c.disconnect(i);
        }
        if c.rng.chance(0.5) {
            let i = c.rng.index(n);
            if !c.is_up(i) {
                c.restart(i);
            }
            c.connect(i);
        }
        if c.rng.chance(0.2) {
            let i = c.rng.index(n);
            c.crash(i);
        }
        let pause = ELECTION_WAIT * 7 / 10;
        c.run_for(pause);
    }
    c.run_for(ELECTION_WAIT);
    c.unreliable = false;
    for i in 0..n {
        if !c.is_up(i) {
            c.restart(i);
        }
        c.connect(i);
    }
    c.set_clients(false);
    c.run_for(ELECTION_WAIT);
    c.check_one_leader();
    let x = c.fresh();
    c.one(x, n, true);
    c.wait_all_applied();
    c.check_each_node_commits();
    c
}

fn reliable_churn(seed: u64, peers: Peers) -> Cluster {
    churn(seed, peers, false)
}

fn unreliable_churn(seed: u64, peers: Peers) -> Cluster {
    churn(seed, peers, true)
}

/// Not in MIT: arbitrary partitions (including non-transitive ones, where
/// only single links are cut), duplication and crashes; then heal.
fn partitions(seed: u64, peers: Peers) -> Cluster {
    let bits = crate::rng::mix(seed);
    let n = if bits & 1 == 0 { 5 } else { 3 };
    let mut c = if bits & 2 == 0 {
        unreliable_cluster(seed, n, peers)
    } else {
        cluster(seed, n, peers)
    };
    c.set_clients(true);
    for _ in 0..12 {
        match c.rng.below(4) {
            0 => {
                // Two random groups.
                let mut a = Vec::new();
                let mut b = Vec::new();
                for i in 0..n {
                    if c.rng.chance(0.5) {
                        a.push(i);
                    } else {
                        b.push(i);
                    }
                }
                c.partition(&[a, b]);
            }
            1 => {
                // Cut a few single links.
                for _ in 0..c.rng.range(1, 4) {
                    let a = c.rng.index(n);
                    let b = c.rng.index(n);
                    if a != b {
                        c.set_link(a, b, false);
                    }
                }
            }
            2 => {
                let i = c.rng.index(n);
                c.restart(i);
                c.connect(i);
            }
            _ => c.heal(),
        }
        let pause = c.rng.range(50 * MS, 800 * MS);
        c.run_for(pause);
    }
    c.heal();
    c.unreliable = false;
    c.set_clients(false);
    for i in 0..n {
        if !c.is_up(i) {
            c.restart(i);
        }
        c.connect(i);
    }
    c.check_one_leader();
    let x = c.fresh();
    c.one(x, n, true);
    c.wait_all_applied();
    c.check_each_node_commits();
    c
}

/// Not in MIT: a near-fixed election timeout, no pre-vote and replies
/// delayed past the next election, so candidates collide and stale vote
/// replies of earlier terms arrive while a node campaigns again.
fn split_votes(seed: u64, peers: Peers) -> Cluster {
    let n = 5;
    let mut opts = Options::new(n, peers);
    opts.unreliable = true;
    opts.pre_vote = Some(false);
    opts.check_quorum = Some(false);
    opts.request_timeout = Some(Duration::from_secs(1));
    opts.election_timeout = Some((Duration::from_millis(150), Duration::from_millis(165)));
    let mut c = Cluster::new(seed, opts);
    c.long_reordering = true;
    c.set_clients(true);
    for _ in 0..40 {
        let i = c.rng.index(n);
        if c.rng.chance(0.3) {
            c.restart(i);
        }
        c.connect(i);
        let pause = c.rng.range(100 * MS, 1_000 * MS);
        c.run_for(pause);
    }
    c.set_clients(false);
    c.unreliable = false;
    c.long_reordering = false;
    for i in 0..n {
        c.connect(i);
    }
    c.check_one_leader();
    let x = c.fresh();
    c.one(x, n, true);
    c.check_each_node_commits();
    c
}

/// The paper's mode: node 0 leads term 1 for ever, no elections; followers
/// forward their commands to it.
fn static_leader(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut opts = Options::new(n, peers);
    opts.static_leader = Some(0);
    let mut c = Cluster::new(seed, opts);
    let check_static = |c: &Cluster| {
        for i in 0..n {
            if let Some(r) = c.raft(i) {
                assert_eq!(r.term(), 1, "node {i} left term 1");
                assert_eq!(r.leader_id(), Some(0), "node {i} lost the static leader");
                let want = if i == 0 {
                    raftian::raft::Mode::Leader
                } else {
                    raftian::raft::Mode::Follower
                };
                assert_eq!(r.mode(), want, "node {i} changed role");
            }
        }
    };
    // Commands on every node, reliable network: each commits exactly once.
    let first = c.fresh();
    let mut cmds = Vec::new();
    for k in 0..12 {
        let x = if k == 0 { first } else { c.fresh() };
        c.propose(k as usize % n, x);
        cmds.push(x);
        let pause = c.rng.below(20 * MS);
        c.run_for(pause);
        check_static(&c);
    }
    let ok = c.wait_for(LIVENESS, |c| {
        cmds.iter().all(|x| c.committed_on(*x, n).is_some())
    });
    assert!(
        ok,
        "static leader: commands not committed: {}",
        c.describe()
    );
    exactly_once(&c, first..c.peek_fresh());
    // A follower crashes and misses commands, then catches up.
    let f = 1 + c.rng.index(n - 1);
    c.crash(f);
    let more: Vec<i32> = (0..5).map(|_| c.fresh()).collect();
    for (k, x) in more.iter().enumerate() {
        let at = if k % 2 == 0 { 0 } else { 3 - f };
        c.propose(at, *x);
    }
    let ok = c.wait_for(LIVENESS, |c| {
        more.iter().all(|x| c.committed_on(*x, 2).is_some())
    });
    assert!(ok, "static leader: no progress with a follower down");
    c.restart(f);
    c.connect(f);
    let x = c.fresh();
    c.propose(f, x);
    let ok = c.wait_for(LIVENESS, |c| c.committed_on(x, n).is_some());
    assert!(
        ok,
        "static leader: restarted follower not caught up: {}",
        c.describe()
    );
    check_static(&c);
    // The leader itself restarts from its disk and carries on.
    c.restart(0);
    c.connect(0);
    check_static(&c);
    let x = c.fresh();
    c.propose(2, x);
    let ok = c.wait_for(LIVENESS, |c| c.committed_on(x, n).is_some());
    assert!(
        ok,
        "static leader: no progress after the leader restarted: {}",
        c.describe()
    );
    check_static(&c);
    // Chaos: loss, duplication, long delays, crashes of any node, clients
    // everywhere. Still one leader, term 1, and everything safe.
    c.unreliable = true;
    c.long_reordering = c.rng.chance(0.5);
    c.set_clients(true);
    for _ in 0..10 {
        let i = c.rng.index(n);
        if c.rng.chance(0.5) {
            c.restart(i);
            c.connect(i);
        } else {
            c.disconnect(i);
            let pause = c.rng.range(10 * MS, 500 * MS);
            c.run_for(pause);
            c.connect(i);
        }
        let pause = c.rng.range(10 * MS, 500 * MS);
        c.run_for(pause);
        check_static(&c);
    }
    c.set_clients(false);
    c.unreliable = false;
    c.long_reordering = false;
    c.wait_all_applied();
    c.check_each_node_commits();
    check_static(&c);
    c
}

// ----- 2D: log compaction (snapshots every 10 entries) -----

/// Commands between two checks: more than a snapshot's worth.
const SNAPSHOT_EVERY: u64 = 10;

/// Snapshots only matter between Rust nodes: beside a peer taken for an
/// original Python node the leader keeps its whole log (it could not
/// install a snapshot), so these scenarios run with Rust peers.
fn snapshot_cluster(seed: u64, n: usize, _peers: Peers, unreliable: bool) -> Cluster {
    let mut opts = Options::new(n, Peers::Rust);
    opts.snapshot_entries = Some(SNAPSHOT_EVERY);
    opts.unreliable = unreliable;
    Cluster::new(seed, opts)
}

/// MIT's snapcommon: 30 rounds; each round a victim (the leader, or any
/// node) is disconnected or crashed while more than a snapshot's worth of
/// commands commit, then comes back and must catch up (by an installed
/// snapshot when the leader compacted what it missed).
fn snapcommon(seed: u64, peers: Peers, disconnect: bool, unreliable: bool, crash: bool) -> Cluster {
    let n = 3;
    let mut c = snapshot_cluster(seed, n, peers, unreliable);
    let x = c.fresh();
    c.one(x, n, true);
    let mut leader = c.check_one_leader();
    for round in 0..30 {
        let (victim, sender) = if round % 3 == 1 {
            (leader, (leader + 1) % n)
        } else {
            ((leader + 1) % n, leader)
        };
        if disconnect {
            c.disconnect(victim);
            let x = c.fresh();
            c.one(x, n - 1, true);
        }
        if crash {
            c.crash(victim);
            let x = c.fresh();
            c.one(x, n - 1, true);
        }
        for _ in 0..=SNAPSHOT_EVERY {
            let x = c.fresh();
            c.propose(sender, x);
        }
        let x = c.fresh();
        let expected = if disconnect || crash { n - 1 } else { n };
        c.one(x, expected, true);
        if disconnect {
            c.connect(victim);
            let x = c.fresh();
            c.one(x, n, true);
            leader = c.check_one_leader();
        }
        if crash {
            c.restart(victim);
            c.connect(victim);
            let x = c.fresh();
            c.one(x, n, true);
            leader = c.check_one_leader();
        }
    }
    c.wait_all_applied();
    c
}

fn snapshot_basic(seed: u64, peers: Peers) -> Cluster {
    snapcommon(seed, peers, false, false, false)
}

fn snapshot_install(seed: u64, peers: Peers) -> Cluster {
    snapcommon(seed, peers, true, false, false)
}

fn snapshot_install_unreliable(seed: u64, peers: Peers) -> Cluster {
    snapcommon(seed, peers, true, true, false)
}

fn snapshot_install_crash(seed: u64, peers: Peers) -> Cluster {
    snapcommon(seed, peers, false, false, true)
}

fn snapshot_install_uncrash(seed: u64, peers: Peers) -> Cluster {
    snapcommon(seed, peers, false, true, true)
}

/// Every node crashes at once, several times: each restarts from its
/// snapshot and the log after it, and the cluster carries on.
fn snapshot_all_crash(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = snapshot_cluster(seed, n, peers, false);
    let x = c.fresh();
    c.one(x, n, true);
    for _ in 0..5 {
        for _ in 0..=SNAPSHOT_EVERY {
            let x = c.fresh();
            c.one(x, n, true);
        }
        crash_all_and_restart(&mut c, n);
        let x = c.fresh();
        c.one(x, n, true);
    }
    c
}

/// Every node crashes at the same moment and restarts from its disk.
fn crash_all_and_restart(c: &mut Cluster, n: usize) {
    for i in 0..n {
        c.crash(i);
    }
    for i in 0..n {
        c.restart(i);
        c.connect(i);
    }
}

/// A node that restarts right after a snapshot starts from it (MIT's
/// "init": the snapshot is the state it comes back with).
fn snapshot_init(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = snapshot_cluster(seed, n, peers, false);
    let x = c.fresh();
    c.one(x, n, true);
    for _ in 0..=SNAPSHOT_EVERY {
        let x = c.fresh();
        c.one(x, n, true);
    }
    crash_all_and_restart(&mut c, n);
    // A command after the restart, then again, with nothing in between.
    let x = c.fresh();
    c.one(x, n, true);
    crash_all_and_restart(&mut c, n);
    let x = c.fresh();
    c.one(x, n, true);
    c
}

// ----- leadership transfer (thesis 3.10) -----

/// With clients running, the leader hands over again and again (to a
/// chosen node, or the most up-to-date one): the target leads within an
/// election timeout, and nothing proposed meanwhile is lost.
fn transfer_leader(seed: u64, peers: Peers) -> Cluster {
    let n = 5;
    let mut c = cluster(seed, n, Peers::Rust);
    let _ = peers;
    c.set_clients(true);
    for round in 0..6 {
        let leader = c.check_one_leader();
        let target = if round % 2 == 0 {
            Some(((leader + 1 + c.rng.index(n - 1)) % n) as u64)
        } else {
            None
        };
        let chosen = c
            .transfer(leader, target)
            .unwrap_or_else(|e| panic!("transfer refused: {e}: {}", c.describe()));
        let took_over = c.wait_for(ELECTION_WAIT, |c| c.leader() == Some(chosen as usize));
        assert!(
            took_over,
            "node {chosen} did not take over: {}",
            c.describe()
        );
    }
    c.set_clients(false);
    let x = c.fresh();
    c.one(x, n, true);
    c
}

/// A transfer to a node that is cut off cannot happen: the leader gives it
/// up after an election timeout and takes commands again.
fn transfer_times_out(seed: u64, peers: Peers) -> Cluster {
    let n = 3;
    let mut c = cluster(seed, n, Peers::Rust);
    let _ = peers;
    let x = c.fresh();
    c.one(x, n, true);
    let leader = c.check_one_leader();
    let target = (leader + 1) % n;
    c.disconnect(target);
    let x = c.fresh();
    c.one(x, n - 1, true);
    c.transfer(leader, Some(target as u64))
        .expect("transfer starts");
    let x = c.fresh();
    c.propose(leader, x);
    c.run_for(ELECTION_WAIT);
    assert_eq!(
        c.leader(),
        Some(leader),
        "the old leader leads on: {}",
        c.describe()
    );
    assert!(
        c.committed_on(x, n - 1).is_some(),
        "commands went on after the transfer was given up"
    );
    c.connect(target);
    let x = c.fresh();
    c.one(x, n, true);
    c
}

// ----- membership (Ongaro's thesis chapter 4) -----

/// `slots` node slots; the first `members` form the starting configuration.
fn membership_cluster(seed: u64, slots: usize, members: usize, unreliable: bool) -> Cluster {
    let mut opts = Options::new(slots, Peers::Rust);
    opts.members = Some(members);
    opts.unreliable = unreliable;
    Cluster::new(seed, opts)
}

/// Ask the leader for a change until it is accepted and committed (a new
/// leader refuses until it committed an entry of its term; a lost
/// leadership fails the request).
fn change(c: &mut Cluster, what: impl Fn(&mut Cluster, usize) -> u64) -> Reply {
    change_or(c, what, None)
}

/// [`change`], where a retry refused because the first try did take effect
/// (`already`: that refusal, and the answer it stands for) counts as done.
fn change_or(
    c: &mut Cluster,
    what: impl Fn(&mut Cluster, usize) -> u64,
    already: Option<(&str, Reply)>,
) -> Reply {
    let deadline = c.now + 3 * LIVENESS;
    let mut attempt = 0;
    while c.now < deadline {
        attempt += 1;
        let leader = c.check_one_leader();
        let token = what(c, leader);
        match c.wait_conf(token, LIVENESS) {
            Some(Ok(r)) => return r,
            Some(Err(e)) if attempt > 1 && already.as_ref().is_some_and(|(m, _)| e.contains(m)) => {
                return already.expect("checked").1;
            }
            Some(Err(e)) if e.contains("retry") || e.contains("leader") => {
                c.run_for(50 * MS);
            }
            other => panic!("membership change failed: {other:?}: {}", c.describe()),
        }
    }
    panic!(
        "LIVENESS: no membership change got through: {}",
        c.describe()
    )
}

/// Add a node and wait until it votes.
fn join(c: &mut Cluster) -> usize {
    let k = c.rng.next_u64();
    let Reply::ServerAdded(id) = change(c, |c, l| c.add_server(l, k)) else {
        panic!("add_server answered something else")
    };
    let id = id as usize;
    c.boot_joiner(id);
    // A learner that cannot keep up with the load is (rightly) never
    // promoted: on a lossy network with small batches the clients pause.
    let clients = c.clients_on();
    if c.unreliable {
        c.set_clients(false);
    }
    let voter = c.wait_for(3 * LIVENESS, |c| {
        c.latest_membership().is_voter(id as NodeId)
    });
    assert!(voter, "node {id} never promoted: {}", c.describe());
    c.set_clients(clients);
    id
}

/// Remove node `id` (it stops once removed, as the runtime does).
fn leave(c: &mut Cluster, id: usize) {
    let done = Reply::ServerRemoved(id as NodeId);
    let r = change_or(
        c,
        |c, l| c.remove_server(l, id as NodeId),
        Some(("not a member", done.clone())),
    );
    assert_eq!(r, done);
    assert!(!c.latest_membership().contains(id as NodeId));
    c.crash(id);
}

fn members_up(c: &Cluster) -> usize {
    c.latest_membership()
        .ids()
        .filter(|i| c.is_up(*i as usize))
        .count()
}

/// Two nodes join under load, a follower leaves, then the leader itself
/// leaves (it hands over once its removal is committed); a node rejoins
/// with a freed id (its session starts over).
fn membership_scenario(seed: u64, unreliable: bool) -> Cluster {
    let mut c = membership_cluster(seed, 6, 3, unreliable);
    c.set_clients(true);
    let a = join(&mut c);
    let b = join(&mut c);
    assert_eq!((a, b), (3, 4), "the next free ids");
    let leader = c.check_one_leader();
    let follower = (0..6)
        .find(|i| *i != leader && c.latest_membership().contains(*i as NodeId))
        .expect("a follower");
    leave(&mut c, follower);
    let leader = c.check_one_leader();
    leave(&mut c, leader);
    let next = c.check_one_leader();
    assert_ne!(next, leader, "a removed leader does not lead on");
    let again = join(&mut c);
    assert_eq!(again, 5, "ids are never given twice");
    c.set_clients(false);
    let x = c.fresh();
    let n = members_up(&c);
    c.one(x, n, true);
    c
}

fn membership_changes(seed: u64, _peers: Peers) -> Cluster {
    membership_scenario(seed, false)
}

fn membership_unreliable(seed: u64, _peers: Peers) -> Cluster {
    membership_scenario(seed, true)
}

/// A leader cut off with a minority takes a change it cannot commit; the
/// majority elects another leader, whose change goes through; once healed
/// the old one's entry is gone and everyone agrees.
fn membership_partitioned(seed: u64, _peers: Peers) -> Cluster {
    let mut c = membership_cluster(seed, 6, 5, false);
    let x = c.fresh();
    c.one(x, 5, true);
    let old = c.check_one_leader();
    let buddy = (old + 1) % 5;
    let rest: Vec<usize> = (0..5).filter(|i| *i != old && *i != buddy).collect();
    c.partition(&[vec![old, buddy, 5], rest.clone()]);
    let stale = c.add_server(old, 1);
    let took_over = c.wait_for(LIVENESS, |c| c.leader().is_some_and(|l| rest.contains(&l)));
    assert!(took_over, "the majority elects a leader: {}", c.describe());
    let done = Reply::ServerRemoved(buddy as NodeId);
    let remove = |c: &mut Cluster, _| {
        let l = c.leader().filter(|l| rest.contains(l)).unwrap_or(rest[0]);
        c.remove_server(l, buddy as NodeId)
    };
    let r = change_or(&mut c, remove, Some(("not a member", done.clone())));
    assert_eq!(r, Reply::ServerRemoved(buddy as NodeId));
    c.crash(buddy);
    c.heal();
    let answered = c.wait_for(LIVENESS, |c| c.conf_result(stale).is_some());
    assert!(answered, "the stale change gets an answer");
    assert!(
        c.conf_result(stale).is_some_and(|r| r.is_err()),
        "a change of a deposed leader is not reported done: {:?}",
        c.conf_result(stale)
    );
    assert!(!c.latest_membership().contains(5), "its entry was dropped");
    let x = c.fresh();
    c.one(x, 4, true);
    c
}

/// The single-server bug sequence (Ongaro, raft-dev 2015): a leader's
/// uncommitted change reaches only the new node, another leader is
/// elected without it and changes the membership at once. With the fix
/// (a change only after an entry of the leader's own term committed) the
/// invariants hold; the simulation checks them after every step.
fn single_server_bug(seed: u64, _peers: Peers) -> Cluster {
    let mut c = membership_cluster(seed, 5, 4, false);
    let x = c.fresh();
    c.one(x, 4, true);
    let old = c.check_one_leader();
    // Node 4 joins as a learner; the leader can then reach only it.
    let token = c.add_server(old, 1);
    c.boot_joiner(4);
    c.wait_for(LIVENESS, |c| c.conf_result(token).is_some());
    let others: Vec<usize> = (0..4).filter(|i| *i != old).collect();
    c.partition(&[vec![old, 4], others.clone()]);
    let leader_elsewhere = c.wait_for(LIVENESS, |c| {
        c.leader().is_some_and(|l| others.contains(&l))
    });
    assert!(leader_elsewhere, "{}", c.describe());
    let new = c.leader().expect("checked");
    // At once, before its no-op may have committed.
    let early = c.remove_server(new, old as NodeId);
    c.run_for(ELECTION_WAIT);
    if let Some(Err(e)) = c.conf_result(early) {
        assert!(e.contains("retry") || e.contains("leader"), "{e}");
    }
    c.heal();
    c.run_for(ELECTION_WAIT);
    let x = c.fresh();
    let n = members_up(&c);
    c.one(x, n.min(4), true);
    c
}

// ----- cheating (issue 11) -----

/// Five nodes with keys; node 4 lies, with every message it can make
/// (well formed, signed as itself): appends of newer terms with no votes
/// or forged ones, forged clicks in other nodes' names, forwards with
/// huge terms, vote requests far ahead. The honest nodes keep every
/// invariant (among them: nobody leads without a majority's votes, a
/// forged click is never applied), and the game goes on.
fn lying_member(seed: u64, _peers: Peers) -> Cluster {
    let n = 5;
    let liar = 4;
    let mut opts = Options::new(n, Peers::Rust);
    opts.keys = true;
    let mut c = Cluster::new(seed, opts);
    c.set_clients(true);
    let x = c.fresh();
    c.one(x, n, true);
    let garbage = sim_sig(99, b"garbage");
    for k in 0..200u64 {
        let to = c.rng.index(liar);
        let term = c.raft(to).map_or(1, |r| r.term());
        let last = c.raft(to).and_then(|r| r.log().last_index()).unwrap_or(0);
        let heartbeat = |term, proof| {
            Rpc::AppendEntries(AppendEntries {
                entries: None,
                term,
                commit_index: Some(last + 50),
                all_log: false,
                proof,
            })
        };
        let forged_click = |index: Option<u64>, seq| WireEntry {
            term,
            index,
            command: Command::Int(2),
            client: Some(ClientId {
                node: 0,
                incarnation: 1,
                seq,
            }),
            sig: Some(garbage.clone()),
        };
        let rpc = match k % 6 {
            0 => heartbeat(term + 1 + c.rng.below(3), None),
            1 => {
                // Its own vote is real; the others' are not.
                let own = Vote {
                    term: term + 1,
                    candidate: liar as u64,
                    voter: liar as u64,
                };
                let proof: VoteProof = vec![
                    (liar as u64, sim_sig(liar as u64, &vote_message(&own))),
                    (0, garbage.clone()),
                    (1, garbage.clone()),
                ]
                .into();
                heartbeat(term + 1, Some(proof))
            }
            2 => Rpc::AppendEntries(AppendEntries {
                entries: Some(vec![forged_click(Some(last + 1), 1_000 + k)]),
                term,
                commit_index: Some(last + 1),
                all_log: false,
                proof: None,
            }),
            3 => Rpc::AppendEntries(AppendEntries {
                entries: Some(vec![forged_click(None, 2_000 + k)]),
                term: term + 500,
                commit_index: None,
                all_log: false,
                proof: None,
            }),
            4 => Rpc::RequestVote(VoteRequest {
                term: term + 5_000,
                candidate_id: liar as u64,
                last_log_index: Some(last + 1_000),
                last_log_term: Some(term + 5_000),
                transfer: true,
            }),
            _ => Rpc::PreVote(VoteRequest {
                term: term + 1,
                candidate_id: liar as u64,
                last_log_index: Some(last + 1_000),
                last_log_term: Some(term),
                transfer: false,
            }),
        };
        c.inject(to, liar, rpc);
        let pause = 20 * MS + c.rng.below(20 * MS);
        c.run_for(pause);
    }
    for i in 0..liar {
        let Some(r) = c.raft(i) else { continue };
        assert!(
            r.term() < 1_000,
            "node {i} was pushed to term {}: {}",
            r.term(),
            c.describe()
        );
        let forged = r
            .entries()
            .iter()
            .find(|e| e.client.is_some_and(|id| id.node == 0 && id.seq >= 1_000));
        assert!(forged.is_none(), "node {i} took a forged click: {forged:?}");
    }
    c.set_clients(false);
    let x = c.fresh();
    c.one(x, n, true);
    c
}

/// Thesis 10.2.1: a leader sends its new entries before its own fsync.
/// Here it crashes right after sending them, before writing them: what it
/// lost may still commit through its followers, nothing committed is lost,
/// every invariant holds, and it rejoins.
fn leader_crash_mid_write(seed: u64, peers: Peers) -> Cluster {
    let n = if seed.is_multiple_of(2) { 5 } else { 3 };
    let mut c = cluster(seed, n, peers);
    c.set_clients(true);
    for _ in 0..4 {
        let leader = c.check_one_leader();
        let deadline = c.now + 10 * ELECTION_WAIT;
        let mut crashed = leader;
        c.crash_before_fsync(leader);
        while c.crash_armed() {
            assert!(c.now < deadline, "no leader wrote an entry in time");
            // Leadership may move meanwhile: arm whoever leads now, and
            // give it a command to write.
            crashed = c.check_one_leader();
            c.crash_before_fsync(crashed);
            let x = c.fresh();
            c.propose(crashed, x);
            c.run_for(10 * MS);
        }
        assert!(!c.is_up(crashed), "node {crashed} did not crash");
        // The others go on without it.
        let x = c.fresh();
        c.one(x, n - 1, true);
        c.restart(crashed);
        c.connect(crashed);
    }
    c.set_clients(false);
    let x = c.fresh();
    c.one(x, n, true);
    c.check_each_node_commits();
    c
}
