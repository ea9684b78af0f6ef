//! UDP (RFC 768, RFC 1122 section 4.1): the socket table, demultiplexing,
//! checksums, bounded receive queues and ICMP error reporting.
//!
//! This is the protocol half of a UDP socket. The BSD-socket semantics on top
//! (descriptors, blocking, options with Linux's units) live in the `sockets-api`
//! crate, which calls the methods here with the IP layer borrowed from the stack
//! (`let (udp, net) = stack.udp();`).
//!
//! UDP sees the layers below only as a [`UdpNet`]: our address, broadcast and
//! route checks, the stack's random numbers, its counters, and a way to send a
//! datagram or an ICMP error. The stack's IP layer implements it (on the
//! composition side), so this module never names the IP layer.
//!
//! # Resource limits
//!
//! - At most [`MAX_SOCKETS`] sockets at once ([`UdpError::TooManySockets`] beyond).
//! - Each socket's receive queue holds datagrams while the bytes they account for
//!   (payload plus [`DATAGRAM_OVERHEAD`] each, like Linux's `skb->truesize`) stay
//!   within its receive buffer ([`DEFAULT_RECV_BUFFER`] unless changed). A datagram
//!   that does not fit is dropped and counted as
//!   [`DropReason::UdpReceiveBufferFull`]; the queue never grows past its limit,
//!   except that an empty queue always takes one datagram (as Linux does), so a
//!   65507-byte datagram can be received with a small buffer.
//! - Payload buffers are recycled through a pool of at most [`POOL_BUFFERS`]
//!   buffers, so the steady-state receive path does not allocate.
//!
//! UDP has no timers: [`Udp::poll`] does nothing and [`Udp::poll_at`] is `None`.

use crate::checksum;
use crate::counters::{DropReason, UdpCounters};
use crate::icmp::{self, IcmpError, IcmpErrorKind};
use crate::ipv4::{IpPacket, PAYLOAD_OFFSET};
use crate::time::Instant;
use etherparse::{IpNumber, UdpHeader, UdpHeaderSlice};
use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::{Range, RangeInclusive};

/// Length of the UDP header (RFC 768).
pub const HEADER_LEN: usize = 8;
/// Largest UDP payload over IPv4: 65535 less the 20-byte IP and 8-byte UDP headers.
pub const MAX_DATAGRAM: usize = 65507;
/// Ports handed out by an implicit or port-0 bind (the IANA dynamic range, RFC 6335).
pub const EPHEMERAL_PORTS: RangeInclusive<u16> = 49152..=65535;
/// Receive buffer of a new socket, in accounted bytes (Linux's `net.core.rmem_default`).
pub const DEFAULT_RECV_BUFFER: usize = 212_992;
/// Bytes each queued datagram accounts for beyond its payload (its bookkeeping),
/// so that a flood of empty datagrams is bounded too.
pub const DATAGRAM_OVERHEAD: usize = 256;
/// Most UDP sockets open at once.
pub const MAX_SOCKETS: usize = 4096;
/// Most spare payload buffers kept for reuse.
pub const POOL_BUFFERS: usize = 256;
/// Spare buffers larger than this are freed rather than pooled, so that one burst of
/// large datagrams does not pin memory forever.
const POOL_MAX_CAPACITY: usize = 16 * 1024;
/// Capacity of a fresh payload buffer: a full Ethernet payload.
const POOL_INITIAL_CAPACITY: usize = 1500;

/// What UDP needs from the layers below.
pub trait UdpNet {
    /// Whether `ip` is one of ours: our address, or 127/8 (RFC 1122 section 3.2.1.3).
    fn is_local(&self, ip: Ipv4Addr) -> bool;
    /// Our address a datagram to `dst` from a socket bound to `bound` leaves from;
    /// `None` when one bound to 127/8 would leave the host (EINVAL).
    fn source_for(&self, bound: Ipv4Addr, dst: Ipv4Addr) -> Option<Ipv4Addr>;
    /// Whether `ip` is a broadcast address on our link (limited or the subnet's).
    fn is_broadcast(&self, ip: Ipv4Addr) -> bool;
    /// Whether there is a route to `dst` (RFC 1122 section 3.3.1.1).
    fn has_route(&self, dst: Ipv4Addr) -> bool;
    /// A number drawn uniformly from `range`, from the stack's one generator.
    fn random_range(&mut self, range: Range<u32>) -> u32;
    fn counters(&mut self) -> &mut UdpCounters;
    /// Builds the datagram from `src` (one of our addresses) to `dst` (with
    /// [`write_datagram`]) and hands it to IP, which may fragment it.
    fn send_datagram(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        ttl: Option<u8>,
        data: &[u8],
    ) -> Result<(), DropReason>;
    /// Sends an ICMP error about `about`, if RFC 1122 section 3.2.2 and the rate
    /// limit allow. Returns whether it was sent.
    fn send_icmp_error(&mut self, now: Instant, about: &IpPacket<'_>, ty: u8, code: u8) -> bool;
}

/// Names one UDP socket. Stale handles (of a closed socket) are refused with
/// [`UdpError::BadHandle`], even when the slot has been reused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SocketHandle {
    index: u32,
    generation: u32,
}

impl SocketHandle {
    /// The socket's slot, as `Udp::drain_changed` names it.
    pub fn index(self) -> u32 {
        self.index
    }
}

/// What a UDP call can fail with. Each maps to one Linux errno (named in the docs);
/// the sockets API does the mapping.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UdpError {
    /// The handle names no open socket (EBADF).
    BadHandle,
    /// [`MAX_SOCKETS`] are open (ENFILE).
    TooManySockets,
    /// The socket is already bound (EINVAL).
    AlreadyBound,
    /// Another socket has this address and port, and they do not both allow reuse (EADDRINUSE).
    AddrInUse,
    /// The address is not one of ours (EADDRNOTAVAIL).
    AddrNotAvailable,
    /// No ephemeral port is free (EADDRINUSE from bind, EAGAIN from an implicit bind).
    NoEphemeralPort,
    /// An invalid argument, such as destination port 0 (EINVAL).
    InvalidArgument,
    /// The payload exceeds [`MAX_DATAGRAM`] (EMSGSIZE).
    MessageTooLong,
    /// A broadcast destination without the broadcast option (EACCES).
    BroadcastDenied,
    /// No destination given and the socket is not connected (EDESTADDRREQ).
    DestAddrRequired,
    /// Nothing to receive (EAGAIN).
    WouldBlock,
    /// No route to the destination's network (ENETUNREACH).
    NetUnreachable,
    /// The host is unreachable (EHOSTUNREACH): ICMP host-unreachable codes, or ARP
    /// never resolved the next hop.
    HostUnreachable,
    /// ICMP port unreachable (ECONNREFUSED).
    ConnectionRefused,
    /// ICMP protocol unreachable (ENOPROTOOPT).
    ProtocolUnreachable,
    /// ICMP destination host unknown (EHOSTDOWN).
    HostDown,
    /// ICMP source host isolated (ENONET).
    HostIsolated,
    /// ICMP communication administratively prohibited (EACCES).
    Prohibited,
    /// ICMP parameter problem (EPROTO).
    ParameterProblem,
}

