//! A Linux TAP interface: the kernel hands us every Ethernet frame it sends out
//! of the interface, and takes every frame we write as if it had arrived on it.
//!
//! Opening a TAP attaches to an existing one (made with `ip tuntap add dev NAME
//! mode tap [user USER]`) or creates a transient one, which needs root or
//! CAP_NET_ADMIN. Bringing it up and giving the kernel side an address is the
//! caller's job (`ip link set NAME up`, `ip addr add ...`); the stack does not
//! configure the host.
//!
//! Sizes: the MTU is fixed at [`MTU`] (the kernel's default for a TAP), so frames
//! are at most [`MAX_FRAME`] bytes (no FCS on a TAP). Receive into a buffer of at
//! least [`RECV_BUF`] bytes, which leaves room for a VLAN tag the kernel may add.
//!
//! With offloads ([`TapDevice::open_offloaded`]) the TAP is opened with the
//! virtio-net header (`IFF_VNET_HDR`, [`super::vnet`]) and offered checksum
//! offload and TSO for IPv4 (`TUNSETOFFLOAD` with `TUN_F_CSUM | TUN_F_TSO4`):
//! the kernel then hands over TCP segments of up to 64 KiB (its GSO segments,
//! no longer cut to the MTU) with checksums it vouches for, one read each. Read
//! those with [`Device::recv_offloaded`] into a buffer of [`crate::offload::MAX_GSO_FRAME`]
//! bytes; the header is read into a buffer of its own (readv), so the frame
//! lands where a plain one would. Frames we write get an empty header.
//!
//! The few ioctls are made here with libc rather than through a TAP crate:
//! tun-tap (used before) cannot set `IFF_VNET_HDR`, and tun-rs, which can,
//! splits the kernel's GSO segments in userspace and brings a large API for
//! TUN, multi-queue and async runtimes that this needs none of.

use super::vnet::{VnetHdr, HDR_LEN};
use super::Device;
use crate::offload::{Offloads, RxOffload, TxOffload};
use crate::time::Instant;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// The IP MTU of the TAP, in bytes.
pub const MTU: usize = 1500;
/// The largest frame the TAP carries: an Ethernet header (14 bytes) plus [`MTU`].
pub const MAX_FRAME: usize = 14 + MTU;
/// The smallest receive buffer that always holds a frame: [`MAX_FRAME`] plus a
/// 4-byte 802.1Q tag.
pub const RECV_BUF: usize = MAX_FRAME + 4;

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
const MAX_NAME: usize = 15;

/// A TAP interface, nonblocking.
pub struct TapDevice {
    file: File,
    name: String,
    /// Opened with the virtio-net header and offloads.
    vnet: bool,
    tx_dropped: u64,
    /// Of those, frames written while the link was down.
    tx_link_down: u64,
}

impl TapDevice {
    /// Opens the TAP named `name`, creating it if it does not exist (which needs
    /// CAP_NET_ADMIN), and makes it nonblocking; raises the kernel's queue of
    /// frames for us to [`QUEUE_LEN`] if it may. An empty name lets the kernel
    /// choose one (`tap0`, ...): see [`TapDevice::name`].
    pub fn open(name: &str) -> io::Result<TapDevice> {
        TapDevice::open_with(name, false, false)
    }

