//! A short run of every fuzz target (issue 13: "a short run of each in CI"):
//! `tests/fuzz/run.sh` builds the targets with nightly's coverage
//! instrumentation and runs each for `TAPSTACK_FUZZ_SECS` seconds (60 under
//! CI), from the seed corpus written from captures/. A crash fails the test;
//! the input is then in tests/fuzz/artifacts/TARGET/ (see tests/fuzz/README.md
//! for turning it into a regression test).
//!
//! It takes minutes and a nightly toolchain, so it runs under `CI=true` (where
//! it must: a missing nightly fails it) or when `TAPSTACK_FUZZ_SECS` is set;
//! otherwise it says why it skipped.

use std::path::Path;
use std::process::Command;

#[test]
fn every_fuzz_target_runs_clean_for_a_while() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let secs = match std::env::var("TAPSTACK_FUZZ_SECS") {
        Ok(s) => s.parse::<u32>().expect("TAPSTACK_FUZZ_SECS is a number of seconds"),
        Err(_) if ci => 60,
        Err(_) => {
            eprintln!("skipping the fuzz run: set TAPSTACK_FUZZ_SECS=N (or CI=true) to fuzz each target for N s");
            return;
        }
    };
    let nightly = Command::new("rustc").args(["+nightly", "-V"]).output().is_ok_and(|o| o.status.success());
    assert!(nightly, "the fuzz run needs a nightly toolchain: rustup toolchain install nightly --profile minimal");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/run.sh");
    // Cargo's variables for this test would leak into the nightly build of
    // another workspace (a different toolchain, target dir and flags).
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg(secs.to_string());
    for (k, _) in std::env::vars() {
        let cargos = k.starts_with("CARGO") && k != "CARGO_HOME";
        if cargos || k == "RUSTUP_TOOLCHAIN" || k.starts_with("RUSTC") || k == "RUSTFLAGS" {
            cmd.env_remove(k);
        }
    }
    let status = cmd.status().expect("bash runs tests/fuzz/run.sh");
    assert!(status.success(), "a fuzz target crashed or did not build: see the output above and tests/fuzz/artifacts/");
}
