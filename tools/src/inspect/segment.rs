//! TCP segments out of captured frames. [`crate::link`] strips the link header
//! (Ethernet, Linux cooked, loopback, raw IP); the IPv4 or IPv6 header is read
//! here, trusting what the headers say over what the capture kept: a frame cut by
//! a snap length keeps its payload length, and an IPv4 total length of 0 (what a
//! capture on the sending host records for a TSO segment) is taken from the frame.
//! The core's parser ([`stack::tcp::segment`]) reads the TCP header and its
//! options, so the inspector and the stack agree on what a segment says.
//!
//! The inspector keeps a record of its own ([`Segment`]) beside the core's
//! borrowed view because it needs what the core's view has not: the capture
//! time, the addresses (IPv6 too), and owned data that outlives the frame while
//! the segment waits to be taken as received.

use crate::link::{self, Network};
use crate::tcp_flags::TcpFlags;
use stack::tcp::segment;
use stack::tcp::Seq;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// One TCP segment as seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The frame's number in the capture (1-based, as Wireshark counts).
    pub number: u64,
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
    /// Payload length, as the IP header says (the capture may hold less).
    pub len: u32,
    /// SACK blocks (RFC 2018), absolute sequence numbers.
    pub sack: Vec<(Seq, Seq)>,
    /// How the frame was read: cut short by the capture, or a TSO segment.
    pub read: Read,
}

/// How a frame's headers were read.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Read {
    #[default]
    Whole,
    /// The capture kept less than the payload (a snap length); the headers are whole.
    CutShort,
    /// IPv4 total length 0 (or IPv6 payload length 0): the length came from the frame.
    LengthFromFrame,
}

