//! In memory, one core: bulk TCP from one stack to another in the same thread,
//! no device, no system calls. tapstack: two stacks with descriptor tables,
//! frames carried between them in reused `FrameBatch`es (what the runtime
//! uses), 64 KiB socket buffers. smoltcp 0.14: its `examples/loopback_benchmark.rs`
//! logic (one Interface on a `Loopback` device, a client and a server socket
//! with 64 KiB buffers; the Loopback device's MTU is 65535, while tapstack's
//! configuration allows at most 9000, so it runs at 1500 and at 9000). Both move 1 GiB; rounds interleaved;
//! prints Gbit/s and the ratio. A benchmark, not a test.
//!
//! A third tapstack contender runs over a link with offload semantics, as
//! smoltcp's Loopback and Linux's loopback are: both stacks configured with
//! `Offloads::TAP`, the sender writes TCP segments of up to 64 KiB with their
//! checksum left partial, and the link hands each over whole to the other
//! stack as one whose checksum need not be verified (`TxOffload::as_received`,
//! what Linux's veth and loopback do with a CHECKSUM_PARTIAL segment).
//!
//! Run: cargo bench -p tapstack-tests --bench mem_throughput
//! Size: TAPSTACK_MEM_MIB (default 1024); rounds: TAPSTACK_BENCH_RUNS (default 3);
//! one contender alone (to profile it): TAPSTACK_MEM_ONLY=1500|9000|tso|tso-inplace|smoltcp.
//!
//! The fourth tapstack contender (`tso-inplace`) is the offload link with the
//! stack's calls without a copy (`Tcp::send_with`, `Tcp::recv_with`), like for
//! like with smoltcp's benchmark, whose `send`/`recv` closures touch no bytes;
//! the others use the BSD calls, which copy the application's buffers.

use smoltcp::iface::{Config as SConfig, Interface, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};
use sockets_api::sim::{Host, A_IP, B_IP};
use sockets_api::*;
use stack::driver::FrameBatch;
use stack::offload::Offloads;
use stack::{Config, MacAddr, Stack};
use std::net::SocketAddrV4;
use std::time::Instant;

fn smoltcp_loopback(total: usize) -> f64 {
    let mut device = Loopback::new(Medium::Ethernet);
    let config = SConfig::new(EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]).into());
    let mut iface = Interface::new(config, &mut device, smoltcp::time::Instant::now());
    iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap());
    let sock = || tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 65536]), tcp::SocketBuffer::new(vec![0; 65536]));
    let mut storage: [_; 2] = Default::default();
    let mut sockets = SocketSet::new(&mut storage[..]);
    let server = sockets.add(sock());
    let client = sockets.add(sock());
    let start = Instant::now();
    let (mut listened, mut connected, mut processed) = (false, false, 0);
    while processed < total {
        iface.poll(smoltcp::time::Instant::now(), &mut device, &mut sockets);
        let s = sockets.get_mut::<tcp::Socket>(server);
        if !s.is_active() && !s.is_listening() && !listened {
            s.listen(1234).unwrap();
            listened = true;
        }
        while s.can_recv() {
            processed += s.recv(|b| (b.len(), b.len())).unwrap();
        }
        let s = sockets.get_mut::<tcp::Socket>(client);
        let cx = iface.context();
        if !s.is_open() && !connected {
            s.connect(cx, (IpAddress::v4(127, 0, 0, 1), 1234), 65000).unwrap();
            connected = true;
        }
        while s.can_send() {
            s.send(|b| (b.len(), ())).unwrap();
        }
    }
    start.elapsed().as_secs_f64()
}

macro_rules! call {
    ($host:expr, $method:ident ( $($arg:expr),* $(,)? )) => {{
        let h = &mut $host;
        h.sockets.$method(&mut h.stack, $($arg),*)
    }};
}

/// How the tapstack contender's application moves its bytes.
#[derive(Copy, Clone, PartialEq)]
enum Calls {
    /// The BSD calls, `send` and `recv` on descriptors: each copies the
    /// application's buffer into the stack's or out of it.
    Copying,
    /// The stack's calls without a copy (`Tcp::send_with`, `Tcp::recv_with`),
    /// as smoltcp's benchmark uses its `send`/`recv` closures: the closures
    /// touch no bytes, so what is measured is the stack's own work.
    InPlace,
}

