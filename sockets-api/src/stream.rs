//! The protocol half of SOCK_STREAM sockets: where the descriptor table meets
//! TCP (`stack::tcp`). The table keeps descriptors, options and shutdown flags;
//! this module keeps which TCP object a socket stands for and maps each call onto
//! the core's, with the errno Linux gives in each state.
//!
//! Stream sockets start with TCP's defaults (`Config::tcp.default_options`: 64
//! KiB each way, reported doubled as Linux reports them, so 131072). TCP's
//! buffers get the size asked for (half what getsockopt(2) reports).
//!
//! A stream socket goes through these phases ([`Phase`]):
//! - `Idle`: new, or bound, or after a connect that failed (as on Linux, it may
//!   connect again). The port bind(2) chose is the table's to keep apart from
//!   other idle sockets' until TCP takes it over.
//! - `Listening`: a TCP listener owns the port.
//! - `Connecting`: connect(2) started the handshake; the TCP connection owns the
//!   4-tuple. It becomes `Connected` the first time a call sees the handshake
//!   done, or goes back to `Idle` when a call reports that it failed.
//! - `Connected`: an established (or accepted) connection, to the end: after a
//!   reset or a close by the peer the socket stays here, answering as Linux does
//!   (ECONNRESET once, then EOF and EPIPE), until close(2).

use crate::consts::*;
use crate::errno::{tcp_errno as errno, Errno, Result};
use crate::options::{Options, MAX_TCP_KEEPCNT, MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL};
use stack::tcp::{ConnId, Shutdown, SocketOptions, State, TcpError};
use stack::{Instant, Stack};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// Which TCP object a stream socket stands for.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Phase {
    #[default]
    Idle,
    Listening(ConnId),
    Connecting(ConnId),
    Connected(ConnId),
}

/// A stream socket's protocol state.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    /// The address bind(2) gave (or listen(2) picked). While the socket is idle
    /// the table keeps its port apart from other idle sockets' (TCP does not know
    /// it yet); once listening or connected, TCP owns the port.
    pub local: Option<SocketAddrV4>,
    pub phase: Phase,
}

impl Stream {
    /// The port this socket holds in the table's own bookkeeping: only an idle,
    /// bound socket's (TCP knows every other).
    pub fn table_port(&self) -> Option<SocketAddrV4> {
        match self.phase {
            Phase::Idle => self.local,
            _ => None,
        }
    }

    /// The TCP slot of whatever TCP object the socket stands for, for the
    /// readiness registry's reverse map.
    pub fn tcp_index(&self) -> Option<u32> {
        self.id().map(ConnId::index)
    }

    /// The connection, connecting or connected.
    fn conn(&self) -> Option<ConnId> {
        match self.phase {
            Phase::Connecting(id) | Phase::Connected(id) => Some(id),
            _ => None,
        }
    }

    /// The TCP object of any kind.
    fn id(&self) -> Option<ConnId> {
        match self.phase {
            Phase::Listening(id) | Phase::Connecting(id) | Phase::Connected(id) => Some(id),
            Phase::Idle => None,
        }
    }
}

/// The TCP options for a socket's options. Buffer sizes: the table holds them as
/// Linux reports them (doubled); TCP gets the size asked for, as the space for
/// data (Linux's doubling is its allowance for bookkeeping).
pub(crate) fn tcp_options(o: &Options) -> SocketOptions {
    SocketOptions {
        nodelay: o.nodelay,
        keepalive: o.keepalive,
        keep_idle: Duration::from_secs(o.keep_idle as u64),
        keep_interval: Duration::from_secs(o.keep_intvl as u64),
        keep_count: o.keep_cnt,
        linger: (o.linger.l_onoff != 0).then(|| Duration::from_secs(o.linger.l_linger.max(0) as u64)),
        send_buffer: o.sndbuf / 2,
        recv_buffer: o.rcvbuf / 2,
        reuse_addr: o.reuse_addr,
        // R2 per connection has no socket option yet: the stack-wide TcpConfig applies.
        retries: None,
    }
}

