//! Interning of path attribute sets: identical sets are stored once and shared by every route
//! that carries them. Owns only the set of live attribute sets; knows nothing of routes.

use std::collections::HashSet;
use std::sync::Arc;

use vixp_bgp::Attributes;

/// A set of shared attribute sets. Most routes of an exchange share few distinct sets.
#[derive(Debug, Default)]
pub struct Interner {
    sets: HashSet<Arc<Attributes>>,
}

impl Interner {
    /// Returns the shared copy of `attributes`, storing it if it is new.
    pub fn intern(&mut self, attributes: Attributes) -> Arc<Attributes> {
        if let Some(existing) = self.sets.get(&attributes) {
            return Arc::clone(existing);
        }
        let shared = Arc::new(attributes);
        self.sets.insert(Arc::clone(&shared));
        shared
    }

    /// Drops `attributes` from the set when the only other holder is the caller's handle,
    /// i.e. no route uses it any more.
    pub fn release(&mut self, attributes: Arc<Attributes>) {
        // Two holders: the set and `attributes` itself.
        if Arc::strong_count(&attributes) == 2 {
            self.sets.remove(&*attributes);
        }
    }

    /// Drops every set no route or in-flight export holds any more. Needed because an export
    /// on its way to a client may still hold a set when its last route goes.
    pub fn sweep(&mut self) {
        self.sets
            .retain(|attributes| Arc::strong_count(attributes) > 1);
    }

    /// Number of distinct attribute sets stored.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Whether no attribute set is stored.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use vixp_bgp::{AsPath, Origin};

    use super::*;

    fn attributes(med: u32) -> Attributes {
        let mut attributes = Attributes::new(
            Origin::Igp,
            AsPath::default(),
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11)),
        );
        attributes.med = Some(med);
        attributes
    }

    #[test]
    fn identical_sets_share_one_allocation() {
        let mut interner = Interner::default();
        let first = interner.intern(attributes(1));
        let second = interner.intern(attributes(1));
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(interner.len(), 1);
        let other = interner.intern(attributes(2));
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(interner.len(), 2);
    }

    #[test]
    fn release_removes_a_set_only_when_unused() {
        let mut interner = Interner::default();
        let first = interner.intern(attributes(1));
        let second = interner.intern(attributes(1));
        interner.release(first);
        assert_eq!(interner.len(), 1, "still used by the second handle");
        interner.release(second);
        assert!(interner.is_empty());
    }

    #[test]
    fn sweep_frees_sets_released_while_still_in_flight() {
        let mut interner = Interner::default();
        let route = interner.intern(attributes(1));
        let in_flight = Arc::clone(&route);
        interner.release(route);
        assert_eq!(interner.len(), 1);
        drop(in_flight);
        interner.sweep();
        assert!(interner.is_empty());
    }
}
