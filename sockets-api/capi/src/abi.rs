//! C marshalling, written once over [`Calls`]: `struct sockaddr_in`, `iovec`,
//! `msghdr`, option values, `pollfd` and `fd_set` in and out, and the libc
//! convention for results (-1 with `errno` set on failure).

// The functions take C's argument lists as they are.
#![allow(clippy::too_many_arguments)]

use crate::calls::Calls;
use libc::{c_int, c_void, iovec, msghdr, sockaddr, socklen_t, ssize_t};
use sockets_api::consts::*;
use sockets_api::options::Linger;
use sockets_api::{Errno, OptVal, PollFd, Result};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

/// Linux's ioctl requests.
pub const FIONREAD: libc::c_ulong = 0x541B;
pub const FIONBIO: libc::c_ulong = 0x5421;
/// The most bytes one sendmsg/recvmsg gathers (Linux caps a call near 2 GiB; we
/// cap the scratch buffer a scatter/gather call needs).
const MAX_GATHER: usize = 1 << 20;

/// Sets the calling thread's `errno`, as libc does.
pub fn set_errno(e: Errno) {
    // SAFETY: __errno_location returns this thread's errno.
    unsafe { *libc::__errno_location() = e.0 };
}

/// An `int` result: the value, or -1 with errno set.
pub fn int(r: Result<i32>) -> c_int {
    r.unwrap_or_else(|e| {
        set_errno(e);
        -1
    })
}

/// An `ssize_t` result: the count, or -1 with errno set.
pub fn size(r: Result<usize>) -> ssize_t {
    match r {
        Ok(n) => n as ssize_t,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// Reads a `struct sockaddr`. `None` is AF_UNSPEC (connect's "dissolve").
///
/// # Safety
/// `addr` points to `len` readable bytes, or is null.
pub unsafe fn sockaddr_in(addr: *const sockaddr, len: socklen_t) -> Result<Option<SocketAddr>> {
    if addr.is_null() {
        return Err(Errno::EFAULT);
    }
    if (len as usize) < 2 {
        return Err(Errno::EINVAL);
    }
    match (*addr).sa_family as i32 {
        AF_UNSPEC => Ok(None),
        AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            let a = &*(addr as *const libc::sockaddr_in);
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Ok(Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port)))))
        }
        AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            let a = &*(addr as *const libc::sockaddr_in6);
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Ok(Some(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(a.sin6_port), 0, 0))))
        }
        AF_INET | AF_INET6 => Err(Errno::EINVAL),
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

/// Writes `a` as a `struct sockaddr_in` into `addr` (truncated to `*len`, as the
/// kernel does) and sets `*len` to its full size. Null `addr` writes nothing.
///
/// # Safety
/// `addr` points to `*len` writable bytes, or is null; `len` is valid when `addr` is not null.
pub unsafe fn sockaddr_out(a: SocketAddrV4, addr: *mut sockaddr, len: *mut socklen_t) -> Result<()> {
    if addr.is_null() {
        return Ok(());
    }
    if len.is_null() {
        return Err(Errno::EFAULT);
    }
    let sin = libc::sockaddr_in {
        sin_family: AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
        sin_zero: [0; 8],
    };
    let full = std::mem::size_of::<libc::sockaddr_in>();
    let n = (*len as usize).min(full);
    std::ptr::copy_nonoverlapping(&sin as *const _ as *const u8, addr as *mut u8, n);
    *len = full as socklen_t;
    Ok(())
}

/// # Safety
/// As [`sockaddr_in`].
pub unsafe fn bind(c: &dyn Calls, fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    int((|| match sockaddr_in(addr, len)? {
        Some(a) => c.bind(fd, a).map(|_| 0),
        // Linux takes AF_UNSPEC with INADDR_ANY as AF_INET, for old programs.
        None => c.bind(fd, SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port_of(addr)))).map(|_| 0),
    })())
}

unsafe fn port_of(addr: *const sockaddr) -> u16 {
    u16::from_be((*(addr as *const libc::sockaddr_in)).sin_port)
}

/// # Safety
/// As [`sockaddr_in`].
pub unsafe fn connect(c: &dyn Calls, fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    int((|| match sockaddr_in(addr, len)? {
        Some(a) => c.connect(fd, a).map(|_| 0),
        None => c.disconnect(fd).map(|_| 0),
    })())
}

