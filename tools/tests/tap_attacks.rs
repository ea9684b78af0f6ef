//! Attacks on `tapstack up` (issue 13), each short and bounded, each in a
//! network namespace of its own (deleted on failure too): a spoofed SYN flood,
//! a flood of tiny first fragments, an ARP flood, TIME-WAIT churn, and many
//! idle connections then closed. During and after each, ping must be answered
//! and new connections served; the RSS (VmRSS) of `tapstack up` is sampled
//! before, through and after the attack, and must come back within a generous
//! margin of its idle level ([`MARGIN_KIB`]: memory bounded and returned; the
//! audit's TIME-WAITs held 245 MB, and without `tapstack up` handing freed
//! pages back, 2,000 closed connections left 18 MB above idle). Once the
//! 2,000 connections are closed, the bytes it holds from its allocator must
//! come back within [`HELD_BACK`] of idle: every table sized for them gives
//! its storage back. Nothing here asserts a rate or a duration. Together they
//! take about 20-30 s.
//!
//! The floods are made here, on raw sockets opened inside the namespace (no
//! hping3 or scapy needed), bounded in packet count and paced. The long runs
//! (10,000 SYN/s, an established transfer during a flood) are the scripts in
//! tests/attack/; the figures are in BENCHMARKS.md.

mod common;

use common::Reaper;
use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapstack_tools::netns::{tap_tests_enabled, Netns};

const TAPSTACK: &str = env!("CARGO_BIN_EXE_tapstack");
const HOST: Ipv4Addr = Ipv4Addr::new(10, 84, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 84, 0, 2);
/// Bound on anything that should happen promptly, for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(20);
/// How far above its idle RSS `tapstack up` may stay once an attack is over,
/// and (four times it) how far above it may go during one.
const MARGIN_KIB: u64 = 16 * 1024;

/// `tapstack up` on a TAP in a namespace of its own. Fields drop in order:
/// the process goes before its namespace.
struct Target {
    up: Reaper,
    ns: Netns,
    control: PathBuf,
}

