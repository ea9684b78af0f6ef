//! Stream ports: which port a stream socket may bind, and which ephemeral port
//! it gets. TCP owns the ports of listeners and connections
//! ([`stack::tcp::Tcp::check_bind`]); the descriptor table keeps apart only the
//! ports of sockets bound and not yet listening or connecting, which TCP does not
//! know yet, in an [`IdlePorts`] index kept by every table call that may
//! change one (bind, listen, connect, setsockopt, close...): each such socket's
//! address and whether it has SO_REUSEADDR, by port. So a bind's check and an
//! ephemeral port's choice cost O(1) in the number of descriptors (and in
//! TCP's connections: see `Tcp::check_bind`), never a scan of the table.
//! (UDP keeps its own ports: `stack::udp`.)

use crate::shrink::Shrink;
use stack::Stack;
use std::cell::Cell;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

/// A descriptor (`fd_table::Fd`; named here by its type to keep the import one-way).
type Fd = i32;

/// The idle bound stream sockets by port: for each, its descriptor, address
/// and SO_REUSEADDR. Bounded by the descriptor table (one entry per
/// descriptor); the maps give their storage back as they empty (`shrink`).
#[derive(Debug, Default)]
pub(crate) struct IdlePorts {
    by_port: HashMap<u16, Vec<(Fd, Ipv4Addr, bool)>>,
    by_fd: HashMap<Fd, (SocketAddrV4, bool)>,
    /// Entries looked at by [`IdlePorts::conflicts`] since the table was made:
    /// what the tests count to show a bind's cost does not grow with the table.
    visited: Cell<u64>,
}

impl IdlePorts {
    /// `fd` is now idle and bound to `idle` (address, SO_REUSEADDR), or not
    /// (`None`). O(sockets sharing its port), which only SO_REUSEADDR allows.
    pub(crate) fn set(&mut self, fd: Fd, idle: Option<(SocketAddrV4, bool)>) {
        if self.by_fd.get(&fd).copied() == idle {
            return;
        }
        if let Some((old, _)) = self.by_fd.remove(&fd) {
            if let Some(list) = self.by_port.get_mut(&old.port()) {
                list.retain(|e| e.0 != fd);
                if list.is_empty() {
                    self.by_port.remove(&old.port());
                }
            }
            self.by_fd.shrink_if_sparse();
            self.by_port.shrink_if_sparse();
        }
        if let Some((addr, reuse)) = idle {
            self.by_fd.insert(fd, (addr, reuse));
            self.by_port.entry(addr.port()).or_default().push((fd, *addr.ip(), reuse));
        }
    }

    /// Whether an idle socket holds `port` against a bind of `ip` (with
    /// SO_REUSEADDR: `reuse`): their addresses overlap and not both have it.
    pub(crate) fn conflicts(&self, port: u16, ip: Ipv4Addr, reuse: bool) -> bool {
        let Some(list) = self.by_port.get(&port) else { return false };
        self.visited.set(self.visited.get() + list.len() as u64);
        list.iter().any(|&(_, l_ip, l_reuse)| {
            let overlap = l_ip.is_unspecified() || ip.is_unspecified() || l_ip == ip;
            overlap && !(reuse && l_reuse)
        })
    }

    /// Idle bound sockets indexed.
    pub(crate) fn len(&self) -> usize {
        self.by_fd.len()
    }

    /// Every entry, by descriptor (for tests).
    #[cfg(test)]
    pub(crate) fn by_fd(&self) -> impl Iterator<Item = (Fd, (SocketAddrV4, bool))> + '_ {
        self.by_fd.iter().map(|(&fd, &e)| (fd, e))
    }

    /// Entries [`IdlePorts::conflicts`] has looked at so far.
    pub(crate) fn visited(&self) -> u64 {
        self.visited.get()
    }
}

/// Whether a stream socket may not bind `ip:port`: a listener or a live
/// connection holds the port (a TIME-WAIT one does unless `reuse`), or an idle
/// bound socket does, unless their addresses differ or both have SO_REUSEADDR.
pub(crate) fn taken(stack: &mut Stack, idle: &IdlePorts, port: u16, ip: Ipv4Addr, reuse: bool) -> bool {
    let (tcp, net) = stack.tcp();
    if tcp.check_bind(net, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port), reuse).is_err() {
        return true;
    }
    idle.conflicts(port, ip, reuse)
}

/// A free port for a stream socket from 49152-65535 (RFC 6056 algorithm 1: a
/// random start, then the next free one), free both in TCP and among `idle`.
pub(crate) fn pick(stack: &mut Stack, idle: &IdlePorts) -> Option<u16> {
    let (lo, hi) = (*stack::tcp::EPHEMERAL_PORTS.start() as u32, *stack::tcp::EPHEMERAL_PORTS.end() as u32);
    let count = hi - lo + 1;
    let start: u32 = stack.ip().random_range(0..count);
    (0..count)
        .map(|i| (lo + (start + i) % count) as u16)
        .find(|&p| !taken(stack, idle, p, Ipv4Addr::UNSPECIFIED, false))
}
