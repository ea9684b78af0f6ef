//! RACK (RFC 8985 section 6): loss detection by time. Every segment sent
//! (new data and each retransmission) keeps its transmit time; a segment is
//! lost once a segment sent after it has been delivered (ACKed or SACKed) and
//! more than RACK.rtt + RACK.reo_wnd has passed since it left. This finds lost
//! retransmissions, which the DupAck count of RFC 6675 cannot, and with
//! RACK.reo_wnd set to zero once DupThresh segments are SACKed (section 6.2
//! step 4) it includes RFC 6675's IsLost.
//!
//! The sent segments sit in a ring in sequence order (`segs`, O(1) to append
//! at SND.MAX and to drop at SND.UNA, binary search to find a SACK block's
//! segments) and, linked through it, in a list ordered by transmit time
//! (section 8's design): a retransmitted segment moves to the tail, a SACKed or
//! lost one leaves it. Loss detection walks that list from its head and stops
//! at the first segment sent after RACK.segment, so an ACK costs the segments
//! it delivers and those it finds lost, never a scan of the flight. The
//! counters of SACKed, lost and retransmitted octets make RFC 6675's pipe O(1).
//!
//! An entry is one transmission (a TSO burst is one); when a retransmission or
//! a SACK block covers part of one, it is cut there (`split`), so that each
//! octet's marks are its own, as the RFC's per-segment state would have them.
//!
//! Bounded: at most [`MAX_SENT`] entries; beyond it new data is merged into the
//! last entry and no entry is cut (coarser timing and marks, never unbounded
//! memory).

use super::seq::Seq;
use crate::time::{Duration, Instant};
use std::collections::VecDeque;

/// Entries the list holds (Linux keeps one skb per TSO burst, bounded by the
/// send buffer; 4096 MSS-sized entries cover a 5.9 MB flight).
pub const MAX_SENT: usize = 4096;

/// RFC 6675 section 2, DupThresh (RFC 8985 section 6.2 step 4 uses it too).
pub const DUP_THRESH: u32 = 3;

/// Delivered by a SACK block.
const SACKED: u8 = 1;
/// Marked lost (RACK, or the timeout of section 6.3) and not delivered since.
const LOST: u8 = 2;
/// A retransmission of it is in flight (Linux's TCPCB_SACKED_RETRANS).
const RETRANS: u8 = 4;
/// Retransmitted at least once (RFC 8985's Segment.retransmitted).
const EVER_RETRANS: u8 = 8;

/// No entry (the end of the time-ordered list).
const NIL: u64 = u64::MAX;

/// One segment sent and not cumulatively acknowledged.
#[derive(Copy, Clone, Debug)]
struct Sent {
    seq: Seq,
    end: Seq,
    /// Segment.xmit_ts: the latest (re)transmission.
    xmit_ts: Instant,
    /// Its place in the order of transmissions (ties of `xmit_ts` broken by it).
    order: u64,
    flags: u8,
    /// Neighbours in the time-ordered list, as ids (see [`Rack::base`]).
    prev: u64,
    next: u64,
    /// In the time-ordered list (neither SACKed nor lost since its last sending).
    linked: bool,
}

impl Sent {
    fn len(&self) -> u32 {
        self.end.since(self.seq)
    }
}

/// RACK's state on one connection (RFC 8985 section 6.1) and its list of sent segments.
#[derive(Clone, Debug)]
pub struct Rack {
    segs: VecDeque<Sent>,
    /// The id of `segs[0]`; an entry's id never changes while it is in `segs`.
    base: u64,
    /// Head (oldest transmit) and tail of the time-ordered list.
    head: u64,
    tail: u64,
    /// Octets SACKed, lost (not SACKed), and retransmitted in flight (not SACKed).
    sacked: u32,
    lost: u32,
    retrans: u32,
    /// RACK.segs_sacked.
    segs_sacked: u32,
    /// Lost entries not retransmitted since, and the lowest sequence number among them (a hint).
    to_resend: u32,
    resend_from: Seq,
    /// RACK.xmit_ts: the most recently sent segment delivered; `order`, its
    /// transmission's place, and `end`, RACK.end_seq, break ties (see [`sent_after`]).
    xmit_ts: Option<Instant>,
    order: u64,
    end: Seq,
    /// Transmissions so far.
    sent: u64,
    /// RACK.rtt: that segment's round trip.
    pub rtt: Duration,
    /// RACK.min_RTT.
    pub min_rtt: Option<Duration>,
    /// RACK.fack: the highest end sequence delivered.
    fack: Seq,
    /// RACK.fack before the ACK being processed (see step 3 in `deliver`).
    ack_fack: Seq,
    /// RACK.reordering_seen.
    pub reordering_seen: bool,
    /// RACK.dsack_round, RACK.reo_wnd_mult, RACK.reo_wnd_persist (section 6.2 step 4).
    dsack_round: Option<Seq>,
    pub reo_wnd_mult: u32,
    reo_wnd_persist: u32,
    /// RACK.reo_wnd, as step 4 last computed it.
    pub reo_wnd: Duration,
    /// Retransmissions found lost (counted for `ss` and the counters).
    pub lost_retransmits: u64,
}

