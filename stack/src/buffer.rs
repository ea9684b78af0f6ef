//! Frame buffers and the transmit queue. Outgoing frames are built in place in
//! buffers taken from a free list and returned to it once the device has them, so
//! that the steady-state per-frame path does not allocate (principle 6).
//!
//! Layout of a frame under construction: the Ethernet header's 14 bytes are
//! reserved at the front, so IP and transport layers write behind it and ARP fills
//! it in once the next hop's MAC is known, without copying.

use crate::offload::TxOffload;
use std::collections::VecDeque;

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
