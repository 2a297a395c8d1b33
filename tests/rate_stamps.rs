//! Rate-limit stamps (issue 11), on the pure core: a leader with a rate
//! limit stamps its clock before each window's clicks, never back from a
//! stamp it held; a follower takes no stamp that goes backwards or carries
//! another limit.

use std::time::Duration;

use raftian::raft::*;

// Shared with core_rules.rs, which uses all of it.
#[allow(dead_code)]
#[path = "support/driver.rs"]
mod driver;
use driver::Node;

/// Wall clock (Unix ms) at core time zero.
const WALL: u64 = 1_800_000_000_000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Node `id` of the paper's static setup (0 leads) with a limit of 3.
fn node(id: NodeId, wall: u64) -> Node {
    let mut c = RaftConfig::new(id, (0..3).filter(|p| *p != id).collect());
    c.static_leader = Some(0);
    c.rate_limit = Some(3);
    c.wall_origin_ms = wall;
    Node::new(Raft::new(c, HardState::default(), vec![], Duration::ZERO).unwrap())
}

fn stamps(n: &Node) -> Vec<u64> {
    let s = n.entries().iter().filter_map(|e| match e.command {
        Command::Stamp(s) => Some(s.ms),
        _ => None,
    });
    s.collect()
}

fn stamp_entry(index: u64, ms: u64, limit: u32) -> WireEntry {
    WireEntry {
        term: 1,
        index: Some(index),
        command: Command::Stamp(Stamp { ms, limit }),
        client: None,
        sig: None,
    }
}

/// A stamp a node's log holds at start (index 0, term 1).
fn held_stamp(ms: u64, limit: u32) -> Entry {
    Entry {
        term: 1,
        index: 0,
        command: Command::Stamp(Stamp { ms, limit }),
        client: None,
        sig: None,
    }
}

fn batch(entries: Vec<WireEntry>) -> AppendEntries {
    AppendEntries {
        entries: Some(entries),
        term: 1,
        commit_index: None,
        all_log: true,
        proof: None,
    }
}

#[test]
fn the_leader_stamps_once_per_window_before_clicks() {
    let mut l = node(0, WALL);
    l.service_actions(ms(10));
    assert!(stamps(&l).is_empty(), "no clicks, no stamp");
    l.propose([Command::Int(1), Command::Int(2)]);
    l.service_actions(ms(20));
    assert_eq!(stamps(&l), vec![WALL + 20]);
    let first = &l.entries()[0];
    assert!(matches!(first.command, Command::Stamp(s) if s.limit == 3));
    l.propose([Command::Int(1)]);
    l.service_actions(ms(500));
    assert_eq!(stamps(&l).len(), 1, "same window");
    l.propose([Command::Int(1)]);
    l.service_actions(ms(1_020));
    assert_eq!(stamps(&l), vec![WALL + 20, WALL + 1_020]);
}

#[test]
fn a_leader_whose_clock_is_behind_still_stamps_forward() {
    // Its log holds a stamp from a leader whose clock was 60 s ahead.
    let mut l = node(0, WALL);
    let mut c = RaftConfig::new(0, vec![1, 2]);
    c.static_leader = Some(0);
    c.rate_limit = Some(3);
    c.wall_origin_ms = WALL;
    let ahead = held_stamp(WALL + 60_000, 3);
    let mut l2 = Node::new(Raft::new(c, HardState::default(), vec![ahead], ms(0)).unwrap());
    l2.propose([Command::Int(1)]);
    l2.service_actions(ms(5));
    // Its first stamp is not below the one it holds, nor a window past it:
    // quick leader changes do not push stamps ahead of the clocks.
    assert_eq!(stamps(&l2), vec![WALL + 60_000, WALL + 60_000]);
    // Later ones advance with its own clock.
    l2.propose([Command::Int(1)]);
    l2.service_actions(ms(1_005));
    assert_eq!(
        stamps(&l2),
        vec![WALL + 60_000, WALL + 60_000, WALL + 61_000]
    );
    // And a plain leader is unaffected.
    l.propose([Command::Int(1)]);
    l.service_actions(ms(5));
    assert_eq!(stamps(&l), vec![WALL + 5]);
}

#[test]
fn a_follower_refuses_stamps_that_go_back_or_change_the_limit() {
    let mut f = node(1, WALL);
    let back = batch(vec![
        stamp_entry(0, WALL + 5_000, 3),
        stamp_entry(1, WALL, 3),
    ]);
    let err = f.append_entries_rpc(&back, Some(0), ms(1)).unwrap_err();
    assert!(err.0.contains("goes back"), "{err}");
    let other = batch(vec![stamp_entry(0, WALL, 1_000)]);
    let err = f.append_entries_rpc(&other, Some(0), ms(1)).unwrap_err();
    assert!(err.0.contains("limit 1000"), "{err}");
    assert!(f.entries().is_empty(), "nothing taken");
    let good = batch(vec![
        stamp_entry(0, WALL, 3),
        stamp_entry(1, WALL + 1_000, 3),
    ]);
    assert!(f.append_entries_rpc(&good, Some(0), ms(2)).unwrap().success);
    // The log's last stamp counts for the next batch too.
    let next = AppendEntries {
        all_log: false,
        ..batch(vec![
            stamp_entry(1, WALL + 1_000, 3),
            stamp_entry(2, WALL + 500, 3),
        ])
    };
    let err = f.append_entries_rpc(&next, Some(0), ms(3)).unwrap_err();
    assert!(err.0.contains("goes back"), "{err}");
    assert_eq!(f.entries().len(), 2);
}

