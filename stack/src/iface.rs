//! The stack: the sans-IO core that the drivers (runtime, tests, replay) call.
//!
//! It is handed the time and inbound frames ([`Stack::receive`]), runs its timers
//! when asked ([`Stack::poll`]), and yields outbound frames ([`Stack::transmit`])
//! and its next deadline ([`Stack::poll_at`]). It never reads a clock, sleeps,
//! spawns a thread or touches a device (DEVELOPERS.md, principle 1).
//!
//! [`Net`] is everything below the transports: configuration, ARP, IPv4, ICMP, the
//! transmit queue and the counters. UDP and TCP are handed `&mut Net` to send.

use crate::arp::{Arp, LinkAddrs};
use crate::buffer::{TxQueue, ETH_HEADER_LEN};
use crate::config::Config;
use crate::counters::{Counters, DropReason};
use crate::ethernet::{self, MacAddr};
use crate::icmp::{self, IcmpError, IcmpErrorKind, IcmpInput};
use crate::ipv4::reassembly::{Expired, Reassembler};
use crate::ipv4::{self, IpPacket, HEADER_LEN, MAX_PAYLOAD, PAYLOAD_OFFSET};
use crate::ratelimit::TokenBucket;
use crate::tcp::Tcp;
use crate::time::{earliest, Instant};
use crate::udp::Udp;
use etherparse::{EtherType, IpNumber};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use std::net::Ipv4Addr;

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
    pub dst: Ipv4Addr,
    /// Set DF (TCP sets it; others let us fragment).
    pub dont_fragment: bool,
    /// TTL, or the configured default.
    pub ttl: Option<u8>,
}

/// Everything below the transports.
#[derive(Debug)]
pub struct Net {
    pub config: Config,
    pub arp: Arp,
    pub reassembler: Reassembler,
    pub tx: TxQueue,
    pub counters: Counters,
    /// Every random choice comes from here, seeded by `config.seed`.
    pub rng: ChaCha8Rng,
    /// IPv4 identification of the next datagram (RFC 791; RFC 6864 allows a counter).
    next_ident: u16,
    icmp_errors: TokenBucket,
    /// Frames whose next hop ARP could not resolve, waiting to be reported upward.
    unreachable: Vec<Vec<u8>>,
}

impl Net {
    /// Our identity on the link.
    pub fn me(&self) -> LinkAddrs {
        LinkAddrs { mac: self.config.mac, ip: self.config.addr }
    }

    /// A buffer for an outgoing datagram: `PAYLOAD_OFFSET` reserved bytes for the
    /// Ethernet and IPv4 headers, then room for the transport to write into.
    pub fn alloc_packet(&mut self) -> Vec<u8> {
        let mut b = self.tx.alloc();
        b.resize(PAYLOAD_OFFSET, 0);
        b
    }

    /// Sends the datagram whose payload follows `PAYLOAD_OFFSET` in `buf`: fills in
    /// the IPv4 header, routes it, fragments it if it exceeds the MTU (RFC 791 section
    /// 3.2) and hands it to ARP. Errors are counted here and also returned so that a
    /// socket call can report them.
    pub fn send_ip(&mut self, now: Instant, opts: SendOptions, mut buf: Vec<u8>) -> Result<(), DropReason> {
        let payload_len = buf.len() - PAYLOAD_OFFSET;
        let result = self.route_and_check(opts, payload_len);
        let route = match result {
            Ok(r) => r,
            Err(reason) => {
                self.counters.drops.add(reason);
                self.tx.recycle(buf);
                return Err(reason);
            }
        };
        let ident = self.next_ident;
        self.next_ident = self.next_ident.wrapping_add(1);
        let ttl = opts.ttl.unwrap_or(self.config.ttl);
        let src = self.config.addr;
        self.counters.ipv4.tx_datagrams += 1;
        let mtu = self.config.mtu as usize;
        if payload_len + HEADER_LEN <= mtu {
            ipv4::write_header(
                &mut buf[ETH_HEADER_LEN..],
                src,
                opts.dst,
                opts.protocol,
                ttl,
                ident,
                opts.dont_fragment,
                (0, false),
                payload_len,
            );
            self.to_link(now, route, buf);
            return Ok(());
        }
        self.counters.ipv4.tx_fragmented += 1;
        for (off, len, more) in ipv4::fragments(payload_len, mtu) {
            let mut frag = self.tx.alloc();
            frag.resize(PAYLOAD_OFFSET, 0);
            frag.extend_from_slice(&buf[PAYLOAD_OFFSET + off..PAYLOAD_OFFSET + off + len]);
            ipv4::write_header(
                &mut frag[ETH_HEADER_LEN..],
                src,
                opts.dst,
                opts.protocol,
                ttl,
                ident,
                false,
                ((off / 8) as u16, more),
                len,
            );
            self.counters.ipv4.tx_fragments += 1;
            self.to_link(now, route, frag);
        }
        self.tx.recycle(buf);
        Ok(())
    }

