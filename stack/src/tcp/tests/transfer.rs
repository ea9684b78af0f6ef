//! Bulk transfers between two stacks over a wire that loses, duplicates and
//! reorders, for many seeds: every byte arrives, once, in order.

use super::*;

/// Moves `data` from A to B (and `back` from B to A), pumping the sockets
/// between steps; closes both when done. Returns what each side received.
fn transfer(w: &mut Wire, a: ConnId, b: ConnId, data: &[u8], back: &[u8], limit: Duration) -> (Vec<u8>, Vec<u8>) {
    let (mut sent_a, mut sent_b) = (0, 0);
    let (mut got_b, mut got_a) = (Vec::new(), Vec::new());
    let (mut eof_a, mut eof_b) = (false, false);
    let (mut shut_a, mut shut_b) = (false, false);
    let mut buf = vec![0u8; 16 * 1024];
    let end = w.now + limit;
    loop {
        let now = w.now;
        for (host, id, src, sent, shut, got, eof) in [
            (&mut w.a, a, data, &mut sent_a, &mut shut_a, &mut got_a, &mut eof_a),
            (&mut w.b, b, back, &mut sent_b, &mut shut_b, &mut got_b, &mut eof_b),
        ] {
            while *sent < src.len() {
                match host.tcp.send(now, &mut host.net, id, &src[*sent..]) {
                    Ok(n) => *sent += n,
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("send: {e}"),
                }
            }
            if *sent == src.len() && !*shut {
                host.tcp.shutdown(now, &mut host.net, id, Shutdown::Write).unwrap();
                *shut = true;
            }
            while !*eof {
                match host.tcp.recv(now, &mut host.net, id, &mut buf, false) {
                    Ok(0) => *eof = true,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("recv: {e}"),
                }
            }
        }
        if eof_a && eof_b {
            break;
        }
        assert!(w.step(), "stalled: nothing left to happen");
        assert!(w.now < end, "too slow: {} of {} bytes after {:?}", got_b.len(), data.len(), limit);
    }
    (got_b, got_a)
}

#[test]
fn one_megabyte_on_a_clean_wire() {
    let mut w = Wire::new(100);
    let (a, _l, b) = w.connect();
    let data = pattern(1 << 20, 3);
    let start = w.now;
    let (got, back) = transfer(&mut w, a, b, &data, b"", secs(60));
    assert!(got == data, "corrupted");
    assert!(back.is_empty());
    assert_eq!(w.a.net.counters.retransmitted, 0);
    assert_eq!(w.b.net.counters.retransmitted, 0);
    // A 64 KiB window over a 10 ms round trip: about 6.5 MB/s at best.
    let took = w.now - start;
    assert!(took < secs(2), "took {took:?}");
    w.run_for(secs(1));
    let info = w.a.tcp.info(a).unwrap();
    assert_eq!(info.bytes_acked, 1 << 20);
    assert!(info.cwnd > 60_000, "slow start opened cwnd: {}", info.cwnd);
    // Both sides end: A in TIME-WAIT (it closed first or simultaneously), then CLOSED.
    w.run_for(secs(61));
    assert_eq!(w.a.state(a), State::Closed);
    assert_eq!(w.b.state(b), State::Closed);
}

#[test]
fn megabytes_intact_under_loss_duplication_and_reordering() {
    for seed in 0..32u64 {
        let mut w = Wire::new(1000 + seed);
        w.loss = [0.01, 0.03, 0.08][seed as usize % 3];
        w.dup = 0.02;
        w.reorder = 0.1;
        let (a, _l, b) = w.connect();
        let data = pattern(2 << 20, seed as u8);
        let back = pattern(100_000, seed as u8 ^ 0xff);
        let (got, got_back) = transfer(&mut w, a, b, &data, &back, secs(3600));
        assert!(
            got.len() == data.len() && got == data,
            "seed {seed}: A to B corrupted ({} of {} bytes)",
            got.len(),
            data.len()
        );
        assert!(got_back == back, "seed {seed}: B to A corrupted");
        assert!(w.lost > 0 || w.loss == 0.0);
        assert!(w.a.net.counters.retransmitted > 0, "seed {seed}: losses need retransmissions");
    }
}

#[test]
fn heavy_reordering_without_loss() {
    let mut w = Wire::new(7);
    w.reorder = 0.5;
    let (a, _l, b) = w.connect();
    let data = pattern(300_000, 9);
    let (got, _) = transfer(&mut w, a, b, &data, b"", secs(600));
    assert!(got == data);
    assert!(w.a.net.counters.fast_retransmits > 0 || w.a.net.counters.retransmitted == 0);
}

#[test]
fn small_buffers_and_small_mss() {
    let cfg = TcpConfig {
        default_options: SocketOptions { send_buffer: 2000, recv_buffer: 1500, ..SocketOptions::default() },
        ..TcpConfig::default()
    };
    let mut w = Wire::with_config(8, cfg);
    w.a.net.mtu = 576;
    w.loss = 0.05;
    let (a, _l, b) = w.connect();
    // 536 less the 12 octets of the timestamp option every segment carries.
    assert_eq!(w.a.tcp.info(a).unwrap().snd_mss, 524);
    let data = pattern(200_000, 1);
    let (got, _) = transfer(&mut w, a, b, &data, b"", secs(3600));
    assert!(got == data);
}

#[test]
fn many_connections_in_parallel() {
    let mut w = Wire::new(9);
    let l = w.b.tcp.listen(&mut w.b.net, addr(IP_B, 80), 64).unwrap();
    let clients: Vec<ConnId> =
        (0..40).map(|_| w.a.tcp.connect(w.now, &mut w.a.net, None, addr(IP_B, 80)).unwrap()).collect();
    let mut servers = Vec::new();
    assert!(w.run_until(secs(10), |w| {
        while let Some((id, _)) = w.b.tcp.accept(l).unwrap() {
            servers.push(id);
        }
        servers.len() == 40
    }));
    for (i, &c) in clients.iter().enumerate() {
        w.a.send(w.now, c, format!("client {i}").as_bytes()).unwrap();
        w.a.tcp.close(w.now, &mut w.a.net, c).unwrap();
    }
    w.run_for(secs(1));
    let mut seen = Vec::new();
    for &s in &servers {
        let got = String::from_utf8(w.b.recv_all(w.now, s).unwrap()).unwrap();
        assert_eq!(w.b.state(s), State::CloseWait);
        w.b.tcp.close(w.now, &mut w.b.net, s).unwrap();
        seen.push(got);
    }
    seen.sort();
    let mut expect: Vec<String> = (0..40).map(|i| format!("client {i}")).collect();
    expect.sort();
    assert_eq!(seen, expect);
    w.run_for(secs(120));
    assert_eq!(w.a.tcp.connection_count(), 0);
    assert_eq!(w.b.tcp.connection_count(), 0);
    assert_eq!(w.a.tcp.poll_at(), None);
}
