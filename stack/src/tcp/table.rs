//! The table of connections and listeners (BSD's in_pcb and the TCB list):
//! a slab of slots with generational handles, connections found by their
//! 4-tuple, listeners by port, and the timer schedule.
//!
//! Connections are found by a hash of their 4-tuple (a SipHash keyed from the
//! stack's generator, so that neither an attacker nor iteration order depends
//! on anything but the seed); timers are kept in an ordered set keyed by
//! deadline, so that neither a segment nor `poll_at` costs time proportional
//! to the number of connections.
//!
//! Storage comes back after a flood or a crowd (issue 13): a new connection
//! takes the lowest free slot ([`FreeSlots`]), so the slab's tail empties as
//! connections end and is cut off ([`Tcp::trim_slots`]); the slab, the maps
//! and the lists indexed by slot give their storage back once their capacity
//! is over [`SHRINK_FLOOR`] and four times their length (cut to twice it:
//! O(1) amortised per removal, never a scan over every connection).

use super::cause::Cause;
use super::challenge::ChallengeLimit;
use super::config::{SocketOptions, TcpConfig};
use super::conn::Conn;
use super::error::TcpError;
use super::id::ConnId;
use super::isn::IsnGenerator;
use super::lower::TcpNet;
use super::state::State;
use super::syncookie::SynCookies;
use super::time_waits::TimeWaits;
use super::trace::{TraceLog, Transition};
use crate::time::Instant;
use rand::RngExt;
use siphasher::sip::SipHasher13;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Ephemeral ports (RFC 6335 section 6, as IANA assigns them).
pub const EPHEMERAL_PORTS: core::ops::RangeInclusive<u16> = 49152..=65535;

/// Capacity (entries) at or below which a table indexed by slot or a map
/// keeps its storage: a few KB, and a steady load of a few connections never
/// reallocates. Above it, a table over four times as large as its length is
/// cut to twice its length (the rule sockets-api's tables follow too).
pub const SHRINK_FLOOR: usize = 64;

/// Whether a table of `len` entries in `capacity` should give storage back.
fn sparse(len: usize, capacity: usize) -> bool {
    capacity > SHRINK_FLOOR && capacity > len.saturating_mul(4)
}

fn shrink_vec<T>(v: &mut Vec<T>) {
    if sparse(v.len(), v.capacity()) {
        v.shrink_to(v.len() * 2);
    }
}

fn shrink_map<K: Eq + Hash, V, S: BuildHasher>(m: &mut HashMap<K, V, S>) {
    if sparse(m.len(), m.capacity()) {
        m.shrink_to(m.len() * 2);
    }
}

/// The slab's free slots, lowest first (O(log n)): a new connection takes the
/// lowest, so the highest ones free up as connections end and the slab's
/// tail can be cut off.
#[derive(Debug, Default)]
pub(super) struct FreeSlots(BTreeSet<u32>);

impl FreeSlots {
    /// Slot `index` is free.
    pub(super) fn push(&mut self, index: u32) {
        self.0.insert(index);
    }

    /// Entries held (for `Tcp::heap_bytes`).
    pub(super) fn capacity(&self) -> usize {
        self.0.len()
    }
}

#[derive(Debug)]
pub(super) struct Listener {
    pub(super) local: SocketAddrV4,
    pub(super) backlog: usize,
    /// Established connections waiting for `accept`, oldest first.
    pub(super) queue: VecDeque<ConnId>,
    /// The SYN queue: connections in SYN-RECEIVED, bounded by `backlog` apart
    /// from the accept queue (as Linux); beyond it SYNs are answered with cookies.
    /// In arrival order, with entries that have left (established, or gone)
    /// dropped lazily: a child leaving costs O(1), not a walk of the queue
    /// (`syn_count` is the live count; see [`Tcp::syn_queue_left`]).
    pub(super) pending: Vec<ConnId>,
    /// Children of `pending` still in SYN-RECEIVED (what `backlog` bounds).
    pub(super) syn_count: usize,
    /// When this listener last answered a SYN with a cookie: ACKs are checked
    /// for cookies only for `syncookie::MAX_AGE` minutes after (Linux's
    /// tcp_synq_no_recent_overflow), and get a reset otherwise.
    pub(super) cookies_at: Option<Instant>,
    pub(super) opts: SocketOptions,
}

