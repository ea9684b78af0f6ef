//! The application on tapstack in a scenario, written against the sans-IO core
//! rather than the threaded sockets API: it acts only when the driver steps it,
//! at the driver's instant, so a recording and its replay make exactly the same
//! calls at exactly the same times.
//!
//! - Services: echo (RFC 862), discard (RFC 863), http (HTTP/1.0, the page of
//!   `tapstack up`; the server closes first) and udp-echo, each behaving as the
//!   sockets-api service of that name.
//! - A script of calls on one TCP socket (connect or listen, send, recv,
//!   shutdown, close, abort), each starting when the one before has finished
//!   and, with `at_ms`, not before that time.

use super::file::{AppSpec, Call};
use sockets_api::services::{http_head_complete, http_response, HTTP_MAX_REQUEST};
use stack::tcp::{ConnId, Shutdown, State, TcpError};
use stack::time::Instant;
use stack::udp::{SocketHandle, UdpError};
use stack::Stack;
use std::net::SocketAddrV4;
use std::time::Duration;

/// Bytes read or written per call.
const CHUNK: usize = 16 * 1024;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Echo,
    Discard,
    Http,
}

/// Where an HTTP connection is: reading the request head, sending the answer,
/// or (its FIN sent) reading until the client closes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Reading,
    Answering,
    Draining,
}

/// One accepted connection of a TCP service.
#[derive(Debug)]
struct ServiceConn {
    id: ConnId,
    phase: Phase,
    /// The HTTP request head read so far.
    head: Vec<u8>,
    /// Bytes to send (echo, the HTTP answer) and how many of them went.
    out: Vec<u8>,
    sent: usize,
    /// The peer's FIN was read.
    eof: bool,
    done: bool,
}

#[derive(Debug)]
struct TcpService {
    kind: Kind,
    listener: ConnId,
    conns: Vec<ServiceConn>,
}

/// A script's progress.
#[derive(Debug)]
struct Script {
    steps: Vec<(Option<Instant>, Call)>,
    pos: usize,
    /// The current step's time has come: it runs as events allow.
    started: bool,
    sock: Option<ConnId>,
    listener: Option<ConnId>,
    /// Progress within the current step: repetitions done and bytes of this one.
    reps: usize,
    offset: usize,
    received: usize,
    failed: Option<String>,
}

/// The application: services and a script.
#[derive(Debug)]
pub struct App {
    tcp: Vec<TcpService>,
    udp_echo: Option<SocketHandle>,
    script: Script,
    buf: Vec<u8>,
    /// Time zero of the log.
    start: Instant,
    /// What the script did, with times, for the record and replay reports.
    pub log: Vec<String>,
}

impl App {
    /// Opens the services' sockets (no frames are sent) and prepares the script;
    /// `start` is the stack's start, the origin of the steps' `at_ms`.
    pub fn new(spec: &AppSpec, stack: &mut Stack, start: Instant) -> Result<App, String> {
        let addr = stack.config().addr;
        let mut tcp = Vec::new();
        let mut udp_echo = None;
        for name in &spec.services {
            let (kind, port) = match name.as_str() {
                "echo" => (Kind::Echo, 7),
                "discard" => (Kind::Discard, 9),
                "http" => (Kind::Http, 80),
                "udp-echo" => {
                    let (udp, net) = stack.udp();
                    let h = udp.open().map_err(|e| format!("udp-echo: {e:?}"))?;
                    udp.bind(net, h, SocketAddrV4::new(addr, 7)).map_err(|e| format!("udp-echo: {e:?}"))?;
                    udp_echo = Some(h);
                    continue;
                }
                other => return Err(format!("unknown service '{other}'")),
            };
            let (t, net) = stack.tcp();
            let listener =
                t.listen(net, SocketAddrV4::new(addr, port), 16).map_err(|e| format!("{name} on port {port}: {e}"))?;
            tcp.push(TcpService { kind, listener, conns: Vec::new() });
        }
        let mut steps = Vec::new();
        for step in &spec.script {
            let at = step.at_ms.map(|ms| start + Duration::from_millis(ms));
            steps.push((at, step.call()?));
        }
        let script = Script {
            steps,
            pos: 0,
            started: false,
            sock: None,
            listener: None,
            reps: 0,
            offset: 0,
            received: 0,
            failed: None,
        };
        Ok(App { tcp, udp_echo, script, buf: vec![0; CHUNK], start, log: Vec::new() })
    }

    /// When the application next wants to act by itself: the `at_ms` of a
    /// script step that is waiting only for its time.
    pub fn poll_at(&self) -> Option<Instant> {
        match self.script.steps.get(self.script.pos) {
            Some((Some(at), _)) if self.script.failed.is_none() && !self.script.started => Some(*at),
            _ => None,
        }
    }

