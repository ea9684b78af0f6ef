//! Async sockets: [`AsyncTcpStream`], [`AsyncTcpListener`] and
//! [`AsyncUdpSocket`], for any executor. Each operation tries the
//! nonblocking call under the core's lock; when it would block, the task's
//! `std::task::Waker` is registered on the descriptor in the same turn (so no
//! wake-up is lost), and the runtime wakes it when the core reports that socket
//! changed: the same readiness registry that blocking calls, poll(2) and epoll
//! use, so an idle task costs nothing and a change wakes only its socket's tasks.
//!
//! With the Cargo feature `tokio`, the stream implements tokio's `AsyncRead`
//! and `AsyncWrite`. Without it, `poll_read`/`poll_write` and the `async fn`s
//! here work under any executor.

use crate::consts::*;
use crate::errno::{Errno, Result as CResult};
use crate::fd_table::Fd;
use crate::kernel_fds;
use crate::runtime::Core;
use crate::{Net, OwnedFd};
use stack::Instant;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::task::{Context, Poll};

/// The listen(2) backlog of [`AsyncTcpListener::bind`] (Linux's somaxconn).
const BACKLOG: i32 = 4096;

/// One try of `op` on `fd` for a task: ready unless it says EAGAIN, in which
/// case the task waits for `fd` to change.
fn poll_op<R>(
    net: &Net,
    fd: Fd,
    cx: &mut Context<'_>,
    op: impl FnOnce(&mut Core, Instant) -> CResult<R>,
) -> Poll<io::Result<R>> {
    poll_op_errno(net, fd, cx, op).map(|r| r.map_err(io::Error::from))
}

/// [`poll_op`] with the errno as it is.
fn poll_op_errno<R>(
    net: &Net,
    fd: Fd,
    cx: &mut Context<'_>,
    op: impl FnOnce(&mut Core, Instant) -> CResult<R>,
) -> Poll<CResult<R>> {
    if net.shared().is_stopped() {
        return Poll::Ready(Err(Errno::ENETDOWN));
    }
    net.shared().poll_core(
        cx.waker(),
        |c, w| c.ready.wait_fd(fd, w),
        |c, now| match op(c, now) {
            Err(Errno::EAGAIN) => None,
            r => {
                c.touch(fd);
                Some(r)
            }
        },
    )
}

/// A new nonblocking socket of `ty`, closed if the caller's setup fails.
fn socket(net: &Net, ty: i32) -> io::Result<OwnedFd> {
    Ok(OwnedFd::new(net, net.socket(AF_INET, ty | SOCK_NONBLOCK, 0)?))
}

/// A TCP connection for async code.
#[derive(Debug)]
pub struct AsyncTcpStream {
    fd: OwnedFd,
}

impl AsyncTcpStream {
    /// Connects to `addr`, waiting (without blocking a thread) for the handshake.
    /// Errors: those of connect(2) (`ConnectionRefused`, `TimedOut`, ...).
    pub async fn connect(net: &Net, addr: SocketAddr) -> io::Result<AsyncTcpStream> {
        let fd = socket(net, SOCK_STREAM)?;
        match net.connect(fd.fd(), addr) {
            Ok(()) | Err(Errno::EINPROGRESS) => {}
            Err(e) => return Err(e.into()),
        }
        let raw = fd.fd();
        poll_fn(|cx| poll_op(net, raw, cx, |c, now| c.sockets.connect_status(&mut c.stack, now, raw))).await?;
        Ok(AsyncTcpStream { fd })
    }

    /// The descriptor, for the BSD-style calls on [`Net`].
    pub fn fd(&self) -> Fd {
        self.fd.fd()
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddrV4> {
        Ok(self.fd.net().getpeername(self.fd())?)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        Ok(self.fd.net().getsockname(self.fd())?)
    }

    /// Reads what is there into `buf` (0 at the end of the stream), or registers
    /// the task to be woken when the socket changes.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let fd = self.fd();
        poll_op(self.fd.net(), fd, cx, |c, now| c.sockets.recv(&mut c.stack, now, fd, buf, 0))
    }

