//! The kernel's side of the connections benchmark, the same for every server:
//! sequential connect / echo / close ([`rate`]), and many connections opened
//! with a bounded number of handshakes in flight, each echoing 8 bytes once
//! and then held open ([`hold`]). Plain kernel sockets (std and epoll through
//! libc), run on a thread that has entered the client's namespace. Every wait
//! is bounded.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// The bytes each connection sends and reads back.
pub const MSG: usize = 8;

/// The message of connection `i`: its number, so a crossed reply shows.
fn message(i: usize) -> [u8; MSG] {
    (i as u64).to_be_bytes()
}

/// Sequential connections to `server`, each: connect, write 8 bytes, read
/// them back, close; until `max` are done or `within` has passed. Returns how
/// many and the time they took.
pub fn rate(server: SocketAddrV4, max: usize, within: Duration) -> Result<(usize, Duration), String> {
    let start = Instant::now();
    let mut n = 0;
    while n < max && start.elapsed() < within {
        let fail = |e: std::io::Error| format!("connection {n} to {server}: {e}");
        let mut s = TcpStream::connect_timeout(&server.into(), Duration::from_secs(5)).map_err(fail)?;
        s.set_read_timeout(Some(Duration::from_secs(5))).map_err(fail)?;
        let msg = message(n);
        s.write_all(&msg).map_err(fail)?;
        let mut back = [0; MSG];
        s.read_exact(&mut back).map_err(fail)?;
        if back != msg {
            return Err(format!("connection {n}: echoed {back:?}, sent {msg:?}"));
        }
        n += 1;
    }
    Ok((n, start.elapsed()))
}

/// Connections held open, closed (FIN) when dropped. Not reset: 10,000 RSTs
/// at once overflow the TAP's transmit queue (txqueuelen: 4096, as the TAP
/// device raises it) and a lost
/// RST is never sent again, so the server would keep those connections
/// until its idle timeout; a lost FIN is retransmitted.
pub struct Held(Vec<RawFd>);

impl Drop for Held {
    fn drop(&mut self) {
        for &fd in &self.0 {
            // SAFETY: our own descriptor, closed once.
            unsafe { libc::close(fd) };
        }
    }
}

/// What [`hold`] achieved.
#[derive(Debug)]
pub struct Outcome {
    /// Connections that echoed their 8 bytes (and are held).
    pub served: usize,
    /// Connections refused, reset, or not served within the bound.
    pub failed: usize,
    pub first_error: Option<String>,
    /// From the first connect until the last echo (or the bound).
    pub took: Duration,
}

/// One connection of [`hold`] while it is being served.
#[derive(Clone, Copy)]
struct Slot {
    fd: RawFd,
    /// Its 8 bytes were written.
    sent: bool,
    /// How many of them came back.
    got: usize,
}

const CLOSED: Slot = Slot { fd: -1, sent: false, got: 0 };

/// Opens `n` connections to `server` (source addresses taken in turn from
/// `sources`, or the kernel's choice if empty), at most `in_flight` at once
/// between connect and echo; on each, once connected, writes 8 bytes and reads
/// them back, then holds it open. Gives up after `within`.
pub fn hold(
    server: SocketAddrV4,
    sources: &[Ipv4Addr],
    n: usize,
    in_flight: usize,
    within: Duration,
) -> (Held, Outcome) {
    let mut run = Run::new(n);
    let start = Instant::now();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    while run.served + run.failed < n && start.elapsed() < within {
        while run.slots.len() < n && run.active < in_flight {
            let i = run.slots.len();
            match open(server, sources.get(i % sources.len().max(1)).copied()) {
                Ok(fd) => {
                    run.slots.push(Slot { fd, ..CLOSED });
                    run.active += 1;
                    epoll_ctl(run.ep, libc::EPOLL_CTL_ADD, fd, libc::EPOLLOUT as u32, i);
                }
                Err(e) => {
                    run.slots.push(CLOSED);
                    run.note_failure(format!("connection {i}: {e}"));
                }
            }
        }
        // SAFETY: a valid epoll descriptor and a buffer of events.len() entries.
        let k = unsafe { libc::epoll_wait(run.ep, events.as_mut_ptr(), events.len() as i32, 100) };
        for ev in events.iter().take(k.max(0) as usize) {
            let (i, flags) = (ev.u64 as usize, ev.events);
            run.step(i, flags);
        }
    }
    let took = start.elapsed();
    run.finish(took)
}

/// The state of one [`hold`].
struct Run {
    ep: RawFd,
    slots: Vec<Slot>,
    active: usize,
    served: usize,
    failed: usize,
    first_error: Option<String>,
}

impl Run {
    fn new(n: usize) -> Run {
        // SAFETY: plain system call.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(ep >= 0, "epoll_create1: {}", std::io::Error::last_os_error());
        Run { ep, slots: Vec::with_capacity(n), active: 0, served: 0, failed: 0, first_error: None }
    }

