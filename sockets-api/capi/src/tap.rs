//! The C calls over a stack on a TAP: `tapstack_start` opens the TAP and starts
//! the runtime thread (one stack per process), and every `tapstack_*` socket call
//! goes to it, with libc's conventions (see `abi.rs`). Before `tapstack_start` and
//! after `tapstack_stop` the calls fail with ENETDOWN.

use crate::abi::{self, set_errno};
use crate::calls::Calls;
use libc::{c_char, c_int, c_void, iovec, msghdr, sockaddr, socklen_t, ssize_t};
use sockets_api::{Errno, Net, Runtime};
use stack::{Config, MacAddr};
use std::ffi::CStr;
use std::net::Ipv4Addr;
use std::sync::Mutex;

/// The process's one stack, and a handle for its calls.
static STACK: Mutex<Option<(Runtime, Net)>> = Mutex::new(None);

/// A handle on the running stack, taken without holding the lock during the call.
fn net() -> Option<Net> {
    STACK.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(_, n)| n.clone())
}

/// Runs `f` with the stack's calls, or fails with ENETDOWN (returning `fail`).
fn with<R>(fail: R, f: impl FnOnce(&dyn Calls) -> R) -> R {
    match net() {
        Some(n) => f(&n),
        None => {
            set_errno(Errno::ENETDOWN);
            fail
        }
    }
}

/// "10.0.0.2/24" into its address and prefix length.
fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, p) = s.split_once('/').unwrap_or((s, "24"));
    let p: u8 = p.parse().ok().filter(|&p| (1..=32).contains(&p))?;
    Some((a.parse().ok()?, p))
}

unsafe fn c_str<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        None
    } else {
        CStr::from_ptr(p).to_str().ok()
    }
}

/// Starts a stack on TAP `tap` (created if needed: CAP_NET_ADMIN) with address
/// `cidr` ("10.0.0.2/24") and, if not null, default gateway `gateway`. Its MAC is
/// 02:00 followed by the address. Returns 0, or -1 with errno: EINVAL (a bad
/// argument), EALREADY (a stack is running), or the error opening the TAP.
///
/// # Safety
/// The arguments are NUL-terminated strings (`gateway` may be null).
#[no_mangle]
pub unsafe extern "C" fn tapstack_start(tap: *const c_char, cidr: *const c_char, gateway: *const c_char) -> c_int {
    let (Some(tap), Some((addr, prefix))) = (c_str(tap), c_str(cidr).and_then(parse_cidr)) else {
        set_errno(Errno::EINVAL);
        return -1;
    };
    let gateway = match c_str(gateway) {
        Some(g) => match g.parse() {
            Ok(g) => Some(g),
            Err(_) => {
                set_errno(Errno::EINVAL);
                return -1;
            }
        },
        None => None,
    };
    let mut slot = STACK.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        set_errno(Errno::EALREADY);
        return -1;
    }
    let o = addr.octets();
    let mut config = Config::new(MacAddr([2, 0, o[0], o[1], o[2], o[3]]), addr, prefix);
    config.gateway = gateway;
    config.seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    match Runtime::start_on_tap(tap, config) {
        Ok(rt) => {
            let net = rt.net();
            *slot = Some((rt, net));
            0
        }
        Err(e) => {
            set_errno(Errno(e.raw_os_error().unwrap_or(libc::EIO)));
            -1
        }
    }
}

/// Stops the stack started by [`tapstack_start`]; its descriptors are gone.
/// Returns 0, or -1 with errno ENETDOWN when none runs.
#[no_mangle]
pub extern "C" fn tapstack_stop() -> c_int {
    let taken = STACK.lock().unwrap_or_else(|e| e.into_inner()).take();
    match taken {
        Some((rt, _)) => abi::int(rt.stop().map(|_| 0).map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EIO)))),
        None => abi::int(Err(Errno::ENETDOWN)),
    }
}

#[no_mangle]
pub extern "C" fn tapstack_socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    with(-1, |c| abi::int(c.socket(domain, ty, protocol)))
}

/// # Safety
/// libc's bind(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    with(-1, |c| abi::bind(c, fd, addr, len))
}

#[no_mangle]
pub extern "C" fn tapstack_listen(fd: c_int, backlog: c_int) -> c_int {
    with(-1, |c| abi::int(c.listen(fd, backlog).map(|_| 0)))
}

