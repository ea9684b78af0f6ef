//! Goodput through loss over a real TAP (issue 12's second benchmark): the
//! Linux kernel against tapstack on a TAP, and Linux against Linux over a veth
//! pair as the baseline, with the same nftables rules dropping a fraction of
//! the frames each way on the client namespace's interface (this kernel has no
//! netem). Three measurements each: 20 MiB the stack sends (chargen, the
//! kernel receives), 20 MiB the stack receives (discard), and a 4 MiB echo.
//! A benchmark, not a test: it prints a table and asserts nothing about speed.
//!
//! Run (as root): cargo bench -p tapstack-tests --bench tap_loss
//! Loss per direction: TAPSTACK_LOSS_PCT (default 1); MiB: TAPSTACK_BENCH_MIB
//! (default 20); runs per cell: TAPSTACK_BENCH_RUNS (default 3, the median shown).
//! TAPSTACK_LOSS_PCAP=file records tapstack's frames (to see what the time
//! goes to); tapstack's loss-recovery counters are printed after its runs.
//! TAPSTACK_LOSS_VETH_GSO=0 sends one segment per packet on the veth pair
//! (gso_max_segs 1): Linux's GSO packets of up to 64 KiB otherwise cross the
//! nftables rules whole, so the same percentage drops far fewer segments.
//! TAPSTACK_LOSS_OFFLOAD=1 runs tapstack with the TAP's offloads (`tapstack up
//! --offload`: GSO segments both ways), whose GSO packets cross the rules
//! whole just as Linux's do on the veth pair. TAPSTACK_LOSS_AUTOTUNE=0 keeps
//! tapstack's buffers at a fixed 64 KiB (`LabConfig::buffer_autotune` off, as
//! before they grew with the transfer).

use std::io::Write;
use std::process::{Command, Stdio};
use tapstack_tools::lab::{Lab, LabConfig};
use tapstack_tools::netns::Netns;

const CLIENT: &str = r#"
import socket, sys, time, os, threading
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
elif mode == "recv":
    s = socket.create_connection((addr, 19), timeout=60)
    got, t = 0, time.perf_counter()
    while got < total:
        b = s.recv(1 << 20)
        if not b: raise SystemExit("closed early")
        got += len(b)
else:
    data = os.urandom(total)
    s = socket.create_connection((addr, 7), timeout=60)
    t = time.perf_counter()
    def writer():
        s.sendall(data); s.shutdown(socket.SHUT_WR)
    w = threading.Thread(target=writer); w.start()
    got = bytearray()
    while True:
        b = s.recv(65536)
        if not b: break
        got += b
    w.join()
    assert bytes(got) == data
print(time.perf_counter() - t)
"#;

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
def echo(c):
    while True:
        b = c.recv(65536)
        if not b: break
        c.sendall(b)
    c.close()
threading.Thread(target=serve, args=(9, discard), daemon=True).start()
threading.Thread(target=serve, args=(7, echo), daemon=True).start()
serve(19, source)
"#;

fn loss_rules(dev: &str, pct: u32) -> String {
    format!(
        "table inet loss {{\n chain in {{ type filter hook input priority 0; iifname \"{dev}\" numgen random mod 100 < {pct} drop; }}\n chain out {{ type filter hook output priority 0; oifname \"{dev}\" numgen random mod 100 < {pct} drop; }}\n}}\n"
    )
}

fn nft(ns: &Netns, rules: &str) {
    let mut c = ns.command("nft").args(["-f", "-"]).stdin(Stdio::piped()).spawn().expect("nft");
    c.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success(), "nft rules");
}

