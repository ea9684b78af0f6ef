//! Stream sockets in real time: two stacks, each on its runtime thread, joined by
//! an in-memory wire. Blocking accept, connect, read and write across threads,
//! their wake-ups and timeouts, MSG_WAITALL, SO_LINGER's wait, and the std-like
//! TcpListener and TcpStream. Every wait is bounded; threads synchronise on the
//! calls themselves (or `wait_for_waiters`), never on sleeps.

use sockets_api::*;
use stack::device::wire::Wire;
use stack::{Config, MacAddr, Stack};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// Generous bound on anything that should be prompt, for a loaded 2-core machine.
const PROMPT: Duration = Duration::from_secs(5);
/// Safety net on blocking calls, so that a broken wake-up fails a test instead of hanging it.
const NET: Duration = Duration::from_secs(30);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Two running stacks on one wire: a at 10.0.0.1, b at 10.0.0.2.
fn pair() -> (Runtime, Runtime) {
    let (wa, wb) = Wire::pair();
    let ca = Config { seed: 21, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), A_IP, 24) };
    let cb = Config { seed: 22, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), B_IP, 24) };
    let ra = Runtime::start(Stack::new(ca).unwrap(), wa).unwrap();
    let rb = Runtime::start(Stack::new(cb).unwrap(), wb).unwrap();
    (ra, rb)
}

fn safety(net: &Net, fd: Fd) {
    net.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, NET).unwrap();
    net.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, NET).unwrap();
}

fn listening(net: &Net, addr: &str) -> Fd {
    let fd = net.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    safety(net, fd);
    net.bind(fd, sa(addr)).unwrap();
    net.listen(fd, 16).unwrap();
    fd
}

/// A blocking connect from a to b's listener on `port`, and the accepted socket.
fn connected(a: &Net, b: &Net, lfd: Fd, port: u16) -> (Fd, Fd) {
    let c = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    safety(a, c);
    a.connect(c, SocketAddrV4::new(B_IP, port)).unwrap();
    let (s, _) = b.accept(lfd).unwrap();
    safety(b, s);
    (c, s)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn blocking_accept_and_connect_meet_across_threads() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let lfd = listening(&b, "0.0.0.0:8080");
    let b2 = b.clone();
    let acceptor = std::thread::spawn(move || b2.accept(lfd));
    assert!(rb.shared().wait_for_waiters(1, PROMPT), "accept blocks");
    let c = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    let start = Instant::now();
    a.connect(c, sa("10.0.0.2:8080")).unwrap();
    let (s, peer) = acceptor.join().unwrap().unwrap();
    assert!(start.elapsed() < PROMPT);
    assert_eq!(peer, a.getsockname(c).unwrap());
    assert_eq!(b.getpeername(s).unwrap(), peer);
    assert_eq!(a.getpeername(c).unwrap(), SocketAddrV4::new(B_IP, 8080));
    assert_eq!(a.connect(c, sa("10.0.0.2:8080")), Err(Errno::EISCONN));
}

#[test]
fn a_blocking_read_wakes_when_data_arrives_and_at_eof() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let lfd = listening(&b, "0.0.0.0:8080");
    let (c, s) = connected(&a, &b, lfd, 8080);
    let b2 = b.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let n = b2.recv(s, &mut buf, 0).unwrap();
        let first = buf[..n].to_vec();
        (first, b2.recv(s, &mut buf, 0))
    });
    assert!(rb.shared().wait_for_waiters(1, PROMPT));
    a.send(c, b"ping", 0).unwrap();
    assert!(rb.shared().wait_for_waiters(1, PROMPT), "blocked again for the next read");
    a.shutdown(c, SHUT_WR).unwrap();
    let (first, eof) = reader.join().unwrap();
    assert_eq!(first, b"ping");
    assert_eq!(eof, Ok(0));
}

#[test]
fn a_blocking_send_queues_everything_while_the_peer_reads() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let lfd = listening(&b, "0.0.0.0:8080");
    let (c, s) = connected(&a, &b, lfd, 8080);
    let data = pattern(1 << 20);
    let expect = data.clone();
    let b2 = b.clone();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 10_000];
        loop {
            match b2.recv(s, &mut buf, 0) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    });
    // One call: far more than the send buffer (64 KiB), so it waits for room many times.
    assert_eq!(a.send(c, &data, 0), Ok(data.len()));
    a.close(c).unwrap();
    assert!(reader.join().unwrap().unwrap() == expect);
}