/// What a socket is ready for, for poll(2).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// A datagram is queued.
    pub readable: bool,
    /// A send would not block. Always true: a datagram goes to the transmit
    /// queue at once, and UDP keeps no send buffer.
    pub writable: bool,
    /// An error is pending.
    pub error: bool,
}

/// One queued datagram.
#[derive(Debug)]
struct Datagram {
    src: SocketAddrV4,
    data: Vec<u8>,
}

/// The state of one UDP socket.
#[derive(Debug)]
pub struct Socket {
    /// Local address and port; `None` while unbound.
    local: Option<SocketAddrV4>,
    /// The port was chosen by bind(2), not implicitly (Linux's SOCK_BINDPORT_LOCK):
    /// a disconnect keeps it.
    port_locked: bool,
    /// The address was chosen by bind(2) (SOCK_BINDADDR_LOCK).
    addr_locked: bool,
    remote: Option<SocketAddrV4>,
    reuse_addr: bool,
    broadcast: bool,
    ttl: Option<u8>,
    rx: VecDeque<Datagram>,
    rx_used: usize,
    rx_limit: usize,
    /// Datagrams dropped because the receive queue was full.
    rx_drops: u64,
    error: Option<UdpError>,
}

impl Socket {
    fn new() -> Socket {
        Socket {
            local: None,
            port_locked: false,
            addr_locked: false,
            remote: None,
            reuse_addr: false,
            broadcast: false,
            ttl: None,
            rx: VecDeque::new(),
            rx_used: 0,
            rx_limit: DEFAULT_RECV_BUFFER,
            rx_drops: 0,
            error: None,
        }
    }

    /// The local address and port, if bound.
    pub fn local(&self) -> Option<SocketAddrV4> {
        self.local
    }

    /// The connected peer, if any.
    pub fn remote(&self) -> Option<SocketAddrV4> {
        self.remote
    }

    pub fn reuse_addr(&self) -> bool {
        self.reuse_addr
    }

    pub fn broadcast(&self) -> bool {
        self.broadcast
    }

    pub fn ttl(&self) -> Option<u8> {
        self.ttl
    }

    /// The receive buffer limit in accounted bytes.
    pub fn recv_buffer(&self) -> usize {
        self.rx_limit
    }

    /// Bytes the queued datagrams account for.
    pub fn recv_queued_bytes(&self) -> usize {
        self.rx_used
    }

    /// Datagrams queued.
    pub fn recv_queued(&self) -> usize {
        self.rx.len()
    }

    /// Datagrams this socket dropped because its receive buffer was full.
    pub fn recv_drops(&self) -> u64 {
        self.rx_drops
    }

    /// The length of the next datagram, if any (FIONREAD).
    pub fn next_len(&self) -> Option<usize> {
        self.rx.front().map(|d| d.data.len())
    }

    /// The error that the next call will report, without clearing it.
    pub fn pending_error(&self) -> Option<UdpError> {
        self.error
    }

    fn accepts(&self, src: SocketAddrV4, dst: Ipv4Addr) -> Option<u8> {
        let local = self.local?;
        let mut score = 0;
        if !local.ip().is_unspecified() {
            if *local.ip() != dst {
                return None;
            }
            score += 1;
        }
        if let Some(remote) = self.remote {
            if remote != src {
                return None;
            }
            score += 2;
        }
        Some(score)
    }
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    socket: Option<Socket>,
}

/// UDP: every socket, indexed by local port for demultiplexing.
#[derive(Debug, Default)]
pub struct Udp {
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    open: usize,
    /// Local port -> sockets bound to it, in bind order. A datagram is matched
    /// against the sockets of its port only, never against every socket.
    by_port: HashMap<u16, Vec<u32>>,
    pool: Vec<Vec<u8>>,
    /// Readiness hook: the slots that got a datagram or an error since the last
    /// [`Udp::drain_changed`], each once (`changed_mark` dedupes).
    changed: Vec<u32>,
    changed_mark: Vec<bool>,
}

impl Udp {
    pub fn new() -> Udp {
        Udp::default()
    }

    // ---- sockets ---------------------------------------------------------------

