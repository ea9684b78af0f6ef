//! `TcpListener` and `TcpStream` with the methods of their `std::net` namesakes,
//! made of the socket calls in [`crate::Net`]: what a Rust programmer expects, on
//! tapstack.
//!
//! ```no_run
//! use sockets_api::{Net, TcpListener, TcpStream};
//! use std::io::{Read, Write};
//! # fn demo(net: &Net) -> std::io::Result<()> {
//! let listener = TcpListener::bind(net, "0.0.0.0:7")?;
//! for stream in listener.incoming() {
//!     let mut stream = stream?;
//!     std::thread::spawn(move || {
//!         let mut buf = [0u8; 4096];
//!         while let Ok(n @ 1..) = stream.read(&mut buf) {
//!             if stream.write_all(&buf[..n]).is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! let mut s = TcpStream::connect(net, "10.0.0.1:80")?;
//! s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
//! # Ok(()) }
//! ```

use crate::consts::*;
use crate::errno::Errno;
use crate::fd_table::Fd;
use crate::options::Linger;
use crate::sock::{each_addr, Sock};
use crate::{Net, OwnedFd, PollFd};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// std's backlog for `TcpListener::bind`.
const LISTEN_BACKLOG: i32 = 128;

/// A TCP listener, as `std::net::TcpListener`: [`TcpListener::bind`] makes the
/// socket (with SO_REUSEADDR, as std does on Unix) and listens with a backlog of
/// 128; [`TcpListener::accept`] and [`TcpListener::incoming`] hand out the
/// connections. Errors are `io::Error`s made from the calls' errnos, so their
/// kinds and messages match a real socket's. The descriptor closes when the
/// listener and every [`TcpListener::try_clone`] of it are dropped.
#[derive(Debug)]
pub struct TcpListener {
    inner: Arc<OwnedFd>,
}

impl Sock for TcpListener {
    fn owned(&self) -> &OwnedFd {
        &self.inner
    }
}

impl TcpListener {
    /// socket(2), setsockopt(SO_REUSEADDR), bind(2) and listen(2) on `addr`
    /// (port 0: an ephemeral port), trying each address `addr` resolves to.
    /// Errors: `AddrInUse` (EADDRINUSE: a listener holds the port), those of bind.
    pub fn bind(net: &Net, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let fd = net.socket(AF_INET, SOCK_STREAM, 0)?;
            let l = TcpListener { inner: Arc::new(OwnedFd::new(net, fd)) };
            net.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1)?;
            net.bind(fd, a)?;
            net.listen(fd, LISTEN_BACKLOG)?;
            Ok(l)
        })
    }

    /// The descriptor, for the BSD-style calls on [`Net`].
    pub fn fd(&self) -> Fd {
        self.inner.fd()
    }

    /// The stack this listener lives on.
    pub fn net(&self) -> &Net {
        self.inner.net()
    }

    /// The next connection and its peer (accept(2)): blocks until one is
    /// established, unless nonblocking (`WouldBlock`).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (net, fd) = self.net_fd();
        let (c, peer) = net.accept(fd)?;
        Ok((TcpStream { inner: Arc::new(OwnedFd::new(net, c)) }, peer.into()))
    }

    /// The accepted connections (`accept().map(|(s, _)| s)`), until the runtime
    /// stops ([`Incoming`]).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address it listens on (getsockname(2)).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let (net, fd) = self.net_fd();
        Ok(net.getsockname(fd)?.into())
    }

    /// Another handle on the same listener (like dup(2)).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener { inner: self.inner.clone() })
    }

    /// O_NONBLOCK: `accept` fails with `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.set_nonblocking_(on)
    }

    /// Takes the pending error (SO_ERROR).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.take_error_()
    }

    /// IP_TTL of the connections' segments.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.set_ttl_(ttl)
    }

    pub fn ttl(&self) -> io::Result<u32> {
        self.ttl_()
    }
}

