//! The user calls on a connection (RFC 9293 sections 3.10.2-3.10.5, as the
//! sockets API shapes them; BSD's tcp_usrreq): SEND, RECEIVE, CLOSE (and
//! shutdown(2)), ABORT, and socket options. OPEN is `Conn::connect` (active)
//! and `Conn::accept_syn` (passive); STATUS is `Conn::info`.

use super::output::Tx;
use super::{Conn, Ctx};
use crate::tcp::cause::Cause;
use crate::tcp::config::SocketOptions;
use crate::tcp::error::TcpError;
use crate::tcp::recv::window_edge;
use crate::tcp::state::State;
use crate::time::{Duration, Instant};

/// Which directions `shutdown` closes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Shutdown {
    Read,
    Write,
    Both,
}

impl Conn {
    /// SEND (RFC 9293 section 3.10.2).
    pub fn send(&mut self, ctx: &mut Ctx<'_>, data: &[u8]) -> Result<usize, TcpError> {
        self.may_send()?;
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

    /// SEND without a copy: `f` writes into the send buffer's free space in
    /// place ([`crate::tcp::send::SendBuffer::write_with`]) and says how much
    /// it wrote. The same errors as [`Conn::send`]; WouldBlock when the
    /// buffer is full (`f` is then not called).
    pub fn send_with(&mut self, ctx: &mut Ctx<'_>, f: impl FnOnce(&mut [u8]) -> usize) -> Result<usize, TcpError> {
        self.may_send()?;
        let n = self.send.write_with(f);
        if n == 0 && self.send.free() == 0 {
            return Err(TcpError::WouldBlock);
        }
        if n > 0 {
            self.output(ctx);
        }
        Ok(n)
    }

    /// Whether SEND may queue data now: the pending error first, then
    /// whether this side is still open.
    fn may_send(&mut self) -> Result<(), TcpError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.fin_queued {
            return Err(TcpError::BrokenPipe);
        }
        match self.state {
            // "Queue the data for transmission after entering ESTABLISHED state."
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => Ok(()),
            _ => Err(TcpError::BrokenPipe),
        }
    }

    /// RECEIVE (RFC 9293 section 3.10.3).
    pub fn recv(&mut self, ctx: &mut Ctx<'_>, buf: &mut [u8], peek: bool) -> Result<usize, TcpError> {
        if self.recv.readable() > 0 {
            if buf.is_empty() {
                return Ok(0);
            }
            let n = self.recv.read(buf, peek);
            self.recycle_spent(ctx);
            if !peek {
                if self.recv.readable() == 0 {
                    self.buffer_drained(ctx.now, ctx.cfg.buffer_idle);
                }
                self.adjust_rcvbuf(ctx.now, ctx.cfg);
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

    /// RECEIVE without a copy: `f` reads the in-order bytes in place (one
    /// contiguous piece: the next call gets the next, what wraps round the
    /// ring or lies in the next kept frame's buffer) and
    /// says how many it consumed. Ok(0) at the end of the stream (`f` not
    /// called) or when `f` consumed nothing; otherwise the same results as
    /// [`Conn::recv`].
    pub fn recv_with(&mut self, ctx: &mut Ctx<'_>, f: impl FnOnce(&[u8]) -> usize) -> Result<usize, TcpError> {
        if self.recv.readable() > 0 {
            let n = self.recv.read_with(f);
            self.recycle_spent(ctx);
            if self.recv.readable() == 0 {
                self.buffer_drained(ctx.now, ctx.cfg.buffer_idle);
            }
            self.adjust_rcvbuf(ctx.now, ctx.cfg);
            self.maybe_window_update(ctx);
            return Ok(n);
        }
        self.recv(ctx, &mut [], false)
    }

    /// Gives kept frames' buffers back to the stack's pool once read (zero-copy receive).
    fn recycle_spent(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(b) = self.recv.take_spent() {
            ctx.net.recycle_buffer(b);
        }
    }

    /// After the user reads: tell the peer when the window has opened enough to
    /// matter (receiver SWS avoidance, RFC 9293 section 3.8.6.2.2). With
    /// `TcpConfig::lazy_window_updates`, only when it at least doubles what the
    /// peer may still send (`grow >= old_wnd`).
    fn maybe_window_update(&mut self, ctx: &mut Ctx<'_>) {
        if !self.state.is_synchronized() || self.fin_received {
            return;
        }
        let mss = self.rcv_mss;
        let old_wnd = self.rcv_wnd();
        let edge = window_edge(self.rcv_nxt, self.rcv_adv, self.recv.free(), self.recv.capacity(), mss);
        let grow = edge.since(self.rcv_adv);
        let worth =
            grow >= (2 * mss).min(self.recv.capacity() as u32 / 2) && (!ctx.cfg.lazy_window_updates || grow >= old_wnd);
        if grow > 0 && (old_wnd < mss || worth) {
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
            if self.send.is_empty() && self.snd_nxt == self.data_end() {
                self.transmit(ctx, Tx::FinBeforeSynAcked);
            }
            return;
        }
        self.output(ctx);
    }

    /// ABORT (RFC 9293 section 3.10.5).
    pub fn abort(&mut self, ctx: &mut Ctx<'_>) {
        match self.state {
            State::SynReceived | State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                self.transmit(ctx, Tx::Rst);
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
        // The size grown by `sndbuf.rs` stays unless SO_SNDBUF itself changes.
        if opts.send_buffer != self.opts.send_buffer {
            self.send.set_capacity(opts.send_buffer);
        }
        let max = (u16::MAX as usize) << self.rcv_wscale;
        let wanted = opts.recv_buffer.min(max);
        // In SYN-SENT the window offered is our SYN's (issue 13, item 12: the
        // SYN,ACK would make it RCV.WND over a smaller buffer).
        let offered = if self.state == State::SynSent { self.syn_wnd as usize } else { self.rcv_wnd() as usize };
        if wanted == self.recv.capacity() || wanted < offered || !self.recv.set_capacity(wanted) {
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
}
