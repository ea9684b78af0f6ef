//! The send side's data: the bounded send buffer (SO_SNDBUF) holding what the
//! user wrote until the peer acknowledges it, and the decision of when a segment
//! may leave: Nagle's algorithm (RFC 896; RFC 9293 section 3.7.4, MUST-17) and
//! sender silly window syndrome avoidance (RFC 9293 section 3.8.6.2.1, MUST-38).
//! Segmentation to the effective MSS (section 3.7.1) happens in the caller.

/// The storage an empty send buffer keeps when it gives the rest back (see
/// [`SendBuffer::trim`]): enough for a small answer, so that a request and
/// response connection does not allocate for each one.
pub const KEPT_STORAGE: usize = 4096;

/// Bytes written by the user and not yet acknowledged: `[0, len)` maps to
/// sequence numbers from the first unacknowledged data octet on. A ring of
/// its own (not a `VecDeque`) so that the user may write straight into its
/// free space ([`SendBuffer::write_with`]); it grows by doubling up to `cap`
/// and is zeroed only when it grows, never per write.
pub struct SendBuffer {
    /// The ring: allocated on first write, grown as needed up to `cap` bytes.
    buf: Vec<u8>,
    /// Index of the first unacknowledged byte.
    head: usize,
    len: usize,
    cap: usize,
}

/// Sizes only: the bytes would flood any debug print of the stack.
impl core::fmt::Debug for SendBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SendBuffer").field("cap", &self.cap).field("len", &self.len).finish()
    }
}

