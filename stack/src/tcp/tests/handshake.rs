//! Opening: RFC 9293 section 3.5 (Figures 6-8), MSS and window scale options.

use super::*;

#[test]
fn active_open_sends_syn_with_options_and_completes() {
    let mut h = Host::new(IP_A, 1);
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    assert_eq!(h.state(id), State::SynSent);
    let syn = h.one();
    assert_eq!(syn.flags(), "S");
    assert_eq!(syn.mss, Some(1460), "MSS = MTU 1500 - 40 (MUST-14)");
    assert_eq!(syn.wscale, Some(1), "64 KiB buffer needs a shift of 1");
    assert_eq!(syn.wnd, 65535);
    assert!(EPHEMERAL_PORTS.contains(&syn.src_port));
    assert_eq!(h.net.counters.active_opens, 1);
    let local = h.tcp.local_addr(id).unwrap();
    assert_eq!(local, addr(IP_A, syn.src_port));
    assert!(!h.tcp.readiness(id).unwrap().writable);
    // SYN,ACK arrives.
    let mut s = seg(80, syn.src_port, 9000, syn.seq + 1, "SA", 1000);
    s.mss = Some(1200);
    s.wscale = Some(3);
    h.deliver(T0 + ms(30), &packet(IP_B, IP_A, &s, b"")).unwrap();
    let ack = h.one();
    assert_eq!((ack.flags().as_str(), ack.seq, ack.ack), (".", syn.seq + 1, Some(9001)));
    assert_eq!(h.state(id), State::Established);
    let info = h.tcp.info(id).unwrap();
    assert_eq!(info.snd_mss, 1200, "peer's MSS honoured");
    assert_eq!((info.snd_wscale, info.rcv_wscale), (3, 1));
    assert_eq!(info.snd_wnd, 1000, "the SYN's window is not scaled");
    assert_eq!(info.srtt, Some(ms(30)), "SYN round trip sampled");
    // Window field of later segments is scaled by our shift: the 65535 offered
    // on the SYN >> 1 (one more byte is not worth moving the edge: receiver SWS).
    assert_eq!(ack.wnd, 32767);
    assert!(h.tcp.readiness(id).unwrap().writable);
    assert_eq!(
        h.transitions(id),
        ["CLOSED>SYN-SENT (active OPEN / snd SYN)", "SYN-SENT>ESTABLISHED (rcv SYN,ACK / snd ACK)"]
    );
}

#[test]
fn no_mss_option_means_536_and_no_wscale_means_no_scaling() {
    let mut h = Host::new(IP_A, 1);
    let (id, _peer) = active_established(&mut h, None, 65535);
    let info = h.tcp.info(id).unwrap();
    assert_eq!(info.snd_mss, 536, "MUST-15");
    assert_eq!((info.snd_wscale, info.rcv_wscale), (0, 0));
    h.send(T0 + ms(20), id, &[7u8; 2000]).unwrap();
    let segs = h.out();
    assert!(segs.len() >= 3);
    assert!(segs.iter().all(|s| s.data.len() <= 536), "segments fit the MSS");
    assert_eq!(segs[0].data.len(), 536);
    assert_eq!(segs[0].wnd, 65535, "unscaled window, capped at 65535");
}

#[test]
fn passive_open_through_listen_and_accept() {
    let mut h = Host::new(IP_A, 2);
    let (l, id, _peer) = passive_established(&mut h);
    assert_eq!(h.state(id), State::Established);
    assert_eq!(h.state(l), State::Listen);
    assert_eq!(h.net.counters.passive_opens, 1);
    assert_eq!(
        h.transitions(id),
        ["LISTEN>SYN-RECEIVED (rcv SYN / snd SYN,ACK)", "SYN-RECEIVED>ESTABLISHED (rcv ACK of SYN)"]
    );
    assert_eq!(h.tcp.peer_addr(id).unwrap(), addr(IP_B, 4000));
    assert_eq!(h.tcp.peer_addr(l), Err(TcpError::NotConnected));
}

#[test]
fn syn_ack_without_wscale_when_syn_had_none() {
    let mut h = Host::new(IP_A, 2);
    h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 1, 0, "S", 8192), b"")).unwrap();
    let sa = h.one();
    assert_eq!(sa.flags(), "S.");
    assert_eq!(sa.wscale, None, "RFC 7323: only in reply to a SYN that had it");
    assert_eq!(sa.mss, Some(1460));
    let mut s = seg(4000, 81, 1, 0, "S", 8192);
    s.wscale = Some(7);
    h.tcp.listen(&mut h.net, addr(IP_A, 81), 8).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &s, b"")).unwrap();
    assert_eq!(h.one().wscale, Some(1));
}

