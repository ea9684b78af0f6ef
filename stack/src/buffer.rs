//! Frame buffers and the transmit queue. Outgoing frames are built in place in
//! buffers taken from a free list and returned to it once the device has them, so
//! that the steady-state per-frame path does not allocate (principle 6).
//!
//! Layout of a frame under construction: the Ethernet header's 14 bytes are
//! reserved at the front, so IP and transport layers write behind it and ARP fills
//! it in once the next hop's MAC is known, without copying.

use std::collections::VecDeque;

/// Length of an Ethernet II header.
pub const ETH_HEADER_LEN: usize = 14;
/// Capacity each pooled buffer is created with: the largest Ethernet frame.
pub const FRAME_CAPACITY: usize = 1518;
/// Free buffers kept for reuse; beyond this, returned buffers are freed.
const MAX_FREE: usize = 256;
/// Frames waiting for the device. A driver drains the queue after every call into
/// the stack, so this only bounds a misbehaving driver.
pub const MAX_TX_QUEUE: usize = 4096;

/// Outgoing frames and the pool of buffers they are built in.
#[derive(Debug, Default)]
pub struct TxQueue {
    queue: VecDeque<Vec<u8>>,
    free: Vec<Vec<u8>>,
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

    /// Gives a buffer back to the pool without sending it.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.free.len() < MAX_FREE {
            self.free.push(buf);
        }
    }

    /// Queues a complete Ethernet frame for the device.
    pub fn push(&mut self, frame: Vec<u8>) {
        if self.queue.len() >= MAX_TX_QUEUE {
            self.overflows += 1;
            self.recycle(frame);
        } else {
            self.queue.push_back(frame);
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
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Some(frame) = self.queue.pop_front() {
            f(&frame);
            n += 1;
            self.recycle(frame);
        }
        n
    }

    /// Takes the oldest queued frame; give it back with [`TxQueue::recycle`].
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        self.queue.pop_front()
    }
}
