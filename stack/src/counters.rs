//! Counters for every layer and for every reason a frame is dropped, like
//! `netstat -s`. One place: each layer bumps its own fields here, and every drop
//! names exactly one [`DropReason`], so "every drop is counted" is checkable:
//! `rx_frames == rx_delivered + rx_held + total drops caused by inbound frames`.

/// Declares a counter group: a struct of `u64` fields with a doc line each, and a
/// `visit` that walks them in order (for printing and for tests).
macro_rules! counter_group {
    ($(#[$meta:meta])* pub struct $name:ident { $( $(#[doc = $doc:literal])* $field:ident ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[doc = $doc])* pub $field: u64, )*
        }
        impl $name {
            /// Calls `f(name, value)` for every counter of the group, in declaration order.
            pub fn visit(&self, f: &mut dyn FnMut(&'static str, u64)) {
                $( f(stringify!($field), self.$field); )*
            }
            /// What the counter `field` counts (its doc line), as `netstat -s` words it.
            pub fn description(field: &str) -> Option<&'static str> {
                match field {
                    $( stringify!($field) => Some(concat!($($doc),*).trim()), )*
                    _ => None,
                }
            }
        }
    };
}

/// Declares [`DropReason`] with a layer and a description for each reason.
macro_rules! drop_reasons {
    ($( $variant:ident => ($layer:literal, $text:literal), )*) => {
        /// Why a frame, datagram or segment was dropped. Every drop names exactly one.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $( $variant, )* }
        impl DropReason {
            pub const ALL: &'static [DropReason] = &[ $( DropReason::$variant, )* ];
            pub const COUNT: usize = DropReason::ALL.len();
            /// The layer that dropped it: "ethernet", "arp", "ipv4", "icmp", "udp",
            /// "tcp", or "loopback".
            pub fn layer(self) -> &'static str {
                match self { $( DropReason::$variant => $layer, )* }
            }
            /// A short description, as `netstat -s` would print it.
            pub fn description(self) -> &'static str {
                match self { $( DropReason::$variant => $text, )* }
            }
            pub fn name(self) -> &'static str {
                match self { $( DropReason::$variant => stringify!($variant), )* }
            }
        }
    };
}

