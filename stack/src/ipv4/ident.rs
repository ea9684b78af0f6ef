//! The IPv4 identification of what we send (RFC 791; RFC 6864 section 4.1
//! asks only that an ID not repeat for a source, destination and protocol
//! within the datagram's lifetime; RFC 7739 section 5 asks that it not be
//! predictable from outside). As Linux (net/ipv4/route.c, ip_idents_reserve):
//! a table of counters, each datagram taking the next value of the counter its
//! (destination, source, protocol) hashes to. A third host then sees its own
//! counter only, not the traffic to others (the "idle scan"). A counter idle
//! for a while jumps ahead by a random amount up to the time it was idle, so
//! that its value does not tell how many datagrams went out meanwhile.
//!
//! The hash key, the counters' starting values and the jumps come from a
//! generator of their own, a separate stream of the stack's seed: every other
//! random choice of the stack stays what it was, and a run still replays
//! exactly from its seed.

use crate::time::Instant;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use std::net::Ipv4Addr;

/// Counters in the table (Linux's IP_IDENTS_SZ, 2048).
pub const BUCKETS: usize = 2048;
/// The generator's stream, apart from the stack's main one (stream 0).
const STREAM: u64 = 0x1d_6864;

#[derive(Debug)]
pub struct IdentGenerator {
    key: (u64, u64),
    counters: Box<[u16]>,
    /// When each counter was last used, in milliseconds of the stack's clock.
    stamps: Box<[u64]>,
    rng: ChaCha8Rng,
}

impl IdentGenerator {
    /// The generator for a stack seeded with `seed`.
    pub fn new(seed: u64) -> IdentGenerator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(STREAM);
        let key = (rng.random(), rng.random());
        let counters = (0..BUCKETS).map(|_| rng.random::<u16>()).collect();
        IdentGenerator { key, counters, stamps: vec![0; BUCKETS].into_boxed_slice(), rng }
    }

    /// The identification of the next datagram from `src` to `dst` with `protocol`.
    pub fn next(&mut self, now: Instant, src: Ipv4Addr, dst: Ipv4Addr, protocol: u8) -> u16 {
        let mut h = SipHasher13::new_with_keys(self.key.0, self.key.1);
        h.write(&dst.octets());
        h.write(&src.octets());
        h.write_u8(protocol);
        let i = (h.finish() % BUCKETS as u64) as usize;
        let ms = now.as_millis();
        let idle = ms.saturating_sub(self.stamps[i]);
        let jump = if idle > 0 { self.rng.random_range(0..idle.min(u16::MAX as u64)) as u16 } else { 0 };
        self.stamps[i] = ms;
        let id = self.counters[i].wrapping_add(jump);
        self.counters[i] = id.wrapping_add(1);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    #[test]
    fn a_destination_sees_its_own_counter_only() {
        // Issue 13, item 9: one global counter let a third host watch our
        // traffic to others advance it.
        let mut g = IdentGenerator::new(9);
        let (watcher, other) = (Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(10, 0, 0, 7));
        let t = Instant::from_secs(100);
        let a = g.next(t, US, watcher, 1);
        for _ in 0..1000 {
            g.next(t, US, other, 6);
        }
        let b = g.next(t, US, watcher, 1);
        assert_eq!(b, a.wrapping_add(1), "back to back, the watcher's counter moved by its own datagram only");
        // Consecutive datagrams to one destination never repeat an ID soon (RFC 6864).
        let mut seen = std::collections::HashSet::new();
        assert!((0..10_000).all(|_| seen.insert(g.next(t, US, other, 6))));
    }

    #[test]
    fn idle_counters_jump_by_a_random_amount_and_runs_replay() {
        let mut g = IdentGenerator::new(9);
        let dst = Ipv4Addr::new(10, 0, 0, 9);
        let at = |g: &mut IdentGenerator, s| g.next(Instant::from_secs(s), US, dst, 1);
        let steps: Vec<u16> = (1..20)
            .map(|s| {
                let a = at(&mut g, 10 * s);
                at(&mut g, 10 * s + 5).wrapping_sub(a)
            })
            .collect();
        assert!(steps.iter().any(|&d| d > 1) && steps.windows(2).any(|w| w[0] != w[1]), "{steps:?}");
        let (mut g1, mut g2) = (IdentGenerator::new(5), IdentGenerator::new(5));
        assert!((0..100).all(|s| at(&mut g1, s) == at(&mut g2, s)), "the same seed, the same IDs");
    }
}
