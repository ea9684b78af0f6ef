//! Frames built by hand for the fuzzer to send, and the check that every frame
//! the stack sends is well formed. Both use their own RFC 1071 checksum rather
//! than the stack's, so that a wrong checksum in the stack cannot hide itself.

use etherparse::{ArpPacketSlice, EtherType, Ethernet2Slice, Ipv4Slice};
use std::net::Ipv4Addr;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// The ones' complement sum of `data` (RFC 1071), folded, not inverted.
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// The checksum to write into a header whose checksum field is zero.
pub fn checksum(acc: u32, data: &[u8]) -> u16 {
    !(sum(acc, data) as u16)
}

/// The sum of the TCP/UDP pseudo-header (RFC 9293 section 3.1, RFC 768).
pub fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let mut p = [0u8; 12];
    p[..4].copy_from_slice(&src.octets());
    p[4..8].copy_from_slice(&dst.octets());
    p[9] = proto;
    p[10..12].copy_from_slice(&(len as u16).to_be_bytes());
    sum(0, &p)
}

/// An Ethernet header.
pub fn ethernet(out: &mut Vec<u8>, src: [u8; 6], dst: [u8; 6], ethertype: u16) {
    out.extend_from_slice(&dst);
    out.extend_from_slice(&src);
    out.extend_from_slice(&ethertype.to_be_bytes());
}

/// What goes into an IPv4 header besides the addresses.
#[derive(Clone, Copy, Debug)]
pub struct IpFields {
    pub proto: u8,
    pub id: u16,
    /// Flags (DF 0x4000, MF 0x2000) and the fragment offset in 8-byte units.
    pub frag: u16,
    pub ttl: u8,
}

/// A 20-byte IPv4 header with its checksum, for `payload_len` bytes of payload.
pub fn ipv4(out: &mut Vec<u8>, src: Ipv4Addr, dst: Ipv4Addr, f: IpFields, payload_len: usize) {
    let start = out.len();
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&((20 + payload_len) as u16).to_be_bytes());
    out.extend_from_slice(&f.id.to_be_bytes());
    out.extend_from_slice(&f.frag.to_be_bytes());
    out.extend_from_slice(&[f.ttl, f.proto, 0, 0]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    let c = checksum(0, &out[start..]);
    out[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
}

/// A whole frame: Ethernet, IPv4 and `transport` (whose checksum field, at
/// `csum_at` in it, is filled in here over the pseudo-header when `pseudo_sum`).
pub struct Datagram<'a> {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ip: IpFields,
    pub transport: &'a mut [u8],
    pub csum_at: Option<usize>,
    pub pseudo_sum: bool,
}

impl Datagram<'_> {
    pub fn write(self) -> Vec<u8> {
        if let Some(at) = self.csum_at.filter(|&at| at + 2 <= self.transport.len()) {
            self.transport[at..at + 2].fill(0);
            let acc = if self.pseudo_sum { pseudo(self.src, self.dst, self.ip.proto, self.transport.len()) } else { 0 };
            let c = checksum(acc, self.transport);
            self.transport[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        let mut out = Vec::with_capacity(34 + self.transport.len());
        ethernet(&mut out, self.src_mac, self.dst_mac, ETHERTYPE_IPV4);
        ipv4(&mut out, self.src, self.dst, self.ip, self.transport.len());
        out.extend_from_slice(self.transport);
        out
    }
}

/// A TCP header (20 bytes plus `options`, padded to a multiple of 4) and payload,
/// checksum left zero.
pub struct TcpFields<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
    pub options: &'a [u8],
    pub payload: &'a [u8],
}

pub fn tcp(t: &TcpFields<'_>) -> Vec<u8> {
    let opt_len = t.options.len().min(40).div_ceil(4) * 4;
    let mut v = Vec::with_capacity(20 + opt_len + t.payload.len());
    v.extend_from_slice(&t.sport.to_be_bytes());
    v.extend_from_slice(&t.dport.to_be_bytes());
    v.extend_from_slice(&t.seq.to_be_bytes());
    v.extend_from_slice(&t.ack.to_be_bytes());
    v.push((((20 + opt_len) / 4) as u8) << 4);
    v.push(t.flags);
    v.extend_from_slice(&t.window.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&t.urgent.to_be_bytes());
    let o = &t.options[..t.options.len().min(40)];
    v.extend_from_slice(o);
    v.resize(20 + opt_len, 0);
    v.extend_from_slice(t.payload);
    v
}

/// An ARP request or reply (RFC 826) for Ethernet and IPv4.
pub fn arp(
    op: u16,
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    sender: ([u8; 6], Ipv4Addr),
    target: ([u8; 6], Ipv4Addr),
) -> Vec<u8> {
    let mut v = Vec::with_capacity(42);
    ethernet(&mut v, eth_src, eth_dst, ETHERTYPE_ARP);
    v.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    v.extend_from_slice(&op.to_be_bytes());
    v.extend_from_slice(&sender.0);
    v.extend_from_slice(&sender.1.octets());
    v.extend_from_slice(&target.0);
    v.extend_from_slice(&target.1.octets());
    v
}