#[test]
fn msg_waitall_waits_for_the_whole_buffer_or_the_end() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let lfd = listening(&b, "0.0.0.0:8080");
    let (c, s) = connected(&a, &b, lfd, 8080);
    // More than the receive buffer (64 KiB): it must be read in parts as it comes.
    let data = pattern(300_000);
    let to_send = data.clone();
    let a2 = a.clone();
    let writer = std::thread::spawn(move || {
        for chunk in to_send.chunks(7000) {
            a2.send(c, chunk, 0).unwrap();
        }
    });
    let mut buf = vec![0u8; data.len()];
    assert_eq!(b.recv(s, &mut buf, MSG_WAITALL), Ok(data.len()));
    assert!(buf == data);
    writer.join().unwrap();
    // MSG_PEEK|MSG_WAITALL waits until all of it is there, and leaves it.
    let a2 = a.clone();
    let writer = std::thread::spawn(move || {
        for chunk in b"0123456789".chunks(3) {
            a2.send(c, chunk, 0).unwrap();
        }
    });
    let mut peeked = [0u8; 10];
    assert_eq!(b.recv(s, &mut peeked, MSG_PEEK | MSG_WAITALL), Ok(10));
    assert_eq!(&peeked, b"0123456789");
    writer.join().unwrap();
    assert_eq!(b.recv(s, &mut peeked, MSG_WAITALL), Ok(10));
    // At the end of the stream it returns what there was.
    a.send(c, b"tail", 0).unwrap();
    a.shutdown(c, SHUT_WR).unwrap();
    let mut big = [0u8; 100];
    let start = Instant::now();
    assert_eq!(b.recv(s, &mut big, MSG_WAITALL), Ok(4));
    assert!(start.elapsed() < PROMPT, "the end of the stream ends the wait: {:?}", start.elapsed());
    assert_eq!(&big[..4], b"tail");
    // With SO_RCVTIMEO it returns what came in time (here: nothing, so EAGAIN).
    let (c2, s2) = connected(&a, &b, lfd, 8080);
    b.setsockopt(s2, SOL_SOCKET, SO_RCVTIMEO, Duration::from_millis(200)).unwrap();
    a.send(c2, b"part", 0).unwrap();
    let start = Instant::now();
    assert_eq!(b.recv(s2, &mut big, MSG_WAITALL), Ok(4));
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(b.recv(s2, &mut big, MSG_WAITALL), Err(Errno::EAGAIN));
}

#[test]
fn so_sndtimeo_returns_the_part_queued_then_eagain() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let lfd = listening(&b, "0.0.0.0:8080");
    let (c, _s) = connected(&a, &b, lfd, 8080);
    a.setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, Duration::from_millis(300)).unwrap();
    // b never reads: its 64 KiB window and our 64 KiB buffer fill up.
    let data = vec![1u8; 1 << 20];
    let start = Instant::now();
    let n = a.send(c, &data, 0).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(n > 0 && n < data.len(), "{n}");
    // Now at most what zero-window probes free (a byte at a time) gets in.
    match a.send(c, &data, 0) {
        Err(Errno::EAGAIN) => {}
        Ok(k) => assert!(k < 1460, "{k}"),
        Err(e) => panic!("{e:?}"),
    }
    // During a handshake that never ends nothing can be queued: EAGAIN at the timeout.
    let d = a.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).unwrap();
    assert_eq!(a.connect(d, sa("10.0.0.3:80")), Err(Errno::EINPROGRESS));
    a.fcntl(d, F_SETFL, 0).unwrap();
    a.setsockopt(d, SOL_SOCKET, SO_SNDTIMEO, Duration::from_millis(200)).unwrap();
    let start = Instant::now();
    assert_eq!(a.send(d, b"x", 0), Err(Errno::EAGAIN));
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(a.send(d, b"x", MSG_DONTWAIT), Err(Errno::EAGAIN));
}

