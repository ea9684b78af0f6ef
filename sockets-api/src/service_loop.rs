//! The engine of the TCP services: one event loop per service over the
//! epoll-like interface ([`crate::epoll`]), with no thread per connection.
//! Each connection is a small state machine ([`ConnApp`]) driven with
//! nonblocking calls whenever its descriptor is reported ready; an idle
//! connection costs its state and nothing else, so one service holds tens of
//! thousands of them.
//!
//! The loop runs on the runtime's own thread, as a [`Resident`]: the runtime
//! steps it after a round of frames that made one of its descriptors ready
//! (or when one of its deadlines is due), before the frames the round queued
//! go out. A burst of segments is read, and the service's answer sent, with no
//! thread switch between the two; and a bulk transfer costs no futex, eventfd
//! or lock hand-over per round (issue 11).
//!
//! Bounds, per service (issue 13, item 4: one client must not stop every
//! service): at most `max` connections at once (while that many are open the
//! listener's interest is dropped, so further clients wait in its backlog and
//! beyond that their SYNs are retried by the peer, as for any busy server); a
//! connection that has seen no readiness event for `idle` is closed (a client
//! that vanished, or one holding connections it does not use); each step
//! handles at most [`EVENTS`] descriptors [`LOOKS`] times, and each connection
//! at most [`ROUNDS`] reads or writes, so one busy client cannot starve the
//! others, nor the service the stack.
//!
//! The loop is stepped only when a descriptor may be ready or a deadline is
//! due, never on a tick. Only when the process has run out of descriptors
//! (EMFILE, ENFILE; or memory, ENOBUFS, ENOMEM; beyond this service's own
//! bound) does it retry accepting on a timer, backing off from
//! [`EMFILE_RETRY`] to [`EMFILE_RETRY_MAX`], or at once when one of its own
//! connections ends.

use crate::consts::*;
use crate::epoll::{Epoll, EpollEvent, EPOLLIN, EPOLLOUT};
use crate::errno::{Errno, Result};
use crate::fd_table::Fd;
use crate::resident::Resident;
use crate::shrink::Shrink;
use crate::Net;
use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

/// Ready descriptors handled per look at the ready list.
pub const EVENTS: usize = 256;
/// Looks at the ready list per step; a loop still busy after them is stepped
/// again after the runtime's next round.
pub const LOOKS: usize = 4;
/// Reads or writes per connection per look.
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
    active: AtomicUsize,
    accepted: AtomicU64,
    /// Connections closed for being idle.
    idle_closed: AtomicU64,
    /// Accepts that failed for want of descriptors or memory, each retried later.
    accept_failures: AtomicU64,
    max: usize,
    idle: Option<Duration>,
}

/// A running TCP service: its listener and its event loop, a resident of
/// the runtime's thread.
pub(crate) struct Server {
    state: Arc<State>,
    fd: Fd,
    pub(crate) local: SocketAddrV4,
    name: String,
    /// The loop, and its number among the runtime's residents, until stopped.
    running: Option<(u64, Arc<Mutex<Loop>>)>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("name", &self.name).field("fd", &self.fd).field("local", &self.local).finish()
    }
}

impl Server {
    /// socket, SO_REUSEADDR, bind, listen (with `backlog`), and the loop on
    /// the runtime's thread, serving at most `max` connections, each closed
    /// after `idle` without an event.
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
            active: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            idle_closed: AtomicU64::new(0),
            accept_failures: AtomicU64::new(0),
            max: max.max(1),
            idle,
        });
        let lp = Arc::new(Mutex::new(Loop::new(state.clone(), fd, ep, app)));
        let Some(id) = net.shared().add_resident(lp.clone()) else {
            // The runtime has ended since the listen: the loop would never run.
            drop(lp);
            let _ = net.close(fd);
            return Err(Errno::ENETDOWN);
        };
        Ok(Server { state, fd, local, name: name.to_string(), running: Some((id, lp)) })
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

    /// Takes the loop off the runtime's thread (once this returns it is not
    /// running, and never runs again), shuts down and closes every connection
    /// and the listener; returns the error that had stopped the loop early, if any.
    pub(crate) fn stop_and_join(&mut self) -> Result<()> {
        let Some((id, lp)) = self.running.take() else { return Ok(()) };
        self.state.net.shared().remove_resident(id);
        let result = {
            let mut lp = lock(&lp);
            lp.close_all();
            lp.failed.take().map_or(Ok(()), Err)
        };
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

fn lock(lp: &Mutex<Loop>) -> MutexGuard<'_, Loop> {
    lp.lock().unwrap_or_else(|e| e.into_inner())
}

