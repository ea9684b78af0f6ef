//! Stream socket semantics over TCP in virtual time: two stacks with descriptor tables
//! on a virtual wire (`sim::Link`), no threads, no clocks. The errors of every
//! call in every state, as Linux gives them; connect (blocking is the runtime's,
//! so here the nonblocking form with poll and SO_ERROR), accept and its backlog,
//! partial sends, MSG_PEEK, shutdown and half-close, close with and without
//! SO_LINGER, TIME-WAIT and SO_REUSEADDR, and options reaching the connection.

use sockets_api::sim::{Host, Link, A_IP, B_IP};
use sockets_api::*;
use stack::tcp::{ConnId, SocketOptions, State, TcpInfo};
use stack::{Config, DropReason, Duration, Instant, MacAddr};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// `call!(host, method(args))` calls the descriptor table of `host` with its stack.
macro_rules! call {
    ($host:expr, $method:ident ( $($arg:expr),* $(,)? )) => {{
        let h = &mut $host;
        h.sockets.$method(&mut h.stack, $($arg),*)
    }};
}

fn tcp(host: &mut Host) -> Fd {
    call!(*host, socket(AF_INET, SOCK_STREAM, 0)).unwrap()
}

fn listener(host: &mut Host, addr: &str, backlog: i32) -> Fd {
    let fd = tcp(host);
    call!(*host, bind(fd, sa(addr))).unwrap();
    call!(*host, listen(fd, backlog)).unwrap();
    fd
}

/// Starts a connect from a to `to` and returns the socket (EINPROGRESS checked).
fn start_connect(l: &mut Link, to: &str) -> Fd {
    let fd = tcp(&mut l.a);
    assert_eq!(call!(l.a, connect(l.now, fd, sa(to))), Err(Errno::EINPROGRESS));
    fd
}

/// A connection from a to b's listener on `port`: (a's socket, b's accepted socket, b's listener).
fn pair(l: &mut Link, port: u16) -> (Fd, Fd, Fd) {
    let lfd = listener(&mut l.b, &format!("0.0.0.0:{port}"), 8);
    let a = start_connect(l, &format!("10.0.0.2:{port}"));
    l.advance(Duration::from_millis(10));
    assert_eq!(call!(l.a, connect_status(l.now, a)), Ok(()));
    let (b, peer) = call!(l.b, accept(l.now, lfd)).unwrap();
    assert_eq!(peer, call!(l.a, getsockname(a)).unwrap());
    (a, b, lfd)
}

/// Every TCP socket of a host with its handle and state (an `ss -tan`).
fn sockets(h: &mut Host) -> Vec<(ConnId, TcpInfo)> {
    h.stack.tcp().0.sockets().collect()
}

/// The TCP connection of a host between `local` and `remote` ports.
fn conn(h: &mut Host, local: u16, remote: u16) -> (ConnId, TcpInfo) {
    sockets(h)
        .into_iter()
        .find(|(_, i)| i.local.port() == local && i.remote.port() == remote)
        .expect("the connection exists")
}

fn conn_options(h: &mut Host, local: u16, remote: u16) -> SocketOptions {
    let (id, _) = conn(h, local, remote);
    h.stack.tcp().0.options(id).unwrap()
}

fn ports(l: &mut Link, a: Fd, b: Fd) -> (u16, u16) {
    (call!(l.a, getsockname(a)).unwrap().port(), call!(l.b, getsockname(b)).unwrap().port())
}

fn recv_all(h: &mut Host, now: Instant, fd: Fd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = call!(*h, recv(now, fd, &mut buf, 0)) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn connect_accept_and_exchange_with_addresses() {
    let mut l = Link::new();
    let lfd = listener(&mut l.b, "0.0.0.0:8080", 8);
    assert_eq!(call!(l.b, getsockname(lfd)), Ok(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8080)));
    let a = start_connect(&mut l, "10.0.0.2:8080");
    // Nothing has crossed yet: the handshake runs, so a second connect says EALREADY.
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Err(Errno::EALREADY));
    assert_eq!(call!(l.a, getpeername(a)), Err(Errno::ENOTCONN), "no peer while the SYN is unanswered");
    assert_eq!(call!(l.b, accept(l.now, lfd)).unwrap_err(), Errno::EAGAIN);
    l.run();
    // Done: the next connect answers 0 once, then EISCONN.
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Ok(()));
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Err(Errno::EISCONN));
    let a_addr = call!(l.a, getsockname(a)).unwrap();
    assert_eq!(*a_addr.ip(), A_IP);
    assert!(a_addr.port() >= 49152, "{a_addr}");
    assert_eq!(call!(l.a, getpeername(a)), Ok(SocketAddrV4::new(B_IP, 8080)));

    let (b, peer) = call!(l.b, accept(l.now, lfd)).unwrap();
    assert_eq!(peer, a_addr);
    assert_eq!(call!(l.b, getpeername(b)), Ok(a_addr));
    assert_eq!(call!(l.b, getsockname(b)), Ok(SocketAddrV4::new(B_IP, 8080)));
    assert_eq!(call!(l.b, accept(l.now, lfd)).unwrap_err(), Errno::EAGAIN);

    assert_eq!(call!(l.a, send(l.now, a, b"hello over tcp", 0)), Ok(14));
    l.run();
    let mut buf = [0u8; 64];
    let m = call!(l.b, recvmsg(l.now, b, &mut buf, 0)).unwrap();
    assert_eq!(&buf[..m.len], b"hello over tcp");
    assert_eq!(m.addr, a_addr);
    assert_eq!(call!(l.b, recv(l.now, b, &mut buf, 0)), Err(Errno::EAGAIN));
    assert_eq!(call!(l.b, send(l.now, b, b"and back", 0)), Ok(8));
    l.run();
    assert_eq!(call!(l.a, recv(l.now, a, &mut buf, 0)), Ok(8));
    assert_eq!(&buf[..8], b"and back");
}

