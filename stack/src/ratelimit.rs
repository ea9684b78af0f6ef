//! A token bucket, used wherever an RFC asks us to limit the rate of something we
//! send: ICMP errors (RFC 1122 section 3.2.2), TCP challenge ACKs (RFC 5961 section 7).

use crate::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Tokens added per second.
    rate_per_sec: u32,
    /// Most tokens the bucket holds (the largest burst).
    burst: u32,
    /// Tokens in millionths, so that refills at sub-token granularity are not lost.
    micro_tokens: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: u32, burst: u32) -> TokenBucket {
        TokenBucket { rate_per_sec, burst, micro_tokens: burst as u64 * 1_000_000, last: Instant::ZERO }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed: Duration = now - self.last;
        self.last = self.last.max(now);
        let cap = self.burst as u64 * 1_000_000;
        let add = (elapsed.as_micros() as u64).saturating_mul(self.rate_per_sec as u64);
        self.micro_tokens = self.micro_tokens.saturating_add(add).min(cap);
        if self.micro_tokens >= 1_000_000 {
            self.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut b = TokenBucket::new(10, 3);
        let t = Instant::from_secs(1);
        assert!(b.try_take(t) && b.try_take(t) && b.try_take(t));
        assert!(!b.try_take(t));
        // 10 per second: one token back after 100 ms, not before.
        assert!(!b.try_take(t + Duration::from_millis(99)));
        assert!(b.try_take(t + Duration::from_millis(100)));
        assert!(!b.try_take(t + Duration::from_millis(100)));
        // Never more than the burst, however long we wait.
        let later = t + Duration::from_secs(100);
        assert!(b.try_take(later) && b.try_take(later) && b.try_take(later));
        assert!(!b.try_take(later));
    }
}