#[test]
fn retransmitted_syn_in_syn_received_gets_the_syn_ack_again() {
    let mut h = Host::new(IP_A, 2);
    h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    let syn = packet(IP_B, IP_A, &seg(4000, 80, 100, 0, "S", 8192), b"");
    h.deliver(T0, &syn).unwrap();
    let first = h.one();
    h.deliver(T0 + secs(1), &syn).unwrap();
    let again = h.one();
    assert_eq!((again.flags(), again.seq, again.ack), (first.flags(), first.seq, first.ack));
    assert_eq!(h.tcp.connection_count(), 1, "no second connection");
}

#[test]
fn syn_ack_is_retransmitted_and_gives_up() {
    let mut h = Host::new(IP_A, 2);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 100, 0, "S", 8192), b"")).unwrap();
    assert_eq!(h.one().flags(), "S.");
    let mut times = Vec::new();
    let mut t = T0;
    while let Some(next) = h.tcp.poll_at() {
        t = next;
        h.poll(t);
        for s in h.out() {
            assert_eq!(s.flags(), "S.");
            times.push((t - T0).as_secs());
        }
    }
    // Five retransmissions as Linux's tcp_synack_retries (issue 13, item 2: a
    // spoofed SYN held its SYN queue place for 247 s with seven); the active
    // side's SYN keeps its seven (MUST-23).
    assert_eq!(times, [1, 3, 7, 15, 31]);
    assert_eq!((t - T0).as_secs(), 63);
    assert_eq!(h.tcp.connection_count(), 0, "the half-open connection is gone");
    assert_eq!(h.tcp.accept(l).unwrap(), None);
    assert_eq!(h.net.counters.attempt_fails, 1);
}

#[test]
fn simultaneous_open() {
    // MUST-10, RFC 9293 Figure 7: both sides send SYN, both go through SYN-RECEIVED.
    let mut w = Wire::new(3);
    let a = w.a.tcp.connect(w.now, &mut w.a.net, Some(addr(IP_A, 5000)), addr(IP_B, 6000)).unwrap();
    let b = w.b.tcp.connect(w.now, &mut w.b.net, Some(addr(IP_B, 6000)), addr(IP_A, 5000)).unwrap();
    assert!(w.run_until(secs(5), |w| w.a.state(a) == State::Established && w.b.state(b) == State::Established));
    for (host, id) in [(&mut w.a, a), (&mut w.b, b)] {
        assert_eq!(
            host.transitions(id),
            [
                "CLOSED>SYN-SENT (active OPEN / snd SYN)",
                "SYN-SENT>SYN-RECEIVED (rcv SYN / snd SYN,ACK)",
                "SYN-RECEIVED>ESTABLISHED (rcv ACK of SYN)"
            ]
        );
    }
    w.a.send(w.now, a, b"hello").unwrap();
    assert!(w.run_until(secs(1), |w| w.b.tcp.info(b).unwrap().recv_queue == 5));
    assert_eq!(w.b.recv_all(w.now, b).unwrap(), b"hello");
}

#[test]
fn simultaneous_open_scripted_segments() {
    let mut h = Host::new(IP_A, 4);
    let id = h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 5000)), addr(IP_B, 6000)).unwrap();
    let syn = h.one();
    // The peer's SYN crosses ours.
    let mut s = seg(6000, 5000, 300, 0, "S", 4000);
    s.mss = Some(1000);
    h.deliver(T0 + ms(1), &packet(IP_B, IP_A, &s, b"")).unwrap();
    assert_eq!(h.state(id), State::SynReceived);
    let sa = h.one();
    assert_eq!((sa.flags().as_str(), sa.seq, sa.ack), ("S.", syn.seq, Some(301)));
    assert_eq!(sa.wscale, None, "the peer's SYN had no window scale");
    // The peer's SYN,ACK (Figure 7, line 6): its SYN is old, its ACK completes
    // our side of the handshake.
    h.deliver(T0 + ms(2), &packet(IP_B, IP_A, &seg(6000, 5000, 300, syn.seq + 1, "SA", 4000), b"")).unwrap();
    assert_eq!(h.state(id), State::Established);
    h.nothing(); // Figure 7: nothing more is owed, each SYN,ACK acknowledged a SYN.
    assert_eq!(h.tcp.info(id).unwrap().snd_mss, 1000);
}

