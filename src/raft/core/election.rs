//! Elections: votes, pre-votes, campaigns, and the role changes they cause
//! (Raft section 5.2 and 5.4.1; pre-vote and check-quorum leases).

use std::time::Duration;

use log::{debug, info, warn};

use super::client::Proposal;
use super::role::{LeaderState, Votes};
use std::collections::BTreeMap;

use super::*;
use crate::raft::progress::Progress;

impl Raft {
    /// `request_vote_rpc` / `pre_vote_rpc(term, candidate_id,
    /// last_log_index, last_log_term)`. A pre-vote asks whether this node
    /// would vote in `req.term`, and changes nothing.
    pub(super) fn step_vote(
        &mut self,
        now: Duration,
        req: &VoteRequest,
        pre: bool,
        from: Option<NodeId>,
    ) -> Result<VoteReply, InvalidRequest> {
        self.validate_vote(req)?;
        if self.absurd_term(req.term) {
            return Err(InvalidRequest(format!(
                "term {} is too far ahead of this node's {}",
                req.term, self.term
            )));
        }
        if self.signed_votes() && from != Some(req.candidate_id) {
            return Err(InvalidRequest(format!(
                "a vote request for node {} must be signed by it",
                req.candidate_id
            )));
        }
        // Within a leader's lease (check-quorum) a vote request is ignored
        // before its term is looked at: a partitioned node cannot depose a
        // healthy leader.
        let ignored = !self.cfg.elections() || (self.in_lease(now) && !req.transfer);
        let granted = if ignored {
            false
        } else if pre {
            req.term > self.term && self.log_ok(req)
        } else {
            self.vote(now, req)
        };
        let sig = (granted && !pre)
            .then(|| self.sign_vote(req.candidate_id))
            .flatten();
        Ok(VoteReply {
            term: self.term,
            vote_granted: granted,
            sig,
        })
    }

    fn vote(&mut self, now: Duration, req: &VoteRequest) -> bool {
        if req.term < self.term {
            return false;
        }
        if req.term > self.term {
            self.become_follower(req.term, None, now);
        }
        let can_vote = self.voted_for.is_none() || self.voted_for == Some(req.candidate_id);
        let granted = can_vote && self.log_ok(req);
        if granted {
            self.voted_for = Some(req.candidate_id);
            self.reset_election_timer(now);
            debug!(
                "node {} votes for {} in term {}",
                self.cfg.id, req.candidate_id, self.term
            );
        }
        granted
    }

    /// Campaign at once, at the leader's request: no pre-vote, and voters
    /// in the leader's lease vote anyway.
    pub(super) fn campaign_transfer(&mut self, now: Duration) {
        self.campaign_as(now, false, true);
    }

    pub(super) fn campaign(&mut self, now: Duration, pre: bool) {
        self.campaign_as(now, pre, false);
    }

    fn campaign_as(&mut self, now: Duration, pre: bool, transfer: bool) {
        self.reset_election_timer(now);
        let term = self.term + 1;
        if term > WIRE_MAX {
            warn!("term would overflow the wire's 32-bit int: no election");
            return;
        }
        self.leader_id = None;
        let mut votes = Votes::default();
        votes.record(self.cfg.id, true, None);
        if pre {
            self.role = Role::PreCandidate(votes);
            debug!("node {} starts a pre-vote for term {term}", self.cfg.id);
        } else {
            self.role = Role::Candidate(votes);
            self.term = term;
            self.voted_for = Some(self.cfg.id);
            info!("node {} starts an election in term {term}", self.cfg.id);
        }
        let me = self.cfg.id;
        if self.voters_agree(|v| v == me) {
            return self.win(now, pre);
        }
        let req = VoteRequest {
            term,
            candidate_id: self.cfg.id,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            transfer,
        };
        let voters: Vec<NodeId> = self.membership().voter_ids().filter(|v| *v != me).collect();
        for to in voters {
            let rpc = if pre {
                Rpc::PreVote(req)
            } else {
                Rpc::RequestVote(req)
            };
            let pending = Pending::Vote {
                term,
                pre,
                sent_at: now,
            };
            self.send(to, rpc, pending);
        }
    }

