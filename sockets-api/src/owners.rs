//! Which descriptor stands for which core object: the reverse of the
//! descriptor table, so that a socket the core reports as changed
//! (`Tcp::drain_changed`, `Udp::drain_changed`) finds its descriptor, and so its
//! waiters, in O(1). One `Fd` per core slot (4 bytes), -1 for none.

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
    }

    pub(crate) fn get(&self, key: CoreKey) -> Option<Fd> {
        let (map, i) = match key {
            CoreKey::Tcp(i) => (&self.tcp, i),
            CoreKey::Udp(i) => (&self.udp, i),
        };
        map.get(i as usize).copied().filter(|&fd| fd >= 0)
    }
}
