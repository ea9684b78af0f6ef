//! The ladder (sequence) diagram of one connection: the two sides as columns,
//! time going down, each segment an arrow from its sender labelled with its
//! flags and relative Seq/Ack/Len, and beside each column the state that side
//! enters. A long connection shows its first and last [`KEEP`] segments, the
//! middle elided.
//!
//! Rows are evenly spaced, not to scale in time: a capture shows when a segment
//! passed the capture point, not when it left or arrived, so the arrows are
//! drawn slanting by a fixed amount.

use super::svg::Svg;
use super::{Change, ConnectionReport, SegmentLine};
use crate::inspect::trace::TracedConnection;

/// Segments shown at each end of a long connection.
pub const KEEP: usize = 30;

const WIDTH: f64 = 1000.0;
const COL: [f64; 2] = [300.0, 780.0];
const TOP: f64 = 110.0;
const ROW: f64 = 44.0;
const SLANT: f64 = 16.0;

/// What a row of the diagram is.
enum Row<'a> {
    Segment(&'a SegmentLine),
    /// The middle of a long connection, left out: how many segments, which
    /// frames, how many state changes among them.
    Elided {
        count: usize,
        first: u64,
        last: u64,
        changes: usize,
    },
}

fn rows(c: &ConnectionReport) -> Vec<Row<'_>> {
    let n = c.segments.len();
    if n <= 2 * KEEP + 1 {
        return c.segments.iter().map(Row::Segment).collect();
    }
    let middle = &c.segments[KEEP..n - KEEP];
    let mut out: Vec<Row<'_>> = c.segments[..KEEP].iter().map(Row::Segment).collect();
    out.push(Row::Elided {
        count: middle.len(),
        first: middle[0].frame,
        last: middle[middle.len() - 1].frame,
        changes: middle.iter().map(|s| s.changes.len()).sum(),
    });
    out.extend(c.segments[n - KEEP..].iter().map(Row::Segment));
    out
}

/// The label of a segment's arrow, as the timeline writes its columns.
fn label(s: &SegmentLine) -> String {
    let mut out = format!("[{}] seq={}", s.flags, s.seq);
    if let Some(a) = s.ack {
        out.push_str(&format!(" ack={a}"));
    }
    let win = if s.win_scaled { s.win.to_string() } else { format!("{}?", s.win) };
    out.push_str(&format!(" win={win} len={}", s.len));
    out
}

/// The diagram of connection number `n`.
pub fn render(c: &ConnectionReport, n: usize, name: &str) -> String {
    let rows = rows(c);
    let height = TOP + ROW * rows.len() as f64 + 120.0;
    let mut svg = Svg::new(WIDTH, height);
    let title = format!("Ladder diagram: {name}, connection {n}");
    svg.text("title", (WIDTH / 2.0, 28.0), "middle", 16.0, "font-weight:bold", &title);
    for (side, x) in COL.iter().enumerate() {
        let s = &c.sides[side];
        let head = format!("{} {}", ["A", "B"][side], s.addr);
        svg.text("side", (*x, 62.0), "middle", 14.0, "font-weight:bold", &head);
        state_box(&mut svg, side, TOP - 30.0, &s.initial.to_string(), true);
        svg.line("lifeline", (*x, 70.0), (*x, height - 70.0), "stroke:#909090;stroke-width:1.5");
    }
    svg.text("axis", (20.0, 62.0), "start", 11.0, "fill:#404040", "frame  time (s)");
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        match row {
            Row::Segment(s) => segment(&mut svg, s, y),
            Row::Elided { count, first, last, changes } => {
                svg.group("elided", "segments left out");
                svg.rect("elided", (10.0, y - 4.0), (WIDTH - 20.0, ROW - 12.0), "fill:#f0f0f0;stroke:none");
                let text = format!("… {count} segments not shown (frames {first}–{last}, {changes} state change(s)) …");
                svg.text("elided", (WIDTH / 2.0, y + 18.0), "middle", 13.0, "fill:#404040;font-style:italic", &text);
                svg.end();
            }
        }
    }
    let y = TOP + ROW * rows.len() as f64 + 10.0;
    for side in 0..2 {
        let s = &c.sides[side];
        let sure = s.confirmed_state();
        state_box(&mut svg, side, y, &format!("final: {sure}"), true);
        if s.final_state() != sure {
            state_box(&mut svg, side, y + 26.0, &format!("then {}?", s.final_state()), false);
        }
    }
    legend(&mut svg, height - 22.0);
    svg.finish()
}

fn segment(svg: &mut Svg, s: &SegmentLine, y: f64) {
    let (from, to) = (COL[s.from], COL[1 - s.from]);
    svg.group("segment", &format!("frame {}", s.frame));
    svg.text("when", (20.0, y + 12.0), "start", 11.0, "fill:#404040", &format!("{:>5}  {:.6}", s.frame, s.time));
    let style = if s.notes.iter().any(|n| n.contains("retransmission")) {
        "stroke:#d62728;stroke-width:1.6"
    } else if s.flags.contains("RST") {
        "stroke:#8c564b;stroke-width:1.6"
    } else {
        "stroke:#1f5fbf;stroke-width:1.4"
    };
    svg.line("arrow", (from, y), (to, y + SLANT), &format!("{style};marker-end:url(#arrow)"));
    svg.text("label", ((from + to) / 2.0, y - 3.0), "middle", 11.0, "fill:#000000", &label(s));
    if !s.notes.is_empty() {
        let notes = s.notes.join(", ");
        svg.text("note", ((from + to) / 2.0, y + SLANT + 10.0), "middle", 10.0, "fill:#d62728", &notes);
    }
    svg.end();
    for (k, (side, change)) in s.changes.iter().enumerate() {
        state_change(svg, *side, y + 20.0 * k as f64, change);
    }
}

