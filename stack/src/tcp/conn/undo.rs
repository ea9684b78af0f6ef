//! Undoing a congestion event that proves spurious. Before the reduction the
//! congestion state is copied (`Congestion::snapshot`: cwnd, ssthresh and
//! CUBIC's W_max, K, epoch start and W_est, RFC 9438 section 4.9); it comes
//! back (`Congestion::undo`) when the data the event took for lost turns out
//! to have arrived:
//! - Eifel (RFC 3522 section 2), with timestamps: the first ACK that
//!   acknowledges the retransmission echoes a TSval older than the
//!   retransmission's, so the original arrived. For a timeout (answered as
//!   RFC 4015 section 3 says: sending resumes after SND.MAX), and for a fast
//!   retransmit that retransmitted one segment (with more, the others may
//!   still have been lost; D-SACK decides those).
//! - D-SACK (RFC 3708 section 3, RFC 2883 section 4), with SACK: every octet
//!   retransmitted in the recovery was reported back as a duplicate, so every
//!   original arrived.

use super::{Conn, Ctx};
use crate::tcp::congestion::Snapshot;
use crate::tcp::sack;
use crate::tcp::segment::{SackBlock, Segment};
use crate::tcp::seq::Seq;
use crate::tcp::timestamps::Timestamps;

/// What reduced the window.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Event {
    Timeout,
    FastRetransmit,
}

/// Disjoint ranges of D-SACKed octets counted once already (RFC 3708 section
/// 3 counts each retransmission's report; a repeated D-SACK, the same ACK
/// twice, is no new report). Bounded: with more ranges than it holds, the
/// two closest merge, and an octet in the gap between them is taken as
/// counted already, which can only delay or miss an undo, never make one.
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct Counted {
    /// One more than kept, for the moment between adding and merging.
    ranges: [(Seq, Seq); COUNTED + 1],
    len: usize,
}

/// Ranges `Counted` keeps apart (as many as a SACK option's blocks).
const COUNTED: usize = 4;

impl Counted {
    /// Adds [l, r) (at or after `from`, where every range lies); returns how
    /// many of its octets were not counted before.
    pub(super) fn add(&mut self, from: Seq, l: Seq, r: Seq) -> u32 {
        // The ranges are disjoint, so the octets of [l, r) they hold are the
        // sum of its overlaps with each (saturating all the same: a peer's
        // D-SACKs must never make this wrap).
        let mut new = r.since(l);
        let (mut lo, mut hi) = (l, r);
        let mut i = 0;
        while i < self.len {
            let (a, b) = self.ranges[i];
            if a <= r && l <= b {
                let (ol, or) = (l.max(a), r.min(b));
                new = new.saturating_sub(if ol < or { or.since(ol) } else { 0 });
                // Taken out, merged into the range added.
                (lo, hi) = (lo.min(a), hi.max(b));
                self.len -= 1;
                self.ranges[i] = self.ranges[self.len];
            } else {
                i += 1;
            }
        }
        self.ranges[self.len] = (lo, hi);
        self.len += 1;
        if self.len > COUNTED {
            self.merge_closest(from);
        }
        new
    }

    /// Merges the two neighbours with the smallest gap between them (the
    /// added range among them): the merged range covers only that gap besides
    /// the two, so the ranges stay disjoint.
    fn merge_closest(&mut self, from: Seq) {
        self.ranges[..self.len].sort_by_key(|x| x.0.since(from));
        let i = (1..self.len).min_by_key(|&i| self.ranges[i].0.since(self.ranges[i - 1].1)).unwrap_or(1);
        self.ranges[i - 1].1 = self.ranges[i].1;
        self.ranges.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }
}

/// A congestion event that may still prove spurious, and what undoing it restores.
#[derive(Copy, Clone, Debug)]
pub(super) struct Undo {
    event: Event,
    /// The congestion state before the reduction (RFC 9438 section 4.9's prior_ values).
    prior: Snapshot,
    /// TSval of the first retransmission, until the ACK Eifel looks at arrives.
    tsval: Option<u32>,
    /// The octets retransmitted since the event lie in [from, high).
    from: Seq,
    high: Seq,
    /// Retransmissions sent since the event.
    rxt_count: u32,
    /// Octets retransmitted that no D-SACK has reported back yet (RFC 3708's count).
    rxt_left: u32,
    /// The D-SACKed octets counted off `rxt_left` already.
    counted: Counted,
    /// SND.MAX once the recovery was over: the D-SACKs of its retransmissions
    /// come with ACKs up to it at the latest; past it the record goes.
    until: Option<Seq>,
}

impl Conn {
    /// A congestion event (`prior` taken before the reduction): keep what
    /// detects it spurious and undoes it, if anything can: timestamps (a
    /// timeout's first retransmission only, as RFC 3522 section 3.2 says), or
    /// SACK's D-SACKs for a fast retransmit.
    pub(super) fn keep_undo(&mut self, ctx: &mut Ctx<'_>, event: Event, prior: Snapshot) {
        let ts = self.syn_opts.timestamps;
        let possible = match event {
            Event::Timeout => ts && self.retries == 1,
            Event::FastRetransmit => ts || self.syn_opts.sack,
        };
        self.loss.undo = possible.then(|| Undo {
            event,
            prior,
            tsval: ts.then(|| self.ts.tsval(ctx.now)),
            from: self.snd_una,
            high: self.snd_una,
            rxt_count: 0,
            rxt_left: 0,
            counted: Counted::default(),
            until: None,
        });
    }

    /// A retransmission of [seq, seq + len) during the recovery.
    pub(super) fn count_retransmission(&mut self, seq: Seq, len: u32) {
        if let Some(u) = self.loss.undo.as_mut().filter(|u| u.event == Event::FastRetransmit) {
            u.rxt_count += 1;
            u.rxt_left = u.rxt_left.saturating_add(len);
            u.high = u.high.max(seq + len);
        }
    }

