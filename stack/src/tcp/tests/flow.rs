//! Flow: out-of-order reassembly, windows and SWS avoidance, zero-window
//! probing, delayed ACKs, Nagle, keep-alive.

use super::*;

#[test]
fn delayed_ack_after_40ms_and_every_second_segment() {
    let mut h = Host::new(IP_A, 70);
    let (_l, id, mut peer) = passive_established(&mut h);
    let t = T0 + secs(1);
    peer.send(&mut h, t, "PA", b"one").unwrap();
    h.nothing();
    let info = h.tcp.info(id).unwrap();
    assert_eq!(info.timers.delayed_ack, Some(t + ms(40)));
    h.poll(t + ms(39));
    h.nothing();
    h.poll(t + ms(40));
    let ack = h.one();
    assert_eq!((ack.flags().as_str(), ack.ack), (".", Some(peer.seq)));
    // Two segments: the second is acknowledged at once (MUST-40).
    peer.send(&mut h, t + secs(1), "A", &[1; 1460]).unwrap();
    h.nothing();
    peer.send(&mut h, t + secs(1), "A", &[2; 1460]).unwrap();
    assert_eq!(h.one().ack, Some(peer.seq));
    assert_eq!(h.tcp.info(id).unwrap().timers.delayed_ack, None);
}

#[test]
fn ack_piggybacks_on_data() {
    let mut h = Host::new(IP_A, 71);
    let (_l, id, mut peer) = passive_established(&mut h);
    let t = T0 + secs(1);
    peer.send(&mut h, t, "PA", b"ping").unwrap();
    h.nothing();
    assert_eq!(h.recv_all(t, id).unwrap(), b"ping");
    h.send(t + ms(1), id, b"pong").unwrap();
    let s = h.one();
    assert_eq!((s.data.as_slice(), s.ack), (&b"pong"[..], Some(peer.seq)));
    h.poll(t + ms(40));
    h.nothing();
}

#[test]
fn out_of_order_data_is_held_acked_at_once_and_delivered_in_order() {
    let mut h = Host::new(IP_A, 72);
    let (_l, id, peer) = passive_established(&mut h);
    let t = T0 + secs(1);
    let s0 = peer.seq;
    peer.raw(&mut h, t, s0 + 5, peer.ack, "A", b"fghij").unwrap();
    let dup = h.one();
    assert_eq!(dup.ack, Some(s0), "immediate duplicate ACK for out-of-order data");
    assert_eq!(h.recv_all(t, id).unwrap(), b"", "nothing in order yet");
    assert_eq!(h.tcp.info(id).unwrap().out_of_order, 5);
    peer.raw(&mut h, t, s0 + 10, peer.ack, "FA", b"klm").unwrap(); // FIN beyond the gap
    assert_eq!(h.one().ack, Some(s0));
    peer.raw(&mut h, t, s0 + 5, peer.ack, "A", b"fghij").unwrap(); // duplicate
    h.out();
    assert_eq!(h.state(id), State::Established, "the FIN waits for the gap");
    peer.raw(&mut h, t, s0, peer.ack, "A", b"abcde").unwrap();
    let ack = h.one();
    assert_eq!(ack.ack, Some(s0 + 14), "all the data and the FIN");
    assert_eq!(h.state(id), State::CloseWait);
    assert_eq!(h.recv_all(t, id).unwrap(), b"abcdefghijklm");
    // Overlapping retransmission of old data with new data.
}

#[test]
fn overlapping_segment_is_trimmed_to_new_data() {
    let mut h = Host::new(IP_A, 73);
    let (_l, id, peer) = passive_established(&mut h);
    let t = T0 + secs(1);
    let s0 = peer.seq;
    peer.raw(&mut h, t, s0, peer.ack, "A", b"abc").unwrap();
    peer.raw(&mut h, t, s0 + 1, peer.ack, "A", b"bcdef").unwrap();
    assert_eq!(h.recv_all(t, id).unwrap(), b"abcdef");
    assert_eq!(h.tcp.info(id).unwrap().bytes_received, 6);
}

