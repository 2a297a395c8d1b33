//! Leadership transfer (Ongaro's thesis section 3.10): the leader stops
//! taking new commands, brings the target up to date, and sends it
//! `timeout_now_rpc`; the target campaigns at once, and its vote requests
//! carry the transfer flag so that voters still in the old leader's lease
//! vote anyway. A transfer that has not happened within an election
//! timeout is given up, and the leader takes commands again.

use std::time::Duration;

use log::{info, warn};

use super::pending::Pending;
use super::role::Transfer;
use super::*;
use crate::raft::progress::Progress;

impl Raft {
    /// `transfer_leader_rpc(target)`: start handing over; answers the
    /// target chosen.
    pub(super) fn start_transfer(
        &mut self,
        now: Duration,
        target: Option<NodeId>,
    ) -> Result<NodeId, InvalidRequest> {
        let refuse = |m: String| Err(InvalidRequest(m));
        if !self.cfg.elections() {
            return refuse("static-leader mode: the leader does not change".into());
        }
        let timeout = self.cfg.election_timeout_max;
        let members = self.membership();
        let Role::Leader(l) = &mut self.role else {
            return refuse(format!("not the leader (node {:?} leads)", self.leader_id));
        };
        if l.transfer.is_some() {
            return refuse("a leadership transfer is already under way".into());
        }
        // Only a Rust voter can lead: learners do not campaign.
        let rust = |id: NodeId, p: &Progress| p.kind() == PeerKind::Rust && members.is_voter(id);
        let target = match target {
            Some(t) if l.progress.get(&t).is_some_and(|p| rust(t, p)) => t,
            Some(t) => return refuse(format!("node {t} is not a Rust member that can lead")),
            // The most up-to-date voter (ties: the lowest id).
            None => match l
                .progress
                .iter()
                .filter(|(id, p)| rust(**id, p))
                .max_by_key(|(id, p)| (p.matched(), std::cmp::Reverse(**id)))
            {
                Some((id, _)) => *id,
                None => return refuse("no Rust member can take over".into()),
            },
        };
        l.transfer = Some(Transfer {
            target,
            deadline: now + timeout,
            sent: false,
        });
        info!(
            "node {}: handing leadership over to node {target}",
            self.cfg.id
        );
        Ok(target)
    }

    /// The leader's part of a transfer in `service_actions`: give up after
    /// the deadline, or tell a caught-up target to campaign. True while a
    /// transfer is under way (no new commands meanwhile).
    pub(super) fn drive_transfer(&mut self, now: Duration) -> bool {
        let last = self.log.last_index();
        let Role::Leader(l) = &mut self.role else {
            return false;
        };
        let Some(t) = &mut l.transfer else {
            return false;
        };
        if now >= t.deadline {
            warn!(
                "node {}: node {} did not take over in time: leading on",
                self.cfg.id, t.target
            );
            l.transfer = None;
            if !self.promotable() {
                // Removed: it may not lead on.
                self.become_follower(self.term, None, now);
                return true;
            }
            return false;
        }
        let caught_up = l
            .progress
            .get(&t.target)
            .is_some_and(|p| p.matched() == last);
        if caught_up && !t.sent {
            t.sent = true;
            let (to, term) = (t.target, self.term);
            self.send(
                to,
                Rpc::TimeoutNow { term },
                Pending::TimeoutNow { sent_at: now },
            );
        }
        true
    }

    pub(super) fn transfer_deadline(&self) -> Option<Duration> {
        match &self.role {
            Role::Leader(l) => l.transfer.as_ref().map(|t| t.deadline),
            _ => None,
        }
    }

    /// `timeout_now_rpc(term)` from our leader: campaign now.
    pub(super) fn step_timeout_now(
        &mut self,
        now: Duration,
        term: u64,
        from: Option<NodeId>,
    ) -> Result<u64, InvalidRequest> {
        if term > WIRE_MAX {
            return Err(InvalidRequest(format!("term {term} is out of range")));
        }
        let from_leader = from.is_some() && from == self.leader_id;
        if term == self.term
            && from_leader
            && self.mode() == Mode::Follower
            && self.cfg.elections()
            && self.promotable()
        {
            info!("node {}: asked to take over: campaigning", self.cfg.id);
            self.campaign_transfer(now);
        }
        Ok(self.term)
    }
}
