//! TSO from the stack (crate::offload), in virtual time: with `Offloads::tso`
//! the sender writes segments of many MSS (up to 64 KiB) with a partial
//! checksum, and the link (here `cut`, what the kernel's GSO does) makes the
//! MSS-sized segments a plain sender would have sent, segment for segment; a
//! lost part of one is retransmitted alone.

use super::pattern;
use crate::config::Config;
use crate::ethernet::MacAddr;
use crate::offload::{Offloads, TxOffload};
use crate::tcp::{ConnId, State};
use crate::time::{Duration, Instant};
use crate::Stack;
use etherparse::IpNumber;
use std::net::Ipv4Addr;

const ETH: usize = 14;
const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn stack(last: u8, offload: Offloads, buffers: usize) -> Stack {
    let mut c = Config::new(MacAddr([2, 0, 0, 0, 0, last]), Ipv4Addr::new(10, 0, 0, last), 24);
    c.seed = last as u64;
    c.offload = offload;
    c.tcp.default_options.recv_buffer = buffers;
    c.tcp.default_options.send_buffer = buffers;
    Stack::new(c).unwrap()
}

fn frames(s: &mut Stack) -> Vec<(Vec<u8>, TxOffload)> {
    let mut v = Vec::new();
    s.transmit_offloaded(|f, tx| v.push((f.to_vec(), tx)));
    v
}

fn tcp_header_len(f: &[u8]) -> usize {
    (f[ETH + 20 + 12] >> 4) as usize * 4
}

fn payload_len(f: &[u8]) -> usize {
    f.len() - ETH - 20 - tcp_header_len(f)
}

fn seq_of(f: &[u8]) -> u32 {
    u32::from_be_bytes(f[ETH + 24..ETH + 28].try_into().unwrap())
}

fn tcp_valid(f: &[u8]) -> bool {
    let total = u16::from_be_bytes([f[ETH + 2], f[ETH + 3]]) as usize;
    crate::checksum::transport(A_IP, B_IP, IpNumber::TCP, &[&f[ETH + 20..ETH + total]]) == 0
}

