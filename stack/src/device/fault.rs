//! A fault injector: wraps any device and, with given probabilities, drops,
//! corrupts, duplicates, delays or reorders the frames that pass through it, in
//! either or both directions. Every decision comes from a ChaCha8 generator seeded
//! from [`FaultConfig::seed`], so a run that failed replays exactly: same seed and
//! same frames at the same instants give the same faults.
//!
//! Each direction has its own generator (one ChaCha stream each), so the faults on
//! received frames do not depend on how many frames were sent, and vice versa.
//!
//! Per frame, in order: drop; corrupt (flip one bit); duplicate (the copy then
//! goes on independently, as with Linux netem); and for each copy: delay
//! (`delay_time` plus a uniform `0..=jitter`) and reorder (hold the frame until
//! the next one has gone ahead of it).
//!
//! Held frames (delayed, or waiting to be overtaken) come out when a later call
//! passes their time, so drivers must call [`Device::recv`] when
//! [`Device::poll_at`] says so. That holds in both directions: a delayed *sent*
//! frame reaches the inner device on the first `recv`, `send` or `flush` at or
//! after its time. Calls must not go back in time.
//!
//! Frames of an offloading link ([`Device::recv_offloaded`],
//! [`Device::send_offloaded`]: a TAP with the virtio-net header) pass whole,
//! each with its [`RxOffload`] or [`TxOffload`]: a GSO segment of up to 64 KiB
//! is one frame here, dropped, duplicated, delayed or reordered as a whole, as
//! netem or nftables on a Linux interface sees a GSO packet before it is cut.
//! Cutting it into MSS-sized frames here would mean rewriting its headers and
//! checksums (the link's work) and would hide from the stack the frames it
//! really exchanged with the link, which is what a capture inside shows. A
//! corrupted frame whose checksum the link fills in or vouched for must still
//! be caught by a checksum: inbound it loses its `csum_trusted` (the stack
//! verifies it); outbound, with a checksum left partial, the bit flipped is in
//! the IPv4 header, whose checksum is ours, since a flip in what the link sums
//! afterwards would go out with a valid checksum.

use super::Device;
use crate::offload::{Offloads, RxOffload, TxOffload};
use crate::time::Instant;
use core::fmt;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::str::FromStr;
use std::time::Duration;

/// Frames a direction holds back at most; beyond that new frames are dropped and
/// counted as `overflowed`, so a long delay cannot eat all memory.
pub const MAX_HELD: usize = 1024;

/// How long a frame waits for another to overtake it before it goes on anyway,
/// so the last frame of a burst is late rather than lost.
pub const REORDER_HOLD: Duration = Duration::from_millis(10);

/// Spare buffers a direction keeps for reuse.
const POOL_LIMIT: usize = 64;

/// Which frames the faults apply to, seen from the stack: `Rx` are the frames it
/// receives from the inner device, `Tx` those it sends.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    #[default]
    Both,
    Rx,
    Tx,
}

/// What to inject. Rates are probabilities per frame, 0.0 to 1.0 (values outside
/// are clamped; NaN counts as 0).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    pub drop: f64,
    pub duplicate: f64,
    pub reorder: f64,
    pub delay: f64,
    /// How long a delayed frame is held, before jitter.
    pub delay_time: Duration,
    /// A delayed frame is held an extra uniform random 0..=jitter (microsecond grain).
    pub jitter: Duration,
    pub corrupt: f64,
    pub seed: u64,
    pub direction: Direction,
}

impl Default for FaultConfig {
    /// No faults; a delay, once enabled, of 10 ms.
    fn default() -> FaultConfig {
        FaultConfig {
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: 0.0,
            delay_time: Duration::from_millis(10),
            jitter: Duration::ZERO,
            corrupt: 0.0,
            seed: 0,
            direction: Direction::Both,
        }
    }
}

/// A [`FaultConfig::parse`] error, saying which part of the input is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseFaultError(String);

impl fmt::Display for ParseFaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseFaultError {}

const KEYS: &str = "drop, dup, reorder, delay, delay_time, jitter, corrupt, seed, dir";

