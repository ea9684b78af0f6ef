//! TCP (RFC 9293), sans-IO.
//!
//! Reading order, next to RFC 9293:
//! - [`seq`]: sequence-number arithmetic (section 3.4);
//! - [`segment`]: the header, options and checksum (sections 3.1, 3.2);
//! - [`isn`]: initial sequence numbers (section 3.4.1, RFC 6528);
//! - [`state`]: the eleven states (section 3.3.2);
//! - [`conn`]: one connection's state machine (section 3.10), which uses
//!   [`send`] (Nagle, sender SWS), [`recv`] (reassembly, receiver SWS),
//!   [`rtt`] (RFC 6298) and [`congestion`] (RFC 5681, RFC 6582);
//! - this module: the table of connections and listeners, demultiplexing,
//!   LISTEN (section 3.10.7.2) and resets for segments nobody owns (3.10.7.1);
//! - [`trace`]: state transitions as events, each with its [`cause`].
//!
//! The table: connections are found by a hash of their 4-tuple (a SipHash keyed
//! from the stack's generator, so that neither an attacker nor iteration order
//! depends on anything but the seed); timers are kept in an ordered set keyed by
//! deadline, so that neither a segment nor `poll_at` costs time proportional to
//! the number of connections.
//!
//! A listener's backlog bounds its connections that are not yet accepted
//! (in SYN-RECEIVED or waiting in the accept queue). When it is full, a SYN is
//! dropped silently and counted as [`DropReason::TcpBacklogFull`], like Linux:
//! the peer retransmits its SYN.
//!
//! Choices (each default is a field of [`TcpConfig`] or [`SocketOptions`]):
//! - MSL 30 s, so TIME-WAIT lasts 60 s as on Linux; an orphaned FIN-WAIT-2 ends
//!   after 60 s (Linux's tcp_fin_timeout).
//! - RTO: 1 s initially, 200 ms minimum (Linux; RFC 6298 says 1 s), 120 s maximum.
//!   R2: 7 SYN retransmissions (gives up after 247 s, MUST-23's 3 minutes), 15
//!   data retransmissions (Linux's tcp_retries2; well over MUST-20's 100 s).
//! - Delayed ACK 40 ms, and an ACK at once for every second segment, for
//!   out-of-order data, for data filling a gap and for a FIN.
//! - Buffers 64 KiB each way; the window scale on our SYN follows the receive buffer.
//! - Nagle on, keep-alive off (2 h idle, 75 s interval, 9 probes when on).
//! - A new SYN may reopen a TIME-WAIT connection if its sequence number is
//!   beyond the old connection's (RFC 1122 section 4.2.2.13); older SYNs get a
//!   challenge ACK (RFC 5961 section 4).
//! - RST in TIME-WAIT closes it (RFC 9293; RFC 1337's alternative is not taken).
//!
//! Not implemented: SACK and timestamps (parsed, never sent, so never
//! negotiated), urgent data (delivered inline, as with SO_OOBINLINE), ECN, SYN
//! cookies, data on a SYN (not acknowledged, so the peer sends it again),
//! RFC 9293's SEND in LISTEN (the sockets API has no such call), the user timeout.

pub mod cause;
pub mod config;
pub mod congestion;
pub mod conn;
pub mod error;
pub mod isn;
pub mod lower;
pub mod recv;
pub mod rtt;
pub mod segment;
pub mod send;
pub mod seq;
pub mod state;
pub mod trace;

#[cfg(test)]
mod tests;

pub use cause::Cause;
pub use config::{SocketOptions, TcpConfig};
pub use error::TcpError;
pub use lower::TcpNet;
pub use seq::Seq;
pub use state::State;
pub use trace::Transition;

use crate::counters::DropReason;
use crate::icmp::IcmpError;
use crate::ipv4::IpPacket;
use crate::ratelimit::TokenBucket;
use crate::time::{Duration, Instant};
use conn::{Conn, Ctx};
use etherparse::IpNumber;
use isn::IsnGenerator;

/// How far past the old incarnation's highest sequence number a connection
/// reopened from TIME-WAIT starts: more than the largest unscaled window, so no
/// old duplicate can land in the new connection's window (Linux uses the same gap).
const REOPEN_ISN_GAP: u32 = 65537;
use rand::RngExt;
use segment::{Segment, SegmentOut};
use siphasher::sip::SipHasher13;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, SocketAddrV4};
use trace::TraceLog;

/// Ephemeral ports (RFC 6335 section 6, as IANA assigns them).
pub const EPHEMERAL_PORTS: core::ops::RangeInclusive<u16> = 49152..=65535;

/// A handle on a connection or listener. Handles are generational: once a
/// socket is closed and its slot reused, the old handle is refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    gen: u32,
}

impl ConnId {
    #[cfg(test)]
    pub(crate) fn new(index: u32, gen: u32) -> ConnId {
        ConnId { index, gen }
    }

    pub fn index(self) -> u32 {
        self.index
    }
}

