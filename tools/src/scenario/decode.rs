//! Frames decoded for people: a line like Wireshark's packet list (`10.77.0.2 →
//! 10.77.0.1 TCP 7 → 41234 [SYN, ACK] Seq=0 Ack=1 Win=65535 Len=0`), with TCP
//! sequence numbers relative to each direction's ISN as Wireshark shows them;
//! and a frame's fields by name, to say which one a divergence is in.

use crate::tcp_flags::TcpFlags;
use etherparse::{
    ArpOperation, EtherType, IcmpEchoHeader, Icmpv4Type, LinkSlice, NetSlice, SlicedPacket, TransportSlice,
};
use stack::tcp::Seq;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Remembers each TCP direction's ISN, from its SYN, so later segments can be
/// shown relative to it.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    isn: HashMap<(SocketAddrV4, SocketAddrV4), Seq>,
}

/// The TCP flags in Wireshark's order and spelling: `SYN, ACK`.
pub fn tcp_flags(t: &etherparse::TcpSlice<'_>) -> String {
    TcpFlags::of(t).names(", ")
}

/// `n` relative to `isn`, as Wireshark shows it: the distance modulo 2^32,
/// unsigned (RFC 9293 section 3.4 arithmetic, via the core's [`Seq`]).
fn relative(n: u32, isn: Option<Seq>) -> u32 {
    (Seq(n) - isn.unwrap_or_default()) as u32
}

impl Decoder {
    /// One packet-list line for `frame` (without number and time).
    pub fn line(&mut self, frame: &[u8]) -> String {
        let p = match SlicedPacket::from_ethernet(frame) {
            Ok(p) => p,
            Err(e) => return format!("malformed frame ({e})"),
        };
        if let Some(LinkSlice::Ethernet2(eth)) = &p.link {
            if eth.ether_type() == EtherType::ARP {
                return arp_line(eth.payload_slice());
            }
        }
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            return format!("{} bytes, not IPv4", frame.len());
        };
        let h = ip.header();
        let (src, dst) = (h.source_addr(), h.destination_addr());
        if h.is_fragmenting_payload() && (h.fragments_offset().value() != 0 || p.transport.is_none()) {
            return format!(
                "{src} → {dst} IPv4 Fragmented IP protocol (proto={}, off={}, ID={:04x})",
                h.protocol().0,
                h.fragments_offset().value() as u32 * 8,
                h.identification()
            );
        }
        match &p.transport {
            Some(TransportSlice::Tcp(t)) => {
                let from = SocketAddrV4::new(src, t.source_port());
                let to = SocketAddrV4::new(dst, t.destination_port());
                if t.syn() {
                    self.isn.insert((from, to), Seq(t.sequence_number()));
                }
                let seq = relative(t.sequence_number(), self.isn.get(&(from, to)).copied());
                let mut info = format!("{} → {} [{}] Seq={seq}", from.port(), to.port(), tcp_flags(t));
                if t.ack() {
                    let ack = relative(t.acknowledgment_number(), self.isn.get(&(to, from)).copied());
                    info += &format!(" Ack={ack}");
                }
                info += &format!(" Win={} Len={}", t.window_size(), t.payload().len());
                format!("{src} → {dst} TCP {info}")
            }
            Some(TransportSlice::Udp(u)) => {
                format!("{src} → {dst} UDP {} → {} Len={}", u.source_port(), u.destination_port(), u.payload().len())
            }
            Some(TransportSlice::Icmpv4(i)) => {
                let what = match i.icmp_type() {
                    Icmpv4Type::EchoRequest(IcmpEchoHeader { id, seq }) => {
                        format!("Echo (ping) request id={id:#06x}, seq={seq}")
                    }
                    Icmpv4Type::EchoReply(IcmpEchoHeader { id, seq }) => {
                        format!("Echo (ping) reply id={id:#06x}, seq={seq}")
                    }
                    Icmpv4Type::DestinationUnreachable(d) => format!("Destination unreachable ({d:?})"),
                    Icmpv4Type::TimeExceeded(t) => format!("Time exceeded ({t:?})"),
                    other => format!("{other:?}"),
                };
                format!("{src} → {dst} ICMP {what}")
            }
            _ => format!("{src} → {dst} IPv4 protocol {}", h.protocol().0),
        }
    }
}

fn arp_line(payload: &[u8]) -> String {
    match etherparse::ArpPacketSlice::from_slice(payload) {
        Ok(a) => {
            let ip = |b: &[u8]| b.try_into().map(|o: [u8; 4]| Ipv4Addr::from(o).to_string()).unwrap_or_default();
            let mac = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":");
            let (sip, tip) = (ip(a.sender_protocol_addr()), ip(a.target_protocol_addr()));
            match a.operation() {
                ArpOperation::REQUEST if sip == tip => format!("ARP Gratuitous ARP for {sip} (Request)"),
                ArpOperation::REQUEST if sip == "0.0.0.0" => format!("ARP Who has {tip}? (ARP Probe)"),
                ArpOperation::REQUEST => format!("ARP Who has {tip}? Tell {sip}"),
                ArpOperation::REPLY => format!("ARP {sip} is at {}", mac(a.sender_hw_addr())),
                op => format!("ARP operation {}", op.0),
            }
        }
        Err(e) => format!("ARP, malformed ({e})"),
    }
}

