//! A connection in TIME-WAIT, compacted (issue 13, item 3): once the user has
//! closed it and nothing is left in its buffers, a connection that enters
//! TIME-WAIT is replaced by a [`TimeWait`] record holding only what RFC 9293
//! section 3.10.7.4 needs to answer segments in that state (as Linux replaces
//! the socket by a `tcp_timewait_sock`): the 4-tuple, SND.NXT and RCV.NXT, the
//! window it offers, the timestamps (PAWS, RFC 7323 section 5) and a pending
//! D-SACK (RFC 2883), the challenge-ACK clock (RFC 5961 section 7), the expiry,
//! and the connection's id, so that its last transition is traced as before.
//! The full TCB (about 620 bytes, see `TcpConfig::max_tw_buckets`) is freed.
//!
//! Answers on the wire are those the full connection gives in TIME-WAIT: the
//! checks below are the TIME-WAIT branches of `input` and `output`, in the same
//! order (a test drives both with the same segments and compares the frames).
//! A connection the user still holds, or one with unread data, stays whole.

use super::input::in_window;
use super::{emit, Conn, Ctx};
use crate::counters::DropReason;
use crate::tcp::cause::Cause;
use crate::tcp::challenge::per_connection_allows;
use crate::tcp::id::ConnId;
use crate::tcp::recv::window_edge;
use crate::tcp::segment::{SackBlock, Segment, SegmentOut};
use crate::tcp::seq::Seq;
use crate::tcp::state::State;
use crate::tcp::status::{TcpInfo, TimerInfo};
use crate::tcp::timestamps::Timestamps;
use crate::tcp::trace::Transition;
use crate::time::{Duration, Instant};
use std::net::SocketAddrV4;

/// A connection in TIME-WAIT without its TCB (the size is in `TcpConfig::max_tw_buckets`'s note).
#[derive(Clone, Debug)]
pub struct TimeWait {
    /// The connection's id while it was whole: its transitions keep it.
    pub id: ConnId,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// When 2*MSL ends (restarted by a retransmitted FIN).
    pub expires: Instant,
    /// SND.NXT, which is SND.UNA and SND.MAX too: our FIN is acknowledged.
    snd_nxt: Seq,
    /// SND.WL1, SND.WL2 and the largest window the peer offered (RFC 5961
    /// section 5.2's ACK range uses it; a window update can still grow it).
    snd_wl1: Seq,
    snd_wl2: Seq,
    max_snd_wnd: u32,
    rcv_nxt: Seq,
    /// The right edge of the window last offered (it never moves back).
    rcv_adv: Seq,
    /// The size of the (empty) receive buffer: the window offered.
    rcv_buf: u32,
    /// The MSS we announced (the receiver SWS rule's threshold).
    rcv_mss: u32,
    snd_wscale: u8,
    rcv_wscale: u8,
    /// SACK and timestamps as the SYNs agreed.
    sack: bool,
    timestamps: bool,
    ts: Timestamps,
    /// A duplicate to report in the next ACK's first SACK block (RFC 2883).
    dsack: Option<SackBlock>,
    /// The last challenge ACK sent (RFC 5961 section 7's limit per connection).
    last_challenge: Option<Instant>,
}

impl Conn {
    /// This connection as a [`TimeWait`] record, if it can be one: in
    /// TIME-WAIT, closed by the user, nothing buffered either way, everything
    /// we sent acknowledged.
    pub fn time_wait_record(&self) -> Option<TimeWait> {
        let idle = self.recv.readable() == 0 && !self.recv.has_out_of_order() && self.send.is_empty();
        if self.state != State::TimeWait || !self.user_closed || !idle || self.snd_una != self.snd_max {
            return None;
        }
        Some(TimeWait {
            id: self.id,
            local: self.local,
            remote: self.remote,
            expires: self.close_at?,
            snd_nxt: self.snd_max,
            snd_wl1: self.snd_wl1,
            snd_wl2: self.snd_wl2,
            max_snd_wnd: self.max_snd_wnd,
            rcv_nxt: self.rcv_nxt,
            rcv_adv: self.rcv_adv,
            rcv_buf: self.recv.capacity().min(u32::MAX as usize) as u32,
            rcv_mss: self.rcv_mss,
            snd_wscale: self.snd_wscale,
            rcv_wscale: self.rcv_wscale,
            sack: self.syn_opts.sack,
            timestamps: self.syn_opts.timestamps,
            ts: self.ts,
            dsack: self.loss.sack_rx.pending_dsack(),
            last_challenge: self.last_challenge,
        })
    }
}

/// What a segment did to a TIME-WAIT record.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TwOutcome {
    /// Still in TIME-WAIT, until `expires` (which may have moved).
    Stays,
    /// Closed (an exact RST): the caller forgets the record.
    Closed,
}

