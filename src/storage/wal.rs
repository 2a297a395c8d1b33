//! The WAL's record codec (`[len u32][crc32 u32][payload]`, see the module
//! docs of `storage`) and the replay that rebuilds the live state from it.

use super::mem::LiveState;
use crate::raft::{ClientId, Command, Entry, HardState, PersistBatch};

pub(super) const MAGIC: &[u8; 8] = b"RAFTWAL1";
pub(super) const RECORD_HEADER: usize = 8;
/// Largest record payload accepted (a batch bigger than this is refused).
pub const MAX_RECORD: usize = 256 << 20;
const FLAG_HARD_STATE: u8 = 1;
const FLAG_TRUNCATE: u8 = 2;
const CMD_INT: u8 = 0;
const CMD_TEXT: u8 = 1;
/// A configuration (membership change), as JSON.
const CMD_CONFIG: u8 = 2;
/// A rate-limit stamp: Unix ms (u64) and limit (u32).
const CMD_STAMP: u8 = 3;

fn config_json(m: &crate::raft::Membership) -> Vec<u8> {
    serde_json::to_vec(m).expect("a configuration serializes")
}
/// Set on the command tag when the entry's client id (node, incarnation,
/// seq: three u64) follows the command. WALs written before client ids
/// existed never set it, and still read.
const HAS_CLIENT: u8 = 0x80;
const CLIENT_LEN: usize = 24;
/// The entry carries its taker's 64-byte signature (after the client id).
const HAS_SIG: u8 = 0x40;
const SIG_LEN: usize = 64;
/// Bytes of an encoded entry without its command payload.
const ENTRY_FIXED: usize = 8 + 8 + 1;

/// Encoded size of one entry.
pub(super) fn entry_len(e: &Entry) -> usize {
    ENTRY_FIXED
        + match &e.command {
            Command::Int(_) => 4,
            Command::Text(s) => 4 + s.len(),
            Command::Config(m) => 4 + config_json(m).len(),
            Command::Stamp(_) => 12,
        }
        + e.client.map_or(0, |_| CLIENT_LEN)
        + e.sig.as_ref().map_or(0, |_| SIG_LEN)
}