/// The options a new stream socket starts with: the stack's TCP defaults
/// (`Config::tcp.default_options`), in the table's units.
pub(crate) fn default_options(stack: &Stack) -> Options {
    let d = &stack.config().tcp.default_options;
    Options {
        nodelay: d.nodelay,
        keepalive: d.keepalive,
        keep_idle: d.keep_idle.as_secs().clamp(1, MAX_TCP_KEEPIDLE as u64) as u32,
        keep_intvl: d.keep_interval.as_secs().clamp(1, MAX_TCP_KEEPINTVL as u64) as u32,
        keep_cnt: d.keep_count.clamp(1, MAX_TCP_KEEPCNT as u32),
        rcvbuf: d.recv_buffer * 2,
        sndbuf: d.send_buffer * 2,
        reuse_addr: d.reuse_addr,
        ..Options::default()
    }
}

/// Where a connection's state says the peer's FIN has come (or the connection
/// has ended), so that reading can only drain what is buffered.
fn fin_received(state: State) -> bool {
    matches!(state, State::CloseWait | State::Closing | State::LastAck | State::TimeWait | State::Closed)
}

/// Moves `Connecting` to `Connected` once the handshake is done.
fn promote(stack: &mut Stack, s: &mut Stream) {
    if let Phase::Connecting(id) = s.phase {
        if stack.tcp().0.state(id).is_ok_and(|st| st.is_synchronized()) {
            s.phase = Phase::Connected(id);
        }
    }
}

/// listen(2) on `local` (the table has bound it, or picked an ephemeral port).
/// Listening again only keeps listening (Linux would change the backlog).
///
/// The backlog bounds, each apart, the connections in the handshake (the SYN
/// queue, beyond which SYNs are answered with cookies, RFC 4987) and those
/// waiting for accept(2) (the accept queue, beyond which a SYN is dropped,
/// counted as `TcpBacklogFull`, and retransmitted by the peer), as on Linux:
/// at least 1, at most the stack's `max_backlog`; a negative one means the most.
///
/// Errors: EINVAL when connecting or connected; EADDRINUSE when a listener or a
/// connection (or a TIME-WAIT one, without SO_REUSEADDR) holds the port.
pub(crate) fn listen(
    stack: &mut Stack,
    s: &mut Stream,
    opts: &Options,
    backlog: i32,
    local: SocketAddrV4,
) -> Result<()> {
    match s.phase {
        Phase::Listening(_) => return Ok(()),
        Phase::Idle => {}
        Phase::Connecting(_) | Phase::Connected(_) => return Err(Errno::EINVAL),
    }
    let backlog = usize::try_from(backlog).unwrap_or(usize::MAX);
    let (tcp, net) = stack.tcp();
    let id = tcp.listen_with(net, local, backlog, tcp_options(opts)).map_err(errno)?;
    s.local = Some(tcp.local_addr(id).map_err(errno)?);
    s.phase = Phase::Listening(id);
    Ok(())
}

/// Starts or continues connect(2), as Linux's `__inet_stream_connect`:
/// - idle: sends the SYN from `local` (the table has picked the port) and answers
///   EINPROGRESS (the blocking layer then waits with [`connect_status`]);
/// - connecting: EALREADY while the handshake runs, `Ok` the first time it is
///   seen done, or the error that ended it (then the socket is idle again);
/// - connected or listening: EISCONN.
///
/// Errors also: ENETUNREACH (no route, or a broadcast or multicast peer);
/// EADDRNOTAVAIL (the 4-tuple is taken); ENOBUFS (the connection table is full);
/// EINVAL (port 0 or address 0.0.0.0).
pub(crate) fn connect(
    stack: &mut Stack,
    now: Instant,
    s: &mut Stream,
    opts: &Options,
    remote: SocketAddrV4,
    local: SocketAddrV4,
) -> Result<()> {
    match s.phase {
        Phase::Listening(_) | Phase::Connected(_) => return Err(Errno::EISCONN),
        Phase::Connecting(_) => {
            return match connect_status(stack, now, s) {
                Err(Errno::EAGAIN) => Err(Errno::EALREADY),
                r => r,
            }
        }
        Phase::Idle => {}
    }
    let ip = *remote.ip();
    if ip.is_multicast() || stack.config().is_broadcast(ip) {
        return Err(Errno::ENETUNREACH);
    }
    let (tcp, net) = stack.tcp();
    let id = tcp.connect_with(now, net, Some(local), remote, tcp_options(opts)).map_err(|e| match e {
        TcpError::HostUnreachable => Errno::ENETUNREACH,
        TcpError::AddrInUse => Errno::EADDRNOTAVAIL,
        e => errno(e),
    })?;
    s.phase = Phase::Connecting(id);
    Err(Errno::EINPROGRESS)
}

