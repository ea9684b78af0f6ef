//! A nonblocking eventfd: how a thread wakes another that sleeps in poll(2)
//! (the runtime's thread, or a thread polling kernel descriptors with
//! sockets: `kernel_fds`).

use std::io;
use std::os::fd::RawFd;

/// A nonblocking eventfd: application threads signal it, the runtime sleeps on it
/// (and a thread in a poll over kernel descriptors too, see `kernel_fds`).
#[derive(Debug)]
pub(crate) struct EventFd {
    pub(crate) fd: RawFd,
}

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: plain syscall; the fd is owned by Waker and closed in Drop.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(EventFd { fd })
    }

    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd. A full counter
        // (EAGAIN) already means "wake up", so the result is not needed.
        unsafe { libc::write(self.fd, &one as *const u64 as *const libc::c_void, 8) };
    }

    pub(crate) fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own nonblocking eventfd.
        unsafe { libc::read(self.fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.fd) };
    }
}
