//! `UdpSocket` with the methods of `std::net::UdpSocket`, made of the socket calls
//! in [`crate::Net`]: what a Rust programmer expects, on tapstack.

use crate::consts::*;
use crate::fd_table::Fd;
use crate::sock::{each_addr, first_addr, Sock};
use crate::{Net, OwnedFd};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// A UDP socket, as `std::net::UdpSocket`. Errors are `io::Error`s made from the
/// calls' errnos, so their kinds (`WouldBlock`, `ConnectionRefused`, ...) and
/// messages match a real socket's. The descriptor is closed when the socket (and
/// every [`UdpSocket::try_clone`] of it) is dropped.
///
/// Multicast and IPv6 methods of std's type are absent: the stack has neither.
#[derive(Debug)]
pub struct UdpSocket {
    inner: Arc<OwnedFd>,
}

impl UdpSocket {
    /// Creates a socket bound to `addr` (socket(2) and bind(2)); port 0 picks an
    /// ephemeral port. Tries each address `addr` resolves to.
    pub fn bind(net: &Net, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        each_addr(addr, |a| {
            let fd = net.socket(AF_INET, SOCK_DGRAM, 0)?;
            let sock = UdpSocket { inner: Arc::new(OwnedFd::new(net, fd)) };
            net.bind(fd, a)?;
            Ok(sock)
        })
    }

    /// The descriptor, for the BSD-style calls on [`Net`].
    pub fn fd(&self) -> Fd {
        self.inner.fd()
    }

    /// The stack this socket lives on.
    pub fn net(&self) -> &Net {
        self.inner.net()
    }

    /// Receives one datagram (recvfrom(2)); a longer one is truncated to `buf`.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (net, fd) = self.net_fd();
        let (n, a) = net.recvfrom(fd, buf, 0)?;
        Ok((n, a.into()))
    }

    /// As [`UdpSocket::recv_from`], leaving the datagram queued (MSG_PEEK).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (net, fd) = self.net_fd();
        let (n, a) = net.recvfrom(fd, buf, MSG_PEEK)?;
        Ok((n, a.into()))
    }

    /// Sends one datagram to `addr` (sendto(2), to the first address it resolves to).
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let (net, fd) = self.net_fd();
        Ok(net.sendto(fd, buf, 0, first_addr(addr)?)?)
    }

    /// The connected peer (getpeername(2)); `NotConnected` if none.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        let (net, fd) = self.net_fd();
        Ok(net.getpeername(fd)?.into())
    }

    /// The local address (getsockname(2)).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let (net, fd) = self.net_fd();
        Ok(net.getsockname(fd)?.into())
    }

    /// Another handle on the same socket (like dup(2): options and nonblocking mode
    /// are shared). The descriptor closes when the last handle is dropped.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket { inner: self.inner.clone() })
    }

    /// SO_RCVTIMEO: how long a receive blocks before failing with `WouldBlock`
    /// (`None`: no limit). A zero duration is refused with `InvalidInput`, as std does.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_timeout_(SO_RCVTIMEO, t)
    }

    /// SO_SNDTIMEO (UDP sends never block; kept for parity).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_timeout_(SO_SNDTIMEO, t)
    }

    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.timeout_(SO_RCVTIMEO)
    }

    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.timeout_(SO_SNDTIMEO)
    }

    /// SO_BROADCAST: allows sending to broadcast addresses.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        let (net, fd) = self.net_fd();
        Ok(net.setsockopt(fd, SOL_SOCKET, SO_BROADCAST, on)?)
    }

    pub fn broadcast(&self) -> io::Result<bool> {
        let (net, fd) = self.net_fd();
        Ok(net.getsockopt_int(fd, SOL_SOCKET, SO_BROADCAST)? != 0)
    }

    /// IP_TTL of the datagrams sent.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.set_ttl_(ttl)
    }

    pub fn ttl(&self) -> io::Result<u32> {
        self.ttl_()
    }

    /// Takes the pending error (SO_ERROR), such as `ConnectionRefused` after a port
    /// unreachable on a connected socket.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.take_error_()
    }

    /// Sets the default destination and receives only from it (connect(2)). Tries
    /// each address `addr` resolves to.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let (net, fd) = self.net_fd();
        each_addr(addr, |a| Ok(net.connect(fd, a)?))
    }

    /// Sends to the connected peer (send(2)).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let (net, fd) = self.net_fd();
        Ok(net.send(fd, buf, 0)?)
    }

    /// Receives from the connected peer (recv(2)).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let (net, fd) = self.net_fd();
        Ok(net.recv(fd, buf, 0)?)
    }

    /// As [`UdpSocket::recv`], leaving the datagram queued (MSG_PEEK).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let (net, fd) = self.net_fd();
        Ok(net.recv(fd, buf, MSG_PEEK)?)
    }

    /// O_NONBLOCK: receives fail with `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.set_nonblocking_(on)
    }
}

impl Sock for UdpSocket {
    fn owned(&self) -> &OwnedFd {
        &self.inner
    }
}

/// The socket's number, a kernel eventfd that an outside event loop (epoll,
/// mio, select) can wait on: level-triggered, readable while the socket has
/// bytes or EOF to read, an error. Do the I/O through
/// this type (nonblocking, or after the event), never with read(2) on the number.
/// A socket numbered beyond the kernel's limit (see `kernel_fds`; ask
/// [`crate::Net::is_kernel_fd`]) has no eventfd: its number, returned all the
/// same, is one the kernel rejects (EBADF from epoll_ctl, POLLNVAL from poll).
impl std::os::fd::AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.raw_fd_()
    }
}