drop_reasons! {
    // Ethernet II
    EthTruncated => ("ethernet", "frames shorter than an Ethernet header"),
    EthNotForUs => ("ethernet", "frames to another MAC address"),
    EthUnknownType => ("ethernet", "frames with an EtherType we do not speak"),
    EthOversize => ("ethernet", "frames larger than the MTU allows"),
    // ARP (RFC 826)
    ArpMalformed => ("arp", "malformed ARP packets"),
    ArpUnsupported => ("arp", "ARP packets for other hardware or protocol types"),
    ArpNotForUs => ("arp", "ARP packets for another address (a known sender's mapping is still refreshed)"),
    ArpAddressConflict => ("arp", "ARP packets from another host claiming our address"),
    ArpQueueFull => ("arp", "packets dropped because the queue for an unresolved address was full"),
    ArpResolutionFailed => ("arp", "packets dropped because their next hop never answered ARP"),
    ArpFailedLately => ("arp", "packets dropped because their next hop failed to answer ARP lately"),
    // IPv4 (RFC 791, 1122)
    IpTruncated => ("ipv4", "datagrams shorter than their headers"),
    IpBadVersion => ("ipv4", "datagrams with a version other than 4"),
    IpBadHeaderLength => ("ipv4", "datagrams with a bad header length"),
    IpBadTotalLength => ("ipv4", "datagrams whose total length disagrees with the frame"),
    IpBadChecksum => ("ipv4", "datagrams with a bad header checksum"),
    IpBadSource => ("ipv4", "datagrams from a broadcast, multicast or our own address"),
    IpNotForUs => ("ipv4", "datagrams to another address (we do not forward)"),
    IpUnknownProtocol => ("ipv4", "datagrams for a protocol we do not speak"),
    IpNoRoute => ("ipv4", "outgoing datagrams with no route to their destination"),
    IpFragmentDropped => ("ipv4", "fragments that could not be reassembled (bad, overlapping beyond the end, or over a limit)"),
    IpReassemblyTimeout => ("ipv4", "datagrams whose reassembly timed out"),
    IpReassemblyEvicted => ("ipv4", "datagrams evicted from reassembly, oldest first, to make room"),
    IpCannotFragment => ("ipv4", "outgoing datagrams larger than the MTU with DF set"),
    IpLoopbackSourceOffHost => ("ipv4", "outgoing datagrams from a 127/8 address to another host (RFC 1122 section 3.2.1.3 (g))"),
    // The loopback (datagrams to ourselves)
    LoopbackQueueFull => ("loopback", "datagrams to ourselves dropped because the loopback queue was full"),
    // ICMP (RFC 792)
    IcmpTruncated => ("icmp", "ICMP messages too short"),
    IcmpBadChecksum => ("icmp", "ICMP messages with a bad checksum"),
    IcmpBroadcastEcho => ("icmp", "echo requests to a broadcast address (ignored, as Linux does)"),
    IcmpUnhandledType => ("icmp", "ICMP messages of a type we do not act on"),
    IcmpErrorRateLimited => ("icmp", "ICMP errors not sent because of the rate limit"),
    // UDP (RFC 768)
    UdpTruncated => ("udp", "UDP datagrams shorter than their header or length field"),
    UdpBadChecksum => ("udp", "UDP datagrams with a bad checksum"),
    UdpNoSocket => ("udp", "UDP datagrams to a port nobody listens on"),
    UdpReceiveBufferFull => ("udp", "UDP datagrams dropped because the socket's receive buffer was full"),
    // TCP (RFC 9293)
    TcpTruncated => ("tcp", "TCP segments shorter than their header"),
    TcpBadChecksum => ("tcp", "TCP segments with a bad checksum"),
    TcpBadOptions => ("tcp", "TCP segments with malformed options"),
    TcpNoSocket => ("tcp", "TCP segments to a port or connection that does not exist"),
    TcpNotAcceptable => ("tcp", "TCP segments failing the acceptability test"),
    TcpBacklogFull => ("tcp", "SYNs dropped because the listen backlog was full"),
    TcpConnectionLimit => ("tcp", "SYNs dropped because the connection table was full"),
    TcpBroadcast => ("tcp", "TCP segments to a broadcast address (RFC 1122 section 4.2.3.10)"),
    TcpOther => ("tcp", "TCP segments dropped for other reasons"),
}

/// A count per [`DropReason`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; DropReason::COUNT],
}

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters { counts: [0; DropReason::COUNT] }
    }
}

impl DropCounters {
    pub fn add(&mut self, reason: DropReason) {
        self.counts[reason as usize] += 1;
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason as usize]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Non-zero counts, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.counts[*r as usize])).filter(|(_, n)| *n > 0)
    }
}

counter_group! {
    /// Frames through the device boundary.
    pub struct LinkCounters {
        /// frames received from the device
        rx_frames,
        /// bytes received from the device
        rx_bytes,
        /// received frames fully handled by some layer (answered, delivered or consumed)
        rx_delivered,
        /// received frames held for later (IPv4 fragments waiting for the rest)
        rx_held,
        /// received frames dropped (each also counted under a drop reason)
        rx_dropped,
        /// frames handed to the device
        tx_frames,
        /// bytes handed to the device
        tx_bytes,
        /// GSO segments received, larger than the MTU (the kernel's offloads)
        rx_gso,
        /// GSO segments handed to the device for it to cut (TSO)
        tx_gso,
    }
}

counter_group! {
    /// Frames round the loopback: datagrams to our own address or to 127/8,
    /// which never reach the device (RFC 1122 section 3.2.1.3). Like the link's,
    /// every one delivered has one outcome: `frames == delivered + held + dropped`
    /// once the queue is empty.
    pub struct LoopbackCounters {
        /// frames looped back to ourselves
        frames,
        /// bytes looped back to ourselves
        bytes,
        /// looped frames fully handled by some layer
        delivered,
        /// looped frames held for later (IPv4 fragments waiting for the rest)
        held,
        /// looped frames dropped (each also counted under a drop reason)
        dropped,
    }
}

counter_group! {
    /// ARP (RFC 826).
    pub struct ArpCounters {
        /// ARP requests received for our address
        rx_requests,
        /// ARP replies received
        rx_replies,
        /// ARP requests sent (including retries and the gratuitous announcement)
        tx_requests,
        /// ARP replies sent
        tx_replies,
        /// cache entries that expired
        expired,
        /// addresses that never answered after every retry
        resolution_failures,
        /// packets queued waiting for an address to resolve
        queued,
    }
}

