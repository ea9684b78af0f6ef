//! A connect with a timeout, the way a C course teaches it: make the socket
//! nonblocking (fcntl O_NONBLOCK), connect (EINPROGRESS), poll for POLLOUT with
//! a timeout, then read the outcome with getsockopt(SO_ERROR).
//!
//! Usage: nonblocking_connect TAP ADDR/PREFIX SERVER_IP PORT [TIMEOUT_MS]   (3000 ms if not given)
//!
//! Inside a network namespace of your own (as root): against a listening kernel
//! `nc` it connects; against a closed port it reports "Connection refused"; against
//! an address on the subnet that nobody has, it gives up after the timeout if that
//! is shorter than ARP's 3 s, else it reports "No route to host" (EHOSTUNREACH),
//! as on Linux.
//!
//! ```sh
//! ip netns add nblab
//! ip netns exec nblab ip tuntap add dev tap0 mode tap
//! ip netns exec nblab ip addr add 10.0.0.1/24 dev tap0
//! ip netns exec nblab ip link set tap0 up
//! ip netns exec nblab nc -l 10.0.0.1 5000 &
//! ip netns exec nblab cargo run -p sockets-api --example nonblocking_connect -- tap0 10.0.0.2/24 10.0.0.1 5000
//! ip netns exec nblab cargo run -p sockets-api --example nonblocking_connect -- tap0 10.0.0.2/24 10.0.0.9 5000 1000
//! ```

mod common;

use sockets_api::prelude::*;
use std::net::{Ipv4Addr, SocketAddrV4};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 || args.len() > 6 {
        eprintln!("usage: {} TAP ADDR/PREFIX SERVER_IP PORT [TIMEOUT_MS]", args[0]);
        std::process::exit(2);
    }
    let server: Ipv4Addr = args[3].parse().expect("an IPv4 address");
    let port: u16 = args[4].parse().expect("a port number");
    let timeout_ms: i32 = args.get(5).map_or(3000, |t| t.parse().expect("milliseconds"));
    let runtime = common::start(&args[1], &args[2]);
    let net = runtime.net();

    let fd = net.socket(AF_INET, SOCK_STREAM, 0).expect("socket");
    // int flags = fcntl(fd, F_GETFL, 0); fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    let flags = net.fcntl(fd, F_GETFL, 0).expect("fcntl");
    net.fcntl(fd, F_SETFL, flags | O_NONBLOCK).expect("fcntl");
    match net.connect(fd, SocketAddrV4::new(server, port)) {
        Ok(()) => println!("connected at once"),
        Err(Errno::EINPROGRESS) => {
            // struct pollfd p = { fd, POLLOUT }; poll(&p, 1, timeout_ms);
            let mut p = [PollFd::new(fd, POLLOUT)];
            match net.poll(&mut p, timeout_ms).expect("poll") {
                0 => {
                    println!("no answer within {timeout_ms} ms");
                    std::process::exit(1);
                }
                _ => {
                    // getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                    let err = net.getsockopt(fd, SOL_SOCKET, SO_ERROR).expect("getsockopt");
                    match err.as_int() {
                        Some(0) => println!("connected to {server}:{port}"),
                        Some(e) => {
                            println!("connect: {}", Errno(e));
                            std::process::exit(1);
                        }
                        None => unreachable!("SO_ERROR is an int"),
                    }
                }
            }
        }
        Err(e) => {
            println!("connect: {e}");
            std::process::exit(1);
        }
    }
    let _ = net.close(fd);
}
