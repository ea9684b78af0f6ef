//! TCP interoperability with smoltcp 0.14 (an independent implementation, used
//! only as a test peer), in virtual time over an in-memory wire, both ways: our
//! stream socket as the client of a smoltcp server, and a smoltcp client of our
//! listener. Each moves 256 KiB each way (the server echoes), then closes in
//! order; both sides must end in their closed states without a reset, and our
//! stack must drop nothing.

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration as SDuration, Instant as SInstant};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, IpEndpoint};
use sockets_api::sim::Host;
use sockets_api::*;
use stack::tcp::State;
use stack::{Config, Duration, Instant, MacAddr};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

const SMOL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const TRANSFER: usize = 256 * 1024;

mod common;
use common::smoltcp_frames::Frames;

/// smoltcp at 10.0.0.1 with one TCP socket, tapstack at 10.0.0.2.
struct Lab {
    us: Host,
    iface: Interface,
    dev: Frames,
    sockets: SocketSet<'static>,
    smol: SocketHandle,
    now: Instant,
    /// Frames that carried RST, each way (smoltcp to us, us to smoltcp).
    resets: (u32, u32),
}

fn smol_time(t: Instant) -> SInstant {
    SInstant::from_micros(t.as_micros() as i64)
}

/// Whether an Ethernet frame carries a TCP segment with RST set.
fn is_rst(f: &[u8]) -> bool {
    f.len() >= 14 + 20 + 14 && f[12..14] == [8, 0] && f[23] == 6 && {
        let ihl = (f[14] & 0xf) as usize * 4;
        f.get(14 + ihl + 13).is_some_and(|flags| flags & 0x04 != 0)
    }
}

impl Lab {
    fn new() -> Lab {
        let mut us = Host::new(Config { seed: 9, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), OUR_IP, 24) });
        let now = Instant::from_secs(1);
        us.stack.start(now);
        let mut dev = Frames::default();
        let mut cfg = IfaceConfig::new(EthernetAddress([2, 0, 0, 0, 0, 1]).into());
        cfg.random_seed = 11;
        let mut iface = Interface::new(cfg, &mut dev, smol_time(now));
        iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::from(SMOL_IP), 24)).unwrap());
        let mut sock = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 65535]), tcp::SocketBuffer::new(vec![0; 65535]));
        sock.set_timeout(Some(SDuration::from_secs(60)));
        let mut sockets = SocketSet::new(vec![]);
        let smol = sockets.add(sock);
        Lab { us, iface, dev, sockets, smol, now, resets: (0, 0) }
    }

    fn smol(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(self.smol)
    }

    /// One millisecond of virtual time: smoltcp polls, frames cross both ways, our
    /// timers run, then `app` acts on both sides.
    fn step(&mut self) {
        self.iface.poll(smol_time(self.now), &mut self.dev, &mut self.sockets);
        for f in self.dev.tx.drain(..) {
            self.resets.0 += is_rst(&f) as u32;
            self.us.stack.receive(self.now, &f);
        }
        if self.us.stack.poll_at().is_some_and(|t| t <= self.now) {
            self.us.stack.poll(self.now);
        }
        let (rx, resets) = (&mut self.dev.rx, &mut self.resets.1);
        self.us.stack.transmit(|f| {
            *resets += is_rst(f) as u32;
            rx.push_back(f.to_vec());
        });
        self.now += Duration::from_millis(1);
    }

    /// Steps until `done` holds, at most `limit` of virtual time.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Lab) -> bool) {
        let end = self.now + limit;
        while !done(self) {
            assert!(self.now < end, "not done after {limit:?} of virtual time");
            self.step();
        }
    }

    fn our_states(&mut self) -> Vec<State> {
        self.us.stack.tcp().0.sockets().map(|(_, i)| i.state).collect()
    }
}

fn data() -> Vec<u8> {
    (0..TRANSFER).map(|i| (i % 251) as u8 ^ (i >> 11) as u8).collect()
}

