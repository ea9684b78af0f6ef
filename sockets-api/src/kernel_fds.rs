//! tapstack's sockets beside the kernel's descriptors (stdin, pipes, files,
//! the kernel's own sockets): one number space, and poll(2) over both.
//!
//! Numbers: a runtime's socket descriptors are kernel descriptors reserved for
//! them (an eventfd each, held open while the number is tapstack's), so the
//! kernel never hands the same number to a pipe or a file, and a number in a
//! poll set says by itself whose it is: the descriptor table's
//! (`Numbers::owns`) or the kernel's. They are reserved in
//! batches outside the core's lock, kept as spares when sockets close (up to
//! [`crate::fd_table::SPARE_NUMBERS`]) and closed when the runtime's last
//! handle goes, so a socket or an accept makes no system call while spares
//! remain. Like the kernel's, they count against RLIMIT_NOFILE (whose soft
//! limit is raised to the hard one the first time it runs out).
//!
//! Beyond the kernel's limit: when the kernel refuses more (EMFILE, ENFILE:
//! its hard limit may be one root cannot raise), further sockets are numbered
//! from `/proc/sys/fs/nr_open` up ([`space`], read once), where the kernel
//! never hands out a descriptor, so such a number is always the table's. They
//! work for every call of tapstack's own (poll, epoll, the services) but hold
//! no kernel descriptor: the kernel's epoll_ctl or poll(2) given one says EBADF
//! or POLLNVAL (`AsRawFd` exports none: see `raw_ready`), and select(2) cannot
//! take one (FD_SETSIZE). Bounded by the table's own limit (`--max-fds`).
//!
//! Waiting on both: the tapstack entries are checked in the table and the
//! thread's waker is registered on them under the lock, as a blocked call's is
//! (so no change is lost between the check and the sleep), but here the waker
//! writes to an eventfd of the thread's own; the thread then sleeps in the
//! kernel's poll(2) on the kernel entries and that eventfd, outside the lock. A
//! change on one of the sockets wakes it through the readiness path that wakes
//! only who is affected; a kernel descriptor wakes it directly. O(entries) per
//! call, whatever the number of sockets.

use crate::errno::{Errno, Result};
use crate::eventfd::EventFd;
use crate::fd_table::{Fd, FIRST_FD, NEED_NUMBER};
use crate::kernel_limit::space;
use crate::runtime::{Core, Shared};

/// One entry of poll(2)'s array.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PollFd {
    /// The descriptor; a negative one is skipped (its `revents` is 0).
    pub fd: Fd,
    /// What to wait for: POLLIN, POLLOUT (POLLERR and POLLHUP are always reported).
    pub events: i16,
    /// What happened, set by poll.
    pub revents: i16,
}

impl PollFd {
    pub fn new(fd: Fd, events: i16) -> PollFd {
        PollFd { fd, events, revents: 0 }
    }
}
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// Numbers reserved at a time when a table has none spare.
const RESERVE_BATCH: usize = 8;
/// How often a call that needs a number reserves more before giving up (other
/// threads may take each batch first): EMFILE then.
const RESERVE_TRIES: usize = 16;

/// The errno of the last failed system call.
fn last_errno() -> Errno {
    Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
}

/// Raises RLIMIT_NOFILE's soft limit to the hard one, the first time the
/// process runs out of descriptors (Go's runtime does so at start): each socket
/// holds a kernel descriptor, and Linux's soft default, 1024, is below the
/// stack's own limit. Whether it was raised.
fn raise_nofile_limit() -> bool {
    static TRIED: AtomicBool = AtomicBool::new(false);
    if TRIED.swap(true, Ordering::AcqRel) {
        return false;
    }
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 || r.rlim_cur >= r.rlim_max {
            return false;
        }
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r) == 0
    }
}

/// One kernel descriptor to reserve a number with, at least [`FIRST_FD`] (a
/// program that closed its stdin would otherwise get 0 back) and below
/// [`space`]'s kernel end (EMFILE past it: a hard limit raised since).
fn reserve_one() -> Result<Fd> {
    let fd = reserve_low()?;
    if space().kernel_end().is_some_and(|end| fd >= end) {
        close(fd);
        return Err(Errno::EMFILE);
    }
    Ok(fd)
}

fn close(fd: Fd) {
    // SAFETY: a descriptor this module just opened.
    unsafe { libc::close(fd) };
}

fn reserve_low() -> Result<Fd> {
    // SAFETY: plain system calls on descriptors this function owns.
    unsafe {
        let mut fd = libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC);
        if fd < 0 && last_errno() == Errno::EMFILE && raise_nofile_limit() {
            fd = libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC);
        }
        if fd < 0 {
            return Err(last_errno());
        }
        if fd >= FIRST_FD {
            return Ok(fd);
        }
        let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, FIRST_FD);
        let e = last_errno();
        libc::close(fd);
        if high < 0 {
            return Err(e);
        }
        Ok(high)
    }
}

