//! Small services written with the socket calls, as an ordinary application
//! would write them: over TCP echo (port 7, RFC 862), discard (9, RFC 863),
//! chargen (19, RFC 864) and a small HTTP/1.0 server (80, RFC 1945); over UDP
//! echo (7). [`ServiceSet`] starts a chosen list of them by name, as
//! `tapstack up --serve echo,http` asks.
//!
//! Each TCP service is a struct with `start(&Net, addr)`, `stop()` (also on drop)
//! and counters. It serves its connections from one event loop, stepped on the
//! runtime's own thread (`service_loop`, over the epoll-like interface: no
//! thread switch between the stack and the service), each connection a small
//! state machine driven by nonblocking calls: no thread per connection, so one
//! stack serves tens of thousands at once. Each service has its own
//! [`ServiceLimits`]: at most [`MAX_CONNECTIONS`] (or the bound given to
//! `start_with`; a [`ServiceSet`] shares the descriptor limit out) are served
//! at once, and a connection idle for [`IDLE_TIMEOUT`] is closed; beyond that, further
//! connections wait in the listener's backlog ([`LISTEN_BACKLOG`], Linux's 4096),
//! and beyond that their SYNs are dropped and retried by the peer, as for any
//! busy server. Stopping shuts the listener down (which wakes the loop), shuts
//! every open connection down and closes it, and joins the thread.
//!
//! ```no_run
//! use sockets_api::services::ServiceSet;
//! # fn demo(net: &sockets_api::Net) -> std::io::Result<()> {
//! let services = ServiceSet::start_list(net, "echo,discard,chargen,http,udp-echo")?;
//! for s in services.services() {
//!     println!("{} on {}", s.name(), s.local_addr());
//! }
//! services.stop()?;
//! # Ok(()) }
//! ```

use crate::consts::*;
use crate::errno::{Errno, Result};
use crate::fd_table::Fd;
use crate::service_loop::{ConnApp, Server, Step, ROUNDS};
use crate::Net;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running UDP echo service. [`UdpEcho::stop`] (or dropping it) stops the thread
/// and closes its socket.
#[derive(Debug)]
pub struct UdpEcho {
    net: Net,
    fd: Fd,
    local: SocketAddrV4,
    stopping: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<()>>>,
}

/// Starts a UDP echo server (RFC 862) on `addr` (port 7 is echo's) in a thread
/// of its own: every datagram goes back to its sender unchanged. The same as
/// [`UdpEcho::start`].
///
/// Errors: those of socket(2) and bind(2) (EADDRINUSE, EADDRNOTAVAIL, ...).
pub fn udp_echo(net: &Net, addr: impl Into<SocketAddr>) -> Result<UdpEcho> {
    let fd = net.socket(AF_INET, SOCK_DGRAM, 0)?;
    if let Err(e) = net.bind(fd, addr) {
        let _ = net.close(fd);
        return Err(e);
    }
    let local = net.getsockname(fd)?;
    let stopping = Arc::new(AtomicBool::new(false));
    let echoed = Arc::new(AtomicU64::new(0));
    let (n, s, c) = (net.clone(), stopping.clone(), echoed.clone());
    let thread = std::thread::Builder::new()
        .name(format!("udp-echo-{}", local.port()))
        .spawn(move || echo_loop(&n, fd, &s, &c))
        .map_err(|_| Errno::EAGAIN)?;
    Ok(UdpEcho { net: net.clone(), fd, local, stopping, echoed, thread: Some(thread) })
}

/// The server loop, as in C: recvfrom, sendto, forever. The descriptor is closed
/// by [`UdpEcho::stop`], after this returns, so that it cannot be reused meanwhile.
fn echo_loop(net: &Net, fd: Fd, stopping: &AtomicBool, echoed: &AtomicU64) -> Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let r = net.recvfrom(fd, &mut buf, 0);
        if stopping.load(Ordering::Acquire) {
            break Ok(());
        }
        match r {
            Ok((n, peer)) => {
                // A reply that cannot go out (no route, say) is not the server's
                // problem; like inetd's echo it serves the next datagram.
                if net.sendto(fd, &buf[..n], 0, peer).is_ok() {
                    echoed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(Errno::ENETDOWN) => break Ok(()),
            Err(e) => break Err(e),
        }
    }
}

