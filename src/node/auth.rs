//! Authenticated peers (issue 11): when every member of the configuration
//! has a public key, every request a node sends is signed (see
//! [`crate::keys`]) and every state-changing request it takes must be.
//!
//! The server checks the signature before any handler runs and passes its
//! verdict to the handlers in a header it sets itself (a client's own copy
//! of that header is dropped first), so each method decides what it needs:
//! a member's signature (Raft and membership methods), this node's own
//! (clicks), or nothing (`status`, `is_log_empty`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::http::{HeaderMap, HeaderValue};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use super::server::NODE_HEADER;
use crate::keys::{self, Counter, ReplayGuard};
use crate::raft::signing::{self, CommandAuth, Vote};
use crate::raft::{ClientId, Command, Membership, NodeId, Sig};

/// `<counter>.<signature>` of a signed request.
pub const AUTH_HEADER: &str = "x-raftian-auth";
/// Set by the server only: the sender whose signature checked out.
pub const VERIFIED_HEADER: &str = "x-raftian-verified";
/// Set by the server only: why a signature did not check out.
pub const AUTH_ERROR_HEADER: &str = "x-raftian-auth-error";

#[derive(Debug)]
pub struct Auth {
    me: NodeId,
    key: Option<SigningKey>,
    ring: RwLock<HashMap<NodeId, VerifyingKey>>,
    /// The current members (a removed member's key stays in `ring`, so
    /// that it can still be told of its removal, but it is no member).
    members: RwLock<std::collections::HashSet<NodeId>>,
    on: AtomicBool,
    counter: Counter,
    replay: Mutex<ReplayGuard>,
}

impl Auth {
    pub fn new(me: NodeId, key: Option<SigningKey>) -> Arc<Self> {
        Arc::new(Auth {
            me,
            key,
            ring: RwLock::default(),
            members: RwLock::default(),
            on: AtomicBool::new(false),
            counter: Counter::default(),
            replay: Mutex::default(),
        })
    }

    /// The configuration changed: whose keys to believe, and whether
    /// requests must be signed at all.
    pub fn set_members(&self, members: &Membership) {
        let ring: HashMap<NodeId, VerifyingKey> = members
            .members()
            .iter()
            .filter_map(|m| Some((m.id, keys::parse_public(m.public_key.as_deref()?).ok()?)))
            .collect();
        let mut held = self.ring.write().unwrap_or_else(|p| p.into_inner());
        // Keys of removed members stay: they may still need to hear that
        // they were removed, and their requests are refused as non-members.
        held.extend(ring);
        *self.members.write().unwrap_or_else(|p| p.into_inner()) = members.ids().collect();
        self.on.store(
            members.authenticated() && self.key.is_some(),
            Ordering::Relaxed,
        );
    }

