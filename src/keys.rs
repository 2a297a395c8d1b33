//! Node keys and signed requests (issue 11). No cryptography here: ed25519
//! from `ed25519-dalek`, SHA-256 from `sha2`, base64 from `base64`.
//!
//! - `<data-dir>/node.key`: the node's ed25519 secret key, base64, mode
//!   0600 (`raftian keygen`). Its public key goes into the cluster file
//!   (`public_key = "..."`) or, for a node that joins, into the replicated
//!   configuration.
//! - A signed request carries `X-Raftian-Node: <sender id>` and
//!   `X-Raftian-Auth: <counter>.<signature>`; the signature covers the
//!   sender, the receiver, the counter and the SHA-256 of the body (which
//!   holds the method and its arguments). The counter is the sender's clock
//!   in microseconds, strictly increasing; a receiver refuses a counter it
//!   has seen, or one older than [`REPLAY_WINDOW`] behind the newest it saw.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::raft::NodeId;

/// The key file in a data dir.
pub const KEY_FILE: &str = "node.key";

/// How far behind the newest counter seen from a sender a request may be
/// (requests run concurrently, so they may arrive out of order).
pub const REPLAY_WINDOW: Duration = Duration::from_secs(5);

/// How far a request's counter (its sender's clock) may be from the
/// receiver's clock: the nodes' clocks must agree this well.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);

/// This machine's clock, µs since 1970 (what counters are made of).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// The node's key pair, made once (`raftian keygen`): an existing key is
/// kept, never replaced.
pub fn keygen(data_dir: &Path) -> Result<(SigningKey, bool), String> {
    if let Some(k) = load(data_dir)? {
        return Ok((k, false));
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let secret: [u8; 32] = rand::random();
    let key = SigningKey::from_bytes(&secret);
    write_private(&key_path(data_dir), &B64.encode(secret))?;
    Ok((key, true))
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    writeln!(f, "{text}")
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, format!("{text}\n")).map_err(|e| format!("{}: {e}", path.display()))
}

/// The key in `data_dir`, if it has one.
pub fn load(data_dir: &Path) -> Result<Option<SigningKey>, String> {
    let path = key_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let bytes = B64
        .decode(text.trim())
        .map_err(|e| format!("{}: not base64: {e}", path.display()))?;
    let secret: [u8; 32] = bytes
        .try_into()
        .map_err(|_| format!("{}: not a 32-byte ed25519 key", path.display()))?;
    Ok(Some(SigningKey::from_bytes(&secret)))
}

pub fn public_b64(key: &SigningKey) -> String {
    B64.encode(key.verifying_key().to_bytes())
}

/// A public key as the cluster file or a configuration spells it.
pub fn parse_public(text: &str) -> Result<VerifyingKey, String> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|e| format!("public key '{text}' is not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| format!("public key '{text}' is not 32 bytes"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("public key '{text}': {e}"))
}

fn request_message(sender: NodeId, receiver: NodeId, counter: u64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("raftian-rpc\n{sender}\n{receiver}\n{counter}\n").into_bytes();
    m.extend_from_slice(&Sha256::digest(body));
    m
}

/// The `X-Raftian-Auth` value for a request from `sender` to `receiver`.
pub fn sign_request(
    key: &SigningKey,
    sender: NodeId,
    receiver: NodeId,
    counter: u64,
    body: &[u8],
) -> String {
    let sig = key.sign(&request_message(sender, receiver, counter, body));
    format!("{counter}.{}", B64.encode(sig.to_bytes()))
}

/// Check an `X-Raftian-Auth` value; returns its counter.
pub fn verify_request(
    key: &VerifyingKey,
    sender: NodeId,
    receiver: NodeId,
    header: &str,
    body: &[u8],
) -> Result<u64, String> {
    let (counter, sig) = header
        .split_once('.')
        .ok_or("the auth header is not <counter>.<signature>")?;
    let counter: u64 = counter
        .parse()
        .map_err(|_| "bad counter in the auth header")?;
    let sig = B64.decode(sig).map_err(|_| "the signature is not base64")?;
    let sig = Signature::from_slice(&sig).map_err(|_| "the signature is not 64 bytes")?;
    key.verify_strict(&request_message(sender, receiver, counter, body), &sig)
        .map_err(|_| format!("bad signature for node {sender}"))?;
    Ok(counter)
}

