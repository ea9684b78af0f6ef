//! The driver loop, written once: the steps that move frames and time between a
//! [`Stack`] and a [`Device`], for every program that runs the core (the
//! sockets runtime's thread, the two-stack simulation in virtual time, and the
//! scenario driver that records and replays captures).
//!
//! It is sans-IO like the rest of the core: it never reads a clock and never
//! sleeps. The caller says what time it is and decides when to call again
//! ([`Driver::next_deadline`]); the device does the I/O.
//!
//! The steps, and the rule each keeps:
//! - [`Driver::run_timers`]: every timer due by a time runs at exactly its own
//!   deadline, in order, even when the caller's clock has gone past it (what a
//!   replay needs to make the same calls at the same times).
//! - [`Driver::run_due`]: the timers due by now run once, at now (for a caller
//!   whose other calls into the stack already carry the real clock, so that the
//!   stack's time never goes back to a past deadline).
//! - [`Driver::receive`]: frames are read, and stamped, at the time given.
//! - After every call into the core (a frame, a timer, the start), the [`Hook`]
//!   is stepped and everything the stack queued is sent, stamped with the time
//!   of that call, so that a burst is answered as it comes and never piles up in
//!   the transmit queue.
//! - The loopback needs no device: datagrams the stack sends to itself wait in
//!   the core, whose deadline ([`Stack::poll_at`]) is then the time they were
//!   sent, so the next step (a timer round, [`Driver::run_due`],
//!   [`Driver::feed`]) delivers them in [`Stack::poll`]. Once delivered they are
//!   shown to the device with [`Device::loopback`] (a pcap recorder writes them
//!   down; a TAP sends nothing), alongside the frames sent.
//!
//! The driver owns one receive buffer, allocated once and reused for every frame.

use crate::device::Device;
use crate::offload::{RxOffload, TxOffload, MAX_GSO_FRAME};
use crate::time::{earliest, Instant};
use crate::Stack;
use std::io;

/// What runs beside the stack at the driver's instants (an application that is
/// stepped by the driver rather than by threads, say). `()` is the empty one.
pub trait Hook {
    /// The earliest deadline of the hook's own timers; [`Driver::run_timers`]
    /// runs it alongside the stack's.
    fn poll_at(&self) -> Option<Instant> {
        None
    }

    /// Called at `now` after every call into the core, before what the stack
    /// has queued is sent.
    fn step(&mut self, _now: Instant, _stack: &mut Stack) {}
}

impl Hook for () {}

/// Timers that fire at one instant are bounded, so a timer that does not move
/// its deadline on cannot hang the driver.
pub const MAX_TIMER_ROUNDS: usize = 10_000;

/// Rounds of [`Stack::poll`] one [`Driver::feed`] runs while the stack stays due
/// (the loopback's exchanges: a segment, its answer, the answer to that...),
/// so that a runtime does not go round its sleep for each, yet lets go of its
/// lock after a bounded time.
pub const FEED_ROUNDS: usize = 16;

/// The receive buffer's size: the largest frame any device hands over (a GSO
/// segment from an offloading TAP).
const RX_BUFFER: usize = MAX_GSO_FRAME;

/// The driver loop's state: only its receive buffer. The stack, the device and
/// the hook are the caller's, passed to each step, so a caller may keep the
/// stack behind a lock and the device on its own thread.
#[derive(Debug)]
pub struct Driver {
    buf: Vec<u8>,
}

impl Default for Driver {
    fn default() -> Driver {
        Driver::new()
    }
}

impl Driver {
    pub fn new() -> Driver {
        Driver { buf: vec![0; RX_BUFFER] }
    }

    /// Starts the stack (its gratuitous ARP) at `now`, steps the hook and sends.
    pub fn start<D: Device, H: Hook>(stack: &mut Stack, dev: &mut D, hook: &mut H, now: Instant) -> io::Result<()> {
        stack.start(now);
        settle(stack, dev, hook, now)
    }

    /// The earliest time at which something happens without a new frame from
    /// the outside: a timer of the stack or the hook, or a frame the device holds
    /// back (a delayed frame, a replayed capture's next frame).
    pub fn next_deadline<D: Device, H: Hook>(stack: &Stack, dev: &D, hook: &H) -> Option<Instant> {
        earliest(earliest(stack.poll_at(), hook.poll_at()), dev.poll_at())
    }

