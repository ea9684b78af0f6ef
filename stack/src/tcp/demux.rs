//! Segments in for the table (RFC 9293 section 3.10.7): demultiplexing to a
//! connection, LISTEN (section 3.10.7.2), resets for segments nobody owns
//! (section 3.10.7.1), reopening TIME-WAIT with a new SYN, ICMP errors
//! (section 3.9.2.2), and the timers due. These are the stack's hooks.

use super::cause::Cause;
use super::conn;
use super::conn::Conn;
use super::id::ConnId;
use super::lower::TcpNet;
use super::segment::{self, Segment, SegmentOut};
use super::seq::Seq;
use super::syncookie::{self, CookieOptions};
use super::table::Tcp;
use super::table::{conn_mut, listener_mut, Sock};
use super::timestamps::{SynOptions, Timestamps};
use crate::buffer::KeptToken;
use crate::counters::DropReason;
use crate::icmp::IcmpError;
use crate::ipv4::IpPacket;
use crate::time::Instant;
use etherparse::IpNumber;
use std::net::{Ipv4Addr, SocketAddrV4};

/// How far past the old incarnation's highest sequence number a connection
/// reopened from TIME-WAIT starts: more than the largest unscaled window, so no
/// old duplicate can land in the new connection's window (Linux uses the same gap).
const REOPEN_ISN_GAP: u32 = 65537;

/// How long after its last cookie a listener checks ACKs for cookies: their
/// lifetime (RFC 4987 section 3.6; Linux's tcp_synq_no_recent_overflow).
const SYNCOOKIE_WINDOW: crate::time::Duration = crate::time::Duration::from_secs(60 * syncookie::MAX_AGE as u64);

impl Tcp {
    /// A TCP segment arrived in `packet`.
    pub fn input(&mut self, now: Instant, net: &mut dyn TcpNet, packet: &IpPacket<'_>) -> Result<(), DropReason> {
        if packet.broadcast {
            // RFC 1122 section 4.2.3.10: segments to a broadcast address are not ours to answer.
            return Err(DropReason::TcpBroadcast);
        }
        // A checksum the link vouched for (an offloading TAP) is not verified again.
        let seg = match packet.csum_trusted {
            true => segment::parse_trusted(packet.payload)?,
            false => segment::parse(packet.src, packet.dst, packet.payload)?,
        };
        self.input_parsed(now, net, packet.src, packet.dst, seg)
    }

    /// The buffer of the frame just received, claimed by a connection for its
    /// data (`TcpNet::claim_rx_frame`), which starts at `at` in it: the
    /// connection keeps it instead of a copy (zero-copy receive, `tcp::recv`).
    /// `token` counts it among the buffers kept (`buffer::MAX_KEPT_BUFFERS`).
    pub fn fill_claim(&mut self, net: &mut dyn TcpNet, frame: Vec<u8>, at: usize, token: KeptToken) {
        let conn = self.rx_claim.take().and_then(|id| conn_mut(&mut self.slots, id));
        match conn {
            Some(c) if c.awaits_frame() => c.fill_frame(frame, at, token),
            // Gone with the segment (a reset, TIME-WAIT compacted): nothing to read.
            _ => net.recycle_buffer(frame),
        }
    }

    /// An ICMP error about a segment we sent.
    pub fn icmp_error(&mut self, now: Instant, net: &mut dyn TcpNet, err: &IcmpError) {
        self.handle_icmp_error(now, net, err)
    }

    /// Runs the timers due at `now`.
    pub fn poll(&mut self, now: Instant, net: &mut dyn TcpNet) {
        self.poll_timers(now, net)
    }

    /// A batch of frames read together begins: the ACKs owed for in-order
    /// data wait for its end (`TcpConfig::stretch_acks`).
    pub fn begin_batch(&mut self) {
        self.batch_open = true;
    }

