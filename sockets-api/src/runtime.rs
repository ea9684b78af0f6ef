//! The runtime: drives the sans-IO [`Stack`] in real time on a thread of its own.
//!
//! The thread sleeps in poll(2) on the device's file descriptor and on an
//! eventfd (that application calls write to), with a timeout at the core's
//! next deadline: no busy polling. Each time it wakes it reads a batch of
//! frames from the device, then under the lock feeds them to the stack, runs
//! due timers and copies out what the stack queued, and after the lock writes
//! those frames to the device. The device is never touched under the lock.
//!
//! Readiness, not broadcast: the core reports which sockets an event touched
//! (`Tcp::drain_changed`, `Udp::drain_changed`), the descriptor table maps them
//! to descriptors, and only those descriptors' waiters are woken
//! ([`crate::readiness`]): threads blocked in calls, async tasks and epoll
//! instances alike, all as `std::task::Waker`s.
//!
//! Tracing: after every round, and after every call, the runtime drains the
//! TCP core's state transitions and hands them to the subscribers of
//! [`crate::Net::trace_transitions`] (`transition_trace.rs`).

use crate::eventfd::EventFd;
use crate::exit::Exit;
use crate::fd_table::{CoreKey, Fd, FdTable};
use crate::raw_ready::{self, RawReady};
use crate::readiness::Registry;
use crate::resident::{self, Resident, Residents};
use crate::transition_trace::Tracers;
pub use crate::transition_trace::TransitionTrace;
use stack::device::Device;
use stack::driver::{Driver, FrameBatch};
use stack::{Counters, Instant, Stack};
use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::Duration;

/// What a stop may take beyond the stack's `exit_linger`: the last frames'
/// writes and the device's flush (a pcap file).
const STOP_MARGIN: Duration = Duration::from_secs(1);

/// Inbound frames handled per wake-up before timers and transmission get a turn,
/// so a flood cannot starve them.
const RX_BATCH: usize = 64;

/// After this long with no frame moved, the frame batches give back the
/// buffers a burst grew them to ([`FrameBatch::trim`]; issue 13: memory
/// returns after an attack even when nothing comes after it).
const IDLE_TRIM: Duration = Duration::from_secs(1);

/// What the runtime's lock guards: the stack, the socket descriptors over it,
/// and who waits on which of them.
#[derive(Debug)]
pub struct Core {
    pub stack: Stack,
    pub sockets: FdTable,
    pub ready: Registry,
    /// Waiters taken from `ready`, to be woken once the lock is released.
    pending: Vec<Waker>,
    /// The eventfds of exported sockets (`AsRawFd`) kept readable with them.
    raw: RawReady,
}

impl Core {
    /// A call touched `fd`: the reverse map follows what it stands for now, and
    /// its waiters (other threads, tasks, epoll instances) get to look again.
    pub fn touch(&mut self, fd: Fd) {
        self.sockets.rekey(fd);
        self.ready.changed(fd, &mut self.pending);
        self.raw.changed(fd, &self.sockets, &mut self.stack);
    }

    /// `fd`'s kernel eventfd follows its readability from now on, for an event
    /// loop outside tapstack (see `raw_ready`). Whether it can (a runtime's socket).
    pub fn export_readiness(&mut self, fd: Fd) -> bool {
        self.raw.export(fd, &mut self.sockets, &mut self.stack)
    }

    /// `fd` was closed: its waiters wake (to answer EBADF), and it leaves every
    /// epoll interest list.
    pub fn closed(&mut self, fd: Fd) {
        self.ready.closed(fd, &mut self.pending);
        self.raw.changed(fd, &self.sockets, &mut self.stack);
    }

    /// Frees epoll instance `id`; whoever waits on it wakes.
    pub fn close_epoll(&mut self, id: usize) {
        self.ready.epoll_close(id, &mut self.pending);
    }

    /// Takes the core's report of what changed and moves those sockets'
    /// waiters to `pending`: O(changed).
    fn collect_changes(&mut self) {
        let Core { stack, sockets, ready, pending, raw } = self;
        stack.tcp().0.drain_changed(|i| {
            ready.tcp_changed(i, pending);
            if let Some(fd) = sockets.owner(CoreKey::Tcp(i)) {
                ready.changed(fd, pending);
                raw.note(fd);
            }
        });
        stack.udp().0.drain_changed(|i| {
            if let Some(fd) = sockets.owner(CoreKey::Udp(i)) {
                ready.changed(fd, pending);
                raw.note(fd);
            }
        });
        raw.changed_noted(sockets, stack);
    }
}