    /// Runs every timer of the stack and the hook due by `until`, each at its own
    /// deadline and in deadline order; after each, the hook steps and the stack's
    /// frames are sent stamped with that deadline.
    ///
    /// Errors: the device's; and an error after [`MAX_TIMER_ROUNDS`] timers at
    /// one call, which only a timer that never moves its deadline causes.
    pub fn run_timers<D: Device, H: Hook>(
        stack: &mut Stack,
        dev: &mut D,
        hook: &mut H,
        until: Instant,
    ) -> io::Result<()> {
        for _ in 0..MAX_TIMER_ROUNDS {
            let due = earliest(stack.poll_at(), hook.poll_at()).filter(|&t| t <= until);
            let Some(t) = due else { return Ok(()) };
            if stack.poll_at().is_some_and(|p| p <= t) {
                stack.poll(t);
            }
            settle(stack, dev, hook, t)?;
        }
        Err(io::Error::other("a timer keeps firing without moving its deadline"))
    }

    /// Runs the stack's timers due by `now` in one call at `now` (none: nothing
    /// happens but the send), then sends what the stack has, stamped `now`.
    pub fn run_due<D: Device>(stack: &mut Stack, dev: &mut D, now: Instant) -> io::Result<()> {
        if stack.poll_at().is_some_and(|t| t <= now) {
            stack.poll(now);
        }
        transmit(stack, dev, now)
    }

    /// Reads up to `max` frames the device has at `now` into the stack, each
    /// stamped `now`; after each, the hook steps and the stack's frames are sent.
    /// Returns how many frames were read.
    pub fn receive<D: Device, H: Hook>(
        &mut self,
        stack: &mut Stack,
        dev: &mut D,
        hook: &mut H,
        now: Instant,
        max: usize,
    ) -> io::Result<usize> {
        let mut n = 0;
        while n < max {
            let Some((len, rx)) = dev.recv_offloaded(now, &mut self.buf)? else { break };
            stack.receive_owned(now, &mut self.buf, len, rx);
            settle(stack, dev, hook, now)?;
            n += 1;
        }
        Ok(n)
    }

    /// Sends every frame the stack has queued, stamped `now`, oldest first.
    pub fn transmit<D: Device>(stack: &mut Stack, dev: &mut D, now: Instant) -> io::Result<()> {
        transmit(stack, dev, now)
    }
}

/// Frames held outside the stack between a device and the core, so that a
/// runtime can do the device's system calls without holding the lock that
/// guards the stack: frames read from the device are fed to the stack later
/// ([`Driver::feed`]); frames the stack queued are taken out under the lock
/// (their buffers swapped with the batch's, [`FrameBatch::take_transmit`])
/// and written after it ([`FrameBatch::send`]).
/// Buffers are kept and reused: no allocation per frame once warmed up.
#[derive(Debug, Default)]
pub struct FrameBatch {
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
    /// For each frame: whether it went round the stack's loopback (shown to
    /// the device with [`Device::loopback`] rather than sent).
    looped: Vec<bool>,
    /// What the device said about each frame read ([`FrameBatch::recv`]).
    offloads: Vec<RxOffload>,
    /// What each frame the stack queued asks of the link ([`FrameBatch::take_transmit`]).
    tx_offloads: Vec<TxOffload>,
    /// The most frames held at once in the last [`SHRINK_ROUNDS`] batches, and
    /// how many batches that is so far: see [`FrameBatch::clear`].
    most: usize,
    rounds: u32,
}

/// A batch's buffers (up to 64 KiB each: a flood's full batches left 4 MB)
/// are given back when, over this many batches, at most a quarter of them
/// were used: to twice what was. A steady load keeps its buffers (no
/// allocation per frame); a burst regrows them once.
const SHRINK_ROUNDS: u32 = 32;
/// Buffers always kept.
const KEPT_BUFFERS: usize = 4;

impl FrameBatch {
    pub fn new() -> FrameBatch {
        FrameBatch::default()
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// The next free buffer, `size` bytes long at least.
    fn next_buf(&mut self, size: usize) -> &mut Vec<u8> {
        let n = self.lens.len();
        if n == self.bufs.len() {
            self.bufs.push(Vec::new());
        }
        let b = &mut self.bufs[n];
        if b.len() < size {
            b.resize(size, 0);
        }
        b
    }

    /// Copies `frame` in.
    pub fn push(&mut self, frame: &[u8]) {
        self.push_as(frame, false, TxOffload::NONE);
    }

    fn push_as(&mut self, frame: &[u8], looped: bool, tx: TxOffload) {
        let b = self.next_buf(frame.len());
        b[..frame.len()].copy_from_slice(frame);
        self.lens.push(frame.len());
        self.looped.push(looped);
        self.offloads.push(RxOffload::NONE);
        self.tx_offloads.push(tx);
    }

    /// The frames, oldest first.
    pub fn frames(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.bufs.iter().zip(&self.lens).map(|(b, &l)| &b[..l])
    }

    /// The frames with what the device said about each, oldest first.
    pub fn frames_offloaded(&self) -> impl Iterator<Item = (&[u8], RxOffload)> + '_ {
        self.frames().zip(self.offloads.iter().copied())
    }

