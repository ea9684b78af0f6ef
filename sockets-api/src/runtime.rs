//! The runtime: drives the sans-IO [`Stack`] in real time on a thread of its own.
//!
//! The thread sleeps in poll(2) on the device's file descriptor and on a waker
//! (an eventfd that application calls write to), with a timeout at the core's
//! next deadline: no busy polling. Each time it wakes it feeds inbound frames to
//! the stack, runs due timers, hands outbound frames to the device, and then
//! notifies every thread blocked in a call (a condition variable), which
//! re-checks its own condition.

use stack::device::Device;
use stack::{Counters, Instant, Stack};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// State shared between the runtime thread and application threads.
#[derive(Debug)]
pub struct Shared {
    stack: Mutex<Stack>,
    /// Notified after every round of the runtime and after every application call
    /// that may change readiness.
    changed: Condvar,
    waker: Waker,
    epoch: std::time::Instant,
    stop: AtomicBool,
}

impl Shared {
    /// The stack's clock: microseconds since the runtime started.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Runs `f` on the stack, then wakes the runtime so that whatever `f` queued
    /// is sent and any deadline it set is honoured, and wakes blocked callers.
    pub fn with_stack<R>(&self, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
        let mut stack = self.lock();
        let now = self.now();
        let r = f(&mut stack, now);
        drop(stack);
        self.waker.wake();
        self.changed.notify_all();
        r
    }

    /// Blocks until `f` returns `Some`, re-checking after every change, or until
    /// `timeout` passes (then `None`). `f` runs with the stack locked.
    pub fn wait_for<R>(&self, timeout: Option<Duration>, mut f: impl FnMut(&mut Stack, Instant) -> Option<R>) -> Option<R> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut stack = self.lock();
        loop {
            let now = self.now();
            if let Some(r) = f(&mut stack, now) {
                drop(stack);
                self.waker.wake();
                return Some(r);
            }
            if self.stop.load(Ordering::Acquire) {
                return None;
            }
            stack = match deadline {
                None => self.changed.wait(stack).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.changed.wait_timeout(stack, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }

    fn lock(&self) -> MutexGuard<'_, Stack> {
        // A panic while holding the lock is a bug elsewhere; the stack's state is
        // still the best we have, so keep going rather than poisoning every caller.
        self.stack.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the runtime has stopped (after [`Runtime::stop`] or a device error).
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
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
            stack: Mutex::new(stack),
            changed: Condvar::new(),
            waker: Waker::new()?,
            epoch: std::time::Instant::now(),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("tapstack".into()).spawn(move || {
            let result = run(&s, device);
            s.stop.store(true, Ordering::Release);
            s.changed.notify_all();
            result
        })?;
        Ok(Runtime { shared, thread: Some(thread) })
    }

    /// The state shared with application threads (what the socket calls use).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A snapshot of every counter.
    pub fn counters(&self) -> Counters {
        self.shared.lock().counters().clone()
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

/// The loop of the runtime thread.
fn run<D: Device>(shared: &Shared, mut device: D) -> io::Result<()> {
    let mut buf = vec![0u8; 65536];
    {
        let mut stack = shared.lock();
        let now = shared.now();
        stack.start(now);
        flush_tx(&mut stack, &mut device, now)?;
    }
    let result = loop {
        if shared.stop.load(Ordering::Acquire) {
            break Ok(());
        }
        let deadline = {
            let stack = shared.lock();
            stack::time::earliest(stack.poll_at(), device.poll_at())
        };
        if let Err(e) = sleep_until(shared, device.readable_fd(), deadline) {
            break Err(e);
        }
        shared.waker.drain();
        let mut stack = shared.lock();
        let now = shared.now();
        if let Err(e) = round(&mut stack, &mut device, &mut buf, now) {
            break Err(e);
        }
        drop(stack);
        shared.changed.notify_all();
    };
    let flushed = device.flush();
    result.and(flushed)
}

/// One round: inbound frames, due timers, outbound frames.
fn round<D: Device>(stack: &mut Stack, device: &mut D, buf: &mut [u8], now: Instant) -> io::Result<()> {
    for _ in 0..RX_BATCH {
        match device.recv(now, buf)? {
            Some(n) => {
                stack.receive(now, &buf[..n]);
                // Answer as we go so that a burst does not pile up in the queue.
                if stack.has_transmit() {
                    flush_tx(stack, device, now)?;
                }
            }
            None => break,
        }
    }
    if stack.poll_at().is_some_and(|t| t <= now) {
        stack.poll(now);
    }
    flush_tx(stack, device, now)
}

fn flush_tx<D: Device>(stack: &mut Stack, device: &mut D, now: Instant) -> io::Result<()> {
    let mut err = None;
    stack.transmit(|frame| {
        if err.is_none() {
            if let Err(e) = device.send(now, frame) {
                err = Some(e);
            }
        }
    });
    err.map_or(Ok(()), Err)
}

/// Sleeps in poll(2) until the device is readable, the waker fires, or `deadline`.
fn sleep_until(shared: &Shared, device_fd: Option<RawFd>, deadline: Option<Instant>) -> io::Result<()> {
    let mut fds = [
        libc::pollfd { fd: shared.waker.fd, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: device_fd.unwrap_or(-1), events: libc::POLLIN, revents: 0 },
    ];
    let timeout = deadline.map(|d| d.saturating_duration_since(shared.now()));
    let ts = timeout.map(|t| libc::timespec { tv_sec: t.as_secs() as libc::time_t, tv_nsec: t.subsec_nanos() as libc::c_long });
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
