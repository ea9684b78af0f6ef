//! The reference captures replay exactly, and the replay is shown to catch
//! changes: one altered field of one expected frame, or one setting of the
//! stack, makes it fail at that frame and name the field.

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use std::path::{Path, PathBuf};
use std::process::Command;
use tapstack_tools::scenario::capture::{write_pcapng, Capture};
use tapstack_tools::scenario::file::Scenario;
use tapstack_tools::scenario::record::{record, RecordOptions};
use tapstack_tools::scenario::replay::{replay, Divergence};
use tapstack_tools::scenario::scenario_for;

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures")
}

fn load(name: &str) -> (Scenario, Capture) {
    let pcap = captures().join(format!("{name}.pcapng"));
    let scenario = Scenario::load(&scenario_for(&pcap)).unwrap();
    let capture = Capture::read(&pcap, scenario.stack_config().unwrap().mac).unwrap();
    (scenario, capture)
}

fn diverge(s: &Scenario, c: &Capture) -> Divergence {
    let o = replay(s, c, None).unwrap();
    o.divergence.expect("the replay should have diverged")
}

/// The fields that differ, less the checksums (which follow any other change).
fn names(d: &Divergence) -> Vec<&str> {
    d.fields.iter().map(|(n, _, _)| n.as_str()).filter(|n| !n.ends_with("checksum")).collect()
}

#[test]
fn every_capture_replays_exactly() {
    let mut replayed = Vec::new();
    for entry in std::fs::read_dir(captures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pcapng" || e == "pcap") {
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let (s, c) = load(&name);
            assert!(c.own_clock, "{name} was recorded by tapstack record");
            let o = replay(&s, &c, None).unwrap();
            if let Some(d) = &o.divergence {
                panic!("{name} diverged:\n{}", d.report);
            }
            assert!(o.stack_frames > 0 && o.peer_frames > 0, "{name}: a conversation has two sides");
            let states: Vec<String> =
                o.transitions.iter().map(|(_, t)| format!("{} -> {} ({})", t.from, t.to, t.cause)).collect();
            assert!(
                s.unmet_expectations(&states).is_empty(),
                "{name} does not show {:?}: {states:#?}",
                s.unmet_expectations(&states)
            );
            replayed.push(name);
        }
    }
    replayed.sort();
    println!("replayed {} captures: {}", replayed.len(), replayed.join(", "));
    assert!(replayed.len() >= 10, "captures/ holds at least ten scenarios, found {replayed:?}");
}

/// Offsets into an Ethernet + IPv4 + TCP frame.
struct TcpAt {
    /// Index among tapstack's frames.
    stack_index: usize,
    /// Index in the capture.
    capture_index: usize,
    tcp: usize,
    payload: usize,
    payload_len: usize,
}

/// The first of tapstack's TCP frames for which `pick(flags syn, payload length)` holds.
fn find_tcp(c: &Capture, pick: impl Fn(bool, usize) -> bool) -> TcpAt {
    let mut stack_index = 0;
    for (i, f) in c.frames.iter().enumerate() {
        if !f.from_stack {
            continue;
        }
        if let Ok(p) = SlicedPacket::from_ethernet(&f.data) {
            if let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) = (&p.net, &p.transport) {
                if pick(t.syn(), t.payload().len()) {
                    let tcp = 14 + ip.header().slice().len();
                    let payload = tcp + t.header_len();
                    return TcpAt { stack_index, capture_index: i, tcp, payload, payload_len: t.payload().len() };
                }
            }
        }
        stack_index += 1;
    }
    panic!("no such TCP frame from tapstack");
}

/// Makes the TCP checksum right again, so that the only difference is the one made.
fn fix_checksum(frame: &mut [u8], at: &TcpAt) {
    let sum = {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) = (&p.net, &p.transport) else { panic!() };
        t.to_header().calc_checksum_ipv4(&ip.header().to_header(), t.payload()).unwrap()
    };
    frame[at.tcp + 16..at.tcp + 18].copy_from_slice(&sum.to_be_bytes());
}