#[test]
fn stamps_replicate_to_followers() {
    let mut l = node(0, WALL);
    let mut f = node(1, WALL - 10_000);
    l.propose([Command::Int(2)]);
    l.service_actions(ms(5));
    let entries: Vec<WireEntry> = l.entries().iter().map(WireEntry::from).collect();
    assert!(
        f.append_entries_rpc(&batch(entries), Some(0), ms(6))
            .unwrap()
            .success
    );
    assert_eq!(
        stamps(&f),
        stamps(&l),
        "a follower's own clock does not matter"
    );
}

#[test]
fn a_stamp_the_batch_replaces_does_not_count() {
    // The follower holds a deposed leader's stamp at index 1 (term 1); the
    // new leader's batch replaces it with entries of term 2.
    let mut c = RaftConfig::new(1, vec![0, 2]);
    c.rate_limit = Some(3);
    c.wall_origin_ms = WALL;
    let mut f = Node::new(Raft::new(c, HardState::default(), vec![], Duration::ZERO).unwrap());
    let old = batch(vec![
        stamp_entry(0, WALL, 3),
        stamp_entry(1, WALL + 9_000, 3),
    ]);
    assert!(f.append_entries_rpc(&old, Some(0), ms(1)).unwrap().success);
    let mut replace = stamp_entry(1, WALL + 1_000, 3);
    replace.term = 2;
    let mut click = stamp_entry(2, WALL + 2_000, 3);
    click.term = 2;
    let next = AppendEntries {
        term: 2,
        all_log: false,
        ..batch(vec![stamp_entry(0, WALL, 3), replace, click])
    };
    let r = f.append_entries_rpc(&next, Some(0), ms(2)).unwrap();
    assert!(r.success);
    assert_eq!(stamps(&f), vec![WALL, WALL + 1_000, WALL + 2_000]);
}

#[test]
fn a_leader_without_a_limit_of_its_own_stamps_with_the_applied_one() {
    // A node that joined has no limit in its configuration; alone, it
    // leads and applies the stamp its log holds.
    let mut c = RaftConfig::new(0, vec![]);
    c.wall_origin_ms = WALL;
    let held = held_stamp(WALL, 5);
    let mut l = Node::new(Raft::new(c, HardState::default(), vec![held], ms(0)).unwrap());
    for t in 1_000..1_004 {
        l.service_actions(ms(t));
    }
    assert_eq!(l.mode(), Mode::Leader);
    assert!(l.last_applied() >= Some(0), "the held stamp is applied");
    l.propose([Command::Int(1)]);
    l.service_actions(ms(2_000));
    let last = l.entries().iter().rev().find_map(|e| match e.command {
        Command::Stamp(s) => Some(s),
        _ => None,
    });
    assert_eq!(
        last,
        Some(Stamp {
            ms: WALL + 2_000,
            limit: 5
        })
    );
}

#[test]
fn a_received_stamp_gives_no_limit_until_applied() {
    // A leader without a limit of its own, holding a stamp nobody
    // committed (a lying leader's, sent to it alone), stamps nothing.
    let mut c = RaftConfig::new(0, vec![1, 2]);
    c.static_leader = Some(0);
    c.wall_origin_ms = WALL;
    let held = held_stamp(WALL, 7);
    let mut l = Node::new(Raft::new(c, HardState::default(), vec![held], ms(0)).unwrap());
    l.propose([Command::Int(1)]);
    l.service_actions(ms(1_000));
    assert_eq!(stamps(&l), vec![WALL], "no new stamp");
}

#[test]
fn nobody_but_the_leader_writes_a_stamp() {
    let mut f = node(1, WALL);
    // Forwarded (nil index): a member's way round the leader's checks.
    let mut forwarded = stamp_entry(0, WALL + 9_000_000, 3);
    forwarded.index = None;
    let req = AppendEntries {
        all_log: false,
        ..batch(vec![forwarded])
    };
    let err = f
        .append_entries_rpc(&req, Some(2), ms(1))
        .map(|_| ())
        .unwrap_err();
    assert!(err.0.contains("must be a click"), "{err}");
    // A stamp naming a client is no leader's own.
    let mut named = stamp_entry(0, WALL, 3);
    named.client = Some(ClientId {
        node: 2,
        incarnation: 1,
        seq: 1,
    });
    let err = f
        .append_entries_rpc(&batch(vec![named]), Some(0), ms(1))
        .unwrap_err();
    assert!(err.0.contains("names a client"), "{err}");
    assert!(f.entries().is_empty(), "nothing taken");
}

