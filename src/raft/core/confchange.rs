//! Membership changes (Ongaro's thesis chapter 4): single-server changes,
//! one at a time, each a log entry that holds the whole new configuration.
//!
//! - `add_server_rpc(name, addr)`: the leader gives the new node the next
//!   free id and adds it as a learner; once the learner holds everything
//!   committed, the leader promotes it to voter with a second entry.
//! - `remove_server_rpc(id | addr)`: one entry without the node. A leader
//!   that removes itself manages the cluster until the entry commits, then
//!   hands over (transfer) and steps down.
//!
//! Every node uses the latest configuration in its log (committed or not):
//! majorities, who is sent what, who may campaign. A change is accepted
//! only when none is pending and the leader has committed an entry of its
//! own term (the fix for the single-server bug, raft-dev, 2015), and never
//! while an original Python node is a member (it cannot follow one).

use std::sync::Arc;
use std::time::Duration;

use log::info;

use super::*;
use crate::raft::membership::{ConfChange, Member, Membership};
use crate::raft::progress::Progress;
use crate::raft::quorum;

/// A caller of `add_server_rpc` / `remove_server_rpc` waiting for its
/// change to commit.
#[derive(Debug)]
pub(super) struct ConfWaiter {
    pub token: u64,
    pub index: u64,
    pub reply: Reply,
}

impl Raft {
    /// The latest configuration in the log (empty while a joining node has
    /// not received one).
    pub fn membership(&self) -> Arc<Membership> {
        self.log.latest_config().cloned().unwrap_or_default()
    }

    /// The configuration in force at the last applied entry (what the
    /// state machine has seen).
    pub fn applied_membership(&self) -> Arc<Membership> {
        let c = match self.last_applied {
            Some(a) => self.log.config_at(a),
            None => self.log.base_config(),
        };
        c.cloned().unwrap_or_default()
    }

    /// Every other member of the latest configuration.
    pub(super) fn peers(&self) -> Vec<NodeId> {
        let id = self.cfg.id;
        match self.log.latest_config() {
            Some(c) => c.ids().filter(|p| *p != id).collect(),
            None => Vec::new(),
        }
    }

    /// May this node vote and campaign (a voter of its latest configuration)?
    pub(super) fn promotable(&self) -> bool {
        self.log
            .latest_config()
            .is_some_and(|c| c.is_voter(self.cfg.id))
    }

    pub(super) fn is_member(&self, id: NodeId) -> bool {
        self.log.latest_config().is_some_and(|c| c.contains(id))
    }

    /// Has a majority of the latest configuration's voters said yes?
    pub(super) fn voters_agree(&self, yes: impl Fn(NodeId) -> bool) -> bool {
        let Some(c) = self.log.latest_config() else {
            return false;
        };
        let granted = c.voter_ids().filter(|v| yes(*v)).count();
        quorum::has_majority(granted, c.voter_count())
    }

    /// The highest index a majority of the latest configuration's voters
    /// holds (this node's own log counts only if it votes).
    pub(super) fn quorum_match(&self, progress: &BTreeMap<NodeId, Progress>) -> Option<u64> {
        let c = self.log.latest_config()?;
        let mut matched: Vec<Option<u64>> = c
            .voter_ids()
            .map(|v| match v == self.cfg.id {
                // The leader's own copy counts once it is durable: its
                // appends left before its fsync (thesis 10.2.1).
                true => self.log.persisted(),
                false => progress.get(&v).and_then(Progress::matched),
            })
            .collect();
        quorum::committed_index(&mut matched)
    }

    /// `add_server_rpc` / `remove_server_rpc`: the answer comes once the
    /// change is committed (or now, if it is refused).
    pub(super) fn request_conf_change(&mut self, now: Duration, token: u64, req: Rpc) {
        if let Some(id) = self.already_added(&req) {
            // The same node asking again (its first answer was lost).
            let result = Ok(Reply::ServerAdded(id));
            return self.out.answers.push(Answer { token, result });
        }
        match self.start_conf_change(now, req) {
            Ok((index, reply)) => self.conf_waiters.push(ConfWaiter {
                token,
                index,
                reply,
            }),
            Err(e) => self.out.answers.push(Answer {
                token,
                result: Err(e),
            }),
        }
    }

    fn already_added(&self, req: &Rpc) -> Option<NodeId> {
        let Rpc::AddServer { name, addr, .. } = req else {
            return None;
        };
        if self.mode() != Mode::Leader {
            return None;
        }
        let m = self.membership().by_addr(addr).cloned()?;
        (m.name == *name).then_some(m.id)
    }