/// Alters one expected frame with `f`, replays, and checks the replay fails at
/// that frame naming `field`.
fn altered_frame_is_caught(pick: impl Fn(bool, usize) -> bool, f: impl Fn(&mut [u8], &TcpAt), field: &str) {
    let (s, mut c) = load("tcp-echo-peer-closes");
    let at = find_tcp(&c, pick);
    let frame = &mut c.frames[at.capture_index].data;
    f(frame, &at);
    fix_checksum(frame, &at);
    let d = diverge(&s, &c);
    assert_eq!(d.stack_index, at.stack_index, "fails at the altered frame:\n{}", d.report);
    assert_eq!(d.capture_number, Some(at.capture_index + 1));
    assert_eq!(names(&d), [field], "{}", d.report);
}

#[test]
fn a_changed_flag_is_caught_at_its_frame() {
    // PSH off on the first echo tapstack sends.
    altered_frame_is_caught(|syn, len| !syn && len > 0, |fr, at| fr[at.tcp + 13] &= !0x08, "tcp.flags");
}

#[test]
fn a_changed_sequence_number_is_caught_at_its_frame() {
    altered_frame_is_caught(
        |syn, len| !syn && len > 0,
        |fr, at| {
            let seq = u32::from_be_bytes(fr[at.tcp + 4..at.tcp + 8].try_into().unwrap());
            fr[at.tcp + 4..at.tcp + 8].copy_from_slice(&seq.wrapping_add(1).to_be_bytes());
        },
        "tcp.seq",
    );
}

#[test]
fn a_changed_payload_byte_is_caught_at_its_frame() {
    let (s, mut c) = load("tcp-echo-peer-closes");
    let at = find_tcp(&c, |syn, len| !syn && len > 2);
    let frame = &mut c.frames[at.capture_index].data;
    frame[at.payload + 2] ^= 0x20;
    fix_checksum(frame, &at);
    let d = diverge(&s, &c);
    assert_eq!(d.stack_index, at.stack_index, "{}", d.report);
    assert_eq!(names(&d), ["payload byte 2"], "{}", d.report);
    assert!(at.payload_len > 2);
}

#[test]
fn a_changed_window_is_caught_at_its_frame() {
    altered_frame_is_caught(|syn, _| syn, |fr, at| fr[at.tcp + 15] ^= 1, "tcp.window");
}

#[test]
fn a_frame_sent_at_another_time_is_caught() {
    let (s, mut c) = load("tcp-echo-peer-closes");
    let at = find_tcp(&c, |syn, len| !syn && len > 0);
    c.frames[at.capture_index].at += std::time::Duration::from_micros(1);
    let d = diverge(&s, &c);
    assert_eq!(d.stack_index, at.stack_index, "{}", d.report);
    assert_eq!(names(&d), ["time"], "{}", d.report);
}

#[test]
fn a_missing_frame_is_caught() {
    let (s, mut c) = load("tcp-echo-peer-closes");
    let at = find_tcp(&c, |syn, len| !syn && len > 0);
    c.frames.remove(at.capture_index);
    let d = diverge(&s, &c);
    assert_eq!(d.stack_index, at.stack_index, "{}", d.report);
}

