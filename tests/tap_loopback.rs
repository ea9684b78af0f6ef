//! The stack talking to itself while it is attached to a real TAP, in a
//! namespace the test creates and deletes: a program using the library connects
//! to the echo services of its own stack, at the stack's address and at
//! 127.0.0.1, and none of it reaches the TAP (RFC 1122 section 3.2.1.3 (g): 127/8
//! never leaves the host; a datagram to one's own address is delivered
//! internally). The kernel's side of the TAP is watched with a packet socket,
//! which must see the kernel's own ping of the stack (so the watch works) and
//! nothing of the loopback; the stack's pcap shows the loopback's frames.

use sockets_api::{TcpStream, UdpSocket};
use stack::device::pcap::PcapSource;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown};
use std::process::{Child, Stdio};
use std::time::Duration;
use tapstack_tests::tap_tests_enabled;
use tapstack_tools::lab::{Lab, LabConfig};

const WAIT: Duration = Duration::from_secs(20);

/// Counts, on the kernel's side of tap0, every frame either way: all of them,
/// those with a 127/8 address or from the stack to itself, and the ICMP echo
/// requests to the stack. Prints "ready", then the counts once stdin closes (or
/// after 60 s).
const WATCH: &str = r#"
import socket, select, sys, time
STACK = socket.inet_aton(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("tap0", 0))
print("ready", flush=True)
frames = looped = pings = 0
end = time.time() + 60
while time.time() < end:
    r, _, _ = select.select([s, sys.stdin], [], [], 1)
    if sys.stdin in r:
        break
    if s in r:
        f = s.recv(65535)
        frames += 1
        if f[12:14] != b"\x08\x00":
            continue
        src, dst = f[26:30], f[30:34]
        if src[0] == 127 or dst[0] == 127 or (src == STACK and dst == STACK) or f[0:6] == f[6:12]:
            looped += 1
        if dst == STACK and f[23] == 1 and f[34] == 8:
            pings += 1
print(frames, looped, pings, flush=True)
"#;

/// The packet-socket watcher, started and ready.
fn watch(lab: &Lab) -> Child {
    let stack = lab.config.stack_addr.to_string();
    let mut child = lab
        .host("timeout")
        .args(["90", "/usr/bin/python3", "-c", WATCH, &stack])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).expect("the watcher to start");
    assert_eq!(line.trim(), "ready");
    child
}

/// Stops the watcher and returns (frames, looped frames, pings of the stack).
fn counts(mut child: Child) -> (u64, u64, u64) {
    drop(child.stdin.take());
    let mut out = String::new();
    child.stdout.as_mut().unwrap().read_to_string(&mut out).unwrap();
    assert!(child.wait().unwrap().success(), "the watcher failed: {out}");
    let n: Vec<u64> = out.split_whitespace().map(|w| w.parse().unwrap()).collect();
    (n[0], n[1], n[2])
}

/// Echoes `data` through the TCP echo service at `addr` and checks it.
fn tcp_echo(net: &sockets_api::Net, addr: &str, data: &[u8]) -> std::net::SocketAddr {
    let mut c = TcpStream::connect(net, addr).expect(addr);
    c.set_read_timeout(Some(WAIT)).unwrap();
    let local = c.local_addr().unwrap();
    c.write_all(data).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert!(back == data, "{addr}: {} bytes back of {}", back.len(), data.len());
    local
}

#[test]
fn the_stack_reaches_itself_on_a_tap_and_the_tap_sees_none_of_it() {
    if !tap_tests_enabled("the_stack_reaches_itself_on_a_tap_and_the_tap_sees_none_of_it") {
        return;
    }
    let pcap = std::env::temp_dir().join(format!("tapstack-loopback-{}.pcap", std::process::id()));
    let config = LabConfig {
        host_addr: Ipv4Addr::new(10, 81, 0, 1),
        stack_addr: Ipv4Addr::new(10, 81, 0, 2),
        pcap: Some(pcap.clone()),
        services: "echo,udp-echo".into(),
        ..LabConfig::default()
    };
    let mut lab = Lab::start("tst-lo", config).expect("lab");
    let me = lab.config.stack_addr;
    let watcher = watch(&lab);
    // The kernel pings the stack: the watcher must see that much.
    let ping = lab.host("ping").args(["-c", "1", "-W", "5", &me.to_string()]).output().unwrap();
    assert!(ping.status.success(), "the kernel's ping of the stack: {ping:?}");
    let net = lab.runtime().net();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 13 + i / 7) as u8).collect();
    let from_lo = tcp_echo(&net, "127.0.0.1:7", &data);
    assert_eq!(from_lo.ip(), std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
    let from_me = tcp_echo(&net, &format!("{me}:7"), &data);
    assert_eq!(from_me.ip(), std::net::IpAddr::V4(me));
    let u = UdpSocket::bind(&net, "0.0.0.0:0").unwrap();
    u.set_read_timeout(Some(WAIT)).unwrap();
    for dst in ["127.0.0.1:7".to_string(), format!("{me}:7")] {
        u.send_to(b"datagram to myself", dst.as_str()).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = u.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"datagram to myself", "{dst}");
    }
    let (frames, looped, pings) = counts(watcher);
    let c = lab.stop().unwrap();
    assert!(pings >= 1 && frames >= 2, "the watcher saw {frames} frames, {pings} pings: it does not work");
    assert_eq!(looped, 0, "{looped} frames of the stack's loopback reached the TAP");
    assert!(c.loopback.frames > 20, "{}", c.report());
    assert_eq!(c.loopback.dropped, 0, "{}", c.report());
    // The stack's capture shows the loopback, from its MAC to its MAC.
    let mut src = PcapSource::open(&pcap).unwrap();
    let (mut to_self, mut lo) = (0, 0);
    while let Ok(Some((_, f))) = src.next_frame() {
        if f.len() >= 34 && f[0..6] == f[6..12] && f[12..14] == [8, 0] {
            to_self += 1;
            lo += usize::from(f[26] == 127 && f[30] == 127);
        }
    }
    let _ = std::fs::remove_file(&pcap);
    assert_eq!(to_self, c.loopback.frames, "every looped frame is in the capture");
    assert!(lo > 10, "{lo} frames of 127.0.0.1 in the capture");
}
