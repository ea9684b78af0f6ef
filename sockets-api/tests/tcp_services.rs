//! The library's TCP services in real time, over two stacks on an in-memory wire:
//! echo, discard, chargen and HTTP, served concurrently and within their bound,
//! stopped on demand or on drop, and started by name through `ServiceSet`. Every
//! wait is bounded.

use sockets_api::services::*;
use sockets_api::*;
use stack::device::wire::Wire;
use stack::{Config, MacAddr, Stack};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::time::{Duration, Instant};

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PROMPT: Duration = Duration::from_secs(5);
const NET: Duration = Duration::from_secs(30);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn pair() -> (Runtime, Runtime) {
    let (wa, wb) = Wire::pair();
    let ca = Config { seed: 31, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), A_IP, 24) };
    let cb = Config { seed: 32, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), B_IP, 24) };
    (Runtime::start(Stack::new(ca).unwrap(), wa).unwrap(), Runtime::start(Stack::new(cb).unwrap(), wb).unwrap())
}

fn client(net: &Net, to: &str) -> TcpStream {
    let s = TcpStream::connect(net, to).unwrap();
    s.set_read_timeout(Some(NET)).unwrap();
    s.set_write_timeout(Some(NET)).unwrap();
    s
}

/// Waits (bounded) until `cond` holds, looking every few milliseconds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + PROMPT;
    while !cond() {
        assert!(Instant::now() < end, "{what}: not within {PROMPT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn pattern(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 13 + seed + i / 509) as u8).collect()
}

/// Writes `data` from a thread of its own, then shuts the write side; returns what came back.
fn round_trip(stream: TcpStream, data: Vec<u8>) -> Vec<u8> {
    let mut w = stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        w.write_all(&data).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    (&stream).read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    back
}

#[test]
fn echo_serves_many_connections_at_once() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let echo = TcpEcho::start(&b, sa("0.0.0.0:7")).unwrap();
    assert_eq!(echo.local_addr().port(), TcpEcho::PORT);
    // Eight clients, all connected before any finishes: each gets its own bytes back.
    let streams: Vec<TcpStream> = (0..8).map(|_| client(&a, "10.0.0.2:7")).collect();
    eventually("all eight are being served", || echo.active() == 8);
    let threads: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            std::thread::spawn(move || {
                let data = pattern(100_000 + i, i);
                round_trip(s, data.clone()) == data
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap(), "an echo came back different");
    }
    assert_eq!(echo.accepted(), 8);
    eventually("connections end when the clients close", || echo.active() == 0);
    echo.stop().unwrap();
}

#[test]
fn a_service_serves_no_more_than_its_bound_and_the_rest_wait() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let echo = TcpEcho::start_with(&b, sa("0.0.0.0:7"), 2).unwrap();
    let mut first = client(&a, "10.0.0.2:7");
    let mut second = client(&a, "10.0.0.2:7");
    for s in [&mut first, &mut second] {
        s.write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).unwrap();
    }
    // The third is connected (it waits in the backlog) but not served.
    let mut third = client(&a, "10.0.0.2:7");
    third.write_all(b"y").unwrap();
    third.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    assert_eq!(third.read(&mut [0u8; 1]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    assert_eq!(echo.active(), 2);
    // One ends: the third is served.
    drop(first);
    third.set_read_timeout(Some(PROMPT)).unwrap();
    let mut one = [0u8; 1];
    third.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"y");
}

#[test]
fn discard_reads_everything_and_answers_nothing() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let discard = Discard::start(&b, sa("0.0.0.0:9")).unwrap();
    let s = client(&a, "10.0.0.2:9");
    assert!(round_trip(s, vec![5u8; 256 * 1024]).is_empty());
    assert_eq!(discard.accepted(), 1);
    // Everything was read: the connection ended with the client's close, not a reset.
    let c = client(&a, "10.0.0.2:9");
    (&c).write_all(b"more").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!((&c).read(&mut [0u8; 8]).unwrap(), 0);
    assert!(c.take_error().unwrap().is_none());
}