fn state_change(svg: &mut Svg, side: usize, y: f64, c: &Change) {
    let text = if c.confirmed { c.to.to_string() } else { format!("{}?", c.to) };
    state_box(svg, side, y, &text, c.confirmed);
}

/// A state entered, beside the side's column: left of A's, right of B's.
fn state_box(svg: &mut Svg, side: usize, y: f64, text: &str, confirmed: bool) {
    let w = 14.0 + 7.2 * text.chars().count() as f64;
    let x = if side == 0 { COL[0] - 8.0 - w } else { COL[1] + 8.0 };
    let (class, dash) = if confirmed { ("state", "") } else { ("state unconfirmed", "stroke-dasharray:4 3;") };
    svg.group(class, text);
    svg.rect("state-box", (x, y - 2.0), (w, 18.0), &format!("fill:#eef3fb;stroke:#1f5fbf;{dash}"));
    svg.text("state-name", (x + w / 2.0, y + 11.5), "middle", 11.0, "fill:#1f3f7f;font-weight:bold", text);
    svg.end();
}

fn legend(svg: &mut Svg, y: f64) {
    let lines = [
        "arrows: segments, from their sender (red: retransmitted, brown: RST); rows evenly spaced, not to scale in time",
        "boxes: the state a side enters; dashed with ?: unconfirmed (the capture never shows the segment acknowledged)",
    ];
    svg.group("legend", "legend");
    for (i, text) in lines.iter().enumerate() {
        svg.text("legend-label", (WIDTH / 2.0, y - 14.0 + 14.0 * i as f64), "middle", 11.0, "fill:#404040", text);
    }
    svg.end();
}

/// The ladder of a traced connection (`tapstack up --trace`): tapstack's side
/// (A) with the states it traced, the peer (B) without states; each cause's
/// "rcv X" and "snd Y" drawn as arrows in and out.
pub fn render_trace(c: &TracedConnection, n: usize, name: &str) -> String {
    let arrows: usize = c.events.iter().map(|e| trace_arrows(e.cause.as_str()).len().max(1)).sum();
    let height = TOP + ROW * arrows as f64 + 90.0;
    let mut svg = Svg::new(WIDTH, height);
    let title = format!("Ladder diagram: {name}, traced connection {n} ({})", c.conn);
    svg.text("title", (WIDTH / 2.0, 28.0), "middle", 16.0, "font-weight:bold", &title);
    for (side, (x, addr)) in COL.iter().zip([c.local, c.remote]).enumerate() {
        let head = format!("{} {addr}", ["tapstack", "peer"][side]);
        svg.text("side", (*x, 62.0), "middle", 14.0, "font-weight:bold", &head);
        svg.line("lifeline", (*x, 70.0), (*x, height - 50.0), "stroke:#909090;stroke-width:1.5");
    }
    if let Some(first) = c.events.first() {
        state_box(&mut svg, 0, TOP - 30.0, &first.from.to_string(), true);
    }
    let mut row = 0;
    for e in &c.events {
        let y = TOP + ROW * row as f64;
        svg.text("when", (20.0, y + 12.0), "start", 11.0, "fill:#404040", &format!("{:.6}", e.time));
        for (k, (incoming, what)) in trace_arrows(e.cause.as_str()).into_iter().enumerate() {
            let y = TOP + ROW * (row + k) as f64;
            let (from, to) = if incoming { (COL[1], COL[0]) } else { (COL[0], COL[1]) };
            svg.group("segment", what);
            svg.line("arrow", (from, y), (to, y + SLANT), "stroke:#1f5fbf;stroke-width:1.4;marker-end:url(#arrow)");
            svg.text("label", ((from + to) / 2.0, y - 3.0), "middle", 11.0, "fill:#000000", &format!("[{what}]"));
            svg.end();
        }
        state_box(&mut svg, 0, y + 14.0, &e.to.to_string(), true);
        svg.text("note", (COL[0] + 10.0, y + 40.0), "start", 10.0, "fill:#404040", e.cause.as_str());
        row += trace_arrows(e.cause.as_str()).len().max(1);
    }
    legend(&mut svg, height - 22.0);
    svg.finish()
}

/// The segments a cause names: ("rcv SYN,ACK / snd ACK") -> [(in, "SYN,ACK"), (out, "ACK")].
fn trace_arrows(cause: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    for part in cause.split('/').map(str::trim) {
        if let Some(what) = part.strip_prefix("rcv ") {
            out.push((true, what));
        } else if let Some(what) = part.strip_prefix("snd ") {
            out.push((false, what));
        }
    }
    out
}
