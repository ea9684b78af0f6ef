//! poll(2) and select(2) over the stack's sockets and the kernel's descriptors
//! at once (a pipe standing for stdin), as the select lecture's client waits on
//! stdin and a socket: each side wakes the call, both are reported together, a
//! closed socket and a descriptor nobody has are POLLNVAL (select: EBADF), and
//! the runtime's end wakes the call. Two runtimes on an in-memory wire; every
//! wait is bounded, and the tests act only once the poller is really blocked.

use sockets_api::fd_table::FIRST_FD;
use sockets_api::*;
use stack::device::wire::Wire;
use stack::{Config, MacAddr, Stack};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Generous bound on anything that should be prompt, for a loaded 2-core machine.
const PROMPT: Duration = Duration::from_secs(5);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Two running stacks on one wire: a at 10.0.0.1, b at 10.0.0.2.
fn pair() -> (Runtime, Runtime) {
    let (wa, wb) = Wire::pair();
    let ca = Config { seed: 21, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 0, 1), 24) };
    let cb = Config { seed: 22, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), Ipv4Addr::new(10, 0, 0, 2), 24) };
    (Runtime::start(Stack::new(ca).unwrap(), wa).unwrap(), Runtime::start(Stack::new(cb).unwrap(), wb).unwrap())
}

/// A kernel pipe, closed when dropped.
struct Pipe {
    read: i32,
    write: i32,
}

impl Pipe {
    fn new() -> Pipe {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) fills the two descriptors, which this value owns.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        Pipe { read: fds[0], write: fds[1] }
    }

    fn put(&self, b: &[u8]) {
        // SAFETY: writes from a valid buffer to our own pipe.
        assert_eq!(unsafe { libc::write(self.write, b.as_ptr().cast(), b.len()) }, b.len() as isize);
    }

    fn take(&self) -> Vec<u8> {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a valid buffer from our own pipe.
        let n = unsafe { libc::read(self.read, buf.as_mut_ptr().cast(), buf.len()) };
        buf[..n.max(0) as usize].to_vec()
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: our own descriptors.
        unsafe {
            libc::close(self.read);
            libc::close(self.write);
        }
    }
}

/// A descriptor number the kernel cannot have open: RLIMIT_NOFILE's soft limit.
fn never_open() -> i32 {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit fills a valid struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r.rlim_cur.min(i32::MAX as u64) as i32
}

/// Polls `fds` on another thread (up to 20 s); returns its result once `act`
/// has run, which it does only when the poller is blocked.
fn poll_while(rt: &Runtime, fds: Vec<PollFd>, act: impl FnOnce()) -> (Result<usize>, Vec<i16>) {
    let net = rt.net();
    let poller = std::thread::spawn(move || {
        let mut fds = fds;
        let r = net.poll(&mut fds, 20_000);
        (r, fds.iter().map(|p| p.revents).collect::<Vec<_>>())
    });
    assert!(rt.shared().wait_for_waiters(1, PROMPT), "the poll blocks");
    let start = Instant::now();
    act();
    let r = poller.join().unwrap();
    assert!(start.elapsed() < PROMPT, "woke {:?} after", start.elapsed());
    r
}

#[test]
fn poll_wakes_for_a_pipe_and_for_a_socket_each() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let sock = b.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    b.bind(sock, sa("0.0.0.0:9000")).unwrap();
    let pipe = Pipe::new();
    assert_ne!(sock, pipe.read);
    assert_ne!(sock, pipe.write);
    let set = || vec![PollFd::new(pipe.read, POLLIN), PollFd::new(sock, POLLIN)];

    // Nothing yet: a look says so, and a short wait times out.
    let mut fds = set();
    assert_eq!(b.poll(&mut fds, 0), Ok(0));
    let start = Instant::now();
    assert_eq!(b.poll(&mut fds, 100), Ok(0));
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(fds.iter().map(|p| p.revents).collect::<Vec<_>>(), [0, 0]);

    // The pipe (stdin, in the lecture) wakes it.
    let (r, revents) = poll_while(&rb, set(), || pipe.put(b"line\n"));
    assert_eq!((r, revents), (Ok(1), vec![POLLIN, 0]));
    assert_eq!(pipe.take(), b"line\n");

    // A datagram for the socket wakes it.
    let client = a.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let (r, revents) = poll_while(&rb, set(), || {
        a.sendto(client, b"reply", 0, sa("10.0.0.2:9000")).unwrap();
    });
    assert_eq!((r, revents), (Ok(1), vec![0, POLLIN]));

    // Both ready: both reported, without waiting.
    pipe.put(b"more\n");
    let mut fds = set();
    assert_eq!(b.poll(&mut fds, 20_000), Ok(2));
    assert_eq!(fds.iter().map(|p| p.revents).collect::<Vec<_>>(), [POLLIN, POLLIN]);
    // Writability of both kinds, with a negative entry skipped.
    let mut fds = [PollFd::new(pipe.write, POLLOUT), PollFd::new(-1, POLLIN), PollFd::new(sock, POLLOUT)];
    assert_eq!(b.poll(&mut fds, 0), Ok(2));
    assert_eq!(fds.map(|p| p.revents), [POLLOUT, 0, POLLOUT]);
}