#[test]
fn chargen_sends_rfc_864_lines_until_the_client_closes() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let chargen = Chargen::start(&b, sa("0.0.0.0:19")).unwrap();
    let mut s = client(&a, "10.0.0.2:19");
    let mut line = [0u8; 74];
    s.read_exact(&mut line).unwrap();
    assert_eq!(&line[..], &b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n"[..]);
    for n in 1..200 {
        s.read_exact(&mut line).unwrap();
        assert_eq!(line.to_vec(), chargen_line(n), "line {n}");
    }
    drop(s);
    eventually("the connection's thread ends once the client is gone", || chargen.active() == 0);
    // A client that stops reading and stays: stop() still ends its thread promptly.
    let _stuck = client(&a, "10.0.0.2:19");
    eventually("served", || chargen.active() == 1);
    let start = Instant::now();
    chargen.stop().unwrap();
    assert!(start.elapsed() < PROMPT, "{:?}", start.elapsed());
}

/// One HTTP exchange: the request, and the response split into status line, headers, body.
fn http(net: &Net, request: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut s = client(net, "10.0.0.2:80");
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header end");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_string();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap();
            (k.to_ascii_lowercase(), v.to_string())
        })
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    &headers.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no {name}")).1
}

#[test]
fn http_answers_get_slash_404_and_400_then_closes() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let server = Http::start(&b, sa("0.0.0.0:80")).unwrap();
    let (status, headers, body) = http(&a, b"GET / HTTP/1.0\r\nUser-Agent: test\r\n\r\n");
    assert_eq!(status, "HTTP/1.0 200 OK");
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert_eq!(header(&headers, "content-length"), body.len().to_string());
    assert_eq!(header(&headers, "connection"), "close");
    assert_eq!(body, INDEX_HTML.as_bytes());
    let (status, headers, body) = http(&a, b"GET /missing HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n");
    assert_eq!(status, "HTTP/1.0 404 Not Found");
    assert_eq!(header(&headers, "content-length"), body.len().to_string());
    assert!(String::from_utf8(body).unwrap().contains("404"));
    let (status, _, body) = http(&a, b"\x16\x03\x01 this is not http\r\n\r\n");
    assert_eq!(status, "HTTP/1.0 400 Bad Request");
    assert!(!body.is_empty());
    // A bad request line is answered at once, without waiting for the headers' end.
    let mut s = client(&a, "10.0.0.2:80");
    s.set_read_timeout(Some(PROMPT)).unwrap();
    s.write_all(b"BREW /pot HTCPCP/1.0\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    assert!(raw.starts_with(b"HTTP/1.0 400 Bad Request\r\n"));
    let (status, headers, body) = http(&a, b"HEAD / HTTP/1.0\r\n\r\n");
    assert_eq!(status, "HTTP/1.0 200 OK");
    assert_eq!(header(&headers, "content-length"), INDEX_HTML.len().to_string());
    assert!(body.is_empty());
    // A request split across segments is put together.
    let mut s = client(&a, "10.0.0.2:80");
    s.set_nodelay(true).unwrap();
    for part in [&b"GE"[..], b"T / HT", b"TP/1.0\r\n", b"\r\n"] {
        s.write_all(part).unwrap();
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    assert!(raw.starts_with(b"HTTP/1.0 200 OK\r\n"));
    assert_eq!(server.accepted(), 6);
}

#[test]
fn a_stopped_or_dropped_service_frees_its_port() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let echo = TcpEcho::start(&b, sa("0.0.0.0:7")).unwrap();
    assert_eq!(TcpEcho::start(&b, sa("0.0.0.0:7")).unwrap_err(), Errno::EADDRINUSE);
    // A connection being served when the service stops is shut down.
    let held = client(&a, "10.0.0.2:7");
    eventually("served", || echo.active() == 1);
    echo.stop().unwrap();
    assert_eq!((&held).read(&mut [0u8; 4]).unwrap(), 0, "the service's FIN");
    {
        let _again = TcpEcho::start(&b, sa("0.0.0.0:7")).unwrap();
    }
    let e = TcpStream::connect(&a, "10.0.0.2:7").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "dropped, so nobody listens");
    TcpEcho::start(&b, sa("0.0.0.0:7")).unwrap();
}

