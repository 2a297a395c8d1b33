//! Cluster membership (Ongaro's thesis chapter 4, raft-rs's `confchange/`):
//! who is in the cluster, who votes, and the single-server changes that
//! move from one configuration to the next.
//!
//! A configuration travels whole inside a log entry
//! ([`Command::Config`](super::Command::Config)), so a node that holds the
//! entry knows every member's name and address without asking anyone.
//! Every node uses the latest configuration in its log, committed or not
//! (thesis 4.1); the cluster file is only the one before the first change.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::types::NodeId;

/// Highest id a joining node can get: ids 1-15 are the 15 cells of the
/// 4x4 board (node 0 hosts and has no cell).
pub const MAX_PLAYER_ID: NodeId = 15;

/// One member of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    pub id: NodeId,
    pub name: String,
    pub addr: String,
    /// A learner (false) receives the log but neither votes nor campaigns,
    /// and does not count toward any majority.
    pub voter: bool,
    /// The node's ed25519 public key (base64), in an authenticated cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// A configuration: the members, sorted by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    members: Vec<Member>,
    /// The highest id ever a member: ids are never given twice, so a
    /// removed node that comes back with old commands is never taken for
    /// the node that got its id.
    #[serde(default)]
    max_id: NodeId,
}

/// A single-server change (thesis 4.1): each one moves a configuration to
/// one whose majorities overlap it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfChange {
    /// A new member, as a learner.
    AddLearner(Member),
    /// A caught-up learner starts voting.
    Promote(NodeId),
    Remove(NodeId),
}

impl Membership {
    /// Members in any order; fails on a repeated id, name or address.
    pub fn new(mut members: Vec<Member>) -> Result<Self, String> {
        members.sort_by_key(|m| m.id);
        let max_id = members.iter().map(|m| m.id).max().unwrap_or(0);
        let m = Membership { members, max_id };
        for (i, a) in m.members.iter().enumerate() {
            if let Some(b) = m.members[i + 1..].iter().find(|b| clash(a, b)) {
                return Err(format!("members {} and {} clash: {a} / {b}", a.id, b.id));
            }
        }
        Ok(m)
    }

    /// A configuration as it arrived (wire, snapshot): checked like
    /// [`Membership::new`], keeping its record of ids given.
    pub fn checked(self) -> Result<Self, String> {
        let max_id = self.max_id;
        let mut m = Membership::new(self.members)?;
        m.max_id = m.max_id.max(max_id);
        Ok(m)
    }

    /// Every node a voter, no names or addresses (tests and simulations).
    pub fn voters(ids: impl IntoIterator<Item = NodeId>) -> Self {
        let members = ids.into_iter().map(|id| Member {
            id,
            name: format!("node{id}"),
            addr: String::new(),
            voter: true,
            public_key: None,
        });
        Membership::new(members.collect()).expect("distinct ids")
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn get(&self, id: NodeId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.get(id).is_some()
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.get(id).is_some_and(|m| m.voter)
    }

    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().map(|m| m.id)
    }

    pub fn voter_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().filter(|m| m.voter).map(|m| m.id)
    }

    pub fn voter_count(&self) -> usize {
        self.members.iter().filter(|m| m.voter).count()
    }

    /// Does every member have a public key (requests must be signed)?
    pub fn authenticated(&self) -> bool {
        !self.members.is_empty() && self.members.iter().all(|m| m.public_key.is_some())
    }

    pub fn learner_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().filter(|m| !m.voter).map(|m| m.id)
    }

    /// The next id never given (1-15; `None`: the board is full).
    pub fn next_free_id(&self) -> Option<NodeId> {
        let next = self.max_id + 1;
        (next <= MAX_PLAYER_ID).then_some(next.max(1))
    }

    /// The member with this address, if any.
    pub fn by_addr(&self, addr: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.addr == addr)
    }

    /// The configuration after `change`, or why the change is refused.
    pub fn apply(&self, change: &ConfChange) -> Result<Membership, String> {
        let mut members = self.members.clone();
        match change {
            ConfChange::AddLearner(m) => {
                if let Some(b) = members.iter().find(|b| clash(m, b)) {
                    return Err(format!("already in use by member {}: {b}", b.id));
                }
                members.push(Member {
                    voter: false,
                    ..m.clone()
                });
            }
            ConfChange::Promote(id) => match members.iter_mut().find(|m| m.id == *id) {
                Some(m) if !m.voter => m.voter = true,
                Some(_) => return Err(format!("node {id} already votes")),
                None => return Err(format!("node {id} is not a member")),
            },
            ConfChange::Remove(id) => {
                let Some(pos) = members.iter().position(|m| m.id == *id) else {
                    return Err(format!("node {id} is not a member"));
                };
                if members[pos].voter && self.voter_count() == 1 {
                    return Err(format!("node {id} is the last voter"));
                }
                members.remove(pos);
            }
        }
        let mut next = Membership::new(members)?;
        next.max_id = next.max_id.max(self.max_id);
        Ok(next)
    }
}

/// Two members that cannot both be in one configuration.
fn clash(a: &Member, b: &Member) -> bool {
    a.id == b.id || a.name == b.name || (!a.addr.is_empty() && a.addr == b.addr)
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = if self.voter { "voter" } else { "learner" };
        write!(f, "{} {} {} {role}", self.id, self.name, self.addr)
    }
}

/// One line, as the log files show a configuration entry.
impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("config:")?;
        for (i, m) in self.members.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{m}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: NodeId, voter: bool) -> Member {
        Member {
            id,
            name: format!("n{id}"),
            addr: format!("127.0.0.1:{}", 9000 + id),
            voter,
            public_key: None,
        }
    }

    fn three() -> Membership {
        Membership::new(vec![member(2, true), member(0, true), member(1, true)]).unwrap()
    }

    #[test]
    fn add_promote_remove() {
        let c = three();
        let c = c.apply(&ConfChange::AddLearner(member(3, true))).unwrap();
        assert!(c.contains(3) && !c.is_voter(3), "joins as a learner");
        assert_eq!(c.voter_count(), 3);
        let c = c.apply(&ConfChange::Promote(3)).unwrap();
        assert_eq!(c.voter_ids().collect::<Vec<_>>(), [0, 1, 2, 3]);
        let c = c.apply(&ConfChange::Remove(3)).unwrap();
        assert_eq!(c.ids().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(c.next_free_id(), Some(4), "ids are never given twice");
    }

    #[test]
    fn clashing_and_impossible_changes_are_refused() {
        let c = three();
        let mut dup_name = member(5, false);
        dup_name.name = "n1".into();
        assert!(c.apply(&ConfChange::AddLearner(dup_name)).is_err());
        let mut dup_addr = member(5, false);
        dup_addr.addr = "127.0.0.1:9002".into();
        assert!(c.apply(&ConfChange::AddLearner(dup_addr)).is_err());
        assert!(c.apply(&ConfChange::Promote(1)).is_err(), "already votes");
        assert!(c.apply(&ConfChange::Remove(9)).is_err(), "unknown id");
        let last = Membership::new(vec![member(0, true), member(4, false)]).unwrap();
        assert!(last.apply(&ConfChange::Remove(0)).is_err(), "last voter");
        assert!(last.apply(&ConfChange::Remove(4)).is_ok());
    }

    #[test]
    fn next_free_id_skips_members_and_node_0() {
        let c = three();
        assert_eq!(c.next_free_id(), Some(3));
        let full = Membership::voters(0..=MAX_PLAYER_ID);
        assert_eq!(full.next_free_id(), None);
    }
}