impl UdpEcho {
    /// Starts a UDP echo server on `addr` (see [`udp_echo`]).
    pub fn start(net: &Net, addr: impl Into<SocketAddr>) -> Result<UdpEcho> {
        udp_echo(net, addr)
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Datagrams echoed so far.
    pub fn echoed(&self) -> u64 {
        self.echoed.load(Ordering::Relaxed)
    }

    /// Stops the service: wakes its thread (shutdown(2) on its socket), waits for it
    /// and returns the error that had stopped it early, if any.
    pub fn stop(mut self) -> Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<()> {
        self.stopping.store(true, Ordering::Release);
        // On an unconnected socket this says ENOTCONN but still wakes the reader.
        let _ = self.net.shutdown(self.fd, SHUT_RD);
        let result = match self.thread.take() {
            Some(t) => t.join().unwrap_or(Err(Errno::EIO)),
            None => return Ok(()),
        };
        let _ = self.net.close(self.fd);
        result
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Connections a TCP service started alone serves at once unless told
/// otherwise: a fifth of the descriptor table's default size
/// ([`crate::fd_table::MAX_FDS`], 1,024), so that one client holding
/// connections to one service leaves descriptors for four others (issue 13,
/// item 4). A [`ServiceSet`] shares the stack's descriptor limit out instead
/// (see [`ServiceSet::start_list_with`]). Connections cost no thread (one event
/// loop serves them all, see `service_loop`). inetd's comparable knob is its
/// per-service `max` (wait/nowait.max), 40 connections per minute by default.
pub const MAX_CONNECTIONS: usize = crate::fd_table::MAX_FDS / 5;
/// How long a TCP service keeps a connection on which nothing happened (no
/// data either way, no room to write): 5 minutes, then it closes it, so that
/// connections of a client that vanished, or that holds them unused, go away.
/// Linux has no such default for a socket (keep-alive, off by default, would
/// notice a vanished peer after 2 h 11 min); servers set their own (Apache's
/// Timeout is 60 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The limits of one TCP service, each its own (issue 13, item 4: a client
/// exhausting one service's must not stop the others).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ServiceLimits {
    /// Connections served at once (at least 1); beyond, clients wait in the
    /// listen backlog. Default [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// A connection with no activity for this long is closed; `None`: never.
    /// Default [`IDLE_TIMEOUT`].
    pub idle_timeout: Option<Duration>,
    /// The listen(2) backlog (at least 1, at most TCP's `max_backlog`).
    /// Default [`LISTEN_BACKLOG`].
    pub backlog: i32,
}

impl Default for ServiceLimits {
    fn default() -> ServiceLimits {
        ServiceLimits { max_connections: MAX_CONNECTIONS, idle_timeout: Some(IDLE_TIMEOUT), backlog: LISTEN_BACKLOG }
    }
}
/// The listen(2) backlog of the TCP services (Linux's default somaxconn, 4096).
pub const LISTEN_BACKLOG: i32 = 4096;
/// How long the HTTP server waits for a whole request before it closes.
pub const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the HTTP server reads what a client still sends after the answer.
pub const HTTP_LINGER: Duration = Duration::from_secs(2);
/// The largest HTTP request head (request line and headers) read.
pub const HTTP_MAX_REQUEST: usize = 8192;

/// Sends from `out[*pos..]` while the stack takes it: `Some(step)` when the
/// connection must wait (Write) or is over (Done), `None` once all is sent.
fn send_pending(net: &Net, fd: Fd, out: &[u8], pos: &mut usize) -> Option<Step> {
    for _ in 0..ROUNDS {
        if *pos >= out.len() {
            return None;
        }
        match net.send(fd, &out[*pos..], MSG_DONTWAIT) {
            Ok(n) => *pos += n,
            Err(Errno::EAGAIN) => return Some(Step::Write),
            Err(_) => return Some(Step::Done),
        }
    }
    Some(if *pos >= out.len() { Step::Read } else { Step::Write })
}

/// echo (RFC 862): whatever arrives goes back, until the client closes its side;
/// then we close ours. Bytes the stack cannot take yet wait here, and reading
/// stops until they are sent (the client's window closes: backpressure).
#[derive(Default)]
struct EchoConn {
    pending: Vec<u8>,
    pos: usize,
}

impl ConnApp for EchoConn {
    fn drive(&mut self, net: &Net, fd: Fd, scratch: &mut [u8], _now: Instant) -> Step {
        for _ in 0..ROUNDS {
            if let Some(step) = send_pending(net, fd, &self.pending, &mut self.pos) {
                return step;
            }
            self.pending.clear();
            self.pos = 0;
            match net.recv(fd, scratch, MSG_DONTWAIT) {
                Ok(0) => {
                    let _ = net.shutdown(fd, SHUT_WR);
                    return Step::Done;
                }
                Ok(n) => match net.send(fd, &scratch[..n], MSG_DONTWAIT) {
                    Ok(m) if m == n => {}
                    Ok(m) => self.pending.extend_from_slice(&scratch[m..n]),
                    Err(Errno::EAGAIN) => self.pending.extend_from_slice(&scratch[..n]),
                    Err(_) => return Step::Done,
                },
                Err(Errno::EAGAIN) => return Step::Read,
                Err(_) => return Step::Done,
            }
        }
        if self.pending.is_empty() {
            Step::Read
        } else {
            Step::Write
        }
    }
}

/// discard (RFC 863): whatever arrives is thrown away, until the client closes.
struct DiscardConn;

impl ConnApp for DiscardConn {
    fn drive(&mut self, net: &Net, fd: Fd, scratch: &mut [u8], _now: Instant) -> Step {
        for _ in 0..ROUNDS {
            match net.recv(fd, scratch, MSG_DONTWAIT) {
                Ok(0) => {
                    let _ = net.shutdown(fd, SHUT_WR);
                    return Step::Done;
                }
                Ok(_) => {}
                Err(Errno::EAGAIN) => return Step::Read,
                Err(_) => return Step::Done,
            }
        }
        Step::Read
    }
}

/// The printable ASCII characters, ' ' to '~', in order: chargen's ring.
const RING: std::ops::RangeInclusive<u8> = b' '..=b'~';
/// Characters on a chargen line (before CR LF).
pub const CHARGEN_LINE: usize = 72;

/// Line `n` of chargen's pattern (RFC 864): the 72 characters of the ring of 95
/// printable ASCII characters starting at character `n mod 95`, then CR LF. Line
/// 0 is `` !"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefg``.
pub fn chargen_line(n: usize) -> Vec<u8> {
    let ring: Vec<u8> = RING.collect();
    let mut line: Vec<u8> = (0..CHARGEN_LINE).map(|i| ring[(n + i) % ring.len()]).collect();
    line.extend_from_slice(b"\r\n");
    line
}

/// Whole periods of chargen's pattern in the buffer it sends from.
const CHARGEN_PERIODS: usize = 10;

/// [`CHARGEN_PERIODS`] periods of chargen's pattern (after 95 lines it
/// repeats): 70,300 bytes, more than a default send buffer (64 KiB) takes
/// at once, so that one send call fills what the ACKs of a round freed
/// (with one period, 7,030 bytes, a round took ten calls, each a turn of
/// the core's lock and its bookkeeping).
fn chargen_period() -> &'static [u8] {
    static PERIOD: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PERIOD.get_or_init(|| (0..RING.len() * CHARGEN_PERIODS).flat_map(chargen_line).collect())
}

/// chargen (RFC 864): lines of the rotating pattern, without end, until the
/// client closes the connection (what it sends is thrown away, unread).
#[derive(Default)]
struct ChargenConn {
    pos: usize,
}

impl ConnApp for ChargenConn {
    fn drive(&mut self, net: &Net, fd: Fd, _scratch: &mut [u8], _now: Instant) -> Step {
        let period = chargen_period();
        loop {
            match send_pending(net, fd, period, &mut self.pos) {
                None => self.pos = 0,
                Some(Step::Read) => return Step::Write,
                Some(step) => return step,
            }
        }
    }
}

/// The page the HTTP server answers `GET /` with.
pub const INDEX_HTML: &str = "<!DOCTYPE html>\n<html>\n<head><title>tapstack</title></head>\n<body>\n\
<h1>Hello from tapstack</h1>\n\
<p>This page came over a userspace TCP/IP stack: Ethernet, ARP, IPv4 and TCP \
on a TAP device, with a BSD-style sockets API.</p>\n</body>\n</html>\n";

/// What the HTTP server makes of a request head: (status line, page, whether to
/// send the page: not for HEAD).
fn http_answer(head: &[u8]) -> (&'static str, String, bool) {
    let page = |title: &str| {
        format!(
            "<!DOCTYPE html>\n<html>\n<head><title>{title}</title></head>\n<body><h1>{title}</h1></body>\n</html>\n"
        )
    };
    let bad = ("400 Bad Request", page("400 Bad Request"), true);
    let Ok(text) = std::str::from_utf8(head) else { return bad };
    let line = text.split('\n').next().unwrap_or("").trim_end_matches('\r');
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else { return bad };
    let valid_version = version.strip_prefix("HTTP/").is_some_and(|v| {
        let mut it = v.split('.');
        matches!((it.next(), it.next(), it.next()), (Some(a), Some(b), None)
            if !a.is_empty() && !b.is_empty() && (a.chars().chain(b.chars())).all(|c| c.is_ascii_digit()))
    });
    let valid_method = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    if !valid_version || !valid_method || !target.starts_with('/') {
        return bad;
    }
    let send_body = method != "HEAD";
    if method != "GET" && method != "HEAD" {
        return ("501 Not Implemented", page("501 Not Implemented"), true);
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    match path {
        "/" | "/index.html" => ("200 OK", INDEX_HTML.to_string(), send_body),
        _ => ("404 Not Found", page("404 Not Found"), send_body),
    }
}

/// The whole HTTP/1.0 answer to a request head: status line, headers and page.
pub fn http_response(head: &[u8]) -> Vec<u8> {
    let (status, body, send_body) = http_answer(head);
    let mut out = format!(
        "HTTP/1.0 {status}\r\nServer: tapstack\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if send_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Whether a request head is complete (an empty line ends it).
pub fn http_head_complete(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

/// HTTP/1.0 (RFC 1945): reads one request head (up to [`HTTP_MAX_REQUEST`]
/// bytes, for up to [`HTTP_REQUEST_TIMEOUT`], after which it closes without an
/// answer; a request line that cannot be valid is answered at once), answers `GET /` (and `HEAD /`)
/// with [`INDEX_HTML`], other paths with 404, other methods with 501, anything
/// that is not a request line with 400; always with Content-Type, Content-Length
/// and `Connection: close`. Then it closes: its FIN first, then it reads what the
/// client still sends until the client closes too (for up to [`HTTP_LINGER`]),
/// so that no unread request bytes turn the close into a reset that could
/// destroy the answer.
struct HttpConn {
    head: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    phase: HttpPhase,
    deadline: Instant,
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum HttpPhase {
    Head,
    Answer,
    Drain,
}

impl HttpConn {
    fn new(now: Instant) -> HttpConn {
        let deadline = now + HTTP_REQUEST_TIMEOUT;
        HttpConn { head: Vec::new(), out: Vec::new(), pos: 0, phase: HttpPhase::Head, deadline }
    }

    /// Reads the head; `None` once it is complete (or cannot be).
    fn read_head(&mut self, net: &Net, fd: Fd, scratch: &mut [u8]) -> Option<Step> {
        // A request line that is already wrong is answered without waiting for the rest.
        let bad_line = |h: &[u8]| h.contains(&b'\n') && http_answer(h).0.starts_with("400");
        while !http_head_complete(&self.head) && !bad_line(&self.head) && self.head.len() < HTTP_MAX_REQUEST {
            let room = (HTTP_MAX_REQUEST - self.head.len()).min(2048).min(scratch.len());
            match net.recv(fd, &mut scratch[..room], MSG_DONTWAIT) {
                Ok(0) => break,
                Ok(n) => self.head.extend_from_slice(&scratch[..n]),
                Err(Errno::EAGAIN) => return Some(Step::Read),
                Err(_) => return Some(Step::Done),
            }
        }
        // A client that closes without a word gets nothing.
        self.head.is_empty().then_some(Step::Done)
    }
}

impl ConnApp for HttpConn {
    fn drive(&mut self, net: &Net, fd: Fd, scratch: &mut [u8], now: Instant) -> Step {
        if self.phase == HttpPhase::Head {
            if let Some(step) = self.read_head(net, fd, scratch) {
                return step;
            }
            self.out = http_response(&self.head);
            self.phase = HttpPhase::Answer;
        }
        if self.phase == HttpPhase::Answer {
            match send_pending(net, fd, &self.out, &mut self.pos) {
                None => {}
                Some(Step::Read) => return Step::Write,
                Some(step) => return step,
            }
            if net.shutdown(fd, SHUT_WR).is_err() {
                return Step::Done;
            }
            self.phase = HttpPhase::Drain;
            self.deadline = now + HTTP_LINGER;
        }
        for _ in 0..ROUNDS {
            match net.recv(fd, scratch, MSG_DONTWAIT) {
                Ok(1..) => {}
                Err(Errno::EAGAIN) => return Step::Read,
                Ok(0) | Err(_) => return Step::Done,
            }
        }
        Step::Read
    }

    fn deadline(&self) -> Option<Instant> {
        Some(self.deadline)
    }
}

macro_rules! tcp_service {
    ($(#[$doc:meta])* $name:ident, $label:literal, $port:literal, $handler:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            server: Server,
        }

        impl $name {
            /// The service's well-known port.
            pub const PORT: u16 = $port;

            /// Starts the service listening on `addr` (its well-known port is
            /// [`Self::PORT`]), serving up to [`MAX_CONNECTIONS`] connections at
            /// once, closing those idle for [`IDLE_TIMEOUT`], with a listen
            /// backlog of [`LISTEN_BACKLOG`] ([`ServiceLimits::default`]).
            ///
            /// Errors: those of socket(2), bind(2) and listen(2) (EADDRINUSE,
            /// EADDRNOTAVAIL, ...), ENETDOWN.
            pub fn start(net: &Net, addr: impl Into<SocketAddr>) -> Result<$name> {
                Self::start_with(net, addr, MAX_CONNECTIONS)
            }

            /// As [`Self::start`], serving at most `max_connections` at once (at least 1).
            pub fn start_with(net: &Net, addr: impl Into<SocketAddr>, max_connections: usize) -> Result<$name> {
                Self::start_with_backlog(net, addr, max_connections, LISTEN_BACKLOG)
            }

            /// As [`Self::start_with`], with the listen(2) backlog given (at
            /// least 1, at most TCP's `max_backlog`).
            pub fn start_with_backlog(
                net: &Net,
                addr: impl Into<SocketAddr>,
                max_connections: usize,
                backlog: i32,
            ) -> Result<$name> {
                let limits = ServiceLimits { max_connections, backlog, ..ServiceLimits::default() };
                Self::start_with_limits(net, addr, limits)
            }

            /// As [`Self::start`], with its own [`ServiceLimits`].
            pub fn start_with_limits(net: &Net, addr: impl Into<SocketAddr>, limits: ServiceLimits) -> Result<$name> {
                let bounds = (limits.max_connections, limits.idle_timeout, limits.backlog);
                let server = Server::start(net, addr.into(), $label, bounds, $handler)?;
                Ok($name { server })
            }

            /// Connections closed because nothing happened on them for the idle timeout.
            pub fn idle_closed(&self) -> u64 {
                self.server.idle_closed()
            }

            /// Accepts that failed for want of descriptors or memory (EMFILE,
            /// ENFILE, ENOBUFS, ENOMEM); each is retried after a back-off.
            pub fn accept_failures(&self) -> u64 {
                self.server.accept_failures()
            }

            /// Where it listens.
            pub fn local_addr(&self) -> SocketAddrV4 {
                self.server.local
            }

            /// Connections accepted so far.
            pub fn accepted(&self) -> u64 {
                self.server.accepted()
            }

            /// Connections being served now.
            pub fn active(&self) -> usize {
                self.server.active()
            }

            /// Stops the service: stops listening, shuts down and closes the
            /// connections being served (its event loop leaves the runtime's
            /// thread first), and returns the error
            /// that had stopped its event loop early, if any.
            pub fn stop(mut self) -> Result<()> {
                self.server.stop_and_join()
            }
        }
    };
}

tcp_service!(
    /// TCP echo (RFC 862, port 7): sends back whatever it receives, and closes
    /// once the client has closed its side.
    TcpEcho, "echo", 7, |_| Box::<EchoConn>::default()
);
tcp_service!(
    /// TCP discard (RFC 863, port 9): reads and throws away whatever it receives.
    Discard, "discard", 9, |_| Box::new(DiscardConn)
);
tcp_service!(
    /// TCP chargen (RFC 864, port 19): sends the rotating 72-character lines of
    /// [`chargen_line`] until the client closes; what it receives is ignored.
    Chargen, "chargen", 19, |_| Box::<ChargenConn>::default()
);
tcp_service!(
    /// A small HTTP/1.0 server (RFC 1945, port 80): `GET /` is a small HTML page
    /// ([`INDEX_HTML`]) with 200 OK, other paths 404, other methods 501, garbage
    /// 400; one request per connection, then it closes.
    Http, "http", 80, |now| Box::new(HttpConn::new(now))
);

/// One running service of a [`ServiceSet`].
#[derive(Debug)]
pub enum Service {
    Echo(TcpEcho),
    Discard(Discard),
    Chargen(Chargen),
    Http(Http),
    UdpEcho(UdpEcho),
}

impl Service {
    /// Every service name [`Service::start`] knows, with its well-known port.
    pub const NAMES: [(&'static str, u16); 5] =
        [("echo", 7), ("discard", 9), ("chargen", 19), ("http", 80), ("udp-echo", 7)];

    /// Starts the service called `name` ("echo", "discard", "chargen", "http",
    /// "udp-echo") on `addr`. Errors: EINVAL for another name; those of its start.
    pub fn start(net: &Net, name: &str, addr: impl Into<SocketAddr>) -> Result<Service> {
        Service::start_with_backlog(net, name, addr, LISTEN_BACKLOG)
    }

    /// As [`Service::start`], a TCP service listening with `backlog`.
    pub fn start_with_backlog(net: &Net, name: &str, addr: impl Into<SocketAddr>, backlog: i32) -> Result<Service> {
        Service::start_with_limits(net, name, addr, ServiceLimits { backlog, ..ServiceLimits::default() })
    }

    /// As [`Service::start`], a TCP service with `limits` (UDP echo has none to apply).
    pub fn start_with_limits(
        net: &Net,
        name: &str,
        addr: impl Into<SocketAddr>,
        limits: ServiceLimits,
    ) -> Result<Service> {
        let addr = addr.into();
        Ok(match name {
            "echo" => Service::Echo(TcpEcho::start_with_limits(net, addr, limits)?),
            "discard" => Service::Discard(Discard::start_with_limits(net, addr, limits)?),
            "chargen" => Service::Chargen(Chargen::start_with_limits(net, addr, limits)?),
            "http" => Service::Http(Http::start_with_limits(net, addr, limits)?),
            "udp-echo" => Service::UdpEcho(UdpEcho::start(net, addr)?),
            _ => return Err(Errno::EINVAL),
        })
    }

    /// The well-known port of the service called `name`.
    pub fn port_of(name: &str) -> Option<u16> {
        Service::NAMES.iter().find(|(n, _)| *n == name).map(|&(_, p)| p)
    }

    /// Its name, as [`Service::NAMES`] gives it.
    pub fn name(&self) -> &'static str {
        match self {
            Service::Echo(_) => "echo",
            Service::Discard(_) => "discard",
            Service::Chargen(_) => "chargen",
            Service::Http(_) => "http",
            Service::UdpEcho(_) => "udp-echo",
        }
    }

    /// "tcp" or "udp".
    pub fn protocol(&self) -> &'static str {
        match self {
            Service::UdpEcho(_) => "udp",
            _ => "tcp",
        }
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddrV4 {
        match self {
            Service::Echo(s) => s.local_addr(),
            Service::Discard(s) => s.local_addr(),
            Service::Chargen(s) => s.local_addr(),
            Service::Http(s) => s.local_addr(),
            Service::UdpEcho(s) => s.local_addr(),
        }
    }

    /// Stops it (see each service's `stop`).
    pub fn stop(self) -> Result<()> {
        match self {
            Service::Echo(s) => s.stop(),
            Service::Discard(s) => s.stop(),
            Service::Chargen(s) => s.stop(),
            Service::Http(s) => s.stop(),
            Service::UdpEcho(s) => s.stop(),
        }
    }
}

/// Several services started together, stopped together (also on drop): what
/// `tapstack up --serve echo,http` runs.
#[derive(Debug, Default)]
pub struct ServiceSet {
    services: Vec<Service>,
}

impl ServiceSet {
    /// Starts each service named in `list`, comma-separated, each as `NAME` (on
    /// its well-known port) or `NAME:PORT` (PORT 1 to 65535), on every address of the stack
    /// (0.0.0.0). Names: "echo", "discard", "chargen", "http", "udp-echo".
    /// If one fails, those already started are stopped.
    ///
    /// Errors (`io::Error`): `InvalidInput` for an unknown name, a bad port or an
    /// empty list, with a message naming it; otherwise the failing service's own
    /// (`AddrInUse`, ...), its message naming the service.
    pub fn start_list(net: &Net, list: &str) -> io::Result<ServiceSet> {
        ServiceSet::start_list_with_backlog(net, list, LISTEN_BACKLOG)
    }

    /// As [`ServiceSet::start_list`], the TCP services listening with `backlog`
    /// (what `tapstack up --backlog` sets).
    pub fn start_list_with_backlog(net: &Net, list: &str, backlog: i32) -> io::Result<ServiceSet> {
        ServiceSet::start_list_with(net, list, ServiceLimits { backlog, ..ServiceLimits::default() }, true)
    }

    /// As [`ServiceSet::start_list`], each TCP service with `limits`; with
    /// `share_fds`, each serves at most its share of the stack's descriptor
    /// limit ([`Net::fd_limit`]) instead of `limits.max_connections`: the
    /// limit divided by the number of TCP services plus one (a share left for
    /// the rest of the program), so that a client holding one service's
    /// connections cannot take the descriptors the others need (issue 13, item 4).
    pub fn start_list_with(net: &Net, list: &str, limits: ServiceLimits, share_fds: bool) -> io::Result<ServiceSet> {
        let wanted = ServiceSet::parse_list(list)?;
        let tcp = wanted.iter().filter(|(n, _)| *n != "udp-echo").count();
        let mut limits = limits;
        if share_fds {
            limits.max_connections = (net.fd_limit() / (tcp + 1)).max(1);
        }
        let mut set = ServiceSet::default();
        for (name, port) in wanted {
            let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
            let s = Service::start_with_limits(net, name, addr, limits)
                .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("{name} on port {port}: {e}")))?;
            set.services.push(s);
        }
        Ok(set)
    }

    /// The services `list` names (see [`ServiceSet::start_list`]), each with
    /// the port it would listen on, without starting any. A port must be 1 to
    /// 65535: `NAME:0` is refused rather than taken as "any port", since a
    /// service is for a client to find, and rather than as the well-known port,
    /// which `NAME` alone says.
    ///
    /// Errors: `InvalidInput` for an unknown name, a bad port or an empty list.
    pub fn parse_list(list: &str) -> io::Result<Vec<(&str, u16)>> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        let mut wanted = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, port) = item.split_once(':').unwrap_or((item, ""));
            let default = Service::port_of(name).ok_or_else(|| {
                let known: Vec<&str> = Service::NAMES.iter().map(|(n, _)| *n).collect();
                invalid(format!("unknown service '{name}' (known: {})", known.join(", ")))
            })?;
            let port = match port.parse::<u16>() {
                _ if !item.contains(':') => default,
                Ok(0) => {
                    return Err(invalid(format!(
                        "port 0 in service '{item}': give a port from 1 to 65535, or '{name}' alone for its \
                         well-known port {default}"
                    )))
                }
                Ok(p) => p,
                Err(_) => return Err(invalid(format!("bad port in service '{item}'"))),
            };
            wanted.push((name, port));
        }
        if wanted.is_empty() {
            return Err(invalid("no service named".into()));
        }
        Ok(wanted)
    }

    /// Starts each of `names` on its well-known port on `ip` (see [`ServiceSet::start_list`]).
    pub fn start(net: &Net, ip: Ipv4Addr, names: &[&str]) -> io::Result<ServiceSet> {
        let mut set = ServiceSet::default();
        for name in names {
            let port = Service::port_of(name)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("unknown service '{name}'")))?;
            let s = Service::start(net, name, SocketAddrV4::new(ip, port))
                .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("{name} on port {port}: {e}")))?;
            set.services.push(s);
        }
        Ok(set)
    }

    /// The services running, in the order they were started.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The running service called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name() == name)
    }

    /// Stops them all, in reverse order; returns the first error.
    pub fn stop(mut self) -> Result<()> {
        self.stop_all()
    }

    fn stop_all(&mut self) -> Result<()> {
        let mut first = Ok(());
        while let Some(s) = self.services.pop() {
            let r = s.stop();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

impl Drop for ServiceSet {
    fn drop(&mut self) {
        let _ = self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chargen_lines_rotate_through_the_95_printable_characters() {
        let first = chargen_line(0);
        assert_eq!(first.len(), 74);
        assert_eq!(&first[..], &b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n"[..]);
        let second = chargen_line(1);
        assert_eq!(&second[..71], &first[1..72]);
        assert_eq!(&second[71..], b"h\r\n");
        assert_eq!(chargen_line(95), first);
        // Line 30 wraps from '~' back to ' '.
        let l = chargen_line(30);
        let tilde = l.iter().position(|&c| c == b'~').unwrap();
        assert_eq!(l[tilde + 1], b' ');
    }

    #[test]
    fn service_lists_name_ports_from_1_and_refuse_port_0() {
        let parsed = ServiceSet::parse_list("echo, udp-echo:5353,http:8080").unwrap();
        assert_eq!(parsed, [("echo", 7), ("udp-echo", 5353), ("http", 8080)]);
        let err = |l: &str| ServiceSet::parse_list(l).unwrap_err().to_string();
        // Issue 14: `echo:0` listened on 7.
        assert!(err("echo:0").contains("port 0 in service 'echo:0'"), "{}", err("echo:0"));
        assert!(err("echo:").contains("bad port"));
        assert!(err("echo:65536").contains("bad port"));
        assert!(err("gopher").contains("unknown service 'gopher'"));
        assert!(err(" , ").contains("no service"));
    }

    #[test]
    fn http_answers_by_method_path_and_form() {
        let status = |req: &[u8]| http_answer(req).0;
        assert_eq!(status(b"GET / HTTP/1.0\r\n\r\n"), "200 OK");
        assert_eq!(status(b"GET /index.html?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"), "200 OK");
        assert_eq!(status(b"GET /nope HTTP/1.0\r\n\r\n"), "404 Not Found");
        assert_eq!(status(b"POST / HTTP/1.0\r\n\r\n"), "501 Not Implemented");
        assert!(!http_answer(b"HEAD / HTTP/1.0\r\n\r\n").2);
        for garbage in [
            &b"hello\r\n\r\n"[..],
            b"GET /\r\n\r\n",
            b"GET / FTP/1.0\r\n\r\n",
            b"get / HTTP/1.0\r\n\r\n",
            b"GET x HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.0 extra\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
            b"GET / HTTP/one\r\n\r\n",
        ] {
            assert_eq!(status(garbage), "400 Bad Request", "{garbage:?}");
        }
    }
}
