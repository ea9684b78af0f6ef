//! Retransmission: RFC 6298 timer and backoff, Karn, R2 limits (MUST-20..23),
//! fast retransmit and NewReno (RFC 5681, RFC 6582).

use super::*;

#[test]
fn syn_retries_then_timed_out() {
    let mut h = Host::new(IP_A, 60);
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    let first = h.one();
    let mut at = Vec::new();
    while let Some(t) = h.tcp.poll_at() {
        h.poll(t);
        for s in h.out() {
            assert_eq!((s.flags().as_str(), s.seq), ("S", first.seq), "same SYN again");
            at.push((t - T0).as_secs());
        }
        if h.state(id) == State::Closed {
            assert_eq!((t - T0).as_secs(), 247, "R2 for SYNs: over 3 minutes (MUST-23)");
        }
    }
    assert_eq!(at, [1, 3, 7, 15, 31, 63, 127]);
    assert_eq!(h.state(id), State::Closed);
    assert_eq!(h.tcp.readiness(id).unwrap().error, Some(TcpError::TimedOut));
    assert_eq!(h.net.counters.timeouts, 7);
    assert_eq!(h.transitions(id).last().unwrap(), "SYN-SENT>CLOSED (timeout=R2)");
}

#[test]
fn negative_advice_at_r1_and_a_per_connection_r2() {
    // MUST-20: IP gets negative advice when retransmissions reach R1 (3);
    // MUST-21: the application sets R2 for its connection (here 4 SYN retries).
    let mut h = Host::new(IP_A, 62);
    let opts = SocketOptions { retries: Some(4), ..SocketOptions::default() };
    let id = h.tcp.connect_with(T0, &mut h.net, None, addr(IP_B, 80), opts).unwrap();
    h.one();
    let mut sent = Vec::new();
    while let Some(t) = h.tcp.poll_at() {
        h.poll(t);
        for _ in h.out() {
            sent.push((t - T0).as_secs());
        }
        if sent.len() == 2 {
            assert!(h.net.advice.is_empty(), "no advice before R1");
        }
    }
    assert_eq!(sent, [1, 3, 7, 15], "4 retransmissions, then R2");
    assert_eq!(h.net.advice, [IP_B], "advice once, at R1");
    assert_eq!(h.state(id), State::Closed);
    assert_eq!(h.tcp.readiness(id).unwrap().error, Some(TcpError::TimedOut));
}

#[test]
fn lost_syn_then_rto_of_3s_once_established() {
    // RFC 6298 section 5.7.
    let mut h = Host::new(IP_A, 61);
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    let syn = h.one();
    h.poll(T0 + secs(1));
    h.one();
    h.deliver(T0 + secs(1) + ms(10), &packet(IP_B, IP_A, &seg(80, syn.src_port, 1, syn.seq + 1, "SA", 1000), b""))
        .unwrap();
    let info = h.tcp.info(id).unwrap();
    assert_eq!(info.srtt, None, "Karn: no sample from a retransmitted SYN");
    assert_eq!(info.rto, secs(3));
}

#[test]
fn rto_follows_samples_and_backs_off_to_the_limit() {
    let mut h = Host::new(IP_A, 62);
    let (id, mut peer) = active_established(&mut h, Some(1000), 65535);
    // The handshake measured 10 ms: RTO is the 200 ms floor.
    assert_eq!(h.tcp.info(id).unwrap().rto, ms(200));
    // A 300 ms round trip on data.
    let t = T0 + secs(1);
    h.send(t, id, b"sample").unwrap();
    h.one();
    peer.ack += 6;
    peer.send(&mut h, t + ms(300), "A", b"").unwrap();
    let info = h.tcp.info(id).unwrap();
    // SRTT = 7/8*10 + 1/8*300 = 46.25 ms; RTTVAR = 3/4*5 + 1/4*290 = 76.25 ms.
    assert_eq!(info.srtt, Some(Duration::from_micros(46_250)));
    assert_eq!(info.rttvar, Duration::from_micros(76_250));
    assert_eq!(info.rto, Duration::from_micros(46_250 + 4 * 76_250));
    // Now nothing is acknowledged: retransmissions back off exponentially.
    let t = T0 + secs(2);
    h.send(t, id, b"lost").unwrap();
    let orig = h.one();
    let mut gaps = Vec::new();
    let mut last = t;
    while let Some(next) = h.tcp.poll_at() {
        h.poll(next);
        for s in h.out() {
            assert_eq!((s.seq, s.data.as_slice()), (orig.seq, &b"lost"[..]));
            gaps.push((next - last).as_micros());
            last = next;
        }
    }
    let rto: u128 = 351_250;
    let expect: Vec<u128> = (0..15).map(|i| (rto << i).min(120_000_000)).collect();
    assert_eq!(gaps, expect, "R2 = 15 retransmissions, doubling up to 120 s");
    assert_eq!(h.state(id), State::Closed);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::TimedOut));
    assert_eq!(h.net.counters.retransmitted, 15);
    assert!((last - t) > secs(100), "R2 of at least 100 s (MUST-20)");
}

