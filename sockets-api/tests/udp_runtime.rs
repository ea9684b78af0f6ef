//! The runtime-backed calls in real time: two stacks, each on its runtime thread,
//! joined by an in-memory wire. Blocking calls, wake-ups, timeouts, poll and
//! select, the std-like UdpSocket, the echo service and nc. Every wait is bounded.

use sockets_api::nc::{NcOptions, UdpNc};
use sockets_api::services::udp_echo;
use sockets_api::*;
use stack::device::wire::Wire;
use stack::{Config, MacAddr, Stack};
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// Generous bound on anything that should be prompt, for a loaded 2-core machine.
const PROMPT: Duration = Duration::from_secs(5);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Two running stacks on one wire: a at 10.0.0.1, b at 10.0.0.2.
fn pair() -> (Runtime, Runtime) {
    let (wa, wb) = Wire::pair();
    let ca = Config { seed: 11, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), A_IP, 24) };
    let cb = Config { seed: 12, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), B_IP, 24) };
    let ra = Runtime::start(Stack::new(ca).unwrap(), wa).unwrap();
    let rb = Runtime::start(Stack::new(cb).unwrap(), wb).unwrap();
    (ra, rb)
}

fn udp_bound(net: &Net, addr: &str) -> Fd {
    let fd = net.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    net.bind(fd, sa(addr)).unwrap();
    // A safety net so that a broken wake-up fails the test instead of hanging it.
    net.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, Duration::from_secs(20)).unwrap();
    fd
}

#[test]
fn blocking_recvfrom_wakes_when_a_datagram_arrives() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let server = udp_bound(&b, "0.0.0.0:9000");
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let r = b.recvfrom(server, &mut buf, 0).map(|(n, from)| (buf[..n].to_vec(), from));
        (r, Instant::now())
    });
    assert!(rb.shared().wait_for_waiters(1, PROMPT), "the receiver blocks");
    let client = a.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let sent_at = Instant::now();
    a.sendto(client, b"wake up", 0, sa("10.0.0.2:9000")).unwrap();
    let (r, woke_at) = receiver.join().unwrap();
    let (data, from) = r.unwrap();
    assert_eq!(data, b"wake up");
    assert_eq!(from, SocketAddrV4::new(A_IP, a.getsockname(client).unwrap().port()));
    assert!(woke_at - sent_at < PROMPT, "woke {:?} after the send", woke_at - sent_at);
}

#[test]
fn so_rcvtimeo_ends_a_blocking_recv_with_eagain() {
    let (_ra, rb) = pair();
    let b = rb.net();
    let fd = udp_bound(&b, "0.0.0.0:9000");
    let t = Duration::from_millis(200);
    b.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, t).unwrap();
    let start = Instant::now();
    assert_eq!(b.recv(fd, &mut [0; 8], 0), Err(Errno::EAGAIN));
    let waited = start.elapsed();
    assert!(waited >= t && waited < t + PROMPT, "{waited:?}");
    // MSG_DONTWAIT and O_NONBLOCK do not wait at all.
    let start = Instant::now();
    assert_eq!(b.recv(fd, &mut [0; 8], MSG_DONTWAIT), Err(Errno::EAGAIN));
    b.fcntl(fd, F_SETFL, O_NONBLOCK).unwrap();
    assert_eq!(b.recv(fd, &mut [0; 8], 0), Err(Errno::EAGAIN));
    assert!(start.elapsed() < t, "{:?}", start.elapsed());
}

#[test]
fn close_from_another_thread_wakes_a_blocked_recv_with_ebadf() {
    let (_ra, rb) = pair();
    let b = rb.net();
    let fd = udp_bound(&b, "0.0.0.0:9000");
    let b2 = b.clone();
    let t = std::thread::spawn(move || b2.recv(fd, &mut [0; 8], 0));
    assert!(rb.shared().wait_for_waiters(1, PROMPT));
    let start = Instant::now();
    b.close(fd).unwrap();
    // A new socket may take the same number: the blocked call must not read from it.
    let reused = b.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    assert_eq!(reused, fd);
    assert_eq!(t.join().unwrap(), Err(Errno::EBADF));
    assert!(start.elapsed() < PROMPT);
}

