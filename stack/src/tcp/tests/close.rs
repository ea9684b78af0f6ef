//! Closing: RFC 9293 section 3.6 (Figures 12 and 13), TIME-WAIT, orphans, SHLD-3, linger.

use super::*;

#[test]
fn active_close_fin_wait_1_2_time_wait_closed() {
    let mut h = Host::new(IP_A, 20);
    let (id, mut peer) = active_established(&mut h, Some(1460), 65535);
    h.tcp.close(T0 + secs(1), &mut h.net, id).unwrap();
    let fin = h.one();
    assert_eq!((fin.flags().as_str(), fin.seq), ("F.", peer.ack));
    assert_eq!(h.tcp.state(id), Err(TcpError::InvalidState), "the handle is released");
    peer.ack += 1;
    // ACK of FIN: FIN-WAIT-2.
    peer.send(&mut h, T0 + secs(1), "A", b"").unwrap();
    h.nothing();
    // Peer's FIN: TIME-WAIT, ACKed.
    peer.send(&mut h, T0 + secs(2), "FA", b"").unwrap();
    let ack = h.one();
    assert_eq!((ack.flags().as_str(), ack.ack), (".", Some(peer.seq)));
    let info = h.tcp.sockets().next().unwrap().1;
    assert_eq!(info.state, State::TimeWait);
    assert_eq!(info.timers.close, Some(T0 + secs(2) + secs(60)), "2*MSL = 60 s");
    assert_eq!(h.tcp.poll_at(), Some(T0 + secs(62)));
    h.poll(T0 + secs(61));
    assert_eq!(h.tcp.connection_count(), 1);
    h.poll(T0 + secs(62));
    assert_eq!(h.tcp.connection_count(), 0);
    assert_eq!(h.tcp.poll_at(), None);
    assert_eq!(
        h.transitions(id),
        [
            "CLOSED>SYN-SENT (active OPEN / snd SYN)",
            "SYN-SENT>ESTABLISHED (rcv SYN,ACK / snd ACK)",
            "ESTABLISHED>FIN-WAIT-1 (CLOSE / snd FIN)",
            "FIN-WAIT-1>FIN-WAIT-2 (rcv ACK of FIN)",
            "FIN-WAIT-2>TIME-WAIT (rcv FIN / snd ACK)",
            "TIME-WAIT>CLOSED (timeout=2MSL)",
        ]
    );
}

#[test]
fn fin_ack_together_goes_from_fin_wait_1_to_time_wait() {
    let mut h = Host::new(IP_A, 21);
    let (id, mut peer) = active_established(&mut h, Some(1460), 65535);
    h.tcp.shutdown(T0, &mut h.net, id, Shutdown::Write).unwrap();
    assert_eq!(h.one().flags(), "F.");
    peer.ack += 1;
    peer.send(&mut h, T0, "FA", b"").unwrap();
    assert_eq!(h.state(id), State::TimeWait);
    // RFC 9293 section 3.10.7.4: the fifth step (ACK) moves to FIN-WAIT-2 and
    // "continues processing in that state"; the eighth (FIN) to TIME-WAIT.
    assert_eq!(
        h.transitions(id)[3..],
        ["FIN-WAIT-1>FIN-WAIT-2 (rcv ACK of FIN)", "FIN-WAIT-2>TIME-WAIT (rcv FIN / snd ACK)"]
    );
}

