//! TCP (RFC 9293).
//!
//! STUB: the TCP helper replaces this.

use crate::counters::DropReason;
use crate::icmp::IcmpError;
use crate::iface::Net;
use crate::ipv4::IpPacket;
use crate::time::Instant;

#[derive(Debug, Default)]
pub struct Tcp {}

impl Tcp {
    pub fn new(_net: &mut Net) -> Tcp {
        Tcp {}
    }

    pub fn input(&mut self, _now: Instant, _net: &mut Net, _packet: &IpPacket<'_>) -> Result<(), DropReason> {
        Err(DropReason::TcpNoSocket)
    }

    pub fn icmp_error(&mut self, _now: Instant, _net: &mut Net, _err: &IcmpError) {}

    pub fn poll(&mut self, _now: Instant, _net: &mut Net) {}

    pub fn poll_at(&self) -> Option<Instant> {
        None
    }
}
