//! A gate in front of a stack's device, closed while the stack starts: until
//! it opens, the stack answers nothing (no ARP reply, no ping, no RST), so no
//! host on the link sees it before its services listen (issue 13 item 13: a
//! client that waited for ping got ECONNREFUSED).
//!
//! While closed, the gate lets in only what the address probe needs (RFC 5227
//! section 2.1.1: an ARP packet whose sender claims our address) and lets out
//! only the probe itself (an ARP request with sender address 0.0.0.0); every
//! other frame is dropped, as a host whose interface is not up yet would. Once
//! it opens, every frame passes. The bottom of the commands' layering, beside
//! `instance.rs`, which puts it in front of a TAP.

use stack::device::Device;
use stack::offload::{Offloads, RxOffload, TxOffload};
use stack::time::Instant;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The Ethernet type of ARP, and where an ARP packet's fields start in a frame
/// (Ethernet header 14 bytes; sender IP at 14 in the ARP packet, RFC 826).
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
const SENDER_IP: std::ops::Range<usize> = 28..32;

/// The device with its gate.
pub struct Gate<D> {
    inner: D,
    me: Ipv4Addr,
    open: Arc<AtomicBool>,
    /// Frames dropped while closed, in and out.
    dropped: u64,
}

/// Opens a [`Gate`] from another thread (the one that started the services).
#[derive(Clone, Debug)]
pub struct GateKey(Arc<AtomicBool>);

impl GateKey {
    /// Lets every frame through from now on.
    pub fn open(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl<D: Device> Gate<D> {
    /// `inner` behind a closed gate, for a stack at `me`.
    pub fn closed(inner: D, me: Ipv4Addr) -> (Gate<D>, GateKey) {
        let open = Arc::new(AtomicBool::new(false));
        (Gate { inner, me, open: open.clone(), dropped: 0 }, GateKey(open))
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Frames dropped while the gate was closed.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The sender address of an ARP frame, if `frame` is one.
fn arp_sender(frame: &[u8]) -> Option<Ipv4Addr> {
    let ip: [u8; 4] = frame.get(SENDER_IP)?.try_into().ok()?;
    (frame.get(12..14)? == ETHERTYPE_ARP).then_some(Ipv4Addr::from(ip))
}

impl<D: Device> Device for Gate<D> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.recv_offloaded(now, buf)?.map(|(n, _)| n))
    }

    fn recv_offloaded(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<(usize, RxOffload)>> {
        loop {
            let Some((n, rx)) = self.inner.recv_offloaded(now, buf)? else { return Ok(None) };
            if self.is_open() || arp_sender(&buf[..n]) == Some(self.me) {
                return Ok(Some((n, rx)));
            }
            self.dropped += 1;
        }
    }

    /// The loopback's frames reach no link: shown to the inner device (a
    /// capture) whether the gate is open or not.
    fn loopback(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.inner.loopback(now, frame)
    }

    fn offloads(&self) -> Offloads {
        self.inner.offloads()
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.send_offloaded(now, frame, TxOffload::NONE)
    }

    fn send_offloaded(&mut self, now: Instant, frame: &[u8], tx: TxOffload) -> io::Result<()> {
        if self.is_open() || arp_sender(frame) == Some(Ipv4Addr::UNSPECIFIED) {
            return self.inner.send_offloaded(now, frame, tx);
        }
        self.dropped += 1;
        Ok(())
    }

    fn readable_fd(&self) -> Option<RawFd> {
        self.inner.readable_fd()
    }

    fn poll_at(&self) -> Option<Instant> {
        self.inner.poll_at()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stack::device::wire::Wire;

    fn arp(sender: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![0u8; 42];
        f[12..14].copy_from_slice(&ETHERTYPE_ARP);
        f[SENDER_IP].copy_from_slice(&sender.octets());
        f
    }

    #[test]
    fn closed_it_passes_only_the_probe_and_claims_of_our_address() {
        let me = Ipv4Addr::new(10, 0, 0, 2);
        let (wire_a, mut host) = Wire::pair();
        let (mut gate, key) = Gate::closed(wire_a, me);
        let t = Instant::ZERO;
        let mut ping = arp(me);
        ping[12..14].copy_from_slice(&[0x08, 0x00]);
        for f in [arp(Ipv4Addr::new(10, 0, 0, 1)), ping.clone(), arp(me)] {
            host.send(t, &f).unwrap();
        }
        let mut buf = [0u8; 64];
        assert_eq!(gate.recv(t, &mut buf).unwrap(), Some(42), "the claim of our address");
        assert_eq!(&buf[SENDER_IP], &me.octets());
        assert_eq!(gate.recv(t, &mut buf).unwrap(), None);
        gate.send(t, &arp(me)).unwrap(); // an announcement or a reply: held back
        gate.send(t, &arp(Ipv4Addr::UNSPECIFIED)).unwrap(); // the probe
        assert_eq!(host.recv(t, &mut buf).unwrap(), Some(42));
        assert_eq!(&buf[SENDER_IP], &[0; 4]);
        assert_eq!(host.recv(t, &mut buf).unwrap(), None);
        assert_eq!(gate.dropped(), 3);
        key.open();
        host.send(t, &ping).unwrap();
        assert_eq!(gate.recv(t, &mut buf).unwrap(), Some(42));
        gate.send(t, &ping).unwrap();
        assert_eq!(host.recv(t, &mut buf).unwrap(), Some(42));
    }
}
