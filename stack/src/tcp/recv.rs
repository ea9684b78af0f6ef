//! The receive side's data: a bounded ring buffer (SO_RCVBUF) that holds both the
//! in-order bytes waiting for the user and, behind them, out-of-order bytes
//! waiting for the gap before them to fill (RFC 9293 section 3.10.7.4, seventh
//! step: "segments ... held for later processing"). Out-of-order data can only
//! lie inside the window we offered, which never exceeds the free space, so it
//! always fits; the list of out-of-order ranges is bounded too. Duplicates simply
//! overwrite the same bytes.
//!
//! Also here: the window to advertise, with receiver silly window syndrome
//! avoidance (RFC 9293 section 3.8.6.2.2, MUST-39).

use super::seq::Seq;

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
}

/// Sizes only: the bytes would flood any debug print of the stack.
impl core::fmt::Debug for RecvBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecvBuffer")
            .field("cap", &self.cap)
            .field("readable", &self.len)
            .field("ooo", &self.ooo)
            .finish()
    }
}

impl RecvBuffer {
    pub fn new(cap: usize, max_ranges: usize) -> RecvBuffer {
        RecvBuffer { buf: Vec::new(), cap, head: 0, len: 0, ooo: Vec::new(), max_ranges }
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
        if self.len > 0 || !self.ooo.is_empty() {
            return false;
        }
        self.buf = Vec::new();
        self.head = 0;
        true
    }

    /// Whether nothing is buffered and the ring is larger than
    /// [`FIRST_STORAGE`] (what [`RecvBuffer::trim`] would give back).
    pub fn has_spare_storage(&self) -> bool {
        self.len == 0 && self.ooo.is_empty() && self.buf.len() > FIRST_STORAGE.min(self.cap)
    }

    /// Shrinks the ring back to [`FIRST_STORAGE`] while nothing is buffered
    /// (issue 13: memory goes back, not kept at its peak); it grows again as
    /// data comes. The connection calls it once the buffer has been empty for
    /// a while, never per segment, so a steady transfer does not allocate again
    /// and again. The capacity, and so the window, stay.
    pub fn trim(&mut self) {
        if self.has_spare_storage() {
            self.buf.truncate(FIRST_STORAGE.min(self.cap));
            self.buf.shrink_to_fit();
            self.ooo.shrink_to(0);
            self.head = 0;
        }
    }

    /// Bytes of storage held (the ring and the out-of-order list).
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity() + self.ooo.capacity() * core::mem::size_of::<(u32, u32)>()
    }

    /// In-order bytes waiting for the user.
    pub fn readable(&self) -> usize {
        self.len
    }

    /// Room for in-order data from RCV.NXT on.
    pub fn free(&self) -> usize {
        self.cap - self.len
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
    /// the ring's end: a second call gets the rest); `f` returns how many it
    /// consumed, which are removed. Returns that count (0 when none wait).
    pub fn read_with(&mut self, f: impl FnOnce(&[u8]) -> usize) -> usize {
        if self.len == 0 {
            return 0;
        }
        let ring = self.buf.len();
        let first = self.len.min(ring - self.head);
        let n = f(&self.buf[self.head..self.head + first]).min(first);
        self.head = (self.head + n) % ring;
        self.len -= n;
        n
    }

    /// Copies in-order bytes into `out`; removes them unless `peek`.
    pub fn read(&mut self, out: &mut [u8], peek: bool) -> usize {
        let n = out.len().min(self.len);
        if n == 0 {
            return 0;
        }
        let ring = self.buf.len();
        let first = n.min(ring - self.head);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        if !peek {
            self.head = (self.head + n) % ring;
            self.len -= n;
        }
        n
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
