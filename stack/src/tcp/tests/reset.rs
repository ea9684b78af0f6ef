//! Resets: generation for segments nobody owns (RFC 9293 section 3.5.2, 3.10.7.1),
//! reception (3.10.7.4 second step) with RFC 5961's blind-attack defences.

use super::*;

#[test]
fn segments_to_closed_port_get_resets_with_rfc_numbers() {
    let mut h = Host::new(IP_A, 40);
    // A SYN (no ACK): <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    assert_eq!(
        h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 99, 1000, 0, "S", 100), b"")),
        Err(DropReason::TcpNoSocket)
    );
    let r = h.one();
    assert_eq!((r.flags().as_str(), r.seq, r.ack, r.src_port, r.dst_port), ("R.", 0, Some(1001), 99, 4000));
    // Data without ACK: SEG.LEN counts the data and the FIN.
    let _ = h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 99, 1000, 0, "FP", 100), b"abc"));
    assert_eq!(h.one().ack, Some(1004));
    // With an ACK: <SEQ=SEG.ACK><CTL=RST>.
    let _ = h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 99, 1000, 777, "A", 100), b"x"));
    let r = h.one();
    assert_eq!((r.flags().as_str(), r.seq), ("R", 777));
    // An RST never gets an RST.
    let _ = h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 99, 1000, 777, "RA", 100), b""));
    h.nothing();
    assert_eq!(h.net.counters.tx_resets, 3);
    assert_eq!(h.drops, [DropReason::TcpNoSocket; 4]);
}

#[test]
fn listen_state_rules() {
    let mut h = Host::new(IP_A, 41);
    h.tcp.listen(&mut h.net, addr(IP_A, 80), 4).unwrap();
    // RST: ignored.
    assert_eq!(
        h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 1, 0, "R", 0), b"")),
        Err(DropReason::TcpNotAcceptable)
    );
    h.nothing();
    // ACK: reset <SEQ=SEG.ACK>.
    let _ = h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 1, 55, "A", 0), b""));
    let r = h.one();
    assert_eq!((r.flags().as_str(), r.seq), ("R", 55));
    // Neither SYN nor ACK nor RST: dropped.
    assert_eq!(
        h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 1, 0, "F", 0), b"")),
        Err(DropReason::TcpNotAcceptable)
    );
    h.nothing();
    assert_eq!(h.tcp.connection_count(), 0);
}

#[test]
fn rst_in_syn_received_returns_passive_open_to_listen() {
    // MUST-11.
    let mut h = Host::new(IP_A, 42);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 4).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 100, 0, "S", 1000), b"")).unwrap();
    let sa = h.one();
    let child = h.all_transitions().iter().find(|t| t.to == State::SynReceived).unwrap().conn;
    // Exact sequence number: RCV.NXT = 101.
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 101, sa.seq + 1, "R", 0), b"")).unwrap();
    assert_eq!(h.transitions(child), ["LISTEN>SYN-RECEIVED (rcv SYN / snd SYN,ACK)", "SYN-RECEIVED>LISTEN (rcv RST)"]);
    assert_eq!(h.tcp.connection_count(), 0);
    assert_eq!(h.state(l), State::Listen);
    assert_eq!(h.tcp.poll_at(), None, "no SYN,ACK retransmission");
    // The listener still works.
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 500, 0, "S", 1000), b"")).unwrap();
    assert_eq!(h.one().flags(), "S.");
}

#[test]
fn rst_in_syn_received_of_active_open_is_refused() {
    let mut h = Host::new(IP_A, 43);
    let id = h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 5000)), addr(IP_B, 6000)).unwrap();
    h.out();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(6000, 5000, 300, 0, "S", 4000), b"")).unwrap();
    h.out();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(6000, 5000, 301, 0, "R", 0), b"")).unwrap();
    assert_eq!(h.state(id), State::Closed);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::ConnectionRefused));
}

/// An established connection with a scripted peer, and the peer's RCV.NXT window.
fn established(seed: u64) -> (Host, ConnId, Peer) {
    let mut h = Host::new(IP_A, seed);
    let (id, peer) = active_established(&mut h, Some(1460), 65535);
    (h, id, peer)
}

