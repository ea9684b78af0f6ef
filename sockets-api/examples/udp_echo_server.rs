//! A UDP echo server, line for line the C program of a networking course
//! (socket, bind, then recvfrom and sendto forever), on tapstack.
//!
//! Usage: udp_echo_server TAP ADDR/PREFIX [PORT]   (port 7 if not given)
//!
//! Try it inside a network namespace of your own, as root, so that nothing touches
//! your real network (the namespace goes away with `ip netns del udplab`):
//!
//! ```sh
//! ip netns add udplab
//! ip netns exec udplab ip tuntap add dev tap0 mode tap
//! ip netns exec udplab ip addr add 10.0.0.1/24 dev tap0
//! ip netns exec udplab ip link set tap0 up
//! ip netns exec udplab cargo run -p sockets-api --example udp_echo_server -- tap0 10.0.0.2/24 7
//! # in another shell: Linux's own nc talks to it through the TAP
//! ip netns exec udplab nc -u 10.0.0.2 7
//! ```
//!
//! The client example (`udp_echo_client`) runs a second tapstack on a second TAP;
//! see its documentation for joining the two TAPs with a bridge.

mod common;

use sockets_api::*;
use std::net::{Ipv4Addr, SocketAddrV4};

/// perror(3) and exit.
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

    // int sockfd = socket(AF_INET, SOCK_DGRAM, 0);
    let sockfd = net.socket(AF_INET, SOCK_DGRAM, 0).unwrap_or_else(|e| die("socket", e));

    // servaddr.sin_addr.s_addr = htonl(INADDR_ANY); servaddr.sin_port = htons(port);
    let servaddr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    if let Err(e) = net.bind(sockfd, servaddr) {
        die("bind", e);
    }
    println!("echoing UDP on {}:{port}", args[2].split('/').next().unwrap_or(""));

    let mut buf = [0u8; 65536];
    loop {
        // n = recvfrom(sockfd, buf, sizeof buf, 0, (struct sockaddr *)&cliaddr, &len);
        let (n, cliaddr) = match net.recvfrom(sockfd, &mut buf, 0) {
            Ok(r) => r,
            Err(e) => die("recvfrom", e),
        };
        println!("{n} bytes from {cliaddr}");
        // sendto(sockfd, buf, n, 0, (struct sockaddr *)&cliaddr, len);
        if let Err(e) = net.sendto(sockfd, &buf[..n], 0, cliaddr) {
            eprintln!("sendto: {e}");
        }
    }
}
