//! The engine of the TCP services: one thread per service running an event
//! loop over the epoll-like interface ([`crate::epoll`]), with no thread per
//! connection. Each connection is a small state machine ([`ConnApp`]) driven
//! with nonblocking calls whenever its descriptor is reported ready; an idle
//! connection costs its state and nothing else, so one service holds tens of
//! thousands of them.
//!
//! Bounds, per service (issue 13, item 4: one client must not stop every
//! service): at most `max` connections at once (while that many are open the
//! listener's interest is dropped, so further clients wait in its backlog and
//! beyond that their SYNs are retried by the peer, as for any busy server); a
//! connection that has seen no readiness event for `idle` is closed (a client
//! that vanished, or one holding connections it does not use); each wake-up
//! handles at most [`EVENTS`] descriptors, and each connection at most
//! [`ROUNDS`] reads or writes, so one busy client cannot starve the others.
//!
//! The loop sleeps until a descriptor is ready or a deadline is due, never on
//! a tick: stop() wakes it by shutting the listener down (a hang-up, which
//! epoll reports whatever the interest). Only when the process has run out of
//! descriptors (EMFILE, ENFILE; or memory, ENOBUFS, ENOMEM; beyond this
//! service's own bound) does it retry
//! accepting on a timer, backing off from [`EMFILE_RETRY`] to
//! [`EMFILE_RETRY_MAX`], or at once when one of its own connections ends.

use crate::consts::*;
use crate::epoll::{Epoll, EpollEvent, EPOLLIN, EPOLLOUT};
use crate::errno::{Errno, Result};
use crate::fd_table::Fd;
use crate::Net;
use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Ready descriptors handled per wake-up.
pub const EVENTS: usize = 256;
/// Reads or writes per connection per wake-up.
pub const ROUNDS: usize = 16;
/// The size of the one buffer the loop lends to every connection's reads.
pub const SCRATCH: usize = 16384;
/// After EMFILE: the first wait before accepting again, doubled each time up to
/// [`EMFILE_RETRY_MAX`] (descriptors freed elsewhere in the process raise no event).
pub const EMFILE_RETRY: Duration = Duration::from_millis(50);
pub const EMFILE_RETRY_MAX: Duration = Duration::from_secs(2);
/// The listener's token in the interest list (descriptors are the others').
const LISTENER: u64 = u64::MAX;

/// What a connection waits for next.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Read,
    Write,
    /// Finished: the loop closes the descriptor.
    Done,
}

/// One connection's application: driven when its descriptor may be ready.
pub(crate) trait ConnApp: Send {
    /// Does what nonblocking calls allow now (`scratch` is the loop's buffer,
    /// lent for reads) and says what to wait for.
    fn drive(&mut self, net: &Net, fd: Fd, scratch: &mut [u8], now: Instant) -> Step;
    /// When the connection gives up waiting, if ever.
    fn deadline(&self) -> Option<Instant> {
        None
    }
}

/// Makes the application of each new connection.
pub(crate) type Factory = fn(Instant) -> Box<dyn ConnApp>;

/// What the loop shares with its owner.
#[derive(Debug)]
struct State {
    net: Net,
    stopping: AtomicBool,
    active: AtomicUsize,
    accepted: AtomicU64,
    /// Connections closed for being idle.
    idle_closed: AtomicU64,
    /// Accepts that failed for want of descriptors or memory, each retried later.
    accept_failures: AtomicU64,
    max: usize,
    idle: Option<Duration>,
}

