//! What a segment is in its direction's sequence space, in Wireshark's terms:
//! new data, a retransmission, a segment that arrives out of order, or one that
//! shows an earlier segment missing from the capture.
//!
//! One [`Flow`] follows one direction. It keeps the highest sequence number sent
//! (SND.MAX as the capture saw it) and the holes below it: ranges that a segment
//! jumped over ("previous segment not captured"). A later segment that fills a
//! hole was either held up on the way (reordered: it comes within about one
//! round-trip time of the hole opening) or sent again after the sender learned
//! of the loss (a retransmission of a segment the capture missed). Wireshark
//! draws the line the same way, at the handshake's round-trip time or 3 ms.

use stack::tcp::Seq;

/// Holes remembered per direction; the oldest is forgotten beyond this.
pub const HOLES_MAX: usize = 64;

/// Used as the reordering threshold when the capture has no handshake to time.
pub const DEFAULT_REORDER_WINDOW: f64 = 0.003;

/// What a segment occupying sequence space is, relative to what came before.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Beyond everything sent before, with nothing missing.
    New,
    /// Beyond everything sent before, but starting past it: a segment between
    /// was not captured.
    AfterGap,
    /// Fills (part of) a hole soon after it opened: reordered on the way.
    OutOfOrder,
    /// Sends again what was sent before (or fills a hole long after it opened).
    Retransmission,
}

impl Kind {
    /// The note the timeline shows, if any.
    pub fn note(self) -> Option<&'static str> {
        match self {
            Kind::New => None,
            Kind::AfterGap => Some("previous segment not captured"),
            Kind::OutOfOrder => Some("out-of-order"),
            Kind::Retransmission => Some("retransmission"),
        }
    }
}

/// One direction's sequence space as the capture saw it.
#[derive(Clone, Debug, Default)]
pub struct Flow {
    max_end: Option<Seq>,
    /// Ranges [start, end) never seen, and when each opened.
    holes: Vec<(Seq, Seq, f64)>,
}

impl Flow {
    /// SND.MAX as seen: just past the highest sequence number sent.
    pub fn max_end(&self) -> Option<Seq> {
        self.max_end
    }

    /// Classifies the segment [seq, end) sent at `time`, and records it;
    /// `reorder_window` is how soon after a hole opened a segment filling it
    /// counts as reordered.
    pub fn classify(&mut self, seq: Seq, end: Seq, time: f64, reorder_window: f64) -> Kind {
        let Some(max) = self.max_end else {
            self.max_end = Some(end);
            return Kind::New;
        };
        if seq >= max {
            self.max_end = Some(end);
            if seq > max {
                if self.holes.len() == HOLES_MAX {
                    self.holes.remove(0);
                }
                self.holes.push((max, seq, time));
                return Kind::AfterGap;
            }
            return Kind::New;
        }
        if max < end {
            self.max_end = Some(end);
        }
        let mut kind = Kind::Retransmission;
        let mut i = 0;
        while i < self.holes.len() {
            let (a, b, opened) = self.holes[i];
            // Does [seq, end) overlap the hole [a, b)?
            if seq < b && a < end {
                if time - opened < reorder_window && a <= seq {
                    kind = Kind::OutOfOrder;
                }
                self.fill(i, seq, end);
                // `fill` may have removed or split the hole: look at index i again.
                if self.holes.get(i).is_some_and(|h| h.0 == a && h.1 == b) {
                    i += 1;
                }
                continue;
            }
            i += 1;
        }
        kind
    }

    /// Takes [seq, end) out of hole `i`, splitting it if the segment sits inside.
    fn fill(&mut self, i: usize, seq: Seq, end: Seq) {
        let (a, b, opened) = self.holes[i];
        let left = (a < seq).then_some((a, seq, opened));
        let right = (end < b).then_some((end, b, opened));
        self.holes.remove(i);
        for (k, h) in [left, right].into_iter().flatten().enumerate() {
            self.holes.insert(i + k, h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_gap_reorder_and_retransmission() {
        let mut f = Flow::default();
        assert_eq!(f.classify(Seq(1), Seq(101), 0.0, 0.003), Kind::New);
        // 101..201 missing.
        assert_eq!(f.classify(Seq(201), Seq(301), 0.001, 0.003), Kind::AfterGap);
        // It comes 1 ms later: reordered.
        assert_eq!(f.classify(Seq(101), Seq(201), 0.002, 0.003), Kind::OutOfOrder);
        assert_eq!(f.classify(Seq(101), Seq(201), 0.010, 0.003), Kind::Retransmission);
        // Another gap, filled long after: a retransmission of a segment not captured.
        assert_eq!(f.classify(Seq(401), Seq(501), 0.020, 0.003), Kind::AfterGap);
        assert_eq!(f.classify(Seq(301), Seq(351), 0.100, 0.003), Kind::Retransmission);
        // The hole's other half, still soon relative to nothing: it is old now.
        assert_eq!(f.classify(Seq(351), Seq(401), 0.101, 0.003), Kind::Retransmission);
        assert_eq!(f.max_end(), Some(Seq(501)));
        assert!(f.holes.is_empty());
    }

    #[test]
    fn a_filler_inside_a_hole_splits_it() {
        let mut f = Flow::default();
        f.classify(Seq(1), Seq(11), 0.0, 0.003);
        f.classify(Seq(41), Seq(51), 0.0, 0.003);
        assert_eq!(f.classify(Seq(21), Seq(31), 0.001, 0.003), Kind::OutOfOrder);
        assert_eq!(f.holes.iter().map(|h| (h.0, h.1)).collect::<Vec<_>>(), [(Seq(11), Seq(21)), (Seq(31), Seq(41))]);
    }

    #[test]
    fn holes_are_bounded() {
        let mut f = Flow::default();
        for i in 0..(HOLES_MAX as u32 + 10) {
            f.classify(Seq(i * 20), Seq(i * 20 + 10), 0.0, 0.003);
        }
        assert_eq!(f.holes.len(), HOLES_MAX);
    }
}
