//! The Linux kernel pings tapstack over a real TAP, inside a network namespace
//! that each test creates and deletes (tools' `Lab`). Needs root: with CI=true
//! these fail loudly without it; elsewhere they skip with a printed reason.

use std::path::PathBuf;
use std::process::Output;
use tapstack_tests::tap_tests_enabled;
use tapstack_tools::lab::{Lab, LabConfig};

fn lab(test: &str, pcap: Option<PathBuf>) -> Option<Lab> {
    if !tap_tests_enabled(test) {
        return None;
    }
    Some(Lab::start("tst-ping", LabConfig { pcap, ..LabConfig::default() }).expect("lab"))
}

/// Runs the kernel's ping in the lab; ping's own -w deadline bounds it in time.
fn ping(lab: &Lab, args: &[&str]) -> Output {
    let out =
        lab.host("ping").args(args).arg(lab.config.stack_addr.to_string()).output().expect("run ping (iputils-ping)");
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    out
}

/// (transmitted, received) from ping's summary line.
fn summary(out: &Output) -> (u32, u32) {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("packets transmitted")).expect("ping printed no summary");
    let nums: Vec<u32> = line.split(',').filter_map(|p| p.split_whitespace().next()?.parse().ok()).collect();
    (nums[0], nums[1])
}

#[test]
fn kernel_ping_gets_five_of_five() {
    let Some(mut lab) = lab("kernel_ping_gets_five_of_five", None) else { return };
    let out = ping(&lab, &["-c", "5", "-i", "0.2", "-w", "15"]);
    assert_eq!(summary(&out), (5, 5));
    let c = lab.stop().unwrap();
    assert_eq!(c.icmp.tx_echo_replies, 5);
    assert!(c.arp.tx_replies >= 1, "the kernel had to resolve us by ARP first");
}

#[test]
fn kernel_ping_of_4000_bytes_is_fragmented_both_ways() {
    let Some(mut lab) = lab("kernel_ping_of_4000_bytes_is_fragmented_both_ways", None) else { return };
    let out = ping(&lab, &["-c", "3", "-i", "0.2", "-s", "4000", "-w", "15"]);
    assert_eq!(summary(&out), (3, 3));
    let c = lab.stop().unwrap();
    // 4008 bytes of ICMP in a 1500-byte MTU: 3 fragments each way, per ping.
    assert_eq!(c.ipv4.reassembled, 3);
    assert_eq!(c.ipv4.rx_fragments, 9);
    assert_eq!(c.ipv4.tx_fragmented, 3);
    assert_eq!(c.ipv4.tx_fragments, 9);
}

#[test]
fn flood_of_2000_pings_and_its_capture_is_clean() {
    let dir = std::env::temp_dir().join(format!("tapstack-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("flood.pcap");
    let Some(mut lab) = lab("flood_of_2000_pings_and_its_capture_is_clean", Some(pcap.clone())) else { return };
    let out = ping(&lab, &["-f", "-c", "2000", "-w", "60"]);
    let (sent, received) = summary(&out);
    assert_eq!(sent, 2000);
    assert!(received >= 1980, "only {received} of 2000 flood pings came back");
    let c = lab.stop().unwrap();
    drop(lab);
    assert!(c.icmp.tx_echo_replies as u32 >= received, "every reply the kernel saw was one we sent");

    // The capture: every frame readable, checksums validated, nothing malformed.
    let tshark = |args: &[&str]| {
        let o =
            std::process::Command::new("tshark").args(["-n", "-r"]).arg(&pcap).args(args).output().expect("run tshark");
        assert!(o.status.success(), "tshark failed: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let all = tshark(&[]).lines().count() as u64;
    assert_eq!(all, c.link.rx_frames + c.link.tx_frames, "the capture must hold every frame in and out");
    let replies = tshark(&["-Y", "icmp.type == 0"]).lines().count() as u32;
    assert!(replies >= received);
    let bad = tshark(&[
        "-o", "ip.check_checksum:TRUE",
        "-o", "udp.check_checksum:TRUE",
        "-o", "tcp.check_checksum:TRUE",
        "-Y", "_ws.malformed || _ws.expert.severity >= \"error\" || ip.checksum.status == \"Bad\" || icmp.checksum.status == \"Bad\"",
    ]);
    assert!(bad.is_empty(), "tshark found bad frames:\n{bad}");
    let _ = std::fs::remove_dir_all(&dir);
}
