//! Socket semantics over UDP in virtual time: two stacks with descriptor tables on a
//! virtual wire (`sim::Link`), no threads, no clocks. Every error case of the
//! calls, ephemeral ports, poll readiness, truncation and connected filtering.

use sockets_api::options::SOCK_MIN_RCVBUF;
use sockets_api::sim::{Link, A_IP, B_IP};
use sockets_api::*;
use stack::{Config, DropReason, Duration, Instant, MacAddr};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn v4(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

/// `call!(host, method(args))` calls the descriptor table of `host` with its stack.
macro_rules! call {
    ($host:expr, $method:ident ( $($arg:expr),* $(,)? )) => {{
        let h = &mut $host;
        h.sockets.$method(&mut h.stack, $($arg),*)
    }};
}

fn udp(host: &mut sockets_api::sim::Host) -> Fd {
    call!(*host, socket(AF_INET, SOCK_DGRAM, 0)).unwrap()
}

/// Lets a and b learn each other's MAC address (a datagram to b's closed port 9
/// makes a ask by ARP), so that a burst is not held in ARP's bounded queue.
fn resolve(l: &mut Link) {
    let fd = udp(&mut l.a);
    call!(l.a, sendto(l.now, fd, b"", 0, Some(sa("10.0.0.2:9")))).unwrap();
    l.run();
    call!(l.a, close(l.now, fd)).unwrap();
}

fn bound(host: &mut sockets_api::sim::Host, addr: &str) -> Fd {
    let fd = udp(host);
    call!(*host, bind(fd, sa(addr))).unwrap();
    fd
}

#[test]
fn datagrams_cross_in_order_with_their_source() {
    let mut l = Link::new();
    let a = udp(&mut l.a);
    let b = bound(&mut l.b, "0.0.0.0:9000");
    for i in 0..5u8 {
        assert_eq!(call!(l.a, sendto(l.now, a, &[i; 10], 0, Some(sa("10.0.0.2:9000")))), Ok(10));
    }
    l.run();
    let a_addr = call!(l.a, getsockname(a)).unwrap();
    let mut buf = [0u8; 64];
    for i in 0..5u8 {
        let (n, from) = call!(l.b, recvfrom(l.now, b, &mut buf, 0)).unwrap();
        assert_eq!((n, &buf[..n]), (10, &[i; 10][..]));
        assert_eq!(from, SocketAddrV4::new(A_IP, a_addr.port()));
    }
    assert_eq!(call!(l.b, recvfrom(l.now, b, &mut buf, 0)), Err(Errno::EAGAIN));
    assert_eq!(l.b.stack.counters().udp.rx_datagrams, 5);
    assert_eq!(l.a.stack.counters().udp.tx_datagrams, 5);
}

#[test]
fn implicit_bind_picks_an_ephemeral_port_not_in_order() {
    let mut l = Link::new();
    let mut ports = Vec::new();
    for _ in 0..50 {
        let fd = udp(&mut l.a);
        assert_eq!(call!(l.a, getsockname(fd)), Ok(v4("0.0.0.0:0")));
        call!(l.a, sendto(l.now, fd, b"x", 0, Some(sa("10.0.0.2:9")))).unwrap();
        let name = call!(l.a, getsockname(fd)).unwrap();
        assert_eq!(*name.ip(), Ipv4Addr::UNSPECIFIED);
        assert!((49152..=65535).contains(&name.port()), "{name}");
        ports.push(name.port());
    }
    let mut sorted = ports.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ports.len());
    let successive = ports.windows(2).filter(|w| w[1] == w[0] + 1).count();
    assert!(successive < 3, "{ports:?}");
    // Port 0 in bind also picks one; another stack with another seed picks others.
    let fd = bound(&mut l.b, "0.0.0.0:0");
    assert!(call!(l.b, getsockname(fd)).unwrap().port() >= 49152);
}

