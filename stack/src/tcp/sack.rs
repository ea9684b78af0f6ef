//! Selective acknowledgment (RFC 2018), both sides.
//!
//! - [`SackReceiver`]: which blocks an ACK reports. RFC 2018 section 4: the
//!   first block holds the segment that arrived most recently, then the most
//!   recently reported others; a duplicate segment is reported first as a
//!   D-SACK block (RFC 2883 section 4).
//! - [`Scoreboard`]: the sender's view of what the peer holds above SND.UNA
//!   (RFC 6675 section 3), with IsLost, SetPipe and NextSeg of section 4 on it.
//!
//! Both are bounded: [`MAX_SACK_RANGES`] ranges in the scoreboard (beyond it the
//! newest information is dropped and the sender falls back on its timer), four
//! remembered arrivals in the receiver.

use super::rack::DUP_THRESH;
use super::segment::{SackBlock, MAX_SACK_BLOCKS};
use super::seq::Seq;

/// Ranges the scoreboard holds (Linux's holds one per segment; a receiver with
/// 32 out-of-order ranges, our own bound, is fully described).
pub const MAX_SACK_RANGES: usize = 32;

/// The receiver's side: recent arrivals and a pending D-SACK.
#[derive(Clone, Debug, Default)]
pub struct SackReceiver {
    /// Starting sequence numbers of the latest out-of-order arrivals, newest first.
    recent: [Seq; MAX_SACK_BLOCKS],
    n: usize,
    /// A duplicate to report once (RFC 2883 section 4).
    dsack: Option<SackBlock>,
}

impl SackReceiver {
    /// An out-of-order segment starting at `seq` arrived: its block goes first.
    pub fn on_out_of_order(&mut self, seq: Seq) {
        let keep = self.recent[..self.n].iter().position(|&s| s == seq).unwrap_or(self.n.min(MAX_SACK_BLOCKS - 1));
        self.recent.copy_within(0..keep, 1);
        self.recent[0] = seq;
        self.n = (self.n + (keep == self.n) as usize).min(MAX_SACK_BLOCKS);
    }

    /// Octets [left, right) arrived again (RFC 2883 section 4: reported in the
    /// first block of the next ACK, once).
    pub fn on_duplicate(&mut self, left: Seq, right: Seq) {
        if left < right {
            self.dsack = Some((left, right));
        }
    }

    /// The duplicate the next ACK will report, if any (for a TIME-WAIT record to keep).
    pub fn pending_dsack(&self) -> Option<SackBlock> {
        self.dsack
    }

    /// Fills `out` with the blocks for an ACK of `rcv_nxt`, given the receive
    /// buffer's out-of-order ranges (offsets from `rcv_nxt`, ascending): the
    /// D-SACK block if any, then the ranges holding the latest arrivals, then
    /// the rest in order. Returns how many.
    pub fn blocks(&mut self, rcv_nxt: Seq, ranges: &[(u32, u32)], out: &mut [SackBlock; MAX_SACK_BLOCKS]) -> u8 {
        let mut n = 0;
        let mut push = |b: SackBlock, n: &mut usize| {
            if *n < MAX_SACK_BLOCKS && !out[..*n].contains(&b) {
                out[*n] = b;
                *n += 1;
            }
        };
        if let Some(d) = self.dsack.take() {
            push(d, &mut n);
        }
        let as_block = |&(s, e): &(u32, u32)| (rcv_nxt + s, rcv_nxt + e);
        for &seq in &self.recent[..self.n] {
            if seq < rcv_nxt {
                continue;
            }
            let off = seq.since(rcv_nxt);
            if let Some(r) = ranges.iter().find(|&&(s, e)| s <= off && off < e) {
                push(as_block(r), &mut n);
            }
        }
        for r in ranges {
            push(as_block(r), &mut n);
        }
        n as u8
    }
}

/// The sender's scoreboard: SACKed ranges above SND.UNA, sorted and disjoint,
/// and HighRxt (RFC 6675 section 2).
#[derive(Clone, Debug, Default)]
pub struct Scoreboard {
    ranges: Vec<SackBlock>,
    /// Octets SACKed in all ranges.
    sacked: u32,
    /// HighRxt: the highest octet retransmitted in this recovery (+1).
    pub high_rxt: Seq,
    /// D-SACK blocks received (RFC 2883): segments the peer got twice.
    pub dsacks: u64,
}

impl Scoreboard {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Octets SACKed above SND.UNA.
    pub fn sacked_bytes(&self) -> u32 {
        self.sacked
    }

