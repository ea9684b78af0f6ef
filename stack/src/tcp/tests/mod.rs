//! Connection tests in virtual time, without IP: a [`TestNet`] collects the
//! segments a [`Tcp`] sends, and either a scripted peer (segments built by hand)
//! or a second [`Tcp`] across a [`Wire`] that can lose, duplicate and reorder
//! answers them.

mod close;
mod conformance_ip;
mod conformance_misc;
mod conformance_open;
mod conformance_options;
mod conformance_support;
mod conformance_window;
mod congestion;
mod cookies;
mod flow;
mod fuzz;
mod handshake;
mod hardening;
mod kept_frames;
mod loss;
mod offload;
mod reset;
mod retransmit;
mod stack;
mod time_wait;
mod transfer;
mod tso;
mod unreachable;
mod zero_copy;

use super::segment::{self, SegmentOut};
use super::*;
use crate::counters::{DropReason, TcpCounters};
use crate::time::{Duration, Instant};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use std::net::{Ipv4Addr, SocketAddrV4};

pub const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

pub fn addr(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A segment on the wire: addresses and bytes.
#[derive(Clone, Debug)]
pub struct Packet {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub bytes: Vec<u8>,
}

impl Packet {
    pub fn seg(&self) -> Seg {
        Seg::parse(self)
    }
}

/// An owned, parsed segment, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seg {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub wnd: u16,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    /// (TSval, TSecr).
    pub ts: Option<(u32, u32)>,
    /// SACK blocks in the order sent.
    pub sack: Vec<(u32, u32)>,
    pub data: Vec<u8>,
}

impl Seg {
    pub fn parse(p: &Packet) -> Seg {
        let s = segment::parse(p.src, p.dst, &p.bytes).expect("we send valid segments");
        Seg {
            src_port: s.src_port,
            dst_port: s.dst_port,
            seq: s.seq.0,
            ack: s.ack_flag.then_some(s.ack.0),
            syn: s.syn,
            fin: s.fin,
            rst: s.rst,
            psh: s.psh,
            wnd: s.wnd,
            mss: s.options.mss,
            wscale: s.options.wscale,
            sack_permitted: s.options.sack_permitted,
            ts: s.options.timestamp,
            sack: s.options.sack_blocks().iter().map(|&(l, r)| (l.0, r.0)).collect(),
            data: s.payload.to_vec(),
        }
    }

    /// tcpdump-like flags: S, F, R, P, then "." for ACK.
    pub fn flags(&self) -> String {
        let mut f = String::new();
        if self.syn {
            f.push('S');
        }
        if self.fin {
            f.push('F');
        }
        if self.rst {
            f.push('R');
        }
        if self.psh {
            f.push('P');
        }
        if self.ack.is_some() {
            f.push('.');
        }
        f
    }
}

/// The layers below TCP for tests: a mailbox.
pub struct TestNet {
    pub ip: Ipv4Addr,
    pub mtu: u16,
    pub rng: ChaCha8Rng,
    pub counters: TcpCounters,
    pub out: Vec<Packet>,
    /// Destinations TCP gave negative advice about (MUST-20).
    pub advice: Vec<Ipv4Addr>,
}

impl TcpNet for TestNet {
    fn local_ip(&self) -> Ipv4Addr {
        self.ip
    }
    fn mtu(&self) -> u16 {
        self.mtu
    }
    fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
    fn negative_advice(&mut self, _now: Instant, dst: Ipv4Addr) {
        self.advice.push(dst);
    }
    fn counters(&mut self) -> &mut TcpCounters {
        &mut self.counters
    }
    fn send_segment(
        &mut self,
        _now: Instant,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        seg: &SegmentOut,
        payload: [&[u8]; 2],
    ) -> Result<(), DropReason> {
        assert_eq!(*src.ip(), self.ip);
        let mut bytes = Vec::new();
        segment::write(&mut bytes, *src.ip(), *dst.ip(), seg, payload);
        self.out.push(Packet { src: *src.ip(), dst: *dst.ip(), bytes });
        Ok(())
    }
}

