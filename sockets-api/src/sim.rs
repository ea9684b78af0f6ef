//! Two stacks with descriptor tables on a virtual wire, driven in virtual time:
//! the harness for testing socket semantics without threads, clocks or devices.
//!
//! Frames a stack transmits are handed to the other one when the harness runs
//! ([`Link::run`]); time moves only when told ([`Link::advance`]), running each
//! stack's timers at their deadlines on the way. The steps are those of
//! `stack::driver`, each stack on one end of the wire (a `Port`).

use crate::fd_table::FdTable;
use stack::device::Device;
use stack::driver::Driver;
use stack::{Config, Duration, Instant, MacAddr, Stack};
use std::collections::VecDeque;
use std::io;
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

/// One host's end of the wire, as the driver's device: what its stack sends
/// waits in `outbox` until [`Link::run`] carries it (through the filter) to the
/// other end's `inbox`, which the stack reads from.
#[derive(Debug, Default)]
struct Port {
    inbox: VecDeque<Vec<u8>>,
    outbox: VecDeque<Vec<u8>>,
}

impl Device for Port {
    fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.inbox.pop_front().map(|f| {
            buf[..f.len()].copy_from_slice(&f);
            f.len()
        }))
    }

    fn send(&mut self, _now: Instant, frame: &[u8]) -> io::Result<()> {
        self.outbox.push_back(frame.to_vec());
        Ok(())
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
    /// The ends of the wire: a's and b's.
    ports: (Port, Port),
    driver: Driver,
}

/// Address of host a in [`Link::new`]'s default setup.
pub const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// Address of host b.
pub const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// The sim's ports never fail.
const PORTS_DO_NOT_FAIL: &str = "an in-memory port does not fail";

impl Link {
    /// Hosts a (10.0.0.1) and b (10.0.0.2) on 10.0.0.0/24, started at time 0.
    pub fn new() -> Link {
        let ca = Config { seed: 1, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), A_IP, 24) };
        let cb = Config { seed: 2, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), B_IP, 24) };
        Link::with(ca, cb)
    }

    pub fn with(a: Config, b: Config) -> Link {
        let mut link = Link {
            a: Host::new(a),
            b: Host::new(b),
            now: Instant::ZERO,
            carried: (0, 0),
            filter: None,
            ports: (Port::default(), Port::default()),
            driver: Driver::new(),
        };
        let now = link.now;
        Driver::start(&mut link.a.stack, &mut link.ports.0, &mut (), now).expect(PORTS_DO_NOT_FAIL);
        Driver::start(&mut link.b.stack, &mut link.ports.1, &mut (), now).expect(PORTS_DO_NOT_FAIL);
        link.run();
        link
    }

    /// Carries frames both ways until neither stack has any left to send.
    /// Panics if they keep answering each other for 10000 rounds.
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for from_a in [true, false] {
                let (src, dst, src_port, dst_port) = if from_a {
                    (&mut self.a, &mut self.b, &mut self.ports.0, &mut self.ports.1)
                } else {
                    (&mut self.b, &mut self.a, &mut self.ports.1, &mut self.ports.0)
                };
                Driver::transmit(&mut src.stack, src_port, self.now).expect(PORTS_DO_NOT_FAIL);
                for f in src_port.outbox.drain(..) {
                    moved = true;
                    if self.filter.is_some_and(|keep| !keep(from_a, &f)) {
                        continue;
                    }
                    if from_a {
                        self.carried.0 += 1;
                    } else {
                        self.carried.1 += 1;
                    }
                    dst_port.inbox.push_back(f);
                }
                // What dst answers waits in its outbox for its own turn.
                self.driver.receive(&mut dst.stack, dst_port, &mut (), self.now, usize::MAX).expect(PORTS_DO_NOT_FAIL);
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
                    // One instant for both stacks: each runs what is due at it,
                    // and the frames are carried before either runs more.
                    self.now = self.now.max(t);
                    Driver::run_due(&mut self.a.stack, &mut self.ports.0, self.now).expect(PORTS_DO_NOT_FAIL);
                    Driver::run_due(&mut self.b.stack, &mut self.ports.1, self.now).expect(PORTS_DO_NOT_FAIL);
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
