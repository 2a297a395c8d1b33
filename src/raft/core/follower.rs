//! Follower side (paper 3.3.2): taking the leader's batches, overwriting a
//! conflicting suffix, committing what is shared, queueing forwarded commands.

use std::time::Duration;

use log::{debug, warn};

use super::*;

impl Raft {
    /// `append_entries_rpc(entries, term, commit_index, all_log)`.
    /// `sender` is the calling node's id when it told us (Rust nodes send a
    /// header; the original Python nodes do not).
    pub fn append_entries_rpc(
        &mut self,
        req: &AppendEntries,
        sender: Option<NodeId>,
        now: Duration,
    ) -> Result<AppendReply, InvalidRequest> {
        self.append_entries_rpc_with_id(req, sender, None, now)
    }

    /// [`Raft::append_entries_rpc`] for forwarded commands that carry a
    /// [`ForwardId`]: a batch already queued from that node is acknowledged
    /// again but not queued twice.
    pub fn append_entries_rpc_with_id(
        &mut self,
        req: &AppendEntries,
        sender: Option<NodeId>,
        forward_id: Option<ForwardId>,
        now: Duration,
    ) -> Result<AppendReply, InvalidRequest> {
        let batch = validate_append(req)?;
        let sender = sender.filter(|s| *s != self.cfg.id && self.cfg.peers.contains(s));
        match batch {
            Batch::Forwarded(commands) => {
                if let (Some(from), Some(id)) = (sender, forward_id) {
                    let seen = self.forwarded_seen.get(&from);
                    if seen.is_some_and(|s| s.incarnation == id.incarnation && id.batch <= s.batch)
                    {
                        debug!(
                            "node {}: forwarded batch {id} from {from} again: dropped",
                            self.cfg.id
                        );
                        return Ok(AppendReply {
                            success: true,
                            term: self.term,
                        });
                    }
                    self.forwarded_seen.insert(from, id);
                }
                Ok(self.receive_forwarded(req.term, commands, now))
            }
            Batch::Replicate(entries) => Ok(self.receive_append(req, entries, sender, now)),
        }
    }

    pub(super) fn receive_forwarded(
        &mut self,
        term: u64,
        commands: Vec<Command>,
        now: Duration,
    ) -> AppendReply {
        if term > self.term && self.cfg.static_leader.is_none() {
            self.become_follower(term, None, now);
        }
        // A leader queues them; anyone else passes them on to its leader.
        self.proposals.extend(commands);
        AppendReply {
            success: true,
            term: self.term,
        }
    }

    pub(super) fn receive_append(
        &mut self,
        req: &AppendEntries,
        entries: Vec<Entry>,
        sender: Option<NodeId>,
        now: Duration,
    ) -> AppendReply {
        let reject = |raft: &Raft| AppendReply {
            success: false,
            term: raft.term,
        };
        if req.term < self.term {
            return reject(self);
        }
        if self.mode == Mode::Leader && req.term == self.term {
            warn!(
                "node {}: another leader ({sender:?}) in my term {}: rejected",
                self.cfg.id, self.term
            );
            return reject(self);
        }
        let leader = sender.or(self.cfg.static_leader);
        if req.term > self.term || self.mode != Mode::Follower {
            self.become_follower(req.term, leader, now);
        }
        if leader.is_some() && self.leader_id != leader {
            self.leader_id = leader;
            self.leader_match = None;
        }
        self.last_leader_contact = Some(now);
        self.reset_election_timer(now);

        if !entries.is_empty() {
            match self.merge(&entries, req.all_log, sender.is_some()) {
                Ok(()) => self.leader_match = entries.last().map(|e| e.index),
                Err(why) => {
                    debug!("node {} rejects append: {why}", self.cfg.id);
                    return reject(self);
                }
            }
        }
        // Commit what the leader committed, but never past what we know we
        // share with it.
        if let (Some(c), Some(m)) = (req.commit_index, self.leader_match) {
            let c = c.min(m);
            if self.commit_index.is_none_or(|old| c > old) {
                self.commit_index = Some(c);
            }
        }
        self.apply();
        AppendReply {
            success: true,
            term: self.term,
        }
    }

    /// Put a leader's batch into the log (paper 3.3.2, with Raft's rule that
    /// only a conflicting suffix is dropped).
    pub(super) fn merge(
        &mut self,
        batch: &[Entry],
        all_log: bool,
        from_rust: bool,
    ) -> Result<(), String> {
        let first = &batch[0];
        let anchored = self.log.matches(first.index, first.term);
        if !anchored {
            if all_log {
                // The batch is the leader's whole log: take it.
                if let Some(c) = self.commit_index
                    && !batch
                        .iter()
                        .any(|e| e.index == c && self.log.matches(e.index, e.term))
                {
                    return Err(format!(
                        "all_log batch would drop committed entry {c}; refused"
                    ));
                }
                self.log.clear();
                self.note_truncate(0);
            } else if self.log.is_empty() && !from_rust {
                // The original leader sends its whole log to an empty
                // follower without all_log: append it (the paper's rule).
            } else {
                return Err(format!(
                    "no entry with index {} and term {}",
                    first.index, first.term
                ));
            }
        }
        let mut changed = false;
        for e in batch {
            match self.log.term_at(e.index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    if self.commit_index.is_some_and(|c| e.index <= c) {
                        return Err(format!("would overwrite committed entry {}", e.index));
                    }
                    self.log.truncate_from(e.index);
                    self.note_truncate(e.index);
                }
                None => {}
            }
            if !self.log.is_empty() && e.index != self.log.next_index() {
                return Err(format!("entry {} leaves a gap", e.index));
            }
            self.log.push(e.clone());
            self.persist.append.push(e.clone());
            changed = true;
        }
        if changed {
            self.log_version += 1;
        }
        Ok(())
    }
}

enum Batch {
    /// Commands a follower forwards to the leader (nil indices).
    Forwarded(Vec<Command>),
    /// Entries from the leader (possibly none: a heartbeat), duplicates removed.
    Replicate(Vec<Entry>),
}

/// Check an `append_entries_rpc` before anything changes.
fn validate_append(req: &AppendEntries) -> Result<Batch, InvalidRequest> {
    if req.term > WIRE_MAX {
        return Err(InvalidRequest(format!("term {} is out of range", req.term)));
    }
    let Some(entries) = &req.entries else {
        return Ok(Batch::Replicate(Vec::new()));
    };
    if entries.is_empty() {
        return Ok(Batch::Replicate(Vec::new()));
    }
    let forwarded = entries.iter().filter(|e| e.index.is_none()).count();
    if forwarded == entries.len() {
        if req.all_log {
            return Err(InvalidRequest(
                "forwarded commands (nil index) cannot be all_log".into(),
            ));
        }
        return Ok(Batch::Forwarded(
            entries.iter().map(|e| e.command.clone()).collect(),
        ));
    }
    if forwarded > 0 {
        return Err(InvalidRequest(
            "entries mix forwarded commands (nil index) with log entries".into(),
        ));
    }
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for e in entries {
        let index = e.index.expect("checked above");
        if e.term > req.term {
            return Err(InvalidRequest(format!(
                "entry {index} has term {} above the request's term {}",
                e.term, req.term
            )));
        }
        let entry = Entry {
            term: e.term,
            index,
            command: e.command.clone(),
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
    Ok(Batch::Replicate(out))
}
