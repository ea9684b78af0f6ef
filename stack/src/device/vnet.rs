//! The virtio-net header (`struct virtio_net_hdr`, virtio 1.x section 5.1.6,
//! Linux's include/uapi/linux/virtio_net.h) that a TAP opened with
//! `IFF_VNET_HDR` puts before every frame it hands over and expects before
//! every frame it takes. It carries the offloads of one frame: whether its
//! transport checksum is partial (`NEEDS_CSUM`, with where the sum starts and
//! where it goes) or already verified (`DATA_VALID`), and whether it is a GSO
//! segment (its type and the size of the segments it is made of).
//!
//! Ten bytes, little-endian on a TAP (the kernel's native order on x86 and
//! arm64; `TUNSETVNETLE` would force it elsewhere): flags, gso_type, hdr_len,
//! gso_size, csum_start, csum_offset. This module is the codec; the core sees
//! only [`RxOffload`] and [`TxOffload`].

use crate::offload::{RxOffload, TxOffload};

/// The header's length: `struct virtio_net_hdr` without `num_buffers`, what
/// `TUNSETVNETHDRSZ` is given.
pub const HDR_LEN: usize = 10;

/// The transport checksum is partial: the sum of the pseudo-header is in place,
/// the rest is to be summed from `csum_start` and stored at `csum_offset` past it.
pub const F_NEEDS_CSUM: u8 = 1;
/// The transport checksum was verified.
pub const F_DATA_VALID: u8 = 2;

/// Not a GSO segment.
pub const GSO_NONE: u8 = 0;
/// A TCP/IPv4 GSO segment (TSO).
pub const GSO_TCPV4: u8 = 1;
/// A UDP fragmentation offload segment (UFO, no longer offered by Linux).
pub const GSO_UDP: u8 = 3;
/// A TCP/IPv6 GSO segment.
pub const GSO_TCPV6: u8 = 4;
/// A UDP segmentation offload segment (USO).
pub const GSO_UDP_L4: u8 = 5;
/// Or'ed into the GSO type: the segment had ECN's CWR set.
pub const GSO_ECN: u8 = 0x80;

