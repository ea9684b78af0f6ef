//! The lecture programs in `sockets-api/examples/`, run as their doc comments
//! show, against the kernel on a TAP in a namespace each test creates and
//! deletes: the std::net-style TCP client against a Python echo server, the
//! poll(2) server with two kernel clients at once, the nonblocking connect
//! against a listener, a closed port and an address nobody has, the select(2)
//! client waiting on stdin and its socket at once, and a client killed with
//! SIGTERM while it holds a connection.
//!
//! The examples are the binaries `cargo test --workspace` builds beside the
//! test binaries (`target/*/examples/`).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tapstack_tests::programs::{example, output_within, Reaper};
use tapstack_tests::tap_tests_enabled;
use tapstack_tools::netns::Netns;

const HOST: &str = "10.79.0.1";
const STACK_CIDR: &str = "10.79.0.2/24";
const WAIT: Duration = Duration::from_secs(20);

fn lab(test: &str) -> Option<Netns> {
    if !tap_tests_enabled(test) {
        return None;
    }
    let ns = Netns::create("tst-ex").expect("namespace");
    ns.add_tap("tap0", &format!("{HOST}/24")).expect("TAP");
    Some(ns)
}

/// Runs `python3 -c CODE` in the namespace (the Debian python, which the lab has).
fn python(ns: &Netns, code: &str) -> Command {
    let mut c = ns.command("/usr/bin/python3");
    c.args(["-c", code]);
    c
}

const ECHO_SERVER: &str = r#"
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.79.0.1", 7)); s.listen(8); print("ready", flush=True)
def serve(c):
    while (d := c.recv(4096)):
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Starts the Python echo server and waits until it listens.
fn echo_server(ns: &Netns) -> Reaper {
    let mut child = python(ns, ECHO_SERVER).stdout(Stdio::piped()).spawn().expect("python3");
    let mut ready = [0u8; 6];
    child.stdout.as_mut().unwrap().read_exact(&mut ready).expect("the echo server to start");
    Reaper(child)
}

