//! Log compaction and snapshots (Raft section 7 and Figure 13; the paper's
//! section 3.5 and listing 16).
//!
//! Each node decides on its own, in `service_actions`: once
//! `snapshot_entries` entries were applied since the last snapshot, it asks
//! the runtime (`Ready::snapshot_due`) for the state machine's part, builds
//! the JSON document (`lastIndex`, `lastTerm`, `lastConfig`, the session
//! table, and the runtime's `servers`, `round`, ...), drops the covered log
//! prefix and hands the snapshot to storage. A leader sends it in chunks
//! (`install_snapshot_rpc`) to a follower whose next entry it no longer
//! holds; the follower persists it before answering and replaces its state.
//! The original Python nodes cannot install snapshots: while any peer is
//! one, the log is kept whole.

use std::sync::Arc;
use std::time::Duration;

use log::{debug, info, warn};
use serde_json::{Map, Value};

use super::pending::Pending;
use super::*;
use crate::raft::sessions::SessionTable;

/// Largest snapshot a follower assembles (its document is small: the
/// board, the session table, the configuration).
const MAX_SNAPSHOT: usize = 64 << 20;

/// A snapshot arriving in chunks from the leader.
#[derive(Debug)]
pub(super) struct Install {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl Raft {
    /// After applying: ask for a snapshot once enough entries were applied.
    pub(super) fn maybe_ask_snapshot(&mut self, now: Duration) {
        let every = self.cfg.snapshot_entries;
        let Some(applied) = self.last_applied else {
            return;
        };
        if every == 0 || self.snapshot_asked.is_some() {
            return;
        }
        let base = match self.log.snapshot() {
            Some(s) => s.index + 1,
            None => self.log.first_index().unwrap_or(0),
        };
        // A joining node holds entries from before it knew any configuration:
        // a snapshot there would record none.
        let known = self.log.config_at(applied).is_some_and(|c| !c.is_empty());
        let since = (applied + 1).saturating_sub(base);
        if since < every || !known || !self.can_compact(now) {
            return;
        }
        if self.followers_behind(applied, now) && since < 2 * every {
            // Compacting now would make a follower that is only a little
            // behind install a snapshot: wait for it (up to twice the
            // interval; a follower far behind gets the snapshot).
            return;
        }
        self.snapshot_asked = Some(applied);
        self.out.snapshot_due = Some(applied);
    }

    /// Is a reachable follower of this leader short of `index`?
    fn followers_behind(&self, index: u64, now: Duration) -> bool {
        let Role::Leader(l) = &self.role else {
            return false;
        };
        l.progress
            .values()
            .filter(|p| !p.is_paused(now))
            .any(|p| p.matched().is_none_or(|m| m < index))
    }

    /// An original Python node cannot install a snapshot (and starts empty
    /// after a restart): a leader that sees one keeps its whole log, and so
    /// does any node that knows of one (it may come to lead). A node asks
    /// the peers it never heard from, to find out; a peer that stays silent
    /// (down) does not hold compaction up, and should it turn out to be an
    /// original node behind a compacted leader, the leader says it cannot
    /// serve it rather than send what it cannot take.
    fn can_compact(&mut self, now: Duration) -> bool {
        if self
            .peers()
            .iter()
            .any(|p| !self.peer_kinds.contains_key(p))
        {
            self.greet_unknown_peers(now);
        }
        let leader = matches!(&self.role, Role::Leader(l)
            if l.progress.values().any(|p| p.kind() == PeerKind::Original));
        let known = self.peer_kinds.values().any(|k| *k == PeerKind::Original);
        if !(leader || known) {
            return true;
        }
        if !self.whole_log_noted {
            self.whole_log_noted = true;
            info!(
                "node {}: keeping the whole log: an original Python node may need it (they cannot install snapshots)",
                self.cfg.id
            );
        }
        false
    }

    /// Ask the peers whose kind we do not know (a follower hears from few
    /// of them), once a snapshot is due: `is_log_empty()` reads nothing and
    /// changes nothing, and the answer shows the kind.
    fn greet_unknown_peers(&mut self, now: Duration) {
        let every = self.cfg.request_timeout;
        for p in self.peers() {
            let due = self.hello_at.get(&p).is_none_or(|t| now >= *t);
            if !self.peer_kinds.contains_key(&p) && due {
                self.hello_at.insert(p, now + every);
                self.send(p, Rpc::IsLogEmpty, Pending::Hello { sent_at: now });
            }
        }
    }

    pub(super) fn hello_deadline(&self) -> Duration {
        if self.hello_at.is_empty() {
            return Duration::MAX; // no snapshot was due yet
        }
        let peers = self.peers();
        let unknown = peers.iter().filter(|p| !self.peer_kinds.contains_key(p));
        unknown
            .map(|p| self.hello_at.get(p).copied().unwrap_or(Duration::ZERO))
            .min()
            .unwrap_or(Duration::MAX)
    }

