//! Connections made from SYN cookies (RFC 4987 section 3.6) keep the options
//! their SYN asked for when it carried timestamps: the window scale and
//! SACK-permitted travel in the low bits of the SYN,ACK's TSval and come back
//! in the completing ACK's TSecr (RFC 7323, RFC 2018; as Linux). Without
//! timestamps only the MSS does. Virtual time, scripted peers.

use super::*;

/// A host at IP_A whose listener on port 80 (backlog 1) has its SYN queue
/// filled by a SYN from IP_B:3999 that is never completed: the next SYN gets a cookie.
fn full_syn_queue(cfg: TcpConfig, seed: u64) -> (Host, ConnId) {
    let mut h = Host::with_config(IP_A, seed, cfg);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 1).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(3999, 80, 1, 0, "S", 65535), b"")).unwrap();
    h.out();
    (h, l)
}

/// The peer's SYN from IP_B:4000, ISN 7000: MSS 1460, window scale 7,
/// SACK-permitted, and timestamps (TSval 500) if `ts`.
fn syn(ts: bool) -> Packet {
    let mut s = seg(4000, 80, 7000, 0, "S", 65535);
    s.mss = Some(1460);
    s.wscale = Some(7);
    s.sack_permitted = true;
    s.timestamp = ts.then_some((500, 0));
    packet(IP_B, IP_A, &s, b"")
}

/// The peer's ACK completing the handshake that `synack` answered, echoing
/// `tsecr` with TSval 501 if given.
fn completing_ack(synack: &Seg, tsecr: Option<u32>, data: &[u8]) -> Packet {
    let mut s = seg(4000, 80, 7001, synack.seq.wrapping_add(1), "PA", 1000);
    s.timestamp = tsecr.map(|e| (501, e));
    packet(IP_B, IP_A, &s, data)
}

#[test]
fn a_cookie_from_a_syn_with_timestamps_keeps_window_scale_sack_and_timestamps() {
    let (mut h, l) = full_syn_queue(TcpConfig::default(), 1401);
    let t = T0 + ms(10);
    h.deliver(t, &syn(true)).unwrap();
    let sa = h.one();
    assert_eq!(h.net.counters.syn_cookies_sent, 1);
    // Answered as a queued SYN would be: our window scale (1, for a 64 KiB
    // buffer), SACK-permitted, and timestamps echoing the peer's TSval.
    assert_eq!((sa.flags().as_str(), sa.mss, sa.wscale, sa.sack_permitted), ("S.", Some(1460), Some(1), true));
    let (tsval, ecr) = sa.ts.expect("timestamps answered");
    assert_eq!(ecr, 500);
    assert_eq!((tsval & 0xf, tsval & 0x10), (7, 0x10), "the peer's window scale and SACK in the low bits");

    h.deliver(t + ms(1), &completing_ack(&sa, Some(tsval), b"hello")).unwrap();
    let (id, _) = h.tcp.accept(l).unwrap().expect("made from the cookie");
    assert_eq!(h.state(id), State::Established);
    assert_eq!(h.net.counters.syn_cookies_received, 1);
    let info = h.tcp.info(id).unwrap();
    assert_eq!((info.snd_wscale, info.rcv_wscale, info.loss.sack, info.loss.timestamps), (7, 1, true, true));
    // Less the 12 octets of the timestamp option every segment carries.
    assert_eq!(info.snd_mss, 1448);
    // The peer's window is scaled by its shift.
    assert_eq!(info.snd_wnd, 1000 << 7);
    // No round-trip sample from a TSecr 0-63 ms older than the SYN,ACK.
    assert_eq!(info.srtt, None);

    // Later segments: out-of-order data is reported in a SACK block, our
    // window is scaled by our shift, and our TSval has not gone back.
    let mut s = seg(4000, 80, 7006 + 1000, sa.seq.wrapping_add(1), "A", 1000);
    s.timestamp = Some((502, tsval));
    h.deliver(t + ms(2), &packet(IP_B, IP_A, &s, &[b'x'; 1000])).unwrap();
    let a = h.one();
    assert_eq!(a.ack, Some(7006));
    assert_eq!(a.sack, [(8006, 9006)]);
    let (later, echoed) = a.ts.expect("timestamps on every segment");
    assert_eq!(echoed, 501, "TS.Recent from the completing ACK");
    assert!(later.wrapping_sub(tsval) < 1 << 31 && later.wrapping_sub(tsval) <= 64, "{tsval} then {later}");
    // The window field, shifted by 1, still offers about the 64 KiB buffer
    // (the right edge does not move back for out-of-order data).
    assert!((60_000..=65_536).contains(&((a.wnd as u32) << 1)), "window field {}", a.wnd);

    // As a sender: the peer's SACK blocks go on the scoreboard.
    h.send(t + ms(2), id, &[b'y'; 4 * 1448]).unwrap();
    let data: Vec<Seg> = h.out().into_iter().filter(|s| !s.data.is_empty()).collect();
    assert!(data.len() >= 3, "{data:?}");
    let (first, last) = (data[0].seq, data[data.len() - 1].seq.wrapping_add(1448));
    let mut s = seg(4000, 80, 7006, first, "A", 1000);
    s.timestamp = Some((503, later));
    s.sack[0] = (Seq(first.wrapping_add(1448)), Seq(last));
    s.sack_count = 1;
    let _ = h.deliver(t + ms(3), &packet(IP_B, IP_A, &s, b""));
    assert_eq!(h.tcp.info(id).unwrap().loss.sacked, last.wrapping_sub(first) - 1448);
}

