//! Sockets past the kernel's descriptor limit: with RLIMIT_NOFILE lowered for
//! this test process (its own binary, one test, so nothing else shares the
//! limit), the runtime runs out of kernel numbers after a few sockets and
//! numbers the rest from /proc/sys/fs/nr_open up. Those connect, accept, echo,
//! close and take part in poll(2) beside a kernel pipe like any other; they
//! have no kernel descriptor (`Net::is_kernel_fd`). Over the stack's loopback;
//! every wait bounded.

#[path = "common/pipe.rs"]
mod pipe;

use pipe::Pipe;
use sockets_api::consts::*;
use sockets_api::*;
use stack::device::wire::Wire;
use stack::{Config, MacAddr, Stack};
use std::net::{Ipv4Addr, SocketAddr};

/// Sockets asked of the kernel before the limit: so few that most go beyond.
const KERNEL_ROOM: u64 = 16;
/// Connections made: each is two sockets (client and accepted).
const CONNS: usize = 60;

fn nr_open() -> i32 {
    std::fs::read_to_string("/proc/sys/fs/nr_open").unwrap().trim().parse().unwrap()
}

/// Lowers RLIMIT_NOFILE (soft and hard) to leave about [`KERNEL_ROOM`]
/// descriptors for sockets above the runtime's headroom, counted from the
/// lowest free descriptor (the kernel hands out the lowest; descriptors
/// inherited higher up stay open).
fn lower_nofile() {
    // SAFETY: dup and close of a descriptor this function owns.
    let lowest_free = unsafe {
        let probe = libc::dup(2);
        assert!(probe >= 0);
        libc::close(probe);
        probe as u64
    };
    let n = lowest_free + kernel_fds_headroom() + KERNEL_ROOM;
    let r = libc::rlimit { rlim_cur: n, rlim_max: n };
    // SAFETY: setrlimit on a valid struct; lowering needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0);
}

fn kernel_fds_headroom() -> u64 {
    KERNEL_HEADROOM as u64
}

#[test]
fn sockets_beyond_the_kernel_limit_connect_echo_poll_and_close() {
    lower_nofile();
    let (near, _far) = Wire::pair();
    let c = Config { seed: 41, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 0, 1), 24) };
    let rt = Runtime::start(Stack::new(c).unwrap(), near).unwrap();
    let net = rt.net();
    let pipe = Pipe::new();
    let beyond = nr_open();

    let l = net.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    net.bind(l, "127.0.0.1:7".parse::<SocketAddr>().unwrap()).unwrap();
    net.listen(l, 128).unwrap();
    assert!(l < beyond && net.is_kernel_fd(l), "the first sockets are numbered by the kernel: {l}");
    let mut pairs = Vec::new();
    for _ in 0..CONNS {
        let c = net.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        net.connect(c, "127.0.0.1:7".parse::<SocketAddr>().unwrap()).unwrap();
        let (a, _) = net.accept(l).unwrap();
        pairs.push((c, a));
    }
    let all: Vec<Fd> = pairs.iter().flat_map(|&(c, a)| [c, a]).collect();
    let high: Vec<Fd> = all.iter().copied().filter(|&fd| fd >= beyond).collect();
    assert!(high.len() > CONNS, "most sockets are numbered beyond nr_open: {all:?}");
    assert!(high.iter().all(|&fd| !net.is_kernel_fd(fd)));
    assert!(all.iter().all(|&fd| fd < beyond + 2 * CONNS as Fd), "numbered compactly from nr_open: {all:?}");

    // Echo on every connection, whichever numbers it has.
    for (i, &(c, a)) in pairs.iter().enumerate() {
        let msg = format!("hello {i}");
        assert_eq!(net.send(c, msg.as_bytes(), 0).unwrap(), msg.len());
        let mut buf = [0u8; 32];
        let n = net.recv(a, &mut buf, 0).unwrap();
        assert_eq!(&buf[..n], msg.as_bytes());
        assert_eq!(net.send(a, &buf[..n], 0).unwrap(), n);
        let n = net.recv(c, &mut buf, 0).unwrap();
        assert_eq!(&buf[..n], msg.as_bytes());
    }

    // poll(2) over a kernel pipe and a socket beyond the kernel's numbers.
    let (c, a) = *pairs.iter().rev().find(|&&(c, a)| c >= beyond && a >= beyond).unwrap();
    let mut fds = [PollFd::new(pipe.0, POLLIN), PollFd::new(a, POLLIN)];
    assert_eq!(net.poll(&mut fds, 0).unwrap(), 0, "nothing ready yet");
    net.send(c, b"x", 0).unwrap();
    let n = net.poll(&mut fds, 10_000).unwrap();
    assert_eq!((n, fds[0].revents, fds[1].revents & POLLIN), (1, 0, POLLIN), "the socket wakes the mixed poll");
    // SAFETY: writes one byte to our own pipe.
    assert_eq!(unsafe { libc::write(pipe.1, b"y".as_ptr().cast(), 1) }, 1);
    let n = net.poll(&mut fds, 10_000).unwrap();
    assert_eq!((n, fds[1].revents & POLLIN), (2, POLLIN), "both the pipe and the socket: {fds:?}");
    // A number beyond the kernel's that is not open: POLLNVAL, as the kernel's poll says.
    let mut nv = [PollFd::new(pipe.0, POLLIN), PollFd::new(beyond + 100_000, POLLIN)];
    net.poll(&mut nv, 0).unwrap();
    assert_eq!(nv[1].revents, POLLNVAL);

    // Close everything; the numbers beyond are reused, lowest first.
    for &fd in &all {
        net.close(fd).unwrap();
    }
    assert_eq!(net.close(a), Err(Errno::EBADF));
    let again: Vec<Fd> = (0..CONNS).map(|_| net.socket(AF_INET, SOCK_STREAM, 0).unwrap()).collect();
    assert!(again.iter().any(|&fd| fd >= beyond) && again.iter().all(|&fd| fd < beyond + 2 * CONNS as Fd));
    again.iter().for_each(|&fd| net.close(fd).unwrap());
    net.close(l).unwrap();
}