impl Target {
    /// Starts `tapstack up --serve echo,http,udp-echo` with `extra` arguments
    /// and waits (bounded) until it answers ping.
    fn start(prefix: &str, extra: &[&str]) -> Target {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let ns = Netns::create(prefix).expect("namespace");
        ns.add_tap("tap0", &format!("{HOST}/24")).expect("TAP");
        let control = std::env::temp_dir().join(format!(
            "tapstack-attack-{}-{}.sock",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let mut c = ns.command(TAPSTACK);
        c.args(["up", "--tap", "tap0", "--addr", &format!("{STACK}/24"), "--seed", "1"])
            .args(["--serve", "echo,http,udp-echo", "--control"])
            .arg(&control)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let up = Reaper(c.spawn().expect("spawn tapstack up"));
        let target = Target { up, ns, control };
        let end = Instant::now() + WAIT;
        while target.ping(1) == 0 {
            assert!(Instant::now() < end, "tapstack up did not answer ping within {WAIT:?}");
        }
        target.wait_for("its control socket answering", |t| held_bytes(&t.control) > 0);
        // `ip netns exec` runs the program in its own process: this is tapstack's RSS.
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", target.pid())).unwrap();
        assert_eq!(comm.trim(), "tapstack");
        target
    }

    fn pid(&self) -> u32 {
        self.up.0.id()
    }

    /// Its memory now.
    fn memory(&self) -> Memory {
        Memory { rss: self.rss_kib(), held: held_bytes(&self.control) }
    }

    /// VmRSS of `tapstack up`, in KiB.
    fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Sends `n` pings 0.2 s apart (each waited for up to 2 s); returns how many were answered.
    fn ping(&self, n: u32) -> u32 {
        let out = self
            .ns
            .command("ping")
            .args(["-q", "-c", &n.to_string(), "-i", "0.2", "-W", "2", &STACK.to_string()])
            .stdin(Stdio::null())
            .output()
            .expect("run ping (iputils-ping)");
        let text = String::from_utf8_lossy(&out.stdout);
        text.split(',').find_map(|part| part.trim().strip_suffix(" received")?.parse().ok()).unwrap_or(0)
    }

    /// Opens `n` connections to the echo service one after another, each
    /// echoing a line; returns how many did (each bounded by 5 s).
    fn echoes(&self, n: usize) -> usize {
        self.ns.run_inside(|| (0..n).filter(|_| echo_once().is_ok()).count()).unwrap()
    }

    /// Lines of `tapstack ss -ta` in `state` (ESTAB, TIME-WAIT, SYN-RECV...).
    fn sockets_in(&self, state: &str) -> usize {
        let out = Command::new(TAPSTACK).args(["ss", "-ta", "--control"]).arg(&self.control).output().unwrap();
        assert!(out.status.success(), "tapstack ss: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout.lines().map_while(Result::ok).filter(|l| l.starts_with(state)).count()
    }

    /// Waits (bounded) until `cond` holds.
    fn wait_for(&self, what: &str, mut cond: impl FnMut(&Target) -> bool) {
        let end = Instant::now() + WAIT;
        while !cond(self) {
            assert!(Instant::now() < end, "{what}: not within {WAIT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A raw socket opened inside the namespace (it stays in it, whatever
    /// thread then sends on it).
    fn raw_socket(&self, domain: i32, protocol: i32) -> OwnedFd {
        self.ns
            .run_inside(|| {
                // SAFETY: plain socket(2); the descriptor is owned at once.
                let fd = unsafe { libc::socket(domain, libc::SOCK_RAW, protocol) };
                assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
                unsafe { OwnedFd::from_raw_fd(fd) }
            })
            .unwrap()
    }

    /// The TAP's interface index, inside the namespace.
    fn tap_index(&self) -> i32 {
        self.ns
            .run_inside(|| {
                // SAFETY: a NUL-terminated name.
                unsafe { libc::if_nametoindex(c"tap0".as_ptr()) as i32 }
            })
            .unwrap()
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One connection to the echo service (from a thread inside the namespace):
/// a line sent and echoed.
fn echo_once() -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::from((STACK, 7)), Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"hello\n")?;
    let mut back = [0u8; 6];
    s.read_exact(&mut back)?;
    if &back == b"hello\n" {
        Ok(())
    } else {
        Err(std::io::Error::other("wrong echo"))
    }
}

/// Bytes `tapstack up` holds from its allocator (`tapstack stats`, read
/// straight from its control socket), or 0 if it cannot be read.
fn held_bytes(control: &std::path::Path) -> u64 {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(control) else { return 0 };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut out = String::new();
    if s.write_all(b"stats\n").is_err() || s.read_to_string(&mut out).is_err() {
        return 0;
    }
    let line = out.lines().find(|l| l.ends_with(" bytes held from the allocator"));
    line.and_then(|l| l.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

/// RSS sampled every 20 ms, and the bytes held every 200 ms, on a thread of
/// its own until dropped: their peaks.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    peak_held: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(t: &Target) -> Sampler {
        let (pid, control) = (t.pid(), t.control.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let (peak, peak_held) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, p, h) = (stop.clone(), peak.clone(), peak_held.clone());
        let thread = std::thread::spawn(move || {
            let mut round = 0u32;
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(pid), Ordering::Relaxed);
                if round % 10 == 0 {
                    h.fetch_max(held_bytes(&control), Ordering::Relaxed);
                }
                round += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Sampler { stop, peak, peak_held, thread: Some(thread) }
    }

    /// The peaks.
    fn peak(mut self) -> Memory {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        Memory { rss: self.peak.load(Ordering::Relaxed), held: self.peak_held.load(Ordering::Relaxed) }
    }
}

impl Drop for Sampler {
    /// An attack that panics still stops the thread (it would read /proc and
    /// the control socket until the test binary exits).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A small xorshift generator: the floods' addresses, ports and numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A unicast address off the subnet (no reply to it can be sent: no gateway).
    fn off_link(&mut self) -> Ipv4Addr {
        loop {
            let a = Ipv4Addr::from((self.next() as u32) | 0x0100_0000);
            if !a.is_multicast() && !a.is_broadcast() && !a.is_loopback() && a.octets()[..3] != [10, 84, 0] {
                if a.octets()[0] < 224 {
                    return a;
                }
            }
        }
    }
}

fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    let mut odd = None;
    for &b in parts.iter().flat_map(|p| p.iter()) {
        match odd.take() {
            None => odd = Some(b),
            Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(hi) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 header (the kernel fills in the checksum of a raw socket's packet).
fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: usize, id: u16, flags_offset: u16) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].copy_from_slice(&flags_offset.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    h
}

/// A SYN from a random off-link source and port, with a random sequence number.
fn spoofed_syn(rng: &mut Rng, port: u16) -> Vec<u8> {
    let src = rng.off_link();
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&(1024 + (rng.next() % 64000) as u16).to_be_bytes());
    tcp[2..4].copy_from_slice(&port.to_be_bytes());
    tcp[4..8].copy_from_slice(&(rng.next() as u32).to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02;
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&STACK.octets());
    pseudo[9] = 6;
    pseudo[11] = 20;
    let sum = checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    let mut p = ipv4_header(src, STACK, 6, 20, 0, 0).to_vec();
    p.extend_from_slice(&tcp);
    p
}

/// A first fragment of 8 bytes (more fragments to come, never sent), from a
/// random off-link source with a random identification (finding 7's attack).
fn tiny_first_fragment(rng: &mut Rng) -> Vec<u8> {
    let id = (rng.next() as u16) | 1;
    let mut p = ipv4_header(rng.off_link(), STACK, 17, 8, id, 0x2000).to_vec();
    // A UDP header to the echo port, claiming 1,000 bytes.
    p.extend_from_slice(&[0x30, 0x39, 0, 7, 0x03, 0xe8, 0, 0]);
    p
}

/// An ARP request or gratuitous reply, broadcast, from a random MAC and a
/// random address of the subnet (not the host's, not the stack's): each one
/// the stack may learn or answer.
fn arp_frame(rng: &mut Rng) -> Vec<u8> {
    let r = rng.next();
    let mac = [0x02, 0x66, (r >> 8) as u8, (r >> 16) as u8, (r >> 24) as u8, (r >> 32) as u8];
    let ip = [10, 84, 0, 3 + (r >> 40) as u8 % 250];
    let request = r >> 48 & 1 == 0;
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, if request { 1 } else { 2 }]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip);
    if request {
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&STACK.octets());
    } else {
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&ip);
    }
    f
}

/// Sends `count` packets made by `make` on `fd` to `to` (a `sockaddr_in` or
/// `sockaddr_ll`), `rate` a second in batches every 5 ms, on a thread of its
/// own; bounded by its count. Returns how many were sent.
fn flood<A: Copy + Send + 'static>(
    fd: OwnedFd,
    to: A,
    count: u64,
    rate: u64,
    mut make: impl FnMut(&mut Rng) -> Vec<u8> + Send + 'static,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let start = Instant::now();
        let mut sent = 0;
        while sent < count {
            let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(count);
            while sent < due {
                let p = make(&mut rng);
                // SAFETY: `p` and `to` outlive the call; the sizes are theirs.
                unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        p.as_ptr().cast(),
                        p.len(),
                        0,
                        (&to as *const A).cast(),
                        std::mem::size_of::<A>() as libc::socklen_t,
                    )
                };
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        sent
    })
}

