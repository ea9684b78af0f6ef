//! Congestion avoidance as an interface ([`CongestionAlgorithm`]): how cwnd
//! grows once past ssthresh and how far ssthresh falls on a congestion event,
//! the part in which algorithms differ. Slow start, fast recovery and the
//! loss window stay in `congestion.rs`. Two algorithms: NewReno's (RFC 5681
//! section 3.1) and CUBIC (RFC 9438), the default as on Linux.

use crate::time::{Duration, Instant};

/// The congestion control a connection starts with (`TcpConfig::congestion`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// RFC 5681 / RFC 6582.
    NewReno,
    /// RFC 9438, Linux's default.
    #[default]
    Cubic,
}

impl Algorithm {
    pub fn build(self) -> Box<dyn CongestionAlgorithm> {
        match self {
            Algorithm::NewReno => Box::new(NewReno::default()),
            Algorithm::Cubic => Box::new(Cubic::default()),
        }
    }
}

/// What differs between congestion control algorithms. All sizes in octets.
pub trait CongestionAlgorithm: core::fmt::Debug + Send {
    /// As Linux's `ss -ti` names it.
    fn name(&self) -> &'static str;
    /// A congestion event (a loss detected, a timeout) with `cwnd` and
    /// `flight` octets in flight: returns the new ssthresh.
    fn on_congestion(&mut self, now: Instant, cwnd: u32, flight: u32, smss: u32) -> u32;
    /// `acked` octets acknowledged in congestion avoidance: returns the new cwnd.
    fn avoidance(&mut self, now: Instant, srtt: Duration, cwnd: u32, acked: u32, smss: u32) -> u32;
    /// A copy of the algorithm's own state, taken before a congestion event
    /// (RFC 9438 section 4.9: prior_W_max, prior_K, prior_epoch_start, prior_W_est).
    fn save(&self) -> AlgState;
    /// Puts back what [`CongestionAlgorithm::save`] took, the event having
    /// proved spurious (RFC 9438 section 4.9). A copy of another algorithm's
    /// state is ignored.
    fn restore(&mut self, saved: AlgState);
}

/// An algorithm's own state, as [`CongestionAlgorithm::save`] copies it: a
/// plain value (no allocation), one variant per algorithm.
#[derive(Copy, Clone, Debug)]
pub enum AlgState {
    NewReno(NewReno),
    Cubic(Cubic),
}

/// RFC 5681 section 3.1: about one SMSS per RTT in avoidance (equation 3 by
/// byte counting); ssthresh = max(FlightSize / 2, 2 * SMSS) (equation 4).
#[derive(Copy, Clone, Debug, Default)]
pub struct NewReno {
    /// Octets acknowledged since cwnd last grew.
    acked: u32,
}

impl CongestionAlgorithm for NewReno {
    fn name(&self) -> &'static str {
        "reno"
    }
    fn on_congestion(&mut self, _: Instant, _: u32, flight: u32, smss: u32) -> u32 {
        self.acked = 0;
        (flight / 2).max(2 * smss)
    }
    fn avoidance(&mut self, _: Instant, _: Duration, cwnd: u32, acked: u32, smss: u32) -> u32 {
        self.acked = self.acked.saturating_add(acked);
        if self.acked >= cwnd {
            self.acked -= cwnd;
            return cwnd.saturating_add(smss);
        }
        cwnd
    }
    fn save(&self) -> AlgState {
        AlgState::NewReno(*self)
    }
    fn restore(&mut self, saved: AlgState) {
        if let AlgState::NewReno(s) = saved {
            *self = s;
        }
    }
}

/// RFC 9438 section 5.1: C = 0.4.
const C: f64 = 0.4;
/// RFC 9438 section 4.6: beta_cubic = 0.7.
const BETA: f64 = 0.7;

/// CUBIC (RFC 9438): after a reduction, cwnd follows
/// W_cubic(t) = C * (t - K)^3 + W_max (section 4.2), in segments, back toward
/// the window where the loss happened, never slower than Reno would (the
/// Reno-friendly region, section 4.3).
#[derive(Copy, Clone, Debug, Default)]
pub struct Cubic {
    /// W_max: the window before the last reduction, in segments.
    w_max: f64,
    /// When the current avoidance epoch began (section 4.2's t = 0).
    epoch: Option<Instant>,
    /// K: the time to get back to W_max, in seconds (section 4.2, equation 2).
    k: f64,
    /// W_est: what Reno would have reached in this epoch, in segments (section 4.3).
    w_est: f64,
}

