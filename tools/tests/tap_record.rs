//! `tapstack record` against the kernel, as a user runs it: a scenario is
//! recorded afresh in a namespace of its own (tcpdump capturing the TAP too),
//! its own capture replays exactly, and so does tcpdump's, within the
//! documented tolerance for another program's clock.

use std::process::Command;
use tapstack_tools::netns::tap_tests_enabled;

const TAPSTACK: &str = env!("CARGO_BIN_EXE_tapstack");

#[test]
fn a_recording_and_tcpdumps_capture_of_it_both_replay() {
    if !tap_tests_enabled("a_recording_and_tcpdumps_capture_of_it_both_replay") {
        return;
    }
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../captures/tcp-echo-peer-closes.toml");
    let dir = std::env::temp_dir().join(format!("tapstack-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tcpdump = dir.join("tcpdump.pcap");
    let out = Command::new(TAPSTACK)
        .arg("record")
        .arg(scenario)
        .arg("--out-dir")
        .arg(&dir)
        .arg("--tcpdump")
        .arg(&tcpdump)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    println!("{text}");
    assert_eq!(out.status.code(), Some(0), "record (which replays its capture) failed:\n{text}");
    assert!(text.contains("b'hello\\n'"), "the kernel's client got its echo:\n{text}");
    let trace = std::fs::read_to_string(dir.join("tcp-echo-peer-closes.trace")).unwrap();
    assert!(trace.contains("LAST-ACK -> CLOSED"), "{trace}");

    let out = Command::new(TAPSTACK).arg("replay").arg(&tcpdump).arg("--scenario").arg(scenario).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    println!("{text}");
    assert_eq!(out.status.code(), Some(0), "tcpdump's capture did not replay:\n{text}");
    assert!(text.contains("another program's recording"), "{text}");
}