    /// HighACK's counterpart: the highest SACKed octet (+1), if any.
    pub fn highest_sacked(&self) -> Option<Seq> {
        self.ranges.last().map(|r| r.1)
    }

    /// Forgets everything (RFC 2018 section 8: the receiver may have reneged).
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.sacked = 0;
    }

    /// Takes an ACK's blocks (RFC 6675 section 5, "update the scoreboard"),
    /// after SND.UNA moved to `snd_una`. A block below SND.UNA, or inside the
    /// next one, is a D-SACK (RFC 2883 section 4) and counted, not stored;
    /// blocks beyond SND.MAX are ignored. Each stretch of octets newly SACKed
    /// is handed to `newly` (so that RACK looks at those segments only, never
    /// again at what earlier ACKs reported). Returns the octets newly SACKed.
    pub fn on_ack(&mut self, snd_una: Seq, snd_max: Seq, blocks: &[SackBlock], newly: &mut dyn FnMut(Seq, Seq)) -> u32 {
        self.trim(snd_una);
        let before = self.sacked;
        let dsack = dsack_block(blocks, snd_una).is_some();
        for (i, &(l, r)) in blocks.iter().enumerate() {
            if l <= snd_una || (i == 0 && dsack) {
                self.dsacks += (i == 0) as u64;
                continue;
            }
            if r <= l || r > snd_max {
                continue;
            }
            self.insert(l, r, newly);
        }
        self.sacked.saturating_sub(before)
    }

    /// SND.UNA advanced: ranges below it go.
    pub fn trim(&mut self, snd_una: Seq) {
        while let Some(&(l, r)) = self.ranges.first() {
            if r <= snd_una {
                self.ranges.remove(0);
                self.sacked -= r.since(l);
            } else {
                if l < snd_una {
                    self.ranges[0].0 = snd_una;
                    self.sacked -= snd_una.since(l);
                }
                break;
            }
        }
        self.high_rxt = self.high_rxt.max(snd_una);
    }

    fn insert(&mut self, mut l: Seq, mut r: Seq, newly: &mut dyn FnMut(Seq, Seq)) {
        // The gaps between the ranges already held inside [l, r) are new.
        let mut at = l;
        for &(a, b) in self.ranges.iter().filter(|&&(a, b)| a <= r && l <= b) {
            if a > at {
                newly(at, a);
            }
            at = at.max(b);
        }
        if at < r {
            newly(at, r);
        }
        let mut i = 0;
        while i < self.ranges.len() {
            let (a, b) = self.ranges[i];
            if a <= r && l <= b {
                l = l.min(a);
                r = r.max(b);
                self.sacked -= b.since(a);
                self.ranges.remove(i);
            } else {
                i += 1;
            }
        }
        if self.ranges.len() >= MAX_SACK_RANGES {
            return;
        }
        let at = self.ranges.iter().position(|&(a, _)| a > l).unwrap_or(self.ranges.len());
        self.ranges.insert(at, (l, r));
        self.sacked += r.since(l);
    }

    /// Octets SACKed below `seq`.
    pub fn sacked_below(&self, seq: Seq) -> u32 {
        self.ranges.iter().take_while(|r| r.0 < seq).map(|&(l, r)| r.min(seq).since(l)).sum()
    }

    /// If `seq` is SACKed, the end of its range.
    pub fn sacked_end(&self, seq: Seq) -> Option<Seq> {
        self.ranges.iter().find(|&&(l, r)| seq.in_range(l, r)).map(|r| r.1)
    }

    /// The first SACKed range starting after `seq`, where a retransmission from `seq` must stop.
    pub fn next_sacked_after(&self, seq: Seq) -> Option<Seq> {
        self.ranges.iter().find(|&&(l, _)| l > seq).map(|r| r.0)
    }

    /// RFC 6675 section 4, IsLost(seq): DupThresh discontiguous SACKed ranges
    /// above it, or more than (DupThresh - 1) * SMSS octets SACKed above it.
    pub fn is_lost(&self, seq: Seq, smss: u32) -> bool {
        let (mut n, mut bytes) = (0, 0);
        for &(l, r) in self.ranges.iter().rev() {
            if r <= seq {
                break;
            }
            n += 1;
            bytes += r.since(l.max(seq + 1));
        }
        n >= DUP_THRESH || bytes > (DUP_THRESH - 1) * smss
    }

    /// RFC 6675 section 4, SetPipe: the octets in flight. Each unSACKed octet
    /// from SND.UNA to SND.MAX counts once if not lost and once more if
    /// retransmitted (below HighRxt). Computed per hole (all octets of a hole have
    /// the same SACKed octets above them), so it costs one pass over the ranges.
    pub fn pipe(&self, snd_una: Seq, snd_max: Seq, smss: u32) -> u32 {
        let mut pipe = 0;
        let mut at = snd_una;
        for i in 0..=self.ranges.len() {
            let hole_end = self.ranges.get(i).map_or(snd_max, |r| r.0);
            if hole_end > at {
                if !self.is_lost(hole_end - 1, smss) {
                    pipe += hole_end.since(at);
                }
                if self.high_rxt > at {
                    pipe += self.high_rxt.min(hole_end).since(at);
                }
            }
            if let Some(&(_, r)) = self.ranges.get(i) {
                at = at.max(r);
            }
        }
        pipe
    }

    /// RFC 6675 section 4, NextSeg rules (1) and (3): the first unSACKed octet
    /// above HighRxt and below the highest SACKed one, lost (rule 1) or, if
    /// `any`, not (rule 3); returned with the length up to the next SACKed range.
    pub fn next_hole(&self, snd_una: Seq, smss: u32, any: bool) -> Option<(Seq, u32)> {
        let high = self.highest_sacked()?;
        let mut at = self.high_rxt.max(snd_una);
        while at < high {
            if let Some(end) = self.sacked_end(at) {
                at = end;
                continue;
            }
            let stop = self.next_sacked_after(at).unwrap_or(high);
            if any || self.is_lost(at, smss) {
                return Some((at, stop.since(at).min(smss)));
            }
            // Not lost here means not lost further up either (fewer SACKed above).
            return None;
        }
        None
    }
}

