//! `tapstack nc` (the binary, on its own tapstack instance) against the kernel's
//! `nc`, over TCP and UDP, through a TAP in a namespace the test creates and
//! deletes. Here, next to the binary, because Cargo builds a package's binary
//! for its own integration tests only.

mod common;

use common::Reaper;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tapstack_tools::lab::{Lab, LabConfig};
use tapstack_tools::netns::tap_tests_enabled;

const TAPSTACK: &str = env!("CARGO_BIN_EXE_tapstack");

impl Reaper {
    fn spawn(mut c: Command) -> Reaper {
        Reaper(c.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn"))
    }

    fn say(&mut self, line: &str) {
        writeln!(self.0.stdin.as_mut().unwrap(), "{line}").unwrap();
    }

    /// Lines of its stdout, read on a thread so the test waits with timeouts.
    fn lines(&mut self) -> mpsc::Receiver<String> {
        let out = self.0.stdout.take().unwrap();
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
}

/// A lab with a second link for `tapstack nc`: host 10.78.0.1, tapstack 10.78.0.2.
fn lab(test: &str) -> Option<Lab> {
    if !tap_tests_enabled(test) {
        return None;
    }
    let lab = Lab::start("tst-nc", LabConfig { services: String::new(), ..LabConfig::default() }).expect("lab");
    lab.add_tap("tapnc", "10.78.0.1/24").unwrap();
    Some(lab)
}

fn tapstack_nc(lab: &Lab, args: &[&str]) -> Reaper {
    let mut c = lab.host(TAPSTACK);
    c.args(["nc", "--tap", "tapnc", "--addr", "10.78.0.2/24", "--seed", "5"]).args(args);
    Reaper::spawn(c)
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn kernel_nc_and_tapstack_nc_exchange_lines_over_udp() {
    let Some(lab) = lab("kernel_nc_and_tapstack_nc_exchange_lines_over_udp") else { return };
    let mut kernel = Reaper::spawn({
        let mut c = lab.host("nc");
        c.args(["-u", "-l", "10.78.0.1", "5000"]);
        c
    });
    let mut ours = tapstack_nc(&lab, &["-u", "10.78.0.1", "5000"]);
    let (kernel_lines, our_lines) = (kernel.lines(), ours.lines());
    // The first datagram may wait for ARP and for nc to bind: resend until one arrives.
    let mut got = None;
    for _ in 0..10 {
        ours.say("hello from tapstack");
        if let Ok(line) = kernel_lines.recv_timeout(Duration::from_secs(1)) {
            got = Some(line);
            break;
        }
    }
    assert_eq!(got.as_deref(), Some("hello from tapstack"));
    // The kernel's nc -l now talks to whoever sent first.
    kernel.say("hello from linux");
    assert_eq!(our_lines.recv_timeout(WAIT).unwrap(), "hello from linux");
}

#[test]
fn tapstack_nc_connects_to_the_kernels_nc_over_tcp() {
    let Some(lab) = lab("tapstack_nc_connects_to_the_kernels_nc_over_tcp") else { return };
    let mut kernel = Reaper::spawn({
        let mut c = lab.host("nc");
        c.args(["-l", "10.78.0.1", "5001"]);
        c
    });
    let kernel_lines = kernel.lines();
    // Connect once the kernel's nc listens (bounded retries: a refused connect exits).
    let mut ours = None;
    for _ in 0..50 {
        let mut candidate = tapstack_nc(&lab, &["10.78.0.1", "5001"]);
        candidate.say("hello over TCP from tapstack");
        if let Ok(line) = kernel_lines.recv_timeout(Duration::from_millis(500)) {
            assert_eq!(line, "hello over TCP from tapstack");
            ours = Some(candidate);
            break;
        }
    }
    let mut ours = ours.expect("tapstack nc never reached the kernel's nc");
    let our_lines = ours.lines();
    kernel.say("hello from linux");
    assert_eq!(our_lines.recv_timeout(WAIT).unwrap(), "hello from linux");
}

#[test]
fn the_kernels_nc_connects_to_tapstack_nc_listening_over_tcp() {
    let Some(lab) = lab("the_kernels_nc_connects_to_tapstack_nc_listening_over_tcp") else { return };
    let mut ours = tapstack_nc(&lab, &["-l", "5002"]);
    let our_lines = ours.lines();
    let mut kernel = None;
    for _ in 0..50 {
        let mut c = lab.host("nc");
        c.args(["10.78.0.2", "5002"]);
        let mut candidate = Reaper::spawn(c);
        candidate.say("hello from linux");
        if let Ok(line) = our_lines.recv_timeout(Duration::from_millis(500)) {
            assert_eq!(line, "hello from linux");
            kernel = Some(candidate);
            break;
        }
    }
    let mut kernel = kernel.expect("the kernel's nc never reached tapstack nc -l");
    let kernel_lines = kernel.lines();
    ours.say("hello from tapstack");
    assert_eq!(kernel_lines.recv_timeout(WAIT).unwrap(), "hello from tapstack");
}

/// Waits until something in the lab's host namespace listens on TCP `port`.
fn wait_listening(lab: &Lab, port: u16) {
    for _ in 0..100 {
        let out = lab.host("ss").args(["-Hltn", &format!("sport = :{port}")]).output().expect("run ss");
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port}");
}

/// Waits (bounded) for a child to exit; its status.
fn wait_exit(child: &mut Reaper, within: Duration) -> Option<std::process::ExitStatus> {
    let end = std::time::Instant::now() + within;
    while std::time::Instant::now() < end {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Issue 14's lost data: `(echo line1; sleep 1; echo line2) | tapstack nc PEER
/// PORT` against `nc -l -N` whose own input is empty. The kernel's nc sends its
/// FIN at once; tapstack nc must go on sending its input after that EOF (a
/// half-close), and its data and FIN must reach the kernel before it stops its
/// stack. Before the fix it stopped at the peer's FIN: the kernel got nothing
/// and hung in FIN-WAIT-2.
#[test]
fn tapstack_nc_delivers_all_its_input_after_the_peer_half_closes() {
    let Some(lab) = lab("tapstack_nc_delivers_all_its_input_after_the_peer_half_closes") else { return };
    let mut kernel = {
        let mut c = lab.host("nc");
        c.args(["-l", "-N", "10.78.0.1", "5003"]).stdin(Stdio::null()).stdout(Stdio::piped());
        Reaper(c.spawn().expect("spawn nc"))
    };
    let kernel_lines = kernel.lines();
    wait_listening(&lab, 5003);
    let mut ours = tapstack_nc(&lab, &["10.78.0.1", "5003"]);
    ours.say("line1");
    assert_eq!(kernel_lines.recv_timeout(WAIT).ok().as_deref(), Some("line1"));
    // The kernel's FIN has come by now (its input is empty): the rest still goes.
    std::thread::sleep(Duration::from_millis(500));
    ours.say("line2");
    drop(ours.0.stdin.take());
    assert_eq!(kernel_lines.recv_timeout(WAIT).ok().as_deref(), Some("line2"));
    let status = wait_exit(&mut ours, WAIT).expect("tapstack nc did not exit");
    assert!(status.success(), "tapstack nc: {status}");
    assert!(wait_exit(&mut kernel, WAIT).is_some(), "the kernel's nc never saw our FIN");
}

/// Runs `tapstack nc ARGS` with no input and returns (exit status, stderr),
/// killed after `WAIT` if it has not finished.
fn nc_once(lab: &Lab, args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut c = lab.host(TAPSTACK);
    c.args(["nc", "--tap", "tapnc", "--addr", "10.78.0.2/24", "--seed", "5"]).args(args);
    let mut child = Reaper(c.stdin(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn"));
    let status = wait_exit(&mut child, WAIT).expect("tapstack nc did not exit");
    let mut err = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status, err)
}

/// Issue 14's nc flags: `-z -v` reports an open port and a refused one as
/// OpenBSD nc does, with its exit status; `-w` bounds a connect to a host that
/// never answers; `-p` sets the source port.
#[test]
fn tapstack_nc_scans_times_out_and_picks_its_source_port() {
    let Some(lab) = lab("tapstack_nc_scans_times_out_and_picks_its_source_port") else { return };
    let _kernel = {
        let mut c = lab.host("nc");
        c.args(["-l", "-k", "10.78.0.1", "5004"]).stdin(Stdio::null()).stdout(Stdio::null());
        Reaper(c.spawn().expect("spawn nc"))
    };
    wait_listening(&lab, 5004);
    let (status, err) = nc_once(&lab, &["-z", "-v", "10.78.0.1", "5004"]);
    assert!(status.success(), "{status} {err}");
    assert!(err.contains("Connection to 10.78.0.1 5004 port [tcp/*] succeeded!"), "{err}");
    let (status, err) = nc_once(&lab, &["-z", "-v", "10.78.0.1", "5009"]);
    assert!(!status.success());
    assert!(err.contains("connect to 10.78.0.1 port 5009 (tcp) failed: Connection refused"), "{err}");
    // Nobody has 10.78.0.9: without -w the connect would wait for ARP and SYN retries for minutes.
    let started = std::time::Instant::now();
    let (status, err) = nc_once(&lab, &["-w", "1", "10.78.0.9", "5004"]);
    assert!(!status.success() && err.contains("timed out"), "{status} {err}");
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    // -p: the kernel sees the connection come from port 40123.
    let mut ours = tapstack_nc(&lab, &["-p", "40123", "10.78.0.1", "5004"]);
    ours.say("hello");
    let mut seen = String::new();
    for _ in 0..100 {
        let out = lab.host("ss").args(["-Htn", "state", "established", "dport = :40123"]).output().unwrap();
        seen = String::from_utf8_lossy(&out.stdout).into_owned();
        if seen.contains("10.78.0.2:40123") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen.contains("10.78.0.2:40123"), "{seen}");
}

/// `nc -l ADDR PORT`, as OpenBSD nc takes it: listen on the stack's own address.
#[test]
fn tapstack_nc_listens_on_an_address_and_port() {
    let Some(lab) = lab("tapstack_nc_listens_on_an_address_and_port") else { return };
    let mut ours = tapstack_nc(&lab, &["-l", "10.78.0.2", "5005"]);
    let our_lines = ours.lines();
    for _ in 0..50 {
        let mut c = lab.host("nc");
        c.args(["-N", "10.78.0.2", "5005"]).stdout(Stdio::null());
        let mut candidate = Reaper::spawn(c);
        candidate.say("to the address");
        if let Ok(line) = our_lines.recv_timeout(Duration::from_millis(500)) {
            assert_eq!(line, "to the address");
            return;
        }
    }
    panic!("the kernel's nc never reached tapstack nc -l 10.78.0.2 5005");
}
