//! Through the whole stack: two `Stack`s exchanging Ethernet frames (ARP,
//! IPv4 and TCP together).

use crate::config::Config;
use crate::ethernet::MacAddr;
use crate::tcp::{Shutdown, State, TcpError};
use crate::time::{Duration, Instant};
use crate::Stack;
use std::net::{Ipv4Addr, SocketAddrV4};

fn stack(last: u8) -> Stack {
    let mut c = Config::new(MacAddr([2, 0, 0, 0, 0, last]), Ipv4Addr::new(10, 0, 0, last), 24);
    c.seed = last as u64;
    Stack::new(c).unwrap()
}

/// Shuttles frames between the two stacks and runs their timers until `cond`.
fn run(
    a: &mut Stack,
    b: &mut Stack,
    now: &mut Instant,
    limit: Duration,
    mut cond: impl FnMut(&mut Stack, &mut Stack, Instant) -> bool,
) -> bool {
    let end = *now + limit;
    loop {
        if cond(a, b, *now) {
            return true;
        }
        let mut ab = Vec::new();
        let mut ba = Vec::new();
        a.transmit(|f| ab.push(f.to_vec()));
        b.transmit(|f| ba.push(f.to_vec()));
        if ab.is_empty() && ba.is_empty() {
            let next = crate::time::earliest(a.poll_at(), b.poll_at());
            match next {
                Some(t) if t <= end => *now = t.max(*now),
                _ => return cond(a, b, *now),
            }
        } else {
            *now += Duration::from_micros(100);
        }
        for f in ab {
            b.receive(*now, &f);
        }
        for f in ba {
            a.receive(*now, &f);
        }
        a.poll(*now);
        b.poll(*now);
    }
}

#[test]
fn stack_to_stack_connect_transfer_close() {
    let mut a = stack(1);
    let mut b = stack(2);
    let mut now = Instant::from_secs(1);
    a.start(now);
    b.start(now);
    let (l, c) = super::listen_and_connect(&mut a, &mut b, now);
    let mut server = None;
    assert!(run(&mut a, &mut b, &mut now, Duration::from_secs(10), |a, b, _| {
        if server.is_none() {
            server = b.tcp().0.accept(l).unwrap();
        }
        server.is_some() && a.tcp().0.state(c) == Ok(State::Established)
    }));
    let (s, peer) = server.unwrap();
    assert_eq!(*peer.ip(), Ipv4Addr::new(10, 0, 0, 1));
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    assert!(run(&mut a, &mut b, &mut now, Duration::from_secs(30), |a, b, now| {
        let (tcp, net) = a.tcp();
        while sent < data.len() {
            match tcp.send(now, net, c, &data[sent..]) {
                Ok(n) => sent += n,
                Err(TcpError::WouldBlock) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let (tcp, net) = b.tcp();
        while let Ok(n) = tcp.recv(now, net, s, &mut buf, false) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got.len() == data.len()
    }));
    assert!(got == data);
    {
        let (tcp, net) = a.tcp();
        tcp.shutdown(now, net, c, Shutdown::Write).unwrap();
    }
    assert!(run(&mut a, &mut b, &mut now, Duration::from_secs(5), |_, b, _| b.tcp().0.state(s) == Ok(State::CloseWait)));
    {
        let (tcp, net) = b.tcp();
        tcp.close(now, net, s).unwrap();
    }
    assert!(run(&mut a, &mut b, &mut now, Duration::from_secs(5), |a, _, _| a.tcp().0.state(c) == Ok(State::TimeWait)));
    assert!(a.counters().tcp.tx_segments > 100);
    // (The other side's gratuitous ARP is an ARP drop; TCP dropped nothing.)
    let tcp_drops: u64 = b.counters().drops.iter().filter(|(r, _)| r.layer() == "tcp").map(|(_, n)| n).sum();
    assert_eq!(tcp_drops, 0, "{}", b.counters().report());
}

#[test]
fn stack_answers_closed_port_with_reset() {
    let mut a = stack(1);
    let mut b = stack(2);
    let mut now = Instant::from_secs(1);
    let c = {
        let (tcp, net) = a.tcp();
        tcp.connect(now, net, None, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 9)).unwrap()
    };
    assert!(run(&mut a, &mut b, &mut now, Duration::from_secs(5), |a, _, _| a.tcp().0.state(c) == Ok(State::Closed)));
    assert_eq!(a.tcp().0.take_error(c).unwrap(), Some(TcpError::ConnectionRefused));
    assert_eq!(b.counters().drops.get(crate::DropReason::TcpNoSocket), 1);
    assert_eq!(b.counters().tcp.tx_resets, 1);
}

#[test]
fn connect_without_route_fails_at_once() {
    let mut a = stack(1);
    let (tcp, net) = a.tcp();
    let r = tcp.connect(Instant::from_secs(1), net, None, SocketAddrV4::new(Ipv4Addr::new(192, 168, 9, 9), 80));
    assert_eq!(r, Err(TcpError::HostUnreachable));
    assert_eq!(tcp.connection_count(), 0);
    assert_eq!(a.counters().drops.get(crate::DropReason::IpNoRoute), 1);
}

#[test]
fn segments_to_a_broadcast_address_are_dropped() {
    use crate::ipv4::IpPacket;
    let mut a = stack(1);
    let (tcp, net) = a.tcp();
    tcp.listen(net, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80), 4).unwrap();
    // RFC 1122 section 4.2.3.10: a SYN to a broadcast address is not answered.
    let packet = IpPacket {
        src: Ipv4Addr::new(10, 0, 0, 2),
        dst: Ipv4Addr::new(10, 0, 0, 255),
        protocol: etherparse::IpNumber::TCP,
        ttl: 64,
        header: &[],
        payload: &[0u8; 20],
        broadcast: true,
        csum_trusted: false,
    };
    assert_eq!(tcp.input(Instant::from_secs(1), net, &packet), Err(crate::DropReason::TcpBroadcast));
    assert!(!a.has_transmit());
}

