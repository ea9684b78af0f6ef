//! netcat (`tapstack nc`), written with the socket calls, over TCP and UDP.
//!
//! - TCP ([`TcpNc`]): a client that connects to HOST PORT, or a server (`-l PORT`)
//!   that accepts one connection; either way it copies its input to the socket
//!   and the socket to its output, shuts its sending side down (a FIN) when the
//!   input ends, and finishes when the peer closes, like OpenBSD's nc with `-N`.
//! - UDP ([`UdpNc`], `-u`): a client that sends what it reads to one peer and
//!   writes what comes back, and a server (`-l`) that waits for its first datagram
//!   and then talks to whoever sent it.

use crate::consts::*;
use crate::errno::Errno;
use crate::fd_table::Fd;
use crate::options::Linger;
use crate::{Net, OwnedFd};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What to do, as nc's options say it.
#[derive(Clone, Debug, Default)]
pub struct NcOptions {
    /// `-l`: wait for a datagram (UDP) or accept one connection (TCP) instead of
    /// sending first.
    pub listen: bool,
    /// The peer to send to (required without `-l`).
    pub remote: Option<SocketAddrV4>,
    /// `-s addr -p port`: the local address; for `-l` the one to listen on. Port 0
    /// or none: an ephemeral port.
    pub local: Option<SocketAddrV4>,
    /// `-b`: allow a broadcast peer.
    pub broadcast: bool,
    /// `-q secs` (UDP): after the input ends, keep receiving this long, then quit.
    /// `None` keeps receiving until the caller stops the process. TCP ignores it:
    /// a TCP session ends when the peer closes.
    pub quit_after_eof: Option<Duration>,
    /// `-w secs` (TCP): a connection that cannot be established within this
    /// time fails with ETIMEDOUT, and a session idle for this long ends.
    pub timeout: Option<Duration>,
}

/// What a session moved: datagrams over UDP, bytes over TCP.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct NcStats {
    pub sent: u64,
    pub received: u64,
}

/// A UDP nc session: bound (and, without `-l`, connected) at once by [`UdpNc::open`],
/// run by [`UdpNc::run`].
#[derive(Debug)]
pub struct UdpNc {
    net: Net,
    fd: Fd,
    /// Closes the descriptor once neither the session nor its input thread uses it.
    owned: Arc<OwnedFd>,
    opts: NcOptions,
}

impl UdpNc {
    /// Opens the socket: socket, bind, setsockopt(SO_BROADCAST), and without `-l`
    /// connect. Errors: those calls' (EADDRINUSE, EACCES, ENETUNREACH, ...), and
    /// EDESTADDRREQ without `-l` and without a remote.
    pub fn open(net: &Net, opts: NcOptions) -> io::Result<UdpNc> {
        let fd = net.socket(AF_INET, SOCK_DGRAM, 0)?;
        let nc = UdpNc { net: net.clone(), fd, owned: Arc::new(OwnedFd::new(net, fd)), opts };
        let opts = &nc.opts;
        if opts.broadcast {
            net.setsockopt(fd, SOL_SOCKET, SO_BROADCAST, 1)?;
        }
        if let Some(local) = opts.local {
            net.bind(fd, local)?;
        } else if opts.listen {
            net.bind(fd, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        }
        if !opts.listen {
            net.connect(fd, opts.remote.ok_or(Errno::EDESTADDRREQ)?)?;
        }
        Ok(nc)
    }

    /// The local address (with `-l`, where to send to reach it).
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        Ok(self.net.getsockname(self.fd)?)
    }

