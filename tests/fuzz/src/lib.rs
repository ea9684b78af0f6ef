//! What each fuzz target runs, as functions, so that a crash reproduces with
//! `cargo test` on stable as well as under libFuzzer (see README.md):
//!
//! - [`program::run`]: the frame path as a program of frames, time steps,
//!   polls and socket calls, with the stack's invariants checked at every step.
//! - [`capture_reader`]: the pcap/pcapng reader and the state inspector.
//! - [`scenario_parse`]: the scenario file parser.
//! - [`replay`]: a (mutated) capture replayed against its scenario.

pub mod program;
pub mod wire;

use stack::device::pcap::PcapSource;
use tapstack_tools::inspect;
use tapstack_tools::scenario::capture::Capture;
use tapstack_tools::scenario::file::Scenario;
use tapstack_tools::scenario::replay;

/// `n` bytes of a counting pattern, for data the harness sends.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The capture reader and the inspector on any bytes: no panic, and the
/// inspector's counts add up.
pub fn capture_reader(data: &[u8]) {
    if let Ok(mut src) = PcapSource::new(data) {
        let _ = src.application();
        let mut n = 0u64;
        // A fatal error ends the file; a skipped frame does not (bounded by the input).
        while let Some(r) = src.next_frame().transpose() {
            n += 1;
            if let Ok((_, frame)) = r {
                assert!(frame.len() <= data.len(), "a frame longer than the file");
            }
        }
        assert!(n <= data.len() as u64);
    }
    if let Ok(i) = inspect::inspect_reader(data) {
        assert_eq!(i.frames, i.tcp_segments + i.other_frames + i.malformed, "inspector counts");
        let _ = inspect::timeline::render(&i, None);
    }
    let _ = Capture::from_reader(data, stack::MacAddr([2, 0x74, 0x61, 0x70, 0, 2]));
}

/// The scenario parser on any text; what it accepts must also give its configs.
pub fn scenario_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(s) = Scenario::parse(text) {
        s.stack_config().expect("a parsed scenario has a stack config");
        let _ = s.fault_config();
        let _ = s.duration();
        for step in &s.app.script {
            let _ = step.call().map(|c| c.to_string());
        }
    }
}

/// The reference scenarios, by name, that [`replay`] mutates captures against.
pub const SCENARIOS: [(&str, &str); 12] = [
    ("active-open", include_str!("../../../captures/active-open.toml")),
    ("fault-recovery", include_str!("../../../captures/fault-recovery.toml")),
    ("http10-stack-closes", include_str!("../../../captures/http10-stack-closes.toml")),
    ("nagle", include_str!("../../../captures/nagle.toml")),
    ("ping-fragmented", include_str!("../../../captures/ping-fragmented.toml")),
    ("ping", include_str!("../../../captures/ping.toml")),
    ("simultaneous-close", include_str!("../../../captures/simultaneous-close.toml")),
    ("simultaneous-open", include_str!("../../../captures/simultaneous-open.toml")),
    ("syn-to-closed-port", include_str!("../../../captures/syn-to-closed-port.toml")),
    ("tcp-echo-peer-closes", include_str!("../../../captures/tcp-echo-peer-closes.toml")),
    ("udp-echo", include_str!("../../../captures/udp-echo.toml")),
    ("zero-window", include_str!("../../../captures/zero-window.toml")),
];

/// The first byte picks a scenario of [`SCENARIOS`]; the rest is a capture
/// replayed against it. No panic, whatever the capture holds.
pub fn replay(data: &[u8]) {
    let Some((&pick, capture)) = data.split_first() else { return };
    let (_, text) = SCENARIOS[usize::from(pick) % SCENARIOS.len()];
    let scenario = Scenario::parse(text).expect("reference scenarios parse");
    let mac = scenario.stack_config().expect("config").mac;
    let Ok(cap) = Capture::from_reader(capture, mac) else { return };
    // Bound the work: libFuzzer's inputs are small, but a frame count is not.
    if cap.frames.len() > 4096 {
        return;
    }
    if let Ok(outcome) = replay::replay(&scenario, &cap, None) {
        if let Some(d) = outcome.divergence {
            assert!(!d.report.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captures() -> impl Iterator<Item = (String, Vec<u8>)> {
        SCENARIOS.iter().map(|(name, _)| {
            let path = format!("{}/../../captures/{name}.pcapng", env!("CARGO_MANIFEST_DIR"));
            (name.to_string(), std::fs::read(path).expect("capture"))
        })
    }

    /// The seeds run clean: every reference capture reads and replays.
    #[test]
    fn reference_captures_run_through_every_target() {
        for (i, (name, bytes)) in captures().enumerate() {
            capture_reader(&bytes);
            scenario_parse(SCENARIOS[i].1.as_bytes());
            let mut input = vec![i as u8];
            input.extend_from_slice(&bytes);
            replay(&input);
            let scenario = Scenario::parse(SCENARIOS[i].1).unwrap();
            let cap = Capture::from_reader(&bytes[..], scenario.stack_config().unwrap().mac).unwrap();
            let outcome = replay::replay(&scenario, &cap, None).unwrap();
            assert!(outcome.matched(), "{name} replays byte-exact from bytes too");
        }
    }

    /// Every input kept in corpus/TARGET and artifacts/TARGET (when run.sh or
    /// cargo fuzz made them) runs clean: `cargo test` reproduces a crash on stable.
    #[test]
    fn saved_inputs_run_clean() {
        let targets: [(&str, fn(&[u8])); 4] = [
            ("frame_path", program::run),
            ("capture_reader", capture_reader),
            ("scenario_parse", scenario_parse),
            ("replay", replay),
        ];
        for (name, run) in targets {
            for dir in ["corpus", "artifacts"] {
                let path = format!("{}/{dir}/{name}", env!("CARGO_MANIFEST_DIR"));
                let Ok(entries) = std::fs::read_dir(&path) else { continue };
                for e in entries {
                    let p = e.unwrap().path();
                    eprintln!("{name}: {}", p.display());
                    run(&std::fs::read(&p).unwrap());
                }
            }
        }
    }

    #[test]
    fn an_empty_and_a_short_program_run() {
        program::run(&[]);
        // A listener on port 7, a SYN to it, the final ACK, data, a poll, a close.
        program::run(&[8, 0, 0, 0, 0, 0, 8, 2, 0, 0, 0, 0, 8, 3, 0, 4, 0, 0]);
    }
}

#[cfg(test)]
mod debug_seed {
    #[test]
    #[ignore]
    fn one() {
        let p = std::env::var("SEED").unwrap();
        crate::program::run(&std::fs::read(p).unwrap());
    }
}
