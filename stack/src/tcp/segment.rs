//! Parsing and building TCP segments (RFC 9293 section 3.1), with etherparse
//! doing the header layout. etherparse does not verify checksums, so the checksum
//! over the pseudo-header (RFC 9293 section 3.1, "Checksum") is verified here, with
//! the stack's Internet checksum ([`crate::checksum`]).

use super::seq::Seq;
use crate::counters::DropReason;
use etherparse::{IpNumber, TcpHeader, TcpHeaderSlice, TcpOptionElement, TcpOptionsIterator};
use std::net::Ipv4Addr;

/// Option kinds (RFC 9293 section 3.2, RFC 7323, RFC 2018).
const KIND_END: u8 = 0;
const KIND_NOP: u8 = 1;
const KIND_MSS: u8 = 2;
const KIND_WSCALE: u8 = 3;
const KIND_SACK_PERMITTED: u8 = 4;
const KIND_TIMESTAMP: u8 = 8;

/// The options we understand. Unknown options are skipped (RFC 9293 section
/// 3.1, MUST-6); SACK blocks are parsed by etherparse but not used.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Maximum segment size (RFC 9293 section 3.7.1); only meaningful on a SYN.
    pub mss: Option<u16>,
    /// Window scale shift (RFC 7323 section 2); only meaningful on a SYN.
    pub wscale: Option<u8>,
    /// SACK permitted (RFC 2018); noted, not used.
    pub sack_permitted: bool,
    /// Timestamps (TSval, TSecr) (RFC 7323 section 3); parsed, not used.
    pub timestamp: Option<(u32, u32)>,
}

/// An inbound segment, checksum verified, options parsed.
#[derive(Copy, Clone, Debug)]
pub struct Segment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: Seq,
    pub ack: Seq,
    pub syn: bool,
    pub ack_flag: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub urg: bool,
    /// The window field as sent (unscaled).
    pub wnd: u16,
    pub options: Options,
    pub payload: &'a [u8],
}

impl Segment<'_> {
    /// SEG.LEN: the octets of sequence space the segment occupies, SYN and FIN
    /// included (RFC 9293 section 3.4).
    pub fn len(&self) -> u32 {
        self.payload.len() as u32 + self.syn as u32 + self.fin as u32
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Parses one TCP segment received from `src` to `dst`. Never reads past `bytes`:
/// an illegal option length drops the segment (RFC 9293 section 3.1, MUST-7:
/// handled without crashing) and is counted as [`DropReason::TcpBadOptions`].
pub fn parse(src: Ipv4Addr, dst: Ipv4Addr, bytes: &[u8]) -> Result<Segment<'_>, DropReason> {
    let h = TcpHeaderSlice::from_slice(bytes).map_err(|_| DropReason::TcpTruncated)?;
    if bytes.len() > u16::MAX as usize || checksum(src, dst, &[bytes]) != 0 {
        return Err(DropReason::TcpBadChecksum);
    }
    let options = parse_options(h.options())?;
    Ok(Segment {
        src_port: h.source_port(),
        dst_port: h.destination_port(),
        seq: Seq(h.sequence_number()),
        ack: Seq(h.acknowledgment_number()),
        syn: h.syn(),
        ack_flag: h.ack(),
        fin: h.fin(),
        rst: h.rst(),
        psh: h.psh(),
        urg: h.urg(),
        wnd: h.window_size(),
        options,
        payload: &bytes[h.slice().len()..],
    })
}