    /// Runs the session: a thread sends each chunk read from `input` as one datagram
    /// (at most 65507 bytes) while this thread writes every datagram received to
    /// `output`. With `-l` the first datagram is awaited first, and its sender
    /// becomes the peer (connect(2)). Returns when the input has ended and
    /// `quit_after_eof` has passed, or with the first error (ECONNREFUSED when the
    /// peer's port is closed, ...). With `quit_after_eof` `None` it returns only on
    /// an error: the thread reading `input` may then still be blocked in its read.
    pub fn run(self, input: impl Read + Send + 'static, mut output: impl Write) -> io::Result<NcStats> {
        let (net, fd) = (self.net.clone(), self.fd);
        let mut buf = vec![0u8; 65536];
        let received = Arc::new(AtomicU64::new(0));
        if self.opts.listen {
            let (n, peer) = net.recvfrom(fd, &mut buf, 0)?;
            output.write_all(&buf[..n])?;
            output.flush()?;
            received.fetch_add(1, Ordering::Relaxed);
            net.connect(fd, peer)?;
        }
        let done = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let sender = {
            let (net, done, sent, quit) = (net.clone(), done.clone(), sent.clone(), self.opts.quit_after_eof);
            let owned = self.owned.clone();
            std::thread::Builder::new().name("nc-input".into()).spawn(move || -> io::Result<()> {
                let _keep_open = owned;
                let r = pump(&net, fd, input, &sent);
                if r.is_ok() {
                    let Some(wait) = quit else { return Ok(()) };
                    // Keep receiving for `wait`: poll(2) on nothing is a timed wait.
                    let _ = net.poll(&mut [], wait.as_millis().min(i32::MAX as u128) as i32);
                }
                done.store(true, Ordering::Release);
                // Wakes the receiving loop (ENOTCONN is impossible: we are connected).
                let _ = net.shutdown(fd, SHUT_RD);
                r
            })?
        };
        let result = loop {
            match net.recv(fd, &mut buf, 0) {
                Ok(n) => {
                    if done.load(Ordering::Acquire) {
                        break Ok(());
                    }
                    received.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = output.write_all(&buf[..n]).and_then(|_| output.flush()) {
                        break Err(e);
                    }
                }
                Err(e) => break Err(io::Error::from(e)),
            }
        };
        let stats = NcStats { sent: sent.load(Ordering::Relaxed), received: received.load(Ordering::Relaxed) };
        if done.load(Ordering::Acquire) {
            sender.join().unwrap_or_else(|_| Err(io::Error::other("the input thread panicked")))?;
        }
        result.map(|_| stats)
    }
}

