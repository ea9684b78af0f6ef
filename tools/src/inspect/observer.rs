//! The passive observer: follows one connection's segments and infers each
//! side's RFC 9293 state (section 3.3.2, Figure 5) from what it sends and receives.
//!
//! A side's state changes when *it* sends or receives a segment, but a capture
//! taken anywhere shows only when a segment passed the capture point, not when
//! the other end got it. So a segment that occupies sequence space (SYN, text,
//! FIN) is taken as received by its destination when that side first shows it
//! has it: when it sends a segment acknowledging it, and the change is shown on
//! that segment's row. A segment that occupies no sequence space (a bare ACK, an
//! RST) cannot be acknowledged: it is taken as received when captured if nothing
//! sent before it in its direction is still unacknowledged, and otherwise right
//! after those segments, once they are acknowledged (segments are assumed not to
//! overtake each other). Whatever is still unacknowledged when the capture ends
//! is taken as received at its own time, and what it changes is marked
//! unconfirmed. This is what lets simultaneous open and simultaneous close (RFC
//! 9293 Figures 7 and 13) come out right from a capture taken at either end.
//!
//! Receiving follows the order of section 3.10.7.4: the RST bit, the SYN bit,
//! the ACK field (ACK of SYN, ACK of FIN), then the FIN. A FIN that acknowledges
//! our FIN in FIN-WAIT-1 therefore goes FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT, as
//! tapstack's own state machine does.
//!
//! Causes are the core's [`Cause`] values, the ones tapstack's state machine
//! writes in its trace, so inferred and traced transitions can be compared.
//! Sequence numbers are the core's [`Seq`], compared modulo 2^32.

use super::analysis::{Flow, Kind, DEFAULT_REORDER_WINDOW};
use super::segment::Segment;
use super::{Change, ConnectionReport, SegmentLine, SideReport};
use stack::tcp::{Cause, Seq, State};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

/// A segment on its way to a side, not yet known to have arrived.
#[derive(Clone, Debug)]
struct Pending {
    line: usize,
    seg: Segment,
    /// Relative sequence number just past the segment.
    end: Seq,
    /// False when the receiver would refuse it (outside its window, already
    /// acknowledged, an RST not at RCV.NXT): it then changes no state.
    acceptable: bool,
}

/// What the observer knows about one end. Sequence numbers in it are relative
/// (a [`Seq`] counted from the ISN, as Wireshark shows them): to its own ISN for
/// what it sends, to the peer's ISN for what it acknowledges.
#[derive(Clone, Debug)]
struct Side {
    addr: SocketAddr,
    state: State,
    initial: State,
    changes: Vec<Change>,
    isn: Option<Seq>,
    syn_sent: bool,
    synack_sent: bool,
    /// Reached SYN-RECEIVED from LISTEN (an RST then returns it to LISTEN, RFC 9293 MUST-11).
    passive: bool,
    /// Highest relative sequence number sent plus its length (SND.MAX).
    snd_end: Option<Seq>,
    /// Relative sequence number of our FIN.
    fin: Option<Seq>,
    fin_received: bool,
    /// Highest acknowledgment sent: the observer's estimate of RCV.NXT.
    acked: Option<Seq>,
    /// Window last advertised, scaled.
    win: Option<u32>,
    /// Window scale offered on our SYN.
    ws: Option<u8>,
    /// Our SYN (or SYN,ACK) was captured, so `ws` is known.
    syn_seen: bool,
    /// RFC 5681 duplicate ACKs in a row, and in all; Wireshark's count in all.
    dup_acks: u32,
    dup_acks_total: u64,
    dup_acks_wireshark: u64,
    /// Our sequence space as the capture saw it.
    flow: Flow,
    /// Text received after our FIN was sent (tapstack then answers with an RST).
    text_after_close: bool,
    /// Segments from the peer on their way to this side.
    pending: VecDeque<Pending>,
}

