//! The IP layer: everything below the transports, as one owner of state.
//!
//! [`IpLayer`] holds the configuration, ARP, the IPv4 identification counters
//! (per destination, `ipv4::ident`),
//! fragment reassembly, the ICMP error rate limit, the transmit queue, the counters
//! and the random number generator. It receives Ethernet frames up to the point of
//! a whole IPv4 datagram ([`IpLayer::receive_ethernet`], [`IpLayer::receive_ipv4`]),
//! answers what it can itself (ARP, ICMP echo), and sends datagrams down: routing,
//! fragmenting and handing them to ARP ([`IpLayer::send_ip`]), or, when they are
//! for one of our own addresses, to the loopback ([`crate::loopback`]), whose
//! frames [`crate::Stack::poll`] takes back in ([`IpLayer::take_looped`]).
//!
//! It knows nothing of UDP or TCP. The transports see it only through the small
//! traits they define (`UdpNet` in udp.rs, `TcpNet` in tcp/lower.rs), which are
//! implemented for it on the composition side (`bindings.rs`), and the composition
//! ([`crate::Stack`]) hands them the datagrams that [`IpLayer`] delivers. Its
//! fields are private: callers outside use the methods here.

use crate::arp::{Arp, LinkAddrs};
use crate::buffer::{RxClaim, TxQueue, ETH_HEADER_LEN};
use crate::config::Config;
use crate::counters::{Counters, DropReason};
use crate::ethernet::{self, MacAddr};
use crate::icmp::{self, IcmpError, IcmpErrorKind, IcmpInput};
use crate::ipv4::ident::IdentGenerator;
use crate::ipv4::reassembly::{Expired, Reassembled, Reassembler};
use crate::ipv4::{self, IpPacket, Ipv4Config, HEADER_LEN, MAX_PAYLOAD, PAYLOAD_OFFSET};
use crate::loopback::Loopback;
use crate::offload::{RxOffload, TxOffload, MAX_GSO_FRAME};
use crate::ratelimit::TokenBucket;
use crate::time::{earliest, Instant};
use etherparse::{EtherType, IpNumber, Ipv4HeaderSlice};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use std::net::Ipv4Addr;
use std::ops::Range;

/// What became of one inbound frame. Each frame has exactly one outcome, and each
/// drop is counted under exactly one reason.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    /// Handled: answered, delivered to a socket, or consumed.
    Delivered,
    /// Kept for later: a fragment waiting for the rest of its datagram.
    Held,
    Dropped(DropReason),
}

/// Options of one outgoing datagram.
#[derive(Copy, Clone, Debug)]
pub struct SendOptions {
    pub protocol: IpNumber,
    /// Our address the datagram is from (the transport's checksum covers it):
    /// see [`IpLayer::source_for`].
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Set DF (TCP sets it; others let us fragment).
    pub dont_fragment: bool,
    /// TTL, or the configured default.
    pub ttl: Option<u8>,
}

/// What [`IpLayer::receive_ipv4`] made of a validated datagram for us.
#[derive(Debug)]
pub enum Ipv4Input<'a> {
    /// It came whole: here it is.
    Whole(IpPacket<'a>),
    /// It was the fragment that completed a datagram (addressed as the fragment
    /// was). Give the payload back with [`IpLayer::recycle_reassembled`] when done.
    Reassembled { whole: Reassembled, src: Ipv4Addr, dst: Ipv4Addr, broadcast: bool },
    /// A fragment, held until the rest of its datagram arrives.
    Held,
}

/// Everything below the transports (see the module docs).
#[derive(Debug)]
pub struct IpLayer {
    config: Config,
    /// IPv4's view of `config`, kept so that routing does not rebuild it.
    ipv4: Ipv4Config,
    arp: Arp,
    reassembler: Reassembler,
    tx: TxQueue,
    /// Datagrams to ourselves, waiting for the next [`crate::Stack::poll`].
    loopback: Loopback,
    counters: Counters,
    /// Every random choice comes from here, seeded by `config.seed`.
    rng: ChaCha8Rng,
    /// IPv4 identification: counters per destination (RFC 6864, RFC 7739, as Linux).
    idents: IdentGenerator,
    icmp_errors: TokenBucket,
    /// Frames whose next hop ARP could not resolve, waiting to be reported upward.
    /// Those ARP gives up on in `poll` are at most `ArpConfig::max_held_frames`;
    /// those dropped as sent (a next hop that failed lately) are reported only
    /// while fewer than that wait.
    unreachable: Vec<Vec<u8>>,
    /// When a frame dropped as it was sent first waited to be reported: the
    /// next `poll` is due then.
    unreachable_since: Option<Instant>,
    /// The frame being received, if its buffer may be kept (`Stack::receive_owned`).
    pub(crate) rx_claim: RxClaim,
}