    /// The batch has ended: each connection sends the ACK it held back, one
    /// for all the batch's segments (RFC 9293 section 3.8.6.3 with Linux's
    /// GRO: see `TcpConfig::stretch_acks`).
    pub fn end_batch(&mut self, now: Instant, net: &mut dyn TcpNet) {
        self.batch_open = false;
        let held = self.batch_acks.take();
        for &index in &held {
            let id = ConnId { index, gen: self.slots[index as usize].gen };
            let Some(conn) = conn_mut(&mut self.slots, id) else { continue };
            let mut ctx = ctx!(self, now, net);
            conn.ack_held(&mut ctx);
            self.settle(id);
        }
        self.batch_acks.give_back(held);
    }

    /// The earliest timer deadline, if any.
    pub fn poll_at(&self) -> Option<Instant> {
        crate::time::earliest(self.timers.first().map(|t| t.0), self.tw.poll_at())
    }

    /// The segment `bytes` (TCP header and data) from `src` to `dst`.
    pub fn input_segment(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        let seg = segment::parse(src, dst, bytes)?;
        self.input_parsed(now, net, src, dst, seg)
    }

    /// A parsed (and, where it had to be, checksummed) segment from `src` to `dst`.
    fn input_parsed(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: Segment<'_>,
    ) -> Result<(), DropReason> {
        net.counters().rx_segments += 1;
        let local = SocketAddrV4::new(dst, seg.dst_port);
        let remote = SocketAddrV4::new(src, seg.src_port);
        if let Some(&id) = self.conns.get(&(local, remote)) {
            let conn = conn_mut(&mut self.slots, id).expect("mapped connections exist");
            let reopen = conn.syn_may_reopen(&seg) && self.listeners.contains_key(&local.port());
            if !reopen {
                let mut ctx = ctx!(self, now, net);
                let r = conn.on_segment(&mut ctx, &seg);
                if conn.acks_at_batch_end() {
                    self.batch_acks.mark(id.index);
                }
                self.settle(id);
                return r;
            }
            // RFC 9293 section 3.10.7.4 (TIME-WAIT) with RFC 1122 section
            // 4.2.2.13: a new SYN beyond the old connection's sequence space ends
            // the TIME-WAIT and opens a new connection (our ISNs, clock-driven,
            // exceed the old ones, RFC 6528).
            // Our clock-driven ISN alone can fall inside the old incarnation's
            // sequence space when it sent fast (RFC 9293 MAY-2 condition (1)):
            // start beyond it by more than a window, as Linux does.
            let (_, _, snd_max, _, _) = conn.seqs();
            let floor = snd_max + REOPEN_ISN_GAP;
            let mut ctx = ctx!(self, now, net);
            conn.end_time_wait(&mut ctx, Cause::RcvSynReopen);
            self.settle(id);
            if let Some(&lid) = self.listeners.get(&local.port()) {
                return self.listen_input(now, net, lid, local, remote, &seg, Some(floor));
            }
        }
        if let Some(at) = self.tw.find(&(local, remote)) {
            match self.time_wait_input(now, net, at, &seg) {
                Ok(floor) => {
                    if let Some(&lid) = self.listeners.get(&local.port()) {
                        return self.listen_input(now, net, lid, local, remote, &seg, Some(floor));
                    }
                }
                Err(r) => return r,
            }
        }
        if let Some(&lid) = self.listeners.get(&local.port()) {
            return self.listen_input(now, net, lid, local, remote, &seg, None);
        }
        // RFC 9293 section 3.10.7.1: no connection.
        self.reset_for(now, net, local, remote, &seg);
        Err(DropReason::TcpNoSocket)
    }

