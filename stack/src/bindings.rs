//! How the transports' view of the network is met by the real IP layer: the
//! implementations of [`TcpNet`] and [`UdpNet`] for [`IpLayer`].
//!
//! They live here, on the composition side, rather than in `tcp/` or `udp.rs`, so
//! that a transport names only its own trait and never the IP layer, and the IP
//! layer never names a transport: the two can be read, changed and tested (TCP's
//! tests drive connections over a mailbox) each without the other. Each method
//! is a thin translation; building a segment or datagram stays with its
//! transport, sending it with the IP layer.

use crate::counters::{DropReason, TcpCounters, UdpCounters};
use crate::ip_layer::{IpLayer, SendOptions};
use crate::ipv4::{IpPacket, PAYLOAD_OFFSET};
use crate::offload::TxOffload;
use crate::tcp::segment::{self, SegmentOut};
use crate::tcp::TcpNet;
use crate::time::Instant;
use crate::udp::{self, UdpNet};
use etherparse::IpNumber;
use rand::rngs::ChaCha8Rng;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::Range;

impl TcpNet for IpLayer {
    fn local_ip(&self) -> Ipv4Addr {
        IpLayer::local_ip(self)
    }

    fn is_local(&self, ip: Ipv4Addr) -> bool {
        IpLayer::is_local(self, ip)
    }

    fn source_for(&self, dst: Ipv4Addr) -> Ipv4Addr {
        IpLayer::source_for(self, dst)
    }

    fn mtu(&self) -> u16 {
        self.config().mtu
    }

    fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        IpLayer::is_broadcast(self, ip)
    }

    fn negative_advice(&mut self, now: Instant, dst: Ipv4Addr) {
        IpLayer::negative_advice(self, now, dst)
    }

    fn claim_rx_frame(&mut self, payload: &[u8]) -> bool {
        self.rx_claim.claim(payload)
    }

    fn recycle_buffer(&mut self, buf: Vec<u8>) {
        self.recycle(buf)
    }

    fn rng(&mut self) -> &mut ChaCha8Rng {
        IpLayer::rng(self)
    }

    fn counters(&mut self) -> &mut TcpCounters {
        &mut self.counters_mut().tcp
    }

    fn send_segment(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        seg: &SegmentOut,
        payload: [&[u8]; 2],
    ) -> Result<(), DropReason> {
        let mut buf = match seg.gso_size > 0 {
            true => self.alloc_packet_for(segment::MAX_HEADER_LEN + payload[0].len() + payload[1].len()),
            false => self.alloc_packet(),
        };
        segment::write(&mut buf, *src.ip(), *dst.ip(), seg, payload);
        let opts =
            SendOptions { protocol: IpNumber::TCP, src: *src.ip(), dst: *dst.ip(), dont_fragment: true, ttl: None };
        let offload = match seg.csum_partial {
            true => TxOffload {
                gso_size: seg.gso_size,
                csum_start: PAYLOAD_OFFSET as u16,
                csum_offset: segment::CHECKSUM_OFFSET as u16,
            },
            false => TxOffload::NONE,
        };
        self.send_ip_offloaded(now, opts, buf, offload)
    }

    fn tso_max(&self, dst: Ipv4Addr) -> u32 {
        IpLayer::tso_max(self, dst, segment::MAX_HEADER_LEN)
    }
}

impl UdpNet for IpLayer {
    fn is_local(&self, ip: Ipv4Addr) -> bool {
        IpLayer::is_local(self, ip)
    }

    fn source_for(&self, bound: Ipv4Addr, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        IpLayer::source_from(self, bound, dst)
    }

    fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        IpLayer::is_broadcast(self, ip)
    }

    fn has_route(&self, dst: Ipv4Addr) -> bool {
        self.route(dst).is_ok()
    }

    fn random_range(&mut self, range: Range<u32>) -> u32 {
        IpLayer::random_range(self, range)
    }

    fn counters(&mut self) -> &mut UdpCounters {
        &mut self.counters_mut().udp
    }

    fn send_datagram(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        ttl: Option<u8>,
        data: &[u8],
    ) -> Result<(), DropReason> {
        let mut buf = self.alloc_packet();
        udp::write_datagram(&mut buf, *src.ip(), src.port(), dst, data);
        let opts = SendOptions { protocol: IpNumber::UDP, src: *src.ip(), dst: *dst.ip(), dont_fragment: false, ttl };
        self.send_ip(now, opts, buf)
    }

    fn send_icmp_error(&mut self, now: Instant, about: &IpPacket<'_>, ty: u8, code: u8) -> bool {
        IpLayer::send_icmp_error(self, now, about, ty, code)
    }
}