    /// [`TapDevice::open`] of a TAP this process has just closed (the fallback
    /// from [`TapDevice::open_napi`] when its thread cannot be had): the kernel
    /// may not have let go of the old one yet (busy, seen under load), so a
    /// busy TAP is tried again every 10 ms for up to a second.
    pub fn reopen(name: &str) -> io::Result<TapDevice> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            match TapDevice::open(name) {
                Err(e) if e.kind() == io::ErrorKind::ResourceBusy && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                r => return r,
            }
        }
    }

    /// Opens the TAP as [`TapDevice::open`] does (plain frames), with
    /// `IFF_NAPI`: the kernel takes the frames we write in a NAPI context.
    /// Make that a thread of its own ([`super::napi::set_threaded`]) or do
    /// not use this: see [`super::napi`].
    pub fn open_napi(name: &str) -> io::Result<TapDevice> {
        TapDevice::open_with(name, false, true)
    }

    /// Opens the TAP as [`TapDevice::open`] does, with the virtio-net header and
    /// the kernel's checksum and TCP/IPv4 segmentation offloads (see the module's
    /// documentation). A persistent TAP (`ip tuntap add`) takes the flags of
    /// the process that attaches to it, with or without the header. A kernel
    /// without these (or a TUN driver that refuses them) makes this fail: the
    /// caller may then open the TAP plainly (`tapstack up` does, and says so).
    pub fn open_offloaded(name: &str) -> io::Result<TapDevice> {
        TapDevice::open_with(name, true, false)
    }

    fn open_with(name: &str, vnet: bool, napi: bool) -> io::Result<TapDevice> {
        if name.len() > MAX_NAME || name.contains(|c: char| c == '/' || c == '\0' || c.is_whitespace()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot open TAP {name:?}: not a valid interface name (at most {MAX_NAME} bytes, no '/', NUL or spaces)"),
            ));
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|e| explain_open_error(name, e))?;
        let name = set_iff(&file, name, vnet, napi).map_err(|e| explain_open_error(name, e))?;
        raise_queue_len(&name);
        if vnet {
            set_offloads(&file).map_err(|e| io::Error::new(e.kind(), format!("TAP '{name}': offloads: {e}")))?;
        }
        if napi {
            bound_napi_queue(&file)
                .map_err(|e| io::Error::new(e.kind(), format!("TAP '{name}': TUNSETSNDBUF: {e}")))?;
        }
        set_nonblocking(file.as_raw_fd())
            .map_err(|e| io::Error::new(e.kind(), format!("cannot make TAP '{name}' nonblocking: {e}")))?;
        Ok(TapDevice { file, name, vnet, tx_dropped: 0, tx_link_down: 0 })
    }

    /// The TAP's send buffer (TUNGETSNDBUF): what bounds the kernel's queue of
    /// frames we wrote, with `IFF_NAPI` ([`NAPI_QUEUE_BYTES`]; INT_MAX otherwise).
    pub fn send_buffer(&self) -> io::Result<i32> {
        let mut size: libc::c_int = 0;
        // SAFETY: TUNGETSNDBUF writes an int through the pointer, which lives across the call.
        if unsafe { libc::ioctl(self.file.as_raw_fd(), libc::TUNGETSNDBUF, &mut size as *mut libc::c_int) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(size)
    }

    /// The interface's name as the kernel knows it (it may differ from the one
    /// asked for, e.g. when that was empty).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The IP MTU, [`MTU`].
    pub fn mtu(&self) -> usize {
        MTU
    }

    /// Frames dropped on send: the kernel's queue was full, or the link was down.
    pub fn tx_dropped(&self) -> u64 {
        self.tx_dropped
    }

    /// Frames dropped because the link was down (EIO), a subset of [`TapDevice::tx_dropped`].
    pub fn tx_link_down(&self) -> u64 {
        self.tx_link_down
    }

    /// Reads one frame (and, with offloads, its header) into `buf`.
    fn read_frame(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, RxOffload)>> {
        let mut hdr = [0u8; HDR_LEN];
        loop {
            let r = match self.vnet {
                // SAFETY: both iovecs point into live buffers of the lengths given.
                true => unsafe {
                    let iov = [iovec(hdr.as_mut_ptr(), HDR_LEN), iovec(buf.as_mut_ptr(), buf.len())];
                    raw_io(libc::SYS_readv, self.file.as_raw_fd(), iov.as_ptr() as usize, 2)
                },
                // SAFETY: buf is a live buffer of buf.len() bytes.
                false => unsafe { raw_io(libc::SYS_read, self.file.as_raw_fd(), buf.as_mut_ptr() as usize, buf.len()) },
            };
            if r >= 0 {
                let n = r as usize;
                if !self.vnet {
                    return Ok(Some((n.min(buf.len()), RxOffload::NONE)));
                }
                // Shorter than its header: an empty frame, which the stack counts as truncated.
                let rx = VnetHdr::decode(&hdr).rx_offload();
                return Ok(Some((n.saturating_sub(HDR_LEN).min(buf.len()), rx)));
            }
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                io::ErrorKind::Interrupted => continue,
                _ => Err(io::Error::new(e.kind(), format!("TAP '{}': read: {e}", self.name))),
            };
        }
    }

    /// Writes one frame, with offloads behind the header that asks for `tx`
    /// (none: an empty one). Returns the errno of a failure.
    fn write_frame(&mut self, frame: &[u8], tx: TxOffload) -> io::Result<()> {
        let hdr = VnetHdr::for_frame(frame, tx).encode();
        loop {
            let r = match self.vnet {
                // SAFETY: both iovecs point into live buffers; writev only reads them.
                true => unsafe {
                    let iov = [iovec(hdr.as_ptr().cast_mut(), HDR_LEN), iovec(frame.as_ptr().cast_mut(), frame.len())];
                    raw_io(libc::SYS_writev, self.file.as_raw_fd(), iov.as_ptr() as usize, 2)
                },
                // SAFETY: frame is a live buffer of frame.len() bytes.
                false => unsafe {
                    raw_io(libc::SYS_write, self.file.as_raw_fd(), frame.as_ptr() as usize, frame.len())
                },
            };
            if r >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// One piece of a read or write with offloads (the header, or the frame).
fn iovec(base: *mut u8, len: usize) -> libc::iovec {
    libc::iovec { iov_base: base.cast(), iov_len: len }
}

/// The least length of the TAP's queue of frames from the kernel to us (the
/// interface's txqueuelen; `ip tuntap add` makes it 1000): raised to this
/// when the TAP is opened, as a NIC's driver sizes its receive ring. A burst
/// of connections overflowed 1000 (1,000 connects at once bring about 3,000
/// frames, and each of our answers makes the kernel queue more while we write
/// it): the clients' first data was dropped and resent only after their
/// 200 ms timeout (connections bench, BENCHMARKS.md).
pub const QUEUE_LEN: i32 = 4096;

/// Raises TAP `name`'s txqueuelen to [`QUEUE_LEN`] if it is shorter; best
/// effort (it takes CAP_NET_ADMIN, which opening a TAP one owns does not).
fn raise_queue_len(name: &str) {
    // SAFETY: plain system call; the descriptor is closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return;
    }
    // SAFETY: ifreq is plain data, all zeroes a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &b) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = b as libc::c_char;
    }
    // SAFETY: SIOCGIFTXQLEN and SIOCSIFTXQLEN read and write the ifreq, which
    // lives across the calls; the length is its int member (ifr_qlen in C,
    // the slot ifru_metric shares). `sock` is ours, closed once.
    unsafe {
        let r = &mut req as *mut libc::ifreq;
        if libc::ioctl(sock, libc::SIOCGIFTXQLEN, r) == 0 && (*r).ifr_ifru.ifru_metric < QUEUE_LEN {
            (*r).ifr_ifru.ifru_metric = QUEUE_LEN;
            libc::ioctl(sock, libc::SIOCSIFTXQLEN, r);
        }
        libc::close(sock);
    }
}