#[test]
fn passive_close_close_wait_last_ack_closed() {
    let mut h = Host::new(IP_A, 22);
    let (_l, id, mut peer) = passive_established(&mut h);
    peer.send(&mut h, T0 + secs(1), "FA", b"").unwrap();
    assert_eq!(h.one().ack, Some(peer.seq), "FIN acknowledged at once");
    assert_eq!(h.state(id), State::CloseWait);
    let r = h.tcp.readiness(id).unwrap();
    assert!(r.readable && r.writable && !r.hangup);
    assert_eq!(h.recv_all(T0, id).unwrap(), b"", "EOF");
    let mut buf = [0u8; 10];
    assert_eq!(h.tcp.recv(T0, &mut h.net, id, &mut buf, false), Ok(0));
    // We may still send in CLOSE-WAIT.
    assert_eq!(h.send(T0 + secs(1), id, b"bye"), Ok(3));
    assert_eq!(h.one().data, b"bye");
    peer.ack += 3;
    h.tcp.close(T0 + secs(2), &mut h.net, id).unwrap();
    let fin = h.one();
    assert_eq!((fin.flags().as_str(), fin.seq), ("F.", peer.ack));
    peer.ack += 1;
    peer.send(&mut h, T0 + secs(2), "A", b"").unwrap();
    assert_eq!(h.tcp.connection_count(), 0, "LAST-ACK to CLOSED deletes the TCB");
    let t = h.transitions(id);
    assert_eq!(
        t[2..],
        [
            "ESTABLISHED>CLOSE-WAIT (rcv FIN / snd ACK)",
            "CLOSE-WAIT>LAST-ACK (CLOSE / snd FIN)",
            "LAST-ACK>CLOSED (rcv ACK of FIN)"
        ]
    );
}

#[test]
fn simultaneous_close_through_closing() {
    let mut h = Host::new(IP_A, 23);
    let (id, mut peer) = active_established(&mut h, Some(1460), 65535);
    h.tcp.shutdown(T0, &mut h.net, id, Shutdown::Write).unwrap();
    let fin = h.one();
    // The peer's FIN crosses ours: it does not acknowledge our FIN.
    peer.send(&mut h, T0 + ms(1), "FA", b"").unwrap();
    assert_eq!(h.state(id), State::Closing);
    assert_eq!(h.one().ack, Some(peer.seq));
    // Then the peer acknowledges our FIN.
    peer.ack = fin.seq + 1;
    peer.send(&mut h, T0 + ms(2), "A", b"").unwrap();
    assert_eq!(h.state(id), State::TimeWait);
    let t = h.transitions(id);
    assert_eq!(
        t[2..],
        [
            "ESTABLISHED>FIN-WAIT-1 (CLOSE / snd FIN)",
            "FIN-WAIT-1>CLOSING (rcv FIN / snd ACK)",
            "CLOSING>TIME-WAIT (rcv ACK of FIN)"
        ]
    );
}

#[test]
fn simultaneous_close_between_two_stacks() {
    let mut w = Wire::new(24);
    let (a, _l, b) = w.connect();
    w.a.tcp.shutdown(w.now, &mut w.a.net, a, Shutdown::Write).unwrap();
    w.b.tcp.shutdown(w.now, &mut w.b.net, b, Shutdown::Write).unwrap();
    assert!(w.run_until(secs(5), |w| w.a.state(a) == State::TimeWait && w.b.state(b) == State::TimeWait));
    assert!(w.a.transitions(a).contains(&"FIN-WAIT-1>CLOSING (rcv FIN / snd ACK)".to_string()));
    assert!(w.b.transitions(b).contains(&"CLOSING>TIME-WAIT (rcv ACK of FIN)".to_string()));
    w.run_for(secs(61));
    assert_eq!(w.a.state(a), State::Closed);
    assert_eq!(w.b.state(b), State::Closed);
}

#[test]
fn time_wait_reacks_retransmitted_fin_and_restarts_2msl() {
    let mut h = Host::new(IP_A, 25);
    let (id, mut peer) = active_established(&mut h, Some(1460), 65535);
    h.tcp.shutdown(T0, &mut h.net, id, Shutdown::Write).unwrap();
    h.out();
    peer.ack += 1;
    peer.send(&mut h, T0, "FA", b"").unwrap();
    assert_eq!(h.state(id), State::TimeWait);
    h.out();
    // The peer did not get our ACK and retransmits its FIN 30 s later.
    let fin_seq = peer.seq - 1;
    assert_eq!(peer.raw(&mut h, T0 + secs(30), fin_seq, peer.ack, "FA", b""), Err(DropReason::TcpNotAcceptable));
    let ack = h.one();
    assert_eq!((ack.flags().as_str(), ack.ack), (".", Some(peer.seq)));
    assert_eq!(h.tcp.info(id).unwrap().timers.close, Some(T0 + secs(90)), "2MSL restarted");
    h.poll(T0 + secs(60));
    assert_eq!(h.state(id), State::TimeWait);
    h.poll(T0 + secs(90));
    assert_eq!(h.state(id), State::Closed);
    h.nothing();
}

