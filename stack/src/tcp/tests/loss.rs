//! Loss recovery with SACK and timestamps against a scripted peer that agrees
//! to both: SACK blocks (RFC 2018, RFC 2883), PAWS and RTT samples (RFC 7323),
//! SACK-based recovery (RFC 6675) paced by PRR (RFC 6937), and a spurious
//! timeout undone (RFC 3522).

use super::*;

const MSS: u32 = 1000;

/// A host that connected to a scripted peer at IP_B:80 which offered SACK and
/// timestamps (MSS 1012: segments carry 1000 octets beside the 12 of the
/// timestamp option). The peer keeps a model of what it received, so its ACKs
/// carry the SACK blocks a receiver would send.
pub(super) struct Lab {
    pub h: Host,
    pub id: ConnId,
    port: u16,
    /// The peer's next sequence number (it sends no data unless told).
    seq: u32,
    /// The host's first data octet.
    pub base: u32,
    /// The peer's TSval clock (one tick per segment it sends).
    pub tsval: u32,
    /// The host's TSval the peer echoes (TS.Recent).
    pub echo: u32,
    /// Ranges received, as offsets from `base`, sorted; and the latest arrival.
    rcvd: Vec<(u32, u32)>,
    latest: u32,
}

impl Lab {
    pub(super) fn new(seed: u64) -> Lab {
        Lab::with_config(seed, TcpConfig::default())
    }

    pub(super) fn with_config(seed: u64, cfg: TcpConfig) -> Lab {
        let mut h = Host::with_config(IP_A, seed, cfg);
        let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
        let syn = h.one();
        assert!(syn.sack_permitted, "SACK-permitted offered on the SYN");
        let (host_ts, ecr) = syn.ts.expect("timestamps offered on the SYN");
        assert_eq!(ecr, 0);
        let mut s = seg(80, syn.src_port, 5000, syn.seq.wrapping_add(1), "SA", 65535);
        s.mss = Some(MSS as u16 + 12);
        s.sack_permitted = true;
        s.timestamp = Some((100, host_ts));
        h.deliver(T0 + ms(10), &packet(IP_B, IP_A, &s, b"")).unwrap();
        let ack = h.one();
        assert_eq!(ack.ts.map(|t| t.1), Some(100), "the peer's TSval echoed");
        assert_eq!(h.tcp.info(id).unwrap().snd_mss, MSS);
        let base = syn.seq.wrapping_add(1);
        Lab { h, id, port: syn.src_port, seq: 5001, base, tsval: 101, echo: ack.ts.unwrap().0, rcvd: vec![], latest: 0 }
    }

    /// The peer sends a segment (`flags`, acknowledging `ack`, an offset from
    /// `base`) with a timestamp and the given SACK blocks (offsets).
    pub(super) fn send(
        &mut self,
        now: Instant,
        ack: u32,
        sacks: &[(u32, u32)],
        tsval: u32,
        data: &[u8],
    ) -> Result<(), DropReason> {
        let mut s = seg(80, self.port, self.seq, self.base.wrapping_add(ack), "A", 65535);
        s.timestamp = Some((tsval, self.echo));
        for (i, &(l, r)) in sacks.iter().take(3).enumerate() {
            s.sack[i] = (Seq(self.base.wrapping_add(l)), Seq(self.base.wrapping_add(r)));
        }
        s.sack_count = sacks.len().min(3) as u8;
        self.seq = self.seq.wrapping_add(data.len() as u32);
        self.h.deliver(now, &packet(IP_B, IP_A, &s, data))
    }

    /// What the host sent, noting its latest TSval for the peer to echo.
    pub(super) fn out(&mut self) -> Vec<Seg> {
        let out = self.h.out();
        if let Some((v, _)) = out.last().and_then(|s| s.ts) {
            self.echo = v;
        }
        out
    }