impl Side {
    fn new(addr: SocketAddr, state: State) -> Side {
        Side {
            addr,
            state,
            initial: state,
            changes: Vec::new(),
            isn: None,
            syn_sent: false,
            synack_sent: false,
            passive: false,
            snd_end: None,
            fin: None,
            fin_received: false,
            acked: None,
            win: None,
            ws: None,
            syn_seen: false,
            dup_acks: 0,
            dup_acks_total: 0,
            dup_acks_wireshark: 0,
            flow: Flow::default(),
            text_after_close: false,
            pending: VecDeque::new(),
        }
    }

    /// `seq` relative to this side's ISN (to 0 before the ISN is known).
    fn rel(&self, seq: Seq) -> Seq {
        seq - self.isn.unwrap_or_default().0
    }
}

/// One connection being followed. `sides[0]` sent the first segment seen (the
/// SYN, usually: the active opener).
#[derive(Debug)]
pub struct Observer {
    sides: [Side; 2],
    lines: Vec<SegmentLine>,
    notes: Vec<String>,
    trailer: Vec<(usize, Change)>,
    /// Capture time that relative times count from.
    t0: Duration,
    /// False while the capture's end delivers what was never acknowledged.
    confirming: bool,
    /// When the first SYN was sent, and the handshake's round-trip time (SYN to
    /// the ACK of the SYN,ACK, Wireshark's iRTT).
    syn_time: Option<f64>,
    irtt: Option<f64>,
    /// Segments whose window was shown unscaled because no SYN told the scale.
    unscaled: usize,
}

/// Segments waiting for their receiver's acknowledgement, per side. Beyond it
/// (a capture of one direction only, say) the oldest is dropped unconfirmed.
pub const PENDING_MAX: usize = 4096;

impl Observer {
    /// Starts following the connection that `first` opens (or is in the middle of).
    pub fn new(first: &Segment, t0: Duration) -> Observer {
        let (a, b, mut notes) = if first.syn && !first.ack_flag {
            (Side::new(first.src, State::Closed), Side::new(first.dst, State::Listen), Vec::new())
        } else if first.syn {
            let mut b = Side::new(first.dst, State::SynSent);
            b.syn_sent = true;
            (Side::new(first.src, State::Listen), b, vec!["the capture starts after the SYN".to_string()])
        } else {
            let note = "the capture starts in the middle of the connection: both sides taken as ESTABLISHED";
            (Side::new(first.src, State::Established), Side::new(first.dst, State::Established), vec![note.to_string()])
        };
        if !first.syn && first.rst {
            notes.push("the first segment seen is an RST".to_string());
        }
        Observer {
            sides: [a, b],
            lines: Vec::new(),
            notes,
            trailer: Vec::new(),
            t0,
            confirming: true,
            syn_time: None,
            irtt: None,
            unscaled: 0,
        }
    }

    pub fn endpoints(&self) -> (SocketAddr, SocketAddr) {
        (self.sides[0].addr, self.sides[1].addr)
    }

    /// Whether a SYN from `seg.src` starts a new connection on this tuple rather
    /// than belonging to this one: its sender already has another ISN here.
    pub fn is_new_syn(&self, seg: &Segment) -> bool {
        if !seg.syn || seg.ack_flag || seg.rst {
            return false;
        }
        let s = &self.sides[self.index(seg.src)];
        s.isn.is_some_and(|isn| isn != seg.seq)
    }

    fn index(&self, addr: SocketAddr) -> usize {
        usize::from(self.sides[0].addr != addr)
    }

    fn time(&self, ts: Duration) -> f64 {
        ts.saturating_sub(self.t0).as_secs_f64()
    }

    fn set(&mut self, side: usize, to: State, cause: Cause, time: f64, line: usize) {
        let from = self.sides[side].state;
        if from == to {
            return;
        }
        let change = Change { time, from, to, cause, confirmed: self.confirming };
        self.sides[side].state = to;
        self.sides[side].changes.push(change.clone());
        if let Some(l) = self.lines.get_mut(line) {
            l.changes.push((side, change));
        }
    }

