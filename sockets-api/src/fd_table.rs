//! The descriptor table ([`FdTable`]): allocates and frees socket descriptors,
//! looks them up, and dispatches each BSD call to the datagram (`dgram`) or
//! stream (`stream`) half, sans-IO. It keeps what every socket has whatever its
//! kind: its type, its options ([`crate::options`]), O_NONBLOCK and the
//! shutdown flags.
//!
//! Every call takes the stack (and, where time matters, the time) and never blocks:
//! where a blocking call would wait it returns EAGAIN. [`crate::Net`] wraps these
//! calls with blocking, timeouts and the runtime thread; tests drive them directly
//! in virtual time (the `sim` harness).
//!
//! # Limits
//! - [`MAX_FDS`] descriptors (EMFILE beyond), numbered from [`FIRST_FD`] and
//!   reused lowest first, as Linux numbers file descriptors.
//! - Buffer sizes and option values follow Linux: see [`crate::options`].
//! - Stream ports: TCP owns the ports of listeners and connections; the table
//!   keeps apart only the ports of sockets bound and not yet listening or
//!   connecting (see `ports`).

use crate::consts::*;
use crate::dgram;
use crate::errno::{Errno, Result};
pub use crate::numbers::{Fd, NumberSpace, Numbers, Slots, FIRST_FD, NEED_NUMBER, SPARE_NUMBERS};
use crate::options::{self, OptVal, Options};
pub use crate::owners::CoreKey;
use crate::owners::Owners;
use crate::ports::{self, IdlePorts};
use crate::sock_type::check_socket_args;
pub use crate::sock_type::SockType;
use crate::stream::{self, LingerWait, Stream};
use stack::udp::SocketHandle;
use stack::{Instant, Stack};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

/// Most descriptors open at once by default (Linux's default RLIMIT_NOFILE soft
/// limit); [`FdTable::set_limit`] raises it (as setrlimit(2) does), up to
/// [`MAX_FDS_LIMIT`].
pub const MAX_FDS: usize = 1024;
/// The most [`FdTable::set_limit`] allows (Linux's default `fs.nr_open`).
pub const MAX_FDS_LIMIT: usize = 1 << 20;

/// What recvmsg(2) returns: the count (the datagram's full length with MSG_TRUNC in
/// the flags passed), the source, and the flags out (MSG_TRUNC when a datagram was
/// longer than the buffer).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RecvMsg {
    pub len: usize,
    pub addr: SocketAddrV4,
    pub flags: i32,
}

/// Which way a blocking call waits, to pick its timeout.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    Recv,
    Send,
}

/// What the blocking layer needs to know before it waits.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WaitParams {
    /// Identifies this socket across descriptor reuse: a waiter whose descriptor was
    /// closed (and maybe reused) meanwhile answers EBADF.
    pub generation: u64,
    pub ty: SockType,
    pub nonblocking: bool,
    pub timeout: Option<Duration>,
}

/// The protocol half a descriptor stands for.
#[derive(Debug)]
enum Proto {
    Udp(SocketHandle),
    Stream(Stream),
}

/// One open descriptor.
#[derive(Debug)]
struct Socket {
    generation: u64,
    ty: SockType,
    protocol: i32,
    nonblocking: bool,
    opts: Options,
    shut_rd: bool,
    shut_wr: bool,
    proto: Proto,
    /// The core object this descriptor is the owner of in the table's reverse
    /// map (kept by [`FdTable::rekey`]).
    key: Option<CoreKey>,
}

impl Socket {
    /// The core object the socket stands for now.
    fn core_key(&self) -> Option<CoreKey> {
        match &self.proto {
            Proto::Udp(h) => Some(CoreKey::Udp(h.index())),
            Proto::Stream(st) => st.tcp_index().map(CoreKey::Tcp),
        }
    }

    /// The address and SO_REUSEADDR of an idle bound stream socket: the ports the
    /// table keeps apart itself (see `ports`).
    fn idle_port(&self) -> Option<(SocketAddrV4, bool)> {
        match &self.proto {
            Proto::Stream(st) => st.table_port().map(|l| (l, self.opts.reuse_addr)),
            Proto::Udp(_) => None,
        }
    }
}

/// Every socket descriptor of one stack.
#[derive(Debug)]
pub struct FdTable {
    /// By slot (see `numbers`): as long as the highest descriptor in use.
    slots: Slots<Option<Socket>>,
    /// Which slots are free, and whose numbers they have.
    numbers: Numbers,
    limit: usize,
    open: usize,
    generations: u64,
    /// The descriptor owning each TCP and UDP slot (the reverse of
    /// `Socket::key`), so a change the core reports finds its waiters in O(1).
    owners: Owners,
    /// The idle bound stream sockets by port, kept by every call that may
    /// change one ([`FdTable::sync_idle`]), so binds and ephemeral ports never
    /// scan the descriptors.
    idle: IdlePorts,
}

impl Default for FdTable {
    fn default() -> FdTable {
        let (slots, numbers, owners) = (Slots::default(), Numbers::default(), Owners::default());
        FdTable { slots, numbers, limit: MAX_FDS, open: 0, generations: 0, owners, idle: IdlePorts::default() }
    }
}

fn unspecified() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)
}

fn v4(addr: SocketAddr) -> Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(Errno::EAFNOSUPPORT),
    }
}

impl FdTable {
    pub fn new() -> FdTable {
        FdTable::default()
    }

    /// A table numbering its sockets with numbers given it ([`FdTable::add_numbers`]; see `numbers`).
    pub fn with_reserved_numbers() -> FdTable {
        FdTable { numbers: Numbers::handed_in(), ..FdTable::default() }
    }

    /// Hands the table numbers (each at least [`FIRST_FD`]) for its next sockets, if it takes them.
    pub fn add_numbers(&mut self, fds: &[Fd]) {
        self.numbers.add(fds);
    }

    /// Takes `n` numbers from beyond the kernel's (see `numbers`) for its next
    /// sockets. Errors: EMFILE (no such range).
    pub fn add_beyond_numbers(&mut self, n: usize) -> Result<()> {
        self.numbers.add_beyond(n)
    }

    /// Its numbers: which are its own (the others are the kernel's), which were given back.
    pub fn numbers(&mut self) -> &mut Numbers {
        &mut self.numbers
    }

