//! packetdrill's shared-object interface (`--so_filename`): the C shim's
//! `packetdrill_interface_init` fills packetdrill's struct with these functions,
//! whose `userdata` is a [`VirtualHost`]. Socket calls are the same C marshalling
//! as the `tapstack_*` calls; `netdev_send`/`netdev_receive` carry IP datagrams
//! in and out; `usleep`/`gettimeofday` are the virtual clock. packetdrill spins
//! on gettimeofday for the last microseconds before an event, so every reading
//! moves the clock on by [`TICK_USECS`].
//!
//! Flags (`--so_flags`, comma-separated): `ip=A.B.C.D/N` (default
//! 192.168.0.2/16, as the runner's `--local_ip`), `gw=A.B.C.D` (192.168.0.1),
//! `mtu=N` (1500), `seed=N` (1), `rcvbuf=N` and `sndbuf=N` (new sockets' TCP
//! buffers in bytes; the receive buffer decides our window scale),
//! `syncookies=N` (as Linux's net.ipv4.tcp_syncookies: 0, 1 the default, or
//! 2 to answer every SYN with a cookie).

// Safety, for every tapstack_pd_* function: `ud` is the pointer from
// tapstack_pd_new, and the other arguments keep libc's contract for that call.
#![allow(clippy::missing_safety_doc)]

use crate::abi;
use crate::calls::Calls;
use crate::virtual_host::{packetdrill_config, VirtualHost};
use libc::{c_char, c_int, c_void, iovec, msghdr, sockaddr, socklen_t, ssize_t};
use stack::Config;
use std::ffi::CStr;
use std::time::Duration;

/// How far one gettimeofday moves the virtual clock, in microseconds.
const TICK_USECS: u64 = 1;

/// The configuration `flags` asks for, or the reason it cannot be made.
pub fn config_from_flags(flags: &str) -> Result<Config, String> {
    let mut c = packetdrill_config();
    for kv in flags.split([',', ' ']).filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("flag {kv:?} is not key=value"))?;
        let bad = |_| format!("bad value in {kv:?}");
        match k {
            "ip" => {
                let (a, p) = v.split_once('/').unwrap_or((v, "16"));
                c.addr = a.parse().map_err(|_| format!("bad address in {kv:?}"))?;
                c.prefix_len = p.parse().map_err(bad)?;
            }
            "gw" => c.gateway = Some(v.parse().map_err(|_| format!("bad address in {kv:?}"))?),
            "mtu" => c.mtu = v.parse().map_err(bad)?,
            "seed" => c.seed = v.parse().map_err(bad)?,
            "rcvbuf" => c.tcp.default_options.recv_buffer = v.parse().map_err(bad)?,
            "sndbuf" => c.tcp.default_options.send_buffer = v.parse().map_err(bad)?,
            "syncookies" => {
                // Linux's sysctl: 0 never, 1 when the SYN queue is full, 2 always.
                let n: u8 = v.parse().map_err(bad)?;
                (c.tcp.syn_cookies, c.tcp.syn_cookies_always) = (n >= 1, n == 2);
            }
            _ => return Err(format!("unknown flag {k:?}")),
        }
    }
    Ok(c)
}

unsafe fn host<'a>(ud: *mut c_void) -> &'a VirtualHost {
    &*(ud as *const VirtualHost)
}

/// A new [`VirtualHost`] for packetdrill, configured by `flags` (may be null).
/// Exits the process with a message when the flags are wrong: packetdrill
/// cannot be told otherwise.
///
/// # Safety
/// `flags` is a NUL-terminated string or null.
#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_new(flags: *const c_char) -> *mut c_void {
    let flags = if flags.is_null() { "" } else { CStr::from_ptr(flags).to_str().unwrap_or("") };
    match config_from_flags(flags).and_then(VirtualHost::new) {
        Ok(h) => Box::into_raw(Box::new(h)) as *mut c_void,
        Err(e) => {
            eprintln!("libtapstack: --so_flags={flags:?}: {e}");
            std::process::exit(1);
        }
    }
}

extern "C" {
    /// The C shim: fills packetdrill's struct with `ud` and the `tapstack_pd_*` functions.
    fn tapstack_pd_fill(ud: *mut c_void, ifc: *mut c_void);
}

/// What packetdrill's `--so_filename` looks up: a new [`VirtualHost`] configured
/// by `flags`, and `ifc` (packetdrill's `struct packetdrill_interface`) filled.
///
/// # Safety
/// `flags` as [`tapstack_pd_new`]; `ifc` points to packetdrill's struct.
#[no_mangle]
pub unsafe extern "C" fn packetdrill_interface_init(flags: *const c_char, ifc: *mut c_void) {
    tapstack_pd_fill(tapstack_pd_new(flags), ifc);
}

/// # Safety
/// `ud` came from [`tapstack_pd_new`] and is not used again.
#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_free(ud: *mut c_void) {
    if !ud.is_null() {
        drop(Box::from_raw(ud as *mut VirtualHost));
    }
}

/// # Safety
/// `ud` from [`tapstack_pd_new`]; `buf` holds `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_netdev_send(ud: *mut c_void, buf: *const c_void, count: usize) -> c_int {
    host(ud).inject(std::slice::from_raw_parts(buf as *const u8, count));
    0
}

