//! Segments out (BSD's tcp_output). Every segment a connection sends is built
//! by [`Conn::transmit`] from the TCB and a [`Tx`] saying which kind it is, so
//! that what every segment carrying an ACK implies (nothing more is owed: the
//! delayed ACK is cancelled) and what every segment advertises (the window, by
//! the receiver SWS rule) is written once. [`Conn::output`] decides what to
//! send after an event: data and FIN as the windows, Nagle and sender SWS
//! avoidance allow (RFC 9293 sections 3.8.6.2.1 and 3.7.4), then any ACK owed.

use super::{emit, Conn, Ctx};
use crate::tcp::challenge::per_connection_allows;
use crate::tcp::recv::window_edge;
use crate::tcp::segment::SegmentOut;
use crate::tcp::send::{segment_len, SendCheck};
use crate::tcp::seq::Seq;
use crate::tcp::state::State;

/// Which segment to send; the sequence numbers and flags come from the TCB.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Tx {
    /// SYN (active open) or SYN,ACK (passive or simultaneous open).
    Syn,
    /// A pure ACK, RFC 9293's <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> with SND.MAX
    /// for SND.NXT (see `transmit`).
    Ack,
    /// `len` octets of the send buffer from `seq`, and the FIN after them if `fin`:
    /// new data, a retransmission, or a lone FIN (`len` 0).
    Data { seq: Seq, len: u32, fin: bool },
    /// The FIN from SYN-RECEIVED with nothing queued, before our SYN is
    /// acknowledged (RFC 9293 section 3.10.4): not timed, and started by no timer
    /// of its own (the SYN,ACK's retransmission timer runs).
    FinBeforeSynAcked,
    /// One octet beyond a zero window at SND.NXT (RFC 9293 section 3.8.6.1).
    WindowProbe,
    /// A keep-alive <SEQ=SND.UNA-1> with no data (RFC 9293 section 3.8.4).
    KeepAlive,
    /// RFC 9293 section 3.10.5 (ABORT) and friends: <SEQ=SND.NXT><CTL=RST>
    /// (SND.MAX for SND.NXT), with an ACK as Linux sends it once the peer's
    /// sequence space is known.
    Rst,
    /// <SEQ=SEG.ACK><CTL=RST>: the answer to an unacceptable ACK while
    /// unsynchronized (RFC 9293 sections 3.10.7.3 and 3.10.7.4).
    RstAt(Seq),
}

impl Conn {
    /// Builds and sends one segment of kind `tx`, with the side effects on the
    /// TCB its kind implies. The only place segments of a connection are made.
    pub(super) fn transmit(&mut self, ctx: &mut Ctx<'_>, tx: Tx) {
        let mut s = SegmentOut { src_port: self.local.port(), dst_port: self.remote.port(), ..Default::default() };
        // The part of the send buffer carried, as (offset, length).
        let mut text = None;
        match tx {
            Tx::Syn => self.build_syn(ctx, &mut s),
            Tx::Ack => {
                // SND.MAX, not SND.NXT: after a timeout SND.NXT was set back to
                // retransmit, but an ACK must carry a sequence number the peer
                // finds acceptable.
                s.seq = self.snd_max;
                s.ack = Some(self.rcv_nxt);
            }
            Tx::Data { seq, len, fin } => text = Some(self.build_data(ctx, &mut s, seq, len, fin)),
            Tx::FinBeforeSynAcked => {
                let end = self.data_end();
                s.seq = end;
                s.fin = true;
                s.ack = Some(self.rcv_nxt);
                self.snd_nxt = end + 1;
                self.snd_max = self.snd_max.max(self.snd_nxt);
            }
            Tx::WindowProbe => {
                // SND.NXT stays: the octet counts as sent only if the peer acknowledges it.
                let seq = self.snd_nxt;
                s.seq = seq;
                s.ack = Some(self.rcv_nxt);
                self.snd_max = self.snd_max.max(seq + 1);
                text = Some((seq.since(self.buf_seq) as usize, 1));
            }
            Tx::KeepAlive => {
                // An old sequence number, which the peer answers with an ACK (RFC 9293 section 3.8.4).
                s.seq = self.snd_una - 1;
                s.ack = Some(self.rcv_nxt);
            }
            Tx::Rst => {
                s.seq = self.snd_max;
                s.rst = true;
                if self.state != State::SynSent {
                    s.ack = Some(self.rcv_nxt);
                }
            }
            Tx::RstAt(seq) => {
                s.seq = seq;
                s.rst = true;
            }
        }
        self.finish_segment(ctx, &mut s);
        let payload = match text {
            Some((off, len)) if off.checked_add(len).is_some_and(|end| end <= self.send.len()) => {
                self.send.slices(off, len)
            }
            Some((off, len)) => {
                // Never reached; should a sequence bug ever name octets the
                // buffer does not hold, the segment is not sent rather than the
                // stack brought down by a peer (issue 13, item 1).
                debug_assert!(false, "segment text [{off}, +{len}) outside the send buffer");
                return;
            }
            None => [&[][..], &[][..]],
        };
        self.tx_error = emit(ctx, self.local, self.remote, &s, payload).err();
    }