thread_local! {
    /// Wakers taken under the lock, woken after it; swapped with `Core::pending`
    /// so neither allocates in steady state.
    static TO_WAKE: Cell<Vec<Waker>> = const { Cell::new(Vec::new()) };
    /// This thread's waker for blocking calls (it unparks the thread).
    static PARKER: Waker = Waker::from(Arc::new(Unpark(std::thread::current())));
}

/// Wakes a thread blocked in a call.
struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Counts a thread among the waiters while it lives.
pub(crate) struct WaiterCount<'a>(&'a AtomicUsize);

impl Drop for WaiterCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// State shared between the runtime thread and application threads.
#[derive(Debug)]
pub struct Shared {
    core: Mutex<Core>,
    /// Threads asleep in [`Shared::wait_core`], and the signal that the count grew
    /// (for [`Shared::wait_for_waiters`]).
    waiting: AtomicUsize,
    waiting_changed: Condvar,
    waker: Arc<EventFd>,
    /// Applications stepped on the runtime's thread (the services).
    residents: Residents,
    epoch: std::time::Instant,
    stop: AtomicBool,
    /// Whether the runtime thread has ended, and the signal that it has: a stop
    /// is over (see [`Shared::is_stopped`]).
    ended: Mutex<bool>,
    ended_changed: Condvar,
    /// How long a stop may take: the stack's `exit_linger`, and a margin for the
    /// last writes and the device's flush.
    stop_within: Duration,
    /// The program ends with this stop ([`Shared::stop_before_exit`]).
    exiting: AtomicBool,
    /// Subscribers to TCP state transitions.
    tracers: Tracers,
}
impl Shared {
    /// Subscribes to TCP state transitions, with room for `capacity` of them
    /// waiting to be received (at least 1).
    pub fn trace_transitions(&self, capacity: usize) -> TransitionTrace {
        self.tracers.subscribe(capacity, !self.is_stopped())
    }

    /// The stack's clock: microseconds since the runtime started.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Runs `f` on the stack, then wakes the runtime if `f` queued frames or set an
    /// earlier deadline (so they are sent and honoured), and wakes the waiters
    /// of the sockets `f` changed.
    pub fn with_stack<R>(&self, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
        self.with_core(|core, now| f(&mut core.stack, now))
    }