impl Default for Rack {
    fn default() -> Rack {
        Rack::new(Seq(0))
    }
}

impl Rack {
    pub fn new(iss: Seq) -> Rack {
        Rack {
            segs: VecDeque::new(),
            base: 0,
            head: NIL,
            tail: NIL,
            sacked: 0,
            lost: 0,
            retrans: 0,
            segs_sacked: 0,
            to_resend: 0,
            resend_from: iss,
            xmit_ts: None,
            order: 0,
            end: iss,
            sent: 0,
            rtt: Duration::ZERO,
            min_rtt: None,
            fack: iss,
            ack_fack: iss,
            reordering_seen: false,
            dsack_round: None,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            reo_wnd: Duration::ZERO,
            lost_retransmits: 0,
        }
    }

    fn at(&mut self, id: u64) -> &mut Sent {
        let i = (id - self.base) as usize;
        &mut self.segs[i]
    }

    fn unlink(&mut self, id: u64) {
        let s = *self.at(id);
        if !s.linked {
            return;
        }
        match s.prev {
            NIL => self.head = s.next,
            p => self.at(p).next = s.next,
        }
        match s.next {
            NIL => self.tail = s.prev,
            n => self.at(n).prev = s.prev,
        }
        let e = self.at(id);
        e.linked = false;
        e.prev = NIL;
        e.next = NIL;
    }

    fn link_tail(&mut self, id: u64) {
        let tail = self.tail;
        let e = self.at(id);
        e.linked = true;
        e.prev = tail;
        e.next = NIL;
        match tail {
            NIL => self.head = id,
            t => self.at(t).next = id,
        }
        self.tail = id;
    }

    /// Index of the first entry ending after `seq`.
    fn find(&self, seq: Seq) -> usize {
        self.segs.partition_point(|s| s.end <= seq)
    }

    /// Octets SACKed, lost and retransmitted as the entries count them.
    pub fn sacked_bytes(&self) -> u32 {
        self.sacked
    }

    pub fn lost_bytes(&self) -> u32 {
        self.lost
    }

    pub fn retrans_bytes(&self) -> u32 {
        self.retrans
    }

    /// RACK.segs_sacked.
    pub fn segs_sacked(&self) -> u32 {
        self.segs_sacked
    }

    /// Some segment is lost and not retransmitted since.
    pub fn has_lost(&self) -> bool {
        self.to_resend > 0
    }

    /// RFC 6675 section 4, SetPipe, on RACK's marks (RFC 8985 section 9.3: IsLost
    /// is RACK's verdict): `outstanding` less what is SACKed or lost, plus the
    /// retransmissions in flight.
    pub fn pipe(&self, outstanding: u32) -> u32 {
        outstanding.saturating_sub(self.sacked + self.lost) + self.retrans
    }

    /// [seq, end) was sent at `now` (RFC 8985 section 6.2: Segment.xmit_ts is
    /// the latest transmission's time). New data is appended; a retransmission
    /// updates the entries it covers and moves them to the time list's tail.
    pub fn on_send(&mut self, seq: Seq, end: Seq, now: Instant) {
        let last_end = self.segs.back().map(|s| s.end);
        if last_end.is_none_or(|e| seq >= e) {
            return self.push_new(seq, end, now);
        }
        let mut i = self.find(seq);
        while i < self.segs.len() && self.segs[i].seq < end {
            if self.segs[i].flags & SACKED != 0 {
                i += 1;
                continue;
            }
            // RFC 8985 section 6.1 keeps Segment.retransmitted and xmit_ts per
            // segment: only the part of a record resent now is, so the record
            // is cut at the resent range's edges (see `split`). At MAX_SENT it
            // stays whole and counts as resent whole: an octet of it that is
            // in fact lost is then left to the retransmission timer, whose
            // second firing goes back to SND.UNA (`timers.rs`).
            if self.segs[i].seq < seq && self.split(i, seq) {
                i += 1;
            }
            if self.segs[i].end > end {
                self.split(i, end);
            }
            let id = self.base + i as u64;
            let s = self.segs[i];
            if s.flags & LOST != 0 && s.flags & RETRANS == 0 {
                self.to_resend -= 1;
            }
            if s.flags & RETRANS == 0 {
                self.retrans += s.len();
            }
            self.sent += 1;
            self.segs[i].flags |= RETRANS | EVER_RETRANS;
            self.segs[i].xmit_ts = now;
            self.segs[i].order = self.sent;
            self.unlink(id);
            self.link_tail(id);
            i += 1;
        }
        if let Some(e) = self.segs.back().map(|s| s.end).filter(|&e| end > e) {
            self.push_new(e, end, now);
        }
    }

