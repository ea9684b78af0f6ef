//! `tapstack demo`: the whole foundation on a fresh machine with nothing to set up.
//! It builds a lab (a namespace, a TAP, the host's end addressed, tapstack on the
//! other end), pings tapstack from Linux, plainly and with datagrams large enough
//! to be fragmented, explains what happened, writes demo.pcap and removes
//! everything it created, on failure and Ctrl-C too. It also sends UDP datagrams
//! to the echo service, and opens a TCP connection to it, showing the state
//! transitions of both sides of the close.

use crate::lab::{Lab, LabConfig, TAP_NAME};
use crate::signals;
use stack::Counters;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

pub struct DemoOptions {
    pub pcap: PathBuf,
}

/// Set when Ctrl-C or SIGTERM arrives; the demo stops at the next step.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The child process running now, killed on Ctrl-C.
static CHILD: AtomicI32 = AtomicI32::new(0);

pub fn run(opts: DemoOptions) -> Result<(), String> {
    if !crate::netns::is_root() {
        return Err("the demo creates a network namespace and a TAP device: run it as root (sudo tapstack demo)".into());
    }
    signals::block();
    std::thread::spawn(|| {
        signals::wait();
        INTERRUPTED.store(true, Ordering::SeqCst);
        let pid = CHILD.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: signalling a child we started; at worst it has already exited.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
    });

    let config = LabConfig { pcap: Some(opts.pcap.clone()), ..LabConfig::default() };
    let (host, me) = (config.host_addr, config.stack_addr);
    crate::say!("tapstack demo\n");
    crate::say!("Setting up: a network namespace of our own, a TAP device '{TAP_NAME}' in it,");
    crate::say!("the Linux kernel on one end of the TAP as {host}/24, tapstack on the other as {me}/24.");
    let mut lab = Lab::start("tapstack-demo", config)?;
    crate::say!("  namespace {} is ready; tapstack's MAC is {}", lab.netns().name(), crate::instance::mac_for(me));
    crate::say!("  every frame on the TAP goes to {}\n", opts.pcap.display());

    let result = steps(&lab);
    let counters = lab.stop();
    drop(lab);
    crate::say!();
    if INTERRUPTED.load(Ordering::SeqCst) {
        crate::say!("Interrupted: the namespace and the TAP are removed.");
        return Err("interrupted".into());
    }
    let counters = counters?;
    result?;
    explain_counters(&counters);
    crate::say!("\nThe namespace and the TAP are removed. Open the capture with:");
    crate::say!("  wireshark {}     or     tshark -r {}", opts.pcap.display(), opts.pcap.display());
    Ok(())
}

fn steps(lab: &Lab) -> Result<(), String> {
    let me = lab.config.stack_addr.to_string();
    crate::say!("1. Linux pings tapstack: 5 ICMP echo requests of 64 bytes.");
    crate::say!("   The kernel first asks \"who has {me}?\" (ARP); tapstack answers with its MAC,");
    crate::say!("   then each echo request gets an echo reply.");
    let ping = run_ping(lab, &["-c", "5", "-i", "0.2", "-w", "10", &me])?;
    show_ping(&ping, 64);
    if ping.received < 5 {
        return Err(format!("only {} of 5 pings were answered", ping.received));
    }

    crate::say!("\n2. Linux pings with 4000 bytes of data: a 4028-byte datagram does not fit the");
    crate::say!("   1500-byte MTU, so the kernel sends each request in 3 fragments. tapstack");
    crate::say!("   reassembles them, and its 4028-byte reply leaves in 3 fragments too.");
    let big = run_ping(lab, &["-c", "3", "-i", "0.2", "-s", "4000", "-w", "10", &me])?;
    show_ping(&big, 4008);
    if big.received < 3 {
        return Err(format!("only {} of 3 large pings were answered", big.received));
    }

    crate::say!("\n3. Linux sends UDP datagrams to port 7, where tapstack runs an echo service");
    crate::say!("   written with its own sockets API (socket, bind, recvfrom, sendto).");
    for msg in ["hello, tapstack", "UDP has no connection: each datagram stands alone"] {
        let back = udp_echo(lab, msg)?;
        crate::say!("   sent \"{msg}\" ({} bytes with nc's newline) -> came back: \"{back}\"", msg.len() + 1);
        if back != msg {
            return Err(format!("the echo of \"{msg}\" came back as \"{back}\""));
        }
    }

    tcp_step(lab)
}

