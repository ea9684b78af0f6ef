//! `tapstack record`: makes a scenario's capture afresh.
//!
//! - A kernel peer: a network namespace of its own with a TAP; the Linux end
//!   gets the peer's address, tapstack runs on the other end under the
//!   [`Driver`] with the real clock, and the scenario's command runs in the
//!   namespace. After `duration_ms` the capture is written and the namespace
//!   deleted (on failure too).
//! - A tapstack peer: two stacks on an in-memory wire in virtual time.
//!
//! The capture is taken on the wire side of the fault injector (what crossed
//! the TAP); the replay puts the same seeded injector between the stack and the
//! capture. Written beside it: `NAME.trace`, tapstack's state transitions in the
//! format of `tapstack up --trace`, seconds from the capture's first frame.

use super::app::App;
use super::capture::{write_pcapng, Frame, Recorder};
use super::driver::Driver;
use super::file::{PeerKind, Scenario};
use crate::lab::{open_tap, TAP_NAME};
use crate::netns::Netns;
use stack::device::fault::FaultInjector;
use stack::device::Device;
use stack::tcp::Transition;
use stack::time::Instant;
use stack::Stack;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a recording made.
#[derive(Debug)]
pub struct Recording {
    pub frames: Vec<Frame>,
    pub transitions: Vec<(Instant, Transition)>,
    pub app_log: Vec<String>,
    /// The peer command's output, for a kernel peer.
    pub peer_output: String,
}

/// Where to write a recording, and whether to run tcpdump on the TAP too.
#[derive(Clone, Debug, Default)]
pub struct RecordOptions {
    /// Also capture with `tcpdump -w` on the Linux end of the TAP, into this file.
    pub tcpdump: Option<PathBuf>,
}

/// Records `scenario`.
pub fn record(scenario: &Scenario, opts: &RecordOptions) -> Result<Recording, String> {
    match scenario.peer.kind {
        PeerKind::Kernel => record_kernel(scenario, opts),
        PeerKind::Tapstack => {
            if opts.tcpdump.is_some() {
                return Err("a tapstack peer talks over an in-memory wire: there is no TAP for tcpdump".into());
            }
            record_pair(scenario)
        }
    }
}

