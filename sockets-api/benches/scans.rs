//! Per-call cost of the paths issue 11 item 1 freed from scans, at 10 and at
//! 10,000 entries: the core's next deadline (`Stack::poll_at`) and an idle
//! `Stack::poll` with the ARP cache or the IPv4 reassembly table full, and
//! bind(2) to port 0 with idle bound stream sockets in the descriptor table.
//! Flat costs (a ratio near 1) are the claim; the tests count the work
//! (`poll_at_matches_a_scan_under_random_traffic`,
//! `binding_costs_the_same_with_one_or_ten_thousand_idle_sockets`). Prints a
//! table; asserts nothing on time.
//!
//! cargo bench -p sockets-api --bench scans

use sockets_api::consts::*;
use sockets_api::fd_table::FdTable;
use stack::{Config, Instant, MacAddr, Stack};
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

const OUR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const OUR_IP: [u8; 4] = [10, 0, 0, 1];

fn stack(n: usize) -> Stack {
    let mut c = Config::new(MacAddr(OUR_MAC), Ipv4Addr::from(OUR_IP), 8);
    c.arp.max_entries = n.max(16);
    c.reassembly.max_datagrams = n.max(16);
    Stack::new(c).unwrap()
}

/// An ARP request for our address from host `i` (10.1.x.y): the stack learns it.
fn arp_request(i: usize) -> Vec<u8> {
    let mac = [2, 0, 0, 1, (i >> 8) as u8, i as u8];
    let ip = [10, 1, (i >> 8) as u8, i as u8];
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&OUR_IP);
    f
}

/// The first fragment (more to come) of UDP datagram `ident` to us.
fn first_fragment(ident: u16) -> Vec<u8> {
    let mut f = OUR_MAC.to_vec();
    f.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0x08, 0x00]);
    let mut h = [0x45, 0, 0, 36, 0, 0, 0x20, 0, 64, 17, 0, 0, 10, 0, 0, 9, 0, 0, 0, 0];
    h[4..6].copy_from_slice(&ident.to_be_bytes());
    h[16..20].copy_from_slice(&OUR_IP);
    let sum = stack::checksum::of(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(&[0x55; 16]);
    f
}

/// Nanoseconds per call of `f`, the best of 5 rounds of `calls`.
fn per_call(calls: u32, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let t = std::time::Instant::now();
            for _ in 0..calls {
                f();
            }
            t.elapsed().as_nanos() as f64 / calls as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// A stack with `n` ARP entries (or `n` datagrams in reassembly): what
/// `poll_at` and a `poll` with nothing due cost.
fn core_costs(n: usize, fill: fn(usize) -> Vec<u8>) -> (f64, f64) {
    let mut st = stack(n);
    let now = Instant::from_millis(1);
    for i in 0..n {
        st.receive(now, &fill(i));
    }
    st.transmit(|_| {});
    assert!(st.poll_at().is_some_and(|t| t > now));
    let at = per_call(200_000, || {
        black_box(st.poll_at());
    });
    let poll = per_call(20_000, || st.poll(black_box(now)));
    (at, poll)
}

/// A table with `n` idle bound stream sockets (ports 20000 up, outside the
/// ephemeral range): what socket + bind(port 0) + close costs.
fn bind_cost(n: usize) -> f64 {
    let mut st = stack(16);
    let mut t = FdTable::new();
    t.set_limit(n + 16).unwrap();
    for i in 0..n {
        let fd = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
        t.bind(&mut st, fd, SocketAddr::from(([0, 0, 0, 0], 20_000 + i as u16))).unwrap();
    }
    let now = Instant::ZERO;
    per_call(20_000, || {
        let fd = t.socket(&mut st, AF_INET, SOCK_STREAM, 0).unwrap();
        t.bind(&mut st, fd, SocketAddr::from(([0, 0, 0, 0], 0))).unwrap();
        t.close(&mut st, now, fd).unwrap();
    })
}

fn row(what: &str, small: f64, large: f64) {
    println!("| {what} | {small:.0} | {large:.0} | {:.2} |", large / small);
}

fn main() {
    println!("| per call (ns) | 10 entries | 10,000 entries | ratio |");
    println!("|---|---:|---:|---:|");
    let (a10, b10) = (core_costs(10, arp_request), core_costs(10_000, arp_request));
    row("`Stack::poll_at`, ARP cache", a10.0, b10.0);
    row("`Stack::poll`, nothing due, ARP cache", a10.1, b10.1);
    let frag = |i: usize| first_fragment(i as u16);
    let (r10, r10k) = (core_costs(10, frag), core_costs(10_000, frag));
    row("`Stack::poll_at`, reassembly table", r10.0, r10k.0);
    row("`Stack::poll`, nothing due, reassembly table", r10.1, r10k.1);
    row("socket + bind(port 0) + close, idle bound sockets", bind_cost(10), bind_cost(10_000));
}