#[test]
fn time_wait_holds_the_port_without_reuse_addr() {
    let mut h = Host::new(IP_A, 26);
    let id = h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 7000)), addr(IP_B, 80)).unwrap();
    let syn = h.one();
    let mut peer = Peer { port: 80, our_port: 7000, seq: 100, ack: syn.seq + 1, wnd: 1000 };
    peer.send(&mut h, T0, "SA", b"").unwrap();
    h.tcp.close(T0, &mut h.net, id).unwrap();
    h.out();
    peer.ack += 1;
    peer.send(&mut h, T0, "FA", b"").unwrap();
    assert_eq!(h.tcp.check_bind(&h.net, addr(IP_A, 7000), false), Err(TcpError::AddrInUse));
    assert_eq!(h.tcp.check_bind(&h.net, addr(IP_A, 7000), true), Ok(()));
    assert_eq!(h.tcp.listen(&mut h.net, addr(IP_A, 7000), 1), Err(TcpError::AddrInUse));
    assert_eq!(h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 7000)), addr(IP_B, 80)), Err(TcpError::AddrInUse));
    let opts = SocketOptions { reuse_addr: true, ..SocketOptions::default() };
    let again = h.tcp.connect_with(T0 + secs(1), &mut h.net, Some(addr(IP_A, 7000)), addr(IP_B, 80), opts).unwrap();
    assert_eq!(h.state(again), State::SynSent);
    let syn2 = h.out().into_iter().find(|s| s.syn).unwrap();
    assert!(Seq(syn2.seq) > Seq(syn.seq), "the clock-driven ISN moved forward");
    assert_eq!(h.tcp.connection_count(), 1, "the TIME-WAIT connection is gone");
}

#[test]
fn a_listener_with_reuse_addr_restarts_while_its_connections_are_closing() {
    // A server with SO_REUSEADDR closes its listener and its connection (which
    // inherited the option); the peer does not close, so the connection sits
    // in FIN-WAIT-2. Restarting with SO_REUSEADDR works, as on Linux; without
    // it, or against a connection without the option, the port is taken.
    let mut h = Host::new(IP_A, 38);
    let opts = SocketOptions { reuse_addr: true, ..SocketOptions::default() };
    let l = h.tcp.listen_with(&mut h.net, addr(IP_A, 80), 8, opts.clone()).unwrap();
    let mut peer = Peer { port: 4000, our_port: 80, seq: 7000, ack: 0, wnd: 65535 };
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, peer.seq, 0, "S", 65535), b"")).unwrap();
    peer.seq += 1;
    peer.ack = h.one().seq.wrapping_add(1);
    peer.send(&mut h, T0, "A", b"").unwrap();
    let (id, _) = h.tcp.accept(l).unwrap().unwrap();
    assert!(h.tcp.options(id).unwrap().reuse_addr, "inherited");
    h.tcp.close(T0, &mut h.net, l).unwrap();
    h.tcp.close(T0, &mut h.net, id).unwrap();
    h.out();
    peer.ack += 1;
    peer.send(&mut h, T0, "A", b"").unwrap();
    let states: Vec<State> = h.tcp.sockets().map(|(_, i)| i.state).collect();
    assert_eq!(states, [State::FinWait2]);
    assert_eq!(h.tcp.check_bind(&h.net, addr(IP_A, 80), false), Err(TcpError::AddrInUse));
    assert_eq!(h.tcp.check_bind(&h.net, addr(IP_A, 80), true), Ok(()));
    assert!(h.tcp.listen_with(&mut h.net, addr(IP_A, 80), 8, opts).is_ok());
    // A connection without the option still holds its port against everyone.
    let plain = h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 7000)), addr(IP_B, 80)).unwrap();
    assert_eq!(h.state(plain), State::SynSent);
    assert_eq!(h.tcp.check_bind(&h.net, addr(IP_A, 7000), true), Err(TcpError::AddrInUse));
}