#[test]
fn receive_window_closes_and_reopens_with_receiver_sws_avoidance() {
    let mut h = Host::new(IP_A, 74);
    let (_l, id, mut peer) = passive_established(&mut h);
    let t = T0 + secs(1);
    // 64 KiB buffer, window scale 1 (sent on the SYN,ACK because the SYN had... none): unscaled.
    let info = h.tcp.info(id).unwrap();
    assert_eq!(info.rcv_wscale, 0, "the peer's SYN had no window scale");
    assert_eq!(info.rcv_wnd, 65535);
    // Fill it: 44 segments of 1460 = 64240, then 1295 more = 65535.
    for _ in 0..44 {
        peer.send(&mut h, t, "A", &[9; 1460]).unwrap();
    }
    peer.send(&mut h, t, "A", &[9; 1295]).unwrap();
    let last = h.out().pop().unwrap();
    h.poll(t + ms(40));
    let last = h.out().pop().unwrap_or(last);
    assert_eq!((last.ack, last.wnd), (Some(peer.seq), 0), "zero window");
    // Data beyond the window is not accepted; a zero-window probe gets an ACK.
    assert_eq!(peer.send(&mut h, t, "A", b"x"), Err(DropReason::TcpNotAcceptable));
    peer.seq -= 1;
    let probe_ack = h.one();
    assert_eq!((probe_ack.ack, probe_ack.wnd), (Some(peer.seq), 0));
    // Reading 100 bytes: not worth a window update (receiver SWS avoidance).
    let mut buf = [0u8; 100];
    assert_eq!(h.tcp.recv(t, &mut h.net, id, &mut buf, false), Ok(100));
    h.nothing();
    // Reading a full MSS more: the window opens and the peer is told at once.
    let mut buf = [0u8; 1460];
    h.tcp.recv(t, &mut h.net, id, &mut buf, false).unwrap();
    let upd = h.one();
    // The buffer is 65536: one byte more than the window first offered.
    assert_eq!((upd.ack, upd.wnd), (Some(peer.seq), 1561));
    assert_eq!(h.tcp.info(id).unwrap().rcv_wnd, 1561);
}

#[test]
fn zero_window_probing_with_backoff_never_gives_up_while_answered() {
    let mut h = Host::new(IP_A, 75);
    let (id, mut peer) = active_established(&mut h, Some(1000), 65535);
    let t = T0 + secs(1);
    h.send(t, id, b"abcd").unwrap();
    h.one();
    // The peer acknowledges but closes its window.
    peer.ack += 4;
    peer.wnd = 0;
    peer.send(&mut h, t + ms(10), "A", b"").unwrap();
    h.send(t + ms(20), id, b"efgh").unwrap();
    h.nothing();
    let info = h.tcp.info(id).unwrap();
    assert_eq!(info.timers.retransmit, None);
    let first = info.timers.persist.expect("persist timer (MUST-35)");
    assert_eq!(first, t + ms(20) + ms(200));
    let mut probes = Vec::new();
    let mut now = t;
    for _ in 0..25 {
        now = h.tcp.poll_at().unwrap();
        h.poll(now);
        let p = h.one();
        assert_eq!((p.seq, p.data.as_slice()), (peer.ack, &b"e"[..]), "one octet beyond the window");
        probes.push(now);
        // The peer answers each probe, window still zero.
        peer.send(&mut h, now, "A", b"").unwrap();
    }
    let gaps: Vec<u64> = probes.windows(2).map(|w| (w[1] - w[0]).as_millis() as u64).collect();
    assert_eq!(gaps[..5], [400, 800, 1600, 3200, 6400]);
    assert!(gaps[10..].iter().all(|&g| g == 120_000), "capped at the maximum RTO: {gaps:?}");
    assert_eq!(h.state(id), State::Established, "MUST-37: no abort while probes are answered");
    assert_eq!(h.net.counters.window_probes, 25);
    // The window opens: the data flows.
    peer.wnd = 1000;
    peer.send(&mut h, now + secs(1), "A", b"").unwrap();
    let d = h.one();
    assert_eq!((d.seq, d.data.as_slice()), (peer.ack, &b"efgh"[..]));
}

