//! The socket calls, as an application makes them: BSD names, arguments and errors,
//! blocking as in C unless the descriptor is nonblocking or MSG_DONTWAIT is given.
//!
//! ```no_run
//! use sockets_api::*;
//! # fn demo(net: &Net) -> sockets_api::Result<()> {
//! let fd = net.socket(AF_INET, SOCK_DGRAM, 0)?;
//! net.bind(fd, "0.0.0.0:7".parse::<std::net::SocketAddr>().unwrap())?;
//! let mut buf = [0u8; 2048];
//! loop {
//!     let (n, peer) = net.recvfrom(fd, &mut buf, 0)?;
//!     net.sendto(fd, &buf[..n], 0, peer)?;
//! }
//! # }
//! ```

use crate::consts::*;
use crate::errno::{Errno, Result};
use crate::fd_table::{Direction, Fd, RecvMsg, SockType};
use crate::kernel_fds;
pub use crate::kernel_fds::PollFd;
use crate::options::OptVal;
use crate::runtime::{Core, Shared};
use stack::{Counters, Instant, SocketEntry};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

/// A handle on a running stack for making socket calls. Cheap to clone; every
/// clone may be used from any thread at once. The stack runs until its
/// [`crate::Runtime`] is stopped or dropped; calls after that fail with ENETDOWN.
#[derive(Clone, Debug)]
pub struct Net {
    shared: Arc<Shared>,
}

/// A descriptor that is closed when dropped, for code that wants RAII over the
/// C-style calls. Share it with `Arc` to keep it open while any user remains.
#[derive(Debug)]
pub struct OwnedFd {
    net: Net,
    fd: Fd,
}

impl OwnedFd {
    /// Takes ownership of `fd` on `net`.
    pub fn new(net: &Net, fd: Fd) -> OwnedFd {
        OwnedFd { net: net.clone(), fd }
    }

    pub fn fd(&self) -> Fd {
        self.fd
    }

    pub fn net(&self) -> &Net {
        &self.net
    }
}

impl Drop for OwnedFd {
    fn drop(&mut self) {
        let _ = self.net.close(self.fd);
    }
}

/// A descriptor set for select(2), with C's FD_SET, FD_CLR, FD_ISSET and FD_ZERO
/// as methods. Holds descriptors below [`FD_SETSIZE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdSet {
    bits: [u64; FD_SETSIZE / 64],
}

impl Default for FdSet {
    fn default() -> FdSet {
        FdSet::new()
    }
}

impl FdSet {
    /// An empty set (FD_ZERO).
    pub fn new() -> FdSet {
        FdSet { bits: [0; FD_SETSIZE / 64] }
    }
    /// FD_ZERO.
    pub fn zero(&mut self) {
        self.bits = [0; FD_SETSIZE / 64];
    }
    /// FD_SET. Panics on a descriptor outside 0..FD_SETSIZE (C's is undefined behaviour).
    pub fn set(&mut self, fd: Fd) {
        let i = Self::index(fd);
        self.bits[i / 64] |= 1 << (i % 64);
    }
    /// FD_CLR.
    pub fn clear(&mut self, fd: Fd) {
        let i = Self::index(fd);
        self.bits[i / 64] &= !(1 << (i % 64));
    }
    /// FD_ISSET.
    pub fn is_set(&self, fd: Fd) -> bool {
        let i = Self::index(fd);
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }
    fn index(fd: Fd) -> usize {
        assert!((0..FD_SETSIZE as Fd).contains(&fd), "descriptor {fd} is outside an fd_set");
        fd as usize
    }
    /// The descriptors in the set, below `nfds`.
    pub fn iter(&self, nfds: usize) -> impl Iterator<Item = Fd> + '_ {
        (0..nfds.min(FD_SETSIZE)).filter(|&i| self.bits[i / 64] & (1 << (i % 64)) != 0).map(|i| i as Fd)
    }
}

/// A poll(2)/select(2) timeout in milliseconds as C gives it: negative waits forever.
fn ms_timeout(ms: i32) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

impl Net {
    pub(crate) fn new(shared: Arc<Shared>) -> Net {
        Net { shared }
    }

    /// The runtime state behind this handle (for tools that need the stack itself).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A snapshot of the stack's counters.
    pub fn counters(&self) -> Counters {
        self.shared.with_stack(|st, _| st.counters().clone())
    }