#[test]
fn calls_in_the_wrong_state_fail_as_on_linux() {
    let mut l = Link::new();
    let (a, b, lfd) = pair(&mut l, 8080);
    let now = l.now;
    // A listener: not connected, cannot send, cannot connect.
    assert_eq!(call!(l.b, recv(now, lfd, &mut [0; 4], 0)), Err(Errno::ENOTCONN));
    assert_eq!(call!(l.b, send(now, lfd, b"x", 0)), Err(Errno::EPIPE));
    assert_eq!(call!(l.b, getpeername(lfd)), Err(Errno::ENOTCONN));
    assert_eq!(call!(l.b, connect(now, lfd, sa("10.0.0.1:1"))), Err(Errno::EISCONN));
    assert_eq!(call!(l.b, bind(lfd, sa("0.0.0.0:9999"))), Err(Errno::EINVAL));
    assert_eq!(call!(l.b, listen(lfd, 100)), Ok(()), "listening again is allowed");
    // Connected sockets: listen is EINVAL, accept is EINVAL, bind is EINVAL.
    assert_eq!(call!(l.a, listen(a, 5)), Err(Errno::EINVAL));
    assert_eq!(call!(l.b, listen(b, 5)), Err(Errno::EINVAL));
    assert_eq!(call!(l.a, accept(now, a)).unwrap_err(), Errno::EINVAL);
    assert_eq!(call!(l.a, bind(a, sa("0.0.0.0:9999"))), Err(Errno::EINVAL));
    assert_eq!(call!(l.b, connect(now, b, sa("10.0.0.1:1"))), Err(Errno::EISCONN));
    assert_eq!(call!(l.a, getsockopt(a, SOL_SOCKET, SO_ACCEPTCONN)), Ok(OptVal::Int(0)));
    assert_eq!(call!(l.b, getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN)), Ok(OptVal::Int(1)));
    // Flags TCP does not do.
    assert_eq!(call!(l.a, send(now, a, b"x", MSG_OOB)), Err(Errno::EOPNOTSUPP));
    assert_eq!(call!(l.a, recv(now, a, &mut [0; 4], MSG_OOB)), Err(Errno::EINVAL));
    assert_eq!(call!(l.a, shutdown(now, a, 7)), Err(Errno::EINVAL));
    // Never connected: ENOTCONN, EPIPE.
    let fresh = tcp(&mut l.a);
    assert_eq!(call!(l.a, shutdown(now, fresh, SHUT_RDWR)), Err(Errno::ENOTCONN));
    assert_eq!(call!(l.a, send(now, fresh, b"x", 0)), Err(Errno::EPIPE));
    assert_eq!(call!(l.a, recv(now, fresh, &mut [0; 4], 0)), Err(Errno::ENOTCONN));
    // Bad peers: no route, broadcast, IPv6.
    assert_eq!(call!(l.a, connect(now, fresh, sa("192.168.7.7:80"))), Err(Errno::ENETUNREACH));
    assert_eq!(call!(l.a, connect(now, fresh, sa("10.0.0.255:80"))), Err(Errno::ENETUNREACH));
    assert_eq!(call!(l.a, connect(now, fresh, sa("255.255.255.255:80"))), Err(Errno::ENETUNREACH));
    assert_eq!(call!(l.a, connect(now, fresh, sa("[::1]:80"))), Err(Errno::EAFNOSUPPORT));
    assert_eq!(call!(l.a, connect(now, fresh, sa("10.0.0.2:0"))), Err(Errno::EINVAL));
    // After all that the socket can still connect.
    assert_eq!(call!(l.a, connect(now, fresh, sa("10.0.0.2:8080"))), Err(Errno::EINPROGRESS));
    l.run();
    assert_eq!(call!(l.a, connect_status(l.now, fresh)), Ok(()));
}

