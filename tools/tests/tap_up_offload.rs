//! `tapstack up` (the binary) and the kernel's offloads on its TAP: on by
//! default (GSO segments larger than the MTU both ways, counted in `tapstack
//! stats` and recorded whole in the pcap, as they crossed the TAP), and the
//! fallback to plain frames when the kernel refuses them (forced here with
//! `TAPSTACK_TEST_REFUSE_OFFLOAD`, since this kernel grants them), said once
//! on stderr and in `tapstack stats`; and without offloads, the kernel's NAPI
//! thread for the TAP (`--no-napi`: none; its refusal forced with
//! `TAPSTACK_TEST_REFUSE_NAPI`). Each test in a namespace of its own;
//! every wait has a deadline.

mod common;

use common::Reaper;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tapstack_tools::instance::{REFUSE_NAPI_ENV, REFUSE_OFFLOAD_ENV};
use tapstack_tools::netns::{tap_tests_enabled, Netns};

const TAPSTACK: &str = env!("CARGO_BIN_EXE_tapstack");
const HOST: &str = "10.84.0.1";
const STACK: &str = "10.84.0.2";
/// Bound on anything that should happen promptly, for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(20);
/// The largest plain frame on the TAP: Ethernet header and a 1500-byte MTU.
const MAX_PLAIN: usize = 1514;

/// `tapstack up` in a namespace of its own, serving discard and chargen,
/// recording to a pcap, with `args` added and `env` set.
struct Running {
    up: Reaper,
    control: PathBuf,
    pcap: PathBuf,
    ns: Netns,
}

impl Running {
    fn start(prefix: &str, args: &[&str], env: Option<(&str, &str)>) -> Running {
        let ns = Netns::create(prefix).expect("namespace");
        ns.add_tap("tap0", &format!("{HOST}/24")).expect("TAP");
        let dir = std::env::temp_dir();
        let control = dir.join(format!("tapstack-{prefix}-{}.sock", std::process::id()));
        let pcap = dir.join(format!("tapstack-{prefix}-{}.pcap", std::process::id()));
        let mut c = ns.command(TAPSTACK);
        c.args(["up", "--tap", "tap0", "--addr", &format!("{STACK}/24"), "--serve", "discard,chargen"])
            .args(args)
            .arg("--control")
            .arg(&control)
            .arg("--pcap")
            .arg(&pcap)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let r = Running { up: Reaper(c.spawn().expect("spawn tapstack up")), control, pcap, ns };
        r.poll_stats(|s| s.starts_with("Link:"));
        r
    }

    fn stats(&self) -> Result<String, String> {
        let out = Command::new(TAPSTACK).arg("stats").arg("--control").arg(&self.control).output().unwrap();
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }

    /// `tapstack stats` once it satisfies `ok`, within [`WAIT`].
    fn poll_stats(&self, ok: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + WAIT;
        loop {
            let last = self.stats();
            if let Ok(s) = &last {
                if ok(s) {
                    return s.clone();
                }
            }
            assert!(Instant::now() < end, "waited {WAIT:?} for `tapstack stats`; it last said {last:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// 4 MB each way through the kernel's nc: to discard, from chargen.
    fn transfer(&self) {
        let to = format!("head -c 4000000 /dev/zero | timeout 20 nc -q 1 {STACK} 9");
        let out = self.ns.command("sh").args(["-c", &to]).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{to}: {}", String::from_utf8_lossy(&out.stderr));
        let from = format!("timeout 20 nc {STACK} 19 | head -c 4000000 | wc -c");
        let out = self.ns.command("sh").args(["-c", &from]).stdin(Stdio::null()).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4000000", "{from}");
    }

    /// Stops tapstack (SIGTERM), returning what it said on stderr.
    fn stop(&mut self) -> String {
        // SAFETY: kill(2) on our own child's pid (`ip netns exec` execs tapstack in place).
        unsafe { libc::kill(self.up.0.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + WAIT;
        while self.up.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < end, "tapstack up did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut err = String::new();
        self.up.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        err
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pcap);
        // tapstack removes its control socket when it stops; killed after a
        // failure (the Reaper), it cannot.
        let _ = std::fs::remove_file(&self.control);
    }
}

/// The number before the first line of `stats` ending with `what`.
fn count(stats: &str, what: &str) -> u64 {
    let l = stats.lines().find(|l| l.ends_with(what)).unwrap_or_else(|| panic!("no '{what}' in {stats}"));
    l.split_whitespace().next().unwrap().parse().unwrap()
}

/// The largest frame the pcap holds from tapstack's MAC (02:74:61:70...) and
/// the largest to it: (sent, received).
fn largest_frames(pcap: &Path) -> (usize, usize) {
    const OURS: [u8; 4] = [0x02, 0x74, 0x61, 0x70];
    let bytes = std::fs::read(pcap).unwrap_or_else(|e| panic!("{}: {e}", pcap.display()));
    let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
    let (mut sent, mut received) = (0, 0);
    while let Some(p) = reader.next_raw_packet() {
        let p = p.unwrap();
        let len = p.orig_len as usize;
        match (p.data[6..10] == OURS, p.data[0..4] == OURS) {
            (true, _) => sent = sent.max(len),
            (_, true) => received = received.max(len),
            _ => {}
        }
    }
    (sent, received)
}

#[test]
fn offloads_are_on_by_default_and_segments_cross_the_tap_larger_than_the_mtu() {
    if !tap_tests_enabled("offloads_are_on_by_default_and_segments_cross_the_tap_larger_than_the_mtu") {
        return;
    }
    let mut r = Running::start("tst-offd", &[], None);
    r.transfer();
    let stats = r.poll_stats(|s| s.contains("bytes received from the device"));
    assert!(stats.contains("\n    offloads on: virtio-net header"), "{stats}");
    assert!(count(&stats, " GSO segments received, larger than the MTU (the kernel's offloads)") > 0, "{stats}");
    assert!(count(&stats, " GSO segments handed to the device for it to cut (TSO)") > 0, "{stats}");
    let said = r.stop();
    assert!(!said.contains("offloads"), "nothing to say on stderr when they are on: {said}");
    // The pcap shows the frames as they crossed the TAP: GSO segments whole.
    let (sent, received) = largest_frames(&r.pcap);
    assert!(sent > MAX_PLAIN && received > MAX_PLAIN, "largest frames sent {sent}, received {received}");
}

#[test]
fn a_refusal_of_the_offloads_falls_back_to_plain_frames_and_says_so_once() {
    if !tap_tests_enabled("a_refusal_of_the_offloads_falls_back_to_plain_frames_and_says_so_once") {
        return;
    }
    let mut r = Running::start("tst-offf", &[], Some((REFUSE_OFFLOAD_ENV, "1")));
    r.transfer();
    let stats = r.poll_stats(|s| s.contains("bytes received from the device"));
    assert!(stats.contains("\n    offloads off: the kernel refused them"), "{stats}");
    assert_eq!(count(&stats, " GSO segments received, larger than the MTU (the kernel's offloads)"), 0);
    assert_eq!(count(&stats, " GSO segments handed to the device for it to cut (TSO)"), 0);
    let said = r.stop();
    assert_eq!(said.matches("offloads off: the kernel refused them").count(), 1, "said once on stderr: {said}");
    let (sent, received) = largest_frames(&r.pcap);
    assert!(sent == MAX_PLAIN && received == MAX_PLAIN, "largest frames sent {sent}, received {received}");
    drop(r);

    // Asked for: no fallback, then, but an error; and --no-offload is plain without a word.
    let mut r = Running::start("tst-offn", &["--no-offload"], None);
    let stats = r.stats().unwrap();
    assert!(stats.contains("\n    offloads off (--no-offload)"), "{stats}");
    assert!(!r.stop().contains("offloads"));
    let ns = Netns::create("tst-offr").expect("namespace");
    ns.add_tap("tap0", &format!("{HOST}/24")).expect("TAP");
    let out = ns
        .command("timeout")
        .args(["20", TAPSTACK, "up", "--tap", "tap0", "--addr", &format!("{STACK}/24"), "--offload"])
        .env(REFUSE_OFFLOAD_ENV, "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--offload: no fallback to plain frames"), "{err}");
}

/// Without offloads, the kernel takes our frames in a NAPI thread of the
/// TAP's own (`stack::device::napi`): said in `tapstack stats`, set on the
/// TAP, and traffic flows as it does without (`--no-napi`).
#[test]
fn without_offloads_the_kernel_takes_our_frames_in_a_napi_thread_unless_told_not_to() {
    if !tap_tests_enabled("without_offloads_the_kernel_takes_our_frames_in_a_napi_thread_unless_told_not_to") {
        return;
    }
    let attr = |r: &Running, name: &str| {
        let out = r.ns.exec_checked(&["cat", &format!("/sys/class/net/tap0/{name}")]).expect("the TAP's attribute");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let threaded = |r: &Running| attr(r, "threaded");
    // IFF_NAPI (0x0010) in the TAP's flags: NAPI without its thread is the slow
    // mode the fallback avoids, so it must be off whenever the thread is.
    let napi_flag =
        |r: &Running| i64::from_str_radix(attr(r, "tun_flags").trim_start_matches("0x"), 16).unwrap() & 0x10 != 0;
    let mut r = Running::start("tst-napi", &["--no-offload"], None);
    r.transfer();
    let stats = r.poll_stats(|s| s.contains("bytes received from the device"));
    assert!(stats.contains("the kernel takes them in a NAPI thread of the TAP's own"), "{stats}");
    assert_eq!(threaded(&r), "1");
    assert!(napi_flag(&r));
    assert!(!r.stop().contains("NAPI"), "nothing to say on stderr when it is on");
    let (sent, received) = largest_frames(&r.pcap);
    assert!(sent == MAX_PLAIN && received == MAX_PLAIN, "plain frames: largest sent {sent}, received {received}");
    drop(r);

    let mut r = Running::start("tst-nonapi", &["--no-offload", "--no-napi"], None);
    r.transfer();
    let stats = r.poll_stats(|s| s.contains("bytes received from the device"));
    assert!(stats.contains("the kernel takes them inside our writes (--no-napi)"), "{stats}");
    assert_eq!(threaded(&r), "0", "a TAP made by `ip tuntap add` has no NAPI thread, and --no-napi sets none");
    assert!(!napi_flag(&r));
    r.stop();
    drop(r);

    // A refusal (sysfs not this namespace's, an older kernel): without NAPI, said.
    let mut r = Running::start("tst-napif", &["--no-offload"], Some((REFUSE_NAPI_ENV, "1")));
    r.transfer();
    let stats = r.poll_stats(|s| s.contains("bytes received from the device"));
    let why = format!("the kernel takes them inside our writes (no NAPI thread: {REFUSE_NAPI_ENV} is set)");
    assert!(stats.contains(&why), "{stats}");
    assert_eq!(threaded(&r), "0");
    assert!(!napi_flag(&r), "opened again without IFF_NAPI");
    r.stop();
}

/// The lab (the demo's, the tests' and the benches') opens its plain TAP as
/// `tapstack up` does: with the NAPI thread where the kernel has one (Linux
/// 5.12 and later: a `threaded` attribute), else without NAPI at all.
#[test]
fn the_labs_plain_tap_has_the_napi_thread_where_the_kernel_has_one() {
    if !tap_tests_enabled("the_labs_plain_tap_has_the_napi_thread_where_the_kernel_has_one") {
        return;
    }
    let config = tapstack_tools::lab::LabConfig { services: String::new(), ..Default::default() };
    let lab = tapstack_tools::lab::Lab::start("tst-labnapi", config).expect("lab");
    let kernel_has_it = Path::new("/sys/class/net/lo/threaded").exists();
    assert_eq!(lab.napi_thread, kernel_has_it);
    let out = lab.netns().exec_checked(&["cat", "/sys/class/net/tap0/tun_flags"]).unwrap();
    let flags = i64::from_str_radix(String::from_utf8_lossy(&out.stdout).trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 0x10 != 0, lab.napi_thread, "IFF_NAPI only with its thread");
    let ping = lab.host("ping").args(["-c", "2", "-W", "2", "10.77.0.2"]).output().unwrap();
    assert!(ping.status.success(), "{}", String::from_utf8_lossy(&ping.stdout));
}

/// The kernel's queue of frames written to a TAP with IFF_NAPI, waiting for
/// its thread, is bounded (`NAPI_QUEUE_BYTES`): unbounded otherwise.
#[test]
fn a_napi_taps_queue_is_bounded() {
    if !tap_tests_enabled("a_napi_taps_queue_is_bounded") {
        return;
    }
    use stack::device::tap::{TapDevice, NAPI_QUEUE_BYTES};
    let ns = Netns::create("tst-napiq").expect("namespace");
    let napi = ns.run_inside(|| TapDevice::open_napi("tap0")).unwrap().expect("a TAP with IFF_NAPI");
    assert_eq!(napi.send_buffer().unwrap(), NAPI_QUEUE_BYTES);
    drop(napi);
    // The same name again, as tapstack up's fallback does (`reopen`: the
    // kernel may take a moment to let go of the first, busy till then).
    let plain = ns.run_inside(|| TapDevice::reopen("tap0")).unwrap().expect("a plain TAP");
    assert_eq!(plain.send_buffer().unwrap(), i32::MAX, "the kernel's default, for a TAP whose writes it takes at once");
}