impl IpLayer {
    /// The IP layer of a stack with this (validated) configuration. Draws the first
    /// The identification generator draws from a stream of its own; the main
    /// generator's first draw (once the first identification) is kept, so that
    /// every later random choice is what it was.
    pub(crate) fn new(config: Config) -> IpLayer {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let _: u16 = rng.random();
        IpLayer {
            ipv4: config.ipv4(),
            arp: Arp::new(config.arp.clone()),
            reassembler: Reassembler::new(config.reassembly.clone()),
            tx: TxQueue::new(),
            loopback: Loopback::new(config.loopback_queue),
            counters: Counters::default(),
            icmp_errors: TokenBucket::new(config.icmp_error_rate, config.icmp_error_burst),
            idents: IdentGenerator::new(config.seed),
            rng,
            unreachable: Vec::new(),
            unreachable_since: None,
            rx_claim: RxClaim::default(),
            config,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The counters, for the transports' bindings to count in.
    pub(crate) fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// The stack's one random number generator, for the transports' bindings: every
    /// draw, whoever makes it, comes from this one sequence, so a run replays from its seed.
    pub(crate) fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// A number drawn uniformly from `range`, from the stack's generator (for port
    /// choices made above the stack, as the sockets API's).
    pub fn random_range(&mut self, range: Range<u32>) -> u32 {
        self.rng.random_range(range)
    }

    /// Our identity on the link.
    pub fn me(&self) -> LinkAddrs {
        LinkAddrs { mac: self.config.mac, ip: self.config.addr }
    }

    /// Our IPv4 address.
    pub fn local_ip(&self) -> Ipv4Addr {
        self.config.addr
    }

    /// Whether `ip` is one of ours: our address or 127/8 (RFC 1122 section 3.2.1.3).
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.ipv4.is_local(ip)
    }

    /// Our address that a datagram to `dst` is sent from when its socket is bound
    /// to none: 127.0.0.1 to 127/8, our link address otherwise (as Linux).
    pub fn source_for(&self, dst: Ipv4Addr) -> Ipv4Addr {
        self.ipv4.source_for(dst)
    }

    /// Our address a datagram to `dst` from a socket bound to `bound` is sent
    /// from: the bound one, unless that is none (0.0.0.0) or a broadcast address,
    /// then [`IpLayer::source_for`]. `None` when `bound` is in 127/8 and `dst` is
    /// not ours: 127/8 never leaves the host (RFC 1122 section 3.2.1.3 (g)), and
    /// Linux answers EINVAL.
    pub fn source_from(&self, bound: Ipv4Addr, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if bound.is_loopback() && !self.is_local(dst) {
            None
        } else if self.is_local(bound) {
            Some(bound)
        } else {
            Some(self.source_for(dst))
        }
    }

    /// Whether `ip` is a broadcast address on our link (limited or the subnet's).
    pub fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.ipv4.is_broadcast(ip)
    }

    /// The next hop for `dst` (RFC 1122 section 3.3.1.1), or why there is none.
    pub fn route(&self, dst: Ipv4Addr) -> Result<ipv4::Route, DropReason> {
        ipv4::route(&self.ipv4, dst)
    }

    /// Negative advice (RFC 1122 sections 3.3.1.4, 4.2.3.5): a transport suspects
    /// the route to `dst`, so ARP checks its next hop again.
    pub fn negative_advice(&mut self, now: Instant, dst: Ipv4Addr) {
        match self.route(dst) {
            Ok(route) if !route.local => self.arp.suspect(now, route.next_hop),
            _ => {}
        }
    }

    /// Sends an ARP probe for our own address (RFC 5227 section 2.1.1), to find
    /// out whether another host uses it; see [`IpLayer::address_conflict`].
    pub fn probe_address(&mut self) {
        let me = self.me();
        self.arp.probe(me, &mut self.tx, &mut self.counters);
    }

    /// The MAC address of a host that claimed our address, if one did.
    pub fn address_conflict(&self) -> Option<MacAddr> {
        self.arp.address_conflict()
    }

