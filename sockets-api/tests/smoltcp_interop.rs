//! UDP interoperability with smoltcp (an independent implementation, used only as a
//! test peer), in virtual time over an in-memory wire, both directions: ARP, the
//! UDP checksum each side computes and the other verifies, ports, and ICMP port
//! unreachable from smoltcp reported to our connected socket as ECONNREFUSED.
//!
//! smoltcp's default reassembly buffer is 1500 bytes, so the datagrams here fit one
//! frame; fragmentation is covered between two tapstack stacks.

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::udp;
use smoltcp::time::Instant as SInstant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, IpEndpoint};
use sockets_api::sim::Host;
use sockets_api::*;
use stack::{Config, Duration, Instant, MacAddr};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

const SMOL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SMOL_PORT: u16 = 5000;

mod common;
use common::smoltcp_frames::Frames;

/// smoltcp at 10.0.0.1 with a UDP socket on port 5000, and tapstack at 10.0.0.2.
struct Lab {
    us: Host,
    iface: Interface,
    dev: Frames,
    sockets: SocketSet<'static>,
    smol: SocketHandle,
    now: Instant,
}

impl Lab {
    fn new() -> Lab {
        let mut us = Host::new(Config { seed: 5, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), OUR_IP, 24) });
        let now = Instant::from_secs(1);
        us.stack.start(now);
        let mut dev = Frames::default();
        let mut cfg = IfaceConfig::new(EthernetAddress([2, 0, 0, 0, 0, 1]).into());
        cfg.random_seed = 7;
        let mut iface = Interface::new(cfg, &mut dev, smol_time(now));
        iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::from(SMOL_IP), 24)).unwrap());
        let buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 16384]);
        let mut sock = udp::Socket::new(buf(), buf());
        sock.bind(SMOL_PORT).unwrap();
        let mut sockets = SocketSet::new(vec![]);
        let smol = sockets.add(sock);
        Lab { us, iface, dev, sockets, smol, now }
    }

    /// Polls smoltcp and carries frames both ways, 10 ms of virtual time per round,
    /// until `done` holds (at most 200 rounds).
    fn run_until(&mut self, mut done: impl FnMut(&mut Lab) -> bool) {
        for _ in 0..200 {
            self.iface.poll(smol_time(self.now), &mut self.dev, &mut self.sockets);
            for f in self.dev.tx.drain(..) {
                self.us.stack.receive(self.now, &f);
            }
            if self.us.stack.poll_at().is_some_and(|t| t <= self.now) {
                self.us.stack.poll(self.now);
            }
            let rx = &mut self.dev.rx;
            self.us.stack.transmit(|f| rx.push_back(f.to_vec()));
            if done(self) {
                return;
            }
            self.now += Duration::from_millis(10);
        }
        panic!("condition not met after 2 s of virtual time");
    }

    fn smol(&mut self) -> &mut udp::Socket<'static> {
        self.sockets.get_mut::<udp::Socket>(self.smol)
    }
}