/// Walks the option list kind by kind. etherparse's iterator stops at the first
/// option it does not know, so the walk (kind, length) is done here and each
/// option we know is handed to etherparse to decode.
fn parse_options(mut opts: &[u8]) -> Result<Options, DropReason> {
    let mut out = Options::default();
    while let Some(&kind) = opts.first() {
        match kind {
            KIND_END => break,
            KIND_NOP => {
                opts = &opts[1..];
                continue;
            }
            _ => {}
        }
        // Every other option has a length octet that counts kind and length.
        let len = *opts.get(1).ok_or(DropReason::TcpBadOptions)? as usize;
        if len < 2 || len > opts.len() {
            return Err(DropReason::TcpBadOptions);
        }
        let (this, rest) = opts.split_at(len);
        opts = rest;
        match kind {
            KIND_MSS | KIND_WSCALE | KIND_SACK_PERMITTED | KIND_TIMESTAMP => {
                match TcpOptionsIterator::from_slice(this).next() {
                    Some(Ok(TcpOptionElement::MaximumSegmentSize(m))) => out.mss = Some(m),
                    Some(Ok(TcpOptionElement::WindowScale(s))) => out.wscale = Some(s),
                    Some(Ok(TcpOptionElement::SelectiveAcknowledgementPermitted)) => out.sack_permitted = true,
                    Some(Ok(TcpOptionElement::Timestamp(v, e))) => out.timestamp = Some((v, e)),
                    // A known kind with the wrong length.
                    _ => return Err(DropReason::TcpBadOptions),
                }
            }
            // MUST-6: options we do not implement are ignored.
            _ => {}
        }
    }
    Ok(out)
}

/// An outbound segment's header fields.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentOut {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: Seq,
    /// The acknowledgment number, with the ACK bit set, or `None`.
    pub ack: Option<Seq>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub wnd: u16,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
}

/// Appends the segment (header and payload, the payload in up to two pieces as
/// a ring buffer hands it out) to `out` and fills in its checksum.
pub fn write(out: &mut Vec<u8>, src: Ipv4Addr, dst: Ipv4Addr, seg: &SegmentOut, payload: [&[u8]; 2]) {
    let mut h = TcpHeader::new(seg.src_port, seg.dst_port, seg.seq.0, seg.wnd);
    h.acknowledgment_number = seg.ack.map_or(0, |a| a.0);
    h.ack = seg.ack.is_some();
    h.syn = seg.syn;
    h.fin = seg.fin;
    h.rst = seg.rst;
    h.psh = seg.psh;
    let mut elements: [TcpOptionElement; 3] = [TcpOptionElement::Noop, TcpOptionElement::Noop, TcpOptionElement::Noop];
    let mut n = 0;
    if let Some(m) = seg.mss {
        elements[n] = TcpOptionElement::MaximumSegmentSize(m);
        n += 1;
    }
    if let Some(s) = seg.wscale {
        // NOP, then the 3-byte option: the list stays 4-byte aligned.
        elements[n] = TcpOptionElement::Noop;
        elements[n + 1] = TcpOptionElement::WindowScale(s);
        n += 2;
    }
    h.set_options(&elements[..n]).expect("at most 8 bytes of options");
    let start = out.len();
    out.extend_from_slice(&h.to_bytes());
    out.extend_from_slice(payload[0]);
    out.extend_from_slice(payload[1]);
    let sum = checksum(src, dst, &[&out[start..]]);
    out[start + 16..start + 18].copy_from_slice(&sum.to_be_bytes());
}