    fn note(&mut self, line: usize, note: &str) {
        if let Some(l) = self.lines.get_mut(line) {
            if !l.notes.iter().any(|n| n == note) {
                l.notes.push(note.to_string());
            }
        }
    }

    /// The shift of a side's windows, `None` when the capture cannot tell.
    /// Window scaling applies only when both SYNs carried the option (RFC 7323
    /// section 2.2), and a SYN,ACK carries it only if the SYN did; so one SYN
    /// without it, or our SYN,ACK, is enough to know.
    fn shift(&self, side: usize) -> Option<u8> {
        let (me, peer) = (&self.sides[side], &self.sides[1 - side]);
        let off = (me.syn_seen && me.ws.is_none()) || (peer.syn_seen && peer.ws.is_none());
        if off {
            return Some(0);
        }
        let mine = me.ws.map(|s| s.min(14));
        match (me.syn_seen, peer.syn_seen) {
            (true, true) => mine,
            (true, false) if me.synack_sent => mine,
            _ => None,
        }
    }

    /// Follows one more segment of this connection.
    pub fn segment(&mut self, seg: &Segment) {
        let s = self.index(seg.src);
        let r = 1 - s;
        let time = self.time(seg.ts);
        if self.sides[s].isn.is_none() {
            self.sides[s].isn = Some(if seg.syn { seg.seq } else { seg.seq - 1 });
        }
        if seg.ack_flag && self.sides[r].isn.is_none() {
            self.sides[r].isn = Some(seg.ack - 1);
        }
        let seq = self.sides[s].rel(seg.seq);
        let ack = self.sides[r].rel(seg.ack);
        // A SYN's window is never scaled; an RST's advertises nothing, so it is shown as sent.
        let shift = if seg.syn || seg.rst { Some(0) } else { self.shift(s) };
        let line = self.lines.len();
        let sack = seg.sack.iter().map(|&(a, b)| (self.sides[r].rel(a).0, self.sides[r].rel(b).0)).collect();
        self.lines.push(SegmentLine {
            frame: seg.number,
            time,
            from: s,
            flags: seg.flags(),
            seq: seq.0,
            ack: seg.ack_flag.then_some(ack.0),
            win: u32::from(seg.win) << shift.unwrap_or(0),
            win_scaled: shift.is_some(),
            len: seg.len,
            sack,
            notes: Vec::new(),
            changes: Vec::new(),
        });
        if shift.is_none() {
            self.unscaled += 1;
        }
        if seg.ack_flag && !seg.syn && ack == Seq(1) && self.irtt.is_none() {
            self.irtt = self.syn_time.map(|t| time - t);
        }
        // What this segment acknowledges had arrived before it was sent.
        if seg.ack_flag {
            while let Some(p) = self.sides[s].pending.front() {
                if p.end > ack {
                    break;
                }
                let p = self.sides[s].pending.pop_front().expect("front exists");
                self.deliver(s, &p, time, line, seg.syn);
            }
        }
        self.send(s, seg, seq, ack, time, line);
        let acceptable = self.acceptable(r, seg, seq, line);
        let end = seq + seg.seq_len();
        let pending = Pending { line, seg: seg.clone(), end, acceptable };
        // A bare segment waits behind what its sender sent before it that the
        // receiver has not acknowledged yet.
        if seg.seq_len() > 0 || !self.sides[r].pending.is_empty() {
            if self.sides[r].pending.len() == PENDING_MAX {
                self.sides[r].pending.pop_front();
                self.note_once("more than 4096 segments never acknowledged in the capture: the oldest were taken as lost (a capture of one direction only?)");
            }
            self.sides[r].pending.push_back(pending);
        } else {
            self.deliver(r, &pending, time, line, false);
        }
    }

