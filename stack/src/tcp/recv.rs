//! The receive side's data: a bounded ring buffer (SO_RCVBUF) that holds both the
//! in-order bytes waiting for the user and, behind them, out-of-order bytes
//! waiting for the gap before them to fill (RFC 9293 section 3.10.7.4, seventh
//! step: "segments ... held for later processing"). Out-of-order data can only
//! lie inside the window we offered, which never exceeds the free space, so it
//! always fits; the list of out-of-order ranges is bounded too. Duplicates simply
//! overwrite the same bytes.
//!
//! A segment of more than one MSS (a GSO segment from an offloading link) that
//! arrives in order may be kept in the frame's own buffer
//! instead of being copied into the ring ([`RecvBuffer::claim`], then
//! [`RecvBuffer::fill`] once the frame's owner has handed the buffer over:
//! `Stack::receive_owned`), the way Linux queues the skb itself: its bytes are
//! read in their turn between the ring's bytes that came before and after
//! them. Only while nothing is held out of order, and only a buffer at least
//! half full (`buffer::RxClaim`), so that kept buffers cost at most twice the
//! window.
//!
//! Also here: the window to advertise, with receiver silly window syndrome
//! avoidance (RFC 9293 section 3.8.6.2.2, MUST-39).

use super::seq::Seq;
use crate::buffer::KeptToken;
use std::collections::VecDeque;

/// The storage a receive buffer gets first ([`FIRST_STORAGE`] or its capacity,
/// if smaller): enough for a request or two. It doubles whenever more must be
/// held at once, up to the capacity, and stays at that size (a few
/// allocations in a connection's life, none per segment), so that a
/// connection that has received a little holds a little while idle, not its
/// whole SO_RCVBUF (issue 13, item 3: 64 KiB per idle connection before).
pub const FIRST_STORAGE: usize = 4096;

pub struct RecvBuffer {
    /// The ring: allocated on first use, grown as needed up to `cap` bytes.
    buf: Vec<u8>,
    cap: usize,
    /// Index of the first readable byte.
    head: usize,
    /// In-order bytes the user has not read.
    len: usize,
    /// Out-of-order ranges [start, end), as offsets from the end of the in-order
    /// bytes (that is, from RCV.NXT); sorted, disjoint, not adjacent.
    ooo: Vec<(u32, u32)>,
    max_ranges: usize,
    /// Frames' buffers kept instead of copied, oldest first, all read
    /// before the ring. Those read to the end wait at the front for
    /// [`RecvBuffer::take_spent`]; the last may be claimed and not yet filled.
    kept: VecDeque<Kept>,
    /// Unread bytes in `kept`.
    kept_len: usize,
    /// The ring's bytes that come before a kept buffer (the sum of their
    /// `ring_before`); the rest of the ring's come after the last one.
    ring_ahead: usize,
}

/// A frame's buffer kept for the data in it: `len` unread bytes from `at`,
/// which come after `ring_before` of the ring's bytes (those that arrived
/// before it). An empty `buf` with `len > 0`: claimed, its buffer yet to come.
#[derive(Debug)]
struct Kept {
    buf: Vec<u8>,
    at: usize,
    len: usize,
    ring_before: usize,
    /// Counts the buffer among those kept stack-wide while it is here.
    _token: Option<KeptToken>,
}

/// Sizes only: the bytes would flood any debug print of the stack.
impl core::fmt::Debug for RecvBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecvBuffer")
            .field("cap", &self.cap)
            .field("readable", &self.readable())
            .field("ooo", &self.ooo)
            .finish()
    }
}