    /// Whether the script has run every step (or failed).
    pub fn script_done(&self) -> bool {
        self.script.pos >= self.script.steps.len() || self.script.failed.is_some()
    }

    /// Why the script stopped early, if it did.
    pub fn script_failure(&self) -> Option<&str> {
        self.script.failed.as_deref()
    }

    /// Does everything the application can do at `now`.
    pub fn step(&mut self, now: Instant, stack: &mut Stack) {
        for svc in &mut self.tcp {
            serve(svc, now, stack, &mut self.buf);
        }
        if let Some(h) = self.udp_echo {
            udp_echo(h, now, stack, &mut self.buf);
        }
        self.run_script(now, stack);
    }

    fn run_script(&mut self, now: Instant, stack: &mut Stack) {
        let start_time = |at: Option<Instant>| at.is_none_or(|t| now >= t);
        while self.script.failed.is_none() {
            let Some((at, call)) = self.script.steps.get(self.script.pos).cloned() else { return };
            if !start_time(at) {
                return;
            }
            self.script.started = true;
            match self.script_call(now, stack, &call) {
                Ok(true) => {
                    self.log.push(format!("{} {call}: done", secs(now, self.start)));
                    self.script.pos += 1;
                    self.script.started = false;
                    self.script.reps = 0;
                    self.script.offset = 0;
                    self.script.received = 0;
                }
                Ok(false) => return,
                Err(e) => {
                    let why = format!("step {} ({call}) failed: {e}", self.script.pos + 1);
                    self.log.push(format!("{} {why}", secs(now, self.start)));
                    self.script.failed = Some(why);
                }
            }
        }
    }

    /// Makes progress on one call; `Ok(true)` when it has finished.
    fn script_call(&mut self, now: Instant, stack: &mut Stack, call: &Call) -> Result<bool, TcpError> {
        match call {
            Call::Connect(remote, port) => self.script_connect(now, stack, *remote, *port),
            Call::Listen(port) => self.script_listen(stack, *port),
            Call::Send(data, repeat) => self.script_send(now, stack, data, *repeat),
            Call::Recv(want) => self.script_recv(now, stack, *want),
            Call::RecvEof => self.script_recv_eof(now, stack),
            Call::Shutdown => {
                let (tcp, net) = stack.tcp();
                tcp.shutdown(now, net, self.script.sock.ok_or(TcpError::NotConnected)?, Shutdown::Write)?;
                Ok(true)
            }
            Call::Close => {
                let (tcp, net) = stack.tcp();
                tcp.close(now, net, self.script.sock.take().ok_or(TcpError::NotConnected)?)?;
                Ok(true)
            }
            Call::Abort => {
                let (tcp, net) = stack.tcp();
                tcp.abort(now, net, self.script.sock.take().ok_or(TcpError::NotConnected)?)?;
                Ok(true)
            }
        }
    }

    /// `connect`: opens the socket on the first call, then waits for it to
    /// leave SYN-SENT.
    fn script_connect(
        &mut self,
        now: Instant,
        stack: &mut Stack,
        remote: SocketAddrV4,
        port: Option<u16>,
    ) -> Result<bool, TcpError> {
        let s = &mut self.script;
        let (tcp, net) = stack.tcp();
        let id = match s.sock {
            Some(id) => id,
            None => {
                let local = port.map(|p| SocketAddrV4::new(net.config().addr, p));
                let id = tcp.connect(now, net, local, remote)?;
                s.sock = Some(id);
                id
            }
        };
        if let Some(e) = tcp.take_error(id)? {
            return Err(e);
        }
        Ok(tcp.state(id)? != State::SynSent)
    }

