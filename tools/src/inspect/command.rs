//! `tapstack states`: the state diagram with the transitions a capture's or a
//! trace's connections took, or their timeline.

use super::{diagram, timeline, trace, Inspection};
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
}

enum Input {
    Capture(Inspection),
    Trace(Vec<trace::TraceEvent>),
}

impl Input {
    fn transitions(&self) -> Vec<(State, State, Cause)> {
        match self {
            Input::Capture(i) => i
                .connections
                .iter()
                .flat_map(|c| c.sides.iter().flat_map(|s| s.changes.iter()).chain(c.trailer.iter().map(|(_, ch)| ch)))
                .map(|c| (c.from, c.to, c.cause))
                .collect(),
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
    if opts.out.is_none() && !opts.timeline {
        return Err("say what to make: --out FILE.svg|FILE.png, --timeline, or both".into());
    }
    if opts.timeline {
        let text = match &input {
            Input::Capture(i) => timeline::render(i),
            Input::Trace(events) => timeline::render_trace(events),
        };
        crate::say!("{}", text.trim_end());
    }
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

fn title(source: &Path, input: &Input, total: usize) -> String {
    let name = source.file_name().map_or_else(|| source.display().to_string(), |n| n.to_string_lossy().into_owned());
    let what = match input {
        Input::Capture(i) => format!("{} connection(s), both sides, inferred from the capture", i.connections.len()),
        Input::Trace(events) => format!("{} traced connection(s)", trace::connections(events).len()),
    };
    format!("TCP states (RFC 9293 Figure 5): {name}, {what}, {total} transition(s)")
}
