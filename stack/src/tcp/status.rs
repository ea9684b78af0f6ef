//! What the user can learn about a socket: poll(2)-like readiness and a
//! `tcp_info`-like snapshot (RFC 9293 section 3.10.6, STATUS).

use super::error::TcpError;
use super::state::State;
use crate::time::{Duration, Instant};
use std::net::SocketAddrV4;

/// What a poll(2)-like wait on the socket would report.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Data, EOF or an error to read; for a listener, a connection to accept.
    pub readable: bool,
    /// Room in the send buffer of a connection that may send (also set with an error).
    pub writable: bool,
    /// Both directions are finished (or the connection is gone).
    pub hangup: bool,
    /// The pending error (SO_ERROR), not consumed.
    pub error: Option<TcpError>,
}

/// When each timer of a connection fires, if it runs.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TimerInfo {
    pub retransmit: Option<Instant>,
    pub persist: Option<Instant>,
    pub delayed_ack: Option<Instant>,
    pub keepalive: Option<Instant>,
    /// TIME-WAIT's 2*MSL or the orphaned FIN-WAIT-2 timeout.
    pub close: Option<Instant>,
}

/// A snapshot of one socket, like Linux's `struct tcp_info` and `ss -ti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    pub state: State,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub cwnd: u32,
    pub ssthresh: u32,
    pub srtt: Option<Duration>,
    pub rttvar: Duration,
    pub rto: Duration,
    /// Effective send MSS.
    pub snd_mss: u32,
    /// The peer's offered window (scaled).
    pub snd_wnd: u32,
    /// The window we offer.
    pub rcv_wnd: u32,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    /// Sequence space sent and not acknowledged.
    pub unacked: u32,
    /// Bytes in the send buffer (unacknowledged and unsent). For a listener, the backlog.
    pub send_queue: usize,
    /// Bytes waiting for the user. For a listener, connections waiting to be accepted.
    pub recv_queue: usize,
    /// Bytes held out of order.
    pub out_of_order: usize,
    pub bytes_sent: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub retransmissions: u64,
    pub segs_in: u64,
    pub segs_out: u64,
    /// Consecutive retransmission timeouts.
    pub retries: u32,
    /// R1 has been reached (RFC 1122 section 4.2.3.5).
    pub path_suspect: bool,
    pub in_recovery: bool,
    pub timers: TimerInfo,
}
