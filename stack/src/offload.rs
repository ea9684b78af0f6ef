//! What the link does for the stack: checksum and segmentation offloads, as the
//! Linux kernel offers them to a TAP opened with a virtio-net header
//! (`IFF_VNET_HDR`, `TUNSETOFFLOAD`). The core only knows these as plain values:
//! a capability in its configuration ([`Offloads`]) and, per inbound frame, what
//! the link vouched for ([`RxOffload`]). Encoding them in the virtio-net header
//! is the device's job (`device::vnet`).
//!
//! Inbound, a kernel whose TAP takes TSO hands over TCP segments of up to 64 KiB
//! (its GSO/GRO segments, never split into MTU-sized frames) whose checksum it
//! either verified (`VIRTIO_NET_HDR_F_DATA_VALID`) or left partial because the
//! segment never left the host (`VIRTIO_NET_HDR_F_NEEDS_CSUM`). The stack takes
//! such a frame whole, beyond the link MTU, and does not verify a checksum the
//! kernel vouched for; TCP counts it as the MSS-sized segments it stands for
//! when deciding to ACK (RFC 5681 section 4.2's "every second full-sized
//! segment"), as Linux does for a GRO segment.

/// The link's offloads, as far as the stack uses them. All off by default: a
/// device without a virtio-net header delivers and takes plain frames.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Offloads {
    /// Inbound frames may be GSO segments of up to [`MAX_GSO_FRAME`] bytes, and
    /// may carry checksums the link vouched for ([`RxOffload`]). Off, any frame
    /// longer than the MTU is dropped as oversize.
    pub rx: bool,
}

/// The largest frame a GSO segment can make: an IPv4 datagram of 65535 bytes
/// (its total length field's limit) behind an Ethernet header and a VLAN tag.
pub const MAX_GSO_FRAME: usize = 14 + 4 + 65535;

/// What the link says about one inbound frame. The default, a plain frame,
/// promises nothing.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RxOffload {
    /// The transport checksum need not be verified: the kernel verified it, or
    /// left it partial for a segment that never left the host.
    pub csum_trusted: bool,
    /// Nonzero: a GSO segment made of segments of this many payload bytes, which
    /// may exceed the link MTU.
    pub gso_size: u16,
}

impl RxOffload {
    /// A plain frame.
    pub const NONE: RxOffload = RxOffload { csum_trusted: false, gso_size: 0 };
}
