//! A UDP echo client, line for line the C program of a networking course:
//! socket, then for each line of input sendto the server and recvfrom its echo,
//! with a receive timeout (SO_RCVTIMEO) so a lost datagram does not hang it.
//!
//! Usage: udp_echo_client TAP ADDR/PREFIX SERVER_IP [PORT]   (port 7 if not given)
//!
//! It runs its own tapstack on TAP. To reach the server example, put both TAPs on
//! one bridge inside a network namespace of your own (as root):
//!
//! ```sh
//! ip netns add udplab
//! ip netns exec udplab sh -c '
//!   ip link add br0 type bridge && ip link set br0 up
//!   for t in tap0 tap1; do ip tuntap add dev $t mode tap && ip link set $t master br0 && ip link set $t up; done
//!   ip addr add 10.0.0.1/24 dev br0'
//! ip netns exec udplab cargo run -p sockets-api --example udp_echo_server -- tap0 10.0.0.2/24 7 &
//! ip netns exec udplab cargo run -p sockets-api --example udp_echo_client -- tap1 10.0.0.3/24 10.0.0.2 7
//! ```
//!
//! Linux itself (10.0.0.1 on the bridge) can be the server too, with
//! `ip netns exec udplab socat UDP-RECVFROM:7,fork EXEC:cat` (when socat is installed).

mod common;

use sockets_api::*;
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

fn die(call: &str, e: Errno) -> ! {
    eprintln!("{call}: {e}");
    std::process::exit(1);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 || args.len() > 5 {
        eprintln!("usage: {} TAP ADDR/PREFIX SERVER_IP [PORT]", args[0]);
        std::process::exit(2);
    }
    let server_ip: Ipv4Addr = args[3].parse().unwrap_or_else(|_| die("inet_pton", Errno::EINVAL));
    let port: u16 = args.get(4).map_or(7, |p| p.parse().unwrap_or_else(|_| die("port", Errno::EINVAL)));
    let runtime = common::start(&args[1], &args[2]);
    let net = runtime.net();

    // int sockfd = socket(AF_INET, SOCK_DGRAM, 0);
    let sockfd = net.socket(AF_INET, SOCK_DGRAM, 0).unwrap_or_else(|e| die("socket", e));
    // struct timeval tv = { 2, 0 }; setsockopt(sockfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if let Err(e) = net.setsockopt(sockfd, SOL_SOCKET, SO_RCVTIMEO, Duration::from_secs(2)) {
        die("setsockopt", e);
    }
    let servaddr = SocketAddrV4::new(server_ip, port);
    let mut recvline = [0u8; 65536];
    println!("type lines; each goes to {servaddr} and its echo is printed (Ctrl-D ends)");
    for line in std::io::stdin().lock().lines() {
        let Ok(sendline) = line else { break };
        // sendto(sockfd, sendline, strlen(sendline), 0, (struct sockaddr *)&servaddr, sizeof servaddr);
        if let Err(e) = net.sendto(sockfd, sendline.as_bytes(), 0, servaddr) {
            die("sendto", e);
        }
        // n = recvfrom(sockfd, recvline, MAXLINE, 0, NULL, NULL);
        match net.recvfrom(sockfd, &mut recvline, 0) {
            Ok((n, from)) => println!("{from}: {}", String::from_utf8_lossy(&recvline[..n])),
            Err(Errno::EAGAIN) => println!("(no reply within 2 s)"),
            Err(e) => die("recvfrom", e),
        }
    }
    let _ = net.close(sockfd);
}