#[test]
fn bind_errors() {
    let mut l = Link::new();
    let a = bound(&mut l.a, "0.0.0.0:5000");
    assert_eq!(call!(l.a, bind(a, sa("0.0.0.0:5001"))), Err(Errno::EINVAL), "already bound");
    let b = udp(&mut l.a);
    assert_eq!(call!(l.a, bind(b, sa("0.0.0.0:5000"))), Err(Errno::EADDRINUSE));
    assert_eq!(call!(l.a, bind(b, sa("10.0.0.1:5000"))), Err(Errno::EADDRINUSE));
    assert_eq!(call!(l.a, bind(b, sa("10.0.0.2:5000"))), Err(Errno::EADDRNOTAVAIL), "b's address, not ours");
    // 127/8 is ours (the loopback's), so 0.0.0.0:5000 holds it too, as on Linux.
    assert_eq!(call!(l.a, bind(b, sa("127.0.0.1:5000"))), Err(Errno::EADDRINUSE));
    assert_eq!(call!(l.a, bind(b, sa("[::]:5000"))), Err(Errno::EAFNOSUPPORT));
    assert_eq!(call!(l.a, bind(99, sa("0.0.0.0:5000"))), Err(Errno::EBADF));
    // SO_REUSEADDR on both lets them share; on one only does not.
    call!(l.a, setsockopt(l.now, b, SOL_SOCKET, SO_REUSEADDR, 1.into())).unwrap();
    assert_eq!(call!(l.a, bind(b, sa("0.0.0.0:5000"))), Err(Errno::EADDRINUSE));
    call!(l.a, setsockopt(l.now, a, SOL_SOCKET, SO_REUSEADDR, 1.into())).unwrap();
    assert_eq!(call!(l.a, bind(b, sa("0.0.0.0:5000"))), Ok(()));
    // Closing frees the port.
    let c = udp(&mut l.a);
    call!(l.a, close(l.now, a)).unwrap();
    call!(l.a, close(l.now, b)).unwrap();
    assert_eq!(call!(l.a, bind(c, sa("10.0.0.1:5000"))), Ok(()));
    assert_eq!(call!(l.a, getsockname(c)), Ok(v4("10.0.0.1:5000")));
}

#[test]
fn every_call_on_a_closed_descriptor_is_ebadf() {
    let mut l = Link::new();
    let fd = udp(&mut l.a);
    call!(l.a, close(l.now, fd)).unwrap();
    let now = l.now;
    let h = &mut l.a;
    let (t, st) = (&mut h.sockets, &mut h.stack);
    assert_eq!(t.close(st, now, fd), Err(Errno::EBADF));
    assert_eq!(t.bind(st, fd, sa("0.0.0.0:1")), Err(Errno::EBADF));
    assert_eq!(t.connect(st, now, fd, sa("10.0.0.2:1")), Err(Errno::EBADF));
    assert_eq!(t.disconnect(st, Instant::ZERO, fd), Err(Errno::EBADF));
    assert_eq!(t.listen(st, fd, 1), Err(Errno::EBADF));
    assert_eq!(t.accept(st, now, fd), Err(Errno::EBADF));
    assert_eq!(t.send(st, now, fd, b"x", 0), Err(Errno::EBADF));
    assert_eq!(t.sendto(st, now, fd, b"x", 0, Some(sa("10.0.0.2:1"))), Err(Errno::EBADF));
    assert_eq!(t.recv(st, now, fd, &mut [0; 4], 0), Err(Errno::EBADF));
    assert_eq!(t.recvfrom(st, now, fd, &mut [0; 4], 0), Err(Errno::EBADF));
    assert_eq!(t.shutdown(st, now, fd, SHUT_RDWR), Err(Errno::EBADF));
    assert_eq!(t.getsockname(st, fd), Err(Errno::EBADF));
    assert_eq!(t.getpeername(st, fd), Err(Errno::EBADF));
    assert_eq!(t.setsockopt(st, Instant::ZERO, fd, SOL_SOCKET, SO_BROADCAST, 1.into()), Err(Errno::EBADF));
    assert_eq!(t.getsockopt(st, fd, SOL_SOCKET, SO_TYPE), Err(Errno::EBADF));
    assert_eq!(t.fcntl(fd, F_GETFL, 0), Err(Errno::EBADF));
    assert_eq!(t.revents(st, fd, POLLIN), POLLNVAL);
    assert!(t.is_empty());
    assert!(st.udp().0.is_empty(), "the UDP socket went with the descriptor");
}