impl Cubic {
    /// W_max (segments), K (seconds), the epoch's start and W_est (segments).
    #[cfg(test)]
    pub(crate) fn curve(&self) -> (f64, f64, Option<Instant>, f64) {
        (self.w_max, self.k, self.epoch, self.w_est)
    }
}

impl CongestionAlgorithm for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }

    /// Section 4.6 (multiplicative decrease) with fast convergence (section 4.7).
    fn on_congestion(&mut self, _: Instant, cwnd: u32, flight: u32, smss: u32) -> u32 {
        let w = cwnd as f64 / smss as f64;
        self.w_max = if w < self.w_max { w * (1.0 + BETA) / 2.0 } else { w };
        self.epoch = None;
        ((flight as f64 * BETA) as u32).max(2 * smss)
    }

    /// Sections 4.2-4.5: the window target one RTT ahead on the cubic curve,
    /// cwnd moving toward it by (target - cwnd) / cwnd per acknowledged segment,
    /// or following Reno's estimate where that is larger.
    fn avoidance(&mut self, now: Instant, srtt: Duration, cwnd: u32, acked: u32, smss: u32) -> u32 {
        let (smss_f, w) = (smss as f64, cwnd as f64 / smss as f64);
        let epoch = *self.epoch.get_or_insert_with(|| {
            // Section 4.2: K from W_max and the window at the epoch's start.
            self.k = if w < self.w_max { ((self.w_max - w) / C).cbrt() } else { 0.0 };
            if w >= self.w_max {
                self.w_max = w;
            }
            self.w_est = w;
            now
        });
        let t = (now - epoch).as_secs_f64();
        let cubic = |t: f64| C * (t - self.k).powi(3) + self.w_max;
        let target = cubic(t + srtt.as_secs_f64()).clamp(w, 1.5 * w);
        let segs = acked as f64 / smss_f;
        // Section 4.3: alpha_cubic = 3 * (1 - beta) / (1 + beta) segments per RTT.
        self.w_est += 3.0 * (1.0 - BETA) / (1.0 + BETA) * segs / w;
        let next = if cubic(t) < self.w_est { self.w_est.max(w) } else { w + (target - w) / w * segs };
        ((next * smss_f) as u32).max(cwnd)
    }

    fn save(&self) -> AlgState {
        AlgState::Cubic(*self)
    }

    /// Section 4.9: W_max, K, the epoch's start and W_est come back as they were
    /// before the spurious event.
    fn restore(&mut self, saved: AlgState) {
        if let AlgState::Cubic(s) = saved {
            *self = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newreno_halves_and_adds_one_segment_per_window() {
        let mut r = NewReno::default();
        assert_eq!(r.on_congestion(Instant::ZERO, 10_000, 10_000, 1000), 5000);
        let mut cwnd = 5000;
        for _ in 0..5 {
            cwnd = r.avoidance(Instant::ZERO, Duration::ZERO, cwnd, 1000, 1000);
        }
        assert_eq!(cwnd, 6000);
    }

    #[test]
    fn cubic_reduces_to_seven_tenths_and_regrows_to_w_max_in_k_seconds() {
        let (smss, rtt) = (1000, Duration::from_millis(50));
        let mut c = Cubic::default();
        assert_eq!(c.on_congestion(Instant::ZERO, 1_000_000, 1_000_000, smss), 700_000);
        // K = cbrt(1000 * 0.3 / 0.4) = 9.09 s (a window large enough that the
        // cubic curve, not the Reno-friendly estimate, leads).
        let mut cwnd = 700_000;
        let mut now = Instant::from_secs(1);
        let end = now + Duration::from_millis(9_086);
        while now < end {
            // One RTT: a window of ACKs, one per segment.
            for _ in 0..cwnd / smss {
                cwnd = c.avoidance(now, rtt, cwnd, smss, smss);
            }
            now += rtt;
        }
        assert!((c.k - 9.086).abs() < 0.01, "K {}", c.k);
        assert!((990_000..=1_010_000).contains(&cwnd), "back near W_max after K: {cwnd}");
        // Fast convergence: a loss below the previous W_max remembers less.
        c.on_congestion(now, 800_000, 800_000, smss);
        assert!((c.w_max - 680.0).abs() < 1e-9);
        // A small window: the Reno-friendly estimate leads (section 4.3).
        let mut c = Cubic::default();
        c.on_congestion(Instant::ZERO, 10_000, 10_000, smss);
        let mut cwnd = 7000;
        for i in 0..20u64 {
            for _ in 0..cwnd / smss {
                cwnd = c.avoidance(Instant::from_millis(50 * i), rtt, cwnd, smss, smss);
            }
        }
        assert!(cwnd >= 7000 + 9 * smss, "at least Reno's one segment per two RTTs and more: {cwnd}");
    }
}
