//! TIME-WAIT records (issue 13, item 3): a connection the user closed is
//! replaced in TIME-WAIT by a compact record that answers on the wire exactly
//! as the whole connection did, and a flood of them leaves no memory behind.

use super::*;
use crate::tcp::conn::{Conn, TimeWait};

/// The scripted peer's segment with the options a Linux peer puts on it.
fn peer_seg(p: &Peer, seq: u32, ack: u32, flags: &str, ts: Option<(u32, u32)>, data: &[u8]) -> Packet {
    let mut s = seg(p.port, p.our_port, seq, ack, flags, p.wnd);
    s.timestamp = ts;
    packet(IP_B, IP_A, &s, data)
}

/// Host connects to the scripted peer (SACK, timestamps, window scaling all
/// agreed), receives some data and reads it, then closes (`close`) or only
/// shuts its sending side down, holding the socket; the peer's FIN follows:
/// TIME-WAIT. Returns the connection, the peer and the peer's last TSval.
fn to_time_wait(h: &mut Host, close: bool) -> (ConnId, Peer, u32) {
    let id = h.tcp.connect(T0, &mut h.net, None, addr(IP_B, 80)).unwrap();
    let syn = h.one();
    let mut peer = Peer { port: 80, our_port: syn.src_port, seq: 5000, ack: syn.seq.wrapping_add(1), wnd: 1000 };
    let mut s = seg(80, syn.src_port, peer.seq, peer.ack, "SA", 29200);
    s.mss = Some(1460);
    s.sack_permitted = true;
    s.wscale = Some(7);
    s.timestamp = Some((100, syn.ts.unwrap().0));
    h.deliver(T0 + ms(10), &packet(IP_B, IP_A, &s, b"")).unwrap();
    peer.seq += 1;
    let ecr = h.one().ts.unwrap().0;
    h.deliver(T0 + ms(20), &peer_seg(&peer, peer.seq, peer.ack, "PA", Some((110, ecr)), b"hello")).unwrap();
    peer.seq += 5;
    assert_eq!(h.recv_all(T0 + ms(21), id).unwrap(), b"hello");
    if close {
        h.tcp.close(T0 + ms(30), &mut h.net, id).unwrap();
    } else {
        h.tcp.shutdown(T0 + ms(30), &mut h.net, id, Shutdown::Write).unwrap();
    }
    let fin = h.out().into_iter().find(|s| s.fin).expect("our FIN");
    peer.ack = fin.seq.wrapping_add(1);
    let ecr = fin.ts.unwrap().0;
    h.deliver(T0 + ms(40), &peer_seg(&peer, peer.seq, peer.ack, "FA", Some((130, ecr)), b"")).unwrap();
    peer.seq += 1;
    assert_eq!(h.one().ack, Some(peer.seq));
    (id, peer, 130)
}

fn whole_connections(h: &Host) -> usize {
    h.tcp.slots.iter().filter(|s| matches!(s.sock, Some(table::Sock::Conn(_)))).count()
}

#[test]
fn a_closed_connection_in_time_wait_becomes_a_record_and_its_tcb_goes() {
    let mut h = Host::new(IP_A, 1400);
    let (id, _peer, _) = to_time_wait(&mut h, true);
    assert_eq!((h.tcp.tw.len(), whole_connections(&h), h.tcp.time_wait_count()), (1, 0, 1));
    assert_eq!(h.tcp.state(id), Err(TcpError::InvalidState), "the handle is gone with the close");
    // ss still shows it, under its id, with its time left.
    let (shown, info) = h.tcp.sockets().next().unwrap();
    assert_eq!((shown, info.state, info.timers.close), (id, State::TimeWait, Some(T0 + ms(40) + secs(60))));
    // 2*MSL ends it, traced as before.
    assert_eq!(h.tcp.poll_at(), Some(T0 + ms(40) + secs(60)));
    h.poll(T0 + ms(40) + secs(60));
    assert_eq!((h.tcp.tw.len(), h.tcp.connection_count(), h.tcp.poll_at()), (0, 0, None));
    assert_eq!(h.transitions(id).last().unwrap(), "TIME-WAIT>CLOSED (timeout=2MSL)");
    // The port is free again only now.
    assert!(h.tcp.ports.is_empty());
}