/// Strictly increasing counters from the clock (microseconds since 1970).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn next(&self) -> u64 {
        let now = now_micros();
        let mut prev = self.0.load(Ordering::Relaxed);
        loop {
            let next = now.max(prev + 1);
            match self
                .0
                .compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }
}

/// What a receiver remembers of each sender's counters.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    by_sender: HashMap<NodeId, (u64, BTreeSet<u64>)>,
}

impl ReplayGuard {
    /// Take a counter once: a repeat, one older than the window behind the
    /// newest seen, or one further than [`CLOCK_SKEW`] from this node's
    /// clock (`now`, µs since 1970: a request recorded before a restart of
    /// this node is refused too) is refused.
    pub fn admit(&mut self, sender: NodeId, counter: u64, now: u64) -> Result<(), String> {
        let window = REPLAY_WINDOW.as_micros() as u64;
        if counter.abs_diff(now) > CLOCK_SKEW.as_micros() as u64 {
            return Err(format!(
                "request from node {sender} is stamped too far from this node's clock (replayed, or the clocks differ by over {} s)",
                CLOCK_SKEW.as_secs()
            ));
        }
        let (newest, seen) = self.by_sender.entry(sender).or_default();
        if counter.saturating_add(window) < *newest {
            return Err(format!(
                "request from node {sender} is older than the replay window"
            ));
        }
        if !seen.insert(counter) {
            return Err(format!("request from node {sender} was replayed"));
        }
        *newest = (*newest).max(counter);
        let floor = newest.saturating_sub(window);
        while seen.first().is_some_and(|c| *c < floor) {
            seen.pop_first();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_signed_request_verifies_only_as_sent() {
        let k = key(1);
        let h = sign_request(&k, 3, 0, 42, b"<methodCall>x</methodCall>");
        let pk = k.verifying_key();
        assert_eq!(
            verify_request(&pk, 3, 0, &h, b"<methodCall>x</methodCall>"),
            Ok(42)
        );
        assert!(
            verify_request(&pk, 3, 0, &h, b"<methodCall>y</methodCall>").is_err(),
            "body"
        );
        assert!(
            verify_request(&pk, 2, 0, &h, b"<methodCall>x</methodCall>").is_err(),
            "sender"
        );
        assert!(
            verify_request(&pk, 3, 1, &h, b"<methodCall>x</methodCall>").is_err(),
            "receiver"
        );
        let other = key(2).verifying_key();
        assert!(
            verify_request(&other, 3, 0, &h, b"<methodCall>x</methodCall>").is_err(),
            "key"
        );
        let bumped = h.replacen("42.", "43.", 1);
        assert!(verify_request(&pk, 3, 0, &bumped, b"<methodCall>x</methodCall>").is_err());
        assert!(verify_request(&pk, 3, 0, "garbage", b"").is_err());
    }

    #[test]
    fn replays_and_stale_counters_are_refused() {
        let mut g = ReplayGuard::default();
        let w = REPLAY_WINDOW.as_micros() as u64;
        let now = 10 * w;
        assert!(g.admit(1, 10 * w, now).is_ok());
        assert!(g.admit(1, 10 * w, now).is_err(), "replay");
        let reordered = g.admit(1, 10 * w - 5, now);
        assert!(reordered.is_ok(), "reordered within the window");
        assert!(g.admit(1, 8 * w, now).is_err(), "too old");
        assert!(g.admit(2, 8 * w, now).is_ok(), "senders are separate");
        let skew = CLOCK_SKEW.as_micros() as u64;
        assert!(
            g.admit(3, now - skew - 1, now).is_err(),
            "recorded long ago"
        );
        assert!(g.admit(3, now + skew + 1, now).is_err(), "from the future");
    }

    #[test]
    fn counters_increase_and_keys_round_trip() {
        let c = Counter::default();
        let a = c.next();
        assert!(c.next() > a);
        let dir = std::env::temp_dir().join(format!("raftian-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (k, made) = keygen(&dir).unwrap();
        assert!(made);
        let (again, made) = keygen(&dir).unwrap();
        assert!(!made, "an existing key is kept");
        assert_eq!(again.to_bytes(), k.to_bytes());
        assert_eq!(parse_public(&public_b64(&k)).unwrap(), k.verifying_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(&dir))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
