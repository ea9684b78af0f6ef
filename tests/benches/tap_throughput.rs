//! Bulk TCP throughput over a TAP, kernel -> tapstack and tapstack -> kernel,
//! against a baseline measured in the same run: the same Python client talking
//! to a Linux server over a veth pair between two namespaces. A benchmark, not a
//! test: it prints a table and asserts nothing about speed.
//!
//! Run (as root): cargo bench -p tapstack-tests --bench tap_throughput
//! Size per run: TAPSTACK_BENCH_MIB (default 64); runs per cell: TAPSTACK_BENCH_RUNS (default 3).

use std::process::Command;
use tapstack_tools::lab::{Lab, LabConfig};
use tapstack_tools::netns::Netns;

/// Python client: "send" pushes N MiB to port 9 (discard) and waits for the
/// server's close; "recv" reads N MiB from port 19 (chargen). Prints seconds.
const CLIENT: &str = r#"
import socket, sys, time
mode, addr, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
total = mib * 1024 * 1024
if mode == "send":
    s = socket.create_connection((addr, 9), timeout=60)
    chunk = b"x" * 65536
    t = time.perf_counter()
    for _ in range(total // len(chunk)):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
else:
    s = socket.create_connection((addr, 19), timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    got, t = 0, time.perf_counter()
    while got < total:
        b = s.recv(1 << 20)
        if not b: raise SystemExit("closed early")
        got += len(b)
print(time.perf_counter() - t)
"#;

/// Python servers for the Linux baseline: discard on 9 and an endless source on 19.
const SERVER: &str = r#"
import socket, threading
def serve(port, handler):
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", port)); l.listen(16)
    while True:
        c, _ = l.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()
def discard(c):
    while c.recv(1 << 20): pass
    c.close()
def source(c):
    data = b"y" * 65536
    try:
        while True: c.sendall(data)
    except OSError: c.close()
threading.Thread(target=serve, args=(9, discard), daemon=True).start()
serve(19, source)
"#;

fn run_client(ns: &Netns, mode: &str, addr: &str, mib: u32) -> f64 {
    let out = ns
        .command("timeout")
        .args(["120", "python3", "-c", CLIENT, mode, addr, &mib.to_string()])
        .output()
        .expect("python3");
    assert!(out.status.success(), "client failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("seconds")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    if !tapstack_tools::netns::is_root() {
        eprintln!("tap_throughput: needs root (network namespaces, TAP); skipped");
        return;
    }
    let mib: u32 = std::env::var("TAPSTACK_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let runs: usize = std::env::var("TAPSTACK_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);

    // tapstack on a TAP, the kernel's client in the lab's namespace.
    let lab = Lab::start("bench-tap", LabConfig::default()).expect("lab");
    let addr = lab.config.stack_addr.to_string();
    let ours: Vec<(f64, f64)> = (0..runs)
        .map(|_| (run_client(lab.netns(), "send", &addr, mib), run_client(lab.netns(), "recv", &addr, mib)))
        .collect();
    drop(lab);

    // Baseline: Linux to Linux over a veth pair, the server in a second namespace.
    let client = Netns::create("bench-veth-c").expect("netns");
    let server = Netns::create("bench-veth-s").expect("netns");
    let ok = |c: &mut Command| assert!(c.status().unwrap().success());
    ok(client.command("ip").args(["link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", server.name()]));
    ok(client.command("ip").args(["addr", "add", "10.79.0.1/24", "dev", "v0"]));
    ok(client.command("ip").args(["link", "set", "v0", "up"]));
    ok(server.command("ip").args(["addr", "add", "10.79.0.2/24", "dev", "v1"]));
    ok(server.command("ip").args(["link", "set", "v1", "up"]));
    let mut srv = server.command("python3").args(["-c", SERVER]).spawn().expect("python3 server");
    // Wait (bounded) until the server listens.
    for _ in 0..100 {
        let probe = client
            .command("python3")
            .args(["-c", "import socket; socket.create_connection(('10.79.0.2', 9), timeout=1).close()"])
            .stderr(std::process::Stdio::null())
            .status();
        if probe.map(|s| s.success()).unwrap_or(false) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let linux: Vec<(f64, f64)> = (0..runs)
        .map(|_| (run_client(&client, "send", "10.79.0.2", mib), run_client(&client, "recv", "10.79.0.2", mib)))
        .collect();
    let _ = srv.kill();
    let _ = srv.wait();

    let mbit = |secs: f64| mib as f64 * 8.0 * 1.048576 / secs;
    let (o_in, o_out) = (median(ours.iter().map(|r| r.0).collect()), median(ours.iter().map(|r| r.1).collect()));
    let (l_in, l_out) = (median(linux.iter().map(|r| r.0).collect()), median(linux.iter().map(|r| r.1).collect()));
    println!("\nbulk TCP, {mib} MiB per run, median of {runs} runs (Mbit/s; ratio = tapstack / Linux)");
    println!("{:<34} {:>12} {:>16} {:>8}", "direction", "tapstack/TAP", "Linux/veth", "ratio");
    println!(
        "{:<34} {:>12.0} {:>16.0} {:>8.3}",
        "kernel client -> server (to discard)",
        mbit(o_in),
        mbit(l_in),
        l_in / o_in
    );
    println!(
        "{:<34} {:>12.0} {:>16.0} {:>8.3}",
        "server -> kernel client (chargen)",
        mbit(o_out),
        mbit(l_out),
        l_out / o_out
    );
}
