//! Majority counting (raft-rs's `quorum/`).

/// Votes needed out of `voters` (the whole cluster, this node included).
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// The highest index held by a majority, given every voter's match index
/// (`None` = nothing matched). Sorts `matched` in place.
pub fn committed_index(matched: &mut [Option<u64>]) -> Option<u64> {
    if matched.is_empty() {
        return None;
    }
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched[majority(matched.len()) - 1]
}

/// Has a majority of `voters` said yes?
pub fn has_majority(yes: usize, voters: usize) -> bool {
    yes >= majority(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
        assert!(has_majority(3, 5));
        assert!(!has_majority(2, 5));
    }

    #[test]
    fn commit_point() {
        let mut m = [Some(9), Some(4), None, Some(7), Some(5)];
        assert_eq!(committed_index(&mut m), Some(5));
        let mut m = [Some(9), None, None];
        assert_eq!(committed_index(&mut m), None);
        let mut m = [Some(3)];
        assert_eq!(committed_index(&mut m), Some(3));
    }
}
