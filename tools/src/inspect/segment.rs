//! TCP segments out of captured frames: the few header fields a passive observer
//! needs, parsed with etherparse (which does not verify checksums; a capture taken
//! on the sending host often has checksums left to the NIC, so checking them here
//! would throw good segments away).

use std::net::SocketAddr;
use std::time::Duration;

/// One TCP segment as seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Capture timestamp (time since the Unix epoch, as the capture stores it).
    pub ts: Duration,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
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
    /// Sequence space the segment occupies: its text plus one for SYN and for FIN
    /// (RFC 9293 section 3.4, SEG.LEN).
    pub fn seq_len(&self) -> u32 {
        self.len + u32::from(self.syn) + u32::from(self.fin)
    }

    /// The flags as Wireshark lists them: `SYN,ACK`, `FIN,PSH,ACK`...
    pub fn flags(&self) -> String {
        let mut f = Vec::new();
        for (on, name) in
            [(self.syn, "SYN"), (self.fin, "FIN"), (self.rst, "RST"), (self.psh, "PSH"), (self.ack_flag, "ACK")]
        {
            if on {
                f.push(name);
            }
        }
        f.join(",")
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
    let wscale = tcp.options_iterator().find_map(|o| match o {
        Ok(etherparse::TcpOptionElement::WindowScale(s)) => Some(s),
        _ => None,
    });
    Ok(Segment {
        ts,
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        syn: tcp.syn(),
        ack_flag: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        psh: tcp.psh(),
        win: tcp.window_size(),
        wscale: if tcp.syn() { wscale } else { None },
        len: tcp.payload().len() as u32,
    })
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
