//! The protocol half of SOCK_STREAM sockets: where the socket table meets TCP.
//!
//! Until TCP lands (the TCP issue), a stream socket can be created, bound, given
//! options, polled and closed, and every call that needs the protocol answers
//! EOPNOTSUPP, or the error Linux gives for the socket's state (ENOTCONN, EPIPE,
//! EINVAL). The TCP engineer fills in the bodies below with the core's calls
//! (`tcp.listen(net, local, backlog)`, `tcp.connect(now, net, local, remote)`,
//! `tcp.accept(listener)`, `tcp.send/recv(now, net, id, ..)`, `tcp.readiness(id)`,
//! `tcp.take_error(id)`) and adds the states they create to [`Stream`]; the socket
//! table, the blocking runtime and poll need no change.

use crate::consts::*;
use crate::errno::{Errno, Result};
use crate::table::Options;
use stack::{Instant, Stack};
use std::net::{Ipv4Addr, SocketAddrV4};

/// A stream socket's protocol state.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    /// The address bind(2) chose, not yet handed to TCP (the table keeps stream
    /// sockets' ports apart until then).
    pub local: Option<SocketAddrV4>,
    // TCP adds its states here: Listening(listener id), Connecting / Connected(conn id).
}

/// listen(2). Errors: EOPNOTSUPP until TCP lands.
pub(crate) fn listen(_stack: &mut Stack, _s: &mut Stream, _opts: &Options, _backlog: i32) -> Result<()> {
    Err(Errno::EOPNOTSUPP)
}

/// Starts connect(2). `Ok` when connected at once; EINPROGRESS when the handshake
/// has started (the table then waits with [`connect_status`] unless nonblocking).
/// Errors: EOPNOTSUPP until TCP lands; with TCP also EISCONN, EALREADY,
/// ENETUNREACH, EADDRNOTAVAIL (no ephemeral port).
pub(crate) fn connect(
    _stack: &mut Stack,
    _now: Instant,
    _s: &mut Stream,
    _opts: &Options,
    _remote: SocketAddrV4,
) -> Result<()> {
    Err(Errno::EOPNOTSUPP)
}

/// How a connect in progress stands: `Ok` once established, EAGAIN (Linux's
/// EALREADY to a second connect(2)) while the handshake runs, or its error
/// (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH).
pub(crate) fn connect_status(_stack: &mut Stack, _s: &mut Stream) -> Result<()> {
    Err(Errno::ENOTCONN)
}

/// accept(2): the next established connection as a new stream and its peer.
/// Errors: EINVAL when not listening; EAGAIN when none is waiting.
pub(crate) fn accept(_stack: &mut Stack, _now: Instant, _s: &mut Stream) -> Result<(Stream, SocketAddrV4)> {
    Err(Errno::EINVAL)
}

/// send(2). Errors: EPIPE when not connected or shut down for writing (Linux's
/// answer for a never-connected socket); EAGAIN when the send buffer is full.
pub(crate) fn send(_stack: &mut Stack, _now: Instant, _s: &mut Stream, _buf: &[u8], _flags: i32) -> Result<usize> {
    Err(Errno::EPIPE)
}

/// recv(2); `Ok(0)` at end of stream. Errors: ENOTCONN when not connected; EAGAIN
/// when nothing has arrived; ECONNRESET after a reset.
pub(crate) fn recv(_stack: &mut Stack, _now: Instant, _s: &mut Stream, _buf: &mut [u8], _flags: i32) -> Result<usize> {
    Err(Errno::ENOTCONN)
}

/// shutdown(2). Errors: ENOTCONN when not connected.
pub(crate) fn shutdown(_stack: &mut Stack, _now: Instant, _s: &mut Stream, _how: i32) -> Result<()> {
    Err(Errno::ENOTCONN)
}

/// close(2): TCP's orderly release (or an abort, with SO_LINGER zero).
pub(crate) fn close(_stack: &mut Stack, _now: Instant, _s: Stream, _opts: &Options) {}

/// getsockname(2).
pub(crate) fn local(_stack: &Stack, s: &Stream) -> SocketAddrV4 {
    s.local.unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
}

/// getpeername(2). Errors: ENOTCONN.
pub(crate) fn peer(_stack: &Stack, _s: &Stream) -> Result<SocketAddrV4> {
    Err(Errno::ENOTCONN)
}

/// poll(2) bits. A socket that is neither listening nor connected is, as on Linux,
/// writable and hung up.
pub(crate) fn readiness(_stack: &Stack, _s: &Stream) -> i16 {
    POLLOUT | POLLHUP
}

/// Takes the pending error (SO_ERROR).
pub(crate) fn take_error(_stack: &mut Stack, _s: &mut Stream) -> Option<Errno> {
    None
}

/// Whether the socket listens (SO_ACCEPTCONN).
pub(crate) fn is_listening(_s: &Stream) -> bool {
    false
}

/// Hands changed options (TCP_NODELAY, SO_KEEPALIVE, SO_LINGER, buffer sizes) to TCP.
pub(crate) fn apply_options(_stack: &mut Stack, _s: &mut Stream, _opts: &Options) {}
