//! IPv4 fragment reassembly (RFC 791 section 3.2, RFC 815, RFC 1122 section 3.3.2) with hard bounds.
//!
//! Each datagram in reassembly is an etherparse [`IpDefragBuf`]: a byte buffer plus
//! the list of ranges received so far, kept merged, so that "complete" is one range
//! from 0 to the end the last fragment announced. That is RFC 815's hole list seen
//! from the other side. Around it this module keeps what etherparse leaves to its
//! user: the key, the deadline, the first fragment's header, a fragment count, and a
//! bounded pool with every limit of [`ReassemblyConfig`] enforced before memory is
//! committed.
//!
//! Policies, each explained where it is applied:
//! - A fragment that cannot be part of a correct datagram (empty, a non-last fragment
//!   not a multiple of 8 bytes, past `max_datagram_len`, a second and different end,
//!   data past the end, bytes that contradict bytes already received) is dropped and
//!   its whole datagram discarded: the datagram can no longer be put together in a
//!   way we could trust.
//! - Overlap: a fragment may overlap what has arrived only if the overlapping bytes
//!   are equal; then it is a (partial) duplicate and harmless. Differing bytes discard
//!   the datagram.
//! - Over `max_datagrams` or `max_bytes`: the oldest datagrams are evicted to make
//!   room (as Linux's evictor did, down from ipfrag_high_thresh), each counted in
//!   [`Reassembler::take_evicted`]; a newcomer is never refused for room, so junk
//!   first fragments cannot block every later datagram until they time out (issue
//!   13, item 7). Only a datagram that alone exceeds `max_bytes` is dropped.
//! - Over `max_fragments` for one datagram: the fragment and its datagram are dropped.
//! - Past the deadline: a late fragment is dropped; `poll` discards the datagram.

use crate::counters::DropReason;
use crate::time::{Duration, Instant};
use etherparse::defrag::{IpDefragBuf, IpFragRange};
use etherparse::{IpFragOffset, Ipv4Header, Ipv4HeaderSlice};
use std::collections::btree_map::{BTreeMap, Entry};
use std::collections::BTreeSet;

/// Limits of reassembly. Defaults are documented per field.
#[derive(Clone, Debug)]
pub struct ReassemblyConfig {
    /// Largest reassembled payload in bytes (default 65515: 65535 less a
    /// minimal header; Linux's limit is the same 16-bit total length).
    pub max_datagram_len: usize,
    /// Datagrams in reassembly at once (default 4096); beyond it the oldest is
    /// evicted. It bounds the bookkeeping that `max_bytes` does not count.
    /// Linux bounds by memory only.
    pub max_datagrams: usize,
    /// Payload bytes held across all datagrams in reassembly (default 4 MiB, Linux's
    /// ipfrag_high_thresh); beyond it the oldest datagrams are evicted. A
    /// datagram's buffer reaches its furthest byte received, holes included, and
    /// that length is what counts.
    pub max_bytes: usize,
    /// Time a datagram may take to arrive whole, from its first fragment
    /// (default 30 s, Linux's ipfrag_time).
    pub timeout: Duration,
    /// Fragments accepted into one datagram (default 64). Bounds the work and the
    /// range list per datagram against floods of tiny fragments. A 65515-byte datagram
    /// over a 1500-byte MTU is 45 fragments; paths with a 576-byte MTU need up to 119.
    /// Linux has no such count (its ipfrag_max_dist, 64, bounds how far fragments
    /// of one datagram may be apart in arrival order from one source).
    pub max_fragments: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            max_datagram_len: 65515,
            max_datagrams: 4096,
            max_bytes: 4 << 20,
            timeout: Duration::from_secs(30),
            max_fragments: 64,
        }
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

/// Spare buffers kept for reuse. A few suffice: they only need to cover the
/// datagrams completing between two calls that hand buffers back. Spares are not
/// part of `max_bytes` (nothing is held in them); with the cap below they add at
/// most 8 x 64 KiB. Likewise a buffer's capacity may exceed the length accounted,
/// by `Vec`'s growth, up to twice.
const SPARE_BUFFERS: usize = 8;
/// Payload buffers larger than any reassembly needs are not kept: they would only
/// hold memory that no limit accounts for.
const MAX_SPARE_PAYLOAD: usize = 1 << 16;

/// RFC 791 section 3.2: "the identification field is used together with the
/// source and destination address, and the protocol fields, to identify datagram
/// fragments for reassembly". Ordered (not hashed) so that iteration, and with it
/// the order of `poll`'s callbacks, is deterministic.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    src: [u8; 4],
    dst: [u8; 4],
    protocol: u8,
    ident: u16,
}

impl Key {
    fn of(header: &Ipv4HeaderSlice<'_>) -> Key {
        Key {
            src: header.source(),
            dst: header.destination(),
            protocol: header.protocol().0,
            ident: header.identification(),
        }
    }
}

/// What the fragment at offset 0 tells us: the header the whole datagram takes
/// (RFC 791 section 3.2: the first fragment's header, options included, becomes
/// the datagram's) and what an ICMP Time Exceeded quotes.
#[derive(Debug)]
struct First {
    header: Ipv4Header,
    leading: [u8; 8],
    leading_len: usize,
}

#[derive(Debug)]
struct Datagram {
    buf: IpDefragBuf,
    /// RFC 1122 section 3.3.2: the timer runs from the first fragment to arrive,
    /// whichever it is, and is not extended by later ones.
    deadline: Instant,
    first: Option<First>,
    /// Fragments added to `buf` (exact duplicates, which add nothing, are not counted).
    fragments: usize,
}