    fn start_conf_change(
        &mut self,
        now: Duration,
        req: Rpc,
    ) -> Result<(u64, Reply), InvalidRequest> {
        self.check_can_change()?;
        let current = self.membership();
        let (change, reply) = match req {
            Rpc::AddServer {
                name,
                addr,
                public_key,
            } => self.add_change(&current, name, addr, public_key)?,
            Rpc::RemoveServer(r) => {
                let id = resolve(&current, &r)?;
                if id == self.cfg.id {
                    return Err(self.hand_over_to_leave(now));
                }
                (ConfChange::Remove(id), Reply::ServerRemoved(id))
            }
            other => unreachable!("not a membership request: {other:?}"),
        };
        let next = current.apply(&change).map_err(InvalidRequest)?;
        let index = self.append_config(next);
        Ok((index, reply))
    }

    /// The leader is asked to remove itself: it hands over first, and the
    /// next leader removes it (a leader never counts itself out of its own
    /// majority: with two voters that could leave nobody electable).
    fn hand_over_to_leave(&mut self, now: Duration) -> InvalidRequest {
        match self.start_transfer(now, None) {
            Ok(t) => InvalidRequest(format!(
                "node {} leads: it hands over to node {t} first; retry the removal there",
                self.cfg.id
            )),
            Err(e) => InvalidRequest(format!("the leader cannot hand over: {e}; retry shortly")),
        }
    }

    fn add_change(
        &self,
        current: &Membership,
        name: String,
        addr: String,
        public_key: Option<String>,
    ) -> Result<(ConfChange, Reply), InvalidRequest> {
        let id = current.next_free_id().ok_or_else(|| {
            InvalidRequest(format!(
                "the board is full: {} players",
                crate::raft::membership::MAX_PLAYER_ID
            ))
        })?;
        if current.authenticated() != public_key.is_some() {
            return Err(InvalidRequest(match public_key {
                None => "this cluster is authenticated: a joining node presents its public key (raftian keygen)".into(),
                Some(_) => "this cluster has no keys: a joining node cannot bring one".into(),
            }));
        }
        let member = Member {
            id,
            name,
            addr,
            voter: false,
            public_key,
        };
        Ok((ConfChange::AddLearner(member), Reply::ServerAdded(id)))
    }

    /// Why no change can start now, if it cannot.
    fn check_can_change(&self) -> Result<(), InvalidRequest> {
        let refuse = |m: String| Err(InvalidRequest(m));
        if !self.cfg.elections() {
            return refuse("static-leader mode: the membership does not change".into());
        }
        let Role::Leader(l) = &self.role else {
            return refuse(format!(
                "not the leader (leader: {})",
                self.leader_id
                    .map_or("unknown".to_owned(), |l| format!("node {l}"))
            ));
        };
        if let Some(p) = self
            .peers()
            .into_iter()
            .find(|p| self.peer_kinds.get(p) == Some(&PeerKind::Original))
        {
            return refuse(format!(
                "node {p} is an original Python node, which cannot follow a configuration change"
            ));
        }
        if l.transfer.is_some() {
            return refuse("a leadership transfer is under way: retry shortly".into());
        }
        if !self.promotable() {
            return refuse("this leader was removed and is handing over: retry shortly".into());
        }
        if self.change_pending() {
            return refuse(
                "another membership change is still pending: retry once it is committed".into(),
            );
        }
        if self.commit_index.and_then(|c| self.log.term_at(c)) != Some(self.term) {
            return refuse(
                "the new leader has not committed an entry of its term yet: retry shortly".into(),
            );
        }
        Ok(())
    }

    /// A configuration entry not yet committed.
    pub(super) fn change_pending(&self) -> bool {
        self.log
            .latest_config_index()
            .is_some_and(|i| self.commit_index.is_none_or(|c| i > c))
    }

    fn append_config(&mut self, next: Membership) -> u64 {
        info!("node {}: proposes {next}", self.cfg.id);
        self.log
            .append_command(self.term, Command::Config(Arc::new(next)), None, None);
        self.log.last_index().expect("just appended")
    }

    /// Answer the callers whose change is now committed.
    pub(super) fn answer_committed_changes(&mut self) {
        let Some(commit) = self.commit_index else {
            return;
        };
        let (done, rest) = std::mem::take(&mut self.conf_waiters)
            .into_iter()
            .partition(|w| w.index <= commit);
        self.conf_waiters = rest;
        for w in done {
            self.out.answers.push(Answer {
                token: w.token,
                result: Ok(w.reply),
            });
        }
    }

    /// Leadership is lost: the pending changes' callers cannot be told.
    pub(super) fn fail_waiting_changes(&mut self) {
        for w in std::mem::take(&mut self.conf_waiters) {
            self.out.answers.push(Answer {
                token: w.token,
                result: Err(InvalidRequest(format!(
                    "leadership lost before the change at index {} committed: it may still take effect; check status() and retry",
                    w.index
                ))),
            });
        }
    }

