//! Loss recovery with SACK: losses found by RACK (RFC 8985 section 6, in
//! `rack.rs`, with its reordering timer here), repaired as RFC 6675 section 5
//! says with RACK's verdict for IsLost (RFC 8985 section 9.3), at the pace of
//! Proportional Rate Reduction (RFC 6937); limited transmit (RFC 3042). Each
//! congestion event leaves a record for `undo.rs` to undo it if it proves
//! spurious. The tail loss probe is in `tlp.rs`. Without SACK, NewReno
//! (`congestion.rs`, RFC 6582) recovers instead.

use super::output::Tx;
use super::undo::{Event, Undo};
use super::{Conn, Ctx};
use crate::tcp::rack::{Rack, DUP_THRESH};
use crate::tcp::recovery::Recovery;
use crate::tcp::sack::{SackReceiver, Scoreboard};
use crate::tcp::segment::Segment;
use crate::tcp::seq::Seq;
use crate::tcp::status::LossInfo;
use crate::tcp::timestamps::Timestamps;
use crate::time::Instant;

/// One connection's SACK and loss-recovery state.
#[derive(Clone, Debug, Default)]
pub(super) struct LossState {
    /// The blocks our ACKs report (RFC 2018 section 4, RFC 2883).
    pub sack_rx: SackReceiver,
    /// What the peer's SACK blocks say it holds (RFC 6675 section 3).
    pub board: Scoreboard,
    /// SACK-based fast recovery in progress (RFC 6675 section 5, RFC 6937).
    pub recovery: Option<Recovery>,
    /// Duplicate ACKs in a row for SACK recovery's DupThresh (RFC 6675 section 2).
    pub dupacks: u32,
    /// After a timeout or fast retransmit: what to restore if it proves spurious.
    pub undo: Option<Undo>,
    /// Timeouts found spurious.
    pub spurious: u64,
    /// Fast recoveries found spurious and undone.
    pub undos: u64,
    /// RACK's state and the segments sent (RFC 8985 section 6).
    pub rack: Rack,
    /// The RACK reordering timer (RFC 8985 section 6.2 step 5), when armed.
    pub rack_at: Option<Instant>,
    /// The probe timeout (RFC 8985 section 7.2), when armed.
    pub tlp_at: Option<Instant>,
    /// TLP.end_seq (RFC 8985 section 7.1): a probe is out, SND.NXT when it left;
    /// one per tail until an ACK covers it.
    pub tlp_end: Option<Seq>,
    /// TLP.is_retrans: that probe was a retransmission.
    pub tlp_retrans: bool,
    /// An ACK advanced or data left since the probe timeout was armed.
    pub tlp_rearm: bool,
}

/// The timestamp option's size as every segment carries it (RFC 7323 section 3.2).
const TS_OPTION: u32 = 12;

impl LossState {
    /// The state of a connection whose ISS is `iss`: nothing retransmitted yet,
    /// so HighRxt (RFC 6675 section 2) starts at SND.UNA, not at sequence 0
    /// (which may lie ahead of SND.UNA in modular order, and would count data
    /// as retransmitted).
    pub fn new(iss: Seq) -> LossState {
        let mut s = LossState { rack: Rack::new(iss), ..LossState::default() };
        s.board.high_rxt = iss;
        s
    }
}

impl Conn {
    /// Octets of options every segment carries: the timestamps when agreed.
    pub(super) fn ts_overhead(&self) -> u32 {
        if self.syn_opts.timestamps {
            TS_OPTION
        } else {
            0
        }
    }

    /// RFC 3042: on the first two duplicate ACKs, one new segment each beyond cwnd.
    pub(super) fn limited_transmit(&self) -> u32 {
        if self.cc.in_recovery() || self.loss.recovery.is_some() {
            return 0;
        }
        let dupacks = if self.syn_opts.sack { self.loss.dupacks } else { self.cc.dupacks() };
        dupacks.min(2) * self.snd_mss
    }

