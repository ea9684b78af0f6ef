//! Loss recovery with SACK (RFC 6675) at the pace of Proportional Rate
//! Reduction (RFC 6937) and limited transmit (RFC 3042); each congestion
//! event leaves a record for `undo.rs` to undo it if it proves spurious.
//! Without SACK, NewReno (`congestion.rs`, RFC 6582) recovers instead.

use super::output::Tx;
use super::undo::{Event, Undo};
use super::{Conn, Ctx};
use crate::tcp::recovery::Recovery;
use crate::tcp::sack::{SackReceiver, Scoreboard, DUP_THRESH};
use crate::tcp::segment::Segment;
use crate::tcp::seq::Seq;
use crate::tcp::state::State;
use crate::tcp::status::LossInfo;
use crate::time::{Duration, Instant};

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
    /// The probe timeout (RFC 8985 section 7.2), when armed.
    pub tlp_at: Option<Instant>,
    /// A tail loss probe is out, starting at this sequence number (TLP.end_seq's
    /// counterpart): one per tail until an ACK settles it.
    pub tlp_probe: Option<Seq>,
    /// An ACK advanced or data left since the probe timeout was armed.
    pub tlp_rearm: bool,
    /// SND.MAX when the latest retransmission of this recovery left: a SACK
    /// above it means data sent after that retransmission arrived before it.
    pub rxt_mark: Option<Seq>,
}

/// RFC 8985 section 7.2, WCDelAckT: the peer may delay the ACK of a lone segment this long.
const WC_DEL_ACK: Duration = Duration::from_millis(200);
/// The shortest probe timeout (Linux's lower bound on the TLP timer).
const MIN_PTO: Duration = Duration::from_millis(10);

/// The timestamp option's size as every segment carries it (RFC 7323 section 3.2).
const TS_OPTION: u32 = 12;