/// RFC 2883 section 4: an ACK's first block reports a duplicate (a D-SACK)
/// when it lies below the cumulative ACK or inside the second block.
pub fn dsack_block(blocks: &[SackBlock], snd_una: Seq) -> Option<SackBlock> {
    let &(l, r) = blocks.first()?;
    let inside_next = blocks.get(1).is_some_and(|&(l2, r2)| l2 <= l && r <= r2);
    (l <= snd_una || inside_next).then_some((l, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_reports_latest_first_then_dsack_first() {
        let mut r = SackReceiver::default();
        let mut out = [(Seq(0), Seq(0)); MAX_SACK_BLOCKS];
        // rcv_nxt 1000; out of order [2000,2500) then [3000,3500).
        r.on_out_of_order(Seq(2000));
        r.on_out_of_order(Seq(3000));
        let ranges = [(1000, 1500), (2000, 2500)];
        let n = r.blocks(Seq(1000), &ranges, &mut out);
        assert_eq!(&out[..n as usize], &[(Seq(3000), Seq(3500)), (Seq(2000), Seq(2500))]);
        r.on_duplicate(Seq(500), Seq(1000));
        let n = r.blocks(Seq(1000), &ranges, &mut out);
        assert_eq!(out[0], (Seq(500), Seq(1000)), "D-SACK first");
        assert_eq!(n, 3);
        assert_eq!(r.blocks(Seq(1000), &ranges, &mut out), 2, "D-SACK reported once");
    }

    #[test]
    fn scoreboard_lost_pipe_and_holes() {
        let smss = 100;
        let mut s = Scoreboard::default();
        let una = Seq(0);
        // 10 segments in flight, 0 and 3 lost: SACKs for 1-2 and 4-9.
        assert_eq!(s.on_ack(una, Seq(1000), &[(Seq(400), Seq(1000)), (Seq(100), Seq(300))], &mut |_, _| {}), 800);
        assert!(s.is_lost(Seq(0), smss) && s.is_lost(Seq(300), smss));
        assert!(!s.is_lost(Seq(999), smss));
        assert_eq!(s.pipe(una, Seq(1000), smss), 0, "both holes lost, nothing else out");
        assert_eq!(s.next_hole(una, smss, false), Some((Seq(0), 100)));
        s.high_rxt = Seq(100);
        assert_eq!(s.next_hole(una, smss, false), Some((Seq(300), 100)));
        assert_eq!(s.pipe(una, Seq(1000), smss), 100, "one retransmission in flight");
        // A D-SACK below SND.UNA is counted and not stored.
        s.on_ack(Seq(300), Seq(1000), &[(Seq(0), Seq(100)), (Seq(400), Seq(1000))], &mut |_, _| {});
        assert_eq!((s.dsacks, s.sacked_bytes()), (1, 600));
        // Bounded.
        let mut s = Scoreboard::default();
        for i in 0..100u32 {
            s.on_ack(Seq(0), Seq(100_000), &[(Seq(i * 20 + 10), Seq(i * 20 + 15))], &mut |_, _| {});
        }
        assert_eq!(s.ranges.len(), MAX_SACK_RANGES);
    }
}
