//! The user's calls on the table (RFC 9293 section 3.10, as the sockets API
//! shapes them): OPEN (listen, connect), accept, SEND, RECEIVE, CLOSE,
//! shutdown, ABORT, STATUS and socket options. Each finds the socket, hands the
//! call to the connection (`conn::user`) and lets the table settle after it.

use super::cause::Cause;
use super::config::{self, SocketOptions};
use super::conn::{Conn, Shutdown};
use super::error::TcpError;
use super::id::ConnId;
use super::lower::TcpNet;
use super::seq::Seq;
use super::state::State;
use super::status::{Readiness, TcpInfo, TimerInfo};
use super::table::{conn_mut, listener_mut, user_conn_mut, Listener, Slot, Sock, Tcp, Tuple};
use super::trace::Transition;
use crate::counters::DropReason;
use crate::time::{Duration, Instant};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

impl Tcp {
    /// Checks that `local` could be bound (bind(2)): AddrInUse if a listener or
    /// a connection holds its port; with `reuse_addr`, TIME-WAIT connections and
    /// connections that have reuse_addr themselves do not count (as Linux).
    pub fn check_bind(&self, net: &dyn TcpNet, local: SocketAddrV4, reuse_addr: bool) -> Result<(), TcpError> {
        if !local.ip().is_unspecified() && !net.is_local(*local.ip()) {
            return Err(TcpError::InvalidArgument);
        }
        if local.port() == 0 {
            return Ok(());
        }
        if !reuse_addr {
            // Any user of the port, active or reusable, refuses a bind without
            // SO_REUSEADDR: two map look-ups, however many connections there
            // are (what choosing an ephemeral port asks, once per candidate).
            let used = self.listeners.contains_key(&local.port()) || self.ports.contains_key(&local.port());
            return if used { Err(TcpError::AddrInUse) } else { Ok(()) };
        }
        let (active, reusable) = self.port_users(local.port());
        if active || (reusable && !reuse_addr) {
            return Err(TcpError::AddrInUse);
        }
        Ok(())
    }

    /// OPEN, passive (RFC 9293 section 3.10.1): a listener on `local` (port 0:
    /// an ephemeral port) with the default options.
    pub fn listen(&mut self, net: &mut dyn TcpNet, local: SocketAddrV4, backlog: usize) -> Result<ConnId, TcpError> {
        let opts = self.cfg.default_options.clone();
        self.listen_with(net, local, backlog, opts)
    }

    /// `listen` with options (inherited by accepted connections).
    pub fn listen_with(
        &mut self,
        net: &mut dyn TcpNet,
        mut local: SocketAddrV4,
        backlog: usize,
        opts: SocketOptions,
    ) -> Result<ConnId, TcpError> {
        self.check_bind(net, local, opts.reuse_addr)?;
        if local.port() == 0 {
            local.set_port(self.ephemeral_port(net)?);
        }
        let backlog = backlog.clamp(1, self.cfg.max_backlog);
        let id = self.alloc();
        self.slots[id.index as usize].sock = Some(Sock::Listener(Box::new(Listener {
            local,
            backlog,
            queue: VecDeque::new(),
            pending: Vec::new(),
            syn_count: 0,
            cookies_at: None,
            opts,
        })));
        self.listeners.insert(local.port(), id);
        self.trace_listener(id, local, State::Closed, State::Listen, Cause::PassiveOpen);
        Ok(id)
    }

    /// OPEN, active (RFC 9293 section 3.10.1), with the default options.
    /// Nonblocking: returns in SYN-SENT; the connection is writable once ESTABLISHED.
    pub fn connect(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        local: Option<SocketAddrV4>,
        remote: SocketAddrV4,
    ) -> Result<ConnId, TcpError> {
        let opts = self.cfg.default_options.clone();
        self.connect_with(now, net, local, remote, opts)
    }

