//! The inspector on synthetic conversations: segments built with etherparse,
//! written into a pcap in memory, read back as a capture would be.

use super::*;
use etherparse::PacketBuilder;
use stack::tcp::State::{self, *};

const A: ([u8; 4], u16) = ([10, 0, 0, 1], 40000);
const B: ([u8; 4], u16) = ([10, 0, 0, 2], 80);
const ISN_A: u32 = 1000;
const ISN_B: u32 = 5000;

/// A conversation between A and B, one segment each millisecond.
#[derive(Default)]
struct Wire {
    frames: Vec<Vec<u8>>,
}

impl Wire {
    /// A segment from `from` to the other; `flags` like "SA" (S, A, F, R, P);
    /// seq and ack relative to the sender's and receiver's ISNs.
    fn seg(&mut self, from: ([u8; 4], u16), flags: &str, seq: u32, ack: u32, win: u16, len: usize) -> &mut Self {
        let to = if from == A { B } else { A };
        let (isn_s, isn_r) = if from == A { (ISN_A, ISN_B) } else { (ISN_B, ISN_A) };
        let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, from.0[3]], [2, 0, 0, 0, 0, to.0[3]])
            .ipv4(from.0, to.0, 64)
            .tcp(from.1, to.1, isn_s.wrapping_add(seq), win);
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'A' => b.ack(isn_r.wrapping_add(ack)),
                'F' => b.fin(),
                'R' => b.rst(),
                'P' => b.psh(),
                _ => panic!("flag {f}"),
            };
        }
        let payload = vec![0x61; len];
        let mut frame = Vec::new();
        b.write(&mut frame, &payload).unwrap();
        self.frames.push(frame);
        self
    }

    /// The frames as a classic pcap file: a 24-byte header, then 16-byte records.
    fn pcap(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [0xa1b2_c3d4u32, 0x0002_0004, 0, 0, 65535, 1] {
            match w {
                0x0002_0004 => {
                    out.extend_from_slice(&2u16.to_le_bytes());
                    out.extend_from_slice(&4u16.to_le_bytes());
                }
                _ => out.extend_from_slice(&w.to_le_bytes()),
            }
        }
        for (i, f) in self.frames.iter().enumerate() {
            for w in [100u32, i as u32 * 1000, f.len() as u32, f.len() as u32] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(f);
        }
        out
    }

    fn inspect(&self) -> Inspection {
        inspect_reader(&self.pcap()[..]).expect("a valid pcap")
    }
}

fn addr(e: ([u8; 4], u16)) -> SocketAddr {
    SocketAddr::from(e)
}

fn path(side: &SideReport) -> Vec<(State, State, &str)> {
    side.changes.iter().map(|c| (c.from, c.to, c.cause.as_str())).collect()
}

fn notes(c: &ConnectionReport) -> Vec<(usize, Vec<&str>)> {
    c.segments
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.notes.is_empty())
        .map(|(i, s)| (i, s.notes.iter().map(|n| n.as_str()).collect()))
        .collect()
}

fn handshake(w: &mut Wire) {
    w.seg(A, "S", 0, 0, 64240, 0).seg(B, "SA", 0, 1, 65535, 0).seg(A, "A", 1, 1, 64240, 0);
}

const OPEN_A: [(State, State, &str); 2] =
    [(Closed, SynSent, "active OPEN / snd SYN"), (SynSent, Established, "rcv SYN,ACK / snd ACK")];
const OPEN_B: [(State, State, &str); 2] =
    [(Listen, SynReceived, "rcv SYN / snd SYN,ACK"), (SynReceived, Established, "rcv ACK of SYN")];

