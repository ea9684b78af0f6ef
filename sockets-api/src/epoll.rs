//! An epoll-like interface over the readiness registry: register a descriptor
//! once, then wait for the ready ones. A change the core reports on a
//! registered descriptor puts it on the instance's ready list (once); a wait
//! looks only at that list, so it costs O(ready), never O(registered).
//! Level-triggered by default, as Linux's; [`EPOLLET`] and [`EPOLLONESHOT`]
//! as Linux's too.
//!
//! ```no_run
//! use sockets_api::epoll::{EpollEvent, EPOLLIN};
//! # fn demo(net: &sockets_api::Net, listener: i32) -> sockets_api::Result<()> {
//! let ep = net.epoll_create()?;
//! ep.add(listener, EPOLLIN, listener as u64)?;
//! let mut events = Vec::with_capacity(64);
//! loop {
//!     ep.wait(&mut events, 64, -1)?;
//!     for _e in &events { /* accept, read, write: nonblocking */ }
//! }
//! # }
//! ```

use crate::errno::{Errno, Result};
use crate::fd_table::Fd;
use crate::readiness::Interest;
use crate::runtime::Core;
use crate::Net;
use std::cell::Cell;
use std::task::Waker;
use std::time::Duration;

/// Readable (POLLIN).
pub const EPOLLIN: u32 = 0x001;
/// Writable (POLLOUT).
pub const EPOLLOUT: u32 = 0x004;
/// An error is pending (always reported).
pub const EPOLLERR: u32 = 0x008;
/// Hung up (always reported).
pub const EPOLLHUP: u32 = 0x010;
/// The peer shut down its sending side.
pub const EPOLLRDHUP: u32 = 0x2000;
/// Report once, then stay disabled until [`Epoll::modify`].
pub const EPOLLONESHOT: u32 = 1 << 30;
/// Edge-triggered: report a change once, not again while it stays ready.
pub const EPOLLET: u32 = 1 << 31;

/// One ready descriptor, as epoll_wait(2) returns it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EpollEvent {
    /// EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP.
    pub events: u32,
    /// What was registered with the descriptor.
    pub data: u64,
}

/// An epoll instance on one stack; closed when dropped.
#[derive(Debug)]
pub struct Epoll {
    net: Net,
    id: usize,
}

impl Net {
    /// epoll_create(2). Errors: ENETDOWN.
    pub fn epoll_create(&self) -> Result<Epoll> {
        if self.shared().is_stopped() {
            return Err(Errno::ENETDOWN);
        }
        let id = self.shared().inspect(|c| c.ready.epoll_create());
        Ok(Epoll { net: self.clone(), id })
    }
}

