//! Who waits on which socket, and waking only them: the runtime's readiness
//! registry, sans-IO like the descriptor table it sits beside.
//!
//! Every waiter is a [`std::task::Waker`]: a thread blocked in a call (its waker
//! unparks it), an async task (its executor's waker), or an epoll instance (its
//! waker wakes the thread in `epoll_wait`). Waiters register on a descriptor
//! under the core's lock after finding it not ready, so no wake-up can be lost
//! between the check and the sleep. When the core reports that a socket changed
//! (`Tcp::drain_changed`, `Udp::drain_changed`) or a call touched a descriptor,
//! only that descriptor's waiters are taken, and woken once the lock is released
//! (a wake-up may be a system call: never under the lock).
//!
//! Epoll instances (the `epoll` module, which builds on this one) keep their interest here too: a change on
//! a registered descriptor puts it on the instance's ready list (once), so
//! `epoll_wait` looks at O(ready) descriptors, never at every registered one.
//!
//! # Bounds
//! One entry per descriptor slot (the descriptor table's limit); per descriptor,
//! at most one waker per distinct waiter (a waiter that registers again is
//! deduplicated with `Waker::will_wake`), so the lists are bounded by the
//! threads and tasks that wait.
//!
//! Storage comes back (issue 13): a closed descriptor's entry is emptied, the
//! entries are cut from the tail as they empty ([`Slots::trim`]: up to the
//! highest descriptor that has waiters or interest), and an epoll instance's
//! interest and ready lists shrink as they empty, by the rule of `shrink`
//! (O(1) amortised per close or removal).

use crate::fd_table::{Fd, NumberSpace, Slots};
use crate::shrink::Shrink;
use std::collections::{HashMap, VecDeque};
use std::task::Waker;

/// Level-triggered interest of one epoll instance in one descriptor.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Interest {
    /// POLLIN, POLLOUT... as poll(2) takes them.
    pub events: i16,
    /// Returned with each event (epoll_data).
    pub data: u64,
    /// The socket registered: a descriptor closed and reused is not the same one.
    pub generation: u64,
    /// Whether the descriptor is on the instance's ready list now.
    queued: bool,
    /// EPOLLONESHOT: disabled after one report until modified again.
    pub oneshot: bool,
    /// EPOLLET: reported once per change, not again while it stays ready.
    pub edge: bool,
    disabled: bool,
}

impl Interest {
    pub fn new(events: i16, data: u64, generation: u64) -> Interest {
        Interest { events, data, generation, queued: false, oneshot: false, edge: false, disabled: false }
    }
}

/// One epoll instance: its interest list, its ready list, and who waits on it.
#[derive(Debug, Default)]
pub struct EpollState {
    pub interest: HashMap<Fd, Interest>,
    /// Descriptors that may be ready, each once.
    ready: VecDeque<Fd>,
    /// Entries of `ready` left by an interest removed while queued, by
    /// descriptor: skipped when they come up, so a descriptor removed and
    /// added again is not reported twice in one wait (Linux never does).
    stale: HashMap<Fd, u32>,
    waiters: Vec<Waker>,
}

impl EpollState {
    fn queue(&mut self, fd: Fd) -> bool {
        match self.interest.get_mut(&fd) {
            Some(i) if !i.queued && !i.disabled => {
                i.queued = true;
                self.ready.push_back(fd);
                true
            }
            _ => false,
        }
    }

    /// Takes up to `max` descriptors off the ready list for `check`, which
    /// returns the events that are ready now (0: not ready). Ready ones are put
    /// back at the end (level-triggered) unless one-shot; the rest leave the list
    /// until their socket changes again. O(looked at).
    pub fn collect(&mut self, max: usize, mut check: impl FnMut(Fd, &Interest) -> i16, out: &mut Vec<(i16, u64)>) {
        let mut budget = self.ready.len();
        while budget > 0 && out.len() < max {
            budget -= 1;
            let Some(fd) = self.ready.pop_front() else { break };
            if let Some(n) = self.stale.get_mut(&fd) {
                // The oldest entry of `fd` is always the stale one (FIFO).
                *n -= 1;
                if *n == 0 {
                    self.stale.remove(&fd);
                    self.stale.shrink_if_sparse();
                }
                continue;
            }
            let Some(i) = self.interest.get(&fd).copied() else { continue };
            let ev = check(fd, &i);
            let entry = self.interest.get_mut(&fd).expect("looked up above");
            if ev == 0 || entry.disabled {
                entry.queued = false;
                continue;
            }
            out.push((ev, i.data));
            if entry.oneshot || entry.edge {
                entry.queued = false;
                entry.disabled = entry.oneshot;
            } else {
                self.ready.push_back(fd);
            }
        }
        self.ready.shrink_if_sparse();
    }