#[test]
fn nonblocking_connect_reports_pollout_and_so_error() {
    let mut l = Link::new();
    let _lfd = listener(&mut l.b, "0.0.0.0:8080", 8);
    let a = call!(l.a, socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)).unwrap();
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Err(Errno::EINPROGRESS));
    // While the SYN is out: not writable, not readable, no error; sends wait.
    assert_eq!(call!(l.a, revents(a, POLLIN | POLLOUT)), 0);
    assert_eq!(call!(l.a, send(l.now, a, b"early", 0)), Err(Errno::EAGAIN));
    assert_eq!(call!(l.a, recv(l.now, a, &mut [0; 4], 0)), Err(Errno::EAGAIN));
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Err(Errno::EALREADY));
    l.run();
    assert_eq!(call!(l.a, revents(a, POLLIN | POLLOUT)), POLLOUT);
    assert_eq!(call!(l.a, getsockopt(a, SOL_SOCKET, SO_ERROR)), Ok(OptVal::Int(0)));
    assert_eq!(call!(l.a, send(l.now, a, b"now", 0)), Ok(3));
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Err(Errno::EISCONN));
}

#[test]
fn a_refused_connect_is_pollerr_and_so_error_econnrefused_once() {
    let mut l = Link::new();
    let a = call!(l.a, socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)).unwrap();
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Err(Errno::EINPROGRESS));
    l.run();
    let r = call!(l.a, revents(a, POLLIN | POLLOUT));
    assert_eq!(r & (POLLOUT | POLLERR | POLLHUP), POLLOUT | POLLERR | POLLHUP, "{r:#x}");
    assert_eq!(call!(l.a, getsockopt(a, SOL_SOCKET, SO_ERROR)), Ok(OptVal::Int(Errno::ECONNREFUSED.0)));
    assert_eq!(call!(l.a, getsockopt(a, SOL_SOCKET, SO_ERROR)), Ok(OptVal::Int(0)));
    // The error was taken: the attempt ends as Linux ends it, and the socket is free again.
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Err(Errno::ECONNABORTED));
    assert_eq!(sockets(&mut l.a).len(), 0, "the failed connection is released");
    // A blocking-style caller sees ECONNREFUSED from connect itself.
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Err(Errno::EINPROGRESS));
    l.run();
    assert_eq!(call!(l.a, connect_status(l.now, a)), Err(Errno::ECONNREFUSED));
    assert_eq!(call!(l.a, connect_status(l.now, a)), Err(Errno::ENOTCONN));
    // Once a listener is there, the same socket connects.
    let _lfd = listener(&mut l.b, "0.0.0.0:8080", 8);
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Err(Errno::EINPROGRESS));
    l.run();
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Ok(()));
}

#[test]
fn an_unanswered_connect_times_out_with_etimedout() {
    let mut ca = Config { seed: 1, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), A_IP, 24) };
    ca.tcp.syn_retries = 2;
    let cb = Config { seed: 2, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), B_IP, 24) };
    let mut l = Link::with(ca, cb);
    // b hears nothing from a's TCP.
    l.filter = Some(|from_a, f| !(from_a && f.len() > 23 && f[23] == 6));
    let a = start_connect(&mut l, "10.0.0.2:8080");
    l.advance(Duration::from_secs(2));
    assert_eq!(call!(l.a, connect_status(l.now, a)), Err(Errno::EAGAIN));
    // SYN at 0, retries at 1 s and 3 s, giving up 4 s later (RTO 1, 2, 4 s).
    l.advance(Duration::from_secs(6));
    assert_eq!(call!(l.a, connect_status(l.now, a)), Err(Errno::ETIMEDOUT));
}

#[test]
fn a_connect_to_an_address_nobody_answers_is_ehostunreach_after_arp_gives_up() {
    // Issue 14, item 4: as on Linux, "No route to host" once ARP's three
    // requests, 1 s apart, go unanswered (it took 247 s of SYN retries).
    let mut l = Link::new();
    let a = start_connect(&mut l, "10.0.0.99:8080");
    l.advance(Duration::from_millis(2500));
    assert_eq!(call!(l.a, connect_status(l.now, a)), Err(Errno::EAGAIN));
    l.advance(Duration::from_millis(1000));
    assert_eq!(call!(l.a, connect_status(l.now, a)), Err(Errno::EHOSTUNREACH));
    assert_eq!(Errno::EHOSTUNREACH.0, 113);
    // Again at once: ARP holds the address as failed, and says so straight away.
    let b = call!(l.a, socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)).unwrap();
    assert_eq!(call!(l.a, connect(l.now, b, sa("10.0.0.99:8080"))), Err(Errno::EINPROGRESS));
    l.advance(Duration::from_millis(1));
    assert_eq!(call!(l.a, getsockopt(b, SOL_SOCKET, SO_ERROR)), Ok(OptVal::Int(Errno::EHOSTUNREACH.0)));
    assert_eq!(l.a.stack.counters().arp.tx_requests, 3 + 1, "three requests and the start's announcement");
}

#[test]
fn shutdown_during_the_handshake_aborts_it_with_econnaborted() {
    let mut l = Link::new();
    l.filter = Some(|from_a, f| !(from_a && f.len() > 23 && f[23] == 6));
    let a = start_connect(&mut l, "10.0.0.2:8080");
    assert_eq!(call!(l.a, shutdown(l.now, a, SHUT_RD)), Ok(()));
    assert_eq!(call!(l.a, connect_status(l.now, a)), Err(Errno::ECONNABORTED));
    assert!(sockets(&mut l.a).is_empty());
}

