//! The inspector on captures made for each kind of capture it once got wrong
//! (issue 16): Linux kernels in namespaces recorded with tcpdump
//! (`tools/tests/fixtures/record-inspect.sh`), cut, reordered and edited by
//! `make-inspect-fixtures.py`. Where Wireshark has a word for a segment, the
//! expectations here are what tshark says of the same frames.

use stack::tcp::State;
use std::path::{Path, PathBuf};
use std::process::Command;
use tapstack_tools::inspect::{inspect_pcap, ConnectionReport, Inspection};

const TAPSTACK: &str = env!("CARGO_BIN_EXE_tapstack");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("inspect-{name}"))
}

fn inspect(name: &str) -> Inspection {
    inspect_pcap(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (frame number, notes) of every segment with notes.
fn notes(c: &ConnectionReport) -> Vec<(u64, Vec<&str>)> {
    c.segments
        .iter()
        .filter(|s| !s.notes.is_empty())
        .map(|s| (s.frame, s.notes.iter().map(String::as_str).collect()))
        .collect()
}

/// (from, to, confirmed) of a side's changes.
fn path(c: &ConnectionReport, side: usize) -> Vec<(State, State, bool)> {
    c.sides[side].changes.iter().map(|ch| (ch.from, ch.to, ch.confirmed)).collect()
}

fn states(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(TAPSTACK).arg("states").args(args).output().expect("run tapstack");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tapstack-inspect-{}-{name}", std::process::id()))
}

// 1. A state changes only on what the other side acknowledges.

#[test]
fn a_syn_ack_never_acknowledged_leaves_the_client_unconfirmed() {
    let i = inspect("halfopen.pcap");
    let c = &i.connections[0];
    use State::*;
    assert_eq!(path(c, 0), [(Closed, SynSent, true), (SynSent, Established, false)]);
    assert_eq!(path(c, 1), [(Listen, SynReceived, true)]);
    assert_eq!((c.sides[0].confirmed_state(), c.sides[0].final_state()), (SynSent, Established));
    // tshark: frames 3-6 are retransmissions of the SYN,ACK.
    assert_eq!(notes(c), (3..=6).map(|f| (f, vec!["retransmission"])).collect::<Vec<_>>());
    assert!(c.notes.iter().any(|n| n.contains("unconfirmed")), "{:?}", c.notes);
}

#[test]
fn a_fin_never_acknowledged_moves_nobody_for_certain() {
    use State::*;
    let c = &inspect("fin-unacked.pcap").connections[0];
    assert_eq!(path(c, 1)[2..], [(Established, FinWait1, true)]);
    assert_eq!(path(c, 0)[2..], [(Established, CloseWait, false)]);
    assert_eq!(c.sides[0].confirmed_state(), Established);
    assert_eq!(notes(c).len(), 5, "five retransmissions of the FIN: {:?}", notes(c));
    // With the RST,ACK that acknowledges the FIN, A was in CLOSE-WAIT for sure.
    let c = &inspect("fin-rst.pcap").connections[0];
    assert_eq!(path(c, 0)[2..], [(Established, CloseWait, true), (CloseWait, Closed, true)]);
    assert_eq!(path(c, 1)[2..], [(Established, FinWait1, true), (FinWait1, Closed, true)]);
    assert!(c.segments.iter().all(|s| !s.notes.iter().any(|n| n == "segment after close")));
}

// 2. No window judgement without the window scale.

#[test]
fn a_capture_from_the_middle_flags_nothing_out_of_window() {
    let i = inspect("midstream.pcap");
    let c = &i.connections[0];
    assert_eq!(c.sides[0].initial, State::Established);
    assert!(c.segments.iter().all(|s| !s.win_scaled), "no SYN, no scale");
    assert!(c.segments.iter().all(|s| s.notes.is_empty()), "{:?}", notes(c));
    assert!(c.notes.iter().any(|n| n.contains("window scale")), "{:?}", c.notes);
}

// 3. Frames read from their headers, skipped ones listed.

#[test]
fn tso_segments_with_ip_length_zero_are_read() {
    let i = inspect("tso.pcap");
    assert_eq!((i.length_from_frame, i.malformed), (5, 0));
    let c = &i.connections[0];
    let data: Vec<u32> = c.segments.iter().filter(|s| s.from == 0 && s.len > 0).map(|s| s.len).collect();
    assert_eq!(&data[..5], [2896; 5], "each a pair of 1448-byte segments");
    // Every byte acknowledged was seen sent: no ACK jumps over missing data rows.
    let sent: u32 = data.iter().sum();
    let acked = c.segments.iter().filter(|s| s.from == 1).filter_map(|s| s.ack).max().unwrap();
    assert!(acked <= sent + 1, "acked {acked}, sent {sent}");
    assert!(c.segments.iter().all(|s| s.notes.is_empty()), "{:?}", notes(c));
}

#[test]
fn frames_cut_by_a_snap_length_are_read_from_their_headers() {
    let i = inspect("snap96.pcap");
    assert_eq!((i.tcp_segments, i.cut_short, i.malformed), (34, 14, 0));
    let c = &i.connections[0];
    let sent: u32 = c.segments.iter().filter(|s| s.from == 0).map(|s| s.len).sum();
    assert_eq!(sent, 20000, "the payload lengths come from the IP header");
    assert_eq!((c.sides[0].final_state(), c.sides[1].final_state()), (State::TimeWait, State::Closed));
    let (ok, out, err) = states(&["--pcap", fixture("snap96.pcap").to_str().unwrap(), "--timeline"]);
    assert!(ok, "{err}");
    assert!(out.contains("14 segment(s) cut short by the capture's snap length"), "{out}");
}

// 4. Link types other than Ethernet.

#[test]
fn linux_cooked_loopback_and_raw_ip_captures_are_read() {
    let reference = inspect("sll.pcap");
    assert_eq!(reference.links, [113]);
    for (name, link) in [("null.pcap", 0), ("raw.pcap", 101)] {
        let i = inspect(name);
        assert_eq!(i.links, [link], "{name}");
        assert_eq!(i.connections, reference.connections, "{name}: the same frames, the same report");
    }
    let sll2 = inspect("sll2.pcap");
    assert_eq!((sll2.links.as_slice(), sll2.tcp_segments, sll2.connections.len()), (&[276][..], 10, 1));
    // A pcapng with an Ethernet and an SLL2 interface: both read.
    let mixed = inspect("mixed.pcapng");
    assert_eq!((mixed.links.as_slice(), mixed.tcp_segments, mixed.malformed), (&[1, 276][..], 16, 0));
    assert_eq!(mixed.connections.len(), 2);
    let (ok, out, err) = states(&["--pcap", fixture("sll2.pcap").to_str().unwrap(), "--timeline"]);
    assert!(ok && out.contains("LINUX_SLL2 (Linux cooked v2)"), "{out}{err}");
}

// 5. Reordering, and a segment missing from the capture, as tshark says.

#[test]
fn reordering_and_a_missing_segment_are_not_retransmissions() {
    let c = &inspect("reorder.pcap").connections[0];
    assert_eq!(
        notes(c),
        [
            (50, vec!["previous segment not captured"]),
            (51, vec!["out-of-order"]),
            (60, vec!["previous segment not captured"])
        ]
    );
}

// 6. A change shown on the row of the side that makes it.

#[test]
fn a_bare_ack_does_not_move_the_other_side() {
    use State::*;
    // Frame 6 is A's FIN, which B's kernel dropped; frame 7 B's data, which
    // acknowledges all but that FIN; frame 8 A's bare ACK of the data; frame 9
    // the FIN again, and frame 10 B's ACK of it. B enters CLOSE-WAIT on its own
    // ACK, not on A's.
    let c = &inspect("finlost.pcap").connections[0];
    let changes = |frame: u64| {
        let row = c.segments.iter().find(|s| s.frame == frame).unwrap();
        row.changes.iter().map(|(side, ch)| (*side, ch.from, ch.to)).collect::<Vec<_>>()
    };
    assert_eq!(changes(8), []);
    assert_eq!(changes(10), [(1, Established, CloseWait), (0, FinWait1, FinWait2)]);
    assert_eq!(c.segments.iter().find(|s| s.frame == 9).unwrap().notes, ["retransmission"]);
}

// 7. Lining up with Wireshark.

#[test]
fn zero_windows_updates_and_probes_are_flagged_by_frame_number() {
    let c = &inspect("zerowin.pcap").connections[0];
    let n = notes(c);
    let at = |f: u64| n.iter().find(|(frame, _)| *frame == f).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(at(9), ["zero window"]);
    assert_eq!(at(10), ["zero-window probe"]);
    assert_eq!(at(11), ["zero window"]);
    assert_eq!(at(13), ["window update"]);
    // The duplicate ACKs: none by RFC 5681 (no data outstanding), two by Wireshark's rule.
    assert_eq!(c.dup_acks[0], (0, 2));
    let (ok, out, err) = states(&["--pcap", fixture("zerowin.pcap").to_str().unwrap(), "--timeline", "--conn", "1"]);
    assert!(ok, "{err}");
    assert!(out.contains("as RFC 5681 section 2 counts them") && out.contains("Wireshark"), "{out}");
    assert!(out.contains("  frame        time"), "a frame column: {out}");
}

#[test]
fn notes_and_state_changes_start_in_one_column() {
    let (ok, out, err) = states(&["--pcap", fixture("halfopen.pcap").to_str().unwrap(), "--timeline"]);
    assert!(ok, "{err}");
    let column = |needle: &str| out.lines().find_map(|l| l.find(needle)).unwrap_or_else(|| panic!("{needle}: {out}"));
    assert_eq!(column("[retransmission]"), column("B: LISTEN -> SYN-RECEIVED"));
    assert_eq!(column("[retransmission]"), column("A: SYN-SENT -> ESTABLISHED"));
    assert!(out.contains("[unconfirmed]") && out.contains("final states: A SYN-SENT (then ESTABLISHED, unconfirmed)"));
}

#[test]
fn conn_picks_one_connection_and_says_what_there_is() {
    let mixed = fixture("mixed.pcapng");
    let (ok, out, _) = states(&["--pcap", mixed.to_str().unwrap(), "--timeline", "--conn", "2"]);
    assert!(ok && out.contains("connection 2:") && !out.contains("connection 1:"), "{out}");
    let (ok, _, err) = states(&["--pcap", mixed.to_str().unwrap(), "--timeline", "--conn", "3"]);
    assert!(!ok && err.contains("2 connection(s)"), "{err}");
    let svg = temp("no-conn.svg");
    let (ok, _, err) = states(&["--pcap", mixed.to_str().unwrap(), "--ladder", svg.to_str().unwrap()]);
    assert!(!ok && err.contains("--conn N"), "{err}");
}
