//! A bounded map that forgets its least recently used entry when full.
//!
//! Entries live in a slab (a `Vec` whose freed slots are reused) linked into a recency
//! list by index, so lookups, touches, inserts and evictions are O(1) and the map never
//! allocates beyond its capacity once warm. Keys are shared `Arc<str>`s so that the key a
//! load was registered under is stored without copying it again.

use std::{collections::HashMap, sync::Arc};

/// Marks the absence of a neighbour in the recency list.
const NIL: usize = usize::MAX;

struct Node<V> {
    key: Arc<str>,
    value: V,
    /// Towards the most recently used end.
    newer: usize,
    /// Towards the least recently used end.
    older: usize,
}

/// An LRU map from strings to values with a fixed capacity. A capacity of 0 stores nothing.
pub(super) struct Lru<V> {
    index: HashMap<Arc<str>, usize>,
    slots: Vec<Option<Node<V>>>,
    free: Vec<usize>,
    newest: usize,
    oldest: usize,
    capacity: usize,
}

impl<V> Lru<V> {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
            capacity,
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// Returns the value of a key and marks it most recently used.
    pub(super) fn get(&mut self, key: &str) -> Option<&V> {
        let slot = *self.index.get(key)?;
        self.unlink(slot);
        self.link_newest(slot);
        self.slots[slot].as_ref().map(|node| &node.value)
    }

