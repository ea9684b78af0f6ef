//! The time-sequence graph of one direction of a connection, as Stevens draws
//! it in TCP/IP Illustrated and tcptrace (Wireshark: Statistics > TCP Stream
//! Graphs > tcptrace): time across, sequence number up.
//!
//! - each segment sent is a vertical bar from its first to just past its last
//!   octet: black when new, red when a retransmission, orange when it arrived
//!   out of order;
//! - the ACK line (green) steps up as the receiver acknowledges;
//! - the receive window's edge (olive), ACK + window, is the ceiling the sender
//!   may not cross;
//! - SACK blocks (purple) are bars at the time of the ACK that carries them.
//!
//! Slow start shows as bars climbing ever faster; a loss as a gap under the bars
//! with the ACK line flat and SACK bars stacking above it; fast retransmit as a
//! red bar at the ACK line; recovery as the ACK line jumping back to the bars.

use super::svg::{self, Svg};
use super::ConnectionReport;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 660.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 110.0;

/// Which side's data to draw: the one that sent more payload (side A on a tie).
pub fn sender(c: &ConnectionReport) -> usize {
    let bytes = |side: usize| c.segments.iter().filter(|s| s.from == side).map(|s| u64::from(s.len)).sum::<u64>();
    usize::from(bytes(1) > bytes(0))
}

/// What a data bar is drawn as.
fn kind(notes: &[String]) -> (&'static str, &'static str) {
    let has = |n: &str| notes.iter().any(|x| x == n);
    if has("retransmission") || has("spurious retransmission") {
        ("retransmission", "stroke:#d62728;stroke-width:2")
    } else if has("out-of-order") {
        ("out-of-order", "stroke:#ff7f0e;stroke-width:2")
    } else {
        ("data", "stroke:#000000;stroke-width:1.5")
    }
}

/// Maps times and sequence numbers to the plot area.
struct Scale {
    t1: f64,
    y1: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        LEFT + t / self.t1 * (WIDTH - LEFT - RIGHT)
    }
    fn y(&self, v: f64) -> f64 {
        HEIGHT - BOTTOM - v.min(self.y1) / self.y1 * (HEIGHT - TOP - BOTTOM)
    }
}