#[test]
fn handshake_data_and_the_client_closing_first() {
    let mut w = Wire::default();
    handshake(&mut w);
    w.seg(A, "PA", 1, 1, 64240, 100).seg(B, "PA", 1, 101, 65535, 50).seg(A, "A", 101, 51, 64240, 0);
    w.seg(A, "FA", 101, 51, 64240, 0).seg(B, "A", 51, 102, 65535, 0);
    w.seg(B, "FA", 51, 102, 65535, 0).seg(A, "A", 102, 52, 64240, 0);
    let i = w.inspect();
    assert_eq!((i.frames, i.tcp_segments, i.connections.len()), (10, 10, 1));
    let c = &i.connections[0];
    assert_eq!((c.sides[0].addr, c.sides[1].addr), (addr(A), addr(B)));
    let mut a = OPEN_A.to_vec();
    a.extend([
        (Established, FinWait1, "CLOSE / snd FIN"),
        (FinWait1, FinWait2, "rcv ACK of FIN"),
        (FinWait2, TimeWait, "rcv FIN / snd ACK"),
    ]);
    let mut b = OPEN_B.to_vec();
    b.extend([
        (Established, CloseWait, "rcv FIN / snd ACK"),
        (CloseWait, LastAck, "CLOSE / snd FIN"),
        (LastAck, Closed, "rcv ACK of FIN"),
    ]);
    assert_eq!(path(&c.sides[0]), a);
    assert_eq!(path(&c.sides[1]), b);
    assert_eq!(c.sides[0].states()[0], Closed);
    assert_eq!(c.sides[1].states()[0], Listen);
    assert!(notes(c).is_empty(), "{:?}", notes(c));
    assert!(c.notes.iter().any(|n| n.contains("stays in TIME-WAIT")), "{:?}", c.notes);
    // Relative numbers, as Wireshark shows them.
    assert_eq!((c.segments[1].seq, c.segments[1].ack), (0, Some(1)));
    assert_eq!((c.segments[4].seq, c.segments[4].ack, c.segments[4].len), (1, Some(101), 50));
    // Each change is shown on the segment that makes it, stamped with its time.
    assert_eq!(c.segments[0].changes.len(), 1);
    assert_eq!(c.segments[2].changes.len(), 2);
    assert!((c.segments[2].changes[0].1.time - 0.002).abs() < 1e-9);
    let text = timeline::render(&i, None);
    assert!(text.contains("A: CLOSED -> SYN-SENT (active OPEN / snd SYN)"), "{text}");
}

#[test]
fn server_closing_first_with_a_fin_that_acknowledges_its_fin() {
    let mut w = Wire::default();
    handshake(&mut w);
    w.seg(B, "FA", 1, 1, 65535, 0).seg(A, "FA", 1, 2, 64240, 0).seg(B, "A", 2, 2, 65535, 0);
    let c = &w.inspect().connections[0];
    // RFC 9293 section 3.10.7.4: the ACK field before the FIN bit, as tapstack does it.
    assert_eq!(
        path(&c.sides[1])[2..],
        [
            (Established, FinWait1, "CLOSE / snd FIN"),
            (FinWait1, FinWait2, "rcv ACK of FIN"),
            (FinWait2, TimeWait, "rcv FIN / snd ACK")
        ]
    );
    assert_eq!(
        path(&c.sides[0])[2..],
        [
            (Established, CloseWait, "rcv FIN / snd ACK"),
            (CloseWait, LastAck, "CLOSE / snd FIN"),
            (LastAck, Closed, "rcv ACK of FIN")
        ]
    );
}

#[test]
fn simultaneous_close() {
    let mut w = Wire::default();
    handshake(&mut w);
    // Each FIN crosses the other: neither acknowledges the other's FIN.
    w.seg(A, "FA", 1, 1, 64240, 0).seg(B, "FA", 1, 1, 65535, 0);
    w.seg(A, "A", 2, 2, 64240, 0).seg(B, "A", 2, 2, 65535, 0);
    let c = &w.inspect().connections[0];
    for side in &c.sides {
        assert_eq!(
            path(side)[2..],
            [
                (Established, FinWait1, "CLOSE / snd FIN"),
                (FinWait1, Closing, "rcv FIN / snd ACK"),
                (Closing, TimeWait, "rcv ACK of FIN")
            ],
            "{}",
            side.addr
        );
    }
}