#[test]
fn a_reset_is_econnreset_once_then_eof_and_epipe() {
    let mut l = Link::new();
    let (a, b, _) = pair(&mut l, 8080);
    let (pa, pb) = ports(&mut l, a, b);
    // b closes with SO_LINGER {on, 0}: an abort, with RST and no TIME-WAIT.
    call!(l.b, setsockopt(l.now, b, SOL_SOCKET, SO_LINGER, Linger { l_onoff: 1, l_linger: 0 }.into())).unwrap();
    assert_eq!(conn_options(&mut l.b, pb, pa).linger, Some(Duration::ZERO));
    let rst_before = l.a.stack.counters().tcp.rx_segments;
    call!(l.b, close(l.now, b)).unwrap();
    assert!(sockets(&mut l.b).iter().all(|(_, i)| i.state == State::Listen), "no TIME-WAIT after an abort");
    l.run();
    assert!(l.a.stack.counters().tcp.rx_segments > rst_before);
    assert_eq!(conn(&mut l.a, pa, pb).1.state, State::Closed);
    let r = call!(l.a, revents(a, POLLIN | POLLOUT));
    assert_eq!(r & (POLLIN | POLLERR | POLLHUP), POLLIN | POLLERR | POLLHUP, "{r:#x}");
    assert_eq!(call!(l.a, recv(l.now, a, &mut [0; 8], 0)), Err(Errno::ECONNRESET));
    assert_eq!(call!(l.a, recv(l.now, a, &mut [0; 8], 0)), Ok(0));
    assert_eq!(call!(l.a, send(l.now, a, b"x", 0)), Err(Errno::EPIPE));
    assert_eq!(call!(l.a, getpeername(a)), Err(Errno::ENOTCONN));
    assert_eq!(call!(l.a, shutdown(l.now, a, SHUT_WR)), Err(Errno::ENOTCONN));
    call!(l.a, close(l.now, a)).unwrap();
    assert!(sockets(&mut l.a).is_empty());
}

#[test]
fn a_send_after_a_reset_reports_econnreset_then_epipe() {
    let mut l = Link::new();
    let (a, b, _) = pair(&mut l, 8080);
    call!(l.b, setsockopt(l.now, b, SOL_SOCKET, SO_LINGER, Linger { l_onoff: 1, l_linger: 0 }.into())).unwrap();
    call!(l.b, close(l.now, b)).unwrap();
    l.run();
    assert_eq!(call!(l.a, send(l.now, a, b"x", 0)), Err(Errno::ECONNRESET));
    assert_eq!(call!(l.a, send(l.now, a, b"x", 0)), Err(Errno::EPIPE));
    assert_eq!(call!(l.a, getsockopt(a, SOL_SOCKET, SO_ERROR)), Ok(OptVal::Int(0)));
}

#[test]
fn closing_with_unread_data_resets_as_linux_does() {
    let mut l = Link::new();
    let (a, b, _) = pair(&mut l, 8080);
    call!(l.a, send(l.now, a, b"unread", 0)).unwrap();
    l.run();
    call!(l.b, close(l.now, b)).unwrap();
    l.run();
    assert_eq!(call!(l.a, recv(l.now, a, &mut [0; 8], 0)), Err(Errno::ECONNRESET));
}

#[test]
fn half_close_shut_wr_then_the_peer_reads_to_eof_and_answers() {
    let mut l = Link::new();
    let (a, b, _) = pair(&mut l, 8080);
    call!(l.a, send(l.now, a, b"request", 0)).unwrap();
    call!(l.a, shutdown(l.now, a, SHUT_WR)).unwrap();
    assert_eq!(call!(l.a, send(l.now, a, b"more", 0)), Err(Errno::EPIPE));
    // Writing is over, so poll says writable (a send fails at once instead of blocking).
    assert_eq!(call!(l.a, revents(a, POLLOUT)), POLLOUT);
    l.advance(Duration::from_millis(100));
    let r = call!(l.b, revents(b, POLLIN | POLLOUT | POLLRDHUP));
    assert_eq!(r, POLLIN | POLLOUT | POLLRDHUP, "{r:#x}");
    assert_eq!(recv_all(&mut l.b, l.now, b), b"request");
    assert_eq!(call!(l.b, recv(l.now, b, &mut [0; 8], 0)), Ok(0), "EOF, again and again");
    // b's side is still open: it answers, and a reads the answer, then EOF.
    assert_eq!(call!(l.b, send(l.now, b, b"response", 0)), Ok(8));
    call!(l.b, close(l.now, b)).unwrap();
    l.advance(Duration::from_millis(100));
    assert_eq!(recv_all(&mut l.a, l.now, a), b"response");
    assert_eq!(call!(l.a, recv(l.now, a, &mut [0; 8], 0)), Ok(0));
    let r = call!(l.a, revents(a, POLLIN | POLLOUT));
    assert_eq!(r & (POLLIN | POLLHUP), POLLIN | POLLHUP, "{r:#x}");
    call!(l.a, close(l.now, a)).unwrap();
    l.advance(Duration::from_millis(100));
    // b closed second (LAST-ACK, then gone); a, which sent the first FIN, waits in TIME-WAIT.
    assert!(sockets(&mut l.a).iter().all(|(_, i)| i.state == State::TimeWait));
    assert!(sockets(&mut l.b).iter().all(|(_, i)| i.state == State::Listen));
}

