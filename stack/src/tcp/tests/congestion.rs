//! Congestion control against the scripted SACK and timestamps peer of
//! `loss.rs`: spurious congestion events undone (RFC 9438 section 4.9, with
//! Eifel, RFC 3522, and D-SACK, RFC 3708) and HyStart++ (RFC 9406) leaving
//! slow start when the round trip grows, and only then.

use super::loss::{grow, Lab};
use super::*;

const MSS: u32 = 1000;

fn big_buffers(cfg: TcpConfig) -> TcpConfig {
    let opts = SocketOptions { send_buffer: 1 << 20, ..SocketOptions::default() };
    TcpConfig { default_options: opts, ..cfg }
}

/// A connection in slow start with 16 segments in flight, all sent half a
/// millisecond before the instant it returns, when their ACKs come (`grow`
/// runs one round per millisecond from `t`): a round trip RACK can measure,
/// inside one tick of the timestamp clock.
fn sixteen_in_flight(seed: u64, t: Instant) -> (Lab, Vec<Seg>, Instant) {
    let mut lab = Lab::with_config(seed, big_buffers(TcpConfig::default()));
    lab.h.send(t, lab.id, &pattern(300_000, 7)).unwrap();
    let flight = grow(&mut lab, t, 2);
    assert_eq!(flight.len(), 16);
    (lab, flight, t + ms(2) + Duration::from_micros(500))
}

/// What `sent` holds before the retransmission of `first`, in sending order.
fn before_retransmission(sent: &[Seg], first: &Seg) -> Vec<Seg> {
    sent.iter().take_while(|s| s.seq != first.seq).cloned().collect()
}

#[test]
fn a_spurious_fast_retransmit_is_undone_when_a_dsack_reports_the_retransmission() {
    // RFC 3708 section 3 (RFC 2883 section 4): every retransmitted octet of the
    // recovery came back as a duplicate, so nothing was lost; RFC 9438 section
    // 4.9: cwnd, ssthresh and CUBIC's state come back. Original and
    // retransmission leave in the same millisecond, so their TSvals are equal
    // and Eifel cannot tell: the D-SACK decides.
    let (mut lab, flight, t) = sixteen_in_flight(130, T0 + secs(1));
    let before = lab.h.tcp.info(lab.id).unwrap();
    assert_eq!(before.cwnd, 16 * MSS);
    let first = flight[0].seq.wrapping_sub(lab.base);
    // The first segment is held back (reordered); the other 15 arrive.
    let sent = lab.round(t, &flight, &mut |o| o == first);
    let resent: Vec<u32> = lab.offsets(&sent).into_iter().filter(|&o| o <= first).collect();
    assert_eq!(resent, [first], "the held-back segment is fast-retransmitted");
    let during = lab.h.tcp.info(lab.id).unwrap();
    assert!(during.in_recovery);
    assert!(during.ssthresh < before.ssthresh, "CUBIC's reduction");
    // The two segments limited transmit sent before it arrive, then the
    // original: the ACK covers all that was sent before recovery began, which
    // ends it. Nothing sent after the retransmission has arrived.
    let lt = before_retransmission(&sent, &flight[0]);
    assert_eq!(lt.len(), 2, "RFC 3042");
    lab.round(t, &lt, &mut |_| false);
    lab.receive_and_ack(t, &flight[0]);
    lab.out();
    assert!(!lab.h.tcp.info(lab.id).unwrap().in_recovery);
    assert_eq!(lab.h.net.counters.dsack_undos, 0, "not yet: the retransmission is still out");
    // Then the retransmission, a duplicate: the peer's ACK carries a D-SACK.
    let cum = lt[1].seq.wrapping_sub(lab.base) + MSS;
    lab.tsval += 1;
    lab.send(t, cum, &[(first, first + MSS)], lab.tsval, b"").unwrap();
    let after = lab.h.tcp.info(lab.id).unwrap();
    assert_eq!(lab.h.net.counters.dsack_undos, 1);
    assert_eq!(after.loss.undos, 1);
    assert_eq!(after.ssthresh, before.ssthresh, "prior_ssthresh (still slow start's)");
    assert_eq!(after.cwnd, before.cwnd, "prior_cwnd");
    assert_eq!(after.loss.hystart, "ss", "HyStart++'s state comes back too");
    assert_eq!(lab.h.net.counters.retransmitted, 1);
}