fn sockaddr_in(ip: Ipv4Addr) -> libc::sockaddr_in {
    // SAFETY: all-zero is a valid sockaddr_in.
    let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    a.sin_family = libc::AF_INET as libc::sa_family_t;
    a.sin_addr.s_addr = u32::from(ip).to_be();
    a
}

/// One attack on `tapstack up --serve echo,http,udp-echo` in a namespace of
/// its own: what [`Attack::run`] starts, measures and reports.
struct Attack<'a> {
    /// The test's name (it is skipped, saying why, without privileges).
    test: &'a str,
    /// The namespace's prefix.
    ns: &'a str,
    /// What the report calls it.
    what: &'a str,
    /// `tapstack up`'s arguments beyond the usual ones.
    extra: &'a [&'a str],
    /// How far above idle the bytes held must come back (asserted), if checked.
    held_within: Option<u64>,
}

impl Attack<'_> {
    /// Starts the target, reads its idle level, runs `attack` while a
    /// [`Sampler`] takes the peaks, then [`report`]s.
    fn run(self, attack: impl FnOnce(&Target)) {
        if !tap_tests_enabled(self.test) {
            return;
        }
        let t = Target::start(self.ns, self.extra);
        let idle = t.memory();
        let sampler = Sampler::start(&t);
        attack(&t);
        report(&t, self.what, idle, sampler.peak(), self.held_within);
    }
}

