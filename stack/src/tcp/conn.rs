//! One connection's transmission control block and its state machine: the event
//! processing of RFC 9293 section 3.10 (user calls in 3.10.1-3.10.6, SEGMENT
//! ARRIVES in the order of 3.10.7.3 and 3.10.7.4, timeouts in 3.10.8), with the
//! RFC 5961 defences, RFC 6298 retransmission, RFC 5681/6582 congestion control,
//! keep-alives (RFC 9293 section 3.8.4) and zero-window probing (section 3.8.6.1).
//!
//! The table in `mod.rs` owns the connections and demultiplexes segments to
//! them; LISTEN (3.10.7.2) and CLOSED (3.10.7.1) are handled there, since
//! neither has a connection of its own.

use super::cause::Cause;
use super::config::{SocketOptions, TcpConfig};
use super::congestion::Congestion;
use super::error::TcpError;
use super::lower::TcpNet;
use super::recv::{window_edge, RecvBuffer};
use super::rtt::RttEstimator;
use super::segment::{Segment, SegmentOut};
use super::send::{segment_len, SendBuffer, SendCheck};
use super::seq::Seq;
use super::state::State;
use super::trace::{TraceLog, Transition};
use super::{ConnId, Readiness, Shutdown, TcpInfo, TimerInfo};
use crate::counters::DropReason;
use crate::icmp::IcmpErrorKind;
use crate::ratelimit::TokenBucket;
use crate::time::{earliest, Duration, Instant};
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
    pub challenge: &'a mut TokenBucket,
    pub trace: &'a mut TraceLog,
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
fn wscale_for(buffer: usize) -> u8 {
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

    /// An ACK is owed at once.
    ack_now: bool,
    /// In-order segments received since our last ACK.
    unacked_segs: u32,
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

    // Statistics.
    bytes_sent: u64,
    bytes_acked: u64,
    bytes_received: u64,
    retransmissions: u64,
    segs_in: u64,
    segs_out: u64,

    // Bookkeeping of the table.
    /// The deadline under which the table's timer set holds this connection.
    pub sched: Option<Instant>,
    /// The listener this passive connection waits on until accepted.
    pub parent: Option<ConnId>,
    pub in_accept_queue: bool,
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
            rcv_wscale: wscale_for(opts.recv_buffer),
            peer_wscale: None,
            snd_mss: mss,
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
            retries: 0,
            persist_probes: 0,
            persist_backoff: 0,
            ka_probes: 0,
            rtt: RttEstimator::new(ctx.cfg.initial_rto, ctx.cfg.min_rto, ctx.cfg.max_rto),
            rtt_timing: None,
            cc: Congestion::new(mss, iss),
            syn_retransmitted: false,
            ack_now: false,
            unacked_segs: 0,
            last_rcv: ctx.now,
            last_send: ctx.now,
            error: None,
            soft_error: None,
            user_closed: false,
            tx_error: None,
            bytes_sent: 0,
            bytes_acked: 0,
            bytes_received: 0,
            retransmissions: 0,
            segs_in: 0,
            segs_out: 0,
            sched: None,
            parent: None,
            in_accept_queue: false,
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
        c.send_syn(ctx);
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
        c.send_syn(ctx);
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

    fn stop_timers(&mut self) {
        self.rto_at = None;
        self.persist_at = None;
        self.delack_at = None;
        self.keepalive_at = None;
    }

    /// Ends the connection with an error for the user (RFC 9293: "signal the user ... delete the TCB").
    pub fn close_with(&mut self, ctx: &mut Ctx<'_>, error: Option<TcpError>, cause: Cause) {
        if error.is_some() {
            self.error = error;
        }
        self.set_state(ctx, State::Closed, cause);
    }

    /// The next instant a timer of this connection is due.
    pub fn deadline(&self) -> Option<Instant> {
        let t = earliest(self.rto_at, self.persist_at);
        let t = earliest(t, self.delack_at);
        let t = earliest(t, self.keepalive_at);
        earliest(t, self.close_at)
    }

    // ----------------------------------------------------------------------
    // Segments out.

    fn seg(&self) -> SegmentOut {
        SegmentOut { src_port: self.local.port(), dst_port: self.remote.port(), ..Default::default() }
    }

    fn emit(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentOut, payload: [&[u8]; 2]) {
        self.segs_out += 1;
        if seg.ack.is_some() {
            // Every segment with ACK acknowledges all we have: nothing more is owed.
            self.ack_now = false;
            self.delack_at = None;
            self.unacked_segs = 0;
        }
        self.tx_error = emit(ctx, self.local, self.remote, seg, payload).err();
    }

    /// The window field for a non-SYN segment, moving the advertised right edge
    /// by the receiver SWS rule (RFC 9293 section 3.8.6.2.2).
    fn window_to_advertise(&mut self) -> u16 {
        let edge = window_edge(self.rcv_nxt, self.rcv_adv, self.recv.free(), self.recv.capacity(), self.rcv_mss);
        let wnd = (edge.since(self.rcv_nxt) >> self.rcv_wscale).min(u16::MAX as u32);
        self.rcv_adv = self.rcv_adv.max(self.rcv_nxt + (wnd << self.rcv_wscale));
        debug_assert!(self.rcv_wnd() as usize <= self.recv.free(), "offered more than the buffer holds");
        wnd as u16
    }

    /// The window currently offered (RCV.WND).
    fn rcv_wnd(&self) -> u32 {
        self.rcv_adv.since(self.rcv_nxt)
    }

    /// SYN (active open) or SYN,ACK (passive or simultaneous open), with our
    /// options: MSS always (RFC 9293 section 3.7.1, SHLD-5), window scale on an
    /// active SYN and on a SYN,ACK only if the peer's SYN carried it (RFC 7323 section 2.2).
    fn send_syn(&mut self, ctx: &mut Ctx<'_>) {
        let synack = matches!(self.state, State::Listen | State::SynReceived);
        let mut s = self.seg();
        s.seq = self.iss;
        s.syn = true;
        s.mss = Some(self.rcv_mss as u16);
        self.syn_wnd = self.recv.free().min(u16::MAX as usize) as u16;
        s.wnd = self.syn_wnd;
        if !synack || self.peer_wscale.is_some() {
            s.wscale = Some(self.rcv_wscale);
        }
        if synack {
            s.ack = Some(self.rcv_nxt);
            self.rcv_adv = self.rcv_nxt + self.syn_wnd as u32;
        }
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if self.rto_at.is_none() {
            self.rto_at = Some(ctx.now + self.rtt.rto());
        }
        if self.rtt_timing.is_none() && !self.syn_retransmitted {
            self.rtt_timing = Some((self.iss, ctx.now));
        }
        self.last_send = ctx.now;
        self.emit(ctx, &s, [&[], &[]]);
    }

    /// A pure ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>; SND.NXT is the highest sent
    /// (after a timeout SND.NXT was set back to retransmit, but an ACK must carry
    /// a sequence number the peer finds acceptable).
    fn send_ack(&mut self, ctx: &mut Ctx<'_>) {
        let mut s = self.seg();
        s.seq = self.snd_max;
        s.ack = Some(self.rcv_nxt);
        s.wnd = self.window_to_advertise();
        self.emit(ctx, &s, [&[], &[]]);
    }

    /// RFC 5961 section 7: challenge ACKs share a stack-wide rate limit.
    fn challenge_ack(&mut self, ctx: &mut Ctx<'_>) {
        if ctx.challenge.try_take(ctx.now) {
            ctx.net.counters().challenge_acks += 1;
            self.send_ack(ctx);
        } else {
            ctx.net.counters().challenge_acks_limited += 1;
        }
    }

    /// RFC 9293 section 3.10.5 (ABORT) and friends: <SEQ=SND.NXT><CTL=RST>, with an
    /// ACK as Linux sends it once the peer's sequence space is known.
    fn send_rst(&mut self, ctx: &mut Ctx<'_>) {
        let mut s = self.seg();
        s.seq = self.snd_max;
        s.rst = true;
        if self.state != State::SynSent {
            s.ack = Some(self.rcv_nxt);
        }
        self.emit(ctx, &s, [&[], &[]]);
    }

    /// <SEQ=SEG.ACK><CTL=RST>: the answer to an unacceptable ACK while
    /// unsynchronized (RFC 9293 sections 3.10.7.3 and 3.10.7.4).
    fn send_rst_at(&mut self, ctx: &mut Ctx<'_>, seq: Seq) {
        let mut s = self.seg();
        s.seq = seq;
        s.rst = true;
        self.emit(ctx, &s, [&[], &[]]);
    }

    fn data_end(&self) -> Seq {
        self.buf_seq + self.send.len() as u32
    }

    /// Our FIN has been sent and acknowledged.
    fn fin_acked(&self) -> bool {
        self.fin_queued && self.snd_una == self.data_end() + 1
    }

    /// Sends `len` bytes from `seq` (and the FIN after them if `fin`).
    fn send_data(&mut self, ctx: &mut Ctx<'_>, seq: Seq, len: u32, fin: bool) {
        let off = seq.since(self.buf_seq) as usize;
        let mut s = self.seg();
        s.seq = seq;
        s.ack = Some(self.rcv_nxt);
        s.fin = fin;
        // RFC 9293 section 3.9.1.2: PSH on the last segment of what is queued.
        s.psh = len > 0 && seq + len == self.data_end();
        s.wnd = self.window_to_advertise();
        let end = seq + len + fin as u32;
        if seq < self.snd_max {
            ctx.net.counters().retransmitted += 1;
            self.retransmissions += 1;
            // Karn (MUST-18): no sample from a retransmitted segment.
            self.rtt_timing = None;
        } else if self.rtt_timing.is_none() {
            self.rtt_timing = Some((seq, ctx.now));
        }
        self.snd_max = self.snd_max.max(end);
        self.bytes_sent += len as u64;
        self.last_send = ctx.now;
        // RFC 6298 section 5.1: start the timer when sending, if it is not running.
        if self.rto_at.is_none() {
            self.rto_at = Some(ctx.now + self.rtt.rto());
        }
        self.persist_at = None;
        let off_end = off + len as usize;
        debug_assert!(off_end <= self.send.len());
        self.segs_out += 1;
        if s.ack.is_some() {
            self.ack_now = false;
            self.delack_at = None;
            self.unacked_segs = 0;
        }
        let payload = self.send.slices(off, len as usize);
        self.tx_error = emit(ctx, self.local, self.remote, &s, payload).err();
    }

    /// Retransmits the first unacknowledged segment (fast retransmit, partial ACK).
    fn retransmit_first(&mut self, ctx: &mut Ctx<'_>) {
        let end = self.data_end();
        let len = end.since(self.snd_una).min(self.snd_mss);
        let fin = self.fin_queued && self.snd_una + len == end && self.snd_max > end;
        if len > 0 || fin {
            self.send_data(ctx, self.snd_una, len, fin);
        }
    }

    /// Sends what the window, congestion window, Nagle and SWS avoidance allow,
    /// then any ACK still owed. Called after every event.
    pub fn output(&mut self, ctx: &mut Ctx<'_>) {
        match self.state {
            State::Closed | State::Listen | State::SynSent => return,
            State::SynReceived | State::TimeWait => {
                if self.ack_now {
                    self.send_ack(ctx);
                }
                return;
            }
            _ => {}
        }
        // RFC 5681 section 4.1: restart from IW after sending nothing for an RTO.
        if self.snd_una == self.snd_max && self.data_end() > self.snd_nxt && ctx.now - self.last_send > self.rtt.rto() {
            self.cc.on_idle_restart();
        }
        let mut sent = false;
        loop {
            let end = self.data_end();
            let unsent = end.since(self.snd_nxt);
            let fin_unsent = self.fin_queued && self.snd_nxt <= end;
            let limit = self.snd_wnd.min(self.cc.cwnd);
            let usable = (self.snd_una + limit).since(self.snd_nxt);
            let len = if self.snd_nxt < self.snd_max {
                // Retransmitting after a timeout: no Nagle, window and cwnd only.
                unsent.min(usable).min(self.snd_mss)
            } else {
                segment_len(SendCheck {
                    unsent,
                    usable,
                    mss: self.snd_mss,
                    max_snd_wnd: self.max_snd_wnd,
                    outstanding: self.snd_max > self.snd_una,
                    nodelay: self.opts.nodelay,
                    closing: self.fin_queued,
                })
            };
            let fin = fin_unsent && self.snd_nxt + len == end;
            if len == 0 && !fin {
                break;
            }
            let seq = self.snd_nxt;
            self.send_data(ctx, seq, len, fin);
            self.snd_nxt = seq + len + fin as u32;
            sent = true;
            if len == 0 {
                break;
            }
        }
        // Data waits but nothing is in flight to bring an ACK: the persist timer
        // probes the window (MUST-35) and overrides SWS avoidance (3.8.6.2.1).
        let waiting = self.data_end() > self.snd_nxt;
        if waiting && self.rto_at.is_none() && self.persist_at.is_none() {
            self.persist_at = Some(ctx.now + self.persist_interval(ctx));
        }
        if !sent && self.ack_now {
            self.send_ack(ctx);
        }
    }

    fn persist_interval(&self, ctx: &Ctx<'_>) -> Duration {
        let mut d = self.rtt.rto();
        for _ in 0..self.persist_backoff {
            d = (d * 2).min(ctx.cfg.max_rto);
        }
        d.max(ctx.cfg.min_rto)
    }

    // ----------------------------------------------------------------------
    // SEGMENT ARRIVES (RFC 9293 section 3.10.7).

    pub fn on_segment(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Result<(), DropReason> {
        self.segs_in += 1;
        let r = match self.state {
            State::SynSent => self.on_segment_syn_sent(ctx, seg),
            State::Closed | State::Listen => Err(DropReason::TcpNoSocket),
            _ => self.on_segment_synchronized(ctx, seg),
        };
        self.output(ctx);
        r
    }

    /// The options of a SYN: MSS (RFC 9293 section 3.7.1) and window scale (RFC 7323 section 2).
    fn take_syn_options(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) {
        let peer_mss = seg.options.mss.unwrap_or(DEFAULT_MSS).max(64);
        // Eff.snd.MSS = min(SendMSS + 20, MMS_S) - TCP header - IP options (RFC 9293 section 3.7.1).
        self.snd_mss = (peer_mss as u32).min(our_mss(ctx.net) as u32);
        self.cc.set_smss(self.snd_mss);
        self.peer_wscale = seg.options.wscale;
        match seg.options.wscale {
            // RFC 7323 section 2.3: a shift above 14 is used as 14.
            Some(s) => self.snd_wscale = s.min(MAX_WSCALE),
            None => {
                // Scaling only applies when both sides sent the option.
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
    }

    /// RFC 9293 section 3.10.7.3.
    fn on_segment_syn_sent(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Result<(), DropReason> {
        // First, check the ACK bit.
        if seg.ack_flag && (seg.ack <= self.iss || seg.ack > self.snd_max) {
            if !seg.rst {
                self.send_rst_at(ctx, seg.ack);
            }
            return Err(DropReason::TcpNotAcceptable);
        }
        // Second, the RST bit: only with an acceptable ACK (RFC 5961 section 3 keeps this rule for SYN-SENT).
        if seg.rst {
            if seg.ack_flag {
                ctx.net.counters().rx_resets += 1;
                self.close_with(ctx, Some(TcpError::ConnectionRefused), Cause::RcvRst);
                return Ok(());
            }
            return Err(DropReason::TcpNotAcceptable);
        }
        // Fourth, the SYN bit.
        if !seg.syn {
            return Err(DropReason::TcpNotAcceptable);
        }
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1;
        self.take_syn_options(ctx, seg);
        self.rcv_adv = self.rcv_nxt + self.syn_wnd as u32;
        self.last_rcv = ctx.now;
        if seg.ack_flag {
            self.ack_advances(ctx, seg.ack);
        }
        // The window of a SYN is never scaled (RFC 7323 section 2.2).
        self.snd_wnd = seg.wnd as u32;
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        if self.snd_una > self.iss {
            self.ack_now = true;
            self.set_state(ctx, State::Established, Cause::RcvSynAckSndAck);
            // "If there are other controls or text in the segment, then continue
            // processing at the sixth step" (text and FIN).
            if !seg.payload.is_empty() || seg.fin {
                self.text_and_fin(ctx, seg.seq + 1, seg.payload, seg.fin);
            }
        } else {
            // Simultaneous open (RFC 9293 MUST-10, Figure 7).
            self.set_state(ctx, State::SynReceived, Cause::RcvSynSndSynAck);
            self.send_syn(ctx);
        }
        Ok(())
    }

    /// RFC 9293 section 3.10.7.4: SYN-RECEIVED and the synchronized states.
    fn on_segment_synchronized(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) -> Result<(), DropReason> {
        // A retransmission of the peer's SYN while we are in SYN-RECEIVED: our
        // SYN,ACK was lost; send it again (as Linux does) rather than wait for our timer.
        if self.state == State::SynReceived && seg.syn && !seg.ack_flag && !seg.rst && seg.seq == self.irs {
            self.send_syn(ctx);
            return Ok(());
        }
        // The peer's SYN,ACK in SYN-RECEIVED after a simultaneous open (Figure 7,
        // line 6): the SYN is the one already received; trimmed off (as section
        // 3.10.7.4 trims old octets), the ACK completes the handshake.
        let trimmed;
        let seg = if self.state == State::SynReceived && seg.syn && seg.ack_flag && !seg.rst && seg.seq == self.irs {
            trimmed = Segment { syn: false, seq: seg.seq + 1, ..*seg };
            &trimmed
        } else {
            seg
        };
        let rcv_wnd = self.rcv_wnd();
        let seg_len = seg.len();
        // First, check the sequence number (the four cases of section 3.10.7.4).
        let wnd_end = self.rcv_nxt + rcv_wnd;
        let mut acceptable = match (seg_len, rcv_wnd) {
            (0, 0) => seg.seq == self.rcv_nxt,
            (0, _) => seg.seq.in_range(self.rcv_nxt, wnd_end),
            (_, 0) => false,
            (_, _) => {
                seg.seq.in_range(self.rcv_nxt, wnd_end) || (seg.seq + seg_len - 1).in_range(self.rcv_nxt, wnd_end)
            }
        };
        // "If the RCV.WND is zero, no segments will be acceptable, but special
        // allowance should be made to accept valid ACKs, URGs, and RSTs": a segment
        // at RCV.NXT is processed with its text trimmed off. A lone FIN needs no
        // buffer space and is kept.
        let mut payload = seg.payload;
        let mut fin = seg.fin;
        let mut seq = seg.seq;
        let mut refused_text = false;
        if !acceptable && rcv_wnd == 0 && seg.seq == self.rcv_nxt && !seg.syn {
            acceptable = true;
            if !payload.is_empty() {
                // A zero-window probe: answered with an ACK showing the window.
                payload = &[];
                fin = false;
                refused_text = true;
                self.ack_now = true;
            }
        }
        if !acceptable && !seg.syn {
            if seg.rst {
                // RFC 5961 section 3.2: an RST outside the window is dropped silently.
                return Err(DropReason::TcpNotAcceptable);
            }
            // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>. In TIME-WAIT this is the
            // retransmitted FIN: acknowledge it and restart the 2 MSL timeout.
            if self.state == State::TimeWait && seg.fin {
                self.close_at = Some(ctx.now + ctx.cfg.msl * 2);
            }
            self.ack_now = true;
            return Err(DropReason::TcpNotAcceptable);
        }
        if acceptable && !seg.syn {
            // Trim what precedes RCV.NXT and what exceeds the window.
            let before = self.rcv_nxt.since(seq) as usize;
            if before > 0 {
                if before > payload.len() {
                    fin = false; // the FIN too was already received
                }
                payload = &payload[before.min(payload.len())..];
                seq = self.rcv_nxt;
            }
            let room = wnd_end.since(seq) as usize;
            if payload.len() > room {
                payload = &payload[..room];
                fin = false;
            }
        }

        // Second, the RST bit (RFC 5961 section 3.2 as adopted by RFC 9293).
        if seg.rst {
            if seg.seq != self.rcv_nxt {
                // In the window but not exact: challenge ACK.
                self.challenge_ack(ctx);
                return Err(DropReason::TcpNotAcceptable);
            }
            ctx.net.counters().rx_resets += 1;
            match self.state {
                State::SynReceived if self.passive => {
                    // MUST-11: back to LISTEN (the table drops this fork).
                    self.set_state(ctx, State::Listen, Cause::RcvRst);
                }
                State::SynReceived => self.close_with(ctx, Some(TcpError::ConnectionRefused), Cause::RcvRst),
                State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                    self.close_with(ctx, Some(TcpError::ConnectionReset), Cause::RcvRst)
                }
                _ => self.close_with(ctx, None, Cause::RcvRst),
            }
            return Ok(());
        }

        // Fourth, the SYN bit.
        if seg.syn {
            if self.state == State::SynReceived && self.passive {
                // "If the connection was initiated with a passive OPEN, then return
                // this connection to the LISTEN state and return."
                self.set_state(ctx, State::Listen, Cause::RcvSyn);
                return Ok(());
            }
            // RFC 5961 section 4.2: whatever the sequence number, a challenge ACK.
            self.challenge_ack(ctx);
            return Err(DropReason::TcpNotAcceptable);
        }

        // Fifth, the ACK field.
        if !seg.ack_flag {
            return Err(DropReason::TcpNotAcceptable);
        }
        self.last_rcv = ctx.now;
        self.ka_probes = 0;
        self.arm_keepalive(ctx.now);
        if self.state == State::SynReceived {
            if seg.ack > self.snd_una && seg.ack <= self.snd_max {
                self.snd_wnd = (seg.wnd as u32) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = seg.ack;
                self.set_state(ctx, State::Established, Cause::RcvAckOfSyn);
            } else {
                self.send_rst_at(ctx, seg.ack);
                return Err(DropReason::TcpNotAcceptable);
            }
        }
        // RFC 5961 section 5.2: (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT.
        if !seg.ack.in_range_inclusive(self.snd_una - self.max_snd_wnd, self.snd_max) {
            self.challenge_ack(ctx);
            return Err(DropReason::TcpNotAcceptable);
        }
        self.process_ack(ctx, seg);
        match self.state {
            State::FinWait1 if self.fin_acked() => self.set_state(ctx, State::FinWait2, Cause::RcvAckOfFin),
            State::Closing if self.fin_acked() => self.set_state(ctx, State::TimeWait, Cause::RcvAckOfFin),
            State::LastAck if self.fin_acked() => {
                self.close_with(ctx, None, Cause::RcvAckOfFin);
                return Ok(());
            }
            _ => {}
        }

        // Sixth, the URG bit: urgent data is delivered inline (as with
        // SO_OOBINLINE); the pointer is not tracked.
        // Seventh and eighth: the text and the FIN.
        self.text_and_fin(ctx, seq, payload, fin);
        if refused_text {
            return Err(DropReason::TcpNotAcceptable);
        }
        Ok(())
    }

    /// SND.UNA advances to `ack` (already checked to be acceptable): acknowledged
    /// data leaves the send buffer, the round trip is sampled, the timer restarts.
    fn ack_advances(&mut self, ctx: &mut Ctx<'_>, ack: Seq) -> u32 {
        if ack <= self.snd_una {
            return 0;
        }
        let acked = ack.since(self.snd_una);
        let data = ack.since(self.buf_seq).min(self.send.len() as u32);
        self.send.consume(data as usize);
        self.buf_seq += data;
        self.bytes_acked += data as u64;
        self.snd_una = ack;
        if self.snd_nxt < ack {
            self.snd_nxt = ack;
        }
        if let Some((timed, sent_at)) = self.rtt_timing {
            if ack > timed {
                self.rtt.sample(ctx.now - sent_at);
                self.rtt_timing = None;
            }
        }
        // Forward progress: the retry count and backoff start over.
        self.retries = 0;
        self.rtt.reset_backoff();
        // RFC 6298 sections 5.2 and 5.3.
        self.rto_at = if self.snd_una == self.snd_max { None } else { Some(ctx.now + self.rtt.rto()) };
        acked
    }

    /// The ACK processing of RFC 9293 section 3.10.7.4, fifth step, for
    /// ESTABLISHED and the states that share it; congestion control on top.
    fn process_ack(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) {
        let wnd = (seg.wnd as u32) << self.snd_wscale;
        // Any acceptable ACK shows the peer alive: zero-window probing may go on (MUST-36).
        self.persist_probes = 0;
        if seg.ack > self.snd_una {
            let flight_before = self.snd_max.since(self.snd_una);
            // The SYN's sequence number is not data: it does not grow cwnd.
            let syn = (self.snd_una == self.iss) as u32;
            let acked = self.ack_advances(ctx, seg.ack) - syn;
            if self.cc.in_recovery {
                let flight_after = self.snd_max.since(self.snd_una);
                if self.cc.on_recovery_ack(seg.ack, acked, flight_after) {
                    // RFC 6582 section 3.2 step 5: retransmit the first unacknowledged segment.
                    self.retransmit_first(ctx);
                }
            } else if flight_before > syn && acked > 0 {
                self.cc.on_new_ack(acked);
            }
        } else if seg.ack == self.snd_una
            && self.snd_wnd > 0
            && seg.payload.is_empty()
            && !seg.fin
            && wnd == self.snd_wnd
            && self.snd_max > self.snd_una
        {
            // A duplicate ACK (RFC 5681 section 2); not while probing a zero
            // window, where every probe is answered by one.
            self.cc.dupacks += 1;
            if self.cc.dupacks == 3 {
                let flight = self.snd_max.since(self.snd_una);
                if self.cc.on_third_dupack(self.snd_una, flight, self.snd_max) {
                    ctx.net.counters().fast_retransmits += 1;
                    self.retransmit_first(ctx);
                }
            } else if self.cc.dupacks > 3 {
                self.cc.on_extra_dupack();
            }
        }
        // Window update: if SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK).
        if seg.ack >= self.snd_una && (self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= seg.ack)) {
            self.snd_wnd = wnd;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            if wnd > 0 {
                self.persist_at = None;
                self.persist_backoff = 0;
            }
        }
    }

    /// RFC 9293 section 3.10.7.4, seventh (segment text) and eighth (FIN).
    fn text_and_fin(&mut self, ctx: &mut Ctx<'_>, seq: Seq, payload: &[u8], fin: bool) {
        if !payload.is_empty() {
            if !self.state.can_receive() {
                // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: a FIN has been received; ignore.
                return;
            }
            if self.user_closed {
                // Nobody will read this (RFC 9293 SHLD-3, Linux's behaviour for
                // data arriving after close): reset.
                self.send_rst(ctx);
                self.close_with(ctx, Some(TcpError::ConnectionAborted), Cause::RcvDataAfterClose);
                return;
            }
            let off = seq.since(self.rcv_nxt);
            let had_gap = self.recv.has_out_of_order();
            match self.recv.write(off, payload) {
                Some(advanced) => {
                    self.rcv_nxt += advanced as u32;
                    self.bytes_received += advanced as u64;
                    if off > 0 || had_gap {
                        // RFC 5681 section 4.2: ACK out-of-order data, and data
                        // filling a gap, at once.
                        self.ack_now = true;
                    } else {
                        self.unacked_segs += 1;
                        // MUST-40 / SHLD-19: an ACK for at least every second segment.
                        if self.unacked_segs >= 2 {
                            self.ack_now = true;
                        } else if self.delack_at.is_none() {
                            self.delack_at = Some(ctx.now + ctx.cfg.delayed_ack);
                        }
                    }
                }
                None => {
                    // Could not hold it (out-of-order range limit): say where we are.
                    self.ack_now = true;
                }
            }
        }
        if fin {
            let fin_seq = seq + payload.len() as u32;
            if fin_seq == self.rcv_nxt {
                self.process_fin(ctx);
            } else if fin_seq > self.rcv_nxt && self.state.can_receive() {
                self.pending_fin = Some(fin_seq);
                self.ack_now = true;
            }
        } else if self.pending_fin == Some(self.rcv_nxt) && self.state.can_receive() {
            self.process_fin(ctx);
        }
    }

    /// Eighth, the FIN bit.
    fn process_fin(&mut self, ctx: &mut Ctx<'_>) {
        self.pending_fin = None;
        self.rcv_nxt += 1;
        self.fin_received = true;
        self.ack_now = true;
        match self.state {
            State::SynReceived | State::Established => self.set_state(ctx, State::CloseWait, Cause::RcvFinSndAck),
            State::FinWait1 => {
                if self.fin_acked() {
                    self.set_state(ctx, State::TimeWait, Cause::RcvFinAckSndAck);
                } else {
                    self.set_state(ctx, State::Closing, Cause::RcvFinSndAck);
                }
            }
            State::FinWait2 => self.set_state(ctx, State::TimeWait, Cause::RcvFinSndAck),
            State::TimeWait => self.close_at = Some(ctx.now + ctx.cfg.msl * 2),
            _ => {}
        }
    }

    // ----------------------------------------------------------------------
    // Timeouts (RFC 9293 section 3.10.8).

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        if self.close_at.is_some_and(|t| t <= now) {
            self.close_at = None;
            match self.state {
                State::TimeWait => self.close_with(ctx, None, Cause::Timeout2Msl),
                State::FinWait2 => self.close_with(ctx, None, Cause::TimeoutFinWait2),
                _ => {}
            }
            return;
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.rto_at = None;
            self.on_retransmission_timeout(ctx);
            if self.state == State::Closed {
                return;
            }
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist_at = None;
            self.on_persist_timeout(ctx);
            if self.state == State::Closed {
                return;
            }
        }
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at = None;
            self.ack_now = true;
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.keepalive_at = None;
            self.on_keepalive_timeout(ctx);
            if self.state == State::Closed {
                return;
            }
        }
        self.output(ctx);
    }

    /// RFC 6298 section 5.4-5.6, with the R2 limit (RFC 9293 MUST-20..23).
    fn on_retransmission_timeout(&mut self, ctx: &mut Ctx<'_>) {
        if self.snd_una == self.snd_max {
            return;
        }
        self.retries += 1;
        let syn = matches!(self.state, State::SynSent | State::SynReceived);
        let limit = self.opts.retries.unwrap_or(if syn { ctx.cfg.syn_retries } else { ctx.cfg.data_retries });
        if self.retries == ctx.cfg.r1_retries {
            // RFC 9293 MUST-20 / RFC 1122 section 4.2.3.5: at R1, pass negative
            // advice to IP (section 3.3.1.4: the next hop may be dead, so its
            // link-layer address is checked afresh).
            ctx.net.negative_advice(ctx.now, *self.remote.ip());
        }
        if self.retries > limit {
            let err = self.soft_error.unwrap_or(TcpError::TimedOut);
            self.close_with(ctx, Some(err), Cause::TimeoutR2);
            return;
        }
        ctx.net.counters().timeouts += 1;
        self.rtt.back_off();
        self.rtt_timing = None;
        let flight = self.snd_max.since(self.snd_una);
        self.cc.on_timeout(flight, self.snd_max, self.retries == 1);
        if syn {
            self.syn_retransmitted = true;
            ctx.net.counters().retransmitted += 1;
            self.retransmissions += 1;
            self.send_syn(ctx);
            return;
        }
        if self.snd_wnd == 0 && self.data_end() > self.snd_una {
            // The peer closed its window under data in flight: probe it rather
            // than count retransmissions it cannot accept (MUST-35..37).
            self.snd_nxt = self.snd_una;
            self.persist_at = Some(ctx.now + self.persist_interval(ctx));
            return;
        }
        // Go back to SND.UNA; `output` resends from there at one SMSS of cwnd.
        self.snd_nxt = self.snd_una;
        self.rto_at = Some(ctx.now + self.rtt.rto());
    }

    /// The persist timer: a zero-window probe, or the SWS override (RFC 9293
    /// section 3.8.6.2.1, fourth case) when some window is open.
    fn on_persist_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let end = self.data_end();
        let unsent = end.since(self.snd_nxt);
        if unsent == 0 || self.snd_nxt > self.snd_una {
            return;
        }
        self.persist_probes += 1;
        if self.persist_probes > ctx.cfg.data_retries {
            let err = self.soft_error.unwrap_or(TcpError::TimedOut);
            self.close_with(ctx, Some(err), Cause::TimeoutR2);
            return;
        }
        let usable = (self.snd_una + self.snd_wnd.min(self.cc.cwnd)).since(self.snd_nxt);
        let seq = self.snd_nxt;
        if usable > 0 {
            let len = usable.min(unsent).min(self.snd_mss);
            let fin = self.fin_queued && seq + len == end;
            self.send_data(ctx, seq, len, fin);
            self.snd_nxt = seq + len + fin as u32;
        } else {
            // One octet beyond the window (RFC 9293 section 3.8.6.1). SND.NXT stays:
            // the octet counts as sent only if the peer acknowledges it.
            ctx.net.counters().window_probes += 1;
            self.send_window_probe(ctx);
            self.persist_backoff += 1;
            self.persist_at = Some(ctx.now + self.persist_interval(ctx));
        }
    }

    fn send_window_probe(&mut self, ctx: &mut Ctx<'_>) {
        let seq = self.snd_nxt;
        let off = seq.since(self.buf_seq) as usize;
        let mut s = self.seg();
        s.seq = seq;
        s.ack = Some(self.rcv_nxt);
        s.wnd = self.window_to_advertise();
        self.snd_max = self.snd_max.max(seq + 1);
        self.segs_out += 1;
        self.ack_now = false;
        self.delack_at = None;
        self.unacked_segs = 0;
        let payload = self.send.slices(off, 1);
        self.tx_error = emit(ctx, self.local, self.remote, &s, payload).err();
    }

    fn arm_keepalive(&mut self, now: Instant) {
        self.keepalive_at = if self.opts.keepalive && matches!(self.state, State::Established | State::CloseWait) {
            Some(now + self.opts.keep_idle)
        } else {
            None
        };
    }

    /// RFC 9293 section 3.8.4 (MUST-24..29): a probe <SEQ=SND.UNA-1> with no
    /// data after `keep_idle` of silence, then every `keep_interval`; after
    /// `keep_count` unanswered probes the connection is dead (reset, ETIMEDOUT).
    fn on_keepalive_timeout(&mut self, ctx: &mut Ctx<'_>) {
        if !self.opts.keepalive || !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        if self.snd_max > self.snd_una || self.data_end() > self.snd_nxt {
            // Data in flight or waiting: retransmission and persist timers watch the peer.
            self.keepalive_at = Some(ctx.now + self.opts.keep_idle);
            return;
        }
        if self.ka_probes >= self.opts.keep_count {
            self.send_rst(ctx);
            let err = self.soft_error.unwrap_or(TcpError::TimedOut);
            self.close_with(ctx, Some(err), Cause::KeepaliveTimeout);
            return;
        }
        self.ka_probes += 1;
        ctx.net.counters().keepalive_probes += 1;
        let mut s = self.seg();
        s.seq = self.snd_una - 1;
        s.ack = Some(self.rcv_nxt);
        s.wnd = self.window_to_advertise();
        self.emit(ctx, &s, [&[], &[]]);
        self.keepalive_at = Some(ctx.now + self.opts.keep_interval);
    }

    // ----------------------------------------------------------------------
    // ICMP (RFC 9293 section 3.9.2.2, RFC 1122 section 4.2.3.9, RFC 5461, RFC 5927).

    pub fn on_icmp(&mut self, ctx: &mut Ctx<'_>, kind: IcmpErrorKind, quoted_seq: Option<Seq>) {
        // RFC 5927 section 4.1: only for data we have in flight.
        if let Some(seq) = quoted_seq {
            if !seq.in_range(self.snd_una, self.snd_max.max(self.snd_una + 1)) {
                return;
            }
        }
        match kind {
            IcmpErrorKind::DestUnreachable { code: 4, next_hop_mtu } => {
                // Path MTU discovery (RFC 1191): shrink the MSS and resend.
                if next_hop_mtu >= 68 {
                    let mss = (next_hop_mtu.saturating_sub(HEADERS) as u32).max(64);
                    if mss < self.snd_mss {
                        self.snd_mss = mss;
                        self.cc.smss = mss;
                        if self.state.is_synchronized() && self.snd_max > self.snd_una {
                            self.snd_nxt = self.snd_una;
                            self.output(ctx);
                        }
                    }
                }
            }
            IcmpErrorKind::SourceQuench => {} // RFC 6633: ignored.
            IcmpErrorKind::ParameterProblem { .. } => {}
            k if k.is_hard() && matches!(self.state, State::SynSent | State::SynReceived) => {
                // RFC 1122 section 4.2.3.9: hard errors SHOULD abort; RFC 5461
                // section 4 keeps that only for connection establishment.
                self.close_with(ctx, Some(TcpError::ConnectionRefused), Cause::RcvIcmpUnreachable);
            }
            _ => {
                // Soft errors never abort (MUST-56); reported if we time out.
                self.soft_error = Some(TcpError::HostUnreachable);
            }
        }
    }

    // ----------------------------------------------------------------------
    // User calls (RFC 9293 sections 3.10.2-3.10.6).

    /// SEND (RFC 9293 section 3.10.2).
    pub fn send(&mut self, ctx: &mut Ctx<'_>, data: &[u8]) -> Result<usize, TcpError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.fin_queued {
            return Err(TcpError::BrokenPipe);
        }
        match self.state {
            // "Queue the data for transmission after entering ESTABLISHED state."
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => {}
            _ => return Err(TcpError::BrokenPipe),
        }
        if data.is_empty() {
            return Ok(0);
        }
        let n = self.send.write(data);
        if n == 0 {
            return Err(TcpError::WouldBlock);
        }
        self.output(ctx);
        Ok(n)
    }

    /// RECEIVE (RFC 9293 section 3.10.3).
    pub fn recv(&mut self, ctx: &mut Ctx<'_>, buf: &mut [u8], peek: bool) -> Result<usize, TcpError> {
        if self.recv.readable() > 0 {
            if buf.is_empty() {
                return Ok(0);
            }
            let n = self.recv.read(buf, peek);
            if !peek {
                self.maybe_window_update(ctx);
            }
            return Ok(n);
        }
        if self.fin_received || self.rd_shut {
            return Ok(0);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        match self.state {
            State::Closed => Ok(0),
            _ => Err(TcpError::WouldBlock),
        }
    }

    /// After the user reads: tell the peer when the window has opened enough to matter.
    fn maybe_window_update(&mut self, ctx: &mut Ctx<'_>) {
        if !self.state.is_synchronized() || self.fin_received {
            return;
        }
        let mss = self.rcv_mss;
        let old_wnd = self.rcv_wnd();
        let edge = window_edge(self.rcv_nxt, self.rcv_adv, self.recv.free(), self.recv.capacity(), mss);
        let grow = edge.since(self.rcv_adv);
        if grow > 0 && (old_wnd < mss || grow >= (2 * mss).min(self.recv.capacity() as u32 / 2)) {
            self.ack_now = true;
            self.output(ctx);
        }
    }

    /// CLOSE (RFC 9293 section 3.10.4), by the user's close: the handle is gone.
    pub fn close(&mut self, ctx: &mut Ctx<'_>) {
        self.user_closed = true;
        // SO_LINGER with zero timeout, or unread data (RFC 9293 SHLD-3): abort.
        if self.opts.linger == Some(Duration::ZERO) || (self.recv.readable() > 0 && self.state.is_synchronized()) {
            self.abort(ctx);
            return;
        }
        self.shutdown(ctx, Shutdown::Both);
        if self.state == State::FinWait2 && self.close_at.is_none() {
            self.close_at = Some(ctx.now + ctx.cfg.fin_wait2_timeout);
        }
    }

    /// shutdown(2): `Write` is RFC 9293's CLOSE of the sending side (a FIN after
    /// the data); `Read` stops delivery to the user.
    pub fn shutdown(&mut self, ctx: &mut Ctx<'_>, how: Shutdown) {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.rd_shut = true;
        }
        if !matches!(how, Shutdown::Write | Shutdown::Both) || self.fin_queued {
            return;
        }
        match self.state {
            State::SynSent => {
                // "Delete the TCB and return 'error: closing'."
                self.close_with(ctx, None, Cause::Close);
            }
            State::SynReceived | State::Established => {
                self.fin_queued = true;
                self.set_state(ctx, State::FinWait1, Cause::CloseSndFin);
                self.output_or_fin(ctx);
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.set_state(ctx, State::LastAck, Cause::CloseSndFin);
                self.output_or_fin(ctx);
            }
            _ => {}
        }
    }

    /// Sends the FIN (after any queued data). From SYN-RECEIVED with nothing
    /// queued the FIN goes at once (RFC 9293 section 3.10.4).
    fn output_or_fin(&mut self, ctx: &mut Ctx<'_>) {
        if self.snd_una == self.iss {
            // Our SYN is not acknowledged yet: the FIN follows the SYN,ACK.
            let end = self.data_end();
            if self.send.is_empty() && self.snd_nxt == end {
                let mut s = self.seg();
                s.seq = end;
                s.fin = true;
                s.ack = Some(self.rcv_nxt);
                s.wnd = self.window_to_advertise();
                self.snd_nxt = end + 1;
                self.snd_max = self.snd_max.max(self.snd_nxt);
                self.emit(ctx, &s, [&[], &[]]);
            }
            return;
        }
        self.output(ctx);
    }

    /// ABORT (RFC 9293 section 3.10.5).
    pub fn abort(&mut self, ctx: &mut Ctx<'_>) {
        match self.state {
            State::SynReceived | State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                self.send_rst(ctx);
                self.close_with(ctx, None, Cause::AbortSndRst);
            }
            State::Closed => {}
            _ => self.close_with(ctx, None, Cause::Abort),
        }
    }

    /// Applies new options. The send buffer may change at any time (what is
    /// queued stays); the receive buffer only while it is empty, within the window
    /// scale already announced, and never below the window already offered.
    pub fn set_options(&mut self, now: Instant, mut opts: SocketOptions) {
        self.send.set_capacity(opts.send_buffer);
        let max = (u16::MAX as usize) << self.rcv_wscale;
        let wanted = opts.recv_buffer.min(max);
        if wanted == self.recv.capacity() || wanted < self.rcv_wnd() as usize || !self.recv.set_capacity(wanted) {
            opts.recv_buffer = self.recv.capacity();
        } else {
            opts.recv_buffer = wanted;
        }
        let keepalive_changed = opts.keepalive != self.opts.keepalive || opts.keep_idle != self.opts.keep_idle;
        self.opts = opts;
        if keepalive_changed {
            self.arm_keepalive(now);
        }
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
            cwnd: self.cc.cwnd,
            ssthresh: self.cc.ssthresh,
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
            bytes_sent: self.bytes_sent,
            bytes_acked: self.bytes_acked,
            bytes_received: self.bytes_received,
            retransmissions: self.retransmissions,
            segs_in: self.segs_in,
            segs_out: self.segs_out,
            retries: self.retries,
            path_suspect: self.retries >= r1,
            in_recovery: self.cc.in_recovery,
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

    pub fn has_unread(&self) -> bool {
        self.recv.readable() > 0
    }
}