impl TimeWait {
    /// SEGMENT ARRIVES in TIME-WAIT (RFC 9293 section 3.10.7.4), then the ACK
    /// owed, if any (what `Conn::on_segment` and `Conn::output` do there).
    pub fn on_segment(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> (Result<(), DropReason>, TwOutcome) {
        let mut owed = false;
        let r = self.checks(ctx, seg, &mut owed);
        if r == Ok(TwOutcome::Closed) {
            return (Ok(()), TwOutcome::Closed);
        }
        if owed {
            self.send_ack(ctx);
        }
        (r.map(|_| ()), TwOutcome::Stays)
    }

    /// The checks of section 3.10.7.4 as they apply in TIME-WAIT, in order;
    /// `owed` is set when an ACK must follow.
    fn checks(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>, owed: &mut bool) -> Result<TwOutcome, DropReason> {
        const DROP: Result<TwOutcome, DropReason> = Err(DropReason::TcpNotAcceptable);
        // RFC 7323 section 5.3, R1 (PAWS): an old TSval gets an ACK and is dropped.
        if let (true, Some((tsval, _))) = (self.timestamps, seg.options.timestamp) {
            if self.ts.paws_rejects(tsval, seg.rst, ctx.now) {
                ctx.net.counters().paws_rejected += 1;
                *owed = true;
                return DROP;
            }
        }
        // First, the sequence number.
        let Some(text) = self.first_check_sequence(ctx, seg, owed) else { return DROP };
        // RFC 7323 section 4.3: TS.Recent from an acceptable segment.
        if let (true, Some((tsval, _))) = (self.timestamps, seg.options.timestamp) {
            self.ts.on_segment(tsval, seg.seq, ctx.now);
        }
        // Second, the RST bit: only an exact one closes (RFC 5961 section 3);
        // any other is dropped silently, never challenged (RFC 1337).
        if seg.rst {
            if seg.seq != self.rcv_nxt {
                return DROP;
            }
            ctx.net.counters().rx_resets += 1;
            self.close(ctx, Cause::RcvRst);
            return Ok(TwOutcome::Closed);
        }
        // Fourth, the SYN bit (one that may reopen was taken by the table):
        // a challenge ACK (RFC 5961 section 4.2).
        if seg.syn {
            self.challenge_ack(ctx, owed);
            return DROP;
        }
        // Fifth, the ACK field, within RFC 5961 section 5.2's range; it can
        // only update the window, everything being acknowledged already.
        if !seg.ack_flag {
            return DROP;
        }
        if !seg.ack.in_range_inclusive(self.snd_nxt - self.max_snd_wnd, self.snd_nxt) {
            self.challenge_ack(ctx, owed);
            return DROP;
        }
        let wl_ok = self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= seg.ack);
        if seg.ack >= self.snd_nxt && wl_ok {
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            self.max_snd_wnd = self.max_snd_wnd.max((seg.wnd as u32) << self.snd_wscale);
        }
        // Seventh, the text: a FIN has been received, so it is ignored (and the
        // eighth step skipped). Eighth, a FIN at RCV.NXT: acknowledged, and
        // 2*MSL starts again.
        if text.len > 0 {
            return Ok(TwOutcome::Stays);
        }
        if text.fin && text.seq == self.rcv_nxt {
            self.rcv_nxt += 1;
            *owed = true;
            self.expires = ctx.now + ctx.cfg.msl * 2;
        }
        if text.refused {
            return DROP;
        }
        Ok(TwOutcome::Stays)
    }

    /// RFC 9293 section 3.10.7.4, first check: `None` if the segment is not
    /// acceptable (an ACK owed unless it is an RST; a retransmitted FIN restarts
    /// 2*MSL), else its text trimmed to the window.
    fn first_check_sequence(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>, owed: &mut bool) -> Option<Text> {
        let rcv_wnd = self.rcv_adv.since(self.rcv_nxt);
        let wnd_end = self.rcv_nxt + rcv_wnd;
        let mut text = Text { seq: seg.seq, len: seg.payload.len(), fin: seg.fin, refused: false };
        let mut acceptable = in_window(self.rcv_nxt, seg, rcv_wnd);
        if !acceptable && rcv_wnd == 0 && seg.seq == self.rcv_nxt && !seg.syn {
            acceptable = true;
            if text.len > 0 {
                text = Text { len: 0, fin: false, refused: true, ..text };
                *owed = true;
            }
        }
        if !acceptable && !seg.syn {
            if seg.rst {
                return None;
            }
            if seg.fin {
                self.expires = ctx.now + ctx.cfg.msl * 2;
            }
            let end = seg.seq + seg.payload.len() as u32;
            if !seg.payload.is_empty() && end <= self.rcv_nxt {
                self.duplicate(seg.seq, end);
            }
            *owed = true;
            return None;
        }
        if acceptable && !seg.syn {
            let before = self.rcv_nxt.since(text.seq) as usize;
            if before > 0 {
                if text.len > 0 {
                    let dup_end = self.rcv_nxt.min(text.seq + text.len as u32);
                    self.duplicate(text.seq, dup_end);
                }
                if before > text.len {
                    text.fin = false;
                }
                text.len -= before.min(text.len);
                text.seq = self.rcv_nxt;
            }
            let room = wnd_end.since(text.seq) as usize;
            if text.len > room {
                text.len = room;
                text.fin = false;
            }
        }
        Some(text)
    }

