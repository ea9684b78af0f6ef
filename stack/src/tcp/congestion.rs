//! Congestion control: RFC 5681 slow start and congestion avoidance, fast
//! retransmit on the third duplicate ACK, and RFC 6582 NewReno fast recovery
//! (RFC 9293 section 3.8.2, MUST-19). All quantities are in bytes.
//!
//! The connection tells congestion control about ACKs ([`Congestion::on_ack`],
//! [`Congestion::on_dup_ack`]), timeouts, idle restarts and MSS changes, and
//! reads the congestion window; congestion control keeps its own state
//! (duplicate-ACK count, recovery point) and answers with an [`AckAction`].
//! How avoidance grows cwnd and how far a loss cuts ssthresh is the
//! [`CongestionAlgorithm`]'s (NewReno or CUBIC, `cubic.rs`); SACK-based
//! recovery (RFC 6675, PRR) drives the calls from `conn/loss.rs`. Slow start
//! runs HyStart++ (RFC 9406, `hystart.rs`) when configured. A reduction that
//! proves spurious is undone from a [`Snapshot`] taken before it (RFC 9438
//! section 4.9).

use super::cubic::{AlgState, Algorithm, CongestionAlgorithm};
use super::hystart::{self, HyStart};
use super::seq::Seq;
use crate::time::{Duration, Instant};

#[derive(Debug)]
pub struct Congestion {
    /// How avoidance grows cwnd and how far a loss cuts it (NewReno, CUBIC).
    alg: Box<dyn CongestionAlgorithm>,
    /// The time and SRTT of the event being handled (`clock`).
    now: Instant,
    srtt: Duration,
    cwnd: u32,
    ssthresh: u32,
    /// SMSS: the effective send MSS.
    smss: u32,
    /// RFC 6582 "recover": the highest sequence number sent when loss was detected.
    recover: Seq,
    /// In NewReno fast recovery.
    in_recovery: bool,
    /// Duplicate ACKs seen in a row (RFC 5681 section 2 definition).
    dupacks: u32,
    /// HyStart++ in slow start (RFC 9406).
    hystart: HyStart,
    /// The RTT sample the ACK being handled gave, if any (HyStart++'s currRTT).
    rtt_sample: Option<Duration>,
    /// cwnd when HyStart++ last saw the delay increase, until the connection takes it (for counters).
    hystart_exit: Option<u32>,
}

/// The congestion state before a reduction, to put back if it proves spurious
/// (RFC 9438 section 4.9's prior_cwnd, prior_ssthresh and the algorithm's own
/// prior_ values; RFC 6582's recover and HyStart++'s state too). A plain value.
#[derive(Copy, Clone, Debug)]
pub struct Snapshot {
    cwnd: u32,
    ssthresh: u32,
    recover: Seq,
    alg: AlgState,
    hystart: HyStart,
}

/// What the sender must do after an ACK, as congestion control decides.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AckAction {
    Nothing,
    /// The third duplicate ACK (RFC 5681 section 3.2 step 2): retransmit the
    /// first unacknowledged segment now.
    FastRetransmit,
    /// A partial ACK in recovery (RFC 6582 section 3.2 step 5): retransmit the
    /// first unacknowledged segment.
    RetransmitFirst,
}

/// RFC 5681 section 3.1, equation 1: IW = min(4*SMSS, max(2*SMSS, 4380)).
pub fn initial_window(smss: u32) -> u32 {
    (4 * smss).min((2 * smss).max(4380))
}

impl Congestion {
    pub fn new(smss: u32, iss: Seq, alg: Algorithm, hystart: bool) -> Congestion {
        Congestion {
            alg: alg.build(),
            now: Instant::ZERO,
            srtt: Duration::ZERO,
            cwnd: initial_window(smss),
            // RFC 5681 section 3.1: "arbitrarily high", here the largest window.
            ssthresh: u32::MAX / 2,
            smss,
            recover: iss,
            in_recovery: false,
            dupacks: 0,
            hystart: HyStart::new(hystart),
            rtt_sample: None,
            hystart_exit: None,
        }
    }