#[test]
fn a_recovery_with_one_real_loss_is_not_undone_by_the_other_retransmissions_dsack() {
    // RFC 3708 section 3: only when *all* retransmissions are reported twice.
    // Segments 0 and 3 are held back and both retransmitted; 0 was only
    // reordered (its original arrives) but 3 was lost.
    let (mut lab, flight, t) = sixteen_in_flight(131, T0 + secs(1));
    let offs = lab.offsets(&flight);
    let (a, b) = (offs[0], offs[3]);
    let sent = lab.round(t, &flight, &mut |o| o == a || o == b);
    let resent: Vec<u32> = lab.offsets(&sent).into_iter().filter(|&o| o <= offs[15]).collect();
    assert_eq!(resent, [a, b]);
    let reduced = lab.h.tcp.info(lab.id).unwrap().ssthresh;
    // Limited transmit's two segments arrive, the original of 0, then the
    // retransmission of 3, which ends the recovery.
    let lt = before_retransmission(&sent, &flight[0]);
    lab.round(t, &lt, &mut |_| false);
    lab.receive_and_ack(t, &flight[0]);
    let rxt_b = sent.iter().find(|s| s.seq == flight[3].seq).unwrap().clone();
    lab.receive_and_ack(t, &rxt_b);
    lab.out();
    assert!(!lab.h.tcp.info(lab.id).unwrap().in_recovery);
    // The retransmission of 0 arrives as a duplicate: reported, but 3's was needed.
    let cum = lt[1].seq.wrapping_sub(lab.base) + MSS;
    lab.tsval += 1;
    lab.send(t, cum, &[(a, a + MSS)], lab.tsval, b"").unwrap();
    let info = lab.h.tcp.info(lab.id).unwrap();
    assert_eq!(lab.h.net.counters.retransmitted, 2, "no other retransmission muddles the count");
    assert_eq!(info.loss.dsacks, 1);
    assert_eq!(lab.h.net.counters.dsack_undos + lab.h.net.counters.ts_undos, 0);
    assert_eq!(info.loss.undos, 0);
    assert!(info.ssthresh <= reduced + MSS, "the reduction stands");
}

#[test]
fn a_spurious_fast_retransmit_is_undone_by_eifel_when_the_original_arrives_first() {
    // RFC 3522 section 2: the first ACK that acknowledges the retransmitted
    // segment echoes the original's TSval, older than the retransmission's.
    let (mut lab, flight, t) = sixteen_in_flight(132, T0 + secs(1));
    let before = lab.h.tcp.info(lab.id).unwrap();
    let first = flight[0].seq.wrapping_sub(lab.base);
    // The rest arrives 10 ms later: the retransmission's TSval is 10 ms newer.
    let sent = lab.round(t + ms(10), &flight, &mut |o| o == first);
    let rxt = sent.iter().find(|s| s.seq == flight[0].seq).expect("fast retransmit");
    assert!(rxt.ts.unwrap().0 > flight[0].ts.unwrap().0);
    assert!(lab.h.tcp.info(lab.id).unwrap().in_recovery);
    // The original fills the hole; the peer echoes its TSval (RFC 7323 section 4.3).
    lab.echo = flight[0].ts.unwrap().0;
    lab.receive_and_ack(t + ms(11), &flight[0]);
    let after = lab.h.tcp.info(lab.id).unwrap();
    assert_eq!(lab.h.net.counters.ts_undos, 1);
    assert!(!after.in_recovery);
    assert_eq!(after.ssthresh, before.ssthresh, "prior_ssthresh");
    // prior_cwnd, then this ACK's own growth: 16 segments acknowledged, at
    // most L = 8 SMSS of it counted (RFC 9406 section 4.3).
    assert_eq!(after.cwnd, before.cwnd + 8 * MSS);
    assert_eq!(lab.h.net.counters.retransmitted, 1);
}

