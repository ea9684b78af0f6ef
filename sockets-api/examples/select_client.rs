//! The select(2) client of a networking course (Stevens' `str_cli` with
//! select), line for line the C program: one thread waits on stdin and the
//! socket at once, sends what it reads and prints what the server sends as it
//! comes, whichever is first. At the end of stdin it shuts down its sending
//! side (not close: replies may still be on their way) and prints until the
//! server closes. stdin is the kernel's descriptor and the socket tapstack's:
//! `Net::select` takes both in one set.
//!
//! Usage: select_client TAP ADDR/PREFIX SERVER_IP [PORT]   (port 7 if not given)
//!
//! Inside a network namespace of your own (as root), against the kernel's nc:
//! lines typed into the client show up at nc, and lines typed into nc show up
//! in the client at once, even while it waits for input.
//!
//! ```sh
//! ip netns add sellab
//! ip netns exec sellab ip tuntap add dev tap0 mode tap
//! ip netns exec sellab ip addr add 10.0.0.1/24 dev tap0
//! ip netns exec sellab ip link set tap0 up
//! ip netns exec sellab nc -l 10.0.0.1 7007          # in one shell
//! ip netns exec sellab cargo run -p sockets-api --example select_client -- tap0 10.0.0.2/24 10.0.0.1 7007
//! ```

mod common;

use sockets_api::prelude::*;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};

const STDIN_FILENO: Fd = 0;

fn die(call: &str, e: Errno) -> ! {
    eprintln!("{call}: {e}");
    std::process::exit(1);
}

/// read(2) on the kernel's stdin, unbuffered (as select needs: a buffer would
/// hide input that select no longer sees).
fn read_stdin(buf: &mut [u8]) -> isize {
    // SAFETY: reads into a valid buffer of its length.
    unsafe { libc::read(STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 || args.len() > 5 {
        eprintln!("usage: {} TAP ADDR/PREFIX SERVER_IP [PORT]", args[0]);
        std::process::exit(2);
    }
    let ip: Ipv4Addr = args[3].parse().unwrap_or_else(|_| die("address", Errno::EINVAL));
    let port: u16 = args.get(4).map_or(7, |p| p.parse().unwrap_or_else(|_| die("port", Errno::EINVAL)));
    let runtime = common::start(&args[1], &args[2]);
    let net = runtime.net();

    let fd = net.socket(AF_INET, SOCK_STREAM, 0).unwrap_or_else(|e| die("socket", e));
    net.connect(fd, SocketAddrV4::new(ip, port)).unwrap_or_else(|e| die("connect", e));

    let mut buf = [0u8; 4096];
    let mut stdineof = false;
    let mut rset = FdSet::new(); // fd_set rset; FD_ZERO(&rset);
    loop {
        if !stdineof {
            rset.set(STDIN_FILENO); // FD_SET(fileno(stdin), &rset);
        }
        rset.set(fd);
        let maxfdp1 = fd.max(STDIN_FILENO) + 1;
        // select(maxfdp1, &rset, NULL, NULL, NULL);
        net.select(maxfdp1, Some(&mut rset), None, None, None).unwrap_or_else(|e| die("select", e));

        if rset.is_set(fd) {
            // The socket is readable.
            match net.recv(fd, &mut buf, 0).unwrap_or_else(|e| die("read", e)) {
                0 if stdineof => break, // a normal end
                0 => {
                    eprintln!("the server closed the connection early");
                    std::process::exit(1);
                }
                n => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&buf[..n]).and_then(|_| out.flush()).unwrap_or_else(|_| die("write", Errno::EIO));
                }
            }
        }

        if rset.is_set(STDIN_FILENO) {
            // Input is readable.
            match read_stdin(&mut buf) {
                n if n < 0 => die("read stdin", Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(5))),
                0 => {
                    stdineof = true;
                    net.shutdown(fd, SHUT_WR).unwrap_or_else(|e| die("shutdown", e));
                    rset.clear(STDIN_FILENO);
                }
                n => {
                    net.send(fd, &buf[..n as usize], 0).unwrap_or_else(|e| die("write", e));
                }
            }
        }
    }
    let _ = net.close(fd);
}
