//! Initial sequence numbers (RFC 9293 section 3.4.1, RFC 6528 section 3):
//! `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)`, where M is
//! a timer ticking every 4 microseconds and F is SipHash-2-4 of the 4-tuple under
//! a 128-bit secret drawn once from the stack's seeded generator. Two
//! incarnations of one 4-tuple therefore get increasing ISNs (the clock), while
//! an off-path attacker cannot predict another 4-tuple's ISN (the secret).

use super::seq::Seq;
use crate::time::Instant;
use core::hash::Hasher;
use rand::rngs::ChaCha8Rng;
use rand::RngExt;
use siphasher::sip::SipHasher24;
use std::net::SocketAddrV4;

#[derive(Clone, Debug)]
pub struct IsnGenerator {
    key: (u64, u64),
    /// ISNs given from outside for the next connection of a 4-tuple: a replay of
    /// a capture that tapstack's own recorder did not make (tcpdump on the TAP,
    /// say) cannot know the stack's clock reading at the SYN, so it takes M from
    /// the capture's ISN. Empty otherwise; used once each.
    pinned: Vec<(SocketAddrV4, SocketAddrV4, Seq)>,
}

impl IsnGenerator {
    pub fn new(rng: &mut ChaCha8Rng) -> IsnGenerator {
        IsnGenerator { key: (rng.random(), rng.random()), pinned: Vec::new() }
    }

    /// The next connection from `local` to `remote` starts at `isn`.
    pub fn pin(&mut self, local: SocketAddrV4, remote: SocketAddrV4, isn: Seq) {
        self.pinned.push((local, remote, isn));
    }

    /// The ISN for a new connection: a pinned one if there is one, else [`IsnGenerator::isn`].
    pub fn next(&mut self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> Seq {
        match self.pinned.iter().position(|&(l, r, _)| l == local && r == remote) {
            Some(i) => self.pinned.remove(i).2,
            None => self.isn(now, local, remote),
        }
    }

    pub fn isn(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> Seq {
        let mut h = SipHasher24::new_with_keys(self.key.0, self.key.1);
        h.write(&local.ip().octets());
        h.write(&local.port().to_be_bytes());
        h.write(&remote.ip().octets());
        h.write(&remote.port().to_be_bytes());
        let f = h.finish() as u32;
        // M: the 4-microsecond clock of RFC 6528 section 3 (wraps every ~4.77 h).
        let m = (now.as_micros() / 4) as u32;
        Seq(m.wrapping_add(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::net::Ipv4Addr;

    fn addr(p: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), p)
    }

    #[test]
    fn clock_plus_keyed_hash() {
        let g = IsnGenerator::new(&mut ChaCha8Rng::seed_from_u64(1));
        let t = Instant::from_secs(10);
        let a = g.isn(t, addr(1), addr(2));
        // The clock advances one step per 4 us.
        assert_eq!(g.isn(t + crate::time::Duration::from_micros(400), addr(1), addr(2)), a + 100);
        // Another 4-tuple is unrelated.
        assert_ne!(g.isn(t, addr(1), addr(3)), a);
        // Another secret gives another ISN; the same seed gives the same one.
        let g2 = IsnGenerator::new(&mut ChaCha8Rng::seed_from_u64(2));
        assert_ne!(g2.isn(t, addr(1), addr(2)), a);
        let g3 = IsnGenerator::new(&mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(g3.isn(t, addr(1), addr(2)), a);
    }

    #[test]
    fn a_pinned_isn_is_used_once_for_its_tuple() {
        let mut g = IsnGenerator::new(&mut ChaCha8Rng::seed_from_u64(1));
        let t = Instant::from_secs(10);
        g.pin(addr(1), addr(2), Seq(42));
        assert_eq!(g.next(t, addr(1), addr(3)), g.isn(t, addr(1), addr(3)));
        assert_eq!(g.next(t, addr(1), addr(2)), Seq(42));
        assert_eq!(g.next(t, addr(1), addr(2)), g.isn(t, addr(1), addr(2)));
    }
}