impl FaultConfig {
    /// Parses the command-line form: comma-separated `key=value` pairs, e.g.
    /// `drop=0.03,dup=0.01,delay=0.1,delay_time=20ms,jitter=5ms,seed=7,dir=rx`.
    /// Rates are numbers in 0..=1 or percentages (`3%`); times take a unit (`us`,
    /// `ms`, `s`); `dir` is `rx`, `tx` or `both`. Keys not given keep their
    /// [`Default`]. The empty string means no faults.
    pub fn parse(s: &str) -> Result<FaultConfig, ParseFaultError> {
        let mut config = FaultConfig::default();
        let mut seen: Vec<&str> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(ParseFaultError(format!("'{part}': expected key=value (keys: {KEYS})")));
            };
            let (key, value) = (key.trim(), value.trim());
            let canonical = match key {
                "dup" | "duplicate" => "dup",
                "dir" | "direction" => "dir",
                "delay_time" | "delay-time" => "delay_time",
                other => other,
            };
            if seen.contains(&canonical) {
                return Err(ParseFaultError(format!("'{key}' is given twice")));
            }
            seen.push(canonical);
            let bad = |what: &str| ParseFaultError(format!("{key}={value}: {what}"));
            match canonical {
                "drop" => config.drop = parse_rate(value).map_err(bad)?,
                "dup" => config.duplicate = parse_rate(value).map_err(bad)?,
                "reorder" => config.reorder = parse_rate(value).map_err(bad)?,
                "delay" => config.delay = parse_rate(value).map_err(bad)?,
                "corrupt" => config.corrupt = parse_rate(value).map_err(bad)?,
                "delay_time" => config.delay_time = parse_duration(value).map_err(bad)?,
                "jitter" => config.jitter = parse_duration(value).map_err(bad)?,
                "seed" => {
                    config.seed = parse_seed(value).ok_or_else(|| bad("expected an integer (decimal or 0x hex)"))?
                }
                "dir" => {
                    config.direction = match value {
                        "both" => Direction::Both,
                        "rx" => Direction::Rx,
                        "tx" => Direction::Tx,
                        _ => return Err(bad("expected rx, tx or both")),
                    }
                }
                _ => return Err(ParseFaultError(format!("unknown fault '{key}' (keys: {KEYS})"))),
            }
        }
        Ok(config)
    }
}

fn parse_rate(s: &str) -> Result<f64, &'static str> {
    let (number, scale) = match s.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (s, 1.0),
    };
    let v = number.parse::<f64>().map_err(|_| "expected a probability such as 0.03 or 3%")? / scale;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("a probability must be between 0 and 1 (0% and 100%)")
    }
}

fn parse_duration(s: &str) -> Result<Duration, &'static str> {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).ok_or("a time needs a unit: us, ms or s")?;
    let (number, unit) = (s[..split].trim(), &s[split..]);
    let micros_per_unit = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        _ => return Err("unknown time unit (use us, ms or s)"),
    };
    let v = number.parse::<f64>().map_err(|_| "expected a time such as 20ms")? * micros_per_unit;
    // A day is far beyond any useful delay; the bound keeps the arithmetic trivially safe.
    if !(0.0..=86_400e6).contains(&v) {
        return Err("a time must be between 0 and one day");
    }
    Ok(Duration::from_micros(v.round() as u64))
}

fn parse_seed(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

impl FromStr for FaultConfig {
    type Err = ParseFaultError;
    fn from_str(s: &str) -> Result<FaultConfig, ParseFaultError> {
        FaultConfig::parse(s)
    }
}

/// The form [`FaultConfig::parse`] reads, with every key, so a run's log line
/// is enough to replay it.
impl fmt::Display for FaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.direction {
            Direction::Both => "both",
            Direction::Rx => "rx",
            Direction::Tx => "tx",
        };
        write!(
            f,
            "drop={},dup={},reorder={},delay={},delay_time={}us,jitter={}us,corrupt={},seed={},dir={}",
            self.drop,
            self.duplicate,
            self.reorder,
            self.delay,
            self.delay_time.as_micros(),
            self.jitter.as_micros(),
            self.corrupt,
            self.seed,
            dir
        )
    }
}

/// What the injector did to the frames of one direction (or both, summed).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounters {
    pub dropped: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Frames that a later frame overtook.
    pub reordered: u64,
    /// Frames (or copies) held back for a delay.
    pub delayed: u64,
    pub corrupted: u64,
    /// Frames dropped because [`MAX_HELD`] frames were already held.
    pub overflowed: u64,
}

impl core::ops::Add for FaultCounters {
    type Output = FaultCounters;
    fn add(self, o: FaultCounters) -> FaultCounters {
        FaultCounters {
            dropped: self.dropped + o.dropped,
            duplicated: self.duplicated + o.duplicated,
            reordered: self.reordered + o.reordered,
            delayed: self.delayed + o.delayed,
            corrupted: self.corrupted + o.corrupted,
            overflowed: self.overflowed + o.overflowed,
        }
    }
}