    /// `listen`: listens on the first call, then waits to accept one connection.
    fn script_listen(&mut self, stack: &mut Stack, port: u16) -> Result<bool, TcpError> {
        let s = &mut self.script;
        let (tcp, net) = stack.tcp();
        let l = match s.listener {
            Some(l) => l,
            None => {
                let addr = net.config().addr;
                let l = tcp.listen(net, SocketAddrV4::new(addr, port), 1)?;
                s.listener = Some(l);
                l
            }
        };
        match tcp.accept(l)? {
            Some((id, _)) => {
                s.sock = Some(id);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// `send`: `data`, `repeat` times, as far as the send buffer takes it.
    fn script_send(&mut self, now: Instant, stack: &mut Stack, data: &[u8], repeat: usize) -> Result<bool, TcpError> {
        let s = &mut self.script;
        let (tcp, net) = stack.tcp();
        let id = s.sock.ok_or(TcpError::NotConnected)?;
        while s.reps < repeat {
            match tcp.send(now, net, id, &data[s.offset..]) {
                Ok(n) => s.offset += n,
                Err(TcpError::WouldBlock) => return Ok(false),
                Err(e) => return Err(e),
            }
            if s.offset == data.len() {
                s.reps += 1;
                s.offset = 0;
            }
        }
        Ok(true)
    }

    /// `recv`: `want` bytes in all; the end of the stream before them is an error.
    fn script_recv(&mut self, now: Instant, stack: &mut Stack, want: usize) -> Result<bool, TcpError> {
        let s = &mut self.script;
        let (tcp, net) = stack.tcp();
        let id = s.sock.ok_or(TcpError::NotConnected)?;
        while s.received < want {
            let room = (want - s.received).min(self.buf.len());
            match tcp.recv(now, net, id, &mut self.buf[..room], false) {
                Ok(0) => return Err(TcpError::ConnectionReset),
                Ok(n) => s.received += n,
                Err(TcpError::WouldBlock) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// `recv` until the end of the stream.
    fn script_recv_eof(&mut self, now: Instant, stack: &mut Stack) -> Result<bool, TcpError> {
        let s = &mut self.script;
        let (tcp, net) = stack.tcp();
        let id = s.sock.ok_or(TcpError::NotConnected)?;
        loop {
            match tcp.recv(now, net, id, &mut self.buf, false) {
                Ok(0) => return Ok(true),
                Ok(n) => s.received += n,
                Err(TcpError::WouldBlock) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Seconds since `start`, for logs.
fn secs(t: Instant, start: Instant) -> String {
    format!("[{:>10.6}]", t.saturating_duration_since(start).as_secs_f64())
}

/// Accepts every waiting connection and moves each one on as far as it goes.
fn serve(svc: &mut TcpService, now: Instant, stack: &mut Stack, buf: &mut [u8]) {
    while let Ok(Some((id, _))) = stack.tcp().0.accept(svc.listener) {
        svc.conns.push(ServiceConn {
            id,
            phase: Phase::Reading,
            head: Vec::new(),
            out: Vec::new(),
            sent: 0,
            eof: false,
            done: false,
        });
    }
    for c in &mut svc.conns {
        if drive(svc.kind, c, now, stack, buf).is_err() {
            // Reset or timed out: nothing more to do than to release the handle.
            let (tcp, net) = stack.tcp();
            let _ = tcp.close(now, net, c.id);
            c.done = true;
        }
    }
    svc.conns.retain(|c| !c.done);
}

/// One service connection: the same sequence of calls as the threaded service
/// of sockets-api, without blocking. (Unlike it, HTTP does not answer a bad
/// request line before the head is complete.)
fn drive(kind: Kind, c: &mut ServiceConn, now: Instant, stack: &mut Stack, buf: &mut [u8]) -> Result<(), TcpError> {
    let (tcp, net) = stack.tcp();
    loop {
        // Send what is owed before reading more, as the threaded send_all does.
        while c.sent < c.out.len() {
            match tcp.send(now, net, c.id, &c.out[c.sent..]) {
                Ok(n) => c.sent += n,
                Err(TcpError::WouldBlock) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        if !c.out.is_empty() {
            c.out.clear();
            c.sent = 0;
            if c.phase == Phase::Answering {
                // HTTP/1.0 with Connection: close: the server's FIN comes first.
                tcp.shutdown(now, net, c.id, Shutdown::Write)?;
                c.phase = Phase::Draining;
            }
        }
        let head_done =
            http_head_complete(&c.head) || c.head.len() >= HTTP_MAX_REQUEST || (c.eof && !c.head.is_empty());
        if kind == Kind::Http && c.phase == Phase::Reading && head_done {
            c.out = http_response(&c.head);
            c.phase = Phase::Answering;
            continue;
        }
        if c.eof {
            tcp.close(now, net, c.id)?;
            c.done = true;
            return Ok(());
        }
        match tcp.recv(now, net, c.id, buf, false) {
            Ok(0) => c.eof = true,
            Ok(n) => match (kind, c.phase) {
                (Kind::Echo, _) => c.out.extend_from_slice(&buf[..n]),
                (Kind::Http, Phase::Reading) => c.head.extend_from_slice(&buf[..n]),
                _ => {}
            },
            Err(TcpError::WouldBlock) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Echoes every waiting datagram back to its sender.
fn udp_echo(h: SocketHandle, now: Instant, stack: &mut Stack, buf: &mut [u8]) {
    let (udp, net) = stack.udp();
    loop {
        match udp.recv_from(h, buf, false) {
            Ok((n, from)) => {
                let _ = udp.send_to(now, net, h, Some(from), &buf[..n.min(buf.len())]);
            }
            Err(UdpError::WouldBlock) => return,
            // A pending error (an ICMP port unreachable for an earlier echo): taken, go on.
            Err(_) => continue,
        }
    }
}
