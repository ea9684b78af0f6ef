//! Scenarios, recordings and replays: a conversation between tapstack and a
//! peer, captured once against the real Linux kernel, becomes a regression test
//! that replays in milliseconds on the virtual clock and says exactly where
//! behaviour changed.
//!
//! - [`file`]: the scenario file (TOML): who tapstack is, who the peer is, what
//!   the application does.
//! - [`app`]: that application, on the sans-IO core.
//! - [`driver`]: the one loop both recording and replay run, and why its
//!   timestamps make a replay exact.
//! - [`capture`]: recording frames, writing pcapng, reading any capture.
//! - [`record`]: `tapstack record`; [`replay`]: `tapstack replay`.
//! - [`decode`]: frames as Wireshark packet-list lines, for the reports.

pub mod app;
pub mod capture;
pub mod decode;
pub mod driver;
pub mod file;
pub mod record;
pub mod replay;

use capture::Capture;
use file::Scenario;
use std::path::{Path, PathBuf};

/// The scenario file of a capture: the same path with `.toml`.
pub fn scenario_for(capture: &Path) -> PathBuf {
    capture.with_extension("toml")
}

/// Loads a capture and its scenario and replays it.
pub fn replay_files(
    capture: &Path,
    scenario: Option<&Path>,
    tolerance: Option<replay::Tolerance>,
) -> Result<(Scenario, replay::Outcome), String> {
    let scenario_path = scenario.map_or_else(|| scenario_for(capture), Path::to_path_buf);
    let scenario = Scenario::load(&scenario_path)?;
    let mac = scenario.stack_config()?.mac;
    let cap = Capture::read(capture, mac)?;
    let outcome = replay::replay(&scenario, &cap, tolerance)?;
    Ok((scenario, outcome))
}

/// `tapstack replay`: exit status 0 when the stack's frames match.
pub fn run_replay(
    capture: &Path,
    scenario: Option<&Path>,
    tolerance: Option<replay::Tolerance>,
    trace: bool,
) -> Result<bool, String> {
    let (s, o) = replay_files(capture, scenario, tolerance)?;
    crate::say!("replaying {} (scenario {})", capture.display(), s.name);
    crate::say!(
        "  {} frames from tapstack to compare, {} from the peer fed in; clock: {}; time tolerance {}",
        o.stack_frames,
        o.peer_frames,
        if o.own_clock {
            "the stack's own (a tapstack recording)"
        } else {
            "the capture's (another program's recording)"
        },
        o.tolerance
    );
    if trace {
        crate::say!("{}", record::trace_text(&o.transitions, o.start).trim_end());
    }
    match &o.divergence {
        None => {
            crate::say!("match: every frame tapstack sent is the recorded one, in order, at its recorded time");
            Ok(true)
        }
        Some(d) => {
            crate::say!("DIVERGED\n{}", d.report.trim_end());
            Ok(false)
        }
    }
}

/// `tapstack record`: records the scenario, writes the capture and trace
/// beside it (or into `out_dir`), and replays the new capture at once.
pub fn run_record(scenario_path: &Path, out_dir: Option<&Path>, opts: &record::RecordOptions) -> Result<bool, String> {
    let scenario = Scenario::load(scenario_path)?;
    let dir = out_dir.map_or_else(|| scenario_path.parent().unwrap_or(Path::new(".")).to_path_buf(), Path::to_path_buf);
    crate::say!("recording {} ({} ms): {}", scenario.name, scenario.duration_ms, scenario.description);
    let rec = record::record(&scenario, opts)?;
    let (pcap, trace) = record::save(&scenario, &rec, &dir)?;
    crate::say!("  {} frames -> {}", rec.frames.len(), pcap.display());
    crate::say!("  {} state transitions -> {}", rec.transitions.len(), trace.display());
    for l in &rec.app_log {
        crate::say!("  app: {l}");
    }
    if !rec.peer_output.trim().is_empty() {
        crate::say!("  peer said: {}", rec.peer_output.trim().replace('\n', "\n             "));
    }
    let states: Vec<String> =
        rec.transitions.iter().map(|(_, t)| format!("{} -> {} ({})", t.from, t.to, t.cause)).collect();
    let unmet = scenario.unmet_expectations(&states);
    if !unmet.is_empty() {
        crate::say!("  NOTE: this recording does not show what the scenario expects: {}", unmet.join("; "));
        crate::say!("  (the kernel's timing took another path; record again, or change the scenario)");
    }
    if scenario_for(&pcap) != scenario_path && out_dir.is_some() {
        std::fs::copy(scenario_path, scenario_for(&pcap)).map_err(|e| format!("cannot copy the scenario: {e}"))?;
    }
    Ok(run_replay(&pcap, Some(scenario_path), None, false)? && unmet.is_empty())
}
