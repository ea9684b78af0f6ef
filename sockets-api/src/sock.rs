//! What the std::net-like types share: options over a descriptor, and trying
//! each address a `ToSocketAddrs` resolves to.

use crate::consts::*;
use crate::errno::Errno;
use crate::fd_table::Fd;
use crate::{Net, OwnedFd};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The first address `addr` resolves to.
pub(crate) fn first_addr(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any addresses"))
}

/// Tries `f` on each address, returning the first success or the last error (as std does).
pub(crate) fn each_addr<T>(addr: impl ToSocketAddrs, mut f: impl FnMut(SocketAddr) -> io::Result<T>) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match f(a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any addresses")))
}

/// The options every socket type shares, over a descriptor.
pub(crate) trait Sock {
    fn owned(&self) -> &OwnedFd;

    fn net_fd(&self) -> (&Net, Fd) {
        (self.owned().net(), self.owned().fd())
    }

    /// The raw descriptor for an event loop outside tapstack: the kernel
    /// eventfd reserved for the socket's number, from now on readable exactly
    /// while the socket is (see `raw_ready`).
    fn raw_fd_(&self) -> std::os::fd::RawFd {
        let (net, fd) = self.net_fd();
        net.shared().with_core(|c, _| c.export_readiness(fd));
        fd
    }

    fn set_nonblocking_(&self, on: bool) -> io::Result<()> {
        let (net, fd) = self.net_fd();
        let fl = net.fcntl(fd, F_GETFL, 0)?;
        net.fcntl(fd, F_SETFL, if on { fl | O_NONBLOCK } else { fl & !O_NONBLOCK })?;
        Ok(())
    }

    fn take_error_(&self) -> io::Result<Option<io::Error>> {
        let (net, fd) = self.net_fd();
        let e = net.getsockopt_int(fd, SOL_SOCKET, SO_ERROR)?;
        Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
    }

    fn set_ttl_(&self, ttl: u32) -> io::Result<()> {
        let (net, fd) = self.net_fd();
        Ok(net.setsockopt(fd, IPPROTO_IP, IP_TTL, i32::try_from(ttl).map_err(|_| Errno::EINVAL)?)?)
    }

    fn ttl_(&self) -> io::Result<u32> {
        let (net, fd) = self.net_fd();
        Ok(net.getsockopt_int(fd, IPPROTO_IP, IP_TTL)? as u32)
    }

    /// SO_RCVTIMEO or SO_SNDTIMEO as std sets them: `None` for no limit, a zero
    /// duration refused with `InvalidInput`.
    fn set_timeout_(&self, name: i32, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        let (net, fd) = self.net_fd();
        Ok(net.setsockopt(fd, SOL_SOCKET, name, t.unwrap_or(Duration::ZERO))?)
    }

    fn timeout_(&self, name: i32) -> io::Result<Option<Duration>> {
        let (net, fd) = self.net_fd();
        let t = net.getsockopt(fd, SOL_SOCKET, name)?.as_time().ok_or(Errno::EINVAL)?;
        Ok((!t.is_zero()).then_some(t))
    }
}
