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
    /// SACK, timestamps, loss recovery and congestion control.
    pub loss: LossInfo,
}

/// What `ss -ti` shows of loss recovery, in Linux's words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LossInfo {
    /// The congestion control algorithm ("cubic", "reno").
    pub congestion: &'static str,
    /// SACK agreed on (RFC 2018): ss's `sack`.
    pub sack: bool,
    /// Timestamps agreed on (RFC 7323): ss's `ts`.
    pub timestamps: bool,
    /// Octets the peer SACKed above SND.UNA (ss's `sacked`, in segments there).
    pub sacked: u32,
    /// Octets deemed lost and not yet retransmitted (ss's `lost`).
    pub lost: u32,
    /// Octets retransmitted in this recovery and still in flight (ss's first `retrans` number).
    pub retrans_out: u32,
    /// Duplicate threshold in segments (ss's `reordering`; 3, RFC 6675's DupThresh).
    pub reordering: u32,
    /// RACK's reordering window (RFC 8985 section 6.2 step 4) and whether
    /// reordering was seen (ss's `reord_seen` counts the events).
    pub reo_wnd: Duration,
    pub reordering_seen: bool,
    /// D-SACKs received: segments the peer got twice (ss's `dsack_dups`).
    pub dsacks: u64,
    /// Retransmission timeouts undone as spurious (RFC 3522).
    pub spurious_rtos: u64,
    /// Fast recoveries undone as spurious (RFC 3522 with timestamps, RFC 3708 with D-SACK).
    pub undos: u64,
    /// HyStart++'s phase (RFC 9406): "ss", "css", or "off" once over.
    pub hystart: &'static str,
}