/// The iterator of [`TcpListener::incoming`]: it ends (`None`) only when the
/// runtime stops, where std's never ends. A process's exit kills a thread
/// blocked in std's `incoming()` silently; here the stopping runtime wakes it
/// (a program's `main` returns and drops the [`crate::Runtime`]), and the
/// usual `for stream in listener.incoming() { let stream = stream.unwrap(); ... }`
/// must then end its loop rather than panic on ENETDOWN. [`TcpListener::accept`]
/// still says ENETDOWN.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        match self.listener.accept() {
            Err(_) if self.listener.net().shared().is_stopped() => None,
            r => Some(r.map(|(s, _)| s)),
        }
    }
}

/// A TCP connection, as `std::net::TcpStream`, implementing `Read` and `Write`
/// (for `&TcpStream` too, so that one thread can read while another writes). A
/// write queues all of its buffer, waiting for room (a nonblocking one queues
/// what fits). The descriptor closes (TCP's orderly release: a FIN after what is
/// queued) when the stream and every [`TcpStream::try_clone`] of it are dropped.
#[derive(Debug)]
pub struct TcpStream {
    inner: Arc<OwnedFd>,
}

impl Sock for TcpStream {
    fn owned(&self) -> &OwnedFd {
        &self.inner
    }
}

fn timeout_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection timed out")
}

impl TcpStream {
    /// socket(2) and a blocking connect(2), trying each address `addr` resolves
    /// to. Errors: `ConnectionRefused`, `TimedOut` (ETIMEDOUT: the SYN retries
    /// ran out), `NetworkUnreachable`, `HostUnreachable`, ...
    pub fn connect(net: &Net, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |a| {
            let fd = net.socket(AF_INET, SOCK_STREAM, 0)?;
            let s = TcpStream { inner: Arc::new(OwnedFd::new(net, fd)) };
            net.connect(fd, a)?;
            Ok(s)
        })
    }

    /// connect(2) with a time limit, as std does it: a nonblocking connect, then
    /// poll(2) for POLLOUT up to `timeout`, then SO_ERROR. Errors: `InvalidInput`
    /// for a zero timeout; `TimedOut` when it passes; the handshake's error.
    pub fn connect_timeout(net: &Net, addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        let fd = net.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)?;
        let s = TcpStream { inner: Arc::new(OwnedFd::new(net, fd)) };
        match net.connect(fd, *addr) {
            Ok(()) => {}
            Err(Errno::EINPROGRESS) => {
                let end = Instant::now() + timeout;
                loop {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(timeout_error());
                    }
                    let mut p = [PollFd::new(fd, POLLOUT)];
                    let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
                    if net.poll(&mut p, ms)? == 0 {
                        continue;
                    }
                    if let Some(e) = s.take_error()? {
                        return Err(e);
                    }
                    if p[0].revents & POLLHUP != 0 {
                        return Err(io::Error::other("no error set after POLLHUP"));
                    }
                    break;
                }
            }
            Err(e) => return Err(e.into()),
        }
        s.set_nonblocking(false)?;
        Ok(s)
    }

    /// The descriptor, for the BSD-style calls on [`Net`].
    pub fn fd(&self) -> Fd {
        self.inner.fd()
    }

    /// The stack this stream lives on.
    pub fn net(&self) -> &Net {
        self.inner.net()
    }

    /// The peer's address (getpeername(2)); `NotConnected` once the connection ended.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        let (net, fd) = self.net_fd();
        Ok(net.getpeername(fd)?.into())
    }

    /// The local address (getsockname(2)).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let (net, fd) = self.net_fd();
        Ok(net.getsockname(fd)?.into())
    }

    /// shutdown(2): `Write` sends a FIN after what is queued (the peer reads EOF),
    /// `Read` makes reads return 0, `Both` does both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let (net, fd) = self.net_fd();
        let how = match how {
            Shutdown::Read => SHUT_RD,
            Shutdown::Write => SHUT_WR,
            Shutdown::Both => SHUT_RDWR,
        };
        Ok(net.shutdown(fd, how)?)
    }

    /// Another handle on the same connection (like dup(2): options and
    /// nonblocking mode are shared). The connection closes when the last handle is dropped.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream { inner: self.inner.clone() })
    }

    /// SO_RCVTIMEO: how long a read blocks before failing with `WouldBlock`
    /// (`None`: no limit). A zero duration is refused with `InvalidInput`, as std does.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_timeout_(SO_RCVTIMEO, t)
    }

    /// SO_SNDTIMEO: how long a write waits for room. When it passes, the write
    /// returns what it queued so far, or fails with `WouldBlock` if nothing.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_timeout_(SO_SNDTIMEO, t)
    }

    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.timeout_(SO_RCVTIMEO)
    }

    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.timeout_(SO_SNDTIMEO)
    }

    /// Reads without taking the bytes (recv(2) with MSG_PEEK).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let (net, fd) = self.net_fd();
        Ok(net.recv(fd, buf, MSG_PEEK)?)
    }

    /// SO_LINGER: `Some(0)` makes dropping the last handle reset the connection
    /// (RST); `Some(t)` makes it wait up to `t` for the FIN to be acknowledged.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        let (net, fd) = self.net_fd();
        let l = match linger {
            None => Linger::default(),
            Some(t) => Linger { l_onoff: 1, l_linger: t.as_secs().min(i32::MAX as u64) as i32 },
        };
        Ok(net.setsockopt(fd, SOL_SOCKET, SO_LINGER, l)?)
    }

    pub fn linger(&self) -> io::Result<Option<Duration>> {
        let (net, fd) = self.net_fd();
        let l = net.getsockopt(fd, SOL_SOCKET, SO_LINGER)?.as_linger().ok_or(Errno::EINVAL)?;
        Ok((l.l_onoff != 0).then(|| Duration::from_secs(l.l_linger.max(0) as u64)))
    }

    /// TCP_NODELAY: send small segments at once instead of waiting (Nagle off).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        let (net, fd) = self.net_fd();
        Ok(net.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, on)?)
    }

    pub fn nodelay(&self) -> io::Result<bool> {
        let (net, fd) = self.net_fd();
        Ok(net.getsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY)? != 0)
    }

    /// IP_TTL of the segments sent.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.set_ttl_(ttl)
    }

    pub fn ttl(&self) -> io::Result<u32> {
        self.ttl_()
    }

    /// Takes the pending error (SO_ERROR), such as `ConnectionReset`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.take_error_()
    }

    /// O_NONBLOCK: reads and writes fail with `WouldBlock` instead of waiting
    /// (a write queues what fits).
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.set_nonblocking_(on)
    }
}

