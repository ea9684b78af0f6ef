//! Timeouts (RFC 9293 section 3.10.8; BSD's tcp_timer): retransmission
//! (RFC 6298, with the R1 and R2 limits of RFC 9293 MUST-20..23), persist
//! (zero-window probing, section 3.8.6.1), keep-alive (section 3.8.4), the
//! delayed ACK (section 3.8.6.3), TIME-WAIT's 2*MSL and the orphaned
//! FIN-WAIT-2 timeout; and, not in the RFC, the return of the buffers' spare
//! storage once they have been empty for a while. Each timer is a deadline in the TCB; the table
//! schedules the connection at the earliest of them ([`Conn::deadline`]).

use super::output::Tx;
use super::{Conn, Ctx};
use crate::tcp::cause::Cause;
use crate::tcp::error::TcpError;
use crate::tcp::state::State;
use crate::time::{earliest, Duration, Instant};

impl Conn {
    /// Runs every timer of this connection that is due (RFC 9293 section
    /// 3.10.8), then sends what the events allow.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        if self.trim_at.is_some_and(|t| t <= now) {
            self.trim_at = None;
            self.trim_buffers(now, ctx.cfg.buffer_idle);
            if self.deadline().is_none_or(|t| t > now) {
                // Nothing else due: nothing to send either.
                return;
            }
        }
        if self.close_at.is_some_and(|t| t <= now) {
            self.close_at = None;
            match self.state {
                State::TimeWait => self.close_with(ctx, None, Cause::Timeout2Msl),
                State::FinWait2 => self.close_with(ctx, None, Cause::TimeoutFinWait2),
                _ => {}
            }
            return;
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.rto_at = None;
            self.on_retransmission_timeout(ctx);
            if self.state == State::Closed {
                return;
            }
        }
        if self.loss.rack_at.is_some_and(|t| t <= now) {
            self.loss.rack_at = None;
            self.on_rack_timeout(ctx);
        }
        if self.loss.tlp_at.is_some_and(|t| t <= now) {
            self.loss.tlp_at = None;
            self.on_tlp_timeout(ctx);
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist_at = None;
            self.on_persist_timeout(ctx);
            if self.state == State::Closed {
                return;
            }
        }
        if self.pmtu_expires.is_some_and(|t| t <= now) {
            self.path_mtu_expired();
        }
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at = None;
            self.ack_now = true;
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.keepalive_at = None;
            self.on_keepalive_timeout(ctx);
            if self.state == State::Closed {
                return;
            }
        }
        self.output(ctx);
    }

    /// RFC 6298 section 5.4-5.6, with the R2 limit (RFC 9293 MUST-20..23).
    fn on_retransmission_timeout(&mut self, ctx: &mut Ctx<'_>) {
        if self.snd_una == self.snd_max {
            return;
        }
        self.retries += 1;
        // Our SYN first, whatever the state (issue 13: a FIN queued behind it).
        let syn = self.syn_unacked();
        let limit = self.opts.retries.unwrap_or(match (syn, self.passive) {
            (true, false) => ctx.cfg.syn_retries,
            // Our SYN,ACK to a peer's SYN (Linux's tcp_synack_retries).
            (true, true) => ctx.cfg.synack_retries,
            (false, _) => ctx.cfg.data_retries,
        });
        if self.retries == ctx.cfg.r1_retries {
            // RFC 9293 MUST-20 / RFC 1122 section 4.2.3.5: at R1, pass negative
            // advice to IP (section 3.3.1.4: the next hop may be dead, so its
            // link-layer address is checked afresh).
            ctx.net.negative_advice(ctx.now, *self.remote.ip());
        }
        if self.retries > limit {
            let err = self.soft_error.unwrap_or(TcpError::TimedOut);
            self.close_with(ctx, Some(err), Cause::TimeoutR2);
            return;
        }
        ctx.net.counters().timeouts += 1;
        self.rtt.back_off();
        self.rtt_timing = None;
        self.on_timeout_loss(ctx);
        let flight = self.snd_max.since(self.snd_una);
        self.cc.clock(ctx.now, self.rtt.srtt());
        self.cc.on_timeout(flight, self.snd_max, self.retries == 1);
        if syn {
            self.syn_retransmitted = true;
            ctx.net.counters().retransmitted += 1;
            self.stats.retransmissions += 1;
            self.transmit(ctx, Tx::Syn);
            // The FIN of a close in SYN-RECEIVED follows (`output`, after the timers).
            return;
        }
        if self.snd_wnd == 0 && self.data_end() > self.snd_una {
            // The peer closed its window under data in flight: probe it rather
            // than count retransmissions it cannot accept (MUST-35..37).
            self.snd_nxt = self.snd_una;
            self.persist_at = Some(ctx.now + self.persist_interval(ctx));
            return;
        }
        self.rto_at = Some(ctx.now + self.rtt.rto());
        if self.syn_opts.sack && self.snd_nxt == self.snd_max && self.retries == 1 && self.resend_lost(ctx, true) {
            // RACK marked the first segment lost, and those past their time
            // (RFC 8985 section 6.3): `output` resends them, one SMSS of cwnd
            // now (the first at least, RFC 6298 section 5.4), and no more of
            // what the peer holds or has in flight. Only on a first timeout:
            // a second in a row (the scoreboard is then cleared, as the peer
            // may have reneged) goes back to SND.UNA, as does one where RACK
            // had nothing to resend (its records are bounded, `MAX_SENT`, and
            // a part-resent record counts as resent), so no octet RACK lost
            // track of waits for the R2 limit.
            return;
        }
        // Go back to SND.UNA; `output` resends from there at one SMSS of cwnd.
        self.snd_nxt = self.snd_una;
    }

    /// The persist timer: a zero-window probe, or the SWS override (RFC 9293
    /// section 3.8.6.2.1, fourth case) when some window is open.
    fn on_persist_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let end = self.data_end();
        let unsent = end.since(self.snd_nxt);
        if self.snd_nxt > self.snd_una && !self.syn_unacked() {
            // Data in flight: the retransmission timer watches the peer, and its
            // R2 limit ends a dead connection. After a timeout under a closed
            // window sending skips what the peer SACKed, so SND.NXT can pass
            // SND.UNA with that timer stopped (found by fuzzing): start it again.
            if self.rto_at.is_none() {
                self.rto_at = Some(ctx.now + self.rtt.rto());
            }
            return;
        }
        if unsent == 0 || self.syn_unacked() {
            return;
        }
        self.persist_probes += 1;
        if self.persist_probes > ctx.cfg.data_retries {
            let err = self.soft_error.unwrap_or(TcpError::TimedOut);
            self.close_with(ctx, Some(err), Cause::TimeoutR2);
            return;
        }
        let usable = (self.snd_una + self.snd_wnd.min(self.cc.cwnd())).since(self.snd_nxt);
        let seq = self.snd_nxt;
        if usable > 0 {
            let len = usable.min(unsent).min(self.snd_mss);
            let fin = self.fin_queued && seq + len == end;
            self.transmit(ctx, Tx::Data { seq, len, fin });
            self.snd_nxt = seq + len + fin as u32;
        } else {
            // One octet beyond the window (RFC 9293 section 3.8.6.1). SND.NXT stays:
            // the octet counts as sent only if the peer acknowledges it (see `Tx::WindowProbe`).
            ctx.net.counters().window_probes += 1;
            self.transmit(ctx, Tx::WindowProbe);
            self.persist_backoff += 1;
            self.persist_at = Some(ctx.now + self.persist_interval(ctx));
        }
    }

    /// A buffer has just emptied (the peer acknowledged all we sent, or the
    /// user read all we held). Once the buffers have stayed empty for
    /// `TcpConfig::buffer_idle`, their storage beyond a small floor goes back
    /// (issue 13: freed memory is returned, not kept at its peak). The
    /// deadline is set once and moved on when it comes due, never per
    /// segment, so a steady transfer costs one timer run per interval and no
    /// allocation.
    pub(super) fn buffer_drained(&mut self, now: Instant, idle: Duration) {
        self.drained_at = now;
        if self.trim_at.is_none() && (self.send.has_spare_storage() || self.recv.has_spare_storage()) {
            self.trim_at = Some(now + idle);
        }
    }

    /// The buffer timer: gives back what an empty buffer holds beyond its
    /// floor if nothing has emptied for `idle` (a buffer that is empty now has
    /// been since then), or looks again `idle` after the last emptying.
    fn trim_buffers(&mut self, now: Instant, idle: Duration) {
        let quiet_from = self.drained_at + idle;
        if now < quiet_from {
            self.trim_at = Some(quiet_from);
            return;
        }
        self.send.trim();
        self.recv.trim();
    }

    pub(super) fn arm_keepalive(&mut self, now: Instant) {
        self.keepalive_at = if self.opts.keepalive && matches!(self.state, State::Established | State::CloseWait) {
            Some(now + self.opts.keep_idle)
        } else {
            None
        };
    }

    /// RFC 9293 section 3.8.4 (MUST-24..29): a probe <SEQ=SND.UNA-1> with no
    /// data after `keep_idle` of silence, then every `keep_interval`; after
    /// `keep_count` unanswered probes the connection is dead (reset, ETIMEDOUT).
    fn on_keepalive_timeout(&mut self, ctx: &mut Ctx<'_>) {
        if !self.opts.keepalive || !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        if self.snd_max > self.snd_una || self.data_end() > self.snd_nxt {
            // Data in flight or waiting: retransmission and persist timers watch the peer.
            self.keepalive_at = Some(ctx.now + self.opts.keep_idle);
            return;
        }
        if self.ka_probes >= self.opts.keep_count {
            self.transmit(ctx, Tx::Rst);
            let err = self.soft_error.unwrap_or(TcpError::TimedOut);
            self.close_with(ctx, Some(err), Cause::KeepaliveTimeout);
            return;
        }
        self.ka_probes += 1;
        ctx.net.counters().keepalive_probes += 1;
        self.transmit(ctx, Tx::KeepAlive);
        self.keepalive_at = Some(ctx.now + self.opts.keep_interval);
    }

    /// The persist timer's interval: the RTO, doubled per unanswered probe,
    /// within the RTO bounds (RFC 9293 section 3.8.6.1, MUST-35..37).
    pub(super) fn persist_interval(&self, ctx: &Ctx<'_>) -> Duration {
        let mut d = self.rtt.rto();
        for _ in 0..self.persist_backoff {
            d = (d * 2).min(ctx.cfg.max_rto);
        }
        d.max(ctx.cfg.min_rto)
    }

    /// Stops the retransmission, persist, delayed-ACK and keep-alive timers.
    pub(super) fn stop_timers(&mut self) {
        self.rto_at = None;
        self.loss.tlp_at = None;
        self.loss.rack_at = None;
        self.persist_at = None;
        self.delack_at = None;
        self.keepalive_at = None;
        self.pmtu_expires = None;
    }

    /// The next instant a timer of this connection is due.
    pub fn deadline(&self) -> Option<Instant> {
        let t = earliest(self.rto_at, self.persist_at);
        let t = earliest(t, self.delack_at);
        let t = earliest(t, self.keepalive_at);
        let t = earliest(t, self.pmtu_expires);
        let t = earliest(t, self.loss.tlp_at);
        let t = earliest(t, self.trim_at);
        let t = earliest(t, self.loss.rack_at);
        earliest(t, self.close_at)
    }
}