#[test]
fn zero_window_probe_accepted_by_peer_advances() {
    let mut h = Host::new(IP_A, 76);
    let (id, mut peer) = active_established(&mut h, Some(1000), 0);
    let t = T0 + secs(1);
    h.send(t, id, b"xyz").unwrap();
    h.nothing();
    h.poll(t + ms(200));
    assert_eq!(h.one().data, b"x");
    // The peer takes the octet and opens its window.
    peer.ack += 1;
    peer.wnd = 100;
    peer.send(&mut h, t + ms(210), "A", b"").unwrap();
    let d = h.one();
    assert_eq!((d.seq, d.data.as_slice()), (peer.ack, &b"yz"[..]));
}

#[test]
fn unanswered_zero_window_probes_time_out() {
    let mut h = Host::new(IP_A, 77);
    let (id, _peer) = active_established(&mut h, Some(1000), 0);
    h.send(T0 + secs(1), id, b"xyz").unwrap();
    while let Some(t) = h.tcp.poll_at() {
        h.poll(t);
    }
    assert_eq!(h.net.counters.window_probes, 15);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::TimedOut));
}

#[test]
fn nagle_holds_small_writes_while_data_is_unacknowledged() {
    let mut h = Host::new(IP_A, 78);
    let (id, mut peer) = active_established(&mut h, Some(1000), 65535);
    let t = T0 + secs(1);
    h.send(t, id, b"a").unwrap();
    assert_eq!(h.one().data, b"a", "nothing outstanding: goes at once");
    h.send(t, id, b"b").unwrap();
    h.send(t, id, b"c").unwrap();
    h.nothing();
    peer.ack += 1;
    peer.send(&mut h, t + ms(5), "A", b"").unwrap();
    let s = h.one();
    assert_eq!(s.data, b"bc", "coalesced");
    assert!(s.psh);
    // A full segment is never held.
    h.send(t + ms(6), id, &[0; 1500]).unwrap();
    let s = h.one();
    assert_eq!(s.data.len(), 1000);
}

#[test]
fn nodelay_sends_every_write() {
    let mut h = Host::new(IP_A, 79);
    let (id, _peer) = active_established(&mut h, Some(1000), 65535);
    let t = T0 + secs(1);
    h.send(t, id, b"a").unwrap();
    h.send(t, id, b"b").unwrap();
    assert_eq!(h.out().len(), 1);
    // Turning TCP_NODELAY on flushes what Nagle held.
    h.tcp.set_nodelay(t, &mut h.net, id, true).unwrap();
    assert_eq!(h.one().data, b"b");
    h.send(t, id, b"c").unwrap();
    assert_eq!(h.one().data, b"c");
}

#[test]
fn nagle_and_delayed_ack_interplay() {
    // A writes twice (write-write-read pattern); B answers only after the second.
    // With Nagle, A's second write waits for B's delayed ACK (40 ms); with
    // TCP_NODELAY it does not.
    for nodelay in [false, true] {
        let mut w = Wire::new(80);
        let (a, _l, b) = w.connect();
        w.run_for(secs(1));
        w.a.tcp.set_nodelay(w.now, &mut w.a.net, a, nodelay).unwrap();
        let start = w.now;
        w.a.send(w.now, a, b"GET ").unwrap();
        w.a.send(w.now, a, b"/\r\n").unwrap();
        assert!(w.run_until(secs(5), |w| w.b.tcp.info(b).unwrap().recv_queue == 7));
        let took = w.now - start;
        if nodelay {
            assert_eq!(took, ms(5), "one-way delay only");
        } else {
            assert_eq!(took, ms(5) + ms(40) + ms(5) + ms(5), "delayed ACK, then the held segment");
        }
        assert_eq!(w.b.recv_all(w.now, b).unwrap(), b"GET /\r\n");
    }
}

