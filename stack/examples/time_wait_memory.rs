//! Memory held by a flood of TIME-WAITs (issue 13, item 3), in virtual time:
//! HTTP/1.0 exchanges with the stack closing first, N of them, each request
//! read (so each receive buffer was allocated). Prints the process's RSS and
//! the TCP table's heap bytes before, at the peak and after 2*MSL.
//!
//!     cargo run --release -p stack --example time_wait_memory -- close 4096
//!     cargo run --release -p stack --example time_wait_memory -- hold 4096
//!     cargo run --release -p stack --example time_wait_memory -- idle 4096
//!
//! `close`: the application closes each connection (TIME-WAIT records);
//! `hold`: it only shuts its side down and keeps the socket until the end
//! (whole connections in TIME-WAIT, as every TIME-WAIT was before records);
//! `idle`: N ESTABLISHED connections that received a request and answered it,
//! left open (what an idle connection costs).

use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use stack::counters::{DropReason, TcpCounters};
use stack::tcp::segment::{self, SegmentOut};
use stack::tcp::{Seq, Shutdown, Tcp, TcpConfig, TcpNet};
use stack::time::{Duration, Instant};
use std::net::{Ipv4Addr, SocketAddrV4};

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

struct Net {
    rng: ChaCha8Rng,
    counters: TcpCounters,
    /// The last segment sent: (seq, ack).
    last: Option<(Seq, Option<Seq>)>,
}

impl TcpNet for Net {
    fn local_ip(&self) -> Ipv4Addr {
        US
    }
    fn mtu(&self) -> u16 {
        1500
    }
    fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
    fn counters(&mut self) -> &mut TcpCounters {
        &mut self.counters
    }
    fn send_segment(
        &mut self,
        _now: Instant,
        _src: SocketAddrV4,
        _dst: SocketAddrV4,
        seg: &SegmentOut,
        _payload: [&[u8]; 2],
    ) -> Result<(), DropReason> {
        self.last = Some((seg.seq, seg.ack));
        Ok(())
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn deliver(tcp: &mut Tcp, net: &mut Net, now: Instant, s: &SegmentOut, data: &[u8]) {
    let mut bytes = Vec::new();
    segment::write(&mut bytes, PEER, US, s, [data, &[]]);
    let _ = tcp.input_segment(now, net, PEER, US, &bytes);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("close");
    let n: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4096);
    let mut net = Net { rng: ChaCha8Rng::seed_from_u64(1), counters: TcpCounters::default(), last: None };
    let cfg = TcpConfig { max_connections: 1 << 20, ..TcpConfig::default() };
    let mut tcp = Tcp::new(&mut net, cfg);
    let l = tcp.listen(&mut net, SocketAddrV4::new(US, 80), 4096).unwrap();
    let now = Instant::from_secs(1);
    let (rss0, heap0) = (rss_kib(), tcp.heap_bytes());
    let mut held = Vec::new();
    let mut buf = [0u8; 4096];
    for i in 0..n {
        let port = 1024 + (i % 60000) as u16;
        let mut s = SegmentOut {
            src_port: port,
            dst_port: 80,
            seq: Seq(7000 + i),
            syn: true,
            wnd: 65535,
            ..Default::default()
        };
        s.mss = Some(1460);
        deliver(&mut tcp, &mut net, now, &s, b"");
        let (iss, _) = net.last.unwrap();
        let req = b"GET / HTTP/1.0\r\n\r\n";
        let s = SegmentOut {
            src_port: port,
            dst_port: 80,
            seq: Seq(7001 + i),
            ack: Some(iss + 1),
            psh: true,
            wnd: 65535,
            ..Default::default()
        };
        deliver(&mut tcp, &mut net, now, &s, req);
        let (id, _) = tcp.accept(l).unwrap().expect("accepted");
        let _ = tcp.recv(now, &mut net, id, &mut buf, false);
        let answer = b"HTTP/1.0 200 OK\r\n\r\n";
        tcp.send(now, &mut net, id, answer).unwrap();
        match mode {
            "idle" => {
                held.push(id);
                continue;
            }
            "hold" => {
                tcp.shutdown(now, &mut net, id, Shutdown::Write).unwrap();
                held.push(id);
            }
            _ => tcp.close(now, &mut net, id).unwrap(),
        }
        let (our_fin, _) = net.last.unwrap();
        let s = SegmentOut {
            src_port: port,
            dst_port: 80,
            seq: Seq(7001 + i + req.len() as u32),
            ack: Some(our_fin + 1),
            fin: true,
            wnd: 65535,
            ..Default::default()
        };
        deliver(&mut tcp, &mut net, now, &s, b"");
    }
    let (rss1, heap1) = (rss_kib(), tcp.heap_bytes());
    let (tw, conns) = (tcp.time_wait_count(), tcp.connection_count());
    tcp.poll_timers(now + Duration::from_secs(61), &mut net);
    for id in held {
        let _ = tcp.close(now + Duration::from_secs(61), &mut net, id);
    }
    let (rss2, heap2) = (rss_kib(), tcp.heap_bytes());
    println!("mode {mode}, {n} connections ({tw} in TIME-WAIT, {conns} in the table at the peak)");
    println!("RSS: before {rss0} KiB, peak {rss1} KiB, after 2*MSL {rss2} KiB");
    println!(
        "TCP table heap: before {heap0} B, peak {heap1} B ({} B each), after {heap2} B",
        (heap1 - heap0) / n as usize
    );
}