    /// The peer receives one of the host's data segments and acknowledges it as
    /// a SACK receiver does: the block with this arrival first (RFC 2018 section 4).
    pub(super) fn receive_and_ack(&mut self, now: Instant, s: &Seg) {
        let (l, r) = (s.seq.wrapping_sub(self.base), s.seq.wrapping_sub(self.base) + s.data.len() as u32);
        self.rcvd.push((l, r));
        self.rcvd.sort();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for &(a, b) in &self.rcvd {
            match merged.last_mut() {
                Some(m) if a <= m.1 => m.1 = m.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.rcvd = merged;
        self.latest = l;
        let cum = if self.rcvd[0].0 == 0 { self.rcvd[0].1 } else { 0 };
        let mut blocks: Vec<(u32, u32)> = self.rcvd.iter().copied().filter(|&(a, _)| a > cum).collect();
        blocks.sort_by_key(|&(a, b)| !(a <= self.latest && self.latest < b));
        self.tsval += 1;
        let ts = self.tsval;
        self.send(now, cum, &blocks, ts, b"").unwrap();
    }

    /// One round trip: every segment of `flight` reaches the peer (but those
    /// `lost` says), each answered at once; returns what the host sent in reply.
    pub(super) fn round(&mut self, now: Instant, flight: &[Seg], lost: &mut dyn FnMut(u32) -> bool) -> Vec<Seg> {
        let mut sent = Vec::new();
        for s in flight {
            if s.data.is_empty() || lost(s.seq.wrapping_sub(self.base)) {
                continue;
            }
            self.receive_and_ack(now, s);
            sent.extend(self.out());
        }
        sent
    }

    pub(super) fn offsets(&self, segs: &[Seg]) -> Vec<u32> {
        segs.iter().map(|s| s.seq.wrapping_sub(self.base)).collect()
    }
}

#[test]
fn an_out_of_order_segment_is_reported_in_a_sack_block_and_a_duplicate_in_a_dsack() {
    let mut lab = Lab::new(120);
    let t = T0 + secs(1);
    let peer0 = lab.seq;
    let off = |_: &Lab, s: u32| s.wrapping_sub(peer0);
    // The peer's octets 1000..2000 arrive before 0..1000: an ACK at once, with the block.
    lab.seq = peer0 + 1000;
    lab.send(t, 0, &[], 200, &[b'b'; 1000]).unwrap();
    let a = lab.out().pop().unwrap();
    assert_eq!(a.ack, Some(peer0));
    let blocks: Vec<_> = a.sack.iter().map(|&(l, r)| (off(&lab, l), off(&lab, r))).collect();
    assert_eq!(blocks, [(1000, 2000)]);
    // Then 3000..4000: the newest block first (RFC 2018 section 4).
    lab.seq = peer0 + 3000;
    lab.send(t, 0, &[], 201, &[b'd'; 1000]).unwrap();
    let a = lab.out().pop().unwrap();
    let blocks: Vec<_> = a.sack.iter().map(|&(l, r)| (off(&lab, l), off(&lab, r))).collect();
    assert_eq!(blocks, [(3000, 4000), (1000, 2000)]);
    // 1000..2000 again: reported first as a D-SACK (RFC 2883 section 4.1.1).
    lab.seq = peer0 + 1000;
    lab.send(t, 0, &[], 202, &[b'b'; 1000]).unwrap();
    let a = lab.out().pop().unwrap();
    let blocks: Vec<_> = a.sack.iter().map(|&(l, r)| (off(&lab, l), off(&lab, r))).collect();
    assert_eq!(blocks, [(1000, 2000), (3000, 4000)]);
    // The gap fills: no blocks but the one still above RCV.NXT.
    lab.seq = peer0;
    lab.send(t, 0, &[], 203, &[b'a'; 1000]).unwrap();
    let a = lab.out().pop().unwrap();
    assert_eq!(a.ack, Some(peer0 + 2000));
    let blocks: Vec<_> = a.sack.iter().map(|&(l, r)| (off(&lab, l), off(&lab, r))).collect();
    assert_eq!(blocks, [(3000, 4000)]);
}

#[test]
fn paws_drops_a_segment_with_an_old_timestamp() {
    let mut lab = Lab::new(121);
    let t = T0 + secs(1);
    lab.send(t, 0, &[], 1000, b"new").unwrap();
    lab.h.poll(t + ms(50));
    lab.out();
    // A segment from the past: TSval 500 < TS.Recent 1000 (RFC 7323 section 5.3, R1).
    assert_eq!(lab.send(t + ms(60), 0, &[], 500, b"old"), Err(DropReason::TcpNotAcceptable));
    assert_eq!(lab.h.net.counters.paws_rejected, 1);
    let a = lab.out().pop().expect("answered with an ACK");
    assert_eq!(a.ack, Some(lab.seq - 3), "the old octets are not acknowledged");
    assert_eq!(lab.h.recv_all(t + ms(70), lab.id).unwrap(), b"new");
    // With a current TSval the same octets are taken.
    lab.seq -= 3;
    lab.send(t + ms(80), 0, &[], 1001, b"old").unwrap();
    assert_eq!(lab.h.recv_all(t + ms(90), lab.id).unwrap(), b"old");
}

/// Slow start from IW: the peer acknowledges every segment of each round
/// until `rounds` have gone, one round per millisecond from `t` (a round trip
/// RACK can measure: RFC 8985's reordering window is a quarter of it);
/// returns the last flight.
pub(super) fn grow(lab: &mut Lab, t: Instant, rounds: usize) -> Vec<Seg> {
    let mut flight = lab.out();
    for i in 0..rounds {
        flight = lab.round(t + ms(i as u64 + 1), &flight, &mut |_| false);
    }
    flight
}

#[test]
fn two_holes_are_repaired_in_one_round_trip() {
    let mut lab = Lab::new(122);
    let t = T0 + secs(1);
    lab.h.send(t, lab.id, &pattern(60_000, 1)).unwrap();
    let flight = grow(&mut lab, t, 1);
    assert_eq!(flight.len(), 8, "IW 4, doubled");
    let offs = lab.offsets(&flight);
    let (a, b) = (offs[1], offs[4]);
    // Two segments of this flight are lost; the rest arrive and are SACKed.
    let next = lab.round(t + ms(10), &flight, &mut |o| o == a || o == b);
    let resent: Vec<u32> = lab.offsets(&next).into_iter().filter(|o| *o <= offs[7]).collect();
    assert_eq!(resent, [a, b], "both holes retransmitted in the round that found them");
    assert_eq!(lab.h.net.counters.sack_recoveries, 1);
    // The retransmissions arrive: everything is acknowledged, recovery ends at ssthresh.
    let mut after = Vec::new();
    for s in &next {
        lab.receive_and_ack(t + ms(20), s);
        let info = lab.h.tcp.info(lab.id).unwrap();
        if !info.in_recovery && after.is_empty() {
            assert_eq!(info.cwnd, info.ssthresh, "RFC 6937: cwnd = ssthresh at the end of recovery");
        }
        after.extend(lab.out());
    }
    assert!(!lab.h.tcp.info(lab.id).unwrap().in_recovery);
    assert_eq!(lab.h.net.counters.timeouts, 0);
    assert!(!after.is_empty(), "new data flows on");
}

#[test]
fn prr_sends_about_one_segment_per_two_delivered() {
    let opts = SocketOptions { send_buffer: 1 << 20, ..SocketOptions::default() };
    // NewReno's halving, as RFC 6937's example.
    let cfg = TcpConfig { default_options: opts, congestion: cubic::Algorithm::NewReno, ..TcpConfig::default() };
    let mut lab = Lab::with_config(123, cfg);
    let t = T0 + secs(1);
    lab.h.send(t, lab.id, &pattern(200_000, 2)).unwrap();
    let flight = grow(&mut lab, t, 3);
    assert_eq!(flight.len(), 32);
    // The first segment is lost; 31 arrive. Count what each ACK releases.
    let mut per_ack = Vec::new();
    let mut in_recovery = false;
    for s in &flight[1..] {
        lab.receive_and_ack(t + ms(10), s);
        let n = lab.out().len();
        in_recovery |= lab.h.tcp.info(lab.id).unwrap().in_recovery;
        if in_recovery {
            per_ack.push(n);
        }
    }
    let total: usize = per_ack.iter().sum();
    let info = lab.h.tcp.info(lab.id).unwrap();
    // RecoverFS 34 segments (32 and the two of limited transmit), ssthresh 17:
    // the 29 ACKs in recovery deliver 29 segments, so PRR sends ceil(29 * 17 / 34) = 15.
    assert_eq!(info.ssthresh, 17 * MSS);
    assert_eq!(total, 15, "per ACK: {per_ack:?}");
    assert!(per_ack.iter().all(|&n| n <= 1), "no bursts: {per_ack:?}");
    assert_eq!(lab.h.net.counters.retransmitted, 1, "only the lost segment is sent again");
}

#[test]
fn a_spurious_timeout_is_undone_with_timestamps() {
    let mut lab = Lab::new(124);
    let t = T0 + secs(1);
    lab.h.send(t, lab.id, &pattern(4000, 3)).unwrap();
    let flight = lab.out();
    let original_ts = flight[0].ts.unwrap().0;
    let info = lab.h.tcp.info(lab.id).unwrap();
    let (cwnd, rto) = (info.cwnd, info.rto);
    // The ACKs are late: the timer fires and the first segment goes again.
    lab.h.poll(t + rto);
    let re = lab.out();
    assert_eq!(lab.offsets(&re), [0]);
    assert!(re[0].ts.unwrap().0 > original_ts);
    assert_eq!(lab.h.tcp.info(lab.id).unwrap().cwnd, MSS);
    // The ACK for the original flight arrives, echoing the original's TSval: the
    // timeout was spurious (RFC 3522): cwnd comes back, nothing more is resent.
    lab.echo = original_ts;
    lab.send(t + rto + ms(5), 2000, &[], 300, b"").unwrap();
    assert_eq!(lab.h.net.counters.spurious_rtos, 1);
    assert!(lab.h.tcp.info(lab.id).unwrap().cwnd >= cwnd);
    lab.out();
    lab.send(t + rto + ms(6), 4000, &[], 301, b"").unwrap();
    assert!(lab.out().is_empty(), "segments 2 to 4 are not sent again");
    assert_eq!(lab.h.net.counters.retransmitted, 1);
}

#[test]
fn timestamps_sample_the_round_trip_of_a_retransmitted_segment() {
    let mut lab = Lab::new(125);
    let t = T0 + secs(1);
    lab.h.send(t, lab.id, &pattern(1000, 4)).unwrap();
    lab.out();
    let rto = lab.h.tcp.info(lab.id).unwrap().rto;
    lab.h.poll(t + rto);
    let re = lab.out();
    assert_eq!(re.len(), 1);
    let srtt = lab.h.tcp.info(lab.id).unwrap().srtt;
    // The retransmission is acknowledged 80 ms later, its TSval echoed: Karn
    // forbids timing it without timestamps; with them it is a sample (RFC 7323 section 4).
    lab.send(t + rto + ms(80), 1000, &[], 400, b"").unwrap();
    let after = lab.h.tcp.info(lab.id).unwrap().srtt;
    assert_ne!(after, srtt);
    assert!(after.unwrap() > srtt.unwrap());
}

#[test]
fn options_are_off_when_configured_off_or_not_offered() {
    let cfg = TcpConfig { sack: false, timestamps: false, ..TcpConfig::default() };
    let mut h = Host::with_config(IP_A, 126, cfg);
    h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    let syn = h.one();
    assert!(!syn.sack_permitted && syn.ts.is_none());
    // A SYN,ACK answers only what the SYN offered.
    let mut h = Host::new(IP_A, 127);
    h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    let mut s = seg(4000, 80, 1, 0, "S", 1000);
    s.sack_permitted = true;
    h.deliver(T0, &packet(IP_B, IP_A, &s, b"")).unwrap();
    let synack = h.one();
    assert!(synack.sack_permitted && synack.ts.is_none());
}

/// RFC 8985 section 7: the tail of a flight is lost, so no ACK comes. After
/// PTO = 2 * SRTT (7.2) the last segment goes again as a probe (7.3); its SACK
/// lets RACK (6.2) find the segment before it lost, repaired in fast recovery.
#[test]
fn a_tail_loss_probe_turns_a_timeout_into_fast_recovery() {
    let mut lab = Lab::new(128);
    let t = T0 + secs(1);
    lab.h.send(t, lab.id, &pattern(4000, 5)).unwrap();
    let flight = lab.out();
    assert_eq!(flight.len(), 4);
    // The first two arrive; the last two (the tail) are lost.
    let t1 = t + ms(10);
    for s in &flight[..2] {
        lab.receive_and_ack(t1, s);
    }
    lab.out();
    let srtt = lab.h.tcp.info(lab.id).unwrap().srtt.unwrap();
    // RFC 8985 section 7.2: the probe timeout is 2 * SRTT, well before the RTO.
    lab.h.poll(t1 + (srtt * 2 - ms(1)));
    assert!(lab.out().is_empty(), "not before PTO");
    lab.h.poll(t1 + srtt * 2);
    let probe = lab.out();
    assert_eq!(lab.offsets(&probe), [3000], "nothing new to send: the last segment again");
    assert_eq!(lab.h.net.counters.tail_loss_probes, 1);
    // The probe's SACK shows the segment before it lost (RACK): fast recovery
    // repairs it at once, without waiting for the timer.
    lab.receive_and_ack(t1 + srtt * 2 + ms(10), &probe[0]);
    let repair = lab.out();
    assert_eq!(lab.offsets(&repair), [2000]);
    lab.receive_and_ack(t1 + srtt * 2 + ms(20), &repair[0]);
    assert_eq!(lab.h.tcp.info(lab.id).unwrap().unacked, 0);
    assert_eq!(lab.h.net.counters.timeouts, 0);
    assert_eq!(lab.h.net.counters.sack_recoveries, 1);
}

#[test]
fn after_a_timeout_sacked_segments_are_not_sent_again() {
    let mut lab = Lab::new(129);
    let t = T0 + secs(1);
    lab.h.send(t, lab.id, &pattern(4000, 6)).unwrap();
    let flight = lab.out();
    assert_eq!(flight.len(), 4);
    // Segments 3 and 4 arrive (SACKed: too little for recovery); 1 and 2 are lost.
    lab.receive_and_ack(t + ms(10), &flight[2]);
    lab.receive_and_ack(t + ms(10), &flight[3]);
    lab.out();
    let rto = lab.h.tcp.info(lab.id).unwrap().rto;
    lab.h.poll(t + ms(10) + rto);
    let re = lab.out();
    assert_eq!(lab.offsets(&re), [0], "the timeout resends the first segment");
    assert_eq!(lab.h.tcp.info(lab.id).unwrap().loss.sacked, 2000);
    // Its ACK lets slow start go on: segment 2 is resent, 3 and 4 are skipped.
    lab.receive_and_ack(t + ms(20) + rto, &re[0]);
    let next = lab.out();
    assert_eq!(lab.offsets(&next), [1000], "no go-back-N over what the peer holds");
    lab.receive_and_ack(t + ms(30) + rto, &next[0]);
    assert_eq!(lab.h.tcp.info(lab.id).unwrap().unacked, 0);
    assert_eq!(lab.h.net.counters.retransmitted, 2);
}

/// RFC 8985 section 6.2 (steps 2 and 5): a retransmission has its own
/// transmit time; once data sent after it is SACKed and RACK.rtt has passed,
/// it is lost, and sent again without waiting for the retransmission timer.
#[test]
fn a_lost_retransmission_is_sent_again_without_a_timeout() {
    let mut lab = Lab::new(130);
    let t = T0 + secs(1);
    lab.h.send(t, lab.id, &pattern(60_000, 7)).unwrap();
    let flight = grow(&mut lab, t, 1);
    let a = lab.offsets(&flight)[1];
    let next = lab.round(t + ms(10), &flight, &mut |o| o == a);
    assert!(lab.offsets(&next).contains(&a), "fast retransmit");
    assert!(lab.offsets(&next).iter().any(|&o| o > a + 8 * MSS), "new data went out after it");
    // The retransmission is lost too; the new data sent after it arrives.
    let mut first = true;
    let again = lab.round(t + ms(20), &next, &mut |o| {
        let lose = first && o == a;
        first &= !lose;
        lose
    });
    let offs = lab.offsets(&again);
    assert!(
        offs.contains(&a),
        "sent a third time once later data is SACKed (RACK): {offs:?}, next {:?}",
        lab.offsets(&next)
    );
    lab.round(t + ms(30), &again, &mut |_| false);
    assert_eq!(lab.h.net.counters.lost_retransmits, 1, "RFC 8985 section 6.2: found lost by time");
    assert_eq!(lab.h.net.counters.timeouts, 0);
    assert!(lab.h.tcp.info(lab.id).unwrap().unacked < 20 * MSS);
}

#[test]
fn nothing_counts_as_retransmitted_before_anything_is() {
    // HighRxt started at sequence 0, which is ahead of SND.UNA for half of all
    // ISSs: `ss -ti` showed billions of octets retransmitted on a new
    // connection, and the pipe (RFC 6675) could count holes as resent.
    for seed in 0..8 {
        let mut h = Host::new(IP_A, 1400 + seed);
        let id = h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 5000)), addr(IP_B, 6000)).unwrap();
        let loss = h.tcp.info(id).unwrap().loss;
        assert_eq!((loss.retrans_out, loss.lost), (0, 0), "seed {seed}: {loss:?}");
    }
}

