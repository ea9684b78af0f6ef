//! One connection's transmission control block (the TCB of RFC 9293 section 3.3.1)
//! and its state machine, split as a reader of RFC 9293 section 3.10 and of
//! BSD's tcp_*.c expects:
//! - this file: the TCB, its construction for both opens, `set_state` (what a
//!   transition does besides changing the state) and queries;
//! - `input`: SEGMENT ARRIVES (section 3.10.7.3 for SYN-SENT, 3.10.7.4 for
//!   the rest, one function per check), with the RFC 5961 defences (BSD's tcp_input);
//! - `output`: every segment we send is built by one function (BSD's tcp_output),
//!   and the policy of what to send now: window, Nagle, sender SWS, RFC 5681
//!   congestion control through [`Congestion`];
//! - `timers`: retransmission (RFC 6298), persist (section 3.8.6.1),
//!   keep-alive (section 3.8.4), delayed ACK, TIME-WAIT and orphaned
//!   FIN-WAIT-2 (section 3.10.8; BSD's tcp_timer);
//! - `user`: the user calls SEND, RECEIVE, CLOSE, ABORT (sections
//!   3.10.2-3.10.5) and socket options (BSD's tcp_usrreq);
//! - `icmp`: ICMP errors about our segments (section 3.9.2.2).
//!
//! The table (`super::table`) owns the connections and demultiplexes segments to
//! them; LISTEN (3.10.7.2) and CLOSED (3.10.7.1) are handled in `super::demux`,
//! since neither has a connection of its own.

mod icmp;
mod input;
mod loss;
mod output;
mod rcvbuf;
mod sndbuf;
mod time_wait;
mod timers;
mod tlp;
mod undo;
mod user;

pub(crate) use rcvbuf::rcv_wscale;
pub use time_wait::{TimeWait, TwOutcome};
pub use user::Shutdown;

use super::cause::Cause;
use super::challenge::ChallengeLimit;
use super::config::{SocketOptions, TcpConfig};
use super::congestion::Congestion;
use super::error::TcpError;
use super::id::ConnId;
use super::lower::TcpNet;
use super::recv::RecvBuffer;
use super::rtt::RttEstimator;
use super::segment::{Segment, SegmentOut};
use super::send::SendBuffer;
use super::seq::Seq;
use super::state::State;
use super::status::{Readiness, TcpInfo, TimerInfo};
use super::timestamps::{SynOptions, Timestamps};
use super::trace::{TraceLog, Transition};
use crate::counters::DropReason;
use crate::time::{Duration, Instant};
use output::Tx;
use std::net::SocketAddrV4;

/// RFC 9293 section 3.7.1 (MUST-15): without an MSS option, assume 536.
pub const DEFAULT_MSS: u16 = 536;
/// IPv4 and TCP headers without options.
const HEADERS: u16 = 40;
/// Largest window scale shift (RFC 7323 section 2.3).
const MAX_WSCALE: u8 = 14;
/// RFC 6298 section 5.7: RTO once data flows after a retransmitted SYN.
const RTO_AFTER_SYN_LOSS: Duration = Duration::from_secs(3);

/// Everything an event on one connection may need besides the connection.
pub struct Ctx<'a> {
    pub now: Instant,
    pub net: &'a mut dyn TcpNet,
    pub cfg: &'a TcpConfig,
    pub challenge: &'a mut ChallengeLimit,
    pub trace: &'a mut TraceLog,
    /// The segment is one of a batch of frames read together, whose end the
    /// driver announces (`Tcp::end_batch`): an ACK owed for in-order data may
    /// wait for it (`TcpConfig::stretch_acks`).
    pub batch: bool,
}

/// Sends one segment, counting it. Used for connections and for resets on
/// behalf of no connection (RFC 9293 section 3.10.7.1).
pub fn emit(
    ctx: &mut Ctx<'_>,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    seg: &SegmentOut,
    payload: [&[u8]; 2],
) -> Result<(), DropReason> {
    let c = ctx.net.counters();
    c.tx_segments += 1;
    if seg.rst {
        c.tx_resets += 1;
    }
    // A failure below (no route, say) is counted there; the segment is treated
    // as lost, and retransmission takes over.
    ctx.net.send_segment(ctx.now, local, remote, seg, payload)
}

/// The MSS we announce: the MTU less the IPv4 and TCP headers (RFC 9293 section 3.7.1, MUST-14..16).
pub fn our_mss(net: &dyn TcpNet) -> u16 {
    net.mtu().saturating_sub(HEADERS).max(64)
}

