//! The paper's Raft rules (sections 3.3-3.4), one test each, driving the
//! pure core directly: no sockets, no clocks.

use std::time::Duration;

use raftian::raft::*;

#[path = "support/driver.rs"]
mod driver;
use driver::Node;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn e(term: u64, index: u64, c: i32) -> Entry {
    Entry {
        term,
        index,
        command: Command::Int(c),
        client: None,
        sig: None,
    }
}

fn we(term: u64, index: Option<u64>, c: i32) -> WireEntry {
    WireEntry {
        term,
        index,
        command: Command::Int(c),
        client: None,
        sig: None,
    }
}

fn leader_log() -> Vec<Entry> {
    (4..=7).map(|i| e(1, i, 5)).collect()
}

fn bob_log() -> Vec<Entry> {
    (0..=3).map(|i| e(1, i, 9)).collect()
}

/// The paper's static setup: node 0 leads, 1..4 follow, all at term 1.
fn static_node(id: NodeId, log: Vec<Entry>) -> Node {
    let peers = (0..5).filter(|p| *p != id).collect();
    let mut c = RaftConfig::new(id, peers);
    c.static_leader = Some(0);
    Node::new(Raft::new(c, HardState::default(), log, Duration::ZERO).unwrap())
}

fn append(entries: Option<Vec<WireEntry>>, commit: Option<u64>, all_log: bool) -> AppendEntries {
    AppendEntries {
        entries,
        term: 1,
        commit_index: commit,
        all_log,
        proof: None,
    }
}

fn indices(r: &Node) -> Vec<u64> {
    r.entries().iter().map(|e| e.index).collect()
}

fn appends_to(out: &[Outbound], to: NodeId) -> Vec<&AppendEntries> {
    out.iter()
        .filter(|m| m.to == to)
        .filter_map(|m| match &m.rpc {
            Rpc::AppendEntries(a) => Some(a),
            _ => None,
        })
        .collect()
}

/// Deliver `out` to `followers` (by id) and feed the replies back to the
/// leader, until nothing more is sent.
fn pump(leader: &mut Node, followers: &mut [Node], mut out: Vec<Outbound>, now: Duration) {
    for _ in 0..200 {
        if out.is_empty() {
            return;
        }
        let mut next = Vec::new();
        for m in out {
            let f = followers.iter_mut().find(|f| f.id() == m.to).unwrap();
            let reply = match &m.rpc {
                Rpc::AppendEntries(a) => {
                    Reply::Append(f.append_entries_rpc(a, Some(0), now).unwrap())
                }
                Rpc::IsLogEmpty => Reply::LogEmpty(f.is_log_empty()),
                other => panic!("unexpected {other:?}"),
            };
            f.take_persist();
            next.extend(leader.on_reply(m.to, m.seq, Ok(reply), now));
        }
        out = next;
    }
    panic!("replication did not settle");
}

#[test]
fn follower_rejects_a_lower_term() {
    let mut f = election_node(1, 3);
    let mut req = append(Some(vec![we(1, Some(0), 9)]), None, true);
    req.term = 2;
    assert!(f.append_entries_rpc(&req, Some(0), ms(1)).unwrap().success);
    req.term = 1;
    let r = f.append_entries_rpc(&req, Some(2), ms(2)).unwrap();
    assert_eq!(
        r,
        AppendReply {
            success: false,
            term: 2
        }
    );
}

#[test]
fn static_followers_refuse_other_terms_and_other_senders() {
    let mut f = static_node(1, bob_log());
    for (term, from) in [(0, None), (2, None), (2, Some(0)), (1, Some(3))] {
        let mut req = append(
            Some(vec![we(1, Some(3), 9), we(1, Some(4), 2)]),
            Some(4),
            false,
        );
        req.term = term;
        let r = f.append_entries_rpc(&req, from, ms(1));
        assert!(r.is_err(), "term {term} from {from:?} accepted: {r:?}");
        assert_eq!((f.term(), indices(&f)), (1, vec![0, 1, 2, 3]));
        assert_eq!(f.commit_index(), None);
        assert!(f.take_persist().is_none_or(|p| p.append.is_empty()));
    }
    // Forwarded clicks (nil index) still reach the leader from anyone.
    let mut leader = static_node(0, leader_log());
    let fwd = append(Some(vec![we(1, None, 2)]), None, false);
    assert!(
        leader
            .append_entries_rpc(&fwd, Some(3), ms(2))
            .unwrap()
            .success
    );
}