#[test]
fn send_errors() {
    let mut l = Link::new();
    let fd = udp(&mut l.a);
    let now = l.now;
    let h = &mut l.a;
    let (t, st) = (&mut h.sockets, &mut h.stack);
    assert_eq!(t.send(st, now, fd, b"x", 0), Err(Errno::EDESTADDRREQ));
    assert_eq!(t.sendto(st, now, fd, &vec![0; 65508], 0, Some(sa("10.0.0.2:9"))), Err(Errno::EMSGSIZE));
    assert_eq!(t.sendto(st, now, fd, b"x", 0, Some(sa("255.255.255.255:9"))), Err(Errno::EACCES));
    assert_eq!(t.sendto(st, now, fd, b"x", 0, Some(sa("10.0.0.255:9"))), Err(Errno::EACCES));
    assert_eq!(t.sendto(st, now, fd, b"x", 0, Some(sa("10.0.0.2:0"))), Err(Errno::EINVAL));
    assert_eq!(t.sendto(st, now, fd, b"x", 0, Some(sa("192.0.2.1:9"))), Err(Errno::ENETUNREACH));
    assert_eq!(t.sendto(st, now, fd, b"x", 0, Some(sa("[::1]:9"))), Err(Errno::EAFNOSUPPORT));
    assert_eq!(t.connect(st, now, fd, sa("255.255.255.255:9")), Err(Errno::EACCES));
    assert_eq!(t.connect(st, now, fd, sa("192.0.2.1:9")), Err(Errno::ENETUNREACH));
    assert_eq!(t.getpeername(st, fd), Err(Errno::ENOTCONN));
    // None of those bound the socket or sent anything.
    assert_eq!(t.getsockname(st, fd), Ok(v4("0.0.0.0:0")));
    assert_eq!(st.counters().udp.tx_datagrams, 0);
    // The largest datagram is fine; after SHUT_WR sending is EPIPE.
    assert_eq!(t.sendto(st, now, fd, &vec![0; 65507], 0, Some(sa("10.0.0.2:9"))), Ok(65507));
    assert_eq!(t.shutdown(st, now, fd, SHUT_WR), Err(Errno::ENOTCONN), "unconnected: ENOTCONN, but shut all the same");
    assert_eq!(t.sendto(st, now, fd, b"x", 0, Some(sa("10.0.0.2:9"))), Err(Errno::EPIPE));
    assert_eq!(t.shutdown(st, now, fd, 3), Err(Errno::EINVAL));
}

