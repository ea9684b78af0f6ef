//! The stack: the sans-IO core that the drivers (runtime, tests, replay) call.
//!
//! It is handed the time and inbound frames ([`Stack::receive`]), runs its timers
//! when asked ([`Stack::poll`]), and yields outbound frames ([`Stack::transmit`])
//! and its next deadline ([`Stack::poll_at`]). It never reads a clock, sleeps,
//! spawns a thread or touches a device (DEVELOPERS.md, principle 1).
//!
//! [`Stack`] is the composition and nothing more: it owns the IP layer
//! ([`IpLayer`]) and the transports ([`Udp`], [`Tcp`]), and routes between them.
//! A frame goes up through the IP layer to a whole datagram, which is dispatched
//! here by protocol; ICMP errors and ARP failures come back here to be handed to
//! the transport they concern. The transports send through the IP layer, which
//! they see only as their own traits (implemented in `bindings.rs`). This is the
//! one module that knows every layer, so that no layer needs to know another's.
//!
//! Datagrams to ourselves (our address, 127/8) go round the loopback
//! ([`crate::loopback`]): the IP layer queues them instead of handing them to
//! the link, [`Stack::poll_at`] reports the time they were sent (so a driver runs
//! again at once), and [`Stack::poll`] takes them in as if they had arrived,
//! without a device. [`Stack::transmit_looped`] shows them to a capture.

use crate::buffer::ETH_HEADER_LEN;
use crate::config::Config;
use crate::counters::{Counters, DropReason};
use crate::ethernet::MacAddr;
use crate::icmp::{self, IcmpError};
use crate::ip_layer::{IpLayer, Ipv4Input, RxOutcome};
use crate::ipv4::IpPacket;
use crate::offload::{RxOffload, TxOffload};
use crate::tcp::Tcp;
use crate::time::{earliest, Instant};
use crate::udp::Udp;
use etherparse::IpNumber;

/// The whole stack: the layers below the transports, and the transports.
#[derive(Debug)]
pub struct Stack {
    ip: IpLayer,
    udp: Udp,
    tcp: Tcp,
}

impl Stack {
    /// A stack with this configuration, or a message saying what is wrong with it.
    pub fn new(config: Config) -> Result<Stack, String> {
        config.validate()?;
        // The order of the first random draws is fixed (a run replays from its
        // seed): IPv4's identification, then TCP's secrets.
        let mut ip = IpLayer::new(config);
        let udp = Udp::new();
        let tcp_config = ip.config().tcp.clone();
        let tcp = Tcp::new(&mut ip, tcp_config);
        Ok(Stack { ip, udp, tcp })
    }

    pub fn config(&self) -> &Config {
        self.ip.config()
    }

    pub fn counters(&self) -> &Counters {
        self.ip.counters()
    }

    /// The IP layer (everything below the transports).
    pub fn ip(&mut self) -> &mut IpLayer {
        &mut self.ip
    }

    /// Sends an ARP probe for our own address (RFC 5227 section 2.1.1); a host
    /// that answers shows in [`Stack::address_conflict`].
    pub fn probe_address(&mut self) {
        self.ip.probe_address();
    }

    /// The MAC address of a host that claimed our address, if one did.
    pub fn address_conflict(&self) -> Option<MacAddr> {
        self.ip.address_conflict()
    }

    /// Every TCP and UDP socket, as `ss -tuai` lists them, with each timer as the
    /// time left from `now` (see [`crate::socket_table`]).
    pub fn socket_table(&self, now: Instant) -> Vec<crate::SocketEntry> {
        crate::socket_table::collect(&self.tcp, &self.udp, now)
    }

    /// UDP, with the layers below it to send through.
    pub fn udp(&mut self) -> (&mut Udp, &mut IpLayer) {
        (&mut self.udp, &mut self.ip)
    }

    /// TCP, with the layers below it to send through.
    pub fn tcp(&mut self) -> (&mut Tcp, &mut IpLayer) {
        (&mut self.tcp, &mut self.ip)
    }

    /// Announces us on the link with a gratuitous ARP (RFC 5227 section 3 style
    /// announcement, which RFC 826 caches accept as an update).
    pub fn start(&mut self, now: Instant) {
        self.ip.announce(now);
    }

    /// Takes one inbound Ethernet frame.
    pub fn receive(&mut self, now: Instant, frame: &[u8]) -> RxOutcome {
        self.receive_offloaded(now, frame, RxOffload::NONE)
    }

