//! The passive inspector against tapstack's own state machine: for every capture
//! that has tapstack's trace of the same run beside it (`NAME.pcap` + `NAME.trace`,
//! in `captures/` at the repository root and in `tools/tests/fixtures/`), the
//! states the inspector infers from the wire for tapstack's side of each
//! connection must be the states tapstack traced, in order, with the same causes
//! wherever both name one.
//!
//! `record_fixture` (ignored; run it as root with `--ignored`) records the fixture
//! in `tools/tests/fixtures/` anew, in a namespace of its own.

use std::path::{Path, PathBuf};
use tapstack_tools::inspect::{inspect_pcap, trace};

fn capture_dirs() -> Vec<PathBuf> {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![tools.join("../captures"), tools.join("tests/fixtures")]
}

/// Every `NAME.pcap` (or `.pcapng`) with a `NAME.trace` beside it.
fn captures_with_traces() -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for dir in capture_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut pcaps: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
            .collect();
        pcaps.sort();
        for pcap in pcaps {
            let trace = pcap.with_extension("trace");
            if trace.exists() {
                out.push((pcap, trace));
            }
        }
    }
    out
}

#[test]
fn inspected_states_equal_traced_states() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (pcap, trace_path) in captures_with_traces() {
        let inspection = inspect_pcap(&pcap).unwrap_or_else(|e| panic!("{}: {e}", pcap.display()));
        // tapstack's own recordings end with everything acknowledged: no
        // transition rests on a segment the capture does not show arrived.
        for c in &inspection.connections {
            let unsure: Vec<_> = c.sides.iter().flat_map(|s| &s.changes).filter(|ch| !ch.confirmed).collect();
            assert!(unsure.is_empty(), "{}: unconfirmed {unsure:?}", pcap.display());
        }
        let text = std::fs::read_to_string(&trace_path).unwrap();
        let events = trace::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", trace_path.display()));
        if events.is_empty() {
            // No TCP connection on tapstack's side (ping, UDP, a SYN refused without
            // one): in every connection the inspector finds, one side never changes state.
            for c in &inspection.connections {
                assert!(
                    c.sides.iter().any(|s| s.changes.is_empty()),
                    "{}: a connection the trace lacks",
                    pcap.display()
                );
            }
            continue;
        }
        for (local, remote) in trace::endpoints(&events) {
            match trace::compare_endpoint(&inspection.connections, &events, local, remote) {
                Ok(n) => checked += n,
                Err(e) => failures.push(format!("{}: {e}", pcap.display())),
            }
        }
    }
    assert!(failures.is_empty(), "inspector and trace disagree:\n{}", failures.join("\n"));
    assert!(checked > 0, "no capture with a trace was checked");
    eprintln!("{checked} traced connection(s) match the inspector");
}

/// The fixture holds the kinds of connection the comparison should cover.
#[test]
fn the_fixture_covers_both_opens_both_closes_and_a_reset() {
    let dir = &capture_dirs()[1];
    let events = trace::parse(&std::fs::read_to_string(dir.join("lab-tcp.trace")).unwrap()).unwrap();
    let causes: Vec<(String, String, &str)> =
        events.iter().map(|e| (e.from.to_string(), e.to.to_string(), e.cause.as_str())).collect();
    for (from, to, cause) in [
        ("LISTEN", "SYN-RECEIVED", "rcv SYN / snd SYN,ACK"),
        ("CLOSED", "SYN-SENT", "active OPEN / snd SYN"),
        ("CLOSE-WAIT", "LAST-ACK", "CLOSE / snd FIN"),
        ("FIN-WAIT-2", "TIME-WAIT", "rcv FIN / snd ACK"),
        ("ESTABLISHED", "CLOSED", "rcv RST"),
    ] {
        assert!(causes.iter().any(|c| c.0 == from && c.1 == to && c.2 == cause), "{from} -> {to} ({cause}) missing");
    }
}