#[test]
fn nonblocking_connect_then_poll_then_so_error() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let _lfd = listening(&b, "0.0.0.0:8080");
    let c = a.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).unwrap();
    assert_eq!(a.connect(c, sa("10.0.0.2:8080")), Err(Errno::EINPROGRESS));
    let mut p = [PollFd::new(c, POLLOUT)];
    assert_eq!(a.poll(&mut p, 10_000), Ok(1));
    assert_eq!(p[0].revents, POLLOUT);
    assert_eq!(a.getsockopt_int(c, SOL_SOCKET, SO_ERROR), Ok(0));
    // Refused: POLLOUT with POLLERR, and SO_ERROR says why.
    let r = a.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).unwrap();
    assert_eq!(a.connect(r, sa("10.0.0.2:9")), Err(Errno::EINPROGRESS));
    let mut p = [PollFd::new(r, POLLOUT)];
    assert_eq!(a.poll(&mut p, 10_000), Ok(1));
    assert_eq!(p[0].revents & (POLLOUT | POLLERR), POLLOUT | POLLERR);
    assert_eq!(a.getsockopt_int(r, SOL_SOCKET, SO_ERROR), Ok(Errno::ECONNREFUSED.0));
}

#[test]
fn blocking_connect_errors_and_timeouts() {
    let (ra, _rb) = pair();
    let a = ra.net();
    let c = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(a.connect(c, sa("10.0.0.2:9")), Err(Errno::ECONNREFUSED));
    assert_eq!(a.connect(c, sa("192.168.1.1:80")), Err(Errno::ENETUNREACH));
    // Nobody at 10.0.0.3: SO_SNDTIMEO bounds a blocking connect (EINPROGRESS), and
    // connect_timeout turns that into TimedOut.
    a.setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, Duration::from_millis(200)).unwrap();
    let start = Instant::now();
    assert_eq!(a.connect(c, sa("10.0.0.3:80")), Err(Errno::EINPROGRESS));
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(a.connect(c, sa("10.0.0.3:80")), Err(Errno::EALREADY));
    let start = Instant::now();
    let e = TcpStream::connect_timeout(&a, &sa("10.0.0.3:80"), Duration::from_millis(300)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(300) && start.elapsed() < PROMPT);
    let e = TcpStream::connect_timeout(&a, &sa("10.0.0.2:9"), PROMPT).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    let e = TcpStream::connect_timeout(&a, &sa("10.0.0.2:9"), Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn close_and_shutdown_from_another_thread_wake_blocked_calls() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let lfd = listening(&b, "0.0.0.0:8080");
    // shutdown(SHUT_RD) on a listener stops it and wakes accept with EINVAL.
    let b2 = b.clone();
    let acceptor = std::thread::spawn(move || b2.accept(lfd));
    assert!(rb.shared().wait_for_waiters(1, PROMPT));
    b.shutdown(lfd, SHUT_RD).unwrap();
    assert_eq!(acceptor.join().unwrap(), Err(Errno::EINVAL));
    b.listen(lfd, 4).unwrap();
    let (c, s) = connected(&a, &b, lfd, 8080);
    // close wakes a blocked recv with EBADF, and the peer sees the connection end.
    let b2 = b.clone();
    let reader = std::thread::spawn(move || b2.recv(s, &mut [0; 8], 0));
    assert!(rb.shared().wait_for_waiters(1, PROMPT));
    b.close(s).unwrap();
    assert_eq!(reader.join().unwrap(), Err(Errno::EBADF));
    assert_eq!(a.recv(c, &mut [0; 8], 0), Ok(0));
    // shutdown(SHUT_RD) wakes a blocked recv, which reads 0.
    let (c, s) = connected(&a, &b, lfd, 8080);
    let a2 = a.clone();
    let reader = std::thread::spawn(move || a2.recv(c, &mut [0; 8], 0));
    assert!(ra.shared().wait_for_waiters(1, PROMPT));
    a.shutdown(c, SHUT_RD).unwrap();
    assert_eq!(reader.join().unwrap(), Ok(0));
    // shutdown(SHUT_WR) wakes a send blocked for room: EPIPE.
    a.setsockopt(c, SOL_SOCKET, SO_SNDBUF, 4096).unwrap();
    let a2 = a.clone();
    let writer = std::thread::spawn(move || {
        let big = vec![0u8; 1 << 20];
        let first = a2.send(c, &big, 0);
        (first, a2.send(c, &big, 0))
    });
    assert!(ra.shared().wait_for_waiters(1, PROMPT));
    a.shutdown(c, SHUT_WR).unwrap();
    let (first, second) = writer.join().unwrap();
    assert!(first.is_ok_and(|n| n > 0 && n < 1 << 20), "{first:?}: the part queued before");
    assert_eq!(second, Err(Errno::EPIPE));
    let _ = s;
}