    /// Takes one inbound Ethernet frame with what the link says about it (a GSO
    /// segment beyond the MTU, a checksum it vouched for: [`crate::offload`]).
    pub fn receive_offloaded(&mut self, now: Instant, frame: &[u8], rx: RxOffload) -> RxOutcome {
        self.ip.count_rx_frame(frame.len(), rx);
        let outcome = match self.receive_frame(now, frame, rx) {
            Ok(o) => o,
            Err(reason) => RxOutcome::Dropped(reason),
        };
        self.ip.count_rx_outcome(outcome);
        outcome
    }

    /// Takes one inbound frame, `frame[..len]`, in a buffer the stack may keep
    /// instead of copying from it: a TCP segment of more than one MSS arriving
    /// in order, while its connection holds nothing out of order, stays in it
    /// (zero-copy receive, `tcp::recv`, at most `buffer::MAX_KEPT_BUFFERS` at
    /// once), and `frame` is then replaced by a spare buffer of at least its
    /// length, from the pool kept buffers go back to once read. Otherwise as
    /// [`Stack::receive_offloaded`].
    pub fn receive_owned(&mut self, now: Instant, frame: &mut Vec<u8>, len: usize, rx: RxOffload) -> RxOutcome {
        self.ip.rx_claim.offer(&frame[..len], frame.capacity());
        let outcome = self.receive_offloaded(now, &frame[..len], rx);
        if let Some((at, token)) = self.ip.rx_claim.take() {
            let spare = self.ip.take_spare(frame.len());
            let kept = std::mem::replace(frame, spare);
            self.tcp.fill_claim(&mut self.ip, kept, at, token);
        }
        outcome
    }

    /// Up through the IP layer to a whole datagram, then to its protocol.
    fn receive_frame(&mut self, now: Instant, frame: &[u8], rx: RxOffload) -> Result<RxOutcome, DropReason> {
        let Some(datagram) = self.ip.receive_ethernet(now, frame, rx)? else {
            // ARP, answered by the IP layer.
            return Ok(RxOutcome::Delivered);
        };
        self.receive_datagram(now, datagram, false, rx)
    }

    /// Delivers the frames waiting round the loopback, those queued before this
    /// call (what they answer waits for the next one, so that a driver's rounds
    /// stay bounded), each as if it had arrived from the link.
    fn deliver_looped(&mut self, now: Instant) {
        for _ in 0..self.ip.looped_pending() {
            let Some(frame) = self.ip.take_looped() else { break };
            let outcome = match self.receive_datagram(now, &frame[ETH_HEADER_LEN..], true, RxOffload::NONE) {
                Ok(o) => o,
                Err(reason) => RxOutcome::Dropped(reason),
            };
            self.ip.looped_done(frame, outcome);
        }
    }

    /// An IPv4 datagram, from the link (with what the link says of it, `rx`)
    /// or round the loopback (`looped`), through reassembly to its protocol.
    fn receive_datagram(
        &mut self,
        now: Instant,
        datagram: &[u8],
        looped: bool,
        rx: RxOffload,
    ) -> Result<RxOutcome, DropReason> {
        match self.ip.receive_ipv4(now, datagram, looped, rx)? {
            Ipv4Input::Whole(packet) => self.dispatch(now, &packet),
            Ipv4Input::Held => Ok(RxOutcome::Held),
            Ipv4Input::Reassembled { whole, src, dst, broadcast } => {
                let header_bytes = whole.header.to_bytes();
                let packet = IpPacket {
                    src,
                    dst,
                    protocol: whole.header.protocol,
                    ttl: whole.header.time_to_live,
                    header: &header_bytes,
                    payload: &whole.payload,
                    broadcast,
                    csum_trusted: false,
                };
                let outcome = self.dispatch(now, &packet);
                self.ip.recycle_reassembled(whole.payload);
                outcome
            }
        }
    }

    /// Hands a whole datagram to its protocol (RFC 1122 section 3.2.1.4 says which).
    fn dispatch(&mut self, now: Instant, packet: &IpPacket<'_>) -> Result<RxOutcome, DropReason> {
        match packet.protocol {
            IpNumber::ICMP => {
                if let Some(err) = self.ip.receive_icmp(now, packet)? {
                    self.icmp_error_to_transport(now, &err);
                }
            }
            IpNumber::UDP => self.udp.input(now, &mut self.ip, packet)?,
            IpNumber::TCP => self.tcp.input(now, &mut self.ip, packet)?,
            _ => {
                // RFC 1122 section 3.2.2.1: protocol unreachable.
                self.ip.send_icmp_error(now, packet, icmp::TYPE_DEST_UNREACHABLE, icmp::CODE_PROTOCOL_UNREACHABLE);
                return Err(DropReason::IpUnknownProtocol);
            }
        }
        self.ip.count_delivered();
        Ok(RxOutcome::Delivered)
    }

