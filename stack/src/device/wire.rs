//! An in-memory wire: two [`WireEnd`]s, and every frame sent on one end is
//! received on the other, in order. It stands in for a cable (or a switch port)
//! between two stacks in tests, so that no TAP or root is needed.
//!
//! Each direction is a bounded FIFO: a wire that nobody reads must not grow
//! without limit, so beyond its capacity frames are dropped and counted, as a
//! full NIC ring would. Buffers are recycled, so a wire in steady use does not
//! allocate per frame.
//!
//! Both ends are `Send`, so a runtime thread can own one of them. For drivers that
//! sleep in poll(2), each end also has an eventfd ([`Device::readable_fd`]) that is
//! readable exactly while that end has frames waiting.

use super::Device;
use crate::time::Instant;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

/// Frames a direction holds before it drops new ones.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Spare buffers a direction keeps for reuse. Steady traffic keeps only a few
/// frames in flight; this bounds what a burst leaves behind.
const POOL_LIMIT: usize = 256;

/// Constructor for a pair of connected [`WireEnd`]s.
pub struct Wire;

impl Wire {
    /// Two connected ends, each direction holding up to [`DEFAULT_CAPACITY`] frames.
    pub fn pair() -> (WireEnd, WireEnd) {
        Wire::with_capacity(DEFAULT_CAPACITY)
    }

    /// Two connected ends, each direction holding up to `capacity` frames (at least 1).
    pub fn with_capacity(capacity: usize) -> (WireEnd, WireEnd) {
        let shared = Arc::new(Shared {
            lanes: [Mutex::new(Lane::new(capacity.max(1))), Mutex::new(Lane::new(capacity.max(1)))],
        });
        // Lane 0 carries frames from end 0 to end 1; lane 1 the other way.
        let a = WireEnd { shared: shared.clone(), tx: 0, rx: 1 };
        let b = WireEnd { shared, tx: 1, rx: 0 };
        (a, b)
    }
}

/// Counters of one end of a [`Wire`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Frames this end sent that the wire accepted.
    pub sent: u64,
    /// Frames this end sent that were dropped because its outgoing queue was full.
    pub send_dropped: u64,
    /// Frames this end received.
    pub received: u64,
    /// Frames dropped on receive because they did not fit the caller's buffer.
    pub recv_oversized: u64,
    /// Frames waiting to be received by this end.
    pub queued: usize,
}

/// One end of a [`Wire`].
pub struct WireEnd {
    shared: Arc<Shared>,
    /// Index of the lane this end sends on.
    tx: usize,
    /// Index of the lane this end receives from.
    rx: usize,
}

struct Shared {
    lanes: [Mutex<Lane>; 2],
}

/// One direction of the wire.
struct Lane {
    frames: VecDeque<Vec<u8>>,
    capacity: usize,
    /// Empty buffers kept for reuse.
    pool: Vec<Vec<u8>>,
    /// Readable while `frames` is non-empty; `None` if the kernel refused to make one
    /// (out of file descriptors), in which case the wire still works for drivers
    /// that poll.
    event: Option<OwnedFd>,
    sent: u64,
    dropped: u64,
    received: u64,
    oversized: u64,
}

impl Lane {
    fn new(capacity: usize) -> Lane {
        Lane {
            frames: VecDeque::new(),
            capacity,
            pool: Vec::new(),
            event: new_eventfd(),
            sent: 0,
            dropped: 0,
            received: 0,
            oversized: 0,
        }
    }

    /// Keeps the eventfd readable exactly while frames wait. Signalling only on the
    /// empty-to-non-empty edge (and draining on the reverse) costs one syscall per
    /// burst, not per frame; doing it under the lane's lock keeps the two in step.
    fn set_readable(&self, readable: bool) {
        let Some(fd) = &self.event else { return };
        let mut value: u64 = 1;
        let ptr = (&mut value as *mut u64).cast::<libc::c_void>();
        // SAFETY: fd is an open eventfd and `value` is a valid 8-byte buffer. Both
        // calls are nonblocking; EAGAIN (already readable / already drained) is fine.
        unsafe {
            if readable {
                libc::write(fd.as_raw_fd(), ptr, 8);
            } else {
                libc::read(fd.as_raw_fd(), ptr, 8);
            }
        }
    }
}