#[test]
fn a_connection_still_held_stays_whole_until_closed() {
    let mut h = Host::new(IP_A, 1401);
    let (id, _peer, _) = to_time_wait(&mut h, false);
    assert_eq!((h.tcp.tw.len(), whole_connections(&h)), (0, 1));
    assert_eq!(h.state(id), State::TimeWait);
    h.tcp.close(T0 + secs(1), &mut h.net, id).unwrap();
    assert_eq!((h.tcp.tw.len(), whole_connections(&h), h.tcp.time_wait_count()), (1, 0, 1));
}

/// A random segment around the connection's sequence numbers, as a confused
/// or hostile peer might send in TIME-WAIT.
fn random_segment(rng: &mut ChaCha8Rng, p: &Peer, tsval: &mut u32) -> Packet {
    let mut flags = String::new();
    for (f, chance) in [("S", 0.1), ("A", 0.85), ("F", 0.3), ("R", 0.1), ("P", 0.2)] {
        if rng.random_bool(chance) {
            flags.push_str(f);
        }
    }
    let near = |rng: &mut ChaCha8Rng, base: u32| match rng.random_range(0..6) {
        0 => base,
        1 => base.wrapping_sub(1),
        2 => base.wrapping_add(1),
        3 => base.wrapping_add(rng.random_range(0..70_000)),
        4 => base.wrapping_sub(rng.random_range(0..70_000)),
        _ => rng.random(),
    };
    let seq = near(rng, p.seq);
    let ack = near(rng, p.ack);
    let ts = match rng.random_range(0..4) {
        0 => None,
        1 => Some((tsval.wrapping_sub(rng.random_range(1..1000)), 0)),
        _ => {
            *tsval = tsval.wrapping_add(rng.random_range(0..50));
            Some((*tsval, 0))
        }
    };
    let data: &[u8] = match rng.random_range(0..4) {
        0 => b"x",
        1 => &[7; 100],
        _ => b"",
    };
    let mut s = seg(p.port, p.our_port, seq, ack, &flags, rng.random());
    s.timestamp = ts;
    packet(IP_B, IP_A, &s, data)
}

#[test]
fn a_record_answers_every_segment_exactly_as_the_whole_connection() {
    // The same connection twice: in `whole` the user still holds it, so its
    // TCB answers in TIME-WAIT; in `record` the user closed it, so a record
    // does. Both get the same random segments and timer runs; every answer,
    // every drop, every counter and every transition must be the same.
    for seed in 0..40u64 {
        let mut whole = Host::new(IP_A, 1500 + seed);
        let mut record = Host::new(IP_A, 1500 + seed);
        let (wid, peer, mut tsval) = to_time_wait(&mut whole, false);
        let (rid, _, _) = to_time_wait(&mut record, true);
        assert_eq!((whole.tcp.tw.len(), record.tcp.tw.len()), (0, 1));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut now = T0 + ms(40);
        for i in 0..300 {
            now += ms(rng.random_range(0..400));
            let p = random_segment(&mut rng, &peer, &mut tsval);
            let (a, b) = (whole.deliver(now, &p), record.deliver(now, &p));
            let (sa, sb): (Vec<_>, Vec<_>) = (whole.net.out.drain(..).collect(), record.net.out.drain(..).collect());
            let bytes = |v: &[Packet]| v.iter().map(|p| p.bytes.clone()).collect::<Vec<_>>();
            assert_eq!(a, b, "seed {seed}, segment {i}: {:?}", p.seg());
            assert_eq!(bytes(&sa), bytes(&sb), "seed {seed}, segment {i}: {:?}", p.seg());
            assert_eq!(whole.tcp.poll_at(), record.tcp.poll_at(), "seed {seed}, segment {i}");
            if i % 10 == 0 {
                whole.poll(now);
                record.poll(now);
                assert_eq!(
                    bytes(&whole.net.out.drain(..).collect::<Vec<_>>()),
                    bytes(&record.net.out.drain(..).collect::<Vec<_>>())
                );
            }
        }
        assert_eq!(whole.net.counters, record.net.counters, "seed {seed}");
        let path = |h: &mut Host, id| {
            let all = h.transitions(id);
            all.into_iter().filter(|t| t.starts_with("TIME-WAIT>")).collect::<Vec<_>>()
        };
        assert_eq!(path(&mut whole, wid), path(&mut record, rid), "seed {seed}");
    }
}

