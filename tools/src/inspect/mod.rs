//! A passive TCP state inspector: reads a capture of any TCP traffic (two Linux
//! hosts, a Wireshark capture, a tapstack conversation), groups its segments into
//! connections, and infers each side's RFC 9293 state over time (section 3.3.2,
//! Figure 5) as an observer on the wire would, annotating the segments the state
//! machine does not expect (retransmissions, out-of-window segments, resets,
//! segments after close, duplicate ACKs, zero-window probes, keep-alives).
//!
//! - [`segment`]: TCP segments out of Ethernet frames, read by the core's parser.
//! - [`observer`]: the state inference for one connection.
//! - [`timeline`]: the per-segment text view (`tapstack states --timeline`).
//! - [`trace`]: tapstack's own trace files, and comparing them with the inference.
//! - [`diagram`]: the state diagram with the transitions taken (`tapstack states --out`).
//!
//! What a capture cannot show: a timer that fires without sending anything. The
//! side that closed first stays in TIME-WAIT in the report (its 2MSL expiry is
//! silent), and a FIN-WAIT-2 timeout is not seen either.

pub mod command;
pub mod diagram;
pub mod observer;
pub mod segment;
pub mod timeline;
pub mod trace;

#[cfg(test)]
mod tests;

use observer::Observer;
use segment::{Segment, Skip};
use stack::device::pcap::PcapSource;
use stack::tcp::{Cause, State};
use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// One inferred state transition of one side.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// Seconds since the first frame of the capture.
    pub time: f64,
    pub from: State,
    pub to: State,
    /// The event/action, in the notation of RFC 9293 Figure 5 as tapstack's trace writes it.
    pub cause: Cause,
}

/// One side of a connection and the states it went through.
#[derive(Clone, Debug, PartialEq)]
pub struct SideReport {
    pub addr: SocketAddr,
    /// The state it is taken to start in: CLOSED for the opener, LISTEN for the
    /// side that answers the SYN (CLOSED if it refuses it).
    pub initial: State,
    pub changes: Vec<Change>,
}

impl SideReport {
    /// The states in order, the initial one first.
    pub fn states(&self) -> Vec<State> {
        std::iter::once(self.initial).chain(self.changes.iter().map(|c| c.to)).collect()
    }

    pub fn final_state(&self) -> State {
        self.changes.last().map_or(self.initial, |c| c.to)
    }
}

/// One captured segment, as the timeline shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentLine {
    /// Seconds since the first frame of the capture.
    pub time: f64,
    /// Which side sent it (an index into [`ConnectionReport::sides`]).
    pub from: usize,
    pub flags: String,
    /// Relative to the sender's ISN, as Wireshark shows it.
    pub seq: u32,
    /// Relative to the receiver's ISN; `None` without the ACK bit.
    pub ack: Option<u32>,
    /// The window, scaled when both SYNs carried the window scale option.
    pub win: u32,
    pub len: u32,
    /// What the state machine did not expect of it: `retransmission`, `out-of-window`...
    pub notes: Vec<String>,
    /// Transitions inferred at this segment's time, with the side that made them.
    pub changes: Vec<(usize, Change)>,
}

/// One connection: its two sides and its segments.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionReport {
    /// `sides[0]` sent the first segment seen (the active opener, usually).
    pub sides: [SideReport; 2],
    pub segments: Vec<SegmentLine>,
    pub notes: Vec<String>,
    /// Transitions after the last segment (TIME-WAIT ended by a new connection's SYN).
    pub trailer: Vec<(usize, Change)>,
}

impl ConnectionReport {
    /// The side at `local` talking to `remote`, if this connection is theirs.
    pub fn side(&self, local: SocketAddr, remote: SocketAddr) -> Option<&SideReport> {
        match (self.sides[0].addr, self.sides[1].addr) {
            (a, b) if a == local && b == remote => Some(&self.sides[0]),
            (a, b) if b == local && a == remote => Some(&self.sides[1]),
            _ => None,
        }
    }