/// One TCP endpoint.
pub struct Host {
    pub tcp: Tcp,
    pub net: TestNet,
    pub drops: Vec<DropReason>,
    /// Transitions seen so far (drained from the table by `transitions`).
    pub seen: Vec<Transition>,
}

impl Host {
    pub fn new(ip: Ipv4Addr, seed: u64) -> Host {
        Host::with_config(ip, seed, TcpConfig::default())
    }

    pub fn with_config(ip: Ipv4Addr, seed: u64, cfg: TcpConfig) -> Host {
        let mut net = TestNet {
            ip,
            mtu: 1500,
            rng: ChaCha8Rng::seed_from_u64(seed),
            counters: TcpCounters::default(),
            out: Vec::new(),
            advice: Vec::new(),
        };
        let tcp = Tcp::new(&mut net, cfg);
        Host { tcp, net, drops: Vec::new(), seen: Vec::new() }
    }

    pub fn deliver(&mut self, now: Instant, p: &Packet) -> Result<(), DropReason> {
        let r = self.tcp.input_segment(now, &mut self.net, p.src, p.dst, &p.bytes);
        if let Err(e) = r {
            self.drops.push(e);
        }
        r
    }

    pub fn poll(&mut self, now: Instant) {
        self.tcp.poll_timers(now, &mut self.net);
    }

    /// Segments sent since the last call, parsed.
    pub fn out(&mut self) -> Vec<Seg> {
        self.net.out.drain(..).map(|p| p.seg()).collect()
    }

    /// The one segment sent since the last call.
    pub fn one(&mut self) -> Seg {
        let mut v = self.out();
        assert_eq!(v.len(), 1, "expected one segment, got {v:#?}");
        v.pop().unwrap()
    }

    pub fn nothing(&mut self) {
        let v = self.out();
        assert!(v.is_empty(), "expected no segment, got {v:#?}");
    }

    /// Every transition so far as "FROM>TO (cause)" strings, for one connection.
    pub fn transitions(&mut self, id: ConnId) -> Vec<String> {
        let seen = &mut self.seen;
        self.tcp.drain_transitions(|t| seen.push(*t));
        self.seen.iter().filter(|t| t.conn == id).map(|t| format!("{}>{} ({})", t.from, t.to, t.cause)).collect()
    }

    pub fn all_transitions(&mut self) -> Vec<Transition> {
        let seen = &mut self.seen;
        self.tcp.drain_transitions(|t| seen.push(*t));
        self.seen.clone()
    }

    pub fn state(&self, id: ConnId) -> State {
        self.tcp.state(id).unwrap()
    }

    pub fn send(&mut self, now: Instant, id: ConnId, data: &[u8]) -> Result<usize, TcpError> {
        self.tcp.send(now, &mut self.net, id, data)
    }

    pub fn recv_all(&mut self, now: Instant, id: ConnId) -> Result<Vec<u8>, TcpError> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.tcp.recv(now, &mut self.net, id, &mut buf, false) {
                Ok(0) => return Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(TcpError::WouldBlock) => return Ok(out),
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => return Ok(out),
            }
        }
    }
}

/// Builds a segment from the scripted peer. `flags` uses the letters S, A, F,
/// R, P; `ack` is only sent with A.
pub fn seg(src_port: u16, dst_port: u16, seq: u32, ack: u32, flags: &str, wnd: u16) -> SegmentOut {
    SegmentOut {
        src_port,
        dst_port,
        seq: Seq(seq),
        ack: flags.contains('A').then_some(Seq(ack)),
        syn: flags.contains('S'),
        fin: flags.contains('F'),
        rst: flags.contains('R'),
        psh: flags.contains('P'),
        wnd,
        ..Default::default()
    }
}

pub fn packet(src: Ipv4Addr, dst: Ipv4Addr, s: &SegmentOut, data: &[u8]) -> Packet {
    let mut bytes = Vec::new();
    segment::write(&mut bytes, src, dst, s, [data, &[]]);
    Packet { src, dst, bytes }
}

/// A scripted peer at IP_B talking to a Host at IP_A.
pub struct Peer {
    pub port: u16,
    pub our_port: u16,
    /// The peer's next sequence number.
    pub seq: u32,
    /// What the peer acknowledges (the host's next sequence number).
    pub ack: u32,
    pub wnd: u16,
}