#[test]
fn the_stack_config_carries_tcp_settings() {
    let mut c = Config::new(MacAddr([2, 0, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 0, 1), 24);
    c.tcp.msl = Duration::from_secs(5);
    c.tcp.default_options.nodelay = true;
    let mut s = Stack::new(c).unwrap();
    let (tcp, net) = s.tcp();
    assert_eq!(tcp.config().msl, Duration::from_secs(5));
    let id = tcp.listen(net, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80), 4).unwrap();
    assert!(tcp.options(id).unwrap().nodelay);
}

/// An Ethernet frame carrying a SYN from `src` (spoofed, on-link) to 10.0.0.2:80.
fn spoofed_syn(src: Ipv4Addr, port: u16, seq: u32) -> Vec<u8> {
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x66], [2, 0, 0, 0, 0, 2])
        .ipv4(src.octets(), [10, 0, 0, 2], 64)
        .tcp(port, 80, seq, 65535)
        .syn()
        .write(&mut frame, &[])
        .unwrap();
    frame
}

#[test]
fn a_spoofed_syn_flood_costs_a_bounded_number_of_arp_requests() {
    // Issue 13, item 2: 400 SYNs from spoofed on-link sources in 0.1 s made the
    // stack broadcast 770 ARP requests over the following minutes, each SYN,ACK
    // retransmission starting a new round for its unanswered source.
    let mut b = stack(2);
    let mut now = Instant::from_secs(1);
    b.start(now);
    b.transmit(|_| {});
    let announced = b.counters().arp.tx_requests;
    let (tcp, net) = b.tcp();
    tcp.listen(net, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80), 256).unwrap();
    for i in 0..400u32 {
        let src = Ipv4Addr::new(10, 0, 0, 10 + (i % 200) as u8);
        b.receive(now + Duration::from_micros(i as u64 * 250), &spoofed_syn(src, 1000 + i as u16, i * 7919));
    }
    let end = now + Duration::from_secs(600);
    while let Some(t) = b.poll_at().filter(|&t| t <= end) {
        now = now.max(t);
        b.poll(now);
        b.transmit(|_| {});
    }
    // 200 distinct sources: at most max_requests (3) each, once.
    let requests = b.counters().arp.tx_requests - announced;
    assert!(requests <= 3 * 200, "{requests} ARP requests");
    assert_eq!(b.tcp().0.connection_count(), 0, "every half-open connection given up");
}

