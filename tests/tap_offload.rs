//! tapstack on a TAP with the kernel's offloads (`IFF_VNET_HDR`, `TUNSETOFFLOAD`
//! with checksum offload and TSO for IPv4; `tapstack up --offload`), in a
//! namespace each test creates and deletes: the kernel hands over TCP segments
//! of up to 64 KiB with checksums it vouches for, and a bulk transfer must
//! arrive intact. Every kernel-side program is bounded by `timeout`.

use stack::checksum;
use std::net::Ipv4Addr;
use tapstack_tests::tap_tests_enabled;
use tapstack_tools::lab::{Lab, LabConfig};

fn lab(test: &str, pcap: Option<std::path::PathBuf>) -> Option<Lab> {
    tap_tests_enabled(test)
        .then(|| Lab::start("tst-off", LabConfig { offload: true, pcap, ..LabConfig::default() }).expect("lab"))
}

/// Runs a Python program on the host side with `ADDR` bound to tapstack's
/// address; it must exit 0. Returns what it printed.
fn python(lab: &Lab, seconds: u32, code: &str) -> String {
    let code = format!("ADDR = \"{}\"\n{code}", lab.config.stack_addr);
    let out = lab.host("timeout").args([&seconds.to_string(), "python3", "-c", &code]).output().expect("run python3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "python failed ({}):\n{text}", out.status);
    text
}

/// Echoes 16 MiB of random bytes through port 7 (a writer thread and a reader,
/// then a half-close and a read to EOF) and checks every byte.
const ECHO: &str = r#"
import socket, os, threading
data = os.urandom(16 << 20)
s = socket.create_connection((ADDR, 7), timeout=30)
def writer():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=writer); t.start()
got = bytearray()
while True:
    b = s.recv(1 << 20)
    if not b: break
    got += b
t.join(); s.close()
assert bytes(got) == data, f"{len(got)} bytes back of {len(data)}, intact={bytes(got) == data[:len(got)]}"
print("intact")
"#;

#[test]
fn bulk_echo_with_offloads_is_intact_and_comes_in_large_segments() {
    let Some(mut lab) = lab("bulk_echo_with_offloads_is_intact_and_comes_in_large_segments", None) else { return };
    assert!(python(&lab, 120, ECHO).contains("intact"));
    let c = lab.stop().unwrap();
    // The kernel's segments came whole: on average far beyond a 1514-byte frame.
    let per_frame = c.link.rx_bytes / c.link.rx_frames.max(1);
    assert!(per_frame > 3000, "{per_frame} bytes per frame received: no GSO segments?\n{}", c.report());
    assert_eq!(c.drops.get(stack::DropReason::TcpBadChecksum), 0);
    assert_eq!(c.drops.get(stack::DropReason::EthOversize), 0);
}

/// The records of a classic pcap file (native byte order, as the recorder writes it).
fn pcap_records(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let incl = u32::from_ne_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(&bytes[at + 16..at + 16 + incl]);
        at += 16 + incl;
    }
    out
}

/// The pcap shows the frames as they crossed the TAP: the kernel's GSO
/// segments whole (longer than the MTU, as tcpdump on Linux shows them), each
/// with a valid TCP checksum (the kernel left it partial; the recorder fills it in).
#[test]
fn the_pcap_shows_gso_segments_whole_with_valid_checksums() {
    let dir = std::env::temp_dir().join(format!("tapstack-offload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("offload.pcap");
    let Some(mut lab) = lab("the_pcap_shows_gso_segments_whole_with_valid_checksums", Some(pcap.clone())) else {
        return;
    };
    python(
        &lab,
        60,
        r#"
import socket
s = socket.create_connection((ADDR, 9), timeout=30)
s.sendall(bytes(range(256)) * 4096 * 4)
s.shutdown(socket.SHUT_WR)
assert s.recv(1) == b""
print("sent")
"#,
    );
    lab.stop().unwrap();
    let bytes = std::fs::read(&pcap).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let large: Vec<&[u8]> = pcap_records(&bytes).into_iter().filter(|f| f.len() > 1514).collect();
    assert!(!large.is_empty(), "no frame beyond the MTU in the capture");
    for f in large {
        assert_eq!(f[12..14], [0x08, 0x00]);
        let ip = &f[14..];
        let ihl = (ip[0] & 0x0f) as usize * 4;
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        assert_eq!(total, ip.len(), "the IPv4 length covers the whole segment");
        assert_eq!(checksum::of(&ip[..ihl]), 0, "IPv4 header checksum");
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        assert_eq!(checksum::transport(src, dst, etherparse::IpNumber::TCP, &[&ip[ihl..total]]), 0, "TCP checksum");
    }
}

/// Reads 64 MiB from chargen (port 19, RFC 864), checks every byte against
/// the pattern, and prints the kernel's count of TCP checksum errors
/// (/proc/net/snmp, Tcp InCsumErrors) in the namespace.
const CHARGEN: &str = r#"
import socket
ring = bytes(range(0x20, 0x7f))
period = b"".join((ring * 2)[n:n + 72] + b"\r\n" for n in range(95))
want = 64 << 20
s = socket.create_connection((ADDR, 19), timeout=30)
got = bytearray()
while len(got) < want:
    b = s.recv(1 << 20)
    assert b, f"EOF after {len(got)} bytes"
    got += b
s.close()
whole = period * (len(got) // len(period) + 1)
assert bytes(got) == whole[:len(got)], "chargen's bytes are not intact"
snmp = open("/proc/net/snmp").read().split("\n")
tcp = [l.split() for l in snmp if l.startswith("Tcp:")]
print("intact", len(got), "InCsumErrors", dict(zip(tcp[0], tcp[1]))["InCsumErrors"])
"#;

/// Stack -> kernel with TSO (`tapstack up --offload`): chargen's 64 MiB
/// arrive intact, in segments the stack wrote far beyond the MTU (GSO
/// segments the kernel cut and checksummed), with no checksum error on the
/// kernel's side; the pcap shows them as written, their checksums filled in.
#[test]
fn bulk_from_the_stack_goes_out_in_gso_segments_and_arrives_intact() {
    let test = "bulk_from_the_stack_goes_out_in_gso_segments_and_arrives_intact";
    let dir = std::env::temp_dir().join(format!("tapstack-tso-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("tso.pcap");
    let Some(mut lab) = lab(test, Some(pcap.clone())) else { return };
    let out = python(&lab, 120, CHARGEN);
    assert!(out.contains("intact") && out.trim_end().ends_with("InCsumErrors 0"), "{out}");
    let c = lab.stop().unwrap();
    let per_frame = c.link.tx_bytes / c.link.tx_frames.max(1);
    assert!(per_frame > 3000, "{per_frame} bytes per frame written: no GSO segments?\n{}", c.report());
    let bytes = std::fs::read(&pcap).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stack_mac = lab.config.stack_config().mac.0;
    let ours: Vec<&[u8]> = pcap_records(&bytes).into_iter().filter(|f| f[6..12] == stack_mac).collect();
    let large: Vec<&[u8]> = ours.iter().copied().filter(|f| f.len() > 1514).collect();
    assert!(large.len() > 100, "{} frames beyond the MTU of {} written", large.len(), ours.len());
    for f in large {
        let ip = &f[14..];
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        assert_eq!(total, ip.len(), "the IPv4 length covers the whole segment");
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        assert_eq!(checksum::of(&ip[..20]), 0, "IPv4 header checksum");
        assert_eq!(checksum::transport(src, dst, etherparse::IpNumber::TCP, &[&ip[20..total]]), 0, "TCP checksum");
    }
}