impl RecvBuffer {
    pub fn new(cap: usize, max_ranges: usize) -> RecvBuffer {
        RecvBuffer {
            buf: Vec::new(),
            cap,
            head: 0,
            len: 0,
            ooo: Vec::new(),
            max_ranges,
            kept: VecDeque::new(),
            kept_len: 0,
            ring_ahead: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Changes the size; only while nothing is buffered (before data flows).
    pub fn set_capacity(&mut self, cap: usize) -> bool {
        if !self.release() {
            return false;
        }
        self.cap = cap;
        true
    }

    /// Raises the size (never lowers it), whatever is buffered: the ring
    /// grows into it as data comes (receive-buffer autotuning, `conn/rcvbuf.rs`).
    pub fn grow_capacity(&mut self, cap: usize) {
        self.cap = self.cap.max(cap);
    }

    /// Gives the storage back while nothing is buffered (a connection in
    /// TIME-WAIT needs none); the capacity, and so the window, stay.
    pub fn release(&mut self) -> bool {
        if self.readable() > 0 || !self.ooo.is_empty() {
            return false;
        }
        self.kept = VecDeque::new();
        self.buf = Vec::new();
        self.head = 0;
        true
    }

    /// Whether nothing is buffered and the ring is larger than
    /// [`FIRST_STORAGE`] (what [`RecvBuffer::trim`] would give back).
    pub fn has_spare_storage(&self) -> bool {
        let ring = self.len == 0 && self.ooo.is_empty() && self.buf.len() > FIRST_STORAGE.min(self.cap);
        ring || (self.kept.is_empty() && self.kept.capacity() > 0)
    }

    /// Shrinks the ring back to [`FIRST_STORAGE`] while nothing is buffered
    /// (issue 13: memory goes back, not kept at its peak); it grows again as
    /// data comes. The connection calls it once the buffer has been empty for
    /// a while, never per segment, so a steady transfer does not allocate again
    /// and again. The capacity, and so the window, stay.
    pub fn trim(&mut self) {
        if self.kept.is_empty() {
            self.kept = VecDeque::new();
        }
        if self.len == 0 && self.ooo.is_empty() && self.buf.len() > FIRST_STORAGE.min(self.cap) {
            self.buf.truncate(FIRST_STORAGE.min(self.cap));
            self.buf.shrink_to_fit();
            self.ooo.shrink_to(0);
            self.head = 0;
        }
    }

    /// Bytes of storage held (the ring and the out-of-order list).
    pub fn heap_bytes(&self) -> usize {
        let kept: usize = self.kept.iter().map(|k| k.buf.capacity()).sum();
        let lists = self.ooo.capacity() * core::mem::size_of::<(u32, u32)>()
            + self.kept.capacity() * core::mem::size_of::<Kept>();
        self.buf.capacity() + kept + lists
    }

    /// In-order bytes waiting for the user.
    pub fn readable(&self) -> usize {
        self.kept_len + self.len
    }

    /// Room for in-order data from RCV.NXT on.
    pub fn free(&self) -> usize {
        self.cap - self.readable()
    }

    /// Whether `len` in-order bytes arriving now could be kept in their
    /// frame's buffer: nothing is held out of order (data filling a gap goes
    /// where the gap is, in the ring) and they fit.
    pub fn can_claim(&self, len: usize) -> bool {
        self.ooo.is_empty() && !self.awaits_frame() && len > 0 && len <= self.free()
    }

    /// Takes `len` in-order bytes whose frame's buffer comes with
    /// [`RecvBuffer::fill`] before anything is read (the caller checked
    /// [`RecvBuffer::can_claim`]). Returns by how much RCV.NXT advances, as
    /// [`RecvBuffer::write`].
    pub fn claim(&mut self, len: usize) -> usize {
        debug_assert!(self.can_claim(len));
        let ring_before = self.len - self.ring_ahead;
        self.kept.push_back(Kept { buf: Vec::new(), at: 0, len, ring_before, _token: None });
        (self.kept_len, self.ring_ahead) = (self.kept_len + len, self.len);
        len
    }

    /// Whether a claimed frame's buffer is still to come.
    pub fn awaits_frame(&self) -> bool {
        self.kept.back().is_some_and(|k| k.buf.is_empty() && k.len > 0)
    }

    /// The claimed bytes' buffer: they start at `at` in `frame`.
    pub fn fill(&mut self, frame: Vec<u8>, at: usize, token: KeptToken) {
        debug_assert!(self.awaits_frame());
        if let Some(k) = self.kept.back_mut() {
            debug_assert!(at + k.len <= frame.len());
            (k.buf, k.at, k._token) = (frame, at, Some(token));
        }
    }

    /// A kept frame's buffer once all of it has been read, to go back to the
    /// stack's pool (oldest first; `None` when none is left).
    pub fn take_spent(&mut self) -> Option<Vec<u8>> {
        match self.kept.front() {
            Some(k) if k.len == 0 && k.ring_before == 0 => self.kept.pop_front().map(|k| k.buf),
            _ => None,
        }
    }

    pub fn has_out_of_order(&self) -> bool {
        !self.ooo.is_empty()
    }

    /// The out-of-order ranges, as offsets [start, end) from RCV.NXT, ascending
    /// (what SACK blocks report, RFC 2018 section 4).
    pub fn out_of_order_ranges(&self) -> &[(u32, u32)] {
        &self.ooo
    }

    /// Whether [off, off + len) from RCV.NXT is already held out of order (a
    /// duplicate, RFC 2883's D-SACK case).
    pub fn holds(&self, off: u32, len: u32) -> bool {
        len > 0 && self.ooo.iter().any(|&(s, e)| s <= off && off + len <= e)
    }

    /// Bytes held out of order.
    pub fn out_of_order_bytes(&self) -> usize {
        self.ooo.iter().map(|(s, e)| (e - s) as usize).sum()
    }

    /// Stores `data` at offset `off` from RCV.NXT. Returns how many bytes became
    /// in order (by how much RCV.NXT advances), or `None` if it could not be held
    /// (beyond the buffer, or too many out-of-order ranges).
    pub fn write(&mut self, off: u32, data: &[u8]) -> Option<usize> {
        let end = off as usize + data.len();
        if end > self.free() {
            return None;
        }
        if data.is_empty() {
            return Some(0);
        }
        let (start, end) = (off, end as u32);
        if off > 0 {
            // Out of order: merge into the range list, refusing a new range past the bound.
            let touching = self.ooo.iter().filter(|(s, e)| *s <= end && start <= *e).count();
            if touching == 0 && self.ooo.len() >= self.max_ranges {
                return None;
            }
        }
        self.ensure_storage(self.len + end as usize);
        let ring = self.buf.len();
        let pos = (self.head + self.len + off as usize) % ring;
        let first = data.len().min(ring - pos);
        self.buf[pos..pos + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
        // Insert [start, end) into the range list (merging), treating in-order data
        // as a range starting at 0.
        let mut s = start;
        let mut e = end;
        self.ooo.retain(|&(rs, re)| {
            if rs <= e && s <= re {
                s = s.min(rs);
                e = e.max(re);
                false
            } else {
                true
            }
        });
        let at = self.ooo.iter().position(|&(rs, _)| rs > s).unwrap_or(self.ooo.len());
        self.ooo.insert(at, (s, e));
        if self.ooo[0].0 != 0 {
            return Some(0);
        }
        let (_, advanced) = self.ooo.remove(0);
        self.len += advanced as usize;
        for r in &mut self.ooo {
            r.0 -= advanced;
            r.1 -= advanced;
        }
        Some(advanced as usize)
    }

    /// Makes the ring hold at least `needed` bytes from its head (never more
    /// than `cap`, which `write`'s check keeps `needed` within), doubling it and
    /// laying what it holds (in order and out of order) out from index 0.
    fn ensure_storage(&mut self, needed: usize) {
        let ring = self.buf.len();
        if needed <= ring {
            return;
        }
        let mut size = ring.max(FIRST_STORAGE.min(self.cap)).max(1);
        while size < needed {
            size *= 2;
        }
        let mut grown = vec![0u8; size.min(self.cap)];
        let span = self.len + self.ooo.last().map_or(0, |&(_, e)| e as usize);
        if ring > 0 && span > 0 {
            let first = span.min(ring - self.head);
            grown[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
            grown[first..span].copy_from_slice(&self.buf[..span - first]);
        }
        self.buf = grown;
        self.head = 0;
    }

    /// Hands `f` the in-order bytes in place, as one contiguous piece (up to
    /// the ring's end or a kept buffer's: a second call gets the next); `f`
    /// returns how many it consumed, which are removed. Returns that count (0
    /// when none wait).
    pub fn read_with(&mut self, f: impl FnOnce(&[u8]) -> usize) -> usize {
        let mut first: &[u8] = &[];
        self.pieces(|p| {
            first = p;
            false
        });
        let n = match first.is_empty() {
            true => 0,
            false => f(first).min(first.len()),
        };
        self.consume(n);
        n
    }

    /// Copies in-order bytes into `out`; removes them unless `peek`.
    pub fn read(&mut self, out: &mut [u8], peek: bool) -> usize {
        let mut n = 0;
        self.pieces(|p| {
            let k = p.len().min(out.len() - n);
            out[n..n + k].copy_from_slice(&p[..k]);
            n += k;
            n < out.len()
        });
        if !peek {
            self.consume(n);
        }
        n
    }

    /// The in-order bytes, oldest first, as the contiguous pieces they lie in
    /// (the ring's bytes before each kept buffer, the kept buffer, ..., then
    /// the ring's last), each handed to `f` until it returns false.
    fn pieces<'a>(&'a self, mut f: impl FnMut(&'a [u8]) -> bool) {
        let mut ring_at = 0;
        for k in &self.kept {
            if !self.ring_pieces(ring_at, k.ring_before, &mut f) || (k.len > 0 && !f(&k.buf[k.at..k.at + k.len])) {
                return;
            }
            ring_at += k.ring_before;
        }
        self.ring_pieces(ring_at, self.len - ring_at, &mut f);
    }

    /// The ring's `len` in-order bytes from `skip` bytes past its head, as
    /// one or two pieces (it may wrap); false if `f` said stop.
    fn ring_pieces<'a>(&'a self, skip: usize, len: usize, f: &mut impl FnMut(&'a [u8]) -> bool) -> bool {
        if len == 0 {
            return true;
        }
        let ring = self.buf.len();
        let pos = (self.head + skip) % ring;
        let first = len.min(ring - pos);
        f(&self.buf[pos..pos + first]) && (first == len || f(&self.buf[..len - first]))
    }

    /// Removes the first `n` in-order bytes (in the order [`RecvBuffer::pieces`] gives them).
    fn consume(&mut self, mut n: usize) {
        let ring = self.buf.len().max(1);
        for k in self.kept.iter_mut() {
            let r = n.min(k.ring_before);
            (self.head, self.len, self.ring_ahead) = ((self.head + r) % ring, self.len - r, self.ring_ahead - r);
            k.ring_before -= r;
            let c = (n - r).min(k.len);
            (k.at, k.len, self.kept_len) = (k.at + c, k.len - c, self.kept_len - c);
            n -= r + c;
            if n == 0 {
                return;
            }
        }
        (self.head, self.len) = ((self.head + n) % ring, self.len - n);
    }
}

/// The right edge of the window to offer (RFC 9293 section 3.8.6.2.2): it moves
/// forward only when it can move by at least min(buffer/2, MSS) ("Fr" of 1/2),
/// so that we never advertise small increments; it never moves back (the window
/// is not shrunk, RFC 9293 section 3.8.6 SHLD-14).
pub fn window_edge(rcv_nxt: Seq, old_edge: Seq, free: usize, cap: usize, mss: u32) -> Seq {
    let possible = rcv_nxt + free.min(i32::MAX as usize) as u32;
    let threshold = ((cap / 2) as u32).min(mss).max(1);
    if possible > old_edge && possible.since(old_edge) >= threshold {
        possible
    } else if old_edge < rcv_nxt {
        rcv_nxt
    } else {
        old_edge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(b: &mut RecvBuffer) -> Vec<u8> {
        let mut out = vec![0; b.readable()];
        b.read(&mut out, false);
        out
    }

    /// Claims `data` as kept, in a frame buffer with `at` bytes of headers before it.
    fn keep(b: &mut RecvBuffer, data: &[u8], at: usize) {
        assert!(b.can_claim(data.len()));
        assert_eq!(b.claim(data.len()), data.len());
        assert!(b.awaits_frame() && !b.can_claim(1), "one claim at a time, filled before the next");
        let mut frame = vec![0xEE; at];
        frame.extend_from_slice(data);
        b.fill(frame, at, KeptToken::for_test());
        assert!(!b.awaits_frame());
    }

    #[test]
    fn kept_buffers_are_read_in_their_turn_between_the_rings_bytes() {
        let mut b = RecvBuffer::new(64, 4);
        assert_eq!(b.write(0, b"ab"), Some(2));
        keep(&mut b, b"CDEFGH", 3);
        assert_eq!(b.write(0, b"ij"), Some(2));
        keep(&mut b, b"KLMN", 5);
        assert_eq!(b.write(0, b"op"), Some(2));
        assert_eq!((b.readable(), b.free()), (16, 48), "kept bytes fill the window as the ring's do");
        let mut peeked = [0u8; 16];
        assert_eq!(b.read(&mut peeked, true), 16);
        assert_eq!(&peeked, b"abCDEFGHijKLMNop");
        assert_eq!(b.readable(), 16, "a peek removes nothing");
        assert!(b.take_spent().is_none());
        // In place: one contiguous piece per call, in order.
        let mut pieces = Vec::new();
        while b.read_with(|p| {
            pieces.push(p.to_vec());
            p.len().min(3)
        }) > 0
        {}
        let joined: Vec<u8> = pieces.iter().flat_map(|p| p[..p.len().min(3)].to_vec()).collect();
        assert_eq!(joined, b"abCDEFGHijKLMNop");
        assert_eq!(pieces[0], b"ab", "the ring's first bytes, alone, before the kept buffer");
        assert_eq!(b.readable(), 0);
        let held = b.heap_bytes();
        let spent: Vec<Vec<u8>> = std::iter::from_fn(|| b.take_spent()).collect();
        assert_eq!(spent.len(), 2, "both kept buffers go back once read");
        let kept: usize = spent.iter().map(|v| v.capacity()).sum();
        assert_eq!(b.heap_bytes(), held - kept, "counted while held, not after");
    }

    #[test]
    fn a_copying_read_crosses_kept_buffers_and_stops_anywhere() {
        let mut b = RecvBuffer::new(32, 4);
        keep(&mut b, b"0123", 2);
        assert_eq!(b.write(0, b"45"), Some(2));
        keep(&mut b, b"6789", 7);
        let mut out = [0u8; 5];
        assert_eq!(b.read(&mut out, false), 5);
        assert_eq!(&out, b"01234");
        assert!(b.take_spent().is_some(), "the first kept buffer is read to its end");
        assert!(b.take_spent().is_none());
        assert_eq!(b.write(0, b"ab"), Some(2));
        assert_eq!(read_all(&mut b), b"56789ab");
        assert!(b.take_spent().is_some());
        assert!(b.release(), "nothing left: the storage can go");
    }

    #[test]
    fn nothing_is_kept_while_data_waits_out_of_order_or_beyond_the_window() {
        let mut b = RecvBuffer::new(16, 4);
        assert_eq!(b.write(4, b"xy"), Some(0));
        assert!(!b.can_claim(4), "in-order data fills a gap in the ring");
        assert_eq!(b.write(0, b"abcd"), Some(6));
        assert!(b.can_claim(10) && !b.can_claim(11) && !b.can_claim(0));
        keep(&mut b, b"0123456789", 0);
        assert!(!b.release(), "kept data is buffered data");
        assert_eq!(b.free(), 0);
    }

    #[test]
    fn in_order_and_wraparound() {
        let mut b = RecvBuffer::new(8, 4);
        assert_eq!(b.write(0, b"abcdef"), Some(6));
        let mut two = [0; 2];
        assert_eq!(b.read(&mut two, true), 2);
        assert_eq!(&two, b"ab");
        assert_eq!(b.readable(), 6, "peek leaves the data");
        b.read(&mut [0; 5], false);
        assert_eq!(b.free(), 7);
        assert_eq!(b.write(0, b"ghijkl"), Some(6)); // wraps in the ring
        assert_eq!(read_all(&mut b), b"fghijkl");
        assert_eq!(b.write(0, b"123456789"), None, "beyond the buffer");
    }

    #[test]
    fn out_of_order_reassembly() {
        let mut b = RecvBuffer::new(100, 4);
        assert_eq!(b.write(5, b"fgh"), Some(0));
        assert_eq!(b.write(10, b"klm"), Some(0));
        assert_eq!(b.out_of_order_bytes(), 6);
        assert_eq!(b.write(6, b"ghij"), Some(0)); // overlaps and bridges
        assert_eq!(b.out_of_order_bytes(), 8);
        assert_eq!(b.write(0, b"abcde"), Some(13));
        assert!(!b.has_out_of_order());
        assert_eq!(read_all(&mut b), b"abcdefghijklm");
    }

    #[test]
    fn out_of_order_ranges_are_bounded() {
        let mut b = RecvBuffer::new(100, 2);
        assert_eq!(b.write(10, b"x"), Some(0));
        assert_eq!(b.write(20, b"y"), Some(0));
        assert_eq!(b.write(30, b"z"), None, "a third range is refused");
        assert_eq!(b.write(21, b"y"), Some(0), "extending a range is fine");
        assert_eq!(b.write(0, &[b'.'; 10]), Some(11));
    }

    #[test]
    fn storage_grows_with_what_is_held_and_keeps_order_across_the_wrap() {
        let mut b = RecvBuffer::new(65536, 4);
        assert_eq!(b.heap_bytes(), 0, "nothing before the first byte");
        assert_eq!(b.write(0, b"GET / HTTP/1.0\r\n\r\n"), Some(18));
        assert_eq!(read_all(&mut b).len(), 18);
        assert_eq!(b.buf.len(), FIRST_STORAGE, "a little received, a little held");
        // Wrap the 4 KiB ring, then make it grow with data on both sides of
        // its end and an out-of-order range beyond: all comes out in order.
        let first = pattern_bytes(4000, 1);
        assert_eq!(b.write(0, &first), Some(4000));
        let mut some = vec![0; 3000];
        b.read(&mut some, false);
        assert_eq!(some, first[..3000]);
        let late = pattern_bytes(2000, 2);
        assert_eq!(b.write(3000, &late), Some(0), "out of order, beyond a gap");
        let gap = pattern_bytes(3000, 3);
        assert_eq!(b.write(0, &gap), Some(5000));
        assert_eq!(b.buf.len(), 8192, "doubled once");
        let mut expect = first[3000..].to_vec();
        expect.extend_from_slice(&gap);
        expect.extend_from_slice(&late);
        assert_eq!(read_all(&mut b), expect);
        // Up to the capacity and no further; a small buffer gets only its size.
        assert_eq!(b.write(0, &vec![9; 65536]), Some(65536));
        assert_eq!(b.buf.len(), 65536);
        let mut small = RecvBuffer::new(1000, 4);
        small.write(0, b"x");
        assert_eq!(small.buf.len(), 1000);
    }

    #[test]
    fn a_drained_ring_shrinks_back_to_its_first_storage() {
        let mut b = RecvBuffer::new(65536, 4);
        assert_eq!(b.write(0, &vec![1; 65536]), Some(65536));
        assert_eq!(b.buf.len(), 65536);
        b.trim();
        assert_eq!(b.buf.len(), 65536, "nothing is given back while data waits");
        b.read(&mut vec![0; 65000], false);
        assert!(!b.has_spare_storage(), "not drained yet");
        b.read(&mut [0; 536], false);
        assert!(b.has_spare_storage());
        b.trim();
        assert_eq!(b.heap_bytes(), FIRST_STORAGE, "back to the first storage");
        assert_eq!(b.free(), 65536, "the capacity (and the window) stay");
        // It grows again as data comes, in order across the old head.
        let data = pattern_bytes(10000, 5);
        assert_eq!(b.write(0, &data), Some(10000));
        assert_eq!(read_all(&mut b), data);
    }

    #[test]
    fn read_in_place_across_the_wrap() {
        let mut b = RecvBuffer::new(8, 4);
        assert_eq!(b.read_with(|_| unreachable!("nothing to read, no call")), 0);
        assert_eq!(b.write(0, b"abcdef"), Some(6));
        assert_eq!(b.read_with(|d| d.len() - 1), 5, "part of it");
        assert_eq!(b.write(0, b"ghijk"), Some(5)); // wraps in the ring
        let mut seen = Vec::new();
        while b.readable() > 0 {
            b.read_with(|d| {
                seen.extend_from_slice(d);
                d.len() + 3 // an overstatement is capped
            });
        }
        assert_eq!(seen, b"fghijk");
        assert_eq!(b.free(), 8);
        assert_eq!(b.read_with(|d| d.len()), 0);
    }

    fn pattern_bytes(n: usize, salt: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt)).collect()
    }

    #[test]
    fn receiver_sws() {
        let mss = 1000;
        // Buffer 10000, nothing read: edge moves from 0 to 10000.
        assert_eq!(window_edge(Seq(0), Seq(0), 10_000, 10_000, mss), Seq(10_000));
        // 9500 arrived, user read 400: free 900 -> possible edge 9500+900=10400, only 400 more: stay.
        assert_eq!(window_edge(Seq(9500), Seq(10_000), 900, 10_000, mss), Seq(10_000));
        // User read 1000 more: edge 11400, moves.
        assert_eq!(window_edge(Seq(9500), Seq(10_000), 1900, 10_000, mss), Seq(11_400));
        // Small buffers: threshold is half the buffer.
        assert_eq!(window_edge(Seq(0), Seq(500), 700, 1000, mss), Seq(500));
        assert_eq!(window_edge(Seq(0), Seq(400), 1000, 1000, mss), Seq(1000));
    }
}
