//! Findings of the hardening audit (issue 13), each reproduced: a test that
//! failed before its fix. Virtual time, scripted peers.

use super::*;

/// A connection at IP_A:5000 to IP_B:6000 in SYN-RECEIVED after a
/// simultaneous open (the peer's bare SYN crossed ours, window `wnd`);
/// returns it and our SYN's sequence number.
fn simultaneous_syn_received(h: &mut Host, wnd: u16) -> (ConnId, u32) {
    let id = h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 5000)), addr(IP_B, 6000)).unwrap();
    let syn = h.one();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(6000, 5000, 300, 0, "S", wnd), b"")).unwrap();
    assert_eq!(h.one().flags(), "S.");
    assert_eq!(h.state(id), State::SynReceived);
    (id, syn.seq)
}

/// Runs every timer for `d` of virtual time from `from`; returns the segments sent.
fn run_timers(h: &mut Host, from: Instant, d: Duration) -> Vec<Seg> {
    let mut out = Vec::new();
    let end = from + d;
    while let Some(t) = h.tcp.poll_at().filter(|&t| t <= end) {
        h.poll(t);
        out.extend(h.out());
    }
    out
}

#[test]
fn fin_from_simultaneous_open_queues_behind_the_syn_on_retransmission() {
    // Issue 13, item 1: the first RTO in FIN-WAIT-1 with our SYN unacknowledged
    // took the SYN's octet for data and panicked in SendBuffer::slices.
    let mut h = Host::new(IP_A, 1301);
    let (id, iss) = simultaneous_syn_received(&mut h, 4000);
    h.tcp.shutdown(T0, &mut h.net, id, Shutdown::Write).unwrap();
    assert_eq!(h.one().flags(), "F.");
    assert_eq!(h.state(id), State::FinWait1);
    let t = h.tcp.poll_at().unwrap();
    h.poll(t);
    let again = h.out();
    let got: Vec<(String, u32)> = again.iter().map(|s| (s.flags(), s.seq)).collect();
    // The SYN,ACK is retransmitted first, the FIN behind it (as Linux does).
    assert_eq!(got, [("S.".to_string(), iss), ("F.".to_string(), iss.wrapping_add(1))]);
    assert_eq!(again[0].ack, Some(301));
    // The peer acknowledges both: FIN-WAIT-2.
    h.deliver(t, &packet(IP_B, IP_A, &seg(6000, 5000, 301, iss.wrapping_add(2), "A", 4000), b"")).unwrap();
    assert_eq!(h.state(id), State::FinWait2);
}

#[test]
fn fragmentation_needed_before_our_syn_is_acknowledged_resends_no_data() {
    // Found by the frame_path fuzz target: "fragmentation needed" quoting our
    // SYN in FIN-WAIT-1 after a simultaneous open went back to SND.UNA to resend
    // in smaller segments, took the SYN's octet for data and overran the send
    // buffer (a debug assertion; out of bounds in release).
    let mut h = Host::new(IP_A, 1304);
    let (id, iss) = simultaneous_syn_received(&mut h, 4000);
    h.tcp.shutdown(T0, &mut h.net, id, Shutdown::Write).unwrap();
    assert_eq!(h.one().flags(), "F.");
    let e = icmp(&h, id, 4, 552, iss, 8);
    h.tcp.handle_icmp_error(T0, &mut h.net, &e);
    assert_eq!(h.tcp.info(id).unwrap().snd_mss, 512, "the path MTU is learnt");
    assert!(h.out().is_empty(), "nothing to resend at once: the SYN is no data");
    let out = run_timers(&mut h, T0, secs(2));
    let got: Vec<(String, u32, usize)> = out.iter().map(|s| (s.flags(), s.seq, s.data.len())).collect();
    assert_eq!(got[..2], [("S.".to_string(), iss, 0), ("F.".to_string(), iss.wrapping_add(1), 0)]);
}