#[test]
fn connect_refused_by_rst() {
    let mut h = Host::new(IP_A, 5);
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 81)).unwrap();
    let syn = h.one();
    // An RST without an acceptable ACK is dropped (3.10.7.3).
    let bad = seg(81, syn.src_port, 0, syn.seq + 5, "RA", 0);
    assert_eq!(h.deliver(T0, &packet(IP_B, IP_A, &bad, b"")), Err(DropReason::TcpNotAcceptable));
    let no_ack = seg(81, syn.src_port, 0, 0, "R", 0);
    assert_eq!(h.deliver(T0, &packet(IP_B, IP_A, &no_ack, b"")), Err(DropReason::TcpNotAcceptable));
    assert_eq!(h.state(id), State::SynSent);
    h.nothing();
    let rst = seg(81, syn.src_port, 0, syn.seq + 1, "RA", 0);
    h.deliver(T0, &packet(IP_B, IP_A, &rst, b"")).unwrap();
    assert_eq!(h.state(id), State::Closed);
    let r = h.tcp.readiness(id).unwrap();
    assert_eq!(r.error, Some(TcpError::ConnectionRefused));
    assert!(r.hangup);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::ConnectionRefused));
    assert_eq!(h.tcp.take_error(id).unwrap(), None);
    assert_eq!(h.net.counters.attempt_fails, 1);
    assert_eq!(h.transitions(id)[1], "SYN-SENT>CLOSED (rcv RST)");
    assert_eq!(h.tcp.poll_at(), None, "no timers left");
}

#[test]
fn syn_sent_unacceptable_ack_gets_reset() {
    let mut h = Host::new(IP_A, 5);
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    let syn = h.one();
    let s = seg(80, syn.src_port, 1, syn.seq.wrapping_add(1000), "SA", 100);
    assert_eq!(h.deliver(T0, &packet(IP_B, IP_A, &s, b"")), Err(DropReason::TcpNotAcceptable));
    let rst = h.one();
    assert_eq!((rst.flags().as_str(), rst.seq), ("R", syn.seq.wrapping_add(1000)));
    assert_eq!(h.state(id), State::SynSent);
}

#[test]
fn data_queued_in_syn_sent_goes_after_the_handshake() {
    let mut h = Host::new(IP_A, 6);
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    let syn = h.one();
    assert_eq!(h.send(T0, id, b"early"), Ok(5));
    h.nothing();
    h.deliver(T0 + ms(5), &packet(IP_B, IP_A, &seg(80, syn.src_port, 1, syn.seq + 1, "SA", 1000), b"")).unwrap();
    let out = h.out();
    assert_eq!(out.len(), 1, "the data carries the handshake's ACK: {out:?}");
    assert_eq!(out[0].data, b"early");
    assert_eq!(out[0].ack, Some(2));
    assert!(out[0].psh);
}

#[test]
fn ephemeral_ports_are_random_distinct_and_reproducible() {
    let ports = |seed| {
        let mut h = Host::new(IP_A, seed);
        (0..50)
            .map(|i| {
                let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80 + i)).unwrap();
                h.tcp.local_addr(id).unwrap().port()
            })
            .collect::<Vec<u16>>()
    };
    let a = ports(9);
    assert_eq!(a, ports(9), "same seed, same ports");
    assert_ne!(a, ports(10));
    let mut sorted = a.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 50, "all distinct");
    assert!(a.iter().all(|p| EPHEMERAL_PORTS.contains(p)));
    assert!(a.windows(2).any(|w| w[1] != w[0] + 1), "not sequential");
}

#[test]
fn isns_differ_per_connection_and_grow_with_time() {
    let mut h = Host::new(IP_A, 11);
    h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 1000)), addr(IP_B, 80)).unwrap();
    let a = h.one().seq;
    h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 1001)), addr(IP_B, 80)).unwrap();
    let b = h.one().seq;
    assert_ne!(a, b);
}

