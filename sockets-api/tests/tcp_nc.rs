//! nc over TCP in real time, over two stacks on an in-memory wire: the client
//! against a server, the listener against a client, and two nc's against each
//! other, each copying its input out, shutting its side down at the input's end
//! and finishing when the peer closes. Every wait is bounded.

use sockets_api::nc::{NcOptions, TcpNc};
use sockets_api::*;
use stack::device::wire::Wire;
use stack::{Config, MacAddr, Stack};
use std::io::{self, Cursor, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4};
use std::time::Duration;

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const NET: Duration = Duration::from_secs(30);

fn pair() -> (Runtime, Runtime) {
    let (wa, wb) = Wire::pair();
    let ca = Config { seed: 41, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), A_IP, 24) };
    let cb = Config { seed: 42, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), B_IP, 24) };
    (Runtime::start(Stack::new(ca).unwrap(), wa).unwrap(), Runtime::start(Stack::new(cb).unwrap(), wb).unwrap())
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn nc_client_sends_its_input_shuts_down_and_prints_the_answer() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let listener = TcpListener::bind(&b, "0.0.0.0:5000").unwrap();
    // The server reads to EOF (which only comes if nc shuts its side down at the
    // end of its input), then answers and closes.
    let server = std::thread::spawn(move || -> io::Result<Vec<u8>> {
        let (mut s, _) = listener.accept()?;
        s.set_read_timeout(Some(NET))?;
        let mut got = Vec::new();
        s.read_to_end(&mut got)?;
        s.write_all(format!("got {} bytes", got.len()).as_bytes())?;
        Ok(got)
    });
    let input = pattern(300_000, 1);
    let opts = NcOptions { remote: Some(SocketAddrV4::new(B_IP, 5000)), ..Default::default() };
    let nc = TcpNc::open(&a, opts).unwrap();
    assert_eq!(*nc.local_addr().unwrap().ip(), A_IP);
    let mut out = Vec::new();
    let stats = nc.run(Cursor::new(input.clone()), &mut out).unwrap();
    assert_eq!(out, b"got 300000 bytes");
    assert_eq!(stats, nc::NcStats { sent: 300_000, received: 16 });
    assert!(server.join().unwrap().unwrap() == input);
}

#[test]
fn nc_listen_accepts_once_and_talks_to_the_client() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let opts = NcOptions { listen: true, local: Some("0.0.0.0:6000".parse().unwrap()), ..Default::default() };
    let nc = TcpNc::open(&b, opts).unwrap();
    assert_eq!(nc.local_addr().unwrap().port(), 6000);
    let session = std::thread::spawn(move || {
        let mut out = Vec::new();
        let stats = nc.run(Cursor::new(b"from the listener".to_vec()), &mut out);
        (stats, out)
    });
    let mut c = TcpStream::connect(&a, "10.0.0.2:6000").unwrap();
    c.set_read_timeout(Some(NET)).unwrap();
    c.write_all(b"from the client").unwrap();
    // nc's input ends, so it shuts its side down: we read to EOF before closing ours.
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"from the listener");
    c.shutdown(Shutdown::Write).unwrap();
    let (stats, out) = session.join().unwrap();
    assert_eq!(stats.unwrap(), nc::NcStats { sent: 17, received: 15 });
    assert_eq!(out, b"from the client");
    // It accepted once: nobody listens any more.
    let e = TcpStream::connect(&a, "10.0.0.2:6000").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn two_nc_talk_both_ways_at_once() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let listen = TcpNc::open(&b, NcOptions { listen: true, ..Default::default() }).unwrap();
    let port = listen.local_addr().unwrap().port();
    assert!(port >= 49152, "an ephemeral port without -p");
    let (to_client, to_server) = (pattern(200_000, 7), pattern(150_000, 9));
    let expect = to_client.clone();
    let server = std::thread::spawn(move || {
        let mut out = Vec::new();
        listen.run(Cursor::new(expect), &mut out).map(|_| out)
    });
    let opts = NcOptions { remote: Some(SocketAddrV4::new(B_IP, port)), ..Default::default() };
    let mut out = Vec::new();
    TcpNc::open(&a, opts).unwrap().run(Cursor::new(to_server.clone()), &mut out).unwrap();
    assert!(out == to_client);
    assert!(server.join().unwrap().unwrap() == to_server);
}

#[test]
fn nc_reports_a_refused_connection_and_a_reset() {
    let (ra, rb) = pair();
    let (a, b) = (ra.net(), rb.net());
    let opts = NcOptions { remote: Some(SocketAddrV4::new(B_IP, 5000)), ..Default::default() };
    let e = TcpNc::open(&a, opts.clone()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    let e = TcpNc::open(&a, NcOptions::default()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::EDESTADDRREQ.0));
    // The server resets the connection: run ends with ConnectionReset.
    let listener = TcpListener::bind(&b, "0.0.0.0:5000").unwrap();
    let nc = TcpNc::open(&a, opts).unwrap();
    let (s, _) = listener.accept().unwrap();
    s.set_linger(Some(Duration::ZERO)).unwrap();
    drop(s);
    // An input that never ends: the session ends on the reset all the same.
    struct Endless;
    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(Duration::from_millis(1));
            buf[0] = b'.';
            Ok(1)
        }
    }
    let e = nc.run(Endless, io::sink()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
}
