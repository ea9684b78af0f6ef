//! RFC 9293 conformance: OPEN (sections 3.5 and 3.9.1.1): passive opens beside
//! other connections, the local address, invalid remote addresses. Each test
//! names the requirement IDs it shows; tests/conformance/rfc9293.tsv cites them.

use super::conformance_support::*;
use super::*;

#[test]
fn passive_open_leaves_existing_connections_alone() {
    // MUST-41: a passive OPEN either creates a listener or fails; existing
    // connections, on its port or another, are untouched either way.
    let mut h = Host::new(IP_A, 940);
    let (l, server, mut client_peer) = passive_established(&mut h);
    let id = h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 5000)), addr(IP_B, 80)).unwrap();
    let syn = h.one();
    let mut peer = Peer { port: 80, our_port: 5000, seq: 300, ack: syn.seq + 1, wnd: 65535 };
    peer.send(&mut h, T0, "SA", b"").unwrap();
    h.one();
    let before: Vec<(ConnId, TcpInfo)> = h.tcp.sockets().collect();
    assert_eq!(h.tcp.listen(&mut h.net, addr(IP_A, 80), 8), Err(TcpError::AddrInUse));
    assert_eq!(h.tcp.listen(&mut h.net, addr(IP_A, 5000), 8), Err(TcpError::AddrInUse));
    let other = h.tcp.listen(&mut h.net, addr(IP_A, 8080), 8).unwrap();
    let after: Vec<(ConnId, TcpInfo)> = h.tcp.sockets().filter(|(c, _)| *c != other).collect();
    assert_eq!(before, after);
    // Both connections still carry data.
    client_peer.send(&mut h, T0 + secs(1), "PA", b"to the server").unwrap();
    assert_eq!(h.recv_all(T0 + secs(1), server).unwrap(), b"to the server");
    peer.send(&mut h, T0 + secs(1), "PA", b"to the client").unwrap();
    assert_eq!(h.recv_all(T0 + secs(1), id).unwrap(), b"to the client");
    assert_eq!(h.state(l), State::Listen);
}

#[test]
fn listening_goes_on_while_connections_on_the_port_are_being_opened() {
    // MUST-42: the listener keeps accepting SYNs while earlier connections on
    // its port are in SYN-RECEIVED, and while an active open from its port
    // (SO_REUSEADDR) is in SYN-SENT.
    let mut h = Host::new(IP_A, 941);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    let opts = SocketOptions { reuse_addr: true, ..SocketOptions::default() };
    let active = h.tcp.connect_with(T0, &mut h.net, Some(addr(IP_A, 80)), addr(IP_B, 9), opts).unwrap();
    assert_eq!(h.one().flags(), "S");
    assert_eq!(h.state(active), State::SynSent);
    let mut peers = Vec::new();
    for port in [4000, 4001, 4002] {
        let mut p = Peer { port, our_port: 80, seq: 100, ack: 0, wnd: 65535 };
        p.send(&mut h, T0, "S", b"").unwrap();
        p.ack = h.one().seq + 1;
        peers.push(p);
    }
    let syn_received = h.tcp.sockets().filter(|(_, i)| i.state == State::SynReceived).count();
    assert_eq!(syn_received, 3);
    assert_eq!(h.state(l), State::Listen);
    for p in &mut peers {
        p.send(&mut h, T0 + ms(1), "A", b"").unwrap();
    }
    for port in [4000, 4001, 4002] {
        let (_, remote) = h.tcp.accept(l).unwrap().unwrap();
        assert_eq!(remote.port(), port);
    }
    assert_eq!(h.state(active), State::SynSent, "the active open went on meanwhile");
}

