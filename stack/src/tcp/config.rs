//! TCP's limits, timers and per-socket options, each default documented. The
//! stack-wide `Config` carries them as its `tcp` field; `Tcp::set_config`
//! replaces them on a running stack.

use super::cubic::Algorithm;
use crate::time::Duration;

/// Stack-wide TCP settings.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// Maximum segment lifetime (RFC 9293 section 3.4.2). Default 30 s, so that
    /// TIME-WAIT lasts 2*MSL = 60 s, as Linux's fixed TCP_TIMEWAIT_LEN (RFC 9293
    /// suggests 2 minutes for MSL; a shorter one is common practice).
    pub msl: Duration,
    /// How long an orphaned connection (the user closed it) may sit in FIN-WAIT-2
    /// waiting for the peer's FIN. Default 60 s, Linux's tcp_fin_timeout.
    pub fin_wait2_timeout: Duration,
    /// RTO before any round-trip sample (RFC 6298 section 2.1): 1 s.
    pub initial_rto: Duration,
    /// Lower bound of RTO. Default 200 ms as Linux (TCP_RTO_MIN); RFC 6298
    /// section 2.4 says 1 s, a value widely considered too conservative today.
    pub min_rto: Duration,
    /// Upper bound of RTO (RFC 6298 section 2.5 allows any bound of at least
    /// 60 s). Default 120 s as Linux (TCP_RTO_MAX).
    pub max_rto: Duration,
    /// R2 for SYN segments, as a count of retransmissions (RFC 9293 MUST-23: at
    /// least 3 minutes). Default 7: retransmissions at 1, 3, 7, 15, 31, 63 and
    /// 127 s, giving up at 247 s (the last wait capped by `max_rto`); Linux's 6
    /// gives up at 127 s, short of 3 minutes.
    pub syn_retries: u32,
    /// R2 for data segments, as a count of retransmissions (RFC 9293 MUST-20:
    /// at least 100 s). Default 15 as Linux's tcp_retries2 (about 15 minutes with
    /// a 200 ms RTO). Zero-window probes that get no answer count the same way.
    pub data_retries: u32,
    /// R1 (RFC 1122 section 4.2.3.5): after this many retransmissions the path is
    /// suspect; we note it in `TcpInfo::path_suspect`. Default 3.
    pub r1_retries: u32,
    /// Delayed ACK timeout (RFC 9293 section 3.8.6.3, MUST-40: under 0.5 s).
    /// Default 40 ms, Linux's minimum delayed ACK: short enough that Nagle and
    /// delayed ACKs together cost little. An ACK is sent at once for every
    /// second segment, for out-of-order data, and for a FIN.
    pub delayed_ack: Duration,
    /// Most connections (not counting listeners). Default 4096; SYNs beyond it
    /// are dropped (`TcpConnectionLimit`) and `connect` fails with `NoBufferSpace`.
    pub max_connections: usize,
    /// Largest listen backlog accepted (like Linux's somaxconn). Default 4096.
    pub max_backlog: usize,
    /// Out-of-order ranges held per connection. Default 32.
    pub max_ooo_ranges: usize,
    /// RFC 5961 section 7 challenge ACK limit, stack-wide: per second and burst.
    /// Default 100 per second, burst 100 (Linux: 1000/s, randomised).
    pub challenge_ack_rate: u32,
    pub challenge_ack_burst: u32,
    /// Offer SACK-permitted on SYNs and use SACK when the peer agrees (RFC 2018,
    /// RFC 6675). Default on, as Linux's tcp_sack.
    pub sack: bool,
    /// Offer timestamps on SYNs and use them when the peer agrees (RFC 7323:
    /// round-trip samples on every ACK, PAWS). Default on, as Linux's tcp_timestamps.
    pub timestamps: bool,
    /// Congestion control of new connections. Default CUBIC (RFC 9438), as
    /// Linux's tcp_congestion_control; NewReno (RFC 5681, RFC 6582) available.
    pub congestion: Algorithm,
    /// Transitions kept for `drain_transitions` (oldest dropped). Default 4096.
    pub trace_capacity: usize,
    /// Options new sockets start with.
    pub default_options: SocketOptions,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            msl: Duration::from_secs(30),
            fin_wait2_timeout: Duration::from_secs(60),
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(120),
            syn_retries: 7,
            data_retries: 15,
            r1_retries: 3,
            delayed_ack: Duration::from_millis(40),
            max_connections: 4096,
            max_backlog: 4096,
            max_ooo_ranges: 32,
            challenge_ack_rate: 100,
            challenge_ack_burst: 100,
            sack: true,
            timestamps: true,
            congestion: Algorithm::Cubic,
            trace_capacity: 4096,
            default_options: SocketOptions::default(),
        }
    }
}

/// Per-socket options (setsockopt). Children of a listener inherit its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketOptions {
    /// TCP_NODELAY: turn Nagle's algorithm off (default off, MUST-17 says on).
    pub nodelay: bool,
    /// SO_KEEPALIVE (RFC 9293 section 3.8.4, MUST-24: off by default).
    pub keepalive: bool,
    /// TCP_KEEPIDLE: idle time before the first probe (MUST-28: at least 2 hours by default).
    pub keep_idle: Duration,
    /// TCP_KEEPINTVL: time between unanswered probes (default 75 s, as Linux).
    pub keep_interval: Duration,
    /// TCP_KEEPCNT: unanswered probes before the connection is dropped (default 9).
    pub keep_count: u32,
    /// SO_LINGER: `Some(0)` makes close an abort (RST). Any other value behaves
    /// like `None` here (the core never blocks; a sockets layer may wait for the
    /// state to reach CLOSED or TIME-WAIT itself).
    pub linger: Option<Duration>,
    /// SO_SNDBUF in bytes (default 64 KiB).
    pub send_buffer: usize,
    /// SO_RCVBUF in bytes (default 64 KiB); fixed once data arrives. It decides
    /// the window scale sent on our SYN (RFC 7323 section 2.3).
    pub recv_buffer: usize,
    /// SO_REUSEADDR: bind to a port that TIME-WAIT connections still hold.
    pub reuse_addr: bool,
    /// R2 for this connection (RFC 9293 MUST-21: the application can set it):
    /// retransmissions before the connection is given up with ETIMEDOUT. `None`
    /// uses `TcpConfig::syn_retries` while opening, `data_retries` after.
    pub retries: Option<u32>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            nodelay: false,
            keepalive: false,
            keep_idle: Duration::from_secs(7200),
            keep_interval: Duration::from_secs(75),
            keep_count: 9,
            linger: None,
            send_buffer: 64 * 1024,
            recv_buffer: 64 * 1024,
            reuse_addr: false,
            retries: None,
        }
    }
}

/// Bounds applied to buffer sizes set by the user.
pub const MIN_BUFFER: usize = 256;
pub const MAX_BUFFER: usize = 16 * 1024 * 1024;
