//! How a table that grows with connections gives its storage back (issue 13:
//! memory returns to its idle level after each attack): the descriptor
//! table's slots (`numbers::Slots`), the waiter lists and epoll interest
//! (`readiness`), the reverse map (`owners`), the idle bound ports (`ports`)
//! and the services' connection maps (`service_loop`).
//!
//! The rule: once a table's capacity is above [`SHRINK_FLOOR`] and more than
//! four times its length, it is cut to twice its length. Checked where an
//! entry leaves (O(1)); a cut costs O(length), and the next one needs the
//! length to halve again first, so it is O(1) amortised per removal and a table
//! that grows again regrows once. Never a scan over every socket.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};

/// Capacity at or below which a table keeps its storage (a few hundred bytes
/// to a few KB per table: not worth giving back, and a steady load of a few
/// sockets never reallocates).
pub const SHRINK_FLOOR: usize = 64;

/// Whether a table of `len` entries in `capacity` should give storage back.
pub fn sparse(len: usize, capacity: usize) -> bool {
    capacity > SHRINK_FLOOR && capacity > len.saturating_mul(4)
}

/// A table whose storage can be cut to fit what it holds.
pub trait Shrink {
    /// Applies the rule (see the module): cut to twice the length when the
    /// capacity is above [`SHRINK_FLOOR`] and over four times the length.
    fn shrink_if_sparse(&mut self);
}

impl<T> Shrink for Vec<T> {
    fn shrink_if_sparse(&mut self) {
        if sparse(self.len(), self.capacity()) {
            self.shrink_to(self.len() * 2);
        }
    }
}

impl<T> Shrink for VecDeque<T> {
    fn shrink_if_sparse(&mut self) {
        if sparse(self.len(), self.capacity()) {
            self.shrink_to(self.len() * 2);
        }
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> Shrink for HashMap<K, V, S> {
    fn shrink_if_sparse(&mut self) {
        if sparse(self.len(), self.capacity()) {
            self.shrink_to(self.len() * 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_emptied_gives_its_storage_back_and_a_small_one_keeps_it() {
        let mut v: Vec<u32> = (0..10_000).collect();
        let mut m: HashMap<u32, u32> = v.iter().map(|&i| (i, i)).collect();
        let mut d: VecDeque<u32> = v.iter().copied().collect();
        let mut cuts = 0;
        while let Some(i) = v.pop() {
            let cap = v.capacity();
            m.remove(&i);
            d.pop_back();
            v.shrink_if_sparse();
            m.shrink_if_sparse();
            d.shrink_if_sparse();
            cuts += (v.capacity() < cap) as usize;
            assert!(v.capacity() <= SHRINK_FLOOR.max(4 * v.len()));
        }
        assert!(v.capacity() <= SHRINK_FLOOR && m.capacity() <= SHRINK_FLOOR && d.capacity() <= SHRINK_FLOOR);
        assert!(cuts < 20, "cut once per halving: {cuts}");
        let mut small: Vec<u8> = Vec::with_capacity(SHRINK_FLOOR);
        small.shrink_if_sparse();
        assert_eq!(small.capacity(), SHRINK_FLOOR, "a small table keeps its room");
    }
}
