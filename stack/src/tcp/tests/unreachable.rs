//! Hosts that never answer ARP (issue 14, item 4). The IP layer reports each
//! segment it could not deliver as a locally detected "host unreachable"
//! (`IcmpErrorKind::LocalHostUnreachable`). Like Linux, that ends a connection
//! we are opening (SYN-SENT, or SYN-RECEIVED after a simultaneous open) with
//! EHOSTUNREACH; a connection opened by a peer's SYN, or already established,
//! only remembers it, to report if it times out (RFC 1122 section 4.2.3.9).
//! The timing through ARP is in `stack.rs`; these script the report itself.

use super::*;
use crate::icmp::{IcmpError, IcmpErrorKind};

/// What the IP layer reports when ARP gives up on a segment of connection
/// `id` with sequence number `seq`.
fn arp_failed(h: &Host, id: ConnId, seq: u32) -> IcmpError {
    let (_, info) = h.tcp.sockets().find(|(c, _)| *c == id).expect("the connection exists");
    let (local, remote) = (info.local, info.remote);
    let mut quoted = [0u8; 8];
    quoted[0..2].copy_from_slice(&local.port().to_be_bytes());
    quoted[2..4].copy_from_slice(&remote.port().to_be_bytes());
    quoted[4..8].copy_from_slice(&seq.to_be_bytes());
    IcmpError {
        kind: IcmpErrorKind::LocalHostUnreachable,
        reporter: *local.ip(),
        src: *local.ip(),
        dst: *remote.ip(),
        protocol: etherparse::IpNumber::TCP,
        quoted,
        quoted_len: 8,
    }
}

#[test]
fn arp_failure_ends_syn_sent_with_host_unreachable() {
    let mut h = Host::new(IP_A, 1401);
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    let syn = h.one();
    // A report quoting a sequence number we never sent is ignored (RFC 5927).
    let e = arp_failed(&h, id, syn.seq.wrapping_add(1000));
    h.tcp.handle_icmp_error(T0 + secs(3), &mut h.net, &e);
    assert_eq!(h.state(id), State::SynSent);
    let e = arp_failed(&h, id, syn.seq);
    h.tcp.handle_icmp_error(T0 + secs(3), &mut h.net, &e);
    assert_eq!(h.state(id), State::Closed);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::HostUnreachable));
    assert_eq!(h.transitions(id).last().unwrap(), "SYN-SENT>CLOSED (ARP failed)");
    h.nothing();
    assert_eq!(h.tcp.poll_at(), None, "no SYN retransmission is left");
}

#[test]
fn arp_failure_ends_syn_received_after_a_simultaneous_open() {
    let mut h = Host::new(IP_A, 1402);
    let id = h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 5000)), addr(IP_B, 6000)).unwrap();
    let syn = h.one();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(6000, 5000, 300, 0, "S", 4000), b"")).unwrap();
    assert_eq!(h.one().flags(), "S.");
    assert_eq!(h.state(id), State::SynReceived);
    let e = arp_failed(&h, id, syn.seq);
    h.tcp.handle_icmp_error(T0 + secs(3), &mut h.net, &e);
    assert_eq!(h.state(id), State::Closed);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::HostUnreachable));
}

#[test]
fn arp_failure_leaves_a_passive_syn_received_to_its_retries() {
    // Linux drops a request socket only for a hard error (tcp_req_err): a
    // SYN,ACK that could not be delivered is retransmitted until it gives up.
    let mut h = Host::new(IP_A, 1403);
    h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 7000, 0, "S", 65535), b"")).unwrap();
    let synack = h.one();
    let (id, _) = h.tcp.sockets().find(|(_, i)| i.state == State::SynReceived).expect("an embryonic connection");
    let e = arp_failed(&h, id, synack.seq);
    h.tcp.handle_icmp_error(T0 + secs(3), &mut h.net, &e);
    let state = h.tcp.sockets().find(|(c, _)| *c == id).map(|(_, i)| i.state);
    assert_eq!(state, Some(State::SynReceived));
    h.poll(h.tcp.poll_at().unwrap());
    assert_eq!(h.one().flags(), "S.", "still retransmitted");
}

#[test]
fn arp_failure_is_a_soft_error_on_an_established_connection() {
    // RFC 1122 section 4.2.3.9: soft errors are reported, never fatal.
    let mut h = Host::new(IP_A, 1404);
    let (id, peer) = active_established(&mut h, Some(1460), 65535);
    h.send(T0, id, b"anyone there?").unwrap();
    h.one();
    let e = arp_failed(&h, id, peer.ack);
    h.tcp.handle_icmp_error(T0 + secs(3), &mut h.net, &e);
    assert_eq!(h.state(id), State::Established);
    assert_eq!(h.tcp.take_error(id).unwrap(), None, "not an error the application sees yet");
    // Retransmission goes on; when it gives up, the soft error is what is reported.
    let mut retransmissions = 0;
    while let Some(t) = h.tcp.poll_at() {
        h.poll(t);
        retransmissions += h.out().iter().filter(|s| s.seq == peer.ack && !s.data.is_empty()).count();
    }
    assert!(retransmissions >= 5, "{retransmissions}");
    assert_eq!(h.state(id), State::Closed);
    assert_eq!(h.tcp.take_error(id).unwrap(), Some(TcpError::HostUnreachable));
}