/// smoltcp's side of an echo: what it can read it sends back.
fn smol_echo(s: &mut tcp::Socket<'static>, pending: &mut VecDeque<u8>, received: &mut usize) {
    let mut buf = [0u8; 8192];
    while s.can_recv() && pending.len() < 65536 {
        let n = s.recv_slice(&mut buf).unwrap();
        *received += n;
        pending.extend(&buf[..n]);
    }
    while s.can_send() && !pending.is_empty() {
        let (front, _) = pending.as_slices();
        let n = s.send_slice(front).unwrap();
        pending.drain(..n);
    }
}

#[test]
fn our_client_with_a_smoltcp_server_transfers_and_closes_cleanly() {
    let mut lab = Lab::new();
    lab.smol().listen(5000).unwrap();
    let us = &mut lab.us;
    let fd = us.sockets.socket(&mut us.stack, AF_INET, SOCK_STREAM, 0).unwrap();
    let to: SocketAddr = SocketAddrV4::new(SMOL_IP, 5000).into();
    assert_eq!(us.sockets.connect(&mut us.stack, lab.now, fd, to), Err(Errno::EINPROGRESS));
    lab.run_until(Duration::from_secs(5), |lab| {
        let ours = {
            let Host { stack, sockets } = &mut lab.us;
            sockets.connect_status(stack, lab.now, fd).is_ok()
        };
        ours && lab.smol().state() == tcp::State::Established
    });

    let out = data();
    let (mut sent, mut back) = (0, Vec::new());
    let (mut pending, mut smol_received) = (VecDeque::new(), 0);
    let mut buf = vec![0u8; 16384];
    lab.run_until(Duration::from_secs(60), |lab| {
        let now = lab.now;
        smol_echo(lab.smol(), &mut pending, &mut smol_received);
        let Host { stack, sockets } = &mut lab.us;
        if sent < out.len() {
            match sockets.send(stack, now, fd, &out[sent..], MSG_DONTWAIT) {
                Ok(n) => sent += n,
                Err(e) => assert_eq!(e, Errno::EAGAIN),
            }
        }
        loop {
            match sockets.recv(stack, now, fd, &mut buf, MSG_DONTWAIT) {
                Ok(n) if n > 0 => back.extend_from_slice(&buf[..n]),
                Ok(_) => panic!("EOF before the echo was complete"),
                Err(e) => {
                    assert_eq!(e, Errno::EAGAIN);
                    break;
                }
            }
        }
        back.len() == out.len()
    });
    assert_eq!(smol_received, TRANSFER);
    assert!(back == out, "the echo differs");

    // We close our side first; smoltcp sees the FIN, closes too; we read EOF.
    let us = &mut lab.us;
    us.sockets.shutdown(&mut us.stack, lab.now, fd, SHUT_WR).unwrap();
    lab.run_until(Duration::from_secs(5), |lab| !lab.smol().may_recv());
    lab.smol().close();
    lab.run_until(Duration::from_secs(5), |lab| {
        let Host { stack, sockets } = &mut lab.us;
        sockets.recv(stack, lab.now, fd, &mut [0u8; 16], 0) == Ok(0)
    });
    let us = &mut lab.us;
    us.sockets.close(&mut us.stack, lab.now, fd).unwrap();
    lab.run_until(Duration::from_secs(5), |lab| lab.smol().state() == tcp::State::Closed);
    // We sent the first FIN, so we wait in TIME-WAIT (2 MSL, 60 s), then are gone.
    assert_eq!(lab.our_states(), [State::TimeWait]);
    lab.run_until(Duration::from_secs(61), |lab| lab.our_states().is_empty());
    assert_eq!(lab.resets, (0, 0), "no reset either way");
    let c = lab.us.stack.counters();
    assert_eq!(c.drops.total(), 0, "{}", c.report());
}