fn run(ns: &Netns, mode: &str, addr: &str, mib: u32) -> f64 {
    let out = ns
        .command("timeout")
        .args(["300", "python3", "-c", CLIENT, mode, addr, &mib.to_string()])
        .output()
        .expect("python3");
    assert!(out.status.success(), "client failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("seconds")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// (stack sends, stack receives, echo) seconds, medians.
fn measure(ns: &Netns, addr: &str, mib: u32, runs: usize) -> (f64, f64, f64) {
    let r: Vec<(f64, f64, f64)> =
        (0..runs).map(|_| (run(ns, "recv", addr, mib), run(ns, "send", addr, mib), run(ns, "echo", addr, 4))).collect();
    (
        median(r.iter().map(|x| x.0).collect()),
        median(r.iter().map(|x| x.1).collect()),
        median(r.iter().map(|x| x.2).collect()),
    )
}

fn main() {
    if !tapstack_tools::netns::is_root() {
        eprintln!("tap_loss: needs root (network namespaces, TAP, nftables); skipped");
        return;
    }
    let env = |k: &str, d: u32| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (pct, mib, runs) =
        (env("TAPSTACK_LOSS_PCT", 1), env("TAPSTACK_BENCH_MIB", 20), env("TAPSTACK_BENCH_RUNS", 3) as usize);

    let pcap = std::env::var_os("TAPSTACK_LOSS_PCAP").map(std::path::PathBuf::from);
    let offload = env("TAPSTACK_LOSS_OFFLOAD", 0) == 1;
    let buffer_autotune = env("TAPSTACK_LOSS_AUTOTUNE", 1) == 1;
    let config = LabConfig { pcap, offload, buffer_autotune, ..LabConfig::default() };
    let mut lab = Lab::start("bench-loss", config).expect("lab");
    nft(lab.netns(), &loss_rules("tap0", pct));
    let ours = measure(lab.netns(), &lab.config.stack_addr.to_string(), mib, runs);
    let t = lab.stop().expect("stack stopped").tcp;
    println!(
        "tapstack: {} segments out, {} retransmitted, {} timeouts ({} spurious), {} SACK recoveries, \
         {} tail loss probes ({} repaired a loss alone), {} lost retransmissions found by RACK, \
         {} RACK reordering timeouts",
        t.tx_segments,
        t.retransmitted,
        t.timeouts,
        t.spurious_rtos,
        t.sack_recoveries,
        t.tail_loss_probes,
        t.tlp_repairs,
        t.lost_retransmits,
        t.rack_timeouts
    );
    drop(lab);

    let client = Netns::create("bench-lossv-c").expect("netns");
    let server = Netns::create("bench-lossv-s").expect("netns");
    let ok = |c: &mut Command| assert!(c.status().unwrap().success());
    ok(client.command("ip").args(["link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", server.name()]));
    ok(client.command("ip").args(["addr", "add", "10.79.1.1/24", "dev", "v0"]));
    ok(client.command("ip").args(["link", "set", "v0", "up"]));
    ok(server.command("ip").args(["addr", "add", "10.79.1.2/24", "dev", "v1"]));
    ok(server.command("ip").args(["link", "set", "v1", "up"]));
    if env("TAPSTACK_LOSS_VETH_GSO", 1) == 0 {
        // One MSS per packet on the veth, as on the TAP: nftables then drops
        // segments, not 64 KiB GSO packets (one drop there is up to 44 segments).
        ok(client.command("ip").args(["link", "set", "v0", "gso_max_segs", "1"]));
        ok(server.command("ip").args(["link", "set", "v1", "gso_max_segs", "1"]));
    }
    let mut srv = server.command("python3").args(["-c", SERVER]).spawn().expect("python3 server");
    for _ in 0..100 {
        let probe = client
            .command("python3")
            .args(["-c", "import socket; socket.create_connection(('10.79.1.2', 9), timeout=1).close()"])
            .stderr(Stdio::null())
            .status();
        if probe.map(|s| s.success()).unwrap_or(false) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    nft(&client, &loss_rules("v0", pct));
    let linux = measure(&client, "10.79.1.2", mib, runs);
    let _ = srv.kill();
    let _ = srv.wait();

    let mbit = |secs: f64| mib as f64 * 8.0 * 1.048576 / secs;
    println!("\n{pct}% loss each way (nftables), {mib} MiB per run, median of {runs} (ratio = tapstack / Linux)");
    println!("{:<36} {:>14} {:>14} {:>8}", "", "tapstack/TAP", "Linux/veth", "ratio");
    println!(
        "{:<36} {:>9.0} Mb/s {:>9.0} Mb/s {:>8.3}",
        "stack sends, kernel receives",
        mbit(ours.0),
        mbit(linux.0),
        linux.0 / ours.0
    );
    println!(
        "{:<36} {:>9.0} Mb/s {:>9.0} Mb/s {:>8.3}",
        "stack receives, kernel sends",
        mbit(ours.1),
        mbit(linux.1),
        linux.1 / ours.1
    );
    println!(
        "{:<36} {:>11.2} s {:>11.2} s {:>8.3}",
        "4 MiB echo (time; ratio = Linux/ours)",
        ours.2,
        linux.2,
        linux.2 / ours.2
    );
}
