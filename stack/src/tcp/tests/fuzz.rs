//! Hostile input: random segments (valid checksums, random flags, numbers,
//! options and data) at listeners and connections must never panic, never
//! read past the segment, and leave the table consistent.

use super::*;

fn random_segment(rng: &mut ChaCha8Rng, near_seq: u32, near_ack: u32, dst_port: u16) -> Packet {
    let flags: String = ["S", "A", "F", "R", "P"].iter().filter(|_| rng.random_bool(0.4)).copied().collect();
    let seq = if rng.random_bool(0.7) {
        near_seq.wrapping_add(rng.random_range(0..3000)).wrapping_sub(1000)
    } else {
        rng.random()
    };
    let ack = if rng.random_bool(0.7) {
        near_ack.wrapping_add(rng.random_range(0..3000)).wrapping_sub(1000)
    } else {
        rng.random()
    };
    let src_port = if rng.random_bool(0.8) { 4000 } else { rng.random_range(1..6) + 4000 };
    let mut s = seg(src_port, dst_port, seq, ack, &flags, rng.random());
    if rng.random_bool(0.2) {
        s.mss = Some(rng.random());
    }
    if rng.random_bool(0.2) {
        s.wscale = Some(rng.random_range(0..20));
    }
    let len = if rng.random_bool(0.5) { 0 } else { rng.random_range(0..1500) };
    let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
    let mut p = packet(IP_B, IP_A, &s, &data);
    if rng.random_bool(0.2) {
        // Random option bytes in a header grown to fit them, checksum fixed up.
        let n = rng.random_range(1..=10) * 4;
        let mut bytes = p.bytes[..20].to_vec();
        bytes[12] = (((20 + n) / 4) << 4) as u8;
        bytes.extend((0..n).map(|_| rng.random::<u8>() % 12));
        bytes.extend_from_slice(&data);
        bytes[16] = 0;
        bytes[17] = 0;
        let sum = segment::checksum(IP_B, IP_A, &[&bytes]);
        bytes[16..18].copy_from_slice(&sum.to_be_bytes());
        p.bytes = bytes;
    }
    if rng.random_bool(0.05) {
        let cut = rng.random_range(0..p.bytes.len());
        p.bytes.truncate(cut);
    }
    p
}

#[test]
fn random_segments_never_break_the_table() {
    for seed in 0..8u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut h = Host::new(IP_A, seed);
        let (l, id, peer) = passive_established(&mut h);
        let mut now = T0;
        for i in 0..5000 {
            now += Duration::from_micros(rng.random_range(0..20_000));
            let p = random_segment(&mut rng, peer.seq, peer.ack, 80);
            let _ = h.deliver(now, &p);
            if i % 7 == 0 {
                h.poll(now);
            }
            if i % 50 == 0 {
                let _ = h.tcp.send(now, &mut h.net, id, b"some data");
                let _ = h.recv_all(now, id);
                while let Ok(Some((c, _))) = h.tcp.accept(l) {
                    let _ = h.tcp.close(now, &mut h.net, c);
                }
            }
            h.out();
            // Everything sent parses (Host::out) and the table agrees with itself.
            for (_, info) in h.tcp.sockets() {
                assert!(info.unacked < 1 << 30, "{info:?}");
                assert!(info.out_of_order <= 65536);
            }
        }
        // Whatever happened, the connection and listener still answer calls, and
        // time drains every connection that the peer left.
        let _ = h.tcp.state(id);
        assert_eq!(h.tcp.state(l), Ok(State::Listen));
        let _ = h.tcp.close(now, &mut h.net, id);
        h.tcp.close(now, &mut h.net, l).unwrap();
        for _ in 0..200 {
            match h.tcp.poll_at() {
                Some(t) => {
                    now = now.max(t);
                    h.poll(now);
                    h.out();
                }
                None => break,
            }
        }
        assert_eq!(h.tcp.connection_count(), 0, "seed {seed}");
        assert_eq!(h.tcp.poll_at(), None);
    }
}

#[test]
fn garbage_is_refused_with_a_reason() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut h = Host::new(IP_A, 1);
    h.tcp.listen(&mut h.net, addr(IP_A, 80), 4).unwrap();
    for _ in 0..2000 {
        let n = rng.random_range(0..80);
        let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        let r = h.deliver(T0, &Packet { src: IP_B, dst: IP_A, bytes });
        assert!(matches!(r, Err(DropReason::TcpTruncated) | Err(DropReason::TcpBadChecksum)), "{r:?}");
    }
    h.nothing();
}
