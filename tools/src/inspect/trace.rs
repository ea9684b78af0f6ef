//! tapstack's trace files (`tapstack up --trace`, `tapstack record`): one line per
//! state transition,
//!
//! ```text
//! [  0.123456] tcp#4.0 10.0.0.2:7 -> 10.0.0.1:60644: LISTEN -> SYN-RECEIVED (rcv SYN / snd SYN,ACK)
//! ```
//!
//! i.e. `[seconds] <conn id> <local> -> <remote>: <FROM> -> <TO> (<cause>)`, as
//! `stack::tcp::Transition` displays itself; every other line (banners, counters)
//! is ignored; a transition line whose cause is not a [`Cause`] is an error.
//! And the check that ties the inspector to the stack: for one
//! endpoint, the states the inspector infers from the capture must be the states
//! tapstack's own state machine traced.

use super::{ConnectionReport, SideReport};
use stack::tcp::{Cause, State};
use std::net::SocketAddr;

/// One traced transition.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEvent {
    /// Seconds, as the trace prints them.
    pub time: f64,
    /// tapstack's connection id (`tcp#4.0`): slot and generation.
    pub conn: String,
    pub local: SocketAddr,
    /// `0.0.0.0:0` for a listener's own transitions (passive OPEN, CLOSE).
    pub remote: SocketAddr,
    pub from: State,
    pub to: State,
    pub cause: Cause,
}

impl TraceEvent {
    /// A listener's own transition, not a connection's.
    pub fn is_listener(&self) -> bool {
        self.remote.port() == 0 && self.remote.ip().is_unspecified()
    }
}

/// A state by its RFC 9293 name (`SYN-RECEIVED`).
pub fn state_named(name: &str) -> Option<State> {
    State::ALL.into_iter().find(|s| s.name() == name)
}

/// RFC 793's wording of the simultaneous-open edge (SYN-SENT -> SYN-RECEIVED),
/// "rcv SYN / snd ACK", still met in traces; RFC 9293 and tapstack say
/// "rcv SYN / snd SYN,ACK". Read as that cause, so it counts on the same edge.
const RFC_793_SIMULTANEOUS_OPEN: &str = "rcv SYN / snd ACK";

/// The cause a trace names for a transition `from` -> `to`.
fn cause_named(text: &str, from: State, to: State) -> Option<Cause> {
    match Cause::parse(text) {
        None if text == RFC_793_SIMULTANEOUS_OPEN && (from, to) == (State::SynSent, State::SynReceived) => {
            Some(Cause::RcvSynSndSynAck)
        }
        cause => cause,
    }
}

/// Parses one trace line: `Ok(None)` for a line that is not a transition, an
/// error for a transition with a cause that is not a [`Cause`].
pub fn parse_line(line: &str) -> Result<Option<TraceEvent>, String> {
    let Some((time, conn, local, remote, from, to, cause)) = split_line(line) else {
        return Ok(None);
    };
    let cause =
        cause_named(&cause, from, to).ok_or_else(|| format!("unknown transition cause '{cause}' in: {line}"))?;
    Ok(Some(TraceEvent { time, conn, local, remote, from, to, cause }))
}

/// The fields of a transition line, the cause as text; `None` for any other line.
type Fields = (f64, String, SocketAddr, SocketAddr, State, State, String);

fn split_line(line: &str) -> Option<Fields> {
    let rest = line.trim().strip_prefix('[')?;
    let (time, rest) = rest.split_once(']')?;
    let time: f64 = time.trim().parse().ok()?;
    let mut words = rest.split_whitespace();
    let conn = words.next()?.to_string();
    let local: SocketAddr = words.next()?.parse().ok()?;
    if words.next()? != "->" {
        return None;
    }
    let remote: SocketAddr = words.next()?.strip_suffix(':')?.parse().ok()?;
    let from = state_named(words.next()?)?;
    if words.next()? != "->" {
        return None;
    }
    let to = state_named(words.next()?)?;
    let cause: Vec<&str> = words.collect();
    let cause = cause.join(" ");
    let cause = cause.strip_prefix('(')?.strip_suffix(')')?.to_string();
    Some((time, conn, local, remote, from, to, cause))
}

