//! Stream ports: which port a stream socket may bind, and which ephemeral port
//! it gets. TCP owns the ports of listeners and connections
//! ([`stack::tcp::Tcp::check_bind`]); the descriptor table keeps apart only the
//! ports of sockets bound and not yet listening or connecting, which TCP does not
//! know yet, and passes them in here as `idle`: each such socket's address and
//! whether it has SO_REUSEADDR. (UDP keeps its own ports: `stack::udp`.)

use stack::Stack;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Whether a stream socket may not bind `ip:port`: a listener or a live
/// connection holds the port (a TIME-WAIT one does unless `reuse`), or an idle
/// bound socket does, unless their addresses differ or both have SO_REUSEADDR.
pub(crate) fn taken(
    stack: &mut Stack,
    idle: impl IntoIterator<Item = (SocketAddrV4, bool)>,
    port: u16,
    ip: Ipv4Addr,
    reuse: bool,
) -> bool {
    let (tcp, net) = stack.tcp();
    if tcp.check_bind(net, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port), reuse).is_err() {
        return true;
    }
    idle.into_iter().any(|(l, l_reuse)| {
        let overlap = l.ip().is_unspecified() || ip.is_unspecified() || *l.ip() == ip;
        l.port() == port && overlap && !(reuse && l_reuse)
    })
}

/// A free port for a stream socket from 49152-65535 (RFC 6056 algorithm 1: a
/// random start, then the next free one), free both in TCP and among `idle`.
pub(crate) fn pick<I>(stack: &mut Stack, idle: I) -> Option<u16>
where
    I: IntoIterator<Item = (SocketAddrV4, bool)> + Clone,
{
    let (lo, hi) = (*stack::tcp::EPHEMERAL_PORTS.start() as u32, *stack::tcp::EPHEMERAL_PORTS.end() as u32);
    let count = hi - lo + 1;
    let start: u32 = stack.ip().random_range(0..count);
    (0..count)
        .map(|i| (lo + (start + i) % count) as u16)
        .find(|&p| !taken(stack, idle.clone(), p, Ipv4Addr::UNSPECIFIED, false))
}