/// The usual attack: no extra arguments, bytes held not asserted.
fn attack<'a>(test: &'a str, ns: &'a str, what: &'a str) -> Attack<'a> {
    Attack { test, ns, what, extra: &[], held_within: None }
}

/// What one attack did to memory, printed for BENCHMARKS.md: RSS before, its
/// peak, and after: the lowest seen while waiting (bounded: 5 s, or
/// TAPSTACK_ATTACK_SETTLE seconds) for it to come back within 1 MiB of idle
/// (`tapstack up` hands freed pages back once a second, tools/src/reclaim.rs).
/// What a flood leaves in bounded tables goes when their timers end: SYN-RECEIVED
/// entries after 63 s, incomplete datagrams after 30 s, ARP entries after 60 s;
/// `TAPSTACK_ATTACK_SETTLE=75` waits for that (the figures in BENCHMARKS.md).
/// With `held_within`, the bytes held must come back within that many of
/// idle (waited for up to [`WAIT`] at least).
fn report(t: &Target, what: &str, idle: Memory, peak: Memory, held_within: Option<u64>) {
    let settle = std::env::var("TAPSTACK_ATTACK_SETTLE").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let settle = Duration::from_secs(settle);
    let start = Instant::now();
    let (rss_end, held_end) = (start + settle, start + settle.max(held_within.map_or(Duration::ZERO, |_| WAIT)));
    let held_bound = held_within.unwrap_or(HELD_SLACK);
    let mut after = t.memory();
    let (mut settled, mut held_settled) = (Duration::ZERO, Duration::ZERO);
    loop {
        let rss_wait = after.rss > idle.rss + 1024 && Instant::now() < rss_end;
        let held_wait = after.held > idle.held + held_bound && Instant::now() < held_end;
        if !(rss_wait || held_wait) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        let now = t.rss_kib();
        if now < after.rss {
            (after.rss, settled) = (now, start.elapsed());
        }
        let now = held_bytes(&t.control);
        if now < after.held {
            (after.held, held_settled) = (now, start.elapsed());
        }
    }
    println!(
        "{what}: RSS idle {} KiB, peak {} KiB, after {} KiB ({} s after the attack); \
         bytes held idle {}, peak {}, after {} ({} s after)",
        idle.rss,
        peak.rss,
        after.rss,
        settled.as_secs(),
        idle.held,
        peak.held,
        after.held,
        held_settled.as_secs()
    );
    assert!(
        peak.rss <= idle.rss + 4 * MARGIN_KIB,
        "{what}: RSS {} KiB during the attack (idle {} KiB)",
        peak.rss,
        idle.rss
    );
    assert!(
        after.rss <= idle.rss + MARGIN_KIB,
        "{what}: RSS {} KiB after the attack (idle {} KiB)",
        after.rss,
        idle.rss
    );
    if let Some(within) = held_within {
        assert!(idle.held > 0 && after.held > 0, "{what}: bytes held not read from the control socket");
        assert!(
            after.held <= idle.held + within,
            "{what}: {} bytes held after the attack, idle {} (more than {within} above)",
            after.held,
            idle.held
        );
    }
}