    fn push_new(&mut self, seq: Seq, end: Seq, now: Instant) {
        self.sent += 1;
        let order = self.sent;
        if self.segs.len() >= MAX_SENT {
            // Bounded: the newest entry grows instead (and counts as sent now);
            // if it cannot, the data is left to the retransmission timer.
            let id = self.base + self.segs.len() as u64 - 1;
            let last = self.at(id);
            if last.flags & (SACKED | LOST | RETRANS) == 0 {
                last.end = end;
                last.xmit_ts = now;
                last.order = order;
                self.unlink(id);
                self.link_tail(id);
            }
            return;
        }
        let id = self.base + self.segs.len() as u64;
        self.segs.push_back(Sent { seq, end, xmit_ts: now, order, flags: 0, prev: NIL, next: NIL, linked: false });
        self.link_tail(id);
    }

    /// Drops the entry at the front (delivered, or fully below SND.UNA), keeping the counts.
    fn pop_front(&mut self) -> Sent {
        self.unlink(self.base);
        let s = self.segs.pop_front().expect("an entry");
        self.base += 1;
        self.forget(&s);
        s
    }

    /// Takes an entry's octets out of the counters it is in.
    fn forget(&mut self, s: &Sent) {
        if s.flags & SACKED != 0 {
            self.sacked -= s.len();
            self.segs_sacked -= 1;
            return;
        }
        if s.flags & LOST != 0 {
            self.lost -= s.len();
            if s.flags & RETRANS == 0 {
                self.to_resend -= 1;
            }
        }
        if s.flags & RETRANS != 0 {
            self.retrans -= s.len();
        }
    }

    /// SND.UNA moved to `snd_una`: the entries below it are delivered (those
    /// not SACKed before go through RACK's steps 2 and 3).
    /// Called first for every ACK (it starts the ACK's processing).
    pub fn on_cumulative_ack(&mut self, snd_una: Seq, now: Instant, ambiguous: &dyn Fn(Instant) -> bool) {
        self.ack_fack = self.fack;
        while self.segs.front().is_some_and(|s| s.end <= snd_una) {
            let s = self.pop_front();
            if s.flags & SACKED == 0 {
                self.deliver(&s, now, ambiguous);
            }
        }
        if let Some(&front) = self.segs.front().filter(|s| s.seq < snd_una) {
            // Partly acknowledged (a TSO burst is one entry, acknowledged a
            // few segments at a time): the acknowledged part is delivered
            // (RFC 8985 section 6.2 step 2 takes every segment newly
            // acknowledged), the rest keeps its timing.
            if front.flags & SACKED == 0 {
                self.deliver(&Sent { end: snd_una, ..front }, now, ambiguous);
            }
        }
        if let Some(front) = self.segs.front_mut() {
            if front.seq < snd_una {
                let cut = snd_una.since(front.seq);
                let flags = front.flags;
                front.seq = snd_una;
                if flags & SACKED != 0 {
                    self.sacked -= cut;
                } else {
                    if flags & LOST != 0 {
                        self.lost -= cut;
                    }
                    if flags & RETRANS != 0 {
                        self.retrans -= cut;
                    }
                }
            }
        }
        if self.resend_from < snd_una {
            self.resend_from = snd_una;
        }
    }

    /// Octets [l, r) were newly SACKed: the entries inside are delivered. An
    /// entry the range covers in part is cut at its edges first (RFC 8985
    /// section 6.1 tracks each segment, so only what was SACKed is).
    pub fn on_sacked(&mut self, l: Seq, r: Seq, now: Instant, ambiguous: &dyn Fn(Instant) -> bool) {
        let mut i = self.find(l);
        while i < self.segs.len() && self.segs[i].seq < r {
            if self.segs[i].flags & SACKED != 0 {
                i += 1;
                continue;
            }
            if self.segs[i].seq < l && self.split(i, l) {
                i += 1;
            }
            if self.segs[i].end > r && !self.split(i, r) {
                // At MAX_SENT no entry can be cut: the entry then counts as
                // delivered once its last octet is (as a SACK block that
                // covers it may come in parts); an octet this wrongly takes
                // for SACKed is left to the retransmission timer, whose
                // second firing goes back to SND.UNA (`timers.rs`).
                i += 1;
                continue;
            }
            let s = self.segs[i];
            let id = self.base + i as u64;
            self.unlink(id);
            self.forget(&s);
            self.segs[i].flags = (s.flags & EVER_RETRANS) | SACKED;
            self.sacked += s.len();
            self.segs_sacked += 1;
            self.deliver(&s, now, ambiguous);
            i += 1;
        }
    }