#[test]
fn the_std_net_style_client_gets_its_lines_echoed_by_the_kernel() {
    let Some(ns) = lab("the_std_net_style_client_gets_its_lines_echoed_by_the_kernel") else { return };
    let Some(client) = example("tcp_echo_client") else { return };
    let _server = echo_server(&ns);
    let mut c = ns.command(client.to_str().unwrap());
    c.args(["tap0", STACK_CIDR, HOST, "7"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().expect("spawn the example");
    child.stdin.take().unwrap().write_all(b"first line\nsecond line\n").unwrap();
    let out = output_within(child, WAIT);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first line\nsecond line\n");
}

const TWO_CLIENTS: &str = r#"
import socket, sys, time
end = time.time() + 15
while True:
    try:
        a = socket.create_connection(("10.79.0.2", 7), timeout=1); break
    except OSError:
        if time.time() > end: sys.exit("the poll server never answered")
        time.sleep(0.2)
b = socket.create_connection(("10.79.0.2", 7), timeout=5)
a.settimeout(5)
b.sendall(b"from b"); a.sendall(b"from a")
print(b.recv(100).decode(), a.recv(100).decode())
"#;

#[test]
fn the_poll_server_serves_two_kernel_clients_at_once_on_one_thread() {
    let Some(ns) = lab("the_poll_server_serves_two_kernel_clients_at_once_on_one_thread") else { return };
    let Some(server) = example("poll_echo_server") else { return };
    let mut c = ns.command(server.to_str().unwrap());
    c.args(["tap0", STACK_CIDR, "7"]).stdout(Stdio::null());
    let _server = Reaper(c.spawn().expect("spawn the example"));
    let out = output_within(python(&ns, TWO_CLIENTS).stdout(Stdio::piped()).spawn().unwrap(), WAIT);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from b from a\n");
}

#[test]
fn the_nonblocking_connect_connects_is_refused_and_times_out() {
    let Some(ns) = lab("the_nonblocking_connect_connects_is_refused_and_times_out") else { return };
    let Some(prog) = example("nonblocking_connect") else { return };
    let _server = echo_server(&ns);
    let run = |host: &str, port: &str, timeout_ms: &str| {
        let mut c = ns.command(prog.to_str().unwrap());
        c.args(["tap0", STACK_CIDR, host, port, timeout_ms]).stdout(Stdio::piped());
        let started = Instant::now();
        let out = output_within(c.spawn().expect("spawn the example"), WAIT);
        (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.success(), started.elapsed())
    };
    let (said, ok, _) = run(HOST, "7", "5000");
    assert!(ok && said.contains("connected to 10.79.0.1:7"), "{said}");
    let (said, ok, _) = run(HOST, "9", "5000");
    assert!(!ok && said.contains("Connection refused"), "{said}");
    let (said, ok, took) = run("10.79.0.9", "7", "700");
    assert!(!ok && said.contains("no answer within 700 ms"), "{said}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// Greets first (so the client's socket is readable while its stdin is quiet),
/// then echoes until the client shuts down its side.
const GREETING_ECHO: &str = r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.79.0.1", 7007)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); c.sendall(b"hello from the kernel\n")
while (d := c.recv(4096)):
    c.sendall(d)
c.close()
"#;

#[test]
fn the_select_client_waits_on_stdin_and_its_socket_at_once() {
    use std::io::{BufRead, BufReader};
    let Some(ns) = lab("the_select_client_waits_on_stdin_and_its_socket_at_once") else { return };
    let Some(prog) = example("select_client") else { return };
    let mut server = python(&ns, GREETING_ECHO).stdout(Stdio::piped()).spawn().expect("python3");
    let mut ready = [0u8; 6];
    server.stdout.as_mut().unwrap().read_exact(&mut ready).expect("the server to start");
    let _server = Reaper(server);
    let mut c = ns.command(prog.to_str().unwrap());
    c.args(["tap0", STACK_CIDR, HOST, "7007"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    // Killed and reaped if the test fails half-way.
    let mut child = Reaper(c.spawn().expect("spawn the example"));
    let mut stdin = child.0.stdin.take().unwrap();
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    // Bounded: a client that never prints is killed, which ends the reads below
    // (and only then: the watchdog stands down once the child has been reaped).
    let id = child.0.id();
    let (done, reaped) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = reaped.recv_timeout(WAIT) {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(id as i32, libc::SIGKILL) };
        }
    });
    let mut line = String::new();
    // The socket wakes select before there is any input.
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "hello from the kernel\n");
    // Then each input line, and each echo, one after the other.
    for l in ["first line\n", "second line\n"] {
        stdin.write_all(l.as_bytes()).unwrap();
        line.clear();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, l);
    }
    // End of input: the client shuts down its side, the server closes, the client ends.
    drop(stdin);
    let status = child.0.wait();
    drop(done);
    watchdog.join().unwrap();
    assert!(status.unwrap().success());
}

/// The kernel's side of a connection that the client will not close itself:
/// accepts one, reads the first line, then says how the connection ended
/// ("eof", "reset", or "timeout" after 15 s).
const HELD: &str = r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.79.0.1", 7)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); c.settimeout(15)
got = b""
while not got.endswith(b"\n"): got += c.recv(100)
print("got line", flush=True)
try:
    print("eof" if c.recv(100) == b"" else "data", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
except socket.timeout:
    print("timeout", flush=True)
"#;

/// Issue 14, item 3: a lecture program killed with SIGTERM while it holds a
/// connection (its input still open) closes it as the kernel closes a killed C
/// program's socket: the kernel reads end of file within the stack's bound (2 s)
/// and a margin, and the program dies of the signal (`Runtime::stop_on_signals`).
/// Before, the kernel's side stayed ESTABLISHED.
#[test]
fn a_client_killed_with_sigterm_closes_its_connection() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    let Some(ns) = lab("a_client_killed_with_sigterm_closes_its_connection") else { return };
    let Some(client) = example("tcp_echo_client") else { return };
    let mut kernel = Reaper(python(&ns, HELD).stdout(Stdio::piped()).spawn().expect("python3"));
    let mut said = BufReader::new(kernel.0.stdout.take().unwrap()).lines().map_while(Result::ok);
    assert_eq!(said.next().as_deref(), Some("ready"));
    let mut c = ns.command(client.to_str().unwrap());
    c.args(["tap0", STACK_CIDR, HOST, "7"]).stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = Reaper(c.spawn().expect("spawn the example"));
    child.0.stdin.as_mut().unwrap().write_all(b"a line\n").unwrap();
    assert_eq!(said.next().as_deref(), Some("got line"));
    let t = Instant::now();
    // SAFETY: kill(2) on our own child, which is waiting for input.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    // The kernel's answer is bounded by its own 15 s timeout.
    let verdict = said.next();
    let took = t.elapsed();
    println!("SIGTERM to tcp_echo_client: the kernel read {verdict:?} after {took:?}");
    assert_eq!(verdict.as_deref(), Some("eof"));
    assert!(took < Duration::from_secs(6), "{took:?}");
    let end = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "the client did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(libc::SIGTERM), "died of the signal: {status}");
}