/// Records `tools/tests/fixtures/lab-tcp.{pcap,trace,toml}`: Linux talks to
/// tapstack's echo and HTTP services (Linux closes first; tapstack closes
/// first; Linux aborts with an RST; a refused port) and tapstack connects to a
/// Linux server, all in a namespace of its own that is removed afterwards.
#[test]
#[ignore = "records the fixture anew; needs root"]
fn record_fixture() {
    use sockets_api::TcpStream;
    use std::io::{Read, Write};
    use std::time::{Duration, SystemTime};
    use tapstack_tools::lab::{Lab, LabConfig};

    let dir = &capture_dirs()[1];
    let pcap = dir.join("lab-tcp.pcap");
    let config = LabConfig { pcap: Some(pcap.clone()), services: "echo,http".into(), seed: 7, ..LabConfig::default() };
    let mut lab = Lab::start("tst-insp", config).expect("lab");
    let trace = lab.runtime().net().trace_transitions(1024);
    let collector = std::thread::spawn(move || {
        let mut got = Vec::new();
        while let Some(t) = trace.recv_timeout(Duration::from_secs(3)) {
            got.push((SystemTime::now(), t));
        }
        got
    });
    let py = |script: &str| {
        let out = lab.host("timeout").args(["10", "python3", "-c", script]).output().expect("python3");
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let me = lab.config.stack_addr;
    py(&format!(
        "import socket\ns = socket.create_connection(('{me}', 7), timeout=5)\ns.sendall(b'hello\\n')\n\
         got = b''\nwhile not got.endswith(b'\\n'):\n    got += s.recv(100)\ns.close()\n"
    ));
    py(&format!(
        "import socket\ns = socket.create_connection(('{me}', 80), timeout=5)\n\
         s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\nwhile s.recv(4096):\n    pass\ns.close()\n"
    ));
    py(&format!(
        "import socket, struct, time\ns = socket.create_connection(('{me}', 7), timeout=5)\n\
         s.sendall(b'x\\n')\ns.recv(10)\ntime.sleep(0.2)\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\ns.close()\n"
    ));
    py(&format!(
        "import socket\ntry:\n    socket.create_connection(('{me}', 5), timeout=5)\nexcept ConnectionRefusedError:\n    pass\n"
    ));
    // tapstack opens: a Linux server reads to the end, answers and closes.
    let host = lab.config.host_addr;
    let server = format!(
        "import socket\nl = socket.socket()\nl.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         l.bind(('{host}', 9000))\nl.listen(1)\nc, _ = l.accept()\nwhile c.recv(100):\n    pass\n\
         c.sendall(b'bye')\nc.close()\n"
    );
    let mut child = lab.host("timeout").args(["10", "python3", "-c", &server]).spawn().expect("python3 server");
    std::thread::sleep(Duration::from_millis(500));
    let net = lab.runtime().net();
    let mut s = TcpStream::connect(&net, (host, 9000)).expect("connect");
    s.write_all(b"from tapstack").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"bye");
    drop(s);
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(500));
    lab.stop().expect("stop");
    drop(lab);
    let events = collector.join().unwrap();

    // Seconds relative to the capture's first frame, as the trace format has them.
    let mut source = stack::device::pcap::PcapSource::open(&pcap).unwrap();
    let first = source.next_frame().unwrap().expect("a frame").0;
    let mut text = String::new();
    for (at, t) in events {
        let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().saturating_sub(first);
        text.push_str(&format!("[{:>10.6}] {t}\n", since.as_secs_f64()));
    }
    std::fs::write(pcap.with_extension("trace"), text).unwrap();
    std::fs::write(
        pcap.with_extension("toml"),
        "# Recorded by `cargo test -p tapstack-tools --test inspect_captures -- --ignored record_fixture`.\n\
         description = \"Linux and tapstack (10.77.0.2) on a TAP: echo closed by Linux, HTTP closed by tapstack, \
         an echo reset by Linux, a refused port, and tapstack connecting to a Linux server\"\n\
         stack = \"10.77.0.2\"\nhost = \"10.77.0.1\"\n",
    )
    .unwrap();
}