    /// Announces us on the link with a gratuitous ARP (RFC 5227 section 3 style
    /// announcement, which RFC 826 caches accept as an update).
    pub fn announce(&mut self, now: Instant) {
        let me = self.me();
        self.arp.announce(now, me, &mut self.tx, &mut self.counters);
    }

    // ---- sending -----------------------------------------------------------------

    /// A buffer for an outgoing datagram: `PAYLOAD_OFFSET` reserved bytes for the
    /// Ethernet and IPv4 headers, then room for the transport to write into.
    pub fn alloc_packet(&mut self) -> Vec<u8> {
        let mut b = self.tx.alloc();
        b.resize(PAYLOAD_OFFSET, 0);
        b
    }

    /// [`IpLayer::alloc_packet`] with room for `payload` bytes behind the
    /// headers (a GSO segment's may be larger than a frame).
    pub fn alloc_packet_for(&mut self, payload: usize) -> Vec<u8> {
        let mut b = self.tx.alloc_for(PAYLOAD_OFFSET + payload);
        b.resize(PAYLOAD_OFFSET, 0);
        b
    }

    /// Sends the datagram whose payload follows `PAYLOAD_OFFSET` in `buf`: fills in
    /// the IPv4 header, routes it, fragments it if it exceeds the MTU (RFC 791 section
    /// 3.2) and hands it to ARP. Errors are counted here and also returned so that a
    /// socket call can report them.
    pub fn send_ip(&mut self, now: Instant, opts: SendOptions, buf: Vec<u8>) -> Result<(), DropReason> {
        self.send_ip_offloaded(now, opts, buf, TxOffload::NONE)
    }

    /// [`IpLayer::send_ip`] for a datagram that asks the link for `offload`
    /// (with `Config::offload.tso`, never on the loopback): a GSO segment is
    /// sent whole, up to `Config::gso_max_size`, never fragmented (DF is set:
    /// the link cuts it into segments that each fit the MTU).
    pub fn send_ip_offloaded(
        &mut self,
        now: Instant,
        opts: SendOptions,
        mut buf: Vec<u8>,
        offload: TxOffload,
    ) -> Result<(), DropReason> {
        let payload_len = buf.len() - PAYLOAD_OFFSET;
        let route = match self.route_and_check(opts, payload_len, offload) {
            Ok(r) => r,
            Err(reason) => {
                self.counters.drops.add(reason);
                self.tx.recycle(buf);
                return Err(reason);
            }
        };
        let ident = self.idents.next(now, opts.src, opts.dst, opts.protocol.0);
        let header = Header { src: opts.src, ttl: opts.ttl.unwrap_or(self.config.ttl), ident, opts };
        self.counters.ipv4.tx_datagrams += 1;
        if payload_len + HEADER_LEN <= self.config.mtu as usize || offload.gso_size > 0 {
            header.write(&mut buf, opts.dont_fragment, (0, false), payload_len);
            self.to_link(now, route, buf, offload);
        } else {
            self.send_fragments(now, route, header, &buf);
            self.tx.recycle(buf);
        }
        Ok(())
    }

    /// Sends the datagram in `buf` as fragments that fit the MTU (RFC 791 section
    /// 3.2), each with its own copy of the header.
    fn send_fragments(&mut self, now: Instant, route: ipv4::Route, header: Header, buf: &[u8]) {
        self.counters.ipv4.tx_fragmented += 1;
        let payload_len = buf.len() - PAYLOAD_OFFSET;
        for (off, len, more) in ipv4::fragments(payload_len, self.config.mtu as usize) {
            let mut frag = self.tx.alloc();
            frag.resize(PAYLOAD_OFFSET, 0);
            frag.extend_from_slice(&buf[PAYLOAD_OFFSET + off..PAYLOAD_OFFSET + off + len]);
            header.write(&mut frag, false, ((off / 8) as u16, more), len);
            self.counters.ipv4.tx_fragments += 1;
            self.to_link(now, route, frag, TxOffload::NONE);
        }
    }