    /// Every transition of both sides, in time order.
    pub fn transitions(&self) -> impl Iterator<Item = &Change> {
        let mut all: Vec<&Change> = self.sides.iter().flat_map(|s| s.changes.iter()).collect();
        all.sort_by(|a, b| a.time.total_cmp(&b.time));
        all.into_iter()
    }
}

/// What a capture held.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inspection {
    /// In the order of their first segment.
    pub connections: Vec<ConnectionReport>,
    pub frames: u64,
    pub tcp_segments: u64,
    /// Frames that are not TCP (ARP, ICMP, UDP, fragments).
    pub other_frames: u64,
    /// TCP frames cut short or malformed, and frames the capture reader could not return.
    pub malformed: u64,
}

/// Reads and inspects a pcap or pcapng capture.
pub fn inspect_pcap(path: impl AsRef<Path>) -> Result<Inspection, String> {
    inspect_source(PcapSource::open(path.as_ref()).map_err(|e| e.to_string())?)
}

/// Inspects a pcap or pcapng capture read from `reader` (a file, bytes in memory).
pub fn inspect_reader(reader: impl Read) -> Result<Inspection, String> {
    inspect_source(PcapSource::new(reader).map_err(|e| e.to_string())?)
}

fn inspect_source<R: Read>(mut source: PcapSource<R>) -> Result<Inspection, String> {
    let mut inspector = Inspector::default();
    loop {
        match source.next_frame() {
            Ok(Some((ts, frame))) => inspector.frame(ts, frame),
            Ok(None) => break,
            // A frame the reader skips (cut short, another link type) is counted;
            // a fatal error ends the file, which next_frame then reports as the end.
            Err(_) => inspector.unreadable(),
        }
    }
    Ok(inspector.finish())
}

/// Groups frames into connections and follows each one.
#[derive(Debug, Default)]
pub struct Inspector {
    t0: Option<Duration>,
    /// Current connection per tuple (both directions map to it), as an index into `conns`.
    by_tuple: HashMap<(SocketAddr, SocketAddr), usize>,
    conns: Vec<Observer>,
    stats: Inspection,
}

impl Inspector {
    /// Takes in one captured Ethernet frame with its timestamp.
    pub fn frame(&mut self, ts: Duration, frame: &[u8]) {
        self.stats.frames += 1;
        let t0 = *self.t0.get_or_insert(ts);
        match segment::parse_frame(ts, frame) {
            Ok(seg) => self.segment(seg, t0),
            Err(Skip::NotTcp) => self.stats.other_frames += 1,
            Err(Skip::Malformed) => self.stats.malformed += 1,
        }
    }

    fn unreadable(&mut self) {
        self.stats.frames += 1;
        self.stats.malformed += 1;
    }

    fn segment(&mut self, seg: Segment, t0: Duration) {
        self.stats.tcp_segments += 1;
        let key = if seg.src <= seg.dst { (seg.src, seg.dst) } else { (seg.dst, seg.src) };
        let current = self.by_tuple.get(&key).copied();
        let index = match current {
            // A SYN with another ISN on a tuple already seen opens a new
            // connection (RFC 9293 section 3.10.7.4, TIME-WAIT, with RFC 1122 4.2.2.13).
            Some(i) if self.conns[i].is_new_syn(&seg) => {
                self.conns[i].reopened(&seg);
                self.start(key, &seg, t0)
            }
            Some(i) => i,
            None => self.start(key, &seg, t0),
        };
        self.conns[index].segment(&seg);
    }

    fn start(&mut self, key: (SocketAddr, SocketAddr), seg: &Segment, t0: Duration) -> usize {
        self.conns.push(Observer::new(seg, t0));
        let index = self.conns.len() - 1;
        self.by_tuple.insert(key, index);
        index
    }

    /// Ends the inspection and reports every connection.
    pub fn finish(self) -> Inspection {
        let mut out = self.stats;
        out.connections = self.conns.into_iter().map(Observer::finish).collect();
        out
    }
}
