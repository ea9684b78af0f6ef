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
//!
//! Outbound, with [`Offloads::tso`], TCP builds segments of many MSS (up to
//! about 64 KiB, bounded by the windows and `Config::gso_max_size`) and leaves
//! their checksum partial; each frame says so in a [`TxOffload`], which the
//! device writes as the virtio-net header, and the kernel cuts the segment into
//! MSS-sized ones and sums each (its GSO, or the NIC's TSO further on).

/// The link's offloads, as far as the stack uses them. All off by default: a
/// device without a virtio-net header delivers and takes plain frames.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Offloads {
    /// Inbound frames may be GSO segments of up to [`MAX_GSO_FRAME`] bytes, and
    /// may carry checksums the link vouched for ([`RxOffload`]). Off, any frame
    /// longer than the MTU is dropped as oversize.
    pub rx: bool,
    /// Outbound TCP segments may be GSO segments of many MSS, longer than the
    /// MTU, with their checksum left partial for the link to fill in
    /// ([`TxOffload`]). Never used for the stack's loopback, which delivers
    /// frames to itself without a link to cut them.
    pub tso: bool,
}

impl Offloads {
    /// What an offloading TAP does (`TUN_F_CSUM | TUN_F_TSO4`): both ways.
    pub const TAP: Offloads = Offloads { rx: true, tso: true };
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

/// What one outbound frame asks of the link. The default, a plain frame, asks
/// nothing: it goes as it is, its checksums filled in.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TxOffload {
    /// Nonzero: a TCP/IPv4 GSO segment, to be cut into segments of this many
    /// payload bytes (the MSS) each, with the same headers.
    pub gso_size: u16,
    /// Nonzero: the transport checksum is partial (the pseudo-header's sum is in
    /// place); the link sums the frame from this offset on ...
    pub csum_start: u16,
    /// ... and stores the checksum this far past `csum_start`.
    pub csum_offset: u16,
}

impl TxOffload {
    /// A plain frame.
    pub const NONE: TxOffload = TxOffload { gso_size: 0, csum_start: 0, csum_offset: 0 };

    /// Whether the frame's transport checksum is left to the link.
    pub fn csum_partial(&self) -> bool {
        self.csum_start != 0
    }

    /// What the far end of an offloading link is told of this frame when the
    /// link hands it over as it is (Linux's loopback and veth pass a segment
    /// whose checksum is partial on as one whose checksum need not be checked).
    pub fn as_received(&self) -> RxOffload {
        RxOffload { csum_trusted: self.csum_partial(), gso_size: self.gso_size }
    }
}
