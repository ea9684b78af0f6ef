//! RFC 9293 conformance: PUSH (section 3.9.1.2), keep-alives (section 3.8.4),
//! ICMP (section 3.9.2.2), urgent data as this stack handles it (section
//! 3.8.5), and reopening from TIME-WAIT (section 3.6.1). Each test names the
//! requirement IDs it shows; tests/conformance/rfc9293.tsv cites them.

use super::conformance_support::*;
use super::*;
use crate::icmp::{IcmpError, IcmpErrorKind};

#[test]
fn psh_is_set_on_the_last_segment_of_what_is_queued() {
    // MUST-61: SEND has no PUSH flag here, so PSH marks the segment after which
    // nothing more is queued, and only that one.
    let mut h = Host::new(IP_A, 960);
    let (id, mut peer) = active_established(&mut h, Some(1000), 65535);
    let t = T0 + secs(1);
    h.send(t, id, &[1; 4000]).unwrap();
    let psh: Vec<(usize, bool)> = h.out().iter().map(|s| (s.data.len(), s.psh)).collect();
    assert_eq!(psh, [(1000, false), (1000, false), (1000, false), (1000, true)]);
    // More than the congestion window allows: the segments sent first are not
    // the last of what is queued and carry no PSH; the one that empties the
    // queue does.
    peer.ack += 4000;
    peer.send(&mut h, t + ms(10), "A", b"").unwrap();
    h.send(t + ms(20), id, &[2; 9000]).unwrap();
    let first: Vec<(usize, bool)> = h.out().iter().map(|s| (s.data.len(), s.psh)).collect();
    assert!(first.len() < 9 && first.iter().all(|&(n, p)| n == 1000 && !p), "{first:?}");
    let mut last = Vec::new();
    let mut now = t + ms(30);
    while h.tcp.info(id).unwrap().unacked > 0 {
        peer.ack = h.tcp.seqs(id).unwrap().2 .0;
        peer.send(&mut h, now, "A", b"").unwrap();
        last.extend(h.out().iter().map(|s| (s.data.len(), s.psh)));
        now += ms(10);
    }
    assert_eq!(last.last(), Some(&(1000, true)));
    assert_eq!(last.iter().filter(|s| s.1).count(), 1, "{last:?}");
}

#[test]
fn keepalive_is_turned_on_and_off_per_connection() {
    // MUST-24: each connection has its own switch.
    let mut h = Host::new(IP_A, 961);
    let (a, _pa) = active_established(&mut h, Some(1000), 65535);
    let (b, pb) = active_established(&mut h, Some(1000), 65535);
    h.tcp.set_keepalive(T0, &mut h.net, a, true).unwrap();
    assert_eq!(h.tcp.info(a).unwrap().timers.keepalive, Some(T0 + secs(7200)));
    assert_eq!(h.tcp.info(b).unwrap().timers.keepalive, None);
    h.tcp.set_keepalive(T0 + secs(1), &mut h.net, a, false).unwrap();
    assert_eq!(h.tcp.info(a).unwrap().timers.keepalive, None);
    assert_eq!(h.tcp.poll_at(), None);
    h.poll(T0 + secs(10 * 3600));
    h.nothing();
    // On for b alone: only b probes.
    let later = T0 + secs(10 * 3600 + 1);
    h.tcp.set_keepalive(later, &mut h.net, b, true).unwrap();
    h.poll(later + secs(7200));
    let p = h.one();
    assert_eq!((p.dst_port, p.src_port, p.data.len()), (80, pb.our_port, 0));
}