impl Segment {
    /// The record of the core's parsed view `seg`, captured at `ts` from `src` to `dst`.
    fn new(ts: Duration, src: SocketAddr, dst: SocketAddr, seg: &segment::Segment<'_>, len: u32) -> Segment {
        Segment {
            number: 0,
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
            len,
            sack: Vec::new(),
            read: Read::Whole,
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not TCP (ARP, ICMP, UDP, ...) or a non-first IP fragment.
    NotTcp,
    /// Claimed to be TCP but its headers are cut short or malformed: why.
    Malformed(String),
}

/// A captured frame, from its link header on.
#[derive(Copy, Clone, Debug)]
pub struct Captured<'a> {
    pub number: u64,
    pub ts: Duration,
    pub link: u32,
    pub data: &'a [u8],
    /// Length on the wire.
    pub orig_len: u32,
}

/// The IP header's view of a TCP segment: the addresses, where the TCP header
/// starts in the frame, and how long the TCP segment is on the wire.
struct IpView {
    src: IpAddr,
    dst: IpAddr,
    tcp_at: usize,
    tcp_len: usize,
    length_from_frame: bool,
}

const TCP: u8 = 6;

/// Parses a captured frame; `Err` says why it is not a TCP segment.
pub fn parse(frame: Captured<'_>) -> Result<Segment, Skip> {
    let (net, at) = link::network(frame.link, frame.data).map_err(Skip::Malformed)?;
    // What the frame held on the wire from the IP header on.
    let wire = (frame.orig_len as usize).max(frame.data.len()).saturating_sub(at);
    let ip = match net {
        Network::Ipv4 => ipv4(&frame.data[at..], wire)?,
        Network::Ipv6 => ipv6(&frame.data[at..], wire)?,
        Network::Other => return Err(Skip::NotTcp),
    };
    let tcp = &frame.data[at + ip.tcp_at..];
    let header_len = usize::from(tcp.get(12).ok_or_else(|| cut(tcp.len(), 20))? >> 4) * 4;
    if tcp.len() < header_len.max(20) {
        return Err(cut(tcp.len(), header_len.max(20)));
    }
    let Some(len) = ip.tcp_len.checked_sub(header_len) else {
        return Err(Skip::Malformed(format!(
            "IP length leaves {} bytes for a {header_len}-byte TCP header",
            ip.tcp_len
        )));
    };
    let mut bytes = tcp[..header_len].to_vec();
    let seg = parse_unverified(&mut bytes)
        .ok_or_else(|| Skip::Malformed("the TCP header is malformed (data offset or options)".into()))?;
    let mut out = Segment::new(
        frame.ts,
        SocketAddr::new(ip.src, seg.src_port),
        SocketAddr::new(ip.dst, seg.dst_port),
        &seg,
        len as u32,
    );
    out.number = frame.number;
    out.sack = sack_blocks(&tcp[20..header_len]);
    out.read = if ip.length_from_frame {
        Read::LengthFromFrame
    } else if tcp.len() < header_len + len {
        Read::CutShort
    } else {
        Read::Whole
    };
    Ok(out)
}

fn cut(have: usize, need: usize) -> Skip {
    Skip::Malformed(format!("TCP header cut short by the capture ({have} of {need} bytes)"))
}

fn ipv4(b: &[u8], wire: usize) -> Result<IpView, Skip> {
    let bad = |why: String| Err(Skip::Malformed(why));
    if b.len() < 20 {
        return if b.get(9) == Some(&TCP) || b.len() < 10 {
            bad(format!("IPv4 header cut short ({} bytes)", b.len()))
        } else {
            Err(Skip::NotTcp)
        };
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    if b[0] >> 4 != 4 || ihl < 20 || b.len() < ihl {
        return bad(format!("bad IPv4 header (version/IHL byte {:#04x}, {} bytes captured)", b[0], b.len()));
    }
    let fragment_offset = u16::from_be_bytes([b[6], b[7]]) & 0x1fff;
    if b[9] != TCP || fragment_offset != 0 {
        return Err(Skip::NotTcp);
    }
    let total = usize::from(u16::from_be_bytes([b[2], b[3]]));
    // RFC 791 total length; 0 is what a capture on a TSO sender records.
    let (total, length_from_frame) = if total == 0 { (wire, true) } else { (total, false) };
    if total < ihl || total > wire {
        return bad(format!("IPv4 total length {total} does not fit the frame ({wire} bytes of IP on the wire)"));
    }
    let src = Ipv4Addr::new(b[12], b[13], b[14], b[15]).into();
    let dst = Ipv4Addr::new(b[16], b[17], b[18], b[19]).into();
    Ok(IpView { src, dst, tcp_at: ihl, tcp_len: total - ihl, length_from_frame })
}

fn ipv6(b: &[u8], wire: usize) -> Result<IpView, Skip> {
    if b.len() < 40 {
        return Err(Skip::Malformed(format!("IPv6 header cut short ({} bytes)", b.len())));
    }
    let payload = usize::from(u16::from_be_bytes([b[4], b[5]]));
    let (end, length_from_frame) = if payload == 0 { (wire, true) } else { (40 + payload, false) };
    if end > wire {
        return Err(Skip::Malformed(format!("IPv6 payload length {payload} does not fit the frame")));
    }
    let (mut next, mut at) = (b[6], 40);
    // Extension headers (RFC 8200 section 4): hop-by-hop, routing, destination
    // options, fragment, authentication.
    loop {
        match next {
            TCP => break,
            0 | 43 | 60 | 44 | 51 => {
                let h = b.get(at..at + 8).ok_or_else(|| Skip::Malformed("IPv6 extension header cut short".into()))?;
                if next == 44 && u16::from_be_bytes([h[2], h[3]]) >> 3 != 0 {
                    return Err(Skip::NotTcp);
                }
                let len = match next {
                    44 => 8,
                    51 => (usize::from(h[1]) + 2) * 4,
                    _ => (usize::from(h[1]) + 1) * 8,
                };
                next = h[0];
                at += len;
            }
            _ => return Err(Skip::NotTcp),
        }
    }
    if at > end {
        return Err(Skip::Malformed("IPv6 extension headers overrun the payload length".into()));
    }
    let addr = |r: std::ops::Range<usize>| -> IpAddr {
        let o: [u8; 16] = b[r].try_into().expect("16 bytes");
        Ipv6Addr::from(o).into()
    };
    Ok(IpView { src: addr(8..24), dst: addr(24..40), tcp_at: at, tcp_len: end - at, length_from_frame })
}

/// The SACK option's blocks (RFC 2018 section 3), from options the core's
/// parser has already walked and found well-formed.
fn sack_blocks(options: &[u8]) -> Vec<(Seq, Seq)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < options.len() {
        match options[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let Some(&len) = options.get(i + 1) else { break };
                let len = usize::from(len).max(2);
                if kind == 5 {
                    let body = options.get(i + 2..i + len).unwrap_or(&[]);
                    for b in body.chunks_exact(8) {
                        let left = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                        let right = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                        out.push((Seq(left), Seq(right)));
                    }
                }
                i += len;
            }
        }
    }
    out
}

/// The core's parse of a TCP header, without its checksum check.
///
/// The core verifies the checksum over an IPv4 pseudo-header and drops a
/// segment that fails. A capture cannot pass that check: taken on the sending
/// host, its checksums are often left to the NIC (so wrong in the capture), an
/// IPv6 segment's pseudo-header is not IPv4's, and a frame cut by the snap length
/// lacks the payload the sum covers. So only the header is handed over, its
/// checksum filled in over a placeholder pseudo-header first; everything else
/// (header layout, the options walk) is the core's. `None` if the core finds the
/// header malformed (illegal option lengths).
fn parse_unverified(bytes: &mut [u8]) -> Option<segment::Segment<'_>> {
    const CHECKSUM: std::ops::Range<usize> = 16..18;
    const NOWHERE: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
    bytes.get_mut(CHECKSUM)?.fill(0);
    let sum = segment::checksum(NOWHERE, NOWHERE, &[bytes]);
    bytes[CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    segment::parse(NOWHERE, NOWHERE, bytes).ok()
}
