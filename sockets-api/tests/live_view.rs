//! The live view of a stack a program can ask for: `Net::socket_table` (what
//! `tapstack ss` lists) and `Net::counters` (what `tapstack stats` prints), on two
//! runtimes joined by an in-memory wire; and the core's `Stack::socket_table` in
//! virtual time, where the time left on a timer is exact.

use sockets_api::sim::{runtime_pair, Link, B_IP};
use sockets_api::*;
use stack::socket_table::TimersLeft;
use stack::Duration;
use std::net::{SocketAddr, SocketAddrV4};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A blocking call's safety net, so that a broken wake-up fails instead of hanging.
fn bounded(net: &Net, fd: Fd) {
    net.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, std::time::Duration::from_secs(30)).unwrap();
    net.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, std::time::Duration::from_secs(30)).unwrap();
}

#[test]
fn socket_table_lists_a_running_stacks_connections_listeners_and_udp_sockets() {
    let (ra, rb) = runtime_pair((31, 32));
    let (a, b) = (ra.net(), rb.net());
    let lfd = b.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    bounded(&b, lfd);
    b.bind(lfd, sa("0.0.0.0:8080")).unwrap();
    b.listen(lfd, 5).unwrap();
    let c = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    bounded(&a, c);
    a.connect(c, sa("10.0.0.2:8080")).unwrap();
    let (s, _) = b.accept(lfd).unwrap();
    bounded(&b, s);
    assert_eq!(a.send(c, b"hello", 0), Ok(5));
    let mut buf = [0u8; 5];
    assert_eq!(b.recv(s, &mut buf, MSG_WAITALL), Ok(5));
    let u = b.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    b.bind(u, sa("0.0.0.0:5353")).unwrap();

    let local = a.getsockname(c).unwrap();
    let ours = a.socket_table();
    let conn = ours.iter().find(|e| e.local == local).expect("a's connection is listed");
    assert_eq!(conn.state, SocketState::Tcp(TcpState::Established));
    assert_eq!(conn.remote, Some(SocketAddrV4::new(B_IP, 8080)));
    let info = conn.tcp.as_ref().expect("a connection has TCP internals");
    assert!(info.bytes_sent >= 5, "b received them, so they were sent: {info:?}");
    assert!(info.segs_out >= 2 && info.cwnd > 0 && info.snd_mss > 0, "{info:?}");

    let theirs = b.socket_table();
    let listener = theirs.iter().find(|e| e.state == SocketState::Tcp(TcpState::Listen)).unwrap();
    assert_eq!((listener.recv_q, listener.send_q), (0, 5), "nothing waits to be accepted; backlog 5");
    let accepted = theirs.iter().find(|e| e.remote == Some(local)).unwrap();
    assert_eq!(accepted.tcp.as_ref().map(|i| i.bytes_received), Some(5));
    let udp = theirs.iter().find(|e| e.state == SocketState::UdpUnconnected).unwrap();
    assert_eq!((udp.local, udp.remote), ("0.0.0.0:5353".parse().unwrap(), None));

    // And the counters, the other half of the view.
    let counters = b.counters();
    assert!(counters.link.rx_frames > 0 && counters.tcp.rx_segments > 0);
    assert_eq!(counters.tcp.passive_opens, 1);
    assert_eq!(a.counters().tcp.active_opens, 1);
}

#[test]
fn the_side_that_closes_first_shows_time_wait_with_its_time_left() {
    let mut l = Link::new();
    let lfd = l.b.sockets.socket(&mut l.b.stack, AF_INET, SOCK_STREAM, 0).unwrap();
    l.b.sockets.bind(&mut l.b.stack, lfd, sa("0.0.0.0:80")).unwrap();
    l.b.sockets.listen(&mut l.b.stack, lfd, 4).unwrap();
    let c = l.a.sockets.socket(&mut l.a.stack, AF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(l.a.sockets.connect(&mut l.a.stack, l.now, c, sa("10.0.0.2:80")), Err(Errno::EINPROGRESS));
    l.advance(Duration::from_millis(10));
    let (s, _) = l.b.sockets.accept(&mut l.b.stack, l.now, lfd).unwrap();

    // b closes first (as an HTTP/1.0 server does), then a.
    l.b.sockets.close(&mut l.b.stack, l.now, s).unwrap();
    l.run();
    l.a.sockets.close(&mut l.a.stack, l.now, c).unwrap();
    l.run();
    let closed_at = l.now;
    l.advance(Duration::from_secs(10));

    let table = l.b.stack.socket_table(l.now);
    let tw = table.iter().find(|e| e.state == SocketState::Tcp(TcpState::TimeWait)).expect("b is in TIME-WAIT");
    // 2*MSL is 60 s, begun when a's FIN arrived.
    let left = Duration::from_secs(60) - (l.now.saturating_duration_since(closed_at));
    assert_eq!(tw.timers, TimersLeft { close: Some(left), ..TimersLeft::default() });
    assert!(l.a.stack.socket_table(l.now).iter().all(|e| e.state != SocketState::Tcp(TcpState::TimeWait)));
}
