//! Bad input loses nothing and breaks nothing (principle 4): arbitrary and
//! mutated frames never panic the stack, and every frame ends in exactly one
//! outcome, each drop counted under exactly one reason. Virtual time, seeded.

use etherparse::ArpOperation;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use stack::{Config, Instant, MacAddr, RxOutcome, Stack};
use std::net::Ipv4Addr;
use tapstack_tests::frames;

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const US_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn stack() -> Stack {
    let mut c = Config::new(MacAddr(US_MAC), US, 24);
    c.seed = 7;
    Stack::new(c).unwrap()
}

/// Valid frames of every kind we parse, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let big = frames::echo_request(PEER_MAC, US_MAC, PEER, US, 1, 1, &[0x5a; 3000]);
    let mut v = vec![
        frames::echo_request(PEER_MAC, US_MAC, PEER, US, 1, 1, b"ping"),
        frames::udp(PEER_MAC, US_MAC, PEER, US, 5000, 7, b"hello"),
        frames::arp(ArpOperation::REQUEST, PEER_MAC, frames::BROADCAST, (PEER_MAC, PEER), ([0; 6], US)),
        frames::arp(ArpOperation::REPLY, PEER_MAC, US_MAC, (PEER_MAC, PEER), (US_MAC, US)),
    ];
    v.extend(frames::fragment(&big, 1500));
    v
}

/// Feeds one frame and checks the accounting: exactly one outcome, and the
/// counters moved by exactly that outcome.
fn feed_and_check(stack: &mut Stack, now: Instant, frame: &[u8]) {
    let before = stack.counters().clone();
    let outcome = stack.receive(now, frame);
    let after = stack.counters();
    assert_eq!(after.link.rx_frames, before.link.rx_frames + 1);
    let (d, h, x) = (
        after.link.rx_delivered - before.link.rx_delivered,
        after.link.rx_held - before.link.rx_held,
        after.link.rx_dropped - before.link.rx_dropped,
    );
    match outcome {
        RxOutcome::Delivered => assert_eq!((d, h, x), (1, 0, 0)),
        RxOutcome::Held => assert_eq!((d, h, x), (0, 1, 0)),
        RxOutcome::Dropped(reason) => {
            assert_eq!((d, h, x), (0, 0, 1));
            assert!(after.drops.get(reason) > before.drops.get(reason), "{reason:?} was not counted");
        }
    }
    // Whatever the stack answers must leave it as well-formed frames.
    stack.transmit(|f| assert!(f.len() >= 14 && f.len() <= 1514, "sent a {}-byte frame", f.len()));
}

#[test]
fn random_frames_never_panic_and_are_all_accounted_for() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut s = stack();
    let mut now = Instant::ZERO;
    for _ in 0..20_000 {
        let len = rng.random_range(0..1600);
        let mut f: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // Aim a third of them at us, as IPv4 or ARP, so they get past Ethernet.
        if len >= 14 && rng.random_bool(0.33) {
            f[..6].copy_from_slice(&US_MAC);
            f[12..14].copy_from_slice(if rng.random_bool(0.5) { &[0x08, 0x00] } else { &[0x08, 0x06] });
        }
        now += stack::Duration::from_micros(rng.random_range(0..2000));
        feed_and_check(&mut s, now, &f);
        if s.poll_at().is_some_and(|t| t <= now) {
            s.poll(now);
        }
    }
    let c = s.counters();
    assert_eq!(c.link.rx_frames, c.link.rx_delivered + c.link.rx_held + c.link.rx_dropped);
}

#[test]
fn mutated_frames_never_panic_and_are_all_accounted_for() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let seeds = seeds();
    let mut s = stack();
    let mut now = Instant::ZERO;
    let mut outcomes = [0u32; 3];
    for i in 0..30_000 {
        let mut f = seeds[i % seeds.len()].clone();
        match rng.random_range(0..4) {
            // Flip a few bytes anywhere.
            0 => {
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..f.len());
                    f[at] ^= rng.random::<u8>() | 1;
                }
            }
            // Cut it short.
            1 => f.truncate(rng.random_range(0..f.len())),
            // Grow it with junk.
            2 => f.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>())),
            // Flip header bytes only (IP header and just beyond), where parsers are tested hardest.
            _ => {
                let at = rng.random_range(14..f.len().min(48));
                f[at] = rng.random();
            }
        }
        now += stack::Duration::from_micros(rng.random_range(0..5000));
        let before = s.counters().link.clone();
        feed_and_check(&mut s, now, &f);
        let after = &s.counters().link;
        outcomes[0] += (after.rx_delivered - before.rx_delivered) as u32;
        outcomes[1] += (after.rx_held - before.rx_held) as u32;
        outcomes[2] += (after.rx_dropped - before.rx_dropped) as u32;
        if s.poll_at().is_some_and(|t| t <= now) {
            s.poll(now);
        }
    }
    // The mutations must exercise all three outcomes, or this test proves little.
    assert!(outcomes.iter().all(|n| *n > 100), "outcomes delivered/held/dropped: {outcomes:?}");
}
