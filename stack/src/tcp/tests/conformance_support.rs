//! Helpers for the RFC 9293 conformance tests (`conformance_*.rs`): segments
//! with hand-written option bytes or the URG bit, and whole Ethernet frames for
//! tests that go through the IP layer of a `Stack`.

use super::*;
use crate::config::Config;
use crate::ethernet::MacAddr;
use crate::Stack;
use etherparse::{PacketBuilder, TcpHeader};

/// A segment from the scripted peer (IP_B to IP_A) whose options are exactly
/// `raw` (padded with zeros, that is EOL, to a multiple of 4 octets).
pub fn with_options(s: &SegmentOut, raw: &[u8], data: &[u8]) -> Packet {
    let mut opts = raw.to_vec();
    while !opts.len().is_multiple_of(4) {
        opts.push(0);
    }
    let mut h = TcpHeader::new(s.src_port, s.dst_port, s.seq.0, s.wnd);
    h.acknowledgment_number = s.ack.map_or(0, |a| a.0);
    h.ack = s.ack.is_some();
    h.syn = s.syn;
    h.fin = s.fin;
    h.rst = s.rst;
    h.psh = s.psh;
    h.set_options_raw(&opts).expect("at most 40 octets of options");
    let mut bytes = h.to_bytes().to_vec();
    bytes.extend_from_slice(data);
    fix_checksum(&mut bytes, IP_B, IP_A);
    Packet { src: IP_B, dst: IP_A, bytes }
}

/// Sets the URG bit and the urgent pointer of a segment built by [`packet`].
pub fn with_urgent(mut p: Packet, pointer: u16) -> Packet {
    p.bytes[13] |= 0x20;
    p.bytes[18..20].copy_from_slice(&pointer.to_be_bytes());
    fix_checksum(&mut p.bytes, p.src, p.dst);
    p
}

/// Recomputes the TCP checksum of `bytes` (header and data).
pub fn fix_checksum(bytes: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
    bytes[16] = 0;
    bytes[17] = 0;
    let sum = segment::checksum(src, dst, &[bytes]);
    bytes[16..18].copy_from_slice(&sum.to_be_bytes());
}

pub const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
pub const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
/// The stacks' subnet: 10.0.0.0/24 (IP_A and IP_B are on it).
pub const SUBNET_BROADCAST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 255);

/// A whole stack at `ip` with MAC `mac` on 10.0.0.0/24; `f` adjusts the configuration.
pub fn stack_at(ip: Ipv4Addr, mac: MacAddr, f: impl FnOnce(&mut Config)) -> Stack {
    let mut c = Config::new(mac, ip, 24);
    c.seed = u64::from(mac.0[5]);
    f(&mut c);
    Stack::new(c).unwrap()
}

/// An Ethernet frame to `dst_mac` carrying a TCP segment from `src` to `dst`
/// (flags as in [`seg`]: S, A, F, R, P), with valid checksums.
#[allow(clippy::too_many_arguments)]
pub fn tcp_frame(
    dst_mac: MacAddr,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: &str,
    data: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(MAC_B.0, dst_mac.0).ipv4(src.ip().octets(), dst.ip().octets(), 64).tcp(
        src.port(),
        dst.port(),
        seq,
        65535,
    );
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(ack);
    }
    if flags.contains('F') {
        b = b.fin();
    }
    if flags.contains('R') {
        b = b.rst();
    }
    if flags.contains('P') {
        b = b.psh();
    }
    let mut out = Vec::new();
    b.write(&mut out, data).unwrap();
    out
}

/// Inserts `options` (a multiple of 4 octets) into the IPv4 header of an
/// Ethernet frame, fixing IHL, total length and the header checksum. The TCP
/// checksum does not cover IP options, so it stays valid.
pub fn with_ip_options(frame: &[u8], options: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ip = 14;
    let ihl = (frame[ip] & 0x0f) as usize * 4;
    let mut out = frame[..ip + ihl].to_vec();
    out.extend_from_slice(options);
    out.extend_from_slice(&frame[ip + ihl..]);
    out[ip] = 0x40 | ((ihl + options.len()) / 4) as u8;
    let total = u16::from_be_bytes([out[ip + 2], out[ip + 3]]) + options.len() as u16;
    out[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
    out[ip + 10] = 0;
    out[ip + 11] = 0;
    let sum = crate::checksum::of(&out[ip..ip + ihl + options.len()]);
    out[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
    out
}

/// The TCP segments in frames a stack transmitted: (IPv4 TTL, source, segment).
pub fn tcp_segments(frames: &[Vec<u8>]) -> Vec<(u8, Ipv4Addr, Seg)> {
    let mut out = Vec::new();
    for f in frames {
        if f.len() < 34 || f[12..14] != [0x08, 0x00] || f[14 + 9] != 6 {
            continue;
        }
        let ihl = (f[14] & 0x0f) as usize * 4;
        let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
        let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
        let p = Packet { src, dst, bytes: f[14 + ihl..].to_vec() };
        out.push((f[14 + 8], src, p.seg()));
    }
    out
}

/// Shuttles frames between two stacks (A first) and runs their timers until
/// `cond` holds or `limit` passes; every frame either sent is handed to `tap`
/// as (from A, frame). Returns whether `cond` held.
pub fn shuttle(
    a: &mut Stack,
    b: &mut Stack,
    now: &mut Instant,
    limit: Duration,
    tap: &mut dyn FnMut(bool, &[u8]),
    mut cond: impl FnMut(&mut Stack, &mut Stack, Instant) -> bool,
) -> bool {
    let end = *now + limit;
    loop {
        if cond(a, b, *now) {
            return true;
        }
        let mut ab = Vec::new();
        let mut ba = Vec::new();
        a.transmit(|f| ab.push(f.to_vec()));
        b.transmit(|f| ba.push(f.to_vec()));
        if ab.is_empty() && ba.is_empty() {
            match crate::time::earliest(a.poll_at(), b.poll_at()) {
                Some(t) if t <= end => *now = t.max(*now),
                _ => return cond(a, b, *now),
            }
        } else {
            *now += Duration::from_micros(100);
        }
        for f in ab {
            tap(true, &f);
            b.receive(*now, &f);
        }
        for f in ba {
            tap(false, &f);
            a.receive(*now, &f);
        }
        a.poll(*now);
        b.poll(*now);
    }
}
