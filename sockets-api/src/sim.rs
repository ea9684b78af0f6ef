//! Two stacks with descriptor tables on a virtual wire, driven in virtual time: the
//! harness for testing socket semantics without threads, clocks or devices.
//!
//! Frames a stack transmits are handed to the other one when the harness runs
//! ([`Link::run`]); time moves only when told ([`Link::advance`]), running each
//! stack's timers at their deadlines on the way.

use crate::fd_table::FdTable;
use stack::{Config, Duration, Instant, MacAddr, Stack};
use std::net::Ipv4Addr;

/// One host: a stack and its socket descriptors.
#[derive(Debug)]
pub struct Host {
    pub stack: Stack,
    pub sockets: FdTable,
}

impl Host {
    pub fn new(config: Config) -> Host {
        Host { stack: Stack::new(config).expect("a valid configuration"), sockets: FdTable::new() }
    }
}

/// Two hosts on one wire.
#[derive(Debug)]
pub struct Link {
    pub a: Host,
    pub b: Host,
    pub now: Instant,
    /// Frames carried from a to b and from b to a so far.
    pub carried: (u64, u64),
    /// When set, frames are offered to it and carried only if it returns true
    /// (`true` for a frame from a).
    pub filter: Option<fn(bool, &[u8]) -> bool>,
}

/// Address of host a in [`Link::new`]'s default setup.
pub const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// Address of host b.
pub const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

impl Link {
    /// Hosts a (10.0.0.1) and b (10.0.0.2) on 10.0.0.0/24, started at time 0.
    pub fn new() -> Link {
        let ca = Config { seed: 1, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), A_IP, 24) };
        let cb = Config { seed: 2, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), B_IP, 24) };
        Link::with(ca, cb)
    }

    pub fn with(a: Config, b: Config) -> Link {
        let mut link = Link { a: Host::new(a), b: Host::new(b), now: Instant::ZERO, carried: (0, 0), filter: None };
        link.a.stack.start(link.now);
        link.b.stack.start(link.now);
        link.run();
        link
    }

    /// Carries frames both ways until neither stack has any left to send.
    /// Panics if they keep answering each other for 10000 rounds.
    pub fn run(&mut self) {
        let mut frames = Vec::new();
        for _ in 0..10_000 {
            let mut moved = false;
            for from_a in [true, false] {
                let (src, dst) = if from_a { (&mut self.a, &mut self.b) } else { (&mut self.b, &mut self.a) };
                src.stack.transmit(|f| frames.push(f.to_vec()));
                for f in frames.drain(..) {
                    moved = true;
                    if self.filter.is_some_and(|keep| !keep(from_a, &f)) {
                        continue;
                    }
                    if from_a {
                        self.carried.0 += 1;
                    } else {
                        self.carried.1 += 1;
                    }
                    dst.stack.receive(self.now, &f);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the stacks never went quiet");
    }

    /// Moves time forward by `d`, running each stack's timers at their deadlines
    /// and carrying frames after each step.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.run();
            let next = stack::time::earliest(self.a.stack.poll_at(), self.b.stack.poll_at());
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    for h in [&mut self.a, &mut self.b] {
                        if h.stack.poll_at().is_some_and(|t| t <= self.now) {
                            h.stack.poll(self.now);
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = end;
        self.run();
    }
}

/// Two stacks in real time instead: runtimes a (10.0.0.1, seeded `seeds.0`) and
/// b (10.0.0.2, `seeds.1`) on an in-memory [`stack::device::wire::Wire`], for
/// tests of the blocking calls and of anything that needs a running [`crate::Net`].
pub fn runtime_pair(seeds: (u64, u64)) -> (crate::Runtime, crate::Runtime) {
    let (wa, wb) = stack::device::wire::Wire::pair();
    let ca = Config { seed: seeds.0, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), A_IP, 24) };
    let cb = Config { seed: seeds.1, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), B_IP, 24) };
    let start =
        |c, w| crate::Runtime::start(Stack::new(c).expect("a valid configuration"), w).expect("a runtime thread");
    (start(ca, wa), start(cb, wb))
}

impl Default for Link {
    fn default() -> Link {
        Link::new()
    }
}
