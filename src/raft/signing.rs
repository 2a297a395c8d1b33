//! Signed commands (issue 11), as the core sees them: the runtime signs
//! each command its node takes and checks others' signatures (the core
//! holds no key and does no cryptography); the core decides where: a
//! leader drops a forwarded command whose signature fails, and every node,
//! at apply, skips an entry that fails, so a leader cannot forge a click in
//! another node's name or replay one of them.

use std::fmt::Debug;

use super::membership::Membership;
use super::types::{ClientId, Command, Entry, NodeId, Sig};

/// The node's keys, as the core uses them: it signs the commands its node
/// takes and the votes it grants, and checks other members' signatures.
pub trait CommandAuth: Send + Sync + Debug {
    /// This node's signature over a command it takes (`None`: no key).
    fn sign(&self, id: &ClientId, command: &Command) -> Option<Sig>;
    /// Is `sig` node `id.node`'s signature over `(id, command)`, by the key
    /// `members` lists for it?
    fn verify(&self, members: &Membership, id: &ClientId, command: &Command, sig: &Sig) -> bool;
    /// Are all these signatures good? (One batch check is cheaper than
    /// one check each; false says only that some is not.)
    fn verify_all(&self, members: &Membership, items: &[(ClientId, &Command, &Sig)]) -> bool {
        items
            .iter()
            .all(|(id, c, s)| self.verify(members, id, c, s))
    }
    /// This node's signature of its vote for `candidate` in `term`.
    fn sign_vote(&self, vote: &Vote) -> Option<Sig>;
    /// Is `sig` `vote.voter`'s signature of that vote?
    fn verify_vote(&self, members: &Membership, vote: &Vote, sig: &Sig) -> bool;
}

/// A vote, as signed: in `term`, `voter` votes for `candidate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vote {
    pub term: u64,
    pub candidate: NodeId,
    pub voter: NodeId,
}

/// What a vote's signature covers.
pub fn vote_message(v: &Vote) -> Vec<u8> {
    format!("raftian-vote\n{}\n{}\n{}", v.term, v.candidate, v.voter).into_bytes()
}

/// What a signature covers.
pub fn command_message(id: &ClientId, command: &Command) -> Vec<u8> {
    format!(
        "raftian-cmd\n{}\n{}\n{}\n{command}",
        id.node, id.incarnation, id.seq
    )
    .into_bytes()
}

/// [`entry_ok`] for consecutive entries under one configuration. Each is
/// checked on its own, strictly: a batch check is faster but may answer
/// differently on crafted signatures, and every node must decide alike.
pub fn entries_ok(auth: Option<&dyn CommandAuth>, members: &Membership, es: &[Entry]) -> Vec<bool> {
    es.iter().map(|e| entry_ok(auth, members, e)).collect()
}

/// In a cluster with keys, may `next` follow `prev`? Every member keeps
/// its key and every new one brings one: a leader cannot switch keys off,
/// or give a member a key of its choosing to sign in its name.
pub fn keyed_step_ok(prev: &Membership, next: &Membership) -> bool {
    next.authenticated()
        && next
            .members()
            .iter()
            .all(|m| prev.get(m.id).is_none_or(|p| p.public_key == m.public_key))
}

/// May this entry be applied under `members` (the configuration in force
/// at its index)? Without keys everything may. With keys a client command
/// needs its taker's signature; a leader's own entries (its no-op, a
/// configuration, a stamp) carry none.
pub fn entry_ok(auth: Option<&dyn CommandAuth>, members: &Membership, e: &Entry) -> bool {
    let Some(auth) = auth.filter(|_| members.authenticated()) else {
        return true;
    };
    match (&e.command, e.client, &e.sig) {
        (Command::Config(_) | Command::Stamp(_), None, _) => true,
        (&Command::NOOP, None, None) => true,
        (c, Some(id), Some(sig)) if c.is_client_command() => auth.verify(members, &id, c, sig),
        _ => false,
    }
}