    fn note_once(&mut self, note: &str) {
        if !self.notes.iter().any(|n| n == note) {
            self.notes.push(note.to_string());
        }
    }

    /// The sender's side of a segment: the transitions that sending it shows
    /// (active OPEN, SYN,ACK, CLOSE, ABORT) and what kind of segment it is.
    fn send(&mut self, s: usize, seg: &Segment, seq: Seq, ack: Seq, time: f64, line: usize) {
        let was_closed = self.sides[s].state == State::Closed && !self.sides[s].changes.is_empty();
        if was_closed && !seg.rst {
            self.note(line, "segment after close");
        }
        if seg.syn && !seg.ack_flag {
            self.send_syn(s, seg, time, line);
        }
        if seg.syn && seg.ack_flag {
            self.send_syn_ack(s, seg, time, line);
        }
        if seg.rst {
            self.send_rst(s, time, line);
        }
        if seg.fin && !seg.rst {
            self.send_fin(s, seg, seq, time, line);
        }
        if !seg.syn && !seg.rst {
            self.note_resent_or_probe(s, seg, seq, time, line);
        }
        // Scaled with the shift known now: a SYN just sent may have set it.
        let win = u32::from(seg.win) << if seg.syn { 0 } else { self.shift(s).unwrap_or(0) };
        self.note_window(s, seg, seq, ack, win, line);
        self.note_dup_ack(s, seg, ack, win, line);
        self.record_sent(s, seg, seq, ack, win);
    }

    /// Notes a zero window, and a window update: a bare ACK that only changes
    /// the window (Wireshark's terms; RFC 9293 section 3.8.6.2.2 sends it).
    fn note_window(&mut self, s: usize, seg: &Segment, seq: Seq, ack: Seq, win: u32, line: usize) {
        if !seg.ack_flag || seg.syn || seg.fin || seg.rst {
            return;
        }
        let side = &self.sides[s];
        if win == 0 {
            self.note(line, "zero window");
        } else if seg.len == 0
            && side.acked == Some(ack)
            && side.win.is_some_and(|w| w != win)
            && side.snd_end.is_none_or(|e| e == seq)
        {
            self.note(line, "window update");
        }
    }

    /// A SYN without ACK: an active OPEN, or its retransmission.
    fn send_syn(&mut self, s: usize, seg: &Segment, time: f64, line: usize) {
        if self.sides[s].syn_sent {
            self.note(line, "retransmission");
            return;
        }
        self.sides[s].syn_sent = true;
        self.sides[s].syn_seen = true;
        self.sides[s].ws = seg.wscale;
        self.syn_time = Some(self.time(seg.ts));
        if self.sides[s].state == State::Listen && self.sides[s].changes.is_empty() {
            // Taken to be listening, it opens too: a simultaneous open (RFC 9293 Figure 7).
            self.sides[s].state = State::Closed;
            self.sides[s].initial = State::Closed;
        }
        match self.sides[s].state {
            State::Closed => self.set(s, State::SynSent, Cause::ActiveOpen, time, line),
            st => self.note(line, &format!("SYN sent in {st}")),
        }
    }

    /// A SYN,ACK: the answer to a SYN (which the capture may have missed).
    fn send_syn_ack(&mut self, s: usize, seg: &Segment, time: f64, line: usize) {
        if self.sides[s].synack_sent {
            self.note(line, "retransmission");
            return;
        }
        self.sides[s].synack_sent = true;
        if !self.sides[s].syn_seen {
            self.sides[s].ws = seg.wscale;
            self.sides[s].syn_seen = true;
        }
        match self.sides[s].state {
            // The SYN it answers was not captured.
            State::Listen | State::SynSent => {
                if self.sides[s].state == State::Listen {
                    self.sides[s].passive = true;
                }
                self.set(s, State::SynReceived, Cause::RcvSynSndSynAck, time, line)
            }
            State::SynReceived | State::Established => {}
            st => self.note(line, &format!("SYN,ACK sent in {st}")),
        }
    }