impl First {
    fn of(header: &Ipv4HeaderSlice<'_>, payload: &[u8]) -> First {
        let mut leading = [0; 8];
        let leading_len = payload.len().min(8);
        leading[..leading_len].copy_from_slice(&payload[..leading_len]);
        First { header: header.to_header(), leading, leading_len }
    }
}

impl Datagram {
    /// The end (RFC 791 section 3.2: the fragment with MF clear ends the
    /// datagram). `data().len()` is the furthest byte received, or the end once
    /// known. etherparse checks the first two conditions too, but not the third
    /// (a last fragment arriving after data beyond it); checking all of them
    /// here lets every inconsistency take the same path.
    fn check_end(&self, more: bool, end: usize) -> Result<(), Reject> {
        let furthest = self.buf.data().len();
        let end_conflict = match self.buf.end() {
            Some(known) => (!more && end != usize::from(known)) || end > usize::from(known),
            None => !more && furthest > end,
        };
        if end_conflict {
            return Err(Reject::Datagram);
        }
        Ok(())
    }

    /// The whole header must fit 16 bits of total length, and an options-bearing
    /// first fragment leaves less room for payload. Known once offset 0 arrives.
    fn check_total_length(&self, header: &Ipv4HeaderSlice<'_>, start: usize, end: usize) -> Result<(), Reject> {
        let header_len = if start == 0 {
            Some(usize::from(header.ihl()) * 4)
        } else {
            self.first.as_ref().map(|f| f.header.header_len())
        };
        if let Some(header_len) = header_len {
            if self.buf.data().len().max(end) + header_len > usize::from(u16::MAX) {
                return Err(Reject::Datagram);
            }
        }
        Ok(())
    }

    /// Overlap. etherparse would let later bytes overwrite earlier ones, making
    /// the result depend on arrival order; that ambiguity is what overlapping-
    /// fragment attacks on filters exploit (RFC 1858 section 4, RFC 3128), and why
    /// RFC 5722 discards overlapping IPv6 fragments (Linux, since 4.19, IPv4 too).
    /// We accept overlap only where the bytes agree, which keeps duplicates
    /// (a fragment sent twice) harmless and makes any accepted result the same
    /// whatever the order. Only the received ranges are read: etherparse extends
    /// its buffer over holes without writing them.
    ///
    /// Returns whether the fragment is a duplicate, adding nothing.
    fn check_overlap(&self, start: usize, end: usize, more: bool, payload: &[u8]) -> Result<bool, Reject> {
        let mut covered = false;
        for r in self.buf.sections() {
            let (lo, hi) = (usize::from(r.start).max(start), usize::from(r.end).min(end));
            if lo < hi {
                if self.buf.data()[lo..hi] != payload[lo - start..hi - start] {
                    return Err(Reject::Datagram);
                }
                covered |= lo == start && hi == end;
            }
        }
        Ok(covered && (more || self.buf.end().is_some()))
    }
}

/// Why a fragment was refused, and how much goes with it.
enum Reject {
    /// Only this fragment: its datagram (if any) is left as it was.
    Fragment,
    /// This fragment and its datagram: the datagram cannot be completed correctly.
    Datagram,
}

#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    datagrams: BTreeMap<Key, Datagram>,
    /// The datagrams by deadline (their age: every timeout is the same), for
    /// evicting the oldest without a scan.
    by_age: BTreeSet<(Instant, Key)>,
    /// Datagrams evicted to make room, not yet taken by the caller to count.
    evicted: u64,
    /// Sum of the buffer lengths of `datagrams`: what `max_bytes` limits.
    held: usize,
    spare_payloads: Vec<Vec<u8>>,
    spare_ranges: Vec<Vec<IpFragRange>>,
    /// `poll`'s list of the datagrams due, kept for reuse.
    due: Vec<(Key, Instant)>,
}

impl Reassembler {
    pub fn new(config: ReassemblyConfig) -> Reassembler {
        Reassembler {
            config,
            datagrams: BTreeMap::new(),
            by_age: BTreeSet::new(),
            evicted: 0,
            held: 0,
            spare_payloads: Vec::new(),
            spare_ranges: Vec::new(),
            due: Vec::new(),
        }
    }

    /// Takes a fragment of a validated datagram. `Ok(None)`: held for the rest.
    /// `Ok(Some)`: the datagram is whole. `Err`: the fragment is dropped (the caller
    /// counts it); where it makes the datagram unrecoverable, that datagram is discarded.
    ///
    /// A fragment that only repeats bytes already received returns `Ok(None)`: it is
    /// harmless and its datagram is still held. Note that a duplicate arriving after
    /// its datagram completed starts a new reassembly, which times out (as in Linux).
    pub fn push(
        &mut self,
        now: Instant,
        header: &Ipv4HeaderSlice<'_>,
        payload: &[u8],
    ) -> Result<Option<Reassembled>, DropReason> {
        let key = Key::of(header);
        match self.insert(now, key, header, payload) {
            Ok(whole) => Ok(whole),
            Err(Reject::Fragment) => Err(DropReason::IpFragmentDropped),
            Err(Reject::Datagram) => {
                self.discard(&key);
                Err(DropReason::IpFragmentDropped)
            }
        }
    }

