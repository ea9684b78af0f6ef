//! SEGMENT ARRIVES (RFC 9293 section 3.10.7; BSD's tcp_input) for a connection
//! that has a TCB: SYN-SENT (section 3.10.7.3) and the rest (section 3.10.7.4),
//! whose checks are one function each, in the RFC's order, so that
//! `on_segment_synchronized` reads as the RFC's list. The RFC 5961 defences
//! (RST and SYN in the window, ACK range) sit in the checks they refine; RFC
//! 5681/6582 congestion control is told about ACKs in the fifth.

use super::output::Tx;
use super::undo::Event;
use super::{our_mss, Conn, Ctx, MAX_WSCALE};
use crate::buffer::KeptToken;
use crate::counters::DropReason;
use crate::tcp::cause::Cause;
use crate::tcp::config::STRETCH_ACK_BYTES;
use crate::tcp::congestion::AckAction;
use crate::tcp::error::TcpError;
use crate::tcp::segment::Segment;
use crate::tcp::seq::Seq;
use crate::tcp::state::State;
use crate::tcp::timestamps::SynOptions;

/// What a check of section 3.10.7.4 decided.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Step {
    /// Go on to the next check.
    Continue,
    /// Drop the segment (after any ACK or reset the check sent), for this reason.
    Drop(DropReason),
    /// The segment has been acted on; stop here ("... and return").
    Done,
}

/// Runs a check: returns from the caller unless the check says to continue.
macro_rules! step {
    ($check:expr) => {
        match $check {
            Step::Continue => {}
            Step::Drop(reason) => return Err(reason),
            Step::Done => return Ok(()),
        }
    };
}

/// The part of a segment's text and FIN the first check kept.
struct Text<'a> {
    seq: Seq,
    payload: &'a [u8],
    fin: bool,
    /// Text refused for lack of window (a zero-window probe): the segment is
    /// processed, then counted as dropped.
    refused: bool,
}