#[test]
fn a_stamp_from_before_this_node_started_may_carry_another_limit() {
    // Stamped under limit 7 before the cluster restarted with limit 3: a
    // lagging follower still takes the log it is sent.
    let mut c = RaftConfig::new(1, vec![0, 2]);
    c.rate_limit = Some(3);
    c.wall_origin_ms = WALL;
    let mut f = Node::new(Raft::new(c, HardState::default(), vec![], Duration::ZERO).unwrap());
    let mut fresh = stamp_entry(1, WALL + 1_000, 3);
    fresh.term = 2;
    let req = AppendEntries {
        term: 2,
        ..batch(vec![stamp_entry(0, WALL - 60_000, 7), fresh.clone()])
    };
    assert!(f.append_entries_rpc(&req, Some(0), ms(1)).unwrap().success);
    // A stamp made since must carry this node's limit, whatever term it
    // claims (a leader may write entries of an older term).
    let anchors = [stamp_entry(0, WALL - 60_000, 7), fresh.clone()];
    for (claimed, anchor) in [(1, &anchors[0]), (2, &anchors[1])] {
        let index = anchor.index.unwrap() + 1;
        let mut wrong = stamp_entry(index, WALL + 2_000, 7);
        wrong.term = claimed;
        let req = AppendEntries {
            term: 2,
            all_log: false,
            ..batch(vec![anchor.clone(), wrong])
        };
        let err = f.append_entries_rpc(&req, Some(0), ms(2)).unwrap_err();
        assert!(err.0.contains("limit 7"), "{err}");
    }
    let mut zero = stamp_entry(2, WALL - 60_000, 0);
    zero.term = 2;
    let zero = AppendEntries {
        term: 2,
        all_log: false,
        ..batch(vec![fresh, zero])
    };
    let err = f.append_entries_rpc(&zero, Some(0), ms(2)).unwrap_err();
    assert!(err.0.contains("limit 0"), "{err}");
    assert_eq!(f.entries().len(), 2);
}

#[test]
fn a_new_terms_stamp_may_be_below_the_last_but_not_within_a_term() {
    let mut c = RaftConfig::new(1, vec![0, 2]);
    c.rate_limit = Some(3);
    c.wall_origin_ms = WALL;
    let mut f = Node::new(Raft::new(c, HardState::default(), vec![], Duration::ZERO).unwrap());
    let req = batch(vec![stamp_entry(0, WALL + 9_000, 3)]);
    assert!(f.append_entries_rpc(&req, Some(0), ms(1)).unwrap().success);
    // A new leader whose clock is behind: taken (it opens no window).
    let mut lower = stamp_entry(1, WALL + 1_000, 3);
    lower.term = 2;
    let req = AppendEntries {
        term: 2,
        all_log: false,
        ..batch(vec![stamp_entry(0, WALL + 9_000, 3), lower.clone()])
    };
    assert!(f.append_entries_rpc(&req, Some(0), ms(2)).unwrap().success);
    // But that leader's own next stamp may not go back from it.
    let mut back = stamp_entry(2, WALL + 500, 3);
    back.term = 2;
    let req = AppendEntries {
        term: 2,
        all_log: false,
        ..batch(vec![lower, back])
    };
    let err = f.append_entries_rpc(&req, Some(0), ms(3)).unwrap_err();
    assert!(err.0.contains("goes back"), "{err}");
}

#[test]
fn an_election_mode_leader_keeps_pace_with_a_floor_only_so_far_ahead() {
    // It holds a stamp 60 s ahead of its clock (a fast clock, or a liar's).
    let mut c = RaftConfig::new(0, vec![]);
    c.rate_limit = Some(3);
    c.wall_origin_ms = WALL;
    let ahead = held_stamp(WALL + 60_000, 3);
    let mut l = Node::new(Raft::new(c, HardState::default(), vec![ahead], ms(0)).unwrap());
    // Alone, it leads once its election timeout passes.
    l.service_actions(ms(1_000));
    l.service_actions(ms(1_001));
    assert_eq!(l.mode(), Mode::Leader);
    l.propose([Command::Int(1)]);
    l.service_actions(ms(1_010));
    assert_eq!(stamps(&l), vec![WALL + 60_000, WALL + 1_010 + 15_000]);
}

#[test]
fn a_deposed_leader_hears_of_the_newer_term_whatever_its_stamps() {
    let mut c = RaftConfig::new(1, vec![0, 2]);
    c.rate_limit = Some(3);
    c.wall_origin_ms = WALL;
    let hs = HardState {
        term: 3,
        ..HardState::default()
    };
    let mut f = Node::new(Raft::new(c, hs, vec![], Duration::ZERO).unwrap());
    let mut wrong = stamp_entry(0, WALL, 7);
    wrong.term = 2;
    let req = AppendEntries {
        term: 2,
        ..batch(vec![wrong])
    };
    let reply = f.append_entries_rpc(&req, Some(0), ms(1)).unwrap();
    assert!(!reply.success);
    assert_eq!(reply.term, 3);
}
