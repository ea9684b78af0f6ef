//! `tapstack states`: the rendered diagram, read back. The SVG is parsed as XML
//! (Graphviz writes each node and edge as a `<g>` with a `<title>` naming it and
//! `<text>` for its label); the PNG is checked to be a PNG of a readable size.

use std::path::{Path, PathBuf};
use std::process::Command;

const TAPSTACK: &str = env!("CARGO_BIN_EXE_tapstack");

fn fixture(ext: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("lab-tcp.{ext}"))
}

fn out_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tapstack-states-{}-{name}", std::process::id()))
}

fn states(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(TAPSTACK).arg("states").args(args).output().expect("run tapstack");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Every node's title, and every edge as (title "FROM->TO", label text).
fn svg_graph(svg: &str) -> (Vec<String>, Vec<(String, String)>) {
    // Graphviz starts with a DOCTYPE naming the SVG DTD, which roxmltree refuses unless asked.
    let opt = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(svg, opt).expect("well-formed SVG");
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for g in doc.descendants().filter(|n| n.has_tag_name("g")) {
        let title = g.children().find(|c| c.has_tag_name("title")).and_then(|t| t.text()).unwrap_or("").to_string();
        let text: Vec<&str> = g.descendants().filter(|c| c.has_tag_name("text")).filter_map(|t| t.text()).collect();
        match g.attribute("class") {
            Some(c) if c.split_whitespace().any(|w| w == "node") => nodes.push(title),
            Some(c) if c.split_whitespace().any(|w| w == "edge") => {
                // "LAST-ACK:e->CLOSED:e" names the ports an edge leaves and enters by.
                let ends: Vec<&str> = title.split("->").map(|end| end.split(':').next().unwrap_or(end)).collect();
                edges.push((ends.join("->"), text.join(" ")))
            }
            _ => {}
        }
    }
    (nodes, edges)
}

/// Draws the fixture's capture (`--pcap`) or trace (`--trace`) into a temporary
/// file named `name` and returns its bytes.
fn draw(input: &str, name: &str) -> Vec<u8> {
    let (flag, ext) = if input == "pcap" { ("--pcap", "pcap") } else { ("--trace", "trace") };
    let path = out_path(name);
    let (ok, _, err) = states(&[flag, fixture(ext).to_str().unwrap(), "--out", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    bytes
}

#[test]
fn svg_has_every_state_and_every_figure_transition_with_counts() {
    let svg = String::from_utf8(draw("pcap", "diagram.svg")).expect("SVG is text");
    let (nodes, edges) = svg_graph(&svg);
    let mut names = nodes.clone();
    names.sort();
    let mut want: Vec<String> = stack::tcp::State::ALL.iter().map(|s| s.name().to_string()).collect();
    want.sort();
    assert_eq!(names, want, "exactly the eleven states, once each");
    let has = |from: &str, to: &str, label: &str| {
        edges.iter().any(|(t, l)| t == &format!("{from}->{to}") && l.starts_with(label))
    };
    for (from, to, label) in [
        ("CLOSED", "LISTEN", "passive OPEN"),
        ("CLOSED", "SYN-SENT", "active OPEN / snd SYN"),
        ("LISTEN", "SYN-RECEIVED", "rcv SYN / snd SYN,ACK"),
        ("LISTEN", "SYN-SENT", "SEND / snd SYN"),
        ("LISTEN", "CLOSED", "CLOSE"),
        ("SYN-SENT", "CLOSED", "CLOSE"),
        ("SYN-SENT", "SYN-RECEIVED", "rcv SYN / snd SYN,ACK"),
        ("SYN-SENT", "ESTABLISHED", "rcv SYN,ACK / snd ACK"),
        ("SYN-RECEIVED", "ESTABLISHED", "rcv ACK of SYN"),
        ("SYN-RECEIVED", "LISTEN", "rcv RST"),
        ("SYN-RECEIVED", "FIN-WAIT-1", "CLOSE / snd FIN"),
        ("ESTABLISHED", "FIN-WAIT-1", "CLOSE / snd FIN"),
        ("ESTABLISHED", "CLOSE-WAIT", "rcv FIN / snd ACK"),
        ("FIN-WAIT-1", "FIN-WAIT-2", "rcv ACK of FIN"),
        ("FIN-WAIT-1", "CLOSING", "rcv FIN / snd ACK"),
        ("FIN-WAIT-2", "TIME-WAIT", "rcv FIN / snd ACK"),
        ("CLOSING", "TIME-WAIT", "rcv ACK of FIN"),
        ("CLOSE-WAIT", "LAST-ACK", "CLOSE / snd FIN"),
        ("LAST-ACK", "CLOSED", "rcv ACK of FIN"),
        ("TIME-WAIT", "CLOSED", "timeout=2MSL"),
        ("ESTABLISHED", "CLOSED", "rcv RST"),
    ] {
        assert!(has(from, to, label), "{from} -> {to} ({label}) not drawn");
    }
    // The fixture's five connections, both sides: five active opens (one
    // refused), four passive ones, one reset each way.
    assert!(has("CLOSED", "SYN-SENT", "active OPEN / snd SYN ×5"), "{edges:?}");
    assert!(has("LISTEN", "SYN-RECEIVED", "rcv SYN / snd SYN,ACK ×4"));
    assert!(has("ESTABLISHED", "CLOSED", "rcv RST ×1"));
    assert!(has("ESTABLISHED", "CLOSED", "ABORT / snd RST ×1"));
    // The refused SYN: SYN-SENT -> CLOSED on an RST, beyond the figure but drawn.
    assert!(has("SYN-SENT", "CLOSED", "rcv RST ×1"));
    assert!(!has("CLOSED", "LISTEN", "passive OPEN ×"), "a capture cannot show a passive OPEN");
}

#[test]
fn png_is_a_png_of_a_readable_size() {
    let png = draw("trace", "diagram.png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert!((800..4000).contains(&width) && (500..3000).contains(&height), "{width}x{height}");
}

#[test]
fn timeline_from_a_capture_and_from_a_trace() {
    let (ok, out, err) = states(&["--pcap", fixture("pcap").to_str().unwrap(), "--timeline"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("connection 5: A = 10.77.0.2:59003 (starts CLOSED), B = 10.77.0.1:9000 (starts LISTEN)"),
        "{out}"
    );
    assert!(out.contains("[connection refused]") && out.contains("A: CLOSED -> SYN-SENT (active OPEN / snd SYN)"));
    assert!(out.contains("37 TCP segments in 5 connection(s)"), "{out}");
    let (ok, out, err) = states(&["--trace", fixture("trace").to_str().unwrap(), "--timeline"]);
    assert!(ok, "{err}");
    assert!(out.contains("connection 1 (tcp#2.0): 10.77.0.2:7 -> 10.77.0.1:56100"), "{out}");
    assert!(out.contains("LAST-ACK -> CLOSED       (rcv ACK of FIN)"), "{out}");
}

#[test]
fn errors_are_plain() {
    let (ok, _, err) = states(&["--pcap", fixture("pcap").to_str().unwrap(), "--out", "/tmp/x.pdf"]);
    assert!(!ok && err.contains(".svg or .png"), "{err}");
    let (ok, _, err) = states(&["--pcap", "/nonexistent.pcap", "--timeline"]);
    assert!(!ok && err.contains("/nonexistent.pcap"), "{err}");
    // Without Graphviz on the PATH.
    let out = Command::new(TAPSTACK)
        .args(["states", "--pcap", fixture("pcap").to_str().unwrap(), "--out"])
        .arg(out_path("nodot.svg"))
        .env("PATH", "")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("install graphviz"), "{err}");
}

#[test]
fn without_out_it_prints_the_timeline_and_the_diagrams_counts_which_agree() {
    // Issue 14: `states --pcap X` alone said --out was required, though help calls it optional.
    let (ok, out, err) = states(&["--pcap", fixture("pcap").to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("connection 5: A = 10.77.0.2:59003"), "the timeline: {out}");
    let (timeline, table) = out.split_once("transition(s) taken, as the state diagram").expect("the counts");
    let mut rows = 0;
    for row in table.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        // "  FROM -> TO   (cause)   ×N"
        let (change, n) = row.rsplit_once('×').unwrap_or_else(|| panic!("a count in {row:?}"));
        let n: usize = n.split_whitespace().next().unwrap().parse().unwrap();
        let (arrow, cause) = change.split_once('(').unwrap();
        let words: Vec<&str> = arrow.split_whitespace().collect();
        let shown = format!("{} -> {} ({}", words[0], words[2], cause.trim_end());
        let in_timeline = timeline.lines().filter(|l| l.contains(&shown) && !l.contains("[unconfirmed]")).count();
        assert_eq!(n, in_timeline, "{row:?}: the diagram's count and the timeline's differ\n{out}");
        rows += 1;
    }
    assert!(rows >= 10, "{table}");
    // The same counts as the SVG's labels.
    let svg = String::from_utf8(draw("pcap", "agree.svg")).unwrap();
    assert!(svg.contains("active OPEN / snd SYN ×5") && table.contains("(active OPEN / snd SYN)"), "{table}");
}
