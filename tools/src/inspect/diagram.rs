//! The TCP state diagram of RFC 9293 section 3.3.2 (Figure 5) as Graphviz DOT,
//! with the transitions that connections took marked and counted. The figure's
//! edges are always drawn; the RST, abort and timeout edges tapstack takes that
//! the figure leaves out (its notes 2 and 3) are drawn dotted and grey; any other
//! transition taken is drawn dashed and red, marked "extra".
//!
//! [`dot`] is a pure function of the counted transitions; [`render`] runs
//! Graphviz's `dot` on its output.

use stack::tcp::{Cause, State};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Where an edge comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// Drawn in RFC 9293 Figure 5.
    Figure,
    /// Taken by tapstack but left out of the figure (RFC 9293 notes 2 and 3:
    /// FIN,ACK in FIN-WAIT-1, resets and aborts, the FIN-WAIT-2 timeout).
    Beyond,
}

/// What an edge is labelled with.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EdgeCause {
    /// A cause tapstack traces and the inspector infers.
    Core(Cause),
    /// An event of the figure that no transition can name: RFC 9293's SEND in
    /// LISTEN, which the sockets API has no call for, so the core has no
    /// [`Cause`] for it. Drawn, never taken.
    FigureOnly(&'static str),
}

/// One edge of the diagram.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: State,
    pub to: State,
    pub cause: EdgeCause,
    pub kind: EdgeKind,
}

const fn fig(from: State, to: State, cause: Cause) -> Edge {
    Edge { from, to, cause: EdgeCause::Core(cause), kind: EdgeKind::Figure }
}

const fn beyond(from: State, to: State, cause: Cause) -> Edge {
    Edge { from, to, cause: EdgeCause::Core(cause), kind: EdgeKind::Beyond }
}

use State::*;

/// Every edge drawn, the figure's first. The simultaneous-open edge (SYN-SENT
/// -> SYN-RECEIVED) is the figure's "rcv SYN / snd SYN,ACK"; RFC 793's "snd
/// ACK" wording of it is read as that cause when a trace is parsed
/// ([`super::trace`]).
pub const EDGES: &[Edge] = &[
    fig(Closed, Listen, Cause::PassiveOpen),
    fig(Closed, SynSent, Cause::ActiveOpen),
    fig(Listen, SynReceived, Cause::RcvSynSndSynAck),
    Edge { from: Listen, to: SynSent, cause: EdgeCause::FigureOnly("SEND / snd SYN"), kind: EdgeKind::Figure },
    fig(Listen, Closed, Cause::Close),
    fig(SynSent, Closed, Cause::Close),
    fig(SynSent, SynReceived, Cause::RcvSynSndSynAck),
    fig(SynSent, Established, Cause::RcvSynAckSndAck),
    fig(SynReceived, Established, Cause::RcvAckOfSyn),
    fig(SynReceived, Listen, Cause::RcvRst),
    fig(SynReceived, FinWait1, Cause::CloseSndFin),
    fig(Established, FinWait1, Cause::CloseSndFin),
    fig(Established, CloseWait, Cause::RcvFinSndAck),
    fig(FinWait1, FinWait2, Cause::RcvAckOfFin),
    fig(FinWait1, Closing, Cause::RcvFinSndAck),
    fig(FinWait2, TimeWait, Cause::RcvFinSndAck),
    fig(Closing, TimeWait, Cause::RcvAckOfFin),
    fig(CloseWait, LastAck, Cause::CloseSndFin),
    fig(LastAck, Closed, Cause::RcvAckOfFin),
    fig(TimeWait, Closed, Cause::Timeout2Msl),
    beyond(FinWait1, TimeWait, Cause::RcvFinAckSndAck),
    beyond(SynSent, Closed, Cause::RcvRst),
    beyond(Established, Closed, Cause::RcvRst),
    beyond(Established, Closed, Cause::AbortSndRst),
    beyond(FinWait2, Closed, Cause::TimeoutFinWait2),
];

impl Edge {
    /// Whether a transition with this cause is this edge.
    pub fn matches(&self, from: State, to: State, cause: Cause) -> bool {
        self.from == from && self.to == to && self.cause == EdgeCause::Core(cause)
    }

