//! UDP between the Linux kernel and tapstack over a real TAP, in a namespace each
//! test creates and deletes. The kernel side is Python's socket module and the
//! kernel's `nc`; tapstack runs the UDP echo service and `tapstack nc -u`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tapstack_tests::tap_tests_enabled;
use tapstack_tools::lab::{Lab, LabConfig};

fn lab(test: &str) -> Option<Lab> {
    tap_tests_enabled(test).then(|| Lab::start("tst-udp", LabConfig::default()).expect("lab"))
}

/// Runs a Python snippet on the host side of the lab; it must print "ok".
fn python(lab: &Lab, code: &str) -> String {
    let out = lab.host("timeout").args(["60", "python3", "-c", code]).output().expect("run python3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python failed:\n{text}");
    text
}

#[test]
fn kernel_datagrams_of_every_size_come_back_unchanged() {
    let Some(mut lab) = lab("kernel_datagrams_of_every_size_come_back_unchanged") else { return };
    let code = format!(
        r#"
import socket, os
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for n in [0, 1, 512, 1472, 1473, 4000, 8000]:
    data = os.urandom(n)
    s.sendto(data, ("{}", 7))
    back, peer = s.recvfrom(65535)
    assert back == data, f"{{n}} bytes: got {{len(back)}} different bytes back"
    assert peer == ("{}", 7), peer
    print("echoed", n)
print("ok")
"#,
        lab.config.stack_addr, lab.config.stack_addr
    );
    let out = python(&lab, &code);
    assert!(out.contains("ok"), "{out}");
    let c = lab.stop().unwrap();
    assert_eq!(c.udp.rx_datagrams, 7);
    assert_eq!(c.udp.tx_datagrams, 7);
    // 1473 bytes and more do not fit a 1500-byte MTU: reassembled in, fragmented out.
    assert_eq!(c.ipv4.reassembled, 3);
    assert_eq!(c.ipv4.tx_fragmented, 3);
}

#[test]
fn kernel_connected_socket_gets_econnrefused_from_a_closed_port() {
    let Some(mut lab) = lab("kernel_connected_socket_gets_econnrefused_from_a_closed_port") else { return };
    let code = format!(
        r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect(("{}", 9999))
s.send(b"anyone there?")
try:
    s.recv(100)
    raise SystemExit("no error")
except ConnectionRefusedError:
    print("ok")
"#,
        lab.config.stack_addr
    );
    let out = python(&lab, &code);
    assert!(out.contains("ok"), "{out}");
    let c = lab.stop().unwrap();
    assert_eq!(c.icmp.tx_dest_unreachable, 1);
    assert_eq!(c.drops.get(stack::DropReason::UdpNoSocket), 1);
}

/// Reads lines from a child's stdout on a thread, so the test can wait with a timeout.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
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

/// The `tapstack` binary built next to this test (cargo builds the workspace's
/// binaries before it runs any test).
fn tapstack_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("tapstack");
    assert!(bin.exists(), "{} is missing: run the tests with `cargo test --workspace`", bin.display());
    bin
}

/// Kills a child when dropped, so a failing test leaves no process behind.
struct Reaper(Child);
impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kernel_nc_and_tapstack_nc_exchange_lines() {
    let Some(lab) = lab("kernel_nc_and_tapstack_nc_exchange_lines") else { return };
    // A second link for tapstack's own nc instance: host 10.78.0.1, tapstack 10.78.0.2.
    lab.add_tap("tapnc", "10.78.0.1/24").unwrap();
    let mut kernel = Reaper(
        lab.host("nc").args(["-u", "-l", "10.78.0.1", "5000"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("run nc (netcat-openbsd)"),
    );
    let mut ours = Reaper(
        lab.host(tapstack_bin().to_str().unwrap())
            .args(["nc", "-u", "--tap", "tapnc", "--addr", "10.78.0.2/24", "--seed", "5", "10.78.0.1", "5000"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let kernel_lines = lines_of(&mut kernel.0);
    let our_lines = lines_of(&mut ours.0);
    let wait = Duration::from_secs(10);
    // tapstack -> Linux. The first datagram may wait for ARP and for nc to bind: resend until it arrives.
    let mut got = None;
    for _ in 0..10 {
        writeln!(ours.0.stdin.as_mut().unwrap(), "hello from tapstack").unwrap();
        if let Ok(line) = kernel_lines.recv_timeout(Duration::from_secs(1)) {
            got = Some(line);
            break;
        }
    }
    assert_eq!(got.as_deref(), Some("hello from tapstack"));
    // Linux -> tapstack (the kernel's nc -l now talks to whoever sent first).
    writeln!(kernel.0.stdin.as_mut().unwrap(), "hello from linux").unwrap();
    assert_eq!(our_lines.recv_timeout(wait).unwrap(), "hello from linux");
}