    /// Every TCP and UDP socket of the stack, as `ss -tuai` lists them, with the
    /// time left on each timer from now (see [`stack::socket_table`]). Together
    /// with [`Net::counters`] (`netstat -s`), what `tapstack ss` and `tapstack
    /// stats` show of a running stack. It looks without waking anyone.
    pub fn socket_table(&self) -> Vec<SocketEntry> {
        self.shared.inspect(|core| core.stack.socket_table(self.shared.now()))
    }

    /// Subscribes to TCP state transitions as they happen (connections and
    /// listeners: `CLOSED -> SYN-SENT (active OPEN / snd SYN)`, ...), with room
    /// for `capacity` waiting; see [`crate::runtime::TransitionTrace`]. What
    /// `tapstack up --trace` prints:
    ///
    /// ```no_run
    /// # fn demo(net: &sockets_api::Net) {
    /// let trace = net.trace_transitions(1024);
    /// std::thread::spawn(move || trace.iter().for_each(|t| println!("{t}")));
    /// # }
    /// ```
    pub fn trace_transitions(&self, capacity: usize) -> crate::runtime::TransitionTrace {
        self.shared.trace_transitions(capacity)
    }

    /// The most descriptors open at once, as setrlimit(RLIMIT_NOFILE) sets it
    /// (1024 by default, as Linux's soft limit). Open ones stay open.
    /// Errors: EINVAL (0, or above [`crate::fd_table::MAX_FDS_LIMIT`]); ENETDOWN.
    pub fn set_fd_limit(&self, limit: usize) -> Result<()> {
        self.call(|c, _| c.sockets.set_limit(limit))
    }

    /// The most descriptors open at once (getrlimit(RLIMIT_NOFILE)).
    pub fn fd_limit(&self) -> usize {
        self.shared.inspect(|c| c.sockets.limit())
    }

    /// The stack's address.
    pub fn local_ip(&self) -> std::net::Ipv4Addr {
        self.shared.with_stack(|st, _| st.config().addr)
    }

    /// A nonblocking call under the lock. Errors: ENETDOWN once the runtime stopped.
    fn call<R>(&self, f: impl FnOnce(&mut Core, Instant) -> Result<R>) -> Result<R> {
        if self.shared.is_stopped() {
            return Err(Errno::ENETDOWN);
        }
        self.shared.with_core(f)
    }

    /// A nonblocking call on `fd` under the lock; `fd`'s other waiters look
    /// again afterwards (the call may have changed what they wait for: a
    /// shutdown, a connect). Errors: ENETDOWN once the runtime stopped.
    fn call_fd<R>(&self, fd: Fd, f: impl FnOnce(&mut Core, Instant) -> Result<R>) -> Result<R> {
        self.call(|c, now| {
            let r = f(c, now);
            c.touch(fd);
            r
        })
    }

    /// A look under the lock that changes nothing (no wake-ups). Errors: ENETDOWN.
    fn inspect<R>(&self, f: impl FnOnce(&mut Core) -> Result<R>) -> Result<R> {
        if self.shared.is_stopped() {
            return Err(Errno::ENETDOWN);
        }
        self.shared.inspect(f)
    }

    /// Runs `op` once if the call must not block; otherwise until it stops saying
    /// EAGAIN, the socket's timeout for `dir` passes (EAGAIN), the descriptor is
    /// closed by another thread (EBADF), or the runtime stops (ENETDOWN).
    fn blocking<R>(
        &self,
        fd: Fd,
        flags: i32,
        dir: Direction,
        stream_only: bool,
        mut op: impl FnMut(&mut Core, Instant) -> Result<R>,
    ) -> Result<R> {
        let p = self.inspect(|c| c.sockets.wait_params(fd, dir))?;
        if p.nonblocking || flags & MSG_DONTWAIT != 0 || (stream_only && p.ty != SockType::Stream) {
            return self.call_fd(fd, op);
        }
        let r = self.shared.wait_core(
            p.timeout,
            |c, w| c.ready.wait_fd(fd, w),
            |c, now| {
                if c.sockets.generation(fd) != Some(p.generation) {
                    return Some(Err(Errno::EBADF));
                }
                match op(c, now) {
                    Err(Errno::EAGAIN) => None,
                    r => {
                        c.touch(fd);
                        Some(r)
                    }
                }
            },
        );
        match r {
            Some(r) => r,
            None if self.shared.is_stopped() => Err(Errno::ENETDOWN),
            None => Err(Errno::EAGAIN),
        }
    }

