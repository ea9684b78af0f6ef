//! ICMP (RFC 792, RFC 1122 section 3.2.2): the message formats. Parsing what
//! arrives (echo requests to answer, errors to hand to UDP and TCP), writing what
//! we send, and the rules on when an error may be sent at all.
//!
//! These are pure functions over one message. Sending (the rate limit, the IP
//! header, the transmit queue) is the IP layer's ([`crate::IpLayer`]), and handing
//! an error to a transport is the composition's ([`crate::Stack`]), so that this
//! module depends only on IPv4's packet type.

use crate::checksum;
use crate::counters::{Counters, DropReason};
use crate::ipv4::IpPacket;
use etherparse::{IpNumber, Ipv4HeaderSlice};
use std::net::Ipv4Addr;

pub const TYPE_ECHO_REPLY: u8 = 0;
pub const TYPE_DEST_UNREACHABLE: u8 = 3;
pub const TYPE_SOURCE_QUENCH: u8 = 4;
pub const TYPE_ECHO_REQUEST: u8 = 8;
pub const TYPE_TIME_EXCEEDED: u8 = 11;
pub const TYPE_PARAMETER_PROBLEM: u8 = 12;

pub const CODE_NET_UNREACHABLE: u8 = 0;
pub const CODE_HOST_UNREACHABLE: u8 = 1;
pub const CODE_PROTOCOL_UNREACHABLE: u8 = 2;
pub const CODE_PORT_UNREACHABLE: u8 = 3;
pub const CODE_FRAG_NEEDED: u8 = 4;
pub const CODE_REASSEMBLY_TIME_EXCEEDED: u8 = 1;

/// An ICMP error about a datagram we sent, handed up to the transport that sent it
/// (RFC 1122 section 3.2.2: "the ICMP error message MUST be passed to the transport layer").
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IcmpError {
    pub kind: IcmpErrorKind,
    /// Who reported it (for a locally detected failure, our own address).
    pub reporter: Ipv4Addr,
    /// The quoted datagram's source (us), destination and protocol.
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpNumber,
    /// The first 8 bytes of the quoted payload: the transport's ports (and TCP's sequence number).
    pub quoted: [u8; 8],
    pub quoted_len: usize,
}

impl IcmpError {
    pub fn src_port(&self) -> Option<u16> {
        (self.quoted_len >= 2).then(|| u16::from_be_bytes([self.quoted[0], self.quoted[1]]))
    }
    pub fn dst_port(&self) -> Option<u16> {
        (self.quoted_len >= 4).then(|| u16::from_be_bytes([self.quoted[2], self.quoted[3]]))
    }
}

/// What kind of error, in the terms transports act on (RFC 1122 section 4.2.3.9 for TCP).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// Destination unreachable with its code (0 net, 1 host, 2 protocol, 3 port, 4 fragmentation needed, ...).
    DestUnreachable {
        code: u8,
        next_hop_mtu: u16,
    },
    /// Time exceeded (code 0 in transit, 1 reassembly).
    TimeExceeded {
        code: u8,
    },
    ParameterProblem {
        pointer: u8,
    },
    SourceQuench,
    /// ARP never resolved the next hop: reported locally, like Linux's EHOSTUNREACH.
    LocalHostUnreachable,
}

impl IcmpErrorKind {
    /// RFC 1122 section 4.2.3.9: codes 2 to 4 (protocol, port, fragmentation needed)
    /// are hard errors; the rest are soft (MUST-56: TCP must not abort on them).
    pub fn is_hard(&self) -> bool {
        matches!(self, IcmpErrorKind::DestUnreachable { code: 2..=4, .. })
    }
}

/// What an inbound ICMP message calls for.
#[derive(Debug)]
pub enum IcmpInput {
    /// Answer with an echo reply carrying this identifier, sequence number and data.
    Echo { ident_seq: [u8; 4] },
    /// Hand this error to the transport layer.
    Error(IcmpError),
    /// Consumed, nothing to do (an echo reply to a ping we did not send, say).
    Consumed,
}

/// Parses an inbound ICMP message (already reassembled).
pub fn input(packet: &IpPacket<'_>, counters: &mut Counters) -> Result<IcmpInput, DropReason> {
    let msg = packet.payload;
    if msg.len() < 8 {
        return Err(DropReason::IcmpTruncated);
    }
    // etherparse does not verify checksums (RFC 792: the checksum covers the whole message).
    if checksum::of(msg) != 0 {
        return Err(DropReason::IcmpBadChecksum);
    }
    let (ty, code) = (msg[0], msg[1]);
    match ty {
        TYPE_ECHO_REQUEST => {
            // RFC 1122 section 3.2.2.6 lets a host ignore echo requests to broadcast
            // addresses; Linux does by default (icmp_echo_ignore_broadcasts).
            if packet.broadcast {
                return Err(DropReason::IcmpBroadcastEcho);
            }
            counters.icmp.rx_echo_requests += 1;
            Ok(IcmpInput::Echo { ident_seq: [msg[4], msg[5], msg[6], msg[7]] })
        }
        TYPE_ECHO_REPLY => {
            counters.icmp.rx_echo_replies += 1;
            Ok(IcmpInput::Consumed)
        }
        TYPE_DEST_UNREACHABLE | TYPE_TIME_EXCEEDED | TYPE_PARAMETER_PROBLEM | TYPE_SOURCE_QUENCH => {
            let kind = match ty {
                TYPE_DEST_UNREACHABLE => {
                    counters.icmp.rx_dest_unreachable += 1;
                    IcmpErrorKind::DestUnreachable { code, next_hop_mtu: u16::from_be_bytes([msg[6], msg[7]]) }
                }
                TYPE_TIME_EXCEEDED => {
                    counters.icmp.rx_time_exceeded += 1;
                    IcmpErrorKind::TimeExceeded { code }
                }
                TYPE_PARAMETER_PROBLEM => {
                    counters.icmp.rx_other_errors += 1;
                    IcmpErrorKind::ParameterProblem { pointer: msg[4] }
                }
                _ => {
                    counters.icmp.rx_other_errors += 1;
                    IcmpErrorKind::SourceQuench
                }
            };
            let quote = parse_quote(&msg[8..])?;
            Ok(IcmpInput::Error(IcmpError { kind, reporter: packet.src, ..quote }))
        }
        _ => Err(DropReason::IcmpUnhandledType),
    }
}

