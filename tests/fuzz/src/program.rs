//! The frame path as a program: the fuzzer's bytes are read as a sequence of
//! operations on one [`Stack`] and its [`FdTable`] in virtual time (frames in,
//! time steps, polls, socket calls), and the stack's invariants are checked
//! after every step (see [`Machine::check`]).
//!
//! # The encoding (also what `seeds.py` writes)
//!
//! Each operation is a tag byte (taken modulo [`OPS`]) and its arguments; a
//! program that ends inside an operation ends there. `u16` is big-endian.
//!
//! | tag | operation | arguments |
//! |---|---|---|
//! | 0 | a raw frame | `len: u16`, `len` bytes |
//! | 1 | a TCP segment from a peer | `tuple, flags, seq_mode, seq_delta: u16, ack_delta: u16, window: u16, opts, len` |
//! | 2 | a UDP datagram | `sport_sel, dport: u16, len` |
//! | 3 | an ICMP message | `kind, arg, value: u16, len` |
//! | 4 | an ARP packet | `kind` |
//! | 5 | an IPv4 fragment | `id, offset: u16, flags, proto, len` |
//! | 6 | advance the clock | `unit, amount: u16` |
//! | 7 | poll (if a deadline is due) | |
//! | 8 | a socket call | `call, fd_sel, arg, value: u16` |
//! | 9 | run to the next deadline (at most an hour ahead) and poll | |
//!
//! Payloads of built frames are `len` bytes from the program (zeros when it ends).

use crate::wire::{self, Datagram, IpFields, Sent, TcpFields, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use sockets_api::consts::*;
use sockets_api::fd_table::{FIRST_FD, MAX_FDS};
use sockets_api::{Fd, FdTable, Linger, OptVal};
use stack::{Config, Duration, Instant, MacAddr, Stack};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// The stack's side: the addresses of the reference captures (captures/*.toml),
/// so that their frames reach the stack unchanged.
pub const US_MAC: [u8; 6] = [0x02, 0x74, 0x61, 0x70, 0x00, 0x02];
pub const US: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const PEER_MAC: [u8; 6] = [0x02, 0x74, 0x61, 0x70, 0x00, 0x01];
pub const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// How many operations there are (the tag is taken modulo this).
pub const OPS: u8 = 10;
/// Limits kept small so that programs reach them.
pub const MAX_CONNECTIONS: usize = 8;
pub const MAX_BACKLOG: usize = 4;
/// Polls allowed at one instant before the deadline must have moved on.
const POLLS_PER_INSTANT: usize = 8;
/// After the program, time runs ahead with no input until no deadline is nearer
/// than this (keep-alive's 2 hours is a long one)...
const LONG: Duration = Duration::from_secs(3600);
/// ... within this many polls.
const QUIESCE_POLLS: usize = 20_000;

/// Ports the stack's side listens on or binds, and ports peers use.
const LOCAL_PORTS: [u16; 4] = [7, 80, 5000, 0];
const PEER_PORTS: [u16; 4] = [8080, 5001, 40000, 40001];

/// The program's bytes.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    /// `n` bytes, or as many as are left.
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (b, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        b
    }

    /// `n` bytes, padded with zeros if the program ends.
    fn payload(&mut self, n: usize) -> Vec<u8> {
        let mut v = self.bytes(n).to_vec();
        v.resize(n, 0);
        v
    }
}

/// What the peers know of one TCP connection, learnt from the stack's segments.
#[derive(Clone, Copy, Debug, Default)]
struct Track {
    /// The stack's next sequence number (the highest seq + length it sent).
    stack_next: u32,
    /// What the stack last acknowledged.
    stack_ack: Option<u32>,
    /// The peer's next sequence number, as this harness sent it.
    peer_next: u32,
}

/// A TCP 4-tuple from the peer's view: (peer address, peer port, our port).
type Tuple = (Ipv4Addr, u16, u16);

/// The stack, its descriptors and what the harness knows.
pub struct Machine {
    pub stack: Stack,
    pub fds: FdTable,
    pub now: Instant,
    open: Vec<Fd>,
    tracks: HashMap<Tuple, Track>,
    order: Vec<Tuple>,
    /// The last IPv4 datagrams the stack sent, for ICMP errors to quote.
    quotes: Vec<Vec<u8>>,
    mtu: usize,
}