impl Conn {
    /// SEGMENT ARRIVES for this connection (RFC 9293 section 3.10.7), then
    /// whatever the segment allows or obliges us to send.
    pub fn on_segment(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Result<(), DropReason> {
        self.stats.segs_in += 1;
        let r = match self.state {
            State::SynSent => self.on_segment_syn_sent(ctx, seg),
            State::Closed | State::Listen => Err(DropReason::TcpNoSocket),
            _ => self.on_segment_synchronized(ctx, seg),
        };
        self.output(ctx);
        r
    }

    /// Whether an ACK waits for the end of the batch (`Ctx::batch`).
    pub fn acks_at_batch_end(&self) -> bool {
        self.ack_at_batch_end
    }

    /// The batch has ended: the ACK held back for it goes out (if nothing sent
    /// since has carried it).
    pub fn ack_held(&mut self, ctx: &mut Ctx<'_>) {
        if std::mem::take(&mut self.ack_at_batch_end) {
            self.ack_now = true;
            self.output(ctx);
        }
    }

    /// The options of a SYN: MSS (RFC 9293 section 3.7.1), window scale (RFC
    /// 7323 section 2), SACK-permitted (RFC 2018 section 2) and timestamps (RFC
    /// 7323 section 3.2), each of the last two on only if both SYNs carry it.
    pub(super) fn take_syn_options(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) {
        let opts = SynOptions::negotiate(&seg.options, self.offer_sack, self.offer_ts);
        let tsval = seg.options.timestamp.map(|(v, _)| v);
        self.apply_syn_options(ctx, opts, tsval);
    }

    /// Puts negotiated options into effect: from a SYN here, or from wherever
    /// they were kept (a SYN cookie) when the SYN itself is gone. `tsval` is the
    /// peer's latest TSval, the first TS.Recent.
    pub fn apply_syn_options(&mut self, ctx: &mut Ctx<'_>, opts: SynOptions, tsval: Option<u32>) {
        self.syn_opts = opts;
        if let (true, Some(tsval)) = (opts.timestamps, tsval) {
            self.ts.on_syn(tsval, ctx.now);
        }
        let peer_mss = opts.mss.max(64);
        // Eff.snd.MSS = min(SendMSS + 20, MMS_S) - TCP header - IP options (RFC 9293
        // section 3.7.1), less the timestamp option every segment then carries
        // (RFC 7323 section 3.2; Linux does the same).
        self.snd_mss = ((peer_mss as u32).min(our_mss(ctx.net) as u32) - self.ts_overhead()).max(64);
        self.cc.set_smss(self.snd_mss);
        if !opts.timestamps {
            // HyStart++ needs an RTT sample from (nearly) every ACK: without
            // timestamps we time one segment per round trip, never the
            // N_RTT_SAMPLE a round needs, so RFC 5681 slow start it is.
            self.cc.without_hystart();
        }
        self.peer_wscale = opts.wscale;
        match opts.wscale {
            // RFC 7323 section 2.3: a shift above 14 is used as 14.
            Some(s) => self.snd_wscale = s.min(MAX_WSCALE),
            None => {
                // Scaling only applies when both sides sent the option.
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
    }

    /// RFC 9293 section 3.10.7.3, SYN-SENT: first the ACK bit, second the RST
    /// bit, third security, fourth the SYN bit; a segment with neither SYN nor
    /// RST is dropped (fifth).
    fn on_segment_syn_sent(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Result<(), DropReason> {
        // First, check the ACK bit.
        if seg.ack_flag && (seg.ack <= self.iss || seg.ack > self.snd_max) {
            if !seg.rst {
                self.transmit(ctx, Tx::RstAt(seg.ack));
            }
            return Err(DropReason::TcpNotAcceptable);
        }
        // Second, the RST bit: only with an acceptable ACK (RFC 5961 section 3 keeps this rule for SYN-SENT).
        if seg.rst {
            if seg.ack_flag {
                ctx.net.counters().rx_resets += 1;
                self.close_with(ctx, Some(TcpError::ConnectionRefused), Cause::RcvRst);
                return Ok(());
            }
            return Err(DropReason::TcpNotAcceptable);
        }
        // Third, security: not implemented (see `on_segment_synchronized`).
        // Fourth, the SYN bit; without it (nor RST), fifth: drop the segment.
        if !seg.syn {
            return Err(DropReason::TcpNotAcceptable);
        }
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1;
        self.take_syn_options(ctx, seg);
        self.rcv_adv = self.rcv_nxt + self.syn_wnd as u32;
        self.last_rcv = ctx.now;
        if seg.ack_flag {
            self.ack_advances(ctx, seg.ack, seg.options.timestamp);
        }
        // The window of a SYN is never scaled (RFC 7323 section 2.2).
        self.snd_wnd = seg.wnd as u32;
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        if self.snd_una > self.iss {
            self.ack_now = true;
            self.set_state(ctx, State::Established, Cause::RcvSynAckSndAck);
            // "If there are other controls or text in the segment, then continue
            // processing at the sixth step" (text and FIN).
            if !seg.payload.is_empty() || seg.fin {
                self.text_and_fin(ctx, seg.seq + 1, seg.payload, seg.fin);
            }
        } else {
            // Simultaneous open (RFC 9293 MUST-10, Figure 7).
            self.set_state(ctx, State::SynReceived, Cause::RcvSynSndSynAck);
            self.transmit(ctx, Tx::Syn);
        }
        Ok(())
    }

    /// RFC 9293 section 3.10.7.4: SYN-RECEIVED and the synchronized states, in
    /// the RFC's order of checks. Each check returns a [`Step`]: go on to the
    /// next, or stop here (having acted on the segment, or dropped it).
    fn on_segment_synchronized(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Result<(), DropReason> {
        // A retransmission of the peer's SYN while we are in SYN-RECEIVED: our
        // SYN,ACK was lost; send it again (as Linux does) rather than wait for our timer.
        if self.state == State::SynReceived && seg.syn && !seg.ack_flag && !seg.rst && seg.seq == self.irs {
            self.transmit(ctx, Tx::Syn);
            return Ok(());
        }
        // The peer's SYN,ACK in SYN-RECEIVED after a simultaneous open (Figure 7,
        // line 6): the SYN is the one already received; trimmed off (as section
        // 3.10.7.4 trims old octets), the ACK completes the handshake.
        let trimmed;
        let seg = if self.state == State::SynReceived && seg.syn && seg.ack_flag && !seg.rst && seg.seq == self.irs {
            trimmed = Segment { syn: false, seq: seg.seq + 1, ..*seg };
            &trimmed
        } else {
            seg
        };
        let mut text = Text { seq: seg.seq, payload: seg.payload, fin: seg.fin, refused: false };
        step!(self.paws_check(ctx, seg));
        step!(self.first_check_sequence(ctx, seg, &mut text));
        self.take_timestamp(ctx, seg);
        step!(self.second_check_rst(ctx, seg));
        // Third, security: not implemented. We neither send nor check IP security
        // options (RFC 9293 section 3.6 leaves their use to the IP layer), so no
        // segment fails this check.
        step!(self.fourth_check_syn(ctx, seg));
        step!(self.fifth_check_ack(ctx, seg));
        // Sixth, the URG bit: urgent data is delivered inline (as with
        // SO_OOBINLINE); the pointer is not tracked.
        // Seventh and eighth: the text and the FIN.
        self.text_and_fin(ctx, text.seq, text.payload, text.fin);
        if text.refused {
            return Err(DropReason::TcpNotAcceptable);
        }
        Ok(())
    }

    /// RFC 7323 section 5.3, R1 (PAWS), before the acceptance test: a segment
    /// with an old TSval is answered with an ACK (not an RST) and dropped.
    fn paws_check(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Step {
        let Some((tsval, _)) = seg.options.timestamp else { return Step::Continue };
        if !self.syn_opts.timestamps || !self.ts.paws_rejects(tsval, seg.rst, ctx.now) {
            return Step::Continue;
        }
        ctx.net.counters().paws_rejected += 1;
        self.ack_now = true;
        Step::Drop(DropReason::TcpNotAcceptable)
    }

    /// RFC 7323 section 5.3, R3 (section 4.3's rule): an acceptable segment's
    /// TSval may become TS.Recent.
    fn take_timestamp(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) {
        if let (true, Some((tsval, _))) = (self.syn_opts.timestamps, seg.options.timestamp) {
            self.ts.on_segment(tsval, seg.seq, ctx.now);
        }
    }

    /// RFC 9293 section 3.10.7.4, first check: the sequence number. An
    /// unacceptable segment is answered with an ACK (unless it is an RST) and
    /// dropped; an acceptable one has its text trimmed to the window in `text`.
    fn first_check_sequence<'a>(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'a>, text: &mut Text<'a>) -> Step {
        let rcv_wnd = self.rcv_wnd();
        let wnd_end = self.rcv_nxt + rcv_wnd;
        let mut acceptable = in_window(self.rcv_nxt, seg, rcv_wnd);
        // "If the RCV.WND is zero, no segments will be acceptable, but special
        // allowance should be made to accept valid ACKs, URGs, and RSTs": a segment
        // at RCV.NXT is processed with its text trimmed off. A lone FIN needs no
        // buffer space and is kept.
        if !acceptable && rcv_wnd == 0 && seg.seq == self.rcv_nxt && !seg.syn {
            acceptable = true;
            if !text.payload.is_empty() {
                // A zero-window probe: answered with an ACK showing the window.
                text.payload = &[];
                text.fin = false;
                text.refused = true;
                self.ack_now = true;
            }
        }
        if !acceptable && !seg.syn {
            if seg.rst {
                // RFC 5961 section 3.2: an RST outside the window is dropped silently.
                return Step::Drop(DropReason::TcpNotAcceptable);
            }
            // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>. In TIME-WAIT this is the
            // retransmitted FIN: acknowledge it and restart the 2 MSL timeout.
            if self.state == State::TimeWait && seg.fin {
                self.close_at = Some(ctx.now + ctx.cfg.msl * 2);
            }
            if !seg.payload.is_empty() && seg.seq + seg.payload.len() as u32 <= self.rcv_nxt {
                // Old data again: report it in a D-SACK block (RFC 2883 section 4.1).
                self.loss.sack_rx.on_duplicate(seg.seq, seg.seq + seg.payload.len() as u32);
            }
            self.ack_now = true;
            return Step::Drop(DropReason::TcpNotAcceptable);
        }
        if acceptable && !seg.syn {
            // Trim what precedes RCV.NXT and what exceeds the window.
            let before = self.rcv_nxt.since(text.seq) as usize;
            if before > 0 {
                if !text.payload.is_empty() {
                    // Partly old (RFC 2883 section 4.1.2): the old part is a duplicate.
                    let dup_end = self.rcv_nxt.min(text.seq + text.payload.len() as u32);
                    self.loss.sack_rx.on_duplicate(text.seq, dup_end);
                }
                if before > text.payload.len() {
                    text.fin = false; // the FIN too was already received
                }
                text.payload = &text.payload[before.min(text.payload.len())..];
                text.seq = self.rcv_nxt;
            }
            let room = wnd_end.since(text.seq) as usize;
            if text.payload.len() > room {
                text.payload = &text.payload[..room];
                text.fin = false;
            }
        }
        Step::Continue
    }

    /// RFC 9293 section 3.10.7.4, second check: the RST bit (with RFC 5961
    /// section 3.2 as adopted by RFC 9293: only an RST at exactly RCV.NXT resets).
    fn second_check_rst(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Step {
        if !seg.rst {
            return Step::Continue;
        }
        if seg.seq != self.rcv_nxt {
            if self.state == State::TimeWait {
                // RFC 1337 (TIME-WAIT assassination) with RFC 5961 section 3's
                // note: a challenge ACK here would be answered by a closed peer
                // with an exact RST that ends TIME-WAIT early. Drop silently.
                return Step::Drop(DropReason::TcpNotAcceptable);
            }
            // In the window but not exact: challenge ACK.
            self.challenge_ack(ctx);
            return Step::Drop(DropReason::TcpNotAcceptable);
        }
        ctx.net.counters().rx_resets += 1;
        match self.state {
            State::SynReceived if self.passive => {
                // MUST-11: back to LISTEN (the table drops this fork).
                self.set_state(ctx, State::Listen, Cause::RcvRst);
            }
            State::SynReceived => self.close_with(ctx, Some(TcpError::ConnectionRefused), Cause::RcvRst),
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                self.close_with(ctx, Some(TcpError::ConnectionReset), Cause::RcvRst)
            }
            _ => self.close_with(ctx, None, Cause::RcvRst),
        }
        Step::Done
    }

    /// RFC 9293 section 3.10.7.4, fourth check: the SYN bit (RFC 5961 section 4).
    fn fourth_check_syn(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Step {
        if !seg.syn {
            return Step::Continue;
        }
        if self.state == State::SynReceived && self.passive {
            // "If the connection was initiated with a passive OPEN, then return
            // this connection to the LISTEN state and return."
            self.set_state(ctx, State::Listen, Cause::RcvSyn);
            return Step::Done;
        }
        // RFC 5961 section 4.2: whatever the sequence number, a challenge ACK.
        self.challenge_ack(ctx);
        Step::Drop(DropReason::TcpNotAcceptable)
    }

    /// RFC 9293 section 3.10.7.4, fifth check: the ACK field. Completes the
    /// handshake in SYN-RECEIVED, rejects ACKs outside RFC 5961 section 5.2's
    /// range, processes the acknowledgment and window, and moves the closing
    /// states on when our FIN is acknowledged.
    fn fifth_check_ack(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Step {
        if !seg.ack_flag {
            return Step::Drop(DropReason::TcpNotAcceptable);
        }
        self.last_rcv = ctx.now;
        self.ka_probes = 0;
        self.arm_keepalive(ctx.now);
        if self.state == State::SynReceived {
            if seg.ack > self.snd_una && seg.ack <= self.snd_max {
                self.snd_wnd = (seg.wnd as u32) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = seg.ack;
                self.set_state(ctx, State::Established, Cause::RcvAckOfSyn);
            } else {
                self.transmit(ctx, Tx::RstAt(seg.ack));
                return Step::Drop(DropReason::TcpNotAcceptable);
            }
        }
        // RFC 5961 section 5.2: (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT.
        if !seg.ack.in_range_inclusive(self.snd_una - self.max_snd_wnd, self.snd_max) {
            self.challenge_ack(ctx);
            return Step::Drop(DropReason::TcpNotAcceptable);
        }
        self.process_ack(ctx, seg);
        match self.state {
            State::FinWait1 if self.fin_acked() => self.set_state(ctx, State::FinWait2, Cause::RcvAckOfFin),
            State::Closing if self.fin_acked() => self.set_state(ctx, State::TimeWait, Cause::RcvAckOfFin),
            State::LastAck if self.fin_acked() => {
                self.close_with(ctx, None, Cause::RcvAckOfFin);
                return Step::Done;
            }
            _ => {}
        }
        Step::Continue
    }

    /// SND.UNA advances to `ack` (already checked to be acceptable): acknowledged
    /// data leaves the send buffer, the round trip is sampled, the timer restarts.
    fn ack_advances(&mut self, ctx: &mut Ctx<'_>, ack: Seq, ts: Option<(u32, u32)>) -> u32 {
        if ack <= self.snd_una {
            return 0;
        }
        let acked = ack.since(self.snd_una);
        let data = ack.since(self.buf_seq).min(self.send.len() as u32);
        self.send.consume(data as usize);
        self.expand_sndbuf(ctx.cfg);
        if data > 0 && self.send.is_empty() {
            self.buffer_drained(ctx.now, ctx.cfg.buffer_idle);
        }
        self.buf_seq += data;
        self.stats.bytes_acked += data as u64;
        self.snd_una = ack;
        if self.snd_nxt < ack {
            self.snd_nxt = ack;
        }
        let mut sampled = false;
        if let Some((timed, sent_at)) = self.rtt_timing {
            if ack > timed {
                self.rtt.sample(ctx.now - sent_at);
                self.cc.on_rtt_sample(ctx.now - sent_at);
                // RACK.min_RTT (RFC 8985 section 6.2 step 1) from the timed
                // segment, not from a TSecr, which may echo a later segment.
                self.loss.rack.on_rtt_sample(ctx.now - sent_at);
                self.rtt_timing = None;
                sampled = true;
            }
        }
        // RFC 7323 section 4.1: with timestamps, every ACK that advances SND.UNA
        // gives a sample from its TSecr, retransmitted segments included (the
        // echo says which transmission arrived, so Karn's ambiguity is gone).
        // The microsecond timing above wins when both apply.
        if let (false, true, Some((_, tsecr))) = (sampled, self.syn_opts.timestamps, ts) {
            if let Some(r) = self.ts.rtt(tsecr, ctx.now) {
                self.rtt.sample(r);
                self.cc.on_rtt_sample(r);
            }
        }
        self.loss.tlp_rearm = true;
        // Forward progress: the retry count and backoff start over.
        self.retries = 0;
        self.rtt.reset_backoff();
        // RFC 6298 sections 5.2 and 5.3.
        self.rto_at = if self.snd_una == self.snd_max { None } else { Some(ctx.now + self.rtt.rto()) };
        acked
    }

    /// The ACK processing of RFC 9293 section 3.10.7.4, fifth step, for
    /// ESTABLISHED and the states that share it; congestion control on top.
    fn process_ack(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) {
        let wnd = (seg.wnd as u32) << self.snd_wscale;
        // Any acceptable ACK shows the peer alive: zero-window probing may go on (MUST-36).
        self.persist_probes = 0;
        self.cc.clock(ctx.now, self.rtt.srtt());
        if seg.ack > self.snd_una {
            let flight_before = self.snd_max.since(self.snd_una);
            // The SYN's sequence number is not data: it does not grow cwnd.
            let syn = (self.snd_una == self.iss) as u32;
            self.check_eifel(ctx, seg);
            let acked = self.ack_advances(ctx, seg.ack, seg.options.timestamp) - syn;
            if self.syn_opts.sack {
                self.sack_ack(ctx, seg, acked, flight_before > syn, false);
            } else {
                let flight_after = self.snd_max.since(self.snd_una);
                let action = self.cc.on_ack(seg.ack, acked, flight_after, flight_before > syn);
                self.on_congestion_action(ctx, action);
            }
        } else if seg.ack == self.snd_una && (self.snd_max > self.snd_una || self.has_sack_blocks(seg)) {
            // A duplicate ACK (RFC 5681 section 2); not while probing a zero
            // window, where every probe is answered by one. With nothing in
            // flight it may still carry a D-SACK, which RACK learns from (RFC
            // 8985 section 6.2 step 4).
            let dup = self.snd_max > self.snd_una
                && self.snd_wnd > 0
                && seg.payload.is_empty()
                && !seg.fin
                && wnd == self.snd_wnd;
            if self.syn_opts.sack {
                // RFC 6675 section 2: newly SACKed octets make it a duplicate too.
                self.sack_ack(ctx, seg, 0, false, dup);
            } else if dup {
                let flight = self.snd_max.since(self.snd_una);
                let prior = self.cc.snapshot();
                let action = self.cc.on_dup_ack(self.snd_una, flight, self.snd_max);
                if action == AckAction::FastRetransmit {
                    // Eifel may find it spurious (RFC 3522): one segment goes again.
                    self.keep_undo(ctx, Event::FastRetransmit, prior);
                    self.count_retransmission(self.snd_una, self.snd_mss);
                }
                self.on_congestion_action(ctx, action);
            }
        }
        if let Some(cwnd) = self.cc.take_hystart_exit() {
            // HyStart++ left slow start (RFC 9406), counted as Linux counts its HyStart's.
            let c = ctx.net.counters();
            c.hystart_delay_detect += 1;
            c.hystart_delay_cwnd += u64::from(cwnd / self.snd_mss.max(1));
        }
        // Window update: if SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK).
        if seg.ack >= self.snd_una && (self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= seg.ack)) {
            self.snd_wnd = wnd;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            if wnd > 0 {
                self.persist_at = None;
                self.persist_backoff = 0;
            }
        }
    }

    fn has_sack_blocks(&self, seg: &Segment<'_>) -> bool {
        self.syn_opts.sack && !seg.options.sack_blocks().is_empty()
    }

    /// Does what congestion control asks after an ACK.
    fn on_congestion_action(&mut self, ctx: &mut Ctx<'_>, action: AckAction) {
        match action {
            AckAction::Nothing => {}
            AckAction::FastRetransmit => {
                ctx.net.counters().fast_retransmits += 1;
                self.retransmit_first(ctx);
            }
            // RFC 6582 section 3.2 step 5: retransmit the first unacknowledged segment.
            AckAction::RetransmitFirst => self.retransmit_first(ctx),
        }
    }

    /// RFC 9293 section 3.10.7.4, seventh (segment text) and eighth (FIN)
    /// steps; also where SYN-SENT continues with a SYN,ACK carrying them.
    fn text_and_fin(&mut self, ctx: &mut Ctx<'_>, seq: Seq, payload: &[u8], fin: bool) {
        if let Step::Continue = self.seventh_text(ctx, seq, payload) {
            self.eighth_fin(ctx, seq + payload.len() as u32, fin);
        }
    }

    /// Whether in-order `payload` may stay in its frame's buffer instead of
    /// being copied into the receive buffer: a GSO segment (more than one
    /// MSS), in a frame whose owner lets the stack keep it
    /// (`TcpNet::claim_rx_frame`). Linux queues the skb itself in the same
    /// way; the copy was the largest cost of receiving one.
    fn may_keep_frame(&mut self, ctx: &mut Ctx<'_>, payload: &[u8]) -> bool {
        payload.len() > our_mss(ctx.net) as usize
            && self.recv.can_claim(payload.len())
            && ctx.net.claim_rx_frame(payload)
    }

    /// Whether a frame's buffer claimed for data is still to come ([`Conn::fill_frame`]).
    pub(crate) fn awaits_frame(&self) -> bool {
        self.recv.awaits_frame()
    }

    /// The claimed frame's buffer, its data starting at `at`.
    pub(crate) fn fill_frame(&mut self, frame: Vec<u8>, at: usize, token: KeptToken) {
        self.recv.fill(frame, at, token);
    }

    /// Seventh, the segment text: into the receive buffer, and when to ACK it
    /// (RFC 9293 section 3.8.6.3, RFC 5681 section 4.2).
    fn seventh_text(&mut self, ctx: &mut Ctx<'_>, seq: Seq, payload: &[u8]) -> Step {
        if payload.is_empty() {
            return Step::Continue;
        }
        if !self.state.can_receive() {
            // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: a FIN has been received; ignore.
            return Step::Done;
        }
        if self.user_closed {
            // Nobody will read this (RFC 9293 SHLD-3, Linux's behaviour for
            // data arriving after close): reset.
            self.transmit(ctx, Tx::Rst);
            self.close_with(ctx, Some(TcpError::ConnectionAborted), Cause::RcvDataAfterClose);
            return Step::Done;
        }
        let off = seq.since(self.rcv_nxt);
        let had_gap = self.recv.has_out_of_order();
        if self.recv.holds(off, payload.len() as u32) {
            // Already held out of order: a D-SACK (RFC 2883 section 4.1.1).
            self.loss.sack_rx.on_duplicate(seq, seq + payload.len() as u32);
        } else if off > 0 {
            // RFC 2018 section 4: this arrival's block goes first.
            self.loss.sack_rx.on_out_of_order(seq);
        }
        let stored = match off == 0 && !had_gap && self.may_keep_frame(ctx, payload) {
            true => {
                ctx.net.counters().rx_kept += 1;
                Some(self.recv.claim(payload.len()))
            }
            false => self.recv.write(off, payload),
        };
        match stored {
            Some(advanced) => {
                self.rcv_nxt += advanced as u32;
                self.stats.bytes_received += advanced as u64;
                if off > 0 || had_gap {
                    // RFC 5681 section 4.2: ACK out-of-order data, and data
                    // filling a gap, at once.
                    self.ack_now = true;
                } else {
                    // A GSO segment from an offloading link (crate::offload) counts
                    // as the full-sized segments it carries, as Linux counts a GRO
                    // segment; any other segment counts as one.
                    let mss = our_mss(ctx.net) as usize;
                    self.unacked_segs += payload.len().div_ceil(mss).max(1) as u32;
                    // MUST-40 / SHLD-19: an ACK for at least every second
                    // segment; within a batch, once at its end for all of them
                    // (a stretch ACK, as for a GRO segment: TcpConfig::stretch_acks).
                    let stretch =
                        ctx.batch && ctx.cfg.stretch_acks && (self.unacked_segs as usize) * mss < STRETCH_ACK_BYTES;
                    if self.unacked_segs >= 2 && !stretch {
                        self.ack_now = true;
                    } else {
                        self.ack_at_batch_end |= self.unacked_segs >= 2;
                        if self.delack_at.is_none() {
                            self.delack_at = Some(ctx.now + ctx.cfg.delayed_ack);
                        }
                    }
                }
            }
            None => {
                // Could not hold it (out-of-order range limit): say where we are.
                self.ack_now = true;
            }
        }
        Step::Continue
    }

    /// Eighth, the FIN bit, at `fin_seq` (just past the text): processed once
    /// everything before it has arrived; a FIN beyond a gap waits for the gap.
    fn eighth_fin(&mut self, ctx: &mut Ctx<'_>, fin_seq: Seq, fin: bool) {
        if fin {
            if fin_seq == self.rcv_nxt {
                self.process_fin(ctx);
            } else if fin_seq > self.rcv_nxt && self.state.can_receive() {
                self.pending_fin = Some(fin_seq);
                self.ack_now = true;
            }
        } else if self.pending_fin == Some(self.rcv_nxt) && self.state.can_receive() {
            self.process_fin(ctx);
        }
    }

    /// Eighth, the FIN bit.
    fn process_fin(&mut self, ctx: &mut Ctx<'_>) {
        self.pending_fin = None;
        self.rcv_nxt += 1;
        self.fin_received = true;
        self.ack_now = true;
        match self.state {
            State::SynReceived | State::Established => self.set_state(ctx, State::CloseWait, Cause::RcvFinSndAck),
            State::FinWait1 => {
                if self.fin_acked() {
                    self.set_state(ctx, State::TimeWait, Cause::RcvFinAckSndAck);
                } else {
                    self.set_state(ctx, State::Closing, Cause::RcvFinSndAck);
                }
            }
            State::FinWait2 => self.set_state(ctx, State::TimeWait, Cause::RcvFinSndAck),
            State::TimeWait => self.close_at = Some(ctx.now + ctx.cfg.msl * 2),
            _ => {}
        }
    }
}

/// The four cases of the acceptance test (RFC 9293 section 3.10.7.4, first
/// check): does the segment fall in the receive window [RCV.NXT, +RCV.WND)?
pub(super) fn in_window(rcv_nxt: Seq, seg: &Segment<'_>, rcv_wnd: u32) -> bool {
    let wnd_end = rcv_nxt + rcv_wnd;
    match (seg.len(), rcv_wnd) {
        (0, 0) => seg.seq == rcv_nxt,
        (0, _) => seg.seq.in_range(rcv_nxt, wnd_end),
        (_, 0) => false,
        (seg_len, _) => seg.seq.in_range(rcv_nxt, wnd_end) || (seg.seq + seg_len - 1).in_range(rcv_nxt, wnd_end),
    }
}
