//! ICMP through the whole stack in virtual time: frames in, frames out, checked
//! with etherparse (not with the stack's own parsers).

use etherparse::{ArpOperation, EtherType, Icmpv4Type, IpNumber, PacketBuilder, SlicedPacket};
use stack::{Config, Duration, Instant, MacAddr, RxOutcome, Stack};
use std::net::Ipv4Addr;
use tapstack_tests::frames;

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const US_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn stack() -> Stack {
    Stack::new(Config::new(MacAddr(US_MAC), US, 24)).unwrap()
}

fn sent(s: &mut Stack) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    s.transmit(|f| out.push(f.to_vec()));
    out
}

/// The peer introduces itself by ARP, as the kernel does before its first ping.
fn introduce_peer(s: &mut Stack, now: Instant) {
    let req = frames::arp(ArpOperation::REQUEST, PEER_MAC, frames::BROADCAST, (PEER_MAC, PEER), ([0; 6], US));
    assert_eq!(s.receive(now, &req), RxOutcome::Delivered);
    let replies = sent(s);
    assert_eq!(replies.len(), 1, "one ARP reply");
}

#[test]
fn echo_request_gets_an_exact_echo_reply() {
    let mut s = stack();
    let t = Instant::from_secs(1);
    introduce_peer(&mut s, t);
    let data: Vec<u8> = (0..56u8).collect();
    let req = frames::echo_request(PEER_MAC, US_MAC, PEER, US, 0x1234, 7, &data);
    assert_eq!(s.receive(t, &req), RxOutcome::Delivered);
    let out = sent(&mut s);
    assert_eq!(out.len(), 1);
    let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
    let eth = p.link.unwrap().to_header().unwrap();
    let eth = eth.ethernet2().unwrap();
    assert_eq!((eth.source, eth.destination, eth.ether_type), (US_MAC, PEER_MAC, EtherType::IPV4));
    let etherparse::NetSlice::Ipv4(ip) = p.net.unwrap() else { panic!("not IPv4") };
    let h = ip.header();
    assert_eq!((h.source_addr(), h.destination_addr(), h.protocol(), h.ttl()), (US, PEER, IpNumber::ICMP, 64));
    assert_eq!(stack::checksum::of(h.slice()), 0, "IP header checksum");
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = p.transport else { panic!("not ICMP") };
    match icmp.icmp_type() {
        Icmpv4Type::EchoReply(e) => assert_eq!((e.id, e.seq), (0x1234, 7)),
        other => panic!("{other:?}"),
    }
    assert_eq!(icmp.payload(), &data[..]);
    assert_eq!(stack::checksum::of(icmp.slice()), 0, "ICMP checksum");
    assert_eq!(s.counters().icmp.tx_echo_replies, 1);
}

#[test]
fn first_ping_from_an_unknown_peer_waits_for_arp() {
    let mut s = stack();
    let t = Instant::from_secs(1);
    let req = frames::echo_request(PEER_MAC, US_MAC, PEER, US, 1, 1, b"x");
    assert_eq!(s.receive(t, &req), RxOutcome::Delivered);
    // We do not know the peer's MAC: the reply waits and we ask.
    let out = sent(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(u16::from_be_bytes([out[0][12], out[0][13]]), 0x0806, "an ARP request goes out first");
    let reply = frames::arp(ArpOperation::REPLY, PEER_MAC, US_MAC, (PEER_MAC, PEER), (US_MAC, US));
    s.receive(t + Duration::from_millis(1), &reply);
    let out = sent(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(frames::ip_protocol(&out[0]), Some(IpNumber::ICMP), "then the held echo reply");
}

#[test]
fn broadcast_echo_is_ignored_and_counted() {
    let mut s = stack();
    let req = frames::echo_request(PEER_MAC, frames::BROADCAST, PEER, Ipv4Addr::new(10, 0, 0, 255), 1, 1, b"x");
    assert_eq!(s.receive(Instant::ZERO, &req), RxOutcome::Dropped(stack::DropReason::IcmpBroadcastEcho));
    assert!(sent(&mut s).is_empty());
}

#[test]
fn unknown_protocol_gets_protocol_unreachable_rate_limited() {
    let mut c = Config::new(MacAddr(US_MAC), US, 24);
    c.icmp_error_rate = 10;
    c.icmp_error_burst = 3;
    let mut s = Stack::new(c).unwrap();
    let t = Instant::from_secs(1);
    introduce_peer(&mut s, t);
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, US_MAC)
        .ipv4(PEER.octets(), US.octets(), 64)
        .write(&mut frame, IpNumber(253), b"experiment")
        .unwrap();
    let mut unreachables = 0;
    for _ in 0..10 {
        assert_eq!(s.receive(t, &frame), RxOutcome::Dropped(stack::DropReason::IpUnknownProtocol));
        for f in sent(&mut s) {
            let p = SlicedPacket::from_ethernet(&f).unwrap();
            let Some(etherparse::TransportSlice::Icmpv4(icmp)) = p.transport else { panic!() };
            assert_eq!(
                icmp.icmp_type(),
                Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Protocol)
            );
            // RFC 792: the quote is the offending header and the first 8 bytes of its data.
            assert_eq!(&icmp.payload()[20..28], b"experime");
            unreachables += 1;
        }
    }
    assert_eq!(unreachables, 3, "the burst, then the rate limit");
    assert_eq!(s.counters().drops.get(stack::DropReason::IcmpErrorRateLimited), 7);
    // A tenth of a second later one more token is there.
    s.receive(t + Duration::from_millis(100), &frame);
    assert_eq!(sent(&mut s).len(), 1);
}