/// `tapstack up`'s memory at one time: RSS in KiB, bytes held.
#[derive(Clone, Copy, Debug)]
struct Memory {
    rss: u64,
    held: u64,
}

/// How far above idle the bytes held may be and count as back.
const HELD_SLACK: u64 = 256 * 1024;
/// How far above idle the bytes held must come back once an attack's
/// connections are all closed (issue 13: memory returns to its idle level).
const HELD_BACK: u64 = 1024 * 1024;

/// During a flood: pings answered and new connections served.
fn still_serving(t: &Target, what: &str) {
    let pings = t.ping(3);
    assert!(pings >= 1, "{what}: no ping answered");
    let served = t.echoes(3);
    assert_eq!(served, 3, "{what}: new connections");
}

#[test]
fn spoofed_syn_flood_leaves_connections_served_and_memory_flat() {
    let test = "spoofed_syn_flood_leaves_connections_served_and_memory_flat";
    attack(test, "tst-atsyn", "SYN flood (12,000 spoofed SYNs)").run(|t| {
        let fd = t.raw_socket(libc::AF_INET, libc::IPPROTO_RAW);
        // 12,000 SYNs at 4,000/s to the echo port: more than the SYN queue
        // (backlog) holds, so most are answered with cookies.
        let syns = flood(fd, sockaddr_in(STACK), 12_000, 4_000, |rng| spoofed_syn(rng, 7));
        std::thread::sleep(Duration::from_millis(500));
        still_serving(t, "during a SYN flood");
        assert_eq!(syns.join().unwrap(), 12_000);
        still_serving(t, "after a SYN flood");
    });
}

#[test]
fn tiny_first_fragments_do_not_block_reassembly() {
    // Finding 7: 64 tiny first fragments made every fragmented datagram fail
    // for 30 s. Reassembly is now bounded by memory, the oldest evicted: a
    // fragmented datagram sent during a flood of them is still reassembled.
    let test = "tiny_first_fragments_do_not_block_reassembly";
    attack(test, "tst-atfrag", "fragment flood (12,000 tiny first fragments)").run(|t| {
        let fd = t.raw_socket(libc::AF_INET, libc::IPPROTO_RAW);
        let frags = flood(fd, sockaddr_in(STACK), 12_000, 4_000, tiny_first_fragment);
        std::thread::sleep(Duration::from_millis(500));
        // A 3,000-byte UDP datagram (fragmented by the kernel) to udp-echo, and its
        // echo (fragmented by the stack) back.
        let echoed = |round: u8| {
            t.ns.run_inside(|| {
                let s = UdpSocket::bind((HOST, 0)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let data: Vec<u8> = (0..3000u32).map(|i| (i as u8).wrapping_mul(7).wrapping_add(round)).collect();
                let mut buf = vec![0u8; 4000];
                (0..3).any(|_| {
                    s.send_to(&data, (STACK, 7)).unwrap();
                    matches!(s.recv(&mut buf), Ok(n) if buf[..n] == data[..])
                })
            })
            .unwrap()
        };
        assert!(echoed(1), "a fragmented datagram during the flood was not reassembled (or not echoed)");
        still_serving(t, "during a fragment flood");
        assert_eq!(frags.join().unwrap(), 12_000);
        assert!(echoed(2), "a fragmented datagram after the flood was not reassembled (or not echoed)");
        still_serving(t, "after a fragment flood");
    });
}

#[test]
fn arp_flood_leaves_memory_flat_and_ping_answered() {
    let test = "arp_flood_leaves_memory_flat_and_ping_answered";
    attack(test, "tst-atarp", "ARP flood (12,000 requests and gratuitous replies)").run(|t| {
        let fd = t.raw_socket(libc::AF_PACKET, i32::from((libc::ETH_P_ARP as u16).to_be()));
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
        to.sll_ifindex = t.tap_index();
        to.sll_halen = 6;
        to.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        let arps = flood(fd, to, 12_000, 4_000, arp_frame);
        std::thread::sleep(Duration::from_millis(500));
        still_serving(t, "during an ARP flood");
        assert_eq!(arps.join().unwrap(), 12_000);
        still_serving(t, "after an ARP flood");
    });
}

/// One HTTP/1.0 request (tapstack answers and closes first: a TIME-WAIT on its side).
fn http_get() -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::from((STACK, 80)), Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    if answer.starts_with(b"HTTP/1.0 200") {
        Ok(())
    } else {
        Err(std::io::Error::other("not a 200"))
    }
}