    /// An RST sent: a refusal, an abort, or the answer to data after CLOSE.
    fn send_rst(&mut self, s: usize, time: f64, line: usize) {
        let side = &self.sides[s];
        match side.state {
            State::Listen if side.changes.is_empty() => {
                // Nobody listens: RFC 9293 section 3.10.7.1 answers with an RST.
                self.sides[s].state = State::Closed;
                self.sides[s].initial = State::Closed;
                self.note(line, "connection refused");
            }
            State::Closed | State::Listen => self.note(line, "RST for a closed connection"),
            State::SynSent => self.set(s, State::Closed, Cause::Abort, time, line),
            _ => {
                let cause = if side.fin.is_some() && side.text_after_close {
                    Cause::RcvDataAfterClose
                } else {
                    Cause::AbortSndRst
                };
                self.set(s, State::Closed, cause, time, line);
            }
        }
    }

    /// A FIN sent: the CLOSE, or its retransmission.
    fn send_fin(&mut self, s: usize, seg: &Segment, seq: Seq, time: f64, line: usize) {
        let fin = seq + seg.len + u32::from(seg.syn);
        match self.sides[s].fin {
            Some(f) if f == fin => self.note(line, "retransmission"),
            Some(_) => self.note(line, "FIN at another sequence number"),
            None => {
                self.sides[s].fin = Some(fin);
                match self.sides[s].state {
                    State::SynReceived | State::Established => {
                        self.set(s, State::FinWait1, Cause::CloseSndFin, time, line)
                    }
                    State::CloseWait => self.set(s, State::LastAck, Cause::CloseSndFin, time, line),
                    st => self.note(line, &format!("FIN sent in {st}")),
                }
            }
        }
    }

    /// Notes what a segment is in its sender's sequence space: a keep-alive, a
    /// zero-window probe, a retransmission (fast after two duplicate ACKs,
    /// spurious if already acknowledged), out-of-order, or after a gap.
    fn note_resent_or_probe(&mut self, s: usize, seg: &Segment, seq: Seq, time: f64, line: usize) {
        let peer = &self.sides[1 - s];
        let (peer_acked, peer_win, peer_dups) = (peer.acked, peer.win, peer.dup_acks);
        if let Some(end) = self.sides[s].snd_end {
            // A keep-alive re-sends the last octet already acknowledged, or
            // nothing at SND.NXT-1 (RFC 9293 section 3.8.4); with a zero window
            // the same segment is Linux's zero-window probe.
            let keepalive = seg.len <= 1 && !seg.fin && seq == end - 1 && peer_acked.is_some_and(|a| a == end);
            if keepalive {
                return self.note(line, if peer_win == Some(0) { "zero-window probe" } else { "keep-alive" });
            }
        }
        let space = seg.len + u32::from(seg.fin);
        if space == 0 {
            return;
        }
        let window = self.irtt.unwrap_or(DEFAULT_REORDER_WINDOW);
        let kind = self.sides[s].flow.classify(seq, seq + space, time, window);
        match kind {
            Kind::Retransmission if peer_acked.is_some_and(|a| seq + space <= a) => {
                self.note(line, "spurious retransmission")
            }
            Kind::Retransmission => {
                self.note(line, "retransmission");
                // RFC 5681 section 3.2: the third duplicate ACK triggers it (Linux
                // may go sooner, on SACK information, RFC 6675).
                if peer_dups >= 2 && peer_acked == Some(seq) {
                    self.note(line, "fast retransmission");
                }
            }
            other => {
                if let Some(note) = other.note() {
                    self.note(line, note);
                }
                if seg.len > 0 && peer_win == Some(0) && peer_acked == Some(seq) {
                    // RFC 9293 section 3.8.6.1: probing a zero window with new data.
                    self.note(line, "zero-window probe");
                }
            }
        }
    }

