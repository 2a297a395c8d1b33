//! `status().state_digest` (issue 11): a SHA-256 chained over every entry
//! this node applied, in log order (copies skipped, as the game skips
//! them), carried in snapshots. Two nodes that applied the same entries up
//! to the same index show the same string, so two players can compare
//! their games by one value.

use sha2::{Digest, Sha256};

use crate::raft::{Command, Entry};

/// The snapshot document's key for it.
pub const DOC_KEY: &str = "stateDigest";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateDigest([u8; 32]);

impl StateDigest {
    /// Chain one applied entry.
    pub fn apply(&mut self, e: &Entry) {
        // Applied for every entry on the node's loop: fixed-size fields as
        // bytes, no text formatting.
        let mut h = Sha256::new();
        h.update(self.0);
        h.update(e.index.to_le_bytes());
        h.update(e.term.to_le_bytes());
        match &e.command {
            Command::Int(c) => {
                h.update([0]);
                h.update(c.to_le_bytes());
            }
            Command::Text(t) => {
                h.update([1]);
                h.update((t.len() as u64).to_le_bytes());
                h.update(t.as_bytes());
            }
            Command::Config(m) => {
                let text = m.to_string();
                h.update([2]);
                h.update((text.len() as u64).to_le_bytes());
                h.update(text.as_bytes());
            }
            Command::Stamp(st) => {
                h.update([3]);
                h.update(st.ms.to_le_bytes());
                h.update(st.limit.to_le_bytes());
            }
        }
        if let Some(c) = e.client {
            h.update([1]);
            for n in [c.node, c.incarnation, c.seq] {
                h.update(n.to_le_bytes());
            }
        }
        self.0 = h.finalize().into();
    }

    pub fn hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 15)]));
        }
        s
    }

    /// From a snapshot document (a document from before digests: zero).
    pub fn from_doc(data: &[u8]) -> Result<Self, String> {
        let doc: serde_json::Value =
            serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
        let Some(text) = doc.get(DOC_KEY).and_then(|v| v.as_str()) else {
            return Ok(StateDigest::default());
        };
        if text.len() != 64 || !text.is_ascii() {
            return Err(format!("{DOC_KEY} '{text}' is not 64 hex digits"));
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| format!("{DOC_KEY} '{text}' is not hex"))?;
        }
        Ok(StateDigest(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64, c: i32) -> Entry {
        Entry {
            term: 1,
            index,
            command: Command::Int(c),
            client: None,
            sig: None,
        }
    }

    #[test]
    fn the_chain_depends_on_every_entry_and_its_order() {
        let (mut a, mut b) = (StateDigest::default(), StateDigest::default());
        a.apply(&e(1, 2));
        a.apply(&e(2, 3));
        b.apply(&e(1, 3));
        b.apply(&e(2, 2));
        assert_ne!(a, b);
        let doc = format!("{{\"{DOC_KEY}\": \"{}\"}}", a.hex());
        assert_eq!(StateDigest::from_doc(doc.as_bytes()).unwrap(), a);
        assert_eq!(
            StateDigest::from_doc(b"{}").unwrap(),
            StateDigest::default()
        );
        assert!(StateDigest::from_doc(b"{\"stateDigest\": \"zz\"}").is_err());
    }

    #[test]
    fn hex_is_two_lowercase_digits_per_byte() {
        let mut d = StateDigest::default();
        d.0[0] = 0x0a;
        d.0[1] = 0xf3;
        d.0[31] = 0xff;
        let h = d.hex();
        assert_eq!(h.len(), 64);
        assert!(h.starts_with("0af300"), "{h}");
        assert!(h.ends_with("00ff"), "{h}");
        let formatted: String = d.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(h, formatted);
    }
}
