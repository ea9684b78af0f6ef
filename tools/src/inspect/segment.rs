//! TCP segments out of captured frames. etherparse finds the TCP header in the
//! Ethernet frame (IPv4 or IPv6); the core's parser ([`stack::tcp::segment`])
//! reads the header and its options, so the inspector and the stack agree on
//! what a segment says.
//!
//! The inspector keeps a record of its own ([`Segment`]) beside the core's
//! borrowed view because it needs what the core's view has not: the capture
//! time, the addresses (IPv6 too), and owned data that outlives the frame while
//! the segment waits to be taken as received.

use crate::tcp_flags::TcpFlags;
use stack::tcp::segment;
use stack::tcp::Seq;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// One TCP segment as seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Capture timestamp (time since the Unix epoch, as the capture stores it).
    pub ts: Duration,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: Seq,
    pub ack: Seq,
    pub syn: bool,
    pub ack_flag: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    /// The window field as sent (unscaled).
    pub win: u16,
    /// The window scale option, on a SYN (RFC 7323 section 2.2).
    pub wscale: Option<u8>,
    /// Payload length.
    pub len: u32,
}

impl Segment {
    /// The record of the core's parsed view `seg`, captured at `ts` from `src` to `dst`.
    fn new(ts: Duration, src: SocketAddr, dst: SocketAddr, seg: &segment::Segment<'_>) -> Segment {
        Segment {
            ts,
            src,
            dst,
            seq: seg.seq,
            ack: seg.ack,
            syn: seg.syn,
            ack_flag: seg.ack_flag,
            fin: seg.fin,
            rst: seg.rst,
            psh: seg.psh,
            win: seg.wnd,
            // The option means something on a SYN only.
            wscale: if seg.syn { seg.options.wscale } else { None },
            len: seg.payload.len() as u32,
        }
    }

    /// Sequence space the segment occupies: its text plus one for SYN and for FIN
    /// (RFC 9293 section 3.4, SEG.LEN).
    pub fn seq_len(&self) -> u32 {
        self.len + u32::from(self.syn) + u32::from(self.fin)
    }

    /// The flags in RFC 9293's notation, as the timeline shows them: `SYN,ACK`,
    /// `FIN,PSH,ACK`...
    pub fn flags(&self) -> String {
        let flags = TcpFlags {
            syn: self.syn,
            fin: self.fin,
            rst: self.rst,
            psh: self.psh,
            ack: self.ack_flag,
            ..TcpFlags::default()
        };
        flags.names(",")
    }
}

/// Why a frame yielded no segment.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not TCP (ARP, ICMP, UDP, ...) or a non-first IP fragment.
    NotTcp,
    /// Claimed to be TCP but its headers are cut short or malformed.
    Malformed,
}

/// Parses an Ethernet frame; `Err` says why it is not a TCP segment.
pub fn parse_frame(ts: Duration, frame: &[u8]) -> Result<Segment, Skip> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let packet = match SlicedPacket::from_ethernet(frame) {
        Ok(p) => p,
        Err(_) => return Err(if looks_like_tcp(frame) { Skip::Malformed } else { Skip::NotTcp }),
    };
    let (src_ip, dst_ip) = match &packet.net {
        Some(NetSlice::Ipv4(ip)) => (ip.header().source_addr().into(), ip.header().destination_addr().into()),
        Some(NetSlice::Ipv6(ip)) => (ip.header().source_addr().into(), ip.header().destination_addr().into()),
        _ => return Err(Skip::NotTcp),
    };
    let Some(TransportSlice::Tcp(tcp)) = &packet.transport else {
        return Err(Skip::NotTcp);
    };
    let src = SocketAddr::new(src_ip, tcp.source_port());
    let dst = SocketAddr::new(dst_ip, tcp.destination_port());
    let mut bytes = tcp.slice().to_vec();
    let seg = parse_unverified(&mut bytes).ok_or(Skip::Malformed)?;
    Ok(Segment::new(ts, src, dst, &seg))
}

/// The core's parse of a TCP header and payload, without its checksum check.
///
/// The core verifies the checksum over an IPv4 pseudo-header and drops a
/// segment that fails. A capture cannot pass that check: taken on the sending
/// host, its checksums are often left to the NIC (so wrong in the capture), and
/// an IPv6 segment's pseudo-header is not IPv4's. So the checksum field is
/// filled in over a placeholder pseudo-header first; everything else (header
/// layout, the options walk) is the core's. `None` if the core finds the
/// segment malformed (cut short, illegal option lengths).
fn parse_unverified(bytes: &mut [u8]) -> Option<segment::Segment<'_>> {
    const CHECKSUM: std::ops::Range<usize> = 16..18;
    const NOWHERE: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
    bytes.get_mut(CHECKSUM)?.fill(0);
    let sum = segment::checksum(NOWHERE, NOWHERE, &[bytes]);
    bytes[CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    segment::parse(NOWHERE, NOWHERE, bytes).ok()
}

/// Whether a frame that etherparse refused says, in its IPv4 or IPv6 header, that
/// it carries TCP: such a frame is counted as malformed rather than as other traffic.
fn looks_like_tcp(frame: &[u8]) -> bool {
    const TCP: u8 = 6;
    match frame.get(12..14) {
        Some([0x08, 0x00]) => frame.get(14 + 9) == Some(&TCP),
        Some([0x86, 0xdd]) => frame.get(14 + 6) == Some(&TCP),
        _ => false,
    }
}