#[test]
fn empty_follower_takes_the_python_leaders_whole_log_once() {
    // The original leader sends its log then its last entry again and the
    // new ones (4,5,6,7,7,8) with all_log false to an empty follower.
    let mut f = static_node(1, vec![]);
    assert!(f.is_log_empty());
    let batch = [4, 5, 6, 7, 7, 8]
        .iter()
        .map(|i| we(1, Some(*i), if *i == 8 { 1 } else { 5 }))
        .collect();
    let r = f
        .append_entries_rpc(&append(Some(batch), None, false), None, ms(1))
        .unwrap();
    assert!(r.success);
    assert_eq!(indices(&f), vec![4, 5, 6, 7, 8]);
    let p = f.take_persist().unwrap();
    assert_eq!(p.append.len(), 5);
}

#[test]
fn rust_leader_batch_to_an_empty_follower_is_refused() {
    // From a Rust leader (sender known) a batch that does not start the log
    // is refused: the leader probes and sends all_log instead.
    let mut f = static_node(1, vec![]);
    let r = f
        .append_entries_rpc(
            &append(
                Some(vec![we(1, Some(7), 5), we(1, Some(8), 1)]),
                None,
                false,
            ),
            Some(0),
            ms(1),
        )
        .unwrap();
    assert!(!r.success);
    assert!(f.is_log_empty());
}

#[test]
fn divergent_follower_rejects_until_all_log_then_matches() {
    let mut f = static_node(1, bob_log());
    let r = f
        .append_entries_rpc(
            &append(
                Some(vec![we(1, Some(7), 5), we(1, Some(8), 1)]),
                None,
                false,
            ),
            None,
            ms(1),
        )
        .unwrap();
    assert!(!r.success, "bob has no entry (term 1, index 7)");
    assert_eq!(indices(&f), vec![0, 1, 2, 3]);
    let all: Vec<WireEntry> = (4..=7)
        .map(|i| we(1, Some(i), 5))
        .chain([we(1, Some(8), 1)])
        .collect();
    let r = f
        .append_entries_rpc(&append(Some(all), None, true), None, ms(2))
        .unwrap();
    assert!(r.success);
    assert_eq!(indices(&f), vec![4, 5, 6, 7, 8]);
    let p = f.take_persist().unwrap();
    assert_eq!(p.truncate_from, Some(0));
}

#[test]
fn appending_is_idempotent() {
    let mut f = static_node(1, leader_log());
    let b = || {
        append(
            Some(vec![we(1, Some(7), 5), we(1, Some(8), 1)]),
            None,
            false,
        )
    };
    assert!(f.append_entries_rpc(&b(), None, ms(1)).unwrap().success);
    let v = f.log_version();
    assert!(f.append_entries_rpc(&b(), None, ms(2)).unwrap().success);
    assert_eq!(indices(&f), vec![4, 5, 6, 7, 8]);
    assert_eq!(f.log_version(), v, "a duplicate batch changes nothing");
}

#[test]
fn follower_commit_never_passes_what_it_shares_with_the_leader() {
    let mut f = static_node(1, leader_log());
    // The leader says 20 is committed, but we only know we match it up to 8.
    let r = f
        .append_entries_rpc(
            &append(
                Some(vec![we(1, Some(7), 5), we(1, Some(8), 1)]),
                Some(20),
                false,
            ),
            None,
            ms(1),
        )
        .unwrap();
    assert!(r.success);
    assert_eq!(f.commit_index(), Some(8));
    // A repeated commit index is fine (the original rejects it).
    let r = f
        .append_entries_rpc(
            &append(Some(vec![we(1, Some(8), 1)]), Some(8), false),
            None,
            ms(2),
        )
        .unwrap();
    assert!(r.success);
    let orders: Vec<i32> = f
        .take_orders()
        .into_iter()
        .map(|e| match e.command {
            Command::Int(c) => c,
            Command::Text(_) | Command::Config(_) | Command::Stamp(_) => -1,
        })
        .collect();
    assert_eq!(orders, vec![5, 5, 5, 5, 1], "applied in log order, once");
    assert!(f.take_orders().is_empty());
}