    /// The frames with what each asks of the link, oldest first (for a link in
    /// memory that hands them over as they are: see [`TxOffload::as_received`]).
    pub fn frames_to_send(&self) -> impl Iterator<Item = (&[u8], TxOffload)> + '_ {
        self.frames().zip(self.tx_offloads.iter().copied())
    }

    /// Whether buffers beyond the few always kept are held (see [`FrameBatch::trim`]).
    pub fn has_spare(&self) -> bool {
        self.bufs.len() > KEPT_BUFFERS
    }

    /// Gives back every buffer beyond the few always kept: for a runtime that
    /// has been idle a while, when no batch comes to shrink them in
    /// [`FrameBatch::clear`] (a burst's last batch, then silence).
    pub fn trim(&mut self) {
        if self.is_empty() && self.has_spare() {
            self.bufs.truncate(KEPT_BUFFERS);
            self.bufs.shrink_to_fit();
            (self.most, self.rounds) = (0, 0);
        }
    }

    pub fn clear(&mut self) {
        self.most = self.most.max(self.lens.len());
        self.rounds += 1;
        if self.rounds >= SHRINK_ROUNDS {
            if self.bufs.len() > KEPT_BUFFERS && self.most * 4 < self.bufs.len() {
                self.bufs.truncate((self.most * 2).max(KEPT_BUFFERS));
                self.bufs.shrink_to_fit();
            }
            (self.most, self.rounds) = (0, 0);
        }
        self.lens.clear();
        self.looped.clear();
        self.offloads.clear();
        self.tx_offloads.clear();
    }

    /// Reads up to `max` frames the device has at `now` (no stack involved).
    /// Returns how many.
    pub fn recv<D: Device>(&mut self, dev: &mut D, now: Instant, max: usize) -> io::Result<usize> {
        let mut n = 0;
        while n < max {
            let b = self.next_buf(RX_BUFFER);
            let Some((len, rx)) = dev.recv_offloaded(now, b)? else { break };
            self.lens.push(len);
            self.looped.push(false);
            self.offloads.push(rx);
            self.tx_offloads.push(TxOffload::NONE);
            n += 1;
        }
        Ok(n)
    }

    /// Takes out every frame the stack has queued (under the caller's lock; see
    /// [`FrameBatch::push_buffer`]), and copies those it delivered round its
    /// loopback (for [`Device::loopback`]).
    /// Returns how many frames are for the link.
    pub fn take_transmit(&mut self, stack: &mut Stack) -> usize {
        stack.transmit_looped(|f| self.push_as(f, true, TxOffload::NONE));
        stack.transmit_buffers(|f, tx| self.push_buffer(f, tx))
    }

    /// Keeps a frame the stack queued by taking its buffer, leaving in its
    /// place the one this slot held (the stack's pool keeps it): a copy saved,
    /// of up to 64 KiB for a GSO segment (and of every frame on a plain link:
    /// 14% of the runtime thread's time was copies, this one among them,
    /// while it sent). A frame-sized one whose slot holds a large buffer is
    /// copied instead, so that a buffer goes back to the pool of the size the
    /// stack took one from, and neither side allocates once warmed up.
    fn push_buffer(&mut self, frame: &mut Vec<u8>, tx: TxOffload) {
        use crate::buffer::MAX_MTU_FRAME;
        let n = self.lens.len();
        let slot_large = self.bufs.get(n).is_some_and(|b| b.capacity() > MAX_MTU_FRAME);
        if frame.capacity() <= MAX_MTU_FRAME && slot_large {
            return self.push_as(frame, false, tx);
        }
        if n == self.bufs.len() {
            self.bufs.push(Vec::new());
        }
        std::mem::swap(&mut self.bufs[n], frame);
        self.lens.push(self.bufs[n].len());
        self.looped.push(false);
        self.offloads.push(RxOffload::NONE);
        self.tx_offloads.push(tx);
    }

    /// Hands every frame held to `stack`, as a link in memory would that gives
    /// each what it asked of the link ([`TxOffload::as_received`]), letting
    /// the stack keep their buffers ([`Stack::receive_owned`]); empties the
    /// batch. Frames that went round the sender's loopback are not the link's.
    pub fn deliver(&mut self, stack: &mut Stack, now: Instant) {
        for i in (0..self.lens.len()).filter(|&i| !self.looped[i]) {
            let rx = self.tx_offloads[i].as_received();
            stack.receive_owned(now, &mut self.bufs[i], self.lens[i], rx);
        }
        self.clear();
    }

    /// Writes every frame held to the device, stamped `now` (the loopback's with
    /// [`Device::loopback`]), and empties the batch. After a send fails the rest
    /// are dropped and the first error returned.
    pub fn send<D: Device>(&mut self, dev: &mut D, now: Instant) -> io::Result<()> {
        let mut result = Ok(());
        let frames = self.bufs.iter().zip(&self.lens).zip(&self.looped).zip(&self.tx_offloads);
        for (((b, &l), &looped), &tx) in frames {
            if result.is_ok() {
                result = match looped {
                    true => dev.loopback(now, &b[..l]),
                    false => dev.send_offloaded(now, &b[..l], tx),
                };
            }
        }
        self.clear();
        result
    }
}