    /// What every segment of the connection gets once its kind is built: the
    /// window and SACK blocks on an ACK, the timestamp option, and the "this
    /// segment carries an ACK" bookkeeping, which exists here only.
    fn finish_segment(&mut self, ctx: &mut Ctx<'_>, s: &mut SegmentOut) {
        if s.ack.is_some() && !s.syn && !s.rst {
            // Every ACK but the SYN,ACK's (whose window is never scaled) offers
            // the window, by the receiver SWS rule; an RST offers none.
            s.wnd = self.window_to_advertise();
            self.add_sack_blocks(s);
        }
        if self.syn_opts.timestamps && !s.syn && !s.rst {
            // RFC 7323 section 3.2: once negotiated, on every segment but RSTs
            // (which MAY omit it; Linux does).
            s.timestamp = Some(self.ts.option(ctx.now));
        }
        if let Some(ack) = s.ack {
            self.ts.on_ack_sent(ack);
        }
        // A link that cuts segments sums them too: every segment's checksum is
        // left to it (only the pseudo-header's sum is written).
        s.csum_partial = ctx.net.tso_max(*self.remote.ip()) > 0;
        self.stats.segs_out += 1;
        if s.ack.is_some() {
            // Every segment with ACK acknowledges all we have: nothing more is owed.
            self.ack_now = false;
            self.delack_at = None;
            self.unacked_segs = 0;
            self.ack_at_batch_end = false;
        }
    }

    /// RFC 2018 section 4: with SACK agreed, an ACK reports what is held out of
    /// order (and a duplicate first, RFC 2883), up to what fits beside timestamps.
    fn add_sack_blocks(&mut self, s: &mut SegmentOut) {
        if self.syn_opts.sack {
            s.sack_count = self.loss.sack_rx.blocks(self.rcv_nxt, self.recv.out_of_order_ranges(), &mut s.sack);
        }
    }

    /// The window field for a non-SYN segment, moving the advertised right edge
    /// by the receiver SWS rule (RFC 9293 section 3.8.6.2.2).
    fn window_to_advertise(&mut self) -> u16 {
        let edge = window_edge(self.rcv_nxt, self.rcv_adv, self.recv.free(), self.recv.capacity(), self.rcv_mss);
        let wnd = (edge.since(self.rcv_nxt) >> self.rcv_wscale).min(u16::MAX as u32);
        self.rcv_adv = self.rcv_adv.max(self.rcv_nxt + (wnd << self.rcv_wscale));
        debug_assert!(self.rcv_wnd() as usize <= self.recv.free(), "offered more than the buffer holds");
        wnd as u16
    }

    /// SYN (active open) or SYN,ACK (passive or simultaneous open), with our
    /// options: MSS always (RFC 9293 section 3.7.1, SHLD-5), window scale on an
    /// active SYN and on a SYN,ACK only if the peer's SYN carried it (RFC 7323 section 2.2).
    fn build_syn(&mut self, ctx: &mut Ctx<'_>, s: &mut SegmentOut) {
        // A SYN,ACK once the peer's SYN is known: also when the SYN is
        // retransmitted from FIN-WAIT-1 or CLOSING after a simultaneous open.
        let synack = !matches!(self.state, State::Closed | State::SynSent);
        s.seq = self.iss;
        s.syn = true;
        s.mss = Some(self.rcv_mss as u16);
        self.syn_wnd = self.recv.free().min(u16::MAX as usize) as u16;
        s.wnd = self.syn_wnd;
        if !synack || self.peer_wscale.is_some() {
            s.wscale = Some(self.rcv_wscale);
        }
        // SACK-permitted and timestamps (RFC 2018 section 2, RFC 7323 section
        // 3.2): offered on a SYN, on a SYN,ACK only in answer to the peer's offer.
        s.sack_permitted = self.offer_sack && (!synack || self.syn_opts.sack);
        if self.offer_ts && (!synack || self.syn_opts.timestamps) {
            let ecr = if synack { self.ts.option(ctx.now).1 } else { 0 };
            s.timestamp = Some((self.ts.tsval(ctx.now), ecr));
        }
        if synack {
            s.ack = Some(self.rcv_nxt);
            self.rcv_adv = self.rcv_nxt + self.syn_wnd as u32;
        }
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if self.rto_at.is_none() {
            self.rto_at = Some(ctx.now + self.rtt.rto());
        }
        if self.rtt_timing.is_none() && !self.syn_retransmitted {
            self.rtt_timing = Some((self.iss, ctx.now));
        }
        self.last_send = ctx.now;
    }

