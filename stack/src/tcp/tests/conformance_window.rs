//! RFC 9293 conformance: the window (sections 3.1, 3.4, 3.8.6): unsigned 32-bit
//! windows, no shrinking by us, robustness when the peer shrinks its window,
//! zero windows held and probed, and RST processing at a zero window. Each test
//! names the requirement IDs it shows; tests/conformance/rfc9293.tsv cites them.

use super::conformance_support::*;
use super::*;

#[test]
fn window_field_is_unsigned_and_windows_are_32_bits() {
    // MUST-1: 0x8001 in the window field is 32769 octets, not a negative number.
    let mut h = Host::new(IP_A, 920);
    let (id, _peer) = active_established(&mut h, Some(1000), 0x8001);
    assert_eq!(h.tcp.info(id).unwrap().snd_wnd, 0x8001);
    h.send(T0 + ms(20), id, &[5; 4000]).unwrap();
    assert_eq!(h.out().len(), 4, "the initial window's worth goes out");
    // REC-1: with window scaling, 0xffff << 14 needs (and gets) 32 bits.
    let mut h = Host::new(IP_A, 921);
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    let syn = h.one();
    let mut sa = seg(80, syn.src_port, 5000, syn.seq + 1, "SA", 65535);
    sa.wscale = Some(14);
    h.deliver(T0 + ms(10), &packet(IP_B, IP_A, &sa, b"")).unwrap();
    h.one();
    let mut peer = Peer { port: 80, our_port: syn.src_port, seq: 5001, ack: syn.seq + 1, wnd: 0xffff };
    peer.send(&mut h, T0 + ms(20), "A", b"").unwrap();
    assert_eq!(h.tcp.info(id).unwrap().snd_wnd, 0xffff << 14);
    assert_eq!(h.send(T0 + ms(30), id, &[6; 4000]), Ok(4000));
    assert_eq!(h.out().len(), 4, "the congestion window, not the window, limits now");
}

#[test]
fn receiver_never_moves_the_right_window_edge_left() {
    // SHLD-14: while data arrives and the user reads nothing, every ACK offers
    // the same right edge (ACK + window); asking for a smaller receive buffer
    // does not pull back what was offered.
    let mut h = Host::new(IP_A, 922);
    let (_l, id, mut peer) = passive_established(&mut h);
    let t = T0 + secs(1);
    let edge = peer.seq + h.tcp.info(id).unwrap().rcv_wnd;
    let mut edges = Vec::new();
    for i in 0..20u32 {
        peer.send(&mut h, t + ms(i.into()), "A", &[1; 1460]).unwrap();
        h.poll(t + ms(i as u64 + 40));
        edges.extend(h.out().iter().map(|s| s.ack.unwrap() + s.wnd as u32));
    }
    assert!(edges.len() >= 10, "{edges:?}");
    assert!(edges.iter().all(|&e| e == edge), "edges {edges:?}, first offered {edge}");
    h.tcp.set_recv_buffer(t + secs(1), &mut h.net, id, 1024).unwrap();
    let wnd = h.tcp.info(id).unwrap().rcv_wnd;
    assert_eq!(peer.seq + wnd, edge, "the window offered is kept");
    peer.send(&mut h, t + secs(2), "A", &[1; 100]).unwrap();
    h.poll(t + secs(3));
    let s = h.one();
    assert_eq!(s.ack.unwrap() + s.wnd as u32, edge);
}

/// Established with peer MSS 1000 and 4000 octets in flight; returns the first
/// octet's sequence number.
fn four_in_flight(h: &mut Host, seed_id: ConnId) -> u32 {
    h.send(T0 + secs(1), seed_id, &pattern(4000, 7)).unwrap();
    let flight = h.out();
    assert_eq!(flight.len(), 4);
    flight[0].seq
}

#[test]
fn peer_shrinking_its_window_stops_new_data_and_keeps_retransmission_inside_it() {
    // MUST-34: robust when the peer moves its right edge left (the usable window
    // goes negative); SHLD-15: no new data then; SHLD-16: the old data inside
    // SND.UNA..SND.UNA+SND.WND is retransmitted normally (and nothing beyond it).
    let mut h = Host::new(IP_A, 923);
    let (id, mut peer) = active_established(&mut h, Some(1000), 65535);
    let base = four_in_flight(&mut h, id);
    // The peer takes 1000 octets and offers 1000 more: right edge base+2000,
    // while base+4000 has been sent.
    peer.ack = base + 1000;
    peer.wnd = 1000;
    peer.send(&mut h, T0 + secs(1) + ms(10), "A", b"").unwrap();
    h.send(T0 + secs(1) + ms(20), id, &[9; 3000]).unwrap();
    h.nothing();
    // The retransmission timeout resends what the window holds, and only that.
    let rto = h.tcp.info(id).unwrap().timers.retransmit.unwrap();
    h.poll(rto);
    let re = h.out();
    assert_eq!(re.len(), 1, "{re:?}");
    assert_eq!((re[0].seq - base, re[0].data.len()), (1000, 1000));
    assert_eq!(re[0].data, pattern(4000, 7)[1000..2000]);
    // The peer opens the window again: the rest follows, then new data.
    peer.ack = base + 2000;
    peer.wnd = 20_000;
    peer.send(&mut h, rto + ms(10), "A", b"").unwrap();
    let next: Vec<u32> = h.out().iter().map(|s| s.seq - base).collect();
    assert_eq!(next, [2000, 3000], "slow start after the timeout: two segments");
    assert_eq!(h.state(id), State::Established);
}