#[test]
fn largest_datagram_crosses_in_fragments_and_is_reassembled() {
    let mut l = Link::new();
    // 45 fragments to an unresolved address would overflow ARP's queue of 16.
    resolve(&mut l);
    let a = udp(&mut l.a);
    let b = bound(&mut l.b, "0.0.0.0:9000");
    let data: Vec<u8> = (0..65507u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(call!(l.a, sendto(l.now, a, &data, 0, Some(sa("10.0.0.2:9000")))), Ok(65507));
    l.run();
    let mut buf = vec![0u8; 70000];
    let (n, _) = call!(l.b, recvfrom(l.now, b, &mut buf, 0)).unwrap();
    assert_eq!(n, 65507);
    assert!(buf[..n] == data[..], "payload intact");
    assert_eq!(l.a.stack.counters().ipv4.tx_fragments, 45);
    assert_eq!(l.b.stack.counters().ipv4.reassembled, 1);
}

#[test]
fn truncation_peek_and_msg_trunc() {
    let mut l = Link::new();
    let a = udp(&mut l.a);
    let b = bound(&mut l.b, "0.0.0.0:9000");
    call!(l.a, sendto(l.now, a, b"0123456789", 0, Some(sa("10.0.0.2:9000")))).unwrap();
    call!(l.a, sendto(l.now, a, b"abcdefghij", 0, Some(sa("10.0.0.2:9000")))).unwrap();
    l.run();
    let mut small = [0u8; 4];
    // Peek: copied, left queued; MSG_TRUNC asks for the real length.
    let m = call!(l.b, recvmsg(l.now, b, &mut small, MSG_PEEK)).unwrap();
    assert_eq!((m.len, m.flags, &small), (4, MSG_TRUNC, b"0123"));
    assert_eq!(call!(l.b, recv(l.now, b, &mut small, MSG_PEEK | MSG_TRUNC)), Ok(10));
    // A real read truncates and discards the rest of that datagram only.
    assert_eq!(call!(l.b, recv(l.now, b, &mut small, 0)), Ok(4));
    assert_eq!(&small, b"0123");
    let mut big = [0u8; 32];
    let m = call!(l.b, recvmsg(l.now, b, &mut big, 0)).unwrap();
    assert_eq!((m.len, m.flags, &big[..10]), (10, 0, &b"abcdefghij"[..]));
    assert_eq!(call!(l.b, recv(l.now, b, &mut big, 0)), Err(Errno::EAGAIN));
    // A zero-length datagram is a datagram.
    call!(l.a, sendto(l.now, a, b"", 0, Some(sa("10.0.0.2:9000")))).unwrap();
    l.run();
    assert_eq!(call!(l.b, recvfrom(l.now, b, &mut big, 0)).map(|(n, _)| n), Ok(0));
}

#[test]
fn connected_socket_filters_by_peer_and_sends_by_default() {
    let mut l = Link::new();
    let server = bound(&mut l.b, "0.0.0.0:7000");
    let other = bound(&mut l.b, "0.0.0.0:7001");
    let client = bound(&mut l.a, "0.0.0.0:6000");
    call!(l.a, connect(l.now, client, sa("10.0.0.2:7000"))).unwrap();
    assert_eq!(call!(l.a, getpeername(client)), Ok(v4("10.0.0.2:7000")));
    assert_eq!(call!(l.a, getsockname(client)), Ok(v4("10.0.0.1:6000")), "connect fixes the local address");
    assert_eq!(call!(l.a, send(l.now, client, b"hello", 0)), Ok(5));
    l.run();
    let mut buf = [0u8; 16];
    assert_eq!(call!(l.b, recvfrom(l.now, server, &mut buf, 0)), Ok((5, v4("10.0.0.1:6000"))));
    // Replies from the peer get in; datagrams from another port do not (and, with
    // no other socket on the port, are answered with port unreachable).
    call!(l.b, sendto(l.now, server, b"reply", 0, Some(sa("10.0.0.1:6000")))).unwrap();
    call!(l.b, sendto(l.now, other, b"intruder", 0, Some(sa("10.0.0.1:6000")))).unwrap();
    l.run();
    assert_eq!(call!(l.a, recvfrom(l.now, client, &mut buf, 0)), Ok((5, v4("10.0.0.2:7000"))));
    assert_eq!(&buf[..5], b"reply");
    assert_eq!(call!(l.a, recvfrom(l.now, client, &mut buf, 0)), Err(Errno::EAGAIN));
    assert_eq!(l.a.stack.counters().drops.get(DropReason::UdpNoSocket), 1);
    assert_eq!(l.a.stack.counters().icmp.tx_dest_unreachable, 1);
    // sendto with an address still works on a connected socket.
    assert_eq!(call!(l.a, sendto(l.now, client, b"x", 0, Some(sa("10.0.0.2:7001")))), Ok(1));
    // Disconnecting (AF_UNSPEC) lets anyone in again.
    call!(l.a, disconnect(l.now, client)).unwrap();
    assert_eq!(call!(l.a, getpeername(client)), Err(Errno::ENOTCONN));
    assert_eq!(call!(l.a, send(l.now, client, b"x", 0)), Err(Errno::EDESTADDRREQ));
    l.run();
    call!(l.b, sendto(l.now, other, b"welcome", 0, Some(sa("10.0.0.1:6000")))).unwrap();
    l.run();
    assert_eq!(call!(l.a, recvfrom(l.now, client, &mut buf, 0)), Ok((7, v4("10.0.0.2:7001"))));
}

#[test]
fn port_unreachable_is_econnrefused_once_on_a_connected_socket_only() {
    let mut l = Link::new();
    let connected = udp(&mut l.a);
    let unconnected = udp(&mut l.a);
    call!(l.a, connect(l.now, connected, sa("10.0.0.2:9"))).unwrap();
    call!(l.a, send(l.now, connected, b"anyone?", 0)).unwrap();
    call!(l.a, sendto(l.now, unconnected, b"anyone?", 0, Some(sa("10.0.0.2:9")))).unwrap();
    l.run();
    assert_eq!(l.b.stack.counters().icmp.tx_dest_unreachable, 2);
    assert_eq!(l.a.stack.counters().icmp.rx_dest_unreachable, 2);
    // poll shows the error; the next call reports it, once.
    assert_eq!(call!(l.a, revents(connected, POLLIN)), POLLERR);
    assert_eq!(call!(l.a, revents(unconnected, POLLIN)), 0);
    let mut buf = [0u8; 8];
    assert_eq!(call!(l.a, recv(l.now, connected, &mut buf, 0)), Err(Errno::ECONNREFUSED));
    assert_eq!(call!(l.a, recv(l.now, connected, &mut buf, 0)), Err(Errno::EAGAIN));
    assert_eq!(call!(l.a, recv(l.now, unconnected, &mut buf, 0)), Err(Errno::EAGAIN));
    // Again, reported by send this time; and by SO_ERROR, which clears it.
    call!(l.a, send(l.now, connected, b"again", 0)).unwrap();
    l.run();
    assert_eq!(call!(l.a, send(l.now, connected, b"again", 0)), Err(Errno::ECONNREFUSED));
    l.run();
    call!(l.a, send(l.now, connected, b"again", 0)).unwrap();
    l.run();
    assert_eq!(call!(l.a, getsockopt(connected, SOL_SOCKET, SO_ERROR)), Ok(OptVal::Int(Errno::ECONNREFUSED.0)));
    assert_eq!(call!(l.a, getsockopt(connected, SOL_SOCKET, SO_ERROR)), Ok(OptVal::Int(0)));
    assert_eq!(call!(l.a, send(l.now, connected, b"fine", 0)), Ok(4));
}

#[test]
fn port_unreachable_is_rate_limited() {
    let mut l = Link::new();
    resolve(&mut l);
    let fd = udp(&mut l.a);
    for _ in 0..200 {
        call!(l.a, sendto(l.now, fd, b"x", 0, Some(sa("10.0.0.2:9")))).unwrap();
    }
    l.run();
    let c = l.b.stack.counters();
    assert_eq!(c.drops.get(DropReason::UdpNoSocket), 201);
    assert_eq!(c.icmp.tx_dest_unreachable, 50, "the burst of the default limit");
    assert_eq!(c.drops.get(DropReason::IcmpErrorRateLimited), 151);
    // A second later the bucket has refilled by the rate (100/s, capped at the burst).
    l.advance(Duration::from_secs(1));
    for _ in 0..100 {
        call!(l.a, sendto(l.now, fd, b"x", 0, Some(sa("10.0.0.2:9")))).unwrap();
    }
    l.run();
    assert_eq!(l.b.stack.counters().icmp.tx_dest_unreachable, 100);
}

#[test]
fn receive_buffer_full_drops_and_counts() {
    let mut l = Link::new();
    let a = udp(&mut l.a);
    let b = bound(&mut l.b, "0.0.0.0:9000");
    call!(l.b, setsockopt(l.now, b, SOL_SOCKET, SO_RCVBUF, 0.into())).unwrap();
    assert_eq!(call!(l.b, getsockopt(b, SOL_SOCKET, SO_RCVBUF)), Ok(OptVal::Int(SOCK_MIN_RCVBUF as i32)));
    for _ in 0..20 {
        call!(l.a, sendto(l.now, a, &[1; 500], 0, Some(sa("10.0.0.2:9000")))).unwrap();
        l.run();
    }
    // 2304 bytes hold three 500-byte datagrams with their 256-byte overhead.
    let mut buf = [0u8; 600];
    let mut got = 0;
    while call!(l.b, recv(l.now, b, &mut buf, 0)).is_ok() {
        got += 1;
    }
    assert_eq!(got, 3);
    assert_eq!(l.b.stack.counters().drops.get(DropReason::UdpReceiveBufferFull), 17);
    assert_eq!(l.b.stack.counters().udp.rx_datagrams, 3);
}

#[test]
fn broadcast_needs_so_broadcast_and_reaches_every_listener() {
    let mut l = Link::new();
    let sender = udp(&mut l.a);
    let r1 = udp(&mut l.b);
    let r2 = udp(&mut l.b);
    for fd in [r1, r2] {
        call!(l.b, setsockopt(l.now, fd, SOL_SOCKET, SO_REUSEADDR, 1.into())).unwrap();
    }
    call!(l.b, bind(r1, sa("0.0.0.0:6767"))).unwrap();
    call!(l.b, bind(r2, sa("10.0.0.255:6767"))).unwrap();
    assert_eq!(call!(l.a, sendto(l.now, sender, b"all", 0, Some(sa("255.255.255.255:6767")))), Err(Errno::EACCES));
    call!(l.a, setsockopt(l.now, sender, SOL_SOCKET, SO_BROADCAST, 1.into())).unwrap();
    assert_eq!(call!(l.a, getsockopt(sender, SOL_SOCKET, SO_BROADCAST)), Ok(OptVal::Int(1)));
    call!(l.a, sendto(l.now, sender, b"limited", 0, Some(sa("255.255.255.255:6767")))).unwrap();
    call!(l.a, sendto(l.now, sender, b"subnet", 0, Some(sa("10.0.0.255:6767")))).unwrap();
    l.run();
    let mut buf = [0u8; 16];
    // The wildcard socket hears both; the one bound to the subnet broadcast only that.
    let (n, from) = call!(l.b, recvfrom(l.now, r1, &mut buf, 0)).unwrap();
    assert_eq!((&buf[..n], *from.ip()), (&b"limited"[..], A_IP));
    let (n, _) = call!(l.b, recvfrom(l.now, r1, &mut buf, 0)).unwrap();
    assert_eq!(&buf[..n], b"subnet");
    let (n, _) = call!(l.b, recvfrom(l.now, r2, &mut buf, 0)).unwrap();
    assert_eq!(&buf[..n], b"subnet");
    assert_eq!(call!(l.b, recv(l.now, r2, &mut buf, 0)), Err(Errno::EAGAIN));
    // No ARP was needed: a broadcast goes straight to ff:ff:ff:ff:ff:ff.
    assert_eq!(l.a.stack.counters().arp.tx_requests, 1, "only the start-up announcement");
}

#[test]
fn poll_readiness_follows_the_socket() {
    let mut l = Link::new();
    let a = udp(&mut l.a);
    let b = bound(&mut l.b, "0.0.0.0:9000");
    let all = POLLIN | POLLOUT;
    assert_eq!(call!(l.b, revents(b, all)), POLLOUT);
    assert_eq!(call!(l.b, revents(b, POLLIN)), 0);
    call!(l.a, sendto(l.now, a, b"x", 0, Some(sa("10.0.0.2:9000")))).unwrap();
    l.run();
    assert_eq!(call!(l.b, revents(b, all)), POLLIN | POLLOUT);
    assert_eq!(call!(l.b, revents(b, POLLIN | POLLRDNORM)), POLLIN | POLLRDNORM);
    call!(l.b, recv(l.now, b, &mut [0; 4], 0)).unwrap();
    assert_eq!(call!(l.b, revents(b, all)), POLLOUT);
    // SHUT_RD makes it readable (a read returns 0), both ways hung up.
    let _ = call!(l.b, shutdown(l.now, b, SHUT_RD));
    assert_eq!(call!(l.b, revents(b, all)), POLLIN | POLLOUT);
    assert_eq!(call!(l.b, recvfrom(l.now, b, &mut [0; 4], 0)), Ok((0, v4("0.0.0.0:0"))));
    let _ = call!(l.b, shutdown(l.now, b, SHUT_WR));
    assert_eq!(call!(l.b, revents(b, 0)), POLLHUP);
    call!(l.b, close(l.now, b)).unwrap();
    assert_eq!(call!(l.b, revents(b, all)), POLLNVAL);
}

#[test]
fn nonblocking_calls_say_eagain() {
    let mut l = Link::new();
    let fd = call!(l.a, socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)).unwrap();
    call!(l.a, bind(fd, sa("0.0.0.0:1234"))).unwrap();
    let err = call!(l.a, recv(l.now, fd, &mut [0; 4], 0)).unwrap_err();
    assert_eq!(
        (err, err.name(), err.to_string()),
        (Errno::EAGAIN, "EAGAIN", "Resource temporarily unavailable".into())
    );
    assert!(l.a.sockets.wait_params(fd, fd_table::Direction::Recv).unwrap().nonblocking);
}

