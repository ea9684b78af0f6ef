//! The TIME-WAIT table (issue 13, item 3): compact [`TimeWait`] records, found
//! by 4-tuple, kept in the order they expire. Every TIME-WAIT lasts the same
//! 2*MSL, so that order is the order they were made in: a FIFO, as a doubly
//! linked list through the slab, so that the next to expire is its head
//! (`poll_at` and expiry without a scan), a record can leave from anywhere
//! (an RST, a new SYN, a connect reusing its 4-tuple) and a restarted one (a
//! retransmitted FIN) moves to the tail, all in O(1). Bounded by
//! `TcpConfig::max_tw_buckets` (the table counts them); its storage shrinks as
//! the records go, so that memory returns after a flood of them.

use super::conn::TimeWait;
use crate::time::Instant;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddrV4;

/// (local, remote).
type Tuple = (SocketAddrV4, SocketAddrV4);

/// No record: the end of the list.
const NIL: u32 = u32::MAX;
/// Below this many slots the storage is not shrunk.
const MIN_SLOTS: usize = 64;

#[derive(Debug)]
struct Node {
    tw: Option<TimeWait>,
    prev: u32,
    next: u32,
}

/// The records, by 4-tuple (hashed with `S`, the table's keyed hasher) and in
/// order of expiry.
#[derive(Debug)]
pub(super) struct TimeWaits<S> {
    nodes: Vec<Node>,
    free: Vec<u32>,
    by_tuple: HashMap<Tuple, u32, S>,
    /// The first to expire and the last.
    head: u32,
    tail: u32,
    hasher: S,
}

impl<S: BuildHasher + Clone> TimeWaits<S> {
    pub(super) fn new(hasher: S) -> TimeWaits<S> {
        TimeWaits {
            nodes: Vec::new(),
            free: Vec::new(),
            by_tuple: HashMap::with_hasher(hasher.clone()),
            head: NIL,
            tail: NIL,
            hasher,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.by_tuple.len()
    }

    /// The record for a 4-tuple.
    pub(super) fn find(&self, tuple: &Tuple) -> Option<u32> {
        self.by_tuple.get(tuple).copied()
    }

    pub(super) fn get_mut(&mut self, at: u32) -> &mut TimeWait {
        self.nodes[at as usize].tw.as_mut().expect("a listed record")
    }

    fn get(&self, at: u32) -> &TimeWait {
        self.nodes[at as usize].tw.as_ref().expect("a listed record")
    }

    /// Adds a record (its 4-tuple not yet in the table), in order of expiry:
    /// at the tail, unless the MSL was shortened since the last one came.
    pub(super) fn insert(&mut self, tw: TimeWait) {
        let tuple = (tw.local, tw.remote);
        let node = Node { tw: Some(tw), prev: NIL, next: NIL };
        let at = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.by_tuple.insert(tuple, at);
        self.link(at);
    }

    /// Puts node `at` into the list by its expiry, searching from the tail.
    fn link(&mut self, at: u32) {
        let expires = self.get(at).expires;
        let mut after = self.tail;
        while after != NIL && self.get(after).expires > expires {
            after = self.nodes[after as usize].prev;
        }
        let next = if after == NIL { self.head } else { self.nodes[after as usize].next };
        self.nodes[at as usize].prev = after;
        self.nodes[at as usize].next = next;
        match after {
            NIL => self.head = at,
            a => self.nodes[a as usize].next = at,
        }
        match next {
            NIL => self.tail = at,
            n => self.nodes[n as usize].prev = at,
        }
    }

    fn unlink(&mut self, at: u32) {
        let (prev, next) = (self.nodes[at as usize].prev, self.nodes[at as usize].next);
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    /// After record `at`'s expiry moved (2*MSL restarted): back in order.
    pub(super) fn requeue(&mut self, at: u32) {
        if self.nodes[at as usize].next != NIL {
            self.unlink(at);
            self.link(at);
        }
    }

    /// Takes record `at` out of the table. Indices of other records may change
    /// (the storage shrinks when it is mostly empty).
    pub(super) fn remove(&mut self, at: u32) -> TimeWait {
        self.unlink(at);
        let tw = self.nodes[at as usize].tw.take().expect("a listed record");
        self.by_tuple.remove(&(tw.local, tw.remote));
        self.free.push(at);
        self.shrink();
        tw
    }

    /// When no more than a quarter of the slots hold records, rebuilds the
    /// table at twice its size (amortized O(1) per removal), so that memory
    /// held at a peak goes back; empty, it holds no storage at all.
    fn shrink(&mut self) {
        let live = self.len();
        if live == 0 {
            *self = TimeWaits::new(self.hasher.clone());
            return;
        }
        if self.nodes.len() < MIN_SLOTS || live * 4 > self.nodes.len() {
            return;
        }
        let mut old = std::mem::replace(self, TimeWaits::new(self.hasher.clone()));
        self.nodes.reserve(live * 2);
        self.by_tuple.reserve(live * 2);
        let mut at = old.head;
        while at != NIL {
            let node = &mut old.nodes[at as usize];
            at = node.next;
            self.insert(node.tw.take().expect("a listed record"));
        }
    }

    /// The first record to expire, if it has expired by `now`.
    pub(super) fn due(&self, now: Instant) -> Option<u32> {
        (self.head != NIL && self.get(self.head).expires <= now).then_some(self.head)
    }

    /// When the first record expires.
    pub(super) fn poll_at(&self) -> Option<Instant> {
        (self.head != NIL).then(|| self.get(self.head).expires)
    }

    /// When the last record expires.
    pub(super) fn poll_at_tail(&self) -> Option<Instant> {
        (self.tail != NIL).then(|| self.get(self.tail).expires)
    }

    /// Every record, in order of expiry.
    pub(super) fn iter(&self) -> impl Iterator<Item = &TimeWait> + '_ {
        let mut at = self.head;
        std::iter::from_fn(move || {
            (at != NIL).then(|| {
                let node = &self.nodes[at as usize];
                at = node.next;
                node.tw.as_ref().expect("a listed record")
            })
        })
    }

    /// Bytes held: the slots (records, free or not) and the map's buckets, roughly.
    pub(super) fn heap_bytes(&self) -> usize {
        let slot = core::mem::size_of::<Node>();
        let bucket = core::mem::size_of::<(Tuple, u32)>() + 1;
        self.nodes.capacity() * slot + self.free.capacity() * 4 + self.by_tuple.capacity() * bucket
    }
}