#[test]
fn a_closed_window_over_sacked_data_still_ends_in_a_timeout() {
    // Found by fuzzing (frame_path): the peer acknowledges up to the start of a
    // block it SACKed and closes its window, then falls silent. The timeout
    // (zero window) handed over to the persist timer and went back to SND.UNA;
    // sending then skipped the SACKed block, so SND.NXT passed SND.UNA, the
    // persist timer saw data in flight and left it to a retransmission timer
    // that no longer ran: it re-armed every RTO forever, never probing, never
    // giving up. The R2 limit (RFC 9293 MUST-20) must end it.
    let mut lab = Lab::new(131);
    let t = T0 + secs(1);
    lab.h.send(t, lab.id, &pattern(4000, 7)).unwrap();
    assert_eq!(lab.out().len(), 4);
    lab.tsval += 1;
    lab.send(t + ms(10), 0, &[(2000, 3000)], lab.tsval, b"").unwrap();
    let mut s = seg(80, lab.port, lab.seq, lab.base.wrapping_add(2000), "A", 0);
    s.timestamp = Some((lab.tsval + 1, lab.echo));
    s.sack[0] = (Seq(lab.base.wrapping_add(2000)), Seq(lab.base.wrapping_add(3000)));
    s.sack_count = 1;
    lab.h.deliver(t + ms(11), &packet(IP_B, IP_A, &s, b"")).unwrap();
    lab.out();
    let info = lab.h.tcp.info(lab.id).unwrap();
    assert_eq!((info.snd_wnd, info.unacked, info.loss.sacked), (0, 2000, 1000));
    let mut polls = 0;
    let mut last = t + ms(11);
    while let Some(at) = lab.h.tcp.poll_at() {
        assert!(at >= last, "a deadline in the past: {at:?} before {last:?}");
        polls += 1;
        assert!(polls < 100, "timers still running after {polls} expiries, next at {at:?}");
        lab.h.poll(at);
        lab.out();
        last = at;
    }
    assert_eq!(lab.h.tcp.take_error(lab.id).unwrap(), Some(TcpError::TimedOut));
    assert!(last - t > secs(60), "given up only after the backed-off retries: {:?}", last - t);
}