/// Both boxed, so that a slot stays small (40-odd bytes) whatever it held:
/// the slab keeps its size after a flood.
#[derive(Debug)]
pub(super) enum Sock {
    Listener(Box<Listener>),
    Conn(Box<Conn>),
}

/// One entry of the slab, with the table's bookkeeping about its connection
/// (kept here, not in the TCB: the protocol does not depend on it).
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) gen: u32,
    pub(super) sock: Option<Sock>,
    /// The deadline under which the timer set holds this connection.
    pub(super) sched: Option<Instant>,
    /// The listener this passive connection waits on until accepted.
    pub(super) parent: Option<ConnId>,
    /// The connection is in its listener's accept queue.
    pub(super) in_accept_queue: bool,
    /// The connection is in TIME-WAIT: counted in `tw_count`, not `conn_count`.
    pub(super) time_wait: bool,
    /// The connection is counted in `reusable_ports` (see `Tcp::count_reusable`).
    pub(super) reusable: bool,
}

impl Slot {
    fn new(gen: u32) -> Slot {
        Slot { gen, sock: None, sched: None, parent: None, in_accept_queue: false, time_wait: false, reusable: false }
    }
}

/// SipHash-1-3 with keys from the stack's generator: the hash of a 4-tuple is
/// neither predictable from outside nor different from run to run.
#[derive(Clone, Debug)]
pub(super) struct SipBuild(pub(super) u64, pub(super) u64);

impl BuildHasher for SipBuild {
    type Hasher = SipHasher13;
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.0, self.1)
    }
}

pub(super) type Tuple = (SocketAddrV4, SocketAddrV4);

/// The TCP layer: every connection and listener.
#[derive(Debug)]
pub struct Tcp {
    pub(super) cfg: TcpConfig,
    pub(super) slots: Vec<Slot>,
    pub(super) free: FreeSlots,
    /// The generation a slot pushed anew starts at: above every generation
    /// of a slot cut off the tail, so that a stale id never names a new
    /// connection in the same place.
    pub(super) next_gen: u32,
    /// Connections by (local, remote), while they own their 4-tuple (not CLOSED).
    pub(super) conns: HashMap<Tuple, ConnId, SipBuild>,
    /// Listeners by local port.
    pub(super) listeners: HashMap<u16, ConnId, SipBuild>,
    /// Local ports held by connections in `conns`, with counts.
    pub(super) ports: HashMap<u16, u32, SipBuild>,
    /// Of those, the users a bind with SO_REUSEADDR may share the port with:
    /// connections in TIME-WAIT or with reuse_addr, and TIME-WAIT records
    /// (so `port_users` is two look-ups, never a scan).
    pub(super) reusable_ports: HashMap<u16, u32, SipBuild>,
    /// Connections (not listeners) in the slab, TIME-WAIT aside: what
    /// `max_connections` bounds.
    pub(super) conn_count: usize,
    /// Connections in TIME-WAIT, bounded by `max_tw_buckets` apart (as Linux's
    /// tcp_max_tw_buckets, outside the socket limit): those still whole (held
    /// by the user, or with unread data) and the records in `tw`.
    pub(super) tw_count: usize,
    /// TIME-WAIT records of connections whose TCB is gone (their 4-tuples are
    /// not in `conns`; their local ports are still counted in `ports`).
    pub(super) tw: TimeWaits<SipBuild>,
    /// (deadline, slot index, generation) of every connection with a timer.
    pub(super) timers: BTreeSet<(Instant, u32, u32)>,
    pub(super) due: Vec<ConnId>,
    pub(super) isn: IsnGenerator,
    pub(super) cookies: SynCookies,
    pub(super) challenge: ChallengeLimit,
    pub(super) trace: TraceLog,
    /// Readiness hook: the slots touched by an event since the last
    /// [`Tcp::drain_changed`] (each once), so the runtime wakes only their waiters.
    pub(super) changed: ChangedSet,
    /// Between `Tcp::begin_batch` and `Tcp::end_batch`: a batch of frames read
    /// together is being fed.
    pub(super) batch_open: bool,
    /// The connections whose ACK waits for the batch's end (each once).
    pub(super) batch_acks: ChangedSet,
    /// The connection that claimed the buffer of the frame being received,
    /// to be given it by [`Tcp::fill_claim`].
    pub(super) rx_claim: Option<ConnId>,
}