impl Peer {
    pub fn send(&mut self, host: &mut Host, now: Instant, flags: &str, data: &[u8]) -> Result<(), DropReason> {
        let s = seg(self.port, self.our_port, self.seq, self.ack, flags, self.wnd);
        let r = host.deliver(now, &packet(IP_B, IP_A, &s, data));
        self.seq = self.seq.wrapping_add(data.len() as u32 + s.syn as u32 + s.fin as u32);
        r
    }

    /// Sends a segment with explicit numbers, not advancing the peer's state.
    pub fn raw(
        &self,
        host: &mut Host,
        now: Instant,
        seq: u32,
        ack: u32,
        flags: &str,
        data: &[u8],
    ) -> Result<(), DropReason> {
        let s = seg(self.port, self.our_port, seq, ack, flags, self.wnd);
        host.deliver(now, &packet(IP_B, IP_A, &s, data))
    }
}

pub const T0: Instant = Instant::from_secs(1000);

/// Host at IP_A connects to a scripted peer at IP_B:80 that answers with
/// `peer_mss`; returns the established connection and the peer.
pub fn active_established(host: &mut Host, peer_mss: Option<u16>, peer_wnd: u16) -> (ConnId, Peer) {
    let id = host.tcp.connect(T0, &mut host.net, None, addr(IP_B, 80)).unwrap();
    let syn = host.one();
    assert!(syn.syn && syn.ack.is_none());
    let mut peer = Peer { port: 80, our_port: syn.src_port, seq: 5000, ack: syn.seq.wrapping_add(1), wnd: peer_wnd };
    let mut s = seg(80, syn.src_port, peer.seq, peer.ack, "SA", peer_wnd);
    s.mss = peer_mss;
    host.deliver(T0 + ms(10), &packet(IP_B, IP_A, &s, b"")).unwrap();
    peer.seq += 1;
    let ack = host.one();
    assert_eq!((ack.flags().as_str(), ack.seq, ack.ack), (".", peer.ack, Some(peer.seq)));
    assert_eq!(host.state(id), State::Established);
    (id, peer)
}

/// A scripted peer at IP_B:4000 connects to the host listening on IP_A:80;
/// returns the listener, the accepted connection and the peer.
pub fn passive_established(host: &mut Host) -> (ConnId, ConnId, Peer) {
    let l = host.tcp.listen(&mut host.net, addr(IP_A, 80), 8).unwrap();
    let mut peer = Peer { port: 4000, our_port: 80, seq: 7000, ack: 0, wnd: 65535 };
    let mut s = seg(4000, 80, peer.seq, 0, "S", 65535);
    s.mss = Some(1460);
    host.deliver(T0, &packet(IP_B, IP_A, &s, b"")).unwrap();
    peer.seq += 1;
    let synack = host.one();
    assert_eq!(synack.flags(), "S.");
    assert_eq!(synack.ack, Some(7001));
    peer.ack = synack.seq.wrapping_add(1);
    assert_eq!(host.tcp.accept(l).unwrap(), None, "not before the handshake completes");
    peer.send(host, T0 + ms(1), "A", b"").unwrap();
    host.nothing();
    let (id, remote) = host.tcp.accept(l).unwrap().expect("established");
    assert_eq!(remote, addr(IP_B, 4000));
    (l, id, peer)
}

/// Two hosts joined by a wire that delays, and may lose, duplicate and reorder.
pub struct Wire {
    pub a: Host,
    pub b: Host,
    pub now: Instant,
    pub rng: ChaCha8Rng,
    pub delay: Duration,
    pub loss: f64,
    pub dup: f64,
    pub reorder: f64,
    /// (delivery time, order, to B, packet).
    pub in_flight: Vec<(Instant, u64, bool, Packet)>,
    order: u64,
    pub delivered: u64,
    pub lost: u64,
}

impl Wire {
    pub fn new(seed: u64) -> Wire {
        Wire::with_config(seed, TcpConfig::default())
    }