#[test]
fn shut_rd_reads_zero_and_shut_rdwr_hangs_up() {
    let mut l = Link::new();
    let (a, b, _) = pair(&mut l, 8080);
    call!(l.b, shutdown(l.now, b, SHUT_RD)).unwrap();
    assert_eq!(call!(l.b, recv(l.now, b, &mut [0; 8], 0)), Ok(0));
    assert_ne!(call!(l.b, revents(b, POLLIN)) & POLLIN, 0);
    call!(l.b, shutdown(l.now, b, SHUT_WR)).unwrap();
    assert_ne!(call!(l.b, revents(b, POLLIN)) & POLLHUP, 0);
    l.run();
    assert_eq!(call!(l.a, recv(l.now, a, &mut [0; 8], 0)), Ok(0), "b's FIN");
}

#[test]
fn nonblocking_sends_are_partial_and_eagain_when_nothing_fits() {
    let mut l = Link::new();
    let lfd = listener(&mut l.b, "0.0.0.0:8080", 8);
    let a = tcp(&mut l.a);
    // SO_SNDBUF 8192: TCP gets 8192 bytes of buffer (Linux reports twice that).
    call!(l.a, setsockopt(l.now, a, SOL_SOCKET, SO_SNDBUF, 8192.into())).unwrap();
    assert_eq!(call!(l.a, getsockopt(a, SOL_SOCKET, SO_SNDBUF)), Ok(OptVal::Int(16384)));
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Err(Errno::EINPROGRESS));
    l.run();
    let (b, _) = call!(l.b, accept(l.now, lfd)).unwrap();
    let (pa, pb) = ports(&mut l, a, b);
    assert_eq!(conn_options(&mut l.a, pa, pb).send_buffer, 8192);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    // The send buffer takes 8192 bytes and no more until the peer acknowledges.
    assert_eq!(call!(l.a, send(l.now, a, &data, MSG_DONTWAIT)), Ok(8192));
    assert_eq!(call!(l.a, send(l.now, a, &data[8192..], MSG_DONTWAIT)), Err(Errno::EAGAIN));
    assert_eq!(call!(l.a, revents(a, POLLOUT)), 0);
    let mut sent = 8192;
    let mut got = Vec::new();
    let mut rounds = 0;
    while got.len() < data.len() {
        l.advance(Duration::from_millis(50));
        got.extend(recv_all(&mut l.b, l.now, b));
        if sent < data.len() && call!(l.a, revents(a, POLLOUT)) != 0 {
            let n = call!(l.a, send(l.now, a, &data[sent..], MSG_DONTWAIT)).unwrap();
            assert!(n > 0 && n <= 8192, "{n}");
            sent += n;
        }
        rounds += 1;
        assert!(rounds < 1000, "stalled at {} of {}", got.len(), data.len());
    }
    assert_eq!(got, data);
}

#[test]
fn a_full_receiver_stops_the_sender_until_it_reads() {
    let mut l = Link::new();
    let lfd = tcp(&mut l.b);
    // A small receive buffer on the listener, inherited by the accepted connection.
    call!(l.b, setsockopt(l.now, lfd, SOL_SOCKET, SO_RCVBUF, 4096.into())).unwrap();
    call!(l.b, bind(lfd, sa("0.0.0.0:8080"))).unwrap();
    call!(l.b, listen(lfd, 8)).unwrap();
    let a = start_connect(&mut l, "10.0.0.2:8080");
    l.run();
    let (b, _) = call!(l.b, accept(l.now, lfd)).unwrap();
    let (pa, pb) = ports(&mut l, a, b);
    assert_eq!(conn_options(&mut l.b, pb, pa).recv_buffer, 4096);
    assert_eq!(call!(l.b, getsockopt(b, SOL_SOCKET, SO_RCVBUF)), Ok(OptVal::Int(8192)));
    let data = vec![7u8; 200_000];
    let mut sent = 0;
    for _ in 0..50 {
        match call!(l.a, send(l.now, a, &data[sent..], 0)) {
            Ok(n) => sent += n,
            Err(e) => assert_eq!(e, Errno::EAGAIN),
        }
        l.advance(Duration::from_millis(300));
    }
    // At most the peer's buffer and our send buffer are taken while b does not read.
    assert!(sent <= 4096 + 65536, "{sent}");
    assert_eq!(conn(&mut l.b, pb, pa).1.recv_queue, 4096);
    assert_eq!(recv_all(&mut l.b, l.now, b).len(), 4096);
}

