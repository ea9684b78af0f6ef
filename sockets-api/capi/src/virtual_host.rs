//! A stack and its descriptor table driven in virtual time by the caller's own
//! thread: no runtime thread, no device, no clock. This is what packetdrill
//! drives through `--so_filename`: its packets go straight into the stack
//! ([`VirtualHost::inject`]), what the stack sends waits in a queue with the
//! virtual time it left at ([`VirtualHost::next_datagram`]), and time moves only
//! when packetdrill sleeps or reads the clock ([`VirtualHost::advance`]), each
//! of the stack's timers running at exactly its deadline on the way.
//!
//! The peer's side of the link is played here too: every ARP request the stack
//! sends is answered at once with [`PEER_MAC`], so no ARP ever reaches a script.
//!
//! Blocking calls (packetdrill makes them from its own system-call thread) wait
//! on a condition variable that every step of the clock and every injected
//! packet notifies; their SO_RCVTIMEO/SO_SNDTIMEO count in virtual time.

use crate::calls::Calls;
use sockets_api::fd_table::{Direction, FdTable, SockType};
use sockets_api::{Errno, Fd, OptVal, PollFd, RecvMsg, Result, MSG_DONTWAIT};
use stack::{Config, Instant, MacAddr, Stack};
use std::collections::VecDeque;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The MAC the stack's peer (packetdrill's side of the link) answers ARP with.
pub const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
/// Most datagrams kept waiting for packetdrill to read (the oldest are dropped beyond it).
const MAX_QUEUED: usize = 4096;
/// How far [`VirtualHost::next_datagram`] moves the clock looking for a datagram
/// before it gives up: longer than any retransmission backoff a script waits for.
const RECEIVE_HORIZON: Duration = Duration::from_secs(600);
/// How long, in real time, a blocking call waits for the other thread to change
/// something before it gives up with EAGAIN (a script that blocks forever).
const REAL_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long, in real time, a waiting poll lets nothing happen before it looks
/// whether packetdrill's main thread is waiting for it.
const POLL_QUANTUM: std::time::Duration = std::time::Duration::from_millis(20);

/// Why descriptors are aliased: packetdrill closes the sockets a script leaves
/// open with libc's close(2) on the numbers we returned, not through the
/// interface. So every descriptor handed out is a real one (an open /dev/null)
/// standing for ours: libc's close of it is harmless, and our calls map it back.
#[derive(Debug, Default)]
struct Aliases {
    /// Real descriptor -> the table's descriptor.
    map: std::collections::HashMap<Fd, Fd>,
}

impl Aliases {
    fn ours(&self, fd: Fd) -> Result<Fd> {
        self.map.get(&fd).copied().ok_or(Errno::EBADF)
    }

    /// A real descriptor standing for `ours`.
    fn publish(&mut self, ours: Fd) -> Result<Fd> {
        // SAFETY: a plain open(2) of a constant path.
        let real = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if real < 0 {
            return Err(Errno::EMFILE);
        }
        self.map.insert(real, ours);
        Ok(real)
    }

    fn remove(&mut self, real: Fd) {
        if self.map.remove(&real).is_some() {
            // SAFETY: `real` is the /dev/null descriptor we opened (or, if
            // packetdrill closed it already, a number we no longer hold).
            unsafe { libc::close(real) };
        }
    }
}

/// What the lock guards.
#[derive(Debug)]
struct Inner {
    stack: Stack,
    sockets: FdTable,
    now: Instant,
    /// IP datagrams the stack sent, with when.
    sent: VecDeque<(Vec<u8>, Instant)>,
}

/// One stack in virtual time (see the module docs).
#[derive(Debug)]
pub struct VirtualHost {
    inner: Mutex<Inner>,
    aliases: Mutex<Aliases>,
    changed: Condvar,
    /// Microseconds since the Unix epoch that virtual time 0 stands for.
    epoch_usecs: u64,
}

impl VirtualHost {
    /// A stack with `config`, started at virtual time 0.
    pub fn new(config: Config) -> std::result::Result<VirtualHost, String> {
        let mut stack = Stack::new(config)?;
        stack.start(Instant::ZERO);
        let host = VirtualHost {
            inner: Mutex::new(Inner { stack, sockets: FdTable::new(), now: Instant::ZERO, sent: VecDeque::new() }),
            aliases: Mutex::new(Aliases::default()),
            changed: Condvar::new(),
            epoch_usecs: 1_700_000_000_000_000,
        };
        host.lock().flush();
        Ok(host)
    }