/// Reads `input` until it ends, sending each chunk as a datagram.
fn pump(net: &Net, fd: Fd, mut input: impl Read, sent: &AtomicU64) -> io::Result<()> {
    let mut buf = vec![0u8; stack::udp::MAX_DATAGRAM];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        net.send(fd, &buf[..n], 0)?;
        sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// A TCP nc session: connected (client) or listening (`-l`) at once by
/// [`TcpNc::open`], run by [`TcpNc::run`].
#[derive(Debug)]
pub struct TcpNc {
    net: Net,
    /// The connected socket (client) or the listener (`-l`).
    fd: Fd,
    owned: Arc<OwnedFd>,
    opts: NcOptions,
}

impl TcpNc {
    /// Opens the socket: socket, bind (`-s`/`-p`), then connect(2) to the remote
    /// (blocking), or with `-l` setsockopt(SO_REUSEADDR) and listen(2) with a
    /// backlog of 1 on the local address (an ephemeral port without one).
    ///
    /// Errors: those calls' (ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EADDRINUSE,
    /// ...), and EDESTADDRREQ without `-l` and without a remote.
    pub fn open(net: &Net, opts: NcOptions) -> io::Result<TcpNc> {
        let fd = net.socket(AF_INET, SOCK_STREAM, 0)?;
        let nc = TcpNc { net: net.clone(), fd, owned: Arc::new(OwnedFd::new(net, fd)), opts };
        let opts = &nc.opts;
        if opts.listen {
            net.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1)?;
        }
        if let Some(local) = opts.local {
            net.bind(fd, local)?;
        }
        if opts.listen {
            net.listen(fd, 1)?;
        } else {
            connect_within(net, fd, opts.remote.ok_or(Errno::EDESTADDRREQ)?, opts.timeout)?;
        }
        if let Some(t) = opts.timeout {
            // -w's idle limit: a receive that waits this long ends the session.
            net.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, t)?;
        }
        Ok(nc)
    }

    /// The local address (with `-l`, where to connect to reach it).
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        Ok(self.net.getsockname(self.fd)?)
    }

    /// Ends the session without a transfer (`-z`): a lingering close, so the FIN
    /// is acknowledged before the caller stops the stack.
    pub fn close(self) {
        let linger = Linger { l_onoff: 1, l_linger: LINGER_SECS };
        let _ = self.net.setsockopt(self.fd, SOL_SOCKET, SO_LINGER, linger);
    }

    /// Runs the session. With `-l` it first accepts one connection (and stops
    /// listening). Then a thread copies `input` to the socket (blocking sends)
    /// and, when `input` ends, shuts the socket's sending side down, so the peer
    /// reads EOF; meanwhile this thread copies what arrives to `output`.
    ///
    /// When it ends follows OpenBSD nc's rule (its `readwrite`): after the peer's
    /// EOF a client goes on sending its input until that ends too (the peer has
    /// only half-closed and may still read), while a listener is done at once
    /// (its input thread may then still be blocked reading `input`, as nc's would
    /// be until it exits).
    ///
    /// Once the input is done, the connection is closed with SO_LINGER before it
    /// returns, so that what was sent, and the FIN, are acknowledged (for at most
    /// [`LINGER_SECS`]) before the caller can stop the stack. nc's process exit
    /// leaves that to the kernel, which outlives the process; a userspace stack
    /// does not. (A listener that returns with its input still open leaves the
    /// connection to its input thread, which closes it when the input ends.)
    ///
    /// Errors: the accept's, the connection's (ECONNRESET, ETIMEDOUT, ...), the
    /// output's, and the input thread's when it had finished.
    pub fn run(self, input: impl Read + Send + 'static, mut output: impl Write) -> io::Result<NcStats> {
        let net = self.net.clone();
        let (fd, owned) = if self.opts.listen {
            let (c, _peer) = net.accept(self.fd)?;
            drop(self.owned);
            (c, Arc::new(OwnedFd::new(&net, c)))
        } else {
            (self.fd, self.owned)
        };
        let sent = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let sender = {
            // The thread keeps the descriptor open while it sends: a listener that
            // returns while its input is still open leaves the rest to it.
            let (net, sent, done, owned) = (net.clone(), sent.clone(), done.clone(), owned.clone());
            std::thread::Builder::new().name("nc-input".into()).spawn(move || -> io::Result<()> {
                let _keep_open = owned;
                let r = copy_to_stream(&net, fd, input, &sent);
                // Done before the FIN goes: a peer that answers our FIN with its own
                // must find us done when its FIN ends the session.
                done.store(true, Ordering::Release);
                // The end of the input (or its failure) is the end of what we send.
                let _ = net.shutdown(fd, SHUT_WR);
                r
            })?
        };
        let mut buf = vec![0u8; 65536];
        let mut received = 0u64;
        if let Some(t) = self.opts.timeout {
            // An accepted connection does not inherit SO_RCVTIMEO here.
            net.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, t)?;
        }
        let result = loop {
            match net.recv(fd, &mut buf, 0) {
                Ok(0) => break Ok(()),
                // -w: idle for the whole timeout, the session ends as nc's does.
                Err(Errno::EAGAIN) if self.opts.timeout.is_some() => break Ok(()),
                Ok(n) => {
                    received += n as u64;
                    if let Err(e) = output.write_all(&buf[..n]).and_then(|_| output.flush()) {
                        break Err(e);
                    }
                }
                Err(e) => break Err(io::Error::from(e)),
            }
        };
        let client_goes_on = result.is_ok() && !self.opts.listen;
        let input_result = if client_goes_on || done.load(Ordering::Acquire) {
            Some(sender.join().unwrap_or_else(|_| Err(io::Error::other("the input thread panicked"))))
        } else {
            None
        };
        let stats = NcStats { sent: sent.load(Ordering::Relaxed), received };
        if input_result.is_some() {
            let linger = Linger { l_onoff: 1, l_linger: LINGER_SECS };
            let _ = net.setsockopt(fd, SOL_SOCKET, SO_LINGER, linger);
        }
        // With the input thread done, the last reference: close(2), which then
        // waits for the FIN's ACK. Otherwise the input thread closes it when done.
        drop(owned);
        result?;
        input_result.unwrap_or(Ok(())).map(|_| stats)
    }
}

/// connect(2), for at most `timeout` when one is given (SO_SNDTIMEO, after which
/// a blocking connect gives up with EINPROGRESS as on Linux; nc says "timed out").
/// The send timeout is cleared afterwards so that sends block as usual.
fn connect_within(net: &Net, fd: Fd, remote: SocketAddrV4, timeout: Option<Duration>) -> io::Result<()> {
    let Some(t) = timeout else { return Ok(net.connect(fd, remote)?) };
    net.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, t)?;
    match net.connect(fd, remote) {
        Ok(()) => {}
        Err(Errno::EINPROGRESS) => return Err(Errno::ETIMEDOUT.into()),
        Err(e) => return Err(e.into()),
    }
    net.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, Duration::ZERO)?;
    Ok(())
}

/// How long the closing of a TCP session waits for what was sent, and the FIN,
/// to be acknowledged (SO_LINGER) before `run` returns anyway.
pub const LINGER_SECS: i32 = 10;

/// Reads `input` until it ends, sending everything on the stream.
fn copy_to_stream(net: &Net, fd: Fd, mut input: impl Read, sent: &AtomicU64) -> io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // A blocking send queues all of it, or fails.
        let mut off = 0;
        while off < n {
            off += net.send(fd, &buf[off..n], 0)?;
        }
        sent.fetch_add(n as u64, Ordering::Relaxed);
    }
}
