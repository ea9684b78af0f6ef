//! HyStart++ (RFC 9406): slow start that leaves before it overshoots. Slow
//! start doubles cwnd every round trip until a loss; by then the window may be
//! twice what the path holds and a drop-tail queue loses a window's worth at
//! once. HyStart++ watches the smallest round-trip time of each round: when it
//! has grown by a threshold (the queue is filling), slow start gives way to
//! Conservative Slow Start (CSS), growing at a quarter of the pace for a few
//! rounds, then to congestion avoidance; if the round trip falls back during
//! CSS, the exit was spurious (jitter) and slow start resumes.
//!
//! It serves either algorithm (`congestion.rs` calls it in slow start, before
//! CUBIC or NewReno take over in avoidance), and only the initial slow start
//! (section 4.3: later ones stop at the ssthresh a loss taught).
//! All sizes in octets; the constants are `tcp::config`'s `HYSTART_*`.

use super::config::{
    HYSTART_CSS_GROWTH_DIVISOR, HYSTART_CSS_ROUNDS, HYSTART_L, HYSTART_MAX_RTT_THRESH, HYSTART_MIN_RTT_DIVISOR,
    HYSTART_MIN_RTT_THRESH, HYSTART_N_RTT_SAMPLE,
};
use super::seq::Seq;
use crate::time::Duration;

/// Where HyStart++ is.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Standard slow start, watching for a delay increase (section 4.2).
    #[default]
    SlowStart,
    /// Conservative Slow Start (section 4.2).
    Css,
    /// Over (a loss, CSS done) or turned off: RFC 5681 slow start alone.
    Off,
}

impl Phase {
    /// As `ss -ti` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::SlowStart => "ss",
            Phase::Css => "css",
            Phase::Off => "off",
        }
    }
}

/// What one ACK in slow start changed, besides cwnd's growth.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Event {
    #[default]
    None,
    /// The round trip grew by the threshold: slow start left for CSS.
    EnteredCss,
    /// The round trip fell below CSS's baseline: the exit was spurious, slow start resumes.
    ResumedSlowStart,
    /// CSS_ROUNDS rounds of CSS are over: congestion avoidance (ssthresh = cwnd).
    CssDone,
}

/// HyStart++'s state (section 4.2's variables). A plain value: congestion
/// control copies it into the snapshot it restores after a spurious loss.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HyStart {
    phase: Phase,
    /// windowEnd: the round ends when an ACK covers it.
    window_end: Option<Seq>,
    /// lastRoundMinRTT and currentRoundMinRTT; `None` is the RFC's infinity.
    last_round_min: Option<Duration>,
    current_round_min: Option<Duration>,
    /// rttSampleCount: samples in this round.
    samples: u32,
    /// cssBaselineMinRtt.
    css_baseline: Option<Duration>,
    /// CSS rounds begun, the partial round at the entry included.
    css_rounds: u32,
    /// CSS growth short of a whole octet (the division's remainder).
    css_rest: u32,
}