    /// socket(2): `socket(AF_INET, SOCK_DGRAM, 0)` or `socket(AF_INET, SOCK_STREAM, 0)`;
    /// SOCK_NONBLOCK may be or-ed into the type. Returns the new descriptor.
    ///
    /// Errors: EAFNOSUPPORT (a family other than AF_INET); ESOCKTNOSUPPORT (a type
    /// other than SOCK_DGRAM or SOCK_STREAM); EPROTONOSUPPORT (a protocol that does not
    /// match the type); EINVAL (bad flags or out-of-range type or protocol); EMFILE
    /// (too many descriptors); ENFILE (the stack's UDP table is full); ENETDOWN.
    pub fn socket(&self, domain: i32, ty: i32, protocol: i32) -> Result<Fd> {
        kernel_fds::numbered(&self.shared, || self.call(|c, _| c.sockets.socket(&mut c.stack, domain, ty, protocol)))
    }

    /// bind(2). Port 0 picks a free port from 49152-65535 at random.
    ///
    /// Errors: EBADF; EAFNOSUPPORT (IPv6); EINVAL (already bound); EADDRNOTAVAIL (an
    /// address the stack does not have); EADDRINUSE (the port is taken, unless both
    /// sockets set SO_REUSEADDR; or no ephemeral port is free). For stream sockets
    /// TCP decides whether a port is taken: by a listener, or by a connection
    /// (a TIME-WAIT one only without SO_REUSEADDR on the socket being bound);
    /// ENETDOWN.
    pub fn bind(&self, fd: Fd, addr: impl Into<SocketAddr>) -> Result<()> {
        let addr = addr.into();
        self.call_fd(fd, |c, _| c.sockets.bind(&mut c.stack, fd, addr))
    }

    /// connect(2). A datagram socket takes `addr` as its default destination and
    /// from then on receives only from it. A stream socket connects: from its bound
    /// address or an ephemeral port, blocking until the handshake is done (or
    /// SO_SNDTIMEO passes: EINPROGRESS, and the handshake goes on); a nonblocking
    /// one returns EINPROGRESS at once, and then poll(2) reports POLLOUT when the
    /// handshake is over and SO_ERROR says how it went (0 or its error). A second
    /// connect while the handshake runs answers EALREADY; once it is done, the
    /// next one answers 0 (or the handshake's error) and then EISCONN.
    ///
    /// Errors: EBADF; EAFNOSUPPORT (IPv6); EACCES (a broadcast address without
    /// SO_BROADCAST, datagram); ENETUNREACH (no route; a broadcast or multicast
    /// peer, stream); EAGAIN (no ephemeral port free); stream sockets also
    /// ECONNREFUSED (the peer reset the SYN, or a port unreachable came back),
    /// ETIMEDOUT (the SYN retries ran out), EHOSTUNREACH, ECONNABORTED (the attempt
    /// was ended by shutdown(2), or its error was taken with SO_ERROR),
    /// EINPROGRESS, EALREADY, EISCONN (connected, or listening), EADDRNOTAVAIL
    /// (the 4-tuple is taken), ENOBUFS (TCP's connection table is full); ENETDOWN.
    pub fn connect(&self, fd: Fd, addr: impl Into<SocketAddr>) -> Result<()> {
        let addr = addr.into();
        match self.call_fd(fd, |c, now| c.sockets.connect(&mut c.stack, now, fd, addr)) {
            Err(Errno::EINPROGRESS) => {
                let p = self.inspect(|c| c.sockets.wait_params(fd, Direction::Send))?;
                if p.nonblocking {
                    return Err(Errno::EINPROGRESS);
                }
                match self
                    .blocking(fd, 0, Direction::Send, false, |c, now| c.sockets.connect_status(&mut c.stack, now, fd))
                {
                    Err(Errno::EAGAIN) => Err(Errno::EINPROGRESS),
                    r => r,
                }
            }
            r => r,
        }
    }

    /// connect(2) with an AF_UNSPEC address: dissolves a datagram socket's
    /// association, so it receives from anyone again; resets a stream socket's
    /// connection (or stops its listening), leaving it free to connect again.
    /// Errors: EBADF; ENETDOWN.
    pub fn disconnect(&self, fd: Fd) -> Result<()> {
        self.call_fd(fd, |c, now| c.sockets.disconnect(&mut c.stack, now, fd))
    }