#[test]
fn a_cookie_from_a_syn_without_timestamps_carries_the_mss_only() {
    let (mut h, l) = full_syn_queue(TcpConfig::default(), 1402);
    let t = T0 + ms(10);
    h.deliver(t, &syn(false)).unwrap();
    let sa = h.one();
    assert_eq!((sa.mss, sa.wscale, sa.sack_permitted, sa.ts), (Some(1460), None, false, None));
    h.deliver(t + ms(1), &completing_ack(&sa, None, b"hello")).unwrap();
    let (id, _) = h.tcp.accept(l).unwrap().expect("made from the cookie");
    let info = h.tcp.info(id).unwrap();
    assert_eq!((info.snd_wscale, info.rcv_wscale, info.loss.sack, info.loss.timestamps), (0, 0, false, false));
    assert_eq!((info.snd_mss, info.snd_wnd), (1460, 1000));
    // Out-of-order data: a duplicate ACK without SACK blocks or timestamps.
    let s = seg(4000, 80, 8006, sa.seq.wrapping_add(1), "A", 1000);
    h.deliver(t + ms(2), &packet(IP_B, IP_A, &s, &[b'x'; 1000])).unwrap();
    let a = h.one();
    assert_eq!((a.ack, a.sack.len(), a.ts), (Some(7006), 0, None));
}