#[test]
fn close_in_simultaneous_syn_received_survives_a_silent_or_closed_peer() {
    // The same with close (and what connect_timeout does), against a peer that
    // never answers, offering a zero window (window probes) or a window: the
    // connection retransmits, then gives up; nothing panics.
    for wnd in [0u16, 4000] {
        let mut h = Host::new(IP_A, 1302);
        let (id, _) = simultaneous_syn_received(&mut h, wnd);
        h.tcp.close(T0, &mut h.net, id).unwrap();
        let out = run_timers(&mut h, T0, secs(3600));
        assert!(out.iter().any(|s| s.syn), "the SYN,ACK is retransmitted");
        assert!(out.iter().all(|s| s.data.is_empty()), "the SYN is no data: {out:?}");
        assert_eq!(h.tcp.connection_count(), 0, "given up in the end");
        assert_eq!(h.tcp.poll_at(), None);
    }
}

#[test]
fn duplicate_acks_before_our_syn_is_acknowledged_do_not_retransmit_data() {
    // Fast retransmit in FIN-WAIT-1 with the SYN unacknowledged: the first
    // unacknowledged octet is the SYN, not data.
    let mut h = Host::new(IP_A, 1303);
    let (id, iss) = simultaneous_syn_received(&mut h, 4000);
    h.tcp.shutdown(T0, &mut h.net, id, Shutdown::Write).unwrap();
    h.out();
    for _ in 0..5 {
        let _ = h.deliver(T0, &packet(IP_B, IP_A, &seg(6000, 5000, 301, iss, "A", 4000), b""));
    }
    assert!(h.out().iter().all(|s| s.data.is_empty()));
    h.deliver(T0, &packet(IP_B, IP_A, &seg(6000, 5000, 301, iss.wrapping_add(2), "A", 4000), b"")).unwrap();
    assert_eq!(h.state(id), State::FinWait2);
}

/// We close first and the peer's FIN follows: our side in TIME-WAIT.
fn in_time_wait(seed: u64) -> (Host, ConnId, Peer) {
    let mut h = Host::new(IP_A, seed);
    let (_l, id, mut peer) = passive_established(&mut h);
    h.tcp.close(T0 + secs(1), &mut h.net, id).unwrap();
    h.out();
    peer.ack += 1;
    peer.send(&mut h, T0 + secs(1), "FA", b"").unwrap();
    h.out();
    assert_eq!(h.tcp.sockets().filter(|(_, i)| i.state == State::TimeWait).count(), 1);
    (h, id, peer)
}

fn time_waits(h: &Host) -> usize {
    h.tcp.sockets().filter(|(_, i)| i.state == State::TimeWait).count()
}

#[test]
fn time_wait_drops_an_in_window_rst_that_is_not_exact_silently() {
    // Issue 13, item 8 (RFC 1337; RFC 5961 section 3): a challenge ACK here
    // drew an exact RST from the closed peer, which ended TIME-WAIT.
    let (mut h, _id, peer) = in_time_wait(1304);
    let r = peer.raw(&mut h, T0 + secs(2), peer.seq + 100, 0, "R", b"");
    assert_eq!(r, Err(DropReason::TcpNotAcceptable));
    h.nothing();
    assert_eq!(time_waits(&h), 1);
    assert_eq!(h.net.counters.challenge_acks, 0);
}

