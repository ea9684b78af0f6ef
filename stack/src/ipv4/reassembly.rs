//! IPv4 fragment reassembly (RFC 791 section 3.2, RFC 815) with hard bounds.
//!
//! STUB: the interface is fixed; the reassembly helper replaces the bodies.

use crate::counters::DropReason;
use crate::time::{Duration, Instant};
use etherparse::{Ipv4Header, Ipv4HeaderSlice};

/// Limits of reassembly. Defaults are documented per field.
#[derive(Clone, Debug)]
pub struct ReassemblyConfig {
    /// Largest reassembled payload in bytes (default 65515: 65535 less a minimal header).
    pub max_datagram_len: usize,
    /// Datagrams in reassembly at once (default 64).
    pub max_datagrams: usize,
    /// Payload bytes held across all datagrams in reassembly (default 1 MiB).
    pub max_bytes: usize,
    /// Time a datagram may take to arrive whole, from its first fragment (default 30 s, as Linux).
    pub timeout: Duration,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig { max_datagram_len: 65515, max_datagrams: 64, max_bytes: 1 << 20, timeout: Duration::from_secs(30) }
    }
}

/// A datagram put back together.
#[derive(Debug)]
pub struct Reassembled {
    /// The first fragment's header, with the fragment fields cleared and the lengths
    /// and checksum those of the whole datagram.
    pub header: Ipv4Header,
    /// The whole payload. Hand it back with [`Reassembler::recycle`] when done.
    pub payload: Vec<u8>,
}

/// A datagram whose reassembly timed out after its first fragment had arrived:
/// RFC 792 / RFC 1122 section 3.3.2 ask for a Time Exceeded (code 1) to its source.
#[derive(Debug)]
pub struct Expired {
    pub header: Ipv4Header,
    /// The first 8 bytes (or fewer) of the first fragment's payload, for the ICMP quote.
    pub leading: [u8; 8],
    pub leading_len: usize,
}

#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
}

impl Reassembler {
    pub fn new(config: ReassemblyConfig) -> Reassembler {
        Reassembler { config }
    }

    /// Takes a fragment of a validated datagram. `Ok(None)`: held for the rest.
    /// `Ok(Some)`: the datagram is whole. `Err`: the fragment is dropped (the caller
    /// counts it); where it makes the datagram unrecoverable, that datagram is discarded.
    pub fn push(&mut self, now: Instant, header: &Ipv4HeaderSlice<'_>, payload: &[u8]) -> Result<Option<Reassembled>, DropReason> {
        let _ = (now, header, payload, &self.config);
        Err(DropReason::IpFragmentDropped)
    }

    /// Discards datagrams past their timeout, counting one `IpReassemblyTimeout` drop
    /// each (returned as the count) and calling `expired` for those whose first fragment was here.
    pub fn poll(&mut self, now: Instant, expired: &mut dyn FnMut(Expired)) -> u64 {
        let _ = (now, expired);
        0
    }

    /// When [`Reassembler::poll`] next has something to do.
    pub fn poll_at(&self) -> Option<Instant> {
        None
    }

    /// Gives a payload buffer back for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        drop(buf);
    }

    /// Datagrams in reassembly.
    pub fn len(&self) -> usize {
        0
    }

    /// Payload bytes held.
    pub fn held_bytes(&self) -> usize {
        0
    }
}
