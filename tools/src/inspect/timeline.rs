//! The timeline: each connection's segments one per line, with the states both
//! sides go through in the event/action notation of RFC 9293 Figure 5. Sequence
//! and acknowledgment numbers are relative to each side's ISN, as Wireshark shows
//! them, so a handshake reads seq=0, ack=1.

use super::trace::{connections, TraceEvent};
use super::{Change, ConnectionReport, Inspection};
use std::fmt::Write;

const SIDE: [&str; 2] = ["A", "B"];

fn change(side: usize, c: &Change) -> String {
    format!("{}: {} -> {} ({})", SIDE[side], c.from, c.to, c.cause)
}

/// The segment columns are this wide; continuation lines are indented to match.
const COLUMNS: usize = 72;

/// One connection's timeline.
pub fn connection(out: &mut String, n: usize, c: &ConnectionReport) {
    let [a, b] = &c.sides;
    let _ =
        writeln!(out, "connection {n}: A = {} (starts {}), B = {} (starts {})", a.addr, a.initial, b.addr, b.initial);
    let _ = writeln!(
        out,
        "  {:>10}  {:<5}  {:<13} {:>10} {:>10} {:>8} {:>6}   notes and state changes",
        "time", "dir", "flags", "seq", "ack", "win", "len"
    );
    for s in &c.segments {
        let dir = if s.from == 0 { "A > B" } else { "B > A" };
        let ack = s.ack.map_or("-".to_string(), |a| a.to_string());
        let mut line = format!(
            "  {:>10.6}  {dir}  {:<13} {:>10} {:>10} {:>8} {:>6}",
            s.time,
            format!("[{}]", s.flags),
            s.seq,
            ack,
            s.win,
            s.len
        );
        let notes: String = s.notes.iter().map(|n| format!(" [{n}]")).collect();
        line.push_str(&notes);
        for (i, (side, ch)) in s.changes.iter().enumerate() {
            if i == 0 {
                line.push_str("   ");
            } else {
                line.push('\n');
                line.push_str(&" ".repeat(COLUMNS + 3));
            }
            line.push_str(&change(*side, ch));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for (side, ch) in &c.trailer {
        let _ = writeln!(out, "  {:>10.6}  (a new connection's SYN)   {}", ch.time, change(*side, ch));
    }
    let _ = writeln!(out, "  final states: A {}, B {}", a.final_state(), b.final_state());
    for note in &c.notes {
        let _ = writeln!(out, "  note: {note}");
    }
}

/// The whole capture's timeline.
pub fn render(inspection: &Inspection) -> String {
    let mut out = String::new();
    for (i, c) in inspection.connections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        connection(&mut out, i + 1, c);
    }
    let _ = writeln!(
        out,
        "\n{} frames: {} TCP segments in {} connection(s), {} other frames, {} malformed or unreadable",
        inspection.frames,
        inspection.tcp_segments,
        inspection.connections.len(),
        inspection.other_frames,
        inspection.malformed
    );
    out
}

/// A trace's timeline: each traced connection's transitions.
pub fn render_trace(events: &[TraceEvent]) -> String {
    let mut out = String::new();
    for (i, c) in connections(events).iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "connection {} ({}): {} -> {}", i + 1, c.conn, c.local, c.remote);
        let width = c.events.iter().map(|e| e.from.name().len()).max().unwrap_or(0);
        for e in &c.events {
            let _ = writeln!(out, "  {:>10.6}  {:>width$} -> {:<12} ({})", e.time, e.from.name(), e.to.name(), e.cause);
        }
    }
    let listeners = events.iter().filter(|e| e.is_listener()).count();
    let _ = writeln!(out, "\n{} transition(s), {} of them listeners' own", events.len(), listeners);
    out
}