#[test]
fn fragmented_echo_request_gets_a_fragmented_reply() {
    let mut s = stack();
    let t = Instant::from_secs(1);
    introduce_peer(&mut s, t);
    let data: Vec<u8> = (0..4000u32).map(|i| (i * 7) as u8).collect();
    let whole = frames::echo_request(PEER_MAC, US_MAC, PEER, US, 9, 3, &data);
    let frags = frames::fragment(&whole, 1500);
    assert_eq!(frags.len(), 3);
    // Out of order, with a duplicate: reassembly must not care.
    for (i, f) in [2usize, 0, 0, 1].iter().map(|i| (*i, &frags[*i])) {
        let o = s.receive(t, f);
        assert!(matches!(o, RxOutcome::Held | RxOutcome::Delivered), "fragment {i}: {o:?}");
    }
    let out = sent(&mut s);
    assert_eq!(out.len(), 3, "a 4028-byte reply leaves in three fragments");
    // Put the reply back together with etherparse's own defragmenter, independently of ours.
    let mut buf = etherparse::defrag::IpDefragBuf::new(IpNumber::ICMP, Vec::new(), Vec::new());
    for f in &out {
        let p = SlicedPacket::from_ethernet(f).unwrap();
        let etherparse::NetSlice::Ipv4(ip) = p.net.unwrap() else { panic!() };
        let h = ip.header();
        assert!(h.total_len() as usize <= 1500);
        assert_eq!(stack::checksum::of(h.slice()), 0);
        buf.add(h.fragments_offset(), h.more_fragments(), ip.payload().payload).unwrap();
    }
    assert!(buf.is_complete());
    let reply = buf.data();
    assert_eq!(stack::checksum::of(reply), 0, "ICMP checksum over the whole reply");
    assert_eq!(reply[0], 0, "echo reply");
    assert_eq!(&reply[4..8], &[0, 9, 0, 3]);
    assert_eq!(&reply[8..], &data[..]);
}

#[test]
fn arp_failure_drops_and_counts_what_was_waiting() {
    let mut s = stack();
    let t = Instant::from_secs(1);
    // A ping from a peer that then never answers our ARP requests.
    let req = frames::echo_request(PEER_MAC, US_MAC, PEER, US, 1, 1, b"x");
    s.receive(t, &req);
    let mut now = t;
    let mut requests = sent(&mut s).len();
    while let Some(at) = s.poll_at() {
        if at > t + Duration::from_secs(30) {
            break;
        }
        now = at;
        s.poll(now);
        requests += sent(&mut s).len();
    }
    assert_eq!(requests, 3, "three requests, then give up (ArpConfig default)");
    assert!(now >= t + Duration::from_secs(2));
    assert_eq!(s.counters().drops.get(stack::DropReason::ArpResolutionFailed), 1);
    assert_eq!(s.counters().arp.resolution_failures, 1);
}
