//! One program, one stack, client and server both: the lecture habit of running
//! them on one host, over the stack's loopback (its own address and 127/8), with
//! the public std::net-like types on a running runtime. The stack sits on one
//! end of an in-memory wire whose other end nobody reads, so every frame that
//! reached the "link" waits there to be counted: only the start's announcement
//! may. Every wait is bounded.

use sockets_api::*;
use stack::device::wire::{Wire, WireEnd};
use stack::{Config, MacAddr, Stack};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::time::Duration;

const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// Safety net on blocking calls, so that a lost wake-up fails a test instead of hanging it.
const NET: Duration = Duration::from_secs(30);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A running stack at 10.0.0.1/24, and the far end of its wire.
fn host() -> (Runtime, WireEnd) {
    let (near, far) = Wire::pair();
    let c = Config { seed: 31, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), ME, 24) };
    (Runtime::start(Stack::new(c).unwrap(), near).unwrap(), far)
}

/// Serves one echo connection per accept until the listener's socket goes.
fn echo_server(listener: TcpListener, connections: usize) -> std::thread::JoinHandle<Vec<SocketAddr>> {
    std::thread::spawn(move || {
        let mut peers = Vec::new();
        for _ in 0..connections {
            let (mut s, peer) = listener.accept().expect("accept");
            s.set_read_timeout(Some(NET)).unwrap();
            let mut buf = vec![0u8; 65536];
            loop {
                let n = s.read(&mut buf).expect("server read");
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).expect("server write");
            }
            peers.push(peer);
        }
        peers
    })
}

/// Writes `data` on a thread, reads the echo to the end, checks it.
fn echo_through(mut c: TcpStream, data: Vec<u8>) {
    c.set_read_timeout(Some(NET)).unwrap();
    let mut w = c.try_clone().unwrap();
    let len = data.len();
    let writer = std::thread::spawn(move || {
        w.write_all(&data).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
        data
    });
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    let data = writer.join().unwrap();
    assert_eq!(got.len(), len);
    assert!(got == data, "the echo differs");
}

#[test]
fn a_tcp_listener_and_stream_in_one_program_talk_over_localhost_and_our_own_address() {
    let (rt, far) = host();
    let net = rt.net();
    let listener = TcpListener::bind(&net, "0.0.0.0:7").unwrap();
    let server = echo_server(listener, 2);
    let mut locals = Vec::new();
    for (dst, from) in [("127.0.0.1:7", Ipv4Addr::LOCALHOST), ("10.0.0.1:7", ME)] {
        let c = TcpStream::connect(&net, dst).expect(dst);
        assert_eq!(c.peer_addr().unwrap(), sa(dst));
        let local = c.local_addr().unwrap();
        assert_eq!(local.ip(), std::net::IpAddr::V4(from), "{dst}");
        // ss shows both ends of the connection.
        let table = net.socket_table();
        let ends = table.iter().filter(|e| e.state == SocketState::Tcp(stack::tcp::State::Established));
        let ends: Vec<_> = ends.map(|e| (SocketAddr::V4(e.local), e.remote.map(SocketAddr::V4))).collect();
        assert!(ends.contains(&(local, Some(sa(dst)))), "{ends:?}");
        assert!(ends.contains(&(sa(dst), Some(local))), "{ends:?}");
        echo_through(c, (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect());
        locals.push(local);
    }
    assert_eq!(server.join().unwrap(), locals, "the server saw the clients as they are");
    let c = rt.counters();
    assert_eq!(far.stats().queued, 1, "only the announcement reached the link");
    assert_eq!(c.link.tx_frames, 1);
    assert!(c.loopback.frames > 100, "{}", c.report());
    assert_eq!(c.loopback.dropped, 0, "{}", c.report());
}

#[test]
fn a_listener_bound_to_localhost_accepts_only_there() {
    let (rt, far) = host();
    let net = rt.net();
    let listener = TcpListener::bind(&net, "127.0.0.1:8080").unwrap();
    assert_eq!(listener.local_addr().unwrap(), sa("127.0.0.1:8080"));
    let server = echo_server(listener, 1);
    let refused = TcpStream::connect(&net, "10.0.0.1:8080").unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");
    echo_through(TcpStream::connect(&net, "127.0.0.1:8080").unwrap(), b"lecture".to_vec());
    assert_eq!(server.join().unwrap().len(), 1);
    // A socket bound to 127/8 cannot reach another host (Linux: EINVAL).
    let fd = net.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    net.bind(fd, sa("127.0.0.1:0")).unwrap();
    assert_eq!(net.connect(fd, sa("10.0.0.2:80")), Err(Errno::EINVAL));
    assert_eq!(far.stats().queued, 1);
}

#[test]
fn udp_sockets_in_one_program_talk_over_localhost_and_our_own_address() {
    let (rt, far) = host();
    let net = rt.net();
    let server = UdpSocket::bind(&net, "0.0.0.0:5353").unwrap();
    server.set_read_timeout(Some(NET)).unwrap();
    for (dst, from) in [("127.0.0.1:5353", "127.0.0.1"), ("10.0.0.1:5353", "10.0.0.1"), ("127.0.0.9:5353", "127.0.0.1")]
    {
        let client = UdpSocket::bind(&net, "0.0.0.0:0").unwrap();
        client.set_read_timeout(Some(NET)).unwrap();
        assert_eq!(client.send_to(b"query", dst).unwrap(), 5);
        let mut buf = [0u8; 64];
        let (n, peer) = server.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], peer.ip().to_string()), (&b"query"[..], from.to_string()));
        server.send_to(b"answer", peer).unwrap();
        // From the address the route to the client gives, as Linux's unbound
        // socket answers (127.0.0.9's answer comes from 127.0.0.1).
        let (n, back) = client.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], back), (&b"answer"[..], sa(&format!("{from}:5353"))));
    }
    // Connected, to a port nobody has: refused, as the kernel's loopback says.
    let lonely = UdpSocket::bind(&net, "0.0.0.0:0").unwrap();
    lonely.set_read_timeout(Some(NET)).unwrap();
    lonely.connect("127.0.0.1:9").unwrap();
    lonely.send(b"anyone?").unwrap();
    let mut buf = [0u8; 16];
    let err = lonely.recv(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    assert_eq!(far.stats().queued, 1, "only the announcement reached the link");
}
