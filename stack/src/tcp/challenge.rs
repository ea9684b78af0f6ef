//! The limits on challenge ACKs (RFC 5961 section 7), as Linux has them since
//! 4.7 (the fix for CVE-2016-5696): first a limit per connection, so that one
//! connection's challenge ACKs tell nothing about another's; then a stack-wide
//! ceiling whose size is drawn at random every second, so that even the shared
//! budget cannot be counted down exactly from outside.

use crate::time::{Duration, Instant};
use rand::rngs::ChaCha8Rng;
use rand::RngExt;

/// The stack-wide budget of challenge ACKs for the current second.
#[derive(Clone, Debug)]
pub struct ChallengeLimit {
    /// The configured mean per second; `u32::MAX` turns the ceiling off.
    limit: u32,
    /// The second (of the stack's clock) the budget is for.
    second: Option<u64>,
    left: u32,
}

impl ChallengeLimit {
    pub fn new(limit: u32) -> ChallengeLimit {
        ChallengeLimit { limit, second: None, left: 0 }
    }

    /// Takes one from this second's budget. Each new second draws the budget
    /// uniformly from [limit/2, limit*3/2) (Linux's tcp_send_challenge_ack).
    pub fn allow(&mut self, now: Instant, rng: &mut ChaCha8Rng) -> bool {
        if self.limit == u32::MAX {
            return true;
        }
        let second = now.as_micros() / 1_000_000;
        if self.second != Some(second) {
            self.second = Some(second);
            let half = self.limit.div_ceil(2);
            self.left = if self.limit == 0 { 0 } else { rng.random_range(half..half.saturating_add(self.limit)) };
        }
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}

/// The limit per connection: at most one challenge ACK per `interval` (Linux's
/// tcp_invalid_ratelimit, 500 ms). `last` is the connection's own record.
pub fn per_connection_allows(last: &mut Option<Instant>, now: Instant, interval: Duration) -> bool {
    if last.is_some_and(|t| now >= t && now - t < interval) {
        return false;
    }
    *last = Some(now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_budget_is_random_each_second_around_the_limit() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut c = ChallengeLimit::new(100);
        let mut budgets = Vec::new();
        for s in 0..20 {
            let t = Instant::from_secs(s);
            let n = (0..1000).filter(|_| c.allow(t, &mut rng)).count();
            assert!((50..150).contains(&n), "{n}");
            budgets.push(n);
        }
        budgets.dedup();
        assert!(budgets.len() > 10, "not a fixed count: {budgets:?}");
        let mut off = ChallengeLimit::new(u32::MAX);
        assert!((0..10_000).all(|_| off.allow(Instant::ZERO, &mut rng)));
    }

    #[test]
    fn one_per_interval_per_connection() {
        let mut last = None;
        let t = Instant::from_secs(5);
        let i = Duration::from_millis(500);
        assert!(per_connection_allows(&mut last, t, i));
        assert!(!per_connection_allows(&mut last, t + Duration::from_millis(499), i));
        assert!(per_connection_allows(&mut last, t + i, i));
    }
}