#[test]
fn select_over_a_pipe_and_a_socket_reports_each() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let sock = b.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    b.bind(sock, sa("0.0.0.0:9001")).unwrap();
    let pipe = Pipe::new();
    let (read, nfds) = (pipe.read, sock.max(pipe.read) + 1);
    let both = move || {
        let mut r = FdSet::new();
        r.set(read);
        r.set(sock);
        r
    };
    let b2 = b.clone();
    let selector = std::thread::spawn(move || {
        let mut r = both();
        let n = b2.select(nfds, Some(&mut r), None, None, Some(Duration::from_secs(20)));
        (n, r.is_set(read), r.is_set(sock))
    });
    assert!(rb.shared().wait_for_waiters(1, PROMPT), "select blocks");
    let client = a.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    a.sendto(client, b"x", 0, sa("10.0.0.2:9001")).unwrap();
    assert_eq!(selector.join().unwrap(), (Ok(1), false, true));
    pipe.put(b"y");
    let mut r = both();
    assert_eq!(b.select(nfds, Some(&mut r), None, None, Some(Duration::ZERO)), Ok(2));
    assert!(r.is_set(pipe.read) && r.is_set(sock));
    // A closed socket in a set: EBADF.
    b.close(sock).unwrap();
    let mut r = both();
    assert_eq!(b.select(nfds, Some(&mut r), None, None, Some(Duration::ZERO)), Err(Errno::EBADF));
}

#[test]
fn closed_sockets_and_unopened_descriptors_are_pollnval_beside_kernel_ones() {
    let (_ra, rb) = pair();
    let b = rb.net();
    let sock = b.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    b.close(sock).unwrap();
    let pipe = Pipe::new();
    let mut fds = [PollFd::new(sock, POLLIN), PollFd::new(pipe.read, POLLIN), PollFd::new(never_open(), POLLIN)];
    // The invalid ones are reported at once, without waiting out the timeout.
    let start = Instant::now();
    assert_eq!(b.poll(&mut fds, 20_000), Ok(2));
    assert!(start.elapsed() < PROMPT);
    assert_eq!(fds.map(|p| p.revents), [POLLNVAL, 0, POLLNVAL]);
    // A socket's number is not the kernel's to use meanwhile: the next socket gets it.
    assert_eq!(b.socket(AF_INET, SOCK_DGRAM, 0), Ok(sock));
}

#[test]
fn stopping_the_runtime_ends_a_poll_blocked_on_a_pipe_and_a_socket() {
    let (_ra, rb) = pair();
    let b = rb.net();
    let sock = b.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    b.bind(sock, sa("0.0.0.0:9002")).unwrap();
    let pipe = Pipe::new();
    let read = pipe.read;
    let poller = std::thread::spawn(move || {
        let mut fds = [PollFd::new(read, POLLIN), PollFd::new(sock, POLLIN)];
        b.poll(&mut fds, 20_000)
    });
    assert!(rb.shared().wait_for_waiters(1, PROMPT));
    let start = Instant::now();
    rb.stop().unwrap();
    assert_eq!(poller.join().unwrap(), Err(Errno::ENETDOWN));
    assert!(start.elapsed() < PROMPT);
}

#[test]
fn many_sockets_get_numbers_the_kernel_does_not_hand_out() {
    let (_ra, rb) = pair();
    let b = rb.net();
    // More than one batch of reserved numbers and more than the spares kept.
    let socks: Vec<Fd> = (0..200).map(|_| b.socket(AF_INET, SOCK_DGRAM, 0).unwrap()).collect();
    let pipe = Pipe::new();
    assert!(!socks.contains(&pipe.read) && !socks.contains(&pipe.write));
    for &s in &socks {
        // SAFETY: F_GETFD only looks: the number is held open in the kernel.
        assert!(unsafe { libc::fcntl(s, libc::F_GETFD) } >= 0, "{s} is reserved");
    }
    for &s in &socks {
        b.close(s).unwrap();
    }
    // The sockets are gone. (Only the first closed are looked at: they stay the
    // table's as spares, while those beyond the bound went back to the kernel,
    // which may have given them to another test of this process by now.)
    let mut fds: Vec<PollFd> = socks[..32].iter().map(|&s| PollFd::new(s, POLLIN)).collect();
    assert_eq!(b.poll(&mut fds, 0), Ok(32));
    assert!(fds.iter().all(|p| p.revents == POLLNVAL));
}

#[test]
fn async_accept_reserves_numbers_as_it_goes() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let l = AsyncTcpListener::bind(&b, sa("0.0.0.0:8000")).unwrap();
        // More connections than one batch of reserved numbers holds, all kept open.
        let mut open = Vec::new();
        for i in 0..20 {
            let c = a.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).unwrap();
            assert_eq!(a.connect(c, sa("10.0.0.2:8000")), Err(Errno::EINPROGRESS));
            let got = tokio::time::timeout(PROMPT, l.accept()).await.expect("in time");
            let (conn, _) = got.unwrap_or_else(|e| panic!("accept {i}: {e}"));
            assert!(conn.fd() >= FIRST_FD);
            open.push(conn);
        }
    });
}
