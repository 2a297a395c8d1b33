//! The replicated log (raft-rs's `raft_log.rs`): consecutive entries that may
//! start at any index (the original seeds logs at index 0 or 4).

use super::types::{Command, Entry};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftLog {
    /// Index of `entries[0]`; for an empty log, the index the next entry gets.
    first: u64,
    entries: Vec<Entry>,
}

impl RaftLog {
    /// A log holding `entries`, which must have consecutive indices.
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
        Ok(RaftLog { first, entries })
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

    pub fn last_index(&self) -> Option<u64> {
        self.entries.last().map(|e| e.index)
    }

    pub fn last_term(&self) -> Option<u64> {
        self.entries.last().map(|e| e.term)
    }

    /// The index the next appended entry gets.
    pub fn next_index(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    pub fn get(&self, index: u64) -> Option<&Entry> {
        let pos = index.checked_sub(self.first)?;
        self.entries.get(usize::try_from(pos).ok()?)
    }

    pub fn term_at(&self, index: u64) -> Option<u64> {
        self.get(index).map(|e| e.term)
    }

    /// Does the log hold an entry with this index and term?
    pub fn matches(&self, index: u64, term: u64) -> bool {
        self.term_at(index) == Some(term)
    }

    /// Entries `from..=to` (clamped to the log).
    pub fn slice(&self, from: u64, to: u64) -> &[Entry] {
        if self.entries.is_empty() || to < from {
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

    /// Append a new entry at the end; returns it.
    pub fn append_command(&mut self, term: u64, command: Command) -> &Entry {
        let index = self.next_index();
        self.entries.push(Entry {
            term,
            index,
            command,
        });
        self.entries.last().expect("just pushed")
    }

    /// Append an entry that must carry the next index (or start an empty log).
    pub fn push(&mut self, entry: Entry) {
        if self.entries.is_empty() {
            self.first = entry.index;
        }
        debug_assert_eq!(entry.index, self.next_index());
        self.entries.push(entry);
    }

    /// Drop every entry at or after `index`.
    pub fn truncate_from(&mut self, index: u64) {
        let keep = index.saturating_sub(self.first) as usize;
        self.entries.truncate(keep);
    }

    /// Drop everything; the next entry pushed sets the first index.
    pub fn clear(&mut self) {
        self.entries.clear();
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
        }
    }

    #[test]
    fn offset_log_indexing() {
        let log = RaftLog::new(vec![e(1, 4, 5), e(1, 5, 5), e(1, 6, 5)]).unwrap();
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
    fn truncate_and_push() {
        let mut log = RaftLog::new(vec![e(1, 0, 9), e(1, 1, 9)]).unwrap();
        log.truncate_from(1);
        assert_eq!(log.last_index(), Some(0));
        log.push(e(2, 1, 3));
        assert_eq!(log.term_at(1), Some(2));
        log.clear();
        log.push(e(1, 4, 5));
        assert_eq!(log.first_index(), Some(4));
    }
}