    /// Counts duplicate ACKs as RFC 5681 section 2 defines them: no data, no
    /// SYN or FIN, the same acknowledgment and window as before, while data is
    /// outstanding. Wireshark does not ask for outstanding data but for a
    /// window other than zero; its count is kept beside, for the summary.
    fn note_dup_ack(&mut self, s: usize, seg: &Segment, ack: Seq, win: u32, line: usize) {
        let peer_end = self.sides[1 - s].snd_end;
        let side = &self.sides[s];
        let pure = seg.ack_flag && seg.len == 0 && !seg.syn && !seg.fin && !seg.rst;
        let outstanding = peer_end.is_some_and(|e| ack < e);
        let same = pure && side.acked == Some(ack) && side.win == Some(win);
        let new_ack = side.acked != Some(ack);
        if same && win != 0 {
            self.sides[s].dup_acks_wireshark += 1;
        }
        if same && outstanding {
            self.sides[s].dup_acks += 1;
            self.sides[s].dup_acks_total += 1;
            let n = self.sides[s].dup_acks;
            self.note(line, &format!("dup ACK #{n}"));
        } else if seg.ack_flag && new_ack {
            self.sides[s].dup_acks = 0;
        }
    }

    /// What sending the segment tells of the sender: SND.MAX, and its estimated
    /// RCV.NXT and window.
    fn record_sent(&mut self, s: usize, seg: &Segment, seq: Seq, ack: Seq, win: u32) {
        let side = &mut self.sides[s];
        let end = seq + seg.seq_len();
        if !seg.rst {
            side.snd_end = Some(side.snd_end.map_or(end, |e| e.max(end)));
        }
        // An RST's window and acknowledgment advertise nothing.
        if seg.ack_flag && !seg.rst {
            side.acked = Some(side.acked.map_or(ack, |a| a.max(ack)));
            side.win = Some(win);
        }
    }

    /// Whether the receiver would accept the segment (RFC 9293 section 3.10.7.4,
    /// first check; RFC 5961 section 3.2 for RSTs); notes why not.
    fn acceptable(&mut self, r: usize, seg: &Segment, seq: Seq, line: usize) -> bool {
        let rx = &self.sides[r];
        let (Some(rcv_nxt), Some(wnd)) = (rx.acked, rx.win) else {
            return true;
        };
        if seg.syn || !rx.state.is_synchronized() && rx.state != State::SynReceived {
            return true;
        }
        // Without the receiver's window scale its window is unknown: nothing
        // can be judged outside it.
        let known = self.shift(r).is_some();
        if seg.rst {
            // RCV.NXT is the last acknowledgment sent, or past everything the
            // sender sent if that arrived unacknowledged.
            if seq == rcv_nxt || self.sides[1 - r].snd_end == Some(seq) {
                return true;
            }
            // With the window unknown, an RST not at RCV.NXT may be in it or not;
            // either way it is refused, and one in the window is challenged.
            let note = if !known || seq.in_range(rcv_nxt, rcv_nxt + wnd.max(1)) {
                "RST not at RCV.NXT: challenge ACK expected (RFC 5961 section 3.2)"
            } else {
                "RST out of window"
            };
            self.note(line, note);
            return false;
        }
        let end = seq + seg.seq_len();
        if seg.seq_len() > 0 && end <= rcv_nxt {
            // Entirely acknowledged already: a retransmission, nothing new.
            return false;
        }
        if !known {
            return true;
        }
        let right = rcv_nxt + wnd;
        if seg.len > 0 && right < seq + seg.len || seg.fin && right < seq {
            let zwp = self.lines.get(line).is_some_and(|l| l.notes.iter().any(|n| n == "zero-window probe"));
            if !zwp {
                self.note(line, "out-of-window");
            }
            // Text beyond the window is trimmed, but what is inside is kept.
            return seq < right;
        }
        true
    }

