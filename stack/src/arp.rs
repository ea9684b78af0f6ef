//! ARP (RFC 826): answering for our address, and resolving next hops with a
//! bounded cache, a bounded queue per unresolved address, retries and failure.
//!
//! State:
//! - the cache, a `HashMap` keyed by address, bounded by `max_entries`; looking an
//!   address up does not allocate, so sending to a resolved next hop does not either.
//!   Beside it an ordered set of (expiry, address), so that the next expiry
//!   (`poll_at`), expiring (`poll`) and the eviction of the oldest cost O(log n),
//!   never a scan of the cache;
//! - the unresolved addresses, a short `Vec` bounded by `max_pending`, each with the
//!   frames held for it. A `Vec` rather than a map so that retries and failures come
//!   out in a fixed order: a `HashMap` iterates in a per-process random order, and
//!   the frames we emit must replay identically from the same inputs.
//!
//! Policies:
//! - a full per-address queue drops its OLDEST frame to make room: RFC 1122 section
//!   2.3.2.2 asks to keep at least the latest, which is also the one a transport
//!   would retransmit anyway (Linux does the same);
//! - an entry used in the last [`REFRESH_WINDOW`] of its lifetime is still used, and
//!   a unicast request is sent to the MAC we know (RFC 1122 section 2.3.2.1, "unicast
//!   poll"), at most once per `retry_interval`. The answer renews the entry, so busy
//!   traffic never stalls on a broadcast round trip; without an answer the entry
//!   expires and the next packet asks again by broadcast.

use crate::buffer::{TxQueue, ETH_HEADER_LEN};
use crate::counters::{Counters, DropReason};
use crate::ethernet::{self, MacAddr};
use crate::offload::TxOffload;
use crate::time::{Duration, Instant};
use etherparse::{ArpEthIpv4Packet, ArpOperation, ArpPacketSlice, EtherType};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::Ipv4Addr;

/// How long before an entry expires its use triggers a refresh. At most half the
/// lifetime, so that a short lifetime still has a period without refreshes.
pub const REFRESH_WINDOW: Duration = Duration::from_secs(5);

/// Most cache slots allocated up front; a larger `max_entries` grows on insert.
const MAX_PREALLOCATED: usize = 4096;

/// ARP limits and timers. Defaults are documented per field.
#[derive(Clone, Debug)]
pub struct ArpConfig {
    /// How long a learned entry is used before it must be refreshed (default
    /// 60 s; Linux: reachable for 15-45 s, base_reachable_time 30 s, then
    /// stale until used and re-confirmed).
    pub entry_lifetime: Duration,
    /// Most entries in the cache (default 256); the oldest is evicted for a new
    /// one. Linux: gc_thresh3 1024 (hard limit), garbage-collected from gc_thresh1 128.
    pub max_entries: usize,
    /// Unresolved addresses being asked about at once (default 64). Linux: no
    /// limit of their own; they count among gc_thresh3's entries.
    pub max_pending: usize,
    /// Bytes of frames held per unresolved address (default 212,992, Linux's
    /// unres_qlen_bytes); past it the oldest are dropped and counted. Ours
    /// counts the frames' bytes, Linux each skb's truesize (its buffer and
    /// bookkeeping, about 1 KB for a SYN,ACK: some 200 of them); ours holds
    /// some 2,700 SYN,ACKs, within `max_queued_bytes` of memory for all
    /// addresses. So a burst of SYNs from a few hosts being resolved keeps
    /// its SYN,ACKs (16 frames per address before: a burst of 1,000 SYNs
    /// from 4 hosts lost most of its SYN,ACKs to a retransmission 1 s later).
    pub max_queued_bytes_per_addr: usize,
    /// Memory held in frames for all unresolved addresses together, counted
    /// as their buffers' capacities (default 2 MiB, 1381 frame buffers of
    /// 1518 bytes); past it the oldest frames of the address asked about
    /// first go. Linux has no such bound (gc_thresh3 1024
    /// neighbours, each up to unres_qlen_bytes: 218 MB); this one keeps what
    /// a flood of SYNs from spoofed sources (each SYN,ACK held for an
    /// address that never answers) can cost, even with `max_pending` raised.
    pub max_queued_bytes: usize,
    /// Time between requests for an unresolved address (default 1 s, Linux's retrans_time).
    pub retry_interval: Duration,
    /// Requests sent before resolution fails (default 3, Linux's mcast_solicit).
    /// Resolution fails one `retry_interval` after the last: 3 s by default,
    /// as Linux's neighbour entry goes FAILED.
    pub max_requests: u32,
    /// How long an address whose resolution failed is not asked about again:
    /// frames to it are dropped at once and reported to their transport as
    /// "host unreachable", like the frames that waited for the failed
    /// resolution (so a second connect to it fails at once, where Linux asks
    /// again and fails after another 3 s) (default 60 s, longer than TCP's five
    /// SYN,ACK retransmissions take). This is what keeps spoofed sources (a SYN
    /// flood answered with SYN,ACKs, each retransmitted) from costing a
    /// broadcast round per retransmission: at most `max_requests` per address
    /// per hold, and `max_pending` per `retry_interval` in all. Linux asks again at
    /// the next packet; it has no such hold. A host that comes back is learned
    /// as soon as it sends us any ARP packet, so the hold costs little.
    pub failed_hold: Duration,
}

impl ArpConfig {
    /// The most frames held at once for all unresolved addresses: each holds a
    /// frame buffer (`FRAME_CAPACITY` bytes) at least; one per address may
    /// go past `max_queued_bytes` (each keeps its latest).
    pub fn max_held_frames(&self) -> usize {
        (self.max_queued_bytes / crate::buffer::FRAME_CAPACITY + self.max_pending).max(1)
    }
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig {
            entry_lifetime: Duration::from_secs(60),
            max_entries: 256,
            max_pending: 64,
            max_queued_bytes_per_addr: 212_992,
            max_queued_bytes: 2 << 20,
            retry_interval: Duration::from_secs(1),
            max_requests: 3,
            failed_hold: Duration::from_secs(60),
        }
    }
}

/// Our identity on the link, as ARP needs it.
#[derive(Copy, Clone, Debug)]
pub struct LinkAddrs {
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
}

/// A resolved address.
#[derive(Debug)]
struct Entry {
    mac: MacAddr,
    /// Learned or last renewed at `expires - entry_lifetime`; unusable from here on.
    expires: Instant,
    /// When we last asked to renew it (None since it was last renewed).
    refresh_sent: Option<Instant>,
}

/// An address we are asking about, and the frames waiting for its answer.
#[derive(Debug)]
struct Pending {
    ip: Ipv4Addr,
    /// Each with what it asks of the link (a GSO segment's size, a partial checksum).
    frames: VecDeque<(Vec<u8>, TxOffload)>,
    /// Their bytes (lengths, for `max_queued_bytes_per_addr`) and the memory
    /// they hold (their buffers' capacities, for `max_queued_bytes`).
    bytes: usize,
    memory: usize,
    /// Requests sent so far (at least one).
    requests: u32,
    next_retry: Instant,
}

/// The resolved addresses, with their expiries in order: every change of an
/// entry's expiry goes through here, so the order always matches the map.
#[derive(Debug)]
struct Cache {
    map: HashMap<Ipv4Addr, Entry>,
    /// (expires, address) of every entry in `map`; ties go by address, so no
    /// choice depends on the map's hash order.
    by_expiry: BTreeSet<(Instant, Ipv4Addr)>,
}