/// A device that applies [`FaultConfig`] to the frames passing through `inner`.
pub struct FaultInjector<D> {
    inner: D,
    rx: Lane<RxOffload>,
    tx: Lane<TxOffload>,
}

impl<D: Device> FaultInjector<D> {
    /// Applies `config` to the directions it names.
    pub fn new(inner: D, config: FaultConfig) -> FaultInjector<D> {
        let rx = matches!(config.direction, Direction::Both | Direction::Rx);
        let tx = matches!(config.direction, Direction::Both | Direction::Tx);
        let none = FaultConfig { seed: config.seed, ..FaultConfig::default() };
        FaultInjector {
            inner,
            rx: Lane::new(if rx { &config } else { &none }, 0),
            tx: Lane::new(if tx { &config } else { &none }, 1),
        }
    }

    /// Applies `rx` to received frames and `tx` to sent ones (their `direction`
    /// fields are ignored).
    pub fn per_direction(inner: D, rx: FaultConfig, tx: FaultConfig) -> FaultInjector<D> {
        FaultInjector { inner, rx: Lane::new(&rx, 0), tx: Lane::new(&tx, 1) }
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Both directions summed.
    pub fn counters(&self) -> FaultCounters {
        self.rx.counters + self.tx.counters
    }

    pub fn rx_counters(&self) -> FaultCounters {
        self.rx.counters
    }

    pub fn tx_counters(&self) -> FaultCounters {
        self.tx.counters
    }

    /// Sends the held outgoing frames whose time has come.
    fn release_tx(&mut self, now: Instant) -> io::Result<()> {
        while let Some((frame, tx)) = self.tx.pop_due(now) {
            let result = self.inner.send_offloaded(now, &frame, tx);
            self.tx.recycle(frame);
            result?;
        }
        Ok(())
    }
}

impl<D: Device> Device for FaultInjector<D> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.recv_offloaded(now, buf)?.map(|(n, _)| n))
    }

    fn recv_offloaded(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<(usize, RxOffload)>> {
        self.release_tx(now)?;
        if !self.rx.active {
            return self.inner.recv_offloaded(now, buf);
        }
        // Pull frames through the faults until one is due or the inner device is
        // empty: stopping earlier would leave frames inside it that poll_at does
        // not announce.
        loop {
            if let Some((frame, rx)) = self.rx.pop_due(now) {
                let len = frame.len();
                let fits = len <= buf.len();
                if fits {
                    buf[..len].copy_from_slice(&frame);
                }
                self.rx.recycle(frame);
                return if fits {
                    Ok(Some((len, rx)))
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "fault injector: dropped a {len}-byte frame that does not fit a {}-byte buffer",
                            buf.len()
                        ),
                    ))
                };
            }
            match self.inner.recv_offloaded(now, buf)? {
                Some((n, rx)) => self.rx.push(now, &buf[..n.min(buf.len())], rx),
                None => return Ok(None),
            }
        }
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.send_offloaded(now, frame, TxOffload::NONE)
    }

    fn send_offloaded(&mut self, now: Instant, frame: &[u8], tx: TxOffload) -> io::Result<()> {
        if !self.tx.active {
            return self.inner.send_offloaded(now, frame, tx);
        }
        // Earlier frames whose time has come go first, then this one (unless held).
        self.release_tx(now)?;
        self.tx.push(now, frame, tx);
        self.release_tx(now)
    }

    fn offloads(&self) -> Offloads {
        self.inner.offloads()
    }

    /// The loopback is no link: its frames pass untouched, to a recorder inside.
    fn loopback(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.inner.loopback(now, frame)
    }

    fn readable_fd(&self) -> Option<RawFd> {
        self.inner.readable_fd()
    }

    fn poll_at(&self) -> Option<Instant> {
        crate::time::earliest(self.inner.poll_at(), crate::time::earliest(self.rx.next_at(), self.tx.next_at()))
    }

    fn flush(&mut self) -> io::Result<()> {
        // flush has no `now`; held frames wait for the next recv or send.
        self.inner.flush()
    }
}

/// What travels with a frame through a lane: what the link said of it
/// (inbound) or what it asks of the link (outbound).
trait Meta: Copy {
    /// `self` for a frame just corrupted, so that a checksum still catches it;
    /// and where in the frame the bit flip may go from (past the Ethernet
    /// header) and up to.
    fn corrupted(self, len: usize) -> (Self, std::ops::Range<usize>);
}

