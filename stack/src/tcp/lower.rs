//! What TCP needs from the layers below: an address, the MTU, randomness,
//! counters, and a way to send a segment. The stack's IP layer
//! ([`crate::IpLayer`]) provides it for real, through an implementation that lives
//! with the composition (so TCP never names the IP layer); tests provide it with a
//! mailbox, so that connections can be driven segment by segment without IP, ARP
//! or Ethernet in the way.

use super::segment::SegmentOut;
use crate::counters::{DropReason, TcpCounters};
use crate::time::Instant;
use rand::rngs::ChaCha8Rng;
use std::net::{Ipv4Addr, SocketAddrV4};

pub trait TcpNet {
    /// Our IPv4 address.
    fn local_ip(&self) -> Ipv4Addr;
    /// Whether `ip` is one of ours (for the stack: its address and 127/8, RFC
    /// 1122 section 3.2.1.3). The default knows only [`TcpNet::local_ip`].
    fn is_local(&self, ip: Ipv4Addr) -> bool {
        ip == self.local_ip()
    }
    /// Our address a connection to `dst` is made from when its socket is bound to
    /// none (for the stack: 127.0.0.1 to 127/8, as Linux). The default is
    /// [`TcpNet::local_ip`].
    fn source_for(&self, dst: Ipv4Addr) -> Ipv4Addr {
        let _ = dst;
        self.local_ip()
    }
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
    /// The most payload one segment to `dst` may carry when the link cuts it
    /// into MSS-sized segments itself (TSO, `crate::offload`), whatever its
    /// options; 0 (the default) when it does not, and then every segment is
    /// sent as it goes on the wire with its checksum computed.
    fn tso_max(&self, dst: Ipv4Addr) -> u32 {
        let _ = dst;
        0
    }
    /// Whether the buffer of the frame being received may be kept for
    /// `payload`, a segment's data, instead of its bytes being copied
    /// (zero-copy receive: `tcp::recv`, `buffer::RxClaim`); the buffer
    /// comes with `Tcp::fill_claim` once the frame is done with. Never, by
    /// default.
    fn claim_rx_frame(&mut self, payload: &[u8]) -> bool {
        let _ = payload;
        false
    }
    /// Takes back a kept frame's buffer once it has been read.
    fn recycle_buffer(&mut self, buf: Vec<u8>) {
        drop(buf);
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
