//! Frame buffers and the transmit queue. Outgoing frames are built in place in
//! buffers taken from a free list and returned to it once the device has them, so
//! that the steady-state per-frame path does not allocate (principle 6).
//!
//! Layout of a frame under construction: the Ethernet header's 14 bytes are
//! reserved at the front, so IP and transport layers write behind it and ARP fills
//! it in once the next hop's MAC is known, without copying.

use crate::offload::TxOffload;
use std::collections::VecDeque;
use std::sync::Arc;

/// Length of an Ethernet II header.
pub const ETH_HEADER_LEN: usize = 14;
/// Capacity each pooled buffer is created with: the largest Ethernet frame.
pub const FRAME_CAPACITY: usize = 1518;
/// Free buffers kept for reuse; beyond this, returned buffers are freed.
const MAX_FREE: usize = 256;
/// Room beyond which a buffer is a large one, for a GSO segment: more than any
/// frame of an MTU the configuration allows (9000, a jumbo frame) grows a
/// frame buffer to (a `Vec` doubling from [`FRAME_CAPACITY`] reaches 12144).
pub const MAX_MTU_FRAME: usize = 16 * 1024;
/// Free large buffers (GSO segments, `offload::MAX_GSO_FRAME` bytes at most)
/// kept for reuse, apart so that frames do not take them: 32 (2 MiB) is more
/// than a round of sending holds at once.
const MAX_LARGE_FREE: usize = 32;
/// Frames waiting for the device. A driver drains the queue after every call into
/// the stack, so this only bounds a misbehaving driver.
pub const MAX_TX_QUEUE: usize = 4096;

/// Outgoing frames (each with what it asks of the link) and the pool of
/// buffers they are built in.
#[derive(Debug, Default)]
pub struct TxQueue {
    queue: VecDeque<(Vec<u8>, TxOffload)>,
    free: Vec<Vec<u8>>,
    /// Free buffers of more than [`MAX_MTU_FRAME`] bytes.
    large: Vec<Vec<u8>>,
    /// Frames refused because the queue was full.
    pub overflows: u64,
}

impl TxQueue {
    pub fn new() -> TxQueue {
        TxQueue::default()
    }

    /// An empty buffer with room for a full frame.
    pub fn alloc(&mut self) -> Vec<u8> {
        match self.free.pop() {
            Some(mut b) => {
                b.clear();
                b
            }
            None => Vec::with_capacity(FRAME_CAPACITY),
        }
    }

    /// An empty buffer with room for `size` bytes: a pooled large one if a
    /// frame would not fit.
    pub fn alloc_for(&mut self, size: usize) -> Vec<u8> {
        if size <= MAX_MTU_FRAME {
            return self.alloc();
        }
        match self.large.pop() {
            Some(mut b) => {
                b.clear();
                b.reserve(size);
                b
            }
            None => Vec::with_capacity(size.max(crate::offload::MAX_GSO_FRAME)),
        }
    }

    /// A buffer of at least `len` bytes (its contents whatever they were) to
    /// replace a received frame's buffer that the stack kept
    /// (`Stack::receive_owned`): a pooled large one (kept buffers come back
    /// to the pool once read), or a new one.
    pub fn take_spare(&mut self, len: usize) -> Vec<u8> {
        let mut b = match self.large.iter().rposition(|b| b.capacity() >= len) {
            Some(i) => self.large.swap_remove(i),
            None => Vec::with_capacity(len.max(crate::offload::MAX_GSO_FRAME)),
        };
        if b.len() < len {
            b.resize(len, 0);
        }
        b
    }

    /// Gives a buffer back to the pool without sending it.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if buf.capacity() == 0 {
            // An empty one left in a frame's place: nothing to keep.
            return;
        }
        if buf.capacity() > MAX_MTU_FRAME {
            if self.large.len() < MAX_LARGE_FREE {
                self.large.push(buf);
            }
        } else if self.free.len() < MAX_FREE {
            self.free.push(buf);
        }
    }

    /// Queues a complete Ethernet frame for the device.
    pub fn push(&mut self, frame: Vec<u8>) {
        self.push_offloaded(frame, TxOffload::NONE);
    }

    /// Queues a complete Ethernet frame that asks the link for `offload`.
    pub fn push_offloaded(&mut self, frame: Vec<u8>, offload: TxOffload) {
        if self.queue.len() >= MAX_TX_QUEUE {
            self.overflows += 1;
            self.recycle(frame);
        } else {
            self.queue.push_back((frame, offload));
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Hands every queued frame to `f`, oldest first, and recycles the buffers.
    /// Returns how many frames were handed over.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8], TxOffload)) -> usize {
        let mut n = 0;
        while let Some((frame, offload)) = self.queue.pop_front() {
            f(&frame, offload);
            n += 1;
            self.recycle(frame);
        }
        n
    }

    /// Hands every queued frame to `f`, oldest first, as its buffer: `f` may
    /// take the buffer and leave one of its own in its place (which the pool
    /// then keeps), so that a large frame is moved out, not copied. Returns how
    /// many frames were handed over.
    pub fn drain_buffers(&mut self, mut f: impl FnMut(&mut Vec<u8>, TxOffload)) -> usize {
        let mut n = 0;
        while let Some((mut frame, offload)) = self.queue.pop_front() {
            f(&mut frame, offload);
            n += 1;
            self.recycle(frame);
        }
        n
    }

    /// Takes the oldest queued frame; give it back with [`TxQueue::recycle`].
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        self.queue.pop_front().map(|(frame, _)| frame)
    }
}

