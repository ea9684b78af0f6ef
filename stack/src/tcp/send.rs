//! The send side's data: the bounded send buffer (SO_SNDBUF) holding what the
//! user wrote until the peer acknowledges it, and the decision of when a segment
//! may leave: Nagle's algorithm (RFC 896; RFC 9293 section 3.7.4, MUST-17) and
//! sender silly window syndrome avoidance (RFC 9293 section 3.8.6.2.1, MUST-38).
//! Segmentation to the effective MSS (section 3.7.1) happens in the caller.

use std::collections::VecDeque;

/// The storage an empty send buffer keeps when it gives the rest back (see
/// [`SendBuffer::trim`]): enough for a small answer, so that a request and
/// response connection does not allocate for each one.
pub const KEPT_STORAGE: usize = 4096;

/// Bytes written by the user and not yet acknowledged: `[0, len)` maps to
/// sequence numbers from the first unacknowledged data octet on.
pub struct SendBuffer {
    data: VecDeque<u8>,
    cap: usize,
}

/// Sizes only: the bytes would flood any debug print of the stack.
impl core::fmt::Debug for SendBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SendBuffer").field("cap", &self.cap).field("len", &self.data.len()).finish()
    }
}

impl SendBuffer {
    pub fn new(cap: usize) -> SendBuffer {
        SendBuffer { data: VecDeque::new(), cap }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes of storage held.
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity()
    }

    /// Whether it is empty and holds storage beyond [`KEPT_STORAGE`] (what
    /// [`SendBuffer::trim`] would give back).
    pub fn has_spare_storage(&self) -> bool {
        self.data.is_empty() && self.data.capacity() > KEPT_STORAGE
    }

    /// Gives storage beyond [`KEPT_STORAGE`] back while nothing is buffered
    /// (issue 13: memory goes back, not kept at its peak). The connection calls
    /// it once the buffer has been empty for a while, never per segment, so a
    /// steady transfer does not allocate again and again.
    pub fn trim(&mut self) {
        if self.has_spare_storage() {
            self.data.shrink_to(KEPT_STORAGE);
        }
    }

    /// Changes the bound; what is already buffered stays.
    pub fn set_capacity(&mut self, cap: usize) {
        self.cap = cap;
    }

    pub fn free(&self) -> usize {
        self.cap.saturating_sub(self.data.len())
    }

    /// Copies as much of `buf` as fits; returns how much.
    pub fn write(&mut self, buf: &[u8]) -> usize {
        let n = buf.len().min(self.free());
        self.data.extend(&buf[..n]);
        n
    }

    /// The bytes `[off, off+len)`, in at most two pieces.
    pub fn slices(&self, off: usize, len: usize) -> [&[u8]; 2] {
        let (a, b) = self.data.as_slices();
        let end = off + len;
        debug_assert!(end <= self.data.len());
        if end <= a.len() {
            [&a[off..end], &[]]
        } else if off >= a.len() {
            [&b[off - a.len()..end - a.len()], &[]]
        } else {
            [&a[off..], &b[..end - a.len()]]
        }
    }

    /// Drops the first `n` bytes (acknowledged).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.data.len());
        self.data.drain(..n);
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
