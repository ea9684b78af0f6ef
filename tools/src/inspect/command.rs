//! `tapstack states`: the state diagram with the transitions a capture's or a
//! trace's connections took, their timeline, and pictures of one connection
//! (a time-sequence graph, a ladder diagram).

use super::{diagram, ladder, svg, timeline, trace, tsg, Inspection};
use stack::tcp::{Cause, State};
use std::path::{Path, PathBuf};

/// What to read and what to make of it.
#[derive(Clone, Debug, Default)]
pub struct StatesOptions {
    pub pcap: Option<PathBuf>,
    pub trace: Option<PathBuf>,
    /// Draw the diagram into this .svg or .png.
    pub out: Option<PathBuf>,
    /// Print the timeline.
    pub timeline: bool,
    /// Only this connection (1-based, as the timeline numbers them).
    pub conn: Option<usize>,
    /// Draw the connection's time-sequence graph into this .svg or .png.
    pub tsg: Option<PathBuf>,
    /// Draw the connection's ladder diagram into this .svg or .png.
    pub ladder: Option<PathBuf>,
}

enum Input {
    Capture(Inspection),
    Trace(Vec<trace::TraceEvent>),
}

impl Input {
    fn transitions(&self) -> Vec<(State, State, Cause)> {
        match self {
            Input::Capture(i) => i.transitions(),
            Input::Trace(events) => events.iter().map(|e| (e.from, e.to, e.cause)).collect(),
        }
    }
}

pub fn run(opts: StatesOptions) -> Result<(), String> {
    let (input, source) = match (&opts.pcap, &opts.trace) {
        (Some(p), None) => (Input::Capture(super::inspect_pcap(p)?), p),
        (None, Some(t)) => {
            let text = std::fs::read_to_string(t).map_err(|e| format!("cannot read {}: {e}", t.display()))?;
            (Input::Trace(trace::parse(&text).map_err(|e| format!("{}: {e}", t.display()))?), t)
        }
        _ => return Err("give exactly one of --pcap CAPTURE and --trace FILE".into()),
    };
    // Nothing asked for: the timeline and the transitions taken, in text, the
    // diagram's counts without Graphviz.
    let text_only = opts.out.is_none() && !opts.timeline && opts.tsg.is_none() && opts.ladder.is_none();
    if opts.timeline || text_only {
        let text = match &input {
            Input::Capture(i) => {
                check_conn(opts.conn, i.connections.len())?;
                timeline::render(i, opts.conn)
            }
            Input::Trace(events) => timeline::render_trace(events),
        };
        crate::say!("{}", text.trim_end());
    }
    if text_only {
        crate::say!("\n{}", diagram::table(&diagram::count(input.transitions())).trim_end());
    }
    pictures(&opts, &input, source)?;
    if let Some(out) = &opts.out {
        diagram::format_for(out)?;
        let taken = diagram::count(input.transitions());
        let total: usize = taken.iter().map(|t| t.3).sum();
        let dot = diagram::dot(&title(source, &input, total), &taken);
        diagram::render(&dot, out)?;
        if !opts.timeline {
            crate::say!("{}: {total} transition(s) drawn on the RFC 9293 state diagram", out.display());
        }
    }
    Ok(())
}

fn check_conn(conn: Option<usize>, count: usize) -> Result<(), String> {
    match conn {
        Some(n) if n == 0 || n > count => {
            Err(format!("--conn {n}: the input has {count} connection(s), numbered from 1"))
        }
        _ => Ok(()),
    }
}

/// The connection a picture is of: `--conn N`, or the only one.
fn pick(conn: Option<usize>, count: usize) -> Result<usize, String> {
    check_conn(conn, count)?;
    match (conn, count) {
        (Some(n), _) => Ok(n),
        (None, 1) => Ok(1),
        (None, 0) => Err("the input has no TCP connection to draw".into()),
        (None, n) => Err(format!("the input has {n} connections: pick one with --conn N (see --timeline)")),
    }
}

/// The time-sequence graph and the ladder diagram, when asked for.
fn pictures(opts: &StatesOptions, input: &Input, source: &Path) -> Result<(), String> {
    let name = source.file_name().map_or_else(|| source.display().to_string(), |n| n.to_string_lossy().into_owned());
    match input {
        Input::Capture(i) => {
            if opts.tsg.is_none() && opts.ladder.is_none() {
                return Ok(());
            }
            let n = pick(opts.conn, i.connections.len())?;
            let c = &i.connections[n - 1];
            if let Some(out) = &opts.tsg {
                svg::write(&tsg::render(c, n, tsg::sender(c), &name), out)?;
                crate::say!("{}: time-sequence graph of connection {n}", out.display());
            }
            if let Some(out) = &opts.ladder {
                svg::write(&ladder::render(c, n, &name), out)?;
                crate::say!("{}: ladder diagram of connection {n}", out.display());
            }
        }
        Input::Trace(events) => {
            if opts.tsg.is_some() {
                return Err(
                    "a time-sequence graph needs the segments: give --pcap (tapstack up --pcap records one)".into()
                );
            }
            if let Some(out) = &opts.ladder {
                let conns = trace::connections(events);
                let n = pick(opts.conn, conns.len())?;
                svg::write(&ladder::render_trace(&conns[n - 1], n, &name), out)?;
                crate::say!("{}: ladder diagram of traced connection {n}", out.display());
            }
        }
    }
    Ok(())
}

fn title(source: &Path, input: &Input, total: usize) -> String {
    let name = source.file_name().map_or_else(|| source.display().to_string(), |n| n.to_string_lossy().into_owned());
    let what = match input {
        Input::Capture(i) => format!("{} connection(s), both sides, inferred from the capture", i.connections.len()),
        Input::Trace(events) => format!("{} traced connection(s)", trace::connections(events).len()),
    };
    format!("TCP states (RFC 9293 Figure 5): {name}, {what}, {total} transition(s)")
}