impl Driver {
    /// Feeds the frames of `rx` to the stack at `now` as one batch
    /// ([`Stack::begin_batch`]), and after each copies what the stack queued
    /// into `tx` (a burst is answered in order), then the ACKs the batch held
    /// back; then runs
    /// the timers due by `now` at `now` (as [`Driver::run_due`]), again while the
    /// stack stays due (the loopback's rounds), at most [`FEED_ROUNDS`] times.
    /// For a runtime that reads and writes the device outside its lock.
    pub fn feed(stack: &mut Stack, rx: &mut FrameBatch, tx: &mut FrameBatch, now: Instant) {
        // One batch: the frames were read together (stretch ACKs, Stack::begin_batch).
        stack.begin_batch();
        for i in 0..rx.lens.len() {
            // The stack may keep a frame's buffer (Stack::receive_owned) and
            // leave a spare one in its slot.
            stack.receive_owned(now, &mut rx.bufs[i], rx.lens[i], rx.offloads[i]);
            tx.take_transmit(stack);
        }
        stack.end_batch(now);
        rx.clear();
        for _ in 0..FEED_ROUNDS {
            if stack.poll_at().is_none_or(|t| t > now) {
                break;
            }
            stack.poll(now);
            tx.take_transmit(stack);
        }
        tx.take_transmit(stack);
    }
}

/// What follows every call into the core: the hook steps, then the stack's
/// frames go out.
fn settle<D: Device, H: Hook>(stack: &mut Stack, dev: &mut D, hook: &mut H, now: Instant) -> io::Result<()> {
    hook.step(now, stack);
    transmit(stack, dev, now)
}

/// Shows the device the frames delivered round the loopback, then hands it
/// every queued frame. After a send fails the rest are still taken from the
/// queue (and lost), and the first error is returned: a device that fails is
/// about to stop the caller anyway.
fn transmit<D: Device>(stack: &mut Stack, dev: &mut D, now: Instant) -> io::Result<()> {
    let mut result = Ok(());
    stack.transmit_looped(|frame| {
        if result.is_ok() {
            result = dev.loopback(now, frame);
        }
    });
    stack.transmit_offloaded(|frame, tx| {
        if result.is_ok() {
            result = dev.send_offloaded(now, frame, tx);
        }
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_s_buffers_go_back_once_batches_are_small_again() {
        let mut b = FrameBatch::new();
        let burst = |b: &mut FrameBatch, n: usize| {
            (0..n).for_each(|_| b.push(&[1; 60]));
            b.clear();
        };
        burst(&mut b, 64);
        assert_eq!(b.bufs.len(), 64);
        // A steady load of full batches keeps them all.
        (0..3 * SHRINK_ROUNDS).for_each(|_| burst(&mut b, 64));
        assert_eq!(b.bufs.len(), 64);
        // Batches of 3 for a while: kept to twice that.
        (0..2 * SHRINK_ROUNDS).for_each(|_| burst(&mut b, 3));
        assert_eq!(b.bufs.len(), 6);
        // Then nothing at all: the few always kept.
        (0..2 * SHRINK_ROUNDS).for_each(|_| burst(&mut b, 0));
        assert_eq!(b.bufs.len(), KEPT_BUFFERS);
        // A quarter or more used: nothing changes.
        burst(&mut b, 1);
        (0..2 * SHRINK_ROUNDS).for_each(|_| burst(&mut b, 1));
        assert_eq!(b.bufs.len(), KEPT_BUFFERS);
    }

    #[test]
    fn an_idle_runtime_trims_a_burst_s_buffers_with_no_batch_after_it() {
        // The last batch of a burst, then silence: no batch comes to shrink
        // them, so the runtime trims after a quiet while.
        let mut b = FrameBatch::new();
        (0..64).for_each(|_| b.push(&[1; 1514]));
        b.trim();
        assert_eq!(b.bufs.len(), 64, "frames held: nothing is trimmed under them");
        b.clear();
        assert!(b.has_spare());
        b.trim();
        assert_eq!(b.bufs.len(), KEPT_BUFFERS);
        assert!(!b.has_spare());
    }
}