/// The window scale to announce for a receive buffer (RFC 7323 section 2.3).
pub(super) fn wscale_for(buffer: usize) -> u8 {
    let mut s = 0;
    while s < MAX_WSCALE && (buffer >> s) > u16::MAX as usize {
        s += 1;
    }
    s
}

#[derive(Debug)]
pub struct Conn {
    pub id: ConnId,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub state: State,
    /// Opened by a SYN to a listener (RFC 9293 MUST-11: RST in SYN-RECEIVED returns it to LISTEN).
    pub passive: bool,
    pub opts: SocketOptions,

    // Send sequence space (RFC 9293 section 3.3.1).
    iss: Seq,
    snd_una: Seq,
    /// Next sequence number to send; set back to SND.UNA on a retransmission timeout.
    snd_nxt: Seq,
    /// Highest sequence number sent (+1): what acknowledgments are checked against.
    snd_max: Seq,
    snd_wnd: u32,
    snd_wl1: Seq,
    snd_wl2: Seq,
    max_snd_wnd: u32,
    /// Shift applied to the peer's window field (0 without window scaling).
    snd_wscale: u8,
    /// Shift applied to the window we send.
    rcv_wscale: u8,
    /// The peer sent a window scale option on its SYN.
    peer_wscale: Option<u8>,
    /// Effective send MSS (RFC 9293 section 3.7.1).
    snd_mss: u32,
    /// When the MSS lowered by path MTU discovery goes back to
    /// `mss_before_pmtu` (`icmp::PMTU_EXPIRES` after the last lowering).
    pmtu_expires: Option<Instant>,
    mss_before_pmtu: u32,
    /// The MSS we announced.
    rcv_mss: u32,
    /// Sequence number of the first byte of `send`.
    buf_seq: Seq,
    send: SendBuffer,
    /// The user closed or shut down the sending side: a FIN follows the data.
    fin_queued: bool,

    // Receive sequence space.
    irs: Seq,
    rcv_nxt: Seq,
    /// Right edge of the window we last advertised.
    rcv_adv: Seq,
    /// The window we put on our SYN (never scaled).
    syn_wnd: u16,
    recv: RecvBuffer,
    /// The peer's FIN has been received (in order): EOF after the buffered data.
    fin_received: bool,
    /// A FIN seen beyond a gap, at this sequence number.
    pending_fin: Option<Seq>,
    rd_shut: bool,

    // Timers (RFC 9293 section 3.8; RFC 6298; RFC 1122 section 4.2.3.6).
    rto_at: Option<Instant>,
    persist_at: Option<Instant>,
    delack_at: Option<Instant>,
    keepalive_at: Option<Instant>,
    /// TIME-WAIT's 2*MSL, or the orphaned FIN-WAIT-2 timeout.
    close_at: Option<Instant>,
    /// When to look at giving the buffers' spare storage back, and when one of
    /// them last emptied (see `Conn::buffer_drained`).
    trim_at: Option<Instant>,
    drained_at: Instant,
    /// Consecutive retransmission timeouts without progress.
    retries: u32,
    /// Zero-window probes not answered by any ACK (toward the R2 limit).
    persist_probes: u32,
    /// Doublings of the probe interval; ends when the window opens.
    persist_backoff: u32,
    ka_probes: u32,
    rtt: RttEstimator,
    /// The one segment being timed (RFC 6298 section 3 via Karn): its sequence number and send time.
    rtt_timing: Option<(Seq, Instant)>,
    cc: Congestion,
    syn_retransmitted: bool,

    // Options the SYNs negotiated, and what SACK and timestamps keep.
    /// What we offered on our SYN (from `TcpConfig` when it was sent).
    offer_sack: bool,
    offer_ts: bool,
    /// What both SYNs agreed on (RFC 7323, RFC 2018).
    syn_opts: SynOptions,
    /// TSval clock, TS.Recent, Last.ACK.sent (RFC 7323).
    ts: Timestamps,
    /// SACK blocks both ways, the recovery in progress.
    loss: loss::LossState,

    /// An ACK is owed at once.
    ack_now: bool,
    /// When this connection last sent a challenge ACK (RFC 5961 section 7's
    /// limit per connection).
    last_challenge: Option<Instant>,
    /// In-order segments received since our last ACK.
    unacked_segs: u32,
    /// The ACK for them waits for the end of the batch (`TcpConfig::stretch_acks`).
    ack_at_batch_end: bool,
    last_rcv: Instant,
    last_send: Instant,

