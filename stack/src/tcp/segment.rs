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
const KIND_SACK: u8 = 5;
const KIND_TIMESTAMP: u8 = 8;

/// Most SACK blocks an option holds (RFC 2018 section 3: 4, or 3 beside timestamps).
pub const MAX_SACK_BLOCKS: usize = 4;

/// A SACK block [left, right) (RFC 2018 section 3).
pub type SackBlock = (Seq, Seq);

/// The options we understand. Unknown options are skipped (RFC 9293 section
/// 3.1, MUST-6).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Maximum segment size (RFC 9293 section 3.7.1); only meaningful on a SYN.
    pub mss: Option<u16>,
    /// Window scale shift (RFC 7323 section 2); only meaningful on a SYN.
    pub wscale: Option<u8>,
    /// SACK permitted (RFC 2018 section 2); only meaningful on a SYN.
    pub sack_permitted: bool,
    /// Timestamps (TSval, TSecr) (RFC 7323 section 3).
    pub timestamp: Option<(u32, u32)>,
    /// SACK blocks as sent (RFC 2018 section 3), the first `sack_count` of them.
    pub sack: [SackBlock; MAX_SACK_BLOCKS],
    pub sack_count: u8,
}

impl Options {
    /// The SACK blocks carried, in the order sent.
    pub fn sack_blocks(&self) -> &[SackBlock] {
        &self.sack[..self.sack_count as usize]
    }
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
    parse_fields(h, bytes)
}

/// Parses a segment whose checksum the link vouched for (a TAP with checksum
/// offload: the kernel verified it, or left it partial for a segment that never
/// left the host, see [`crate::offload`]), so it is not verified again.
pub fn parse_trusted(bytes: &[u8]) -> Result<Segment<'_>, DropReason> {
    let h = TcpHeaderSlice::from_slice(bytes).map_err(|_| DropReason::TcpTruncated)?;
    parse_fields(h, bytes)
}