#[test]
fn nil_heartbeat_lets_the_follower_apply() {
    let mut f = static_node(1, leader_log());
    f.append_entries_rpc(
        &append(
            Some(vec![we(1, Some(7), 5), we(1, Some(8), 3)]),
            None,
            false,
        ),
        None,
        ms(1),
    )
    .unwrap();
    assert_eq!(f.commit_index(), None);
    // The Python leader's heartbeat: nil entries, its commit index.
    let r = f
        .append_entries_rpc(&append(None, Some(8), false), None, ms(4))
        .unwrap();
    assert!(r.success);
    f.service_actions(ms(5));
    assert_eq!(f.last_applied(), Some(8));
    assert_eq!(f.take_orders().last().unwrap().command, Command::Int(3));
}

#[test]
fn malformed_batches_change_nothing() {
    let mut f = static_node(1, leader_log());
    let bad = [
        append(Some(vec![we(1, Some(7), 5), we(1, None, 1)]), None, false),
        append(
            Some(vec![we(1, Some(7), 5), we(1, Some(9), 1)]),
            None,
            false,
        ),
        append(Some(vec![we(2, Some(7), 5)]), None, false),
        append(Some(vec![we(1, None, 1)]), None, true),
    ];
    for b in bad {
        assert!(f.append_entries_rpc(&b, None, ms(1)).is_err(), "{b:?}");
    }
    assert_eq!(indices(&f), vec![4, 5, 6, 7]);
    assert!(
        f.take_persist()
            .is_none_or(|p| p.append.is_empty() && p.truncate_from.is_none())
    );
}

#[test]
fn leader_batches_queued_commands_and_walks_back_to_all_log() {
    let mut leader = static_node(0, leader_log());
    let mut bobs: Vec<Node> = (1..5).map(|i| static_node(i, bob_log())).collect();
    leader.propose([Command::Int(1), Command::Int(2)]);
    let out = leader.service_actions(ms(5));
    assert_eq!(
        indices(&leader),
        vec![4, 5, 6, 7, 8, 9],
        "one entry per queued command"
    );
    // Peers are not known to be Rust nodes: probe is_log_empty first.
    assert!(out.iter().all(|m| m.rpc == Rpc::IsLogEmpty));
    pump(&mut leader, &mut bobs, out, ms(5));
    for b in &bobs {
        assert_eq!(b.entries(), leader.entries());
    }
    assert_eq!(leader.commit_index(), Some(9));
}

#[test]
fn legacy_followers_get_no_nil_heartbeats_and_each_commit_once() {
    let mut leader = static_node(0, leader_log());
    let mut bobs: Vec<Node> = (1..5).map(|i| static_node(i, leader_log())).collect();
    leader.propose([Command::Int(1)]);
    let out = leader.service_actions(ms(5));
    pump(&mut leader, &mut bobs, out, ms(5));
    let mut sent = Vec::new();
    for t in [60, 120, 180] {
        let out = leader.service_actions(ms(t));
        for a in appends_to(&out, 1) {
            assert!(
                a.entries.is_some(),
                "nil entries fault on a Python follower"
            );
            sent.extend(a.commit_index);
        }
        pump(&mut leader, &mut bobs, out, ms(t));
    }
    let mut dedup = sent.clone();
    dedup.dedup();
    assert_eq!(
        sent, dedup,
        "a commit index goes to a follower once: {sent:?}"
    );
    assert!(bobs.iter().all(|b| b.commit_index() == Some(8)));
}