pub fn config() -> Config {
    let mut c = Config::new(MacAddr(US_MAC), US, 24);
    c.seed = 7;
    c.tcp.max_connections = MAX_CONNECTIONS;
    c.tcp.max_backlog = MAX_BACKLOG;
    c
}

/// Runs one program, panicking on a broken invariant.
pub fn run(data: &[u8]) {
    let mut m = Machine::new();
    let mut input = Input { data };
    // FUZZ_DEBUG=1 prints each operation and the sockets after it (to write seeds).
    let debug = std::env::var_os("FUZZ_DEBUG").is_some();
    while let Some(tag) = input.u8() {
        m.step(tag % OPS, &mut input);
        m.check();
        if debug {
            eprintln!("op {} at {:?}: {:?}", tag % OPS, m.now, m.stack.socket_table(m.now));
        }
    }
    m.quiesce();
}

impl Default for Machine {
    fn default() -> Self {
        Self::new()
    }
}

impl Machine {
    pub fn new() -> Machine {
        let config = config();
        let mtu = usize::from(config.mtu);
        let mut stack = Stack::new(config).expect("valid config");
        let now = Instant::ZERO;
        stack.start(now);
        let mut m = Machine {
            stack,
            fds: FdTable::new(),
            now,
            open: Vec::new(),
            tracks: HashMap::new(),
            order: Vec::new(),
            quotes: Vec::new(),
            mtu,
        };
        m.drain();
        m
    }

    fn step(&mut self, op: u8, input: &mut Input<'_>) {
        match op {
            0 => {
                let len = usize::from(input.u16().unwrap_or(0)) % 1600;
                let frame = input.bytes(len).to_vec();
                self.receive(&frame);
            }
            1 => self.tcp(input),
            2 => self.udp(input),
            3 => self.icmp(input),
            4 => self.arp(input),
            5 => self.fragment(input),
            6 => {
                let unit = input.u8().unwrap_or(0);
                let amount = u64::from(input.u16().unwrap_or(0));
                self.now += match unit % 4 {
                    0 => Duration::from_micros(amount),
                    1 => Duration::from_millis(amount),
                    2 => Duration::from_millis(amount * 10),
                    _ => Duration::from_secs(amount % 4000),
                };
            }
            7 => self.poll(),
            8 => self.call(input),
            _ => {
                if let Some(t) = self.stack.poll_at().filter(|&t| t <= self.now + LONG) {
                    self.now = self.now.max(t);
                }
                self.poll();
            }
        }
        self.drain();
    }

    fn receive(&mut self, frame: &[u8]) {
        let before = self.stack.counters().link.clone();
        let _ = self.stack.receive(self.now, frame);
        let after = &self.stack.counters().link;
        assert_eq!(after.rx_frames, before.rx_frames + 1, "a frame was not counted once");
    }

    /// Polls as a driver does: again while a deadline is still due, a bounded
    /// number of times at one instant.
    fn poll(&mut self) {
        for _ in 0..POLLS_PER_INSTANT {
            match self.stack.poll_at() {
                Some(t) if t <= self.now => self.stack.poll(self.now),
                _ => return,
            }
            self.drain();
        }
        panic!("poll_at() {:?} still due at {:?} after {POLLS_PER_INSTANT} polls", self.stack.poll_at(), self.now);
    }

    /// Takes every frame the stack sent, checks it, and learns from it.
    fn drain(&mut self) {
        let mut frames = Vec::new();
        self.stack.transmit(|f| frames.push(f.to_vec()));
        for f in &frames {
            match wire::check_sent(f, US_MAC, US, self.mtu) {
                Ok(Sent::Tcp { ip, segment }) => self.learn(ip.header().destination_addr(), segment),
                Ok(_) => {}
                Err(e) => panic!("the stack sent a malformed frame ({e}): {f:02x?}"),
            }
            if f.len() > 34 && f[12..14] == [0x08, 0x00] {
                if self.quotes.len() == 4 {
                    self.quotes.remove(0);
                }
                self.quotes.push(f[14..].to_vec());
            }
        }
    }