counter_group! {
    /// IPv4 (RFC 791).
    pub struct Ipv4Counters {
        /// datagrams received that passed validation
        rx_datagrams,
        /// datagrams delivered to ICMP, UDP or TCP
        rx_delivered,
        /// fragments received
        rx_fragments,
        /// datagrams reassembled from fragments
        reassembled,
        /// datagrams sent
        tx_datagrams,
        /// datagrams sent in fragments
        tx_fragmented,
        /// fragments sent
        tx_fragments,
    }
}

counter_group! {
    /// ICMP (RFC 792).
    pub struct IcmpCounters {
        /// echo requests received
        rx_echo_requests,
        /// echo replies sent
        tx_echo_replies,
        /// echo replies received
        rx_echo_replies,
        /// destination unreachable received
        rx_dest_unreachable,
        /// time exceeded received
        rx_time_exceeded,
        /// other ICMP errors received (parameter problem, source quench)
        rx_other_errors,
        /// destination unreachable sent
        tx_dest_unreachable,
        /// time exceeded sent
        tx_time_exceeded,
    }
}

counter_group! {
    /// UDP (RFC 768).
    pub struct UdpCounters {
        /// datagrams delivered to a socket
        rx_datagrams,
        /// datagrams sent
        tx_datagrams,
    }
}

counter_group! {
    /// TCP (RFC 9293).
    pub struct TcpCounters {
        /// active opens (connect)
        active_opens,
        /// passive opens (a connection accepted from LISTEN)
        passive_opens,
        /// connection attempts that failed
        attempt_fails,
        /// connections reset from ESTABLISHED or CLOSE-WAIT
        estab_resets,
        /// segments received
        rx_segments,
        /// segments sent
        tx_segments,
        /// segments retransmitted
        retransmitted,
        /// resets sent
        tx_resets,
        /// resets received
        rx_resets,
        /// challenge ACKs sent (RFC 5961)
        challenge_acks,
        /// challenge ACKs not sent because of the rate limit
        challenge_acks_limited,
        /// fast retransmits (RFC 5681)
        fast_retransmits,
        /// retransmission timeouts
        timeouts,
        /// zero-window probes sent
        window_probes,
        /// keep-alive probes sent
        keepalive_probes,
        /// SYNs answered with a SYN cookie (RFC 4987 section 3.6)
        syn_cookies_sent,
        /// connections made from a valid SYN cookie
        syn_cookies_received,
        /// ACKs at a listener with cookies out that carried no valid cookie
        syn_cookies_failed,
        /// segments dropped by PAWS (RFC 7323 section 5)
        paws_rejected,
        /// SACK-based fast recoveries entered (RFC 6675)
        sack_recoveries,
        /// tail loss probes sent (RFC 8985 section 7)
        tail_loss_probes,
        /// losses a retransmitted tail loss probe repaired alone (RFC 8985 section 7.4)
        tlp_repairs,
        /// retransmissions RACK found lost (RFC 8985 section 6.2)
        lost_retransmits,
        /// RACK reordering timer expirations (RFC 8985 section 6.2 step 5)
        rack_timeouts,
        /// retransmission timeouts found spurious and undone (RFC 3522)
        spurious_rtos,
        /// fast recoveries undone, timestamps showing the original arrived (RFC 3522; Linux's TCPPartialUndo)
        ts_undos,
        /// fast recoveries undone, D-SACKs reporting every retransmission as a duplicate (RFC 3708; Linux's TCPDSACKUndo)
        dsack_undos,
        /// slow starts left by HyStart++ on a round-trip increase (RFC 9406; Linux's TCPHystartDelayDetect)
        hystart_delay_detect,
        /// the congestion windows, in segments, at those exits, summed (Linux's TCPHystartDelayCwnd)
        hystart_delay_cwnd,
        /// segments whose data stayed in their frame's buffer instead of being copied (zero-copy receive)
        rx_kept,
    }
}

/// Every counter of the stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub link: LinkCounters,
    pub loopback: LoopbackCounters,
    pub arp: ArpCounters,
    pub ipv4: Ipv4Counters,
    pub icmp: IcmpCounters,
    pub udp: UdpCounters,
    pub tcp: TcpCounters,
    pub drops: DropCounters,
}

