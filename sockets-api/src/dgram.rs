//! The protocol half of SOCK_DGRAM sockets: each call mapped onto the core's UDP
//! (`stack::udp`), with the errno Linux gives. The descriptor table keeps the
//! descriptor, the options and the shutdown flags and passes them in; this module
//! keeps nothing of its own but the UDP handle it is given.
//!
//! A UDP socket's receive queue holds what its SO_RCVBUF allows (see `stack::udp`
//! for the accounting). UDP keeps no send buffer: a datagram goes to the transmit
//! queue at once, so SO_SNDBUF only reads back.

use crate::consts::*;
use crate::errno::{udp_errno, Errno, Result};
use crate::options::{Options, DEFAULT_BUF};
use stack::udp::{self, SocketHandle, UdpError};
use stack::{Instant, Stack};
use std::net::{Ipv4Addr, SocketAddrV4};

fn unspecified() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)
}

/// socket(2)'s half: a new UDP socket with the default receive buffer.
/// Errors: ENFILE when the stack's UDP table is full.
pub(crate) fn open(stack: &mut Stack) -> Result<SocketHandle> {
    let (udp, _) = stack.udp();
    let h = udp.open().map_err(udp_errno)?;
    udp.set_recv_buffer(h, DEFAULT_BUF).map_err(udp_errno)?;
    Ok(h)
}

/// bind(2). Errors: EINVAL when already bound; EADDRNOTAVAIL; EADDRINUSE when
/// the port is taken (both need SO_REUSEADDR to share it) or none is free.
pub(crate) fn bind(stack: &mut Stack, h: SocketHandle, addr: SocketAddrV4) -> Result<()> {
    let (udp, net) = stack.udp();
    udp.bind(net, h, addr).map_err(|e| match e {
        // bind(2) says EADDRINUSE where an implicit bind says EAGAIN.
        UdpError::NoEphemeralPort => Errno::EADDRINUSE,
        e => udp_errno(e),
    })
}

/// connect(2): the default destination, and the only source accepted from now
/// on (binding an ephemeral port first if needed).
pub(crate) fn connect(stack: &mut Stack, h: SocketHandle, addr: SocketAddrV4) -> Result<()> {
    let (udp, net) = stack.udp();
    udp.connect(net, h, addr).map_err(udp_errno)
}

/// connect(2) with AF_UNSPEC: accepts datagrams from anyone again.
pub(crate) fn disconnect(stack: &mut Stack, h: SocketHandle) -> Result<()> {
    stack.udp().0.disconnect(h).map_err(udp_errno)
}

/// sendto(2): `buf` as one datagram to `addr`, or to the peer when `None`.
/// Errors: EMSGSIZE above 65507 bytes; EPIPE after shutdown(SHUT_WR); then UDP's.
pub(crate) fn sendto(
    stack: &mut Stack,
    now: Instant,
    h: SocketHandle,
    shut_wr: bool,
    buf: &[u8],
    addr: Option<SocketAddrV4>,
) -> Result<usize> {
    if buf.len() > udp::MAX_DATAGRAM {
        return Err(Errno::EMSGSIZE);
    }
    if shut_wr {
        return Err(Errno::EPIPE);
    }
    let (udp, net) = stack.udp();
    udp.send_to(now, net, h, addr, buf).map_err(udp_errno)
}

/// recvmsg(2): the next datagram (MSG_PEEK: leaving it queued), as (count,
/// source, flags out). A datagram longer than `buf` is truncated and the flags
/// out say MSG_TRUNC; the count is what was copied, or the full length with
/// MSG_TRUNC in `flags`. After SHUT_RD an empty queue reads as 0 bytes from
/// 0.0.0.0:0. Errors: a pending error first; EAGAIN when nothing is queued.
pub(crate) fn recvmsg(
    stack: &mut Stack,
    h: SocketHandle,
    shut_rd: bool,
    buf: &mut [u8],
    flags: i32,
) -> Result<(usize, SocketAddrV4, i32)> {
    let (udp, _) = stack.udp();
    match udp.recv_from(h, buf, flags & MSG_PEEK != 0) {
        Ok((full, src)) => {
            let copied = full.min(buf.len());
            let out = if full > buf.len() { MSG_TRUNC } else { 0 };
            let len = if flags & MSG_TRUNC != 0 { full } else { copied };
            Ok((len, src, out))
        }
        Err(UdpError::WouldBlock) if shut_rd => Ok((0, unspecified(), 0)),
        Err(e) => Err(udp_errno(e)),
    }
}

/// close(2): the port and the queued datagrams go with the socket.
pub(crate) fn close(stack: &mut Stack, h: SocketHandle) -> Result<()> {
    stack.udp().0.close(h).map_err(udp_errno)
}

/// What shutdown(2) answers once the table has set the flags: `Ok` on a
/// connected socket, ENOTCONN otherwise (as on Linux, the flags are set anyway).
pub(crate) fn shutdown_status(stack: &mut Stack, h: SocketHandle) -> Result<()> {
    let connected = stack.udp().0.socket(h).map_err(udp_errno)?.remote().is_some();
    if connected {
        Ok(())
    } else {
        Err(Errno::ENOTCONN)
    }
}

/// getsockname(2): 0.0.0.0:0 while unbound.
pub(crate) fn local(stack: &mut Stack, h: SocketHandle) -> Result<SocketAddrV4> {
    Ok(stack.udp().0.socket(h).map_err(udp_errno)?.local().unwrap_or(unspecified()))
}

/// getpeername(2). Errors: ENOTCONN when not connected.
pub(crate) fn peer(stack: &mut Stack, h: SocketHandle) -> Result<SocketAddrV4> {
    stack.udp().0.socket(h).map_err(udp_errno)?.remote().ok_or(Errno::ENOTCONN)
}

/// Hands the options UDP uses (SO_REUSEADDR, SO_BROADCAST, SO_RCVBUF, IP_TTL) to it.
pub(crate) fn apply_options(stack: &mut Stack, h: SocketHandle, opts: &Options) -> Result<()> {
    let (udp, _) = stack.udp();
    udp.set_reuse_addr(h, opts.reuse_addr).map_err(udp_errno)?;
    udp.set_broadcast(h, opts.broadcast).map_err(udp_errno)?;
    udp.set_recv_buffer(h, opts.rcvbuf).map_err(udp_errno)?;
    udp.set_ttl(h, opts.ttl).map_err(udp_errno)?;
    Ok(())
}

/// Takes the pending error (SO_ERROR).
pub(crate) fn take_error(stack: &mut Stack, h: SocketHandle) -> Result<Option<Errno>> {
    Ok(stack.udp().0.take_error(h).map_err(udp_errno)?.map(udp_errno))
}

/// poll(2) bits: readable with a datagram queued or after SHUT_RD (a read
/// returns 0 then), always writable, in error with an error pending. `None` for
/// a handle UDP does not know.
pub(crate) fn readiness(stack: &mut Stack, h: SocketHandle, shut_rd: bool) -> Option<i16> {
    let r = stack.udp().0.readiness(h).ok()?;
    let mut m = 0;
    if r.readable || shut_rd {
        m |= POLLIN | POLLRDNORM;
    }
    if shut_rd {
        m |= POLLRDHUP;
    }
    if r.writable {
        m |= POLLOUT | POLLWRNORM;
    }
    if r.error {
        m |= POLLERR;
    }
    Some(m)
}