    /// `connect` with options.
    pub fn connect_with(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        local: Option<SocketAddrV4>,
        remote: SocketAddrV4,
        opts: SocketOptions,
    ) -> Result<ConnId, TcpError> {
        let rip = *remote.ip();
        if remote.port() == 0 || rip.is_unspecified() || net.is_broadcast(rip) || rip.is_multicast() {
            return Err(TcpError::InvalidArgument);
        }
        if self.conn_count >= self.cfg.max_connections {
            return Err(TcpError::NoBufferSpace);
        }
        // From the bound address, or the one the route gives (127.0.0.1 to 127/8).
        let ip = match local {
            Some(l) if !l.ip().is_unspecified() => *l.ip(),
            _ => net.source_for(rip),
        };
        if !net.is_local(ip) || (ip.is_loopback() && !net.is_local(rip)) {
            // Not ours; or 127/8 to another host, which RFC 1122 section 3.2.1.3
            // (g) rules out (Linux: EINVAL).
            return Err(TcpError::InvalidArgument);
        }
        let local = match local {
            Some(l) if l.port() != 0 => {
                let l = SocketAddrV4::new(ip, l.port());
                let whole = self.conns.get(&(l, remote)).copied();
                if whole.is_some() || self.tw.find(&(l, remote)).is_some() {
                    let tw =
                        whole.is_none_or(|o| conn_mut(&mut self.slots, o).is_some_and(|c| c.state == State::TimeWait));
                    if !(tw && opts.reuse_addr) {
                        return Err(TcpError::AddrInUse);
                    }
                    self.kill_time_wait(now, net, (l, remote));
                }
                if self.listeners.contains_key(&l.port()) && !opts.reuse_addr {
                    return Err(TcpError::AddrInUse);
                }
                l
            }
            _ => SocketAddrV4::new(ip, self.ephemeral_port(net)?),
        };
        let id = self.alloc();
        let iss = self.isn.next(now, local, remote);
        let mut ctx = ctx!(self, now, net);
        let mut conn = Conn::connect(&mut ctx, id, local, remote, iss, opts);
        if conn.tx_error == Some(DropReason::IpNoRoute) {
            // No route to the peer: fail now, as Linux does (ENETUNREACH).
            conn.close_with(&mut ctx, Some(TcpError::HostUnreachable), Cause::NoRoute);
            self.free.push(id.index);
            return Err(TcpError::HostUnreachable);
        }
        self.slots[id.index as usize].sock = Some(Sock::Conn(Box::new(conn)));
        self.conn_count += 1;
        self.map(id, local, remote);
        self.settle(id);
        Ok(id)
    }

    /// The next established connection of a listener, with its peer's address;
    /// `Ok(None)` if none is waiting.
    pub fn accept(&mut self, listener: ConnId) -> Result<Option<(ConnId, SocketAddrV4)>, TcpError> {
        let l = listener_mut(&mut self.slots, listener).ok_or(TcpError::InvalidState)?;
        let Some(id) = l.queue.pop_front() else { return Ok(None) };
        let remote = conn_mut(&mut self.slots, id).expect("queued connections exist").remote;
        let slot = &mut self.slots[id.index as usize];
        slot.parent = None;
        slot.in_accept_queue = false;
        Ok(Some((id, remote)))
    }

    /// SEND (RFC 9293 section 3.10.2): copies what fits in the send buffer.
    pub fn send(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId, data: &[u8]) -> Result<usize, TcpError> {
        let conn = user_conn_mut(&mut self.slots, id)?;
        let mut ctx = ctx!(self, now, net);
        let r = conn.send(&mut ctx, data);
        self.settle(id);
        r
    }

