//! TCP's limits, timers and per-socket options, each default documented. The
//! stack-wide `Config` carries them as its `tcp` field; `Tcp::set_config`
//! replaces them on a running stack.

use super::cubic::Algorithm;
use crate::time::Duration;

/// The most in-order data a stretch ACK leaves unacknowledged within a batch
/// (`TcpConfig::stretch_acks`): 64 KiB, the largest segment Linux's GRO makes.
pub const STRETCH_ACK_BYTES: usize = 64 * 1024;

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
    /// How long a stack that is being stopped (its program exits, or drops its
    /// runtime) keeps running so that the connections it closes are closed as
    /// the kernel closes a process's sockets at exit: their FINs sent and
    /// acknowledged (RSTs go out at once). After it, what is still unacknowledged
    /// is aborted (RST) and the stack stops, so stopping is bounded even when
    /// the peer is gone. Default 2 s: one round trip on a LAN with room for the
    /// retransmission of a lost FIN (a first RTO of 1 s). Linux has no such
    /// bound because the kernel outlives the process: its orphaned connections
    /// retransmit up to tcp_orphan_retries (8 by default) and wait in FIN-WAIT-2
    /// for tcp_fin_timeout (60 s).
    pub exit_linger: Duration,
    /// RTO before any round-trip sample (RFC 6298 section 2.1): 1 s, Linux's TCP_TIMEOUT_INIT.
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
    /// R2 for our SYN,ACK answering a peer's SYN (passive open). Default 5,
    /// Linux's tcp_synack_retries: retransmissions at 1, 3, 7, 15 and 31 s,
    /// given up at 63 s, so that a SYN-RECEIVED entry of a spoofed SYN holds
    /// its place in the SYN queue for about a minute (RFC 4987 section 3.3).
    pub synack_retries: u32,
    /// Answer SYNs with SYN cookies (RFC 4987 section 3.6) when a listener's
    /// SYN queue, or the connection table, is full; otherwise such SYNs are
    /// dropped. Default on, as Linux's tcp_syncookies = 1.
    pub syn_cookies: bool,
    /// Answer every SYN with a cookie, the SYN queue full or not (Linux's
    /// tcp_syncookies = 2): no state before the handshake completes, at the
    /// cost of the options a cookie cannot carry without timestamps. Default
    /// off, as Linux. Tests use it to make a cookie connection with one peer.
    pub syn_cookies_always: bool,
    /// R2 for data segments, as a count of retransmissions (RFC 9293 MUST-20:
    /// at least 100 s). Default 15 as Linux's tcp_retries2 (about 15 minutes with
    /// a 200 ms RTO). Zero-window probes that get no answer count the same way.
    pub data_retries: u32,
    /// R1 (RFC 1122 section 4.2.3.5): after this many retransmissions the path is
    /// suspect; we note it in `TcpInfo::path_suspect`. Default 3, Linux's tcp_retries1.
    pub r1_retries: u32,
    /// Delayed ACK timeout (RFC 9293 section 3.8.6.3, MUST-40: under 0.5 s).
    /// Default 40 ms, Linux's minimum delayed ACK: short enough that Nagle and
    /// delayed ACKs together cost little. An ACK is sent at once for every
    /// second segment, for out-of-order data, and for a FIN.
    pub delayed_ack: Duration,
    /// Stretch ACKs within a batch: when a driver feeds several frames read
    /// together (`Stack::receive_batch`, the runtime's read of the TAP until it
    /// is empty), the every-second-segment ACK of in-order data is sent once, at
    /// the batch's end, for all of the batch's segments (at most
    /// [`STRETCH_ACK_BYTES`] unacknowledged), as Linux acknowledges the segment
    /// its GRO coalesces from one NAPI poll's packets. Out-of-order data, a gap
    /// filled, a FIN and window updates are still acknowledged at once. Default
    /// on; off, every second segment is acknowledged as it comes, batch or not
    /// (RFC 9293 SHLD-19 to the letter).
    pub stretch_acks: bool,
    /// Window updates after a read only when they matter to the sender: a read
    /// that opens the window sends one at once only if the peer's usable window
    /// was under one MSS or the update at least doubles it, as Linux's
    /// tcp_cleanup_rbuf decides; otherwise the opened window rides on our next
    /// ACK. Off (the default here: the captures and virtual-time tests hold the
    /// eager updates), every read that opens the window by the SWS threshold
    /// (RFC 9293 section 3.8.6.2.2) sends one: a bulk reader reading a round's
    /// data in several calls then costs a pure window update per call (half
    /// the frames we wrote in the plain TAP's discard bench). `tapstack up`
    /// and the lab turn it on.
    pub lazy_window_updates: bool,
    /// Most connections (not counting listeners, nor TIME-WAIT). Default 4096;
    /// SYNs beyond it get cookies (or are dropped, `TcpConnectionLimit`) and
    /// `connect` fails with `NoBufferSpace`. Linux has no count of its own:
    /// descriptors (ulimit -n, 1024 by default) and memory (tcp_mem) bound it.
    pub max_connections: usize,
    /// Most connections in TIME-WAIT, counted apart from `max_connections`.
    /// Default 16384; beyond it a connection closes instead of waiting. Linux's
    /// tcp_max_tw_buckets is sized from memory, 262144 on a machine of a few GiB.
    /// A connection the user has closed waits as a compact record of 120 bytes
    /// (`size_of::<TimeWait>()`; about 157 bytes with its share of the table's
    /// map and list, measured over 4,096 of them), not as its TCB of 888 bytes
    /// (`size_of::<Conn>()`, plus buffers): 16384 of them hold about 2.5 MB.
    /// Linux's tcp_timewait_sock is about 200 bytes.
    pub max_tw_buckets: usize,
    /// Largest listen backlog accepted, Linux's somaxconn (SOMAXCONN): 4096.
    /// A listener's backlog bounds its accept queue and, apart, its SYN queue
    /// (connections in SYN-RECEIVED), as Linux's sk_max_ack_backlog does both.
    pub max_backlog: usize,
    /// Out-of-order ranges held per connection. Default 32. Linux bounds its
    /// out-of-order queue by the receive buffer's memory only. (The sender's
    /// side has two fixed bounds: 32 SACKed ranges in the scoreboard,
    /// `sack::MAX_SACK_RANGES`, and 4096 sent segments in RACK's list,
    /// `rack::MAX_SENT`, beyond which new data joins the newest entry; Linux
    /// bounds its retransmit queue by the send buffer's memory.)
    pub max_ooo_ranges: usize,
    /// RFC 5961 section 7, per connection: at most one challenge ACK per this
    /// interval. Default 500 ms, Linux's tcp_invalid_ratelimit.
    pub challenge_ack_interval: Duration,
    /// RFC 5961 section 7, stack-wide: the mean number of challenge ACKs per
    /// second; each second's budget is drawn from [limit/2, 3*limit/2).
    /// Default 1000, Linux's tcp_challenge_ack_limit from 4.7 to 5.19 (since
    /// 6.0 Linux defaults to no ceiling, `u32::MAX` here).
    pub challenge_ack_limit: u32,
    /// Offer SACK-permitted on SYNs and use SACK when the peer agrees (RFC 2018,
    /// RFC 6675). Default on, as Linux's tcp_sack.
    pub sack: bool,
    /// Offer timestamps on SYNs and use them when the peer agrees (RFC 7323:
    /// round-trip samples on every ACK, PAWS). Default on, as Linux's tcp_timestamps.
    pub timestamps: bool,
    /// Congestion control of new connections. Default CUBIC (RFC 9438), as
    /// Linux's tcp_congestion_control; NewReno (RFC 5681, RFC 6582) available.
    pub congestion: Algorithm,
    /// HyStart++ (RFC 9406) in the initial slow start, for either algorithm:
    /// slow start ends when the round trip grows by [`HYSTART_MIN_RTT_THRESH`]
    /// or more, before the queue overflows, through a few rounds of
    /// Conservative Slow Start. Default on, as Linux's CUBIC runs HyStart
    /// (its module parameter `hystart=1`); off gives RFC 5681 slow start alone.
    pub hystart: bool,
    /// How long a connection's buffers must stay empty before their storage
    /// beyond a small floor (4 KiB each) is given back (issue 13: memory
    /// returns after a burst). Default 1 s: long enough that a steady
    /// transfer, whose buffers empty and fill many times a second, keeps its
    /// storage (no allocation per segment). Linux has no such delay: it frees
    /// each sk_buff as it is read or acknowledged.
    pub buffer_idle: Duration,
    /// Transitions kept for `drain_transitions` (oldest dropped). Default 4096.
    /// (No Linux counterpart: its tracepoints are not buffered by TCP.)
    pub trace_capacity: usize,
    /// Options new sockets start with.
    pub default_options: SocketOptions,
    /// The most a connection's send buffer grows to by itself
    /// (`conn/sndbuf.rs`): twice what its congestion and peer's windows let
    /// fly, for a socket whose SO_SNDBUF is the default one. 0, the default
    /// here, turns the growth off (the buffer stays at SO_SNDBUF, as a Linux
    /// socket whose SO_SNDBUF was set): the core's tests in virtual time and
    /// the recorded captures count on a fixed buffer. `tapstack up` sets
    /// [`AUTOTUNE_WMEM_MAX`], Linux's tcp_wmem[2].
    pub wmem_max: usize,
    /// The most a connection's receive buffer grows to by itself
    /// (`conn/rcvbuf.rs`, Linux's dynamic right-sizing), for a socket whose
    /// SO_RCVBUF is the default one; its SYN then announces the window scale
    /// of this size. 0, the default here, turns it off (the captures hold the
    /// window scale of the fixed buffer); `tapstack up` sets
    /// [`AUTOTUNE_RMEM_MAX`], Linux's tcp_rmem[2].
    pub rmem_max: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            msl: Duration::from_secs(30),
            fin_wait2_timeout: Duration::from_secs(60),
            exit_linger: Duration::from_secs(2),
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(120),
            syn_retries: 7,
            synack_retries: 5,
            syn_cookies: true,
            syn_cookies_always: false,
            data_retries: 15,
            r1_retries: 3,
            delayed_ack: Duration::from_millis(40),
            stretch_acks: true,
            lazy_window_updates: false,
            max_connections: 4096,
            max_tw_buckets: 16384,
            max_backlog: 4096,
            max_ooo_ranges: 32,
            challenge_ack_interval: Duration::from_millis(500),
            challenge_ack_limit: 1000,
            sack: true,
            timestamps: true,
            congestion: Algorithm::Cubic,
            hystart: true,
            buffer_idle: Duration::from_secs(1),
            trace_capacity: 4096,
            default_options: SocketOptions::default(),
            wmem_max: 0,
            rmem_max: 0,
        }
    }
}

