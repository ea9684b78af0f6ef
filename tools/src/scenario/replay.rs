//! `tapstack replay`: a fresh stack, built from the scenario, is fed the peer's
//! frames of a capture at their timestamps on the virtual clock while the
//! scenario's application runs; every frame it sends is compared with the one
//! the capture recorded at that point.
//!
//! The comparison is exact in content: every byte of every frame. In time:
//! - A capture made by `tapstack record` holds the stack's own clock (see
//!   `driver.rs`), so each frame must be sent at exactly its recorded
//!   microsecond; the tolerance is zero.
//! - Any other capture (tcpdump or Wireshark on the TAP) was stamped by the
//!   kernel as frames crossed the TAP. The recording stack answered each
//!   frame, and ran each timer, a little after the virtual one does: however
//!   long the process took to be scheduled, which on a busy machine is
//!   milliseconds. So a frame may be sent up to [`FOREIGN_TOLERANCE`]`.early`
//!   (20 ms) before its stamp, and no more than `.late` (1 ms, the capture's
//!   own jitter) after it: a frame that comes later than recorded is a change.
//!   Such a capture also cannot tell the stack's clock reading at a SYN, which
//!   RFC 6528 ISNs depend on, so tapstack's ISN for each connection is taken
//!   from the capture (every other sequence number is still compared). The
//!   TSval of a timestamp option (RFC 7323) follows the clock too: it may differ
//!   by as many milliseconds as the frame's time may (every other option octet,
//!   TSecr included, is still compared). So does the IPv4 identification: a
//!   destination's counter jumps ahead by a random amount up to the
//!   milliseconds it was idle (`stack::ipv4::ident`, as Linux), read on the
//!   stack's clock, which such a capture does not give; the ID (and the header
//!   checksum that covers it) is not compared. A capture of `tapstack record`
//!   compares both exactly.

use super::app::App;
use super::capture::{Capture, Frame};
use super::decode::{differences, Decoder};
use super::driver::Driver;
use super::file::Scenario;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use stack::device::fault::FaultInjector;
use stack::device::Device;
use stack::tcp::Transition;
use stack::time::Instant;
use stack::Stack;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddrV4;
use std::rc::Rc;
use std::time::Duration;

/// How far off its recorded time a frame may be sent.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Tolerance {
    /// Sent this much before the recorded time.
    pub early: Duration,
    /// Sent this much after it.
    pub late: Duration,
}

impl Tolerance {
    pub const EXACT: Tolerance = Tolerance { early: Duration::ZERO, late: Duration::ZERO };

    /// The same bound both ways.
    pub fn symmetric(d: Duration) -> Tolerance {
        Tolerance { early: d, late: d }
    }
}

impl core::fmt::Display for Tolerance {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.early == self.late {
            write!(f, "{} µs", self.early.as_micros())
        } else {
            write!(f, "{} µs early, {} µs late", self.early.as_micros(), self.late.as_micros())
        }
    }
}

/// The time tolerance for a capture that `tapstack record` did not make.
pub const FOREIGN_TOLERANCE: Tolerance = Tolerance { early: Duration::from_millis(20), late: Duration::from_millis(1) };

/// Feeds the peer's frames in at their times and keeps what the stack sends.
pub struct ReplayDevice {
    peer: VecDeque<Frame>,
    sent: Rc<RefCell<Vec<(Instant, Vec<u8>)>>>,
}

impl Device for ReplayDevice {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.peer.front() {
            Some(f) if f.at <= now => {
                let f = self.peer.pop_front().expect("front exists");
                let n = f.data.len().min(buf.len());
                buf[..n].copy_from_slice(&f.data[..n]);
                Ok(Some(n))
            }
            _ => Ok(None),
        }
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.sent.borrow_mut().push((now, frame.to_vec()));
        Ok(())
    }

    fn poll_at(&self) -> Option<Instant> {
        self.peer.front().map(|f| f.at)
    }
}

/// What a replay found.
#[derive(Debug)]
pub struct Outcome {
    /// Frames of the capture: tapstack's and the peer's.
    pub stack_frames: usize,
    pub peer_frames: usize,
    pub tolerance: Tolerance,
    pub own_clock: bool,
    /// The first frame that differs, if one does.
    pub divergence: Option<Divergence>,
    /// tapstack's state transitions in the replay, with times.
    pub transitions: Vec<(Instant, Transition)>,
    /// What the application did.
    pub app_log: Vec<String>,
    /// The capture's first frame: time zero of the report.
    pub start: Instant,
}