#[test]
fn shutdown_wakes_a_blocked_recv_which_reads_zero() {
    let (_ra, rb) = pair();
    let b = rb.net();
    let fd = udp_bound(&b, "0.0.0.0:9000");
    let b2 = b.clone();
    let t = std::thread::spawn(move || b2.recvfrom(fd, &mut [0; 8], 0));
    assert!(rb.shared().wait_for_waiters(1, PROMPT));
    let start = Instant::now();
    assert_eq!(b.shutdown(fd, SHUT_RD), Err(Errno::ENOTCONN), "unconnected, as Linux says");
    assert_eq!(t.join().unwrap(), Ok((0, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))));
    assert!(start.elapsed() < PROMPT);
}

#[test]
fn poll_times_out_then_reports_data() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let fd = udp_bound(&b, "0.0.0.0:9000");
    let mut fds = [PollFd::new(fd, POLLIN), PollFd::new(-1, POLLIN), PollFd::new(500, POLLIN)];
    // The bad descriptor is reported at once, without waiting.
    assert_eq!(b.poll(&mut fds, 10_000), Ok(1));
    assert_eq!(fds.map(|p| p.revents), [0, 0, POLLNVAL]);
    let mut fds = [PollFd::new(fd, POLLIN)];
    let start = Instant::now();
    assert_eq!(b.poll(&mut fds, 150), Ok(0));
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(fds[0].revents, 0);
    let b2 = b.clone();
    let waiter = std::thread::spawn(move || {
        let mut fds = [PollFd::new(fd, POLLIN)];
        let n = b2.poll(&mut fds, 20_000);
        (n, fds[0].revents)
    });
    assert!(rb.shared().wait_for_waiters(1, PROMPT));
    let c = a.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    a.sendto(c, b"data", 0, sa("10.0.0.2:9000")).unwrap();
    assert_eq!(waiter.join().unwrap(), (Ok(1), POLLIN));
    // POLLOUT is immediate for UDP.
    let mut fds = [PollFd::new(c, POLLOUT)];
    assert_eq!(a.poll(&mut fds, 0), Ok(1));
    assert_eq!(fds[0].revents, POLLOUT);
}

#[test]
fn select_reports_ready_descriptors() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let quiet = udp_bound(&b, "0.0.0.0:9000");
    let busy = udp_bound(&b, "0.0.0.0:9001");
    let c = a.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    a.sendto(c, b"x", 0, sa("10.0.0.2:9001")).unwrap();
    let mut r = FdSet::new();
    r.set(quiet);
    r.set(busy);
    let nfds = quiet.max(busy) + 1;
    assert_eq!(b.select(nfds, Some(&mut r), None, None, Some(PROMPT)), Ok(1));
    assert!(r.is_set(busy) && !r.is_set(quiet));
    // Timeout: the sets come back empty.
    let mut r = FdSet::new();
    r.set(quiet);
    assert_eq!(b.select(nfds, Some(&mut r), None, None, Some(Duration::from_millis(50))), Ok(0));
    assert_eq!(r.iter(nfds as usize).count(), 0);
    // A closed descriptor in a set is EBADF. (A socket's: a number the test never
    // opened may be the kernel's, a descriptor of another test's in this process.)
    let closed = b.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    b.close(closed).unwrap();
    let mut w = FdSet::new();
    w.set(closed);
    assert_eq!(b.select(closed + 1, None, Some(&mut w), None, Some(Duration::ZERO)), Err(Errno::EBADF));
}