impl core::fmt::Display for ConnId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "tcp#{}.{}", self.index, self.gen)
    }
}

/// Which directions `shutdown` closes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Shutdown {
    Read,
    Write,
    Both,
}

/// What a poll(2)-like wait on the socket would report.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Data, EOF or an error to read; for a listener, a connection to accept.
    pub readable: bool,
    /// Room in the send buffer of a connection that may send (also set with an error).
    pub writable: bool,
    /// Both directions are finished (or the connection is gone).
    pub hangup: bool,
    /// The pending error (SO_ERROR), not consumed.
    pub error: Option<TcpError>,
}

/// When each timer of a connection fires, if it runs.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TimerInfo {
    pub retransmit: Option<Instant>,
    pub persist: Option<Instant>,
    pub delayed_ack: Option<Instant>,
    pub keepalive: Option<Instant>,
    /// TIME-WAIT's 2*MSL or the orphaned FIN-WAIT-2 timeout.
    pub close: Option<Instant>,
}

/// A snapshot of one socket, like Linux's `struct tcp_info` and `ss -ti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    pub state: State,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub cwnd: u32,
    pub ssthresh: u32,
    pub srtt: Option<Duration>,
    pub rttvar: Duration,
    pub rto: Duration,
    /// Effective send MSS.
    pub snd_mss: u32,
    /// The peer's offered window (scaled).
    pub snd_wnd: u32,
    /// The window we offer.
    pub rcv_wnd: u32,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    /// Sequence space sent and not acknowledged.
    pub unacked: u32,
    /// Bytes in the send buffer (unacknowledged and unsent). For a listener, the backlog.
    pub send_queue: usize,
    /// Bytes waiting for the user. For a listener, connections waiting to be accepted.
    pub recv_queue: usize,
    /// Bytes held out of order.
    pub out_of_order: usize,
    pub bytes_sent: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub retransmissions: u64,
    pub segs_in: u64,
    pub segs_out: u64,
    /// Consecutive retransmission timeouts.
    pub retries: u32,
    /// R1 has been reached (RFC 1122 section 4.2.3.5).
    pub path_suspect: bool,
    pub in_recovery: bool,
    pub timers: TimerInfo,
}

#[derive(Debug)]
struct Listener {
    local: SocketAddrV4,
    backlog: usize,
    /// Established connections waiting for `accept`, oldest first.
    queue: VecDeque<ConnId>,
    /// Connections in SYN-RECEIVED.
    pending: Vec<ConnId>,
    opts: SocketOptions,
}

#[derive(Debug)]
enum Sock {
    Listener(Listener),
    Conn(Box<Conn>),
}

#[derive(Debug)]
struct Slot {
    gen: u32,
    sock: Option<Sock>,
}

/// SipHash-1-3 with keys from the stack's generator: the hash of a 4-tuple is
/// neither predictable from outside nor different from run to run.
#[derive(Clone, Debug)]
struct SipBuild(u64, u64);

impl BuildHasher for SipBuild {
    type Hasher = SipHasher13;
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.0, self.1)
    }
}

type Tuple = (SocketAddrV4, SocketAddrV4);

/// The TCP layer: every connection and listener.
#[derive(Debug)]
pub struct Tcp {
    cfg: TcpConfig,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Connections by (local, remote), while they own their 4-tuple (not CLOSED).
    conns: HashMap<Tuple, ConnId, SipBuild>,
    /// Listeners by local port.
    listeners: HashMap<u16, ConnId, SipBuild>,
    /// Local ports held by connections in `conns`, with counts.
    ports: HashMap<u16, u32, SipBuild>,
    /// Connections (not listeners) in the slab.
    conn_count: usize,
    /// (deadline, slot index, generation) of every connection with a timer.
    timers: BTreeSet<(Instant, u32, u32)>,
    due: Vec<ConnId>,
    isn: IsnGenerator,
    challenge: TokenBucket,
    trace: TraceLog,
}

/// Builds the context for an event from the table's fields, leaving the slab
/// free to be borrowed for the connection.
macro_rules! ctx {
    ($self:ident, $now:expr, $net:expr) => {
        Ctx { now: $now, net: $net, cfg: &$self.cfg, challenge: &mut $self.challenge, trace: &mut $self.trace }
    };
}

fn conn_mut(slots: &mut [Slot], id: ConnId) -> Option<&mut Conn> {
    match slots.get_mut(id.index as usize) {
        Some(Slot { gen, sock: Some(Sock::Conn(c)) }) if *gen == id.gen => Some(c),
        _ => None,
    }
}

fn listener_mut(slots: &mut [Slot], id: ConnId) -> Option<&mut Listener> {
    match slots.get_mut(id.index as usize) {
        Some(Slot { gen, sock: Some(Sock::Listener(l)) }) if *gen == id.gen => Some(l),
        _ => None,
    }
}

