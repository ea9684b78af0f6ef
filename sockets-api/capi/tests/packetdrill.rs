//! tapstack's own packetdrill suite (tests/packetdrill/, written for this project
//! from RFC 9293 and the RFCs beside it): every script run through packetdrill
//! against libtapstack.so, whose stack runs in virtual time, and reported one by one.

mod common;

use std::time::Duration;

/// packetdrill arguments for every script of the suite. The scripts' peers
/// offer neither SACK-permitted nor timestamps, so tapstack's SYN,ACK does not
/// depend on whether it implements them; if its own SYN should be pinned too,
/// this is where `--so_flags=...` naming the stack's option switches goes (see
/// `config_from_flags` in src/packetdrill.rs for the keys).
const SUITE_ARGS: &[&str] = &[];

#[test]
fn every_script_of_the_suite_passes() {
    let Some(pd) = common::packetdrill_or_skip() else { return };
    let lib = common::library();
    let dir = common::workspace().join("tests/packetdrill");
    let scripts = common::scripts(&dir);
    assert!(scripts.len() >= 80, "the suite has {} scripts, fewer than 80", scripts.len());
    let mut failed = Vec::new();
    for s in &scripts {
        let o = common::run_script(&pd, &lib, s, SUITE_ARGS, Duration::from_secs(60));
        let name = s.strip_prefix(&dir).unwrap_or(s).display().to_string();
        println!("{} {name} ({:.2} s)", if o.passed { "pass" } else { "FAIL" }, o.elapsed.as_secs_f64());
        if !o.passed {
            println!("{}", o.output.trim_end());
            failed.push(name);
        }
    }
    println!("{} scripts, {} passed", scripts.len(), scripts.len() - failed.len());
    assert!(failed.is_empty(), "failed: {failed:?}");
}

/// The harness can fail: a script expecting the wrong window in our SYN,ACK,
/// and one waiting for a packet the stack never sends, both fail.
#[test]
fn a_wrong_script_fails() {
    let Some(pd) = common::packetdrill_or_skip() else { return };
    let lib = common::library();
    let root = std::env::temp_dir().join(format!("tapstack-pd-selftest-{}", std::process::id()));
    std::fs::create_dir_all(root.join("common")).expect("a directory");
    std::fs::create_dir_all(root.join("x")).expect("a directory");
    std::fs::copy(common::workspace().join("tests/packetdrill/common/defaults.sh"), root.join("common/defaults.sh"))
        .expect("the stub");
    let listen = "0 `../common/defaults.sh`\n+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
                  +0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
                  +0 < S 0:0(0) win 65535 <mss 1460,nop,wscale 7>\n";
    let cases = [
        ("window", "+0 > S. 0:0(0) ack 1 win 1234 <mss 1460,nop,wscale 1>\n", "tcp_window"),
        ("silence", "+0 > S. 0:0(0) ack 1 <...>\n+0 > P. 1:2(1) ack 1\n", "sent nothing"),
    ];
    for (name, tail, expect) in cases {
        let script = root.join(format!("x/{name}.pkt"));
        std::fs::write(&script, format!("{listen}{tail}")).expect("the script");
        let o = common::run_script(&pd, &lib, &script, &[], Duration::from_secs(60));
        assert!(!o.passed && o.output.contains(expect), "{name}: {}", o.output);
    }
    let _ = std::fs::remove_dir_all(root);
}
