//! ICMP errors about our segments (RFC 9293 section 3.9.2.2, RFC 1122 section
//! 4.2.3.9, RFC 5461, RFC 5927): path MTU discovery (RFC 1191) shrinks the MSS,
//! hard errors abort only a connection being established, soft errors are kept
//! to be reported if the connection times out; our own ARP failing to resolve
//! the peer ends a connection we are opening (as Linux does).

use super::{Conn, Ctx, HEADERS};
use crate::icmp::IcmpErrorKind;
use crate::tcp::cause::Cause;
use crate::tcp::error::TcpError;
use crate::tcp::seq::Seq;
use crate::tcp::state::State;
use crate::time::Duration;

/// The smallest path MTU we accept from "fragmentation needed": Linux's
/// ip_rt_min_pmtu (512 + 20 + 20). A smaller one, real or forged, is taken as
/// this, so that a forged ICMP cannot shrink segments to a few bytes.
pub const MIN_PMTU: u16 = 552;
/// How long a path MTU learned from ICMP holds before the MSS it lowered is
/// restored (Linux's ip_rt_mtu_expires, 10 minutes; RFC 1191 section 6.3).
pub const PMTU_EXPIRES: Duration = Duration::from_secs(600);

impl Conn {
    /// An ICMP error quoting a segment of this connection with sequence
    /// number `quoted_seq` (the table ignores quotes too short to carry it).
    pub fn on_icmp(&mut self, ctx: &mut Ctx<'_>, kind: IcmpErrorKind, quoted_seq: Seq) {
        // RFC 5927 section 4.1: only for data we have in flight, SND.UNA =<
        // SEG.SEQ =< SND.NXT (Linux's check); in SYN-SENT and SYN-RECEIVED
        // that is our SYN, so hard errors there need it too.
        if !quoted_seq.in_range_inclusive(self.snd_una, self.snd_max) {
            return;
        }
        match kind {
            IcmpErrorKind::DestUnreachable { code: 4, next_hop_mtu } => self.path_mtu(ctx, next_hop_mtu),
            IcmpErrorKind::SourceQuench => {} // RFC 6633: ignored.
            IcmpErrorKind::ParameterProblem { .. } => {}
            k if k.is_hard() && matches!(self.state, State::SynSent | State::SynReceived) => {
                // RFC 1122 section 4.2.3.9: hard errors SHOULD abort; RFC 5461
                // section 4 keeps that only for connection establishment.
                self.close_with(ctx, Some(TcpError::ConnectionRefused), Cause::RcvIcmpUnreachable);
            }
            IcmpErrorKind::LocalHostUnreachable if self.opening_actively() => {
                // Our own ARP gave up on the peer (no ICMP message, so nothing
                // an attacker can forge): a connect fails with EHOSTUNREACH
                // as Linux's does when its neighbour entry fails (tcp_v4_err
                // in SYN-SENT and SYN-RECEIVED), the treatment of soft errors
                // during establishment that RFC 5461 section 4 describes. A
                // passive SYN-RECEIVED keeps its retries, as Linux's request
                // sockets do for all but hard errors.
                self.close_with(ctx, Some(TcpError::HostUnreachable), Cause::ArpFailed);
            }
            _ => {
                // Soft errors never abort (MUST-56); reported if we time out.
                self.soft_error = Some(TcpError::HostUnreachable);
            }
        }
    }

    /// Opening a connection we asked for: SYN-SENT, or SYN-RECEIVED after a
    /// simultaneous open.
    fn opening_actively(&self) -> bool {
        match self.state {
            State::SynSent => true,
            State::SynReceived => !self.passive,
            _ => false,
        }
    }

    /// Path MTU discovery (RFC 1191): shrink the MSS and resend, no lower than
    /// [`MIN_PMTU`] allows, for [`PMTU_EXPIRES`]. A next-hop MTU of 0 (a router
    /// from before RFC 1191) is not acted on.
    fn path_mtu(&mut self, ctx: &mut Ctx<'_>, next_hop_mtu: u16) {
        if next_hop_mtu == 0 {
            return;
        }
        // The MSS leaves room for the timestamp option when it is in use.
        let mss = (next_hop_mtu.max(MIN_PMTU).saturating_sub(HEADERS) as u32).saturating_sub(self.ts_overhead());
        if mss >= self.snd_mss {
            return;
        }
        if self.pmtu_expires.is_none() {
            self.mss_before_pmtu = self.snd_mss;
        }
        self.pmtu_expires = Some(ctx.now + PMTU_EXPIRES);
        self.snd_mss = mss;
        self.cc.on_path_mtu_drop(mss);
        // Resend what is in flight in the smaller segments at once; but not while
        // our SYN is the first unacknowledged octet (a close after a simultaneous
        // open): the SYN is no data, fits any path, and its timer resends it.
        if self.state.is_synchronized() && self.snd_max > self.snd_una && !self.syn_unacked() {
            self.snd_nxt = self.snd_una;
            self.output(ctx);
        }
    }

    /// The learned path MTU has expired: back to the MSS from before it.
    pub(super) fn path_mtu_expired(&mut self) {
        self.pmtu_expires = None;
        if self.mss_before_pmtu > self.snd_mss {
            self.snd_mss = self.mss_before_pmtu;
            self.cc.set_smss(self.snd_mss);
        }
    }
}