    /// Opens an unbound socket (socket(2)).
    pub fn open(&mut self) -> Result<SocketHandle, UdpError> {
        if self.open >= MAX_SOCKETS {
            return Err(UdpError::TooManySockets);
        }
        self.open += 1;
        let index = match self.free_slots.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { generation: 0, socket: None });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.socket = Some(Socket::new());
        Ok(SocketHandle { index, generation: slot.generation })
    }

    /// Closes a socket, freeing its port and queued datagrams.
    pub fn close(&mut self, h: SocketHandle) -> Result<(), UdpError> {
        self.get(h)?;
        self.unhash(h.index);
        let slot = &mut self.slots[h.index as usize];
        let mut sock = slot.socket.take().expect("checked above");
        slot.generation = slot.generation.wrapping_add(1);
        self.free_slots.push(h.index);
        self.open -= 1;
        for d in sock.rx.drain(..) {
            recycle(&mut self.pool, d.data);
        }
        Ok(())
    }

    /// The socket's state, for getters.
    pub fn socket(&self, h: SocketHandle) -> Result<&Socket, UdpError> {
        self.get(h)
    }

    /// Number of open sockets.
    pub fn len(&self) -> usize {
        self.open
    }

    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Every open socket with its handle, in slot order (an `ss -ua` view).
    pub fn sockets(&self) -> impl Iterator<Item = (SocketHandle, &Socket)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, slot)| {
            let s = slot.socket.as_ref()?;
            Some((SocketHandle { index: i as u32, generation: slot.generation }, s))
        })
    }

    fn get(&self, h: SocketHandle) -> Result<&Socket, UdpError> {
        match self.slots.get(h.index as usize) {
            Some(Slot { generation, socket: Some(s) }) if *generation == h.generation => Ok(s),
            _ => Err(UdpError::BadHandle),
        }
    }

    fn get_mut(&mut self, h: SocketHandle) -> Result<&mut Socket, UdpError> {
        match self.slots.get_mut(h.index as usize) {
            Some(Slot { generation, socket: Some(s) }) if *generation == h.generation => Ok(s),
            _ => Err(UdpError::BadHandle),
        }
    }

    fn sock(&self, index: u32) -> &Socket {
        self.slots[index as usize].socket.as_ref().expect("indexed sockets are open")
    }

    // ---- options ---------------------------------------------------------------

    /// SO_REUSEADDR: whether this socket may share its port with others that allow it too.
    pub fn set_reuse_addr(&mut self, h: SocketHandle, on: bool) -> Result<(), UdpError> {
        self.get_mut(h)?.reuse_addr = on;
        Ok(())
    }

    /// SO_BROADCAST: whether this socket may send to broadcast addresses (RFC 1122
    /// section 4.1.3.6 leaves receiving broadcasts to every socket).
    pub fn set_broadcast(&mut self, h: SocketHandle, on: bool) -> Result<(), UdpError> {
        self.get_mut(h)?.broadcast = on;
        Ok(())
    }

    /// IP_TTL for the datagrams this socket sends (`None`: the stack's default).
    /// RFC 1122 section 4.1.4 asks that the application be able to set it.
    pub fn set_ttl(&mut self, h: SocketHandle, ttl: Option<u8>) -> Result<(), UdpError> {
        self.get_mut(h)?.ttl = ttl;
        Ok(())
    }

    /// The receive buffer limit in accounted bytes (see the module docs). Datagrams
    /// already queued stay; new ones are dropped until the queue is below the limit.
    pub fn set_recv_buffer(&mut self, h: SocketHandle, bytes: usize) -> Result<(), UdpError> {
        self.get_mut(h)?.rx_limit = bytes;
        Ok(())
    }

    // ---- addresses -------------------------------------------------------------

    /// Binds to `addr` (bind(2)). Port 0 picks a free port from
    /// [`EPHEMERAL_PORTS`] at random. The address must be unspecified, ours, or a
    /// broadcast address of ours (to receive only broadcasts, as Linux allows).
    pub fn bind(&mut self, net: &mut dyn UdpNet, h: SocketHandle, addr: SocketAddrV4) -> Result<(), UdpError> {
        let s = self.get(h)?;
        if s.local.is_some() {
            return Err(UdpError::AlreadyBound);
        }
        let ip = *addr.ip();
        if !(ip.is_unspecified() || net.is_local(ip) || net.is_broadcast(ip)) {
            return Err(UdpError::AddrNotAvailable);
        }
        let reuse = s.reuse_addr;
        let port = if addr.port() == 0 {
            self.pick_port(net).ok_or(UdpError::NoEphemeralPort)?
        } else {
            if self.conflicts(addr.port(), ip, reuse) {
                return Err(UdpError::AddrInUse);
            }
            addr.port()
        };
        let s = self.get_mut(h)?;
        s.local = Some(SocketAddrV4::new(ip, port));
        s.port_locked = addr.port() != 0;
        s.addr_locked = !ip.is_unspecified();
        self.by_port.entry(port).or_default().push(h.index);
        Ok(())
    }

    /// Sets the default destination and accepts datagrams only from it (connect(2)
    /// on a datagram socket). Binds an ephemeral port first if unbound, and fixes the
    /// local address to ours if it was unspecified, as Linux does. A broadcast peer
    /// needs the broadcast option.
    pub fn connect(&mut self, net: &mut dyn UdpNet, h: SocketHandle, remote: SocketAddrV4) -> Result<(), UdpError> {
        let s = self.get(h)?;
        let broadcast = net.is_broadcast(*remote.ip());
        if broadcast && !s.broadcast {
            return Err(UdpError::BroadcastDenied);
        }
        if !net.has_route(*remote.ip()) {
            return Err(UdpError::NetUnreachable);
        }
        let bound = s.local.map_or(Ipv4Addr::UNSPECIFIED, |l| *l.ip());
        let me = net.source_for(bound, *remote.ip()).ok_or(UdpError::InvalidArgument)?;
        if s.local.is_none() {
            self.autobind(net, h)?;
        }
        let s = self.get_mut(h)?;
        let local = s.local.expect("bound above");
        if local.ip().is_unspecified() {
            s.local = Some(SocketAddrV4::new(me, local.port()));
        }
        s.remote = Some(remote);
        Ok(())
    }

    /// Dissolves the association (connect(2) with AF_UNSPEC): accepts datagrams from
    /// anyone again. An address or port that connect chose is given up; one that
    /// bind chose is kept (Linux's `udp_disconnect`).
    pub fn disconnect(&mut self, h: SocketHandle) -> Result<(), UdpError> {
        let s = self.get_mut(h)?;
        s.remote = None;
        if let Some(local) = s.local {
            if !s.addr_locked {
                s.local = Some(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, local.port()));
            }
            if !s.port_locked {
                // Out of the port map before the port is forgotten: unhash finds
                // the socket's entry by its port.
                self.unhash(h.index);
                self.get_mut(h)?.local = None;
            }
        }
        Ok(())
    }

    /// Binds to an ephemeral port on the unspecified address (the implicit bind of
    /// sendto(2) or connect(2) on an unbound socket).
    fn autobind(&mut self, net: &mut dyn UdpNet, h: SocketHandle) -> Result<(), UdpError> {
        let port = self.pick_port(net).ok_or(UdpError::NoEphemeralPort)?;
        let s = self.get_mut(h)?;
        s.local = Some(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
        s.port_locked = false;
        s.addr_locked = false;
        self.by_port.entry(port).or_default().push(h.index);
        Ok(())
    }

    /// A port from [`EPHEMERAL_PORTS`] that no socket uses: a random start, then the
    /// next free one. Successive choices are unpredictable to an off-path attacker
    /// (RFC 6056 section 3.3.1, "simple port randomization").
    fn pick_port(&self, net: &mut dyn UdpNet) -> Option<u16> {
        let (lo, hi) = (*EPHEMERAL_PORTS.start() as u32, *EPHEMERAL_PORTS.end() as u32);
        let count = hi - lo + 1;
        let start: u32 = net.random_range(0..count);
        (0..count).map(|i| (lo + (start + i) % count) as u16).find(|p| !self.by_port.contains_key(p))
    }

    /// Whether binding `ip:port` would clash with a socket already there: their
    /// addresses overlap (equal, or either unspecified) and not both allow reuse.
    fn conflicts(&self, port: u16, ip: Ipv4Addr, reuse: bool) -> bool {
        let Some(list) = self.by_port.get(&port) else { return false };
        list.iter().any(|&i| {
            let other = self.sock(i);
            let oip = *other.local.expect("indexed sockets are bound").ip();
            let overlap = oip.is_unspecified() || ip.is_unspecified() || oip == ip;
            overlap && !(reuse && other.reuse_addr)
        })
    }

    fn unhash(&mut self, index: u32) {
        let Some(port) = self.sock(index).local.map(|l| l.port()) else { return };
        if let Some(list) = self.by_port.get_mut(&port) {
            list.retain(|&i| i != index);
            if list.is_empty() {
                self.by_port.remove(&port);
            }
        }
    }

    // ---- data ------------------------------------------------------------------

    /// Sends `data` as one datagram to `dst`, or to the connected peer when `dst` is
    /// `None` (sendto(2) and send(2)). Binds an ephemeral port first if unbound.
    /// Datagrams larger than the MTU leave in IP fragments.
    ///
    /// Checks, in Linux's order: size ([`UdpError::MessageTooLong`]), destination
    /// ([`UdpError::DestAddrRequired`], [`UdpError::InvalidArgument`] for port 0),
    /// route ([`UdpError::NetUnreachable`]), broadcast permission
    /// ([`UdpError::BroadcastDenied`]), then a pending error is reported (and cleared)
    /// instead of sending.
    pub fn send_to(
        &mut self,
        now: Instant,
        net: &mut dyn UdpNet,
        h: SocketHandle,
        dst: Option<SocketAddrV4>,
        data: &[u8],
    ) -> Result<usize, UdpError> {
        let s = self.get(h)?;
        if data.len() > MAX_DATAGRAM {
            return Err(UdpError::MessageTooLong);
        }
        let dst = match dst {
            Some(d) if d.port() == 0 => return Err(UdpError::InvalidArgument),
            Some(d) => d,
            None => s.remote.ok_or(UdpError::DestAddrRequired)?,
        };
        if !net.has_route(*dst.ip()) {
            return Err(UdpError::NetUnreachable);
        }
        if net.is_broadcast(*dst.ip()) && !s.broadcast {
            return Err(UdpError::BroadcastDenied);
        }
        let bound = s.local.map_or(Ipv4Addr::UNSPECIFIED, |l| *l.ip());
        let src_ip = net.source_for(bound, *dst.ip()).ok_or(UdpError::InvalidArgument)?;
        if s.local.is_none() {
            self.autobind(net, h)?;
        }
        let s = self.get_mut(h)?;
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let src = SocketAddrV4::new(src_ip, s.local.expect("bound above").port());
        let ttl = s.ttl;
        net.send_datagram(now, src, dst, ttl, data).map_err(|reason| match reason {
            DropReason::IpCannotFragment => UdpError::MessageTooLong,
            _ => UdpError::NetUnreachable,
        })?;
        net.counters().tx_datagrams += 1;
        Ok(data.len())
    }

    /// Takes (or with `peek`, copies without taking) the next datagram into `buf`
    /// (recvfrom(2)). Returns the datagram's full length, which exceeds `buf.len()`
    /// when it was truncated (the rest is discarded unless peeking), and its source.
    /// A pending error is reported (and cleared) first, as Linux does.
    pub fn recv_from(
        &mut self,
        h: SocketHandle,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<(usize, SocketAddrV4), UdpError> {
        let s = self.get_mut(h)?;
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let d = s.rx.front().ok_or(UdpError::WouldBlock)?;
        let n = d.data.len().min(buf.len());
        buf[..n].copy_from_slice(&d.data[..n]);
        let result = (d.data.len(), d.src);
        if !peek {
            let d = s.rx.pop_front().expect("front exists");
            s.rx_used -= d.data.len() + DATAGRAM_OVERHEAD;
            recycle(&mut self.pool, d.data);
        }
        Ok(result)
    }

    /// Takes the pending error, if any (SO_ERROR).
    pub fn take_error(&mut self, h: SocketHandle) -> Result<Option<UdpError>, UdpError> {
        Ok(self.get_mut(h)?.error.take())
    }

    /// What the socket is ready for.
    pub fn readiness(&self, h: SocketHandle) -> Result<Readiness, UdpError> {
        let s = self.get(h)?;
        Ok(Readiness { readable: !s.rx.is_empty(), writable: true, error: s.error.is_some() })
    }

    // ---- the stack's calls -----------------------------------------------------

    /// Takes an inbound datagram (RFC 768; RFC 1122 section 4.1.3).
    ///
    /// Verifies the length and the checksum (4.1.3.4: a datagram with a bad checksum
    /// MUST be discarded silently; a zero checksum means the sender computed none),
    /// then delivers to the socket that matches best (connected to the source, then
    /// bound to the destination address, then bound to any address), or to every
    /// matching socket if it came to a broadcast address (4.1.3.6). Without a socket
    /// it answers port unreachable (4.1.3.1; `send_icmp_error` applies the rate
    /// limit and never answers a broadcast).
    pub fn input(&mut self, now: Instant, net: &mut dyn UdpNet, packet: &IpPacket<'_>) -> Result<(), DropReason> {
        let header = UdpHeaderSlice::from_slice(packet.payload).map_err(|_| DropReason::UdpTruncated)?;
        let len = header.length() as usize;
        // The UDP length may be shorter than the IP payload (the rest is ignored),
        // never longer, nor shorter than the header.
        if len < HEADER_LEN || len > packet.payload.len() {
            return Err(DropReason::UdpTruncated);
        }
        let datagram = &packet.payload[..len];
        if header.checksum() != 0 && !packet.csum_trusted && !checksum_ok(packet.src, packet.dst, datagram) {
            return Err(DropReason::UdpBadChecksum);
        }
        let src = SocketAddrV4::new(packet.src, header.source_port());
        let port = header.destination_port();
        let data = &datagram[HEADER_LEN..];
        let candidates = self.by_port.get(&port).map(|v| v.as_slice()).unwrap_or(&[]);
        let mut matched = false;
        let mut delivered = false;
        if packet.broadcast {
            for &i in candidates {
                if self.sock(i).accepts(src, packet.dst).is_some() {
                    matched = true;
                    delivered |= enqueue(&mut self.slots, &mut self.pool, i, src, data);
                    mark(&mut self.changed, &mut self.changed_mark, i);
                }
            }
        } else {
            let mut best: Option<(u8, u32)> = None;
            for &i in candidates {
                if let Some(score) = self.sock(i).accepts(src, packet.dst) {
                    if best.is_none_or(|(b, _)| score > b) {
                        best = Some((score, i));
                    }
                }
            }
            if let Some((_, i)) = best {
                matched = true;
                delivered = enqueue(&mut self.slots, &mut self.pool, i, src, data);
                mark(&mut self.changed, &mut self.changed_mark, i);
            }
        }
        if !matched {
            net.send_icmp_error(now, packet, icmp::TYPE_DEST_UNREACHABLE, icmp::CODE_PORT_UNREACHABLE);
            return Err(DropReason::UdpNoSocket);
        }
        if !delivered {
            return Err(DropReason::UdpReceiveBufferFull);
        }
        net.counters().rx_datagrams += 1;
        Ok(())
    }

    /// Takes an ICMP error about a datagram we sent (RFC 1122 section 4.1.3.3: UDP
    /// MUST pass ICMP errors to the application). Like Linux without IP_RECVERR, only
    /// a connected socket hears of it, and only of a hard error; it is reported by the
    /// socket's next call (ECONNREFUSED for port unreachable, and so on).
    /// A locally detected failure (ARP never answered) is reported too, as EHOSTUNREACH.
    pub fn icmp_error(&mut self, _now: Instant, _net: &mut dyn UdpNet, err: &IcmpError) {
        let Some(error) = udp_error_of(err.kind) else { return };
        let (Some(sport), Some(dport)) = (err.src_port(), err.dst_port()) else { return };
        let remote = SocketAddrV4::new(err.dst, dport);
        let Some(list) = self.by_port.get(&sport) else { return };
        for &i in list {
            let s = self.slots[i as usize].socket.as_mut().expect("indexed sockets are open");
            if s.remote == Some(remote) {
                s.error = Some(error);
                mark(&mut self.changed, &mut self.changed_mark, i);
            }
        }
    }

    /// Readiness hook: hands over (and forgets) the slot index of every socket
    /// that got a datagram or an error since the last call, each once: O(changed).
    pub fn drain_changed(&mut self, mut f: impl FnMut(u32)) {
        for &i in &self.changed {
            self.changed_mark[i as usize] = false;
            f(i);
        }
        self.changed.clear();
    }

    /// UDP has no timers.
    pub fn poll(&mut self, _now: Instant, _net: &mut dyn UdpNet) {}

    /// UDP has no timers.
    pub fn poll_at(&self) -> Option<Instant> {
        None
    }
}

/// Which ICMP errors reach a connected socket, and as what: Linux's
/// `icmp_err_convert` table, keeping only the entries it marks fatal.
fn udp_error_of(kind: IcmpErrorKind) -> Option<UdpError> {
    match kind {
        IcmpErrorKind::DestUnreachable { code, .. } => match code {
            icmp::CODE_PROTOCOL_UNREACHABLE => Some(UdpError::ProtocolUnreachable),
            icmp::CODE_PORT_UNREACHABLE => Some(UdpError::ConnectionRefused),
            6 | 9 => Some(UdpError::NetUnreachable), // network unknown, network prohibited
            7 => Some(UdpError::HostDown),           // host unknown
            8 => Some(UdpError::HostIsolated),
            10 | 14 | 15 => Some(UdpError::HostUnreachable), // host prohibited, precedence
            13 => Some(UdpError::Prohibited),
            _ => None, // net/host unreachable and fragmentation needed are soft
        },
        IcmpErrorKind::ParameterProblem { .. } => Some(UdpError::ParameterProblem),
        IcmpErrorKind::LocalHostUnreachable => Some(UdpError::HostUnreachable),
        IcmpErrorKind::TimeExceeded { .. } | IcmpErrorKind::SourceQuench => None,
    }
}

/// Lists slot `index` among the changed ones, once.
fn mark(list: &mut Vec<u32>, marked: &mut Vec<bool>, index: u32) {
    let i = index as usize;
    if i >= marked.len() {
        marked.resize(i + 1, false);
    }
    if !marked[i] {
        marked[i] = true;
        list.push(index);
    }
}

/// Queues a copy of `data` on socket `index` if its receive buffer has room.
fn enqueue(slots: &mut [Slot], pool: &mut Vec<Vec<u8>>, index: u32, src: SocketAddrV4, data: &[u8]) -> bool {
    let s = slots[index as usize].socket.as_mut().expect("indexed sockets are open");
    let cost = data.len() + DATAGRAM_OVERHEAD;
    if !s.rx.is_empty() && s.rx_used + cost > s.rx_limit {
        s.rx_drops += 1;
        return false;
    }
    let mut buf = pool.pop().unwrap_or_else(|| Vec::with_capacity(POOL_INITIAL_CAPACITY));
    buf.clear();
    buf.extend_from_slice(data);
    s.rx_used += cost;
    s.rx.push_back(Datagram { src, data: buf });
    true
}

fn recycle(pool: &mut Vec<Vec<u8>>, buf: Vec<u8>) {
    if pool.len() < POOL_BUFFERS && buf.capacity() <= POOL_MAX_CAPACITY {
        pool.push(buf);
    }
}

/// Appends a UDP header and `data` to `buf` (which already holds the reserved
/// Ethernet and IP headers) and fills in the checksum over the pseudo-header
/// (RFC 768; RFC 1122 section 4.1.3.4: we always generate it).
pub fn write_datagram(buf: &mut Vec<u8>, src: Ipv4Addr, src_port: u16, dst: SocketAddrV4, data: &[u8]) {
    debug_assert_eq!(buf.len(), PAYLOAD_OFFSET);
    let len = (HEADER_LEN + data.len()) as u16;
    let header = UdpHeader { source_port: src_port, destination_port: dst.port(), length: len, checksum: 0 };
    buf.extend_from_slice(&header.to_bytes());
    buf.extend_from_slice(data);
    let sum = checksum::transport(src, *dst.ip(), IpNumber::UDP, &[&buf[PAYLOAD_OFFSET..]]);
    // RFC 768: a computed zero is sent as all ones; zero means "no checksum".
    let sum = if sum == 0 { 0xffff } else { sum };
    buf[PAYLOAD_OFFSET + 6..PAYLOAD_OFFSET + 8].copy_from_slice(&sum.to_be_bytes());
}

/// Whether the checksum of an inbound datagram (header and data, as long as its
/// length field says) is right: the one's complement sum over the pseudo-header and
/// the datagram, checksum included, is all ones (its complement zero).
fn checksum_ok(src: Ipv4Addr, dst: Ipv4Addr, datagram: &[u8]) -> bool {
    checksum::transport(src, dst, IpNumber::UDP, &[datagram]) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::ETH_HEADER_LEN;
    use crate::config::Config;
    use crate::ethernet::{self, MacAddr};
    use crate::ipv4;
    use crate::{RxOutcome, Stack};
    use etherparse::EtherType;

    const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const MY_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const T0: Instant = Instant::ZERO;

    fn stack() -> Stack {
        Stack::new(Config::new(MY_MAC, ME, 24)).unwrap()
    }

    /// A frame carrying a UDP datagram from `src` to `dst`, checksummed.
    fn frame(src: SocketAddrV4, dst: SocketAddrV4, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; PAYLOAD_OFFSET];
        write_datagram(&mut f, *src.ip(), src.port(), dst, data);
        let payload_len = f.len() - PAYLOAD_OFFSET;
        ipv4::write_header(
            &mut f[ETH_HEADER_LEN..],
            *src.ip(),
            *dst.ip(),
            IpNumber::UDP,
            64,
            1,
            false,
            (0, false),
            payload_len,
        );
        let dst_mac = if dst.ip().is_broadcast() || *dst.ip() == Ipv4Addr::new(10, 0, 0, 255) {
            MacAddr::BROADCAST
        } else {
            MY_MAC
        };
        ethernet::write_header(&mut f, PEER_MAC, dst_mac, EtherType::IPV4);
        f
    }

    fn sent(stack: &mut Stack) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        stack.transmit(|f| out.push(f.to_vec()));
        out
    }

    fn bound(stack: &mut Stack, port: u16) -> SocketHandle {
        let (udp, net) = stack.udp();
        let h = udp.open().unwrap();
        udp.bind(net, h, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).unwrap();
        h
    }

    #[test]
    fn checksum_matches_etherparse_and_a_corrupted_byte_is_caught() {
        let mut buf = vec![0u8; PAYLOAD_OFFSET];
        let dst = SocketAddrV4::new(PEER, 7);
        write_datagram(&mut buf, ME, 5000, dst, b"hello, world");
        let ours = u16::from_be_bytes([buf[PAYLOAD_OFFSET + 6], buf[PAYLOAD_OFFSET + 7]]);
        let h = UdpHeader::without_ipv4_checksum(5000, 7, 12).unwrap();
        assert_eq!(ours, h.calc_checksum_ipv4_raw(ME.octets(), PEER.octets(), b"hello, world").unwrap());
        let d = &mut buf[PAYLOAD_OFFSET..];
        assert!(checksum_ok(ME, PEER, d));
        d[9] ^= 0x10;
        assert!(!checksum_ok(ME, PEER, d));
        // Odd lengths pad with a zero byte.
        let mut odd = vec![0u8; PAYLOAD_OFFSET];
        write_datagram(&mut odd, ME, 1, dst, b"abc");
        assert!(checksum_ok(ME, PEER, &odd[PAYLOAD_OFFSET..]));
    }

    #[test]
    fn delivers_with_source_and_rejects_bad_datagrams() {
        let mut st = stack();
        let h = bound(&mut st, 9000);
        let from = SocketAddrV4::new(PEER, 4000);
        let to = SocketAddrV4::new(ME, 9000);
        assert_eq!(st.receive(T0, &frame(from, to, b"one")), RxOutcome::Delivered);

        // A flipped payload bit fails the checksum.
        let mut bad = frame(from, to, b"two");
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(st.receive(T0, &bad), RxOutcome::Dropped(DropReason::UdpBadChecksum));
        // A zero checksum means "none" and is accepted (RFC 768) even with changed data.
        let mut none = frame(from, to, b"three");
        none[PAYLOAD_OFFSET + 6] = 0;
        none[PAYLOAD_OFFSET + 7] = 0;
        *none.last_mut().unwrap() ^= 1;
        assert_eq!(st.receive(T0, &none), RxOutcome::Delivered);
        // A length field longer than the IP payload, or shorter than the header.
        for len in [100u16, 7] {
            let mut f = frame(from, to, b"four");
            f[PAYLOAD_OFFSET + 4..PAYLOAD_OFFSET + 6].copy_from_slice(&len.to_be_bytes());
            assert_eq!(st.receive(T0, &f), RxOutcome::Dropped(DropReason::UdpTruncated));
        }

        let (udp, _) = st.udp();
        let mut buf = [0u8; 16];
        assert_eq!(udp.recv_from(h, &mut buf, false).unwrap(), (3, from));
        assert_eq!(&buf[..3], b"one");
        assert_eq!(udp.recv_from(h, &mut buf, false).unwrap(), (5, from));
        assert_eq!(&buf[..5], b"thred");
        assert_eq!(udp.recv_from(h, &mut buf, false), Err(UdpError::WouldBlock));
        assert_eq!(st.counters().udp.rx_datagrams, 2);
        assert_eq!(st.counters().drops.get(DropReason::UdpBadChecksum), 1);
        assert_eq!(st.counters().drops.get(DropReason::UdpTruncated), 2);
    }

    #[test]
    fn closed_port_answers_port_unreachable_but_not_to_a_broadcast() {
        let mut st = stack();
        let from = SocketAddrV4::new(PEER, 4000);
        let f = frame(from, SocketAddrV4::new(ME, 9), b"x");
        assert_eq!(st.receive(T0, &f), RxOutcome::Dropped(DropReason::UdpNoSocket));
        assert_eq!(st.counters().icmp.tx_dest_unreachable, 1);
        let f = frame(from, SocketAddrV4::new(Ipv4Addr::BROADCAST, 9), b"x");
        assert_eq!(st.receive(T0, &f), RxOutcome::Dropped(DropReason::UdpNoSocket));
        assert_eq!(st.counters().icmp.tx_dest_unreachable, 1);
    }

    #[test]
    fn receive_buffer_is_bounded_and_peek_and_truncation_work() {
        let mut st = stack();
        let h = bound(&mut st, 9000);
        let (udp, _) = st.udp();
        udp.set_recv_buffer(h, 3 * (100 + DATAGRAM_OVERHEAD)).unwrap();
        let from = SocketAddrV4::new(PEER, 4000);
        let to = SocketAddrV4::new(ME, 9000);
        let data = [7u8; 100];
        for _ in 0..3 {
            assert_eq!(st.receive(T0, &frame(from, to, &data)), RxOutcome::Delivered);
        }
        assert_eq!(st.receive(T0, &frame(from, to, &data)), RxOutcome::Dropped(DropReason::UdpReceiveBufferFull));
        let (udp, _) = st.udp();
        assert_eq!(udp.socket(h).unwrap().recv_queued(), 3);
        assert_eq!(udp.socket(h).unwrap().recv_drops(), 1);
        let mut small = [0u8; 10];
        // Peek leaves it; a short buffer truncates and reports the full length.
        assert_eq!(udp.recv_from(h, &mut small, true).unwrap().0, 100);
        assert_eq!(udp.socket(h).unwrap().recv_queued(), 3);
        assert_eq!(udp.recv_from(h, &mut small, false).unwrap().0, 100);
        assert_eq!(udp.socket(h).unwrap().recv_queued(), 2);
        assert_eq!(udp.socket(h).unwrap().recv_queued_bytes(), 2 * (100 + DATAGRAM_OVERHEAD));
        // An empty queue takes one datagram whatever the limit.
        udp.set_recv_buffer(h, 1).unwrap();
        let mut big = [0u8; 200];
        udp.recv_from(h, &mut big, false).unwrap();
        udp.recv_from(h, &mut big, false).unwrap();
        assert_eq!(st.receive(T0, &frame(from, to, &data)), RxOutcome::Delivered);
        assert_eq!(st.receive(T0, &frame(from, to, &data)), RxOutcome::Dropped(DropReason::UdpReceiveBufferFull));
    }

    #[test]
    fn bind_rules() {
        let mut st = stack();
        let (udp, net) = st.udp();
        let any = |p| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p);
        let a = udp.open().unwrap();
        udp.bind(net, a, any(53)).unwrap();
        assert_eq!(udp.bind(net, a, any(54)), Err(UdpError::AlreadyBound));
        let b = udp.open().unwrap();
        assert_eq!(udp.bind(net, b, any(53)), Err(UdpError::AddrInUse));
        assert_eq!(udp.bind(net, b, SocketAddrV4::new(ME, 53)), Err(UdpError::AddrInUse));
        assert_eq!(
            udp.bind(net, b, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 53)),
            Err(UdpError::AddrNotAvailable)
        );
        // 127/8 is ours too (the loopback's): taken here by `a` on 0.0.0.0.
        assert_eq!(udp.bind(net, b, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 53)), Err(UdpError::AddrInUse));
        let lo = udp.open().unwrap();
        udp.bind(net, lo, SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 9), 54)).unwrap();
        udp.close(lo).unwrap();
        // Both with SO_REUSEADDR may share.
        udp.set_reuse_addr(a, true).unwrap();
        udp.set_reuse_addr(b, true).unwrap();
        udp.bind(net, b, SocketAddrV4::new(ME, 53)).unwrap();
        // A broadcast address is bindable.
        let c = udp.open().unwrap();
        udp.bind(net, c, SocketAddrV4::new(Ipv4Addr::BROADCAST, 67)).unwrap();
        // Closing frees the port; a stale handle is refused.
        udp.close(a).unwrap();
        udp.close(b).unwrap();
        assert_eq!(udp.close(b), Err(UdpError::BadHandle));
        let d = udp.open().unwrap();
        assert_eq!(udp.bind(net, b, any(53)), Err(UdpError::BadHandle));
        udp.bind(net, d, any(53)).unwrap();
    }

    #[test]
    fn ephemeral_ports_are_in_range_distinct_and_not_sequential() {
        let mut st = stack();
        let (udp, net) = st.udp();
        let mut ports = Vec::new();
        for _ in 0..200 {
            let h = udp.open().unwrap();
            udp.bind(net, h, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
            ports.push(udp.socket(h).unwrap().local().unwrap().port());
        }
        assert!(ports.iter().all(|p| EPHEMERAL_PORTS.contains(p)));
        let mut sorted = ports.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ports.len(), "ports are distinct");
        let sequential = ports.windows(2).filter(|w| w[1] == w[0].wrapping_add(1)).count();
        assert!(sequential < 5, "ports follow each other {sequential} times: {ports:?}");
    }

    #[test]
    fn socket_table_is_bounded() {
        let mut st = stack();
        let (udp, net) = st.udp();
        let handles: Vec<_> = (0..MAX_SOCKETS).map(|_| udp.open().unwrap()).collect();
        assert_eq!(udp.open(), Err(UdpError::TooManySockets));
        // Every open socket can still get a port of its own: MAX_SOCKETS is below
        // the number of ephemeral ports.
        for h in &handles[..100] {
            udp.bind(net, *h, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        }
        udp.close(handles[0]).unwrap();
        assert!(udp.open().is_ok());
    }

    #[test]
    fn send_builds_a_checksummed_broadcast_and_checks_permissions() {
        let mut st = stack();
        let h = bound(&mut st, 5000);
        let (udp, net) = st.udp();
        let bcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, 7);
        assert_eq!(udp.send_to(T0, net, h, Some(bcast), b"hi"), Err(UdpError::BroadcastDenied));
        let subnet = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 255), 7);
        assert_eq!(udp.send_to(T0, net, h, Some(subnet), b"hi"), Err(UdpError::BroadcastDenied));
        assert_eq!(udp.send_to(T0, net, h, None, b"hi"), Err(UdpError::DestAddrRequired));
        assert_eq!(udp.send_to(T0, net, h, Some(SocketAddrV4::new(PEER, 0)), b"hi"), Err(UdpError::InvalidArgument));
        assert_eq!(
            udp.send_to(T0, net, h, Some(SocketAddrV4::new(Ipv4Addr::new(8, 8, 8, 8), 53)), b"hi"),
            Err(UdpError::NetUnreachable)
        );
        assert_eq!(udp.send_to(T0, net, h, Some(bcast), &vec![0; MAX_DATAGRAM + 1]), Err(UdpError::MessageTooLong));
        udp.set_broadcast(h, true).unwrap();
        assert_eq!(udp.send_to(T0, net, h, Some(bcast), b"hi"), Ok(2));
        let frames = sent(&mut st);
        assert_eq!(frames.len(), 1);
        let f = &frames[0];
        assert_eq!(&f[0..6], &[0xff; 6]);
        let d = &f[PAYLOAD_OFFSET..];
        assert_eq!(UdpHeaderSlice::from_slice(d).unwrap().source_port(), 5000);
        assert!(checksum_ok(ME, Ipv4Addr::BROADCAST, d));
        assert_eq!(&d[8..], b"hi");
        assert_eq!(st.counters().udp.tx_datagrams, 1);
    }

    #[test]
    fn largest_datagram_leaves_in_fragments() {
        let mut st = stack();
        let h = bound(&mut st, 5000);
        let (udp, net) = st.udp();
        udp.set_broadcast(h, true).unwrap();
        let bcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, 7);
        assert_eq!(udp.send_to(T0, net, h, Some(bcast), &vec![1; MAX_DATAGRAM]), Ok(MAX_DATAGRAM));
        let frames = sent(&mut st);
        assert_eq!(frames.len(), (MAX_DATAGRAM + HEADER_LEN).div_ceil(1480));
        assert_eq!(st.counters().ipv4.tx_fragmented, 1);
    }

    #[test]
    fn demultiplexing_prefers_connected_then_specific_and_broadcast_reaches_all() {
        let mut st = stack();
        let (udp, net) = st.udp();
        let open = |udp: &mut Udp, net: &mut dyn UdpNet, ip: Ipv4Addr| {
            let h = udp.open().unwrap();
            udp.set_reuse_addr(h, true).unwrap();
            udp.bind(net, h, SocketAddrV4::new(ip, 9000)).unwrap();
            h
        };
        let wild = open(udp, net, Ipv4Addr::UNSPECIFIED);
        let specific = open(udp, net, ME);
        let connected = open(udp, net, Ipv4Addr::UNSPECIFIED);
        let peer = SocketAddrV4::new(PEER, 4000);
        udp.connect(net, connected, peer).unwrap();
        assert_eq!(udp.socket(connected).unwrap().local(), Some(SocketAddrV4::new(ME, 9000)));
        let to = SocketAddrV4::new(ME, 9000);
        st.receive(T0, &frame(peer, to, b"a"));
        st.receive(T0, &frame(SocketAddrV4::new(PEER, 4001), to, b"b"));
        st.receive(T0, &frame(SocketAddrV4::new(PEER, 4001), SocketAddrV4::new(Ipv4Addr::BROADCAST, 9000), b"c"));
        let (udp, _) = st.udp();
        let q = |udp: &Udp, h| udp.socket(h).unwrap().recv_queued();
        assert_eq!((q(udp, connected), q(udp, specific), q(udp, wild)), (1, 1, 1));
        // The broadcast reached the wildcard socket only: the others are bound to our
        // unicast address (connect fixed the connected one's), as on Linux.
        let mut b = [0u8; 4];
        assert_eq!(udp.recv_from(wild, &mut b, false).unwrap().0, 1);
        assert_eq!(&b[..1], b"c");
        assert_eq!(udp.recv_from(specific, &mut b, false).unwrap().0, 1);
        assert_eq!(&b[..1], b"b");
    }

    #[test]
    fn port_unreachable_reaches_only_the_connected_socket_once() {
        let mut st = stack();
        let (udp, net) = st.udp();
        let connected = udp.open().unwrap();
        let peer = SocketAddrV4::new(PEER, 7);
        udp.connect(net, connected, peer).unwrap();
        let port = udp.socket(connected).unwrap().local().unwrap().port();
        let unconnected = udp.open().unwrap();
        udp.set_reuse_addr(unconnected, true).unwrap();
        let mut err = IcmpError {
            kind: IcmpErrorKind::DestUnreachable { code: 3, next_hop_mtu: 0 },
            reporter: PEER,
            src: ME,
            dst: PEER,
            protocol: IpNumber::UDP,
            quoted: [0; 8],
            quoted_len: 8,
        };
        err.quoted[0..2].copy_from_slice(&port.to_be_bytes());
        err.quoted[2..4].copy_from_slice(&7u16.to_be_bytes());
        // A soft error is not reported.
        udp.icmp_error(
            T0,
            net,
            &IcmpError { kind: IcmpErrorKind::DestUnreachable { code: 1, next_hop_mtu: 0 }, ..err },
        );
        assert!(!udp.readiness(connected).unwrap().error);
        udp.icmp_error(T0, net, &err);
        assert_eq!(udp.readiness(connected).unwrap(), Readiness { readable: false, writable: true, error: true });
        let mut b = [0u8; 4];
        assert_eq!(udp.recv_from(connected, &mut b, false), Err(UdpError::ConnectionRefused));
        assert_eq!(udp.recv_from(connected, &mut b, false), Err(UdpError::WouldBlock));
        udp.icmp_error(T0, net, &err);
        assert_eq!(udp.send_to(T0, net, connected, None, b"x"), Err(UdpError::ConnectionRefused));
        assert_eq!(udp.take_error(connected), Ok(None));
        assert_eq!(udp.take_error(unconnected), Ok(None));
    }

    #[test]
    fn disconnect_keeps_what_bind_chose() {
        let mut st = stack();
        let (udp, net) = st.udp();
        let peer = SocketAddrV4::new(PEER, 7);
        let auto = udp.open().unwrap();
        udp.connect(net, auto, peer).unwrap();
        udp.disconnect(auto).unwrap();
        assert_eq!(udp.socket(auto).unwrap().local(), None);
        let explicit = udp.open().unwrap();
        udp.bind(net, explicit, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 1234)).unwrap();
        udp.connect(net, explicit, peer).unwrap();
        udp.disconnect(explicit).unwrap();
        assert_eq!(udp.socket(explicit).unwrap().local(), Some(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 1234)));
        assert_eq!(udp.socket(explicit).unwrap().remote(), None);
    }

    /// Found by fuzzing (tests/fuzz, frame_path): disconnect left an autobound
    /// socket in the port map, so after close an ICMP error quoting that port
    /// (or ARP giving up on a datagram it sent) panicked on the freed slot.
    #[test]
    fn a_disconnected_and_closed_socket_leaves_no_port_behind() {
        let mut st = stack();
        let (udp, net) = st.udp();
        let h = udp.open().unwrap();
        udp.connect(net, h, SocketAddrV4::new(PEER, 7)).unwrap();
        let port = udp.socket(h).unwrap().local().unwrap().port();
        udp.disconnect(h).unwrap();
        udp.close(h).unwrap();
        let mut err = IcmpError {
            kind: IcmpErrorKind::DestUnreachable { code: 3, next_hop_mtu: 0 },
            reporter: PEER,
            src: ME,
            dst: PEER,
            protocol: IpNumber::UDP,
            quoted: [0; 8],
            quoted_len: 8,
        };
        err.quoted[0..2].copy_from_slice(&port.to_be_bytes());
        err.quoted[2..4].copy_from_slice(&7u16.to_be_bytes());
        udp.icmp_error(T0, net, &err);
        // The port is free again, for a socket that binds it without SO_REUSEADDR.
        let again = udp.open().unwrap();
        udp.bind(net, again, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).unwrap();
    }

    #[test]
    fn mutated_datagrams_never_panic_and_every_frame_is_accounted_for() {
        use rand::rngs::ChaCha8Rng;
        use rand::{RngExt, SeedableRng};
        let mut st = stack();
        let h = bound(&mut st, 9000);
        st.udp().0.set_recv_buffer(h, 4096).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let from = SocketAddrV4::new(PEER, 4000);
        for i in 0..5000u32 {
            let len = rng.random_range(0..1400);
            let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let port = if rng.random_bool(0.5) { 9000 } else { rng.random() };
            let mut f = frame(from, SocketAddrV4::new(ME, port), &data);
            // Mutate some bytes of the UDP header or payload, or cut the frame short.
            for _ in 0..rng.random_range(0..4) {
                let at = rng.random_range(PAYLOAD_OFFSET..f.len());
                f[at] = rng.random();
            }
            if rng.random_bool(0.1) {
                f.truncate(rng.random_range(PAYLOAD_OFFSET..f.len() + 1));
            }
            st.receive(Instant::from_millis(i as u64), &f);
            if rng.random_bool(0.3) {
                let mut buf = [0u8; 64];
                let _ = st.udp().0.recv_from(h, &mut buf, false);
            }
        }
        let c = st.counters();
        assert_eq!(c.link.rx_frames, 5000);
        assert_eq!(c.link.rx_frames, c.link.rx_delivered + c.link.rx_held + c.link.rx_dropped);
        // Drops of inbound frames; ARP and ICMP drops here are of our outbound errors.
        let inbound: u64 = c.drops.iter().filter(|(r, _)| !matches!(r.layer(), "arp" | "icmp")).map(|(_, n)| n).sum();
        assert_eq!(c.link.rx_dropped, inbound);
        for reason in [DropReason::UdpBadChecksum, DropReason::UdpNoSocket, DropReason::UdpReceiveBufferFull] {
            assert!(c.drops.get(reason) > 0, "{reason:?} never happened: the test does not reach it");
        }
        let sock = st.udp().0.socket(h).unwrap();
        assert!(sock.recv_queued_bytes() <= 4096 + MAX_DATAGRAM + DATAGRAM_OVERHEAD);
    }
}
