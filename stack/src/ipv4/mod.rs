//! IPv4 (RFC 791, RFC 1122 section 3.2.1): validating what arrives, and routing,
//! identifying and fragmenting what we send. Reassembly lives in [`reassembly`].
//!
//! These are functions over a datagram and an [`Ipv4Config`] (our address, subnet,
//! gateway and MTU), not over the whole stack configuration: IPv4 needs nothing
//! else, and so depends on nothing above it. The state that goes with sending (the
//! identification counter, the transmit queue, ARP) is the IP layer's
//! ([`crate::IpLayer`]).

pub mod ident;
pub mod reassembly;

use crate::buffer::ETH_HEADER_LEN;
use crate::checksum;
use crate::counters::DropReason;
use etherparse::{IpFragOffset, IpNumber, Ipv4Header, Ipv4HeaderSlice};
use std::net::Ipv4Addr;

/// Length of an IPv4 header without options: what we send.
pub const HEADER_LEN: usize = 20;
/// Where a transport header starts in a frame under construction: behind the
/// reserved Ethernet and IPv4 headers.
pub const PAYLOAD_OFFSET: usize = ETH_HEADER_LEN + HEADER_LEN;
/// Largest IPv4 payload: 65535 less a 20-byte header.
pub const MAX_PAYLOAD: usize = 65515;

/// What IPv4 needs to know about our place on the link: a view of the stack's
/// [`Config`](crate::Config) (see [`Config::ipv4`](crate::Config::ipv4)).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ipv4Config {
    /// Our address.
    pub addr: Ipv4Addr,
    /// Prefix length of the on-link subnet.
    pub prefix_len: u8,
    /// Next hop for destinations off the subnet.
    pub gateway: Option<Ipv4Addr>,
    /// Largest datagram on the link.
    pub mtu: u16,
}

impl Ipv4Config {
    /// The subnet mask as an integer.
    pub fn netmask(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix_len.min(32) as u32)
        }
    }

    /// The subnet's directed broadcast address.
    pub fn subnet_broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.netmask())
    }

    /// Whether `ip` is on our subnet, reachable without a gateway.
    pub fn is_on_link(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.netmask() == 0
    }

    /// Whether `ip` is one of ours: our address, or any of 127.0.0.0/8, which a
    /// host keeps for itself (RFC 1122 section 3.2.1.3 (g); Linux's `lo` holds
    /// 127.0.0.1/8).
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        ip == self.addr || ip.is_loopback()
    }

    /// The source address for a datagram to `dst` from a socket not bound to an
    /// address: 127.0.0.1 to 127/8 (as Linux's `lo`), our address otherwise.
    pub fn source_for(&self, dst: Ipv4Addr) -> Ipv4Addr {
        if dst.is_loopback() {
            Ipv4Addr::LOCALHOST
        } else {
            self.addr
        }
    }

    /// Whether `ip` is a broadcast address for us: limited or directed (a /31 or
    /// /32 has no directed broadcast, RFC 3021).
    pub fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        ip == Ipv4Addr::BROADCAST || (self.prefix_len < 31 && ip == self.subnet_broadcast())
    }
}

/// An inbound datagram, validated, for us, and whole (reassembled if it came in fragments).
#[derive(Copy, Clone, Debug)]
pub struct IpPacket<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpNumber,
    pub ttl: u8,
    /// The raw header as received (with options): what an ICMP error quotes.
    pub header: &'a [u8],
    pub payload: &'a [u8],
    /// Sent to a broadcast address rather than to ours.
    pub broadcast: bool,
    /// The link vouched for the transport checksum ([`crate::offload::RxOffload`]):
    /// the transport does not verify it.
    pub csum_trusted: bool,
}