#[test]
fn window_shrunk_to_zero_under_data_in_flight_is_probed_and_never_timed_out() {
    // MUST-35: a window shrunk to zero is probed the standard way.
    // SHLD-17: data beyond the (zero) window staying unacknowledged for many
    // more retransmission periods than R2 allows does not time the connection out.
    let mut h = Host::new(IP_A, 924);
    let (id, mut peer) = active_established(&mut h, Some(1000), 65535);
    let base = four_in_flight(&mut h, id);
    peer.ack = base + 1000;
    peer.wnd = 0;
    peer.send(&mut h, T0 + secs(1) + ms(10), "A", b"").unwrap();
    let mut probes = 0;
    let mut now = T0;
    for _ in 0..40 {
        now = h.tcp.poll_at().unwrap();
        h.poll(now);
        for s in h.out() {
            assert_eq!((s.seq - base, s.data.len()), (1000, 1), "one octet at SND.UNA");
            probes += 1;
            peer.send(&mut h, now + ms(10), "A", b"").unwrap();
        }
    }
    assert!(probes >= 35, "{probes} probes");
    assert!(now - T0 > secs(3600), "probed for over an hour: {:?}", now - T0);
    assert_eq!(h.state(id), State::Established);
    assert_eq!(h.tcp.take_error(id).unwrap(), None);
    // The window opens: the data is sent again from SND.UNA.
    peer.wnd = 10_000;
    peer.send(&mut h, now + secs(1), "A", b"").unwrap();
    assert_eq!(h.out()[0].seq - base, 1000);
}

#[test]
fn receiver_may_keep_its_window_closed_for_hours() {
    // MAY-8: B's user reads nothing for two hours; B's window stays closed, it
    // answers A's probes, and neither side gives up (MUST-37 from A's side).
    // When B reads, the data flows again, intact.
    let mut w = Wire::new(925);
    let (a, _l, b) = w.connect();
    let data = pattern(200_000, 3);
    let mut sent = 0;
    w.run_until(secs(10), |w| {
        sent += w.a.tcp.send(w.now, &mut w.a.net, a, &data[sent..]).unwrap_or(0);
        false
    });
    assert_eq!(w.b.tcp.info(b).unwrap().rcv_wnd, 0);
    assert!(w.b.tcp.info(b).unwrap().recv_queue > 65000);
    assert_eq!(w.a.tcp.info(a).unwrap().send_queue, 65536, "A has more to send");
    let probes = w.a.net.counters.window_probes;
    w.run_for(secs(2 * 3600));
    assert_eq!(w.b.tcp.info(b).unwrap().rcv_wnd, 0);
    assert!(w.a.net.counters.window_probes - probes > 50, "{}", w.a.net.counters.window_probes);
    assert_eq!((w.a.state(a), w.b.state(b)), (State::Established, State::Established));
    let mut got = Vec::new();
    let ok = w.run_until(secs(600), |w| {
        got.extend(w.b.recv_all(w.now, b).unwrap());
        if sent < data.len() {
            sent += w.a.tcp.send(w.now, &mut w.a.net, a, &data[sent..]).unwrap_or(0);
        }
        got.len() == data.len()
    });
    assert!(ok, "{} of {} octets", got.len(), data.len());
    assert!(got == data);
}

#[test]
fn rst_urg_and_ack_are_processed_with_a_zero_receive_window() {
    // MUST-66: with RCV.WND = 0 a segment at RCV.NXT is still processed for its
    // control fields: an ACK (here with URG set) acknowledges our data, and an
    // RST resets.
    let mut h = Host::new(IP_A, 926);
    let (_l, id, mut peer) = passive_established(&mut h);
    let t = T0 + secs(1);
    for _ in 0..44 {
        peer.send(&mut h, t, "A", &[9; 1460]).unwrap();
    }
    peer.send(&mut h, t, "A", &[9; 1295]).unwrap();
    h.poll(t + ms(40));
    h.out();
    assert_eq!(h.tcp.info(id).unwrap().rcv_wnd, 0);
    h.send(t + ms(50), id, b"ours").unwrap();
    assert_eq!(h.one().data, b"ours");
    let urg_ack = packet(IP_B, IP_A, &seg(peer.port, 80, peer.seq, peer.ack + 4, "A", 65535), b"");
    h.deliver(t + ms(60), &with_urgent(urg_ack, 1)).unwrap();
    assert_eq!(h.tcp.info(id).unwrap().unacked, 0, "the ACK was processed");
    peer.raw(&mut h, t + ms(70), peer.seq, 0, "R", b"").unwrap();
    assert_eq!(h.state(id), State::Closed);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::ConnectionReset));
}

#[test]
fn rst_may_carry_data() {
    // SHLD-2: an RST with (diagnostic) data is processed like any RST, in a
    // synchronized state and in SYN-SENT.
    let mut h = Host::new(IP_A, 927);
    let (id, peer) = active_established(&mut h, Some(1460), 65535);
    peer.raw(&mut h, T0 + secs(1), peer.seq, 0, "R", b"going away: shutdown").unwrap();
    assert_eq!(h.state(id), State::Closed);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::ConnectionReset));
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 81)).unwrap();
    let syn = h.one();
    let rst = seg(81, syn.src_port, 0, syn.seq + 1, "RA", 0);
    h.deliver(T0, &packet(IP_B, IP_A, &rst, b"no service here")).unwrap();
    assert_eq!(h.state(id), State::Closed);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::ConnectionRefused));
}
