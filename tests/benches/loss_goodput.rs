//! Goodput against loss, in virtual time, through the project's fault injector.
//!
//! One sender pushes data to a tapstack receiver for a fixed stretch of
//! virtual time over a simulated link: 100 Mbit/s each way, 25 ms one-way delay
//! (50 ms round trip), a drop-tail queue of 1000 frames, and the receiver's
//! device wrapped in `stack::device::fault::FaultInjector` dropping the given
//! fraction of frames each way (data on its way in, ACKs on their way out).
//! Senders, on the same link and the same seeded losses:
//! - tapstack with SACK and timestamps (the defaults);
//! - tapstack with both off at both ends (NewReno alone, as before issue 12);
//! - smoltcp 0.14 as shipped (its default congestion control).
//!
//! It prints a table with ratios and the Mathis model's bound for a Reno-like
//! sender (MSS / RTT * sqrt(3/2) / sqrt(p)), and writes the curves to
//! docs/loss-goodput.svg. A benchmark, not a test: it asserts nothing.
//!
//! Run: cargo bench -p tapstack-tests --bench loss_goodput
//! Virtual seconds per cell: TAPSTACK_LOSS_SECS (default 30).

use plotters::prelude::*;
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::tcp as smol_tcp;
use smoltcp::time::Instant as SInstant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};
use stack::device::fault::{FaultConfig, FaultInjector};
use stack::device::Device;
use stack::tcp::ConnId;
use stack::{Config, Duration, Instant, MacAddr, Stack};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;

const LOSSES: [f64; 7] = [0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.10];
const RATE_BPS: u64 = 100_000_000;
const ONE_WAY: Duration = Duration::from_millis(25);
const QUEUE: usize = 1000;
const SENDER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const RECEIVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 9;
const BUFFER: usize = 4 << 20;

/// One direction of the link: serialisation at RATE_BPS, then ONE_WAY of delay.
#[derive(Default)]
struct Pipe {
    frames: VecDeque<(Instant, Vec<u8>)>,
    free_at: Instant,
    tail_drops: u64,
}

impl Pipe {
    fn push(&mut self, now: Instant, frame: &[u8]) {
        if self.frames.len() >= QUEUE {
            self.tail_drops += 1;
            return;
        }
        let start = self.free_at.max(now);
        let wire = Duration::from_nanos((frame.len() as u64 + 24) * 8 * 1_000_000_000 / RATE_BPS);
        self.free_at = start + wire;
        self.frames.push_back((self.free_at + ONE_WAY, frame.to_vec()));
    }

    fn pop(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.frames.front().is_some_and(|(t, _)| *t <= now) {
            return self.frames.pop_front().map(|(_, f)| f);
        }
        None
    }

    fn next(&self) -> Option<Instant> {
        self.frames.front().map(|(t, _)| *t)
    }
}

type Shared = Rc<RefCell<Pipe>>;

/// One end of the link as a `Device`: frames in from `rx`, out to `tx`.
struct End {
    rx: Shared,
    tx: Shared,
}

impl Device for End {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.rx.borrow_mut().pop(now).map(|f| {
            buf[..f.len()].copy_from_slice(&f);
            f.len()
        }))
    }
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.tx.borrow_mut().push(now, frame);
        Ok(())
    }
    fn poll_at(&self) -> Option<Instant> {
        self.rx.borrow().next()
    }
}

fn config(mac: u8, ip: Ipv4Addr, sack: bool) -> Config {
    let mut c = Config::new(MacAddr([2, 0, 0, 0, 0, mac]), ip, 24);
    c.seed = mac as u64;
    c.tcp.sack = sack;
    c.tcp.timestamps = sack;
    c.tcp.default_options.send_buffer = BUFFER;
    c.tcp.default_options.recv_buffer = BUFFER;
    c
}

/// A tapstack endpoint on a device.
struct Node<D: Device> {
    stack: Stack,
    dev: D,
    buf: Vec<u8>,
}

impl<D: Device> Node<D> {
    fn new(config: Config, dev: D, now: Instant) -> Node<D> {
        let mut stack = Stack::new(config).unwrap();
        stack.start(now);
        Node { stack, dev, buf: vec![0; 2048] }
    }

    fn run(&mut self, now: Instant) {
        while let Some(n) = self.dev.recv(now, &mut self.buf).unwrap() {
            self.stack.receive(now, &self.buf[..n]);
        }
        if self.stack.poll_at().is_some_and(|t| t <= now) {
            self.stack.poll(now);
        }
        let dev = &mut self.dev;
        self.stack.transmit(|f| dev.send(now, f).unwrap());
    }

