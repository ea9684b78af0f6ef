//! The loopback: datagrams the stack sends to itself (to its own address or to
//! 127.0.0.0/8) never reach a device. RFC 1122 section 3.2.1.3 (g): 127/8 "MUST
//! NOT appear outside a host"; section 3.3.6 (and Linux's `lo`): a datagram to
//! one of the host's own addresses is delivered internally.
//!
//! [`Loopback`] is the queue between the sending and the receiving half of the
//! core, like Linux's per-CPU backlog that `loopback_xmit` feeds. The IP layer
//! pushes each finished frame (an Ethernet frame from our MAC to our MAC, so that
//! a capture shows it as any other frame and tells it apart from the link's:
//! no frame on a real link has the same source and destination MAC) with the
//! time it was sent; [`Loopback::poll_at`] is that time, so the stack's deadline
//! says "now" while anything waits, and the driver's next round delivers it
//! ([`crate::Stack::poll`]). A delivered frame is kept, bounded, until the driver
//! hands it to a recorder ([`crate::Stack::transmit_looped`]), then its buffer
//! goes back to the transmit queue's pool: no allocation per frame once warm.

use crate::buffer::TxQueue;
use crate::time::Instant;
use std::collections::VecDeque;

/// Frames sent to ourselves: those waiting to be delivered, and those delivered
/// and waiting to be shown to a capture. Both bounded by the same limit
/// ([`crate::Config::loopback_queue`]).
#[derive(Debug)]
pub struct Loopback {
    /// Waiting for delivery, each with the time it was sent.
    queue: VecDeque<(Instant, Vec<u8>)>,
    /// Delivered, waiting for [`Loopback::drain_delivered`].
    delivered: VecDeque<Vec<u8>>,
    limit: usize,
}

impl Loopback {
    /// A loopback holding at most `limit` frames in each of its queues (at least one).
    pub fn new(limit: usize) -> Loopback {
        Loopback { queue: VecDeque::new(), delivered: VecDeque::new(), limit: limit.max(1) }
    }

    /// Queues a frame sent at `now`. When the queue is full the frame's buffer
    /// goes back to `pool` and `false` is returned: the caller counts the drop
    /// (as Linux drops beyond netdev_max_backlog).
    pub fn push(&mut self, now: Instant, frame: Vec<u8>, pool: &mut TxQueue) -> bool {
        if self.queue.len() >= self.limit {
            pool.recycle(frame);
            return false;
        }
        self.queue.push_back((now, frame));
        true
    }

    /// When the oldest waiting frame was sent: the loopback has work from then on.
    pub fn poll_at(&self) -> Option<Instant> {
        self.queue.front().map(|(t, _)| *t)
    }

    /// Frames waiting for delivery.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The oldest waiting frame; hand it back with [`Loopback::delivered`] once
    /// the stack has taken it.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        self.queue.pop_front().map(|(_, f)| f)
    }

    /// Keeps a delivered frame for a capture. Beyond the limit the oldest kept
    /// one goes back to `pool` (nobody is recording).
    pub fn delivered(&mut self, frame: Vec<u8>, pool: &mut TxQueue) {
        if self.delivered.len() >= self.limit {
            if let Some(old) = self.delivered.pop_front() {
                pool.recycle(old);
            }
        }
        self.delivered.push_back(frame);
    }

    /// Whether delivered frames wait for [`Loopback::drain_delivered`].
    pub fn has_delivered(&self) -> bool {
        !self.delivered.is_empty()
    }

    /// Hands every delivered frame to `f`, oldest first, and gives the buffers
    /// back to `pool`. Returns how many.
    pub fn drain_delivered(&mut self, pool: &mut TxQueue, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Some(frame) = self.delivered.pop_front() {
            f(&frame);
            pool.recycle(frame);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod queue_tests {
    use super::*;
    use crate::time::Duration;

    #[test]
    fn bounded_in_order_and_due_from_the_oldest_send() {
        let mut pool = TxQueue::new();
        let mut lo = Loopback::new(2);
        assert_eq!(lo.poll_at(), None);
        let t1 = Instant::ZERO + Duration::from_millis(1);
        assert!(lo.push(t1, vec![1], &mut pool));
        assert!(lo.push(t1 + Duration::from_millis(1), vec![2], &mut pool));
        assert!(!lo.push(t1, vec![3], &mut pool), "full");
        assert_eq!(lo.poll_at(), Some(t1));
        assert_eq!(lo.pending(), 2);
        let a = lo.pop().unwrap();
        assert_eq!(a, [1]);
        lo.delivered(a, &mut pool);
        let b = lo.pop().unwrap();
        lo.delivered(b, &mut pool);
        lo.delivered(vec![9], &mut pool);
        assert_eq!(lo.poll_at(), None);
        let mut seen = Vec::new();
        assert_eq!(lo.drain_delivered(&mut pool, |f| seen.push(f.to_vec())), 2);
        assert_eq!(seen, [vec![2], vec![9]], "the oldest kept frame made room");
        assert!(!lo.has_delivered());
    }
}