/// The most the kernel holds of the frames we wrote to a TAP with `IFF_NAPI`
/// that its NAPI thread has not taken yet, in bytes of its buffers (skb
/// truesize, about 2.3 KiB per full frame: some 7,000 frames). Without a
/// bound that queue is unbounded (the TAP's send buffer is INT_MAX): a
/// writer faster than the thread would grow it without end. Beyond it, a
/// write fails with EAGAIN, counted as a drop ([`TapDevice::tx_dropped`]).
/// 16 MiB holds what a few connections keep in flight at once (4 MiB of data
/// each at most, `tcp::AUTOTUNE_WMEM_MAX`, about 6.6 MiB of truesize), so
/// that a bulk sender's writes are not refused when the thread falls behind.
/// Linux's queue for frames written to a TAP without NAPI:
/// netdev_max_backlog, 1000 frames.
pub const NAPI_QUEUE_BYTES: libc::c_int = 16 << 20;

/// TUNSETSNDBUF: bounds the queue of an `IFF_NAPI` TAP ([`NAPI_QUEUE_BYTES`]).
fn bound_napi_queue(file: &File) -> io::Result<()> {
    // SAFETY: TUNSETSNDBUF reads an int through the pointer, which lives across the call.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETSNDBUF, &NAPI_QUEUE_BYTES as *const libc::c_int) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// TUNSETIFF: attaches `file` to the TAP `name` (created if missing), without
/// the packet-information prefix, with the virtio-net header if `vnet`, with
/// `IFF_NAPI` if `napi`.
/// Returns the name the kernel gave it.
fn set_iff(file: &File, name: &str, vnet: bool, napi: bool) -> io::Result<String> {
    // SAFETY: ifreq is plain data, all zeroes a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &b) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = b as libc::c_char;
    }
    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
    if vnet {
        flags |= libc::IFF_VNET_HDR;
    }
    if napi {
        flags |= libc::IFF_NAPI;
    }
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes an ifreq, which lives across the call.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut libc::ifreq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = req.ifr_name.iter().position(|&c| c == 0).unwrap_or(req.ifr_name.len());
    Ok(req.ifr_name[..len].iter().map(|&c| c as u8 as char).collect())
}