/// Append one record holding a batch to `buf`.
pub(super) fn encode_record(
    buf: &mut Vec<u8>,
    hard_state: Option<HardState>,
    truncate_from: Option<u64>,
    entries: &[Entry],
) -> Result<(), String> {
    let start = buf.len();
    let body: usize = entries.iter().map(entry_len).sum();
    buf.reserve(RECORD_HEADER + 1 + 17 + 8 + 4 + body);
    buf.extend_from_slice(&[0; RECORD_HEADER]);
    let flags = u8::from(hard_state.is_some()) * FLAG_HARD_STATE
        + u8::from(truncate_from.is_some()) * FLAG_TRUNCATE;
    buf.push(flags);
    if let Some(hs) = hard_state {
        buf.extend_from_slice(&hs.term.to_le_bytes());
        match hs.voted_for {
            None => buf.push(0),
            Some(v) => {
                buf.push(1);
                buf.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    if let Some(t) = truncate_from {
        buf.extend_from_slice(&t.to_le_bytes());
    }
    let too_big = || {
        format!(
            "batch of {} entries encodes to more than {MAX_RECORD} bytes",
            entries.len()
        )
    };
    let count = u32::try_from(entries.len()).map_err(|_| too_big())?;
    buf.extend_from_slice(&count.to_le_bytes());
    for e in entries {
        buf.extend_from_slice(&e.term.to_le_bytes());
        buf.extend_from_slice(&e.index.to_le_bytes());
        let client_flag =
            e.client.map_or(0, |_| HAS_CLIENT) | e.sig.as_ref().map_or(0, |_| HAS_SIG);
        match &e.command {
            Command::Int(i) => {
                buf.push(CMD_INT | client_flag);
                buf.extend_from_slice(&i.to_le_bytes());
            }
            Command::Text(s) => {
                let len = u32::try_from(s.len()).map_err(|_| too_big())?;
                buf.push(CMD_TEXT | client_flag);
                buf.extend_from_slice(&len.to_le_bytes());
                buf.extend_from_slice(s.as_bytes());
            }
            Command::Config(m) => {
                let json = config_json(m);
                let len = u32::try_from(json.len()).map_err(|_| too_big())?;
                buf.push(CMD_CONFIG | client_flag);
                buf.extend_from_slice(&len.to_le_bytes());
                buf.extend_from_slice(&json);
            }
            Command::Stamp(st) => {
                buf.push(CMD_STAMP | client_flag);
                buf.extend_from_slice(&st.ms.to_le_bytes());
                buf.extend_from_slice(&st.limit.to_le_bytes());
            }
        }
        if let Some(id) = e.client {
            for n in [id.node, id.incarnation, id.seq] {
                buf.extend_from_slice(&n.to_le_bytes());
            }
        }
        if let Some(sig) = &e.sig {
            buf.extend_from_slice(&sig[..]);
        }
    }
    let len = buf.len() - start - RECORD_HEADER;
    if len > MAX_RECORD {
        buf.truncate(start);
        return Err(too_big());
    }
    let len_bytes = (len as u32).to_le_bytes();
    buf[start..start + 4].copy_from_slice(&len_bytes);
    let crc = record_crc(&len_bytes, &buf[start + RECORD_HEADER..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn record_crc(len_bytes: &[u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_bytes);
    h.update(payload);
    h.finalize()
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.buf.len() - self.pos < n {
            return Err(format!(
                "payload ends inside {what} (needs {n} bytes at offset {}, has {})",
                self.pos,
                self.buf.len() - self.pos
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().unwrap_or_default(),
        ))
    }
}

/// Decode one record payload into a batch.
pub(super) fn decode_record(payload: &[u8]) -> Result<PersistBatch, String> {
    let mut c = Cursor {
        buf: payload,
        pos: 0,
    };
    let flags = c.u8("flags")?;
    if flags & !(FLAG_HARD_STATE | FLAG_TRUNCATE) != 0 {
        return Err(format!("unknown flags {flags:#04x}"));
    }
    let hard_state = if flags & FLAG_HARD_STATE != 0 {
        let term = c.u64("term")?;
        let voted_for = match c.u8("vote flag")? {
            0 => None,
            1 => Some(c.u64("voted_for")?),
            other => return Err(format!("bad vote flag {other}")),
        };
        Some(HardState { term, voted_for })
    } else {
        None
    };
    let truncate_from = if flags & FLAG_TRUNCATE != 0 {
        Some(c.u64("truncate_from")?)
    } else {
        None
    };
    let count = c.u32("entry count")? as usize;
    let room = (payload.len() - c.pos) / (ENTRY_FIXED + 4);
    if count > room {
        return Err(format!(
            "entry count {count} does not fit in the remaining {} bytes",
            payload.len() - c.pos
        ));
    }
    let mut append = Vec::with_capacity(count);
    for _ in 0..count {
        let term = c.u64("entry term")?;
        let index = c.u64("entry index")?;
        let tag = c.u8("command tag")?;
        let command = match tag & !(HAS_CLIENT | HAS_SIG) {
            CMD_INT => Command::Int(i32::from_le_bytes(
                c.take(4, "int command")?.try_into().unwrap_or_default(),
            )),
            CMD_TEXT => {
                let len = c.u32("text length")? as usize;
                let bytes = c.take(len, "text command")?;
                let s = std::str::from_utf8(bytes)
                    .map_err(|e| format!("text command at index {index} is not UTF-8: {e}"))?;
                Command::Text(s.to_owned())
            }
            CMD_CONFIG => {
                let len = c.u32("config length")? as usize;
                let m = serde_json::from_slice(c.take(len, "config")?)
                    .map_err(|e| format!("configuration at index {index}: {e}"))?;
                Command::Config(std::sync::Arc::new(m))
            }
            CMD_STAMP => Command::Stamp(crate::raft::Stamp {
                ms: c.u64("stamp ms")?,
                limit: c.u32("stamp limit")?,
            }),
            other => return Err(format!("unknown command tag {other} at index {index}")),
        };
        let client = if tag & HAS_CLIENT != 0 {
            Some(ClientId {
                node: c.u64("client node")?,
                incarnation: c.u64("client incarnation")?,
                seq: c.u64("client seq")?,
            })
        } else {
            None
        };
        let sig = if tag & HAS_SIG != 0 {
            let b: [u8; SIG_LEN] = c.take(SIG_LEN, "signature")?.try_into().unwrap_or([0; 64]);
            Some(std::sync::Arc::new(b))
        } else {
            None
        };
        append.push(Entry {
            term,
            index,
            command,
            client,
            sig,
        });
    }
    if c.pos != payload.len() {
        return Err(format!(
            "{} trailing bytes after the entries",
            payload.len() - c.pos
        ));
    }
    Ok(PersistBatch {
        hard_state,
        truncate_from,
        append,
        snapshot: None,
    })
}

/// Replay the records after the magic. Returns the state, the length of the
/// good prefix of `data`, and why replay stopped early (if it did).
pub(super) fn replay(data: &[u8]) -> (LiveState, usize, Option<String>) {
    let mut state = LiveState::default();
    let mut pos = MAGIC.len();
    let stop = loop {
        let rest = &data[pos..];
        if rest.is_empty() {
            break None;
        }
        if rest.len() < RECORD_HEADER {
            break Some(format!("torn record header at byte {pos}"));
        }
        let len_bytes: [u8; 4] = [rest[0], rest[1], rest[2], rest[3]];
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len == 0 || len > MAX_RECORD {
            break Some(format!("bad record length {len} at byte {pos}"));
        }
        if rest.len() - RECORD_HEADER < len {
            break Some(format!(
                "torn record at byte {pos}: {len} payload bytes announced, {} present",
                rest.len() - RECORD_HEADER
            ));
        }
        let payload = &rest[RECORD_HEADER..RECORD_HEADER + len];
        if record_crc(&len_bytes, payload) != crc {
            break Some(format!("checksum mismatch in the record at byte {pos}"));
        }
        let batch = match decode_record(payload) {
            Ok(b) => b,
            Err(e) => break Some(format!("undecodable record at byte {pos}: {e}")),
        };
        if let Err(e) = state.check(batch.truncate_from, &batch.append) {
            break Some(format!(
                "the record at byte {pos} does not fit the log: {e}"
            ));
        }
        state.apply(batch.hard_state, batch.truncate_from, batch.append);
        pos += RECORD_HEADER + len;
    };
    (state, pos, stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    use crate::storage::WAL_FILE;
    use crate::storage::test_support::*;

    #[test]
    fn garbage_never_panics() {
        let mut rng = Rng(12345);
        // Random payloads, and random mutations of a valid one.
        let mut valid = Vec::new();
        for b in sample_batches() {
            encode_record(&mut valid, b.hard_state, b.truncate_from, &b.append).unwrap();
        }
        for _ in 0..20_000 {
            let len = rng.below(64) as usize;
            let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = decode_record(&payload);
            let mut m = valid.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(m.len() as u64) as usize;
                m[i] = rng.next() as u8;
            }
            m.truncate(rng.below(m.len() as u64 + 1) as usize);
            let mut data = MAGIC.to_vec();
            data.extend_from_slice(&m);
            let (_, good, _) = replay(&data);
            assert!(good <= data.len());
            // Payload-level mutations bypass the CRC.
            let start = RECORD_HEADER;
            let plen = u32::from_le_bytes(valid[..4].try_into().unwrap()) as usize;
            let mut p = valid[start..start + plen].to_vec();
            let i = rng.below(p.len() as u64) as usize;
            p[i] = rng.next() as u8;
            let _ = decode_record(&p);
        }
        // The whole file being garbage after the magic.
        let tmp = TempDir::new("garbage");
        fs::create_dir_all(tmp.path()).unwrap();
        let mut data = MAGIC.to_vec();
        data.extend((0..5000).map(|_| rng.next() as u8));
        fs::write(tmp.path().join(WAL_FILE), &data).unwrap();
        assert_eq!(reopen(tmp.path()), (HardState::default(), vec![]));
    }

    #[test]
    fn decode_errors_say_what_is_wrong() {
        let mut rec = Vec::new();
        encode_record(&mut rec, None, None, &[text(1, 1, "abc")]).unwrap();
        let payload = &rec[RECORD_HEADER..];
        assert!(
            decode_record(&payload[..payload.len() - 1])
                .unwrap_err()
                .contains("payload ends inside text command")
        );
        let mut bad = payload.to_vec();
        *bad.last_mut().unwrap() = 0xff;
        assert!(decode_record(&bad).unwrap_err().contains("not UTF-8"));
        let mut bad = payload.to_vec();
        bad[0] = 0x80;
        assert!(decode_record(&bad).unwrap_err().contains("unknown flags"));
        let mut bad = payload.to_vec();
        bad.push(0);
        assert!(decode_record(&bad).unwrap_err().contains("trailing"));
    }
}