#[test]
fn sender_sws_avoidance_waits_for_a_useful_window() {
    let mut h = Host::new(IP_A, 81);
    let (id, mut peer) = active_established(&mut h, Some(1000), 10_000);
    let t = T0 + secs(1);
    // The peer offers 10000, then only 300: less than half its largest window.
    h.send(t, id, &[1; 1000]).unwrap();
    h.one();
    peer.ack += 1000;
    peer.wnd = 300;
    peer.send(&mut h, t + ms(5), "A", b"").unwrap();
    h.send(t + ms(6), id, &[2; 5000]).unwrap();
    h.nothing();
    // Opening to 5000 (at least half of 10000) lets a segment go.
    peer.wnd = 5000;
    peer.send(&mut h, t + ms(7), "A", b"").unwrap();
    let out = h.out();
    assert_eq!(
        out.iter().map(|s| s.data.len()).sum::<usize>(),
        5000,
        "five full segments: cwnd grew by one SMSS with the ACK"
    );
}

#[test]
fn sws_override_timer_sends_a_small_window() {
    let mut h = Host::new(IP_A, 82);
    let (id, mut peer) = active_established(&mut h, Some(1000), 10_000);
    let t = T0 + secs(1);
    h.send(t, id, &[1; 1000]).unwrap();
    h.one();
    peer.ack += 1000;
    peer.wnd = 300;
    peer.send(&mut h, t + ms(5), "A", b"").unwrap();
    h.send(t + ms(6), id, &[2; 5000]).unwrap();
    h.nothing();
    let p = h.tcp.info(id).unwrap().timers.persist.unwrap();
    h.poll(p);
    assert_eq!(h.one().data.len(), 300, "RFC 9293 3.8.6.2.1: the override timeout");
}

#[test]
fn keepalive_off_by_default() {
    let mut h = Host::new(IP_A, 83);
    let (id, _peer) = active_established(&mut h, Some(1000), 65535);
    assert_eq!(h.tcp.info(id).unwrap().timers.keepalive, None);
    assert_eq!(h.tcp.poll_at(), None);
    assert_eq!(h.tcp.options(id).unwrap().keep_idle, secs(7200), "MUST-28: 2 hours");
}

#[test]
fn keepalive_probes_then_drops_an_unresponsive_peer() {
    let mut h = Host::new(IP_A, 84);
    let (id, mut peer) = active_established(&mut h, Some(1000), 65535);
    let t = T0 + secs(1);
    h.tcp.set_keepalive_params(t, &mut h.net, id, secs(10), secs(2), 3).unwrap();
    h.tcp.set_keepalive(t, &mut h.net, id, true).unwrap();
    assert_eq!(h.tcp.info(id).unwrap().timers.keepalive, Some(t + secs(10)));
    // Answered probes keep it alive.
    h.poll(t + secs(10));
    let p = h.one();
    assert_eq!((p.seq, p.data.len(), p.ack), (peer.ack - 1, 0, Some(peer.seq)), "SEG.SEQ = SND.NXT-1 (RFC 9293 3.8.4)");
    peer.send(&mut h, t + secs(10) + ms(5), "A", b"").unwrap();
    assert_eq!(h.tcp.info(id).unwrap().timers.keepalive, Some(t + secs(20) + ms(5)));
    // Unanswered: probes every 2 s, then a reset after 3.
    let mut at = Vec::new();
    while h.state(id) != State::Closed {
        let next = h.tcp.poll_at().unwrap();
        h.poll(next);
        for s in h.out() {
            at.push(((next - t).as_millis(), s.flags()));
        }
    }
    assert_eq!(
        at,
        [(20_005, ".".to_string()), (22_005, ".".to_string()), (24_005, ".".to_string()), (26_005, "R.".to_string())]
    );
    assert_eq!(h.net.counters.keepalive_probes, 4);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::TimedOut));
}

#[test]
fn send_buffer_is_bounded() {
    let mut h = Host::new(IP_A, 85);
    let (id, _peer) = active_established(&mut h, Some(1000), 0);
    h.tcp.set_send_buffer(T0, &mut h.net, id, 3000).unwrap();
    assert_eq!(h.send(T0, id, &[0; 5000]), Ok(3000));
    assert_eq!(h.send(T0, id, &[0; 10]), Err(TcpError::WouldBlock));
    assert!(!h.tcp.readiness(id).unwrap().writable);
    assert_eq!(h.tcp.info(id).unwrap().send_queue, 3000);
}

