//! What stopping a stack does to its connections (issue 14, item 3): what the
//! kernel does for a process's sockets at exit. A connection with nothing unread
//! sends its FIN and the stack waits for its acknowledgment; one with unread
//! data is reset (RFC 9293 section 3.10.4, RFC 1122 section 4.2.2.13); a peer
//! that never answers costs at most `TcpConfig::exit_linger`, and is then reset.
//!
//! First in virtual time (`sim::Link` and `exit::Exit`, the sans-IO part the
//! runtime drives), then with real runtimes on an in-memory wire: dropping or
//! stopping a `Runtime`, and what its blocked callers get (issue 14, item 8).

use sockets_api::exit::Exit;
use sockets_api::sim::{runtime_pair, Host, Link};
use sockets_api::*;
use stack::tcp::State;
use stack::Duration;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

macro_rules! call {
    ($host:expr, $method:ident ( $($arg:expr),* $(,)? )) => {{
        let h = &mut $host;
        h.sockets.$method(&mut h.stack, $($arg),*)
    }};
}

/// A connection from a to b's listener on `port`, in virtual time: (a's socket, b's).
fn established(l: &mut Link, port: u16) -> (Fd, Fd) {
    let lfd = call!(l.b, socket(AF_INET, SOCK_STREAM, 0)).unwrap();
    call!(l.b, bind(lfd, sa(&format!("0.0.0.0:{port}")))).unwrap();
    call!(l.b, listen(lfd, 8)).unwrap();
    let a = call!(l.a, socket(AF_INET, SOCK_STREAM, 0)).unwrap();
    assert_eq!(call!(l.a, connect(l.now, a, sa(&format!("10.0.0.2:{port}")))), Err(Errno::EINPROGRESS));
    l.advance(Duration::from_millis(10));
    let (b, _) = call!(l.b, accept(l.now, lfd)).unwrap();
    (a, b)
}

/// The states of every TCP connection (not listener) of a host.
fn states(h: &mut Host) -> Vec<State> {
    h.stack.tcp().0.sockets().map(|(_, i)| i.state).filter(|s| *s != State::Listen).collect()
}

fn exit_linger(h: &mut Host) -> Duration {
    h.stack.tcp().0.config().exit_linger
}

#[test]
fn an_exit_sends_a_fin_and_ends_when_the_peer_acknowledges_it() {
    let mut l = Link::new();
    let (_a, b) = established(&mut l, 7001);
    let start = l.now;
    let exit = Exit::begin(&mut l.a.sockets, &mut l.a.stack, l.now);
    assert!(l.a.sockets.is_empty(), "every descriptor is closed");
    assert_eq!(states(&mut l.a), [State::FinWait1]);
    assert!(!exit.done(&mut l.a.stack, l.now), "the FIN is not acknowledged yet");
    l.run();
    assert_eq!(states(&mut l.a), [State::FinWait2]);
    assert!(exit.done(&mut l.a.stack, l.now), "acknowledged: the stack may stop");
    assert_eq!(l.now, start, "no time passed: one round trip on the virtual wire");
    // The peer reads end of file: its connection is in CLOSE-WAIT, not ESTABLISHED.
    assert_eq!(call!(l.b, recv(l.now, b, &mut [0u8; 16], 0)), Ok(0));
    assert_eq!(states(&mut l.b), [State::CloseWait]);
}

#[test]
fn an_exit_with_unread_data_resets_the_connection() {
    let mut l = Link::new();
    let (_a, b) = established(&mut l, 7002);
    assert_eq!(call!(l.b, send(l.now, b, b"never read", 0)), Ok(10));
    l.advance(Duration::from_millis(100));
    let exit = Exit::begin(&mut l.a.sockets, &mut l.a.stack, l.now);
    assert!(states(&mut l.a).is_empty(), "aborted at once, no FIN-WAIT");
    assert!(exit.done(&mut l.a.stack, l.now));
    l.run();
    assert_eq!(call!(l.b, recv(l.now, b, &mut [0u8; 16], 0)), Err(Errno::ECONNRESET));
    assert_eq!(states(&mut l.b), [State::Closed], "the peer's connection is reset");
}

#[test]
fn a_peer_that_never_acknowledges_the_fin_is_reset_at_the_bound() {
    let mut l = Link::new();
    let (_a, b) = established(&mut l, 7003);
    // From now on nothing b sends reaches a: the FIN is retransmitted unanswered.
    l.filter = Some(|from_a, _| from_a);
    let (start, bound) = (l.now, exit_linger(&mut l.a));
    let exit = Exit::begin(&mut l.a.sockets, &mut l.a.stack, l.now);
    assert_eq!(exit.deadline(), start + bound);
    let sent_before = l.carried.0;
    let step = Duration::from_millis(100);
    while l.now + step < exit.deadline() {
        l.advance(step);
        assert!(!exit.done(&mut l.a.stack, l.now), "done before the bound, at {:?}", l.now - start);
    }
    assert!(l.carried.0 - sent_before >= 2, "the FIN went out and was retransmitted within the bound");
    assert_eq!(states(&mut l.b), [State::CloseWait], "b got the FIN, its ACKs are lost");
    l.advance(exit.deadline() - l.now);
    assert!(exit.done(&mut l.a.stack, l.now), "the bound ends the wait");
    assert!(states(&mut l.a).is_empty(), "the unacknowledged connection is aborted");
    l.run();
    assert_eq!(states(&mut l.b), [State::Closed], "b is told by a RST, not left waiting");
    assert_eq!(call!(l.b, recv(l.now, b, &mut [0u8; 16], 0)), Ok(0), "end of file, read before the RST");
}