/// # Safety
/// libc's accept(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    with(-1, |c| abi::accept4(c, fd, addr, len, 0))
}

/// # Safety
/// libc's accept4(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    with(-1, |c| abi::accept4(c, fd, addr, len, flags))
}

/// # Safety
/// libc's connect(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    with(-1, |c| abi::connect(c, fd, addr, len))
}

/// # Safety
/// libc's send(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> ssize_t {
    with(-1, |c| abi::sendto(c, fd, buf, len, flags, std::ptr::null(), 0))
}

/// # Safety
/// libc's sendto(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_sendto(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    with(-1, |c| abi::sendto(c, fd, buf, len, flags, addr, alen))
}

/// # Safety
/// libc's recv(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> ssize_t {
    with(-1, |c| abi::recvfrom(c, fd, buf, len, flags, std::ptr::null_mut(), std::ptr::null_mut()))
}

/// # Safety
/// libc's recvfrom(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    with(-1, |c| abi::recvfrom(c, fd, buf, len, flags, addr, alen))
}

/// # Safety
/// libc's sendmsg(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    with(-1, |c| abi::sendmsg(c, fd, msg, flags))
}

/// # Safety
/// libc's recvmsg(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    with(-1, |c| abi::recvmsg(c, fd, msg, flags))
}

/// # Safety
/// libc's read(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_read(fd: c_int, buf: *mut c_void, len: usize) -> ssize_t {
    tapstack_recv(fd, buf, len, 0)
}

/// # Safety
/// libc's write(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_write(fd: c_int, buf: *const c_void, len: usize) -> ssize_t {
    tapstack_send(fd, buf, len, 0)
}

/// # Safety
/// libc's readv(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    let null = std::ptr::null_mut();
    with(-1, |c| abi::recvv(c, fd, iov, n, 0, null, null as *mut socklen_t, null as *mut c_int))
}

/// # Safety
/// libc's writev(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    with(-1, |c| abi::sendv(c, fd, iov, n, 0, std::ptr::null(), 0))
}

#[no_mangle]
pub extern "C" fn tapstack_shutdown(fd: c_int, how: c_int) -> c_int {
    with(-1, |c| abi::int(c.shutdown(fd, how).map(|_| 0)))
}

#[no_mangle]
pub extern "C" fn tapstack_close(fd: c_int) -> c_int {
    with(-1, |c| abi::int(c.close(fd).map(|_| 0)))
}

/// # Safety
/// libc's getsockopt(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    with(-1, |c| abi::getsockopt(c, fd, level, name, val, len))
}

/// # Safety
/// libc's setsockopt(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    with(-1, |c| abi::setsockopt(c, fd, level, name, val, len))
}

/// # Safety
/// libc's getsockname(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    with(-1, |c| abi::int(c.getsockname(fd).and_then(|a| abi::sockaddr_out(a, addr, len)).map(|_| 0)))
}

/// # Safety
/// libc's getpeername(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    with(-1, |c| abi::int(c.getpeername(fd).and_then(|a| abi::sockaddr_out(a, addr, len)).map(|_| 0)))
}

/// fcntl(2) with an `int` argument; the C shim's variadic `tapstack_fcntl` calls it.
#[no_mangle]
pub extern "C" fn tapstack_fcntl_int(fd: c_int, cmd: c_int, arg: c_int) -> c_int {
    with(-1, |c| abi::int(c.fcntl(fd, cmd, arg)))
}

/// ioctl(2) with an `int *` argument; the C shim's variadic `tapstack_ioctl` calls it.
///
/// # Safety
/// `arg` points to an `int`.
#[no_mangle]
pub unsafe extern "C" fn tapstack_ioctl_ptr(fd: c_int, request: libc::c_ulong, arg: *mut c_int) -> c_int {
    with(-1, |c| abi::ioctl(c, fd, request, arg))
}

/// poll(2) over the stack's sockets and the kernel's descriptors (stdin, pipes,
/// files) in one array, as [`sockets_api::Net::poll`].
///
/// # Safety
/// libc's poll(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    with(-1, |c| abi::poll(c, fds, n, timeout))
}

/// select(2) over the stack's sockets and the kernel's descriptors in one set.
///
/// # Safety
/// libc's select(2) contract.
#[no_mangle]
pub unsafe extern "C" fn tapstack_select(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tv: *mut libc::timeval,
) -> c_int {
    with(-1, |c| abi::select(c, nfds, r, w, e, tv))
}