    /// SO_ERROR: the error to report on the next call.
    pub error: Option<TcpError>,
    /// The last soft ICMP error (RFC 1122 section 4.2.3.9), reported if the
    /// connection then times out.
    soft_error: Option<TcpError>,
    /// The user closed the socket: nobody will read, the table frees it once CLOSED.
    pub user_closed: bool,
    /// What IP said about the last segment we sent (no route, say).
    pub tx_error: Option<DropReason>,

    /// What `ss -ti` counts (Linux's tcp_info names).
    stats: ConnStats,
    /// Receive-buffer autotuning's measure (`rcvbuf.rs`).
    rcv_space: rcvbuf::RcvSpace,
}

/// A connection's traffic so far, as Linux's tcp_info counts it.
#[derive(Copy, Clone, Debug, Default)]
struct ConnStats {
    bytes_sent: u64,
    bytes_acked: u64,
    bytes_received: u64,
    retransmissions: u64,
    segs_in: u64,
    segs_out: u64,
}

impl Conn {
    #[allow(clippy::too_many_arguments)]
    fn new(
        ctx: &mut Ctx<'_>,
        id: ConnId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: Seq,
        opts: SocketOptions,
        passive: bool,
        state: State,
    ) -> Conn {
        let mss = DEFAULT_MSS as u32;
        Conn {
            id,
            local,
            remote,
            state,
            passive,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            snd_wl1: Seq(0),
            snd_wl2: iss,
            max_snd_wnd: 0,
            snd_wscale: 0,
            rcv_wscale: rcvbuf::rcv_wscale(&opts, ctx.cfg),
            peer_wscale: None,
            snd_mss: mss,
            pmtu_expires: None,
            mss_before_pmtu: mss,
            rcv_mss: our_mss(ctx.net) as u32,
            buf_seq: iss + 1,
            send: SendBuffer::new(opts.send_buffer),
            fin_queued: false,
            irs: Seq(0),
            rcv_nxt: Seq(0),
            rcv_adv: Seq(0),
            syn_wnd: 0,
            recv: RecvBuffer::new(opts.recv_buffer, ctx.cfg.max_ooo_ranges),
            fin_received: false,
            pending_fin: None,
            rd_shut: false,
            rto_at: None,
            persist_at: None,
            delack_at: None,
            keepalive_at: None,
            close_at: None,
            trim_at: None,
            drained_at: ctx.now,
            retries: 0,
            persist_probes: 0,
            persist_backoff: 0,
            ka_probes: 0,
            rtt: RttEstimator::new(ctx.cfg.initial_rto, ctx.cfg.min_rto, ctx.cfg.max_rto),
            rtt_timing: None,
            cc: Congestion::new(mss, iss, ctx.cfg.congestion, ctx.cfg.hystart),
            syn_retransmitted: false,
            offer_sack: ctx.cfg.sack,
            offer_ts: ctx.cfg.timestamps,
            syn_opts: SynOptions::default(),
            ts: Timestamps::for_iss(iss, ctx.now),
            loss: loss::LossState::new(iss),
            ack_now: false,
            last_challenge: None,
            unacked_segs: 0,
            ack_at_batch_end: false,
            last_rcv: ctx.now,
            last_send: ctx.now,
            error: None,
            soft_error: None,
            user_closed: false,
            tx_error: None,
            stats: ConnStats::default(),
            rcv_space: rcvbuf::RcvSpace::NONE,
            opts,
        }
    }

    /// RFC 9293 section 3.10.1, OPEN call in CLOSED state, active: send a SYN and
    /// enter SYN-SENT.
    pub fn connect(
        ctx: &mut Ctx<'_>,
        id: ConnId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: Seq,
        opts: SocketOptions,
    ) -> Conn {
        let mut c = Conn::new(ctx, id, local, remote, iss, opts, false, State::Closed);
        ctx.net.counters().active_opens += 1;
        c.transmit(ctx, Tx::Syn);
        c.set_state(ctx, State::SynSent, Cause::ActiveOpen);
        c
    }

    /// RFC 9293 section 3.10.7.2, LISTEN state, third check: a SYN. The listener
    /// stays in LISTEN (sockets fork a new connection); the new connection goes
    /// from LISTEN to SYN-RECEIVED. Text on the SYN is not kept (it is not
    /// acknowledged, so the peer sends it again), nor is a FIN on it.
    pub fn accept_syn(
        ctx: &mut Ctx<'_>,
        id: ConnId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: Seq,
        opts: SocketOptions,
        seg: &Segment<'_>,
    ) -> Conn {
        let mut c = Conn::new(ctx, id, local, remote, iss, opts, true, State::Listen);
        ctx.net.counters().passive_opens += 1;
        c.irs = seg.seq;
        c.rcv_nxt = seg.seq + 1;
        c.take_syn_options(ctx, seg);
        c.snd_wnd = seg.wnd as u32;
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = seg.seq;
        c.transmit(ctx, Tx::Syn);
        c.set_state(ctx, State::SynReceived, Cause::RcvSynSndSynAck);
        c
    }