/// accept4(2): SOCK_NONBLOCK and SOCK_CLOEXEC in `flags`.
///
/// # Safety
/// As [`sockaddr_out`].
pub unsafe fn accept4(c: &dyn Calls, fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        set_errno(Errno::EINVAL);
        return -1;
    }
    int((|| {
        let (nfd, peer) = c.accept(fd)?;
        if flags & SOCK_NONBLOCK != 0 {
            c.fcntl(nfd, F_SETFL, O_NONBLOCK)?;
        }
        sockaddr_out(peer, addr, len)?;
        Ok(nfd)
    })())
}

/// # Safety
/// `buf` points to `len` readable bytes (or `len` is 0); `addr` as [`sockaddr_in`] or null.
pub unsafe fn sendto(
    c: &dyn Calls,
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    size((|| match addr.is_null() {
        true => c.send(fd, bytes(buf, len)?, flags),
        false => match sockaddr_in(addr, alen)? {
            Some(a) => c.sendto(fd, bytes(buf, len)?, flags, a),
            None => c.send(fd, bytes(buf, len)?, flags),
        },
    })())
}

/// # Safety
/// `buf` points to `len` writable bytes (or `len` is 0); `addr` as [`sockaddr_out`] or null.
pub unsafe fn recvfrom(
    c: &dyn Calls,
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    size((|| {
        let m = c.recvmsg(fd, bytes_mut(buf, len)?, flags)?;
        sockaddr_out(m.addr, addr, alen)?;
        Ok(m.len)
    })())
}

/// Below this address nothing is ever mapped (the null page: Linux's
/// `vm.mmap_min_addr` is at least 4096), so a buffer there is a bad address.
const LOWEST_VALID_ADDR: usize = 4096;

/// EFAULT for a buffer of `len > 0` bytes at an address that cannot be mapped,
/// as the kernel finds when it copies (a null buffer, most often). A bad pointer
/// elsewhere is not detected: only the kernel's page tables know it.
fn check_buf(p: *const c_void, len: usize) -> Result<()> {
    match len > 0 && (p as usize) < LOWEST_VALID_ADDR {
        true => Err(Errno::EFAULT),
        false => Ok(()),
    }
}

unsafe fn bytes<'a>(p: *const c_void, len: usize) -> Result<&'a [u8]> {
    check_buf(p, len)?;
    Ok(if len == 0 { &[] } else { std::slice::from_raw_parts(p as *const u8, len) })
}

unsafe fn bytes_mut<'a>(p: *mut c_void, len: usize) -> Result<&'a mut [u8]> {
    check_buf(p, len)?;
    Ok(if len == 0 { &mut [] } else { std::slice::from_raw_parts_mut(p as *mut u8, len) })
}

unsafe fn iovecs<'a>(iov: *const iovec, n: c_int) -> Result<&'a [iovec]> {
    if !(0..=1024).contains(&n) {
        return Err(Errno::EINVAL);
    }
    if n == 0 {
        return Ok(&[]);
    }
    if iov.is_null() {
        return Err(Errno::EFAULT);
    }
    Ok(std::slice::from_raw_parts(iov, n as usize))
}

/// sendmsg(2), writev(2): the buffers gathered into one send.
///
/// # Safety
/// `iov` holds `n` valid iovecs; `name` as [`sockaddr_in`] or null.
pub unsafe fn sendv(
    c: &dyn Calls,
    fd: c_int,
    iov: *const iovec,
    n: c_int,
    flags: c_int,
    name: *const sockaddr,
    nlen: socklen_t,
) -> ssize_t {
    let iov = match iovecs(iov, n) {
        Ok(v) => v,
        Err(e) => return size(Err(e)),
    };
    if let [one] = iov {
        return sendto(c, fd, one.iov_base, one.iov_len, flags, name, nlen);
    }
    let mut all = Vec::new();
    for v in iov {
        match bytes(v.iov_base, v.iov_len.min(MAX_GATHER - all.len())) {
            Ok(b) => all.extend_from_slice(b),
            Err(e) => return size(Err(e)),
        }
    }
    sendto(c, fd, all.as_ptr() as *const c_void, all.len(), flags, name, nlen)
}

