//! Connections, not bytes: tapstack's echo service against an epoll echo
//! server on Linux's own TCP, the same kernel client for both, rounds
//! interleaved; then the memory an idle connection costs tapstack. A
//! benchmark, not a test: it prints tables with ratios and asserts nothing
//! about speed.
//!
//! - connection rate: sequential connect / echo 8 bytes / close, for
//!   `TAPSTACK_BENCH_RATE_SECS` seconds (default 3) or 30,000 connections;
//! - concurrency: 1,000 and 10,000 connections (`TAPSTACK_BENCH_CONC`), at
//!   most 1,000 handshakes in flight, each echoing 8 bytes and then held open
//!   until all are served: the time until the last is served;
//! - memory (`TAPSTACK_BENCH_MEM`, default 10,000 and 100,000): RSS of a fresh
//!   `tapstack up --serve echo` process before and with N connections held
//!   idle (each having echoed 8 bytes once), split into the TCP buffers, the
//!   TCP table (TCBs, maps) and the rest.
//!
//! tapstack: `tapstack up`'s code in a process of its own (`conn_servers.rs`)
//! on a TAP in a namespace of ours, the kernel client on the TAP's host end.
//! Linux: the epoll echo server in one namespace, the client in another, over
//! a veth pair. Each client namespace: ip_local_port_range 1024-65535,
//! tcp_tw_reuse 1 (each round leaves the client's TIME-WAITs), and 4 more
//! source addresses (64k ports each) for the 100,000. RLIMIT_NOFILE is
//! raised (as root, with CAP_SYS_RESOURCE) for this process and the servers
//! it starts; without that right the memory part's client spreads its
//! connections over processes of at most the hard limit each (tapstack numbers
//! its sockets past the kernel's limit itself). Every wait is bounded; namespaces and processes go when the
//! benchmark ends, on failure or SIGINT/SIGTERM too.
//!
//! Run (as root): cargo bench -p tapstack-tests --bench connections
//! Rounds: TAPSTACK_BENCH_RUNS (default 5); parts: TAPSTACK_BENCH_PARTS
//! (default `rate,concurrency,memory`).

mod conn_client;
mod conn_servers;

use conn_client::Outcome;
use conn_servers::Server;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;
use tapstack_tests::veth::VethPair;
use tapstack_tools::netns::Netns;

/// Handshakes in flight at once in the concurrency and memory runs.
const IN_FLIGHT: usize = 1000;
/// Most connections in a rate round.
const RATE_MAX: usize = 30_000;
/// Extra source addresses per client namespace (the 4th byte of each).
const SOURCES: [u8; 4] = [11, 12, 13, 14];
/// The descriptors this process and its servers may open (RLIMIT_NOFILE):
/// `tapstack up`'s default --max-fds and a margin, within fs.nr_open.
const NOFILE: u64 = 262_144 + 1024;

/// What to run, from the environment.
struct Settings {
    runs: usize,
    rate_secs: u64,
    concurrency: Vec<usize>,
    memory: Vec<usize>,
    parts: String,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
        let list = |k: &str, d: &str| var(k, d).split(',').filter_map(|v| v.trim().parse().ok()).collect();
        Settings {
            runs: var("TAPSTACK_BENCH_RUNS", "5").parse().expect("TAPSTACK_BENCH_RUNS"),
            rate_secs: var("TAPSTACK_BENCH_RATE_SECS", "3").parse().expect("TAPSTACK_BENCH_RATE_SECS"),
            concurrency: list("TAPSTACK_BENCH_CONC", "1000,10000"),
            memory: list("TAPSTACK_BENCH_MEM", "10000,100000"),
            parts: var("TAPSTACK_BENCH_PARTS", "rate,concurrency,memory"),
        }
    }
}

/// One server and the namespace its client runs in. Field order is drop
/// order: the server process, then the namespaces.
struct Side {
    server: Server,
    client: Netns,
    /// The Linux side's server namespace (the tapstack side has one namespace).
    _other: Option<Netns>,
    addr: SocketAddrV4,
    sources: Vec<Ipv4Addr>,
}