    fn aliases(&self) -> MutexGuard<'_, Aliases> {
        self.aliases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The table's descriptor for the real one packetdrill holds.
    fn ours(&self, fd: Fd) -> Result<Fd> {
        self.aliases().ours(fd)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The virtual time as microseconds since the Unix epoch (gettimeofday).
    pub fn now_usecs(&self) -> u64 {
        self.epoch_usecs + self.lock().now.as_micros()
    }

    /// Moves the clock forward by `d`, running every timer at its deadline.
    pub fn advance(&self, d: Duration) {
        let mut g = self.lock();
        let end = g.now + d;
        g.run_until(end);
        drop(g);
        self.changed.notify_all();
    }

    /// Hands the stack an IP datagram, in an Ethernet frame addressed to it.
    pub fn inject(&self, datagram: &[u8]) {
        let mut g = self.lock();
        let mut frame = Vec::with_capacity(datagram.len().max(46) + 14);
        frame.extend_from_slice(&g.stack.config().mac.0);
        frame.extend_from_slice(&PEER_MAC);
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(datagram);
        frame.resize(frame.len().max(60), 0);
        let now = g.now;
        g.stack.receive(now, &frame);
        g.flush();
        drop(g);
        self.changed.notify_all();
    }

    /// The next IP datagram the stack sends and the virtual time (µs since the
    /// Unix epoch) it left at. When none is waiting, the clock moves on to the
    /// stack's next deadlines until one is sent, at most [`RECEIVE_HORIZON`]:
    /// `None` then (packetdrill reports the packet it expected as missing).
    pub fn next_datagram(&self) -> Option<(Vec<u8>, u64)> {
        let mut g = self.lock();
        let horizon = g.now + RECEIVE_HORIZON;
        while g.sent.is_empty() {
            match g.stack.poll_at() {
                Some(t) if t <= horizon => {
                    let t = t.max(g.now);
                    g.run_until(t)
                }
                _ => {
                    g.run_until(horizon);
                    break;
                }
            }
        }
        let r = g.sent.pop_front().map(|(d, t)| (d, self.epoch_usecs + t.as_micros()));
        drop(g);
        self.changed.notify_all();
        r
    }

    /// A call under the lock, at the current virtual time.
    fn call<R>(&self, f: impl FnOnce(&mut Inner, Instant) -> Result<R>) -> Result<R> {
        let mut g = self.lock();
        let now = g.now;
        let r = f(&mut g, now);
        g.flush();
        drop(g);
        self.changed.notify_all();
        r
    }

    /// Runs `op` once if it must not block, else until it stops saying EAGAIN, the
    /// socket's timeout passes in virtual time, or nothing changes for
    /// [`REAL_WAIT_LIMIT`] of real time (EAGAIN).
    fn blocking<R>(
        &self,
        fd: Fd,
        flags: i32,
        dir: Direction,
        mut op: impl FnMut(&mut Inner, Instant) -> Result<R>,
    ) -> Result<R> {
        let p = self.call(|c, _| c.sockets.wait_params(fd, dir))?;
        if p.nonblocking || flags & MSG_DONTWAIT != 0 {
            return self.call(op);
        }
        let mut g = self.lock();
        let deadline = p.timeout.map(|t| g.now + t);
        loop {
            let now = g.now;
            let r = op(&mut g, now);
            g.flush();
            match r {
                Err(Errno::EAGAIN) if deadline.is_none_or(|d| now < d) => {}
                r => {
                    drop(g);
                    self.changed.notify_all();
                    return r;
                }
            }
            let (ng, timeout) = self.changed.wait_timeout(g, REAL_WAIT_LIMIT).unwrap_or_else(|e| e.into_inner());
            g = ng;
            if timeout.timed_out() {
                return Err(Errno::EAGAIN);
            }
        }
    }
}

impl Inner {
    /// Runs the stack's timers up to `end` in deadline order, then sets the clock to `end`.
    fn run_until(&mut self, end: Instant) {
        while let Some(t) = self.stack.poll_at().filter(|&t| t <= end) {
            self.now = self.now.max(t);
            let now = self.now;
            self.stack.poll(now);
            self.flush();
        }
        self.now = self.now.max(end);
        self.flush();
    }