    fn route_and_check(
        &self,
        opts: SendOptions,
        payload_len: usize,
        offload: TxOffload,
    ) -> Result<ipv4::Route, DropReason> {
        if payload_len > MAX_PAYLOAD {
            return Err(DropReason::IpCannotFragment);
        }
        let max = match offload.gso_size > 0 {
            true => self.config.gso_max_size as usize,
            false => self.config.mtu as usize,
        };
        if opts.dont_fragment && payload_len + HEADER_LEN > max {
            return Err(DropReason::IpCannotFragment);
        }
        let route = self.route(opts.dst)?;
        if offload != TxOffload::NONE && (!self.config.offload.tso || route.local || route.broadcast) {
            // Only a link that offloads may be asked to; the loopback (and a
            // broadcast) never is: TCP asks only where `tso_max` allows.
            debug_assert!(false, "an offload asked of a route that has none");
            return Err(DropReason::IpCannotFragment);
        }
        if opts.src.is_loopback() && !route.local {
            // RFC 1122 section 3.2.1.3 (g): 127/8 never leaves the host (Linux: EINVAL).
            return Err(DropReason::IpLoopbackSourceOffHost);
        }
        Ok(route)
    }

    /// Hands a finished IPv4 frame to the link: broadcasts go straight out, the
    /// rest through ARP; or, to one of our own addresses, round the loopback, as an
    /// Ethernet frame from our MAC to our MAC (what a capture then shows).
    fn to_link(&mut self, now: Instant, route: ipv4::Route, mut frame: Vec<u8>, offload: TxOffload) {
        if route.local {
            ethernet::write_header(&mut frame, self.config.mac, self.config.mac, EtherType::IPV4);
            let (len, lo) = (frame.len() as u64, &mut self.counters.loopback);
            if self.loopback.push(now, frame, &mut self.tx) {
                lo.frames += 1;
                lo.bytes += len;
            } else {
                self.counters.drops.add(DropReason::LoopbackQueueFull);
            }
        } else if route.broadcast {
            ethernet::write_header(&mut frame, self.config.mac, MacAddr::BROADCAST, EtherType::IPV4);
            self.tx.push(frame);
        } else {
            let me = self.me();
            let (tx, counters) = (&mut self.tx, &mut self.counters);
            if let Some(frame) = self.arp.send_offloaded(now, me, route.next_hop, (frame, offload), tx, counters) {
                self.report_later(now, frame);
            }
        }
    }

    /// Keeps a frame ARP dropped as it was sent (its next hop failed lately),
    /// for the next `poll` to report upward as the failure itself was; past
    /// the bound (see `unreachable`) it is only counted, as ARP did.
    fn report_later(&mut self, now: Instant, frame: Vec<u8>) {
        let arp = &self.config.arp;
        if self.unreachable.len() >= arp.max_held_frames() {
            self.tx.recycle(frame);
            return;
        }
        self.unreachable.push(frame);
        self.unreachable_since.get_or_insert(now);
    }

    /// Sends an ICMP error about `about` (RFC 792), quoting its header and the first
    /// 8 bytes of its payload, if RFC 1122 section 3.2.2 allows one and the rate
    /// limit has a token. Returns whether it was sent.
    pub fn send_icmp_error(&mut self, now: Instant, about: &IpPacket<'_>, ty: u8, code: u8) -> bool {
        if !icmp::may_send_error_about(about) {
            return false;
        }
        // The limit is for the link: errors to ourselves are not limited (as Linux's
        // icmpv4_xrlim_allow exempts the loopback device).
        if !self.is_local(about.src) && !self.icmp_errors.try_take(now) {
            self.counters.drops.add(DropReason::IcmpErrorRateLimited);
            return false;
        }
        let mut buf = self.alloc_packet();
        let quote = &about.payload[..about.payload.len().min(8)];
        icmp::write_message(&mut buf, ty, code, [0; 4], &[about.header, quote]);
        match ty {
            icmp::TYPE_DEST_UNREACHABLE => self.counters.icmp.tx_dest_unreachable += 1,
            icmp::TYPE_TIME_EXCEEDED => self.counters.icmp.tx_time_exceeded += 1,
            _ => {}
        }
        let src = self.reply_source(about);
        let opts = SendOptions { protocol: IpNumber::ICMP, src, dst: about.src, dont_fragment: false, ttl: None };
        self.send_ip(now, opts, buf).is_ok()
    }

    /// Answers an echo request with the same identifier, sequence number and data
    /// (RFC 792). A request that arrived in fragments gets a reply that leaves in fragments.
    fn send_echo_reply(&mut self, now: Instant, request: &IpPacket<'_>, ident_seq: [u8; 4]) {
        let mut buf = self.alloc_packet();
        icmp::write_message(&mut buf, icmp::TYPE_ECHO_REPLY, 0, ident_seq, &[&request.payload[8..]]);
        let src = self.reply_source(request);
        let opts = SendOptions { protocol: IpNumber::ICMP, src, dst: request.src, dont_fragment: false, ttl: None };
        if self.send_ip(now, opts, buf).is_ok() {
            self.counters.icmp.tx_echo_replies += 1;
        }
    }