    /// The time of the event about to be reported, and the current SRTT
    /// (CUBIC's curve runs on them).
    pub fn clock(&mut self, now: Instant, srtt: Option<Duration>) {
        self.now = now;
        self.srtt = srtt.unwrap_or_default();
        self.rtt_sample = None;
    }

    /// The ACK being handled gave this round-trip sample (after `clock`).
    pub fn on_rtt_sample(&mut self, rtt: Duration) {
        self.rtt_sample = Some(rtt);
    }

    /// No HyStart++ for this connection (its slow start is RFC 5681's).
    pub fn without_hystart(&mut self) {
        self.hystart.stop();
    }

    /// HyStart++'s phase, as `ss -ti` shows it.
    pub fn hystart_phase(&self) -> hystart::Phase {
        self.hystart.phase()
    }

    /// The cwnd at which HyStart++ saw the round trip grow and left slow
    /// start, once (Linux counts these as TCPHystartDelayDetect/DelayCwnd).
    pub fn take_hystart_exit(&mut self) -> Option<u32> {
        self.hystart_exit.take()
    }

    /// The algorithm's name, as `ss -ti` shows it.
    pub fn name(&self) -> &'static str {
        self.alg.name()
    }

    /// ssthresh for a congestion event now. A loss in slow start or CSS ends
    /// HyStart++ (RFC 9406 section 4.2: "enter congestion avoidance (or fast
    /// recovery) as usual").
    fn reduce(&mut self, flight: u32) -> u32 {
        self.hystart.stop();
        self.alg.on_congestion(self.now, self.cwnd, flight, self.smss)
    }

    /// Once the peer's MSS is known (on its SYN): the initial window follows.
    pub fn set_smss(&mut self, smss: u32) {
        self.smss = smss;
        self.cwnd = initial_window(smss);
    }

    /// The path MTU shrank (RFC 1191): SMSS follows; cwnd is left as it is,
    /// since a smaller path MTU is no sign of congestion.
    pub fn on_path_mtu_drop(&mut self, smss: u32) {
        self.smss = smss;
    }

    /// The congestion window (cwnd).
    pub fn cwnd(&self) -> u32 {
        self.cwnd
    }

    /// The slow start threshold (ssthresh).
    pub fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    /// In NewReno fast recovery.
    pub fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    /// An ACK of new data: `acked` octets of data (the SYN not counted), with
    /// `flight_after` left in flight; `data_in_flight` tells whether any data
    /// (not just our SYN) was outstanding before it.
    pub fn on_ack(&mut self, ack: Seq, acked: u32, flight_after: u32, data_in_flight: bool) -> AckAction {
        if self.in_recovery {
            if self.on_recovery_ack(ack, acked, flight_after) {
                return AckAction::RetransmitFirst;
            }
        } else if data_in_flight && acked > 0 {
            self.on_new_ack(ack, acked, ack + flight_after);
        }
        AckAction::Nothing
    }

    /// A duplicate ACK (RFC 5681 section 2's definition, checked by the
    /// caller), with `flight` octets outstanding from `snd_una` to `snd_max`.
    pub fn on_dup_ack(&mut self, snd_una: Seq, flight: u32, snd_max: Seq) -> AckAction {
        self.dupacks += 1;
        if self.dupacks == 3 {
            if self.on_third_dupack(snd_una, flight, snd_max) {
                return AckAction::FastRetransmit;
            }
        } else if self.dupacks > 3 {
            self.on_extra_dupack();
        }
        AckAction::Nothing
    }

    /// New data acknowledged outside recovery (RFC 5681 section 3.1), up to
    /// `ack`, with SND.NXT at `snd_nxt`.
    fn on_new_ack(&mut self, ack: Seq, acked: u32, snd_nxt: Seq) {
        self.dupacks = 0;
        if self.cwnd < self.ssthresh {
            // Slow start: cwnd += min(N, SMSS) (equation 2, RFC 3465 L=1), or
            // as HyStart++ grows it (RFC 9406 section 4.2).
            let (add, event) = self.hystart.on_ack(ack, snd_nxt, self.rtt_sample, acked, self.smss);
            self.cwnd = self.cwnd.saturating_add(add);
            match event {
                hystart::Event::EnteredCss => self.hystart_exit = Some(self.cwnd),
                // CSS over: congestion avoidance from here, ssthresh = cwnd.
                hystart::Event::CssDone => self.ssthresh = self.cwnd,
                hystart::Event::None | hystart::Event::ResumedSlowStart => {}
            }
        } else {
            // Congestion avoidance, as the algorithm grows it.
            self.cwnd = self.alg.avoidance(self.now, self.srtt, self.cwnd, acked, self.smss);
        }
    }

    /// RFC 5681 section 3.2 step 2 / RFC 6582 section 3.2 step 2: the third
    /// duplicate ACK. Returns whether to enter fast retransmit (not when the ACK
    /// does not cover `recover`: the losses of a window already handled).
    fn on_third_dupack(&mut self, snd_una: Seq, flight: u32, snd_max: Seq) -> bool {
        if self.in_recovery || snd_una <= self.recover {
            return false;
        }
        self.ssthresh = self.reduce(flight);
        self.cwnd = self.ssthresh + 3 * self.smss;
        self.recover = snd_max;
        self.in_recovery = true;
        true
    }

    /// RFC 5681 section 3.2 step 4: each further duplicate ACK inflates cwnd.
    fn on_extra_dupack(&mut self) {
        if self.in_recovery {
            self.cwnd = self.cwnd.saturating_add(self.smss);
        }
    }

    /// An ACK of new data during recovery (RFC 6582 section 3.2 steps 5 and 6).
    /// Returns true for a partial ACK (retransmit the first unacknowledged segment).
    fn on_recovery_ack(&mut self, ack: Seq, acked: u32, flight_after: u32) -> bool {
        if ack >= self.recover {
            // Full ACK: deflate, option (1) of step 6.
            self.cwnd = self.ssthresh.min(flight_after.max(self.smss) + self.smss);
            self.in_recovery = false;
            self.dupacks = 0;
            false
        } else {
            // Partial ACK: deflate by the amount acknowledged, add back one SMSS
            // if at least one SMSS was acknowledged.
            self.cwnd = self.cwnd.saturating_sub(acked);
            if acked >= self.smss {
                self.cwnd += self.smss;
            }
            self.cwnd = self.cwnd.max(self.smss);
            true
        }
    }

    /// RFC 5681 section 3.1, equation 4 and the loss window: on a retransmission
    /// timeout, ssthresh = max(FlightSize/2, 2*SMSS), cwnd = 1 SMSS. RFC 6582
    /// section 3.2 step 1: recover = the highest sequence number sent.
    pub fn on_timeout(&mut self, flight: u32, snd_max: Seq, first_timeout: bool) {
        if first_timeout {
            self.ssthresh = self.reduce(flight);
        }
        self.cwnd = self.smss;
        self.recover = snd_max;
        self.in_recovery = false;
        self.dupacks = 0;
    }

    /// RFC 6582 "recover" (also RFC 6675's RecoveryPoint after a timeout): no
    /// new fast recovery until SND.UNA passes it.
    pub fn recover(&self) -> Seq {
        self.recover
    }

    /// Duplicate ACKs counted in a row (for limited transmit, RFC 3042).
    pub fn dupacks(&self) -> u32 {
        self.dupacks
    }

    /// SACK-based fast recovery begins (RFC 6675 section 5 step 4.1, RFC 5681
    /// equation 4): ssthresh = max(FlightSize / 2, 2 * SMSS); cwnd follows it
    /// (PRR paces the sending, RFC 6937). Returns ssthresh.
    pub fn enter_fast_recovery(&mut self, flight: u32, snd_max: Seq) -> u32 {
        self.ssthresh = self.reduce(flight);
        self.cwnd = self.ssthresh;
        self.recover = snd_max;
        self.in_recovery = true;
        self.ssthresh
    }

    /// SACK-based recovery is over (RFC 6937 section 3: cwnd = ssthresh).
    pub fn exit_fast_recovery(&mut self) {
        self.cwnd = self.ssthresh;
        self.in_recovery = false;
        self.dupacks = 0;
    }

    /// The state to take before a reduction (a congestion event), for [`Congestion::undo`].
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            recover: self.recover,
            alg: self.alg.save(),
            hystart: self.hystart,
        }
    }

    /// A reduction proved needless (a spurious timeout or fast retransmit,
    /// RFC 3522, RFC 3708): RFC 9438 section 4.9, if cwnd is below prior_cwnd,
    /// cwnd, ssthresh and the algorithm's state (CUBIC's W_max, K, epoch start,
    /// W_est) come back as they were; otherwise (detected long after, cwnd has
    /// grown past it) the current values stay. Either way the recovery ends,
    /// and RFC 6582's recover is what it was, so a loss in the same window may
    /// still start one. During NewReno recovery the inflated cwnd counts as
    /// ssthresh, what it deflates to.
    pub fn undo(&mut self, prior: &Snapshot) {
        let current = if self.in_recovery { self.ssthresh.min(self.cwnd) } else { self.cwnd };
        self.cwnd = current;
        if current < prior.cwnd {
            self.cwnd = prior.cwnd;
            self.ssthresh = prior.ssthresh;
            self.alg.restore(prior.alg);
            self.hystart = prior.hystart;
        }
        self.recover = prior.recover;
        self.in_recovery = false;
        self.dupacks = 0;
    }

    /// RFC 5681 section 4.1: after an idle period longer than RTO, restart from
    /// min(IW, cwnd). HyStart++'s rounds start over.
    pub fn on_idle_restart(&mut self) {
        self.cwnd = self.cwnd.min(initial_window(self.smss));
        self.hystart.restart_rounds();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_per_rfc5681() {
        assert_eq!(initial_window(1460), 4380);
        assert_eq!(initial_window(536), 2144);
        assert_eq!(initial_window(4000), 8000);
    }

    #[test]
    fn slow_start_then_avoidance() {
        let mut c = Congestion::new(1000, Seq(0), Algorithm::NewReno, false);
        assert_eq!(c.cwnd, 4000);
        c.ssthresh = 6000;
        c.on_new_ack(Seq(0), 1000, Seq(0));
        c.on_new_ack(Seq(0), 3000, Seq(0)); // at most SMSS per ACK
        assert_eq!(c.cwnd, 6000);
        // Now cwnd >= ssthresh: one SMSS per cwnd bytes acknowledged.
        for _ in 0..5 {
            c.on_new_ack(Seq(0), 1000, Seq(0));
        }
        assert_eq!(c.cwnd, 6000);
        c.on_new_ack(Seq(0), 1000, Seq(0));
        assert_eq!(c.cwnd, 7000);
    }

    fn curve(c: &Congestion) -> (f64, f64, Option<Instant>, f64) {
        match c.alg.save() {
            AlgState::Cubic(s) => s.curve(),
            AlgState::NewReno(_) => panic!("not CUBIC"),
        }
    }

    #[test]
    fn undoing_a_spurious_timeout_restores_cubics_w_max_k_epoch_and_w_est() {
        // RFC 9438 section 4.9, with the RFC's numbers: a loss at 100 segments
        // (SMSS 1000): W_max = 100, ssthresh = cwnd = 70 (beta_cubic 0.7,
        // section 4.6); avoidance starts the epoch with K = cbrt((100 - 70) /
        // 0.4) = cbrt(75) = 4.217 s (section 4.2).
        let mut c = Congestion::new(1000, Seq(0), Algorithm::Cubic, true);
        c.cwnd = 100_000;
        c.clock(Instant::from_secs(1), Some(Duration::from_millis(100)));
        c.enter_fast_recovery(100_000, Seq(100_000));
        c.exit_fast_recovery();
        assert_eq!((c.cwnd, c.ssthresh), (70_000, 70_000));
        for i in 0..10 {
            c.clock(Instant::from_millis(1100 + 100 * i), Some(Duration::from_millis(100)));
            for _ in 0..c.cwnd / 1000 {
                c.on_new_ack(Seq(0), 1000, Seq(0));
            }
        }
        let (w_max, k, epoch, w_est) = curve(&c);
        assert_eq!((w_max, epoch), (100.0, Some(Instant::from_millis(1100))));
        assert!((k - 75f64.cbrt()).abs() < 1e-9 && (k - 4.217).abs() < 1e-3, "K {k}");
        let (cwnd, ssthresh) = (c.cwnd, c.ssthresh);
        assert!(cwnd > 70_000 && cwnd < 100_000 && w_est > 70.0, "{cwnd} {w_est}");
        // A timeout at cwnd < W_max: fast convergence (section 4.7) lowers W_max
        // to cwnd * (1 + 0.7) / 2, the epoch ends, cwnd falls to one SMSS.
        let prior = c.snapshot();
        c.clock(Instant::from_secs(3), Some(Duration::from_millis(100)));
        c.on_timeout(cwnd, Seq(200_000), true);
        let (w_max_cut, _, epoch_cut, _) = curve(&c);
        assert!((w_max_cut - (cwnd / 1000) as f64 * 0.85).abs() < 1.0 && epoch_cut.is_none());
        assert_eq!(c.cwnd, 1000);
        // It proves spurious: every prior_ value comes back.
        c.undo(&prior);
        assert_eq!((c.cwnd, c.ssthresh), (cwnd, ssthresh));
        assert_eq!(curve(&c), (w_max, k, epoch, w_est));
        // Detected only after cwnd grew past prior_cwnd: the current values stay.
        c.on_timeout(cwnd, Seq(200_000), true);
        c.cwnd = cwnd + 5000;
        let later = curve(&c);
        c.undo(&prior);
        assert_eq!((c.cwnd, curve(&c)), (cwnd + 5000, later));
    }

    #[test]
    fn newreno_recovery() {
        let mut c = Congestion::new(1000, Seq(0), Algorithm::NewReno, false);
        c.cwnd = 10_000;
        // Third dupack with 10 segments in flight, highest sent 11000.
        assert!(c.on_third_dupack(Seq(1000), 10_000, Seq(11_000)));
        assert_eq!((c.ssthresh, c.cwnd, c.recover), (5000, 8000, Seq(11_000)));
        assert!(!c.on_third_dupack(Seq(1000), 10_000, Seq(11_000)), "not twice");
        c.on_extra_dupack();
        assert_eq!(c.cwnd, 9000);
        // Partial ACK of 2000 bytes: deflate by 2000, add back 1000.
        assert!(c.on_recovery_ack(Seq(3000), 2000, 8000));
        assert_eq!(c.cwnd, 8000);
        assert!(c.in_recovery);
        // Full ACK: cwnd = min(ssthresh, flight + SMSS).
        assert!(!c.on_recovery_ack(Seq(11_000), 8000, 0));
        assert_eq!(c.cwnd, 2000, "min(ssthresh, max(FlightSize, SMSS) + SMSS)");
        assert!(!c.in_recovery);
        // Dupacks for data sent before `recover` do not start another recovery.
        let mut c = Congestion::new(1000, Seq(0), Algorithm::NewReno, false);
        c.on_timeout(8000, Seq(9000), true);
        assert_eq!((c.cwnd, c.ssthresh), (1000, 4000));
        assert!(!c.on_third_dupack(Seq(5000), 4000, Seq(9000)));
        assert!(c.on_third_dupack(Seq(9001), 4000, Seq(12_000)));
    }
}