impl HyStart {
    pub fn new(enabled: bool) -> HyStart {
        HyStart {
            phase: if enabled { Phase::SlowStart } else { Phase::Off },
            window_end: None,
            last_round_min: None,
            current_round_min: None,
            samples: 0,
            css_baseline: None,
            css_rounds: 0,
            css_rest: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// A loss (or timeout) in slow start or CSS: congestion control takes over
    /// as usual and HyStart++ is done for the connection (sections 4.2, 4.3).
    pub fn stop(&mut self) {
        self.phase = Phase::Off;
    }

    /// After an idle restart the round trips measured before say nothing of
    /// the queue now: rounds start over.
    pub fn restart_rounds(&mut self) {
        self.window_end = None;
        self.last_round_min = None;
        self.current_round_min = None;
        self.samples = 0;
    }

    /// One ACK in slow start: it acknowledged `acked` new octets up to `ack`,
    /// SND.NXT is `snd_nxt`, and it gave the RTT sample `rtt` if any (currRTT).
    /// Returns how far cwnd grows and what changed.
    pub fn on_ack(&mut self, ack: Seq, snd_nxt: Seq, rtt: Option<Duration>, acked: u32, smss: u32) -> (u32, Event) {
        if self.phase == Phase::Off {
            // RFC 5681 section 3.1, equation 2: cwnd += min(N, SMSS).
            return (acked.min(smss), Event::None);
        }
        // Section 4.2: windowEnd starts at SND.NXT.
        let window_end = *self.window_end.get_or_insert(snd_nxt);
        let grow = acked.min(HYSTART_L.saturating_mul(smss));
        let add = if self.phase == Phase::Css {
            // cwnd += min(N, L * SMSS) / CSS_GROWTH_DIVISOR, the remainder kept.
            let total = grow + self.css_rest;
            self.css_rest = total % HYSTART_CSS_GROWTH_DIVISOR;
            total / HYSTART_CSS_GROWTH_DIVISOR
        } else {
            grow
        };
        let mut event = Event::None;
        if let Some(r) = rtt {
            // currentRoundMinRTT = min(currentRoundMinRTT, currRTT); rttSampleCount += 1.
            self.current_round_min = Some(self.current_round_min.map_or(r, |m| m.min(r)));
            self.samples += 1;
            event = self.check_delay();
        }
        if ack >= window_end {
            // The round ends: the next one runs to what has been sent by now.
            self.window_end = Some(snd_nxt);
            self.last_round_min = self.current_round_min.take();
            self.samples = 0;
            event = self.next_css_round().unwrap_or(event);
        }
        (add, event)
    }

    /// Section 4.2's checks once a round has N_RTT_SAMPLE samples: in slow
    /// start, has the minimum grown by RttThresh (exit to CSS)? In CSS, has it
    /// fallen below the baseline (the exit was spurious: back to slow start)?
    fn check_delay(&mut self) -> Event {
        let Some(current) = self.current_round_min.filter(|_| self.samples >= HYSTART_N_RTT_SAMPLE) else {
            return Event::None;
        };
        match self.phase {
            Phase::SlowStart => {
                let Some(last) = self.last_round_min else { return Event::None };
                // RttThresh = max(MIN_RTT_THRESH, min(lastRoundMinRTT / MIN_RTT_DIVISOR, MAX_RTT_THRESH)).
                let thresh = (last / HYSTART_MIN_RTT_DIVISOR).clamp(HYSTART_MIN_RTT_THRESH, HYSTART_MAX_RTT_THRESH);
                if current < last + thresh {
                    return Event::None;
                }
                self.css_baseline = Some(current);
                self.phase = Phase::Css;
                // The partial round at the entry counts toward CSS_ROUNDS.
                self.css_rounds = 1;
                self.css_rest = 0;
                Event::EnteredCss
            }
            Phase::Css if self.css_baseline.is_some_and(|b| current < b) => {
                self.css_baseline = None;
                self.phase = Phase::SlowStart;
                self.css_rounds = 0;
                Event::ResumedSlowStart
            }
            _ => Event::None,
        }
    }

    /// A round ended in CSS: another begins, or, CSS_ROUNDS done, CSS ends
    /// (the caller sets ssthresh = cwnd: congestion avoidance).
    fn next_css_round(&mut self) -> Option<Event> {
        if self.phase != Phase::Css {
            return None;
        }
        if self.css_rounds >= HYSTART_CSS_ROUNDS {
            self.phase = Phase::Off;
            return Some(Event::CssDone);
        }
        self.css_rounds += 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMSS: u32 = 1000;

    /// One round of `n` ACKs of one segment each, all with round trip `rtt`,
    /// the round's last segment at `start + n * SMSS`; returns the growth and
    /// the events seen.
    fn round(h: &mut HyStart, start: &mut Seq, n: u32, rtt_ms: u64) -> (u32, Vec<Event>) {
        let end = *start + n * SMSS;
        let (mut grown, mut events) = (0, Vec::new());
        for i in 1..=n {
            // New data goes out as ACKs come: SND.NXT runs a window ahead.
            let (add, e) = h.on_ack(*start + i * SMSS, end + i * SMSS, Some(Duration::from_millis(rtt_ms)), SMSS, SMSS);
            grown += add;
            if e != Event::None {
                events.push(e);
            }
        }
        *start = end;
        (grown, events)
    }

    /// Starts `h` with its first round ending at `start + n * SMSS`.
    fn begin(h: &mut HyStart, start: Seq, n: u32) {
        h.window_end = Some(start + n * SMSS);
    }

    #[test]
    fn flat_rtt_never_leaves_slow_start() {
        // RFC 9406 section 4.2: the exit needs currentRoundMinRTT >=
        // lastRoundMinRTT + RttThresh; a steady 50 ms never gets there.
        let mut h = HyStart::new(true);
        let mut seq = Seq(0);
        begin(&mut h, seq, 16);
        for _ in 0..10 {
            let (grown, events) = round(&mut h, &mut seq, 16, 50);
            assert_eq!(grown, 16 * SMSS, "slow start: one SMSS per segment acknowledged");
            assert!(events.is_empty(), "{events:?}");
        }
        assert_eq!(h.phase(), Phase::SlowStart);
    }

    #[test]
    fn delay_increase_enters_css_then_congestion_avoidance_after_css_rounds() {
        // RFC 9406 section 4.2 with section 4.3's constants. Last round's
        // minimum 50 ms: RttThresh = max(4, min(50 / 8, 16)) = 6.25 ms.
        let mut h = HyStart::new(true);
        let mut seq = Seq(0);
        begin(&mut h, seq, 20);
        round(&mut h, &mut seq, 20, 50);
        // 56 ms is below 50 + 6.25: no exit.
        let (_, events) = round(&mut h, &mut seq, 20, 56);
        assert!(events.is_empty() && h.phase() == Phase::SlowStart);
        // Now the bar is 56 + 56 / 8 = 63 ms; a round at 63 ms reaches it, on
        // the N_RTT_SAMPLE-th (8th) sample and not before.
        let end = seq + 20 * SMSS;
        let ms = |n| Some(Duration::from_millis(n));
        for i in 1..=7 {
            let r = h.on_ack(seq + i * SMSS, end + i * SMSS, ms(63), SMSS, SMSS);
            assert_eq!(r, (SMSS, Event::None), "sample {i}");
        }
        let (add, e) = h.on_ack(seq + 8 * SMSS, end + 8 * SMSS, ms(63), SMSS, SMSS);
        assert_eq!((add, e, h.phase()), (SMSS, Event::EnteredCss, Phase::Css));
        assert_eq!(h.css_baseline, Some(Duration::from_millis(63)));
        // The rest of that round is CSS (its first, partial round): a quarter
        // of slow start's growth (CSS_GROWTH_DIVISOR = 4).
        let mut grown = 0;
        for i in 9..=20 {
            grown += h.on_ack(seq + i * SMSS, end + i * SMSS, ms(64), SMSS, SMSS).0;
        }
        assert_eq!(grown, 12 * SMSS / 4);
        seq = end;
        // Rounds 2 to 5 of CSS; the end of the fifth (CSS_ROUNDS) is the end of CSS.
        for n in 2..=5 {
            let (grown, events) = round(&mut h, &mut seq, 20, 64);
            assert_eq!(grown, 20 * SMSS / 4, "round {n}");
            if n < 5 {
                assert!(events.is_empty(), "round {n}: {events:?}");
            } else {
                assert_eq!(events, vec![Event::CssDone]);
            }
        }
        assert_eq!(h.phase(), Phase::Off);
        // Over: RFC 5681 slow start's one SMSS per ACK (if cwnd ever is below ssthresh again).
        assert_eq!(h.on_ack(seq + 5 * SMSS, seq, None, 5 * SMSS, SMSS), (SMSS, Event::None));
    }

    #[test]
    fn rtt_falling_below_the_baseline_in_css_resumes_slow_start() {
        // RFC 9406 section 4.2: in CSS, currentRoundMinRTT < cssBaselineMinRtt
        // means the exit was spurious: slow start resumes, with HyStart++.
        let mut h = HyStart::new(true);
        let mut seq = Seq(0);
        begin(&mut h, seq, 10);
        round(&mut h, &mut seq, 10, 100);
        // Threshold for 100 ms: max(4, min(12.5, 16)) = 12.5 ms; 113 ms passes.
        let (_, events) = round(&mut h, &mut seq, 10, 113);
        assert_eq!(events, vec![Event::EnteredCss]);
        // A whole round at 112 ms, below the 113 ms baseline: back to slow start.
        let (_, events) = round(&mut h, &mut seq, 10, 112);
        assert_eq!(events, vec![Event::ResumedSlowStart]);
        assert_eq!(h.phase(), Phase::SlowStart);
        let (grown, _) = round(&mut h, &mut seq, 10, 112);
        assert_eq!(grown, 10 * SMSS);
    }

    #[test]
    fn thresholds_clamp_between_4_and_16_ms_and_l_caps_one_ack() {
        // RFC 9406 section 4.3: MIN_RTT_THRESH 4 ms (a 1 ms path needs +4 ms),
        // MAX_RTT_THRESH 16 ms (a 400 ms path needs +16 ms, not +50).
        for (base, enough, short) in [(1, 5, 4), (400, 416, 415)] {
            let enters = |rtt| {
                let mut h = HyStart::new(true);
                let mut seq = Seq(0);
                begin(&mut h, seq, 8);
                round(&mut h, &mut seq, 8, base);
                round(&mut h, &mut seq, 8, rtt).1 == vec![Event::EnteredCss]
            };
            assert!(enters(enough), "{base} ms then {enough} ms");
            assert!(!enters(short), "{base} ms then {short} ms");
        }
        // L = 8: one ACK of 20 segments adds 8 SMSS, not 20 (nor RFC 5681's 1).
        let mut h = HyStart::new(true);
        assert_eq!(h.on_ack(Seq(20 * SMSS), Seq(40 * SMSS), None, 20 * SMSS, SMSS).0, 8 * SMSS);
        // Off: RFC 5681 alone.
        let mut h = HyStart::new(false);
        assert_eq!(h.on_ack(Seq(20 * SMSS), Seq(40 * SMSS), None, 20 * SMSS, SMSS).0, SMSS);
    }
}
