//! Readiness for event loops outside tapstack (a program's own epoll, mio,
//! select(2)): a runtime socket's number is a kernel eventfd reserved for it
//! (see `kernel_fds`). Once a socket's raw descriptor is asked for (`AsRawFd`
//! on `TcpStream`, `TcpListener`, `UdpSocket`), that eventfd is kept readable
//! exactly while the socket is: bytes or EOF to read, an error, a connection to
//! accept (poll(2)'s POLLIN, POLLERR or POLLHUP). Level-triggered, like a
//! kernel socket's readability.
//!
//! Under the core's lock only the wanted state changes, and only for the
//! sockets a change touched (O(changed), nothing for sockets nobody exported).
//! The eventfd is written (readable) or read (drained) after the lock is
//! released ([`sync`]), each under a small lock of its own taken around that
//! one system call, reading the latest wanted state: threads that race converge
//! on it. A closed socket's eventfd is drained before its number can be given
//! back to the kernel, so a number reused later starts unreadable.
//!
//! Writability is not signalled: an eventfd is always writable, so an outside
//! loop that asks for it sees the socket writable (a send may then say
//! WouldBlock).

use crate::consts::{POLLERR, POLLHUP, POLLIN};
use crate::fd_table::{Fd, FdTable};
use stack::Stack;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One exported socket number's eventfd: what it should show, and what it shows.
#[derive(Debug)]
pub(crate) struct Signal {
    fd: Fd,
    /// Whether the socket is readable (set under the core's lock).
    want: AtomicBool,
    /// Whether the eventfd's counter is nonzero (only [`Signal::sync`] changes it).
    shown: Mutex<bool>,
}

impl Signal {
    /// Makes the eventfd show what is wanted now: one write or one read, or nothing.
    fn sync(&self) {
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        let want = self.want.load(Ordering::Acquire);
        if *shown == want {
            return;
        }
        let mut v: u64 = 1;
        let p = &mut v as *mut u64 as *mut libc::c_void;
        // SAFETY: 8 bytes to or from a valid u64, on a nonblocking eventfd this
        // runtime reserved for the socket's number (never a descriptor of the
        // program's: `export` checks the table owns the number).
        let n = unsafe {
            if want {
                libc::write(self.fd, p, 8)
            } else {
                libc::read(self.fd, p, 8)
            }
        };
        // A full counter (write) or an empty one (read) is already the state wanted.
        let _ = n;
        *shown = want;
    }
}

/// The exported sockets' signals, and those whose wanted state changed since
/// the lock was last released. Bounded by the descriptor numbers exported
/// (kept across reuse of a number, so all syncs of one number go through one lock).
#[derive(Debug, Default)]
pub(crate) struct RawReady {
    signals: HashMap<Fd, Arc<Signal>>,
    dirty: Vec<Arc<Signal>>,
    /// Exported descriptors a round changed, noted while the core's report is
    /// drained (the stack is borrowed then), looked at after.
    noted: Vec<Fd>,
}

impl RawReady {
    /// `fd`'s eventfd follows its readiness from now on (it is a number the
    /// table reserved from the kernel: otherwise, a number beyond the kernel's
    /// or a table numbering itself, nothing happens and the number means
    /// nothing to the kernel). Whether it does.
    pub(crate) fn export(&mut self, fd: Fd, sockets: &mut FdTable, stack: &mut Stack) -> bool {
        if !sockets.numbers().is_kernel(fd) {
            return false;
        }
        let s = Signal { fd, want: AtomicBool::new(false), shown: Mutex::new(false) };
        self.signals.entry(fd).or_insert_with(|| Arc::new(s));
        self.changed(fd, sockets, stack);
        true
    }

    /// A change touched `fd` (or it closed): if it is exported, its wanted
    /// state is looked at again. O(1).
    pub(crate) fn changed(&mut self, fd: Fd, sockets: &FdTable, stack: &mut Stack) {
        if self.signals.is_empty() {
            return;
        }
        let Some(s) = self.signals.get(&fd) else { return };
        let readable = sockets.revents(stack, fd, POLLIN) & (POLLIN | POLLERR | POLLHUP) != 0;
        if s.want.swap(readable, Ordering::AcqRel) != readable {
            self.dirty.push(s.clone());
        }
    }

    /// A change touched `fd`: noted if it is exported. O(1).
    pub(crate) fn note(&mut self, fd: Fd) {
        if !self.signals.is_empty() && self.signals.contains_key(&fd) {
            self.noted.push(fd);
        }
    }

    /// Looks again at the descriptors noted since the last call.
    pub(crate) fn changed_noted(&mut self, sockets: &FdTable, stack: &mut Stack) {
        let mut noted = std::mem::take(&mut self.noted);
        noted.drain(..).for_each(|fd| self.changed(fd, sockets, stack));
        self.noted = noted;
    }

    /// Hands the signals to sync over (swapping with `out`, so neither allocates
    /// in steady state); call [`sync`] on them after the lock is released.
    pub(crate) fn take_dirty(&mut self, out: &mut Vec<Arc<Signal>>) {
        std::mem::swap(&mut self.dirty, out);
    }
}

thread_local! {
    /// Signals taken under the lock, synced after it (see `TO_WAKE` in the runtime).
    static TO_SYNC: Cell<Vec<Arc<Signal>>> = const { Cell::new(Vec::new()) };
}

/// Takes `raw`'s dirty signals under the lock, into this thread's reused list.
pub(crate) fn take(raw: &mut RawReady) -> Vec<Arc<Signal>> {
    let mut list = TO_SYNC.with(|l| l.take());
    raw.take_dirty(&mut list);
    list
}

/// After the lock: makes each eventfd show its socket's state (a system call
/// for each that changed), then keeps the list for reuse.
pub(crate) fn sync(mut list: Vec<Arc<Signal>>) {
    list.drain(..).for_each(|s| s.sync());
    TO_SYNC.with(|l| l.set(list));
}