    /// listen(2): a stream socket accepts connections on its bound address (an
    /// unbound one gets an ephemeral port). `backlog` bounds, each apart as on
    /// Linux, the connections in the handshake (the SYN queue) and those waiting
    /// for [`Net::accept`] (the accept queue): at least 1, at most TCP's
    /// `max_backlog`, 4096 by default; negative means the most. A SYN finding
    /// the SYN queue full is answered with a SYN cookie (RFC 4987; TCP's
    /// `syn_cookies`, on by default), so a SYN flood does not lock clients out;
    /// one finding the accept queue full is dropped and counted as
    /// `TcpBacklogFull`, and the peer retransmits it (after 1 s, 3 s, ...) until
    /// an accept has made room, as on Linux.
    ///
    /// Errors: EBADF; EOPNOTSUPP (a datagram socket); EINVAL (connecting or
    /// connected); EADDRINUSE (a listener or connection holds the port; a TIME-WAIT
    /// connection too, without SO_REUSEADDR); ENETDOWN.
    pub fn listen(&self, fd: Fd, backlog: i32) -> Result<()> {
        self.call_fd(fd, |c, _| c.sockets.listen(&mut c.stack, fd, backlog))
    }

    /// accept(2): blocks (up to SO_RCVTIMEO) for the next established connection;
    /// returns its new descriptor (blocking, whatever the listener's O_NONBLOCK,
    /// with the listener's other options) and the peer's address.
    ///
    /// Errors: EBADF (also when another thread closes the listener meanwhile);
    /// EOPNOTSUPP (a datagram socket); EINVAL (not listening, or no longer: a
    /// shutdown(SHUT_RD) from another thread stops the listener and wakes its
    /// accept); EAGAIN (nonblocking and none waiting, or the timeout passed);
    /// EMFILE; ENETDOWN.
    pub fn accept(&self, fd: Fd) -> Result<(Fd, SocketAddrV4)> {
        kernel_fds::numbered(&self.shared, || {
            self.blocking(fd, 0, Direction::Recv, false, |c, now| c.sockets.accept(&mut c.stack, now, fd))
        })
    }

    /// send(2): sends on a connected socket. A datagram goes out whole at once (UDP
    /// never blocks). On a stream socket, as BSD's: a blocking send queues all of
    /// `buf`, waiting for buffer space as often as needed, and returns its length;
    /// if SO_SNDTIMEO passes or an error comes after part of it was queued, it
    /// returns that part's length (the error is reported by the next call). A
    /// nonblocking send (O_NONBLOCK or MSG_DONTWAIT) queues what fits and returns
    /// its length, or EAGAIN when nothing fits. A send during the handshake waits
    /// for it (nonblocking: EAGAIN). No SIGPIPE is ever raised: MSG_NOSIGNAL is
    /// accepted and changes nothing.
    ///
    /// Errors: EBADF; EDESTADDRREQ (a datagram socket that is not connected);
    /// EMSGSIZE (over 65507 bytes); EACCES (a broadcast peer without SO_BROADCAST);
    /// EPIPE (after shutdown(SHUT_WR); a stream socket never connected, or whose
    /// connection ended: after a reset has been reported, or after the peer's RST
    /// was reported by recv); ECONNRESET (a stream socket whose peer reset it,
    /// reported once); ETIMEDOUT (the peer stopped answering); ENETUNREACH;
    /// ECONNREFUSED (a port unreachable came back for an earlier datagram, or a
    /// stream connect was refused); EHOSTUNREACH; EAGAIN (nonblocking and no buffer
    /// space, or SO_SNDTIMEO passed with nothing queued); EOPNOTSUPP (MSG_OOB on a
    /// stream); ENETDOWN.
    pub fn send(&self, fd: Fd, buf: &[u8], flags: i32) -> Result<usize> {
        if self.inspect(|c| c.sockets.sock_type(fd))? == SockType::Stream {
            return self.stream_transfer(fd, flags, Direction::Send, |c, now, done| {
                if done > 0 && c.sockets.stream_error_pending(&mut c.stack, fd, Direction::Send) {
                    return Ok((done, true));
                }
                let n = c.sockets.send(&mut c.stack, now, fd, &buf[done..], flags)?;
                Ok((done + n, done + n == buf.len()))
            });
        }
        self.blocking(fd, flags, Direction::Send, true, |c, now| c.sockets.send(&mut c.stack, now, fd, buf, flags))
    }

