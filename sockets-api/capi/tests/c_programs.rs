//! C programs built against libtapstack: tapstack.h compiles cleanly and the
//! calls keep libc's conventions (always run), and the course-style echo server
//! and clients (tests/c/: the plain one, and the select(2) one waiting on stdin
//! and a socket at once) talk to the Linux kernel over a TAP in a network
//! namespace of the test's own (root; under CI=true they must run).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tapstack_tools::netns::{tap_tests_enabled, Netns};

/// Compiles tests/c/`name`.c against the library; returns the program's path.
fn build(name: &str) -> PathBuf {
    let lib = common::library();
    let libdir = lib.parent().expect("a directory");
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("tapstack-c-{name}-{}", std::process::id()));
    let status = Command::new("cc")
        .args(["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(here.join("include"))
        .arg(here.join(format!("tests/c/{name}.c")))
        .arg("-L")
        .arg(libdir)
        .arg(format!("-Wl,-rpath,{}", libdir.display()))
        .args(["-ltapstack", "-lpthread", "-o"])
        .arg(&out)
        .status()
        .expect("cc runs");
    assert!(status.success(), "cc failed on {name}.c");
    out
}

/// Ends the child (a process this test started) when dropped. The children run
/// under `timeout`, which passes SIGTERM on to the program it runs but cannot
/// pass on SIGKILL: killing `timeout` outright would leave the program running,
/// orphaned, after the test. So SIGTERM first, then SIGKILL if it lingers.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn header_compiles_and_calls_set_errno_as_libc() {
    let prog = build("errno_check");
    let out = Command::new(&prog).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("ok"), "{text}");
    let _ = std::fs::remove_file(prog);
}

#[test]
fn c_echo_server_answers_the_kernels_nc() {
    if !tap_tests_enabled("c_echo_server_answers_the_kernels_nc") {
        return;
    }
    let server = build("echo_server");
    let ns = Netns::create("tst-capi").expect("a namespace");
    ns.add_tap("tap0", "10.0.0.1/24").expect("a TAP");
    let mut child = ns.command("timeout");
    child.args(["30"]).arg(&server).args(["tap0", "10.0.0.2/24", "7"]).stdout(Stdio::piped());
    let mut child = Reaper(child.spawn().expect("the server starts"));
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("stdout")).read_line(&mut line).expect("a line");
    assert!(line.starts_with("listening"), "server said {line:?}");

    let message = "hello from the kernel's nc\nand a second line\n";
    let mut nc = ns.command("timeout");
    nc.args(["10", "nc", "-N", "10.0.0.2", "7"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut nc = nc.spawn().expect("nc starts");
    nc.stdin.take().expect("stdin").write_all(message.as_bytes()).expect("to nc");
    let out = nc.wait_with_output().expect("nc ends");
    assert!(out.status.success(), "nc failed: {:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stdout), message);
    let _ = std::fs::remove_file(server);
}

#[test]
fn c_client_talks_to_the_kernels_nc_listener() {
    if !tap_tests_enabled("c_client_talks_to_the_kernels_nc_listener") {
        return;
    }
    let client = build("echo_client");
    let ns = Netns::create("tst-capi").expect("a namespace");
    ns.add_tap("tap0", "10.0.0.1/24").expect("a TAP");
    // The kernel listens, sends its stdin and shuts down (-N), prints what came.
    let mut nc = ns.command("timeout");
    nc.args(["20", "nc", "-N", "-l", "10.0.0.1", "7007"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut nc = Reaper(nc.spawn().expect("nc starts"));
    nc.0.stdin.take().expect("stdin").write_all(b"from the kernel\n").expect("to nc");
    // Wait (bounded) for the listener before connecting.
    let start = Instant::now();
    while !ns.exec_checked(&["ss", "-Hltn", "sport = :7007"]).is_ok_and(|o| !o.stdout.is_empty()) {
        assert!(start.elapsed() < Duration::from_secs(10), "nc never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = ns.command("timeout");
    c.args(["20"]).arg(&client).args(["tap0", "10.0.0.2/24", "10.0.0.1", "7007"]);
    let mut c =
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the client starts");
    c.stdin.take().expect("stdin").write_all(b"from the C client\n").expect("to the client");
    let out = c.wait_with_output().expect("the client ends");
    assert!(out.status.success(), "client failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from the kernel\n");
    let mut heard = String::new();
    nc.0.stdout.take().expect("stdout").read_to_string_bounded(&mut heard);
    assert_eq!(heard, "from the C client\n");
    let _ = std::fs::remove_file(client);
}

/// The kernel's side for the select client: greets first (so the socket is
/// readable while stdin is not), then echoes until the client shuts down.
const GREETING_ECHO: &str = r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.0.0.1", 7008)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); c.sendall(b"hello from the kernel\n")
while (d := c.recv(4096)):
    c.sendall(d)
c.close()
"#;

#[test]
fn c_select_client_waits_on_stdin_and_a_socket_at_once() {
    if !tap_tests_enabled("c_select_client_waits_on_stdin_and_a_socket_at_once") {
        return;
    }
    let client = build("select_client");
    let ns = Netns::create("tst-capi").expect("a namespace");
    ns.add_tap("tap0", "10.0.0.1/24").expect("a TAP");
    let mut server = ns.command("timeout");
    server.args(["30", "/usr/bin/python3", "-c", GREETING_ECHO]).stdout(Stdio::piped());
    let mut server = Reaper(server.spawn().expect("python3 starts"));
    let mut ready = String::new();
    BufReader::new(server.0.stdout.take().expect("stdout")).read_line(&mut ready).expect("a line");
    assert_eq!(ready, "ready\n");

    let mut c = ns.command("timeout");
    c.args(["30"]).arg(&client).args(["tap0", "10.0.0.2/24", "10.0.0.1", "7008"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut c = Reaper(c.spawn().expect("the client starts"));
    let mut stdin = c.0.stdin.take().expect("stdin");
    let mut out = BufReader::new(c.0.stdout.take().expect("stdout"));
    let mut line = String::new();
    // The socket wakes select while stdin is quiet: the greeting is printed
    // before the client has any input.
    out.read_line(&mut line).expect("the greeting");
    assert_eq!(line, "hello from the kernel\n");
    // Then each line of stdin wakes it, and each echo, one after the other.
    for l in ["first line\n", "second line\n"] {
        stdin.write_all(l.as_bytes()).expect("to the client");
        stdin.flush().expect("flushed");
        line.clear();
        out.read_line(&mut line).expect("an echo");
        assert_eq!(line, l);
    }
    // The end of stdin: the client shuts down its side, the server closes, the client ends.
    drop(stdin);
    let status = c.0.wait().expect("the client ends");
    let mut err = String::new();
    let _ = c.0.stderr.take().expect("stderr").read_to_string(&mut err);
    assert!(status.success(), "client failed: {err}");
    let _ = std::fs::remove_file(client);
}

/// Reads to EOF (nc exits once both sides closed; `timeout` bounds it).
trait ReadAll {
    fn read_to_string_bounded(&mut self, s: &mut String);
}

impl<R: std::io::Read> ReadAll for R {
    fn read_to_string_bounded(&mut self, s: &mut String) {
        let _ = self.read_to_string(s);
    }
}
