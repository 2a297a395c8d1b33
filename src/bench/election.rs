//! `raftian bench election`: SIGKILL the leader, time the fail-over.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::cluster::{Cluster, Launch, TempRoot};
use super::stats::{ms, percentile};
use super::{ElectionArgs, LeaderMode, NODES};

struct Round {
    killed: usize,
    new_leader: Option<usize>,
    term: u64,
    elected_ms: Option<f64>,
    committed_ms: Option<f64>,
    rejoin_ms: Option<f64>,
}

pub(super) async fn election(
    a: &ElectionArgs,
    exe: &Launch,
    root: &TempRoot,
) -> Result<String, String> {
    let timeout = Duration::from_secs_f64(a.round_timeout_secs);
    let mut cl = Cluster::start(
        exe,
        root.path.join("election"),
        LeaderMode::Election,
        a.storage,
        None,
        None,
    )?;
    cl.wait_settled(0, Duration::from_secs(20)).await?;
    let mut rounds = Vec::new();
    for round in 1..=a.rounds {
        let (old, st) = cl.wait_settled(0, timeout).await?;
        let old_last = st.last_index();
        let t_kill = Instant::now();
        if a.graceful {
            cl.sigterm(old);
        } else {
            cl.kill(old);
        }
        let survivors: Vec<usize> = (0..NODES).filter(|i| *i != old).collect();
        let mut r = Round {
            killed: old,
            new_leader: None,
            term: st.term,
            elected_ms: None,
            committed_ms: None,
            rejoin_ms: None,
        };
        let deadline = t_kill + timeout;
        while Instant::now() < deadline {
            let now_ms = || t_kill.elapsed().as_secs_f64() * 1000.0;
            for (i, s) in cl.statuses(&survivors).await {
                let Ok(s) = s else { continue };
                if !s.is_leader() || s.term <= st.term {
                    continue;
                }
                if r.elected_ms.is_none() {
                    r.elected_ms = Some(now_ms());
                }
                if s.commit_index.is_some() && s.commit_index > old_last {
                    r.committed_ms = Some(now_ms());
                    r.new_leader = Some(i);
                    r.term = s.term;
                }
            }
            if r.committed_ms.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        cl.kill(old); // reaps a node that stopped on SIGTERM
        cl.spawn(old)?;
        let t_restart = Instant::now();
        let rejoined = cl.wait_settled(0, timeout).await;
        if rejoined.is_ok() {
            r.rejoin_ms = Some(t_restart.elapsed().as_secs_f64() * 1000.0);
        }
        eprintln!(
            "bench election: round {round}: killed n{old} (term {}), new leader {} in term {}: elected {} ms, committed {} ms, n{old} back in {} ms",
            st.term,
            r.new_leader.map_or("-".into(), |l| format!("n{l}")),
            r.term,
            ms(r.elected_ms),
            ms(r.committed_ms),
            ms(r.rejoin_ms)
        );
        rounds.push(r);
        rejoined?;
        if rounds.last().is_some_and(|r| r.committed_ms.is_none()) {
            return Err(format!(
                "round {round}: no new leader committed within {:.1} s",
                timeout.as_secs_f64()
            ));
        }
    }
    cl.terminate_all();
    Ok(election_report(a, &rounds))
}

fn election_report(a: &ElectionArgs, rounds: &[Round]) -> String {
    let sorted = |f: fn(&Round) -> Option<f64>| {
        let mut v: Vec<f64> = rounds.iter().filter_map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let elected = sorted(|r| r.elected_ms);
    let committed = sorted(|r| r.committed_ms);
    let rejoin = sorted(|r| r.rejoin_ms);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## raftian bench election\n\n5 election-mode nodes on loopback ({} storage, default timeouts: heartbeat 50 ms, \
         election 150-300 ms, pre-vote and check-quorum on). Each round {} the leader; times from the signal.\n",
        a.storage.name(),
        if a.graceful {
            "stops (SIGTERM: it hands over first)"
        } else {
            "SIGKILLs"
        }
    );
    let _ = writeln!(
        o,
        "| {} rounds | median ms | p99 ms | max ms | min ms |",
        rounds.len()
    );
    let _ = writeln!(o, "|---|---|---|---|---|");
    for (name, v) in [
        ("a survivor is leader of a newer term", &elected),
        ("the new leader has committed its no-op", &committed),
        ("killed node restarted, following, caught up", &rejoin),
    ] {
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} |",
            ms(percentile(v, 50.0)),
            ms(percentile(v, 99.0)),
            ms(v.last().copied()),
            ms(v.first().copied())
        );
    }
    let _ = writeln!(
        o,
        "\n| round | killed | new leader | term | leader after ms | committed after ms | rejoined after ms |\n|---|---|---|---|---|---|---|"
    );
    for (i, r) in rounds.iter().enumerate() {
        let _ = writeln!(
            o,
            "| {} | n{} | {} | {} | {} | {} | {} |",
            i + 1,
            r.killed,
            r.new_leader.map_or("-".into(), |l| format!("n{l}")),
            r.term,
            ms(r.elected_ms),
            ms(r.committed_ms),
            ms(r.rejoin_ms)
        );
    }
    let mut terms: BTreeMap<usize, usize> = BTreeMap::new();
    for r in rounds {
        if let Some(l) = r.new_leader {
            *terms.entry(l).or_default() += 1;
        }
    }
    let _ = writeln!(
        o,
        "\nNew leaders: {}; final term {}.",
        terms
            .iter()
            .map(|(l, c)| format!("n{l} x{c}"))
            .collect::<Vec<_>>()
            .join(", "),
        rounds.last().map_or(0, |r| r.term)
    );
    o
}