#[test]
fn a_repeated_dsack_counts_once_towards_every_retransmission_reported() {
    // RFC 3708 section 3: the recovery is spurious when every retransmission
    // came back as a duplicate. Segments 0 and 3 are retransmitted; 3 was
    // really lost. The D-SACK of 0's retransmission arrives twice (the ACK
    // duplicated on the way): still only 0's is reported, 3's never.
    let (mut lab, flight, t) = sixteen_in_flight(134, T0 + secs(1));
    let offs = lab.offsets(&flight);
    let (a, b) = (offs[0], offs[3]);
    let sent = lab.round(t, &flight, &mut |o| o == a || o == b);
    let resent: Vec<u32> = lab.offsets(&sent).into_iter().filter(|&o| o <= offs[15]).collect();
    assert_eq!(resent, [a, b]);
    let reduced = lab.h.tcp.info(lab.id).unwrap().ssthresh;
    let lt = before_retransmission(&sent, &flight[0]);
    lab.round(t, &lt, &mut |_| false);
    lab.receive_and_ack(t, &flight[0]);
    // 3's retransmission has not arrived yet; 0's comes as a duplicate.
    let cum = a + 3 * MSS;
    lab.tsval += 1;
    let sacked = (offs[4], lt[1].seq.wrapping_sub(lab.base) + MSS);
    lab.send(t, cum, &[(a, a + MSS), sacked], lab.tsval, b"").unwrap();
    lab.send(t, cum, &[(a, a + MSS), sacked], lab.tsval, b"").unwrap();
    lab.out();
    let info = lab.h.tcp.info(lab.id).unwrap();
    assert_eq!(info.loss.dsacks, 2, "both copies seen as D-SACKs");
    assert_eq!(lab.h.net.counters.dsack_undos + lab.h.net.counters.ts_undos, 0, "3's retransmission was needed");
    assert_eq!(info.loss.undos, 0);
    assert!(info.ssthresh <= reduced + MSS, "the reduction stands");
}

#[test]
fn eifel_waits_for_the_ack_that_covers_the_fast_retransmission() {
    // RFC 3522 section 3.2: the ACK Eifel looks at is the first to acknowledge
    // the retransmitted segment. One that acknowledges only part of it (the
    // original's first half, re-segmented on the way) echoes the original's
    // TSval but says nothing of the retransmission.
    let (mut lab, flight, t) = sixteen_in_flight(135, T0 + secs(1));
    let first = flight[0].seq.wrapping_sub(lab.base);
    let sent = lab.round(t + ms(10), &flight, &mut |o| o == first);
    let rxt = sent.iter().find(|s| s.seq == flight[0].seq).expect("fast retransmit").clone();
    let reduced = lab.h.tcp.info(lab.id).unwrap().ssthresh;
    lab.echo = flight[0].ts.unwrap().0;
    lab.tsval += 1;
    let sacked = (first + MSS, lab.offsets(&flight)[15] + MSS);
    lab.send(t + ms(11), first + MSS / 2, &[sacked], lab.tsval, b"").unwrap();
    lab.out();
    assert_eq!(lab.h.net.counters.ts_undos, 0, "the retransmission is not acknowledged yet");
    // The retransmission arrives; the ACK echoes its TSval, not older.
    lab.echo = rxt.ts.unwrap().0;
    lab.tsval += 1;
    let lt = before_retransmission(&sent, &flight[0]);
    let end = lt[1].seq.wrapping_sub(lab.base) + MSS;
    lab.send(t + ms(21), end, &[], lab.tsval, b"").unwrap();
    lab.out();
    let info = lab.h.tcp.info(lab.id).unwrap();
    assert_eq!(lab.h.net.counters.ts_undos, 0, "the retransmission was needed");
    assert_eq!(info.loss.undos, 0);
    assert!(info.ssthresh <= reduced + MSS, "the reduction stands");
}