#[test]
fn backlog_full_drops_syns_silently() {
    // Without SYN cookies (Linux's tcp_syncookies = 0). The backlog bounds the
    // SYN queue and the accept queue apart, as Linux's sk_max_ack_backlog.
    let cfg = TcpConfig { syn_cookies: false, ..TcpConfig::default() };
    let mut h = Host::with_config(IP_A, 12, cfg);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 2).unwrap();
    for port in [4000, 4001] {
        h.deliver(T0, &packet(IP_B, IP_A, &seg(port, 80, 1, 0, "S", 1000), b"")).unwrap();
    }
    let synacks = h.out();
    assert_eq!(synacks.len(), 2);
    // The SYN queue is full.
    assert_eq!(
        h.deliver(T0, &packet(IP_B, IP_A, &seg(4002, 80, 1, 0, "S", 1000), b"")),
        Err(DropReason::TcpBacklogFull)
    );
    h.nothing();
    // Both handshakes complete: the SYN queue is empty, the accept queue full
    // until one is accepted.
    for sa in &synacks {
        h.deliver(T0, &packet(IP_B, IP_A, &seg(sa.dst_port, 80, 2, sa.seq + 1, "A", 1000), b"")).unwrap();
    }
    assert_eq!(
        h.deliver(T0, &packet(IP_B, IP_A, &seg(4002, 80, 1, 0, "S", 1000), b"")),
        Err(DropReason::TcpBacklogFull)
    );
    h.nothing();
    assert_eq!(h.tcp.info(l).unwrap().recv_queue, 2);
    assert!(h.tcp.readiness(l).unwrap().readable);
    let (id, _) = h.tcp.accept(l).unwrap().unwrap();
    assert_eq!(h.state(id), State::Established);
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4002, 80, 1, 0, "S", 1000), b"")).unwrap();
    assert_eq!(h.one().flags(), "S.");
}

#[test]
fn connection_limit() {
    let cfg = TcpConfig { max_connections: 2, syn_cookies: false, ..TcpConfig::default() };
    let mut h = Host::with_config(IP_A, 13, cfg);
    h.tcp.listen(&mut h.net, addr(IP_A, 80), 10).unwrap();
    h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 1, 0, "S", 1000), b"")).unwrap();
    assert_eq!(
        h.deliver(T0, &packet(IP_B, IP_A, &seg(4001, 80, 1, 0, "S", 1000), b"")),
        Err(DropReason::TcpConnectionLimit)
    );
    assert_eq!(h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)), Err(TcpError::NoBufferSpace));
}

#[test]
fn bad_options_are_dropped_and_counted() {
    let mut h = Host::new(IP_A, 14);
    h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    let mut p = packet(IP_B, IP_A, &seg(4000, 80, 1, 0, "S", 1000), b"");
    // Rewrite as a header with 4 bytes of options: kind 99, length 0.
    let mut bytes = p.bytes[..20].to_vec();
    bytes[12] = 6 << 4;
    bytes.extend_from_slice(&[99, 0, 0, 0]);
    bytes[16] = 0;
    bytes[17] = 0;
    let sum = segment::checksum(IP_B, IP_A, &[&bytes]);
    bytes[16..18].copy_from_slice(&sum.to_be_bytes());
    p.bytes = bytes;
    assert_eq!(h.deliver(T0, &p), Err(DropReason::TcpBadOptions));
    h.nothing();
}

#[test]
fn broadcast_and_invalid_connect_arguments() {
    let mut h = Host::new(IP_A, 15);
    for bad in [addr(IP_B, 0), addr(Ipv4Addr::BROADCAST, 80), addr(Ipv4Addr::UNSPECIFIED, 80)] {
        assert_eq!(h.tcp.connect(T0, &mut h.net, None, bad), Err(TcpError::InvalidArgument));
    }
    assert_eq!(h.tcp.connect(T0, &mut h.net, Some(addr(IP_B, 1)), addr(IP_B, 80)), Err(TcpError::InvalidArgument));
}

#[test]
fn windows_are_right_whatever_the_initial_sequence_numbers() {
    // Sequence numbers compare modulo 2^32: run the handshake and a little data
    // with ISNs all around the circle.
    for seed in 0..64 {
        let mut w = Wire::new(5000 + seed);
        w.now = T0 + Duration::from_micros(seed * 67_108_864); // moves the ISN clock by 2^24 per seed
        let (a, _l, b) = w.connect();
        for (host, id) in [(&w.a, a), (&w.b, b)] {
            let info = host.tcp.info(id).unwrap();
            assert_eq!(info.rcv_wnd, 65535, "seed {seed}: {info:?}");
            // A's from B's unscaled SYN,ACK; B's from A's ACK, scaled: 32767 << 1.
            assert!(info.snd_wnd == 65535 || info.snd_wnd == 65534, "seed {seed}: {info:?}");
        }
        w.a.send(w.now, a, &[1; 3000]).unwrap();
        w.run_for(secs(1));
        assert_eq!(w.b.recv_all(w.now, b).unwrap().len(), 3000, "seed {seed}");
        assert_eq!(w.b.tcp.info(b).unwrap().rcv_wnd, 65536, "seed {seed}: the whole buffer again");
    }
}