fn smol_time(t: Instant) -> SInstant {
    SInstant::from_micros(t.as_micros() as i64)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn smoltcp_sends_to_a_tapstack_socket_and_gets_replies() {
    let mut lab = Lab::new();
    let us = &mut lab.us;
    let fd = us.sockets.socket(&mut us.stack, AF_INET, SOCK_DGRAM, 0).unwrap();
    us.sockets.bind(&mut us.stack, fd, sa("0.0.0.0:9000")).unwrap();
    let to = IpEndpoint::new(IpAddress::from(OUR_IP), 9000);
    let sizes = [0usize, 1, 7, 512, 1472];
    for &n in &sizes {
        let data: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
        lab.smol().send_slice(&data, to).unwrap();
    }
    let mut got = Vec::new();
    lab.run_until(|lab| {
        let Host { stack, sockets } = &mut lab.us;
        let mut buf = [0u8; 2000];
        while let Ok((n, from)) = sockets.recvfrom(stack, lab.now, fd, &mut buf, 0) {
            got.push((buf[..n].to_vec(), from));
        }
        got.len() == sizes.len()
    });
    for ((data, from), &n) in got.iter().zip(&sizes) {
        assert_eq!(data.len(), n);
        assert!(data.iter().enumerate().all(|(i, &b)| b == (i % 253) as u8));
        assert_eq!(*from, SocketAddrV4::new(SMOL_IP, SMOL_PORT));
    }
    assert_eq!(lab.us.stack.counters().drops.total(), 0, "{}", lab.us.stack.counters().report());

    // Replies from tapstack reach smoltcp with the right source.
    let us = &mut lab.us;
    us.sockets.sendto(&mut us.stack, lab.now, fd, b"reply", 0, Some(sa("10.0.0.1:5000"))).unwrap();
    let mut reply = None;
    lab.run_until(|lab| {
        if let Ok((data, meta)) = lab.smol().recv() {
            reply = Some((data.to_vec(), meta.endpoint));
        }
        reply.is_some()
    });
    let (data, from) = reply.unwrap();
    assert_eq!(data, b"reply");
    assert_eq!(from, IpEndpoint::new(IpAddress::from(OUR_IP), 9000));
}

#[test]
fn tapstack_sends_to_smoltcp_and_hears_the_echo() {
    let mut lab = Lab::new();
    let us = &mut lab.us;
    let fd = us.sockets.socket(&mut us.stack, AF_INET, SOCK_DGRAM, 0).unwrap();
    us.sockets.connect(&mut us.stack, lab.now, fd, sa("10.0.0.1:5000")).unwrap();
    let port = us.sockets.getsockname(&mut us.stack, fd).unwrap().port();
    for i in 0..10u8 {
        let us = &mut lab.us;
        us.sockets.send(&mut us.stack, lab.now, fd, &[i; 100], 0).unwrap();
    }
    // smoltcp echoes what it receives; tapstack collects the echoes.
    let mut heard = Vec::new();
    let mut echoed = Vec::new();
    lab.run_until(|lab| {
        while let Ok((data, meta)) = lab.smol().recv() {
            let (data, ep) = (data.to_vec(), meta.endpoint);
            heard.push((data.clone(), ep));
            lab.smol().send_slice(&data, ep).unwrap();
        }
        let Host { stack, sockets } = &mut lab.us;
        let mut buf = [0u8; 200];
        while let Ok(n) = sockets.recv(stack, lab.now, fd, &mut buf, 0) {
            echoed.push(buf[..n].to_vec());
        }
        echoed.len() == 10
    });
    for (i, (data, ep)) in heard.iter().enumerate() {
        assert_eq!(data, &vec![i as u8; 100]);
        assert_eq!(*ep, IpEndpoint::new(IpAddress::from(OUR_IP), port));
    }
    for (i, data) in echoed.iter().enumerate() {
        assert_eq!(data, &vec![i as u8; 100]);
    }
}

#[test]
fn smoltcp_port_unreachable_is_econnrefused() {
    let mut lab = Lab::new();
    let us = &mut lab.us;
    let fd = us.sockets.socket(&mut us.stack, AF_INET, SOCK_DGRAM, 0).unwrap();
    us.sockets.connect(&mut us.stack, lab.now, fd, sa("10.0.0.1:5999")).unwrap();
    us.sockets.send(&mut us.stack, lab.now, fd, b"anyone?", 0).unwrap();
    lab.run_until(|lab| lab.us.stack.counters().icmp.rx_dest_unreachable == 1);
    let us = &mut lab.us;
    assert_eq!(us.sockets.recv(&mut us.stack, lab.now, fd, &mut [0; 8], 0), Err(Errno::ECONNREFUSED));
    assert_eq!(us.sockets.recv(&mut us.stack, lab.now, fd, &mut [0; 8], 0), Err(Errno::EAGAIN));
}