/// A connection the user holds: one it opened or accepted and has not closed.
fn user_conn_mut(slots: &mut [Slot], id: ConnId) -> Result<&mut Conn, TcpError> {
    match slots.get_mut(id.index as usize) {
        Some(Slot { gen, sock: Some(Sock::Conn(c)) }) if *gen == id.gen && !c.user_closed && c.parent.is_none() => {
            Ok(c)
        }
        Some(Slot { gen, sock: Some(Sock::Listener(_)) }) if *gen == id.gen => Err(TcpError::NotConnected),
        _ => Err(TcpError::InvalidState),
    }
}

impl Tcp {
    /// Called by the stack at creation, with the stack's `config.tcp`: draws the
    /// ISN and hash secrets from `net.rng()`.
    pub fn new(net: &mut dyn TcpNet, cfg: TcpConfig) -> Tcp {
        Tcp::with_config(net, cfg)
    }

    pub fn with_config(net: &mut dyn TcpNet, cfg: TcpConfig) -> Tcp {
        let rng = net.rng();
        let isn = IsnGenerator::new(rng);
        let build = SipBuild(rng.random(), rng.random());
        Tcp {
            challenge: TokenBucket::new(cfg.challenge_ack_rate, cfg.challenge_ack_burst),
            trace: TraceLog::new(cfg.trace_capacity),
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            conns: HashMap::with_hasher(build.clone()),
            listeners: HashMap::with_hasher(build.clone()),
            ports: HashMap::with_hasher(build),
            conn_count: 0,
            timers: BTreeSet::new(),
            due: Vec::new(),
            isn,
        }
    }

    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// Replaces the configuration; existing connections keep their options.
    pub fn set_config(&mut self, cfg: TcpConfig) {
        self.challenge = TokenBucket::new(cfg.challenge_ack_rate, cfg.challenge_ack_burst);
        self.trace = TraceLog::new(cfg.trace_capacity);
        self.cfg = cfg;
    }

    // ----------------------------------------------------------------------
    // The stack's hooks.

    /// A TCP segment arrived in `packet`.
    pub fn input(&mut self, now: Instant, net: &mut dyn TcpNet, packet: &IpPacket<'_>) -> Result<(), DropReason> {
        if packet.broadcast {
            // RFC 1122 section 4.2.3.10: segments to a broadcast address are not ours to answer.
            return Err(DropReason::TcpBroadcast);
        }
        self.input_segment(now, net, packet.src, packet.dst, packet.payload)
    }

    /// An ICMP error about a segment we sent.
    pub fn icmp_error(&mut self, now: Instant, net: &mut dyn TcpNet, err: &IcmpError) {
        self.handle_icmp_error(now, net, err)
    }

    /// Runs the timers due at `now`.
    pub fn poll(&mut self, now: Instant, net: &mut dyn TcpNet) {
        self.poll_timers(now, net)
    }

    /// The earliest timer deadline, if any.
    pub fn poll_at(&self) -> Option<Instant> {
        self.timers.first().map(|t| t.0)
    }

    /// The segment `bytes` (TCP header and data) from `src` to `dst`.
    pub fn input_segment(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        let seg = segment::parse(src, dst, bytes)?;
        net.counters().rx_segments += 1;
        let local = SocketAddrV4::new(dst, seg.dst_port);
        let remote = SocketAddrV4::new(src, seg.src_port);
        if let Some(&id) = self.conns.get(&(local, remote)) {
            let conn = conn_mut(&mut self.slots, id).expect("mapped connections exist");
            let reopen = conn.syn_may_reopen(&seg) && self.listeners.contains_key(&local.port());
            if !reopen {
                let mut ctx = ctx!(self, now, net);
                let r = conn.on_segment(&mut ctx, &seg);
                self.settle(id);
                return r;
            }
            // RFC 9293 section 3.10.7.4 (TIME-WAIT) with RFC 1122 section
            // 4.2.2.13: a new SYN beyond the old connection's sequence space ends
            // the TIME-WAIT and opens a new connection (our ISNs, clock-driven,
            // exceed the old ones, RFC 6528).
            // Our clock-driven ISN alone can fall inside the old incarnation's
            // sequence space when it sent fast (RFC 9293 MAY-2 condition (1)):
            // start beyond it by more than a window, as Linux does.
            let (_, _, snd_max, _, _) = conn.seqs();
            let floor = snd_max + REOPEN_ISN_GAP;
            let mut ctx = ctx!(self, now, net);
            conn.end_time_wait(&mut ctx, Cause::RcvSynReopen);
            self.settle(id);
            if let Some(&lid) = self.listeners.get(&local.port()) {
                return self.listen_input(now, net, lid, local, remote, &seg, Some(floor));
            }
        }
        if let Some(&lid) = self.listeners.get(&local.port()) {
            return self.listen_input(now, net, lid, local, remote, &seg, None);
        }
        // RFC 9293 section 3.10.7.1: no connection.
        self.reset_for(now, net, local, remote, &seg);
        Err(DropReason::TcpNoSocket)
    }