impl LossState {
    /// The state of a connection whose ISS is `iss`: nothing retransmitted yet,
    /// so HighRxt (RFC 6675 section 2) starts at SND.UNA, not at sequence 0
    /// (which may lie ahead of SND.UNA in modular order, and would count data
    /// as retransmitted).
    pub fn new(iss: Seq) -> LossState {
        let mut s = LossState::default();
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

    /// An ACK with SACK agreed: update the scoreboard, count duplicates
    /// (RFC 6675 section 2's DupAck: no advance, newly SACKed octets), and
    /// enter, go on with or leave fast recovery. `acked` is SND.UNA's advance in
    /// data octets (`grow`: data was in flight, so cwnd may grow); `dup` tells
    /// a classic duplicate ACK (RFC 5681 section 2).
    pub(super) fn sack_ack(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>, acked: u32, grow: bool, dup: bool) {
        let sacked = self.loss.board.on_ack(self.snd_una, self.snd_max, seg.options.sack_blocks());
        self.settle_probe(seg);
        self.check_dsack(ctx, seg.options.sack_blocks());
        let advanced = acked > 0 || grow;
        if advanced {
            self.loss.dupacks = 0;
        } else if sacked > 0 || dup {
            self.loss.dupacks += 1;
        } else {
            return;
        }
        if let Some(r) = self.loss.recovery {
            if self.snd_una >= r.point {
                // RFC 6675 section 5: recovery ends when RecoveryPoint is acknowledged.
                self.loss.recovery = None;
                self.cc.exit_fast_recovery();
                self.loss.board.high_rxt = self.snd_una;
            } else {
                self.detect_lost_retransmissions();
                return self.pace_recovery(ctx, acked + sacked);
            }
        }
        if acked > 0 {
            let flight_after = self.snd_max.since(self.snd_una);
            self.cc.on_ack(self.snd_una, acked, flight_after, grow);
        }
        let lost = self.loss.board.is_lost(self.snd_una, self.snd_mss);
        let may_enter = self.snd_una >= self.cc.recover() && self.snd_max > self.snd_una;
        if may_enter && (self.loss.dupacks >= DUP_THRESH || lost) {
            self.enter_sack_recovery(ctx, acked + sacked);
        }
    }

    /// RFC 6675 section 5 step 4 and RFC 6937 section 3's initialisation.
    fn enter_sack_recovery(&mut self, ctx: &mut Ctx<'_>, delivered: u32) {
        let flight = self.snd_max.since(self.snd_una);
        let prior = self.cc.snapshot();
        self.cc.enter_fast_recovery(flight, self.snd_max);
        self.keep_undo(ctx, Event::FastRetransmit, prior);
        self.loss.board.high_rxt = self.snd_una;
        self.loss.rxt_mark = None;
        self.loss.recovery = Some(Recovery::new(self.snd_max, flight));
        let c = ctx.net.counters();
        c.sack_recoveries += 1;
        c.fast_retransmits += 1;
        self.pace_recovery(ctx, delivered);
    }

    /// RFC 6937 section 3 on one ACK in recovery: sndcnt from what arrived, then
    /// NextSeg (RFC 6675 section 4) until it is spent. The first ACK always
    /// lets one segment go (the fast retransmit, as Linux does).
    fn pace_recovery(&mut self, ctx: &mut Ctx<'_>, delivered: u32) {
        let Some(mut r) = self.loss.recovery else { return };
        let pipe = self.loss.board.pipe(self.snd_una, self.snd_max, self.snd_mss);
        let mut budget = r.on_ack(delivered, pipe, self.cc.ssthresh(), self.snd_mss) as i64;
        if r.sent() == 0 {
            budget = budget.max(1);
        }
        while budget > 0 {
            let Some((seq, len, new)) = self.next_seg() else { break };
            let fin = self.fin_queued && seq + len == self.data_end() && (new || self.snd_max > self.data_end());
            self.transmit(ctx, Tx::Data { seq, len, fin });
            if new {
                self.snd_nxt = seq + len + fin as u32;
            } else {
                self.loss.board.high_rxt = self.loss.board.high_rxt.max(seq + len + fin as u32);
                self.loss.rxt_mark = Some(self.snd_max);
                self.count_retransmission(seq, len + fin as u32);
            }
            r.on_sent(len.max(1));
            budget -= len.max(1) as i64;
        }
        self.loss.recovery = Some(r);
    }

    /// RACK's rule (RFC 8985 section 6.2) applied to retransmissions, which
    /// RFC 6675 alone cannot see lost: data sent after the latest retransmission
    /// has been SACKed while retransmitted holes are still missing, so those
    /// retransmissions were lost too. HighRxt goes back to SND.UNA and NextSeg
    /// sends the holes again (a reordered one shows up as a D-SACK).
    fn detect_lost_retransmissions(&mut self) {
        let (Some(mark), Some(high)) = (self.loss.rxt_mark, self.loss.board.highest_sacked()) else { return };
        if high > mark && self.loss.board.high_rxt > self.snd_una {
            self.loss.board.high_rxt = self.snd_una;
            self.loss.rxt_mark = None;
        }
    }

    /// RFC 6675 section 4, NextSeg: a lost hole (rule 1), else new data the
    /// window allows (rule 2), else any hole below the highest SACK (rule 3).
    /// With nothing SACKed (duplicate ACKs alone), SND.UNA's segment is the hole.
    fn next_seg(&self) -> Option<(Seq, u32, bool)> {
        if let Some((seq, len)) = self.loss.board.next_hole(self.snd_una, self.snd_mss, false) {
            return Some((seq, len, false));
        }
        if self.loss.board.is_empty() && self.loss.board.high_rxt <= self.snd_una {
            let len = self.data_end().since(self.snd_una).min(self.snd_mss);
            return (len > 0 || self.fin_queued).then_some((self.snd_una, len, false));
        }
        let end = self.data_end();
        let room = (self.snd_una + self.snd_wnd).since(self.snd_nxt).min(self.snd_wnd);
        let len = end.since(self.snd_nxt).min(self.snd_mss).min(room);
        if self.snd_nxt == self.snd_max && len > 0 {
            return Some((self.snd_nxt, len, true));
        }
        self.loss.board.next_hole(self.snd_una, self.snd_mss, true).map(|(s, l)| (s, l, false))
    }

    /// A retransmission timeout under SACK: recovery ends; the scoreboard stays
    /// (what the peer holds is not sent again: RFC 6675 section 5.1 lets the
    /// sender keep it, as Linux does), unless a second timeout in a row suggests
    /// the peer reneged (RFC 2018 section 8). The state before is kept to undo
    /// a spurious timeout (RFC 3522, `undo.rs`).
    pub(super) fn on_timeout_loss(&mut self, ctx: &mut Ctx<'_>) {
        let prior = self.cc.snapshot();
        self.keep_undo(ctx, Event::Timeout, prior);
        self.loss.recovery = None;
        self.loss.dupacks = 0;
        if self.retries > 1 {
            self.loss.board.clear();
        }
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
        let b = &self.loss.board;
        let outstanding = self.snd_max.since(self.snd_una);
        let pipe = b.pipe(self.snd_una, self.snd_max, self.snd_mss);
        let retrans_out = b.high_rxt.max(self.snd_una).since(self.snd_una).saturating_sub(b.sacked_below(b.high_rxt));
        LossInfo {
            congestion: self.cc.name(),
            sack: self.syn_opts.sack,
            timestamps: self.syn_opts.timestamps,
            sacked: b.sacked_bytes(),
            // What is neither SACKed nor in the pipe (the pipe counts retransmissions twice).
            lost: (outstanding - b.sacked_bytes()).saturating_sub(pipe.saturating_sub(retrans_out)),
            retrans_out,
            reordering: DUP_THRESH,
            dsacks: b.dsacks,
            spurious_rtos: self.loss.spurious,
            undos: self.loss.undos,
            hystart: self.cc.hystart_phase().name(),
        }
    }

    /// RFC 8985 section 7: a tail loss probe may be scheduled with SACK, data
    /// in flight, outside recovery and timer backoff, once the RTT is known.
    fn tlp_eligible(&self) -> bool {
        self.syn_opts.sack
            && matches!(self.state, State::Established | State::CloseWait)
            && self.loss.recovery.is_none()
            && !self.cc.in_recovery()
            && self.retries == 0
            && self.snd_max > self.snd_una
            && self.loss.tlp_probe.is_none()
            && self.rtt.srtt().is_some()
    }

    /// RFC 8985 section 7.2: (re)arms the probe timeout after data is sent or
    /// an ACK advances: PTO = 2 * SRTT, plus WCDelAckT for a lone segment,
    /// and only if it comes before the retransmission timer.
    pub(super) fn arm_tlp(&mut self, now: Instant) {
        if !self.tlp_eligible() {
            self.loss.tlp_at = None;
            return;
        }
        if self.loss.tlp_at.is_some() && !self.loss.tlp_rearm {
            return;
        }
        self.loss.tlp_rearm = false;
        let mut pto = self.rtt.srtt().unwrap_or_default() * 2;
        if self.snd_max.since(self.snd_una) <= self.snd_mss {
            pto += WC_DEL_ACK;
        }
        let at = now + pto.max(MIN_PTO);
        self.loss.tlp_at = if self.rto_at.is_some_and(|r| at >= r) { None } else { Some(at) };
    }

    /// RFC 8985 section 7.3: the probe timeout fired: send one new segment if
    /// the window allows, else the last segment again, and rearm the RTO.
    pub(super) fn on_tlp_timeout(&mut self, ctx: &mut Ctx<'_>) {
        if !self.tlp_eligible() {
            return;
        }
        ctx.net.counters().tail_loss_probes += 1;
        let end = self.data_end();
        let room = (self.snd_una + self.snd_wnd.min(self.cc.cwnd().max(self.snd_mss))).since(self.snd_nxt);
        let new = end.since(self.snd_nxt).min(self.snd_mss).min(room);
        let seq = if self.snd_nxt == self.snd_max && new > 0 && room < u32::MAX / 2 {
            let seq = self.snd_nxt;
            let fin = self.fin_queued && seq + new == end;
            self.transmit(ctx, Tx::Data { seq, len: new, fin });
            self.snd_nxt = seq + new + fin as u32;
            seq
        } else {
            let hi = end.min(self.snd_max);
            let seq = (hi - self.snd_mss).max(self.snd_una);
            let fin = self.fin_queued && self.snd_max > end;
            self.transmit(ctx, Tx::Data { seq, len: hi.since(seq), fin });
            seq
        };
        self.loss.tlp_probe = Some(seq);
        self.rto_at = Some(ctx.now + self.rtt.rto());
    }

    /// An ACK after a probe (RFC 8985 sections 6.2 and 7.4): if it SACKs the
    /// probe, everything still unSACKed below it was sent at least a PTO (two
    /// SRTTs) earlier, beyond RACK's reordering window: lost, so recovery
    /// repairs it now. An ACK past the probe settles it.
    fn settle_probe(&mut self, seg: &Segment<'_>) {
        let Some(p) = self.loss.tlp_probe else { return };
        if self.snd_una > p {
            self.loss.tlp_probe = None;
        } else if seg.options.sack_blocks().iter().any(|&(_, r)| r > p && r <= self.snd_max) {
            self.loss.board.lost_below = Some(p);
            self.loss.tlp_probe = None;
        }
    }
}
