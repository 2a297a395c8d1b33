//! The replicated log (raft-rs's `raft_log.rs`): consecutive entries that may
//! start at any index (the original seeds logs at index 0 or 4), after a
//! snapshot that stands for every entry up to its index once the log is
//! compacted.
//!
//! The log owns its rules: where a leader's batch conflicts with what is
//! held, what a batch may not overwrite, and which changes storage has not
//! seen yet (the unsaved tail and the lowest truncated index), so the core
//! never tracks them by hand.

use std::sync::Arc;

use super::membership::Membership;
use super::types::{ClientId, Command, Entry, Sig, SnapshotMeta};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftLog {
    /// Index of `entries[0]`; for an empty log, the index the next entry gets.
    first: u64,
    /// The entries up to this point were compacted into a snapshot.
    snapshot: Option<SnapshotMeta>,
    entries: Vec<Entry>,
    /// Position in `entries` of the first entry storage has not been given.
    unsaved: usize,
    /// Lowest index dropped since storage last took the changes, when
    /// storage may hold entries from there on.
    truncated: Option<u64>,
    /// Last index storage has confirmed durable (see `Raft::advance`).
    persisted: Option<u64>,
    /// Bumped on every change (the log file writer watches it).
    version: u64,
    /// The configuration in force before `entries` (the snapshot's, or the
    /// cluster file's); `None`: not known yet (a joining node).
    base_config: Option<Arc<Membership>>,
    /// The configuration entries among `entries`: (index, configuration).
    configs: Vec<(u64, Arc<Membership>)>,
    /// Bumped whenever `configs` or `base_config` change.
    config_version: u64,
}

/// What storage must do to match the log: drop every entry at or above
/// `truncate_from`, then append `append`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unsaved {
    pub truncate_from: Option<u64>,
    pub append: Vec<Entry>,
}

impl RaftLog {
    /// A log holding `entries` (already durable), which must have
    /// consecutive indices.
    pub fn new(entries: Vec<Entry>) -> Result<Self, String> {
        let first = entries.first().map_or(0, |e| e.index);
        for (i, e) in entries.iter().enumerate() {
            if e.index != first + i as u64 {
                return Err(format!(
                    "log entries must have consecutive indices: found index {} at position {i} after {first}",
                    e.index
                ));
            }
        }
        let persisted = entries.last().map(|e| e.index);
        let configs = entries.iter().filter_map(config_of).collect();
        Ok(RaftLog {
            first,
            snapshot: None,
            unsaved: entries.len(),
            entries,
            truncated: None,
            persisted,
            version: 0,
            base_config: None,
            configs,
            config_version: 0,
        })
    }

    /// The configuration in force before the first entry (see
    /// [`RaftLog::latest_config`]).
    pub fn set_base_config(&mut self, config: Option<Arc<Membership>>) {
        self.base_config = config;
        self.config_version += 1;
    }

    /// Changes whenever the configuration at the end of the log, or the one
    /// in force at `commit`, may have changed.
    pub fn config_key(&self, commit: Option<u64>) -> (u64, usize) {
        let committed = commit.map_or(0, |c| self.configs.iter().filter(|(i, _)| *i <= c).count());
        (self.config_version, committed)
    }

    /// The latest configuration in the log, committed or not (thesis 4.1:
    /// a node uses it as soon as it holds it).
    pub fn latest_config(&self) -> Option<&Arc<Membership>> {
        self.configs
            .last()
            .map(|(_, c)| c)
            .or(self.base_config.as_ref())
    }

    /// The configuration in force before the first entry held.
    pub fn base_config(&self) -> Option<&Arc<Membership>> {
        self.base_config.as_ref()
    }

    /// The index of the latest configuration entry, if one is held.
    pub fn latest_config_index(&self) -> Option<u64> {
        self.configs.last().map(|(i, _)| *i)
    }

    /// The configuration in force at `index` (the latest at or before it).
    pub fn config_at(&self, index: u64) -> Option<&Arc<Membership>> {
        let held = self.configs.iter().rev().find(|(i, _)| *i <= index);
        held.map(|(_, c)| c).or(self.base_config.as_ref())
    }

    /// A log that continues a snapshot: `entries` (durable) must start
    /// right after it, or be empty.
    pub fn with_snapshot(snapshot: SnapshotMeta, entries: Vec<Entry>) -> Result<Self, String> {
        if let Some(e) = entries.first()
            && e.index != snapshot.index + 1
        {
            return Err(format!(
                "the log after a snapshot at {} starts at {}",
                snapshot.index, e.index
            ));
        }
        let mut log = RaftLog::new(entries)?;
        log.first = snapshot.index + 1;
        log.snapshot = Some(snapshot);
        log.persisted = log.persisted.or(Some(snapshot.index));
        Ok(log)
    }