/// A frame's fields by name, in header order, then its payload: what a
/// divergence report compares.
pub fn fields(frame: &[u8]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let Ok(p) = SlicedPacket::from_ethernet(frame) else {
        out.push(("frame", hex(frame)));
        return out;
    };
    if let Some(LinkSlice::Ethernet2(eth)) = &p.link {
        out.push(("eth.dst", hex(&eth.destination())));
        out.push(("eth.src", hex(&eth.source())));
        out.push(("eth.type", format!("{:#06x}", eth.ether_type().0)));
        if eth.ether_type() == EtherType::ARP {
            out.push(("arp", hex(eth.payload_slice())));
            return out;
        }
    }
    if let Some(NetSlice::Ipv4(ip)) = &p.net {
        let h = ip.header();
        out.push(("ip.src", h.source_addr().to_string()));
        out.push(("ip.dst", h.destination_addr().to_string()));
        out.push(("ip.len", h.total_len().to_string()));
        out.push(("ip.id", format!("{:#06x}", h.identification())));
        out.push(("ip.flags", format!("DF={} MF={}", h.dont_fragment() as u8, h.more_fragments() as u8)));
        out.push(("ip.frag_offset", (h.fragments_offset().value() as u32 * 8).to_string()));
        out.push(("ip.ttl", h.ttl().to_string()));
        out.push(("ip.proto", h.protocol().0.to_string()));
        out.push(("ip.checksum", format!("{:#06x}", h.header_checksum())));
    }
    let payload: &[u8] = match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            out.push(("tcp.srcport", t.source_port().to_string()));
            out.push(("tcp.dstport", t.destination_port().to_string()));
            out.push(("tcp.seq", t.sequence_number().to_string()));
            out.push(("tcp.ack", t.acknowledgment_number().to_string()));
            out.push(("tcp.flags", tcp_flags(t)));
            out.push(("tcp.window", t.window_size().to_string()));
            out.push(("tcp.options", hex(t.options())));
            out.push(("tcp.checksum", format!("{:#06x}", t.checksum())));
            out.push(("tcp.len", t.payload().len().to_string()));
            t.payload()
        }
        Some(TransportSlice::Udp(u)) => {
            out.push(("udp.srcport", u.source_port().to_string()));
            out.push(("udp.dstport", u.destination_port().to_string()));
            out.push(("udp.length", u.length().to_string()));
            out.push(("udp.checksum", format!("{:#06x}", u.checksum())));
            u.payload()
        }
        Some(TransportSlice::Icmpv4(i)) => {
            out.push(("icmp.type", i.type_u8().to_string()));
            out.push(("icmp.code", i.code_u8().to_string()));
            out.push(("icmp.checksum", format!("{:#06x}", i.checksum())));
            i.payload()
        }
        _ => match &p.net {
            Some(NetSlice::Ipv4(ip)) => ip.payload().payload,
            _ => &[],
        },
    };
    out.push(("payload", hex(payload)));
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The fields in which two frames differ: (name, expected, sent). A payload
/// difference names its first differing byte.
pub fn differences(expected: &[u8], sent: &[u8]) -> Vec<(String, String, String)> {
    let (a, b) = (fields(expected), fields(sent));
    let mut out = Vec::new();
    for (name, va) in &a {
        let vb = b.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or("(absent)");
        if va == vb {
            continue;
        }
        if *name == "payload" || *name == "arp" || *name == "frame" {
            let (pa, pb) = (va.as_bytes(), vb.as_bytes());
            let first = pa.chunks(2).zip(pb.chunks(2)).position(|(x, y)| x != y).unwrap_or(pa.len().min(pb.len()) / 2);
            let byte = |s: &str| s.get(first * 2..first * 2 + 2).unwrap_or("--").to_string();
            out.push((format!("{name} byte {first}"), byte(va), byte(vb)));
            if pa.len() != pb.len() {
                out.push((format!("{name} length"), (pa.len() / 2).to_string(), (pb.len() / 2).to_string()));
            }
        } else {
            out.push((name.to_string(), va.clone(), vb.to_string()));
        }
    }
    for (name, vb) in &b {
        if !a.iter().any(|(n, _)| n == name) {
            out.push((name.to_string(), "(absent)".into(), vb.clone()));
        }
    }
    if out.is_empty() && expected != sent {
        out.push(("frame bytes".into(), expected.len().to_string(), sent.len().to_string()));
    }
    out
}