    /// The event/action as the figure writes it.
    pub fn label(&self) -> &'static str {
        match self.cause {
            EdgeCause::Core(c) => c.as_str(),
            EdgeCause::FigureOnly(text) => text,
        }
    }
}

/// A transition taken, and how many times: what [`dot`] draws.
pub type Taken = (State, State, Cause, usize);

/// Counts transitions for [`dot`].
pub fn count(transitions: impl IntoIterator<Item = (State, State, Cause)>) -> Vec<Taken> {
    let mut counts: Vec<Taken> = Vec::new();
    for (from, to, cause) in transitions {
        match counts.iter_mut().find(|c| c.0 == from && c.1 == to && c.2 == cause) {
            Some(c) => c.3 += 1,
            None => counts.push((from, to, cause, 1)),
        }
    }
    counts
}

/// The transitions taken as text, one a line with its count, in the order of
/// the diagram's edges (the figure's, then those beyond it, then the extra
/// ones): what `tapstack states` prints when no picture is asked for.
pub fn table(taken: &[Taken]) -> String {
    let mut rows: Vec<&Taken> = taken.iter().collect();
    let place = |t: &Taken| EDGES.iter().position(|e| e.matches(t.0, t.1, t.2)).unwrap_or(EDGES.len());
    rows.sort_by_key(|t| place(t));
    let total: usize = taken.iter().map(|t| t.3).sum();
    let mut out = format!("{total} transition(s) taken, as the state diagram (--out) counts them:\n");
    for &&(from, to, cause, n) in &rows {
        let extra = if place(&(from, to, cause, n)) == EDGES.len() { "  (extra: not in the figure)" } else { "" };
        let arrow = format!("{} -> {}", from.name(), to.name());
        out.push_str(&format!("  {arrow:<28} {:<32} ×{n}{extra}\n", format!("({cause})")));
    }
    out
}

/// Text for a double-quoted DOT string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The rows of the figure, top to bottom, each left to right.
const RANKS: &[&[State]] = &[
    &[Closed],
    &[Listen],
    &[SynReceived, SynSent],
    &[Established],
    &[FinWait1, CloseWait],
    &[FinWait2, Closing, LastAck],
    &[TimeWait],
];

/// The diagram in DOT, with `taken` (from, to, cause, count) marked: a figure
/// edge taken is bold and blue with "×N" added to its label; a transition that
/// matches no drawn edge gets a dashed red edge of its own, labelled "extra".
pub fn dot(title: &str, taken: &[Taken]) -> String {
    let mut counts = vec![0usize; EDGES.len()];
    let mut extra: Vec<Taken> = Vec::new();
    for &(from, to, cause, n) in taken {
        match EDGES.iter().position(|e| e.matches(from, to, cause)) {
            Some(i) => counts[i] += n,
            None => extra.push((from, to, cause, n)),
        }
    }
    let mut out = String::new();
    out.push_str("digraph tcp_states {\n");
    out.push_str("  graph [rankdir=TB, nodesep=0.6, ranksep=0.9, fontname=\"Helvetica\", fontsize=16, labelloc=t,\n");
    out.push_str(&format!("         label=<{}>];\n", title_and_legend(title)));
    out.push_str("  node [shape=box, style=\"rounded,filled\", fillcolor=\"#f4f4f4\", fontname=\"Helvetica-Bold\", fontsize=13, width=1.6, height=0.5];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=10, arrowsize=0.8];\n");
    for rank in RANKS {
        let names: Vec<String> = rank.iter().map(|s| format!("\"{}\"", s.name())).collect();
        out.push_str(&format!("  {{ rank=same; {}; }}\n", names.join("; ")));
        // Invisible edges keep each row in the figure's left-to-right order.
        for pair in rank.windows(2) {
            out.push_str(&format!("  \"{}\" -> \"{}\" [style=invis];\n", pair[0].name(), pair[1].name()));
        }
    }
    for (edge, n) in EDGES.iter().zip(&counts) {
        out.push_str(&edge_line(edge.from, edge.to, edge.label(), *n, edge.kind == EdgeKind::Beyond, false));
    }
    for (from, to, cause, n) in &extra {
        out.push_str(&edge_line(*from, *to, cause.as_str(), *n, false, true));
    }
    out.push_str("}\n");
    out
}

