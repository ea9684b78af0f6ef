//! A TCP echo server with poll(2) instead of threads, line for line the C
//! program of a networking course: one array of `struct pollfd` holding the
//! listening socket and every client; poll, then accept on POLLIN of the
//! listener, and recv/send on POLLIN of a client, dropping it at EOF.
//!
//! Usage: poll_echo_server TAP ADDR/PREFIX [PORT]   (port 7 if not given)
//!
//! Inside a network namespace of your own (as root); several kernel `nc`s at
//! once show that one thread serves them all:
//!
//! ```sh
//! ip netns add polllab
//! ip netns exec polllab ip tuntap add dev tap0 mode tap
//! ip netns exec polllab ip addr add 10.0.0.1/24 dev tap0
//! ip netns exec polllab ip link set tap0 up
//! ip netns exec polllab cargo run -p sockets-api --example poll_echo_server -- tap0 10.0.0.2/24 7 &
//! ip netns exec polllab nc 10.0.0.2 7      # and again in other shells
//! ```

mod common;

use sockets_api::prelude::*;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The most clients at once (the size of the C program's `struct pollfd fds[]`).
const MAX_CLIENTS: usize = 64;

fn die(call: &str, e: Errno) -> ! {
    eprintln!("{call}: {e}");
    std::process::exit(1);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 || args.len() > 4 {
        eprintln!("usage: {} TAP ADDR/PREFIX [PORT]", args[0]);
        std::process::exit(2);
    }
    let port: u16 = args.get(3).map_or(7, |p| p.parse().unwrap_or_else(|_| die("port", Errno::EINVAL)));
    let runtime = common::start(&args[1], &args[2]);
    let net = runtime.net();

    let listenfd = net.socket(AF_INET, SOCK_STREAM, 0).unwrap_or_else(|e| die("socket", e));
    net.setsockopt(listenfd, SOL_SOCKET, SO_REUSEADDR, 1).unwrap_or_else(|e| die("setsockopt", e));
    net.bind(listenfd, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).unwrap_or_else(|e| die("bind", e));
    net.listen(listenfd, 16).unwrap_or_else(|e| die("listen", e));

    // struct pollfd fds[1 + MAX_CLIENTS]; fds[0] is the listener.
    let mut fds = vec![PollFd::new(listenfd, POLLIN)];
    let mut buf = [0u8; 4096];
    loop {
        // poll(fds, nfds, -1);
        net.poll(&mut fds, -1).unwrap_or_else(|e| die("poll", e));
        if fds[0].revents & POLLIN != 0 && fds.len() <= MAX_CLIENTS {
            let (connfd, peer) = net.accept(listenfd).unwrap_or_else(|e| die("accept", e));
            println!("connection from {peer}");
            fds.push(PollFd::new(connfd, POLLIN));
        }
        let mut i = 1;
        while i < fds.len() {
            let p = fds[i];
            if p.revents & (POLLIN | POLLHUP | POLLERR) == 0 {
                i += 1;
                continue;
            }
            let done = match net.recv(p.fd, &mut buf, 0) {
                Ok(0) | Err(_) => true,
                Ok(n) => net.send(p.fd, &buf[..n], 0).is_err(),
            };
            if done {
                let _ = net.close(p.fd);
                fds.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }
}