#[test]
fn simultaneous_open() {
    let mut w = Wire::default();
    w.seg(A, "S", 0, 0, 64240, 0).seg(B, "S", 0, 0, 65535, 0);
    w.seg(A, "SA", 0, 1, 64240, 0).seg(B, "SA", 0, 1, 65535, 0);
    let c = &w.inspect().connections[0];
    for side in &c.sides {
        assert_eq!(side.initial, Closed);
        assert_eq!(
            path(side),
            [
                (Closed, SynSent, "active OPEN / snd SYN"),
                (SynSent, SynReceived, "rcv SYN / snd SYN,ACK"),
                (SynReceived, Established, "rcv ACK of SYN")
            ],
            "{}",
            side.addr
        );
    }
    assert!(notes(c).is_empty(), "{:?}", notes(c));
}

#[test]
fn refused_and_reset() {
    let mut w = Wire::default();
    w.seg(A, "S", 0, 0, 64240, 0).seg(B, "RA", 0, 1, 0, 0);
    let c = &w.inspect().connections[0];
    assert_eq!(path(&c.sides[0]), [(Closed, SynSent, "active OPEN / snd SYN"), (SynSent, Closed, "rcv RST")]);
    assert_eq!((c.sides[1].initial, c.sides[1].changes.len()), (Closed, 0));
    assert_eq!(notes(c), [(1, vec!["connection refused"])]);

    let mut w = Wire::default();
    handshake(&mut w);
    w.seg(A, "PA", 1, 1, 64240, 10).seg(B, "RA", 1, 11, 0, 0);
    w.seg(A, "PA", 11, 1, 64240, 10);
    let c = &w.inspect().connections[0];
    assert_eq!(path(&c.sides[1])[2], (Established, Closed, "ABORT / snd RST"));
    assert_eq!(path(&c.sides[0])[2], (Established, Closed, "rcv RST"));
    assert_eq!(notes(c), [(4, vec!["connection reset"]), (5, vec!["segment after close"])]);
}

#[test]
fn reset_of_a_half_open_syn_received_returns_to_listen() {
    let mut w = Wire::default();
    w.seg(A, "S", 0, 0, 64240, 0).seg(B, "SA", 0, 1, 65535, 0).seg(A, "R", 1, 0, 0, 0);
    let c = &w.inspect().connections[0];
    // RFC 9293 MUST-11: a passive SYN-RECEIVED goes back to LISTEN.
    assert_eq!(path(&c.sides[1])[1], (SynReceived, Listen, "rcv RST"));
}

#[test]
fn retransmissions_and_duplicate_acks() {
    let mut w = Wire::default();
    w.seg(A, "S", 0, 0, 64240, 0).seg(A, "S", 0, 0, 64240, 0);
    w.seg(B, "SA", 0, 1, 65535, 0).seg(A, "A", 1, 1, 64240, 0);
    w.seg(A, "PA", 1, 1, 64240, 100); // 4: lost
    w.seg(A, "PA", 101, 1, 64240, 100); // 5
    w.seg(B, "A", 1, 1, 65535, 0); // 6: ack of the handshake again, data outstanding
    w.seg(B, "A", 1, 1, 65535, 0); // 7
    w.seg(A, "PA", 1, 1, 64240, 100); // 8: the retransmission
    w.seg(B, "A", 1, 201, 65535, 0);
    let c = &w.inspect().connections[0];
    assert_eq!(
        notes(c),
        [
            (1, vec!["retransmission"]),
            (6, vec!["dup ACK #1"]),
            (7, vec!["dup ACK #2"]),
            (8, vec!["retransmission", "fast retransmission"])
        ]
    );
    assert_eq!(path(&c.sides[0]), OPEN_A);
    assert_eq!(path(&c.sides[1]), OPEN_B);
}