/// Every transition in a trace file's text, in file order; an error names the
/// line (1-based) whose cause is unknown.
pub fn parse(text: &str) -> Result<Vec<TraceEvent>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(e) = parse_line(line).map_err(|e| format!("line {}: {e}", n + 1))? {
            out.push(e);
        }
    }
    Ok(out)
}

/// One traced connection: a connection id's transitions on one tuple.
#[derive(Clone, Debug, PartialEq)]
pub struct TracedConnection {
    pub conn: String,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub events: Vec<TraceEvent>,
}

impl TracedConnection {
    /// The states in order, the first `from` first.
    pub fn states(&self) -> Vec<State> {
        self.events.first().map(|e| e.from).into_iter().chain(self.events.iter().map(|e| e.to)).collect()
    }
}

/// The trace's connections (listeners left out), in order of their first transition.
pub fn connections(events: &[TraceEvent]) -> Vec<TracedConnection> {
    let mut out: Vec<TracedConnection> = Vec::new();
    for e in events.iter().filter(|e| !e.is_listener()) {
        // A connection id's slot is reused with a new generation, so id and tuple
        // together name one connection; a CLOSED one takes no more events.
        let open = out.iter_mut().rev().find(|c| {
            c.conn == e.conn
                && c.local == e.local
                && c.remote == e.remote
                && c.events.last().map(|l| l.to) == Some(e.from)
        });
        match open {
            Some(c) => c.events.push(e.clone()),
            None => out.push(TracedConnection {
                conn: e.conn.clone(),
                local: e.local,
                remote: e.remote,
                events: vec![e.clone()],
            }),
        }
    }
    out
}

/// Causes that a capture cannot show, because they send nothing: dropped from
/// the end of a traced connection before comparing.
pub const SILENT_CAUSES: [Cause; 2] = [Cause::Timeout2Msl, Cause::TimeoutFinWait2];

/// Compares, for the endpoint `local` talking to `remote`, the inspector's
/// states with the trace's, connection by connection in order (a tuple may be
/// used again): the states must be equal in order, and so must the causes.
/// Trailing silent transitions ([`SILENT_CAUSES`]) of
/// the trace are left out. Returns how many connections were compared.
pub fn compare_endpoint(
    inspected: &[ConnectionReport],
    trace: &[TraceEvent],
    local: SocketAddr,
    remote: SocketAddr,
) -> Result<usize, String> {
    let sides: Vec<&SideReport> = inspected.iter().filter_map(|c| c.side(local, remote)).collect();
    let traced: Vec<TracedConnection> =
        connections(trace).into_iter().filter(|c| c.local == local && c.remote == remote).collect();
    if sides.len() != traced.len() {
        return Err(format!(
            "{local} -> {remote}: the capture shows {} connection(s), the trace {}",
            sides.len(),
            traced.len()
        ));
    }
    for (n, (side, traced)) in sides.iter().zip(&traced).enumerate() {
        let mut events = traced.events.clone();
        while events.last().is_some_and(|e| SILENT_CAUSES.contains(&e.cause)) {
            events.pop();
        }
        let seen: Vec<(State, State, Cause)> = side.changes.iter().map(|c| (c.from, c.to, c.cause)).collect();
        let want: Vec<(State, State, Cause)> = events.iter().map(|e| (e.from, e.to, e.cause)).collect();
        let same = seen == want && (want.is_empty() || side.initial == want[0].0);
        if !same {
            let show = |v: &[(State, State, Cause)]| {
                v.iter().map(|(f, t, c)| format!("{f} -> {t} ({c})")).collect::<Vec<_>>().join(", ")
            };
            return Err(format!(
                "{local} -> {remote}, connection {} ({}):\n  inspected (from {}): {}\n  traced: {}",
                n + 1,
                traced.conn,
                side.initial,
                show(&seen),
                show(&want)
            ));
        }
    }
    Ok(sides.len())
}