/// The slot indexes whose readiness may have changed, each listed once: bounded
/// by the number of slots, drained in O(changed).
#[derive(Debug, Default)]
pub(super) struct ChangedSet {
    list: Vec<u32>,
    marked: Vec<bool>,
}

impl ChangedSet {
    pub(super) fn mark(&mut self, index: u32) {
        let i = index as usize;
        if i >= self.marked.len() {
            self.marked.resize(i + 1, false);
        }
        if !self.marked[i] {
            self.marked[i] = true;
            self.list.push(index);
        }
    }

    /// Takes the list out (unmarked), for a caller that needs `self` while it
    /// goes through it; give it back emptied with [`ChangedSet::give_back`].
    pub(super) fn take(&mut self) -> Vec<u32> {
        for &i in &self.list {
            self.marked[i as usize] = false;
        }
        std::mem::take(&mut self.list)
    }

    /// Returns the list taken (cleared here), so that its room is kept.
    pub(super) fn give_back(&mut self, mut list: Vec<u32>) {
        list.clear();
        if self.list.is_empty() {
            self.list = list;
        }
    }

    pub(super) fn drain(&mut self, mut f: impl FnMut(u32)) {
        for &i in &self.list {
            self.marked[i as usize] = false;
            f(i);
        }
        self.list.clear();
    }

    /// The slab is `len` slots long now: with nothing marked, the marks of
    /// slots cut off go, and both lists give their storage back by the rule.
    fn fit(&mut self, len: usize) {
        if self.list.is_empty() {
            self.marked.truncate(len);
            shrink_vec(&mut self.marked);
            shrink_vec(&mut self.list);
        }
    }
}

pub(super) fn conn_mut(slots: &mut [Slot], id: ConnId) -> Option<&mut Conn> {
    match slots.get_mut(id.index as usize) {
        Some(Slot { gen, sock: Some(Sock::Conn(c)), .. }) if *gen == id.gen => Some(c),
        _ => None,
    }
}

pub(super) fn listener_mut(slots: &mut [Slot], id: ConnId) -> Option<&mut Listener> {
    match slots.get_mut(id.index as usize) {
        Some(Slot { gen, sock: Some(Sock::Listener(l)), .. }) if *gen == id.gen => Some(&mut **l),
        _ => None,
    }
}

/// A connection the user holds: one it opened or accepted and has not closed.
pub(super) fn user_conn_mut(slots: &mut [Slot], id: ConnId) -> Result<&mut Conn, TcpError> {
    match slots.get_mut(id.index as usize) {
        Some(Slot { gen, sock: Some(Sock::Conn(c)), parent, .. })
            if *gen == id.gen && !c.user_closed && parent.is_none() =>
        {
            Ok(c)
        }
        Some(Slot { gen, sock: Some(Sock::Listener(_)), .. }) if *gen == id.gen => Err(TcpError::NotConnected),
        _ => Err(TcpError::InvalidState),
    }
}