    /// `len` octets from `seq` (and the FIN after them if `fin`); returns where
    /// they are in the send buffer.
    fn build_data(&mut self, ctx: &mut Ctx<'_>, s: &mut SegmentOut, seq: Seq, len: u32, fin: bool) -> (usize, usize) {
        let off = seq.since(self.buf_seq) as usize;
        s.seq = seq;
        s.ack = Some(self.rcv_nxt);
        s.fin = fin;
        // RFC 9293 section 3.9.1.2: PSH on the last segment of what is queued
        // (the link, cutting a GSO segment, keeps it on the last piece only).
        s.psh = len > 0 && seq + len == self.data_end();
        if len > self.snd_mss {
            // Only `send_what_fits` builds these, where the link cuts them.
            s.gso_size = self.snd_mss as u16;
        }
        let end = seq + len + fin as u32;
        if seq < self.snd_max {
            ctx.net.counters().retransmitted += 1;
            self.stats.retransmissions += 1;
            // Karn (MUST-18): no sample from a retransmitted segment.
            self.rtt_timing = None;
        } else if self.rtt_timing.is_none() {
            self.rtt_timing = Some((seq, ctx.now));
        }
        self.loss.tlp_rearm = true;
        if self.syn_opts.sack && end > seq {
            // RFC 8985 section 6.2: every transmission's time, for RACK. A GSO
            // segment is one entry, as Linux keeps one skb per TSO burst; the
            // link cuts it into MSS-sized segments that the peer SACKs or
            // loses one by one, and RACK cuts the entry where a SACK block,
            // a partial acknowledgement or a retransmission ends inside it.
            self.loss.rack.on_send(seq, end, ctx.now);
        }
        self.snd_max = self.snd_max.max(end);
        self.stats.bytes_sent += len as u64;
        self.last_send = ctx.now;
        // RFC 6298 section 5.1: start the timer when sending, if it is not running.
        if self.rto_at.is_none() {
            self.rto_at = Some(ctx.now + self.rtt.rto());
        }
        self.persist_at = None;
        debug_assert!(off + len as usize <= self.send.len());
        (off, len as usize)
    }

    /// RFC 5961 section 7: challenge ACKs are limited per connection, then by
    /// a stack-wide budget drawn at random each second (Linux since 4.7).
    pub(super) fn challenge_ack(&mut self, ctx: &mut Ctx<'_>) {
        let mine = per_connection_allows(&mut self.last_challenge, ctx.now, ctx.cfg.challenge_ack_interval);
        if mine && ctx.challenge.allow(ctx.now, ctx.net.rng()) {
            ctx.net.counters().challenge_acks += 1;
            self.transmit(ctx, Tx::Ack);
        } else {
            ctx.net.counters().challenge_acks_limited += 1;
        }
    }

    /// Retransmits the first unacknowledged segment (fast retransmit, partial ACK).
    pub(super) fn retransmit_first(&mut self, ctx: &mut Ctx<'_>) {
        if self.syn_unacked() {
            // The first unacknowledged octet is our SYN (issue 13, item 1).
            self.transmit(ctx, Tx::Syn);
            return;
        }
        let end = self.data_end();
        let len = end.since(self.snd_una).min(self.snd_mss);
        let fin = self.fin_queued && self.snd_una + len == end && self.snd_max > end;
        if len > 0 || fin {
            self.transmit(ctx, Tx::Data { seq: self.snd_una, len, fin });
        }
    }

