//! Elections: votes, pre-votes, campaigns, and the role changes they cause
//! (Raft section 5.2 and 5.4.1; pre-vote and check-quorum leases).

use std::time::Duration;

use log::{debug, info, warn};

use super::*;

impl Raft {
    /// `request_vote_rpc(term, candidate_id, last_log_index, last_log_term)`.
    pub fn request_vote_rpc(
        &mut self,
        req: &VoteRequest,
        now: Duration,
    ) -> Result<VoteReply, InvalidRequest> {
        self.validate_vote(req)?;
        let deny = VoteReply {
            term: self.term,
            vote_granted: false,
        };
        if self.cfg.static_leader.is_some() || self.in_lease(now) {
            return Ok(deny);
        }
        if req.term < self.term {
            return Ok(deny);
        }
        if req.term > self.term {
            self.become_follower(req.term, None, now);
        }
        let can_vote = self.voted_for.is_none() || self.voted_for == Some(req.candidate_id);
        let granted = can_vote && self.log_ok(req);
        if granted {
            self.voted_for = Some(req.candidate_id);
            self.persist.hard_state = Some(self.hard_state());
            self.reset_election_timer(now);
            debug!(
                "node {} votes for {} in term {}",
                self.cfg.id, req.candidate_id, self.term
            );
        }
        Ok(VoteReply {
            term: self.term,
            vote_granted: granted,
        })
    }

    /// `pre_vote_rpc(...)`: would this node vote for the candidate in
    /// `req.term`? Changes nothing.
    pub fn pre_vote_rpc(
        &mut self,
        req: &VoteRequest,
        now: Duration,
    ) -> Result<VoteReply, InvalidRequest> {
        self.validate_vote(req)?;
        let granted = self.cfg.static_leader.is_none()
            && !self.in_lease(now)
            && req.term > self.term
            && self.log_ok(req);
        Ok(VoteReply {
            term: self.term,
            vote_granted: granted,
        })
    }

    pub(super) fn campaign(&mut self, now: Duration, pre: bool) -> Vec<Outbound> {
        self.reset_election_timer(now);
        let term = self.term + 1;
        if term > WIRE_MAX {
            warn!("term would overflow the wire's 32-bit int: no election");
            return Vec::new();
        }
        self.leader_id = None;
        self.leader_match = None;
        self.votes.clear();
        self.votes.insert(self.cfg.id, true);
        if pre {
            self.mode = Mode::PreCandidate;
            debug!("node {} starts a pre-vote for term {term}", self.cfg.id);
        } else {
            self.mode = Mode::Candidate;
            self.term = term;
            self.voted_for = Some(self.cfg.id);
            self.persist.hard_state = Some(self.hard_state());
            info!("node {} starts an election in term {term}", self.cfg.id);
        }
        if quorum::has_majority(1, self.cfg.voters()) {
            return self.win(now, pre);
        }
        let req = VoteRequest {
            term,
            candidate_id: self.cfg.id,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        let peers = self.cfg.peers.clone();
        peers
            .into_iter()
            .map(|to| {
                let seq = self.seq();
                self.pending.insert(
                    seq,
                    Pending::Vote {
                        term,
                        pre,
                        sent_at: now,
                    },
                );
                let rpc = if pre {
                    Rpc::PreVote(req)
                } else {
                    Rpc::RequestVote(req)
                };
                Outbound {
                    to,
                    seq,
                    rpc,
                    forward_id: None,
                }
            })
            .collect()
    }

    pub(super) fn on_vote_reply(
        &mut self,
        from: NodeId,
        term: u64,
        pre: bool,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) -> Vec<Outbound> {
        let expected_mode = if pre {
            Mode::PreCandidate
        } else {
            Mode::Candidate
        };
        let campaign_term = if pre { self.term + 1 } else { self.term };
        if self.mode != expected_mode || term != campaign_term {
            return Vec::new();
        }
        let granted = matches!(
            result,
            Ok(Reply::Vote(VoteReply {
                vote_granted: true,
                ..
            }))
        );
        self.votes.insert(from, granted);
        let yes = self.votes.values().filter(|v| **v).count();
        if quorum::has_majority(yes, self.cfg.voters()) {
            self.win(now, pre)
        } else {
            Vec::new()
        }
    }

    pub(super) fn win(&mut self, now: Duration, pre: bool) -> Vec<Outbound> {
        if pre {
            self.campaign(now, false)
        } else {
            self.become_leader(now);
            self.replicate_all(now)
        }
    }

    pub(super) fn become_leader(&mut self, now: Duration) {
        info!("node {} becomes leader in term {}", self.cfg.id, self.term);
        self.mode = Mode::Leader;
        self.leader_id = Some(self.cfg.id);
        self.leader_match = None;
        let next = self.log.next_index();
        self.progress = self
            .cfg
            .peers
            .iter()
            .map(|p| {
                let is_rust = self.rust_peers.get(p).copied().unwrap_or(false);
                (*p, Progress::new(next, is_rust))
            })
            .collect();
        self.quorum_check_at = now + self.cfg.election_timeout_min;
        if let Some((_, commands)) = self.forward_retry.take() {
            // Never acknowledged by the old leader: this node appends them.
            let rest = std::mem::replace(&mut self.proposals, commands);
            self.proposals.extend(rest);
        }
        if self.cfg.static_leader.is_none() {
            // A no-op of the new term lets earlier entries commit (5.4.2).
            self.proposals.insert(0, Command::NOOP);
        }
        self.append_proposals();
        self.maybe_commit();
    }

    pub(super) fn become_follower(&mut self, term: u64, leader: Option<NodeId>, now: Duration) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.persist.hard_state = Some(self.hard_state());
        }
        if self.mode != Mode::Follower {
            debug!("node {} becomes follower in term {term}", self.cfg.id);
        }
        self.mode = Mode::Follower;
        self.leader_id = leader.or(self.cfg.static_leader);
        self.leader_match = None;
        self.progress.clear();
        self.votes.clear();
        self.reset_election_timer(now);
    }

    pub(super) fn in_lease(&self, now: Duration) -> bool {
        if !self.cfg.check_quorum {
            return false;
        }
        if self.mode == Mode::Leader {
            return true;
        }
        self.leader_id.is_some()
            && self
                .last_leader_contact
                .is_some_and(|t| now < t + self.cfg.election_timeout_min)
    }

    /// Raft 5.4.1: the candidate's log is at least as up to date as ours.
    pub(super) fn log_ok(&self, req: &VoteRequest) -> bool {
        (req.last_log_term, req.last_log_index) >= (self.log.last_term(), self.log.last_index())
    }

    pub(super) fn validate_vote(&self, req: &VoteRequest) -> Result<(), InvalidRequest> {
        if req.candidate_id == self.cfg.id || !self.cfg.peers.contains(&req.candidate_id) {
            return Err(InvalidRequest(format!(
                "candidate_id {} is not a peer of node {}",
                req.candidate_id, self.cfg.id
            )));
        }
        if req.last_log_index.is_some() != req.last_log_term.is_some() {
            return Err(InvalidRequest(
                "last_log_index and last_log_term must both be nil or both be set".into(),
            ));
        }
        Ok(())
    }
}