#[test]
fn time_wait_churn_gives_its_memory_back_once_they_expire() {
    // Finding 3: HTTP/1.0 with tapstack closing first filled the connection
    // table with TIME-WAITs, each holding its receive buffer, and the memory
    // stayed after they expired. With a short TIME-WAIT (2 * 500 ms), a
    // thousand requests, then every TIME-WAIT gone: memory back near idle.
    let test = "time_wait_churn_gives_its_memory_back_once_they_expire";
    let what = "TIME-WAIT churn (1,000 HTTP/1.0 requests, TIME-WAIT 1 s)";
    Attack { extra: &["--msl-ms", "500"], ..attack(test, "tst-attw", what) }.run(|t| {
        let (ok, most) =
            t.ns.run_inside(|| {
                let mut ok = 0;
                let mut most = 0;
                for i in 0..1000 {
                    ok += http_get().is_ok() as usize;
                    if i % 100 == 99 {
                        most = most.max(t.sockets_in("TIME-WAIT"));
                    }
                }
                (ok, most)
            })
            .unwrap();
        assert_eq!(ok, 1000, "HTTP/1.0 requests answered");
        assert!(most > 0, "the churn made TIME-WAITs");
        still_serving(t, "after TIME-WAIT churn");
        t.wait_for("every TIME-WAIT expired", |t| t.sockets_in("TIME-WAIT") == 0);
        println!("TIME-WAITs at once: up to {most}");
    });
}

#[test]
fn many_idle_connections_then_closed_give_their_memory_back() {
    const N: usize = 2000;
    let test = "many_idle_connections_then_closed_give_their_memory_back";
    let what = format!("{N} idle echo connections, then closed");
    // Every table sized for N descriptors gives its storage back once they
    // close: the bytes held come back within [`HELD_BACK`] of idle.
    Attack { held_within: Some(HELD_BACK), ..attack(test, "tst-atidle", &what) }.run(|t| {
        raise_fd_limit(N as u64 + 256);
        // N connections to echo, each echoing a line (so each receive buffer was
        // used), held open and idle; then all closed by the client.
        let held: Vec<TcpStream> =
            t.ns.run_inside(|| {
                (0..N)
                    .map(|_| {
                        let mut s = TcpStream::connect_timeout(&SocketAddr::from((STACK, 7)), Duration::from_secs(5))
                            .expect("connect to echo");
                        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        s.write_all(b"hello\n").unwrap();
                        let mut back = [0u8; 6];
                        s.read_exact(&mut back).unwrap();
                        s
                    })
                    .collect()
            })
            .unwrap();
        t.wait_for("every connection established on the stack's side", |t| t.sockets_in("ESTAB") >= N);
        let holding = t.rss_kib();
        still_serving(t, "holding idle connections");
        drop(held);
        t.wait_for("every connection closed", |t| t.sockets_in("ESTAB") + t.sockets_in("LAST-ACK") == 0);
        still_serving(t, "after closing them");
        println!("{N} idle connections held: RSS {holding} KiB");
    });
}

/// This process holds many sockets at once: its descriptor limit raised to its hard limit.
fn raise_fd_limit(want: u64) {
    // SAFETY: getrlimit/setrlimit on a valid struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        if r.rlim_cur < want {
            r.rlim_cur = r.rlim_max.min(want.max(r.rlim_cur));
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}