#[test]
fn new_syn_reopens_time_wait() {
    let mut h = Host::new(IP_A, 27);
    let (_l, id, mut peer) = passive_established(&mut h);
    // We close first: TIME-WAIT is on our side.
    h.tcp.close(T0 + secs(1), &mut h.net, id).unwrap();
    h.out();
    peer.ack += 1;
    peer.send(&mut h, T0 + secs(1), "FA", b"").unwrap();
    h.out();
    assert_eq!(h.tcp.sockets().filter(|(_, i)| i.state == State::TimeWait).count(), 1);
    // An old duplicate SYN (below RCV.NXT) gets a challenge ACK, not a new connection.
    assert_eq!(peer.raw(&mut h, T0 + secs(2), 7000, 0, "S", b""), Err(DropReason::TcpNotAcceptable));
    assert_eq!(h.one().flags(), ".");
    // A new SYN beyond the old sequence space opens a new connection.
    peer.raw(&mut h, T0 + secs(3), peer.seq + 100_000, 0, "S", b"").unwrap();
    let sa = h.one();
    assert_eq!(sa.flags(), "S.");
    assert_eq!(sa.ack, Some(peer.seq + 100_001));
    assert_eq!(h.tcp.sockets().filter(|(_, i)| i.state == State::SynReceived).count(), 1);
    assert_eq!(h.tcp.sockets().filter(|(_, i)| i.state == State::TimeWait).count(), 0);
}

#[test]
fn orphaned_fin_wait_2_times_out() {
    let mut h = Host::new(IP_A, 28);
    let (id, mut peer) = active_established(&mut h, Some(1460), 65535);
    h.tcp.close(T0 + secs(1), &mut h.net, id).unwrap();
    h.out();
    peer.ack += 1;
    peer.send(&mut h, T0 + secs(1), "A", b"").unwrap();
    let info = h.tcp.sockets().next().unwrap().1;
    assert_eq!(info.state, State::FinWait2);
    assert_eq!(info.timers.close, Some(T0 + secs(61)));
    h.poll(T0 + secs(61));
    assert_eq!(h.tcp.connection_count(), 0);
    assert_eq!(h.transitions(id).last().unwrap(), "FIN-WAIT-2>CLOSED (timeout=FIN-WAIT-2)");
}

#[test]
fn half_closed_fin_wait_2_does_not_time_out_and_still_receives() {
    let mut h = Host::new(IP_A, 29);
    let (id, mut peer) = active_established(&mut h, Some(1460), 65535);
    h.tcp.shutdown(T0, &mut h.net, id, Shutdown::Write).unwrap();
    h.out();
    assert_eq!(h.send(T0, id, b"x"), Err(TcpError::BrokenPipe));
    peer.ack += 1;
    peer.send(&mut h, T0, "A", b"").unwrap();
    assert_eq!(h.state(id), State::FinWait2);
    assert_eq!(h.tcp.info(id).unwrap().timers.close, None);
    peer.send(&mut h, T0 + secs(600), "PA", b"still talking").unwrap();
    assert_eq!(h.recv_all(T0 + secs(600), id).unwrap(), b"still talking");
}

#[test]
fn close_with_unread_data_sends_reset() {
    // RFC 9293 SHLD-3 (and Linux): unread data means the peer's data is lost: say so.
    let mut h = Host::new(IP_A, 30);
    let (_l, id, mut peer) = passive_established(&mut h);
    peer.send(&mut h, T0 + ms(5), "PA", b"unread").unwrap();
    h.tcp.close(T0 + ms(6), &mut h.net, id).unwrap();
    let rst = h.one();
    assert_eq!(rst.flags(), "R.");
    assert_eq!(rst.ack, Some(peer.seq));
    assert_eq!(h.tcp.connection_count(), 0);
    assert_eq!(h.net.counters.tx_resets, 1);
    assert_eq!(h.net.counters.estab_resets, 1);
}