#[test]
fn karn_no_sample_from_retransmitted_data() {
    let mut h = Host::new(IP_A, 63);
    let (id, mut peer) = active_established(&mut h, Some(1000), 65535);
    let srtt = h.tcp.info(id).unwrap().srtt;
    let t = T0 + secs(1);
    h.send(t, id, b"abc").unwrap();
    h.one();
    h.poll(t + ms(200));
    assert_eq!(h.one().data, b"abc");
    assert_eq!(h.tcp.info(id).unwrap().rto, ms(400), "backed off");
    peer.ack += 3;
    peer.send(&mut h, t + ms(250), "A", b"").unwrap();
    let info = h.tcp.info(id).unwrap();
    assert_eq!(info.srtt, srtt, "ambiguous ACK: no sample");
    assert_eq!(info.rto, ms(200), "backoff ends with progress");
    assert_eq!(info.timers.retransmit, None, "all acknowledged: timer stopped (RFC 6298 5.2)");
}

#[test]
fn timeout_goes_back_to_snd_una_with_one_segment_of_cwnd() {
    let mut h = newreno_host(64);
    let (id, mut peer) = active_established(&mut h, Some(1000), 65535);
    let t = T0 + secs(1);
    h.send(t, id, &pattern(4000, 0)).unwrap();
    let first = h.out();
    assert_eq!(first.len(), 4, "IW = 4 segments of 1000 (RFC 5681: min(4*SMSS, max(2*SMSS, 4380)))");
    h.poll(t + ms(200));
    let re = h.out();
    assert_eq!(re.len(), 1, "cwnd = 1 SMSS after a timeout");
    assert_eq!(re[0].seq, first[0].seq);
    let info = h.tcp.info(id).unwrap();
    assert_eq!((info.cwnd, info.ssthresh), (1000, 2000));
    assert_eq!(h.net.counters.timeouts, 1);
    // The ACK for the first segment: slow start sends two more.
    peer.ack += 1000;
    peer.send(&mut h, t + ms(210), "A", b"").unwrap();
    let next = h.out();
    assert_eq!(next.iter().map(|s| s.seq - first[0].seq).collect::<Vec<_>>(), [1000, 2000]);
}

/// A host with NewReno congestion control (RFC 5681, RFC 6582), whose numbers
/// these tests check (CUBIC, the default, reduces to 0.7 rather than 0.5).
fn newreno_host(seed: u64) -> Host {
    Host::with_config(IP_A, seed, TcpConfig { congestion: cubic::Algorithm::NewReno, ..TcpConfig::default() })
}

/// Established with peer MSS 1000 and `n` bytes queued; returns the first flight.
fn with_flight(seed: u64, n: usize) -> (Host, ConnId, Peer, Vec<Seg>) {
    let mut h = newreno_host(seed);
    let (id, peer) = active_established(&mut h, Some(1000), 65535);
    h.send(T0 + secs(1), id, &pattern(n, 1)).unwrap();
    let flight = h.out();
    (h, id, peer, flight)
}