/// Carries frames both ways until neither stack has any left, first polling
/// a stack whose deadline is due. `now` is read once per batch of work by the
/// caller, as the runtime reads it once per round of frames (and polls once
/// per round: a timer that comes due meanwhile runs at the next call).
fn pump(a: &mut Host, b: &mut Host, ab: &mut FrameBatch, ba: &mut FrameBatch, now: stack::Instant) {
    for st in [&mut a.stack, &mut b.stack] {
        if st.poll_at().is_some_and(|t| t <= now) {
            st.poll(now);
        }
    }
    loop {
        ab.take_transmit(&mut a.stack);
        ba.take_transmit(&mut b.stack);
        if ab.is_empty() && ba.is_empty() {
            return;
        }
        // The stacks may keep the buffers of the frames they receive (and leave spares).
        ab.deliver(&mut b.stack, now);
        ba.deliver(&mut a.stack, now);
    }
}

/// `mtu`: 1500 (Ethernet's), or 9000 (the most the configuration allows; smoltcp's `Loopback` offers 65535).
/// `offload`: the link takes 64 KiB segments and vouches for their checksums.
fn tapstack_pair(total: usize, mtu: u16, offload: bool, calls: Calls) -> f64 {
    let offload = if offload { Offloads::TAP } else { Offloads::default() };
    let ca = Config { seed: 5, mtu, offload, ..Config::new(MacAddr([2, 0, 0, 0, 0, 1]), A_IP, 24) };
    let cb = Config { seed: 6, mtu, offload, ..Config::new(MacAddr([2, 0, 0, 0, 0, 2]), B_IP, 24) };
    let (mut a, mut b) = (Host::new(ca), Host::new(cb));
    let (mut ab, mut ba) = (FrameBatch::new(), FrameBatch::new());
    let epoch = Instant::now();
    let clock = || stack::Instant::from_micros(epoch.elapsed().as_micros() as u64);
    a.stack.start(clock());
    b.stack.start(clock());
    let l = call!(b, socket(AF_INET, SOCK_STREAM, 0)).unwrap();
    call!(b, bind(l, "0.0.0.0:9".parse().unwrap())).unwrap();
    call!(b, listen(l, 8)).unwrap();
    let c = call!(a, socket(AF_INET, SOCK_STREAM, 0)).unwrap();
    let _ = call!(a, connect(clock(), c, SocketAddrV4::new(B_IP, 9).into()));
    pump(&mut a, &mut b, &mut ab, &mut ba, clock());
    let (s, _) = call!(b, accept(clock(), l)).unwrap();
    let start = Instant::now();
    let got = match calls {
        Calls::Copying => copying_loop(total, &mut a, &mut b, (c, s), &mut ab, &mut ba, clock),
        Calls::InPlace => {
            // The stack's own calls on its connections, as smoltcp's benchmark
            // uses its sockets: the ids are those behind the descriptors.
            let (tx, rx) = (only_conn(&mut a.stack), only_conn(&mut b.stack));
            in_place_loop(total, &mut a, &mut b, (tx, rx), &mut ab, &mut ba, clock)
        }
    };
    assert!(got >= total);
    let took = start.elapsed().as_secs_f64();
    if std::env::var_os("TAPSTACK_MEM_COUNTERS").is_some() {
        // What each side sent, per 64 KiB moved: how many frames and rounds it took.
        for (name, h) in [("sender", &a), ("receiver", &b)] {
            let per = (total >> 16) as f64;
            h.stack.counters().visit_layers(&mut |l, n, v| {
                if v > 0 && matches!(l, "link" | "tcp") {
                    eprintln!("{name} {l}.{n}: {v} ({:.2} per 64 KiB)", v as f64 / per);
                }
            });
        }
    }
    took
}