    fn next(&self) -> Option<Instant> {
        match (self.stack.poll_at(), self.dev.poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The sending side: tapstack or smoltcp.
trait Sender {
    fn run(&mut self, now: Instant);
    fn next(&mut self, now: Instant) -> Option<Instant>;
}

struct TapSender {
    node: Node<End>,
    conn: Option<ConnId>,
    chunk: Vec<u8>,
}

impl Sender for TapSender {
    fn run(&mut self, now: Instant) {
        let (tcp, net) = self.node.stack.tcp();
        let id =
            *self.conn.get_or_insert_with(|| tcp.connect(now, net, None, SocketAddrV4::new(RECEIVER, PORT)).unwrap());
        while tcp.send(now, net, id, &self.chunk).is_ok_and(|n| n > 0) {}
        self.node.run(now);
    }
    fn next(&mut self, _: Instant) -> Option<Instant> {
        self.node.next()
    }
}

/// smoltcp's side of the link.
struct SmolDev {
    end: End,
    now: Instant,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a End, Instant);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let r = f(&mut frame);
        self.0.tx.borrow_mut().push(self.1, &frame);
        r
    }
}

impl phy::Device for SmolDev {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;
    fn receive(&mut self, _: SInstant) -> Option<(Rx, Tx<'_>)> {
        let f = self.end.rx.borrow_mut().pop(self.now)?;
        Some((Rx(f), Tx(&self.end, self.now)))
    }
    fn transmit(&mut self, _: SInstant) -> Option<Tx<'_>> {
        Some(Tx(&self.end, self.now))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

struct SmolSender {
    iface: Interface,
    dev: SmolDev,
    sockets: SocketSet<'static>,
    handle: smoltcp::iface::SocketHandle,
    connected: bool,
    chunk: Vec<u8>,
}

fn stime(t: Instant) -> SInstant {
    SInstant::from_micros(t.as_micros() as i64)
}

impl SmolSender {
    fn new(end: End, now: Instant) -> SmolSender {
        let mut dev = SmolDev { end, now };
        let mut cfg = IfaceConfig::new(EthernetAddress([2, 0, 0, 0, 0, 1]).into());
        cfg.random_seed = 1;
        let mut iface = Interface::new(cfg, &mut dev, stime(now));
        iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::from(SENDER), 24)).unwrap());
        let buf = || smol_tcp::SocketBuffer::new(vec![0; BUFFER]);
        let sock = smol_tcp::Socket::new(buf(), buf());
        let mut sockets = SocketSet::new(vec![]);
        let handle = sockets.add(sock);
        SmolSender { iface, dev, sockets, handle, connected: false, chunk: vec![b'x'; 65536] }
    }
}

