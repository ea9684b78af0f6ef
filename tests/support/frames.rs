//! Ethernet frames for tests, written with etherparse's builders.

use etherparse::{ArpEthIpv4Packet, ArpOperation, EtherType, Ethernet2Header, IpNumber, Ipv4Header, PacketBuilder};
use std::net::Ipv4Addr;

pub const BROADCAST: [u8; 6] = [0xff; 6];

/// An ICMP echo request frame.
pub fn echo_request(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    seq: u16,
    data: &[u8],
) -> Vec<u8> {
    let b =
        PacketBuilder::ethernet2(src_mac, dst_mac).ipv4(src.octets(), dst.octets(), 64).icmpv4_echo_request(id, seq);
    let mut v = Vec::new();
    b.write(&mut v, data).unwrap();
    v
}

/// A UDP datagram frame.
pub fn udp(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    data: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, dst_mac).ipv4(src.octets(), dst.octets(), 64).udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, data).unwrap();
    v
}

/// An ARP frame (request or reply).
pub fn arp(
    op: ArpOperation,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    sender: ([u8; 6], Ipv4Addr),
    target: ([u8; 6], Ipv4Addr),
) -> Vec<u8> {
    let p = ArpEthIpv4Packet {
        operation: op,
        sender_mac: sender.0,
        sender_ipv4: sender.1.octets(),
        target_mac: target.0,
        target_ipv4: target.1.octets(),
    };
    let b = PacketBuilder::ethernet2(src_mac, dst_mac).arp(p.into());
    let mut v = Vec::new();
    b.write(&mut v).unwrap();
    v
}

/// Splits the IPv4 datagram in `frame` into fragment frames of at most `mtu`
/// bytes of IP each (RFC 791 section 3.2), keeping the Ethernet header.
pub fn fragment(frame: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let (eth, rest) = Ethernet2Header::from_slice(frame).unwrap();
    assert_eq!(eth.ether_type, EtherType::IPV4);
    let (ip, payload) = Ipv4Header::from_slice(rest).unwrap();
    let payload = &payload[..ip.payload_len().unwrap() as usize];
    let per = (mtu - ip.header_len()) / 8 * 8;
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let n = per.min(payload.len() - off);
        let mut h = ip.clone();
        h.set_payload_len(n).unwrap();
        h.more_fragments = off + n < payload.len();
        h.fragment_offset = etherparse::IpFragOffset::try_new((off / 8) as u16).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut f = Vec::new();
        eth.write(&mut f).unwrap();
        h.write(&mut f).unwrap();
        f.extend_from_slice(&payload[off..off + n]);
        out.push(f);
        off += n;
    }
    out
}

/// The protocol number of an IPv4 frame, if it is one.
pub fn ip_protocol(frame: &[u8]) -> Option<IpNumber> {
    let (eth, rest) = Ethernet2Header::from_slice(frame).ok()?;
    if eth.ether_type != EtherType::IPV4 {
        return None;
    }
    Some(Ipv4Header::from_slice(rest).ok()?.0.protocol)
}
