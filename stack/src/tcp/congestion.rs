//! Congestion control: RFC 5681 slow start and congestion avoidance, fast
//! retransmit on the third duplicate ACK, and RFC 6582 NewReno fast recovery
//! (RFC 9293 section 3.8.2, MUST-19). All quantities are in bytes.

use super::seq::Seq;

#[derive(Clone, Debug)]
pub struct Congestion {
    pub cwnd: u32,
    pub ssthresh: u32,
    /// SMSS: the effective send MSS.
    pub smss: u32,
    /// RFC 6582 "recover": the highest sequence number sent when loss was detected.
    pub recover: Seq,
    /// In NewReno fast recovery.
    pub in_recovery: bool,
    /// Duplicate ACKs seen in a row (RFC 5681 section 2 definition).
    pub dupacks: u32,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew
    /// (RFC 5681 section 3.1, equation 3 done by byte counting).
    acked_in_ca: u32,
}

/// RFC 5681 section 3.1, equation 1: IW = min(4*SMSS, max(2*SMSS, 4380)).
pub fn initial_window(smss: u32) -> u32 {
    (4 * smss).min((2 * smss).max(4380))
}

impl Congestion {
    pub fn new(smss: u32, iss: Seq) -> Congestion {
        Congestion {
            cwnd: initial_window(smss),
            // RFC 5681 section 3.1: "arbitrarily high", here the largest window.
            ssthresh: u32::MAX / 2,
            smss,
            recover: iss,
            in_recovery: false,
            dupacks: 0,
            acked_in_ca: 0,
        }
    }

    /// Once the peer's MSS is known.
    pub fn set_smss(&mut self, smss: u32) {
        self.smss = smss;
        self.cwnd = initial_window(smss);
    }

    /// New data acknowledged outside recovery (RFC 5681 section 3.1).
    pub fn on_new_ack(&mut self, acked: u32) {
        self.dupacks = 0;
        if self.cwnd < self.ssthresh {
            // Slow start: cwnd += min(N, SMSS) (equation 2, RFC 3465 L=1).
            self.cwnd = self.cwnd.saturating_add(acked.min(self.smss));
        } else {
            // Congestion avoidance: about one SMSS per RTT.
            self.acked_in_ca = self.acked_in_ca.saturating_add(acked);
            if self.acked_in_ca >= self.cwnd {
                self.acked_in_ca -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.smss);
            }
        }
    }

    /// RFC 5681 section 3.2 step 2 / RFC 6582 section 3.2 step 2: the third
    /// duplicate ACK. Returns whether to enter fast retransmit (not when the ACK
    /// does not cover `recover`: the losses of a window already handled).
    pub fn on_third_dupack(&mut self, snd_una: Seq, flight: u32, snd_max: Seq) -> bool {
        if self.in_recovery || snd_una <= self.recover {
            return false;
        }
        self.ssthresh = (flight / 2).max(2 * self.smss);
        self.cwnd = self.ssthresh + 3 * self.smss;
        self.recover = snd_max;
        self.in_recovery = true;
        true
    }

    /// RFC 5681 section 3.2 step 4: each further duplicate ACK inflates cwnd.
    pub fn on_extra_dupack(&mut self) {
        if self.in_recovery {
            self.cwnd = self.cwnd.saturating_add(self.smss);
        }
    }

    /// An ACK of new data during recovery (RFC 6582 section 3.2 steps 5 and 6).
    /// Returns true for a partial ACK (retransmit the first unacknowledged segment).
    pub fn on_recovery_ack(&mut self, ack: Seq, acked: u32, flight_after: u32) -> bool {
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
            self.ssthresh = (flight / 2).max(2 * self.smss);
        }
        self.cwnd = self.smss;
        self.recover = snd_max;
        self.in_recovery = false;
        self.dupacks = 0;
        self.acked_in_ca = 0;
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
        let mut c = Congestion::new(1000, Seq(0));
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
        let mut c = Congestion::new(1000, Seq(0));
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
        let mut c = Congestion::new(1000, Seq(0));
        c.on_timeout(8000, Seq(9000), true);
        assert_eq!((c.cwnd, c.ssthresh), (1000, 4000));
        assert!(!c.on_third_dupack(Seq(5000), 4000, Seq(9000)));
        assert!(c.on_third_dupack(Seq(9001), 4000, Seq(12_000)));
    }
}