/// The graph of connection number `n` (for the title), for `side`'s data.
pub fn render(c: &ConnectionReport, n: usize, side: usize, name: &str) -> String {
    let r = 1 - side;
    let t0 = c.segments.first().map_or(0.0, |s| s.time);
    let sent: Vec<_> = c.segments.iter().filter(|s| s.from == side).collect();
    let acks: Vec<_> =
        c.segments.iter().filter(|s| s.from == r && s.ack.is_some() && !s.flags.contains("RST")).collect();
    let data_top = sent.iter().map(|s| f64::from(s.seq) + f64::from(s.len)).fold(1.0, f64::max);
    let ack_top = acks.iter().filter_map(|s| s.ack).map(f64::from).fold(1.0, f64::max);
    let t_end = c.segments.last().map_or(0.0, |s| s.time) - t0;
    let scale = Scale { t1: (t_end * 1.02).max(1e-6), y1: data_top.max(ack_top) * 1.08 };
    let mut svg = Svg::new(WIDTH, HEIGHT);
    let title =
        format!("Time-sequence graph: {name}, connection {n}, data from {} to {}", c.sides[side].addr, c.sides[r].addr);
    svg.text("title", (WIDTH / 2.0, 28.0), "middle", 16.0, "font-weight:bold", &title);
    axes(&mut svg, &scale);
    // The window's edge and the ACK line, as steps.
    let mut ack_line = Vec::new();
    let mut win_line = Vec::new();
    for s in &acks {
        let (x, a) = (scale.x(s.time - t0), f64::from(s.ack.unwrap_or(0)));
        let w = a + f64::from(s.win);
        if let (Some(&(_, pa)), Some(&(_, pw))) = (ack_line.last(), win_line.last()) {
            ack_line.push((x, pa));
            win_line.push((x, pw));
        }
        ack_line.push((x, scale.y(a)));
        win_line.push((x, scale.y(w)));
    }
    let end_x = scale.x(t_end);
    if let (Some(&(_, a)), Some(&(_, w))) = (ack_line.last(), win_line.last()) {
        ack_line.push((end_x, a));
        win_line.push((end_x, w));
    }
    svg.polyline("window", &win_line, "stroke:#9a9a20;stroke-width:1.5");
    svg.polyline("ack", &ack_line, "stroke:#2ca02c;stroke-width:1.5");
    for s in &acks {
        let x = scale.x(s.time - t0);
        for &(left, right) in &s.sack {
            svg.line(
                "sack",
                (x, scale.y(f64::from(left))),
                (x, scale.y(f64::from(right))),
                "stroke:#9467bd;stroke-width:2",
            );
        }
    }
    for s in &sent {
        let space = s.len + u32::from(s.flags.contains("SYN")) + u32::from(s.flags.contains("FIN"));
        if space == 0 {
            continue;
        }
        let x = scale.x(s.time - t0);
        let (lo, hi) = (scale.y(f64::from(s.seq)), scale.y(f64::from(s.seq) + f64::from(space)));
        let (class, style) = kind(&s.notes);
        svg.line(class, (x, lo), (x, hi.min(lo - 2.0)), style);
        // tcptrace's little ticks at both ends.
        for y in [lo, hi.min(lo - 2.0)] {
            svg.line("tick", (x - 2.5, y), (x + 2.5, y), style);
        }
        if s.flags.contains("SYN") || s.flags.contains("FIN") {
            let label = if s.flags.contains("SYN") { "SYN" } else { "FIN" };
            svg.text("flag", (x + 4.0, hi - 2.0), "start", 10.0, "fill:#000000", label);
        }
    }
    legend(&mut svg);
    svg.finish()
}

fn axes(svg: &mut Svg, scale: &Scale) {
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
    svg.rect("plot", (x0, y1), (x1 - x0, y0 - y1), "fill:none;stroke:#808080");
    for t in svg::ticks(0.0, scale.t1, 8) {
        let x = scale.x(t);
        svg.line("grid", (x, y0), (x, y1), "stroke:#e8e8e8");
        svg.text("axis", (x, y0 + 16.0), "middle", 11.0, "fill:#404040", &format!("{t:.3}"));
    }
    for v in svg::ticks(0.0, scale.y1, 8) {
        let y = scale.y(v);
        svg.line("grid", (x0, y), (x1, y), "stroke:#e8e8e8");
        svg.text("axis", (x0 - 6.0, y + 4.0), "end", 11.0, "fill:#404040", &format!("{v:.0}"));
    }
    svg.text(
        "axis",
        ((x0 + x1) / 2.0, y0 + 36.0),
        "middle",
        12.0,
        "fill:#000000",
        "time (s since the connection's first segment)",
    );
    svg.text("axis", (x0, y1 - 8.0), "start", 12.0, "fill:#000000", "sequence number (relative to the ISN)");
}

fn legend(svg: &mut Svg) {
    let items = [
        ("#000000", "data sent"),
        ("#d62728", "retransmission"),
        ("#ff7f0e", "out of order"),
        ("#2ca02c", "ACK"),
        ("#9a9a20", "window edge (ACK + window)"),
        ("#9467bd", "SACK block"),
    ];
    svg.group("legend", "legend");
    let y = HEIGHT - 40.0;
    let mut x = LEFT;
    for (color, label) in items {
        svg.line("legend-key", (x, y - 4.0), (x + 22.0, y - 4.0), &format!("stroke:{color};stroke-width:3"));
        svg.text("legend-label", (x + 28.0, y), "start", 12.0, "fill:#000000", label);
        x += 44.0 + 7.0 * label.len() as f64;
    }
    svg.end();
}
