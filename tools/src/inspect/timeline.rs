//! The timeline: each connection's segments one per line, with the states both
//! sides go through in the event/action notation of RFC 9293 Figure 5. Sequence
//! and acknowledgment numbers are relative to each side's ISN, as Wireshark shows
//! them, so a handshake reads seq=0, ack=1.

use super::trace::{connections, TraceEvent};
use super::{Change, ConnectionReport, Inspection};
use std::fmt::Write;

const SIDE: [&str; 2] = ["A", "B"];

fn change(side: usize, c: &Change) -> String {
    let mark = if c.confirmed { "" } else { " [unconfirmed]" };
    format!("{}: {} -> {} ({}){mark}", SIDE[side], c.from, c.to, c.cause)
}

/// The segment columns are this wide; every note and state change starts here,
/// one to a line.
const COLUMNS: usize = 81;

/// One connection's timeline.
pub fn connection(out: &mut String, n: usize, c: &ConnectionReport) {
    let [a, b] = &c.sides;
    let _ =
        writeln!(out, "connection {n}: A = {} (starts {}), B = {} (starts {})", a.addr, a.initial, b.addr, b.initial);
    let _ = writeln!(
        out,
        "  {:>7}  {:>10}  {:<5}  {:<13} {:>10} {:>10} {:>8} {:>6}   notes and state changes",
        "frame", "time", "dir", "flags", "seq", "ack", "win", "len"
    );
    for s in &c.segments {
        let dir = if s.from == 0 { "A > B" } else { "B > A" };
        let ack = s.ack.map_or("-".to_string(), |a| a.to_string());
        let win = if s.win_scaled { s.win.to_string() } else { format!("{}?", s.win) };
        let mut line = format!(
            "  {:>7}  {:>10.6}  {dir}  {:<13} {:>10} {:>10} {:>8} {:>6}",
            s.frame,
            s.time,
            format!("[{}]", s.flags),
            s.seq,
            ack,
            win,
            s.len
        );
        let mut items: Vec<String> = s.notes.iter().map(|n| format!("[{n}]")).collect();
        if !s.sack.is_empty() {
            let blocks: Vec<String> = s.sack.iter().map(|(l, r)| format!("{l}-{r}")).collect();
            items.push(format!("[SACK {}]", blocks.join(" ")));
        }
        items.extend(s.changes.iter().map(|(side, ch)| change(*side, ch)));
        for (i, item) in items.iter().enumerate() {
            if i == 0 {
                line.push_str("   ");
            } else {
                line.push('\n');
                line.push_str(&" ".repeat(COLUMNS + 3));
            }
            line.push_str(item);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for (side, ch) in &c.trailer {
        let _ = writeln!(out, "  {:>7}  {:>10.6}  (a new connection's SYN)   {}", "", ch.time, change(*side, ch));
    }
    let fin = |s: &super::SideReport| {
        let (last, sure) = (s.final_state(), s.confirmed_state());
        if last == sure {
            last.to_string()
        } else {
            format!("{sure} (then {last}, unconfirmed)")
        }
    };
    let _ = writeln!(out, "  final states: A {}, B {}", fin(a), fin(b));
    for note in &c.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    let [(ra, wa), (rb, wb)] = c.dup_acks;
    if ra + wa + rb + wb > 0 {
        let _ = writeln!(
            out,
            "  duplicate ACKs: A {ra}, B {rb} as RFC 5681 section 2 counts them (data outstanding); \
             Wireshark, which does not ask for outstanding data, counts A {wa}, B {wb}"
        );
    }
}

/// The whole capture's timeline; `only`: just that connection (1-based).
pub fn render(inspection: &Inspection, only: Option<usize>) -> String {
    let mut out = String::new();
    for (i, c) in inspection.connections.iter().enumerate() {
        if only.is_some_and(|n| n != i + 1) {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        connection(&mut out, i + 1, c);
    }
    summary(&mut out, inspection);
    out
}

/// What the capture held, and what could not be read, by frame number.
pub fn summary(out: &mut String, inspection: &Inspection) {
    let links: Vec<String> = inspection.links.iter().map(|&l| crate::link::describe(l)).collect();
    let _ = writeln!(
        out,
        "\n{} frames ({}): {} TCP segments in {} connection(s), {} other frames, {} skipped",
        inspection.frames,
        links.join(", "),
        inspection.tcp_segments,
        inspection.connections.len(),
        inspection.other_frames,
        inspection.malformed
    );
    if inspection.cut_short > 0 {
        let _ = writeln!(
            out,
            "{} segment(s) cut short by the capture's snap length: read from their headers, lengths from the IP header",
            inspection.cut_short
        );
    }
    if inspection.length_from_frame > 0 {
        let _ = writeln!(
            out,
            "{} segment(s) with IP length 0 (TSO, captured on the sender): lengths taken from the frame",
            inspection.length_from_frame
        );
    }
    for (frame, why) in &inspection.skipped {
        let _ = writeln!(out, "skipped frame {frame}: {why}");
    }
    let unlisted = inspection.malformed.saturating_sub(inspection.skipped.len() as u64);
    if unlisted > 0 {
        let _ = writeln!(out, "... and {unlisted} more skipped frame(s)");
    }
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
