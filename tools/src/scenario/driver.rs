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
//!
//! The steps themselves (timers at their deadlines, frames read at a time,
//! sending after every call) are `stack::driver`'s, the loop the sockets
//! runtime and the sim run too; this file adds the application beside the stack.

use super::app::App;
use stack::device::Device;
use stack::driver::{Driver as Loop, Hook};
use stack::tcp::Transition;
use stack::time::{earliest, Instant};
use stack::Stack;
use std::io;

/// The steps are `stack::driver`'s; this adds the application and the record of
/// transitions, stepped after every call into the core at that call's time.
pub struct Driver<D: Device> {
    pub stack: Stack,
    pub app: App,
    pub dev: D,
    /// Every TCP state transition, with the time it happened.
    pub transitions: Vec<(Instant, Transition)>,
    steps: Loop,
}

/// What runs beside the stack here: the application, and the note of each
/// state transition with the time of the call that caused it.
struct Beside<'a> {
    app: &'a mut App,
    transitions: &'a mut Vec<(Instant, Transition)>,
}

impl Hook for Beside<'_> {
    fn poll_at(&self) -> Option<Instant> {
        self.app.poll_at()
    }

    /// Lets the application act on what just happened and notes the state
    /// transitions (sending, which follows, changes no state).
    fn step(&mut self, now: Instant, stack: &mut Stack) {
        self.app.step(now, stack);
        let transitions = &mut *self.transitions;
        stack.tcp().0.drain_transitions(|t| transitions.push((now, *t)));
    }
}

impl<D: Device> Driver<D> {
    pub fn new(stack: Stack, app: App, dev: D) -> Driver<D> {
        Driver { stack, app, dev, transitions: Vec::new(), steps: Loop::new() }
    }

    /// The loop, the stack, the device and the hook, borrowed apart for one step.
    fn parts(&mut self) -> (&mut Loop, &mut Stack, &mut D, Beside<'_>) {
        let hook = Beside { app: &mut self.app, transitions: &mut self.transitions };
        (&mut self.steps, &mut self.stack, &mut self.dev, hook)
    }

    /// Starts the stack (its gratuitous ARP) and the application at `now`.
    pub fn start(&mut self, now: Instant) -> io::Result<()> {
        let (_, stack, dev, mut hook) = self.parts();
        Loop::start(stack, dev, &mut hook, now)
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
        let (steps, stack, dev, mut hook) = self.parts();
        steps.receive(stack, dev, &mut hook, now, usize::MAX).map(|_| ())
    }

    /// [`Driver::advance`] against the real clock: each frame is read, and
    /// stamped, at the clock's reading just before it is read, after the
    /// timers due by then. (The replay then sees it at that stamp and runs the
    /// same timers before it.)
    pub fn advance_live(&mut self, clock: impl Fn() -> Instant) -> io::Result<()> {
        loop {
            let now = clock();
            self.run_timers(now)?;
            let (steps, stack, dev, mut hook) = self.parts();
            if steps.receive(stack, dev, &mut hook, now, 1)? == 0 {
                return Ok(());
            }
        }
    }

    fn run_timers(&mut self, until: Instant) -> io::Result<()> {
        let (_, stack, dev, mut hook) = self.parts();
        Loop::run_timers(stack, dev, &mut hook, until)
    }
}
