//! The Internet checksum (RFC 1071), the one used by IPv4 headers (RFC 791
//! section 3.1), ICMP (RFC 792), UDP (RFC 768) and TCP (RFC 9293 section 3.1).
//!
//! It lives here, once, because every layer needs it and etherparse does not
//! verify checksums when it parses: the stack checks each one itself. What this
//! module adds is the word summing (fast: it is on every frame's path, both
//! ways), the IPv4 pseudo-header of the transports and a running sum over
//! several pieces (a TCP segment's payload may come in two parts out of a ring
//! buffer, split at an odd byte).
//!
//! The sum is taken over native-endian words, eight bytes at a time into a
//! 64-bit accumulator whose carries are folded back at the end: the one's
//! complement sum does not depend on the byte order, only the result is
//! swapped into network order (RFC 1071 section 2 (B)), and deferring the
//! carries is RFC 1071 section 2 (C)'s.

use etherparse::IpNumber;
use std::net::Ipv4Addr;

/// A one's complement sum in progress over bytes given in pieces. The pieces are
/// summed as if they were one contiguous run of bytes, whatever their lengths.
#[derive(Clone, Debug, Default)]
pub struct Checksum {
    /// Native-endian 32-bit words summed, carries not yet folded back.
    sum: u64,
    /// The first byte of a 16-bit word whose second byte is in the next piece.
    odd: Option<u8>,
}

/// Sums `bytes` (an even number of them) as native-endian words into `sum`;
/// the result is congruent to the sum of their 16-bit words modulo 0xffff.
/// Each 8-byte load adds its two 32-bit halves, so the accumulators cannot
/// overflow before 2^31 loads (16 GiB), far beyond any frame.
fn add_words(sum: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(32);
    let mut acc = [0u64; 4];
    for c in &mut chunks {
        for (i, a) in acc.iter_mut().enumerate() {
            let w = u64::from_ne_bytes(c[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            *a += (w & 0xffff_ffff) + (w >> 32);
        }
    }
    let mut total = sum + acc.iter().sum::<u64>();
    let mut rest = chunks.remainder().chunks_exact(4);
    for c in &mut rest {
        total += u32::from_ne_bytes(c.try_into().expect("4 bytes")) as u64;
    }
    if let [a, b] = rest.remainder() {
        total += u16::from_ne_bytes([*a, *b]) as u64;
    }
    total
}

/// Folds the carries of a 64-bit sum back into 16 bits (end-around carry).
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

impl Checksum {
    pub fn new() -> Checksum {
        Checksum::default()
    }

    /// A sum that starts with the IPv4 pseudo-header of a transport (RFC 768, RFC
    /// 9293 section 3.1): source, destination, zero, protocol, and the length of
    /// the transport's header and data.
    pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpNumber, len: u16) -> Checksum {
        let mut h = [0u8; 12];
        h[..4].copy_from_slice(&src.octets());
        h[4..8].copy_from_slice(&dst.octets());
        h[9] = protocol.0;
        h[10..].copy_from_slice(&len.to_be_bytes());
        Checksum { sum: add_words(0, &h), odd: None }
    }

    /// Adds the next piece.
    pub fn add_bytes(mut self, mut bytes: &[u8]) -> Checksum {
        if let Some(hi) = self.odd {
            let Some((&lo, rest)) = bytes.split_first() else { return self };
            self.sum = add_words(self.sum, &[hi, lo]);
            self.odd = None;
            bytes = rest;
        }
        let even = bytes.len() & !1;
        self.sum = add_words(self.sum, &bytes[..even]);
        if even < bytes.len() {
            self.odd = Some(bytes[even]);
        }
        self
    }

    /// The checksum: the one's complement of the sum, an odd last byte padded with
    /// zero (RFC 1071 section 4.1). Over a header or message whose checksum field
    /// is filled in and intact, it is zero.
    pub fn finish(self) -> u16 {
        let sum = match self.odd {
            Some(hi) => add_words(self.sum, &[hi, 0]),
            None => self.sum,
        };
        // Summed in native byte order: `to_be` puts the result back in
        // network order, as a number.
        (!fold(sum)).to_be()
    }
}

/// The Internet checksum of `data` (an IPv4 header, an ICMP message): zero when
/// `data` carries its own intact checksum.
pub fn of(data: &[u8]) -> u16 {
    Checksum::new().add_bytes(data).finish()
}

/// A transport's checksum over the IPv4 pseudo-header and `parts` (RFC 768 for
/// UDP, RFC 9293 section 3.1 for TCP): zero when verifying an intact segment or
/// datagram whose checksum field is filled in.
pub fn transport(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpNumber, parts: &[&[u8]]) -> u16 {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    debug_assert!(len <= u16::MAX as usize, "callers bound the length to 16 bits");
    let start = Checksum::pseudo_header(src, dst, protocol, len as u16);
    parts.iter().fold(start, |sum, part| sum.add_bytes(part)).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 the slow way: big-endian words, carries folded at the end.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u64 = 0;
        for c in data.chunks(2) {
            sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u64;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn checksum_of_a_known_header() {
        // The example header of RFC 1071's usual illustration (Wikipedia's IPv4 header example).
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(of(&h), 0);
        let mut zeroed = h;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(of(&zeroed), 0xb861);
        assert_eq!(of(&[0x01]), !0x0100);
        assert_eq!(of(&[]), 0xffff);
    }

    #[test]
    fn matches_the_reference_whatever_the_pieces() {
        let data: Vec<u8> = (0..301u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in [0, 1, 2, 3, 7, 8, 9, 64, 299, 300, 301] {
            let d = &data[..len];
            assert_eq!(of(d), reference(d), "len {len}");
            for cut in 0..=len {
                let split = Checksum::new().add_bytes(&d[..cut]).add_bytes(&d[cut..]).finish();
                assert_eq!(split, reference(d), "len {len} cut {cut}");
            }
        }
        // All ones sums to negative zero, whose complement is zero.
        assert_eq!(of(&[0xff; 6]), reference(&[0xff; 6]));
    }

    #[test]
    fn transport_sum_matches_etherparse() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut d = etherparse::UdpHeader::without_ipv4_checksum(5000, 7, 5).unwrap().to_bytes().to_vec();
        d.extend_from_slice(b"hello");
        let theirs = etherparse::UdpHeader::without_ipv4_checksum(5000, 7, 5)
            .unwrap()
            .calc_checksum_ipv4_raw(a.octets(), b.octets(), b"hello")
            .unwrap();
        assert_eq!(transport(a, b, IpNumber::UDP, &[&d]), theirs);
        d[6..8].copy_from_slice(&theirs.to_be_bytes());
        assert_eq!(transport(a, b, IpNumber::UDP, &[&d[..3], &d[3..]]), 0);
    }
}
