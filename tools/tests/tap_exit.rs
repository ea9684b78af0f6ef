//! Issue 14, item 3: `tapstack nc` killed with SIGTERM while it holds a
//! connection to the kernel closes it as a killed C program's descriptors are
//! closed: the kernel's socket reads end of file (a FIN) when nothing was left
//! unread, and gets ECONNRESET (a RST) when unread data was left, within the
//! stack's `exit_linger` (2 s) and a margin. Before, the kernel's side stayed
//! ESTABLISHED. In a namespace the test creates and deletes.

mod common;

use common::Reaper;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tapstack_tools::lab::{Lab, LabConfig};
use tapstack_tools::netns::tap_tests_enabled;

const TAPSTACK: &str = env!("CARGO_BIN_EXE_tapstack");
const WAIT: Duration = Duration::from_secs(20);
/// The stack's exit_linger (2 s), and room for a loaded machine.
const WITHIN: Duration = Duration::from_secs(6);

/// The kernel's side: accepts one connection, then (mode "fin") reads the first
/// line, or (mode "fill") sends until tapstack's buffers are full; says so; then
/// says how the connection ended: "eof", "reset", or "timeout" after 15 s.
const KERNEL: &str = r#"
import socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.78.0.1", port)); s.listen(1); print("ready", flush=True)
c, _ = s.accept()
if mode == "fin":
    print("got", c.recv(100).decode().strip(), flush=True)
else:
    c.setblocking(False); sent = 0; end = time.time() + 2
    while time.time() < end:
        try: sent += c.send(b"x" * 65536)
        except BlockingIOError: time.sleep(0.05)
    print("sent", sent, flush=True)
c.setblocking(True); c.settimeout(15)
try:
    d = c.recv(100)
    print("eof" if d == b"" else "data", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
except socket.timeout:
    print("timeout", flush=True)
"#;

fn lab(test: &str) -> Option<Lab> {
    if !tap_tests_enabled(test) {
        return None;
    }
    let lab = Lab::start("tst-exit", LabConfig { services: String::new(), ..LabConfig::default() }).expect("lab");
    lab.add_tap("tapnc", "10.78.0.1/24").unwrap();
    Some(lab)
}

/// Lines of a child's stdout, read on a thread so the test waits with timeouts.
fn lines(child: &mut Reaper) -> mpsc::Receiver<String> {
    let out = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The kernel's listener on `port` in `mode`, once it listens.
fn kernel(lab: &Lab, mode: &str, port: u16) -> (Reaper, mpsc::Receiver<String>) {
    let mut c = lab.host("/usr/bin/python3");
    c.args(["-c", KERNEL, mode, &port.to_string()]).stdout(Stdio::piped());
    let mut k = Reaper(c.spawn().expect("python3"));
    let said = lines(&mut k);
    assert_eq!(said.recv_timeout(WAIT).as_deref(), Ok("ready"));
    (k, said)
}

/// `tapstack nc 10.78.0.1 PORT` with its input open; its output to `stdout`.
fn tapstack_nc(lab: &Lab, port: u16, stdout: Stdio) -> Reaper {
    let mut c: Command = lab.host(TAPSTACK);
    c.args(["nc", "--tap", "tapnc", "--addr", "10.78.0.2/24", "10.78.0.1", &port.to_string()]);
    Reaper(c.stdin(Stdio::piped()).stdout(stdout).spawn().expect("spawn tapstack nc"))
}

/// Sends SIGTERM to `child`; returns how the kernel says the connection ended
/// and how long after the signal, and checks nc's exit status (143, killed by TERM).
fn terminate(child: &mut Reaper, kernel: &mpsc::Receiver<String>) -> (String, Duration) {
    let t = Instant::now();
    // SAFETY: kill(2) on our own child, still running (it holds the connection).
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    let verdict = kernel.recv_timeout(WAIT).expect("the kernel's side says how it ended");
    let took = t.elapsed();
    let end = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "tapstack nc did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.code() == Some(143) || status.signal() == Some(libc::SIGTERM), "{status}");
    (verdict, took)
}

#[test]
fn sigterm_makes_tapstack_nc_send_a_fin_the_kernel_reads_as_eof() {
    let Some(lab) = lab("sigterm_makes_tapstack_nc_send_a_fin_the_kernel_reads_as_eof") else { return };
    let (_k, said) = kernel(&lab, "fin", 5101);
    let mut ours = tapstack_nc(&lab, 5101, Stdio::null());
    writeln!(ours.0.stdin.as_mut().unwrap(), "hello").unwrap();
    assert_eq!(said.recv_timeout(WAIT).as_deref(), Ok("got hello"));
    let (verdict, took) = terminate(&mut ours, &said);
    println!("SIGTERM to tapstack nc, nothing unread: the kernel read '{verdict}' after {took:?}");
    assert_eq!(verdict, "eof");
    assert!(took < WITHIN, "{took:?}");
}

#[test]
fn sigterm_with_unread_data_makes_tapstack_nc_reset_the_connection() {
    let Some(lab) = lab("sigterm_with_unread_data_makes_tapstack_nc_reset_the_connection") else { return };
    let (_k, said) = kernel(&lab, "fill", 5102);
    // Nobody reads nc's output: the pipe fills, nc stops reading its socket, and
    // the data the kernel sends waits unread in tapstack's receive buffer.
    let mut ours = tapstack_nc(&lab, 5102, Stdio::piped());
    let sent = said.recv_timeout(WAIT).expect("the kernel sent");
    let n: usize = sent.strip_prefix("sent ").and_then(|n| n.parse().ok()).expect(&sent);
    assert!(n > 200_000, "more than the pipe and the receive buffer hold: {sent}");
    let (verdict, took) = terminate(&mut ours, &said);
    println!("SIGTERM to tapstack nc, {n} bytes sent to it: the kernel read '{verdict}' after {took:?}");
    assert_eq!(verdict, "reset");
    assert!(took < WITHIN, "{took:?}");
}