#[test]
fn out_of_window_segments_change_nothing() {
    let mut w = Wire::default();
    handshake(&mut w);
    w.seg(B, "A", 1, 1, 1000, 0); // B offers 1000 octets
    w.seg(A, "PA", 1, 1, 64240, 2000); // 4: beyond the window
    w.seg(A, "RA", 50_000, 1, 0, 0); // 5: an RST far outside the window
    w.seg(A, "FA", 3000, 1, 64240, 0); // 6: a FIN outside the window
    let c = &w.inspect().connections[0];
    assert_eq!(notes(c)[0], (3, vec!["window update"]));
    assert_eq!(notes(c)[1], (4, vec!["out-of-window"]));
    assert_eq!(notes(c)[2], (5, vec!["RST out of window"]));
    assert_eq!(c.sides[1].final_state(), Established, "{:?}", path(&c.sides[1]));
}

#[test]
fn keep_alive_and_zero_window_probe() {
    let mut w = Wire::default();
    handshake(&mut w);
    w.seg(A, "PA", 1, 1, 64240, 10).seg(B, "A", 1, 11, 65535, 0);
    w.seg(A, "A", 10, 1, 64240, 0); // 5: keep-alive at SND.NXT-1
    w.seg(B, "A", 1, 11, 65535, 0);
    w.seg(A, "PA", 11, 1, 64240, 10).seg(B, "A", 1, 21, 0, 0); // 8: window closes
    w.seg(A, "PA", 21, 1, 64240, 1); // 9: probe with new data
    let c = &w.inspect().connections[0];
    assert_eq!(notes(c), [(5, vec!["keep-alive"]), (8, vec!["zero window"]), (9, vec!["zero-window probe"])]);
}

#[test]
fn a_new_syn_on_the_tuple_is_a_new_connection() {
    let mut w = Wire::default();
    handshake(&mut w);
    w.seg(A, "FA", 1, 1, 64240, 0).seg(B, "FA", 1, 2, 65535, 0).seg(A, "A", 2, 2, 64240, 0);
    // A, in TIME-WAIT, opens again with a higher ISN.
    w.seg(A, "S", 100_000, 0, 64240, 0);
    let i = w.inspect();
    assert_eq!(i.connections.len(), 2);
    assert_eq!(i.connections[0].trailer[0].1.cause.as_str(), "OPEN / reuse TIME-WAIT");
    assert_eq!(i.connections[0].sides[0].final_state(), Closed);
    assert_eq!(path(&i.connections[1].sides[0]), [(Closed, SynSent, "active OPEN / snd SYN")]);
    assert_eq!(i.connections[1].segments[0].seq, 0, "relative to the new ISN");
}

/// How many times the timeline shows `from -> to (cause)` as a confirmed change.
fn in_timeline(timeline: &str, from: State, to: State, cause: &str) -> usize {
    let change = format!("{from} -> {to} ({cause})");
    timeline.lines().filter(|l| l.contains(&change) && !l.contains("[unconfirmed]")).count()
}

#[test]
fn the_diagram_counts_a_time_wait_ended_by_a_new_syn_as_often_as_the_timeline() {
    // Issue 14: a TIME-WAIT reopened was counted twice on the diagram (from the
    // side's changes and again from the connection's trailer).
    let mut w = Wire::default();
    for isn in [0, 100_000] {
        w.seg(A, "S", isn, 0, 64240, 0).seg(B, "SA", 0, isn + 1, 65535, 0).seg(A, "A", isn + 1, 1, 64240, 0);
        w.seg(A, "FA", isn + 1, 1, 64240, 0).seg(B, "FA", 1, isn + 2, 65535, 0).seg(A, "A", isn + 2, 2, 64240, 0);
    }
    let i = w.inspect();
    assert_eq!(i.connections.len(), 2);
    let timeline = timeline::render(&i, None);
    let taken = diagram::count(i.transitions());
    for &(from, to, cause, n) in &taken {
        assert_eq!(n, in_timeline(&timeline, from, to, cause.as_str()), "{from} -> {to} ({cause}):\n{timeline}");
    }
    let reuse = taken.iter().find(|t| t.2.as_str() == "OPEN / reuse TIME-WAIT").expect("the reopen is drawn");
    assert_eq!((reuse.0, reuse.1, reuse.3), (TimeWait, Closed, 1));
    assert!(diagram::table(&taken).contains("TIME-WAIT -> CLOSED"), "{}", diagram::table(&taken));
}