#[test]
fn data_on_a_syn_is_not_acknowledged() {
    let mut h = Host::new(IP_A, 16);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 4).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 100, 0, "S", 1000), b"early")).unwrap();
    let sa = h.one();
    assert_eq!(sa.ack, Some(101), "only the SYN is acknowledged; the peer sends the data again");
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 101, sa.seq + 1, "PA", 1000), b"early")).unwrap();
    let (id, _) = h.tcp.accept(l).unwrap().unwrap();
    assert_eq!(h.recv_all(T0, id).unwrap(), b"early");
}

#[test]
fn reset_while_waiting_in_the_accept_queue_removes_it() {
    let mut h = Host::new(IP_A, 17);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 4).unwrap();
    let mut peers = Vec::new();
    for port in [4000, 4001] {
        let mut p = Peer { port, our_port: 80, seq: 10, ack: 0, wnd: 1000 };
        p.send(&mut h, T0, "S", b"").unwrap();
        p.ack = h.one().seq + 1;
        p.send(&mut h, T0, "A", b"").unwrap();
        peers.push(p);
    }
    let listing: Vec<(State, u16)> = h.tcp.sockets().map(|(_, i)| (i.state, i.remote.port())).collect();
    assert_eq!(listing, [(State::Listen, 0), (State::Established, 4000), (State::Established, 4001)]);
    peers[0].send(&mut h, T0, "R", b"").unwrap();
    let (_, remote) = h.tcp.accept(l).unwrap().unwrap();
    assert_eq!(remote.port(), 4001);
    assert_eq!(h.tcp.accept(l).unwrap(), None);
    assert_eq!(h.tcp.connection_count(), 1);
}

/// The SYN queue drops children that leave it lazily (issue 11: no per-segment
/// walk of the queue): with 3,000 handshakes under way, a third completed, a
/// third reset, the live count always matches the queue's live entries, the
/// queue's length stays within twice that, and closing the listener resets
/// exactly the children still waiting (accept queue, then SYN queue).
#[test]
fn the_syn_queue_counts_its_children_and_sweeps_those_that_left() {
    let cfg = TcpConfig { syn_cookies: false, ..TcpConfig::default() };
    let mut h = Host::with_config(IP_A, 16, cfg);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 4096).unwrap();
    let check = |h: &Host| {
        use crate::tcp::table::{Slot, Sock};
        let Some(Slot { sock: Some(Sock::Listener(li)), .. }) = h.tcp.slots.get(l.index as usize) else { panic!() };
        let live = li.pending.iter().filter(|&&c| h.tcp.in_syn_queue(c, l)).count();
        assert_eq!(li.syn_count, live);
        assert!(li.pending.len() <= 2 * live + 17, "{} entries for {live}", li.pending.len());
    };
    let ports: Vec<u16> = (0..3000).map(|i| 10_000 + i).collect();
    for &p in &ports {
        h.deliver(T0, &packet(IP_B, IP_A, &seg(p, 80, 1, 0, "S", 1000), b"")).unwrap();
    }
    let synacks = h.out();
    assert_eq!(synacks.len(), ports.len());
    check(&h);
    for (i, sa) in synacks.iter().enumerate() {
        match i % 3 {
            0 => h.deliver(T0, &packet(IP_B, IP_A, &seg(sa.dst_port, 80, 2, sa.seq + 1, "A", 1000), b"")).unwrap(),
            1 => h.deliver(T0, &packet(IP_B, IP_A, &seg(sa.dst_port, 80, 2, 0, "R", 0), b"")).unwrap(),
            _ => {}
        }
        check(&h);
    }
    h.out();
    assert_eq!(h.tcp.info(l).unwrap().recv_queue, 1000, "a third established, waiting for accept");
    h.tcp.close(T0, &mut h.net, l).unwrap();
    let resets = h.out();
    assert!(resets.iter().all(|s| s.flags().contains('R')));
    assert_eq!(resets.len(), 2000, "the accept queue's and the SYN queue's children, once each");
    let first: Vec<u16> = resets.iter().take(1000).map(|s| s.dst_port).collect();
    let expect: Vec<u16> = synacks.iter().step_by(3).map(|s| s.dst_port).collect();
    assert_eq!(first, expect, "the accept queue first, in arrival order");
}