#[test]
fn keepalive_waits_for_an_idle_connection() {
    // MUST-26: no probe while sent data is outstanding, and none until the
    // interval has passed since the last segment received.
    let mut h = Host::new(IP_A, 962);
    let (id, mut peer) = active_established(&mut h, Some(1000), 65535);
    let t = T0 + secs(1);
    h.tcp.set_keepalive_params(t, &mut h.net, id, secs(10), secs(2), 3).unwrap();
    h.tcp.set_keepalive(t, &mut h.net, id, true).unwrap();
    // Data goes out at 9 s and is not acknowledged for a while.
    h.send(t + secs(9), id, b"x").unwrap();
    let mut seen = h.out();
    while let Some(at) = h.tcp.poll_at().filter(|&at| at <= t + secs(12)) {
        h.poll(at);
        seen.extend(h.out());
    }
    assert!(seen.len() >= 4, "{seen:?}");
    assert!(seen.iter().all(|s| s.data == b"x"), "only the data and its retransmissions: {seen:?}");
    // Acknowledged at 12 s: idle from then on, the first probe comes at 22 s.
    peer.ack += 1;
    peer.send(&mut h, t + secs(12), "A", b"").unwrap();
    assert_eq!(h.tcp.poll_at(), Some(t + secs(22)));
    // A segment received at 20 s (a bare ACK) postpones it to 30 s.
    peer.send(&mut h, t + secs(20), "A", b"").unwrap();
    assert_eq!(h.tcp.poll_at(), Some(t + secs(30)));
    h.poll(t + secs(30));
    let p = h.one();
    assert_eq!((p.seq, p.data.len()), (peer.ack - 1, 0));
}

#[test]
fn unanswered_keepalives_are_not_taken_for_a_dead_peer_one_at_a_time() {
    // MUST-29: a probe whose ACK is lost does not end the connection; the
    // count starts over whenever the peer is heard from.
    let mut h = Host::new(IP_A, 963);
    let (id, peer) = active_established(&mut h, Some(1000), 65535);
    let t = T0 + secs(1);
    h.tcp.set_keepalive_params(t, &mut h.net, id, secs(10), secs(2), 3).unwrap();
    h.tcp.set_keepalive(t, &mut h.net, id, true).unwrap();
    let mut now = t;
    for round in 0..5 {
        // Two probes go unanswered, the third is answered.
        for _ in 0..3 {
            now = h.tcp.poll_at().unwrap();
            h.poll(now);
            assert_eq!(h.one().data.len(), 0);
        }
        peer.raw(&mut h, now + ms(5), peer.seq, peer.ack, "A", b"").unwrap();
        assert_eq!(h.state(id), State::Established, "round {round}");
    }
    assert_eq!(h.net.counters.keepalive_probes, 15);
}

fn icmp_about(h: &Host, id: ConnId, kind: IcmpErrorKind) -> IcmpError {
    let (_, una, _, _, _) = h.tcp.seqs(id).unwrap();
    let local = h.tcp.local_addr(id).unwrap();
    let remote = h.tcp.peer_addr(id).unwrap();
    let mut quoted = [0u8; 8];
    quoted[0..2].copy_from_slice(&local.port().to_be_bytes());
    quoted[2..4].copy_from_slice(&remote.port().to_be_bytes());
    quoted[4..8].copy_from_slice(&una.0.to_be_bytes());
    IcmpError {
        kind,
        reporter: Ipv4Addr::new(10, 0, 0, 254),
        src: *local.ip(),
        dst: *remote.ip(),
        protocol: etherparse::IpNumber::TCP,
        quoted,
        quoted_len: 8,
    }
}

#[test]
fn source_quench_is_silently_discarded() {
    // MUST-55: no effect on the congestion window, the state, or the error
    // reported when the connection later times out.
    let mut h = Host::new(IP_A, 964);
    let (id, _peer) = active_established(&mut h, Some(1000), 65535);
    h.send(T0 + secs(1), id, &[1; 3000]).unwrap();
    h.out();
    let before = h.tcp.info(id).unwrap();
    for _ in 0..10 {
        let e = icmp_about(&h, id, IcmpErrorKind::SourceQuench);
        h.tcp.handle_icmp_error(T0 + secs(1), &mut h.net, &e);
    }
    h.nothing();
    assert_eq!(h.tcp.info(id).unwrap(), before);
    while let Some(t) = h.tcp.poll_at() {
        h.poll(t);
    }
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::TimedOut));
}