    /// Cuts entry `i` in two at `at` (inside it): both parts keep its flags
    /// and transmit time, the second placed after the first in the
    /// time-ordered list. Returns false, leaving the entry whole, when
    /// [`MAX_SENT`] entries are held already (the bound wins; callers then
    /// treat the entry as a whole, which is coarser, never unbounded).
    ///
    /// Ids are positions, so the entries after `i` move up by one and the
    /// links to them are renumbered: O(entries held), and only when a range
    /// ends inside an entry (a TSO burst resent one SMSS at a time, a SACK
    /// block that covers part of one), never on an aligned ACK.
    fn split(&mut self, i: usize, at: Seq) -> bool {
        let s = self.segs[i];
        debug_assert!(s.seq < at && at < s.end);
        if self.segs.len() >= MAX_SENT {
            return false;
        }
        let id = self.base + i as u64;
        let moved = |x: u64| if x != NIL && x > id { x + 1 } else { x };
        for e in self.segs.iter_mut() {
            e.prev = moved(e.prev);
            e.next = moved(e.next);
        }
        self.head = moved(self.head);
        self.tail = moved(self.tail);
        self.segs[i].end = at;
        let second = Sent { seq: at, prev: NIL, next: NIL, linked: false, ..s };
        self.segs.insert(i + 1, second);
        // The octet counts stay; the entry counts grow by the new one.
        if s.flags & SACKED != 0 {
            self.segs_sacked += 1;
        } else if s.flags & (LOST | RETRANS) == LOST {
            self.to_resend += 1;
        }
        if s.linked {
            let next = self.at(id).next;
            self.link_before(id + 1, next);
        }
        true
    }

    /// RFC 8985 section 6.2 step 1: an RTT sample of RFC 6298 or RFC 7323
    /// (the handshake's included) lowers RACK.min_RTT.
    pub fn on_rtt_sample(&mut self, rtt: Duration) {
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
    }

    /// RFC 8985 section 6.2 steps 1-3 for one delivered segment. `ambiguous`
    /// tells whether the ACK's TSecr predates a transmission at the given time
    /// (so a retransmitted segment's delivery may be its original's).
    fn deliver(&mut self, s: &Sent, now: Instant, ambiguous: &dyn Fn(Instant) -> bool) {
        let rtt = now - s.xmit_ts;
        if s.flags & EVER_RETRANS != 0 {
            // Step 2: a retransmission delivered sooner than the minimum RTT
            // (or whose echo is older than it) was the original's delivery.
            if ambiguous(s.xmit_ts) || self.min_rtt.is_some_and(|m| rtt < m) {
                return;
            }
        }
        // Step 1: RACK.min_RTT from this sample.
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        // Step 2: RACK.segment is the most recently sent of those delivered.
        if self.xmit_ts.is_none_or(|t| sent_after((s.xmit_ts, s.order, s.end), (t, self.order, self.end))) {
            self.rtt = rtt;
            self.xmit_ts = Some(s.xmit_ts);
            self.order = s.order;
            self.end = s.end;
        }
        // Step 3: delivered below RACK.fack without having been retransmitted:
        // reordering. Below RACK.fack as an earlier ACK left it: one ACK's
        // blocks come the most recent first (RFC 2018 section 4), so one that
        // reports a lower block after a higher (the ACK that reported it was
        // lost) shows no reordering; Linux sorts an ACK's blocks for the same
        // reason. Taken for reordering, it set reo_wnd to min_RTT / 4 for the
        // rest of the connection, and each loss waited that long for RACK's
        // timer instead of being found at the third SACKed segment.
        if s.end > self.fack {
            self.fack = s.end;
        }
        if s.end < self.ack_fack && s.flags & EVER_RETRANS == 0 {
            self.reordering_seen = true;
        }
    }

    /// RFC 8985 section 6.2 step 4: the reordering window. `dsack` tells that
    /// this ACK carried a D-SACK; `snd_nxt` is where a D-SACK round ends.
    pub fn update_reo_wnd(
        &mut self,
        snd_una: Seq,
        snd_nxt: Seq,
        dsack: bool,
        in_recovery: bool,
        srtt: Duration,
        smss: u32,
    ) {
        if self.dsack_round.is_some_and(|r| snd_una >= r) {
            self.dsack_round = None;
        }
        // Grow the window once per round trip that sees a D-SACK; it falls back
        // after 16 recoveries without one (`on_recovery_end`).
        if self.dsack_round.is_none() && dsack {
            self.dsack_round = Some(snd_nxt);
            self.reo_wnd_mult += 1;
            self.reo_wnd_persist = 16;
        }
        // Step 4's "RACK.segs_sacked >= DupThresh" counts segments; an entry
        // is a GSO burst of many, so the octets SACKed count too, as RFC
        // 6675's IsLost does: more than (DupThresh - 1) * SMSS of them.
        let sacked_enough = self.segs_sacked >= DUP_THRESH || self.sacked > (DUP_THRESH - 1) * smss;
        self.reo_wnd = if !self.reordering_seen && (in_recovery || sacked_enough) {
            Duration::ZERO
        } else {
            (self.min_rtt.unwrap_or_default() / 4 * self.reo_wnd_mult).min(srtt)
        };
    }