/// Past the Ethernet header, or the whole of a frame too short to have one.
fn past_ethernet(len: usize) -> std::ops::Range<usize> {
    if len > 14 {
        14..len
    } else {
        0..len
    }
}

impl Meta for RxOffload {
    /// A checksum the link vouched for is verified after all.
    fn corrupted(self, len: usize) -> (Self, std::ops::Range<usize>) {
        (RxOffload { csum_trusted: false, ..self }, past_ethernet(len))
    }
}

impl Meta for TxOffload {
    /// With the transport checksum left to the link, only the IPv4 header
    /// (its checksum ours, 20 bytes at least) may be hit.
    fn corrupted(self, len: usize) -> (Self, std::ops::Range<usize>) {
        match self.csum_partial() && len >= 34 {
            true => (self, 14..34),
            false => (self, past_ethernet(len)),
        }
    }
}

/// One direction: its rates, generator and held frames.
struct Lane<M> {
    drop: f64,
    duplicate: f64,
    reorder: f64,
    delay: f64,
    corrupt: f64,
    delay_micros: u64,
    jitter_micros: u64,
    /// False when every rate is zero: frames then bypass the lane untouched.
    active: bool,
    rng: ChaCha8Rng,
    /// Frames waiting for their time, sorted by it; equal times keep arrival order.
    held: VecDeque<Held<M>>,
    /// A frame waiting for the next one to overtake it.
    waiting: Option<Held<M>>,
    pool: Vec<Vec<u8>>,
    counters: FaultCounters,
}

struct Held<M> {
    at: Instant,
    frame: Vec<u8>,
    meta: M,
}

impl<M: Meta> Lane<M> {
    fn new(config: &FaultConfig, stream: u64) -> Lane<M> {
        // random_bool panics outside 0..=1, and the fields are public.
        let clean = |p: f64| if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(stream);
        let lane = Lane {
            drop: clean(config.drop),
            duplicate: clean(config.duplicate),
            reorder: clean(config.reorder),
            delay: clean(config.delay),
            corrupt: clean(config.corrupt),
            delay_micros: u64::try_from(config.delay_time.as_micros()).unwrap_or(u64::MAX),
            jitter_micros: u64::try_from(config.jitter.as_micros()).unwrap_or(u64::MAX),
            active: false,
            rng,
            held: VecDeque::new(),
            waiting: None,
            pool: Vec::new(),
            counters: FaultCounters::default(),
        };
        let active = [lane.drop, lane.duplicate, lane.reorder, lane.delay, lane.corrupt].iter().any(|&p| p > 0.0);
        Lane { active, ..lane }
    }

    /// Applies the faults to a frame arriving at `now` and holds what is left.
    fn push(&mut self, now: Instant, frame: &[u8], mut meta: M) {
        if self.rng.random_bool(self.drop) {
            self.counters.dropped += 1;
            return;
        }
        let mut buf = self.buffer(frame);
        if self.rng.random_bool(self.corrupt) && !buf.is_empty() {
            // Spare the Ethernet header: a real link's FCS would catch damage there
            // too, and we want the stack's own checksums to be what is tested.
            let (m, range) = meta.corrupted(buf.len());
            meta = m;
            let byte = self.rng.random_range(range);
            buf[byte] ^= 1 << self.rng.random_range(0..8u32);
            self.counters.corrupted += 1;
        }
        if self.rng.random_bool(self.duplicate) {
            let copy = self.buffer(&buf);
            self.counters.duplicated += 1;
            self.place(now, buf, meta);
            self.place(now, copy, meta);
        } else {
            self.place(now, buf, meta);
        }
    }

    /// Delays and reorders one copy.
    fn place(&mut self, now: Instant, frame: Vec<u8>, meta: M) {
        let mut at = now;
        if self.rng.random_bool(self.delay) {
            let jitter = if self.jitter_micros > 0 { self.rng.random_range(0..=self.jitter_micros) } else { 0 };
            at = Instant::from_micros(now.as_micros().saturating_add(self.delay_micros).saturating_add(jitter));
            self.counters.delayed += 1;
        }
        if self.waiting.is_none() && self.rng.random_bool(self.reorder) {
            self.waiting = Some(Held { at, frame, meta });
            return;
        }
        self.hold(Held { at, frame, meta });
        // This frame overtook the waiting one, which now follows it.
        if let Some(w) = self.waiting.take() {
            self.counters.reordered += 1;
            self.hold(Held { at: w.at.max(at), ..w });
        }
    }