    /// The receiver's side: the segment has arrived at `r` (`by_syn_ack`: as `r`
    /// acknowledged it with a SYN,ACK, which shows a listener took the SYN).
    /// Changes are stamped `time` and shown on line `at`. The checks go in the
    /// order of RFC 9293 section 3.10.7.4: RST, SYN, the ACK field, FIN.
    fn deliver(&mut self, r: usize, p: &Pending, time: f64, at: usize, by_syn_ack: bool) {
        if !p.acceptable {
            return;
        }
        let seg = &p.seg;
        let ack = self.sides[r].rel(seg.ack);
        let state = self.sides[r].state;
        let ever = !self.sides[r].changes.is_empty() || self.sides[r].initial != State::Listen;
        if seg.rst {
            return self.deliver_rst(r, p, ack, ever, time, at);
        }
        if state == State::Closed && ever {
            // Unconfirmed, it may as well never have arrived: nothing to say.
            if self.confirming {
                self.note(p.line, "segment after close");
            }
            return;
        }
        if seg.syn && !seg.ack_flag {
            return self.deliver_syn(r, p, time, at, by_syn_ack);
        }
        if !seg.ack_flag || !self.deliver_ack(r, p, ack, time, at) {
            return;
        }
        if seg.fin && !self.sides[r].fin_received {
            self.deliver_fin(r, time, at);
        }
    }

    /// An acceptable RST has arrived at `r` (`ever`: `r` has been more than a listener).
    fn deliver_rst(&mut self, r: usize, p: &Pending, ack: Seq, ever: bool, time: f64, at: usize) {
        let state = self.sides[r].state;
        match state {
            State::SynSent if p.seg.ack_flag && ack == Seq(1) => {
                self.note(p.line, "connection refused");
                self.set(r, State::Closed, Cause::RcvRst, time, at);
            }
            State::SynSent => self.note(p.line, "RST without an acceptable ACK, ignored"),
            State::SynReceived if self.sides[r].passive => self.set(r, State::Listen, Cause::RcvRst, time, at),
            State::Listen | State::Closed => {
                if ever && state == State::Closed {
                    self.note(p.line, "segment after close");
                }
            }
            State::SynReceived | State::Closing | State::LastAck | State::TimeWait => {
                self.set(r, State::Closed, Cause::RcvRst, time, at)
            }
            _ => {
                self.note(p.line, "connection reset");
                self.set(r, State::Closed, Cause::RcvRst, time, at);
            }
        }
    }

    /// A SYN without ACK has arrived at `r`.
    fn deliver_syn(&mut self, r: usize, p: &Pending, time: f64, at: usize, by_syn_ack: bool) {
        match self.sides[r].state {
            State::Listen if by_syn_ack => {
                self.sides[r].passive = true;
                self.set(r, State::SynReceived, Cause::RcvSynSndSynAck, time, at);
            }
            // Simultaneous open (RFC 9293 Figure 7); tapstack answers with SYN,ACK.
            State::SynSent => self.set(r, State::SynReceived, Cause::RcvSynSndSynAck, time, at),
            State::Listen | State::SynReceived => {}
            _ => self.note(p.line, "unexpected SYN"),
        }
    }