    /// Inserts or replaces a value, making it the most recently used and evicting the
    /// least recently used entry when the map would grow past its capacity.
    pub(super) fn insert(&mut self, key: Arc<str>, value: V) {
        if self.capacity == 0 {
            return;
        }
        if let Some(&slot) = self.index.get(&key) {
            if let Some(node) = self.slots[slot].as_mut() {
                node.value = value;
            }
            self.unlink(slot);
            self.link_newest(slot);
            return;
        }
        if self.index.len() >= self.capacity {
            let oldest = self.oldest;
            if let Some(node) = self.take(oldest) {
                self.index.remove(&node.key);
            }
        }
        let node = Node {
            key: Arc::clone(&key),
            value,
            newer: NIL,
            older: NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(node);
                slot
            }
            None => {
                self.slots.push(Some(node));
                self.slots.len() - 1
            }
        };
        self.index.insert(key, slot);
        self.link_newest(slot);
    }

    /// Removes a key, returning its value.
    pub(super) fn remove(&mut self, key: &str) -> Option<V> {
        let slot = self.index.remove(key)?;
        self.take(slot).map(|node| node.value)
    }

    /// Removes everything, keeping the allocated slots for reuse.
    pub(super) fn clear(&mut self) {
        self.index.clear();
        self.free.clear();
        for (slot, node) in self.slots.iter_mut().enumerate() {
            *node = None;
            self.free.push(slot);
        }
        self.newest = NIL;
        self.oldest = NIL;
    }

    /// Unlinks a slot and frees it.
    fn take(&mut self, slot: usize) -> Option<Node<V>> {
        if slot == NIL {
            return None;
        }
        self.unlink(slot);
        let node = self.slots[slot].take();
        if node.is_some() {
            self.free.push(slot);
        }
        node
    }

    fn unlink(&mut self, slot: usize) {
        let Some((newer, older)) = self.slots[slot].as_ref().map(|n| (n.newer, n.older)) else {
            return;
        };
        match self.slots.get_mut(newer).and_then(Option::as_mut) {
            Some(node) => node.older = older,
            None => self.newest = older,
        }
        match self.slots.get_mut(older).and_then(Option::as_mut) {
            Some(node) => node.newer = newer,
            None => self.oldest = newer,
        }
        if let Some(node) = self.slots[slot].as_mut() {
            node.newer = NIL;
            node.older = NIL;
        }
    }

    fn link_newest(&mut self, slot: usize) {
        let previous_newest = self.newest;
        if let Some(node) = self.slots[slot].as_mut() {
            node.older = previous_newest;
            node.newer = NIL;
        }
        match self.slots.get_mut(previous_newest).and_then(Option::as_mut) {
            Some(node) => node.newer = slot,
            None => self.oldest = slot,
        }
        self.newest = slot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    #[test]
    fn evicts_the_least_recently_used_entry_when_full() {
        let mut lru = Lru::new(2);
        lru.insert(key("a"), 1);
        lru.insert(key("b"), 2);
        assert_eq!(lru.get("a"), Some(&1)); // "b" is now the oldest
        lru.insert(key("c"), 3);
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.get("b"), None);
        assert_eq!(lru.get("a"), Some(&1));
        assert_eq!(lru.get("c"), Some(&3));
    }

    #[test]
    fn replacing_a_value_keeps_one_entry_and_refreshes_it() {
        let mut lru = Lru::new(2);
        lru.insert(key("a"), 1);
        lru.insert(key("b"), 2);
        lru.insert(key("a"), 10);
        lru.insert(key("c"), 3);
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.get("a"), Some(&10));
        assert_eq!(lru.get("b"), None);
    }

    #[test]
    fn removed_slots_are_reused_and_order_survives() {
        let mut lru = Lru::new(3);
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            lru.insert(key(name), i);
        }
        assert_eq!(lru.remove("b"), Some(1));
        assert_eq!(lru.remove("b"), None);
        lru.insert(key("d"), 3);
        assert_eq!(lru.slots.len(), 3);
        lru.insert(key("e"), 4); // evicts "a", the oldest
        assert_eq!(lru.get("a"), None);
        assert_eq!(lru.get("c"), Some(&2));
        assert_eq!(lru.get("d"), Some(&3));
        assert_eq!(lru.get("e"), Some(&4));
    }

    #[test]
    fn clear_empties_the_map_and_reuses_its_slots() {
        let mut lru = Lru::new(2);
        lru.insert(key("a"), 1);
        lru.insert(key("b"), 2);
        lru.clear();
        assert_eq!(lru.len(), 0);
        assert_eq!(lru.get("a"), None);
        lru.insert(key("c"), 3);
        lru.insert(key("d"), 4);
        lru.insert(key("e"), 5); // evicts "c"
        assert_eq!(lru.slots.len(), 2);
        assert_eq!(lru.get("c"), None);
        assert_eq!(lru.get("d"), Some(&4));
        assert_eq!(lru.get("e"), Some(&5));
    }

    #[test]
    fn capacity_zero_stores_nothing() {
        let mut lru = Lru::new(0);
        lru.insert(key("a"), 1);
        assert_eq!(lru.len(), 0);
        assert_eq!(lru.get("a"), None);
    }

    #[test]
    fn a_long_mixed_workload_never_exceeds_capacity_and_matches_a_model() {
        // A naive model: a Vec ordered oldest first.
        let mut model: Vec<(String, u32)> = Vec::new();
        let mut lru = Lru::new(5);
        let mut seed = 12345u32;
        for step in 0..5000u32 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let name = format!("k{}", (seed >> 16) % 9);
            match (seed >> 8) % 3 {
                0 => {
                    lru.insert(key(&name), step);
                    model.retain(|(k, _)| *k != name);
                    if model.len() == 5 {
                        model.remove(0);
                    }
                    model.push((name, step));
                }
                1 => {
                    let expected = model.iter().position(|(k, _)| *k == name).map(|i| {
                        let entry = model.remove(i);
                        model.push(entry.clone());
                        entry.1
                    });
                    assert_eq!(lru.get(&name).copied(), expected);
                }
                _ => {
                    let expected = model
                        .iter()
                        .position(|(k, _)| *k == name)
                        .map(|i| model.remove(i).1);
                    assert_eq!(lru.remove(&name), expected);
                }
            }
            assert_eq!(lru.len(), model.len());
            assert!(lru.len() <= 5);
        }
    }
}