#[test]
fn a_changed_setting_is_caught_at_the_first_frame_it_changes() {
    let (s, c) = load("tcp-echo-peer-closes");
    let synack = find_tcp(&c, |syn, _| syn);
    // A smaller receive buffer: another window on the SYN,ACK.
    let mut smaller = s.clone();
    smaller.stack.tcp.recv_buffer = Some(4096);
    let d = diverge(&smaller, &c);
    assert_eq!(d.stack_index, synack.stack_index, "{}", d.report);
    assert!(names(&d).contains(&"tcp.window"), "{}", d.report);
    // Another seed: another ISN secret.
    let mut reseeded = s.clone();
    reseeded.stack.seed += 1;
    let d = diverge(&reseeded, &c);
    assert_eq!(d.stack_index, synack.stack_index, "{}", d.report);
    assert!(names(&d).contains(&"tcp.seq"), "{}", d.report);
    // No echo service: the SYN is refused.
    let mut no_service = s.clone();
    no_service.app.services.clear();
    let d = diverge(&no_service, &c);
    assert_eq!(d.stack_index, synack.stack_index, "{}", d.report);
    assert!(names(&d).contains(&"tcp.flags"), "{}", d.report);
}

#[test]
fn a_changed_fault_seed_is_caught() {
    let (mut s, c) = load("fault-recovery");
    s.faults = Some("drop=0.04,seed=12".into());
    let d = diverge(&s, &c);
    println!("{}", d.report);
}

#[test]
fn the_command_exits_0_on_a_match_and_1_with_the_divergence_side_by_side() {
    let bin = env!("CARGO_BIN_EXE_tapstack");
    let pcap = captures().join("nagle.pcapng");
    let out = Command::new(bin).arg("replay").arg(&pcap).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));

    let (_, mut c) = load("nagle");
    let at = find_tcp(&c, |syn, len| !syn && len > 1);
    c.frames[at.capture_index].data[at.tcp + 13] |= 0x01; // FIN
    let dir = std::env::temp_dir().join(format!("tapstack-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let altered = dir.join("nagle-altered.pcapng");
    write_pcapng(&altered, &c.frames, "altered for a test").unwrap();
    let out = Command::new(bin)
        .arg("replay")
        .arg(&altered)
        .arg("--scenario")
        .arg(captures().join("nagle.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{text}");
    println!("{text}");
    let expected = text.lines().find(|l| l.trim_start().starts_with("expected")).expect("an expected line");
    let sent = text.lines().find(|l| l.trim_start().starts_with("sent")).expect("a sent line");
    assert!(expected.contains("[FIN, PSH, ACK]") && expected.contains("Seq=2 Ack=1"), "{expected}");
    assert!(sent.contains("[PSH, ACK]") && sent.contains("Len=39"), "{sent}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("tcp.flags")), "{text}");
}

/// The scenario with a tapstack peer is recorded in virtual time: recording it
/// again gives the same capture.
#[test]
fn a_virtual_time_recording_is_reproducible() {
    let (s, c) = load("simultaneous-close");
    let rec = record(&s, &RecordOptions::default()).unwrap();
    assert_eq!(rec.frames, c.frames);
    let states: Vec<String> = rec.transitions.iter().map(|(_, t)| format!("{} -> {}", t.from, t.to)).collect();
    assert!(states.contains(&"FIN-WAIT-1 -> CLOSING".to_string()), "{states:?}");
    assert!(states.contains(&"CLOSING -> TIME-WAIT".to_string()), "{states:?}");
}

/// Another program's capture: frames may come up to 20 ms early (the recording
/// stack was scheduled late) but not over 1 ms late.
#[test]
fn another_programs_capture_allows_early_frames_only() {
    let (s, mut c) = load("tcp-echo-peer-closes");
    c.own_clock = false;
    let at = find_tcp(&c, |syn, len| !syn && len > 0);
    c.frames[at.capture_index].at += std::time::Duration::from_millis(5);
    let o = replay(&s, &c, None).unwrap();
    assert!(o.matched(), "{}", o.divergence.unwrap().report);
    // Stamped 2 ms before the stack sends it: the frame is late, a change.
    let trigger = c.frames[at.capture_index - 1].at.as_micros();
    c.frames[at.capture_index].at = stack::time::Instant::from_micros(trigger - 2000);
    let d = diverge(&s, &c);
    assert_eq!(d.stack_index, at.stack_index, "{}", d.report);
    assert_eq!(names(&d), ["time"], "{}", d.report);
}