/// Runs `a`'s timers alone, nobody answering what it sends, until `cond`.
fn run_alone(a: &mut Stack, now: &mut Instant, limit: Duration, mut cond: impl FnMut(&mut Stack) -> bool) -> bool {
    let end = *now + limit;
    loop {
        a.transmit(|_| {});
        if cond(a) {
            return true;
        }
        match a.poll_at() {
            Some(t) if t <= end => *now = t.max(*now),
            _ => return cond(a),
        }
        a.poll(*now);
    }
}

#[test]
fn connect_to_an_address_nobody_answers_fails_after_arp_gives_up() {
    // Issue 14, item 4: EHOSTUNREACH came after 247 s of SYN retries. Linux
    // fails the connect when its neighbour entry does (3 broadcast requests
    // 1 s apart, about 3 s); so does ARP's default schedule here.
    let mut a = stack(1);
    let nobody = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 77), 80);
    let mut now = Instant::from_secs(1);
    for attempt in 0..2 {
        let start = now;
        let c = {
            let (tcp, net) = a.tcp();
            tcp.connect(now, net, None, nobody).unwrap()
        };
        assert!(run_alone(&mut a, &mut now, Duration::from_secs(300), |a| a.tcp().0.state(c) == Ok(State::Closed)));
        let took = now.saturating_duration_since(start);
        assert!(took <= Duration::from_millis(3500), "attempt {attempt} failed after {took:?}");
        assert_eq!(a.tcp().0.take_error(c).unwrap(), Some(TcpError::HostUnreachable), "attempt {attempt}");
        // The first attempt waits for ARP's three requests; the second, made
        // while the address is held as failed, is told at once.
        if attempt == 0 {
            assert!(took >= Duration::from_millis(2500), "{took:?}");
        }
    }
    assert_eq!(a.counters().arp.tx_requests, 3);
    assert_eq!(a.counters().arp.resolution_failures, 1);
}

#[test]
fn an_established_connection_outlives_arp_failures() {
    // RFC 1122 section 4.2.3.9: a soft error. The peer goes silent; its ARP
    // entry lapses and is asked again in vain, and the connection keeps
    // retransmitting until R2, then reports host unreachable.
    let mut a = stack(1);
    let mut b = stack(2);
    let mut now = Instant::from_secs(1);
    let (l, c) = super::listen_and_connect(&mut a, &mut b, now);
    assert!(run(&mut a, &mut b, &mut now, Duration::from_secs(5), |a, b, _| {
        b.tcp().0.accept(l).unwrap().is_some() && a.tcp().0.state(c) == Ok(State::Established)
    }));
    drop(b);
    {
        let (tcp, net) = a.tcp();
        tcp.send(now, net, c, b"are you there?").unwrap();
    }
    let failures = |a: &mut Stack| a.counters().arp.resolution_failures;
    assert!(run_alone(&mut a, &mut now, Duration::from_secs(600), |a| failures(a) >= 1));
    assert_eq!(a.tcp().0.state(c), Ok(State::Established));
    assert_eq!(a.tcp().0.take_error(c).unwrap(), None);
    assert!(run_alone(&mut a, &mut now, Duration::from_secs(3600), |a| a.tcp().0.state(c) == Ok(State::Closed)));
    assert_eq!(a.tcp().0.take_error(c).unwrap(), Some(TcpError::HostUnreachable));
}