    /// RFC 9293 section 3.10.7.1: the reset answering a segment nobody owns
    /// (never a reset to a reset).
    fn reset_for(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &Segment<'_>,
    ) {
        if seg.rst {
            return;
        }
        let mut s = SegmentOut { src_port: local.port(), dst_port: remote.port(), rst: true, ..Default::default() };
        if seg.ack_flag {
            // <SEQ=SEG.ACK><CTL=RST>
            s.seq = seg.ack;
        } else {
            // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
            s.seq = Seq(0);
            s.ack = Some(seg.seq + seg.len());
        }
        let mut ctx = ctx!(self, now, net);
        let _ = conn::emit(&mut ctx, local, remote, &s, [&[], &[]]);
    }

    /// RFC 9293 section 3.10.7.2, LISTEN.
    fn listen_input(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        lid: ConnId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &Segment<'_>,
        iss_floor: Option<Seq>,
    ) -> Result<(), DropReason> {
        // First, an RST: ignore it.
        if seg.rst {
            return Err(DropReason::TcpNotAcceptable);
        }
        // Second, an ACK: nothing here is acknowledged; <SEQ=SEG.ACK><CTL=RST>.
        if seg.ack_flag {
            self.reset_for(now, net, local, remote, seg);
            return Err(DropReason::TcpNoSocket);
        }
        // Third, a SYN; anything else is dropped.
        if !seg.syn {
            return Err(DropReason::TcpNotAcceptable);
        }
        let l = listener_mut(&mut self.slots, lid).expect("listeners exist");
        if *l.local.ip() != Ipv4Addr::UNSPECIFIED && *l.local.ip() != *local.ip() {
            self.reset_for(now, net, local, remote, seg);
            return Err(DropReason::TcpNoSocket);
        }
        if l.queue.len() + l.pending.len() >= l.backlog {
            return Err(DropReason::TcpBacklogFull);
        }
        if self.conn_count >= self.cfg.max_connections {
            return Err(DropReason::TcpConnectionLimit);
        }
        let opts = l.opts.clone();
        let id = self.alloc();
        let mut iss = self.isn.next(now, local, remote);
        if let Some(floor) = iss_floor {
            iss = iss.max(floor);
        }
        let mut ctx = ctx!(self, now, net);
        let mut conn = Conn::accept_syn(&mut ctx, id, local, remote, iss, opts, seg);
        conn.parent = Some(lid);
        self.slots[id.index as usize].sock = Some(Sock::Conn(Box::new(conn)));
        self.conn_count += 1;
        listener_mut(&mut self.slots, lid).unwrap().pending.push(id);
        self.map(id, local, remote);
        self.settle(id);
        Ok(())
    }

    /// RFC 9293 section 3.9.2.2 via RFC 1122 section 4.2.3.9.
    pub fn handle_icmp_error(&mut self, now: Instant, net: &mut dyn TcpNet, err: &IcmpError) {
        if err.protocol != IpNumber::TCP {
            return;
        }
        let (Some(sport), Some(dport)) = (err.src_port(), err.dst_port()) else { return };
        let local = SocketAddrV4::new(err.src, sport);
        let remote = SocketAddrV4::new(err.dst, dport);
        let Some(&id) = self.conns.get(&(local, remote)) else { return };
        let seq = (err.quoted_len >= 8)
            .then(|| Seq(u32::from_be_bytes([err.quoted[4], err.quoted[5], err.quoted[6], err.quoted[7]])));
        let conn = conn_mut(&mut self.slots, id).expect("mapped connections exist");
        let mut ctx = ctx!(self, now, net);
        conn.on_icmp(&mut ctx, err.kind, seq);
        self.settle(id);
    }

    /// Runs every timer due at `now`.
    pub fn poll_timers(&mut self, now: Instant, net: &mut dyn TcpNet) {
        let mut due = std::mem::take(&mut self.due);
        while let Some(&(t, index, gen)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            let id = ConnId { index, gen };
            if let Some(c) = conn_mut(&mut self.slots, id) {
                c.sched = None;
                due.push(id);
            }
        }
        for &id in &due {
            if let Some(conn) = conn_mut(&mut self.slots, id) {
                let mut ctx = ctx!(self, now, net);
                conn.on_timer(&mut ctx);
                self.settle(id);
            }
        }
        due.clear();
        self.due = due;
    }

    // ----------------------------------------------------------------------
    // Table bookkeeping.