/// Text for a Graphviz HTML-like label.
fn html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The graph's label: the title, and under it a legend of the edge styles, in
/// the colours [`edge_line`] draws them with.
fn title_and_legend(title: &str) -> String {
    const LEGEND: [(&str, &str, &str); 4] = [
        ("#1f5fbf", "━━", "taken, with how many times"),
        ("#404040", "──", "RFC 9293 Figure 5"),
        ("#a0a0a0", "┈┈", "in RFC 9293's text, not its figure (resets, timeouts)"),
        ("#d62728", "╌╌", "extra: not in the RFC"),
    ];
    let items: Vec<String> = LEGEND
        .iter()
        .map(|(color, line, text)| format!("<FONT COLOR=\"{color}\">{line} {}</FONT>", html(text)))
        .collect();
    format!("<B>{}</B><BR/><FONT POINT-SIZE=\"11\">{}</FONT>", html(title), items.join("&nbsp;&nbsp;&nbsp;"))
}

fn edge_line(from: State, to: State, label: &str, n: usize, beyond: bool, extra: bool) -> String {
    let mut attrs = Vec::new();
    let mut text = label.to_string();
    if n > 0 {
        text.push_str(&format!(" ×{n}"));
    }
    if extra {
        text.push_str("\n(extra: not in the figure)");
    }
    attrs.push(format!("label=\"{}\"", quote(&text)));
    // Edges back up to an earlier row would pull the layout apart: they follow
    // the rows, not shape them, as the figure's return arrows do.
    if rank_of(to) < rank_of(from) || (from, to) == (Listen, SynSent) {
        attrs.push("constraint=false".to_string());
    }
    // The long way back up to CLOSED runs down the right-hand side, where the
    // figure draws its second CLOSED box.
    if to == Closed && rank_of(from) >= rank_of(Established) {
        attrs.push("tailport=e, headport=e".to_string());
    }
    let (color, style, width) = match (n > 0, beyond || extra) {
        (true, _) if extra => ("#d62728", "dashed", "2.5"),
        (true, _) => ("#1f5fbf", "bold", "2.5"),
        (false, true) => ("#a0a0a0", "dotted", "1"),
        (false, false) => ("#404040", "solid", "1"),
    };
    attrs.push(format!("color=\"{color}\", fontcolor=\"{color}\", style={style}, penwidth={width}"));
    if extra {
        attrs.push("class=\"extra\"".to_string());
    } else if n > 0 {
        attrs.push("class=\"taken\"".to_string());
    }
    format!("  \"{}\" -> \"{}\" [{}];\n", from.name(), to.name(), attrs.join(", "))
}

fn rank_of(s: State) -> usize {
    RANKS.iter().position(|r| r.contains(&s)).unwrap_or(0)
}

/// The output format for a file name: `svg` or `png`.
pub fn format_for(path: &Path) -> Result<&'static str, String> {
    match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
        Some("svg") => Ok("svg"),
        Some("png") => Ok("png"),
        _ => Err(format!("{}: give the output file a .svg or .png extension", path.display())),
    }
}

