//! The stack talking to itself, in virtual time through the driver: TCP and UDP
//! to its own address and to 127/8, ICMP echo, the bounds, and that nothing of
//! it reaches the device (RFC 1122 section 3.2.1.3 (g)) while a recorder sees it.

use crate::device::Device;
use crate::driver::Driver;
use crate::socket_table::SocketState;
use crate::tcp::{ConnId, State, TcpError};
use crate::time::{Duration, Instant};
use crate::udp::UdpError;
use crate::{Config, DropReason, MacAddr, Stack};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const T0: Instant = Instant::ZERO;

/// The device under the stack: remembers what was sent on the link and what
/// the loopback showed it.
#[derive(Default)]
struct Probe {
    sent: Vec<Vec<u8>>,
    looped: Vec<Vec<u8>>,
}

impl Device for Probe {
    fn recv(&mut self, _now: Instant, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }
    fn send(&mut self, _now: Instant, frame: &[u8]) -> io::Result<()> {
        self.sent.push(frame.to_vec());
        Ok(())
    }
    fn loopback(&mut self, _now: Instant, frame: &[u8]) -> io::Result<()> {
        self.looped.push(frame.to_vec());
        Ok(())
    }
}

/// A started stack (its gratuitous ARP taken off the probe) and its clock.
struct Host {
    stack: Stack,
    dev: Probe,
    now: Instant,
}

impl Host {
    fn new(f: impl FnOnce(&mut Config)) -> Host {
        let mut c = Config { seed: 7, ..Config::new(MAC, ME, 24) };
        f(&mut c);
        let mut stack = Stack::new(c).unwrap();
        let mut dev = Probe::default();
        Driver::start(&mut stack, &mut dev, &mut (), T0).unwrap();
        assert_eq!(dev.sent.len(), 1, "the announcement");
        dev.sent.clear();
        Host { stack, dev, now: T0 }
    }

    /// Runs the driver's rounds due by now (the loopback's among them), then
    /// moves the clock on by `d` running every timer on the way.
    fn run(&mut self, d: Duration) {
        Driver::run_timers(&mut self.stack, &mut self.dev, &mut (), self.now).unwrap();
        self.now += d;
        Driver::run_timers(&mut self.stack, &mut self.dev, &mut (), self.now).unwrap();
    }

    fn connect(&mut self, remote: SocketAddrV4) -> Result<ConnId, TcpError> {
        let (tcp, net) = self.stack.tcp();
        tcp.connect(self.now, net, None, remote)
    }

    fn send(&mut self, id: ConnId, data: &[u8]) {
        let (tcp, net) = self.stack.tcp();
        assert_eq!(tcp.send(self.now, net, id, data), Ok(data.len()));
    }

    fn recv(&mut self, id: ConnId) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let (tcp, net) = self.stack.tcp();
        match tcp.recv(self.now, net, id, &mut buf, false) {
            Ok(n) => buf[..n].to_vec(),
            Err(e) => panic!("recv: {e:?}"),
        }
    }

    fn close(&mut self, id: ConnId) {
        let (tcp, net) = self.stack.tcp();
        tcp.close(self.now, net, id).unwrap();
    }
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

/// The IPv4 source and destination of a looped frame, after checking that its
/// Ethernet header goes from our MAC to our MAC.
fn ips(frame: &[u8]) -> (Ipv4Addr, Ipv4Addr) {
    assert_eq!(&frame[0..6], &MAC.0, "to our MAC");
    assert_eq!(&frame[6..12], &MAC.0, "from our MAC");
    assert_eq!(&frame[12..14], &[0x08, 0x00]);
    let ip = &frame[14..];
    (Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]), Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]))
}