    /// The runtime's part of the snapshot asked for at `index`.
    pub(super) fn take_snapshot(&mut self, index: u64, mut app: Map<String, Value>) {
        if self.snapshot_asked != Some(index) {
            warn!(
                "node {}: snapshot at {index} was not asked for",
                self.cfg.id
            );
            return;
        }
        self.snapshot_asked = None;
        // Applied since (it must describe exactly `index`), or replaced by
        // an installed snapshot: ask again later.
        let Some(term) = self.log.term_at(index) else {
            return;
        };
        if self.last_applied != Some(index) || self.log.snapshot().is_some_and(|s| s.index >= index)
        {
            return;
        }
        let meta = SnapshotMeta { index, term };
        let config = self.log.config_at(index).cloned().unwrap_or_default();
        // A leader after a restart stamps past every stamp compacted away.
        for (k, v) in self.stamps.doc_keys() {
            app.insert(k.into(), v);
        }
        let data = build_doc(meta, &config, &self.sessions, app);
        self.log.compact_to(meta);
        info!(
            "node {}: snapshot at index {index} (term {term}), {} bytes; log compacted",
            self.cfg.id,
            data.len()
        );
        self.keep_snapshot(Snapshot { meta, data });
    }

    fn keep_snapshot(&mut self, snapshot: Snapshot) {
        self.pending_snapshot = Some(snapshot.clone());
        self.snapshot = Some(Arc::new(snapshot));
    }

    /// The next chunk of our snapshot to a follower that needs it.
    pub(super) fn send_snapshot_chunk(&mut self, to: NodeId, now: Duration) {
        let Some(latest) = self.snapshot.clone() else {
            return;
        };
        let chunk = self.cfg.snapshot_chunk.max(1);
        let Some(pr) = self.progress(to) else { return };
        // A transfer finishes with the snapshot it began with, however
        // often we compact meanwhile: it always completes.
        let (snap, offset) = pr.snapshot_in_flight().unwrap_or((latest, 0));
        let (meta, total) = (snap.meta, snap.data.len());
        let offset = offset.min(total);
        let end = (offset + chunk).min(total);
        let data = snap.data[offset..end].to_vec();
        let rpc = Rpc::InstallSnapshot(InstallSnapshot {
            term: self.term,
            leader_id: self.cfg.id,
            last_index: meta.index,
            last_term: meta.term,
            offset: offset as u64,
            data,
            done: end == total,
        });
        let pending = Pending::Snapshot {
            to,
            term: self.term,
            meta,
            end,
            done: end == total,
            sent_at: now,
        };
        let seq = self.send(to, rpc, pending);
        if let Some(pr) = self.progress(to) {
            pr.sent(Some(seq), now);
            pr.snapshot_started(snap, offset);
        }
    }

    pub(super) fn on_snapshot_reply(
        &mut self,
        seq: u64,
        to: NodeId,
        term: u64,
        (meta, end, done): (SnapshotMeta, usize, bool),
        result: Result<Reply, RpcFailure>,
        now: Duration,
    ) {
        let retry = self.cfg.retry_interval;
        let current = term == self.term;
        let Some(pr) = self.progress(to) else { return };
        pr.answered(seq);
        if !current {
            return;
        }
        match result {
            Ok(Reply::Snapshot(_)) if done => {
                pr.mark_active();
                pr.maybe_update(Some(meta.index));
            }
            Ok(Reply::Snapshot(_)) => {
                pr.mark_active();
                pr.snapshot_sent(end);
            }
            other => {
                debug!("snapshot chunk to node {to} failed: {other:?}");
                pr.on_unreachable(now, retry);
            }
        }
    }

    /// `install_snapshot_rpc(...)`: a chunk of the leader's snapshot.
    pub(super) fn step_install(
        &mut self,
        now: Duration,
        req: &InstallSnapshot,
        from: Option<NodeId>,
    ) -> Result<u64, InvalidRequest> {
        self.validate_install(req, from)?;
        let proved = self.proven == Some((req.term, req.leader_id));
        if self.signed_votes() && req.term >= self.term && !proved {
            return Err(InvalidRequest(format!(
                "node {} has not proved its election in term {} (an append carries the proof)",
                req.leader_id, req.term
            )));
        }
        if req.term < self.term || (self.mode() == Mode::Leader && req.term == self.term) {
            return Ok(self.term);
        }
        if req.term > self.term || self.mode() != Mode::Follower {
            self.become_follower(req.term, Some(req.leader_id), now);
        }
        self.heard_from_leader(Some(req.leader_id), now);
        let meta = SnapshotMeta {
            index: req.last_index,
            term: req.last_term,
        };
        if self.commit_index.is_some_and(|c| c >= meta.index) {
            // We hold all of it already: a late or duplicated chunk.
            self.install = None;
            return Ok(self.term);
        }
        if self.take_chunk(meta, req)? {
            let install = self.install.take().expect("complete");
            self.finish_install(install)?;
        }
        Ok(self.term)
    }