/// Reads the datagram quoted in an ICMP error: its header and first 8 payload bytes
/// (RFC 792). Never reads past what arrived. `kind` and `reporter` are left for the
/// caller to set.
pub(crate) fn parse_quote(quote: &[u8]) -> Result<IcmpError, DropReason> {
    let h = Ipv4HeaderSlice::from_slice(quote).map_err(|_| DropReason::IcmpTruncated)?;
    let rest = &quote[h.slice().len()..];
    let n = rest.len().min(8);
    let mut quoted = [0u8; 8];
    quoted[..n].copy_from_slice(&rest[..n]);
    Ok(IcmpError {
        kind: IcmpErrorKind::SourceQuench,
        reporter: Ipv4Addr::UNSPECIFIED,
        src: h.source_addr(),
        dst: h.destination_addr(),
        protocol: h.protocol(),
        quoted,
        quoted_len: n,
    })
}

/// Whether we may send an ICMP error about `packet` at all (RFC 1122 section 3.2.2):
/// never about an ICMP error, a broadcast, or a non-initial fragment.
pub fn may_send_error_about(packet: &IpPacket<'_>) -> bool {
    if packet.broadcast {
        return false;
    }
    if packet.protocol == IpNumber::ICMP {
        // Errors only about queries (echo request), never about errors.
        return matches!(packet.payload.first(), Some(&TYPE_ECHO_REQUEST) | Some(&TYPE_ECHO_REPLY));
    }
    true
}

/// Writes an ICMP message (type, code, 4 bytes of "rest of header", body) into `out`
/// and fills in its checksum.
pub fn write_message(out: &mut Vec<u8>, ty: u8, code: u8, rest: [u8; 4], body: &[&[u8]]) {
    let start = out.len();
    out.extend_from_slice(&[ty, code, 0, 0]);
    out.extend_from_slice(&rest);
    for part in body {
        out.extend_from_slice(part);
    }
    let sum = checksum::of(&out[start..]);
    out[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv4;

    fn packet(payload: &[u8], broadcast: bool) -> IpPacket<'_> {
        IpPacket {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpNumber::ICMP,
            ttl: 64,
            header: &[],
            payload,
            broadcast,
            csum_trusted: false,
        }
    }

    #[test]
    fn echo_request_is_answered_and_checksum_checked() {
        let mut m = Vec::new();
        write_message(&mut m, TYPE_ECHO_REQUEST, 0, [0, 1, 0, 2], &[b"abc"]);
        let mut c = Counters::default();
        match input(&packet(&m, false), &mut c).unwrap() {
            IcmpInput::Echo { ident_seq } => assert_eq!(ident_seq, [0, 1, 0, 2]),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.icmp.rx_echo_requests, 1);
        assert_eq!(input(&packet(&m, true), &mut c).unwrap_err(), DropReason::IcmpBroadcastEcho);
        m[9] ^= 0xff;
        assert_eq!(input(&packet(&m, false), &mut c).unwrap_err(), DropReason::IcmpBadChecksum);
        assert_eq!(input(&packet(&m[..7], false), &mut c).unwrap_err(), DropReason::IcmpTruncated);
    }

    #[test]
    fn port_unreachable_is_parsed_for_the_transport() {
        // A quoted UDP datagram 10.0.0.2:5000 -> 10.0.0.1:9.
        let mut quoted = vec![0u8; 20];
        ipv4::write_header(
            &mut quoted,
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 1),
            IpNumber::UDP,
            64,
            1,
            false,
            (0, false),
            8,
        );
        quoted.extend_from_slice(&[0x13, 0x88, 0, 9, 0, 8, 0, 0]);
        let mut m = Vec::new();
        write_message(&mut m, TYPE_DEST_UNREACHABLE, CODE_PORT_UNREACHABLE, [0; 4], &[&quoted]);
        let mut c = Counters::default();
        let IcmpInput::Error(e) = input(&packet(&m, false), &mut c).unwrap() else { panic!() };
        assert_eq!(e.kind, IcmpErrorKind::DestUnreachable { code: 3, next_hop_mtu: 0 });
        assert!(e.kind.is_hard());
        assert_eq!((e.src_port(), e.dst_port(), e.protocol), (Some(5000), Some(9), IpNumber::UDP));
        assert_eq!(e.reporter, Ipv4Addr::new(10, 0, 0, 1));
        // A quote cut short inside the IP header is refused, not read past.
        let mut short = Vec::new();
        write_message(&mut short, TYPE_DEST_UNREACHABLE, 3, [0; 4], &[&quoted[..12]]);
        assert_eq!(input(&packet(&short, false), &mut c).unwrap_err(), DropReason::IcmpTruncated);
    }

    #[test]
    fn soft_and_hard_errors() {
        assert!(!IcmpErrorKind::DestUnreachable { code: 1, next_hop_mtu: 0 }.is_hard());
        assert!(!IcmpErrorKind::TimeExceeded { code: 0 }.is_hard());
        assert!(!IcmpErrorKind::SourceQuench.is_hard());
        assert!(IcmpErrorKind::DestUnreachable { code: 2, next_hop_mtu: 0 }.is_hard());
    }
}
