//! Signed votes (issue 11): in a cluster with keys a granted vote is the
//! voter's signature over (term, candidate, voter); a new leader keeps the
//! votes that elected it and sends them with its appends until each
//! follower took them, and a follower takes appends of a term only from a
//! leader that proved a majority of its voters' votes for that term. A
//! member cannot make itself leader without votes.

use std::sync::Arc;

use super::*;
use crate::raft::signing::Vote;

/// With keys, a term further ahead than this, in a vote request or a
/// reply, is not taken: a member could otherwise push every node to the
/// wire's last term, where no election is possible any more.
const MAX_TERM_JUMP: u64 = 1000;

impl Raft {
    /// A term a member may not push this node to (see `MAX_TERM_JUMP`).
    pub(super) fn absurd_term(&self, term: u64) -> bool {
        self.signed_votes() && term > self.term.saturating_add(MAX_TERM_JUMP)
    }

    /// Do votes and leaders have to be signed here?
    pub(super) fn signed_votes(&self) -> bool {
        self.cfg.command_auth.is_some() && self.cfg.elections() && self.membership().authenticated()
    }

    /// This node's signature of its vote for `candidate` in this term.
    pub(super) fn sign_vote(&self, candidate: NodeId) -> Option<Sig> {
        if !self.signed_votes() {
            return None;
        }
        let vote = Vote {
            term: self.term,
            candidate,
            voter: self.cfg.id,
        };
        self.cfg.command_auth.as_ref()?.sign_vote(&vote)
    }

    /// A granted vote counts only with its voter's valid signature.
    pub(super) fn vote_counts(&self, term: u64, voter: NodeId, sig: Option<&Sig>) -> bool {
        if !self.signed_votes() {
            return true;
        }
        let (Some(auth), Some(sig)) = (self.cfg.command_auth.as_ref(), sig) else {
            return false;
        };
        let vote = Vote {
            term,
            candidate: self.cfg.id,
            voter,
        };
        auth.verify_vote(&self.membership(), &vote, sig)
    }

    /// Before any change: an append of a new term must come with the votes
    /// that elected its sender (once per term and leader).
    pub(super) fn check_leader_proof(
        &mut self,
        req: &AppendEntries,
        from: Option<NodeId>,
    ) -> Result<(), InvalidRequest> {
        if !self.signed_votes() || req.term < self.term {
            return Ok(()); // a stale leader is refused without change anyway
        }
        let Some(leader) = from else {
            return Err(InvalidRequest(
                "an append must be signed by its leader".into(),
            ));
        };
        if self.proven == Some((req.term, leader)) {
            return Ok(());
        }
        let proved = req
            .proof
            .as_ref()
            .is_some_and(|p| self.proof_holds(req.term, leader, p));
        if !proved {
            return Err(InvalidRequest(format!(
                "no proof that node {leader} was elected in term {}: refused",
                req.term
            )));
        }
        self.proven = Some((req.term, leader));
        Ok(())
    }

    fn proof_holds(&self, term: u64, candidate: NodeId, proof: &VoteProof) -> bool {
        let Some(auth) = self.cfg.command_auth.as_ref() else {
            return false;
        };
        let members = self.membership();
        let mut voters: Vec<NodeId> = proof
            .iter()
            .filter(|(voter, sig)| {
                let vote = Vote {
                    term,
                    candidate,
                    voter: *voter,
                };
                members.is_voter(*voter) && auth.verify_vote(&members, &vote, sig)
            })
            .map(|(voter, _)| *voter)
            .collect();
        voters.sort_unstable();
        voters.dedup();
        self.voters_agree(|v| voters.contains(&v))
    }

    /// With keys, a follower takes no batch holding a command whose
    /// signature fails (a leader forging clicks gets a Fault and commits
    /// nothing with an honest majority); what was committed anyway is
    /// skipped at apply. Entries the log does not hold yet only: what it holds was checked.
    pub(super) fn check_signatures(&self, entries: &[Entry]) -> Result<(), InvalidRequest> {
        if !self.signed_votes() {
            return Ok(());
        }
        let auth = self.cfg.command_auth.as_deref();
        let new: Vec<&Entry> = entries
            .iter()
            .filter(|e| !self.log.matches(e.index, e.term))
            .collect();
        let Some(first) = new.first() else {
            return Ok(());
        };
        // Each entry is checked under the configuration in force before it
        // (a batch may add a node and then carry its clicks).
        let before = first
            .index
            .checked_sub(1)
            .and_then(|i| self.log.config_at(i));
        let mut members = before.cloned().unwrap_or_else(|| self.membership());
        let refuse = |e: &Entry, why: &str| {
            Err(InvalidRequest(format!(
                "entry {} {why}: batch refused",
                e.index
            )))
        };
        for e in new {
            if let Command::Config(next) = &e.command {
                if !crate::raft::signing::keyed_step_ok(&members, next) {
                    return refuse(e, "drops or changes a member's key");
                }
                members = next.clone();
            } else if !crate::raft::signing::entry_ok(auth, &members, e) {
                return refuse(e, "fails its signature check");
            }
        }
        Ok(())
    }

    /// The proof to send `to` with an append (until it took one).
    pub(super) fn proof_for(&self, to: NodeId) -> Option<VoteProof> {
        match &self.role {
            Role::Leader(l) if !l.proved.contains(&to) => l.proof.clone(),
            _ => None,
        }
    }

    /// The votes that made this node leader (its own included).
    pub(super) fn proof_from(&self, votes: &super::role::Votes) -> Option<VoteProof> {
        if !self.signed_votes() {
            return None;
        }
        let own = self.sign_vote(self.cfg.id)?;
        let mut all: Vec<(NodeId, Sig)> = votes.signatures().collect();
        all.push((self.cfg.id, own));
        Some(Arc::from(all))
    }
}