#[derive(Debug)]
pub struct Divergence {
    /// Position among tapstack's frames (0-based) and in the whole capture (1-based, as Wireshark numbers).
    pub stack_index: usize,
    pub capture_number: Option<usize>,
    pub expected: Option<Frame>,
    pub sent: Option<(Instant, Vec<u8>)>,
    /// (field, expected, sent); a time outside the tolerance is the field "time".
    pub fields: Vec<(String, String, String)>,
    /// The report, decoded as packet-list lines.
    pub report: String,
}

impl Outcome {
    pub fn matched(&self) -> bool {
        self.divergence.is_none()
    }
}

/// Replays `capture` under `scenario`; `tolerance` overrides the default time tolerance.
pub fn replay(scenario: &Scenario, capture: &Capture, tolerance: Option<Tolerance>) -> Result<Outcome, String> {
    let config = scenario.stack_config()?;
    let mut stack = Stack::new(config)?;
    let start = capture.frames.first().ok_or("the capture has no frames")?.at;
    if !capture.own_clock {
        pin_isns(&mut stack, &capture.frames);
    }
    let tolerance = tolerance.unwrap_or(if capture.own_clock { Tolerance::EXACT } else { FOREIGN_TOLERANCE });
    let app = App::new(&scenario.app, &mut stack, start)?;
    let sent = Rc::new(RefCell::new(Vec::new()));
    let peer: VecDeque<Frame> = capture.frames.iter().filter(|f| !f.from_stack).cloned().collect();
    let dev = ReplayDevice { peer, sent: sent.clone() };
    let end = start + scenario.duration();
    let (transitions, app_log) = match scenario.fault_config()? {
        Some(f) => run(Driver::new(stack, app, FaultInjector::new(dev, f)), start, end)?,
        None => run(Driver::new(stack, app, dev), start, end)?,
    };
    let sent = sent.take();
    let divergence = compare(&capture.frames, &sent, tolerance, start);
    Ok(Outcome {
        stack_frames: capture.frames.iter().filter(|f| f.from_stack).count(),
        peer_frames: capture.frames.iter().filter(|f| !f.from_stack).count(),
        tolerance,
        own_clock: capture.own_clock,
        divergence,
        transitions,
        app_log,
        start,
    })
}

type Trace = (Vec<(Instant, Transition)>, Vec<String>);

fn run<D: Device>(mut d: Driver<D>, start: Instant, end: Instant) -> Result<Trace, String> {
    let fail = |e: io::Error| format!("replay stopped: {e}");
    d.start(start).map_err(fail)?;
    while let Some(t) = d.next_event().filter(|&t| t <= end) {
        d.advance(t).map_err(fail)?;
    }
    Ok((d.transitions, d.app.log))
}

/// Takes each connection's ISN on tapstack's side from its SYN in the capture.
fn pin_isns(stack: &mut Stack, frames: &[Frame]) {
    for f in frames.iter().filter(|f| f.from_stack) {
        let Ok(p) = SlicedPacket::from_ethernet(&f.data) else { continue };
        let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) = (&p.net, &p.transport) else { continue };
        if t.syn() {
            let h = ip.header();
            let local = SocketAddrV4::new(h.source_addr(), t.source_port());
            let remote = SocketAddrV4::new(h.destination_addr(), t.destination_port());
            stack.tcp().0.pin_isn(local, remote, t.sequence_number());
        }
    }
}

fn secs(t: Instant, start: Instant) -> String {
    format!("{:.6}", t.saturating_duration_since(start).as_secs_f64())
}

/// Finds the first of tapstack's frames that differs from the capture.
fn compare(capture: &[Frame], sent: &[(Instant, Vec<u8>)], tolerance: Tolerance, start: Instant) -> Option<Divergence> {
    let expected: Vec<(usize, &Frame)> = capture.iter().enumerate().filter(|(_, f)| f.from_stack).collect();
    for i in 0..expected.len().max(sent.len()) {
        let e = expected.get(i);
        let s = sent.get(i);
        let mut fields = match (e, s) {
            (Some((_, e)), Some((_, data))) => differences(&e.data, data),
            _ => Vec::new(),
        };
        if let (Some((_, e)), Some((_, data))) = (e, s) {
            if tolerance != Tolerance::EXACT && tsval_within(&e.data, data, tolerance) {
                fields.retain(|(n, _, _)| n != "tcp.options" && n != "tcp.checksum");
            }
        }
        if tolerance != Tolerance::EXACT {
            // The IPv4 ID follows the clock too (see the module's documentation).
            fields.retain(|(n, _, _)| n != "ip.id" && n != "ip.checksum");
        }
        if let (Some((_, e)), Some((at, _))) = (e, s) {
            let (late, early) = (at.saturating_duration_since(e.at), e.at.saturating_duration_since(*at));
            if late > tolerance.late || early > tolerance.early {
                let off = if late > Duration::ZERO {
                    format!("{} µs late", late.as_micros())
                } else {
                    format!("{} µs early", early.as_micros())
                };
                fields.push(("time".into(), secs(e.at, start), format!("{} ({off})", secs(*at, start))));
            }
        }
        if fields.is_empty() && e.is_some() && s.is_some() {
            continue;
        }
        let report = report(capture, i, e.map(|(n, _)| *n), s, &fields, start);
        return Some(Divergence {
            stack_index: i,
            capture_number: e.map(|(n, _)| n + 1),
            expected: e.map(|(_, f)| (*f).clone()),
            sent: s.cloned(),
            fields,
            report,
        });
    }
    None
}

