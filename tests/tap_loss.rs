//! Loss recovery against the Linux kernel over a real TAP (issue 12): nftables
//! drops 3% of the frames each way on the TAP, in a namespace this test creates
//! and deletes. Both ends agree on SACK and timestamps; the echo must come back
//! intact, and tapstack's own sending must have been repaired by SACK-based
//! recovery (RFC 6675) rather than by timeouts alone. The time it took is
//! printed, never asserted on.

use std::io::Write;
use tapstack_tests::tap_tests_enabled;
use tapstack_tools::lab::{Lab, LabConfig};

#[test]
fn four_mebibytes_echoed_through_three_percent_loss_with_sack() {
    let test = "four_mebibytes_echoed_through_three_percent_loss_with_sack";
    if !tap_tests_enabled(test) {
        return;
    }
    let mut lab = Lab::start("tst-loss", LabConfig::default()).expect("lab");
    let rules = "table inet loss {\n\
        chain in { type filter hook input priority 0; iifname \"tap0\" numgen random mod 100 < 3 drop; }\n\
        chain out { type filter hook output priority 0; oifname \"tap0\" numgen random mod 100 < 3 drop; }\n}\n";
    let mut nft = lab.host("nft").args(["-f", "-"]).stdin(std::process::Stdio::piped()).spawn().expect("run nft");
    nft.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
    assert!(nft.wait().unwrap().success(), "nft could not load the loss rules");
    let code = format!(
        r#"
import socket, os, threading, time
data = os.urandom(4 << 20)
s = socket.create_connection(("{addr}", 7), timeout=60)
opts = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
t0 = time.perf_counter()
def writer():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=writer); t.start()
got = bytearray()
while True:
    b = s.recv(65536)
    if not b: break
    got += b
t.join(); s.close()
assert bytes(got) == data, f"{{len(got)}} of {{len(data)}} bytes back"
# tcpi_options (byte 5 of struct tcp_info): 1 timestamps, 2 SACK.
print("intact", "options", opts[5], "seconds %.2f" % (time.perf_counter() - t0))
"#,
        addr = lab.config.stack_addr
    );
    let out = lab.host("timeout").args(["120", "python3", "-c", &code]).output().expect("run python3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success() && text.contains("intact"), "echo failed:\n{text}");
    let options: u32 = text.split("options ").nth(1).and_then(|r| r.split_whitespace().next()?.parse().ok()).unwrap();
    assert_eq!(options & 3, 3, "the kernel agreed on timestamps and SACK with tapstack: {text}");
    let c = lab.stop().unwrap();
    eprintln!("tapstack: {:?}", c.tcp);
    assert!(c.tcp.sack_recoveries > 0, "3% loss on 4 MiB must have started SACK recovery: {:?}", c.tcp);
}