    fn route_and_check(&self, opts: SendOptions, payload_len: usize) -> Result<ipv4::Route, DropReason> {
        if payload_len > MAX_PAYLOAD {
            return Err(DropReason::IpCannotFragment);
        }
        if opts.dont_fragment && payload_len + HEADER_LEN > self.config.mtu as usize {
            return Err(DropReason::IpCannotFragment);
        }
        ipv4::route(&self.config, opts.dst)
    }

    /// Hands a finished IPv4 frame to the link: broadcasts go straight out, the
    /// rest through ARP.
    fn to_link(&mut self, now: Instant, route: ipv4::Route, mut frame: Vec<u8>) {
        if route.broadcast {
            ethernet::write_header(&mut frame, self.config.mac, MacAddr::BROADCAST, EtherType::IPV4);
            self.tx.push(frame);
        } else {
            let me = self.me();
            self.arp.send(now, me, route.next_hop, frame, &mut self.tx, &mut self.counters);
        }
    }

    /// Sends an ICMP error about `about` (RFC 792), quoting its header and the first
    /// 8 bytes of its payload, if RFC 1122 section 3.2.2 allows one and the rate
    /// limit has a token. Returns whether it was sent.
    pub fn send_icmp_error(&mut self, now: Instant, about: &IpPacket<'_>, ty: u8, code: u8) -> bool {
        if !icmp::may_send_error_about(about) {
            return false;
        }
        if !self.icmp_errors.try_take(now) {
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
        let opts = SendOptions { protocol: IpNumber::ICMP, dst: about.src, dont_fragment: false, ttl: None };
        self.send_ip(now, opts, buf).is_ok()
    }

    /// Answers an echo request with the same identifier, sequence number and data
    /// (RFC 792). A request that arrived in fragments gets a reply that leaves in fragments.
    fn send_echo_reply(&mut self, now: Instant, request: &IpPacket<'_>, ident_seq: [u8; 4]) {
        let mut buf = self.alloc_packet();
        icmp::write_message(&mut buf, icmp::TYPE_ECHO_REPLY, 0, ident_seq, &[&request.payload[8..]]);
        let opts = SendOptions { protocol: IpNumber::ICMP, dst: request.src, dont_fragment: false, ttl: None };
        if self.send_ip(now, opts, buf).is_ok() {
            self.counters.icmp.tx_echo_replies += 1;
        }
    }
}

/// The whole stack: the layers below the transports, and the transports.
#[derive(Debug)]
pub struct Stack {
    net: Net,
    udp: Udp,
    tcp: Tcp,
}

impl Stack {
    /// A stack with this configuration, or a message saying what is wrong with it.
    pub fn new(config: Config) -> Result<Stack, String> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let next_ident = rng.random();
        let mut net = Net {
            arp: Arp::new(config.arp.clone()),
            reassembler: Reassembler::new(config.reassembly.clone()),
            tx: TxQueue::new(),
            counters: Counters::default(),
            icmp_errors: TokenBucket::new(config.icmp_error_rate, config.icmp_error_burst),
            next_ident,
            rng,
            unreachable: Vec::new(),
            config,
        };
        let udp = Udp::new(&mut net);
        let tcp_config = net.config.tcp.clone();
        let tcp = Tcp::new(&mut net, tcp_config);
        Ok(Stack { net, udp, tcp })
    }

    pub fn config(&self) -> &Config {
        &self.net.config
    }

    pub fn counters(&self) -> &Counters {
        &self.net.counters
    }

    pub fn net(&mut self) -> &mut Net {
        &mut self.net
    }