/// Whether two TCP frames' options differ only in TSval, and by no more
/// milliseconds than the time tolerance allows (sent early: a smaller TSval).
fn tsval_within(expected: &[u8], sent: &[u8], tolerance: Tolerance) -> bool {
    let options = |frame: &[u8]| {
        let p = SlicedPacket::from_ethernet(frame).ok()?;
        let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) = (&p.net, &p.transport) else { return None };
        let h = ip.header();
        let seg = stack::tcp::segment::parse(h.source_addr(), h.destination_addr(), t.slice()).ok()?;
        Some(seg.options)
    };
    let (Some(mut e), Some(mut s)) = (options(expected), options(sent)) else { return false };
    let (Some((ev, ee)), Some((sv, se))) = (e.timestamp, s.timestamp) else { return false };
    let ahead = sv.wrapping_sub(ev) as i32 as i64;
    let (early, late) = (tolerance.early.as_millis() as i64 + 1, tolerance.late.as_millis() as i64 + 1);
    e.timestamp = None;
    s.timestamp = None;
    ee == se && e == s && (-early..=late).contains(&ahead)
}

/// The divergence, as a person reads it: the frames before it, the expected
/// and the sent frame as packet-list lines, and the fields that differ side by side.
fn report(
    capture: &[Frame],
    stack_index: usize,
    capture_index: Option<usize>,
    sent: Option<&(Instant, Vec<u8>)>,
    fields: &[(String, String, String)],
    start: Instant,
) -> String {
    let mut out = String::new();
    // Decode the capture up to the divergence so that sequence numbers are
    // relative to the ISNs seen so far.
    let upto = capture_index.unwrap_or(capture.len());
    let mut dec = Decoder::default();
    let line = |label: &str, no: String, at: Instant, info: String| {
        format!("  {label:<8} {no:>5}  {:>10}  {info}", secs(at, start))
    };
    let lines: Vec<String> = capture[..upto]
        .iter()
        .enumerate()
        .map(|(n, f)| line("", (n + 1).to_string(), f.at, dec.line(&f.data)))
        .collect();
    let _ = writeln!(
        out,
        "first divergence at tapstack's frame {} (capture frame {}):",
        stack_index + 1,
        capture_index.map_or("-".to_string(), |n| (n + 1).to_string())
    );
    let _ = writeln!(
        out,
        "  {:<8} {:>5}  {:>10}  Info (Seq and Ack relative to each side's ISN; Win as sent)",
        "", "No.", "Time"
    );
    for l in lines.iter().skip(lines.len().saturating_sub(6)) {
        let _ = writeln!(out, "{l}");
    }
    let mut sent_dec = dec.clone();
    match capture_index.map(|n| &capture[n]) {
        Some(e) => {
            let _ = writeln!(out, "{}", line("expected", (upto + 1).to_string(), e.at, dec.line(&e.data)));
        }
        None => {
            let _ = writeln!(out, "  expected (nothing: the capture has no more frames from tapstack)");
        }
    }
    match sent {
        Some((at, data)) => {
            let _ = writeln!(out, "{}", line("sent", String::new(), *at, sent_dec.line(data)));
        }
        None => {
            let _ = writeln!(out, "  sent     (nothing: the stack sent no such frame)");
        }
    }
    if !fields.is_empty() {
        let w = fields.iter().map(|(n, _, _)| n.len()).max().unwrap_or(5).max(5);
        let v = fields.iter().map(|(_, e, _)| e.len().min(40)).max().unwrap_or(8).max(8);
        let _ = writeln!(out, "  {:<w$}  {:<v$}  sent", "field", "expected");
        for (n, e, s) in fields {
            let _ = writeln!(out, "  {n:<w$}  {:<v$}  {}", clip(e), clip(s));
        }
    }
    out
}

/// `s` cut to 40 characters (characters, not bytes: a capture's text may be
/// any UTF-8, and cutting inside a character would panic).
fn clip(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(39).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clipping_counts_characters_so_multibyte_text_never_panics() {
        let s = "é".repeat(50);
        assert_eq!(clip(&s), format!("{}…", "é".repeat(39)));
        assert_eq!(clip("short"), "short");
    }
}