/// What a valid frame from the stack was, for the caller to learn from.
#[derive(Debug)]
pub enum Sent<'a> {
    Arp,
    /// A fragment (only its IPv4 header can be checked alone).
    Fragment,
    Icmp,
    Udp,
    Tcp {
        ip: Ipv4Slice<'a>,
        segment: &'a [u8],
    },
    /// A whole datagram of another protocol.
    OtherIp,
}

/// Checks a frame the stack sent: Ethernet from our MAC; an ARP packet for
/// Ethernet/IPv4; or an IPv4 datagram from our address whose header checksum
/// holds, whose lengths agree with the frame, no longer than the MTU, and (when
/// whole) whose ICMP, UDP or TCP checksum holds (with the pseudo-header for UDP
/// and TCP).
pub fn check_sent<'a>(frame: &'a [u8], mac: [u8; 6], addr: Ipv4Addr, mtu: usize) -> Result<Sent<'a>, String> {
    let eth = Ethernet2Slice::from_slice_without_fcs(frame).map_err(|e| format!("Ethernet: {e}"))?;
    if eth.source() != mac {
        return Err(format!("source MAC {:02x?} is not ours", eth.source()));
    }
    if frame.len() > 14 + mtu {
        return Err(format!("a {}-byte frame is over the MTU {mtu}", frame.len()));
    }
    let payload = eth.payload_slice();
    match eth.ether_type() {
        EtherType::ARP => {
            let a = ArpPacketSlice::from_slice(payload).map_err(|e| format!("ARP: {e}"))?;
            if a.hw_addr_size() != 6 || a.proto_addr_size() != 4 || a.sender_hw_addr() != mac {
                return Err("an ARP packet not for Ethernet/IPv4 or not from our MAC".into());
            }
            Ok(Sent::Arp)
        }
        EtherType::IPV4 => check_ipv4(payload, addr),
        other => Err(format!("ethertype {other:?}")),
    }
}

fn check_ipv4(payload: &[u8], addr: Ipv4Addr) -> Result<Sent<'_>, String> {
    let ip = Ipv4Slice::from_slice(payload).map_err(|e| format!("IPv4: {e}"))?;
    let h = ip.header();
    let header = h.slice();
    if sum(0, header) != 0xffff {
        return Err("IPv4 header checksum".into());
    }
    if h.source_addr() != addr {
        return Err(format!("IPv4 source {} is not ours", h.source_addr()));
    }
    if usize::from(h.total_len()) != payload.len() {
        return Err(format!("IPv4 total length {} in a {}-byte payload", h.total_len(), payload.len()));
    }
    if h.ttl() == 0 {
        return Err("TTL 0".into());
    }
    if h.more_fragments() || h.fragments_offset().value() != 0 {
        return Ok(Sent::Fragment);
    }
    let body = ip.payload().payload;
    let (src, dst) = (h.source_addr(), h.destination_addr());
    match h.protocol().0 {
        PROTO_ICMP => {
            if body.len() < 8 || sum(0, body) != 0xffff {
                return Err("ICMP checksum or length".into());
            }
            Ok(Sent::Icmp)
        }
        PROTO_UDP => {
            if body.len() < 8 || usize::from(u16::from_be_bytes([body[4], body[5]])) != body.len() {
                return Err("UDP length".into());
            }
            // RFC 768: a zero checksum means none was computed.
            let none = body[6..8] == [0, 0];
            if !none && sum(pseudo(src, dst, PROTO_UDP, body.len()), body) != 0xffff {
                return Err("UDP checksum".into());
            }
            Ok(Sent::Udp)
        }
        PROTO_TCP => {
            let off = body.get(12).map_or(0, |b| usize::from(b >> 4) * 4);
            if body.len() < 20 || off < 20 || off > body.len() {
                return Err("TCP header length".into());
            }
            if sum(pseudo(src, dst, PROTO_TCP, body.len()), body) != 0xffff {
                return Err("TCP checksum".into());
            }
            Ok(Sent::Tcp { ip, segment: body })
        }
        _ => Ok(Sent::OtherIp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_frames_pass_the_check() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let ip = IpFields { proto: PROTO_TCP, id: 1, frag: 0x4000, ttl: 64 };
        let fields = TcpFields {
            sport: 1,
            dport: 2,
            seq: 3,
            ack: 4,
            flags: 0x12,
            window: 5,
            urgent: 0,
            options: &[2, 4, 5, 0xb4, 1],
            payload: b"odd",
        };
        let mut t = tcp(&fields);
        let f = Datagram {
            src_mac: [2; 6],
            dst_mac: [4; 6],
            src: a,
            dst: b,
            ip,
            transport: &mut t,
            csum_at: Some(16),
            pseudo_sum: true,
        }
        .write();
        assert!(matches!(check_sent(&f, [2; 6], a, 1500), Ok(Sent::Tcp { .. })));
        let mut bad = f.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(check_sent(&bad, [2; 6], a, 1500).unwrap_err(), "TCP checksum");
        let g = arp(1, [2; 6], [0xff; 6], ([2; 6], a), ([0; 6], b));
        assert!(matches!(check_sent(&g, [2; 6], a, 1500), Ok(Sent::Arp)));
    }
}