/// The one established connection of a stack (the bench opens one per side).
fn only_conn(st: &mut Stack) -> stack::tcp::ConnId {
    let tcp = st.tcp().0;
    let mut ids = tcp.sockets().filter(|(_, i)| i.state == stack::tcp::State::Established).map(|(id, _)| id);
    let id = ids.next().expect("an established connection");
    assert!(ids.next().is_none());
    id
}

/// The BSD calls: `send` a 64 KiB chunk, carry, `recv` all there is, carry.
fn copying_loop(
    total: usize,
    a: &mut Host,
    b: &mut Host,
    (c, s): (Fd, Fd),
    ab: &mut FrameBatch,
    ba: &mut FrameBatch,
    clock: impl Fn() -> stack::Instant,
) -> usize {
    let chunk = vec![7u8; 65536];
    let mut buf = vec![0u8; 65536];
    let mut got = 0;
    while got < total {
        let now = clock();
        let _ = call!(*a, send(now, c, &chunk, 0));
        pump(a, b, ab, ba, now);
        while let Ok(k @ 1..) = call!(*b, recv(now, s, &mut buf, 0)) {
            got += k;
        }
        pump(a, b, ab, ba, now);
    }
    got
}

/// smoltcp's benchmark loop with the calls without a copy: fill the send
/// buffer in place, carry, consume what arrived in place, carry.
fn in_place_loop(
    total: usize,
    a: &mut Host,
    b: &mut Host,
    (tx, rx): (stack::tcp::ConnId, stack::tcp::ConnId),
    ab: &mut FrameBatch,
    ba: &mut FrameBatch,
    clock: impl Fn() -> stack::Instant,
) -> usize {
    let mut got = 0;
    while got < total {
        let now = clock();
        let (tcp, net) = a.stack.tcp();
        while let Ok(1..) = tcp.send_with(now, net, tx, |room| room.len()) {}
        pump(a, b, ab, ba, now);
        let (tcp, net) = b.stack.tcp();
        while let Ok(k @ 1..) = tcp.recv_with(now, net, rx, |data| data.len()) {
            got += k;
        }
        pump(a, b, ab, ba, now);
    }
    got
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let mib: usize = std::env::var("TAPSTACK_MEM_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let runs: usize = std::env::var("TAPSTACK_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let total = mib << 20;
    let (mut ours, mut big, mut gso, mut zc, mut theirs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // TAPSTACK_MEM_ONLY=tso runs that contender alone (to profile it); the
    // table then shows the others as 0.
    let only = std::env::var("TAPSTACK_MEM_ONLY").ok();
    let runs_it = |name: &str| only.as_deref().is_none_or(|o| o == name);
    for _ in 0..runs {
        let round =
            |name: &str, v: &mut Vec<f64>, f: &dyn Fn() -> f64| v.push(if runs_it(name) { f() } else { f64::INFINITY });
        round("1500", &mut ours, &|| tapstack_pair(total, 1500, false, Calls::Copying));
        round("9000", &mut big, &|| tapstack_pair(total, 9000, false, Calls::Copying));
        round("tso", &mut gso, &|| tapstack_pair(total, 1500, true, Calls::Copying));
        round("tso-inplace", &mut zc, &|| tapstack_pair(total, 1500, true, Calls::InPlace));
        round("smoltcp", &mut theirs, &|| smoltcp_loopback(total));
    }
    let gbit = |v: &Vec<f64>| total as f64 * 8.0 / median(v.clone()) / 1e9;
    println!("\nin memory, one core, {mib} MiB per run, median of {runs} interleaved runs (Gbit/s)");
    println!("{:<52} {:>10} {:>10} {:>11}", "transfer", "tapstack", "smoltcp", "vs smoltcp");
    let t = gbit(&theirs);
    let rows = [
        ("64 KiB buffers, MTU 1500, BSD calls (copying)", &ours),
        ("64 KiB buffers, MTU 9000, BSD calls (copying)", &big),
        ("64 KiB buffers, offload link (TSO), BSD calls", &gso),
        ("64 KiB buffers, offload link (TSO), in-place calls", &zc),
    ];
    for (name, v) in rows {
        let o = gbit(v);
        println!("{name:<52} {o:>10.2} {t:>10.2} {:>10.2}x", o / t);
    }
}
