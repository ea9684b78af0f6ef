//! SYN cookies (RFC 4987 section 3.6): when a listener's SYN queue is full (or
//! the connection table is), its SYN,ACK carries the connection's state in our
//! initial sequence number and nothing is kept; the ACK that completes the
//! handshake gives it back (SEG.ACK - 1) and the connection is made then.
//!
//! The encoding is Linux's (net/ipv4/syncookies.c), with our keyed hash:
//!
//! ```text
//! ISS = H1(addresses, ports) + ISN_peer + (minute << 24)
//!       + ((H2(addresses, ports, minute) + mss_index) mod 2^24)
//! ```
//!
//! `minute` counts minutes of the stack's clock; a cookie is good for the
//! minute it was made in and the next ([`MAX_AGE`], Linux's MAX_SYNCOOKIE_AGE).
//! `mss_index` picks the largest entry of [`MSS_TABLE`] not above the peer's
//! MSS (Linux's msstab). The hashes are SipHash-1-3 with keys drawn from the
//! stack's generator: unpredictable from outside, reproducible from the seed.
//!
//! Window scale and SACK-permitted (and ECN, not implemented here) do not fit
//! in the ISN: when the peer's SYN carried timestamps (RFC 7323), they go in
//! the low bits of the SYN,ACK's TSval, which the peer echoes in the TSecr of
//! the ACK that completes the handshake ([`encode_tsval`], [`decode_tsecr`];
//! Linux's cookie_init_timestamp and cookie_timestamp_decode). Without
//! timestamps the cookie carries the MSS only and the connection goes without
//! window scaling and SACK, as Linux's does.

use super::seq::Seq;
use crate::time::Instant;
use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use std::net::SocketAddrV4;

/// The MSS values a cookie can carry (Linux's msstab for IPv4).
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];
/// Bits of the ISN below the minute counter.
const COUNT_SHIFT: u32 = 24;
const LOW_MASK: u32 = (1 << COUNT_SHIFT) - 1;
/// Minutes a cookie stays valid: the one it was made in and the next.
pub const MAX_AGE: u32 = 2;

/// The keys of the two hashes.
#[derive(Clone, Debug)]
pub struct SynCookies {
    k1: (u64, u64),
    k2: (u64, u64),
}

fn minute(now: Instant) -> u32 {
    (now.as_micros() / 60_000_000) as u32
}

impl SynCookies {
    /// Keys derived from a secret (the table's hash keys, themselves drawn from
    /// the stack's generator), so that making the cookies' keys draws nothing
    /// more from the generator and every other random choice stays as it was.
    pub fn derive(secret: (u64, u64)) -> SynCookies {
        let key = |label: &[u8]| {
            let mut h = SipHasher13::new_with_keys(secret.0, secret.1);
            h.write(label);
            h.finish()
        };
        SynCookies {
            k1: (key(b"syncookie h1 a"), key(b"syncookie h1 b")),
            k2: (key(b"syncookie h2 a"), key(b"syncookie h2 b")),
        }
    }

    fn hash(key: (u64, u64), local: SocketAddrV4, remote: SocketAddrV4, count: Option<u32>) -> u32 {
        let mut h = SipHasher13::new_with_keys(key.0, key.1);
        h.write(&local.ip().octets());
        h.write(&remote.ip().octets());
        h.write_u16(local.port());
        h.write_u16(remote.port());
        if let Some(c) = count {
            h.write_u32(c);
        }
        h.finish() as u32
    }

    /// The cookie for a SYN with sequence number `peer_isn` from `remote` to
    /// `local`, offering `peer_mss`; returns our ISS and the MSS it encodes.
    pub fn make(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: Seq,
        peer_mss: u16,
    ) -> (Seq, u16) {
        let index = MSS_TABLE.iter().rposition(|&m| peer_mss >= m).unwrap_or(0);
        let count = minute(now);
        let low = Self::hash(self.k2, local, remote, Some(count)).wrapping_add(index as u32) & LOW_MASK;
        let iss = Self::hash(self.k1, local, remote, None)
            .wrapping_add(peer_isn.0)
            .wrapping_add(count << COUNT_SHIFT)
            .wrapping_add(low);
        (Seq(iss), MSS_TABLE[index])
    }

    /// Checks the ACK completing a cookie handshake (`seq` is the peer's ISN + 1,
    /// `ack` our ISS + 1); returns the MSS the cookie carries if it is ours and
    /// recent enough.
    pub fn check(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4, seq: Seq, ack: Seq) -> Option<u16> {
        let cookie = (ack.0.wrapping_sub(1))
            .wrapping_sub(Self::hash(self.k1, local, remote, None))
            .wrapping_sub(seq.0.wrapping_sub(1));
        let made = cookie >> COUNT_SHIFT;
        let count = minute(now);
        // Only the low 8 bits of the minute survive in the ISN.
        let age = count.wrapping_sub(made) & (u32::MAX >> COUNT_SHIFT);
        if age >= MAX_AGE {
            return None;
        }
        let made = count.wrapping_sub(age);
        let index = (cookie.wrapping_sub(Self::hash(self.k2, local, remote, Some(made)))) & LOW_MASK;
        MSS_TABLE.get(index as usize).copied()
    }
}

/// What a cookie carries in the SYN,ACK's TSval besides the MSS: the peer's
/// window scale (RFC 7323 section 2) and whether SACK was agreed (RFC 2018
/// section 2). Timestamps themselves are implied: the TSval is how it is carried.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CookieOptions {
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
}

/// The low bits of the TSval given to the options: window scale in bits 0-3
/// (0xf for none), SACK-permitted in bit 4, bit 5 left for ECN (as Linux).
const TS_OPT_BITS: u32 = 6;
const TS_OPT_MASK: u32 = (1 << TS_OPT_BITS) - 1;
const TS_WSCALE_MASK: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;