#[test]
fn an_exit_resets_the_connections_a_listener_had_not_handed_out() {
    let mut l = Link::new();
    let lfd = call!(l.a, socket(AF_INET, SOCK_STREAM, 0)).unwrap();
    call!(l.a, bind(lfd, sa("0.0.0.0:7004"))).unwrap();
    call!(l.a, listen(lfd, 8)).unwrap();
    let c = call!(l.b, socket(AF_INET, SOCK_STREAM, 0)).unwrap();
    assert_eq!(call!(l.b, connect(l.now, c, sa("10.0.0.1:7004"))), Err(Errno::EINPROGRESS));
    l.advance(Duration::from_millis(10));
    assert_eq!(states(&mut l.b), [State::Established]);
    let exit = Exit::begin(&mut l.a.sockets, &mut l.a.stack, l.now);
    l.run();
    assert!(exit.done(&mut l.a.stack, l.now));
    assert_eq!(call!(l.b, recv(l.now, c, &mut [0u8; 16], 0)), Err(Errno::ECONNRESET));
}

// Real runtimes on an in-memory wire: a at 10.0.0.1, b at 10.0.0.2.

/// Generous bound on what should be prompt, for a loaded 2-core machine.
const PROMPT: std::time::Duration = std::time::Duration::from_secs(5);

/// b listens on `port`, a connects: (a's stream, b's accepted stream).
fn connected(a: &Net, b: &Net, port: u16) -> (TcpStream, TcpStream) {
    let l = TcpListener::bind(b, format!("0.0.0.0:{port}")).unwrap();
    let c = TcpStream::connect(a, format!("10.0.0.2:{port}")).unwrap();
    let (s, _) = l.accept().unwrap();
    for s in [&c, &s] {
        s.set_read_timeout(Some(PROMPT * 4)).unwrap();
    }
    (c, s)
}

#[test]
fn dropping_a_runtime_sends_a_fin_and_waits_only_for_its_acknowledgment() {
    let (ra, rb) = runtime_pair((31, 32));
    let (a, b) = (ra.net(), rb.net());
    let (c, mut s) = connected(&a, &b, 7101);
    let t = Instant::now();
    drop(ra);
    let took = t.elapsed();
    // Read after the drop: the FIN is in, and acknowledged (else the drop waits 2 s).
    assert_eq!(s.read(&mut [0u8; 16]).unwrap(), 0, "b reads end of file");
    let state = rb.net().socket_table().into_iter().find(|e| e.local.port() == 7101 && e.remote.is_some());
    assert_eq!(state.map(|e| e.state), Some(SocketState::Tcp(TcpState::CloseWait)));
    println!("drop with an ESTABLISHED connection, peer answering: {took:?}");
    assert!(took < std::time::Duration::from_secs(2), "ended by the ACK, not by the 2 s bound: {took:?}");
    drop(c);
}

#[test]
fn dropping_a_runtime_with_unread_data_resets_the_connection() {
    let (ra, rb) = runtime_pair((33, 34));
    let (a, b) = (ra.net(), rb.net());
    let (c, mut s) = connected(&a, &b, 7102);
    s.write_all(b"unread by a").unwrap();
    // Wait until a has the data (readable), without reading it.
    let mut fds = [PollFd { fd: c.fd(), events: POLLIN, revents: 0 }];
    assert_eq!(a.poll(&mut fds, PROMPT.as_millis() as i32), Ok(1));
    drop(ra);
    let e = s.read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
}

#[test]
fn stopping_is_bounded_when_the_peer_is_gone() {
    let (ra, rb) = runtime_pair((35, 36));
    let (a, b) = (ra.net(), rb.net());
    let (mut c, _s) = connected(&a, &b, 7103);
    // b goes first (its FIN is acknowledged by a), and then answers nothing.
    drop(rb);
    assert_eq!(c.read(&mut [0u8; 16]).unwrap(), 0);
    // a's close sends a FIN nobody acknowledges: the stop waits for the bound, then resets.
    let t = Instant::now();
    ra.stop().unwrap();
    let took = t.elapsed();
    println!("stop with the peer gone: {took:?} (bound 2 s)");
    assert!(took >= std::time::Duration::from_millis(1900), "waited for the acknowledgment: {took:?}");
    assert!(took < std::time::Duration::from_secs(2) + PROMPT, "bounded: {took:?}");
}

#[test]
fn callers_blocked_when_the_runtime_stops_get_errors_and_incoming_ends() {
    let (ra, rb) = runtime_pair((37, 38));
    let (a, b) = (ra.net(), rb.net());
    let (c, _s) = connected(&a, &b, 7104);
    let listener = TcpListener::bind(&a, "0.0.0.0:7105").unwrap();
    let l2 = listener.try_clone().unwrap();
    let accepting = std::thread::spawn(move || l2.accept().map(|_| ()));
    // The way the Rust book's server loops: an unwrap on every connection.
    let incoming = std::thread::spawn(move || {
        for stream in listener.incoming() {
            let _stream = stream.unwrap();
        }
    });
    let mut c2 = c.try_clone().unwrap();
    let reading = std::thread::spawn(move || c2.read(&mut [0u8; 16]));
    assert!(ra.shared().wait_for_waiters(3, PROMPT), "three threads block");
    drop(ra);
    let e = accepting.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NetworkDown, "{e}");
    let e = reading.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NetworkDown, "{e}");
    assert!(incoming.join().is_ok(), "incoming() ends instead of handing out an error to unwrap");
    drop(c);
}
