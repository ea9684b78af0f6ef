//! tapstack's own packetdrill suite (tests/packetdrill/, written for this project
//! from RFC 9293 and the RFCs beside it): every script run through packetdrill
//! against libtapstack.so, whose stack runs in virtual time, and reported one by one.

mod common;

use std::time::Duration;

#[test]
fn every_script_of_the_suite_passes() {
    let Some(pd) = common::packetdrill_or_skip() else { return };
    let lib = common::library();
    let dir = common::workspace().join("tests/packetdrill");
    let scripts = common::scripts(&dir);
    assert!(scripts.len() >= 80, "the suite has {} scripts, fewer than 80", scripts.len());
    let mut failed = Vec::new();
    for s in &scripts {
        let o = common::run_script(&pd, &lib, s, &[], Duration::from_secs(60));
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