fn new_eventfd() -> Option<OwnedFd> {
    // SAFETY: eventfd has no memory-safety preconditions; on success we own the fd.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    // SAFETY: fd is a freshly created descriptor nobody else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Locks a lane. A panic while a lane was locked leaves it consistent (every
/// update is a single push or pop), so a poisoned lock is still usable.
fn lock(lane: &Mutex<Lane>) -> MutexGuard<'_, Lane> {
    lane.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WireEnd {
    /// What this end has sent and received so far.
    pub fn stats(&self) -> WireStats {
        let tx = lock(&self.shared.lanes[self.tx]);
        let (sent, send_dropped) = (tx.sent, tx.dropped);
        drop(tx);
        let rx = lock(&self.shared.lanes[self.rx]);
        WireStats { sent, send_dropped, received: rx.received, recv_oversized: rx.oversized, queued: rx.frames.len() }
    }
}

impl Device for WireEnd {
    /// Takes the oldest waiting frame. A frame larger than `buf` is dropped (counted
    /// in [`WireStats::recv_oversized`]) and reported as `InvalidInput`, so a too
    /// small buffer is loud rather than silently truncating.
    fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut lane = lock(&self.shared.lanes[self.rx]);
        let Some(mut frame) = lane.frames.pop_front() else { return Ok(None) };
        if lane.frames.is_empty() {
            lane.set_readable(false);
        }
        let len = frame.len();
        let result = if len <= buf.len() {
            buf[..len].copy_from_slice(&frame);
            lane.received += 1;
            Ok(Some(len))
        } else {
            lane.oversized += 1;
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("wire: dropped a {len}-byte frame that does not fit a {}-byte receive buffer", buf.len()),
            ))
        };
        if lane.pool.len() < POOL_LIMIT {
            frame.clear();
            lane.pool.push(frame);
        }
        result
    }

    /// Queues the frame for the other end, or drops and counts it if the queue is
    /// full (a wire never pushes back on the sender).
    fn send(&mut self, _now: Instant, frame: &[u8]) -> io::Result<()> {
        let mut lane = lock(&self.shared.lanes[self.tx]);
        if lane.frames.len() >= lane.capacity {
            lane.dropped += 1;
            return Ok(());
        }
        let mut buf = lane.pool.pop().unwrap_or_default();
        buf.extend_from_slice(frame);
        lane.frames.push_back(buf);
        lane.sent += 1;
        if lane.frames.len() == 1 {
            lane.set_readable(true);
        }
        Ok(())
    }

    fn readable_fd(&self) -> Option<RawFd> {
        lock(&self.shared.lanes[self.rx]).event.as_ref().map(|fd| fd.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv_all(end: &mut WireEnd) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 1518];
        let mut out = Vec::new();
        while let Some(n) = end.recv(Instant::ZERO, &mut buf).unwrap() {
            out.push(buf[..n].to_vec());
        }
        out
    }

    fn is_readable(fd: RawFd) -> bool {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n == 1 && pfd.revents & libc::POLLIN != 0
    }

    #[test]
    fn wire_delivers_in_order_both_ways() {
        let (mut a, mut b) = Wire::pair();
        let now = Instant::ZERO;
        for i in 0..100u8 {
            a.send(now, &[i; 60]).unwrap();
            b.send(now, &[i, i.wrapping_add(1)]).unwrap();
        }
        let at_b = recv_all(&mut b);
        let at_a = recv_all(&mut a);
        assert_eq!(at_b, (0..100u8).map(|i| vec![i; 60]).collect::<Vec<_>>());
        assert_eq!(at_a, (0..100u8).map(|i| vec![i, i.wrapping_add(1)]).collect::<Vec<_>>());
        assert_eq!(a.stats(), WireStats { sent: 100, send_dropped: 0, received: 100, recv_oversized: 0, queued: 0 });
    }

    #[test]
    fn wire_bounds_its_queue_and_counts_drops() {
        let (mut a, mut b) = Wire::with_capacity(8);
        for i in 0..20u8 {
            a.send(Instant::ZERO, &[i]).unwrap();
        }
        assert_eq!(a.stats().sent, 8);
        assert_eq!(a.stats().send_dropped, 12);
        assert_eq!(b.stats().queued, 8);
        // The first eight got through; the rest were dropped, not queued elsewhere.
        assert_eq!(recv_all(&mut b), (0..8u8).map(|i| vec![i]).collect::<Vec<_>>());
        // Room again once drained.
        a.send(Instant::ZERO, &[99]).unwrap();
        assert_eq!(recv_all(&mut b), vec![vec![99]]);
    }

    #[test]
    fn wire_default_capacity_is_4096() {
        let (mut a, b) = Wire::pair();
        for _ in 0..5000 {
            a.send(Instant::ZERO, &[0; 64]).unwrap();
        }
        assert_eq!(b.stats().queued, DEFAULT_CAPACITY);
        assert_eq!(a.stats().send_dropped, 5000 - DEFAULT_CAPACITY as u64);
    }

    #[test]
    fn wire_oversized_frame_is_an_error_not_a_truncation() {
        let (mut a, mut b) = Wire::pair();
        a.send(Instant::ZERO, &[1; 100]).unwrap();
        a.send(Instant::ZERO, &[2; 10]).unwrap();
        let mut small = [0u8; 50];
        let err = b.recv(Instant::ZERO, &mut small).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // The oversized frame is gone; the next one is intact.
        assert_eq!(b.recv(Instant::ZERO, &mut small).unwrap(), Some(10));
        assert_eq!(&small[..10], &[2; 10]);
        assert_eq!(b.stats().recv_oversized, 1);
    }

    #[test]
    fn wire_eventfd_is_readable_exactly_while_frames_wait() {
        let (mut a, mut b) = Wire::pair();
        let fd_b = b.readable_fd().expect("eventfd");
        let fd_a = a.readable_fd().expect("eventfd");
        assert_ne!(fd_a, fd_b);
        assert!(!is_readable(fd_b));
        a.send(Instant::ZERO, &[1]).unwrap();
        a.send(Instant::ZERO, &[2]).unwrap();
        assert!(is_readable(fd_b));
        assert!(!is_readable(fd_a));
        let mut buf = [0u8; 16];
        b.recv(Instant::ZERO, &mut buf).unwrap();
        assert!(is_readable(fd_b), "one frame still waits");
        b.recv(Instant::ZERO, &mut buf).unwrap();
        assert!(!is_readable(fd_b));
    }

    #[test]
    fn wire_end_can_move_to_another_thread() {
        let (mut a, mut b) = Wire::pair();
        let t = std::thread::spawn(move || {
            for i in 0..10u8 {
                b.send(Instant::ZERO, &[i]).unwrap();
            }
            b
        });
        let _b = t.join().unwrap();
        assert_eq!(recv_all(&mut a).len(), 10);
    }
}
