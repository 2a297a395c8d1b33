//! Follower side (paper 3.3.2): taking the leader's batches into the log
//! and committing what is shared with the leader.

use std::time::Duration;

use log::{debug, warn};

use super::client::Proposal;
use super::role::FollowerState;
use super::*;

impl Raft {
    /// `append_entries_rpc(entries, term, commit_index, all_log)`: a batch
    /// from the leader, or commands forwarded to us (nil indices).
    pub(super) fn step_append(
        &mut self,
        now: Duration,
        req: &AppendEntries,
        from: Option<NodeId>,
    ) -> Result<AppendReply, InvalidRequest> {
        let batch = validate_append(req)?;
        self.check_static(req, &batch, from)?;
        match batch {
            Batch::Forwarded(commands) => {
                // With keys, a member's forward cannot move terms: only a
                // proved leader can.
                let term = if self.signed_votes() {
                    self.term
                } else {
                    req.term
                };
                Ok(self.take_forwarded(now, term, commands))
            }
            Batch::Replicate(entries) => {
                self.check_leader_proof(req, from)?;
                self.check_signatures(&entries)?;
                self.check_stamps(now, req, &entries)?;
                let reply = self.receive_append(now, req, &entries, from);
                if reply.success {
                    self.note_stamps(&entries);
                }
                Ok(reply)
            }
        }
    }

    /// The paper's static setup has one term and one leader: anything else
    /// is a stranger's or a misconfigured node's, and changes nothing.
    fn check_static(
        &self,
        req: &AppendEntries,
        batch: &Batch,
        from: Option<NodeId>,
    ) -> Result<(), InvalidRequest> {
        let Some(leader) = self.cfg.static_leader else {
            return Ok(());
        };
        if req.term != 1 {
            return Err(InvalidRequest(format!(
                "static-leader mode: term {} refused (every node stays at term 1)",
                req.term
            )));
        }
        // Forwarded commands go to the leader from anyone; log entries only
        // come from the leader (an original Python node names no sender).
        if let (Batch::Replicate(_), Some(f)) = (batch, from)
            && f != leader
        {
            return Err(InvalidRequest(format!(
                "static-leader mode: only node {leader} sends log entries, not node {f}"
            )));
        }
        Ok(())
    }

    pub(super) fn follower_deadline(&self) -> Duration {
        let election = if self.cfg.elections() {
            self.election_deadline
        } else {
            Duration::MAX
        };
        election.min(self.forward_deadline())
    }

    fn receive_append(
        &mut self,
        now: Duration,
        req: &AppendEntries,
        entries: &[Entry],
        sender: Option<NodeId>,
    ) -> AppendReply {
        let reject = |raft: &Raft| AppendReply {
            success: false,
            term: raft.term,
        };
        if req.term < self.term {
            return reject(self);
        }
        if self.mode() == Mode::Leader && req.term == self.term {
            warn!(
                "node {}: another leader ({sender:?}) in my term {}: rejected",
                self.cfg.id, self.term
            );
            return reject(self);
        }
        let leader = sender.or(self.cfg.static_leader);
        if req.term > self.term || self.mode() != Mode::Follower {
            self.become_follower(req.term, leader, now);
        }
        self.heard_from_leader(leader, now);
        if let Err(why) = self.merge(entries, req.all_log, sender) {
            debug!("node {} rejects append: {why}", self.cfg.id);
            return reject(self);
        }
        if self.must_learn_match(entries, req.commit_index, sender) {
            // A Rust leader's heartbeat carries no anchor: say we do not
            // know where we match it (we restarted), so it sends one.
            return reject(self);
        }
        self.follow_commit(req.commit_index);
        self.apply();
        AppendReply {
            success: true,
            term: self.term,
        }
    }

    fn follower_state(&mut self) -> &mut FollowerState {
        match &mut self.role {
            Role::Follower(f) => f,
            _ => unreachable!("receive_append made this node a follower"),
        }
    }

    pub(super) fn heard_from_leader(&mut self, leader: Option<NodeId>, now: Duration) {
        if leader.is_some() && self.leader_id != leader {
            self.leader_id = leader;
            self.follower_state().leader_match = None;
        }
        self.last_leader_contact = Some(now);
        self.reset_election_timer(now);
    }