    /// An ACK with SACK agreed: RACK (RFC 8985 section 6.2) takes what it
    /// delivered and decides what is lost; duplicates are counted (RFC 6675
    /// section 2's DupAck: no advance, newly SACKed octets); fast recovery is
    /// entered, continued or left. `acked` is SND.UNA's advance in data octets
    /// (`grow`: data was in flight, so cwnd may grow); `dup` tells a classic
    /// duplicate ACK (RFC 5681 section 2).
    pub(super) fn sack_ack(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>, acked: u32, grow: bool, dup: bool) {
        let (sacked, dsack) = self.rack_on_ack(ctx, seg);
        self.tlp_on_ack(ctx, dsack);
        self.check_dsack(ctx, seg.options.sack_blocks());
        let advanced = acked > 0 || grow;
        if advanced {
            self.loss.dupacks = 0;
        } else if sacked > 0 || dup {
            self.loss.dupacks += 1;
        } else if !self.loss.rack.has_lost() {
            return;
        }
        if let Some(r) = self.loss.recovery {
            if self.snd_una >= r.point {
                // RFC 6675 section 5: recovery ends when RecoveryPoint is acknowledged.
                self.end_sack_recovery();
            } else {
                return self.pace_recovery(ctx, acked + sacked);
            }
        }
        if acked > 0 {
            let flight_after = self.snd_max.since(self.snd_una);
            self.cc.on_ack(self.snd_una, acked, flight_after, grow);
        }
        self.maybe_enter_recovery(ctx, acked + sacked);
    }

