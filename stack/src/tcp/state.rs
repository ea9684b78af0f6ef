//! The connection states of RFC 9293 section 3.3.2 (Figure 5).

use core::fmt;

/// A connection's state, named as in RFC 9293 section 3.3.2.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
    Closed,
}

impl State {
    pub const ALL: [State; 11] = [
        State::Listen,
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
        State::Closed,
    ];

    /// The name RFC 9293 uses: `SYN-SENT`, `TIME-WAIT`...
    pub fn name(self) -> &'static str {
        match self {
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
            State::Closed => "CLOSED",
        }
    }

    /// RFC 9293 section 3.3.2: the states after the handshake in which both
    /// sequence spaces are known ("synchronized states").
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::Listen | State::SynSent | State::SynReceived | State::Closed)
    }

    /// States in which we may still send new data (the user has not closed).
    pub fn can_send(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }

    /// States in which arriving text is delivered (RFC 9293 section 3.10.7.4, seventh).
    pub fn can_receive(self) -> bool {
        matches!(self, State::Established | State::FinWait1 | State::FinWait2)
    }

    /// States in which our FIN has been queued or sent.
    pub fn fin_queued(self) -> bool {
        matches!(self, State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck | State::TimeWait)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_rfc_names() {
        let names: Vec<&str> = State::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "LISTEN",
                "SYN-SENT",
                "SYN-RECEIVED",
                "ESTABLISHED",
                "FIN-WAIT-1",
                "FIN-WAIT-2",
                "CLOSE-WAIT",
                "CLOSING",
                "LAST-ACK",
                "TIME-WAIT",
                "CLOSED"
            ]
        );
        assert_eq!(format!("{}", State::TimeWait), "TIME-WAIT");
        assert!(State::CloseWait.is_synchronized() && !State::SynReceived.is_synchronized());
    }
}