    fn validate_install(
        &self,
        req: &InstallSnapshot,
        from: Option<NodeId>,
    ) -> Result<(), InvalidRequest> {
        let bad = |m: String| Err(InvalidRequest(m));
        if req.term > WIRE_MAX || req.last_index > WIRE_MAX || req.last_term > req.term {
            return bad(format!(
                "term {} / last_index {} / last_term {} out of range",
                req.term, req.last_index, req.last_term
            ));
        }
        // The leader may be a member this node has not heard of yet (it
        // lags behind, or is joining): only the header must agree.
        if req.leader_id == self.cfg.id || from.is_some_and(|f| f != req.leader_id) {
            return bad(format!("leader_id {} is not the sender", req.leader_id));
        }
        if let Some(l) = self.cfg.static_leader
            && (req.term != 1 || req.leader_id != l)
        {
            return bad(format!(
                "static-leader mode: only node {l} at term 1 sends snapshots"
            ));
        }
        Ok(())
    }

    /// Add a chunk to the snapshot being assembled; true when complete.
    /// Stale, duplicated and out-of-order chunks are ignored.
    fn take_chunk(
        &mut self,
        meta: SnapshotMeta,
        req: &InstallSnapshot,
    ) -> Result<bool, InvalidRequest> {
        match &mut self.install {
            _ if req.offset == 0 => {
                self.install = Some(Install {
                    meta,
                    data: req.data.clone(),
                })
            }
            Some(i) if i.meta == meta && i.data.len() as u64 == req.offset => {
                i.data.extend_from_slice(&req.data)
            }
            _ => return Ok(false),
        }
        if self
            .install
            .as_ref()
            .is_some_and(|i| i.data.len() > MAX_SNAPSHOT)
        {
            self.install = None;
            return Err(InvalidRequest(format!(
                "snapshot larger than {MAX_SNAPSHOT} bytes"
            )));
        }
        Ok(req.done)
    }

    /// Raft Figure 13: keep the snapshot, drop the log it covers (a suffix
    /// that agrees with it stays), and reset the state machine to it.
    fn finish_install(&mut self, install: Install) -> Result<(), InvalidRequest> {
        let (meta, sessions, config) =
            parse_doc(&install.data).map_err(|e| InvalidRequest(format!("snapshot: {e}")))?;
        if meta != install.meta {
            return Err(InvalidRequest(format!(
                "snapshot says index {} term {}, the request {} {}",
                meta.index, meta.term, install.meta.index, install.meta.term
            )));
        }
        self.log.restore(meta, config);
        self.sessions = sessions;
        self.stamps.note_doc(&install.data);
        self.commit_index = Some(meta.index);
        self.last_applied = Some(meta.index);
        self.snapshot_asked = None;
        // What this turn applied before is part of the snapshot.
        self.out.committed.clear();
        self.forget_applied_commands();
        if let Role::Follower(f) = &mut self.role {
            f.leader_match = Some(meta.index);
        }
        info!(
            "node {}: installed a snapshot at index {} (term {})",
            self.cfg.id, meta.index, meta.term
        );
        let snapshot = Snapshot {
            meta,
            data: install.data,
        };
        self.out.restore = Some(snapshot.clone());
        self.keep_snapshot(snapshot);
        Ok(())
    }
}

/// Raft's part of a snapshot: where it stands, the session table, the
/// configuration.
pub type DocParts = (SnapshotMeta, SessionTable, Option<Arc<Membership>>);

/// The snapshot document: the runtime's part plus Raft's.
fn build_doc(
    meta: SnapshotMeta,
    config: &Membership,
    sessions: &SessionTable,
    mut doc: Map<String, Value>,
) -> Vec<u8> {
    doc.insert("lastIndex".into(), meta.index.into());
    doc.insert("lastTerm".into(), meta.term.into());
    let config = serde_json::to_value(config).expect("a configuration serializes");
    doc.insert("lastConfig".into(), config);
    doc.insert("sessions".into(), sessions.to_json());
    serde_json::to_vec(&Value::Object(doc)).expect("JSON values serialize")
}

/// Raft's part of a snapshot document. `lastConfig` is `None` in a
/// snapshot written before membership could change (a list of ids): the
/// cluster file's configuration stands.
pub fn parse_doc(data: &[u8]) -> Result<DocParts, String> {
    let doc: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    let num = |k: &str| {
        doc.get(k)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("no number '{k}'"))
    };
    let meta = SnapshotMeta {
        index: num("lastIndex")?,
        term: num("lastTerm")?,
    };
    let sessions = doc.get("sessions").ok_or("no 'sessions'")?;
    let config = match doc.get("lastConfig") {
        Some(c @ Value::Object(_)) => {
            let m: Membership =
                serde_json::from_value(c.clone()).map_err(|e| format!("lastConfig: {e}"))?;
            Some(Arc::new(m.checked()?))
        }
        _ => None,
    };
    Ok((meta, SessionTable::from_json(sessions)?, config))
}