    /// The ACK field of a segment that has arrived at `r`: the ACK of our SYN,
    /// of our FIN. `false` when the connection is over (LAST-ACK to CLOSED), so
    /// the rest of the segment is not looked at.
    fn deliver_ack(&mut self, r: usize, p: &Pending, ack: Seq, time: f64, at: usize) -> bool {
        let seg = &p.seg;
        let state = self.sides[r].state;
        if seg.syn {
            match state {
                State::SynSent if ack == Seq(1) => self.set(r, State::Established, Cause::RcvSynAckSndAck, time, at),
                State::SynSent => self.note(p.line, "SYN,ACK with an unacceptable ACK"),
                State::SynReceived if ack == Seq(1) => self.set(r, State::Established, Cause::RcvAckOfSyn, time, at),
                _ => {}
            }
        } else if state == State::SynReceived && Seq(1) <= ack {
            self.set(r, State::Established, Cause::RcvAckOfSyn, time, at);
        }
        let Some(fin) = self.sides[r].fin else { return true };
        if fin < ack {
            match self.sides[r].state {
                State::FinWait1 => self.set(r, State::FinWait2, Cause::RcvAckOfFin, time, at),
                State::Closing => self.set(r, State::TimeWait, Cause::RcvAckOfFin, time, at),
                State::LastAck => {
                    self.set(r, State::Closed, Cause::RcvAckOfFin, time, at);
                    return false;
                }
                _ => {}
            }
        }
        if seg.len > 0 {
            self.sides[r].text_after_close = true;
        }
        true
    }

    /// The first FIN from the peer has arrived at `r`.
    fn deliver_fin(&mut self, r: usize, time: f64, at: usize) {
        self.sides[r].fin_received = true;
        match self.sides[r].state {
            State::SynReceived | State::Established => self.set(r, State::CloseWait, Cause::RcvFinSndAck, time, at),
            State::FinWait1 => self.set(r, State::Closing, Cause::RcvFinSndAck, time, at),
            State::FinWait2 => self.set(r, State::TimeWait, Cause::RcvFinSndAck, time, at),
            _ => {}
        }
    }

    /// A new connection on this tuple starts with `syn`: a side still in
    /// TIME-WAIT leaves it the way tapstack does (RFC 9293 section 3.10.7.4 with
    /// RFC 1122 section 4.2.2.13).
    pub fn reopened(&mut self, syn: &Segment) {
        let time = self.time(syn.ts);
        let s = self.index(syn.src);
        for (side, cause) in [(s, Cause::ReuseTimeWait), (1 - s, Cause::RcvSynReopen)] {
            if self.sides[side].state == State::TimeWait {
                let change = Change { time, from: State::TimeWait, to: State::Closed, cause, confirmed: true };
                self.sides[side].state = State::Closed;
                self.sides[side].changes.push(change.clone());
                self.trailer.push((side, change));
            }
        }
    }

    /// Ends the observation: what is still in flight is taken as received at its
    /// own time, and the report is made.
    pub fn finish(mut self) -> ConnectionReport {
        let mut rest: Vec<(usize, Pending)> = Vec::new();
        for r in 0..2 {
            rest.extend(self.sides[r].pending.drain(..).map(|p| (r, p)));
        }
        rest.sort_by_key(|(_, p)| p.line);
        self.confirming = false;
        for (r, p) in rest {
            let time = self.lines[p.line].time;
            self.deliver(r, &p, time, p.line, false);
        }
        if self.sides.iter().any(|s| s.changes.iter().any(|c| !c.confirmed)) {
            self.notes.push(
                "transitions marked unconfirmed rest on segments the capture never shows acknowledged: \
                 the capture ends first, and they may never have arrived"
                    .to_string(),
            );
        }
        if self.unscaled > 0 {
            self.notes.push(format!(
                "no SYN tells the window scale: {} segment(s) show their window as sent (unscaled, marked ?), \
                 and none is judged out of window",
                self.unscaled
            ));
        }
        for side in &self.sides {
            if side.state == State::TimeWait {
                self.notes.push(format!(
                    "{} stays in TIME-WAIT: its 2MSL timeout (timeout=2MSL) sends nothing, so no capture can show it",
                    side.addr
                ));
            }
        }
        let dup_acks = [0, 1].map(|i| (self.sides[i].dup_acks_total, self.sides[i].dup_acks_wireshark));
        let sides = self.sides.map(|s| SideReport { addr: s.addr, initial: s.initial, changes: s.changes });
        ConnectionReport {
            sides,
            segments: self.lines,
            notes: self.notes,
            trailer: self.trailer,
            dup_acks,
            irtt: self.irtt,
        }
    }
}