#[test]
fn a_peer_reset_is_econnreset_then_epipe_without_sigpipe() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let lfd = listening(&b, "0.0.0.0:8080");
    let (c, s) = connected(&a, &b, lfd, 8080);
    b.setsockopt(s, SOL_SOCKET, SO_LINGER, Linger { l_onoff: 1, l_linger: 0 }).unwrap();
    let a2 = a.clone();
    let reader = std::thread::spawn(move || a2.recv(c, &mut [0; 8], 0));
    assert!(ra.shared().wait_for_waiters(1, PROMPT));
    b.close(s).unwrap();
    assert_eq!(reader.join().unwrap(), Err(Errno::ECONNRESET));
    // Had SIGPIPE been raised this process would be gone.
    assert_eq!(a.send(c, b"x", 0), Err(Errno::EPIPE));
    assert_eq!(a.send(c, b"x", MSG_NOSIGNAL), Err(Errno::EPIPE));
    assert_eq!(a.recv(c, &mut [0; 8], 0), Ok(0));
}

#[test]
fn so_linger_close_waits_for_the_ack_or_the_linger_time() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let lfd = listening(&b, "0.0.0.0:8080");
    // The peer is there and reads: close returns as soon as our FIN (after more
    // data than the peer's window) is acknowledged, well before the linger time.
    let (c, s) = connected(&a, &b, lfd, 8080);
    a.setsockopt(c, SOL_SOCKET, SO_LINGER, Linger { l_onoff: 1, l_linger: 30 }).unwrap();
    a.send(c, &pattern(100_000), 0).unwrap();
    let b2 = b.clone();
    let reader = std::thread::spawn(move || {
        let mut got = 0;
        let mut buf = vec![0u8; 65536];
        while let Ok(n @ 1..) = b2.recv(s, &mut buf, 0) {
            got += n;
        }
        got
    });
    let start = Instant::now();
    a.close(c).unwrap();
    assert!(start.elapsed() < PROMPT, "{:?}", start.elapsed());
    assert_eq!(reader.join().unwrap(), 100_000, "everything was delivered before the FIN");
    // The peer is gone: close waits the linger time, then returns 0.
    let (c, _s) = connected(&a, &b, lfd, 8080);
    a.setsockopt(c, SOL_SOCKET, SO_LINGER, Linger { l_onoff: 1, l_linger: 1 }).unwrap();
    drop(b);
    rb.stop().unwrap();
    let start = Instant::now();
    assert_eq!(a.close(c), Ok(()));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(1) + PROMPT, "{waited:?}");
}

#[test]
fn tcp_listener_and_stream_echo_a_mebibyte_intact() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let listener = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    assert_eq!(listener.local_addr().unwrap(), sa("0.0.0.0:7"));
    let server = std::thread::spawn(move || -> io::Result<u64> {
        let stream = listener.incoming().next().unwrap()?;
        stream.set_read_timeout(Some(NET))?;
        // Echo with std's copy over a reading and a writing handle of one stream.
        let (mut r, mut w) = (stream.try_clone()?, stream);
        let n = io::copy(&mut r, &mut w)?;
        w.shutdown(Shutdown::Write)?;
        Ok(n)
    });
    let mut stream = TcpStream::connect(&a, "10.0.0.2:7").unwrap();
    stream.set_read_timeout(Some(NET)).unwrap();
    stream.set_nodelay(true).unwrap();
    assert!(stream.nodelay().unwrap());
    assert_eq!(stream.peer_addr().unwrap(), sa("10.0.0.2:7"));
    assert_eq!(stream.local_addr().unwrap().ip(), std::net::IpAddr::V4(A_IP));
    let data = pattern(1 << 20);
    let to_send = data.clone();
    let writer = {
        let mut w = stream.try_clone().unwrap();
        std::thread::spawn(move || -> io::Result<()> {
            w.write_all(&to_send)?;
            w.shutdown(Shutdown::Write)
        })
    };
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(server.join().unwrap().unwrap(), data.len() as u64);
    assert!(echoed == data, "{} bytes came back", echoed.len());
    assert!(stream.take_error().unwrap().is_none());
}