impl Tcp {
    /// Called by the stack at creation, with the stack's `config.tcp`: draws the
    /// ISN and hash secrets from `net.rng`.
    pub fn new(net: &mut dyn TcpNet, cfg: TcpConfig) -> Tcp {
        let rng = net.rng();
        let isn = IsnGenerator::new(rng);
        let build = SipBuild(rng.random(), rng.random());
        Tcp {
            challenge: ChallengeLimit::new(cfg.challenge_ack_limit),
            trace: TraceLog::new(cfg.trace_capacity),
            cfg,
            slots: Vec::new(),
            free: FreeSlots::default(),
            next_gen: 0,
            conns: HashMap::with_hasher(build.clone()),
            listeners: HashMap::with_hasher(build.clone()),
            cookies: SynCookies::derive((build.0, build.1)),
            tw: TimeWaits::new(build.clone()),
            reusable_ports: HashMap::with_hasher(build.clone()),
            ports: HashMap::with_hasher(build),
            conn_count: 0,
            tw_count: 0,
            timers: BTreeSet::new(),
            due: Vec::new(),
            isn,
            changed: ChangedSet::default(),
            batch_open: false,
            batch_acks: ChangedSet::default(),
            rx_claim: None,
        }
    }

    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// Replaces the configuration; existing connections keep their options.
    pub fn set_config(&mut self, cfg: TcpConfig) {
        self.challenge = ChallengeLimit::new(cfg.challenge_ack_limit);
        self.trace = TraceLog::new(cfg.trace_capacity);
        self.cfg = cfg;
    }

    // ----------------------------------------------------------------------
    // Table bookkeeping.

    /// The lowest free slot, or a new one at the end.
    pub(super) fn alloc(&mut self) -> ConnId {
        if let Some(index) = self.free.0.pop_first() {
            let slot = &mut self.slots[index as usize];
            *slot = Slot::new(slot.gen.wrapping_add(1));
            ConnId { index, gen: slot.gen }
        } else {
            self.slots.push(Slot::new(self.next_gen));
            ConnId { index: (self.slots.len() - 1) as u32, gen: self.next_gen }
        }
    }

    /// Cuts the free slots at the slab's tail off (each slot is cut at most
    /// once for each time it was pushed: O(1) amortised), and gives storage
    /// back by the rule: the slab, the lists indexed by slot, the timer list.
    /// Only between rounds ([`Tcp::drain_changed`]): within one, slot indexes
    /// are held (the batch's held ACKs, the timers due, a walk of the slab).
    fn trim_slots(&mut self) {
        let last = self.slots.len() as u32;
        if self.batch_open || self.free.0.last() != last.checked_sub(1).as_ref() {
            return;
        }
        while let Some(&i) = self.free.0.last().filter(|&&i| i + 1 == self.slots.len() as u32) {
            self.free.0.pop_last();
            let slot = self.slots.pop().expect("a free slot below the length");
            self.next_gen = self.next_gen.max(slot.gen.wrapping_add(1));
            debug_assert!(i as usize == self.slots.len() && slot.sock.is_none());
        }
        shrink_vec(&mut self.slots);
        self.changed.fit(self.slots.len());
        self.batch_acks.fit(self.slots.len());
        shrink_vec(&mut self.due);
    }

    pub(super) fn release(&mut self, id: ConnId) {
        let slot = &mut self.slots[id.index as usize];
        if let Some(Sock::Conn(_)) = slot.sock.take() {
            if slot.time_wait {
                self.tw_count -= 1;
            } else {
                self.conn_count -= 1;
            }
        }
        self.free.push(id.index);
        self.shrink_maps();
    }

    /// After a flood, memory goes back: a map that is three-quarters empty is
    /// rebuilt at twice its size (amortized O(1) per removal).
    fn shrink_maps(&mut self) {
        shrink_map(&mut self.conns);
        shrink_map(&mut self.ports);
        shrink_map(&mut self.listeners);
        shrink_map(&mut self.reusable_ports);
    }

    pub(super) fn map(&mut self, id: ConnId, local: SocketAddrV4, remote: SocketAddrV4) {
        self.conns.insert((local, remote), id);
        *self.ports.entry(local.port()).or_insert(0) += 1;
        let reusable = conn_mut(&mut self.slots, id).is_some_and(|c| c.state == State::TimeWait || c.opts.reuse_addr);
        self.count_reusable(id, local.port(), reusable);
    }