/// The poll(2) bits for epoll's (the same numbers, as on Linux).
fn poll_bits(events: u32) -> i16 {
    (events & (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) as i16
}

impl Epoll {
    fn set(&self, fd: Fd, events: u32, data: u64, adding: bool) -> Result<()> {
        self.net.shared().with_core(|c, _| {
            let generation = c.sockets.generation(fd).ok_or(Errno::EBADF)?;
            let ep = c.ready.epoll(self.id).ok_or(Errno::EBADF)?;
            match (ep.interest.contains_key(&fd), adding) {
                (true, true) => return Err(Errno::EEXIST),
                (false, false) => return Err(Errno::ENOENT),
                _ => {}
            }
            let mut i = Interest::new(poll_bits(events), data, generation);
            i.oneshot = events & EPOLLONESHOT != 0;
            i.edge = events & EPOLLET != 0;
            c.ready.epoll_set(self.id, fd, i);
            Ok(())
        })
    }

    /// EPOLL_CTL_ADD: watch `fd` for `events`, reporting `data` with each.
    /// Errors: EBADF (not open); EEXIST (already watched).
    pub fn add(&self, fd: Fd, events: u32, data: u64) -> Result<()> {
        self.set(fd, events, data, true)
    }

    /// EPOLL_CTL_MOD: new events and data for a watched `fd` (re-arms a
    /// one-shot one). Errors: EBADF; ENOENT (not watched).
    pub fn modify(&self, fd: Fd, events: u32, data: u64) -> Result<()> {
        self.set(fd, events, data, false)
    }

    /// EPOLL_CTL_DEL. Errors: ENOENT (not watched). A closed descriptor leaves
    /// every instance by itself.
    pub fn delete(&self, fd: Fd) -> Result<()> {
        let removed = self.net.shared().inspect(|c| c.ready.epoll_remove(self.id, fd));
        if removed {
            Ok(())
        } else {
            Err(Errno::ENOENT)
        }
    }

    /// epoll_wait(2): fills `events` (cleared first) with up to `max` ready
    /// descriptors, waiting up to `timeout_ms` (negative: no limit; 0: just
    /// look) for one. Returns how many (0 on timeout). Errors: ENETDOWN.
    pub fn wait(&self, events: &mut Vec<EpollEvent>, max: usize, timeout_ms: i32) -> Result<usize> {
        let mut found = take_found();
        let id = self.id;
        let shared = self.net.shared();
        if shared.is_stopped() {
            return Err(Errno::ENETDOWN);
        }
        let n = if timeout_ms == 0 {
            shared.with_core(|c, _| look(c, id, max, &mut found))
        } else {
            let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64));
            shared.wait_core(timeout, |c, w| c.ready.epoll_wait_on(id, w), |c, _| look(c, id, max, &mut found))
        };
        give_found(found, events);
        match n {
            None if shared.is_stopped() => Err(Errno::ENETDOWN),
            _ => Ok(events.len()),
        }
    }

    /// One look, for an application that is stepped rather than blocked (a
    /// [`crate::resident::Resident`] on the runtime's thread, or a task):
    /// fills `events` as [`Epoll::wait`] with a timeout of 0 does; when none is
    /// ready, registers `waker` to be woken when one may be, under the same
    /// lock as the look, so that no change is missed. Returns how many.
    /// Errors: ENETDOWN.
    pub fn poll(&self, events: &mut Vec<EpollEvent>, max: usize, waker: &Waker) -> Result<usize> {
        let mut found = take_found();
        let id = self.id;
        let shared = self.net.shared();
        if shared.is_stopped() {
            return Err(Errno::ENETDOWN);
        }
        let _ = shared.poll_core(waker, |c, w| c.ready.epoll_wait_on(id, w), |c, _| look(c, id, max, &mut found));
        give_found(found, events);
        Ok(events.len())
    }
}

thread_local! {
    /// The buffer a look fills under the lock, reused: no allocation per wait.
    static FOUND: Cell<Vec<(i16, u64)>> = const { Cell::new(Vec::new()) };
}

fn take_found() -> Vec<(i16, u64)> {
    let mut found = FOUND.with(|f| f.take());
    found.clear();
    found
}

/// Hands what a look found to the caller as events, and keeps the buffer.
fn give_found(found: Vec<(i16, u64)>, events: &mut Vec<EpollEvent>) {
    events.clear();
    events.extend(found.iter().map(|&(ev, data)| EpollEvent { events: ev as u16 as u32, data }));
    FOUND.with(|f| f.set(found));
}

/// Takes up to `max` ready descriptors of epoll instance `id` into `found`:
/// `Some(how many)`, or `None` if none is ready.
fn look(c: &mut Core, id: usize, max: usize, found: &mut Vec<(i16, u64)>) -> Option<usize> {
    let Core { stack, sockets, ready, .. } = c;
    found.clear();
    if let Some(ep) = ready.epoll(id) {
        ep.collect(
            max,
            |fd, i| match sockets.generation(fd) == Some(i.generation) {
                true => sockets.revents(stack, fd, i.events),
                false => 0,
            },
            found,
        );
    }
    (!found.is_empty()).then_some(found.len())
}

impl Drop for Epoll {
    fn drop(&mut self) {
        self.net.shared().with_core(|c, _| c.close_epoll(self.id));
    }
}