/// A running TCP service: its listener and its event loop's thread.
#[derive(Debug)]
pub(crate) struct Server {
    state: Arc<State>,
    fd: Fd,
    pub(crate) local: SocketAddrV4,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Server {
    /// socket, SO_REUSEADDR, bind, listen (with `backlog`), and the loop's
    /// thread, serving at most `max` connections, each closed after `idle`
    /// without an event.
    pub(crate) fn start(
        net: &Net,
        addr: SocketAddr,
        name: &str,
        (max, idle, backlog): (usize, Option<Duration>, i32),
        app: Factory,
    ) -> Result<Server> {
        let fd = net.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)?;
        let setup = || -> Result<(SocketAddrV4, Epoll)> {
            net.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1)?;
            net.bind(fd, addr)?;
            net.listen(fd, backlog)?;
            let ep = net.epoll_create()?;
            ep.add(fd, EPOLLIN, LISTENER)?;
            Ok((net.getsockname(fd)?, ep))
        };
        let (local, ep) = setup().inspect_err(|_| {
            let _ = net.close(fd);
        })?;
        let state = Arc::new(State {
            net: net.clone(),
            stopping: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            idle_closed: AtomicU64::new(0),
            accept_failures: AtomicU64::new(0),
            max: max.max(1),
            idle,
        });
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{}", local.port()))
            .spawn(move || Loop::new(&st, fd, ep, app).run())
            .map_err(|_| {
                let _ = net.close(fd);
                Errno::EAGAIN
            })?;
        Ok(Server { state, fd, local, thread: Some(thread) })
    }

    pub(crate) fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::Relaxed)
    }

    pub(crate) fn active(&self) -> usize {
        self.state.active.load(Ordering::Relaxed)
    }

    pub(crate) fn idle_closed(&self) -> u64 {
        self.state.idle_closed.load(Ordering::Relaxed)
    }

    pub(crate) fn accept_failures(&self) -> u64 {
        self.state.accept_failures.load(Ordering::Relaxed)
    }

    /// Stops listening, wakes the loop, which shuts down and closes every
    /// connection, and joins it; returns the error that had stopped it, if any.
    pub(crate) fn stop_and_join(&mut self) -> Result<()> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        self.state.stopping.store(true, Ordering::Release);
        // Wakes the loop: the listener reports a hang-up.
        let _ = self.state.net.shutdown(self.fd, SHUT_RD);
        let result = thread.join().unwrap_or(Err(Errno::EIO));
        let _ = self.state.net.close(self.fd);
        result
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// One open connection in the loop.
struct Entry {
    app: Box<dyn ConnApp>,
    /// What it is registered for now.
    interest: u32,
    /// Its place in the loop's deadline set: the earliest of the
    /// application's deadline and the idle one, as computed when it was set
    /// (activity moves the idle deadline later without touching the set; the
    /// entry is looked at again when it comes due).
    deadline: Option<Instant>,
    /// The last readiness event on it.
    active_at: Instant,
}

/// The event loop's state, on its own thread.
struct Loop<'a> {
    st: &'a State,
    net: &'a Net,
    lfd: Fd,
    ep: Epoll,
    app: Factory,
    conns: HashMap<Fd, Entry>,
    deadlines: BTreeSet<(Instant, Fd)>,
    listening: bool,
    /// After running out of descriptors: when to try accepting again, and the
    /// wait after the next failure.
    retry_accept: Option<Instant>,
    retry_delay: Duration,
    scratch: Vec<u8>,
}

