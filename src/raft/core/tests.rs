use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One loop turn of the runtime after `msg`: step it, tick, take the Ready.
fn turn(r: &mut Raft, now: Duration, msg: Msg) -> Ready {
    r.step(now, msg);
    r.step(now, Msg::Tick);
    let mut ready = r.ready();
    r.advance();
    let early = std::mem::take(&mut ready.early);
    ready.messages.splice(0..0, early);
    ready
}

fn request(r: &mut Raft, now: Duration, from: NodeId, o: &Outbound) -> Reply {
    let msg = Msg::Request {
        token: 1,
        from: Some(from),
        rpc: o.rpc.clone(),
    };
    let ready = turn(r, now, msg);
    ready.answers[0].result.clone().expect("a valid request")
}

/// Commands on their way to a leader (nil indices).
fn is_forward(o: &Outbound) -> bool {
    matches!(&o.rpc, Rpc::AppendEntries(a)
        if a.entries.as_ref().is_some_and(|e| e.iter().any(|e| e.index.is_none())))
}

fn reply(from: NodeId, seq: u64, reply: Reply) -> Msg {
    Msg::Reply {
        from,
        seq,
        result: Ok(reply),
        kind: None,
    }
}

/// Deliver `out` from `from` to `to` and the replies back; returns what
/// the sender sends next.
fn pump(from: &mut Raft, to: &mut Raft, out: Vec<Outbound>, now: Duration) -> Vec<Outbound> {
    let mut next = Vec::new();
    for o in out {
        assert_eq!(o.to, to.id());
        let r = request(to, now, from.id(), &o);
        next.extend(turn(from, now, reply(to.id(), o.seq, r)).messages);
    }
    next
}

/// Found by the simulation (tests/sim basic_agree seed 26, max_batch 1): the
/// batch limit counted the anchor entry, so a limit of 1 sent only the
/// anchor and replication never advanced.
#[test]
fn batch_limit_of_one_still_replicates() {
    let mut cfg = RaftConfig::new(0, vec![1]);
    cfg.static_leader = Some(0);
    cfg.max_batch = 1;
    let mut leader = Raft::new(cfg, HardState::default(), Vec::new(), ms(0)).unwrap();
    let mut fcfg = RaftConfig::new(1, vec![0]);
    fcfg.static_leader = Some(0);
    let mut follower = Raft::new(fcfg, HardState::default(), Vec::new(), ms(0)).unwrap();
    leader.step(ms(0), Msg::PeerKind(1, PeerKind::Rust));
    leader.step(ms(0), Msg::Propose((1..=3).map(Command::Int).collect()));
    let mut out = turn(&mut leader, ms(1), Msg::Tick).messages;
    for round in 0..20 {
        for o in &out {
            if let Rpc::AppendEntries(a) = &o.rpc {
                assert!(a.entries.as_ref().map_or(0, Vec::len) <= 2, "anchor + 1");
            }
        }
        out = pump(&mut leader, &mut follower, out, ms(2 + round));
        if out.is_empty() {
            out = turn(&mut leader, ms(100 * (round + 1)), Msg::Tick).messages;
        }
    }
    assert_eq!(follower.entries().len(), 3, "{:?}", follower.entries());
    assert_eq!(leader.commit_index(), Some(2));
}

