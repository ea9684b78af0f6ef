//! The retransmission timer's value (RFC 6298): SRTT and RTTVAR from samples
//! (section 2), Karn's algorithm (section 3, RFC 9293 MUST-18: no samples from
//! retransmitted segments; enforced by the caller, which times one segment at a
//! time and forgets it on retransmission), and exponential backoff (section 5.5).

use crate::time::Duration;

/// Clock granularity G of RFC 6298 section 2: our clock counts microseconds, but
/// a 1 ms floor keeps RTTVAR meaningful on a loopback-fast path.
const G: Duration = Duration::from_millis(1);

#[derive(Clone, Debug)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    /// RTO before backoff.
    base_rto: Duration,
    /// Number of doublings applied (RFC 6298 section 5.5).
    backoff: u32,
    min_rto: Duration,
    max_rto: Duration,
}

impl RttEstimator {
    /// RFC 6298 section 2.1: before any sample, RTO is the initial value (1 s).
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> RttEstimator {
        RttEstimator { srtt: None, rttvar: Duration::ZERO, base_rto: initial_rto, backoff: 0, min_rto, max_rto }
    }

    /// Takes a round-trip sample R (RFC 6298 sections 2.2 and 2.3).
    pub fn sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                // 2.2: SRTT <- R, RTTVAR <- R/2.
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                // 2.3: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|, then SRTT <- 7/8 SRTT + 1/8 R'.
                let diff = srtt.abs_diff(r);
                self.rttvar = self.rttvar * 3 / 4 + diff / 4;
                self.srtt = Some(srtt * 7 / 8 + r / 8);
            }
        }
        let srtt = self.srtt.unwrap();
        // RTO <- SRTT + max(G, K*RTTVAR), K = 4; 2.4 floor, 2.5 ceiling.
        self.base_rto = (srtt + G.max(self.rttvar * 4)).clamp(self.min_rto, self.max_rto);
        // 5.7 note and Karn: a fresh sample from new data ends the backoff.
        self.backoff = 0;
    }

    /// The current RTO, backoff included, never above the maximum.
    pub fn rto(&self) -> Duration {
        let mut rto = self.base_rto;
        for _ in 0..self.backoff {
            rto = rto.saturating_mul(2);
            if rto >= self.max_rto {
                return self.max_rto;
            }
        }
        rto.min(self.max_rto)
    }

    /// RFC 6298 section 5.5: on expiry, RTO <- RTO * 2.
    pub fn back_off(&mut self) {
        if self.rto() < self.max_rto {
            self.backoff += 1;
        }
    }

    /// Ends the backoff (new data was acknowledged, RFC 6298 section 5.7 leaves it
    /// to the implementation; like Linux, we collapse on forward progress).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// RFC 6298 section 5.7: after the SYN was retransmitted, with no sample, RTO
    /// becomes 3 s once data transmission begins.
    pub fn set_base(&mut self, rto: Duration) {
        self.base_rto = rto.clamp(self.min_rto, self.max_rto);
    }

    pub fn has_sample(&self) -> bool {
        self.srtt.is_some()
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    pub fn backoffs(&self) -> u32 {
        self.backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> RttEstimator {
        RttEstimator::new(Duration::from_secs(1), Duration::from_millis(200), Duration::from_secs(120))
    }

    #[test]
    fn initial_rto_is_one_second() {
        assert_eq!(est().rto(), Duration::from_secs(1));
    }

    #[test]
    fn first_and_later_samples() {
        let mut e = est();
        e.sample(Duration::from_millis(100));
        // SRTT 100, RTTVAR 50: RTO = 100 + 200 = 300 ms.
        assert_eq!(e.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(e.rttvar(), Duration::from_millis(50));
        assert_eq!(e.rto(), Duration::from_millis(300));
        e.sample(Duration::from_millis(200));
        // RTTVAR = 3/4*50 + 1/4*100 = 62.5; SRTT = 87.5 + 25 = 112.5; RTO = 112.5 + 250.
        assert_eq!(e.rttvar(), Duration::from_micros(62_500));
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rto(), Duration::from_micros(362_500));
    }

    #[test]
    fn min_and_max_bounds() {
        let mut e = est();
        e.sample(Duration::from_micros(100));
        assert_eq!(e.rto(), Duration::from_millis(200), "min RTO");
        let mut e = est();
        e.sample(Duration::from_secs(100));
        assert_eq!(e.rto(), Duration::from_secs(120), "max RTO");
    }

    #[test]
    fn backoff_doubles_up_to_max_and_resets() {
        let mut e = est();
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.push(e.rto().as_secs());
            e.back_off();
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 64, 120, 120, 120]);
        e.reset_backoff();
        assert_eq!(e.rto(), Duration::from_secs(1));
    }
}
