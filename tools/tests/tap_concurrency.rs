//! 10,000 concurrent connections served by `tapstack up` (the binary) on a TAP in
//! a namespace the test creates and deletes: a Python asyncio client in the
//! namespace (the kernel's TCP) opens them all, holds every one open, and on
//! each writes 8 bytes and reads the 8 echoed back. Bounded by `timeout`; the
//! time it took is printed (the benchmark compares it with Linux's).

mod common;

use common::Reaper;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tapstack_tools::netns::{tap_tests_enabled, Netns};

const TAPSTACK: &str = env!("CARGO_BIN_EXE_tapstack");
const HOST: &str = "10.82.0.1";
const STACK: &str = "10.82.0.2";
const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/concurrent_echo.py");
/// The client's whole run, at most (it prints how long it really took).
const LIMIT_SECS: u64 = 120;

/// A field of /proc/PID/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn ten_thousand_concurrent_echo_connections_are_all_served() {
    if !tap_tests_enabled("ten_thousand_concurrent_echo_connections_are_all_served") {
        return;
    }
    let n = 10_000;
    let ns = Netns::create("tst-10k").expect("namespace");
    ns.add_tap("tap0", &format!("{HOST}/24")).expect("TAP");
    let mut c = ns.command(TAPSTACK);
    c.args(["up", "--tap", "tap0", "--addr", &format!("{STACK}/24"), "--seed", "11", "--serve", "echo"])
        .arg("--control")
        .arg(std::env::temp_dir().join(format!("tapstack-10k-{}.sock", std::process::id())))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let up = Reaper(c.spawn().expect("spawn tapstack up"));
    let pid = up.0.id();
    // Up once it answers a connection.
    let end = Instant::now() + Duration::from_secs(15);
    while ns.exec_checked(&["/usr/bin/python3", CLIENT, STACK, "7", "1"]).is_err() {
        assert!(Instant::now() < end, "tapstack up never served echo");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Opening the TAP raised its queue towards the stack (txqueuelen, 1000
    // from `ip tuntap add`): with 1000, a burst of connects overflowed it.
    let qlen = ns.exec_checked(&["cat", "/sys/class/net/tap0/tx_queue_len"]).expect("tx_queue_len");
    let qlen: i32 = String::from_utf8_lossy(&qlen.stdout).trim().parse().expect("a number");
    assert!(qlen >= stack::device::tap::QUEUE_LEN, "tap0's txqueuelen is {qlen}");
    let rss_before = status_kib(pid, "VmRSS:");
    let started = Instant::now();
    let out = ns
        .command("timeout")
        .args([&LIMIT_SECS.to_string(), "/usr/bin/python3", CLIENT, STACK, "7", &n.to_string()])
        .output()
        .expect("run the client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{n} concurrent echo connections: {} (wall {:?})", stdout.trim(), started.elapsed());
    // The peak while all were open, less what it had before: memory per connection.
    let peak = status_kib(pid, "VmHWM:");
    println!(
        "tapstack up RSS: {rss_before} KiB before, peak {peak} KiB: {:.1} KiB per connection (buffers included)",
        (peak.saturating_sub(rss_before)) as f64 / n as f64
    );
    assert!(out.status.success(), "client failed: {stdout} {stderr}");
    assert!(stdout.contains(&format!("served={n} failed=0 open_max={n}")), "{stdout} {stderr}");
}