    /// The source of an ICMP message answering `about`: the address it was sent
    /// to, when that is one of ours (127.0.0.5 answers from 127.0.0.5, as Linux);
    /// our address otherwise.
    fn reply_source(&self, about: &IpPacket<'_>) -> Ipv4Addr {
        if self.is_local(about.dst) {
            about.dst
        } else {
            self.config.addr
        }
    }

    // ---- receiving ---------------------------------------------------------------

    /// Counts an inbound frame as it arrives, before anything looks at it.
    pub(crate) fn count_rx_frame(&mut self, len: usize, rx: RxOffload) {
        self.counters.link.rx_frames += 1;
        self.counters.link.rx_bytes += len as u64;
        self.counters.link.rx_gso += u64::from(rx.gso_size > 0 && len > self.config.mtu as usize + ETH_HEADER_LEN);
    }

    /// Counts what became of an inbound frame: exactly one outcome each, and each
    /// drop under exactly one reason.
    pub(crate) fn count_rx_outcome(&mut self, outcome: RxOutcome) {
        match outcome {
            RxOutcome::Delivered => self.counters.link.rx_delivered += 1,
            RxOutcome::Held => self.counters.link.rx_held += 1,
            RxOutcome::Dropped(reason) => {
                self.counters.link.rx_dropped += 1;
                self.counters.drops.add(reason);
            }
        }
    }

