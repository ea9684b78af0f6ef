//! Zero-copy receive (`tcp::recv`, `Stack::receive_owned`): a GSO segment
//! that arrives in order stays in its frame's buffer, the link's slot gets a
//! spare, and the reader gets every byte in order whatever mix of copying,
//! peeking and in-place reads it makes, through loss (data filling a gap is
//! copied where the gap is) and round the ring's wrap.

use super::pattern;
use crate::config::Config;
use crate::ethernet::MacAddr;
use crate::offload::{Offloads, TxOffload};
use crate::tcp::ConnId;
use crate::time::{Duration, Instant};
use crate::Stack;
use std::net::Ipv4Addr;

fn stack(last: u8) -> Stack {
    let mut c = Config::new(MacAddr([2, 0, 0, 0, 0, last]), Ipv4Addr::new(10, 0, 0, last), 24);
    c.seed = last as u64;
    c.offload = Offloads::TAP;
    c.tcp.default_options.recv_buffer = 96 * 1024;
    Stack::new(c).unwrap()
}

/// Carries `from`'s frames to `to` whole, as a link in memory that hands its
/// buffers over (`FrameBatch::deliver` does the same), dropping the data
/// segments `lose` picks (by their count). Returns how many frames went.
fn carry(from: &mut Stack, to: &mut Stack, now: Instant, lose: &mut impl FnMut(&[u8]) -> bool) -> usize {
    from.transmit_buffers(|f: &mut Vec<u8>, tx: TxOffload| {
        if !lose(f) {
            let (len, ptr) = (f.len(), f.as_ptr());
            to.receive_owned(now, f, len, tx.as_received());
            assert!(f.len() >= len, "a spare as long as the frame (ptr changed: {})", f.as_ptr() != ptr);
        }
    })
}

/// Sends `data` from a to b; b reads with the calls `read` makes (it returns
/// the bytes it read, empty when none). Returns what b read and its counter
/// of kept segments.
fn run(
    data: &[u8],
    mut lose: impl FnMut(&[u8]) -> bool,
    mut read: impl FnMut(&mut Stack, ConnId, Instant) -> Vec<u8>,
) -> (Vec<u8>, u64) {
    let (mut a, mut b) = (stack(1), stack(2));
    let mut now = Instant::from_secs(1);
    a.start(now);
    b.start(now);
    let (l, c) = super::listen_and_connect(&mut a, &mut b, now);
    for _ in 0..10 {
        carry(&mut a, &mut b, now, &mut |_| false);
        carry(&mut b, &mut a, now, &mut |_| false);
    }
    let (s, _) = b.tcp().0.accept(l).unwrap().expect("accepted");
    let (mut sent, mut got) = (0, Vec::new());
    for _ in 0..20_000 {
        now = now + Duration::from_millis(1);
        a.poll(now);
        b.poll(now);
        let (tcp, net) = a.tcp();
        sent += tcp.send(now, net, c, &data[sent..]).unwrap_or(0);
        carry(&mut a, &mut b, now, &mut lose);
        loop {
            let piece = read(&mut b, s, now);
            if piece.is_empty() {
                break;
            }
            got.extend_from_slice(&piece);
        }
        carry(&mut b, &mut a, now, &mut |_| false);
        if got.len() == data.len() {
            break;
        }
    }
    assert!(got == data, "{} of {} bytes, intact so far: {}", got.len(), data.len(), got == data[..got.len()]);
    (got, b.counters().tcp.rx_kept)
}

fn payload_len(f: &[u8]) -> usize {
    let ip = &f[14..];
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let ihl = (ip[0] & 0xf) as usize * 4;
    total.saturating_sub(ihl + (ip[ihl + 12] >> 4) as usize * 4)
}

#[test]
fn kept_segments_reach_a_copying_reader_intact() {
    let data = pattern(3 << 20, 1);
    let mut buf = vec![0u8; 10_000];
    let (_, kept) = run(
        &data,
        |_| false,
        |b, s, now| {
            let (tcp, net) = b.tcp();
            let n = tcp.recv(now, net, s, &mut buf, false).unwrap_or(0);
            buf[..n].to_vec()
        },
    );
    assert!(kept > 20, "GSO segments kept in their frames' buffers: {kept}");
}

#[test]
fn kept_segments_reach_mixed_reads_intact_through_loss() {
    let data = pattern(3 << 20, 2);
    let (mut turn, mut nth) = (0usize, 0usize);
    let mut buf = vec![0u8; 7_777];
    // Every 25th data segment is lost: SACK recovery, data filling the gaps.
    let lose = |f: &[u8]| {
        let data = payload_len(f) > 0;
        nth += data as usize;
        data && nth % 25 == 0
    };
    let (_, kept) = run(&data, lose, |b, s, now| {
        turn += 1;
        let (tcp, net) = b.tcp();
        match turn % 3 {
            // In place, at most 5,000 bytes of a piece.
            0 => {
                let mut v = Vec::new();
                let _ = tcp.recv_with(now, net, s, |p| {
                    let n = p.len().min(5_000);
                    v.extend_from_slice(&p[..n]);
                    n
                });
                v
            }
            // A peek, then the read of what it showed.
            1 => {
                let n = tcp.recv(now, net, s, &mut buf, true).unwrap_or(0);
                let peeked = buf[..n].to_vec();
                let m = tcp.recv(now, net, s, &mut buf[..n], false).unwrap_or(0);
                assert_eq!(&buf[..m], &peeked[..], "a read returns what the peek showed");
                peeked
            }
            _ => {
                let n = tcp.recv(now, net, s, &mut buf, false).unwrap_or(0);
                buf[..n].to_vec()
            }
        }
    });
    assert!(kept > 10, "GSO segments kept in their frames' buffers: {kept}");
}