fn parse_fields<'a>(h: TcpHeaderSlice<'a>, bytes: &'a [u8]) -> Result<Segment<'a>, DropReason> {
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
            KIND_SACK => parse_sack(this, &mut out)?,
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

/// A SACK option (RFC 2018 section 3): 2 + 8n octets, 1 <= n <= 4.
fn parse_sack(this: &[u8], out: &mut Options) -> Result<(), DropReason> {
    let body = &this[2..];
    if body.is_empty() || !body.len().is_multiple_of(8) || body.len() / 8 > MAX_SACK_BLOCKS {
        return Err(DropReason::TcpBadOptions);
    }
    for (i, b) in body.chunks_exact(8).enumerate() {
        let left = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let right = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        out.sack[i] = (Seq(left), Seq(right));
    }
    out.sack_count = (body.len() / 8) as u8;
    Ok(())
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
    /// SACK-permitted (RFC 2018 section 2), on a SYN.
    pub sack_permitted: bool,
    /// (TSval, TSecr) (RFC 7323 section 3).
    pub timestamp: Option<(u32, u32)>,
    /// SACK blocks (RFC 2018 section 3), the first `sack_count` sent; the
    /// writer keeps as many as fit beside the other options.
    pub sack: [SackBlock; MAX_SACK_BLOCKS],
    pub sack_count: u8,
    /// Not a header field: the checksum is left partial for the link to fill
    /// in (`Offloads::tso`): only the pseudo-header's sum is written.
    pub csum_partial: bool,
    /// Not a header field: nonzero, the segment is a GSO segment the link cuts
    /// into segments of this many payload bytes (the MSS) each; it then
    /// carries more than one MSS, and `csum_partial` is set.
    pub gso_size: u16,
}

/// Where a TCP header's checksum field is, from the header's first byte.
pub const CHECKSUM_OFFSET: usize = 16;

/// The longest TCP header: 20 bytes and 40 of options (RFC 9293 section 3.1).
pub const MAX_HEADER_LEN: usize = 60;

/// Lays out the options as Linux does, so captures read alike: on a SYN
/// `mss, sackOK, TS, nop, wscale` (NOPs standing in for what is absent), on
/// other segments `nop, nop, TS`, then `nop, nop, sack`. Returns the length used,
/// a multiple of 4 (at most 40, RFC 9293 section 3.1).
fn write_options(seg: &SegmentOut, o: &mut [u8; 40]) -> usize {
    let mut n = 0;
    let mut put = |bytes: &[u8], n: &mut usize| {
        o[*n..*n + bytes.len()].copy_from_slice(bytes);
        *n += bytes.len();
    };
    if let Some(m) = seg.mss {
        let m = m.to_be_bytes();
        put(&[KIND_MSS, 4, m[0], m[1]], &mut n);
    }
    match (seg.sack_permitted, seg.timestamp.is_some()) {
        (true, true) => put(&[KIND_SACK_PERMITTED, 2], &mut n),
        (true, false) => put(&[KIND_NOP, KIND_NOP, KIND_SACK_PERMITTED, 2], &mut n),
        (false, true) => put(&[KIND_NOP, KIND_NOP], &mut n),
        (false, false) => {}
    }
    if let Some((val, ecr)) = seg.timestamp {
        let (v, e) = (val.to_be_bytes(), ecr.to_be_bytes());
        put(&[KIND_TIMESTAMP, 10, v[0], v[1], v[2], v[3], e[0], e[1], e[2], e[3]], &mut n);
    }
    if let Some(s) = seg.wscale {
        // NOP, then the 3-byte option: the list stays 4-byte aligned.
        put(&[KIND_NOP, KIND_WSCALE, 3, s], &mut n);
    }
    let room = (40 - n).saturating_sub(4) / 8;
    let blocks = (seg.sack_count as usize).min(room).min(MAX_SACK_BLOCKS);
    if blocks > 0 {
        put(&[KIND_NOP, KIND_NOP, KIND_SACK, 2 + 8 * blocks as u8], &mut n);
        for &(l, r) in &seg.sack[..blocks] {
            put(&l.0.to_be_bytes(), &mut n);
            put(&r.0.to_be_bytes(), &mut n);
        }
    }
    debug_assert!(n.is_multiple_of(4) && n <= 40);
    n
}

/// Appends the segment (header and payload, the payload in up to two pieces as
/// a ring buffer hands it out) to `out` and fills in its checksum; with
/// `seg.csum_partial`, only the sum of the pseudo-header (over the whole
/// segment's length, as Linux's CHECKSUM_PARTIAL: the link adds the rest and,
/// cutting a GSO segment, corrects the length per segment).
pub fn write(out: &mut Vec<u8>, src: Ipv4Addr, dst: Ipv4Addr, seg: &SegmentOut, payload: [&[u8]; 2]) {
    let mut h = TcpHeader::new(seg.src_port, seg.dst_port, seg.seq.0, seg.wnd);
    h.acknowledgment_number = seg.ack.map_or(0, |a| a.0);
    h.ack = seg.ack.is_some();
    h.syn = seg.syn;
    h.fin = seg.fin;
    h.rst = seg.rst;
    h.psh = seg.psh;
    let mut opts = [0u8; 40];
    let n = write_options(seg, &mut opts);
    h.set_options_raw(&opts[..n]).expect("at most 40 bytes of options, a multiple of 4");
    let start = out.len();
    // One reservation for the whole segment; etherparse writes the header
    // straight into the frame (no intermediate array copied in).
    out.reserve(h.header_len() + payload[0].len() + payload[1].len());
    h.write(out).expect("writing to a Vec cannot fail");
    out.extend_from_slice(payload[0]);
    out.extend_from_slice(payload[1]);
    let at = start + CHECKSUM_OFFSET;
    let sum = match seg.csum_partial {
        true => {
            let len = (out.len() - start) as u16;
            // The complement of the pseudo-header's checksum is its folded sum.
            !crate::checksum::Checksum::pseudo_header(src, dst, IpNumber::TCP, len).finish()
        }
        false => checksum(src, dst, &[&out[start..]]),
    };
    out[at..at + 2].copy_from_slice(&sum.to_be_bytes());
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
        let want = Options { mss: Some(1460), sack_permitted: true, timestamp: Some((1, 2)), ..Default::default() };
        assert_eq!(s.options, want);
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

    #[test]
    fn syn_options_laid_out_as_linux() {
        let s = SegmentOut { sack_permitted: true, timestamp: Some((7, 0)), ..syn() };
        let mut out = Vec::new();
        write(&mut out, A, B, &s, [b"", b""]);
        // mss 1460, sackOK, TS val 7 ecr 0, nop, wscale 7: 20 octets, as Linux.
        assert_eq!(out.len(), 40);
        assert_eq!(&out[20..], &[2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 7]);
        let p = parse(A, B, &out).unwrap();
        assert_eq!((p.options.sack_permitted, p.options.timestamp, p.options.wscale), (true, Some((7, 0)), Some(7)));
    }

    #[test]
    fn sack_blocks_round_trip_and_fit_beside_timestamps() {
        let blocks = [(Seq(10), Seq(20)), (Seq(30), Seq(40)), (Seq(50), Seq(60)), (Seq(70), Seq(80))];
        let base = SegmentOut { mss: None, wscale: None, syn: false, ack: Some(Seq(1)), ..syn() };
        let s = SegmentOut { sack: blocks, sack_count: 4, ..base };
        let mut out = Vec::new();
        write(&mut out, A, B, &s, [b"", b""]);
        assert_eq!(parse(A, B, &out).unwrap().options.sack_blocks(), &blocks);
        // With timestamps only three fit (12 + 2 + 2 + 24 = 40).
        let s = SegmentOut { timestamp: Some((1, 2)), ..s };
        let mut out = Vec::new();
        write(&mut out, A, B, &s, [b"", b""]);
        assert_eq!(out.len(), 60);
        let p = parse(A, B, &out).unwrap();
        assert_eq!((p.options.sack_blocks(), p.options.timestamp), (&blocks[..3], Some((1, 2))));
        // A SACK option of a wrong length is refused.
        let seg = with_options(&[5, 6, 0, 0, 0, 1]);
        assert_eq!(parse(A, B, &seg).unwrap_err(), DropReason::TcpBadOptions);
    }
}