#[test]
fn malformed_and_other_frames_are_counted_not_fatal() {
    let mut w = Wire::default();
    handshake(&mut w);
    let mut cut = w.frames[0].clone();
    cut.truncate(14 + 20 + 8); // IPv4 header says TCP, the TCP header is cut
    w.frames.push(cut);
    w.frames.push(vec![0xff; 5]);
    let mut udp = Vec::new();
    PacketBuilder::ethernet2([2; 6], [3; 6])
        .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
        .udp(1, 2)
        .write(&mut udp, b"x")
        .unwrap();
    w.frames.push(udp);
    let i = w.inspect();
    // The TCP header cut short, and a frame too short for its Ethernet header:
    // both skipped, each listed by frame number with the reason.
    assert_eq!((i.frames, i.tcp_segments, i.malformed, i.other_frames), (6, 3, 2, 1));
    assert_eq!(i.skipped[0].0, 4);
    assert!(i.skipped[0].1.contains("IPv4 total length 40 does not fit the frame"), "{:?}", i.skipped);
    assert_eq!(i.skipped[1].0, 5);
    assert!(i.skipped[1].1.contains("cut short inside its EN10MB (Ethernet) header"), "{:?}", i.skipped);
    assert_eq!(i.connections.len(), 1);
    assert!(inspect_reader(&b"not a capture"[..]).is_err());
}

#[test]
fn a_capture_from_the_middle_starts_established() {
    let mut w = Wire::default();
    w.seg(A, "PA", 1, 1, 64240, 10).seg(B, "FA", 1, 11, 65535, 0);
    let c = &w.inspect().connections[0];
    assert_eq!(c.sides[0].initial, Established);
    assert_eq!(c.sides[1].final_state(), FinWait1);
    assert_eq!(c.segments[0].seq, 1);
}

#[test]
fn a_syn_scan_leaves_the_scanner_short_of_established() {
    // The scanner's SYN is answered; its RST (no ACK bit) acknowledges nothing.
    let mut w = Wire::default();
    w.seg(A, "S", 0, 0, 1024, 0).seg(B, "SA", 0, 1, 65535, 0).seg(A, "R", 1, 0, 0, 0);
    let c = &w.inspect().connections[0];
    assert!(!path(&c.sides[0]).iter().any(|p| p.1 == Established), "{:?}", path(&c.sides[0]));
    assert_eq!(path(&c.sides[1]), [(Listen, SynReceived, "rcv SYN / snd SYN,ACK"), (SynReceived, Listen, "rcv RST")]);
    assert!(c.sides.iter().flat_map(|s| &s.changes).all(|ch| ch.confirmed));
}

#[test]
fn fins_never_acknowledged_then_an_rst_take_nobody_through_time_wait() {
    let mut w = Wire::default();
    handshake(&mut w);
    // A closes; B acknowledges, then closes and sends its FIN six times, never
    // acknowledged, and gives up with an RST.
    w.seg(A, "FA", 1, 1, 64240, 0).seg(B, "A", 1, 2, 65535, 0);
    for _ in 0..6 {
        w.seg(B, "FA", 1, 2, 65535, 0);
    }
    w.seg(B, "R", 2, 0, 0, 0);
    let c = &w.inspect().connections[0];
    let confirmed: Vec<_> = c.sides[0].changes.iter().filter(|ch| ch.confirmed).map(|ch| ch.to).collect();
    assert_eq!(confirmed.last(), Some(&FinWait2), "{:?}", path(&c.sides[0]));
    assert_eq!(c.sides[0].confirmed_state(), FinWait2);
    assert!(c.sides[0].changes.iter().filter(|ch| ch.to == TimeWait).all(|ch| !ch.confirmed));
    assert_eq!(notes(c).iter().filter(|(_, n)| n.contains(&"retransmission")).count(), 5);
}