    fn learn(&mut self, peer: Ipv4Addr, seg: &[u8]) {
        let be16 = |i: usize| u16::from_be_bytes([seg[i], seg[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes([seg[i], seg[i + 1], seg[i + 2], seg[i + 3]]);
        let (sport, dport, seq, ack, flags) = (be16(0), be16(2), be32(4), be32(8), seg[13]);
        let data = seg.len() - usize::from(seg[12] >> 4) * 4;
        let len = data as u32 + u32::from(flags & 0x02 != 0) + u32::from(flags & 0x01 != 0);
        let t = self.track((peer, dport, sport), seq);
        if flags & 0x02 != 0 || seq.wrapping_add(len).wrapping_sub(t.stack_next) as i32 > 0 {
            t.stack_next = seq.wrapping_add(len);
        }
        if flags & 0x10 != 0 {
            t.stack_ack = Some(ack);
            if flags & 0x02 != 0 {
                t.peer_next = ack;
            }
        }
    }

    /// The track of `tuple`, new (the stack's next sequence number `stack_next`) if
    /// there is none; the 16 most recent are kept.
    fn track(&mut self, tuple: Tuple, stack_next: u32) -> &mut Track {
        if !self.tracks.contains_key(&tuple) {
            if self.order.len() == 16 {
                let old = self.order.remove(0);
                self.tracks.remove(&old);
            }
            self.order.push(tuple);
        }
        self.tracks.entry(tuple).or_insert(Track { stack_next, stack_ack: None, peer_next: 0x1000 })
    }

    /// A tuple the stack has used (when `sel` says so and there is one), or one
    /// made of the usual ports.
    fn tuple(&self, sel: u8) -> Tuple {
        if sel & 0x80 != 0 && !self.order.is_empty() {
            return self.order[usize::from(sel & 0x7f) % self.order.len()];
        }
        let peer = if sel & 0x40 != 0 { Ipv4Addr::new(10, 77, 0, 3 + (sel & 3)) } else { PEER };
        let local = [7, 80, 5000, 9][usize::from(sel >> 2) & 3];
        (peer, PEER_PORTS[usize::from(sel >> 4) & 3], local)
    }

    fn tcp(&mut self, input: &mut Input<'_>) {
        let tuple = self.tuple(input.u8().unwrap_or(0));
        let flags = input.u8().unwrap_or(0x02);
        let mode = input.u8().unwrap_or(0);
        let (seq_delta, ack_delta) = (input.u16().unwrap_or(0), input.u16().unwrap_or(0));
        let window = input.u16().unwrap_or(0xffff);
        let opts = input.u8().unwrap_or(0);
        let len = usize::from(input.u8().unwrap_or(0));
        let payload = input.payload(len);
        let t = self.tracks.get(&tuple).copied().unwrap_or(Track { stack_next: 0, stack_ack: None, peer_next: 0x1000 });
        // Small deltas either way around what the stack expects, or raw numbers.
        let near = |base: u32, d: u16| base.wrapping_add(i32::from(d as i16 >> 4) as u32);
        let (seq, ack) = match mode % 4 {
            0 => (t.peer_next.wrapping_add(u32::from(seq_delta & 0xf)), near(t.stack_next, ack_delta)),
            1 => (t.stack_ack.map_or(t.peer_next, |a| near(a, seq_delta)), t.stack_next),
            2 => (near(t.peer_next, seq_delta), near(t.stack_next, ack_delta)),
            _ => (u32::from(seq_delta) << 16 | u32::from(ack_delta), u32::from(ack_delta) << 16 | u32::from(window)),
        };
        let options = tcp_options(opts, t.stack_next, self.now);
        let mut seg = wire::tcp(&TcpFields {
            sport: tuple.1,
            dport: tuple.2,
            seq,
            ack,
            flags,
            window,
            urgent: if mode & 0x80 != 0 { seq_delta } else { 0 },
            options: &options,
            payload: &payload,
        });
        let seq_len = len as u32 + u32::from(flags & 0x02 != 0) + u32::from(flags & 0x01 != 0);
        let next = seq.wrapping_add(seq_len);
        let track = self.track(tuple, t.stack_next);
        if next.wrapping_sub(track.peer_next) as i32 > 0 {
            track.peer_next = next;
        }
        let bad_sum = opts & 0x80 != 0 && mode & 0x40 != 0;
        let frame = self.datagram(tuple.0, PROTO_TCP, &mut seg, Some(16), bad_sum, mode);
        self.receive(&frame);
    }

    /// An IPv4 frame from `src` to us, with its transport checksum (wrong on purpose when `bad_sum`).
    fn datagram(
        &self,
        src: Ipv4Addr,
        proto: u8,
        t: &mut [u8],
        csum_at: Option<usize>,
        bad_sum: bool,
        sel: u8,
    ) -> Vec<u8> {
        let dst = match sel >> 4 & 3 {
            0 | 1 => US,
            2 => Ipv4Addr::new(10, 77, 0, 255),
            _ => Ipv4Addr::BROADCAST,
        };
        let ip = IpFields { proto, id: u16::from(sel), frag: 0x4000, ttl: 64 };
        let mut f = Datagram {
            src_mac: PEER_MAC,
            dst_mac: US_MAC,
            src,
            dst,
            ip,
            transport: t,
            csum_at,
            pseudo_sum: proto != PROTO_ICMP,
        }
        .write();
        if bad_sum {
            let last = f.len() - 1;
            f[last] ^= 0x5a;
        }
        f
    }

    fn udp(&mut self, input: &mut Input<'_>) {
        let sel = input.u8().unwrap_or(0);
        let dport = input.u16().unwrap_or(7);
        let len = usize::from(input.u8().unwrap_or(0));
        let sport = PEER_PORTS[usize::from(sel & 3)];
        let mut d = Vec::with_capacity(8 + len);
        d.extend_from_slice(&sport.to_be_bytes());
        d.extend_from_slice(&dport.to_be_bytes());
        d.extend_from_slice(&((8 + len) as u16).to_be_bytes());
        d.extend_from_slice(&[0, 0]);
        d.extend(input.payload(len));
        // Without a checksum at all (allowed by RFC 768) when sel says so.
        let csum = if sel & 0x04 != 0 { None } else { Some(6) };
        let frame = self.datagram(PEER, PROTO_UDP, &mut d, csum, sel & 0x08 != 0, sel);
        self.receive(&frame);
    }

    fn icmp(&mut self, input: &mut Input<'_>) {
        let kind = input.u8().unwrap_or(0);
        let arg = input.u8().unwrap_or(0);
        let value = input.u16().unwrap_or(0);
        let len = usize::from(input.u8().unwrap_or(0));
        let (ty, code, rest): (u8, u8, [u8; 4]) = match kind % 6 {
            0 => (8, 0, [0, 1, (value >> 8) as u8, value as u8]),
            1 => (3, 4, [0, 0, (value >> 8) as u8, value as u8]),
            2 => (3, arg % 16, [0; 4]),
            3 => (11, arg % 2, [0; 4]),
            4 => (0, 0, [0, 1, 0, 1]),
            _ => (arg, kind >> 3, value.to_be_bytes().repeat(2).try_into().expect("4 bytes")),
        };
        let mut m = vec![ty, code, 0, 0];
        m.extend_from_slice(&rest);
        // Errors quote a datagram the stack sent (cut to `arg` bytes), else carry payload.
        let quoted = (ty == 3 || ty == 11 || kind & 0x80 != 0) && !self.quotes.is_empty();
        if quoted {
            let q = &self.quotes[usize::from(kind >> 6 & 1) % self.quotes.len()];
            let cut = if kind & 0x40 != 0 { usize::from(arg) } else { 28 + usize::from(arg % 64) };
            m.extend_from_slice(&q[..cut.min(q.len())]);
        } else {
            m.extend(input.payload(len));
        }
        let frame = self.datagram(PEER, PROTO_ICMP, &mut m, Some(2), kind & 0x20 != 0, 0);
        self.receive(&frame);
    }

    fn arp(&mut self, input: &mut Input<'_>) {
        let kind = input.u8().unwrap_or(0);
        let other = Ipv4Addr::new(10, 77, 0, 3 + (kind >> 4 & 3));
        let mac = if kind & 0x40 != 0 { [2, 0, 0, 0, 0, kind] } else { PEER_MAC };
        let frame = match kind % 5 {
            0 => wire::arp(1, mac, [0xff; 6], (mac, PEER), ([0; 6], US)),
            1 => wire::arp(2, mac, US_MAC, (mac, PEER), (US_MAC, US)),
            2 => wire::arp(2, mac, US_MAC, (mac, other), (US_MAC, US)),
            // Someone else claims our address (RFC 5227 conflict).
            3 => wire::arp(2, mac, [0xff; 6], (mac, US), ([0; 6], US)),
            _ => wire::arp(u16::from(kind >> 5), mac, [0xff; 6], (mac, other), ([0; 6], other)),
        };
        self.receive(&frame);
    }

    fn fragment(&mut self, input: &mut Input<'_>) {
        let id = input.u8().unwrap_or(0);
        let offset = input.u16().unwrap_or(0);
        let flags = input.u8().unwrap_or(0);
        let proto = [PROTO_UDP, PROTO_ICMP, PROTO_TCP, 99][usize::from(input.u8().unwrap_or(0) & 3)];
        let len = usize::from(input.u8().unwrap_or(0)) * 8 + usize::from(flags & 7);
        let payload = input.payload(len);
        let frag = (offset & 0x1fff) | if flags & 0x80 != 0 { 0x2000 } else { 0 };
        let ip = IpFields { proto, id: u16::from(id % 4), frag, ttl: 64 };
        let mut f = Vec::with_capacity(34 + payload.len());
        wire::ethernet(&mut f, PEER_MAC, US_MAC, wire::ETHERTYPE_IPV4);
        wire::ipv4(&mut f, PEER, US, ip, payload.len());
        f.extend_from_slice(&payload);
        self.receive(&f);
    }

    fn fd(&self, sel: u8) -> Fd {
        match self.open.len() {
            0 => FIRST_FD + Fd::from(sel % 4),
            n => self.open[usize::from(sel) % n],
        }
    }

    /// One call through the descriptor table; errors are answers, not failures.
    fn call(&mut self, input: &mut Input<'_>) {
        let call = input.u8().unwrap_or(0);
        let fd = self.fd(input.u8().unwrap_or(0));
        let arg = input.u8().unwrap_or(0);
        let value = input.u16().unwrap_or(0);
        let (s, now) = (&mut self.stack, self.now);
        let local = |arg: u8| {
            let port = LOCAL_PORTS[usize::from(arg) & 3];
            let ip = if arg & 4 != 0 { US } else { Ipv4Addr::UNSPECIFIED };
            SocketAddr::V4(SocketAddrV4::new(ip, port))
        };
        let remote = |arg: u8| {
            let ip = match arg >> 2 & 3 {
                0 => PEER,
                1 => Ipv4Addr::new(10, 77, 0, 9),
                2 => Ipv4Addr::new(192, 0, 2, 1),
                _ => US,
            };
            SocketAddr::V4(SocketAddrV4::new(ip, PEER_PORTS[usize::from(arg) & 3]))
        };
        match call % 14 {
            0 | 1 => {
                let ty = if call % 14 == 0 { SOCK_STREAM } else { SOCK_DGRAM };
                let ty = ty | if arg & 1 != 0 { SOCK_NONBLOCK } else { 0 };
                if let Ok(fd) = self.fds.socket(s, AF_INET, ty, 0) {
                    self.open.push(fd);
                }
            }
            2 => {
                let _ = self.fds.bind(s, fd, local(arg));
            }
            3 => {
                let _ = self.fds.listen(s, fd, i32::from(arg as i8));
            }
            4 => {
                let _ = self.fds.connect(s, now, fd, remote(arg));
            }
            5 => {
                let data = crate::pattern(usize::from(value) % 4096);
                let _ = self.fds.send(s, now, fd, &data, MSG_DONTWAIT);
            }
            6 => {
                let mut buf = vec![0; usize::from(value) % 4096];
                let flags = [0, MSG_PEEK, MSG_TRUNC, MSG_WAITALL][usize::from(arg) & 3] | MSG_DONTWAIT;
                let _ = self.fds.recv(s, now, fd, &mut buf, flags);
            }
            7 => {
                if self.fds.close(s, now, fd).is_ok() {
                    self.open.retain(|&f| f != fd);
                }
            }
            8 => {
                let _ = self.fds.shutdown(s, now, fd, i32::from(arg % 4));
            }
            9 => {
                if let Ok((fd, _)) = self.fds.accept(s, now, fd) {
                    self.open.push(fd);
                }
            }
            10 => {
                let (level, name, val) = option(arg, value);
                let _ = self.fds.setsockopt(s, now, fd, level, name, val);
            }
            11 => {
                let data = crate::pattern(usize::from(value) % 3000);
                let _ = self.fds.sendto(s, now, fd, &data, MSG_DONTWAIT, Some(remote(arg)));
            }
            12 => {
                let _ = self.fds.connect_status(s, now, fd);
                let _ = self.fds.getsockopt(s, fd, SOL_SOCKET, SO_ERROR);
                let _ = self.fds.revents(s, fd, POLLIN | POLLOUT);
                let _ = self.fds.getpeername(s, fd);
                let _ = self.fds.getsockname(s, fd);
            }
            _ => {
                let _ = self.fds.disconnect(s, now, fd);
            }
        }
    }

    /// The invariants that hold after every step.
    pub fn check(&mut self) {
        let c = self.stack.counters();
        let l = &c.link;
        assert_eq!(
            l.rx_frames,
            l.rx_delivered + l.rx_held + l.rx_dropped,
            "every frame in ends delivered, held or dropped, once"
        );
        // TIME-WAITs are outside max_connections (issue 13, item 3), under their own bound.
        let (tcp, _) = self.stack.tcp();
        let (tw, max_tw) = (tcp.time_wait_count(), tcp.config().max_tw_buckets);
        let conns = tcp.connection_count() - tw;
        assert!(conns <= MAX_CONNECTIONS, "{conns} connections over the limit {MAX_CONNECTIONS}");
        assert!(tw <= max_tw, "{tw} TIME-WAITs over the limit {max_tw}");
        assert!(self.fds.len() <= MAX_FDS);
        assert!(!self.stack.has_transmit(), "frames left after transmit");
    }

    /// Runs time ahead with no input: every timer must end or move at least
    /// [`LONG`] ahead, within a bounded number of polls.
    pub fn quiesce(&mut self) {
        for _ in 0..QUIESCE_POLLS {
            match self.stack.poll_at() {
                Some(t) if t <= self.now + LONG => {
                    self.now = self.now.max(t);
                    self.poll();
                    self.check();
                }
                _ => {
                    let _ = self.stack.socket_table(self.now);
                    return;
                }
            }
        }
        panic!("timers still running after {QUIESCE_POLLS} polls, next at {:?}", self.stack.poll_at());
    }
}

/// TCP options chosen by the bits of `opts`, some of them malformed on purpose.
fn tcp_options(opts: u8, stack_next: u32, now: Instant) -> Vec<u8> {
    let mut o = Vec::new();
    if opts & 0x01 != 0 {
        let mss: u16 = [1, 64, 536, 1460][usize::from(opts >> 5 & 3)];
        o.extend_from_slice(&[2, 4]);
        o.extend_from_slice(&mss.to_be_bytes());
    }
    if opts & 0x02 != 0 {
        o.extend_from_slice(&[1, 3, 3, opts >> 4]);
    }
    if opts & 0x04 != 0 {
        o.extend_from_slice(&[1, 1, 4, 2]);
    }
    if opts & 0x08 != 0 {
        let ts = (now.as_micros() / 1000) as u32;
        o.extend_from_slice(&[1, 1, 8, 10]);
        o.extend_from_slice(&ts.to_be_bytes());
        o.extend_from_slice(&[0; 4]);
    }
    if opts & 0x10 != 0 {
        o.extend_from_slice(&[1, 1, 5, 10]);
        o.extend_from_slice(&stack_next.wrapping_sub(1000).to_be_bytes());
        o.extend_from_slice(&stack_next.to_be_bytes());
    }
    if opts & 0x60 == 0x60 && opts & 0x01 == 0 {
        // An option whose length runs past the header, or is zero.
        o.extend_from_slice(&[2, if opts & 0x80 != 0 { 0 } else { 40 }]);
    }
    o
}

/// A socket option to set, from `arg`, with `value`.
fn option(arg: u8, value: u16) -> (i32, i32, OptVal) {
    let int = OptVal::Int(i32::from(value as i16));
    match arg % 10 {
        0 => (SOL_SOCKET, SO_RCVBUF, int),
        1 => (SOL_SOCKET, SO_SNDBUF, int),
        2 => (SOL_TCP, TCP_NODELAY, OptVal::Int(i32::from(value & 1))),
        3 => (
            SOL_SOCKET,
            SO_LINGER,
            OptVal::Linger(Linger { l_onoff: i32::from(value & 1), l_linger: i32::from(value >> 8) }),
        ),
        4 => (SOL_SOCKET, SO_KEEPALIVE, OptVal::Int(i32::from(value & 1))),
        5 => (SOL_TCP, TCP_KEEPIDLE, int),
        6 => (SOL_TCP, TCP_KEEPINTVL, int),
        7 => (SOL_TCP, TCP_KEEPCNT, int),
        8 => (SOL_SOCKET, SO_REUSEADDR, OptVal::Int(i32::from(value & 1))),
        _ => (SOL_IP, IP_TTL, int),
    }
}
