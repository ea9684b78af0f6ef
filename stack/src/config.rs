//! The stack's configuration: addresses, limits and seeds. Every limit the stack
//! enforces is a field here, with its default documented, so that resource bounds
//! are visible in one place (principle 4).
//!
//! It gathers each layer's own configuration ([`ArpConfig`], [`ReassemblyConfig`],
//! [`TcpConfig`]) and hands each layer only its part: IPv4 sees an [`Ipv4Config`]
//! ([`Config::ipv4`]), TCP its [`TcpConfig`]. So this module sits above the
//! protocols it configures, and none of them imports it.
//!
//! A few bounds are constants rather than fields, fixed by a format or too
//! small to be worth a knob; each with Linux's value beside it:
//!
//! | bound | value | Linux |
//! |---|---|---|
//! | UDP sockets at once (`udp::MAX_SOCKETS`) | 4096 | no count: descriptors and udp_mem |
//! | a UDP socket's receive queue (`udp::DEFAULT_RECV_BUFFER`, SO_RCVBUF) | 212,992 accounted bytes | net.core.rmem_default, the same |
//! | frames waiting for the device (`buffer::MAX_TX_QUEUE`) | 4096 | a TAP's qdisc, txqueuelen 500 (TUN_READQ_SIZE) |
//! | frames we wrote that the kernel's NAPI thread has not taken yet, without offloads (`device::tap::NAPI_QUEUE_BYTES`, TUNSETSNDBUF) | 16 MiB of skb truesize (about 7,000 full frames; a few connections' data in flight) | netdev_max_backlog, 1000 frames (a TAP without NAPI) |
//! | frames the kernel holds for us on the TAP (its txqueuelen, raised on open: `device::tap::QUEUE_LEN`) | at least 4096 | 1000 (`ip tuntap add`), 500 (TUN_READQ_SIZE); a NIC's receive ring 256-4096 |
//! | the SACK scoreboard (`tcp::MAX_SACK_RANGES`) | 32 ranges | one entry per segment in the retransmit queue |
//! | SO_SNDBUF / SO_RCVBUF set by the user (`tcp::MIN_BUFFER`, `tcp::MAX_BUFFER`) | 256 B to 16 MiB | about 2-4 KiB to wmem_max / rmem_max (208 KiB) |
//! | a TCP send buffer grown by itself, SO_SNDBUF left at its default (`TcpConfig::wmem_max`) | off in the core; 4 MiB in `tapstack up` (`tcp::AUTOTUNE_WMEM_MAX`) | tcp_wmem[2], 4 MiB |
//! | a TCP receive buffer grown by itself, SO_RCVBUF left at its default (`TcpConfig::rmem_max`) | off in the core; 6 MiB in `tapstack up` (`tcp::AUTOTUNE_RMEM_MAX`) | tcp_rmem[2], 6 MiB |
//! | frames' buffers kept in TCP receive buffers instead of copied from (zero-copy receive, `buffer::MAX_KEPT_BUFFERS`) | 32 at once, stack-wide (2 MiB); each at least half full, so a receive buffer holds at most twice its window in them, beside its ring | no count: an skb's truesize is charged to rcvbuf, and a queue whose overhead grows is collapsed into copies |
//! | storage an empty TCP buffer keeps once idle (`tcp::recv::FIRST_STORAGE`, `tcp::send::KEPT_STORAGE`) | 4 KiB each | none: sk_buffs are freed as read or acknowledged |
//! | the smallest path MTU taken from ICMP (`MIN_PMTU`) | 552 | ip_rt_min_pmtu, 552 |
//! | a SYN cookie's validity (`syncookie::MAX_AGE`) | 2 minutes | MAX_SYNCOOKIE_AGE, 2 |
//! | descriptors of the sockets API (`sockets_api::fd_table::MAX_FDS`) | 1024, raised up to 2^20 | RLIMIT_NOFILE, 1024 soft |

use crate::arp::ArpConfig;
use crate::ethernet::MacAddr;
use crate::ipv4::reassembly::ReassemblyConfig;
use crate::ipv4::Ipv4Config;
use crate::offload::Offloads;
use crate::tcp::TcpConfig;
use std::net::Ipv4Addr;

