//! The socket calls the C functions are made of, as one trait with two
//! implementations: [`Net`] (a stack on a TAP, driven in real time by its runtime
//! thread) and `VirtualHost` in `virtual_host.rs` (a stack driven in virtual time
//! by the caller's own thread, for packetdrill). The C marshalling in `abi.rs` is
//! written once, over `&dyn Calls`.

use sockets_api::{Fd, Net, OptVal, PollFd, RecvMsg, Result};
use std::net::{SocketAddr, SocketAddrV4};

/// The BSD calls, with Rust types; errors are errno values.
pub trait Calls: Sync {
    fn socket(&self, domain: i32, ty: i32, protocol: i32) -> Result<Fd>;
    fn bind(&self, fd: Fd, addr: SocketAddr) -> Result<()>;
    fn connect(&self, fd: Fd, addr: SocketAddr) -> Result<()>;
    /// connect(2) with AF_UNSPEC.
    fn disconnect(&self, fd: Fd) -> Result<()>;
    fn listen(&self, fd: Fd, backlog: i32) -> Result<()>;
    fn accept(&self, fd: Fd) -> Result<(Fd, SocketAddrV4)>;
    fn send(&self, fd: Fd, buf: &[u8], flags: i32) -> Result<usize>;
    fn sendto(&self, fd: Fd, buf: &[u8], flags: i32, addr: SocketAddr) -> Result<usize>;
    fn recvmsg(&self, fd: Fd, buf: &mut [u8], flags: i32) -> Result<RecvMsg>;
    fn close(&self, fd: Fd) -> Result<()>;
    fn shutdown(&self, fd: Fd, how: i32) -> Result<()>;
    fn getsockname(&self, fd: Fd) -> Result<SocketAddrV4>;
    fn getpeername(&self, fd: Fd) -> Result<SocketAddrV4>;
    fn setsockopt(&self, fd: Fd, level: i32, name: i32, val: OptVal) -> Result<()>;
    fn getsockopt(&self, fd: Fd, level: i32, name: i32) -> Result<OptVal>;
    fn fcntl(&self, fd: Fd, cmd: i32, arg: i32) -> Result<i32>;
    fn poll(&self, fds: &mut [PollFd], timeout_ms: i32) -> Result<usize>;
}

impl Calls for Net {
    fn socket(&self, domain: i32, ty: i32, protocol: i32) -> Result<Fd> {
        Net::socket(self, domain, ty, protocol)
    }
    fn bind(&self, fd: Fd, addr: SocketAddr) -> Result<()> {
        Net::bind(self, fd, addr)
    }
    fn connect(&self, fd: Fd, addr: SocketAddr) -> Result<()> {
        Net::connect(self, fd, addr)
    }
    fn disconnect(&self, fd: Fd) -> Result<()> {
        Net::disconnect(self, fd)
    }
    fn listen(&self, fd: Fd, backlog: i32) -> Result<()> {
        Net::listen(self, fd, backlog)
    }
    fn accept(&self, fd: Fd) -> Result<(Fd, SocketAddrV4)> {
        Net::accept(self, fd)
    }
    fn send(&self, fd: Fd, buf: &[u8], flags: i32) -> Result<usize> {
        Net::send(self, fd, buf, flags)
    }
    fn sendto(&self, fd: Fd, buf: &[u8], flags: i32, addr: SocketAddr) -> Result<usize> {
        Net::sendto(self, fd, buf, flags, addr)
    }
    fn recvmsg(&self, fd: Fd, buf: &mut [u8], flags: i32) -> Result<RecvMsg> {
        Net::recvmsg(self, fd, buf, flags)
    }
    fn close(&self, fd: Fd) -> Result<()> {
        Net::close(self, fd)
    }
    fn shutdown(&self, fd: Fd, how: i32) -> Result<()> {
        Net::shutdown(self, fd, how)
    }
    fn getsockname(&self, fd: Fd) -> Result<SocketAddrV4> {
        Net::getsockname(self, fd)
    }
    fn getpeername(&self, fd: Fd) -> Result<SocketAddrV4> {
        Net::getpeername(self, fd)
    }
    fn setsockopt(&self, fd: Fd, level: i32, name: i32, val: OptVal) -> Result<()> {
        Net::setsockopt(self, fd, level, name, val)
    }
    fn getsockopt(&self, fd: Fd, level: i32, name: i32) -> Result<OptVal> {
        Net::getsockopt(self, fd, level, name)
    }
    fn fcntl(&self, fd: Fd, cmd: i32, arg: i32) -> Result<i32> {
        Net::fcntl(self, fd, cmd, arg)
    }
    fn poll(&self, fds: &mut [PollFd], timeout_ms: i32) -> Result<usize> {
        Net::poll(self, fds, timeout_ms)
    }
}
