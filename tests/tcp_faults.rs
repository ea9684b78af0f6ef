//! TCP between two tapstacks through the project's own devices: an in-memory
//! `Wire` with a seeded `FaultInjector` on each end that drops, duplicates,
//! reorders and corrupts frames. In virtual time; each seed is a reproducible run.
//! A megabyte must arrive intact, in order, and both sides must close cleanly.

use stack::device::fault::{FaultConfig, FaultInjector};
use stack::device::wire::{Wire, WireEnd};
use stack::device::Device;
use stack::tcp::{State, TcpError};
use stack::{Config, DropReason, Duration, Instant, MacAddr, Stack};
use std::net::{Ipv4Addr, SocketAddrV4};

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SIZE: usize = 1 << 20;
/// Virtual time allowed for the whole exchange: far more than it needs, so a
/// hang fails the test instead of spinning forever.
const DEADLINE: Duration = Duration::from_secs(600);

fn stack(ip: Ipv4Addr, seed: u64) -> Stack {
    let mut c = Config::new(MacAddr([2, 0, 0, 0, 0, ip.octets()[3]]), ip, 24);
    c.seed = seed;
    Stack::new(c).unwrap()
}

/// Moves frames between a stack and its device and runs due timers. Returns how
/// many frames moved.
fn pump(s: &mut Stack, dev: &mut FaultInjector<WireEnd>, now: Instant, buf: &mut [u8]) -> usize {
    let mut moved = 0;
    while let Some(n) = dev.recv(now, buf).unwrap() {
        s.receive(now, &buf[..n]);
        moved += 1;
    }
    if s.poll_at().is_some_and(|t| t <= now) {
        s.poll(now);
    }
    moved + s.transmit(|f| dev.send(now, f).unwrap())
}

/// The wire's propagation delay: while frames move, time advances by this much.
const HOP: Duration = Duration::from_micros(100);

/// Drops that a flipped bit past the Ethernet header lands in: IPv4 validation
/// (RFC 791 header checksum and the fields checked before it) and the TCP checksum.
const CORRUPTION_CAUGHT: &[DropReason] = &[
    DropReason::IpTruncated,
    DropReason::IpBadVersion,
    DropReason::IpBadHeaderLength,
    DropReason::IpBadTotalLength,
    DropReason::IpBadChecksum,
    DropReason::TcpBadChecksum,
];

/// Runs one transfer; returns (frames corrupted, frames dropped as corrupt).
fn transfer(seed: u64, faults: &str) -> (u64, u64) {
    let cfg = |side: u64| FaultConfig::parse(&format!("{faults},seed={}", seed * 2 + side)).unwrap();
    let (wa, wb) = Wire::pair();
    let (mut da, mut db) = (FaultInjector::new(wa, cfg(0)), FaultInjector::new(wb, cfg(1)));
    let (mut a, mut b) = (stack(A, seed), stack(B, seed + 1000));
    let data: Vec<u8> = (0..SIZE).map(|i| (i as u64 * 2654435761 % 251) as u8).collect();
    let mut now = Instant::from_secs(1);
    let lid = {
        let (tcp, net) = b.tcp();
        tcp.listen(net, SocketAddrV4::new(B, 5000), 4).unwrap()
    };
    let cid = {
        let (tcp, net) = a.tcp();
        tcp.connect(now, net, None, SocketAddrV4::new(B, 5000)).unwrap()
    };
    let (mut sid, mut sent, mut got, mut closed) = (None, 0usize, Vec::with_capacity(SIZE), false);
    let mut buf = vec![0u8; 2048];
    let mut rbuf = vec![0u8; 65536];
    let start = now;
    loop {
        assert!(now - start < DEADLINE, "seed {seed}: stuck after {sent} sent, {} received", got.len());
        let moved = pump(&mut a, &mut da, now, &mut buf) + pump(&mut b, &mut db, now, &mut buf);
        // A writes what fits, then closes once all is queued.
        {
            let (tcp, net) = a.tcp();
            if sent < SIZE && tcp.state(cid) == Ok(State::Established) {
                match tcp.send(now, net, cid, &data[sent..]) {
                    Ok(n) => sent += n,
                    Err(TcpError::WouldBlock) => {}
                    Err(e) => panic!("seed {seed}: send: {e:?}"),
                }
            }
            if sent == SIZE && !closed {
                tcp.close(now, net, cid).unwrap();
                closed = true;
            }
        }
        // B accepts, reads everything, and closes at EOF.
        {
            let (tcp, net) = b.tcp();
            if sid.is_none() {
                sid = tcp.accept(lid).unwrap().map(|(id, _)| id);
            }
            if let Some(id) = sid {
                loop {
                    match tcp.recv(now, net, id, &mut rbuf, false) {
                        Ok(0) => {
                            tcp.close(now, net, id).unwrap();
                            break;
                        }
                        Ok(n) => got.extend_from_slice(&rbuf[..n]),
                        Err(TcpError::WouldBlock) => break,
                        Err(TcpError::NotConnected) => break,
                        Err(e) => panic!("seed {seed}: recv: {e:?}"),
                    }
                }
            }
        }
        let a_done = matches!(a.tcp().0.state(cid), Ok(State::TimeWait) | Ok(State::Closed) | Err(_));
        let b_done = sid.is_some_and(|id| matches!(b.tcp().0.state(id), Ok(State::Closed) | Err(_)));
        if a_done && b_done && got.len() == SIZE {
            break;
        }
        // Frames in flight arrive one hop later; an idle wire waits for the
        // earliest timer of either stack or device.
        let next = [a.poll_at(), b.poll_at(), da.poll_at(), db.poll_at()].into_iter().flatten().min();
        now = if moved > 0 || a.has_transmit() || b.has_transmit() {
            now + HOP
        } else {
            next.map_or(now + Duration::from_millis(1), |t| t.max(now + HOP))
        };
    }
    assert!(got == data, "seed {seed}: {} bytes arrived but they differ from what was sent", got.len());
    let (fa, fb) = (da.counters(), db.counters());
    assert!(fa.dropped + fb.dropped > 0, "seed {seed}: the injector must have dropped something");
    let caught = |s: &Stack| CORRUPTION_CAUGHT.iter().map(|r| s.counters().drops.get(*r)).sum::<u64>();
    (fa.corrupted + fb.corrupted, caught(&a) + caught(&b))
}

#[test]
fn a_megabyte_survives_loss_duplication_reordering_and_corruption() {
    let (mut corrupted, mut caught) = (0, 0);
    for seed in 1..=12 {
        let (c, d) = transfer(seed, "drop=0.03,dup=0.01,reorder=0.03,corrupt=0.01");
        corrupted += c;
        caught += d;
    }
    eprintln!("{corrupted} frames corrupted, {caught} dropped as corrupt");
    // A flipped bit in an ARP frame (no checksum) may go unnoticed; nearly every
    // other one must be caught by a checksum or a header check.
    assert!(corrupted > 100, "the injector must corrupt frames for this to mean anything");
    assert!(caught * 10 >= corrupted * 9, "only {caught} of {corrupted} corrupted frames were caught");
}

#[test]
fn a_megabyte_survives_heavy_loss() {
    for seed in 100..=103 {
        assert_eq!(transfer(seed, "drop=0.10"), (0, 0), "nothing corrupted, nothing dropped as corrupt");
    }
}