#[test]
fn rst_with_exact_sequence_number_resets() {
    let (mut h, id, peer) = established(44);
    peer.raw(&mut h, T0 + secs(1), peer.seq, 0, "R", b"").unwrap();
    assert_eq!(h.state(id), State::Closed);
    h.nothing();
    assert_eq!(h.tcp.readiness(id).unwrap().error, Some(TcpError::ConnectionReset));
    let mut buf = [0; 8];
    assert_eq!(h.tcp.recv(T0, &mut h.net, id, &mut buf, false), Err(TcpError::ConnectionReset));
    assert_eq!(h.tcp.recv(T0, &mut h.net, id, &mut buf, false), Ok(0), "then EOF");
    assert_eq!(h.send(T0, id, b"x"), Err(TcpError::BrokenPipe));
    assert_eq!(h.net.counters.rx_resets, 1);
    assert_eq!(h.net.counters.estab_resets, 1);
}

#[test]
fn rst_in_window_but_not_exact_gets_challenge_ack() {
    // RFC 5961 section 3.2.
    let (mut h, id, peer) = established(45);
    assert_eq!(peer.raw(&mut h, T0 + secs(1), peer.seq + 1000, 0, "R", b""), Err(DropReason::TcpNotAcceptable));
    let ack = h.one();
    assert_eq!((ack.flags().as_str(), ack.seq, ack.ack), (".", peer.ack, Some(peer.seq)));
    assert_eq!(h.state(id), State::Established);
    assert_eq!(h.net.counters.challenge_acks, 1);
    // A peer that really reset answers the challenge with an exact RST.
    peer.raw(&mut h, T0 + secs(1), ack.ack.unwrap(), 0, "R", b"").unwrap();
    assert_eq!(h.state(id), State::Closed);
}

#[test]
fn rst_outside_window_is_dropped_silently() {
    let (mut h, id, peer) = established(46);
    for seq in [peer.seq.wrapping_sub(1), peer.seq + 70_000, peer.seq.wrapping_add(1 << 31)] {
        assert_eq!(peer.raw(&mut h, T0 + secs(1), seq, 0, "R", b""), Err(DropReason::TcpNotAcceptable));
    }
    h.nothing();
    assert_eq!(h.state(id), State::Established);
    assert_eq!(h.net.counters.challenge_acks, 0);
}

#[test]
fn syn_in_synchronized_state_gets_challenge_ack() {
    // RFC 5961 section 4.2: any sequence number, in window or not.
    let (mut h, id, peer) = established(47);
    // 500 ms apart: the limit per connection (RFC 5961 section 7) allows one each.
    for (i, seq) in [peer.seq, peer.seq + 100, peer.seq.wrapping_sub(5000)].into_iter().enumerate() {
        let t = T0 + secs(1) + ms(500 * i as u64);
        assert_eq!(peer.raw(&mut h, t, seq, 0, "S", b""), Err(DropReason::TcpNotAcceptable));
        let ack = h.one();
        assert_eq!((ack.flags().as_str(), ack.ack), (".", Some(peer.seq)));
    }
    assert_eq!(h.state(id), State::Established);
    assert_eq!(h.net.counters.challenge_acks, 3);
}

#[test]
fn ack_outside_acceptable_range_gets_challenge_ack_and_is_dropped() {
    // RFC 5961 section 5.2: (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT.
    let (mut h, id, mut peer) = established(48);
    h.send(T0 + secs(1), id, b"0123456789").unwrap();
    h.out();
    // Acknowledging data never sent, with data: the data is not taken.
    assert_eq!(
        peer.raw(&mut h, T0 + secs(1), peer.seq, peer.ack + 11, "PA", b"evil"),
        Err(DropReason::TcpNotAcceptable)
    );
    assert_eq!(h.one().ack, Some(peer.seq));
    assert_eq!(h.tcp.info(id).unwrap().recv_queue, 0);
    // Too far behind SND.UNA (500 ms on: the limit per connection allows one each).
    assert_eq!(
        peer.raw(&mut h, T0 + secs(1) + ms(500), peer.seq, peer.ack.wrapping_sub(70_000), "PA", b"evil"),
        Err(DropReason::TcpNotAcceptable)
    );
    assert_eq!(h.one().flags(), ".");
    assert_eq!(h.net.counters.challenge_acks, 2);
    // An old but acceptable ACK (a duplicate) lets the data through.
    peer.send(&mut h, T0 + secs(1), "PA", b"good").unwrap();
    assert_eq!(h.recv_all(T0 + secs(1), id).unwrap(), b"good");
}

