//! The runtime: drives the sans-IO [`Stack`] in real time on a thread of its own.
//!
//! The thread sleeps in poll(2) on the device's file descriptor and on a waker
//! (an eventfd that application calls write to), with a timeout at the core's
//! next deadline: no busy polling. Each time it wakes it feeds inbound frames to
//! the stack, runs due timers, hands outbound frames to the device, and then
//! notifies every thread blocked in a call (a condition variable), which
//! re-checks its own condition.
//!
//! Tracing: after every round, and after every call, the runtime drains the
//! TCP core's state transitions and hands them to the subscribers of
//! [`crate::Net::trace_transitions`] (bounded channels; a full channel drops and
//! counts). Without subscribers they are discarded.

use crate::fd_table::FdTable;
use stack::device::Device;
use stack::driver::Driver;
use stack::tcp::Transition;
use stack::{Counters, Instant, Stack};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Inbound frames handled per wake-up before timers and transmission get a turn,
/// so a flood cannot starve them.
const RX_BATCH: usize = 64;

/// A nonblocking eventfd: application threads signal it, the runtime sleeps on it.
#[derive(Debug)]
struct Waker {
    fd: RawFd,
}

impl Waker {
    fn new() -> io::Result<Waker> {
        // SAFETY: plain syscall; the fd is owned by Waker and closed in Drop.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Waker { fd })
    }

    fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd. A full counter
        // (EAGAIN) already means "wake up", so the result is not needed.
        unsafe { libc::write(self.fd, &one as *const u64 as *const libc::c_void, 8) };
    }

    fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own nonblocking eventfd.
        unsafe { libc::read(self.fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.fd) };
    }
}

/// What the runtime's lock guards: the stack and the socket descriptors over it.
#[derive(Debug)]
pub struct Core {
    pub stack: Stack,
    pub sockets: FdTable,
}

/// State shared between the runtime thread and application threads.
#[derive(Debug)]
pub struct Shared {
    core: Mutex<Core>,
    /// Notified after every round of the runtime and after every application call
    /// that may change readiness.
    changed: Condvar,
    /// Threads asleep in [`Shared::wait_core`], and the signal that the count grew
    /// (for [`Shared::wait_for_waiters`]).
    waiting: AtomicUsize,
    waiting_changed: Condvar,
    waker: Waker,
    epoch: std::time::Instant,
    stop: AtomicBool,
    /// Subscribers to TCP state transitions.
    tracers: Mutex<Vec<Tracer>>,
}

/// One subscriber to TCP state transitions: its channel and its count of drops.
#[derive(Debug)]
struct Tracer {
    tx: SyncSender<Transition>,
    lost: Arc<AtomicU64>,
}

/// TCP state transitions as they happen, for a program to print or check (what
/// `tapstack up --trace` shows): from [`crate::Net::trace_transitions`]. Each is
/// a [`Transition`] (connection, addresses, the two states, and the cause in RFC
/// 9293's notation); its `Display` is one line. The channel is bounded: when the
/// receiver falls behind, new transitions are dropped and counted ([`TransitionTrace::lost`]).
/// The iterator ends when the runtime stops.
#[derive(Debug)]
pub struct TransitionTrace {
    rx: Receiver<Transition>,
    lost: Arc<AtomicU64>,
}

impl TransitionTrace {
    /// The next transition, waiting up to `timeout`; `None` if none came (or the
    /// runtime has stopped).
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<Transition> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next transition if one is waiting.
    pub fn try_recv(&self) -> Option<Transition> {
        self.rx.try_recv().ok()
    }

    /// Every transition, waiting for each; ends when the runtime stops.
    pub fn iter(&self) -> impl Iterator<Item = Transition> + '_ {
        self.rx.iter()
    }

    /// Transitions dropped because this receiver's channel was full.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

impl Shared {
    /// Subscribes to TCP state transitions, with room for `capacity` of them
    /// waiting to be received (at least 1).
    pub fn trace_transitions(&self, capacity: usize) -> TransitionTrace {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let lost = Arc::new(AtomicU64::new(0));
        if !self.is_stopped() {
            self.lock_tracers().push(Tracer { tx, lost: lost.clone() });
        }
        TransitionTrace { rx, lost }
    }