    /// RFC 1122 section 3.2.2: "the ICMP error message MUST be passed to the
    /// transport layer" that sent the datagram it quotes.
    fn icmp_error_to_transport(&mut self, now: Instant, err: &IcmpError) {
        match err.protocol {
            IpNumber::UDP => self.udp.icmp_error(now, &mut self.ip, err),
            IpNumber::TCP => self.tcp.icmp_error(now, &mut self.ip, err),
            _ => {}
        }
    }

    /// Reports datagrams that ARP gave up on to their transports, as a locally
    /// detected "host unreachable".
    fn report_unreachable(&mut self, now: Instant) {
        // Oldest first, as they were sent.
        let mut failed = self.ip.take_unreachable();
        for frame in failed.drain(..) {
            if let Some(err) = self.ip.unreachable_error(&frame) {
                self.icmp_error_to_transport(now, &err);
            }
            self.ip.recycle(frame);
        }
        self.ip.return_unreachable(failed);
    }

    /// Runs every timer that is due at `now`: first the loopback's frames are
    /// delivered (an answer that is there is seen before a timer acts on its
    /// absence), then the IP layer's timers (ARP, reassembly), the reports of what
    /// ARP could not deliver, and the transports' timers.
    pub fn poll(&mut self, now: Instant) {
        self.deliver_looped(now);
        self.ip.poll(now);
        self.report_unreachable(now);
        self.udp.poll(now, &mut self.ip);
        self.tcp.poll(now, &mut self.ip);
    }

    /// Frames read together from the device follow, fed one by one with
    /// [`Stack::receive`] until [`Stack::end_batch`]: TCP may then answer the
    /// batch's in-order data with one ACK at its end (`TcpConfig::stretch_acks`).
    pub fn begin_batch(&mut self) {
        self.tcp.begin_batch();
    }

    /// The batch begun with [`Stack::begin_batch`] has been fed: the ACKs it
    /// held back are sent.
    pub fn end_batch(&mut self, now: Instant) {
        self.tcp.end_batch(now, &mut self.ip);
    }

    /// The next instant at which [`Stack::poll`] has work, if any. While frames
    /// wait round the loopback it is the time the oldest was sent: due at once.
    pub fn poll_at(&self) -> Option<Instant> {
        let t = earliest(self.ip.poll_at(), self.udp.poll_at());
        earliest(t, self.tcp.poll_at())
    }

    /// Hands every outbound frame to `f`, oldest first. Returns how many. With
    /// `Config::offload.tso`, use [`Stack::transmit_offloaded`]: a frame may then
    /// be a GSO segment with a partial checksum, which only its [`TxOffload`]
    /// explains.
    pub fn transmit(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        self.ip.transmit(|frame, _| f(frame))
    }

    /// Hands every outbound frame to `f`, oldest first, with what it asks of
    /// the link (a GSO segment's size, a checksum left partial). Returns how many.
    pub fn transmit_offloaded(&mut self, f: impl FnMut(&[u8], TxOffload)) -> usize {
        self.ip.transmit(f)
    }

    /// [`Stack::transmit_offloaded`] handing each frame over as its buffer
    /// (its length the frame's): `f` may take it, leaving a buffer of its own
    /// in its place for the stack's pool, so that a 64 KiB GSO segment is
    /// moved out rather than copied.
    pub fn transmit_buffers(&mut self, f: impl FnMut(&mut Vec<u8>, TxOffload)) -> usize {
        self.ip.transmit_buffers(f)
    }

    /// Whether frames are waiting for [`Stack::transmit`].
    pub fn has_transmit(&self) -> bool {
        self.ip.has_transmit()
    }

    /// Hands every frame the stack delivered to itself round the loopback since
    /// the last call to `f`, oldest first: for a capture, never for the link.
    /// Returns how many. (Not called, they are kept up to
    /// [`Config::loopback_queue`], the oldest given up first.)
    pub fn transmit_looped(&mut self, f: impl FnMut(&[u8])) -> usize {
        self.ip.transmit_looped(f)
    }

    /// Whether looped frames are waiting for [`Stack::transmit_looped`].
    pub fn has_looped(&self) -> bool {
        self.ip.has_looped()
    }

    /// Whether `ip` is one of ours: our address, or any of 127/8.
    pub fn is_local(&self, ip: std::net::Ipv4Addr) -> bool {
        self.ip.is_local(ip)
    }
}