impl SendBuffer {
    pub fn new(cap: usize) -> SendBuffer {
        SendBuffer { buf: Vec::new(), head: 0, len: 0, cap }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes of storage held.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether it is empty and holds storage beyond [`KEPT_STORAGE`] (what
    /// [`SendBuffer::trim`] would give back).
    pub fn has_spare_storage(&self) -> bool {
        self.len == 0 && self.buf.capacity() > KEPT_STORAGE
    }

    /// Gives storage beyond [`KEPT_STORAGE`] back while nothing is buffered
    /// (issue 13: memory goes back, not kept at its peak). The connection calls
    /// it once the buffer has been empty for a while, never per segment, so a
    /// steady transfer does not allocate again and again.
    pub fn trim(&mut self) {
        if self.has_spare_storage() {
            self.buf.truncate(KEPT_STORAGE);
            self.buf.shrink_to(KEPT_STORAGE);
            self.head = 0;
        }
    }

    /// Changes the bound; what is already buffered stays.
    pub fn set_capacity(&mut self, cap: usize) {
        self.cap = cap;
    }

    pub fn free(&self) -> usize {
        self.cap.saturating_sub(self.len)
    }

    /// Copies as much of `buf` as fits; returns how much. The ring grows only
    /// as far as it must hold (a small request keeps a small buffer).
    pub fn write(&mut self, buf: &[u8]) -> usize {
        let n = buf.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.ensure_storage(self.len + n);
        let mut done = 0;
        while done < n {
            done += self.fill(|room| {
                let k = room.len().min(n - done);
                room[..k].copy_from_slice(&buf[done..done + k]);
                k
            });
        }
        n
    }

    /// Hands `f` the free space after the buffered bytes, as one contiguous
    /// piece (up to the ring's end: a second call gets the rest), for it to
    /// write into in place; `f` returns how many bytes it wrote, which join
    /// the buffer. The ring first grows to its capacity: whoever writes in
    /// place is filling it. Returns how many bytes were added (0 when full).
    pub fn write_with(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> usize {
        if self.free() == 0 {
            return 0;
        }
        self.ensure_storage(self.len + self.free());
        self.fill(f)
    }

    /// `f` writes into the contiguous free storage after the buffered bytes
    /// (the storage is there: the caller grew it).
    fn fill(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> usize {
        let ring = self.buf.len();
        if ring == 0 {
            return 0;
        }
        let tail = (self.head + self.len) % ring;
        // tail == head only when empty: the caller grew the ring past len.
        let end = if tail >= self.head { ring } else { self.head };
        let room = (end - tail).min(self.free());
        let n = f(&mut self.buf[tail..tail + room]).min(room);
        self.len += n;
        n
    }

    /// Makes the ring hold at least `needed` bytes (at most `cap`), doubling
    /// from [`KEPT_STORAGE`] and laying what it holds out from index 0.
    fn ensure_storage(&mut self, needed: usize) {
        let ring = self.buf.len();
        if needed <= ring {
            return;
        }
        let mut size = ring.max(KEPT_STORAGE.min(self.cap)).max(1);
        while size < needed {
            size *= 2;
        }
        let mut grown = vec![0u8; size.min(self.cap.max(needed))];
        let [a, b] = self.slices(0, self.len);
        grown[..a.len()].copy_from_slice(a);
        grown[a.len()..a.len() + b.len()].copy_from_slice(b);
        self.buf = grown;
        self.head = 0;
    }

    /// The bytes `[off, off+len)`, in at most two pieces.
    pub fn slices(&self, off: usize, len: usize) -> [&[u8]; 2] {
        debug_assert!(off + len <= self.len);
        if len == 0 {
            return [&[], &[]];
        }
        let ring = self.buf.len();
        let start = (self.head + off) % ring;
        let first = len.min(ring - start);
        [&self.buf[start..start + first], &self.buf[..len - first]]
    }

    /// Drops the first `n` bytes (acknowledged).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        if n == 0 {
            return;
        }
        self.len -= n;
        self.head = if self.len == 0 { 0 } else { (self.head + n) % self.buf.len() };
    }
}

/// What the sender knows when deciding whether to send a segment now.
#[derive(Copy, Clone, Debug)]
pub struct SendCheck {
    /// D: data queued and not yet sent.
    pub unsent: u32,
    /// U: usable window (offered window and cwnd, less what is in flight).
    pub usable: u32,
    /// Effective send MSS.
    pub mss: u32,
    /// Largest window the peer has offered (RFC 9293 section 3.8.6.2.1 "Max(SND.WND)").
    pub max_snd_wnd: u32,
    /// Sent data is still unacknowledged.
    pub outstanding: bool,
    /// TCP_NODELAY: Nagle off.
    pub nodelay: bool,
    /// The user closed: everything queued is to go (with the FIN).
    pub closing: bool,
}

/// Fs of RFC 9293 section 3.8.6.2.1: the fraction of the largest window worth sending.
const FS_NUM: u32 = 1;
const FS_DEN: u32 = 2;

/// How many bytes to send now, or 0 to wait. A segment is sent when
/// (RFC 9293 section 3.8.6.2.1):
/// 1. a maximum-sized segment can be sent; or
/// 2. all queued data fits now, and Nagle allows it: nothing is outstanding or
///    Nagle is off (RFC 896, MUST-17; the user's close counts as a push); or
/// 3. at least Fs * Max(SND.WND) can be sent (the peer's window is small).
///
/// The fourth case, the override timeout, is the persist timer in the caller.
pub fn segment_len(c: SendCheck) -> u32 {
    let len = c.unsent.min(c.usable).min(c.mss);
    if len == 0 {
        return 0;
    }
    if len == c.mss {
        return len;
    }
    if len == c.unsent && (!c.outstanding || c.nodelay || c.closing) {
        return len;
    }
    if c.max_snd_wnd > 0 && len >= c.max_snd_wnd * FS_NUM / FS_DEN && (!c.outstanding || c.nodelay) {
        return len;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_is_bounded_and_sliced() {
        let mut b = SendBuffer::new(10);
        assert_eq!(b.write(b"hello world"), 10);
        assert_eq!(b.write(b"x"), 0);
        b.consume(6);
        assert_eq!(b.write(b"abcdefgh"), 6);
        assert_eq!(b.len(), 10);
        let [x, y] = b.slices(0, 10);
        assert_eq!([x, y].concat(), b"worlabcdef");
        let [x, y] = b.slices(3, 4);
        assert_eq!([x, y].concat(), b"labc");
    }

    #[test]
    fn an_empty_buffer_gives_its_storage_back_to_a_small_floor() {
        let mut b = SendBuffer::new(65536);
        b.write(&[7; 65536]);
        assert!(b.heap_bytes() >= 65536);
        b.trim();
        assert!(b.heap_bytes() >= 65536, "nothing is given back while data waits");
        b.consume(65536);
        assert!(b.has_spare_storage());
        b.trim();
        assert!(b.heap_bytes() <= KEPT_STORAGE, "{} bytes kept", b.heap_bytes());
        assert!(!b.has_spare_storage());
        assert_eq!(b.write(b"again"), 5);
        assert_eq!(b.slices(0, 5)[0], b"again");
    }

    #[test]
    fn written_in_place_across_the_wrap() {
        let mut b = SendBuffer::new(8192);
        assert_eq!(b.write(&[1; 6000]), 6000);
        assert_eq!(b.heap_bytes(), 8192, "grown to hold what was written");
        b.consume(5000);
        // In place: first the room up to the ring's end, then the rest.
        let n = b.write_with(|room| {
            assert_eq!(room.len(), 2192);
            room.fill(2);
            room.len()
        });
        assert_eq!(n, 2192);
        let n = b.write_with(|room| {
            assert_eq!(room.len(), 5000, "the wrapped part, up to the head");
            room[..100].fill(3);
            100
        });
        assert_eq!(n, 100, "only what the closure says it wrote joins");
        assert_eq!(b.len(), 1000 + 2192 + 100);
        let [x, y] = b.slices(0, b.len());
        let mut expect = vec![1; 1000];
        expect.extend([2; 2192]);
        expect.extend([3; 100]);
        assert_eq!([x, y].concat(), expect);
        assert_eq!(b.write_with(|room| room.len() + 7), 4900, "a closure's overstatement is capped");
        assert_eq!(b.free(), 0);
        assert_eq!(b.write_with(|_| unreachable!("no room, no call")), 0);
        assert_eq!(b.write(b"x"), 0);
    }

    #[test]
    fn written_in_place_grows_the_ring_to_its_capacity_and_keeps_order() {
        let mut b = SendBuffer::new(65536);
        assert_eq!(b.write(b"hello"), 5);
        assert_eq!(b.heap_bytes(), KEPT_STORAGE, "a small write keeps a small ring");
        b.consume(2);
        let n = b.write_with(|room| {
            assert_eq!(room.len(), 65536 - 3);
            room[..5].copy_from_slice(b"world");
            5
        });
        assert_eq!(n, 5);
        assert_eq!(b.heap_bytes(), 65536);
        assert_eq!(b.slices(0, 8)[0], b"lloworld");
    }

    fn check() -> SendCheck {
        SendCheck {
            unsent: 0,
            usable: 65535,
            mss: 1000,
            max_snd_wnd: 65535,
            outstanding: false,
            nodelay: false,
            closing: false,
        }
    }

    #[test]
    fn nagle() {
        // Full segments always go.
        assert_eq!(segment_len(SendCheck { unsent: 2500, outstanding: true, ..check() }), 1000);
        // A small tail goes when nothing is outstanding...
        assert_eq!(segment_len(SendCheck { unsent: 10, ..check() }), 10);
        // ...but waits for the ACK while data is outstanding (Nagle)...
        assert_eq!(segment_len(SendCheck { unsent: 10, outstanding: true, ..check() }), 0);
        // ...unless TCP_NODELAY, or the user closed.
        assert_eq!(segment_len(SendCheck { unsent: 10, outstanding: true, nodelay: true, ..check() }), 10);
        assert_eq!(segment_len(SendCheck { unsent: 10, outstanding: true, closing: true, ..check() }), 10);
    }

    #[test]
    fn sender_sws_avoidance() {
        // The window allows only 100 of 5000 bytes: too little, wait.
        assert_eq!(segment_len(SendCheck { unsent: 5000, usable: 100, ..check() }), 0);
        // Half the largest window ever offered is enough.
        assert_eq!(segment_len(SendCheck { unsent: 5000, usable: 600, max_snd_wnd: 1200, ..check() }), 600);
        assert_eq!(segment_len(SendCheck { unsent: 5000, usable: 599, max_snd_wnd: 1200, ..check() }), 0);
        // Nothing usable: nothing.
        assert_eq!(segment_len(SendCheck { unsent: 5000, usable: 0, ..check() }), 0);
    }
}
