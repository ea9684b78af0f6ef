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
}

impl IsnGenerator {
    pub fn new(rng: &mut ChaCha8Rng) -> IsnGenerator {
        IsnGenerator { key: (rng.random(), rng.random()) }
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
}