#[test]
fn challenge_acks_are_rate_limited() {
    // The stack-wide ceiling (the limit per connection turned off here): each
    // second's budget is drawn from [limit/2, 3*limit/2).
    let cfg = TcpConfig { challenge_ack_interval: Duration::ZERO, challenge_ack_limit: 4, ..TcpConfig::default() };
    let mut h = Host::with_config(IP_A, 49, cfg);
    let (id, peer) = active_established(&mut h, Some(1460), 65535);
    let t = T0 + secs(5);
    for _ in 0..10 {
        let _ = peer.raw(&mut h, t, peer.seq + 10, 0, "R", b"");
    }
    let sent = h.out().len() as u64;
    assert!((2..6).contains(&sent), "{sent}");
    assert_eq!(h.net.counters.challenge_acks, sent);
    assert_eq!(h.net.counters.challenge_acks_limited, 10 - sent);
    // Within the same second, nothing more; the next second has a new budget.
    let _ = peer.raw(&mut h, t + ms(100), peer.seq + 10, 0, "S", b"");
    h.nothing();
    let _ = peer.raw(&mut h, t + secs(1), peer.seq + 10, 0, "S", b"");
    let _ = peer.raw(&mut h, t + secs(1), peer.seq + 10, 0, "S", b"");
    assert_eq!(h.out().len(), 2);
    assert_eq!(h.state(id), State::Established);
}

#[test]
fn rst_in_each_synchronized_state() {
    type Setup = fn(&mut Host, ConnId, &mut Peer);
    let cases: [(&str, Setup); 4] = [
        ("FIN-WAIT-1", |h, id, _| {
            h.tcp.shutdown(T0, &mut h.net, id, Shutdown::Write).unwrap();
        }),
        ("FIN-WAIT-2", |h, id, p| {
            h.tcp.shutdown(T0, &mut h.net, id, Shutdown::Write).unwrap();
            p.ack += 1;
            p.send(h, T0, "A", b"").unwrap();
        }),
        ("CLOSE-WAIT", |h, _, p| {
            p.send(h, T0, "FA", b"").unwrap();
        }),
        ("TIME-WAIT", |h, id, p| {
            h.tcp.shutdown(T0, &mut h.net, id, Shutdown::Write).unwrap();
            p.ack += 1;
            p.send(h, T0, "FA", b"").unwrap();
        }),
    ];
    for (i, (name, setup)) in cases.into_iter().enumerate() {
        let (mut h, id, mut peer) = established(50 + i as u64);
        setup(&mut h, id, &mut peer);
        assert_eq!(h.state(id).name(), name);
        h.out();
        peer.raw(&mut h, T0 + ms(1), peer.seq, 0, "R", b"").unwrap();
        assert_eq!(h.state(id), State::Closed, "{name}");
        let expect = if name == "TIME-WAIT" { None } else { Some(TcpError::ConnectionReset) };
        assert_eq!(h.tcp.take_error(id).unwrap(), expect, "{name}");
        h.nothing();
    }
}

#[test]
fn unacceptable_segment_gets_ack_and_is_dropped() {
    let (mut h, id, peer) = established(55);
    // Old data (a duplicate) entirely before RCV.NXT.
    assert_eq!(
        peer.raw(&mut h, T0 + secs(1), peer.seq.wrapping_sub(10), peer.ack, "PA", b"0123456789"),
        Err(DropReason::TcpNotAcceptable)
    );
    let ack = h.one();
    assert_eq!((ack.flags().as_str(), ack.seq, ack.ack), (".", peer.ack, Some(peer.seq)));
    // Beyond the window.
    assert_eq!(
        peer.raw(&mut h, T0 + secs(1), peer.seq + 200_000, peer.ack, "PA", b"x"),
        Err(DropReason::TcpNotAcceptable)
    );
    assert_eq!(h.one().flags(), ".");
    assert_eq!(h.tcp.info(id).unwrap().recv_queue, 0);
}