    /// Put a leader's batch into the log; a Rust leader's batch must be
    /// anchored, an original leader's may fill an empty log.
    fn merge(
        &mut self,
        entries: &[Entry],
        all_log: bool,
        sender: Option<NodeId>,
    ) -> Result<(), String> {
        let Some(last) = entries.last().map(|e| e.index) else {
            return Ok(());
        };
        let blind = PeerKind::from_header(sender.is_some()).appends_blindly_to_empty();
        self.log
            .maybe_append(entries, all_log, blind, self.commit_index)?;
        // Under one leader (a new one resets it) the match only grows: a
        // late copy of an older batch proves less, not that we lost more.
        // Never past our log's end, though: a lying leader's conflicting
        // batch may have cut it (the commit index follows the match).
        let end = self.log.last_index();
        let f = self.follower_state();
        f.leader_match = f.leader_match.max(Some(last)).min(end);
        Ok(())
    }

    fn must_learn_match(
        &mut self,
        entries: &[Entry],
        commit: Option<u64>,
        sender: Option<NodeId>,
    ) -> bool {
        let unknown = self.follower_state().leader_match.is_none();
        let behind = commit > self.commit_index;
        entries.is_empty() && sender.is_some() && unknown && behind
    }

    /// Commit what the leader committed, but never past what we know we
    /// share with it.
    fn follow_commit(&mut self, leader_commit: Option<u64>) {
        let shared = self.follower_state().leader_match;
        if let (Some(c), Some(m)) = (leader_commit, shared) {
            let c = c.min(m);
            if self.commit_index.is_none_or(|old| c > old) {
                self.commit_index = Some(c);
            }
        }
    }
}

enum Batch {
    /// Commands a follower forwards to the leader (nil indices).
    Forwarded(Vec<Proposal>),
    /// Entries from the leader (possibly none: a heartbeat), duplicates removed.
    Replicate(Vec<Entry>),
}

/// Check an `append_entries_rpc` before anything changes.
fn validate_append(req: &AppendEntries) -> Result<Batch, InvalidRequest> {
    if req.term > WIRE_MAX {
        return Err(InvalidRequest(format!("term {} is out of range", req.term)));
    }
    let entries = match &req.entries {
        Some(e) if !e.is_empty() => e,
        _ => return Ok(Batch::Replicate(Vec::new())),
    };
    let forwarded = entries.iter().filter(|e| e.index.is_none()).count();
    if forwarded == entries.len() {
        if req.all_log {
            return Err(InvalidRequest(
                "forwarded commands (nil index) cannot be all_log".into(),
            ));
        }
        // A configuration, a stamp or a no-op is the leader's own entry:
        // one forwarded by a member would skip the leader's checks (a no-op
        // needs no signature and counts against no rate limit).
        let leaders_own =
            |e: &&WireEntry| !e.command.is_client_command() || e.command == Command::NOOP;
        if let Some(e) = entries.iter().find(leaders_own) {
            return Err(InvalidRequest(format!(
                "a forwarded command must be a click, not {}",
                e.command
            )));
        }
        let commands = entries.iter().map(|e| Proposal {
            command: e.command.clone(),
            client: e.client,
            sig: e.sig.clone(),
        });
        return Ok(Batch::Forwarded(commands.collect()));
    }
    if forwarded > 0 {
        return Err(InvalidRequest(
            "entries mix forwarded commands (nil index) with log entries".into(),
        ));
    }
    validate_entries(req.term, entries).map(Batch::Replicate)
}

/// Log entries must be consecutive, of non-decreasing terms no newer than
/// the request's.
fn validate_entries(term: u64, entries: &[WireEntry]) -> Result<Vec<Entry>, InvalidRequest> {
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for e in entries {
        let index = e.index.expect("checked by the caller");
        if e.term > term {
            return Err(InvalidRequest(format!(
                "entry {index} has term {} above the request's term {term}",
                e.term
            )));
        }
        if e.client.is_some() && !e.command.is_client_command() {
            return Err(InvalidRequest(format!(
                "entry {index}: {} is the leader's own entry, yet names a client",
                e.command
            )));
        }
        let entry = Entry {
            term: e.term,
            index,
            command: e.command.clone(),
            client: e.client,
            sig: e.sig.clone(),
        };
        if let Some(prev) = out.last() {
            if index == prev.index && *prev == entry {
                // The original leader repeats its last entry to an empty
                // follower (…, 7, 7, 8): the same entry twice is one entry.
                continue;
            }
            if index != prev.index + 1 {
                return Err(InvalidRequest(format!(
                    "entries are not consecutive: index {index} follows {}",
                    prev.index
                )));
            }
            if e.term < prev.term {
                return Err(InvalidRequest(format!(
                    "entry {index} has a lower term than the entry before it"
                )));
            }
        }
        out.push(entry);
    }
    Ok(out)
}