#[test]
fn tcp_stream_options_timeouts_and_drop_closing() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let listener = TcpListener::bind(&b, "0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(port >= 49152);
    let stream = TcpStream::connect(&a, ("10.0.0.2", port)).unwrap();
    let (mut accepted, peer) = listener.accept().unwrap();
    assert_eq!(peer, stream.local_addr().unwrap());
    assert_eq!(stream.read_timeout().unwrap(), None);
    let t = Duration::from_millis(150);
    stream.set_read_timeout(Some(t)).unwrap();
    assert_eq!(stream.read_timeout().unwrap(), Some(t));
    assert_eq!(stream.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    let start = Instant::now();
    assert_eq!((&stream).read(&mut [0; 4]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    assert!(start.elapsed() >= t);
    stream.set_nonblocking(true).unwrap();
    assert_eq!((&stream).read(&mut [0; 4]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    stream.set_linger(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(stream.linger().unwrap(), Some(Duration::from_secs(3)));
    stream.set_ttl(9).unwrap();
    assert_eq!(stream.ttl().unwrap(), 9);
    accepted.write_all(b"peek me").unwrap();
    let mut buf = [0u8; 7];
    stream.set_read_timeout(Some(NET)).unwrap();
    assert_eq!(stream.peek(&mut buf).unwrap(), 7);
    assert_eq!(&buf, b"peek me");
    // Dropping one of two handles keeps the connection; dropping the last closes it.
    let clone = stream.try_clone().unwrap();
    drop(stream);
    (&clone).read_exact(&mut buf).unwrap();
    accepted.set_read_timeout(Some(NET)).unwrap();
    drop(clone);
    assert_eq!(accepted.read(&mut buf).unwrap(), 0, "EOF once the last handle is gone");
    // A listener in nonblocking mode.
    listener.set_nonblocking(true).unwrap();
    assert_eq!(listener.accept().unwrap_err().kind(), io::ErrorKind::WouldBlock);
    // Binding a port with a listener is refused.
    assert_eq!(TcpListener::bind(&b, ("0.0.0.0", port)).unwrap_err().kind(), io::ErrorKind::AddrInUse);
}

/// The next `n` transitions of `trace` as (from, to), each awaited up to PROMPT.
fn next_transitions(trace: &TransitionTrace, n: usize) -> Vec<(TcpState, TcpState)> {
    (0..n)
        .map(|i| {
            let t = trace.recv_timeout(PROMPT).unwrap_or_else(|| panic!("transition {i} of {n} did not come"));
            (t.from, t.to)
        })
        .collect()
}

#[test]
fn tcp_state_transitions_are_traced_as_they_happen() {
    use TcpState::*;
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let ta = a.trace_transitions(64);
    let tb = b.trace_transitions(64);
    let lfd = listening(&b, "0.0.0.0:8080");
    // The listener's transition comes at once (no frame, no runtime round needed).
    assert_eq!(next_transitions(&tb, 1), [(Closed, Listen)]);
    let (c, s) = connected(&a, &b, lfd, 8080);
    assert_eq!(next_transitions(&ta, 2), [(Closed, SynSent), (SynSent, Established)]);
    assert_eq!(next_transitions(&tb, 2), [(Listen, SynReceived), (SynReceived, Established)]);
    a.close(c).unwrap();
    assert_eq!(b.recv(s, &mut [0; 4], 0), Ok(0));
    b.close(s).unwrap();
    assert_eq!(next_transitions(&ta, 3), [(Established, FinWait1), (FinWait1, FinWait2), (FinWait2, TimeWait)]);
    assert_eq!(next_transitions(&tb, 3), [(Established, CloseWait), (CloseWait, LastAck), (LastAck, Closed)]);
    assert!(ta.try_recv().is_none() && tb.try_recv().is_none(), "nothing else happened");
    assert_eq!(ta.lost(), 0);
    // Each prints as one line, in RFC 9293's words.
    let c2 = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    a.connect(c2, sa("10.0.0.2:8080")).unwrap();
    let line = ta.recv_timeout(PROMPT).unwrap().to_string();
    assert!(line.contains("10.0.0.2:8080") && line.contains("CLOSED -> SYN-SENT"), "{line}");
    // A receiver that falls behind loses transitions and is told how many.
    let small = a.trace_transitions(1);
    let c3 = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    a.connect(c3, sa("10.0.0.2:8080")).unwrap();
    assert_eq!(small.try_recv().map(|t| (t.from, t.to)), Some((Closed, SynSent)));
    assert_eq!(small.lost(), 1, "SYN-SENT -> ESTABLISHED did not fit");
    drop(small);
    // Stopping the runtime ends the iteration.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rest = ta.iter().count();
        let _ = done_tx.send(rest);
    });
    drop(a);
    ra.stop().unwrap();
    assert!(done_rx.recv_timeout(PROMPT).is_ok(), "the iterator ended");
}