/// TUNSETVNETHDRSZ (the 10-byte header) and TUNSETOFFLOAD: the kernel may hand
/// us partial checksums and TCP/IPv4 GSO segments.
fn set_offloads(file: &File) -> io::Result<()> {
    let size: libc::c_int = HDR_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads an int through the pointer, which lives across the call.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETVNETHDRSZ, &size as *const libc::c_int) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let offloads = (libc::TUN_F_CSUM | libc::TUN_F_TSO4) as libc::c_ulong;
    // SAFETY: TUNSETOFFLOAD takes its flags as the integer argument itself.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETOFFLOAD, offloads) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Turns the bare errno of a failed open into a message that says what to do.
fn explain_open_error(name: &str, e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
            "/dev/net/tun is missing (load the tun module; in a container, pass the device in)".to_string()
        }
        Some(libc::EPERM) | Some(libc::EACCES) => "permission denied (need root or CAP_NET_ADMIN, \
             or a persistent TAP owned by this user: ip tuntap add dev NAME mode tap user USER)"
            .to_string(),
        Some(libc::EBUSY) => "it is already open in another process".to_string(),
        Some(libc::EINVAL) => "an interface of that name exists but is not a TAP (a TUN, or another kind), \
             or is a persistent TAP made with other flags (with or without the virtio-net header)"
            .to_string(),
        _ => e.to_string(),
    };
    io::Error::new(e.kind(), format!("cannot open TAP '{name}': {why}"))
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own, with integer arguments only.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl Device for TapDevice {
    /// Reads one frame. `buf` should be at least [`RECV_BUF`] bytes (with
    /// offloads, [`crate::offload::MAX_GSO_FRAME`]): the kernel silently truncates a frame that
    /// does not fit. With offloads, what the header said is lost here: use
    /// [`Device::recv_offloaded`].
    fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.read_frame(buf)?.map(|(n, _)| n))
    }

    fn recv_offloaded(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<(usize, RxOffload)>> {
        self.read_frame(buf)
    }

    fn offloads(&self) -> Offloads {
        match self.vnet {
            true => Offloads::TAP,
            false => Offloads::default(),
        }
    }

    /// Writes one frame. A full kernel queue drops the frame, as a busy NIC would,
    /// and counts it in [`TapDevice::tx_dropped`]; the stack's retransmissions deal
    /// with the loss.
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.send_offloaded(now, frame, TxOffload::NONE)
    }

    /// Writes one frame behind the virtio-net header that asks for `tx` (a GSO
    /// segment the kernel cuts, a checksum it fills in). Without offloads only
    /// a plain frame can be written (InvalidInput).
    fn send_offloaded(&mut self, _now: Instant, frame: &[u8], tx: TxOffload) -> io::Result<()> {
        if !self.vnet && tx != TxOffload::NONE {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "TAP opened without offloads"));
        }
        match self.write_frame(frame, tx) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS) => {
                self.tx_dropped += 1;
                Ok(())
            }
            // EIO: the link is down. That is the normal state of a TAP before
            // its user runs `ip link set NAME up`, as a cable not yet plugged
            // in: the frame is lost and counted, the stack keeps running.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                self.tx_dropped += 1;
                self.tx_link_down += 1;
                Ok(())
            }
            Err(e) => Err(io::Error::new(e.kind(), format!("TAP '{}': write: {e}", self.name))),
        }
    }

    fn readable_fd(&self) -> Option<RawFd> {
        Some(self.file.as_raw_fd())
    }
}