/// How a connect in progress stands: `Ok` once established (and from then on),
/// EAGAIN while the handshake runs, or the error that ended it: ECONNREFUSED,
/// ETIMEDOUT, EHOSTUNREACH..., or ECONNABORTED when SO_ERROR already took it or
/// shutdown(2) ended the attempt. After an error the socket is idle again.
/// ENOTCONN for a socket that never connected.
pub(crate) fn connect_status(stack: &mut Stack, now: Instant, s: &mut Stream) -> Result<()> {
    promote(stack, s);
    let id = match s.phase {
        Phase::Connected(_) => return Ok(()),
        Phase::Connecting(id) => id,
        Phase::Idle | Phase::Listening(_) => return Err(Errno::ENOTCONN),
    };
    let (tcp, net) = stack.tcp();
    match tcp.state(id) {
        Ok(State::SynSent | State::SynReceived) => Err(Errno::EAGAIN),
        _ => {
            let err = tcp.take_error(id).ok().flatten().map_or(Errno::ECONNABORTED, errno);
            let _ = tcp.close(now, net, id);
            s.phase = Phase::Idle;
            Err(err)
        }
    }
}

/// accept(2): the next established connection as a new stream and its peer.
/// Errors: EINVAL when not listening; EAGAIN when none is waiting.
pub(crate) fn accept(stack: &mut Stack, s: &mut Stream) -> Result<(Stream, SocketAddrV4)> {
    let Phase::Listening(id) = s.phase else { return Err(Errno::EINVAL) };
    match stack.tcp().0.accept(id).map_err(errno)? {
        Some((conn, peer)) => Ok((Stream { local: None, phase: Phase::Connected(conn) }, peer)),
        None => Err(Errno::EAGAIN),
    }
}

/// send(2): queues what fits in the send buffer and returns how much.
///
/// Errors: EPIPE when never connected, or after shutdown(SHUT_WR) or the end of
/// the connection; ECONNRESET (once) after a reset, ECONNREFUSED... after a failed
/// connect; EAGAIN while the handshake runs or when the buffer is full;
/// EOPNOTSUPP for MSG_OOB (urgent data is not sent).
pub(crate) fn send(stack: &mut Stack, now: Instant, s: &mut Stream, buf: &[u8], flags: i32) -> Result<usize> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    promote(stack, s);
    let Some(id) = s.conn() else { return Err(Errno::EPIPE) };
    let (tcp, net) = stack.tcp();
    if matches!(tcp.state(id), Ok(State::SynSent | State::SynReceived)) {
        // Linux waits for the handshake (sk_stream_wait_connect).
        return Err(Errno::EAGAIN);
    }
    tcp.send(now, net, id, buf).map_err(errno)
}

/// recv(2); `Ok(0)` at end of stream (after the peer's FIN, after SHUT_RD, and
/// after a reset has been reported). MSG_PEEK leaves the data queued. MSG_TRUNC
/// is ignored (Linux would discard the bytes).
///
/// Errors: ENOTCONN when not connected (listening included); EAGAIN when nothing
/// has arrived; ECONNRESET (once) after a reset; ETIMEDOUT, ECONNREFUSED...;
/// EINVAL for MSG_OOB (no urgent data is kept apart).
pub(crate) fn recv(stack: &mut Stack, now: Instant, s: &mut Stream, buf: &mut [u8], flags: i32) -> Result<usize> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EINVAL);
    }
    promote(stack, s);
    let Some(id) = s.conn() else { return Err(Errno::ENOTCONN) };
    let (tcp, net) = stack.tcp();
    tcp.recv(now, net, id, buf, flags & MSG_PEEK != 0).map_err(errno)
}