#[test]
fn recv_peek_and_would_block() {
    let mut h = Host::new(IP_A, 86);
    let (_l, id, mut peer) = passive_established(&mut h);
    let mut buf = [0u8; 3];
    assert_eq!(h.tcp.recv(T0, &mut h.net, id, &mut buf, false), Err(TcpError::WouldBlock));
    assert!(!h.tcp.readiness(id).unwrap().readable);
    peer.send(&mut h, T0, "PA", b"hello").unwrap();
    assert!(h.tcp.readiness(id).unwrap().readable);
    assert_eq!(h.tcp.recv(T0, &mut h.net, id, &mut buf, true), Ok(3));
    assert_eq!(&buf, b"hel");
    assert_eq!(h.tcp.recv(T0, &mut h.net, id, &mut buf, false), Ok(3));
    assert_eq!(&buf, b"hel");
    assert_eq!(h.recv_all(T0, id).unwrap(), b"lo");
}

#[test]
fn keepalive_between_two_stacks_keeps_an_idle_connection() {
    let mut w = Wire::new(87);
    let (a, _l, b) = w.connect();
    w.a.tcp.set_keepalive_params(w.now, &mut w.a.net, a, secs(10), secs(1), 3).unwrap();
    w.a.tcp.set_keepalive(w.now, &mut w.a.net, a, true).unwrap();
    w.run_for(secs(100));
    // The peer answers each probe (SEG.SEQ = SND.NXT-1 is old: an ACK comes back).
    assert_eq!(w.a.net.counters.keepalive_probes, 9);
    assert_eq!(w.b.drops.iter().filter(|&&d| d == DropReason::TcpNotAcceptable).count(), 9);
    assert_eq!(w.a.state(a), State::Established);
    assert_eq!(w.b.state(b), State::Established);
    // The peer vanishes: after 3 unanswered probes, ETIMEDOUT.
    w.loss = 1.0;
    w.run_for(secs(20));
    assert_eq!(w.a.state(a), State::Closed);
    assert_eq!(w.a.tcp.take_error(a).unwrap(), Some(TcpError::TimedOut));
}

#[test]
fn window_scaling_lets_the_window_exceed_64k() {
    let opts = SocketOptions { recv_buffer: 1 << 20, send_buffer: 1 << 20, ..SocketOptions::default() };
    let cfg = TcpConfig { default_options: opts, ..TcpConfig::default() };
    let mut w = Wire::with_config(88, cfg);
    let (a, _l, b) = w.connect();
    let info = w.a.tcp.info(a).unwrap();
    assert_eq!((info.snd_wscale, info.rcv_wscale), (5, 5), "1 MiB >> 5 fits 16 bits");
    assert_eq!(info.snd_wnd, 65535, "the SYN's window is unscaled");
    // One segment from B, and A learns the scaled window.
    w.b.send(w.now, b, b"x").unwrap();
    w.run_for(secs(1));
    assert_eq!(w.a.tcp.info(a).unwrap().snd_wnd, 1 << 20, "32768 scaled by 2^5");
    let data = pattern(800_000, 5);
    assert_eq!(w.a.send(w.now, a, &data), Ok(800_000));
    w.run_for(secs(2));
    assert_eq!(w.b.recv_all(w.now, b).unwrap(), data);
    assert!(w.b.tcp.info(b).unwrap().rcv_wnd > 65535);
}

#[test]
fn within_a_batch_in_order_data_is_acked_once_at_its_end_and_out_of_order_at_once() {
    let mut h = Host::new(IP_A, 77);
    let (_l, id, mut peer) = passive_established(&mut h);
    let t = T0 + secs(1);
    // Six full-sized segments read together: one stretch ACK, at the batch's end.
    h.tcp.begin_batch();
    for i in 0..6 {
        peer.send(&mut h, t, "A", &[i; 1460]).unwrap();
        h.nothing();
    }
    h.tcp.end_batch(t, &mut h.net);
    assert_eq!(h.one().ack, Some(peer.seq), "one ACK for the six");
    assert_eq!(h.tcp.info(id).unwrap().timers.delayed_ack, None);
    // A lone segment in a batch waits for the delayed ACK, as outside one.
    h.tcp.begin_batch();
    peer.send(&mut h, t, "A", &[7; 1460]).unwrap();
    h.tcp.end_batch(t, &mut h.net);
    h.nothing();
    assert_eq!(h.tcp.info(id).unwrap().timers.delayed_ack, Some(t + ms(40)));
    // Out-of-order data in a batch is acknowledged at once (RFC 5681 section 4.2).
    h.tcp.begin_batch();
    peer.raw(&mut h, t, peer.seq + 100, peer.ack, "A", b"x").unwrap();
    assert_eq!(h.one().ack, Some(peer.seq), "a duplicate ACK, at once");
    h.tcp.end_batch(t, &mut h.net);
    h.nothing();
}