/// Found by the simulation (unreliable_churn seed 19, partitions seed
/// 181): a forwarded batch acknowledged by a leader whose term is newer
/// was forwarded again after the step-down, and a different (or an
/// original Python) leader would append its commands twice.
#[test]
fn forward_acknowledged_by_newer_term_is_not_resent() {
    let hs = HardState {
        term: 3,
        voted_for: None,
    };
    let mut f = Raft::new(RaftConfig::new(1, vec![0, 2]), hs, Vec::new(), ms(0)).unwrap();
    let heartbeat = |term, from| Msg::Request {
        token: 9,
        from: Some(from),
        rpc: Rpc::AppendEntries(AppendEntries {
            entries: None,
            term,
            commit_index: None,
            all_log: false,
            proof: None,
        }),
    };
    turn(&mut f, ms(1), heartbeat(3, 0));
    assert_eq!(f.leader_id(), Some(0));
    let out = turn(&mut f, ms(2), Msg::Propose(vec![Command::Int(7)])).messages;
    let fwd = out
        .iter()
        .find(|o| is_forward(o))
        .expect("the command is forwarded");
    let ack = Reply::Append(AppendReply {
        success: true,
        term: 4,
    });
    turn(&mut f, ms(3), reply(0, fwd.seq, ack));
    assert_eq!(f.term(), 4);
    // Node 2 now leads term 4: the acknowledged command must not go there.
    turn(&mut f, ms(4), heartbeat(4, 2));
    for t in [5, 100, 500] {
        let out = turn(&mut f, ms(t), Msg::Tick).messages;
        assert!(!out.iter().any(is_forward), "forwarded again: {out:?}");
    }
    assert_eq!(f.queued_commands(), 0);
}

#[test]
fn ready_hands_out_each_change_once() {
    let mut cfg = RaftConfig::new(0, vec![]);
    cfg.static_leader = Some(0);
    let mut r = Raft::new(cfg, HardState::default(), Vec::new(), ms(0)).unwrap();
    assert!(
        r.has_ready(),
        "term 1 of the static setup must be persisted"
    );
    let first = turn(&mut r, ms(1), Msg::Propose(vec![Command::Int(2)]));
    assert_eq!(first.persist.hard_state.map(|h| h.term), Some(1));
    assert_eq!(first.persist.append.len(), 1);
    assert!(
        first.committed.is_empty(),
        "the leader's own copy counts only once durable"
    );
    assert_eq!(r.log().persisted(), Some(0));
    assert!(r.has_ready(), "advance() committed it: a Ready waits");
    assert_eq!(r.next_deadline(), Duration::ZERO, "and is due now");
    let second = r.ready();
    r.advance();
    assert!(second.persist.is_empty(), "nothing is persisted twice");
    assert_eq!(
        second.committed.len(),
        1,
        "a one-node cluster commits once its own write is durable"
    );
    let id = second.committed[0].entry.client.expect("a client command");
    assert_eq!((id.node, id.incarnation, id.seq), (0, 1, 1));
    assert_eq!(r.unapplied_commands(), 0, "applied: nothing to resend");
    assert!(!r.has_ready());
    assert!(turn(&mut r, ms(2), Msg::Tick).is_empty());
}

/// Thesis 10.2.1: a leader's appends leave before its own fsync (`early`),
/// and a majority of followers commits an entry without the leader's copy;
/// a vote request waits for the term to be durable.
#[test]
fn leader_sends_before_its_fsync_and_counts_itself_once_durable() {
    let mut cfg = RaftConfig::new(0, vec![1, 2, 3, 4]);
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    let mut r = Raft::new(cfg, HardState::default(), Vec::new(), ms(0)).unwrap();
    for p in 1..=4 {
        r.step(ms(0), Msg::PeerKind(p, PeerKind::Rust));
    }
    r.step(ms(1000), Msg::Tick);
    let votes = r.ready();
    assert!(votes.persist.hard_state.is_some(), "the new term and vote");
    assert!(votes.early.is_empty(), "vote requests wait for the fsync");
    assert_eq!(votes.messages.len(), 4);
    r.advance();
    let granted = Reply::Vote(VoteReply {
        term: r.term(),
        vote_granted: true,
        sig: None,
    });
    for o in &votes.messages {
        r.step(ms(1001), reply(o.to, o.seq, granted.clone()));
    }
    assert_eq!(r.mode(), Mode::Leader);
    // Its no-op: written and sent in one turn, the appends first.
    r.step(ms(1001), Msg::Tick);
    let noop = r.ready();
    assert!(noop.persist.hard_state.is_none());
    assert_eq!(noop.persist.append.len(), 1);
    assert_eq!(noop.early.len(), 4, "{noop:?}");
    assert!(noop.messages.is_empty());
    let index = noop.persist.append[0].index;
    let ok = Reply::Append(AppendReply {
        success: true,
        term: r.term(),
    });
    // Two followers and the leader's write (not done yet) are no majority.
    for o in &noop.early[..2] {
        r.step(ms(1002), reply(o.to, o.seq, ok.clone()));
    }
    assert_eq!(r.commit_index(), None, "its own copy is not durable yet");
    // A third follower makes a majority without the leader.
    let o = &noop.early[2];
    r.step(ms(1002), reply(o.to, o.seq, ok.clone()));
    assert_eq!(r.commit_index(), Some(index));
    r.advance();
    assert_eq!(r.log().persisted(), Some(index));

    // Another entry: two followers, then the leader's own write, commit it.
    r.step(ms(1003), Msg::Propose(vec![Command::Int(5)]));
    r.step(ms(1003), Msg::Tick);
    let next = r.ready();
    assert_eq!(next.persist.append.len(), 1);
    let index = next.persist.append[0].index;
    let fresh: Vec<&Outbound> = next.early.iter().filter(|o| o.to <= 2).collect();
    assert_eq!(fresh.len(), 2, "followers 1 and 2 were idle: {next:?}");
    for o in fresh {
        r.step(ms(1004), reply(o.to, o.seq, ok.clone()));
    }
    assert!(r.commit_index() < Some(index));
    r.advance();
    assert_eq!(r.commit_index(), Some(index), "its own write completes it");
    assert!(r.has_ready());
}

