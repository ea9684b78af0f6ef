//! Outside event loops: a runtime socket's raw descriptor (`AsRawFd`) is a
//! kernel eventfd that the program's own epoll can wait on beside its other
//! descriptors (a pipe here), level-triggered: readable while the socket has
//! bytes, EOF or a connection to accept, not once they are taken. Two runtimes
//! on an in-memory wire; a std thread waits in epoll_wait(2); every wait bounded.

#[path = "common/pipe.rs"]
mod pipe;

use pipe::Pipe;
use sockets_api::*;
use stack::device::wire::Wire;
use stack::{Config, MacAddr, Stack};
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

/// Generous bound on anything that should be prompt, for a loaded 2-core machine.
const PROMPT_MS: i32 = 5000;

/// Two running stacks on one wire: a at 10.0.0.1, b at 10.0.0.2.
fn pair() -> (Runtime, Runtime) {
    let (wa, wb) = Wire::pair();
    let ca = Config { seed: 31, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 0, 1), 24) };
    let cb = Config { seed: 32, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), Ipv4Addr::new(10, 0, 0, 2), 24) };
    (Runtime::start(Stack::new(ca).unwrap(), wa).unwrap(), Runtime::start(Stack::new(cb).unwrap(), wb).unwrap())
}

/// A kernel epoll instance, closed when dropped.
struct Epoll(i32);

impl Epoll {
    fn new() -> Epoll {
        // SAFETY: plain system call; the descriptor is this value's.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(fd >= 0);
        Epoll(fd)
    }

    fn add(&self, fd: i32, token: u64) {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token };
        // SAFETY: a valid event for our own epoll instance.
        assert_eq!(unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut ev) }, 0);
    }

    /// The tokens of the ready descriptors, sorted, waiting up to `ms`.
    fn wait(&self, ms: i32) -> Vec<u64> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 8];
        // SAFETY: a valid array of 8 events.
        let n = unsafe { libc::epoll_wait(self.0, evs.as_mut_ptr(), 8, ms) };
        assert!(n >= 0);
        let mut v: Vec<u64> = evs[..n as usize].iter().map(|e| e.u64).collect();
        v.sort();
        v
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: our own descriptor.
        unsafe { libc::close(self.0) };
    }
}

const SOCKET: u64 = 1;
const PIPE: u64 = 2;
const LISTENER: u64 = 3;

/// Waits on another std thread (as an outside event loop would) for the
/// first readiness, up to the prompt bound, while `act` runs here.
fn wait_elsewhere(ep: &std::sync::Arc<Epoll>, act: impl FnOnce()) -> Vec<u64> {
    let ep2 = ep.clone();
    let waiter = std::thread::spawn(move || ep2.wait(PROMPT_MS));
    act();
    waiter.join().unwrap()
}

#[test]
fn an_outside_epoll_sees_a_stack_socket_and_a_pipe_level_triggered() {
    let (a, b) = pair();
    let (na, nb) = (a.net(), b.net());
    let ep = std::sync::Arc::new(Epoll::new());
    let pipe = Pipe::new();
    ep.add(pipe.0, PIPE);

    let listener = TcpListener::bind(&nb, "10.0.0.2:7100").unwrap();
    ep.add(listener.as_raw_fd(), LISTENER);
    assert_eq!(ep.wait(0), Vec::<u64>::new(), "nothing ready yet");

    // A connection waiting to be accepted makes the listener readable.
    let mut client = None;
    let seen = wait_elsewhere(&ep, || client = Some(TcpStream::connect(&na, "10.0.0.2:7100").unwrap()));
    let mut client = client.unwrap();
    assert_eq!(seen, vec![LISTENER]);
    let (mut server, _) = listener.accept().unwrap();
    assert_eq!(ep.wait(0), Vec::<u64>::new(), "accepted: the listener is not readable any more");

    ep.add(server.as_raw_fd(), SOCKET);
    assert_eq!(ep.wait(0), Vec::<u64>::new(), "no data yet");

    // Data arriving wakes the other thread's epoll_wait.
    let seen = wait_elsewhere(&ep, || client.write_all(b"hello").unwrap());
    assert_eq!(seen, vec![SOCKET]);
    // Level-triggered: still readable while the bytes are there.
    assert_eq!(ep.wait(0), vec![SOCKET]);
    assert_eq!(ep.wait(0), vec![SOCKET]);

    // The pipe is seen beside it.
    pipe.put(b"x");
    assert_eq!(ep.wait(PROMPT_MS), vec![SOCKET, PIPE]);
    pipe.take();

    // Drained: not readable any more.
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    assert_eq!(ep.wait(0), Vec::<u64>::new(), "drained");
    assert_eq!(ep.wait(100), Vec::<u64>::new(), "and stays so");

    // Again, then EOF: readable until read.
    let seen = wait_elsewhere(&ep, || client.write_all(b"more").unwrap());
    assert_eq!(seen, vec![SOCKET]);
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(ep.wait(0), Vec::<u64>::new());
    let seen = wait_elsewhere(&ep, || drop(client));
    assert_eq!(seen, vec![SOCKET], "EOF is readable");
    assert_eq!(server.read(&mut buf).unwrap(), 0);
    assert_eq!(ep.wait(0), vec![SOCKET], "EOF stays readable, as a kernel socket's");

    // Closed: its eventfd is drained before its number can be reused.
    drop(server);
    assert_eq!(ep.wait(0), Vec::<u64>::new(), "a closed socket is not readable");
}

/// A datagram queued makes a UDP socket's raw descriptor readable; taking it
/// makes it unreadable again.
#[test]
fn a_udp_socket_s_raw_descriptor_follows_its_queue() {
    let (a, b) = pair();
    let (na, nb) = (a.net(), b.net());
    let ep = std::sync::Arc::new(Epoll::new());
    let rx = UdpSocket::bind(&nb, "10.0.0.2:7200").unwrap();
    let tx = UdpSocket::bind(&na, "10.0.0.1:0").unwrap();
    ep.add(rx.as_raw_fd(), SOCKET);
    assert_eq!(ep.wait(0), Vec::<u64>::new());
    let seen = wait_elsewhere(&ep, || assert_eq!(tx.send_to(b"dgram", "10.0.0.2:7200").unwrap(), 5));
    assert_eq!(seen, vec![SOCKET]);
    let mut buf = [0u8; 16];
    assert_eq!(rx.recv_from(&mut buf).unwrap().0, 5);
    assert_eq!(ep.wait(0), Vec::<u64>::new());
}