/// recvmsg(2), readv(2): one receive scattered over the buffers.
///
/// # Safety
/// `iov` holds `n` valid iovecs; `name`, `nlen` as [`sockaddr_out`] or null.
pub unsafe fn recvv(
    c: &dyn Calls,
    fd: c_int,
    iov: *const iovec,
    n: c_int,
    flags: c_int,
    name: *mut sockaddr,
    nlen: *mut socklen_t,
    flags_out: *mut c_int,
) -> ssize_t {
    let iov = match iovecs(iov, n) {
        Ok(v) => v,
        Err(e) => return size(Err(e)),
    };
    if let Some(e) = iov.iter().find_map(|v| check_buf(v.iov_base, v.iov_len).err()) {
        return size(Err(e));
    }
    let total = iov.iter().fold(0usize, |a, v| a.saturating_add(v.iov_len)).min(MAX_GATHER);
    let mut tmp = vec![0u8; total];
    size((|| {
        let m = c.recvmsg(fd, &mut tmp, flags)?;
        let mut off = 0;
        for v in iov {
            let k = v.iov_len.min(m.len.min(total) - off);
            std::ptr::copy_nonoverlapping(tmp[off..].as_ptr(), v.iov_base as *mut u8, k);
            off += k;
        }
        sockaddr_out(m.addr, name, nlen)?;
        if !flags_out.is_null() {
            *flags_out = m.flags;
        }
        Ok(m.len)
    })())
}

/// # Safety
/// `msg` points to a valid `msghdr`.
pub unsafe fn sendmsg(c: &dyn Calls, fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    if msg.is_null() {
        return size(Err(Errno::EFAULT));
    }
    let m = &*msg;
    sendv(c, fd, m.msg_iov, m.msg_iovlen as c_int, flags, m.msg_name as *const sockaddr, m.msg_namelen)
}

/// # Safety
/// `msg` points to a valid `msghdr`.
pub unsafe fn recvmsg(c: &dyn Calls, fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    if msg.is_null() {
        return size(Err(Errno::EFAULT));
    }
    let m = &mut *msg;
    m.msg_controllen = 0;
    let (name, nlen) = match m.msg_name.is_null() {
        true => (std::ptr::null_mut(), std::ptr::null_mut()),
        false => (m.msg_name as *mut sockaddr, &mut m.msg_namelen as *mut socklen_t),
    };
    recvv(c, fd, m.msg_iov, m.msg_iovlen as c_int, flags, name, nlen, &mut m.msg_flags)
}

/// The C type an option's value has.
fn is_timeval(level: c_int, name: c_int) -> bool {
    level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)
}

fn is_linger(level: c_int, name: c_int) -> bool {
    level == SOL_SOCKET && name == SO_LINGER
}

/// # Safety
/// `val` points to `len` readable bytes.
pub unsafe fn setsockopt(
    c: &dyn Calls,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    int((|| {
        if val.is_null() {
            return Err(Errno::EFAULT);
        }
        let v = if is_timeval(level, name) {
            if (len as usize) < std::mem::size_of::<libc::timeval>() {
                return Err(Errno::EINVAL);
            }
            let tv = &*(val as *const libc::timeval);
            if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
                return Err(Errno::EDOM);
            }
            OptVal::Time(Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64))
        } else if is_linger(level, name) {
            if (len as usize) < std::mem::size_of::<libc::linger>() {
                return Err(Errno::EINVAL);
            }
            let l = &*(val as *const libc::linger);
            OptVal::Linger(Linger { l_onoff: l.l_onoff, l_linger: l.l_linger })
        } else if (len as usize) >= 4 {
            OptVal::Int(std::ptr::read_unaligned(val as *const i32))
        } else if level == IPPROTO_IP && len >= 1 {
            // Linux's IP options take a single byte too (ip_setsockopt).
            OptVal::Int(*(val as *const u8) as i32)
        } else {
            return Err(Errno::EINVAL);
        };
        c.setsockopt(fd, level, name, v).map(|_| 0)
    })())
}

/// # Safety
/// `val` points to `*len` writable bytes.
pub unsafe fn getsockopt(
    c: &dyn Calls,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    int((|| {
        if val.is_null() || len.is_null() {
            return Err(Errno::EFAULT);
        }
        let v = c.getsockopt(fd, level, name)?;
        let write = |bytes: &[u8]| {
            let n = (*len as usize).min(bytes.len());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), val as *mut u8, n);
            *len = n as socklen_t;
        };
        match v {
            OptVal::Int(i) => write(&i.to_ne_bytes()),
            OptVal::Time(d) => {
                let tv = libc::timeval { tv_sec: d.as_secs() as _, tv_usec: d.subsec_micros() as _ };
                write(std::slice::from_raw_parts(&tv as *const _ as *const u8, std::mem::size_of_val(&tv)))
            }
            OptVal::Linger(l) => {
                let lg = libc::linger { l_onoff: l.l_onoff, l_linger: l.l_linger };
                write(std::slice::from_raw_parts(&lg as *const _ as *const u8, std::mem::size_of_val(&lg)))
            }
        }
        Ok(0)
    })())
}