    pub(super) fn unmap(&mut self, id: ConnId, local: SocketAddrV4, remote: SocketAddrV4) {
        if self.conns.get(&(local, remote)) == Some(&id) {
            self.conns.remove(&(local, remote));
            self.count_reusable(id, local.port(), false);
            self.unmap_port(local.port());
        }
    }

    /// Counts connection `id` (mapped, on `port`) in `reusable_ports` or not,
    /// as `reusable` says, if it is not already: O(1).
    fn count_reusable(&mut self, id: ConnId, port: u16, reusable: bool) {
        let slot = &mut self.slots[id.index as usize];
        if slot.reusable == reusable {
            return;
        }
        slot.reusable = reusable;
        if reusable {
            *self.reusable_ports.entry(port).or_insert(0) += 1;
        } else {
            self.uncount_reusable(port);
        }
    }

    fn uncount_reusable(&mut self, port: u16) {
        if let Some(n) = self.reusable_ports.get_mut(&port) {
            *n -= 1;
            if *n == 0 {
                self.reusable_ports.remove(&port);
            }
        }
    }

    /// After an event: a connection that entered TIME-WAIT or whose
    /// reuse_addr changed (the only ways its kind changes while mapped) is
    /// counted anew. O(1); a look-up only when the kind changed.
    fn recount_reusable(&mut self, id: ConnId) {
        let Some(c) = conn_mut(&mut self.slots, id) else { return };
        let mapped = !matches!(c.state, State::Closed | State::Listen);
        let reusable = mapped && (c.state == State::TimeWait || c.opts.reuse_addr);
        let (local, remote) = (c.local, c.remote);
        if reusable == self.slots[id.index as usize].reusable {
            return;
        }
        if !reusable || self.conns.get(&(local, remote)) == Some(&id) {
            self.count_reusable(id, local.port(), reusable);
        }
    }

    fn unmap_port(&mut self, port: u16) {
        if let Some(n) = self.ports.get_mut(&port) {
            *n -= 1;
            if *n == 0 {
                self.ports.remove(&port);
            }
        }
    }

    /// Connection `id`, in TIME-WAIT, becomes a compact record if it can
    /// (`Conn::time_wait_record`): its TCB and slot are freed, its 4-tuple moves
    /// to `tw`, its port stays held. Not when the TIME-WAIT table overflowed
    /// (that connection ends at the next timer run, as before).
    fn compact(&mut self, id: ConnId) -> bool {
        if self.tw_count > self.cfg.max_tw_buckets {
            return false;
        }
        let Some(record) = conn_mut(&mut self.slots, id).and_then(|c| c.time_wait_record()) else { return false };
        if self.tw.poll_at_tail().is_some_and(|t| t > record.expires) {
            // Out of the FIFO's order (an MSL shortened since): stays whole.
            return false;
        }
        let slot = &mut self.slots[id.index as usize];
        if let Some(t) = slot.sched.take() {
            self.timers.remove(&(t, id.index, id.gen));
        }
        slot.sock = None;
        if !std::mem::take(&mut slot.reusable) {
            // The record counts as reusable, as the connection did.
            *self.reusable_ports.entry(record.local.port()).or_insert(0) += 1;
        }
        self.conns.remove(&(record.local, record.remote));
        self.free.push(id.index);
        self.tw.insert(record);
        self.shrink_maps();
        true
    }

    /// Forgets TIME-WAIT record `at` (its end already traced) and frees its port.
    pub(super) fn drop_time_wait(&mut self, at: u32) {
        let tw = self.tw.remove(at);
        self.tw_count -= 1;
        self.uncount_reusable(tw.local.port());
        self.unmap_port(tw.local.port());
        self.shrink_maps();
    }