#[test]
fn std_like_udp_socket_talks_to_the_echo_service() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let echo = udp_echo(&b, sa("0.0.0.0:7")).unwrap();
    assert_eq!(echo.local_addr(), "0.0.0.0:7".parse().unwrap());
    let sock = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    sock.set_read_timeout(Some(PROMPT)).unwrap();
    assert_eq!(sock.read_timeout().unwrap(), Some(PROMPT));
    assert_eq!(sock.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(sock.send_to(b"ping", "10.0.0.2:7").unwrap(), 4);
    let mut buf = [0u8; 16];
    let (n, from) = sock.peek_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"ping"[..], sa("10.0.0.2:7")));
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    // Connected, through a clone.
    let clone = sock.try_clone().unwrap();
    clone.connect("10.0.0.2:7").unwrap();
    assert_eq!(sock.peer_addr().unwrap(), sa("10.0.0.2:7"));
    clone.send(b"again").unwrap();
    assert_eq!(sock.recv(&mut buf).unwrap(), 5);
    // The service counts a datagram once its sendto has returned, which may
    // be after the echo has reached us (its thread and ours run apart).
    let deadline = Instant::now() + PROMPT;
    while echo.echoed() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(echo.echoed(), 2);
    echo.stop().unwrap();
    // The service's port is free again.
    let again = udp_echo(&b, sa("0.0.0.0:7")).unwrap();
    drop(again);
    // Nonblocking: WouldBlock; a connected socket to a closed port: ConnectionRefused.
    sock.set_nonblocking(true).unwrap();
    assert_eq!(sock.recv(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    sock.set_nonblocking(false).unwrap();
    sock.send(b"anyone?").unwrap();
    let e = sock.recv(&mut buf).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    assert!(sock.take_error().unwrap().is_none());
    assert!(sock.local_addr().unwrap().port() >= 49152);
    // The descriptor closes with the last handle.
    let fd = sock.fd();
    drop(sock);
    assert_eq!(a.getsockname(fd).unwrap().port(), clone.local_addr().unwrap().port());
    drop(clone);
    assert_eq!(a.getsockname(fd), Err(Errno::EBADF));
}

#[test]
fn many_threads_share_one_net() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let echo = udp_echo(&b, sa("0.0.0.0:7")).unwrap();
    let threads: Vec<_> = (0..8u8)
        .map(|i| {
            let a = a.clone();
            std::thread::spawn(move || {
                let fd = a.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
                a.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, PROMPT).unwrap();
                a.connect(fd, sa("10.0.0.2:7")).unwrap();
                let mut buf = [0u8; 8];
                for j in 0..50u8 {
                    a.send(fd, &[i, j], 0).unwrap();
                    assert_eq!(a.recv(fd, &mut buf, 0), Ok(2));
                    assert_eq!(&buf[..2], &[i, j]);
                }
                a.close(fd).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(echo.echoed(), 400);
    assert_eq!(rb.counters().udp.rx_datagrams, 400);
}

#[test]
fn calls_after_the_runtime_stops_are_enetdown() {
    let (_ra, rb) = pair();
    let b = rb.net();
    let fd = b.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    b.bind(fd, sa("0.0.0.0:9000")).unwrap();
    let b2 = b.clone();
    let blocked = std::thread::spawn(move || b2.recv(fd, &mut [0; 8], 0));
    assert!(rb.shared().wait_for_waiters(1, PROMPT));
    assert_eq!(rb.shared().waiters(), 1);
    rb.stop().unwrap();
    assert_eq!(blocked.join().unwrap(), Err(Errno::ENETDOWN));
    assert_eq!(b.socket(AF_INET, SOCK_DGRAM, 0), Err(Errno::ENETDOWN));
    assert_eq!(b.recv(fd, &mut [0; 8], 0), Err(Errno::ENETDOWN));
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn nc_client_and_listener_exchange_lines() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let listener =
        UdpNc::open(&b, NcOptions { listen: true, local: Some("0.0.0.0:4000".parse().unwrap()), ..Default::default() })
            .unwrap();
    assert_eq!(listener.local_addr().unwrap().port(), 4000);
    let heard = Shared::default();
    let h = heard.clone();
    // The listener answers its first datagram's sender with its own input.
    let server = std::thread::spawn(move || {
        let opts_input = io::Cursor::new(b"hi client\n".to_vec());
        listener.run(opts_input, h)
    });
    let client = UdpNc::open(
        &a,
        NcOptions {
            remote: Some("10.0.0.2:4000".parse().unwrap()),
            quit_after_eof: Some(Duration::from_secs(2)),
            ..Default::default()
        },
    )
    .unwrap();
    let out = Shared::default();
    let stats = client.run(io::Cursor::new(b"hi server\n".to_vec()), out.clone()).unwrap();
    assert_eq!(stats.sent, 1);
    assert_eq!(out.0.lock().unwrap().as_slice(), b"hi client\n");
    assert_eq!(heard.0.lock().unwrap().as_slice(), b"hi server\n");
    // The listener keeps receiving (quit_after_eof None) until its stack stops.
    drop(rb);
    let e = server.join().unwrap().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::ENETDOWN.0));
}

#[test]
fn nc_reports_connection_refused() {
    let (ra, _rb) = pair();
    let a = ra.net();
    let client =
        UdpNc::open(&a, NcOptions { remote: Some("10.0.0.2:4001".parse().unwrap()), ..Default::default() }).unwrap();
    let e = client.run(io::Cursor::new(b"hello?\n".to_vec()), io::sink()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
}