    /// Sends what the window, congestion window, Nagle and SWS avoidance allow,
    /// then any ACK still owed. Called after every event.
    pub fn output(&mut self, ctx: &mut Ctx<'_>) {
        match self.state {
            State::Closed | State::Listen | State::SynSent => return,
            State::SynReceived | State::TimeWait => {
                if self.ack_now {
                    self.transmit(ctx, Tx::Ack);
                }
                return;
            }
            _ => {}
        }
        // RFC 5681 section 4.1: restart from IW after sending nothing for an RTO.
        if self.snd_una == self.snd_max && self.data_end() > self.snd_nxt && ctx.now - self.last_send > self.rtt.rto() {
            self.cc.on_idle_restart();
        }
        // In SACK recovery, ACKs clock out what is sent (PRR, RFC 6937), in `loss`.
        let resent = self.resend_lost(ctx, false);
        let sent = self.loss.recovery.is_none() && self.send_what_fits(ctx) || resent;
        // Data waits but nothing is in flight to bring an ACK: the persist timer
        // probes the window (MUST-35) and overrides SWS avoidance (3.8.6.2.1).
        let waiting = self.data_end() > self.snd_nxt;
        if waiting && self.rto_at.is_none() && self.persist_at.is_none() {
            self.persist_at = Some(ctx.now + self.persist_interval(ctx));
        }
        if !sent && self.ack_now {
            self.transmit(ctx, Tx::Ack);
        }
        self.arm_tlp(ctx.now);
    }

    /// With TSO (`crate::offload`): a full-sized segment of new data grows to
    /// what the segments sent one by one after it would have carried at once:
    /// as many whole MSS as the data, the usable window (the peer's window and
    /// cwnd, RFC 5681 section 3.1, RFC 9293 section 3.8.6.2.1) and the link's
    /// bound allow, and the short tail too where it would go at once (Nagle
    /// off, or the user closed); a tail Nagle or the window holds back stays
    /// for later, as it would. The link cuts it into the same MSS-sized
    /// segments, so the peer sees what it would have seen, in one write;
    /// retransmissions stay one MSS each (loss recovery, the scoreboard and
    /// RACK count octets, never written segments).
    fn tso_len(&self, ctx: &mut Ctx<'_>, unsent: u32, usable: u32) -> u32 {
        let mss = self.snd_mss;
        let room = unsent.min(usable).min(ctx.net.tso_max(*self.remote.ip()));
        if room <= mss {
            return mss;
        }
        match room == unsent && (self.opts.nodelay || self.fin_queued) {
            true => room,
            false => room / mss * mss,
        }
    }

    /// Sends data segments (the FIN with the last) while the send window, the
    /// congestion window and the sender SWS rule allow; returns whether any went.
    fn send_what_fits(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let mut sent = false;
        loop {
            let end = self.data_end();
            let mut unsent = end.since(self.snd_nxt);
            let fin_unsent = self.fin_queued && self.snd_nxt <= end;
            let limit = self.snd_wnd.min(self.cc.cwnd() + self.limited_transmit());
            let len = if self.snd_nxt < self.snd_max {
                // Retransmitting after a timeout: no Nagle, window and cwnd only,
                // and what the peer SACKed is skipped, not sent again; SACKed
                // octets are not in flight (RFC 6675 section 5.1).
                let (from, stop) = self.skip_sacked(self.snd_nxt);
                if from != self.snd_nxt {
                    self.snd_nxt = from;
                    continue;
                }
                if let Some(stop) = stop {
                    unsent = unsent.min(stop.since(from));
                }
                let in_flight = self.snd_nxt.since(self.snd_una) - self.loss.board.sacked_below(self.snd_nxt);
                let wnd_room = (self.snd_una + self.snd_wnd).since(self.snd_nxt).min(self.snd_wnd);
                unsent.min(limit.saturating_sub(in_flight)).min(wnd_room).min(self.snd_mss)
            } else {
                let usable = (self.snd_una + limit).since(self.snd_nxt);
                let len = segment_len(SendCheck {
                    unsent,
                    usable,
                    mss: self.snd_mss,
                    max_snd_wnd: self.max_snd_wnd,
                    outstanding: self.snd_max > self.snd_una,
                    nodelay: self.opts.nodelay,
                    closing: self.fin_queued,
                });
                match len == self.snd_mss {
                    true => self.tso_len(ctx, unsent, usable),
                    false => len,
                }
            };
            let fin = fin_unsent && self.snd_nxt + len == end;
            if len == 0 && !fin {
                break;
            }
            let seq = self.snd_nxt;
            self.transmit(ctx, Tx::Data { seq, len, fin });
            self.snd_nxt = seq + len + fin as u32;
            sent = true;
            if len == 0 {
                break;
            }
        }
        sent
    }
}