    /// `fd` leaves the interest list; whether it was there.
    fn forget(&mut self, fd: Fd) -> bool {
        let was = self.interest.remove(&fd);
        if was.is_some_and(|i| i.queued) {
            *self.stale.entry(fd).or_insert(0) += 1;
        }
        self.interest.shrink_if_sparse();
        was.is_some()
    }
}

/// The waiters of every descriptor, and every epoll instance.
#[derive(Debug, Default)]
pub struct Registry {
    /// Indexed by slot, as the descriptor table's (`space`).
    fds: Slots<FdWaiters>,
    space: NumberSpace,
    epolls: Vec<Option<EpollState>>,
    free_epolls: Vec<usize>,
    /// Waiters on the stack as a whole (an address probe, say): woken after
    /// every round of the runtime.
    any: Vec<Waker>,
    /// Lingering closes, by TCP slot index: the descriptor is gone, the wait is not.
    linger: HashMap<u32, Vec<Waker>>,
}

#[derive(Debug, Default)]
struct FdWaiters {
    wakers: Vec<Waker>,
    /// Epoll instances with interest in this descriptor.
    epolls: Vec<usize>,
}

impl FdWaiters {
    fn is_empty(&self) -> bool {
        self.wakers.is_empty() && self.epolls.is_empty()
    }
}

/// Adds `w` to `list` unless a waker that wakes the same waiter is there.
fn add(list: &mut Vec<Waker>, w: &Waker) {
    if !list.iter().any(|x| x.will_wake(w)) {
        list.push(w.clone());
    }
}

impl Registry {
    /// Waiter lists laid out as a table numbering by `space`.
    pub fn with_space(space: NumberSpace) -> Registry {
        Registry { space, ..Registry::default() }
    }

    fn slot(&mut self, fd: Fd) -> Option<&mut FdWaiters> {
        let i = self.space.index(fd)?;
        Some(self.fds.entry(i))
    }

    /// Registers `w` to be woken at the next change on `fd`.
    pub fn wait_fd(&mut self, fd: Fd, w: &Waker) {
        if let Some(s) = self.slot(fd) {
            add(&mut s.wakers, w);
        }
    }

    /// Registers `w` to be woken after the next round of the runtime.
    pub fn wait_any(&mut self, w: &Waker) {
        add(&mut self.any, w);
    }

    /// Registers `w` to be woken at the next change of TCP slot `index`.
    pub fn wait_linger(&mut self, index: u32, w: &Waker) {
        add(self.linger.entry(index).or_default(), w);
    }

    /// `fd` changed: its waiters go to `out` (to be woken once the lock is
    /// released) and every epoll instance interested in it queues it.
    pub fn changed(&mut self, fd: Fd, out: &mut Vec<Waker>) {
        let Some(i) = self.space.index(fd) else { return };
        let Some(s) = self.fds.get_mut(i) else { return };
        out.append(&mut s.wakers);
        for &e in &s.epolls {
            if let Some(ep) = self.epolls.get_mut(e).and_then(|e| e.as_mut()) {
                if ep.queue(fd) {
                    out.append(&mut ep.waiters);
                }
            }
        }
    }

    /// TCP slot `index` changed: the lingering closes waiting on it go to `out`.
    pub fn tcp_changed(&mut self, index: u32, out: &mut Vec<Waker>) {
        if !self.linger.is_empty() {
            if let Some(mut l) = self.linger.remove(&index) {
                out.append(&mut l);
            }
        }
    }

    /// A round of the runtime ended: the waiters on the stack as a whole go to `out`.
    pub fn round(&mut self, out: &mut Vec<Waker>) {
        out.append(&mut self.any);
    }