/// Whether an error waits to be reported (for a read: with no data before it),
/// so that a call that has already moved some bytes returns their count and
/// leaves the error to the next call, as BSD's.
pub(crate) fn error_pending(stack: &mut Stack, s: &Stream, for_recv: bool) -> bool {
    let Some(id) = s.conn() else { return false };
    let tcp = stack.tcp().0;
    let Ok(r) = tcp.readiness(id) else { return false };
    r.error.is_some() && (!for_recv || tcp.info(id).is_ok_and(|i| i.recv_queue == 0))
}

/// Whether a MSG_PEEK|MSG_WAITALL read that found fewer bytes than it wants can
/// still get more: false once the peer's FIN came or the connection ended.
pub(crate) fn more_may_arrive(stack: &mut Stack, s: &Stream) -> bool {
    s.conn().is_some_and(|id| stack.tcp().0.state(id).is_ok_and(|st| !fin_received(st)))
}

/// shutdown(2), as Linux's `inet_shutdown`: on a connection SHUT_WR sends a FIN
/// after the queued data and SHUT_RD makes reads return 0 once the buffer is
/// empty; while the handshake runs any `how` abandons it (a blocked connect(2)
/// then fails with ECONNABORTED). On a listener SHUT_RD stops listening (a
/// blocked accept(2) wakes and fails with EINVAL; the port stays bound) and
/// SHUT_WR does nothing.
///
/// Errors: ENOTCONN when idle, or when the connection has already ended.
pub(crate) fn shutdown(stack: &mut Stack, now: Instant, s: &mut Stream, how: i32) -> Result<()> {
    let (tcp, net) = stack.tcp();
    match s.phase {
        Phase::Idle => Err(Errno::ENOTCONN),
        Phase::Listening(id) => {
            if how != SHUT_WR {
                tcp.close(now, net, id).map_err(errno)?;
                s.phase = Phase::Idle;
            }
            Ok(())
        }
        Phase::Connecting(id) | Phase::Connected(id) => {
            let how = match how {
                SHUT_RD => Shutdown::Read,
                SHUT_WR => Shutdown::Write,
                _ => Shutdown::Both,
            };
            let how = if matches!(tcp.state(id), Ok(State::SynSent)) { Shutdown::Both } else { how };
            tcp.shutdown(now, net, id, how).map_err(errno)
        }
    }
}

/// connect(2) with AF_UNSPEC (Linux's `tcp_disconnect`): resets a connection,
/// stops a listener; the socket is idle again, keeping the address bind(2) gave.
pub(crate) fn disconnect(stack: &mut Stack, now: Instant, s: &mut Stream) {
    let (tcp, net) = stack.tcp();
    if let Some(id) = s.id() {
        let _ = tcp.abort(now, net, id);
    }
    s.phase = Phase::Idle;
}

/// What a close with SO_LINGER waits for: the connection's FIN to be
/// acknowledged (its state leaves FIN-WAIT-1, CLOSING and LAST-ACK, or it ends),
/// for at most `timeout`, as Linux's close(2) does.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LingerWait {
    pub conn: ConnId,
    pub timeout: Duration,
}

impl LingerWait {
    /// Whether the wait is over (the FIN is acknowledged or the connection gone).
    pub fn done(&self, stack: &mut Stack) -> bool {
        stack.tcp().0.linger_done(self.conn)
    }
}

/// close(2): TCP's orderly release (a FIN after the queued data; the connection
/// lives on in the core through FIN-WAIT and TIME-WAIT), or an abort (RST) with
/// SO_LINGER on and a zero timeout, or when unread data is left (as Linux). A
/// listener's connections not yet accepted are reset. With SO_LINGER on and a
/// nonzero timeout, returns what the caller must wait for.
pub(crate) fn close(stack: &mut Stack, now: Instant, s: Stream, opts: &Options) -> Option<LingerWait> {
    let (tcp, net) = stack.tcp();
    match s.phase {
        Phase::Idle => None,
        Phase::Listening(id) => {
            let _ = tcp.close(now, net, id);
            None
        }
        Phase::Connecting(id) | Phase::Connected(id) => {
            let linger = opts.linger;
            if linger.l_onoff != 0 && linger.l_linger <= 0 {
                let _ = tcp.abort(now, net, id);
                return None;
            }
            let _ = tcp.close(now, net, id);
            (linger.l_onoff != 0).then(|| LingerWait { conn: id, timeout: Duration::from_secs(linger.l_linger as u64) })
        }
    }
}