/// The next datagram the stack sends (moving virtual time on to it if needed).
/// `*count` 0 when none comes within the horizon: packetdrill then reports the
/// packet it was waiting for as missing.
///
/// # Safety
/// `ud` from [`tapstack_pd_new`]; `buf` holds `*count` bytes.
#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_netdev_receive(
    ud: *mut c_void,
    buf: *mut c_void,
    count: *mut usize,
    time_usecs: *mut i64,
) -> c_int {
    let h = host(ud);
    match h.next_datagram() {
        Some((d, t)) => {
            let n = d.len().min(*count);
            std::ptr::copy_nonoverlapping(d.as_ptr(), buf as *mut u8, n);
            *count = n;
            *time_usecs = t as i64;
        }
        None => {
            eprintln!("libtapstack: the stack sent nothing within the receive horizon");
            *count = 0;
            *time_usecs = h.now_usecs() as i64;
        }
    }
    0
}

/// # Safety
/// `ud` from [`tapstack_pd_new`].
#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_usleep(ud: *mut c_void, usecs: u32) -> c_int {
    host(ud).advance(Duration::from_micros(usecs as u64));
    0
}

/// # Safety
/// `ud` from [`tapstack_pd_new`]; `tv` valid or null.
#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_gettimeofday(ud: *mut c_void, tv: *mut libc::timeval, _tz: *mut c_void) -> c_int {
    let h = host(ud);
    h.advance(Duration::from_micros(TICK_USECS));
    let t = h.now_usecs();
    if !tv.is_null() {
        (*tv).tv_sec = (t / 1_000_000) as _;
        (*tv).tv_usec = (t % 1_000_000) as _;
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_socket(ud: *mut c_void, domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    abi::int(host(ud).socket(domain, ty, protocol))
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_bind(ud: *mut c_void, fd: c_int, a: *const sockaddr, l: socklen_t) -> c_int {
    abi::bind(host(ud), fd, a, l)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_listen(ud: *mut c_void, fd: c_int, backlog: c_int) -> c_int {
    abi::int(host(ud).listen(fd, backlog).map(|_| 0))
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_accept(ud: *mut c_void, fd: c_int, a: *mut sockaddr, l: *mut socklen_t) -> c_int {
    abi::accept4(host(ud), fd, a, l, 0)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_connect(ud: *mut c_void, fd: c_int, a: *const sockaddr, l: socklen_t) -> c_int {
    abi::connect(host(ud), fd, a, l)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_read(ud: *mut c_void, fd: c_int, buf: *mut c_void, n: usize) -> ssize_t {
    abi::recvfrom(host(ud), fd, buf, n, 0, std::ptr::null_mut(), std::ptr::null_mut())
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_readv(ud: *mut c_void, fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    let null = std::ptr::null_mut::<c_void>();
    abi::recvv(host(ud), fd, iov, n, 0, null as *mut sockaddr, null as *mut socklen_t, null as *mut c_int)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_recv(ud: *mut c_void, fd: c_int, buf: *mut c_void, n: usize, f: c_int) -> ssize_t {
    abi::recvfrom(host(ud), fd, buf, n, f, std::ptr::null_mut(), std::ptr::null_mut())
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_recvfrom(
    ud: *mut c_void,
    fd: c_int,
    buf: *mut c_void,
    n: usize,
    f: c_int,
    a: *mut sockaddr,
    l: *mut socklen_t,
) -> ssize_t {
    abi::recvfrom(host(ud), fd, buf, n, f, a, l)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_recvmsg(ud: *mut c_void, fd: c_int, m: *mut msghdr, f: c_int) -> ssize_t {
    abi::recvmsg(host(ud), fd, m, f)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_write(ud: *mut c_void, fd: c_int, buf: *const c_void, n: usize) -> ssize_t {
    abi::sendto(host(ud), fd, buf, n, 0, std::ptr::null(), 0)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_writev(ud: *mut c_void, fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    abi::sendv(host(ud), fd, iov, n, 0, std::ptr::null(), 0)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_send(
    ud: *mut c_void,
    fd: c_int,
    buf: *const c_void,
    n: usize,
    f: c_int,
) -> ssize_t {
    abi::sendto(host(ud), fd, buf, n, f, std::ptr::null(), 0)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_sendto(
    ud: *mut c_void,
    fd: c_int,
    buf: *const c_void,
    n: usize,
    f: c_int,
    a: *const sockaddr,
    l: socklen_t,
) -> ssize_t {
    abi::sendto(host(ud), fd, buf, n, f, a, l)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_sendmsg(ud: *mut c_void, fd: c_int, m: *const msghdr, f: c_int) -> ssize_t {
    abi::sendmsg(host(ud), fd, m, f)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_fcntl_int(ud: *mut c_void, fd: c_int, cmd: c_int, arg: c_int) -> c_int {
    abi::int(host(ud).fcntl(fd, cmd, arg))
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_ioctl_ptr(
    ud: *mut c_void,
    fd: c_int,
    req: libc::c_ulong,
    arg: *mut c_int,
) -> c_int {
    abi::ioctl(host(ud), fd, req, arg)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_close(ud: *mut c_void, fd: c_int) -> c_int {
    abi::int(host(ud).close(fd).map(|_| 0))
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_shutdown(ud: *mut c_void, fd: c_int, how: c_int) -> c_int {
    abi::int(host(ud).shutdown(fd, how).map(|_| 0))
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_getsockopt(
    ud: *mut c_void,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    abi::getsockopt(host(ud), fd, level, name, val, len)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_setsockopt(
    ud: *mut c_void,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    abi::setsockopt(host(ud), fd, level, name, val, len)
}

#[no_mangle]
pub unsafe extern "C" fn tapstack_pd_poll(ud: *mut c_void, fds: *mut libc::pollfd, n: libc::nfds_t, t: c_int) -> c_int {
    abi::poll(host(ud), fds, n, t)
}