/// ioctl(2): FIONBIO (`*arg` nonzero sets O_NONBLOCK) and FIONREAD (bytes
/// readable now: a stream's queued bytes, a datagram socket's next datagram).
///
/// # Safety
/// `arg` points to an `int`.
pub unsafe fn ioctl(c: &dyn Calls, fd: c_int, request: libc::c_ulong, arg: *mut c_int) -> c_int {
    int((|| {
        if arg.is_null() {
            return Err(Errno::EFAULT);
        }
        match request {
            FIONBIO => {
                let fl = c.fcntl(fd, F_GETFL, 0)?;
                let fl = if *arg != 0 { fl | O_NONBLOCK } else { fl & !O_NONBLOCK };
                c.fcntl(fd, F_SETFL, fl).map(|_| 0)
            }
            FIONREAD => {
                let mut scratch = vec![0u8; MAX_GATHER];
                *arg = match c.recvmsg(fd, &mut scratch, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) {
                    Ok(m) => m.len as c_int,
                    Err(Errno::EAGAIN) => 0,
                    Err(e) => return Err(e),
                };
                Ok(0)
            }
            _ => Err(Errno(libc::ENOTTY)),
        }
    })())
}

/// # Safety
/// `fds` holds `n` valid `pollfd`s.
pub unsafe fn poll(c: &dyn Calls, fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    if n > 0 && fds.is_null() {
        return int(Err(Errno::EFAULT));
    }
    let raw = if n == 0 { &mut [][..] } else { std::slice::from_raw_parts_mut(fds, n as usize) };
    let mut polls: Vec<PollFd> = raw.iter().map(|p| PollFd::new(p.fd, p.events)).collect();
    let r = c.poll(&mut polls, timeout);
    for (p, q) in raw.iter_mut().zip(&polls) {
        p.revents = q.revents;
    }
    int(r.map(|n| n as i32))
}

/// select(2) over poll, as Linux's: errors and hang-ups count as readable and writable.
///
/// # Safety
/// The sets are valid or null; `tv` is valid or null.
pub unsafe fn select(
    c: &dyn Calls,
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tv: *mut libc::timeval,
) -> c_int {
    if !(0..=FD_SETSIZE as c_int).contains(&nfds) {
        return int(Err(Errno::EINVAL));
    }
    let has = |s: *mut libc::fd_set, fd: c_int| !s.is_null() && libc::FD_ISSET(fd, s);
    let mut polls = Vec::new();
    for fd in 0..nfds {
        let ev = (if has(r, fd) { POLLIN } else { 0 })
            | (if has(w, fd) { POLLOUT } else { 0 })
            | (if has(e, fd) { POLLPRI } else { 0 });
        if ev != 0 {
            polls.push(PollFd::new(fd, ev));
        }
    }
    // time_t and suseconds_t are i64 here but not on every target.
    #[allow(clippy::unnecessary_cast)]
    let ms = if tv.is_null() {
        -1
    } else {
        ((*tv).tv_sec as i64 * 1000 + (*tv).tv_usec as i64 / 1000).min(i32::MAX as i64) as i32
    };
    if let Err(err) = c.poll(&mut polls, ms) {
        return int(Err(err));
    }
    if polls.iter().any(|p| p.revents & POLLNVAL != 0) {
        return int(Err(Errno::EBADF));
    }
    for s in [r, w, e] {
        if !s.is_null() {
            libc::FD_ZERO(s);
        }
    }
    let mut count = 0;
    for p in &polls {
        let rv = p.revents;
        let mut mark = |s: *mut libc::fd_set, cond: bool| {
            if cond {
                libc::FD_SET(p.fd, s);
                count += 1;
            }
        };
        mark(r, p.events & POLLIN != 0 && rv & (POLLIN | POLLERR | POLLHUP) != 0);
        mark(w, p.events & POLLOUT != 0 && rv & (POLLOUT | POLLERR) != 0);
        mark(e, p.events & POLLPRI != 0 && rv & POLLPRI != 0);
    }
    count
}