    fn note_failure(&mut self, e: String) {
        self.failed += 1;
        self.first_error.get_or_insert(e);
    }

    /// Connection `i` was reported ready with `flags`.
    fn step(&mut self, i: usize, flags: u32) {
        let slot = self.slots[i];
        if slot.fd < 0 {
            return;
        }
        if !slot.sent {
            let err = socket_error(slot.fd);
            if err != 0 || flags & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                return self.fail(i, format!("connect: {}", std::io::Error::from_raw_os_error(err)));
            }
            // SAFETY: writes MSG bytes from a valid buffer to our own socket.
            let w = unsafe { libc::write(slot.fd, message(i).as_ptr().cast(), MSG) };
            if w != MSG as isize {
                return self.fail(i, format!("write: {w}: {}", std::io::Error::last_os_error()));
            }
            self.slots[i].sent = true;
            epoll_ctl(self.ep, libc::EPOLL_CTL_MOD, slot.fd, libc::EPOLLIN as u32, i);
            return;
        }
        let mut buf = [0u8; MSG];
        // SAFETY: reads at most MSG - got bytes into a valid buffer.
        let r = unsafe { libc::read(slot.fd, buf.as_mut_ptr().cast(), MSG - slot.got) };
        if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock {
            return;
        }
        if r <= 0 {
            return self.fail(i, format!("read: {r}: {}", std::io::Error::last_os_error()));
        }
        let r = r as usize;
        if buf[..r] != message(i)[slot.got..slot.got + r] {
            return self.fail(i, "echoed bytes differ".into());
        }
        self.slots[i].got += r;
        if self.slots[i].got == MSG {
            epoll_ctl(self.ep, libc::EPOLL_CTL_DEL, slot.fd, 0, i);
            self.served += 1;
            self.active -= 1;
        }
    }

    fn fail(&mut self, i: usize, e: String) {
        // SAFETY: our own descriptor, closed once (the slot forgets it).
        unsafe { libc::close(self.slots[i].fd) };
        self.slots[i] = CLOSED;
        self.active -= 1;
        self.note_failure(format!("connection {i}: {e}"));
    }

    /// The served connections held; the rest (not served in time) closed and failed.
    fn finish(mut self, took: Duration) -> (Held, Outcome) {
        let mut held = Vec::with_capacity(self.served);
        for s in std::mem::take(&mut self.slots) {
            match s {
                s if s.fd >= 0 && s.got == MSG => held.push(s.fd),
                s if s.fd >= 0 => {
                    // SAFETY: our own descriptor, closed once.
                    unsafe { libc::close(s.fd) };
                    self.note_failure("not served in time".into());
                }
                _ => {}
            }
        }
        // SAFETY: our own epoll descriptor.
        unsafe { libc::close(self.ep) };
        let outcome = Outcome { served: self.served, failed: self.failed, first_error: self.first_error, took };
        (Held(held), outcome)
    }
}

/// A nonblocking socket connecting to `server` from `source` (its port chosen
/// at connect, IP_BIND_ADDRESS_NO_PORT, so each source address has its own 64k ports).
fn open(server: SocketAddrV4, source: Option<Ipv4Addr>) -> std::io::Result<RawFd> {
    // SAFETY: plain system calls on a descriptor this function owns, closed on failure.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fail = |fd| {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            Err(e)
        };
        if let Some(src) = source {
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, &1i32);
            let sa = sockaddr(SocketAddrV4::new(src, 0));
            if libc::bind(fd, (&sa as *const libc::sockaddr_in).cast(), size_of_val(&sa) as u32) != 0 {
                return fail(fd);
            }
        }
        let sa = sockaddr(server);
        let r = libc::connect(fd, (&sa as *const libc::sockaddr_in).cast(), size_of_val(&sa) as u32);
        if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINPROGRESS) {
            return fail(fd);
        }
        Ok(fd)
    }
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
        sin_zero: [0; 8],
    }
}

fn setsockopt<T>(fd: RawFd, level: i32, name: i32, value: &T) {
    // SAFETY: a valid pointer to a value of the size given.
    unsafe { libc::setsockopt(fd, level, name, (value as *const T).cast(), size_of::<T>() as u32) };
}

/// SO_ERROR: a nonblocking connect's outcome.
fn socket_error(fd: RawFd) -> i32 {
    let (mut err, mut len) = (0i32, size_of::<i32>() as u32);
    // SAFETY: a valid i32 and its length.
    unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, (&mut err as *mut i32).cast(), &mut len) };
    err
}

fn epoll_ctl(ep: RawFd, op: i32, fd: RawFd, events: u32, token: usize) {
    let mut ev = libc::epoll_event { events, u64: token as u64 };
    // SAFETY: valid descriptors and event.
    let r = unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) };
    assert!(r == 0, "epoll_ctl: {}", std::io::Error::last_os_error());
}