/// The TSval for a cookie's SYN,ACK, from the connection's clock reading
/// `clock`: the options replace its low bits, and the result is moved back by
/// 64 ms if that made it later than the clock, never forward. So it is never
/// ahead of the TSvals the connection sends once made, which RFC 7323 section
/// 5.3 (PAWS at the peer) needs to be monotonic, and at most 63 ms behind.
pub fn encode_tsval(clock: u32, opts: CookieOptions) -> u32 {
    let bits =
        opts.wscale.map_or(TS_WSCALE_MASK, |w| (w as u32).min(14)) | if opts.sack_permitted { TS_SACK } else { 0 };
    let ts = (clock & !TS_OPT_MASK) | bits;
    if (ts.wrapping_sub(clock) as i32) > 0 {
        ts.wrapping_sub(TS_OPT_MASK + 1)
    } else {
        ts
    }
}

/// The options back from the TSecr of the ACK that returned a cookie, `clock`
/// being the connection's clock now. `None` when the TSecr cannot be a TSval
/// we sent with a cookie still valid: later than the clock, or older than a
/// cookie lives (Linux does not check this; it costs nothing and makes an ACK
/// with a made-up TSecr fail like a bad cookie).
pub fn decode_tsecr(tsecr: u32, clock: u32) -> Option<CookieOptions> {
    let age_ms = clock.wrapping_sub(tsecr);
    if age_ms > MAX_AGE * 60_000 + TS_OPT_MASK {
        return None;
    }
    let w = tsecr & TS_WSCALE_MASK;
    Some(CookieOptions { wscale: (w != TS_WSCALE_MASK).then_some(w as u8), sack_permitted: tsecr & TS_SACK != 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::ChaCha8Rng;
    use rand::{RngExt, SeedableRng};
    use std::net::Ipv4Addr;

    fn addrs() -> (SocketAddrV4, SocketAddrV4) {
        (SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80), SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 4000))
    }

    #[test]
    fn a_cookie_checks_for_two_minutes_with_its_mss() {
        let c = SynCookies::derive((1, 2));
        let (l, r) = addrs();
        let t = Instant::from_secs(1000);
        for (offered, carried) in [(1460, 1460), (1400, 1300), (9000, 1460), (100, 536), (1440, 1440)] {
            let (iss, mss) = c.make(t, l, r, Seq(77), offered);
            assert_eq!(mss, carried);
            // Made in second 1000 (minute 16): good through minute 17.
            for later in [0, 19, 79] {
                let at = Instant::from_secs(1000 + later);
                assert_eq!(c.check(at, l, r, Seq(78), iss + 1), Some(carried), "{later} s later");
            }
            assert_eq!(c.check(Instant::from_secs(1080), l, r, Seq(78), iss + 1), None, "too old");
            // Another tuple, another peer ISN, another ISS: not ours. (As in
            // Linux's encoding, numbers off by less than the MSS table's size
            // can land on another index; the peer ISN and our ISS it needs are
            // what an off-path attacker cannot know.)
            let other = SocketAddrV4::new(*r.ip(), 4001);
            assert_eq!(c.check(t, l, other, Seq(78), iss + 1), None);
            assert_eq!(c.check(t, l, r, Seq(78 + 1000), iss + 1), None);
            assert_eq!(c.check(t, l, r, Seq(78), iss + 1000), None);
        }
    }

    #[test]
    fn guessed_cookies_are_rare() {
        let c = SynCookies::derive((3, 4));
        let (l, r) = addrs();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let t = Instant::from_secs(50);
        let hits = (0..100_000).filter(|_| c.check(t, l, r, Seq(rng.random()), Seq(rng.random())).is_some()).count();
        // A random pair passes with odds of 2/256 (age) * 4/2^24 (index): 2e-4 expected here.
        assert!(hits <= 2, "{hits}");
    }

    #[test]
    fn options_round_trip_through_the_timestamp() {
        let opts = [
            CookieOptions { wscale: None, sack_permitted: false },
            CookieOptions { wscale: None, sack_permitted: true },
            CookieOptions { wscale: Some(7), sack_permitted: true },
            CookieOptions { wscale: Some(0), sack_permitted: false },
            CookieOptions { wscale: Some(14), sack_permitted: true },
        ];
        // Clocks whose low bits are below, equal to and above the options',
        // and one about to wrap.
        for clock in [0x1234_5640, 0x1234_5657, 0x1234_567f, 0x0000_0003, 0xffff_fffe] {
            for o in opts {
                let ts = encode_tsval(clock, o);
                let behind = clock.wrapping_sub(ts);
                assert!(behind < 64, "{clock:#x} {o:?}: {ts:#x} is ahead of the clock or too far behind");
                // Echoed at once, and 100 s later.
                assert_eq!(decode_tsecr(ts, clock), Some(o));
                assert_eq!(decode_tsecr(ts, clock.wrapping_add(100_000)), Some(o));
            }
        }
        let o = CookieOptions { wscale: Some(15), sack_permitted: false };
        assert_eq!(decode_tsecr(encode_tsval(1 << 20, o), 1 << 20).unwrap().wscale, Some(14), "15 is sent as 14");
    }

    #[test]
    fn a_tsecr_we_cannot_have_sent_is_refused() {
        let o = CookieOptions { wscale: Some(7), sack_permitted: true };
        let clock = 5_000_000;
        let ts = encode_tsval(clock, o);
        assert_eq!(decode_tsecr(ts.wrapping_add(64), clock), None, "from the future");
        assert_eq!(decode_tsecr(ts, clock + MAX_AGE * 60_000 + 64), None, "older than a cookie");
        assert_eq!(decode_tsecr(0, clock), None);
    }
}