    fn alloc(&mut self) -> ConnId {
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.gen = slot.gen.wrapping_add(1);
            ConnId { index, gen: slot.gen }
        } else {
            self.slots.push(Slot { gen: 0, sock: None });
            ConnId { index: (self.slots.len() - 1) as u32, gen: 0 }
        }
    }

    fn release(&mut self, id: ConnId) {
        let slot = &mut self.slots[id.index as usize];
        if let Some(Sock::Conn(_)) = slot.sock.take() {
            self.conn_count -= 1;
        }
        self.free.push(id.index);
    }

    fn map(&mut self, id: ConnId, local: SocketAddrV4, remote: SocketAddrV4) {
        self.conns.insert((local, remote), id);
        *self.ports.entry(local.port()).or_insert(0) += 1;
    }

    fn unmap(&mut self, id: ConnId, local: SocketAddrV4, remote: SocketAddrV4) {
        if self.conns.get(&(local, remote)) == Some(&id) {
            self.conns.remove(&(local, remote));
            if let Some(n) = self.ports.get_mut(&local.port()) {
                *n -= 1;
                if *n == 0 {
                    self.ports.remove(&local.port());
                }
            }
        }
    }

    /// After any event on a connection: move an established child to its
    /// listener's accept queue, forget a connection that ended, reschedule timers.
    fn settle(&mut self, id: ConnId) {
        let Some(c) = conn_mut(&mut self.slots, id) else { return };
        let (state, local, remote, parent, queued, user_closed) =
            (c.state, c.local, c.remote, c.parent, c.in_accept_queue, c.user_closed);
        if let Some(pid) = parent {
            if !queued && state.is_synchronized() {
                if let Some(l) = listener_mut(&mut self.slots, pid) {
                    l.pending.retain(|&p| p != id);
                    l.queue.push_back(id);
                    conn_mut(&mut self.slots, id).unwrap().in_accept_queue = true;
                }
            }
        }
        let c = conn_mut(&mut self.slots, id).unwrap();
        if matches!(state, State::Closed | State::Listen) {
            if let Some(t) = c.sched.take() {
                self.timers.remove(&(t, id.index, id.gen));
            }
            self.unmap(id, local, remote);
            let held = parent.is_none() && !user_closed;
            if !held {
                if let Some(l) = parent.and_then(|pid| listener_mut(&mut self.slots, pid)) {
                    l.pending.retain(|&p| p != id);
                    l.queue.retain(|&p| p != id);
                }
                self.release(id);
            }
            return;
        }
        let deadline = c.deadline();
        if c.sched != deadline {
            if let Some(t) = c.sched {
                self.timers.remove(&(t, id.index, id.gen));
            }
            if let Some(t) = deadline {
                self.timers.insert((t, id.index, id.gen));
            }
            c.sched = deadline;
        }
    }

    /// Whether a local port is held by what no bind may share (a listener, a
    /// connection without reuse_addr), and whether by what a bind with
    /// reuse_addr may share: TIME-WAIT connections, and connections that have
    /// reuse_addr themselves (as Linux's bind conflict rule: two sockets with
    /// SO_REUSEADDR conflict only if one listens; this is how a server with
    /// SO_REUSEADDR restarts while its old connections are still closing).
    /// Scans the table: only for bind-like calls.
    fn port_users(&self, port: u16) -> (bool, bool) {
        let mut active = self.listeners.contains_key(&port);
        let mut reusable = false;
        if self.ports.contains_key(&port) {
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
        }
        (active, reusable)
    }

    /// A random free ephemeral port (RFC 6056 algorithm 1: a random start, then
    /// the next free one).
    fn ephemeral_port(&self, net: &mut dyn TcpNet) -> Result<u16, TcpError> {
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

    fn kill_time_wait_on(&mut self, now: Instant, net: &mut dyn TcpNet, tuple: Option<Tuple>, port: u16) {
        let victims: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(&(l, r), _)| l.port() == port && tuple.is_none_or(|t| t == (l, r)))
            .map(|(_, &id)| id)
            .collect();
        for id in victims {
            if let Some(c) = conn_mut(&mut self.slots, id) {
                if c.state == State::TimeWait {
                    let mut ctx = ctx!(self, now, net);
                    c.end_time_wait(&mut ctx, Cause::ReuseTimeWait);
                    self.settle(id);
                }
            }
        }
    }

    fn trace_listener(&mut self, conn: ConnId, local: SocketAddrV4, from: State, to: State, cause: Cause) {
        let remote = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        self.trace.push(Transition { conn, local, remote, from, to, cause });
    }

    // ----------------------------------------------------------------------
    // The user's calls (RFC 9293 section 3.10, as the sockets API shapes them).

    /// Checks that `local` could be bound (bind(2)): AddrInUse if a listener or
    /// a connection holds its port; with `reuse_addr`, TIME-WAIT connections and
    /// connections that have reuse_addr themselves do not count (as Linux).
    pub fn check_bind(&self, net: &dyn TcpNet, local: SocketAddrV4, reuse_addr: bool) -> Result<(), TcpError> {
        if !local.ip().is_unspecified() && *local.ip() != net.local_ip() {
            return Err(TcpError::InvalidArgument);
        }
        if local.port() == 0 {
            return Ok(());
        }
        let (active, reusable) = self.port_users(local.port());
        if active || (reusable && !reuse_addr) {
            return Err(TcpError::AddrInUse);
        }
        Ok(())
    }

    /// OPEN, passive (RFC 9293 section 3.10.1): a listener on `local` (port 0:
    /// an ephemeral port) with the default options.
    pub fn listen(&mut self, net: &mut dyn TcpNet, local: SocketAddrV4, backlog: usize) -> Result<ConnId, TcpError> {
        let opts = self.cfg.default_options.clone();
        self.listen_with(net, local, backlog, opts)
    }

    /// `listen` with options (inherited by accepted connections).
    pub fn listen_with(
        &mut self,
        net: &mut dyn TcpNet,
        mut local: SocketAddrV4,
        backlog: usize,
        opts: SocketOptions,
    ) -> Result<ConnId, TcpError> {
        self.check_bind(net, local, opts.reuse_addr)?;
        if local.port() == 0 {
            local.set_port(self.ephemeral_port(net)?);
        }
        let backlog = backlog.clamp(1, self.cfg.max_backlog);
        let id = self.alloc();
        self.slots[id.index as usize].sock =
            Some(Sock::Listener(Listener { local, backlog, queue: VecDeque::new(), pending: Vec::new(), opts }));
        self.listeners.insert(local.port(), id);
        self.trace_listener(id, local, State::Closed, State::Listen, Cause::PassiveOpen);
        Ok(id)
    }

    /// OPEN, active (RFC 9293 section 3.10.1), with the default options.
    /// Nonblocking: returns in SYN-SENT; the connection is writable once ESTABLISHED.
    pub fn connect(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        local: Option<SocketAddrV4>,
        remote: SocketAddrV4,
    ) -> Result<ConnId, TcpError> {
        let opts = self.cfg.default_options.clone();
        self.connect_with(now, net, local, remote, opts)
    }

    /// `connect` with options.
    pub fn connect_with(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        local: Option<SocketAddrV4>,
        remote: SocketAddrV4,
        opts: SocketOptions,
    ) -> Result<ConnId, TcpError> {
        let rip = *remote.ip();
        if remote.port() == 0 || rip.is_unspecified() || net.is_broadcast(rip) || rip.is_multicast() {
            return Err(TcpError::InvalidArgument);
        }
        if self.conn_count >= self.cfg.max_connections {
            return Err(TcpError::NoBufferSpace);
        }
        let ip = net.local_ip();
        let local = match local {
            Some(l) if !l.ip().is_unspecified() && *l.ip() != ip => return Err(TcpError::InvalidArgument),
            Some(l) if l.port() != 0 => {
                let l = SocketAddrV4::new(ip, l.port());
                if let Some(&other) = self.conns.get(&(l, remote)) {
                    let tw = conn_mut(&mut self.slots, other).is_some_and(|c| c.state == State::TimeWait);
                    if !(tw && opts.reuse_addr) {
                        return Err(TcpError::AddrInUse);
                    }
                    self.kill_time_wait_on(now, net, Some((l, remote)), l.port());
                }
                if self.listeners.contains_key(&l.port()) && !opts.reuse_addr {
                    return Err(TcpError::AddrInUse);
                }
                l
            }
            _ => SocketAddrV4::new(ip, self.ephemeral_port(net)?),
        };
        let id = self.alloc();
        let iss = self.isn.next(now, local, remote);
        let mut ctx = ctx!(self, now, net);
        let mut conn = Conn::connect(&mut ctx, id, local, remote, iss, opts);
        if conn.tx_error == Some(DropReason::IpNoRoute) {
            // No route to the peer: fail now, as Linux does (ENETUNREACH).
            conn.close_with(&mut ctx, Some(TcpError::HostUnreachable), Cause::NoRoute);
            self.free.push(id.index);
            return Err(TcpError::HostUnreachable);
        }
        self.slots[id.index as usize].sock = Some(Sock::Conn(Box::new(conn)));
        self.conn_count += 1;
        self.map(id, local, remote);
        self.settle(id);
        Ok(id)
    }

    /// The next established connection of a listener, with its peer's address;
    /// `Ok(None)` if none is waiting.
    pub fn accept(&mut self, listener: ConnId) -> Result<Option<(ConnId, SocketAddrV4)>, TcpError> {
        let l = listener_mut(&mut self.slots, listener).ok_or(TcpError::InvalidState)?;
        let Some(id) = l.queue.pop_front() else { return Ok(None) };
        let c = conn_mut(&mut self.slots, id).expect("queued connections exist");
        c.parent = None;
        c.in_accept_queue = false;
        Ok(Some((id, c.remote)))
    }

    /// SEND (RFC 9293 section 3.10.2): copies what fits in the send buffer.
    pub fn send(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId, data: &[u8]) -> Result<usize, TcpError> {
        let conn = user_conn_mut(&mut self.slots, id)?;
        let mut ctx = ctx!(self, now, net);
        let r = conn.send(&mut ctx, data);
        self.settle(id);
        r
    }

    /// RECEIVE (RFC 9293 section 3.10.3): Ok(0) at end of stream; WouldBlock if
    /// nothing yet; `peek` leaves the data in place.
    pub fn recv(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<usize, TcpError> {
        let conn = user_conn_mut(&mut self.slots, id)?;
        let mut ctx = ctx!(self, now, net);
        let r = conn.recv(&mut ctx, buf, peek);
        self.settle(id);
        r
    }

    pub fn shutdown(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId, how: Shutdown) -> Result<(), TcpError> {
        let conn = user_conn_mut(&mut self.slots, id)?;
        if conn.state == State::Closed && conn.error.is_none() {
            return Err(TcpError::NotConnected);
        }
        let mut ctx = ctx!(self, now, net);
        conn.shutdown(&mut ctx, how);
        self.settle(id);
        Ok(())
    }

    /// CLOSE (RFC 9293 section 3.10.4) and release of the handle. The connection
    /// lives on (FIN-WAIT, TIME-WAIT...) until the protocol is done with it. A
    /// listener's connections not yet accepted are reset.
    pub fn close(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId) -> Result<(), TcpError> {
        if let Some(l) = listener_mut(&mut self.slots, id) {
            let children: Vec<ConnId> = l.queue.drain(..).chain(l.pending.drain(..)).collect();
            let local = l.local;
            self.listeners.remove(&local.port());
            self.release(id);
            self.trace_listener(id, local, State::Listen, State::Closed, Cause::Close);
            for child in children {
                if let Some(c) = conn_mut(&mut self.slots, child) {
                    c.parent = None;
                    c.user_closed = true;
                    let mut ctx = ctx!(self, now, net);
                    c.abort(&mut ctx);
                    self.settle(child);
                }
            }
            return Ok(());
        }
        let conn = user_conn_mut(&mut self.slots, id)?;
        let mut ctx = ctx!(self, now, net);
        conn.close(&mut ctx);
        self.settle(id);
        Ok(())
    }

    /// ABORT (RFC 9293 section 3.10.5): reset and release.
    pub fn abort(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId) -> Result<(), TcpError> {
        if listener_mut(&mut self.slots, id).is_some() {
            return self.close(now, net, id);
        }
        let conn = user_conn_mut(&mut self.slots, id)?;
        conn.user_closed = true;
        let mut ctx = ctx!(self, now, net);
        conn.abort(&mut ctx);
        self.settle(id);
        Ok(())
    }

    /// STATUS (RFC 9293 section 3.10.6): the state.
    pub fn state(&self, id: ConnId) -> Result<State, TcpError> {
        match self.sock(id)? {
            Sock::Listener(_) => Ok(State::Listen),
            Sock::Conn(c) => Ok(c.state),
        }
    }

    fn sock(&self, id: ConnId) -> Result<&Sock, TcpError> {
        match self.slots.get(id.index as usize) {
            Some(Slot { gen, sock: Some(s) }) if *gen == id.gen => match s {
                Sock::Conn(c) if c.user_closed || c.parent.is_some() => Err(TcpError::InvalidState),
                s => Ok(s),
            },
            _ => Err(TcpError::InvalidState),
        }
    }

    pub fn local_addr(&self, id: ConnId) -> Result<SocketAddrV4, TcpError> {
        match self.sock(id)? {
            Sock::Listener(l) => Ok(l.local),
            Sock::Conn(c) => Ok(c.local),
        }
    }

    pub fn peer_addr(&self, id: ConnId) -> Result<SocketAddrV4, TcpError> {
        match self.sock(id)? {
            Sock::Listener(_) => Err(TcpError::NotConnected),
            Sock::Conn(c) => Ok(c.remote),
        }
    }

    pub fn readiness(&self, id: ConnId) -> Result<Readiness, TcpError> {
        match self.sock(id)? {
            Sock::Listener(l) => Ok(Readiness { readable: !l.queue.is_empty(), ..Default::default() }),
            Sock::Conn(c) => Ok(c.readiness()),
        }
    }

    /// SO_ERROR: the pending error, consumed.
    pub fn take_error(&mut self, id: ConnId) -> Result<Option<TcpError>, TcpError> {
        self.sock(id)?;
        match user_conn_mut(&mut self.slots, id) {
            Ok(c) => Ok(c.error.take()),
            Err(TcpError::NotConnected) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn info(&self, id: ConnId) -> Result<TcpInfo, TcpError> {
        Ok(self.sock_info(self.sock(id)?))
    }

    fn sock_info(&self, s: &Sock) -> TcpInfo {
        match s {
            Sock::Conn(c) => c.info(self.cfg.r1_retries),
            Sock::Listener(l) => TcpInfo {
                state: State::Listen,
                local: l.local,
                remote: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                cwnd: 0,
                ssthresh: 0,
                srtt: None,
                rttvar: Duration::ZERO,
                rto: Duration::ZERO,
                snd_mss: 0,
                snd_wnd: 0,
                rcv_wnd: 0,
                snd_wscale: 0,
                rcv_wscale: 0,
                unacked: 0,
                send_queue: l.backlog,
                recv_queue: l.queue.len(),
                out_of_order: 0,
                bytes_sent: 0,
                bytes_acked: 0,
                bytes_received: 0,
                retransmissions: 0,
                segs_in: 0,
                segs_out: 0,
                retries: 0,
                path_suspect: false,
                in_recovery: false,
                timers: TimerInfo::default(),
            },
        }
    }

    /// Every listener and connection, orphans and unaccepted ones included (an
    /// `ss -tan` view), in slot order.
    pub fn sockets(&self) -> impl Iterator<Item = (ConnId, TcpInfo)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, slot)| {
            let s = slot.sock.as_ref()?;
            Some((ConnId { index: i as u32, gen: slot.gen }, self.sock_info(s)))
        })
    }

    /// Connections (not listeners) in the table.
    pub fn connection_count(&self) -> usize {
        self.conn_count
    }

    /// Makes the next connection between `local` and `remote` start at sequence
    /// number `isn` instead of the RFC 6528 generator's choice. For replaying a
    /// capture taken outside the stack (tcpdump on the TAP), whose timestamps are
    /// not the stack's clock, so the clock part of the ISN must come from the capture.
    pub fn pin_isn(&mut self, local: SocketAddrV4, remote: SocketAddrV4, isn: u32) {
        self.isn.pin(local, remote, Seq(isn));
    }

    /// Hands every recorded state transition to `f`, oldest first, and forgets them.
    pub fn drain_transitions(&mut self, f: impl FnMut(&Transition)) {
        self.trace.drain(f)
    }

    /// Transitions dropped because the queue was full.
    pub fn transitions_lost(&self) -> u64 {
        self.trace.lost
    }

    pub fn options(&self, id: ConnId) -> Result<SocketOptions, TcpError> {
        match self.sock(id)? {
            Sock::Listener(l) => Ok(l.opts.clone()),
            Sock::Conn(c) => Ok(c.opts.clone()),
        }
    }

    /// setsockopt: replaces the socket's options (see [`SocketOptions`] for what
    /// can change when); may send (TCP_NODELAY flushes what Nagle held).
    pub fn set_options(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        mut opts: SocketOptions,
    ) -> Result<(), TcpError> {
        opts.send_buffer = opts.send_buffer.clamp(config::MIN_BUFFER, config::MAX_BUFFER);
        opts.recv_buffer = opts.recv_buffer.clamp(config::MIN_BUFFER, config::MAX_BUFFER);
        if opts.keepalive && (opts.keep_idle.is_zero() || opts.keep_interval.is_zero() || opts.keep_count == 0) {
            return Err(TcpError::InvalidArgument);
        }
        if let Some(l) = listener_mut(&mut self.slots, id) {
            l.opts = opts;
            return Ok(());
        }
        let conn = user_conn_mut(&mut self.slots, id)?;
        conn.set_options(now, opts);
        let mut ctx = ctx!(self, now, net);
        conn.output(&mut ctx);
        self.settle(id);
        Ok(())
    }

    /// Changes one option with `f`.
    fn update_options(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        f: impl FnOnce(&mut SocketOptions),
    ) -> Result<(), TcpError> {
        let mut o = self.options(id)?;
        f(&mut o);
        self.set_options(now, net, id, o)
    }

    /// TCP_NODELAY.
    pub fn set_nodelay(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId, on: bool) -> Result<(), TcpError> {
        self.update_options(now, net, id, |o| o.nodelay = on)
    }

    /// SO_KEEPALIVE.
    pub fn set_keepalive(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId, on: bool) -> Result<(), TcpError> {
        self.update_options(now, net, id, |o| o.keepalive = on)
    }

    /// TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT.
    pub fn set_keepalive_params(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        idle: Duration,
        interval: Duration,
        count: u32,
    ) -> Result<(), TcpError> {
        if idle.is_zero() || interval.is_zero() || count == 0 {
            return Err(TcpError::InvalidArgument);
        }
        self.update_options(now, net, id, |o| {
            o.keep_idle = idle;
            o.keep_interval = interval;
            o.keep_count = count;
        })
    }

    /// SO_LINGER.
    pub fn set_linger(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        linger: Option<Duration>,
    ) -> Result<(), TcpError> {
        self.update_options(now, net, id, |o| o.linger = linger)
    }

    /// SO_SNDBUF.
    pub fn set_send_buffer(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        bytes: usize,
    ) -> Result<(), TcpError> {
        self.update_options(now, net, id, |o| o.send_buffer = bytes)
    }

    /// SO_RCVBUF (takes effect only while the buffer is empty).
    pub fn set_recv_buffer(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        bytes: usize,
    ) -> Result<(), TcpError> {
        self.update_options(now, net, id, |o| o.recv_buffer = bytes)
    }

    /// SO_REUSEADDR.
    pub fn set_reuse_addr(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId, on: bool) -> Result<(), TcpError> {
        self.update_options(now, net, id, |o| o.reuse_addr = on)
    }

    /// Sequence numbers of a connection (ISS, SND.UNA, SND.MAX, IRS, RCV.NXT), for tests and tools.
    pub fn seqs(&self, id: ConnId) -> Result<(Seq, Seq, Seq, Seq, Seq), TcpError> {
        match self.sock(id)? {
            Sock::Conn(c) => Ok(c.seqs()),
            Sock::Listener(_) => Err(TcpError::NotConnected),
        }
    }
}