impl Cache {
    fn with_capacity(n: usize) -> Cache {
        Cache { map: HashMap::with_capacity(n), by_expiry: BTreeSet::new() }
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    /// Adds or replaces `ip`'s entry.
    fn set(&mut self, ip: Ipv4Addr, entry: Entry) {
        self.by_expiry.insert((entry.expires, ip));
        if let Some(old) = self.map.insert(ip, entry) {
            if old.expires != self.map[&ip].expires {
                self.by_expiry.remove(&(old.expires, ip));
            }
        }
    }

    fn remove(&mut self, ip: Ipv4Addr) {
        if let Some(old) = self.map.remove(&ip) {
            self.by_expiry.remove(&(old.expires, ip));
        }
    }

    /// Moves `ip`'s expiry to `expires`.
    fn set_expiry(&mut self, ip: Ipv4Addr, expires: Instant) {
        if let Some(e) = self.map.get_mut(&ip) {
            if e.expires != expires {
                self.by_expiry.remove(&(e.expires, ip));
                self.by_expiry.insert((expires, ip));
                e.expires = expires;
            }
        }
    }

    /// The entry that expires first (the least recently renewed), if any.
    fn oldest(&self) -> Option<(Instant, Ipv4Addr)> {
        self.by_expiry.first().copied()
    }
}

/// The ARP cache and the packets waiting on it.
#[derive(Debug)]
pub struct Arp {
    config: ArpConfig,
    cache: Cache,
    pending: Vec<Pending>,
    /// The earliest `next_retry` in `pending` (kept on every change to it, so
    /// `poll_at` and an idle `poll` do not walk the list).
    pending_due: Option<Instant>,
    /// The last MAC seen claiming our address (RFC 5227 section 2.4).
    conflict: Option<MacAddr>,
    /// Addresses whose resolution failed, with when, oldest first; bounded by
    /// `max_entries` (the oldest forgotten first).
    failed: VecDeque<(Ipv4Addr, Instant)>,
    /// The bytes every `pending` address's frames hold (`max_queued_bytes`).
    held: usize,
}

impl Arp {
    pub fn new(config: ArpConfig) -> Arp {
        let cache = Cache::with_capacity(config.max_entries.min(MAX_PREALLOCATED));
        let pending = Vec::with_capacity(config.max_pending.min(MAX_PREALLOCATED));
        Arp { config, cache, pending, pending_due: None, conflict: None, failed: VecDeque::new(), held: 0 }
    }

    /// Handles an inbound ARP packet (`payload` is the frame after the Ethernet
    /// header). Answers requests for our address and learns the sender's mapping
    /// (RFC 826 "Packet Reception"). On `Err` the caller counts the drop.
    pub fn input(
        &mut self,
        now: Instant,
        me: LinkAddrs,
        payload: &[u8],
        tx: &mut TxQueue,
        counters: &mut Counters,
    ) -> Result<(), DropReason> {
        let slice = ArpPacketSlice::from_slice(payload).map_err(|_| DropReason::ArpMalformed)?;
        // RFC 826: only the hardware and protocol types we speak (Ethernet, IPv4).
        let packet = slice.to_packet().try_eth_ipv4().map_err(|_| DropReason::ArpUnsupported)?;
        // Other opcodes (RARP, InARP) belong to other protocols. RFC 826 would merge
        // before looking at the opcode; we neither answer nor learn from them.
        let is_request = match packet.operation {
            ArpOperation::REQUEST => true,
            ArpOperation::REPLY => false,
            _ => return Err(DropReason::ArpUnsupported),
        };
        let sender_mac = MacAddr(packet.sender_mac);
        let sender_ip = packet.sender_ipv4_addr();
        // No host has a group or zero MAC, or a broadcast or multicast IP: caching
        // such a claim would send our unicast traffic to everyone or to no one.
        if sender_mac.is_multicast()
            || sender_mac == MacAddr::ZERO
            || sender_ip.is_broadcast()
            || sender_ip.is_multicast()
        {
            return Err(DropReason::ArpMalformed);
        }
        // Our own MAC as sender: our own packet looped back. Never cache ourselves.
        if sender_mac == me.mac {
            return Err(DropReason::ArpMalformed);
        }
        // Another host using our address (RFC 5227 section 2.4): remember it, so
        // that `tapstack up` can refuse an address that is already in use.
        if sender_ip == me.ip {
            self.conflict = Some(sender_mac);
            return Err(DropReason::ArpAddressConflict);
        }
        let for_us = packet.target_ipv4_addr() == me.ip;
        // RFC 5227 section 2.1.1: a probe has sender IP 0.0.0.0. It is answered
        // (that is how its sender learns the address is taken) but teaches nothing.
        if !sender_ip.is_unspecified() {
            // RFC 826: update the sender's mapping if we hold it ("merge"), and add
            // it only if the packet is for us (a host asking us will likely be talked to).
            self.merge(now, me, sender_ip, sender_mac, for_us, tx);
        }
        if !for_us {
            return Err(DropReason::ArpNotForUs);
        }
        if !is_request {
            counters.arp.rx_replies += 1;
            return Ok(());
        }
        counters.arp.rx_requests += 1;
        // RFC 826: swap sender and target, fill in our MAC, send it back to the asker.
        let reply = ArpEthIpv4Packet {
            operation: ArpOperation::REPLY,
            sender_mac: me.mac.0,
            sender_ipv4: me.ip.octets(),
            target_mac: packet.sender_mac,
            target_ipv4: packet.sender_ipv4,
        };
        emit(tx, me.mac, sender_mac, &reply);
        counters.arp.tx_replies += 1;
        Ok(())
    }

    /// Sends `frame` (an IPv4 packet behind 14 reserved bytes) to `next_hop` on the
    /// link: fills in the Ethernet header and queues it on `tx` if the MAC is known;
    /// otherwise holds it and asks. Drops are counted here. Returns the frame
    /// if `next_hop` failed lately (see [`ArpConfig::failed_hold`]): it is
    /// dropped, and the caller reports it upward as a failure would be.
    pub fn send(
        &mut self,
        now: Instant,
        me: LinkAddrs,
        next_hop: Ipv4Addr,
        frame: Vec<u8>,
        tx: &mut TxQueue,
        counters: &mut Counters,
    ) -> Option<Vec<u8>> {
        self.send_offloaded(now, me, next_hop, (frame, TxOffload::NONE), tx, counters)
    }

    /// [`Arp::send`] for a frame that asks the link for an offload, which it
    /// keeps while the frame waits for the answer.
    pub fn send_offloaded(
        &mut self,
        now: Instant,
        me: LinkAddrs,
        next_hop: Ipv4Addr,
        (mut frame, offload): (Vec<u8>, TxOffload),
        tx: &mut TxQueue,
        counters: &mut Counters,
    ) -> Option<Vec<u8>> {
        debug_assert!(frame.len() >= ETH_HEADER_LEN, "frames reserve room for the Ethernet header");
        let window = REFRESH_WINDOW.min(self.config.entry_lifetime / 2);
        if let Some(entry) = self.cache.map.get_mut(&next_hop) {
            if now < entry.expires {
                let mac = entry.mac;
                ethernet::write_header(&mut frame, me.mac, mac, EtherType::IPV4);
                tx.push_offloaded(frame, offload);
                // RFC 1122 section 2.3.2.1: renew an entry in use by asking its
                // owner directly, before it times out, rate-limited per address.
                let near_end = now + window >= entry.expires;
                let may_ask = entry.refresh_sent.is_none_or(|t| now >= t + self.config.retry_interval);
                if near_end && may_ask {
                    entry.refresh_sent = Some(now);
                    send_request(me, next_hop, mac, tx, counters);
                }
                return None;
            }
            // Expired and not yet collected by `poll`.
            self.cache.remove(next_hop);
            counters.arp.expired += 1;
        }
        self.hold(now, me, next_hop, (frame, offload), tx, counters)
    }

    /// Retries requests, expires entries, and fails addresses that never answered:
    /// each packet held for them is counted as dropped and handed to `failed`
    /// (so the stack can report "host unreachable" upward), then recycled by the caller.
    pub fn poll(
        &mut self,
        now: Instant,
        me: LinkAddrs,
        tx: &mut TxQueue,
        counters: &mut Counters,
        failed: &mut dyn FnMut(Vec<u8>),
    ) {
        while let Some((expires, ip)) = self.cache.oldest().filter(|&(t, _)| t <= now) {
            debug_assert_eq!(self.cache.map.get(&ip).map(|e| e.expires), Some(expires));
            self.cache.remove(ip);
            counters.arp.expired += 1;
        }
        if self.pending_due.is_none_or(|t| now < t) {
            return;
        }
        self.retry_pending(now, me, tx, counters, failed);
    }