    /// After any event on a connection: move an established child to its
    /// listener's accept queue, forget a connection that ended, reschedule timers.
    pub(super) fn settle(&mut self, id: ConnId) {
        self.changed.mark(id.index);
        self.recount_reusable(id);
        let Some(c) = conn_mut(&mut self.slots, id) else { return };
        if c.awaits_frame() {
            self.rx_claim = Some(id);
        }
        let (state, local, remote, user_closed) = (c.state, c.local, c.remote, c.user_closed);
        let slot = &self.slots[id.index as usize];
        let (parent, queued) = (slot.parent, slot.in_accept_queue);
        if let Some(pid) = parent {
            if !queued && state.is_synchronized() {
                if let Some(l) = listener_mut(&mut self.slots, pid) {
                    l.queue.push_back(id);
                    self.slots[id.index as usize].in_accept_queue = true;
                    self.changed.mark(pid.index);
                    self.syn_queue_left(pid);
                }
            }
        }
        if state == State::TimeWait {
            if !self.slots[id.index as usize].time_wait {
                self.enter_time_wait(id);
            }
            if self.compact(id) {
                return;
            }
        }
        let deadline = conn_mut(&mut self.slots, id).and_then(|c| c.deadline());
        if matches!(state, State::Closed | State::Listen) {
            if let Some(t) = self.slots[id.index as usize].sched.take() {
                self.timers.remove(&(t, id.index, id.gen));
            }
            self.unmap(id, local, remote);
            let held = parent.is_none() && !user_closed;
            if !held {
                // Re-read: the branch above may have just queued it.
                let queued = self.slots[id.index as usize].in_accept_queue;
                if let Some(l) = parent.and_then(|pid| listener_mut(&mut self.slots, pid)) {
                    if queued {
                        l.queue.retain(|&p| p != id);
                    }
                }
                self.release(id);
                if let (Some(pid), false) = (parent, queued) {
                    self.syn_queue_left(pid);
                }
            }
            return;
        }
        self.schedule(id, deadline);
    }

    /// A child of listener `lid` left its SYN queue (established, or gone; its
    /// slot already says so): one fewer counted, and the entries that left are
    /// swept out once they outnumber the live ones (amortized O(1) per child).
    pub(super) fn syn_queue_left(&mut self, lid: ConnId) {
        let Some(l) = listener_mut(&mut self.slots, lid) else { return };
        l.syn_count -= 1;
        if l.pending.len() <= 2 * l.syn_count + 16 {
            return;
        }
        let mut pending = std::mem::take(&mut l.pending);
        pending.retain(|&c| self.in_syn_queue(c, lid));
        shrink_vec(&mut pending);
        listener_mut(&mut self.slots, lid).expect("checked above").pending = pending;
    }

    /// Whether `id` is still in listener `lid`'s SYN queue: alive, its child,
    /// not yet in its accept queue.
    pub(super) fn in_syn_queue(&self, id: ConnId, lid: ConnId) -> bool {
        match self.slots.get(id.index as usize) {
            Some(s @ Slot { sock: Some(Sock::Conn(_)), .. }) => {
                s.gen == id.gen && s.parent == Some(lid) && !s.in_accept_queue
            }
            _ => false,
        }
    }

    /// A connection entered TIME-WAIT: it leaves the connection count for the
    /// TIME-WAIT count and gives back its buffers; beyond `max_tw_buckets` it
    /// ends at once (Linux: "time wait bucket table overflow").
    fn enter_time_wait(&mut self, id: ConnId) {
        self.slots[id.index as usize].time_wait = true;
        self.conn_count -= 1;
        self.tw_count += 1;
        let overflow = self.tw_count > self.cfg.max_tw_buckets;
        if let Some(c) = conn_mut(&mut self.slots, id) {
            c.release_buffers();
            if overflow {
                c.expire_time_wait();
            }
        }
    }

    /// Keeps the timer set holding connection `id` under `deadline`.
    fn schedule(&mut self, id: ConnId, deadline: Option<Instant>) {
        let slot = &mut self.slots[id.index as usize];
        if slot.sched != deadline {
            if let Some(t) = slot.sched {
                self.timers.remove(&(t, id.index, id.gen));
            }
            if let Some(t) = deadline {
                self.timers.insert((t, id.index, id.gen));
            }
            slot.sched = deadline;
        }
    }

