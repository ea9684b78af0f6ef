//! Bulk TCP throughput over a TAP, kernel -> server and server -> kernel, for
//! five servers measured in the same run with rounds interleaved and the same
//! kernel-side Python client: tapstack (its discard and chargen services) on a
//! plain TAP, and again on a TAP with the kernel's offloads (virtio-net header,
//! `tapstack up`'s default), and once more with offloads but fixed 64 KiB
//! buffers (`LabConfig::buffer_autotune` off: tapstack before its buffers
//! grew, the `fixed` column); smoltcp 0.14's benchmark server logic on a TAP (`smoltcp_server.rs`);
//! and Linux's own TCP to a Python server over a veth pair. A benchmark, not a
//! test: it prints a table with ratios and asserts nothing about speed.
//!
//! Beside the rates, the CPU time the server spent per MiB (this process's
//! user and system time over the run: the servers of tapstack and smoltcp
//! live in it, and only the one being measured is busy), which the load of
//! a shared machine disturbs far less than the rates: a server that needs
//! less CPU per byte wins the race for the cores whatever else runs.
//!
//! Run (as root): cargo bench -p tapstack-tests --bench tap_throughput
//! Size per run: TAPSTACK_BENCH_MIB (default 954, 1e9 bytes); runs per cell:
//! TAPSTACK_BENCH_RUNS (default 3); one direction only: TAPSTACK_BENCH_DIR=discard
//! or chargen (the other's cells print NaN). TAPSTACK_BENCH_ONLY=offload
//! (or plain) runs tapstack with (without) offloads alone (for `perf record -g -p` on this process:
//! nothing else of it is busy), printing its rates and CPU time per MiB.
//! TAPSTACK_BENCH_NAPI=0 opens tapstack's plain TAP without the kernel's NAPI
//! thread (`tapstack up --no-napi`; `stack::device::napi`), as smoltcp's is;
//! by default it has one, as `tapstack up` opens it. The CPU time per MiB
//! does not count that kernel thread's time (nor any other kernel thread's).

mod smoltcp_server;