/// Validates an inbound datagram (RFC 791 section 3.1, RFC 1122 section 3.2.1.1-3.2.1.3)
/// and trims link-layer padding. Options are not interpreted (RFC 1122 section 3.2.1.8
/// allows ignoring the ones we do not implement). etherparse does not verify the
/// checksum, so it is verified here.
pub fn validate(frame_payload: &[u8]) -> Result<(Ipv4HeaderSlice<'_>, &[u8]), DropReason> {
    if frame_payload.len() < HEADER_LEN {
        return Err(DropReason::IpTruncated);
    }
    if frame_payload[0] >> 4 != 4 {
        return Err(DropReason::IpBadVersion);
    }
    let ihl = (frame_payload[0] & 0x0f) as usize * 4;
    if ihl < HEADER_LEN {
        return Err(DropReason::IpBadHeaderLength);
    }
    if ihl > frame_payload.len() {
        return Err(DropReason::IpTruncated);
    }
    let total_len = u16::from_be_bytes([frame_payload[2], frame_payload[3]]) as usize;
    if total_len < ihl || total_len > frame_payload.len() {
        return Err(DropReason::IpBadTotalLength);
    }
    if checksum::of(&frame_payload[..ihl]) != 0 {
        return Err(DropReason::IpBadChecksum);
    }
    // Anything past total_len is Ethernet padding.
    let datagram = &frame_payload[..total_len];
    let header = Ipv4HeaderSlice::from_slice(datagram).map_err(|_| DropReason::IpBadHeaderLength)?;
    Ok((header, &datagram[ihl..]))
}

/// Decides whether a validated datagram is ours to take (RFC 1122 section 3.2.1.3):
/// to our address or a broadcast address, from a source that could be a host.
/// Returns whether it came to a broadcast address.
pub fn accept(config: &Ipv4Config, src: Ipv4Addr, dst: Ipv4Addr) -> Result<bool, DropReason> {
    // A host MUST silently discard a datagram with a broadcast or multicast source;
    // 0.0.0.0 and 127/8 are never the source of a datagram arriving on a link
    // (section 3.2.1.3 (a) and (g); RFC 9293 MUST-63 for TCP).
    let bogus = src.is_unspecified() || src.is_loopback();
    if bogus || src.is_broadcast() || src.is_multicast() || config.is_broadcast(src) || src == config.addr {
        return Err(DropReason::IpBadSource);
    }
    if dst == config.addr {
        Ok(false)
    } else if config.is_broadcast(dst) {
        Ok(true)
    } else {
        // We are a host: no forwarding (RFC 1122 section 3.3.1).
        Err(DropReason::IpNotForUs)
    }
}

/// Decides whether a datagram that came round the loopback is ours to take: it
/// must be to one of our own addresses (RFC 1122 section 3.2.1.3 (g): 127/8 is
/// valid here, and only here). Its source is one of ours by construction.
pub fn accept_looped(config: &Ipv4Config, dst: Ipv4Addr) -> Result<bool, DropReason> {
    if config.is_local(dst) {
        Ok(false)
    } else {
        Err(DropReason::IpNotForUs)
    }
}

/// What a transport asks of the IP layer for one outgoing datagram.
#[derive(Copy, Clone, Debug)]
pub struct Route {
    /// Next hop on the link: the destination itself, or the gateway.
    pub next_hop: Ipv4Addr,
    /// The destination is a broadcast address (no ARP: the Ethernet broadcast).
    pub broadcast: bool,
    /// The destination is one of our own addresses: the datagram goes round the
    /// loopback, never on the link.
    pub local: bool,
}

/// Chooses the next hop for `dst` (RFC 1122 section 3.3.1.1): our own addresses
/// and 127/8 through the loopback (section 3.2.1.3 (g): 127/8 never leaves the
/// host, whatever the gateway), on-link destinations directly, the rest through
/// the gateway.
pub fn route(config: &Ipv4Config, dst: Ipv4Addr) -> Result<Route, DropReason> {
    if config.is_local(dst) {
        return Ok(Route { next_hop: dst, broadcast: false, local: true });
    }
    if config.is_broadcast(dst) {
        return Ok(Route { next_hop: dst, broadcast: true, local: false });
    }
    if dst.is_multicast() || dst.is_unspecified() {
        return Err(DropReason::IpNoRoute);
    }
    if config.is_on_link(dst) {
        return Ok(Route { next_hop: dst, broadcast: false, local: false });
    }
    match config.gateway {
        Some(gw) => Ok(Route { next_hop: gw, broadcast: false, local: false }),
        None => Err(DropReason::IpNoRoute),
    }
}