#[test]
fn followers_forward_commands_until_the_leader_acknowledges() {
    let mut f = static_node(2, leader_log());
    f.propose([Command::Int(3)]);
    let out = f.service_actions(ms(5));
    assert_eq!(out.len(), 1);
    let m = &out[0];
    assert_eq!(m.to, 0);
    let Rpc::AppendEntries(a) = &m.rpc else {
        panic!("forward is an append")
    };
    let mut click = we(1, None, 3);
    click.client = Some(ClientId {
        node: 2,
        incarnation: 1,
        seq: 1,
    });
    assert_eq!(a.entries.as_ref().unwrap(), &vec![click]);
    // The leader is unreachable: the command is kept and sent again.
    let again = f.on_reply(0, m.seq, Err(RpcFailure::Unreachable("down".into())), ms(6));
    assert!(again.is_empty(), "waits before retrying");
    let retry = f.service_actions(ms(100));
    assert_eq!(retry.len(), 1);
    let ok = f.on_reply(
        0,
        retry[0].seq,
        Ok(Reply::Append(AppendReply {
            success: true,
            term: 1,
        })),
        ms(101),
    );
    assert!(ok.is_empty());
    assert_eq!(f.queued_commands(), 0);

    // The leader queues forwarded commands like its own clicks.
    let mut leader = static_node(0, leader_log());
    let Rpc::AppendEntries(a) = &retry[0].rpc else {
        unreachable!()
    };
    assert!(
        leader
            .append_entries_rpc(a, Some(2), ms(102))
            .unwrap()
            .success
    );
    leader.service_actions(ms(105));
    let mut entry = e(1, 8, 3);
    entry.client = a.entries.as_ref().unwrap()[0].client;
    assert!(entry.client.is_some());
    assert_eq!(leader.entries().last().unwrap(), &entry);
}

#[test]
fn a_dead_follower_does_not_block_the_others() {
    let mut leader = static_node(0, leader_log());
    let mut live: Vec<Node> = (1..4).map(|i| static_node(i, leader_log())).collect();
    leader.propose([Command::Int(4)]);
    let out = leader.service_actions(ms(5));
    // Node 4 never answers; everything else goes through.
    let (to_dead, to_live): (Vec<_>, Vec<_>) = out.into_iter().partition(|m| m.to == 4);
    assert_eq!(to_dead.len(), 1);
    pump(&mut leader, &mut live, to_live, ms(5));
    assert_eq!(leader.commit_index(), Some(8));
    assert!(live.iter().all(|f| f.entries() == leader.entries()));
}

#[test]
fn terms_that_overflow_the_wire_are_refused() {
    let mut f = static_node(1, leader_log());
    let mut req = append(None, None, false);
    req.term = WIRE_MAX + 1;
    assert!(f.append_entries_rpc(&req, None, ms(1)).is_err());
    assert_eq!(f.term(), 1);
}

fn election_node(id: NodeId, n: u64) -> Node {
    let peers = (0..n).filter(|p| *p != id).collect();
    let cfg = RaftConfig::new(id, peers);
    Node::new(Raft::new(cfg, HardState::default(), vec![], Duration::ZERO).unwrap())
}

#[test]
fn a_failed_pre_vote_never_bumps_the_term() {
    // Alone of three (its peers are down), a node keeps pre-voting: its
    // term stays where it was, so it cannot depose anyone when it returns.
    let mut r = election_node(0, 3);
    for t in (0..5000).step_by(5) {
        for m in r.service_actions(ms(t)) {
            assert!(matches!(m.rpc, Rpc::PreVote(_)), "{m:?}");
            r.on_reply(
                m.to,
                m.seq,
                Err(RpcFailure::Unreachable("down".into())),
                ms(t),
            );
        }
    }
    assert_eq!(r.term(), 0);
    assert_eq!(r.mode(), Mode::PreCandidate);
}

#[test]
fn a_forwarded_click_sent_twice_is_applied_once() {
    let mut f = static_node(2, leader_log());
    f.propose([Command::Int(3)]);
    let first = f.service_actions(ms(5)).pop().unwrap();
    let Rpc::AppendEntries(a) = &first.rpc else {
        unreachable!()
    };
    let id = a.entries.as_ref().unwrap()[0].client;
    assert!(id.is_some(), "a click carries its client id");
    // The answer is lost after the (Rust) leader got it: the same click
    // goes again, with the same id.
    f.note_peer_kind(0, true);
    f.on_reply(0, first.seq, Err(RpcFailure::Timeout("slow".into())), ms(6));
    let again = f.service_actions(ms(200)).pop().unwrap();
    assert_eq!(again.rpc, first.rpc, "a retry keeps its id");

    let mut leader = static_node(0, leader_log());
    for _ in 0..2 {
        let r = leader.append_entries_rpc(a, Some(2), ms(101)).unwrap();
        assert!(r.success);
    }
    let mut bobs: Vec<Node> = (1..5).map(|i| static_node(i, leader_log())).collect();
    let out = leader.service_actions(ms(105));
    pump(&mut leader, &mut bobs, out, ms(106));
    assert_eq!(
        indices(&leader),
        vec![4, 5, 6, 7, 8, 9],
        "both copies reach the log"
    );
    let clicks: Vec<_> = leader
        .take_orders()
        .into_iter()
        .filter(|e| e.client.is_some())
        .collect();
    assert_eq!(clicks.len(), 1, "one click, one order: {clicks:?}");
    assert_eq!(clicks[0].client, id);
}