    /// Step 4's "exiting fast or RTO recovery".
    pub fn on_recovery_end(&mut self) {
        self.reo_wnd_persist = self.reo_wnd_persist.saturating_sub(1);
        if self.reo_wnd_persist == 0 {
            self.reo_wnd_mult = 1;
        }
    }

    /// RFC 8985 section 6.2 step 5, RACK_detect_loss: every segment sent
    /// before RACK.segment and more than RACK.rtt + RACK.reo_wnd ago is lost.
    /// Returns the time until the latest of the others would be (the
    /// reordering timer), if any.
    pub fn detect_loss(&mut self, now: Instant) -> Option<Duration> {
        let rack_ts = self.xmit_ts?;
        let mut timeout = None;
        let mut id = self.head;
        while id != NIL {
            let s = *self.at(id);
            // Time-ordered: the first one not sent before RACK.segment ends the walk.
            if !sent_after((rack_ts, self.order, self.end), (s.xmit_ts, s.order, s.end)) {
                break;
            }
            let deadline = s.xmit_ts + self.rtt + self.reo_wnd;
            if deadline <= now {
                self.mark_lost(id);
            } else {
                timeout = Some(timeout.unwrap_or(Duration::ZERO).max(deadline - now));
            }
            id = s.next;
        }
        timeout
    }

    fn mark_lost(&mut self, id: u64) {
        self.unlink(id);
        let e = *self.at(id);
        if e.flags & SACKED != 0 {
            return;
        }
        if e.flags & LOST == 0 {
            self.lost += e.len();
        }
        if e.flags & RETRANS != 0 {
            // The retransmission itself was lost: no longer in flight.
            self.retrans -= e.len();
            self.lost_retransmits += 1;
        }
        if e.flags & RETRANS != 0 || e.flags & LOST == 0 {
            self.to_resend += 1;
        }
        self.at(id).flags = (e.flags | LOST) & !RETRANS;
        self.resend_from = self.resend_from.min(e.seq);
    }

    /// RFC 8985 section 6.3: on a retransmission timeout, the first segment
    /// and every one whose RACK deadline has passed are lost.
    pub fn mark_losses_on_rto(&mut self, now: Instant) {
        let mut id = self.head;
        while id != NIL {
            let s = *self.at(id);
            let first = id == self.base;
            if first || s.xmit_ts + self.rtt + self.reo_wnd <= now {
                self.mark_lost(id);
            }
            id = s.next;
        }
    }

    /// A timeout proved spurious (RFC 3522): what it marked lost and was not
    /// resent is in flight after all, back in the time-ordered list at its place.
    pub fn undo_losses(&mut self) {
        let mut cursor = self.head;
        for i in 0..self.segs.len() {
            let s = self.segs[i];
            if s.flags & (LOST | RETRANS | SACKED) != LOST {
                continue;
            }
            let id = self.base + i as u64;
            self.lost -= s.len();
            self.to_resend -= 1;
            self.segs[i].flags &= !LOST;
            // Entries come in sequence order, which for these is nearly time
            // order. The list's order is `sent_after`'s (time, then send
            // order, then end): by time alone, an entry would go after those
            // sent later in the same instant, out of order for `detect_loss`.
            let key = |e: &Sent| (e.xmit_ts, e.order, e.end);
            if cursor != NIL && sent_after(key(self.at(cursor)), key(&s)) {
                cursor = self.head;
            }
            while cursor != NIL && !sent_after(key(self.at(cursor)), key(&s)) {
                cursor = self.at(cursor).next;
            }
            self.link_before(id, cursor);
        }
    }

    /// Links `id` into the time-ordered list before `at` (at its tail if NIL).
    fn link_before(&mut self, id: u64, at: u64) {
        if at == NIL {
            return self.link_tail(id);
        }
        let prev = self.at(at).prev;
        let e = self.at(id);
        e.linked = true;
        e.prev = prev;
        e.next = at;
        self.at(at).prev = id;
        match prev {
            NIL => self.head = id,
            p => self.at(p).next = id,
        }
    }

    /// The first segment is lost (RFC 6675's DupThresh duplicate ACKs that
    /// carried no SACK block to tell which).
    pub fn mark_first_lost(&mut self) {
        if self.segs.front().is_some_and(|s| s.flags & (SACKED | LOST) == 0) {
            self.mark_lost(self.base);
        }
    }

