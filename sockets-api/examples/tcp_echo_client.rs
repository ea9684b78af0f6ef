//! A TCP echo client in the std::net style of a Rust course: connect, then for
//! each line of input write it and read the echo back, on tapstack.
//!
//! Usage: tcp_echo_client TAP ADDR/PREFIX SERVER_IP [PORT]   (port 7 if not given)
//!
//! Inside a network namespace of your own (as root), with the kernel's nc as the
//! echo server on the TAP's far side:
//!
//! ```sh
//! ip netns add tcplab
//! ip netns exec tcplab ip tuntap add dev tap0 mode tap
//! ip netns exec tcplab ip addr add 10.0.0.1/24 dev tap0
//! ip netns exec tcplab ip link set tap0 up
//! ip netns exec tcplab sh -c 'nc -lk 10.0.0.1 7 -e /bin/cat || ncat -lk 10.0.0.1 7 -e /bin/cat' &
//! echo hello | ip netns exec tcplab cargo run -p sockets-api --example tcp_echo_client -- tap0 10.0.0.2/24 10.0.0.1 7
//! ```
//!
//! (Or run `tcp_echo_server` on a second TAP on a bridge, as `udp_echo_client`'s
//! comment shows for UDP.)

mod common;

use sockets_api::TcpStream;
use std::io::{BufRead, BufReader, Write};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 || args.len() > 5 {
        eprintln!("usage: {} TAP ADDR/PREFIX SERVER_IP [PORT]", args[0]);
        std::process::exit(2);
    }
    let runtime = common::start(&args[1], &args[2]);
    let server = format!("{}:{}", args[3], args.get(4).map_or("7", String::as_str));

    // let stream = TcpStream::connect(server)?;  -- with std::net
    let mut stream = TcpStream::connect(&runtime.net(), server.as_str())?;
    let mut echoes = BufReader::new(stream.try_clone()?);
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        writeln!(stream, "{line}")?;
        let mut echo = String::new();
        if echoes.read_line(&mut echo)? == 0 {
            eprintln!("the server closed the connection");
            break;
        }
        print!("{echo}");
    }
    Ok(())
}
