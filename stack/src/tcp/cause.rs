//! Why a connection changed state, in the event/action notation of RFC 9293's
//! Figure 5 ("rcv SYN / snd SYN,ACK", "CLOSE / snd FIN", "timeout=2MSL").
//!
//! One enum, so that the trace, the tests and the capture inspector in tools name
//! a cause the same way: the inspector infers a [`Cause`] from segments and
//! compares it with the one tapstack traced. Its text is what `--trace` prints
//! and what trace files hold; [`Cause::parse`] reads it back.

use core::fmt;

macro_rules! causes {
    ($( $(#[$doc:meta])* $name:ident = $text:literal, )*) => {
        /// The event (and the action taken) behind one state transition.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Cause {
            $( $(#[$doc])* $name, )*
        }

        impl Cause {
            /// Every cause, in declaration order.
            pub const ALL: &'static [Cause] = &[ $( Cause::$name, )* ];

            /// The event/action text, as the trace prints it.
            pub fn as_str(self) -> &'static str {
                match self { $( Cause::$name => $text, )* }
            }
        }
    };
}

causes! {
    /// Section 3.10.1, active OPEN: CLOSED -> SYN-SENT.
    ActiveOpen = "active OPEN / snd SYN",
    /// Section 3.10.1, passive OPEN: CLOSED -> LISTEN.
    PassiveOpen = "passive OPEN",
    /// A SYN in LISTEN (section 3.10.7.2), or crossing ours in SYN-SENT
    /// (simultaneous open, section 3.10.7.3): -> SYN-RECEIVED.
    RcvSynSndSynAck = "rcv SYN / snd SYN,ACK",
    /// Section 3.10.7.3: our SYN acknowledged with theirs, SYN-SENT -> ESTABLISHED.
    RcvSynAckSndAck = "rcv SYN,ACK / snd ACK",
    /// Section 3.10.7.4, fifth check: SYN-RECEIVED -> ESTABLISHED.
    RcvAckOfSyn = "rcv ACK of SYN",
    /// Our FIN acknowledged: FIN-WAIT-1 -> FIN-WAIT-2, CLOSING -> TIME-WAIT,
    /// LAST-ACK -> CLOSED.
    RcvAckOfFin = "rcv ACK of FIN",
    /// Section 3.10.7.4, eighth check: a FIN that does not acknowledge ours.
    RcvFinSndAck = "rcv FIN / snd ACK",
    /// A FIN that also acknowledges ours: FIN-WAIT-1 -> TIME-WAIT.
    RcvFinAckSndAck = "rcv FIN,ACK / snd ACK",
    /// An acceptable RST (section 3.10.7.4, second check; 3.10.7.3 in SYN-SENT).
    RcvRst = "rcv RST",
    /// A SYN in a passively opened SYN-RECEIVED: back to LISTEN (section 3.10.7.4,
    /// fourth check).
    RcvSyn = "rcv SYN",
    /// A new SYN that ends a TIME-WAIT and opens the tuple again (RFC 1122
    /// section 4.2.2.13).
    RcvSynReopen = "rcv SYN / reopen",
    /// New data after the application closed: the peer is reset (RFC 1122
    /// section 4.2.2.13, RFC 2525 section 2.17).
    RcvDataAfterClose = "rcv data after CLOSE / snd RST",
    /// A hard ICMP error while synchronizing (RFC 1122 section 4.2.3.9).
    RcvIcmpUnreachable = "rcv ICMP unreachable",
    /// Section 3.10.8: the 2 MSL of TIME-WAIT ran out.
    Timeout2Msl = "timeout=2MSL",
    /// An orphaned FIN-WAIT-2 timed out (Linux's tcp_fin_timeout).
    TimeoutFinWait2 = "timeout=FIN-WAIT-2",
    /// Retransmissions reached R2 (RFC 1122 section 4.2.3.5).
    TimeoutR2 = "timeout=R2",
    /// Keep-alive probes went unanswered (RFC 1122 section 4.2.3.6).
    KeepaliveTimeout = "keepalive timeout / snd RST",
    /// Section 3.10.4, CLOSE where nothing needs to be said to the peer.
    Close = "CLOSE",
    /// Section 3.10.4, CLOSE that queues our FIN.
    CloseSndFin = "CLOSE / snd FIN",
    /// Section 3.10.5, ABORT with nothing to tell the peer.
    Abort = "ABORT",
    /// Section 3.10.5, ABORT of a synchronized connection: the peer is reset.
    AbortSndRst = "ABORT / snd RST",
    /// A connect from the address of a TIME-WAIT connection ends it (SO_REUSEADDR).
    ReuseTimeWait = "OPEN / reuse TIME-WAIT",
    /// The first SYN could not be routed.
    NoRoute = "no route",
    /// ARP never resolved the peer while we were opening the connection
    /// (a locally detected "host unreachable", ending it as Linux does).
    ArpFailed = "ARP failed",
}

impl Cause {
    /// The cause whose text is `s` (as written by `Display`), if any.
    pub fn parse(s: &str) -> Option<Cause> {
        Cause::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for Cause {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::Cause;

    #[test]
    fn every_cause_reads_back_from_its_text() {
        for &c in Cause::ALL {
            assert_eq!(Cause::parse(c.as_str()), Some(c), "{c}");
        }
        assert_eq!(Cause::parse("rcv SYN / snd ACK"), None);
    }
}