    /// Whether a local port is held by what no bind may share (a listener, a
    /// connection without reuse_addr), and whether by what a bind with
    /// reuse_addr may share: TIME-WAIT connections, and connections that have
    /// reuse_addr themselves (as Linux's bind conflict rule: two sockets with
    /// SO_REUSEADDR conflict only if one listens; this is how a server with
    /// SO_REUSEADDR restarts while its old connections are still closing).
    /// Three look-ups: `ports` counts every user of the port, `reusable_ports`
    /// those of the second kind, so the rest are of the first.
    pub(super) fn port_users(&self, port: u16) -> (bool, bool) {
        let all = self.ports.get(&port).copied().unwrap_or(0);
        let reusable = self.reusable_ports.get(&port).copied().unwrap_or(0);
        debug_assert!(reusable <= all, "port {port}: {reusable} reusable of {all}");
        let active = self.listeners.contains_key(&port) || all > reusable;
        #[cfg(test)]
        debug_assert_eq!((active, reusable > 0), self.port_users_by_scan(port), "port {port}");
        (active, reusable > 0)
    }

    /// `port_users` by a scan of the table (what it was before the index):
    /// every test's bind checks the index against it.
    #[cfg(test)]
    pub(super) fn port_users_by_scan(&self, port: u16) -> (bool, bool) {
        let mut active = self.listeners.contains_key(&port);
        let mut reusable = false;
        for (&(local, _), &id) in &self.conns {
            if local.port() != port {
                continue;
            }
            if let Some(Slot { sock: Some(Sock::Conn(c)), .. }) = self.slots.get(id.index as usize) {
                if c.state == State::TimeWait || c.opts.reuse_addr {
                    reusable = true;
                } else {
                    active = true;
                }
            }
        }
        reusable |= self.tw.iter().any(|tw| tw.local.port() == port);
        (active, reusable)
    }

    /// A random free ephemeral port (RFC 6056 algorithm 1: a random start, then
    /// the next free one).
    pub(super) fn ephemeral_port(&self, net: &mut dyn TcpNet) -> Result<u16, TcpError> {
        let (lo, hi) = (*EPHEMERAL_PORTS.start(), *EPHEMERAL_PORTS.end());
        let n = (hi - lo) as u32 + 1;
        let start: u32 = net.rng().random_range(0..n);
        for i in 0..n {
            let port = lo + ((start + i) % n) as u16;
            if !self.ports.contains_key(&port) && !self.listeners.contains_key(&port) {
                return Ok(port);
            }
        }
        Err(TcpError::AddrInUse)
    }

    /// Ends the TIME-WAIT of 4-tuple `tuple`, whole or a record, for a new
    /// connection that reuses it (SO_REUSEADDR).
    pub(super) fn kill_time_wait(&mut self, now: Instant, net: &mut dyn TcpNet, tuple: Tuple) {
        if let Some(at) = self.tw.find(&tuple) {
            let mut ctx = ctx!(self, now, net);
            self.tw.get_mut(at).close(&mut ctx, Cause::ReuseTimeWait);
            self.drop_time_wait(at);
            return;
        }
        let Some(&id) = self.conns.get(&tuple) else { return };
        if let Some(c) = conn_mut(&mut self.slots, id) {
            if c.state == State::TimeWait {
                let mut ctx = ctx!(self, now, net);
                c.end_time_wait(&mut ctx, Cause::ReuseTimeWait);
                self.settle(id);
            }
        }
    }

    /// Readiness hook: hands over (and forgets) the slot index of every
    /// connection or listener an event has touched since the last call, each
    /// once, so a runtime wakes only those sockets' waiters: O(changed), never
    /// O(sockets). An index may have been freed or reused since; a caller
    /// re-checks readiness, so at worst it wakes a waiter for nothing.
    ///
    /// Between rounds, this is also where the slab's free tail is cut off
    /// ([`Tcp::trim_slots`]; issue 13), O(1) amortised.
    pub fn drain_changed(&mut self, f: impl FnMut(u32)) {
        self.changed.drain(f);
        self.trim_slots();
    }

