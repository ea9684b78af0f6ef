//! Calls that mirror BSD sockets over the tapstack core, and std::net-like types
//! on top of them. The [`runtime`] drives the core in real time on its own thread.
//!
//! # Opening a stack and making calls
//!
//! [`Runtime::on_tap`] starts a stack on a TAP in one line (its MAC made from
//! the address, the seed of its random choices from the operating system);
//! [`Runtime::start_on_tap`] takes a whole [`Config`], and [`Runtime::start`]
//! any device. [`prelude`] brings the calls' types and constants without
//! shadowing `std`'s `Result`.
//!
//! ```no_run
//! use sockets_api::prelude::*;
//! # fn demo() -> std::io::Result<()> {
//! let runtime = Runtime::on_tap("tap0", "10.0.0.2/24")?;
//! let net = runtime.net();
//!
//! // As in C:
//! let fd = net.socket(AF_INET, SOCK_DGRAM, 0)?;
//! net.bind(fd, std::net::SocketAddrV4::new("0.0.0.0".parse().unwrap(), 9000))?;
//! let mut buf = [0u8; 1500];
//! let (n, from) = net.recvfrom(fd, &mut buf, 0)?;
//! net.sendto(fd, &buf[..n], 0, from)?;
//! net.close(fd)?;
//!
//! // Or as with std::net:
//! let sock = UdpSocket::bind(&net, "0.0.0.0:0")?;
//! sock.send_to(b"hello", "10.0.0.1:7")?;
//!
//! // TCP, as in C ...
//! let fd = net.socket(AF_INET, SOCK_STREAM, 0)?;
//! net.connect(fd, "10.0.0.1:80".parse::<std::net::SocketAddr>().unwrap())?;
//! net.send(fd, b"GET / HTTP/1.0\r\n\r\n", 0)?;
//! let n = net.recv(fd, &mut buf, MSG_WAITALL)?;
//! net.close(fd)?;
//!
//! // ... and as with std::net.
//! use std::io::{Read, Write};
//! let mut stream = TcpStream::connect(&net, "10.0.0.1:7")?;
//! stream.write_all(b"echo me")?;
//! let listener = TcpListener::bind(&net, "0.0.0.0:8080")?;
//! let (client, peer) = listener.accept()?;
//! # Ok(()) }
//! ```
//!
//! Layers: [`FdTable`] is the sans-IO socket layer: the descriptor table, which
//! dispatches each call to the datagram or stream half over UDP and TCP, with
//! the options of [`options`] (nonblocking calls only). [`Net`] wraps it with the
//! [`Runtime`]'s thread: blocking calls sleep on a condition variable until their
//! socket changes or their timeout passes. [`UdpSocket`], [`TcpListener`] and
//! [`TcpStream`] are std::net's types over [`Net`]. [`services`] holds echo,
//! discard, chargen and a small HTTP server written with these calls, and [`nc`]
//! a netcat. [`sim`] drives two stacks with descriptor tables in virtual time, for tests.
//!
//! Files, each with one job:
//! - `fd_table.rs`: descriptors (allocate, free, look up) and dispatch of each call;
//!   `sock_type.rs`: the kinds of socket, and socket(2)'s argument checks.
//! - `options.rs`: option values and their errno rules.
//! - `dgram.rs`: the datagram half (UDP calls).
//! - `stream.rs`: the stream half (TCP calls).
//! - `ports.rs`: stream port bookkeeping (bind conflicts, ephemeral ports).
//! - `errno.rs`: errno numbers and the core's errors mapped to them.
//! - `api.rs`: [`Net`], the blocking BSD calls; `runtime.rs`: the thread that drives the core;
//!   `resident.rs`: applications stepped on that thread (the services); `eventfd.rs`: its wake-up.
//! - `numbers.rs`: how the table numbers sockets; `kernel_fds.rs`: those numbers
//!   reserved from the kernel's, and poll over both kinds of descriptor.
//! - `shrink.rs`: how the tables that grow with connections give their storage back.
//! - `udp_socket.rs`, `tcp_socket.rs`, `sock.rs`: the std::net-like types.
//! - `start.rs`: the one-line start ([`Runtime::on_tap`]) and host address parsing.

pub mod api;
pub mod async_io;
pub mod consts;
mod dgram;
pub mod epoll;
pub mod errno;
mod eventfd;
pub mod exit;
pub mod fd_table;
mod kernel_fds;
mod kernel_limit;
pub mod nc;
mod numbers;
pub mod options;
mod owners;
mod ports;
mod raw_ready;
pub mod readiness;
pub mod resident;
pub mod runtime;
mod service_loop;
pub mod services;
mod shrink;
pub mod sim;
mod sock;
mod sock_type;
mod start;
mod stream;
mod tcp_socket;
mod transition_trace;
mod udp_socket;

pub use api::{FdSet, Net, OwnedFd, PollFd};
pub use async_io::{AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket};
pub use consts::*;
pub use epoll::{Epoll, EpollEvent};
pub use errno::{Errno, Result};
pub use fd_table::{Fd, FdTable, RecvMsg, SockType};
pub use kernel_limit::KERNEL_HEADROOM;
pub use options::{Linger, OptVal};
pub use runtime::{Core, Runtime, Shared, TransitionTrace};
pub use stack::socket_table::{SocketEntry, SocketState};
pub use stack::tcp::{State as TcpState, Transition};
/// The core's configuration and MAC address type, for [`Runtime::start_on_tap`].
pub use stack::{Config, MacAddr};
pub use start::{host_config, os_seed, parse_host_cidr};
pub use stream::LingerWait;
pub use tcp_socket::{Incoming, TcpListener, TcpStream};
pub use udp_socket::UdpSocket;

/// What a socket program needs, for `use sockets_api::prelude::*`: the calls'
/// handle and types, the std::net-like types, the runtime and the C constants
/// (`AF_INET`, `SOCK_STREAM`, ...), but not [`Result`], which would shadow `std`'s.
pub mod prelude {
    pub use crate::consts::*;
    pub use crate::{Config, Errno, Fd, FdSet, MacAddr, Net, PollFd, Runtime, TcpListener, TcpStream, UdpSocket};
}

/// The README's code blocks, compiled as doc tests so that they stay right.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
