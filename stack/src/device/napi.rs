//! The kernel's NAPI for a TAP, in a thread of its own.
//!
//! A frame written to a plain TAP is received by the kernel inside our
//! write(2): its IP and TCP run in our thread (64% of it while we send, in
//! issue 11's profiles), and so does, when the frame is an ACK, the kernel's
//! TCP sending the data that ACK lets it send. A TAP opened with `IFF_NAPI`
//! queues the frames we write to a NAPI context instead (with GRO, which
//! coalesces a burst of our segments before the kernel's TCP sees them), and
//! with the interface's `threaded` attribute set, that context is a kernel
//! thread of its own (`napi/NAME-N`), scheduled on any core: the kernel's
//! work moves out of ours. Without the thread, the NAPI poll runs in our
//! write anyway, one frame at a time, which is slower than no NAPI at all
//! (BENCHMARKS.md): so the thread is set or NAPI is not used. For plain
//! frames only: on the offloading TAP (64 KiB segments, few writes) the same
//! bench ran slower with it (kernel -> stack 16.0 and 18.3 Gbit/s against
//! 24.1 and 21.9 without), so `tapstack up` opens that one without.
//!
//! The frames waiting for the thread are a queue of the kernel's that
//! nothing bounds but the TAP's send buffer, which `TapDevice::open_napi` sets
//! (`tap::NAPI_QUEUE_BYTES`; without NAPI there is no queue, the frame being
//! taken inside the write). The bound has a price: the kernel builds a
//! written frame's skb on its fast path only while that buffer is unbounded,
//! so sending costs more CPU per byte with it (BENCHMARKS.md, "the queue's
//! bound"); receiving, whose writes are our ACKs, gains all the same.
//!
//! The attribute is in sysfs only (`/sys/class/net/NAME/threaded`, Linux 5.12
//! and later). A process's /sys shows the network namespace it was mounted
//! in, which need not be the process's own (`unshare -n` without a new mount
//! of sysfs): [`set_threaded`] checks that the device there is ours (the same
//! index and address) before it writes.

use std::io;

/// Makes the NAPI context of the TAP `name` (opened with `IFF_NAPI`) a kernel
/// thread of its own. Needs CAP_NET_ADMIN and this namespace's sysfs at /sys.
pub fn set_threaded(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let dir = format!("/sys/class/net/{name}");
    let read = |attr: &str| std::fs::read_to_string(format!("{dir}/{attr}")).map(|s| s.trim().to_string());
    let index = std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: if_nametoindex reads the NUL-terminated name it is given.
    let ours = unsafe { libc::if_nametoindex(index.as_ptr()) };
    let theirs = read("ifindex").ok().and_then(|s| s.parse::<u32>().ok());
    let same = ours != 0 && theirs == Some(ours) && matches!((read("address"), mac_of(name)), (Ok(a), Ok(b)) if a == b);
    if !same {
        return Err(io::Error::other(format!(
            "{dir} is not this network namespace's {name}: /sys was mounted in another \
             (`ip netns exec` mounts it anew)"
        )));
    }
    let path = format!("{dir}/threaded");
    std::fs::write(&path, "1").map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

/// The interface's MAC address as sysfs writes it (`02:00:...`), by SIOCGIFHWADDR.
fn mac_of(name: &str) -> io::Result<String> {
    // SAFETY: plain system call; the descriptor is closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain data, all zeroes a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &b) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = b as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR fills the ifreq, which lives across the call;
    // the address is its sockaddr member. `sock` is ours, closed once.
    let (r, mac) = unsafe {
        let r = libc::ioctl(sock, libc::SIOCGIFHWADDR, &mut req as *mut libc::ifreq);
        let failed = (r < 0).then(io::Error::last_os_error);
        libc::close(sock);
        (failed, req.ifr_ifru.ifru_hwaddr.sa_data)
    };
    if let Some(e) = r {
        return Err(e);
    }
    Ok(mac[..6].iter().map(|&b| format!("{:02x}", b as u8)).collect::<Vec<_>>().join(":"))
}