/// A connection in CUBIC's avoidance after a real loss repaired by fast
/// recovery, with a flight out; returns it, the flight and the time.
fn in_avoidance(seed: u64) -> (Lab, Vec<Seg>, Instant) {
    let (mut lab, flight, t) = sixteen_in_flight(seed, T0 + secs(1));
    let first = flight[0].seq.wrapping_sub(lab.base);
    let mut next = lab.round(t, &flight, &mut |o| o == first);
    let mut now = t;
    for _ in 0..3 {
        now += ms(50);
        next = lab.round(now, &next, &mut |_| false);
    }
    (lab, next, now)
}

#[test]
fn a_spurious_timeout_undone_leaves_cubic_as_if_it_never_happened() {
    // RFC 9438 section 4.9 (detected by Eifel, RFC 3522): cwnd, ssthresh and
    // CUBIC's W_max, K, epoch start and W_est come back, so the ACK that
    // proves the timeout spurious grows cwnd exactly as it does on a twin
    // connection whose timer never fired. (Restoring cwnd and ssthresh alone
    // would leave W_max cut by fast convergence and restart the epoch.)
    let (mut lab, next, now) = in_avoidance(133);
    let (mut twin, twin_next, _) = in_avoidance(133);
    assert_eq!(lab.offsets(&next), twin.offsets(&twin_next));
    let before = lab.h.tcp.info(lab.id).unwrap();
    assert!(!before.in_recovery && before.ssthresh < u32::MAX / 2 && before.cwnd >= before.ssthresh);
    // The flight's ACKs are late: the timer fires on one connection.
    lab.h.poll(now + before.rto);
    assert_eq!(lab.out().len(), 1);
    assert_eq!(lab.h.tcp.info(lab.id).unwrap().cwnd, MSS);
    // The ACK of the originals arrives on both, echoing their TSval.
    let late = now + before.rto + ms(1);
    for (l, s) in [(&mut lab, &next[0]), (&mut twin, &twin_next[0])] {
        l.echo = s.ts.unwrap().0;
        l.receive_and_ack(late, s);
    }
    let (after, other) = (lab.h.tcp.info(lab.id).unwrap(), twin.h.tcp.info(twin.id).unwrap());
    assert_eq!(lab.h.net.counters.spurious_rtos, 1);
    assert_eq!(after.ssthresh, before.ssthresh);
    assert!(after.cwnd > before.cwnd, "grown by the ACK: {} {}", after.cwnd, before.cwnd);
    assert_eq!((after.cwnd, after.ssthresh), (other.cwnd, other.ssthresh));
}

/// One round trip for HyStart++: every segment of `flight`, sent at `sent_at`,
/// is acknowledged alone `rtt` later, echoing its own TSval (so each ACK gives
/// the sample `rtt`, RFC 7323 section 4). Returns the next flight, all sent
/// at `sent_at + rtt`.
fn timed_round(lab: &mut Lab, sent_at: Instant, rtt: Duration, flight: &[Seg]) -> Vec<Seg> {
    let mut next = Vec::new();
    for s in flight {
        let end = s.seq.wrapping_sub(lab.base) + s.data.len() as u32;
        lab.echo = s.ts.unwrap().0;
        lab.tsval += 1;
        lab.send(sent_at + rtt, end, &[], lab.tsval, b"").unwrap();
        next.extend(lab.h.out());
    }
    next
}

