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
//! recovery (RFC 6675, PRR) drives the calls from `conn/loss.rs`.

use super::cubic::{Algorithm, CongestionAlgorithm};
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
    pub fn new(smss: u32, iss: Seq, alg: Algorithm) -> Congestion {
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
        }
    }

    /// The time of the event about to be reported, and the current SRTT
    /// (CUBIC's curve runs on them).
    pub fn clock(&mut self, now: Instant, srtt: Option<Duration>) {
        self.now = now;
        self.srtt = srtt.unwrap_or_default();
    }

    /// The algorithm's name, as `ss -ti` shows it.
    pub fn name(&self) -> &'static str {
        self.alg.name()
    }

    /// ssthresh for a congestion event now.
    fn reduce(&mut self, flight: u32) -> u32 {
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
            self.on_new_ack(acked);
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

    /// New data acknowledged outside recovery (RFC 5681 section 3.1).
    fn on_new_ack(&mut self, acked: u32) {
        self.dupacks = 0;
        if self.cwnd < self.ssthresh {
            // Slow start: cwnd += min(N, SMSS) (equation 2, RFC 3465 L=1).
            self.cwnd = self.cwnd.saturating_add(acked.min(self.smss));
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

    /// A reduction proved needless (a spurious timeout, RFC 3522 / RFC 4015):
    /// the values from before it come back.
    pub fn restore(&mut self, cwnd: u32, ssthresh: u32) {
        self.cwnd = self.cwnd.max(cwnd);
        self.ssthresh = ssthresh;
        self.in_recovery = false;
    }

    /// RFC 5681 section 4.1: after an idle period longer than RTO, restart from
    /// min(IW, cwnd).
    pub fn on_idle_restart(&mut self) {
        self.cwnd = self.cwnd.min(initial_window(self.smss));
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
        let mut c = Congestion::new(1000, Seq(0), Algorithm::NewReno);
        assert_eq!(c.cwnd, 4000);
        c.ssthresh = 6000;
        c.on_new_ack(1000);
        c.on_new_ack(3000); // at most SMSS per ACK
        assert_eq!(c.cwnd, 6000);
        // Now cwnd >= ssthresh: one SMSS per cwnd bytes acknowledged.
        for _ in 0..5 {
            c.on_new_ack(1000);
        }
        assert_eq!(c.cwnd, 6000);
        c.on_new_ack(1000);
        assert_eq!(c.cwnd, 7000);
    }

    #[test]
    fn newreno_recovery() {
        let mut c = Congestion::new(1000, Seq(0), Algorithm::NewReno);
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
        let mut c = Congestion::new(1000, Seq(0), Algorithm::NewReno);
        c.on_timeout(8000, Seq(9000), true);
        assert_eq!((c.cwnd, c.ssthresh), (1000, 4000));
        assert!(!c.on_third_dupack(Seq(5000), 4000, Seq(9000)));
        assert!(c.on_third_dupack(Seq(9001), 4000, Seq(12_000)));
    }
}