    /// SEND without a copy (what smoltcp's `send` closure is): `f` writes
    /// into the send buffer's free space in place, one contiguous piece (a
    /// second call gets what wraps round the ring), and returns how many
    /// bytes it wrote. Errors as [`Tcp::send`]; WouldBlock when full.
    pub fn send_with(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        f: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, TcpError> {
        let conn = user_conn_mut(&mut self.slots, id)?;
        let mut ctx = ctx!(self, now, net);
        let r = conn.send_with(&mut ctx, f);
        self.settle(id);
        r
    }

    /// RECEIVE without a copy: `f` reads the in-order bytes in place, one
    /// contiguous piece (the next call gets the next: what wraps round the
    /// ring, or lies in the next kept frame's buffer), and
    /// returns how many it consumed. Results as [`Tcp::recv`]: Ok(0) at the
    /// end of the stream, when `f` is not called (a call of `f` that consumes
    /// nothing returns Ok(0) too: the caller knows which it was).
    pub fn recv_with(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        f: impl FnOnce(&[u8]) -> usize,
    ) -> Result<usize, TcpError> {
        let conn = user_conn_mut(&mut self.slots, id)?;
        let mut ctx = ctx!(self, now, net);
        let r = conn.recv_with(&mut ctx, f);
        self.settle(id);
        r
    }

    /// RECEIVE (RFC 9293 section 3.10.3): Ok(0) at end of stream; WouldBlock if
    /// nothing yet; `peek` leaves the data in place.
    pub fn recv(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<usize, TcpError> {
        let conn = user_conn_mut(&mut self.slots, id)?;
        let mut ctx = ctx!(self, now, net);
        let r = conn.recv(&mut ctx, buf, peek);
        self.settle(id);
        r
    }

    pub fn shutdown(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId, how: Shutdown) -> Result<(), TcpError> {
        let conn = user_conn_mut(&mut self.slots, id)?;
        if conn.state == State::Closed && conn.error.is_none() {
            return Err(TcpError::NotConnected);
        }
        let mut ctx = ctx!(self, now, net);
        conn.shutdown(&mut ctx, how);
        self.settle(id);
        Ok(())
    }

    /// CLOSE (RFC 9293 section 3.10.4) and release of the handle. The connection
    /// lives on (FIN-WAIT, TIME-WAIT...) until the protocol is done with it. A
    /// listener's connections not yet accepted are reset.
    pub fn close(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId) -> Result<(), TcpError> {
        if let Some(l) = listener_mut(&mut self.slots, id) {
            let (queue, pending) = (std::mem::take(&mut l.queue), std::mem::take(&mut l.pending));
            let local = l.local;
            let syn = pending.into_iter().filter(|&c| self.in_syn_queue(c, id));
            let children: Vec<ConnId> = queue.into_iter().chain(syn).collect();
            self.listeners.remove(&local.port());
            self.release(id);
            self.trace_listener(id, local, State::Listen, State::Closed, Cause::Close);
            for child in children {
                if conn_mut(&mut self.slots, child).is_some() {
                    self.slots[child.index as usize].parent = None;
                    let c = conn_mut(&mut self.slots, child).expect("checked above");
                    c.user_closed = true;
                    let mut ctx = ctx!(self, now, net);
                    c.abort(&mut ctx);
                    self.settle(child);
                }
            }
            return Ok(());
        }
        let conn = user_conn_mut(&mut self.slots, id)?;
        let mut ctx = ctx!(self, now, net);
        conn.close(&mut ctx);
        self.settle(id);
        Ok(())
    }

    /// ABORT (RFC 9293 section 3.10.5): reset and release.
    pub fn abort(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId) -> Result<(), TcpError> {
        if listener_mut(&mut self.slots, id).is_some() {
            return self.close(now, net, id);
        }
        let conn = user_conn_mut(&mut self.slots, id)?;
        conn.user_closed = true;
        let mut ctx = ctx!(self, now, net);
        conn.abort(&mut ctx);
        self.settle(id);
        Ok(())
    }

    /// Connections (not a listener's children not yet accepted) whose end is not
    /// yet acknowledged by the peer: all but those in FIN-WAIT-2 and TIME-WAIT,
    /// where our FIN is acknowledged. A stack being stopped runs until there are
    /// none ([`Tcp::abort_unfinished`] at its bound). O(slots): for that end only.
    pub fn unfinished(&self) -> usize {
        self.slots.iter().filter(|s| s.parent.is_none() && unfinished(s)).count()
    }

    /// ABORT (RFC 9293 section 3.10.5) of every connection [`Tcp::unfinished`]
    /// counts, held by the user or orphaned by a close: for a stack that stops
    /// before its peers acknowledged its FINs (or before its queued data and FIN
    /// could go), so that no peer is left waiting on a connection nobody will
    /// ever send on again. RST in SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1 and
    /// CLOSE-WAIT; CLOSING and LAST-ACK are deleted without one, as the RFC says.
    /// Returns how many were aborted. O(slots).
    pub fn abort_unfinished(&mut self, now: Instant, net: &mut dyn TcpNet) -> usize {
        let mut n = 0;
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if slot.parent.is_some() || !unfinished(slot) {
                continue;
            }
            let id = ConnId { index: index as u32, gen: slot.gen };
            let c = conn_mut(&mut self.slots, id).expect("a connection, checked above");
            c.user_closed = true;
            let mut ctx = ctx!(self, now, net);
            c.abort(&mut ctx);
            self.settle(id);
            n += 1;
        }
        n
    }

    /// STATUS (RFC 9293 section 3.10.6): the state.
    pub fn state(&self, id: ConnId) -> Result<State, TcpError> {
        match self.sock(id)? {
            Sock::Listener(_) => Ok(State::Listen),
            Sock::Conn(c) => Ok(c.state),
        }
    }

    fn sock(&self, id: ConnId) -> Result<&Sock, TcpError> {
        match self.slots.get(id.index as usize) {
            Some(Slot { gen, sock: Some(s), parent, .. }) if *gen == id.gen => match s {
                Sock::Conn(c) if c.user_closed || parent.is_some() => Err(TcpError::InvalidState),
                s => Ok(s),
            },
            _ => Err(TcpError::InvalidState),
        }
    }

    pub fn local_addr(&self, id: ConnId) -> Result<SocketAddrV4, TcpError> {
        match self.sock(id)? {
            Sock::Listener(l) => Ok(l.local),
            Sock::Conn(c) => Ok(c.local),
        }
    }

    pub fn peer_addr(&self, id: ConnId) -> Result<SocketAddrV4, TcpError> {
        match self.sock(id)? {
            Sock::Listener(_) => Err(TcpError::NotConnected),
            Sock::Conn(c) => Ok(c.remote),
        }
    }

    pub fn readiness(&self, id: ConnId) -> Result<Readiness, TcpError> {
        match self.sock(id)? {
            Sock::Listener(l) => Ok(Readiness { readable: !l.queue.is_empty(), ..Default::default() }),
            Sock::Conn(c) => Ok(c.readiness()),
        }
    }

    /// SO_ERROR: the pending error, consumed.
    pub fn take_error(&mut self, id: ConnId) -> Result<Option<TcpError>, TcpError> {
        self.sock(id)?;
        match user_conn_mut(&mut self.slots, id) {
            Ok(c) => Ok(c.error.take()),
            Err(TcpError::NotConnected) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn info(&self, id: ConnId) -> Result<TcpInfo, TcpError> {
        Ok(self.sock_info(self.sock(id)?))
    }

    fn sock_info(&self, s: &Sock) -> TcpInfo {
        match s {
            Sock::Conn(c) => c.info(self.cfg.r1_retries),
            Sock::Listener(l) => TcpInfo {
                state: State::Listen,
                local: l.local,
                remote: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                cwnd: 0,
                ssthresh: 0,
                srtt: None,
                rttvar: Duration::ZERO,
                rto: Duration::ZERO,
                snd_mss: 0,
                snd_wnd: 0,
                rcv_wnd: 0,
                snd_wscale: 0,
                rcv_wscale: 0,
                unacked: 0,
                send_queue: l.backlog,
                recv_queue: l.queue.len(),
                out_of_order: 0,
                bytes_sent: 0,
                bytes_acked: 0,
                bytes_received: 0,
                retransmissions: 0,
                segs_in: 0,
                segs_out: 0,
                retries: 0,
                path_suspect: false,
                in_recovery: false,
                timers: TimerInfo::default(),
                loss: Default::default(),
            },
        }
    }

    /// Every listener and connection, orphans and unaccepted ones included (an
    /// `ss -tan` view), in slot order.
    /// TIME-WAIT records come last, oldest first, under the ids their
    /// connections had.
    pub fn sockets(&self) -> impl Iterator<Item = (ConnId, TcpInfo)> + '_ {
        let whole = self.slots.iter().enumerate().filter_map(|(i, slot)| {
            let s = slot.sock.as_ref()?;
            Some((ConnId { index: i as u32, gen: slot.gen }, self.sock_info(s)))
        });
        whole.chain(self.tw.iter().map(|tw| (tw.id, tw.info())))
    }

    /// Connections (not listeners) in the table, TIME-WAIT included.
    pub fn connection_count(&self) -> usize {
        self.conn_count + self.tw_count
    }

    /// Heap bytes held by the TCP table, roughly: the slots, every connection's
    /// TCB and buffer storage, the TIME-WAIT records, the maps and the timer
    /// set (by capacity, at the size of their entries). For tests and
    /// measurements of what a flood leaves behind (issue 13, item 3).
    pub fn heap_bytes(&self) -> usize {
        use core::mem::size_of;
        let conns: usize = self
            .slots
            .iter()
            .map(|s| match &s.sock {
                Some(Sock::Conn(c)) => c.heap_bytes(),
                Some(Sock::Listener(l)) => {
                    size_of::<Listener>() + (l.queue.capacity() + l.pending.capacity()) * size_of::<ConnId>()
                }
                None => 0,
            })
            .sum();
        let tuple_map = self.conns.capacity() * (size_of::<(Tuple, ConnId)>() + 1);
        let port_maps = (self.ports.capacity() + self.listeners.capacity()) * (size_of::<(u16, u64)>() + 1);
        let timers = self.timers.len() * size_of::<(Instant, u32, u32)>();
        self.slots.capacity() * size_of::<Slot>()
            + self.free.capacity() * 4
            + conns
            + self.tw.heap_bytes()
            + tuple_map
            + port_maps
            + timers
    }

    /// Of [`Tcp::heap_bytes`], what the connections' receive and send buffers
    /// hold (O(slots): for measurements, never on a per-call path).
    pub fn buffer_bytes(&self) -> usize {
        let conn = |s: &Slot| match &s.sock {
            Some(Sock::Conn(c)) => c.buffer_bytes(),
            _ => 0,
        };
        self.slots.iter().map(conn).sum()
    }

    /// Connections in TIME-WAIT (outside `max_connections`, within `max_tw_buckets`).
    pub fn time_wait_count(&self) -> usize {
        self.tw_count
    }

    /// Makes the next connection between `local` and `remote` start at sequence
    /// number `isn` instead of the RFC 6528 generator's choice. For replaying a
    /// capture taken outside the stack (tcpdump on the TAP), whose timestamps are
    /// not the stack's clock, so the clock part of the ISN must come from the capture.
    pub fn pin_isn(&mut self, local: SocketAddrV4, remote: SocketAddrV4, isn: u32) {
        self.isn.pin(local, remote, Seq(isn));
    }

    /// Hands every recorded state transition to `f`, oldest first, and forgets them.
    pub fn drain_transitions(&mut self, f: impl FnMut(&Transition)) {
        self.trace.drain(f)
    }

    /// Transitions dropped because the queue was full.
    pub fn transitions_lost(&self) -> u64 {
        self.trace.lost
    }

    pub fn options(&self, id: ConnId) -> Result<SocketOptions, TcpError> {
        match self.sock(id)? {
            Sock::Listener(l) => Ok(l.opts.clone()),
            Sock::Conn(c) => Ok(c.opts.clone()),
        }
    }

    /// setsockopt: replaces the socket's options (see [`SocketOptions`] for what
    /// can change when); may send (TCP_NODELAY flushes what Nagle held).
    pub fn set_options(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        mut opts: SocketOptions,
    ) -> Result<(), TcpError> {
        opts.send_buffer = opts.send_buffer.clamp(config::MIN_BUFFER, config::MAX_BUFFER);
        opts.recv_buffer = opts.recv_buffer.clamp(config::MIN_BUFFER, config::MAX_BUFFER);
        if opts.keepalive && (opts.keep_idle.is_zero() || opts.keep_interval.is_zero() || opts.keep_count == 0) {
            return Err(TcpError::InvalidArgument);
        }
        if let Some(l) = listener_mut(&mut self.slots, id) {
            l.opts = opts;
            return Ok(());
        }
        let conn = user_conn_mut(&mut self.slots, id)?;
        conn.set_options(now, opts);
        let mut ctx = ctx!(self, now, net);
        conn.output(&mut ctx);
        self.settle(id);
        Ok(())
    }

    /// Changes one option with `f`.
    fn update_options(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        f: impl FnOnce(&mut SocketOptions),
    ) -> Result<(), TcpError> {
        let mut o = self.options(id)?;
        f(&mut o);
        self.set_options(now, net, id, o)
    }

    /// TCP_NODELAY.
    pub fn set_nodelay(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId, on: bool) -> Result<(), TcpError> {
        self.update_options(now, net, id, |o| o.nodelay = on)
    }

    /// SO_KEEPALIVE.
    pub fn set_keepalive(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId, on: bool) -> Result<(), TcpError> {
        self.update_options(now, net, id, |o| o.keepalive = on)
    }

    /// TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT.
    pub fn set_keepalive_params(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        idle: Duration,
        interval: Duration,
        count: u32,
    ) -> Result<(), TcpError> {
        if idle.is_zero() || interval.is_zero() || count == 0 {
            return Err(TcpError::InvalidArgument);
        }
        self.update_options(now, net, id, |o| {
            o.keep_idle = idle;
            o.keep_interval = interval;
            o.keep_count = count;
        })
    }

    /// SO_LINGER.
    pub fn set_linger(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        linger: Option<Duration>,
    ) -> Result<(), TcpError> {
        self.update_options(now, net, id, |o| o.linger = linger)
    }

    /// SO_SNDBUF.
    pub fn set_send_buffer(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        bytes: usize,
    ) -> Result<(), TcpError> {
        self.update_options(now, net, id, |o| o.send_buffer = bytes)
    }

    /// SO_RCVBUF (takes effect only while the buffer is empty).
    pub fn set_recv_buffer(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        id: ConnId,
        bytes: usize,
    ) -> Result<(), TcpError> {
        self.update_options(now, net, id, |o| o.recv_buffer = bytes)
    }

    /// SO_REUSEADDR.
    pub fn set_reuse_addr(&mut self, now: Instant, net: &mut dyn TcpNet, id: ConnId, on: bool) -> Result<(), TcpError> {
        self.update_options(now, net, id, |o| o.reuse_addr = on)
    }

    /// Sequence numbers of a connection (ISS, SND.UNA, SND.MAX, IRS, RCV.NXT), for tests and tools.
    pub fn seqs(&self, id: ConnId) -> Result<(Seq, Seq, Seq, Seq, Seq), TcpError> {
        match self.sock(id)? {
            Sock::Conn(c) => Ok(c.seqs()),
            Sock::Listener(_) => Err(TcpError::NotConnected),
        }
    }
}

/// Whether `slot` holds a connection whose end the peer has not acknowledged.
fn unfinished(slot: &Slot) -> bool {
    matches!(&slot.sock, Some(Sock::Conn(c)) if !matches!(c.state, State::FinWait2 | State::TimeWait | State::Closed))
}