/// A flight of four segments sent at `t`, with a 10 ms RTT known from the
/// handshake (RACK.min_RTT 10 ms, so RACK.reo_wnd is 2.5 ms), the second
/// segment SACKed at `t` + 10 ms, the first not yet arrived.
fn second_overtakes_first(seed: u64, t: Instant) -> (Lab, Vec<Seg>) {
    let mut lab = Lab::new(seed);
    lab.h.send(t, lab.id, &pattern(4000, 8)).unwrap();
    let flight = lab.out();
    assert_eq!(flight.len(), 4);
    lab.receive_and_ack(t + ms(10), &flight[1]);
    assert!(lab.out().is_empty(), "one segment SACKed: nothing lost yet");
    assert_eq!(lab.h.tcp.info(lab.id).unwrap().loss.reo_wnd, Duration::from_micros(2500), "min_RTT / 4");
    (lab, flight)
}

/// RFC 8985 section 6.2 steps 4 and 5: a segment overtaken by a later one is
/// not lost while less than RACK.rtt + RACK.reo_wnd has passed since it left;
/// arriving within that window it is never sent again, and the late arrival
/// shows reordering (step 3).
#[test]
fn reordering_within_the_reordering_window_is_not_a_loss() {
    let t = T0 + secs(1);
    let (mut lab, flight) = second_overtakes_first(131, t);
    // The first arrives 2 ms late: 12 ms after it left, inside 10 + 2.5 ms.
    lab.receive_and_ack(t + ms(12), &flight[0]);
    lab.h.poll(t + ms(13));
    assert!(lab.out().is_empty(), "nothing sent again");
    let info = lab.h.tcp.info(lab.id).unwrap();
    assert!(info.loss.reordering_seen);
    assert!(!info.in_recovery);
    assert_eq!(lab.h.net.counters.retransmitted, 0);
    assert_eq!(lab.h.net.counters.sack_recoveries, 0);
    assert_eq!(lab.h.net.counters.rack_timeouts, 0);
}

