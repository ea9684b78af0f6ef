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
//! A step may start or stop residents (drop a service's `Server`): the list is
//! taken out of its lock while the residents step (`Residents::step_due`), so
//! that adding or removing one from a step does not wait for the step that
//! makes it (a deadlock, before); a removal made from a step takes effect at
//! once (the resident is not stepped again, not even later in the same round)
//! and its entry is let go when the round ends. A removal from another thread
//! waits for the round to end, so that once it returns the resident is not
//! being stepped.
//!
//! Bounds: the residents are the program's services, a handful; the runtime
//! looks at each one's mark and deadline once per round, and a step does a
//! bounded amount of work (each resident bounds its own).

use crate::eventfd::EventFd;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Wake, Waker};
use std::thread::ThreadId;
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
    /// Signalled when a round of steps ends (`Inner::stepping` cleared).
    round_over: Condvar,
}

#[derive(Default)]
struct Inner {
    /// The residents; empty while a round steps them (they are out of the lock).
    list: Vec<Entry>,
    next_id: u64,
    /// The runtime has ended: no resident is taken any more.
    closed: bool,
    /// The thread stepping the residents, while a round goes on.
    stepping: Option<ThreadId>,
    /// The ids of the residents out of the lock for the round.
    out: Vec<u64>,
    /// Those of them removed during the round (by a step): not stepped again.
    removed: Vec<u64>,
    /// Threads waiting on `round_over`: a round's end signals only when some
    /// are (std's `notify_all` is a futex system call even with no waiter,
    /// and the runtime ends a round every few dozen frames).
    waiting: usize,
}

impl std::fmt::Debug for Residents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Residents").field("len", &(inner.list.len() + inner.out.len())).finish()
    }
}

impl Residents {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `app`, due at once; its id, or `None` if the runtime has ended.
    /// The caller wakes the runtime. From a step too (it joins the list when
    /// the round ends, and is stepped from the next).
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
    /// stepped (unless by the step that calls this) and never will be again.
    /// Whether it was there. From a step, it takes effect at once and its
    /// entry goes when the round ends; from another thread during a round, it
    /// waits for the round to end.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut inner = self.lock();
        while let Some(stepper) = inner.stepping {
            if stepper == std::thread::current().id() {
                if inner.out.contains(&id) && !inner.removed.contains(&id) {
                    inner.removed.push(id);
                    return true;
                }
                break;
            }
            inner.waiting += 1;
            inner = self.round_over.wait(inner).unwrap_or_else(|e| e.into_inner());
            inner.waiting -= 1;
        }
        let entry = inner.list.iter().position(|e| e.id == id).map(|at| inner.list.remove(at));
        drop(inner);
        // Let go outside the lock: the resident's drop may remove others.
        entry.is_some()
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

    /// Steps every resident that is due (woken, or its deadline passed), the
    /// list out of the lock (see the module's docs). Returns how many were
    /// stepped, and when the runtime must step them again at the latest:
    /// `now` if one was woken meanwhile (by another's calls), else the
    /// earliest deadline.
    pub(crate) fn step_due(&self, now: Instant) -> (usize, Option<Instant>) {
        let mut round = {
            let mut inner = self.lock();
            if inner.stepping.is_some() {
                // Not from a step.
                return (0, Some(now));
            }
            inner.stepping = Some(std::thread::current().id());
            let list = std::mem::take(&mut inner.list);
            let mut ids = std::mem::take(&mut inner.out);
            ids.extend(list.iter().map(|e| e.id));
            inner.out = ids;
            Round { residents: self, list, done: false }
        };
        let mut stepped = 0;
        for e in round.list.iter_mut() {
            let woken = e.mark.due.swap(false, Ordering::AcqRel);
            if !(woken || e.deadline.is_some_and(|t| t <= now)) {
                continue;
            }
            if self.lock().removed.contains(&e.id) {
                continue;
            }
            let mut app = e.app.lock().unwrap_or_else(|x| x.into_inner());
            e.deadline = app.step(now, &e.waker);
            stepped += 1;
        }
        let mut gone = Vec::new();
        let next = {
            let inner = round.put_back(&mut gone);
            if inner.list.iter().any(|e| e.mark.due.load(Ordering::Acquire)) {
                Some(now)
            } else {
                inner.list.iter().filter_map(|e| e.deadline).min()
            }
        };
        // Let go outside the lock: a resident's drop may remove others.
        drop(gone);
        (stepped, next)
    }
}

