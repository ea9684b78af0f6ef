//! A snapshot of every TCP and UDP socket of a stack, for `ss`-like views
//! (`tapstack ss`, `sockets_api::Net::socket_table`): [`crate::Stack::socket_table`].
//!
//! Queue sizes follow Linux's `ss`: for a connection, Recv-Q is the bytes the
//! application has not read and Send-Q the bytes it wrote that the peer has not
//! acknowledged (sent or not); for a TCP listener, Recv-Q is the accept queue's
//! length and Send-Q the backlog; for UDP, Recv-Q is what the queued datagrams
//! account for against the receive buffer (payload plus overhead, as Linux's
//! `sk_rmem_alloc`) and Send-Q is 0 (datagrams leave at once).
//!
//! Timers are given as the time left from the `now` the snapshot was taken at,
//! not as instants of the stack's clock, so that the snapshot reads the same
//! wherever it is printed. A timer already due (the driver has not polled yet)
//! shows zero.

use crate::tcp::{self, TcpInfo, TimerInfo};
use crate::time::{Duration, Instant};
use crate::udp::Udp;
use std::net::SocketAddrV4;

/// Which transport a socket belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// A socket's state as `ss` sees it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SocketState {
    /// A TCP connection or listener, in its RFC 9293 state.
    Tcp(tcp::State),
    /// A UDP socket without a connected peer (ss's UNCONN).
    UdpUnconnected,
    /// A connected UDP socket (ss's ESTAB).
    UdpConnected,
}

impl SocketState {
    pub fn protocol(self) -> Protocol {
        match self {
            SocketState::Tcp(_) => Protocol::Tcp,
            SocketState::UdpUnconnected | SocketState::UdpConnected => Protocol::Udp,
        }
    }
}

/// The time left on each running timer of a TCP connection.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TimersLeft {
    pub retransmit: Option<Duration>,
    pub persist: Option<Duration>,
    pub delayed_ack: Option<Duration>,
    pub keepalive: Option<Duration>,
    /// TIME-WAIT's 2*MSL or the orphaned FIN-WAIT-2 timeout.
    pub close: Option<Duration>,
}

impl TimersLeft {
    /// The deadlines of `timers` as time left from `now` (zero for any already due).
    pub fn at(timers: &TimerInfo, now: Instant) -> TimersLeft {
        let left = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(now));
        TimersLeft {
            retransmit: left(timers.retransmit),
            persist: left(timers.persist),
            delayed_ack: left(timers.delayed_ack),
            keepalive: left(timers.keepalive),
            close: left(timers.close),
        }
    }
}

/// One socket in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketEntry {
    pub state: SocketState,
    pub local: SocketAddrV4,
    /// The peer, if the socket has one (not a listener, not an unconnected UDP socket).
    pub remote: Option<SocketAddrV4>,
    /// ss's Recv-Q (see the module documentation).
    pub recv_q: usize,
    /// ss's Send-Q.
    pub send_q: usize,
    /// A TCP connection's internals (`ss -i`); `None` for listeners, TIME-WAIT and UDP.
    pub tcp: Option<TcpInfo>,
    /// Time left on a TCP connection's timers (`ss -o`); all `None` otherwise.
    pub timers: TimersLeft,
}

impl SocketEntry {
    pub fn protocol(&self) -> Protocol {
        self.state.protocol()
    }

    fn from_tcp(info: TcpInfo, now: Instant) -> SocketEntry {
        let listener = info.state == tcp::State::Listen;
        SocketEntry {
            state: SocketState::Tcp(info.state),
            local: info.local,
            remote: (!listener).then_some(info.remote),
            recv_q: info.recv_queue,
            send_q: info.send_queue,
            timers: TimersLeft::at(&info.timers, now),
            // As Linux's ss: a TIME-WAIT socket has no tcp_info (a compact
            // record has no congestion or RTT state to show).
            tcp: (!listener && info.state != tcp::State::TimeWait).then_some(info),
        }
    }
}

/// Every TCP socket (listeners, connections, orphans still closing) in table
/// order, then every bound UDP socket (an unbound one has no address to show,
/// and Linux's `ss` does not list it either).
pub(crate) fn collect(tcp: &tcp::Tcp, udp: &Udp, now: Instant) -> Vec<SocketEntry> {
    let mut out: Vec<SocketEntry> = tcp.sockets().map(|(_, info)| SocketEntry::from_tcp(info, now)).collect();
    out.extend(udp.sockets().filter_map(|(_, s)| {
        let remote = s.remote();
        Some(SocketEntry {
            state: if remote.is_some() { SocketState::UdpConnected } else { SocketState::UdpUnconnected },
            local: s.local()?,
            remote,
            recv_q: s.recv_queued_bytes(),
            send_q: 0,
            tcp: None,
            timers: TimersLeft::default(),
        })
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, MacAddr, Stack};
    use std::net::Ipv4Addr;

    fn stack() -> Stack {
        Stack::new(Config::new(MacAddr([2, 0, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 0, 1), 24)).unwrap()
    }

    fn sa(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn lists_listeners_connections_and_bound_udp_sockets_with_time_left() {
        let mut st = stack();
        let t0 = Instant::from_secs(5);
        {
            let (tcp, net) = st.tcp();
            tcp.listen(net, sa("0.0.0.0:80"), 7).unwrap();
            tcp.connect(t0, net, None, sa("10.0.0.9:7")).unwrap();
        }
        {
            let (udp, net) = st.udp();
            let bound = udp.open().unwrap();
            udp.bind(net, bound, sa("0.0.0.0:53")).unwrap();
            let connected = udp.open().unwrap();
            udp.connect(net, connected, sa("10.0.0.9:9")).unwrap();
            udp.open().unwrap(); // unbound: not listed
        }
        let table = st.socket_table(t0 + Duration::from_millis(300));
        assert_eq!(table.len(), 4, "{table:#?}");

        let listener = &table[0];
        assert_eq!(listener.state, SocketState::Tcp(tcp::State::Listen));
        assert_eq!((listener.local, listener.remote), (sa("0.0.0.0:80"), None));
        assert_eq!((listener.recv_q, listener.send_q), (0, 7), "accept queue, backlog");
        assert!(listener.tcp.is_none());

        let syn_sent = &table[1];
        assert_eq!(syn_sent.state, SocketState::Tcp(tcp::State::SynSent));
        assert_eq!(syn_sent.remote, Some(sa("10.0.0.9:7")));
        assert_eq!(syn_sent.protocol(), Protocol::Tcp);
        // The SYN waits for ARP; its retransmission timer (1 s initial RTO) started at t0.
        assert_eq!(syn_sent.timers.retransmit, Some(Duration::from_millis(700)));
        assert!(syn_sent.tcp.as_ref().is_some_and(|i| i.rto == Duration::from_secs(1)));

        assert_eq!(table[2].state, SocketState::UdpUnconnected);
        assert_eq!((table[2].local, table[2].remote), (sa("0.0.0.0:53"), None));
        assert_eq!(table[3].state, SocketState::UdpConnected);
        assert_eq!(table[3].remote, Some(sa("10.0.0.9:9")));
        assert_eq!(table[3].protocol(), Protocol::Udp);
    }

    #[test]
    fn a_timer_already_due_shows_zero_left() {
        let timers = TimerInfo { delayed_ack: Some(Instant::from_millis(10)), ..TimerInfo::default() };
        let left = TimersLeft::at(&timers, Instant::from_millis(50));
        assert_eq!(left, TimersLeft { delayed_ack: Some(Duration::ZERO), ..TimersLeft::default() });
    }
}