#[test]
fn icmp_hard_error_refuses_connect_soft_error_is_reported_on_timeout() {
    use crate::icmp::{IcmpError, IcmpErrorKind};
    let mut h = Host::new(IP_A, 56);
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    let syn = h.one();
    let mut quoted = [0u8; 8];
    quoted[0..2].copy_from_slice(&syn.src_port.to_be_bytes());
    quoted[2..4].copy_from_slice(&80u16.to_be_bytes());
    quoted[4..8].copy_from_slice(&syn.seq.to_be_bytes());
    let err = |kind, quoted| IcmpError {
        kind,
        reporter: IP_B,
        src: IP_A,
        dst: IP_B,
        protocol: etherparse::IpNumber::TCP,
        quoted,
        quoted_len: 8,
    };
    // Soft: host unreachable does not abort (MUST-56)...
    h.tcp.handle_icmp_error(T0, &mut h.net, &err(IcmpErrorKind::DestUnreachable { code: 1, next_hop_mtu: 0 }, quoted));
    assert_eq!(h.state(id), State::SynSent);
    // ...a quote with a sequence number we did not send is ignored (RFC 5927)...
    let mut wrong = err(IcmpErrorKind::DestUnreachable { code: 3, next_hop_mtu: 0 }, quoted);
    wrong.quoted[4..8].copy_from_slice(&(syn.seq + 1000).to_be_bytes());
    h.tcp.handle_icmp_error(T0, &mut h.net, &wrong);
    assert_eq!(h.state(id), State::SynSent);
    // ...and when the SYN retries run out, the soft error is what is reported.
    while let Some(t) = h.tcp.poll_at() {
        h.poll(t);
    }
    assert_eq!(h.out().len(), 7);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::HostUnreachable));

    // Hard: port unreachable in SYN-SENT refuses.
    let id = h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, syn.src_port)), addr(IP_B, 80)).unwrap();
    let syn = h.one();
    quoted[4..8].copy_from_slice(&syn.seq.to_be_bytes());
    h.tcp.handle_icmp_error(T0, &mut h.net, &err(IcmpErrorKind::DestUnreachable { code: 3, next_hop_mtu: 0 }, quoted));
    assert_eq!(h.state(id), State::Closed);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::ConnectionRefused));
}

#[test]
fn icmp_hard_error_does_not_abort_established() {
    use crate::icmp::{IcmpError, IcmpErrorKind};
    let (mut h, id, peer) = established(57);
    h.send(T0, id, b"abc").unwrap();
    h.out();
    let mut quoted = [0u8; 8];
    quoted[0..2].copy_from_slice(&peer.our_port.to_be_bytes());
    quoted[2..4].copy_from_slice(&80u16.to_be_bytes());
    quoted[4..8].copy_from_slice(&peer.ack.to_be_bytes());
    let e = IcmpError {
        kind: IcmpErrorKind::DestUnreachable { code: 3, next_hop_mtu: 0 },
        reporter: IP_B,
        src: IP_A,
        dst: IP_B,
        protocol: etherparse::IpNumber::TCP,
        quoted,
        quoted_len: 8,
    };
    h.tcp.handle_icmp_error(T0, &mut h.net, &e);
    assert_eq!(h.state(id), State::Established, "RFC 5461: soft in synchronized states");
    // Fragmentation needed with a next-hop MTU: the MSS shrinks (RFC 1191).
    let e = IcmpError { kind: IcmpErrorKind::DestUnreachable { code: 4, next_hop_mtu: 1000 }, ..e };
    h.tcp.handle_icmp_error(T0, &mut h.net, &e);
    assert_eq!(h.tcp.info(id).unwrap().snd_mss, 960);
}

#[test]
fn other_syn_in_syn_received_returns_passive_open_to_listen() {
    // RFC 9293 section 3.10.7.4, fourth: a SYN (not the one received) in
    // SYN-RECEIVED of a passive open returns it to LISTEN.
    let mut h = Host::new(IP_A, 58);
    h.tcp.listen(&mut h.net, addr(IP_A, 80), 4).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 100, 0, "S", 1000), b"")).unwrap();
    h.out();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 150, 0, "S", 1000), b"")).unwrap();
    h.nothing();
    assert_eq!(h.tcp.connection_count(), 0);
    let t: Vec<String> = h.all_transitions().iter().map(|t| format!("{}>{} ({})", t.from, t.to, t.cause)).collect();
    assert_eq!(t.last().unwrap(), "SYN-RECEIVED>LISTEN (rcv SYN)");
    // The peer's next SYN starts afresh.
    h.deliver(T0 + secs(1), &packet(IP_B, IP_A, &seg(4000, 80, 150, 0, "S", 1000), b"")).unwrap();
    assert_eq!(h.one().ack, Some(151));
}

#[test]
fn bad_ack_in_syn_received_gets_reset() {
    let mut h = Host::new(IP_A, 59);
    h.tcp.listen(&mut h.net, addr(IP_A, 80), 4).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 100, 0, "S", 1000), b"")).unwrap();
    let sa = h.one();
    let bad = seg(4000, 80, 101, sa.seq.wrapping_add(50), "A", 1000);
    assert_eq!(h.deliver(T0, &packet(IP_B, IP_A, &bad, b"")), Err(DropReason::TcpNotAcceptable));
    let r = h.one();
    assert_eq!((r.flags().as_str(), r.seq), ("R", sa.seq.wrapping_add(50)), "<SEQ=SEG.ACK><CTL=RST>");
    assert_eq!(h.tcp.connection_count(), 1, "the half-open connection stays");
}