#[test]
fn data_after_close_is_answered_with_reset() {
    let mut h = Host::new(IP_A, 31);
    let (id, mut peer) = active_established(&mut h, Some(1460), 65535);
    h.tcp.close(T0, &mut h.net, id).unwrap();
    h.out();
    peer.ack += 1;
    peer.send(&mut h, T0, "A", b"").unwrap();
    peer.send(&mut h, T0 + ms(1), "PA", b"late").unwrap();
    let rst = h.one();
    assert!(rst.rst);
    assert_eq!(h.tcp.connection_count(), 0);
}

#[test]
fn linger_zero_aborts() {
    let mut h = Host::new(IP_A, 32);
    let (id, _peer) = active_established(&mut h, Some(1460), 65535);
    h.tcp.set_linger(T0, &mut h.net, id, Some(Duration::ZERO)).unwrap();
    h.tcp.close(T0, &mut h.net, id).unwrap();
    assert_eq!(h.one().flags(), "R.");
    assert_eq!(h.tcp.connection_count(), 0);
    assert!(h.transitions(id).last().unwrap().contains("ESTABLISHED>CLOSED (ABORT / snd RST)"));
}

#[test]
fn abort_in_each_state() {
    let mut h = Host::new(IP_A, 33);
    // SYN-SENT: no reset, just gone.
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    h.out();
    h.tcp.abort(T0, &mut h.net, id).unwrap();
    h.nothing();
    assert_eq!(h.tcp.connection_count(), 0);
    // ESTABLISHED: reset with SEQ=SND.NXT.
    let (id, peer) = active_established(&mut h, Some(1460), 65535);
    h.tcp.abort(T0, &mut h.net, id).unwrap();
    let rst = h.one();
    assert_eq!((rst.flags().as_str(), rst.seq), ("R.", peer.ack));
    assert_eq!(h.tcp.abort(T0, &mut h.net, id), Err(TcpError::InvalidState), "handle gone");
}

#[test]
fn close_in_syn_sent_deletes() {
    let mut h = Host::new(IP_A, 34);
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    h.out();
    h.tcp.close(T0, &mut h.net, id).unwrap();
    h.nothing();
    assert_eq!(h.tcp.connection_count(), 0);
    assert_eq!(h.tcp.poll_at(), None);
    assert_eq!(h.transitions(id).last().unwrap(), "SYN-SENT>CLOSED (CLOSE)");
}

#[test]
fn closing_listener_resets_unaccepted_connections() {
    let mut h = Host::new(IP_A, 35);
    let (l, id, _peer) = passive_established(&mut h);
    // A second one, waiting in the accept queue, and a third in SYN-RECEIVED.
    let mut p2 = Peer { port: 4001, our_port: 80, seq: 1, ack: 0, wnd: 1000 };
    p2.send(&mut h, T0, "S", b"").unwrap();
    p2.ack = h.one().seq + 1;
    p2.send(&mut h, T0, "A", b"").unwrap();
    let mut p3 = Peer { port: 4002, our_port: 80, seq: 1, ack: 0, wnd: 1000 };
    p3.send(&mut h, T0, "S", b"").unwrap();
    h.out();
    h.tcp.close(T0, &mut h.net, l).unwrap();
    let resets = h.out();
    assert_eq!(resets.len(), 2);
    assert!(resets.iter().all(|s| s.rst));
    assert_eq!(h.tcp.connection_count(), 1, "the accepted one stays");
    assert_eq!(h.state(id), State::Established);
    // The port is free of listeners: a SYN now gets a reset.
    assert_eq!(h.deliver(T0, &packet(IP_B, IP_A, &seg(4003, 80, 1, 0, "S", 1000), b"")), Err(DropReason::TcpNoSocket));
    assert_eq!(h.one().flags(), "R.");
}