#[test]
fn a_cookie_ack_with_a_tsecr_we_did_not_send_is_refused_or_harmless() {
    let t = T0 + ms(10);
    // A TSecr later than our clock, or older than any cookie still valid: as
    // a bad cookie, a reset and no connection.
    for shift in [1000i64, 64, -(3 * 60_000)] {
        let (mut h, l) = full_syn_queue(TcpConfig::default(), 1403);
        h.deliver(t, &syn(true)).unwrap();
        let sa = h.one();
        let tsecr = (sa.ts.unwrap().0 as i64 + shift) as u32;
        let r = h.deliver(t + ms(1), &completing_ack(&sa, Some(tsecr), b""));
        assert_eq!(r, Err(DropReason::TcpNoSocket), "TSecr moved by {shift}");
        assert_eq!(h.one().flags(), "R");
        assert_eq!(h.net.counters.syn_cookies_failed, 1);
        assert_eq!(h.tcp.accept(l).unwrap(), None);
    }
    // Other option bits in a plausible TSecr: the connection gets what they
    // say (as Linux: the bits are not signed), within the rules: no scaling for 0xf.
    for (bits, wscale, sack) in [(0x0f, 0, false), (0x1e, 14, true)] {
        let (mut h, l) = full_syn_queue(TcpConfig::default(), 1404);
        h.deliver(t, &syn(true)).unwrap();
        let sa = h.one();
        let tsecr = (sa.ts.unwrap().0 & !0x3f) | bits;
        h.deliver(t + ms(1), &completing_ack(&sa, Some(tsecr), b"hi")).unwrap();
        let (id, _) = h.tcp.accept(l).unwrap().expect("made");
        let info = h.tcp.info(id).unwrap();
        assert_eq!((info.snd_wscale, info.loss.sack), (wscale, sack), "bits {bits:#x}");
        if wscale == 0 {
            assert_eq!(info.rcv_wscale, 0, "scaling only when both sent the option");
        }
        assert_eq!(h.recv_all(t + ms(1), id).unwrap(), b"hi");
    }
    // Options we would not have offered: SACK when it is off, timestamps when
    // they are off. Refused, as Linux's cookie_timestamp_decode.
    for cfg in
        [TcpConfig { sack: false, ..TcpConfig::default() }, TcpConfig { timestamps: false, ..TcpConfig::default() }]
    {
        let (mut h, _) = full_syn_queue(cfg.clone(), 1405);
        h.deliver(t, &syn(true)).unwrap();
        let sa = h.one();
        assert_eq!(sa.sack_permitted, cfg.sack && cfg.timestamps);
        assert_eq!(sa.ts.is_some(), cfg.timestamps);
        let clock_guess = sa.ts.map_or(1_000_000, |(v, _)| v);
        let forged = (clock_guess & !0x3f) | 0x10 | 7;
        let r = h.deliver(t + ms(1), &completing_ack(&sa, Some(forged), b""));
        assert_eq!(r, Err(DropReason::TcpNoSocket), "{cfg:?}");
        assert_eq!(h.net.counters.syn_cookies_failed, 1);
    }
}

#[test]
fn two_stacks_through_a_cookie_handshake_recover_losses_with_sack() {
    // B's SYN queue is full, so A's SYN gets a cookie; the connection still
    // scales its windows, SACKs and timestamps, and a lossy transfer is whole.
    let mut w = Wire::new(1406);
    let l = w.b.tcp.listen(&mut w.b.net, addr(IP_B, 80), 1).unwrap();
    let spoofed = packet(Ipv4Addr::new(10, 0, 0, 9), IP_B, &seg(1, 80, 1, 0, "S", 65535), b"");
    w.b.deliver(w.now, &spoofed).unwrap();
    w.b.out();
    let c = w.a.tcp.connect(w.now, &mut w.a.net, None, addr(IP_B, 80)).unwrap();
    let mut accepted = None;
    assert!(w.run_until(secs(10), |w| {
        accepted = accepted.or_else(|| w.b.tcp.accept(l).unwrap());
        accepted.is_some()
    }));
    let (s, _) = accepted.unwrap();
    assert_eq!(w.b.net.counters.syn_cookies_received, 1);
    for (host, id) in [(&w.a, c), (&w.b, s)] {
        let i = host.tcp.info(id).unwrap();
        assert_eq!((i.snd_wscale, i.rcv_wscale, i.loss.sack, i.loss.timestamps), (1, 1, true, true));
    }
    w.loss = 0.03;
    let data = pattern(300_000, 9);
    let mut sent = 0;
    let mut got = Vec::new();
    assert!(w.run_until(secs(120), |w| {
        sent += w.a.send(w.now, c, &data[sent..]).unwrap_or(0);
        got.extend(w.b.recv_all(w.now, s).unwrap());
        got.len() == data.len()
    }));
    assert!(got == data, "the data arrived whole");
    assert!(w.lost > 0);
    assert!(w.a.tcp.info(c).unwrap().retransmissions > 0);
}