    /// sendto(2): sends one datagram to `addr` (on a stream socket the address is
    /// ignored: it is [`Net::send`]). An unbound datagram socket is bound to an
    /// ephemeral port first.
    ///
    /// Errors: those of [`Net::send`] but EDESTADDRREQ, plus EAFNOSUPPORT (IPv6) and
    /// EINVAL (port 0).
    pub fn sendto(&self, fd: Fd, buf: &[u8], flags: i32, addr: impl Into<SocketAddr>) -> Result<usize> {
        let addr = addr.into();
        if self.inspect(|c| c.sockets.sock_type(fd))? == SockType::Stream {
            return self.send(fd, buf, flags);
        }
        self.blocking(fd, flags, Direction::Send, true, |c, now| {
            c.sockets.sendto(&mut c.stack, now, fd, buf, flags, Some(addr))
        })
    }

    /// recv(2): the next datagram (or stream bytes) into `buf`, blocking until
    /// something arrives or SO_RCVTIMEO passes. Flags: MSG_PEEK (leave it queued),
    /// MSG_TRUNC (return a datagram's full length even if `buf` was shorter),
    /// MSG_DONTWAIT (do not block), MSG_WAITALL (stream: wait until `buf` is full,
    /// the stream ends, an error comes or SO_RCVTIMEO passes; returns what came).
    /// A datagram longer than `buf` is truncated and the rest discarded. A stream
    /// read returns what is there, up to `buf`'s length, and 0 at the end of the
    /// stream (the peer's FIN, or after a reset has been reported). After
    /// shutdown(SHUT_RD) an empty queue reads as 0.
    ///
    /// Errors: EBADF (also when another thread closes the descriptor meanwhile);
    /// EAGAIN (nothing arrived: nonblocking, MSG_DONTWAIT or the timeout passed);
    /// ECONNREFUSED, EHOSTUNREACH, ... (an ICMP error for a connected datagram
    /// socket, reported once); stream sockets: ENOTCONN (not connected, or
    /// listening), ECONNRESET (the peer reset the connection, reported once),
    /// ETIMEDOUT (the peer stopped answering), ECONNREFUSED (connect refused),
    /// EINVAL (MSG_OOB); ENETDOWN.
    pub fn recv(&self, fd: Fd, buf: &mut [u8], flags: i32) -> Result<usize> {
        Ok(self.recvmsg(fd, buf, flags)?.len)
    }

    /// recvfrom(2): as [`Net::recv`], and the sender's address.
    pub fn recvfrom(&self, fd: Fd, buf: &mut [u8], flags: i32) -> Result<(usize, SocketAddrV4)> {
        let m = self.recvmsg(fd, buf, flags)?;
        Ok((m.len, m.addr))
    }