    fn hold(&mut self, h: Held<M>) {
        if self.held.len() >= MAX_HELD {
            self.counters.overflowed += 1;
            self.recycle(h.frame);
            return;
        }
        let i = self.held.partition_point(|x| x.at <= h.at);
        self.held.insert(i, h);
    }

    /// The next frame due at `now`, if any.
    fn pop_due(&mut self, now: Instant) -> Option<(Vec<u8>, M)> {
        // A frame nobody overtook in time goes on by itself.
        if self.waiting.as_ref().is_some_and(|w| now >= w.at + REORDER_HOLD) {
            let w = self.waiting.take()?;
            self.hold(Held { at: w.at + REORDER_HOLD, ..w });
        }
        if self.held.front()?.at <= now {
            self.held.pop_front().map(|h| (h.frame, h.meta))
        } else {
            None
        }
    }

    /// When the next held frame is due.
    fn next_at(&self) -> Option<Instant> {
        let held = self.held.front().map(|h| h.at);
        crate::time::earliest(held, self.waiting.as_ref().map(|w| w.at + REORDER_HOLD))
    }

    /// A pooled buffer holding a copy of `frame`.
    fn buffer(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.extend_from_slice(frame);
        buf
    }

    fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < POOL_LIMIT {
            buf.clear();
            self.pool.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::wire::{Wire, WireEnd};

    /// An injector on one end of a wire, and the other end to talk to it.
    fn rig(config: &str) -> (FaultInjector<WireEnd>, WireEnd) {
        let (a, b) = Wire::pair();
        (FaultInjector::new(a, FaultConfig::parse(config).unwrap()), b)
    }

    /// A frame of `len` bytes numbered `i`.
    fn frame(i: u32, len: usize) -> Vec<u8> {
        let mut f = vec![0xee; len.max(4)];
        f[..4].copy_from_slice(&i.to_be_bytes());
        f
    }

    fn number(f: &[u8]) -> u32 {
        u32::from_be_bytes([f[0], f[1], f[2], f[3]])
    }

    fn recv_all(dev: &mut impl Device, now: Instant) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 1518];
        let mut out = Vec::new();
        while let Some(n) = dev.recv(now, &mut buf).unwrap() {
            out.push(buf[..n].to_vec());
        }
        out
    }

    /// Sends `n` frames from the peer, one per millisecond, to the injector, and
    /// returns what it received, until nothing is held.
    fn run_rx(config: &str, n: u32) -> (Vec<Vec<u8>>, FaultInjector<WireEnd>) {
        let (mut inj, mut peer) = rig(config);
        let mut out = Vec::new();
        let mut now = Instant::ZERO;
        for i in 0..n {
            peer.send(now, &frame(i, 60)).unwrap();
            out.extend(recv_all(&mut inj, now));
            now += Duration::from_millis(1);
        }
        while let Some(t) = inj.poll_at() {
            now = now.max(t);
            out.extend(recv_all(&mut inj, now));
        }
        (out, inj)
    }

    #[test]
    fn fault_same_seed_gives_same_faults() {
        let config = "drop=0.1,dup=0.1,reorder=0.1,delay=0.2,delay_time=3ms,jitter=2ms,corrupt=0.1";
        let (a, inj_a) = run_rx(&format!("{config},seed=42"), 2000);
        let (b, inj_b) = run_rx(&format!("{config},seed=42"), 2000);
        let (c, _) = run_rx(&format!("{config},seed=43"), 2000);
        assert_eq!(a, b);
        assert_eq!(inj_a.counters(), inj_b.counters());
        assert_ne!(a, c);
    }

    #[test]
    fn fault_rates_are_roughly_honoured() {
        let n = 10_000;
        let p = 0.1;
        // Within 15% of the expectation: about 5 standard deviations at these counts.
        let near = |count: u64, expected: f64| (count as f64 - expected).abs() < 0.15 * expected;

        let (out, inj) = run_rx("drop=0.1,seed=1", n);
        assert!(near(inj.counters().dropped, p * n as f64), "{:?}", inj.counters());
        assert_eq!(out.len() as u64, n as u64 - inj.counters().dropped);

        let (out, inj) = run_rx("dup=0.1,seed=2", n);
        assert!(near(inj.counters().duplicated, p * n as f64), "{:?}", inj.counters());
        assert_eq!(out.len() as u64, n as u64 + inj.counters().duplicated);

        let (_, inj) = run_rx("corrupt=0.1,seed=3", n);
        assert!(near(inj.counters().corrupted, p * n as f64), "{:?}", inj.counters());

        let (_, inj) = run_rx("delay=0.1,seed=4", n);
        assert!(near(inj.counters().delayed, p * n as f64), "{:?}", inj.counters());

        // The frame after a waiting one always overtakes it and cannot wait itself,
        // so a fraction p / (1 + p) of frames are overtaken.
        let (out, inj) = run_rx("reorder=0.1,seed=5", n);
        assert!(near(inj.counters().reordered, p / (1.0 + p) * n as f64), "{:?}", inj.counters());
        let mut numbers: Vec<u32> = out.iter().map(|f| number(f)).collect();
        let out_of_order = numbers.windows(2).filter(|w| w[0] > w[1]).count() as u64;
        assert_eq!(out_of_order, inj.counters().reordered);
        numbers.sort();
        assert_eq!(numbers, (0..n).collect::<Vec<_>>(), "reordering lost or invented frames");
    }

    #[test]
    fn fault_delay_releases_at_the_right_time_and_poll_at_says_when() {
        let (mut inj, mut peer) = rig("delay=1,delay_time=5ms,dir=rx");
        let mut buf = [0u8; 100];
        peer.send(Instant::ZERO, &frame(1, 60)).unwrap();
        assert_eq!(inj.recv(Instant::ZERO, &mut buf).unwrap(), None);
        assert_eq!(inj.poll_at(), Some(Instant::from_millis(5)));
        assert_eq!(inj.recv(Instant::from_micros(4_999), &mut buf).unwrap(), None);
        assert_eq!(inj.recv(Instant::from_millis(5), &mut buf).unwrap(), Some(60));
        assert_eq!(number(&buf), 1);
        assert_eq!(inj.poll_at(), None);
        assert_eq!(inj.rx_counters().delayed, 1);

        // dir=rx: sent frames are untouched.
        inj.send(Instant::from_millis(6), &frame(2, 60)).unwrap();
        assert_eq!(peer.recv(Instant::from_millis(6), &mut buf).unwrap(), Some(60));
    }

    #[test]
    fn fault_delayed_send_goes_out_on_a_later_call() {
        let (mut inj, mut peer) = rig("delay=1,delay_time=2ms,jitter=1ms,dir=tx,seed=9");
        let mut buf = [0u8; 100];
        inj.send(Instant::ZERO, &frame(1, 60)).unwrap();
        assert_eq!(peer.recv(Instant::ZERO, &mut buf).unwrap(), None);
        let due = inj.poll_at().expect("a held frame has a time");
        assert!(due >= Instant::from_millis(2) && due <= Instant::from_millis(3), "{due}");
        inj.recv(Instant::from_micros(due.as_micros() - 1), &mut buf).unwrap();
        assert_eq!(peer.recv(Instant::ZERO, &mut buf).unwrap(), None);
        // The driver's regular recv at the announced time pushes it out.
        assert_eq!(inj.recv(due, &mut buf).unwrap(), None);
        assert_eq!(peer.recv(due, &mut buf).unwrap(), Some(60));
        assert_eq!(inj.tx_counters().delayed, 1);
    }

    #[test]
    fn fault_corrupt_flips_exactly_one_bit_past_the_ethernet_header() {
        let (out, inj) = run_rx("corrupt=1,seed=11", 1000);
        assert_eq!(inj.counters().corrupted, 1000);
        for (i, got) in out.iter().enumerate() {
            let sent = frame(i as u32, 60);
            let flipped: u32 = sent.iter().zip(got).map(|(a, b)| (a ^ b).count_ones()).sum();
            assert_eq!(flipped, 1, "frame {i}");
            assert_eq!(got[..14], sent[..14], "frame {i}: Ethernet header changed");
        }
    }

    #[test]
    fn fault_reorder_swaps_neighbours_and_releases_a_lone_frame() {
        let (out, inj) = run_rx("reorder=1", 6);
        let numbers: Vec<u32> = out.iter().map(|f| number(f)).collect();
        assert_eq!(numbers, [1, 0, 3, 2, 5, 4]);
        assert_eq!(inj.counters().reordered, 3);

        // A frame with nobody to overtake it goes on after REORDER_HOLD.
        let (mut inj, mut peer) = rig("reorder=1");
        let mut buf = [0u8; 100];
        peer.send(Instant::ZERO, &frame(7, 60)).unwrap();
        assert_eq!(inj.recv(Instant::ZERO, &mut buf).unwrap(), None);
        let hold = Instant::ZERO + REORDER_HOLD;
        assert_eq!(inj.poll_at(), Some(hold));
        assert_eq!(inj.recv(hold, &mut buf).unwrap(), Some(60));
        assert_eq!(inj.counters().reordered, 0);
    }

    #[test]
    fn fault_duplicate_and_drop_at_certainty() {
        let (out, _) = run_rx("dup=1", 3);
        let numbers: Vec<u32> = out.iter().map(|f| number(f)).collect();
        assert_eq!(numbers, [0, 0, 1, 1, 2, 2]);
        let (out, inj) = run_rx("drop=1", 50);
        assert!(out.is_empty());
        assert_eq!(inj.counters().dropped, 50);
    }

    #[test]
    fn fault_holds_at_most_max_held_frames() {
        let (mut inj, mut peer) = rig("delay=1,delay_time=1s,dir=tx");
        for i in 0..(MAX_HELD as u32 + 100) {
            inj.send(Instant::ZERO, &frame(i, 60)).unwrap();
        }
        assert_eq!(inj.counters().overflowed, 100);
        assert_eq!(recv_all(&mut inj, Instant::from_secs(1)).len(), 0);
        let through = recv_all(&mut peer, Instant::from_secs(1));
        assert_eq!(through.len(), MAX_HELD);
        assert_eq!(number(&through[MAX_HELD - 1]), MAX_HELD as u32 - 1);
    }

    #[test]
    fn fault_without_faults_is_transparent() {
        let (out, inj) = run_rx("", 100);
        assert_eq!(out, (0..100).map(|i| frame(i, 60)).collect::<Vec<_>>());
        assert_eq!(inj.counters(), FaultCounters::default());
    }

    #[test]
    fn fault_config_out_of_range_in_code_does_not_panic() {
        let (a, mut b) = Wire::pair();
        let config = FaultConfig { drop: f64::NAN, duplicate: 7.0, corrupt: -1.0, ..FaultConfig::default() };
        let mut inj = FaultInjector::new(a, config);
        b.send(Instant::ZERO, &[]).unwrap();
        b.send(Instant::ZERO, &frame(1, 60)).unwrap();
        let out = recv_all(&mut inj, Instant::ZERO);
        assert_eq!(out.len(), 4, "two frames, each duplicated, none dropped");
    }

    #[test]
    fn fault_config_parses_and_round_trips() {
        let c = FaultConfig::parse(
            " drop=0.03, dup=1%,reorder=0.5,delay=0.25,delay_time=1.5ms,jitter=200us,corrupt=0,seed=0x10,dir=tx,",
        )
        .unwrap();
        let expected = FaultConfig {
            drop: 0.03,
            duplicate: 0.01,
            reorder: 0.5,
            delay: 0.25,
            delay_time: Duration::from_micros(1500),
            jitter: Duration::from_micros(200),
            corrupt: 0.0,
            seed: 16,
            direction: Direction::Tx,
        };
        assert_eq!(c, expected);
        assert_eq!(FaultConfig::parse(&c.to_string()).unwrap(), c);
        assert_eq!("".parse::<FaultConfig>().unwrap(), FaultConfig::default());
        assert_eq!(FaultConfig::parse("delay_time=2s").unwrap().delay_time, Duration::from_secs(2));
    }

    #[test]
    fn fault_config_errors_say_what_is_wrong() {
        let err = |s: &str| FaultConfig::parse(s).unwrap_err().to_string();
        assert_eq!(err("drop=1.5"), "drop=1.5: a probability must be between 0 and 1 (0% and 100%)");
        assert_eq!(err("drop=nan"), "drop=nan: a probability must be between 0 and 1 (0% and 100%)");
        assert_eq!(err("drop=x"), "drop=x: expected a probability such as 0.03 or 3%");
        assert!(err("lose=0.1").starts_with("unknown fault 'lose' (keys: drop, dup"));
        assert!(err("drop").starts_with("'drop': expected key=value"));
        assert_eq!(err("delay_time=20"), "delay_time=20: a time needs a unit: us, ms or s");
        assert_eq!(err("jitter=5min"), "jitter=5min: unknown time unit (use us, ms or s)");
        assert_eq!(err("jitter=-5ms"), "jitter=-5ms: a time must be between 0 and one day");
        assert_eq!(err("seed=-1"), "seed=-1: expected an integer (decimal or 0x hex)");
        assert_eq!(err("dir=up"), "dir=up: expected rx, tx or both");
        assert_eq!(err("dup=0.1,duplicate=0.2"), "'duplicate' is given twice");
    }

    /// A link that offloads: what it was sent, with what each asked; what it
    /// hands over, with what it says of each.
    #[derive(Default)]
    struct OffloadLink {
        sent: Vec<(Vec<u8>, TxOffload)>,
        inbound: VecDeque<(Vec<u8>, RxOffload)>,
    }

    impl Device for OffloadLink {
        fn recv(&mut self, _: Instant, _: &mut [u8]) -> io::Result<Option<usize>> {
            unreachable!("an offloading link is read with recv_offloaded")
        }
        fn send(&mut self, _: Instant, _: &[u8]) -> io::Result<()> {
            unreachable!("an offloading link is written with send_offloaded")
        }
        fn recv_offloaded(&mut self, _: Instant, buf: &mut [u8]) -> io::Result<Option<(usize, RxOffload)>> {
            Ok(self.inbound.pop_front().map(|(f, rx)| {
                buf[..f.len()].copy_from_slice(&f);
                (f.len(), rx)
            }))
        }
        fn send_offloaded(&mut self, _: Instant, frame: &[u8], tx: TxOffload) -> io::Result<()> {
            self.sent.push((frame.to_vec(), tx));
            Ok(())
        }
        fn offloads(&self) -> Offloads {
            Offloads::TAP
        }
    }

    #[test]
    fn fault_passes_gso_frames_whole_with_what_the_link_says_of_them() {
        let gso = TxOffload { gso_size: 1448, csum_start: 34, csum_offset: 16 };
        let rx = RxOffload { csum_trusted: true, gso_size: 1448 };
        // Delayed and reordered at certainty: each frame is held, and keeps its offload.
        let cfg = FaultConfig::parse("reorder=1,delay=1,delay_time=1ms,seed=3").unwrap();
        let mut link = OffloadLink::default();
        link.inbound.extend((0..4).map(|i| (frame(i, 60_000), rx)));
        let mut inj = FaultInjector::new(link, cfg);
        assert_eq!(inj.offloads(), Offloads::TAP);
        let mut now = Instant::ZERO;
        for i in 0..4 {
            inj.send_offloaded(now, &frame(i, 30_000), gso).unwrap();
        }
        let mut buf = vec![0u8; crate::offload::MAX_GSO_FRAME];
        let mut got = Vec::new();
        while let Some(t) = inj.poll_at() {
            now = now.max(t);
            while let Some((n, r)) = inj.recv_offloaded(now, &mut buf).unwrap() {
                got.push((number(&buf[..n]), n, r));
            }
        }
        let mut numbers: Vec<u32> = got.iter().map(|g| g.0).collect();
        numbers.sort();
        assert_eq!(numbers, [0, 1, 2, 3]);
        assert!(got.iter().all(|g| g.1 == 60_000 && g.2 == rx), "whole, with their RxOffload");
        let sent = &inj.inner().sent;
        assert_eq!(sent.len(), 4);
        assert!(sent.iter().all(|(f, tx)| f.len() == 30_000 && *tx == gso), "whole, with their TxOffload");
        assert!(inj.counters().reordered > 0 && inj.counters().delayed == 8);
    }

    #[test]
    fn fault_corruption_of_an_offloaded_frame_is_left_for_a_checksum_to_catch() {
        let cfg = FaultConfig::parse("corrupt=1,seed=5").unwrap();
        let rx = RxOffload { csum_trusted: true, gso_size: 1448 };
        let partial = TxOffload { gso_size: 1448, csum_start: 34, csum_offset: 16 };
        let mut link = OffloadLink::default();
        link.inbound.extend((0..20).map(|i| (frame(i, 5000), rx)));
        let mut inj = FaultInjector::new(link, cfg);
        let mut buf = vec![0u8; 8192];
        for i in 0..20 {
            let (n, r) = inj.recv_offloaded(Instant::ZERO, &mut buf).unwrap().expect("a frame");
            assert!(!r.csum_trusted && r.gso_size == 1448, "the stack verifies a corrupted frame's checksum");
            assert_eq!(buf[..n].iter().zip(&frame(i, 5000)).filter(|(a, b)| a != b).count(), 1);
            inj.send_offloaded(Instant::ZERO, &frame(i, 5000), partial).unwrap();
        }
        for (i, (f, tx)) in inj.inner().sent.iter().enumerate() {
            assert_eq!(*tx, partial);
            let hit: Vec<usize> = (0..f.len()).filter(|&b| f[b] != frame(i as u32, 5000)[b]).collect();
            assert!(hit.len() == 1 && (14..34).contains(&hit[0]), "in the IPv4 header: {hit:?}");
        }
    }
}
