//! A passive TCP state inspector: reads a capture of any TCP traffic (two Linux
//! hosts, a Wireshark capture, a tapstack conversation), groups its segments into
//! connections, and infers each side's RFC 9293 state over time (section 3.3.2,
//! Figure 5) as an observer on the wire would, annotating the segments the state
//! machine does not expect (retransmissions, out-of-window segments, resets,
//! segments after close, duplicate ACKs, zero-window probes, keep-alives).
//!
//! - [`capture`]: frames out of pcap and pcapng files of any link type [`crate::link`] reads.
//! - [`segment`]: TCP segments out of those frames, read by the core's parser.
//! - [`observer`]: the state inference for one connection.
//! - [`timeline`]: the per-segment text view (`tapstack states --timeline`).
//! - [`trace`]: tapstack's own trace files, and comparing them with the inference.
//! - [`diagram`]: the state diagram with the transitions taken (`tapstack states --out`).
//!
//! - [`analysis`]: what each segment is, in Wireshark's terms (retransmission,
//!   out-of-order, previous segment not captured, window update...).
//! - [`tsg`], [`ladder`]: pictures of one connection (time-sequence graph, ladder).
//!
//! What a capture cannot show: a timer that fires without sending anything. The
//! side that closed first stays in TIME-WAIT in the report (its 2MSL expiry is
//! silent), and a FIN-WAIT-2 timeout is not seen either. Nor can it show that a
//! segment arrived until its receiver acknowledges it: a transition that rests on
//! a segment never acknowledged in the capture is reported as unconfirmed.

pub mod analysis;
pub mod capture;
pub mod command;
pub mod diagram;
pub mod ladder;
pub mod observer;
pub mod segment;
pub mod svg;
pub mod timeline;
pub mod trace;
pub mod tsg;

#[cfg(test)]
mod tests;

use capture::{Capture, Next};
use observer::Observer;
use segment::{Captured, Read as HowRead, Segment, Skip};
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
    /// False when it rests on a segment that the capture never shows acknowledged
    /// (the capture ends first): the side may or may not have made it.
    pub confirmed: bool,
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

    /// The last state, confirmed or not.
    pub fn final_state(&self) -> State {
        self.changes.last().map_or(self.initial, |c| c.to)
    }

    /// The last state the capture confirms.
    pub fn confirmed_state(&self) -> State {
        self.changes.iter().rev().find(|c| c.confirmed).map_or(self.initial, |c| c.to)
    }
}

/// One captured segment, as the timeline shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentLine {
    /// The frame's number in the capture, as Wireshark shows it.
    pub frame: u64,
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
    /// False when no SYN told the window scale: `win` is then the field as sent.
    pub win_scaled: bool,
    /// SACK blocks, relative to the receiver of the SACKed data (the sender of this segment's peer).
    pub sack: Vec<(u32, u32)>,
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
    /// Duplicate ACKs each side sent: (RFC 5681 section 2's count, which needs
    /// outstanding data; Wireshark's, which does not).
    pub dup_acks: [(u64, u64); 2],
    /// The handshake's round-trip time (SYN to the ACK of the SYN,ACK), seconds.
    pub irtt: Option<f64>,
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
    /// Frames that could not be read as TCP although they may be: cut inside
    /// their headers, malformed, of a link type not read, unreadable.
    pub malformed: u64,
    /// The first [`SKIPPED_LISTED`] of those: frame number and why.
    pub skipped: Vec<(u64, String)>,
    /// TCP segments whose payload the capture cut short (a snap length): read
    /// from their headers, payload length from the IP header.
    pub cut_short: u64,
    /// TCP segments with IP length 0 (TSO on the capturing sender): length from the frame.
    pub length_from_frame: u64,
    /// The link types of the frames read, LINKTYPE_ numbers, in order of first appearance.
    pub links: Vec<u32>,
}

impl Inspection {
    /// Every transition the capture confirms, of every connection's both sides:
    /// what the diagram counts. Each is taken once, from its side's changes (a
    /// TIME-WAIT ended by a new SYN is also listed in its connection's
    /// `trailer`, for the timeline, and must not count twice); what the capture
    /// cannot confirm is not drawn as taken.
    pub fn transitions(&self) -> Vec<(State, State, Cause)> {
        self.connections
            .iter()
            .flat_map(|c| c.sides.iter().flat_map(|s| s.changes.iter()))
            .filter(|c| c.confirmed)
            .map(|c| (c.from, c.to, c.cause))
            .collect()
    }
}

/// How many skipped frames [`Inspection::skipped`] lists by number.
pub const SKIPPED_LISTED: usize = 100;

/// Reads and inspects a pcap or pcapng capture.
pub fn inspect_pcap(path: impl AsRef<Path>) -> Result<Inspection, String> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| format!("capture {}: {e}", path.display()))?;
    inspect_reader(std::io::BufReader::new(file)).map_err(|e| format!("capture {}: {e}", path.display()))
}

/// Inspects a pcap or pcapng capture read from `reader` (a file, bytes in memory).
pub fn inspect_reader(reader: impl Read) -> Result<Inspection, String> {
    let mut capture = Capture::new(reader)?;
    let mut inspector = Inspector::default();
    loop {
        match capture.next_record() {
            Next::Frame(f) => inspector.frame(Captured {
                number: f.number,
                ts: f.ts,
                link: f.link,
                data: f.data,
                orig_len: f.orig_len,
            }),
            Next::Skip(number, why) => inspector.skip(number, why),
            Next::End => break,
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
    /// Takes in one captured frame.
    pub fn frame(&mut self, frame: Captured<'_>) {
        self.stats.frames += 1;
        let t0 = *self.t0.get_or_insert(frame.ts);
        if !self.stats.links.contains(&frame.link) {
            self.stats.links.push(frame.link);
        }
        match segment::parse(frame) {
            Ok(seg) => self.segment(seg, t0),
            Err(Skip::NotTcp) => self.stats.other_frames += 1,
            Err(Skip::Malformed(why)) => {
                self.stats.frames -= 1;
                self.skip(frame.number, why)
            }
        }
    }

    /// A frame that could not be read: counted and, up to a bound, listed.
    pub fn skip(&mut self, number: u64, why: String) {
        self.stats.frames += 1;
        self.stats.malformed += 1;
        if self.stats.skipped.len() < SKIPPED_LISTED {
            self.stats.skipped.push((number, why));
        }
    }

    fn segment(&mut self, seg: Segment, t0: Duration) {
        self.stats.tcp_segments += 1;
        match seg.read {
            HowRead::Whole => {}
            HowRead::CutShort => self.stats.cut_short += 1,
            HowRead::LengthFromFrame => self.stats.length_from_frame += 1,
        }
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
