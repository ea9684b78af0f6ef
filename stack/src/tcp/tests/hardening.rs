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