impl<'a> Loop<'a> {
    fn new(st: &'a State, lfd: Fd, ep: Epoll, app: Factory) -> Loop<'a> {
        Loop {
            st,
            net: &st.net,
            lfd,
            ep,
            app,
            conns: HashMap::new(),
            deadlines: BTreeSet::new(),
            listening: true,
            retry_accept: None,
            retry_delay: EMFILE_RETRY,
            scratch: vec![0; SCRATCH],
        }
    }

    fn run(mut self) -> Result<()> {
        let mut events: Vec<EpollEvent> = Vec::with_capacity(EVENTS);
        let result = loop {
            if self.st.stopping.load(Ordering::Acquire) {
                break Ok(());
            }
            let now = Instant::now();
            let next = self.deadlines.first().map(|&(t, _)| t).into_iter().chain(self.retry_accept).min();
            // No deadline: sleep until an event (stop() makes one).
            let wait =
                next.map_or(-1, |t| t.saturating_duration_since(now).as_millis().clamp(1, i32::MAX as u128) as i32);
            match self.ep.wait(&mut events, EVENTS, wait) {
                Ok(_) => {}
                Err(Errno::ENETDOWN) => break Ok(()),
                Err(e) => break Err(e),
            }
            let now = Instant::now();
            for e in &events {
                match e.data {
                    LISTENER => self.accept_ready(now),
                    fd => self.drive(fd as Fd, now),
                }
            }
            self.expire(Instant::now());
            self.relisten(Instant::now());
        };
        self.close_all();
        result
    }

    /// Accepts while connections wait and there is room.
    fn accept_ready(&mut self, now: Instant) {
        while self.conns.len() < self.st.max {
            match self.net.accept(self.lfd) {
                Ok((fd, _)) => {
                    self.st.accepted.fetch_add(1, Ordering::Relaxed);
                    self.retry_delay = EMFILE_RETRY;
                    if self.ep.add(fd, EPOLLIN, fd as u64).is_err() {
                        let _ = self.net.close(fd);
                        continue;
                    }
                    let entry = Entry { app: (self.app)(now), interest: EPOLLIN, deadline: None, active_at: now };
                    self.conns.insert(fd, entry);
                    self.st.active.store(self.conns.len(), Ordering::Relaxed);
                    // Data may have come with the handshake: no event would say so again.
                    self.drive(fd, now);
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM) => {
                    // Out of descriptors (or memory): wait for one of ours to
                    // end, or for the back-off (another part of the process
                    // may free some); never a busy retry, never a stop.
                    self.st.accept_failures.fetch_add(1, Ordering::Relaxed);
                    self.unlisten();
                    self.retry_accept = Some(now + self.retry_delay);
                    self.retry_delay = (self.retry_delay * 2).min(EMFILE_RETRY_MAX);
                    return;
                }
                Err(_) => return,
            }
        }
        self.unlisten();
    }

    /// Stops being told of waiting connections; the listener stays registered
    /// with no interest, so that its hang-up (stop()) is still reported.
    fn unlisten(&mut self) {
        if self.listening && self.ep.modify(self.lfd, 0, LISTENER).is_ok() {
            self.listening = false;
        }
    }

    /// Listens again once there is room (and any retry delay has passed).
    fn relisten(&mut self, now: Instant) {
        if self.listening || self.conns.len() >= self.st.max || self.retry_accept.is_some_and(|t| now < t) {
            return;
        }
        self.retry_accept = None;
        if self.ep.modify(self.lfd, EPOLLIN, LISTENER).is_ok() {
            self.listening = true;
        }
    }

    /// Drives connection `fd` and follows what it asks for next.
    fn drive(&mut self, fd: Fd, now: Instant) {
        let Some(entry) = self.conns.get_mut(&fd) else { return };
        entry.active_at = now;
        let step = entry.app.drive(self.net, fd, &mut self.scratch, now);
        let want = match step {
            Step::Read => EPOLLIN,
            Step::Write => EPOLLOUT,
            Step::Done => return self.finish(fd),
        };
        if want != entry.interest && self.ep.modify(fd, want, fd as u64).is_ok() {
            entry.interest = want;
        }
        // Activity only moves the idle deadline later: an entry already due
        // no later than wanted stays (see `expire`).
        let due = self.wanted(fd);
        if self.conns[&fd].deadline.is_none_or(|t| due.is_some_and(|w| w < t)) {
            self.reschedule(fd, due);
        }
    }

    /// When connection `fd` should be looked at next: its application's
    /// deadline or the end of its idle time, whichever is first.
    fn wanted(&self, fd: Fd) -> Option<Instant> {
        let entry = &self.conns[&fd];
        let idle = self.st.idle.map(|d| entry.active_at + d);
        entry.app.deadline().into_iter().chain(idle).min()
    }

    fn reschedule(&mut self, fd: Fd, deadline: Option<Instant>) {
        let Some(entry) = self.conns.get_mut(&fd) else { return };
        if let Some(t) = entry.deadline {
            self.deadlines.remove(&(t, fd));
        }
        if let Some(t) = deadline {
            self.deadlines.insert((t, fd));
        }
        entry.deadline = deadline;
    }

    /// Closes the connections whose deadline has passed; one that was active
    /// since its idle deadline was set goes back in the set, later.
    fn expire(&mut self, now: Instant) {
        while let Some(&(t, fd)) = self.deadlines.first() {
            if t > now {
                break;
            }
            match self.wanted(fd) {
                Some(w) if w <= now => {
                    let app_due = self.conns[&fd].app.deadline().is_some_and(|d| d <= now);
                    if !app_due {
                        self.st.idle_closed.fetch_add(1, Ordering::Relaxed);
                    }
                    self.finish(fd);
                }
                later => self.reschedule(fd, later),
            }
        }
    }

    fn finish(&mut self, fd: Fd) {
        if let Some(entry) = self.conns.remove(&fd) {
            if let Some(t) = entry.deadline {
                self.deadlines.remove(&(t, fd));
            }
            // A descriptor of ours is free: accepting may work again.
            self.retry_accept = None;
            // Closing takes it off the interest list too.
            let _ = self.net.close(fd);
            self.st.active.store(self.conns.len(), Ordering::Relaxed);
        }
    }

    /// On stop: every connection is shut down (its peer sees the end) and closed.
    fn close_all(&mut self) {
        for (&fd, _) in self.conns.iter() {
            let _ = self.net.shutdown(fd, SHUT_RDWR);
            let _ = self.net.close(fd);
        }
        self.conns.clear();
        self.deadlines.clear();
        self.st.active.store(0, Ordering::Relaxed);
    }
}
