//! A TCP echo server, line for line the C program of a networking course
//! (socket, setsockopt, bind, listen, then accept and a thread per client that
//! recv's and send's until the client closes), on tapstack.
//!
//! Usage: tcp_echo_server TAP ADDR/PREFIX [PORT]   (port 7 if not given)
//!
//! Try it inside a network namespace of your own, as root, so that nothing touches
//! your real network (the namespace goes away with `ip netns del tcplab`):
//!
//! ```sh
//! ip netns add tcplab
//! ip netns exec tcplab ip tuntap add dev tap0 mode tap
//! ip netns exec tcplab ip addr add 10.0.0.1/24 dev tap0
//! ip netns exec tcplab ip link set tap0 up
//! ip netns exec tcplab cargo run -p sockets-api --example tcp_echo_server -- tap0 10.0.0.2/24 7
//! # in another shell: Linux's own nc talks to it through the TAP
//! ip netns exec tcplab nc 10.0.0.2 7
//! ```

mod common;

use sockets_api::*;
use std::net::{Ipv4Addr, SocketAddrV4};

/// perror(3) and exit.
fn die(call: &str, e: Errno) -> ! {
    eprintln!("{call}: {e}");
    std::process::exit(1);
}

/// One client: recv and send back until it closes (recv returns 0).
fn serve(net: Net, connfd: Fd) {
    let mut buf = [0u8; 4096];
    loop {
        // n = recv(connfd, buf, sizeof buf, 0);
        let n = match net.recv(connfd, &mut buf, 0) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                eprintln!("recv: {e}");
                break;
            }
        };
        // A blocking send(2) on a stream socket queues all n bytes.
        if let Err(e) = net.send(connfd, &buf[..n], 0) {
            eprintln!("send: {e}");
            break;
        }
    }
    // close(connfd);
    let _ = net.close(connfd);
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

    // int listenfd = socket(AF_INET, SOCK_STREAM, 0);
    let listenfd = net.socket(AF_INET, SOCK_STREAM, 0).unwrap_or_else(|e| die("socket", e));
    // int one = 1; setsockopt(listenfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    net.setsockopt(listenfd, SOL_SOCKET, SO_REUSEADDR, 1).unwrap_or_else(|e| die("setsockopt", e));
    // bind(listenfd, (struct sockaddr *)&servaddr, sizeof servaddr);
    if let Err(e) = net.bind(listenfd, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)) {
        die("bind", e);
    }
    // listen(listenfd, 16);
    net.listen(listenfd, 16).unwrap_or_else(|e| die("listen", e));
    println!("echoing TCP on {}:{port}", args[2].split('/').next().unwrap_or(""));

    loop {
        // connfd = accept(listenfd, (struct sockaddr *)&cliaddr, &len);
        let (connfd, cliaddr) = match net.accept(listenfd) {
            Ok(r) => r,
            Err(e) => die("accept", e),
        };
        println!("connection from {cliaddr}");
        let n = net.clone();
        std::thread::spawn(move || serve(n, connfd));
    }
}