#[test]
fn a_timed_out_forward_to_an_original_leader_is_not_resent() {
    // The original leader cannot drop a copy: a resend could double a click.
    let mut f = static_node(2, leader_log());
    f.propose([Command::Int(3)]);
    let first = f.service_actions(ms(5)).pop().unwrap();
    f.on_reply(0, first.seq, Err(RpcFailure::Timeout("slow".into())), ms(6));
    assert!(f.service_actions(ms(500)).is_empty());
    // A refused connection never delivered it: that one is resent.
    f.propose([Command::Int(4)]);
    let second = f.service_actions(ms(505)).pop().unwrap();
    f.on_reply(
        0,
        second.seq,
        Err(RpcFailure::Unreachable("refused".into())),
        ms(506),
    );
    assert_eq!(f.service_actions(ms(600)).len(), 1);
}

/// A follower that restarted knows its log but not where it matches the
/// leader, so a nil-entries heartbeat could not tell it the commit index:
/// it refuses the heartbeat, the leader probes, and it catches up.
#[test]
fn a_restarted_follower_learns_the_commit_index_from_its_leader() {
    let mut leader = static_node(0, leader_log());
    let mut bobs: Vec<Node> = (1..5).map(|i| static_node(i, leader_log())).collect();
    for b in 1..5 {
        leader.note_peer_kind(b, true);
    }
    leader.propose([Command::Int(2)]);
    let out = leader.service_actions(ms(5));
    pump(&mut leader, &mut bobs, out, ms(6));
    let commit = leader.commit_index();
    assert_eq!(commit, Some(8));
    // Bob 1 restarts from its log, with nothing committed yet.
    let log = bobs[0].entries().to_vec();
    let mut c = RaftConfig::new(1, vec![0, 2, 3, 4]);
    c.static_leader = Some(0);
    bobs[0] = Node::new(
        Raft::new(
            c,
            HardState {
                term: 1,
                voted_for: None,
            },
            log,
            ms(7),
        )
        .unwrap(),
    );
    assert_eq!(bobs[0].commit_index(), None);
    let out = leader.service_actions(ms(100));
    pump(&mut leader, &mut bobs, out, ms(101));
    let out = leader.service_actions(ms(200));
    pump(&mut leader, &mut bobs, out, ms(201));
    assert_eq!(
        bobs[0].commit_index(),
        commit,
        "it caught up with the commit index"
    );
    assert_eq!(bobs[0].last_applied(), commit);
}

// ----- signed commands (a cluster with keys) -----

/// Signatures for tests: node n's signature is 64 bytes of n.
#[derive(Debug)]
struct TestKeys;

impl signing::CommandAuth for TestKeys {
    fn sign(&self, id: &ClientId, _: &Command) -> Option<Sig> {
        Some(std::sync::Arc::new([id.node as u8; 64]))
    }
    fn verify(&self, m: &Membership, id: &ClientId, _: &Command, sig: &Sig) -> bool {
        m.get(id.node).is_some_and(|k| k.public_key.is_some())
            && sig.iter().all(|b| *b == id.node as u8)
    }
    fn sign_vote(&self, v: &signing::Vote) -> Option<Sig> {
        Some(std::sync::Arc::new([v.voter as u8 + 100; 64]))
    }
    fn verify_vote(&self, m: &Membership, v: &signing::Vote, sig: &Sig) -> bool {
        m.is_voter(v.voter) && sig.iter().all(|b| *b == v.voter as u8 + 100)
    }
}

