//! Which descriptor stands for which core object: the reverse of the
//! descriptor table, so that a socket the core reports as changed
//! (`Tcp::drain_changed`, `Udp::drain_changed`) finds its descriptor, and so its
//! waiters, in O(1). One `Fd` per core slot (4 bytes), -1 for none, up to
//! the highest slot owned: cut from the tail as the slots there lose their
//! owner, the storage given back by the rule of `shrink` (issue 13; O(1)
//! amortised per close).

use crate::shrink::Shrink;

/// A descriptor (`fd_table::Fd`; named here by its type to keep the import one-way).
type Fd = i32;

/// The core object a descriptor stands for: a TCP slot (connection or
/// listener) or a UDP slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CoreKey {
    Tcp(u32),
    Udp(u32),
}

/// The descriptor owning each TCP and UDP slot.
#[derive(Debug, Default)]
pub(crate) struct Owners {
    tcp: Vec<Fd>,
    udp: Vec<Fd>,
}

impl Owners {
    fn map(&mut self, key: CoreKey) -> (&mut Vec<Fd>, usize) {
        match key {
            CoreKey::Tcp(i) => (&mut self.tcp, i as usize),
            CoreKey::Udp(i) => (&mut self.udp, i as usize),
        }
    }

    /// `fd` stands for `key` from now on.
    pub(crate) fn set(&mut self, key: CoreKey, fd: Fd) {
        let (map, i) = self.map(key);
        if i >= map.len() {
            map.resize(i + 1, -1);
        }
        map[i] = fd;
    }

    /// `fd` no longer stands for `key` (another descriptor that took it over
    /// meanwhile keeps it).
    pub(crate) fn clear(&mut self, key: CoreKey, fd: Fd) {
        let (map, i) = self.map(key);
        if let Some(o) = map.get_mut(i) {
            if *o == fd {
                *o = -1;
            }
        }
        if i + 1 == map.len() {
            while map.last() == Some(&-1) {
                map.pop();
            }
            map.shrink_if_sparse();
        }
    }

    /// Entries the two maps have room for (for tests).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.tcp.capacity() + self.udp.capacity()
    }

    pub(crate) fn get(&self, key: CoreKey) -> Option<Fd> {
        let (map, i) = match key {
            CoreKey::Tcp(i) => (&self.tcp, i),
            CoreKey::Udp(i) => (&self.udp, i),
        };
        map.get(i as usize).copied().filter(|&fd| fd >= 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shrink::SHRINK_FLOOR;

    #[test]
    fn the_reverse_map_gives_its_storage_back_as_its_high_slots_lose_their_owner() {
        let mut o = Owners::default();
        let fd = |i: u32| i as Fd + 3;
        for i in 0..4000u32 {
            o.set(CoreKey::Tcp(i), fd(i));
            if i < 2000 {
                o.set(CoreKey::Udp(i), fd(i));
            }
        }
        assert!(o.capacity() >= 6000);
        // The even ones first (the tail stays), then the odd ones from the top.
        let odd_down = (0..4000u32).rev().filter(|i| i % 2 == 1);
        for i in (0..4000u32).step_by(2).chain(odd_down) {
            o.clear(CoreKey::Tcp(i), fd(i));
            o.clear(CoreKey::Udp(i), fd(i));
            assert_eq!(o.get(CoreKey::Tcp(i)), None);
        }
        assert!(o.capacity() <= 2 * SHRINK_FLOOR, "given back: room for {}", o.capacity());
    }
}