#[test]
fn open_with_a_local_ip_address() {
    // MUST-43: the optional local IP address of OPEN, active and passive.
    let mut h = Host::new(IP_A, 942);
    let id = h.tcp.connect(T0, &mut h.net, Some(addr(IP_A, 5555)), addr(IP_B, 80)).unwrap();
    assert_eq!(h.tcp.local_addr(id).unwrap(), addr(IP_A, 5555));
    let p = h.net.out.pop().unwrap();
    assert_eq!((p.src, p.seg().src_port), (IP_A, 5555));
    // An address that is not ours is refused, for both kinds of OPEN.
    let foreign = Ipv4Addr::new(10, 0, 0, 9);
    assert_eq!(h.tcp.connect(T0, &mut h.net, Some(addr(foreign, 1)), addr(IP_B, 80)), Err(TcpError::InvalidArgument));
    assert_eq!(h.tcp.listen(&mut h.net, addr(foreign, 81), 8), Err(TcpError::InvalidArgument));
    // A listener on our address takes connections to it.
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 8).unwrap();
    assert_eq!(h.tcp.local_addr(l).unwrap(), addr(IP_A, 80));
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 1, 0, "S", 1000), b"")).unwrap();
    assert_eq!(h.one().flags(), "S.");
}

#[test]
fn local_address_comes_from_the_ip_layer_and_stays_the_same() {
    // MUST-44: without a local address, OPEN takes the one IP gives (the
    // stack's address; it has one interface). MUST-45: every later segment of
    // the connection, and of one accepted on a wildcard listener, uses it.
    let mut h = Host::new(IP_A, 943);
    let (id, mut peer) = active_established(&mut h, Some(1000), 65535);
    assert_eq!(*h.tcp.local_addr(id).unwrap().ip(), h.net.local_ip());
    let l = h.tcp.listen(&mut h.net, addr(Ipv4Addr::UNSPECIFIED, 80), 8).unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 1, 0, "S", 65535), b"")).unwrap();
    let sa = h.net.out.pop().unwrap();
    h.deliver(T0, &packet(IP_B, IP_A, &seg(4000, 80, 2, sa.seg().seq + 1, "A", 65535), b"")).unwrap();
    let (server, _) = h.tcp.accept(l).unwrap().unwrap();
    assert_eq!(h.tcp.local_addr(server).unwrap(), addr(IP_A, 80));
    let mut packets = vec![sa];
    h.send(T0 + secs(1), id, b"a").unwrap();
    h.send(T0 + secs(1), server, b"b").unwrap();
    peer.send(&mut h, T0 + secs(1), "PA", b"c").unwrap();
    h.tcp.close(T0 + secs(2), &mut h.net, id).unwrap();
    h.tcp.abort(T0 + secs(2), &mut h.net, server).unwrap();
    packets.append(&mut h.net.out);
    assert!(packets.len() >= 5);
    assert!(packets.iter().all(|p| p.src == IP_A), "{packets:?}");
}

#[test]
fn open_to_a_broadcast_multicast_or_unspecified_address_is_refused() {
    // MUST-46 (the addresses the TCP layer can tell invalid by themselves).
    let mut h = Host::new(IP_A, 944);
    for ip in
        [Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 0, 0, 1), Ipv4Addr::new(239, 255, 255, 250), Ipv4Addr::UNSPECIFIED]
    {
        assert_eq!(h.tcp.connect(T0, &mut h.net, None, addr(ip, 80)), Err(TcpError::InvalidArgument), "{ip}");
    }
    h.nothing();
    assert_eq!(h.tcp.connection_count(), 0);
}

#[test]
fn open_to_the_subnet_broadcast_address_is_refused() {
    // MUST-46: the subnet-directed broadcast is a broadcast address too. Only
    // the stack knows the prefix, so this goes through a whole Stack.
    let mut s = stack_at(IP_A, MAC_A, |_| {});
    let (tcp, net) = s.tcp();
    let r = tcp.connect(Instant::from_secs(1), net, None, addr(SUBNET_BROADCAST, 80));
    assert_eq!(r, Err(TcpError::InvalidArgument));
    let mut frames = Vec::new();
    s.transmit(|f| frames.push(f.to_vec()));
    assert!(tcp_segments(&frames).is_empty(), "a SYN was sent to the broadcast address");
}