    /// Must requests be signed?
    pub fn on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Is `id` a member of the current configuration?
    pub fn is_member(&self, id: NodeId) -> bool {
        let m = self.members.read().unwrap_or_else(|p| p.into_inner());
        m.contains(&id)
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    pub fn signing_key(&self) -> Option<SigningKey> {
        self.key.clone()
    }

    /// The headers that sign `body` for `receiver` (none without a key).
    pub fn sign(&self, receiver: NodeId, body: &[u8]) -> Option<String> {
        let key = self.key.as_ref()?;
        let counter = self.counter.next();
        Some(keys::sign_request(key, self.me, receiver, counter, body))
    }

    /// Check a request's signature and record the verdict in `headers` for
    /// the handlers.
    pub fn check(&self, headers: &mut HeaderMap, body: &[u8]) {
        headers.remove(VERIFIED_HEADER);
        headers.remove(AUTH_ERROR_HEADER);
        let Some(sig) = headers.get(AUTH_HEADER).and_then(|v| v.to_str().ok()) else {
            return;
        };
        let verdict = self.verify(headers, sig, body);
        let (name, value) = match verdict {
            Ok(id) => (VERIFIED_HEADER, id.to_string()),
            Err(e) => (AUTH_ERROR_HEADER, e),
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }

    fn verify(&self, headers: &HeaderMap, sig: &str, body: &[u8]) -> Result<NodeId, String> {
        let sender: NodeId = headers
            .get(NODE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse().ok())
            .ok_or("a signed request must name its sender (X-Raftian-Node)")?;
        let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
        let key = ring
            .get(&sender)
            .ok_or_else(|| format!("node {sender} has no known key"))?;
        let counter = keys::verify_request(key, sender, self.me, sig, body)?;
        drop(ring);
        let mut replay = self.replay.lock().unwrap_or_else(|p| p.into_inner());
        replay.admit(sender, counter, keys::now_micros())?;
        Ok(sender)
    }
}

/// The verdict [`Auth::check`] left: the verified sender, or why not.
pub fn verified(headers: &HeaderMap) -> Result<NodeId, String> {
    if let Some(id) = headers
        .get(VERIFIED_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
    {
        return Ok(id);
    }
    match headers.get(AUTH_ERROR_HEADER).and_then(|v| v.to_str().ok()) {
        Some(e) => Err(e.to_owned()),
        None => Err("the request is not signed".into()),
    }
}

/// The runtime's side of signed commands ([`CommandAuth`]): signs with
/// this node's key, checks with the keys the configuration lists.
#[derive(Debug)]
pub struct CommandKeys {
    key: Option<SigningKey>,
    /// Parsed keys, by their text (parsing a point is not free).
    parsed: Mutex<HashMap<String, Option<VerifyingKey>>>,
}

impl CommandKeys {
    pub fn new(key: Option<SigningKey>) -> Arc<Self> {
        Arc::new(CommandKeys {
            key,
            parsed: Mutex::default(),
        })
    }

    fn key_of(&self, members: &Membership, node: NodeId) -> Option<VerifyingKey> {
        let text = members.get(node)?.public_key.as_deref()?;
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        *parsed
            .entry(text.to_owned())
            .or_insert_with(|| keys::parse_public(text).ok())
    }
}

impl CommandAuth for CommandKeys {
    fn sign(&self, id: &ClientId, command: &Command) -> Option<Sig> {
        let key = self.key.as_ref()?;
        let sig = key.sign(&signing::command_message(id, command));
        Some(Arc::new(sig.to_bytes()))
    }

    fn verify(&self, members: &Membership, id: &ClientId, command: &Command, sig: &Sig) -> bool {
        self.check(
            members,
            id.node,
            &signing::command_message(id, command),
            sig,
        )
    }

    fn sign_vote(&self, vote: &Vote) -> Option<Sig> {
        let key = self.key.as_ref()?;
        Some(Arc::new(key.sign(&signing::vote_message(vote)).to_bytes()))
    }

    fn verify_vote(&self, members: &Membership, vote: &Vote, sig: &Sig) -> bool {
        self.check(members, vote.voter, &signing::vote_message(vote), sig)
    }
}

impl CommandKeys {
    fn check(&self, members: &Membership, signer: NodeId, message: &[u8], sig: &Sig) -> bool {
        let Some(key) = self.key_of(members, signer) else {
            return false;
        };
        // verify_strict: the same answer on every node for every input
        // (batch checking and the lax check may differ on crafted ones).
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        key.verify_strict(message, &sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Entry, Member};

    fn members(keys: &[&SigningKey]) -> Membership {
        let m = keys.iter().enumerate().map(|(i, k)| Member {
            id: i as NodeId,
            name: format!("n{i}"),
            addr: format!("127.0.0.1:{}", 9100 + i),
            voter: true,
            public_key: Some(keys::public_b64(k)),
        });
        Membership::new(m.collect()).unwrap()
    }

    fn entry(index: u64, node: NodeId, seq: u64, sig: Option<Sig>) -> Entry {
        Entry {
            term: 1,
            index,
            command: Command::Int(2),
            client: Some(ClientId {
                node,
                incarnation: 1,
                seq,
            }),
            sig,
        }
    }

    #[test]
    fn a_run_with_one_forgery_finds_it() {
        let (k0, k1) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let m = members(&[&k0, &k1]);
        let a0 = CommandKeys::new(Some(k0.clone()));
        let a1 = CommandKeys::new(Some(k1));
        let id = |node, seq| ClientId {
            node,
            incarnation: 1,
            seq,
        };
        let good0 = a0.sign(&id(0, 1), &Command::Int(2));
        let good1 = a1.sign(&id(1, 1), &Command::Int(2));
        // Node 0 signing a click in node 1's name.
        let forged = a0.sign(&id(1, 2), &Command::Int(2));
        let es = vec![
            entry(1, 0, 1, good0.clone()),
            entry(2, 1, 1, good1.clone()),
            entry(3, 1, 2, forged),
            entry(4, 0, 2, None),
        ];
        let auth: &dyn CommandAuth = &*a0;
        assert_eq!(
            signing::entries_ok(Some(auth), &m, &es),
            [true, true, false, false]
        );
        let ok = vec![entry(1, 0, 1, good0), entry(2, 1, 1, good1)];
        assert_eq!(signing::entries_ok(Some(auth), &m, &ok), [true, true]);
    }
}