    /// Adds a fragment to its datagram, in named steps: checks on the fragment
    /// alone, finding (or starting) its datagram, checks against what has arrived
    /// (end, total length, overlap), the limits, and then the bytes themselves.
    fn insert(
        &mut self,
        now: Instant,
        key: Key,
        header: &Ipv4HeaderSlice<'_>,
        payload: &[u8],
    ) -> Result<Option<Reassembled>, Reject> {
        let more = header.more_fragments();
        let offset = header.fragments_offset();
        let start = usize::from(offset.byte_offset());
        let end = start + payload.len();
        self.check_fragment(more, payload, end)?;
        self.find_or_start(now, key, header)?;
        let d = self.datagrams.get_mut(&key).expect("found or started above");
        let furthest = d.buf.data().len();
        d.check_end(more, end)?;
        d.check_total_length(header, start, end)?;
        if d.check_overlap(start, end, more, payload)? {
            // A duplicate: every byte and the end it implies are already here.
            return Ok(None);
        }

        if d.fragments >= self.config.max_fragments {
            return Err(Reject::Datagram);
        }
        // etherparse grows the buffer to the furthest byte received, holes
        // included: that length is what the fragment costs, and what we account.
        let grown = furthest.max(end);
        if grown > self.config.max_bytes {
            // Alone over the limit: it cannot complete.
            return Err(Reject::Datagram);
        }
        while self.held - furthest + grown > self.config.max_bytes && self.evict_oldest(Some(key)) {}
        let d = self.datagrams.get_mut(&key).expect("never evicts the one growing");
        d.buf.add(offset, more, payload).map_err(|_| Reject::Datagram)?;
        debug_assert_eq!(d.buf.data().len(), grown);
        self.held = self.held - furthest + grown;
        d.fragments += 1;
        if start == 0 && d.first.is_none() {
            d.first = Some(First::of(header, payload));
        }
        if !d.buf.is_complete() {
            return Ok(None);
        }
        self.complete(&key).map(Some)
    }

    /// Checks on the fragment alone. An empty fragment fills nothing (Linux
    /// discards its queue too); RFC 791 section 3.2 makes every fragment but the
    /// last carry a multiple of 8 octets, since the next one's offset counts in
    /// 8-octet units; and nothing may reach past the largest datagram we build
    /// (this is also where "ping of death" offsets end).
    fn check_fragment(&self, more: bool, payload: &[u8], end: usize) -> Result<(), Reject> {
        if payload.is_empty() || (more && !payload.len().is_multiple_of(8)) || end > self.max_payload() {
            return Err(Reject::Datagram);
        }
        Ok(())
    }

    /// Makes sure the fragment's datagram is in the pool: it is there and not
    /// timed out, or there is room to start it.
    fn find_or_start(&mut self, now: Instant, key: Key, header: &Ipv4HeaderSlice<'_>) -> Result<(), Reject> {
        let count = self.datagrams.len();
        match self.datagrams.entry(key) {
            Entry::Occupied(e) => {
                if now >= e.get().deadline {
                    // Timed out: `poll` discards it and reports it (with its ICMP
                    // Time Exceeded). A late fragment must not revive it meanwhile.
                    return Err(Reject::Fragment);
                }
            }
            Entry::Vacant(_) if count >= self.config.max_datagrams.max(1) => {
                // Full: the oldest goes (counted, see `take_evicted`), the newcomer stays.
                self.evict_oldest(None);
                return self.find_or_start(now, key, header);
            }
            Entry::Vacant(v) => {
                let deadline = now + self.config.timeout;
                self.by_age.insert((deadline, key));
                let payload_buf = self.spare_payloads.pop().unwrap_or_default();
                let ranges = self.spare_ranges.pop().unwrap_or_default();
                v.insert(Datagram {
                    buf: IpDefragBuf::new(header.protocol(), payload_buf, ranges),
                    deadline,
                    first: None,
                    fragments: 0,
                });
            }
        }
        Ok(())
    }

    /// Evicts the oldest datagram but `keep`; returns whether there was one.
    fn evict_oldest(&mut self, keep: Option<Key>) -> bool {
        let Some(&(_, oldest)) = self.by_age.iter().find(|(_, k)| Some(*k) != keep) else { return false };
        self.discard(&oldest);
        self.evicted += 1;
        true
    }

