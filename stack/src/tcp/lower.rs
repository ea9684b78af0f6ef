//! What TCP needs from the layers below: an address, the MTU, randomness,
//! counters, and a way to send a segment. [`Net`] provides it for real; tests
//! provide it with a mailbox, so that connections can be driven segment by
//! segment without IP, ARP or Ethernet in the way.

use super::segment::{self, SegmentOut};
use crate::counters::{DropReason, TcpCounters};
use crate::iface::{Net, SendOptions};
use crate::time::Instant;
use etherparse::IpNumber;
use rand::rngs::ChaCha8Rng;
use std::net::{Ipv4Addr, SocketAddrV4};

pub trait TcpNet {
    /// Our IPv4 address.
    fn local_ip(&self) -> Ipv4Addr;
    /// Largest IP datagram we send (the link MTU).
    fn mtu(&self) -> u16;
    /// Whether `ip` is a broadcast address on our link (limited or the subnet's).
    /// The default knows only the limited broadcast address.
    fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        ip.is_broadcast()
    }
    /// Negative advice (RFC 1122 sections 3.3.1.4, 4.2.3.5): retransmissions to
    /// `dst` reached R1, so the route's next hop is suspect. The default ignores it.
    fn negative_advice(&mut self, now: Instant, dst: Ipv4Addr) {
        let _ = (now, dst);
    }
    fn rng(&mut self) -> &mut ChaCha8Rng;
    fn counters(&mut self) -> &mut TcpCounters;
    /// Builds the segment and hands it to IP (with DF set).
    fn send_segment(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        seg: &SegmentOut,
        payload: [&[u8]; 2],
    ) -> Result<(), DropReason>;
}

impl TcpNet for Net {
    fn local_ip(&self) -> Ipv4Addr {
        self.config.addr
    }

    fn mtu(&self) -> u16 {
        self.config.mtu
    }

    fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.config.is_broadcast(ip)
    }

    fn negative_advice(&mut self, now: Instant, dst: Ipv4Addr) {
        if let Ok(route) = crate::ipv4::route(&self.config, dst) {
            self.arp.suspect(now, route.next_hop);
        }
    }

    fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    fn counters(&mut self) -> &mut TcpCounters {
        &mut self.counters.tcp
    }

    fn send_segment(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        seg: &SegmentOut,
        payload: [&[u8]; 2],
    ) -> Result<(), DropReason> {
        let mut buf = self.alloc_packet();
        segment::write(&mut buf, *src.ip(), *dst.ip(), seg, payload);
        let opts = SendOptions { protocol: IpNumber::TCP, dst: *dst.ip(), dont_fragment: true, ttl: None };
        self.send_ip(now, opts, buf)
    }
}