    /// A segment for TIME-WAIT record `at` (RFC 9293 section 3.10.7.4), as for
    /// a whole connection above: `Ok(floor)` when a new SYN has ended it (the
    /// new incarnation's ISS must exceed `floor`), else what the record made of it.
    fn time_wait_input(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        at: u32,
        seg: &Segment<'_>,
    ) -> Result<Seq, Result<(), DropReason>> {
        let tw = self.tw.get_mut(at);
        let mut ctx = ctx!(self, now, net);
        if tw.syn_may_reopen(seg) && self.listeners.contains_key(&tw.local.port()) {
            let floor = tw.snd_max() + REOPEN_ISN_GAP;
            tw.close(&mut ctx, Cause::RcvSynReopen);
            self.drop_time_wait(at);
            return Ok(floor);
        }
        let expires = tw.expires;
        let (r, outcome) = tw.on_segment(&mut ctx, seg);
        if outcome == conn::TwOutcome::Closed {
            self.drop_time_wait(at);
        } else if self.tw.get_mut(at).expires != expires {
            self.tw.requeue(at);
        }
        Err(r)
    }

    /// RFC 9293 section 3.10.7.1: the reset answering a segment nobody owns
    /// (never a reset to a reset).
    fn reset_for(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &Segment<'_>,
    ) {
        if seg.rst {
            return;
        }
        let mut s = SegmentOut { src_port: local.port(), dst_port: remote.port(), rst: true, ..Default::default() };
        if seg.ack_flag {
            // <SEQ=SEG.ACK><CTL=RST>
            s.seq = seg.ack;
        } else {
            // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
            s.seq = Seq(0);
            s.ack = Some(seg.seq + seg.len());
        }
        let mut ctx = ctx!(self, now, net);
        let _ = conn::emit(&mut ctx, local, remote, &s, [&[], &[]]);
    }

    /// RFC 9293 section 3.10.7.2, LISTEN, with a SYN queue apart from the
    /// accept queue and SYN cookies beyond it (RFC 4987 sections 3.3, 3.6).
    #[allow(clippy::too_many_arguments)]
    fn listen_input(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        lid: ConnId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &Segment<'_>,
        iss_floor: Option<Seq>,
    ) -> Result<(), DropReason> {
        // First, an RST: ignore it.
        if seg.rst {
            return Err(DropReason::TcpNotAcceptable);
        }
        // Second, an ACK: nothing here is acknowledged, unless it returns a
        // cookie; otherwise <SEQ=SEG.ACK><CTL=RST>.
        if seg.ack_flag {
            if !seg.syn {
                if let Some(r) = self.cookie_ack(now, net, lid, local, remote, seg) {
                    return r;
                }
            }
            self.reset_for(now, net, local, remote, seg);
            return Err(DropReason::TcpNoSocket);
        }
        // Third, a SYN; anything else is dropped.
        if !seg.syn {
            return Err(DropReason::TcpNotAcceptable);
        }
        let l = listener_mut(&mut self.slots, lid).expect("listeners exist");
        if *l.local.ip() != Ipv4Addr::UNSPECIFIED && *l.local.ip() != *local.ip() {
            self.reset_for(now, net, local, remote, seg);
            return Err(DropReason::TcpNoSocket);
        }
        // A full accept queue drops the SYN (as Linux): the application is
        // behind, and a cookie would only make a connection it cannot take.
        if l.queue.len() >= l.backlog {
            return Err(DropReason::TcpBacklogFull);
        }
        let syn_queue_full = l.syn_count >= l.backlog;
        if syn_queue_full || self.conn_count >= self.cfg.max_connections || self.cfg.syn_cookies_always {
            if self.cfg.syn_cookies || self.cfg.syn_cookies_always {
                self.send_cookie(now, net, lid, local, remote, seg);
                return Ok(());
            }
            return Err(if syn_queue_full { DropReason::TcpBacklogFull } else { DropReason::TcpConnectionLimit });
        }
        let opts = l.opts.clone();
        let id = self.alloc();
        let mut iss = self.isn.next(now, local, remote);
        if let Some(floor) = iss_floor {
            iss = iss.max(floor);
        }
        let mut ctx = ctx!(self, now, net);
        let conn = Conn::accept_syn(&mut ctx, id, local, remote, iss, opts, seg);
        self.adopt(id, lid, conn);
        self.settle(id);
        Ok(())
    }