/// Node `id` of a cluster {0, 1, 2} where every node has a key, in the
/// paper's static mode (0 leads) or in election mode.
fn keyed(id: NodeId, static_leader: bool) -> Node {
    let members = (0..3).map(|i| Member {
        id: i,
        name: format!("n{i}"),
        addr: format!("127.0.0.1:{}", 7000 + i),
        voter: true,
        public_key: Some(format!("key{i}")),
    });
    let mut c = RaftConfig::new(id, (0..3).filter(|p| *p != id).collect());
    c.members = Some(std::sync::Arc::new(
        Membership::new(members.collect()).unwrap(),
    ));
    c.static_leader = static_leader.then_some(0);
    c.command_auth = Some(std::sync::Arc::new(TestKeys));
    Node::new(Raft::new(c, HardState::default(), vec![], Duration::ZERO).unwrap())
}

fn keyed_node(id: NodeId) -> Node {
    keyed(id, true)
}

fn click_by(node: NodeId, seq: u64, target: i32, sig_of: u8) -> WireEntry {
    WireEntry {
        term: 1,
        index: None,
        command: Command::Int(target),
        client: Some(ClientId {
            node,
            incarnation: 1,
            seq,
        }),
        sig: Some(std::sync::Arc::new([sig_of; 64])),
    }
}