    /// Runs `f` under the lock without waking anyone: for looks that change nothing.
    pub fn inspect<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        f(&mut self.lock())
    }

    /// Like [`Shared::with_stack`], with the descriptor table too. A call on a
    /// descriptor should [`Core::touch`] it, so its other waiters look again.
    pub fn with_core<R>(&self, f: impl FnOnce(&mut Core, Instant) -> R) -> R {
        let mut core = self.lock();
        let now = self.now();
        let before = core.stack.poll_at();
        let r = f(&mut core, now);
        self.finish(core, before);
        r
    }

    /// What ends every turn under the lock: the transitions go to their
    /// subscribers, the changed sockets' waiters are taken, the lock is released,
    /// and then (no system call under the lock) the runtime is woken if the turn
    /// queued frames or set an earlier deadline than `before`, and the waiters are.
    fn finish(&self, mut core: MutexGuard<'_, Core>, before: Option<Instant>) {
        self.tracers.publish(&mut core.stack);
        core.collect_changes();
        let wake_runtime = needs_runtime(&core.stack, before);
        self.release(core, wake_runtime);
    }

    /// Releases the lock, then wakes the runtime (if asked) and the pending
    /// waiters, and closes the reserved descriptor numbers the table gave back.
    fn release(&self, mut core: MutexGuard<'_, Core>, wake_runtime: bool) {
        let mut wakers = TO_WAKE.with(|w| w.take());
        std::mem::swap(&mut wakers, &mut core.pending);
        let released = core.sockets.numbers().has_released().then(|| core.sockets.numbers().take_released());
        let signals = raw_ready::take(&mut core.raw);
        drop(core);
        // Before the numbers go back: a closed socket's eventfd is drained first.
        raw_ready::sync(signals);
        released.into_iter().flatten().for_each(close_reserved);
        // On the runtime's own thread (a resident's call) it is awake already,
        // and takes what was queued before it sleeps.
        if wake_runtime && !resident::on_runtime_thread() {
            self.waker.wake();
        }
        for w in wakers.drain(..) {
            w.wake();
        }
        TO_WAKE.with(|w| w.set(wakers));
    }

    /// Blocks until `f` returns `Some`, re-checking after every round of the
    /// runtime, or until `timeout` passes (then `None`). `f` runs with the stack
    /// locked. For conditions on the stack as a whole (an address probe); socket
    /// calls wait on their descriptors ([`Shared::wait_core`]).
    pub fn wait_for<R>(
        &self,
        timeout: Option<Duration>,
        mut f: impl FnMut(&mut Stack, Instant) -> Option<R>,
    ) -> Option<R> {
        self.wait_core(timeout, |core, w| core.ready.wait_any(w), |core, now| f(&mut core.stack, now))
    }

    /// Blocks until `f` returns `Some`, or `timeout` passes, or the runtime stops
    /// (then `None`, without running `f`: the stopping runtime closes every
    /// descriptor, and a caller must see ENETDOWN, not what is left). Each time `f` finds nothing, `register` puts this thread's
    /// waker where the change it waits for will find it (the waiters of the
    /// descriptors it waits on), under the same lock, so no wake-up is lost; the
    /// thread then sleeps until woken. What `f` queued goes out at once either
    /// way (a send that queued part of its data, a read that opened the window).
    pub fn wait_core<R>(
        &self,
        timeout: Option<Duration>,
        mut register: impl FnMut(&mut Core, &Waker),
        mut f: impl FnMut(&mut Core, Instant) -> Option<R>,
    ) -> Option<R> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut counted = None;
        loop {
            let mut core = self.lock();
            let now = self.now();
            let before = core.stack.poll_at();
            if self.stop.load(Ordering::Acquire) {
                self.finish(core, before);
                self.await_end_of_stop();
                return None;
            }
            if let Some(r) = f(&mut core, now) {
                self.finish(core, before);
                return Some(r);
            }
            // What `f` itself touched (a recv marks its connection) must not
            // wake the waiter it is about to register: take those changes first.
            core.collect_changes();
            if resident::on_runtime_thread() {
                // Nobody else runs the stack to wake it: a blocking call made
                // on the runtime's thread returns as a nonblocking one does.
                self.finish(core, before);
                return None;
            }
            PARKER.with(|w| register(&mut core, w));
            if counted.is_none() {
                self.waiting.fetch_add(1, Ordering::AcqRel);
                counted = Some(WaiterCount(&self.waiting));
                self.waiting_changed.notify_all();
            }
            self.finish(core, before);
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    std::thread::park_timeout(left);
                }
            }
        }
    }

    /// Counts the calling thread among the waiters ([`Shared::waiters`]) until
    /// the guard is dropped: for a call that sleeps elsewhere than in
    /// [`Shared::wait_core`] (a poll in the kernel's poll(2)). Counted under the
    /// lock, as there, so [`Shared::wait_for_waiters`] misses no change.
    pub(crate) fn count_waiter(&self) -> WaiterCount<'_> {
        let _core = self.lock();
        self.waiting.fetch_add(1, Ordering::AcqRel);
        self.waiting_changed.notify_all();
        WaiterCount(&self.waiting)
    }

    /// One try of a call for an async task: `f` runs under the lock; if it says
    /// EAGAIN (`None`), `register` puts the task's waker where the change it waits
    /// for will find it (under the same lock: no lost wake-up) and the task is
    /// told to wait.
    pub fn poll_core<R>(
        &self,
        waker: &Waker,
        register: impl FnOnce(&mut Core, &Waker),
        f: impl FnOnce(&mut Core, Instant) -> Option<R>,
    ) -> std::task::Poll<R> {
        let mut core = self.lock();
        let now = self.now();
        let before = core.stack.poll_at();
        let r = f(&mut core, now);
        if r.is_none() {
            // As in wait_core: `f`'s own changes first, so it does not wake itself.
            core.collect_changes();
            register(&mut core, waker);
        }
        self.finish(core, before);
        match r {
            Some(r) => std::task::Poll::Ready(r),
            None => std::task::Poll::Pending,
        }
    }

    /// Runs `app` on the runtime's thread from now on ([`crate::resident`]),
    /// stepped once at once and then whenever the waker it registers is woken
    /// or the deadline it returned passes; its number, for
    /// [`Shared::remove_resident`], or `None` if the runtime has ended. From
    /// a resident's step too (it is stepped from the next round).
    pub fn add_resident(&self, app: Arc<Mutex<dyn Resident>>) -> Option<u64> {
        let id = self.residents.add(app, &self.waker)?;
        self.waker.wake();
        Some(id)
    }

    /// Takes resident `id` off the runtime's thread: once this returns, it is
    /// not being stepped and never will be again. Whether it was there (not
    /// after the runtime has ended: its residents are let go then). From a
    /// resident's step too (a service's `Server` dropped there): it then takes
    /// effect at once, without waiting for the round of steps to end; but not
    /// from the step of the resident being removed (a service's loop holds
    /// its own lock while it steps, and stopping it takes that lock).
    pub fn remove_resident(&self, id: u64) -> bool {
        self.residents.remove(id)
    }

    /// Steps the residents that are due (none while the runtime stops: the
    /// stop closes their descriptors itself) and moves what their calls
    /// queued to `tx`; returns when they must be stepped again at the latest.
    fn step_residents(&self, tx: &mut FrameBatch) -> Option<Instant> {
        if self.stop.load(Ordering::Acquire) {
            return None;
        }
        let (stepped, next) = self.residents.step_due(std::time::Instant::now());
        if stepped > 0 {
            tx.take_transmit(&mut self.lock().stack);
        }
        next.map(|t| Instant::from_micros(t.saturating_duration_since(self.epoch).as_micros() as u64))
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

    /// Stops the runtime from any thread, as [`Runtime::stop`] does, and waits
    /// up to `timeout` for the runtime thread to end (its connections closed:
    /// see [`crate::exit`]); returns whether it has. For a thread that does not
    /// own the [`Runtime`], such as the one [`Runtime::stop_on_signals`] starts.
    pub fn stop_and_wait(&self, timeout: Duration) -> bool {
        self.shut_down();
        self.waker.wake();
        self.await_end(timeout)
    }

    /// Waits up to `timeout` for the runtime thread to end; returns whether it has.
    fn await_end(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        while !*ended {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            ended = self.ended_changed.wait_timeout(ended, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    /// How long a stop may take at most: the stack's `exit_linger` and a margin
    /// for the last writes and the device's flush.
    pub fn stop_within(&self) -> Duration {
        self.stop_within
    }

    /// [`Shared::stop_and_wait`] for a program that ends with the stop (killed
    /// by a signal: [`Runtime::stop_on_signals`]). The callers it wakes never
    /// return, as a killed program's threads never do, so that none runs its
    /// error path on the way out (prints "Network is down", exits with a status
    /// of its own instead of the signal's).
    pub fn stop_before_exit(&self, timeout: Duration) -> bool {
        self.exiting.store(true, Ordering::Release);
        self.stop_and_wait(timeout)
    }

    /// The runtime thread has ended: says so to [`Shared::stop_and_wait`].
    fn mark_ended(&self) {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.ended_changed.notify_all();
    }

    /// Stops the runtime for good and wakes every waiter (they answer ENETDOWN
    /// or EAGAIN): on [`Runtime::stop`], and when the runtime thread ends for
    /// any reason, a device error or a panic included. From then on every call
    /// fails with ENETDOWN; the runtime thread closes the descriptors
    /// ([`crate::exit`]) before it ends.
    fn shut_down(&self) {
        self.stop.store(true, Ordering::Release);
        // Ends the subscribers' iterators.
        self.tracers.clear();
        let mut core = self.lock();
        let Core { ready, pending, .. } = &mut *core;
        ready.all(pending);
        self.release(core, false);
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock is a bug elsewhere; the stack's state is
        // still the best we have, so keep going rather than poisoning every caller.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the runtime has stopped (after [`Runtime::stop`] or a device
    /// error): what makes calls fail with ENETDOWN. While a stop is under way
    /// (the runtime thread closing the connections: [`crate::exit`]) it waits
    /// for it to end first, for at most `exit_linger` and a second, so that a
    /// caller acting on the answer (a program that exits on ENETDOWN) cannot
    /// cut the closing short. On the runtime's thread (a resident's call) it
    /// does not wait: that thread is the one ending the stop.
    pub fn is_stopped(&self) -> bool {
        if !self.stop.load(Ordering::Acquire) {
            return false;
        }
        self.await_end_of_stop();
        true
    }

    /// What a caller that found the runtime stopping does before it answers
    /// ENETDOWN: waits for the stop to end; and if the program ends with it,
    /// never answers.
    fn await_end_of_stop(&self) {
        if resident::on_runtime_thread() {
            // The runtime's thread itself (a resident): it is what ends the stop.
            return;
        }
        self.await_end(self.stop_within);
        if self.exiting.load(Ordering::Acquire) {
            loop {
                std::thread::park();
            }
        }
    }
}

/// Closes the kernel descriptor that held a socket number the table gave back
/// (never under the core's lock).
pub(crate) fn close_reserved(fd: Fd) {
    // SAFETY: the number was reserved for the table (`kernel_fds`) and is no longer its.
    unsafe { libc::close(fd) };
}

impl Drop for Shared {
    /// The last handle is gone: the kernel descriptors reserved for the
    /// sockets' numbers are closed.
    fn drop(&mut self) {
        let core = self.core.get_mut().unwrap_or_else(|e| e.into_inner());
        core.sockets.numbers().all().for_each(close_reserved);
    }
}

/// Whether the runtime thread must wake after a call: the call queued frames, or
/// set a deadline earlier than the one the thread sleeps until (`before`).
fn needs_runtime(stack: &Stack, before: Option<Instant>) -> bool {
    stack.has_transmit() || stack.poll_at().is_some_and(|t| before.is_none_or(|b| t < b))
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
    ///
    /// Fails (InvalidInput) if the device's offloads are not the ones the
    /// stack's configuration says (`Config::offload`): the stack would drop the
    /// device's large segments, or expect ones it never gets.
    pub fn start<D: Device + Send + 'static>(mut stack: Stack, device: D) -> io::Result<Runtime> {
        if device.offloads() != stack.config().offload {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the device offloads {:?} but the stack is configured for {:?}",
                    device.offloads(),
                    stack.config().offload
                ),
            ));
        }
        // Numbers reserved from the kernel's, then beyond them: see `kernel_fds`.
        let mut sockets = FdTable::with_reserved_numbers();
        sockets.numbers().set_space(crate::kernel_limit::space());
        let stop_within = stack.tcp().0.config().exit_linger + STOP_MARGIN;
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                stack,
                sockets,
                ready: Registry::with_space(crate::kernel_limit::space()),
                pending: Vec::new(),
                raw: RawReady::default(),
            }),
            waiting: AtomicUsize::new(0),
            waiting_changed: Condvar::new(),
            waker: Arc::new(EventFd::new()?),
            residents: Residents::default(),
            epoch: std::time::Instant::now(),
            stop: AtomicBool::new(false),
            ended: Mutex::new(false),
            ended_changed: Condvar::new(),
            stop_within,
            exiting: AtomicBool::new(false),
            tracers: Tracers::default(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("tapstack".into()).spawn(move || {
            resident::enter_runtime_thread();
            /// However the thread ends (a device error, a panic), callers blocked
            /// in calls are woken and see the runtime stopped.
            struct WakeOnExit(Arc<Shared>);
            impl Drop for WakeOnExit {
                fn drop(&mut self) {
                    // Ended first: the callers woken then return at once.
                    self.0.mark_ended();
                    self.0.shut_down();
                    // Their handles on the shared state go with them.
                    self.0.residents.close();
                }
            }
            let guard = WakeOnExit(s);
            run(&guard.0, device)
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

    /// Stops the stack as a process's exit stops the kernel's sockets, and
    /// returns the error that stopped it early, if any. Dropping the runtime
    /// does the same.
    ///
    /// At once, every call fails with ENETDOWN and the threads blocked in calls
    /// wake with it. Then the runtime thread closes every descriptor as close(2)
    /// does (a FIN, or a RST where unread data is left: [`crate::exit`]) and
    /// runs until the peers have acknowledged the FINs, or for at most
    /// `TcpConfig::exit_linger` (2 s by default), when what is left is reset;
    /// then it flushes the device (a pcap file, say) and ends. So a peer never
    /// sees a connection left ESTABLISHED by a program that has gone, and the
    /// stop takes one round trip when the peers answer, the bound when they don't.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        self.shared.shut_down();
        self.shared.waker.wake();
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
/// The device is read and written outside the lock (frames wait in
/// [`FrameBatch`]es between the device and the core), so application calls are
/// never held up by a system call. Timers run at the time the thread wakes
/// ([`Driver::feed`]), not at their past deadlines: application calls stamp the
/// stack with the real clock, so the stack's time must not go back. Frames are
/// fed before the timers run, so that an answer that came in time (an ACK, say)
/// is seen before a timer acts on its absence.
fn run<D: Device>(shared: &Shared, mut device: D) -> io::Result<()> {
    let (mut rx, mut tx) = (FrameBatch::new(), FrameBatch::new());
    let now = {
        let mut core = shared.lock();
        let now = shared.now();
        core.stack.start(now);
        tx.take_transmit(&mut core.stack);
        now
    };
    tx.send(&mut device, now)?;
    let mut exit = None;
    // When a resident must be stepped again at the latest.
    let mut residents_at = None;
    // Whether the last round moved frames. Then the device likely has more
    // (the kernel answers what we write while we write it: an ACK, the next
    // segments), so the thread reads again at once; it sleeps in poll(2) only
    // after a round that moved none, which saves a poll and an eventfd read
    // per round under load.
    let mut busy = false;
    let mut last_busy = now;
    let result = loop {
        if shared.stop.load(Ordering::Acquire) {
            let (done, now) = exit_round(shared, &mut exit, &mut tx);
            if let Err(e) = tx.send(&mut device, now) {
                break Err(e);
            }
            if done {
                break Ok(());
            }
        }
        if !busy {
            let next = Driver::next_deadline(&shared.lock().stack, &device, &());
            let deadline = stack::time::earliest(next, exit.map(|x: Exit| x.deadline()));
            let mut deadline = stack::time::earliest(deadline, residents_at);
            if rx.has_spare() || tx.has_spare() {
                let idle_at = last_busy + IDLE_TRIM.into();
                if shared.now() >= idle_at {
                    rx.trim();
                    tx.trim();
                } else {
                    deadline = stack::time::earliest(deadline, Some(idle_at));
                }
            }
            match sleep_until(shared, device.readable_fd(), deadline) {
                Ok(true) => shared.waker.drain(),
                Ok(false) => {}
                Err(e) => break Err(e),
            }
        }
        let got = match rx.recv(&mut device, shared.now(), RX_BATCH) {
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        let mut core = shared.lock();
        let now = shared.now();
        Driver::feed(&mut core.stack, &mut rx, &mut tx, now);
        shared.tracers.publish(&mut core.stack);
        core.collect_changes();
        let Core { ready, pending, .. } = &mut *core;
        ready.round(pending);
        shared.release(core, false);
        // The services answer the round before its frames go out: one flush.
        residents_at = shared.step_residents(&mut tx);
        busy = got > 0 || !tx.is_empty();
        if busy {
            last_busy = now;
        }
        if let Err(e) = tx.send(&mut device, now) {
            break Err(e);
        }
    };
    let flushed = device.flush();
    result.and(flushed)
}

/// A round of a stopping runtime: the first time, every descriptor is closed
/// ([`Exit::begin`]); every time, whether the stack may stop now
/// ([`Exit::done`]). What the stack queued (FINs, RSTs) is moved to `tx`.
fn exit_round(shared: &Shared, exit: &mut Option<Exit>, tx: &mut FrameBatch) -> (bool, Instant) {
    let mut core = shared.lock();
    let now = shared.now();
    let Core { stack, sockets, .. } = &mut *core;
    let x = *exit.get_or_insert_with(|| Exit::begin(sockets, stack, now));
    let done = x.done(stack, now);
    tx.take_transmit(stack);
    (done, now)
}

/// Sleeps in poll(2) until the device is readable, the waker fires, or
/// `deadline`; returns whether the waker fired (its eventfd is to be drained).
fn sleep_until(shared: &Shared, device_fd: Option<RawFd>, deadline: Option<Instant>) -> io::Result<bool> {
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
    Ok(fds[0].revents != 0)
}
