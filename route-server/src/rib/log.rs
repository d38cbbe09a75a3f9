//! The shared change log: one entry per prefix change that altered some client's export, with
//! exactly which clients it concerns. Clients read it at their own pace through a cursor; it owns
//! the entries only and knows nothing of paths or sessions.

use std::collections::VecDeque;

use vixp_bgp::Prefix;

/// Entries of capacity the log keeps when it drains after a burst.
const RETAINED_CAPACITY: usize = 4096;

/// Which clients a change concerns: everyone but up to two named members, whose own verdict is
/// given explicitly (the members of the best path before and after the change are the only ones
/// whose choice can differ from everyone else's, RFC 7947 section 2.3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The prefix that changed.
    pub prefix: Prefix,
    /// Whether the choice changed for clients of members other than the named ones.
    pub others: bool,
    /// Up to two members with their own verdict.
    pub named: [Option<(u32, bool)>; 2],
}

impl Change {
    /// Whether the change concerns a client of `member`.
    pub fn concerns(&self, member: u32) -> bool {
        self.named
            .iter()
            .flatten()
            .find(|(named, _)| *named == member)
            .map_or(self.others, |(_, changed)| *changed)
    }
}

/// Entries with sequence numbers; the oldest ones are dropped once every reader has passed them.
#[derive(Debug, Default)]
pub struct ChangeLog {
    entries: VecDeque<Change>,
    /// Sequence number of `entries[0]`.
    first: u64,
}

impl ChangeLog {
    /// Appends a change.
    pub fn push(&mut self, change: Change) {
        self.entries.push_back(change);
    }

    /// The sequence number the next entry will get: a new reader starts here.
    pub fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// The entry with sequence number `sequence`, if still kept.
    pub fn get(&self, sequence: u64) -> Option<&Change> {
        let index = usize::try_from(sequence.checked_sub(self.first)?).ok()?;
        self.entries.get(index)
    }

    /// Drops every entry before `sequence`.
    pub fn trim(&mut self, sequence: u64) {
        while self.first < sequence && self.entries.pop_front().is_some() {
            self.first += 1;
        }
        if self.entries.is_empty() {
            self.first = self.first.max(sequence);
        }
        // A burst (a full table arriving) leaves a large empty buffer behind: give it back.
        if self.entries.capacity() > RETAINED_CAPACITY
            && self.entries.len() < self.entries.capacity() / 4
        {
            self.entries
                .shrink_to(self.entries.len().max(RETAINED_CAPACITY));
        }
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(others: bool, named: [Option<(u32, bool)>; 2]) -> Change {
        Change {
            prefix: "198.18.0.0/24".parse().expect("prefix"),
            others,
            named,
        }
    }

    #[test]
    fn named_members_get_their_own_verdict() {
        let entry = change(true, [Some((1, false)), Some((2, true))]);
        assert!(!entry.concerns(1));
        assert!(entry.concerns(2));
        assert!(entry.concerns(3));
        let scoped = change(false, [Some((1, true)), None]);
        assert!(scoped.concerns(1));
        assert!(!scoped.concerns(3));
    }

    #[test]
    fn trimming_keeps_sequence_numbers() {
        let mut log = ChangeLog::default();
        for _ in 0..5 {
            log.push(change(true, [None, None]));
        }
        assert_eq!(log.end(), 5);
        log.trim(3);
        assert_eq!(log.len(), 2);
        assert!(log.get(2).is_none());
        assert!(log.get(3).is_some());
        assert_eq!(log.end(), 5);
        log.trim(5);
        assert!(log.is_empty());
        assert_eq!(log.end(), 5);
    }
}