    /// Queues what fits of `buf`, or registers the task to be woken when the
    /// socket changes.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let fd = self.fd();
        poll_op(self.fd.net(), fd, cx, |c, now| c.sockets.send(&mut c.stack, now, fd, buf, 0))
    }

    /// shutdown(SHUT_WR): our FIN after the queued data.
    pub fn poll_shutdown(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.fd.net().shutdown(self.fd(), SHUT_WR).map_err(io::Error::from))
    }

    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    /// Writes all of `buf`, waiting for room as often as needed.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            buf = &buf[n..];
        }
        Ok(())
    }

    pub async fn shutdown(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_shutdown(cx)).await
    }
}

/// A TCP listener for async code.
#[derive(Debug)]
pub struct AsyncTcpListener {
    fd: OwnedFd,
}

impl AsyncTcpListener {
    /// socket(2), SO_REUSEADDR, bind(2) and listen(2) with a backlog of 4096.
    pub fn bind(net: &Net, addr: SocketAddr) -> io::Result<AsyncTcpListener> {
        let fd = socket(net, SOCK_STREAM)?;
        net.setsockopt(fd.fd(), SOL_SOCKET, SO_REUSEADDR, 1)?;
        net.bind(fd.fd(), addr)?;
        net.listen(fd.fd(), BACKLOG)?;
        Ok(AsyncTcpListener { fd })
    }

    pub fn fd(&self) -> Fd {
        self.fd.fd()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        Ok(self.fd.net().getsockname(self.fd())?)
    }

    /// The next connection, or registers the task to be woken when one comes.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(AsyncTcpStream, SocketAddrV4)>> {
        let (net, fd) = (self.fd.net(), self.fd());
        // The new descriptor's number may have to be reserved first (`kernel_fds`).
        let accept = || match poll_op_errno(net, fd, cx, |c, now| c.sockets.accept(&mut c.stack, now, fd)) {
            Poll::Ready(r) => r.map(Some),
            Poll::Pending => Ok(None),
        };
        match kernel_fds::numbered(net.shared(), accept) {
            Ok(Some((conn, peer))) => Poll::Ready(Ok((AsyncTcpStream { fd: OwnedFd::new(net, conn) }, peer))),
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    pub async fn accept(&self) -> io::Result<(AsyncTcpStream, SocketAddrV4)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }
}

/// A UDP socket for async code.
#[derive(Debug)]
pub struct AsyncUdpSocket {
    fd: OwnedFd,
}

impl AsyncUdpSocket {
    pub fn bind(net: &Net, addr: SocketAddr) -> io::Result<AsyncUdpSocket> {
        let fd = socket(net, SOCK_DGRAM)?;
        net.bind(fd.fd(), addr)?;
        Ok(AsyncUdpSocket { fd })
    }

    pub fn fd(&self) -> Fd {
        self.fd.fd()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        Ok(self.fd.net().getsockname(self.fd())?)
    }

    /// The next datagram and its sender, or registers the task to be woken.
    pub fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddrV4)>> {
        let fd = self.fd();
        poll_op(self.fd.net(), fd, cx, |c, now| c.sockets.recvfrom(&mut c.stack, now, fd, buf, 0))
    }

    /// Sends one datagram (UDP never waits for room).
    pub fn poll_send_to(&self, cx: &mut Context<'_>, buf: &[u8], to: SocketAddr) -> Poll<io::Result<usize>> {
        let fd = self.fd();
        poll_op(self.fd.net(), fd, cx, |c, now| c.sockets.sendto(&mut c.stack, now, fd, buf, 0, Some(to)))
    }

    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        poll_fn(|cx| self.poll_recv_from(cx, buf)).await
    }

    pub async fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        poll_fn(|cx| self.poll_send_to(cx, buf, to)).await
    }
}

#[cfg(feature = "tokio")]
mod tokio_io {
    use super::AsyncTcpStream;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    impl AsyncRead for AsyncTcpStream {
        fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let dst = buf.initialize_unfilled();
            match AsyncTcpStream::poll_read(&self, cx, dst) {
                Poll::Ready(Ok(n)) => {
                    buf.advance(n);
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        }
    }

    impl AsyncWrite for AsyncTcpStream {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            AsyncTcpStream::poll_write(&self, cx, buf)
        }

        /// Bytes queued are the stack's to send: nothing to flush.
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            AsyncTcpStream::poll_shutdown(&self, cx)
        }
    }
}
