//! Applications that run on the runtime's own thread (residents): stepped
//! after each round of frames, between the core taking them in and the frames
//! it queued going out. A service that answers a burst then costs no thread
//! switch, no futex and no eventfd per round: a service thread and the runtime
//! thread would otherwise hand the core's lock and the CPU back and forth for
//! every batch the TAP gives (the profiles in BENCHMARKS.md, issue 11).
//!
//! A resident is woken like any other waiter, by the `std::task::Waker` it
//! registers where its readiness lives (an epoll instance's wait list, with
//! `Epoll::poll`): that waker marks it due, and writes to the
//! runtime's eventfd only when it is woken from another thread (on the
//! runtime's own thread, the runtime looks at the marks before it sleeps).
//! A step must never block: a resident makes only nonblocking calls (a
//! blocking call made on the runtime's thread returns as if nonblocking, since
//! nobody else would run the stack to wake it).
//!
//! Bounds: the residents are the program's services, a handful; the runtime
//! looks at each one's mark and deadline once per round, and a step does a
//! bounded amount of work (each resident bounds its own).

use crate::eventfd::EventFd;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Wake, Waker};
use std::time::Instant;

/// An application stepped on the runtime's thread (see the module's docs).
pub trait Resident: Send {
    /// Does what nonblocking calls allow now. `waker` is what to register to
    /// be stepped again when something changes. Returns the time by which it
    /// wants to be stepped again in any case (`None`: only when woken).
    fn step(&mut self, now: Instant, waker: &Waker) -> Option<Instant>;
}

thread_local! {
    /// Whether this thread is a runtime's.
    static ON_RUNTIME: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as a runtime's, for the rest of its life.
pub(crate) fn enter_runtime_thread() {
    ON_RUNTIME.with(|c| c.set(true));
}

/// Whether the calling thread is a runtime's: a call made on it must not wait
/// for the runtime, nor wake it through its eventfd (it is awake).
pub(crate) fn on_runtime_thread() -> bool {
    ON_RUNTIME.with(|c| c.get())
}

/// A resident's waker: marks it due; from another thread, wakes the runtime.
#[derive(Debug)]
struct Mark {
    due: AtomicBool,
    runtime: Arc<EventFd>,
}

impl Wake for Mark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        // Already due: whoever set it has made sure the runtime will look.
        if !self.due.swap(true, Ordering::AcqRel) && !on_runtime_thread() {
            self.runtime.wake();
        }
    }
}

/// One resident, as the runtime keeps it.
struct Entry {
    id: u64,
    app: Arc<Mutex<dyn Resident>>,
    mark: Arc<Mark>,
    waker: Waker,
    /// When it asked to be stepped again at the latest.
    deadline: Option<Instant>,
}

/// The residents of one runtime.
#[derive(Default)]
pub(crate) struct Residents {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    list: Vec<Entry>,
    next_id: u64,
    /// The runtime has ended: no resident is taken any more.
    closed: bool,
}

impl std::fmt::Debug for Residents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Residents").field("len", &self.lock().list.len()).finish()
    }
}

impl Residents {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `app`, due at once; its id, or `None` if the runtime has ended.
    /// The caller wakes the runtime.
    pub(crate) fn add(&self, app: Arc<Mutex<dyn Resident>>, runtime: &Arc<EventFd>) -> Option<u64> {
        let mut inner = self.lock();
        if inner.closed {
            return None;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let mark = Arc::new(Mark { due: AtomicBool::new(true), runtime: runtime.clone() });
        let waker = Waker::from(mark.clone());
        inner.list.push(Entry { id, app, mark, waker, deadline: None });
        Some(id)
    }

    /// Takes resident `id` off the runtime; once this returns, it is not being
    /// stepped and never will be again. Whether it was there.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut inner = self.lock();
        let before = inner.list.len();
        inner.list.retain(|e| e.id != id);
        inner.list.len() != before
    }

    /// The runtime has ended: every resident is let go (their handles to the
    /// runtime with them) and none is taken any more.
    pub(crate) fn close(&self) {
        let list = {
            let mut inner = self.lock();
            inner.closed = true;
            std::mem::take(&mut inner.list)
        };
        drop(list);
    }

    /// Steps every resident that is due (woken, or its deadline passed).
    /// Returns how many were stepped, and when the runtime must step them
    /// again at the latest: `now` if one was woken meanwhile (by another's
    /// calls), else the earliest deadline.
    pub(crate) fn step_due(&self, now: Instant) -> (usize, Option<Instant>) {
        let mut inner = self.lock();
        let mut stepped = 0;
        for e in inner.list.iter_mut() {
            let woken = e.mark.due.swap(false, Ordering::AcqRel);
            if woken || e.deadline.is_some_and(|t| t <= now) {
                let mut app = e.app.lock().unwrap_or_else(|x| x.into_inner());
                e.deadline = app.step(now, &e.waker);
                stepped += 1;
            }
        }
        if inner.list.iter().any(|e| e.mark.due.load(Ordering::Acquire)) {
            return (stepped, Some(now));
        }
        (stepped, inner.list.iter().filter_map(|e| e.deadline).min())
    }
}