    /// The retries and failures of unresolved addresses due by `now`, in the
    /// order the addresses were first asked about. O(`max_pending`), only when
    /// one is due.
    fn retry_pending(
        &mut self,
        now: Instant,
        me: LinkAddrs,
        tx: &mut TxQueue,
        counters: &mut Counters,
        failed: &mut dyn FnMut(Vec<u8>),
    ) {
        let mut i = 0;
        while i < self.pending.len() {
            let p = &mut self.pending[i];
            if now < p.next_retry {
                i += 1;
            } else if p.requests < self.config.max_requests {
                // RFC 1122 section 2.3.2.1: at most one request per second per
                // address (the default retry interval).
                p.requests += 1;
                p.next_retry = now + self.config.retry_interval;
                send_request(me, p.ip, MacAddr::BROADCAST, tx, counters);
                i += 1;
            } else {
                let p = self.pending.remove(i);
                self.held -= p.memory;
                counters.arp.resolution_failures += 1;
                if self.failed.len() >= self.config.max_entries.max(1) {
                    self.failed.pop_front();
                }
                self.failed.push_back((p.ip, now));
                for (frame, _) in p.frames {
                    counters.drops.add(DropReason::ArpResolutionFailed);
                    failed(frame);
                }
            }
        }
        self.update_pending_due();
    }

    /// Recomputes [`Arp::pending_due`] after `pending` changed: O(`max_pending`),
    /// at a retry, a failure or a resolution, never per frame.
    fn update_pending_due(&mut self) {
        self.pending_due = self.pending.iter().map(|p| p.next_retry).min();
    }

    /// When [`Arp::poll`] next has something to do. O(1): the cache's first
    /// expiry and the earliest retry are both kept.
    pub fn poll_at(&self) -> Option<Instant> {
        crate::time::earliest(self.cache.oldest().map(|(t, _)| t), self.pending_due)
    }

    /// The MAC of another host seen claiming our address, if any (RFC 5227 section 2.4).
    pub fn address_conflict(&self) -> Option<MacAddr> {
        self.conflict
    }

    /// Sends a gratuitous ARP announcing our mapping (at start-up).
    pub fn announce(&mut self, now: Instant, me: LinkAddrs, tx: &mut TxQueue, counters: &mut Counters) {
        let _ = now;
        // RFC 5227 sections 2.3 and 3: an announcement is a broadcast request with
        // our address as both sender and target; RFC 826 caches holding us update
        // on it. (RFC 5227 sends two, 2 s apart; the interface asks for one.)
        send_request(me, me.ip, MacAddr::BROADCAST, tx, counters);
    }

    /// Sends an ARP probe for our own address (RFC 5227 section 2.1.1: sender IP
    /// 0.0.0.0, so no cache learns from it). A host already using the address
    /// answers, and [`Arp::address_conflict`] then names it.
    pub fn probe(&mut self, me: LinkAddrs, tx: &mut TxQueue, counters: &mut Counters) {
        send_request(LinkAddrs { mac: me.mac, ip: Ipv4Addr::UNSPECIFIED }, me.ip, MacAddr::BROADCAST, tx, counters);
    }

    /// Marks the mapping of `ip` suspect: how IP acts on negative advice from TCP
    /// (RFC 1122 section 3.3.1.4). The entry stays in use but enters its refresh
    /// window, so the next packet to `ip` also sends a unicast poll; without an
    /// answer the entry lapses at the window's end and the next packet asks by
    /// broadcast. (Linux moves such a neighbour to PROBE the same way.)
    pub fn suspect(&mut self, now: Instant, ip: Ipv4Addr) {
        let window = REFRESH_WINDOW.min(self.config.entry_lifetime / 2);
        if let Some(e) = self.cache.map.get_mut(&ip) {
            e.refresh_sent = None;
            let expires = e.expires.min(now + window);
            self.cache.set_expiry(ip, expires);
        }
    }

    /// The MAC of `ip` if the cache holds a valid entry.
    pub fn lookup(&self, now: Instant, ip: Ipv4Addr) -> Option<MacAddr> {
        self.cache.map.get(&ip).filter(|e| now < e.expires).map(|e| e.mac)
    }

    /// The cache's entries as (address, MAC, expiry), in no particular order; an
    /// entry past its expiry is still listed until [`Arp::poll`] removes it.
    pub fn entries(&self) -> impl Iterator<Item = (Ipv4Addr, MacAddr, Instant)> + '_ {
        self.cache.map.iter().map(|(ip, e)| (*ip, e.mac, e.expires))
    }

    /// The memory the frames waiting for resolution hold (their buffers).
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// The addresses being resolved, with how many frames wait on each, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = (Ipv4Addr, usize)> + '_ {
        self.pending.iter().map(|p| (p.ip, p.frames.len()))
    }

    /// RFC 826 "merge": renews `ip`'s mapping if we hold it, resolved or pending, and
    /// adds it only if `create`. Frames held for it leave now, oldest first.
    fn merge(&mut self, now: Instant, me: LinkAddrs, ip: Ipv4Addr, mac: MacAddr, create: bool, tx: &mut TxQueue) {
        let pending = self.pending.iter().position(|p| p.ip == ip);
        self.failed.retain(|f| f.0 != ip);
        let entry = Entry { mac, expires: now + self.config.entry_lifetime, refresh_sent: None };
        if self.cache.map.contains_key(&ip) {
            self.cache.set(ip, entry);
        } else if create || pending.is_some() {
            self.insert(ip, entry);
        }
        if let Some(i) = pending {
            let p = self.pending.remove(i);
            self.held -= p.memory;
            for (mut frame, offload) in p.frames {
                ethernet::write_header(&mut frame, me.mac, mac, EtherType::IPV4);
                tx.push_offloaded(frame, offload);
            }
            self.update_pending_due();
        }
    }

    /// Adds an address not in the cache, evicting the least recently renewed
    /// entry (the likeliest to be stale) if the cache is full.
    fn insert(&mut self, ip: Ipv4Addr, entry: Entry) {
        if self.config.max_entries == 0 {
            return;
        }
        if self.cache.len() >= self.config.max_entries {
            // The least recently renewed; ties broken by address so that the
            // choice does not depend on hash order. O(log n).
            if let Some((_, oldest)) = self.cache.oldest() {
                self.cache.remove(oldest);
            }
        }
        self.cache.set(ip, entry);
    }

    /// Holds `frame` until `next_hop` answers, asking it if we are not already.
    /// Returns it if `next_hop` failed lately.
    fn hold(
        &mut self,
        now: Instant,
        me: LinkAddrs,
        next_hop: Ipv4Addr,
        frame: (Vec<u8>, TxOffload),
        tx: &mut TxQueue,
        counters: &mut Counters,
    ) -> Option<Vec<u8>> {
        let hold = self.config.failed_hold;
        while self.failed.front().is_some_and(|f| now.saturating_duration_since(f.1) >= hold) {
            self.failed.pop_front();
        }
        let i = match self.pending.iter().position(|p| p.ip == next_hop) {
            Some(i) => i,
            None if self.failed.iter().any(|f| f.0 == next_hop) => {
                // Failed lately: not asked again yet (see `ArpConfig::failed_hold`).
                counters.drops.add(DropReason::ArpFailedLately);
                return Some(frame.0);
            }
            None if self.pending.len() >= self.config.max_pending => {
                counters.drops.add(DropReason::ArpQueueFull);
                tx.recycle(frame.0);
                return None;
            }
            None => {
                self.pending.push(Pending {
                    ip: next_hop,
                    frames: VecDeque::new(),
                    bytes: 0,
                    memory: 0,
                    requests: 1,
                    next_retry: now + self.config.retry_interval,
                });
                self.pending_due = crate::time::earliest(self.pending_due, Some(now + self.config.retry_interval));
                send_request(me, next_hop, MacAddr::BROADCAST, tx, counters);
                self.pending.len() - 1
            }
        };
        let (len, memory) = (frame.0.len(), frame.0.capacity());
        let p = &mut self.pending[i];
        p.frames.push_back(frame);
        p.bytes += len;
        p.memory += memory;
        self.held += memory;
        counters.arp.queued += 1;
        // Drop the oldest (RFC 1122 section 2.3.2.2: keep at least the latest).
        while p.bytes > self.config.max_queued_bytes_per_addr && p.frames.len() > 1 {
            let Some((old, _)) = p.frames.pop_front() else { break };
            p.bytes -= old.len();
            p.memory -= old.capacity();
            self.held -= old.capacity();
            counters.drops.add(DropReason::ArpQueueFull);
            tx.recycle(old);
        }
        self.trim_held(tx, counters);
        None
    }

    /// Keeps every address's frames together within `max_queued_bytes`: the
    /// oldest frames of the address asked about first go (the likeliest to
    /// fail: a host that answers does so in a round trip), each address
    /// keeping its latest (RFC 1122 section 2.3.2.2). O(1) per frame dropped
    /// but for addresses with one frame left passed over, at most `max_pending`.
    fn trim_held(&mut self, tx: &mut TxQueue, counters: &mut Counters) {
        let mut i = 0;
        while self.held > self.config.max_queued_bytes && i < self.pending.len() {
            let p = &mut self.pending[i];
            if p.frames.len() <= 1 {
                i += 1;
                continue;
            }
            let Some((old, _)) = p.frames.pop_front() else { break };
            p.bytes -= old.len();
            p.memory -= old.capacity();
            self.held -= old.capacity();
            counters.drops.add(DropReason::ArpQueueFull);
            tx.recycle(old);
        }
    }
}

