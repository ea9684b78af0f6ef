//! State transitions as events, for tracing, tests and teaching: each one names
//! the connection, the two states and the cause, written in the event/action
//! notation of RFC 9293's Figure 5 ("rcv SYN / snd SYN,ACK", "CLOSE / snd FIN",
//! "timeout=2MSL").

use super::cause::Cause;
use super::state::State;
use super::ConnId;
use std::collections::VecDeque;
use std::net::SocketAddrV4;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub conn: ConnId,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub from: State,
    pub to: State,
    pub cause: Cause,
}

impl core::fmt::Display for Transition {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} {} -> {}: {} -> {} ({})", self.conn, self.local, self.remote, self.from, self.to, self.cause)
    }
}

/// A bounded queue of transitions: when full, the oldest is dropped (and counted).
#[derive(Debug)]
pub struct TraceLog {
    events: VecDeque<Transition>,
    cap: usize,
    /// Transitions dropped because nobody drained the queue.
    pub lost: u64,
}

impl TraceLog {
    pub fn new(cap: usize) -> TraceLog {
        TraceLog { events: VecDeque::new(), cap, lost: 0 }
    }

    pub fn push(&mut self, t: Transition) {
        if self.cap == 0 {
            self.lost += 1;
            return;
        }
        if self.events.len() >= self.cap {
            self.events.pop_front();
            self.lost += 1;
        }
        self.events.push_back(t);
    }

    pub fn drain(&mut self, mut f: impl FnMut(&Transition)) {
        for t in self.events.drain(..) {
            f(&t);
        }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn bounded_drops_oldest() {
        let a = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1);
        let mut log = TraceLog::new(2);
        for (i, cause) in [Cause::Close, Cause::Abort, Cause::NoRoute].into_iter().enumerate() {
            log.push(Transition {
                conn: ConnId::new(i as u32, 0),
                local: a,
                remote: a,
                from: State::Closed,
                to: State::SynSent,
                cause,
            });
        }
        assert_eq!(log.lost, 1);
        let mut seen = Vec::new();
        log.drain(|t| seen.push(t.cause));
        assert_eq!(seen, [Cause::Abort, Cause::NoRoute]);
        assert!(log.is_empty());
    }
}