    /// Every TCP and UDP socket, as `ss -tuai` lists them, with each timer as the
    /// time left from `now` (see [`crate::socket_table`]).
    pub fn socket_table(&self, now: Instant) -> Vec<crate::SocketEntry> {
        crate::socket_table::collect(&self.tcp, &self.udp, now)
    }

    /// UDP, with the layers below it to send through.
    pub fn udp(&mut self) -> (&mut Udp, &mut Net) {
        (&mut self.udp, &mut self.net)
    }

    /// TCP, with the layers below it to send through.
    pub fn tcp(&mut self) -> (&mut Tcp, &mut Net) {
        (&mut self.tcp, &mut self.net)
    }

    /// Announces us on the link with a gratuitous ARP (RFC 5227 section 3 style
    /// announcement, which RFC 826 caches accept as an update).
    pub fn start(&mut self, now: Instant) {
        let me = self.net.me();
        self.net.arp.announce(now, me, &mut self.net.tx, &mut self.net.counters);
    }

    /// Takes one inbound Ethernet frame.
    pub fn receive(&mut self, now: Instant, frame: &[u8]) -> RxOutcome {
        self.net.counters.link.rx_frames += 1;
        self.net.counters.link.rx_bytes += frame.len() as u64;
        let outcome = match self.receive_ethernet(now, frame) {
            Ok(o) => o,
            Err(reason) => RxOutcome::Dropped(reason),
        };
        match outcome {
            RxOutcome::Delivered => self.net.counters.link.rx_delivered += 1,
            RxOutcome::Held => self.net.counters.link.rx_held += 1,
            RxOutcome::Dropped(reason) => {
                self.net.counters.link.rx_dropped += 1;
                self.net.counters.drops.add(reason);
            }
        }
        outcome
    }

    /// Ethernet II: ours or broadcast, then by EtherType.
    fn receive_ethernet(&mut self, now: Instant, frame: &[u8]) -> Result<RxOutcome, DropReason> {
        if frame.len() < ETH_HEADER_LEN {
            return Err(DropReason::EthTruncated);
        }
        if frame.len() > self.net.config.mtu as usize + ETH_HEADER_LEN + 4 {
            return Err(DropReason::EthOversize);
        }
        let dst = MacAddr(frame[0..6].try_into().unwrap());
        if dst != self.net.config.mac && !dst.is_broadcast() {
            return Err(DropReason::EthNotForUs);
        }
        let ether_type = EtherType(u16::from_be_bytes([frame[12], frame[13]]));
        let payload = &frame[ETH_HEADER_LEN..];
        match ether_type {
            EtherType::ARP => {
                let me = self.net.me();
                self.net.arp.input(now, me, payload, &mut self.net.tx, &mut self.net.counters)?;
                Ok(RxOutcome::Delivered)
            }
            EtherType::IPV4 => self.receive_ipv4(now, payload),
            _ => Err(DropReason::EthUnknownType),
        }
    }

    /// IPv4: validate, accept, reassemble, dispatch.
    fn receive_ipv4(&mut self, now: Instant, datagram: &[u8]) -> Result<RxOutcome, DropReason> {
        let (header, payload) = ipv4::validate(datagram)?;
        let broadcast = ipv4::accept(&self.net.config, header.source_addr(), header.destination_addr())?;
        self.net.counters.ipv4.rx_datagrams += 1;
        if header.is_fragmenting_payload() {
            self.net.counters.ipv4.rx_fragments += 1;
            let Some(whole) = self.net.reassembler.push(now, &header, payload)? else {
                return Ok(RxOutcome::Held);
            };
            self.net.counters.ipv4.reassembled += 1;
            let header_bytes = whole.header.to_bytes();
            let packet = IpPacket {
                src: header.source_addr(),
                dst: header.destination_addr(),
                protocol: whole.header.protocol,
                ttl: whole.header.time_to_live,
                header: &header_bytes,
                payload: &whole.payload,
                broadcast,
            };
            let outcome = self.dispatch(now, &packet);
            self.net.reassembler.recycle(whole.payload);
            return outcome;
        }
        let packet = IpPacket {
            src: header.source_addr(),
            dst: header.destination_addr(),
            protocol: header.protocol(),
            ttl: header.ttl(),
            header: header.slice(),
            payload,
            broadcast,
        };
        self.dispatch(now, &packet)
    }