/// A round of steps: its list, put back (with those added during the round,
/// without those removed) when it ends, or if a step panics.
struct Round<'a> {
    residents: &'a Residents,
    list: Vec<Entry>,
    /// Put back already.
    done: bool,
}

impl<'a> Round<'a> {
    /// Merges the list back into the lock; what goes is moved to `gone`, to
    /// be let go after the lock (a resident's drop may remove others).
    fn put_back(&mut self, gone: &mut Vec<Entry>) -> MutexGuard<'a, Inner> {
        let mut inner = self.residents.lock();
        let added = std::mem::take(&mut inner.list);
        let mut list = std::mem::take(&mut self.list);
        if !inner.removed.is_empty() {
            let (keep, go): (Vec<Entry>, Vec<Entry>) = list.into_iter().partition(|e| !inner.removed.contains(&e.id));
            (list, *gone) = (keep, go);
        }
        list.extend(added);
        if inner.closed {
            gone.append(&mut list);
        }
        inner.list = list;
        inner.removed.clear();
        inner.out.clear();
        inner.stepping = None;
        self.done = true;
        if inner.waiting > 0 {
            self.residents.round_over.notify_all();
        }
        inner
    }
}

impl Drop for Round<'_> {
    /// A step panicked: the others stay, and threads waiting for the round go on.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut gone = Vec::new();
        drop(self.put_back(&mut gone));
        drop(gone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Weak;
    use std::time::Duration;

    /// Removes `others` (and itself) and adds a new resident, from its step.
    struct Remover {
        residents: Weak<Residents>,
        runtime: Arc<EventFd>,
        me: Option<u64>,
        others: Vec<u64>,
        steps: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Resident for Remover {
        fn step(&mut self, _: Instant, _: &Waker) -> Option<Instant> {
            self.steps.fetch_add(1, Ordering::Relaxed);
            let r = self.residents.upgrade().unwrap();
            for id in std::mem::take(&mut self.others) {
                assert!(r.remove(id), "resident {id} was there");
                assert!(!r.remove(id), "and is no more");
            }
            if let Some(me) = self.me.take() {
                assert!(r.remove(me));
                let steps = self.steps.clone();
                let app = Remover {
                    residents: self.residents.clone(),
                    runtime: self.runtime.clone(),
                    me: None,
                    others: vec![],
                    steps,
                };
                r.add(Arc::new(Mutex::new(app)), &self.runtime).unwrap();
            }
            None
        }
    }

    #[test]
    fn a_step_removes_and_adds_residents_without_waiting_for_itself() {
        let residents = Arc::new(Residents::default());
        let runtime = Arc::new(EventFd::new().unwrap());
        let steps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let app = |me, others| {
            let (residents, runtime, steps) = (Arc::downgrade(&residents), runtime.clone(), steps.clone());
            Arc::new(Mutex::new(Remover { residents, runtime, me, others, steps }))
        };
        // Ids are given in order: 0 removes 1 (stepped after it in the same
        // round, which it must not be) and itself, and adds 2.
        assert_eq!(residents.add(app(Some(0), vec![1]), &runtime), Some(0));
        assert_eq!(residents.add(app(None, vec![]), &runtime), Some(1));
        let (tx, rx) = mpsc::channel();
        let r = residents.clone();
        std::thread::spawn(move || {
            let first = r.step_due(Instant::now());
            let second = r.step_due(Instant::now());
            tx.send((first.0, second.0)).unwrap();
        });
        let stepped = rx.recv_timeout(Duration::from_secs(10)).expect("a step that removes a resident deadlocked");
        assert_eq!(stepped, (1, 1), "1 not stepped once removed; 2 stepped in the next round");
        assert_eq!(steps.load(Ordering::Relaxed), 2);
        assert_eq!(residents.lock().list.iter().map(|e| e.id).collect::<Vec<_>>(), [2]);
        assert!(residents.remove(2) && !residents.remove(2));
    }
}