/// Runs Graphviz's `dot` to draw `dot_text` into `out` (SVG or PNG, by its extension).
pub fn render(dot_text: &str, out: &Path) -> Result<(), String> {
    let format = format_for(out)?;
    let mut child = Command::new("dot")
        .arg(format!("-T{format}"))
        .arg("-o")
        .arg(out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "Graphviz's dot was not found: install graphviz (apt-get install graphviz)".to_string()
            }
            _ => format!("cannot run dot: {e}"),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(dot_text.as_bytes()).map_err(|e| format!("cannot write to dot: {e}"))?;
    }
    let result = child.wait_with_output().map_err(|e| format!("dot failed: {e}"))?;
    if !result.status.success() {
        return Err(format!("dot failed: {}", String::from_utf8_lossy(&result.stderr).trim()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figure's transitions, as the issue lists them.
    const FIGURE_5: &[(State, State, &str)] = &[
        (Closed, Listen, "passive OPEN"),
        (Closed, SynSent, "active OPEN / snd SYN"),
        (Listen, SynReceived, "rcv SYN / snd SYN,ACK"),
        (Listen, SynSent, "SEND / snd SYN"),
        (SynSent, SynReceived, "rcv SYN / snd SYN,ACK"),
        (SynSent, Established, "rcv SYN,ACK / snd ACK"),
        (SynReceived, Established, "rcv ACK of SYN"),
        (SynReceived, FinWait1, "CLOSE / snd FIN"),
        (Established, FinWait1, "CLOSE / snd FIN"),
        (CloseWait, LastAck, "CLOSE / snd FIN"),
        (Listen, Closed, "CLOSE"),
        (SynSent, Closed, "CLOSE"),
        (Established, CloseWait, "rcv FIN / snd ACK"),
        (FinWait1, Closing, "rcv FIN / snd ACK"),
        (FinWait2, TimeWait, "rcv FIN / snd ACK"),
        (FinWait1, FinWait2, "rcv ACK of FIN"),
        (Closing, TimeWait, "rcv ACK of FIN"),
        (LastAck, Closed, "rcv ACK of FIN"),
        (TimeWait, Closed, "timeout=2MSL"),
        (SynReceived, Listen, "rcv RST"),
    ];

    fn edge_lines(dot: &str) -> Vec<&str> {
        dot.lines().filter(|l| l.contains(" -> ") && !l.contains("invis")).collect()
    }

    #[test]
    fn every_state_and_every_figure_transition_is_drawn() {
        let d = dot("t", &[]);
        for s in State::ALL {
            assert!(d.contains(&format!("\"{}\"", s.name())), "{s} missing");
        }
        let lines = edge_lines(&d);
        for (from, to, label) in FIGURE_5 {
            let head = format!("\"{}\" -> \"{}\" [label=\"{}\"", from.name(), to.name(), label);
            assert!(lines.iter().any(|l| l.contains(&head)), "{from} -> {to} ({label}) missing");
        }
        assert_eq!(EDGES.iter().filter(|e| e.kind == EdgeKind::Figure).count(), FIGURE_5.len());
        assert!(lines.iter().any(|l| l.contains("\"ESTABLISHED\" -> \"CLOSED\" [label=\"rcv RST\"")));
        assert!(!d.contains("×"), "nothing taken, nothing counted");
        // The legend names each edge style in its colour.
        for (color, text) in
            [("#1f5fbf", "taken"), ("#404040", "Figure 5"), ("#a0a0a0", "not its figure"), ("#d62728", "extra")]
        {
            assert!(d.contains(&format!("<FONT COLOR=\"{color}\">")) && d.contains(text), "{color} {text}");
        }
    }

    #[test]
    fn taken_transitions_are_counted_and_extras_drawn() {
        let taken = count([
            (Closed, SynSent, Cause::ActiveOpen),
            (Closed, SynSent, Cause::ActiveOpen),
            (Closed, SynSent, Cause::ActiveOpen),
            (SynSent, SynReceived, Cause::RcvSynSndSynAck),
            (CloseWait, Closed, Cause::RcvRst),
        ]);
        let d = dot("t", &taken);
        let line = edge_lines(&d).into_iter().find(|l| l.contains("\"CLOSED\" -> \"SYN-SENT\"")).unwrap();
        assert!(line.contains("active OPEN / snd SYN ×3") && line.contains("class=\"taken\""), "{line}");
        let simul = edge_lines(&d).into_iter().find(|l| l.contains("\"SYN-SENT\" -> \"SYN-RECEIVED\"")).unwrap();
        assert!(simul.contains("rcv SYN / snd SYN,ACK ×1"), "tapstack's wording is the figure's edge: {simul}");
        let extra = edge_lines(&d).into_iter().find(|l| l.contains("\"CLOSE-WAIT\" -> \"CLOSED\"")).unwrap();
        assert!(extra.contains("rcv RST ×1\\n(extra") && extra.contains("dashed"), "{extra}");
    }

    #[test]
    fn labels_are_quoted() {
        let d = dot("a \"title\" <&>", &[]);
        assert!(d.contains("label=<<B>a &quot;title&quot; &lt;&amp;&gt;</B>"), "{d}");
        // Causes have no quotes in them, but an edge's label is quoted all the same.
        let line = edge_line(Closed, Closed, "odd \"cause\" \\", 1, false, true);
        assert!(line.contains("odd \\\"cause\\\" \\\\ ×1"), "{line}");
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(format_for(Path::new("x.svg")), Ok("svg"));
        assert_eq!(format_for(Path::new("x.PNG")), Ok("png"));
        assert!(format_for(Path::new("x.pdf")).is_err());
    }
}