    pub(super) fn on_vote_reply(
        &mut self,
        from: NodeId,
        term: u64,
        pre: bool,
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) {
        let campaign_term = if pre { self.term + 1 } else { self.term };
        // A granted vote counts with its voter's signature (keys), and a
        // pre-vote is only a question.
        let sig = match &result {
            Ok(Reply::Vote(VoteReply { sig, .. })) => sig.clone(),
            _ => None,
        };
        let signed = pre || self.vote_counts(term, from, sig.as_ref());
        let votes = match &mut self.role {
            Role::PreCandidate(v) if pre => v,
            Role::Candidate(v) if !pre => v,
            _ => return,
        };
        if term != campaign_term {
            return;
        }
        let granted = signed
            && matches!(
                result,
                Ok(Reply::Vote(VoteReply {
                    vote_granted: true,
                    ..
                }))
            );
        votes.record(from, granted, sig);
        let won = match &self.role {
            Role::PreCandidate(v) | Role::Candidate(v) => self.voters_agree(|id| v.granted_by(id)),
            _ => false,
        };
        if won {
            self.win(now, pre);
        }
    }

    fn win(&mut self, now: Duration, pre: bool) {
        if pre {
            self.campaign(now, false);
        } else {
            let proof = match &self.role {
                Role::Candidate(v) => self.proof_from(v),
                _ => None,
            };
            self.become_leader(now);
            if let Role::Leader(l) = &mut self.role {
                l.proof = proof;
            }
            self.replicate_all(now);
        }
    }

    pub(super) fn become_leader(&mut self, now: Duration) {
        info!("node {} becomes leader in term {}", self.cfg.id, self.term);
        self.leader_id = Some(self.cfg.id);
        let next = self.log.next_index();
        let progress = self
            .peers()
            .into_iter()
            .map(|p| (p, Progress::new(next, self.peer_kind(p))))
            .collect();
        self.role = Role::Leader(LeaderState {
            progress,
            quorum_check_at: now + self.cfg.election_timeout_min,
            transfer: None,
            synced: self.log.config_key(self.commit_index),
            catch_up: BTreeMap::new(),
            departing: BTreeMap::new(),
            proof: None,
            proved: Default::default(),
        });
        // What this node forwarded and has not seen applied, it now
        // appends itself (copies of what the old leader did append are
        // skipped at apply).
        self.resend_unapplied(now, true);
        if self.cfg.elections() {
            // A no-op of the new term lets earlier entries commit (5.4.2).
            let noop = Proposal {
                command: Command::NOOP,
                client: None,
                sig: None,
            };
            self.proposals.insert(0, noop);
        }
        self.append_proposals(now);
        self.maybe_commit();
    }

    pub(super) fn become_follower(&mut self, term: u64, leader: Option<NodeId>, now: Duration) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        if self.mode() != Mode::Follower {
            debug!("node {} becomes follower in term {term}", self.cfg.id);
        }
        self.fail_waiting_changes();
        self.role = Role::follower();
        self.leader_id = leader.or(self.cfg.static_leader);
        self.reset_election_timer(now);
    }

    fn in_lease(&self, now: Duration) -> bool {
        if !self.cfg.check_quorum {
            return false;
        }
        if self.mode() == Mode::Leader {
            return true;
        }
        self.leader_id.is_some()
            && self
                .last_leader_contact
                .is_some_and(|t| now < t + self.cfg.election_timeout_min)
    }

    /// Raft 5.4.1: the candidate's log is at least as up to date as ours.
    fn log_ok(&self, req: &VoteRequest) -> bool {
        (req.last_log_term, req.last_log_index) >= (self.log.last_term(), self.log.last_index())
    }

    fn validate_vote(&self, req: &VoteRequest) -> Result<(), InvalidRequest> {
        if req.candidate_id == self.cfg.id || !self.is_member(req.candidate_id) {
            // A removed node (or a stranger) cannot disturb the cluster.
            return Err(InvalidRequest(format!(
                "candidate_id {} is not a peer of node {} (not in its configuration)",
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