impl Sender for SmolSender {
    fn run(&mut self, now: Instant) {
        self.dev.now = now;
        let s = self.sockets.get_mut::<smol_tcp::Socket>(self.handle);
        if !self.connected {
            let cx = self.iface.context();
            s.connect(cx, (IpAddress::from(RECEIVER), PORT), 49152).unwrap();
            self.connected = true;
        }
        let s = self.sockets.get_mut::<smol_tcp::Socket>(self.handle);
        while s.can_send() && s.send_slice(&self.chunk).is_ok_and(|n| n > 0) {}
        self.iface.poll(stime(now), &mut self.dev, &mut self.sockets);
    }
    fn next(&mut self, now: Instant) -> Option<Instant> {
        let mut iface =
            self.iface.poll_at(stime(now), &self.sockets).map(|t| Instant::from_micros(t.total_micros() as u64));
        if let Some(t) = iface.as_mut() {
            *t = (*t).max(now + Duration::from_micros(1));
        }
        match (iface, self.dev.end.rx.borrow().next()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[derive(Copy, Clone, PartialEq)]
enum Kind {
    Sack,
    NoSack,
    Smol,
}

/// Runs one cell; returns goodput in Mbit/s (bytes the receiving application read).
fn run(kind: Kind, loss: f64, secs: u64) -> f64 {
    let start = Instant::from_secs(1);
    let (to_rx, to_tx): (Shared, Shared) = Default::default();
    let faults = FaultConfig { drop: loss, seed: 12, ..FaultConfig::default() };
    let rx_dev = FaultInjector::new(End { rx: to_rx.clone(), tx: to_tx.clone() }, faults);
    let mut receiver = Node::new(config(2, RECEIVER, kind != Kind::NoSack), rx_dev, start);
    let sender_end = End { rx: to_tx, tx: to_rx };
    let mut sender: Box<dyn Sender> = match kind {
        Kind::Smol => Box::new(SmolSender::new(sender_end, start)),
        _ => Box::new(TapSender {
            node: Node::new(config(1, SENDER, kind == Kind::Sack), sender_end, start),
            conn: None,
            chunk: vec![b'x'; 65536],
        }),
    };
    let (tcp, net) = receiver.stack.tcp();
    let listener = tcp.listen(net, SocketAddrV4::new(RECEIVER, PORT), 4).unwrap();
    let mut conn = None;
    let mut got = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let end = start + Duration::from_secs(secs);
    let mut now = start;
    while now < end {
        sender.run(now);
        receiver.run(now);
        let (tcp, net) = receiver.stack.tcp();
        if conn.is_none() {
            conn = tcp.accept(listener).unwrap().map(|(id, _)| id);
        }
        if let Some(id) = conn {
            while let Ok(n) = tcp.recv(now, net, id, &mut buf, false) {
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
        }
        receiver.run(now);
        let next = [sender.next(now), receiver.next()].into_iter().flatten().min();
        now = next.unwrap_or(end).max(now + Duration::from_micros(1));
    }
    got as f64 * 8.0 / secs as f64 / 1e6
}

/// The Mathis et al. bound for a Reno-like sender: MSS / RTT * sqrt(3/2) / sqrt(p).
fn mathis(loss: f64) -> f64 {
    let mss = 1448.0 * 8.0; // 1460 less the timestamp option
    let rtt = 2.0 * ONE_WAY.as_secs_f64();
    mss / rtt * (1.5f64).sqrt() / loss.sqrt() / 1e6
}

fn plot(rows: &[(f64, f64, f64, f64)], path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Goodput vs loss (each way), 100 Mbit/s, 50 ms RTT, virtual time", ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..(LOSSES.len() - 1) as f64, (0.05f64..200f64).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(LOSSES.len())
        .x_label_formatter(&|x| format!("{}%", LOSSES.get(x.round() as usize).copied().unwrap_or(0.0) * 100.0))
        .x_desc("loss rate each way")
        .y_desc("goodput, Mbit/s (log)")
        .draw()?;
    type Pick = Box<dyn Fn(&(f64, f64, f64, f64)) -> f64>;
    let series: [(&str, RGBColor, Pick); 4] = [
        ("tapstack, SACK + timestamps", BLUE, Box::new(|r| r.1)),
        ("tapstack, NewReno only", RED, Box::new(|r| r.2)),
        ("smoltcp 0.14", GREEN, Box::new(|r| r.3)),
        ("Mathis bound (Reno)", BLACK, Box::new(|r| if r.0 > 0.0 { mathis(r.0) } else { 100.0 })),
    ];
    for (name, color, f) in series {
        let pts: Vec<(f64, f64)> = rows.iter().enumerate().map(|(i, r)| (i as f64, f(r).max(0.05))).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

fn main() {
    let secs: u64 = std::env::var("TAPSTACK_LOSS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    println!("goodput vs loss: 100 Mbit/s, 50 ms RTT, {secs} s of virtual time per cell, loss each way");
    println!(
        "{:>6} {:>12} {:>12} {:>12} {:>10} {:>12} {:>12} {:>12}",
        "loss", "SACK Mb/s", "noSACK Mb/s", "smoltcp", "Mathis", "SACK/noSACK", "SACK/smol", "SACK/Mathis"
    );
    let mut rows = Vec::new();
    for loss in LOSSES {
        let (a, b, c) = (run(Kind::Sack, loss, secs), run(Kind::NoSack, loss, secs), run(Kind::Smol, loss, secs));
        let m = if loss > 0.0 { mathis(loss) } else { f64::NAN };
        println!(
            "{:>5.1}% {:>12.2} {:>12.2} {:>12.2} {:>10.2} {:>11.2}x {:>11.1}x {:>11.2}",
            loss * 100.0,
            a,
            b,
            c,
            m,
            a / b,
            a / c,
            a / m
        );
        rows.push((loss, a, b, c));
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/loss-goodput.svg");
    match plot(&rows, path) {
        Ok(()) => println!("plot: docs/loss-goodput.svg"),
        Err(e) => println!("plot failed: {e}"),
    }
}