    /// recvmsg(2) with one buffer: as [`Net::recvfrom`], and the flags out
    /// (MSG_TRUNC when the datagram was longer than `buf`).
    pub fn recvmsg(&self, fd: Fd, buf: &mut [u8], flags: i32) -> Result<RecvMsg> {
        let waitall = flags & MSG_WAITALL != 0 && self.inspect(|c| c.sockets.sock_type(fd))? == SockType::Stream;
        if !waitall {
            return self.blocking(fd, flags, Direction::Recv, false, |c, now| {
                c.sockets.recvmsg(&mut c.stack, now, fd, buf, flags)
            });
        }
        let len = buf.len();
        let mut addr = SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0);
        let peek = flags & MSG_PEEK != 0;
        let n = self.stream_transfer(fd, flags, Direction::Recv, |c, now, done| {
            if done > 0 && !peek && c.sockets.stream_error_pending(&mut c.stack, fd, Direction::Recv) {
                return Ok((done, true));
            }
            let from = if peek { 0 } else { done };
            let m = c.sockets.recvmsg(&mut c.stack, now, fd, &mut buf[from..], flags)?;
            addr = m.addr;
            let total = from + m.len;
            // A peek sees the same bytes again: it is over once they are all there
            // or no more can come.
            let over = total == len || m.len == 0 || (peek && !c.sockets.stream_more_may_arrive(&mut c.stack, fd));
            Ok((total, over))
        })?;
        Ok(RecvMsg { len: n, addr, flags: 0 })
    }

    /// A stream call that may complete in parts (a send, a recv with MSG_WAITALL):
    /// `op` is given the bytes done so far and returns the new total and whether
    /// the call is complete. Nonblocking (O_NONBLOCK, MSG_DONTWAIT): one try.
    /// Blocking: tries again at once after progress, and after every change
    /// otherwise, until complete, an error, the
    /// socket's timeout for `dir`, the descriptor's close by another thread
    /// (EBADF) or the runtime's end (ENETDOWN); after a partial transfer those end
    /// the call with the count done so far instead of an error, as BSD's.
    fn stream_transfer(
        &self,
        fd: Fd,
        flags: i32,
        dir: Direction,
        mut op: impl FnMut(&mut Core, Instant, usize) -> Result<(usize, bool)>,
    ) -> Result<usize> {
        let p = self.inspect(|c| c.sockets.wait_params(fd, dir))?;
        if p.nonblocking || flags & MSG_DONTWAIT != 0 {
            return self.call_fd(fd, |c, now| op(c, now, 0).map(|(n, _)| n));
        }
        let mut done = 0;
        let r = self.shared.wait_core(
            p.timeout,
            |c, w| c.ready.wait_fd(fd, w),
            |c, now| {
                if c.sockets.generation(fd) != Some(p.generation) {
                    return Some(Err(Errno::EBADF));
                }
                // Try again at once after progress: what would let the next step go on
                // (more data, the FIN) may already be here, and no event would wake us.
                loop {
                    match op(c, now, done) {
                        Ok((total, true)) => return Some(Ok(total)),
                        Ok((total, false)) if total != done => done = total,
                        Ok(_) | Err(Errno::EAGAIN) => return None,
                        Err(e) => return Some(Err(e)),
                    }
                }
            },
        );
        match r {
            Some(Ok(n)) => Ok(n),
            Some(Err(_)) | None if done > 0 => Ok(done),
            Some(Err(e)) => Err(e),
            None if self.shared.is_stopped() => Err(Errno::ENETDOWN),
            None => Err(Errno::EAGAIN),
        }
    }

    /// close(2): frees the descriptor; a thread blocked on it wakes with EBADF. A
    /// datagram socket's port and queued datagrams go with it. A stream connection
    /// is released in the background: a FIN after the data still queued, then
    /// TCP's closing states; with unread data left it is reset instead (RST), as
    /// on Linux. SO_LINGER on with a zero timeout resets it (no TIME-WAIT); on with
    /// a nonzero timeout, close blocks (whatever O_NONBLOCK says, as Linux's) until
    /// the peer has acknowledged our FIN or the timeout passes, and returns 0
    /// either way. A listener resets the connections not yet accepted.
    ///
    /// Errors: EBADF; ENETDOWN.
    pub fn close(&self, fd: Fd) -> Result<()> {
        let wait = self.call(|c, now| {
            let r = c.sockets.close_lingering(&mut c.stack, now, fd);
            if r.is_ok() {
                c.closed(fd);
            }
            r
        })?;
        if let Some(w) = wait {
            self.shared.wait_core(
                Some(w.timeout),
                |c, waker| c.ready.wait_linger(w.conn.index(), waker),
                |c, _| w.done(&mut c.stack).then_some(()),
            );
        }
        Ok(())
    }

    /// shutdown(2): SHUT_RD (receiving calls return 0 once the queue is empty, and
    /// those blocked wake up), SHUT_WR (sending calls fail with EPIPE; a stream
    /// socket sends its FIN after the queued data, and the peer reads EOF), or
    /// SHUT_RDWR. On a listening socket SHUT_RD stops the listener (a blocked
    /// accept wakes with EINVAL); during a stream's handshake any `how` abandons
    /// it (a blocked connect fails with ECONNABORTED).
    ///
    /// Errors: EBADF; EINVAL (another `how`); ENOTCONN (not connected, or the
    /// stream's connection already ended; as on Linux a datagram socket is shut
    /// down all the same, which is how another thread's blocked recvfrom is
    /// woken); ENETDOWN.
    pub fn shutdown(&self, fd: Fd, how: i32) -> Result<()> {
        self.call_fd(fd, |c, now| c.sockets.shutdown(&mut c.stack, now, fd, how))
    }

    /// getsockname(2): the local address (0.0.0.0:0 while unbound). Errors: EBADF; ENETDOWN.
    pub fn getsockname(&self, fd: Fd) -> Result<SocketAddrV4> {
        self.call(|c, _| c.sockets.getsockname(&mut c.stack, fd))
    }

    /// getpeername(2). Errors: EBADF; ENOTCONN; ENETDOWN.
    pub fn getpeername(&self, fd: Fd) -> Result<SocketAddrV4> {
        self.call(|c, _| c.sockets.getpeername(&mut c.stack, fd))
    }

    /// setsockopt(2), for example `net.setsockopt(fd, SOL_SOCKET, SO_BROADCAST, 1)` or
    /// `net.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, Duration::from_secs(2))`. See
    /// [`crate::FdTable::setsockopt`] for the options and value kinds.
    ///
    /// Errors: EBADF; ENOPROTOOPT (unknown or read-only option); EINVAL (a value of
    /// the wrong kind or out of range); EDOM; ENETDOWN.
    pub fn setsockopt(&self, fd: Fd, level: i32, name: i32, val: impl Into<OptVal>) -> Result<()> {
        let val = val.into();
        self.call_fd(fd, |c, now| c.sockets.setsockopt(&mut c.stack, now, fd, level, name, val))
    }

    /// getsockopt(2). SO_ERROR takes the pending error (as an errno number, 0 for none).
    /// Errors: EBADF; ENOPROTOOPT; ENETDOWN.
    pub fn getsockopt(&self, fd: Fd, level: i32, name: i32) -> Result<OptVal> {
        self.call(|c, _| c.sockets.getsockopt(&mut c.stack, fd, level, name))
    }

    /// getsockopt(2) for an `int` option. Errors: those of [`Net::getsockopt`], and
    /// EINVAL for an option that is not an `int`.
    pub fn getsockopt_int(&self, fd: Fd, level: i32, name: i32) -> Result<i32> {
        self.getsockopt(fd, level, name)?.as_int().ok_or(Errno::EINVAL)
    }

    /// fcntl(2): `fcntl(fd, F_SETFL, O_NONBLOCK)` turns on nonblocking mode (blocking
    /// calls return EAGAIN instead of waiting), `fcntl(fd, F_GETFL, 0)` reads it.
    /// Errors: EBADF; EINVAL (another command); ENETDOWN.
    pub fn fcntl(&self, fd: Fd, cmd: i32, arg: i32) -> Result<i32> {
        self.call(|c, _| c.sockets.fcntl(fd, cmd, arg))
    }

    /// Whether `fd` is one of the stack's sockets with a kernel descriptor
    /// behind its number (an eventfd an outside event loop can wait on through
    /// `AsRawFd`), rather than one numbered beyond the kernel's limit, which
    /// only tapstack's own calls (poll, select, [`crate::Epoll`]) can take.
    pub fn is_kernel_fd(&self, fd: Fd) -> bool {
        self.inspect(|c| Ok(c.sockets.numbers().is_kernel(fd) && c.sockets.generation(fd).is_some())).unwrap_or(false)
    }

    /// poll(2): waits until one of `fds` is ready for what it asks or `timeout_ms`
    /// passes (negative: no limit; 0: just look), and sets each `revents`. Returns how
    /// many entries have nonzero `revents` (0 on timeout). A descriptor that is not
    /// open reports POLLNVAL; POLLERR and POLLHUP are reported whether asked for or not.
    ///
    /// The entries may be the kernel's descriptors too (stdin, a pipe, a file, a
    /// kernel socket), mixed with the stack's sockets, as with the kernel's poll:
    /// a socket's number is a kernel descriptor reserved for it, or, past the
    /// kernel's limit, one from nr_open up, which the kernel never hands out, so
    /// the two never share a number. The kernel's entries get the kernel's answer (POLLNVAL for
    /// one that is not open).
    ///
    /// ```no_run
    /// # use sockets_api::prelude::*;
    /// # fn demo(net: &Net, sock: Fd) -> sockets_api::Result<()> {
    /// // stdin and a socket, as the select(2) lecture's client waits on them:
    /// let mut fds = [PollFd::new(0, POLLIN), PollFd::new(sock, POLLIN)];
    /// net.poll(&mut fds, -1)?;
    /// # Ok(()) }
    /// ```
    ///
    /// Errors: EINVAL (more entries than [`crate::fd_table::MAX_FDS`]); ENETDOWN;
    /// EMFILE (the first time a thread waits on kernel descriptors: no
    /// descriptor left for its eventfd).
    pub fn poll(&self, fds: &mut [PollFd], timeout_ms: i32) -> Result<usize> {
        // The kernel's entries, by index (no allocation when there are none).
        let mut kernel = Vec::new();
        let limit = self.inspect(|c| {
            let numbers = c.sockets.numbers();
            let theirs = |p: &PollFd| p.fd >= 0 && !numbers.owns(p.fd);
            kernel.extend(fds.iter().enumerate().filter(|(_, p)| theirs(p)).map(|(i, _)| i));
            Ok(c.sockets.limit())
        })?;
        if fds.len() > limit {
            return Err(Errno::EINVAL);
        }
        if !kernel.is_empty() {
            return kernel_fds::poll(&self.shared, fds, &kernel, ms_timeout(timeout_ms));
        }
        let scan = |c: &mut Core, fds: &mut [PollFd]| {
            let mut n = 0;
            for p in fds.iter_mut() {
                p.revents = if p.fd < 0 { 0 } else { c.sockets.revents(&mut c.stack, p.fd, p.events) };
                n += (p.revents != 0) as usize;
            }
            n
        };
        let n = self.inspect(|c| Ok(scan(c, fds)))?;
        if n > 0 || timeout_ms == 0 {
            return Ok(n);
        }
        let watched: Vec<Fd> = fds.iter().map(|p| p.fd).filter(|&fd| fd >= 0).collect();
        let register = |c: &mut Core, w: &std::task::Waker| watched.iter().for_each(|&fd| c.ready.wait_fd(fd, w));
        match self.shared.wait_core(ms_timeout(timeout_ms), register, |c, _| Some(scan(c, fds)).filter(|&n| n > 0)) {
            Some(n) => Ok(n),
            None if self.shared.is_stopped() => Err(Errno::ENETDOWN),
            None => {
                fds.iter_mut().for_each(|p| p.revents = 0);
                Ok(0)
            }
        }
    }

    /// select(2), over [`Net::poll`]: waits until a descriptor below `nfds` in
    /// `readfds` is readable, one in `writefds` writable, or one in `exceptfds` has an
    /// exceptional condition (none exist for these protocols), or until `timeout`
    /// (`None`: no limit). On return the sets hold only the ready descriptors; the
    /// count of them is returned (0 on timeout, with the sets emptied). As with
    /// poll, the sets may hold the kernel's descriptors (stdin, say) beside the
    /// stack's sockets.
    ///
    /// Errors: EBADF (a descriptor in a set is not open); EINVAL (`nfds` negative or
    /// above FD_SETSIZE); ENETDOWN.
    pub fn select(
        &self,
        nfds: i32,
        mut readfds: Option<&mut FdSet>,
        mut writefds: Option<&mut FdSet>,
        mut exceptfds: Option<&mut FdSet>,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        if !(0..=FD_SETSIZE as i32).contains(&nfds) {
            return Err(Errno::EINVAL);
        }
        let nfds = nfds as usize;
        let mut polls: Vec<PollFd> = Vec::new();
        for fd in 0..nfds as Fd {
            let mut events = 0;
            if readfds.as_ref().is_some_and(|s| s.is_set(fd)) {
                events |= POLLIN;
            }
            if writefds.as_ref().is_some_and(|s| s.is_set(fd)) {
                events |= POLLOUT;
            }
            if exceptfds.as_ref().is_some_and(|s| s.is_set(fd)) {
                events |= POLLPRI;
            }
            if events != 0 {
                polls.push(PollFd::new(fd, events));
            }
        }
        let ms = match timeout {
            None => -1,
            Some(t) => t.as_millis().min(i32::MAX as u128) as i32,
        };
        self.poll(&mut polls, ms)?;
        if polls.iter().any(|p| p.revents & POLLNVAL != 0) {
            return Err(Errno::EBADF);
        }
        for set in [readfds.as_deref_mut(), writefds.as_deref_mut(), exceptfds.as_deref_mut()].into_iter().flatten() {
            set.zero();
        }
        let mut count = 0;
        for p in &polls {
            // As Linux's select: errors and hang-ups count as readable and writable.
            let r = p.revents;
            if p.events & POLLIN != 0 && r & (POLLIN | POLLERR | POLLHUP) != 0 {
                readfds.as_deref_mut().expect("asked for").set(p.fd);
                count += 1;
            }
            if p.events & POLLOUT != 0 && r & (POLLOUT | POLLERR) != 0 {
                writefds.as_deref_mut().expect("asked for").set(p.fd);
                count += 1;
            }
            if p.events & POLLPRI != 0 && r & POLLPRI != 0 {
                exceptfds.as_deref_mut().expect("asked for").set(p.fd);
                count += 1;
            }
        }
        Ok(count)
    }
}
