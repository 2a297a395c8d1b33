//! The state both back ends keep in memory, and the back end that keeps
//! nothing else.

use super::{Storage, StorageError};
use crate::raft::{Entry, HardState, PersistBatch, Snapshot, SnapshotMeta};

/// What a node would restart from; shared by both back ends and by replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct LiveState {
    pub(super) hard_state: HardState,
    pub(super) entries: Vec<Entry>,
    /// The snapshot the log continues: once it is all that is left, the
    /// next entry must follow it (the WAL still holds the entries it
    /// covers until its next rewrite, and a replay must fit them).
    pub(super) snapshot: Option<SnapshotMeta>,
}

impl LiveState {
    /// How many entries survive `truncate_from`.
    pub(super) fn kept_len(&self, truncate_from: Option<u64>) -> usize {
        match (truncate_from, self.entries.first()) {
            (Some(t), Some(first)) => {
                let keep = t.saturating_sub(first.index);
                usize::try_from(keep).map_or(self.entries.len(), |k| k.min(self.entries.len()))
            }
            _ => self.entries.len(),
        }
    }

    /// Does the batch fit? Appended entries must be consecutive and follow
    /// what the truncation keeps; after everything is dropped, a log may
    /// start at any index.
    pub(super) fn check(&self, truncate_from: Option<u64>, append: &[Entry]) -> Result<(), String> {
        let kept = self.kept_len(truncate_from);
        let mut prev = kept.checked_sub(1).map(|i| self.entries[i].index);
        // Only a truncation into the snapshot (a node installing a newer
        // one) frees the next entry's index.
        let snap = self.snapshot.map(|s| s.index);
        if prev.is_none() && truncate_from.is_none_or(|t| snap.is_some_and(|s| t > s)) {
            prev = snap;
        }
        for (i, e) in append.iter().enumerate() {
            if let Some(p) = prev
                && p.checked_add(1) != Some(e.index)
            {
                return Err(if i == 0 {
                    format!(
                        "first appended entry has index {} but the kept log ends at {p}{}",
                        e.index,
                        match truncate_from {
                            Some(t) => format!(" (after truncate_from {t})"),
                            None => " (no truncate_from)".to_string(),
                        }
                    )
                } else {
                    format!(
                        "appended entries are not consecutive: index {} follows {p}",
                        e.index
                    )
                });
            }
            prev = Some(e.index);
        }
        Ok(())
    }

    /// A snapshot at `meta` now stands for the entries up to its index: drop
    /// them. A log that disagrees with the snapshot there goes entirely
    /// (Raft Figure 13); entries after a snapshot that agrees stay.
    pub(super) fn compact_after(&mut self, meta: SnapshotMeta) {
        let agrees = self
            .entries
            .iter()
            .any(|e| e.index == meta.index && e.term == meta.term);
        let beyond = self.entries.first().is_some_and(|e| e.index > meta.index);
        if agrees || beyond {
            self.entries.retain(|e| e.index > meta.index);
        } else {
            self.entries.clear();
        }
        self.snapshot = Some(meta);
    }

    /// Apply a whole batch that passed [`LiveState::check`]: hard state,
    /// truncation and appends, then the snapshot's compaction.
    pub(super) fn apply_batch(&mut self, batch: &PersistBatch) {
        self.apply(
            batch.hard_state,
            batch.truncate_from,
            batch.append.iter().cloned(),
        );
        if let Some(snap) = &batch.snapshot {
            self.compact_after(snap.meta);
        }
    }

    /// Apply a batch that passed [`LiveState::check`].
    pub(super) fn apply<I>(
        &mut self,
        hard_state: Option<HardState>,
        truncate_from: Option<u64>,
        append: I,
    ) where
        I: IntoIterator<Item = Entry>,
    {
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
        let kept = self.kept_len(truncate_from);
        self.entries.truncate(kept);
        self.entries.extend(append);
    }
}

/// Keeps everything in memory: the original's behaviour (`--ephemeral`).
/// It checks batches exactly like [`FileStorage`].
#[derive(Debug, Default)]
pub struct MemStorage {
    state: LiveState,
    snapshot: Option<Snapshot>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start from a given state (the original seeds some logs at index 4).
    pub fn with_state(hard_state: HardState, entries: Vec<Entry>) -> Result<Self, StorageError> {
        let mut s = MemStorage::new();
        s.persist(&PersistBatch {
            hard_state: Some(hard_state),
            truncate_from: None,
            append: entries,
            snapshot: None,
        })?;
        Ok(s)
    }

    pub fn hard_state(&self) -> HardState {
        self.state.hard_state
    }

    pub fn entries(&self) -> &[Entry] {
        &self.state.entries
    }
}

impl Storage for MemStorage {
    fn load(&mut self) -> Result<(HardState, Vec<Entry>), StorageError> {
        Ok((self.state.hard_state, self.state.entries.clone()))
    }

    fn load_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.snapshot.clone())
    }

    fn persist(&mut self, batch: &PersistBatch) -> Result<(), StorageError> {
        self.state
            .check(batch.truncate_from, &batch.append)
            .map_err(StorageError::InvalidBatch)?;
        self.state.apply_batch(batch);
        if let Some(snap) = &batch.snapshot {
            self.snapshot = Some(snap.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_support::*;

    #[test]
    fn mem_storage_truncate_semantics() {
        check_truncate_semantics(&mut MemStorage::new());
    }

    #[test]
    fn mem_storage_with_state_checks_the_log() {
        let hs = HardState {
            term: 2,
            voted_for: None,
        };
        let mut s = MemStorage::with_state(hs, ints(1, 4, 3)).unwrap();
        assert_eq!(s.load().unwrap(), (hs, ints(1, 4, 3)));
        let err = MemStorage::with_state(hs, vec![int(1, 0, 0), int(1, 2, 0)]).unwrap_err();
        assert!(matches!(err, StorageError::InvalidBatch(_)), "{err}");
    }
}