    /// The first lost segment not retransmitted since (NextSeg rule 1 of RFC
    /// 6675 with RACK's IsLost), as (seq, len) up to `smss`.
    pub fn next_lost(&mut self, smss: u32) -> Option<(Seq, u32)> {
        if self.to_resend == 0 {
            return None;
        }
        let mut i = self.find(self.resend_from);
        while i < self.segs.len() {
            let s = self.segs[i];
            if s.flags & (LOST | RETRANS | SACKED) == LOST {
                self.resend_from = s.seq;
                return Some((s.seq, s.len().min(smss)));
            }
            i += 1;
        }
        // Never reached while the counts are right; were they wrong, the
        // count is put right rather than the stack stopped.
        self.to_resend = 0;
        None
    }

    /// RFC 6675 section 4, NextSeg rule 3: the first segment from `from`
    /// (HighRxt) below `below` (the highest SACKed octet) neither SACKed, nor
    /// lost, nor retransmitted, as (seq, len) up to `smss`.
    pub fn next_unsacked(&self, from: Seq, below: Seq, smss: u32) -> Option<(Seq, u32)> {
        let mut i = self.find(from);
        while let Some(s) = self.segs.get(i).filter(|s| s.seq < below) {
            if s.flags & (SACKED | LOST | RETRANS) == 0 && s.seq >= from {
                return Some((s.seq, s.len().min(smss)));
            }
            i += 1;
        }
        None
    }

    /// Is the octet at `seq` in a segment whose retransmission is in flight or
    /// that is not lost (after a timeout, what to skip rather than resend)?
    pub fn needs_resend(&self, seq: Seq) -> bool {
        let i = self.find(seq);
        self.segs.get(i).is_some_and(|s| s.seq <= seq && s.flags & (LOST | RETRANS | SACKED) == LOST)
    }

    /// Forgets the SACK marks (RFC 2018 section 8: the receiver may have
    /// reneged): what was SACKed becomes lost, to be sent again; RACK.fack
    /// goes back to SND.UNA, so that their cumulative acknowledgment later is
    /// not taken for reordering.
    pub fn clear_sacks(&mut self) {
        for i in 0..self.segs.len() {
            let s = self.segs[i];
            if s.flags & SACKED != 0 {
                self.segs[i].flags = (s.flags & EVER_RETRANS) | LOST;
                self.sacked -= s.len();
                self.segs_sacked -= 1;
                self.lost += s.len();
                self.to_resend += 1;
            }
        }
        if let Some(front) = self.segs.front() {
            self.resend_from = front.seq;
            self.fack = front.seq;
        }
    }

    /// Entries held (for tests).
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }
}

