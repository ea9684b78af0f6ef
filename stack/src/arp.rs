//! ARP (RFC 826): answering for our address, and resolving next hops with a
//! bounded cache, a bounded queue per unresolved address, retries and failure.
//!
//! STUB: the interface is fixed; the ARP helper replaces the bodies.

use crate::buffer::TxQueue;
use crate::counters::{Counters, DropReason};
use crate::ethernet::MacAddr;
use crate::time::{Duration, Instant};
use std::net::Ipv4Addr;

/// ARP limits and timers. Defaults are documented per field.
#[derive(Clone, Debug)]
pub struct ArpConfig {
    /// How long a learned entry is used before it must be refreshed (default 60 s).
    pub entry_lifetime: Duration,
    /// Most entries in the cache (default 256); the oldest is evicted for a new one.
    pub max_entries: usize,
    /// Unresolved addresses being asked about at once (default 64).
    pub max_pending: usize,
    /// Packets held per unresolved address (default 16); more are dropped and counted.
    pub max_queued_per_addr: usize,
    /// Time between requests for an unresolved address (default 1 s).
    pub retry_interval: Duration,
    /// Requests sent before resolution fails (default 3).
    pub max_requests: u32,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig {
            entry_lifetime: Duration::from_secs(60),
            max_entries: 256,
            max_pending: 64,
            max_queued_per_addr: 16,
            retry_interval: Duration::from_secs(1),
            max_requests: 3,
        }
    }
}

/// Our identity on the link, as ARP needs it.
#[derive(Copy, Clone, Debug)]
pub struct LinkAddrs {
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
}

/// The ARP cache and the packets waiting on it.
#[derive(Debug)]
pub struct Arp {
    config: ArpConfig,
}

impl Arp {
    pub fn new(config: ArpConfig) -> Arp {
        Arp { config }
    }

    /// Handles an inbound ARP packet (`payload` is the frame after the Ethernet
    /// header). Answers requests for our address and learns the sender's mapping
    /// (RFC 826 "Packet Reception"). On `Err` the caller counts the drop.
    pub fn input(&mut self, now: Instant, me: LinkAddrs, payload: &[u8], tx: &mut TxQueue, counters: &mut Counters) -> Result<(), DropReason> {
        let _ = (now, me, payload, tx, counters, &self.config);
        Err(DropReason::ArpUnsupported)
    }

    /// Sends `frame` (an IPv4 packet behind 14 reserved bytes) to `next_hop` on the
    /// link: fills in the Ethernet header and queues it on `tx` if the MAC is known;
    /// otherwise holds it and asks. Drops are counted here.
    pub fn send(&mut self, now: Instant, me: LinkAddrs, next_hop: Ipv4Addr, frame: Vec<u8>, tx: &mut TxQueue, counters: &mut Counters) {
        let _ = (now, me, next_hop, counters);
        tx.recycle(frame);
    }

    /// Retries requests, expires entries, and fails addresses that never answered:
    /// each packet held for them is counted as dropped and handed to `failed`
    /// (so the stack can report "host unreachable" upward), then recycled by the caller.
    pub fn poll(&mut self, now: Instant, me: LinkAddrs, tx: &mut TxQueue, counters: &mut Counters, failed: &mut dyn FnMut(Vec<u8>)) {
        let _ = (now, me, tx, counters, failed);
    }

    /// When [`Arp::poll`] next has something to do.
    pub fn poll_at(&self) -> Option<Instant> {
        None
    }

    /// Sends a gratuitous ARP announcing our mapping (at start-up).
    pub fn announce(&mut self, now: Instant, me: LinkAddrs, tx: &mut TxQueue, counters: &mut Counters) {
        let _ = (now, me, tx, counters);
    }

    /// The MAC of `ip` if the cache holds a valid entry.
    pub fn lookup(&self, now: Instant, ip: Ipv4Addr) -> Option<MacAddr> {
        let _ = (now, ip);
        None
    }
}