/// Writes `NAME.pcapng` and `NAME.trace` into `dir`; returns their paths.
pub fn save(scenario: &Scenario, rec: &Recording, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let pcap = dir.join(format!("{}.pcapng", scenario.name));
    let trace = dir.join(format!("{}.trace", scenario.name));
    write_pcapng(&pcap, &rec.frames, &format!("scenario {}: {}", scenario.name, scenario.description))
        .map_err(|e| e.to_string())?;
    let start = rec.frames.first().map_or(Instant::ZERO, |f| f.at);
    stack::device::pcap::create_output(&trace)
        .and_then(|mut f| std::io::Write::write_all(&mut f, trace_text(&rec.transitions, start).as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", trace.display()))?;
    Ok((pcap, trace))
}

/// Transitions as `tapstack up --trace` prints them: `[seconds] transition`.
pub fn trace_text(transitions: &[(Instant, Transition)], start: Instant) -> String {
    let mut out = String::new();
    for (at, t) in transitions {
        let _ = writeln!(out, "[{:>10.6}] {t}", at.saturating_duration_since(start).as_secs_f64());
    }
    out
}

/// The real clock as the stack's: microseconds since the Unix epoch, advanced
/// by the monotonic clock so that it never goes back.
struct RealClock {
    base: u64,
    mono: std::time::Instant,
}

impl RealClock {
    fn new() -> RealClock {
        let base = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        RealClock { base, mono: std::time::Instant::now() }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.base + self.mono.elapsed().as_micros() as u64)
    }
}

/// Kills the peer command (and what it started) if the recording ends first.
struct PeerCommand(Option<Child>);

impl Drop for PeerCommand {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn record_kernel(scenario: &Scenario, opts: &RecordOptions) -> Result<Recording, String> {
    let mut stack = Stack::new(scenario.stack_config()?)?;
    let ns = Netns::create("tapstack-rec")?;
    let tap = open_tap(&ns, scenario.peer.addr, scenario.stack.prefix_len)?;
    let tcpdump = match &opts.tcpdump {
        Some(path) => Some(start_tcpdump(&ns, path)?),
        None => None,
    };
    let clock = RealClock::new();
    let start = clock.now();
    let app = App::new(&scenario.app, &mut stack, start)?;
    let recorder = Recorder::new(tap, stack.config().mac);
    let faults = scenario.fault_config()?.unwrap_or_default();
    let mut d = Driver::new(stack, app, FaultInjector::new(recorder, faults));
    let fail = |e: io::Error| format!("recording stopped: {e}");
    d.start(start).map_err(fail)?;
    let end = start + scenario.duration();
    let command_at = start + Duration::from_millis(scenario.peer.start_ms);
    let mut peer = PeerCommand(None);
    let fd = d.dev.readable_fd().ok_or("the TAP has no file descriptor")?;
    loop {
        let now = clock.now();
        if now >= end {
            break;
        }
        if peer.0.is_none() && now >= command_at {
            let cmd = scenario.peer.run.as_deref().ok_or("a kernel peer needs `run`")?;
            let child = ns
                .command("sh")
                .args(["-c", cmd])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot run the peer command: {e}"))?;
            peer.0 = Some(child);
        }
        let mut wake = d.timer_at().map_or(end, |t| t.min(end));
        if peer.0.is_none() {
            wake = wake.min(command_at);
        }
        wait_readable(fd, wake.saturating_duration_since(now)).map_err(fail)?;
        d.advance_live(|| clock.now()).map_err(fail)?;
    }
    let peer_output = match peer.0.take() {
        Some(mut child) => {
            let finished = child.try_wait().ok().flatten().is_some();
            if !finished {
                let _ = child.kill();
            }
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text += &String::from_utf8_lossy(&out.stderr);
            if !finished {
                text += "\n(the peer command was still running at the end of the recording and was stopped)";
            }
            text
        }
        None => String::new(),
    };
    let frames = std::mem::take(&mut d.dev.inner_mut().frames);
    let (transitions, app_log) = (d.transitions, d.app.log);
    // In order: the TAP closes, tcpdump writes out its file, the namespace goes.
    drop(d.dev);
    drop(tcpdump);
    drop(ns);
    Ok(Recording { frames, transitions, app_log, peer_output })
}

/// Waits until `fd` is readable or `timeout` has passed.
fn wait_readable(fd: RawFd, timeout: Duration) -> io::Result<()> {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let ts =
        libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask change.
    let r = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// tcpdump on the Linux end of the TAP, stopped (and its file flushed) when dropped.
struct Tcpdump(Child);

impl Drop for Tcpdump {
    fn drop(&mut self) {
        // SIGINT makes tcpdump write out what it buffered.
        // SAFETY: signalling a child we started and still own.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let _ = self.0.wait();
    }
}

fn start_tcpdump(ns: &Netns, path: &Path) -> Result<Tcpdump, String> {
    use std::io::{BufRead, BufReader};
    let mut child = ns
        .command("tcpdump")
        .args(["-i", TAP_NAME, "-U", "-n", "-w"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run tcpdump (install it): {e}"))?;
    // tcpdump says "listening on" once its capture is open: no frame is missed after that.
    let stderr = child.stderr.take().ok_or("tcpdump has no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    match lines.next() {
        Some(Ok(l)) if l.contains("listening on") => {}
        other => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("tcpdump did not start: {other:?}"));
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Ok(Tcpdump(child))
}

/// Frames in flight on an in-memory wire, with their arrival times.
type Queue = Rc<RefCell<VecDeque<(Instant, Vec<u8>)>>>;

/// One end of an in-memory wire in virtual time: frames sent arrive at the
/// other end `delay` later.
struct PairEnd {
    inbox: Queue,
    outbox: Queue,
    delay: Duration,
}

impl Device for PairEnd {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut inbox = self.inbox.borrow_mut();
        match inbox.front() {
            Some((at, _)) if *at <= now => {
                let (_, f) = inbox.pop_front().expect("front exists");
                let n = f.len().min(buf.len());
                buf[..n].copy_from_slice(&f[..n]);
                Ok(Some(n))
            }
            _ => Ok(None),
        }
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.outbox.borrow_mut().push_back((now + self.delay, frame.to_vec()));
        Ok(())
    }

    fn poll_at(&self) -> Option<Instant> {
        self.inbox.borrow().front().map(|(at, _)| *at)
    }
}

/// Where the virtual clock of a recording between two tapstacks starts: 2026-01-01 00:00:00 UTC.
pub const VIRTUAL_START: Instant = Instant::from_secs(1_767_225_600);

fn record_pair(scenario: &Scenario) -> Result<Recording, String> {
    let a_to_b = Queue::default();
    let b_to_a = Queue::default();
    let delay = Duration::from_micros(scenario.peer.wire_delay_us.unwrap_or(100));
    let end_a = PairEnd { inbox: b_to_a.clone(), outbox: a_to_b.clone(), delay };
    let end_b = PairEnd { inbox: a_to_b, outbox: b_to_a, delay };
    // Virtual time starts at a fixed date, so that recording again gives the
    // same capture byte for byte (ISNs follow the clock, RFC 6528).
    let start = VIRTUAL_START;
    let mut a = Stack::new(scenario.stack_config()?)?;
    let mut b = Stack::new(scenario.peer_config()?)?;
    let app_a = App::new(&scenario.app, &mut a, start)?;
    let app_b = App::new(&scenario.peer.app.clone().unwrap_or_default(), &mut b, start)?;
    let faults = scenario.fault_config()?.unwrap_or_default();
    let mac = a.config().mac;
    let mut da = Driver::new(a, app_a, FaultInjector::new(Recorder::new(end_a, mac), faults));
    let mut db = Driver::new(b, app_b, end_b);
    let fail = |e: io::Error| format!("recording stopped: {e}");
    da.start(start).map_err(fail)?;
    db.start(start).map_err(fail)?;
    let end = start + scenario.duration();
    loop {
        let next = stack::time::earliest(da.next_event(), db.next_event());
        let Some(t) = next.filter(|&t| t <= end) else { break };
        da.advance(t).map_err(fail)?;
        db.advance(t).map_err(fail)?;
    }
    let frames = std::mem::take(&mut da.dev.inner_mut().frames);
    Ok(Recording { frames, transitions: da.transitions, app_log: da.app.log, peer_output: db.app.log.join("\n") })
}
