//! `tapstack states --tsg` and `--ladder`: the pictures read back as XML. Every
//! shape carries a class naming what it shows, so the test counts what was
//! drawn against what the inspector reports of the same capture.

use std::path::{Path, PathBuf};
use std::process::Command;
use tapstack_tools::inspect::inspect_pcap;

const TAPSTACK: &str = env!("CARGO_BIN_EXE_tapstack");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn states(args: &[&str]) -> (bool, String) {
    let out = Command::new(TAPSTACK).arg("states").args(args).output().expect("run tapstack");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Draws with `flag` into a temporary file named `name` and returns its bytes.
fn draw(capture: &str, flag: &str, name: &str, extra: &[&str]) -> Vec<u8> {
    let out = std::env::temp_dir().join(format!("tapstack-pictures-{}-{name}", std::process::id()));
    let input = if capture.ends_with(".trace") { "--trace" } else { "--pcap" };
    let mut args = vec![input, capture, flag, out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (ok, text) = states(&args);
    assert!(ok, "{text}");
    let bytes = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    bytes
}

/// How many elements have `class` among their classes.
fn count(doc: &roxmltree::Document<'_>, class: &str) -> usize {
    doc.descendants().filter(|n| n.attribute("class").is_some_and(|c| c.split(' ').any(|w| w == class))).count()
}

fn texts<'a>(doc: &'a roxmltree::Document<'a>, class: &str) -> Vec<&'a str> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text") && n.attribute("class") == Some(class))
        .filter_map(|n| n.text())
        .collect()
}

#[test]
fn time_sequence_graph_of_a_lossy_transfer() {
    let capture = fixture("inspect-lossy.pcap");
    let svg = String::from_utf8(draw(capture.to_str().unwrap(), "--tsg", "tsg.svg", &[])).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let c = &inspect_pcap(&capture).unwrap().connections[0];
    let sent: Vec<_> = c.segments.iter().filter(|s| s.from == 0 && s.len > 0).collect();
    let resent = sent.iter().filter(|s| s.notes.iter().any(|n| n.contains("retransmission"))).count();
    assert!(resent >= 3, "the capture has losses: {resent}");
    assert_eq!(count(&doc, "retransmission"), resent, "one red bar per retransmission");
    // New data bars, plus the SYN and the FIN (which carries data here too).
    let bars = count(&doc, "data") + count(&doc, "retransmission") + count(&doc, "out-of-order");
    assert_eq!(bars, sent.len() + 1, "a bar per segment that takes sequence space");
    let sacks: usize = c.segments.iter().filter(|s| s.from == 1).map(|s| s.sack.len()).sum();
    assert!(sacks > 0 && count(&doc, "sack") == sacks, "{sacks} SACK blocks");
    assert_eq!((count(&doc, "ack"), count(&doc, "window")), (1, 1), "the ACK line and the window's edge");
    let legend = texts(&doc, "legend-label");
    for item in ["data sent", "retransmission", "ACK", "SACK block"] {
        assert!(legend.iter().any(|l| l.starts_with(item)), "{item} not in the legend: {legend:?}");
    }
    assert!(texts(&doc, "title")[0].contains("data from 10.216.0.1:"), "{:?}", texts(&doc, "title"));
}

#[test]
fn ladder_of_a_long_connection_elides_its_middle() {
    let capture = fixture("inspect-lossy.pcap");
    let svg = String::from_utf8(draw(capture.to_str().unwrap(), "--ladder", "ladder.svg", &["--conn", "1"])).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let c = &inspect_pcap(&capture).unwrap().connections[0];
    assert_eq!(count(&doc, "segment"), 60, "the first and last 30");
    let elided = texts(&doc, "elided");
    let middle = c.segments.len() - 60;
    assert!(elided[0].contains(&format!("{middle} segments not shown")), "{elided:?}");
    let labels = texts(&doc, "label");
    assert!(labels[0].starts_with("[SYN] seq=0"), "{labels:?}");
    assert!(labels.iter().any(|l| l.starts_with("[FIN")), "the close is in the last 30");
    // The states each side enters, from CLOSED and LISTEN to the end.
    let names = texts(&doc, "state-name");
    for s in ["CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "LAST-ACK"] {
        assert!(names.contains(&s), "{s} missing: {names:?}");
    }
}

#[test]
fn ladder_marks_unconfirmed_states() {
    let svg = String::from_utf8(draw(fixture("inspect-halfopen.pcap").to_str().unwrap(), "--ladder", "half.svg", &[]))
        .unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(count(&doc, "segment"), 6);
    assert!(count(&doc, "unconfirmed") >= 1);
    assert!(texts(&doc, "state-name").contains(&"ESTABLISHED?"));
    assert_eq!(texts(&doc, "note").iter().filter(|n| **n == "retransmission").count(), 4);
}

#[test]
fn ladder_from_a_trace_and_no_graph_without_segments() {
    let trace = fixture("lab-tcp.trace");
    let svg = String::from_utf8(draw(trace.to_str().unwrap(), "--ladder", "trace.svg", &["--conn", "1"])).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let labels = texts(&doc, "label");
    assert!(labels.contains(&"[SYN]") && labels.contains(&"[SYN,ACK]"), "{labels:?}");
    assert!(texts(&doc, "state-name").contains(&"ESTABLISHED"));
    let out = std::env::temp_dir().join("tapstack-pictures-never.svg");
    let (ok, text) = states(&["--trace", trace.to_str().unwrap(), "--tsg", out.to_str().unwrap()]);
    assert!(!ok && text.contains("needs the segments"), "{text}");
}

#[test]
fn png_pictures_are_pngs() {
    let have = Command::new("rsvg-convert").arg("--version").output().is_ok();
    if !have {
        assert!(std::env::var("CI").is_err(), "CI needs rsvg-convert (librsvg2-bin)");
        eprintln!("skipped: no rsvg-convert (apt-get install librsvg2-bin)");
        return;
    }
    for flag in ["--tsg", "--ladder"] {
        let png = draw(fixture("inspect-lossy.pcap").to_str().unwrap(), flag, "picture.png", &[]);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{flag}");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert_eq!(width, 1000, "{flag}");
    }
}

#[test]
fn pictures_from_a_linux_cooked_capture() {
    // `tcpdump -i any` writes SLL2: the pictures read it as any other capture.
    let capture = fixture("inspect-sll2.pcap");
    let svg = String::from_utf8(draw(capture.to_str().unwrap(), "--tsg", "sll2.svg", &[])).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    // The echo: 6 bytes each way (A sent first, so A's are drawn on a tie), plus SYN and FIN.
    assert_eq!(count(&doc, "data"), 3, "{svg}");
    let svg = String::from_utf8(draw(capture.to_str().unwrap(), "--ladder", "sll2-ladder.svg", &[])).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(count(&doc, "segment"), 10);
}