#[test]
fn msg_peek_leaves_the_bytes_for_the_next_read() {
    let mut l = Link::new();
    let (a, b, _) = pair(&mut l, 8080);
    call!(l.a, send(l.now, a, b"abcdef", 0)).unwrap();
    l.run();
    let mut buf = [0u8; 4];
    assert_eq!(call!(l.b, recv(l.now, b, &mut buf, MSG_PEEK)), Ok(4));
    assert_eq!(&buf, b"abcd");
    let mut big = [0u8; 16];
    assert_eq!(call!(l.b, recv(l.now, b, &mut big, MSG_PEEK | MSG_DONTWAIT)), Ok(6));
    assert_eq!(call!(l.b, recv(l.now, b, &mut buf, 0)), Ok(4));
    assert_eq!(&buf, b"abcd");
    assert_eq!(call!(l.b, recv(l.now, b, &mut big, 0)), Ok(2));
    assert_eq!(&big[..2], b"ef");
    assert_eq!(call!(l.b, recv(l.now, b, &mut big, MSG_PEEK)), Err(Errno::EAGAIN));
}

#[test]
fn a_full_backlog_drops_syns_which_get_in_after_an_accept() {
    let mut l = Link::new();
    let lfd = listener(&mut l.b, "0.0.0.0:8080", 1);
    let first = start_connect(&mut l, "10.0.0.2:8080");
    l.run();
    let second = start_connect(&mut l, "10.0.0.2:8080");
    l.run();
    assert_eq!(call!(l.a, connect_status(l.now, first)), Ok(()));
    // The queue holds one: b dropped the second SYN, and a is still waiting.
    assert_eq!(l.b.stack.counters().drops.get(DropReason::TcpBacklogFull), 1);
    assert_eq!(call!(l.a, connect_status(l.now, second)), Err(Errno::EAGAIN));
    assert_eq!(call!(l.b, revents(lfd, POLLIN)), POLLIN);
    let (fb, _) = call!(l.b, accept(l.now, lfd)).unwrap();
    assert_eq!(call!(l.b, revents(lfd, POLLIN)), 0);
    // a retransmits its SYN after its RTO (1 s) and gets in.
    l.advance(Duration::from_millis(1100));
    assert_eq!(call!(l.a, connect_status(l.now, second)), Ok(()));
    let (sb, peer) = call!(l.b, accept(l.now, lfd)).unwrap();
    assert_eq!(peer, call!(l.a, getsockname(second)).unwrap());
    assert_ne!(fb, sb);
}

#[test]
fn closing_a_listener_resets_connections_not_yet_accepted() {
    let mut l = Link::new();
    let lfd = listener(&mut l.b, "0.0.0.0:8080", 4);
    let a = start_connect(&mut l, "10.0.0.2:8080");
    l.run();
    assert_eq!(call!(l.a, connect_status(l.now, a)), Ok(()));
    call!(l.b, close(l.now, lfd)).unwrap();
    l.run();
    assert_eq!(call!(l.a, recv(l.now, a, &mut [0; 4], 0)), Err(Errno::ECONNRESET));
}

#[test]
fn shut_rd_on_a_listener_stops_it() {
    let mut l = Link::new();
    let lfd = listener(&mut l.b, "0.0.0.0:8080", 4);
    assert_eq!(call!(l.b, shutdown(l.now, lfd, SHUT_WR)), Ok(()));
    assert_eq!(call!(l.b, getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN)), Ok(OptVal::Int(1)));
    assert_eq!(call!(l.b, shutdown(l.now, lfd, SHUT_RD)), Ok(()));
    assert_eq!(call!(l.b, accept(l.now, lfd)).unwrap_err(), Errno::EINVAL);
    assert_eq!(call!(l.b, getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN)), Ok(OptVal::Int(0)));
    // Nobody listens now: a connect is refused. The port stays bound to the socket.
    let a = start_connect(&mut l, "10.0.0.2:8080");
    l.run();
    assert_eq!(call!(l.a, connect_status(l.now, a)), Err(Errno::ECONNREFUSED));
    let other = tcp(&mut l.b);
    assert_eq!(call!(l.b, bind(other, sa("0.0.0.0:8080"))), Err(Errno::EADDRINUSE));
    call!(l.b, listen(lfd, 4)).unwrap();
    assert_eq!(call!(l.b, getsockname(lfd)).unwrap().port(), 8080);
}