/// The client namespace's settings: the whole port range, TIME-WAIT ports
/// reused for new connections (as many rounds of many connections need), and
/// extra source addresses on `dev` in `net` (10.N.0.x).
fn client_setup(ns: &Netns, dev: &str, net: u8) -> Vec<Ipv4Addr> {
    ns.exec_checked(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"]).expect("port range");
    ns.exec_checked(&["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]).expect("tw_reuse");
    let sources: Vec<Ipv4Addr> = SOURCES.iter().map(|&b| Ipv4Addr::new(10, net, 0, b)).collect();
    for s in &sources {
        ns.exec_checked(&["ip", "addr", "add", &format!("{s}/24"), "dev", dev]).expect("source address");
    }
    sources
}

impl Side {
    /// `tapstack up --serve echo` (its code, in a process of its own) on a TAP
    /// in a fresh namespace, at 10.83.0.2; the kernel client at 10.83.0.1.
    fn tapstack(prefix: &str) -> Side {
        let ns = Netns::create(prefix).expect("namespace");
        ns.add_tap("tap0", "10.83.0.1/24").expect("TAP");
        let sources = client_setup(&ns, "tap0", 83);
        let args = ["--tap", "tap0", "--addr", "10.83.0.2/24", "--seed", "11"];
        let server = Server::spawn(&ns, "tapstack", "tapstack-up", &args);
        let mut side = Side { server, client: ns, _other: None, addr: "10.83.0.2:7".parse().unwrap(), sources };
        side.wait_serving();
        side
    }

    /// The epoll echo server on Linux at 10.84.0.2, the client at 10.84.0.1, over veth.
    fn linux(prefix: &str) -> Side {
        let pair = VethPair::create(prefix, "10.84.0.1/24", "10.84.0.2/24").expect("veth pair");
        let sources = client_setup(&pair.client, "v0", 84);
        let server = Server::spawn(&pair.server, "Linux epoll", "epoll-echo", &["10.84.0.2:7"]);
        let addr = "10.84.0.2:7".parse().unwrap();
        let mut side = Side { server, client: pair.client, _other: Some(pair.server), addr, sources };
        side.wait_serving();
        side
    }

    /// Waits (bounded) until one connection is served, then serves one from
    /// each source address, untimed: the server has resolved them all (ARP)
    /// before a round starts. A burst of SYNs from an address the server has
    /// not resolved yet loses SYN,ACKs beyond what its ARP queue holds per
    /// address (tapstack: 16; Linux: unres_qlen_bytes, about 100), and the
    /// client retransmits its SYN after a second.
    fn wait_serving(&mut self) {
        let end = std::time::Instant::now() + Duration::from_secs(15);
        let addr = self.addr;
        while !matches!(self.client.run_inside(|| conn_client::rate(addr, 1, Duration::from_secs(1))), Ok(Ok(_))) {
            assert!(std::time::Instant::now() < end, "{} never served echo", self.server.name);
            std::thread::sleep(Duration::from_millis(100));
        }
        self.warm();
    }

    /// One connection from each source address, untimed (see [`Side::wait_serving`];
    /// before each round too, as tapstack's ARP entries expire after 60 s unused).
    fn warm(&mut self) {
        let warm = self.hold(self.sources.len(), Duration::from_secs(10));
        assert_eq!(warm.served, self.sources.len(), "{}: {warm:?}", self.server.name);
    }

    /// One rate round: connections per second.
    fn rate(&mut self, secs: u64) -> f64 {
        let addr = self.addr;
        let run = self.client.run_inside(|| conn_client::rate(addr, RATE_MAX, Duration::from_secs(secs)));
        let (n, took) = run.expect("client thread").unwrap_or_else(|e| panic!("{}: {e}", self.server.name));
        self.settle();
        n as f64 / took.as_secs_f64()
    }

    /// One concurrency round of `n`, the connections closed afterwards.
    fn hold(&mut self, n: usize, within: Duration) -> Outcome {
        let (addr, sources) = (self.addr, self.sources.clone());
        let run = self.client.run_inside(|| conn_client::hold(addr, &sources, n, IN_FLIGHT, within));
        let (held, outcome) = run.expect("client thread");
        drop(held);
        self.settle();
        outcome
    }

    /// Waits (bounded) until the server has let every connection go.
    fn settle(&mut self) {
        if !self.server.wait_count(0, Duration::from_secs(60)) {
            let left = self.server.count();
            eprintln!("note: {} still has {left} connections after 60 s", self.server.name);
        }
    }
}

/// Raises RLIMIT_NOFILE (soft and hard) to [`NOFILE`] within fs.nr_open;
/// without the right to (CAP_SYS_RESOURCE), the soft limit to the hard one.
/// The limit set: this process's and its servers' (each tapstack socket holds
/// a kernel descriptor, so it bounds the connections `tapstack up` can hold).
fn raise_nofile() -> u64 {
    let read = |p: &str| std::fs::read_to_string(p).ok().and_then(|s| s.split_whitespace().next()?.parse().ok());
    let nr_open: u64 = read("/proc/sys/fs/nr_open").unwrap_or(1 << 20);
    let file_max: u64 = read("/proc/sys/fs/file-max").unwrap_or(0);
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit with a valid struct (raising the hard
    // limit needs CAP_SYS_RESOURCE).
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        let hard = r.rlim_max;
        let want = NOFILE.min(nr_open);
        r = libc::rlimit { rlim_cur: want, rlim_max: want };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
            let e = std::io::Error::last_os_error();
            println!("RLIMIT_NOFILE: cannot raise the hard limit {hard} to {want} ({e}); soft limit raised to {hard}");
            r = libc::rlimit { rlim_cur: hard, rlim_max: hard };
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
    println!("RLIMIT_NOFILE {} (fs.nr_open {nr_open}, fs.file-max {file_max})", r.rlim_max);
    r.rlim_max
}

/// SIGINT or SIGTERM (`timeout`, Ctrl-C) would end this process without its
/// destructors: delete the namespaces it made (their names hold its pid), then
/// exit. The servers exit by themselves when their standard input closes.
fn delete_namespaces_on_signal() {
    tapstack_tools::signals::block();
    std::thread::spawn(|| {
        let sig = tapstack_tools::signals::wait();
        let ours = format!("-{}-", std::process::id());
        let list = std::process::Command::new("ip").args(["netns", "list"]).output();
        let list = list.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        for name in list.lines().filter_map(|l| l.split_whitespace().next()).filter(|n| n.contains(&ours)) {
            let _ = std::process::Command::new("ip").args(["netns", "delete", name]).status();
        }
        eprintln!("connections: stopped by signal {sig}; namespaces deleted");
        std::process::exit(1);
    });
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Per size: seconds until all were served, and the worst outcome seen.
#[derive(Default)]
struct Held {
    secs: Vec<f64>,
    served_min: usize,
    failed_max: usize,
    first_error: Option<String>,
}

impl Held {
    fn add(&mut self, o: Outcome) {
        self.served_min = if self.secs.is_empty() { o.served } else { self.served_min.min(o.served) };
        self.failed_max = self.failed_max.max(o.failed);
        self.first_error = self.first_error.take().or(o.first_error);
        self.secs.push(o.took.as_secs_f64());
    }
}

/// Rate and concurrency, both servers, rounds interleaved.
fn race(s: &Settings) {
    let mut sides = [Side::tapstack("bench-conn-tap"), Side::linux("bench-conn-veth")];
    let mut rates: [Vec<f64>; 2] = Default::default();
    let mut held: Vec<[Held; 2]> = s.concurrency.iter().map(|_| Default::default()).collect();
    for round in 0..s.runs {
        for (k, side) in sides.iter_mut().enumerate() {
            if s.parts.contains("rate") {
                rates[k].push(side.rate(s.rate_secs));
            }
            if s.parts.contains("concurrency") {
                side.warm();
                for (i, &n) in s.concurrency.iter().enumerate() {
                    held[i][k].add(side.hold(n, Duration::from_secs(120)));
                }
            }
        }
        eprintln!("round {} of {} done", round + 1, s.runs);
    }
    drop(sides);
    if s.parts.contains("rate") {
        println!("\nconnection rate: sequential connect / echo 8 bytes / close, {} s or {RATE_MAX} connections per round, median of {} interleaved rounds", s.rate_secs, s.runs);
        println!("{:<28} {:>12} {:>12} {:>9}", "server", "tapstack/s", "Linux/s", "ratio");
        let (t, l) = (median(rates[0].clone()), median(rates[1].clone()));
        println!("{:<28} {t:>12.0} {l:>12.0} {:>8.2}x", "echo (TAP vs veth)", t / l);
        println!("  each round (tapstack, Linux): {:.0?} {:.0?}", rates[0], rates[1]);
    }
    if s.parts.contains("concurrency") {
        print_concurrency(s, &held);
    }
}

fn print_concurrency(s: &Settings, held: &[[Held; 2]]) {
    println!("\nconcurrency: N connections, at most {IN_FLIGHT} handshakes in flight, each echoing 8 bytes, all held open; seconds until the last was served, median of {}", s.runs);
    println!(
        "{:>8} {:>12} {:>12} {:>14} {:>16} {:>16}",
        "N", "tapstack s", "Linux s", "time ratio", "tapstack served", "Linux served"
    );
    for (n, [t, l]) in s.concurrency.iter().zip(held) {
        let (ts, ls) = (median(t.secs.clone()), median(l.secs.clone()));
        println!(
            "{n:>8} {ts:>12.3} {ls:>12.3} {:>13.2}x {:>16} {:>16}",
            ts / ls,
            format!("{}/{n}", t.served_min),
            format!("{}/{n}", l.served_min)
        );
        for (name, h) in [("tapstack", t), ("Linux", l)] {
            println!("  {name} rounds: {:.3?}", h.secs);
            if let Some(e) = &h.first_error {
                println!("  {name}: up to {} failed; first error: {e}", h.failed_max);
            }
        }
    }
}

/// "RSS_KIB HEAP BUFFERS CONNS" from the tapstack server's `mem`.
fn mem(server: &mut Server) -> [u64; 4] {
    let a = server.ask("mem");
    let v: Vec<u64> = a.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    v.try_into().unwrap_or_else(|_| panic!("mem answered {a}"))
}

/// This binary again, as a client process in `ns`: holds `n` connections to
/// `addr` (see [`hold_client`]); the connections stay open until it is dropped.
fn spawn_client(ns: &Netns, addr: SocketAddrV4, sources: &[Ipv4Addr], n: usize) -> Server {
    let list: Vec<String> = sources.iter().map(Ipv4Addr::to_string).collect();
    Server::spawn(ns, "client", "hold-client", &[&addr.to_string(), &list.join(","), &n.to_string()])
}

/// A client process (`hold-client ADDR SOURCES N`): "ready", then holds N
/// connections ([`conn_client::hold`]), prints "held SERVED FAILED ERROR" and
/// keeps them open until its standard input closes.
fn hold_client(args: &[String]) -> ! {
    let addr: SocketAddrV4 = args[0].parse().expect("an address");
    let sources: Vec<Ipv4Addr> = args[1].split(',').filter_map(|s| s.parse().ok()).collect();
    let n: usize = args[2].parse().expect("a count");
    raise_nofile_quietly();
    println!("ready");
    let (held, o) = conn_client::hold(addr, &sources, n, IN_FLIGHT, Duration::from_secs(240));
    println!("held {} {} {:?}", o.served, o.failed, o.first_error);
    let _ = std::io::stdin().read_line(&mut String::new());
    drop(held);
    std::process::exit(0)
}

/// The soft RLIMIT_NOFILE raised to the hard one (a client process's).
fn raise_nofile_quietly() {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
}

/// Holds `n` connections from as many client processes as RLIMIT_NOFILE
/// (`nofile`, each process's) needs, one after the other; the clients, which
/// keep them open until dropped, and what they achieved.
fn hold_from_clients(side: &Side, n: usize, nofile: u64) -> (Vec<Server>, Outcome) {
    let per = (nofile.saturating_sub(1000) / 1000 * 1000).max(1000) as usize;
    let start = std::time::Instant::now();
    let mut total = Outcome { served: 0, failed: 0, first_error: None, took: Duration::ZERO };
    let mut clients = Vec::new();
    for k in (0..n).step_by(per) {
        let m = per.min(n - k);
        let mut c = spawn_client(&side.client, side.addr, &side.sources, m);
        let line = c.line(Duration::from_secs(300)).unwrap_or_default();
        let mut w = line.splitn(4, ' ').skip(1);
        let served: usize = w.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        let failed: usize = w.next().and_then(|v| v.parse().ok()).unwrap_or(m - served);
        total.served += served;
        total.failed += failed;
        if failed > 0 && total.first_error.is_none() {
            total.first_error = Some(line.clone());
        }
        clients.push(c);
    }
    total.took = start.elapsed();
    (clients, total)
}

/// RSS per idle connection held on a fresh tapstack, for each N; the client
/// spread over processes of at most RLIMIT_NOFILE connections each (tapstack
/// numbers its sockets beyond the kernel's limit, so it holds them all).
fn memory(s: &Settings, nofile: u64) {
    let mut rows = Vec::new();
    for &n in &s.memory {
        // Warmed up: ARP for every source address, the first allocations.
        let mut side = Side::tapstack("bench-conn-mem");
        let before = mem(&mut side.server);
        let (clients, outcome) = hold_from_clients(&side, n, nofile);
        let held = outcome.served;
        if !side.server.wait_count(held, Duration::from_secs(30)) {
            eprintln!("note: tapstack holds {} connections, the clients {held}", side.server.count());
        }
        std::thread::sleep(Duration::from_secs(1));
        let at = mem(&mut side.server);
        eprintln!("memory, {n}: {outcome:?} from {} client processes", clients.len());
        drop(clients);
        rows.push((n, outcome, before, at));
    }
    println!("\nmemory: a fresh `tapstack up --serve echo`, N connections each echoing 8 bytes once, then held idle");
    println!(
        "{:>8} {:>9} {:>12} {:>12} {:>12} {:>10} {:>10} {:>10}",
        "N", "held", "RSS before", "RSS held", "per conn", "buffers", "TCP table", "rest"
    );
    for (n, o, b, a) in rows {
        let held = a[3].saturating_sub(b[3]).max(1) as f64;
        let per = (a[0].saturating_sub(b[0])) as f64 * 1024.0 / held;
        let buffers = a[2].saturating_sub(b[2]) as f64 / held;
        let table = (a[1].saturating_sub(b[1])) as f64 / held - buffers;
        println!(
            "{n:>8} {:>9} {:>9} KiB {:>9} KiB {:>10.0} B {:>8.0} B {:>8.0} B {:>8.0} B",
            o.served,
            b[0],
            a[0],
            per,
            buffers,
            table,
            per - buffers - table
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("tapstack-up") => conn_servers::tapstack_up(&args[2..]),
        Some("epoll-echo") => conn_servers::epoll_echo(&args[2]),
        Some("hold-client") => hold_client(&args[2..]),
        _ => {}
    }
    if !tapstack_tools::netns::is_root() {
        eprintln!("connections: needs root (network namespaces, TAP, RLIMIT_NOFILE); skipped");
        return;
    }
    let s = Settings::from_env();
    let nofile = raise_nofile();
    delete_namespaces_on_signal();
    if s.parts.contains("rate") || s.parts.contains("concurrency") {
        race(&s);
    }
    if s.parts.contains("memory") {
        memory(&s, nofile);
    }
}