/// Frames' buffers kept in receive buffers at once, stack-wide: 32 (2 MiB of
/// 64 KiB buffers), as many as the pool keeps ([`MAX_LARGE_FREE`]), so that
/// when they are read they all fit back in the pool and the next ones' spares
/// come from it, not the allocator. Beyond it, data is copied as before.
pub const MAX_KEPT_BUFFERS: usize = MAX_LARGE_FREE;

/// The frame being received, when its owner lets the stack keep its buffer
/// (`Stack::receive_owned`): a TCP payload in it may be claimed, once, to
/// stay in that buffer instead of being copied into a receive buffer
/// (zero-copy receive, `tcp::recv`).
#[derive(Debug, Default)]
pub struct RxClaim {
    /// The frame's first byte's address, its length and its buffer's
    /// capacity; `None` when the frame being received may not be kept.
    offered: Option<(usize, usize, usize)>,
    /// Where the claimed payload starts in the frame.
    claimed: Option<usize>,
    /// One reference per buffer kept ([`KeptToken`]), wherever it is and
    /// however it goes (read, or dropped with its connection): the count is exact.
    kept: Arc<()>,
}

/// Held with each kept buffer; counts it among [`MAX_KEPT_BUFFERS`] until dropped.
#[derive(Debug)]
pub struct KeptToken(#[allow(dead_code)] Arc<()>);

#[cfg(test)]
impl KeptToken {
    /// A token counted nowhere, for a receive buffer's tests.
    pub fn for_test() -> KeptToken {
        KeptToken(Arc::new(()))
    }
}

impl RxClaim {
    /// `frame` (the whole of it, in a buffer of `capacity` bytes) may be kept.
    pub fn offer(&mut self, frame: &[u8], capacity: usize) {
        self.offered = Some((frame.as_ptr() as usize, frame.len(), capacity));
        self.claimed = None;
    }

    /// Claims the frame's buffer for `payload`, which must lie in the frame
    /// offered (not in a reassembled datagram or a looped one) and fill at
    /// least half of a large buffer (a frame-sized one is cheap to copy; half
    /// full, a kept buffer costs at most twice the bytes it holds), while
    /// fewer than [`MAX_KEPT_BUFFERS`] are kept. Returns whether it may be kept.
    pub fn claim(&mut self, payload: &[u8]) -> bool {
        let Some((start, len, capacity)) = self.offered else { return false };
        let at = (payload.as_ptr() as usize).wrapping_sub(start);
        let inside = at <= len && payload.len() <= len - at;
        let worth = capacity > MAX_MTU_FRAME && 2 * payload.len() >= capacity;
        if self.claimed.is_some() || !inside || !worth || self.kept_buffers() >= MAX_KEPT_BUFFERS {
            return false;
        }
        self.claimed = Some(at);
        true
    }

    /// Ends the frame's offer; where the payload claimed from it starts, if
    /// one was, and the token its buffer is to be kept with.
    pub fn take(&mut self) -> Option<(usize, KeptToken)> {
        self.offered = None;
        self.claimed.take().map(|at| (at, KeptToken(self.kept.clone())))
    }

    /// Buffers kept now, stack-wide.
    pub fn kept_buffers(&self) -> usize {
        Arc::strong_count(&self.kept) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_of_the_frame_offered_once_and_at_least_half_its_buffer() {
        let frame = vec![7u8; 40_000];
        let mut c = RxClaim::default();
        assert!(!c.claim(&frame[100..]), "nothing offered: nothing kept");
        c.offer(&frame, 40_000);
        let elsewhere = vec![7u8; 30_000];
        assert!(!c.claim(&elsewhere), "a payload outside the frame (reassembled, looped)");
        assert!(!c.claim(&frame[20_100..]), "19,900 bytes would keep a 40,000-byte buffer");
        assert!(c.claim(&frame[100..]));
        assert!(!c.claim(&frame[100..]), "one claim per frame");
        let (at, token) = c.take().expect("claimed");
        assert_eq!((at, c.kept_buffers()), (100, 1));
        assert!(c.take().is_none());
        assert!(!c.claim(&frame[100..]), "the offer ends with the frame");
        drop(token);
        assert_eq!(c.kept_buffers(), 0);
        let small = vec![7u8; 1514];
        c.offer(&small, small.capacity());
        assert!(!c.claim(&small[54..]), "a frame-sized buffer is copied from");
    }

    #[test]
    fn kept_buffers_are_bounded_stack_wide() {
        let frame = vec![7u8; 40_000];
        let mut c = RxClaim::default();
        let mut tokens = Vec::new();
        for _ in 0..MAX_KEPT_BUFFERS {
            c.offer(&frame, 40_000);
            assert!(c.claim(&frame[100..]));
            tokens.push(c.take().unwrap().1);
        }
        c.offer(&frame, 40_000);
        assert!(!c.claim(&frame[100..]), "the bound reached: copied");
        tokens.pop();
        assert!(c.claim(&frame[100..]), "one went: one more may be kept");
    }

    #[test]
    fn a_spare_is_a_pooled_buffer_long_enough_or_a_new_one() {
        let mut q = TxQueue::new();
        q.recycle(vec![1u8; 20_000]);
        let spare = q.take_spare(30_000);
        assert!(spare.len() >= 30_000);
        let pooled = q.take_spare(10_000);
        assert_eq!(pooled.len(), 20_000, "the pooled one, its length kept (no zeroing)");
    }
}
