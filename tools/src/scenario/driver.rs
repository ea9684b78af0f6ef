//! The driver that both `record` and `replay` use: it steps the core, the
//! application and the device in one fixed order, so that a recording made
//! against the real clock can be reproduced on the virtual one.
//!
//! The rule that makes this work: every call into the core carries a time the
//! replay can know.
//! - A timer (the stack's `poll_at`, a script step's `at_ms`) runs at exactly
//!   its deadline, even when the real clock has gone past it.
//! - Frames are read, and stamped, at the time they are read, and only after
//!   every timer due by then has run ([`Driver::advance_live`]).
//! - Frames sent are stamped with the time of the call that made them.
//!
//! A recording's capture therefore holds the stack's own clock, and replaying
//! it (timers at their deadlines, the peer's frames at their stamps) makes the
//! same calls in the same order at the same times.

use super::app::App;
use stack::device::Device;
use stack::tcp::Transition;
use stack::time::{earliest, Instant};
use stack::Stack;
use std::io;

pub struct Driver<D: Device> {
    pub stack: Stack,
    pub app: App,
    pub dev: D,
    /// Every TCP state transition, with the time it happened.
    pub transitions: Vec<(Instant, Transition)>,
    buf: Vec<u8>,
}

/// Timers that fire at one instant are bounded, so a timer that does not move
/// its deadline on cannot hang the driver.
const MAX_TIMER_ROUNDS: usize = 10_000;

impl<D: Device> Driver<D> {
    pub fn new(stack: Stack, app: App, dev: D) -> Driver<D> {
        Driver { stack, app, dev, transitions: Vec::new(), buf: vec![0; 65536] }
    }

    /// Starts the stack (its gratuitous ARP) and the application at `now`.
    pub fn start(&mut self, now: Instant) -> io::Result<()> {
        self.stack.start(now);
        self.settle(now)
    }

    /// The earliest deadline of the stack and the application.
    pub fn timer_at(&self) -> Option<Instant> {
        earliest(self.stack.poll_at(), self.app.poll_at())
    }

    /// The earliest thing that will happen without a frame from a real device:
    /// a timer, or a frame the device holds (a replayed capture's next frame).
    pub fn next_event(&self) -> Option<Instant> {
        earliest(self.timer_at(), self.dev.poll_at())
    }

    /// Runs what is due at `now`: every timer due by then at its own deadline,
    /// in order, then every frame the device has, read at `now`.
    pub fn advance(&mut self, now: Instant) -> io::Result<()> {
        self.run_timers(now)?;
        self.receive(now)
    }

    /// [`Driver::advance`] against the real clock: each frame is read, and
    /// stamped, at the clock's reading just before it is read, after the
    /// timers due by then. (The replay then sees it at that stamp and runs the
    /// same timers before it.)
    pub fn advance_live(&mut self, clock: impl Fn() -> Instant) -> io::Result<()> {
        loop {
            let now = clock();
            self.run_timers(now)?;
            let Some(n) = self.dev.recv(now, &mut self.buf)? else { return Ok(()) };
            self.stack.receive(now, &self.buf[..n]);
            self.settle(now)?;
        }
    }

    fn run_timers(&mut self, until: Instant) -> io::Result<()> {
        for _ in 0..MAX_TIMER_ROUNDS {
            let Some(t) = self.timer_at().filter(|&t| t <= until) else { return Ok(()) };
            if self.stack.poll_at().is_some_and(|p| p <= t) {
                self.stack.poll(t);
            }
            self.settle(t)?;
        }
        Err(io::Error::other("a timer keeps firing without moving its deadline"))
    }

    fn receive(&mut self, now: Instant) -> io::Result<()> {
        while let Some(n) = self.dev.recv(now, &mut self.buf)? {
            self.stack.receive(now, &self.buf[..n]);
            self.settle(now)?;
        }
        Ok(())
    }

    /// Lets the application act on what just happened, then sends what the
    /// stack has to send and notes the state transitions.
    fn settle(&mut self, now: Instant) -> io::Result<()> {
        self.app.step(now, &mut self.stack);
        let dev = &mut self.dev;
        let mut result = Ok(());
        self.stack.transmit(|frame| {
            if result.is_ok() {
                result = dev.send(now, frame);
            }
        });
        let transitions = &mut self.transitions;
        self.stack.tcp().0.drain_transitions(|t| transitions.push((now, *t)));
        result
    }
}
