//! Signed commands (issue 11), as the core sees them: the runtime signs
//! each command its node takes and checks others' signatures (the core
//! holds no key and does no cryptography); the core decides where: a
//! leader drops a forwarded command whose signature fails, and every node,
//! at apply, skips an entry that fails, so a leader cannot forge a click in
//! another node's name or replay one of them.

use std::fmt::Debug;

use super::membership::Membership;
use super::types::{ClientId, Command, Entry, Sig};

pub trait CommandAuth: Send + Sync + Debug {
    /// This node's signature over a command it takes (`None`: no key).
    fn sign(&self, id: &ClientId, command: &Command) -> Option<Sig>;
    /// Is `sig` node `id.node`'s signature over `(id, command)`, by the key
    /// `members` lists for it?
    fn verify(&self, members: &Membership, id: &ClientId, command: &Command, sig: &Sig) -> bool;
}

/// What a signature covers.
pub fn command_message(id: &ClientId, command: &Command) -> Vec<u8> {
    format!(
        "raftian-cmd\n{}\n{}\n{}\n{command}",
        id.node, id.incarnation, id.seq
    )
    .into_bytes()
}

/// May this entry be applied under `members` (the configuration in force
/// at its index)? Without keys everything may. With keys a client command
/// needs its taker's signature; a leader's own entries (its no-op, a
/// configuration) carry none.
pub fn entry_ok(auth: Option<&dyn CommandAuth>, members: &Membership, e: &Entry) -> bool {
    let Some(auth) = auth.filter(|_| members.authenticated()) else {
        return true;
    };
    match (&e.command, e.client, &e.sig) {
        (Command::Config(_), None, _) => true,
        (&Command::NOOP, None, None) => true,
        (c, Some(id), Some(sig)) => auth.verify(members, &id, c, sig),
        _ => false,
    }
}