    /// Takes what the stack transmitted: IPv4 datagrams into `sent`; ARP requests
    /// answered (and the answers handed back) until the stack is quiet.
    fn flush(&mut self) {
        let mut replies: Vec<Vec<u8>> = Vec::new();
        for _ in 0..16 {
            let (now, sent) = (self.now, &mut self.sent);
            self.stack.transmit(|frame| match frame.get(12..14) {
                Some([0x08, 0x00]) => {
                    if let Some(d) = ip_datagram(&frame[14..]) {
                        if sent.len() == MAX_QUEUED {
                            sent.pop_front();
                        }
                        sent.push_back((d.to_vec(), now));
                    }
                }
                Some([0x08, 0x06]) => replies.extend(arp_reply(frame)),
                _ => {}
            });
            if replies.is_empty() {
                return;
            }
            for r in replies.drain(..) {
                self.stack.receive(now, &r);
            }
        }
    }
}

/// An IPv4 datagram without the Ethernet padding after it.
fn ip_datagram(payload: &[u8]) -> Option<&[u8]> {
    let total = u16::from_be_bytes([*payload.get(2)?, *payload.get(3)?]) as usize;
    payload.get(..total)
}

/// The answer to an ARP request (RFC 826), from [`PEER_MAC`], for any address asked.
fn arp_reply(frame: &[u8]) -> Option<Vec<u8>> {
    let arp = frame.get(14..42)?;
    if arp[6..8] != [0, 1] {
        return None;
    }
    let (sha, spa, tpa) = (&arp[8..14], &arp[14..18], &arp[24..28]);
    let mut r = Vec::with_capacity(60);
    r.extend_from_slice(sha);
    r.extend_from_slice(&PEER_MAC);
    r.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    r.extend_from_slice(&PEER_MAC);
    r.extend_from_slice(tpa);
    r.extend_from_slice(sha);
    r.extend_from_slice(spa);
    r.resize(60, 0);
    Some(r)
}

/// The configuration packetdrill's defaults expect: the stack at 192.168.0.2/16
/// behind gateway 192.168.0.1, the remote end at 192.0.2.1.
pub fn packetdrill_config() -> Config {
    let mut c = Config::new(MacAddr([2, 0, 0, 0, 0, 2]), "192.168.0.2".parse().expect("an address"), 16);
    c.gateway = Some("192.168.0.1".parse().expect("an address"));
    c.seed = 1;
    c
}

impl Calls for VirtualHost {
    fn socket(&self, domain: i32, ty: i32, protocol: i32) -> Result<Fd> {
        let fd = self.call(|c, _| c.sockets.socket(&mut c.stack, domain, ty, protocol))?;
        self.aliases().publish(fd)
    }
    fn bind(&self, fd: Fd, addr: SocketAddr) -> Result<()> {
        let fd = self.ours(fd)?;
        self.call(|c, _| c.sockets.bind(&mut c.stack, fd, addr))
    }
    fn connect(&self, fd: Fd, addr: SocketAddr) -> Result<()> {
        let fd = self.ours(fd)?;
        match self.call(|c, now| c.sockets.connect(&mut c.stack, now, fd, addr)) {
            Err(Errno::EINPROGRESS) => {
                match self.blocking(fd, 0, Direction::Send, |c, now| c.sockets.connect_status(&mut c.stack, now, fd)) {
                    Err(Errno::EAGAIN) => Err(Errno::EINPROGRESS),
                    r => r,
                }
            }
            r => r,
        }
    }
    fn disconnect(&self, fd: Fd) -> Result<()> {
        let fd = self.ours(fd)?;
        self.call(|c, now| c.sockets.disconnect(&mut c.stack, now, fd))
    }
    fn listen(&self, fd: Fd, backlog: i32) -> Result<()> {
        let fd = self.ours(fd)?;
        self.call(|c, _| c.sockets.listen(&mut c.stack, fd, backlog))
    }
    fn accept(&self, fd: Fd) -> Result<(Fd, SocketAddrV4)> {
        let fd = self.ours(fd)?;
        let (nfd, peer) = self.blocking(fd, 0, Direction::Recv, |c, now| c.sockets.accept(&mut c.stack, now, fd))?;
        Ok((self.aliases().publish(nfd)?, peer))
    }
    fn send(&self, fd: Fd, buf: &[u8], flags: i32) -> Result<usize> {
        let fd = self.ours(fd)?;
        let mut done = 0;
        let r = self.blocking(fd, flags, Direction::Send, |c, now| {
            let n = c.sockets.send(&mut c.stack, now, fd, &buf[done..], flags)?;
            done += n;
            // A blocking stream send queues everything (BSD); a datagram goes whole.
            // (A nonblocking one returns what fitted: see below.)
            if done < buf.len() {
                return Err(Errno::EAGAIN);
            }
            Ok(done)
        });
        match r {
            Err(_) if done > 0 => Ok(done),
            r => r,
        }
    }
    fn sendto(&self, fd: Fd, buf: &[u8], flags: i32, addr: SocketAddr) -> Result<usize> {
        let ours = self.ours(fd)?;
        if self.call(|c, _| c.sockets.sock_type(ours))? == SockType::Stream {
            return self.send(fd, buf, flags);
        }
        let fd = ours;
        self.blocking(fd, flags, Direction::Send, |c, now| {
            c.sockets.sendto(&mut c.stack, now, fd, buf, flags, Some(addr))
        })
    }
    fn recvmsg(&self, fd: Fd, buf: &mut [u8], flags: i32) -> Result<RecvMsg> {
        let fd = self.ours(fd)?;
        self.blocking(fd, flags, Direction::Recv, |c, now| c.sockets.recvmsg(&mut c.stack, now, fd, buf, flags))
    }
    fn close(&self, fd: Fd) -> Result<()> {
        let ours = self.ours(fd)?;
        self.aliases().remove(fd);
        self.call(|c, now| c.sockets.close_lingering(&mut c.stack, now, ours).map(|_| ()))
    }
    fn shutdown(&self, fd: Fd, how: i32) -> Result<()> {
        let fd = self.ours(fd)?;
        self.call(|c, now| c.sockets.shutdown(&mut c.stack, now, fd, how))
    }
    fn getsockname(&self, fd: Fd) -> Result<SocketAddrV4> {
        let fd = self.ours(fd)?;
        self.call(|c, _| c.sockets.getsockname(&mut c.stack, fd))
    }
    fn getpeername(&self, fd: Fd) -> Result<SocketAddrV4> {
        let fd = self.ours(fd)?;
        self.call(|c, _| c.sockets.getpeername(&mut c.stack, fd))
    }
    fn setsockopt(&self, fd: Fd, level: i32, name: i32, val: OptVal) -> Result<()> {
        let fd = self.ours(fd)?;
        self.call(|c, now| c.sockets.setsockopt(&mut c.stack, now, fd, level, name, val))
    }
    fn getsockopt(&self, fd: Fd, level: i32, name: i32) -> Result<OptVal> {
        let fd = self.ours(fd)?;
        self.call(|c, _| c.sockets.getsockopt(&mut c.stack, fd, level, name))
    }
    fn fcntl(&self, fd: Fd, cmd: i32, arg: i32) -> Result<i32> {
        let fd = self.ours(fd)?;
        self.call(|c, _| c.sockets.fcntl(fd, cmd, arg))
    }
    fn poll(&self, fds: &mut [PollFd], timeout_ms: i32) -> Result<usize> {
        let mapped: Vec<Option<Fd>> = fds.iter().map(|p| self.ours(p.fd).ok()).collect();
        let mut scan = |c: &mut Inner, _now: Instant| {
            let mut n = 0;
            for (p, ours) in fds.iter_mut().zip(&mapped) {
                p.revents = match ours {
                    _ if p.fd < 0 => 0,
                    Some(fd) => c.sockets.revents(&mut c.stack, *fd, p.events),
                    None => sockets_api::POLLNVAL,
                };
                n += (p.revents != 0) as usize;
            }
            Ok(n)
        };
        if timeout_ms == 0 {
            return self.call(scan);
        }
        // Wait as a blocking call does: until a descriptor is ready, the timeout
        // passes in virtual time (packetdrill's other thread moves the clock), or
        // nothing changes for REAL_WAIT_LIMIT (EINTR: a script that never wakes us).
        let mut g = self.lock();
        let deadline = u64::try_from(timeout_ms).ok().map(|ms| g.now + Duration::from_millis(ms));
        let mut idle = std::time::Duration::ZERO;
        loop {
            let now = g.now;
            let n = scan(&mut g, now)?;
            g.flush();
            if n > 0 || deadline.is_some_and(|d| now >= d) {
                drop(g);
                self.changed.notify_all();
                return Ok(n);
            }
            let (ng, waited) = self.changed.wait_timeout(g, POLL_QUANTUM).unwrap_or_else(|e| e.into_inner());
            g = ng;
            if !waited.timed_out() {
                idle = std::time::Duration::ZERO;
                continue;
            }
            // Nobody moved the clock. If packetdrill's main thread sleeps, it waits
            // for this call to end (it does so before it moves the clock to its next
            // blocking call, as it would let real time run): time passes when
            // everybody waits, so the clock moves to our timeout.
            match deadline {
                Some(d) if main_thread_sleeping() => g.run_until(d),
                _ if idle >= REAL_WAIT_LIMIT => return Err(Errno::EINTR),
                _ => idle += POLL_QUANTUM,
            }
        }
    }
}

/// Whether the process's main thread (packetdrill's, which runs the script) is
/// asleep, read from /proc as packetdrill itself tells whether its system-call
/// thread blocks. In virtual time it sleeps only waiting for that thread.
fn main_thread_sleeping() -> bool {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{}/stat", std::process::id())).unwrap_or_default();
    // "pid (comm) S ...": the state follows the last ')', since comm may hold one.
    stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
}