    fn lock_tracers(&self) -> MutexGuard<'_, Vec<Tracer>> {
        self.tracers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the TCP core's new transitions to the subscribers (or discards them
    /// when there are none). Called with the core locked.
    fn publish(&self, stack: &mut Stack) {
        let mut tracers = self.lock_tracers();
        stack.tcp().0.drain_transitions(|t| {
            tracers.retain(|s| match s.tx.try_send(*t) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    s.lost.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
        });
    }

    /// The stack's clock: microseconds since the runtime started.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Runs `f` on the stack, then wakes the runtime if `f` queued frames or set an
    /// earlier deadline (so they are sent and honoured), and wakes blocked callers.
    pub fn with_stack<R>(&self, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
        self.with_core(|core, now| f(&mut core.stack, now))
    }

    /// Runs `f` under the lock without waking anyone: for looks that change nothing.
    pub fn inspect<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        f(&mut self.lock())
    }

    /// Like [`Shared::with_stack`], with the descriptor table too.
    pub fn with_core<R>(&self, f: impl FnOnce(&mut Core, Instant) -> R) -> R {
        let mut core = self.lock();
        let now = self.now();
        let before = core.stack.poll_at();
        let r = f(&mut core, now);
        self.publish(&mut core.stack);
        let wake = needs_runtime(&core.stack, before);
        drop(core);
        if wake {
            self.waker.wake();
        }
        self.changed.notify_all();
        r
    }

    /// Blocks until `f` returns `Some`, re-checking after every change, or until
    /// `timeout` passes (then `None`). `f` runs with the stack locked.
    pub fn wait_for<R>(
        &self,
        timeout: Option<Duration>,
        mut f: impl FnMut(&mut Stack, Instant) -> Option<R>,
    ) -> Option<R> {
        self.wait_core(timeout, |core, now| f(&mut core.stack, now))
    }