    /// `fd` was closed: its waiters go to `out` (they answer EBADF) and it
    /// leaves every epoll interest list (as Linux's close does).
    pub fn closed(&mut self, fd: Fd, out: &mut Vec<Waker>) {
        self.changed(fd, out);
        let Some(i) = self.space.index(fd) else { return };
        let Some(s) = self.fds.get_mut(i) else { return };
        for e in std::mem::take(s).epolls {
            if let Some(ep) = self.epolls.get_mut(e).and_then(|e| e.as_mut()) {
                ep.forget(fd);
            }
        }
        self.fds.trim(i, FdWaiters::is_empty);
    }

    /// Every waiter of every kind, for the end of the runtime.
    pub fn all(&mut self, out: &mut Vec<Waker>) {
        for s in self.fds.iter_mut() {
            out.append(&mut s.wakers);
        }
        for ep in self.epolls.iter_mut().flatten() {
            out.append(&mut ep.waiters);
        }
        out.append(&mut self.any);
        for (_, mut l) in self.linger.drain() {
            out.append(&mut l);
        }
    }

    // ---- epoll instances ---------------------------------------------------

    /// A new epoll instance's number.
    pub fn epoll_create(&mut self) -> usize {
        match self.free_epolls.pop() {
            Some(i) => {
                self.epolls[i] = Some(EpollState::default());
                i
            }
            None => {
                self.epolls.push(Some(EpollState::default()));
                self.epolls.len() - 1
            }
        }
    }

    /// Frees an epoll instance; its waiters go to `out`.
    pub fn epoll_close(&mut self, ep: usize, out: &mut Vec<Waker>) {
        let Some(state) = self.epolls.get_mut(ep).and_then(|e| e.take()) else { return };
        out.extend(state.waiters);
        for &fd in state.interest.keys() {
            self.leave(fd, ep);
        }
        self.free_epolls.push(ep);
    }

    pub fn epoll(&mut self, ep: usize) -> Option<&mut EpollState> {
        self.epolls.get_mut(ep).and_then(|e| e.as_mut())
    }

    /// Adds or replaces `fd`'s interest in `ep` and queues it (a descriptor may
    /// be ready already). Returns false if `ep` does not exist.
    pub fn epoll_set(&mut self, ep: usize, fd: Fd, interest: Interest) -> bool {
        let Some(state) = self.epoll(ep) else { return false };
        let queued = state.interest.get(&fd).is_some_and(|i| i.queued);
        state.interest.insert(fd, Interest { queued, ..interest });
        state.queue(fd);
        if let Some(s) = self.slot(fd) {
            if !s.epolls.contains(&ep) {
                s.epolls.push(ep);
            }
        }
        true
    }

    /// Removes `fd`'s interest in `ep`; whether it was there.
    pub fn epoll_remove(&mut self, ep: usize, fd: Fd) -> bool {
        let Some(state) = self.epoll(ep) else { return false };
        let was = state.forget(fd);
        self.leave(fd, ep);
        was
    }

    /// Epoll instance `ep` has no interest in `fd` any more.
    fn leave(&mut self, fd: Fd, ep: usize) {
        let Some(i) = self.space.index(fd) else { return };
        if let Some(s) = self.fds.get_mut(i) {
            s.epolls.retain(|&e| e != ep);
            self.fds.trim(i, FdWaiters::is_empty);
        }
    }

    /// Entries the waiter lists have room for, and what the epoll instances'
    /// interest and ready lists have (for tests: they shrink as they empty).
    pub fn footprint(&self) -> usize {
        let epolls = self.epolls.iter().flatten().map(|e| e.interest.capacity() + e.ready.capacity());
        self.fds.capacity() + epolls.sum::<usize>()
    }