/// One header, its fields in host order.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    /// Length of the headers (Ethernet, IP, transport) of a GSO segment.
    pub hdr_len: u16,
    /// Payload bytes per segment of a GSO segment (the MSS for TCP).
    pub gso_size: u16,
    /// Where the partial checksum's sum starts, from the frame's first byte.
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// A plain frame: no offload asked for.
    pub const NONE: VnetHdr =
        VnetHdr { flags: 0, gso_type: GSO_NONE, hdr_len: 0, gso_size: 0, csum_start: 0, csum_offset: 0 };

    pub fn decode(b: &[u8; HDR_LEN]) -> VnetHdr {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        }
    }

    pub fn encode(&self) -> [u8; HDR_LEN] {
        let mut b = [0u8; HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// What the core needs of an inbound header: whether the checksum is vouched
    /// for, and the segment size of a TCP/IPv4 GSO segment (the only GSO type the
    /// TAP is offered, `TUN_F_TSO4`; any other is left at 0, so a frame of another
    /// type longer than the MTU is dropped as oversize).
    pub fn rx_offload(&self) -> RxOffload {
        let gso_size = match self.gso_type & !GSO_ECN {
            GSO_TCPV4 => self.gso_size,
            _ => 0,
        };
        RxOffload { csum_trusted: self.flags & (F_NEEDS_CSUM | F_DATA_VALID) != 0, gso_size }
    }

    /// The header to write before `frame`, which asks the link for `tx`: a
    /// partial checksum (`NEEDS_CSUM`, where the sum starts and goes), and for
    /// a GSO segment its type (TCP/IPv4) and segment size, with `hdr_len` the
    /// length of its Ethernet, IPv4 and TCP headers (read from the frame; the
    /// kernel takes it as a hint, Linux's virtio_net_hdr_to_skb).
    pub fn for_frame(frame: &[u8], tx: TxOffload) -> VnetHdr {
        let mut h = VnetHdr::NONE;
        if tx.csum_partial() {
            h.flags = F_NEEDS_CSUM;
            h.csum_start = tx.csum_start;
            h.csum_offset = tx.csum_offset;
        }
        if tx.gso_size > 0 {
            h.gso_type = GSO_TCPV4;
            h.gso_size = tx.gso_size;
            let doff = frame.get(tx.csum_start as usize + 12).map_or(5, |b| b >> 4) as u16;
            h.hdr_len = tx.csum_start + doff * 4;
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header as the kernel writes it before a 64 KiB TSO segment to the TAP:
    /// partial checksum at the TCP header (14 + 20 bytes in, checksum 16 past it),
    /// 1448-byte segments, 66 bytes of headers (Ethernet, IPv4, TCP with timestamps).
    const TSO: [u8; HDR_LEN] = [1, 1, 66, 0, 0xa8, 0x05, 34, 0, 16, 0];

    #[test]
    fn decodes_the_kernels_tso_header() {
        let h = VnetHdr::decode(&TSO);
        assert_eq!(
            h,
            VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_TCPV4,
                hdr_len: 66,
                gso_size: 1448,
                csum_start: 34,
                csum_offset: 16
            }
        );
        assert_eq!(h.encode(), TSO);
        assert_eq!(h.rx_offload(), RxOffload { csum_trusted: true, gso_size: 1448 });
    }

    #[test]
    fn a_plain_header_promises_nothing() {
        assert_eq!(VnetHdr::decode(&[0; HDR_LEN]), VnetHdr::NONE);
        assert_eq!(VnetHdr::NONE.encode(), [0; HDR_LEN]);
        assert_eq!(VnetHdr::NONE.rx_offload(), RxOffload::NONE);
    }

    #[test]
    fn data_valid_is_trusted_and_ecn_keeps_the_gso_type() {
        let h = VnetHdr { flags: F_DATA_VALID, ..VnetHdr::NONE };
        assert_eq!(h.rx_offload(), RxOffload { csum_trusted: true, gso_size: 0 });
        let ecn = VnetHdr { gso_type: GSO_TCPV4 | GSO_ECN, gso_size: 1460, ..VnetHdr::NONE };
        assert_eq!(ecn.rx_offload().gso_size, 1460);
    }

    #[test]
    fn gso_types_not_offered_give_no_segment_size() {
        for ty in [GSO_UDP, GSO_TCPV6, GSO_UDP_L4] {
            let h = VnetHdr { gso_type: ty, gso_size: 1400, ..VnetHdr::NONE };
            assert_eq!(h.rx_offload().gso_size, 0, "type {ty}");
        }
    }

    #[test]
    fn a_tso_segment_gets_the_header_the_kernel_writes_itself() {
        // 14 + 20 bytes of Ethernet and IPv4, then a TCP header of 32 (data offset 8).
        let mut frame = vec![0u8; 66 + 1448 * 2];
        frame[34 + 12] = 8 << 4;
        let tx = TxOffload { gso_size: 1448, csum_start: 34, csum_offset: 16 };
        assert_eq!(VnetHdr::for_frame(&frame, tx).encode(), TSO);
        let csum_only = TxOffload { gso_size: 0, ..tx };
        let h = VnetHdr::for_frame(&frame, csum_only);
        assert_eq!((h.flags, h.gso_type, h.hdr_len, h.gso_size), (F_NEEDS_CSUM, GSO_NONE, 0, 0));
        assert_eq!(VnetHdr::for_frame(&frame, TxOffload::NONE), VnetHdr::NONE);
        assert_eq!(tx.as_received(), RxOffload { csum_trusted: true, gso_size: 1448 });
    }

    #[test]
    fn round_trips_every_field() {
        let h = VnetHdr {
            flags: 3,
            gso_type: 0x85,
            hdr_len: 0x0102,
            gso_size: 0x0304,
            csum_start: 0x0506,
            csum_offset: 0x0708,
        };
        assert_eq!(h.encode(), [3, 0x85, 2, 1, 4, 3, 6, 5, 8, 7]);
        assert_eq!(VnetHdr::decode(&h.encode()), h);
    }
}