    /// RFC 4987 section 3.6: the ACK `seg` returned a SYN cookie (checked by the
    /// table, carrying `syn`, what the handshake agreed, and the ACK's `tsval`
    /// for TS.Recent); the connection is made as if its SYN had been queued:
    /// SYN-RECEIVED with our SYN,ACK (ISS `iss`, window `syn_wnd`) sent, so
    /// that `on_segment(seg)` completes it.
    #[allow(clippy::too_many_arguments)]
    pub fn from_cookie(
        ctx: &mut Ctx<'_>,
        id: ConnId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: Seq,
        opts: SocketOptions,
        seg: &Segment<'_>,
        syn: SynOptions,
        tsval: Option<u32>,
        syn_wnd: u16,
    ) -> Conn {
        let mut c = Conn::new(ctx, id, local, remote, iss, opts, true, State::Listen);
        ctx.net.counters().passive_opens += 1;
        c.irs = seg.seq - 1;
        c.rcv_nxt = seg.seq;
        c.apply_syn_options(ctx, syn, tsval);
        c.snd_wl1 = c.irs;
        c.snd_nxt = iss + 1;
        c.snd_max = iss + 1;
        c.syn_wnd = syn_wnd;
        c.rcv_adv = c.rcv_nxt + syn_wnd as u32;
        c.set_state(ctx, State::SynReceived, Cause::RcvSynSndSynAck);
        c
    }

    fn set_state(&mut self, ctx: &mut Ctx<'_>, to: State, cause: Cause) {
        let from = self.state;
        if from == to {
            return;
        }
        let c = ctx.net.counters();
        if matches!(to, State::Closed | State::Listen) {
            if matches!(from, State::SynSent | State::SynReceived) {
                c.attempt_fails += 1;
            }
            if matches!(from, State::Established | State::CloseWait) {
                c.estab_resets += 1;
            }
        }
        self.state = to;
        ctx.trace.push(Transition { conn: self.id, local: self.local, remote: self.remote, from, to, cause });
        match to {
            State::Established => {
                if self.syn_retransmitted && !self.rtt.has_sample() {
                    self.rtt.set_base(RTO_AFTER_SYN_LOSS);
                }
                self.arm_keepalive(ctx.now);
            }
            State::TimeWait => {
                // RFC 9293 section 3.10.7.4: "start the time-wait timer, turn off the other timers".
                self.stop_timers();
                self.close_at = Some(ctx.now + ctx.cfg.msl * 2);
            }
            State::Closed | State::Listen => {
                self.stop_timers();
                self.close_at = None;
            }
            State::FinWait2 if self.user_closed => {
                self.close_at = Some(ctx.now + ctx.cfg.fin_wait2_timeout);
            }
            _ => {}
        }
    }

    /// Ends the connection with an error for the user (RFC 9293: "signal the user ... delete the TCB").
    pub fn close_with(&mut self, ctx: &mut Ctx<'_>, error: Option<TcpError>, cause: Cause) {
        if error.is_some() {
            self.error = error;
        }
        self.set_state(ctx, State::Closed, cause);
    }

    // ----------------------------------------------------------------------
    // Small accessors of the sequence spaces.

    /// The window currently offered (RCV.WND).
    fn rcv_wnd(&self) -> u32 {
        self.rcv_adv.since(self.rcv_nxt)
    }

    /// The sequence number just past the data in the send buffer (where our FIN goes).
    fn data_end(&self) -> Seq {
        self.buf_seq + self.send.len() as u32
    }

    /// Our SYN has been sent and not acknowledged: SYN-SENT, SYN-RECEIVED, and
    /// FIN-WAIT-1 or CLOSING entered from SYN-RECEIVED (a close after a
    /// simultaneous open). The first unacknowledged octet is then the SYN, not
    /// data: retransmissions send the SYN first and the FIN behind it, as
    /// Linux does. (SND.UNA can come back to ISS only after 2^32 octets of
    /// data, hence the second condition.)
    fn syn_unacked(&self) -> bool {
        self.snd_una == self.iss && self.stats.bytes_acked == 0 && !matches!(self.state, State::Closed | State::Listen)
    }

