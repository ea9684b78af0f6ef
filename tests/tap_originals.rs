//! The lecture programs' originals (`sockets-api/examples/originals/`: the same
//! five programs in C and in Python on the kernel's sockets, which
//! docs/lecture-programs.md sets beside the tapstack versions) talk to the
//! tapstack versions over a TAP, in a namespace each test creates and deletes:
//! a kernel client against a tapstack server, a tapstack client against a kernel
//! server, in both languages. So the originals are known to work, and the
//! tapstack programs are shown to behave as their originals do on the wire.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tapstack_tests::programs::{example, output_within, Reaper};
use tapstack_tests::tap_tests_enabled;
use tapstack_tools::netns::Netns;

const HOST: &str = "10.78.0.1";
const STACK: &str = "10.78.0.2";
const STACK_CIDR: &str = "10.78.0.2/24";
const WAIT: Duration = Duration::from_secs(20);
const LANGS: [&str; 2] = ["c", "python"];

fn originals() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sockets-api/examples/originals")
}

/// The original `name` in `lang`, as a command in the namespace (C compiled first).
fn original(ns: &Netns, lang: &str, name: &str) -> Command {
    if lang == "python" {
        let mut c = ns.command("/usr/bin/python3");
        c.arg(originals().join(format!("python/{name}.py")));
        return c;
    }
    let out = std::env::temp_dir().join(format!("tapstack-orig-{name}-{}", std::process::id()));
    if !out.exists() {
        let status = Command::new("cc")
            .args(["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-pthread", "-o"])
            .arg(&out)
            .arg(originals().join(format!("c/{name}.c")))
            .status()
            .expect("cc runs");
        assert!(status.success(), "cc failed on {name}.c");
    }
    ns.command(out.to_str().unwrap())
}

fn lab(test: &str) -> Option<Netns> {
    if !tap_tests_enabled(test) {
        return None;
    }
    let ns = Netns::create("tst-or").expect("namespace");
    ns.add_tap("tap0", &format!("{HOST}/24")).expect("TAP");
    Some(ns)
}

/// Starts a server and waits (bounded) until its first line of output says it is up.
fn server_saying(c: &mut Command, what: &str) -> Reaper {
    let mut child = Reaper(c.stdout(Stdio::piped()).spawn().expect("spawn the server"));
    let mut lines = BufReader::new(child.0.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).expect("the server's first line");
    assert!(first.contains(what), "the server said {first:?}");
    // Keep reading, so that its later lines never block it on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    child
}

/// Waits (bounded) until the kernel in `ns` has a listener (`-lt`) or a bound
/// UDP socket (`-lu`) on `port`.
fn kernel_listens(ns: &Netns, flags: &str, port: u16) {
    let end = Instant::now() + WAIT;
    loop {
        let out = ns.command("ss").args(["-Hn", flags, &format!("sport = :{port}")]).output().expect("ss");
        if !out.stdout.is_empty() {
            return;
        }
        assert!(Instant::now() < end, "nothing listens on {port} in the namespace");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a client with `input` on its stdin, bounded by [`WAIT`].
fn client(c: &mut Command, input: &[u8]) -> Output {
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().unwrap().write_all(input).unwrap();
    output_within(child, WAIT)
}

fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_original_tcp_echo_clients_are_echoed_by_tapstacks_server() {
    let Some(ns) = lab("the_original_tcp_echo_clients_are_echoed_by_tapstacks_server") else { return };
    let Some(server) = example("tcp_echo_server") else { return };
    let mut s = ns.command(server.to_str().unwrap());
    s.args(["tap0", STACK_CIDR, "7"]);
    let _server = server_saying(&mut s, "echoing TCP");
    for lang in LANGS {
        let mut c = original(&ns, lang, "tcp_echo_client");
        c.args([STACK, "7"]);
        let out = client(&mut c, b"one\ntwo\n");
        assert!(out.status.success(), "{lang}: {out:?}");
        assert_eq!(said(&out), "one\ntwo\n", "{lang}");
    }
}

#[test]
fn tapstacks_tcp_echo_client_is_echoed_by_the_original_servers() {
    let Some(ns) = lab("tapstacks_tcp_echo_client_is_echoed_by_the_original_servers") else { return };
    let Some(prog) = example("tcp_echo_client") else { return };
    for (i, (lang, name)) in LANGS.iter().flat_map(|l| [(*l, "tcp_echo_server"), (*l, "poll_echo_server")]).enumerate()
    {
        let port = 7000 + i as u16;
        let mut s = original(&ns, lang, name);
        let _server = Reaper(s.arg(port.to_string()).stdout(Stdio::null()).spawn().expect("spawn"));
        kernel_listens(&ns, "-lt", port);
        let mut c = ns.command(prog.to_str().unwrap());
        c.args(["tap0", STACK_CIDR, HOST, &port.to_string()]);
        let out = client(&mut c, b"first line\nsecond line\n");
        assert!(out.status.success(), "{lang} {name}: {out:?}");
        assert_eq!(said(&out), "first line\nsecond line\n", "{lang} {name}");
    }
}

#[test]
fn tapstacks_udp_echo_client_is_echoed_by_the_original_servers() {
    let Some(ns) = lab("tapstacks_udp_echo_client_is_echoed_by_the_original_servers") else { return };
    let Some(prog) = example("udp_echo_client") else { return };
    for (i, lang) in LANGS.iter().enumerate() {
        let port = 7100 + i as u16;
        let mut s = original(&ns, lang, "udp_echo_server");
        let _server = server_saying(s.arg(port.to_string()), "echoing UDP");
        kernel_listens(&ns, "-lu", port);
        let mut c = ns.command(prog.to_str().unwrap());
        c.args(["tap0", STACK_CIDR, HOST, &port.to_string()]);
        let out = client(&mut c, b"a datagram\n");
        assert!(out.status.success(), "{lang}: {out:?}");
        assert!(said(&out).contains("a datagram"), "{lang}: {}", said(&out));
    }
}

#[test]
fn the_original_nonblocking_connects_reach_tapstack_and_are_refused_by_it() {
    let Some(ns) = lab("the_original_nonblocking_connects_reach_tapstack_and_are_refused_by_it") else { return };
    let Some(server) = example("tcp_echo_server") else { return };
    let mut s = ns.command(server.to_str().unwrap());
    s.args(["tap0", STACK_CIDR, "7"]);
    let _server = server_saying(&mut s, "echoing TCP");
    for lang in LANGS {
        let mut c = original(&ns, lang, "nonblocking_connect");
        let out = client(c.args([STACK, "7", "5000"]), b"");
        assert!(out.status.success() && said(&out).contains("connected to 10.78.0.2:7"), "{lang}: {out:?}");
        let mut c = original(&ns, lang, "nonblocking_connect");
        let out = client(c.args([STACK, "9", "5000"]), b"");
        assert!(!out.status.success() && said(&out).contains("Connection refused"), "{lang}: {out:?}");
    }
}