#[test]
fn challenge_acks_are_limited_per_connection_not_shared() {
    // Issue 13, item 6 (CVE-2016-5696's class): spoofed segments on one
    // connection exhausted the one stack-wide budget, so that the absence of a
    // challenge ACK on another told an attacker it existed.
    let mut h = Host::new(IP_A, 1305);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    let mut peers = Vec::new();
    for port in [4000u16, 4001] {
        let mut p = Peer { port, our_port: 80, seq: 7000, ack: 0, wnd: 65535 };
        p.send(&mut h, T0, "S", b"").unwrap();
        p.ack = h.one().seq.wrapping_add(1);
        p.send(&mut h, T0, "A", b"").unwrap();
        h.tcp.accept(l).unwrap().unwrap();
        peers.push(p);
    }
    let t = T0 + secs(1);
    for _ in 0..200 {
        let _ = peers[0].raw(&mut h, t, peers[0].seq + 10, 0, "S", b"");
    }
    assert_eq!(h.out().len(), 1, "one challenge ACK per 500 ms on the flooded connection");
    let _ = peers[1].raw(&mut h, t, peers[1].seq + 10, 0, "S", b"");
    let ack = h.one();
    assert_eq!((ack.dst_port, ack.flags().as_str()), (4001, "."), "the other connection still answers");
    let _ = peers[0].raw(&mut h, t + ms(500), peers[0].seq + 10, 0, "S", b"");
    assert_eq!(h.one().dst_port, 4000, "and the flooded one again 500 ms later");
}

/// A SYN from `ip:port` with sequence number `isn`, offering MSS 1460 and a window scale.
fn syn_from(ip: Ipv4Addr, port: u16, isn: u32) -> Packet {
    let mut s = seg(port, 80, isn, 0, "S", 65535);
    s.mss = Some(1460);
    s.wscale = Some(7);
    packet(ip, IP_A, &s, b"")
}

#[test]
fn a_syn_flood_leaves_new_connections_accepted_through_cookies() {
    // Issue 13, item 2: spoofed SYNs filled the backlog and every SYN after
    // them was dropped for minutes.
    let mut h = Host::new(IP_A, 1306);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1306);
    for i in 0..1000u32 {
        let spoofed = Ipv4Addr::from(0x0a00_0000 | rng.random_range(3..0xffff));
        h.deliver(T0 + ms(i as u64 / 10), &syn_from(spoofed, 1024 + i as u16, rng.random())).unwrap();
    }
    let answers = h.out();
    assert_eq!(answers.len(), 1000, "every SYN answered once");
    assert!(answers.iter().all(|s| s.flags() == "S."));
    assert_eq!(h.tcp.connection_count(), 8, "state for the SYN queue only");
    assert_eq!(h.net.counters.syn_cookies_sent, 992);
    // A real client during the flood: its SYN gets a cookie, its ACK (with
    // data) makes the connection.
    let t = T0 + ms(150);
    h.deliver(t, &syn_from(IP_B, 4000, 70_000)).unwrap();
    let sa = h.one();
    assert_eq!((sa.flags().as_str(), sa.ack, sa.mss, sa.wscale), ("S.", Some(70_001), Some(1460), None));
    let ack = seg(4000, 80, 70_001, sa.seq.wrapping_add(1), "PA", 65535);
    h.deliver(t + ms(1), &packet(IP_B, IP_A, &ack, b"hello")).unwrap();
    let (id, remote) = h.tcp.accept(l).unwrap().expect("made from the cookie");
    assert_eq!(remote, addr(IP_B, 4000));
    assert_eq!(h.state(id), State::Established);
    assert_eq!(h.recv_all(t + ms(1), id).unwrap(), b"hello");
    let info = h.tcp.info(id).unwrap();
    assert_eq!((info.snd_mss, info.snd_wscale, info.rcv_wscale), (1460, 0, 0));
    assert_eq!(h.net.counters.syn_cookies_received, 1);
    // A forged ACK is not a cookie: reset, as without cookies.
    let forged = seg(4001, 80, 5, 12345, "A", 65535);
    assert_eq!(h.deliver(t, &packet(IP_B, IP_A, &forged, b"")), Err(DropReason::TcpNoSocket));
    assert_eq!(h.one().flags(), "R");
    assert_eq!(h.net.counters.syn_cookies_failed, 1);
    // The spoofed SYN-RECEIVED entries are given up after five SYN,ACK
    // retransmissions (63 s); the SYN queue is free again.
    run_timers(&mut h, t, secs(64));
    assert_eq!(h.tcp.connection_count(), 1);
    h.deliver(t + secs(64), &syn_from(IP_B, 4002, 9)).unwrap();
    h.out();
    assert_eq!(h.tcp.connection_count(), 2, "queued again, no cookie");
}