#[test]
fn time_wait_holds_the_port_unless_so_reuseaddr() {
    let mut l = Link::new();
    let (a, b, lfd) = pair(&mut l, 8080);
    // The server closes first, so its side goes through TIME-WAIT.
    call!(l.b, close(l.now, b)).unwrap();
    call!(l.b, close(l.now, lfd)).unwrap();
    l.advance(Duration::from_millis(100));
    assert_eq!(call!(l.a, recv(l.now, a, &mut [0; 4], 0)), Ok(0));
    call!(l.a, close(l.now, a)).unwrap();
    l.advance(Duration::from_millis(100));
    let states: Vec<State> = sockets(&mut l.b).iter().map(|(_, i)| i.state).collect();
    assert_eq!(states, [State::TimeWait]);
    let again = tcp(&mut l.b);
    assert_eq!(call!(l.b, bind(again, sa("0.0.0.0:8080"))), Err(Errno::EADDRINUSE));
    call!(l.b, setsockopt(l.now, again, SOL_SOCKET, SO_REUSEADDR, 1.into())).unwrap();
    call!(l.b, bind(again, sa("0.0.0.0:8080"))).unwrap();
    call!(l.b, listen(again, 4)).unwrap();
    // A second listener on the port is refused, SO_REUSEADDR or not.
    let third = tcp(&mut l.b);
    call!(l.b, setsockopt(l.now, third, SOL_SOCKET, SO_REUSEADDR, 1.into())).unwrap();
    assert_eq!(call!(l.b, bind(third, sa("0.0.0.0:8080"))), Err(Errno::EADDRINUSE));
    // The new listener serves a new connection.
    let c = start_connect(&mut l, "10.0.0.2:8080");
    l.run();
    assert_eq!(call!(l.a, connect_status(l.now, c)), Ok(()));
    assert!(call!(l.b, accept(l.now, again)).is_ok());
    // After 2*MSL the TIME-WAIT is gone and the port is free even without SO_REUSEADDR.
    l.advance(Duration::from_secs(61));
    call!(l.b, close(l.now, again)).unwrap();
    let last = tcp(&mut l.b);
    assert_eq!(call!(l.b, bind(last, sa("0.0.0.0:8080"))), Err(Errno::EADDRINUSE), "the accepted connection");
}

#[test]
fn so_linger_nonzero_close_waits_for_the_fin_to_be_acknowledged() {
    let mut l = Link::new();
    let (a, b, _) = pair(&mut l, 8080);
    let (pa, pb) = ports(&mut l, a, b);
    call!(l.a, setsockopt(l.now, a, SOL_SOCKET, SO_LINGER, Linger { l_onoff: 1, l_linger: 5 }.into())).unwrap();
    assert_eq!(conn_options(&mut l.a, pa, pb).linger, Some(Duration::from_secs(5)));
    call!(l.a, send(l.now, a, b"last words", 0)).unwrap();
    let w = call!(l.a, close_lingering(l.now, a)).unwrap().expect("a linger wait");
    assert_eq!(w.timeout, std::time::Duration::from_secs(5));
    assert!(!w.done(&mut l.a.stack), "FIN-WAIT-1: the FIN is not acknowledged yet");
    assert_eq!(call!(l.a, getsockname(a)), Err(Errno::EBADF), "the descriptor is gone at once");
    l.run();
    assert!(w.done(&mut l.a.stack));
    assert_eq!(conn(&mut l.a, pa, pb).1.state, State::FinWait2);
    assert_eq!(recv_all(&mut l.b, l.now, b), b"last words");

    // Without an answer from the peer the wait does not end by itself (the
    // runtime's close gives up after the linger time).
    let (a2, _b2, _) = pair(&mut l, 8081);
    call!(l.a, setsockopt(l.now, a2, SOL_SOCKET, SO_LINGER, Linger { l_onoff: 1, l_linger: 1 }.into())).unwrap();
    l.filter = Some(|from_a, _| !from_a);
    let w = call!(l.a, close_lingering(l.now, a2)).unwrap().unwrap();
    l.advance(Duration::from_secs(3));
    assert!(!w.done(&mut l.a.stack));
    // Linger off: nothing to wait for.
    l.filter = None;
    let (a3, _b3, _) = pair(&mut l, 8082);
    assert_eq!(call!(l.a, close_lingering(l.now, a3)), Ok(None));
}

#[test]
fn options_reach_the_connection_and_are_inherited_from_the_listener() {
    let mut l = Link::new();
    let lfd = tcp(&mut l.b);
    for (level, name, v) in [
        (IPPROTO_TCP, TCP_NODELAY, 1),
        (SOL_SOCKET, SO_KEEPALIVE, 1),
        (IPPROTO_TCP, TCP_KEEPIDLE, 30),
        (IPPROTO_TCP, TCP_KEEPINTVL, 5),
        (IPPROTO_TCP, TCP_KEEPCNT, 4),
        (SOL_SOCKET, SO_SNDBUF, 10000),
        (SOL_SOCKET, SO_RCVBUF, 20000),
        (SOL_SOCKET, SO_REUSEADDR, 1),
    ] {
        call!(l.b, setsockopt(l.now, lfd, level, name, v.into())).unwrap();
    }
    call!(l.b, setsockopt(l.now, lfd, SOL_SOCKET, SO_LINGER, Linger { l_onoff: 1, l_linger: 9 }.into())).unwrap();
    call!(l.b, bind(lfd, sa("0.0.0.0:8080"))).unwrap();
    call!(l.b, listen(lfd, 4)).unwrap();
    let a = start_connect(&mut l, "10.0.0.2:8080");
    l.run();
    let (b, _) = call!(l.b, accept(l.now, lfd)).unwrap();
    let (pa, pb) = ports(&mut l, a, b);
    let expect = SocketOptions {
        nodelay: true,
        keepalive: true,
        keep_idle: Duration::from_secs(30),
        keep_interval: Duration::from_secs(5),
        keep_count: 4,
        linger: Some(Duration::from_secs(9)),
        send_buffer: 10000,
        recv_buffer: 20000,
        reuse_addr: true,
        retries: None,
    };
    assert_eq!(conn_options(&mut l.b, pb, pa), expect);
    // The accepted socket reports the same options, and not the listener's O_NONBLOCK.
    assert_eq!(call!(l.b, getsockopt(b, IPPROTO_TCP, TCP_KEEPCNT)), Ok(OptVal::Int(4)));
    assert_eq!(l.b.sockets.fcntl(b, F_GETFL, 0), Ok(O_RDWR));
    // Changing them on a connection changes the connection's.
    call!(l.b, setsockopt(l.now, b, IPPROTO_TCP, TCP_NODELAY, 0.into())).unwrap();
    call!(l.b, setsockopt(l.now, b, SOL_SOCKET, SO_KEEPALIVE, 0.into())).unwrap();
    let o = conn_options(&mut l.b, pb, pa);
    assert!(!o.nodelay && !o.keepalive);
}