    /// Where the last snapshot stands (`None`: never compacted).
    pub fn snapshot(&self) -> Option<SnapshotMeta> {
        self.snapshot
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn first_index(&self) -> Option<u64> {
        self.entries.first().map(|e| e.index)
    }

    /// The last entry's index, held or compacted.
    pub fn last_index(&self) -> Option<u64> {
        let snap = self.snapshot.map(|s| s.index);
        self.entries.last().map(|e| e.index).or(snap)
    }

    pub fn last_term(&self) -> Option<u64> {
        let snap = self.snapshot.map(|s| s.term);
        self.entries.last().map(|e| e.term).or(snap)
    }

    /// The index the next appended entry gets.
    pub fn next_index(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    pub fn get(&self, index: u64) -> Option<&Entry> {
        let pos = index.checked_sub(self.first)?;
        self.entries.get(usize::try_from(pos).ok()?)
    }

    /// The term of the entry at `index`, held or the snapshot's last.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        match self.snapshot {
            Some(s) if s.index == index => Some(s.term),
            _ => self.get(index).map(|e| e.term),
        }
    }

    /// Does the log hold an entry with this index and term?
    pub fn matches(&self, index: u64, term: u64) -> bool {
        self.term_at(index) == Some(term)
    }

    /// Entries `from..=to` (clamped to the log).
    pub fn slice(&self, from: u64, to: u64) -> &[Entry] {
        if self.entries.is_empty() || to < from || to < self.first {
            return &[];
        }
        let lo = from.saturating_sub(self.first) as usize;
        let hi = (to.saturating_sub(self.first) as usize + 1).min(self.entries.len());
        if lo >= hi {
            return &[];
        }
        &self.entries[lo..hi]
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Changes with every change of the log.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Last index storage has confirmed durable.
    pub fn persisted(&self) -> Option<u64> {
        self.persisted
    }

    /// Append a new entry of `term` at the end (the leader's path).
    pub fn append_command(
        &mut self,
        term: u64,
        command: Command,
        client: Option<ClientId>,
        sig: Option<Sig>,
    ) {
        let index = self.next_index();
        self.push(Entry {
            term,
            index,
            command,
            client,
            sig,
        });
    }

    /// Put a leader's batch into the log (Raft's `maybe_append`): the batch's
    /// first entry must be one we hold (its anchor), or the batch must be
    /// the leader's whole log (`all_log`), or the log is empty and the
    /// sender appends blindly to empty logs (the original leader). Only a
    /// conflicting suffix is dropped, never a committed entry. Returns
    /// whether the log changed; on error nothing changed.
    pub fn maybe_append(
        &mut self,
        batch: &[Entry],
        all_log: bool,
        blind_to_empty: bool,
        committed: Option<u64>,
    ) -> Result<bool, String> {
        // Entries up to the snapshot are committed, so the leader's agree
        // with what the snapshot stands for: only the rest is news.
        let skip = self.snapshot.map_or(0, |s| {
            batch.iter().take_while(|e| e.index <= s.index).count()
        });
        if skip > 0 {
            let rest = &batch[skip..];
            return self.append_after_snapshot(rest, committed);
        }
        let Some(anchor) = batch.first() else {
            return Ok(false);
        };
        let mut replaced = false;
        if !self.matches(anchor.index, anchor.term) {
            if all_log {
                if self.snapshot.is_some() {
                    return Err("a whole-log batch that starts after our snapshot".into());
                }
                self.check_replace(batch, committed)?;
                replaced = true;
            } else if !(self.is_empty() && self.snapshot.is_none() && blind_to_empty) {
                return Err(format!(
                    "no entry with index {} and term {}",
                    anchor.index, anchor.term
                ));
            }
        }
        let new = if replaced {
            batch
        } else {
            let Some(pos) = self.find_conflict(batch) else {
                return Ok(false);
            };
            self.check_overwrite(batch[pos].index, committed)?;
            &batch[pos..]
        };
        if replaced {
            self.clear();
        } else if self.get(new[0].index).is_some() {
            self.truncate_from(new[0].index);
        }
        for e in new {
            self.push(e.clone());
        }
        Ok(true)
    }

    /// The part of a batch after our snapshot (its anchor is the snapshot).
    fn append_after_snapshot(
        &mut self,
        rest: &[Entry],
        committed: Option<u64>,
    ) -> Result<bool, String> {
        let Some(pos) = self.find_conflict(rest) else {
            return Ok(false);
        };
        self.check_overwrite(rest[pos].index, committed)?;
        if self.get(rest[pos].index).is_some() {
            self.truncate_from(rest[pos].index);
        }
        for e in &rest[pos..] {
            self.push(e.clone());
        }
        Ok(true)
    }

    /// Drop the entries up to `meta.index`, which a snapshot now stands for
    /// (they are applied, so durable).
    pub fn compact_to(&mut self, meta: SnapshotMeta) {
        if self.snapshot.is_some_and(|s| s.index >= meta.index) {
            return;
        }
        let drop = (meta.index + 1).saturating_sub(self.first) as usize;
        let drop = drop.min(self.entries.len());
        if drop > self.unsaved || self.truncated.is_some_and(|t| t <= meta.index) {
            // Storage holds nothing past the snapshot (or is to cut below
            // it): it drops all it has, and takes what follows from scratch.
            self.truncated = Some(0);
        }
        self.entries.drain(..drop);
        let covered = self
            .configs
            .iter()
            .filter(|(i, _)| *i <= meta.index)
            .count();
        if let Some((_, c)) = self.configs.drain(..covered).next_back() {
            self.base_config = Some(c);
            self.config_version += 1;
        }
        self.unsaved = self.unsaved.saturating_sub(drop);
        self.first = meta.index + 1;
        self.snapshot = Some(meta);
        self.version += 1;
    }

    /// A snapshot from the leader replaces the log up to its index (Raft
    /// Figure 13): a suffix that agrees with it is kept, anything else goes.
    pub fn restore(&mut self, meta: SnapshotMeta, config: Option<Arc<Membership>>) {
        if self.term_at(meta.index) != Some(meta.term) {
            self.clear();
        }
        self.compact_to(meta);
        self.base_config = config.or(self.base_config.take());
        self.config_version += 1;
        self.persisted = self.persisted.max(Some(meta.index));
    }

    /// Position in `batch` of the first entry the log does not hold with the
    /// same term (a conflict or a new entry); `None` if it holds them all.
    pub fn find_conflict(&self, batch: &[Entry]) -> Option<usize> {
        batch.iter().position(|e| !self.matches(e.index, e.term))
    }

    /// A whole-log batch may replace the log only if it keeps our
    /// committed entry.
    fn check_replace(&self, batch: &[Entry], committed: Option<u64>) -> Result<(), String> {
        match committed {
            Some(c)
                if !batch
                    .iter()
                    .any(|e| e.index == c && self.matches(c, e.term)) =>
            {
                Err(format!(
                    "all_log batch would drop committed entry {c}; refused"
                ))
            }
            _ => Ok(()),
        }
    }

    /// New entries from `index` on may replace ours only above the commit
    /// point, and may not leave a gap after our last entry.
    fn check_overwrite(&self, index: u64, committed: Option<u64>) -> Result<(), String> {
        if self.get(index).is_some() && committed.is_some_and(|c| index <= c) {
            return Err(format!("would overwrite committed entry {index}"));
        }
        if !self.is_empty() && index > self.next_index() {
            return Err(format!("entry {index} leaves a gap"));
        }
        Ok(())
    }

    /// Append an entry that must carry the next index (or start an empty log).
    fn push(&mut self, entry: Entry) {
        if self.entries.is_empty() && self.snapshot.is_none() {
            self.first = entry.index;
        }
        debug_assert_eq!(entry.index, self.next_index());
        if let Some(c) = config_of(&entry) {
            self.configs.push(c);
            self.config_version += 1;
        }
        self.entries.push(entry);
        self.version += 1;
    }

    /// Drop every entry at or after `index`.
    fn truncate_from(&mut self, index: u64) {
        let keep = (index.saturating_sub(self.first) as usize).min(self.entries.len());
        self.note_dropped(keep, index);
        self.entries.truncate(keep);
        if self.configs.last().is_some_and(|(i, _)| *i >= index) {
            self.configs.retain(|(i, _)| *i < index);
            self.config_version += 1;
        }
        self.version += 1;
    }

    /// Drop everything; the next entry pushed sets the first index.
    fn clear(&mut self) {
        // Storage drops all it holds: every index is at or above 0.
        self.note_dropped(0, 0);
        self.entries.clear();
        self.configs.clear();
        self.config_version += 1;
        self.version += 1;
    }

    /// Entries from position `keep` (index `index`) go: storage must drop
    /// them too if it was given any of them.
    fn note_dropped(&mut self, keep: usize, index: u64) {
        if keep < self.unsaved || index == 0 {
            self.truncated = Some(self.truncated.map_or(index, |t| t.min(index)));
            self.unsaved = self.unsaved.min(keep);
        }
        if self.persisted.is_some_and(|p| p >= index) {
            self.persisted = index.checked_sub(1).filter(|_| keep > 0);
        }
    }

    /// The changes storage has not been given yet; from now on they count
    /// as given.
    pub fn take_unsaved(&mut self) -> Unsaved {
        let append = self.entries[self.unsaved..].to_vec();
        self.unsaved = self.entries.len();
        Unsaved {
            truncate_from: self.truncated.take(),
            append,
        }
    }

    /// Has storage been given every change?
    pub fn all_given(&self) -> bool {
        self.unsaved == self.entries.len() && self.truncated.is_none()
    }

    /// Storage confirmed durable everything it was given.
    pub fn mark_persisted(&mut self) {
        debug_assert!(
            self.all_given(),
            "nothing may change between ready() and advance()"
        );
        if self.unsaved > 0 {
            self.persisted = Some(self.entries[self.unsaved - 1].index);
        }
    }
}

fn config_of(e: &Entry) -> Option<(u64, Arc<Membership>)> {
    match &e.command {
        Command::Config(c) => Some((e.index, c.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(term: u64, index: u64, c: i32) -> Entry {
        Entry {
            term,
            index,
            command: Command::Int(c),
            client: None,
            sig: None,
        }
    }

    fn log(entries: Vec<Entry>) -> RaftLog {
        RaftLog::new(entries).unwrap()
    }

    fn indices(log: &RaftLog) -> Vec<(u64, u64)> {
        log.entries().iter().map(|e| (e.index, e.term)).collect()
    }

    #[test]
    fn offset_log_indexing() {
        let log = log(vec![e(1, 4, 5), e(1, 5, 5), e(1, 6, 5)]);
        assert_eq!(log.first_index(), Some(4));
        assert_eq!(log.last_index(), Some(6));
        assert_eq!(log.next_index(), 7);
        assert_eq!(log.term_at(3), None);
        assert!(log.matches(5, 1));
        assert!(!log.matches(5, 2));
        assert_eq!(log.slice(5, 100).len(), 2);
        assert_eq!(log.slice(0, 4).len(), 1);
        assert!(log.slice(7, 9).is_empty());
    }

    #[test]
    fn rejects_gaps() {
        assert!(RaftLog::new(vec![e(1, 0, 1), e(1, 2, 1)]).is_err());
    }

    #[test]
    fn append_after_anchor_is_unsaved_until_taken() {
        let mut l = log(vec![e(1, 0, 9), e(1, 1, 9)]);
        assert!(l.all_given());
        let changed = l.maybe_append(&[e(1, 1, 9), e(2, 2, 3)], false, false, None);
        assert_eq!(changed, Ok(true));
        let u = l.take_unsaved();
        assert_eq!(u.truncate_from, None);
        assert_eq!(u.append, vec![e(2, 2, 3)]);
        assert!(l.all_given());
        assert_eq!(l.persisted(), Some(1));
        l.mark_persisted();
        assert_eq!(l.persisted(), Some(2));
    }

    #[test]
    fn find_conflict_skips_what_is_held() {
        let l = log(vec![e(1, 0, 9), e(1, 1, 9), e(1, 2, 9)]);
        assert_eq!(l.find_conflict(&[e(1, 1, 9), e(1, 2, 9)]), None);
        assert_eq!(l.find_conflict(&[e(1, 1, 9), e(2, 2, 9)]), Some(1));
        assert_eq!(l.find_conflict(&[e(1, 2, 9), e(1, 3, 9)]), Some(1));
    }

    #[test]
    fn duplicate_batch_changes_nothing() {
        let mut l = log(vec![e(1, 0, 9), e(1, 1, 9)]);
        let v = l.version();
        assert_eq!(
            l.maybe_append(&[e(1, 0, 9), e(1, 1, 9)], false, false, None),
            Ok(false)
        );
        assert_eq!(l.version(), v);
        assert_eq!(l.take_unsaved(), Unsaved::default());
    }

    #[test]
    fn only_the_conflicting_suffix_goes() {
        let mut l = log(vec![e(1, 0, 9), e(1, 1, 9), e(1, 2, 9), e(1, 3, 9)]);
        // A stale, shorter batch that agrees removes nothing.
        assert_eq!(
            l.maybe_append(&[e(1, 0, 9), e(1, 1, 9)], false, false, None),
            Ok(false)
        );
        assert_eq!(l.len(), 4);
        let r = l.maybe_append(&[e(1, 1, 9), e(2, 2, 7)], false, false, Some(1));
        assert_eq!(r, Ok(true));
        assert_eq!(indices(&l), vec![(0, 1), (1, 1), (2, 2)]);
        let u = l.take_unsaved();
        assert_eq!(u.truncate_from, Some(2));
        assert_eq!(u.append, vec![e(2, 2, 7)]);
    }

    #[test]
    fn never_overwrites_committed_entries() {
        let mut l = log(vec![e(1, 0, 9), e(1, 1, 9), e(1, 2, 9)]);
        let r = l.maybe_append(&[e(1, 0, 9), e(2, 1, 7)], false, false, Some(1));
        assert!(r.unwrap_err().contains("committed entry 1"));
        let r = l.maybe_append(&[e(2, 0, 9)], true, false, Some(1));
        assert!(r.unwrap_err().contains("committed entry 1"));
        assert_eq!(l.len(), 3);
        assert!(l.all_given(), "a refused batch changes nothing");
    }

    #[test]
    fn all_log_replaces_a_log_without_the_anchor() {
        let mut l = log(vec![e(1, 0, 9), e(1, 1, 9)]);
        let r = l.maybe_append(&[e(1, 4, 5), e(1, 5, 5)], true, false, None);
        assert_eq!(r, Ok(true));
        assert_eq!(l.first_index(), Some(4));
        let u = l.take_unsaved();
        assert_eq!(u.truncate_from, Some(0), "storage drops everything");
        assert_eq!(u.append.len(), 2);
        assert_eq!(l.persisted(), None);
    }

    #[test]
    fn missing_anchor_is_refused_unless_empty_and_blind() {
        let mut l = log(vec![e(1, 0, 9)]);
        assert!(l.maybe_append(&[e(1, 4, 5)], false, true, None).is_err());
        let mut empty = log(vec![]);
        assert!(
            empty
                .maybe_append(&[e(1, 4, 5)], false, false, None)
                .is_err()
        );
        assert_eq!(
            empty.maybe_append(&[e(1, 4, 5)], false, true, None),
            Ok(true)
        );
        assert_eq!(empty.first_index(), Some(4));
    }

    #[test]
    fn truncating_unsaved_entries_needs_no_storage_truncate() {
        let mut l = log(vec![e(1, 0, 9)]);
        l.append_command(1, Command::Int(1), None, None);
        l.append_command(1, Command::Int(2), None, None);
        // Entries 1 and 2 never reached storage: replacing 2 is an append.
        assert_eq!(
            l.maybe_append(&[e(1, 1, 1), e(2, 2, 3)], false, false, None),
            Ok(true)
        );
        let u = l.take_unsaved();
        assert_eq!(u.truncate_from, None);
        assert_eq!(u.append, vec![e(1, 1, 1), e(2, 2, 3)]);
    }

    /// Found in review: entries storage never got, covered by a snapshot
    /// installed in the same turn, left a gap storage refused.
    #[test]
    fn a_snapshot_over_unsaved_entries_resets_storage() {
        let mut l = log((0..90).map(|i| e(1, i, 9)).collect());
        let batch: Vec<Entry> = (89..=110).map(|i| e(1, i, 9)).collect();
        assert_eq!(l.maybe_append(&batch, false, false, Some(50)), Ok(true));
        l.restore(
            SnapshotMeta {
                index: 100,
                term: 1,
            },
            None,
        );
        let u = l.take_unsaved();
        assert_eq!(
            u.truncate_from,
            Some(0),
            "storage drops what the snapshot covers"
        );
        assert_eq!(u.append.first().map(|e| e.index), Some(101));
        assert_eq!(u.append.len(), 10);
        assert_eq!(l.last_index(), Some(110));
    }

    #[test]
    fn compaction_keeps_indexing_and_the_anchor_term() {
        let mut l = log((0..10).map(|i| e(1, i, 9)).collect());
        l.compact_to(SnapshotMeta { index: 6, term: 1 });
        assert_eq!(
            (l.first_index(), l.last_index(), l.len()),
            (Some(7), Some(9), 3)
        );
        assert_eq!(
            l.term_at(6),
            Some(1),
            "the snapshot's last entry still anchors"
        );
        assert_eq!(l.term_at(5), None);
        assert!(l.slice(0, 6).is_empty());
        // A batch reaching back into the snapshot only adds what is new.
        let batch: Vec<Entry> = (4..=11).map(|i| e(1, i, 9)).collect();
        assert_eq!(l.maybe_append(&batch, false, false, Some(6)), Ok(true));
        assert_eq!(l.last_index(), Some(11));
        assert!(l.take_unsaved().append.iter().all(|e| e.index > 9));
    }
}