/// The event loop's state, stepped on the runtime's thread.
struct Loop {
    st: Arc<State>,
    lfd: Fd,
    ep: Epoll,
    app: Factory,
    /// The open connections (at most `max`), shrinking as they end (`finish`).
    conns: HashMap<Fd, Entry>,
    deadlines: BTreeSet<(Instant, Fd)>,
    listening: bool,
    /// After running out of descriptors: when to try accepting again, and the
    /// wait after the next failure.
    retry_accept: Option<Instant>,
    retry_delay: Duration,
    scratch: Vec<u8>,
    /// The ready descriptors of the last look (kept: no allocation per step).
    events: Vec<EpollEvent>,
    /// The error that stopped the loop (it is not stepped again), for stop().
    failed: Option<Errno>,
}

impl Loop {
    fn new(st: Arc<State>, lfd: Fd, ep: Epoll, app: Factory) -> Loop {
        Loop {
            st,
            lfd,
            ep,
            app,
            conns: HashMap::new(),
            deadlines: BTreeSet::new(),
            listening: true,
            retry_accept: None,
            retry_delay: EMFILE_RETRY,
            scratch: vec![0; SCRATCH],
            events: Vec::with_capacity(EVENTS),
            failed: None,
        }
    }

    fn net(&self) -> &Net {
        &self.st.net
    }

    /// Handles the due deadlines and the ready descriptors, up to [`LOOKS`]
    /// looks; when nothing is ready any more, `waker` is registered with the
    /// epoll instance (under the same lock as the look: no change is missed).
    /// Deadlines and listening again come before each look, since listening
    /// again queues the listener without waking anyone. Returns when to be
    /// stepped again at the latest.
    fn step_loop(&mut self, waker: &Waker) -> Option<Instant> {
        if self.failed.is_some() {
            return None;
        }
        let mut events = std::mem::take(&mut self.events);
        let mut busy = true;
        for _ in 0..LOOKS {
            let now = Instant::now();
            self.expire(now);
            self.relisten(now);
            match self.ep.poll(&mut events, EVENTS, waker) {
                Ok(0) => {
                    busy = false;
                    break;
                }
                Ok(_) => {}
                // The runtime is stopping: it closes every descriptor itself.
                Err(Errno::ENETDOWN) => return None,
                Err(e) => {
                    self.failed = Some(e);
                    return None;
                }
            }
            let now = Instant::now();
            for e in &events {
                match e.data {
                    LISTENER => self.accept_ready(now),
                    fd => self.drive(fd as Fd, now),
                }
            }
        }
        self.events = events;
        // Still busy after its looks: again after the runtime's next round.
        if busy {
            return Some(Instant::now());
        }
        self.deadlines.first().map(|&(t, _)| t).into_iter().chain(self.retry_accept).min()
    }

    /// Accepts while connections wait and there is room.
    fn accept_ready(&mut self, now: Instant) {
        while self.conns.len() < self.st.max {
            match self.net().accept(self.lfd) {
                Ok((fd, _)) => {
                    self.st.accepted.fetch_add(1, Ordering::Relaxed);
                    self.retry_delay = EMFILE_RETRY;
                    if self.ep.add(fd, EPOLLIN, fd as u64).is_err() {
                        let _ = self.net().close(fd);
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
        let step = entry.app.drive(&self.st.net, fd, &mut self.scratch, now);
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

    /// Ends connection `fd`. The connection map gives its storage back as it
    /// empties, by the rule of `shrink` (issue 13; O(1) amortised).
    fn finish(&mut self, fd: Fd) {
        if let Some(entry) = self.conns.remove(&fd) {
            self.conns.shrink_if_sparse();
            if let Some(t) = entry.deadline {
                self.deadlines.remove(&(t, fd));
            }
            // A descriptor of ours is free: accepting may work again.
            self.retry_accept = None;
            // Closing takes it off the interest list too.
            let _ = self.net().close(fd);
            self.st.active.store(self.conns.len(), Ordering::Relaxed);
        }
    }

    /// On stop: every connection is shut down (its peer sees the end) and closed.
    fn close_all(&mut self) {
        for (&fd, _) in self.conns.iter() {
            let _ = self.net().shutdown(fd, SHUT_RDWR);
            let _ = self.net().close(fd);
        }
        self.conns.clear();
        self.deadlines.clear();
        self.st.active.store(0, Ordering::Relaxed);
    }
}

impl Resident for Loop {
    fn step(&mut self, _now: Instant, waker: &Waker) -> Option<Instant> {
        self.step_loop(waker)
    }
}