// HyStart++'s constants, the values RFC 9406 section 4.3 recommends. (Linux's
// HyStart, an earlier variant, has no CSS; it exits slow start when the delay
// grows by between 4 and 16 ms, clamp(min RTT / 8), the same bounds.)

/// MIN_RTT_THRESH: the smallest round-trip increase that ends slow start.
pub const HYSTART_MIN_RTT_THRESH: Duration = Duration::from_millis(4);
/// MAX_RTT_THRESH: the largest increase needed.
pub const HYSTART_MAX_RTT_THRESH: Duration = Duration::from_millis(16);
/// MIN_RTT_DIVISOR: between them, the increase needed is the last round's minimum RTT / 8.
pub const HYSTART_MIN_RTT_DIVISOR: u32 = 8;
/// N_RTT_SAMPLE: RTT samples a round needs before its minimum is compared.
pub const HYSTART_N_RTT_SAMPLE: u32 = 8;
/// CSS_GROWTH_DIVISOR: Conservative Slow Start grows cwnd at 1/4 of slow start's pace.
pub const HYSTART_CSS_GROWTH_DIVISOR: u32 = 4;
/// CSS_ROUNDS: rounds of Conservative Slow Start before congestion avoidance.
pub const HYSTART_CSS_ROUNDS: u32 = 5;
/// L: most SMSS one ACK may add to cwnd in slow start: 8 for a sender that
/// does not pace (RFC 9406 section 4.3; infinite with pacing). Without
/// HyStart++ slow start adds at most one SMSS per ACK (RFC 5681 section 3.1).
pub const HYSTART_L: u32 = 8;

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
    /// TCP_KEEPCNT: unanswered probes before the connection is dropped (default
    /// 9, Linux's tcp_keepalive_probes).
    pub keep_count: u32,
    /// SO_LINGER: `Some(0)` makes close an abort (RST). Any other value behaves
    /// like `None` here (the core never blocks; a sockets layer may wait for the
    /// state to reach CLOSED or TIME-WAIT itself).
    pub linger: Option<Duration>,
    /// SO_SNDBUF in bytes (default 64 KiB; Linux's tcp_wmem default is 16 KiB,
    /// grown automatically up to 4 MiB).
    pub send_buffer: usize,
    /// SO_RCVBUF in bytes (default 64 KiB; Linux's tcp_rmem default is 128 KiB,
    /// grown automatically up to 6 MiB); fixed once data arrives. It decides
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

/// The bound of send-buffer autotuning that `tapstack up` runs with
/// (`TcpConfig::wmem_max`): 4 MiB, Linux's tcp_wmem[2].
pub const AUTOTUNE_WMEM_MAX: usize = 4 * 1024 * 1024;

/// The bound of receive-buffer autotuning that `tapstack up` runs with
/// (`TcpConfig::rmem_max`): 6 MiB, Linux's tcp_rmem[2].
pub const AUTOTUNE_RMEM_MAX: usize = 6 * 1024 * 1024;

/// Bounds applied to buffer sizes set by the user. Linux: at least
/// SOCK_MIN_RCVBUF / SOCK_MIN_SNDBUF (about 2 and 4 KiB), at most
/// rmem_max / wmem_max (208 KiB by default) for setsockopt.
pub const MIN_BUFFER: usize = 256;
pub const MAX_BUFFER: usize = 16 * 1024 * 1024;