/// read(2), write(2), readv(2) or writev(2) (`nr`) on `fd`, by the system call
/// itself: glibc's wrappers make each a cancellation point, two more calls
/// into libc per frame (`__pthread_enable_asynccancel` and its undoing, 5-7%
/// of the runtime thread in the profiles of issue 11), and tapstack cancels
/// no thread. Returns what the wrapper would: the count, or -1 with errno set.
///
/// # Safety
/// `nr` must be one of those four, and `ptr` must point to a live buffer (an
/// iovec array for readv/writev) of `len` bytes (iovecs), writable for
/// read/readv.
unsafe fn raw_io(nr: libc::c_long, fd: i32, ptr: usize, len: usize) -> isize {
    // SAFETY: the caller's promise. syscall() takes each argument as a long,
    // so each is passed as one.
    unsafe { libc::syscall(nr, fd as libc::c_long, ptr as libc::c_long, len as libc::c_long) as isize }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn tap_rejects_invalid_names_clearly() {
        for name in ["a-name-far-too-long", "a/b", "a b"] {
            let err = TapDevice::open(name).err().expect("invalid name accepted");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains("not a valid interface name"), "{err}");
        }
    }

    #[test]
    fn tap_open_errors_name_the_interface_and_the_cause() {
        let e = explain_open_error("tap9", io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(
            e.to_string().starts_with("cannot open TAP 'tap9': permission denied (need root or CAP_NET_ADMIN"),
            "{e}"
        );
    }

    /// Runs `ip ARGS`, returning stderr on failure.
    fn ip(args: &[&str]) -> Result<(), String> {
        let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    /// A network namespace of our own, deleted on drop even if the test fails.
    struct Netns(String);

    impl Netns {
        fn create() -> Result<Netns, String> {
            let name = format!("tsdev-{}", std::process::id());
            ip(&["netns", "add", &name])?;
            Ok(Netns(name))
        }

        /// Moves the calling thread (only) into the namespace.
        fn enter(&self) -> Result<(), String> {
            let path = format!("/run/netns/{}", self.0);
            let file = std::fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
            // SAFETY: setns on a valid namespace fd; CLONE_NEWNET only affects this thread.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns {path}: {}", io::Error::last_os_error()));
            }
            Ok(())
        }

        fn ip(&self, args: &[&str]) -> Result<(), String> {
            let mut all = vec!["-n", self.0.as_str()];
            all.extend_from_slice(args);
            ip(&all)
        }

        fn read_sys(&self, path: &str) -> String {
            let out = Command::new("ip").args(["netns", "exec", &self.0, "cat", path]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            if let Err(e) = ip(&["netns", "del", &self.0]) {
                eprintln!("warning: could not delete netns {}: {e}", self.0);
            }
        }
    }

    /// Opens a TAP inside a fresh namespace, so the host's interfaces are never
    /// touched. With CI=true a test that cannot run fails; otherwise it is skipped
    /// with the reason.
    #[test]
    fn tap_in_fresh_netns_is_nonblocking_and_sends() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let netns = match Netns::create() {
            Ok(ns) => ns,
            Err(e) if ci => panic!("CI=true but cannot create a network namespace: {e}"),
            Err(e) => {
                eprintln!("skipping tap_in_fresh_netns_is_nonblocking_and_sends: {e} (needs root)");
                return;
            }
        };
        // setns changes the namespace of the calling thread for good, so do it on a
        // thread of our own rather than on the test harness's.
        let result = std::thread::scope(|s| s.spawn(|| run_tap_checks(&netns)).join());
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) if !ci && e.contains("permission denied") => {
                eprintln!("skipping tap_in_fresh_netns_is_nonblocking_and_sends: {e}")
            }
            Ok(Err(e)) => panic!("{e}"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    fn run_tap_checks(netns: &Netns) -> Result<(), String> {
        netns.enter()?;
        let mut tap = TapDevice::open("tsdev0").map_err(|e| e.to_string())?;
        assert_eq!(tap.name(), "tsdev0");
        assert_eq!(tap.mtu(), 1500);

        let fd = tap.readable_fd().expect("a TAP has an fd");
        // SAFETY: fcntl F_GETFL on an fd; fails with EBADF if it is not open.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert!(flags >= 0, "readable_fd is not an open fd");
        assert!(flags & libc::O_NONBLOCK != 0, "TAP fd is blocking");

        // No IPv6, so the kernel does not send router solicitations of its own.
        let _ = Command::new("ip")
            .args(["netns", "exec", &netns.0, "sysctl", "-qw", "net.ipv6.conf.tsdev0.disable_ipv6=1"])
            .status();
        netns.ip(&["link", "set", "tsdev0", "up"])?;

        let mut buf = [0u8; RECV_BUF];
        assert_eq!(tap.recv(Instant::ZERO, &mut buf).map_err(|e| e.to_string())?, None);

        // A broadcast ARP request for 10.9.9.9 from 02:00:00:00:00:01.
        let mut frame = Vec::new();
        frame.extend_from_slice(&[0xff; 6]);
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 1, 10, 9, 9, 1]);
        frame.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 9, 9, 9]);
        let before: u64 = netns.read_sys("/sys/class/net/tsdev0/statistics/rx_packets").parse().unwrap_or(0);
        tap.send(Instant::ZERO, &frame).map_err(|e| e.to_string())?;
        assert_eq!(tap.tx_dropped(), 0);
        let after: u64 = netns.read_sys("/sys/class/net/tsdev0/statistics/rx_packets").parse().unwrap_or(0);
        assert_eq!(after, before + 1, "the kernel did not see the frame we sent");
        Ok(())
    }
}