    /// Hands a whole datagram to its protocol (RFC 1122 section 3.2.1.4 says which).
    fn dispatch(&mut self, now: Instant, packet: &IpPacket<'_>) -> Result<RxOutcome, DropReason> {
        match packet.protocol {
            IpNumber::ICMP => match icmp::input(packet, &mut self.net.counters)? {
                IcmpInput::Echo { ident_seq } => self.net.send_echo_reply(now, packet, ident_seq),
                IcmpInput::Error(err) => self.icmp_error_to_transport(now, &err),
                IcmpInput::Consumed => {}
            },
            IpNumber::UDP => self.udp.input(now, &mut self.net, packet)?,
            IpNumber::TCP => self.tcp.input(now, &mut self.net, packet)?,
            _ => {
                // RFC 1122 section 3.2.2.1: protocol unreachable.
                self.net.send_icmp_error(now, packet, icmp::TYPE_DEST_UNREACHABLE, icmp::CODE_PROTOCOL_UNREACHABLE);
                return Err(DropReason::IpUnknownProtocol);
            }
        }
        self.net.counters.ipv4.rx_delivered += 1;
        Ok(RxOutcome::Delivered)
    }

    fn icmp_error_to_transport(&mut self, now: Instant, err: &IcmpError) {
        match err.protocol {
            IpNumber::UDP => self.udp.icmp_error(now, &mut self.net, err),
            IpNumber::TCP => self.tcp.icmp_error(now, &mut self.net, err),
            _ => {}
        }
    }

    /// Reports datagrams that ARP gave up on to their transports, as a locally
    /// detected "host unreachable".
    fn report_unreachable(&mut self, now: Instant) {
        // Oldest first, as they were sent.
        let mut failed = std::mem::take(&mut self.net.unreachable);
        for frame in failed.drain(..) {
            // The held frame's datagram is quoted as an ICMP error would quote it.
            if let Ok(quote) = icmp::parse_quote(&frame[ETH_HEADER_LEN..]) {
                let err =
                    IcmpError { kind: IcmpErrorKind::LocalHostUnreachable, reporter: self.net.config.addr, ..quote };
                self.icmp_error_to_transport(now, &err);
            }
            self.net.tx.recycle(frame);
        }
        // Keep the (now empty) vector's capacity for next time.
        self.net.unreachable = failed;
    }

    /// Runs every timer that is due at `now`.
    pub fn poll(&mut self, now: Instant) {
        let me = self.net.me();
        let net = &mut self.net;
        let unreachable = &mut net.unreachable;
        net.arp.poll(now, me, &mut net.tx, &mut net.counters, &mut |frame| unreachable.push(frame));
        let mut expired: Vec<Expired> = Vec::new();
        let timeouts = net.reassembler.poll(now, &mut |e| expired.push(e));
        for _ in 0..timeouts {
            net.counters.drops.add(DropReason::IpReassemblyTimeout);
        }
        for e in expired {
            // RFC 792 / RFC 1122 section 3.3.2: time exceeded, fragment reassembly.
            let header_bytes = e.header.to_bytes();
            let packet = IpPacket {
                src: Ipv4Addr::from(e.header.source),
                dst: Ipv4Addr::from(e.header.destination),
                protocol: e.header.protocol,
                ttl: e.header.time_to_live,
                header: &header_bytes,
                payload: &e.leading[..e.leading_len],
                broadcast: false,
            };
            net.send_icmp_error(now, &packet, icmp::TYPE_TIME_EXCEEDED, icmp::CODE_REASSEMBLY_TIME_EXCEEDED);
        }
        self.report_unreachable(now);
        self.udp.poll(now, &mut self.net);
        self.tcp.poll(now, &mut self.net);
    }

    /// The next instant at which [`Stack::poll`] has work, if any.
    pub fn poll_at(&self) -> Option<Instant> {
        let t = earliest(self.net.arp.poll_at(), self.net.reassembler.poll_at());
        let t = earliest(t, self.udp.poll_at());
        earliest(t, self.tcp.poll_at())
    }

    /// Hands every outbound frame to `f`, oldest first. Returns how many.
    pub fn transmit(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let link = &mut self.net.counters.link;
        self.net.tx.drain(|frame| {
            link.tx_frames += 1;
            link.tx_bytes += frame.len() as u64;
            f(frame)
        })
    }

    /// Whether frames are waiting for [`Stack::transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.net.tx.is_empty()
    }
}