    /// RFC 8985 section 6.2 steps 1-5 on an ACK: the segments it delivers
    /// (cumulatively, then by SACK blocks, which the scoreboard reduces to what
    /// is newly SACKed), the reordering window, then loss detection and the
    /// reordering timer. Returns the octets newly SACKed and whether the ACK
    /// carried a D-SACK (RFC 2883).
    fn rack_on_ack(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> (u32, bool) {
        let now = ctx.now;
        let dsacks = self.loss.board.dsacks;
        // Step 2's test for a retransmission: the ACK echoes a TSval older than it.
        let (ts, tsecr) = (&self.ts, seg.options.timestamp.map(|t| t.1).filter(|&e| e != 0));
        let ambiguous = |sent: Instant| tsecr.is_some_and(|e| Timestamps::echoes_before(e, ts.tsval(sent)));
        let rack = &mut self.loss.rack;
        rack.on_cumulative_ack(self.snd_una, now, &ambiguous);
        let blocks = seg.options.sack_blocks();
        let sacked = self.loss.board.on_ack(self.snd_una, self.snd_max, blocks, &mut |l, r| {
            rack.on_sacked(l, r, now, &ambiguous);
        });
        let dsack = self.loss.board.dsacks > dsacks;
        let in_recovery = self.loss.recovery.is_some() || self.retries > 0;
        let srtt = self.rtt.srtt().unwrap_or_default();
        self.loss.rack.update_reo_wnd(self.snd_una, self.snd_max, dsack, in_recovery, srtt, self.snd_mss);
        self.rack_detect(ctx);
        (sacked, dsack)
    }

    /// RFC 8985 section 6.2 step 5, RACK_detect_loss_and_arm_timer.
    fn rack_detect(&mut self, ctx: &mut Ctx<'_>) {
        let before = self.loss.rack.lost_retransmits;
        let timeout = self.loss.rack.detect_loss(ctx.now);
        ctx.net.counters().lost_retransmits += self.loss.rack.lost_retransmits - before;
        self.loss.rack_at = timeout.map(|t| ctx.now + t);
    }

    /// The RACK reordering timer fired (RFC 8985 section 6.2 step 5): detect
    /// again, and repair what is now lost (recovery, or after a timeout the
    /// lost segments `output` resends first).
    pub(super) fn on_rack_timeout(&mut self, ctx: &mut Ctx<'_>) {
        ctx.net.counters().rack_timeouts += 1;
        self.rack_detect(ctx);
        if self.loss.recovery.is_some() {
            self.pace_recovery(ctx, 0);
        } else {
            self.maybe_enter_recovery(ctx, 0);
        }
    }

    /// RFC 6675 section 5 step 4 with RACK's verdict (RFC 8985 section 6.2):
    /// recovery starts once a segment is lost, unless a timeout's recovery
    /// is still going (RFC 6582's "recover"). Duplicate ACKs that SACK nothing
    /// (a peer that stopped sending blocks) still count to DupThresh.
    fn maybe_enter_recovery(&mut self, ctx: &mut Ctx<'_>, delivered: u32) {
        if self.loss.recovery.is_some() || self.snd_una < self.cc.recover() || self.snd_max <= self.snd_una {
            return;
        }
        if !self.loss.rack.has_lost() && self.loss.dupacks >= DUP_THRESH && self.loss.board.is_empty() {
            self.loss.rack.mark_first_lost();
        }
        if self.loss.rack.has_lost() {
            self.enter_sack_recovery(ctx, delivered);
        }
    }

    /// RFC 6675 section 5 step 4 and RFC 6937 section 3's initialisation.
    fn enter_sack_recovery(&mut self, ctx: &mut Ctx<'_>, delivered: u32) {
        let flight = self.snd_max.since(self.snd_una);
        let prior = self.cc.snapshot();
        self.cc.enter_fast_recovery(flight, self.snd_max);
        self.keep_undo(ctx, Event::FastRetransmit, prior);
        self.loss.board.high_rxt = self.snd_una;
        self.loss.recovery = Some(Recovery::new(self.snd_max, flight));
        let c = ctx.net.counters();
        c.sack_recoveries += 1;
        c.fast_retransmits += 1;
        self.pace_recovery(ctx, delivered);
    }

    fn end_sack_recovery(&mut self) {
        self.loss.recovery = None;
        self.cc.exit_fast_recovery();
        self.loss.rack.on_recovery_end();
        self.loss.board.high_rxt = self.snd_una;
    }

    /// RFC 6937 section 3 on one ACK in recovery: sndcnt from what arrived, then
    /// NextSeg (RFC 6675 section 4) until it is spent. The first ACK always
    /// lets one segment go (the fast retransmit, as Linux does).
    fn pace_recovery(&mut self, ctx: &mut Ctx<'_>, delivered: u32) {
        let Some(mut r) = self.loss.recovery else { return };
        let pipe = self.loss.rack.pipe(self.snd_max.since(self.snd_una));
        let mut budget = r.on_ack(delivered, pipe, self.cc.ssthresh(), self.snd_mss) as i64;
        if r.sent() == 0 {
            budget = budget.max(1);
        }
        while budget > 0 {
            let Some((seq, len, new)) = self.next_seg() else { break };
            let fin = self.send_seg(ctx, seq, len, new);
            r.on_sent(len.max(fin as u32));
            budget -= len.max(1) as i64;
        }
        self.loss.recovery = Some(r);
    }

    /// Sends [seq, seq + len), the FIN after it where it belongs; returns
    /// whether the FIN went.
    fn send_seg(&mut self, ctx: &mut Ctx<'_>, seq: Seq, len: u32, new: bool) -> bool {
        let fin = self.fin_queued && seq + len == self.data_end() && (new || self.snd_max > self.data_end());
        self.transmit(ctx, Tx::Data { seq, len, fin });
        if new {
            self.snd_nxt = seq + len + fin as u32;
        } else {
            self.loss.board.high_rxt = self.loss.board.high_rxt.max(seq + len + fin as u32);
            self.count_retransmission(seq, len + fin as u32);
        }
        fin
    }

    /// RFC 6675 section 4, NextSeg, with RACK's IsLost: the first lost segment
    /// not retransmitted since (rule 1), else new data the window allows (rule
    /// 2), else a segment above HighRxt and below the highest SACKed octet
    /// that is neither SACKed nor lost nor resent yet (rule 3).
    fn next_seg(&mut self) -> Option<(Seq, u32, bool)> {
        if let Some(lost) = self.next_lost() {
            return Some(lost);
        }
        let end = self.data_end();
        let room = (self.snd_una + self.snd_wnd).since(self.snd_nxt).min(self.snd_wnd);
        let len = end.since(self.snd_nxt).min(self.snd_mss).min(room);
        if self.snd_nxt == self.snd_max && len > 0 {
            return Some((self.snd_nxt, len, true));
        }
        let high = self.loss.board.highest_sacked()?;
        let from = self.loss.board.high_rxt.max(self.snd_una);
        let (seq, len) = self.loss.rack.next_unsacked(from, high, self.snd_mss)?;
        Some((seq, len.min(end.since(seq)), false))
    }

    /// The first lost segment to resend, its length in data octets (a FIN
    /// after the data is not counted; `send_seg` adds it).
    fn next_lost(&mut self) -> Option<(Seq, u32, bool)> {
        let (seq, len) = self.loss.rack.next_lost(self.snd_mss)?;
        Some((seq, len.min(self.data_end().since(seq).min(len)), false))
    }

    /// Outside fast recovery (after a timeout, RFC 8985 section 6.3): the
    /// segments RACK holds lost go first, as far as cwnd allows over the pipe
    /// (RFC 6675 section 5.1, as Linux's loss state does), the first one
    /// whatever the pipe if `first`; returns whether any went.
    pub(super) fn resend_lost(&mut self, ctx: &mut Ctx<'_>, first: bool) -> bool {
        let mut sent = false;
        while self.syn_opts.sack && self.loss.recovery.is_none() {
            let pipe = self.loss.rack.pipe(self.snd_max.since(self.snd_una));
            if pipe >= self.cc.cwnd() && !(first && !sent) {
                break;
            }
            let Some((seq, len, _)) = self.next_lost() else { break };
            self.send_seg(ctx, seq, len, false);
            sent = true;
        }
        sent
    }

    /// A retransmission timeout under SACK: recovery ends; the scoreboard stays
    /// (what the peer holds is not sent again: RFC 6675 section 5.1 lets the
    /// sender keep it, as Linux does), unless a second timeout in a row suggests
    /// the peer reneged (RFC 2018 section 8). RACK marks the first segment and
    /// those past their deadline lost (RFC 8985 section 6.3), which `output`
    /// resends first. The state before is kept to undo a spurious timeout
    /// (RFC 3522, `undo.rs`).
    pub(super) fn on_timeout_loss(&mut self, ctx: &mut Ctx<'_>) {
        let prior = self.cc.snapshot();
        self.keep_undo(ctx, Event::Timeout, prior);
        if self.loss.recovery.take().is_some() {
            self.loss.rack.on_recovery_end();
        }
        self.loss.dupacks = 0;
        self.loss.tlp_end = None;
        if self.retries > 1 {
            self.loss.board.clear();
            self.loss.rack.clear_sacks();
        }
        self.loss.rack.mark_losses_on_rto(ctx.now);
        self.loss.rack_at = None;
        self.loss.board.high_rxt = self.snd_una;
    }

    /// Where a retransmission from `seq` after a timeout goes: past SACKed
    /// octets (no go-back-N over what the peer holds), and how far it may run
    /// before the next SACKed range.
    pub(super) fn skip_sacked(&self, seq: Seq) -> (Seq, Option<Seq>) {
        let seq = self.loss.board.sacked_end(seq).map_or(seq, |e| e.min(self.snd_max));
        (seq, self.loss.board.next_sacked_after(seq))
    }

    /// The `ss -ti` view of SACK, timestamps and recovery.
    pub(super) fn loss_info(&self) -> LossInfo {
        let (b, r) = (&self.loss.board, &self.loss.rack);
        LossInfo {
            congestion: self.cc.name(),
            sack: self.syn_opts.sack,
            timestamps: self.syn_opts.timestamps,
            sacked: b.sacked_bytes(),
            // RACK's marks: lost and not retransmitted since, and retransmissions in flight.
            lost: r.lost_bytes().saturating_sub(r.retrans_bytes()),
            retrans_out: r.retrans_bytes(),
            reordering: DUP_THRESH,
            reo_wnd: r.reo_wnd,
            reordering_seen: r.reordering_seen,
            dsacks: b.dsacks,
            spurious_rtos: self.loss.spurious,
            undos: self.loss.undos,
            hystart: self.cc.hystart_phase().name(),
        }
    }
}