    /// Ethernet II: ours or broadcast, then by EtherType. ARP is answered here
    /// (`Ok(None)`); an IPv4 datagram is returned for [`IpLayer::receive_ipv4`].
    /// A GSO segment (`rx.gso_size` nonzero) from a link configured to offload
    /// (`Config::offload.rx`) may be longer than the MTU, up to [`MAX_GSO_FRAME`].
    pub fn receive_ethernet<'f>(
        &mut self,
        now: Instant,
        frame: &'f [u8],
        rx: RxOffload,
    ) -> Result<Option<&'f [u8]>, DropReason> {
        if frame.len() < ETH_HEADER_LEN {
            return Err(DropReason::EthTruncated);
        }
        let max = match rx.gso_size > 0 && self.config.offload.rx {
            true => MAX_GSO_FRAME,
            false => self.config.mtu as usize + ETH_HEADER_LEN + 4,
        };
        if frame.len() > max {
            return Err(DropReason::EthOversize);
        }
        let dst = MacAddr(frame[0..6].try_into().unwrap());
        if dst != self.config.mac && !dst.is_broadcast() {
            return Err(DropReason::EthNotForUs);
        }
        let ether_type = EtherType(u16::from_be_bytes([frame[12], frame[13]]));
        let payload = &frame[ETH_HEADER_LEN..];
        match ether_type {
            EtherType::ARP => {
                let me = self.me();
                self.arp.input(now, me, payload, &mut self.tx, &mut self.counters)?;
                Ok(None)
            }
            EtherType::IPV4 => Ok(Some(payload)),
            _ => Err(DropReason::EthUnknownType),
        }
    }

    /// IPv4: validate, accept, reassemble (RFC 791, RFC 1122 section 3.2.1).
    /// `looped`: it came round the loopback rather than from the link, so it is
    /// to one of our addresses, 127/8 included (RFC 1122 section 3.2.1.3 (g)),
    /// and from one of ours, which the link's never are.
    pub fn receive_ipv4<'a>(
        &mut self,
        now: Instant,
        datagram: &'a [u8],
        looped: bool,
        rx: RxOffload,
    ) -> Result<Ipv4Input<'a>, DropReason> {
        let (header, payload) = ipv4::validate(datagram)?;
        let (src, dst) = (header.source_addr(), header.destination_addr());
        let broadcast =
            if looped { ipv4::accept_looped(&self.ipv4, dst)? } else { ipv4::accept(&self.ipv4, src, dst)? };
        self.counters.ipv4.rx_datagrams += 1;
        if header.is_fragmenting_payload() {
            return self.reassemble(now, &header, payload, broadcast);
        }
        Ok(Ipv4Input::Whole(IpPacket {
            src,
            dst,
            protocol: header.protocol(),
            ttl: header.ttl(),
            header: header.slice(),
            payload,
            broadcast,
            csum_trusted: rx.csum_trusted && self.config.offload.rx,
        }))
    }

    fn reassemble<'a>(
        &mut self,
        now: Instant,
        header: &Ipv4HeaderSlice<'_>,
        payload: &[u8],
        broadcast: bool,
    ) -> Result<Ipv4Input<'a>, DropReason> {
        self.counters.ipv4.rx_fragments += 1;
        let pushed = self.reassembler.push(now, header, payload);
        for _ in 0..self.reassembler.take_evicted() {
            self.counters.drops.add(DropReason::IpReassemblyEvicted);
        }
        let Some(whole) = pushed? else {
            return Ok(Ipv4Input::Held);
        };
        self.counters.ipv4.reassembled += 1;
        Ok(Ipv4Input::Reassembled { whole, src: header.source_addr(), dst: header.destination_addr(), broadcast })
    }

    /// Gives a reassembled datagram's payload back for reuse.
    pub fn recycle_reassembled(&mut self, payload: Vec<u8>) {
        self.reassembler.recycle(payload);
    }

    /// Counts a datagram that its protocol took.
    pub(crate) fn count_delivered(&mut self) {
        self.counters.ipv4.rx_delivered += 1;
    }

    /// ICMP (RFC 792): answers an echo request here; returns an error report for
    /// the transport it concerns, which the composition hands on.
    pub fn receive_icmp(&mut self, now: Instant, packet: &IpPacket<'_>) -> Result<Option<IcmpError>, DropReason> {
        match icmp::input(packet, &mut self.counters)? {
            IcmpInput::Echo { ident_seq } => self.send_echo_reply(now, packet, ident_seq),
            IcmpInput::Error(err) => return Ok(Some(err)),
            IcmpInput::Consumed => {}
        }
        Ok(None)
    }

    // ---- timers and the link -------------------------------------------------------

    /// Runs ARP's and reassembly's timers: ARP retries (the frames of a next hop
    /// that never answers are kept for the stack to report to their transports,
    /// with those dropped since the last poll because it failed lately),
    /// and reassembly timeouts with their ICMP Time Exceeded (RFC 792, RFC 1122
    /// section 3.3.2).
    pub fn poll(&mut self, now: Instant) {
        let me = self.me();
        let unreachable = &mut self.unreachable;
        self.arp.poll(now, me, &mut self.tx, &mut self.counters, &mut |frame| unreachable.push(frame));
        let mut expired: Vec<Expired> = Vec::new();
        let timeouts = self.reassembler.poll(now, &mut |e| expired.push(e));
        for _ in 0..timeouts {
            self.counters.drops.add(DropReason::IpReassemblyTimeout);
        }
        for e in expired {
            // Time exceeded, fragment reassembly.
            let header_bytes = e.header.to_bytes();
            let packet = IpPacket {
                src: Ipv4Addr::from(e.header.source),
                dst: Ipv4Addr::from(e.header.destination),
                protocol: e.header.protocol,
                ttl: e.header.time_to_live,
                header: &header_bytes,
                payload: &e.leading[..e.leading_len],
                broadcast: false,
                csum_trusted: false,
            };
            self.send_icmp_error(now, &packet, icmp::TYPE_TIME_EXCEEDED, icmp::CODE_REASSEMBLY_TIME_EXCEEDED);
        }
    }

    /// The next instant at which [`IpLayer::poll`] has work, if any, or the
    /// loopback has a frame for [`crate::Stack::poll`] to deliver: then the time
    /// it was sent, which is never later than now, so the driver runs again.
    pub fn poll_at(&self) -> Option<Instant> {
        let t = earliest(self.arp.poll_at(), self.reassembler.poll_at());
        earliest(earliest(t, self.unreachable_since), self.loopback.poll_at())
    }

    // ---- the loopback --------------------------------------------------------------

    /// Frames waiting round the loopback.
    pub fn looped_pending(&self) -> usize {
        self.loopback.pending()
    }

    /// The oldest frame waiting round the loopback, for the stack to take in;
    /// give it back with [`IpLayer::looped_done`].
    pub(crate) fn take_looped(&mut self) -> Option<Vec<u8>> {
        self.loopback.pop()
    }

    /// Counts what became of a looped frame, and keeps it for a capture
    /// ([`IpLayer::transmit_looped`]).
    pub(crate) fn looped_done(&mut self, frame: Vec<u8>, outcome: RxOutcome) {
        let lo = &mut self.counters.loopback;
        match outcome {
            RxOutcome::Delivered => lo.delivered += 1,
            RxOutcome::Held => lo.held += 1,
            RxOutcome::Dropped(reason) => {
                lo.dropped += 1;
                self.counters.drops.add(reason);
            }
        }
        self.loopback.delivered(frame, &mut self.tx);
    }

    /// Hands every frame delivered round the loopback since the last call to
    /// `f`, oldest first (for a capture: they go on no link). Returns how many.
    pub fn transmit_looped(&mut self, f: impl FnMut(&[u8])) -> usize {
        self.loopback.drain_delivered(&mut self.tx, f)
    }

    /// Whether looped frames wait for [`IpLayer::transmit_looped`].
    pub fn has_looped(&self) -> bool {
        self.loopback.has_delivered()
    }

    /// The frames whose next hop ARP gave up on, oldest first. Hand each to
    /// [`IpLayer::unreachable_error`], then to [`IpLayer::recycle`], and the
    /// emptied vector back with [`IpLayer::return_unreachable`].
    pub(crate) fn take_unreachable(&mut self) -> Vec<Vec<u8>> {
        self.unreachable_since = None;
        std::mem::take(&mut self.unreachable)
    }

    /// Keeps the (empty) vector's capacity for next time.
    pub(crate) fn return_unreachable(&mut self, failed: Vec<Vec<u8>>) {
        debug_assert!(failed.is_empty() && self.unreachable.is_empty());
        self.unreachable = failed;
    }

    /// The error a transport is told about a frame ARP could not deliver: a locally
    /// detected "host unreachable", quoting the datagram as an ICMP error would.
    pub(crate) fn unreachable_error(&self, frame: &[u8]) -> Option<IcmpError> {
        let quote = icmp::parse_quote(&frame[ETH_HEADER_LEN..]).ok()?;
        Some(IcmpError { kind: IcmpErrorKind::LocalHostUnreachable, reporter: self.config.addr, ..quote })
    }

    /// Gives a frame buffer back to the transmit queue's pool.
    pub(crate) fn recycle(&mut self, frame: Vec<u8>) {
        self.tx.recycle(frame);
    }

    /// A buffer of `len` bytes or more for one the stack kept ([`TxQueue::take_spare`]).
    pub(crate) fn take_spare(&mut self, len: usize) -> Vec<u8> {
        self.tx.take_spare(len)
    }

    /// Hands every outbound frame to `f`, oldest first, with what it asks of
    /// the link. Returns how many.
    pub fn transmit(&mut self, mut f: impl FnMut(&[u8], TxOffload)) -> usize {
        let link = &mut self.counters.link;
        self.tx.drain(|frame, offload| {
            link.tx_frames += 1;
            link.tx_bytes += frame.len() as u64;
            link.tx_gso += u64::from(offload.gso_size > 0);
            f(frame, offload)
        })
    }

    /// [`IpLayer::transmit`] handing each frame over as its buffer, which `f`
    /// may take, leaving one of its own in its place (see
    /// [`TxQueue::drain_buffers`]).
    pub fn transmit_buffers(&mut self, mut f: impl FnMut(&mut Vec<u8>, TxOffload)) -> usize {
        let link = &mut self.counters.link;
        self.tx.drain_buffers(|frame, offload| {
            link.tx_frames += 1;
            link.tx_bytes += frame.len() as u64;
            link.tx_gso += u64::from(offload.gso_size > 0);
            f(frame, offload)
        })
    }

    /// The most TCP payload one segment to `dst` may carry as a GSO segment
    /// beside a TCP header of `tcp_header` bytes: 0 unless the link takes
    /// them (`Config::offload.tso`) and `dst` is reached over it.
    pub fn tso_max(&self, dst: Ipv4Addr, tcp_header: usize) -> u32 {
        if !self.config.offload.tso || self.is_local(dst) || self.is_broadcast(dst) {
            return 0;
        }
        (self.config.gso_max_size as usize).saturating_sub(HEADER_LEN + tcp_header) as u32
    }

    /// Whether frames are waiting for [`IpLayer::transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.tx.is_empty()
    }
}