/// Slow start from IW through the round trips of `rtts`, in order; returns
/// cwnd (in segments) and HyStart++'s phase after each round.
fn slow_start(cfg: TcpConfig, seed: u64, rtts: &[u64]) -> (Lab, Vec<(u32, &'static str)>) {
    let mut lab = Lab::with_config(seed, big_buffers(cfg));
    let mut now = T0 + secs(1);
    lab.h.send(now, lab.id, &pattern(1_000_000, 9)).unwrap();
    let mut flight = lab.h.out();
    let mut seen = Vec::new();
    for &rtt in rtts {
        flight = timed_round(&mut lab, now, ms(rtt), &flight);
        now += ms(rtt);
        let info = lab.h.tcp.info(lab.id).unwrap();
        seen.push((info.cwnd / MSS, info.loss.hystart));
    }
    (lab, seen)
}

#[test]
fn hystart_leaves_slow_start_when_the_round_trip_grows_then_css_then_avoidance() {
    // RFC 9406 section 4.2 with section 4.3's constants, for both algorithms.
    // Flights of 4, 8, 16 segments at 50 ms, then the queue fills: 57 ms,
    // past 50 + max(4, min(50 / 8, 16)) = 56.25 ms. HyStart++'s rounds end
    // when SND.NXT as of the round's start is acknowledged (windowEnd, taken
    // before that ACK's own sending, as Linux's HyStart does), so they run
    // behind these flights: the round after the third flight's holds its last
    // 6 samples at 50 ms then 18 at 57 ms, minimum 50: no exit. The next
    // round's 8th sample (N_RTT_SAMPLE), the fourth flight's 26th ACK, exits
    // at cwnd 32 + 26 = 58 segments; its other 6 ACKs add a quarter segment
    // each (CSS_GROWTH_DIVISOR 4): 59.5. Then CSS rounds at a quarter of slow
    // start's pace, the peer's window (65 segments) bounding the flights:
    // + 59/4 = 74.25, + 65/4 = 90.5, 106.75, 123; the fifth CSS round
    // (CSS_ROUNDS, the partial first one counted) ends during the ninth
    // flight: ssthresh = cwnd, congestion avoidance.
    for alg in [cubic::Algorithm::Cubic, cubic::Algorithm::NewReno] {
        let cfg = TcpConfig { congestion: alg, ..TcpConfig::default() };
        let (lab, seen) = slow_start(cfg, 140, &[50, 50, 50, 57, 57, 57, 57, 57, 57]);
        let cwnds: Vec<u32> = seen.iter().map(|s| s.0).collect();
        let phases: Vec<&str> = seen.iter().map(|s| s.1).collect();
        assert_eq!(cwnds[..8], [8, 16, 32, 59, 74, 90, 106, 123], "{alg:?}");
        assert_eq!(phases, ["ss", "ss", "ss", "css", "css", "css", "css", "css", "off"], "{alg:?}");
        assert_eq!(lab.h.net.counters.hystart_delay_detect, 1);
        assert_eq!(lab.h.net.counters.hystart_delay_cwnd, 58);
        let info = lab.h.tcp.info(lab.id).unwrap();
        assert!(info.ssthresh > 123 * MSS && info.ssthresh <= info.cwnd, "{alg:?} {info:?}");
    }
}

#[test]
fn hystart_stays_in_slow_start_while_the_round_trip_is_flat_or_grows_less_than_the_threshold() {
    // RFC 9406 section 4.2: 50 ms throughout, or +6 ms (under RttThresh
    // 6.25 ms), never exits: cwnd doubles each round until the peer's window
    // (65 segments) bounds the flight, then grows by one segment per ACK.
    for rtts in [[50; 7], [50, 50, 50, 56, 56, 56, 56]] {
        let (lab, seen) = slow_start(TcpConfig::default(), 141, &rtts);
        let cwnds: Vec<u32> = seen.iter().map(|s| s.0).collect();
        assert_eq!(cwnds, [8, 16, 32, 64, 128, 193, 258], "{rtts:?}");
        assert!(seen.iter().all(|s| s.1 == "ss"), "{seen:?}");
        assert_eq!(lab.h.net.counters.hystart_delay_detect, 0);
    }
    // And with HyStart++ off, the rising round trip changes nothing either.
    let cfg = TcpConfig { hystart: false, ..TcpConfig::default() };
    let (_, seen) = slow_start(cfg, 142, &[50, 50, 50, 57, 57, 57, 57]);
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [8, 16, 32, 64, 128, 193, 258]);
    assert!(seen.iter().all(|s| s.1 == "off"));
}