    /// Puts a new passive connection in the slab, in its listener's SYN queue.
    fn adopt(&mut self, id: ConnId, lid: ConnId, conn: Conn) {
        let (local, remote) = (conn.local, conn.remote);
        let slot = &mut self.slots[id.index as usize];
        slot.sock = Some(Sock::Conn(Box::new(conn)));
        slot.parent = Some(lid);
        self.conn_count += 1;
        let l = listener_mut(&mut self.slots, lid).unwrap();
        l.pending.push(id);
        l.syn_count += 1;
        self.map(id, local, remote);
    }

    /// RFC 4987 section 3.6: answers a SYN with a SYN,ACK whose ISS is a cookie,
    /// keeping nothing. When the SYN carried timestamps (and we use them), the
    /// SYN,ACK's TSval carries the peer's window scale and SACK-permitted and
    /// both are answered as from a queued SYN; without timestamps there is
    /// nowhere to carry them, so neither is offered (as Linux).
    fn send_cookie(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        lid: ConnId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &Segment<'_>,
    ) {
        let l = listener_mut(&mut self.slots, lid).expect("listeners exist");
        l.cookies_at = Some(now);
        let recv_buffer = l.opts.recv_buffer;
        let wscale = conn::rcv_wscale(&l.opts, &self.cfg);
        let wnd = recv_buffer.min(u16::MAX as usize) as u16;
        let peer = SynOptions::negotiate(&seg.options, self.cfg.sack, self.cfg.timestamps);
        let (iss, _) = self.cookies.make(now, local, remote, seg.seq, peer.mss);
        net.counters().syn_cookies_sent += 1;
        let mut s = SegmentOut {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: iss,
            ack: Some(seg.seq + 1),
            syn: true,
            wnd,
            mss: Some(conn::our_mss(net)),
            ..Default::default()
        };
        if let (true, Some((tsval, _))) = (peer.timestamps, seg.options.timestamp) {
            // What a SYN,ACK from a SYN-RECEIVED connection would offer
            // (`Conn::build_syn`), its TSval read from the clock the
            // connection made from this cookie will have.
            let opts = CookieOptions { wscale: peer.wscale, sack_permitted: peer.sack };
            let clock = Timestamps::for_iss(iss, now).tsval(now);
            s.timestamp = Some((syncookie::encode_tsval(clock, opts), tsval));
            s.wscale = peer.wscale.map(|_| wscale);
            s.sack_permitted = peer.sack;
        }
        let mut ctx = ctx!(self, now, net);
        let _ = conn::emit(&mut ctx, local, remote, &s, [&[], &[]]);
    }

    /// An ACK at a listener that answered SYNs with cookies lately: if it
    /// returns one of ours, the connection is made now and the ACK (with any
    /// data) processed on it. `None`: no cookie here, the caller resets.
    fn cookie_ack(
        &mut self,
        now: Instant,
        net: &mut dyn TcpNet,
        lid: ConnId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &Segment<'_>,
    ) -> Option<Result<(), DropReason>> {
        let l = listener_mut(&mut self.slots, lid)?;
        let recent = SYNCOOKIE_WINDOW;
        if l.cookies_at.is_none_or(|t| now.saturating_duration_since(t) >= recent) {
            return None;
        }
        let checked = self.cookies.check(now, local, remote, seg.seq, seg.ack);
        let Some(syn) = checked.and_then(|mss| self.cookie_options(now, seg, mss)) else {
            net.counters().syn_cookies_failed += 1;
            return None;
        };
        let l = listener_mut(&mut self.slots, lid)?;
        if l.queue.len() >= l.backlog {
            return Some(Err(DropReason::TcpBacklogFull));
        }
        if self.conn_count >= self.cfg.max_connections {
            return Some(Err(DropReason::TcpConnectionLimit));
        }
        let (opts, wnd) = (l.opts.clone(), l.opts.recv_buffer.min(u16::MAX as usize) as u16);
        net.counters().syn_cookies_received += 1;
        let id = self.alloc();
        let tsval = seg.options.timestamp.map(|(v, _)| v);
        let mut ctx = ctx!(self, now, net);
        let conn = Conn::from_cookie(&mut ctx, id, local, remote, seg.ack - 1, opts, seg, syn, tsval, wnd);
        self.adopt(id, lid, conn);
        let conn = conn_mut(&mut self.slots, id).expect("just made");
        // The echoed TSval is up to 63 ms older than the SYN,ACK: no round-trip
        // sample from it (a TSecr of 0 gives none, RFC 7323 section 4.1); the
        // first ACK of data gives the first.
        let mut seg = *seg;
        if let Some((tsval, _)) = seg.options.timestamp {
            seg.options.timestamp = Some((tsval, 0));
        }
        let mut ctx = ctx!(self, now, net);
        let r = conn.on_segment(&mut ctx, &seg);
        self.settle(id);
        Some(r)
    }