/// RFC 8985 section 6.2, RACK_sent_after: a transmission (time, order, end
/// sequence) came after another. The RFC breaks a tie of times by the end
/// sequence numbers, which takes a retransmission sent just after new data in
/// the same clock tick for the earlier of the two (and so, once the new data
/// is SACKed, for lost); the order of transmissions, which the list keeps,
/// breaks it exactly. The parts of one transmission cut apart (`Rack::split`)
/// share its order and left in sequence order, so the end sequence breaks
/// their tie, as the RFC's.
fn sent_after(a: (Instant, u64, Seq), b: (Instant, u64, Seq)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && (a.1 > b.1 || (a.1 == b.1 && a.2 > b.2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }
    const NO: &dyn Fn(Instant) -> bool = &|_| false;

    #[test]
    fn later_delivery_marks_earlier_lost_after_rtt_plus_window() {
        let mut r = Rack::new(Seq(0));
        for i in 0..4u32 {
            r.on_send(Seq(i * 100), Seq(i * 100 + 100), ms(i as u64));
        }
        // Segment 3 (sent at 3 ms) SACKed at 13 ms: RACK.rtt 10 ms.
        r.on_sacked(Seq(300), Seq(400), ms(13), NO);
        r.update_reo_wnd(Seq(0), Seq(400), false, false, Duration::from_millis(10), 100);
        assert_eq!(r.reo_wnd, Duration::from_micros(2500), "min_RTT / 4");
        // Segment 0 is due at 0 + 10 + 2.5 ms; 1 at 13.5, 2 at 14.5.
        assert_eq!(r.detect_loss(ms(13)), Some(Duration::from_micros(1500)));
        assert_eq!(r.lost_bytes(), 100);
        assert_eq!(r.next_lost(100), Some((Seq(0), 100)));
        assert_eq!(r.detect_loss(ms(15)), None);
        assert_eq!(r.lost_bytes(), 300);
        assert_eq!(r.pipe(400), 0);
        // Retransmitting 0 puts it back in flight and at the time list's tail.
        r.on_send(Seq(0), Seq(100), ms(15));
        assert_eq!((r.pipe(400), r.next_lost(100)), (100, Some((Seq(100), 100))));
        // The cumulative ACK of 0..200 delivers 1 (not retransmitted: RACK moves only if later).
        r.on_cumulative_ack(Seq(200), ms(25), NO);
        assert_eq!((r.len(), r.lost_bytes(), r.retrans_bytes(), r.sacked_bytes()), (2, 100, 0, 100));
    }

    #[test]
    fn dsack_grows_the_window_once_per_round() {
        let mut r = Rack::new(Seq(0));
        r.on_send(Seq(0), Seq(100), ms(0));
        r.on_cumulative_ack(Seq(100), ms(8), NO);
        r.update_reo_wnd(Seq(100), Seq(100), true, false, Duration::from_millis(8), 100);
        assert_eq!((r.reo_wnd_mult, r.reo_wnd), (2, Duration::from_millis(4)));
        r.update_reo_wnd(Seq(100), Seq(100), true, false, Duration::from_millis(8), 100);
        assert_eq!(r.reo_wnd_mult, 3, "SND.UNA reached the round's end");
        r.on_send(Seq(100), Seq(200), ms(10));
        r.update_reo_wnd(Seq(100), Seq(200), true, false, Duration::from_millis(8), 100);
        assert_eq!(r.reo_wnd_mult, 4);
        r.update_reo_wnd(Seq(100), Seq(200), true, false, Duration::from_millis(8), 100);
        assert_eq!(r.reo_wnd_mult, 4, "one step per round trip");
        for _ in 0..16 {
            r.on_recovery_end();
        }
        assert_eq!(r.reo_wnd_mult, 1, "back after 16 recoveries without D-SACK");
    }

    /// Checks the time-ordered list against the entries: every linked entry
    /// once, in transmit order, its links both ways.
    fn check_links(r: &Rack) {
        let (mut id, mut prev, mut n) = (r.head, NIL, 0);
        while id != NIL {
            let s = r.segs[(id - r.base) as usize];
            assert!(s.linked && s.prev == prev, "links of {id}");
            if prev != NIL {
                let p = r.segs[(prev - r.base) as usize];
                assert!(!sent_after((p.xmit_ts, p.order, p.end), (s.xmit_ts, s.order, s.end)), "order at {id}");
            }
            (prev, id, n) = (id, s.next, n + 1);
        }
        assert_eq!(r.tail, prev);
        assert_eq!(n, r.segs.iter().filter(|s| s.linked).count());
    }

    /// Undoing a spurious timeout puts its entries back where `sent_after`
    /// orders them, not after everything sent in the same instant (review
    /// finding: by time alone, B went after C and D sent with it).
    #[test]
    fn undone_losses_go_back_in_send_order_within_one_instant() {
        let mut r = Rack::new(Seq(0));
        r.on_send(Seq(0), Seq(100), ms(0));
        r.on_cumulative_ack(Seq(100), ms(10), NO); // RACK.rtt 10 ms
        for i in 1..5u32 {
            r.on_send(Seq(i * 100), Seq(i * 100 + 100), ms(20));
        }
        // Only the first segment is marked lost (the others' deadlines are not past).
        r.mark_losses_on_rto(ms(20));
        assert_eq!(r.lost_bytes(), 100);
        r.undo_losses();
        assert_eq!(r.lost_bytes(), 0);
        check_links(&r);
        assert_eq!(r.head, r.base, "the first sent is first again");
    }

    /// A retransmission of part of a record (one SMSS of a TSO burst) marks
    /// that part only (RFC 8985 section 6.1: Segment.retransmitted, per segment).
    #[test]
    fn part_resent_record_counts_the_resent_part_only() {
        let mut r = Rack::new(Seq(0));
        r.on_send(Seq(0), Seq(300), ms(0)); // one burst of three segments
        r.on_send(Seq(300), Seq(400), ms(1));
        r.on_sacked(Seq(300), Seq(400), ms(11), NO);
        r.update_reo_wnd(Seq(0), Seq(400), false, true, Duration::from_millis(10), 100);
        assert_eq!(r.detect_loss(ms(11)), None);
        assert_eq!((r.lost_bytes(), r.next_lost(100)), (300, Some((Seq(0), 100))));
        r.on_send(Seq(0), Seq(100), ms(12));
        check_links(&r);
        // The other 200 octets are still lost and not resent.
        assert_eq!(r.retrans_bytes(), 100);
        assert_eq!(r.next_lost(100), Some((Seq(100), 100)));
        assert_eq!(r.pipe(400), 100);
        r.on_send(Seq(100), Seq(200), ms(13));
        r.on_send(Seq(200), Seq(300), ms(14));
        check_links(&r);
        assert_eq!((r.retrans_bytes(), r.next_lost(100)), (300, None));
        // The resends delivered in turn: each its own RTT sample.
        r.on_cumulative_ack(Seq(400), ms(30), NO);
        assert!(r.is_empty());
        assert_eq!((r.lost_bytes(), r.retrans_bytes(), r.sacked_bytes()), (0, 0, 0));
    }

    /// A SACK block over part of a record marks that part SACKED (RFC 8985
    /// section 6.1 per segment; RFC 6675 section 3 per octet), and not the rest.
    #[test]
    fn part_sacked_record_counts_the_sacked_part_only() {
        let mut r = Rack::new(Seq(0));
        r.on_send(Seq(0), Seq(400), ms(0)); // one burst
        r.on_sacked(Seq(100), Seq(200), ms(10), NO);
        check_links(&r);
        assert_eq!((r.sacked_bytes(), r.segs_sacked()), (100, 1));
        assert_eq!(r.pipe(400), 300);
        // The block grows to the record's end: 200..400 only is newly SACKed.
        r.on_sacked(Seq(200), Seq(400), ms(11), NO);
        check_links(&r);
        assert_eq!((r.sacked_bytes(), r.segs_sacked()), (300, 2));
        // 0..100, sent with the SACKed octets, is lost once RACK.rtt + reo_wnd passes.
        r.update_reo_wnd(Seq(0), Seq(400), false, true, Duration::from_millis(10), 100);
        assert_eq!(r.detect_loss(ms(12)), None);
        assert_eq!((r.lost_bytes(), r.next_lost(1000)), (100, Some((Seq(0), 100))));
        r.on_cumulative_ack(Seq(400), ms(30), NO);
        assert!(r.is_empty());
        assert_eq!((r.lost_bytes(), r.sacked_bytes(), r.segs_sacked()), (0, 0, 0));
    }

    /// One SACK block over a whole GSO burst is many segments SACKed (RFC
    /// 8985 section 6.2 step 4 counts segments; review finding: counting
    /// entries, a burst counted one and reo_wnd stayed min_RTT / 4).
    #[test]
    fn a_sacked_burst_counts_as_its_segments_for_the_reordering_window() {
        let mut r = Rack::new(Seq(0));
        r.on_send(Seq(0), Seq(4500), ms(0)); // 45 segments of 100
        r.on_send(Seq(4500), Seq(9000), ms(1));
        r.on_sacked(Seq(4500), Seq(9000), ms(11), NO);
        assert_eq!(r.segs_sacked(), 1, "one entry");
        r.update_reo_wnd(Seq(0), Seq(9000), false, false, Duration::from_millis(10), 100);
        assert_eq!(r.reo_wnd, Duration::ZERO, "45 segments SACKed: no reordering window");
        // The first burst is lost at once (RACK.rtt 10 ms after it left).
        assert_eq!(r.detect_loss(ms(11)), None);
        assert_eq!(r.lost_bytes(), 4500);
    }

    /// At MAX_SENT no record is cut (the bound wins): a part-SACK then
    /// counts as the old rule does, on the record's last octet.
    #[test]
    fn at_the_bound_records_stay_whole() {
        let mut r = Rack::new(Seq(0));
        for i in 0..MAX_SENT as u32 {
            r.on_send(Seq(i * 100), Seq(i * 100 + 100), ms(0));
        }
        r.on_sacked(Seq(10), Seq(50), ms(10), NO);
        assert_eq!((r.len(), r.sacked_bytes()), (MAX_SENT, 0));
        r.on_sacked(Seq(150), Seq(200), ms(10), NO);
        assert_eq!((r.len(), r.sacked_bytes()), (MAX_SENT, 100));
        r.on_send(Seq(500), Seq(550), ms(11));
        assert_eq!((r.len(), r.retrans_bytes()), (MAX_SENT, 100));
        check_links(&r);
    }

    /// RFC 8985 section 6.2 step 3 on one ACK whose blocks come the most
    /// recent first: the lower block, SACKed after the higher, was not reordered.
    #[test]
    fn blocks_of_one_ack_in_any_order_are_no_reordering() {
        let mut r = Rack::new(Seq(0));
        for i in 0..6u32 {
            r.on_send(Seq(i * 100), Seq(i * 100 + 100), ms(i as u64));
        }
        // 0 and 2 lost; the ACK that SACKed 1 was lost: the next reports
        // 3 (its arrival) first, then 1.
        r.on_cumulative_ack(Seq(0), ms(13), NO);
        r.on_sacked(Seq(300), Seq(400), ms(13), NO);
        r.on_sacked(Seq(100), Seq(200), ms(13), NO);
        assert!(!r.reordering_seen);
        r.update_reo_wnd(Seq(0), Seq(600), false, false, Duration::from_millis(10), 100);
        // A later ACK that SACKs 2, never retransmitted, below 3: reordering.
        r.on_cumulative_ack(Seq(0), ms(14), NO);
        r.on_sacked(Seq(200), Seq(300), ms(14), NO);
        assert!(r.reordering_seen);
    }

    #[test]
    fn bounded() {
        let mut r = Rack::new(Seq(0));
        for i in 0..(MAX_SENT as u32 + 100) {
            r.on_send(Seq(i), Seq(i + 1), ms(i as u64));
        }
        assert_eq!(r.len(), MAX_SENT);
        r.on_cumulative_ack(Seq(MAX_SENT as u32 + 100), ms(100_000), NO);
        assert!(r.is_empty());
    }
}