/// The fields every fragment of one datagram shares.
#[derive(Copy, Clone)]
struct Header {
    src: Ipv4Addr,
    ttl: u8,
    ident: u16,
    opts: SendOptions,
}

impl Header {
    /// Writes the IPv4 header into a frame under construction, behind its Ethernet header.
    fn write(&self, frame: &mut [u8], dont_fragment: bool, frag: (u16, bool), payload_len: usize) {
        let o = &self.opts;
        let out = &mut frame[ETH_HEADER_LEN..];
        ipv4::write_header(out, self.src, o.dst, o.protocol, self.ttl, self.ident, dont_fragment, frag, payload_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Stack};

    const T0: Instant = Instant::ZERO;
    const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn frames_to_a_failed_next_hop_wait_for_their_report_up_to_a_bound() {
        let mut config = Config::new(MacAddr([2, 0, 0, 0, 0, 1]), IP_A, 24);
        config.arp.max_pending = 2;
        config.arp.max_queued_bytes = 4 * crate::buffer::FRAME_CAPACITY;
        let mut s = Stack::new(config).unwrap();
        let net = s.ip();
        let send = |net: &mut IpLayer, now: Instant| {
            let mut buf = net.alloc_packet();
            buf.extend_from_slice(&[0; 8]);
            let opts = SendOptions { protocol: IpNumber::UDP, src: IP_A, dst: IP_B, dont_fragment: false, ttl: None };
            net.send_ip(now, opts, buf).unwrap();
        };
        send(net, T0);
        for s in 1..=3 {
            net.poll(T0 + crate::time::Duration::from_secs(s));
        }
        assert_eq!(net.take_unreachable().len(), 1, "the frame that waited for ARP");
        assert_eq!(net.poll_at(), None);
        // While B is held as failed, frames to it are kept for the next poll to
        // report, which is due at once; no more than the bound wait.
        let later = T0 + crate::time::Duration::from_secs(4);
        for _ in 0..10 {
            send(net, later);
        }
        assert_eq!(net.counters.drops.get(DropReason::ArpFailedLately), 10);
        assert_eq!(net.poll_at(), Some(later));
        let waiting = net.take_unreachable();
        assert_eq!(waiting.len(), 6, "max_held_frames: max_queued_bytes in frame buffers, and max_pending");
        assert!(net.unreachable_error(&waiting[0]).is_some_and(|e| e.kind == IcmpErrorKind::LocalHostUnreachable));
        assert_eq!(net.poll_at(), None);
    }

    #[test]
    fn negative_advice_makes_arp_check_the_next_hop_again() {
        // How the IP layer acts on the advice: the next hop's mapping stays in use
        // but is polled by unicast, and lapses if nobody answers.
        let mut s = Stack::new(Config::new(MacAddr([2, 0, 0, 0, 0, 1]), IP_A, 24)).unwrap();
        let net = s.ip();
        let me = LinkAddrs { mac: net.config.mac, ip: net.config.addr };
        let reply = etherparse::ArpEthIpv4Packet {
            operation: etherparse::ArpOperation::REPLY,
            sender_mac: [2, 0, 0, 0, 0, 2],
            sender_ipv4: IP_B.octets(),
            target_mac: me.mac.0,
            target_ipv4: IP_A.octets(),
        };
        // Learn B by asking for it.
        let mut tx = TxQueue::new();
        let mut c = Counters::default();
        let frame = {
            let mut f = tx.alloc();
            f.resize(34, 0);
            f
        };
        net.arp.send(T0, me, IP_B, frame, &mut tx, &mut c);
        net.arp.input(T0, me, &reply.to_bytes(), &mut tx, &mut c).unwrap();
        assert!(net.arp.lookup(T0, IP_B).is_some());
        tx.drain(|_, _| {});
        net.negative_advice(T0, IP_B);
        assert!(net.arp.lookup(T0, IP_B).is_some(), "still used while suspect");
        let frame = {
            let mut f = tx.alloc();
            f.resize(34, 0);
            f
        };
        net.arp.send(T0, me, IP_B, frame, &mut tx, &mut c);
        let mut sent = Vec::new();
        tx.drain(|f, _| sent.push(f.to_vec()));
        assert_eq!(sent.len(), 2, "the packet, and a poll");
        assert_eq!(&sent[1][..6], &[2, 0, 0, 0, 0, 2], "the poll is unicast to the suspect MAC");
        assert_eq!(u16::from_be_bytes([sent[1][12], sent[1][13]]), 0x0806);
        assert_eq!(net.arp.lookup(T0 + crate::arp::REFRESH_WINDOW, IP_B), None, "no answer: it lapses");
    }
}