/// Reserves a batch of numbers for `shared`'s table: the system calls first,
/// outside the lock; numbers beyond the kernel's when it has none left (their
/// slots are apart from the kernel's, so an ENFILE far below the kernel's
/// limit costs slots for the sockets in use only: `numbers::Slots`).
/// Errors: EMFILE, ENFILE (the kernel's limits, and no range beyond), ENETDOWN.
fn reserve(shared: &Shared) -> Result<()> {
    let mut fds = [0; RESERVE_BATCH];
    for i in 0..RESERVE_BATCH {
        match reserve_one() {
            Ok(fd) => fds[i] = fd,
            Err(e) if i == 0 && (e == Errno::EMFILE || e == Errno::ENFILE) => {
                return shared.inspect(|c| c.sockets.add_beyond_numbers(RESERVE_BATCH)).map_err(|_| e);
            }
            Err(e) if i == 0 => return Err(e),
            Err(_) => return shared_add(shared, &fds[..i]),
        }
    }
    shared_add(shared, &fds)
}

fn shared_add(shared: &Shared, fds: &[Fd]) -> Result<()> {
    shared.inspect(|c| c.sockets.add_numbers(fds));
    Ok(())
}

/// Runs `op` (a call that makes a descriptor: socket, accept), reserving more
/// numbers whenever the table has none left, outside the lock.
pub(crate) fn numbered<R>(shared: &Shared, mut op: impl FnMut() -> Result<R>) -> Result<R> {
    for _ in 0..RESERVE_TRIES {
        match op() {
            Err(NEED_NUMBER) => reserve(shared)?,
            r => return r,
        }
    }
    Err(Errno::EMFILE)
}

/// This thread's waker for a poll over kernel descriptors: it writes to the
/// thread's eventfd, which the kernel's poll watches.
struct PollWaker(EventFd);

impl Wake for PollWaker {
    fn wake(self: Arc<Self>) {
        self.0.wake();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.wake();
    }
}

thread_local! {
    /// Made the first time the thread polls kernel descriptors with sockets.
    static POLL_WAKER: RefCell<Option<(Arc<PollWaker>, Waker)>> = const { RefCell::new(None) };
}

/// This thread's eventfd and its waker. Errors: EMFILE, ENFILE.
fn poll_waker() -> Result<(Arc<PollWaker>, Waker)> {
    POLL_WAKER.with(|w| {
        let mut w = w.borrow_mut();
        if w.is_none() {
            let fd = EventFd::new().map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EMFILE)))?;
            let p = Arc::new(PollWaker(fd));
            *w = Some((p.clone(), Waker::from(p)));
        }
        Ok(w.clone().expect("made above"))
    })
}

/// The kernel's poll(2) on `fds` for up to `timeout` (`None`: no limit).
/// Errors: those of poll(2) but EINTR, which counts as a wake-up (0 ready).
fn kernel_poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> Result<usize> {
    let ts = timeout
        .map(|t| libc::timespec { tv_sec: t.as_secs() as libc::time_t, tv_nsec: t.subsec_nanos() as libc::c_long });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` and `ts` live across the call.
    let r = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ts_ptr, std::ptr::null()) };
    match r {
        r if r >= 0 => Ok(r as usize),
        _ if last_errno() == Errno::EINTR => Ok(0),
        _ => Err(last_errno()),
    }
}

/// poll(2) over `fds`, where `kernel` holds the indices of the entries that
/// are the kernel's (the others, but negative ones, are the table's): see the
/// module's comment. `timeout` as [`crate::Net::poll`]'s (`None`: no limit).
pub(crate) fn poll(shared: &Shared, fds: &mut [PollFd], kernel: &[usize], timeout: Option<Duration>) -> Result<usize> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let (waker, w) = poll_waker()?;
    let mut k: Vec<libc::pollfd> =
        kernel.iter().map(|&i| libc::pollfd { fd: fds[i].fd, events: fds[i].events, revents: 0 }).collect();
    k.push(libc::pollfd { fd: waker.0.fd, events: libc::POLLIN, revents: 0 });
    let ours: Vec<(usize, Fd)> = fds
        .iter()
        .enumerate()
        .filter(|(i, p)| p.fd >= 0 && kernel.binary_search(i).is_err())
        .map(|(i, p)| (i, p.fd))
        .collect();
    let mut counted = None;
    loop {
        // Earlier wake-ups are spent: what they announced is looked at now.
        waker.0.drain();
        let scan = |c: &mut Core, _| {
            let mut n = 0;
            for &(i, fd) in &ours {
                fds[i].revents = c.sockets.revents(&mut c.stack, fd, fds[i].events);
                n += (fds[i].revents != 0) as usize;
            }
            Some(n).filter(|&n| n > 0)
        };
        let register = |c: &mut Core, w: &Waker| ours.iter().for_each(|&(_, fd)| c.ready.wait_fd(fd, w));
        if shared.is_stopped() {
            return Err(Errno::ENETDOWN);
        }
        let ready = match shared.poll_core(&w, register, scan) {
            Poll::Ready(n) => n,
            Poll::Pending => 0,
        };
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let wait = if ready > 0 { Some(Duration::ZERO) } else { left };
        if wait != Some(Duration::ZERO) && counted.is_none() {
            counted = Some(shared.count_waiter());
        }
        kernel_poll(&mut k, wait)?;
        let mut n = ready;
        for (&i, q) in kernel.iter().zip(&k) {
            fds[i].revents = q.revents;
            n += (q.revents != 0) as usize;
        }
        if n > 0 {
            return Ok(n);
        }
        if shared.is_stopped() {
            return Err(Errno::ENETDOWN);
        }
        if left.is_some_and(|l| l.is_zero()) {
            fds.iter_mut().for_each(|p| p.revents = 0);
            return Ok(0);
        }
    }
}