#[test]
fn a_forged_click_is_never_applied_and_does_not_shadow_the_real_one() {
    let mut f = keyed_node(1);
    // A leader's batch: node 2's real click, a click "by node 2" it forged
    // (wrong signature), and a bare click with no taker at all.
    let mut forged = click_by(2, 2, 3, 9);
    let mut real = click_by(2, 1, 1, 2);
    let mut bare = we(1, None, 2);
    for (i, e) in [&mut real, &mut forged, &mut bare].into_iter().enumerate() {
        e.index = Some(i as u64);
    }
    let batch = append(Some(vec![real, forged, bare]), Some(2), true);
    assert!(
        f.append_entries_rpc(&batch, Some(0), ms(1))
            .unwrap()
            .success
    );
    f.service_actions(ms(2));
    let orders: Vec<i32> = f
        .take_orders()
        .iter()
        .filter_map(|e| match e.command {
            Command::Int(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(orders, [1], "only the signed click is applied");
    // Node 2's real seq 2 still applies: the forgery did not take its place.
    let noop = WireEntry {
        index: Some(3),
        ..we(1, None, 0)
    };
    let seq2 = WireEntry {
        index: Some(4),
        ..click_by(2, 2, 4, 2)
    };
    // The batch starts with its anchor, the last entry held.
    let anchor = WireEntry {
        index: Some(2),
        ..we(1, None, 2)
    };
    let next = append(Some(vec![anchor, noop, seq2]), Some(4), false);
    assert!(f.append_entries_rpc(&next, Some(0), ms(3)).unwrap().success);
    f.service_actions(ms(4));
    let later: Vec<Command> = f.take_orders().into_iter().map(|e| e.command).collect();
    assert_eq!(later, [Command::Int(0), Command::Int(4)]);
}

#[test]
fn a_leader_drops_forwarded_clicks_that_fail_their_signature() {
    let mut leader = keyed_node(0);
    let fwd = append(
        Some(vec![click_by(1, 1, 2, 7), click_by(1, 2, 3, 1)]),
        None,
        false,
    );
    assert!(
        leader
            .append_entries_rpc(&fwd, Some(1), ms(1))
            .unwrap()
            .success
    );
    leader.service_actions(ms(2));
    let clicks: Vec<_> = leader
        .log()
        .entries()
        .iter()
        .filter(|e| e.client.is_some())
        .map(|e| e.command.clone())
        .collect();
    assert_eq!(
        clicks,
        [Command::Int(3)],
        "the forged one never reaches the log"
    );
    // Its own clicks are signed as it takes them.
    leader.propose([Command::Int(2)]);
    leader.service_actions(ms(3));
    let own = leader.log().entries().last().unwrap();
    assert_eq!(own.sig.as_deref(), Some(&[0u8; 64]));
}

fn keyed_voter(id: NodeId) -> Node {
    keyed(id, false)
}

fn vote_sig(voter: u8) -> Sig {
    std::sync::Arc::new([voter + 100; 64])
}

#[test]
fn a_leader_without_signed_votes_is_not_followed() {
    let mut f = keyed_voter(1);
    let heartbeat = |term, proof: Option<VoteProof>| AppendEntries {
        entries: None,
        term,
        commit_index: None,
        all_log: false,
        proof,
    };
    // Node 2 claims term 5 with no votes, then with only its own.
    let err = f
        .append_entries_rpc(&heartbeat(5, None), Some(2), ms(1))
        .unwrap_err();
    assert!(err.0.contains("no proof"), "{err}");
    let alone: VoteProof = vec![(2, vote_sig(2))].into();
    assert!(
        f.append_entries_rpc(&heartbeat(5, Some(alone)), Some(2), ms(2))
            .is_err()
    );
    // Forged votes (node 0's vote signed by someone else) do not count.
    let forged: VoteProof = vec![(2, vote_sig(2)), (0, vote_sig(9))].into();
    assert!(
        f.append_entries_rpc(&heartbeat(5, Some(forged)), Some(2), ms(3))
            .is_err()
    );
    // A forward cannot move the term either.
    let fwd = append(Some(vec![click_by(2, 1, 3, 2)]), None, false);
    let fwd = AppendEntries { term: 9, ..fwd };
    f.append_entries_rpc(&fwd, Some(2), ms(4)).unwrap();
    assert_eq!((f.term(), f.leader_id()), (0, None), "nothing changed");
    // A majority of signed votes: followed from now on, without the proof.
    let votes: VoteProof = vec![(2, vote_sig(2)), (0, vote_sig(0))].into();
    assert!(
        f.append_entries_rpc(&heartbeat(5, Some(votes)), Some(2), ms(5))
            .unwrap()
            .success
    );
    assert_eq!((f.term(), f.leader_id()), (5, Some(2)));
    assert!(
        f.append_entries_rpc(&heartbeat(5, None), Some(2), ms(6))
            .unwrap()
            .success
    );
}

#[test]
fn votes_are_signed_and_the_winner_sends_them() {
    let mut c = keyed_voter(0);
    c.note_peer_kind(1, true);
    c.note_peer_kind(2, true);
    // Campaign: pre-vote, then the vote.
    let out = c.service_actions(ms(400));
    let pre: Vec<_> = out
        .iter()
        .filter(|o| matches!(o.rpc, Rpc::PreVote(_)))
        .collect();
    assert!(!pre.is_empty());
    let granted = |term, sig| {
        Ok(Reply::Vote(VoteReply {
            term,
            vote_granted: true,
            sig,
        }))
    };
    let asks = c.on_reply(1, pre[0].seq, granted(0, None), ms(401));
    let ask = |to: NodeId| {
        let o = asks
            .iter()
            .find(|o| o.to == to && matches!(o.rpc, Rpc::RequestVote(_)));
        o.expect("a vote request").seq
    };
    // An unsigned grant does not count; a signed one does.
    c.on_reply(1, ask(1), granted(1, None), ms(402));
    assert_ne!(c.mode(), Mode::Leader, "an unsigned vote is no vote");
    let req2_seq = ask(2);
    let out = c.on_reply(2, req2_seq, granted(1, Some(vote_sig(2))), ms(403));
    assert_eq!(c.mode(), Mode::Leader);
    let first = out.iter().find_map(|o| match &o.rpc {
        Rpc::AppendEntries(a) => Some(a.proof.clone()),
        _ => None,
    });
    let proof = first.flatten().expect("the first append carries the votes");
    let voters: Vec<NodeId> = proof.iter().map(|(v, _)| *v).collect();
    assert!(voters.contains(&2) && voters.contains(&0), "{voters:?}");
}

#[test]
fn a_leader_that_leaves_our_clicks_out_is_named() {
    let mut f = static_node(1, bob_log());
    f.note_peer_kind(0, true);
    f.propose([Command::Int(3)]);
    let fwd = f
        .service_actions(ms(5))
        .pop()
        .expect("the click is forwarded");
    let ok = Ok(Reply::Append(AppendReply {
        success: true,
        term: 1,
    }));
    f.on_reply(0, fwd.seq, ok, ms(6));
    let patience = Duration::from_secs(5);
    // The leader keeps sending heartbeats, and never commits the click.
    for t in (100..=7_000).step_by(100) {
        let hb = append(None, None, false);
        f.append_entries_rpc(&hb, Some(0), ms(t)).unwrap();
        if t == 3_000 {
            assert_eq!(f.censored_by(ms(t), patience), None, "not yet");
        }
    }
    assert_eq!(f.censored_by(ms(7_000), patience), Some(0));
    // A leader not heard from is down, not censoring.
    assert_eq!(f.censored_by(ms(60_000), patience), None);
}

#[test]
fn a_follower_refuses_a_batch_holding_a_forged_click() {
    let mut f = keyed_voter(1);
    let votes: VoteProof = vec![(2, vote_sig(2)), (0, vote_sig(0))].into();
    let batch = |entries, proof| AppendEntries {
        entries: Some(entries),
        term: 5,
        commit_index: None,
        all_log: true,
        proof,
    };
    let forged = WireEntry {
        index: Some(1),
        term: 5,
        ..click_by(0, 1, 3, 9)
    };
    let real = WireEntry {
        index: Some(0),
        term: 5,
        ..click_by(0, 1, 2, 0)
    };
    let err = f
        .append_entries_rpc(
            &batch(vec![real.clone(), forged], Some(votes)),
            Some(2),
            ms(1),
        )
        .unwrap_err();
    assert!(err.0.contains("entry 1 fails its signature check"), "{err}");
    assert!(f.entries().is_empty(), "nothing taken");
    assert!(
        f.append_entries_rpc(&batch(vec![real], None), Some(2), ms(2))
            .unwrap()
            .success,
        "its signed entries are taken"
    );
    assert_eq!(f.entries().len(), 1);
}

#[test]
fn with_keys_a_leader_cannot_switch_keys_off_or_swap_one() {
    let mut f = keyed_voter(1);
    let votes: VoteProof = vec![(2, vote_sig(2)), (0, vote_sig(0))].into();
    let config = |key0: Option<&str>| {
        let members = (0..3).map(|i| Member {
            id: i,
            name: format!("n{i}"),
            addr: format!("127.0.0.1:{}", 7000 + i),
            voter: true,
            public_key: if i == 0 {
                key0.map(str::to_owned)
            } else {
                Some(format!("key{i}"))
            },
        });
        WireEntry {
            term: 5,
            index: Some(0),
            command: Command::Config(std::sync::Arc::new(
                Membership::new(members.collect()).unwrap(),
            )),
            client: None,
            sig: None,
        }
    };
    let batch = |e: WireEntry, proof| AppendEntries {
        entries: Some(vec![e]),
        term: 5,
        commit_index: None,
        all_log: true,
        proof,
    };
    for bad in [None, Some("the leader's own key")] {
        let err = f
            .append_entries_rpc(&batch(config(bad), Some(votes.clone())), Some(2), ms(1))
            .unwrap_err();
        assert!(err.0.contains("drops or changes a member's key"), "{err}");
    }
    assert!(f.entries().is_empty());
    let same = batch(config(Some("key0")), Some(votes));
    assert!(f.append_entries_rpc(&same, Some(2), ms(2)).unwrap().success);
}

#[test]
fn with_keys_an_absurd_term_is_not_taken() {
    let mut f = keyed_voter(1);
    let req = VoteRequest {
        term: 1_000_000,
        candidate_id: 2,
        last_log_index: None,
        last_log_term: None,
        transfer: false,
    };
    let msg = Msg::Request {
        token: 1,
        from: Some(2),
        rpc: Rpc::RequestVote(req),
    };
    f.step_raw(msg, ms(1000));
    assert_eq!(f.term(), 0, "the term did not move");
}

#[test]
fn without_keys_nothing_is_signed() {
    // A node that holds a key, in a cluster without keys (beside original
    // nodes): its entries must stay {term, index, command}.
    let mut c = RaftConfig::new(0, vec![]);
    c.command_auth = Some(std::sync::Arc::new(TestKeys));
    let mut n = Node::new(Raft::new(c, HardState::default(), vec![], Duration::ZERO).unwrap());
    n.service_actions(ms(400));
    n.propose([Command::Int(2)]);
    n.service_actions(ms(401));
    let e = n.log().entries().last().unwrap();
    assert_eq!(e.command, Command::Int(2));
    assert!(e.sig.is_none(), "unsigned");
}