    /// Eifel (RFC 3522 section 2) on an ACK that advances SND.UNA (before it
    /// does): after a timeout, the first such ACK decides; after a fast
    /// retransmit, the first that acknowledges the whole retransmission
    /// (section 3.2: an ACK below its end does not acknowledge it, and its
    /// echo tells nothing of it), if only one segment was retransmitted by
    /// then. A record that only timestamps could decide goes after it.
    pub(super) fn check_eifel(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) {
        let Some(mut u) = self.loss.undo.take() else { return };
        let covers = u.event == Event::Timeout || (u.rxt_count > 0 && seg.ack >= u.high.min(self.snd_max));
        let Some(tsval) = u.tsval.filter(|_| covers) else {
            self.loss.undo = Some(u);
            return;
        };
        u.tsval = None;
        let echo_older = seg.options.timestamp.is_some_and(|(_, e)| e != 0 && Timestamps::echoes_before(e, tsval));
        let decidable = u.event == Event::Timeout || u.rxt_count == 1;
        if echo_older && decidable {
            return self.undo(ctx, u, false);
        }
        if u.event == Event::FastRetransmit && self.syn_opts.sack {
            self.loss.undo = Some(u);
        }
    }

    /// D-SACK (RFC 3708 section 3) on an ACK with SACK, after the scoreboard
    /// took it: a duplicate reported inside the retransmitted range counts
    /// off; when every retransmitted octet came back, the recovery was spurious.
    pub(super) fn check_dsack(&mut self, ctx: &mut Ctx<'_>, blocks: &[SackBlock]) {
        let Some(mut u) = self.loss.undo.filter(|u| u.event == Event::FastRetransmit) else { return };
        if self.loss.recovery.is_none() {
            u.until.get_or_insert(self.snd_max);
        }
        if let Some((l, r)) = sack::dsack_block(blocks, self.snd_una) {
            let (l, r) = (l.max(u.from), r.min(u.high));
            if l < r {
                // Each reported octet once: the same D-SACK again (a
                // duplicated ACK) says nothing new (RFC 3708 section 3).
                u.rxt_left = u.rxt_left.saturating_sub(u.counted.add(u.from, l, r));
                if u.rxt_count > 0 && u.rxt_left == 0 {
                    self.loss.undo = None;
                    return self.undo(ctx, u, true);
                }
            }
        }
        self.loss.undo = if u.until.is_some_and(|end| self.snd_una > end) { None } else { Some(u) };
    }

    /// The event was spurious: the congestion state before it comes back
    /// (RFC 9438 section 4.9) and any recovery it started ends.
    fn undo(&mut self, ctx: &mut Ctx<'_>, u: Undo, by_dsack: bool) {
        self.cc.undo(&u.prior);
        // What RACK marked lost and was not resent is in flight after all.
        self.loss.rack.undo_losses();
        if self.loss.recovery.take().is_some() {
            self.loss.rack.on_recovery_end();
        }
        self.loss.dupacks = 0;
        let c = ctx.net.counters();
        match u.event {
            Event::Timeout => {
                c.spurious_rtos += 1;
                self.loss.spurious += 1;
                // RFC 4015 section 3: go on after SND.MAX, not over what arrived.
                self.snd_nxt = self.snd_max;
                self.rtt.reset_backoff();
            }
            Event::FastRetransmit => {
                if by_dsack {
                    c.dsack_undos += 1;
                } else {
                    c.ts_undos += 1;
                }
                self.loss.undos += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_ranges_count_each_octet_once_and_stay_bounded() {
        let (from, mut c) = (Seq(u32::MAX - 1000), Counted::default());
        let at = |n: u32| from + n;
        assert_eq!(c.add(from, at(0), at(100)), 100);
        assert_eq!(c.add(from, at(0), at(100)), 0, "the same D-SACK again");
        assert_eq!(c.add(from, at(50), at(150)), 50, "overlapping: the new part");
        // Five more apart: the two closest merge, the gap between them counts as seen.
        for i in 1..=5 {
            assert_eq!(c.add(from, at(i * 1000), at(i * 1000 + 100)), 100);
        }
        // [0, 150) and [1000, 1100) merged (the gap of 850), then with
        // [2000, 2100) (900): [0, 2100), and three ranges of 100 apart.
        assert_eq!(c.len, COUNTED);
        assert_eq!(c.add(from, at(0), at(2100)), 0, "counted, or bridged");
        assert_eq!(c.add(from, at(0), at(5100)), 5100 - 2100 - 300, "the gaps not bridged");
        assert_eq!(c.len, 1);
    }

    #[test]
    fn a_range_in_the_gap_of_a_full_set_is_counted_once_and_never_wraps() {
        // Review finding: with the set full, a new range in the gap between
        // the two closest was stored beside their merge, overlapping it, and
        // a repeated D-SACK inside both subtracted more than its length.
        let (from, mut c) = (Seq(7), Counted::default());
        let at = |n: u32| from + n;
        for start in [0, 1000, 3000, 5000] {
            assert_eq!(c.add(from, at(start), at(start + 100)), 100);
        }
        assert_eq!(c.add(from, at(500), at(600)), 100, "new octets, counted");
        assert_eq!(c.add(from, at(550), at(560)), 0, "the same octets again");
        assert_eq!(c.add(from, at(500), at(600)), 0);
        assert!(c.len <= COUNTED);
        let ranges = &c.ranges[..c.len];
        for (i, x) in ranges.iter().enumerate() {
            for y in &ranges[i + 1..] {
                assert!(x.1 < y.0 || y.1 < x.0, "disjoint: {x:?} {y:?}");
            }
        }
    }
}