    /// Datagrams evicted since the last call, for the caller to count as drops.
    pub fn take_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.evicted)
    }

    /// Takes a complete datagram out of the pool and builds its header.
    fn complete(&mut self, key: &Key) -> Result<Reassembled, Reject> {
        let d = self.datagrams.remove(key).ok_or(Reject::Fragment)?;
        self.by_age.remove(&(d.deadline, *key));
        self.held -= d.buf.data().len();
        let (payload, ranges) = d.buf.take_bufs();
        keep_spare(&mut self.spare_ranges, ranges, usize::MAX);
        // Complete means one range starting at 0, so the offset-0 fragment arrived.
        let Some(first) = d.first else {
            keep_spare(&mut self.spare_payloads, payload, MAX_SPARE_PAYLOAD);
            return Err(Reject::Fragment);
        };
        let mut header = first.header;
        header.more_fragments = false;
        header.fragment_offset = IpFragOffset::ZERO;
        if header.set_payload_len(payload.len()).is_err() {
            // Unreachable: the length was checked against this header in `insert`.
            keep_spare(&mut self.spare_payloads, payload, MAX_SPARE_PAYLOAD);
            return Err(Reject::Fragment);
        }
        header.header_checksum = header.calc_header_checksum();
        Ok(Reassembled { header, payload })
    }

    /// Drops a datagram and keeps its buffers for reuse.
    fn discard(&mut self, key: &Key) {
        if let Some(d) = self.datagrams.remove(key) {
            self.by_age.remove(&(d.deadline, *key));
            self.held -= d.buf.data().len();
            let (payload, ranges) = d.buf.take_bufs();
            keep_spare(&mut self.spare_payloads, payload, MAX_SPARE_PAYLOAD);
            keep_spare(&mut self.spare_ranges, ranges, usize::MAX);
        }
    }

    /// The largest payload a datagram may reach: the configured limit, and never
    /// more than 16 bits of total length leave after a minimal header.
    fn max_payload(&self) -> usize {
        self.config.max_datagram_len.min(super::MAX_PAYLOAD)
    }

    /// Discards datagrams past their timeout, counting one `IpReassemblyTimeout` drop
    /// each (returned as the count) and calling `expired` for those whose first fragment was here.
    /// They are found at the front of `by_age` (O(log n) each, nothing when none
    /// is due) and reported in key order, as a walk of the table would.
    pub fn poll(&mut self, now: Instant, expired: &mut dyn FnMut(Expired)) -> u64 {
        let mut due = std::mem::take(&mut self.due);
        while let Some(&(deadline, key)) = self.by_age.first().filter(|(t, _)| *t <= now) {
            self.by_age.pop_first();
            due.push((key, deadline));
        }
        due.sort_unstable();
        let timed_out = due.len() as u64;
        for &(key, _) in &due {
            let Some(d) = self.datagrams.remove(&key) else { continue };
            // RFC 1122 section 3.3.2: Time Exceeded only "if fragment zero has been
            // received", since only it carries what the ICMP message must quote.
            if let Some(first) = &d.first {
                expired(Expired {
                    header: first.header.clone(),
                    leading: first.leading,
                    leading_len: first.leading_len,
                });
            }
            self.held -= d.buf.data().len();
            let (payload, ranges) = d.buf.take_bufs();
            keep_spare(&mut self.spare_payloads, payload, MAX_SPARE_PAYLOAD);
            keep_spare(&mut self.spare_ranges, ranges, usize::MAX);
        }
        due.clear();
        self.due = due;
        timed_out
    }

    /// When [`Reassembler::poll`] next has something to do.
    pub fn poll_at(&self) -> Option<Instant> {
        self.by_age.first().map(|(t, _)| *t)
    }

    /// Gives a payload buffer back for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        keep_spare(&mut self.spare_payloads, buf, MAX_SPARE_PAYLOAD);
    }

    /// Datagrams in reassembly.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    /// Whether no datagram is in reassembly.
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Payload bytes held.
    pub fn held_bytes(&self) -> usize {
        self.held
    }
}