#[test]
fn fast_retransmit_and_newreno_recovery() {
    let (mut h, id, mut peer, flight) = with_flight(65, 20_000);
    let base = flight[0].seq;
    assert_eq!(flight.len(), 4);
    let t = T0 + secs(1) + ms(10);
    // Segment 1 arrives; cwnd grows to 5000: segments 5 and 6 go out.
    peer.ack = base + 1000;
    peer.send(&mut h, t, "A", b"").unwrap();
    assert_eq!(h.out().iter().map(|s| s.seq - base).collect::<Vec<_>>(), [4000, 5000]);
    // Segment 2 is lost; 3, 4 and 5 arrive: three duplicate ACKs. The first
    // two each let one new segment go beyond cwnd (limited transmit, RFC 3042).
    peer.send(&mut h, t, "A", b"").unwrap();
    assert_eq!(h.out().iter().map(|s| s.seq - base).collect::<Vec<_>>(), [6000], "limited transmit");
    peer.send(&mut h, t, "A", b"").unwrap();
    assert_eq!(h.out().iter().map(|s| s.seq - base).collect::<Vec<_>>(), [7000], "limited transmit");
    peer.send(&mut h, t, "A", b"").unwrap();
    let re = h.one();
    assert_eq!((re.seq - base, re.data.len()), (1000, 1000), "fast retransmit of segment 2");
    assert_eq!(h.net.counters.fast_retransmits, 1);
    let info = h.tcp.info(id).unwrap();
    // FlightSize 7000: ssthresh 3500, cwnd = 3500 + 3*1000.
    assert_eq!((info.ssthresh, info.cwnd, info.in_recovery), (3500, 6500, true));
    // Two more duplicates inflate cwnd to 8500: one new segment fits (7000 in flight).
    peer.send(&mut h, t, "A", b"").unwrap();
    h.nothing();
    peer.send(&mut h, t, "A", b"").unwrap();
    assert_eq!(h.out().iter().map(|s| s.seq - base).collect::<Vec<_>>(), [8000]);
    // Partial ACK (up to segment 4; segment 5 was lost too): retransmit it at once.
    peer.ack = base + 4000;
    peer.send(&mut h, t + ms(10), "A", b"").unwrap();
    let out = h.out();
    assert_eq!(out[0].seq - base, 4000, "NewReno: the next hole is retransmitted on the partial ACK");
    assert!(h.tcp.info(id).unwrap().in_recovery);
    // Full ACK (covers `recover` = 8000): recovery ends, cwnd deflates to ssthresh or less.
    peer.ack = base + 9000;
    peer.send(&mut h, t + ms(20), "A", b"").unwrap();
    let info = h.tcp.info(id).unwrap();
    assert!(!info.in_recovery);
    assert!(info.cwnd <= 3500, "cwnd {}", info.cwnd);
    assert_eq!(h.net.counters.timeouts, 0, "no timeout needed");
}

#[test]
fn duplicate_acks_with_data_or_window_change_are_not_counted() {
    let (mut h, id, mut peer, flight) = with_flight(66, 10_000);
    let base = flight[0].seq;
    peer.ack = base;
    // Three "duplicates" that each carry data are not duplicate ACKs (RFC 5681 section 2).
    for _ in 0..3 {
        peer.send(&mut h, T0 + secs(2), "PA", b"d").unwrap();
    }
    // Three with a changing window are not either.
    for w in [1000, 2000, 3000] {
        peer.wnd = w;
        peer.send(&mut h, T0 + secs(2), "A", b"").unwrap();
    }
    assert_eq!(h.net.counters.fast_retransmits, 0);
    let _ = id;
}

#[test]
fn retransmission_counters_and_info() {
    let (mut h, id, _peer, _flight) = with_flight(67, 3000);
    h.poll(T0 + secs(1) + ms(200));
    let info = h.tcp.info(id).unwrap();
    assert_eq!(info.retransmissions, 1);
    assert_eq!(info.retries, 1);
    assert_eq!(info.unacked, 3000);
    assert!(!info.path_suspect);
    h.poll(T0 + secs(1) + ms(600));
    h.poll(T0 + secs(1) + ms(1400));
    let info = h.tcp.info(id).unwrap();
    assert_eq!(info.retries, 3);
    assert!(info.path_suspect, "R1 reached");
}