    /// Registers `w` to be woken when `ep`'s ready list grows.
    pub fn epoll_wait_on(&mut self, ep: usize, w: &Waker) {
        if let Some(state) = self.epoll(ep) {
            add(&mut state.waiters, w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn only_the_changed_descriptor_s_waiters_are_taken_once() {
        let mut r = Registry::default();
        let a = Arc::new(Count(AtomicUsize::new(0)));
        let wa = Waker::from(a.clone());
        r.wait_fd(3, &wa);
        r.wait_fd(3, &wa);
        r.wait_fd(4, &wa);
        let mut out = Vec::new();
        r.changed(5, &mut out);
        assert!(out.is_empty());
        r.changed(3, &mut out);
        assert_eq!(out.len(), 1, "deduplicated");
        out.clear();
        r.changed(3, &mut out);
        assert!(out.is_empty(), "taken");
        r.changed(4, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn epoll_ready_list_holds_each_descriptor_once_and_is_level_triggered() {
        let mut r = Registry::default();
        let ep = r.epoll_create();
        for fd in 3..10 {
            assert!(r.epoll_set(ep, fd, Interest::new(1, fd as u64, 0)));
        }
        let mut out = Vec::new();
        // Nothing ready: each looked at once, and they leave the list.
        r.epoll(ep).unwrap().collect(64, |_, _| 0, &mut out);
        assert!(out.is_empty());
        let mut wakers = Vec::new();
        r.changed(4, &mut wakers);
        r.changed(4, &mut wakers);
        r.changed(7, &mut wakers);
        let mut looked = Vec::new();
        r.epoll(ep).unwrap().collect(
            64,
            |fd, _| {
                looked.push(fd);
                1
            },
            &mut out,
        );
        assert_eq!(looked, vec![4, 7], "O(ready), each once");
        assert_eq!(out, vec![(1, 4), (1, 7)]);
        out.clear();
        // Still ready: reported again (level-triggered).
        r.epoll(ep).unwrap().collect(64, |_, _| 1, &mut out);
        assert_eq!(out.len(), 2);
        let mut gone = Vec::new();
        r.closed(4, &mut gone);
        out.clear();
        r.epoll(ep).unwrap().collect(64, |_, _| 1, &mut out);
        assert_eq!(out, vec![(1, 7)]);
    }

    /// Review finding: a ready descriptor removed and added again (EPOLL_CTL_DEL
    /// then ADD, or closed and its number reused) left its old entry on the
    /// ready list beside the new one, and one wait reported it twice.
    #[test]
    fn a_descriptor_removed_and_added_again_is_reported_once() {
        let mut r = Registry::default();
        let ep = r.epoll_create();
        assert!(r.epoll_set(ep, 5, Interest::new(1, 5, 0)));
        for _ in 0..2 {
            assert!(r.epoll_remove(ep, 5));
            assert!(r.epoll_set(ep, 5, Interest::new(1, 55, 0)));
        }
        let mut out = Vec::new();
        r.epoll(ep).unwrap().collect(64, |_, _| 1, &mut out);
        assert_eq!(out, vec![(1, 55)], "once, with the new interest's data");
        out.clear();
        r.epoll(ep).unwrap().collect(64, |_, _| 1, &mut out);
        assert_eq!(out, vec![(1, 55)], "still level-triggered");
        assert!(r.epoll(ep).unwrap().stale.is_empty());
    }

    /// Issue 13: waiter lists and an epoll instance's interest grown to
    /// thousands of descriptors give their storage back once those close,
    /// in whatever order.
    #[test]
    fn waiters_and_interest_give_their_storage_back_when_descriptors_close() {
        let space = NumberSpace::split(1 << 20, 1 << 21).unwrap();
        let mut r = Registry::with_space(space);
        let ep = r.epoll_create();
        let w = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let fds: Vec<Fd> = (3..3003).chain((1 << 21)..(1 << 21) + 500).collect();
        for &fd in &fds {
            r.wait_fd(fd, &w);
            assert!(r.epoll_set(ep, fd, Interest::new(1, fd as u64, 0)));
        }
        let mut out = Vec::new();
        r.epoll(ep).unwrap().collect(usize::MAX, |_, _| 1, &mut out);
        let grown = r.footprint();
        assert!(grown > 3 * fds.len(), "{grown}");
        let mut wakers = Vec::new();
        let order = fds.iter().step_by(2).chain(fds.iter().skip(1).step_by(2).rev());
        for (k, &fd) in order.enumerate() {
            if k % 3 == 0 {
                assert!(r.epoll_remove(ep, fd));
            }
            r.closed(fd, &mut wakers);
        }
        r.epoll(ep).unwrap().collect(usize::MAX, |_, _| 1, &mut out);
        assert!(r.epoll(ep).unwrap().interest.is_empty());
        assert!(r.footprint() < 4 * crate::shrink::SHRINK_FLOOR, "room for {} of {grown}", r.footprint());
    }
}