impl Read for &TcpStream {
    /// recv(2): what has arrived, up to `buf`'s length; 0 at end of stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (net, fd) = self.net_fd();
        Ok(net.recv(fd, buf, 0)?)
    }
}

impl Write for &TcpStream {
    /// send(2): queues all of `buf` (nonblocking: what fits).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (net, fd) = self.net_fd();
        Ok(net.send(fd, buf, 0)?)
    }

    /// Nothing to do: written bytes are already TCP's (as std's `flush`).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The socket's number, a kernel eventfd that an outside event loop (epoll,
/// mio, select) can wait on: level-triggered, readable while the socket has
/// bytes or EOF to read, an error, a connection to accept. Do the I/O through
/// this type (nonblocking, or after the event), never with read(2) on the number.
/// A socket numbered beyond the kernel's limit (see `kernel_fds`; ask
/// [`crate::Net::is_kernel_fd`]) has no eventfd: its number, returned all the
/// same, is one the kernel rejects (EBADF from epoll_ctl, POLLNVAL from poll).
impl std::os::fd::AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.raw_fd_()
    }
}

/// The socket's number, a kernel eventfd that an outside event loop (epoll,
/// mio, select) can wait on: level-triggered, readable while the socket has
/// bytes or EOF to read, an error. Do the I/O through
/// this type (nonblocking, or after the event), never with read(2) on the number.
/// A socket numbered beyond the kernel's limit (see `kernel_fds`; ask
/// [`crate::Net::is_kernel_fd`]) has no eventfd: its number, returned all the
/// same, is one the kernel rejects (EBADF from epoll_ctl, POLLNVAL from poll).
impl std::os::fd::AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.raw_fd_()
    }
}