    /// Descriptors open.
    pub fn len(&self) -> usize {
        self.open
    }

    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Every open descriptor, lowest first (to close them all when the stack stops).
    pub fn open_fds(&self) -> impl Iterator<Item = Fd> + '_ {
        let space = self.numbers.space();
        self.slots.iter().filter(|(_, s)| s.is_some()).map(move |(i, _)| space.fd(i))
    }

    fn get(&self, fd: Fd) -> Result<&Socket> {
        let i = self.numbers.space().index(fd).ok_or(Errno::EBADF)?;
        self.slots.get(i).and_then(|s| s.as_ref()).ok_or(Errno::EBADF)
    }

    fn get_mut(&mut self, fd: Fd) -> Result<&mut Socket> {
        let i = self.numbers.space().index(fd).ok_or(Errno::EBADF)?;
        self.slots.get_mut(i).and_then(|s| s.as_mut()).ok_or(Errno::EBADF)
    }

    /// The lowest free slot. Errors: EMFILE; [`NEED_NUMBER`].
    fn free_slot(&mut self) -> Result<usize> {
        if self.full() {
            return Err(Errno::EMFILE);
        }
        self.numbers.lowest()
    }

    /// Whether every descriptor is taken (or more, after the limit was lowered).
    fn full(&self) -> bool {
        self.open >= self.limit
    }

    /// The most descriptors open at once (RLIMIT_NOFILE): [`MAX_FDS`] unless set.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Sets the most descriptors open at once, as setrlimit(RLIMIT_NOFILE) does;
    /// open ones stay open. Errors: EINVAL (0, or above [`MAX_FDS_LIMIT`]).
    pub fn set_limit(&mut self, limit: usize) -> Result<()> {
        if limit == 0 || limit > MAX_FDS_LIMIT {
            return Err(Errno::EINVAL);
        }
        self.limit = limit;
        Ok(())
    }

    /// Brings the reverse map (core object -> descriptor) up to date for `fd`
    /// after a call that may have changed what it stands for (connect, listen,
    /// shutdown of a listener, disconnect, a failed handshake). O(1).
    pub fn rekey(&mut self, fd: Fd) {
        let Ok(s) = self.get_mut(fd) else { return };
        let key = s.core_key();
        let old = std::mem::replace(&mut s.key, key);
        if let Some(k) = old.filter(|_| old != key) {
            self.owners.clear(k, fd);
        }
        key.inspect(|&k| self.owners.set(k, fd));
    }

    /// The descriptor standing for the core object `key`, if any.
    pub fn owner(&self, key: CoreKey) -> Option<Fd> {
        self.owners.get(key)
    }

    /// Puts a new socket in slot `index` (from [`FdTable::free_slot`]) with a
    /// new generation, and returns its descriptor.
    fn install(
        &mut self,
        index: usize,
        ty: SockType,
        protocol: i32,
        nonblocking: bool,
        opts: Options,
        proto: Proto,
    ) -> Fd {
        self.generations += 1;
        *self.slots.entry(index) = Some(Socket {
            generation: self.generations,
            ty,
            protocol,
            nonblocking,
            opts,
            shut_rd: false,
            shut_wr: false,
            proto,
            key: None,
        });
        self.numbers.take_lowest();
        self.open += 1;
        let fd = self.numbers.space().fd(index);
        self.rekey(fd);
        fd
    }

    /// Brings the index of idle bound stream sockets up to date for `fd` after
    /// a call that may have bound it, moved it out of or back into idleness, or
    /// changed its SO_REUSEADDR (closed: it leaves). O(1).
    fn sync_idle(&mut self, fd: Fd) {
        let idle = self.get(fd).ok().and_then(Socket::idle_port);
        self.idle.set(fd, idle);
    }

    /// Idle bound stream sockets, and the entries bind's checks have looked at
    /// so far: for tests that count a bind's work.
    pub fn idle_port_stats(&self) -> (usize, u64) {
        (self.idle.len(), self.idle.visited())
    }

    /// The identity of the socket `fd` names now, if any.
    pub fn generation(&self, fd: Fd) -> Option<u64> {
        self.get(fd).ok().map(|s| s.generation)
    }

    /// What a blocking call on `fd` needs. Errors: EBADF.
    pub fn wait_params(&self, fd: Fd, dir: Direction) -> Result<WaitParams> {
        let s = self.get(fd)?;
        let timeout = match dir {
            Direction::Recv => s.opts.rcvtimeo,
            Direction::Send => s.opts.sndtimeo,
        };
        Ok(WaitParams { generation: s.generation, ty: s.ty, nonblocking: s.nonblocking, timeout })
    }

    /// The socket's options. Errors: EBADF.
    pub fn options(&self, fd: Fd) -> Result<&Options> {
        Ok(&self.get(fd)?.opts)
    }

    /// The socket's type. Errors: EBADF.
    pub fn sock_type(&self, fd: Fd) -> Result<SockType> {
        Ok(self.get(fd)?.ty)
    }

    /// Whether a stream socket has an error waiting to be reported (for
    /// `Direction::Recv`: with no data left before it). For calls that move bytes
    /// in parts: once some have moved, the error is left for the next call.
    pub fn stream_error_pending(&self, stack: &mut Stack, fd: Fd, dir: Direction) -> bool {
        match self.get(fd).map(|s| &s.proto) {
            Ok(Proto::Stream(st)) => stream::error_pending(stack, st, dir == Direction::Recv),
            _ => false,
        }
    }

    /// Whether more bytes may still arrive on a stream socket (false once the
    /// peer's FIN came or the connection ended; false for other sockets).
    pub fn stream_more_may_arrive(&self, stack: &mut Stack, fd: Fd) -> bool {
        match self.get(fd).map(|s| &s.proto) {
            Ok(Proto::Stream(st)) => stream::more_may_arrive(stack, st),
            _ => false,
        }
    }

    /// The UDP handle behind a datagram socket, for the stack's own calls and counters.
    /// Errors: EBADF; EOPNOTSUPP for a stream socket.
    pub fn udp_handle(&self, fd: Fd) -> Result<SocketHandle> {
        match self.get(fd)?.proto {
            Proto::Udp(h) => Ok(h),
            Proto::Stream(_) => Err(Errno::EOPNOTSUPP),
        }
    }

    /// socket(2): a new socket of `domain`, `ty` (optionally or-ed with
    /// SOCK_NONBLOCK and SOCK_CLOEXEC, which is accepted and has no effect) and
    /// `protocol`.
    ///
    /// Errors, checked in Linux's order:
    /// - EINVAL: unknown flags in `ty`, a type outside Linux's range, or a protocol outside 0..IPPROTO_MAX.
    /// - EAFNOSUPPORT: a family other than AF_INET.
    /// - ESOCKTNOSUPPORT: a type AF_INET lacks here (SOCK_RAW, SOCK_SEQPACKET, ...).
    /// - EPROTONOSUPPORT: a protocol that does not go with the type (SOCK_DGRAM with IPPROTO_TCP).
    /// - EMFILE: [`MAX_FDS`] descriptors open; ENFILE: the stack's UDP table is full.
    pub fn socket(&mut self, stack: &mut Stack, domain: i32, ty: i32, protocol: i32) -> Result<Fd> {
        let (sock_type, proto_num, nonblocking) = check_socket_args(domain, ty, protocol)?;
        let index = self.free_slot()?;
        let (proto, opts) = match sock_type {
            SockType::Dgram => (Proto::Udp(dgram::open(stack)?), Options::default()),
            SockType::Stream => (Proto::Stream(Stream::default()), stream::default_options(stack)),
        };
        Ok(self.install(index, sock_type, proto_num, nonblocking, opts, proto))
    }

    /// bind(2): gives the socket a local address. Port 0 picks a free port from
    /// 49152-65535 at random.
    ///
    /// Errors: EBADF; EAFNOSUPPORT for an IPv6 address; EINVAL when already bound;
    /// EADDRNOTAVAIL for an address the stack does not have (ours, 127.0.0.0/8 (the
    /// loopback's), 0.0.0.0 and, for UDP, our broadcast addresses are allowed); EADDRINUSE when another socket has the port
    /// (both need SO_REUSEADDR to share it) or no ephemeral port is free.
    pub fn bind(&mut self, stack: &mut Stack, fd: Fd, addr: SocketAddr) -> Result<()> {
        let addr = v4(addr)?;
        let s = self.get(fd)?;
        let st = match &s.proto {
            Proto::Udp(h) => return dgram::bind(stack, *h, addr),
            Proto::Stream(st) => st,
        };
        if st.local.is_some() || st.phase != stream::Phase::Idle {
            return Err(Errno::EINVAL);
        }
        let ip = *addr.ip();
        if !(ip.is_unspecified() || stack.is_local(ip)) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        let reuse = s.opts.reuse_addr;
        let port = if addr.port() == 0 {
            ports::pick(stack, &self.idle).ok_or(Errno::EADDRINUSE)?
        } else if ports::taken(stack, &self.idle, addr.port(), ip, reuse) {
            return Err(Errno::EADDRINUSE);
        } else {
            addr.port()
        };
        let Proto::Stream(st) = &mut self.get_mut(fd)?.proto else { unreachable!() };
        st.local = Some(SocketAddrV4::new(ip, port));
        self.sync_idle(fd);
        Ok(())
    }

    /// The local address a stream socket connects or listens from: the bound one,
    /// or an ephemeral port (bind(2)'s autobind). Errors: EBADF; EAGAIN (connect)
    /// or EADDRINUSE (listen) when no port is free.
    fn stream_local(&self, stack: &mut Stack, fd: Fd, none_free: Errno) -> Result<SocketAddrV4> {
        match &self.get(fd)?.proto {
            Proto::Stream(st) => match st.local {
                Some(l) => Ok(l),
                None => {
                    let port = ports::pick(stack, &self.idle).ok_or(none_free)?;
                    Ok(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
                }
            },
            Proto::Udp(_) => Err(Errno::EOPNOTSUPP),
        }
    }

    /// Whether `fd` is a stream socket that has not yet listened or connected.
    /// Errors: EBADF.
    fn is_idle_stream(&self, fd: Fd) -> Result<bool> {
        Ok(match &self.get(fd)?.proto {
            Proto::Stream(st) => st.phase == stream::Phase::Idle,
            Proto::Udp(_) => false,
        })
    }

    /// connect(2). On a datagram socket: sets the default destination for send(2)
    /// and receives only from it from now on (binding an ephemeral port first if
    /// needed). On a stream socket: starts TCP's handshake from the bound address
    /// (or an ephemeral port) and answers EINPROGRESS while it runs (the blocking
    /// layer waits with [`FdTable::connect_status`]); called again, it answers
    /// EALREADY while the handshake runs, `Ok` once it is done, or its error.
    ///
    /// Errors: EBADF; EAFNOSUPPORT for an IPv6 address; EACCES for a broadcast
    /// address without SO_BROADCAST (datagram); ENETUNREACH without a route (and,
    /// stream, for a broadcast or multicast peer); EAGAIN when no ephemeral port is
    /// free. Stream sockets also: EINPROGRESS; EALREADY; EISCONN (connected or
    /// listening); ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ECONNABORTED (a failed
    /// handshake, reported once); EADDRNOTAVAIL (the 4-tuple is in use); ENOBUFS
    /// (TCP's connection table is full); EINVAL (port 0).
    pub fn connect(&mut self, stack: &mut Stack, now: Instant, fd: Fd, addr: SocketAddr) -> Result<()> {
        let addr = v4(addr)?;
        let local = if self.is_idle_stream(fd)? { self.stream_local(stack, fd, Errno::EAGAIN)? } else { unspecified() };
        let s = self.get_mut(fd)?;
        let r = match &mut s.proto {
            Proto::Udp(h) => dgram::connect(stack, *h, addr),
            Proto::Stream(st) => stream::connect(stack, now, st, &s.opts, addr, local),
        };
        self.sync_idle(fd);
        r
    }

    /// Where a stream connect in progress stands: `Ok` once connected, EAGAIN while
    /// the handshake runs, or the error that ended it (reported once; the socket
    /// may then connect again). Errors: EBADF; ENOTCONN when no connect was made.
    pub fn connect_status(&mut self, stack: &mut Stack, now: Instant, fd: Fd) -> Result<()> {
        let r = match &mut self.get_mut(fd)?.proto {
            Proto::Udp(_) => Ok(()),
            Proto::Stream(st) => stream::connect_status(stack, now, st),
        };
        self.sync_idle(fd);
        r
    }

    /// connect(2) with an AF_UNSPEC address: a datagram socket accepts datagrams from
    /// anyone again (keeping the port that bind(2) chose, dropping one that connect chose).
    /// A stream socket is dissolved as Linux's `tcp_disconnect` does: a connection
    /// is reset, a listener stops; the socket may then connect or listen again.
    /// Errors: EBADF.
    pub fn disconnect(&mut self, stack: &mut Stack, now: Instant, fd: Fd) -> Result<()> {
        let s = self.get_mut(fd)?;
        match &mut s.proto {
            Proto::Udp(h) => dgram::disconnect(stack, *h),
            Proto::Stream(st) => {
                stream::disconnect(stack, now, st);
                s.shut_rd = false;
                s.shut_wr = false;
                self.sync_idle(fd);
                Ok(())
            }
        }
    }

    /// listen(2): makes a stream socket accept connections on its bound address
    /// (or an ephemeral port, if unbound). The backlog bounds the SYN queue and,
    /// apart, the accept queue; at least 1, at most TCP's `max_backlog`; a
    /// negative one means the most. Beyond the SYN queue SYNs get cookies;
    /// beyond the accept queue they are dropped (`TcpBacklogFull`) and retried
    /// by the peer, as on Linux (see `Net::listen`).
    /// Calling it again on a listening socket changes nothing.
    ///
    /// Errors: EBADF; EOPNOTSUPP for a datagram socket; EINVAL on a socket that is
    /// connecting or connected; EADDRINUSE when a listener or connection holds
    /// the port (a TIME-WAIT connection too, without SO_REUSEADDR), or no ephemeral
    /// port is free.
    pub fn listen(&mut self, stack: &mut Stack, fd: Fd, backlog: i32) -> Result<()> {
        if let Proto::Udp(_) = self.get(fd)?.proto {
            return Err(Errno::EOPNOTSUPP);
        }
        let local =
            if self.is_idle_stream(fd)? { self.stream_local(stack, fd, Errno::EADDRINUSE)? } else { unspecified() };
        let s = self.get_mut(fd)?;
        let Proto::Stream(st) = &mut s.proto else { unreachable!() };
        let r = stream::listen(stack, st, &s.opts, backlog, local);
        self.sync_idle(fd);
        r
    }

    /// accept(2) (nonblocking): a new descriptor for the next established connection,
    /// and its peer. The new socket inherits the listener's options, not its
    /// O_NONBLOCK (as on Linux). (`_now` is for symmetry with the other calls.)
    ///
    /// Errors: EBADF; EOPNOTSUPP for a datagram socket; EINVAL when not listening;
    /// EAGAIN when no connection is waiting; EMFILE when out of descriptors (checked
    /// first: a connection taken from the queue must get one).
    pub fn accept(&mut self, stack: &mut Stack, _now: Instant, fd: Fd) -> Result<(Fd, SocketAddrV4)> {
        let index = match self.get(fd)?.proto {
            Proto::Udp(_) => return Err(Errno::EOPNOTSUPP),
            Proto::Stream(_) => self.free_slot()?,
        };
        let s = self.get_mut(fd)?;
        let opts = s.opts.clone();
        let Proto::Stream(st) = &mut s.proto else { unreachable!("checked above") };
        let (conn, peer) = stream::accept(stack, st)?;
        Ok((self.install(index, SockType::Stream, IPPROTO_TCP, false, opts, Proto::Stream(conn)), peer))
    }

    /// send(2): sendto(2) without an address.
    pub fn send(&mut self, stack: &mut Stack, now: Instant, fd: Fd, buf: &[u8], flags: i32) -> Result<usize> {
        self.sendto(stack, now, fd, buf, flags, None)
    }

    /// sendto(2) (nonblocking). A datagram socket sends `buf` as one datagram to
    /// `addr`, or to its peer when `addr` is `None`, binding an ephemeral port first
    /// if needed. A stream socket ignores `addr`.
    ///
    /// Errors: EBADF; EAFNOSUPPORT for an IPv6 address; EMSGSIZE above 65507 bytes;
    /// EDESTADDRREQ without an address on an unconnected socket; EINVAL for port 0;
    /// ENETUNREACH without a route; EACCES for a broadcast address without
    /// SO_BROADCAST; EPIPE after shutdown(SHUT_WR); a pending error
    /// (ECONNREFUSED after a port unreachable on a connected socket, EHOSTUNREACH,
    /// ...), which is cleared; EAGAIN when no ephemeral port is free. Stream sockets:
    /// EPIPE when not connected, EAGAIN when the send buffer is full.
    pub fn sendto(
        &mut self,
        stack: &mut Stack,
        now: Instant,
        fd: Fd,
        buf: &[u8],
        flags: i32,
        addr: Option<SocketAddr>,
    ) -> Result<usize> {
        let addr = addr.map(v4).transpose()?;
        let s = self.get_mut(fd)?;
        match &mut s.proto {
            Proto::Udp(h) => dgram::sendto(stack, now, *h, s.shut_wr, buf, addr),
            Proto::Stream(st) => {
                if s.shut_wr {
                    return Err(Errno::EPIPE);
                }
                stream::send(stack, now, st, buf, flags)
            }
        }
    }

    /// recv(2): recvmsg(2)'s count.
    pub fn recv(&mut self, stack: &mut Stack, now: Instant, fd: Fd, buf: &mut [u8], flags: i32) -> Result<usize> {
        Ok(self.recvmsg(stack, now, fd, buf, flags)?.len)
    }

    /// recvfrom(2): recvmsg(2)'s count and source.
    pub fn recvfrom(
        &mut self,
        stack: &mut Stack,
        now: Instant,
        fd: Fd,
        buf: &mut [u8],
        flags: i32,
    ) -> Result<(usize, SocketAddrV4)> {
        let m = self.recvmsg(stack, now, fd, buf, flags)?;
        Ok((m.len, m.addr))
    }

    /// recvmsg(2) (nonblocking). A datagram socket takes the next datagram (MSG_PEEK:
    /// leaves it queued). A datagram longer than `buf` is truncated: the rest is
    /// lost, the flags out say MSG_TRUNC, and the count is what was copied, or the
    /// full length if MSG_TRUNC was passed in `flags`. After shutdown(SHUT_RD) an
    /// empty queue reads as 0 bytes from 0.0.0.0:0 instead of EAGAIN.
    ///
    /// Errors: EBADF; a pending error first (ECONNREFUSED after a port unreachable
    /// on a connected socket, ...), which is cleared; EAGAIN when nothing is queued.
    /// Stream sockets: ENOTCONN when not connected.
    pub fn recvmsg(&mut self, stack: &mut Stack, now: Instant, fd: Fd, buf: &mut [u8], flags: i32) -> Result<RecvMsg> {
        let s = self.get_mut(fd)?;
        match &mut s.proto {
            Proto::Udp(h) => {
                let (len, addr, flags) = dgram::recvmsg(stack, *h, s.shut_rd, buf, flags)?;
                Ok(RecvMsg { len, addr, flags })
            }
            Proto::Stream(st) => {
                let peer = stream::peer(stack, st).unwrap_or(unspecified());
                let n = stream::recv(stack, now, st, buf, flags)?;
                Ok(RecvMsg { len: n, addr: peer, flags: 0 })
            }
        }
    }

    /// close(2): frees the descriptor. A datagram socket's port and queued
    /// datagrams go with it. A stream connection is released as TCP does it: a FIN
    /// after the queued data, and the connection lives on in TCP (FIN-WAIT,
    /// TIME-WAIT) without a descriptor; with SO_LINGER on and a zero timeout, or
    /// with unread data left, it is reset instead (RST). A listener resets the
    /// connections it has not handed to accept(2). This call never waits: see
    /// [`FdTable::close_lingering`] for SO_LINGER's wait.
    ///
    /// Errors: EBADF.
    pub fn close(&mut self, stack: &mut Stack, now: Instant, fd: Fd) -> Result<()> {
        self.close_lingering(stack, now, fd).map(|_| ())
    }

    /// close(2), and what SO_LINGER (on, with a nonzero timeout) leaves to wait
    /// for: the FIN to be acknowledged, or the timeout. The descriptor is free at
    /// once either way; [`crate::Net::close`] does the waiting. Errors: EBADF.
    pub fn close_lingering(&mut self, stack: &mut Stack, now: Instant, fd: Fd) -> Result<Option<LingerWait>> {
        self.get(fd)?;
        let index = self.numbers.space().index(fd).expect("checked above");
        let s = self.slots.get_mut(index).and_then(Option::take).expect("checked above");
        self.slots.trim(index, Option::is_none);
        self.numbers.free(index);
        self.open -= 1;
        self.idle.set(fd, None);
        if let Some(k) = s.key {
            self.owners.clear(k, fd);
        }
        match s.proto {
            Proto::Udp(h) => dgram::close(stack, h).map(|_| None),
            Proto::Stream(st) => Ok(stream::close(stack, now, st, &s.opts)),
        }
    }

    /// shutdown(2). SHUT_RD makes receiving calls return 0 once the queue is empty
    /// and wakes those blocked; SHUT_WR makes sending calls fail with EPIPE.
    ///
    /// Errors: EBADF; EINVAL for another `how`; ENOTCONN on a socket that is not
    /// connected. As on Linux, an unconnected datagram socket is shut down anyway
    /// (which wakes a thread blocked in recvfrom) and the call still says ENOTCONN.
    pub fn shutdown(&mut self, stack: &mut Stack, now: Instant, fd: Fd, how: i32) -> Result<()> {
        let s = self.get_mut(fd)?;
        if !(SHUT_RD..=SHUT_RDWR).contains(&how) {
            return Err(Errno::EINVAL);
        }
        match &mut s.proto {
            Proto::Udp(h) => {
                s.shut_rd |= how != SHUT_WR;
                s.shut_wr |= how != SHUT_RD;
                dgram::shutdown_status(stack, *h)
            }
            Proto::Stream(st) => {
                let r = stream::shutdown(stack, now, st, how);
                if r.is_ok() {
                    s.shut_rd |= how != SHUT_WR;
                    s.shut_wr |= how != SHUT_RD;
                }
                self.sync_idle(fd);
                r
            }
        }
    }

    /// getsockname(2): the local address, 0.0.0.0:0 while unbound. Errors: EBADF.
    pub fn getsockname(&self, stack: &mut Stack, fd: Fd) -> Result<SocketAddrV4> {
        match &self.get(fd)?.proto {
            Proto::Udp(h) => dgram::local(stack, *h),
            Proto::Stream(st) => Ok(stream::local(stack, st)),
        }
    }

    /// getpeername(2). Errors: EBADF; ENOTCONN when not connected.
    pub fn getpeername(&self, stack: &mut Stack, fd: Fd) -> Result<SocketAddrV4> {
        match &self.get(fd)?.proto {
            Proto::Udp(h) => dgram::peer(stack, *h),
            Proto::Stream(st) => stream::peer(stack, st),
        }
    }

    /// setsockopt(2). Supported, with the value kind each takes:
    /// - SOL_SOCKET: SO_REUSEADDR, SO_BROADCAST, SO_KEEPALIVE (int, nonzero is on);
    ///   SO_RCVBUF, SO_SNDBUF (int bytes; doubled and clamped as on Linux, see
    ///   [`crate::options`]); SO_RCVTIMEO, SO_SNDTIMEO (a time; zero means none);
    ///   SO_LINGER (a linger).
    /// - IPPROTO_IP: IP_TTL (int 1..=255, or -1 for the default).
    /// - IPPROTO_TCP, stream sockets only: TCP_NODELAY (int); TCP_KEEPIDLE,
    ///   TCP_KEEPINTVL (int seconds, 1..=32767), TCP_KEEPCNT (int, 1..=127).
    ///
    /// On a stream socket SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT,
    /// SO_LINGER, TCP_NODELAY, SO_SNDBUF, SO_RCVBUF (while nothing has been
    /// received) and SO_REUSEADDR take effect on the TCP listener or connection at
    /// once; a listener's are inherited by the connections it accepts.
    ///
    /// Errors: EBADF; ENOPROTOOPT for an unknown level or option, or one that is
    /// read-only (SO_TYPE, SO_ERROR, ...); EINVAL for a value of the wrong kind or
    /// out of range; EDOM for a timeout that does not fit.
    pub fn setsockopt(
        &mut self,
        stack: &mut Stack,
        now: Instant,
        fd: Fd,
        level: i32,
        name: i32,
        val: OptVal,
    ) -> Result<()> {
        let s = self.get_mut(fd)?;
        options::set(&mut s.opts, s.ty == SockType::Stream, level, name, val)?;
        let r = match &mut s.proto {
            Proto::Udp(h) => dgram::apply_options(stack, *h, &s.opts),
            Proto::Stream(st) => stream::apply_options(stack, now, st, &s.opts),
        };
        self.sync_idle(fd);
        r
    }

    /// getsockopt(2): the options [`FdTable::setsockopt`] takes, plus SO_TYPE,
    /// SO_PROTOCOL, SO_DOMAIN, SO_ACCEPTCONN and SO_ERROR (which takes the pending
    /// error: its errno number, or 0). IP_TTL reads the stack's default when unset.
    ///
    /// Errors: EBADF; ENOPROTOOPT for an unknown level or option.
    pub fn getsockopt(&mut self, stack: &mut Stack, fd: Fd, level: i32, name: i32) -> Result<OptVal> {
        let s = self.get_mut(fd)?;
        let int = |v: i32| Ok(OptVal::Int(v));
        match (level, name) {
            (SOL_SOCKET, SO_TYPE) => int(s.ty.raw()),
            (SOL_SOCKET, SO_PROTOCOL) => int(s.protocol),
            (SOL_SOCKET, SO_DOMAIN) => int(AF_INET),
            (SOL_SOCKET, SO_ACCEPTCONN) => int(match &s.proto {
                Proto::Stream(st) => stream::is_listening(st) as i32,
                Proto::Udp(_) => 0,
            }),
            (SOL_SOCKET, SO_ERROR) => {
                let e = match &mut s.proto {
                    Proto::Udp(h) => dgram::take_error(stack, *h)?,
                    Proto::Stream(st) => stream::take_error(stack, st),
                };
                int(e.map_or(0, |e| e.0))
            }
            _ => options::get(&s.opts, s.ty == SockType::Stream, stack.config().ttl, level, name),
        }
    }

    /// fcntl(2): F_GETFL (O_RDWR, plus O_NONBLOCK when set), F_SETFL (O_NONBLOCK in
    /// `arg` turns nonblocking mode on or off; other flags are ignored), F_GETFD and
    /// F_SETFD (accepted; descriptors here have no exec to close on).
    ///
    /// Errors: EBADF; EINVAL for another command.
    pub fn fcntl(&mut self, fd: Fd, cmd: i32, arg: i32) -> Result<i32> {
        let s = self.get_mut(fd)?;
        match cmd {
            F_GETFL => Ok(O_RDWR | if s.nonblocking { O_NONBLOCK } else { 0 }),
            F_SETFL => {
                s.nonblocking = arg & O_NONBLOCK != 0;
                Ok(0)
            }
            F_GETFD => Ok(FD_CLOEXEC),
            F_SETFD => Ok(0),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The poll(2) bits `fd` shows for `events` (POLLERR, POLLHUP and POLLNVAL are
    /// reported whether asked for or not; POLLNVAL for a descriptor that is not open).
    ///
    /// A datagram socket is readable with a datagram queued or after SHUT_RD (a read
    /// returns 0 then), always writable, in error with an error pending, and hung up
    /// once shut down both ways.
    pub fn revents(&self, stack: &mut Stack, fd: Fd, events: i16) -> i16 {
        let Ok(s) = self.get(fd) else { return POLLNVAL };
        let mut mask = match &s.proto {
            Proto::Udp(h) => {
                let Some(m) = dgram::readiness(stack, *h, s.shut_rd) else { return POLLNVAL };
                m
            }
            Proto::Stream(st) => {
                let mut m = stream::readiness(stack, st);
                if s.shut_rd {
                    m |= POLLIN | POLLRDNORM | POLLRDHUP;
                }
                m
            }
        };
        if s.shut_rd && s.shut_wr {
            mask |= POLLHUP;
        }
        mask & (events | POLLERR | POLLHUP | POLLNVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Linger, DEFAULT_BUF, RMEM_MAX, SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF};
    use stack::{Config, MacAddr};

    fn stack() -> Stack {
        Stack::new(Config::new(MacAddr([2, 0, 0, 0, 0, 2]), Ipv4Addr::new(10, 0, 0, 2), 24)).unwrap()
    }

    #[test]
    fn socket_argument_errors_are_linux_s() {
        let mut st = stack();
        let mut t = FdTable::new();
        let mut sock = |d, ty, p| t.socket(&mut st, d, ty, p);
        assert_eq!(sock(AF_INET6, SOCK_DGRAM, 0), Err(Errno::EAFNOSUPPORT));
        assert_eq!(sock(AF_UNIX, SOCK_STREAM, 0), Err(Errno::EAFNOSUPPORT));
        assert_eq!(sock(AF_PACKET, SOCK_RAW, 0), Err(Errno::EAFNOSUPPORT));
        assert_eq!(sock(-1, SOCK_DGRAM, 0), Err(Errno::EAFNOSUPPORT));
        assert_eq!(sock(99, SOCK_DGRAM, 0), Err(Errno::EAFNOSUPPORT));
        assert_eq!(sock(AF_INET, 12, 0), Err(Errno::EINVAL));
        assert_eq!(sock(AF_INET, SOCK_DGRAM | 0x100, 0), Err(Errno::EINVAL));
        assert_eq!(sock(AF_INET, SOCK_RAW, 0), Err(Errno::ESOCKTNOSUPPORT));
        assert_eq!(sock(AF_INET, SOCK_SEQPACKET, 0), Err(Errno::ESOCKTNOSUPPORT));
        assert_eq!(sock(AF_INET, SOCK_DGRAM, IPPROTO_TCP), Err(Errno::EPROTONOSUPPORT));
        assert_eq!(sock(AF_INET, SOCK_STREAM, IPPROTO_UDP), Err(Errno::EPROTONOSUPPORT));
        assert_eq!(sock(AF_INET, SOCK_DGRAM, -1), Err(Errno::EINVAL));
        assert_eq!(sock(AF_INET, SOCK_DGRAM, 0), Ok(3));
        assert_eq!(sock(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP), Ok(4));
        assert_eq!(sock(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_TCP), Ok(5));
        assert_eq!(t.fcntl(5, F_GETFL, 0), Ok(O_RDWR | O_NONBLOCK));
        assert_eq!(t.fcntl(4, F_GETFL, 0), Ok(O_RDWR));
    }

    #[test]
    fn descriptors_are_lowest_free_and_bounded() {
        let mut st = stack();
        let mut t = FdTable::new();
        let fds: Vec<Fd> = (0..MAX_FDS).map(|_| t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap()).collect();
        assert_eq!(fds[0], FIRST_FD);
        assert_eq!(t.socket(&mut st, AF_INET, SOCK_DGRAM, 0), Err(Errno::EMFILE));
        t.close(&mut st, Instant::ZERO, 10).unwrap();
        assert_eq!(t.close(&mut st, Instant::ZERO, 10), Err(Errno::EBADF));
        let g = t.generation(11);
        assert_eq!(t.socket(&mut st, AF_INET, SOCK_DGRAM, 0), Ok(10));
        assert_eq!(t.generation(11), g);
        for bad in [-1, 0, 2, FIRST_FD + MAX_FDS as Fd, i32::MAX, i32::MIN] {
            assert_eq!(t.getsockname(&mut st, bad), Err(Errno::EBADF), "{bad}");
            assert_eq!(t.revents(&mut st, bad, POLLIN), POLLNVAL);
        }
    }

    #[test]
    fn options_round_trip_with_linux_units() {
        let mut st = stack();
        let mut t = FdTable::new();
        let fd = t.socket(&mut st, AF_INET, SOCK_DGRAM, 0).unwrap();
        let get = |t: &mut FdTable, st: &mut Stack, l, n| t.getsockopt(st, fd, l, n).unwrap();
        assert_eq!(get(&mut t, &mut st, SOL_SOCKET, SO_TYPE), OptVal::Int(SOCK_DGRAM));
        assert_eq!(get(&mut t, &mut st, SOL_SOCKET, SO_PROTOCOL), OptVal::Int(IPPROTO_UDP));
        assert_eq!(get(&mut t, &mut st, SOL_SOCKET, SO_RCVBUF), OptVal::Int(DEFAULT_BUF as i32));
        t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, SO_RCVBUF, 4096.into()).unwrap();
        assert_eq!(get(&mut t, &mut st, SOL_SOCKET, SO_RCVBUF), OptVal::Int(8192));
        assert_eq!(st.udp().0.socket(t.udp_handle(fd).unwrap()).unwrap().recv_buffer(), 8192);
        t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, SO_RCVBUF, 1.into()).unwrap();
        assert_eq!(get(&mut t, &mut st, SOL_SOCKET, SO_RCVBUF), OptVal::Int(SOCK_MIN_RCVBUF as i32));
        t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, SO_RCVBUF, (-1).into()).unwrap();
        assert_eq!(get(&mut t, &mut st, SOL_SOCKET, SO_RCVBUF), OptVal::Int(2 * RMEM_MAX as i32));
        t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, SO_SNDBUF, 1.into()).unwrap();
        assert_eq!(get(&mut t, &mut st, SOL_SOCKET, SO_SNDBUF), OptVal::Int(SOCK_MIN_SNDBUF as i32));
        for name in [SO_REUSEADDR, SO_BROADCAST, SO_KEEPALIVE] {
            assert_eq!(get(&mut t, &mut st, SOL_SOCKET, name), OptVal::Int(0));
            t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, name, 5.into()).unwrap();
            assert_eq!(get(&mut t, &mut st, SOL_SOCKET, name), OptVal::Int(1));
        }
        let h = t.udp_handle(fd).unwrap();
        assert!(st.udp().0.socket(h).unwrap().broadcast() && st.udp().0.socket(h).unwrap().reuse_addr());
        let tv = Duration::from_millis(1500);
        t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, SO_RCVTIMEO, tv.into()).unwrap();
        assert_eq!(get(&mut t, &mut st, SOL_SOCKET, SO_RCVTIMEO), OptVal::Time(tv));
        assert_eq!(t.wait_params(fd, Direction::Recv).unwrap().timeout, Some(tv));
        assert_eq!(t.wait_params(fd, Direction::Send).unwrap().timeout, None);
        t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, SO_RCVTIMEO, Duration::ZERO.into()).unwrap();
        assert_eq!(t.wait_params(fd, Direction::Recv).unwrap().timeout, None);
        let l = Linger { l_onoff: 1, l_linger: 5 };
        t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, SO_LINGER, l.into()).unwrap();
        assert_eq!(get(&mut t, &mut st, SOL_SOCKET, SO_LINGER), OptVal::Linger(l));
        assert_eq!(get(&mut t, &mut st, IPPROTO_IP, IP_TTL), OptVal::Int(64));
        t.setsockopt(&mut st, Instant::ZERO, fd, IPPROTO_IP, IP_TTL, 7.into()).unwrap();
        assert_eq!(get(&mut t, &mut st, IPPROTO_IP, IP_TTL), OptVal::Int(7));
        assert_eq!(t.setsockopt(&mut st, Instant::ZERO, fd, IPPROTO_IP, IP_TTL, 256.into()), Err(Errno::EINVAL));
        assert_eq!(get(&mut t, &mut st, SOL_SOCKET, SO_ERROR), OptVal::Int(0));

        // Wrong kinds, unknown and read-only options, and TCP options on UDP.
        assert_eq!(t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, SO_LINGER, 1.into()), Err(Errno::EINVAL));
        assert_eq!(t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, SO_RCVTIMEO, 1.into()), Err(Errno::EINVAL));
        assert_eq!(t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, SO_REUSEADDR, tv.into()), Err(Errno::EINVAL));
        assert_eq!(t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, SO_TYPE, 1.into()), Err(Errno::ENOPROTOOPT));
        assert_eq!(t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, SO_ERROR, 1.into()), Err(Errno::ENOPROTOOPT));
        assert_eq!(t.setsockopt(&mut st, Instant::ZERO, fd, SOL_SOCKET, 999, 1.into()), Err(Errno::ENOPROTOOPT));
        assert_eq!(t.setsockopt(&mut st, Instant::ZERO, fd, 999, SO_REUSEADDR, 1.into()), Err(Errno::ENOPROTOOPT));
        assert_eq!(
            t.setsockopt(&mut st, Instant::ZERO, fd, IPPROTO_TCP, TCP_NODELAY, 1.into()),
            Err(Errno::ENOPROTOOPT)
        );
        assert_eq!(t.getsockopt(&mut st, fd, IPPROTO_TCP, TCP_NODELAY), Err(Errno::ENOPROTOOPT));
        assert_eq!(t.setsockopt(&mut st, Instant::ZERO, 99, SOL_SOCKET, SO_REUSEADDR, 1.into()), Err(Errno::EBADF));

        let s = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
        t.setsockopt(&mut st, Instant::ZERO, s, IPPROTO_TCP, TCP_NODELAY, 1.into()).unwrap();
        assert_eq!(t.getsockopt(&mut st, s, IPPROTO_TCP, TCP_NODELAY), Ok(OptVal::Int(1)));
        assert_eq!(t.getsockopt(&mut st, s, SOL_SOCKET, SO_TYPE), Ok(OptVal::Int(SOCK_STREAM)));
        assert!(t.options(s).unwrap().nodelay);
    }

    #[test]
    fn fcntl_sets_and_clears_nonblocking() {
        let mut st = stack();
        let mut t = FdTable::new();
        let fd = t.socket(&mut st, AF_INET, SOCK_DGRAM, 0).unwrap();
        assert!(!t.wait_params(fd, Direction::Recv).unwrap().nonblocking);
        let fl = t.fcntl(fd, F_GETFL, 0).unwrap();
        t.fcntl(fd, F_SETFL, fl | O_NONBLOCK).unwrap();
        assert!(t.wait_params(fd, Direction::Recv).unwrap().nonblocking);
        t.fcntl(fd, F_SETFL, 0).unwrap();
        assert!(!t.wait_params(fd, Direction::Recv).unwrap().nonblocking);
        assert_eq!(t.fcntl(fd, 999, 0), Err(Errno::EINVAL));
        assert_eq!(t.fcntl(77, F_GETFL, 0), Err(Errno::EBADF));
    }

    #[test]
    fn stream_calls_on_an_idle_socket_say_what_linux_says_for_the_state() {
        let mut st = stack();
        let mut t = FdTable::new();
        let now = Instant::ZERO;
        let s = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
        let u = t.socket(&mut st, AF_INET, SOCK_DGRAM, 0).unwrap();
        assert_eq!(t.listen(&mut st, u, 5), Err(Errno::EOPNOTSUPP));
        assert_eq!(t.accept(&mut st, now, u).unwrap_err(), Errno::EOPNOTSUPP);
        assert_eq!(t.accept(&mut st, now, s).unwrap_err(), Errno::EINVAL);
        assert_eq!(t.recv(&mut st, now, s, &mut [0; 4], 0), Err(Errno::ENOTCONN));
        assert_eq!(t.send(&mut st, now, s, b"x", 0), Err(Errno::EPIPE));
        assert_eq!(t.getpeername(&mut st, s), Err(Errno::ENOTCONN));
        assert_eq!(t.shutdown(&mut st, now, s, SHUT_WR), Err(Errno::ENOTCONN));
        assert_eq!(t.revents(&mut st, s, POLLIN | POLLOUT), POLLOUT | POLLHUP);
        assert_eq!(t.connect_status(&mut st, now, s), Err(Errno::ENOTCONN));
        // Binding keeps idle stream sockets' ports apart.
        t.bind(&mut st, s, "0.0.0.0:8080".parse().unwrap()).unwrap();
        assert_eq!(t.bind(&mut st, s, "0.0.0.0:8081".parse().unwrap()), Err(Errno::EINVAL));
        let s2 = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
        assert_eq!(t.bind(&mut st, s2, "10.0.0.2:8080".parse().unwrap()), Err(Errno::EADDRINUSE));
        assert_eq!(t.bind(&mut st, s2, "10.0.0.9:8080".parse().unwrap()), Err(Errno::EADDRNOTAVAIL));
        // UDP's port 8080 is a different namespace.
        t.bind(&mut st, u, "0.0.0.0:8080".parse().unwrap()).unwrap();
        t.bind(&mut st, s2, "0.0.0.0:0".parse().unwrap()).unwrap();
        let p = t.getsockname(&mut st, s2).unwrap().port();
        assert!(p >= 49152, "{p}");
        t.close(&mut st, now, s).unwrap();
        let s3 = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
        t.bind(&mut st, s3, "0.0.0.0:8080".parse().unwrap()).unwrap();
        // Once listening, TCP owns the port: the table no longer counts it, and
        // TCP's check refuses it even with SO_REUSEADDR.
        t.listen(&mut st, s3, 5).unwrap();
        assert_eq!(t.getsockopt(&mut st, s3, SOL_SOCKET, SO_ACCEPTCONN), Ok(OptVal::Int(1)));
        assert_eq!(st.tcp().0.sockets().count(), 1);
        let s4 = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
        t.setsockopt(&mut st, now, s4, SOL_SOCKET, SO_REUSEADDR, 1.into()).unwrap();
        assert_eq!(t.bind(&mut st, s4, "0.0.0.0:8080".parse().unwrap()), Err(Errno::EADDRINUSE));
        // Listening without bind(2) takes an ephemeral port.
        let s5 = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
        t.listen(&mut st, s5, 5).unwrap();
        assert!(t.getsockname(&mut st, s5).unwrap().port() >= 49152);
        t.close(&mut st, now, s3).unwrap();
        t.bind(&mut st, s4, "0.0.0.0:8080".parse().unwrap()).unwrap();
    }

    #[test]
    fn stream_sockets_start_with_tcp_s_defaults_and_keepalive_options_are_checked() {
        let mut st = stack();
        let mut t = FdTable::new();
        let now = Instant::ZERO;
        let s = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
        let get = |t: &mut FdTable, st: &mut Stack, l, n| t.getsockopt(st, s, l, n).unwrap().as_int().unwrap();
        // TCP's 64 KiB buffers, reported doubled as Linux reports them.
        assert_eq!(get(&mut t, &mut st, SOL_SOCKET, SO_RCVBUF), 131072);
        assert_eq!(get(&mut t, &mut st, SOL_SOCKET, SO_SNDBUF), 131072);
        assert_eq!(get(&mut t, &mut st, IPPROTO_TCP, TCP_KEEPIDLE), 7200);
        assert_eq!(get(&mut t, &mut st, IPPROTO_TCP, TCP_KEEPINTVL), 75);
        assert_eq!(get(&mut t, &mut st, IPPROTO_TCP, TCP_KEEPCNT), 9);
        for (name, max) in [(TCP_KEEPIDLE, 32767), (TCP_KEEPINTVL, 32767), (TCP_KEEPCNT, 127)] {
            for bad in [0, -1, max + 1] {
                assert_eq!(t.setsockopt(&mut st, now, s, IPPROTO_TCP, name, bad.into()), Err(Errno::EINVAL));
            }
            t.setsockopt(&mut st, now, s, IPPROTO_TCP, name, max.into()).unwrap();
            assert_eq!(get(&mut t, &mut st, IPPROTO_TCP, name), max);
        }
        let u = t.socket(&mut st, AF_INET, SOCK_DGRAM, 0).unwrap();
        assert_eq!(t.setsockopt(&mut st, now, u, IPPROTO_TCP, TCP_KEEPIDLE, 5.into()), Err(Errno::ENOPROTOOPT));
        assert_eq!(t.getsockopt(&mut st, u, SOL_SOCKET, SO_RCVBUF), Ok(OptVal::Int(DEFAULT_BUF as i32)));
    }

    /// The index of idle bound stream sockets, checked against a scan of the
    /// table after every call of a random mix (bind with and without
    /// SO_REUSEADDR, listen, connect, shutdown, disconnect, setsockopt, close),
    /// and what bind answers checked against the rule the scan gives.
    #[test]
    fn the_idle_port_index_follows_every_call() {
        use rand::rngs::ChaCha8Rng;
        use rand::{RngExt, SeedableRng};
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut st = stack();
        let mut t = FdTable::new();
        let mut fds: Vec<Fd> = Vec::new();
        let now = Instant::ZERO;
        let peer = SocketAddr::from(([10, 0, 0, 9], 80));
        let mut binds = 0;
        for step in 0..4000 {
            let fd = fds.get(rng.random_range(0..fds.len().max(1))).copied().unwrap_or(FIRST_FD);
            let port = rng.random_range(7000..7006u16);
            let ip = [[0, 0, 0, 0], [10, 0, 0, 2], [127, 0, 0, 1]][rng.random_range(0..3usize)];
            match rng.random_range(0..9u32) {
                0 | 1 => fds.push(t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap()),
                2 | 3 => {
                    let reuse = t.options(fd).is_ok_and(|o| o.reuse_addr);
                    let addr = SocketAddrV4::new(ip.into(), port);
                    let bound = t.get(fd).is_ok_and(|s| matches!(&s.proto, Proto::Stream(x) if x.local.is_some()));
                    let clash = t.slots.iter().filter_map(|(_, s)| s.as_ref()?.idle_port()).any(|(l, r)| {
                        let overlap = l.ip().is_unspecified() || addr.ip().is_unspecified() || l.ip() == addr.ip();
                        l.port() == port && overlap && !(reuse && r)
                    });
                    let tcp_clash = {
                        let (tcp, net) = st.tcp();
                        tcp.check_bind(net, addr, reuse).is_err()
                    };
                    let r = t.bind(&mut st, fd, addr.into());
                    if t.get(fd).is_ok() && !bound && r != Err(Errno::EINVAL) {
                        let expect = if clash || tcp_clash { Err(Errno::EADDRINUSE) } else { Ok(()) };
                        assert_eq!(r, expect, "step {step}: bind {addr} reuse {reuse}");
                        binds += 1;
                    }
                }
                4 => {
                    let _ = t.listen(&mut st, fd, 8);
                }
                5 => {
                    let _ = t.connect(&mut st, now, fd, peer);
                }
                6 => {
                    let on = OptVal::Int(rng.random_range(0..2));
                    let _ = t.setsockopt(&mut st, now, fd, SOL_SOCKET, SO_REUSEADDR, on);
                }
                7 => {
                    let _ = match rng.random_range(0..2u32) {
                        0 => t.shutdown(&mut st, now, fd, SHUT_RDWR),
                        _ => t.disconnect(&mut st, now, fd),
                    };
                }
                _ => {
                    if t.close(&mut st, now, fd).is_ok() {
                        fds.retain(|&f| f != fd);
                    }
                }
            }
            let mut scan: Vec<_> = t
                .slots
                .iter()
                .filter_map(|(i, s)| s.as_ref().and_then(Socket::idle_port).map(|p| (i as Fd + FIRST_FD, p)))
                .collect();
            scan.sort_by_key(|e| e.0);
            let mut index: Vec<_> = t.idle.by_fd().collect();
            index.sort_by_key(|e| e.0);
            assert_eq!(index, scan, "step {step}");
        }
        assert!(binds > 300, "{binds} binds checked");
    }

    /// bind(2) to port 0 and to a given port look at no more index entries
    /// with 10,000 idle bound sockets than with one: the work counted, not
    /// timed. (The idle sockets hold ports outside the ephemeral range, so
    /// both tables pick among the same free ports; a scan of the table, as
    /// before the index, looked at every idle socket for each port tried.)
    #[test]
    fn binding_costs_the_same_with_one_or_ten_thousand_idle_sockets() {
        fn work(idle: u16) -> (u64, u64) {
            let mut st = stack();
            let mut t = FdTable::new();
            t.set_limit(20_000).unwrap();
            for i in 0..idle {
                let fd = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
                t.bind(&mut st, fd, SocketAddr::from(([0, 0, 0, 0], 20_000 + i))).unwrap();
            }
            assert_eq!(t.idle_port_stats().0, idle as usize);
            let before = t.idle_port_stats().1;
            for _ in 0..100 {
                let fd = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
                t.bind(&mut st, fd, SocketAddr::from(([0, 0, 0, 0], 0))).unwrap();
                t.close(&mut st, Instant::ZERO, fd).unwrap();
            }
            let picks = t.idle_port_stats().1 - before;
            let fd = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
            let before = t.idle_port_stats().1;
            assert_eq!(t.bind(&mut st, fd, SocketAddr::from(([0, 0, 0, 0], 20_000))), Err(Errno::EADDRINUSE));
            assert_eq!(t.bind(&mut st, fd, SocketAddr::from(([0, 0, 0, 0], 8080))), Ok(()));
            (picks, t.idle_port_stats().1 - before)
        }
        let (one, ten_thousand) = (work(1), work(10_000));
        println!(
            "index entries looked at (100 port-0 binds, 2 given binds): 1 idle socket {one:?}, 10,000 {ten_thousand:?}"
        );
        assert_eq!(one, ten_thousand);
        assert_eq!(one, (0, 1), "nothing for a free port, the one holder of a held one");
    }

    /// Port 0 never gets a port an idle socket holds, however many do.
    #[test]
    fn an_ephemeral_port_is_never_one_an_idle_socket_holds() {
        let mut st = stack();
        let mut t = FdTable::new();
        t.set_limit(20_000).unwrap();
        let held = 49_152..49_152 + 12_000u16;
        for p in held.clone() {
            let fd = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
            t.bind(&mut st, fd, SocketAddr::from(([0, 0, 0, 0], p))).unwrap();
        }
        for _ in 0..200 {
            let fd = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
            t.bind(&mut st, fd, SocketAddr::from(([0, 0, 0, 0], 0))).unwrap();
            assert!(!held.contains(&t.getsockname(&mut st, fd).unwrap().port()));
            t.close(&mut st, Instant::ZERO, fd).unwrap();
        }
    }

    /// Issue 13: a table that held thousands of connections gives its
    /// storage back once they are closed, in whatever order: the slots, the
    /// reverse map and the free numbers come back to a few entries.
    #[test]
    fn a_table_grown_to_thousands_and_emptied_gives_its_storage_back() {
        use crate::shrink::SHRINK_FLOOR;
        use crate::sim::{Link, B_IP};
        const N: usize = 2000;
        let mut link = Link::new();
        link.a.sockets.set_limit(4 * N).unwrap();
        link.b.sockets.set_limit(4 * N).unwrap();
        let b = &mut link.b;
        let l = b.sockets.socket(&mut b.stack, AF_INET, SOCK_STREAM, 0).unwrap();
        b.sockets.bind(&mut b.stack, l, SocketAddrV4::new(B_IP, 7).into()).unwrap();
        b.sockets.listen(&mut b.stack, l, 4096).unwrap();
        let (mut clients, mut accepted) = (Vec::new(), Vec::new());
        for _ in 0..N / 100 {
            for _ in 0..100 {
                let (a, now) = (&mut link.a, link.now);
                let fd = a.sockets.socket(&mut a.stack, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).unwrap();
                let r = a.sockets.connect(&mut a.stack, now, fd, SocketAddrV4::new(B_IP, 7).into());
                assert_eq!(r, Err(Errno::EINPROGRESS));
                clients.push(fd);
            }
            // The first SYNs wait for ARP (a few queued, the rest resent).
            link.advance(Duration::from_secs(3));
            let (b, now) = (&mut link.b, link.now);
            while let Ok((fd, _)) = b.sockets.accept(&mut b.stack, now, l) {
                accepted.push(fd);
            }
        }
        assert_eq!(accepted.len(), N);
        let grown = (link.b.sockets.slots.capacity(), link.b.sockets.owners.capacity());
        assert!(grown.0 > N && grown.1 > N, "{grown:?}");
        // Every other one first (the highest stays open), then the rest from the top.
        let order: Vec<Fd> =
            accepted.iter().step_by(2).chain(accepted.iter().skip(1).step_by(2).rev()).copied().collect();
        for fd in order {
            let (b, now) = (&mut link.b, link.now);
            b.sockets.close(&mut b.stack, now, fd).unwrap();
        }
        for &fd in &clients {
            let (a, now) = (&mut link.a, link.now);
            a.sockets.close(&mut a.stack, now, fd).unwrap();
        }
        link.advance(Duration::from_secs(300));
        let t = &link.b.sockets;
        assert_eq!(t.len(), 1, "the listener");
        assert!(t.slots.capacity() <= 2 * SHRINK_FLOOR, "slots: room for {}", t.slots.capacity());
        assert!(t.owners.capacity() <= 2 * SHRINK_FLOOR, "owners: room for {}", t.owners.capacity());
        assert_eq!(t.numbers.footprint(), 0, "no free number kept above the listener");
        let t = &link.a.sockets;
        assert_eq!((t.len(), t.slots.capacity() <= 2 * SHRINK_FLOOR), (0, true), "{}", t.slots.capacity());
    }

    /// Review finding (issue 13): numbers beyond the kernel's, taken when it
    /// says ENFILE with few descriptors open, cost slots for the sockets in
    /// use, not for every number up to the kernel's limit.
    #[test]
    fn sockets_beyond_a_high_kernel_limit_cost_slots_for_those_in_use() {
        let mut st = stack();
        let mut t = FdTable::with_reserved_numbers();
        t.numbers().set_space(NumberSpace::split(1 << 20, 1 << 21).unwrap());
        t.add_numbers(&[3, 4]);
        let mut fds = Vec::new();
        while fds.len() < 40 {
            match t.socket(&mut st, AF_INET, SOCK_STREAM, 0) {
                Ok(fd) => fds.push(fd),
                // As `kernel_fds` does when the kernel says ENFILE.
                Err(NEED_NUMBER) => t.add_beyond_numbers(8).unwrap(),
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(fds[..3], [3, 4, 1 << 21]);
        assert_eq!(*fds.last().unwrap(), (1 << 21) + 37, "numbered compactly beyond");
        assert!(t.slots.capacity() < 128, "{} slots for 40 sockets", t.slots.capacity());
        assert!(t.numbers.footprint() < 128);
        fds.iter().for_each(|&fd| t.close(&mut st, Instant::ZERO, fd).unwrap());
        assert!(t.slots.capacity() < 128);
        assert_eq!(t.socket(&mut st, AF_INET, SOCK_STREAM, 0), Ok(3), "the kernel's first");
    }
}