/// RFC 8985 section 6.2 step 5: the reordering timer is armed for the time
/// the overtaken segment becomes lost (xmit_ts + RACK.rtt + RACK.reo_wnd); it
/// fires with no further ACK, and recovery resends the segment, long before
/// the retransmission timeout (200 ms).
#[test]
fn the_reordering_timer_finds_a_loss_without_another_ack() {
    let t = T0 + secs(1);
    let (mut lab, _) = second_overtakes_first(132, t);
    lab.h.poll(t + Duration::from_micros(12_499));
    assert!(lab.out().is_empty(), "not before 10 ms + 2.5 ms after it left");
    lab.h.poll(t + Duration::from_micros(12_500));
    let re = lab.out();
    assert_eq!(lab.offsets(&re), [0], "the first segment, found lost by the timer");
    assert_eq!(lab.h.net.counters.rack_timeouts, 1);
    assert_eq!(lab.h.net.counters.sack_recoveries, 1);
    assert_eq!(lab.h.net.counters.timeouts, 0);
}

/// RFC 8985 section 6.2 step 4: a D-SACK shows a retransmission was needless
/// (the original was only late): RACK.reo_wnd_mult grows by one, so the
/// window is 2 * min_RTT / 4 from then on, and the same lateness next time is
/// no longer taken for a loss.
#[test]
fn a_dsack_widens_the_reordering_window() {
    let t = T0 + secs(1);
    let (mut lab, flight) = second_overtakes_first(133, t);
    lab.h.poll(t + Duration::from_micros(12_500));
    let re = lab.out();
    assert_eq!(lab.offsets(&re), [0], "taken for lost at 12.5 ms");
    // The original was 3 ms late: it arrives, then the rest, then the
    // retransmission, which the peer reports as a duplicate (RFC 2883).
    lab.receive_and_ack(t + ms(13), &flight[0]);
    lab.receive_and_ack(t + ms(13), &flight[2]);
    lab.receive_and_ack(t + ms(13), &flight[3]);
    lab.out();
    assert!(!lab.h.tcp.info(lab.id).unwrap().in_recovery);
    lab.tsval += 1;
    lab.send(t + ms(14), 4000, &[(0, 1000)], lab.tsval, b"").unwrap();
    let loss = lab.h.tcp.info(lab.id).unwrap().loss;
    assert_eq!(loss.dsacks, 1);
    assert_eq!(loss.reo_wnd, Duration::from_millis(5), "2 * min_RTT / 4");
    // The next flight: the second segment again overtakes the first, which
    // is again 3 ms late; this time it is inside the window.
    let t2 = t + ms(100);
    lab.h.send(t2, lab.id, &pattern(2000, 9)).unwrap();
    let flight = lab.out();
    assert_eq!(flight.len(), 2);
    lab.receive_and_ack(t2 + ms(10), &flight[1]);
    lab.h.poll(t2 + ms(13));
    assert!(lab.out().is_empty(), "3 ms late is inside the wider window");
    lab.receive_and_ack(t2 + ms(13), &flight[0]);
    lab.h.poll(t2 + ms(20));
    assert!(lab.out().is_empty());
    assert_eq!(lab.h.net.counters.retransmitted, 1, "only the first, needless, retransmission");
    assert_eq!(lab.h.tcp.info(lab.id).unwrap().unacked, 0);
}