use tapstack_tests::veth::VethPair;
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
        .args(["300", "python3", "-c", CLIENT, mode, addr, &mib.to_string()])
        .output()
        .expect("python3");
    assert!(out.status.success(), "client failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("seconds")
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// This process's CPU time so far (user and system, every thread), in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: rusage is plain data (all zeroes is a valid value), and
    // getrusage fills the struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Seconds per run of each direction, for one contender, and the CPU seconds
/// this process spent meanwhile.
#[derive(Default)]
struct Runs {
    send: Vec<f64>,
    recv: Vec<f64>,
    send_cpu: Vec<f64>,
    recv_cpu: Vec<f64>,
}

impl Runs {
    fn run(&mut self, ns: &Netns, addr: &str, mib: u32) {
        let dir = std::env::var("TAPSTACK_BENCH_DIR").unwrap_or_default();
        if dir != "chargen" {
            let c0 = cpu_seconds();
            self.send.push(run_client(ns, "send", addr, mib));
            self.send_cpu.push(cpu_seconds() - c0);
        }
        if dir != "discard" {
            let c1 = cpu_seconds();
            self.recv.push(run_client(ns, "recv", addr, mib));
            self.recv_cpu.push(cpu_seconds() - c1);
        }
    }
}

/// The Linux baseline's two namespaces over a veth pair, with the Python server running.
fn veth_baseline() -> (VethPair, std::process::Child) {
    let pair = VethPair::create("bench-veth", "10.79.0.1/24", "10.79.0.2/24").expect("veth pair");
    let srv = pair.server.command("python3").args(["-c", SERVER]).spawn().expect("python3 server");
    wait_listening(&pair.client, "10.79.0.2");
    (pair, srv)
}

/// Waits (bounded) until something answers on `addr` port 9.
fn wait_listening(ns: &Netns, addr: &str) {
    let probe = format!("import socket; socket.create_connection(('{addr}', 9), timeout=1).close()");
    for _ in 0..100 {
        let st = ns.command("python3").args(["-c", &probe]).stderr(std::process::Stdio::null()).status();
        if st.map(|s| s.success()).unwrap_or(false) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("nothing listens on {addr}:9");
}

fn main() {
    if !tapstack_tools::netns::is_root() {
        eprintln!("tap_throughput: needs root (network namespaces, TAP); skipped");
        return;
    }
    let mib: u32 = std::env::var("TAPSTACK_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(954);
    let runs: usize = std::env::var("TAPSTACK_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);

    match std::env::var("TAPSTACK_BENCH_ONLY").as_deref() {
        Ok("offload") => return one_alone(true, mib, runs),
        Ok("plain") => return one_alone(false, mib, runs),
        _ => {}
    }
    // tapstack on a TAP, the kernel's client in the lab's namespace; its
    // plain TAP with the kernel's NAPI in a thread, as `tapstack up` opens it
    // (TAPSTACK_BENCH_NAPI=0: without, as smoltcp's TAP is).
    let lab = Lab::start("bench-tap", LabConfig { napi: napi(), ..LabConfig::default() }).expect("lab");
    let addr = lab.config.stack_addr.to_string();
    let lab_off = Lab::start("bench-tapo", LabConfig { offload: true, ..LabConfig::default() }).expect("lab");
    let fixed = LabConfig { offload: true, buffer_autotune: false, ..LabConfig::default() };
    let lab_fixed = Lab::start("bench-tapf", fixed).expect("lab");
    // smoltcp 0.14's benchmark server on a TAP of its own, same kernel client.
    let sm_ns = Netns::create("bench-smol").expect("netns");
    sm_ns.add_tap("tap0", "10.78.0.1/24").expect("TAP");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let smol = smoltcp_server::spawn(sm_ns.name(), "tap0", "10.78.0.2".parse().unwrap(), stop.clone());
    wait_listening(&sm_ns, "10.78.0.2");
    let (veth, mut srv) = veth_baseline();
    let client = &veth.client;

    // Rounds interleaved, so a change in the machine's load touches all three alike.
    let (mut ours, mut theirs, mut linux) = (Runs::default(), Runs::default(), Runs::default());
    let (mut ours_off, mut ours_fixed) = (Runs::default(), Runs::default());
    for _ in 0..runs {
        ours.run(lab.netns(), &addr, mib);
        ours_off.run(lab_off.netns(), &addr, mib);
        ours_fixed.run(lab_fixed.netns(), &addr, mib);
        theirs.run(&sm_ns, "10.78.0.2", mib);
        linux.run(client, "10.79.0.2", mib);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = smol.join();
    let _ = srv.kill();
    let _ = srv.wait();
    drop(lab);
    drop(lab_off);
    drop(lab_fixed);

    let mbit = |v: &Vec<f64>| mib as f64 * 8.0 * 1.048576 / median(v.clone());
    let ms_per_mib = |v: &Vec<f64>| median(v.clone()) * 1000.0 / mib as f64;
    println!("\nbulk TCP, {mib} MiB per run, median of {runs} interleaved runs (Mbit/s)");
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "direction",
        "tapstack",
        "+offload",
        "fixed",
        "smoltcp",
        "Linux/veth",
        "vs smoltcp",
        "off/smol",
        "off/Linux",
        "off/fixed",
        "fix/smol"
    );
    for (name, o, f, x, s, l) in [
        ("kernel client -> server (discard)", &ours.send, &ours_off.send, &ours_fixed.send, &theirs.send, &linux.send),
        ("server -> kernel client (chargen)", &ours.recv, &ours_off.recv, &ours_fixed.recv, &theirs.recv, &linux.recv),
    ] {
        let (o, f, x, s, l) = (mbit(o), mbit(f), mbit(x), mbit(s), mbit(l));
        println!(
            "{name:<36} {o:>9.0} {f:>9.0} {x:>9.0} {s:>9.0} {l:>10.0} {:>9.2}x {:>9.2}x {:>8.2}x {:>8.2}x {:>8.2}x",
            o / s,
            f / s,
            f / l,
            f / x,
            x / s
        );
    }
    println!(
        "\nserver CPU time per MiB (ms, median; this process: the server's threads and the kernel's work in them)"
    );
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "direction", "tapstack", "+offload", "fixed", "smoltcp", "smol/ours", "smol/off", "fixed/off"
    );
    for (name, o, f, x, s) in [
        (
            "kernel client -> server (discard)",
            &ours.send_cpu,
            &ours_off.send_cpu,
            &ours_fixed.send_cpu,
            &theirs.send_cpu,
        ),
        (
            "server -> kernel client (chargen)",
            &ours.recv_cpu,
            &ours_off.recv_cpu,
            &ours_fixed.recv_cpu,
            &theirs.recv_cpu,
        ),
    ] {
        let (o, f, x, s) = (ms_per_mib(o), ms_per_mib(f), ms_per_mib(x), ms_per_mib(s));
        println!("{name:<36} {o:>9.2} {f:>9.2} {x:>9.2} {s:>9.2} {:>9.2}x {:>9.2}x {:>9.2}x", s / o, s / f, x / f);
    }
}

/// Whether tapstack's plain TAP has the kernel's NAPI thread (TAPSTACK_BENCH_NAPI).
fn napi() -> bool {
    std::env::var("TAPSTACK_BENCH_NAPI").map_or(true, |v| v != "0")
}

/// tapstack alone (with or without offloads), for a profiler.
fn one_alone(offload: bool, mib: u32, runs: usize) {
    let lab = Lab::start("bench-tapo", LabConfig { offload, napi: napi(), ..LabConfig::default() }).expect("lab");
    let addr = lab.config.stack_addr.to_string();
    let mut r = Runs::default();
    for _ in 0..runs {
        r.run(lab.netns(), &addr, mib);
    }
    let mbit = |v: &Vec<f64>| mib as f64 * 8.0 * 1.048576 / median(v.clone());
    let ms_per_mib = |v: &Vec<f64>| median(v.clone()) * 1000.0 / mib as f64;
    let what = if offload { "with offloads" } else { "without offloads" };
    println!("\ntapstack {what} alone, {mib} MiB per run, median of {runs}");
    println!(
        "kernel client -> server (discard): {:>6.0} Mbit/s, {:.2} ms CPU/MiB",
        mbit(&r.send),
        ms_per_mib(&r.send_cpu)
    );
    println!(
        "server -> kernel client (chargen): {:>6.0} Mbit/s, {:.2} ms CPU/MiB",
        mbit(&r.recv),
        ms_per_mib(&r.recv_cpu)
    );
    println!("{}", lab.runtime().counters().report().lines().take(10).collect::<Vec<_>>().join("\n"));
}
