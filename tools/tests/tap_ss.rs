//! `tapstack ss` and `tapstack stats` against a running `tapstack up` (the binary)
//! on a TAP in a namespace each test creates and deletes, reached through a
//! control socket of the test's own (`--control`). The kernel's `nc` and `ping`
//! in the namespace make the traffic; every wait polls with a deadline.

mod common;

use common::Reaper;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tapstack_tools::netns::{tap_tests_enabled, Netns};

const TAPSTACK: &str = env!("CARGO_BIN_EXE_tapstack");
const HOST: &str = "10.81.0.1";
const STACK: &str = "10.81.0.2";
/// Bound on anything that should happen promptly, for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(15);

/// `tapstack up` in a namespace of its own, with the namespace (dropped last).
struct Running {
    up: Reaper,
    control: PathBuf,
    ns: Netns,
}

impl Running {
    fn start(test: &str, serve: &str) -> Option<Running> {
        if !tap_tests_enabled(test) {
            return None;
        }
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let ns = Netns::create("tst-ss").expect("namespace");
        ns.add_tap("tap0", &format!("{HOST}/24")).expect("TAP");
        let control = std::env::temp_dir().join(format!(
            "tapstack-ss-{}-{}.sock",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let mut c = ns.command(TAPSTACK);
        c.args(["up", "--tap", "tap0", "--addr", &format!("{STACK}/24"), "--seed", "9", "--serve", serve])
            .arg("--control")
            .arg(&control)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let up = Reaper(c.spawn().expect("spawn tapstack up"));
        let r = Running { up, control, ns };
        // Up once its control socket answers.
        r.poll("the control socket to answer", &["stats"], |out| out.starts_with("Link:"));
        Some(r)
    }

    /// `tapstack ARGS --control PATH`: its stdout, or its stderr as the error.
    fn tapstack(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(TAPSTACK).args(args).arg("--control").arg(&self.control).output().expect("run tapstack");
        text(out)
    }

    /// Runs `tapstack ARGS` until its output satisfies `ok` (returned) or [`WAIT`] passes (a failure).
    fn poll(&self, what: &str, args: &[&str], ok: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + WAIT;
        loop {
            let last = self.tapstack(args);
            if let Ok(out) = &last {
                if ok(out) {
                    return out.clone();
                }
            }
            assert!(
                Instant::now() < end,
                "waited {WAIT:?} for {what}; `tapstack {}` last said {last:?}",
                args.join(" ")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn host(&self, program: &str, args: &[&str]) -> Command {
        let mut c = self.ns.command(program);
        c.args(args);
        c
    }
}

fn text(out: Output) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The line of `ss` output in `state` whose local port is `port`.
fn line<'a>(ss: &'a str, state: &str, port: u16) -> Option<&'a str> {
    let local = format!("{STACK}:{port} ");
    ss.lines().find(|l| l.split_whitespace().next() == Some(state) && l.contains(&local))
}

/// Waits (bounded) for a child to exit.
fn wait_exit(p: &mut Reaper) {
    let end = Instant::now() + WAIT;
    while p.0.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < end, "the child did not exit within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ss_shows_a_transfer_established_and_the_stacks_first_close_in_time_wait() {
    let Some(r) =
        Running::start("ss_shows_a_transfer_established_and_the_stacks_first_close_in_time_wait", "chargen,http")
    else {
        return;
    };
    // chargen streams until the client goes: ESTAB for as long as nc runs.
    let chargen = Reaper(r.host("nc", &[STACK, "19"]).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap());
    let out = r.poll("the chargen connection in ESTAB", &["ss", "-t", "-i", "-o"], |o| line(o, "ESTAB", 19).is_some());
    let estab = line(&out, "ESTAB", 19).unwrap();
    assert!(estab.contains(&format!(" {HOST}:")), "the peer is the host: {out}");
    let info = out.lines().skip_while(|l| !l.starts_with("ESTAB")).nth(1).unwrap_or_default();
    // As Linux's ss -ti against a kernel peer: timestamps and SACK agreed, CUBIC.
    assert!(info.starts_with("\t ts sack cubic ") && info.contains(" bytes_sent:") && info.contains(" cwnd:"), "{out}");
    drop(chargen);

    // HTTP/1.0: the server answers and closes first; nc reads until that FIN, then
    // closes too, so the stack's side waits in TIME-WAIT. (curl closes as soon as
    // it has Content-Length bytes, which may race the server's FIN.)
    let mut client = Reaper(r.host("nc", &[STACK, "80"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap());
    client.0.stdin.take().unwrap().write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    wait_exit(&mut client);
    let out = r.poll("the HTTP connection in TIME-WAIT", &["ss", "-tan", "-o"], |o| line(o, "TIME-WAIT", 80).is_some());
    let tw = line(&out, "TIME-WAIT", 80).unwrap();
    assert!(tw.contains("timer:(timewait,"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("LISTEN") && l.contains("0.0.0.0:80 ")), "-a lists listeners: {out}");
    // Without -a, ss leaves TIME-WAIT and listeners out, as Linux's does.
    let default = r.tapstack(&["ss", "-t"]).unwrap();
    assert!(line(&default, "TIME-WAIT", 80).is_none() && !default.contains("LISTEN"), "{default}");
    // What students type first (issue 14): `ss -tlnp`, and ss's filter.
    let tlnp = r.tapstack(&["ss", "-tlnp"]).unwrap();
    assert!(tlnp.lines().any(|l| l.starts_with("LISTEN") && l.contains("0.0.0.0:80 ")), "{tlnp}");
    let filtered = r.tapstack(&["ss", "-tn", "state", "time-wait", "( sport = :80 )"]).unwrap();
    assert!(line(&filtered, "TIME-WAIT", 80).is_some(), "{filtered}");
    assert!(filtered.lines().skip(1).all(|l| l.starts_with("TIME-WAIT")), "{filtered}");
    stop(r);
}

#[test]
fn stats_counts_a_ping_and_ss_lists_udp_sockets() {
    let Some(r) = Running::start("stats_counts_a_ping_and_ss_lists_udp_sockets", "udp-echo") else { return };
    // The first echo request may wait for ARP: up to five tries, a second each.
    let pinged =
        (0..5).any(|_| r.host("ping", &["-c", "1", "-W", "1", STACK]).output().is_ok_and(|o| o.status.success()));
    assert!(pinged, "tapstack never answered a ping");
    let stats = r.tapstack(&["stats"]).unwrap();
    let titles: Vec<&str> = stats.lines().filter(|l| !l.starts_with(' ')).collect();
    // Memory: the bytes the `tapstack` binary holds from its allocator (issue 13).
    let sections = ["Link:", "Loopback:", "Arp:", "Ip:", "Icmp:", "Udp:", "Tcp:", "Drops:", "Memory:"];
    assert_eq!(titles, sections, "{stats}");
    let count = |what: &str| -> u64 {
        let l = stats.lines().find(|l| l.ends_with(what)).unwrap_or_else(|| panic!("no '{what}' in {stats}"));
        l.split_whitespace().next().unwrap().parse().unwrap()
    };
    assert!(count(" frames received from the device") > 0, "{stats}");
    assert!(count(" bytes held from the allocator") > 0, "{stats}");
    assert!(count(" echo requests received") >= 1 && count(" echo replies sent") >= 1, "{stats}");

    let udp = r.tapstack(&["ss", "-u", "-l", "-n"]).unwrap();
    assert_eq!(
        udp.lines().nth(1).map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["UNCONN", "0", "0", "0.0.0.0:7", "0.0.0.0:*"]),
        "{udp}"
    );
    let refused = r.tapstack(&["ss", "-Q"]).unwrap_err();
    assert!(refused.contains("-Q"), "clap refuses a flag ss-like tapstack does not have: {refused}");
    stop(r);
}

/// Stops `tapstack up` as Ctrl-C would and checks that it removed its control socket.
fn stop(mut r: Running) {
    // SAFETY: kill(2) on our own child's pid (`ip netns exec` execs tapstack in place).
    unsafe { libc::kill(r.up.0.id() as i32, libc::SIGTERM) };
    wait_exit(&mut r.up);
    assert!(r.up.0.wait().unwrap().success(), "tapstack up exits cleanly on SIGTERM");
    assert!(!Path::new(&r.control).exists(), "the control socket is removed at exit");
}

/// Issue 14: two stacks on TAPs of the same name, each in its own network
/// namespace, each with the default control socket. Before, both took
/// /run/tapstack/tap0.sock (the second refused to start, or `ss --tap tap0`
/// reached the wrong one); now each namespace's `tapstack ss` finds its own.
#[test]
fn stacks_on_taps_of_one_name_in_two_namespaces_answer_each_their_own_ss() {
    if !tap_tests_enabled("stacks_on_taps_of_one_name_in_two_namespaces_answer_each_their_own_ss") {
        return;
    }
    let mut ups = Vec::new();
    for (serve, port) in [("echo", 7u16), ("http:8080", 8080)] {
        let ns = Netns::create("tst-ssns").expect("namespace");
        ns.add_tap("tap0", &format!("{HOST}/24")).expect("TAP");
        let mut c = ns.command(TAPSTACK);
        c.args(["up", "--tap", "tap0", "--addr", &format!("{STACK}/24"), "--seed", "9", "--serve", serve])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        ups.push((Reaper(c.spawn().expect("spawn tapstack up")), ns, port));
    }
    for (_, ns, port) in &ups {
        let (mine, other) = (format!(":{port} "), if *port == 7 { ":8080 " } else { ":7 " });
        let end = Instant::now() + WAIT;
        loop {
            let out = ns.command(TAPSTACK).args(["ss", "-tln", "--tap", "tap0"]).output().expect("run tapstack ss");
            let text = String::from_utf8_lossy(&out.stdout);
            if out.status.success() && text.contains(&mine) {
                assert!(!text.contains(other), "this namespace's ss shows the other stack: {text}");
                break;
            }
            assert!(Instant::now() < end, "no answer from the stack in its namespace: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for (mut up, ns, _) in ups {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(up.0.id() as i32, libc::SIGTERM) };
        wait_exit(&mut up);
        drop(ns);
    }
}