    /// Our FIN has been sent and acknowledged.
    fn fin_acked(&self) -> bool {
        self.fin_queued && self.snd_una == self.data_end() + 1
    }

    // ----------------------------------------------------------------------
    // Queries.

    pub fn readiness(&self) -> Readiness {
        let readable = self.recv.readable() > 0
            || self.fin_received
            || self.rd_shut
            || self.error.is_some()
            || self.state == State::Closed;
        let writable = (self.state.can_send() && !self.fin_queued && self.send.free() > 0) || self.error.is_some();
        let hangup = self.state == State::Closed || (self.fin_received && self.fin_queued);
        Readiness { readable, writable, hangup, error: self.error }
    }

    /// A snapshot for `TcpInfo`; `r1` is the R1 threshold (RFC 1122 section 4.2.3.5).
    pub fn info(&self, r1: u32) -> TcpInfo {
        TcpInfo {
            state: self.state,
            local: self.local,
            remote: self.remote,
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            srtt: self.rtt.srtt(),
            rttvar: self.rtt.rttvar(),
            rto: self.rtt.rto(),
            snd_mss: self.snd_mss,
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.rcv_wnd(),
            snd_wscale: self.snd_wscale,
            rcv_wscale: self.rcv_wscale,
            unacked: self.snd_max.since(self.snd_una),
            send_queue: self.send.len(),
            recv_queue: self.recv.readable(),
            out_of_order: self.recv.out_of_order_bytes(),
            bytes_sent: self.stats.bytes_sent,
            bytes_acked: self.stats.bytes_acked,
            bytes_received: self.stats.bytes_received,
            retransmissions: self.stats.retransmissions,
            segs_in: self.stats.segs_in,
            segs_out: self.stats.segs_out,
            retries: self.retries,
            path_suspect: self.retries >= r1,
            in_recovery: self.cc.in_recovery(),
            loss: self.loss_info(),
            timers: TimerInfo {
                retransmit: self.rto_at,
                persist: self.persist_at,
                delayed_ack: self.delack_at,
                keepalive: self.keepalive_at,
                close: self.close_at,
            },
        }
    }

    /// Sequence numbers, for tests and `ss`-like views: (ISS, SND.UNA, SND.NXT, IRS, RCV.NXT).
    pub fn seqs(&self) -> (Seq, Seq, Seq, Seq, Seq) {
        (self.iss, self.snd_una, self.snd_max, self.irs, self.rcv_nxt)
    }

    /// For the table: a SYN to this TIME-WAIT connection may reopen it (RFC 9293
    /// section 3.10.7.4 note / RFC 1122 section 4.2.2.13) if its sequence number
    /// lies beyond what this incarnation received.
    pub fn syn_may_reopen(&self, seg: &Segment<'_>) -> bool {
        self.state == State::TimeWait && seg.syn && !seg.ack_flag && !seg.rst && seg.seq > self.rcv_nxt
    }

    /// Ends TIME-WAIT early: a new incarnation takes the 4-tuple.
    pub fn end_time_wait(&mut self, ctx: &mut Ctx<'_>, cause: Cause) {
        if self.state == State::TimeWait {
            self.close_with(ctx, None, cause);
        }
    }

    /// Entering TIME-WAIT, the connection needs its sequence numbers only: the
    /// send buffer goes (nothing is left to send), and the receive buffer too
    /// unless the user has data in it still (issue 13, item 3).
    pub fn release_buffers(&mut self) {
        self.send = SendBuffer::new(self.send.capacity());
        self.recv.release();
    }

    /// Ends TIME-WAIT at the next timer run, as Linux closes a connection at
    /// once when its time-wait table (`max_tw_buckets`) is full.
    pub fn expire_time_wait(&mut self) {
        if self.state == State::TimeWait {
            // The last segment received is what moved it to TIME-WAIT: now.
            self.close_at = Some(self.last_rcv);
        }
    }

    /// What the SYNs negotiated (for a SYN cookie to keep, say).
    pub fn syn_options(&self) -> SynOptions {
        self.syn_opts
    }

    pub fn has_unread(&self) -> bool {
        self.recv.readable() > 0
    }

    /// Heap bytes this connection holds: its TCB and its buffers' storage
    /// (what [`crate::tcp::Tcp::heap_bytes`] adds up).
    pub fn heap_bytes(&self) -> usize {
        core::mem::size_of::<Conn>() + self.buffer_bytes()
    }

    /// Heap bytes of its receive and send buffers' storage alone.
    pub fn buffer_bytes(&self) -> usize {
        self.recv.heap_bytes() + self.send.heap_bytes()
    }
}