/// Step 4: a TCP connection from Linux to the echo service, and the states both
/// sides pass through, the close most of all.
fn tcp_step(lab: &Lab) -> Result<(), String> {
    let me = lab.config.stack_addr.to_string();
    crate::say!("\n4. Linux opens a TCP connection to port 7 (TCP echo), sends a line, reads the");
    crate::say!("   echo and closes first. tapstack's side, as its state machine traced it");
    crate::say!("   (RFC 9293 section 3.3.2, in the figure's \"event / action\" notation):");
    let trace = lab.runtime().net().trace_transitions(256);
    let client = format!(
        "import socket\ns = socket.create_connection(('{me}', 7), timeout=5)\ns.sendall(b'hello over TCP\\n')\n\
         got = b''\nwhile not got.endswith(b'\\n'):\n    got += s.recv(100)\nprint(got.decode().strip())\ns.close()\n"
    );
    let out = lab
        .host("timeout")
        .args(["20", "python3", "-c", &client])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(format!("the TCP client failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let echoed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // The close finishes when our FIN is acknowledged: wait for CLOSED (bounded).
    let mut lines = Vec::new();
    while let Some(t) = trace.recv_timeout(std::time::Duration::from_secs(3)) {
        let closed = t.to.to_string() == "CLOSED";
        lines.push(t);
        if closed {
            break;
        }
    }
    for t in &lines {
        crate::say!("   tapstack  {:<12} -> {:<12} {}", t.from.to_string(), t.to.to_string(), t.cause);
    }
    crate::say!("   the line came back: \"{echoed}\"");
    let ss = lab.host("ss").args(["-tan", "state", "time-wait"]).output().map_err(|e| e.to_string())?;
    let waiting = String::from_utf8_lossy(&ss.stdout).lines().skip(1).filter(|l| l.contains(&me)).count();
    crate::say!("   Linux closed first, so it is Linux that now waits in TIME-WAIT for 2*MSL");
    crate::say!("   (`ss -tan state time-wait` shows {waiting} such socket), while tapstack, which");
    crate::say!("   closed second, went CLOSE-WAIT -> LAST-ACK -> CLOSED and is done.");
    if echoed != "hello over TCP" {
        return Err(format!("the TCP echo came back as \"{echoed}\""));
    }
    Ok(())
}

/// Sends one datagram with the kernel's `nc -u` and returns what came back.
fn udp_echo(lab: &Lab, msg: &str) -> Result<String, String> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err("interrupted".into());
    }
    let mut cmd = lab.host("nc");
    cmd.args(["-u", "-w", "1", &lab.config.stack_addr.to_string(), "7"]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run nc: {e} (install netcat-openbsd)"))?;
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    use std::io::Write;
    let _ = child.stdin.take().map(|mut i| writeln!(i, "{msg}"));
    let out = child.wait_with_output().map_err(|e| e.to_string());
    CHILD.store(0, Ordering::SeqCst);
    Ok(String::from_utf8_lossy(&out?.stdout).trim_end().to_string())
}

/// What a run of the kernel's `ping` showed.
struct PingRun {
    replies: Vec<(u32, f64)>,
    transmitted: u32,
    received: u32,
}

fn run_ping(lab: &Lab, args: &[&str]) -> Result<PingRun, String> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err("interrupted".into());
    }
    let mut cmd: Command = lab.host("ping");
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child: Child = cmd.spawn().map_err(|e| format!("cannot run ping: {e} (install iputils-ping)"))?;
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    let out = child.wait_with_output().map_err(|e| e.to_string());
    CHILD.store(0, Ordering::SeqCst);
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(parse_ping(&text))
}

fn parse_ping(text: &str) -> PingRun {
    let mut run = PingRun { replies: Vec::new(), transmitted: 0, received: 0 };
    let field = |line: &str, key: &str| -> Option<String> {
        let i = line.find(key)? + key.len();
        Some(line[i..].split_whitespace().next()?.to_string())
    };
    for line in text.lines() {
        if line.contains("bytes from") {
            let seq = field(line, "icmp_seq=").and_then(|s| s.parse().ok());
            let time = field(line, "time=").and_then(|s| s.parse().ok());
            if let (Some(seq), Some(time)) = (seq, time) {
                run.replies.push((seq, time));
            }
        } else if line.contains("packets transmitted") {
            let nums: Vec<u32> = line.split(',').filter_map(|p| p.split_whitespace().next()?.parse().ok()).collect();
            if nums.len() >= 2 {
                run.transmitted = nums[0];
                run.received = nums[1];
            }
        }
    }
    run
}

fn show_ping(run: &PingRun, bytes: u32) {
    for (seq, ms) in &run.replies {
        crate::say!("   echo request #{seq}: {bytes} bytes sent, reply came back after {ms:.3} ms");
    }
    let lost = run.transmitted.saturating_sub(run.received);
    crate::say!("   => {} sent, {} answered, {} lost", run.transmitted, run.received, lost);
}

fn explain_counters(c: &Counters) {
    crate::say!("What tapstack counted:");
    crate::say!("  ARP:  {} request(s) for us answered, {} reply(ies) sent", c.arp.rx_requests, c.arp.tx_replies);
    crate::say!(
        "  IPv4: {} datagrams received, of them {} fragments reassembled into {} datagrams;",
        c.ipv4.rx_datagrams,
        c.ipv4.rx_fragments,
        c.ipv4.reassembled
    );
    crate::say!(
        "        {} datagrams sent, {} of them in {} fragments",
        c.ipv4.tx_datagrams,
        c.ipv4.tx_fragmented,
        c.ipv4.tx_fragments
    );
    crate::say!(
        "  ICMP: {} echo requests received, {} echo replies sent",
        c.icmp.rx_echo_requests,
        c.icmp.tx_echo_replies
    );
    crate::say!("  UDP:  {} datagrams received, {} sent", c.udp.rx_datagrams, c.udp.tx_datagrams);
    crate::say!(
        "  TCP:  {} connection(s) accepted, {} segments received, {} sent",
        c.tcp.passive_opens,
        c.tcp.rx_segments,
        c.tcp.tx_segments
    );
    crate::say!(
        "  link: {} frames in, {} frames out, {} dropped",
        c.link.rx_frames,
        c.link.tx_frames,
        c.link.rx_dropped
    );
    for (reason, n) in c.drops.iter() {
        crate::say!("        dropped {n}: {}", reason.description());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iputils_output() {
        let out = "PING 10.77.0.2 (10.77.0.2) 56(84) bytes of data.\n64 bytes from 10.77.0.2: icmp_seq=1 ttl=64 time=0.211 ms\n64 bytes from 10.77.0.2: icmp_seq=2 ttl=64 time=0.105 ms\n\n--- 10.77.0.2 ping statistics ---\n3 packets transmitted, 2 received, 33.3333% packet loss, time 402ms\n";
        let run = parse_ping(out);
        assert_eq!(run.replies, vec![(1, 0.211), (2, 0.105)]);
        assert_eq!((run.transmitted, run.received), (3, 2));
    }
}