#[test]
fn soft_icmp_errors_never_abort() {
    // MUST-56: Destination Unreachable codes 0, 1 and 5, Time Exceeded and
    // Parameter Problem leave the connection open, while it is being opened and
    // once it is established.
    let soft = [
        IcmpErrorKind::DestUnreachable { code: 0, next_hop_mtu: 0 },
        IcmpErrorKind::DestUnreachable { code: 1, next_hop_mtu: 0 },
        IcmpErrorKind::DestUnreachable { code: 5, next_hop_mtu: 0 },
        IcmpErrorKind::TimeExceeded { code: 0 },
        IcmpErrorKind::TimeExceeded { code: 1 },
        IcmpErrorKind::ParameterProblem { pointer: 20 },
    ];
    let mut h = Host::new(IP_A, 965);
    let opening = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 81)).unwrap();
    h.out();
    let (open, _peer) = active_established(&mut h, Some(1000), 65535);
    h.send(T0 + secs(1), open, b"in flight").unwrap();
    h.out();
    for kind in soft {
        for id in [opening, open] {
            let e = icmp_about(&h, id, kind);
            h.tcp.handle_icmp_error(T0 + secs(1), &mut h.net, &e);
        }
        assert_eq!(h.state(opening), State::SynSent, "{kind:?}");
        assert_eq!(h.state(open), State::Established, "{kind:?}");
    }
    h.nothing();
}

#[test]
fn urgent_data_is_delivered_inline() {
    // Not a requirement shown: how the stack treats URG (see MUST-30..33 and
    // MUST-62 in the matrix). The pointer is not tracked; the urgent octets are
    // delivered in the stream, in order, as with SO_OOBINLINE.
    let mut h = Host::new(IP_A, 966);
    let (_l, id, mut peer) = passive_established(&mut h);
    let t = T0 + secs(1);
    peer.send(&mut h, t, "PA", b"ab").unwrap();
    let urgent = packet(IP_B, IP_A, &seg(peer.port, 80, peer.seq, peer.ack, "PA", 65535), b"URGxyz");
    h.deliver(t, &with_urgent(urgent, 3)).unwrap();
    assert_eq!(h.recv_all(t, id).unwrap(), b"abURGxyz");
    // And nothing we send carries URG.
    h.send(t, id, b"reply").unwrap();
    let p = h.net.out.pop().unwrap();
    assert_eq!((p.bytes[13] & 0x20, &p.bytes[18..20]), (0, &[0u8, 0][..]));
}

#[test]
fn reopening_from_time_wait_picks_an_isn_above_the_old_sequence_space() {
    // MAY-2: a new SYN may reopen a connection from TIME-WAIT only if the new
    // ISN is larger than any sequence number used by the old incarnation.
    let mut h = Host::new(IP_A, 967);
    let (_l, id, mut peer) = passive_established(&mut h);
    let data = pattern(100_000, 1);
    let mut sent = 0;
    let mut now = T0 + ms(10);
    while sent < data.len() || h.tcp.info(id).unwrap().unacked > 0 {
        if sent < data.len() {
            sent += h.send(now, id, &data[sent..]).unwrap_or(0);
        }
        for s in h.out() {
            peer.ack = Seq(peer.ack).max(Seq(s.seq) + s.data.len() as u32).0;
        }
        peer.send(&mut h, now, "A", b"").unwrap();
        now += ms(1);
    }
    assert!(now < T0 + ms(40), "sent quickly: {:?}", now - T0);
    // We close first; the peer acknowledges and closes: we are in TIME-WAIT.
    h.tcp.close(now, &mut h.net, id).unwrap();
    let fin = h.one();
    assert!(fin.fin);
    peer.ack = fin.seq + 1;
    peer.send(&mut h, now, "FA", b"").unwrap();
    h.out();
    assert_eq!(h.tcp.sockets().filter(|(_, i)| i.state == State::TimeWait).count(), 1);
    // 50 ms later the peer opens the same 4-tuple again.
    peer.raw(&mut h, now + ms(50), peer.seq + 100_000, 0, "S", b"").unwrap();
    let sa = h.one();
    assert_eq!(sa.flags(), "S.");
    let largest_used = Seq(fin.seq);
    assert!(Seq(sa.seq) > largest_used, "new ISN {} is not above {}", sa.seq, fin.seq);
}