impl Counters {
    /// Calls `f(layer, name, value)` for every counter of every layer, in order.
    pub fn visit_layers(&self, f: &mut dyn FnMut(&'static str, &'static str, u64)) {
        self.link.visit(&mut |n, v| f("link", n, v));
        self.loopback.visit(&mut |n, v| f("loopback", n, v));
        self.arp.visit(&mut |n, v| f("arp", n, v));
        self.ipv4.visit(&mut |n, v| f("ipv4", n, v));
        self.icmp.visit(&mut |n, v| f("icmp", n, v));
        self.udp.visit(&mut |n, v| f("udp", n, v));
        self.tcp.visit(&mut |n, v| f("tcp", n, v));
    }

    /// What the counter `name` of `layer` (as [`Counters::visit_layers`] names them) counts.
    pub fn description(layer: &str, name: &str) -> Option<&'static str> {
        match layer {
            "link" => LinkCounters::description(name),
            "loopback" => LoopbackCounters::description(name),
            "arp" => ArpCounters::description(name),
            "ipv4" => Ipv4Counters::description(name),
            "icmp" => IcmpCounters::description(name),
            "udp" => UdpCounters::description(name),
            "tcp" => TcpCounters::description(name),
            _ => None,
        }
    }

    /// Calls `f(layer, name, value)` for every counter, then for every non-zero drop reason.
    pub fn visit(&self, f: &mut dyn FnMut(&'static str, &'static str, u64)) {
        self.visit_layers(f);
        for (reason, n) in self.drops.iter() {
            f(reason.layer(), reason.description(), n);
        }
    }

    /// A report as `netstat -s` prints the kernel's (what `tapstack stats` shows and
    /// `tapstack up` prints at exit): a section per layer (Link, Loopback, Arp, Ip,
    /// Icmp, Udp, Tcp), one indented counter per line, value first, in the words of its
    /// documentation; then every drop reason that occurred, with its count and name.
    pub fn report(&self) -> String {
        use core::fmt::Write;
        let mut out = String::new();
        let mut layer = "";
        self.visit_layers(&mut |l, name, v| {
            if l != layer {
                let title = match l {
                    "link" => "Link",
                    "loopback" => "Loopback",
                    "arp" => "Arp",
                    "ipv4" => "Ip",
                    "icmp" => "Icmp",
                    "udp" => "Udp",
                    "tcp" => "Tcp",
                    other => other,
                };
                let _ = writeln!(out, "{title}:");
                layer = l;
            }
            let words = Counters::description(l, name).map_or_else(|| name.replace('_', " "), str::to_string);
            let _ = writeln!(out, "    {v} {words}");
        });
        let _ = writeln!(out, "Drops:");
        if self.drops.total() == 0 {
            let _ = writeln!(out, "    none");
        }
        for (reason, n) in self.drops.iter() {
            let _ = writeln!(out, "    {n} {} ({})", reason.description(), reason.name());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_its_doc_line_as_description() {
        let mut missing = Vec::new();
        Counters::default().visit_layers(&mut |layer, name, _| {
            if Counters::description(layer, name).is_none_or(|d| d.is_empty() || d.starts_with(' ')) {
                missing.push(format!("{layer}.{name}"));
            }
        });
        assert!(missing.is_empty(), "{missing:?}");
        assert_eq!(Counters::description("link", "rx_frames"), Some("frames received from the device"));
        assert_eq!(Counters::description("tcp", "no_such_counter"), None);
    }

    #[test]
    fn report_has_netstat_sections_in_order_with_described_counters_and_drops() {
        let mut c = Counters::default();
        assert!(c.report().ends_with("Drops:\n    none\n"));
        c.link.rx_frames = 12;
        c.icmp.rx_echo_requests = 3;
        c.drops.add(DropReason::EthNotForUs);
        c.drops.add(DropReason::EthNotForUs);
        let out = c.report();
        let titles: Vec<&str> = out.lines().filter(|l| !l.starts_with(' ')).collect();
        assert_eq!(titles, ["Link:", "Loopback:", "Arp:", "Ip:", "Icmp:", "Udp:", "Tcp:", "Drops:"]);
        assert!(out.starts_with("Link:\n    12 frames received from the device\n"), "{out}");
        assert!(out.contains("Icmp:\n    3 echo requests received\n"), "{out}");
        assert!(out.ends_with("Drops:\n    2 frames to another MAC address (EthNotForUs)\n"), "{out}");
    }
}