#[test]
fn close_from_syn_received_via_simultaneous_open_sends_fin() {
    let mut h = Host::new(IP_A, 36);
    let id = h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 5000)), addr(IP_B, 6000)).unwrap();
    let syn = h.one();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(6000, 5000, 300, 0, "S", 4000), b"")).unwrap();
    h.out();
    assert_eq!(h.state(id), State::SynReceived);
    h.tcp.shutdown(T0, &mut h.net, id, Shutdown::Write).unwrap();
    let fin = h.one();
    assert_eq!((fin.flags().as_str(), fin.seq), ("F.", syn.seq + 1));
    assert_eq!(h.state(id), State::FinWait1);
    h.deliver(T0, &packet(IP_B, IP_A, &seg(6000, 5000, 301, syn.seq + 2, "A", 4000), b"")).unwrap();
    assert_eq!(h.state(id), State::FinWait2);
}

#[test]
fn listener_open_and_close_are_traced() {
    let mut h = Host::new(IP_A, 37);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 0), 4).unwrap();
    let port = h.tcp.local_addr(l).unwrap().port();
    assert!(EPHEMERAL_PORTS.contains(&port), "port 0: an ephemeral port");
    assert_eq!(h.tcp.listen(&mut h.net, addr(IP_A, port), 4), Err(TcpError::AddrInUse));
    h.tcp.close(T0, &mut h.net, l).unwrap();
    assert_eq!(h.transitions(l), ["CLOSED>LISTEN (passive OPEN)", "LISTEN>CLOSED (CLOSE)"]);
    assert_eq!(h.tcp.state(l), Err(TcpError::InvalidState));
    assert!(h.tcp.listen(&mut h.net, addr(IP_A, port), 4).is_ok(), "the port is free again");
}

#[test]
fn the_port_users_index_follows_every_change_of_kind_and_empties() {
    // `port_users` counts a port's users by kind (RFC 9293 leaves binding to
    // the host; the rule is Linux's SO_REUSEADDR one): each change of kind
    // (reuse_addr set or cleared on a connection, TIME-WAIT entered, its
    // record compacted and expired) moves the counts, checked against a scan
    // of the table at every bind check (`port_users` does so in tests).
    let mut h = Host::new(IP_A, 39);
    let port = |h: &Host, p: u16| (h.tcp.port_users(p), h.tcp.port_users_by_scan(p));
    let id = h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 7000)), addr(IP_B, 80)).unwrap();
    let syn = h.one();
    assert_eq!(port(&h, 7000), ((true, false), (true, false)));
    h.tcp.set_reuse_addr(T0, &mut h.net, id, true).unwrap();
    assert_eq!(port(&h, 7000), ((false, true), (false, true)));
    assert_eq!(h.tcp.check_bind(&h.net, addr(IP_A, 7000), true), Ok(()));
    h.tcp.set_reuse_addr(T0, &mut h.net, id, false).unwrap();
    assert_eq!(h.tcp.check_bind(&h.net, addr(IP_A, 7000), true), Err(TcpError::AddrInUse));
    // Established, closed by us, then TIME-WAIT: reusable only (a record).
    let mut peer = Peer { port: 80, our_port: 7000, seq: 100, ack: syn.seq + 1, wnd: 1000 };
    peer.send(&mut h, T0, "SA", b"").unwrap();
    h.tcp.close(T0, &mut h.net, id).unwrap();
    h.out();
    peer.ack += 1;
    peer.send(&mut h, T0, "FA", b"").unwrap();
    assert_eq!(port(&h, 7000), ((false, true), (false, true)));
    assert_eq!(h.tcp.check_bind(&h.net, addr(IP_A, 7000), false), Err(TcpError::AddrInUse));
    // 2MSL later the record goes, and with it every count.
    h.poll(T0 + secs(120));
    assert_eq!(port(&h, 7000), ((false, false), (false, false)));
    assert!(h.tcp.ports.is_empty() && h.tcp.reusable_ports.is_empty());
    assert_eq!(h.tcp.check_bind(&h.net, addr(IP_A, 7000), false), Ok(()));
}