    /// Like [`Shared::wait_for`], with the descriptor table too. Returns `None` also when
    /// the runtime has stopped. Success wakes the runtime (to send what `f` queued)
    /// and the other waiters (whose condition `f` may have changed).
    pub fn wait_core<R>(
        &self,
        timeout: Option<Duration>,
        mut f: impl FnMut(&mut Core, Instant) -> Option<R>,
    ) -> Option<R> {
        /// Counts this thread among the waiters while it lives.
        struct Counted<'a>(&'a AtomicUsize);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut core = self.lock();
        let mut counted = None;
        loop {
            let now = self.now();
            let before = core.stack.poll_at();
            let r = f(&mut core, now);
            self.publish(&mut core.stack);
            if let Some(r) = r {
                let wake = needs_runtime(&core.stack, before);
                drop(core);
                if wake {
                    self.waker.wake();
                }
                self.changed.notify_all();
                return Some(r);
            }
            // A call that waits may still have done part of its work (a stream send
            // queued some data, a read opened the window): what that queued must go
            // out now, not at the runtime's next deadline.
            if needs_runtime(&core.stack, before) {
                self.waker.wake();
            }
            if self.stop.load(Ordering::Acquire) {
                return None;
            }
            if counted.is_none() {
                self.waiting.fetch_add(1, Ordering::AcqRel);
                counted = Some(Counted(&self.waiting));
                self.waiting_changed.notify_all();
            }
            core = match deadline {
                None => self.changed.wait(core).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.changed.wait_timeout(core, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }

    /// Threads blocked in a call right now.
    pub fn waiters(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Waits until at least `n` threads are blocked in calls (asleep, the lock
    /// released), or `timeout` passes; returns whether they are. For tests that must
    /// act only once another thread is really blocked.
    pub fn wait_for_waiters(&self, n: usize, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut core = self.lock();
        while self.waiters() < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            core = self.waiting_changed.wait_timeout(core, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock is a bug elsewhere; the stack's state is
        // still the best we have, so keep going rather than poisoning every caller.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the runtime has stopped (after [`Runtime::stop`] or a device error).
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// Whether the runtime thread must wake after a call: the call queued frames, or
/// set a deadline earlier than the one the thread sleeps until (`before`).
fn needs_runtime(stack: &Stack, before: Option<Instant>) -> bool {
    stack.has_transmit() || stack.poll_at().is_some_and(|t| before.is_none_or(|b| t < b))
}

/// Dropped when the runtime thread ends, by returning or by unwinding.
struct StoppedOnExit<'a>(&'a Shared);

impl Drop for StoppedOnExit<'_> {
    fn drop(&mut self) {
        let s = self.0;
        s.stop.store(true, Ordering::Release);
        // Ends the subscribers' iterators.
        s.lock_tracers().clear();
        // Taking the lock orders the store before any waiter's next check: a
        // waiter between its check of `stop` and its wait holds the lock, so
        // the notification below cannot fall between the two.
        drop(s.lock());
        s.changed.notify_all();
        s.waiting_changed.notify_all();
    }
}

/// A running stack: the thread that drives it and the state shared with callers.
#[derive(Debug)]
pub struct Runtime {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Runtime {
    /// Starts driving `stack` on `device` on a new thread. The stack announces
    /// itself (gratuitous ARP) at once.
    pub fn start<D: Device + Send + 'static>(stack: Stack, device: D) -> io::Result<Runtime> {
        let shared = Arc::new(Shared {
            core: Mutex::new(Core { stack, sockets: FdTable::new() }),
            changed: Condvar::new(),
            waiting: AtomicUsize::new(0),
            waiting_changed: Condvar::new(),
            waker: Waker::new()?,
            epoch: std::time::Instant::now(),
            stop: AtomicBool::new(false),
            tracers: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("tapstack".into()).spawn(move || {
            // Marks the runtime stopped and wakes every waiter however the thread
            // ends, a panic included (issue 13, item 1): blocked callers then
            // return ENETDOWN instead of sleeping forever.
            let _stopped = StoppedOnExit(&s);
            run(&s, device)
        })?;
        Ok(Runtime { shared, thread: Some(thread) })
    }

    /// Opens the TAP `tap` (creating it if needed, which takes CAP_NET_ADMIN) and
    /// starts a stack with `config` on it: what a program needs before its first
    /// socket call. The kernel side of the TAP (its address, `ip link set up`) is the
    /// caller's to configure.
    pub fn start_on_tap(tap: &str, config: stack::Config) -> io::Result<Runtime> {
        let stack = Stack::new(config).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let device = stack::device::tap::TapDevice::open(tap)?;
        Runtime::start(stack, device)
    }

    /// The state shared with application threads (what the socket calls use).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A handle for the socket calls, to share with application threads.
    pub fn net(&self) -> crate::Net {
        crate::Net::new(self.shared.clone())
    }

    /// A snapshot of every counter.
    pub fn counters(&self) -> Counters {
        self.shared.lock().stack.counters().clone()
    }

    /// Stops the thread, flushes the device (a pcap file, say) and returns the
    /// error that stopped it early, if any.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.waker.wake();
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| Err(io::Error::other("the stack thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// The loop of the runtime thread: the steps are `stack::driver`'s; what is
/// the runtime's own is the sleeping, the lock and the wake-ups.
///
/// Timers run at the time the thread wakes ([`Driver::run_due`]), not at their
/// past deadlines: application calls stamp the stack with the real clock, so
/// the stack's time must not go back. Frames are read before the timers run,
/// so that an answer that came in time (an ACK, say) is seen before a timer
/// acts on its absence.
fn run<D: Device>(shared: &Shared, mut device: D) -> io::Result<()> {
    let mut driver = Driver::new();
    {
        let mut core = shared.lock();
        let now = shared.now();
        Driver::start(&mut core.stack, &mut device, &mut (), now)?;
    }
    let result = loop {
        if shared.stop.load(Ordering::Acquire) {
            break Ok(());
        }
        let deadline = {
            let core = shared.lock();
            Driver::next_deadline(&core.stack, &device, &())
        };
        if let Err(e) = sleep_until(shared, device.readable_fd(), deadline) {
            break Err(e);
        }
        shared.waker.drain();
        let mut core = shared.lock();
        let now = shared.now();
        let round = driver
            .receive(&mut core.stack, &mut device, &mut (), now, RX_BATCH)
            .and_then(|_| Driver::run_due(&mut core.stack, &mut device, now));
        if let Err(e) = round {
            break Err(e);
        }
        shared.publish(&mut core.stack);
        drop(core);
        shared.changed.notify_all();
    };
    let flushed = device.flush();
    result.and(flushed)
}

/// Sleeps in poll(2) until the device is readable, the waker fires, or `deadline`.
fn sleep_until(shared: &Shared, device_fd: Option<RawFd>, deadline: Option<Instant>) -> io::Result<()> {
    let mut fds = [
        libc::pollfd { fd: shared.waker.fd, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: device_fd.unwrap_or(-1), events: libc::POLLIN, revents: 0 },
    ];
    let timeout = deadline.map(|d| d.saturating_duration_since(shared.now()));
    let ts = timeout
        .map(|t| libc::timespec { tv_sec: t.as_secs() as libc::time_t, tv_nsec: t.subsec_nanos() as libc::c_long });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: fds and ts live across the call; a negative fd is ignored by poll.
    let r = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ts_ptr, std::ptr::null()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}
