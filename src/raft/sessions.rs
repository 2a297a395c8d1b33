//! The replicated table of client sessions (Raft paper section 8, Ongaro's
//! thesis section 6.3): which client commands were applied, so that a
//! command applies at most once however many times it reached the log (a
//! forward resent after a lost answer, a new leader proposing what its old
//! leader may have appended).
//!
//! Every node updates it in log order as it applies entries, so it is the
//! same on every node at the same index: part of the replicated state (it
//! goes into snapshots with the game). It stays small: one session per
//! node, the latest incarnation of that node; a node's forwarder resends
//! each command until it sees it applied, so the seqs above the contiguous
//! prefix fill in.

use std::collections::{BTreeMap, BTreeSet};

use super::types::{ClientId, NodeId};

/// What one node's latest session has applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub incarnation: u64,
    /// Every seq up to this one was applied (0: none).
    pub applied_upto: u64,
    /// Applied seqs above `applied_upto` (commands that overtook others).
    pub applied_above: BTreeSet<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionTable {
    by_node: BTreeMap<NodeId, Session>,
}

impl SessionTable {
    /// Should the command with this id be applied? Records it if so. A
    /// command of an older incarnation than the node's latest is not: that
    /// incarnation ended (the node restarted), and its commands may only
    /// be late copies.
    pub fn admit(&mut self, id: ClientId) -> bool {
        let s = self.by_node.entry(id.node).or_default();
        if id.incarnation < s.incarnation {
            return false;
        }
        if id.incarnation > s.incarnation {
            *s = Session {
                incarnation: id.incarnation,
                ..Session::default()
            };
        }
        if id.seq <= s.applied_upto || !s.applied_above.insert(id.seq) {
            return false;
        }
        while s.applied_above.remove(&(s.applied_upto + 1)) {
            s.applied_upto += 1;
        }
        true
    }

    /// Has this command been applied (or is it too old to be)?
    pub fn is_applied(&self, id: ClientId) -> bool {
        self.by_node.get(&id.node).is_some_and(|s| {
            id.incarnation < s.incarnation
                || (id.incarnation == s.incarnation
                    && (id.seq <= s.applied_upto || s.applied_above.contains(&id.seq)))
        })
    }

    /// Keep only the sessions of these nodes (the members).
    pub fn retain_nodes(&mut self, keep: impl Fn(NodeId) -> bool) {
        self.by_node.retain(|n, _| keep(*n));
    }

    pub fn sessions(&self) -> impl Iterator<Item = (&NodeId, &Session)> {
        self.by_node.iter()
    }

    /// The table as it goes into a snapshot document.
    pub fn to_json(&self) -> serde_json::Value {
        let rows = self.by_node.iter().map(|(node, s)| {
            serde_json::json!({
                "node": node,
                "incarnation": s.incarnation,
                "appliedUpto": s.applied_upto,
                "appliedAbove": s.applied_above,
            })
        });
        serde_json::Value::Array(rows.collect())
    }

    /// The table back from a snapshot document.
    pub fn from_json(v: &serde_json::Value) -> Result<Self, String> {
        let rows = v.as_array().ok_or("sessions is not an array")?;
        let mut t = SessionTable::default();
        for row in rows {
            let num = |k: &str| {
                row.get(k)
                    .and_then(serde_json::Value::as_u64)
                    .ok_or(format!("a session has no number '{k}'"))
            };
            let above = row
                .get("appliedAbove")
                .and_then(serde_json::Value::as_array)
                .ok_or("a session has no appliedAbove")?;
            let above: Option<BTreeSet<u64>> =
                above.iter().map(serde_json::Value::as_u64).collect();
            let session = Session {
                incarnation: num("incarnation")?,
                applied_upto: num("appliedUpto")?,
                applied_above: above.ok_or("appliedAbove holds a non-number")?,
            };
            t.by_node.insert(num("node")?, session);
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(node: NodeId, incarnation: u64, seq: u64) -> ClientId {
        ClientId {
            node,
            incarnation,
            seq,
        }
    }

    #[test]
    fn each_command_applies_once() {
        let mut t = SessionTable::default();
        assert!(t.admit(id(1, 3, 1)));
        assert!(!t.admit(id(1, 3, 1)));
        assert!(t.admit(id(1, 3, 2)));
        assert!(t.admit(id(2, 3, 1)), "sessions of other nodes are separate");
        assert!(t.is_applied(id(1, 3, 2)));
        assert!(!t.is_applied(id(1, 3, 3)));
    }

    #[test]
    fn commands_that_overtake_others_still_apply_once() {
        let mut t = SessionTable::default();
        assert!(t.admit(id(1, 1, 2)));
        assert!(t.admit(id(1, 1, 4)));
        assert!(!t.admit(id(1, 1, 4)));
        assert!(t.admit(id(1, 1, 1)), "the gap fills in");
        assert!(t.admit(id(1, 1, 3)));
        let s = t.sessions().next().unwrap().1;
        assert_eq!(s.applied_upto, 4);
        assert!(s.applied_above.is_empty(), "the table shrinks back");
    }

    #[test]
    fn an_older_incarnation_is_never_applied_again() {
        let mut t = SessionTable::default();
        assert!(t.admit(id(1, 1, 1)));
        assert!(t.admit(id(1, 2, 1)));
        assert!(!t.admit(id(1, 1, 2)), "late copy from before a restart");
        assert!(t.is_applied(id(1, 1, 7)));
        assert_eq!(t.sessions().count(), 1, "one session per node");
    }

    #[test]
    fn the_table_survives_a_snapshot() {
        let mut t = SessionTable::default();
        for (node, seq) in [(1, 1), (1, 3), (2, 1)] {
            t.admit(id(node, 4, seq));
        }
        let back = SessionTable::from_json(&t.to_json()).unwrap();
        assert_eq!(back, t);
        assert!(SessionTable::from_json(&serde_json::json!([{"node": 1}])).is_err());
    }
}