/// Keeps `buf` for reuse if there is room and it is not oversized; otherwise frees it.
fn keep_spare<T>(spares: &mut Vec<Vec<T>>, mut buf: Vec<T>, max_capacity: usize) {
    if spares.len() < SPARE_BUFFERS && buf.capacity() > 0 && buf.capacity() <= max_capacity {
        buf.clear();
        spares.push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, Ipv4Options};

    const SRC: [u8; 4] = [10, 0, 0, 1];
    const DST: [u8; 4] = [10, 0, 0, 2];
    const T0: Instant = Instant::from_secs(1);

    /// A fragment as it arrives: header (with `options`) then payload.
    fn fragment_with(ident: u16, offset: usize, more: bool, payload: &[u8], options: &[u8]) -> Vec<u8> {
        assert_eq!(offset % 8, 0, "offsets count in 8-byte units");
        let mut h = Ipv4Header::new(0, 64, IpNumber::UDP, SRC, DST).unwrap();
        h.options = Ipv4Options::try_from(options).unwrap();
        h.set_payload_len(payload.len()).unwrap();
        h.identification = ident;
        h.more_fragments = more;
        h.fragment_offset = IpFragOffset::try_new((offset / 8) as u16).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut frame = h.to_bytes().to_vec();
        frame.extend_from_slice(payload);
        frame
    }

    fn fragment(ident: u16, offset: usize, more: bool, payload: &[u8]) -> Vec<u8> {
        fragment_with(ident, offset, more, payload, &[])
    }

    /// Bytes that differ by datagram and by position, so a misplaced byte shows.
    fn pattern(ident: u16, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31) ^ (i >> 8) as u8 ^ ident as u8).collect()
    }

    /// `data` cut into fragments of `per` bytes (a multiple of 8), as a sender would.
    fn split(ident: u16, data: &[u8], per: usize) -> Vec<Vec<u8>> {
        data.chunks(per).enumerate().map(|(i, c)| fragment(ident, i * per, (i + 1) * per < data.len(), c)).collect()
    }

    fn push(r: &mut Reassembler, now: Instant, frame: &[u8]) -> Result<Option<Reassembled>, DropReason> {
        let h = Ipv4HeaderSlice::from_slice(frame).unwrap();
        let result = r.push(now, &h, &frame[h.slice().len()..]);
        check_invariants(r);
        result
    }

    fn held(r: &mut Reassembler, now: Instant, frame: &[u8]) {
        match push(r, now, frame) {
            Ok(None) => {}
            other => panic!("expected the fragment held, got {other:?}"),
        }
    }

    fn whole(r: &mut Reassembler, now: Instant, frame: &[u8]) -> Reassembled {
        match push(r, now, frame) {
            Ok(Some(w)) => w,
            other => panic!("expected the datagram whole, got {other:?}"),
        }
    }

    fn dropped(r: &mut Reassembler, now: Instant, frame: &[u8]) {
        assert_eq!(push(r, now, frame).unwrap_err(), DropReason::IpFragmentDropped);
    }

    fn check_invariants(r: &Reassembler) {
        let sum: usize = r.datagrams.values().map(|d| d.buf.data().len()).sum();
        assert_eq!(r.held_bytes(), sum);
        assert!(r.held_bytes() <= r.config.max_bytes);
        assert!(r.len() <= r.config.max_datagrams);
        for d in r.datagrams.values() {
            assert!(d.fragments >= 1 && d.fragments <= r.config.max_fragments);
            assert!(d.buf.sections().len() <= d.fragments);
            assert!(d.buf.data().len() <= r.max_payload());
        }
        assert!(r.spare_payloads.len() <= SPARE_BUFFERS && r.spare_ranges.len() <= SPARE_BUFFERS);
    }

    /// The reassembled datagram is `data` under a header that says so.
    fn assert_whole(w: &Reassembled, ident: u16, data: &[u8]) {
        assert_eq!(w.payload.len(), data.len());
        assert!(w.payload == data, "payload differs");
        let h = &w.header;
        assert_eq!(h.identification, ident);
        assert!(!h.more_fragments);
        assert_eq!(h.fragment_offset, IpFragOffset::ZERO);
        assert_eq!(usize::from(h.total_len), h.header_len() + data.len());
        assert_eq!((h.source, h.destination, h.protocol, h.time_to_live), (SRC, DST, IpNumber::UDP, 64));
        // Checked independently of etherparse's checksum routine.
        assert_eq!(crate::checksum::of(&h.to_bytes()), 0);
    }

    fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut all = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first);
                all.push(p);
            }
        }
        all
    }

    #[test]
    fn in_order_fragments_reassemble() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = pattern(1, 3000);
        let frags = split(1, &data, 1480);
        assert_eq!(frags.len(), 3);
        held(&mut r, T0, &frags[0]);
        assert_eq!((r.len(), r.held_bytes()), (1, 1480));
        assert_eq!(r.poll_at(), Some(T0 + Duration::from_secs(30)));
        held(&mut r, T0, &frags[1]);
        assert_eq!((r.len(), r.held_bytes()), (1, 2960));
        let w = whole(&mut r, T0, &frags[2]);
        assert_whole(&w, 1, &data);
        assert_eq!((r.len(), r.held_bytes(), r.poll_at()), (0, 0, None));
    }

    #[test]
    fn every_order_of_four_fragments_reassembles() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let orders = permutations(&[0, 1, 2, 3]);
        assert_eq!(orders.len(), 24);
        for (n, order) in orders.iter().enumerate() {
            let ident = n as u16;
            // 3 x 32 bytes and a last fragment of 4: the end is not aligned.
            let data = pattern(ident, 100);
            let frags = split(ident, &data, 32);
            let mut furthest = 0;
            for &i in &order[..3] {
                held(&mut r, T0, &frags[i]);
                furthest = furthest.max(if i == 3 { 100 } else { 32 * (i + 1) });
                assert_eq!(r.held_bytes(), furthest, "order {order:?}");
            }
            let w = whole(&mut r, T0, &frags[order[3]]);
            assert_whole(&w, ident, &data);
            assert_eq!(r.len(), 0);
            r.recycle(w.payload);
        }
    }

    #[test]
    fn duplicates_are_harmless() {
        let mut r = Reassembler::new(ReassemblyConfig { max_fragments: 4, ..Default::default() });
        let data = pattern(7, 100);
        let frags = split(7, &data, 32);
        held(&mut r, T0, &frags[0]);
        held(&mut r, T0, &frags[0]);
        held(&mut r, T0, &frags[3]);
        held(&mut r, T0, &frags[3]); // the end, announced twice alike
        held(&mut r, T0, &frags[1]);
        // Bytes 16..48 straddle two fragments already here: a duplicate too.
        held(&mut r, T0, &fragment(7, 16, true, &data[16..48]));
        held(&mut r, T0, &frags[0]);
        // Duplicates add nothing, so they do not count against max_fragments.
        assert_eq!(r.datagrams.values().next().unwrap().fragments, 3);
        assert_eq!(r.held_bytes(), 100);
        let w = whole(&mut r, T0, &frags[2]);
        assert_whole(&w, 7, &data);

        // A duplicate that arrives after completion starts a reassembly of its own,
        // which can only time out.
        held(&mut r, T0, &frags[0]);
        assert_eq!(r.len(), 1);
        let mut expired = 0;
        assert_eq!(r.poll(T0 + Duration::from_secs(30), &mut |_| expired += 1), 1);
        assert_eq!((expired, r.len()), (1, 0));
    }

    #[test]
    fn overlap_with_equal_bytes_is_accepted() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = pattern(3, 80);
        held(&mut r, T0, &fragment(3, 0, true, &data[0..32]));
        held(&mut r, T0, &fragment(3, 16, true, &data[16..64]));
        assert_eq!(r.held_bytes(), 64);
        // A last fragment reaching back over data already here.
        let w = whole(&mut r, T0, &fragment(3, 56, false, &data[56..80]));
        assert_whole(&w, 3, &data);
    }

    #[test]
    fn overlap_with_different_bytes_discards_the_datagram() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = pattern(4, 80);
        let frags = split(4, &data, 32);

        // Partial overlap whose shared bytes (16..32) differ in one byte.
        held(&mut r, T0, &frags[0]);
        held(&mut r, T0, &frags[2]);
        let mut bad = data[16..48].to_vec();
        bad[15] ^= 0x80;
        dropped(&mut r, T0, &fragment(4, 16, true, &bad));
        assert_eq!((r.len(), r.held_bytes()), (0, 0));

        // The same range again with other bytes: not a duplicate.
        held(&mut r, T0, &frags[0]);
        let mut bad = data[0..32].to_vec();
        bad[0] ^= 1;
        dropped(&mut r, T0, &fragment(4, 0, true, &bad));
        assert_eq!(r.len(), 0);

        // What was discarded does not taint a fresh start.
        for f in &frags[..2] {
            held(&mut r, T0, f);
        }
        assert_whole(&whole(&mut r, T0, &frags[2]), 4, &data);
    }

    #[test]
    fn timeout_discards_and_reports_only_with_the_first_fragment() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let a = pattern(1, 64);
        let b = pattern(2, 64);
        held(&mut r, T0, &fragment(1, 0, true, &a[..32]));
        held(&mut r, T0 + Duration::from_secs(5), &fragment(2, 32, false, &b[32..]));
        // A later fragment does not push the deadline back.
        held(&mut r, T0 + Duration::from_secs(20), &fragment(1, 40, false, &a[40..]));
        assert_eq!(r.poll_at(), Some(T0 + Duration::from_secs(30)));

        let mut reports = Vec::new();
        assert_eq!(r.poll(T0 + Duration::from_micros(29_999_999), &mut |e| reports.push(e)), 0);
        assert!(reports.is_empty());
        assert_eq!(r.len(), 2);

        // Due but not yet polled: a late fragment does not revive it.
        dropped(&mut r, T0 + Duration::from_secs(30), &fragment(1, 32, true, &a[32..40]));
        assert_eq!(r.len(), 2);

        assert_eq!(r.poll(T0 + Duration::from_secs(30), &mut |e| reports.push(e)), 1);
        assert_eq!(reports.len(), 1);
        let e = &reports[0];
        assert_eq!(e.header.identification, 1);
        assert!(e.header.more_fragments, "the first fragment's header as it came");
        assert_eq!(e.header.total_len, 20 + 32);
        assert_eq!((&e.leading[..], e.leading_len), (&a[..8], 8));
        assert_eq!((r.len(), r.held_bytes()), (1, 64));
        assert_eq!(r.poll_at(), Some(T0 + Duration::from_secs(35)));

        // Datagram 2 never had its first fragment: discarded and counted, not reported.
        assert_eq!(r.poll(T0 + Duration::from_secs(35), &mut |e| reports.push(e)), 1);
        assert_eq!(reports.len(), 1);
        assert_eq!((r.len(), r.held_bytes(), r.poll_at()), (0, 0, None));
        assert_eq!(r.poll(T0 + Duration::from_secs(100), &mut |e| reports.push(e)), 0);
    }

    #[test]
    fn first_fragment_options_are_kept() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = pattern(9, 50);
        // Router Alert (RFC 2113): copied into every fragment, as its copy bit says.
        let ra = [0x94, 0x04, 0x00, 0x00];
        held(&mut r, T0, &fragment_with(9, 24, false, &data[24..], &ra));
        let w = whole(&mut r, T0, &fragment_with(9, 0, true, &data[..24], &ra));
        assert_whole(&w, 9, &data);
        assert_eq!(w.header.options.as_slice(), &ra);
        assert_eq!(w.header.header_len(), 24);
        assert_eq!(w.header.total_len, 24 + 50);
    }

    #[test]
    fn datagram_size_limit() {
        let mut r = Reassembler::new(ReassemblyConfig { max_datagram_len: 1000, ..Default::default() });
        let data = pattern(1, 1008);
        held(&mut r, T0, &fragment(1, 0, true, &data[..496]));
        // Reaching past the limit drops the fragment and the datagram it belongs to.
        dropped(&mut r, T0, &fragment(1, 496, false, &data[496..1008]));
        assert_eq!((r.len(), r.held_bytes()), (0, 0));
        // Exactly the limit is fine.
        held(&mut r, T0, &fragment(1, 0, true, &data[..496]));
        assert_whole(&whole(&mut r, T0, &fragment(1, 496, false, &data[496..1000])), 1, &data[..1000]);

        // With the default limit, the largest offset plus 8 bytes is 65536: the
        // classic oversized "ping of death" is refused before anything is held.
        let mut r = Reassembler::new(ReassemblyConfig::default());
        held(&mut r, T0, &fragment(2, 0, true, &[0; 8]));
        dropped(&mut r, T0, &fragment(2, 65528, false, &[0; 8]));
        assert_eq!((r.len(), r.held_bytes()), (0, 0));
    }

    #[test]
    fn largest_datagram_reassembles() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = pattern(5, 65515);
        let frags = split(5, &data, 1480);
        assert_eq!(frags.len(), 45);
        for f in frags[1..].iter().rev() {
            held(&mut r, T0, f);
        }
        assert_eq!(r.held_bytes(), 65515);
        let w = whole(&mut r, T0, &frags[0]);
        assert_whole(&w, 5, &data);
        assert_eq!(w.header.total_len, 65535);

        // The same payload behind a first fragment with options no longer fits 16
        // bits of total length: refused when the first fragment shows its header.
        for f in &frags[1..] {
            held(&mut r, T0, f);
        }
        dropped(&mut r, T0, &fragment_with(5, 0, true, &data[..1480], &[1, 1, 1, 1]));
        assert_eq!((r.len(), r.held_bytes()), (0, 0));
    }

    #[test]
    fn datagram_count_limit_evicts_the_oldest() {
        // Issue 13, item 7: newcomers were refused, so that 64 junk first
        // fragments blocked every fragmented datagram for 30 s.
        let mut r = Reassembler::new(ReassemblyConfig { max_datagrams: 2, ..Default::default() });
        let data = pattern(0, 16);
        held(&mut r, T0, &fragment(1, 0, true, &data[..8]));
        held(&mut r, T0 + Duration::from_millis(1), &fragment(2, 0, true, &data[..8]));
        // A third datagram evicts the oldest (1), counted.
        held(&mut r, T0 + Duration::from_millis(2), &fragment(3, 0, true, &data[..8]));
        assert_eq!((r.len(), r.held_bytes(), r.take_evicted()), (2, 16, 1));
        assert_eq!(r.take_evicted(), 0, "taken once");
        // 1's rest starts it anew (and evicts 2); 3 still completes.
        held(&mut r, T0, &fragment(1, 8, false, &data[8..]));
        whole(&mut r, T0, &fragment(3, 8, false, &data[8..]));
        assert_eq!((r.len(), r.take_evicted()), (1, 1));
        check_invariants(&r);
    }

    #[test]
    fn held_bytes_limit_evicts_the_oldest() {
        let mut r = Reassembler::new(ReassemblyConfig { max_bytes: 1000, ..Default::default() });
        let data = pattern(0, 1000);
        held(&mut r, T0, &fragment(1, 0, true, &data[..600]));
        // 600 + 408 > 1000: the new datagram evicts the old one.
        held(&mut r, T0, &fragment(2, 0, true, &data[..408]));
        assert_eq!((r.len(), r.held_bytes(), r.take_evicted()), (1, 408, 1));
        held(&mut r, T0, &fragment(3, 0, true, &data[..400]));
        assert_eq!((r.held_bytes(), r.take_evicted()), (808, 0));
        // Growing 3 past the limit evicts 2 (older), not 3.
        held(&mut r, T0, &fragment(3, 400, true, &data[..400]));
        assert_eq!((r.len(), r.held_bytes(), r.take_evicted()), (1, 800, 1));
        // A datagram that alone exceeds the limit is dropped: a hole costs what it
        // reserves, 8 bytes at offset 1000 take 1008.
        dropped(&mut r, T0, &fragment(4, 1000, true, &data[..8]));
        assert_eq!((r.len(), r.held_bytes(), r.take_evicted()), (1, 800, 0));
        check_invariants(&r);
    }

    #[test]
    fn fragments_per_datagram_limit() {
        let mut r = Reassembler::new(ReassemblyConfig { max_fragments: 4, ..Default::default() });
        let data = pattern(1, 40);
        let frags = split(1, &data, 8);
        assert_eq!(frags.len(), 5);
        for f in &frags[..4] {
            held(&mut r, T0, f);
        }
        dropped(&mut r, T0, &frags[4]);
        assert_eq!((r.len(), r.held_bytes()), (0, 0));
        // Four fragments are allowed.
        let frags = split(2, &data[..32], 8);
        assert_eq!(frags.len(), 4);
        assert_whole(&whole_of(&mut r, &frags), 2, &data[..32]);
    }

    #[test]
    fn conflicting_ends_discard_the_datagram() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = pattern(1, 64);
        // Two last fragments with different ends.
        held(&mut r, T0, &fragment(1, 32, false, &data[32..48]));
        dropped(&mut r, T0, &fragment(1, 48, false, &data[48..64]));
        assert_eq!((r.len(), r.held_bytes()), (0, 0));
        // A non-last fragment past the known end.
        held(&mut r, T0, &fragment(1, 32, false, &data[32..48]));
        dropped(&mut r, T0, &fragment(1, 48, true, &data[48..56]));
        assert_eq!(r.len(), 0);
        // A last fragment short of data already received.
        held(&mut r, T0, &fragment(1, 0, true, &data[..64]));
        dropped(&mut r, T0, &fragment(1, 16, false, &data[16..32]));
        assert_eq!((r.len(), r.held_bytes()), (0, 0));
    }

    #[test]
    fn unaligned_and_empty_fragments_discard_the_datagram() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = pattern(1, 64);
        dropped(&mut r, T0, &fragment(1, 0, true, &data[..12]));
        assert_eq!(r.len(), 0);
        held(&mut r, T0, &fragment(1, 16, true, &data[16..32]));
        dropped(&mut r, T0, &fragment(1, 0, true, &data[..12]));
        assert_eq!((r.len(), r.held_bytes()), (0, 0));
        held(&mut r, T0, &fragment(1, 16, true, &data[16..32]));
        dropped(&mut r, T0, &fragment(1, 32, false, &[]));
        assert_eq!((r.len(), r.held_bytes()), (0, 0));
        // A last fragment need not be aligned.
        held(&mut r, T0, &fragment(1, 0, true, &data[..8]));
        assert_whole(&whole(&mut r, T0, &fragment(1, 8, false, &data[8..13])), 1, &data[..13]);
    }

    #[test]
    fn payload_buffers_are_reused_and_the_spares_bounded() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = pattern(1, 3000);
        let mut frags = split(1, &data, 1480);
        let w = whole_of(&mut r, &frags);
        let (ptr, cap) = (w.payload.as_ptr(), w.payload.capacity());
        assert!(cap >= 3000);
        r.recycle(w.payload);
        frags = split(2, &data[..2000], 1480);
        let w = whole_of(&mut r, &frags);
        assert_whole(&w, 2, &data[..2000]);
        assert_eq!(w.payload.as_ptr(), ptr, "the recycled buffer is reused, not a new one");
        for _ in 0..20 {
            r.recycle(Vec::with_capacity(100));
        }
        assert_eq!(r.spare_payloads.len(), SPARE_BUFFERS);
        r.spare_payloads.clear();
        r.recycle(Vec::with_capacity(MAX_SPARE_PAYLOAD + 1));
        r.recycle(Vec::new());
        assert!(r.spare_payloads.is_empty());
    }

    /// Thousands of random fragments, some of datagrams that can complete and some
    /// garbage (any offset, length, MF, bytes), at random times with random polls:
    /// nothing panics, the bounds hold after every step, and every datagram that
    /// completes is exactly the one that was sent.
    #[test]
    fn random_fragments_keep_every_bound() {
        use rand::rngs::ChaCha8Rng;
        use rand::{RngExt, SeedableRng};

        let config = ReassemblyConfig {
            max_datagram_len: 65515,
            // Room for every ident: evictions come from the byte limit, and the
            // oldest datagrams still live long enough to time out.
            max_datagrams: 12,
            max_bytes: 128 * 1024,
            timeout: Duration::from_secs(1),
            max_fragments: 32,
        };
        let mut r = Reassembler::new(config.clone());
        let mut rng = ChaCha8Rng::seed_from_u64(0x0f4a_6d3e);
        // Idents 0..8: consistent fragments of one datagram each. Idents 8..12: garbage.
        let sent: Vec<Vec<u8>> = (0..8u16).map(|k| pattern(k, rng.random_range(1..=6000))).collect();
        let mut now = T0;
        let (mut completed, mut refused, mut timed_out, mut reported, mut peak) = (0, 0, 0, 0, 0);
        let mut evicted = 0;
        for _ in 0..20_000 {
            now += Duration::from_micros(rng.random_range(0..5_000));
            let ident: u16 = rng.random_range(0..12);
            let frame = match sent.get(usize::from(ident)) {
                Some(data) => {
                    // The first fragment is what completes a datagram and what a
                    // timeout reports, so it comes up more often than its share.
                    let start =
                        if rng.random_range(0..4) == 0 { 0 } else { rng.random_range(0..data.len().div_ceil(8)) * 8 };
                    let end = (start + rng.random_range(1..=128usize) * 8).min(data.len());
                    fragment(ident, start, end < data.len(), &data[start..end])
                }
                None => {
                    let mut payload = vec![0; rng.random_range(0..1500)];
                    rng.fill(&mut payload[..]);
                    // Mostly near the start, where garbage can sit among real
                    // datagrams; sometimes anywhere up to the largest offset.
                    let offset = match rng.random_range(0..4) {
                        0 => 0,
                        1 => rng.random_range(0..8192usize) * 8,
                        _ => rng.random_range(0..512usize) * 8,
                    };
                    fragment(ident, offset, rng.random(), &payload)
                }
            };
            match push(&mut r, now, &frame) {
                Ok(Some(w)) => {
                    match sent.get(usize::from(ident)) {
                        Some(data) => {
                            assert_whole(&w, ident, data);
                            completed += 1;
                        }
                        None => assert_eq!(usize::from(w.header.total_len), w.header.header_len() + w.payload.len()),
                    }
                    r.recycle(w.payload);
                }
                Ok(None) => {}
                Err(reason) => {
                    assert_eq!(reason, DropReason::IpFragmentDropped);
                    refused += 1;
                }
            }
            peak = peak.max(r.held_bytes());
            evicted += r.take_evicted();
            if rng.random_range(0..10) == 0 {
                timed_out += r.poll(now, &mut |e| {
                    assert_eq!(e.header.fragment_offset, IpFragOffset::ZERO);
                    assert!(e.leading_len <= 8);
                    if let Some(data) = sent.get(usize::from(e.header.identification)) {
                        assert_eq!(e.leading[..e.leading_len], data[..e.leading_len]);
                        assert_eq!(e.leading_len, data.len().min(8));
                    }
                    reported += 1;
                });
                check_invariants(&r);
                assert!(r.poll_at().is_none_or(|at| at > now));
            }
        }
        println!("completed {completed}, refused {refused}, evicted {evicted}, timed out {timed_out}, reported {reported}, peak {peak}");
        // The run exercised what it claims to: completions, refusals, timeouts and
        // the byte limit.
        assert!(completed >= 400, "completed {completed}");
        assert!(refused >= 3000, "refused {refused}");
        assert!(evicted >= 50, "evicted {evicted}");
        assert!(timed_out >= 50 && reported >= 50, "timed out {timed_out}, reported {reported}");
        assert!(peak > config.max_bytes * 3 / 4, "peak {peak}");
    }

    fn whole_of(r: &mut Reassembler, frags: &[Vec<u8>]) -> Reassembled {
        for f in &frags[..frags.len() - 1] {
            held(r, T0, f);
        }
        whole(r, T0, &frags[frags.len() - 1])
    }

    /// Random fragments at random times, polls early, late and at the deadline:
    /// `poll_at` (the kept index) equals a scan of the table, and `poll`
    /// removes exactly what a scan finds timed out, reporting those with their
    /// first fragment in key order (as the table walk it replaced did).
    #[test]
    fn poll_and_poll_at_match_a_scan_under_random_fragments() {
        use rand::rngs::ChaCha8Rng;
        use rand::{RngExt, SeedableRng};
        for seed in 0..10u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut r = Reassembler::new(ReassemblyConfig { max_datagrams: 40, ..ReassemblyConfig::default() });
            let mut now = 0u64;
            for step in 0..4000 {
                if rng.random_range(0..5u32) > 0 {
                    let ident = rng.random_range(0..80u16);
                    let data = pattern(ident, 64);
                    let i = rng.random_range(0..4usize);
                    let _ =
                        push(&mut r, Instant::from_millis(now), &fragment(ident, i * 16, i < 3, &data[i * 16..][..16]));
                } else {
                    now += rng.random_range(0..8000u64);
                    let at = Instant::from_millis(now);
                    let mut expect: Vec<(Key, bool)> = r
                        .datagrams
                        .iter()
                        .filter(|(_, d)| d.deadline <= at)
                        .map(|(k, d)| (*k, d.first.is_some()))
                        .collect();
                    expect.sort();
                    let mut reported = Vec::new();
                    let n = r.poll(at, &mut |e| reported.push(e.header.identification));
                    assert_eq!(n as usize, expect.len(), "seed {seed} step {step}");
                    let firsts: Vec<u16> = expect.iter().filter(|e| e.1).map(|e| e.0.ident).collect();
                    assert_eq!(reported, firsts);
                    check_invariants(&r);
                }
                let scan = r.datagrams.values().map(|d| d.deadline).min();
                assert_eq!(r.poll_at(), scan, "seed {seed} step {step}");
                assert_eq!(r.by_age.len(), r.datagrams.len());
            }
        }
    }
}
