//! UDP (RFC 768, RFC 1122 section 4.1).
//!
//! STUB: the sockets-api helper replaces this with the socket table.

use crate::counters::DropReason;
use crate::icmp::{self, IcmpError};
use crate::iface::Net;
use crate::ipv4::IpPacket;
use crate::time::Instant;

#[derive(Debug, Default)]
pub struct Udp {}

impl Udp {
    pub fn new(_net: &mut Net) -> Udp {
        Udp {}
    }

    pub fn input(&mut self, now: Instant, net: &mut Net, packet: &IpPacket<'_>) -> Result<(), DropReason> {
        net.send_icmp_error(now, packet, icmp::TYPE_DEST_UNREACHABLE, icmp::CODE_PORT_UNREACHABLE);
        Err(DropReason::UdpNoSocket)
    }

    pub fn icmp_error(&mut self, _now: Instant, _net: &mut Net, _err: &IcmpError) {}

    pub fn poll(&mut self, _now: Instant, _net: &mut Net) {}

    pub fn poll_at(&self) -> Option<Instant> {
        None
    }
}
