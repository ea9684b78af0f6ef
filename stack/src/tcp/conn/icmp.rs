//! ICMP errors about our segments (RFC 9293 section 3.9.2.2, RFC 1122 section
//! 4.2.3.9, RFC 5461, RFC 5927): path MTU discovery (RFC 1191) shrinks the MSS,
//! hard errors abort only a connection being established, soft errors are kept
//! to be reported if the connection times out.

use super::{Conn, Ctx, HEADERS};
use crate::icmp::IcmpErrorKind;
use crate::tcp::cause::Cause;
use crate::tcp::error::TcpError;
use crate::tcp::seq::Seq;
use crate::tcp::state::State;

impl Conn {
    /// An ICMP error quoting a segment of this connection; `quoted_seq` is the
    /// quoted sequence number, if the quote was long enough.
    pub fn on_icmp(&mut self, ctx: &mut Ctx<'_>, kind: IcmpErrorKind, quoted_seq: Option<Seq>) {
        // RFC 5927 section 4.1: only for data we have in flight.
        if let Some(seq) = quoted_seq {
            if !seq.in_range(self.snd_una, self.snd_max.max(self.snd_una + 1)) {
                return;
            }
        }
        match kind {
            IcmpErrorKind::DestUnreachable { code: 4, next_hop_mtu } => {
                // Path MTU discovery (RFC 1191): shrink the MSS and resend.
                if next_hop_mtu >= 68 {
                    let mss = (next_hop_mtu.saturating_sub(HEADERS) as u32).saturating_sub(self.ts_overhead()).max(64);
                    if mss < self.snd_mss {
                        self.snd_mss = mss;
                        self.cc.on_path_mtu_drop(mss);
                        if self.state.is_synchronized() && self.snd_max > self.snd_una {
                            self.snd_nxt = self.snd_una;
                            self.output(ctx);
                        }
                    }
                }
            }
            IcmpErrorKind::SourceQuench => {} // RFC 6633: ignored.
            IcmpErrorKind::ParameterProblem { .. } => {}
            k if k.is_hard() && matches!(self.state, State::SynSent | State::SynReceived) => {
                // RFC 1122 section 4.2.3.9: hard errors SHOULD abort; RFC 5461
                // section 4 keeps that only for connection establishment.
                self.close_with(ctx, Some(TcpError::ConnectionRefused), Cause::RcvIcmpUnreachable);
            }
            _ => {
                // Soft errors never abort (MUST-56); reported if we time out.
                self.soft_error = Some(TcpError::HostUnreachable);
            }
        }
    }
}