    /// Whether a lingering close (SO_LINGER) of `id` is over: the connection is
    /// gone, or has left the states in which our FIN waits for its
    /// acknowledgment (FIN-WAIT-1, CLOSING, LAST-ACK). O(1), for a handle the
    /// user has already closed.
    pub fn linger_done(&self, id: ConnId) -> bool {
        match self.slots.get(id.index as usize) {
            Some(Slot { gen, sock: Some(Sock::Conn(c)), .. }) if *gen == id.gen => {
                !matches!(c.state, State::FinWait1 | State::Closing | State::LastAck)
            }
            _ => true,
        }
    }

    pub(super) fn trace_listener(&mut self, conn: ConnId, local: SocketAddrV4, from: State, to: State, cause: Cause) {
        let remote = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        self.trace.push(Transition { conn, local, remote, from, to, cause });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::tests::{addr, Host, Peer, IP_A, T0};

    /// Issue 13: 2,000 connections accepted, then closed by their peers (our
    /// side through LAST-ACK, freed in whatever order): the slab's tail is cut
    /// off between rounds, and the table's storage comes back to about idle.
    #[test]
    fn a_crowd_of_connections_closed_gives_the_slab_back() {
        const N: u16 = 2000;
        let mut h = Host::new(IP_A, 1404);
        let l = h.tcp.listen(&mut h.net, addr(IP_A, 7), 4096).unwrap();
        h.tcp.drain_changed(|_| {});
        let idle = h.tcp.heap_bytes();
        let mut conns = Vec::new();
        for i in 0..N {
            let mut peer = Peer { port: 10_000 + i, our_port: 7, seq: 7000, ack: 0, wnd: 65535 };
            peer.send(&mut h, T0, "S", b"").unwrap();
            peer.ack = h.one().seq.wrapping_add(1);
            peer.send(&mut h, T0, "A", b"").unwrap();
            let (id, _) = h.tcp.accept(l).unwrap().unwrap();
            conns.push((id, peer));
        }
        h.tcp.drain_changed(|_| {});
        let peak = (h.tcp.heap_bytes(), h.tcp.slots.capacity());
        assert!(peak.1 >= N as usize, "{peak:?}");
        // Every other one first (the slab's tail stays in use), then the rest
        // from the top down; a round (and its trim) after each.
        let order: Vec<usize> = (0..N as usize).step_by(2).chain((1..N as usize).step_by(2).rev()).collect();
        for (k, &i) in order.iter().enumerate() {
            let (id, peer) = &mut conns[i];
            peer.send(&mut h, T0, "FA", b"").unwrap();
            h.tcp.close(T0, &mut h.net, *id).unwrap();
            let fin = h.out().into_iter().find(|s| s.fin).expect("our FIN");
            peer.ack = fin.seq.wrapping_add(1);
            peer.send(&mut h, T0, "A", b"").unwrap();
            h.tcp.drain_changed(|_| {});
            if k + 1 == N as usize / 2 {
                assert_eq!(h.tcp.slots.len(), N as usize + 1, "the highest still in use holds the tail");
            }
        }
        assert_eq!(h.tcp.connection_count(), 0);
        let after = (h.tcp.heap_bytes(), h.tcp.slots.capacity());
        println!("TCP table: idle {idle} B, {N} connections {} B, closed {} B", peak.0, after.0);
        assert_eq!(h.tcp.slots.len(), 1, "the listener's slot alone");
        assert!(after.1 <= SHRINK_FLOOR, "{after:?}");
        assert!(after.0 < idle + 16 * 1024, "{after:?} bytes held after (idle {idle})");
        // A stale id never names a slot pushed again in its place.
        let (old, _) = conns[N as usize - 1];
        let mut peer = Peer { port: 9_000, our_port: 7, seq: 1, ack: 0, wnd: 65535 };
        for _ in 0..N {
            peer.send(&mut h, T0, "S", b"").unwrap();
            h.out();
            peer.port += 1;
            peer.seq = 1;
        }
        assert!(h.tcp.slots.len() > old.index as usize);
        assert!(conn_mut(&mut h.tcp.slots, old).is_none(), "{old:?}");
    }
}