#[test]
fn keepalive_settings_end_a_dead_connection_with_etimedout() {
    let mut l = Link::new();
    let (a, _b, _) = pair(&mut l, 8080);
    call!(l.a, setsockopt(l.now, a, SOL_SOCKET, SO_KEEPALIVE, 1.into())).unwrap();
    call!(l.a, setsockopt(l.now, a, IPPROTO_TCP, TCP_KEEPIDLE, 10.into())).unwrap();
    call!(l.a, setsockopt(l.now, a, IPPROTO_TCP, TCP_KEEPINTVL, 2.into())).unwrap();
    call!(l.a, setsockopt(l.now, a, IPPROTO_TCP, TCP_KEEPCNT, 3.into())).unwrap();
    // b vanishes.
    l.filter = Some(|_, _| false);
    l.advance(Duration::from_secs(15));
    assert_eq!(call!(l.a, recv(l.now, a, &mut [0; 4], 0)), Err(Errno::EAGAIN), "still probing at 15 s");
    // 10 s idle, then 3 probes 2 s apart unanswered: dead by 16 s (a little later
    // with the first probe's own timer).
    l.advance(Duration::from_secs(5));
    assert_eq!(call!(l.a, recv(l.now, a, &mut [0; 4], 0)), Err(Errno::ETIMEDOUT));
}

#[test]
fn disconnect_resets_and_frees_the_socket_to_connect_again() {
    let mut l = Link::new();
    let (a, b, _) = pair(&mut l, 8080);
    call!(l.a, disconnect(l.now, a)).unwrap();
    l.run();
    assert_eq!(call!(l.b, recv(l.now, b, &mut [0; 4], 0)), Err(Errno::ECONNRESET));
    assert_eq!(call!(l.a, getpeername(a)), Err(Errno::ENOTCONN));
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Err(Errno::EINPROGRESS));
    l.run();
    assert_eq!(call!(l.a, connect_status(l.now, a)), Ok(()));
}

#[test]
fn a_bound_client_connects_from_its_port_and_ports_are_tcp_s_to_keep() {
    let mut l = Link::new();
    let _lfd = listener(&mut l.b, "0.0.0.0:8080", 4);
    let a = tcp(&mut l.a);
    call!(l.a, bind(a, sa("10.0.0.1:40000"))).unwrap();
    // Another idle socket cannot bind the same port (the table keeps it until TCP does).
    let other = tcp(&mut l.a);
    assert_eq!(call!(l.a, bind(other, sa("0.0.0.0:40000"))), Err(Errno::EADDRINUSE));
    assert_eq!(call!(l.a, connect(l.now, a, sa("10.0.0.2:8080"))), Err(Errno::EINPROGRESS));
    l.run();
    assert_eq!(call!(l.a, connect_status(l.now, a)), Ok(()));
    assert_eq!(call!(l.a, getsockname(a)), Ok(SocketAddrV4::new(A_IP, 40000)));
    // Now TCP holds it: still refused, and refused to a listener too.
    assert_eq!(call!(l.a, bind(other, sa("0.0.0.0:40000"))), Err(Errno::EADDRINUSE));
    // Ephemeral ports never collide with it.
    for _ in 0..50 {
        let e = tcp(&mut l.a);
        call!(l.a, bind(e, sa("0.0.0.0:0"))).unwrap();
        assert_ne!(call!(l.a, getsockname(e)).unwrap().port(), 40000);
    }
}

#[test]
fn transitions_are_recorded_for_tracing() {
    let mut l = Link::new();
    let (a, _b, _) = pair(&mut l, 8080);
    let mut seen = Vec::new();
    l.a.stack.tcp().0.drain_transitions(|t| seen.push((t.from, t.to)));
    assert_eq!(seen, [(State::Closed, State::SynSent), (State::SynSent, State::Established)]);
    call!(l.a, close(l.now, a)).unwrap();
    l.a.stack.tcp().0.drain_transitions(|t| seen.push((t.from, t.to)));
    assert_eq!(seen.last(), Some(&(State::Established, State::FinWait1)));
}