    pub fn with_config(seed: u64, cfg: TcpConfig) -> Wire {
        Wire {
            a: Host::with_config(IP_A, seed, cfg.clone()),
            b: Host::with_config(IP_B, seed.wrapping_add(1), cfg),
            now: T0,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed),
            delay: ms(5),
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            in_flight: Vec::new(),
            order: 0,
            delivered: 0,
            lost: 0,
        }
    }

    fn collect(&mut self) {
        let mut out: Vec<(bool, Packet)> = Vec::new();
        out.extend(self.a.net.out.drain(..).map(|p| (true, p)));
        out.extend(self.b.net.out.drain(..).map(|p| (false, p)));
        for (to_b, p) in out {
            if self.loss > 0.0 && self.rng.random_bool(self.loss) {
                self.lost += 1;
                continue;
            }
            let copies = if self.dup > 0.0 && self.rng.random_bool(self.dup) { 2 } else { 1 };
            for _ in 0..copies {
                let mut at = self.now + self.delay;
                if self.reorder > 0.0 && self.rng.random_bool(self.reorder) {
                    at += Duration::from_micros(self.rng.random_range(0..(self.delay.as_micros() as u64 * 3)));
                }
                self.order += 1;
                self.in_flight.push((at, self.order, to_b, p.clone()));
            }
        }
    }

    /// The next time something happens: a delivery or a timer.
    fn next_event(&self) -> Option<Instant> {
        let wire = self.in_flight.iter().map(|e| e.0).min();
        time::earliest(time::earliest(wire, self.a.tcp.poll_at()), self.b.tcp.poll_at())
    }

    /// Advances to the next event and handles it. False if nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.collect();
        let Some(t) = self.next_event() else { return false };
        self.now = self.now.max(t);
        while let Some(i) = (0..self.in_flight.len())
            .filter(|&i| self.in_flight[i].0 <= self.now)
            .min_by_key(|&i| (self.in_flight[i].0, self.in_flight[i].1))
        {
            let (_, _, to_b, p) = self.in_flight.swap_remove(i);
            self.delivered += 1;
            if to_b {
                let _ = self.b.deliver(self.now, &p);
            } else {
                let _ = self.a.deliver(self.now, &p);
            }
        }
        self.a.poll(self.now);
        self.b.poll(self.now);
        self.collect();
        true
    }

    /// Steps until `cond` holds (true) or `limit` of virtual time passes (false).
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&mut Wire) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            if cond(self) {
                return true;
            }
            if !self.step() || self.now > end {
                return cond(self);
            }
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.next_event().is_some_and(|t| t <= end) {
            self.step();
        }
        self.now = end;
        self.collect();
    }

    /// A connects to B listening on port 80: returns (A's connection, B's listener, B's connection).
    pub fn connect(&mut self) -> (ConnId, ConnId, ConnId) {
        let l = self.b.tcp.listen(&mut self.b.net, addr(IP_B, 80), 16).unwrap();
        let c = self.a.tcp.connect(self.now, &mut self.a.net, None, addr(IP_B, 80)).unwrap();
        let mut accepted = None;
        let ok = self.run_until(secs(600), |w| {
            if accepted.is_none() {
                accepted = w.b.tcp.accept(l).unwrap();
            }
            accepted.is_some() && w.a.tcp.state(c) == Ok(State::Established)
        });
        assert!(ok, "handshake did not complete");
        (c, l, accepted.unwrap().0)
    }
}

/// Bytes of a recognisable pattern.
pub fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + i / 251) as u8).wrapping_add(salt)).collect()
}

use crate::time;

/// The start of every two-stack test: `b` (10.0.0.2) listens on port 80 and
/// `a` connects to it. Returns (b's listener, a's connection); carrying the
/// frames between the two is the caller's, since that is what the tests vary.
pub fn listen_and_connect(a: &mut crate::Stack, b: &mut crate::Stack, now: Instant) -> (ConnId, ConnId) {
    let l = {
        let (tcp, net) = b.tcp();
        tcp.listen(net, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80), 4).unwrap()
    };
    let c = {
        let (tcp, net) = a.tcp();
        tcp.connect(now, net, None, SocketAddrV4::new(IP_B, 80)).unwrap()
    };
    (l, c)
}