#[test]
fn a_smoltcp_client_with_our_server_transfers_and_closes_cleanly() {
    let mut lab = Lab::new();
    let us = &mut lab.us;
    let lfd = us.sockets.socket(&mut us.stack, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).unwrap();
    us.sockets.bind(&mut us.stack, lfd, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7).into()).unwrap();
    us.sockets.listen(&mut us.stack, lfd, 4).unwrap();
    let cx = lab.iface.context();
    let s = lab.sockets.get_mut::<tcp::Socket>(lab.smol);
    s.connect(cx, IpEndpoint::new(IpAddress::from(OUR_IP), 7), 49500).unwrap();
    let mut conn = None;
    lab.run_until(Duration::from_secs(5), |lab| {
        let Host { stack, sockets } = &mut lab.us;
        if let Ok((fd, peer)) = sockets.accept(stack, lab.now, lfd) {
            assert_eq!(peer, SocketAddrV4::new(SMOL_IP, 49500));
            conn = Some(fd);
        }
        conn.is_some() && lab.smol().state() == tcp::State::Established
    });
    let fd = conn.unwrap();

    // smoltcp sends 256 KiB; our server echoes it as an application would, with
    // nonblocking reads and (possibly partial) sends.
    let out = data();
    let (mut sent, mut back) = (0, Vec::new());
    let mut pending: VecDeque<u8> = VecDeque::new();
    let mut buf = vec![0u8; 16384];
    lab.run_until(Duration::from_secs(60), |lab| {
        let now = lab.now;
        let s = lab.smol();
        if sent < out.len() && s.can_send() {
            sent += s.send_slice(&out[sent..]).unwrap();
        }
        let mut sbuf = [0u8; 8192];
        while s.can_recv() {
            let n = s.recv_slice(&mut sbuf).unwrap();
            back.extend_from_slice(&sbuf[..n]);
        }
        let Host { stack, sockets } = &mut lab.us;
        while pending.len() < 65536 {
            match sockets.recv(stack, now, fd, &mut buf, 0) {
                Ok(n) if n > 0 => pending.extend(&buf[..n]),
                Ok(_) => panic!("EOF too early"),
                Err(e) => {
                    assert_eq!(e, Errno::EAGAIN);
                    break;
                }
            }
        }
        while !pending.is_empty() {
            let (front, _) = pending.as_slices();
            match sockets.send(stack, now, fd, front, MSG_DONTWAIT) {
                Ok(n) => drop(pending.drain(..n)),
                Err(e) => {
                    assert_eq!(e, Errno::EAGAIN);
                    break;
                }
            }
        }
        back.len() == out.len()
    });
    assert!(back == out, "the echo differs");

    // smoltcp closes first; our server reads EOF and closes; smoltcp's side ends in
    // TIME-WAIT, ours is gone (LAST-ACK, then released).
    lab.smol().close();
    lab.run_until(Duration::from_secs(5), |lab| {
        let Host { stack, sockets } = &mut lab.us;
        sockets.recv(stack, lab.now, fd, &mut [0u8; 16], 0) == Ok(0)
    });
    let us = &mut lab.us;
    assert_eq!(us.sockets.revents(&mut us.stack, fd, POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
    us.sockets.close(&mut us.stack, lab.now, fd).unwrap();
    lab.run_until(Duration::from_secs(5), |lab| lab.our_states() == [State::Listen]);
    assert_eq!(lab.smol().state(), tcp::State::TimeWait);
    lab.run_until(Duration::from_secs(30), |lab| lab.smol().state() == tcp::State::Closed);
    let us = &mut lab.us;
    us.sockets.close(&mut us.stack, lab.now, lfd).unwrap();
    assert!(lab.our_states().is_empty());
    assert_eq!(lab.resets, (0, 0), "no reset either way");
    let c = lab.us.stack.counters();
    assert_eq!(c.drops.total(), 0, "{}", c.report());
}