    /// RFC 2883 section 4: octets [left, right) came again.
    fn duplicate(&mut self, left: Seq, right: Seq) {
        if left < right {
            self.dsack = Some((left, right));
        }
    }

    /// RFC 5961 section 7: the connection's own limit, then the stack's budget.
    /// The challenge ACK, when sent, is also any ACK that was `owed`.
    fn challenge_ack(&mut self, ctx: &mut Ctx<'_>, owed: &mut bool) {
        let mine = per_connection_allows(&mut self.last_challenge, ctx.now, ctx.cfg.challenge_ack_interval);
        if mine && ctx.challenge.allow(ctx.now, ctx.net.rng()) {
            ctx.net.counters().challenge_acks += 1;
            self.send_ack(ctx);
            *owed = false;
        } else {
            ctx.net.counters().challenge_acks_limited += 1;
        }
    }

    /// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, with the window (receiver SWS
    /// rule, RFC 9293 section 3.8.6.2.2), a pending D-SACK and the timestamps.
    fn send_ack(&mut self, ctx: &mut Ctx<'_>) {
        let mut s = SegmentOut {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.snd_nxt,
            ack: Some(self.rcv_nxt),
            ..Default::default()
        };
        let free = self.rcv_buf as usize;
        let edge = window_edge(self.rcv_nxt, self.rcv_adv, free, free, self.rcv_mss);
        let wnd = (edge.since(self.rcv_nxt) >> self.rcv_wscale).min(u16::MAX as u32);
        self.rcv_adv = self.rcv_adv.max(self.rcv_nxt + (wnd << self.rcv_wscale));
        s.wnd = wnd as u16;
        if let (true, Some(d)) = (self.sack, self.dsack) {
            self.dsack = None;
            s.sack[0] = d;
            s.sack_count = 1;
        }
        if self.timestamps {
            s.timestamp = Some(self.ts.option(ctx.now));
        }
        self.ts.on_ack_sent(self.rcv_nxt);
        let _ = emit(ctx, self.local, self.remote, &s, [&[], &[]]);
    }

    /// A SYN that may end this TIME-WAIT for a new incarnation (RFC 9293
    /// section 3.10.7.4 note, RFC 1122 section 4.2.2.13): beyond what this one received.
    pub fn syn_may_reopen(&self, seg: &Segment<'_>) -> bool {
        seg.syn && !seg.ack_flag && !seg.rst && seg.seq > self.rcv_nxt
    }

    /// The highest sequence number this incarnation sent (a new one starts beyond it).
    pub fn snd_max(&self) -> Seq {
        self.snd_nxt
    }

    /// Records the end of TIME-WAIT (2*MSL, an exact RST, a new incarnation).
    pub fn close(&self, ctx: &mut Ctx<'_>, cause: Cause) {
        let (from, to) = (State::TimeWait, State::Closed);
        ctx.trace.push(Transition { conn: self.id, local: self.local, remote: self.remote, from, to, cause });
    }

    /// What `ss` shows of it: the state, the addresses, the window, the options
    /// and the time left; a record has no congestion or RTT state.
    pub fn info(&self) -> TcpInfo {
        TcpInfo {
            state: State::TimeWait,
            local: self.local,
            remote: self.remote,
            cwnd: 0,
            ssthresh: 0,
            srtt: None,
            rttvar: Duration::ZERO,
            rto: Duration::ZERO,
            snd_mss: 0,
            snd_wnd: 0,
            rcv_wnd: self.rcv_adv.since(self.rcv_nxt),
            snd_wscale: self.snd_wscale,
            rcv_wscale: self.rcv_wscale,
            unacked: 0,
            send_queue: 0,
            recv_queue: 0,
            out_of_order: 0,
            bytes_sent: 0,
            bytes_acked: 0,
            bytes_received: 0,
            retransmissions: 0,
            segs_in: 0,
            segs_out: 0,
            retries: 0,
            path_suspect: false,
            in_recovery: false,
            timers: TimerInfo { close: Some(self.expires), ..TimerInfo::default() },
            loss: crate::tcp::status::LossInfo { sack: self.sack, timestamps: self.timestamps, ..Default::default() },
        }
    }
}

/// The part of a segment's text and FIN the first check kept.
#[derive(Copy, Clone)]
struct Text {
    seq: Seq,
    len: usize,
    fin: bool,
    refused: bool,
}