/// Sends a request for `target` to `dst` (broadcast, or the known MAC for a refresh).
fn send_request(me: LinkAddrs, target: Ipv4Addr, dst: MacAddr, tx: &mut TxQueue, counters: &mut Counters) {
    // The target hardware address is what a request asks for, so RFC 826 leaves
    // it open; RFC 5227 section 2.1.1 says it SHOULD be zero.
    let request = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: me.mac.0,
        sender_ipv4: me.ip.octets(),
        target_mac: [0; 6],
        target_ipv4: target.octets(),
    };
    emit(tx, me.mac, dst, &request);
    counters.arp.tx_requests += 1;
}

/// Queues an ARP packet in an Ethernet frame from `src` to `dst`. It is 42 bytes,
/// not padded to Ethernet's 60-byte minimum: a NIC pads on transmit, and the kernel
/// takes short frames from a TAP device as they are.
fn emit(tx: &mut TxQueue, src: MacAddr, dst: MacAddr, packet: &ArpEthIpv4Packet) {
    let mut frame = tx.alloc();
    frame.resize(ETH_HEADER_LEN, 0);
    ethernet::write_header(&mut frame, src, dst, EtherType::ARP);
    frame.extend_from_slice(&packet.to_bytes());
    tx.push(frame);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::FRAME_CAPACITY;
    use etherparse::{ArpHardwareId, Ethernet2Header};

    const ME: LinkAddrs = LinkAddrs { mac: MacAddr([0x02, 0, 0, 0, 0, 0x01]), ip: Ipv4Addr::new(10, 0, 0, 1) };
    const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const OTHER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

    fn t(millis: u64) -> Instant {
        Instant::from_millis(millis)
    }

    fn arp_bytes(op: ArpOperation, sender: (MacAddr, Ipv4Addr), target: (MacAddr, Ipv4Addr)) -> [u8; 28] {
        ArpEthIpv4Packet {
            operation: op,
            sender_mac: sender.0 .0,
            sender_ipv4: sender.1.octets(),
            target_mac: target.0 .0,
            target_ipv4: target.1.octets(),
        }
        .to_bytes()
    }

    fn request(sender: (MacAddr, Ipv4Addr), target_ip: Ipv4Addr) -> [u8; 28] {
        arp_bytes(ArpOperation::REQUEST, sender, (MacAddr::ZERO, target_ip))
    }

    fn reply_to_me(sender: (MacAddr, Ipv4Addr)) -> [u8; 28] {
        arp_bytes(ArpOperation::REPLY, sender, (ME.mac, ME.ip))
    }

    /// An outgoing IPv4 frame as the IP layer hands it to ARP: 14 reserved bytes,
    /// then a body tagged with `tag` so frames can be told apart.
    fn ip_frame(tx: &mut TxQueue, tag: u8) -> Vec<u8> {
        let mut f = tx.alloc();
        f.resize(ETH_HEADER_LEN, 0);
        f.extend_from_slice(&[tag; 20]);
        f
    }

    fn drain(tx: &mut TxQueue) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| tx.pop()).collect()
    }

    fn eth(frame: &[u8]) -> Ethernet2Header {
        Ethernet2Header::from_slice(frame).unwrap().0
    }

    /// Parses an ARP frame we sent, checking the parts every one of them shares.
    fn parse_arp(frame: &[u8]) -> (Ethernet2Header, ArpEthIpv4Packet) {
        assert_eq!(frame.len(), ETH_HEADER_LEN + ArpEthIpv4Packet::LEN);
        let h = eth(frame);
        assert_eq!(h.source, ME.mac.0);
        assert_eq!(h.ether_type, EtherType::ARP);
        let slice = ArpPacketSlice::from_slice(&frame[ETH_HEADER_LEN..]).unwrap();
        assert_eq!(slice.hw_addr_type(), ArpHardwareId::ETHERNET);
        assert_eq!(slice.proto_addr_type(), EtherType::IPV4);
        assert_eq!(slice.hw_addr_size(), 6);
        assert_eq!(slice.proto_addr_size(), 4);
        (h, slice.to_packet().try_eth_ipv4().unwrap())
    }

    /// Checks `frame` is a broadcast request from us for `target`.
    fn assert_broadcast_request(frame: &[u8], target: Ipv4Addr) {
        let (h, p) = parse_arp(frame);
        assert_eq!(h.destination, [0xff; 6]);
        assert_eq!(p.operation, ArpOperation::REQUEST);
        assert_eq!((p.sender_mac, p.sender_ipv4_addr()), (ME.mac.0, ME.ip));
        assert_eq!((p.target_mac, p.target_ipv4_addr()), ([0; 6], target));
    }

    /// Checks `frame` is a data frame from us to `dst` carrying body `tag`.
    fn assert_ip_frame(frame: &[u8], dst: MacAddr, tag: u8) {
        let h = eth(frame);
        assert_eq!((h.source, h.destination, h.ether_type), (ME.mac.0, dst.0, EtherType::IPV4));
        assert_eq!(&frame[ETH_HEADER_LEN..], &[tag; 20]);
    }

    fn setup(config: ArpConfig) -> (Arp, TxQueue, Counters) {
        (Arp::new(config), TxQueue::new(), Counters::default())
    }

    fn no_failures(_: Vec<u8>) {
        panic!("nothing should fail here");
    }

    #[test]
    fn replies_to_a_request_for_us_and_learns_the_sender() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        let req = request((PEER_MAC, PEER_IP), ME.ip);
        assert_eq!(arp.input(t(1000), ME, &req, &mut tx, &mut c), Ok(()));

        let out = drain(&mut tx);
        assert_eq!(out.len(), 1);
        let (h, p) = parse_arp(&out[0]);
        assert_eq!(h.destination, PEER_MAC.0, "replies are unicast to the asker");
        assert_eq!(p.operation, ArpOperation::REPLY);
        assert_eq!(p.sender_mac, ME.mac.0);
        assert_eq!(p.sender_ipv4_addr(), ME.ip);
        assert_eq!(p.target_mac, PEER_MAC.0);
        assert_eq!(p.target_ipv4_addr(), PEER_IP);
        // The raw bytes too, in case parsing and writing agree on a mistake.
        assert_eq!(&out[0][14..22], &[0, 1, 8, 0, 6, 4, 0, 2]);

        assert_eq!((c.arp.rx_requests, c.arp.tx_replies, c.arp.rx_replies, c.arp.tx_requests), (1, 1, 0, 0));
        assert_eq!(arp.lookup(t(1000), PEER_IP), Some(PEER_MAC));
        assert_eq!(arp.entries().collect::<Vec<_>>(), vec![(PEER_IP, PEER_MAC, t(61_000))]);
    }

    #[test]
    fn ignores_a_request_for_another_address() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        let req = request((PEER_MAC, PEER_IP), OTHER_IP);
        assert_eq!(arp.input(t(0), ME, &req, &mut tx, &mut c), Err(DropReason::ArpNotForUs));
        assert!(tx.is_empty());
        assert_eq!(arp.lookup(t(0), PEER_IP), None, "only learn from packets aimed at us");
        assert_eq!(c.arp, Default::default());
        assert_eq!(c.drops.total(), 0, "the caller counts the drop");
    }

    #[test]
    fn a_packet_for_another_address_still_updates_a_known_sender() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        arp.input(t(0), ME, &request((PEER_MAC, PEER_IP), ME.ip), &mut tx, &mut c).unwrap();
        drain(&mut tx);
        // The peer's NIC changed, and it announces itself (RFC 5227 section 3).
        let new_mac = MacAddr([0x02, 0, 0, 0, 0, 0x22]);
        let announcement = request((new_mac, PEER_IP), PEER_IP);
        assert_eq!(arp.input(t(10_000), ME, &announcement, &mut tx, &mut c), Err(DropReason::ArpNotForUs));
        assert!(tx.is_empty());
        assert_eq!(arp.entries().collect::<Vec<_>>(), vec![(PEER_IP, new_mac, t(70_000))]);
    }

    #[test]
    fn answers_a_probe_without_learning() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        let probe = request((PEER_MAC, Ipv4Addr::UNSPECIFIED), ME.ip);
        assert_eq!(arp.input(t(0), ME, &probe, &mut tx, &mut c), Ok(()));
        let out = drain(&mut tx);
        assert_eq!(out.len(), 1);
        let (h, p) = parse_arp(&out[0]);
        assert_eq!(h.destination, PEER_MAC.0);
        assert_eq!(p.operation, ArpOperation::REPLY);
        assert_eq!((p.target_mac, p.target_ipv4_addr()), (PEER_MAC.0, Ipv4Addr::UNSPECIFIED));
        assert_eq!(arp.entries().count(), 0);
    }

    #[test]
    fn rejects_bogus_senders() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        let cases = [
            (MacAddr::BROADCAST, PEER_IP),
            (MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]), PEER_IP),
            (MacAddr::ZERO, PEER_IP),
            (PEER_MAC, Ipv4Addr::BROADCAST),
            (PEER_MAC, Ipv4Addr::new(224, 0, 0, 1)),
            (PEER_MAC, ME.ip),
            (ME.mac, PEER_IP),
        ];
        for sender in cases {
            let want =
                if sender == (PEER_MAC, ME.ip) { DropReason::ArpAddressConflict } else { DropReason::ArpMalformed };
            assert_eq!(arp.input(t(0), ME, &request(sender, ME.ip), &mut tx, &mut c), Err(want), "{sender:?}");
            assert_eq!(arp.input(t(0), ME, &reply_to_me(sender), &mut tx, &mut c), Err(want), "{sender:?}");
        }
        assert_eq!(arp.address_conflict(), Some(PEER_MAC));
        assert!(tx.is_empty());
        assert_eq!(arp.entries().count(), 0);
        assert_eq!(c.arp, Default::default());
    }

    #[test]
    fn rejects_other_types_and_truncated_packets() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        let good = request((PEER_MAC, PEER_IP), ME.ip);
        let mut v = good;
        v[1] = 6; // IEEE 802 hardware
        assert_eq!(arp.input(t(0), ME, &v, &mut tx, &mut c), Err(DropReason::ArpUnsupported));
        let mut v = good;
        v[2..4].copy_from_slice(&[0x86, 0xdd]); // IPv6
        assert_eq!(arp.input(t(0), ME, &v, &mut tx, &mut c), Err(DropReason::ArpUnsupported));
        let mut v = good;
        v[5] = 3; // 3-byte protocol addresses: still 8 + 12 + 6 = 26 bytes, so it parses
        assert_eq!(arp.input(t(0), ME, &v, &mut tx, &mut c), Err(DropReason::ArpUnsupported));
        let mut v = good;
        v[7] = 3; // RARP request
        assert_eq!(arp.input(t(0), ME, &v, &mut tx, &mut c), Err(DropReason::ArpUnsupported));
        for len in [0, 7, 8, 27] {
            assert_eq!(
                arp.input(t(0), ME, &good[..len], &mut tx, &mut c),
                Err(DropReason::ArpMalformed),
                "{len} bytes"
            );
        }
        // Trailing bytes (Ethernet padding) are fine.
        let mut padded = good.to_vec();
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(arp.input(t(0), ME, &padded, &mut tx, &mut c), Ok(()));
        assert_eq!(drain(&mut tx).len(), 1);
        assert_eq!(arp.lookup(t(0), PEER_IP), Some(PEER_MAC));
    }

    #[test]
    fn queues_then_flushes_in_order_on_reply() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        for tag in 1..=3 {
            let f = ip_frame(&mut tx, tag);
            arp.send(t(0), ME, PEER_IP, f, &mut tx, &mut c);
        }
        let out = drain(&mut tx);
        assert_eq!(out.len(), 1, "one request however many frames wait");
        assert_broadcast_request(&out[0], PEER_IP);
        assert_eq!((c.arp.queued, c.arp.tx_requests), (3, 1));
        assert_eq!(arp.pending().collect::<Vec<_>>(), vec![(PEER_IP, 3)]);
        assert_eq!(arp.poll_at(), Some(t(1000)));

        assert_eq!(arp.input(t(300), ME, &reply_to_me((PEER_MAC, PEER_IP)), &mut tx, &mut c), Ok(()));
        let out = drain(&mut tx);
        assert_eq!(out.len(), 3);
        for (frame, tag) in out.iter().zip(1..=3) {
            assert_ip_frame(frame, PEER_MAC, tag);
        }
        assert_eq!(c.arp.rx_replies, 1);
        assert_eq!(arp.pending().count(), 0);
        assert_eq!(arp.poll_at(), Some(t(60_300)), "only the entry's expiry is left");

        // Resolved: straight out, no request.
        let f = ip_frame(&mut tx, 4);
        arp.send(t(400), ME, PEER_IP, f, &mut tx, &mut c);
        let out = drain(&mut tx);
        assert_eq!(out.len(), 1);
        assert_ip_frame(&out[0], PEER_MAC, 4);
        assert_eq!((c.arp.queued, c.arp.tx_requests, c.drops.total()), (3, 1, 0));
    }

    /// What `ip_frame` makes: 14 bytes of Ethernet header, 20 of body.
    const IP_FRAME: usize = 34;

    #[test]
    fn a_burst_to_a_few_addresses_is_held_by_bytes_as_linux() {
        // 1,000 SYNs from 4 hosts: their SYN,ACKs wait for each host's
        // address, held by bytes per address as Linux's unres_qlen_bytes
        // (212,992), not 16 frames as before: none is lost.
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        let hosts = [PEER_IP, OTHER_IP, Ipv4Addr::new(10, 0, 0, 7), Ipv4Addr::new(10, 0, 0, 8)];
        for i in 0..1000 {
            let f = ip_frame(&mut tx, (i / 4 % 250) as u8);
            arp.send(t(0), ME, hosts[i % 4], f, &mut tx, &mut c);
        }
        assert_eq!(c.drops.get(DropReason::ArpQueueFull), 0);
        assert!(arp.pending().all(|(_, n)| n == 250), "{:?}", arp.pending().collect::<Vec<_>>());
        assert_eq!(arp.held_bytes(), 1000 * FRAME_CAPACITY);
        drain(&mut tx);
        arp.input(t(10), ME, &reply_to_me((PEER_MAC, PEER_IP)), &mut tx, &mut c).unwrap();
        let out = drain(&mut tx);
        assert_eq!(out.len(), 250, "all, in order");
        assert_ip_frame(&out[0], PEER_MAC, 0);
        assert_ip_frame(&out[249], PEER_MAC, 249);
        assert_eq!(arp.held_bytes(), 750 * FRAME_CAPACITY);
        // Past 212,992 bytes for one address, its oldest go.
        let limit = ArpConfig::default().max_queued_bytes_per_addr;
        let (mut arp, mut tx, mut c) = setup(ArpConfig { max_queued_bytes: usize::MAX, ..ArpConfig::default() });
        for i in 0..limit / IP_FRAME + 10 {
            let f = ip_frame(&mut tx, i as u8);
            arp.send(t(0), ME, PEER_IP, f, &mut tx, &mut c);
        }
        assert_eq!(c.drops.get(DropReason::ArpQueueFull), 10);
        assert_eq!(arp.pending().collect::<Vec<_>>(), [(PEER_IP, limit / IP_FRAME)]);
    }

    #[test]
    fn frames_held_for_all_addresses_are_bounded_in_bytes() {
        // Spoofed sources: SYN,ACKs to 64 addresses that never answer. Past
        // max_queued_bytes, the oldest frames of the address asked about
        // first go; every address keeps its latest.
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        let bound = ArpConfig::default().max_queued_bytes;
        for round in 0..100u8 {
            for host in 0..64u8 {
                let f = ip_frame(&mut tx, round);
                arp.send(t(0), ME, Ipv4Addr::new(10, 0, 1, host), f, &mut tx, &mut c);
            }
            assert!(arp.held_bytes() <= bound, "round {round}: {}", arp.held_bytes());
            drain(&mut tx);
        }
        let held: Vec<usize> = arp.pending().map(|(_, n)| n).collect();
        assert_eq!(held.len(), 64);
        assert!(held.iter().all(|&n| n >= 1), "each keeps its latest: {held:?}");
        assert!(held[63] == 100 && held[0] < 100, "the first asked about gave way: {held:?}");
        assert_eq!(arp.held_bytes(), held.iter().sum::<usize>() * FRAME_CAPACITY);
        assert_eq!(c.arp.queued - c.drops.get(DropReason::ArpQueueFull), held.iter().sum::<usize>() as u64);
        // Failing gives back every byte.
        for s in 1..=3 {
            arp.poll(t(s * 1000), ME, &mut tx, &mut c, &mut |_| {});
        }
        assert_eq!((arp.pending().count(), arp.held_bytes()), (0, 0));
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let (mut arp, mut tx, mut c) =
            setup(ArpConfig { max_queued_bytes_per_addr: 2 * IP_FRAME, ..Default::default() });
        for tag in 1..=5 {
            let f = ip_frame(&mut tx, tag);
            arp.send(t(0), ME, PEER_IP, f, &mut tx, &mut c);
        }
        assert_eq!(c.drops.get(DropReason::ArpQueueFull), 3);
        assert_eq!(arp.pending().collect::<Vec<_>>(), vec![(PEER_IP, 2)]);
        drain(&mut tx);
        arp.input(t(10), ME, &reply_to_me((PEER_MAC, PEER_IP)), &mut tx, &mut c).unwrap();
        let out = drain(&mut tx);
        assert_eq!(out.len(), 2);
        assert_ip_frame(&out[0], PEER_MAC, 4);
        assert_ip_frame(&out[1], PEER_MAC, 5);
    }

    #[test]
    fn pending_addresses_are_bounded() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig { max_pending: 2, ..Default::default() });
        for (i, last) in [2u8, 3, 4].into_iter().enumerate() {
            let f = ip_frame(&mut tx, i as u8);
            arp.send(t(0), ME, Ipv4Addr::new(10, 0, 0, last), f, &mut tx, &mut c);
        }
        assert_eq!(c.drops.get(DropReason::ArpQueueFull), 1);
        assert_eq!((c.arp.queued, c.arp.tx_requests), (2, 2));
        let out = drain(&mut tx);
        assert_eq!(out.len(), 2, "no request for the address that did not fit");
        assert_broadcast_request(&out[0], Ipv4Addr::new(10, 0, 0, 2));
        assert_broadcast_request(&out[1], Ipv4Addr::new(10, 0, 0, 3));
        // The third address still gets through once a slot frees up.
        arp.input(t(10), ME, &reply_to_me((PEER_MAC, PEER_IP)), &mut tx, &mut c).unwrap();
        drain(&mut tx);
        let f = ip_frame(&mut tx, 9);
        arp.send(t(20), ME, Ipv4Addr::new(10, 0, 0, 4), f, &mut tx, &mut c);
        assert_broadcast_request(&drain(&mut tx)[0], Ipv4Addr::new(10, 0, 0, 4));
    }

    #[test]
    fn retries_every_interval_then_fails() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        let start = 5_000;
        for tag in [7, 8] {
            let f = ip_frame(&mut tx, tag);
            arp.send(t(start), ME, PEER_IP, f, &mut tx, &mut c);
        }
        let mut failed = Vec::new();
        let mut requests_at = Vec::new();
        // Poll every 100 ms for 5 s and note when requests go out.
        for ms in (start..=start + 5_000).step_by(100) {
            arp.poll(t(ms), ME, &mut tx, &mut c, &mut |f| failed.push((ms, f)));
            for frame in drain(&mut tx) {
                assert_broadcast_request(&frame, PEER_IP);
                requests_at.push(ms);
            }
        }
        // The first request left with the first frame, before the loop's first poll.
        assert_eq!(requests_at, vec![start, start + 1000, start + 2000]);
        assert_eq!(failed.len(), 2);
        assert_eq!(failed[0].0, start + 3000, "fails one interval after the last request");
        assert_eq!(&failed[0].1[ETH_HEADER_LEN..], &[7; 20]);
        assert_eq!(&failed[1].1[ETH_HEADER_LEN..], &[8; 20]);
        assert_eq!(c.arp.resolution_failures, 1);
        assert_eq!(c.arp.tx_requests, 3);
        assert_eq!(c.drops.get(DropReason::ArpResolutionFailed), 2);
        assert_eq!(arp.pending().count(), 0);
        assert_eq!(arp.poll_at(), None);
    }

    #[test]
    fn a_failed_address_is_not_asked_again_for_a_while() {
        // Issue 13, item 2: SYN,ACK retransmissions to spoofed sources each
        // started a new round of broadcasts.
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        let send = |arp: &mut Arp, tx: &mut TxQueue, c: &mut Counters, ms: u64| {
            let f = ip_frame(tx, 1);
            arp.send(t(ms), ME, PEER_IP, f, tx, c);
            arp.poll(t(ms), ME, tx, c, &mut no_failures_dropped);
            drain(tx).len()
        };
        assert_eq!(send(&mut arp, &mut tx, &mut c, 0), 1);
        for ms in [1000, 2000, 3000] {
            arp.poll(t(ms), ME, &mut tx, &mut c, &mut no_failures_dropped);
        }
        drain(&mut tx);
        assert_eq!(c.arp.resolution_failures, 1);
        // Within the hold: dropped at once, no request.
        assert_eq!(send(&mut arp, &mut tx, &mut c, 7_000), 0);
        assert_eq!(send(&mut arp, &mut tx, &mut c, 62_999), 0);
        assert_eq!(c.arp.tx_requests, 3);
        // After it, asked again.
        assert_eq!(send(&mut arp, &mut tx, &mut c, 63_000), 1);
        // A host that answers is learned whatever the hold said.
        let (mut arp, mut tx, mut c) = setup(ArpConfig { max_requests: 1, ..ArpConfig::default() });
        send(&mut arp, &mut tx, &mut c, 0);
        arp.poll(t(1000), ME, &mut tx, &mut c, &mut no_failures_dropped);
        arp.input(t(1500), ME, &reply_to_me((PEER_MAC, PEER_IP)), &mut tx, &mut c).unwrap();
        let f = ip_frame(&mut tx, 9);
        arp.send(t(1600), ME, PEER_IP, f, &mut tx, &mut c);
        assert_ip_frame(&drain(&mut tx)[0], PEER_MAC, 9);
    }

    fn no_failures_dropped(_: Vec<u8>) {}

    #[test]
    fn a_frame_to_a_failed_address_is_handed_back_to_be_reported() {
        // Issue 14, item 4: so that a connect made during the hold fails at
        // once instead of retrying its SYN into the void.
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        let f = ip_frame(&mut tx, 1);
        assert!(arp.send(t(0), ME, PEER_IP, f, &mut tx, &mut c).is_none(), "held, and asked for");
        let mut failed = Vec::new();
        for ms in [1000, 2000, 3000] {
            arp.poll(t(ms), ME, &mut tx, &mut c, &mut |f| failed.push(f));
        }
        assert_eq!(failed.len(), 1);
        drain(&mut tx);
        let f = ip_frame(&mut tx, 2);
        let back = arp.send(t(4000), ME, PEER_IP, f, &mut tx, &mut c).expect("handed back");
        assert_eq!(&back[ETH_HEADER_LEN..], &[2; 20]);
        assert_eq!(c.drops.get(DropReason::ArpFailedLately), 1);
        assert!(drain(&mut tx).is_empty(), "nothing asked");
        // Another address is not concerned.
        let f = ip_frame(&mut tx, 3);
        assert!(arp.send(t(4000), ME, OTHER_IP, f, &mut tx, &mut c).is_none());
    }

    #[test]
    fn poll_at_tracks_the_next_retry() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        assert_eq!(arp.poll_at(), None);
        let f = ip_frame(&mut tx, 1);
        arp.send(t(0), ME, PEER_IP, f, &mut tx, &mut c);
        assert_eq!(arp.poll_at(), Some(t(1000)));
        arp.poll(t(999), ME, &mut tx, &mut c, &mut no_failures);
        assert_eq!(c.arp.tx_requests, 1, "not before the interval");
        // Late polls retry one interval after the late retry, not in a burst.
        arp.poll(t(1500), ME, &mut tx, &mut c, &mut no_failures);
        assert_eq!(c.arp.tx_requests, 2);
        assert_eq!(arp.poll_at(), Some(t(2500)));
    }

    #[test]
    fn entries_expire() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        arp.input(t(0), ME, &request((PEER_MAC, PEER_IP), ME.ip), &mut tx, &mut c).unwrap();
        assert_eq!(arp.poll_at(), Some(t(60_000)));
        arp.poll(t(59_999), ME, &mut tx, &mut c, &mut no_failures);
        assert_eq!(arp.lookup(t(59_999), PEER_IP), Some(PEER_MAC));
        assert_eq!(arp.lookup(t(60_000), PEER_IP), None, "lookups do not wait for poll");
        arp.poll(t(60_000), ME, &mut tx, &mut c, &mut no_failures);
        assert_eq!(arp.entries().count(), 0);
        assert_eq!(c.arp.expired, 1);
        assert_eq!(arp.poll_at(), None);
    }

    #[test]
    fn sending_to_an_expired_entry_asks_again() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        arp.input(t(0), ME, &request((PEER_MAC, PEER_IP), ME.ip), &mut tx, &mut c).unwrap();
        drain(&mut tx);
        // No poll in between: send itself notices.
        let f = ip_frame(&mut tx, 1);
        arp.send(t(61_000), ME, PEER_IP, f, &mut tx, &mut c);
        let out = drain(&mut tx);
        assert_eq!(out.len(), 1);
        assert_broadcast_request(&out[0], PEER_IP);
        assert_eq!((c.arp.expired, c.arp.queued), (1, 1));
    }

    #[test]
    fn an_entry_in_use_is_refreshed_before_it_expires() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        arp.input(t(0), ME, &request((PEER_MAC, PEER_IP), ME.ip), &mut tx, &mut c).unwrap();
        drain(&mut tx);
        fn send(arp: &mut Arp, tx: &mut TxQueue, c: &mut Counters, ms: u64) -> Vec<Vec<u8>> {
            let f = ip_frame(tx, 1);
            arp.send(t(ms), ME, PEER_IP, f, tx, c);
            drain(tx)
        }
        // Well within its lifetime: just the frame.
        assert_eq!(send(&mut arp, &mut tx, &mut c, 30_000).len(), 1);
        // In the last 5 s: the frame still goes out on the old mapping, and a
        // unicast request asks the peer to confirm it.
        let out = send(&mut arp, &mut tx, &mut c, 56_000);
        assert_eq!(out.len(), 2);
        assert_ip_frame(&out[0], PEER_MAC, 1);
        let (h, p) = parse_arp(&out[1]);
        assert_eq!(h.destination, PEER_MAC.0, "a refresh is unicast to the known MAC");
        assert_eq!(p.operation, ArpOperation::REQUEST);
        assert_eq!(p.target_ipv4_addr(), PEER_IP);
        // At most one request per retry interval.
        assert_eq!(send(&mut arp, &mut tx, &mut c, 56_500).len(), 1);
        assert_eq!(send(&mut arp, &mut tx, &mut c, 57_000).len(), 2);
        assert_eq!(c.arp.tx_requests, 2);
        // The answer renews the entry.
        arp.input(t(57_100), ME, &reply_to_me((PEER_MAC, PEER_IP)), &mut tx, &mut c).unwrap();
        assert_eq!(arp.lookup(t(100_000), PEER_IP), Some(PEER_MAC));
        assert_eq!(send(&mut arp, &mut tx, &mut c, 100_000).len(), 1, "fresh again");
        arp.poll(t(100_000), ME, &mut tx, &mut c, &mut no_failures);
        assert_eq!((c.arp.expired, c.arp.queued), (0, 0));
    }

    #[test]
    fn a_full_cache_evicts_the_least_recently_renewed() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig { max_entries: 2, ..Default::default() });
        let host = |n: u8| (MacAddr([0x02, 0, 0, 0, 1, n]), Ipv4Addr::new(10, 0, 1, n));
        arp.input(t(1000), ME, &request(host(1), ME.ip), &mut tx, &mut c).unwrap();
        arp.input(t(2000), ME, &request(host(2), ME.ip), &mut tx, &mut c).unwrap();
        // Host 1 speaks again, so host 2 is now the stalest.
        arp.input(t(3000), ME, &request(host(1), ME.ip), &mut tx, &mut c).unwrap();
        arp.input(t(4000), ME, &request(host(3), ME.ip), &mut tx, &mut c).unwrap();
        let mut entries: Vec<_> = arp.entries().collect();
        entries.sort();
        assert_eq!(entries, vec![(host(1).1, host(1).0, t(63_000)), (host(3).1, host(3).0, t(64_000))]);
        assert_eq!(c.arp.expired, 0, "an eviction is not an expiry");
    }

    #[test]
    fn a_probe_answered_by_another_host_reveals_a_conflict() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        arp.probe(ME, &mut tx, &mut c);
        let frame = tx.pop().unwrap();
        let p = ArpPacketSlice::from_slice(&frame[ETH_HEADER_LEN..]).unwrap().to_packet().try_eth_ipv4().unwrap();
        assert_eq!(p.operation, ArpOperation::REQUEST);
        assert_eq!((p.sender_mac, p.sender_ipv4, p.target_ipv4), (ME.mac.0, [0, 0, 0, 0], ME.ip.octets()));
        assert_eq!(&frame[..6], &[0xff; 6]);
        assert_eq!(arp.address_conflict(), None);
        // The host holding our address answers the probe as Linux does: to our MAC, target IP 0.0.0.0.
        let reply = ArpEthIpv4Packet {
            operation: ArpOperation::REPLY,
            sender_mac: PEER_MAC.0,
            sender_ipv4: ME.ip.octets(),
            target_mac: ME.mac.0,
            target_ipv4: [0, 0, 0, 0],
        };
        assert_eq!(arp.input(t(0), ME, &reply.to_bytes(), &mut tx, &mut c), Err(DropReason::ArpAddressConflict));
        assert_eq!(arp.address_conflict(), Some(PEER_MAC));
    }

    #[test]
    fn announce_is_a_gratuitous_broadcast_request() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        arp.announce(t(0), ME, &mut tx, &mut c);
        let out = drain(&mut tx);
        assert_eq!(out.len(), 1);
        let (h, p) = parse_arp(&out[0]);
        assert_eq!(h.destination, [0xff; 6]);
        assert_eq!(p.operation, ArpOperation::REQUEST);
        assert_eq!((p.sender_mac, p.sender_ipv4_addr()), (ME.mac.0, ME.ip));
        assert_eq!((p.target_mac, p.target_ipv4_addr()), ([0; 6], ME.ip));
        assert_eq!(c.arp.tx_requests, 1);
        assert_eq!(arp.poll_at(), None, "an announcement waits for nothing");
    }

    #[test]
    fn a_pending_host_is_resolved_by_any_packet_from_it() {
        let (mut arp, mut tx, mut c) = setup(ArpConfig::default());
        let f = ip_frame(&mut tx, 1);
        arp.send(t(0), ME, PEER_IP, f, &mut tx, &mut c);
        drain(&mut tx);
        // Its own announcement is not for us, but it answers our question.
        let announcement = request((PEER_MAC, PEER_IP), PEER_IP);
        assert_eq!(arp.input(t(10), ME, &announcement, &mut tx, &mut c), Err(DropReason::ArpNotForUs));
        let out = drain(&mut tx);
        assert_eq!(out.len(), 1);
        assert_ip_frame(&out[0], PEER_MAC, 1);
        assert_eq!(arp.lookup(t(10), PEER_IP), Some(PEER_MAC));
        assert_eq!(arp.poll_at(), Some(t(60_010)), "no retry left");
    }

    /// Random and mutated packets, interleaved with traffic and timers, never
    /// panic, keep every bound, only ever emit well-formed frames, and account
    /// for every frame handed to `send`.
    #[test]
    fn garbage_never_panics_and_every_frame_is_accounted_for() {
        use rand::rngs::ChaCha8Rng;
        use rand::{RngExt, SeedableRng};

        let config =
            ArpConfig { max_entries: 8, max_pending: 4, max_queued_bytes_per_addr: 2 * IP_FRAME, ..Default::default() };
        let (mut arp, mut tx, mut c) = setup(config);
        let mut rng = ChaCha8Rng::seed_from_u64(826);
        let seeds = [
            request((PEER_MAC, PEER_IP), ME.ip),
            reply_to_me((PEER_MAC, PEER_IP)),
            request((PEER_MAC, Ipv4Addr::UNSPECIFIED), ME.ip),
            request((PEER_MAC, PEER_IP), OTHER_IP),
        ];
        let mut outcomes: HashMap<Result<(), DropReason>, u32> = HashMap::new();
        let (mut now, mut sent, mut delivered, mut failed) = (0u64, 0u64, 0u64, 0u64);
        for i in 0..20_000u32 {
            let bytes: Vec<u8> = if i % 4 == 0 {
                let len = rng.random_range(0..64);
                (0..len).map(|_| rng.random::<u8>()).collect()
            } else {
                let mut v = seeds[rng.random_range(0..seeds.len())].to_vec();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..v.len());
                    v[at] = rng.random();
                }
                if rng.random_range(0..8) == 0 {
                    v.truncate(rng.random_range(0..v.len()));
                }
                v
            };
            *outcomes.entry(arp.input(t(now), ME, &bytes, &mut tx, &mut c)).or_default() += 1;
            if i % 8 == 0 {
                let f = ip_frame(&mut tx, 0xab);
                arp.send(t(now), ME, Ipv4Addr::new(10, 0, 0, rng.random_range(2..7)), f, &mut tx, &mut c);
                sent += 1;
            }
            if i % 64 == 0 {
                now += rng.random_range(0..3000);
                arp.poll(t(now), ME, &mut tx, &mut c, &mut |_| failed += 1);
            }
            for frame in drain(&mut tx) {
                if eth(&frame).ether_type == EtherType::ARP {
                    parse_arp(&frame);
                } else {
                    assert_eq!(&frame[ETH_HEADER_LEN..], &[0xab; 20]);
                    delivered += 1;
                }
            }
            assert!(arp.entries().count() <= 8);
            assert!(arp.pending().count() <= 4);
            assert!(arp.pending().all(|(_, n)| n <= 2));
        }
        for outcome in
            [Ok(()), Err(DropReason::ArpMalformed), Err(DropReason::ArpUnsupported), Err(DropReason::ArpNotForUs)]
        {
            assert!(outcomes.get(&outcome).copied().unwrap_or(0) > 10, "{outcome:?} never happened: {outcomes:?}");
        }
        let held: u64 = arp.pending().map(|(_, n)| n as u64).sum();
        let dropped = c.drops.get(DropReason::ArpQueueFull)
            + c.drops.get(DropReason::ArpResolutionFailed)
            + c.drops.get(DropReason::ArpFailedLately);
        assert_eq!(c.drops.get(DropReason::ArpResolutionFailed), failed);
        assert!(delivered > 0 && failed > 0, "delivered {delivered}, failed {failed}");
        assert_eq!(sent, delivered + dropped + held);
    }

    /// What `poll_at` must say, found the slow way: every cache entry and every
    /// pending retry looked at. Also checks the expiry index matches the map.
    fn brute_poll_at(arp: &Arp) -> Option<Instant> {
        let index: Vec<_> = arp.cache.by_expiry.iter().copied().collect();
        let mut from_map: Vec<_> = arp.cache.map.iter().map(|(ip, e)| (e.expires, *ip)).collect();
        from_map.sort();
        assert_eq!(index, from_map, "the expiry index follows the map");
        let expiries = arp.cache.map.values().map(|e| e.expires);
        expiries.chain(arp.pending.iter().map(|p| p.next_retry)).min()
    }

    /// Random traffic in virtual time (learning, sending to known, unknown and
    /// failed addresses, suspicion, replies, late and early polls, a small cache
    /// that evicts): after every step `poll_at` (O(1), from the kept index)
    /// equals a scan of the whole state, and what `poll` removes is what a scan
    /// would remove.
    #[test]
    fn poll_at_matches_a_scan_under_random_traffic() {
        use rand::rngs::ChaCha8Rng;
        use rand::{RngExt, SeedableRng};
        for seed in 0..20u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let config = ArpConfig { max_entries: 24, max_pending: 6, ..ArpConfig::default() };
            let (mut arp, mut tx, mut c) = setup(config);
            let mut now = 0u64;
            for step in 0..3000 {
                let ip = Ipv4Addr::new(10, 0, 1, rng.random_range(2..60u8));
                let mac = MacAddr([0x02, 0, 0, 0, 1, ip.octets()[3]]);
                match rng.random_range(0..8u32) {
                    0 => {
                        let _ = arp.input(t(now), ME, &request((mac, ip), ME.ip), &mut tx, &mut c);
                    }
                    1 => {
                        let _ = arp.input(t(now), ME, &reply_to_me((mac, ip)), &mut tx, &mut c);
                    }
                    2 | 3 => {
                        let f = ip_frame(&mut tx, 1);
                        if let Some(f) = arp.send(t(now), ME, ip, f, &mut tx, &mut c) {
                            tx.recycle(f);
                        }
                    }
                    4 => arp.suspect(t(now), ip),
                    _ => {
                        now += rng.random_range(0..4000u64);
                        let expected = arp.cache.map.values().filter(|e| e.expires > t(now)).count();
                        arp.poll(t(now), ME, &mut tx, &mut c, &mut no_failures_dropped);
                        assert_eq!(arp.cache.len(), expected, "seed {seed} step {step}");
                    }
                }
                drain(&mut tx);
                assert_eq!(arp.poll_at(), brute_poll_at(&arp), "seed {seed} step {step}");
                // A driver in virtual time runs exactly at the deadline too.
                if rng.random_range(0..4u32) == 0 {
                    if let Some(d) = arp.poll_at() {
                        now = now.max(d.as_millis());
                        arp.poll(t(now), ME, &mut tx, &mut c, &mut no_failures_dropped);
                        assert!(arp.poll_at().is_none_or(|n| n > t(now)), "nothing left due");
                    }
                }
            }
            assert!(c.arp.expired > 0 && c.arp.resolution_failures > 0, "seed {seed} covered both");
        }
    }
}
