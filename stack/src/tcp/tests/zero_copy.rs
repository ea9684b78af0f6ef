//! The calls without a copy (`Tcp::send_with`, `Tcp::recv_with`): the user
//! writes into the send buffer and reads the receive buffer in place, and the
//! bytes come out as the copying calls would deliver them, through loss and
//! reordering and round the rings' wrap.

use super::*;

/// Moves `data` from A to B with the in-place calls only, in pieces of at
/// most `piece` bytes per call; returns what B read before the end of stream.
fn transfer_in_place(w: &mut Wire, a: ConnId, b: ConnId, data: &[u8], piece: usize) -> Vec<u8> {
    let (mut sent, mut shut, mut got) = (0, false, Vec::new());
    let end = w.now + secs(120);
    loop {
        let now = w.now;
        while sent < data.len() {
            let rest = &data[sent..];
            let r = w.a.tcp.send_with(now, &mut w.a.net, a, |room| {
                let n = room.len().min(rest.len()).min(piece);
                room[..n].copy_from_slice(&rest[..n]);
                n
            });
            match r {
                Ok(n) => sent += n,
                Err(TcpError::WouldBlock) => break,
                Err(e) => panic!("send_with: {e}"),
            }
        }
        if sent == data.len() && !shut {
            w.a.tcp.shutdown(now, &mut w.a.net, a, Shutdown::Write).unwrap();
            shut = true;
        }
        loop {
            let r = w.b.tcp.recv_with(now, &mut w.b.net, b, |d| {
                let n = d.len().min(piece);
                got.extend_from_slice(&d[..n]);
                n
            });
            match r {
                Ok(0) => return got,
                Ok(_) => {}
                Err(TcpError::WouldBlock) => break,
                Err(e) => panic!("recv_with: {e}"),
            }
        }
        assert!(w.step(), "stalled: nothing left to happen");
        assert!(w.now < end, "too slow: {} of {} bytes", got.len(), data.len());
    }
}

#[test]
fn in_place_calls_move_every_byte_in_order() {
    let mut w = Wire::new(41);
    let (a, _l, b) = w.connect();
    let data = pattern(3 << 20, 9);
    // Odd pieces so that the rings wrap at every offset.
    assert!(transfer_in_place(&mut w, a, b, &data, 7000) == data, "corrupted");
    w.run_for(secs(1));
    assert_eq!(w.a.tcp.info(a).unwrap().bytes_acked, 3 << 20);
}

#[test]
fn in_place_calls_through_loss_and_reordering() {
    for seed in 0..6u64 {
        let mut w = Wire::new(500 + seed);
        w.loss = 0.03;
        w.reorder = 0.1;
        let (a, _l, b) = w.connect();
        let data = pattern(1 << 20, seed as u8);
        assert!(transfer_in_place(&mut w, a, b, &data, 65536) == data, "seed {seed}: corrupted");
    }
}

#[test]
fn in_place_calls_return_the_copying_calls_errors() {
    let mut w = Wire::new(43);
    let (a, _l, b) = w.connect();
    let now = w.now;
    let never = |_: &[u8]| -> usize { unreachable!("nothing to read") };
    assert_eq!(w.b.tcp.recv_with(now, &mut w.b.net, b, never), Err(TcpError::WouldBlock));
    // A full send buffer: WouldBlock, and the closure is not called.
    let cap = w.a.tcp.options(a).unwrap().send_buffer;
    let mut filled = 0;
    while let Ok(n @ 1..) = w.a.tcp.send_with(now, &mut w.a.net, a, |room| room.len()) {
        filled += n;
    }
    assert_eq!(filled, cap);
    let full = w.a.tcp.send_with(now, &mut w.a.net, a, |_| unreachable!("no room"));
    assert_eq!(full, Err(TcpError::WouldBlock));
    w.a.tcp.shutdown(now, &mut w.a.net, a, Shutdown::Write).unwrap();
    let shut = w.a.tcp.send_with(now, &mut w.a.net, a, |_| unreachable!("shut"));
    assert_eq!(shut, Err(TcpError::BrokenPipe));
    w.run_for(secs(5));
    let now = w.now;
    let waiting = w.b.tcp.info(b).unwrap().recv_queue;
    assert!(waiting > 0);
    assert_eq!(w.b.tcp.recv_with(now, &mut w.b.net, b, |_| 0), Ok(0), "consumed nothing");
    assert_eq!(w.b.tcp.info(b).unwrap().recv_queue, waiting, "and nothing is gone");
    // B reads it all in place, then the end of stream is Ok(0).
    let mut got = 0;
    loop {
        match w.b.tcp.recv_with(now, &mut w.b.net, b, |d| d.len()) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(TcpError::WouldBlock) => {
                w.run_for(secs(1));
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, cap);
    assert_eq!(w.b.tcp.recv_with(now, &mut w.b.net, b, never), Ok(0), "still the end");
}