#[test]
fn a_service_set_starts_services_by_name() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let set = ServiceSet::start_list(&b, "echo, discard,chargen,http,udp-echo").unwrap();
    let names: Vec<(&str, &str, u16)> =
        set.services().iter().map(|s| (s.name(), s.protocol(), s.local_addr().port())).collect();
    assert_eq!(
        names,
        [
            ("echo", "tcp", 7),
            ("discard", "tcp", 9),
            ("chargen", "tcp", 19),
            ("http", "tcp", 80),
            ("udp-echo", "udp", 7)
        ]
    );
    assert_eq!(round_trip(client(&a, "10.0.0.2:7"), b"tcp echo".to_vec()), b"tcp echo");
    let u = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    u.set_read_timeout(Some(NET)).unwrap();
    u.send_to(b"udp echo", "10.0.0.2:7").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(u.recv_from(&mut buf).unwrap(), (8, sa("10.0.0.2:7")));
    let mut s = client(&a, "10.0.0.2:80");
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.0 200 OK") && page.ends_with(INDEX_HTML));
    set.stop().unwrap();
    assert_eq!(TcpStream::connect(&a, "10.0.0.2:80").unwrap_err().kind(), io::ErrorKind::ConnectionRefused);

    // Ports may be given; unknown names and clashes are refused, and a failure
    // stops what had started.
    let set = ServiceSet::start_list(&b, "http:8080").unwrap();
    assert_eq!(set.get("http").unwrap().local_addr().port(), 8080);
    drop(set);
    let e = ServiceSet::start_list(&b, "echo,gopher").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("gopher"), "{e}");
    assert_eq!(ServiceSet::start_list(&b, " , ").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(ServiceSet::start_list(&b, "echo:http").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    let e = ServiceSet::start_list(&b, "echo,discard,echo").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    assert!(e.to_string().starts_with("echo on port 7"), "{e}");
    let set = ServiceSet::start(&b, B_IP, &["echo", "discard"]).unwrap();
    assert_eq!(set.get("discard").unwrap().local_addr(), "10.0.0.2:9".parse().unwrap());
}

#[test]
fn one_client_holding_one_services_connections_leaves_the_others_serving() {
    // Issue 13, item 4: with 40 descriptors for the whole stack, a client
    // holding 40 connections to echo took them all and http refused. Each
    // service of a set now serves at most its share (40 / 3 = 13 here); the
    // rest of echo's clients wait in its backlog, holding no descriptor.
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    b.set_fd_limit(40).unwrap();
    let set = ServiceSet::start_list(&b, "echo,http").unwrap();
    let held: Vec<TcpStream> = (0..40).map(|_| client(&a, "10.0.0.2:7")).collect();
    let echo = match set.get("echo").unwrap() {
        Service::Echo(e) => e,
        _ => unreachable!(),
    };
    eventually("echo serves its share", || echo.active() == 13);
    let (status, _, body) = http(&a, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(status, "HTTP/1.0 200 OK");
    assert_eq!(body, INDEX_HTML.as_bytes());
    assert_eq!(echo.active(), 13, "echo stays within its share");
    drop(held);
}

#[test]
fn a_connection_idle_for_the_timeout_is_closed_and_a_busy_one_is_not() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let limits = ServiceLimits { idle_timeout: Some(Duration::from_millis(400)), ..ServiceLimits::default() };
    let echo = TcpEcho::start_with_limits(&b, sa("0.0.0.0:7"), limits).unwrap();
    let mut idle = client(&a, "10.0.0.2:7");
    let mut busy = client(&a, "10.0.0.2:7");
    idle.write_all(b"hi").unwrap();
    let mut two = [0u8; 2];
    idle.read_exact(&mut two).unwrap();
    // The busy one talks every 100 ms for 1.2 s, three idle timeouts.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1200) {
        busy.write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        busy.read_exact(&mut one).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    // The idle one was closed by the service: its end of stream is here.
    idle.set_read_timeout(Some(PROMPT)).unwrap();
    assert_eq!(idle.read(&mut two).unwrap(), 0, "closed by the service");
    assert_eq!(echo.idle_closed(), 1);
    busy.write_all(b"y").unwrap();
    let mut one = [0u8; 1];
    busy.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"y", "the busy one is still served");
}