#[test]
fn a_stretch_ack_leaves_at_most_64_kib_unacknowledged_and_can_be_turned_off() {
    let mut h = Host::new(IP_A, 78);
    let (_l, _id, mut peer) = passive_established(&mut h);
    let t = T0 + secs(1);
    // Segments count as MSS-sized ones (1460): the 45th passes 64 KiB and is
    // acknowledged within the batch (1000 bytes each, so the window holds them).
    h.tcp.begin_batch();
    for i in 0..45 {
        peer.send(&mut h, t, "A", &[i; 1000]).unwrap();
        if i < 44 {
            h.nothing();
        }
    }
    assert_eq!(h.one().ack, Some(peer.seq), "at 64 KiB");
    h.tcp.end_batch(t, &mut h.net);
    h.nothing();
    // Off: every second segment, batch or not (RFC 9293 SHLD-19 to the letter).
    h.tcp.set_config(TcpConfig { stretch_acks: false, ..TcpConfig::default() });
    h.tcp.begin_batch();
    peer.send(&mut h, t, "A", &[1; 1460]).unwrap();
    h.nothing();
    peer.send(&mut h, t, "A", &[2; 1460]).unwrap();
    assert_eq!(h.one().ack, Some(peer.seq));
    h.tcp.end_batch(t, &mut h.net);
    h.nothing();
}

#[test]
fn lazy_window_updates_wait_until_the_window_doubles() {
    let mut h = Host::new(IP_A, 77);
    h.tcp.set_config(TcpConfig { lazy_window_updates: true, ..TcpConfig::default() });
    let (_l, id, mut peer) = passive_established(&mut h);
    let t = T0 + secs(1);
    let mut buf = vec![0u8; 65536];
    for _ in 0..10 {
        peer.send(&mut h, t, "A", &[9; 1460]).unwrap();
    }
    let before = h.out().pop().unwrap().wnd;
    assert!(before <= 65535 - 14600, "{before}");
    // Reading 14600 bytes opens the window by more than the SWS threshold, but
    // does not double what the peer may still send: no update of its own...
    assert_eq!(h.tcp.recv(t, &mut h.net, id, &mut buf, false), Ok(14600));
    h.nothing();
    // ...the next ACK carries it.
    for _ in 0..2 {
        peer.send(&mut h, t, "A", &[9; 1460]).unwrap();
    }
    let ack = h.out().pop().unwrap();
    assert_eq!(ack.ack, Some(peer.seq));
    assert!(ack.wnd >= 65535 - 2 * 1460 - 1460, "the read's space announced: {}", ack.wnd);
    // Filled to under half: a read that at least doubles the window is told at once.
    for _ in 0..30 {
        peer.send(&mut h, t, "A", &[9; 1460]).unwrap();
    }
    let low = h.out().pop().unwrap().wnd;
    assert!(low < 65535 / 2, "{low}");
    assert_eq!(h.tcp.recv(t, &mut h.net, id, &mut buf, false), Ok(32 * 1460));
    let upd = h.one();
    assert_eq!(upd.ack, Some(peer.seq));
    assert!(upd.wnd >= 2 * low && upd.wnd > 60000, "{} after {low}", upd.wnd);
    // The default (eager): the same small read sends its own update.
    h.tcp.set_config(TcpConfig::default());
    for _ in 0..10 {
        peer.send(&mut h, t, "A", &[9; 1460]).unwrap();
    }
    h.out();
    assert_eq!(h.tcp.recv(t, &mut h.net, id, &mut buf, false), Ok(14600));
    assert_eq!(h.one().ack, Some(peer.seq), "an update of its own");
}