#[test]
fn arp_failure_is_ehostunreach_on_a_connected_socket() {
    let mut l = Link::new();
    let fd = udp(&mut l.a);
    // Nobody has 10.0.0.99: ARP asks, retries and gives up.
    call!(l.a, connect(l.now, fd, sa("10.0.0.99:9"))).unwrap();
    call!(l.a, send(l.now, fd, b"hello?", 0)).unwrap();
    l.advance(Duration::from_secs(10));
    assert_eq!(l.a.stack.counters().drops.get(DropReason::ArpResolutionFailed), 1);
    assert_eq!(call!(l.a, recv(l.now, fd, &mut [0; 8], 0)), Err(Errno::EHOSTUNREACH));
}

#[test]
fn a_gateway_route_is_used_for_off_link_peers() {
    let ca = Config { gateway: Some(B_IP), seed: 3, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), A_IP, 24) };
    let cb = Config::new(MacAddr([2, 0, 0, 0, 0, 2]), B_IP, 24);
    let mut l = Link::with(ca, cb);
    let fd = udp(&mut l.a);
    // With a gateway, an off-link destination is routable (b drops it: not for it).
    assert_eq!(call!(l.a, sendto(l.now, fd, b"x", 0, Some(sa("192.0.2.1:9")))), Ok(1));
    l.run();
    assert_eq!(l.b.stack.counters().drops.get(DropReason::IpNotForUs), 1);
}