/// What the stack is on the link, and how it behaves.
#[derive(Clone, Debug)]
pub struct Config {
    /// Our MAC address.
    pub mac: MacAddr,
    /// Our IPv4 address.
    pub addr: Ipv4Addr,
    /// Prefix length of the on-link subnet (for example 24).
    pub prefix_len: u8,
    /// Default gateway for destinations off the subnet; without one they are unreachable.
    pub gateway: Option<Ipv4Addr>,
    /// Largest IP datagram on the link (default 1500, Ethernet's, as Linux's
    /// default for it). Frames on the wire are 14 bytes more.
    pub mtu: u16,
    /// Time to live of the datagrams we send (default 64, as Linux).
    pub ttl: u8,
    /// ICMP error messages per second (RFC 1122 section 3.2.2 asks for a limit;
    /// default 100). Linux: 1 per second per destination (icmp_ratelimit
    /// 1000 ms) under 1000 per second in all (icmp_msgs_per_sec).
    pub icmp_error_rate: u32,
    /// Burst of ICMP errors allowed above the rate (default 50; Linux's
    /// icmp_msgs_burst is 50).
    pub icmp_error_burst: u32,
    /// Seed of every random choice the stack makes (IP identification, ephemeral
    /// ports, the ISN secret): a run is reproducible from its seed.
    pub seed: u64,
    /// What the device offloads (default: nothing). Set it to what the device
    /// reports (`Device::offloads`): inbound GSO segments are taken beyond the
    /// MTU only with `offload.rx`. Linux: the device's features (`ethtool -k`).
    pub offload: Offloads,
    /// With `offload.tso`: the largest IP datagram a TCP GSO segment makes
    /// (default 65535, IPv4's limit; at least the MTU). The segment's payload
    /// is the most whole MSS that fit beside the headers, so at the default a
    /// segment carries 45 segments of 1448 bytes (65160). Linux: the device's
    /// gso_max_size, 65536 for a TAP (`ip -d link`), whose IPv4 datagrams are
    /// cut at 65535 too.
    pub gso_max_size: u16,
    /// Datagrams to ourselves (our address, 127.0.0.0/8) waiting to be delivered
    /// by the next round of the driver (default 1000); beyond it they are dropped
    /// and counted (`LoopbackQueueFull`). Linux: a loopback frame waits in the
    /// per-CPU backlog, net.core.netdev_max_backlog, default 1000. The frames
    /// delivered and not yet shown to a capture are kept up to the same bound.
    pub loopback_queue: usize,
    /// ARP's cache, queues and timers (see [`ArpConfig`]'s fields). A next hop
    /// that never answers fails `max_requests` requests `retry_interval` apart
    /// after the first: 3 s by default, as Linux (mcast_solicit 3 requests,
    /// retrans_time_ms 1000). What waited for it is reported to its transport
    /// as host unreachable: a connect being opened fails with EHOSTUNREACH (a
    /// blocking connect on a TAP: 3.0 s, the kernel's beside it 3.1 s), an
    /// established connection only keeps it as a soft error. Such reports wait
    /// for the stack's next poll, at most `ArpConfig::max_held_frames` of them
    /// (1445 by default; Linux has no bound of its own: it sends itself an
    /// ICMP host unreachable per packet). The frames held while an address
    /// resolves are bounded in bytes, per address as Linux's
    /// unres_qlen_bytes (212,992 bytes, ours the same) and for all addresses
    /// together (2 MiB; Linux: none beyond gc_thresh3 1024 neighbours).
    pub arp: ArpConfig,
    pub reassembly: ReassemblyConfig,
    /// TCP's limits, timers and the options new sockets start with (see
    /// [`TcpConfig`]'s fields for each default).
    pub tcp: TcpConfig,
}

impl Config {
    /// A configuration with the defaults documented on each field.
    pub fn new(mac: MacAddr, addr: Ipv4Addr, prefix_len: u8) -> Config {
        Config {
            mac,
            addr,
            prefix_len,
            gateway: None,
            mtu: 1500,
            ttl: 64,
            icmp_error_rate: 100,
            icmp_error_burst: 50,
            seed: 0,
            offload: Offloads::default(),
            gso_max_size: u16::MAX,
            loopback_queue: 1000,
            arp: ArpConfig::default(),
            reassembly: ReassemblyConfig::default(),
            tcp: TcpConfig::default(),
        }
    }

    /// What IPv4 needs of this configuration: address, subnet, gateway, MTU.
    pub fn ipv4(&self) -> Ipv4Config {
        Ipv4Config { addr: self.addr, prefix_len: self.prefix_len, gateway: self.gateway, mtu: self.mtu }
    }

    /// The subnet mask as an integer.
    pub fn netmask(&self) -> u32 {
        self.ipv4().netmask()
    }

    /// The subnet's directed broadcast address.
    pub fn subnet_broadcast(&self) -> Ipv4Addr {
        self.ipv4().subnet_broadcast()
    }

    /// Whether `ip` is on our subnet, reachable without a gateway.
    pub fn is_on_link(&self, ip: Ipv4Addr) -> bool {
        self.ipv4().is_on_link(ip)
    }

    /// Whether `ip` is one of ours: our address, or any of 127.0.0.0/8.
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.ipv4().is_local(ip)
    }

    /// Whether `ip` is a broadcast address for us: limited or directed.
    pub fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.ipv4().is_broadcast(ip)
    }

    /// Checks the configuration, with a message fit for a user.
    pub fn validate(&self) -> Result<(), String> {
        if self.prefix_len > 32 {
            return Err(format!("prefix length {} is more than 32", self.prefix_len));
        }
        if self.mtu < 576 || self.mtu > 9000 {
            return Err(format!("MTU {} is outside 576..=9000 (RFC 791 requires 576)", self.mtu));
        }
        if self.mac.is_multicast() || self.mac == MacAddr::ZERO {
            return Err(format!("{} cannot be a host's MAC address", self.mac));
        }
        // 127/8 is the loopback's, never a link's (RFC 1122 section 3.2.1.3 (g)).
        let special = self.addr.is_loopback() || self.addr.is_broadcast() || self.addr.is_multicast();
        if self.addr.is_unspecified() || special {
            return Err(format!("{} cannot be a host's address", self.addr));
        }
        if let Some(gw) = self.gateway {
            if !self.is_on_link(gw) {
                return Err(format!("gateway {gw} is not on the subnet {}/{}", self.addr, self.prefix_len));
            }
        }
        if self.gso_max_size < self.mtu {
            return Err(format!("GSO size {} is below the MTU {}", self.gso_max_size, self.mtu));
        }
        if self.ttl == 0 {
            return Err("TTL 0 would never leave the host".into());
        }
        Ok(())
    }
}