/// Every tuple (local, remote) the trace has connections on, in order of first appearance.
pub fn endpoints(trace: &[TraceEvent]) -> Vec<(SocketAddr, SocketAddr)> {
    let mut out = Vec::new();
    for e in trace.iter().filter(|e| !e.is_listener()) {
        if !out.contains(&(e.local, e.remote)) {
            out.push((e.local, e.remote));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "tapstack is up on tap0\n\
        [  0.000100] tcp#0.0 10.0.0.2:7 -> 0.0.0.0:0: CLOSED -> LISTEN (passive OPEN)\n\
        [  0.804944] tcp#4.0 10.0.0.2:7 -> 10.0.0.1:60644: LISTEN -> SYN-RECEIVED (rcv SYN / snd SYN,ACK)\n\
        [  0.805000] tcp#4.0 10.0.0.2:7 -> 10.0.0.1:60644: SYN-RECEIVED -> ESTABLISHED (rcv ACK of SYN)\n\
        [  0.836096] tcp#4.0 10.0.0.2:7 -> 10.0.0.1:60644: ESTABLISHED -> FIN-WAIT-1 (CLOSE / snd FIN)\n\
        counters: nothing\n";

    #[test]
    fn parses_trace_lines_and_ignores_the_rest() {
        let events = parse(SAMPLE).unwrap();
        assert_eq!(events.len(), 4);
        assert!(events[0].is_listener());
        let e = &events[1];
        assert_eq!(e.time, 0.804944);
        assert_eq!(e.conn, "tcp#4.0");
        assert_eq!(e.local, "10.0.0.2:7".parse().unwrap());
        assert_eq!(e.remote, "10.0.0.1:60644".parse().unwrap());
        assert_eq!((e.from, e.to), (State::Listen, State::SynReceived));
        assert_eq!(e.cause, Cause::RcvSynSndSynAck);
        let conns = connections(&events);
        assert_eq!(conns.len(), 1);
        assert_eq!(conns[0].states(), [State::Listen, State::SynReceived, State::Established, State::FinWait1]);
        assert_eq!(endpoints(&events), [("10.0.0.2:7".parse().unwrap(), "10.0.0.1:60644".parse().unwrap())]);
    }

    #[test]
    fn malformed_lines_are_not_transitions() {
        for line in [
            "[x] tcp#1.0 10.0.0.2:7 -> 10.0.0.1:1: LISTEN -> SYN-RECEIVED (a)",
            "[ 1.0] tcp#1.0 10.0.0.2:7 -> 10.0.0.1:1: LISTEN -> NOWHERE (a)",
            "[ 1.0] tcp#1.0 10.0.0.2:7 => 10.0.0.1:1: LISTEN -> CLOSED (a)",
            "[ 1.0] tcp#1.0 10.0.0.2:7 -> 10.0.0.1:1: LISTEN -> CLOSED a",
            "[ 1.0]",
            "",
        ] {
            assert_eq!(parse_line(line), Ok(None), "{line}");
        }
    }

    #[test]
    fn an_unknown_cause_is_an_error_naming_the_line() {
        let text =
            "banner\n[ 1.0] tcp#1.0 10.0.0.2:7 -> 10.0.0.1:1: LISTEN -> SYN-RECEIVED (rcv SYN / snd something)\n";
        let e = parse(text).unwrap_err();
        assert!(e.starts_with("line 2: ") && e.contains("'rcv SYN / snd something'"), "{e}");
    }

    #[test]
    fn rfc_793_wording_of_simultaneous_open_is_that_edge() {
        let line = "[ 1.0] tcp#1.0 10.0.0.2:7 -> 10.0.0.1:1: SYN-SENT -> SYN-RECEIVED (rcv SYN / snd ACK)";
        assert_eq!(parse_line(line).unwrap().unwrap().cause, Cause::RcvSynSndSynAck);
        // Only on that edge.
        let line = "[ 1.0] tcp#1.0 10.0.0.2:7 -> 10.0.0.1:1: LISTEN -> SYN-RECEIVED (rcv SYN / snd ACK)";
        assert!(parse_line(line).is_err());
    }
}