#[test]
fn a_full_accept_queue_drops_syns_and_cookie_acks() {
    let mut h = Host::new(IP_A, 1307);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 1).unwrap();
    // One SYN queued, one answered with a cookie.
    h.deliver(T0, &syn_from(IP_B, 4000, 100)).unwrap();
    h.deliver(T0, &syn_from(IP_B, 4001, 200)).unwrap();
    let out = h.out();
    assert_eq!(h.net.counters.syn_cookies_sent, 1);
    for s in &out {
        let ack = seg(s.dst_port, 80, s.ack.unwrap(), s.seq.wrapping_add(1), "A", 65535);
        let _ = h.deliver(T0, &packet(IP_B, IP_A, &ack, b""));
    }
    // The first completed; the cookie's ACK found the accept queue full.
    assert_eq!(h.drops, [DropReason::TcpBacklogFull]);
    assert_eq!(h.tcp.info(l).unwrap().recv_queue, 1);
    assert_eq!(h.deliver(T0, &syn_from(IP_B, 4002, 300)), Err(DropReason::TcpBacklogFull));
    h.nothing();
}

/// One HTTP/1.0-like exchange on `port` where we close first: ends in TIME-WAIT
/// on our side (Err: a segment of it was dropped).
fn served_and_closed(h: &mut Host, l: ConnId, port: u16, now: Instant) -> Result<(), DropReason> {
    let mut p = Peer { port, our_port: 80, seq: 1000, ack: 0, wnd: 65535 };
    p.send(h, now, "S", b"")?;
    let sa = h.out().pop().filter(|s| s.syn).ok_or(DropReason::TcpOther)?;
    p.ack = sa.seq.wrapping_add(1);
    p.send(h, now, "PA", b"GET / HTTP/1.0\r\n\r\n")?;
    let (id, _) = h.tcp.accept(l).unwrap().unwrap();
    h.recv_all(now, id).unwrap();
    h.send(now, id, b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
    h.tcp.close(now, &mut h.net, id).unwrap();
    p.ack = p.ack.wrapping_add(19 + 1);
    p.send(h, now, "FA", b"")?;
    h.out();
    Ok(())
}

#[test]
fn time_wait_is_outside_the_connection_limit_and_bounded_apart() {
    // Issue 13, item 3: TIME-WAITs counted against max_connections, so that a
    // busy HTTP/1.0 server refused every SYN on every port.
    let cfg = TcpConfig { max_connections: 4, max_tw_buckets: 10, syn_cookies: false, ..TcpConfig::default() };
    let mut h = Host::with_config(IP_A, 1308, cfg);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    for i in 0..10u16 {
        served_and_closed(&mut h, l, 5000 + i, T0 + ms(i as u64)).unwrap();
    }
    assert_eq!(h.tcp.time_wait_count(), 10);
    assert_eq!(time_waits(&h), 10);
    // Beyond max_tw_buckets a connection does not wait: it is closed at the
    // next timer run (at once), the others keep their 2*MSL.
    let t = T0 + ms(20);
    served_and_closed(&mut h, l, 6000, t).unwrap();
    assert_eq!(h.tcp.poll_at(), Some(t));
    h.poll(t);
    assert_eq!(h.tcp.time_wait_count(), 10);
    assert_eq!(h.tcp.connection_count(), 10);
    // New connections are still accepted.
    h.deliver(t, &syn_from(IP_B, 7000, 1)).unwrap();
    assert_eq!(h.one().flags(), "S.");
}

/// "Fragmentation needed" (or another unreachable `code`) quoting `quoted_len`
/// bytes of a segment of `id` with sequence number `seq`.
fn icmp(h: &Host, id: ConnId, code: u8, mtu: u16, seq: u32, quoted_len: usize) -> crate::icmp::IcmpError {
    let local = h.tcp.local_addr(id).unwrap();
    let remote = h.tcp.peer_addr(id).unwrap();
    let mut quoted = [0u8; 8];
    quoted[0..2].copy_from_slice(&local.port().to_be_bytes());
    quoted[2..4].copy_from_slice(&remote.port().to_be_bytes());
    quoted[4..8].copy_from_slice(&seq.to_be_bytes());
    crate::icmp::IcmpError {
        kind: crate::icmp::IcmpErrorKind::DestUnreachable { code, next_hop_mtu: mtu },
        reporter: Ipv4Addr::new(10, 0, 0, 254),
        src: *local.ip(),
        dst: *remote.ip(),
        protocol: etherparse::IpNumber::TCP,
        quoted,
        quoted_len,
    }
}

#[test]
fn forged_fragmentation_needed_cannot_shrink_a_connection_for_good() {
    // Issue 13, item 5: a quote of the ports alone was accepted, an MTU of 68
    // gave an MSS of 64, and it never came back.
    let mut h = Host::new(IP_A, 1309);
    let (id, peer) = active_established(&mut h, Some(1460), 65535);
    h.send(T0, id, &[7; 3000]).unwrap();
    h.out();
    let una = peer.ack;
    let mss = |h: &Host| h.tcp.info(id).unwrap().snd_mss;
    let e = icmp(&h, id, 4, 68, una, 4);
    h.tcp.handle_icmp_error(T0, &mut h.net, &e);
    assert_eq!(mss(&h), 1460, "4 quoted bytes carry no sequence number: ignored");
    let e = icmp(&h, id, 4, 68, una.wrapping_add(100_000), 8);
    h.tcp.handle_icmp_error(T0, &mut h.net, &e);
    assert_eq!(mss(&h), 1460, "a sequence number outside [SND.UNA, SND.NXT]: ignored");
    let e = icmp(&h, id, 4, 68, una, 8);
    h.tcp.handle_icmp_error(T0, &mut h.net, &e);
    assert_eq!(mss(&h), 512, "clamped to a path MTU of 552, as Linux");
    h.out();
    // Ten minutes on, the learned path MTU expires.
    let later = T0 + secs(601);
    peer.raw(&mut h, later, peer.seq, una.wrapping_add(3000), "A", b"").unwrap();
    h.poll(later);
    assert_eq!(mss(&h), 1460);
}

#[test]
fn hard_icmp_errors_while_opening_need_the_sequence_number() {
    // Issue 13, item 5: port unreachable aborted SYN-SENT without any check.
    let mut h = Host::new(IP_A, 1310);
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    let syn = h.one();
    for (seq, len) in [(syn.seq, 4), (syn.seq.wrapping_add(5000), 8)] {
        let e = icmp(&h, id, 3, 0, seq, len);
        h.tcp.handle_icmp_error(T0, &mut h.net, &e);
        assert_eq!(h.state(id), State::SynSent);
    }
    let e = icmp(&h, id, 3, 0, syn.seq, 8);
    h.tcp.handle_icmp_error(T0, &mut h.net, &e);
    assert_eq!(h.state(id), State::Closed);
}

#[test]
fn lowering_so_rcvbuf_after_connect_never_offers_more_than_the_buffer() {
    // Issue 13, item 12: lowered between connect and the SYN,ACK, the buffer
    // held 256 bytes under a 65,535-byte window.
    let mut h = Host::new(IP_A, 1311);
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    let syn = h.one();
    h.tcp.set_recv_buffer(T0, &mut h.net, id, 256).unwrap();
    let mut s = seg(80, syn.src_port, 5000, syn.seq.wrapping_add(1), "SA", 65535);
    s.wscale = Some(0);
    h.deliver(T0, &packet(IP_B, IP_A, &s, b"")).unwrap();
    let ack = h.one();
    let info = h.tcp.info(id).unwrap();
    let offered = (ack.wnd as usize) << info.rcv_wscale;
    let capacity = h.tcp.options(id).unwrap().recv_buffer;
    assert!(offered <= capacity, "offered {offered} over a buffer of {capacity}");
    // And what it offered, it takes.
    let data = vec![1u8; offered.min(1460)];
    h.deliver(T0, &packet(IP_B, IP_A, &seg(80, syn.src_port, 5001, syn.seq.wrapping_add(1), "PA", 65535), &data))
        .unwrap();
    assert_eq!(h.recv_all(T0, id).unwrap().len(), data.len());
}

#[test]
fn buffers_give_their_storage_back_once_drained_and_idle() {
    // Issue 13: freed memory goes back, not kept at its peak. A burst of
    // 256 KiB each way grows both sides' send buffers and receive rings to
    // 64 KiB; once everything is read and acknowledged and a second has
    // passed without either buffer emptying again, each keeps 4 KiB at most.
    let mut w = Wire::new(1913);
    let (c, _l, s) = w.connect();
    w.run_for(secs(2));
    let idle = (w.a.tcp.heap_bytes(), w.b.tcp.heap_bytes());
    let data = pattern(256 * 1024, 3);
    let (mut sent, mut got) = ([0usize; 2], [0usize; 2]);
    let (mut peak, mut drained_at) = ((0, 0), None);
    w.run_until(secs(60), |w| {
        for (i, (from, to)) in [(c, s), (s, c)].into_iter().enumerate() {
            let (tx, rx) = if i == 0 { (&mut w.a, &mut w.b) } else { (&mut w.b, &mut w.a) };
            if sent[i] < data.len() {
                sent[i] += tx.send(w.now, from, &data[sent[i]..]).unwrap_or(0);
            }
            got[i] += rx.recv_all(w.now, to).unwrap().len();
        }
        peak = (peak.0.max(w.a.tcp.heap_bytes()), peak.1.max(w.b.tcp.heap_bytes()));
        let done = got == [data.len(); 2]
            && [(&w.a, c), (&w.b, s)].iter().all(|(h, id)| h.tcp.info(*id).unwrap().send_queue == 0);
        if done && drained_at.is_none() {
            drained_at = Some(w.now);
        }
        done
    });
    assert_eq!(got, [data.len(); 2], "the bursts arrived");
    println!("heap: idle {idle:?}, peak {peak:?}");
    assert!(peak.0 > idle.0 + 2 * 60_000 && peak.1 > idle.1 + 2 * 60_000, "both buffers grew: {peak:?} over {idle:?}");
    // Not at once: a buffer that empties may fill again in a moment.
    w.run_for(ms(500));
    let soon = (w.a.tcp.heap_bytes(), w.b.tcp.heap_bytes());
    assert!(soon.0 > idle.0 + 60_000 && soon.1 > idle.1 + 60_000, "kept for now: {soon:?}");
    w.run_for(secs(2));
    let after = (w.a.tcp.heap_bytes(), w.b.tcp.heap_bytes());
    println!("heap after draining and {} ms idle: {after:?}", (w.now - drained_at.unwrap()).as_millis());
    for (after, idle) in [(after.0, idle.0), (after.1, idle.1)] {
        assert!(after <= idle + 2 * 4096 + 1024, "{after} bytes held after the burst (idle {idle})");
    }
    // The buffers still work at full size.
    w.a.send(w.now, c, &data[..100_000]).unwrap();
    let mut back = Vec::new();
    assert!(w.run_until(secs(30), |w| {
        back.extend(w.b.recv_all(w.now, s).unwrap());
        back.len() == 64 * 1024
    }));
}