/// The TCP checksum over the IPv4 pseudo-header and `parts` (RFC 9293 section
/// 3.1): zero when verifying an intact segment whose checksum field is filled in.
/// The arithmetic is the stack's one Internet checksum ([`crate::checksum`]).
pub fn checksum(src: Ipv4Addr, dst: Ipv4Addr, parts: &[&[u8]]) -> u16 {
    crate::checksum::transport(src, dst, IpNumber::TCP, parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn syn() -> SegmentOut {
        SegmentOut {
            src_port: 1234,
            dst_port: 80,
            seq: Seq(1000),
            syn: true,
            wnd: 65535,
            mss: Some(1460),
            wscale: Some(7),
            ..Default::default()
        }
    }

    #[test]
    fn build_then_parse_round_trips() {
        let mut out = Vec::new();
        write(&mut out, A, B, &syn(), [b"", b""]);
        assert_eq!(out.len(), 28);
        let s = parse(A, B, &out).unwrap();
        assert_eq!(
            (s.src_port, s.dst_port, s.seq, s.syn, s.ack_flag, s.wnd),
            (1234, 80, Seq(1000), true, false, 65535)
        );
        assert_eq!(s.options, Options { mss: Some(1460), wscale: Some(7), ..Default::default() });
        assert_eq!(s.len(), 1);

        let mut out = Vec::new();
        let d = SegmentOut { seq: Seq(5), ack: Some(Seq(77)), psh: true, fin: true, wnd: 9, ..syn() };
        let d = SegmentOut { mss: None, wscale: None, syn: false, ..d };
        write(&mut out, A, B, &d, [b"hel", b"lo!"]);
        let s = parse(A, B, &out).unwrap();
        assert_eq!(s.payload, b"hello!");
        assert_eq!((s.ack, s.ack_flag, s.psh, s.fin, s.syn), (Seq(77), true, true, true, false));
        assert_eq!(s.len(), 7);
    }

    #[test]
    fn checksum_is_verified() {
        let mut out = Vec::new();
        write(&mut out, A, B, &SegmentOut { mss: None, wscale: None, ..syn() }, [b"abc", b""]);
        // From another address: the pseudo-header differs.
        assert_eq!(parse(Ipv4Addr::new(10, 0, 0, 3), B, &out).unwrap_err(), DropReason::TcpBadChecksum);
        let mut bad = out.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(parse(A, B, &bad).unwrap_err(), DropReason::TcpBadChecksum);
        assert!(parse(A, B, &out).is_ok());
        assert_eq!(parse(A, B, &out[..19]).unwrap_err(), DropReason::TcpTruncated);
    }

    #[test]
    fn checksum_of_odd_pieces_matches_contiguous() {
        let data: Vec<u8> = (0..37u8).collect();
        let whole = checksum(A, B, &[&data]);
        for cut in 0..data.len() {
            assert_eq!(checksum(A, B, &[&data[..cut], &data[cut..]]), whole, "cut {cut}");
        }
    }

    /// A segment with raw option bytes (padded with END to a multiple of 4).
    fn with_options(raw: &[u8]) -> Vec<u8> {
        let mut opts = raw.to_vec();
        while !opts.len().is_multiple_of(4) {
            opts.push(0);
        }
        let mut h = TcpHeader::new(1, 2, 3, 4);
        h.syn = true;
        h.set_options_raw(&opts).unwrap();
        let mut out = h.to_bytes().to_vec();
        out.extend_from_slice(b"xy");
        let sum = checksum(A, B, &[&out]);
        out[16..18].copy_from_slice(&sum.to_be_bytes());
        out
    }

    #[test]
    fn unknown_options_are_skipped() {
        // Unknown kind 99 of length 6, then MSS, SACK-permitted, timestamps.
        let raw = [99, 6, 1, 2, 3, 4, 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        let seg = with_options(&raw);
        let s = parse(A, B, &seg).unwrap();
        assert_eq!(s.options, Options { mss: Some(1460), wscale: None, sack_permitted: true, timestamp: Some((1, 2)) });
        assert_eq!(s.payload, b"xy");
    }

    #[test]
    fn illegal_option_lengths_are_refused_without_reading_past() {
        for raw in [
            &[99, 0][..],        // zero length (MUST-7's example)
            &[99, 1][..],        // shorter than its own kind and length
            &[2, 4, 5][..],      // MSS cut short by the header end... padded: length 4 fits but
            &[2, 3, 5, 180][..], // MSS with length 3
            &[3, 4, 7, 0][..],   // window scale with length 4
            &[99, 40, 0, 0][..], // runs past the header
            &[1, 1, 1, 2][..],   // NOPs then a kind with no length octet
        ] {
            let seg = with_options(raw);
            let r = parse(A, B, &seg);
            if raw == [2, 4, 5] {
                // Padded with END, this is a legal MSS of 0x0500.
                assert_eq!(r.unwrap().options.mss, Some(0x0500));
                continue;
            }
            assert_eq!(r.unwrap_err(), DropReason::TcpBadOptions, "{raw:?}");
        }
        // END stops the walk: what follows is not read.
        let seg = with_options(&[0, 99, 0, 0]);
        assert_eq!(parse(A, B, &seg).unwrap().options, Options::default());
    }
}
