//! A GSO segment from an offloading link (crate::offload), in virtual time:
//! the receiver takes a TCP segment of many MSS beyond the MTU whose checksum
//! the link vouched for, delivers its bytes, and ACKs it at once as the
//! full-sized segments it stands for; without the offload configured, or
//! without the link's word for it, the same frame is refused.

use crate::config::Config;
use crate::ethernet::MacAddr;
use crate::offload::RxOffload;
use crate::tcp::{ConnId, State};
use crate::time::{Duration, Instant};
use crate::{DropReason, RxOutcome, Stack};
use std::net::Ipv4Addr;

const ETH: usize = 14;
const SEGMENTS: usize = 40;

fn stack(last: u8, offload: bool) -> Stack {
    let mut c = Config::new(MacAddr([2, 0, 0, 0, 0, last]), Ipv4Addr::new(10, 0, 0, last), 24);
    c.seed = last as u64;
    c.offload.rx = offload;
    Stack::new(c).unwrap()
}

fn frames(s: &mut Stack) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    s.transmit(|f| v.push(f.to_vec()));
    v
}

/// Exchanges frames until both are quiet (no timers run): the handshake.
fn exchange(a: &mut Stack, b: &mut Stack, now: Instant) {
    for _ in 0..20 {
        let (ab, ba) = (frames(a), frames(b));
        if ab.is_empty() && ba.is_empty() {
            return;
        }
        ab.iter().for_each(|f| _ = b.receive(now, f));
        ba.iter().for_each(|f| _ = a.receive(now, f));
    }
}

/// A connection from a (10.0.0.1) to b (10.0.0.2), established; b's end accepted.
fn connected(b_offload: bool) -> (Stack, Stack, ConnId, ConnId, Instant) {
    let (mut a, mut b) = (stack(1, false), stack(2, b_offload));
    let now = Instant::from_secs(1);
    a.start(now);
    b.start(now);
    let (l, c) = super::listen_and_connect(&mut a, &mut b, now);
    exchange(&mut a, &mut b, now);
    let (s, _) = b.tcp().0.accept(l).unwrap().expect("accepted");
    assert_eq!(a.tcp().0.state(c), Ok(State::Established));
    (a, b, c, s, now)
}

/// What a GRO'ing kernel hands over: `segs`' payloads behind the first one's
/// headers, the IPv4 length and checksum fixed, the TCP checksum left partial
/// (here: zero, which a verifying receiver refuses).
fn coalesce(segs: &[Vec<u8>]) -> Vec<u8> {
    let tcp_len = |f: &[u8]| (f[ETH + 20 + 12] >> 4) as usize * 4;
    let headers = ETH + 20 + tcp_len(&segs[0]);
    let mut out = segs[0][..headers].to_vec();
    for f in segs {
        out.extend_from_slice(&f[ETH + 20 + tcp_len(f)..]);
    }
    let total = (out.len() - ETH) as u16;
    out[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
    out[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
    let sum = crate::checksum::of(&out[ETH..ETH + 20]);
    out[ETH + 10..ETH + 12].copy_from_slice(&sum.to_be_bytes());
    out[ETH + 20 + 16..ETH + 20 + 18].copy_from_slice(&[0, 0]);
    out
}

/// a sends SEGMENTS full-sized segments (without b seeing them); returns them
/// coalesced into one frame, with the bytes and the MSS.
fn gso_frame(a: &mut Stack, c: ConnId, now: Instant) -> (Vec<u8>, Vec<u8>, u16) {
    let mss = a.tcp().0.info(c).unwrap().snd_mss as usize;
    let data: Vec<u8> = (0..mss * SEGMENTS).map(|i| (i * 7 % 251) as u8).collect();
    let (tcp, net) = a.tcp();
    tcp.set_nodelay(now, net, c, true).unwrap();
    let mut sent = 0;
    while sent < data.len() {
        sent += tcp.send(now, net, c, &data[sent..]).unwrap();
    }
    let segs: Vec<Vec<u8>> = frames(a).into_iter().filter(|f| f.len() > ETH + 20 + 32).collect();
    // The initial window (RFC 5681 section 3.1) lets three out.
    assert!(segs.len() >= 3, "got {} segments", segs.len());
    let bytes = segs.iter().map(|f| f.len() - ETH - 20 - ((f[ETH + 32] >> 4) as usize * 4)).sum::<usize>();
    (coalesce(&segs), data[..bytes].to_vec(), mss as u16)
}

fn ack_of(frame: &[u8]) -> u32 {
    u32::from_be_bytes(frame[ETH + 28..ETH + 32].try_into().unwrap())
}

#[test]
fn a_gso_segment_is_taken_whole_and_acked_at_once() {
    let (mut a, mut b, c, s, now) = connected(true);
    let (frame, bytes, mss) = gso_frame(&mut a, c, now);
    assert!(frame.len() > 1514 * 2, "{} bytes: several MSS", frame.len());
    let seq = u32::from_be_bytes(frame[ETH + 24..ETH + 28].try_into().unwrap());
    let rx = RxOffload { csum_trusted: true, gso_size: mss };
    assert_eq!(b.receive_offloaded(now, &frame, rx), RxOutcome::Delivered);
    // Acknowledged at once (RFC 5681 section 4.2: at least every second
    // full-sized segment), not after the delayed-ACK timer: it stands for many.
    let acks = frames(&mut b);
    assert_eq!(acks.len(), 1, "one ACK, at once");
    assert_eq!(ack_of(&acks[0]), seq.wrapping_add(bytes.len() as u32));
    let mut got = vec![0u8; bytes.len() + 10];
    let (tcp, net) = b.tcp();
    let n = tcp.recv(now, net, s, &mut got, false).unwrap();
    assert_eq!(&got[..n], &bytes[..]);
    // (a's gratuitous ARP is an ARP drop; TCP dropped nothing.)
    let tcp_drops: u64 = b.counters().drops.iter().filter(|(r, _)| r.layer() == "tcp").map(|(_, n)| n).sum();
    assert_eq!(tcp_drops, 0, "{}", b.counters().report());
    // The ACK covers everything a sent: what a sends next is new data, no retransmission.
    a.receive(now + Duration::from_millis(1), &acks[0]);
    let next = frames(&mut a);
    assert!(!next.is_empty());
    assert!(
        next.iter()
            .all(|f| u32::from_be_bytes(f[ETH + 24..ETH + 28].try_into().unwrap())
                >= seq.wrapping_add(bytes.len() as u32))
    );
}

#[test]
fn a_gso_segment_is_refused_without_the_offload_or_the_links_word() {
    // The stack is not configured to offload: oversize.
    let (mut a, mut b, c, _, now) = connected(false);
    let (frame, _, mss) = gso_frame(&mut a, c, now);
    let rx = RxOffload { csum_trusted: true, gso_size: mss };
    assert_eq!(b.receive_offloaded(now, &frame, rx), RxOutcome::Dropped(DropReason::EthOversize));
    // Configured, but the link did not say it is a GSO segment: oversize.
    let (mut a, mut b, c, _, now) = connected(true);
    let (frame, _, mss) = gso_frame(&mut a, c, now);
    assert_eq!(b.receive(now, &frame), RxOutcome::Dropped(DropReason::EthOversize));
    // A GSO segment whose checksum the link did not vouch for is verified (and
    // this one, left partial, fails).
    let rx = RxOffload { csum_trusted: false, gso_size: mss };
    assert_eq!(b.receive_offloaded(now, &frame, rx), RxOutcome::Dropped(DropReason::TcpBadChecksum));
    assert!(frames(&mut b).is_empty());
}
