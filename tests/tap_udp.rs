//! UDP between the Linux kernel and tapstack over a real TAP, in a namespace each
//! test creates and deletes. The kernel side is Python's socket module and the
//! kernel's `nc`; tapstack runs the UDP echo service. (`tapstack nc` against the
//! kernel's nc is tested in tools/tests/tap_nc.rs, next to the binary.)

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
