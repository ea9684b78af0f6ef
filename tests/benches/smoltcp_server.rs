//! The smoltcp side of the TAP benchmark: smoltcp 0.14's own
//! `examples/benchmark.rs` server logic (an Interface on a TAP, TCP sockets with
//! 65535-byte buffers, poll, then move data while the socket can, then
//! `phy::wait` until the next poll time), on the ports our services use so the
//! same kernel-side client drives both: 9 sinks data (the benchmark's 1235) and
//! closes once the client has shut down; 19 emits data (its 1234) without end.

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{wait as phy_wait, Medium, TunTapInterface};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn socket() -> tcp::Socket<'static> {
    tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 65535]), tcp::SocketBuffer::new(vec![0; 65535]))
}

/// Serves on `device` at `ip`/24 until `stop`.
pub fn serve(mut device: TunTapInterface, ip: Ipv4Addr, stop: Arc<AtomicBool>) {
    let fd = device.as_raw_fd();
    let mut config = Config::new(EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]).into());
    config.random_seed = 0x5eed;
    let mut iface = Interface::new(config, &mut device, Instant::now());
    let o = ip.octets();
    iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(o[0], o[1], o[2], o[3]), 24)).unwrap());
    let mut sockets = SocketSet::new(vec![]);
    let sink = sockets.add(socket());
    let source = sockets.add(socket());
    while !stop.load(Ordering::Relaxed) {
        let timestamp = Instant::now();
        iface.poll(timestamp, &mut device, &mut sockets);

        let s = sockets.get_mut::<tcp::Socket>(sink);
        if !s.is_open() {
            s.listen(9).unwrap();
        }
        while s.can_recv() {
            s.recv(|b| (b.len(), ())).unwrap();
        }
        if s.state() == tcp::State::CloseWait {
            s.close();
        }

        let s = sockets.get_mut::<tcp::Socket>(source);
        if !s.is_open() {
            s.listen(19).unwrap();
        }
        while s.can_send() {
            s.send(|b| (b.len(), ())).unwrap();
        }
        if s.state() == tcp::State::CloseWait {
            s.abort();
        }

        match iface.poll_at(timestamp, &sockets) {
            Some(t) if timestamp < t => phy_wait(fd, Some(t - timestamp)).expect("wait"),
            Some(_) => {}
            None => phy_wait(fd, Some(Duration::from_millis(100))).expect("wait"),
        }
    }
}

/// Runs [`serve`] on a thread of its own that enters namespace `ns` and opens
/// TAP `tap` there (smoltcp's TAP handle cannot move between threads).
pub fn spawn(ns: &str, tap: &str, ip: Ipv4Addr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let (path, tap) = (format!("/run/netns/{ns}"), tap.to_string());
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("namespace");
        // SAFETY: setns on this thread only, with a valid namespace fd.
        assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
        let device = TunTapInterface::new(&tap, Medium::Ethernet).expect("smoltcp TAP");
        serve(device, ip, stop)
    })
}