/// getsockname(2): the bound or connected address; 0.0.0.0:0 before either.
pub(crate) fn local(stack: &mut Stack, s: &Stream) -> SocketAddrV4 {
    let unbound = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
    match s.id() {
        Some(id) => stack.tcp().0.local_addr(id).unwrap_or(s.local.unwrap_or(unbound)),
        None => s.local.unwrap_or(unbound),
    }
}

/// getpeername(2). Errors: ENOTCONN when not connected (as on Linux, also while
/// the SYN is unanswered and after the connection ended).
pub(crate) fn peer(stack: &mut Stack, s: &Stream) -> Result<SocketAddrV4> {
    let id = s.conn().ok_or(Errno::ENOTCONN)?;
    let tcp = stack.tcp().0;
    match tcp.state(id) {
        Ok(State::SynSent | State::Closed) | Err(_) => Err(Errno::ENOTCONN),
        Ok(_) => tcp.peer_addr(id).map_err(errno),
    }
}

/// poll(2) bits, as Linux's `tcp_poll`:
/// - idle: POLLOUT and POLLHUP;
/// - listening: POLLIN with a connection to accept;
/// - a connection: POLLIN with data, EOF, or an error to read; POLLRDHUP once the
///   peer's FIN came; POLLOUT with room to send once established, and also once
///   sending is over (a send then fails at once rather than block); nothing while
///   the SYN is unanswered; POLLERR with an error pending; POLLHUP once both
///   directions are finished or the connection ended.
pub(crate) fn readiness(stack: &mut Stack, s: &Stream) -> i16 {
    let tcp = stack.tcp().0;
    match s.phase {
        Phase::Idle => POLLOUT | POLLHUP,
        Phase::Listening(id) => match tcp.readiness(id) {
            Ok(r) if r.readable => POLLIN | POLLRDNORM,
            _ => 0,
        },
        Phase::Connecting(id) | Phase::Connected(id) => {
            let (Ok(r), Ok(state)) = (tcp.readiness(id), tcp.state(id)) else { return POLLERR | POLLHUP };
            let mut m = 0;
            if r.readable {
                m |= POLLIN | POLLRDNORM;
            }
            if fin_received(state) {
                m |= POLLIN | POLLRDNORM | POLLRDHUP;
            }
            let sending_over = state == State::Closed || state.fin_queued();
            if r.writable || sending_over {
                m |= POLLOUT | POLLWRNORM;
            }
            if r.error.is_some() {
                m |= POLLERR;
            }
            if r.hangup {
                m |= POLLHUP;
            }
            m
        }
    }
}

/// Takes the pending error (SO_ERROR).
pub(crate) fn take_error(stack: &mut Stack, s: &mut Stream) -> Option<Errno> {
    let id = s.conn()?;
    stack.tcp().0.take_error(id).ok().flatten().map(errno)
}

/// Whether the socket listens (SO_ACCEPTCONN).
pub(crate) fn is_listening(s: &Stream) -> bool {
    matches!(s.phase, Phase::Listening(_))
}

/// Hands changed options (TCP_NODELAY, SO_KEEPALIVE and its parameters,
/// SO_LINGER, SO_SNDBUF, SO_RCVBUF, SO_REUSEADDR) to TCP. A listener passes them
/// on to the connections it accepts. Errors: EINVAL (refused by TCP).
pub(crate) fn apply_options(stack: &mut Stack, now: Instant, s: &mut Stream, opts: &Options) -> Result<()> {
    let Some(id) = s.id() else { return Ok(()) };
    let (tcp, net) = stack.tcp();
    tcp.set_options(now, net, id, tcp_options(opts)).map_err(errno)
}