#[test]
fn a_service_out_of_descriptors_backs_off_and_serves_again_once_some_are_freed() {
    // Issue 13: after EMFILE on accept, a service must neither spin nor stop
    // serving: it retries on a timer, backing off, and serves once
    // descriptors are free again.
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    b.set_fd_limit(16).unwrap();
    let limits = ServiceLimits { max_connections: 100, ..ServiceLimits::default() };
    let echo = TcpEcho::start_with_limits(&b, sa("0.0.0.0:7"), limits).unwrap();
    // Another part of the process takes every descriptor left.
    let mut hogs = Vec::new();
    while let Ok(fd) = b.socket(AF_INET, SOCK_DGRAM, 0) {
        hogs.push(fd);
        assert!(hogs.len() <= 16);
    }
    // A client's handshake completes in the stack, but the service cannot
    // accept it: its line waits unanswered.
    let mut waiting = client(&a, "10.0.0.2:7");
    waiting.write_all(b"one").unwrap();
    eventually("accept fails for want of descriptors, more than once", || echo.accept_failures() >= 3);
    // A back-off, not a busy loop: the third failure came after 50 + 100 ms
    // of waiting; a loop retrying at once would have failed thousands of times.
    assert!(echo.accept_failures() < 20, "{} failed accepts", echo.accept_failures());
    assert_eq!(echo.accepted(), 0);
    for fd in hogs {
        b.close(fd).unwrap();
    }
    // Served again within the back-off (at most EMFILE_RETRY_MAX, 2 s).
    let mut three = [0u8; 3];
    waiting.read_exact(&mut three).unwrap();
    assert_eq!(&three, b"one");
    let data = pattern(10_000, 4);
    assert_eq!(round_trip(client(&a, "10.0.0.2:7"), data.clone()), data, "and new clients too");
    assert_eq!(echo.accepted(), 2);
}

/// A resident that, in a step, drops the service it was handed (as an
/// application that stops a `Server` in answer to something), then says so.
struct Stopper {
    echo: Option<TcpEcho>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl sockets_api::resident::Resident for Stopper {
    fn step(&mut self, _now: Instant, _waker: &std::task::Waker) -> Option<Instant> {
        if let Some(echo) = self.echo.take() {
            drop(echo);
            self.done.store(true, std::sync::atomic::Ordering::Release);
        }
        None
    }
}

#[test]
fn a_step_that_drops_a_server_completes_and_the_runtime_goes_on() {
    // The residents' list is out of its lock while they step: the Server's
    // drop takes its loop off the list from inside another's step without
    // waiting for that step (before, it waited for the lock the step ran
    // under, for ever).
    let (a, b) = pair();
    let (na, nb) = (a.net(), b.net());
    let echo = TcpEcho::start(&na, sa("0.0.0.0:7")).unwrap();
    assert_eq!(round_trip(client(&nb, "10.0.0.1:7"), pattern(1000, 1)), pattern(1000, 1));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopper = Stopper { echo: Some(echo), done: done.clone() };
    let id = a.shared().add_resident(std::sync::Arc::new(std::sync::Mutex::new(stopper))).unwrap();
    let end = Instant::now() + PROMPT;
    while !done.load(std::sync::atomic::Ordering::Acquire) {
        if Instant::now() > end {
            // The runtime's thread is stuck: do not join it on the way out.
            std::mem::forget(a);
            panic!("the step that drops a Server did not complete within {PROMPT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // The runtime goes on: the port is closed, a new service answers.
    let refused = TcpStream::connect(&nb, "10.0.0.1:7").unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    let again = TcpEcho::start(&na, sa("0.0.0.0:7")).unwrap();
    assert_eq!(round_trip(client(&nb, "10.0.0.1:7"), pattern(1000, 2)), pattern(1000, 2));
    assert!(a.shared().remove_resident(id));
    drop(again);
}