/// Connect, accept, echo both ways, close from both ends, through TIME-WAIT:
/// to `dst` from the address the route gives (`src`).
fn tcp_round_trip(dst: Ipv4Addr, src: Ipv4Addr) {
    let mut h = Host::new(|_| {});
    let lid = {
        let (tcp, net) = h.stack.tcp();
        tcp.listen(net, sa(Ipv4Addr::UNSPECIFIED, 7), 8).unwrap()
    };
    let c = h.connect(sa(dst, 7)).unwrap();
    assert_eq!(h.stack.poll_at(), Some(h.now), "the SYN waits round the loopback: due now");
    h.run(Duration::ZERO);
    assert_eq!(h.stack.tcp().0.state(c), Ok(State::Established));
    let (s, peer) = h.stack.tcp().0.accept(lid).unwrap().expect("a connection to accept");
    let client = h.stack.tcp().0.local_addr(c).unwrap();
    assert_eq!(peer, client);
    assert_eq!(*client.ip(), src);
    assert_eq!(h.stack.tcp().0.local_addr(s).unwrap(), sa(dst, 7));
    // ss shows both ends, each the other's mirror.
    let table = h.stack.socket_table(h.now);
    let est: Vec<_> = table.iter().filter(|e| e.state == SocketState::Tcp(State::Established)).collect();
    assert_eq!(est.len(), 2, "{table:?}");
    assert!(est.iter().any(|e| e.local == client && e.remote == Some(sa(dst, 7))));
    assert!(est.iter().any(|e| e.local == sa(dst, 7) && e.remote == Some(client)));
    h.send(c, b"hello over the loopback");
    h.run(Duration::from_millis(1));
    let got = h.recv(s);
    assert_eq!(got, b"hello over the loopback");
    h.send(s, &got);
    h.run(Duration::from_millis(1));
    assert_eq!(h.recv(c), b"hello over the loopback");
    h.close(c);
    h.run(Duration::from_millis(1));
    assert_eq!(h.recv(s), b"", "end of stream");
    h.close(s);
    h.run(Duration::from_millis(1));
    assert_eq!(h.stack.tcp().0.time_wait_count(), 1);
    h.run(Duration::from_secs(120));
    assert_eq!(h.stack.tcp().0.connection_count(), 0, "TIME-WAIT over");
    // Nothing reached the link; the recorder saw every segment, ours to ours.
    assert!(h.dev.sent.is_empty(), "{} frames leaked to the link", h.dev.sent.len());
    assert!(h.dev.looped.len() >= 8, "{}", h.dev.looped.len());
    for f in &h.dev.looped {
        let (a, b) = ips(f);
        assert!((a, b) == (src, dst) || (a, b) == (dst, src), "{a} -> {b}");
    }
    let c = h.stack.counters();
    let lo = &c.loopback;
    assert_eq!(lo.frames, h.dev.looped.len() as u64);
    assert_eq!(lo.frames, lo.delivered + lo.held + lo.dropped);
    assert_eq!((lo.dropped, c.drops.total()), (0, 0), "{}", c.report());
    assert_eq!((c.link.tx_frames, c.link.rx_frames), (1, 0), "only the announcement on the link");
    assert_eq!((c.tcp.active_opens, c.tcp.passive_opens), (1, 1));
}

#[test]
fn tcp_to_our_own_address_connects_echoes_and_closes_without_the_link() {
    tcp_round_trip(ME, ME);
}