    /// The leader's part of membership in `service_actions`: progress for
    /// every member, learners promoted once caught up, and stepping aside
    /// once its own removal is committed.
    pub(super) fn manage_membership(&mut self, now: Duration) {
        self.sync_progress(now);
        if self.change_pending() || self.transfer_deadline().is_some() {
            return;
        }
        if !self.promotable() {
            return self.leave_leadership(now);
        }
        if self.commit_index.and_then(|c| self.log.term_at(c)) != Some(self.term) {
            return;
        }
        if let Some(id) = self.caught_up_learner(now) {
            let next = self.membership().apply(&ConfChange::Promote(id));
            if let Ok(next) = next {
                info!("node {}: learner {id} caught up: promoting", self.cfg.id);
                self.append_config(next);
            }
        }
    }

    /// A learner that has caught up (thesis 4.2.1, in rounds): each round
    /// asks it to reach the leader's last index at the round's start; a
    /// round done within an election timeout means it keeps up, and it can
    /// vote without slowing commits down. A slower round starts the next.
    fn caught_up_learner(&mut self, now: Duration) -> Option<NodeId> {
        let last = self.log.last_index()?;
        let config = self.log.latest_config()?.clone();
        let limit = self.cfg.election_timeout_max;
        let Role::Leader(l) = &mut self.role else {
            return None;
        };
        l.catch_up.retain(|id, _| !config.is_voter(*id));
        for id in config.learner_ids() {
            let matched = l.progress.get(&id).and_then(Progress::matched);
            let (target, started) = *l.catch_up.entry(id).or_insert((last, now));
            if matched.is_none_or(|m| m < target) {
                continue;
            }
            if now.saturating_sub(started) <= limit {
                return Some(id);
            }
            l.catch_up.insert(id, (last, now));
        }
        None
    }

    /// Stop replicating to removed nodes that know their removal is
    /// committed, or had their time.
    fn drop_departed(&mut self, now: Duration) {
        let Some(removal) = self.log.latest_config_index() else {
            return;
        };
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        let done: Vec<NodeId> = l
            .departing
            .iter()
            .filter(|(p, deadline)| {
                let told = l.progress.get(p).and_then(Progress::commit_sent);
                now >= **deadline || told.is_some_and(|c| c >= removal)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in done {
            l.departing.remove(&p);
            l.progress.remove(&p);
        }
    }

    /// Removed by a committed change: hand over to the most up-to-date
    /// voter, or step down if none can take over.
    fn leave_leadership(&mut self, now: Duration) {
        if self.start_transfer(now, None).is_err() {
            info!("node {}: removed from the cluster: steps down", self.cfg.id);
            self.become_follower(self.term, None, now);
        }
    }

    /// One progress per member of the latest configuration, and of the
    /// committed one while a change is pending (a node being removed still
    /// gets the entry that removes it).
    fn sync_progress(&mut self, now: Duration) {
        self.drop_departed(now);
        let key = self.log.config_key(self.commit_index);
        let latest = self.log.latest_config().cloned();
        let committed = self
            .commit_index
            .and_then(|c| self.log.config_at(c).cloned());
        let next = self.log.next_index();
        let id = self.cfg.id;
        let kinds = self.peer_kinds.clone();
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        if l.synced == key {
            return;
        }
        l.synced = key;
        let targets: std::collections::BTreeSet<NodeId> = latest
            .iter()
            .chain(committed.iter())
            .flat_map(|c| c.ids())
            .filter(|p| *p != id)
            .collect();
        // A removed node keeps getting heartbeats for a while, so that it
        // learns its removal is committed (and stops) rather than linger.
        let linger = now + 2 * self.cfg.election_timeout_max;
        for p in l.progress.keys() {
            if !targets.contains(p) {
                l.departing.entry(*p).or_insert(linger);
            }
        }
        for t in targets {
            let kind = kinds.get(&t).copied().unwrap_or(PeerKind::Original);
            l.progress
                .entry(t)
                .or_insert_with(|| Progress::new(next, kind));
        }
    }
}

fn resolve(config: &Membership, r: &ServerRef) -> Result<NodeId, InvalidRequest> {
    let found = match r {
        ServerRef::Id(id) => config.get(*id),
        ServerRef::Addr(a) => config.by_addr(a),
    };
    found.map(|m| m.id).ok_or_else(|| {
        InvalidRequest(match r {
            ServerRef::Id(id) => format!("node {id} is not a member"),
            ServerRef::Addr(a) => format!("no member has address {a}"),
        })
    })
}