/// What the kernel does with a frame the stack writes behind a virtio-net
/// header (Linux's skb_checksum_help and tcp_gso_segment): fills in a partial
/// checksum (checked here to come out right), and cuts a GSO segment into
/// segments of `gso_size` bytes, each with the headers (sequence number moved
/// on, FIN and PSH on the last only) and checksums of its own.
fn cut(frame: &[u8], tx: TxOffload) -> Vec<Vec<u8>> {
    if tx == TxOffload::NONE {
        return vec![frame.to_vec()];
    }
    assert_eq!((tx.csum_start, tx.csum_offset), (34, 16), "TCP's checksum, behind Ethernet and IPv4");
    let mut whole = frame.to_vec();
    let at = (tx.csum_start + tx.csum_offset) as usize;
    let sum = crate::checksum::of(&whole[tx.csum_start as usize..]);
    whole[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    assert!(tcp_valid(&whole), "the partial checksum, filled in, is valid");
    if tx.gso_size == 0 {
        assert!(whole.len() <= 1514, "only a GSO segment is longer than the MTU");
        return vec![whole];
    }
    let headers = ETH + 20 + tcp_header_len(frame);
    let pieces: Vec<&[u8]> = frame[headers..].chunks(tx.gso_size as usize).collect();
    assert!(pieces.len() > 1, "a GSO segment carries more than one MSS");
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let mut f = frame[..headers].to_vec();
        f.extend_from_slice(piece);
        let total = (f.len() - ETH) as u16;
        f[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
        f[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
        let sum = crate::checksum::of(&f[ETH..ETH + 20]);
        f[ETH + 10..ETH + 12].copy_from_slice(&sum.to_be_bytes());
        let seq = seq_of(frame).wrapping_add((i * tx.gso_size as usize) as u32);
        f[ETH + 24..ETH + 28].copy_from_slice(&seq.to_be_bytes());
        if i + 1 < pieces.len() {
            f[ETH + 33] &= !(0x01 | 0x08);
        }
        f[at..at + 2].copy_from_slice(&[0, 0]);
        let sum = crate::checksum::transport(A_IP, B_IP, IpNumber::TCP, &[&f[ETH + 20..]]);
        f[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        out.push(f);
    }
    out
}

/// A connection from a to b (a sends with TSO if `tso`), established, b's end
/// accepted; a's data frames are cut by the link.
fn connected(tso: bool, b_buffer: usize) -> (Stack, Stack, ConnId, ConnId, Instant) {
    let a_off = Offloads { rx: false, tso };
    let (mut a, mut b) = (stack(1, a_off, 256 * 1024), stack(2, Offloads::default(), b_buffer));
    let now = Instant::from_secs(1);
    a.start(now);
    b.start(now);
    let (l, c) = super::listen_and_connect(&mut a, &mut b, now);
    for _ in 0..10 {
        frames(&mut a).iter().flat_map(|(f, tx)| cut(f, *tx)).for_each(|f| _ = b.receive(now, &f));
        frames(&mut b).iter().for_each(|(f, _)| _ = a.receive(now, f));
    }
    let (s, _) = b.tcp().0.accept(l).unwrap().expect("accepted");
    assert_eq!(a.tcp().0.state(c), Ok(State::Established));
    (a, b, c, s, now)
}

/// A bulk transfer of `total` bytes from a to b, one round a millisecond: a
/// writes what its buffer takes, the link carries a's frames (each written
/// frame passed to `written`, then cut), b reads everything and answers.
/// Returns the segments b received, as (seq, payload length, flags), and what
/// b read.
fn transfer(
    tso: bool,
    b_buffer: usize,
    total: usize,
    mut written: impl FnMut(&[u8], TxOffload),
) -> Vec<(u32, usize, u8)> {
    let (mut a, mut b, c, s, mut now) = connected(tso, b_buffer);
    let data = pattern(total, 0);
    let (mut sent, mut got, mut trace) = (0, Vec::new(), Vec::new());
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..100_000 {
        if got.len() == total {
            break;
        }
        now = now + Duration::from_millis(1);
        a.poll(now);
        b.poll(now);
        let (tcp, net) = a.tcp();
        sent += tcp.send(now, net, c, &data[sent..]).unwrap();
        for (f, tx) in frames(&mut a) {
            written(&f, tx);
            for seg in cut(&f, tx) {
                trace.push((seq_of(&seg), payload_len(&seg), seg[ETH + 33]));
                b.receive(now, &seg);
            }
        }
        let (tcp, net) = b.tcp();
        while let Ok(n @ 1..) = tcp.recv(now, net, s, &mut buf, false) {
            got.extend_from_slice(&buf[..n]);
        }
        frames(&mut b).iter().for_each(|(f, _)| _ = a.receive(now, f));
    }
    assert!(got == data, "{} bytes of {total} arrived, intact: {}", got.len(), got == data[..got.len()]);
    trace
}

#[test]
fn segments_of_64_kib_are_built_when_the_windows_allow() {
    let mss = 1448;
    let (mut largest, mut gso_frames) = (0, 0);
    transfer(true, 256 * 1024, 4 << 20, |f, tx| {
        if tx.gso_size > 0 {
            gso_frames += 1;
            assert_eq!(tx.gso_size as usize, mss, "cut into MSS-sized segments");
            assert!(f.len() - ETH <= 65535, "one IPv4 datagram");
            largest = largest.max(payload_len(f));
        }
        assert!(tx.csum_partial(), "every segment's checksum is left to the link");
    });
    // The most whole MSS that fit in 65535 bytes beside the headers (RFC 9293
    // section 3.1: 60 bytes of TCP header at most): 45 x 1448 = 65160.
    assert_eq!(largest, 45 * mss, "{gso_frames} GSO segments");
}

/// Cut by the link, a TSO sender's segments are those a plain sender sends,
/// one for one (same sequence numbers, lengths, flags), whatever stops them:
/// the initial window and cwnd's growth (RFC 5681 section 3.1), a peer's
/// window smaller than cwnd (RFC 9293 section 3.8.6.2.1, with the sender's SWS
/// rule for the short tail), and the last, short segment with the FIN's PSH.
#[test]
fn cut_by_the_link_a_tso_sender_sends_what_a_plain_one_sends() {
    for b_buffer in [4000, 20_000, 64 * 1024, 256 * 1024] {
        let total = 300_000 + 17;
        let mut big = 0;
        let with = transfer(true, b_buffer, total, |f, tx| {
            if tx.gso_size > 0 {
                big += 1;
                let window = b_buffer.min(65535);
                assert!(payload_len(f) <= window, "{} bytes beyond b's window {window}", payload_len(f));
            }
        });
        let without = transfer(false, b_buffer, total, |f, tx| {
            assert_eq!(tx, TxOffload::NONE);
            assert!(f.len() <= 1514);
        });
        assert!(big > 0, "b's buffer {b_buffer}: no GSO segment");
        assert_eq!(with, without, "b's buffer {b_buffer}");
    }
}

#[test]
fn the_first_flight_is_one_segment_as_large_as_cwnd() {
    let (mut a, _b, c, _s, now) = connected(true, 256 * 1024);
    let info = a.tcp().0.info(c).unwrap();
    let (tcp, net) = a.tcp();
    tcp.send(now, net, c, &pattern(100_000, 0)).unwrap();
    let out = frames(&mut a);
    assert_eq!(out.len(), 1, "one write for the whole initial window");
    let (f, tx) = &out[0];
    assert_eq!(payload_len(f) as u32, info.cwnd / info.snd_mss * info.snd_mss, "cwnd {}", info.cwnd);
    assert_eq!(tx.gso_size as u32, info.snd_mss);
}

/// What [`lose_parts`] saw: the MSS, the sequence numbers of the parts lost,
/// each retransmission that covered one as (seq, payload length, gso_size),
/// and the sender's count of retransmissions.
struct PartsLost {
    mss: usize,
    lost: Vec<u32>,
    retransmitted: Vec<(u32, usize, u16)>,
    retransmissions: u64,
}

/// A bulk transfer over a TSO link in which the first GSO segment of six
/// parts or more loses the parts at `parts` (indices into its cut pieces).
/// Only b's last ACK of each round reaches a (a stretch ACK, as a GRO'ing
/// receiver sends one for many segments), so cwnd opens in large steps. The
/// transfer must end intact, recovered by SACK within 100 rounds (1 ms each),
/// not after timeouts.
fn lose_parts(parts: &[usize]) -> PartsLost {
    let (mut a, mut b, c, s, mut now) = connected(true, 256 * 1024);
    let mss = a.tcp().0.info(c).unwrap().snd_mss as usize;
    let data = pattern(40 * mss, 0);
    let (tcp, net) = a.tcp();
    tcp.set_nodelay(now, net, c, true).unwrap();
    let (mut sent, mut got) = (tcp.send(now, net, c, &data).unwrap(), Vec::new());
    let mut buf = vec![0u8; 1 << 20];
    let (mut lost, mut retransmitted) = (Vec::new(), Vec::new());
    for round in 0..200 {
        now = now + Duration::from_millis(1);
        a.poll(now);
        b.poll(now);
        let (tcp, net) = a.tcp();
        sent += tcp.send(now, net, c, &data[sent..]).unwrap();
        for (f, tx) in frames(&mut a) {
            let pieces = cut(&f, tx);
            if lost.is_empty() && pieces.len() >= 6 {
                lost = parts.iter().map(|&i| seq_of(&pieces[i])).collect();
                let kept = pieces.iter().enumerate().filter(|(i, _)| !parts.contains(i));
                kept.for_each(|(_, p)| _ = b.receive(now, p));
                continue;
            }
            if payload_len(&f) > 0 && lost.iter().any(|&l| seq_of(&f) <= l) {
                retransmitted.push((seq_of(&f), payload_len(&f), tx.gso_size));
            }
            pieces.iter().for_each(|p| _ = b.receive(now, p));
        }
        let (tcp, net) = b.tcp();
        while let Ok(n @ 1..) = tcp.recv(now, net, s, &mut buf, false) {
            got.extend_from_slice(&buf[..n]);
        }
        if let Some((f, _)) = frames(&mut b).last() {
            a.receive(now, f);
        }
        if got.len() == data.len() {
            assert!(round < 100, "recovered by SACK, not after timeouts");
            break;
        }
    }
    assert!(got == data, "{} of {} bytes, intact: {}", got.len(), data.len(), got == data[..got.len()]);
    assert_eq!(lost.len(), parts.len(), "a GSO segment of six parts or more was sent");
    let retransmissions = a.tcp().0.info(c).unwrap().retransmissions;
    PartsLost { mss, lost, retransmitted, retransmissions }
}

/// A part lost from the middle of a GSO segment: b's SACKs (RFC 2018) show the
/// hole (more than DupThresh - 1 MSS SACKed above it: IsLost, RFC 6675 section 4),
/// and a retransmits that one MSS alone (RFC 6675 section 5, NextSeg), not the
/// written segment; the transfer then completes intact.
#[test]
fn a_lost_part_of_a_gso_segment_is_retransmitted_alone() {
    let r = lose_parts(&[2]);
    assert_eq!(r.retransmitted, vec![(r.lost[0], r.mss, 0)], "the lost MSS, alone, as a plain segment");
    assert_eq!(r.retransmissions, 1);
}

/// Two parts lost from one GSO segment (RACK keeps it as one record): the
/// SACK blocks over the parts between and after them mark those parts only,
/// and the resend of the first lost part marks that part only (RFC 8985
/// section 6.1 keeps its state per segment), so RACK finds both lost and each
/// is retransmitted once, alone, without a timeout. (The marks themselves are
/// checked in `rack.rs`'s tests; here the scoreboard's own per-octet view
/// also gets it right, so this passes with whole records as well.)
#[test]
fn two_lost_parts_of_a_gso_segment_are_each_retransmitted_once() {
    let r = lose_parts(&[2, 4]);
    let each = vec![(r.lost[0], r.mss, 0), (r.lost[1], r.mss, 0)];
    assert_eq!(r.retransmitted, each, "each lost MSS once, alone");
    assert_eq!(r.retransmissions, 2);
}
