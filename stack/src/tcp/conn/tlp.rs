//! The tail loss probe (RFC 8985 section 7): when the last segments of a
//! flight are lost, no ACK comes to tell RACK; after a probe timeout of about
//! two round trips one segment goes out (new data, or the last one again) to
//! draw an ACK, whose SACK lets RACK find the losses (section 6.2) instead of
//! waiting for the retransmission timeout.

use super::output::Tx;
use super::{Conn, Ctx};
use crate::tcp::state::State;
use crate::time::{Duration, Instant};

/// RFC 8985 section 7.2, WCDelAckT: the peer may delay the ACK of a lone segment this long.
const WC_DEL_ACK: Duration = Duration::from_millis(200);
/// The shortest probe timeout (Linux's lower bound on the TLP timer).
const MIN_PTO: Duration = Duration::from_millis(10);

impl Conn {
    /// RFC 8985 section 7.2: a probe may be scheduled with SACK and data in
    /// flight, outside fast recovery and RTO recovery, with no probe out and
    /// nothing SACKed (then RACK's reordering timer watches the flight), once
    /// the RTT is known; not while the peer's window is closed (the persist
    /// timer probes it then).
    fn tlp_eligible(&self) -> bool {
        self.syn_opts.sack
            && self.snd_wnd > 0
            && self.persist_at.is_none()
            && matches!(self.state, State::Established | State::CloseWait)
            && self.loss.recovery.is_none()
            && !self.cc.in_recovery()
            && self.retries == 0
            && self.snd_max > self.snd_una
            && self.loss.tlp_end.is_none()
            && self.loss.rack.segs_sacked() == 0
            && self.rtt.srtt().is_some()
    }

    /// RFC 8985 section 7.2, TLP_calc_PTO: (re)arms the probe timeout after
    /// data is sent or an ACK advances: PTO = 2 * SRTT, plus WCDelAckT for a
    /// lone segment in flight; only if it comes before the retransmission
    /// timer (the RFC would send the probe at the timer's instant in the
    /// timeout's place; here the timeout then runs, as before).
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

    /// RFC 8985 section 7.3, TLP_send_probe: one new segment if the windows
    /// allow, else the last segment sent again; TLP.end_seq is SND.NXT after
    /// it, and the retransmission timer restarts.
    pub(super) fn on_tlp_timeout(&mut self, ctx: &mut Ctx<'_>) {
        if !self.tlp_eligible() {
            return;
        }
        ctx.net.counters().tail_loss_probes += 1;
        let end = self.data_end();
        let room = (self.snd_una + self.snd_wnd.min(self.cc.cwnd().max(self.snd_mss))).since(self.snd_nxt);
        let new = end.since(self.snd_nxt).min(self.snd_mss).min(room);
        let retrans = !(self.snd_nxt == self.snd_max && new > 0 && room < u32::MAX / 2);
        if !retrans {
            let seq = self.snd_nxt;
            let fin = self.fin_queued && seq + new == end;
            self.transmit(ctx, Tx::Data { seq, len: new, fin });
            self.snd_nxt = seq + new + fin as u32;
        } else {
            let hi = end.min(self.snd_max);
            let seq = (hi - self.snd_mss).max(self.snd_una);
            let fin = self.fin_queued && self.snd_max > end;
            self.transmit(ctx, Tx::Data { seq, len: hi.since(seq), fin });
        }
        self.loss.tlp_end = Some(self.snd_max);
        self.loss.tlp_retrans = retrans;
        self.rto_at = Some(ctx.now + self.rtt.rto());
    }

    /// RFC 8985 section 7.4, TLP_process_ack: an ACK at or past TLP.end_seq
    /// settles the probe. A retransmitted probe acknowledged without a D-SACK
    /// repaired a loss by itself (RACK saw nothing lost to start recovery):
    /// congestion control still answers that loss (section 7.4.2), with the
    /// reduction of a fast recovery that ends at once.
    pub(super) fn tlp_on_ack(&mut self, ctx: &mut Ctx<'_>, dsack: bool) {
        let Some(end) = self.loss.tlp_end else { return };
        if self.snd_una < end {
            return;
        }
        self.loss.tlp_end = None;
        if self.loss.tlp_retrans && !dsack && self.loss.recovery.is_none() && !self.cc.in_recovery() {
            ctx.net.counters().tlp_repairs += 1;
            let flight = self.snd_max.since(self.snd_una);
            self.cc.enter_fast_recovery(flight.max(self.cc.cwnd()), self.snd_max);
            self.cc.exit_fast_recovery();
        }
    }
}