#[test]
fn tcp_to_localhost_comes_from_localhost() {
    tcp_round_trip(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
}

#[test]
fn tcp_to_any_address_of_127_8_is_ours() {
    tcp_round_trip(Ipv4Addr::new(127, 1, 2, 3), Ipv4Addr::LOCALHOST);
}

#[test]
fn tcp_to_a_closed_port_of_ours_is_refused_at_once() {
    let mut h = Host::new(|_| {});
    let c = h.connect(sa(Ipv4Addr::LOCALHOST, 9)).unwrap();
    h.run(Duration::ZERO);
    assert_eq!(h.stack.tcp().0.take_error(c), Ok(Some(TcpError::ConnectionRefused)));
    assert!(h.dev.sent.is_empty());
    assert_eq!(h.stack.counters().drops.get(DropReason::TcpNoSocket), 1);
}

#[test]
fn a_listener_on_localhost_takes_loopback_connections_and_refuses_our_link_address() {
    let mut h = Host::new(|_| {});
    let lid = {
        let (tcp, net) = h.stack.tcp();
        tcp.listen(net, sa(Ipv4Addr::LOCALHOST, 80), 8).unwrap()
    };
    let ok = h.connect(sa(Ipv4Addr::LOCALHOST, 80)).unwrap();
    let refused = h.connect(sa(ME, 80)).unwrap();
    h.run(Duration::ZERO);
    assert_eq!(h.stack.tcp().0.state(ok), Ok(State::Established));
    assert!(h.stack.tcp().0.accept(lid).unwrap().is_some());
    assert_eq!(h.stack.tcp().0.take_error(refused), Ok(Some(TcpError::ConnectionRefused)));
    assert!(h.dev.sent.is_empty());
}

#[test]
fn bound_to_127_8_reaches_only_ourselves_and_127_8_never_takes_the_gateway() {
    let mut h = Host::new(|c| c.gateway = Some(Ipv4Addr::new(10, 0, 0, 254)));
    let (tcp, net) = h.stack.tcp();
    // RFC 1122 section 3.2.1.3 (g), Linux's EINVAL.
    let r = tcp.connect(T0, net, Some(sa(Ipv4Addr::LOCALHOST, 0)), sa(Ipv4Addr::new(192, 0, 2, 1), 80));
    assert_eq!(r, Err(TcpError::InvalidArgument));
    let r = tcp.connect(T0, net, Some(sa(Ipv4Addr::new(10, 0, 0, 9), 0)), sa(ME, 80));
    assert_eq!(r, Err(TcpError::InvalidArgument), "not our address");
    let (udp, net) = h.stack.udp();
    let u = udp.open().unwrap();
    udp.bind(net, u, sa(Ipv4Addr::LOCALHOST, 5000)).unwrap();
    assert_eq!(
        udp.send_to(T0, net, u, Some(sa(Ipv4Addr::new(192, 0, 2, 1), 53)), b"x"),
        Err(UdpError::InvalidArgument)
    );
    assert_eq!(udp.connect(net, u, sa(Ipv4Addr::new(10, 0, 0, 2), 53)), Err(UdpError::InvalidArgument));
    // From 127.0.0.1 to our link address is fine (both ours).
    assert_eq!(udp.send_to(T0, net, u, Some(sa(ME, 53)), b"x"), Ok(1));
    // With a gateway, 127/8 still goes round the loopback.
    let v = udp.open().unwrap();
    assert_eq!(udp.send_to(T0, net, v, Some(sa(Ipv4Addr::new(127, 9, 9, 9), 53)), b"x"), Ok(1));
    h.run(Duration::from_secs(5));
    assert!(h.dev.sent.is_empty(), "{:?}", h.dev.sent);
    // Both reached a closed port: port unreachable, round the loopback too.
    assert_eq!(h.stack.counters().icmp.rx_dest_unreachable, 2);
}

#[test]
fn udp_to_our_own_address_and_localhost_both_ways() {
    for (dst, src) in [(ME, ME), (Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST)] {
        let mut h = Host::new(|_| {});
        let (udp, net) = h.stack.udp();
        let server = udp.open().unwrap();
        udp.bind(net, server, sa(Ipv4Addr::UNSPECIFIED, 5353)).unwrap();
        let client = udp.open().unwrap();
        assert_eq!(udp.send_to(T0, net, client, Some(sa(dst, 5353)), b"ping"), Ok(4));
        h.run(Duration::ZERO);
        let mut buf = [0u8; 64];
        let (udp, net) = h.stack.udp();
        let (n, from) = udp.recv_from(server, &mut buf, false).unwrap();
        assert_eq!((&buf[..n], *from.ip()), (&b"ping"[..], src));
        assert_eq!(udp.send_to(T0, net, server, Some(from), b"pong"), Ok(4));
        h.run(Duration::ZERO);
        let (udp, _) = h.stack.udp();
        let (n, back) = udp.recv_from(client, &mut buf, false).unwrap();
        assert_eq!((&buf[..n], back), (&b"pong"[..], sa(dst, 5353)));
        assert!(h.dev.sent.is_empty());
        assert_eq!(h.dev.looped.len(), 2);
        assert_eq!(ips(&h.dev.looped[0]), (src, dst));
    }
}

#[test]
fn connected_udp_to_a_closed_port_of_ours_is_refused() {
    let mut h = Host::new(|_| {});
    let (udp, net) = h.stack.udp();
    let u = udp.open().unwrap();
    udp.connect(net, u, sa(Ipv4Addr::LOCALHOST, 9)).unwrap();
    assert_eq!(udp.send_to(T0, net, u, None, b"anyone?"), Ok(7));
    h.run(Duration::ZERO);
    let (udp, net) = h.stack.udp();
    assert_eq!(udp.send_to(T0, net, u, None, b"again"), Err(UdpError::ConnectionRefused));
    assert!(h.dev.sent.is_empty());
}

#[test]
fn a_datagram_larger_than_the_mtu_goes_round_in_fragments() {
    let mut h = Host::new(|_| {});
    let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    let (udp, net) = h.stack.udp();
    let server = udp.open().unwrap();
    udp.bind(net, server, sa(Ipv4Addr::UNSPECIFIED, 9000)).unwrap();
    let client = udp.open().unwrap();
    assert_eq!(udp.send_to(T0, net, client, Some(sa(Ipv4Addr::LOCALHOST, 9000)), &data), Ok(5000));
    h.run(Duration::ZERO);
    let mut buf = vec![0u8; 8000];
    let (n, _) = h.stack.udp().0.recv_from(server, &mut buf, false).unwrap();
    assert_eq!(&buf[..n], &data[..]);
    let lo = &h.stack.counters().loopback;
    assert_eq!((lo.frames, lo.held, lo.delivered), (4, 3, 1));
    assert!(h.dev.sent.is_empty());
}

#[test]
fn ping_of_ourselves_is_answered_round_the_loopback() {
    // The stack has no ping call; the IP layer's send is enough to ask.
    for dst in [ME, Ipv4Addr::LOCALHOST] {
        let mut h = Host::new(|_| {});
        let ip = h.stack.ip();
        let mut buf = ip.alloc_packet();
        crate::icmp::write_message(&mut buf, crate::icmp::TYPE_ECHO_REQUEST, 0, [0, 1, 0, 1], &[b"are you me?"]);
        let src = ip.source_for(dst);
        let opts =
            crate::SendOptions { protocol: etherparse::IpNumber::ICMP, src, dst, dont_fragment: false, ttl: None };
        ip.send_ip(T0, opts, buf).unwrap();
        h.run(Duration::ZERO);
        let c = h.stack.counters();
        assert_eq!((c.icmp.rx_echo_requests, c.icmp.tx_echo_replies, c.icmp.rx_echo_replies), (1, 1, 1));
        assert_eq!(h.dev.looped.len(), 2);
        assert_eq!(ips(&h.dev.looped[1]), (dst, src), "the reply comes from the address asked");
        assert!(h.dev.sent.is_empty());
    }
}

#[test]
fn the_loopback_queue_is_bounded_and_its_overflow_counted() {
    let mut h = Host::new(|c| c.loopback_queue = 4);
    let (udp, net) = h.stack.udp();
    let server = udp.open().unwrap();
    udp.bind(net, server, sa(Ipv4Addr::UNSPECIFIED, 7000)).unwrap();
    let client = udp.open().unwrap();
    for _ in 0..10 {
        assert_eq!(udp.send_to(T0, net, client, Some(sa(ME, 7000)), b"x"), Ok(1));
    }
    assert_eq!(h.stack.ip().looped_pending(), 4);
    h.run(Duration::ZERO);
    let c = h.stack.counters();
    assert_eq!((c.loopback.frames, c.loopback.delivered, c.udp.rx_datagrams), (4, 4, 4));
    assert_eq!(c.drops.get(DropReason::LoopbackQueueFull), 6);
    assert_eq!(h.stack.poll_at(), None, "nothing left to do");
}

#[test]
fn looped_frames_are_kept_for_a_capture_only_up_to_the_bound() {
    // A driver that never asks for them (this one calls poll only) does not
    // make the stack hold more than the bound.
    let mut s = Stack::new(Config { loopback_queue: 3, ..Config::new(MAC, ME, 24) }).unwrap();
    let (udp, net) = s.udp();
    let server = udp.open().unwrap();
    udp.bind(net, server, sa(Ipv4Addr::UNSPECIFIED, 7000)).unwrap();
    let client = udp.open().unwrap();
    for round in 0..5 {
        let (udp, net) = s.udp();
        for _ in 0..3 {
            udp.send_to(T0, net, client, Some(sa(ME, 7000)), &[round]).unwrap();
        }
        s.poll(T0);
    }
    let mut kept = Vec::new();
    assert_eq!(s.transmit_looped(|f| kept.push(f[f.len() - 1])), 3);
    assert_eq!(kept, [4, 4, 4], "the newest");
    assert!(!s.has_looped());
}

#[test]
fn a_pcap_recorder_shows_the_loopback_and_the_tap_under_it_sees_none() {
    use crate::device::pcap::{PcapRecorder, PcapSource};
    let mut s = Stack::new(Config::new(MAC, ME, 24)).unwrap();
    let mut rec = PcapRecorder::new(Probe::default(), Vec::new(), std::time::UNIX_EPOCH).unwrap();
    Driver::start(&mut s, &mut rec, &mut (), T0).unwrap();
    let (udp, net) = s.udp();
    let server = udp.open().unwrap();
    udp.bind(net, server, sa(Ipv4Addr::UNSPECIFIED, 7000)).unwrap();
    let client = udp.open().unwrap();
    udp.send_to(T0, net, client, Some(sa(Ipv4Addr::LOCALHOST, 7000)), b"recorded").unwrap();
    let t1 = T0 + Duration::from_millis(3);
    Driver::run_timers(&mut s, &mut rec, &mut (), t1).unwrap();
    let (probe, bytes) = rec.into_parts();
    assert_eq!((probe.sent.len(), probe.looped.len()), (1, 1), "the announcement sent; the datagram only shown");
    let mut src = PcapSource::new(&bytes[..]).unwrap();
    let mut frames = Vec::new();
    while let Ok(Some((_, f))) = src.next_frame() {
        frames.push(f.to_vec());
    }
    assert_eq!(frames.len(), 2, "the announcement and the looped datagram");
    assert_eq!(ips(&frames[1]), (Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST));
    assert!(frames[1].ends_with(b"recorded"));
}

#[test]
fn frames_to_127_8_from_the_link_are_still_dropped() {
    let mut h = Host::new(|_| {});
    let (udp, net) = h.stack.udp();
    let server = udp.open().unwrap();
    udp.bind(net, server, sa(Ipv4Addr::UNSPECIFIED, 7000)).unwrap();
    // Our own frame, as the loopback made it, arriving from the link instead.
    let client = udp.open().unwrap();
    udp.send_to(T0, net, client, Some(sa(Ipv4Addr::LOCALHOST, 7000)), b"spoof").unwrap();
    let frame = {
        let ip = h.stack.ip();
        let f = ip.take_looped().unwrap();
        let copy = f.clone();
        ip.looped_done(f, crate::RxOutcome::Held);
        copy
    };
    let r = h.stack.receive(T0, &frame);
    assert_eq!(r, crate::RxOutcome::Dropped(DropReason::IpBadSource));
    assert_eq!(h.stack.counters().udp.rx_datagrams, 0);
}