/// Writes a 20-byte IPv4 header for a datagram of `payload_len` bytes into `out`.
pub fn write_header(
    out: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpNumber,
    ttl: u8,
    ident: u16,
    dont_fragment: bool,
    frag: (u16, bool),
    payload_len: usize,
) {
    let mut h = Ipv4Header::new(payload_len as u16, ttl, protocol, src.octets(), dst.octets())
        .expect("payload length is checked against MAX_PAYLOAD by the caller");
    h.identification = ident;
    h.dont_fragment = dont_fragment;
    h.more_fragments = frag.1;
    h.fragment_offset =
        IpFragOffset::try_new(frag.0).expect("fragment offsets are computed in 8-byte units below 8192");
    h.header_checksum = h.calc_header_checksum();
    out[..HEADER_LEN].copy_from_slice(&h.to_bytes());
}

/// Splits a payload of `len` bytes into fragments that fit `mtu` (RFC 791 section
/// 3.2, "Fragmentation"): every fragment but the last carries a multiple of 8 bytes.
/// Yields (byte offset, length, more fragments).
pub fn fragments(len: usize, mtu: usize) -> impl Iterator<Item = (usize, usize, bool)> {
    let per = ((mtu - HEADER_LEN) / 8) * 8;
    let count = if len == 0 { 1 } else { len.div_ceil(per) };
    (0..count).map(move |i| {
        let off = i * per;
        let n = per.min(len - off);
        (off, n, i + 1 < count)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(payload: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; HEADER_LEN + payload.len()];
        write_header(
            &mut d,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            IpNumber::UDP,
            64,
            7,
            false,
            (0, false),
            payload.len(),
        );
        d[HEADER_LEN..].copy_from_slice(payload);
        d
    }

    #[test]
    fn validation_rejects_each_defect() {
        let good = datagram(b"hello");
        assert!(validate(&good).is_ok());
        assert_eq!(validate(&good[..19]).unwrap_err(), DropReason::IpTruncated);
        let mut v = good.clone();
        v[0] = 0x65;
        assert_eq!(validate(&v).unwrap_err(), DropReason::IpBadVersion);
        let mut v = good.clone();
        v[0] = 0x44;
        assert_eq!(validate(&v).unwrap_err(), DropReason::IpBadHeaderLength);
        let mut v = good.clone();
        v[0] = 0x4f; // 60-byte header in a 25-byte datagram
        assert_eq!(validate(&v).unwrap_err(), DropReason::IpTruncated);
        let mut v = good.clone();
        v[3] = 200; // total length past the frame
        assert_eq!(validate(&v).unwrap_err(), DropReason::IpBadTotalLength);
        let mut v = good.clone();
        v[3] = 10; // total length inside the header
        assert_eq!(validate(&v).unwrap_err(), DropReason::IpBadTotalLength);
        let mut v = good.clone();
        v[8] ^= 1; // TTL changed, checksum not
        assert_eq!(validate(&v).unwrap_err(), DropReason::IpBadChecksum);
    }

    #[test]
    fn padding_is_trimmed() {
        let mut d = datagram(b"hi");
        d.extend_from_slice(&[0; 20]);
        let (_, payload) = validate(&d).unwrap();
        assert_eq!(payload, b"hi");
    }

    #[test]
    fn fragments_fit_and_cover() {
        let parts: Vec<_> = fragments(4008, 1500).collect();
        assert_eq!(parts, vec![(0, 1480, true), (1480, 1480, true), (2960, 1048, false)]);
        assert_eq!(fragments(100, 1500).collect::<Vec<_>>(), vec![(0, 100, false)]);
        assert_eq!(fragments(0, 1500).collect::<Vec<_>>(), vec![(0, 0, false)]);
        // An odd MTU still gives 8-byte multiples.
        assert!(
            fragments(3000, 1001).all(|(off, n, more)| off % 8 == 0 && (!more || n % 8 == 0) && n + HEADER_LEN <= 1001)
        );
    }
}