#[test]
fn sizes_of_a_record_and_of_a_connection() {
    // The figures TcpConfig::max_tw_buckets quotes; Linux's tcp_timewait_sock
    // is about 200 bytes.
    let (record, conn) = (core::mem::size_of::<TimeWait>(), core::mem::size_of::<Conn>());
    println!("TimeWait {record} bytes, Conn {conn} bytes, Slot {} bytes", core::mem::size_of::<table::Slot>());
    assert!(record <= 200, "{record}");
    assert!(conn > 3 * record);
}

#[test]
fn a_flood_of_time_waits_gives_its_memory_back() {
    // Issue 13, item 3: HTTP/1.0 with the stack closing first, 4,096 times
    // over, each request read (so each receive buffer was allocated).
    let mut h = Host::new(IP_A, 1402);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 80), 64).unwrap();
    let idle = h.tcp.heap_bytes();
    let now = T0;
    for i in 0..4096u32 {
        let mut peer = Peer { port: 10_000 + i as u16, our_port: 80, seq: 7000, ack: 0, wnd: 65535 };
        peer.send(&mut h, now, "S", b"").unwrap();
        peer.ack = h.one().seq.wrapping_add(1);
        peer.send(&mut h, now, "PA", b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let (id, _) = h.tcp.accept(l).unwrap().unwrap();
        assert_eq!(h.recv_all(now, id).unwrap().len(), 18);
        h.send(now, id, b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
        h.tcp.close(now, &mut h.net, id).unwrap();
        h.out();
        peer.ack = peer.ack.wrapping_add(20);
        peer.send(&mut h, now, "FA", b"").unwrap();
        h.out();
    }
    assert_eq!((h.tcp.time_wait_count(), h.tcp.tw.len(), whole_connections(&h)), (4096, 4096, 0));
    let peak = h.tcp.heap_bytes();
    let per_time_wait = (peak - idle) / 4096;
    println!("TCP table: idle {idle} B, 4096 TIME-WAITs {peak} B ({per_time_wait} B each)");
    assert!(per_time_wait < 400, "{per_time_wait} bytes per TIME-WAIT");
    h.poll(now + secs(60));
    assert_eq!((h.tcp.time_wait_count(), h.tcp.connection_count()), (0, 0));
    let after = h.tcp.heap_bytes();
    println!("after 2*MSL: {after} B");
    // What is left is the slab of (empty) slots and the free list, a few
    // bytes each: no buffer, no record, no map at its peak size.
    assert!(after < idle + 64 * 1024, "{after} bytes held after the flood (idle {idle})");
}

#[test]
fn buffer_bytes_are_the_buffers_part_of_the_heap() {
    // What the connections benchmark splits an idle connection's memory by:
    // an echoed request leaves the receive ring's first storage allocated.
    let mut h = Host::new(IP_A, 1403);
    let l = h.tcp.listen(&mut h.net, addr(IP_A, 7), 64).unwrap();
    assert_eq!(h.tcp.buffer_bytes(), 0, "a listener has no buffers");
    let mut peer = Peer { port: 10_000, our_port: 7, seq: 7000, ack: 0, wnd: 65535 };
    peer.send(&mut h, T0, "S", b"").unwrap();
    peer.ack = h.one().seq.wrapping_add(1);
    peer.send(&mut h, T0, "PA", b"12345678").unwrap();
    let (id, _) = h.tcp.accept(l).unwrap().unwrap();
    assert_eq!(h.recv_all(T0, id).unwrap().len(), 8);
    // The ring's first storage, and the out-of-order list's few entries.
    let received = h.tcp.buffer_bytes();
    let first = crate::tcp::recv::FIRST_STORAGE;
    assert!((first..first + 64).contains(&received), "{received}");
    h.send(T0, id, b"12345678").unwrap();
    let with_send = h.tcp.buffer_bytes();
    assert!(with_send >= received + 8, "{with_send}");
    assert!(h.tcp.heap_bytes() > with_send + core::mem::size_of::<crate::tcp::conn::Conn>());
}