/// A one-voter cluster commits with its own write, in `advance`: under a
/// click every turn it must still compact (the snapshot the runtime takes
/// right after `advance` describes the index its `Ready` asked for).
#[test]
fn a_lone_voter_under_steady_clicks_still_compacts() {
    let mut cfg = RaftConfig::new(0, vec![]);
    cfg.snapshot_entries = 5;
    let mut r = Raft::new(cfg, HardState::default(), vec![], ms(0)).unwrap();
    r.step(ms(1_000), Msg::Tick);
    r.step(ms(1_001), Msg::Tick);
    assert_eq!(r.mode(), Mode::Leader);
    for i in 0..40u64 {
        let now = ms(1_002 + i);
        r.step(now, Msg::Propose(vec![Command::Int(1)]));
        r.step(now, Msg::Tick);
        let ready = r.ready();
        r.advance();
        if let Some(index) = ready.snapshot_due {
            let app = serde_json::Map::new();
            r.step(now, Msg::Snapshot { index, app });
        }
    }
    assert!(
        r.log().snapshot().is_some(),
        "no snapshot after 40 turns with snapshot_entries = 5"
    );
}

/// A (lying) leader's conflicting batch cuts the follower's log below what
/// it matched before: the commit index it then sends is capped at the
/// log's end, so nothing is committed that the node does not hold.
#[test]
fn a_cut_log_caps_the_match_and_the_commit() {
    let mut r = Raft::new(
        RaftConfig::new(1, vec![0, 2]),
        HardState::default(),
        vec![],
        ms(0),
    )
    .unwrap();
    let entry = |index: u64, term: u64| WireEntry {
        term,
        index: Some(index),
        command: Command::Int(1),
        client: None,
        sig: None,
    };
    let append = |entries: Vec<WireEntry>, commit: Option<u64>, all_log: bool| Msg::Request {
        token: 1,
        from: Some(0),
        rpc: Rpc::AppendEntries(AppendEntries {
            entries: Some(entries),
            term: 2,
            commit_index: commit,
            all_log,
            proof: None,
        }),
    };
    let old: Vec<WireEntry> = (0..10).map(|i| entry(i, 1)).collect();
    turn(&mut r, ms(1), append(old, None, true));
    assert_eq!(r.log().last_index(), Some(9));
    turn(
        &mut r,
        ms(2),
        append(vec![entry(0, 1), entry(1, 2), entry(2, 2)], None, false),
    );
    assert_eq!(r.log().last_index(), Some(2), "the batch cut the log");
    turn(&mut r, ms(3), append(vec![], Some(9), false));
    assert_eq!(r.commit_index(), Some(2));
    assert!(
        r.next_deadline() > ms(3),
        "nothing left to apply: no busy loop"
    );
}