    /// What the handshake a cookie (carrying `mss`) completes agreed, from the
    /// completing ACK: window scale and SACK from its TSecr if it carries
    /// timestamps, else the MSS alone. `None` (a failed cookie, as Linux's
    /// cookie_timestamp_decode) for a TSecr that cannot be one we sent, or
    /// options we would not have offered.
    fn cookie_options(&self, now: Instant, seg: &Segment<'_>, mss: u16) -> Option<SynOptions> {
        let Some((_, tsecr)) = seg.options.timestamp else {
            return Some(SynOptions { mss, wscale: None, sack: false, timestamps: false });
        };
        if !self.cfg.timestamps {
            return None;
        }
        let clock = Timestamps::for_iss(seg.ack - 1, now).tsval(now);
        let opts = syncookie::decode_tsecr(tsecr, clock)?;
        if opts.sack_permitted && !self.cfg.sack {
            return None;
        }
        Some(SynOptions { mss, wscale: opts.wscale, sack: opts.sack_permitted, timestamps: true })
    }

    /// RFC 9293 section 3.9.2.2 via RFC 1122 section 4.2.3.9.
    pub fn handle_icmp_error(&mut self, now: Instant, net: &mut dyn TcpNet, err: &IcmpError) {
        if err.protocol != IpNumber::TCP {
            return;
        }
        let (Some(sport), Some(dport)) = (err.src_port(), err.dst_port()) else { return };
        let local = SocketAddrV4::new(err.src, sport);
        let remote = SocketAddrV4::new(err.dst, dport);
        let Some(&id) = self.conns.get(&(local, remote)) else { return };
        // RFC 5927 section 4.1, as Linux: without the quoted sequence number
        // (8 bytes of TCP header) nothing proves the error is about our
        // segment; such a forged quote of the ports alone is ignored.
        if err.quoted_len < 8 {
            return;
        }
        let seq = Seq(u32::from_be_bytes([err.quoted[4], err.quoted[5], err.quoted[6], err.quoted[7]]));
        let conn = conn_mut(&mut self.slots, id).expect("mapped connections exist");
        let mut ctx = ctx!(self, now, net);
        conn.on_icmp(&mut ctx, err.kind, seq);
        self.settle(id);
    }

    /// Runs every timer due at `now`.
    pub fn poll_timers(&mut self, now: Instant, net: &mut dyn TcpNet) {
        // TIME-WAIT records: 2*MSL is over for those at the head of the FIFO.
        while let Some(at) = self.tw.due(now) {
            let mut ctx = ctx!(self, now, net);
            self.tw.get_mut(at).close(&mut ctx, Cause::Timeout2Msl);
            self.drop_time_wait(at);
        }
        let mut due = std::mem::take(&mut self.due);
        while let Some(&(t, index, gen)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            let id = ConnId { index, gen };
            if conn_mut(&mut self.slots, id).is_some() {
                self.slots[index as usize].sched = None;
                due.push(id);
            }
        }
        for &id in &due {
            if let Some(conn) = conn_mut(&mut self.slots, id) {
                let mut ctx = ctx!(self, now, net);
                conn.on_timer(&mut ctx);
                self.settle(id);
            }
        }
        due.clear();
        self.due = due;
    }
}
